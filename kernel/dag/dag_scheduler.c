/*
 * dag/dag_scheduler.c — see dag_scheduler.h.
 *
 * Vocabulary (Spark's): a shuffle is identified within an application by
 * the dataset that reads it and the index of that parent edge, so later
 * jobs of the same session that reach the same dataset reuse it. Each
 * shuffle has one shuffle-map stage that writes it; each job has one
 * result stage. A stage is WAITING for parents, RUNNING a task set, or
 * FAILED (waiting to be resubmitted after a fetch failure).
 */
#include "dag/dag_scheduler.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ember/kernel/log.h"
#include "util/map.h"
#include "util/text.h"

#define LOG_SRC "dag"

enum { ST_IDLE = 0, ST_WAITING, ST_RUNNING, ST_FAILED };

struct em_plan {
    em_lineage *l;
    char *json; /* canonical encoding, for STAGE messages */
    size_t json_len;
    uint32_t refs;
};

typedef struct shuffle shuffle;
typedef struct stage stage;
typedef struct job job;
typedef struct app app;

struct shuffle {
    uint64_t id;
    app *app;
    uint64_t key; /* (reading dataset id, edge) within the app */
    uint32_t num_maps, num_reduces;
    uint32_t *loc;   /* executor number per map, 0 = missing */
    uint32_t available;
    stage *map_stage;
};

struct stage {
    uint64_t id;
    app *app;
    int is_map, state, dead;
    em_plan *plan;
    uint32_t node;  /* index of the stage's last dataset in plan */
    uint32_t nparts;
    shuffle *out;   /* map stages: the shuffle written */
    stage **parents;
    uint32_t nparents;
    shuffle **inputs; /* shuffles read, in edge order */
    uint32_t ninputs;
    uint32_t next_attempt, failed_attempts;
    job **jobs;     /* active jobs that need this stage */
    uint32_t njobs, cap_jobs;
    job *result_job;
    em_taskset *ts;       /* the newest attempt's task set, or NULL */
    uint32_t ts_attempt;
    em_taskset **sets;    /* every task set still alive (older attempts
                             too): the stage is freed after the last */
    uint32_t nsets, cap_sets;
    uint32_t valid_attempt; /* results of older attempts are ignored */
    uint64_t mark;        /* visit stamp for graph walks */
    uint8_t *pending;
    uint32_t npending;
    char name[96];
    stage *prev, *next;   /* all stages */
    stage *wprev, *wnext; /* the waiting list, when WAITING */
};

struct job {
    uint64_t id;
    app *app;
    stage *final;
    uint32_t nparts;
    uint32_t *parts; /* sorted */
    uint8_t *done;
    uint32_t ndone;
    uint64_t result_bytes;
    stage **stages;
    uint32_t nstages;
    char *pool, *group, *description;
    em_job_listener listener;
};

struct app {
    uint64_t id;
    char *name;
    em_u64map fingerprints; /* dataset id -> (void *)(fingerprint | 1) */
    em_u64map shuffles;     /* key -> shuffle */
};

struct em_dag {
    em_loop *loop;
    em_pool_tree *pools;
    em_store *store;
    em_tsched *ts;
    em_dag_conf conf;
    em_u64map apps, jobs, shuffles_by_id;
    stage *stages;
    stage *waiting; /* stages in ST_WAITING */
    stage **scratch; /* submit_waiting's snapshot; stage_free clears */
    uint32_t nscratch;
    uint64_t epoch; /* for stage marks */
    uint64_t next_stage_id, next_shuffle_id;
    uint64_t resubmit_timer;
    em_dag_stats stats;
};

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
static void ev_task_succeeded(void *ctx, em_taskset *ts, uint32_t partition,
                              const em_exec *exec, em_bytes result);
static int ev_check_fetch(void *ctx, em_taskset *ts, uint64_t shuffle_id,
                          uint32_t map_index, char *why, size_t cap);
static void ev_fetch_failed(void *ctx, em_taskset *ts, uint32_t partition,
                            uint64_t shuffle_id, uint32_t map_index,
                            const char *executor_id, const char *message);
static void ev_taskset_aborted(void *ctx, em_taskset *ts, const char *why);
static void ev_taskset_removed(void *ctx, em_taskset *ts);
static void ev_executor_lost(void *ctx, uint32_t exec_no,
                             const char *executor_id, const char *reason);

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
    *out = d;
    return EMBER_OK;
}

em_tsched_events em_dag_tsched_events(em_dag *d)
{
    em_tsched_events ev = {
        .ctx = d,
        .check_result = ev_check_result,
        .task_succeeded = ev_task_succeeded,
        .check_fetch = ev_check_fetch,
        .fetch_failed = ev_fetch_failed,
        .taskset_aborted = ev_taskset_aborted,
        .taskset_removed = ev_taskset_removed,
        .executor_lost = ev_executor_lost,
    };
    return ev;
}

void em_dag_attach(em_dag *d, em_tsched *ts) { d->ts = ts; }

void em_dag_set_next_ids(em_dag *d, uint64_t next_stage, uint64_t next_shuffle)
{
    if (next_stage > d->next_stage_id)
        d->next_stage_id = next_stage;
    if (next_shuffle > d->next_shuffle_id)
        d->next_shuffle_id = next_shuffle;
}

/* Moves s to state st, keeping the waiting list in step. */
static void set_state(em_dag *d, stage *s, int st)
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
    set_state(d, s, ST_IDLE); /* off the waiting list */
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
static void stage_cancel_sets(em_dag *d, stage *s, const char *why)
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
    free(j);
}

static void end_job(em_dag *d, job *j, ember_status st, const char *msg);

static void app_free(app *a)
{
    size_t pos = 0;
    void *v;
    while (em_u64map_next(&a->shuffles, &pos, NULL, &v))
        shuffle_free(v);
    em_u64map_free(&a->shuffles);
    em_u64map_free(&a->fingerprints);
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
        end_job(d, v, EMBER_ECANCELED, "kernel shutting down");
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

void em_dag_app_close(em_dag *d, uint64_t app_id)
{
    app *a = em_u64map_get(&d->apps, app_id);
    if (!a)
        return;
    em_dag_cancel_group(d, app_id, NULL, "application closed");
    /* Map stages of this application go with their shuffles. */
    size_t pos = 0;
    void *v;
    ember_error serr;
    while (em_u64map_next(&a->shuffles, &pos, NULL, &v)) {
        shuffle *sh = v;
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
            set_state(d, s, ST_IDLE);
            stage_cancel_sets(d, s, "application closed");
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

static int shuffle_ready(const shuffle *sh)
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
static job *stage_first_job(const stage *s)
{
    job *best = NULL;
    for (uint32_t k = 0; k < s->njobs; k++)
        if (!best || s->jobs[k]->id < best->id)
            best = s->jobs[k];
    return best;
}

/* ---------------------------------------------------------- submission */

static char *stage_plan(const stage *s, uint32_t attempt, size_t *len)
{
    const em_lineage *l = s->plan->l;
    size_t cap = s->plan->json_len + 256 + (size_t)s->ninputs * 96;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int n = snprintf(buf, cap, "{\"stage\":%" PRIu64 ",\"attempt\":%" PRIu32
                     ",\"kind\":\"%s\",\"dataset\":%" PRIu64
                     ",\"partitions\":%" PRIu32, s->id, attempt,
                     s->is_map ? "shuffle_map" : "result",
                     l->nodes[s->node].id, s->nparts);
    if (s->is_map && s->out)
        n += snprintf(buf + n, cap - (size_t)n,
                      ",\"shuffle\":{\"id\":%" PRIu64 ",\"partitions\":%"
                      PRIu32 "}", s->out->id, s->out->num_reduces);
    n += snprintf(buf + n, cap - (size_t)n, ",\"inputs\":[");
    for (uint32_t k = 0; k < s->ninputs; k++) {
        const shuffle *sh = s->inputs[k];
        n += snprintf(buf + n, cap - (size_t)n,
                      "%s{\"dataset\":%" PRIu64 ",\"edge\":%" PRIu32
                      ",\"shuffle\":%" PRIu64 "}", k ? "," : "",
                      sh->key >> 8, (uint32_t)(sh->key & 0xff), sh->id);
    }
    n += snprintf(buf + n, cap - (size_t)n, "],\"plan\":");
    memcpy(buf + n, s->plan->json, s->plan->json_len);
    n += (int)s->plan->json_len;
    buf[n++] = '}';
    *len = (size_t)n;
    return buf;
}

static void stage_finished(em_dag *d, stage *s);
static void abort_stage(em_dag *d, stage *s, const char *msg);

/* Preferred locations of a stage's tasks, from the nearest dataset up
 * its one-to-one narrow chain whose args carry "locations": one list per
 * partition of hosts ("host-a") or {"host": .., "executor": ..}. */
typedef struct prefs {
    json_t *doc;
    em_task_pref **per;   /* per task */
    uint32_t *count;
} prefs;

static void prefs_free(prefs *p, uint32_t n)
{
    if (p->per)
        for (uint32_t k = 0; k < n; k++)
            free(p->per[k]);
    free(p->per);
    free(p->count);
    json_decref(p->doc);
    memset(p, 0, sizeof *p);
}

static const json_t *node_locations(const em_lineage *l, uint32_t node,
                                    json_t **doc)
{
    for (;;) {
        const em_node *n = &l->nodes[node];
        if (n->args_json && strstr(n->args_json, "\"locations\"")) {
            *doc = json_loads(n->args_json, 0, NULL);
            const json_t *locs = json_object_get(*doc, "locations");
            if (json_is_array(locs))
                return locs;
            json_decref(*doc);
            *doc = NULL;
            return NULL;
        }
        if (n->ndeps != 1 || n->deps[0].kind != EM_DEP_NARROW ||
            n->op->parts != EM_OP_PARTS_SAME)
            return NULL;
        node = n->deps[0].parent;
    }
}

static void stage_prefs(const stage *s, const uint32_t *parts, uint32_t n,
                        prefs *out)
{
    memset(out, 0, sizeof *out);
    const json_t *locs = node_locations(s->plan->l, s->node, &out->doc);
    if (!locs)
        return;
    out->per = calloc(n, sizeof *out->per);
    out->count = calloc(n, sizeof *out->count);
    if (!out->per || !out->count) {
        prefs_free(out, n);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        const json_t *list = json_array_get(locs, parts[k]);
        size_t m = json_array_size(list);
        if (m == 0 || !(out->per[k] = calloc(m, sizeof **out->per)))
            continue;
        for (size_t i = 0; i < m; i++) {
            const json_t *e = json_array_get(list, i);
            const char *host = json_is_string(e)
                                   ? json_string_value(e)
                                   : json_string_value(
                                         json_object_get(e, "host"));
            if (!host || !*host)
                continue;
            em_task_pref *p = &out->per[k][out->count[k]++];
            p->host = host;
            p->executor_id =
                json_string_value(json_object_get(e, "executor"));
        }
    }
}

/* Submits the tasks of s that have no output yet. */
static void submit_missing(em_dag *d, stage *s)
{
    uint32_t *parts = malloc((s->nparts ? s->nparts : 1) * sizeof *parts);
    uint32_t n = 0;
    ember_error err;
    if (!parts) {
        abort_stage(d, s, "out of memory submitting stage");
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
        set_state(d, s, ST_IDLE);
        if (s->is_map)
            stage_finished(d, s);
        return;
    }
    job *first = stage_first_job(s);
    em_pool *pool = NULL;
    if (em_pool_tree_get(d->pools, first ? first->pool : NULL, &pool,
                         &err) != EMBER_OK) {
        free(parts);
        abort_stage(d, s, err.msg);
        return;
    }
    uint32_t attempt = s->next_attempt++;
    size_t plan_len = 0;
    char *plan = stage_plan(s, attempt, &plan_len);
    free(s->pending);
    s->pending = calloc(s->nparts ? s->nparts : 1, 1);
    if (!plan || !s->pending) {
        free(parts);
        free(plan);
        abort_stage(d, s, "out of memory submitting stage");
        return;
    }
    for (uint32_t k = 0; k < n; k++)
        s->pending[parts[k]] = 1;
    s->npending = n;
    prefs pr;
    stage_prefs(s, parts, n, &pr);
    em_taskset_spec spec = {
        .stage_id = s->id, .stage_attempt = attempt,
        .job_id = first ? first->id : 0, .is_map = s->is_map,
        .partitions = parts, .count = n,
        .prefs = (const em_task_pref *const *)pr.per, .nprefs = pr.count,
        .pool = pool, .plan = (const uint8_t *)plan, .plan_len = plan_len,
        .owner = s};
    em_taskset *ts = NULL;
    ember_status st = em_tsched_submit(d->ts, &spec, &ts, &err);
    prefs_free(&pr, n);
    free(parts);
    free(plan);
    if (st != EMBER_OK) {
        abort_stage(d, s, err.msg);
        return;
    }
    if (s->nsets == s->cap_sets) {
        uint32_t cap = s->cap_sets ? s->cap_sets * 2 : 2;
        em_taskset **sets = realloc(s->sets, cap * sizeof *sets);
        if (!sets) {
            em_tsched_cancel(d->ts, ts, "out of memory");
            abort_stage(d, s, "out of memory submitting stage");
            return;
        }
        s->sets = sets;
        s->cap_sets = cap;
    }
    s->sets[s->nsets++] = ts;
    s->ts = ts;
    s->ts_attempt = attempt;
    set_state(d, s, ST_RUNNING);
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
static void submit_stage(em_dag *d, stage *root)
{
    uint32_t cap = 16, sp = 0;
    stage **stack = malloc(cap * sizeof *stack);
    if (!stack) {
        abort_stage(d, root, "out of memory submitting stage");
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
            if (shuffle_ready(p->out))
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
            set_state(d, s, ST_WAITING);
        else
            submit_missing(d, s);
    }
    free(stack);
}

/* Starts waiting stages whose parents are all available, and resubmits
 * idle parents that lost output (to a lost executor) meanwhile. */
static void submit_waiting(em_dag *d)
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
            if (shuffle_ready(par->out))
                continue;
            ok = 0;
            if (par->state == ST_IDLE)
                submit_stage(d, par);
        }
        if (ok) {
            set_state(d, s, ST_IDLE);
            submit_stage(d, s);
        }
    }
    d->scratch = outer;
    d->nscratch = nouter;
    free(waiting);
}

static void stage_finished(em_dag *d, stage *s)
{
    set_state(d, s, ST_IDLE);
    s->failed_attempts = 0;
    submit_waiting(d);
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
static void end_job(em_dag *d, job *j, ember_status st, const char *msg)
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
        stage_cancel_sets(d, s, st == EMBER_OK ? "job finished"
                                               : "job ended");
        set_state(d, s, ST_IDLE);
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
            EMBER_OK)
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
        (spec->description && !(j->description = em_strdup(spec->description))))
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
        end_job(d, j, EMBER_OK, NULL);
        return EMBER_OK;
    }
    submit_stage(d, j->final);
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
    end_job(d, j, EMBER_ECANCELED, msg);
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
        end_job(d, victim, EMBER_ECANCELED, msg);
        count++;
    }
}

/* Fails every job that needs s. */
static void abort_stage(em_dag *d, stage *s, const char *msg)
{
    char full[1100];
    snprintf(full, sizeof full, "Job aborted due to stage failure: %s", msg);
    stage_cancel_sets(d, s, "stage aborted");
    set_state(d, s, ST_IDLE);
    /* Ending the last job may free a result stage: stop before that. */
    while (s->njobs > 0) {
        int last = s->njobs == 1;
        end_job(d, s->jobs[0], EMBER_EPLUGIN, full);
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
            end_job(d, j, EMBER_ENOSPC, msg);
            return;
        }
        j->done[k] = 1;
        j->ndone++;
        if (j->listener.result)
            j->listener.result(j->listener.ctx, j->id, partition,
                               result.data, result.len);
        if (j->ndone == j->nparts) {
            if (s->ts == ts && s->state == ST_RUNNING)
                em_store_report(LOG_SRC, &d->stats.store_errors,
                                em_store_stage_end(d->store, s->id,
                                                   s->ts_attempt, "SUCCEEDED",
                                                   NULL, em_wall_ms(), &err),
                                &err);
            set_state(d, s, ST_IDLE);
            end_job(d, j, EMBER_OK, NULL);
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
    set_state(d, s, ST_IDLE);
    if (shuffle_ready(s->out)) {
        stage_finished(d, s);
    } else {
        /* Outputs were lost while the stage ran: run the missing ones. */
        em_log(EMBER_LOG_INFO, LOG_SRC, "stage %" PRIu64 " finished with %"
               PRIu32 " map outputs lost meanwhile: resubmitting", s->id,
               s->out->num_maps - s->out->available);
        submit_stage(d, s);
    }
}

static void unregister_output(em_dag *d, shuffle *sh, uint32_t map)
{
    if (map >= sh->num_maps || !sh->loc[map])
        return;
    sh->loc[map] = 0;
    sh->available--;
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_map_output_remove(d->store, sh->id, map, &serr),
                    &serr);
}

static void unregister_all(em_dag *d, shuffle *sh)
{
    for (uint32_t m = 0; m < sh->num_maps; m++)
        unregister_output(d, sh, m);
}

static int64_t resubmit_tick(em_loop *loop, uint64_t id, void *ctx);

/* Stages in ST_FAILED are resubmitted after ember.stage.resubmitDelay. */
static void schedule_resubmit(em_dag *d)
{
    if (!d->resubmit_timer)
        (void)em_loop_timer_add(d->loop, d->conf.resubmit_delay_us,
                                resubmit_tick, d, &d->resubmit_timer);
}

static int64_t resubmit_tick(em_loop *loop, uint64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    em_dag *d = ctx;
    d->resubmit_timer = 0;
    /* Oldest job first, as Spark's resubmitFailedStages. */
    for (;;) {
        stage *pick = NULL;
        uint64_t best = UINT64_MAX;
        for (stage *s = d->stages; s; s = s->next) {
            if (s->state != ST_FAILED)
                continue;
            job *f = stage_first_job(s);
            uint64_t prio = f ? f->id : UINT64_MAX - 1;
            if (!pick || prio < best || (prio == best && s->id < pick->id)) {
                pick = s;
                best = prio;
            }
        }
        if (!pick)
            break;
        set_state(d, pick, ST_IDLE);
        submit_stage(d, pick);
    }
    return EM_LOOP_TIMER_STOP;
}

/* Indeterminate map output is being rerun: every stage downstream of it
 * must rerun whole, its running attempts stopped and their results
 * ignored; a result stage that already returned data cannot roll back,
 * so its job fails (Spark's rule). Map stages downstream lose their output
 * too, and so on down. */
static void rollback_downstream(em_dag *d, shuffle *rerun)
{
    uint32_t cap = 8, n = 0;
    shuffle **work = malloc(cap * sizeof *work);
    if (!work)
        return;
    work[n++] = rerun;
    uint64_t epoch = ++d->epoch;
    while (n > 0) {
        shuffle *sh = work[--n];
        int restart;
        do {
            restart = 0;
            for (stage *s = d->stages; s; s = s->next) {
                int reads = 0;
                for (uint32_t k = 0; k < s->ninputs; k++)
                    reads |= s->inputs[k] == sh;
                if (!reads || s->njobs == 0 || s->mark == epoch)
                    continue;
                if (!s->is_map && s->result_job &&
                    s->result_job->ndone > 0) {
                    end_job(d, s->result_job, EMBER_EPLUGIN,
                            "A shuffle map stage with indeterminate output "
                            "was retried, but a result stage that read it "
                            "had already returned results, which cannot be "
                            "rolled back. Make the map side deterministic "
                            "(or checkpoint it) and try again.");
                    restart = 1; /* stages may have been freed */
                    break;
                }
                s->mark = epoch;
                s->valid_attempt = s->next_attempt;
                stage_cancel_sets(d, s, "its input is being recomputed");
                if (s->state == ST_RUNNING) {
                    set_state(d, s, ST_FAILED);
                    schedule_resubmit(d);
                }
                if (s->is_map && s->out) {
                    unregister_all(d, s->out);
                    if (n == cap) {
                        shuffle **w = realloc(work, 2 * cap * sizeof *w);
                        if (!w)
                            continue;
                        work = w;
                        cap *= 2;
                    }
                    work[n++] = s->out;
                }
            }
        } while (restart);
    }
    free(work);
}

/* Drops every map output an executor holds (lost, or its shuffle server
 * failed a fetch): Spark's removeOutputsOnExecutor. */
static int shuffle_indeterminate(const shuffle *sh)
{
    const stage *m = sh->map_stage;
    return m && m->plan->l->nodes[m->node].output_determinism ==
                    EM_DET_INDETERMINATE;
}

/* Some of an indeterminate shuffle's output is gone: a partial rerun
 * would mix two versions of it, so all of it reruns, and every stage that
 * read it rolls back ("do better" 3). */
static void indeterminate_lost(em_dag *d, shuffle *sh)
{
    if (!shuffle_indeterminate(sh) || sh->available == sh->num_maps)
        return;
    em_log(EMBER_LOG_WARN, LOG_SRC, "stage %" PRIu64 " is indeterminate: "
           "rerunning all its %" PRIu32 " map tasks", sh->map_stage->id,
           sh->num_maps);
    unregister_all(d, sh);
    rollback_downstream(d, sh);
}

static void unregister_executor_outputs(em_dag *d, uint32_t exec_no,
                                        const char *executor_id)
{
    size_t pos = 0;
    void *v;
    uint32_t lost = 0, nhit = 0, cap = 0;
    shuffle **hit = NULL;
    while (em_u64map_next(&d->shuffles_by_id, &pos, NULL, &v)) {
        shuffle *sh = v;
        uint32_t before = lost;
        for (uint32_t m = 0; m < sh->num_maps; m++)
            if (sh->loc[m] == exec_no) {
                sh->loc[m] = 0;
                sh->available--;
                lost++;
            }
        if (lost == before || !shuffle_indeterminate(sh))
            continue;
        if (nhit == cap) {
            cap = cap ? cap * 2 : 4;
            shuffle **n = realloc(hit, cap * sizeof *n);
            if (!n)
                continue;
            hit = n;
        }
        hit[nhit++] = sh;
    }
    ember_error serr;
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_map_output_remove_executor(d->store,
                                                        executor_id, &serr),
                    &serr);
    if (lost)
        em_log(EMBER_LOG_WARN, LOG_SRC, "executor %s: %" PRIu32
               " map outputs unregistered; they will be recomputed when "
               "needed", executor_id, lost);
    /* Rollbacks after the walk: they may end jobs. */
    for (uint32_t k = 0; k < nhit; k++)
        indeterminate_lost(d, hit[k]);
    free(hit);
}

/* A FETCH_FAILED must name a shuffle the failing stage reads and a map of
 * it; anything else is a task failure like any other. */
static int ev_check_fetch(void *ctx, em_taskset *ts, uint64_t shuffle_id,
                          uint32_t map_index, char *why, size_t cap)
{
    (void)ctx;
    stage *s = em_taskset_owner(ts);
    if (s->dead) {
        snprintf(why, cap, "stage %" PRIu64 " is gone (its job ended)",
                 s->id);
        return -1;
    }
    for (uint32_t k = 0; k < s->ninputs; k++)
        if (s->inputs[k]->id == shuffle_id) {
            if (map_index < s->inputs[k]->num_maps)
                return 0;
            snprintf(why, cap, "invalid fetch failure: shuffle %" PRIu64
                     " has %" PRIu32 " map outputs, not %" PRIu32,
                     shuffle_id, s->inputs[k]->num_maps, map_index + 1);
            return -1;
        }
    snprintf(why, cap, "invalid fetch failure: stage %" PRIu64 " does not "
             "read shuffle %" PRIu64, s->id, shuffle_id);
    return -1;
}

static void ev_fetch_failed(void *ctx, em_taskset *ts, uint32_t partition,
                            uint64_t shuffle_id, uint32_t map_index,
                            const char *executor_id, const char *message)
{
    em_dag *d = ctx;
    stage *s = em_taskset_owner(ts);
    ember_error serr;
    char why[900];
    snprintf(why, sizeof why, "FetchFailed(shuffle %" PRIu64 ", map %"
             PRIu32 ", executor %s) in task for partition %" PRIu32
             " of stage %" PRIu64 ".%" PRIu32 ": %s", shuffle_id, map_index,
             executor_id && *executor_id ? executor_id : "?", partition,
             s->id, em_taskset_stage_attempt(ts), message);
    if (s->ts != ts || s->state != ST_RUNNING) {
        em_log(EMBER_LOG_INFO, LOG_SRC, "ignoring %s (stale attempt)", why);
        return;
    }
    em_store_report(LOG_SRC, &d->stats.store_errors,
                    em_store_stage_end(d->store, s->id, s->ts_attempt,
                                       "FAILED", why, em_wall_ms(), &serr),
                    &serr);
    set_state(d, s, ST_FAILED);
    s->failed_attempts++;
    if (s->failed_attempts >= d->conf.max_consecutive_attempts) {
        char msg[1100];
        snprintf(msg, sizeof msg, "Stage %" PRIu64 " (%s) has failed the "
                 "maximum allowable number of times: %" PRIu32
                 ". Most recent failure reason: %s", s->id, s->name,
                 d->conf.max_consecutive_attempts, why);
        abort_stage(d, s, msg);
        return;
    }
    /* ev_check_fetch vetted the shuffle: the stage reads it. */
    shuffle *sh = em_u64map_get(&d->shuffles_by_id, shuffle_id);
    stage *m = sh->map_stage;
    em_exec *lost = executor_id && *executor_id
                        ? em_tsched_executor_by_id(d->ts, executor_id)
                        : NULL;
    /* Indeterminate shuffles that lose output roll back on the way. */
    if (lost) {
        unregister_executor_outputs(d, em_exec_no(lost), executor_id);
    } else if (!executor_id || !*executor_id) {
        unregister_output(d, sh, map_index);
        indeterminate_lost(d, sh);
    }
    /* (A named executor that is already gone lost its outputs then.) */
    schedule_resubmit(d); /* also for other jobs a rollback set back */
    if (s->njobs == 0)
        return; /* its job was failed by a rollback */
    if (m->state == ST_IDLE)
        set_state(d, m, ST_FAILED);
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
    abort_stage(d, s, why);
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

static void ev_executor_lost(void *ctx, uint32_t exec_no,
                             const char *executor_id, const char *reason)
{
    em_dag *d = ctx;
    (void)reason;
    unregister_executor_outputs(d, exec_no, executor_id);
    /* Waiting stages whose idle parents lost output rerun it. */
    submit_waiting(d);
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
