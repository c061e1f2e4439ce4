/*
 * ember/kernel/kernel.h — the kernel: event loop, DAG scheduler, task
 * scheduler with FIFO/FAIR pools, and the SQLite state store, behind one
 * object. emberd runs it as a service; a driver embeds it for local[N].
 *
 * Threads: every function here may be called from any thread unless it
 * says "loop thread". Work is posted to the loop, whose thread is
 * whichever thread calls em_loop_run (em_kernel_loop) — a service runs it
 * on its own thread, tests step it. Listener callbacks and executor sends
 * run on the loop thread.
 *
 * Executors reach the kernel through connections: the transport (NNG in
 * the runtime, direct calls in tests) opens one per executor, hands every
 * received message to em_kernel_conn_recv and sends what the kernel passes
 * to its send function. Messages are those of kernel/msg/msg.h.
 */
#ifndef EMBER_KERNEL_KERNEL_H
#define EMBER_KERNEL_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/cluster_manager.h"
#include "ember/kernel/conf.h"
#include "ember/kernel/export.h"
#include "ember/kernel/registry.h"

typedef struct em_kernel em_kernel;
typedef struct em_loop em_loop;

/* A job's results and end, delivered on the loop thread. */
typedef struct em_job_listener {
    void *ctx;
    /* One call per requested partition, when its result task succeeds;
     * data is borrowed for the call. Nullable. */
    void (*result)(void *ctx, uint64_t job_id, uint32_t partition,
                   const uint8_t *data, size_t len);
    /* Exactly once: EMBER_OK, or the failure's status and message
     * (EMBER_EPLUGIN a task failed, EMBER_ECANCELED cancelled,
     * EMBER_ENOSPC results over ember.driver.maxResultSize). Nullable. */
    void (*end)(void *ctx, uint64_t job_id, ember_status status,
                const char *message);
    /* Just before end, when the job's application declared accumulators:
     * the values of all of them as the kernel merged them so far (a wire
     * blob, runtime/accum_wire.h), borrowed for the call. Nullable. */
    void (*accums)(void *ctx, uint64_t job_id, const uint8_t *values,
                   size_t len);
} em_job_listener;

/* Clock for tests: monotonic microseconds. */
typedef struct em_kernel_clock {
    uint64_t (*now_us)(void *ctx);
    void *ctx;
} em_kernel_clock;

typedef struct em_kernel_opts {
    const em_conf *conf;           /* read during create; NULL = defaults */
    const char *state_path;        /* SQLite database file, required */
    const em_registry *registry;   /* plugins that resolve function names;
                                      NULL = names are not checked. Must
                                      outlive the kernel. */
    const em_kernel_clock *clock;  /* NULL = CLOCK_MONOTONIC */
} em_kernel_opts;

/*
 * Creates a kernel: opens (and migrates) the state store, marks jobs a
 * previous kernel left running as INTERRUPTED, builds the pools (loading
 * ember.scheduler.allocation.file in FAIR mode) and the schedulers.
 * Configuration errors name the key and the value.
 */
EM_API ember_status em_kernel_create(em_kernel **out,
                                     const em_kernel_opts *opts,
                                     ember_error *err);

/* Stops the cluster manager, ends active jobs (EMBER_ECANCELED), flushes
 * the store and frees everything. Not from a callback. NULL-safe. */
EM_API void em_kernel_destroy(em_kernel *k);

/* The kernel's loop (kernel/core/loop.h, for the kernel's own tests). */
EM_API em_loop *em_kernel_loop(em_kernel *k);

/* How em_kernel_run runs the loop (as em_loop_run_mode). */
typedef enum em_kernel_run_mode {
    EM_KERNEL_RUN_DEFAULT = 0, /* until em_kernel_stop */
    EM_KERNEL_RUN_ONCE = 1,    /* one turn, blocking until work arrives */
    EM_KERNEL_RUN_NOWAIT = 2,  /* one turn, never blocking */
    EM_KERNEL_RUN_UNTIL_IDLE = 3 /* NOWAIT turns until one does nothing */
} em_kernel_run_mode;

/* Runs the loop on the calling thread, which becomes the loop thread for
 * the call. Returns the callbacks run, or a negative ember_status. */
EM_API int64_t em_kernel_run(em_kernel *k, em_kernel_run_mode mode);
/* Any thread: makes a DEFAULT run return. */
EM_API void em_kernel_stop(em_kernel *k);

/* ---- applications (sessions) ---- */

/* Opens an application; dataset ids and shuffles live per application. */
EM_API ember_status em_kernel_app_open(em_kernel *k, const char *name,
                                       uint64_t *app_id, ember_error *err);
/* Cancels its jobs and releases its shuffles. */
EM_API ember_status em_kernel_app_close(em_kernel *k, uint64_t app_id);

/* Unpersist: the executors drop the cached blocks of the application's
 * dataset (when a plan of the app persisted it). Asynchronous; any
 * thread. EMBER_ENOMEM, or an error when the kernel has stopped. */
EM_API ember_status em_kernel_unpersist(em_kernel *k, uint64_t app_id,
                                        uint64_t dataset);

/* ---- jobs ---- */

typedef struct em_job_spec {
    uint64_t app_id;
    const char *plan;   /* a plan document (docs/plan-format.md) */
    size_t plan_len;
    uint64_t dataset;   /* the action's dataset id */
    const uint32_t *partitions; /* NULL = all */
    uint32_t npartitions;
    const char *pool;   /* ember.scheduler.pool; NULL = default */
    const char *group;  /* job group, for em_kernel_cancel_group */
    const char *description;
    /* What each result task computes from its partition, a JSON object
     * handed to executors unchanged as the STAGE description's "action"
     * (runtime/action.h documents the kinds). NULL = the records as they
     * are (collect). Copied; must be a JSON object. */
    const char *action;
    size_t action_len;
    em_job_listener listener;
} em_job_spec;

/*
 * Submits a job. The plan is decoded and validated on the calling thread:
 * a corrupt or hostile plan is refused here with a message saying what
 * and where, and nothing is scheduled. On EMBER_OK *job_id is set and the
 * listener's end will be called exactly once.
 */
EM_API ember_status em_kernel_submit(em_kernel *k, const em_job_spec *spec,
                                     uint64_t *job_id, ember_error *err);
/* Cancels a job: queued tasks never start, running ones are killed. */
EM_API ember_status em_kernel_cancel_job(em_kernel *k, uint64_t job_id,
                                         const char *reason);
/* Cancels every active job of app_id in group. */
EM_API ember_status em_kernel_cancel_group(em_kernel *k, uint64_t app_id,
                                           const char *group,
                                           const char *reason);

/*
 * Describes dataset's lineage in a plan as Spark's toDebugString does:
 * one line per dataset, "(N)" partition counts where stages begin,
 * indentation at shuffle boundaries. *out is malloc'd (free it). The plan
 * is validated as em_kernel_submit does; functions are not resolved.
 */
EM_API ember_status em_plan_describe(const char *plan, size_t plan_len,
                                     uint64_t dataset, char **out,
                                     ember_error *err);

/*
 * Validates a plan as em_kernel_submit does (functions resolved against
 * registry when it is not NULL); *datasets (nullable) gets its size.
 */
EM_API ember_status em_plan_check(const char *plan, size_t plan_len,
                                  const em_registry *registry,
                                  uint32_t *datasets, ember_error *err);

/* ---- executors ---- */

/* Sends one message to an executor; loop thread; msg borrowed. */
typedef void (*em_kernel_send_fn)(void *ctx, const uint8_t *msg, size_t len);

/* Told, on the loop thread, that a connection is gone for good. */
typedef void (*em_kernel_closed_fn)(void *ctx);

/*
 * Opens a connection for one executor. send (loop thread) carries the
 * kernel's messages to it. closed (nullable) is called once on the loop
 * thread when the connection is gone — after em_kernel_conn_close was
 * processed, the executor was lost, or the kernel was destroyed — and
 * send is never called after it: the transport frees ctx there.
 */
EM_API ember_status em_kernel_conn_open(em_kernel *k, em_kernel_send_fn send,
                                        em_kernel_closed_fn closed,
                                        void *ctx, uint64_t *conn_id);
/* A message received on conn (copied). A malformed message is logged
 * and recorded as an event, and changes nothing. */
EM_API ember_status em_kernel_conn_recv(em_kernel *k, uint64_t conn_id,
                                        const void *msg, size_t len);
/* The connection is gone: its executor is lost (tasks re-queued, its map
 * outputs unregistered). Asynchronous: send may still be called until the
 * connection's closed callback runs. */
EM_API ember_status em_kernel_conn_close(em_kernel *k, uint64_t conn_id,
                                         const char *reason);

/*
 * Starts a cluster manager for master_url; executors it starts connect to
 * endpoint. Its executor_lost events close the executor's connection.
 * Loop thread or before the loop runs. The vtable must outlive the kernel.
 */
EM_API ember_status em_kernel_start_cluster(
    em_kernel *k, const ember_cluster_manager_vtable *vt,
    const char *master_url, const char *endpoint, uint32_t executors,
    ember_error *err);

/* ---- inspection (loop thread) ---- */

typedef struct em_kernel_stats {
    uint64_t tasks_launched, tasks_succeeded, tasks_failed, tasks_killed;
    uint64_t tasks_fetch_failed, tasks_lost, speculative_launched;
    uint64_t duplicate_results, bad_messages;
    uint64_t store_errors; /* failed state-store writes (logged) */
    uint64_t launched_process_local, launched_node_local,
        launched_no_pref, launched_any, locality_idle_slot_us;
    uint64_t stage_attempts, skipped_stages;
    uint64_t jobs_succeeded, jobs_failed, jobs_cancelled;
    uint32_t active_jobs, executors;
    uint64_t total_slots, free_slots;
} em_kernel_stats;
EM_API void em_kernel_get_stats(const em_kernel *k, em_kernel_stats *out);

/* Map outputs present for shuffle_id, or -1 if unknown (loop thread). */
EM_API int64_t em_kernel_shuffle_available(const em_kernel *k,
                                           uint64_t shuffle_id);

/* Commits pending state-store writes now (loop thread). */
EM_API ember_status em_kernel_flush(em_kernel *k, ember_error *err);

#endif /* EMBER_KERNEL_KERNEL_H */
