/* util/map.c — see map.h. Linear probing, tombstones, grow at 70 %. */
#include "util/map.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
    /* A 64-bit finaliser: sequential ids spread over the table. */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

void em_u64map_free(em_u64map *m)
{
    if (!m)
        return;
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static ember_status u64_rehash(em_u64map *m, size_t cap)
{
    uint64_t *keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return EMBER_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        void *v = m->vals[i];
        if (!v || v == (void *)m)
            continue;
        size_t j = mix64(m->keys[i]) & (cap - 1);
        while (vals[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = v;
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->used = m->count;
    return EMBER_OK;
}

static size_t u64_find(const em_u64map *m, uint64_t key)
{
    size_t j = mix64(key) & (m->cap - 1);
    for (;;) {
        void *v = m->vals[j];
        if (!v)
            return SIZE_MAX;
        if (v != (void *)m && m->keys[j] == key)
            return j;
        j = (j + 1) & (m->cap - 1);
    }
}

ember_status em_u64map_put(em_u64map *m, uint64_t key, void *val)
{
    if (m->cap) {
        size_t at = u64_find(m, key);
        if (at != SIZE_MAX) {
            m->vals[at] = val;
            return EMBER_OK;
        }
    }
    if ((m->used + 1) * 10 >= m->cap * 7) {
        size_t cap = m->cap ? m->cap : 16;
        while ((m->count + 1) * 10 >= cap * 5)
            cap *= 2;
        if (u64_rehash(m, cap) != EMBER_OK)
            return EMBER_ENOMEM;
    }
    size_t j = mix64(key) & (m->cap - 1);
    while (m->vals[j] && m->vals[j] != (void *)m)
        j = (j + 1) & (m->cap - 1);
    if (!m->vals[j])
        m->used++;
    m->keys[j] = key;
    m->vals[j] = val;
    m->count++;
    return EMBER_OK;
}

void *em_u64map_get(const em_u64map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    size_t at = u64_find(m, key);
    return at == SIZE_MAX ? NULL : m->vals[at];
}

void *em_u64map_del(em_u64map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    size_t at = u64_find(m, key);
    if (at == SIZE_MAX)
        return NULL;
    void *v = m->vals[at];
    m->vals[at] = (void *)m;
    m->count--;
    return v;
}

int em_u64map_next(const em_u64map *m, size_t *pos, uint64_t *key,
                   void **val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        void *v = m->vals[i];
        if (v && v != (void *)m) {
            *pos = i + 1;
            if (key)
                *key = m->keys[i];
            if (val)
                *val = v;
            return 1;
        }
    }
    *pos = m->cap;
    return 0;
}

void em_strmap_free(em_strmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != (char *)m)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t str_find(const em_strmap *m, const char *key, size_t n)
{
    size_t j = hash_bytes(key, n) & (m->cap - 1);
    for (;;) {
        char *k = m->keys[j];
        if (!k)
            return SIZE_MAX;
        if (k != (char *)m && strncmp(k, key, n) == 0 && k[n] == '\0')
            return j;
        j = (j + 1) & (m->cap - 1);
    }
}

static ember_status str_rehash(em_strmap *m, size_t cap)
{
    char **keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return EMBER_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        char *k = m->keys[i];
        if (!k || k == (char *)m)
            continue;
        size_t j = hash_bytes(k, strlen(k)) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = k;
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->used = m->count;
    return EMBER_OK;
}

ember_status em_strmap_put(em_strmap *m, const char *key, void *val)
{
    size_t n = strlen(key);
    if (m->cap) {
        size_t at = str_find(m, key, n);
        if (at != SIZE_MAX) {
            m->vals[at] = val;
            return EMBER_OK;
        }
    }
    if ((m->used + 1) * 10 >= m->cap * 7) {
        size_t cap = m->cap ? m->cap : 16;
        while ((m->count + 1) * 10 >= cap * 5)
            cap *= 2;
        if (str_rehash(m, cap) != EMBER_OK)
            return EMBER_ENOMEM;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return EMBER_ENOMEM;
    memcpy(copy, key, n + 1);
    size_t j = hash_bytes(key, n) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != (char *)m)
        j = (j + 1) & (m->cap - 1);
    if (!m->keys[j])
        m->used++;
    m->keys[j] = copy;
    m->vals[j] = val;
    m->count++;
    return EMBER_OK;
}

void *em_strmap_getn(const em_strmap *m, const char *key, size_t klen)
{
    if (!m->cap)
        return NULL;
    size_t at = str_find(m, key, klen);
    return at == SIZE_MAX ? NULL : m->vals[at];
}

void *em_strmap_get(const em_strmap *m, const char *key)
{
    return em_strmap_getn(m, key, strlen(key));
}

void *em_strmap_del(em_strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t at = str_find(m, key, strlen(key));
    if (at == SIZE_MAX)
        return NULL;
    void *v = m->vals[at];
    free(m->keys[at]);
    m->keys[at] = (char *)m;
    m->vals[at] = NULL;
    m->count--;
    return v;
}

int em_strmap_next(const em_strmap *m, size_t *pos, const char **key,
                   void **val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        char *k = m->keys[i];
        if (k && k != (char *)m) {
            *pos = i + 1;
            if (key)
                *key = k;
            if (val)
                *val = m->vals[i];
            return 1;
        }
    }
    *pos = m->cap;
    return 0;
}
