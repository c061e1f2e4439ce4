/*
 * runtime/bytemap.h — a hash map from byte strings (encoded records) to
 * 64-bit values, for per-partition aggregation (count_by_value, later the
 * shuffle's map-side combine). Keys are copied into one arena, so adding a
 * key costs no allocation of its own; the table grows by doubling.
 * Not thread-safe: one task's.
 */
#ifndef EM_RUNTIME_BYTEMAP_H
#define EM_RUNTIME_BYTEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

typedef struct em_bytemap_slot {
    uint64_t hash;  /* 0 = empty (hashes are forced non-zero) */
    size_t off;     /* key bytes at arena.data + off */
    size_t len;
    uint64_t value;
} em_bytemap_slot;

typedef struct em_bytemap {
    em_bytemap_slot *slots;
    size_t cap, count; /* cap a power of two */
    ember_buf arena;
} em_bytemap;

void em_bytemap_init(em_bytemap *m);
void em_bytemap_free(em_bytemap *m);

/* The value slot for key, inserted with value 0 when absent (*added set
 * to 1 then). NULL when out of memory. The pointer is valid until the next
 * insertion. */
uint64_t *em_bytemap_upsert(em_bytemap *m, const uint8_t *key, size_t len,
                            int *added);

/* Iteration: i from 0 while i < m->cap; slots with hash 0 are empty. */

#endif /* EM_RUNTIME_BYTEMAP_H */
