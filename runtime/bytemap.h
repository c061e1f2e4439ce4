/*
 * runtime/bytemap.h — a hash map from byte strings (encoded records) to
 * 64-bit values, for per-partition aggregation (count_by_value, the
 * shuffle's combiners). Open addressing, at most half full, 32-byte slots:
 * keys of up to 16 bytes sit in the slot itself (one cache miss per
 * lookup, none into an arena), longer keys are copied into one arena, so
 * adding a key costs no allocation of its own. Callers that look up many
 * keys hash them first and prefetch their slots (em_bytemap_hash,
 * em_bytemap_prefetch), so that misses overlap.
 * Not thread-safe: one task's.
 */
#ifndef EM_RUNTIME_BYTEMAP_H
#define EM_RUNTIME_BYTEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

#define EM_BYTEMAP_INLINE 16

typedef struct em_bytemap_slot {
    union {
        uint8_t inl[EM_BYTEMAP_INLINE]; /* len <= EM_BYTEMAP_INLINE, zero
                                           padded */
        uint64_t off;                   /* else: key at arena.data + off */
    } k;
    uint32_t len;  /* key length */
    uint32_t tag;  /* high hash bits; 0 = empty (tags are forced non-0) */
    uint64_t value;
} em_bytemap_slot;

typedef struct em_bytemap {
    em_bytemap_slot *slots;
    size_t cap, count; /* cap a power of two */
    ember_buf arena;
} em_bytemap;

void em_bytemap_init(em_bytemap *m);
void em_bytemap_free(em_bytemap *m);
/* Empties the map, keeping its memory. */
void em_bytemap_clear(em_bytemap *m);

/* The hash em_bytemap_upsert_hashed expects. */
uint64_t em_bytemap_hash(const uint8_t *key, size_t len);

/* Starts loading the slot where a key with hash h would sit. */
static inline void em_bytemap_prefetch(const em_bytemap *m, uint64_t h)
{
    if (m->cap)
        __builtin_prefetch(&m->slots[h & (m->cap - 1)]);
}

/* The value slot for key (hash h = em_bytemap_hash(key, len)), inserted
 * with value 0 when absent (*added set to 1 then). NULL when out of
 * memory. The pointer is valid until the next insertion. */
uint64_t *em_bytemap_upsert_hashed(em_bytemap *m, const uint8_t *key,
                                   size_t len, uint64_t h, int *added);

/* As em_bytemap_upsert_hashed, hashing key itself. */
uint64_t *em_bytemap_upsert(em_bytemap *m, const uint8_t *key, size_t len,
                            int *added);

/* The key bytes of a used slot. */
static inline const uint8_t *em_bytemap_key(const em_bytemap *m,
                                            const em_bytemap_slot *s)
{
    return s->len <= EM_BYTEMAP_INLINE ? s->k.inl : m->arena.data + s->k.off;
}

/* Bytes the map holds (slots and arena). */
static inline size_t em_bytemap_bytes(const em_bytemap *m)
{
    return m->cap * sizeof(em_bytemap_slot) + m->arena.len;
}

/* Iteration: i from 0 while i < m->cap; slots with tag 0 are empty. */

#endif /* EM_RUNTIME_BYTEMAP_H */
