/*
 * runtime/pipeline.h — computing one partition of a dataset: the chain of a
 * stage's narrow operators, pipelined in one pass.
 *
 * em_pipe_open builds, for (dataset node, partition), a tree of operators
 * reaching back through narrow dependencies to sources (parallelize,
 * range, text_file, source, empty). Each em_pipe_next hands out the next
 * batch of the partition's records; batches live in per-operator arenas
 * that are reused, so the only allocations are per operator, never per
 * record. Plugin functions are called once per batch (map, flat_map,
 * filter, key_by, map_values, map_partitions(+_with_index)); flat_map_values
 * calls its function once per value because a MAP call cannot say which
 * input produced which output (documented in docs/plugin-sdk.md).
 *
 * Errors name the dataset, the operation, the function and the partition:
 *   "dataset 3 (map std.parse) partition 7: function returned 2 records for 3"
 * A task's cancel flag is checked between batches.
 *
 * Threads: a pipe belongs to the task thread that opened it.
 */
#ifndef EM_RUNTIME_PIPELINE_H
#define EM_RUNTIME_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>

#include "dag/lineage.h"
#include "ember/batch.h"
#include "ember/host.h"
#include "ember/kernel/registry.h"

/* What every operator of one task shares (owned by the task runner). */
typedef struct em_task_env {
    const ember_host_api *host;
    const em_registry *registry;
    const em_lineage *lineage;
    uint32_t partition;       /* the task's partition of its final dataset */
    uint32_t attempt;
    const atomic_int *cancel; /* non-zero: stop at the next batch (nullable) */
    size_t batch_bytes;       /* target size of a batch (>= 4 KiB) */
    int64_t pipe_timeout_ms;  /* pipe: 0 = none */
    /* Each node's parsed args (index = node index; NULL entries: none),
     * parsed once per stage and shared read-only by its tasks; NULL: each
     * operator parses its own. */
    json_t *const *node_args;
    uint64_t records_in;      /* records read from sources (metrics) */
    /* Shuffles: the executor's service, the stage's shuffle inputs and
     * this executor's id (blocks it holds are read locally); NULL when the
     * stage reads no shuffle. */
    struct em_shuffle_svc *shuffle;
    const struct em_stage_io *io;
    const char *executor_id;
    /* Persisted datasets: the executor's block manager (NULL: nothing is
     * cached) and the application the stage belongs to. */
    struct em_block_mgr *blocks;
    uint64_t app_id;
    /* Where the task notes the blocks it stores and the evictions that
     * causes (runtime/block_report.h), sent with its FINISHED update;
     * NULL: not noted. */
    struct em_block_report *block_report;
    /* Set by a reader that could not get a map output: the task then
     * reports FETCH_FAILED for (ff_shuffle, ff_map) held by ff_executor,
     * and the kernel rebuilds it. */
    int fetch_failed;
    uint64_t ff_shuffle;
    uint32_t ff_map;
    char ff_executor[256];
} em_task_env;

typedef struct em_pipe em_pipe;

/*
 * Builds the operators computing partition `partition` of lineage node
 * `node`. Functions are resolved and opened here (their open() errors come
 * back now). A dataset that reads a shuffle fetches its blocks through
 * env->shuffle at its first batch (runtime/ops_shuffle.c). *out is NULL on
 * failure.
 */
ember_status em_pipe_open(em_pipe **out, em_task_env *env, uint32_t node,
                          uint32_t partition, ember_error *err);

/*
 * The next batch: *b points into the pipe's memory, valid until the next
 * call or em_pipe_close. EMBER_OK (b->count may be 0 only if the
 * operator had nothing in that round), EMBER_END when done, EMBER_ECANCELED
 * when the cancel flag is set, or an error.
 */
ember_status em_pipe_next(em_pipe *p, ember_batch *b, ember_error *err);

/* Closes every operator (functions' close, child processes reaped); NULL-safe. */
void em_pipe_close(em_pipe *p);

/*
 * The partition of the dataset whose function the calling thread is
 * running, or -1 outside a function call (host->task_partition answers
 * this: below a union or coalesce it differs from the task's partition).
 */
int64_t em_pipe_current_partition(void);

/*
 * Parses every node's args of l into a new array (l->count entries, NULL
 * where a node has none); free with em_pipe_args_free. NULL with err set
 * on a malformed args text.
 */
json_t **em_pipe_args_parse(const em_lineage *l, ember_error *err);
void em_pipe_args_free(json_t **args, uint32_t count);

/*
 * Decodes a blob stored as one base64 string or, when longer than a plan
 * string may be, an array of base64 strings (docs/plan-format.md) into a
 * new malloc'd buffer (*out NULL when empty). EMBER_EINVAL otherwise.
 */
ember_status em_pipe_blob(const json_t *v, uint8_t **out, size_t *len);

#endif /* EM_RUNTIME_PIPELINE_H */
