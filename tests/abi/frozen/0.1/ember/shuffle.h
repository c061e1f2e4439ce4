/*
 * ember/shuffle.h — shuffle managers (component kind "shuffle").
 *
 * A map task writes its output records, each tagged with a reduce
 * partition, through a writer; a commit makes the whole map output visible
 * at once and reports each partition's size. Reducers read one block per
 * (map, partition).
 *
 * Kind version 1. Required slots: open, close, writer_open, write,
 * writer_commit, writer_abort, read_block, remove_shuffle.
 */
#ifndef EMBER_SHUFFLE_H
#define EMBER_SHUFFLE_H

#include "ember/batch.h"
#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_SHUFFLE_VERSION 1

typedef struct ember_shuffle_vtable {
    /* One manager per executor; dir is its directory (borrowed). */
    ember_status (*open)(const ember_host_api *host, const char *dir,
                         void **state, ember_error *err);
    void (*close)(void *state);

    ember_status (*writer_open)(void *state, uint64_t shuffle_id,
                                uint32_t map_id, uint32_t attempt,
                                uint32_t num_partitions, void **writer,
                                ember_error *err);
    /* Adds records for one reduce partition (copied). */
    ember_status (*write)(void *writer, uint32_t partition,
                          const ember_batch *records, ember_error *err);
    /* Publishes the map output atomically; lengths[num_partitions] gets
     * each block's stored size. The writer is freed either way. */
    ember_status (*writer_commit)(void *writer, uint64_t *lengths,
                                  ember_error *err);
    /* Discards everything written; frees the writer. */
    void (*writer_abort)(void *writer);

    /* Appends the records of block (shuffle, map, partition) to out as a
     * batch; a missing or corrupt block is EMBER_ENOTFOUND / EMBER_EINVAL
     * (the scheduler treats both as a fetch failure). */
    ember_status (*read_block)(void *state, uint64_t shuffle_id,
                               uint32_t map_id, uint32_t partition,
                               ember_buf *out, uint64_t *count,
                               ember_error *err);
    /* Deletes every file of the shuffle. */
    ember_status (*remove_shuffle)(void *state, uint64_t shuffle_id,
                                   ember_error *err);
} ember_shuffle_vtable;

#define EMBER_SHUFFLE_COMPONENT(name_, desc_, vtable_)                     \
    EMBER_COMPONENT(EMBER_KIND_SHUFFLE, EMBER_SHUFFLE_VERSION, name_,      \
                    desc_, vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_SHUFFLE_H */
