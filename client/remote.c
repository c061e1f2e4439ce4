/*
 * client/remote.c — sessions on an ember:// master: the connection to
 * emberd (kernel/msg/client_msg.h over an em_link), and the small
 * interface (em_client_submit, em_client_splits) that lets job.c and
 * dataset.c run the same way on an embedded kernel and on the service.
 *
 * Requests. Each request gets a fresh req_id and an entry in the pending
 * list; the link's receive callback (one NNG thread, never concurrent with
 * itself) files every reply under its req_id and wakes the requester. A
 * SUBMIT's entry also routes the job's RESULT, ACCUMS and END messages to its
 * listener until END, or until the connection is lost, which ends every
 * accepted job with EMBER_EIO. An entry is freed by whoever lets go of it
 * last: the requester, and for jobs the routing (END, ERROR or the end of
 * the link). Listeners are called without the lock held.
 *
 * A frozen emberd. The link has a timeout, ember.network.timeout (120 s;
 * Spark's spark.network.timeout): while nothing arrives the link pings
 * emberd, and when emberd has not answered for that long (a stopped or
 * hung process, a dead host) the link ends as if emberd had disconnected,
 * so that waiting requests and jobs fail with "emberd at URL did not
 * answer within 120s" rather than hang.
 */
#include "client_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/host.h"
#include "ember/kernel/kernel.h"
#include "ember/kernel/log.h"
#include "ember/kernel/plugin.h"
#include "ember/service.h"
#include "ember/source.h"
#include "msg/client_msg.h"
#include "msg/link.h"
#include "util/sha256.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.1.0"
#endif

/* How long a connection may take to come up. */
#define CONNECT_TIMEOUT_MS 10000
/* ember.network.timeout when no session says otherwise. */
#define NETWORK_TIMEOUT_MS 120000
/* The largest plugin file shipped (the protocol's body limit). */
#define PLUGIN_FILE_MAX EM_CMSG_BODY_MAX

typedef struct rreq {
    uint64_t id;
    int refs;
    int done;          /* a reply arrived, or the link ended */
    em_cmsg_type type; /* of the reply; 0 when the link ended first */
    json_t *header;    /* the reply's header (owned) */
    uint8_t *body;     /* the reply's body (owned) */
    size_t body_len;
    /* jobs */
    int job;
    em_job_listener listener;
    uint64_t job_id;
    int accepted; /* JOB (or a RESULT/END) arrived: end will be called */
    int routed;   /* RESULT/END still go to the listener */
    struct rreq *next;
} rreq;

struct em_remote {
    em_link *link;
    char master[256]; /* ember://HOST:PORT, for messages */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next_req;
    rreq *reqs;
    int down;
    int timed_out;  /* the link ended because emberd did not answer */
    int64_t timeout_ms; /* the link's timeout (ember.network.timeout) */
    char why[320]; /* why the link ended */
    char errwhy[160]; /* an ERROR emberd sent for no request, if any */
};

/* ------------------------------------------------------- pending list */

/* Drops a reference to q; frees it with the last. mu held. */
static void rreq_unref(em_remote *r, rreq *q)
{
    if (--q->refs > 0)
        return;
    for (rreq **pp = &r->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    json_decref(q->header);
    free(q->body);
    free(q);
}

static rreq *rreq_find(em_remote *r, uint64_t id)
{
    for (rreq *q = r->reqs; q; q = q->next)
        if (q->id == id)
            return q;
    return NULL;
}

/* An integer of a reply header, or dflt. */
static uint64_t hdr_u64(const json_t *h, const char *key, uint64_t dflt)
{
    json_t *v = json_object_get(h, key);
    return json_is_integer(v) && json_integer_value(v) >= 0
               ? (uint64_t)json_integer_value(v)
               : dflt;
}

static const char *hdr_str(const json_t *h, const char *key)
{
    json_t *v = json_object_get(h, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* The status of an ERROR or END header: a known failure, else EIO. */
static ember_status hdr_status(const json_t *h)
{
    json_t *v = json_object_get(h, "status");
    json_int_t s = json_is_integer(v) ? json_integer_value(v) : EMBER_EIO;
    if (s > EMBER_END || s < EMBER_EINTERNAL)
        return EMBER_EIO;
    return (ember_status)s;
}

/* ------------------------------------------------- link callbacks */

static void on_recv(void *ctx, em_link *l, const uint8_t *data, size_t len)
{
    (void)l;
    em_remote *r = ctx;
    em_cmsg m;
    ember_error err = {0};
    if (em_cmsg_decode(data, len, &m, &err) != EMBER_OK) {
        em_log(EMBER_LOG_WARN, "client", "emberd at %s sent a bad message: "
               "%s", r->master, err.msg);
        return;
    }
    json_t *h = m.header.len ? json_loadb((const char *)m.header.data,
                                          m.header.len, 0, NULL)
                             : json_object();
    if (!json_is_object(h)) {
        em_log(EMBER_LOG_WARN, "client", "emberd at %s sent a %s whose "
               "header is not a JSON object", r->master,
               em_cmsg_type_name(m.type));
        json_decref(h);
        return;
    }
    pthread_mutex_lock(&r->mu);
    rreq *q = rreq_find(r, m.req_id);
    if (!q) {
        /* An error for no request (e.g. "too many clients") usually comes
         * just before emberd closes the link: keep it as the reason. */
        if (m.type == EM_CMSG_ERROR)
            snprintf(r->errwhy, sizeof r->errwhy, "%s",
                     hdr_str(h, "message"));
        pthread_mutex_unlock(&r->mu);
        if (m.type == EM_CMSG_ERROR)
            em_log(EMBER_LOG_WARN, "client", "emberd at %s: %s", r->master,
                   hdr_str(h, "message"));
        json_decref(h);
        return;
    }
    if (q->job && m.type == EM_CMSG_RESULT && q->routed) {
        em_job_listener li = q->listener;
        q->accepted = 1;
        pthread_mutex_unlock(&r->mu);
        if (li.result)
            li.result(li.ctx, hdr_u64(h, "job_id", q->job_id),
                      (uint32_t)hdr_u64(h, "partition", UINT32_MAX),
                      m.body.data, m.body.len);
        json_decref(h);
        return;
    }
    if (q->job && m.type == EM_CMSG_ACCUMS && q->routed) {
        em_job_listener li = q->listener;
        pthread_mutex_unlock(&r->mu);
        if (li.accums)
            li.accums(li.ctx, hdr_u64(h, "job_id", q->job_id), m.body.data,
                      m.body.len);
        json_decref(h);
        return;
    }
    if (q->job && m.type == EM_CMSG_END && q->routed) {
        em_job_listener li = q->listener;
        uint64_t id = hdr_u64(h, "job_id", q->job_id);
        q->routed = 0;
        q->accepted = 1;
        if (!q->done) {
            q->done = 1;
            q->type = EM_CMSG_END;
            q->job_id = id;
            pthread_cond_broadcast(&r->cv);
        }
        pthread_mutex_unlock(&r->mu);
        if (li.end)
            li.end(li.ctx, id, hdr_status(h), hdr_str(h, "message"));
        pthread_mutex_lock(&r->mu);
        rreq_unref(r, q); /* the routing's reference */
        pthread_mutex_unlock(&r->mu);
        json_decref(h);
        return;
    }
    if (q->done) { /* a second reply to one request: ignore it */
        pthread_mutex_unlock(&r->mu);
        json_decref(h);
        return;
    }
    q->done = 1;
    q->type = m.type;
    q->header = h;
    h = NULL;
    if (m.body.len && (q->body = malloc(m.body.len)) != NULL) {
        memcpy(q->body, m.body.data, m.body.len);
        q->body_len = m.body.len;
    }
    if (q->job && m.type == EM_CMSG_JOB) {
        q->accepted = 1;
        q->job_id = hdr_u64(q->header, "job_id", 0);
    } else if (q->job && q->routed) {
        /* refused (ERROR) or nonsense: no end will follow */
        q->routed = 0;
        rreq_unref(r, q);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* "120s" or "1500ms". */
static const char *duration_text(char *buf, size_t cap, int64_t ms)
{
    if (ms >= 1000 && ms % 1000 == 0)
        snprintf(buf, cap, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, cap, "%lldms", (long long)ms);
    return buf;
}

static void on_closed(void *ctx, em_link *l, const char *reason)
{
    (void)l;
    em_remote *r = ctx;
    char d[32];
    pthread_mutex_lock(&r->mu);
    r->down = 1;
    if (reason && strcmp(reason, EM_LINK_TIMED_OUT) == 0) {
        r->timed_out = 1;
        snprintf(r->why, sizeof r->why, "emberd at %s did not answer within "
                 "%s", r->master, duration_text(d, sizeof d, r->timeout_ms));
    } else {
        snprintf(r->why, sizeof r->why, "%s",
                 r->errwhy[0] ? r->errwhy : reason ? reason : "disconnected");
    }
    for (rreq *q = r->reqs; q; q = q->next)
        if (!q->done) {
            q->done = 1;
            q->type = (em_cmsg_type)0;
        }
    pthread_cond_broadcast(&r->cv);
    /* End every job still routed, one at a time (the list may change
     * while a listener runs without the lock). */
    for (;;) {
        rreq *q = r->reqs;
        while (q && !(q->job && q->routed))
            q = q->next;
        if (!q)
            break;
        q->routed = 0;
        em_job_listener li = q->listener;
        int tell = q->accepted;
        uint64_t id = q->job_id;
        pthread_mutex_unlock(&r->mu);
        if (tell && li.end) {
            char msg[480];
            if (r->timed_out)
                snprintf(msg, sizeof msg, "%s while job %" PRIu64 " ran",
                         r->why, id);
            else
                snprintf(msg, sizeof msg,
                         "lost the connection to emberd at %s while job %"
                         PRIu64 " ran: %s", r->master, id,
                         reason ? reason : "");
            li.end(li.ctx, id, EMBER_EIO, msg);
        }
        pthread_mutex_lock(&r->mu);
        rreq_unref(r, q);
    }
    pthread_mutex_unlock(&r->mu);
}

/* ------------------------------------------------------- requests */

static ember_status lost(em_remote *r, ember_error *err)
{
    char why[sizeof r->why];
    pthread_mutex_lock(&r->mu);
    int timed_out = r->timed_out;
    snprintf(why, sizeof why, "%s", r->why[0] ? r->why : "disconnected");
    pthread_mutex_unlock(&r->mu);
    if (timed_out)
        return ember_errorf(err, EMBER_ETIMEDOUT, "%s", why);
    return ember_errorf(err, EMBER_EIO, "lost the connection to emberd at "
                        "%s: %s", r->master, why);
}

/* Registers a new request; mu held. NULL when out of memory. */
static rreq *rreq_new(em_remote *r, int job)
{
    rreq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->id = ++r->next_req;
    q->refs = job ? 2 : 1;
    q->job = job;
    q->routed = job;
    q->next = r->reqs;
    r->reqs = q;
    return q;
}

/* Sends a message of type t for q; h (taken) is its header. mu not held. */
static ember_status send_req(em_remote *r, rreq *q, em_cmsg_type t, json_t *h,
                             const void *body, size_t len, ember_error *err)
{
    char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!text)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_buf b = ember_buf_heap();
    ember_status st = em_cmsg_encode(&b, t, q->id, text, strlen(text), body,
                                     len);
    free(text);
    if (st == EMBER_OK)
        st = em_link_send(r->link, b.data, b.len);
    ember_buf_release(&b);
    if (st == EMBER_EIO)
        return lost(r, err);
    if (st != EMBER_OK)
        return ember_errorf(err, st, "%s to emberd at %s: %s",
                            em_cmsg_type_name(t), r->master,
                            st == EMBER_EINVAL ? "too large to send"
                                               : ember_status_name(st));
    return EMBER_OK;
}

/* Waits for q's reply; EMBER_OK when it is of type want (q then holds
 * it), else the error it carries. mu not held. */
static ember_status wait_reply(em_remote *r, rreq *q, em_cmsg_type want,
                               ember_error *err)
{
    pthread_mutex_lock(&r->mu);
    while (!q->done)
        pthread_cond_wait(&r->cv, &r->mu);
    em_cmsg_type t = q->type;
    pthread_mutex_unlock(&r->mu);
    if (t == want)
        return EMBER_OK;
    if (t == 0)
        return lost(r, err);
    if (t == EM_CMSG_ERROR) {
        ember_status st = hdr_status(q->header);
        return ember_errorf(err, st < 0 ? st : EMBER_EIO, "%s",
                            hdr_str(q->header, "message"));
    }
    return ember_errorf(err, EMBER_EIO, "emberd at %s answered %s where %s "
                        "was expected", r->master, em_cmsg_type_name(t),
                        em_cmsg_type_name(want));
}

static void release(em_remote *r, rreq *q)
{
    pthread_mutex_lock(&r->mu);
    rreq_unref(r, q);
    pthread_mutex_unlock(&r->mu);
}

/* One request and its reply of type want. On EMBER_OK *out (nullable)
 * holds the request with its reply: release it. h is taken. */
static ember_status call(em_remote *r, em_cmsg_type t, json_t *h,
                         const void *body, size_t len, em_cmsg_type want,
                         rreq **out, ember_error *err)
{
    if (out)
        *out = NULL;
    pthread_mutex_lock(&r->mu);
    rreq *q = rreq_new(r, 0);
    pthread_mutex_unlock(&r->mu);
    if (!q) {
        json_decref(h);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_status st = send_req(r, q, t, h, body, len, err);
    if (st == EMBER_OK)
        st = wait_reply(r, q, want, err);
    if (st == EMBER_OK && out)
        *out = q;
    else
        release(r, q);
    return st;
}

/* ------------------------------------------------------- connecting */

/* "ember://HOST:PORT" -> "tcp://HOST:PORT". */
static ember_status link_url(const char *master, char *url, size_t cap,
                             ember_error *err)
{
    const char *rest = strncmp(master, "ember://", 8) == 0 ? master + 8 : NULL;
    const char *colon = rest ? strrchr(rest, ':') : NULL;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!rest || !colon || colon == rest || !colon[1] || *end || port < 1 ||
        port > 65535)
        return ember_errorf(err, EMBER_EINVAL,
                            "master '%s': expected ember://HOST:PORT",
                            master);
    if ((size_t)snprintf(url, cap, "tcp://%s", rest) >= cap)
        return ember_errorf(err, EMBER_EINVAL, "master '%s' is too long",
                            master);
    return EMBER_OK;
}

/* Connects to emberd at master; timeout_ms is the link's timeout
 * (ember.network.timeout; 0 = none). */
static ember_status remote_connect(em_remote **out, const char *master,
                                   int64_t timeout_ms, ember_error *err)
{
    char url[EM_LINK_URL_MAX + 1];
    ember_status st = link_url(master, url, sizeof url, err);
    *out = NULL;
    if (st != EMBER_OK)
        return st;
    em_remote *r = calloc(1, sizeof *r);
    if (!r)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    snprintf(r->master, sizeof r->master, "%s", master);
    r->timeout_ms = timeout_ms;
    em_link_handler h = {r, on_recv, on_closed};
    ember_error e = {0};
    if ((st = em_link_dial(&r->link, url, &h, CONNECT_TIMEOUT_MS, &e)) !=
        EMBER_OK) {
        r->link = NULL;
        em_remote_close(r);
        return ember_errorf(err, st, "cannot connect to emberd at %s: %s",
                            master, e.msg);
    }
    if (timeout_ms > 0 &&
        (st = em_link_set_timeout(r->link, timeout_ms > INT_MAX
                                               ? INT_MAX
                                               : (int)timeout_ms)) !=
            EMBER_OK) {
        em_remote_close(r);
        return ember_errorf(err, st, "cannot connect to emberd at %s: out "
                            "of memory", master);
    }
    *out = r;
    return EMBER_OK;
}

void em_remote_close(em_remote *r)
{
    if (!r)
        return;
    em_link_close(r->link); /* on_closed ends what is still routed */
    while (r->reqs) {
        rreq *q = r->reqs;
        r->reqs = q->next;
        json_decref(q->header);
        free(q->body);
        free(q);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* The plugin of s->registry loaded from path, or NULL. */
static const em_plugin *plugin_at(ember_session *s, const char *path)
{
    size_t n = em_registry_count(s->registry);
    const em_plugin *found = NULL;
    for (size_t i = 0; i < n; i++) {
        const em_plugin *p = em_registry_at(s->registry, i);
        if (p && strcmp(p->path, path) == 0)
            found = p;
    }
    return found;
}

/* Reads the file at path whole into *data. */
static ember_status read_file(const char *path, uint8_t **data, size_t *len,
                              ember_error *err)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    *data = NULL;
    if (!f)
        return ember_errorf(err, EMBER_EIO, "cannot read %s: %s", path,
                            strerror(errno));
    for (;;) {
        if (n == cap) {
            if (cap >= PLUGIN_FILE_MAX) {
                fclose(f);
                free(buf);
                return ember_errorf(err, EMBER_EINVAL,
                                    "%s: larger than 1 GiB", path);
            }
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *g = realloc(buf, cap);
            if (!g) {
                fclose(f);
                free(buf);
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            }
            buf = g;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return ember_errorf(err, EMBER_EIO, "cannot read %s", path);
    }
    *data = buf;
    *len = n;
    return EMBER_OK;
}

ember_status em_remote_unpersist(ember_session *s, uint64_t dataset,
                                 ember_error *err)
{
    return call(s->remote, EM_CMSG_UNPERSIST,
                json_pack("{s:I}", "dataset", (json_int_t)dataset), NULL, 0,
                EM_CMSG_OK, NULL, err);
}

ember_status em_remote_broadcast(ember_session *s, uint64_t id,
                                 const void *data, size_t len,
                                 ember_error *err)
{
    if (len > EM_CMSG_BODY_MAX)
        return ember_errorf(err, EMBER_EINVAL, "broadcast %" PRIu64 ": %zu "
                            "bytes is more than the %zu bytes a message to "
                            "emberd carries", id, len,
                            (size_t)EM_CMSG_BODY_MAX);
    return call(s->remote, EM_CMSG_BROADCAST,
                json_pack("{s:I}", "id", (json_int_t)id), data, len,
                EM_CMSG_OK, NULL, err);
}

ember_status em_remote_broadcast_drop(ember_session *s, uint64_t id,
                                      int destroy, ember_error *err)
{
    return call(s->remote, EM_CMSG_BROADCAST_DROP,
                json_pack("{s:I,s:s}", "id", (json_int_t)id, "mode",
                          destroy ? "destroy" : "unpersist"),
                NULL, 0, EM_CMSG_OK, NULL, err);
}

ember_status em_remote_ship_plugin(ember_session *s, const char *path,
                                   ember_error *err)
{
    em_remote *r = s->remote;
    const em_plugin *p = plugin_at(s, path);
    uint8_t *data = NULL;
    size_t len = 0;
    char sha[EM_SHA256_HEX_LEN + 1];
    rreq *q = NULL;
    ember_error e = {0};
    if (!p)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "plugin %s: not loaded in this session", path);
    ember_status st = read_file(path, &data, &len, &e);
    if (st != EMBER_OK)
        goto out;
    em_sha256_hex(data, len, sha);
    if ((st = call(r, EM_CMSG_PLUGIN_HAVE,
                   json_pack("{s:s,s:s}", "name", p->name, "sha256", sha),
                   NULL, 0, EM_CMSG_PLUGIN_NEED, &q, &e)) != EMBER_OK)
        goto out;
    int need = json_is_true(json_object_get(q->header, "need"));
    release(r, q);
    if (need)
        st = call(r, EM_CMSG_PLUGIN_PUT,
                  json_pack("{s:s,s:s}", "name", p->name, "sha256", sha),
                  data, len, EM_CMSG_OK, NULL, &e);
out:
    free(data);
    if (st != EMBER_OK)
        return ember_errorf(err, st, "plugin %s: %s", path, e.msg);
    return EMBER_OK;
}

ember_status em_remote_open(ember_session *s, const char *const *plugins,
                            ember_error *err)
{
    em_remote *r = NULL;
    rreq *q = NULL;
    int64_t timeout_ms;
    ember_status st = em_conf_get_duration_ms(s->conf, "ember.network.timeout",
                                              NETWORK_TIMEOUT_MS, &timeout_ms,
                                              err);
    if (st != EMBER_OK)
        return st;
    if ((st = remote_connect(&r, s->master, timeout_ms, err)) != EMBER_OK)
        return st;
    s->remote = r;
    char app[256] = "ember";
    size_t len;
    em_conf_get(s->conf, "ember.app.name", app, sizeof app, &len);
    if ((st = call(r, EM_CMSG_HELLO,
                   json_pack("{s:s,s:s}", "app", app, "version",
                             EMBER_VERSION),
                   NULL, 0, EM_CMSG_WELCOME, &q, err)) != EMBER_OK)
        return st;
    s->app_id = hdr_u64(q->header, "app_id", 0);
    uint64_t slots = hdr_u64(q->header, "slots", 1);
    uint64_t par = hdr_u64(q->header, "default_parallelism", slots);
    release(r, q);
    s->slots = slots >= 1 && slots <= UINT32_MAX ? (uint32_t)slots : 1;
    int64_t v;
    if ((st = em_conf_get_int(s->conf, "ember.default.parallelism",
                              par >= 1 && par <= 1000000 ? (int64_t)par : 1,
                              1, 1000000, &v, err)) != EMBER_OK)
        return st;
    s->default_parallelism = (uint32_t)v;
    for (size_t i = 0; plugins && plugins[i]; i++)
        if ((st = em_remote_ship_plugin(s, plugins[i], err)) != EMBER_OK)
            return st;
    return EMBER_OK;
}

/* ------------------------------------------------------- jobs, splits */

static ember_status remote_submit(em_remote *r, const em_job_spec *spec,
                                  uint64_t *job_id, ember_error *err)
{
    json_t *action = json_null();
    if (spec->action) {
        json_decref(action);
        action = json_loadb(spec->action, spec->action_len, 0, NULL);
        if (!json_is_object(action)) {
            json_decref(action);
            return ember_errorf(err, EMBER_EINVAL,
                                "the job's action is not a JSON object");
        }
    }
    json_t *parts = json_null();
    if (spec->partitions) {
        json_decref(parts);
        parts = json_array();
        for (uint32_t i = 0; parts && i < spec->npartitions; i++)
            json_array_append_new(parts, json_integer(spec->partitions[i]));
    }
    json_t *h = json_pack(
        "{s:I,s:o,s:o,s:o,s:o,s:o}", "dataset", (json_int_t)spec->dataset,
        "partitions", parts, "pool",
        spec->pool ? json_string(spec->pool) : json_null(), "group",
        spec->group ? json_string(spec->group) : json_null(), "description",
        spec->description ? json_string(spec->description) : json_null(),
        "action", action);
    if (!h)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    pthread_mutex_lock(&r->mu);
    rreq *q = rreq_new(r, 1);
    if (q)
        q->listener = spec->listener;
    pthread_mutex_unlock(&r->mu);
    if (!q) {
        json_decref(h);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_status st = send_req(r, q, EM_CMSG_SUBMIT, h, spec->plan,
                               spec->plan_len, err);
    if (st != EMBER_OK) {
        /* never sent: nothing will route to it */
        pthread_mutex_lock(&r->mu);
        if (q->routed) {
            q->routed = 0;
            rreq_unref(r, q);
        }
        rreq_unref(r, q);
        pthread_mutex_unlock(&r->mu);
        return st;
    }
    pthread_mutex_lock(&r->mu);
    while (!q->done)
        pthread_cond_wait(&r->cv, &r->mu);
    int accepted = q->accepted;
    *job_id = q->job_id;
    pthread_mutex_unlock(&r->mu);
    if (!accepted)
        st = wait_reply(r, q, EM_CMSG_JOB, err);
    release(r, q);
    return st;
}

ember_status em_client_submit(ember_session *s, const em_job_spec *spec,
                              uint64_t *job_id, ember_error *err)
{
    if (s->remote)
        return remote_submit(s->remote, spec, job_id, err);
    return em_kernel_submit(em_server_kernel(s->server), spec, job_id, err);
}

ember_status em_client_splits(ember_session *s, const char *source,
                              const uint8_t *arg, size_t arg_len,
                              uint32_t min_partitions, ember_buf *splits,
                              uint64_t *count, ember_error *err)
{
    if (!s->remote) {
        const em_component *c =
            em_registry_find(s->registry, EMBER_KIND_SOURCE, source);
        if (!c)
            return ember_errorf(err, EMBER_ENOTFOUND,
                                "the source '%s' is not loaded", source);
        const ember_source_vtable *vt = c->vtable;
        return vt->plan(em_host_api(), arg, arg_len, min_partitions, splits,
                        count, err);
    }
    rreq *q = NULL;
    ember_status st = call(s->remote, EM_CMSG_SPLITS,
                           json_pack("{s:s,s:I}", "source", source,
                                     "min_partitions",
                                     (json_int_t)min_partitions),
                           arg, arg_len, EM_CMSG_SPLITS_REPLY, &q, err);
    if (st != EMBER_OK)
        return st;
    *count += hdr_u64(q->header, "count", 0);
    st = ember_buf_append(splits, q->body, q->body_len);
    release(s->remote, q);
    if (st != EMBER_OK)
        return ember_errorf(err, st, "out of memory");
    return EMBER_OK;
}

/* ------------------------------------------------- ember/service.h */

/* Connects, asks, disconnects; *text gets the INFO body (with want INFO). */
static ember_status service_call(const char *master, em_cmsg_type t,
                                 json_t *h, em_cmsg_type want, char **text,
                                 ember_error *err)
{
    em_remote *r = NULL;
    rreq *q = NULL;
    ember_status st = remote_connect(&r, master, NETWORK_TIMEOUT_MS, err);
    if (st != EMBER_OK) {
        json_decref(h);
        return st;
    }
    st = call(r, t, h, NULL, 0, want, &q, err);
    if (st == EMBER_OK && text) {
        *text = malloc(q->body_len + 1);
        if (*text) {
            if (q->body_len)
                memcpy(*text, q->body, q->body_len);
            (*text)[q->body_len] = '\0';
        } else {
            st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        }
    }
    if (q)
        release(r, q);
    em_remote_close(r);
    return st;
}

ember_status ember_service_status(const char *master, uint64_t job_id,
                                  char **json, ember_error *err)
{
    *json = NULL;
    return service_call(master, EM_CMSG_STATUS,
                        json_pack("{s:I}", "job_id", (json_int_t)job_id),
                        EM_CMSG_INFO, json, err);
}

ember_status ember_service_list(const char *master, int running_only,
                                char **json, ember_error *err)
{
    *json = NULL;
    return service_call(master, EM_CMSG_LIST,
                        json_pack("{s:b}", "running", running_only ? 1 : 0),
                        EM_CMSG_INFO, json, err);
}

ember_status ember_service_kill(const char *master, uint64_t job_id,
                                ember_error *err)
{
    return service_call(master, EM_CMSG_CANCEL,
                        json_pack("{s:I}", "job_id", (json_int_t)job_id),
                        EM_CMSG_OK, NULL, err);
}
