/*
 * runtime/keysort.h — sorting records by key bytes on the reduce side.
 *
 * A ref points at one record held in memory and at its key (a pair's
 * first element, or the whole record). em_keysort orders refs by key bytes
 * (memcmp, shorter prefix first — the typed order of encoded keys), and
 * keeps refs with equal keys in their original order (by `seq`): a radix
 * sort on an 8-byte key prefix (many refs: one MSD pass on the highest
 * 16 bits where prefixes differ, then each bucket by LSD bytes or
 * insertion), then the runs of equal prefixes by comparison (unless the
 * prefix holds their one key whole: already in order then). No
 * per-record allocation.
 *
 * Threads: any; no shared state.
 */
#ifndef EM_RUNTIME_KEYSORT_H
#define EM_RUNTIME_KEYSORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct em_keyref {
    uint64_t prefix;    /* first 8 key bytes, big-endian, zero padded */
    const uint8_t *key;
    const uint8_t *rec;
    uint32_t klen, rlen;
    uint32_t input;     /* which input of the operation */
    uint32_t seq;       /* position among all refs before sorting */
} em_keyref;

/* Fills r's prefix from its key. */
void em_keyref_prefix(em_keyref *r);

/* Sorts refs[0..n) as above; tmp must hold n refs. */
void em_keysort(em_keyref *refs, em_keyref *tmp, size_t n);

/* memcmp order of two keys, shorter prefix first: <0, 0, >0. */
int em_key_compare(const em_keyref *a, const em_keyref *b);

/* Whether two refs with their prefixes filled hold the same key: the
 * prefixes and lengths decide most pairs without reading the keys. */
static inline int em_key_equal(const em_keyref *a, const em_keyref *b)
{
    if (a->prefix != b->prefix || a->klen != b->klen)
        return 0;
    return a->klen <= 8 ||
           memcmp(a->key + 8, b->key + 8, a->klen - 8) == 0;
}

#endif /* EM_RUNTIME_KEYSORT_H */
