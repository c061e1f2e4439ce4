/*
 * runtime/block_mgr.h — the executor's block manager: where the cached
 * partitions of persisted datasets live (SEMANTICS S19–S21).
 *
 * One manager per executor. It owns no storage itself: three tiers
 * (storage components, ember/storage.h) keep the bytes — memory, disk and
 * off-heap — and the manager decides which tier a block goes to, accounts
 * the memory it takes against a budget, evicts least-recently-used blocks
 * when memory runs short, and encodes serialized levels through a codec.
 *
 * A block is one whole partition ("all or nothing", S20), named
 * "rdd_<dataset>_<partition>", and lives in exactly one tier at a time:
 *   - memory levels go to the memory tier while the memory budget allows,
 *     evicting least-recently-used blocks of OTHER datasets to make room
 *     (never of the dataset being stored nor blocks being read, S19; and
 *     nothing at all unless enough can be freed). An evicted block whose level uses disk moves to
 *     the disk tier; any other is dropped (recomputed when next needed).
 *     What still does not fit goes to disk for *_AND_DISK levels and is not
 *     cached for MEMORY_ONLY levels;
 *   - OFF_HEAP goes to the off-heap tier under its own budget, with the
 *     same eviction rule, falling back to disk (Spark's OFF_HEAP uses disk);
 *   - DISK_ONLY goes to the disk tier.
 * A tier that answers EMBER_ENOSPC (or fails otherwise) when storing means
 * "not cached there": caching never fails a task.
 *
 * Unrolling a partition (em_block_unroll_*) reserves what it holds from the
 * pool its level would store it in (memory or off-heap), as Spark reserves
 * unroll memory from the storage pool: blocks stored plus reservations
 * never exceed a pool's budget. A reservation may evict blocks of other
 * datasets by the rule above; when it cannot be had, a memory-only level
 * stores nothing and a level with disk goes on unrolling for the disk tier.
 *
 * A block of a level that uses memory (or off-heap) which is read from the
 * disk tier by em_block_mgr_get_promote moves back to its pool when the
 * pool can hold it (Spark's maybeCacheDiskValuesInMemory), again evicting
 * only blocks of other datasets.
 *
 * Deserialized levels keep the batch bytes as they are, accounted at their
 * length. Serialized levels (*_SER, DISK_ONLY, OFF_HEAP) are encoded once
 * when a codec is given: a 16-byte header ("EMBS", version, raw length)
 * and chunks of at most 1 MiB of input, each a 4-byte raw length, a 4-byte
 * compressed length and the codec's output; they are accounted at that
 * stored size. Without a codec they are kept as they are.
 *
 * Everything is per batch and per block; nothing looks at records.
 *
 * Threads: every em_block_mgr_* call may come from any executor thread at
 * once. One mutex guards the manager's books, and the I/O of a read or a
 * store runs outside it, so one task reading (or storing) a large block
 * does not stall the others' lookups and stores:
 *   - a get finds the block and pins it under the mutex (Spark's
 *     BlockInfoManager.lockForReading), then reads it from its tier and
 *     decodes it outside, then takes the mutex again to unpin it. A pinned
 *     block is never evicted (S19: "blocks that are locked for reading")
 *     and never removed from under its reader: a remove (unpersist, a
 *     block read as corrupt) makes it unfindable at once — gets miss,
 *     em_block_mgr_where says NOWHERE — and the last reader to unpin
 *     removes it from its tier. Its bytes count as used (stats) until
 *     then, as they are still in the tier, and are released once;
 *   - a put (or an unroll's finish) chooses the tier and makes room under
 *     the mutex, the block's bytes held in its pool's reservation, and
 *     writes to the tier outside it. Meanwhile the block is not cached:
 *     gets miss and the task computes the partition (Spark would wait for
 *     the writer's lock instead), a second put of it is "already", and a
 *     remove leaves it for the writer to remove when the write ends. A
 *     store of a block removed while still being read is not cached.
 * Tier calls therefore come concurrently, as ember/storage.h requires of
 * tiers. Still under the mutex, so a call may wait for another call's
 * tier I/O there: eviction (moving a memory or off-heap block to the disk
 * tier: a read and a write, for a put or a reservation that evicts),
 * promotion of a block read from disk into its pool (the pool's write),
 * and removing blocks from their tiers (unpersist, eviction, a doomed
 * block's last unpin). Encoding and decoding run outside it, so the codec
 * must allow concurrent calls (ember codecs do). An em_block_unroll
 * belongs to the one task thread that began it.
 */
#ifndef EM_RUNTIME_BLOCK_MGR_H
#define EM_RUNTIME_BLOCK_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/batch.h"
#include "ember/buf.h"
#include "ember/codec.h"
#include "ember/storage.h"

/*
 * A storage level, as Spark's StorageLevel. use_memory: kept in the memory
 * tier, against the memory budget; use_off_heap: kept in the off-heap tier
 * instead (Spark's OFF_HEAP is memory in off-heap mode); use_disk: kept on
 * the disk tier when memory cannot hold it; serialized: kept encoded
 * (Spark's deserialized == false). replication (1..3): how many
 * executors should hold the block; the block manager stores one copy, and
 * the kernel asks other executors for the rest (runtime/block_replicate.h).
 */
typedef struct em_storage_level {
    bool use_memory;
    bool use_disk;
    bool use_off_heap;
    bool serialized;
    uint8_t replication;
} em_storage_level;

/*
 * Parses a Spark level name (NONE, DISK_ONLY, DISK_ONLY_2, DISK_ONLY_3,
 * MEMORY_ONLY, MEMORY_ONLY_2, MEMORY_ONLY_SER, MEMORY_ONLY_SER_2,
 * MEMORY_AND_DISK, MEMORY_AND_DISK_2, MEMORY_AND_DISK_SER,
 * MEMORY_AND_DISK_SER_2, OFF_HEAP; any letter case) into *out. An unknown
 * name is EMBER_EINVAL with a message quoting it and listing the names.
 * Any thread.
 */
ember_status em_storage_level_parse(const char *name, em_storage_level *out,
                                    ember_error *err);

/* The Spark name of level, or "custom" when it is none of them (a static
 * string). Any thread. */
const char *em_storage_level_name(em_storage_level level);

/* One tier: a storage component's table and its opened state (both
 * borrowed for the manager's life). vt NULL = the executor has no such
 * tier. */
typedef struct em_block_tier {
    const ember_storage_vtable *vt;
    void *state;
} em_block_tier;

/* The codec of serialized levels (borrowed). vt NULL = keep serialized
 * blocks as they are. */
typedef struct em_block_codec {
    const ember_codec_vtable *vt;
    void *state;
} em_block_codec;

typedef struct em_block_mgr_opts {
    /* Storage memory for the memory tier, in bytes: the caller computes
     * ember.executor.memory x the storage fraction. 0 = nothing fits. */
    uint64_t memory_budget;
    /* Memory for the off-heap tier (Spark's spark.memory.offHeap.size);
     * 0 = nothing fits (OFF_HEAP blocks go to disk). */
    uint64_t off_heap_budget;
    em_block_tier memory, disk, off_heap;
    em_block_codec codec;
    /* Most bytes one unroll holds for a level with disk; 0 = no cap. */
    uint64_t unroll_cap;
    /* What an unroll reserves from its pool when it begins, in bytes
     * (ember.storage.unrollMemoryThreshold, Spark's
     * spark.storage.unrollMemoryThreshold; at most the pool's budget).
     * 0 = nothing until the first batch. */
    uint64_t unroll_threshold;
} em_block_mgr_opts;

typedef struct em_block_mgr em_block_mgr;

/*
 * Makes a manager over opts (copied; the tiers and codec it names are
 * borrowed and must outlive it). EMBER_EINVAL when a given tier or codec
 * lacks a required slot, EMBER_ENOMEM. Any thread.
 */
ember_status em_block_mgr_open(em_block_mgr **out,
                               const em_block_mgr_opts *opts,
                               ember_error *err);

/*
 * Removes the blocks held in the memory tier (that memory is the
 * executor's) and frees the manager. Disk and off-heap blocks are left in
 * their tiers; call em_block_mgr_remove_all first to drop them too. The
 * tiers and codec are not closed (the caller opened them). No other call
 * may be running. NULL-safe.
 */
void em_block_mgr_close(em_block_mgr *m);

/* Where a block is. */
typedef enum em_block_where {
    EM_BLOCK_NOWHERE = 0, /* not cached */
    EM_BLOCK_MEMORY,
    EM_BLOCK_DISK,
    EM_BLOCK_OFF_HEAP
} em_block_where;

/* A block moved by eviction: now EM_BLOCK_DISK or EM_BLOCK_NOWHERE;
 * bytes is its size on disk (0 when dropped). */
typedef struct em_block_moved {
    uint64_t dataset;
    uint32_t partition;
    em_block_where now;
    uint64_t bytes;
} em_block_moved;

/*
 * What a put (or an unroll, or a read that promoted a block) did, for the
 * kernel's block tracking. `evicted` is allocated by the manager (NULL
 * when n_evicted is 0) and freed by em_block_put_result_release.
 */
typedef struct em_block_put_result {
    em_block_where where;   /* where the block went */
    bool already;           /* it was stored before: nothing changed */
    bool gave_up;           /* an unroll that stopped holding: not stored */
    bool promoted;          /* a read moved it from disk to `where` */
    uint64_t stored_bytes;  /* its size in that tier (0 when not cached) */
    size_t n_evicted;
    em_block_moved *evicted; /* least recently used first */
} em_block_put_result;

/* Frees res->evicted and zeroes res. NULL-safe. */
void em_block_put_result_release(em_block_put_result *res);

/*
 * Caches partition `partition` of dataset `dataset` at `level`, copying
 * b's bytes (borrowed for the call), as described at the top. *res (may be
 * NULL; overwritten, so release an earlier result in it first) says where
 * it went and what was evicted; a block already stored is
 * left as it is (res->already) — also one another call is storing now
 * (res->where EM_BLOCK_NOWHERE then: that call reports where it went).
 * A block removed while a get still reads it is not cached (res->where
 * EM_BLOCK_NOWHERE). Returns EMBER_OK whenever the level can be
 * served — also when the block could not be cached (res->where ==
 * EM_BLOCK_NOWHERE): the caller recomputes it later. EMBER_EUNSUPPORTED
 * when the level needs a tier this executor lacks; EMBER_EINVAL for a bad
 * argument or a block too large to encode; EMBER_ENOMEM. On any non-OK
 * return nothing is stored and *res holds no evictions. Any thread.
 */
ember_status em_block_mgr_put(em_block_mgr *m, uint64_t dataset,
                              uint32_t partition, em_storage_level level,
                              const ember_batch *b, em_block_put_result *res,
                              ember_error *err);

/*
 * Appends the cached partition's batch bytes (decoded) to out and sets
 * *count to its record count, marking it most recently used.
 * EMBER_ENOTFOUND when it is not cached (being stored by another call
 * counts as not cached yet) — also when its tier lost it or
 * it reads as corrupt (EMBER_EINVAL from the tier or the decoder): such a
 * block is removed, with a warning in the log, and the caller recomputes.
 * Other tier failures (EMBER_EIO ...) are returned as they are, the block
 * kept. On failure out is as it was. The block stays in its tier (see
 * em_block_mgr_get_promote): for readers whose moves nobody would report
 * (the block server, runtime/fetch.c). Any thread.
 */
ember_status em_block_mgr_get(em_block_mgr *m, uint64_t dataset,
                              uint32_t partition, ember_buf *out,
                              uint64_t *count, ember_error *err);

/*
 * As em_block_mgr_get, and a block read from the disk tier whose level
 * uses memory (or off-heap) moves back to that pool when the pool can
 * hold it, evicting least-recently-used blocks of other datasets if need
 * be (never of its own; nothing unless enough can be freed); it is then
 * removed from disk and is the pool's most recently used. It keeps its
 * stored form (encoded for serialized levels). DISK_ONLY blocks, blocks
 * that do not fit, and blocks another get is reading too, stay on disk. *res (required; overwritten) says
 * what moved, for the task's block report: res->promoted and res->where
 * (the pool's tier, else EM_BLOCK_NOWHERE) with stored_bytes, and
 * res->evicted — which lists the evictions that happened whatever the
 * status. Any thread.
 */
ember_status em_block_mgr_get_promote(em_block_mgr *m, uint64_t dataset,
                                      uint32_t partition, ember_buf *out,
                                      uint64_t *count,
                                      em_block_put_result *res,
                                      ember_error *err);

/* Where the block is now (EM_BLOCK_NOWHERE if not cached, being stored,
 * or removed while still being read); does not touch its recency. Any
 * thread. */
em_block_where em_block_mgr_where(em_block_mgr *m, uint64_t dataset,
                                  uint32_t partition);

/* Unpersist: removes every partition of dataset from every tier; returns
 * how many cached blocks were removed. A block being read leaves its tier
 * when its last reader is done, one being stored when its write ends (not
 * counted: it was not cached yet); both are gone for every other call at
 * once. Tier failures are logged. Any thread. */
size_t em_block_mgr_remove_dataset(em_block_mgr *m, uint64_t dataset);

/* Removes every block from every tier as em_block_mgr_remove_dataset;
 * returns how many. Any thread. */
size_t em_block_mgr_remove_all(em_block_mgr *m);

typedef struct em_block_stats {
    uint64_t memory_used, memory_budget;     /* bytes, memory tier */
    uint64_t off_heap_used, off_heap_budget; /* bytes, off-heap tier */
    /* bytes unrolls hold reserved now (S20) and stores being written to
     * their tier, memory and off-heap pools; used + reserved never
     * exceeds the budget. `used` and the block counts include blocks
     * removed while still being read, until their last reader is done. */
    uint64_t memory_reserved, off_heap_reserved;
    uint64_t disk_used;                      /* bytes, disk tier */
    uint64_t blocks_memory, blocks_disk, blocks_off_heap;
    uint64_t evictions; /* blocks evicted from memory or off-heap, ever */
} em_block_stats;

/* A snapshot of the manager's accounting into *out. Any thread. */
void em_block_mgr_stats(em_block_mgr *m, em_block_stats *out);

/*
 * Unrolling (S20): a task computing a partition of a persisted dataset
 * hands each batch it passes on to em_block_unroll_append, then calls
 * em_block_unroll_finish, which stores the whole partition at once.
 *
 * An unroll of a memory (off-heap) level reserves what it holds from that
 * pool: opts.unroll_threshold at begin, and whenever a batch would take
 * it past its reservation, 1.5 times what it would then hold (capped at
 * the budget; else just what it needs). Reserving may evict
 * least-recently-used blocks of other datasets as a put does; finish
 * hands those evictions out in res->evicted. When a reservation cannot be
 * had, a level without disk gives up, and a level with disk lets the
 * reservation go and goes on holding, up to opts.unroll_cap, for the disk
 * tier (finish then does not try memory again). Unrolls without
 * reservation (DISK_ONLY, a fallen-back level) stop at opts.unroll_cap.
 * Serialized levels hold the encoded form, so limits apply to what would
 * be stored (and a batch's encoded form is reserved once it is encoded).
 *
 * Giving up frees what the unroll held and its reservation, and stores
 * nothing. The task's output is never affected: append cannot fail, and a
 * failed allocation only gives up.
 */
typedef struct em_block_unroll em_block_unroll;

/*
 * Starts unrolling (dataset, partition) at level for m (borrowed; it must
 * outlive the unroll). EMBER_EUNSUPPORTED when the level needs a missing
 * tier, EMBER_ENOMEM. A level that stores nothing (NONE) gives up at once.
 * The calling task's thread.
 */
ember_status em_block_unroll_begin(em_block_unroll **out, em_block_mgr *m,
                                   uint64_t dataset, uint32_t partition,
                                   em_storage_level level, ember_error *err);

/* Adds b's bytes and records (borrowed for the call) unless it gave up. */
void em_block_unroll_append(em_block_unroll *u, const ember_batch *b);

/* True once the unroll has given up (it holds nothing then). */
bool em_block_unroll_gave_up(const em_block_unroll *u);

/* Bytes the unroll holds now (encoded for serialized levels). */
uint64_t em_block_unroll_bytes(const em_block_unroll *u);

/*
 * Stores what was unrolled as one block (as em_block_mgr_put, same
 * statuses and *res), or nothing when it gave up (EMBER_OK,
 * res->gave_up, res->where EM_BLOCK_NOWHERE), and frees u in every case.
 * The reservation goes: a block stored in its pool takes its place.
 * res->evicted lists, first, what u's reservations evicted, whatever the
 * status (those evictions happened).
 */
ember_status em_block_unroll_finish(em_block_unroll *u,
                                    em_block_put_result *res,
                                    ember_error *err);

/*
 * Frees u without storing anything (a consumer that stopped early, a
 * failed task) and lets its reservation go. *res (may be NULL;
 * overwritten) gets what u's reservations evicted, for the task's block
 * report (gave_up set, where EM_BLOCK_NOWHERE). NULL-safe.
 */
void em_block_unroll_cancel(em_block_unroll *u, em_block_put_result *res);

/* em_block_unroll_cancel(u, NULL): the evictions u's reservations made go
 * unreported (a location is a hint: the kernel may send a task where a
 * block no longer is, which computes it again). NULL-safe. */
void em_block_unroll_abort(em_block_unroll *u);

#endif /* EM_RUNTIME_BLOCK_MGR_H */
