/*
 * util/map.h — two small open-addressing hash maps for the scheduler:
 * em_u64map (uint64_t key -> pointer) and em_strmap (string key ->
 * pointer). Not thread-safe: each map belongs to the loop thread.
 *
 * Values are borrowed pointers; the maps never free them. em_strmap copies
 * its keys. Deleting while iterating: em_strmap allows deleting the current
 * entry; em_u64map (which shifts entries back on delete) does not.
 */
#ifndef EMBER_KERNEL_UTIL_MAP_H
#define EMBER_KERNEL_UTIL_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

typedef struct em_u64map {
    uint64_t *keys;
    void **vals;   /* NULL = empty slot */
    size_t cap;    /* power of two, 0 before the first insert */
    size_t count;  /* entries */
} em_u64map;

/* A zeroed em_u64map is empty and valid; em_u64map_free releases it. */
void em_u64map_free(em_u64map *m);
/* Sets key to val (val must not be NULL); replaces an earlier value.
 * EMBER_ENOMEM when growing fails (the map is unchanged). */
ember_status em_u64map_put(em_u64map *m, uint64_t key, void *val);
/* Makes room for count entries, so that puts up to that size cannot fail.
 * EMBER_ENOMEM when growing fails (the map is unchanged). */
ember_status em_u64map_reserve(em_u64map *m, size_t count);
/* The value for key, or NULL. */
void *em_u64map_get(const em_u64map *m, uint64_t key);
/* Removes key; returns its value or NULL when absent. */
void *em_u64map_del(em_u64map *m, uint64_t key);
/* Iteration: *pos starts at 0; returns 1 with key/val set, 0 at the end. */
int em_u64map_next(const em_u64map *m, size_t *pos, uint64_t *key,
                   void **val);

typedef struct em_strmap {
    char **keys;   /* NULL = empty; tombstone = (char *)the map */
    void **vals;
    size_t cap, count, used;
} em_strmap;

/* A zeroed em_strmap is empty and valid; free releases keys and slots. */
void em_strmap_free(em_strmap *m);
/* Sets key (copied) to val (non-NULL). EMBER_ENOMEM on failure. */
ember_status em_strmap_put(em_strmap *m, const char *key, void *val);
/* The value for key (of klen bytes, not necessarily NUL-terminated). */
void *em_strmap_getn(const em_strmap *m, const char *key, size_t klen);
void *em_strmap_get(const em_strmap *m, const char *key);
/* Removes key; returns its value or NULL when absent. */
void *em_strmap_del(em_strmap *m, const char *key);
/* Iteration as em_u64map_next; *key is the map's copy. */
int em_strmap_next(const em_strmap *m, size_t *pos, const char **key,
                   void **val);

#endif /* EMBER_KERNEL_UTIL_MAP_H */
