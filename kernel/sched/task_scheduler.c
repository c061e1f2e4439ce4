/*
 * sched/task_scheduler.c — see task_scheduler.h.
 *
 * Pending tasks sit in lazy queues (Spark's TaskSetManager idea): each
 * index is pushed on the queue of every executor and host it prefers, on
 * "no preference" when it has none, and always on "all". A pop skips
 * entries that are no longer pending, so re-queueing is a push and nothing
 * is ever searched for and removed.
 */
#include "sched/tsched_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ember/kernel/log.h"
#include "util/map.h"
#include "util/text.h"

#define LOG_SRC "sched"

static void exec_event(em_tsched *ts, const char *kind, const char *id,
                       const char *host, const char *reason)
{
    json_t *o = json_pack("{s:s, s:s?, s:s?}", "executor", id, "host", host,
                          "reason", reason);
    char *detail = o ? json_dumps(o, JSON_COMPACT) : NULL;
    ember_error serr;
    em_store_report(LOG_SRC, &ts->stats.store_errors,
                em_store_event(ts->store, em_wall_ms(), kind, detail, &serr),
                &serr);
    free(detail);
    json_decref(o);
}

const char *em_locality_name(em_locality l)
{
    switch (l) {
    case EM_LOC_PROCESS: return "PROCESS_LOCAL";
    case EM_LOC_NODE: return "NODE_LOCAL";
    case EM_LOC_NO_PREF: return "NO_PREF";
    default: return "ANY";
    }
}

void em_tsched_conf_defaults(em_tsched_conf *c)
{
    memset(c, 0, sizeof *c);
    c->max_failures = 4;
    c->locality_wait_us[0] = 3000000;
    c->locality_wait_us[1] = 3000000;
    c->speculation = 0;
    c->spec_interval_us = 100000;
    c->spec_multiplier = 1.5;
    c->spec_quantile = 0.75;
    c->spec_min_runtime_us = 100000;
    c->executor_timeout_us = 0;
}

/* ------------------------------------------------------------ lifecycle */

static void compute_levels(em_tsched *ts, em_taskset *s);
static int64_t heartbeat_tick(em_loop *loop, uint64_t id, void *ctx);

ember_status em_tsched_create(em_tsched **out, em_loop *loop,
                              em_pool_tree *pools, em_store *store,
                              const em_tsched_conf *conf,
                              const em_tsched_events *events,
                              ember_error *err)
{
    *out = NULL;
    em_tsched *ts = calloc(1, sizeof *ts);
    if (!ts)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ts->loop = loop;
    ts->pools = pools;
    ts->store = store;
    ts->conf = *conf;
    if (ts->conf.max_failures == 0)
        ts->conf.max_failures = 1;
    ts->ev = *events;
    ts->next_task_id = 1;
    ts->next_exec_no = 1;
    if (ts->conf.speculation && ts->conf.spec_interval_us > 0 &&
        em_loop_timer_add(loop, ts->conf.spec_interval_us, em_tsched_speculation_tick,
                          ts, &ts->spec_timer) != EMBER_OK)
        goto nomem;
    if (ts->conf.executor_timeout_us > 0 &&
        em_loop_timer_add(loop, ts->conf.executor_timeout_us / 4 + 1,
                          heartbeat_tick, ts,
                          &ts->heartbeat_timer) != EMBER_OK)
        goto nomem;
    *out = ts;
    return EMBER_OK;
nomem:
    em_tsched_destroy(ts);
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

static void task_free_all(em_tsched *ts)
{
    size_t pos = 0;
    void *v;
    while (em_u64map_next(&ts->tasks, &pos, NULL, &v))
        free(v);
    em_u64map_free(&ts->tasks);
}

static void exec_free(em_exec *e)
{
    if (!e)
        return;
    free(e->id);
    free(e->host);
    free(e->endpoint);
    em_u64map_free(&e->stages_sent);
    ember_buf_release(&e->launch_buf);
    ember_buf_release(&e->kill_buf);
    free(e);
}

static void set_free(em_taskset *s)
{
    if (!s)
        return;
    size_t pos = 0;
    void *v;
    while (em_strmap_next(&s->by_exec, &pos, NULL, &v)) {
        free(((idxvec *)v)->v);
        free(v);
    }
    pos = 0;
    while (em_strmap_next(&s->by_host, &pos, NULL, &v)) {
        free(((idxvec *)v)->v);
        free(v);
    }
    em_strmap_free(&s->by_exec);
    em_strmap_free(&s->by_host);
    free(s->all.v);
    free(s->nopref.v);
    free(s->spec.v);
    free(s->partitions);
    free(s->succeeded);
    free(s->nrunning);
    free(s->spec_flag);
    free(s->failures);
    free(s->next_attempt);
    free(s->running);
    free(s->pref_off);
    free(s->pref_vecs);
    free(s->durations);
    free(s->plan);
    free(s->last_error);
    free(s->desc);
    free(s);
}

void em_tsched_destroy(em_tsched *ts)
{
    if (!ts)
        return;
    if (ts->spec_timer)
        em_loop_timer_cancel(ts->loop, ts->spec_timer);
    if (ts->heartbeat_timer)
        em_loop_timer_cancel(ts->loop, ts->heartbeat_timer);
    if (ts->locality_timer)
        em_loop_timer_cancel(ts->loop, ts->locality_timer);
    task_free_all(ts);
    size_t cpos = 0;
    void *cv;
    while (em_u64map_next(&ts->commits, &cpos, NULL, &cv)) {
        em_u64map_free(cv);
        free(cv);
    }
    em_u64map_free(&ts->commits);
    while (ts->sets) {
        em_taskset *s = ts->sets;
        ts->sets = s->next;
        em_pool_remove_entry(&s->entry);
        set_free(s);
    }
    for (uint32_t i = 0; i < ts->nexecs; i++)
        exec_free(ts->execs[i]);
    free(ts->execs);
    free(ts->outbox);
    em_u64map_free(&ts->by_conn);
    em_strmap_free(&ts->by_id);
    free(ts);
}

void em_tsched_set_next_task_id(em_tsched *ts, uint64_t next)
{
    if (next > ts->next_task_id)
        ts->next_task_id = next;
}

int em_tsched_dirty(const em_tsched *ts) { return ts->dirty; }
void *em_taskset_owner(const em_taskset *s) { return s->owner; }
uint64_t em_taskset_stage_id(const em_taskset *s) { return s->stage_id; }
uint32_t em_taskset_stage_attempt(const em_taskset *s)
{
    return s->stage_attempt;
}
int em_taskset_is_zombie(const em_taskset *s) { return s->zombie; }
const char *em_exec_id(const em_exec *e) { return e->id; }
const char *em_exec_host(const em_exec *e) { return e->host; }
const char *em_exec_endpoint(const em_exec *e) { return e->endpoint; }
uint32_t em_exec_no(const em_exec *e) { return e->no; }
uint32_t em_exec_free_slots(const em_exec *e) { return e->free; }

/* ------------------------------------------------------------ executors */

static int outbox_add(em_tsched *ts, em_exec *e)
{
    if (e->queued)
        return 0;
    if (ts->noutbox == ts->cap_outbox) {
        uint32_t cap = ts->cap_outbox ? ts->cap_outbox * 2 : 16;
        em_exec **n = realloc(ts->outbox, cap * sizeof *n);
        if (!n)
            return -1;
        ts->outbox = n;
        ts->cap_outbox = cap;
    }
    ts->outbox[ts->noutbox++] = e;
    e->queued = 1;
    return 0;
}

ember_status em_tsched_executor_add(em_tsched *ts, uint64_t conn,
                                    const em_msg_register *reg,
                                    em_send_fn send, void *send_ctx,
                                    em_exec **out, ember_error *err)
{
    char id[256], host[256], endpoint[1024];
    *out = NULL;
    if (em_bytes_to_cstr(reg->executor_id, id, sizeof id) != EMBER_OK ||
        id[0] == '\0')
        return ember_errorf(err, EMBER_EINVAL,
                            "REGISTER: executor id is empty or longer than "
                            "255 bytes");
    if (em_bytes_to_cstr(reg->host, host, sizeof host) != EMBER_OK ||
        host[0] == '\0')
        return ember_errorf(err, EMBER_EINVAL,
                            "REGISTER from executor %s: host is empty or "
                            "longer than 255 bytes", id);
    if (em_bytes_to_cstr(reg->endpoint, endpoint, sizeof endpoint) !=
        EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "REGISTER from executor %s: endpoint longer "
                            "than 1023 bytes", id);
    if (reg->slots == 0 || reg->slots > 1000000)
        return ember_errorf(err, EMBER_EINVAL,
                            "REGISTER from executor %s: %" PRIu32
                            " slots (must be 1..1000000)", id, reg->slots);
    if (em_strmap_get(&ts->by_id, id))
        return ember_errorf(err, EMBER_EEXIST,
                            "REGISTER: executor id '%s' is already "
                            "registered", id);
    if (em_u64map_get(&ts->by_conn, conn))
        return ember_errorf(err, EMBER_EEXIST,
                            "REGISTER from executor %s: its connection "
                            "already has an executor", id);
    em_exec *e = calloc(1, sizeof *e);
    if (!e)
        goto nomem;
    e->id = em_strdup(id);
    e->host = em_strdup(host);
    e->endpoint = em_strdup(endpoint);
    if (!e->id || !e->host || !e->endpoint)
        goto nomem;
    e->no = ts->next_exec_no++;
    e->conn = conn;
    e->send = send;
    e->send_ctx = send_ctx;
    e->slots = e->free = reg->slots;
    e->idle_since_us = e->last_seen_us = em_loop_now_us(ts->loop);
    e->launch_buf = ember_buf_heap();
    e->kill_buf = ember_buf_heap();
    if (ts->nexecs == ts->cap_execs) {
        uint32_t cap = ts->cap_execs ? ts->cap_execs * 2 : 16;
        em_exec **n = realloc(ts->execs, cap * sizeof *n);
        if (!n)
            goto nomem;
        ts->execs = n;
        ts->cap_execs = cap;
    }
    if (em_strmap_put(&ts->by_id, id, e) != EMBER_OK)
        goto nomem;
    if (em_u64map_put(&ts->by_conn, conn, e) != EMBER_OK) {
        em_strmap_del(&ts->by_id, id);
        goto nomem;
    }
    ts->execs[ts->nexecs++] = e;
    /* A new executor may make a locality level possible (Spark too). */
    for (em_taskset *s = ts->sets; s; s = s->next)
        compute_levels(ts, s);
    ts->stats.executors++;
    ts->stats.total_slots += e->slots;
    ts->stats.free_slots += e->free;
    ts->dirty = 1;
    ember_error serr;
    em_store_report(LOG_SRC, &ts->stats.store_errors,
                    em_store_executor_add(ts->store, id, host, e->slots,
                                          em_wall_ms(), &serr),
                    &serr);
    em_log(EMBER_LOG_INFO, LOG_SRC,
           "executor %s on %s registered with %" PRIu32 " slots", id, host,
           e->slots);
    exec_event(ts, "executor_added", id, host, NULL);
    *out = e;
    return EMBER_OK;
nomem:
    exec_free(e);
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

em_exec *em_tsched_executor_by_conn(em_tsched *ts, uint64_t conn)
{
    return em_u64map_get(&ts->by_conn, conn);
}

uint32_t em_tsched_executors(em_tsched *ts, em_exec **out, uint32_t cap)
{
    for (uint32_t i = 0; i < ts->nexecs && i < cap; i++)
        out[i] = ts->execs[i];
    return ts->nexecs;
}

void em_exec_send(em_exec *e, const uint8_t *msg, size_t len)
{
    e->send(e->send_ctx, msg, len);
}

em_exec *em_tsched_executor_by_no(em_tsched *ts, uint32_t no)
{
    for (uint32_t i = 0; i < ts->nexecs; i++)
        if (ts->execs[i]->no == no)
            return ts->execs[i];
    return NULL;
}

void em_tsched_remove_shuffles(em_tsched *ts, const uint64_t *ids,
                               uint32_t n, const char *reason)
{
    if (n == 0 || ts->nexecs == 0)
        return;
    ember_buf b = ember_buf_heap();
    em_msg_batch mb;
    ember_status s = em_msg_remove_shuffles_begin(&mb, &b, reason);
    for (uint32_t i = 0; s == EMBER_OK && i < n; i++)
        s = em_msg_remove_shuffles_add(&mb, ids[i]);
    if (s == EMBER_OK)
        s = em_msg_batch_finish(&mb);
    for (uint32_t i = 0; s == EMBER_OK && i < ts->nexecs; i++)
        ts->execs[i]->send(ts->execs[i]->send_ctx, b.data, b.len);
    if (s != EMBER_OK)
        em_log(EMBER_LOG_WARN, LOG_SRC, "cannot tell executors to remove "
               "%" PRIu32 " shuffles: %s", n, ember_status_name(s));
    ember_buf_release(&b);
}

void em_tsched_remove_blocks(em_tsched *ts, const uint64_t *keys,
                             uint32_t n, const char *reason)
{
    if (n == 0 || ts->nexecs == 0)
        return;
    ember_buf b = ember_buf_heap();
    em_msg_batch mb;
    ember_status s = em_msg_remove_blocks_begin(&mb, &b, reason);
    for (uint32_t i = 0; s == EMBER_OK && i < n; i++)
        s = em_msg_remove_blocks_add(&mb, keys[i]);
    if (s == EMBER_OK)
        s = em_msg_batch_finish(&mb);
    for (uint32_t i = 0; s == EMBER_OK && i < ts->nexecs; i++)
        ts->execs[i]->send(ts->execs[i]->send_ctx, b.data, b.len);
    if (s != EMBER_OK)
        em_log(EMBER_LOG_WARN, LOG_SRC, "cannot tell executors to drop the "
               "blocks of %" PRIu32 " datasets: %s", n,
               ember_status_name(s));
    ember_buf_release(&b);
}

em_exec *em_tsched_executor_by_id(em_tsched *ts, const char *id)
{
    return em_strmap_get(&ts->by_id, id);
}

void em_tsched_executor_seen(em_tsched *ts, em_exec *e)
{
    e->last_seen_us = em_loop_now_us(ts->loop);
}

/* --------------------------------------------------------------- queues */

/* Pending: not done, no attempt running, set still launching. */
static int is_pending(const em_taskset *s, uint32_t i)
{
    return !s->succeeded[i] && s->nrunning[i] == 0;
}

static int pop_pending(const em_taskset *s, idxvec *v, uint32_t *out)
{
    while (v->n > 0) {
        uint32_t i = v->v[--v->n];
        if (is_pending(s, i)) {
            *out = i;
            return 1;
        }
    }
    return 0;
}

static int has_pending(const em_taskset *s, idxvec *v)
{
    while (v->n > 0) {
        if (is_pending(s, v->v[v->n - 1]))
            return 1;
        v->n--;
    }
    return 0;
}

/* Puts index i back on every queue it belongs to. */
static void enqueue(em_taskset *s, uint32_t i)
{
    /* A failed push only loses a locality hint: "all" is pushed last and
     * its storage never shrinks below n, so it cannot fail after submit. */
    if (s->pref_off && s->pref_off[i + 1] > s->pref_off[i]) {
        for (uint32_t k = s->pref_off[i]; k < s->pref_off[i + 1]; k++)
            (void)em_idxvec_push(s->pref_vecs[k], i);
    } else {
        (void)em_idxvec_push(&s->nopref, i);
    }
    (void)em_idxvec_push(&s->all, i);
}

static idxvec *queue_for(em_strmap *m, const char *key)
{
    idxvec *v = em_strmap_get(m, key);
    if (v)
        return v;
    v = calloc(1, sizeof *v);
    if (!v || em_strmap_put(m, key, v) != EMBER_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* The locality levels this set can use, given live executors. */
static void compute_levels(em_tsched *ts, em_taskset *s)
{
    int proc = 0, node = 0;
    for (uint32_t i = 0; i < ts->nexecs && !(proc && node); i++) {
        if (!proc && em_strmap_get(&s->by_exec, ts->execs[i]->id))
            proc = 1;
        if (!node && em_strmap_get(&s->by_host, ts->execs[i]->host))
            node = 1;
    }
    s->nlevels = 0;
    if (proc)
        s->levels[s->nlevels++] = EM_LOC_PROCESS;
    if (node)
        s->levels[s->nlevels++] = EM_LOC_NODE;
    s->levels[s->nlevels++] = EM_LOC_ANY;
    if (s->cur_level >= s->nlevels)
        s->cur_level = s->nlevels - 1;
}

static int pending_at(em_tsched *ts, em_taskset *s, em_locality l)
{
    for (uint32_t i = 0; i < ts->nexecs; i++) {
        idxvec *v = em_strmap_get(l == EM_LOC_PROCESS ? &s->by_exec
                                                      : &s->by_host,
                                  l == EM_LOC_PROCESS ? ts->execs[i]->id
                                                      : ts->execs[i]->host);
        if (v && has_pending(s, v))
            return 1;
    }
    return 0;
}

/* Spark's getAllowedLocalityLevel: wait at a level while it has work. */
static em_locality allowed_level(em_tsched *ts, em_taskset *s, uint64_t now)
{
    while (s->cur_level + 1 < s->nlevels) {
        em_locality l = s->levels[s->cur_level];
        if (!pending_at(ts, s, l)) {
            s->cur_level++;
            continue;
        }
        uint64_t wait = ts->conf.locality_wait_us[l == EM_LOC_NODE];
        if (now - s->last_launch_us >= wait) {
            s->last_launch_us += wait;
            s->cur_level++;
        } else {
            break;
        }
    }
    return s->levels[s->cur_level];
}

ember_status em_tsched_submit(em_tsched *ts, const em_taskset_spec *sp,
                              em_taskset **out, ember_error *err)
{
    *out = NULL;
    if (sp->count == 0)
        return ember_errorf(err, EMBER_EINVAL, "task set with no tasks");
    em_taskset *s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    uint32_t n = sp->count;
    s->n = n;
    s->owner = sp->owner;
    s->stage_id = sp->stage_id;
    s->stage_attempt = sp->stage_attempt;
    s->job_id = sp->job_id;
    s->is_map = sp->is_map;
    s->partitions = malloc(n * sizeof *s->partitions);
    s->succeeded = calloc(n, 1);
    s->nrunning = calloc(n, 1);
    s->spec_flag = calloc(n, 1);
    s->failures = calloc(n, sizeof *s->failures);
    s->next_attempt = calloc(n, sizeof *s->next_attempt);
    s->running = calloc(n, sizeof *s->running);
    s->all.v = malloc(n * sizeof *s->all.v);
    s->durations = malloc(n * sizeof *s->durations);
    if (!s->partitions || !s->succeeded || !s->nrunning || !s->spec_flag ||
        !s->failures || !s->next_attempt ||
        !s->running || !s->all.v || !s->durations)
        goto nomem;
    s->all.cap = n;
    memcpy(s->partitions, sp->partitions, n * sizeof *s->partitions);
    if (sp->plan_len) {
        s->plan = malloc(sp->plan_len);
        if (!s->plan)
            goto nomem;
        memcpy(s->plan, sp->plan, sp->plan_len);
        s->plan_len = sp->plan_len;
    }
    if (sp->desc && !(s->desc = em_strdup(sp->desc)))
        goto nomem;
    if (sp->prefs && sp->nprefs) {
        uint32_t total = 0;
        for (uint32_t i = 0; i < n; i++)
            total += sp->nprefs[i] * 2;
        s->pref_off = calloc((size_t)n + 1, sizeof *s->pref_off);
        s->pref_vecs = malloc((total ? total : 1) * sizeof *s->pref_vecs);
        if (!s->pref_off || !s->pref_vecs)
            goto nomem;
        uint32_t k = 0;
        for (uint32_t i = 0; i < n; i++) {
            s->pref_off[i] = k;
            for (uint32_t j = 0; j < sp->nprefs[i]; j++) {
                const em_task_pref *p = &sp->prefs[i][j];
                if (p->executor_id) {
                    idxvec *v = queue_for(&s->by_exec, p->executor_id);
                    if (!v)
                        goto nomem;
                    s->pref_vecs[k++] = v;
                }
                idxvec *h = queue_for(&s->by_host, p->host);
                if (!h)
                    goto nomem;
                s->pref_vecs[k++] = h;
            }
        }
        s->pref_off[n] = k;
    }
    /* Reverse order, so that pops hand out partition order. */
    for (uint32_t i = n; i-- > 0;)
        enqueue(s, i);
    s->idle_indices = n;
    snprintf(s->name, sizeof s->name, "TaskSet_%" PRIu64 ".%" PRIu32,
             sp->stage_id, sp->stage_attempt);
    s->entry.priority = sp->job_id;
    s->entry.stage_id = sp->stage_id;
    s->entry.name = s->name;
    s->last_launch_us = em_loop_now_us(ts->loop);
    compute_levels(ts, s);
    em_pool_add_entry(sp->pool, &s->entry);
    s->next = ts->sets;
    if (ts->sets)
        ts->sets->prev = s;
    ts->sets = s;
    ts->nsets++;
    ts->stats.tasksets++;
    ts->dirty = 1;
    *out = s;
    return EMBER_OK;
nomem:
    set_free(s);
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

/* --------------------------------------------------------------- launch */

static uint64_t stage_key(const em_taskset *s)
{
    return (s->stage_id << 16) ^ s->stage_attempt;
}

static void send_stage(em_tsched *ts, em_exec *e, em_taskset *s)
{
    uint64_t key = stage_key(s);
    if (em_u64map_get(&e->stages_sent, key))
        return;
    ember_buf b;
    b = ember_buf_heap();
    em_msg_stage m = {
        .stage_id = s->stage_id, .attempt = s->stage_attempt,
        .job_id = s->job_id, .plan = {s->plan, s->plan_len}};
    if (em_msg_encode_stage(&b, &m) == EMBER_OK &&
        em_u64map_put(&e->stages_sent, key, (void *)1) == EMBER_OK)
        e->send(e->send_ctx, b.data, b.len);
    else
        em_log(EMBER_LOG_ERROR, LOG_SRC, "out of memory sending stage %"
               PRIu64 " to executor %s", s->stage_id, e->id);
    ember_buf_release(&b);
    (void)ts;
}

/* Tells e that the stage attempt s is over (STAGE with an empty plan):
 * it may drop the description. */
static void send_stage_done(em_exec *e, const em_taskset *s)
{
    ember_buf b = ember_buf_heap();
    em_msg_stage m = {.stage_id = s->stage_id, .attempt = s->stage_attempt,
                      .job_id = s->job_id};
    if (em_msg_encode_stage(&b, &m) == EMBER_OK)
        e->send(e->send_ctx, b.data, b.len);
    ember_buf_release(&b);
}

static int launch(em_tsched *ts, em_exec *e, em_taskset *s, uint32_t i,
                  em_locality loc, int speculative)
{
    em_task *t = calloc(1, sizeof *t);
    if (!t)
        return 0;
    t->id = ts->next_task_id;
    if (em_u64map_put(&ts->tasks, t->id, t) != EMBER_OK) {
        free(t);
        return 0;
    }
    if (!e->launch_open) {
        e->launch_buf.len = 0;
        if (em_msg_launch_begin(&e->launch, &e->launch_buf) != EMBER_OK ||
            outbox_add(ts, e) != 0) {
            em_u64map_del(&ts->tasks, t->id);
            free(t);
            return 0;
        }
        e->launch_open = 1;
    }
    ts->next_task_id++;
    uint64_t now = em_loop_now_us(ts->loop);
    t->set = s;
    t->exec = e;
    t->index = i;
    t->attempt = s->next_attempt[i]++;
    t->launch_us = now;
    t->speculative = (uint8_t)speculative;
    t->exec_next = e->running;
    if (e->running)
        e->running->exec_prev = t;
    e->running = t;
    t->idx_next = s->running[i];
    s->running[i] = t;
    if (s->nrunning[i]++ == 0 && !speculative)
        s->idle_indices--;
    e->free--;
    ts->stats.free_slots--;
    e->idle_since_us = now;
    if (e->blocked_since_us) {
        ts->stats.locality_idle_slot_us += now - e->blocked_since_us;
        e->blocked_since_us = 0;
    }
    em_pool_entry_running_add(&s->entry, 1);
    send_stage(ts, e, s);
    em_msg_task mt = {
        .task_id = t->id, .job_id = s->job_id, .stage_id = s->stage_id,
        .stage_attempt = s->stage_attempt, .partition = s->partitions[i],
        .attempt = t->attempt, .speculative = t->speculative};
    if (em_msg_launch_add(&e->launch, &mt) != EMBER_OK)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "out of memory queueing task %"
               PRIu64, t->id);
    ts->stats.launched++;
    ts->stats.launched_at[loc]++;
    if (speculative)
        ts->stats.speculative_launched++;
    ember_error serr;
    em_store_report(
        LOG_SRC, &ts->stats.store_errors,
        em_store_task_begin(ts->store, t->id, s->stage_id, s->stage_attempt,
                            s->partitions[i], t->attempt, e->id, speculative,
                            em_locality_name(loc), em_wall_ms(), &serr),
        &serr);
    return 1;
}

typedef struct offer {
    em_tsched *ts;
    em_exec *exec;
    uint64_t now;
    int blocked; /* a set had pending work this executor may not take yet */
} offer;

static int offer_visit(em_pool_entry *entry, void *ctx)
{
    offer *o = ctx;
    em_taskset *s = (em_taskset *)entry;
    em_exec *e = o->exec;
    if (s->zombie || (s->idle_indices == 0 && s->spec.n == 0))
        return 0;
    uint32_t i;
    if (s->idle_indices > 0) {
        em_locality allowed = allowed_level(o->ts, s, o->now);
        uint64_t wait = o->ts->conf.locality_wait_us[1];
        /* ember's rule: a slot idle for the whole wait takes any task. */
        if (o->now - e->idle_since_us >= wait)
            allowed = EM_LOC_ANY;
        idxvec *v;
        if ((v = em_strmap_get(&s->by_exec, e->id)) && pop_pending(s, v, &i))
            return launch(o->ts, e, s, i, EM_LOC_PROCESS, 0);
        if (allowed >= EM_LOC_NODE &&
            (v = em_strmap_get(&s->by_host, e->host)) && pop_pending(s, v, &i))
            return launch(o->ts, e, s, i, EM_LOC_NODE, 0);
        if (pop_pending(s, &s->nopref, &i))
            return launch(o->ts, e, s, i, EM_LOC_NO_PREF, 0);
        if (allowed >= EM_LOC_ANY && pop_pending(s, &s->all, &i)) {
            /* Spark resets the wait when it launches at the allowed level. */
            s->last_launch_us = o->now;
            return launch(o->ts, e, s, i, EM_LOC_ANY, 0);
        }
        if (s->idle_indices > 0)
            o->blocked = 1;
    }
    if (s->spec.n > 0 && em_tsched_pop_speculative(s, e, &i))
        return launch(o->ts, e, s, i, EM_LOC_ANY, 1);
    return 0;
}

static int64_t locality_tick(em_loop *loop, uint64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    em_tsched *ts = ctx;
    ts->locality_timer = 0;
    ts->dirty = 1;
    return EM_LOOP_TIMER_STOP;
}

static void reap(em_tsched *ts)
{
    em_taskset *s = ts->sets;
    while (s) {
        em_taskset *next = s->next;
        if (s->zombie && s->entry.running == 0) {
            if (s->prev)
                s->prev->next = s->next;
            else
                ts->sets = s->next;
            if (s->next)
                s->next->prev = s->prev;
            ts->nsets--;
            ts->stats.tasksets--;
            em_pool_remove_entry(&s->entry);
            /* Executors forget the stage attempt: bounded memory here and
             * there (a STAGE with an empty plan says so). */
            for (uint32_t k = 0; k < ts->nexecs; k++)
                if (em_u64map_get(&ts->execs[k]->stages_sent, stage_key(s))) {
                    em_u64map_del(&ts->execs[k]->stages_sent, stage_key(s));
                    send_stage_done(ts->execs[k], s);
                }
            if (ts->ev.taskset_removed)
                ts->ev.taskset_removed(ts->ev.ctx, s);
            set_free(s);
        }
        s = next;
    }
}

void em_tsched_schedule(em_tsched *ts)
{
    ts->dirty = 0;
    reap(ts);
    if (ts->stats.free_slots == 0 || ts->nsets == 0)
        return;
    offer o = {.ts = ts, .now = em_loop_now_us(ts->loop)};
    int progress = 1;
    /* Round-robin over executors, one task each per round, to spread. */
    while (progress) {
        progress = 0;
        for (uint32_t k = 0; k < ts->nexecs; k++) {
            em_exec *e = ts->execs[k];
            if (e->free == 0)
                continue;
            o.exec = e;
            if (em_pool_tree_offer(ts->pools, offer_visit, &o))
                progress = 1;
        }
    }
    if (!o.blocked) {
        for (uint32_t k = 0; k < ts->nexecs; k++) {
            em_exec *e = ts->execs[k];
            if (e->blocked_since_us) {
                ts->stats.locality_idle_slot_us +=
                    o.now - e->blocked_since_us;
                e->blocked_since_us = 0;
            }
        }
        return;
    }
    /* Work is held back for locality: wake up when a wait expires. */
    uint64_t next = UINT64_MAX;
    uint64_t wait_any = ts->conf.locality_wait_us[1];
    for (uint32_t k = 0; k < ts->nexecs; k++) {
        em_exec *e = ts->execs[k];
        if (e->free == 0)
            continue;
        if (!e->blocked_since_us)
            e->blocked_since_us = o.now;
        uint64_t at = e->idle_since_us + wait_any;
        /* A deadline already past changes nothing now (a slot idle that
         * long takes any task it is offered): waking for it would spin. */
        if (at > o.now && at < next)
            next = at;
    }
    for (em_taskset *s = ts->sets; s; s = s->next) {
        if (s->zombie || s->idle_indices == 0 ||
            s->cur_level + 1 >= s->nlevels)
            continue;
        em_locality l = s->levels[s->cur_level];
        uint64_t at = s->last_launch_us +
                      ts->conf.locality_wait_us[l == EM_LOC_NODE];
        /* Past: the set was not offered a slot (a pool at its maxShare);
         * its level moves when it is. */
        if (at > o.now && at < next)
            next = at;
    }
    if (next != UINT64_MAX &&
        (!ts->locality_timer || next < ts->locality_deadline)) {
        if (ts->locality_timer)
            em_loop_timer_cancel(ts->loop, ts->locality_timer);
        ts->locality_timer = 0;
        uint64_t delay = next > o.now ? next - o.now : 0;
        if (em_loop_timer_add(ts->loop, delay, locality_tick, ts,
                              &ts->locality_timer) == EMBER_OK)
            ts->locality_deadline = next;
    }
}

void em_tsched_flush(em_tsched *ts)
{
    for (uint32_t k = 0; k < ts->noutbox; k++) {
        em_exec *e = ts->outbox[k];
        e->queued = 0;
        if (e->kill_open) {
            if (em_msg_batch_finish(&e->kill) == EMBER_OK)
                e->send(e->send_ctx, e->kill_buf.data, e->kill_buf.len);
            e->kill_open = 0;
            e->kill_buf.len = 0;
        }
        if (e->launch_open) {
            if (em_msg_batch_finish(&e->launch) == EMBER_OK)
                e->send(e->send_ctx, e->launch_buf.data, e->launch_buf.len);
            e->launch_open = 0;
            e->launch_buf.len = 0;
        }
    }
    ts->noutbox = 0;
}

/* --------------------------------------------------------------- finish */

static void queue_kill(em_tsched *ts, em_task *t, const char *reason)
{
    em_exec *e = t->exec;
    if (t->kill_sent)
        return;
    t->kill_sent = 1;
    if (e->kill_open && strcmp(e->kill_reason, reason) != 0) {
        /* One reason per KILL message: send the other reason's batch. */
        if (em_msg_batch_finish(&e->kill) == EMBER_OK)
            e->send(e->send_ctx, e->kill_buf.data, e->kill_buf.len);
        e->kill_open = 0;
    }
    if (!e->kill_open) {
        e->kill_buf.len = 0;
        snprintf(e->kill_reason, sizeof e->kill_reason, "%s", reason);
        if (em_msg_kill_begin(&e->kill, &e->kill_buf, e->kill_reason) !=
                EMBER_OK ||
            outbox_add(ts, e) != 0)
            return;
        e->kill_open = 1;
    }
    (void)em_msg_kill_add(&e->kill, t->id);
}

/* Unlinks t from its executor, index and the task table; frees it. */
static void task_remove(em_tsched *ts, em_task *t, const char *status,
                        const char *error)
{
    em_taskset *s = t->set;
    em_exec *e = t->exec;
    if (t->exec_prev)
        t->exec_prev->exec_next = t->exec_next;
    else
        e->running = t->exec_next;
    if (t->exec_next)
        t->exec_next->exec_prev = t->exec_prev;
    for (em_task **p = &s->running[t->index]; *p; p = &(*p)->idx_next)
        if (*p == t) {
            *p = t->idx_next;
            break;
        }
    s->nrunning[t->index]--;
    if (e->free++ == 0)
        e->idle_since_us = em_loop_now_us(ts->loop);
    ts->stats.free_slots++;
    em_pool_entry_running_add(&s->entry, -1);
    em_u64map_del(&ts->tasks, t->id);
    ember_error serr;
    em_store_report(
        LOG_SRC, &ts->stats.store_errors,
        em_store_task_end(ts->store, t->id, status, error, em_wall_ms(), &serr),
        &serr);
    ts->dirty = 1;
    free(t);
}

/* Index i may run again (after a failure, kill or lost executor). */
static void requeue(em_taskset *s, uint32_t i)
{
    if (s->zombie || s->succeeded[i] || s->nrunning[i] > 0)
        return;
    s->idle_indices++;
    enqueue(s, i);
}

static void kill_attempts(em_tsched *ts, em_taskset *s, uint32_t i,
                          const char *reason)
{
    for (em_task *t = s->running[i]; t; t = t->idx_next)
        queue_kill(ts, t, reason);
}

static void make_zombie(em_taskset *s)
{
    if (!s->zombie) {
        s->zombie = 1;
        s->idle_indices = 0;
    }
}

static void on_failed(em_tsched *ts, em_task *t, const em_msg_update *u,
                      int lost);

static void on_finished(em_tsched *ts, em_task *t, const em_msg_update *u)
{
    em_taskset *s = t->set;
    uint32_t i = t->index;
    em_exec *e = t->exec;
    if (s->succeeded[i]) {
        /* Another attempt won; one committed result per partition. */
        ts->stats.duplicate_results++;
        task_remove(ts, t, "SUCCESS", "result discarded: another attempt "
                    "of this partition finished first");
        return;
    }
    char why[400];
    if (ts->ev.check_result &&
        ts->ev.check_result(ts->ev.ctx, s, s->partitions[i], u->result, why,
                            sizeof why) != 0) {
        em_msg_update failed = *u;
        failed.state = EM_TASK_FAILED;
        failed.error = (em_bytes){(const uint8_t *)why, strlen(why)};
        on_failed(ts, t, &failed, 0);
        return;
    }
    s->succeeded[i] = 1;
    s->num_succeeded++;
    s->durations[s->ndurations++] = em_loop_now_us(ts->loop) - t->launch_us;
    ts->stats.succeeded++;
    task_remove(ts, t, "SUCCESS", NULL);
    kill_attempts(ts, s, i, "another attempt of this partition finished");
    if (s->num_succeeded == s->n)
        make_zombie(s);
    if (ts->ev.task_accums && u->accums.len)
        ts->ev.task_accums(ts->ev.ctx, s, s->partitions[i], u->accums);
    if (ts->ev.task_succeeded)
        ts->ev.task_succeeded(ts->ev.ctx, s, s->partitions[i], e,
                              u->result);
}

/* A failed attempt (lost: its executor went away, recorded as LOST). */
static void on_failed(em_tsched *ts, em_task *t, const em_msg_update *u,
                      int lost)
{
    em_taskset *s = t->set;
    uint32_t i = t->index, attempt = t->attempt;
    uint64_t tid = t->id;
    char err[600], exec_id[256];
    int len = (int)(u->error.len > 400 ? 400 : u->error.len);
    snprintf(err, sizeof err, "%.*s", len, (const char *)u->error.data);
    snprintf(exec_id, sizeof exec_id, "%s", t->exec->id);
    int ours = t->kill_sent;
    em_tsched_commit_release(ts, s, i, attempt);
    if (!lost)
        ts->stats.failed++;
    task_remove(ts, t, ours ? "KILLED" : lost ? "LOST" : "FAILED", err);
    if (ours || s->succeeded[i] || s->zombie)
        return;
    s->failures[i]++;
    char *last = malloc(1200);
    if (last) {
        snprintf(last, 1200, "task %" PRIu32 ".%" PRIu32 " in stage %" PRIu64
                 ".%" PRIu32 " (TID %" PRIu64 ") on executor %s: %s",
                 s->partitions[i], attempt, s->stage_id, s->stage_attempt,
                 tid, exec_id, err);
        free(s->last_error);
        s->last_error = last;
    }
    em_log(EMBER_LOG_WARN, LOG_SRC, "lost %s", last ? last : err);
    if (s->failures[i] >= ts->conf.max_failures) {
        char reason[1024];
        snprintf(reason, sizeof reason, "Task %" PRIu32 " in stage %" PRIu64
                 ".%" PRIu32 " failed %u times, most recent failure: %s",
                 s->partitions[i], s->stage_id, s->stage_attempt,
                 (unsigned)s->failures[i], last ? last : err);
        make_zombie(s);
        for (uint32_t k = 0; k < s->n; k++)
            kill_attempts(ts, s, k, "stage aborted");
        if (ts->ev.taskset_aborted)
            ts->ev.taskset_aborted(ts->ev.ctx, s, reason);
        return;
    }
    requeue(s, i);
}

static void on_killed(em_tsched *ts, em_task *t, const em_msg_update *u)
{
    em_taskset *s = t->set;
    uint32_t i = t->index;
    char err[512];
    int len = (int)(u->error.len > 400 ? 400 : u->error.len);
    snprintf(err, sizeof err, "%.*s", len, (const char *)u->error.data);
    em_tsched_commit_release(ts, s, i, t->attempt);
    ts->stats.killed++;
    task_remove(ts, t, "KILLED", err);
    requeue(s, i); /* a kill we did not ask for is not the task's fault */
}

static void on_fetch_failed(em_tsched *ts, em_task *t, const em_msg_update *u)
{
    em_taskset *s = t->set;
    uint32_t part = s->partitions[t->index];
    char err[512], lost[256];
    int len = (int)(u->error.len > 400 ? 400 : u->error.len);
    snprintf(err, sizeof err, "%.*s", len, (const char *)u->error.data);
    if (em_bytes_to_cstr(u->lost_executor, lost, sizeof lost) != EMBER_OK)
        lost[0] = '\0';
    char why[400];
    if (ts->ev.check_fetch &&
        ts->ev.check_fetch(ts->ev.ctx, s, u->shuffle_id, u->map_index, why,
                           sizeof why) != 0) {
        em_msg_update failed = *u;
        failed.state = EM_TASK_FAILED;
        failed.error = (em_bytes){(const uint8_t *)why, strlen(why)};
        on_failed(ts, t, &failed, 0);
        return;
    }
    em_tsched_commit_release(ts, s, t->index, t->attempt);
    ts->stats.fetch_failed++;
    task_remove(ts, t, "FETCH_FAILED", err);
    if (s->zombie)
        return; /* the stage attempt already failed */
    make_zombie(s);
    if (ts->ev.fetch_failed)
        ts->ev.fetch_failed(ts->ev.ctx, s, part, u->shuffle_id, u->map_index,
                            lost, err);
}

void em_tsched_status(em_tsched *ts, em_exec *exec, const em_msg_update *u)
{
    em_task *t = em_u64map_get(&ts->tasks, u->task_id);
    if (!t) {
        em_log(EMBER_LOG_DEBUG, LOG_SRC, "status for unknown task %" PRIu64
               " from executor %s ignored", u->task_id, exec->id);
        return;
    }
    if (t->exec != exec) {
        em_log(EMBER_LOG_WARN, LOG_SRC, "executor %s reported task %" PRIu64
               ", which runs on executor %s: ignored", exec->id, u->task_id,
               t->exec->id);
        return;
    }
    switch (u->state) {
    case EM_TASK_RUNNING:
        break;
    case EM_TASK_FINISHED:
        on_finished(ts, t, u);
        break;
    case EM_TASK_FAILED:
        on_failed(ts, t, u, 0);
        break;
    case EM_TASK_KILLED:
        if (t->kill_sent) {
            /* Any end but success gives up a commit claim (Spark). */
            em_tsched_commit_release(ts, t->set, t->index, t->attempt);
            ts->stats.killed++;
            task_remove(ts, t, "KILLED", NULL);
        } else {
            on_killed(ts, t, u);
        }
        break;
    case EM_TASK_FETCH_FAILED:
        on_fetch_failed(ts, t, u);
        break;
    default:
        break;
    }
}

void em_tsched_executor_lost(em_tsched *ts, em_exec *e, const char *reason)
{
    char msg[512];
    snprintf(msg, sizeof msg, "executor %s lost: %s", e->id, reason);
    em_log(EMBER_LOG_WARN, LOG_SRC, "%s", msg);
    /* As Spark's ExecutorLostFailure: each task that was running there
     * failed, and the failure counts towards ember.task.maxFailures — a
     * function that crashes its executor every time must end the job, not
     * kill executors forever. Each failure names what the task ran, so the
     * user can tell which function brought the executor down. */
    while (e->running) {
        em_task *t = e->running;
        const em_taskset *s = t->set;
        char tmsg[512];
        snprintf(tmsg, sizeof tmsg, "executor %s lost while running task %"
                 PRIu64 " (stage %" PRIu64 "%s%s) partition %" PRIu32
                 ": %s", e->id, t->id, s->stage_id, s->desc ? ": " : "",
                 s->desc ? s->desc : "", s->partitions[t->index], reason);
        ts->stats.lost++;
        em_msg_update u = {.task_id = t->id, .state = EM_TASK_FAILED};
        u.error = (em_bytes){(const uint8_t *)tmsg, strlen(tmsg)};
        on_failed(ts, t, &u, 1);
    }
    for (uint32_t k = 0; k < ts->noutbox; k++)
        if (ts->outbox[k] == e) {
            ts->outbox[k] = ts->outbox[--ts->noutbox];
            break;
        }
    for (uint32_t k = 0; k < ts->nexecs; k++)
        if (ts->execs[k] == e) {
            ts->execs[k] = ts->execs[--ts->nexecs];
            break;
        }
    em_strmap_del(&ts->by_id, e->id);
    em_u64map_del(&ts->by_conn, e->conn);
    ts->stats.executors--;
    ts->stats.total_slots -= e->slots;
    ts->stats.free_slots -= e->free;
    for (em_taskset *s = ts->sets; s; s = s->next)
        compute_levels(ts, s);
    ember_error serr;
    em_store_report(
        LOG_SRC, &ts->stats.store_errors,
        em_store_executor_remove(ts->store, e->id, reason, em_wall_ms(), &serr),
        &serr);
    exec_event(ts, "executor_lost", e->id, e->host, reason);
    uint32_t no = e->no;
    char *id = e->id;
    e->id = NULL;
    exec_free(e);
    if (ts->ev.executor_lost)
        ts->ev.executor_lost(ts->ev.ctx, no, id, reason);
    free(id);
    ts->dirty = 1;
}

void em_tsched_cancel(em_tsched *ts, em_taskset *s, const char *reason)
{
    make_zombie(s);
    for (uint32_t i = 0; i < s->n; i++)
        kill_attempts(ts, s, i, reason);
    ts->dirty = 1;
}

/* ------------------------------------------------------ commit arbiter */

/* ---------------------------------------------------------- speculation */

static int64_t heartbeat_tick(em_loop *loop, uint64_t id, void *ctx)
{
    (void)id;
    em_tsched *ts = ctx;
    uint64_t now = em_loop_now_us(loop);
    for (uint32_t k = 0; k < ts->nexecs;) {
        em_exec *e = ts->execs[k];
        if (now - e->last_seen_us > ts->conf.executor_timeout_us) {
            char why[128];
            snprintf(why, sizeof why, "no heartbeat for %" PRIu64 " ms",
                     (now - e->last_seen_us) / 1000);
            em_tsched_executor_lost(ts, e, why);
            continue; /* the array shrank into slot k */
        }
        k++;
    }
    return (int64_t)(ts->conf.executor_timeout_us / 4 + 1);
}

void em_tsched_get_stats(const em_tsched *ts, em_tsched_stats *out)
{
    *out = ts->stats;
}
