/*
 * shuffle_fault_test.c — shuffles under pressure and failure, with
 * executors that are processes (local-cluster[2,1,512]):
 *
 *   - spilling: ember.shuffle.memory at its minimum (64k) with megabytes
 *     shuffled by group_by_key and sort_by_key still gives the exact
 *     answer (and on local[2], where the executors share this process,
 *     the sort manager's spill counter shows that it spilled);
 *   - a committed shuffle file corrupted on disk between two jobs is
 *     detected when read, the map task that wrote it runs again, and the
 *     second job's answer is right (both shuffle managers);
 *   - SIGKILL of an executor holding map output while a slow reduce stage
 *     runs: the answer is right and only the map tasks whose output died
 *     with it run again.
 *
 * What ran is read from the session's state store (SQLite, in the
 * session's directory under ember.local.dir, a temp dir per test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ember/ember.h"
#include "ember/kernel/host.h"
#include "ember/record.h"
#include "shuffle_support.h"

/* ---- the state store --------------------------------------------------- */

#define APP "shuffle_fault_test"

/* The one shuffle-map stage of the session's jobs. */
static int64_t map_stage(const sess *x)
{
    assert_int_equal(db_int(x, "SELECT count(DISTINCT stage_id) FROM "
                               "stage_attempts WHERE kind = 'shuffle_map'"),
                     1);
    return db_int(x, "SELECT stage_id FROM stage_attempts WHERE kind = "
                     "'shuffle_map'");
}

/* Successful attempts of map task p of stage. */
static int64_t map_successes(const sess *x, int64_t stage, int64_t p)
{
    return db_int(x, "SELECT count(*) FROM tasks WHERE stage_id = %" PRId64
                     " AND partition = %" PRId64 " AND status = 'SUCCESS'",
                  stage, p);
}

/* ---- data -------------------------------------------------------------- */

/* (i mod m, i) for i in [0, n), in `slices` partitions. */
static ember_rdd *keyed_range(ember_session *s, int64_t n, int64_t m,
                              uint32_t slices)
{
    ember_error err = {0};
    uint8_t arg[16];
    ember_rdd *r = ember_range(s, 0, n, 1, slices, &err);
    assert_non_null(r);
    ember_rdd *k = ember_key_by(r, fn_int("testfn.key_mod", arg, sizeof arg,
                                          m),
                                &err);
    if (!k)
        fail_msg("key_by: %s", err.msg);
    return k;
}

/* ---- spilling ---------------------------------------------------------- */

#define SPILL_N 400000
#define SPILL_M 5000

/* group_by_key of keyed_range(SPILL_N, SPILL_M): every i exactly once, in
 * the group of i mod SPILL_M. */
static void check_groups(const ember_records *got)
{
    assert_int_equal(got->count, SPILL_M);
    char *seen = calloc(SPILL_N, 1);
    assert_non_null(seen);
    ember_batch_cursor c = records_cursor(got);
    ember_value k, t, v = {0};
    uint64_t total = 0;
    while (next_pair(&c, &k, &t)) {
        assert_int_equal(t.type, EMBER_TYPE_TUPLE);
        ember_rec_cursor tc = ember_rec_tuple_cursor(&t);
        while (ember_rec_next(&tc, &v) == EMBER_OK) {
            assert_int_equal(v.type, EMBER_TYPE_INT);
            assert_true(v.u.i64 >= 0 && v.u.i64 < SPILL_N);
            assert_int_equal(v.u.i64 % SPILL_M, k.u.i64);
            assert_false(seen[v.u.i64]);
            seen[v.u.i64] = 1;
            total++;
        }
    }
    assert_int_equal(total, SPILL_N);
    free(seen);
}

/* sort_by_key of the same: keys in order (descending when desc), every i
 * exactly once. */
static void check_sorted(const ember_records *got, int desc)
{
    assert_int_equal(got->count, SPILL_N);
    char *seen = calloc(SPILL_N, 1);
    assert_non_null(seen);
    ember_batch_cursor c = records_cursor(got);
    ember_value k, v;
    int64_t prev = desc ? INT64_MAX : -1;
    while (next_pair(&c, &k, &v)) {
        assert_true(desc ? k.u.i64 <= prev : k.u.i64 >= prev);
        prev = k.u.i64;
        assert_true(v.u.i64 >= 0 && v.u.i64 < SPILL_N);
        assert_int_equal(v.u.i64 % SPILL_M, k.u.i64);
        assert_false(seen[v.u.i64]);
        seen[v.u.i64] = 1;
    }
    free(seen);
}

static void spill_run(const char *master, const char *codec)
{
    char c2[64];
    snprintf(c2, sizeof c2, "ember.io.compression.codec=%s", codec);
    /* no bypass: the map side takes the sort path, which spills */
    const char *conf[] = {"ember.shuffle.memory=64k", c2,
                          "ember.shuffle.compress=true",
                          "ember.shuffle.sort.bypassMergeThreshold=0", NULL};
    static sess x; /* static: see sess_open */
    sess_open(&x, APP, master, conf);
    ember_error err = {0};
    /* 400k pairs, about 4 MB in records, in 4 map tasks */
    ember_rdd *pairs = keyed_range(x.s, SPILL_N, SPILL_M, 4);
    ember_records got = collect_recs(ember_group_by_key(pairs, NULL, &err));
    check_groups(&got);
    ember_records_free(&got);
    ember_rdd *sorted = ember_sort_by_key(pairs, 1, 0, &err);
    if (!sorted)
        fail_msg("sort_by_key: %s", err.msg);
    /* the reduce side too holds more than 64k: its sort spills sorted runs
     * and merges them, in either direction */
    got = collect_recs(sorted);
    check_sorted(&got, 0);
    ember_records_free(&got);
    sorted = ember_sort_by_key(pairs, 0, 0, &err);
    if (!sorted)
        fail_msg("sort_by_key: %s", err.msg);
    got = collect_recs(sorted);
    check_sorted(&got, 1);
    ember_records_free(&got);
    sess_close(&x);
}

static void test_spill_local_cluster(void **state)
{
    (void)state;
    spill_run("local-cluster[2,1,512]", "lz4");
}

/* On local[2] the executors run in this process: the sort manager's spill
 * counter shows the spills happened. */
static void test_spill_counted_local(void **state)
{
    (void)state;
    int64_t before = 0, after = 0;
    em_host_counter_value("shuffle.sort.spills", &before);
    spill_run("local[2]", "none");
    assert_int_equal(em_host_counter_value("shuffle.sort.spills", &after),
                     EMBER_OK);
    /* 4 MB through 64k buffers: many spills per map task */
    if (after - before < 8)
        fail_msg("only %" PRId64 " spills", after - before);
}

/* ---- a corrupted shuffle file ------------------------------------------ */

/* find_largest's search: the largest so far. */
typedef struct largest {
    const char *want;
    char *out;
    size_t cap;
    off_t *best;
} largest;

static int bigger(const char *path, const struct stat *st, void *ctx)
{
    largest *l = ctx;
    if (S_ISREG(st->st_mode) && strstr(path, l->want) &&
        !strstr(path, ".tmp") && st->st_size > *l->best) {
        *l->best = st->st_size;
        snprintf(l->out, l->cap, "%s", path);
    }
    return 0;
}

/* Finds under dir (recursively) the largest regular file whose path
 * contains want; its path into out. */
static void find_largest(const char *dir, const char *want, char *out,
                         size_t cap, off_t *best)
{
    largest l = {want, out, cap, best};
    walk_files(dir, bigger, &l);
}

/* Flips the bits of a few bytes in the middle of path. */
static void corrupt(const char *path)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 64);
    long at[] = {size / 3, size / 2, size * 2 / 3};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(fseek(f, at[i], SEEK_SET), 0);
        int c = fgetc(f);
        assert_true(c != EOF);
        assert_int_equal(fseek(f, at[i], SEEK_SET), 0);
        assert_int_not_equal(fputc(c ^ 0xff, f), EOF);
    }
    assert_int_equal(fclose(f), 0);
}

/* Two jobs over one shuffle with manager; between them the committed file
 * of map task map_index ("<dir>/map_<m><suffix>") is corrupted. */
static void corrupt_run(const char *manager, const char *suffix,
                        int64_t map_index)
{
    char c1[64];
    snprintf(c1, sizeof c1, "ember.shuffle.manager=%s", manager);
    const char *conf[] = {c1, NULL};
    static sess x; /* static: see sess_open */
    sess_open(&x, APP, "local-cluster[2,1,512]", conf);
    ember_error err = {0};
    ember_partitioner hp = {.kind = EMBER_PART_HASH, .partitions = 3};
    /* group_by_key keeps every value in the blocks (no map-side
     * combine): 60000 records */
    ember_rdd *pairs = keyed_range(x.s, 60000, 100, 4);
    ember_rdd *red = ember_group_by_key(pairs, &hp, &err);
    assert_non_null(red);
    ember_records got = collect_recs(red);
    check_mod_sums(&got, 60000, 100);
    ember_records_free(&got);
    store_settle(&x);
    int64_t stage = map_stage(&x);
    assert_int_equal(map_successes(&x, stage, map_index), 1);

    /* corrupt map_index's committed output under its executor's shuffle
     * directory */
    char path[1024] = "", want[64];
    off_t best = 0;
    snprintf(want, sizeof want, "/map_%" PRId64 "%s", map_index, suffix);
    find_largest(x.dir, want, path, sizeof path, &best);
    if (!path[0])
        fail_msg("no shuffle file matching '%s' under %s", want, x.dir);
    corrupt(path);

    /* the second job reads the shuffle again: the corrupt block is
     * detected, the map task runs again, the answer is right */
    got = collect_recs(red);
    check_mod_sums(&got, 60000, 100);
    ember_records_free(&got);
    store_settle(&x);
    assert_int_equal(map_stage(&x), stage);
    int64_t reran = map_successes(&x, stage, map_index);
    if (reran < 2)
        fail_msg("map task %" PRId64 " ran %" PRId64 " time(s) after its "
                 "output (%s) was corrupted",
                 map_index, reran, path);
    sess_close(&x);
}

static void test_corrupt_block_sort(void **state)
{
    (void)state;
    /* the sort manager: map_<m>.data */
    corrupt_run("sort", ".data", 1);
}

static void test_corrupt_block_hash(void **state)
{
    (void)state;
    /* the hash manager: map_<m>/part_<r> */
    corrupt_run("hash", "/part_", 2);
}

/* ---- an executor killed mid-job ---------------------------------------- */

#define KILL_N 40000
#define KILL_M 60
#define KILL_MAPS 6

static void test_kill_executor_with_map_output(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    sess_open(&x, APP, "local-cluster[2,1,512]", NULL);
    ember_error err = {0};
    uint8_t arg[16];
    ember_partitioner hp = {.kind = EMBER_PART_HASH, .partitions = 6};
    /* a quick map stage, then six reduce tasks of ~1 s each on two
     * one-slot executors: three waves */
    ember_rdd *pairs = keyed_range(x.s, KILL_N, KILL_M, KILL_MAPS);
    ember_rdd *red = ember_reduce_by_key(pairs, fn0("std.sum"), &hp, &err);
    ember_rdd *slow = ember_map_values(red, fn_int("testfn.sleep_ms", arg,
                                                   sizeof arg, 1000),
                                       &err);
    static bg_action j; /* static: the thread may outlive a failed test */
    bg_start(&j, slow, 1);

    /* wait for the reduce stage to be running, all map output written */
    char victim[64] = "";
    for (int i = 0; i < 2000 && !victim[0]; i++) {
        sleep_ms(10);
        if (db_int(&x, "SELECT count(*) FROM tasks t JOIN stage_attempts s "
                       "ON t.stage_id = s.stage_id AND t.stage_attempt = "
                       "s.attempt WHERE s.kind = 'result'") < 1)
            continue;
        db_text(&x, victim, sizeof victim,
                "SELECT executor_id FROM map_outputs ORDER BY map_index "
                "LIMIT 1");
    }
    if (!victim[0])
        fail_msg("the reduce stage never started");
    pid_t pid = executor_pid(victim);
    if (pid <= 0)
        fail_msg("no process for executor '%s'", victim);
    int64_t stage = db_int(&x, "SELECT stage_id FROM stage_attempts WHERE "
                               "kind = 'shuffle_map'");
    /* the map tasks whose output dies with the victim */
    int lost[KILL_MAPS] = {0};
    int nlost = 0;
    for (int p = 0; p < KILL_MAPS; p++) {
        char sql[256], exec[64];
        snprintf(sql, sizeof sql,
                 "SELECT executor_id FROM tasks WHERE stage_id = %" PRId64
                 " AND partition = %d AND status = 'SUCCESS' ORDER BY "
                 "task_id LIMIT 1",
                 stage, p);
        db_text(&x, exec, sizeof exec, sql);
        assert_true(exec[0] != '\0');
        lost[p] = strcmp(exec, victim) == 0;
        nlost += lost[p];
    }
    assert_true(nlost >= 1);
    assert_int_equal(kill(pid, SIGKILL), 0);

    bg_join(&j);
    if (j.st != EMBER_OK)
        fail_msg("collect after SIGKILL of %s: %s", victim, j.err.msg);
    check_mod_sums(&j.out, KILL_N, KILL_M);
    ember_records_free(&j.out);

    /* the killed executor's shuffle directory is deleted */
    char gone[128], left[300];
    snprintf(gone, sizeof gone, "ember-shuffle-%ld-%s", (long)pid, victim);
    wait_gone(x.dir, gone, left, sizeof left);
    if (left[0])
        fail_msg("%s/%s is left after its executor was killed", x.dir,
                 left);

    /* only the lost map tasks ran again, once each */
    store_settle(&x);
    for (int p = 0; p < KILL_MAPS; p++) {
        int64_t runs = map_successes(&x, stage, p);
        if (runs != 1 + lost[p])
            fail_msg("map task %d (%s) succeeded %" PRId64 " times; wanted "
                     "%d",
                     p, lost[p] ? "its output was lost" : "kept its output",
                     runs, 1 + lost[p]);
    }
    sess_close(&x);
}

/* A test whose sessions are closed even when it fails. */
#define T(f) cmocka_unit_test_teardown(f, close_live)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_spill_local_cluster),
        T(test_spill_counted_local),
        T(test_corrupt_block_sort),
        T(test_corrupt_block_hash),
        T(test_kill_executor_with_map_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
