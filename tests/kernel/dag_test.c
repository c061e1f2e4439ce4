/*
 * DAG scheduler tests through the whole kernel: stage cutting, reuse,
 * fetch-failure recovery, indeterminate stages, lost executors, retries,
 * cancellation and hostile plans. Fake executors hold every task until the
 * test ends it, so each assertion is about what the kernel asked for.
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

/* All running tasks belong to one stage, partitions 0..n-1. */
static uint64_t expect_stage(harness *h, uint32_t n)
{
    assert_int_equal(h->nrunning, n);
    uint64_t stage = h->running[0].t.stage_id;
    uint32_t seen = 0;
    for (size_t i = 0; i < h->nrunning; i++) {
        assert_int_equal(h->running[i].t.stage_id, stage);
        assert_true(h->running[i].t.partition < n);
        seen |= 1u << h->running[i].t.partition;
    }
    assert_int_equal(seen, (1u << n) - 1);
    return stage;
}

static void chain_cuts_three_stages_parents_first(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j = h_submit(h, PLAN_CHAIN, 4, NULL, NULL);
    uint64_t s1 = expect_stage(h, 4);
    h_finish_stage(h);
    uint64_t s2 = expect_stage(h, 3);
    assert_int_not_equal(s1, s2);
    h_finish_stage(h);
    uint64_t s3 = expect_stage(h, 2);
    assert_false(h->jobs[j].ended);
    h_finish_stage(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    assert_string_equal(h->jobs[j].result[0], "p0");
    assert_string_equal(h->jobs[j].result[1], "p1");
    assert_true(s3 != s1 && s3 != s2);
    /* The state store saw it all, readable from another connection. */
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks"), 9);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='SUCCESS'"), 9);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM stage_attempts"), 3);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM jobs WHERE "
                                  "status='SUCCEEDED'"), 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM executors"), 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM map_outputs"), 7);
    /* The history: events in order of what happened. */
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM events WHERE "
                                  "kind='stage_submitted'"), 3);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM events WHERE "
                                  "kind IN ('job_start','job_end')"), 2);
    assert_true(h_sql_int(h, "SELECT MIN(seq) FROM events WHERE "
                             "kind='executor_added'") <
                h_sql_int(h, "SELECT MIN(seq) FROM events WHERE "
                             "kind='job_start'"));
    h_free(h);
}

static void diamond_runs_independent_stages_in_parallel(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 16);
    int j = h_submit(h, PLAN_DIAMOND, 6, NULL, NULL);
    /* Both source-side map stages at once: 4 (union) + 2 (source). */
    assert_int_equal(h->nrunning, 6);
    uint64_t a = h->running[0].t.stage_id;
    uint32_t na = 0;
    for (size_t i = 0; i < h->nrunning; i++)
        na += h->running[i].t.stage_id == a;
    assert_true((na == 4 && h->nrunning - na == 2) ||
                (na == 2 && h->nrunning - na == 4));
    h_finish_all(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    /* 4 + 2 + 3 map tasks and 2 result tasks; one attempt per stage. */
    assert_int_equal(h->nlaunched, 11);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM stage_attempts"), 4);
    h_free(h);
}

static void later_jobs_reuse_available_shuffle_output(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j1 = h_submit(h, PLAN_CHAIN, 4, NULL, NULL);
    h_finish_all(h);
    assert_int_equal(h->jobs[j1].status, EMBER_OK);
    size_t before = h->nlaunched;
    /* Same datasets again: both map stages are skipped. */
    int j2 = h_submit(h, PLAN_CHAIN, 4, NULL, NULL);
    expect_stage(h, 2);
    h_finish_all(h);
    assert_int_equal(h->jobs[j2].status, EMBER_OK);
    assert_int_equal(h->nlaunched - before, 2);
    /* A job on the middle dataset reads the first shuffle only. */
    before = h->nlaunched;
    int j3 = h_submit(h, PLAN_CHAIN, 2, NULL, NULL);
    expect_stage(h, 3);
    h_finish_all(h);
    assert_int_equal(h->jobs[j3].status, EMBER_OK);
    assert_int_equal(h->nlaunched - before, 3);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_true(st.skipped_stages >= 3);
    h_free(h);
}

static void redefined_dataset_id_is_refused(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j1 = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    h_finish_all(h);
    assert_int_equal(h->jobs[j1].status, EMBER_OK);
    int j2 = h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    assert_true(h->jobs[j2].ended);
    assert_int_equal(h->jobs[j2].status, EMBER_EINVAL);
    assert_non_null(strstr(h->jobs[j2].message, "defined differently"));
    h_free(h);
}

/* Fetch failure: the outputs of the executor that failed to serve are
 * unregistered (Spark's removeOutputsOnExecutor) and only they rerun. */
static void fetch_failure_reruns_only_lost_map_outputs(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 4);
    h_exec_add(h, "host-b", 4);
    int j = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t map_stage = expect_stage(h, 4);
    int map_exec[4];
    for (size_t i = 0; i < h->nrunning; i++)
        map_exec[h->running[i].t.partition] = h->running[i].exec;
    h_finish_stage(h);
    uint64_t shuffle = 1;
    assert_int_equal(em_kernel_shuffle_available(h->k, shuffle), 4);
    int bad = map_exec[2];
    int held = 0;
    for (int m = 0; m < 4; m++)
        held += map_exec[m] == bad;
    assert_true(held >= 1 && held < 4); /* both executors got work */
    uint64_t result_stage = expect_stage(h, 2);
    int r0 = h_find(h, result_stage, 0);
    h_fetch_fail(h, (size_t)r0, shuffle, 2, h->execs[bad].id);
    assert_int_equal(em_kernel_shuffle_available(h->k, shuffle), 4 - held);
    /* Nothing is resubmitted before the resubmit delay. */
    assert_int_equal(h->nrunning, 1);
    h_advance(h, 250000);
    for (uint32_t m = 0; m < 4; m++)
        assert_int_equal(h_find(h, map_stage, m) >= 0, map_exec[m] == bad);
    /* The other reduce of the failed attempt may still finish. */
    h_finish(h, (size_t)h_find(h, result_stage, 1));
    assert_int_equal(h->jobs[j].results, 1);
    while (h->nrunning > 0 && h->running[0].is_map)
        h_finish(h, 0);
    /* Only the missing result partition reruns. */
    assert_int_equal(h->nrunning, 1);
    assert_int_equal(h->running[0].t.partition, 0);
    assert_int_equal(h->running[0].t.stage_attempt, 1);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(h_launches_of(h, map_stage, p),
                         map_exec[p] == bad ? 2 : 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='FETCH_FAILED'"), 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM stage_attempts "
                                  "WHERE status='FAILED'"), 1);
    h_free(h);
}

/* An indeterminate map side reruns whole (SEMANTICS "do better" 3). */
static void indeterminate_map_stage_reruns_whole(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j = h_submit(h, PLAN_TWO_STAGE_DET("indeterminate"), 1, NULL, NULL);
    uint64_t map_stage = expect_stage(h, 4);
    h_finish_stage(h);
    uint64_t result_stage = expect_stage(h, 2);
    h_fetch_fail(h, (size_t)h_find(h, result_stage, 0), 1, 2, "exec-0");
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 0);
    h_advance(h, 250000);
    for (uint32_t p = 0; p < 4; p++)
        assert_true(h_find(h, map_stage, p) >= 0);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(h_launches_of(h, map_stage, p), 2);
    h_free(h);
}

/* ...but a result that already reached the driver cannot be rolled back. */
static void indeterminate_rerun_after_results_fails_job(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j = h_submit(h, PLAN_TWO_STAGE_DET("indeterminate"), 1, NULL, NULL);
    h_finish_stage(h);
    uint64_t result_stage = expect_stage(h, 2);
    h_finish(h, (size_t)h_find(h, result_stage, 1));
    assert_int_equal(h->jobs[j].results, 1);
    h_fetch_fail(h, (size_t)h_find(h, result_stage, 0), 1, 2, "exec-0");
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_EPLUGIN);
    assert_non_null(strstr(h->jobs[j].message, "indeterminate"));
    h_free(h);
}

static void repeated_fetch_failures_abort_after_max_attempts(void **state)
{
    (void)state;
    const char *conf[] = {"ember.stage.maxConsecutiveAttempts=3", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 8);
    int j = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t map_stage = h->running[0].t.stage_id;
    h_finish_stage(h);
    uint64_t result_stage = h->running[0].t.stage_id;
    for (int round = 1; round <= 3; round++) {
        int r0 = h_find(h, result_stage, 0);
        assert_true(r0 >= 0);
        h_fetch_fail(h, (size_t)r0, 1, 0, "exec-0");
        if (round == 3)
            break;
        assert_false(h->jobs[j].ended);
        h_advance(h, 250000);
        assert_true(h_find(h, map_stage, 0) >= 0);
        for (size_t k = 0; k < h->nrunning;)
            if (h->running[k].t.stage_id == map_stage)
                h_finish(h, k);
            else
                k++;
        int r1 = h_find(h, result_stage, 1);
        if (r1 >= 0)
            h_finish(h, (size_t)r1);
    }
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_EPLUGIN);
    assert_non_null(strstr(h->jobs[j].message,
                           "maximum allowable number of times: 3"));
    assert_non_null(strstr(h->jobs[j].message, "FetchFailed"));
    h_free(h);
}

/* An executor dies holding map output and a running task. */
static void lost_executor_outputs_rebuilt_from_lineage(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    int e0 = h_exec_add(h, "host-a", 1);
    int e1 = h_exec_add(h, "host-b", 1);
    int j = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t map_stage = h->running[0].t.stage_id;
    /* Spread: one map task on each executor. */
    assert_int_equal(h->nrunning, 2);
    assert_int_not_equal(h->running[0].exec, h->running[1].exec);
    int map_exec[4];
    while (h->nrunning > 0 && h->running[0].is_map) {
        map_exec[h->running[0].t.partition] = h->running[0].exec;
        h_finish(h, 0);
    }
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 4);
    int lost = 0, lost_map = -1;
    for (int m = 0; m < 4; m++)
        if (map_exec[m] == e1) {
            lost++;
            lost_map = m;
        }
    assert_true(lost > 0);
    assert_int_equal(h->nrunning, 2); /* the two result tasks */
    h_exec_kill(h, e1);
    assert_true(h->execs[e1].closed);
    assert_false(h->execs[e0].closed);
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 4 - lost);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.executors, 1);
    assert_int_equal(st.tasks_lost, 1);
    /* The result task that ran on exec-1 is queued again and starts on a
     * new executor, where it cannot fetch what exec-1 held. */
    int e2 = h_exec_add(h, "host-c", 1);
    int on_e2 = -1;
    for (size_t i = 0; i < h->nrunning; i++)
        if (h->running[i].exec == e2)
            on_e2 = (int)i;
    assert_true(on_e2 >= 0);
    assert_false(h->running[on_e2].is_map);
    h_fetch_fail(h, (size_t)on_e2, 1, (uint32_t)lost_map, "exec-1");
    h_advance(h, 250000);
    h_finish_all(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    /* Only what exec-1 held ran twice. */
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(h_launches_of(h, map_stage, p),
                         map_exec[p] == e1 ? 2 : 1);
    (void)e0;
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM executors WHERE "
                                  "status='REMOVED'"), 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='LOST'"), 1);
    h_free(h);
}

static void task_failing_max_times_fails_job_with_its_message(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 1);
    int j = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    for (int attempt = 1; attempt <= 4; attempt++) {
        int i = h_find(h, h->running[0].t.stage_id, 0);
        assert_true(i >= 0);
        assert_int_equal(h->running[i].t.attempt, attempt - 1);
        char msg[64];
        snprintf(msg, sizeof msg, "boom %d on line 3141", attempt);
        h_fail(h, (size_t)i, msg);
    }
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_EPLUGIN);
    assert_non_null(strstr(h->jobs[j].message, "failed 4 times"));
    assert_non_null(strstr(h->jobs[j].message, "boom 4 on line 3141"));
    assert_non_null(strstr(h->jobs[j].message, "Task 0 in stage"));
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "status='FAILED'"), 4);
    h_free(h);
}

static void failures_spread_over_tasks_do_not_fail_job(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    int j = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    for (int round = 0; round < 3; round++)
        for (uint32_t p = 0; p < 2; p++)
            h_fail(h, (size_t)h_find(h, h->running[0].t.stage_id, p),
                   "flaky");
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 2);
    h_free(h);
}

static void local_mode_single_failure_fails_job(void **state)
{
    (void)state;
    const char *conf[] = {"ember.task.maxFailures=1", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 2);
    int j = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    h_fail(h, 0, "division by zero");
    assert_true(h->jobs[j].ended);
    assert_non_null(strstr(h->jobs[j].message, "failed 1 times"));
    /* The other running task was killed, not left behind. */
    assert_int_equal(h->nrunning, 0);
    assert_int_equal(h->nkilled, 1);
    h_free(h);
}

static void cancel_kills_running_and_never_starts_queued(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 1);
    int j = h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    assert_int_equal(h->nrunning, 1);
    uint64_t running_id = h->running[0].t.task_id;
    assert_int_equal(em_kernel_cancel_job(h->k, h->jobs[j].id, "user asked"),
                     EMBER_OK);
    h_run(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_ECANCELED);
    assert_non_null(strstr(h->jobs[j].message, "user asked"));
    assert_int_equal(h->nkilled, 1);
    assert_int_equal(h->killed[0], running_id);
    assert_int_equal(h->nrunning, 0);
    assert_int_equal(h->nlaunched, 1); /* the queued two never started */
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM jobs WHERE "
                                  "status='CANCELLED'"), 1);
    /* The slot is free again for other work. */
    int j2 = h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    h_finish_all(h);
    assert_int_equal(h->jobs[j2].status, EMBER_OK);
    h_free(h);
}

static void cancel_group_stops_only_that_group(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    int a = h_submit(h, PLAN_NARROW("3"), 1, NULL, "nightly");
    int b = h_submit(h, PLAN_NARROW("3"), 1, NULL, "nightly");
    int c = h_submit(h, PLAN_NARROW("3"), 1, NULL, "adhoc");
    assert_int_equal(em_kernel_cancel_group(h->k, h->app, "nightly", NULL),
                     EMBER_OK);
    h_run(h);
    assert_int_equal(h->jobs[a].status, EMBER_ECANCELED);
    assert_int_equal(h->jobs[b].status, EMBER_ECANCELED);
    assert_non_null(strstr(h->jobs[a].message, "job group nightly"));
    assert_false(h->jobs[c].ended);
    h_finish_all(h);
    assert_int_equal(h->jobs[c].status, EMBER_OK);
    assert_int_equal(h->jobs[c].results, 3);
    h_free(h);
}

static void hostile_plans_are_refused_and_kernel_keeps_running(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    int running = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    static const char *const bad[] = {
        "",
        "{",
        "[1,2,3]",
        "{\"ember_plan\":99,\"datasets\":[]}",
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"nope\","
        "\"partitions\":1}]}",
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"map\","
        "\"parents\":[1],\"fns\":[\"a.b\"]},{\"id\":1,\"op\":\"map\","
        "\"parents\":[0],\"fns\":[\"a.b\"]}]}",
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"map\","
        "\"parents\":[7],\"fns\":[\"a.b\"]}]}",
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"parallelize\","
        "\"partitions\":-1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        em_job_spec spec = {.app_id = h->app, .plan = bad[i],
                            .plan_len = strlen(bad[i]), .dataset = 0};
        ember_error err = {0};
        uint64_t id = 0;
        assert_int_not_equal(em_kernel_submit(h->k, &spec, &id, &err),
                             EMBER_OK);
        assert_true(strlen(err.msg) > 0);
    }
    /* A valid plan whose dataset is missing. */
    em_job_spec spec = {.app_id = h->app, .plan = PLAN_NARROW("2"),
                        .plan_len = strlen(PLAN_NARROW("2")), .dataset = 9};
    ember_error err = {0};
    uint64_t id;
    assert_int_equal(em_kernel_submit(h->k, &spec, &id, &err),
                     EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, "9"));
    h_run(h);
    h_finish_all(h);
    assert_int_equal(h->jobs[running].status, EMBER_OK);
    h_free(h);
}

static void bad_executor_messages_change_nothing(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    int e = h_exec_add(h, "host-a", 2);
    int j = h_submit(h, PLAN_NARROW("2"), 1, NULL, NULL);
    static const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
    h_send_raw(h, e, garbage, sizeof garbage);
    h_send_raw(h, e, "EMSG", 4);
    /* A kernel-to-executor message sent by an executor. */
    ember_buf b = ember_buf_heap();
    em_msg_shutdown sd = {.reason = {(const uint8_t *)"x", 1}};
    assert_int_equal(em_msg_encode_shutdown(&b, &sd), EMBER_OK);
    h_send_raw(h, e, b.data, b.len);
    ember_buf_release(&b);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.bad_messages, 3);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM events WHERE "
                                  "kind='bad_message'"), 3);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    h_free(h);
}

static void duplicate_executor_id_is_refused(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    /* A second connection claims exec-0's id. */
    h_exec *e = &h->execs[h->nexecs++];
    memset(e, 0, sizeof *e);
    e->h = h;
    snprintf(e->id, sizeof e->id, "exec-0");
    snprintf(e->host, sizeof e->host, "host-z");
    e->slots = 1;
    h_exec_connect(h, e);
    assert_true(e->refused);
    assert_false(e->registered);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.executors, 1);
    h_free(h);
}

static void lineage_description_marks_stage_boundaries(void **state)
{
    (void)state;
    char *text = NULL;
    ember_error err = {0};
    assert_int_equal(em_plan_describe(PLAN_CHAIN, strlen(PLAN_CHAIN), 4,
                                      &text, &err), EMBER_OK);
    assert_string_equal(text, "(2) group_by_key [4] []\n"
                              " +-(3) map_values [3] []\n"
                              "    |  reduce_by_key [2] []\n"
                              "    +-(4) map [1] []\n"
                              "       |  parallelize [0] []");
    free(text);
    assert_int_equal(em_plan_describe(PLAN_CHAIN, strlen(PLAN_CHAIN), 99,
                                      &text, &err), EMBER_ENOTFOUND);
    assert_null(text);
}

static void results_over_max_result_size_fail_the_job(void **state)
{
    (void)state;
    const char *conf[] = {"ember.driver.maxResultSize=5b", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 4);
    int j = h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    h_finish_all(h);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_ENOSPC);
    assert_non_null(strstr(h->jobs[j].message,
                           "ember.driver.maxResultSize"));
    assert_int_equal(h->jobs[j].results, 2); /* 2 + 2 bytes fit, 6 not */
    h_free(h);
}

static void send_to(void *ctx, const uint8_t *msg, size_t len)
{
    (void)msg;
    (void)len;
    (*(int *)ctx)++;
}

static void status_before_register_is_refused(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    int sent = 0;
    uint64_t conn;
    assert_int_equal(em_kernel_conn_open(h->k, send_to, NULL, &sent, &conn),
                     EMBER_OK);
    em_msg_update u = {.task_id = 1, .state = EM_TASK_FINISHED};
    ember_buf b = ember_buf_heap();
    em_msg_batch batch;
    assert_int_equal(em_msg_status_begin(&batch, &b), EMBER_OK);
    assert_int_equal(em_msg_status_add(&batch, &u), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&batch), EMBER_OK);
    assert_int_equal(em_kernel_conn_recv(h->k, conn, b.data, b.len),
                     EMBER_OK);
    /* A message on a connection that was never opened. */
    assert_int_equal(em_kernel_conn_recv(h->k, 9999, b.data, b.len),
                     EMBER_OK);
    ember_buf_release(&b);
    h_run(h);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.bad_messages, 2);
    assert_int_equal(sent, 0);
    assert_int_equal(em_kernel_conn_close(h->k, conn, "bye"), EMBER_OK);
    h_run(h);
    h_free(h);
}

/* A map task that returns something other than a map status failed; it
 * is retried and, failing every time, fails its job with the reason. */
static void garbage_map_status_fails_the_task(void **state)
{
    (void)state;
    const char *conf[] = {"ember.task.maxFailures=2", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 4);
    int j = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t map_stage = h->running[0].t.stage_id;
    int m0 = h_find(h, map_stage, 0);
    h_finish_with(h, (size_t)m0, "junk", 4);
    assert_false(h->jobs[j].ended);
    m0 = h_find(h, map_stage, 0);
    assert_true(m0 >= 0);
    assert_int_equal(h->running[m0].t.attempt, 1);
    h_finish_with(h, (size_t)m0, "junk", 4);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_EPLUGIN);
    assert_non_null(strstr(h->jobs[j].message, "map status is invalid"));
    assert_int_equal(em_kernel_shuffle_available(h->k, 1), 0);
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_cuts_three_stages_parents_first),
        cmocka_unit_test(diamond_runs_independent_stages_in_parallel),
        cmocka_unit_test(later_jobs_reuse_available_shuffle_output),
        cmocka_unit_test(redefined_dataset_id_is_refused),
        cmocka_unit_test(fetch_failure_reruns_only_lost_map_outputs),
        cmocka_unit_test(indeterminate_map_stage_reruns_whole),
        cmocka_unit_test(indeterminate_rerun_after_results_fails_job),
        cmocka_unit_test(repeated_fetch_failures_abort_after_max_attempts),
        cmocka_unit_test(lost_executor_outputs_rebuilt_from_lineage),
        cmocka_unit_test(task_failing_max_times_fails_job_with_its_message),
        cmocka_unit_test(failures_spread_over_tasks_do_not_fail_job),
        cmocka_unit_test(local_mode_single_failure_fails_job),
        cmocka_unit_test(cancel_kills_running_and_never_starts_queued),
        cmocka_unit_test(cancel_group_stops_only_that_group),
        cmocka_unit_test(hostile_plans_are_refused_and_kernel_keeps_running),
        cmocka_unit_test(bad_executor_messages_change_nothing),
        cmocka_unit_test(duplicate_executor_id_is_refused),
        cmocka_unit_test(lineage_description_marks_stage_boundaries),
        cmocka_unit_test(results_over_max_result_size_fail_the_job),
        cmocka_unit_test(status_before_register_is_refused),
        cmocka_unit_test(garbage_map_status_fails_the_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
