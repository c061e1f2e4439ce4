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

static size_t u64_home(const em_u64map *m, uint64_t key)
{
    return (size_t)mix64(key) & (m->cap - 1);
}

/* Needs a free slot (the load factor keeps one). */
static void u64_place(em_u64map *m, uint64_t key, void *val)
{
    size_t j = u64_home(m, key);
    while (m->vals[j])
        j = (j + 1) & (m->cap - 1);
    m->keys[j] = key;
    m->vals[j] = val;
    m->count++;
}

ember_status em_u64map_reserve(em_u64map *m, size_t count)
{
    if (count * 2 <= m->cap)
        return EMBER_OK;
    size_t cap = m->cap ? m->cap : 16;
    while (count * 2 > cap)
        cap *= 2;
    uint64_t *keys = malloc(cap * sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return EMBER_ENOMEM;
    }
    em_u64map old = *m;
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->count = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.vals[i])
            u64_place(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
    return EMBER_OK;
}

static size_t u64_find(const em_u64map *m, uint64_t key)
{
    if (!m->cap)
        return SIZE_MAX;
    for (size_t j = u64_home(m, key);; j = (j + 1) & (m->cap - 1)) {
        if (!m->vals[j])
            return SIZE_MAX;
        if (m->keys[j] == key)
            return j;
    }
}

ember_status em_u64map_put(em_u64map *m, uint64_t key, void *val)
{
    size_t at = u64_find(m, key);
    if (at != SIZE_MAX) {
        m->vals[at] = val;
        return EMBER_OK;
    }
    if (em_u64map_reserve(m, m->count + 1) != EMBER_OK)
        return EMBER_ENOMEM;
    u64_place(m, key, val);
    return EMBER_OK;
}

void *em_u64map_get(const em_u64map *m, uint64_t key)
{
    size_t at = u64_find(m, key);
    return at == SIZE_MAX ? NULL : m->vals[at];
}

void *em_u64map_del(em_u64map *m, uint64_t key)
{
    size_t i = u64_find(m, key);
    if (i == SIZE_MAX)
        return NULL;
    void *v = m->vals[i];
    size_t mask = m->cap - 1;
    m->vals[i] = NULL;
    m->count--;
    /* Backward-shift deletion: no tombstones, so churn (task ids come and
     * go by the million) never degrades lookups. An entry moves into the
     * hole unless its home lies cyclically in (hole, its slot]. */
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t home = u64_home(m, m->keys[j]);
        int stays = i < j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
    return v;
}

int em_u64map_next(const em_u64map *m, size_t *pos, uint64_t *key,
                   void **val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        if (m->vals[i]) {
            *pos = i + 1;
            if (key)
                *key = m->keys[i];
            if (val)
                *val = m->vals[i];
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
