/*
 * persist_test.c — persist and cache through the driver API (issue 6,
 * SEMANTICS S19–S21) on local[2], where the executors run in this process
 * and share its host counters:
 *
 *   - at MEMORY_ONLY, MEMORY_ONLY_SER, DISK_ONLY, MEMORY_AND_DISK and
 *     OFF_HEAP, a dataset made by testfn.counted (an identity map that
 *     counts the records it maps in the host counter "testfn.counted")
 *     collected twice gives the same exact records both times; the first
 *     job maps every record once, the second maps none (it reads the
 *     executors' blocks);
 *   - persist is lazy: it runs no job, and a dataset persisted after a job
 *     has computed it is stored by the next job and read by the one after;
 *   - a cached shuffle result (reduce_by_key) used by later jobs gives the
 *     same records and is not computed again;
 *   - the level rules: the same level again is fine, another one is
 *     EMBER_EINVAL with Spark's meaning, unknown names are refused with the
 *     list of names, NONE on a dataset that is not persisted does nothing;
 *     ember_rdd_storage_level; the lineage description shows the level.
 *
 * The assertions that a job read persisted blocks instead of computing
 * them are written assert_from_cache (see there).
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

#include "driver_support.h"
#include "ember/ember.h"
#include "ember/record.h"

/* Records of the counted datasets. */
#define N 1000

/* ---- helpers ------------------------------------------------------------ */

/* The session shared by every test (local[2], testfn loaded). */
static ember_session *g_s;

static int group_open(void **state)
{
    (void)state;
    g_s = session_open("local[2]", "persist_test", NULL, TESTFN_PLUGIN);
    return g_s ? 0 : -1;
}

static int group_close(void **state)
{
    (void)state;
    ember_session_close(g_s);
    g_s = NULL;
    return 0;
}

/*
 * [executor cache] A job that should have read every partition of a
 * persisted dataset from the executors' block managers mapped `delta`
 * records through testfn.counted: it must be 0. These assertions hold
 * once the executor side of issue 6 (runtime/executor.c, pipeline.c)
 * keeps and serves blocks; a build of the test with
 * -DPERSIST_TEST_NO_CACHE_CHECKS skips them (and only them) while it does
 * not.
 */
#ifdef PERSIST_TEST_NO_CACHE_CHECKS
#define assert_from_cache(delta) ((void)(delta))
#else
#define assert_from_cache(delta)                                            \
    do {                                                                    \
        int64_t d_ = (delta);                                               \
        if (d_ != 0)                                                        \
            fail_msg("a persisted dataset was computed again: "             \
                     "testfn.counted mapped %" PRId64 " records, want 0 "   \
                     "(served from the executors' blocks)", d_);            \
    } while (0)
#endif

/* persist(r, level), which must succeed. */
static void persist_ok(ember_rdd *r, const char *level)
{
    ember_error err = {0};
    ember_status st = ember_persist(r, level, &err);
    if (st != EMBER_OK)
        fail_msg("persist(%s): %s (%s)", level, err.msg,
                 ember_status_name(st));
}

/* persist(r, level), which must fail with EMBER_EINVAL; the message (a
 * static buffer, valid until the next call). */
static const char *persist_refused(ember_rdd *r, const char *level)
{
    static ember_error err;
    memset(&err, 0, sizeof err);
    assert_int_equal(ember_persist(r, level, &err), EMBER_EINVAL);
    assert_int_equal(err.code, EMBER_EINVAL);
    return err.msg;
}

/* The line of description d that begins (after any tree drawing) with
 * "op [id]" of dataset id (static buffer); the test fails without one. */
static const char *line_of(const char *d, const char *op, uint64_t id)
{
    static char line[512];
    char want[64];
    snprintf(want, sizeof want, "%s [%" PRIu64 "]", op, id);
    for (const char *at = d; at && *at;) {
        const char *end = strchr(at, '\n');
        size_t len = end ? (size_t)(end - at) : strlen(at);
        if (len < sizeof line) {
            memcpy(line, at, len);
            line[len] = '\0';
            if (strstr(line, want))
                return line;
        }
        at = end ? end + 1 : NULL;
    }
    fail_msg("no line '%s' in the lineage:\n%s", want, d);
    return NULL;
}

/* ---- each storage level ------------------------------------------------- */

/* Persists a counted range at level and collects it twice. */
static void collect_twice(const char *level)
{
    ember_rdd *m = counted_range(g_s, N);
    uint64_t jobs = ember_session_jobs(g_s);
    persist_ok(m, level);
    assert_string_equal(ember_rdd_storage_level(m), level);
    assert_int_equal(ember_session_jobs(g_s), jobs); /* lazy: no job */

    char *want = ints_json(N);
    int64_t c0 = testfn_counted();
    char *first = collect_json(m, 0);
    int64_t c1 = testfn_counted();
    char *second = collect_json(m, 0);
    int64_t c2 = testfn_counted();
    assert_string_equal(first, want);
    assert_string_equal(second, want);
    /* the first job computed every record once */
    assert_int_equal(c1 - c0, N);
    assert_from_cache(c2 - c1);
    free(want);
    free(first);
    free(second);
}

static void test_memory_only(void **state)
{
    (void)state;
    collect_twice("MEMORY_ONLY");
}

static void test_memory_only_ser(void **state)
{
    (void)state;
    collect_twice("MEMORY_ONLY_SER");
}

static void test_disk_only(void **state)
{
    (void)state;
    collect_twice("DISK_ONLY");
}

static void test_memory_and_disk(void **state)
{
    (void)state;
    collect_twice("MEMORY_AND_DISK");
}

static void test_off_heap(void **state)
{
    (void)state;
    collect_twice("OFF_HEAP");
}

/* unpersist: the level is NONE again and the next job computes; the
 * dataset may then be persisted at another level and is read from there;
 * unpersisting what is not persisted does nothing. */
static void test_unpersist(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g_s, N);
    persist_ok(m, "MEMORY_ONLY");
    char *want = ints_json(N);
    char *a = collect_json(m, 0);
    int64_t c1 = testfn_counted();
    assert_int_equal(ember_unpersist(m, &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(m), "NONE");
    char *b = collect_json(m, 0);
    int64_t c2 = testfn_counted();
    assert_int_equal(c2 - c1, N); /* computed again */
    persist_ok(m, "DISK_ONLY");   /* another level is fine now */
    char *c = collect_json(m, 0);
    int64_t c3 = testfn_counted();
    assert_int_equal(c3 - c2, N);
    char *d = collect_json(m, 0);
    assert_from_cache(testfn_counted() - c3);
    assert_string_equal(a, want);
    assert_string_equal(b, want);
    assert_string_equal(c, want);
    assert_string_equal(d, want);
    assert_int_equal(ember_unpersist(m, &err), EMBER_OK);
    assert_int_equal(ember_unpersist(m, &err), EMBER_OK); /* nothing */
    assert_int_equal(ember_unpersist(NULL, &err), EMBER_EINVAL);
    free(want);
    free(a);
    free(b);
    free(c);
    free(d);
}

/* ember_cache is MEMORY_ONLY, read back by a job of another kind (count)
 * and by one over a child dataset. */
static void test_cache_other_actions(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g_s, N);
    assert_int_equal(ember_cache(m, &err), EMBER_OK);
    assert_string_equal(ember_rdd_storage_level(m), "MEMORY_ONLY");
    int64_t c0 = testfn_counted();
    assert_int_equal(count_of(m), N);
    int64_t c1 = testfn_counted();
    assert_int_equal(c1 - c0, N);
    /* a child, in one partition, and the dataset itself */
    ember_rdd *one = ember_coalesce(m, 1, &err);
    assert_non_null(one);
    assert_int_equal(count_of(one), N);
    char *want = ints_json(N);
    char *got = collect_json(m, 0);
    assert_string_equal(got, want);
    assert_from_cache(testfn_counted() - c1);
    free(want);
    free(got);
}

/* Persisting after a job already computed the dataset: that job stored
 * nothing, the next one computes and stores, the one after reads. */
static void test_lazy(void **state)
{
    (void)state;
    ember_rdd *m = counted_range(g_s, N);
    char *want = ints_json(N);
    int64_t c0 = testfn_counted();
    char *a = collect_json(m, 0);
    int64_t c1 = testfn_counted();
    assert_int_equal(c1 - c0, N);

    uint64_t jobs = ember_session_jobs(g_s);
    persist_ok(m, "MEMORY_ONLY");
    assert_int_equal(ember_session_jobs(g_s), jobs);
    char *b = collect_json(m, 0);
    int64_t c2 = testfn_counted();
    assert_int_equal(c2 - c1, N); /* not cached before this job */
    char *c = collect_json(m, 0);
    assert_from_cache(testfn_counted() - c2);
    assert_string_equal(a, want);
    assert_string_equal(b, want);
    assert_string_equal(c, want);
    free(want);
    free(a);
    free(b);
    free(c);
}

/* ---- a cached shuffle result ------------------------------------------- */

/* (i mod 7, sum of those i) for i in [0, 100) through reduce_by_key into 3
 * partitions, then testfn.counted, cached; collected, then used by two
 * more jobs (its keys, its count). */
static void test_cached_shuffle(void **state)
{
    (void)state;
    ember_error err = {0};
    uint8_t arg[16];
    ember_rdd *r = ember_range(g_s, 0, 100, 1, 4, &err);
    assert_non_null(r);
    ember_rdd *k = ember_key_by(r, fn_int("testfn.key_mod", arg, sizeof arg,
                                          7),
                                &err);
    assert_non_null(k);
    ember_partitioner p = {.kind = EMBER_PART_HASH, .partitions = 3};
    ember_rdd *sums = ember_reduce_by_key(k, fn0("std.sum"), &p, &err);
    if (!sums)
        fail_msg("reduce_by_key: %s", err.msg);
    ember_rdd *m = ember_map(sums, fn0("testfn.counted"), &err);
    assert_non_null(m);
    assert_int_equal(ember_cache(m, &err), EMBER_OK);

    char *want = mod_sums_json(100, 7);
    int64_t c0 = testfn_counted();
    char *first = collect_json(m, 1);
    int64_t c1 = testfn_counted();
    assert_string_equal(first, want);
    assert_int_equal(c1 - c0, 7);

    /* two later jobs over the cached dataset */
    ember_rdd *keys = ember_keys(m, &err);
    assert_non_null(keys);
    char *got_keys = collect_json(keys, 1);
    assert_string_equal(got_keys, "[0] [1] [2] [3] [4] [5] [6]");
    assert_int_equal(count_of(m), 7);
    char *again = collect_json(m, 1);
    assert_string_equal(again, want);
    assert_from_cache(testfn_counted() - c1);
    free(first);
    free(got_keys);
    free(again);
    free(want);
}

/* ---- the level rules --------------------------------------------------- */

static void test_level_cannot_change(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g_s, N);
    char want[160];
    snprintf(want, sizeof want,
             "dataset %" PRIu64 " is already persisted at MEMORY_ONLY; a "
             "storage level cannot be changed once set",
             ember_rdd_id(m));
    persist_ok(m, "MEMORY_ONLY");
    persist_ok(m, "MEMORY_ONLY"); /* the same level again */
    assert_int_equal(ember_cache(m, &err), EMBER_OK);
    assert_string_equal(persist_refused(m, "DISK_ONLY"), want);
    assert_string_equal(persist_refused(m, "MEMORY_ONLY_2"), want);
    assert_string_equal(persist_refused(m, "NONE"), want);
    assert_string_equal(ember_rdd_storage_level(m), "MEMORY_ONLY");

    /* cache after another level */
    ember_rdd *d = counted_range(g_s, N);
    persist_ok(d, "DISK_ONLY");
    memset(&err, 0, sizeof err);
    assert_int_equal(ember_cache(d, &err), EMBER_EINVAL);
    snprintf(want, sizeof want,
             "dataset %" PRIu64 " is already persisted at DISK_ONLY; a "
             "storage level cannot be changed once set",
             ember_rdd_id(d));
    assert_string_equal(err.msg, want);
    assert_string_equal(ember_rdd_storage_level(d), "DISK_ONLY");

    /* the refused change left the dataset as it was: it still works */
    char *t = collect_json(d, 0);
    char *all = ints_json(N);
    assert_string_equal(t, all);
    free(t);
    free(all);
}

static void test_unknown_level(void **state)
{
    (void)state;
    static const char *const names[] = {
        "NONE", "DISK_ONLY", "DISK_ONLY_2", "DISK_ONLY_3", "MEMORY_ONLY",
        "MEMORY_ONLY_2", "MEMORY_ONLY_SER", "MEMORY_ONLY_SER_2",
        "MEMORY_AND_DISK", "MEMORY_AND_DISK_2", "MEMORY_AND_DISK_SER",
        "MEMORY_AND_DISK_SER_2", "OFF_HEAP"};
    ember_rdd *m = counted_range(g_s, N);
    const char *msg = persist_refused(m, "MEMORY");
    assert_contains(msg, "unknown storage level 'MEMORY'");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_contains(msg, names[i]);
    /* Spark's names are upper case, as in StorageLevel.fromString */
    assert_contains(persist_refused(m, "memory_only"),
                    "unknown storage level 'memory_only'");
    assert_contains(persist_refused(m, ""), "unknown storage level ''");
    assert_contains(persist_refused(m, NULL), "unknown storage level");
    assert_string_equal(ember_rdd_storage_level(m), "NONE");

    ember_error err = {0};
    assert_int_equal(ember_persist(NULL, "MEMORY_ONLY", &err), EMBER_EINVAL);
    assert_contains(err.msg, "dataset is NULL");
    assert_int_equal(ember_cache(NULL, NULL), EMBER_EINVAL);

    /* every name is accepted (each on a dataset of its own) */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ember_rdd *x = counted_range(g_s, N);
        persist_ok(x, names[i]);
        assert_string_equal(ember_rdd_storage_level(x), names[i]);
    }
}

static void test_none(void **state)
{
    (void)state;
    assert_string_equal(ember_rdd_storage_level(NULL), "NONE");
    ember_rdd *m = counted_range(g_s, N);
    assert_string_equal(ember_rdd_storage_level(m), "NONE");
    persist_ok(m, "NONE"); /* not persisted: nothing happens */
    assert_string_equal(ember_rdd_storage_level(m), "NONE");
    char *d = lineage_of(m);
    assert_null(strstr(d, "NONE"));
    free(d);
    /* NONE set nothing, so a level can still be chosen */
    persist_ok(m, "MEMORY_AND_DISK_SER");
    assert_string_equal(ember_rdd_storage_level(m), "MEMORY_AND_DISK_SER");
}

/* ---- the lineage description ------------------------------------------- */

static void test_lineage_shows_level(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *m = counted_range(g_s, N);
    ember_rdd *child = ember_glom(m, &err);
    assert_non_null(child);
    char *before = lineage_of(child);
    assert_null(strstr(line_of(before, "map", ember_rdd_id(m)),
                       "MEMORY_AND_DISK"));
    free(before);

    persist_ok(m, "MEMORY_AND_DISK");
    char *d = lineage_of(m);
    assert_contains(line_of(d, "map", ember_rdd_id(m)), " [MEMORY_AND_DISK]");
    free(d);

    /* in a child's description: on the persisted dataset's line only */
    d = lineage_of(child);
    assert_contains(line_of(d, "map", ember_rdd_id(m)), " [MEMORY_AND_DISK]");
    assert_null(strstr(line_of(d, "glom", ember_rdd_id(child)),
                       "MEMORY_AND_DISK"));
    assert_null(strstr(line_of(d, "range", ember_rdd_id(m) - 1),
                       "MEMORY_AND_DISK"));
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_only),
        cmocka_unit_test(test_memory_only_ser),
        cmocka_unit_test(test_disk_only),
        cmocka_unit_test(test_memory_and_disk),
        cmocka_unit_test(test_off_heap),
        cmocka_unit_test(test_cache_other_actions),
        cmocka_unit_test(test_unpersist),
        cmocka_unit_test(test_lazy),
        cmocka_unit_test(test_cached_shuffle),
        cmocka_unit_test(test_level_cannot_change),
        cmocka_unit_test(test_unknown_level),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_lineage_shows_level),
    };
    return cmocka_run_group_tests(tests, group_open, group_close);
}
