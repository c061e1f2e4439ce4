/*
 * dag/recovery.c — when map output is lost: a fetch failure (the failing
 * executor's outputs are unregistered, Spark's rule), an executor lost, or
 * indeterminate output that must rerun whole with everything downstream
 * rolled back; failed stages are resubmitted after
 * ember.stage.resubmitDelay (SEMANTICS S25, "do better" 3).
 */
#include "dag/dag_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "util/text.h"

#define LOG_SRC "dag"

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
            job *f = em_dag_first_job(s);
            uint64_t prio = f ? f->id : UINT64_MAX - 1;
            if (!pick || prio < best || (prio == best && s->id < pick->id)) {
                pick = s;
                best = prio;
            }
        }
        if (!pick)
            break;
        em_dag_set_state(d, pick, ST_IDLE);
        em_dag_submit_stage(d, pick);
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
                    em_dag_end_job(d, s->result_job, EMBER_EPLUGIN,
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
                em_dag_cancel_sets(d, s, "its input is being recomputed");
                if (s->state == ST_RUNNING) {
                    ember_error serr;
                    em_store_report(
                        LOG_SRC, &d->stats.store_errors,
                        em_store_stage_end(d->store, s->id, s->ts_attempt,
                                           "FAILED",
                                           "rolled back: its input is being "
                                           "recomputed",
                                           em_wall_ms(), &serr),
                        &serr);
                    em_dag_set_state(d, s, ST_FAILED);
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
int em_dag_check_fetch(void *ctx, em_taskset *ts, uint64_t shuffle_id,
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

void em_dag_fetch_failed(void *ctx, em_taskset *ts, uint32_t partition,
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
    em_dag_set_state(d, s, ST_FAILED);
    s->failed_attempts++;
    if (s->failed_attempts >= d->conf.max_consecutive_attempts) {
        char msg[1100];
        snprintf(msg, sizeof msg, "Stage %" PRIu64 " (%s) has failed the "
                 "maximum allowable number of times: %" PRIu32
                 ". Most recent failure reason: %s", s->id, s->name,
                 d->conf.max_consecutive_attempts, why);
        em_dag_abort_stage(d, s, msg);
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
        em_dag_set_state(d, m, ST_FAILED);
}

void em_dag_executor_lost(void *ctx, uint32_t exec_no,
                             const char *executor_id, const char *reason)
{
    em_dag *d = ctx;
    (void)reason;
    unregister_executor_outputs(d, exec_no, executor_id);
    /* and the cached blocks it held: their tasks compute them again */
    em_block_locs_remove_executor(d->blocks, exec_no, executor_id);
    /* Waiting stages whose idle parents lost output rerun it. */
    em_dag_submit_waiting(d);
}
