/*
 * runtime/test_memtier.h — a memory storage tier for the unit tests of the
 * block manager and of block copies (block_mgr_test, block_replicate_test):
 * blocks in a list, counted, able to answer ENOSPC on demand.
 *
 * Compiled into each of those tests (runtime/CMakeLists.txt), never into
 * the engine. Not thread-safe: the block manager serializes calls into a
 * tier, and the test reads the counts while no manager call runs.
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

/* A tier's state (zeroed: empty): its blocks, how many and their bytes;
 * with enospc set, every put is refused with EMBER_ENOSPC. */
typedef struct memtier {
    mblock *head;
    size_t blocks, bytes;
    bool enospc;
} memtier;

/* The tier's functions (kind EMBER_STORAGE_MEMORY); state is a memtier. A
 * put of an id it holds is EMBER_EEXIST, a get or remove of one it lacks
 * EMBER_ENOTFOUND. */
extern const ember_storage_vtable mem_vt;

/* Frees every block of t (t itself is the caller's). */
void mem_free_all(memtier *t);

#endif /* EM_RUNTIME_TEST_MEMTIER_H */
