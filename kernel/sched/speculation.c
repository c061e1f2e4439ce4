/*
 * sched/speculation.c — speculative execution (ember.speculation.*): once
 * a quantile of a task set has finished, a task running longer than
 * multiplier x the median gets one copy on another executor; the first to
 * finish wins and the task scheduler kills the other.
 */
#include "sched/tsched_internal.h"

#include <inttypes.h>
#include <stdlib.h>

#include "ember/kernel/log.h"

#define LOG_SRC "sched"

/* A speculative copy of a slow task, on another executor than its run. */
int em_tsched_pop_speculative(em_taskset *s, const em_exec *e, uint32_t *out)
{
    for (uint32_t k = s->spec.n; k-- > 0;) {
        uint32_t i = s->spec.v[k];
        if (s->succeeded[i] || s->nrunning[i] != 1) {
            s->spec_flag[i] = 0;
            s->spec.v[k] = s->spec.v[--s->spec.n];
            continue;
        }
        if (s->running[i]->exec == e)
            continue;
        s->spec_flag[i] = 0;
        s->spec.v[k] = s->spec.v[--s->spec.n];
        *out = i;
        return 1;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Spark's checkSpeculatableTasks: once a quantile of tasks finished, a
 * task running longer than multiplier x median gets a copy. */
static void check_speculation(em_tsched *ts, em_taskset *s, uint64_t now)
{
    uint32_t need = (uint32_t)(ts->conf.spec_quantile * s->n);
    if (need < 1)
        need = 1;
    if (s->zombie || s->num_succeeded < need || s->ndurations == 0)
        return;
    qsort(s->durations, s->ndurations, sizeof *s->durations, cmp_u64);
    uint64_t median = s->durations[s->ndurations / 2];
    uint64_t threshold = (uint64_t)(ts->conf.spec_multiplier * median);
    if (threshold < ts->conf.spec_min_runtime_us)
        threshold = ts->conf.spec_min_runtime_us;
    for (uint32_t i = 0; i < s->n; i++) {
        em_task *t = s->running[i];
        if (s->succeeded[i] || s->nrunning[i] != 1 || s->spec_flag[i] ||
            now - t->launch_us <= threshold)
            continue;
        if (em_idxvec_push(&s->spec, i) == 0) {
            s->spec_flag[i] = 1;
            ts->dirty = 1;
            em_log(EMBER_LOG_INFO, LOG_SRC, "task %" PRIu32 " of stage %"
                   PRIu64 ".%" PRIu32 " is slow: launching a speculative "
                   "copy", s->partitions[i], s->stage_id, s->stage_attempt);
        }
    }
}

int64_t em_tsched_speculation_tick(em_loop *loop, uint64_t id, void *ctx)
{
    (void)id;
    em_tsched *ts = ctx;
    uint64_t now = em_loop_now_us(loop);
    for (em_taskset *s = ts->sets; s; s = s->next)
        check_speculation(ts, s, now);
    return (int64_t)ts->conf.spec_interval_us;
}
