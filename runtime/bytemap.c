/* runtime/bytemap.c — see bytemap.h. */
#include "runtime/bytemap.h"

#include <stdlib.h>
#include <string.h>

uint64_t em_bytemap_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    /* the tail, read with fixed-size loads (the length is in h already,
     * so overlapping reads are fine) */
    uint64_t w = 0;
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        w = (uint64_t)a | (uint64_t)b << 32;
    } else if (n > 0) {
        w = (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 |
            (uint64_t)p[n - 1] << 16;
    }
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

void em_bytemap_init(em_bytemap *m)
{
    memset(m, 0, sizeof *m);
    m->arena = ember_buf_heap();
}

void em_bytemap_free(em_bytemap *m)
{
    free(m->slots);
    ember_buf_release(&m->arena);
    memset(m, 0, sizeof *m);
}

void em_bytemap_clear(em_bytemap *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
    m->arena.len = 0;
}

static inline uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static int grow(em_bytemap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    /* Written before use, never calloc'd: calloc's fresh pages map the
     * shared zero page, so a lookup's read and then an insert's write
     * fault twice, the second flushing every thread's TLB. (posix_memalign
     * also keeps a compiler from turning malloc + memset into calloc, and
     * puts two slots in each cache line.) */
    void *mem = NULL;
    if (posix_memalign(&mem, 64, ncap * sizeof(em_bytemap_slot)) != 0)
        return -1;
    em_bytemap_slot *ns = mem;
    memset(ns, 0, ncap * sizeof *ns);
    for (size_t i = 0; i < m->cap; i++) {
        const em_bytemap_slot *s = &m->slots[i];
        if (!s->tag)
            continue;
        uint64_t h = em_bytemap_hash(em_bytemap_key(m, s), s->len);
        size_t j = h & (ncap - 1);
        while (ns[j].tag)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

uint64_t *em_bytemap_upsert_hashed(em_bytemap *m, const uint8_t *key,
                                   size_t len, uint64_t h, int *added)
{
    *added = 0;
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return NULL;
    uint32_t tag = tag_of(h);
    size_t mask = m->cap - 1, j = h & mask;
    /* short keys compare as two words: inline keys are zero padded */
    uint64_t kw[2] = {0, 0};
    int inl = len <= EM_BYTEMAP_INLINE;
    if (inl)
        memcpy(kw, key, len);
    for (;;) {
        em_bytemap_slot *s = &m->slots[j];
        if (!s->tag)
            break;
        if (s->tag == tag && s->len == len) {
            if (inl) {
                uint64_t sw[2];
                memcpy(sw, s->k.inl, sizeof sw);
                if (sw[0] == kw[0] && sw[1] == kw[1])
                    return &s->value;
            } else if (memcmp(m->arena.data + s->k.off, key, len) == 0) {
                return &s->value;
            }
        }
        j = (j + 1) & mask;
    }
    em_bytemap_slot *s = &m->slots[j];
    if (inl) {
        memcpy(s->k.inl, kw, sizeof kw);
    } else {
        s->k.off = m->arena.len;
        if (ember_buf_append(&m->arena, key, len) != EMBER_OK)
            return NULL;
    }
    s->len = (uint32_t)len;
    s->tag = tag;
    s->value = 0;
    m->count++;
    *added = 1;
    return &s->value;
}

uint64_t *em_bytemap_upsert(em_bytemap *m, const uint8_t *key, size_t len,
                            int *added)
{
    return em_bytemap_upsert_hashed(m, key, len, em_bytemap_hash(key, len),
                                    added);
}
