/*
 * Regression tests for kernel bugs found in review: stale stage attempts
 * outliving their stage, cancel missing older attempts, the indeterminate
 * rollback, the commit arbiter across attempts, fetch-failure validation
 * and executor-wide unregistration, 64-bit slot counters and deep shuffle
 * chains. Each test drives the whole kernel through the fake executors of
 * harness.h on the fake clock and asserts what a user would see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "plans.h"

/* More than ember.stage.resubmitDelay (200 ms by default). */
#define RESUBMIT_DELAY_US 250000

static int was_killed(harness *h, uint64_t task_id)
{
    for (size_t i = 0; i < h->nkilled; i++)
        if (h->killed[i] == task_id)
            return 1;
    return 0;
}

static void expect_all_slots_free(harness *h)
{
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.free_slots, st.total_slots);
}

/* A kernel whose first executor (exec-0, on host-a) has `slots` slots. */
static harness *new_harness(uint32_t slots)
{
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", slots);
    return h;
}

/* Job j has ended with status, having returned `results` results. */
static void expect_job(harness *h, int j, ember_status status,
                       uint64_t results)
{
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, status);
    assert_int_equal(h->jobs[j].results, results);
}

/* Cancels job j as a user would; it must end ECANCELED at once. */
static void cancel_job(harness *h, int j)
{
    assert_int_equal(em_kernel_cancel_job(h->k, h->jobs[j].id, "user"),
                     EMBER_OK);
    h_run(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_ECANCELED);
}

/* Finishes the running map tasks at the head of the running list. */
static void finish_maps(harness *h)
{
    while (h->nrunning && h->running[0].is_map)
        h_finish(h, 0);
}

/* Past the resubmit delay and every task run to success, for at most
 * `rounds` rounds or until job j ends. */
static void run_rounds(harness *h, int j, int rounds)
{
    for (int round = 0; round < rounds && !h->jobs[j].ended; round++) {
        h_advance(h, RESUBMIT_DELAY_US);
        h_finish_all(h);
    }
}

/* Job j has ended with status and a message that contains text. */
static void expect_job_error(harness *h, int j, ember_status status,
                             const char *text)
{
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, status);
    assert_non_null(strstr(h->jobs[j].message, text));
}

/* After the resubmit delay, all four tasks of map stage ms run again (as
 * its attempt 1); finishes them. */
static void map_stage_reruns_whole(harness *h, uint64_t ms)
{
    h_advance(h, RESUBMIT_DELAY_US);
    for (uint32_t m = 0; m < 4; m++)
        assert_true(h_find_attempt(h, ms, m, 1) >= 0);
    h_finish_tasks_of(h, ms);
}

/* Each of map stage ms's `maps` tasks has been launched `times` times. */
static void expect_map_launches(harness *h, uint64_t ms, uint32_t maps,
                                uint32_t times)
{
    for (uint32_t m = 0; m < maps; m++)
        assert_int_equal(h_launches_of(h, ms, m), times);
}

/* A FETCH_FAILED update of task_id: map output map_index of shuffle 1
 * lost with exec-0 ("connection refused"). */
static em_msg_update fetch_failed(uint64_t task_id, uint32_t map_index)
{
    static const char why[] = "connection refused";
    return (em_msg_update){
        .task_id = task_id, .state = EM_TASK_FETCH_FAILED,
        .error = {(const uint8_t *)why, sizeof why - 1}, .shuffle_id = 1,
        .map_index = map_index,
        .lost_executor = {(const uint8_t *)"exec-0", 6}};
}

/*
 * Submits plan (its dataset 1) and finishes its map stage: the result
 * stage runs. Returns the job; *ms and *rs are the map and result stage
 * ids.
 */
static int map_stage_done(harness *h, const char *plan, uint64_t *ms,
                          uint64_t *rs)
{
    int j = h_submit(h, plan, 1, NULL, NULL);
    *ms = h->running[0].t.stage_id;
    h_finish_stage(h);
    *rs = h->running[0].t.stage_id;
    return j;
}

/*
 * PLAN_TWO_STAGE on one executor: the result stage's attempt 0 fails a
 * fetch on partition 0 while its partition 1 runs on; after the resubmit
 * delay the map stage reruns (all its outputs were on the executor named)
 * and attempt 1 runs both partitions. Returns the result stage id; *map
 * is the map stage's.
 */
static uint64_t two_attempts_running(harness *h, int *job, uint64_t *map)
{
    uint64_t rs;
    *job = map_stage_done(h, PLAN_TWO_STAGE, map, &rs);
    assert_int_not_equal(rs, *map);
    assert_int_equal(h->nrunning, 2);
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    h_advance(h, RESUBMIT_DELAY_US);
    assert_true(h_find_attempt(h, *map, 0, 1) >= 0);
    h_finish_tasks_of(h, *map);
    assert_true(h_find_attempt(h, rs, 0, 1) >= 0);
    assert_true(h_find_attempt(h, rs, 1, 1) >= 0);
    assert_true(h_find_attempt(h, rs, 1, 0) >= 0); /* the zombie's task */
    assert_int_equal(h->nrunning, 3);
    return rs;
}

/* ------------------------------------------------- stale stage attempts */

/*
 * A fetch-failed attempt's task outlives the attempt that completes the
 * job. The job's end must stop it, and its report, arriving after the
 * newer attempt's task set is gone (the kill crossed it on the wire),
 * must neither reach a freed stage nor add a result.
 */
static void stale_attempt_after_fetch_failure_does_not_touch_freed_stage(
    void **state)
{
    (void)state;
    harness *h = new_harness(8);
    int j;
    uint64_t map;
    uint64_t rs = two_attempts_running(h, &j, &map);
    /* The old attempt's task has finished; its STATUS is on the way. */
    h_task old = h_take(h, h_must_find(h, rs, 1, 0));
    h_finish(h, h_must_find(h, rs, 0, 1));
    h_finish(h, h_must_find(h, rs, 1, 1));
    expect_job(h, j, EMBER_OK, 2);
    assert_string_equal(h->jobs[j].result[1], "p1");
    /* The job's end tried to stop every attempt, the old one's too. */
    assert_true(was_killed(h, old.t.task_id));
    /* Its late report changes nothing (and, under ASan, reads no freed
     * stage); the harness fails the test if a result arrived now. */
    const char late[] = "stale";
    em_msg_update u = {.task_id = old.t.task_id, .state = EM_TASK_FINISHED,
                       .result = {(const uint8_t *)late, sizeof late - 1}};
    h_send_updates(h, old.exec, &u, 1);
    assert_int_equal(h->jobs[j].results, 2);
    assert_string_equal(h->jobs[j].result[1], "p1");
    assert_int_equal(h->nrunning, 0);
    expect_all_slots_free(h);
    /* The kernel goes on: the shuffle is reused by the next job. */
    int k = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    assert_int_equal(h->nrunning, 2);
    assert_false(h->running[0].is_map);
    h_finish_all(h);
    assert_int_equal(h->jobs[k].status, EMBER_OK);
    assert_int_equal(h->jobs[k].results, 2);
    h_free(h);
}

/* ---------------------------------------------------------- cancellation */

/* Cancelling a job stops the tasks of all its stage attempts, not only the
 * newest: attempt 0's surviving task is killed with attempt 1's. */
static void cancel_kills_every_attempt_of_a_stage(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    int j;
    uint64_t map;
    uint64_t rs = two_attempts_running(h, &j, &map);
    uint64_t ids[3] = {h->running[h_must_find(h, rs, 1, 0)].t.task_id,
                       h->running[h_must_find(h, rs, 0, 1)].t.task_id,
                       h->running[h_must_find(h, rs, 1, 1)].t.task_id};
    size_t launched = h->nlaunched;
    cancel_job(h, j);
    for (int i = 0; i < 3; i++)
        assert_true(was_killed(h, ids[i]));
    assert_int_equal(h->nkilled, 3);
    assert_int_equal(h->nrunning, 0);
    h_advance(h, RESUBMIT_DELAY_US);
    assert_int_equal(h->nlaunched, launched);
    expect_all_slots_free(h);
    h_free(h);
}

/* Cancelled while its failed attempt waits for the resubmit: the failed
 * attempt's running task is killed and nothing is resubmitted. */
static void cancel_while_waiting_for_resubmit_kills_failed_attempt(
    void **state)
{
    (void)state;
    harness *h = new_harness(8);
    uint64_t ms, rs;
    int j = map_stage_done(h, PLAN_TWO_STAGE, &ms, &rs);
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    assert_int_equal(h->nrunning, 1);
    uint64_t survivor = h->running[h_must_find(h, rs, 1, 0)].t.task_id;
    size_t launched = h->nlaunched;
    cancel_job(h, j);
    assert_int_equal(h->nkilled, 1);
    assert_true(was_killed(h, survivor));
    assert_int_equal(h->nrunning, 0);
    h_advance(h, RESUBMIT_DELAY_US);
    assert_int_equal(h->nlaunched, launched); /* no map rerun */
    expect_all_slots_free(h);
    h_free(h);
}

/* --------------------------------------------------- indeterminate output */

/* Shuffle 1 from dataset 0 (indeterminate), shuffle 2 from dataset 1;
 * dataset 2 cogroups them: map stages of 2 + 2 tasks, a result stage of 2. */
#define PLAN_COGROUP_INDETERMINATE                                          \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":2,"                    \
    "\"determinism\":\"indeterminate\"},"                                   \
    "{\"id\":1,\"op\":\"parallelize\",\"partitions\":2},"                   \
    "{\"id\":2,\"op\":\"cogroup\",\"parents\":[0,1],"                       \
    "\"partitioner\":{\"kind\":\"hash\",\"partitions\":2}}]}"

/*
 * Two jobs share both map stages. Job 2 has returned a result and its
 * result stage failed a fetch (no task set left); then job 1 fails a fetch
 * of the indeterminate shuffle. The rollback must fail job 2 (it cannot
 * take back a returned result) while it walks the stages, without reading
 * the stage it freed, and job 1 must recover.
 */
static void rollback_with_two_jobs_is_memory_safe(void **state)
{
    (void)state;
    harness *h = new_harness(16);
    int j1 = h_submit(h, PLAN_COGROUP_INDETERMINATE, 2, NULL, NULL);
    int j2 = h_submit(h, PLAN_COGROUP_INDETERMINATE, 2, NULL, NULL);
    assert_int_equal(h->nrunning, 4); /* both map stages, shared */
    uint64_t m1 = 0, m2 = 0;
    for (size_t i = 0; i < h->nrunning; i++) {
        assert_true(h->running[i].is_map);
        if (!m1 || h->running[i].t.stage_id == m1)
            m1 = h->running[i].t.stage_id;
        else
            m2 = h->running[i].t.stage_id;
    }
    assert_true(m1 && m2 && m1 != m2);
    finish_maps(h);
    assert_int_equal(h->nrunning, 4); /* R1 p0, p1 and R2 p0, p1 */
    uint64_t r1 = 0, r2 = 0;
    for (size_t i = 0; i < h->nrunning; i++) {
        assert_false(h->running[i].is_map);
        if (h->running[i].t.job_id == h->jobs[j1].id)
            r1 = h->running[i].t.stage_id;
        else
            r2 = h->running[i].t.stage_id;
    }
    assert_true(r1 && r2 && r1 != r2);
    h_finish(h, h_must_find(h, r2, 0, 0));
    assert_int_equal(h->jobs[j2].results, 1);
    /* R2 fails a fetch of the deterministic shuffle 2 from an executor it
     * cannot name (only that output is unregistered, shuffle 1 keeps its
     * output): its attempt has no task left. */
    h_fetch_fail(h, h_must_find(h, r2, 1, 0), 2, 0, "");
    assert_false(h->jobs[j2].ended);
    /* R1 fails a fetch of the indeterminate shuffle 1: everything that
     * read it reruns whole; job 2 already returned a result. */
    uint64_t r1p1 = h->running[h_must_find(h, r1, 1, 0)].t.task_id;
    h_fetch_fail(h, h_must_find(h, r1, 0, 0), 1, 0, "exec-0");
    expect_job_error(h, j2, EMBER_EPLUGIN, "indeterminate");
    assert_int_equal(h->jobs[j2].results, 1);
    assert_false(h->jobs[j1].ended);
    assert_true(was_killed(h, r1p1)); /* it read the old output */
    assert_int_equal(h->nrunning, 0);
    /* Job 1 recovers: both map stages rerun whole, then R1. */
    h_advance(h, RESUBMIT_DELAY_US);
    for (int round = 0; round < 4 && h->nrunning > 0; round++) {
        finish_maps(h);
        h_advance(h, RESUBMIT_DELAY_US);
    }
    for (uint32_t p = 0; p < 2; p++) {
        assert_int_equal(h_launches_of(h, m1, p), 2);
        assert_int_equal(h_launches_of(h, m2, p), 2);
    }
    assert_int_equal(h->nrunning, 2);
    assert_int_equal(h->running[0].t.stage_id, r1);
    h_finish_all(h);
    expect_job(h, j1, EMBER_OK, 2);
    h_free(h);
}

/*
 * The result stage reads indeterminate map output. Partition 0 fails a
 * fetch; partition 1 of the same attempt has already computed its result
 * from the OLD map output and its report arrives in the same STATUS
 * message, after the failure. The map stage reruns whole, so the job must
 * return partition 1 as computed from the NEW output, never the old one.
 */
static void indeterminate_rerun_never_mixes_old_and_new_output(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    uint64_t ms, rs;
    int j = map_stage_done(h, PLAN_TWO_STAGE_DET("indeterminate"), &ms, &rs);
    assert_int_equal(h->nrunning, 2);
    h_task p0 = h_take(h, h_must_find(h, rs, 0, 0));
    h_task p1 = h_take(h, h_must_find(h, rs, 1, 0));
    const char stale[] = "from-old-output";
    em_msg_update u[2] = {
        fetch_failed(p0.t.task_id, 2),
        {.task_id = p1.t.task_id, .state = EM_TASK_FINISHED,
         .result = {(const uint8_t *)stale, sizeof stale - 1}}};
    h_send_updates(h, p0.exec, u, 2);
    assert_false(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].results, 0);
    map_stage_reruns_whole(h, ms);
    /* Both partitions run again, on the new output. */
    assert_int_equal(h->nrunning, 2);
    assert_true(h_find_attempt(h, rs, 0, 1) >= 0);
    assert_true(h_find_attempt(h, rs, 1, 1) >= 0);
    h_finish_all(h);
    expect_job(h, j, EMBER_OK, 2);
    assert_string_equal(h->jobs[j].result[0], "p0");
    assert_string_equal(h->jobs[j].result[1], "p1");
    h_free(h);
}

/* The same, when the other task is still running: it read old output, so
 * the rollback kills it and its partition runs again. */
static void indeterminate_rerun_kills_readers_of_old_output(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    uint64_t ms, rs;
    int j = map_stage_done(h, PLAN_TWO_STAGE_DET("indeterminate"), &ms, &rs);
    uint64_t p1 = h->running[h_must_find(h, rs, 1, 0)].t.task_id;
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 2, "exec-0");
    assert_true(was_killed(h, p1));
    assert_int_equal(h->nrunning, 0);
    h_advance(h, RESUBMIT_DELAY_US);
    h_finish_tasks_of(h, ms);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    assert_int_equal(h_launches_of(h, rs, 1), 2);
    expect_map_launches(h, ms, 4, 2);
    h_free(h);
}

/*
 * The result stage reads indeterminate shuffle 1 and
 * deterministic shuffle 2, all map outputs on exec-0. Partition 0 returns
 * its result; partition 1 fails a fetch of shuffle 2 naming exec-0, which
 * unregisters every output of exec-0 — shuffle 1's too. Shuffle 1 must
 * then rerun whole and roll back its readers, so the job fails (a
 * returned result read the old output) rather than mixing two versions
 * of shuffle 1.
 */
static void indeterminate_output_lost_with_another_shuffle_fails_job(
    void **state)
{
    (void)state;
    harness *h = new_harness(8);
    int j = h_submit(h, PLAN_COGROUP_INDETERMINATE, 2, NULL, NULL);
    assert_int_equal(h->nrunning, 4);
    finish_maps(h);
    assert_int_equal(h->nrunning, 2);
    uint64_t rs = h->running[0].t.stage_id;
    h_finish(h, h_must_find(h, rs, 0, 0));
    assert_int_equal(h->jobs[j].results, 1);
    h_fetch_fail(h, h_must_find(h, rs, 1, 0), 2, 0, "exec-0");
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 0);
    run_rounds(h, j, 6);
    expect_job_error(h, j, EMBER_EPLUGIN, "indeterminate");
    h_free(h);
}

/* ------------------------------------------------------- commit arbiter */

/*
 * Spark's OutputCommitCoordinator: per (stage, partition), across stage
 * attempts. Attempt 0's partition 1 is allowed to commit before the fetch
 * failure and keeps running; attempt 1's partition 1 is refused while it
 * may still be committing, and allowed once it has failed.
 */
static void commit_allowed_once_per_partition_across_attempts(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    uint64_t ms, rs;
    int j = map_stage_done(h, PLAN_TWO_STAGE, &ms, &rs);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 0)]);
    assert_int_equal(h->commit_replies, 1);
    assert_int_equal(h->commit_allowed, 1);
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    h_advance(h, RESUBMIT_DELAY_US);
    h_finish_tasks_of(h, ms);
    assert_true(h_find_attempt(h, rs, 1, 0) >= 0);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 1)]);
    assert_int_equal(h->commit_replies, 2);
    assert_int_equal(h->commit_allowed, 1); /* attempt 0 owns it */
    /* The owner fails: its claim goes. */
    h_fail(h, h_must_find(h, rs, 1, 0), "disk full");
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 1)]);
    assert_int_equal(h->commit_replies, 3);
    assert_int_equal(h->commit_allowed, 2);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    h_free(h);
}

/* After the fetch failure, the failed attempt's task and the new attempt's
 * task of the same partition both ask: only the live attempt may commit. */
static void failed_attempt_cannot_commit(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    int j;
    uint64_t map;
    uint64_t rs = two_attempts_running(h, &j, &map);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 0)]);
    assert_int_equal(h->commit_replies, 1);
    assert_int_equal(h->commit_allowed, 0);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 1)]);
    assert_int_equal(h->commit_replies, 2);
    assert_int_equal(h->commit_allowed, 1);
    /* Asking again changes nothing. */
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 1)]);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 0)]);
    assert_int_equal(h->commit_replies, 4);
    assert_int_equal(h->commit_allowed, 2);
    h_free(h);
}

/* A task of a cancelled job whose COMMIT_ASK was in flight during the
 * cancel is refused; before the cancel its sibling was allowed. */
static void cancelled_job_cannot_commit(void **state)
{
    (void)state;
    harness *h = new_harness(2);
    int j = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    assert_int_equal(h->nrunning, 2);
    h_task t = h->running[0];
    h_commit_ask(h, &h->running[1]);
    assert_int_equal(h->commit_allowed, 1);
    assert_int_equal(em_kernel_cancel_job(h->k, h->jobs[j].id, "user"),
                     EMBER_OK);
    /* The ask crossed the cancel: the kernel sees it after. */
    h_commit_ask(h, &t);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_ECANCELED);
    assert_int_equal(h->commit_replies, 2);
    assert_int_equal(h->commit_allowed, 1);
    assert_true(was_killed(h, t.t.task_id));
    h_free(h);
}

/* ------------------------------------------------------- fetch failures */

/* A FETCH_FAILED naming a shuffle the task's stage does not read, or a
 * map index the shuffle does not have, is an ordinary task failure: the
 * task is retried at once, nobody's map output is unregistered and no
 * stage reruns. */
static void fetch_failure_for_foreign_shuffle_is_a_task_failure(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    int a = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    h_finish_all(h);
    assert_int_equal(h->jobs[a].status, EMBER_OK);
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 4);
    /* A narrow job reading no shuffle at all. */
    const char *narrow =
        "{\"ember_plan\":1,\"datasets\":["
        "{\"id\":10,\"op\":\"parallelize\",\"partitions\":2},"
        "{\"id\":11,\"op\":\"map\",\"parents\":[10],"
        "\"fns\":[\"std.identity\"]}]}";
    int b = h_submit(h, narrow, 11, NULL, NULL);
    assert_int_equal(h->nrunning, 2);
    h_task victim = h->running[0];
    size_t before = h->nlaunched;
    h_fetch_fail(h, 0, 1, 3, "exec-0");
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 4);
    /* Retried at once in the same stage attempt, as a new task attempt. */
    assert_int_equal(h->nlaunched, before + 1);
    const em_msg_task *re = &h->launched[before];
    assert_int_equal(re->stage_id, victim.t.stage_id);
    assert_int_equal(re->partition, victim.t.partition);
    assert_int_equal(re->stage_attempt, victim.t.stage_attempt);
    assert_int_equal(re->attempt, victim.t.attempt + 1);
    h_advance(h, RESUBMIT_DELAY_US);
    assert_int_equal(h->nlaunched, before + 1); /* no map stage reruns */
    h_finish_all(h);
    assert_int_equal(h->jobs[b].status, EMBER_OK);
    assert_int_equal(h->jobs[b].results, 2);
    /* A stage that reads shuffle 1, told of a map it does not have. */
    int c = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    assert_int_equal(h->nrunning, 2);
    assert_false(h->running[0].is_map);
    before = h->nlaunched;
    h_fetch_fail(h, 0, 1, 4, "exec-0");
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 4);
    assert_int_equal(h->nlaunched, before + 1);
    assert_int_equal(h->launched[before].stage_attempt, 0);
    h_advance(h, RESUBMIT_DELAY_US);
    assert_int_equal(h->nlaunched, before + 1);
    h_finish_all(h);
    assert_int_equal(h->jobs[c].status, EMBER_OK);
    assert_int_equal(h->jobs[c].results, 2);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='FETCH_FAILED'"), 0);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='FAILED'"), 2);
    h_free(h);
}

/*
 * exec-0 holds all four map outputs and its shuffle server stops
 * answering. One FETCH_FAILED naming it unregisters all of them (Spark's
 * removeOutputsOnExecutor): the map stage reruns once, whole, and the job
 * succeeds, instead of finding one more missing output per attempt.
 */
static void one_fetch_failure_reruns_all_outputs_of_the_executor(
    void **state)
{
    (void)state;
    harness *h = new_harness(4);
    int j = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t ms = h->running[0].t.stage_id;
    h_finish_stage(h); /* all four maps ran on exec-0 */
    h_exec_add(h, "host-b", 4);
    uint64_t rs = h->running[0].t.stage_id;
    assert_int_equal(h->nrunning, 2);
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 0);
    map_stage_reruns_whole(h, ms);
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 4);
    h_finish_all(h);
    expect_job(h, j, EMBER_OK, 2);
    expect_map_launches(h, ms, 4, 2);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='FETCH_FAILED'"), 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM stage_attempts"), 4);
    h_free(h);
}

/* ------------------------------------------------------------ capacity */

static void discard(void *ctx, const uint8_t *msg, size_t len)
{
    (void)ctx;
    (void)msg;
    (void)len;
}

/* Executors whose slots add up to 2^32: the counters must not wrap to 0
 * (which stopped all launching), and tasks still launch. */
static void slot_counters_do_not_wrap(void **state)
{
    (void)state;
    harness *h = new_harness(2); /* the executor the test watches */
    const uint64_t target = UINT64_C(1) << 32;
    uint64_t total = 2;
    for (int i = 0; total < target; i++) {
        uint64_t left = target - total;
        uint32_t slots = left > 1000000 ? 1000000 : (uint32_t)left;
        uint64_t conn;
        assert_int_equal(em_kernel_conn_open(h->k, discard, NULL, NULL,
                                             &conn), EMBER_OK);
        char id[32];
        snprintf(id, sizeof id, "big-%d", i);
        em_msg_register reg = {
            .executor_id = {(const uint8_t *)id, strlen(id)},
            .host = {(const uint8_t *)"big", 3},
            .endpoint = {(const uint8_t *)"inproc://none", 13},
            .slots = slots, .pid = 1};
        ember_buf b = ember_buf_heap();
        assert_int_equal(em_msg_encode_register(&b, &reg), EMBER_OK);
        assert_int_equal(em_kernel_conn_recv(h->k, conn, b.data, b.len),
                         EMBER_OK);
        ember_buf_release(&b);
        total += slots;
    }
    h_run(h);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.total_slots, target);
    assert_int_equal(st.free_slots, target);
    int j = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.tasks_launched, 2);
    assert_int_equal(st.free_slots, target - 2);
    assert_true(h->nlaunched >= 1); /* one at least on host-a */
    assert_false(h->jobs[j].ended);
    h_free(h);
}

/* A chain of 20,000 shuffles (partitioner kinds alternate so that no
 * reduce_by_key reads its parent narrowly): the job is accepted, its first
 * stage (the only one with no parent) launches, and the chain advances
 * stage by stage. The ctest timeout guards against quadratic work. */
static void deep_shuffle_chain_submits_quickly(void **state)
{
    (void)state;
    enum { N = 20000 };
    size_t cap = (size_t)N * 200 + 200;
    char *plan = malloc(cap);
    assert_non_null(plan);
    size_t o = (size_t)snprintf(plan, cap,
                                "{\"ember_plan\":1,\"datasets\":["
                                "{\"id\":0,\"op\":\"parallelize\","
                                "\"partitions\":1}");
    for (int i = 1; i <= N; i++)
        o += (size_t)snprintf(plan + o, cap - o,
                              ",{\"id\":%d,\"op\":\"reduce_by_key\","
                              "\"parents\":[%d],\"fns\":[\"std.sum\"],"
                              "\"partitioner\":{\"kind\":\"%s\","
                              "\"partitions\":1}}", i, i - 1,
                              i % 2 ? "hash" : "range");
    assert_true(o + 3 < cap);
    snprintf(plan + o, cap - o, "]}");
    harness *h = new_harness(4);
    int j = h_submit(h, plan, N, NULL, NULL);
    free(plan);
    assert_int_equal(h->nrunning, 1);
    assert_true(h->running[0].is_map);
    assert_int_equal(h->running[0].t.partition, 0);
    uint64_t prev = h->running[0].t.stage_id;
    for (int k = 0; k < 3; k++) {
        h_finish(h, 0);
        assert_int_equal(h->nrunning, 1);
        assert_true(h->running[0].is_map);
        assert_int_not_equal(h->running[0].t.stage_id, prev);
        prev = h->running[0].t.stage_id;
    }
    assert_false(h->jobs[j].ended);
    cancel_job(h, j);
    h_free(h);
}

/* ----------------------------------------------------- third review */

/* An executor holding indeterminate map output is lost while the stage
 * that reads it runs: the reader is rolled back and must be resubmitted
 * (nothing else will fail a fetch to wake it), and the job completes. */
static void executor_loss_rollback_still_finishes_the_job(void **state)
{
    (void)state;
    harness *h = new_harness(4);
    h_exec_add(h, "host-b", 4);
    int j = h_submit(h, PLAN_TWO_STAGE_DET("indeterminate"), 1, NULL, NULL);
    uint64_t ms = h->running[0].t.stage_id;
    int on1 = 0;
    for (size_t i = 0; i < h->nrunning; i++)
        on1 |= h->running[i].exec == 1;
    assert_true(on1);
    h_finish_tasks_of(h, ms);
    assert_int_equal(h->nrunning, 2);
    assert_false(h->running[0].is_map);
    h_exec_kill(h, 1);
    run_rounds(h, j, 20);
    expect_job(h, j, EMBER_OK, 2);
    /* The whole map stage reran: indeterminate output is never mixed. */
    expect_map_launches(h, ms, 4, 2);
    h_free(h);
}

/* A rollback that fails the fetch-failing stage's own job (it returned a
 * result) must still resubmit the other jobs it set back. */
static void rollback_failing_own_job_resubmits_the_others(void **state)
{
    (void)state;
    harness *h = new_harness(16);
    int j1 = h_submit(h, PLAN_TWO_STAGE_DET("indeterminate"), 1, NULL, NULL);
    int j2 = h_submit(h, PLAN_TWO_STAGE_DET("indeterminate"), 1, NULL, NULL);
    uint64_t ms = h->running[0].t.stage_id;
    h_finish_tasks_of(h, ms);
    assert_int_equal(h->nrunning, 4);
    uint64_t r1 = 0;
    for (size_t i = 0; i < h->nrunning; i++)
        if (h->running[i].t.job_id == h->jobs[j1].id)
            r1 = h->running[i].t.stage_id;
    h_finish(h, h_must_find(h, r1, 0, 0));
    assert_int_equal(h->jobs[j1].results, 1);
    h_fetch_fail(h, h_must_find(h, r1, 1, 0), 1, 0, "exec-0");
    assert_true(h->jobs[j1].ended);
    assert_int_equal(h->jobs[j1].status, EMBER_EPLUGIN);
    assert_false(h->jobs[j2].ended);
    run_rounds(h, j2, 20);
    expect_job(h, j2, EMBER_OK, 2);
    h_free(h);
}

/* A task's FETCH_FAILED that crosses the KILL of an application close is
 * refused quietly: the application's shuffles are gone. */
static void fetch_failure_after_app_close_is_ignored(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    uint64_t ms, rs;
    int j = map_stage_done(h, PLAN_TWO_STAGE, &ms, &rs);
    assert_int_equal(h->nrunning, 2);
    h_task t = h_take(h, 0);
    assert_int_equal(em_kernel_app_close(h->k, h->app), EMBER_OK);
    h_run(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_ECANCELED);
    em_msg_update u = fetch_failed(t.t.task_id, 0);
    size_t launched = h->nlaunched;
    h_send_updates(h, t.exec, &u, 1);
    h_advance(h, RESUBMIT_DELAY_US);
    assert_int_equal(h->nlaunched, launched); /* nothing reruns */
    h_free(h);
}

/* A committer the kernel kills (here by an indeterminate rollback) gives
 * up its claim: the rerun of its partition may commit. */
static void killed_committer_releases_the_commit(void **state)
{
    (void)state;
    harness *h = new_harness(8);
    uint64_t ms, rs;
    map_stage_done(h, PLAN_TWO_STAGE_DET("indeterminate"), &ms, &rs);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 0)]);
    assert_int_equal(h->commit_allowed, 1);
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    assert_int_equal(h->nrunning, 0);
    h_advance(h, RESUBMIT_DELAY_US);
    h_finish_tasks_of(h, ms);
    assert_true(h_find_attempt(h, rs, 1, 1) >= 0);
    h_commit_ask(h, &h->running[h_must_find(h, rs, 1, 1)]);
    assert_int_equal(h->commit_replies, 2);
    assert_int_equal(h->commit_allowed, 2);
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            stale_attempt_after_fetch_failure_does_not_touch_freed_stage),
        cmocka_unit_test(cancel_kills_every_attempt_of_a_stage),
        cmocka_unit_test(
            cancel_while_waiting_for_resubmit_kills_failed_attempt),
        cmocka_unit_test(rollback_with_two_jobs_is_memory_safe),
        cmocka_unit_test(indeterminate_rerun_never_mixes_old_and_new_output),
        cmocka_unit_test(indeterminate_rerun_kills_readers_of_old_output),
        cmocka_unit_test(
            indeterminate_output_lost_with_another_shuffle_fails_job),
        cmocka_unit_test(commit_allowed_once_per_partition_across_attempts),
        cmocka_unit_test(failed_attempt_cannot_commit),
        cmocka_unit_test(cancelled_job_cannot_commit),
        cmocka_unit_test(fetch_failure_for_foreign_shuffle_is_a_task_failure),
        cmocka_unit_test(one_fetch_failure_reruns_all_outputs_of_the_executor),
        cmocka_unit_test(slot_counters_do_not_wrap),
        cmocka_unit_test(deep_shuffle_chain_submits_quickly),
        cmocka_unit_test(executor_loss_rollback_still_finishes_the_job),
        cmocka_unit_test(rollback_failing_own_job_resubmits_the_others),
        cmocka_unit_test(fetch_failure_after_app_close_is_ignored),
        cmocka_unit_test(killed_committer_releases_the_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
