/*
 * ember/ember.h — the driver API (libember): sessions, datasets, actions.
 *
 * In the spirit of Spark's SparkContext and RDD. A session runs on a master
 * URL: "local", "local[N]", "local[*]", "local[N,F]" (executor threads in
 * this process, the kernel embedded), "local-cluster[E,C,M]" (executor
 * processes), or "ember://host:port" (a running emberd). Datasets are
 * described lazily by their lineage; nothing runs until an action, which
 * sends the lineage (a plan, docs/plan-format.md) and the action to the
 * kernel and merges the per-partition results as Spark does (SEMANTICS.md
 * S1, S3–S5, S14–S16, S29).
 *
 * Records are ember/record.h encodings; a set of records travels as a
 * batch (ember/batch.h). Functions are named "plugin.symbol" with an
 * optional argument blob, resolved in the plugins the session loaded.
 *
 * Errors: every call returns an ember_status (or NULL for a dataset) and
 * fills err (nullable) with a message that says what and where.
 * Threads: a session may be used from several threads at once; datasets
 * are immutable once made, but for their name and storage level. Dataset
 * handles belong to their session and are freed with it.
 */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/batch.h"
#include "ember/kernel/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ember_session ember_session;
typedef struct ember_rdd ember_rdd;

typedef struct ember_session_opts {
    /* The master URL; NULL = ember.master from configuration, else
     * "local[*]". */
    const char *master;
    /* Application name (ember.app.name); NULL = "ember". */
    const char *app_name;
    /* Values set in code, "key=value", NULL-terminated (highest
     * precedence); nullable. */
    const char *const *conf;
    /* --conf flags, "key=value", NULL-terminated (above the defaults
     * file, below conf); nullable. */
    const char *const *conf_flags;
    /* The defaults file; NULL = $EMBER_CONF_DIR/ember-defaults.conf. */
    const char *properties_file;
    /* Plugin files to load besides the plugin directories; nullable,
     * NULL-terminated. */
    const char *const *plugins;
    /* Nullable: told, from an internal thread, each time a job of this
     * session has one more of its total result partitions (what a
     * progress bar shows). Must return quickly. */
    void (*progress)(void *ctx, uint64_t job_id, uint32_t done,
                     uint32_t total);
    void *progress_ctx;
} ember_session_opts;

/*
 * Opens a session: reads configuration (unknown or malformed keys are an
 * error naming file and line), loads plugins (the default plugin directory,
 * ember.plugins.path, then opts->plugins), and starts or connects to the
 * kernel for the master URL.
 */
EM_API ember_status ember_session_open(ember_session **out,
                                       const ember_session_opts *opts,
                                       ember_error *err);

/* Ends the session: running jobs are cancelled, executors stopped,
 * datasets freed. NULL-safe. */
EM_API void ember_session_close(ember_session *s);

/* Loads one more plugin file into the session. */
EM_API ember_status ember_session_load_plugin(ember_session *s,
                                              const char *path,
                                              ember_error *err);

/* ember.default.parallelism, else the number of executor slots. */
EM_API uint32_t ember_default_parallelism(const ember_session *s);

/* The effective value of a configuration key into out[0..cap);
 * EMBER_ENOTFOUND when unset. */
EM_API ember_status ember_session_conf(const ember_session *s,
                                       const char *key, char *out,
                                       size_t cap);

/* Jobs this session has run so far (take runs several, S4). */
EM_API uint64_t ember_session_jobs(const ember_session *s);

/* A function reference: "plugin.symbol" and its argument blob. */
typedef struct ember_fn {
    const char *name;
    const void *arg; /* nullable when arg_len is 0; copied */
    size_t arg_len;
} ember_fn;

/* ---- sources ---------------------------------------------------------- */

/* The records of `records` (a batch; copied) cut into `slices` partitions
 * as Spark slices a collection: slice i = [i*n/slices, (i+1)*n/slices). */
EM_API ember_rdd *ember_parallelize(ember_session *s,
                                    const ember_batch *records,
                                    uint32_t slices, ember_error *err);
/* Integers start, start+step, ... before end, one-element int records. */
EM_API ember_rdd *ember_range(ember_session *s, int64_t start, int64_t end,
                              int64_t step, uint32_t slices,
                              ember_error *err);
/* Lines of a file, a directory, a glob or a comma-separated list of these
 * (one string per record), split into at least min_partitions byte ranges
 * when the input is large enough (0 = min(default parallelism, 2)). A
 * missing input is an error now, not at the action. */
EM_API ember_rdd *ember_text_file(ember_session *s, const char *path,
                                  uint32_t min_partitions, ember_error *err);
/* A dataset with no partitions. */
EM_API ember_rdd *ember_empty(ember_session *s, ember_error *err);
/* The records a source component ("plugin.name", ember/source.h) reads:
 * its plan() runs now over arg (where the data is read: in this process,
 * or on emberd) and makes the splits, at least min_partitions when the
 * input allows (0 = min(default parallelism, 2)). */
EM_API ember_rdd *ember_source(ember_session *s, const char *component,
                               const void *arg, size_t arg_len,
                               uint32_t min_partitions, ember_error *err);

/* ---- narrow transformations ------------------------------------------- */

EM_API ember_rdd *ember_map(ember_rdd *r, ember_fn fn, ember_error *err);
EM_API ember_rdd *ember_flat_map(ember_rdd *r, ember_fn fn, ember_error *err);
EM_API ember_rdd *ember_filter(ember_rdd *r, ember_fn fn, ember_error *err);
EM_API ember_rdd *ember_map_partitions(ember_rdd *r, ember_fn fn,
                                       int preserves_partitioning,
                                       ember_error *err);
EM_API ember_rdd *ember_map_partitions_with_index(ember_rdd *r, ember_fn fn,
                                                  int preserves_partitioning,
                                                  ember_error *err);
EM_API ember_rdd *ember_glom(ember_rdd *r, ember_error *err);
EM_API ember_rdd *ember_key_by(ember_rdd *r, ember_fn fn, ember_error *err);
EM_API ember_rdd *ember_map_values(ember_rdd *r, ember_fn fn,
                                   ember_error *err);
EM_API ember_rdd *ember_flat_map_values(ember_rdd *r, ember_fn fn,
                                        ember_error *err);
EM_API ember_rdd *ember_keys(ember_rdd *r, ember_error *err);
EM_API ember_rdd *ember_values(ember_rdd *r, ember_error *err);
EM_API ember_rdd *ember_union(ember_rdd *const *rdds, uint32_t n,
                              ember_error *err);
/* Narrow coalesce (no shuffle): n >= 1; n >= the partition count keeps
 * it. */
EM_API ember_rdd *ember_coalesce(ember_rdd *r, uint32_t n, ember_error *err);
EM_API ember_rdd *ember_sample(ember_rdd *r, int with_replacement,
                               double fraction, uint64_t seed,
                               ember_error *err);
/* Pairs (a, b) of records at the same position; partition counts must be
 * equal (checked now), element counts per partition too (checked while
 * running: "Can only zip RDDs with same number of elements in each
 * partition"). */
EM_API ember_rdd *ember_zip(ember_rdd *a, ember_rdd *b, ember_error *err);
/* fn is called once per partition with one record: a tuple per input
 * holding that input's partition (its records as values). */
EM_API ember_rdd *ember_zip_partitions(ember_rdd *const *rdds, uint32_t n,
                                       ember_fn fn, ember_error *err);
/* (record, id): item i of partition k gets i*n + k; no job runs (S14). */
EM_API ember_rdd *ember_zip_with_unique_id(ember_rdd *r, ember_error *err);
/* (record, index) in partition order; runs a job to count partitions
 * 0..n-2 first (S14). */
EM_API ember_rdd *ember_zip_with_index(ember_rdd *r, ember_error *err);
/* Each partition through a shell command: records in as lines on stdin,
 * each output line a string record. */
EM_API ember_rdd *ember_pipe(ember_rdd *r, const char *command,
                             ember_error *err);

/* ---- key operations (shuffles) ------------------------------------------
 *
 * A pair dataset holds (key, value) records. These operations move
 * records between partitions through the shuffle manager
 * (docs/engine.md "Shuffles"). `p` chooses the partitioner of the result;
 * NULL (or kind EMBER_PART_DEFAULT) applies Spark's default-partitioner
 * rule (SEMANTICS S11): the parent partitioner with the most partitions
 * when it is eligible, else hash partitioning into ember.default.parallelism
 * partitions when that is set, else into the parents' largest count.
 * Output order inside a partition is not promised (S23) unless the
 * operation sorts.
 */
typedef enum ember_part_kind {
    EMBER_PART_DEFAULT = 0,  /* S11 */
    EMBER_PART_HASH = 1,     /* ember_hash64 of the key bytes */
    EMBER_PART_RANGE = 2,    /* by bounds (see ember_sort_by_key) */
    EMBER_PART_FUNCTION = 3  /* a map function: key -> int partition */
} ember_part_kind;

typedef struct ember_partitioner {
    ember_part_kind kind;
    uint32_t partitions;    /* 0: as the rule above (HASH, DEFAULT) */
    ember_fn fn;            /* FUNCTION */
    const void *bounds;     /* RANGE: a batch of encoded keys, ascending */
    size_t bounds_len;
    int descending;         /* RANGE */
} ember_partitioner;

/* Records placed by p (S13: a dataset already partitioned by p is
 * returned as it is, with no shuffle). */
EM_API ember_rdd *ember_partition_by(ember_rdd *r, const ember_partitioner *p,
                                     ember_error *err);
/* Merges the values of each key with fn (a reduce function), combining on
 * the map side first. */
EM_API ember_rdd *ember_reduce_by_key(ember_rdd *r, ember_fn fn,
                                      const ember_partitioner *p,
                                      ember_error *err);
/* As reduce_by_key, each key of each map partition starting from zero
 * (one encoded record; S2). */
EM_API ember_rdd *ember_fold_by_key(ember_rdd *r, const uint8_t *zero,
                                    size_t zero_len, ember_fn fn,
                                    const ember_partitioner *p,
                                    ember_error *err);
/* seq folds values into zero per key per map partition; comb merges the
 * results (S2). */
EM_API ember_rdd *ember_aggregate_by_key(ember_rdd *r, const uint8_t *zero,
                                         size_t zero_len, ember_fn seq,
                                         ember_fn comb,
                                         const ember_partitioner *p,
                                         ember_error *err);
/* create (a map function: value -> combiner), merge_value (reduce:
 * combiner, values), merge_combiners (reduce). */
EM_API ember_rdd *ember_combine_by_key(ember_rdd *r, ember_fn create,
                                       ember_fn merge_value,
                                       ember_fn merge_combiners,
                                       const ember_partitioner *p,
                                       ember_error *err);
/* (key, (v1, v2, ...)) per key; value order not promised. */
EM_API ember_rdd *ember_group_by_key(ember_rdd *r, const ember_partitioner *p,
                                     ember_error *err);
/* (fn(record), (records...)): key_by then group_by_key. */
EM_API ember_rdd *ember_group_by(ember_rdd *r, ember_fn fn,
                                 const ember_partitioner *p,
                                 ember_error *err);
/* Joins (S8): (k, (v, w)) for every pair of values of a key; the outer
 * joins put null for a missing side. */
EM_API ember_rdd *ember_join(ember_rdd *a, ember_rdd *b,
                             const ember_partitioner *p, ember_error *err);
EM_API ember_rdd *ember_left_outer_join(ember_rdd *a, ember_rdd *b,
                                        const ember_partitioner *p,
                                        ember_error *err);
EM_API ember_rdd *ember_right_outer_join(ember_rdd *a, ember_rdd *b,
                                         const ember_partitioner *p,
                                         ember_error *err);
EM_API ember_rdd *ember_full_outer_join(ember_rdd *a, ember_rdd *b,
                                        const ember_partitioner *p,
                                        ember_error *err);
/* (k, ((values of rdds[0]), (values of rdds[1]), ...)) for every key of
 * any input, 2 to 4 inputs (S9). */
EM_API ember_rdd *ember_cogroup(ember_rdd *const *rdds, uint32_t n,
                                const ember_partitioner *p, ember_error *err);
/* Pairs of a whose key b lacks (duplicates kept); records of a that b
 * lacks; one copy of each record both have (S10). NULL p: subtract and
 * subtract_by_key keep a's partition count. */
EM_API ember_rdd *ember_subtract_by_key(ember_rdd *a, ember_rdd *b,
                                        const ember_partitioner *p,
                                        ember_error *err);
EM_API ember_rdd *ember_subtract(ember_rdd *a, ember_rdd *b,
                                 const ember_partitioner *p,
                                 ember_error *err);
EM_API ember_rdd *ember_intersection(ember_rdd *a, ember_rdd *b,
                                     const ember_partitioner *p,
                                     ember_error *err);
/* One copy of each record (S10); n = 0 keeps the partition count. */
EM_API ember_rdd *ember_distinct(ember_rdd *r, uint32_t n, ember_error *err);
/* Every pair (x, y), x of a and y of b: a's partitions times b's. */
EM_API ember_rdd *ember_cartesian(ember_rdd *a, ember_rdd *b,
                                  ember_error *err);
/* n partitions through a shuffle, records dealt round robin (S7); also
 * Spark's coalesce(n, shuffle = true). */
EM_API ember_rdd *ember_repartition(ember_rdd *r, uint32_t n,
                                    ember_error *err);
/* Placed by p, each partition sorted by key. */
EM_API ember_rdd *ember_repartition_and_sort_within_partitions(
    ember_rdd *r, const ember_partitioner *p, int ascending,
    ember_error *err);
/* Sorted by key across partitions: runs the sampling job now to choose
 * range bounds (S6); n = 0 keeps the partition count; fewer partitions
 * when keys repeat. */
EM_API ember_rdd *ember_sort_by_key(ember_rdd *r, int ascending, uint32_t n,
                                    ember_error *err);
/* Records sorted by fn(record): key_by, sort_by_key, values. */
EM_API ember_rdd *ember_sort_by(ember_rdd *r, ember_fn fn, int ascending,
                                uint32_t n, ember_error *err);
/* A sample of each key's values (Spark's sampleByKey): fractions is a
 * batch of (key, fraction) pairs naming every key of r (a key without one
 * fails the job); Bernoulli sampling, or Poisson with replacement, seeded
 * per partition so a rerun keeps the same records. The result keeps r's
 * partitioner, else hash-partitions into r's partition count. */
EM_API ember_rdd *ember_sample_by_key(ember_rdd *r, int with_replacement,
                                      const ember_batch *fractions,
                                      uint64_t seed, ember_error *err);
/* A label shown in the lineage description; copied. */
EM_API void ember_rdd_set_name(ember_rdd *r, const char *name);
EM_API uint32_t ember_rdd_partitions(const ember_rdd *r);
EM_API uint64_t ember_rdd_id(const ember_rdd *r);
/* Spark's toDebugString: one line per dataset, "op [id] name [LEVEL]"
 * (LEVEL empty unless persisted); *out is malloc'd (free it). */
EM_API ember_status ember_rdd_describe(const ember_rdd *r, char **out,
                                       ember_error *err);

/* ---- persistence (docs/engine.md "Persistence") ------------------------ */

/*
 * Marks r to be kept at a storage level, as Spark's RDD.persist: level is
 * one of Spark's names, exactly — NONE, DISK_ONLY, DISK_ONLY_2,
 * DISK_ONLY_3, MEMORY_ONLY, MEMORY_ONLY_2, MEMORY_ONLY_SER,
 * MEMORY_ONLY_SER_2, MEMORY_AND_DISK, MEMORY_AND_DISK_2,
 * MEMORY_AND_DISK_SER, MEMORY_AND_DISK_SER_2, OFF_HEAP. Lazy: nothing
 * runs now; the first job that computes a partition of r afterwards keeps
 * it in its executor's block manager, and later jobs read it from there
 * instead of computing it again (a block that was evicted or lost is
 * computed again). Caching never changes a result, and never fails a job.
 * Blocks are freed by ember_unpersist, and when the session closes.
 * Errors: EMBER_EINVAL for a NULL r, an unknown level (the message lists
 * the names), or a level other than the one r is already persisted at
 * ("dataset 3 is already persisted at MEMORY_ONLY; a storage level cannot
 * be changed once set"); the same level again is fine, and NONE on a
 * dataset that is not persisted does nothing.
 * Threads: any thread; a job already submitted keeps the level it was
 * sent with.
 */
EM_API ember_status ember_persist(ember_rdd *r, const char *level,
                                  ember_error *err);

/* ember_persist(r, "MEMORY_ONLY", err), as Spark's RDD.cache. */
EM_API ember_status ember_cache(ember_rdd *r, ember_error *err);

/* r's storage level (a static string, one of the names above); "NONE"
 * when r is not persisted or is NULL. Any thread. */
EM_API const char *ember_rdd_storage_level(const ember_rdd *r);

/*
 * As Spark's RDD.unpersist: r is no longer persisted (its level is NONE
 * again, so it may be persisted anew at any level) and the executors drop
 * its cached blocks; later jobs compute it. Does not wait for the blocks
 * to go. A dataset that is not persisted: nothing happens. EMBER_EINVAL
 * for a NULL r; an error talking to emberd. Any thread.
 */
EM_API ember_status ember_unpersist(ember_rdd *r, ember_error *err);

/* ---- broadcast (docs/engine.md "Shared variables") --------------------- */

/* A read-only value shipped to each executor once (Spark's Broadcast). */
typedef struct ember_broadcast ember_broadcast;

/*
 * As Spark's SparkContext.broadcast: copies data[0..len) (opaque bytes,
 * often an encoded record or a table the function parses; data may be
 * NULL when len is 0) and hands it to the kernel, which keeps it in
 * chunks of ember.broadcast.blockSize. A task reads it with
 * host->broadcast_value(ember_broadcast_id(b), ...): the first use on an
 * executor fetches it (chunk by chunk, each checked against its
 * checksum), later uses on that executor read its copy. *out belongs to
 * the session (freed when it closes). Errors: EMBER_EINVAL for a NULL or
 * closed session, NULL out, or (ember://) a value over the 1 GiB a
 * message to emberd carries; EMBER_ENOMEM; an error talking to emberd.
 * Any thread.
 */
EM_API ember_status ember_broadcast_new(ember_session *s, const void *data,
                                        size_t len, ember_broadcast **out,
                                        ember_error *err);

/* b's id (1, 2, ... per session): what functions pass to
 * host->broadcast_value, e.g. through their argument. 0 for NULL. */
EM_API uint64_t ember_broadcast_id(const ember_broadcast *b);

/*
 * The value on the driver: *data (borrowed, valid until b is destroyed or
 * the session closes) and *len. EMBER_EINVAL for a NULL b and after
 * ember_broadcast_destroy ("Attempted to use broadcast 3 after it was
 * destroyed"). Any thread.
 */
EM_API ember_status ember_broadcast_value(const ember_broadcast *b,
                                          const uint8_t **data, size_t *len,
                                          ember_error *err);

/*
 * As Spark's Broadcast.unpersist: the executors drop their copies; the
 * next use in a task fetches the value again. The driver keeps it. Jobs
 * submitted after the call see its effect. EMBER_EINVAL after destroy;
 * an error talking to emberd. Any thread.
 */
EM_API ember_status ember_broadcast_unpersist(ember_broadcast *b,
                                              ember_error *err);

/*
 * As Spark's Broadcast.destroy: the value is dropped everywhere (driver,
 * kernel, executors). Later ember_broadcast_value calls, and later uses
 * in tasks (which then fail their job), are EMBER_EINVAL "Attempted to
 * use broadcast 3 after it was destroyed". b stays valid as a handle
 * until the session closes; destroying twice is fine. Any thread.
 */
EM_API ember_status ember_broadcast_destroy(ember_broadcast *b,
                                            ember_error *err);

/* ---- accumulators (docs/engine.md "Shared variables") ------------------ */

/* A value tasks add to and the driver reads (Spark's AccumulatorV2). */
typedef struct ember_accumulator ember_accumulator;

/*
 * A new accumulator of s, as Spark's SparkContext.longAccumulator /
 * doubleAccumulator / register. kind is "int64" (adds wrap around, as
 * Spark's LongAccumulator), "double", or "PLUGIN.FN" naming a REDUCE
 * function (a plugin the session loaded) that merges two values (encoded
 * records) into one; name may be NULL (unnamed). Named accumulators are
 * written to the application's state (the accumulators table) at each
 * job's end. Values start at 0 / 0.0 / nothing. Every job the session
 * submits afterwards declares it, and its tasks add to it through
 * host->accum_add_i64 / accum_add_double / accum_add with
 * ember_accumulator_id(*out) (S17: an action's updates count once per
 * partition, however often a task is retried or speculated; a
 * transformation's count each time its stage runs). *out belongs to the
 * session (freed when it closes). EMBER_EINVAL for a NULL session, kind
 * or out, an unknown kind or a function that is not REDUCE-shaped, a name
 * of 0 or over 1024 bytes. Any thread.
 */
EM_API ember_status ember_accumulator_new(ember_session *s, const char *name,
                                          const char *kind,
                                          ember_accumulator **out,
                                          ember_error *err);

/* a's id (1, 2, ... per session): what functions pass to host->accum_add*
 * (e.g. through their argument). 0 for NULL. */
EM_API uint64_t ember_accumulator_id(const ember_accumulator *a);

/*
 * The driver's view of an "int64" / "double" accumulator: its value after
 * the last job of the session that ended (Spark: read on the driver after
 * the action). EMBER_EINVAL for NULL or an accumulator of another kind.
 * Any thread.
 */
EM_API ember_status ember_accumulator_int64(const ember_accumulator *a,
                                            int64_t *v, ember_error *err);
EM_API ember_status ember_accumulator_double(const ember_accumulator *a,
                                             double *v, ember_error *err);

/*
 * Any kind's value as an encoded record (ember/record.h) in *rec
 * (malloc'd, free it) and *len: int64 and double as a record of that one
 * number; a user-defined accumulator as its merged record, or length 0
 * while nothing was added. EMBER_EINVAL for NULL arguments, EMBER_ENOMEM.
 * Any thread.
 */
EM_API ember_status ember_accumulator_value(const ember_accumulator *a,
                                            uint8_t **rec, size_t *len,
                                            ember_error *err);

/* ---- checkpoints (docs/engine.md "Checkpoints") ------------------------ */

/*
 * As Spark's SparkContext.setCheckpointDir: dir (and its missing parents)
 * is created; checkpoints then go to DIR/<a subdirectory unique to this
 * call>/rdd-<id>/. The executors must see the same path (one host, or a
 * shared file system). EMBER_EINVAL naming dir and the reason when it
 * cannot be created or written. Any thread. Without a call, the first
 * ember_checkpoint uses ember.checkpoint.dir when it is set.
 */
EM_API ember_status ember_set_checkpoint_dir(ember_session *s,
                                             const char *dir,
                                             ember_error *err);

/*
 * As Spark's RDD.checkpoint (SEMANTICS S22): marks r. After the first job
 * that uses r completes, a job of its own writes every partition of r to
 * files (computing r again, unless it is persisted and its blocks are
 * there); from then on r reads its partitions from those files, with the
 * same partition count and partitioner, and its lineage ends there (its
 * ancestors are no longer computed for it). Only the nearest marked
 * dataset on each path up a job's lineage is checkpointed by that job.
 * A checkpoint job that fails makes the action fail with its message; r
 * stays marked and the next job tries again. Marking a marked or
 * checkpointed dataset does nothing. EMBER_EINVAL "checkpoint directory
 * has not been set (ember_set_checkpoint_dir)" without a directory.
 * Any thread.
 */
EM_API ember_status ember_checkpoint(ember_rdd *r, ember_error *err);

/*
 * As Spark's RDD.localCheckpoint: persists r at MEMORY_AND_DISK (or, when
 * it is persisted, at its level made to use disk: MEMORY_ONLY becomes
 * MEMORY_AND_DISK, ...; later ember_persist calls may change the level the
 * same way, the one exception to the level rule) and marks it; after the
 * first job that uses it, every partition is put in a block manager and
 * r's lineage is truncated as with ember_checkpoint. Faster but not fault
 * tolerant: a partition whose block is lost (with its executor, or by
 * ember_unpersist) makes later jobs fail with "Checkpoint block rdd_3_0
 * not found! ...". Any thread.
 */
EM_API ember_status ember_local_checkpoint(ember_rdd *r, ember_error *err);

/* 1 once r's checkpoint (either kind) is written and its lineage
 * truncated, else 0 (also for NULL). Any thread. */
EM_API int ember_rdd_is_checkpointed(const ember_rdd *r);

/* ---- actions ---------------------------------------------------------- */

/* Records a driver owns: a batch in malloc'd memory. */
typedef struct ember_records {
    uint8_t *data;
    size_t len;
    uint64_t count;
} ember_records;

/* Frees r's memory and zeroes it. NULL-safe. */
EM_API void ember_records_free(ember_records *r);

EM_API ember_status ember_collect(ember_rdd *r, ember_records *out,
                                  ember_error *err);
EM_API ember_status ember_count(ember_rdd *r, uint64_t *out,
                                ember_error *err);
/* EMBER_ENOTFOUND "empty collection" on an empty dataset (S3). */
EM_API ember_status ember_first(ember_rdd *r, ember_records *out,
                                ember_error *err);
/* The first n records, scanning partitions incrementally (S4). */
EM_API ember_status ember_take(ember_rdd *r, uint64_t n, ember_records *out,
                               ember_error *err);
/* The n smallest (take_ordered) / largest (top) records in typed order,
 * sorted (S5). */
EM_API ember_status ember_take_ordered(ember_rdd *r, uint64_t n,
                                       ember_records *out, ember_error *err);
EM_API ember_status ember_top(ember_rdd *r, uint64_t n, ember_records *out,
                              ember_error *err);
EM_API ember_status ember_max(ember_rdd *r, ember_records *out,
                              ember_error *err);
EM_API ember_status ember_min(ember_rdd *r, ember_records *out,
                              ember_error *err);
/* One record; EMBER_ENOTFOUND "empty collection" when empty (S3). */
EM_API ember_status ember_reduce(ember_rdd *r, ember_fn fn,
                                 ember_records *out, ember_error *err);
/* zero (one encoded record) applied once per partition and once on the
 * driver, results merged in completion order (S1). */
EM_API ember_status ember_fold(ember_rdd *r, const uint8_t *zero,
                               size_t zero_len, ember_fn fn,
                               ember_records *out, ember_error *err);
EM_API ember_status ember_aggregate(ember_rdd *r, const uint8_t *zero,
                                    size_t zero_len, ember_fn seq,
                                    ember_fn comb, ember_records *out,
                                    ember_error *err);
/* As Spark's treeReduce / treeAggregate (depth >= 1): the same result as
 * reduce / aggregate for associative, commutative functions; zero is
 * applied as Spark applies it (S1). */
EM_API ember_status ember_tree_reduce(ember_rdd *r, ember_fn fn,
                                      uint32_t depth, ember_records *out,
                                      ember_error *err);
EM_API ember_status ember_tree_aggregate(ember_rdd *r, const uint8_t *zero,
                                         size_t zero_len, ember_fn seq,
                                         ember_fn comb, uint32_t depth,
                                         ember_records *out,
                                         ember_error *err);
/* fn (a map function) runs over every batch for its effects. */
EM_API ember_status ember_foreach(ember_rdd *r, ember_fn fn,
                                  ember_error *err);
EM_API ember_status ember_foreach_partition(ember_rdd *r, ember_fn fn,
                                            ember_error *err);
EM_API ember_status ember_is_empty(ember_rdd *r, int *out, ember_error *err);
/* (record as a value, int count) per distinct record, any order. */
EM_API ember_status ember_count_by_value(ember_rdd *r, ember_records *out,
                                         ember_error *err);

/* Spark's StatCounter over one-number records. */
typedef struct ember_stats {
    uint64_t count;
    double mean, sum, max, min;
    double variance, stdev;               /* population */
    double sample_variance, sample_stdev; /* n - 1 */
} ember_stats;
EM_API ember_status ember_stats_of(ember_rdd *r, ember_stats *out,
                                   ember_error *err);

/* One part-NNNNN file per partition under dir (which must not exist),
 * each committed once through the kernel's commit arbiter; _SUCCESS at
 * the end. */
EM_API ember_status ember_save_as_text_file(ember_rdd *r, const char *dir,
                                            ember_error *err);

/* Writes every partition through a sink component ("plugin.name",
 * ember/sink.h) with arg: each attempt commits only if the kernel's
 * commit arbiter allows it. What a finished job leaves (markers, layout)
 * is the sink's to say. */
EM_API ember_status ember_save(ember_rdd *r, const char *sink,
                               const void *arg, size_t arg_len,
                               ember_error *err);

/* ---- actions on pair datasets ---- */

/* (key, int count) per distinct key, sorted by key (S27). */
EM_API ember_status ember_count_by_key(ember_rdd *r, ember_records *out,
                                       ember_error *err);
/* One (key, value) per key, the last pair seen winning (S27); sorted by
 * key. */
EM_API ember_status ember_collect_as_map(ember_rdd *r, ember_records *out,
                                         ember_error *err);
/* (key, value) per key, values merged with fn in each partition and then
 * on the driver, with no shuffle (S27); sorted by key. */
EM_API ember_status ember_reduce_by_key_locally(ember_rdd *r, ember_fn fn,
                                                ember_records *out,
                                                ember_error *err);
/* The values of key (one encoded key element): one partition's job when
 * r has a hash or range partitioner, else every partition's (S28). */
EM_API ember_status ember_lookup(ember_rdd *r, const uint8_t *key,
                                 size_t key_len, ember_records *out,
                                 ember_error *err);

/* ---- plan files (docs/plan-format.md, "Plan files") -------------------- */

/* Called for each output line of a plan file's actions, in action order.
 * json_line is one JSON value without a newline, valid during the call. */
typedef void (*ember_plan_emit_fn)(void *ctx, const char *json_line);

/*
 * Runs a plan file in session s: builds its datasets with this API, loads
 * nothing (plugins are the session's; see ember_plan_plugins), runs its
 * actions in order and emits their results as JSON lines through emit
 * (ctx is passed back). json[0..len) is the file's text. origin is the
 * file's path: it names the file in messages ("job.json: dataset 3 (map):
 * fns[0]: unknown function 'foo.bar'") and relative paths in the file
 * (text_file, save_as_text_file) resolve against its directory; NULL means
 * "plan" in the current directory. The whole file is checked before any
 * action runs.
 * Errors: EMBER_EINVAL for a bad file; a dataset the API refuses (a
 * missing input, zips of unequal partition counts) with that call's
 * status; a failing action with its status and "job.json: action 2
 * (collect of dataset 5): <the task's message>" (actions count from 0).
 * Lines of the actions before the failing one have been emitted.
 * A file's "accumulators" are made in s before its datasets (ids as the
 * file gives them: EMBER_EEXIST when s has one already); after the last
 * action each one's value is written to stderr as "accumulator NAME =
 * VALUE" (NAME its name, else its id; VALUE as JSON, null while a
 * user-defined one has none).
 * Threads: as the session; emit runs on the calling thread.
 */
EM_API ember_status ember_plan_run(ember_session *s, const char *json,
                                   size_t len, const char *origin,
                                   ember_plan_emit_fn emit, void *ctx,
                                   ember_error *err);

/*
 * The plugin files a plan file names in "plugins", relative ones resolved
 * against the directory of origin (as ember_plan_run), so that a tool can
 * pass them to ember_session_open. *paths receives a NULL-terminated
 * malloc'd array of malloc'd strings (free each, then the array; NULL
 * when there are none) and *count their number. EMBER_EINVAL with the
 * file named for bad JSON or a "plugins" that is not an array of
 * non-empty strings; EMBER_ENOMEM. Any thread.
 */
EM_API ember_status ember_plan_plugins(const char *json, size_t len,
                                       const char *origin, char ***paths,
                                       size_t *count, ember_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_EMBER_H */
