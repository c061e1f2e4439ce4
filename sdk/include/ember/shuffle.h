/*
 * ember/shuffle.h — shuffle managers (component kind "shuffle").
 *
 * A shuffle moves records from map tasks to reduce tasks. The runtime
 * decides where each record goes (the partitioner) and does map-side
 * combining; the shuffle manager stores what a map task wrote, grouped by
 * reduce partition, and hands back one partition's block of one map output.
 *
 * One manager instance per executor, with its own directory. A map task
 * opens a writer, adds batches of records tagged with their reduce
 * partition, and commits: the whole map output becomes visible at once
 * (both files renamed into place), and each partition's stored size comes
 * back for the map status. A writer that is aborted, or a process that
 * dies, leaves nothing a reader can see. Two attempts of the same map task
 * may commit (a retry, a speculative copy): the first committed output
 * wins, and a later commit returns its sizes and discards its own files
 * (Spark's IndexShuffleBlockResolver). A block found corrupt is deleted
 * with its whole map output, so that the rerun the scheduler orders can
 * commit afresh.
 *
 * Order. With EMBER_SHUFFLE_SORTED in the writer's flags, every block
 * comes back with its records in ascending order of their bytes (memcmp,
 * shorter prefix first). For a pair record that is the order of its key
 * bytes, then its value (record encodings are order-preserving and
 * self-delimiting, docs/record-format.md), so no key parsing is needed.
 * A manager that cannot sort (flags in the vtable lack
 * EMBER_SHUFFLE_CAN_SORT) ignores the request; the reader then sorts.
 *
 * Memory. A writer buffers at most memory_bytes of records (the
 * ember.shuffle.memory setting), then spills to disk and merges at commit.
 *
 * Integrity. Stored blocks carry checksums; a block that fails its
 * checksum, does not decompress, or is missing is an error from
 * read_block (EMBER_EINVAL / EMBER_ENOTFOUND), never returned as data —
 * the scheduler treats it as a fetch failure and rebuilds the map output.
 *
 * Threads: the manager's functions may be called from several task
 * threads at once (one writer is used by one thread at a time; read_block
 * and remove_shuffle concurrently with writers of other map outputs).
 *
 * Kind version 2. Required slots: open, close, writer_open, write,
 * writer_commit, writer_abort, read_block, remove_shuffle.
 */
#ifndef EMBER_SHUFFLE_H
#define EMBER_SHUFFLE_H

#include "ember/batch.h"
#include "ember/codec.h"
#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_SHUFFLE_VERSION 2

/* ember_shuffle_vtable.flags */
#define EMBER_SHUFFLE_CAN_SORT 1u /* honours EMBER_SHUFFLE_SORTED */

/* ember_shuffle_writer_opts.flags */
#define EMBER_SHUFFLE_SORTED 1u /* each block's records in byte order */

/* What the host gives a manager at open (borrowed for the manager's life). */
typedef struct ember_shuffle_conf {
    uint32_t size;            /* sizeof(ember_shuffle_conf) of the host */
    uint32_t reserved;
    const char *dir;          /* the manager's directory (exists, empty
                                 or the manager's own from before) */
    uint64_t memory_bytes;    /* a writer's buffer before it spills */
    uint64_t file_buffer;     /* bytes of write buffering per open file */
    uint32_t bypass_threshold; /* at most this many partitions and no
                                  sorting asked: a writer may skip
                                  sorting (Spark's bypass merge path) */
    uint32_t chunk_bytes;     /* uncompressed bytes per compressed chunk */
    /* The codec for stored blocks (NULL: stored as they are). */
    const ember_codec_vtable *codec;
    void *codec_state;
    const char *codec_name;   /* recorded in files, e.g. "lz4" */
} ember_shuffle_conf;

/* What a map task asks of its writer. */
typedef struct ember_shuffle_writer_opts {
    uint32_t size;           /* sizeof(ember_shuffle_writer_opts) */
    uint32_t flags;          /* EMBER_SHUFFLE_SORTED */
    uint64_t shuffle_id;
    uint32_t map_id;         /* the map partition */
    uint32_t attempt;        /* the task attempt (distinct temp files) */
    uint32_t num_partitions; /* reduce partitions, >= 1 */
    uint32_t reserved;
} ember_shuffle_writer_opts;

typedef struct ember_shuffle_vtable {
    uint32_t flags; /* EMBER_SHUFFLE_CAN_SORT */
    uint32_t reserved;

    /* Opens the executor's manager over conf->dir. */
    ember_status (*open)(const ember_host_api *host,
                         const ember_shuffle_conf *conf, void **state,
                         ember_error *err);
    /* Closes the manager; files stay (remove_shuffle deletes them). */
    void (*close)(void *state);

    ember_status (*writer_open)(void *state,
                                const ember_shuffle_writer_opts *opts,
                                void **writer, ember_error *err);
    /*
     * Adds records for reduce partition `partition` (< num_partitions).
     * The records are copied (or written) before the call returns.
     */
    ember_status (*write)(void *writer, uint32_t partition,
                          const ember_batch *records, ember_error *err);
    /*
     * Adds records for many partitions at once: record i of `records` goes
     * to partitions[i] (records->count entries). The fast path of a map
     * task; equivalent to one write() per record.
     */
    ember_status (*write_tagged)(void *writer, const ember_batch *records,
                                 const uint32_t *partitions,
                                 ember_error *err);
    /*
     * Publishes the map output atomically (unless an earlier attempt's is
     * already there: then that one stays and its sizes are returned).
     * lengths[num_partitions] gets each block's stored size in bytes (0
     * for an empty block) and counts[num_partitions] its number of
     * records (counts may be NULL). The writer is freed either way; on
     * failure nothing of this attempt is visible.
     */
    ember_status (*writer_commit)(void *writer, uint64_t *lengths,
                                  uint64_t *counts, ember_error *err);
    /* Discards everything written (temp and spill files); frees writer. */
    void (*writer_abort)(void *writer);

    /*
     * Appends the records of block (shuffle, map, partition) to out as a
     * batch (ember_batch_append framing) and adds their number to *count.
     * A missing block (no committed output) is EMBER_ENOTFOUND; a corrupt
     * one (checksum, codec, framing) EMBER_EINVAL with a message naming
     * the file and offset. On error out->len is restored.
     */
    ember_status (*read_block)(void *state, uint64_t shuffle_id,
                               uint32_t map_id, uint32_t partition,
                               ember_buf *out, uint64_t *count,
                               ember_error *err);
    /* Deletes every file of the shuffle (EMBER_OK if there were none). */
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
