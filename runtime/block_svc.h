/*
 * runtime/block_svc.h — an executor's block service: the storage tiers
 * (components memory.store, disk.store, offheap.store from the loaded
 * plugins), the codec of serialized levels and the block manager over
 * them (runtime/block_mgr.h), set up from the configuration:
 *   ember.executor.memory x ember.memory.storageFraction  memory budget
 *   ember.memory.offHeap.size                             off-heap budget
 *   ember.io.compression.codec                            serialized levels
 * Disk blocks go to <ember.local.dir>/ember-blocks-<pid>-<executor>,
 * removed when the service closes; off-heap blocks are named after
 * <ember.local.dir> (shared memory that outlives a crashed executor on
 * the host, docs/engine.md "Persistence").
 *
 * Threads: open and close on the executor's thread; the manager is
 * thread-safe.
 */
#ifndef EM_RUNTIME_BLOCK_SVC_H
#define EM_RUNTIME_BLOCK_SVC_H

#include "ember/kernel/conf.h"
#include "ember/kernel/registry.h"
#include "runtime/block_mgr.h"

typedef struct em_block_svc em_block_svc;

/* Opens the service for executor_id. A missing tier plugin is not an
 * error (levels that need it are not cached, with a warning); EMBER_ENOMEM
 * and a failing tier or codec open are. */
ember_status em_block_svc_open(em_block_svc **out, const em_registry *reg,
                               const em_conf *conf, const char *executor_id,
                               ember_error *err);

/* The block manager (valid until close). */
em_block_mgr *em_block_svc_mgr(em_block_svc *s);

/* Drops every block this executor holds in memory and on disk (off-heap
 * blocks stay for other executors of the host), closes the tiers and the
 * codec, removes the disk directory. NULL-safe. */
void em_block_svc_close(em_block_svc *s);

#endif /* EM_RUNTIME_BLOCK_SVC_H */
