/*
 * storage_memory.c — the memory tier: plugin "memory", component
 * "memory.store".
 *
 * Blocks live in process memory: put copies the batch bytes once, in one
 * host allocation together with the block's id and size, into a hash table
 * keyed by id. The tier knows nothing of storage levels, memory budgets or
 * eviction: the block manager decides what goes here and when it leaves.
 *
 * Threads: every slot but open and close may be called from any number of
 * threads at once; a mutex guards the table. A block carries a reference
 * count (guarded by the same mutex), so get copies the bytes out without
 * holding the lock and without racing a remove or a replacing put.
 */
#include <pthread.h>
#include <stdint.h>

#include "tier_common.h"

#define LABEL "memory.store"
#define MEM_BUCKETS_MIN 64u

/* One stored block: header, then id (NUL-terminated), then the bytes. */
typedef struct mem_block {
    struct mem_block *next; /* bucket chain */
    uint64_t hash;
    uint64_t count;
    size_t len;
    unsigned refs;  /* the table's reference + running gets; under lock */
    uint8_t *data;  /* inside this allocation, after id */
    char id[];
} mem_block;

/* An opened store. */
typedef struct mem_store {
    const ember_host_api *host;
    pthread_mutex_t lock; /* guards everything below and every block's refs */
    mem_block **buckets;
    size_t nbuckets; /* a power of two */
    size_t nblocks;
} mem_store;

/* FNV-1a of a NUL-terminated id. */
static uint64_t mem_hash(const char *id)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *id; id++) {
        h ^= (unsigned char)*id;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* The link that points at block `id` (or at the NULL ending its chain).
 * Caller holds the lock. */
static mem_block **mem_find(mem_store *st, const char *id, uint64_t hash)
{
    mem_block **link = &st->buckets[hash & (st->nbuckets - 1)];
    while (*link && ((*link)->hash != hash || strcmp((*link)->id, id) != 0))
        link = &(*link)->next;
    return link;
}

/* Drops one reference (caller holds the lock); non-zero when that was the
 * last one and the caller must free the block after unlocking. */
static int mem_unref(mem_block *b)
{
    return --b->refs == 0;
}

/* Doubles the table when it holds more blocks than buckets. Caller holds
 * the lock. Growing is an optimisation: if the allocation fails the table
 * stays as it is, still correct. */
static void mem_maybe_grow(mem_store *st)
{
    if (st->nblocks <= st->nbuckets ||
        st->nbuckets > SIZE_MAX / 2 / sizeof(mem_block *))
        return;
    size_t n = st->nbuckets * 2;
    mem_block **nb = st->host->alloc(n * sizeof *nb);
    if (!nb)
        return;
    for (size_t i = 0; i < n; i++)
        nb[i] = NULL;
    for (size_t i = 0; i < st->nbuckets; i++) {
        mem_block *b = st->buckets[i];
        while (b) {
            mem_block *next = b->next;
            mem_block **head = &nb[b->hash & (n - 1)];
            b->next = *head;
            *head = b;
            b = next;
        }
    }
    st->host->free(st->buckets);
    st->buckets = nb;
    st->nbuckets = n;
}

/* open: an empty table; dir is not used (blocks never leave memory). */
static ember_status mem_open(const ember_host_api *host, const char *dir,
                             void **state, ember_error *err)
{
    ember_status s;
    mem_store *st = NULL;
    if ((s = tier_open_check(LABEL, host, dir, 0, state, err)) != EMBER_OK)
        return s;
    st = host->alloc(sizeof *st);
    if (st) {
        st->host = host;
        st->nbuckets = MEM_BUCKETS_MIN;
        st->nblocks = 0;
        st->buckets = host->alloc(st->nbuckets * sizeof *st->buckets);
    }
    if (!st || !st->buckets) {
        s = ember_errorf(err, EMBER_ENOMEM, LABEL ": open: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < st->nbuckets; i++)
        st->buckets[i] = NULL;
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        s = ember_errorf(err, EMBER_EINTERNAL,
                         LABEL ": open: cannot create a mutex");
        goto fail;
    }
    *state = st;
    return EMBER_OK;
fail:
    if (st)
        host->free(st->buckets);
    host->free(st);
    return s;
}

/* close: frees every block and the table. No call may be running. */
static void mem_close(void *state)
{
    mem_store *st = state;
    if (!st)
        return;
    for (size_t i = 0; i < st->nbuckets; i++) {
        mem_block *b = st->buckets[i];
        while (b) {
            mem_block *next = b->next;
            st->host->free(b);
            b = next;
        }
    }
    pthread_mutex_destroy(&st->lock);
    st->host->free(st->buckets);
    st->host->free(st);
}

/* put: one allocation holding id and a copy of the bytes, made before
 * taking the lock; a block already stored under id is replaced (and freed
 * once no get is still copying it). */
static ember_status mem_put(void *state, const char *id,
                            const ember_batch *data, ember_error *err)
{
    mem_store *st = state;
    mem_block *old = NULL;
    ember_status s = tier_put_check(LABEL, st, id, data, err);
    if (s != EMBER_OK)
        return s;
    size_t idlen = strlen(id);
    size_t head = sizeof(mem_block) + idlen + 1;
    if (data->len > SIZE_MAX - head)
        return ember_errorf(err, EMBER_ENOMEM,
                            LABEL ": put %s: block of %zu bytes is too large",
                            id, data->len);
    mem_block *b = st->host->alloc(head + data->len);
    if (!b)
        return ember_errorf(err, EMBER_ENOMEM,
                            LABEL ": put %s: out of memory for %zu bytes", id,
                            data->len);
    b->next = NULL;
    b->hash = mem_hash(id);
    b->count = data->count;
    b->len = data->len;
    b->refs = 1;
    memcpy(b->id, id, idlen + 1);
    b->data = (uint8_t *)b + head;
    if (data->len)
        memcpy(b->data, data->data, data->len);

    pthread_mutex_lock(&st->lock);
    mem_block **link = mem_find(st, id, b->hash);
    if (*link) {
        old = *link;
        b->next = old->next;
        *link = b;
        if (!mem_unref(old))
            old = NULL; /* a get still copies it; that get frees it */
    } else {
        *link = b;
        st->nblocks++;
        mem_maybe_grow(st);
    }
    pthread_mutex_unlock(&st->lock);
    st->host->free(old);
    return EMBER_OK;
}

/* get: takes a reference under the lock and appends outside it. */
static ember_status mem_get(void *state, const char *id, ember_buf *out,
                            uint64_t *count, ember_error *err)
{
    mem_store *st = state;
    ember_status s = tier_get_check(LABEL, st, id, out, err);
    if (s != EMBER_OK)
        return s;
    uint64_t hash = mem_hash(id);
    pthread_mutex_lock(&st->lock);
    mem_block *b = *mem_find(st, id, hash);
    if (b)
        b->refs++;
    pthread_mutex_unlock(&st->lock);
    if (!b)
        return tier_no_block(err, LABEL, id, NULL, NULL);

    s = tier_out_reserve(out, b->len, LABEL, id, err);
    if (s == EMBER_OK) {
        if (b->len)
            memcpy(out->data + out->len, b->data, b->len);
        out->len += b->len;
        if (count)
            *count = b->count;
    }

    pthread_mutex_lock(&st->lock);
    int last = mem_unref(b);
    pthread_mutex_unlock(&st->lock);
    if (last)
        st->host->free(b);
    return s;
}

/* remove: unlinks the block; freed now or by the last get copying it. */
static ember_status mem_remove(void *state, const char *id, ember_error *err)
{
    mem_store *st = state;
    ember_status s = tier_remove_check(LABEL, st, id, err);
    if (s != EMBER_OK)
        return s;
    pthread_mutex_lock(&st->lock);
    mem_block **link = mem_find(st, id, mem_hash(id));
    mem_block *b = *link;
    int last = 0;
    if (b) {
        *link = b->next;
        st->nblocks--;
        last = mem_unref(b);
    }
    pthread_mutex_unlock(&st->lock);
    if (!b)
        return tier_no_block(err, LABEL, id, NULL, NULL);
    if (last)
        st->host->free(b);
    return EMBER_OK;
}

static const ember_storage_vtable mem_vtable = {
    .flags = EMBER_STORAGE_MEMORY,
    .replication = 1,
    .open = mem_open,
    .close = mem_close,
    .put = mem_put,
    .get = mem_get,
    .remove = mem_remove,
};

static const ember_component mem_components[] = {
    EMBER_STORAGE_COMPONENT("store",
                            "storage tier: blocks in process memory",
                            &mem_vtable),
};

EMBER_PLUGIN(memory, "0.1.0", "memory storage tier", "Apache-2.0",
             mem_components, NULL, NULL);
