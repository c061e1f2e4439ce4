/*
 * core/kernel.c — the kernel object (ember/kernel/kernel.h): reads the
 * configuration, opens the state store, builds the pools and both
 * schedulers, and turns posted work and executor messages into scheduler
 * calls on the loop thread. Its before-sleep hook runs one coalesced
 * scheduling pass, sends the batched messages and commits the turn's
 * state-store writes in one transaction.
 */
#include "ember/kernel/kernel.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/loop.h"
#include "core/settings.h"
#include "dag/dag_scheduler.h"
#include "dag/lineage.h"
#include "ember/kernel/host.h"
#include "ember/kernel/log.h"
#include "msg/msg.h"
#include "sched/pool.h"
#include "sched/task_scheduler.h"
#include "state/store.h"
#include "util/map.h"
#include "util/text.h"

#define LOG_SRC "kernel"

typedef struct conn {
    uint64_t id;
    em_kernel_send_fn send;
    em_kernel_closed_fn closed;
    void *ctx;
} conn;

/* Forgets a connection and tells its transport (loop thread). */
static void conn_drop(em_u64map *conns, uint64_t id)
{
    conn *c = em_u64map_del(conns, id);
    if (c && c->closed)
        c->closed(c->ctx);
    free(c);
}

struct em_kernel {
    em_loop *loop;
    em_store *store;
    em_pool_tree *pools;
    em_dag *dag;
    em_tsched *ts;
    const em_registry *registry;
    em_u64map conns;
    _Atomic uint64_t next_app, next_job, next_conn;
    uint64_t bad_messages, store_errors;
    uint64_t txn_since_us; /* when the open store transaction began */
    /* The cluster manager, when started. */
    const ember_cluster_manager_vtable *cm;
    void *cm_state;
    ember_cluster_events cm_events;
};

/* ------------------------------------------------------------ the loop */

/* Commits the open state-store transaction; a failure is logged and
 * counted, and scheduling goes on. */
static void store_commit(em_kernel *k)
{
    ember_error err;
    k->txn_since_us = 0;
    if (em_store_flush(k->store, &err) != EMBER_OK) {
        k->store_errors++;
        em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
    }
}

/* The longest a state-store transaction stays open while the loop is
 * busy turn after turn; when the loop is about to sleep, it commits. */
#define STORE_MAX_OPEN_US 10000

static void before_sleep(em_loop *loop, void *ctx)
{
    em_kernel *k = ctx;
    if (em_tsched_dirty(k->ts))
        em_tsched_schedule(k->ts);
    em_tsched_flush(k->ts);
    if (!em_store_pending(k->store))
        return;
    /* Commit before sleeping; while busy, group a few turns (bounded by
     * STORE_MAX_OPEN_US) so that a stream of tiny turns does not pay one
     * commit each. */
    uint64_t now = em_loop_now_us(loop);
    if (!k->txn_since_us)
        k->txn_since_us = now;
    if (em_loop_busy(loop) && now - k->txn_since_us < STORE_MAX_OPEN_US)
        return;
    store_commit(k);
}

static uint64_t clock_thunk(void *ctx)
{
    const em_kernel_clock *c = ctx;
    return c->now_us(c->ctx);
}

static void pools_to_store(em_kernel *k)
{
    size_t cursor = 0;
    em_pool_info info;
    ember_error err;
    while (em_pool_tree_next(k->pools, &cursor, &info) == EMBER_OK)
        if (em_store_pool_set(k->store, info.name, info.parent,
                              info.mode == EM_SCHED_FAIR ? "FAIR" : "FIFO",
                              info.weight, info.min_share, info.max_share,
                              &err) != EMBER_OK)
            em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
}

static void plugins_to_store(em_kernel *k)
{
    if (!k->registry)
        return;
    ember_error err;
    for (size_t i = 0; i < em_registry_count(k->registry); i++) {
        const em_plugin *p = em_registry_at(k->registry, i);
        if (em_store_plugin_add(k->store, p->name, p->version, p->path,
                                em_wall_ms(), &err) != EMBER_OK)
            em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
    }
}

ember_status em_kernel_create(em_kernel **out, const em_kernel_opts *opts,
                              ember_error *err)
{
    *out = NULL;
    em_kernel_settings s;
    ember_status st = em_kernel_read_settings(opts->conf, &s, err);
    if (st != EMBER_OK)
        return st;
    if (!opts->state_path || !*opts->state_path)
        return ember_errorf(err, EMBER_EINVAL, "the kernel needs a state "
                            "database path");
    em_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    k->registry = opts->registry;
    atomic_init(&k->next_conn, 1);
    em_loop_clock lc = {clock_thunk, (void *)opts->clock};
    if ((st = em_loop_create(&k->loop, opts->clock ? &lc : NULL, err)) !=
        EMBER_OK)
        goto fail;
    if ((st = em_store_open(&k->store, opts->state_path, err)) != EMBER_OK)
        goto fail;
    int64_t interrupted = 0;
    if ((st = em_store_mark_interrupted(k->store, em_wall_ms(), &interrupted,
                                        err)) != EMBER_OK)
        goto fail;
    if (interrupted)
        em_log(EMBER_LOG_WARN, LOG_SRC, "%" PRId64 " jobs of a previous "
               "kernel were still running: marked INTERRUPTED", interrupted);
    em_store_ids ids;
    if ((st = em_store_next_ids(k->store, &ids, err)) != EMBER_OK)
        goto fail;
    atomic_init(&k->next_app, ids.app);
    atomic_init(&k->next_job, ids.job);
    if ((st = em_pool_tree_create(&k->pools, s.mode, err)) != EMBER_OK)
        goto fail;
    if (s.alloc_file[0]) {
        if (s.mode == EM_SCHED_FAIR) {
            if ((st = em_pool_tree_load_file(k->pools, s.alloc_file, err)) !=
                EMBER_OK)
                goto fail;
        } else {
            em_log(EMBER_LOG_WARN, LOG_SRC, "ember.scheduler.allocation.file "
                   "is set but ember.scheduler.mode is FIFO: pools are not "
                   "used");
        }
    }
    if ((st = em_dag_create(&k->dag, k->loop, k->pools, k->store, &s.dag,
                            err)) != EMBER_OK)
        goto fail;
    em_dag_set_next_ids(k->dag, ids.stage, ids.shuffle);
    em_dag_set_registry(k->dag, k->registry);
    em_tsched_events ev = em_dag_tsched_events(k->dag);
    if ((st = em_tsched_create(&k->ts, k->loop, k->pools, k->store, &s.ts,
                               &ev, err)) != EMBER_OK)
        goto fail;
    em_tsched_set_next_task_id(k->ts, ids.task);
    em_dag_attach(k->dag, k->ts);
    if ((st = em_loop_add_before_sleep(k->loop, before_sleep, k)) !=
        EMBER_OK) {
        ember_errorf(err, st, "out of memory");
        goto fail;
    }
    pools_to_store(k);
    plugins_to_store(k);
    if ((st = em_store_flush(k->store, err)) != EMBER_OK)
        goto fail;
    *out = k;
    return EMBER_OK;
fail:
    em_kernel_destroy(k);
    return st;
}

void em_kernel_destroy(em_kernel *k)
{
    if (!k)
        return;
    if (k->cm && k->cm_state)
        k->cm->stop(k->cm_state);
    em_dag_destroy(k->dag);
    em_tsched_destroy(k->ts);
    em_pool_tree_destroy(k->pools);
    if (k->store) {
        ember_error err;
        if (em_store_flush(k->store, &err) != EMBER_OK)
            em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
    }
    em_store_close(k->store);
    em_loop_destroy(k->loop);
    for (;;) {
        size_t pos = 0;
        uint64_t id;
        if (!em_u64map_next(&k->conns, &pos, &id, NULL))
            break;
        conn_drop(&k->conns, id);
    }
    em_u64map_free(&k->conns);
    free(k);
}

em_loop *em_kernel_loop(em_kernel *k) { return k->loop; }

int64_t em_kernel_run(em_kernel *k, em_kernel_run_mode mode)
{
    int64_t ran = mode == EM_KERNEL_RUN_UNTIL_IDLE
                      ? em_loop_run_until_idle(k->loop)
                      : em_loop_run(k->loop, (em_loop_run_mode)mode);
    /* A stop can land after the hook put a commit off: whoever reads the
     * database after the run returns sees everything it did. */
    if (em_store_pending(k->store))
        store_commit(k);
    return ran;
}

void em_kernel_stop(em_kernel *k) { em_loop_stop(k->loop); }

ember_status em_kernel_flush(em_kernel *k, ember_error *err)
{
    return em_store_flush(k->store, err);
}

/* ------------------------------------------------------ posted requests */

/* One posted request; which fields matter depends on fn. */
typedef struct request {
    em_kernel *k;
    uint64_t id;
    char *text, *text2;
    em_plan *plan;
    em_dag_job job;
    uint32_t *parts;
    em_kernel_send_fn send;
    em_kernel_closed_fn closed;
    void *ctx;
    uint8_t *msg;
    size_t len;
    uint64_t dataset; /* unpersist */
} request;

static void request_free(request *r)
{
    em_plan_unref(r->plan);
    free(r->text);
    free(r->text2);
    free(r->parts);
    free((char *)r->job.pool);
    free((char *)r->job.group);
    free((char *)r->job.description);
    free((char *)r->job.action);
    free(r->msg);
    free(r);
}

static void drop_request(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    /* A job whose request never ran still ends exactly once. */
    if (r->plan && r->job.listener.end)
        r->job.listener.end(r->job.listener.ctx, r->job.job_id,
                            EMBER_ECANCELED, "kernel shut down before the "
                            "job started");
    /* So does a connection whose open never ran (only conn_open requests
     * carry a closed callback). */
    if (r->closed)
        r->closed(r->ctx);
    request_free(r);
}

static ember_status post(em_kernel *k, em_loop_fn fn, request *r)
{
    ember_status st = em_loop_post(k->loop, fn, drop_request, r);
    if (st != EMBER_OK)
        request_free(r);
    return st;
}

/* Posts fn with a request carrying id and copies of the texts. */
static ember_status post_request(em_kernel *k, em_loop_fn fn, uint64_t id,
                                 const char *text, const char *text2)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return EMBER_ENOMEM;
    r->k = k;
    r->id = id;
    if ((text && !(r->text = em_strdup(text))) ||
        (text2 && !(r->text2 = em_strdup(text2)))) {
        request_free(r);
        return EMBER_ENOMEM;
    }
    return post(k, fn, r);
}

static void do_app_open(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    ember_error err;
    if (em_dag_app_open(r->k->dag, r->id, r->text, &err) != EMBER_OK)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "%s", err.msg);
    request_free(r);
}

ember_status em_kernel_app_open(em_kernel *k, const char *name,
                                uint64_t *app_id, ember_error *err)
{
    uint64_t id = atomic_fetch_add(&k->next_app, 1);
    ember_status st = post_request(k, do_app_open, id, name ? name : "",
                                   NULL);
    if (st != EMBER_OK)
        return ember_errorf(err, st, "out of memory");
    *app_id = id;
    return EMBER_OK;
}

static void do_app_close(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    em_dag_app_close(r->k->dag, r->id);
    request_free(r);
}

ember_status em_kernel_app_close(em_kernel *k, uint64_t app_id)
{
    return post_request(k, do_app_close, app_id, NULL, NULL);
}

static void do_unpersist(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    em_dag_unpersist(r->k->dag, r->id, r->dataset);
    request_free(r);
}

ember_status em_kernel_unpersist(em_kernel *k, uint64_t app_id,
                                 uint64_t dataset)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return EMBER_ENOMEM;
    r->k = k;
    r->id = app_id;
    r->dataset = dataset;
    return post(k, do_unpersist, r);
}

/* Function names resolve against loaded functions, sources and sinks. */
static int resolve(void *ctx, const char *name)
{
    const em_registry *reg = ctx;
    return em_registry_find(reg, EMBER_KIND_FUNCTION, name) ||
           em_registry_find(reg, EMBER_KIND_SOURCE, name) ||
           em_registry_find(reg, EMBER_KIND_SINK, name);
}

static void do_submit(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    ember_error err;
    r->job.plan = r->plan;
    if (em_dag_submit(r->k->dag, &r->job, &err) != EMBER_OK &&
        r->job.listener.end)
        r->job.listener.end(r->job.listener.ctx, r->job.job_id, err.code,
                            err.msg);
    request_free(r);
}

ember_status em_kernel_submit(em_kernel *k, const em_job_spec *spec,
                              uint64_t *job_id, ember_error *err)
{
    em_fn_resolver resolver = {resolve, (void *)k->registry};
    em_lineage *l = NULL;
    em_plan *plan = NULL;
    ember_status st = em_lineage_decode(&l, spec->plan, spec->plan_len,
                                        k->registry ? &resolver : NULL, err);
    if (st != EMBER_OK)
        return st;
    if (em_lineage_find(l, spec->dataset) < 0) {
        em_lineage_free(l);
        return ember_errorf(err, EMBER_ENOTFOUND, "plan: the job's dataset %"
                            PRIu64 " is not in the plan", spec->dataset);
    }
    if ((st = em_plan_create(&plan, l, err)) != EMBER_OK)
        return st;
    request *r = calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    r->k = k;
    r->plan = plan;
    r->job.app_id = spec->app_id;
    r->job.dataset = spec->dataset;
    r->job.listener = spec->listener;
    if (spec->partitions) {
        r->parts = malloc((spec->npartitions ? spec->npartitions : 1) *
                          sizeof *r->parts);
        if (!r->parts)
            goto nomem;
        memcpy(r->parts, spec->partitions,
               spec->npartitions * sizeof *r->parts);
        r->job.partitions = r->parts;
        r->job.npartitions = spec->npartitions;
    }
    if ((spec->pool && !(r->job.pool = em_strdup(spec->pool))) ||
        (spec->group && !(r->job.group = em_strdup(spec->group))) ||
        (spec->description &&
         !(r->job.description = em_strdup(spec->description))))
        goto nomem;
    if (spec->action) {
        /* Validated and made compact here, on the caller's thread, so the
         * STAGE description the executors parse is always well formed. */
        json_error_t jerr;
        json_t *a = json_loadb(spec->action, spec->action_len, 0, &jerr);
        if (!a || !json_is_object(a)) {
            json_decref(a);
            request_free(r);
            return ember_errorf(err, EMBER_EINVAL,
                                "job action: %s", a ? "not a JSON object"
                                                    : jerr.text);
        }
        r->job.action = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (!r->job.action)
            goto nomem;
    }
    r->job.job_id = atomic_fetch_add(&k->next_job, 1);
    *job_id = r->job.job_id;
    if (em_loop_post(k->loop, do_submit, drop_request, r) != EMBER_OK)
        goto nomem;
    return EMBER_OK;
nomem:
    if (r) {
        request_free(r);
    } else {
        em_plan_unref(plan);
    }
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

ember_status em_plan_check(const char *plan, size_t plan_len,
                           const em_registry *registry, uint32_t *datasets,
                           ember_error *err)
{
    em_fn_resolver resolver = {resolve, (void *)registry};
    em_lineage *l = NULL;
    ember_status st = em_lineage_decode(&l, plan, plan_len,
                                        registry ? &resolver : NULL, err);
    if (st == EMBER_OK && datasets)
        *datasets = l->count;
    em_lineage_free(l);
    return st;
}

ember_status em_plan_describe(const char *plan, size_t plan_len,
                              uint64_t dataset, char **out, ember_error *err)
{
    em_lineage *l = NULL;
    *out = NULL;
    ember_status st = em_lineage_decode(&l, plan, plan_len, NULL, err);
    if (st != EMBER_OK)
        return st;
    int64_t at = em_lineage_find(l, dataset);
    if (at < 0)
        st = ember_errorf(err, EMBER_ENOTFOUND, "plan: no dataset %" PRIu64,
                          dataset);
    else
        st = em_lineage_debug_string(l, (uint32_t)at, out, err);
    em_lineage_free(l);
    return st;
}

static void do_cancel(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    if (r->text2)
        em_dag_cancel_group(r->k->dag, r->id, r->text2, r->text);
    else
        em_dag_cancel_job(r->k->dag, r->id, r->text);
    request_free(r);
}

ember_status em_kernel_cancel_job(em_kernel *k, uint64_t job_id,
                                  const char *reason)
{
    return post_request(k, do_cancel, job_id, reason, NULL);
}

ember_status em_kernel_cancel_group(em_kernel *k, uint64_t app_id,
                                    const char *group, const char *reason)
{
    if (!group)
        return EMBER_EINVAL;
    return post_request(k, do_cancel, app_id, reason, group);
}

/* --------------------------------------------------------- connections */

static void do_conn_open(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    conn *c = calloc(1, sizeof *c);
    if (c) {
        c->id = r->id;
        c->send = r->send;
        c->closed = r->closed;
        c->ctx = r->ctx;
        if (em_u64map_put(&r->k->conns, c->id, c) != EMBER_OK) {
            free(c);
            c = NULL;
        }
    }
    if (!c)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "out of memory opening connection");
    request_free(r);
}

ember_status em_kernel_conn_open(em_kernel *k, em_kernel_send_fn send,
                                 em_kernel_closed_fn closed, void *ctx,
                                 uint64_t *conn_id)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return EMBER_ENOMEM;
    r->k = k;
    uint64_t id = atomic_fetch_add(&k->next_conn, 1);
    r->id = id;
    r->send = send;
    r->closed = closed;
    r->ctx = ctx;
    /* The id is written before the post: once posted, r belongs to the
     * loop thread, which may already have freed it. */
    *conn_id = id;
    return post(k, do_conn_open, r);
}

static void bad_message(em_kernel *k, uint64_t conn_id, const char *what)
{
    k->bad_messages++;
    em_log(EMBER_LOG_ERROR, LOG_SRC, "connection %" PRIu64
           ": message refused: %s", conn_id, what);
    char detail[700];
    snprintf(detail, sizeof detail, "{\"connection\":%" PRIu64 "}",
             conn_id);
    ember_error err;
    if (em_store_event(k->store, em_wall_ms(), "bad_message", detail, &err) !=
        EMBER_OK)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "state store: %s", err.msg);
}

static void handle_register(em_kernel *k, conn *c, const uint8_t *m,
                            size_t n)
{
    em_msg_register reg;
    ember_error err;
    em_exec *e = NULL;
    ember_status st = em_msg_decode_register(m, n, &reg, &err);
    if (st == EMBER_OK)
        st = em_tsched_executor_add(k->ts, c->id, &reg, c->send, c->ctx, &e,
                                    &err);
    em_msg_registered reply = {.accepted = st == EMBER_OK};
    if (st != EMBER_OK) {
        bad_message(k, c->id, err.msg);
        reply.reason = (em_bytes){(const uint8_t *)err.msg,
                                  strlen(err.msg)};
    }
    ember_buf b;
    b = ember_buf_heap();
    if (em_msg_encode_registered(&b, &reply) == EMBER_OK)
        c->send(c->ctx, b.data, b.len);
    ember_buf_release(&b);
}

static void handle_status(em_kernel *k, em_exec *e, conn *c,
                          const uint8_t *m, size_t n)
{
    em_msg_cursor cur;
    ember_error err;
    if (em_msg_status_open(m, n, &cur, &err) != EMBER_OK) {
        bad_message(k, c->id, err.msg);
        return;
    }
    em_msg_update u;
    while (em_msg_status_next(&cur, &u) == EMBER_OK) {
        /* blocks first: a stage the update lets start prefers them */
        if (u.state == EM_TASK_FINISHED && u.blocks.len)
            em_dag_block_report(k->dag, e, u.blocks);
        em_tsched_status(k->ts, e, &u);
    }
}

static void do_conn_recv(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    em_kernel *k = r->k;
    conn *c = em_u64map_get(&k->conns, r->id);
    em_msg_type type;
    ember_error err;
    if (!c) {
        bad_message(k, r->id, "unknown connection");
        goto out;
    }
    if (em_msg_type_of(r->msg, r->len, &type, &err) != EMBER_OK) {
        bad_message(k, c->id, err.msg);
        goto out;
    }
    if (type == EM_MSG_REGISTER) {
        handle_register(k, c, r->msg, r->len);
        goto out;
    }
    em_exec *e = em_tsched_executor_by_conn(k->ts, c->id);
    if (!e) {
        snprintf(err.msg, sizeof err.msg, "%s before REGISTER",
                 em_msg_type_name(type));
        bad_message(k, c->id, err.msg);
        goto out;
    }
    em_tsched_executor_seen(k->ts, e);
    switch (type) {
    case EM_MSG_STATUS:
        handle_status(k, e, c, r->msg, r->len);
        break;
    case EM_MSG_HEARTBEAT: {
        em_msg_heartbeat hb;
        if (em_msg_decode_heartbeat(r->msg, r->len, &hb, &err) != EMBER_OK)
            bad_message(k, c->id, err.msg);
        break;
    }
    case EM_MSG_BLOCK_STORED: {
        /* copies of blocks made outside tasks (_2/_3 levels) */
        em_msg_block_stored bs;
        if (em_msg_decode_block_stored(r->msg, r->len, &bs, &err) != EMBER_OK)
            bad_message(k, c->id, err.msg);
        else
            em_dag_block_stored(k->dag, e, bs.report);
        break;
    }
    case EM_MSG_COMMIT_ASK: {
        em_msg_commit_ask ask;
        if (em_msg_decode_commit_ask(r->msg, r->len, &ask, &err) != EMBER_OK)
            bad_message(k, c->id, err.msg);
        else
            em_tsched_commit_ask(k->ts, e, &ask);
        break;
    }
    default:
        snprintf(err.msg, sizeof err.msg, "%s is not a message executors "
                 "send", em_msg_type_name(type));
        bad_message(k, c->id, err.msg);
        break;
    }
out:
    request_free(r);
}

ember_status em_kernel_conn_recv(em_kernel *k, uint64_t conn_id,
                                 const void *msg, size_t len)
{
    request *r = calloc(1, sizeof *r);
    if (!r)
        return EMBER_ENOMEM;
    r->msg = malloc(len ? len : 1);
    if (!r->msg) {
        free(r);
        return EMBER_ENOMEM;
    }
    memcpy(r->msg, msg, len);
    r->len = len;
    r->k = k;
    r->id = conn_id;
    return post(k, do_conn_recv, r);
}

static void do_conn_close(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    em_kernel *k = r->k;
    em_exec *e = em_tsched_executor_by_conn(k->ts, r->id);
    if (e)
        em_tsched_executor_lost(k->ts, e, r->text ? r->text
                                                  : "connection closed");
    conn_drop(&k->conns, r->id);
    request_free(r);
}

ember_status em_kernel_conn_close(em_kernel *k, uint64_t conn_id,
                                  const char *reason)
{
    return post_request(k, do_conn_close, conn_id, reason, NULL);
}

/* ------------------------------------------------------ cluster manager */

static void cm_added(void *ctx, const char *executor_id, const char *host,
                     uint32_t slots)
{
    (void)ctx;
    em_log(EMBER_LOG_INFO, LOG_SRC, "cluster manager started executor %s "
           "on %s (%" PRIu32 " slots)", executor_id, host, slots);
}

static void do_executor_lost(em_loop *loop, void *ctx)
{
    (void)loop;
    request *r = ctx;
    em_exec *e = em_tsched_executor_by_id(r->k->ts, r->text);
    if (e) {
        uint64_t conn_id = 0, key;
        size_t pos = 0;
        while (em_u64map_next(&r->k->conns, &pos, &key, NULL))
            if (em_tsched_executor_by_conn(r->k->ts, key) == e)
                conn_id = key;
        em_tsched_executor_lost(r->k->ts, e, r->text2 ? r->text2 : "lost");
        if (conn_id)
            conn_drop(&r->k->conns, conn_id);
    }
    request_free(r);
}

static void cm_lost(void *ctx, const char *executor_id, const char *reason)
{
    em_kernel *k = ctx;
    if (post_request(k, do_executor_lost, 0, executor_id, reason) !=
        EMBER_OK)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "out of memory: executor %s lost",
               executor_id);
}

ember_status em_kernel_start_cluster(em_kernel *k,
                                     const ember_cluster_manager_vtable *vt,
                                     const char *master_url,
                                     const char *endpoint, uint32_t executors,
                                     ember_error *err)
{
    if (k->cm)
        return ember_errorf(err, EMBER_EEXIST, "a cluster manager is "
                            "already running");
    if (!vt->accepts(master_url))
        return ember_errorf(err, EMBER_EINVAL, "the cluster manager does "
                            "not accept master URL '%s'", master_url);
    k->cm_events = (ember_cluster_events){k, cm_added, cm_lost};
    ember_status st = vt->start(em_host_api(), master_url, endpoint,
                                &k->cm_events, &k->cm_state, err);
    if (st != EMBER_OK)
        return st;
    k->cm = vt;
    if (executors > 0 &&
        (st = vt->request_executors(k->cm_state, executors, err)) !=
            EMBER_OK)
        return st;
    return EMBER_OK;
}

/* ---------------------------------------------------------- inspection */

void em_kernel_get_stats(const em_kernel *k, em_kernel_stats *out)
{
    em_tsched_stats t;
    em_dag_stats d;
    em_tsched_get_stats(k->ts, &t);
    em_dag_get_stats(k->dag, &d);
    memset(out, 0, sizeof *out);
    out->tasks_launched = t.launched;
    out->tasks_succeeded = t.succeeded;
    out->tasks_failed = t.failed;
    out->tasks_killed = t.killed;
    out->tasks_fetch_failed = t.fetch_failed;
    out->tasks_lost = t.lost;
    out->speculative_launched = t.speculative_launched;
    out->duplicate_results = t.duplicate_results;
    out->bad_messages = k->bad_messages;
    out->store_errors = t.store_errors + d.store_errors + k->store_errors;
    out->launched_process_local = t.launched_at[EM_LOC_PROCESS];
    out->launched_node_local = t.launched_at[EM_LOC_NODE];
    out->launched_no_pref = t.launched_at[EM_LOC_NO_PREF];
    out->launched_any = t.launched_at[EM_LOC_ANY];
    out->locality_idle_slot_us = t.locality_idle_slot_us;
    out->stage_attempts = d.stage_attempts;
    out->skipped_stages = d.skipped_stages;
    out->jobs_succeeded = d.jobs_succeeded;
    out->jobs_failed = d.jobs_failed;
    out->jobs_cancelled = d.jobs_cancelled;
    out->active_jobs = d.active_jobs;
    out->executors = t.executors;
    out->total_slots = t.total_slots;
    out->free_slots = t.free_slots;
}

int64_t em_kernel_shuffle_available(const em_kernel *k, uint64_t shuffle_id)
{
    return em_dag_shuffle_available(k->dag, shuffle_id);
}
