/*
 * locality_test.c — where cached blocks live and tasks that run there
 * (issue 6: the kernel tracks blocks; docs/engine.md "Persistence"), with
 * executor processes (local-cluster[2,1,512]):
 *
 *   - a dataset persisted MEMORY_ONLY in 4 partitions and counted: the
 *     state store's `blocks` table has one row per partition (the executor
 *     holding it, tier MEMORY, its size); a second count gives the same
 *     number, computes nothing (testfn.counted_file, which appends each
 *     batch's record count to a file, wrote no more) and runs every task
 *     on the executor holding its partition's block, at PROCESS_LOCAL;
 *   - SIGKILL of an executor holding blocks: its rows go, the next count
 *     is right and computes exactly the partitions it held (1000 records
 *     each), their new locations are recorded; unpersist removes every
 *     row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/ember.h"
#include "shuffle_support.h"

#define APP "locality_test"
#define N 4000
#define PARTS 4

/* Waits a task may hold back for its block's executor: long, so that a
 * task never runs elsewhere because an executor was slow to ask. */
static const char *const extra[] = {"ember.locality.wait=30s", NULL};

static void test_second_job_runs_where_blocks_are(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    sess_open(&x, APP, "local-cluster[2,1,512]", extra);
    char path[512];
    snprintf(path, sizeof path, "%s/counted", x.dir);
    ember_rdd *m = counted_file_range(x.s, path, N, PARTS, "MEMORY_ONLY");
    uint64_t ds = ember_rdd_id(m);
    assert_int_equal(count_of(m), N);
    assert_int_equal(counted_file_total(path), N);
    store_settle(&x);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM blocks WHERE "
                                "dataset = %" PRIu64, ds),
                     PARTS);
    assert_int_equal(db_int(&x, "SELECT count(DISTINCT partition) FROM "
                                "blocks WHERE dataset = %" PRIu64 " AND "
                                "tier = 'MEMORY' AND bytes > 0",
                            ds),
                     PARTS);
    /* each block is where the task that computed it ran */
    assert_int_equal(db_int(&x, "SELECT count(*) FROM blocks b JOIN tasks t "
                                "ON t.partition = b.partition AND "
                                "t.executor_id = b.executor_id AND "
                                "t.status = 'SUCCESS'"),
                     PARTS);

    assert_int_equal(count_of(m), N);
    if (counted_file_total(path) != N)
        fail_msg("the cached dataset was computed again: %" PRId64
                 " records mapped, want %d", counted_file_total(path), N);
    store_settle(&x);
    int64_t stage = db_int(&x, "SELECT max(stage_id) FROM stage_attempts");
    assert_int_equal(db_int(&x, "SELECT count(*) FROM tasks WHERE "
                                "stage_id = %" PRId64, stage),
                     PARTS);
    for (int p = 0; p < PARTS; p++) {
        char sql[300], holder[64], ran[64], loc[32];
        snprintf(sql, sizeof sql, "SELECT executor_id FROM blocks WHERE "
                 "dataset = %" PRIu64 " AND partition = %d", ds, p);
        db_text(&x, holder, sizeof holder, sql);
        snprintf(sql, sizeof sql, "SELECT executor_id FROM tasks WHERE "
                 "stage_id = %" PRId64 " AND partition = %d", stage, p);
        db_text(&x, ran, sizeof ran, sql);
        snprintf(sql, sizeof sql, "SELECT locality FROM tasks WHERE "
                 "stage_id = %" PRId64 " AND partition = %d", stage, p);
        db_text(&x, loc, sizeof loc, sql);
        if (strcmp(holder, ran) != 0 || strcmp(loc, "PROCESS_LOCAL") != 0)
            fail_msg("partition %d: its block is on '%s', its task ran on "
                     "'%s' at %s", p, holder, ran, loc);
    }
    sess_close(&x);
}

static void test_rows_go_with_executor_and_unpersist(void **state)
{
    (void)state;
    static sess x;
    sess_open(&x, APP, "local-cluster[2,1,512]", extra);
    char path[512], sql[300], victim[64];
    snprintf(path, sizeof path, "%s/counted", x.dir);
    ember_rdd *m = counted_file_range(x.s, path, N, PARTS, "MEMORY_ONLY");
    uint64_t ds = ember_rdd_id(m);
    assert_int_equal(count_of(m), N);
    store_settle(&x);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM blocks"), PARTS);
    db_text(&x, victim, sizeof victim,
            "SELECT executor_id FROM blocks WHERE partition = 0");
    assert_true(victim[0] != '\0');
    int64_t held = kill_block_holder(&x, victim);
    assert_true(held <= PARTS);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM blocks WHERE "
             "executor_id = '%s'", victim);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM blocks"),
                     PARTS - held);

    /* right, and only what it held is computed again */
    assert_int_equal(count_of(m), N);
    int64_t again = counted_file_total(path) - N;
    if (again != held * (N / PARTS))
        fail_msg("after losing %" PRId64 " blocks, %" PRId64 " records were "
                 "mapped again, want %" PRId64, held, again,
                 held * (N / PARTS));
    store_settle(&x);
    wait_rows(&x, PARTS, "blocks after recomputing",
              "SELECT count(DISTINCT partition) FROM blocks");
    assert_int_equal(db_int(&x, "%s", sql), 0);

    ember_error err = {0};
    assert_int_equal(ember_unpersist(m, &err), EMBER_OK);
    char gone[120];
    snprintf(gone, sizeof gone, "SELECT count(*) FROM blocks WHERE "
             "dataset = %" PRIu64, ds);
    wait_rows(&x, 0, "blocks after unpersist", gone);
    sess_close(&x);
}

/* A test whose sessions are closed even when it fails. */
#define T(f) cmocka_unit_test_teardown(f, close_live)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_second_job_runs_where_blocks_are),
        T(test_rows_go_with_executor_and_unpersist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
