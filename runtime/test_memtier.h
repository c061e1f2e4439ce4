/*
 * runtime/test_memtier.h — a memory storage tier for the unit tests of the
 * block manager and of block copies (block_mgr_test, block_replicate_test):
 * blocks in a list, counted, able to answer ENOSPC on demand, and with a
 * gate that holds the get or put of one id inside the tier until the test
 * lets it go (to test what the block manager does meanwhile).
 *
 * Compiled into each of those tests (runtime/CMakeLists.txt), never into
 * the engine. Thread-safe as storage.h asks: one mutex, shared by every
 * memtier, guards the calls; the test reads the counts and `enospc` while
 * no manager call runs (or under its own reasoning: a call held at the
 * gate has not touched the blocks).
 */
#ifndef EM_RUNTIME_TEST_MEMTIER_H
#define EM_RUNTIME_TEST_MEMTIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/storage.h"

/* One block: its id, bytes and record count. */
typedef struct mblock {
    char id[48];
    uint8_t *data;
    size_t len;
    uint64_t count;
    struct mblock *next;
} mblock;

/* Which calls a gate holds (mem_gate_close). */
#define MEM_GATE_GET 0x1u
#define MEM_GATE_PUT 0x2u

/* A tier's state (zeroed: empty, gate open): its blocks, how many and
 * their bytes; with enospc set, every put is refused with EMBER_ENOSPC.
 * The gate_* fields belong to mem_gate_*. */
typedef struct memtier {
    mblock *head;
    size_t blocks, bytes;
    bool enospc;
    char gate_id[48];
    unsigned gate_ops;  /* MEM_GATE_*; 0: open */
    unsigned gate_held; /* calls waiting at the gate now */
} memtier;

/* The tier's functions (kind EMBER_STORAGE_MEMORY); state is a memtier. A
 * put of an id it holds is EMBER_EEXIST, a get or remove of one it lacks
 * EMBER_ENOTFOUND. */
extern const ember_storage_vtable mem_vt;

/* Frees every block of t (t itself is the caller's). */
void mem_free_all(memtier *t);

/*
 * Closes t's gate on id: from now on each call of the kinds in ops
 * (MEM_GATE_GET, MEM_GATE_PUT) for that id waits inside the tier, before
 * touching any block, until mem_gate_open. Other ids and other calls go
 * on, concurrently with the held ones. Any thread.
 */
void mem_gate_close(memtier *t, const char *id, unsigned ops);

/* Waits until at least n calls wait at t's gate; false when that has not
 * happened within timeout_s seconds (a watchdog, so a test fails rather
 * than hangs). Any thread. */
bool mem_gate_wait_held(memtier *t, unsigned n, int timeout_s);

/* Opens t's gate: the calls waiting there go on. Any thread. */
void mem_gate_open(memtier *t);

#endif /* EM_RUNTIME_TEST_MEMTIER_H */
