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
 * Runs map task `map_id` (attempt `attempt`) of the shuffle io->out_shuffle,
 * reading its records from pipe. On success `status` holds the map status.
 * Errors name the dataset, operation and partition.
 */
ember_status em_shuffle_map_task(em_task_env *env, em_pipe *pipe,
                                 em_shuffle_svc *svc, const em_stage_io *io,
                                 uint32_t map_id, uint32_t attempt,
                                 ember_buf *status, ember_error *err);

#endif /* EM_RUNTIME_SHUFFLE_WRITE_H */
