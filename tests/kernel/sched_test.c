/*
 * Task scheduler tests through the whole kernel: FIFO and FAIR order,
 * weights, minShare, maxShare and nested pools from a fairscheduler.xml,
 * speculation with one committed attempt per partition, and settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "plans.h"

/* Which job each launch belonged to, as a string like "AABB". */
static void launch_order(harness *h, size_t from, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = from; i < h->nlaunched && n + 1 < cap; i++) {
        char c = '?';
        for (int j = 0; j < h->njobs; j++)
            if (h->jobs[j].id == h->launched[i].job_id)
                c = (char)('A' + j);
        out[n++] = c;
    }
    out[n] = '\0';
}

/* Finishes the oldest running task, one at a time, until none is left. */
static void drain_one_by_one(harness *h)
{
    for (int guard = 0; h->nrunning > 0 && guard < 1000; guard++)
        h_finish(h, 0);
}

static void fifo_runs_jobs_in_submission_order(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    h_submit(h, PLAN_NARROW("3"), 1, "ignored-in-fifo", NULL);
    h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    drain_one_by_one(h);
    char order[32];
    launch_order(h, 0, order, sizeof order);
    assert_string_equal(order, "AAABBB");
    h_free(h);
}

static void fair_default_pool_shares_between_jobs(void **state)
{
    (void)state;
    const char *conf[] = {"ember.scheduler.mode=FAIR", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 2);
    h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    h_submit(h, PLAN_NARROW("3"), 1, NULL, NULL);
    drain_one_by_one(h);
    char order[32];
    launch_order(h, 0, order, sizeof order);
    /* Spark's default pool is FIFO (AAABBB); ember's is fair: each freed
     * slot goes to the job with fewer running tasks. */
    assert_string_equal(order, "AABABB");
    h_free(h);
}

/* Writes xml to a new temporary file; path receives its name. */
static void write_alloc(char *path, size_t cap, const char *xml)
{
    snprintf(path, cap, "/tmp/ember-fairscheduler-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(xml, f);
    fclose(f);
}

/* A harness in FAIR mode with the given allocation file. */
static harness *fair_with(const char *xml)
{
    char path[64], conf_file[128];
    write_alloc(path, sizeof path, xml);
    snprintf(conf_file, sizeof conf_file,
             "ember.scheduler.allocation.file=%s", path);
    const char *conf[] = {"ember.scheduler.mode=FAIR", conf_file, NULL};
    harness *h = h_new(conf);
    unlink(path);
    return h;
}

static const char *const POOLS_XML =
    "<?xml version=\"1.0\"?>\n"
    "<allocations>\n"
    "  <pool name=\"heavy\"><schedulingMode>FAIR</schedulingMode>"
    "<weight>2</weight><minShare>0</minShare></pool>\n"
    "  <pool name=\"light\"><weight>1</weight></pool>\n"
    "  <pool name=\"prod\"><weight>1</weight><minShare>2</minShare></pool>\n"
    "  <pool name=\"dev\"><weight>10</weight></pool>\n"
    "  <pool name=\"capped\"><maxShare>1</maxShare></pool>\n"
    "  <pool name=\"team\"><schedulingMode>FAIR</schedulingMode>"
    "<maxShare>2</maxShare>\n"
    "    <pool name=\"team-a\"/>\n"
    "    <pool name=\"team-b\"/>\n"
    "  </pool>\n"
    "</allocations>\n";

static uint32_t running_of(harness *h, int job)
{
    uint32_t n = 0;
    for (size_t i = 0; i < h->nrunning; i++)
        n += h->running[i].t.job_id == h->jobs[job].id;
    return n;
}

static void fair_weights_share_slots_two_to_one(void **state)
{
    (void)state;
    harness *h = fair_with(POOLS_XML);
    h_submit(h, PLAN_NARROW("12"), 1, "heavy", NULL);
    h_submit(h, PLAN_NARROW("12"), 1, "light", NULL);
    h_exec_add(h, "host-a", 6);
    assert_int_equal(running_of(h, 0), 4);
    assert_int_equal(running_of(h, 1), 2);
    /* Shares hold as slots free up one by one. */
    for (int k = 0; k < 6; k++)
        h_finish(h, 0);
    assert_int_equal(running_of(h, 0), 4);
    assert_int_equal(running_of(h, 1), 2);
    assert_int_equal(h_sql_int(h, "SELECT weight FROM pools WHERE "
                                  "name='heavy'"), 2);
    h_free(h);
}

static void fair_min_share_serves_needy_pool_first(void **state)
{
    (void)state;
    harness *h = fair_with(POOLS_XML);
    h_exec_add(h, "host-a", 3);
    h_submit(h, PLAN_NARROW("12"), 1, "dev", NULL);
    assert_int_equal(running_of(h, 0), 3);
    h_submit(h, PLAN_NARROW("12"), 1, "prod", NULL);
    assert_int_equal(running_of(h, 1), 0);
    /* prod is below its minShare of 2: it gets the next two slots even
     * though dev's weight is ten times higher. */
    h_finish(h, 0);
    h_finish(h, 0);
    assert_int_equal(running_of(h, 1), 2);
    h_finish(h, 0);
    assert_int_equal(running_of(h, 1), 2);
    h_free(h);
}

static void max_share_caps_a_pool_with_free_slots(void **state)
{
    (void)state;
    harness *h = fair_with(POOLS_XML);
    h_submit(h, PLAN_NARROW("4"), 1, "capped", NULL);
    h_exec_add(h, "host-a", 4);
    /* Alone in the cluster, capped still runs one task at a time. */
    assert_int_equal(running_of(h, 0), 1);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.free_slots, 3);
    h_submit(h, PLAN_NARROW("4"), 1, NULL, NULL);
    assert_int_equal(running_of(h, 0), 1);
    assert_int_equal(running_of(h, 1), 3);
    h_finish_all(h);
    assert_int_equal(h->jobs[0].status, EMBER_OK);
    assert_int_equal(h->jobs[1].status, EMBER_OK);
    h_free(h);
}

static void nested_pools_share_their_parent_cap(void **state)
{
    (void)state;
    harness *h = fair_with(POOLS_XML);
    h_submit(h, PLAN_NARROW("4"), 1, "team-a", NULL);
    h_submit(h, PLAN_NARROW("4"), 1, "team-b", NULL);
    h_submit(h, PLAN_NARROW("4"), 1, NULL, NULL);
    h_exec_add(h, "host-a", 6);
    /* team (maxShare 2) splits its two slots fairly; default takes 4. */
    assert_int_equal(running_of(h, 0), 1);
    assert_int_equal(running_of(h, 1), 1);
    assert_int_equal(running_of(h, 2), 4);
    h_free(h);
}

static void bad_settings_are_refused_with_their_key(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"ember.scheduler.mode=ROUNDROBIN", "ember.scheduler.mode"},
        {"ember.task.maxFailures=0", "ember.task.maxFailures"},
        {"ember.speculation.quantile=2", "ember.speculation.quantile"},
        {"ember.locality.wait=soon", "ember.locality.wait"},
        {"ember.speculation=maybe", "ember.speculation"},
        {"ember.executor.heartbeatTimeout=18446744073709552",
         "ember.executor.heartbeatTimeout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *conf[] = {cases[i][0], NULL};
        harness *h = NULL;
        ember_error err = {0};
        assert_int_equal(h_try_new(conf, &h, &err), EMBER_EINVAL);
        assert_null(h);
        assert_non_null(strstr(err.msg, cases[i][1]));
    }
    /* A broken allocation file is refused with its line. */
    char path[64], conf_file[128];
    write_alloc(path, sizeof path, "<allocations>\n<pool name=\"a\">\n"
                                   "<weight>heavy</weight></pool>\n"
                                   "</allocations>\n");
    snprintf(conf_file, sizeof conf_file,
             "ember.scheduler.allocation.file=%s", path);
    const char *conf[] = {"ember.scheduler.mode=FAIR", conf_file, NULL};
    harness *h = NULL;
    ember_error err = {0};
    assert_int_not_equal(h_try_new(conf, &h, &err), EMBER_OK);
    assert_non_null(strstr(err.msg, ":3"));
    unlink(path);
}

static void speculation_copies_slow_task_and_commits_once(void **state)
{
    (void)state;
    const char *conf[] = {"ember.speculation=true",
                          "ember.speculation.quantile=0.5",
                          "ember.speculation.multiplier=1.5",
                          "ember.speculation.minTaskRuntime=100ms",
                          "ember.speculation.interval=100ms", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 2);
    h_exec_add(h, "host-b", 2);
    int j = h_submit(h, PLAN_NARROW("4"), 1, NULL, NULL);
    assert_int_equal(h->nrunning, 4);
    h_advance(h, 10000);
    /* Three finish fast; partition 3 hangs. */
    for (uint32_t p = 0; p < 3; p++)
        h_finish(h, (size_t)h_find(h, h->running[0].t.stage_id, p));
    assert_int_equal(h->nrunning, 1);
    int slow_exec = h->running[0].exec;
    h_advance(h, 50000);
    assert_int_equal(h->nrunning, 1); /* not slow enough yet */
    h_advance(h, 200000);
    assert_int_equal(h->nrunning, 2);
    const h_task *copy = &h->running[1];
    assert_true(copy->t.speculative);
    assert_int_equal(copy->t.partition, 3);
    assert_int_not_equal(copy->exec, slow_exec);
    /* Both attempts ask to commit: only the first may. */
    h_task first = h->running[1], second = h->running[0];
    h_commit_ask(h, &first);
    h_commit_ask(h, &second);
    assert_int_equal(h->commit_replies, 2);
    assert_int_equal(h->commit_allowed, 1);
    h_commit_ask(h, &first); /* asking again is idempotent */
    assert_int_equal(h->commit_allowed, 2);
    /* The copy wins: the original is killed, one result per partition. */
    h_finish(h, 1);
    assert_int_equal(h->nkilled, 1);
    assert_int_equal(h->killed[0], second.t.task_id);
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->jobs[j].results, 4);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.speculative_launched, 1);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "speculative=1"), 1);
    h_free(h);
}

static void no_speculation_unless_enabled(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    h_exec_add(h, "host-b", 2);
    h_submit(h, PLAN_NARROW("4"), 1, NULL, NULL);
    for (uint32_t p = 0; p < 3; p++)
        h_finish(h, (size_t)h_find(h, h->running[0].t.stage_id, p));
    h_advance(h, 10000000);
    assert_int_equal(h->nrunning, 1);
    h_free(h);
}

/* Four partitions that all prefer host-a. */
#define PLAN_ON_HOST_A                                                      \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4,\"args\":"         \
    "{\"locations\":[[\"host-a\"],[\"host-a\"],[\"host-a\"],"               \
    "[{\"host\":\"host-a\",\"executor\":\"exec-0\"}]]}},"                   \
    "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"std.identity\"]}]}"

static void delay_scheduling_waits_then_uses_idle_slots(void **state)
{
    (void)state;
    const char *conf[] = {"ember.locality.wait=1s", NULL};
    harness *h = h_new(conf);
    h_exec_add(h, "host-a", 1);
    h_exec_add(h, "host-b", 1);
    int j = h_submit(h, PLAN_ON_HOST_A, 1, NULL, NULL);
    /* Only host-a runs work at first; host-b's slot waits for locality. */
    assert_int_equal(h->nrunning, 1);
    assert_int_equal(h->running[0].exec, 0);
    h_advance(h, 500000);
    assert_int_equal(h->nrunning, 1);
    /* After the wait, the idle slot on host-b takes a task. */
    h_advance(h, 600000);
    assert_int_equal(h->nrunning, 2);
    assert_int_equal(h->running[1].exec, 1);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_true(st.launched_node_local + st.launched_process_local == 1);
    assert_int_equal(st.launched_any, 1);
    assert_true(st.locality_idle_slot_us >= 1000000);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.tasks_succeeded, 4);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE "
                                  "locality='ANY'"), (int64_t)st.launched_any);
    h_free(h);
}

static void preferred_executor_gets_its_task_at_once(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 4);
    h_submit(h, PLAN_ON_HOST_A, 1, NULL, NULL);
    assert_int_equal(h->nrunning, 4);
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    assert_int_equal(st.launched_process_local, 1);
    assert_int_equal(st.launched_node_local, 3);
    assert_int_equal(st.launched_any, 0);
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_runs_jobs_in_submission_order),
        cmocka_unit_test(fair_default_pool_shares_between_jobs),
        cmocka_unit_test(fair_weights_share_slots_two_to_one),
        cmocka_unit_test(fair_min_share_serves_needy_pool_first),
        cmocka_unit_test(max_share_caps_a_pool_with_free_slots),
        cmocka_unit_test(nested_pools_share_their_parent_cap),
        cmocka_unit_test(bad_settings_are_refused_with_their_key),
        cmocka_unit_test(speculation_copies_slow_task_and_commits_once),
        cmocka_unit_test(no_speculation_unless_enabled),
        cmocka_unit_test(delay_scheduling_waits_then_uses_idle_slots),
        cmocka_unit_test(preferred_executor_gets_its_task_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
