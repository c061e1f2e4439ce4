/*
 * fault_test.c — fault scenarios with executors that are processes
 * (local-cluster[2,1,512]), faults injected through the test plugins
 * (testfn, faultfn) and signals (issue 6, "Faults"):
 *
 *   1. an executor holding cached blocks is killed between two jobs: the
 *      second job's answer is right and only the partitions cached on
 *      the killed executor are computed again;
 *   2. an executor holding shuffle map output is killed between two jobs
 *      over one shuffle: the second answer is right and only the lost map
 *      tasks run again;
 *   3. a task that fails twice, then succeeds: the right answer, three
 *      attempts of that partition (2 FAILED, 1 SUCCESS), one of the others;
 *   4. a task that always fails: the job fails after
 *      ember.task.maxFailures (3) attempts, all FAILED, with the task's own
 *      message in the error the user gets;
 *   5. a shuffle spill on a full disk (executors under a small
 *      RLIMIT_FSIZE, see fsize_exec.c): the error names the spill and the
 *      cause, the job fails after its attempts, no temp file is left and
 *      later jobs of the session give right answers.
 *
 * Each scenario checks the exact result and, from the session's state
 * store (tables tasks, stage_attempts, executors, map_outputs), which
 * tasks ran how many times; faultfn.log_work's log (work.log in a
 * directory of the test) tells which partitions were computed, by which
 * process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/ember.h"
#include "ember/record.h"
#include "shuffle_support.h"

#define APP "fault_test"
#define CLUSTER "local-cluster[2,1,512]"

/* Partitions of the datasets, and records per partition. */
#define NPARTS 6
#define PER_PART 1000

/* ---- sessions ---------------------------------------------------------- */

/* Where faultfn's files go: "<x.dir>/work" of the running test. */
static char g_work[512];

/*
 * Opens x on CLUSTER with sess_open_plugins (a temp ember.local.dir, the
 * extra settings, tracked for close_live), with testfn and faultfn loaded,
 * and makes g_work; then waits until the kernel has both executors.
 */
static void fault_open(sess *x, const char *const *extra)
{
    const char *const plugins[] = {TESTFN_PLUGIN, FAULTFN_PLUGIN, NULL};
    sess_open_plugins(x, APP, CLUSTER, extra, plugins);
    snprintf(g_work, sizeof g_work, "%s/work", x->dir);
    assert_int_equal(mkdir(g_work, 0755), 0);
    /* both executors registered before the first job, so that its tasks
     * spread over the two */
    for (int i = 0; i < 2000; i++) {
        if (db_int(x, "SELECT count(*) FROM executors WHERE status = "
                      "'ACTIVE'") >= 2)
            return;
        sleep_ms(10);
    }
    fail_msg("the two executors of %s never registered", CLUSTER);
}

/* Waits until the kernel has recorded executor id as REMOVED and dropped
 * the map output it held. */
static void wait_removed(const sess *x, const char *id)
{
    for (int i = 0; i < 2000; i++) {
        if (db_int(x, "SELECT count(*) FROM executors WHERE executor_id = "
                      "'%s' AND status = 'REMOVED'", id) == 1 &&
            db_int(x, "SELECT count(*) FROM map_outputs WHERE executor_id "
                      "= '%s'", id) == 0)
            return;
        sleep_ms(10);
    }
    fail_msg("the kernel never recorded the loss of %s", id);
}

/* The id of the last job the session ran. */
static int64_t last_job(const sess *x)
{
    return db_int(x, "SELECT max(job_id) FROM jobs");
}

/* The stage of job `job` of kind ("result" or "shuffle_map"). */
static int64_t stage_of(const sess *x, int64_t job, const char *kind)
{
    int64_t stage = db_int(x, "SELECT stage_id FROM stage_attempts WHERE "
                              "job_id = %" PRId64 " AND kind = '%s'",
                           job, kind);
    if (stage < 0)
        fail_msg("job %" PRId64 " has no %s stage", job, kind);
    return stage;
}

/* Task rows of partition p of stage, of any status (status NULL) or of
 * the given status. */
static int64_t task_rows(const sess *x, int64_t stage, int p,
                         const char *status)
{
    if (!status)
        return db_int(x, "SELECT count(*) FROM tasks WHERE stage_id = "
                         "%" PRId64 " AND partition = %d", stage, p);
    return db_int(x, "SELECT count(*) FROM tasks WHERE stage_id = %" PRId64
                     " AND partition = %d AND status = '%s'",
                  stage, p, status);
}

/* ---- functions and data ------------------------------------------------ */

/* A function whose argument is the string s (tmp, cap bytes, holds the
 * encoding and must outlive the ember_fn). */
static ember_fn fn_str(const char *name, uint8_t *tmp, size_t cap,
                       const char *s)
{
    ember_buf b = ember_buf_fixed(tmp, cap);
    assert_int_equal(ember_rec_put_string(&b, s, strlen(s)), EMBER_OK);
    return (ember_fn){name, tmp, b.len};
}

/* faultfn.fail_times failing the first `times` tasks of partition p. */
static ember_fn fn_fail_times(uint8_t *tmp, size_t cap, int64_t p,
                              int64_t times)
{
    ember_buf b = ember_buf_fixed(tmp, cap);
    assert_int_equal(ember_rec_put_string(&b, g_work, strlen(g_work)),
                     EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, p), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, times), EMBER_OK);
    return (ember_fn){"faultfn.fail_times", tmp, b.len};
}

/* Fails the test with what (and err's text) when r is NULL. */
static ember_rdd *made(ember_rdd *r, const char *what, const ember_error *err)
{
    if (!r)
        fail_msg("%s: %s", what, err->msg);
    return r;
}

/* range(0, NPARTS * PER_PART) in NPARTS partitions; each partition's one
 * batch waits sleep ms (nonzero: so that the tasks spread over both
 * executors), then goes through faultfn.log_work. */
static ember_rdd *logged_range(ember_session *s, int64_t sleep)
{
    ember_error err = {0};
    static uint8_t sarg[16], larg[600];
    ember_rdd *r = made(ember_range(s, 0, NPARTS * PER_PART, 1, NPARTS, &err),
                        "range", &err);
    if (sleep)
        r = made(ember_map(r, fn_int("testfn.sleep_ms", sarg, sizeof sarg,
                                     sleep),
                           &err),
                 "map sleep_ms", &err);
    return made(ember_map(r, fn_str("faultfn.log_work", larg, sizeof larg,
                                    g_work),
                          &err),
                "map log_work", &err);
}

/* Checks that got is exactly the one-int records 0, 1, ..., n-1. */
static void check_ints(const ember_records *got, int64_t n)
{
    assert_int_equal(got->count, (uint64_t)n);
    ember_batch b = {got->data, got->len, got->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    ember_value v = {0};
    for (int64_t i = 0; i < n; i++) {
        assert_int_equal(ember_batch_next(&c, &rec, &len), EMBER_OK);
        assert_int_equal(ember_rec_get(rec, len, 0, &v), EMBER_OK);
        assert_int_equal(v.type, EMBER_TYPE_INT);
        if (v.u.i64 != i)
            fail_msg("record %" PRId64 " is %" PRId64, i, v.u.i64);
    }
}

/* (i mod m, i) for the ints i of r. */
static ember_rdd *keyed(ember_rdd *r, int64_t m)
{
    ember_error err = {0};
    static uint8_t arg[16];
    return made(ember_key_by(r, fn_int("testfn.key_mod", arg, sizeof arg, m),
                             &err),
                "key_by", &err);
}

/* ---- faultfn.log_work's log -------------------------------------------- */

/* What the log says: records computed per partition, and the process
 * that computed each partition last (0: none). */
typedef struct work {
    int64_t recs[NPARTS];
    pid_t pid[NPARTS];
} work;

/* Reads and then removes g_work/work.log (no task is running: the jobs
 * that wrote it have ended). */
static work take_work(void)
{
    work w;
    memset(&w, 0, sizeof w);
    char path[600];
    snprintf(path, sizeof path, "%s/work.log", g_work);
    FILE *f = fopen(path, "r");
    if (!f) {
        assert_int_equal(errno, ENOENT);
        return w;
    }
    long long p, n;
    long pid;
    while (fscanf(f, "%lld %lld %ld", &p, &n, &pid) == 3) {
        if (p < 0 || p >= NPARTS)
            fail_msg("work.log names partition %lld", p);
        w.recs[p] += n;
        w.pid[p] = (pid_t)pid;
    }
    assert_true(feof(f));
    fclose(f);
    assert_int_equal(unlink(path), 0);
    return w;
}

/* ---- 1. an executor with cached blocks killed -------------------------- */

static void test_kill_executor_with_cached_blocks(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    fault_open(&x, NULL);
    ember_error err = {0};
    ember_rdd *cached = logged_range(x.s, 100);
    assert_int_equal(ember_persist(cached, "MEMORY_ONLY", &err), EMBER_OK);

    /* the first job computes and caches every partition, each on one of
     * the two executors */
    ember_records got = collect_recs(cached);
    check_ints(&got, NPARTS * PER_PART);
    ember_records_free(&got);
    work w = take_work();
    pid_t e0 = executor_pid("exec-0"), e1 = executor_pid("exec-1");
    assert_true(e0 > 0 && e1 > 0);
    int on0 = 0, on1 = 0;
    for (int p = 0; p < NPARTS; p++) {
        assert_int_equal(w.recs[p], PER_PART);
        assert_true(w.pid[p] == e0 || w.pid[p] == e1);
        on0 += w.pid[p] == e0;
        on1 += w.pid[p] == e1;
    }
    if (on0 == 0 || on1 == 0)
        fail_msg("the first job ran on one executor only (%d and %d "
                 "partitions)", on0, on1);

    /* kill exec-0 and wait for the kernel to know */
    assert_int_equal(kill(e0, SIGKILL), 0);
    wait_removed(&x, "exec-0");

    /* the second job: the right answer, computing again exactly the
     * partitions cached on exec-0, once each */
    got = collect_recs(cached);
    check_ints(&got, NPARTS * PER_PART);
    ember_records_free(&got);
    work again = take_work();
    int64_t recomputed = 0;
    for (int p = 0; p < NPARTS; p++) {
        int64_t want = w.pid[p] == e0 ? PER_PART : 0;
        if (again.recs[p] != want)
            fail_msg("partition %d (cached on %s) computed %" PRId64
                     " records in the second job, wanted %" PRId64,
                     p, w.pid[p] == e0 ? "the killed exec-0" : "exec-1",
                     again.recs[p], want);
        recomputed += again.recs[p];
    }
    assert_int_equal(recomputed, (int64_t)on0 * PER_PART);

    /* the store: the second job ran one task per partition, all
     * successful */
    store_settle(&x);
    int64_t stage = stage_of(&x, last_job(&x), "result");
    for (int p = 0; p < NPARTS; p++) {
        assert_int_equal(task_rows(&x, stage, p, NULL), 1);
        assert_int_equal(task_rows(&x, stage, p, "SUCCESS"), 1);
    }
    sess_close(&x);
}

/* ---- 2. an executor with shuffle output killed ------------------------- */

#define KEYS 60

static void test_kill_executor_with_map_output(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    fault_open(&x, NULL);
    ember_error err = {0};
    ember_partitioner hp = {.kind = EMBER_PART_HASH, .partitions = 3};
    ember_rdd *red = made(ember_reduce_by_key(keyed(logged_range(x.s, 100),
                                                    KEYS),
                                              fn0("std.sum"), &hp, &err),
                          "reduce_by_key", &err);
    ember_records got = collect_recs(red);
    check_mod_sums(&got, NPARTS * PER_PART, KEYS);
    ember_records_free(&got);
    work w = take_work();
    for (int p = 0; p < NPARTS; p++)
        assert_int_equal(w.recs[p], PER_PART);

    /* the map output exec-0 holds, by the kernel's map_outputs */
    store_settle(&x);
    int64_t map_stage = stage_of(&x, last_job(&x), "shuffle_map");
    int lost[NPARTS], nlost = 0;
    for (int p = 0; p < NPARTS; p++) {
        lost[p] = db_int(&x, "SELECT count(*) FROM map_outputs WHERE "
                             "map_index = %d AND executor_id = 'exec-0'",
                         p) == 1;
        nlost += lost[p];
        assert_int_equal(task_rows(&x, map_stage, p, NULL), 1);
    }
    if (nlost == 0 || nlost == NPARTS)
        fail_msg("exec-0 holds %d of %d map outputs; the map tasks did not "
                 "spread over both executors", nlost, NPARTS);

    pid_t victim = executor_pid("exec-0");
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    wait_removed(&x, "exec-0");

    /* a second job over the same shuffle: the right answer, and only the
     * lost map tasks ran again (once each) */
    got = collect_recs(red);
    check_mod_sums(&got, NPARTS * PER_PART, KEYS);
    ember_records_free(&got);
    work again = take_work();
    store_settle(&x);
    for (int p = 0; p < NPARTS; p++) {
        if (again.recs[p] != (lost[p] ? PER_PART : 0))
            fail_msg("map partition %d (%s) computed %" PRId64 " records "
                     "in the second job",
                     p, lost[p] ? "output lost" : "output kept",
                     again.recs[p]);
        int64_t rows = task_rows(&x, map_stage, p, NULL);
        int64_t ok = task_rows(&x, map_stage, p, "SUCCESS");
        if (rows != 1 + lost[p] || ok != rows)
            fail_msg("map task %d (%s) has %" PRId64 " task rows (%" PRId64
                     " SUCCESS); wanted %d, all SUCCESS",
                     p, lost[p] ? "output lost" : "output kept", rows, ok,
                     1 + lost[p]);
    }
    sess_close(&x);
}

/* ---- 3. a task that fails twice, then succeeds ------------------------- */

static void test_task_fails_twice_then_succeeds(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    fault_open(&x, NULL);
    ember_error err = {0};
    uint8_t arg[700];
    ember_rdd *r = made(ember_map(logged_range(x.s, 0),
                                  fn_fail_times(arg, sizeof arg, 2, 2), &err),
                        "map fail_times", &err);
    ember_records got = collect_recs(r);
    check_ints(&got, NPARTS * PER_PART);
    ember_records_free(&got);

    /* partition 2 was computed three times, the others once */
    work w = take_work();
    for (int p = 0; p < NPARTS; p++)
        assert_int_equal(w.recs[p], (p == 2 ? 3 : 1) * PER_PART);

    store_settle(&x);
    int64_t stage = stage_of(&x, last_job(&x), "result");
    for (int p = 0; p < NPARTS; p++) {
        assert_int_equal(task_rows(&x, stage, p, NULL), p == 2 ? 3 : 1);
        assert_int_equal(task_rows(&x, stage, p, "SUCCESS"), 1);
    }
    /* attempts 0 and 1 failed with the function's message, attempt 2
     * succeeded */
    for (int a = 0; a < 3; a++) {
        char sql[256], status[32], error[512];
        snprintf(sql, sizeof sql,
                 "SELECT status FROM tasks WHERE stage_id = %" PRId64
                 " AND partition = 2 AND attempt = %d",
                 stage, a);
        db_text(&x, status, sizeof status, sql);
        snprintf(sql, sizeof sql,
                 "SELECT error FROM tasks WHERE stage_id = %" PRId64
                 " AND partition = 2 AND attempt = %d",
                 stage, a);
        db_text(&x, error, sizeof error, sql);
        if (a < 2) {
            char want[64];
            snprintf(want, sizeof want,
                     "faultfn: injected failure %d of 2 (partition 2)",
                     a + 1);
            assert_string_equal(status, "FAILED");
            if (!strstr(error, want))
                fail_msg("attempt %d's error lacks '%s': %s", a, want,
                         error);
        } else {
            assert_string_equal(status, "SUCCESS");
        }
    }
    sess_close(&x);
}

/* ---- 4. a task that always fails --------------------------------------- */

static void test_task_always_fails(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    const char *conf[] = {"ember.task.maxFailures=3", NULL};
    fault_open(&x, conf);
    ember_error err = {0};
    uint8_t arg[16];
    /* 2500 is in partition 2 */
    ember_rdd *src = made(ember_range(x.s, 0, NPARTS * PER_PART, 1, NPARTS,
                                      &err),
                          "range", &err);
    ember_rdd *r = made(ember_map(src, fn_int("testfn.fail_on", arg,
                                              sizeof arg, 2500),
                                  &err),
                        "map fail_on", &err);
    const char *msg = collect_error(r, NULL);
    if (!strstr(msg, "failed 3 times") || !strstr(msg, "bad record 2500"))
        fail_msg("the error does not say that the task failed 3 times "
                 "with its own message: %s", msg);

    store_settle(&x);
    int64_t job = last_job(&x);
    char status[32];
    db_text(&x, status, sizeof status,
            "SELECT status FROM jobs ORDER BY job_id DESC LIMIT 1");
    assert_string_equal(status, "FAILED");
    int64_t stage = stage_of(&x, job, "result");
    assert_int_equal(task_rows(&x, stage, 2, NULL), 3);
    assert_int_equal(task_rows(&x, stage, 2, "FAILED"), 3);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM tasks WHERE stage_id "
                                "= %" PRId64 " AND partition = 2 AND error "
                                "LIKE '%%bad record 2500%%'",
                            stage),
                     3);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM tasks WHERE stage_id "
                                "= %" PRId64 " AND partition <> 2 AND "
                                "status = 'FAILED'",
                            stage),
                     0);

    /* the session still runs jobs */
    assert_int_equal(count_of(src), NPARTS * PER_PART);
    sess_close(&x);
}

/* ---- 5. a spill on a full disk ----------------------------------------- */

/* Where find_temp puts the path it finds. */
typedef struct found_path {
    char *out;
    size_t cap;
} found_path;

static int is_temp(const char *path, const struct stat *st, void *ctx)
{
    (void)st;
    found_path *f = ctx;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    if (!strstr(name, ".tmp") && !strstr(name, "spill"))
        return 0;
    snprintf(f->out, f->cap, "%s", path);
    return 1;
}

/* Whether dir holds (at any depth) a file whose name contains ".tmp" or
 * "spill"; its path into out. */
static int find_temp(const char *dir, char *out, size_t cap)
{
    found_path f = {out, cap};
    return walk_files(dir, is_temp, &f);
}

#define SPILL_N 200000
#define SPILL_KEYS 5000

static void test_spill_on_full_disk(void **state)
{
    (void)state;
    static sess x; /* static: see sess_open */
    /* executors whose files cannot grow past 4 KiB (fsize_exec), a 64k
     * shuffle buffer that spills uncompressed runs bigger than that */
    const char *conf[] = {"ember.executor.command=" FSIZE_EXEC,
                          "ember.task.maxFailures=2",
                          "ember.shuffle.memory=64k",
                          "ember.shuffle.compress=false",
                          "ember.shuffle.sort.bypassMergeThreshold=0", NULL};
    fault_open(&x, conf);
    ember_error err = {0};

    /* group_by_key keeps every value (no map-side combine): 200k records
     * in one map task */
    ember_rdd *src = made(ember_range(x.s, 0, SPILL_N, 1, 1, &err), "range",
                          &err);
    ember_rdd *groups = made(ember_group_by_key(keyed(src, SPILL_KEYS), NULL,
                                                &err),
                             "group_by_key", &err);
    const char *msg = collect_error(groups, NULL);
    if (!strstr(msg, "writing spill") ||
        !strstr(msg, "File too large (over the process's file size limit"))
        fail_msg("the error does not name the spill and its cause: %s", msg);
    if (!strstr(msg, "failed 2 times"))
        fail_msg("the job did not fail after 2 attempts: %s", msg);

    /* two attempts of the map task, both failed writing the spill */
    store_settle(&x);
    int64_t map_stage = stage_of(&x, last_job(&x), "shuffle_map");
    assert_int_equal(task_rows(&x, map_stage, 0, NULL), 2);
    assert_int_equal(task_rows(&x, map_stage, 0, "FAILED"), 2);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM tasks WHERE stage_id "
                                "= %" PRId64 " AND error LIKE '%%spill%%'",
                            map_stage),
                     2);

    /* the failed attempts leave no spill or temp file (the executors
     * remove them as the attempt ends, which may come just after the job
     * has failed) */
    char left[1024] = "";
    for (int i = 0; i < 500 && find_temp(x.dir, left, sizeof left); i++)
        sleep_ms(10);
    if (find_temp(x.dir, left, sizeof left))
        fail_msg("%s is left after the spill failed", left);

    /* nothing else is lost: later jobs of the session, with small files,
     * give right answers */
    assert_int_equal(count_of(src), SPILL_N);
    ember_rdd *small = made(ember_range(x.s, 0, 6000, 1, 3, &err), "range",
                            &err);
    ember_rdd *red = made(ember_reduce_by_key(keyed(small, KEYS),
                                              fn0("std.sum"), NULL, &err),
                          "reduce_by_key", &err);
    ember_records got = collect_recs(red);
    check_mod_sums(&got, 6000, KEYS);
    ember_records_free(&got);
    sess_close(&x);
}

/* A test whose session is closed even when it fails. */
#define T(f) cmocka_unit_test_teardown(f, close_live)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_kill_executor_with_cached_blocks),
        T(test_kill_executor_with_map_output),
        T(test_task_fails_twice_then_succeeds),
        T(test_task_always_fails),
        T(test_spill_on_full_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
