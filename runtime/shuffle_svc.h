/*
 * runtime/shuffle_svc.h — an executor's shuffle service: its shuffle
 * manager plugin (ember.shuffle.manager), the codec of its blocks
 * (ember.shuffle.compress, ember.io.compression.codec), its directory
 * under ember.local.dir, and the block server other executors fetch its
 * map outputs from (runtime/fetch.h).
 *
 * Also the shuffle part of a STAGE description (em_stage_io): which
 * shuffle a map stage writes and who reads it, and for every shuffle a
 * stage reads, which executor holds each map output and where it serves.
 *
 * Threads: a service is shared by the executor's task threads; every
 * function here may be called from any of them.
 */
#ifndef EM_RUNTIME_SHUFFLE_SVC_H
#define EM_RUNTIME_SHUFFLE_SVC_H

#include <stdint.h>

#include <jansson.h>

#include "ember/kernel/conf.h"
#include "ember/kernel/registry.h"
#include "ember/shuffle.h"
#include "runtime/block_mgr.h"

typedef struct em_shuffle_svc em_shuffle_svc;

/*
 * Opens the service of executor `executor_id`: finds "<manager>.manager"
 * in registry and the codec, makes the directory
 * <first of ember.local.dir>/ember-shuffle-<pid>-<id>, opens the manager
 * there and, unless serve_url is NULL, starts the block server listening
 * on serve_url ("ipc://..." or "tcp://host:0"; the bound address is what
 * em_shuffle_svc_endpoint reports). A missing plugin is EMBER_ENOTFOUND
 * naming the setting. conf may be NULL (defaults).
 */
ember_status em_shuffle_svc_open(em_shuffle_svc **out,
                                 const em_registry *registry,
                                 const em_conf *conf, const char *executor_id,
                                 const char *serve_url, ember_error *err);

/* Stops the server, closes the manager and removes the directory with
 * everything in it. NULL-safe. */
void em_shuffle_svc_close(em_shuffle_svc *s);

/* The service's directory (spills of reduce-side sorts go there too). */
const char *em_shuffle_svc_dir(const em_shuffle_svc *s);

/* Where other executors fetch blocks ("" when not serving). */
const char *em_shuffle_svc_endpoint(const em_shuffle_svc *s);

/* The manager and its state, for writers and local reads. */
const ember_shuffle_vtable *em_shuffle_svc_vt(const em_shuffle_svc *s);
void *em_shuffle_svc_state(const em_shuffle_svc *s);

/* Settings the map and reduce sides need. */
uint64_t em_shuffle_svc_memory(const em_shuffle_svc *s);
uint64_t em_shuffle_svc_max_in_flight(const em_shuffle_svc *s);
int64_t em_shuffle_svc_timeout_ms(const em_shuffle_svc *s);

/* Serves the cached blocks of m (borrowed; NULL stops) through the block
 * server too, for other executors' replicas (runtime/fetch.h). Call before
 * m goes; nothing when not serving. */
void em_shuffle_svc_serve_blocks(em_shuffle_svc *s, em_block_mgr *m);

/* Deletes the shuffle's files (REMOVE_SHUFFLES); errors are logged. */
void em_shuffle_svc_remove(em_shuffle_svc *s, uint64_t shuffle_id);

/* ---- a stage's shuffles ---- */

/* An executor holding map outputs a stage reads. */
typedef struct em_stage_exec {
    uint32_t no;    /* the kernel's executor number */
    char *id;
    char *endpoint; /* its block server ("" if none) */
} em_stage_exec;

/* A shuffle a stage reads: dataset `dataset` reads it through parent edge
 * `edge`; loc[m] is the executor number holding map output m (0: none). */
typedef struct em_stage_input {
    uint64_t dataset;
    uint32_t edge;
    uint64_t shuffle_id;
    uint32_t num_maps;
    uint32_t *loc;
} em_stage_input;

typedef struct em_stage_io {
    /* map stages: the shuffle written, and the dataset (index in the
     * lineage) and parent edge that read it */
    int writes;
    uint64_t out_shuffle;
    uint32_t out_partitions;
    uint64_t reader_dataset;
    uint32_t reader_edge;
    em_stage_input *inputs;
    uint32_t ninputs;
    em_stage_exec *execs;
    uint32_t nexecs;
} em_stage_io;

/*
 * Reads the STAGE document's "shuffle", "inputs" and "executors" into io
 * (zeroed first; absent members are fine). EMBER_EINVAL with err naming
 * the member when one is malformed. Free with em_stage_io_free.
 */
ember_status em_stage_io_parse(em_stage_io *io, const json_t *doc,
                               ember_error *err);
void em_stage_io_free(em_stage_io *io);

/* The input read by (dataset, edge), or NULL. */
const em_stage_input *em_stage_io_input(const em_stage_io *io,
                                        uint64_t dataset, uint32_t edge);
/* The executor numbered no, or NULL. */
const em_stage_exec *em_stage_io_exec(const em_stage_io *io, uint32_t no);

#endif /* EM_RUNTIME_SHUFFLE_SVC_H */
