/*
 * checkpoint_test.c — checkpoints through the driver API (issue 6,
 * SEMANTICS S22) on local[2], where the executors run in this process and
 * share its host counters, and one local-cluster[2,1,512] case:
 *
 *   - ember_checkpoint without a directory is refused with the exact
 *     message; an unusable directory too;
 *   - a checkpointed dataset: the first action gives the right records,
 *     one file per partition exists, ember_rdd_is_checkpointed turns 1,
 *     the description ends at the checkpoint read; later actions read the
 *     files, so testfn.counted (an identity map that counts the records
 *     it maps in the host counter "testfn.counted") upstream of the
 *     checkpoint maps nothing;
 *   - a persisted dataset is written from its blocks, not recomputed;
 *   - only the nearest marked ancestor is checkpointed by a job;
 *   - a checkpointed reduce_by_key keeps its partitioner: a reduce_by_key
 *     with the same partitioner on top runs one stage (the state store
 *     tells);
 *   - a corrupt or missing checkpoint file fails the job with a message
 *     naming the file;
 *   - local_checkpoint: right records, a disk level, a truncated
 *     description, Spark's failure once its blocks are gone, and S21's
 *     level exception;
 *   - a plan file's "checkpoint": true with ember.checkpoint.dir;
 *   - local-cluster: files written and read by executor processes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/ember.h"
#include "ember/record.h"
#include "shuffle_support.h"

/* Records of the counted datasets. */
#define N 1000

/* The session shared by the local[2] tests, and its checkpoint
 * directory (g.dir/ckpt). */
static sess g;
static char g_ckpt[300];

static int group_open(void **state)
{
    (void)state;
    sess_open(&g, "checkpoint_test", "local[2]", NULL);
    sess_track(&g, 0);
    snprintf(g_ckpt, sizeof g_ckpt, "%s/ckpt", g.dir);
    ember_error err = {0};
    if (ember_set_checkpoint_dir(g.s, g_ckpt, &err) != EMBER_OK) {
        fprintf(stderr, "set_checkpoint_dir: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_close(void **state)
{
    (void)state;
    sess_close(&g);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* Stages the latest job of x ran (skipped ones are not recorded). */
static int64_t last_job_stages(const sess *x)
{
    store_settle(x);
    int64_t j = db_int(x, "SELECT max(job_id) FROM jobs");
    return db_int(x, "SELECT count(DISTINCT stage_id) FROM stage_attempts "
                     "WHERE job_id = %" PRId64, j);
}

/* Fails unless r's records (sorted when sorted is set) are want. */
static void check_records(ember_rdd *r, int sorted, const char *want)
{
    char *got = collect_json(r, sorted);
    assert_string_equal(got, want);
    free(got);
}

static void checkpoint_ok(ember_rdd *r)
{
    ember_error err = {0};
    if (ember_checkpoint(r, &err) != EMBER_OK)
        fail_msg("checkpoint: %s", err.msg);
}

/* The one subdirectory ember_set_checkpoint_dir made in dir, as a path
 * (static buffer). */
static const char *session_subdir(const char *dir)
{
    static char path[600];
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            n++;
        }
    closedir(d);
    assert_int_equal(n, 1);
    return path;
}

/* The checkpoint directory of r: DIR/<subdir>/rdd-<id> (static). */
static const char *rdd_dir(const char *ckpt, const ember_rdd *r)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/rdd-%" PRIu64, session_subdir(ckpt),
             ember_rdd_id(r));
    return path;
}

/* The names in dir, sorted and joined by spaces (static). */
static const char *dir_listing(const char *dir)
{
    static char out[1024];
    list_dir(dir, out, sizeof out);
    return out;
}

/* ---- the directory ------------------------------------------------------ */

static void test_no_directory(void **state)
{
    (void)state;
    ember_session *s = session_open("local[2]", "checkpoint_nodir", NULL,
                                    TESTFN_PLUGIN);
    ember_error err = {0};
    ember_rdd *r = ember_range(s, 0, 10, 1, 2, &err);
    assert_non_null(r);
    assert_int_equal(ember_checkpoint(r, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "checkpoint directory has not been set "
                                 "(ember_set_checkpoint_dir)");
    assert_int_equal(ember_checkpoint(NULL, &err), EMBER_EINVAL);
    /* still unmarked: an action checkpoints nothing */
    assert_int_equal(count_of(r), 10);
    assert_int_equal(ember_rdd_is_checkpointed(r), 0);

    /* a directory that cannot be made: under a regular file */
    char file[400], bad[450];
    snprintf(file, sizeof file, "%s/plain-file", g.dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(bad, sizeof bad, "%s/sub", file);
    assert_int_equal(ember_set_checkpoint_dir(s, bad, &err), EMBER_EINVAL);
    char want[600];
    snprintf(want, sizeof want, "set_checkpoint_dir: cannot create "
             "directory '%s': Not a directory", bad);
    assert_string_equal(err.msg, want);
    assert_int_equal(ember_set_checkpoint_dir(s, "", &err), EMBER_EINVAL);
    unlink(file);
    ember_session_close(s);
}

/* ---- reliable checkpoints ----------------------------------------------- */

static void test_checkpoint_basic(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g.s, N);
    ember_rdd_set_name(m, "nums");
    checkpoint_ok(m);
    checkpoint_ok(m); /* again: nothing more */
    uint64_t id = ember_rdd_id(m);
    char *before = lineage_of(m);
    char want_before[256];
    snprintf(want_before, sizeof want_before,
             "(2) map [%" PRIu64 "] nums [] checkpoint\n"
             " |  range [%" PRIu64 "] []", id, id - 1);
    assert_string_equal(before, want_before);
    free(before);
    assert_int_equal(ember_rdd_is_checkpointed(m), 0);

    char *want = ints_json(N);
    int64_t c0 = testfn_counted();
    uint64_t jobs = ember_session_jobs(g.s);
    check_records(m, 0, want);
    /* the action, then the checkpoint's own job computing m again */
    assert_int_equal(testfn_counted() - c0, 2 * N);
    assert_int_equal(ember_session_jobs(g.s) - jobs, 2);
    assert_int_equal(ember_rdd_is_checkpointed(m), 1);

    const char *dir = rdd_dir(g_ckpt, m);
    assert_string_equal(dir_listing(dir), "part-00000 part-00001");
    char *after = lineage_of(m);
    char want_after[1024];
    snprintf(want_after, sizeof want_after,
             "(2) checkpoint_read [%" PRIu64 "] nums [] checkpoint %s", id,
             dir);
    assert_string_equal(after, want_after);
    free(after);

    /* later jobs read the files: nothing upstream is computed */
    int64_t c1 = testfn_counted();
    jobs = ember_session_jobs(g.s);
    check_records(m, 0, want);
    assert_int_equal(count_of(m), N);
    ember_rdd *child = ember_map(m, fn0("std.identity"), &err);
    assert_non_null(child);
    char *d = lineage_of(child);
    assert_null(strstr(d, "range"));
    free(d);
    ember_rdd *kept = ember_map(m, fn0("std.identity"), &err);
    check_records(kept, 0, want);
    assert_int_equal(testfn_counted() - c1, 0);
    assert_int_equal(ember_session_jobs(g.s) - jobs, 3); /* no new writes */
    assert_int_equal(ember_rdd_partitions(m), 2);
    free(want);
}

/* A persisted dataset is written from its blocks; after unpersist its
 * partitions come from the files. */
static void test_checkpoint_persisted(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g.s, N);
    assert_int_equal(ember_persist(m, "MEMORY_ONLY", &err), EMBER_OK);
    checkpoint_ok(m);
    char *want = ints_json(N);
    int64_t c0 = testfn_counted();
    check_records(m, 0, want);
    int64_t c1 = testfn_counted();
    assert_int_equal(c1 - c0, N); /* the checkpoint job read the blocks */
    assert_int_equal(ember_rdd_is_checkpointed(m), 1);
    assert_string_equal(ember_rdd_storage_level(m), "MEMORY_ONLY");
    char *d = lineage_of(m);
    char want_d[1024];
    snprintf(want_d, sizeof want_d,
             "(2) checkpoint_read [%" PRIu64 "] [MEMORY_ONLY] checkpoint %s",
             ember_rdd_id(m), rdd_dir(g_ckpt, m));
    assert_string_equal(d, want_d);
    free(d);
    check_records(m, 0, want);
    assert_int_equal(ember_unpersist(m, &err), EMBER_OK);
    check_records(m, 0, want);
    assert_int_equal(testfn_counted() - c1, 0);
    free(want);
}

/* a <- b <- c, a and b marked: a job over c checkpoints b only; a job
 * over a then checkpoints a. */
static void test_nearest_marked_only(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *a = counted_range(g.s, N);
    ember_rdd *b = ember_map(a, fn0("std.identity"), &err);
    ember_rdd *c = ember_map(b, fn0("std.identity"), &err);
    assert_non_null(c);
    checkpoint_ok(a);
    checkpoint_ok(b);
    char *want = ints_json(N);
    int64_t c0 = testfn_counted();
    uint64_t jobs = ember_session_jobs(g.s);
    check_records(c, 0, want);
    assert_int_equal(ember_session_jobs(g.s) - jobs, 2);
    assert_int_equal(testfn_counted() - c0, 2 * N);
    assert_int_equal(ember_rdd_is_checkpointed(b), 1);
    assert_int_equal(ember_rdd_is_checkpointed(a), 0);
    assert_int_equal(ember_rdd_is_checkpointed(c), 0);
    char dir_b[700];
    snprintf(dir_b, sizeof dir_b, "%s", rdd_dir(g_ckpt, b));
    struct stat st;
    char dir_a[700];
    snprintf(dir_a, sizeof dir_a, "%s", rdd_dir(g_ckpt, a));
    assert_int_not_equal(stat(dir_a, &st), 0);
    char *d = lineage_of(c);
    char want_d[1024];
    snprintf(want_d, sizeof want_d,
             "(2) map [%" PRIu64 "] []\n"
             " |  checkpoint_read [%" PRIu64 "] [] checkpoint %s",
             ember_rdd_id(c), ember_rdd_id(b), dir_b);
    assert_string_equal(d, want_d);
    free(d);

    /* a is still marked: its own next job writes it */
    int64_t c1 = testfn_counted();
    check_records(a, 0, want);
    assert_int_equal(testfn_counted() - c1, 2 * N);
    assert_int_equal(ember_rdd_is_checkpointed(a), 1);
    assert_string_equal(dir_listing(dir_a), "part-00000 part-00001");
    free(want);
}

/* (k, sum of i with i mod 7 = k) for i in [0, 100), reduce_by_key into 3
 * hash partitions, checkpointed: it keeps its partitioner, so a
 * reduce_by_key by the same partitioner over it runs in one stage. */
static void test_checkpoint_keeps_partitioner(void **state)
{
    (void)state;
    ember_error err = {0};
    uint8_t arg[16];
    ember_rdd *r = ember_map(ember_range(g.s, 0, 100, 1, 4, &err),
                             fn0("testfn.counted"), &err);
    ember_rdd *k = ember_key_by(r, fn_int("testfn.key_mod", arg, sizeof arg,
                                          7),
                                &err);
    assert_non_null(k);
    ember_partitioner p3 = {.kind = EMBER_PART_HASH, .partitions = 3};
    ember_rdd *sums = ember_reduce_by_key(k, fn0("std.sum"), &p3, &err);
    if (!sums)
        fail_msg("reduce_by_key: %s", err.msg);
    checkpoint_ok(sums);

    char *want = mod_sums_json(100, 7);
    check_records(sums, 1, want);
    assert_int_equal(ember_rdd_is_checkpointed(sums), 1);
    assert_int_equal(ember_rdd_partitions(sums), 3);
    assert_string_equal(dir_listing(rdd_dir(g_ckpt, sums)),
                        "part-00000 part-00001 part-00002");

    int64_t c0 = testfn_counted();
    ember_rdd *again = ember_reduce_by_key(sums, fn0("std.sum"), &p3, &err);
    assert_non_null(again);
    check_records(again, 1, want);
    assert_int_equal(last_job_stages(&g), 1); /* no shuffle */
    assert_int_equal(testfn_counted() - c0, 0);

    /* another partitioner shuffles: the map stage and the result stage */
    ember_partitioner p4 = {.kind = EMBER_PART_HASH, .partitions = 4};
    ember_rdd *other = ember_reduce_by_key(sums, fn0("std.sum"), &p4, &err);
    assert_non_null(other);
    check_records(other, 1, want);
    assert_int_equal(last_job_stages(&g), 2);
    assert_int_equal(testfn_counted() - c0, 0);
    free(want);
}

/* Flips the byte at offset off of path. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_corrupt_and_missing_file(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *r = ember_range(g.s, 0, N, 1, 2, &err);
    ember_rdd *m = ember_map(r, fn0("std.identity"), &err);
    assert_non_null(m);
    checkpoint_ok(m);
    assert_int_equal(count_of(m), N);
    assert_int_equal(ember_rdd_is_checkpointed(m), 1);
    char part0[800], part1[800], want[1200];
    snprintf(part0, sizeof part0, "%s/part-00000", rdd_dir(g_ckpt, m));
    snprintf(part1, sizeof part1, "%s/part-00001", rdd_dir(g_ckpt, m));

    /* a byte of partition 1's records (past the 16-byte header and the
     * first chunk's 24-byte header) */
    flip_byte(part1, 100);
    ember_status code = EMBER_OK;
    const char *msg = collect_error(m, &code);
    snprintf(want, sizeof want,
             "dataset %" PRIu64 " (checkpoint_read) partition 1: checkpoint "
             "file '%s' is corrupt: a chunk's checksum does not match (after "
             "0 records)", ember_rdd_id(m), part1);
    assert_contains(msg, want);
    flip_byte(part1, 100); /* restored: right again */
    assert_int_equal(count_of(m), N);

    /* cut short */
    assert_int_equal(truncate(part1, 60), 0);
    msg = collect_error(m, &code);
    snprintf(want, sizeof want, "checkpoint file '%s' is corrupt: it ends "
             "inside a chunk (after 0 records)", part1);
    assert_contains(msg, want);

    /* gone */
    assert_int_equal(unlink(part0), 0);
    ember_rdd *one = ember_coalesce(m, 1, &err); /* reads partition 0 first */
    msg = collect_error(one, &code);
    snprintf(want, sizeof want,
             "dataset %" PRIu64 " (checkpoint_read) partition 0: cannot open "
             "checkpoint file '%s': No such file or directory",
             ember_rdd_id(m), part0);
    assert_contains(msg, want);
}

/* ---- local checkpoints -------------------------------------------------- */

static void test_local_checkpoint(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g.s, N);
    assert_int_equal(ember_local_checkpoint(m, &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(m), "MEMORY_AND_DISK");
    char *want = ints_json(N);
    int64_t c0 = testfn_counted();
    check_records(m, 0, want);
    int64_t c1 = testfn_counted();
    /* computed once, stored by that job; the checkpoint's job read it */
    assert_int_equal(c1 - c0, N);
    assert_int_equal(ember_rdd_is_checkpointed(m), 1);
    char *d = lineage_of(m);
    char want_d[256];
    snprintf(want_d, sizeof want_d,
             "(2) checkpoint_read [%" PRIu64 "] [MEMORY_AND_DISK] [local "
             "checkpoint]", ember_rdd_id(m));
    assert_string_equal(d, want_d);
    free(d);
    ember_rdd *child = ember_map(m, fn0("std.identity"), &err);
    check_records(child, 0, want);
    check_records(m, 0, want);
    assert_int_equal(testfn_counted() - c1, 0);

    /* S21: the level may still change, made to use disk */
    assert_int_equal(ember_persist(m, "MEMORY_ONLY", &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(m), "MEMORY_AND_DISK");

    /* its blocks gone, nothing else can give the partitions */
    assert_int_equal(ember_unpersist(m, &err), EMBER_OK);
    ember_status code = EMBER_OK;
    ember_rdd *one = ember_coalesce(m, 1, &err);
    const char *msg = collect_error(one, &code);
    char want_msg[256];
    snprintf(want_msg, sizeof want_msg,
             "Checkpoint block rdd_%" PRIu64 "_0 not found! Either the "
             "executor that originally checkpointed this partition is no "
             "longer alive, or the original RDD is unpersisted.",
             ember_rdd_id(m));
    assert_contains(msg, want_msg);
    free(want);
}

/* local_checkpoint of a MEMORY_ONLY dataset keeps it at MEMORY_AND_DISK;
 * of a DISK_ONLY one at DISK_ONLY; marking twice changes nothing. */
static void test_local_checkpoint_levels(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *a = counted_range(g.s, N);
    assert_int_equal(ember_persist(a, "MEMORY_ONLY_SER", &err), EMBER_OK);
    assert_int_equal(ember_local_checkpoint(a, &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(a), "MEMORY_AND_DISK_SER");
    assert_int_equal(ember_local_checkpoint(a, &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(a), "MEMORY_AND_DISK_SER");
    ember_rdd *b = counted_range(g.s, N);
    assert_int_equal(ember_persist(b, "DISK_ONLY", &err), EMBER_OK);
    assert_int_equal(ember_local_checkpoint(b, &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(b), "DISK_ONLY");
    assert_int_equal(count_of(b), N);
    assert_int_equal(ember_rdd_is_checkpointed(b), 1);
    assert_int_equal(count_of(b), N);
    /* a reliable checkpoint of a locally marked dataset: nothing */
    assert_int_equal(ember_checkpoint(a, &err), EMBER_OK);
    assert_int_equal(count_of(a), N);
    assert_int_equal(ember_rdd_is_checkpointed(a), 1);
    char *d = lineage_of(a);
    assert_non_null(strstr(d, "[local checkpoint]"));
    free(d);
    assert_int_equal(ember_local_checkpoint(NULL, &err), EMBER_EINVAL);
    assert_int_equal(ember_rdd_is_checkpointed(NULL), 0);
}

/* ---- plan files --------------------------------------------------------- */

static void on_line(void *ctx, const char *line)
{
    ember_buf *b = ctx;
    assert_int_equal(ember_buf_append(b, line, strlen(line)), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(b, '\n'), EMBER_OK);
}

static void test_plan_file(void **state)
{
    (void)state;
    static const char plan[] =
        "{\"ember_plan\": 1,"
        " \"datasets\": ["
        "  {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,"
        "   \"args\": {\"data\": [1, 2, 3, 4]}},"
        "  {\"id\": 1, \"op\": \"map\", \"parents\": [0],"
        "   \"fns\": [\"std.identity\"], \"checkpoint\": true}],"
        " \"actions\": ["
        "  {\"action\": \"collect\", \"dataset\": 1},"
        "  {\"action\": \"count\", \"dataset\": 1}]}";
    ember_error err = {0};
    /* without a directory: refused before anything runs */
    ember_session *s = session_open("local[2]", "checkpoint_plan", NULL,
                                    NULL);
    ember_buf out = ember_buf_heap();
    assert_int_equal(ember_plan_run(s, plan, strlen(plan), "job.json",
                                    on_line, &out, &err),
                     EMBER_EINVAL);
    assert_contains(err.msg, "checkpoint directory has not been set");
    assert_int_equal(out.len, 0);
    ember_session_close(s);

    char dir[400], conf[450];
    snprintf(dir, sizeof dir, "%s/plan-ckpt", g.dir);
    snprintf(conf, sizeof conf, "ember.checkpoint.dir=%s", dir);
    const char *settings[] = {conf, NULL};
    s = session_open("local[2]", "checkpoint_plan", settings, NULL);
    assert_int_equal(ember_plan_run(s, plan, strlen(plan), "job.json",
                                    on_line, &out, &err),
                     EMBER_OK);
    assert_int_equal(ember_buf_put_u8(&out, '\0'), EMBER_OK);
    assert_string_equal((const char *)out.data, "1\n2\n3\n4\n4\n");
    ember_buf_release(&out);
    ember_session_close(s);
    char files[900];
    snprintf(files, sizeof files, "%s/rdd-1", session_subdir(dir));
    assert_string_equal(dir_listing(files), "part-00000 part-00001");
}

/* ---- local-cluster ------------------------------------------------------ */

static void test_local_cluster(void **state)
{
    (void)state;
    static sess x;
    sess_open(&x, "checkpoint_cluster", "local-cluster[2,1,512]", NULL);
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", x.dir);
    ember_error err = {0};
    assert_int_equal(ember_set_checkpoint_dir(x.s, ckpt, &err), EMBER_OK);
    ember_rdd *r = ember_range(x.s, 0, N, 1, 4, &err);
    ember_rdd *m = ember_map(r, fn0("testfn.counted"), &err);
    assert_non_null(m);
    checkpoint_ok(m);
    char *want = ints_json(N);
    check_records(m, 0, want);
    assert_int_equal(ember_rdd_is_checkpointed(m), 1);
    char dir[800];
    snprintf(dir, sizeof dir, "%s", rdd_dir(ckpt, m));
    assert_string_equal(dir_listing(dir),
                        "part-00000 part-00001 part-00002 part-00003");
    check_records(m, 0, want);
    /* the executors read the files: without one, the job fails */
    char part[900];
    snprintf(part, sizeof part, "%s/part-00002", dir);
    assert_int_equal(unlink(part), 0);
    ember_status code = EMBER_OK;
    const char *msg = collect_error(m, &code);
    char want_msg[1000];
    snprintf(want_msg, sizeof want_msg, "cannot open checkpoint file '%s'",
             part);
    assert_contains(msg, want_msg);
    free(want);
    sess_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_directory),
        cmocka_unit_test(test_checkpoint_basic),
        cmocka_unit_test(test_checkpoint_persisted),
        cmocka_unit_test(test_nearest_marked_only),
        cmocka_unit_test(test_checkpoint_keeps_partitioner),
        cmocka_unit_test(test_corrupt_and_missing_file),
        cmocka_unit_test(test_local_checkpoint),
        cmocka_unit_test(test_local_checkpoint_levels),
        cmocka_unit_test(test_plan_file),
        cmocka_unit_test_teardown(test_local_cluster, close_live),
    };
    return cmocka_run_group_tests(tests, group_open, group_close);
}
