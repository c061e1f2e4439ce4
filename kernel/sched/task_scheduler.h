/*
 * sched/task_scheduler.h — the task scheduler: executors and their slots,
 * task sets (one per stage attempt), slot offers through the pool tree,
 * retries, locality with delay scheduling, speculation, the output-commit
 * arbiter, and the batched LAUNCH / KILL messages to executors.
 *
 * Everything here runs on the kernel's loop thread. The DAG scheduler
 * hands in task sets and hears back through em_tsched_events; the kernel
 * feeds it decoded executor messages and calls em_tsched_schedule and
 * em_tsched_flush from its before-sleep hook, so one loop turn launches
 * everything it can in one batch per executor.
 *
 * Failure accounting follows SEMANTICS.md S25: a task index that fails
 * max_failures times aborts its task set; FETCH_FAILED, kills we asked for
 * and executor loss are not counted.
 */
#ifndef EMBER_KERNEL_SCHED_TASK_SCHEDULER_H
#define EMBER_KERNEL_SCHED_TASK_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "msg/msg.h"
#include "sched/pool.h"
#include "state/store.h"

typedef struct em_tsched em_tsched;
typedef struct em_taskset em_taskset;
typedef struct em_exec em_exec;

/* Locality levels, best first. */
typedef enum em_locality {
    EM_LOC_PROCESS = 0, /* on the preferred executor */
    EM_LOC_NODE = 1,    /* on the preferred host */
    EM_LOC_NO_PREF = 2, /* the task has no preference */
    EM_LOC_ANY = 3
} em_locality;

const char *em_locality_name(em_locality l);

/* Settings, read once from configuration by the kernel. */
typedef struct em_tsched_conf {
    uint32_t max_failures;        /* ember.task.maxFailures (4) */
    uint64_t locality_wait_us[2]; /* ember.locality.wait.process / .node */
    int speculation;              /* ember.speculation */
    uint64_t spec_interval_us;    /* ember.speculation.interval */
    double spec_multiplier;       /* ember.speculation.multiplier */
    double spec_quantile;         /* ember.speculation.quantile */
    uint64_t spec_min_runtime_us; /* ember.speculation.minTaskRuntime */
    uint64_t executor_timeout_us; /* ember.executor.heartbeatTimeout; 0 = off */
} em_tsched_conf;

/* Fills c with the defaults above (Spark's, in ember's names). */
void em_tsched_conf_defaults(em_tsched_conf *c);

/* Sends one encoded message to an executor (loop thread; msg borrowed). */
typedef void (*em_send_fn)(void *ctx, const uint8_t *msg, size_t len);

/*
 * Calls into the DAG scheduler, on the loop thread. The task set pointer
 * stays valid until taskset_removed.
 */
typedef struct em_tsched_events {
    void *ctx;
    /* Vets a FINISHED task's result before it counts: non-zero refuses it
     * (why[0..cap) says why) and the attempt counts as FAILED. Nullable. */
    int (*check_result)(void *ctx, em_taskset *ts, uint32_t partition,
                        em_bytes result, char *why, size_t cap);
    /* A FINISHED attempt the scheduler accepts as its partition's first
     * success, just before task_succeeded: accums is the attempt's
     * accumulator updates (runtime/accum_wire.h), borrowed, never empty.
     * Nullable. */
    void (*task_accums)(void *ctx, em_taskset *ts, uint32_t partition,
                        em_bytes accums);
    /* The first successful attempt of ts's task for partition. result is
     * the task's result bytes (a map status for map stages), borrowed. */
    void (*task_succeeded)(void *ctx, em_taskset *ts, uint32_t partition,
                           const em_exec *exec, em_bytes result);
    /* Vets a FETCH_FAILED before it counts: non-zero refuses it (why says
     * why) and the attempt counts as an ordinary FAILED. Nullable. */
    int (*check_fetch)(void *ctx, em_taskset *ts, uint64_t shuffle_id,
                       uint32_t map_index, char *why, size_t cap);
    /* A task could not fetch shuffle_id's map output map_index from
     * executor_id. ts is already a zombie (launches nothing more). */
    void (*fetch_failed)(void *ctx, em_taskset *ts, uint32_t partition,
                         uint64_t shuffle_id, uint32_t map_index,
                         const char *executor_id, const char *message);
    /* A task index failed max_failures times; reason names it, the stage,
     * the count and the last failure. ts is a zombie. */
    void (*taskset_aborted)(void *ctx, em_taskset *ts, const char *reason);
    /* ts is gone: no running attempts remain. Drop every pointer to it. */
    void (*taskset_removed)(void *ctx, em_taskset *ts);
    /* An executor is gone; its running tasks were already re-queued. */
    void (*executor_lost)(void *ctx, uint32_t exec_no,
                          const char *executor_id, const char *reason);
} em_tsched_events;

/*
 * Creates a scheduler. loop, pools and store are borrowed and must outlive
 * it; events is copied. EMBER_ENOMEM on failure.
 */
ember_status em_tsched_create(em_tsched **out, em_loop *loop,
                              em_pool_tree *pools, em_store *store,
                              const em_tsched_conf *conf,
                              const em_tsched_events *events,
                              ember_error *err);
/* Frees every task set and executor without calling events. NULL-safe. */
void em_tsched_destroy(em_tsched *ts);

/* Next task id to hand out (the kernel restores it from the store). */
void em_tsched_set_next_task_id(em_tsched *ts, uint64_t next);

/* ---- executors ---- */

/*
 * Registers an executor reached through send/ctx (conn is the kernel's
 * connection id). A duplicate live executor id is refused (EMBER_EEXIST)
 * with a message. The executor's slots are offered at the next schedule.
 */
ember_status em_tsched_executor_add(em_tsched *ts, uint64_t conn,
                                    const em_msg_register *reg,
                                    em_send_fn send, void *send_ctx,
                                    em_exec **out, ember_error *err);
/* The live executor on connection conn, or NULL. */
em_exec *em_tsched_executor_by_conn(em_tsched *ts, uint64_t conn);
/* The live executor with this id, or NULL. */
em_exec *em_tsched_executor_by_id(em_tsched *ts, const char *id);
/* Marks exec lost: its running tasks are re-queued (not counted as
 * failures), events.executor_lost is called, exec is freed. */
void em_tsched_executor_lost(em_tsched *ts, em_exec *exec,
                             const char *reason);
/* Notes a heartbeat (resets the executor's timeout). */
void em_tsched_executor_seen(em_tsched *ts, em_exec *exec);
/* The live executor numbered no (em_exec_no), or NULL. */
em_exec *em_tsched_executor_by_no(em_tsched *ts, uint32_t no);
/*
 * Tells every live executor that the shuffles ids[0..n) are gone for good
 * (REMOVE_SHUFFLES): they delete their files. Loop thread.
 */
void em_tsched_remove_shuffles(em_tsched *ts, const uint64_t *ids,
                               uint32_t n, const char *reason);
/*
 * Tells every live executor to drop the cached blocks of the persisted
 * datasets keys[0..n) (REMOVE_BLOCKS; key = app id << 32 | dataset id).
 * Loop thread.
 */
void em_tsched_remove_blocks(em_tsched *ts, const uint64_t *keys,
                             uint32_t n, const char *reason);
/*
 * The live executors, in the order they registered: up to cap of them
 * into out (may be NULL when cap is 0); returns how many there are.
 * Valid until the loop turn ends. Loop thread.
 */
uint32_t em_tsched_executors(em_tsched *ts, em_exec **out, uint32_t cap);
/* Sends one encoded message (msg borrowed) to exec now, outside the
 * batched LAUNCH / KILL traffic. Loop thread. */
void em_exec_send(em_exec *e, const uint8_t *msg, size_t len);
const char *em_exec_id(const em_exec *e);
/* The block endpoint the executor registered ("" when none). */
const char *em_exec_endpoint(const em_exec *e);
const char *em_exec_host(const em_exec *e);
uint32_t em_exec_no(const em_exec *e);
uint32_t em_exec_free_slots(const em_exec *e);

/* ---- task sets ---- */

/* A location a task prefers: a host, optionally one executor on it. */
typedef struct em_task_pref {
    const char *host;        /* non-NULL */
    const char *executor_id; /* NULL = any executor on host */
} em_task_pref;

typedef struct em_taskset_spec {
    uint64_t stage_id;
    uint32_t stage_attempt;
    uint64_t job_id;        /* FIFO priority */
    int is_map;             /* shuffle-map stage */
    const uint32_t *partitions;
    uint32_t count;         /* > 0 */
    /* Optional: prefs[i][0..nprefs[i]) for task i; NULL = none. */
    const em_task_pref *const *prefs;
    const uint32_t *nprefs;
    em_pool *pool;
    const uint8_t *plan;    /* STAGE message payload, copied */
    size_t plan_len;
    void *owner;            /* the DAG scheduler's stage */
    /* Optional: what the stage runs (its operations and their functions),
     * named in the message of a task lost with its executor; copied. */
    const char *desc;
} em_taskset_spec;

/* Adds a task set; its tasks launch from the next schedule. */
ember_status em_tsched_submit(em_tsched *ts, const em_taskset_spec *spec,
                              em_taskset **out, ember_error *err);
/*
 * Stops a task set: nothing more launches, running attempts get a KILL
 * with reason. taskset_removed follows once none is running (maybe at
 * once, inside this call).
 */
void em_tsched_cancel(em_tsched *ts, em_taskset *set, const char *reason);

void *em_taskset_owner(const em_taskset *set);
uint64_t em_taskset_stage_id(const em_taskset *set);
uint32_t em_taskset_stage_attempt(const em_taskset *set);
int em_taskset_is_zombie(const em_taskset *set);

/* ---- messages from executors (decoded by the kernel) ---- */

/* One STATUS entry from exec. Unknown or stale task ids are ignored. */
void em_tsched_status(em_tsched *ts, em_exec *exec, const em_msg_update *u);
/*
 * A COMMIT_ASK: replies at once through exec's send. Per (stage,
 * partition), across attempts: the first attempt to ask may commit, the
 * others may not, until that one fails; attempts of a set that failed,
 * finished or was cancelled may not.
 */
void em_tsched_commit_ask(em_tsched *ts, em_exec *exec,
                          const em_msg_commit_ask *ask);
/* The stage is gone: forget its commit owners. */
void em_tsched_stage_done(em_tsched *ts, uint64_t stage_id);

/* ---- driving ---- */

/* Offers every free slot to the pools; queues LAUNCH entries. */
void em_tsched_schedule(em_tsched *ts);
/* Sends queued LAUNCH and KILL batches, one message each per executor. */
void em_tsched_flush(em_tsched *ts);
/* Non-zero when something happened that a schedule pass may act on. */
int em_tsched_dirty(const em_tsched *ts);

/* Counters for tests, benchmarks and the UI. */
typedef struct em_tsched_stats {
    uint64_t launched, succeeded, failed, killed, fetch_failed, lost;
    uint64_t speculative_launched, duplicate_results;
    uint64_t launched_at[4];          /* by em_locality */
    uint64_t locality_idle_slot_us;   /* slot time left idle for locality */
    uint64_t store_errors;            /* state-store writes that failed */
    uint32_t executors, tasksets;
    uint64_t total_slots, free_slots;
} em_tsched_stats;
void em_tsched_get_stats(const em_tsched *ts, em_tsched_stats *out);

#endif /* EMBER_KERNEL_SCHED_TASK_SCHEDULER_H */
