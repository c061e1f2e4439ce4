/* dag/block_locs.c — see block_locs.h. */
#include "dag/block_locs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "runtime/block_report.h"
#include "util/map.h"

#define LOG_SRC "blocks"

/* A block's holders, in the order they reported it. */
typedef struct loc {
    em_block_holder *h;
    uint32_t n, cap;
} loc;

/* An application's blocks: block key -> loc. */
typedef struct app_blocks {
    em_u64map blocks;
} app_blocks;

struct em_block_locs {
    em_store *store;
    uint64_t *store_errors;
    em_u64map apps; /* app id -> app_blocks */
    uint64_t rows;
};

/* Datasets and partitions share a key as the executors' block managers
 * name them (dataset ids fit 32 bits there too). */
static uint64_t block_key(uint64_t dataset, uint32_t partition)
{
    return (dataset & 0xffffffffu) << 32 | partition;
}

static void report(em_block_locs *bl, ember_status st, const ember_error *e)
{
    em_store_report(LOG_SRC, bl->store_errors, st, e);
}

ember_status em_block_locs_create(em_block_locs **out, em_store *store,
                                  uint64_t *store_errors, ember_error *err)
{
    *out = NULL;
    em_block_locs *bl = calloc(1, sizeof *bl);
    if (!bl)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    bl->store = store;
    bl->store_errors = store_errors;
    if (store && em_store_schema_version(store) >= 3) {
        ember_error serr;
        report(bl, em_store_block_remove_all(store, &serr), &serr);
    }
    *out = bl;
    return EMBER_OK;
}

static void app_free(app_blocks *a)
{
    size_t pos = 0;
    void *v;
    while (em_u64map_next(&a->blocks, &pos, NULL, &v)) {
        loc *l = v;
        free(l->h);
        free(l);
    }
    em_u64map_free(&a->blocks);
    free(a);
}

void em_block_locs_destroy(em_block_locs *bl)
{
    if (!bl)
        return;
    size_t pos = 0;
    void *v;
    while (em_u64map_next(&bl->apps, &pos, NULL, &v))
        app_free(v);
    em_u64map_free(&bl->apps);
    free(bl);
}

/* The holder entry of exec_no in l, or -1. */
static int64_t find_holder(const loc *l, uint32_t exec_no)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->h[i].exec_no == exec_no)
            return i;
    return -1;
}

/* Stores the row of a stored block (the one place that writes it). */
static void store_set(em_block_locs *bl, uint64_t app, uint64_t dataset,
                      uint32_t partition, const char *exec_id, uint8_t tier,
                      uint64_t bytes)
{
    if (!bl->store)
        return;
    ember_error serr;
    report(bl,
           em_store_block_set(bl->store, app, dataset, partition, exec_id,
                              em_block_tier_name(tier), bytes, &serr),
           &serr);
}

void em_block_locs_stored(em_block_locs *bl, uint64_t app, uint64_t dataset,
                          uint32_t partition, uint32_t exec_no,
                          const char *exec_id, uint8_t tier, uint64_t bytes)
{
    app_blocks *a = em_u64map_get(&bl->apps, app);
    loc *l = NULL;
    uint64_t key = block_key(dataset, partition);
    if (!a) {
        if (!(a = calloc(1, sizeof *a)) ||
            em_u64map_put(&bl->apps, app, a) != EMBER_OK) {
            free(a);
            goto nomem;
        }
    }
    if (!(l = em_u64map_get(&a->blocks, key))) {
        if (!(l = calloc(1, sizeof *l)) ||
            em_u64map_put(&a->blocks, key, l) != EMBER_OK) {
            free(l);
            goto nomem;
        }
    }
    int64_t i = find_holder(l, exec_no);
    if (i < 0) {
        if (l->n == l->cap) {
            uint32_t cap = l->cap ? l->cap * 2 : 2;
            em_block_holder *g = realloc(l->h, cap * sizeof *g);
            if (!g) {
                if (l->n == 0) {
                    em_u64map_del(&a->blocks, key);
                    free(l->h);
                    free(l);
                }
                goto nomem;
            }
            l->h = g;
            l->cap = cap;
        }
        i = l->n++;
        bl->rows++;
    }
    l->h[i] = (em_block_holder){exec_no, tier, bytes};
    store_set(bl, app, dataset, partition, exec_id, tier, bytes);
    return;
nomem:
    em_log(EMBER_LOG_WARN, LOG_SRC, "out of memory recording block rdd_%"
           PRIu64 "_%" PRIu32 " of application %" PRIu64 " on executor %s: "
           "its tasks lose that locality", dataset, partition, app, exec_id);
}

/* Removes holder i of l (order kept). */
static void holder_del(em_block_locs *bl, loc *l, uint32_t i)
{
    memmove(&l->h[i], &l->h[i + 1], (l->n - i - 1) * sizeof *l->h);
    l->n--;
    bl->rows--;
}

void em_block_locs_dropped(em_block_locs *bl, uint64_t app, uint64_t dataset,
                           uint32_t partition, uint32_t exec_no,
                           const char *exec_id)
{
    app_blocks *a = em_u64map_get(&bl->apps, app);
    uint64_t key = block_key(dataset, partition);
    loc *l = a ? em_u64map_get(&a->blocks, key) : NULL;
    int64_t i = l ? find_holder(l, exec_no) : -1;
    if (i < 0)
        return;
    holder_del(bl, l, (uint32_t)i);
    if (l->n == 0) {
        em_u64map_del(&a->blocks, key);
        free(l->h);
        free(l);
    }
    if (bl->store) {
        ember_error serr;
        report(bl,
               em_store_block_remove(bl->store, app, dataset, partition,
                                     exec_id, &serr),
               &serr);
    }
}

/*
 * Removes from a the holders `drop` says go (exec_no, or every holder of
 * a block whose dataset is `dataset` when all_of_dataset), freeing blocks
 * left without holders. em_u64map cannot delete while iterating: the
 * emptied keys are collected first.
 */
static void sweep(em_block_locs *bl, app_blocks *a, int by_exec,
                  uint32_t exec_no, uint64_t dataset)
{
    size_t pos = 0, nempty = 0;
    uint64_t key;
    void *v;
    uint64_t *empty = malloc((a->blocks.count ? a->blocks.count : 1) *
                             sizeof *empty);
    while (em_u64map_next(&a->blocks, &pos, &key, &v)) {
        loc *l = v;
        if (by_exec) {
            int64_t i = find_holder(l, exec_no);
            if (i >= 0)
                holder_del(bl, l, (uint32_t)i);
        } else if (key >> 32 == (dataset & 0xffffffffu)) {
            bl->rows -= l->n;
            l->n = 0;
        }
        if (l->n == 0 && empty)
            empty[nempty++] = key;
    }
    for (size_t k = 0; k < nempty; k++) {
        loc *l = em_u64map_del(&a->blocks, empty[k]);
        free(l->h);
        free(l);
    }
    free(empty);
}

void em_block_locs_remove_executor(em_block_locs *bl, uint32_t exec_no,
                                   const char *exec_id)
{
    size_t pos = 0;
    void *v;
    while (em_u64map_next(&bl->apps, &pos, NULL, &v))
        sweep(bl, v, 1, exec_no, 0);
    if (bl->store && exec_id && *exec_id) {
        ember_error serr;
        report(bl, em_store_block_remove_executor(bl->store, exec_id, &serr),
               &serr);
    }
}

void em_block_locs_remove_dataset(em_block_locs *bl, uint64_t app,
                                  uint64_t dataset)
{
    app_blocks *a = em_u64map_get(&bl->apps, app);
    if (a)
        sweep(bl, a, 0, 0, dataset);
    if (bl->store) {
        ember_error serr;
        report(bl,
               em_store_block_remove_dataset(bl->store, app, dataset, &serr),
               &serr);
    }
}

void em_block_locs_remove_app(em_block_locs *bl, uint64_t app)
{
    app_blocks *a = em_u64map_del(&bl->apps, app);
    if (a) {
        size_t pos = 0;
        void *v;
        while (em_u64map_next(&a->blocks, &pos, NULL, &v))
            bl->rows -= ((loc *)v)->n;
        app_free(a);
    }
    if (bl->store) {
        ember_error serr;
        report(bl, em_store_block_remove_app(bl->store, app, &serr), &serr);
    }
}

uint32_t em_block_locs_get(const em_block_locs *bl, uint64_t app,
                           uint64_t dataset, uint32_t partition,
                           em_block_holder *out, uint32_t cap)
{
    const app_blocks *a = em_u64map_get(&bl->apps, app);
    const loc *l =
        a ? em_u64map_get(&a->blocks, block_key(dataset, partition)) : NULL;
    if (!l)
        return 0;
    for (uint32_t i = 0; i < l->n && i < cap; i++)
        out[i] = l->h[i];
    return l->n;
}

uint64_t em_block_locs_count(const em_block_locs *bl)
{
    return bl ? bl->rows : 0;
}
