/*
 * dag/dag_blocks.c — the DAG scheduler's side of block tracking: block
 * reports from executors become rows of the location table
 * (dag/block_locs.h) when their application and dataset still want them;
 * a block a task stored at a _2/_3 level is then copied to other
 * executors (dag/dag_replicate.c). Loop thread.
 */
#include "dag/dag_internal.h"

#include <inttypes.h>

#include "ember/kernel/log.h"
#include "runtime/block_report.h"

#define LOG_SRC "blocks"

/* Records a report; from_task: it came with a finished task, whose
 * stored blocks may need copies (copies' own reports need none). */
static void apply_report(em_dag *d, const em_exec *exec, em_bytes blob,
                         int from_task)
{
    em_block_report r;
    ember_error err;
    if (em_block_report_decode(blob.data, blob.len, &r, &err) != EMBER_OK) {
        em_log(EMBER_LOG_WARN, LOG_SRC, "executor %s: %s; ignored (its "
               "blocks' locations are unknown, so their tasks may compute "
               "them again)", em_exec_id(exec), err.msg);
        return;
    }
    for (size_t i = 0; i < r.n; i++) {
        const em_block_entry *e = &r.e[i];
        if (e->event == EM_BLOCK_DROPPED) {
            /* dropped news is always applied: a row must not outlive its
             * block */
            em_block_locs_dropped(d->blocks, e->app, e->dataset,
                                  e->partition, em_exec_no(exec),
                                  em_exec_id(exec));
            continue;
        }
        /* A block stored after its application closed or its dataset was
         * unpersisted (a task that was still running then) is not
         * recorded: no job will read it, and REMOVE_BLOCKS went out. */
        app *a = em_u64map_get(&d->apps, e->app);
        if (!a || !em_u64map_get(&a->persisted, e->dataset))
            continue;
        em_block_locs_stored(d->blocks, e->app, e->dataset, e->partition,
                             em_exec_no(exec), em_exec_id(exec), e->tier,
                             e->bytes);
        if (from_task)
            em_dag_replicate(d, a, e->dataset, e->partition, exec);
    }
    em_block_report_release(&r);
}

void em_dag_block_report(em_dag *d, const em_exec *exec, em_bytes blob)
{
    apply_report(d, exec, blob, 1);
}

void em_dag_block_stored(em_dag *d, const em_exec *exec, em_bytes blob)
{
    apply_report(d, exec, blob, 0);
}
