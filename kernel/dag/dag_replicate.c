/*
 * dag/dag_replicate.c — copies of cached blocks for the _2 and _3 storage
 * levels, as Spark's BlockManager replicates a block after putting it.
 *
 * The kernel, which knows where every block is (dag/block_locs.h), starts
 * the copies: when a task reports a block stored at a level that keeps r
 * copies and fewer than r executors hold it, REPLICATE goes to r - 1 (or
 * fewer) other live executors, which pull the block from the storing
 * executor's block server and report their copy in BLOCK_STORED
 * (runtime/block_replicate.h). Copies are asked for once, when a task
 * stores the block; a copy that fails, or is later lost with its
 * executor, is not made again (Spark's proactive replication, off by
 * default there, is not done): the partition is then simply held by
 * fewer executors, and computed again when none is left. Loop thread.
 */
#include "dag/dag_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "msg/msg.h"
#include "runtime/block_mgr.h"

#define LOG_SRC "blocks"

/* Most copies a level keeps (DISK_ONLY_3). */
#define MAX_COPIES 3

void *em_dag_persist_tag(const char *storage)
{
    const char *name = em_storage_level_known(storage);
    /* the static names are never written through this pointer */
    return (void *)(uintptr_t)(name ? name : "NONE");
}

/* Nonzero when exec_no is among held[0..n). */
static int holds(const em_block_holder *held, uint32_t n, uint32_t exec_no)
{
    for (uint32_t i = 0; i < n; i++)
        if (held[i].exec_no == exec_no)
            return 1;
    return 0;
}

/* Sends REPLICATE for the block to target. */
static void ask_copy(em_exec *target, const app *a, uint64_t dataset,
                     uint32_t partition, const char *level,
                     const em_exec *source)
{
    const char *sid = em_exec_id(source), *ep = em_exec_endpoint(source);
    em_msg_replicate m = {
        .app = a->id,
        .dataset = dataset,
        .partition = partition,
        .level = {(const uint8_t *)level, strlen(level)},
        .source_id = {(const uint8_t *)sid, strlen(sid)},
        .source_endpoint = {(const uint8_t *)ep, strlen(ep)},
    };
    ember_buf b = ember_buf_heap();
    ember_status s = em_msg_encode_replicate(&b, &m);
    if (s == EMBER_OK) {
        em_exec_send(target, b.data, b.len);
        em_log(EMBER_LOG_DEBUG, LOG_SRC, "dataset %" PRIu64 " partition "
               "%" PRIu32 " (%s): executor %s copies it from executor %s",
               dataset, partition, level, em_exec_id(target), sid);
    } else {
        em_log(EMBER_LOG_WARN, LOG_SRC, "dataset %" PRIu64 " partition "
               "%" PRIu32 ": cannot ask for a copy: %s", dataset, partition,
               ember_status_name(s));
    }
    ember_buf_release(&b);
}

void em_dag_replicate(em_dag *d, const app *a, uint64_t dataset,
                      uint32_t partition, const em_exec *source)
{
    const char *level = em_u64map_get(&a->persisted, dataset);
    em_storage_level lv;
    if (!level || !d->ts ||
        em_storage_level_parse(level, &lv, NULL) != EMBER_OK ||
        lv.replication <= 1)
        return;
    uint32_t want = lv.replication > MAX_COPIES ? MAX_COPIES
                                                : lv.replication;
    em_block_holder held[MAX_COPIES];
    uint32_t nheld = em_block_locs_get(d->blocks, a->id, dataset, partition,
                                       held, MAX_COPIES);
    if (nheld >= want)
        return;
    if (!em_exec_endpoint(source)[0]) {
        /* an in-process executor (local[N]) serves no blocks; it is the
         * only executor there anyway */
        em_log(EMBER_LOG_DEBUG, LOG_SRC, "dataset %" PRIu64 " partition "
               "%" PRIu32 " (%s): executor %s serves no blocks, so it "
               "keeps the only copy", dataset, partition, level,
               em_exec_id(source));
        return;
    }
    uint32_t need = want - nheld;
    uint32_t n = em_tsched_executors(d->ts, NULL, 0);
    em_exec **cand = malloc((n ? n : 1) * sizeof *cand);
    if (!cand) {
        em_log(EMBER_LOG_WARN, LOG_SRC, "out of memory: dataset %" PRIu64
               " partition %" PRIu32 " is not copied", dataset, partition);
        return;
    }
    n = em_tsched_executors(d->ts, cand, n);
    /* those without the block, by executor number (insertion sort: a
     * cluster's executors are few) */
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; i++) {
        em_exec *x = cand[i];
        if (holds(held, nheld, em_exec_no(x)))
            continue;
        uint32_t j = nc++;
        while (j > 0 && em_exec_no(cand[j - 1]) > em_exec_no(x)) {
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = x;
    }
    if (nc < need)
        em_log(EMBER_LOG_WARN, LOG_SRC, "dataset %" PRIu64 " partition "
               "%" PRIu32 " (%s): expecting %" PRIu32 " copies but only %"
               PRIu32 " executors can hold one; it is kept on %" PRIu32,
               dataset, partition, level, want, nheld + nc, nheld + nc);
    /* spread the copies: partition p's first goes to candidate p mod nc */
    for (uint32_t k = 0; k < need && k < nc; k++)
        ask_copy(cand[(partition + k) % nc], a, dataset, partition, level,
                 source);
    free(cand);
}
