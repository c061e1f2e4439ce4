/*
 * ember/runtime/executor.h — executors: the processes (or threads) that
 * run tasks for the kernel.
 *
 * An executor dials the kernel's executor endpoint (an em_link rendezvous
 * URL: inproc:// for threads in the driver, ipc:// for local processes,
 * tcp:// across hosts), sends REGISTER, and then runs what it is sent:
 * STAGE descriptions (cached per stage attempt), LAUNCH batches (queued to
 * `slots` worker threads), KILL (cancel flags checked between batches),
 * SHUTDOWN. Task outcomes go back in STATUS batches, heartbeats every
 * ember.executor.heartbeatInterval. A task's failure — a function's error,
 * a bad record, a pipe command's exit status, ember.task.timeout — fails
 * that attempt only, with a message naming the dataset, operation,
 * function, partition and reason.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef EMBER_RUNTIME_EXECUTOR_H
#define EMBER_RUNTIME_EXECUTOR_H

#include <stdint.h>

#include "ember/host.h"
#include "ember/kernel/conf.h"
#include "ember/kernel/export.h"
#include "ember/kernel/registry.h"

typedef struct em_executor em_executor;

typedef struct em_executor_opts {
    const char *endpoint;    /* the kernel's executor endpoint, required */
    const char *executor_id; /* required, unique per kernel */
    const char *host;        /* reported host name; NULL = gethostname */
    uint32_t slots;          /* tasks at once, >= 1 */
    const em_registry *registry; /* functions, sources, sinks; borrowed */
    const em_conf *conf;     /* task settings; NULL = defaults; borrowed */
    int connect_timeout_ms;  /* 0 = 10 s */
    /* Nullable: a directory of plugins shipped to emberd after this
     * executor started (DIR/plugins of its --state). Each STAGE makes the
     * executor load the *.so files in it it has not tried yet into
     * registry, which must then be a registry it may load into. */
    const char *plugin_dir;
} em_executor_opts;

/*
 * Starts an executor: connects, registers and starts its threads. Returns
 * once the connection is up (EMBER_ETIMEDOUT / EMBER_EIO otherwise).
 */
EM_API ember_status em_executor_start(em_executor **out,
                                      const em_executor_opts *opts,
                                      ember_error *err);

/* Blocks until the executor has ended (SHUTDOWN, lost kernel, stop). */
EM_API void em_executor_wait(em_executor *e);

/* Stops: running tasks are cancelled, the connection closed, threads
 * joined, memory freed. NULL-safe. */
EM_API void em_executor_stop(em_executor *e);

/*
 * Installs the runtime's services in the host table (in-process executors
 * for the local cluster manager, task_partition/task_attempt) and ignores
 * SIGPIPE when it is at its default (a pipe command or a peer that went
 * away must fail a task, not kill the process). Idempotent; any thread.
 */
EM_API void em_runtime_init(const em_registry *registry, const em_conf *conf);

#endif /* EMBER_RUNTIME_EXECUTOR_H */
