/*
 * dag/dag_internal.h — the DAG scheduler's own structures, shared by its
 * files (not a public contract):
 *   dag_scheduler.c  applications, stages, jobs, submission, task results
 *   stage_desc.c     what executors are told about a stage: the STAGE
 *                    message's plan and the tasks' preferred locations
 *   recovery.c       lost map output: fetch failures, executor loss,
 *                    indeterminate rollback, resubmission
 * Everything here runs on the kernel's loop thread.
 */
#ifndef EMBER_KERNEL_DAG_DAG_INTERNAL_H
#define EMBER_KERNEL_DAG_DAG_INTERNAL_H

#include <jansson.h>

#include "accum/accum.h"
#include "dag/block_locs.h"
#include "dag/dag_scheduler.h"
#include "util/map.h"

enum { ST_IDLE = 0, ST_WAITING, ST_RUNNING, ST_FAILED };

struct em_plan {
    em_lineage *l;
    char *json; /* canonical encoding, for STAGE messages */
    size_t json_len;
    uint32_t refs;
};

typedef struct shuffle shuffle;
typedef struct stage stage;
typedef struct job job;
typedef struct app app;

struct shuffle {
    uint64_t id;
    app *app;
    uint64_t key; /* (reading dataset id, edge) within the app */
    uint32_t num_maps, num_reduces;
    uint32_t *loc;   /* executor number per map, 0 = missing */
    uint32_t available;
    stage *map_stage;
};

struct stage {
    uint64_t id;
    app *app;
    int is_map, state, dead;
    em_plan *plan;
    uint32_t node;  /* index of the stage's last dataset in plan */
    uint32_t nparts;
    shuffle *out;   /* map stages: the shuffle written */
    stage **parents;
    uint32_t nparents;
    shuffle **inputs; /* shuffles read, in edge order */
    uint32_t ninputs;
    uint32_t next_attempt, failed_attempts;
    job **jobs;     /* active jobs that need this stage */
    uint32_t njobs, cap_jobs;
    job *result_job;
    em_taskset *ts;       /* the newest attempt's task set, or NULL */
    uint32_t ts_attempt;
    em_taskset **sets;    /* every task set still alive (older attempts
                             too): the stage is freed after the last */
    uint32_t nsets, cap_sets;
    uint32_t valid_attempt; /* results of older attempts are ignored */
    uint64_t mark;        /* visit stamp for graph walks */
    uint8_t *pending;
    uint32_t npending;
    char name[96];
    stage *prev, *next;   /* all stages */
    stage *wprev, *wnext; /* the waiting list, when WAITING */
};

struct job {
    uint64_t id;
    app *app;
    stage *final;
    uint32_t nparts;
    uint32_t *parts; /* sorted */
    uint8_t *done;
    uint32_t ndone;
    uint64_t result_bytes;
    stage **stages;
    uint32_t nstages;
    char *pool, *group, *description;
    char *action; /* JSON object for result tasks, or NULL */
    em_job_listener listener;
};

struct app {
    uint64_t id;
    char *name;
    em_u64map fingerprints; /* dataset id -> (void *)(fingerprint | 1) */
    em_u64map persisted;    /* dataset id -> its storage level's static
                               name (em_dag_persist_tag): a plan of the
                               app gave it a level (executors may hold
                               its blocks) */
    em_u64map shuffles;     /* key -> shuffle */
    em_accums *accums;      /* its plans' accumulators, or NULL */
};

struct em_dag {
    em_loop *loop;
    em_pool_tree *pools;
    em_store *store;
    em_tsched *ts;
    em_dag_conf conf;
    em_u64map apps, jobs, shuffles_by_id;
    stage *stages;
    stage *waiting; /* stages in ST_WAITING */
    stage **scratch; /* submit_waiting's snapshot; stage_free clears */
    uint32_t nscratch;
    uint64_t epoch; /* for stage marks */
    uint64_t next_stage_id, next_shuffle_id;
    uint64_t resubmit_timer;
    em_dag_stats stats;
    em_block_locs *blocks; /* where cached blocks live (block_locs.h) */
    const em_registry *registry; /* accumulators' merge functions */
};

/* ---- dag_scheduler.c ---- */

/* Moves s to state st, keeping the waiting list in step. */
void em_dag_set_state(em_dag *d, stage *s, int st);
/* Stops every live task set of s (running attempts get a KILL). */
void em_dag_cancel_sets(em_dag *d, stage *s, const char *why);
/* Ends j (status, message to its listener, store), stops stages no other
 * job needs and frees j. */
void em_dag_end_job(em_dag *d, job *j, ember_status st, const char *msg);
/* Fails every job that needs s with msg. */
void em_dag_abort_stage(em_dag *d, stage *s, const char *msg);
/* Spark's submitStage: parents first, then s (those without output). */
void em_dag_submit_stage(em_dag *d, stage *root);
/* Starts waiting stages whose parents are ready; resubmits idle parents
 * that lost output. */
void em_dag_submit_waiting(em_dag *d);
/* The earliest active job of a stage, or NULL. */
job *em_dag_first_job(const stage *s);
/* Non-zero when every map output of sh is registered. */
int em_dag_shuffle_ready(const shuffle *sh);

/* ---- stage_desc.c ---- */

/* The STAGE message payload for attempt of s (JSON: stage, kind, dataset,
 * the shuffle written and the dataset and edge that read it, the shuffles
 * read with the executor holding each map output, those executors' ids
 * and block endpoints, and the canonical plan); malloc'd, *len set; NULL
 * when out of memory. */
char *em_dag_stage_plan(em_dag *d, const stage *s, uint32_t attempt,
                        size_t *len);

/* Preferred locations of a stage's tasks, as Spark's getPreferredLocs:
 * walking up from the stage's dataset through one-to-one narrow
 * dependencies, the first dataset with a cached block of the partition
 * (the executors holding it, and their hosts) or with "locations" in its
 * args. */
typedef struct em_dag_prefs {
    json_t *doc;
    em_task_pref **per; /* per task, or NULL when none */
    uint32_t *count;
} em_dag_prefs;

/* Fills out for the n tasks of s for partitions parts (all NULL when
 * nothing is known); the executor strings are d's live executors', valid
 * until the loop turn ends. Release with em_dag_prefs_free. */
void em_dag_stage_prefs(em_dag *d, const stage *s, const uint32_t *parts,
                        uint32_t n, em_dag_prefs *out);
void em_dag_prefs_free(em_dag_prefs *p, uint32_t n);

/* ---- dag_replicate.c (copies of blocks at _2/_3 levels) ---- */

/* What app->persisted keeps for a dataset a plan persists at `storage`:
 * the level's static Spark name (never NULL; "NONE" for an unknown one,
 * which plans cannot carry). */
void *em_dag_persist_tag(const char *storage);

/* A task on source stored block (a, dataset, partition), already in
 * d->blocks: when the dataset's level keeps r > 1 copies and fewer than r
 * executors hold it, asks as many other live executors (chosen by
 * partition, round robin over those without it, by executor number) to
 * copy it from source's block server (REPLICATE). With too few executors,
 * as many as there are (logged, as Spark does). */
void em_dag_replicate(em_dag *d, const app *a, uint64_t dataset,
                      uint32_t partition, const em_exec *source);

/* ---- recovery.c (task-scheduler events about lost output) ---- */

/* Vets a FETCH_FAILED (em_tsched_events.check_fetch). */
int em_dag_check_fetch(void *ctx, em_taskset *ts, uint64_t shuffle_id,
                       uint32_t map_index, char *why, size_t cap);
/* A stage attempt failed to fetch (em_tsched_events.fetch_failed). */
void em_dag_fetch_failed(void *ctx, em_taskset *ts, uint32_t partition,
                         uint64_t shuffle_id, uint32_t map_index,
                         const char *executor_id, const char *message);
/* An executor is gone (em_tsched_events.executor_lost). */
void em_dag_executor_lost(void *ctx, uint32_t exec_no,
                          const char *executor_id, const char *reason);

#endif /* EMBER_KERNEL_DAG_DAG_INTERNAL_H */
