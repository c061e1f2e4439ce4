/*
 * client/client_internal.h — what the driver API's files share: the
 * session, dataset nodes, and running one job.
 */
#ifndef EM_CLIENT_INTERNAL_H
#define EM_CLIENT_INTERNAL_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>

#include "ember/ember.h"
#include "ember/kernel/conf.h"
#include "ember/kernel/registry.h"
#include "ember/kernel/server.h"

struct ember_rdd {
    ember_session *s;
    uint64_t id;
    json_t *node;       /* the dataset's plan object (docs/plan-format.md) */
    uint32_t partitions;
    json_t *partitioner; /* the partitioner placing its records by key
                            (S13), a reference, or NULL */
    ember_rdd *parents[64];
    uint32_t nparents;
    ember_rdd *next;    /* the session's list of datasets */
    /* checkpoint.c, under s->mu: how r is marked (EM_CKPT_*, 0: not)
     * and how far its checkpoint got */
    uint8_t checkpoint;
    uint8_t checkpoint_state; /* EM_CKPT_PENDING, _WRITING, _DONE */
};

typedef struct em_remote em_remote;

struct ember_session {
    em_conf *conf;
    em_registry *registry;
    em_server *server;  /* the embedded kernel, or NULL */
    em_remote *remote;  /* the connection to emberd (ember://), or NULL */
    uint64_t app_id;
    char master[256];
    char state_dir[PATH_MAX];
    uint32_t slots;
    uint32_t default_parallelism;
    pthread_mutex_t mu; /* datasets list and ids */
    uint64_t next_id;
    ember_rdd *rdds;
    _Atomic uint64_t jobs; /* jobs submitted */
    void (*progress)(void *, uint64_t, uint32_t, uint32_t); /* nullable */
    void *progress_ctx;
    /* broadcast.c, under mu: the session's broadcasts, the last id */
    ember_broadcast *broadcasts;
    uint64_t last_broadcast;
    /* accum.c, under mu: the session's accumulators, the last id */
    ember_accumulator *accums;
    uint64_t last_accum;
    /* DIR/<unique subdirectory> of ember_set_checkpoint_dir, "" until
     * set (checkpoint.c, under mu) */
    char checkpoint_dir[PATH_MAX];
};

/* ---- datasets (dataset.c) ---- */

/* A new dataset: takes node (a JSON object with "op" and whatever the op
 * needs; "id" and "parents" are filled here). NULL with err set on
 * failure (node is released either way). */
ember_rdd *em_client_rdd(ember_session *s, json_t *node, uint32_t partitions,
                         ember_rdd *const *parents, uint32_t nparents,
                         ember_error *err);

/* The plan document (NUL-terminated, malloc'd) holding r and its
 * ancestors. */
char *em_client_plan(const ember_rdd *r, size_t *len);

/* {"name": fn.name, "arg": base64} (or the bare name), or NULL. */
json_t *em_client_fn_json(ember_fn fn);

/* Base64 text of data as a JSON string, or NULL. */
json_t *em_client_b64(const void *data, size_t len);

/* A blob for a plan's args: one base64 string, or a list of base64
 * strings when it is longer than a plan string may be (64 KiB); NULL when
 * out of memory. */
json_t *em_client_blob(const void *data, size_t len);

/* ---- key operations (pairs.c) ---- */

/* The count_by_key dataset of r (default partitioner, S11). */
ember_rdd *em_client_keyed_count(ember_rdd *r, ember_error *err);
/* The sort_by_key dataset of r under range partitioner p. */
ember_rdd *em_client_keyed_sort(ember_rdd *r, const ember_partitioner *p,
                                int ascending, ember_error *err);

/* ---- checkpoints (checkpoint.c) ---- */

/* ember_rdd.checkpoint and .checkpoint_state. */
#define EM_CKPT_RELIABLE 1 /* ember_checkpoint */
#define EM_CKPT_LOCAL 2    /* ember_local_checkpoint */
#define EM_CKPT_PENDING 0
#define EM_CKPT_WRITING 1
#define EM_CKPT_DONE 2

/*
 * Called by em_client_run after a job over r succeeded (SEMANTICS S22):
 * materialises the nearest marked, not yet checkpointed datasets on each
 * path up r's lineage, each by a job of its own, then truncates their
 * lineage. Does nothing inside such a job. An error names the dataset;
 * the dataset stays marked, so a later job tries again. Any thread.
 */
ember_status em_client_checkpoint_after(ember_rdd *r, ember_error *err);

/* The level (a static name) a locally checkpointed dataset is kept at
 * when level is asked for: level made to use disk, as Spark's
 * LocalRDDCheckpointData.transformStorageLevel (S21). */
const char *em_client_disk_level(const char *level);

/* ---- accumulators (accum.c) ---- */

/*
 * A new accumulator of s with id (0: the next free one; a plan file's ids
 * are its own), as ember_accumulator_new. EMBER_EEXIST when s has id.
 */
ember_status em_client_accum_declare(ember_session *s, uint64_t id,
                                     const char *name, const char *kind,
                                     ember_accumulator **out,
                                     ember_error *err);

/* The plan's "accumulators" array for every accumulator of s (a new
 * reference), or NULL when s has none. The caller holds s->mu. */
json_t *em_client_accums_json(ember_session *s);

/* Sets the driver's view from the values the kernel sent at a job's end
 * (runtime/accum_wire.h); a malformed blob is logged and ignored. Any
 * thread; takes s->mu. */
void em_client_accums_update(ember_session *s, const uint8_t *values,
                             size_t len);

/* Frees the session's accumulators (ember_session_close). */
void em_client_accums_free(ember_session *s);

/* ---- jobs (job.c) ---- */

/* One partition's result, and the order results came in. */
typedef struct em_part_result {
    uint32_t partition;
    uint8_t *data; /* a batch */
    size_t len;
    int have;
} em_part_result;

typedef struct em_job_result {
    em_part_result *parts; /* one per requested partition, in the order
                              requested */
    uint32_t nparts;
    uint32_t *order;       /* indexes into parts, in completion order */
    uint32_t ndone;
} em_job_result;

/*
 * Runs action (a JSON object text; NULL = collect) over partitions parts
 * (NULL = all) of r, and waits. Results are kept in *out (free with
 * em_job_result_free) even on failure.
 */
ember_status em_client_run(ember_rdd *r, const uint32_t *parts,
                           uint32_t nparts, const char *action,
                           em_job_result *out, ember_error *err);
void em_job_result_free(em_job_result *res);

/* Runs action (a JSON object text) over every partition of r and appends
 * all results, in partition order, to out (zeroed first; freed on
 * failure). */
ember_status em_client_run_all(ember_rdd *r, const char *action,
                               ember_records *out, ember_error *err);

/* ---- where jobs run: the embedded kernel or emberd (remote.c) ---- */

/*
 * Submits a job to the session's kernel — embedded (em_kernel_submit) or
 * the emberd of an ember:// master — with em_kernel_submit's contract: on
 * EMBER_OK *job_id is set and spec->listener's end is called exactly once
 * (remotely, on the connection's thread, in the order the service sent
 * them; EMBER_EIO with a message when the service goes away). Any thread.
 */
ember_status em_client_submit(ember_session *s, const em_job_spec *spec,
                              uint64_t *job_id, ember_error *err);

/*
 * Runs the plan() of source component `source` over arg where the data
 * is read: in this process for an embedded kernel, on the service for
 * emberd. Appends the splits batch to *splits and adds their number to
 * *count. Any thread.
 */
ember_status em_client_splits(ember_session *s, const char *source,
                              const uint8_t *arg, size_t arg_len,
                              uint32_t min_partitions, ember_buf *splits,
                              uint64_t *count, ember_error *err);

/*
 * Connects s to the emberd of s->master ("ember://HOST:PORT"): dials,
 * opens an application (HELLO; s->app_id, s->slots and, unless
 * ember.default.parallelism is set, s->default_parallelism come from the
 * service), then ships every plugin file in `plugins` (already loaded in
 * s->registry). Sets s->remote. "cannot connect to emberd at ..." when
 * nothing answers within 10 s.
 */
ember_status em_remote_open(ember_session *s, const char *const *plugins,
                            ember_error *err);

/* Asks the service to drop the blocks of the session's dataset
 * (UNPERSIST); waits for its OK. */
ember_status em_remote_unpersist(ember_session *s, uint64_t dataset,
                                 ember_error *err);

/* Hands the service broadcast id's value (BROADCAST); waits for its OK.
 * EMBER_EINVAL for a value over EM_CMSG_BODY_MAX. */
ember_status em_remote_broadcast(ember_session *s, uint64_t id,
                                 const void *data, size_t len,
                                 ember_error *err);

/* Unpersists (destroy 0) or destroys broadcast id on the service
 * (BROADCAST_DROP); waits for its OK. */
ember_status em_remote_broadcast_drop(ember_session *s, uint64_t id,
                                      int destroy, ember_error *err);

/* Frees the session's broadcast handles (ember_session_close). */
void em_client_broadcasts_free(ember_session *s);

/* Ships the plugin file at path, loaded in s->registry, to the service
 * (only if it lacks that file's contents). */
ember_status em_remote_ship_plugin(ember_session *s, const char *path,
                                   ember_error *err);

/* Closes the connection (the service closes the application and cancels
 * its jobs); jobs still waited for end with EMBER_EIO. NULL-safe. */
void em_remote_close(em_remote *r);

/* Appends every record of the batch data[0..len) to out; counts them. */
ember_status em_records_append(ember_records *out, const uint8_t *data,
                               size_t len);

/* Removes path and everything under it (no symlink is followed);
 * missing is fine. */
void em_client_rmtree(const char *path);

#endif /* EM_CLIENT_INTERNAL_H */
