/*
 * tests/kernel/harness.h — a whole kernel driven deterministically: a fake
 * clock, a fake cluster manager, and fake executors that speak the real
 * executor messages (kernel/msg/msg.h) through em_kernel_conn_* and keep
 * every task they are sent until the test says how it ends.
 *
 * Everything runs on the test's thread: h_run() steps the kernel's loop
 * until it is idle, so callbacks and sends happen inside it.
 */
#ifndef EMBER_TESTS_KERNEL_HARNESS_H
#define EMBER_TESTS_KERNEL_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "ember/kernel/kernel.h"
#include "msg/msg.h"

#define H_MAX_EXECS 64
#define H_MAX_JOBS 16
#define H_MAX_INPUTS 8

/* A task an executor was sent and has not finished. */
typedef struct h_task {
    em_msg_task t;
    int exec;     /* index into h->execs */
    int is_map;   /* from its STAGE message */
    uint32_t nreduce;
} h_task;

typedef struct h_exec {
    char id[32], host[32];
    uint32_t slots;
    uint64_t conn;
    int registered, refused, lost, closed;
    uint32_t stage_msgs, kill_msgs;
    struct harness *h;
} h_exec;

typedef struct h_job {
    uint64_t id;
    int ended;
    ember_status status;
    char message[1024];
    uint32_t results;
    char result[64][32]; /* result bytes per partition < 64, as text */
} h_job;

typedef struct harness {
    em_kernel *k;
    em_conf *conf;
    char dir[64], db[96];
    uint64_t now_us;
    em_kernel_clock clock;
    h_exec execs[H_MAX_EXECS];
    int nexecs;
    h_task *running; /* tasks held by fake executors, launch order */
    size_t nrunning, cap;
    em_msg_task *launched; /* every LAUNCH entry ever, in order */
    size_t nlaunched, cap_launched;
    uint64_t *killed; /* task ids in KILL messages */
    size_t nkilled;
    h_job jobs[H_MAX_JOBS];
    int njobs;
    int commit_replies, commit_allowed;
    uint64_t app;
    /* stage id -> kind, learnt from STAGE messages */
    uint64_t stage_ids[256];
    int stage_is_map[256];
    uint32_t stage_nreduce[256];
    int nstages;
    /* stage slot -> the shuffles it reads, from its STAGE message's
     * "inputs" (at most H_MAX_INPUTS kept) */
    uint64_t stage_inputs[256][H_MAX_INPUTS];
    uint32_t stage_ninputs[256];
    /* shuffle id -> its map outputs, from the STAGE message of the
     * shuffle-map stage that writes it */
    uint64_t shuffle_ids[256];
    uint32_t shuffle_maps[256];
    int nshuffles;
    /* When not 0, h_run fails the test if the loop is still busy after
     * this many turns (a livelock); 0, the default, runs until idle. */
    int run_turn_limit;
} harness;

/* Creates a kernel with conf given as "key=value" strings (NULL-ended),
 * a temp state directory and the fake clock at 1 s; opens app "test". */
harness *h_new(const char *const *conf);
/* Like h_new but returns the create status (for refused configs). */
ember_status h_try_new(const char *const *conf, harness **out,
                       ember_error *err);
void h_free(harness *h);
/* Steps the loop until nothing is left to do. */
void h_run(harness *h);
/* Moves the fake clock forward and runs. */
void h_advance(harness *h, uint64_t us);
/* Adds an executor through the fake cluster manager; runs. Index. */
int h_exec_add(harness *h, const char *host, uint32_t slots);
/* Opens e's connection and sends its REGISTER; runs. */
void h_exec_connect(harness *h, h_exec *e);
/* The executor's connection closes (process died); runs. */
void h_exec_kill(harness *h, int exec);
/* Submits a job on dataset of plan; partitions NULL = all; pool/group
 * nullable. Returns the h_job index; asserts submission succeeded. */
int h_submit(harness *h, const char *plan, uint64_t dataset,
             const char *pool, const char *group);
/* Index of the running task with this stage/partition, or -1. */
int h_find(harness *h, uint64_t stage_id, uint32_t partition);
/* Ends running task i (index into h->running) with a status; the update
 * goes out at once and the harness runs. */
void h_finish(harness *h, size_t i);
void h_fail(harness *h, size_t i, const char *error);
/* Ends running task i as FINISHED with exactly these result bytes. */
void h_finish_with(harness *h, size_t i, const void *result, size_t len);
void h_fetch_fail(harness *h, size_t i, uint64_t shuffle, uint32_t map,
                  const char *lost_exec);
/* Index of the running task of stage, partition and stage attempt, or
 * -1; h_must_find fails the test when there is none. */
int h_find_attempt(harness *h, uint64_t stage, uint32_t partition,
                   uint32_t stage_attempt);
size_t h_must_find(harness *h, uint64_t stage, uint32_t partition,
                   uint32_t stage_attempt);
/* Finishes the running tasks of stage (tasks that launches are kept). */
void h_finish_tasks_of(harness *h, uint64_t stage);
/* Finishes the running tasks of the oldest running task's stage. */
void h_finish_stage(harness *h);
/* How many times a task of stage and partition was launched. */
uint32_t h_launches_of(harness *h, uint64_t stage, uint32_t partition);
/* Puts the correct FINISHED result of t into scratch (reset first): its
 * map status for map tasks, "p<partition>" for result tasks. */
void h_task_result(const h_task *t, ember_buf *scratch);
/* Finishes every running task, repeatedly, until none is left (bounded). */
void h_finish_all(harness *h);
/* Sends raw bytes from executor e's connection; runs. */
void h_send_raw(harness *h, int e, const void *msg, size_t len);
/* Takes running task i out of h->running without reporting anything:
 * the executor has finished it but its STATUS is still on the way (send
 * it later with h_send_updates). A KILL for it is recorded but not
 * answered. */
h_task h_take(harness *h, size_t i);
/* Sends these updates from executor exec as one STATUS message, in
 * order; runs. The tasks must already be out of h->running. */
void h_send_updates(harness *h, int exec, const em_msg_update *u, size_t n);
/* Task t asks to commit its output (COMMIT_ASK from its executor); runs.
 * The reply is counted in commit_replies and commit_allowed. */
void h_commit_ask(harness *h, const h_task *t);
/* The shuffles stage_id reads, as its STAGE message listed them: up to
 * cap ids into out; returns how many it listed (0 for a stage that reads
 * none), or -1 when no STAGE message named stage_id. */
int h_stage_inputs(harness *h, uint64_t stage_id, uint64_t *out, int cap);
/* How many map outputs shuffle has, learnt from the STAGE message of the
 * shuffle-map stage writing it; 0 when unknown. */
uint32_t h_shuffle_maps(harness *h, uint64_t shuffle);
/* Executor e sends a HEARTBEAT (running: the tasks it holds); runs. */
void h_heartbeat(harness *h, int e);
/* Executor e's transport closes its connection (em_kernel_conn_close),
 * without the cluster manager: like h_exec_kill, its tasks die with it;
 * runs. */
void h_exec_close(harness *h, int e);
/* One integer from the state database (flushes first). */
int64_t h_sql_int(harness *h, const char *sql);

#endif /* EMBER_TESTS_KERNEL_HARNESS_H */
