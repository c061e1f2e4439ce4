/*
 * ember/storage.h — storage tiers (component kind "storage").
 *
 * A storage component is one *tier* of the executor's block manager: it
 * stores opaque blocks (the batch bytes of a cached partition, a broadcast
 * piece ...) by id, and knows nothing of storage levels, memory budgets,
 * eviction, serialization or replication. Those belong to the block
 * manager, which implements Spark's levels (MEMORY_ONLY, MEMORY_ONLY_SER,
 * DISK_ONLY, MEMORY_AND_DISK[_SER], OFF_HEAP, the _2/_3 replicas) over the
 * tiers: the in-tree tiers are memory.store, disk.store and offheap.store.
 * Block ids are printable ASCII ("rdd_3_7"); a tier may refuse others with
 * EMBER_EINVAL (the in-tree ones take letters, digits, '_', '-', '.', at
 * most 200 bytes, not "." or "..").
 *
 * Kind version 1. Required slots: open, close, put, get, remove.
 */
#ifndef EMBER_STORAGE_H
#define EMBER_STORAGE_H

#include "ember/batch.h"
#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_STORAGE_VERSION 1

/* Properties of a tier, for the block manager's accounting. */
#define EMBER_STORAGE_MEMORY 0x1u     /* counts against storage memory */
#define EMBER_STORAGE_DISK 0x2u       /* survives memory pressure */
#define EMBER_STORAGE_SERIALIZED 0x4u /* kept encoded + compressed */
#define EMBER_STORAGE_OFF_HEAP 0x8u   /* outlives its executor process */

typedef struct ember_storage_vtable {
    uint32_t flags;       /* EMBER_STORAGE_* */
    uint32_t replication; /* copies kept, >= 1 (tiers keep 1: replicas
                             are the block manager's) */

    /* One store per executor; dir is its directory under ember.local.dirs
     * (borrowed). close releases the store; whether its blocks outlive it
     * is the tier's to document (offheap's outlive even a crash). put,
     * get and remove may be called from any thread, concurrently. */
    ember_status (*open)(const ember_host_api *host, const char *dir,
                         void **state, ember_error *err);
    void (*close)(void *state);

    /* Stores the batch (copying it) under id; EMBER_ENOSPC when it does not
     * fit (the block manager then evicts or falls back). */
    ember_status (*put)(void *state, const char *id, const ember_batch *data,
                        ember_error *err);
    /* Appends the block's batch bytes to out; EMBER_ENOTFOUND if absent. */
    ember_status (*get)(void *state, const char *id, ember_buf *out,
                        uint64_t *count, ember_error *err);
    /* Drops the block; EMBER_ENOTFOUND if absent. */
    ember_status (*remove)(void *state, const char *id, ember_error *err);
} ember_storage_vtable;

#define EMBER_STORAGE_COMPONENT(name_, desc_, vtable_)                     \
    EMBER_COMPONENT(EMBER_KIND_STORAGE, EMBER_STORAGE_VERSION, name_,      \
                    desc_, vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_STORAGE_H */
