/* An executor's broadcast copies (see runtime/bcast.h). */
#include "runtime/bcast.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcast/bcast.h"
#include "ember/buf.h"
#include "ember/kernel/host.h"
#include "ember/kernel/log.h"
#include "msg/msg.h"

/* How often a waiting task looks at its cancel flag, in ms. */
#define POLL_MS 200

typedef enum estate { E_FETCHING, E_READY, E_FAILED } estate;

/* One broadcast on this executor. refs: the cache's list (while linked),
 * each task holding it, each thread waiting on it. */
typedef struct entry {
    uint64_t app, id;
    estate state;
    int linked;  /* in c->list */
    int dropped; /* REMOVE_BROADCAST came: no new task may take it */
    int refs;
    uint8_t *data;
    size_t len;
    ember_error err; /* E_FAILED: why */
    /* the answer the fetching thread waits for (one request at a time) */
    uint32_t want;  /* chunk index asked for */
    int asking;     /* a request is out */
    int answered;   /* the answer is below */
    em_msg_bcast_chunk ans; /* views into ans_data / ans_error */
    uint8_t *ans_data;
    char ans_error[EMBER_ERROR_MAX];
    struct entry *next;
} entry;

struct em_bcast_cache {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an answer came, a fetch ended, or stop */
    entry *list;
    int stopping;
    char *executor_id;
    em_bcast_send_fn send;
    void *ctx;
    int64_t timeout_ms; /* for one chunk's answer; 0 = none */
    uint32_t fetches_ctr, refetches_ctr;
    int have_ctrs;
};

/* The entries the task on this thread read (it holds a reference on
 * each), and the cache they belong to. */
static _Thread_local struct {
    em_bcast_cache *c;
    entry **v;
    size_t n, cap;
} held;

/* Drops a reference; mu held. */
static void unref(entry *e)
{
    if (--e->refs > 0)
        return;
    free(e->data);
    free(e->ans_data);
    free(e);
}

/* Takes e out of the list; mu held. */
static void unlink_entry(em_bcast_cache *c, entry *e)
{
    if (!e->linked)
        return;
    for (entry **pp = &c->list; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    e->linked = 0;
    unref(e);
}

ember_status em_bcast_cache_create(em_bcast_cache **out,
                                   const char *executor_id,
                                   int64_t timeout_ms, em_bcast_send_fn send,
                                   void *ctx)
{
    *out = NULL;
    em_bcast_cache *c = calloc(1, sizeof *c);
    if (!c)
        return EMBER_ENOMEM;
    c->executor_id = strdup(executor_id ? executor_id : "");
    if (!c->executor_id) {
        free(c);
        return EMBER_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->send = send;
    c->ctx = ctx;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    const ember_host_api *h = em_host_api();
    c->have_ctrs =
        h->counter_register("ember.broadcast.fetches", &c->fetches_ctr) ==
            EMBER_OK &&
        h->counter_register("ember.broadcast.refetches",
                            &c->refetches_ctr) == EMBER_OK;
    *out = c;
    return EMBER_OK;
}

void em_bcast_cache_stop(em_bcast_cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

void em_bcast_cache_destroy(em_bcast_cache *c)
{
    if (!c)
        return;
    while (c->list)
        unlink_entry(c, c->list);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c->executor_id);
    free(c);
}

/* Waits on cv for up to POLL_MS; mu held. */
static void wait_a_while(em_bcast_cache *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)POLL_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asks the kernel for chunk index of e and waits for the answer, which
 * is then in e->ans (until the next ask); gives up after c->timeout_ms
 * (a kernel that never answers must not hold the task forever; a late
 * answer then finds nobody asking and is dropped). mu not held. */
static ember_status ask(em_bcast_cache *c, entry *e, uint32_t index,
                        atomic_int *cancel, ember_error *err)
{
    ember_buf out = ember_buf_heap();
    em_msg_bcast_fetch f = {e->app, e->id, index};
    pthread_mutex_lock(&c->mu);
    free(e->ans_data);
    e->ans_data = NULL;
    e->want = index;
    e->asking = 1;
    e->answered = 0;
    pthread_mutex_unlock(&c->mu);
    ember_status s = em_msg_encode_bcast_fetch(&out, &f);
    if (s == EMBER_OK)
        s = c->send(c->ctx, out.data, out.len);
    ember_buf_release(&out);
    pthread_mutex_lock(&c->mu);
    if (s != EMBER_OK) {
        e->asking = 0;
        pthread_mutex_unlock(&c->mu);
        return ember_errorf(err, s, "broadcast %" PRIu64 ": executor %s "
                            "cannot ask the kernel for it: %s", e->id,
                            c->executor_id, ember_status_name(s));
    }
    int64_t deadline = c->timeout_ms ? now_ms() + c->timeout_ms : 0;
    int timed_out = 0;
    while (!e->answered && !c->stopping &&
           !(cancel && atomic_load(cancel))) {
        if (deadline && now_ms() >= deadline) {
            timed_out = 1;
            break;
        }
        wait_a_while(c);
    }
    int answered = e->answered;
    e->asking = 0;
    pthread_mutex_unlock(&c->mu);
    if (!answered && timed_out)
        return ember_errorf(err, EMBER_ETIMEDOUT, "broadcast %" PRIu64
                            " chunk %" PRIu32 ": executor %s had no answer "
                            "from the kernel within %" PRId64 " ms "
                            "(ember.network.timeout)", e->id, index,
                            c->executor_id, c->timeout_ms);
    if (!answered)
        return ember_errorf(err, EMBER_ECANCELED, "broadcast %" PRIu64
                            ": fetch cancelled", e->id);
    return EMBER_OK;
}

/* Fetches e's bytes into e->data / e->len (mu not held; only this thread
 * fetches e). */
static ember_status fetch(em_bcast_cache *c, entry *e, atomic_int *cancel,
                          ember_error *err)
{
    uint32_t n = 1;
    uint64_t total = 0;
    size_t block = 0;
    uint8_t *buf = NULL;
    ember_status s = EMBER_OK;
    for (uint32_t i = 0; i < n && s == EMBER_OK; i++) {
        for (int tries = 0;; tries++) {
            if ((s = ask(c, e, i, cancel, err)) != EMBER_OK)
                break;
            const em_msg_bcast_chunk *a = &e->ans;
            if (a->outcome == EM_BCAST_UNKNOWN) {
                s = ember_errorf(err, EMBER_ENOTFOUND, "%s", e->ans_error);
                break;
            }
            if (a->outcome == EM_BCAST_DESTROYED) {
                s = ember_errorf(err, EMBER_EINVAL, "%s", e->ans_error);
                break;
            }
            if (a->outcome != EM_BCAST_OK) {
                s = ember_errorf(err, EMBER_EIO, "broadcast %" PRIu64
                                 " chunk %" PRIu32 ": %s", e->id, i,
                                 e->ans_error);
                break;
            }
            if (i == 0 && !buf) {
                n = a->nchunks;
                total = a->total;
                block = a->data.len;
                if (total > SIZE_MAX ||
                    !(buf = malloc(total ? (size_t)total : 1))) {
                    s = ember_errorf(err, EMBER_ENOMEM, "broadcast %" PRIu64
                                     ": executor %s has no memory for %"
                                     PRIu64 " bytes", e->id, c->executor_id,
                                     total);
                    break;
                }
            }
            /* every chunk but the last is as long as the first and lies
             * inside the value (the copy goes into a buffer of total
             * bytes); the last ends the value */
            uint64_t at = (uint64_t)i * block;
            int fits = a->nchunks == n && a->total == total &&
                       at <= total && a->data.len <= total - at &&
                       (i + 1 < n ? a->data.len == block
                                  : at + a->data.len == total);
            if (!fits) {
                s = ember_errorf(err, EMBER_EIO, "broadcast %" PRIu64
                                 " chunk %" PRIu32 ": the kernel's answer "
                                 "does not fit the chunks before it",
                                 e->id, i);
                break;
            }
            if (em_bcast_checksum(a->data.data, a->data.len) != a->checksum) {
                if (tries == 0) {
                    if (c->have_ctrs)
                        em_host_api()->counter_add(c->refetches_ctr, 1);
                    em_log(EMBER_LOG_WARN, "executor", "executor %s: "
                           "broadcast %" PRIu64 " chunk %" PRIu32 " failed "
                           "its checksum; fetching it again",
                           c->executor_id, e->id, i);
                    continue;
                }
                s = ember_errorf(err, EMBER_EIO, "broadcast %" PRIu64
                                 " chunk %" PRIu32 " failed its checksum",
                                 e->id, i);
                break;
            }
            if (a->data.len)
                memcpy(buf + at, a->data.data, a->data.len);
            break;
        }
    }
    pthread_mutex_lock(&c->mu);
    free(e->ans_data);
    e->ans_data = NULL;
    pthread_mutex_unlock(&c->mu);
    if (s != EMBER_OK) {
        free(buf);
        return s;
    }
    e->data = buf;
    e->len = (size_t)total;
    if (c->have_ctrs)
        em_host_api()->counter_add(c->fetches_ctr, 1);
    return EMBER_OK;
}

/* Remembers that this thread's task holds e (one reference, already
 * taken). Out of memory: the reference is dropped again and the copy
 * may go while the task reads it, so the caller fails instead. */
static ember_status hold(em_bcast_cache *c, entry *e)
{
    if (held.c != c && held.n > 0)
        return EMBER_EINTERNAL; /* one cache per thread */
    held.c = c;
    if (held.n == held.cap) {
        size_t cap = held.cap ? held.cap * 2 : 4;
        entry **v = realloc(held.v, cap * sizeof *v);
        if (!v)
            return EMBER_ENOMEM;
        held.v = v;
        held.cap = cap;
    }
    held.v[held.n++] = e;
    return EMBER_OK;
}

ember_status em_bcast_cache_get(em_bcast_cache *c, uint64_t app, uint64_t id,
                                atomic_int *cancel, const uint8_t **data,
                                size_t *len, ember_error *err)
{
    *data = NULL;
    *len = 0;
    pthread_mutex_lock(&c->mu);
    /* a copy this task read already is the one it keeps reading */
    for (size_t i = 0; held.c == c && i < held.n; i++)
        if (held.v[i]->app == app && held.v[i]->id == id) {
            *data = held.v[i]->data;
            *len = held.v[i]->len;
            pthread_mutex_unlock(&c->mu);
            return EMBER_OK;
        }
    for (;;) {
        if (c->stopping) {
            pthread_mutex_unlock(&c->mu);
            return ember_errorf(err, EMBER_ECANCELED, "broadcast %" PRIu64
                                ": executor %s is stopping", id,
                                c->executor_id);
        }
        entry *e = c->list;
        while (e && (e->app != app || e->id != id || e->dropped))
            e = e->next;
        if (!e) {
            /* nobody has it: this thread fetches it */
            e = calloc(1, sizeof *e);
            if (!e) {
                pthread_mutex_unlock(&c->mu);
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            }
            e->app = app;
            e->id = id;
            e->state = E_FETCHING;
            e->linked = 1;
            e->refs = 2; /* the list, this thread */
            e->next = c->list;
            c->list = e;
            pthread_mutex_unlock(&c->mu);
            ember_error ferr = {0};
            ember_status s = fetch(c, e, cancel, &ferr);
            pthread_mutex_lock(&c->mu);
            e->state = s == EMBER_OK ? E_READY : E_FAILED;
            if (s != EMBER_OK)
                e->err = ferr;
            /* a failure is not kept: the next use asks again */
            if (s != EMBER_OK || e->dropped)
                unlink_entry(c, e);
            pthread_cond_broadcast(&c->cv);
        } else {
            e->refs++;
            while (e->state == E_FETCHING && !c->stopping &&
                   !(cancel && atomic_load(cancel)))
                wait_a_while(c);
            if (e->state == E_FETCHING) {
                unref(e);
                pthread_mutex_unlock(&c->mu);
                return ember_errorf(err, EMBER_ECANCELED, "broadcast %"
                                    PRIu64 ": fetch cancelled", id);
            }
        }
        if (e->state == E_FAILED) {
            /* the fetching task was cancelled, not this one: try again */
            int retry = e->err.code == EMBER_ECANCELED && !c->stopping &&
                        !(cancel && atomic_load(cancel));
            ember_error why = e->err;
            unref(e);
            if (retry)
                continue;
            pthread_mutex_unlock(&c->mu);
            if (err)
                *err = why;
            return why.code;
        }
        ember_status s = hold(c, e);
        if (s != EMBER_OK) {
            unref(e);
            pthread_mutex_unlock(&c->mu);
            return ember_errorf(err, s, "broadcast %" PRIu64 ": %s", id,
                                ember_status_name(s));
        }
        *data = e->data;
        *len = e->len;
        pthread_mutex_unlock(&c->mu);
        return EMBER_OK;
    }
}

void em_bcast_cache_task_end(em_bcast_cache *c)
{
    if (!c || held.c != c)
        return;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < held.n; i++)
        unref(held.v[i]);
    pthread_mutex_unlock(&c->mu);
    free(held.v);
    held.v = NULL;
    held.n = held.cap = 0;
    held.c = NULL;
}

void em_bcast_cache_on_chunk(em_bcast_cache *c, const uint8_t *msg,
                             size_t len)
{
    em_msg_bcast_chunk m;
    ember_error err = {0};
    if (em_msg_decode_bcast_chunk(msg, len, &m, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "executor %s: bad BCAST_CHUNK: "
               "%s", c->executor_id, err.msg);
        return;
    }
    /* copied outside the lock: the chunk may be megabytes */
    uint8_t *copy = malloc(m.data.len ? m.data.len : 1);
    if (copy && m.data.len)
        memcpy(copy, m.data.data, m.data.len);
    pthread_mutex_lock(&c->mu);
    entry *e = c->list;
    while (e && !(e->app == m.app && e->id == m.bcast_id &&
                  e->state == E_FETCHING && e->asking && !e->answered &&
                  e->want == m.index))
        e = e->next;
    if (e) {
        e->answered = 1;
        e->ans = m;
        e->ans.error = (em_bytes){NULL, 0};
        e->ans_data = copy;
        copy = NULL;
        snprintf(e->ans_error, sizeof e->ans_error, "%.*s",
                 (int)m.error.len, m.error.len ? (const char *)m.error.data
                                               : "");
        if (!e->ans_data) {
            /* no memory for the chunk: answered as a failure */
            e->ans.outcome = EM_BCAST_FAILED;
            e->ans.data = (em_bytes){NULL, 0};
            snprintf(e->ans_error, sizeof e->ans_error, "executor %s has "
                     "no memory for a chunk of %zu bytes", c->executor_id,
                     m.data.len);
        } else {
            e->ans.data.data = e->ans_data;
        }
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    free(copy);
}

void em_bcast_cache_on_remove(em_bcast_cache *c, const uint8_t *msg,
                              size_t len)
{
    em_msg_cursor cur;
    ember_error err = {0};
    if (em_msg_remove_broadcast_open(msg, len, NULL, &cur, &err) !=
        EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "executor %s: bad "
               "REMOVE_BROADCAST: %s", c->executor_id, err.msg);
        return;
    }
    uint64_t app, id;
    pthread_mutex_lock(&c->mu);
    while (em_msg_remove_broadcast_next(&cur, &app, &id) == EMBER_OK)
        for (entry *e = c->list, *next; e; e = next) {
            next = e->next;
            if (e->app != app || e->id != id || e->dropped)
                continue;
            e->dropped = 1;
            /* a fetch in progress finishes for those waiting on it, and
             * its fetcher unlinks it then */
            if (e->state != E_FETCHING)
                unlink_entry(c, e);
        }
    pthread_mutex_unlock(&c->mu);
}
