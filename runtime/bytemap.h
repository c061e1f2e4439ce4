/*
 * runtime/bytemap.h — a hash map from byte strings (encoded records) to
 * 64-bit values, for per-partition aggregation (count_by_value, the
 * shuffle's combiners). Open addressing, at most half full (three quarters
 * from 2^23 slots on), 32-byte slots:
 * a key of up to 16 bytes is held in the slot as two words (one cache miss
 * per lookup, none into an arena, compared without memcmp), longer keys
 * are copied into one arena, so adding a key costs no allocation of its
 * own. Callers that look up many keys prepare them first (em_bytemap_prep:
 * the words and the hash) and prefetch their slots, so that misses
 * overlap. Not thread-safe: one task's.
 */
#ifndef EM_RUNTIME_BYTEMAP_H
#define EM_RUNTIME_BYTEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ember/abi.h"
#include "ember/buf.h"

#define EM_BYTEMAP_INLINE 16

/*
 * A key ready for lookups. For len <= EM_BYTEMAP_INLINE, (len, w0, w1)
 * identifies the bytes: w0 holds bytes [0, 8) and w1 bytes [len-8, len)
 * (overlapping) when len >= 8; below 8, w0 holds bytes [0, 4) and
 * [len-4, len) when len >= 4, else bytes 0, len/2 and len-1; unused words
 * are 0.
 */
typedef struct em_bmkey {
    const uint8_t *p;
    size_t len;
    uint64_t w0, w1;
    uint64_t hash;
} em_bmkey;

typedef struct em_bytemap_slot {
    uint64_t w0;   /* inline key (see em_bmkey) */
    uint64_t w1;   /* inline key, or the key's offset in the arena */
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
/* Makes room for `keys` keys at once (no growth on the way there).
 * EMBER_ENOMEM leaves m as it was. */
ember_status em_bytemap_reserve(em_bytemap *m, size_t keys);

/* The hash of a key longer than EM_BYTEMAP_INLINE: its bytes 8 at a time
 * (the length mixed in first, so the tail's overlapping load is fine). */
/* Whether this thread keeps the last mapped tables it frees (the two
 * largest) for its next tables of the same sizes (off by default; a
 * thread that turns it on drops them when it goes idle, as executor
 * workers do). Off drops them. */
void em_bytemap_keep_spare(bool on);
/* Bytes of the mapped tables this thread keeps after freeing them, for
 * its next tables of the same sizes (0 when none). */
size_t em_bytemap_spare_bytes(void);
/* Unmaps this thread's kept tables: call when the thread goes idle. */
void em_bytemap_drop_spare(void);

uint64_t em_bytemap_hash_long(const uint8_t *p, size_t n);

/* The hash of a short key from its words. */
static inline uint64_t em_bytemap_hash_words(uint64_t w0, uint64_t w1,
                                             size_t len)
{
    uint64_t h = (w0 ^ 0x9E3779B97F4A7C15ull ^ (uint64_t)len) *
                 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    h = (h ^ w1) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

/* Prepares key p[0..len) (p must stay valid while k is used). Inline: it
 * runs once per record of every aggregation. */
static inline void em_bytemap_prep(em_bmkey *k, const uint8_t *p, size_t len)
{
    k->p = p;
    k->len = len;
    k->w0 = k->w1 = 0;
    if (len > EM_BYTEMAP_INLINE) {
        k->hash = em_bytemap_hash_long(p, len);
        return;
    }
    if (len >= 8) {
        memcpy(&k->w0, p, 8);
        memcpy(&k->w1, p + len - 8, 8);
    } else if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        k->w0 = (uint64_t)lo | (uint64_t)hi << 32;
    } else if (len > 0) {
        k->w0 = (uint64_t)p[0] | (uint64_t)p[len / 2] << 8 |
                (uint64_t)p[len - 1] << 16;
    }
    k->hash = em_bytemap_hash_words(k->w0, k->w1, len);
}

/* Starts loading the slot where key k would sit. */
/*
 * em_bytemap_prep of the key [tag][w[0..wl)][0x00] (a string record's
 * encoding: its tag, its escaped bytes, its terminator) without writing
 * the key out, for a key of at most EM_BYTEMAP_INLINE bytes (1 <= wl <=
 * EM_BYTEMAP_INLINE - 2); k->p is then NULL (inline keys never read it).
 * w[-1] and w[wl] must be readable (inside a string record they are: the
 * tag or a separator before, a separator or the terminator after); their
 * values do not matter. Same w0, w1 and hash as em_bytemap_prep.
 */
static inline void em_bytemap_prep_word(em_bmkey *k, uint8_t tag,
                                        const uint8_t *w, size_t wl)
{
    uint64_t w0, w1 = 0;
    uint32_t lo, hi;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "em_bytemap_prep_word assumes little-endian loads"
#endif
    if (wl >= 7) { /* k[0..8) = tag w[0..7); k[len-8..len) ends in 0 */
        memcpy(&w0, w - 1, 8);
        memcpy(&w1, w + wl - 7, 8);
        w0 = (w0 & ~(uint64_t)0xFF) | tag;
        w1 &= 0x00FFFFFFFFFFFFFFull;
    } else if (wl == 6) { /* the key is 8 bytes: w1 = w0 */
        memcpy(&w0, w - 1, 8);
        w0 = (w0 & 0x00FFFFFFFFFFFF00ull) | tag;
        w1 = w0;
    } else if (wl >= 2) { /* 4 to 7 bytes: two 4-byte halves */
        memcpy(&lo, w - 1, 4);
        if (wl == 2) {
            lo = (lo & 0x00FFFF00u) | tag;
            hi = lo;
        } else {
            memcpy(&hi, w + wl - 3, 4);
            lo = (lo & ~(uint32_t)0xFF) | tag;
            hi &= 0x00FFFFFFu;
        }
        w0 = (uint64_t)lo | (uint64_t)hi << 32;
    } else { /* 3 bytes: tag, w[0], 0 */
        w0 = (uint64_t)tag | (uint64_t)w[0] << 8;
    }
    k->p = NULL;
    k->len = wl + 2;
    k->w0 = w0;
    k->w1 = w1;
    k->hash = em_bytemap_hash_words(w0, w1, wl + 2);
}

static inline void em_bytemap_prefetch(const em_bytemap *m, const em_bmkey *k)
{
    if (m->cap)
        __builtin_prefetch(&m->slots[k->hash & (m->cap - 1)]);
}

/* The value slot for k, inserted with value 0 when absent (*added set to
 * 1 then). NULL when out of memory. The pointer is valid until the next
 * insertion. */
uint64_t *em_bytemap_upsert_key(em_bytemap *m, const em_bmkey *k,
                                int *added);

/* As em_bytemap_upsert_key for the bytes key[0..len). */
uint64_t *em_bytemap_upsert(em_bytemap *m, const uint8_t *key, size_t len,
                            int *added);

/* The key bytes of a used slot: in the arena, or written into buf. */
const uint8_t *em_bytemap_key(const em_bytemap *m, const em_bytemap_slot *s,
                              uint8_t buf[EM_BYTEMAP_INLINE]);

/* Bytes the map holds (slots and arena). */
static inline size_t em_bytemap_bytes(const em_bytemap *m)
{
    return m->cap * sizeof(em_bytemap_slot) + m->arena.len;
}

/* Iteration: i from 0 while i < m->cap; slots with tag 0 are empty. */

#endif /* EM_RUNTIME_BYTEMAP_H */
