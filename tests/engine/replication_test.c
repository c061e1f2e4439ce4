/*
 * replication_test.c — the _2 and _3 storage levels keep each cached block
 * on 2 (3) executors (issue 6; docs/engine.md "Persistence"), with
 * executor processes (local-cluster[3,1,512]):
 *
 *   - a dataset persisted MEMORY_ONLY_2 (DISK_ONLY_2, DISK_ONLY_3) in 4
 *     partitions and counted: the state store's `blocks` table comes to
 *     hold every partition on exactly 2 (3) distinct executors, in the
 *     level's tier (copies are made after the job, so the test polls);
 *   - SIGKILL of the executor holding the most blocks: its rows go, and
 *     the next count is right and computes nothing (testfn.counted_file,
 *     which appends each batch's record count to a file, wrote no more):
 *     every partition was read from a surviving copy;
 *   - on local[2] (one in-process executor) MEMORY_ONLY_2 keeps one copy
 *     of each partition and a second count computes nothing either.
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

#define APP "replication_test"
#define N 4000
#define PARTS 4

/* Waits a task may hold back for its block's executor: long, so that a
 * task never runs elsewhere because an executor was slow to ask. */
static const char *const extra[] = {"ember.locality.wait=30s", NULL};

/* Persists at level on local-cluster[3,1,512], counts, waits for `copies`
 * executors per partition in `tier`, kills the executor holding most
 * blocks and counts again: right, and nothing computed again. */
static void replicate_then_kill(const char *level, int copies,
                                const char *tier)
{
    static sess x; /* static: see sess_open */
    sess_open(&x, APP, "local-cluster[3,1,512]", extra);
    char path[512], sql[400];
    snprintf(path, sizeof path, "%s/counted", x.dir);
    ember_rdd *m = counted_file_range(x.s, path, N, PARTS, level);
    uint64_t ds = ember_rdd_id(m);
    /* copies go to the executors registered when a block is stored (as
     * Spark's peers): start once all three are */
    wait_rows(&x, 3, "executors registered", "SELECT count(*) FROM "
              "executors WHERE status = 'ACTIVE'");
    assert_int_equal(count_of(m), N);
    assert_int_equal(counted_file_total(path), N);

    /* every partition on `copies` distinct executors, in the tier */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT partition FROM "
             "blocks WHERE dataset = %" PRIu64 " AND tier = '%s' AND bytes "
             "> 0 GROUP BY partition HAVING count(DISTINCT executor_id) = "
             "%d)", ds, tier, copies);
    wait_rows(&x, PARTS, "partitions with every copy", sql);
    /* and no more rows than that */
    assert_int_equal(db_int(&x, "SELECT count(*) FROM blocks WHERE "
                                "dataset = %" PRIu64, ds),
                     PARTS * copies);
    /* copies are made, not computed */
    assert_int_equal(counted_file_total(path), N);

    char victim[64];
    db_text(&x, victim, sizeof victim,
            "SELECT executor_id FROM blocks GROUP BY executor_id "
            "ORDER BY count(*) DESC, executor_id LIMIT 1");
    assert_true(victim[0] != '\0');
    int64_t held = kill_block_holder(&x, victim);
    assert_true(held <= PARTS);
    assert_int_equal(db_int(&x, "SELECT count(DISTINCT partition) FROM "
                                "blocks WHERE dataset = %" PRIu64, ds),
                     PARTS);

    assert_int_equal(count_of(m), N);
    if (counted_file_total(path) != N)
        fail_msg("%s: after losing executor %s (%" PRId64 " blocks), %"
                 PRId64 " records were mapped again, want 0", level, victim,
                 held, counted_file_total(path) - N);
    sess_close(&x);
}

static void test_memory_only_2(void **state)
{
    (void)state;
    replicate_then_kill("MEMORY_ONLY_2", 2, "MEMORY");
}

static void test_disk_only_2(void **state)
{
    (void)state;
    replicate_then_kill("DISK_ONLY_2", 2, "DISK");
}

static void test_disk_only_3(void **state)
{
    (void)state;
    replicate_then_kill("DISK_ONLY_3", 3, "DISK");
}

/* One executor: one copy, and the level still caches. */
static void test_one_executor_keeps_one_copy(void **state)
{
    (void)state;
    static sess x;
    sess_open(&x, APP, "local[2]", NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/counted", x.dir);
    ember_rdd *m = counted_file_range(x.s, path, N, PARTS, "MEMORY_ONLY_2");
    uint64_t ds = ember_rdd_id(m);
    assert_int_equal(count_of(m), N);
    assert_int_equal(count_of(m), N);
    if (counted_file_total(path) != N)
        fail_msg("the cached dataset was computed again: %" PRId64
                 " records mapped, want %d", counted_file_total(path), N);
    store_settle(&x);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM blocks WHERE "
                                "dataset = %" PRIu64 " AND tier = 'MEMORY'",
                            ds),
                     PARTS);
    assert_int_equal(db_int(&x, "SELECT count(DISTINCT partition) FROM "
                                "blocks WHERE dataset = %" PRIu64, ds),
                     PARTS);
    sess_close(&x);
}

/* A test whose sessions are closed even when it fails. */
#define T(f) cmocka_unit_test_teardown(f, close_live)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_memory_only_2),
        T(test_disk_only_2),
        T(test_disk_only_3),
        T(test_one_executor_keeps_one_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
