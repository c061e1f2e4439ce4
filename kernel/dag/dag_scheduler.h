/*
 * dag/dag_scheduler.h — the DAG scheduler: cuts a job's lineage into
 * stages at shuffle dependencies, submits parent stages first, reuses
 * shuffle-map stages whose output is still available, runs only missing
 * partitions, and recovers from fetch failures and lost executors
 * (ARCHITECTURE.md §5, SEMANTICS.md S24, S25, S29).
 *
 * Runs on the kernel's loop thread only. It owns applications (sessions:
 * dataset ids and shuffles are per application), jobs, stages and the
 * map-output table; task sets belong to the task scheduler.
 */
#ifndef EMBER_KERNEL_DAG_DAG_SCHEDULER_H
#define EMBER_KERNEL_DAG_DAG_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "dag/lineage.h"
#include "ember/kernel/kernel.h"
#include "sched/pool.h"
#include "sched/task_scheduler.h"
#include "state/store.h"

typedef struct em_dag em_dag;

/* A decoded lineage shared by the jobs and stages that use it. */
typedef struct em_plan em_plan;

/* Wraps l (ownership passes to the plan, also on failure); refs = 1. */
ember_status em_plan_create(em_plan **out, em_lineage *l, ember_error *err);
void em_plan_ref(em_plan *p);
void em_plan_unref(em_plan *p); /* NULL-safe; frees at zero */
const em_lineage *em_plan_lineage(const em_plan *p);

typedef struct em_dag_conf {
    uint32_t max_consecutive_attempts; /* ember.stage.maxConsecutiveAttempts */
    uint64_t max_result_size;          /* ember.driver.maxResultSize; 0 = off */
    uint64_t resubmit_delay_us;        /* ember.stage.resubmitDelay */
} em_dag_conf;

void em_dag_conf_defaults(em_dag_conf *c);

/* Borrowed: loop, pools, store. Attach the task scheduler next. */
ember_status em_dag_create(em_dag **out, em_loop *loop, em_pool_tree *pools,
                           em_store *store, const em_dag_conf *conf,
                           ember_error *err);
/* Ends every active job with EMBER_ECANCELED ("kernel shutting down")
 * and frees everything. NULL-safe. Destroy the task scheduler after. */
void em_dag_destroy(em_dag *dag);
/* The callbacks the task scheduler must be created with. */
em_tsched_events em_dag_tsched_events(em_dag *dag);
void em_dag_attach(em_dag *dag, em_tsched *ts);
/* Where accumulators' merge functions are found (borrowed, nullable: then
 * plans with user-defined accumulators are refused). */
void em_dag_set_registry(em_dag *dag, const em_registry *registry);
/* Ids to continue from (a restarted kernel reads them from the store). */
void em_dag_set_next_ids(em_dag *dag, uint64_t stage, uint64_t shuffle);

/* Applications. Ids come from the kernel. */
ember_status em_dag_app_open(em_dag *dag, uint64_t app_id, const char *name,
                             ember_error *err);
/* Cancels the application's jobs and forgets its shuffles. */
void em_dag_app_close(em_dag *dag, uint64_t app_id);
/* Unpersist: the executors drop the cached blocks of the app's dataset
 * (REMOVE_BLOCKS) if a plan of the app persisted it. Loop thread. */
void em_dag_unpersist(em_dag *dag, uint64_t app_id, uint64_t dataset);
/*
 * A finished task's block report (the `blocks` blob of its STATUS update,
 * runtime/block_report.h) from executor exec: records where blocks of the
 * application's persisted datasets now live (dag/block_locs.h). News of an
 * application that is closed or a dataset no longer persisted is dropped;
 * a malformed report is logged and ignored. Loop thread; call before the
 * update goes to the task scheduler, so that stages it lets start see the
 * blocks.
 */
void em_dag_block_report(em_dag *dag, const em_exec *exec, em_bytes report);
/*
 * A BLOCK_STORED report from exec (kernel/msg/msg.h): blocks it stored or
 * dropped outside any task — copies REPLICATE asked for. Recorded as
 * em_dag_block_report records a task's, but asks for no further copies.
 * Loop thread.
 */
void em_dag_block_stored(em_dag *dag, const em_exec *exec, em_bytes report);

typedef struct em_dag_job {
    uint64_t job_id;
    uint64_t app_id;
    em_plan *plan;              /* a reference is taken */
    uint64_t dataset;           /* the action's dataset id */
    const uint32_t *partitions; /* NULL = all partitions */
    uint32_t npartitions;
    const char *pool, *group, *description; /* nullable, copied */
    const char *action; /* nullable, copied: a compact JSON object */
    em_job_listener listener;
} em_dag_job;

/*
 * Starts a job. On EMBER_OK the listener's end is called exactly once,
 * later or (for a job with no partitions) within this call. On an error
 * (unknown application or dataset, a dataset id redefined differently in
 * this application, bad partition list) nothing is called and err says
 * what.
 */
ember_status em_dag_submit(em_dag *dag, const em_dag_job *job,
                           ember_error *err);
/* Cancels a job: its tasks are killed, its end reports EMBER_ECANCELED.
 * EMBER_ENOTFOUND when it is not active. */
ember_status em_dag_cancel_job(em_dag *dag, uint64_t job_id,
                               const char *reason);
/* Cancels every active job of app_id in group; returns how many. */
uint32_t em_dag_cancel_group(em_dag *dag, uint64_t app_id, const char *group,
                             const char *reason);

typedef struct em_dag_stats {
    uint32_t active_jobs, stages, running_stages, waiting_stages;
    uint64_t stage_attempts, jobs_succeeded, jobs_failed, jobs_cancelled;
    uint64_t skipped_stages; /* map stages reused with all output present */
    uint64_t store_errors;   /* state-store writes that failed */
} em_dag_stats;
void em_dag_get_stats(const em_dag *dag, em_dag_stats *out);

/* Map outputs of a shuffle present now (for tests and the UI); -1 when
 * the shuffle is unknown. */
int64_t em_dag_shuffle_available(const em_dag *dag, uint64_t shuffle_id);

#endif /* EMBER_KERNEL_DAG_DAG_SCHEDULER_H */
