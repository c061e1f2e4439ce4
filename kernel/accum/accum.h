/*
 * accum/accum.h — an application's accumulators in the kernel: what its
 * plans declared, and the values merged from the updates of the task
 * attempts the DAG scheduler accepts (SEMANTICS S17; which ones is the
 * DAG scheduler's business: dag_scheduler.c).
 *
 * int64 values add with wrap-around (Spark's LongAccumulator), double
 * values with IEEE addition, user-defined values through the REDUCE
 * function their kind names (value = fn(value, update); the first update
 * is the value). Named accumulators go to the state store's accumulators
 * table (em_accums_store).
 *
 * Threads: the kernel's loop thread only.
 */
#ifndef EMBER_KERNEL_ACCUM_ACCUM_H
#define EMBER_KERNEL_ACCUM_ACCUM_H

#include <stddef.h>
#include <stdint.h>

#include "dag/lineage.h"
#include "ember/abi.h"
#include "ember/buf.h"
#include "ember/kernel/registry.h"
#include "state/store.h"

typedef struct em_accums em_accums;

/* An empty set; registry (borrowed, nullable) resolves merge functions. */
ember_status em_accums_create(em_accums **out, const em_registry *registry,
                              ember_error *err);
/* NULL-safe. */
void em_accums_destroy(em_accums *a);

/* How many accumulators were declared. */
uint32_t em_accums_count(const em_accums *a);

/*
 * Adds the declarations d[0..n) of a plan. An id declared before must keep
 * its kind ("accumulator 3 is int64 in an earlier job of this
 * application, double here"); a name given later sets it. A user kind's
 * function must be loaded and REDUCE-shaped. All-or-nothing; EMBER_EINVAL,
 * EMBER_ENOMEM.
 */
ember_status em_accums_declare(em_accums *a, const em_accum_decl *d,
                               uint32_t n, ember_error *err);

/*
 * Merges one attempt's update blob (runtime/accum_wire.h). The blob is
 * validated first (a malformed one merges nothing). Then each update is
 * merged on its own: an unknown id, a kind other than the declared one or
 * a failing merge function refuses that update — its accumulator keeps
 * its value — and the others still merge, as in Spark's
 * updateAccumulators. The first refusal is returned with err (EMBER_EINVAL
 * or the function's status); the caller logs it; nothing else happens
 * (S17: merge failures are ignored).
 */
ember_status em_accums_merge(em_accums *a, const uint8_t *blob, size_t len,
                             ember_error *err);

/* Appends every declared accumulator's value (a wire blob, ids in
 * ascending order; an untouched user value has length 0) to out. */
ember_status em_accums_values(const em_accums *a, ember_buf *out);

/* Writes each named accumulator (name, kind, value as text: the number,
 * or the JSON of a user value's record, NULL while it has none) to the
 * store's accumulators table for app_id. */
ember_status em_accums_store(const em_accums *a, em_store *store,
                             uint64_t app_id, ember_error *err);

#endif /* EMBER_KERNEL_ACCUM_ACCUM_H */
