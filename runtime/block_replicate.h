/*
 * runtime/block_replicate.h — an executor's side of block replication,
 * for the _2 and _3 storage levels (docs/engine.md "Persistence").
 *
 * When a task stores a block of a dataset whose level keeps r > 1 copies,
 * the kernel (kernel/dag/dag_replicate.c) sends REPLICATE (kernel/msg/
 * msg.h) to r - 1 other executors. Each hands the message to its
 * replicator, which — on a thread of its own, one copy at a time — pulls
 * the block from the source executor's block server (runtime/fetch.h,
 * the server that serves shuffle blocks), stores it in this executor's
 * block manager at the same level, and tells the kernel in a BLOCK_STORED
 * message what the put did (a block report, runtime/block_report.h: the
 * copy and whatever storing it evicted).
 *
 * Failures are logged, never fatal: a source gone, a block no longer
 * there, no room at this level — the partition is then held by fewer
 * executors, and is computed again if all of them are lost.
 *
 * Threads: create and destroy on the executor's thread; submit and forget
 * from its link thread; the copies run on the replicator's own thread.
 */
#ifndef EM_RUNTIME_BLOCK_REPLICATE_H
#define EM_RUNTIME_BLOCK_REPLICATE_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "msg/msg.h"
#include "runtime/block_mgr.h"
#include "runtime/block_report.h"

typedef struct em_replicator em_replicator;

/* Sends one encoded message to the kernel (msg borrowed for the call). */
typedef ember_status (*em_replicator_send_fn)(void *ctx, const uint8_t *msg,
                                              size_t len);

/*
 * Copies the block req names from its source's block server into m at
 * req's level, waiting at most timeout_ms (<= 0: no limit) for the
 * source, and notes in *report (as em_block_report_note_put) what the put
 * did. EMBER_EINVAL for an unknown level; the fetch's status when the
 * source cannot give the block (EMBER_ENOTFOUND: it no longer holds it;
 * EMBER_EIO: unreachable); the put's otherwise (EMBER_EUNSUPPORTED: this
 * executor lacks the level's tier). A copy that found no room here is
 * EMBER_OK with nothing noted. The calling thread; m is thread-safe.
 */
ember_status em_replicate_block(em_block_mgr *m, const em_msg_replicate *req,
                                int64_t timeout_ms, em_block_report *report,
                                ember_error *err);

/*
 * Starts a replicator storing into m (borrowed; must outlive it) and
 * reporting through send/ctx; executor_id names this executor in the
 * log. EMBER_ENOMEM, or EMBER_EINTERNAL when its thread cannot start.
 */
ember_status em_replicator_create(em_replicator **out, em_block_mgr *m,
                                  const char *executor_id, int64_t timeout_ms,
                                  em_replicator_send_fn send, void *ctx,
                                  ember_error *err);

/*
 * Queues the copy a REPLICATE message msg[0..len) asks for (copied). A
 * malformed message is logged and dropped; so is one that cannot be
 * queued (out of memory).
 */
void em_replicator_submit(em_replicator *r, const uint8_t *msg, size_t len);

/*
 * The dataset with block-manager key `key` (app << 32 | dataset) was
 * unpersisted (REMOVE_BLOCKS): its queued copies are dropped, and a copy
 * being made is removed again once stored (and not reported).
 */
void em_replicator_forget(em_replicator *r, uint64_t key);

/* Copies made and reported so far, and copies that failed. */
void em_replicator_counts(em_replicator *r, uint64_t *done,
                          uint64_t *failed);

/* Stops the thread: a copy in progress is abandoned at once, nothing
 * queued (or submitted later) is copied or reported. Again: nothing.
 * NULL-safe. */
void em_replicator_stop(em_replicator *r);

/* Stops r if it runs, drops what is queued and frees r. No submit or
 * forget may be running. NULL-safe. */
void em_replicator_destroy(em_replicator *r);

#endif /* EM_RUNTIME_BLOCK_REPLICATE_H */
