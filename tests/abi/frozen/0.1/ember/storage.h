/*
 * ember/storage.h — storage levels (component kind "storage").
 *
 * A storage component keeps cached blocks (a partition of a persisted
 * dataset) for the block manager: MEMORY_ONLY, DISK_ONLY, OFF_HEAP ... are
 * each a component. Block ids are printable ASCII ("rdd_3_7").
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

/* Properties of a level, for the block manager's accounting. */
#define EMBER_STORAGE_MEMORY 0x1u     /* counts against storage memory */
#define EMBER_STORAGE_DISK 0x2u       /* survives memory pressure */
#define EMBER_STORAGE_SERIALIZED 0x4u /* kept encoded + compressed */
#define EMBER_STORAGE_OFF_HEAP 0x8u   /* outlives its executor process */

typedef struct ember_storage_vtable {
    uint32_t flags;       /* EMBER_STORAGE_* */
    uint32_t replication; /* copies kept, >= 1 */

    /* One store per executor; dir is its directory under ember.local.dirs
     * (borrowed). */
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
