/*
 * runtime/accum_task.h — accumulators on an executor: the accumulators a
 * stage's plan declares (em_accum_defs, resolved once per stage) and one
 * task attempt's local update (em_accum_task), which the host slots
 * accum_add_i64 / accum_add_double / accum_add write to and which goes to
 * the kernel in the FINISHED update (runtime/accum_wire.h).
 *
 * An add costs no allocation for int64 and double (summed in place; int64
 * wraps on overflow, as Spark's LongAccumulator) and folds a user value
 * with its REDUCE function into a buffer that is reused. The first add
 * that fails (an id the plan does not declare, the wrong kind, a value
 * that is not a record, a failing merge) is remembered: the attempt then
 * fails with that message even if the function ignored the status.
 *
 * Threads: defs are immutable once made and shared by a stage's tasks; a
 * task's update is thread-local state of the thread that runs the task.
 */
#ifndef EMBER_RUNTIME_ACCUM_TASK_H
#define EMBER_RUNTIME_ACCUM_TASK_H

#include <stdint.h>

#include "dag/lineage.h"
#include "ember/buf.h"
#include "ember/kernel/registry.h"
#include "runtime/accum_wire.h"

typedef struct em_accum_defs em_accum_defs;

/*
 * Resolves decl[0..n) (sorted by id, as em_accum_decls_decode gives them)
 * against registry: *out gets NULL when n is 0. A user kind whose function
 * is missing or not REDUCE-shaped is kept, and an add to it fails the task
 * with that reason. EMBER_ENOMEM only. Link thread.
 */
ember_status em_accum_defs_create(em_accum_defs **out,
                                  const em_accum_decl *decl, uint32_t n,
                                  const em_registry *registry,
                                  ember_error *err);
/* NULL-safe. After the last task using them ended. */
void em_accum_defs_free(em_accum_defs *d);

/*
 * Starts the calling thread's task attempt over defs (nullable: the plan
 * declares none, and every add fails). EMBER_ENOMEM (nothing started).
 */
ember_status em_accum_task_begin(const em_accum_defs *defs, ember_error *err);

/*
 * Ends the calling thread's attempt. When it succeeded (ok != 0) and no
 * add failed, appends the wire blob of what it added (nothing when it
 * added nothing) to blob. *failed is set, with the reason in err, when an
 * add failed (then nothing is appended). EMBER_ENOMEM.
 */
ember_status em_accum_task_end(int ok, ember_buf *blob, int *failed,
                               ember_error *err);

/* The host slots (em_host_runtime): the calling thread's task, as in
 * ember/host.h; EMBER_EUNSUPPORTED outside a task. */
ember_status em_accum_add_i64(uint64_t id, int64_t v);
ember_status em_accum_add_double(uint64_t id, double v);
ember_status em_accum_add(uint64_t id, const uint8_t *rec, size_t len,
                          ember_error *err);

#endif /* EMBER_RUNTIME_ACCUM_TASK_H */
