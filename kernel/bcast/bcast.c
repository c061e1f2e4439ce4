/* The kernel's broadcast values (see bcast/bcast.h). */
#include "bcast/bcast.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "msg/msg.h"
#include "state/store.h"

#define LOG_SRC "broadcast"

typedef enum bstatus { B_LIVE, B_UNPERSISTED, B_DESTROYED } bstatus;

static const char *const status_names[] = {"live", "unpersisted",
                                           "destroyed"};

/* One broadcast. Destroyed ones stay (without their bytes) until their
 * application closes, so that a fetch can say "destroyed". */
typedef struct entry {
    uint64_t app, id;
    bstatus status;
    uint8_t *data; /* len bytes; NULL once destroyed */
    size_t len;
    uint32_t nchunks;
    uint64_t *sums; /* one checksum per chunk */
    struct entry *next;
} entry;

struct em_bcast {
    pthread_mutex_t mu;
    size_t block;
    entry *list;
    em_store *store; /* NULL: not recorded */
    em_bcast_tell_fn tell;
    void *ctx;
};

/* ---- checksum ---------------------------------------------------------- */

static uint64_t rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t mix_word(uint64_t h, uint64_t w)
{
    h ^= w * 0xff51afd7ed558ccdULL;
    return rotl(h, 31) * 0xc4ceb9fe1a85ec53ULL;
}

uint64_t em_bcast_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = (uint64_t)p[i] | (uint64_t)p[i + 1] << 8 |
                     (uint64_t)p[i + 2] << 16 | (uint64_t)p[i + 3] << 24 |
                     (uint64_t)p[i + 4] << 32 | (uint64_t)p[i + 5] << 40 |
                     (uint64_t)p[i + 6] << 48 | (uint64_t)p[i + 7] << 56;
        h = mix_word(h, w);
    }
    if (i < len) {
        uint64_t w = 0;
        for (unsigned k = 0; i + k < len; k++)
            w |= (uint64_t)p[i + k] << (8 * k);
        h = mix_word(h, w);
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* ---- table ------------------------------------------------------------- */

static void entry_free(entry *e)
{
    if (!e)
        return;
    free(e->data);
    free(e->sums);
    free(e);
}

/* The entry of (app, id), or NULL; mu held. */
static entry *find(em_bcast *b, uint64_t app, uint64_t id)
{
    for (entry *e = b->list; e; e = e->next)
        if (e->app == app && e->id == id)
            return e;
    return NULL;
}

/* Records e's status; mu held. A failure is logged (broadcasts go on). */
static void record(em_bcast *b, const entry *e)
{
    ember_error err = {0};
    if (!b->store)
        return;
    ember_status s = em_store_broadcast_set(b->store, e->app, e->id, e->len,
                                            e->nchunks,
                                            status_names[e->status], &err);
    if (s == EMBER_OK)
        s = em_store_flush(b->store, &err);
    if (s != EMBER_OK)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
}

/* Tells the executors to drop the copies of ids[0..n) of app; mu not
 * held. */
static void tell_drop(em_bcast *b, uint64_t app, const uint64_t *ids,
                      size_t n, const char *reason)
{
    if (!b->tell || n == 0)
        return;
    ember_buf out = ember_buf_heap();
    em_msg_batch mb;
    ember_status s = em_msg_remove_broadcast_begin(&mb, &out, reason);
    for (size_t i = 0; s == EMBER_OK && i < n; i++)
        s = em_msg_remove_broadcast_add(&mb, app, ids[i]);
    if (s == EMBER_OK)
        s = em_msg_batch_finish(&mb);
    if (s == EMBER_OK)
        b->tell(b->ctx, out.data, out.len);
    else
        em_log(EMBER_LOG_ERROR, LOG_SRC, "cannot tell executors to drop "
               "broadcasts of application %" PRIu64 ": %s", app,
               ember_status_name(s));
    ember_buf_release(&out);
}

ember_status em_bcast_create(em_bcast **out, size_t block_size,
                             const char *state_path, em_bcast_tell_fn tell,
                             void *ctx, ember_error *err)
{
    *out = NULL;
    if (block_size == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "broadcast block size must be at least 1 byte");
    em_bcast *b = calloc(1, sizeof *b);
    if (!b)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    pthread_mutex_init(&b->mu, NULL);
    b->block = block_size;
    b->tell = tell;
    b->ctx = ctx;
    if (state_path) {
        ember_error serr = {0};
        if (em_store_open(&b->store, state_path, &serr) != EMBER_OK) {
            b->store = NULL;
            em_log(EMBER_LOG_ERROR, LOG_SRC, "broadcasts are not recorded "
                   "in the state store: %s", serr.msg);
        }
    }
    *out = b;
    return EMBER_OK;
}

void em_bcast_destroy(em_bcast *b)
{
    if (!b)
        return;
    while (b->list) {
        entry *e = b->list;
        b->list = e->next;
        entry_free(e);
    }
    em_store_close(b->store);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

ember_status em_bcast_put(em_bcast *b, uint64_t app, uint64_t id,
                          const void *data, size_t len, ember_error *err)
{
    if (!data && len)
        return ember_errorf(err, EMBER_EINVAL, "broadcast %" PRIu64
                            ": data is NULL", id);
    /* an empty broadcast is one empty chunk */
    size_t nchunks = len ? (len - 1) / b->block + 1 : 1;
    if (nchunks > UINT32_MAX)
        return ember_errorf(err, EMBER_EINVAL, "broadcast %" PRIu64
                            ": %zu bytes make more than %" PRIu32
                            " chunks of ember.broadcast.blockSize (%zu "
                            "bytes)", id, len, UINT32_MAX, b->block);
    entry *e = calloc(1, sizeof *e);
    if (e) {
        e->data = malloc(len ? len : 1);
        e->sums = malloc(nchunks * sizeof *e->sums);
    }
    if (!e || !e->data || !e->sums) {
        entry_free(e);
        return ember_errorf(err, EMBER_ENOMEM, "broadcast %" PRIu64
                            ": out of memory for %zu bytes", id, len);
    }
    if (len)
        memcpy(e->data, data, len);
    e->app = app;
    e->id = id;
    e->len = len;
    e->nchunks = (uint32_t)nchunks;
    e->status = B_LIVE;
    for (size_t i = 0; i < nchunks; i++) {
        size_t at = i * b->block;
        size_t n = len - at < b->block ? len - at : b->block;
        e->sums[i] = em_bcast_checksum(e->data + at, n);
    }
    pthread_mutex_lock(&b->mu);
    if (find(b, app, id)) {
        pthread_mutex_unlock(&b->mu);
        entry_free(e);
        return ember_errorf(err, EMBER_EEXIST, "broadcast %" PRIu64
                            " of application %" PRIu64 " exists already",
                            id, app);
    }
    e->next = b->list;
    b->list = e;
    record(b, e);
    pthread_mutex_unlock(&b->mu);
    return EMBER_OK;
}

ember_status em_bcast_drop(em_bcast *b, uint64_t app, uint64_t id,
                           em_bcast_drop_mode mode, ember_error *err)
{
    pthread_mutex_lock(&b->mu);
    entry *e = find(b, app, id);
    if (!e) {
        pthread_mutex_unlock(&b->mu);
        return ember_errorf(err, EMBER_ENOTFOUND, "no broadcast %" PRIu64
                            " in application %" PRIu64, id, app);
    }
    if (e->status == B_DESTROYED) {
        pthread_mutex_unlock(&b->mu);
        if (mode == EM_BCAST_DROP_DESTROY)
            return EMBER_OK;
        return ember_errorf(err, EMBER_EINVAL, "Attempted to use broadcast %"
                            PRIu64 " after it was destroyed", id);
    }
    if (mode == EM_BCAST_DROP_DESTROY) {
        e->status = B_DESTROYED;
        free(e->data);
        e->data = NULL;
    } else {
        e->status = B_UNPERSISTED;
    }
    record(b, e);
    pthread_mutex_unlock(&b->mu);
    tell_drop(b, app, &id, 1, mode == EM_BCAST_DROP_DESTROY
                                  ? "destroyed"
                                  : "unpersisted");
    return EMBER_OK;
}

void em_bcast_app_close(em_bcast *b, uint64_t app)
{
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&b->mu);
    for (entry **pp = &b->list; *pp;) {
        entry *e = *pp;
        if (e->app != app) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        if (e->status != B_DESTROYED) {
            e->status = B_DESTROYED;
            record(b, e);
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint64_t *grown = realloc(ids, ncap * sizeof *ids);
            if (grown) {
                ids = grown;
                cap = ncap;
            }
        }
        /* out of memory: that copy stays on the executors until they stop */
        if (n < cap)
            ids[n++] = e->id;
        entry_free(e);
    }
    pthread_mutex_unlock(&b->mu);
    tell_drop(b, app, ids, n, "application closed");
    free(ids);
}

ember_status em_bcast_answer(em_bcast *b, const uint8_t *msg, size_t len,
                             ember_buf *reply, ember_error *err)
{
    em_msg_bcast_fetch f;
    ember_status s = em_msg_decode_bcast_fetch(msg, len, &f, err);
    if (s != EMBER_OK)
        return s;
    em_msg_bcast_chunk c = {.app = f.app, .bcast_id = f.bcast_id,
                            .index = f.index};
    char why[200];
    pthread_mutex_lock(&b->mu);
    entry *e = find(b, f.app, f.bcast_id);
    if (!e) {
        c.outcome = EM_BCAST_UNKNOWN;
        snprintf(why, sizeof why, "no broadcast %" PRIu64 " in application %"
                 PRIu64 " (never created, or its session closed)",
                 f.bcast_id, f.app);
    } else if (e->status == B_DESTROYED) {
        c.outcome = EM_BCAST_DESTROYED;
        snprintf(why, sizeof why, "Attempted to use broadcast %" PRIu64
                 " after it was destroyed", f.bcast_id);
    } else if (f.index >= e->nchunks) {
        c.outcome = EM_BCAST_FAILED;
        snprintf(why, sizeof why, "broadcast %" PRIu64 " has %" PRIu32
                 " chunks; there is no chunk %" PRIu32, f.bcast_id,
                 e->nchunks, f.index);
    } else {
        size_t at = (size_t)f.index * b->block;
        size_t n = e->len - at < b->block ? e->len - at : b->block;
        c.outcome = EM_BCAST_OK;
        c.nchunks = e->nchunks;
        c.total = e->len;
        c.checksum = e->sums[f.index];
        c.data = (em_bytes){e->data + at, n};
    }
    if (c.outcome != EM_BCAST_OK)
        c.error = (em_bytes){(const uint8_t *)why, strlen(why)};
    s = em_msg_encode_bcast_chunk(reply, &c);
    pthread_mutex_unlock(&b->mu);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "broadcast %" PRIu64 " chunk %" PRIu32
                            ": cannot encode the answer: %s", f.bcast_id,
                            f.index, ember_status_name(s));
    return EMBER_OK;
}
