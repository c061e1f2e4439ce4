/* runtime/bytemap.c — see bytemap.h. */
#include "runtime/bytemap.h"

#include <stdlib.h>
#include <string.h>

/* 64-bit mix of the key bytes, 8 at a time; never returns 0. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 32;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return h ? h : 1;
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

static int grow(em_bytemap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 256;
    em_bytemap_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].hash)
            continue;
        size_t j = m->slots[i].hash & (ncap - 1);
        while (ns[j].hash)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

uint64_t *em_bytemap_upsert(em_bytemap *m, const uint8_t *key, size_t len,
                            int *added)
{
    *added = 0;
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return NULL;
    uint64_t h = hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    for (;;) {
        em_bytemap_slot *s = &m->slots[j];
        if (!s->hash)
            break;
        if (s->hash == h && s->len == len &&
            memcmp(m->arena.data + s->off, key, len) == 0)
            return &s->value;
        j = (j + 1) & (m->cap - 1);
    }
    size_t off = m->arena.len;
    if (ember_buf_append(&m->arena, key, len) != EMBER_OK)
        return NULL;
    m->slots[j] = (em_bytemap_slot){h, off, len, 0};
    m->count++;
    *added = 1;
    return &m->slots[j].value;
}
