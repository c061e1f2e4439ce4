/*
 * runtime/action.h — what a result task computes from its partition: the
 * per-partition half of an action (the driver's half is in client/).
 *
 * The job's action arrives as a JSON object in the STAGE description
 * (em_job_spec.action). Every kind returns its partition's result as a
 * batch of encoded records (ember/batch.h framing):
 *
 *   {"kind":"collect"}                       every record, in order
 *   {"kind":"count"}                         one record: (int count)
 *   {"kind":"take","n":N}                    the first N records
 *   {"kind":"take_ordered","n":N,"descending":B}
 *                                            the N smallest (largest) by
 *                                            typed order, sorted
 *   {"kind":"reduce","fn":F}                 zero or one record: the fold
 *                                            of every record with F
 *   {"kind":"fold","fn":F,"zero":Z}          one record: Z op r1 op r2 ...
 *   {"kind":"aggregate","fn":F,"zero":Z}     one record: Z seq r1 seq ...
 *   {"kind":"foreach","fn":F}                nothing (F is a MAP function
 *                                            run for its effects; its
 *                                            output is dropped)
 *   {"kind":"count_by_value"}                (value record as a value,
 *                                            int count) per distinct record
 *   {"kind":"stats"}                         one record (int count, double
 *                                            mean, double m2, double max,
 *                                            double min) — Spark's
 *                                            StatCounter; empty: (0,0,0,
 *                                            -inf, inf)
 *   {"kind":"save","sink":"plugin.name","arg":B64}
 *                                            writes through a sink; the
 *                                            attempt commits only if the
 *                                            kernel's arbiter allows it
 *   {"kind":"checkpoint","dir":DIR}         one record: (int count); writes
 *                                            the partition to
 *                                            DIR/part-NNNNN, committed
 *                                            through the arbiter
 *                                            (ops_checkpoint.c)
 *   {"kind":"sketch","n":K,"seed":S}        one record (int records, (k1,
 *                                            k2, ...)): a reservoir sample
 *                                            of at most K keys of the
 *                                            partition's pairs (S6)
 *   {"kind":"lookup","key":B64}              the value (as a record) of
 *                                            every pair whose key is B64's
 *                                            encoded key (S28)
 *   {"kind":"reduce_by_key_locally","fn":F} (key, value) per distinct key
 *                                            of the partition's pairs, its
 *                                            values folded with F
 *   F = {"name":"plugin.fn","arg":B64} (arg optional); Z = base64 of one
 *   encoded record.
 *
 * Threads: runs on the task's thread.
 */
#ifndef EM_RUNTIME_ACTION_H
#define EM_RUNTIME_ACTION_H

#include <jansson.h>

#include "ember/function.h"
#include "runtime/pipeline.h"

/* Asks the kernel whether this attempt may commit its output (blocking);
 * returns 1 allowed, 0 refused, negative ember_status on failure. */
typedef int (*em_commit_ask_fn)(void *ctx);

/*
 * Runs action (NULL = collect) over pipe, appending the partition's result
 * batch to out. err names the action and the reason.
 */
ember_status em_action_run(em_task_env *env, em_pipe *pipe,
                           const json_t *action, em_commit_ask_fn ask,
                           void *ask_ctx, ember_buf *out, ember_error *err);

/* Decodes a function reference {"name":..., "arg": base64} and resolves it
 * in registry as a function of the given shape (0 = any). *arg is malloc'd
 * (free it). */
ember_status em_action_fn(const em_registry *registry, const json_t *ref,
                          uint32_t shape, const ember_function_vtable **vt,
                          uint8_t **arg, size_t *arg_len, const char **name,
                          ember_error *err);

/* The "checkpoint" kind (ops_checkpoint.c): the partition's records
 * written to a checkpoint file, made visible only when ask allows. */
ember_status em_action_checkpoint(em_task_env *env, em_pipe *pipe,
                                  const json_t *action, em_commit_ask_fn ask,
                                  void *ask_ctx, ember_buf *out,
                                  ember_error *err);

/* The "sketch" and "lookup" kinds (action_keys.c). */
ember_status em_action_sketch(em_task_env *env, em_pipe *pipe, uint64_t k,
                              uint64_t seed, ember_buf *out, ember_error *err);
ember_status em_action_lookup(em_pipe *pipe, const json_t *action,
                              ember_buf *out, ember_error *err);
ember_status em_action_reduce_locally(em_task_env *env, em_pipe *pipe,
                                      const json_t *action, ember_buf *out,
                                      ember_error *err);

/* Appends the record `enc` framed; a helper for result batches. */
ember_status em_result_put(ember_buf *out, const uint8_t *rec, size_t len);

#endif /* EM_RUNTIME_ACTION_H */
