/*
 * dag/dag_scheduler.c — see dag_scheduler.h: applications, stages, jobs,
 * submission and task results. Lost output is recovery.c's business, what
 * executors are told about a stage is stage_desc.c's (dag_internal.h).
 *
 * Vocabulary (Spark's): a shuffle is identified within an application by
 * the dataset that reads it and the index of that parent edge, so later
 * jobs of the same session that reach the same dataset reuse it. Each
 * shuffle has one shuffle-map stage that writes it; each job has one
 * result stage. A stage is WAITING for parents, RUNNING a task set, or
 * FAILED (waiting to be resubmitted after a fetch failure).
 */
#include "dag/dag_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "ember/kernel/log.h"
#include "util/map.h"
#include "util/text.h"

#define LOG_SRC "dag"

/* ---------------------------------------------------------------- plans */

ember_status em_plan_create(em_plan **out, em_lineage *l, ember_error *err)
{
    *out = NULL;
    em_plan *p = calloc(1, sizeof *p);
    if (!p) {
        em_lineage_free(l);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    p->l = l;
    p->refs = 1;
    ember_status st = em_lineage_encode(l, &p->json, &p->json_len, err);
    if (st != EMBER_OK) {
        em_plan_unref(p);
        return st;
    }
    *out = p;
    return EMBER_OK;
}

void em_plan_ref(em_plan *p) { p->refs++; }

void em_plan_unref(em_plan *p)
{
    if (!p || --p->refs > 0)
        return;
    em_lineage_free(p->l);
    free(p->json);
    free(p);
}

const em_lineage *em_plan_lineage(const em_plan *p) { return p->l; }

/* ---------------------------------------------------------------- util */

/* Appends a history event (the store's events table) for a job or stage. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void history(em_dag *d, const char *kind, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                em_store_event(d->store, em_wall_ms(), kind, detail, &serr),
                &serr);
}

void em_dag_conf_defaults(em_dag_conf *c)
{
    c->max_consecutive_attempts = 4;
    c->max_result_size = (uint64_t)1 << 30;
    c->resubmit_delay_us = 200000;
}

/* ------------------------------------------------------------ lifecycle */

static int ev_check_result(void *ctx, em_taskset *ts, uint32_t partition,
                           em_bytes result, char *why, size_t cap);
static void ev_task_accums(void *ctx, em_taskset *ts, uint32_t partition,
                           em_bytes accums);
static void ev_task_succeeded(void *ctx, em_taskset *ts, uint32_t partition,
                              const em_exec *exec, em_bytes result);
static void ev_taskset_aborted(void *ctx, em_taskset *ts, const char *why);
static void ev_taskset_removed(void *ctx, em_taskset *ts);

ember_status em_dag_create(em_dag **out, em_loop *loop, em_pool_tree *pools,
                           em_store *store, const em_dag_conf *conf,
                           ember_error *err)
{
    *out = NULL;
    em_dag *d = calloc(1, sizeof *d);
    if (!d)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    d->loop = loop;
    d->pools = pools;
    d->store = store;
    d->conf = *conf;
    if (d->conf.max_consecutive_attempts == 0)
        d->conf.max_consecutive_attempts = 1;
    d->next_stage_id = 1;
    d->next_shuffle_id = 1;
    ember_status st = em_block_locs_create(&d->blocks, store,
                                           &d->stats.store_errors, err);
    if (st != EMBER_OK) {
        free(d);
        return st;
    }
    *out = d;
    return EMBER_OK;
}

em_tsched_events em_dag_tsched_events(em_dag *d)
{
    em_tsched_events ev = {
        .ctx = d,
        .check_result = ev_check_result,
        .task_accums = ev_task_accums,
        .task_succeeded = ev_task_succeeded,
        .check_fetch = em_dag_check_fetch,
        .fetch_failed = em_dag_fetch_failed,
        .taskset_aborted = ev_taskset_aborted,
        .taskset_removed = ev_taskset_removed,
        .executor_lost = em_dag_executor_lost,
    };
    return ev;
}

void em_dag_attach(em_dag *d, em_tsched *ts) { d->ts = ts; }

void em_dag_set_registry(em_dag *d, const em_registry *registry)
{
    d->registry = registry;
}

void em_dag_set_next_ids(em_dag *d, uint64_t next_stage, uint64_t next_shuffle)
{
    if (next_stage > d->next_stage_id)
        d->next_stage_id = next_stage;
    if (next_shuffle > d->next_shuffle_id)
        d->next_shuffle_id = next_shuffle;
}

/* Moves s to state st, keeping the waiting list in step. */
void em_dag_set_state(em_dag *d, stage *s, int st)
{
    if (s->state == st)
        return;
    if (s->state == ST_WAITING) {
        if (s->wprev)
            s->wprev->wnext = s->wnext;
        else
            d->waiting = s->wnext;
        if (s->wnext)
            s->wnext->wprev = s->wprev;
        s->wprev = s->wnext = NULL;
    }
    if (st == ST_WAITING) {
        s->wprev = NULL;
        s->wnext = d->waiting;
        if (d->waiting)
            d->waiting->wprev = s;
        d->waiting = s;
    }
    s->state = st;
}

static void stage_free(em_dag *d, stage *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        d->stages = s->next;
    if (s->next)
        s->next->prev = s->prev;
    em_dag_set_state(d, s, ST_IDLE); /* off the waiting list */
    for (uint32_t k = 0; k < d->nscratch; k++)
        if (d->scratch[k] == s)
            d->scratch[k] = NULL;
    d->stats.stages--;
    if (d->ts)
        em_tsched_stage_done(d->ts, s->id);
    em_plan_unref(s->plan);
    free(s->sets);
    free(s->parents);
    free(s->inputs);
    free(s->jobs);
    free(s->pending);
    free(s);
}

/* Stops every live task set of s (running attempts get a KILL). */
void em_dag_cancel_sets(em_dag *d, stage *s, const char *why)
{
    for (uint32_t k = 0; k < s->nsets; k++)
        em_tsched_cancel(d->ts, s->sets[k], why);
}

/* A dead stage (its job ended, its application closed) goes when no task
 * set points at it any more. */
static void stage_maybe_free(em_dag *d, stage *s)
{
    if (s->dead && s->nsets == 0)
        stage_free(d, s);
}

static void shuffle_free(shuffle *sh)
{
    if (!sh)
        return;
    free(sh->loc);
    free(sh);
}

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->parts);
    free(j->done);
    free(j->stages);
    free(j->pool);
    free(j->group);
    free(j->description);
    free(j->action);
    free(j);
}

void em_dag_end_job(em_dag *d, job *j, ember_status st, const char *msg);

static void app_free(app *a)
{
    size_t pos = 0;
    void *v;
    while (em_u64map_next(&a->shuffles, &pos, NULL, &v))
        shuffle_free(v);
    em_u64map_free(&a->shuffles);
    em_u64map_free(&a->fingerprints);
    em_u64map_free(&a->persisted);
    em_accums_destroy(a->accums);
    free(a->name);
    free(a);
}

void em_dag_destroy(em_dag *d)
{
    if (!d)
        return;
    size_t pos = 0;
    void *v;
    /* End jobs one at a time: ending one edits the map. */
    for (;;) {
        pos = 0;
        if (!em_u64map_next(&d->jobs, &pos, NULL, &v))
            break;
        em_dag_end_job(d, v, EMBER_ECANCELED, "kernel shutting down");
    }
    if (d->resubmit_timer)
        em_loop_timer_cancel(d->loop, d->resubmit_timer);
    while (d->stages)
        stage_free(d, d->stages);
    pos = 0;
    while (em_u64map_next(&d->apps, &pos, NULL, &v))
        app_free(v);
    em_u64map_free(&d->apps);
    em_u64map_free(&d->jobs);
    em_u64map_free(&d->shuffles_by_id);
    em_block_locs_destroy(d->blocks);
    free(d);
}

/* --------------------------------------------------------- applications */

ember_status em_dag_app_open(em_dag *d, uint64_t app_id, const char *name,
                             ember_error *err)
{
    if (em_u64map_get(&d->apps, app_id))
        return ember_errorf(err, EMBER_EEXIST, "application %" PRIu64
                            " is already open", app_id);
    app *a = calloc(1, sizeof *a);
    if (!a || !(a->name = em_strdup(name ? name : "")) ||
        em_u64map_put(&d->apps, app_id, a) != EMBER_OK) {
        if (a)
            free(a->name);
        free(a);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    a->id = app_id;
    ember_error serr;
    em_store_report(
        LOG_SRC, &d->stats.store_errors,
        em_store_app_begin(d->store, app_id, a->name, em_wall_ms(), &serr),
        &serr);
    return EMBER_OK;
}

/* Tells the executors to drop the blocks of the app's persisted datasets
 * ids[0..n) (REMOVE_BLOCKS; keys as runtime/ops_cache.c makes them). */
static void remove_blocks(em_dag *d, const app *a, const uint64_t *ids,
                          uint32_t n, const char *reason)
{
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys)
        return;
    for (uint32_t i = 0; i < n; i++)
        keys[i] = a->id << 32 | (ids[i] & 0xffffffffu);
    em_tsched_remove_blocks(d->ts, keys, n, reason);
    free(keys);
}

void em_dag_unpersist(em_dag *d, uint64_t app_id, uint64_t dataset)
{
    app *a = em_u64map_get(&d->apps, app_id);
    if (!a || !em_u64map_del(&a->persisted, dataset))
        return;
    remove_blocks(d, a, &dataset, 1, "unpersist");
    em_block_locs_remove_dataset(d->blocks, app_id, dataset);
}

void em_dag_app_close(em_dag *d, uint64_t app_id)
{
    app *a = em_u64map_get(&d->apps, app_id);
    if (!a)
        return;
    em_dag_cancel_group(d, app_id, NULL, "application closed");
    /* Map stages of this application go with their shuffles, and the
     * executors delete the shuffles' files. */
    size_t pos = 0;
    void *v;
    ember_error serr;
    uint32_t nids = 0;
    uint64_t *ids = malloc((a->shuffles.count ? a->shuffles.count : 1) *
                           sizeof *ids);
    while (em_u64map_next(&a->shuffles, &pos, NULL, &v)) {
        shuffle *sh = v;
        if (ids)
            ids[nids++] = sh->id;
        em_u64map_del(&d->shuffles_by_id, sh->id);
        em_store_report(
            LOG_SRC, &d->stats.store_errors,
            em_store_map_output_remove_shuffle(d->store, sh->id, &serr), &serr);
        em_store_report(LOG_SRC, &d->stats.store_errors,
                        em_store_shuffle_remove(d->store, sh->id, &serr),
                        &serr);
        stage *s = sh->map_stage;
        if (s) {
            s->out = NULL;
            s->dead = 1;
            em_dag_set_state(d, s, ST_IDLE);
            em_dag_cancel_sets(d, s, "application closed");
            stage_maybe_free(d, s);
        }
    }
    /* Stages still alive (their task sets draining) must not reach the
     * shuffles freed below. */
    for (stage *s = d->stages; s; s = s->next)
        if (s->app == a) {
            s->dead = 1;
            s->ninputs = 0;
            s->nparents = 0;
            s->out = NULL;
            s->app = NULL;
        }
    em_tsched_remove_shuffles(d->ts, ids, nids, "application closed");
    free(ids);
    /* and the blocks of its persisted datasets */
    ids = malloc((a->persisted.count ? a->persisted.count : 1) * sizeof *ids);
    nids = 0;
    pos = 0;
    uint64_t key;
    while (ids && em_u64map_next(&a->persisted, &pos, &key, NULL))
        ids[nids++] = key;
    if (ids)
        remove_blocks(d, a, ids, nids, "application closed");
    free(ids);
    em_block_locs_remove_app(d->blocks, app_id);
    em_u64map_del(&d->apps, app_id);
    em_store_report(
        LOG_SRC, &d->stats.store_errors,
        em_store_app_end(d->store, app_id, "FINISHED", em_wall_ms(), &serr),
        &serr);
    app_free(a);
}

/* --------------------------------------------------------------- stages */

static stage *stage_new(em_dag *d, app *a, em_plan *plan, uint32_t node,
                        int is_map)
{
    stage *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->app = a;
    const em_node *n = &plan->l->nodes[node];
    s->id = d->next_stage_id++;
    s->is_map = is_map;
    s->plan = plan;
    em_plan_ref(plan);
    s->node = node;
    s->nparts = n->partitions;
    snprintf(s->name, sizeof s->name, "%s [%" PRIu64 "]", n->op->name,
             n->id);
    s->next = d->stages;
    if (d->stages)
        d->stages->prev = s;
    d->stages = s;
    d->stats.stages++;
    return s;
}

static uint64_t shuffle_key(uint64_t dataset, uint32_t edge)
{
    return (dataset << 8) | edge;
}

/* Shuffle edges (child index, edge) reachable from node through narrow
 * dependencies: the stage's inputs. Iterative DFS over a visited map. */
typedef struct edge {
    uint32_t child, dep;
} edge;

static ember_status stage_inputs(const em_lineage *l, uint32_t node,
                                 edge **out, uint32_t *nout)
{
    uint8_t *seen = calloc(node + 1, 1);
    uint32_t *stack = malloc((size_t)(node + 1) * sizeof *stack);
    edge *edges = NULL;
    uint32_t n = 0, cap = 0, sp = 0;
    if (!seen || !stack)
        goto nomem;
    stack[sp++] = node;
    seen[node] = 1;
    while (sp > 0) {
        uint32_t x = stack[--sp];
        const em_node *nx = &l->nodes[x];
        for (uint32_t k = 0; k < nx->ndeps; k++) {
            const em_dep *dep = &nx->deps[k];
            if (dep->kind == EM_DEP_SHUFFLE) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 4;
                    edge *ne = realloc(edges, cap * sizeof *ne);
                    if (!ne)
                        goto nomem;
                    edges = ne;
                }
                edges[n++] = (edge){x, k};
            } else if (!seen[dep->parent]) {
                seen[dep->parent] = 1;
                stack[sp++] = dep->parent;
            }
        }
    }
    free(seen);
    free(stack);
    *out = edges;
    *nout = n;
    return EMBER_OK;
nomem:
    free(seen);
    free(stack);
    free(edges);
    return EMBER_ENOMEM;
}

static shuffle *shuffle_of(app *a, const em_lineage *l, edge e)
{
    return em_u64map_get(&a->shuffles,
                         shuffle_key(l->nodes[e.child].id, e.dep));
}

/* Links s to the shuffles of its input edges (all exist already). */
static ember_status stage_link(stage *s, app *a, const edge *edges,
                               uint32_t n)
{
    const em_lineage *l = s->plan->l;
    s->inputs = calloc(n ? n : 1, sizeof *s->inputs);
    s->parents = calloc(n ? n : 1, sizeof *s->parents);
    if (!s->inputs || !s->parents)
        return EMBER_ENOMEM;
    for (uint32_t k = 0; k < n; k++) {
        shuffle *sh = shuffle_of(a, l, edges[k]);
        s->inputs[s->ninputs++] = sh;
        int dup = 0;
        for (uint32_t p = 0; p < s->nparents; p++)
            dup |= s->parents[p] == sh->map_stage;
        if (!dup)
            s->parents[s->nparents++] = sh->map_stage;
    }
    return EMBER_OK;
}

static ember_status get_or_create_shuffle(em_dag *d, app *a, em_plan *plan,
                                          edge e, ember_error *err)
{
    const em_lineage *l = plan->l;
    const em_node *child = &l->nodes[e.child];
    uint32_t parent = child->deps[e.dep].parent;
    uint64_t key = shuffle_key(child->id, e.dep);
    shuffle *sh = em_u64map_get(&a->shuffles, key);
    if (sh) {
        if (sh->map_stage && sh->available == sh->num_maps)
            d->stats.skipped_stages++;
        return EMBER_OK;
    }
    edge *in = NULL;
    uint32_t nin = 0;
    stage *s = NULL;
    sh = calloc(1, sizeof *sh);
    if (!sh)
        goto nomem;
    sh->id = d->next_shuffle_id++;
    sh->app = a;
    sh->key = key;
    sh->num_maps = l->nodes[parent].partitions;
    sh->num_reduces = child->partitions;
    sh->loc = calloc(sh->num_maps ? sh->num_maps : 1, sizeof *sh->loc);
    if (!sh->loc || stage_inputs(l, parent, &in, &nin) != EMBER_OK)
        goto nomem;
    s = stage_new(d, a, plan, parent, 1);
    if (!s || stage_link(s, a, in, nin) != EMBER_OK)
        goto nomem;
    s->out = sh;
    sh->map_stage = s;
    if (em_u64map_put(&a->shuffles, key, sh) != EMBER_OK)
        goto nomem;
    if (em_u64map_put(&d->shuffles_by_id, sh->id, sh) != EMBER_OK) {
        em_u64map_del(&a->shuffles, key);
        goto nomem;
    }
    free(in);
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_shuffle_add(d->store, sh->id, a->id, s->id,
                                         sh->num_maps, sh->num_reduces, &serr),
                    &serr);
    return EMBER_OK;
nomem:
    free(in);
    if (s)
        stage_free(d, s);
    shuffle_free(sh);
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

int em_dag_shuffle_ready(const shuffle *sh)
{
    return sh->available == sh->num_maps;
}

static int stage_add_job(stage *s, job *j)
{
    for (uint32_t k = 0; k < s->njobs; k++)
        if (s->jobs[k] == j)
            return 0;
    if (s->njobs == s->cap_jobs) {
        uint32_t cap = s->cap_jobs ? s->cap_jobs * 2 : 2;
        job **n = realloc(s->jobs, cap * sizeof *n);
        if (!n)
            return -1;
        s->jobs = n;
        s->cap_jobs = cap;
    }
    s->jobs[s->njobs++] = j;
    return 0;
}

static void stage_remove_job(stage *s, job *j)
{
    for (uint32_t k = 0; k < s->njobs; k++)
        if (s->jobs[k] == j) {
            s->jobs[k] = s->jobs[--s->njobs];
            return;
        }
}

/* The earliest active job of a stage: its priority and pool. */
job *em_dag_first_job(const stage *s)
{
    job *best = NULL;
    for (uint32_t k = 0; k < s->njobs; k++)
        if (!best || s->jobs[k]->id < best->id)
            best = s->jobs[k];
    return best;
}

/* ---------------------------------------------------------- submission */

static void stage_finished(em_dag *d, stage *s);
void em_dag_abort_stage(em_dag *d, stage *s, const char *msg);

/*
 * What s runs, for messages about its tasks: the operations of its
 * datasets (those s->node reaches through narrow dependencies) in plan
 * order, each with the functions it calls, as "range -> map testfn.crash";
 * cut short with "..." when longer than cap - 1 bytes (cap > 4).
 */
static void stage_ops(const stage *s, char *buf, size_t cap)
{
    const em_lineage *l = s->plan->l;
    uint8_t *in = calloc((size_t)s->node + 1, 1);
    size_t at = 0;
    if (!in) {
        snprintf(buf, cap, "%s", l->nodes[s->node].op->name);
        return;
    }
    /* Parents come before children in a lineage: one pass down marks
     * everything the stage computes. */
    in[s->node] = 1;
    for (uint32_t i = s->node + 1; i-- > 0;)
        for (uint32_t k = 0; in[i] && k < l->nodes[i].ndeps; k++)
            if (l->nodes[i].deps[k].kind == EM_DEP_NARROW)
                in[l->nodes[i].deps[k].parent] = 1;
    buf[0] = '\0';
    for (uint32_t i = 0; i <= s->node && at < cap; i++) {
        const em_node *nd = &l->nodes[i];
        if (!in[i])
            continue;
        int n = snprintf(buf + at, cap - at, "%s%s", at ? " -> " : "",
                         nd->op->name);
        at += n > 0 ? (size_t)n : 0;
        for (uint32_t f = 0; f < nd->nfns && at < cap; f++) {
            n = snprintf(buf + at, cap - at, "%s%s", f ? "," : " ",
                         nd->fns[f].name);
            at += n > 0 ? (size_t)n : 0;
        }
    }
    free(in);
    if (at >= cap)
        memcpy(buf + cap - 4, "...", 4);
}

/* Submits the tasks of s that have no output yet. */
static void submit_missing(em_dag *d, stage *s)
{
    uint32_t *parts = malloc((s->nparts ? s->nparts : 1) * sizeof *parts);
    uint32_t n = 0;
    ember_error err;
    if (!parts) {
        em_dag_abort_stage(d, s, "out of memory submitting stage");
        return;
    }
    if (s->is_map) {
        for (uint32_t p = 0; p < s->nparts; p++)
            if (!s->out->loc[p])
                parts[n++] = p;
    } else if (s->result_job) {
        job *j = s->result_job;
        for (uint32_t k = 0; k < j->nparts; k++)
            if (!j->done[k])
                parts[n++] = j->parts[k];
    }
    if (n == 0) {
        free(parts);
        em_dag_set_state(d, s, ST_IDLE);
        if (s->is_map)
            stage_finished(d, s);
        return;
    }
    job *first = em_dag_first_job(s);
    em_pool *pool = NULL;
    if (em_pool_tree_get(d->pools, first ? first->pool : NULL, &pool,
                         &err) != EMBER_OK) {
        free(parts);
        em_dag_abort_stage(d, s, err.msg);
        return;
    }
    uint32_t attempt = s->next_attempt++;
    size_t plan_len = 0;
    char *plan = em_dag_stage_plan(d, s, attempt, &plan_len);
    free(s->pending);
    s->pending = calloc(s->nparts ? s->nparts : 1, 1);
    if (!plan || !s->pending) {
        free(parts);
        free(plan);
        em_dag_abort_stage(d, s, "out of memory submitting stage");
        return;
    }
    for (uint32_t k = 0; k < n; k++)
        s->pending[parts[k]] = 1;
    s->npending = n;
    em_dag_prefs pr;
    em_dag_stage_prefs(d, s, parts, n, &pr);
    char ops[192];
    stage_ops(s, ops, sizeof ops);
    em_taskset_spec spec = {
        .stage_id = s->id, .stage_attempt = attempt,
        .job_id = first ? first->id : 0, .is_map = s->is_map,
        .partitions = parts, .count = n,
        .prefs = (const em_task_pref *const *)pr.per, .nprefs = pr.count,
        .pool = pool, .plan = (const uint8_t *)plan, .plan_len = plan_len,
        .owner = s, .desc = ops};
    em_taskset *ts = NULL;
    ember_status st = em_tsched_submit(d->ts, &spec, &ts, &err);
    em_dag_prefs_free(&pr, n);
    free(parts);
    free(plan);
    if (st != EMBER_OK) {
        em_dag_abort_stage(d, s, err.msg);
        return;
    }
    if (s->nsets == s->cap_sets) {
        uint32_t cap = s->cap_sets ? s->cap_sets * 2 : 2;
        em_taskset **sets = realloc(s->sets, cap * sizeof *sets);
        if (!sets) {
            em_tsched_cancel(d->ts, ts, "out of memory");
            em_dag_abort_stage(d, s, "out of memory submitting stage");
            return;
        }
        s->sets = sets;
        s->cap_sets = cap;
    }
    s->sets[s->nsets++] = ts;
    s->ts = ts;
    s->ts_attempt = attempt;
    em_dag_set_state(d, s, ST_RUNNING);
    d->stats.stage_attempts++;
    em_log(EMBER_LOG_INFO, LOG_SRC, "submitting stage %" PRIu64 ".%" PRIu32
           " (%s) with %" PRIu32 " tasks", s->id, attempt, s->name, n);
    history(d, "stage_submitted", "{\"stage\":%" PRIu64 ",\"attempt\":%"
            PRIu32 ",\"tasks\":%" PRIu32 "}", s->id, attempt, n);
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_stage_begin(d->store, s->id, attempt,
                                         first ? first->id : 0,
                                         s->is_map ? "shuffle_map" : "result",
                                         s->name, n, em_wall_ms(), &serr),
                    &serr);
}

/* Spark's submitStage, iteratively: parents first, then s. */
void em_dag_submit_stage(em_dag *d, stage *root)
{
    uint32_t cap = 16, sp = 0;
    stage **stack = malloc(cap * sizeof *stack);
    if (!stack) {
        em_dag_abort_stage(d, root, "out of memory submitting stage");
        return;
    }
    stack[sp++] = root;
    while (sp > 0) {
        stage *s = stack[--sp];
        if (s->state != ST_IDLE || s->dead || s->njobs == 0)
            continue;
        int missing = 0;
        for (uint32_t k = 0; k < s->nparents; k++) {
            stage *p = s->parents[k];
            if (em_dag_shuffle_ready(p->out))
                continue;
            missing = 1;
            if (sp == cap) {
                stage **n = realloc(stack, 2 * cap * sizeof *n);
                if (!n)
                    continue;
                stack = n;
                cap *= 2;
            }
            stack[sp++] = p;
        }
        if (missing)
            em_dag_set_state(d, s, ST_WAITING);
        else
            submit_missing(d, s);
    }
    free(stack);
}

/* Starts waiting stages whose parents are all available, and resubmits
 * idle parents that lost output (to a lost executor) meanwhile. */
void em_dag_submit_waiting(em_dag *d)
{
    /* Collect first: submitting changes states. */
    uint32_t n = 0;
    for (stage *s = d->waiting; s; s = s->wnext)
        n++;
    if (n == 0)
        return;
    stage **waiting = malloc(n * sizeof *waiting);
    if (!waiting)
        return;
    uint32_t m = 0;
    for (stage *s = d->waiting; s && m < n; s = s->wnext)
        waiting[m++] = s;
    /* Oldest first: the list is newest first. A stage freed meanwhile (a
     * failure ended its job) is cleared from the snapshot by stage_free. */
    stage **outer = d->scratch;
    uint32_t nouter = d->nscratch;
    d->scratch = waiting;
    d->nscratch = m;
    for (uint32_t k = m; k-- > 0;) {
        stage *s = waiting[k];
        if (!s || s->state != ST_WAITING)
            continue;
        int ok = 1;
        for (uint32_t p = 0; p < s->nparents; p++) {
            stage *par = s->parents[p];
            if (em_dag_shuffle_ready(par->out))
                continue;
            ok = 0;
            if (par->state == ST_IDLE)
                em_dag_submit_stage(d, par);
        }
        if (ok) {
            em_dag_set_state(d, s, ST_IDLE);
            em_dag_submit_stage(d, s);
        }
    }
    d->scratch = outer;
    d->nscratch = nouter;
    free(waiting);
}

static void stage_finished(em_dag *d, stage *s)
{
    em_dag_set_state(d, s, ST_IDLE);
    s->failed_attempts = 0;
    em_dag_submit_waiting(d);
}

/* ---------------------------------------------------------------- jobs */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t job_index(const job *j, uint32_t partition)
{
    uint32_t lo = 0, hi = j->nparts;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (j->parts[mid] < partition)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < j->nparts && j->parts[lo] == partition ? (int64_t)lo : -1;
}

/* Ends j: unlinks it from its stages, stops stages no other job needs,
 * reports to the listener, frees it. */
/* At a job's end, when its application has accumulators: named ones to
 * the store (job state shows them), every value to the listener. */
static void job_accums(em_dag *d, job *j)
{
    const em_accums *acc = j->app ? j->app->accums : NULL;
    if (!em_accums_count(acc))
        return;
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_accums_store(acc, d->store, j->app->id, &serr), &serr);
    if (!j->listener.accums)
        return;
    ember_buf b = ember_buf_heap();
    if (em_accums_values(acc, &b) == EMBER_OK)
        j->listener.accums(j->listener.ctx, j->id, b.data, b.len);
    else
        em_log(EMBER_LOG_ERROR, LOG_SRC, "job %" PRIu64 ": out of memory "
               "sending accumulator values", j->id);
    ember_buf_release(&b);
}

void em_dag_end_job(em_dag *d, job *j, ember_status st, const char *msg)
{
    ember_error serr;
    em_u64map_del(&d->jobs, j->id);
    for (uint32_t k = 0; k < j->nstages; k++) {
        stage *s = j->stages[k];
        stage_remove_job(s, j);
        if (s->njobs > 0)
            continue;
        /* No job needs s: stop all its attempts, old ones included. */
        if (s->state == ST_RUNNING && s->ts)
            em_store_report(LOG_SRC, &d->stats.store_errors,
                            em_store_stage_end(d->store, s->id,
                                               s->ts_attempt, "CANCELLED",
                                               msg, em_wall_ms(), &serr),
                            &serr);
        em_dag_cancel_sets(d, s, st == EMBER_OK ? "job finished"
                                               : "job ended");
        em_dag_set_state(d, s, ST_IDLE);
    }
    stage *rs = j->final;
    if (rs) {
        rs->result_job = NULL;
        rs->dead = 1;
        stage_maybe_free(d, rs);
    }
    const char *status = st == EMBER_OK          ? "SUCCEEDED"
                         : st == EMBER_ECANCELED ? "CANCELLED"
                                                 : "FAILED";
    if (st == EMBER_OK)
        d->stats.jobs_succeeded++;
    else if (st == EMBER_ECANCELED)
        d->stats.jobs_cancelled++;
    else
        d->stats.jobs_failed++;
    d->stats.active_jobs--;
    history(d, "job_end", "{\"job\":%" PRIu64 ",\"status\":\"%s\"}", j->id,
            status);
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_job_end(d->store, j->id, status,
                                     st == EMBER_OK ? NULL : msg, em_wall_ms(),
                                     &serr),
                    &serr);
    em_log(st == EMBER_OK ? EMBER_LOG_INFO : EMBER_LOG_WARN, LOG_SRC,
           "job %" PRIu64 " %s%s%s", j->id, status, msg ? ": " : "",
           msg ? msg : "");
    job_accums(d, j);
    if (j->listener.end)
        j->listener.end(j->listener.ctx, j->id, st, msg);
    job_free(j);
}

/* Every stage j needs: its result stage and all ancestors. Linear: each
 * stage is stamped when listed. */
static ember_status collect_stages(em_dag *d, job *j)
{
    uint32_t cap = 8, n = 0, head = 0;
    stage **list = malloc(cap * sizeof *list);
    if (!list)
        return EMBER_ENOMEM;
    uint64_t epoch = ++d->epoch;
    list[n++] = j->final;
    j->final->mark = epoch;
    while (head < n) {
        stage *s = list[head++];
        for (uint32_t k = 0; k < s->nparents; k++) {
            stage *p = s->parents[k];
            if (p->mark == epoch)
                continue;
            if (n == cap) {
                stage **nl = realloc(list, 2 * cap * sizeof *nl);
                if (!nl) {
                    free(list);
                    return EMBER_ENOMEM;
                }
                list = nl;
                cap *= 2;
            }
            p->mark = epoch;
            list[n++] = p;
        }
    }
    j->stages = list;
    j->nstages = n;
    return EMBER_OK;
}

/* Checks that the plan's datasets mean what earlier jobs said they did. */
static ember_status check_fingerprints(app *a, const em_lineage *l,
                                       ember_error *err)
{
    for (uint32_t i = 0; i < l->count; i++) {
        const em_node *n = &l->nodes[i];
        uintptr_t fp = (uintptr_t)em_u64map_get(&a->fingerprints, n->id);
        if (fp && fp != (uintptr_t)(n->fingerprint | 1))
            return ember_errorf(err, EMBER_EINVAL,
                                "dataset %" PRIu64 " (%s) is defined "
                                "differently from an earlier job of this "
                                "application: dataset ids must keep their "
                                "meaning within a session", n->id,
                                n->op->name);
    }
    for (uint32_t i = 0; i < l->count; i++) {
        const em_node *n = &l->nodes[i];
        if (em_u64map_put(&a->fingerprints, n->id,
                          (void *)(uintptr_t)(n->fingerprint | 1)) !=
                EMBER_OK ||
            (n->storage && strcmp(n->storage, "NONE") != 0 &&
             em_u64map_put(&a->persisted, n->id,
                           em_dag_persist_tag(n->storage)) != EMBER_OK))
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    return EMBER_OK;
}


ember_status em_dag_submit(em_dag *d, const em_dag_job *spec,
                           ember_error *err)
{
    app *a = em_u64map_get(&d->apps, spec->app_id);
    if (!a)
        return ember_errorf(err, EMBER_ENOTFOUND, "application %" PRIu64
                            " is not open", spec->app_id);
    const em_lineage *l = spec->plan->l;
    int64_t target = em_lineage_find(l, spec->dataset);
    if (target < 0)
        return ember_errorf(err, EMBER_ENOTFOUND, "the plan has no dataset %"
                            PRIu64, spec->dataset);
    const em_node *tn = &l->nodes[target];
    ember_status st = check_fingerprints(a, l, err);
    if (st != EMBER_OK)
        return st;
    if (l->naccums) {
        if (!a->accums &&
            (st = em_accums_create(&a->accums, d->registry, err)) !=
                EMBER_OK)
            return st;
        if ((st = em_accums_declare(a->accums, l->accums, l->naccums,
                                    err)) != EMBER_OK)
            return st;
    }

    job *j = calloc(1, sizeof *j);
    edge *edges = NULL;
    uint32_t nedges = 0;
    if (!j)
        goto nomem;
    j->id = spec->job_id;
    j->app = a;
    j->listener = spec->listener;
    j->nparts = spec->partitions ? spec->npartitions : tn->partitions;
    j->parts = malloc((j->nparts ? j->nparts : 1) * sizeof *j->parts);
    j->done = calloc(j->nparts ? j->nparts : 1, 1);
    if (!j->parts || !j->done)
        goto nomem;
    for (uint32_t k = 0; k < j->nparts; k++) {
        uint32_t p = spec->partitions ? spec->partitions[k] : k;
        if (p >= tn->partitions) {
            job_free(j);
            return ember_errorf(err, EMBER_EINVAL, "partition %" PRIu32
                                " requested, but dataset %" PRIu64
                                " has %" PRIu32 " partitions", p, tn->id,
                                tn->partitions);
        }
        j->parts[k] = p;
    }
    qsort(j->parts, j->nparts, sizeof *j->parts, cmp_u32);
    for (uint32_t k = 1; k < j->nparts; k++)
        if (j->parts[k] == j->parts[k - 1]) {
            uint32_t p = j->parts[k];
            job_free(j);
            return ember_errorf(err, EMBER_EINVAL, "partition %" PRIu32
                                " requested twice", p);
        }
    if ((spec->pool && !(j->pool = em_strdup(spec->pool))) ||
        (spec->group && !(j->group = em_strdup(spec->group))) ||
        (spec->description && !(j->description = em_strdup(spec->description))) ||
        (spec->action && !(j->action = em_strdup(spec->action))))
        goto nomem;

    /* Shuffle-map stages, in topological order of the reading dataset so
     * that each stage's parents exist before it. */
    uint8_t *need = calloc((size_t)target + 1, 1);
    if (!need)
        goto nomem;
    need[target] = 1;
    for (int64_t i = target; i >= 0; i--) {
        if (!need[i])
            continue;
        const em_node *n = &l->nodes[i];
        for (uint32_t k = 0; k < n->ndeps; k++)
            need[n->deps[k].parent] = 1;
    }
    for (uint32_t i = 0; i <= (uint32_t)target; i++) {
        if (!need[i])
            continue;
        const em_node *n = &l->nodes[i];
        for (uint32_t k = 0; k < n->ndeps; k++) {
            if (n->deps[k].kind != EM_DEP_SHUFFLE)
                continue;
            st = get_or_create_shuffle(d, a, spec->plan, (edge){i, k}, err);
            if (st != EMBER_OK) {
                free(need);
                job_free(j);
                return st;
            }
        }
    }
    free(need);
    if (stage_inputs(l, (uint32_t)target, &edges, &nedges) != EMBER_OK)
        goto nomem;
    j->final = stage_new(d, a, spec->plan, (uint32_t)target, 0);
    if (!j->final)
        goto nomem;
    j->final->result_job = j;
    if (stage_link(j->final, a, edges, nedges) != EMBER_OK ||
        collect_stages(d, j) != EMBER_OK)
        goto nomem;
    free(edges);
    edges = NULL;
    for (uint32_t k = 0; k < j->nstages; k++)
        if (stage_add_job(j->stages[k], j) != 0)
            goto nomem;
    if (em_u64map_put(&d->jobs, j->id, j) != EMBER_OK)
        goto nomem;
    d->stats.active_jobs++;
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_job_begin(d->store, j->id, a->id, j->description,
                                       j->pool, j->group, em_wall_ms(), &serr),
                    &serr);
    em_log(EMBER_LOG_INFO, LOG_SRC, "job %" PRIu64 ": %" PRIu32
           " partitions of %s, %" PRIu32 " stages", j->id, j->nparts,
           j->final->name, j->nstages);
    history(d, "job_start", "{\"job\":%" PRIu64 ",\"app\":%" PRIu64
            ",\"partitions\":%" PRIu32 ",\"stages\":%" PRIu32 "}", j->id,
            a->id, j->nparts, j->nstages);
    if (j->nparts == 0) {
        em_dag_end_job(d, j, EMBER_OK, NULL);
        return EMBER_OK;
    }
    em_dag_submit_stage(d, j->final);
    return EMBER_OK;
nomem:
    free(edges);
    if (j) {
        if (j->final) {
            for (uint32_t k = 0; k < j->nstages; k++)
                stage_remove_job(j->stages[k], j);
            stage_free(d, j->final);
        }
        job_free(j);
    }
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

ember_status em_dag_cancel_job(em_dag *d, uint64_t job_id, const char *reason)
{
    job *j = em_u64map_get(&d->jobs, job_id);
    if (!j)
        return EMBER_ENOTFOUND;
    char msg[600];
    snprintf(msg, sizeof msg, "Job %" PRIu64 " cancelled%s%s", job_id,
             reason ? ": " : "", reason ? reason : "");
    em_dag_end_job(d, j, EMBER_ECANCELED, msg);
    return EMBER_OK;
}

uint32_t em_dag_cancel_group(em_dag *d, uint64_t app_id, const char *group,
                             const char *reason)
{
    uint32_t count = 0;
    for (;;) {
        size_t pos = 0;
        void *v;
        job *victim = NULL;
        while (em_u64map_next(&d->jobs, &pos, NULL, &v)) {
            job *j = v;
            if (j->app->id == app_id &&
                (!group || (j->group && strcmp(j->group, group) == 0))) {
                victim = j;
                break;
            }
        }
        if (!victim)
            return count;
        char msg[600];
        snprintf(msg, sizeof msg, "Job %" PRIu64 " cancelled as part of "
                 "cancellation of job group %s%s%s", victim->id,
                 group ? group : "(all)", reason ? ": " : "",
                 reason ? reason : "");
        em_dag_end_job(d, victim, EMBER_ECANCELED, msg);
        count++;
    }
}

/* Fails every job that needs s. */
void em_dag_abort_stage(em_dag *d, stage *s, const char *msg)
{
    char full[1100];
    snprintf(full, sizeof full, "Job aborted due to stage failure: %s", msg);
    em_dag_cancel_sets(d, s, "stage aborted");
    em_dag_set_state(d, s, ST_IDLE);
    /* Ending the last job may free a result stage: stop before that. */
    while (s->njobs > 0) {
        int last = s->njobs == 1;
        em_dag_end_job(d, s->jobs[0], EMBER_EPLUGIN, full);
        if (last)
            break;
    }
}

/* ------------------------------------------------- task scheduler events */

static void register_output(em_dag *d, shuffle *sh, uint32_t map,
                            const em_exec *exec, uint64_t bytes)
{
    if (!sh->loc[map])
        sh->available++;
    sh->loc[map] = em_exec_no(exec);
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_map_output_set(d->store, sh->id, map,
                                            em_exec_id(exec), bytes, &serr),
                    &serr);
}

/* Total bytes of a map status that must list nr reduce partitions. */
static ember_status map_status_total(em_bytes result, uint32_t nr,
                                     uint64_t *total, ember_error *err)
{
    uint64_t stack_sizes[64];
    uint64_t *sizes = stack_sizes;
    if (nr > 64 && !(sizes = malloc(nr * sizeof *sizes)))
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_status st = em_map_status_decode(result, nr, sizes, err);
    *total = 0;
    for (uint32_t r = 0; st == EMBER_OK && r < nr; r++)
        *total += sizes[r];
    if (sizes != stack_sizes)
        free(sizes);
    return st;
}

/*
 * S17: an accepted attempt's accumulator updates. A result task's count
 * only the first time its job's partition finishes (a retried or
 * speculative duplicate, or an attempt of an older stage attempt that
 * finishes late, is dropped); a map task's every time the task scheduler
 * accepts one, so a map stage that runs again counts again (Spark). A
 * refused update is logged and ignored: the task still succeeded.
 */
static void ev_task_accums(void *ctx, em_taskset *ts, uint32_t partition,
                           em_bytes accums)
{
    (void)ctx;
    stage *s = em_taskset_owner(ts);
    if (s->dead || !s->app || !s->app->accums ||
        em_taskset_stage_attempt(ts) < s->valid_attempt)
        return;
    if (s->is_map) {
        if (!s->out)
            return;
    } else {
        job *j = s->result_job;
        int64_t k = j ? job_index(j, partition) : -1;
        if (k < 0 || j->done[k])
            return;
    }
    ember_error err;
    if (em_accums_merge(s->app->accums, accums.data, accums.len, &err) !=
        EMBER_OK)
        em_log(EMBER_LOG_WARN, LOG_SRC, "stage %" PRIu64 " partition %"
               PRIu32 ": accumulator updates ignored: %s", s->id, partition,
               err.msg);
}

/* A map task's result must be a map status for its shuffle: a task that
 * returns anything else failed (and is retried, then fails its job). */
static int ev_check_result(void *ctx, em_taskset *ts, uint32_t partition,
                           em_bytes result, char *why, size_t cap)
{
    (void)ctx;
    (void)partition;
    stage *s = em_taskset_owner(ts);
    if (s->dead || !s->is_map || !s->out)
        return 0;
    uint64_t total;
    ember_error err;
    if (map_status_total(result, s->out->num_reduces, &total, &err) ==
        EMBER_OK)
        return 0;
    snprintf(why, cap, "the task's map status is invalid: %s", err.msg);
    return -1;
}

static void ev_task_succeeded(void *ctx, em_taskset *ts, uint32_t partition,
                              const em_exec *exec, em_bytes result)
{
    em_dag *d = ctx;
    stage *s = em_taskset_owner(ts);
    ember_error err;
    if (s->dead || em_taskset_stage_attempt(ts) < s->valid_attempt)
        return; /* gone, or it read shuffle output since rerun */
    if (s->is_map) {
        if (!s->out)
            return; /* its application closed */
        uint64_t total = 0;
        /* check_result accepted it; a failure here is memory only. */
        if (map_status_total(result, s->out->num_reduces, &total, &err) ==
            EMBER_OK)
            register_output(d, s->out, partition, exec, total);
        else
            em_log(EMBER_LOG_ERROR, LOG_SRC, "stage %" PRIu64 " map %" PRIu32
                   ": %s", s->id, partition, err.msg);
    } else {
        job *j = s->result_job;
        int64_t k = j ? job_index(j, partition) : -1;
        if (k < 0 || j->done[k])
            goto pending;
        j->result_bytes += result.len;
        if (d->conf.max_result_size &&
            j->result_bytes > d->conf.max_result_size) {
            char msg[300];
            snprintf(msg, sizeof msg, "Total size of serialized results of %"
                     PRIu32 " tasks (%" PRIu64 " bytes) is bigger than "
                     "ember.driver.maxResultSize (%" PRIu64 " bytes)",
                     j->ndone + 1, j->result_bytes, d->conf.max_result_size);
            em_dag_end_job(d, j, EMBER_ENOSPC, msg);
            return;
        }
        j->done[k] = 1;
        j->ndone++;
        if (j->listener.result)
            j->listener.result(j->listener.ctx, j->id, partition,
                               result.data, result.len);
        if (j->ndone == j->nparts) {
            /* The running attempt ends with the job, whichever attempt's
             * task brought the last result. */
            if (s->state == ST_RUNNING)
                em_store_report(LOG_SRC, &d->stats.store_errors,
                                em_store_stage_end(d->store, s->id,
                                                   s->ts_attempt, "SUCCEEDED",
                                                   NULL, em_wall_ms(), &err),
                                &err);
            em_dag_set_state(d, s, ST_IDLE);
            em_dag_end_job(d, j, EMBER_OK, NULL);
            return;
        }
    }
pending:
    if (s->ts != ts || s->state != ST_RUNNING)
        return;
    if (partition < s->nparts && s->pending[partition]) {
        s->pending[partition] = 0;
        s->npending--;
    }
    if (s->npending > 0 || !s->is_map)
        return;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_stage_end(d->store, s->id, s->ts_attempt,
                                       "SUCCEEDED", NULL, em_wall_ms(), &err),
                    &err);
    em_dag_set_state(d, s, ST_IDLE);
    if (em_dag_shuffle_ready(s->out)) {
        stage_finished(d, s);
    } else {
        /* Outputs were lost while the stage ran: run the missing ones. */
        em_log(EMBER_LOG_INFO, LOG_SRC, "stage %" PRIu64 " finished with %"
               PRIu32 " map outputs lost meanwhile: resubmitting", s->id,
               s->out->num_maps - s->out->available);
        em_dag_submit_stage(d, s);
    }
}

static void ev_taskset_aborted(void *ctx, em_taskset *ts, const char *why)
{
    em_dag *d = ctx;
    stage *s = em_taskset_owner(ts);
    if (s->ts != ts)
        return;
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_stage_end(d->store, s->id, s->ts_attempt,
                                       "FAILED", why, em_wall_ms(), &serr),
                    &serr);
    em_dag_abort_stage(d, s, why);
}

static void ev_taskset_removed(void *ctx, em_taskset *ts)
{
    em_dag *d = ctx;
    stage *s = em_taskset_owner(ts);
    for (uint32_t k = 0; k < s->nsets; k++)
        if (s->sets[k] == ts) {
            s->sets[k] = s->sets[--s->nsets];
            break;
        }
    if (s->ts == ts)
        s->ts = NULL;
    stage_maybe_free(d, s);
}

/* ---------------------------------------------------------- inspection */

void em_dag_get_stats(const em_dag *d, em_dag_stats *out)
{
    *out = d->stats;
    out->running_stages = out->waiting_stages = 0;
    for (stage *s = d->stages; s; s = s->next) {
        out->running_stages += s->state == ST_RUNNING;
        out->waiting_stages += s->state == ST_WAITING;
    }
}

int64_t em_dag_shuffle_available(const em_dag *d, uint64_t shuffle_id)
{
    shuffle *sh = em_u64map_get(&d->shuffles_by_id, shuffle_id);
    return sh ? (int64_t)sh->available : -1;
}
