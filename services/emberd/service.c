/*
 * service.c — emberd (see service.h).
 *
 * Clients and their lifetime. A link accepted by the link server becomes
 * a client. The link's callbacks (NNG threads) only queue: each received
 * message is copied to the client's queue, and the link's end is queued
 * last as a "closed" item. Workers take a client with queued items from
 * a ready list, handle one item with the client marked busy, and put the
 * client back if more is queued — so one client's requests run one at a
 * time, in order, while different clients run in parallel.
 *
 * Two lanes of workers: WORKERS threads for every request, PLANNERS
 * threads for SPLITS (a source's plan may list many files). A client whose
 * next item is a SPLITS waits in the planners' ready list, so SPLITS
 * requests never hold the threads other clients' requests need.
 *
 * Back-pressure. em_link cannot stop reading one link, so a client's
 * queue is bounded instead: the bytes of its messages waiting or in hand
 * (c->qbytes) may not pass d->queue_max, except that one message in hand
 * and one waiting always fit, whatever their size.
 * The message that would pass it is refused with an ERROR naming the
 * limit, the client's waiting messages are dropped (the ERROR says how
 * many), everything it sends afterwards is discarded, and a "refused"
 * item makes the next worker close the link. Other clients never notice.
 *
 * A client is freed when its last reference goes: one for the link (given
 * up by the worker that handles the "closed" item, after closing the
 * application and freeing the link) and one per job in flight (given up by
 * the job's end callback on the loop thread). c->mu guards c->link, which
 * the loop thread's result and end callbacks send on; it is held across
 * em_kernel_submit and the JOB reply so that a job's RESULT and END never
 * overtake its JOB.
 *
 * Lock order: c->mu, then d->mu. plugin_mu and ro_mu are taken alone.
 */
#define _GNU_SOURCE /* realpath */
#include "service.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/kernel/conf.h"
#include "ember/kernel/host.h"
#include "ember/kernel/kernel.h"
#include "ember/kernel/log.h"
#include "ember/kernel/plugin.h"
#include "ember/kernel/registry.h"
#include "ember/kernel/server.h"
#include "ember/runtime/executor.h"
#include "ember/source.h"
#include "msg/client_msg.h"
#include "msg/link.h"
#include "util/map.h"
#include "util/sha256.h"

#define LOG_SRC "emberd"
/* Threads handling requests, and threads handling SPLITS only. */
#define WORKERS 4
#define PLANNERS 2
/* The most bytes of splits one SPLITS reply may hold. */
#define SPLITS_MAX_BYTES ((size_t)256 << 20)

#ifndef EMBER_BIN_TO_LIB
#define EMBER_BIN_TO_LIB "../lib"
#endif

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.1.0"
#endif

/* What a queued item is. */
enum { Q_MSG, Q_REFUSED, Q_CLOSED };
/* Which workers take a client whose next item this is. */
enum { LANE_REQUESTS, LANE_SPLITS, NLANES };

/* One queued item of a client: a message (data, len), the order to close
 * a client that passed its queue limit, or the link's end. */
typedef struct qitem {
    uint8_t *data;
    size_t len;
    int kind;
    int lane;
    struct qitem *next;
} qitem;

typedef struct client client;

/* Clients waiting for a worker of one lane. */
typedef struct lane {
    client *head, *tail;
    pthread_cond_t cv;
} lane;

/* What a worker thread gets. */
typedef struct worker_arg {
    struct emberd *d;
    int lane;
} worker_arg;

typedef struct shipped {
    char name[256];
    char sha[EM_SHA256_HEX_LEN + 1];
} shipped;

struct emberd {
    char listen[EM_LINK_URL_MAX + 1];
    char url[EM_LINK_URL_MAX + 1];
    char master[256];
    char state_dir[PATH_MAX];
    char plugin_dir[PATH_MAX];
    char db[PATH_MAX];
    em_conf *conf;
    em_registry *registry;
    em_server *server;
    em_kernel *k;
    em_link_server *links;
    uint32_t slots, default_parallelism;
    int64_t max_clients;
    int64_t link_timeout_ms; /* ember.network.timeout: a silent client */
    size_t queue_max;    /* bytes one client may have queued */
    uint64_t max_splits; /* splits one SPLITS request may give */

    pthread_mutex_t mu; /* everything below up to plugin_mu */
    lane lanes[NLANES];
    client *clients; /* every client not yet freed */
    size_t nclients; /* connected (link not yet closed) */
    em_u64map jobs;  /* job_id -> job, jobs in flight */
    int stopping;
    uint64_t queued;      /* bytes of messages queued or in hand, all */
    uint64_t queued_peak; /* the most one client ever had */
    pthread_t workers[WORKERS + PLANNERS];
    worker_arg worker_args[WORKERS + PLANNERS];
    int nworkers;

    pthread_mutex_t plugin_mu; /* shipped plugins, the plugin directory */
    shipped *shipped;
    size_t nshipped;

    pthread_mutex_t ro_mu; /* the read-only state connection */
    sqlite3 *ro;

    _Atomic uint64_t bad_messages;
};

struct client {
    emberd *d;
    uint64_t id;
    pthread_mutex_t mu; /* link */
    em_link *link;      /* NULL once closed by us */
    /* guarded by d->mu */
    int refs;
    qitem *q_head, *q_tail;
    size_t qbytes;  /* of its messages queued or in hand */
    size_t waiting; /* messages queued, not in hand */
    int busy, ready;
    int refused;            /* passed the queue limit: being closed */
    uint64_t discarded;     /* messages dropped since */
    client *next, *rnext;
    /* touched only by the worker handling this client's items */
    int has_app;
    uint64_t app_id;
    char app[256];
};

/* A job in flight: the listener's context. */
typedef struct job {
    client *c;
    uint64_t req_id;
    uint64_t job_id;
} job;

/* ------------------------------------------------------------ replies */

/* A JSON string for text that may not be UTF-8: bytes outside ASCII
 * become '?'. NULL only when out of memory. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

/* Sends one message; c->mu must be held. Sends to a closed link are
 * dropped (the client is gone). */
static void send_locked(client *c, em_cmsg_type t, uint64_t req,
                        const char *header, const void *body, size_t len)
{
    if (!c->link)
        return;
    ember_buf b = ember_buf_heap();
    ember_status st = em_cmsg_encode(&b, t, req, header,
                                     header ? strlen(header) : 0, body, len);
    if (st == EMBER_OK)
        st = em_link_send(c->link, b.data, b.len);
    if (st != EMBER_OK && st != EMBER_EIO)
        em_log(EMBER_LOG_ERROR, LOG_SRC,
               "client %" PRIu64 ": cannot send %s: %s", c->id,
               em_cmsg_type_name(t), ember_status_name(st));
    ember_buf_release(&b);
}

/* Sends a reply whose header is h (taken: decref'd here). */
static void reply(client *c, em_cmsg_type t, uint64_t req, json_t *h,
                  const void *body, size_t len)
{
    char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    pthread_mutex_lock(&c->mu);
    send_locked(c, t, req, text ? text : "{}", body, len);
    pthread_mutex_unlock(&c->mu);
    free(text);
}

/* Refuses a request: counts it, logs it once, answers ERROR. */
static void refuse(client *c, uint64_t req, ember_status st, const char *msg)
{
    atomic_fetch_add(&c->d->bad_messages, 1);
    em_log(EMBER_LOG_WARN, LOG_SRC,
           "client %" PRIu64 ": request %" PRIu64 " refused: %s", c->id, req,
           msg);
    reply(c, EM_CMSG_ERROR, req,
          json_pack("{s:i,s:o}", "status", (int)st, "message",
                    json_text(msg)),
          NULL, 0);
}

/* ------------------------------------------------- header field access */

static ember_status need_field(const json_t *h, const char *what,
                               const char *key, json_t **v, ember_error *err)
{
    *v = json_object_get(h, key);
    if (!*v)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: header field '%s' is missing", what, key);
    return EMBER_OK;
}

/* An integer field in [lo, hi]. */
static ember_status get_int(const json_t *h, const char *what,
                            const char *key, int64_t lo, int64_t hi,
                            int64_t *out, ember_error *err)
{
    json_t *v;
    ember_status st = need_field(h, what, key, &v, err);
    if (st != EMBER_OK)
        return st;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: header field '%s' must be an integer from "
                            "%" PRId64 " to %" PRId64,
                            what, key, lo, hi);
    *out = (int64_t)json_integer_value(v);
    return EMBER_OK;
}

/* A string field of 1..max bytes without NUL; with nullable, null gives
 * *out NULL. */
static ember_status get_str(const json_t *h, const char *what,
                            const char *key, int nullable, size_t max,
                            const char **out, ember_error *err)
{
    json_t *v;
    ember_status st = need_field(h, what, key, &v, err);
    if (st != EMBER_OK)
        return st;
    *out = NULL;
    if (nullable && json_is_null(v))
        return EMBER_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: header field '%s' must be a string of 1 to "
                            "%zu bytes without NUL%s",
                            what, key, max, nullable ? ", or null" : "");
    *out = json_string_value(v);
    return EMBER_OK;
}

static ember_status get_bool(const json_t *h, const char *what,
                             const char *key, int *out, ember_error *err)
{
    json_t *v;
    ember_status st = need_field(h, what, key, &v, err);
    if (st != EMBER_OK)
        return st;
    if (!json_is_boolean(v))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: header field '%s' must be true or false",
                            what, key);
    *out = json_is_true(v);
    return EMBER_OK;
}

/* ------------------------------------------------------------ clients */

/* Frees what c still has queued and takes its bytes off the counts;
 * d->mu held (or no other thread left). Returns the messages freed. */
static size_t drop_queue_locked(emberd *d, client *c, int messages_only)
{
    size_t n = 0;
    qitem **pp = &c->q_head, *last = NULL;
    while (*pp) {
        qitem *q = *pp;
        if (messages_only && q->kind != Q_MSG) {
            last = q;
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        if (q->kind == Q_MSG) {
            c->qbytes -= q->len;
            c->waiting--;
            d->queued -= q->len;
            n++;
        }
        free(q->data);
        free(q);
    }
    c->q_tail = last;
    return n;
}

/* Frees c (its queue too); d->mu held or no other thread left. */
static void client_free(emberd *d, client *c)
{
    drop_queue_locked(d, c, 0);
    /* a message in hand was counted when it arrived */
    d->queued -= c->qbytes;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Drops one reference; frees c with the last. Takes d->mu. */
static void client_unref(client *c)
{
    emberd *d = c->d;
    pthread_mutex_lock(&d->mu);
    if (--c->refs == 0) {
        for (client **pp = &d->clients; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        client_free(d, c);
    }
    pthread_mutex_unlock(&d->mu);
}

/* Puts c on the ready list of the lane of its next item, unless it is
 * busy, already there or has nothing queued; d->mu held. */
static void make_ready_locked(emberd *d, client *c)
{
    if (c->busy || c->ready || !c->q_head)
        return;
    lane *ln = &d->lanes[c->q_head->lane];
    c->ready = 1;
    c->rnext = NULL;
    if (ln->tail)
        ln->tail->rnext = c;
    else
        ln->head = c;
    ln->tail = c;
    pthread_cond_signal(&ln->cv);
}

/* Queues an item for c and makes c ready; d->mu held. */
static void enqueue_locked(emberd *d, client *c, qitem *q)
{
    if (c->q_tail)
        c->q_tail->next = q;
    else
        c->q_head = q;
    c->q_tail = q;
    if (q->kind == Q_MSG) {
        c->qbytes += q->len;
        c->waiting++;
        d->queued += q->len;
        if (c->qbytes > d->queued_peak)
            d->queued_peak = c->qbytes;
    }
    make_ready_locked(d, c);
}

/* Refuses c's message of len bytes (request req) that would pass the
 * queue limit: drops what c has waiting, queues the order to close it,
 * answers ERROR. q is a spare item. d->mu held on entry, released. */
static void refuse_flood_locked(emberd *d, client *c, qitem *q, uint64_t req,
                                size_t len)
{
    size_t had = c->qbytes;
    c->refused = 1;
    size_t dropped = drop_queue_locked(d, c, 1);
    q->kind = Q_REFUSED;
    q->lane = LANE_REQUESTS;
    enqueue_locked(d, c, q);
    pthread_mutex_unlock(&d->mu);
    char msg[480];
    snprintf(msg, sizeof msg,
             "too many requests waiting: this connection had %zu bytes of "
             "requests queued or in progress on emberd and sent %zu more, "
             "over its limit of %zu bytes (emberd --max-client-queue); "
             "%zu waiting requests were dropped and the connection is "
             "closed (wait for replies before sending more)",
             had, len, d->queue_max, dropped);
    refuse(c, req, EMBER_ENOSPC, msg);
}

static void link_recv(void *ctx, em_link *l, const uint8_t *data,
                      size_t len)
{
    emberd *d = ctx;
    client *c = em_link_user(l);
    if (!c)
        return;
    /* The envelope only (no copy, no JSON): which lane, which request. */
    em_cmsg m;
    int lane_of = LANE_REQUESTS;
    uint64_t req = 0;
    if (em_cmsg_decode(data, len, &m, NULL) == EMBER_OK) {
        req = m.req_id;
        if (m.type == EM_CMSG_SPLITS)
            lane_of = LANE_SPLITS;
    }
    qitem *q = calloc(1, sizeof *q);
    if (!q)
        goto nomem;
    pthread_mutex_lock(&d->mu);
    if (d->stopping || c->refused) {
        c->discarded += !d->stopping;
        pthread_mutex_unlock(&d->mu);
        free(q);
        return;
    }
    /* One message in hand and one waiting always fit, whatever their
     * size (the link bounds one message). Only this link's callbacks add
     * to c's queue (never two at once) and workers only shrink it: the
     * check holds after unlocking. */
    if (c->waiting > 0 &&
        (c->qbytes >= d->queue_max || len > d->queue_max - c->qbytes)) {
        refuse_flood_locked(d, c, q, req, len);
        return;
    }
    pthread_mutex_unlock(&d->mu);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        free(q);
        goto nomem;
    }
    memcpy(copy, data, len);
    q->data = copy;
    q->len = len;
    q->kind = Q_MSG;
    q->lane = lane_of;
    pthread_mutex_lock(&d->mu);
    if (d->stopping) {
        pthread_mutex_unlock(&d->mu);
        free(copy);
        free(q);
        return;
    }
    enqueue_locked(d, c, q);
    pthread_mutex_unlock(&d->mu);
    return;
nomem:
    em_log(EMBER_LOG_ERROR, LOG_SRC,
           "client %" PRIu64 ": out of memory: a message of %zu bytes "
           "dropped", c->id, len);
}

static void link_closed(void *ctx, em_link *l, const char *reason)
{
    emberd *d = ctx;
    client *c = em_link_user(l);
    if (!c)
        return;
    em_log(EMBER_LOG_INFO, LOG_SRC, "client %" PRIu64 " disconnected: %s",
           c->id, reason ? reason : "");
    qitem *q = calloc(1, sizeof *q);
    pthread_mutex_lock(&d->mu);
    if (d->stopping || !q) {
        /* emberd_stop frees what is left; a client whose end could not
         * be queued is cleaned up there too. */
        pthread_mutex_unlock(&d->mu);
        free(q);
        return;
    }
    /* Nobody is left to read the replies: requests still waiting are
     * freed now rather than run (the application's jobs are cancelled
     * when the connection goes anyway). */
    size_t dropped = drop_queue_locked(d, c, 1);
    q->kind = Q_CLOSED;
    q->lane = LANE_REQUESTS;
    enqueue_locked(d, c, q);
    pthread_mutex_unlock(&d->mu);
    if (dropped)
        em_log(EMBER_LOG_INFO, LOG_SRC, "client %" PRIu64 ": %zu requests "
               "it sent before it went were not handled", c->id, dropped);
}

static ember_status link_accept(void *ctx, em_link *l, em_link_handler *h)
{
    emberd *d = ctx;
    client *c = calloc(1, sizeof *c);
    if (!c)
        return EMBER_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    c->d = d;
    c->id = em_link_id(l);
    c->link = l;
    c->refs = 1;
    pthread_mutex_lock(&d->mu);
    if (d->stopping) {
        pthread_mutex_unlock(&d->mu);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return EMBER_ECANCELED;
    }
    c->next = d->clients;
    d->clients = c;
    int over = (int64_t)d->nclients >= d->max_clients;
    d->nclients++;
    pthread_mutex_unlock(&d->mu);
    em_link_set_user(l, c);
    /* a client that goes silent (a frozen driver, a host gone without a
     * word) is dropped after ember.network.timeout, its application with
     * it, as a disconnect would (its driver pings while idle) */
    if (d->link_timeout_ms > 0)
        (void)em_link_set_timeout(l, (int)d->link_timeout_ms);
    *h = (em_link_handler){d, link_recv, link_closed};
    em_log(EMBER_LOG_INFO, LOG_SRC, "client %" PRIu64 " connected", c->id);
    if (over) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "emberd serves at most %" PRId64 " clients at once "
                 "(ember.service.maxClients); try again later",
                 d->max_clients);
        refuse(c, 0, EMBER_ENOSPC, msg);
        em_link_close_async(l);
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------- jobs */

static void job_result(void *ctx, uint64_t job_id, uint32_t partition,
                       const uint8_t *data, size_t len)
{
    job *j = ctx;
    char h[96];
    snprintf(h, sizeof h, "{\"job_id\":%" PRIu64 ",\"partition\":%" PRIu32
             "}", job_id, partition);
    pthread_mutex_lock(&j->c->mu);
    send_locked(j->c, EM_CMSG_RESULT, j->req_id, h, data, len);
    pthread_mutex_unlock(&j->c->mu);
}

/* The application's accumulator values, just before END (ACCUMS). */
static void job_accums(void *ctx, uint64_t job_id, const uint8_t *values,
                       size_t len)
{
    job *j = ctx;
    char h[64];
    snprintf(h, sizeof h, "{\"job_id\":%" PRIu64 "}", job_id);
    pthread_mutex_lock(&j->c->mu);
    send_locked(j->c, EM_CMSG_ACCUMS, j->req_id, h, values, len);
    pthread_mutex_unlock(&j->c->mu);
}

static void job_end(void *ctx, uint64_t job_id, ember_status st,
                    const char *message)
{
    job *j = ctx;
    client *c = j->c;
    emberd *d = c->d;
    json_t *h = json_pack("{s:I,s:i,s:o}", "job_id", (json_int_t)job_id,
                          "status", (int)st, "message",
                          json_text(message ? message : ""));
    char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    pthread_mutex_lock(&c->mu);
    send_locked(c, EM_CMSG_END, j->req_id, text ? text : "{}", NULL, 0);
    pthread_mutex_lock(&d->mu);
    if (em_u64map_get(&d->jobs, job_id) == j)
        em_u64map_del(&d->jobs, job_id);
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_unlock(&c->mu);
    free(text);
    free(j);
    client_unref(c);
}

/* --------------------------------------------------------- state reads */

static void flush_on_loop(void *ctx)
{
    emberd *d = ctx;
    ember_error err;
    if (em_kernel_flush(d->k, &err) != EMBER_OK)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
}

/* Opens the read-only connection once; ro_mu held. */
static ember_status ro_open(emberd *d, ember_error *err)
{
    if (d->ro)
        return EMBER_OK;
    int rc = sqlite3_open_v2(d->db, &d->ro, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        ember_status st = ember_errorf(err, EMBER_EIO,
                                       "cannot read the state store %s: %s",
                                       d->db, d->ro ? sqlite3_errmsg(d->ro)
                                                    : sqlite3_errstr(rc));
        sqlite3_close(d->ro);
        d->ro = NULL;
        return st;
    }
    sqlite3_busy_timeout(d->ro, 5000);
    return EMBER_OK;
}

/* Column i as JSON: integer, text, or null. */
static json_t *col_json(sqlite3_stmt *s, int i)
{
    switch (sqlite3_column_type(s, i)) {
    case SQLITE_INTEGER:
        return json_integer((json_int_t)sqlite3_column_int64(s, i));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(s, i));
    case SQLITE_NULL: return json_null();
    default: return json_text((const char *)sqlite3_column_text(s, i));
    }
}

static const char job_sql[] =
    "SELECT j.job_id, j.app_id, a.name, j.description, j.pool, j.job_group,"
    " j.status, j.error, j.submit_ms, j.end_ms FROM jobs j"
    " LEFT JOIN applications a ON a.app_id = j.app_id";
static const char *const job_cols[] = {"job_id", "app_id", "app",
                                       "description", "pool", "group",
                                       "status", "error", "submit_ms",
                                       "end_ms"};

/* The current row of s as an object: column i under the name cols[i],
 * for the first n columns (NULL when out of memory). */
static json_t *row_json(sqlite3_stmt *s, const char *const *cols, int n)
{
    json_t *o = json_object();
    for (int i = 0; o && i < n; i++)
        json_object_set_new(o, cols[i], col_json(s, i));
    return o;
}

static json_t *job_row(sqlite3_stmt *s)
{
    return row_json(s, job_cols, 10);
}

/* Steps s to its end, appending each row (as row_json) to arr; the last
 * sqlite3_step code (SQLITE_DONE when every row was read). */
static int rows_json(sqlite3_stmt *s, const char *const *cols, int n,
                     json_t *arr)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(arr, row_json(s, cols, n));
    return rc;
}

static ember_status sql_fail(emberd *d, sqlite3_stmt *s, ember_error *err)
{
    ember_status st = ember_errorf(err, EMBER_EIO, "state store %s: %s",
                                   d->db, sqlite3_errmsg(d->ro));
    sqlite3_finalize(s);
    return st;
}

/* The job's row with its stage attempts and task counts; ro_mu held. */
static ember_status job_json(emberd *d, uint64_t id, json_t **out,
                             ember_error *err)
{
    char sql[512];
    sqlite3_stmt *s = NULL;
    json_t *j = NULL;
    *out = NULL;
    snprintf(sql, sizeof sql, "%s WHERE j.job_id = ?", job_sql);
    if (sqlite3_prepare_v2(d->ro, sql, -1, &s, NULL) != SQLITE_OK)
        return sql_fail(d, s, err);
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        j = job_row(s);
    else if (rc != SQLITE_DONE)
        return sql_fail(d, s, err);
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "no job %" PRIu64 " on this emberd", id);
    if (!j)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    json_t *stages = json_array();
    json_t *tasks = json_object();
    json_object_set_new(j, "stages", stages);
    json_object_set_new(j, "tasks", tasks);
    if (sqlite3_prepare_v2(d->ro,
                           "SELECT stage_id, attempt, kind, name, num_tasks,"
                           " status, failure FROM stage_attempts WHERE"
                           " job_id = ? ORDER BY stage_id, attempt",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    static const char *const stage_cols[] = {"stage_id", "attempt", "kind",
                                             "name", "tasks", "status",
                                             "failure"};
    if ((rc = rows_json(s, stage_cols, 7, stages)) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(d->ro,
                           "SELECT lower(t.status), COUNT(*) FROM tasks t"
                           " JOIN stage_attempts s ON s.stage_id = t.stage_id"
                           " AND s.attempt = t.stage_attempt WHERE s.job_id"
                           " = ? GROUP BY t.status",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    int64_t total = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        int64_t n = sqlite3_column_int64(s, 1);
        total += n;
        json_object_set_new(tasks, k ? k : "unknown",
                            json_integer((json_int_t)n));
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    json_object_set_new(tasks, "total", json_integer((json_int_t)total));
    /* the application's named accumulators, as the kernel last merged
     * them (docs/engine.md "Accumulators") */
    json_t *accs = json_array();
    json_object_set_new(j, "accumulators", accs);
    if (sqlite3_prepare_v2(d->ro,
                           "SELECT acc_id, name, kind, value FROM"
                           " accumulators WHERE app_id = (SELECT app_id FROM"
                           " jobs WHERE job_id = ?) AND name IS NOT NULL"
                           " ORDER BY acc_id",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    static const char *const acc_cols[] = {"id", "name", "kind", "value"};
    if ((rc = rows_json(s, acc_cols, 4, accs)) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    *out = j;
    return EMBER_OK;
fail:
    json_decref(j);
    return sql_fail(d, s, err);
}

/* Every job (running only, with running) as an array; ro_mu held. */
static ember_status jobs_json(emberd *d, int running, json_t **out,
                              ember_error *err)
{
    char sql[512];
    sqlite3_stmt *s = NULL;
    *out = NULL;
    snprintf(sql, sizeof sql, "%s%s ORDER BY j.job_id", job_sql,
             running ? " WHERE j.status = 'RUNNING'" : "");
    if (sqlite3_prepare_v2(d->ro, sql, -1, &s, NULL) != SQLITE_OK)
        return sql_fail(d, s, err);
    json_t *a = json_array();
    int rc;
    while (a && (rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(a, job_row(s));
    if (!a) {
        sqlite3_finalize(s);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    if (rc != SQLITE_DONE) {
        json_decref(a);
        return sql_fail(d, s, err);
    }
    sqlite3_finalize(s);
    *out = a;
    return EMBER_OK;
}

/* Sends doc (taken) as an INFO body; kind says what it is. */
static void reply_info(client *c, uint64_t req, const char *kind,
                       json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t n = json_is_array(doc) ? json_array_size(doc) : 1;
    json_decref(doc);
    if (!text) {
        refuse(c, req, EMBER_ENOMEM, "out of memory");
        return;
    }
    reply(c, EM_CMSG_INFO, req,
          json_pack("{s:s,s:I}", "kind", kind, "count", (json_int_t)n), text,
          strlen(text));
    free(text);
}

/* ------------------------------------------------------------ plugins */

/* The sha of a name already shipped, or NULL; plugin_mu held. */
static const shipped *shipped_by_name(const emberd *d, const char *name)
{
    for (size_t i = 0; i < d->nshipped; i++)
        if (strcmp(d->shipped[i].name, name) == 0)
            return &d->shipped[i];
    return NULL;
}

/* The loaded plugin named name, or NULL. */
static const em_plugin *loaded_plugin(const emberd *d, const char *name)
{
    size_t n = em_registry_count(d->registry);
    for (size_t i = 0; i < n; i++) {
        const em_plugin *p = em_registry_at(d->registry, i);
        if (p && strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

/*
 * Whether the service has plugin `name` with digest sha: 1 yes, 0 no (it
 * may be shipped), or an error when another file of that name is loaded.
 * plugin_mu held.
 */
static ember_status plugin_have(emberd *d, const char *name, const char *sha,
                                int *have, ember_error *err)
{
    *have = 0;
    const shipped *sh = shipped_by_name(d, name);
    if (sh) {
        if (strcmp(sh->sha, sha) == 0) {
            *have = 1;
            return EMBER_OK;
        }
        return ember_errorf(err, EMBER_EEXIST,
                            "plugin '%s' is already loaded on emberd with "
                            "other contents (sha256 %s, yours %s); a "
                            "plugin's name stays bound to one file until "
                            "emberd restarts", name, sh->sha, sha);
    }
    const em_plugin *p = loaded_plugin(d, name);
    if (!p)
        return EMBER_OK;
    char theirs[EM_SHA256_HEX_LEN + 1];
    ember_status st = em_sha256_file_hex(p->path, theirs, err);
    if (st != EMBER_OK)
        return st;
    if (strcmp(theirs, sha) == 0) {
        *have = 1;
        return EMBER_OK;
    }
    return ember_errorf(err, EMBER_EEXIST,
                        "plugin '%s' is already loaded on emberd from %s "
                        "with other contents (sha256 %s, yours %s)", name,
                        p->path, theirs, sha);
}

static ember_status plugin_store(emberd *d, client *c, const char *name,
                                 const char *sha, em_bytes body,
                                 ember_error *err)
{
    char final[PATH_MAX], tmp[PATH_MAX];
    if ((size_t)snprintf(final, sizeof final, "%s/%s.so", d->plugin_dir,
                         sha) >= sizeof final ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%" PRIu64,
                         d->plugin_dir, sha, c->id) >= sizeof tmp)
        return ember_errorf(err, EMBER_EINVAL, "plugin directory path too "
                            "long");
    /* These bytes are here already (the digest names the file): nothing
     * to do, and the loaded file must never be replaced or removed. */
    for (size_t i = 0; i < d->nshipped; i++)
        if (strcmp(d->shipped[i].sha, sha) == 0)
            return EMBER_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return ember_errorf(err, EMBER_EIO, "cannot write %s: %s", tmp,
                            strerror(errno));
    int ok = body.len == 0 || fwrite(body.data, 1, body.len, f) == body.len;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        ember_status st = ember_errorf(err, EMBER_EIO, "cannot store %s: %s",
                                       tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    /* Load from the temporary name and publish under the digest only once
     * it loaded: executor processes rescan the directory, so a refused
     * file never appears there, and nothing already there is touched. */
    const em_plugin *p = NULL;
    ember_status st = em_registry_load(d->registry, tmp, &p, err);
    if (st != EMBER_OK) {
        unlink(tmp);
        return st;
    }
    if (rename(tmp, final) != 0) {
        em_log(EMBER_LOG_ERROR, LOG_SRC, "cannot publish %s for executor "
               "processes: %s", final, strerror(errno));
        unlink(tmp);
    }
    if (strcmp(p->name, name) != 0)
        em_log(EMBER_LOG_WARN, LOG_SRC,
               "client %" PRIu64 " shipped plugin '%s' as '%s'", c->id,
               p->name, name);
    shipped *grown = realloc(d->shipped, (d->nshipped + 1) * sizeof *grown);
    if (grown) {
        d->shipped = grown;
        shipped *s = &d->shipped[d->nshipped++];
        snprintf(s->name, sizeof s->name, "%s", p->name);
        snprintf(s->sha, sizeof s->sha, "%s", sha);
    }
    em_log(EMBER_LOG_INFO, LOG_SRC, "loaded plugin '%s' %s shipped by client "
           "%" PRIu64 " (%s)", p->name, p->version, c->id, final);
    return EMBER_OK;
}

/* ---------------------------------------------------------- requests */

static ember_status on_hello(client *c, const em_cmsg *m, const json_t *h,
                             ember_error *err)
{
    emberd *d = c->d;
    const char *app, *version;
    ember_status st;
    if (c->has_app)
        return ember_errorf(err, EMBER_EINVAL,
                            "HELLO: this connection is already application "
                            "%" PRIu64, c->app_id);
    if ((st = get_str(h, "HELLO", "app", 0, 255, &app, err)) != EMBER_OK ||
        (st = get_str(h, "HELLO", "version", 0, 64, &version, err)) !=
            EMBER_OK)
        return st;
    if ((st = em_kernel_app_open(d->k, app, &c->app_id, err)) != EMBER_OK)
        return st;
    c->has_app = 1;
    snprintf(c->app, sizeof c->app, "%s", app);
    em_log(EMBER_LOG_INFO, LOG_SRC, "client %" PRIu64 ": application %"
           PRIu64 " '%s' (ember %s)", c->id, c->app_id, app, version);
    reply(c, EM_CMSG_WELCOME, m->req_id,
          json_pack("{s:I,s:I,s:I,s:s}", "app_id", (json_int_t)c->app_id,
                    "slots", (json_int_t)d->slots, "default_parallelism",
                    (json_int_t)d->default_parallelism, "master", d->master),
          NULL, 0);
    return EMBER_OK;
}

static ember_status plugin_fields(const json_t *h, const char *what,
                                  const char **name, const char **sha,
                                  ember_error *err)
{
    ember_status st;
    if ((st = get_str(h, what, "name", 0, 255, name, err)) != EMBER_OK ||
        (st = get_str(h, what, "sha256", 0, EM_SHA256_HEX_LEN, sha, err)) !=
            EMBER_OK)
        return st;
    if (!em_sha256_is_hex(*sha))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: header field 'sha256' must be 64 lowercase "
                            "hex digits", what);
    return EMBER_OK;
}

static ember_status on_plugin_have(client *c, const em_cmsg *m,
                                   const json_t *h, ember_error *err)
{
    emberd *d = c->d;
    const char *name, *sha;
    int have = 0;
    ember_status st = plugin_fields(h, "PLUGIN_HAVE", &name, &sha, err);
    if (st != EMBER_OK)
        return st;
    pthread_mutex_lock(&d->plugin_mu);
    st = plugin_have(d, name, sha, &have, err);
    pthread_mutex_unlock(&d->plugin_mu);
    if (st != EMBER_OK)
        return st;
    reply(c, EM_CMSG_PLUGIN_NEED, m->req_id,
          json_pack("{s:b}", "need", !have), NULL, 0);
    return EMBER_OK;
}

static ember_status on_plugin_put(client *c, const em_cmsg *m,
                                  const json_t *h, ember_error *err)
{
    emberd *d = c->d;
    const char *name, *sha;
    char got[EM_SHA256_HEX_LEN + 1];
    int have = 0;
    ember_status st = plugin_fields(h, "PLUGIN_PUT", &name, &sha, err);
    if (st != EMBER_OK)
        return st;
    em_sha256_hex(m->body.data, m->body.len, got);
    if (strcmp(got, sha) != 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "PLUGIN_PUT '%s': the body's sha256 is %s, not "
                            "the %s announced", name, got, sha);
    pthread_mutex_lock(&d->plugin_mu);
    st = plugin_have(d, name, sha, &have, err);
    if (st == EMBER_OK && !have)
        st = plugin_store(d, c, name, sha, m->body, err);
    pthread_mutex_unlock(&d->plugin_mu);
    if (st != EMBER_OK)
        return st;
    reply(c, EM_CMSG_OK, m->req_id, json_object(), NULL, 0);
    return EMBER_OK;
}

/* The splits buffer of one SPLITS request: a heap buffer that refuses to
 * grow once it holds more than max records or would pass max_bytes, so a
 * source expanding a huge input fails at its next growth (growth doubles:
 * a few times in all) instead of piling everything up. */
typedef struct splits_cap {
    uint64_t max;      /* records */
    size_t max_bytes;
    size_t seen;       /* bytes of whole records counted so far */
    uint64_t records;  /* records in data[0..seen) */
    int hit;           /* 1: too many records, 2: too many bytes */
} splits_cap;

static ember_status splits_grow(ember_buf *b, size_t min_cap)
{
    splits_cap *sc = b->owner;
    if (min_cap == 0)
        return ember_buf_heap_grow(b, 0);
    /* Count the records appended since the last growth; the last frame
     * may still be half written. (No data yet: nothing to count.) */
    size_t at = sc->seen;
    if (at > b->len) /* the source took records back: count again */
        at = 0, sc->records = 0;
    while (b->data && at < b->len) {
        const uint8_t *p = b->data + at, *end = b->data + b->len;
        uint64_t n;
        if (ember_uvarint_get(&p, end, &n) != EMBER_OK ||
            n > (uint64_t)(end - p))
            break;
        at = (size_t)(p - b->data) + (size_t)n;
        sc->records++;
    }
    sc->seen = at;
    if (sc->records > sc->max) {
        sc->hit = 1;
        return EMBER_ENOSPC;
    }
    if (min_cap > sc->max_bytes) {
        sc->hit = 2;
        return EMBER_ENOSPC;
    }
    return ember_buf_heap_grow(b, min_cap);
}

static ember_status on_splits(client *c, const em_cmsg *m, const json_t *h,
                              ember_error *err)
{
    emberd *d = c->d;
    const char *source;
    int64_t minp = 0;
    ember_status st;
    if ((st = get_str(h, "SPLITS", "source", 0, 255, &source, err)) !=
            EMBER_OK ||
        (st = get_int(h, "SPLITS", "min_partitions", 1, 1000000, &minp,
                      err)) != EMBER_OK)
        return st;
    const em_component *comp =
        em_registry_find(d->registry, EMBER_KIND_SOURCE, source);
    if (!comp)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "SPLITS: no source '%s' is loaded on emberd",
                            source);
    const ember_source_vtable *vt = comp->vtable;
    splits_cap cap = {d->max_splits, SPLITS_MAX_BYTES, 0, 0, 0};
    ember_buf splits = ember_buf_heap();
    splits.grow = splits_grow;
    splits.owner = &cap;
    uint64_t count = 0;
    st = vt->plan(em_host_api(), m->body.data, m->body.len, (uint32_t)minp,
                  &splits, &count, err);
    if (st == EMBER_OK && count > d->max_splits)
        cap.hit = 1;
    if (st == EMBER_OK && !cap.hit && splits.len > SPLITS_MAX_BYTES)
        cap.hit = 2;
    /* The source's own message would only say that appending failed. */
    if (cap.hit == 1)
        st = ember_errorf(err, EMBER_ENOSPC,
                          "SPLITS: source '%s' expands this input to more "
                          "than %" PRIu64 " splits, the most one request "
                          "may have (emberd --max-splits); name fewer "
                          "files or ask for fewer partitions",
                          source, d->max_splits);
    else if (cap.hit == 2)
        st = ember_errorf(err, EMBER_ENOSPC,
                          "SPLITS: source '%s' expands this input to more "
                          "than %zu bytes of splits, the most one request "
                          "may have; name fewer files",
                          source, SPLITS_MAX_BYTES);
    else if (st == EMBER_OK)
        reply(c, EM_CMSG_SPLITS_REPLY, m->req_id,
              json_pack("{s:I}", "count", (json_int_t)count), splits.data,
              splits.len);
    ember_buf_release(&splits);
    return st;
}

static ember_status on_submit(client *c, const em_cmsg *m, const json_t *h,
                              ember_error *err)
{
    emberd *d = c->d;
    int64_t dataset = 0;
    const char *pool, *group, *desc;
    json_t *parts_j, *action_j;
    uint32_t *parts = NULL;
    size_t nparts = 0;
    char *action = NULL;
    job *j = NULL;
    ember_status st;
    if (!c->has_app)
        return ember_errorf(err, EMBER_EINVAL,
                            "SUBMIT: this connection has no application "
                            "(send HELLO first)");
    if ((st = get_int(h, "SUBMIT", "dataset", 0, INT64_MAX, &dataset,
                      err)) != EMBER_OK ||
        (st = get_str(h, "SUBMIT", "pool", 1, 255, &pool, err)) !=
            EMBER_OK ||
        (st = get_str(h, "SUBMIT", "group", 1, 255, &group, err)) !=
            EMBER_OK ||
        (st = get_str(h, "SUBMIT", "description", 1, 4096, &desc, err)) !=
            EMBER_OK ||
        (st = need_field(h, "SUBMIT", "partitions", &parts_j, err)) !=
            EMBER_OK ||
        (st = need_field(h, "SUBMIT", "action", &action_j, err)) != EMBER_OK)
        return st;
    if (!json_is_null(parts_j)) {
        if (!json_is_array(parts_j) || json_array_size(parts_j) == 0)
            return ember_errorf(err, EMBER_EINVAL,
                                "SUBMIT: header field 'partitions' must be "
                                "a non-empty array of partition numbers, or "
                                "null");
        nparts = json_array_size(parts_j);
        if (!(parts = malloc(nparts * sizeof *parts)))
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        for (size_t i = 0; i < nparts; i++) {
            json_t *v = json_array_get(parts_j, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > UINT32_MAX) {
                st = ember_errorf(err, EMBER_EINVAL,
                                  "SUBMIT: partitions[%zu] must be an "
                                  "integer from 0 to %" PRIu32, i,
                                  UINT32_MAX);
                goto out;
            }
            parts[i] = (uint32_t)json_integer_value(v);
        }
    }
    if (!json_is_null(action_j)) {
        if (!json_is_object(action_j)) {
            st = ember_errorf(err, EMBER_EINVAL,
                              "SUBMIT: header field 'action' must be a JSON "
                              "object, or null");
            goto out;
        }
        if (!(action = json_dumps(action_j, JSON_COMPACT))) {
            st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (m->body.len == 0) {
        st = ember_errorf(err, EMBER_EINVAL,
                          "SUBMIT: the body (the plan) is empty");
        goto out;
    }
    if (!(j = calloc(1, sizeof *j))) {
        st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto out;
    }
    j->c = c;
    j->req_id = m->req_id;
    em_job_spec spec = {
        .app_id = c->app_id,
        .plan = (const char *)m->body.data,
        .plan_len = m->body.len,
        .dataset = (uint64_t)dataset,
        .partitions = parts,
        .npartitions = (uint32_t)nparts,
        .pool = pool,
        .group = group,
        .description = desc,
        .action = action,
        .action_len = action ? strlen(action) : 0,
        .listener = {j, job_result, job_end, job_accums},
    };
    pthread_mutex_lock(&c->mu);
    st = em_kernel_submit(d->k, &spec, &j->job_id, err);
    if (st == EMBER_OK) {
        pthread_mutex_lock(&d->mu);
        c->refs++;
        if (em_u64map_put(&d->jobs, j->job_id, j) != EMBER_OK)
            em_log(EMBER_LOG_ERROR, LOG_SRC, "out of memory: job %" PRIu64
                   " cannot be cancelled by id", j->job_id);
        pthread_mutex_unlock(&d->mu);
        char hj[64];
        snprintf(hj, sizeof hj, "{\"job_id\":%" PRIu64 "}", j->job_id);
        send_locked(c, EM_CMSG_JOB, m->req_id, hj, NULL, 0);
        em_log(EMBER_LOG_INFO, LOG_SRC, "client %" PRIu64 ": job %" PRIu64
               " submitted (application %" PRIu64 ", pool %s)", c->id,
               j->job_id, c->app_id, pool ? pool : "default");
        j = NULL; /* the listener owns it now */
    }
    pthread_mutex_unlock(&c->mu);
out:
    free(j);
    free(action);
    free(parts);
    return st;
}

/* Whether job id is in flight. */
static int job_active(emberd *d, uint64_t id)
{
    pthread_mutex_lock(&d->mu);
    int active = em_u64map_get(&d->jobs, id) != NULL;
    pthread_mutex_unlock(&d->mu);
    return active;
}

static ember_status on_cancel(client *c, const em_cmsg *m, const json_t *h,
                              ember_error *err)
{
    emberd *d = c->d;
    int64_t id = 0;
    ember_status st = get_int(h, "CANCEL", "job_id", 0, INT64_MAX, &id, err);
    if (st != EMBER_OK)
        return st;
    if (!job_active(d, (uint64_t)id)) {
        /* Not ours to cancel: say whether it ended or never existed. */
        json_t *j = NULL;
        em_server_call(d->server, flush_on_loop, d);
        pthread_mutex_lock(&d->ro_mu);
        st = ro_open(d, err);
        if (st == EMBER_OK)
            st = job_json(d, (uint64_t)id, &j, err);
        pthread_mutex_unlock(&d->ro_mu);
        if (st != EMBER_OK)
            return st;
        json_t *status = json_object_get(j, "status");
        st = ember_errorf(err, EMBER_EINVAL,
                          "job %" PRId64 " is not running (%s)", id,
                          json_is_string(status) ? json_string_value(status)
                                                 : "ended");
        json_decref(j);
        return st;
    }
    char reason[128];
    snprintf(reason, sizeof reason, "cancelled by client %" PRIu64, c->id);
    if ((st = em_kernel_cancel_job(d->k, (uint64_t)id, reason)) != EMBER_OK)
        return ember_errorf(err, st, "CANCEL: %s", ember_status_name(st));
    em_log(EMBER_LOG_INFO, LOG_SRC, "client %" PRIu64 ": job %" PRId64
           " cancelled", c->id, id);
    reply(c, EM_CMSG_OK, m->req_id, json_object(), NULL, 0);
    return EMBER_OK;
}

/* UNPERSIST: the executors drop the blocks of a dataset of the client's
 * own application. */
static ember_status on_unpersist(client *c, const em_cmsg *m,
                                 const json_t *h, ember_error *err)
{
    int64_t id = 0;
    ember_status st = get_int(h, "UNPERSIST", "dataset", 0, INT64_MAX, &id,
                              err);
    if (st != EMBER_OK)
        return st;
    if ((st = em_kernel_unpersist(c->d->k, c->app_id, (uint64_t)id)) !=
        EMBER_OK)
        return ember_errorf(err, st, "UNPERSIST: %s", ember_status_name(st));
    reply(c, EM_CMSG_OK, m->req_id, json_object(), NULL, 0);
    return EMBER_OK;
}

/* BROADCAST: keeps a broadcast of the client's application (the body)
 * for its executors to fetch. */
static ember_status on_broadcast(client *c, const em_cmsg *m,
                                 const json_t *h, ember_error *err)
{
    int64_t id = 0;
    ember_status st = get_int(h, "BROADCAST", "id", 1, INT64_MAX, &id, err);
    if (st != EMBER_OK)
        return st;
    if (!c->has_app)
        return ember_errorf(err, EMBER_EINVAL, "BROADCAST: send HELLO first");
    if ((st = em_server_broadcast_put(c->d->server, c->app_id, (uint64_t)id,
                                      m->body.data, m->body.len, err)) !=
        EMBER_OK)
        return st;
    reply(c, EM_CMSG_OK, m->req_id, json_object(), NULL, 0);
    return EMBER_OK;
}

/* BROADCAST_DROP: unpersists or destroys one of the client's
 * application's broadcasts (the executors are told before the OK). */
static ember_status on_broadcast_drop(client *c, const em_cmsg *m,
                                      const json_t *h, ember_error *err)
{
    int64_t id = 0;
    const char *mode = NULL;
    ember_status st = get_int(h, "BROADCAST_DROP", "id", 1, INT64_MAX, &id,
                              err);
    if (st == EMBER_OK)
        st = get_str(h, "BROADCAST_DROP", "mode", 0, 16, &mode, err);
    if (st != EMBER_OK)
        return st;
    int destroy = strcmp(mode, "destroy") == 0;
    if (!destroy && strcmp(mode, "unpersist") != 0)
        return ember_errorf(err, EMBER_EINVAL, "BROADCAST_DROP: header field "
                            "'mode' must be \"unpersist\" or \"destroy\"");
    if (!c->has_app)
        return ember_errorf(err, EMBER_EINVAL,
                            "BROADCAST_DROP: send HELLO first");
    if ((st = em_server_broadcast_drop(c->d->server, c->app_id, (uint64_t)id,
                                       destroy, err)) != EMBER_OK)
        return st;
    reply(c, EM_CMSG_OK, m->req_id, json_object(), NULL, 0);
    return EMBER_OK;
}

static ember_status on_status(client *c, const em_cmsg *m, const json_t *h,
                              ember_error *err)
{
    emberd *d = c->d;
    int64_t id = 0;
    json_t *j = NULL;
    ember_status st = get_int(h, "STATUS", "job_id", 0, INT64_MAX, &id, err);
    if (st != EMBER_OK)
        return st;
    /* What the loop wrote so far becomes visible to other connections. */
    em_server_call(d->server, flush_on_loop, d);
    pthread_mutex_lock(&d->ro_mu);
    st = ro_open(d, err);
    if (st == EMBER_OK)
        st = job_json(d, (uint64_t)id, &j, err);
    pthread_mutex_unlock(&d->ro_mu);
    if (st == EMBER_OK)
        reply_info(c, m->req_id, "job", j);
    return st;
}

static ember_status on_list(client *c, const em_cmsg *m, const json_t *h,
                            ember_error *err)
{
    emberd *d = c->d;
    int running = 0;
    json_t *a = NULL;
    ember_status st = get_bool(h, "LIST", "running", &running, err);
    if (st != EMBER_OK)
        return st;
    em_server_call(d->server, flush_on_loop, d);
    pthread_mutex_lock(&d->ro_mu);
    st = ro_open(d, err);
    if (st == EMBER_OK)
        st = jobs_json(d, running, &a, err);
    pthread_mutex_unlock(&d->ro_mu);
    if (st == EMBER_OK)
        reply_info(c, m->req_id, "jobs", a);
    return st;
}

/* Handles one message of c (a worker, c busy). */
static void handle_message(client *c, const uint8_t *data, size_t len)
{
    em_cmsg m;
    ember_error err = {0};
    json_t *h = NULL;
    ember_status st = em_cmsg_decode(data, len, &m, &err);
    if (st != EMBER_OK) {
        refuse(c, 0, st, err.msg);
        return;
    }
    const char *what = em_cmsg_type_name(m.type);
    if (m.header.len == 0) {
        h = json_object();
    } else {
        json_error_t je;
        h = json_loadb((const char *)m.header.data, m.header.len,
                       JSON_REJECT_DUPLICATES, &je);
        if (!h) {
            ember_errorf(&err, EMBER_EINVAL,
                         "%s: the header is not JSON: %s (line %d, column "
                         "%d)", what, je.text, je.line, je.column);
            refuse(c, m.req_id, EMBER_EINVAL, err.msg);
            return;
        }
    }
    if (!json_is_object(h)) {
        ember_errorf(&err, EMBER_EINVAL,
                     "%s: the header is not a JSON object", what);
        st = EMBER_EINVAL;
        goto done;
    }
    switch (m.type) {
    case EM_CMSG_HELLO: st = on_hello(c, &m, h, &err); break;
    case EM_CMSG_PLUGIN_HAVE:
    case EM_CMSG_PLUGIN_PUT:
    case EM_CMSG_SPLITS:
        /* work that costs the service (disk, dlopen, file listing) only
         * for a client that said who it is */
        if (!c->has_app) {
            st = ember_errorf(&err, EMBER_EINVAL,
                              "%s: send HELLO first", what);
            break;
        }
        st = m.type == EM_CMSG_SPLITS ? on_splits(c, &m, h, &err)
             : m.type == EM_CMSG_PLUGIN_PUT
                 ? on_plugin_put(c, &m, h, &err)
                 : on_plugin_have(c, &m, h, &err);
        break;
    case EM_CMSG_SUBMIT: st = on_submit(c, &m, h, &err); break;
    case EM_CMSG_CANCEL: st = on_cancel(c, &m, h, &err); break;
    case EM_CMSG_STATUS: st = on_status(c, &m, h, &err); break;
    case EM_CMSG_LIST: st = on_list(c, &m, h, &err); break;
    case EM_CMSG_UNPERSIST: st = on_unpersist(c, &m, h, &err); break;
    case EM_CMSG_BROADCAST: st = on_broadcast(c, &m, h, &err); break;
    case EM_CMSG_BROADCAST_DROP:
        st = on_broadcast_drop(c, &m, h, &err);
        break;
    default:
        st = ember_errorf(&err, EMBER_EINVAL,
                          "%s is not a request (emberd sends it)", what);
        break;
    }
done:
    if (st != EMBER_OK)
        refuse(c, m.req_id, st, err.msg[0] ? err.msg : ember_status_name(st));
    json_decref(h);
}

/* The link is gone: close the application, free the link, drop its
 * reference (a worker, c busy; the last item of c). */
static void handle_closed(client *c)
{
    emberd *d = c->d;
    if (c->has_app) {
        /* Cancels its running jobs; their ends drop their references. */
        em_kernel_app_close(d->k, c->app_id);
        em_server_broadcast_app_close(d->server, c->app_id);
        c->has_app = 0;
    }
    pthread_mutex_lock(&c->mu);
    em_link *l = c->link;
    c->link = NULL;
    pthread_mutex_unlock(&c->mu);
    em_link_close(l);
    pthread_mutex_lock(&d->mu);
    d->nclients--;
    uint64_t discarded = c->discarded;
    pthread_mutex_unlock(&d->mu);
    if (discarded)
        em_log(EMBER_LOG_WARN, LOG_SRC,
               "client %" PRIu64 ": %" PRIu64 " messages sent after its "
               "queue limit were discarded", c->id, discarded);
}

/* c passed its queue limit (it was told): start closing its link; its
 * end follows as a "closed" item. */
static void handle_refused(client *c)
{
    pthread_mutex_lock(&c->mu);
    em_link_close_async(c->link);
    pthread_mutex_unlock(&c->mu);
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    emberd *d = wa->d;
    lane *ln = &d->lanes[wa->lane];
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!ln->head && !d->stopping)
            pthread_cond_wait(&ln->cv, &d->mu);
        if (d->stopping)
            break;
        client *c = ln->head;
        ln->head = c->rnext;
        if (!ln->head)
            ln->tail = NULL;
        c->ready = 0;
        qitem *q = c->q_head;
        c->q_head = q->next;
        if (!c->q_head)
            c->q_tail = NULL;
        if (q->kind == Q_MSG)
            c->waiting--;
        c->busy = 1;
        pthread_mutex_unlock(&d->mu);

        int kind = q->kind;
        size_t len = q->len;
        if (kind == Q_CLOSED)
            handle_closed(c);
        else if (kind == Q_REFUSED)
            handle_refused(c);
        else
            handle_message(c, q->data, len);
        free(q->data);
        free(q);

        pthread_mutex_lock(&d->mu);
        c->busy = 0;
        if (kind == Q_MSG) {
            c->qbytes -= len;
            d->queued -= len;
        }
        if (kind == Q_CLOSED) {
            pthread_mutex_unlock(&d->mu);
            client_unref(c); /* the link's reference */
            pthread_mutex_lock(&d->mu);
        } else {
            make_ready_locked(d, c);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---------------------------------------------------------- start/stop */

static void print_setting(void *ctx, const char *key, const char *value,
                          const char *origin)
{
    (void)ctx;
    if (value)
        fprintf(stderr, "%s = %s (%s)\n", key, value, origin);
}

static void on_refused(void *ctx, const char *path, const ember_error *e)
{
    (void)ctx;
    em_log(EMBER_LOG_WARN, LOG_SRC, "plugin %s not loaded: %s", path, e->msg);
}

/* The directory of this program. */
static ember_status exe_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0)
        return EMBER_ENOTFOUND;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return EMBER_ENOTFOUND;
    *slash = '\0';
    return EMBER_OK;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The plugin directories: the in-tree or installed one beside this
 * program, $EMBER_PLUGIN_PATH, ember.plugins.path (as a session). */
static void load_plugin_dirs(emberd *d)
{
    char bin[PATH_MAX], dir[PATH_MAX + 64];
    if (getenv("EMBER_PLUGIN_PATH") == NULL &&
        exe_dir(bin, sizeof bin) == EMBER_OK) {
        snprintf(dir, sizeof dir, "%s/%s/ember/plugins", bin,
                 EMBER_BIN_TO_LIB);
        if (!is_dir(dir))
            snprintf(dir, sizeof dir, "%s/../lib/ember/plugins", bin);
        if (is_dir(dir))
            em_registry_load_dir(d->registry, dir, on_refused, NULL, NULL);
    }
    char path[4096];
    size_t len;
    const char *paths[2] = {getenv("EMBER_PLUGIN_PATH"), NULL};
    if (em_conf_get(d->conf, "ember.plugins.path", path, sizeof path, &len) ==
        EMBER_OK)
        paths[1] = path;
    for (int k = 0; k < 2; k++)
        for (const char *p = paths[k]; p && *p;) {
            const char *colon = strchr(p, ':');
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            if (n > 0 && n < sizeof dir) {
                memcpy(dir, p, n);
                dir[n] = '\0';
                ember_error e;
                if (em_registry_load_dir(d->registry, dir, on_refused, NULL,
                                         &e) != EMBER_OK)
                    em_log(EMBER_LOG_WARN, LOG_SRC, "plugin directory %s: %s",
                           dir, e.msg);
            }
            p = colon ? colon + 1 : NULL;
        }
}

/* mkdir -p. */
static ember_status make_dirs(const char *path, ember_error *err)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", path) >= sizeof tmp)
        return ember_errorf(err, EMBER_EINVAL, "--state: path too long");
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return ember_errorf(err, EMBER_EIO, "cannot create %s: %s", tmp,
                                strerror(errno));
        *p = c;
        if (!c)
            break;
    }
    if (!is_dir(path))
        return ember_errorf(err, EMBER_EIO, "--state %s is not a directory",
                            path);
    return EMBER_OK;
}

/* Empties the shipped-plugin directory: a plugin shipped to an earlier
 * emberd is shipped again by the client that needs it (its name may
 * since stand for other contents). */
static ember_status reset_plugin_dir(emberd *d, ember_error *err)
{
    ember_status st = make_dirs(d->plugin_dir, err);
    if (st != EMBER_OK)
        return st;
    DIR *dir = opendir(d->plugin_dir);
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[PATH_MAX + 300];
        if ((n > 3 && strcmp(e->d_name + n - 3, ".so") == 0) ||
            strncmp(e->d_name, ".tmp-", 5) == 0) {
            snprintf(path, sizeof path, "%s/%s", d->plugin_dir, e->d_name);
            unlink(path);
        }
    }
    if (dir)
        closedir(dir);
    return EMBER_OK;
}

/* Executor processes load DIR/executor.conf (ember.executor.confFile): the
 * service's --conf flags and defaults file reach them as a driver's do. */
static void executor_conf_file(emberd *d)
{
    char path[PATH_MAX + 32];
    ember_error err;
    snprintf(path, sizeof path, "%s/executor.conf", d->state_dir);
    if (em_conf_write_file(d->conf, path, "ember.executor.confFile", &err) !=
        EMBER_OK) {
        em_log(EMBER_LOG_WARN, LOG_SRC, "%s", err.msg);
        return;
    }
    em_conf_set(d->conf, "ember.executor.confFile", path, "emberd", NULL);
}

static ember_status read_conf(emberd *d, const emberd_opts *o,
                              ember_error *err)
{
    ember_status st = em_conf_create(&d->conf);
    if (st != EMBER_OK)
        return ember_errorf(err, st, "out of memory");
    if ((st = em_conf_load_layers(d->conf, o->properties_file,
                                  o->conf_flags, err)) != EMBER_OK)
        return st;
    if (o->master &&
        (st = em_conf_set(d->conf, "ember.master", o->master, "--master",
                          err)) != EMBER_OK)
        return st;
    if ((st = em_conf_validate(d->conf, err)) != EMBER_OK)
        return st;
    size_t len;
    if (em_conf_get(d->conf, "ember.master", d->master, sizeof d->master,
                    &len) != EMBER_OK)
        snprintf(d->master, sizeof d->master, "local[*]");
    if (strncmp(d->master, "ember://", 8) == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "master '%s': emberd runs the kernel itself; "
                            "give it a cluster manager's master URL "
                            "(local[N], local-cluster[E,C,M], ...)",
                            d->master);
    d->link_timeout_ms = 120000;
    if ((st = em_conf_get_duration_ms(d->conf, "ember.network.timeout",
                                      120000, &d->link_timeout_ms, err)) !=
        EMBER_OK)
        return st;
    if (d->link_timeout_ms > INT_MAX)
        d->link_timeout_ms = INT_MAX;
    long failures = 0;
    d->slots = em_master_slots(d->master, &failures);
    if (strncmp(d->master, "local", 5) == 0 &&
        strncmp(d->master, "local-cluster", 13) != 0) {
        /* Spark: local mode does not retry tasks unless local[N,F]. */
        char v[32];
        snprintf(v, sizeof v, "%ld", failures > 0 ? failures : 1);
        if ((st = em_conf_set(d->conf, "ember.task.maxFailures", v,
                              "master URL", err)) != EMBER_OK)
            return st;
    }
    if (o->verbose)
        em_conf_each_effective(d->conf, print_setting, NULL);
    int64_t v;
    if ((st = em_conf_get_int(d->conf, "ember.service.maxClients", 256, 1,
                              1000000, &d->max_clients, err)) != EMBER_OK)
        return st;
    if ((st = em_conf_get_int(d->conf, "ember.default.parallelism", d->slots,
                              1, 1000000, &v, err)) != EMBER_OK)
        return st;
    d->default_parallelism = (uint32_t)v;
    /* local-cluster starts ember-executor: the one beside this program. */
    char cmd[PATH_MAX], bin[PATH_MAX];
    if (em_conf_get(d->conf, "ember.executor.command", cmd, sizeof cmd,
                    &len) != EMBER_OK &&
        exe_dir(bin, sizeof bin) == EMBER_OK &&
        (size_t)snprintf(cmd, sizeof cmd, "%s/ember-executor", bin) <
            sizeof cmd)
        em_conf_set(d->conf, "ember.executor.command", cmd, "default", NULL);
    return EMBER_OK;
}

ember_status emberd_start(emberd **out, const emberd_opts *o,
                          ember_error *err)
{
    *out = NULL;
    if (!o || !o->listen || !o->state_dir)
        return ember_errorf(err, EMBER_EINVAL,
                            "emberd: --listen and --state are required");
    emberd *d = calloc(1, sizeof *d);
    if (!d)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    pthread_mutex_init(&d->mu, NULL);
    for (int i = 0; i < NLANES; i++)
        pthread_cond_init(&d->lanes[i].cv, NULL);
    pthread_mutex_init(&d->plugin_mu, NULL);
    pthread_mutex_init(&d->ro_mu, NULL);
    ember_status st;
    if (o->verbose)
        em_log_set_level(EMBER_LOG_INFO);
    snprintf(d->listen, sizeof d->listen, "%s", o->listen);
    d->queue_max = o->max_client_queue ? o->max_client_queue
                                       : EMBERD_MAX_CLIENT_QUEUE;
    d->max_splits = o->max_splits ? o->max_splits : EMBERD_MAX_SPLITS;
    if ((st = read_conf(d, o, err)) != EMBER_OK)
        goto fail;
    em_host_set_conf(d->conf);
    if ((st = make_dirs(o->state_dir, err)) != EMBER_OK)
        goto fail;
    if (!realpath(o->state_dir, d->state_dir)) {
        st = ember_errorf(err, EMBER_EIO, "--state %s: %s", o->state_dir,
                          strerror(errno));
        goto fail;
    }
    if ((size_t)snprintf(d->plugin_dir, sizeof d->plugin_dir, "%s/plugins",
                         d->state_dir) >= sizeof d->plugin_dir ||
        (size_t)snprintf(d->db, sizeof d->db, "%s/ember.db", d->state_dir) >=
            sizeof d->db) {
        st = ember_errorf(err, EMBER_EINVAL, "--state: path too long");
        goto fail;
    }
    if ((st = reset_plugin_dir(d, err)) != EMBER_OK)
        goto fail;
    /* Executor processes (local-cluster) rescan the shipped plugins;
     * they inherit this variable (ember-executor reads it). */
    setenv("EMBER_EXECUTOR_PLUGIN_DIR", d->plugin_dir, 1);
    if ((st = em_registry_create(&d->registry, em_host_api())) != EMBER_OK) {
        st = ember_errorf(err, st, "out of memory");
        goto fail;
    }
    load_plugin_dirs(d);
    em_runtime_init(d->registry, d->conf);
    char exec_url[PATH_MAX + 32];
    int processes = strncmp(d->master, "local-cluster", 13) == 0;
    if ((size_t)snprintf(exec_url, sizeof exec_url, "ipc://%s/executors.sock",
                         d->state_dir) >= sizeof exec_url) {
        st = ember_errorf(err, EMBER_EINVAL, "--state: path too long");
        goto fail;
    }
    if (processes) {
        unlink(exec_url + 6); /* a socket left by an emberd that died */
        executor_conf_file(d);
    }
    em_server_opts so = {d->conf, d->db, d->registry,
                         processes ? exec_url : NULL, d->master};
    if ((st = em_server_start(&d->server, &so, err)) != EMBER_OK)
        goto fail;
    d->k = em_server_kernel(d->server);
    for (int i = 0; i < WORKERS + PLANNERS; i++) {
        d->worker_args[i] = (worker_arg){d, i < WORKERS ? LANE_REQUESTS
                                                        : LANE_SPLITS};
        if (pthread_create(&d->workers[i], NULL, worker_main,
                           &d->worker_args[i]) != 0) {
            st = ember_errorf(err, EMBER_ENOMEM, "cannot start a thread");
            goto fail;
        }
        d->nworkers++;
    }
    if ((st = em_link_server_open(&d->links, o->listen, link_accept, d,
                                  err)) != EMBER_OK)
        goto fail;
    snprintf(d->url, sizeof d->url, "%s", em_link_server_url(d->links));
    em_log(EMBER_LOG_INFO, LOG_SRC, "listening on %s, master %s, state %s",
           d->url, d->master, d->state_dir);
    *out = d;
    return EMBER_OK;
fail:
    emberd_stop(d);
    return st;
}

const char *emberd_url(const emberd *d)
{
    return d->url;
}

const char *emberd_master(const emberd *d)
{
    return d->master;
}

uint64_t emberd_bad_messages(const emberd *d)
{
    return atomic_load(&((emberd *)d)->bad_messages);
}

uint64_t emberd_queued_bytes(const emberd *d)
{
    emberd *m = (emberd *)d;
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->queued;
    pthread_mutex_unlock(&m->mu);
    return n;
}

uint64_t emberd_queued_peak(const emberd *d)
{
    emberd *m = (emberd *)d;
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->queued_peak;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static void nothing(void *ctx)
{
    (void)ctx;
}

void emberd_stop(emberd *d)
{
    if (!d)
        return;
    /* 1. No more requests: workers finish the one in hand and leave. */
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    for (int i = 0; i < NLANES; i++)
        pthread_cond_broadcast(&d->lanes[i].cv);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    /* 2. Every application closes (its jobs are cancelled and their END
     * goes to the client) before the clients are cut off. */
    if (d->server) {
        pthread_mutex_lock(&d->mu);
        size_t pos = 0;
        uint64_t id;
        while (em_u64map_next(&d->jobs, &pos, &id, NULL))
            em_kernel_cancel_job(d->k, id, "emberd is stopping");
        for (client *c = d->clients; c; c = c->next)
            if (c->has_app) {
                em_kernel_app_close(d->k, c->app_id);
                em_server_broadcast_app_close(d->server, c->app_id);
            }
        pthread_mutex_unlock(&d->mu);
        em_server_call(d->server, nothing, NULL);
    }
    /* 3. The kernel: executors stop, jobs still active end (their
     * listeners send END and free themselves), the store is flushed.
     * After this nothing sends on the links but their own callbacks. */
    em_server_stop(d->server);
    d->server = NULL;
    /* 4. The links: closed and freed by the link server. */
    em_link_server_close(d->links);
    /* 5. What is left of the clients, with every message still queued
     * (no thread but this one is left). */
    while (d->clients) {
        client *c = d->clients;
        d->clients = c->next;
        client_free(d, c);
    }
    em_u64map_free(&d->jobs);
    if (d->ro)
        sqlite3_close(d->ro);
    em_registry_destroy(d->registry);
    em_host_set_conf(NULL);
    em_conf_destroy(d->conf);
    free(d->shipped);
    pthread_mutex_destroy(&d->ro_mu);
    pthread_mutex_destroy(&d->plugin_mu);
    for (int i = 0; i < NLANES; i++)
        pthread_cond_destroy(&d->lanes[i].cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
