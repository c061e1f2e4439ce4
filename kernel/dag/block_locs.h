/*
 * dag/block_locs.h — where the cached blocks of persisted datasets live:
 * per (application, dataset, partition), the executors that hold the
 * block, in which tier and how big. Executors report what they stored and
 * dropped with their finished tasks (runtime/block_report.h); the DAG
 * scheduler keeps this table from those reports, forgets an executor's
 * rows when it is lost, a dataset's when it is unpersisted and an
 * application's when it closes, and gives tasks that read a cached
 * partition the executors holding it as preferred locations (PROCESS_LOCAL
 * first, then their hosts).
 *
 * The table lives in memory for scheduling and is mirrored row for row in
 * the state store's `blocks` table (schema 3), written in the loop turn's
 * transaction; failed writes are logged and counted in *store_errors and
 * the table goes on. Executors are named by the task scheduler's number
 * (em_exec_no: never reused) in memory and by id in the store.
 *
 * A location is a hint: a block may have been evicted without a report
 * reaching the kernel yet, and a task placed there computes it again.
 *
 * Threads: the kernel's loop thread only.
 */
#ifndef EMBER_KERNEL_DAG_BLOCK_LOCS_H
#define EMBER_KERNEL_DAG_BLOCK_LOCS_H

#include <stdint.h>

#include "ember/abi.h"
#include "state/store.h"

typedef struct em_block_locs em_block_locs;

/* One holder of a block. tier is an em_block_where (runtime/block_mgr.h):
 * 1 memory, 2 disk, 3 off-heap. */
typedef struct em_block_holder {
    uint32_t exec_no;
    uint8_t tier;
    uint64_t bytes;
} em_block_holder;

/*
 * Makes an empty table writing to store (borrowed; NULL: memory only) and
 * counting failed writes in *store_errors (borrowed, non-NULL). Rows a
 * previous kernel left in the store's blocks table are deleted: their
 * executors went with it. EMBER_ENOMEM.
 */
ember_status em_block_locs_create(em_block_locs **out, em_store *store,
                                  uint64_t *store_errors, ember_error *err);

/* Frees the table (the store rows stay). NULL-safe. */
void em_block_locs_destroy(em_block_locs *bl);

/*
 * Records that executor (exec_no, exec_id) holds block (app, dataset,
 * partition) in tier with bytes, replacing what it said before about that
 * block. Out of memory only loses the hint (logged).
 */
void em_block_locs_stored(em_block_locs *bl, uint64_t app, uint64_t dataset,
                          uint32_t partition, uint32_t exec_no,
                          const char *exec_id, uint8_t tier, uint64_t bytes);

/* Records that the executor no longer holds the block (none is fine). */
void em_block_locs_dropped(em_block_locs *bl, uint64_t app, uint64_t dataset,
                           uint32_t partition, uint32_t exec_no,
                           const char *exec_id);

/* Forgets every block the executor held (it is lost or removed). */
void em_block_locs_remove_executor(em_block_locs *bl, uint32_t exec_no,
                                   const char *exec_id);

/* Forgets every block of the app's dataset (unpersisted). */
void em_block_locs_remove_dataset(em_block_locs *bl, uint64_t app,
                                  uint64_t dataset);

/* Forgets every block of the application (closed). */
void em_block_locs_remove_app(em_block_locs *bl, uint64_t app);

/*
 * The holders of block (app, dataset, partition), in the order they
 * reported it: up to cap of them copied to out; returns how many there
 * are (0: none known).
 */
uint32_t em_block_locs_get(const em_block_locs *bl, uint64_t app,
                           uint64_t dataset, uint32_t partition,
                           em_block_holder *out, uint32_t cap);

/* Blocks known (holder rows, all applications): for tests. */
uint64_t em_block_locs_count(const em_block_locs *bl);

#endif /* EMBER_KERNEL_DAG_BLOCK_LOCS_H */
