/*
 * runtime/executor.c — an executor (see ember/runtime/executor.h).
 *
 * Threads: the link's NNG callback thread decodes kernel messages and
 * queues work; `slots` workers run tasks; one reporter thread sends STATUS
 * batches (every update queued since its last send goes in one message)
 * and heartbeats.
 */
#include "ember/runtime/executor.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember/kernel/host.h"
#include "ember/kernel/log.h"
#include "msg/link.h"
#include "msg/msg.h"
#include "runtime/accum_task.h"
#include "runtime/action.h"
#include "runtime/bcast.h"
#include "runtime/block_replicate.h"
#include "runtime/block_report.h"
#include "runtime/block_svc.h"
#include "runtime/bytemap.h"
#include "util/bigbuf.h"
#include "runtime/pipeline.h"
#include "runtime/shuffle_svc.h"
#include "runtime/shuffle_write.h"

/* A stage attempt's description, shared by its tasks (refcounted). */
typedef struct stage_desc {
    uint64_t stage_id;
    uint32_t attempt;
    int is_result;
    uint32_t node; /* index of the stage's dataset in lineage */
    em_lineage *lineage;
    json_t **node_args; /* each node's args, parsed once for all tasks */
    json_t *action; /* result stages: the job's action, or NULL */
    uint64_t app;   /* the application it belongs to */
    em_stage_io io; /* the shuffles it writes and reads */
    em_accum_defs *accums; /* the plan's accumulators, or NULL */
    _Atomic int refs;
    struct stage_desc *next;
} stage_desc;

typedef struct task {
    em_msg_task t;
    stage_desc *stage;
    atomic_int cancel;
    atomic_int timed_out; /* cancelled by ember.task.timeout */
    uint64_t start_us;    /* when a worker took it */
    /* commit handshake */
    int commit_state; /* 0 waiting, 1 allowed, 2 refused */
    struct task *next;
} task;

typedef struct update {
    em_msg_update u;
    uint8_t *result; /* owned copies behind u.result / u.error /
                        u.lost_executor */
    char *error, *lost;
    uint8_t *blocks; /* owned copy behind u.blocks */
    uint8_t *accums; /* owned copy behind u.accums */
    struct update *next;
} update;

struct em_executor {
    em_executor_opts o;
    char *id, *hostname;
    em_link *link;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, report_cv, commit_cv, end_cv;
    stage_desc *stages;
    task *queue_head, *queue_tail;
    task *running; /* list of running tasks (for KILL, commit replies) */
    update *updates, *updates_tail;
    uint32_t nrunning;
    int stopping, ended;
    pthread_t *workers;
    uint32_t nworkers;
    pthread_t reporter;
    int reporter_started;
    size_t batch_bytes;
    int64_t heartbeat_ms, task_timeout_ms, pipe_timeout_ms;
    char *plugin_dir;    /* opts.plugin_dir, copied */
    em_shuffle_svc *shuffle; /* NULL when no shuffle manager is loaded */
    em_block_svc *blocks;    /* NULL: persisted datasets are not cached */
    em_bcast_cache *bcasts;  /* broadcast copies (runtime/bcast.h) */
    em_replicator *repl;     /* copies of other executors' blocks (_2/_3
                                levels), NULL when nothing is cached */
    char shuffle_error[512]; /* why not */
    char **tried;        /* its files already loaded or refused (link
                            thread only) */
    size_t ntried;
};

/* The task on this thread, for host->task_partition / task_attempt. */
static _Thread_local const task *current_task;
/* Its executor, for host->broadcast_value. */
static _Thread_local em_executor *current_exec;

static void stage_unref(stage_desc *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        em_pipe_args_free(s->node_args, s->lineage ? s->lineage->count : 0);
        em_lineage_free(s->lineage);
        json_decref(s->action);
        em_stage_io_free(&s->io);
        em_accum_defs_free(s->accums);
        free(s);
    }
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- reporting -------------------------------------------------------- */

/* Queues a status update (copies result, error and lost executor: the
 * reporter thread sends it later). Takes e->mu. */
static void report(em_executor *e, const em_msg_update *u)
{
    update *x = calloc(1, sizeof *x);
    if (!x)
        return; /* the kernel's heartbeat timeout recovers the task */
    x->u = *u;
    if (u->result.len) {
        x->result = malloc(u->result.len);
        if (!x->result) {
            free(x);
            return;
        }
        memcpy(x->result, u->result.data, u->result.len);
        x->u.result.data = x->result;
    }
    if (u->error.len) {
        x->error = malloc(u->error.len);
        if (x->error)
            memcpy(x->error, u->error.data, u->error.len);
        x->u.error.data = (const uint8_t *)x->error;
        if (!x->error)
            x->u.error.len = 0;
    }
    if (u->blocks.len) {
        /* a report that cannot be copied is a lost hint, nothing more */
        x->blocks = malloc(u->blocks.len);
        if (x->blocks)
            memcpy(x->blocks, u->blocks.data, u->blocks.len);
        x->u.blocks.data = x->blocks;
        if (!x->blocks)
            x->u.blocks.len = 0;
    }
    if (u->accums.len) {
        /* never report the task finished without its updates: dropped
         * as a whole, the kernel's heartbeat timeout recovers the task */
        x->accums = malloc(u->accums.len);
        if (!x->accums) {
            free(x->result);
            free(x->error);
            free(x->blocks);
            free(x);
            return;
        }
        memcpy(x->accums, u->accums.data, u->accums.len);
        x->u.accums.data = x->accums;
    }
    if (u->lost_executor.len) {
        x->lost = malloc(u->lost_executor.len);
        if (x->lost)
            memcpy(x->lost, u->lost_executor.data, u->lost_executor.len);
        x->u.lost_executor.data = (const uint8_t *)x->lost;
        if (!x->lost)
            x->u.lost_executor.len = 0;
    }
    pthread_mutex_lock(&e->mu);
    if (e->updates_tail)
        e->updates_tail->next = x;
    else
        e->updates = x;
    e->updates_tail = x;
    pthread_cond_signal(&e->report_cv);
    pthread_mutex_unlock(&e->mu);
}

static void send_updates(em_executor *e, update *list)
{
    ember_buf out = ember_buf_heap();
    em_msg_batch b;
    while (list) {
        out.len = 0;
        em_msg_status_begin(&b, &out);
        /* keep messages to a sensible size; results can be large */
        while (list && (b.count == 0 || out.len < (8u << 20))) {
            update *x = list;
            list = x->next;
            if (em_msg_status_add(&b, &x->u) != EMBER_OK) {
                /* a result the format cannot carry: fail the task instead */
                em_msg_update f = {.task_id = x->u.task_id,
                                   .state = EM_TASK_FAILED,
                                   .run_us = x->u.run_us};
                static const char m[] = "task result too large to send";
                f.error = (em_bytes){(const uint8_t *)m, sizeof m - 1};
                em_msg_status_add(&b, &f);
            }
            free(x->result);
            free(x->error);
            free(x->lost);
            free(x->blocks);
            free(x->accums);
            free(x);
        }
        em_msg_batch_finish(&b);
        em_link_send(e->link, out.data, out.len);
    }
    ember_buf_release(&out);
}

static void send_heartbeat(em_executor *e, uint32_t running)
{
    ember_buf out = ember_buf_heap();
    em_msg_heartbeat hb = {{(const uint8_t *)e->id, strlen(e->id)}, running};
    if (em_msg_encode_heartbeat(&out, &hb) == EMBER_OK)
        em_link_send(e->link, out.data, out.len);
    ember_buf_release(&out);
}

/* Cancels running tasks older than ember.task.timeout (e->mu held). The
 * task stops at its next batch boundary; a function that never returns
 * from one call is not interrupted (threads cannot be killed safely). */
static void expire_tasks(em_executor *e)
{
    if (e->task_timeout_ms <= 0)
        return;
    uint64_t now = mono_us();
    for (task *t = e->running; t; t = t->next)
        if (now - t->start_us > (uint64_t)e->task_timeout_ms * 1000u &&
            !atomic_load(&t->cancel)) {
            atomic_store(&t->timed_out, 1);
            atomic_store(&t->cancel, 1);
        }
}

static void *reporter_main(void *arg)
{
    em_executor *e = arg;
    uint64_t last_hb = mono_us();
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->updates && !e->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            /* every second, or a quarter of the task timeout */
            int64_t step_ms = e->task_timeout_ms > 0 &&
                                      e->task_timeout_ms < 4000
                                  ? (e->task_timeout_ms + 3) / 4
                                  : 1000;
            ts.tv_nsec += (long)(step_ms % 1000) * 1000000L;
            ts.tv_sec += step_ms / 1000 + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&e->report_cv, &e->mu, &ts);
            expire_tasks(e);
            if (mono_us() - last_hb >= (uint64_t)e->heartbeat_ms * 1000u)
                break;
        }
        expire_tasks(e);
        update *list = e->updates;
        e->updates = e->updates_tail = NULL;
        uint32_t running = e->nrunning;
        int stop = e->stopping;
        pthread_mutex_unlock(&e->mu);
        if (list)
            send_updates(e, list);
        if (mono_us() - last_hb >= (uint64_t)e->heartbeat_ms * 1000u) {
            send_heartbeat(e, running);
            last_hb = mono_us();
        }
        pthread_mutex_lock(&e->mu);
        if (stop && !e->updates)
            break;
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- running tasks ---------------------------------------------------- */

typedef struct commit_ctx {
    em_executor *e;
    task *t;
} commit_ctx;

static int ask_commit(void *ctx)
{
    commit_ctx *c = ctx;
    em_executor *e = c->e;
    task *t = c->t;
    ember_buf out = ember_buf_heap();
    em_msg_commit_ask m = {t->t.task_id, t->t.stage_id, t->t.stage_attempt,
                           t->t.partition, t->t.attempt};
    ember_status s = em_msg_encode_commit_ask(&out, &m);
    if (s == EMBER_OK)
        s = em_link_send(e->link, out.data, out.len);
    ember_buf_release(&out);
    if (s != EMBER_OK)
        return (int)s;
    pthread_mutex_lock(&e->mu);
    while (t->commit_state == 0 && !e->stopping && !atomic_load(&t->cancel))
        pthread_cond_wait(&e->commit_cv, &e->mu);
    int r = t->commit_state == 1 ? 1 : t->commit_state == 2 ? 0
                                                           : EMBER_ECANCELED;
    pthread_mutex_unlock(&e->mu);
    return r;
}

static void run_task(em_executor *e, task *t)
{
    uint64_t t0 = mono_us();
    stage_desc *sd = t->stage;
    ember_error err = {0};
    ember_buf result = ember_buf_heap();
    ember_buf blocks = ember_buf_heap();
    em_block_report br = {0};
    em_task_env env = {
        .host = em_host_api(),
        .registry = e->o.registry,
        .lineage = sd->lineage,
        .partition = t->t.partition,
        .attempt = t->t.attempt,
        .cancel = &t->cancel,
        .batch_bytes = e->batch_bytes,
        .pipe_timeout_ms = e->pipe_timeout_ms,
        .node_args = sd->node_args,
        .shuffle = e->shuffle,
        .io = &sd->io,
        .executor_id = e->id,
        .blocks = em_block_svc_mgr(e->blocks),
        .app_id = sd->app,
        .block_report = &br,
    };
    em_pipe *pipe = NULL;
    ember_status s;
    current_task = t;
    current_exec = e;
    ember_buf accums = ember_buf_heap();
    ember_status acc_st = em_accum_task_begin(sd->accums, &err);
    int needs_shuffle = !sd->is_result || sd->io.ninputs > 0;
    if (acc_st != EMBER_OK)
        s = acc_st;
    else if (needs_shuffle && !e->shuffle)
        s = ember_errorf(&err, EMBER_ENOTFOUND, "executor %s has no shuffle "
                         "manager: %s", e->id, e->shuffle_error);
    else if (!sd->is_result)
        /* a map task opens its pipe itself (it may fuse steps away) */
        s = em_shuffle_map_task(&env, sd->node, e->shuffle, &sd->io,
                                t->t.partition, t->t.attempt, &result, &err);
    else
        s = em_pipe_open(&pipe, &env, sd->node, t->t.partition, &err);
    if (s == EMBER_OK && sd->is_result) {
        commit_ctx cc = {e, t};
        s = em_action_run(&env, pipe, sd->action, ask_commit, &cc, &result,
                          &err);
    }
    em_pipe_close(pipe);
    current_task = NULL;
    current_exec = NULL;
    /* the broadcast copies the task read may go now */
    em_bcast_cache_task_end(e->bcasts);
    if (acc_st == EMBER_OK) {
        /* an add that failed fails the attempt, even if the function
         * went on (S17: only finished attempts' updates count) */
        int acc_failed = 0;
        ember_error aerr = {0};
        acc_st = em_accum_task_end(s == EMBER_OK, &accums, &acc_failed,
                                   &aerr);
        if (s == EMBER_OK && (acc_failed || acc_st != EMBER_OK))
            s = ember_errorf(&err, aerr.code ? aerr.code : acc_st,
                             "partition %" PRIu32 ": %s", t->t.partition,
                             aerr.msg);
    }
    em_msg_update u = {.task_id = t->t.task_id,
                       .run_us = mono_us() - t0,
                       .records_in = env.records_in};
    if (s == EMBER_OK) {
        u.state = EM_TASK_FINISHED;
        u.result = (em_bytes){result.data, result.len};
        u.bytes_out = result.len;
        u.accums = (em_bytes){accums.data, accums.len};
        if (br.n && em_block_report_encode(&br, &blocks) == EMBER_OK)
            u.blocks = (em_bytes){blocks.data, blocks.len};
        ember_batch rb = {result.data, result.len, 0};
        ember_batch_cursor rc = ember_batch_cursor_of(&rb);
        const uint8_t *rec;
        size_t rl;
        while (sd->is_result && ember_batch_next(&rc, &rec, &rl) == EMBER_OK)
            u.records_out++;
    } else if (env.fetch_failed && !atomic_load(&t->cancel)) {
        u.state = EM_TASK_FETCH_FAILED;
        u.error = (em_bytes){(const uint8_t *)err.msg, strlen(err.msg)};
        u.shuffle_id = env.ff_shuffle;
        u.map_index = env.ff_map;
        u.lost_executor = (em_bytes){(const uint8_t *)env.ff_executor,
                                     strlen(env.ff_executor)};
    } else {
        int timed_out = atomic_load(&t->timed_out);
        u.state = atomic_load(&t->cancel) && !timed_out ? EM_TASK_KILLED
                                                        : EM_TASK_FAILED;
        if (timed_out)
            snprintf(err.msg, sizeof err.msg, "partition %" PRIu32 ": the "
                     "task ran longer than ember.task.timeout (%" PRId64
                     " ms) and was stopped", t->t.partition,
                     e->task_timeout_ms);
        else if (!err.msg[0])
            snprintf(err.msg, sizeof err.msg, "%s", ember_status_name(s));
        u.error = (em_bytes){(const uint8_t *)err.msg, strlen(err.msg)};
    }
    report(e, &u);
    ember_buf_release(&result);
    ember_buf_release(&accums);
    ember_buf_release(&blocks);
    em_block_report_release(&br);
}

/* Seconds a worker waits for work before it drops its kept table. */
#define IDLE_DROP_S 1

static void *worker_main(void *arg)
{
    em_executor *e = arg;
    /* tasks of a stage follow each other here: hand memory on (dropped
     * below when idle) */
    em_bytemap_keep_spare(true);
    em_bigbuf_keep(true);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->queue_head && !e->stopping) {
            if (em_bytemap_spare_bytes() == 0 &&
                em_bigbuf_kept_bytes() == 0) {
                pthread_cond_wait(&e->work_cv, &e->mu);
                continue;
            }
            /* The next task of a stage usually comes at once and reuses
             * the table and buffers the last one left (bytemap.c,
             * bigbuf.c); idle for longer, the thread gives them back. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_DROP_S;
            if (pthread_cond_timedwait(&e->work_cv, &e->mu, &until) ==
                    ETIMEDOUT &&
                !e->queue_head) {
                pthread_mutex_unlock(&e->mu);
                em_bytemap_drop_spare();
                em_bigbuf_drop_kept();
                pthread_mutex_lock(&e->mu);
            }
        }
        if (e->stopping)
            break;
        task *t = e->queue_head;
        e->queue_head = t->next;
        if (!e->queue_head)
            e->queue_tail = NULL;
        t->next = e->running;
        e->running = t;
        e->nrunning++;
        t->start_us = mono_us();
        pthread_mutex_unlock(&e->mu);

        run_task(e, t);

        pthread_mutex_lock(&e->mu);
        for (task **pp = &e->running; *pp; pp = &(*pp)->next)
            if (*pp == t) {
                *pp = t->next;
                break;
            }
        e->nrunning--;
        stage_unref(t->stage);
        free(t);
    }
    pthread_mutex_unlock(&e->mu);
    em_bytemap_drop_spare();
    em_bigbuf_drop_kept();
    return NULL;
}

/* ---- kernel messages (link thread) ------------------------------------ */

static stage_desc *find_stage(em_executor *e, uint64_t id, uint32_t attempt)
{
    for (stage_desc *s = e->stages; s; s = s->next)
        if (s->stage_id == id && s->attempt == attempt)
            return s;
    return NULL;
}

/* Whether name was tried already; remembers it if not. */
static int tried_before(em_executor *e, const char *name)
{
    for (size_t i = 0; i < e->ntried; i++)
        if (strcmp(e->tried[i], name) == 0)
            return 1;
    char **grown = realloc(e->tried, (e->ntried + 1) * sizeof *grown);
    char *copy = strdup(name);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            e->tried = grown;
        return 0; /* tried again next time */
    }
    e->tried = grown;
    e->tried[e->ntried++] = copy;
    return 0;
}

/* Loads the plugins shipped to the service since the last look (files of
 * plugin_dir not tried yet): a stage may name a function in one. Files
 * there are named by their contents and never change. Link thread. */
static void rescan_plugins(em_executor *e)
{
    if (!e->plugin_dir)
        return;
    DIR *dir = opendir(e->plugin_dir);
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 4 ||
            strcmp(de->d_name + n - 3, ".so") != 0 ||
            tried_before(e, de->d_name))
            continue;
        char path[4096];
        ember_error err = {0};
        if ((size_t)snprintf(path, sizeof path, "%s/%s", e->plugin_dir,
                             de->d_name) >= sizeof path)
            continue;
        /* The registry is this executor's to load into (see plugin_dir). */
        if (em_registry_load((em_registry *)e->o.registry, path, NULL,
                             &err) == EMBER_OK)
            em_log(EMBER_LOG_INFO, "executor", "executor '%s' loaded "
                   "shipped plugin %s", e->id, path);
        else if (err.code != EMBER_EEXIST)
            em_log(EMBER_LOG_WARN, "executor", "executor '%s': shipped "
                   "plugin %s not loaded: %s", e->id, path, err.msg);
    }
    if (dir)
        closedir(dir);
}

static void on_stage(em_executor *e, const uint8_t *d, size_t n)
{
    em_msg_stage m;
    ember_error err = {0};
    if (em_msg_decode_stage(d, n, &m, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad STAGE: %s", err.msg);
        return;
    }
    if (m.plan.len == 0) {
        /* the stage attempt is over: tasks still holding it keep it */
        stage_desc *gone = NULL;
        pthread_mutex_lock(&e->mu);
        for (stage_desc **pp = &e->stages; *pp; pp = &(*pp)->next)
            if ((*pp)->stage_id == m.stage_id &&
                (*pp)->attempt == m.attempt) {
                gone = *pp;
                *pp = gone->next;
                break;
            }
        pthread_mutex_unlock(&e->mu);
        stage_unref(gone);
        return;
    }
    rescan_plugins(e);
    json_error_t je;
    json_t *doc = json_loadb((const char *)m.plan.data, m.plan.len, 0, &je);
    stage_desc *sd = calloc(1, sizeof *sd);
    em_lineage *l = NULL;
    json_t *plan = doc ? json_object_get(doc, "plan") : NULL;
    json_t *ds = plan ? json_object_get(plan, "datasets") : NULL;
    json_t *kind = doc ? json_object_get(doc, "kind") : NULL;
    json_t *dataset = doc ? json_object_get(doc, "dataset") : NULL;
    if (!sd || !json_is_array(ds) || !json_is_string(kind) ||
        !json_is_integer(dataset) ||
        em_lineage_decode_datasets(&l, ds, NULL, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad STAGE %" PRIu64 ": %s",
               m.stage_id, err.msg[0] ? err.msg : je.text);
        free(sd);
        json_decref(doc);
        return;
    }
    int64_t at = em_lineage_find(l, (uint64_t)json_integer_value(dataset));
    if (at < 0) {
        em_log(EMBER_LOG_ERROR, "executor", "STAGE %" PRIu64
               ": its dataset is not in its plan", m.stage_id);
        em_lineage_free(l);
        free(sd);
        json_decref(doc);
        return;
    }
    sd->node_args = em_pipe_args_parse(l, &err);
    if (sd->node_args && em_stage_io_parse(&sd->io, doc, &err) != EMBER_OK) {
        em_pipe_args_free(sd->node_args, l->count);
        sd->node_args = NULL;
    }
    if (!sd->node_args) {
        em_log(EMBER_LOG_ERROR, "executor", "bad STAGE %" PRIu64 ": %s",
               m.stage_id, err.msg);
        em_lineage_free(l);
        free(sd);
        json_decref(doc);
        return;
    }
    sd->stage_id = m.stage_id;
    sd->attempt = m.attempt;
    sd->is_result = strcmp(json_string_value(kind), "result") == 0;
    sd->node = (uint32_t)at;
    sd->lineage = l;
    sd->action = json_incref(json_object_get(doc, "action"));
    json_t *acc = json_object_get(plan, "accumulators");
    if (acc) {
        em_accum_decl *decl = NULL;
        uint32_t ndecl = 0;
        ember_error aerr = {0};
        if (em_accum_decls_decode(acc, NULL, &decl, &ndecl, &aerr) !=
                EMBER_OK ||
            em_accum_defs_create(&sd->accums, decl, ndecl, e->o.registry,
                                 &aerr) != EMBER_OK)
            /* its tasks' adds then fail with "not declared" */
            em_log(EMBER_LOG_ERROR, "executor", "STAGE %" PRIu64 ": %s",
                   m.stage_id, aerr.msg);
        em_accum_decls_free(decl, ndecl);
    }
    json_t *app = json_object_get(doc, "app");
    sd->app = json_is_integer(app) ? (uint64_t)json_integer_value(app) : 0;
    atomic_store(&sd->refs, 1);
    json_decref(doc);
    pthread_mutex_lock(&e->mu);
    if (find_stage(e, sd->stage_id, sd->attempt)) {
        pthread_mutex_unlock(&e->mu);
        stage_unref(sd);
        return;
    }
    sd->next = e->stages;
    e->stages = sd;
    pthread_mutex_unlock(&e->mu);
}

static void fail_now(em_executor *e, uint64_t task_id, const char *msg)
{
    em_msg_update u = {.task_id = task_id, .state = EM_TASK_FAILED};
    u.error = (em_bytes){(const uint8_t *)msg, strlen(msg)};
    report(e, &u);
}

static void on_launch(em_executor *e, const uint8_t *d, size_t n)
{
    em_msg_cursor c;
    ember_error err = {0};
    if (em_msg_launch_open(d, n, &c, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad LAUNCH: %s", err.msg);
        return;
    }
    em_msg_task mt;
    while (em_msg_launch_next(&c, &mt) == EMBER_OK) {
        task *t = calloc(1, sizeof *t);
        pthread_mutex_lock(&e->mu);
        stage_desc *sd = find_stage(e, mt.stage_id, mt.stage_attempt);
        if (!t || !sd) {
            pthread_mutex_unlock(&e->mu);
            free(t);
            fail_now(e, mt.task_id, sd ? "out of memory on the executor"
                                       : "executor has no description of "
                                         "this stage");
            continue;
        }
        t->t = mt;
        t->stage = sd;
        atomic_fetch_add(&sd->refs, 1);
        if (e->queue_tail)
            e->queue_tail->next = t;
        else
            e->queue_head = t;
        e->queue_tail = t;
        pthread_cond_signal(&e->work_cv);
        pthread_mutex_unlock(&e->mu);
    }
}

static void on_kill(em_executor *e, const uint8_t *d, size_t n)
{
    em_msg_cursor c;
    em_bytes reason;
    ember_error err = {0};
    if (em_msg_kill_open(d, n, &reason, &c, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad KILL: %s", err.msg);
        return;
    }
    uint64_t id;
    while (em_msg_kill_next(&c, &id) == EMBER_OK) {
        task *dropped = NULL;
        pthread_mutex_lock(&e->mu);
        for (task *t = e->running; t; t = t->next)
            if (t->t.task_id == id)
                atomic_store(&t->cancel, 1);
        for (task **pp = &e->queue_head, *prev = NULL; *pp;
             prev = *pp, pp = &(*pp)->next) {
            if ((*pp)->t.task_id != id)
                continue;
            dropped = *pp;
            *pp = dropped->next;
            if (e->queue_tail == dropped)
                e->queue_tail = prev;
            break;
        }
        pthread_cond_broadcast(&e->commit_cv);
        pthread_mutex_unlock(&e->mu);
        if (dropped) {
            em_msg_update u = {.task_id = id, .state = EM_TASK_KILLED};
            static const char m[] = "killed before it started";
            u.error = (em_bytes){(const uint8_t *)m, sizeof m - 1};
            report(e, &u);
            stage_unref(dropped->stage);
            free(dropped);
        }
    }
}

static void on_commit_reply(em_executor *e, const uint8_t *d, size_t n)
{
    em_msg_commit_reply m;
    if (em_msg_decode_commit_reply(d, n, &m, NULL) != EMBER_OK)
        return;
    pthread_mutex_lock(&e->mu);
    for (task *t = e->running; t; t = t->next)
        if (t->t.task_id == m.task_id)
            t->commit_state = m.allowed ? 1 : 2;
    pthread_cond_broadcast(&e->commit_cv);
    pthread_mutex_unlock(&e->mu);
}

static void on_remove_shuffles(em_executor *e, const uint8_t *d, size_t n)
{
    em_msg_cursor c;
    ember_error err = {0};
    if (em_msg_remove_shuffles_open(d, n, NULL, &c, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad REMOVE_SHUFFLES: %s",
               err.msg);
        return;
    }
    uint64_t id;
    while (em_msg_remove_shuffles_next(&c, &id) == EMBER_OK)
        if (e->shuffle)
            em_shuffle_svc_remove(e->shuffle, id);
}

/* REMOVE_BLOCKS: unpersisted datasets, or those of a closed application;
 * the keys are the block manager's dataset keys (runtime/ops_cache.c). */
static void on_remove_blocks(em_executor *e, const uint8_t *d, size_t n)
{
    em_msg_cursor c;
    ember_error err = {0};
    if (em_msg_remove_blocks_open(d, n, NULL, &c, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad REMOVE_BLOCKS: %s", err.msg);
        return;
    }
    em_block_mgr *m = em_block_svc_mgr(e->blocks);
    uint64_t key;
    while (em_msg_remove_blocks_next(&c, &key) == EMBER_OK) {
        /* a copy on its way is dropped too */
        em_replicator_forget(e->repl, key);
        if (m)
            (void)em_block_mgr_remove_dataset(m, key);
    }
}

/* REPLICATE: copy another executor's block (runtime/block_replicate.h). */
static void on_replicate(em_executor *e, const uint8_t *d, size_t n)
{
    if (e->repl) {
        em_replicator_submit(e->repl, d, n);
        return;
    }
    em_log(EMBER_LOG_WARN, "executor", "executor '%s' caches nothing: "
           "REPLICATE ignored", e->id);
}

static void end_executor(em_executor *e)
{
    /* tasks waiting for a broadcast stop waiting */
    em_bcast_cache_stop(e->bcasts);
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    for (task *t = e->running; t; t = t->next)
        atomic_store(&t->cancel, 1);
    pthread_cond_broadcast(&e->work_cv);
    pthread_cond_broadcast(&e->report_cv);
    pthread_cond_broadcast(&e->commit_cv);
    pthread_mutex_unlock(&e->mu);
}

static void on_recv(void *ctx, em_link *l, const uint8_t *d, size_t n)
{
    (void)l;
    em_executor *e = ctx;
    em_msg_type type;
    ember_error err = {0};
    if (em_msg_type_of(d, n, &type, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, "executor", "bad message: %s", err.msg);
        return;
    }
    switch (type) {
    case EM_MSG_STAGE: on_stage(e, d, n); break;
    case EM_MSG_LAUNCH: on_launch(e, d, n); break;
    case EM_MSG_KILL: on_kill(e, d, n); break;
    case EM_MSG_COMMIT_REPLY: on_commit_reply(e, d, n); break;
    case EM_MSG_REMOVE_SHUFFLES: on_remove_shuffles(e, d, n); break;
    case EM_MSG_REMOVE_BLOCKS: on_remove_blocks(e, d, n); break;
    case EM_MSG_REPLICATE: on_replicate(e, d, n); break;
    case EM_MSG_BCAST_CHUNK: em_bcast_cache_on_chunk(e->bcasts, d, n); break;
    case EM_MSG_REMOVE_BROADCAST:
        em_bcast_cache_on_remove(e->bcasts, d, n);
        break;
    case EM_MSG_REGISTERED: {
        em_msg_registered r;
        if (em_msg_decode_registered(d, n, &r, NULL) == EMBER_OK &&
            !r.accepted) {
            em_log(EMBER_LOG_ERROR, "executor", "kernel refused executor "
                   "'%s': %.*s", e->id, (int)r.reason.len,
                   (const char *)r.reason.data);
            end_executor(e);
        }
        break;
    }
    case EM_MSG_SHUTDOWN: end_executor(e); break;
    default: break;
    }
}

static void on_closed(void *ctx, em_link *l, const char *reason)
{
    (void)l;
    em_executor *e = ctx;
    em_log(EMBER_LOG_DEBUG, "executor", "executor '%s': connection to the "
           "kernel closed: %s", e->id, reason ? reason : "");
    end_executor(e);
    pthread_mutex_lock(&e->mu);
    e->ended = 1;
    pthread_cond_broadcast(&e->end_cv);
    pthread_mutex_unlock(&e->mu);
}

/* ---- life cycle ------------------------------------------------------- */

/* em_bcast_cache's way to the kernel (a task thread's BCAST_FETCH). */
static ember_status send_to_kernel(void *ctx, const uint8_t *msg, size_t len)
{
    em_executor *e = ctx;
    return e->link ? em_link_send(e->link, msg, len) : EMBER_EIO;
}

static void conf_settings(em_executor *e)
{
    int64_t v;
    e->batch_bytes = 1u << 20;
    e->heartbeat_ms = 10000;
    if (!e->o.conf)
        return;
    if (em_conf_get_size(e->o.conf, "ember.result.batchBytes", 1 << 20, &v,
                         NULL) == EMBER_OK && v >= 4096)
        e->batch_bytes = (size_t)v;
    if (em_conf_get_duration_ms(e->o.conf, "ember.executor.heartbeatInterval",
                                10000, &v, NULL) == EMBER_OK && v > 0)
        e->heartbeat_ms = v;
    if (em_conf_get_duration_ms(e->o.conf, "ember.pipe.timeout", 0, &v,
                                NULL) == EMBER_OK)
        e->pipe_timeout_ms = v;
    if (em_conf_get_duration_ms(e->o.conf, "ember.task.timeout", 0, &v,
                                NULL) == EMBER_OK)
        e->task_timeout_ms = v;
}

ember_status em_executor_start(em_executor **out, const em_executor_opts *o,
                               ember_error *err)
{
    *out = NULL;
    if (!o || !o->endpoint || !o->executor_id || o->slots == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "executor: endpoint, id and slots >= 1 needed");
    em_executor *e = calloc(1, sizeof *e);
    if (!e)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    e->o = *o;
    char hn[256] = "localhost";
    if (!o->host)
        gethostname(hn, sizeof hn - 1);
    e->id = strdup(o->executor_id);
    e->hostname = strdup(o->host ? o->host : hn);
    e->workers = calloc(o->slots, sizeof *e->workers);
    e->plugin_dir = o->plugin_dir && o->registry ? strdup(o->plugin_dir)
                                                 : NULL;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work_cv, NULL);
    pthread_cond_init(&e->report_cv, NULL);
    pthread_cond_init(&e->commit_cv, NULL);
    pthread_cond_init(&e->end_cv, NULL);
    conf_settings(e);
    if (!e->id || !e->hostname || !e->workers ||
        (o->plugin_dir && o->registry && !e->plugin_dir)) {
        em_executor_stop(e);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    /* the shuffle service; blocks are served to other executors over the
     * kernel link's kind of transport (none for in-process executors) */
    const char *serve = NULL;
    char tcp_url[300];
    if (strncmp(o->endpoint, "ipc://", 6) == 0) {
        serve = "ipc";
    } else if (strncmp(o->endpoint, "tcp://", 6) == 0) {
        snprintf(tcp_url, sizeof tcp_url, "tcp://%s:0", e->hostname);
        serve = tcp_url;
    }
    ember_error serr = {0};
    if (em_shuffle_svc_open(&e->shuffle, o->registry, o->conf, e->id, serve,
                            &serr) != EMBER_OK) {
        e->shuffle = NULL;
        snprintf(e->shuffle_error, sizeof e->shuffle_error, "%s", serr.msg);
        em_log(EMBER_LOG_WARN, "executor", "executor '%s': no shuffles: %s",
               e->id, serr.msg);
    }
    /* ember.network.timeout bounds a task's wait for the kernel's
     * broadcast chunks and for other executors' block servers */
    int64_t net_timeout_ms = 120000;
    if (o->conf)
        (void)em_conf_get_duration_ms(o->conf, "ember.network.timeout",
                                      120000, &net_timeout_ms, NULL);
    if (em_bcast_cache_create(&e->bcasts, e->id, net_timeout_ms,
                              send_to_kernel, e) != EMBER_OK) {
        em_executor_stop(e);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_error berr = {0};
    if (em_block_svc_open(&e->blocks, o->registry, o->conf, e->id, &berr) !=
        EMBER_OK) {
        e->blocks = NULL;
        em_log(EMBER_LOG_WARN, "executor", "executor '%s': persisted datasets "
               "are not cached: %s", e->id, berr.msg);
    }
    if (e->blocks) {
        /* replicas: other executors fetch this one's blocks from its
         * block server, and it fetches theirs */
        em_shuffle_svc_serve_blocks(e->shuffle, em_block_svc_mgr(e->blocks));
        if (em_replicator_create(&e->repl, em_block_svc_mgr(e->blocks), e->id,
                                 net_timeout_ms, send_to_kernel, e,
                                 &berr) != EMBER_OK) {
            e->repl = NULL;
            em_log(EMBER_LOG_WARN, "executor", "executor '%s' makes no "
                   "copies of blocks (_2/_3 levels): %s", e->id, berr.msg);
        }
    }
    em_link_handler h = {e, on_recv, on_closed};
    ember_status s = em_link_dial(&e->link, o->endpoint, &h,
                                  o->connect_timeout_ms
                                      ? o->connect_timeout_ms
                                      : 10000,
                                  err);
    if (s != EMBER_OK) {
        e->link = NULL;
        em_executor_stop(e);
        return s;
    }
    for (uint32_t i = 0; i < o->slots; i++) {
        if (pthread_create(&e->workers[i], NULL, worker_main, e) != 0)
            break;
        e->nworkers++;
    }
    if (pthread_create(&e->reporter, NULL, reporter_main, e) == 0)
        e->reporter_started = 1;
    if (e->nworkers != o->slots || !e->reporter_started) {
        em_executor_stop(e);
        return ember_errorf(err, EMBER_ENOMEM, "cannot start threads");
    }
    ember_buf msg = ember_buf_heap();
    const char *ep = e->shuffle ? em_shuffle_svc_endpoint(e->shuffle) : "";
    em_msg_register r = {{(const uint8_t *)e->id, strlen(e->id)},
                         {(const uint8_t *)e->hostname, strlen(e->hostname)},
                         {(const uint8_t *)ep, strlen(ep)}, o->slots,
                         (uint32_t)getpid()};
    s = em_msg_encode_register(&msg, &r);
    if (s == EMBER_OK)
        s = em_link_send(e->link, msg.data, msg.len);
    ember_buf_release(&msg);
    if (s != EMBER_OK) {
        em_executor_stop(e);
        return ember_errorf(err, s, "executor: cannot register");
    }
    *out = e;
    return EMBER_OK;
}

void em_executor_wait(em_executor *e)
{
    pthread_mutex_lock(&e->mu);
    while (!e->ended && !e->stopping)
        pthread_cond_wait(&e->end_cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
}

void em_executor_stop(em_executor *e)
{
    if (!e)
        return;
    end_executor(e);
    for (uint32_t i = 0; i < e->nworkers; i++)
        pthread_join(e->workers[i], NULL);
    if (e->reporter_started)
        pthread_join(e->reporter, NULL);
    /* copies stop before the link they report on closes; the replicator
     * goes once the link's thread, which queues copies, is done */
    em_replicator_stop(e->repl);
    em_link_close(e->link);
    em_replicator_destroy(e->repl);
    em_shuffle_svc_close(e->shuffle);
    em_block_svc_close(e->blocks);
    em_bcast_cache_destroy(e->bcasts);
    while (e->queue_head) {
        task *t = e->queue_head;
        e->queue_head = t->next;
        stage_unref(t->stage);
        free(t);
    }
    while (e->updates) {
        update *x = e->updates;
        e->updates = x->next;
        free(x->result);
        free(x->error);
        free(x->lost);
        free(x->blocks);
        free(x->accums);
        free(x);
    }
    while (e->stages) {
        stage_desc *s = e->stages;
        e->stages = s->next;
        stage_unref(s);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work_cv);
    pthread_cond_destroy(&e->report_cv);
    pthread_cond_destroy(&e->commit_cv);
    pthread_cond_destroy(&e->end_cv);
    free(e->workers);
    for (size_t i = 0; i < e->ntried; i++)
        free(e->tried[i]);
    free(e->tried);
    free(e->plugin_dir);
    free(e->id);
    free(e->hostname);
    free(e);
}

/* ---- the runtime's host services ---------------------------------------- */

static const em_registry *rt_registry;
static const em_conf *rt_conf;

static ember_status rt_executor_start(const char *endpoint, const char *id,
                                      uint32_t slots, void **handle,
                                      ember_error *err)
{
    em_executor_opts o = {.endpoint = endpoint,
                          .executor_id = id,
                          .host = NULL,
                          .slots = slots,
                          .registry = rt_registry,
                          .conf = rt_conf};
    em_executor *e = NULL;
    ember_status s = em_executor_start(&e, &o, err);
    *handle = e;
    return s;
}

static void rt_executor_stop(void *handle)
{
    em_executor_stop(handle);
}

static int64_t rt_task_partition(void)
{
    /* the partition of the dataset whose function is running, which
     * below a union or coalesce is not the task's */
    int64_t p = em_pipe_current_partition();
    if (p >= 0)
        return p;
    return current_task ? (int64_t)current_task->t.partition : -1;
}

static int64_t rt_task_attempt(void)
{
    return current_task ? (int64_t)current_task->t.attempt : -1;
}

static ember_status rt_broadcast_value(uint64_t id, const uint8_t **data,
                                       size_t *len, ember_error *err)
{
    if (!current_task || !current_exec || !current_exec->bcasts)
        return ember_errorf(err, EMBER_EUNSUPPORTED, "broadcast values are "
                            "read inside tasks only");
    /* the flag is the running task's own, which it may read and the
     * kernel's KILL may set */
    task *t = (task *)current_task;
    return em_bcast_cache_get(current_exec->bcasts, t->stage->app, id,
                              &t->cancel, data, len, err);
}

void em_runtime_init(const em_registry *registry, const em_conf *conf)
{
    rt_registry = registry;
    rt_conf = conf;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    em_host_runtime rt = {rt_executor_start, rt_executor_stop,
                          rt_task_partition, rt_task_attempt};
    rt.accum_add_i64 = em_accum_add_i64;
    rt.accum_add_double = em_accum_add_double;
    rt.accum_add = em_accum_add;
    rt.broadcast_value = rt_broadcast_value;
    em_host_set_runtime(&rt);
}
