/*
 * ember/function.h — user transformations (component kind "function").
 *
 * A function component is what a plan names as "<plugin>.<name>" in map,
 * flat_map, filter, reduce_by_key and the like. It works on whole batches:
 * one call per batch, never one per record.
 *
 * Kind version 1. Required slots: `shape` and `determinism` valid, and the
 * call slot of the declared shape (map_batch for MAP, reduce for REDUCE).
 * open/close are optional.
 */
#ifndef EMBER_FUNCTION_H
#define EMBER_FUNCTION_H

#include "ember/batch.h"
#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_FUNCTION_VERSION 1

typedef enum ember_function_shape {
    /* records in, any number of records out per record in: map, flat_map,
     * filter, map_values... map_batch is called once per input batch. */
    EMBER_FN_MAP = 1,
    /* folds values into an accumulator: reduce, fold, combiners. */
    EMBER_FN_REDUCE = 2
} ember_function_shape;

/*
 * What the scheduler may assume when it reruns the function on the same
 * input (SEMANTICS "do better" 3): DETERMINISTIC — same output, same order;
 * UNORDERED — same multiset, any order; INDETERMINATE — anything (a rerun
 * of a map stage that uses it reruns the whole stage).
 */
typedef enum ember_determinism {
    EMBER_DETERMINISTIC = 1,
    EMBER_UNORDERED = 2,
    EMBER_INDETERMINATE = 3
} ember_determinism;

typedef struct ember_function_vtable {
    uint32_t shape;       /* ember_function_shape */
    uint32_t determinism; /* ember_determinism */

    /*
     * Optional. Called once per task before any call, with the argument
     * blob from the plan (arg may be NULL when arg_len is 0; borrowed for
     * this call). Sets *state, passed back to every call and to close.
     * Thread: the task's thread. A failure fails the task with err's text.
     */
    ember_status (*open)(const ember_host_api *host, const uint8_t *arg,
                         size_t arg_len, void **state, ember_error *err);
    void (*close)(void *state);

    /*
     * MAP: append the output records for every record of `in`, in order, to
     * `out` with ember_batch_append, adding their number to *out_count.
     * `in` is borrowed for the call. On error, what was appended is
     * discarded by the caller.
     */
    ember_status (*map_batch)(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err);

    /*
     * REDUCE: out = acc op v1 op v2 ... for the values (encoded records) of
     * `values`, in order; acc is NULL (acc_len 0) when there is no
     * accumulator yet, and then the first value starts the fold. `op` must
     * be associative; `out` receives exactly one encoded record.
     */
    ember_status (*reduce)(void *state, const uint8_t *acc, size_t acc_len,
                           const ember_batch *values, ember_buf *out,
                           ember_error *err);
} ember_function_vtable;

/* An ember_component initializer for a function. */
#define EMBER_FUNCTION_COMPONENT(name_, desc_, vtable_)                    \
    EMBER_COMPONENT(EMBER_KIND_FUNCTION, EMBER_FUNCTION_VERSION, name_,    \
                    desc_, vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_FUNCTION_H */
