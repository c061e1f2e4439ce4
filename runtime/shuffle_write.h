/*
 * runtime/shuffle_write.h — a shuffle map task: compute the stage's
 * dataset for one partition, send each record to its reduce partition
 * (runtime/partition.h), combine map-side where the reading operation has
 * an aggregator (runtime/combiner.h), write through the executor's shuffle
 * manager and commit; the result is the map status (bytes per reduce
 * partition, em_map_status_encode).
 *
 * Threads: the task's.
 */
#ifndef EM_RUNTIME_SHUFFLE_WRITE_H
#define EM_RUNTIME_SHUFFLE_WRITE_H

#include "runtime/pipeline.h"
#include "runtime/shuffle_svc.h"

/*
 * Runs map task `map_id` (attempt `attempt`) of the shuffle io->out_shuffle:
 * computes partition map_id of dataset `node` (a lineage index) and writes
 * it. On success `status` holds the map status. Errors name the dataset,
 * operation and partition.
 *
 * Fusion: when the reading operation combines and `node` is
 * map(std.pair_with V) — over flat_map(std.split_words) or not — those
 * steps are not run: the combiner takes each record's first element (each
 * word of it) as a key with value V directly, which is what they would
 * have produced (the standard library's documented behaviour), without
 * encoding the pairs in between.
 */
ember_status em_shuffle_map_task(em_task_env *env, uint32_t node,
                                 em_shuffle_svc *svc, const em_stage_io *io,
                                 uint32_t map_id, uint32_t attempt,
                                 ember_buf *status, ember_error *err);

#endif /* EM_RUNTIME_SHUFFLE_WRITE_H */
