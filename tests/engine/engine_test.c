/*
 * engine_test.c — the driver API (ember/ember.h) end to end: every narrow
 * operation and every action on a local[2] session, with exact expected
 * outputs taken from Spark's behaviour (SEMANTICS.md S1, S3–S5, S14–S16,
 * S25, S29), and the failures a user sees (function errors, broken
 * function contracts, retries, the driver's result size guard).
 *
 * Results are compared as text: each record rendered with ember_rec_json
 * and the records joined with single spaces, e.g. `[0] [1,"x"] [[1,2]]`.
 * The test plugin "testfn" (testfn.c) is loaded by path (TESTFN_PLUGIN).

 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver_support.h"
#include "ember/ember.h"
#include "ember/record.h"

/* ---- helpers ------------------------------------------------------------ */

static const char *const g_plugins[] = {TESTFN_PLUGIN, NULL};

/* The session shared by the first group (local[2], testfn loaded). */
static ember_session *g_s;

/* Opens a session on master with testfn and the extra conf (nullable). */
static ember_session *open_session(const char *master,
                                   const char *const *conf)
{
    return session_open(master, "engine_test", conf, TESTFN_PLUGIN);
}

static int group_open(void **state)
{
    (void)state;
    g_s = open_session("local[2]", NULL);
    return g_s ? 0 : -1;
}

static int group_close(void **state)
{
    (void)state;
    ember_session_close(g_s);
    g_s = NULL;
    return 0;
}

/* A batch of one-int records; b is the backing buffer (release it). */
static ember_batch ints(ember_buf *b, const int64_t *v, size_t n)
{
    uint8_t tmp[16];
    *b = ember_buf_heap();
    for (size_t i = 0; i < n; i++) {
        ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
        assert_int_equal(ember_rec_put_int(&one, v[i]), EMBER_OK);
        assert_int_equal(ember_batch_append(b, one.data, one.len), EMBER_OK);
    }
    return (ember_batch){b->data, b->len, n};
}

/* A batch of one-string records. */
static ember_batch strs(ember_buf *b, const char *const *v, size_t n)
{
    *b = ember_buf_heap();
    for (size_t i = 0; i < n; i++) {
        ember_buf one = ember_buf_heap();
        assert_int_equal(ember_rec_put_string(&one, v[i], strlen(v[i])),
                         EMBER_OK);
        assert_int_equal(ember_batch_append(b, one.data, one.len), EMBER_OK);
        ember_buf_release(&one);
    }
    return (ember_batch){b->data, b->len, n};
}

/* A batch of (string key, int value) pair records. */
static ember_batch pairs_si(ember_buf *b, const char *const *k,
                            const int64_t *v, size_t n)
{
    *b = ember_buf_heap();
    for (size_t i = 0; i < n; i++) {
        ember_buf one = ember_buf_heap();
        assert_int_equal(ember_rec_put_string(&one, k[i], strlen(k[i])),
                         EMBER_OK);
        assert_int_equal(ember_rec_put_int(&one, v[i]), EMBER_OK);
        assert_int_equal(ember_batch_append(b, one.data, one.len), EMBER_OK);
        ember_buf_release(&one);
    }
    return (ember_batch){b->data, b->len, n};
}

/* An encoded record of one int, into tmp (>= 10 bytes); its length. */
static size_t int_rec(uint8_t *tmp, size_t cap, int64_t v)
{
    ember_buf b = ember_buf_fixed(tmp, cap);
    assert_int_equal(ember_rec_put_int(&b, v), EMBER_OK);
    return b.len;
}

/* Renders records as JSON arrays joined by single spaces (static buffer,
 * valid until the next call). sorted != 0 sorts the records first. */
static char g_text[1 << 16];

static const char *render(const ember_records *r, int sorted)
{
    char *t = records_json(r, sorted);
    size_t n = strlen(t);
    assert_true(n < sizeof g_text);
    memcpy(g_text, t, n + 1);
    free(t);
    return g_text;
}

/* collect(r) rendered; fails the test when the action fails. */
static const char *collect_text(ember_rdd *r, int sorted)
{
    ember_records rec = collect_recs(r);
    const char *t = render(&rec, sorted);
    ember_records_free(&rec);
    return t;
}

/* An action that filled rec returned st: it must have succeeded, with rec
 * rendered (sorted, when sorted is set) equal to want. Frees rec. */
static void expect_recs(ember_status st, ember_records *rec, int sorted,
                        const char *want)
{
    assert_int_equal(st, EMBER_OK);
    assert_string_equal(render(rec, sorted), want);
    ember_records_free(rec);
}

#define assert_collect(r, want)                                             \
    assert_string_equal(collect_text((r), 0), (want))
#define assert_collect_sorted(r, want)                                      \
    assert_string_equal(collect_text((r), 1), (want))

static ember_rdd *range(int64_t start, int64_t end, int64_t step,
                        uint32_t slices)
{
    ember_error err = {0};
    ember_rdd *r = ember_range(g_s, start, end, step, slices, &err);
    if (!r)
        fail_msg("range: %s", err.msg);
    return r;
}

/* A dataset of batch (backed by b, released here) on the shared
 * session. */
static ember_rdd *par_batch(ember_buf *b, ember_batch batch, uint32_t slices)
{
    ember_error err = {0};
    ember_rdd *r = ember_parallelize(g_s, &batch, slices, &err);
    ember_buf_release(b);
    if (!r)
        fail_msg("parallelize: %s", err.msg);
    return r;
}

static ember_rdd *par_ints(const int64_t *v, size_t n, uint32_t slices)
{
    ember_buf b;
    return par_batch(&b, ints(&b, v, n), slices);
}

static ember_rdd *par_strs(const char *const *v, size_t n, uint32_t slices)
{
    ember_buf b;
    return par_batch(&b, strs(&b, v, n), slices);
}

static ember_rdd *glom(ember_rdd *r)
{
    ember_error err = {0};
    ember_rdd *g = ember_glom(r, &err);
    if (!g)
        fail_msg("glom: %s", err.msg);
    return g;
}

/* A function with an argument record built by the caller into buf. */
static ember_fn fn_arg(const char *name, const ember_buf *arg)
{
    return (ember_fn){name, arg->data, arg->len};
}

/* ---- sources ------------------------------------------------------------ */

/* S16: slice i = [i*n/k, (i+1)*n/k); 5 records into 4 -> 1,1,1,2. */
static void test_parallelize_slicing(void **state)
{
    (void)state;
    static const int64_t v[] = {10, 11, 12, 13, 14};
    ember_rdd *r = par_ints(v, 5, 4);
    assert_int_equal(ember_rdd_partitions(r), 4);
    assert_collect(r, "[10] [11] [12] [13] [14]");
    assert_collect(glom(r), "[[10]] [[11]] [[12]] [[13,14]]");
    /* more slices than records: the first ones are empty */
    assert_collect(glom(par_ints(v, 2, 3)), "[[]] [[10]] [[11]]");

    ember_buf b;
    ember_error err = {0};
    ember_batch batch = ints(&b, v, 5);
    assert_null(ember_parallelize(g_s, &batch, 0, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
    assert_contains(err.msg, "slices");
    ember_buf_release(&b);
}

static void test_range(void **state)
{
    (void)state;
    ember_rdd *r = range(0, 10, 1, 3);
    assert_collect(r, "[0] [1] [2] [3] [4] [5] [6] [7] [8] [9]");
    assert_collect(glom(r), "[[0,1,2]] [[3,4,5]] [[6,7,8,9]]");
    assert_int_equal(count_of(r), 10);

    r = range(10, 0, -3, 2);
    assert_collect(glom(r), "[[10,7]] [[4,1]]");

    r = range(3, 12, 4, 2); /* 3, 7, 11 */
    assert_collect(glom(r), "[[3]] [[7,11]]");

    r = range(5, 5, 1, 2);
    assert_int_equal(count_of(r), 0);
    assert_collect(r, "");
    assert_collect(glom(r), "[[]] [[]]");
    assert_int_equal(count_of(range(0, 10, -1, 2)), 0);

    ember_error err = {0};
    assert_null(ember_range(g_s, 0, 10, 0, 2, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

static void test_empty(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *e = ember_empty(g_s, &err);
    assert_non_null(e);
    assert_int_equal(ember_rdd_partitions(e), 0);
    uint64_t jobs = ember_session_jobs(g_s);
    assert_int_equal(count_of(e), 0);
    assert_collect(e, "");
    /* nothing to compute: no job */
    assert_int_equal(ember_session_jobs(g_s), jobs);
}

/* ---- narrow transformations --------------------------------------------- */

static void test_map_flat_map_filter(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_buf arg = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&arg, "x", 1), EMBER_OK);
    static const int64_t v[] = {1, 2, 3};
    ember_rdd *m = ember_map(par_ints(v, 3, 2), fn_arg("std.pair_with", &arg),
                             &err);
    assert_collect(m, "[1,\"x\"] [2,\"x\"] [3,\"x\"]");
    ember_buf_release(&arg);

    static const char *const lines[] = {"a b", "", "  c  d e "};
    ember_rdd *w = ember_flat_map(par_strs(lines, 3, 2),
                                  fn0("std.split_words"), &err);
    assert_collect(w, "[\"a\"] [\"b\"] [\"c\"] [\"d\"] [\"e\"]");

    arg = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&arg, "gt", 2), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&arg, 3), EMBER_OK);
    ember_rdd *f = ember_filter(range(1, 7, 1, 3), fn_arg("std.compare", &arg),
                                &err);
    assert_collect(f, "[4] [5] [6]");
    assert_collect(glom(f), "[[]] [[4]] [[5,6]]");
    ember_buf_release(&arg);

    /* flat_map may emit any number per record */
    ember_rdd *two = ember_flat_map(range(0, 2, 1, 1), fn0("testfn.two_per"),
                                    &err);
    assert_collect(two, "[0] [0] [1] [1]");
}

static void test_pair_operations(void **state)
{
    (void)state;
    ember_error err = {0};
    static const char *const k[] = {"a", "b"};
    static const char *const words[] = {"a", "bb"};
    ember_rdd *kb = ember_key_by(par_strs(words, 2, 2), fn0("std.identity"),
                                 &err);
    assert_collect(kb, "[\"a\",\"a\"] [\"bb\",\"bb\"]");

    /* a key of two elements becomes one tuple value */
    ember_buf arg = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&arg, "k", 1), EMBER_OK);
    static const int64_t one[] = {1};
    kb = ember_key_by(par_ints(one, 1, 1), fn_arg("std.pair_with", &arg),
                      &err);
    assert_collect(kb, "[[1,\"k\"],1]");
    ember_buf_release(&arg);

    static const int64_t v[] = {1, 2};
    ember_buf b;
    ember_batch batch = pairs_si(&b, k, v, 2);
    ember_rdd *p = ember_parallelize(g_s, &batch, 2, &err);
    ember_buf_release(&b);
    assert_non_null(p);
    assert_collect(ember_keys(p, &err), "[\"a\"] [\"b\"]");
    assert_collect(glom(ember_coalesce(p, 1, &err)),
                   "[[[\"a\",1],[\"b\",2]]]");
    assert_collect(ember_values(p, &err), "[1] [2]");

    arg = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&arg, "z", 1), EMBER_OK);
    ember_rdd *mv = ember_map_values(p, fn_arg("std.pair_with", &arg), &err);
    assert_collect(mv, "[\"a\",[1,\"z\"]] [\"b\",[2,\"z\"]]");
    ember_buf_release(&arg);
    /* a tuple value comes back out of values() as a record's elements */
    assert_collect(ember_values(mv, &err), "[1,\"z\"] [2,\"z\"]");

    /* flat_map_values: every output value keeps its key */
    ember_buf sb = ember_buf_heap();
    static const char *const vals[] = {"x y", "", "z"};
    static const char *const keys3[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) {
        ember_buf r = ember_buf_heap();
        assert_int_equal(ember_rec_put_string(&r, keys3[i], 1), EMBER_OK);
        assert_int_equal(ember_rec_put_string(&r, vals[i], strlen(vals[i])),
                         EMBER_OK);
        assert_int_equal(ember_batch_append(&sb, r.data, r.len), EMBER_OK);
        ember_buf_release(&r);
    }
    batch = (ember_batch){sb.data, sb.len, 3};
    ember_rdd *sp = ember_parallelize(g_s, &batch, 2, &err);
    ember_buf_release(&sb);
    assert_non_null(sp);
    ember_rdd *fmv = ember_flat_map_values(sp, fn0("std.split_words"), &err);
    assert_collect(fmv, "[\"a\",\"x\"] [\"a\",\"y\"] [\"c\",\"z\"]");

    /* keys of something that is not a pair is an error naming it */
    ember_status code;
    const char *msg = collect_error(ember_keys(range(0, 3, 1, 1), &err),
                                    &code);
    assert_contains(msg, "pair");
}

static void test_union_coalesce(void **state)
{
    (void)state;
    ember_error err = {0};
    static const int64_t v[] = {1, 2};
    ember_rdd *parts[2] = {par_ints(v, 2, 2), range(10, 13, 1, 1)};
    ember_rdd *u = ember_union(parts, 2, &err);
    assert_non_null(u);
    assert_int_equal(ember_rdd_partitions(u), 3);
    assert_collect(glom(u), "[[1]] [[2]] [[10,11,12]]");

    ember_rdd *r = range(0, 6, 1, 3); /* [0,1] [2,3] [4,5] */
    ember_rdd *c = ember_coalesce(r, 2, &err);
    assert_non_null(c);
    assert_int_equal(ember_rdd_partitions(c), 2);
    /* no locality: parent partitions split by position, [0,1) and [1,3) */
    assert_collect(glom(c), "[[0,1]] [[2,3,4,5]]");
    c = ember_coalesce(r, 1, &err);
    assert_collect(glom(c), "[[0,1,2,3,4,5]]");
    c = ember_coalesce(r, 5, &err);
    assert_non_null(c);
    assert_int_equal(ember_rdd_partitions(c), 3);
    assert_collect(glom(c), "[[0,1]] [[2,3]] [[4,5]]");
    c = ember_coalesce(range(0, 10, 1, 10), 3, &err);
    assert_collect(glom(c), "[[0,1,2]] [[3,4,5]] [[6,7,8,9]]");
    assert_null(ember_coalesce(r, 0, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

static void test_sample(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *r = range(0, 100, 1, 4);
    assert_int_equal(count_of(ember_sample(r, 0, 0.0, 1, &err)), 0);
    assert_int_equal(count_of(ember_sample(r, 1, 0.0, 1, &err)), 0);
    char all[1024];
    snprintf(all, sizeof all, "%s", collect_text(r, 0));
    assert_collect(ember_sample(r, 0, 1.0, 5, &err), all);

    /* a fixed seed gives the same sample every time it is computed */
    char first[1024];
    ember_rdd *s = ember_sample(r, 0, 0.3, 42, &err);
    assert_non_null(s);
    snprintf(first, sizeof first, "%s", collect_text(s, 0));
    assert_collect(s, first);
    assert_collect(ember_sample(r, 0, 0.3, 42, &err), first);
    uint64_t n = count_of(s);
    assert_true(n > 0 && n < 100);

    /* another seed, another sample */
    assert_string_not_equal(collect_text(ember_sample(r, 0, 0.3, 43, &err),
                                         0),
                            first);

    /* the samplers keep about `fraction` of a large input (the seed is
     * fixed, so this is deterministic) */
    ember_rdd *big = range(0, 100000, 1, 4);
    n = count_of(ember_sample(big, 0, 0.3, 9, &err));
    assert_true(n > 28500 && n < 31500);
    n = count_of(ember_sample(big, 1, 2.0, 9, &err));
    assert_true(n > 197000 && n < 203000);
    n = count_of(ember_sample(big, 1, 0.5, 9, &err));
    assert_true(n > 48500 && n < 51500);
    /* large fractions with replacement (exp(-mean) would underflow) */
    n = count_of(ember_sample(range(0, 100, 1, 2), 1, 1000.0, 9, &err));
    assert_true(n > 97000 && n < 103000);

    ember_rdd *w = ember_sample(r, 1, 2.0, 7, &err);
    assert_non_null(w);
    snprintf(first, sizeof first, "%s", collect_text(w, 0));
    assert_collect(w, first);

    assert_null(ember_sample(r, 0, 1.5, 1, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
    assert_null(ember_sample(r, 1, -0.5, 1, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

static void test_zip(void **state)
{
    (void)state;
    ember_error err = {0};
    static const char *const s4[] = {"a", "b", "c", "d"};
    ember_rdd *z = ember_zip(range(0, 4, 1, 2), par_strs(s4, 4, 2), &err);
    assert_non_null(z);
    assert_collect(z, "[0,\"a\"] [1,\"b\"] [2,\"c\"] [3,\"d\"]");

    /* S15: partition counts are checked when the dataset is made */
    assert_null(ember_zip(range(0, 4, 1, 2), range(0, 4, 1, 3), &err));
    assert_int_equal(err.code, EMBER_EINVAL);
    assert_contains(err.msg, "unequal numbers of partitions");

    /* ... element counts while running */
    z = ember_zip(range(0, 4, 1, 2), range(0, 5, 1, 2), &err);
    assert_non_null(z);
    const char *msg = collect_error(z, NULL);
    assert_contains(msg, "Can only zip RDDs with same number of elements in "
                         "each partition");

    /* zip_partitions: one call per partition, a tuple per input */
    ember_rdd *in[2] = {range(0, 5, 1, 2), range(0, 4, 1, 2)};
    ember_rdd *zp = ember_zip_partitions(in, 2, fn0("testfn.sum_pairs_zip"),
                                         &err);
    assert_non_null(zp);
    assert_collect(zp, "[2] [2] [3] [2]");
    ember_rdd *bad[2] = {range(0, 5, 1, 2), range(0, 4, 1, 1)};
    assert_null(ember_zip_partitions(bad, 2, fn0("testfn.sum_pairs_zip"),
                                     &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

/* S14: item i of partition k gets i*n + k; no job runs to build it. */
static void test_zip_with_unique_id(void **state)
{
    (void)state;
    ember_error err = {0};
    uint64_t jobs = ember_session_jobs(g_s);
    ember_rdd *z = ember_zip_with_unique_id(range(0, 10, 1, 3), &err);
    assert_non_null(z);
    assert_int_equal(ember_session_jobs(g_s), jobs);
    assert_collect(z, "[0,0] [1,3] [2,6] [3,1] [4,4] [5,7] [6,2] [7,5] "
                      "[8,8] [9,11]");
    assert_int_equal(ember_session_jobs(g_s), jobs + 1);
}

/* S14: zip_with_index runs one job counting partitions 0..n-2. */
static void test_zip_with_index(void **state)
{
    (void)state;
    ember_error err = {0};
    uint64_t jobs = ember_session_jobs(g_s);
    ember_rdd *z = ember_zip_with_index(range(100, 110, 1, 3), &err);
    assert_non_null(z);
    assert_int_equal(ember_session_jobs(g_s), jobs + 1);
    assert_collect(z, "[100,0] [101,1] [102,2] [103,3] [104,4] [105,5] "
                      "[106,6] [107,7] [108,8] [109,9]");
    assert_int_equal(ember_session_jobs(g_s), jobs + 2);

    /* empty partitions in the middle */
    static const int64_t v[] = {7, 8};
    z = ember_zip_with_index(par_ints(v, 2, 4), &err);
    assert_non_null(z);
    assert_collect(z, "[7,0] [8,1]");

    /* the counting job fails: zip_with_index says so at once */
    uint8_t arg[16];
    size_t al = int_rec(arg, sizeof arg, 1);
    ember_rdd *bad = ember_map(range(0, 10, 1, 3),
                               (ember_fn){"testfn.fail_on", arg, al}, &err);
    assert_null(ember_zip_with_index(bad, &err));
    assert_contains(err.msg, "bad record 1");

    /* one partition: no job needed */
    jobs = ember_session_jobs(g_s);
    z = ember_zip_with_index(range(5, 8, 1, 1), &err);
    assert_non_null(z);
    assert_int_equal(ember_session_jobs(g_s), jobs);
    assert_collect(z, "[5,0] [6,1] [7,2]");
}

static void test_pipe(void **state)
{
    (void)state;
    ember_error err = {0};
    static const char *const s[] = {"hello", "World", "x y"};
    ember_rdd *p = ember_pipe(par_strs(s, 3, 2), "tr a-z A-Z", &err);
    assert_non_null(p);
    assert_collect(p, "[\"HELLO\"] [\"WORLD\"] [\"X Y\"]");
    /* ints go in as their text */
    p = ember_pipe(range(1, 4, 1, 1), "sed s/^/n/", &err);
    assert_collect(p, "[\"n1\"] [\"n2\"] [\"n3\"]");

    p = ember_pipe(par_strs(s, 3, 2), "cat >/dev/null; exit 3", &err);
    assert_non_null(p);
    assert_contains(collect_error(p, NULL), "exited with status 3");
    /* a command that exits without reading its input */
    p = ember_pipe(range(0, 20000, 1, 1), "exit 3", &err);
    assert_contains(collect_error(p, NULL), "exited with status 3");
    /* one that reads only part of it and succeeds */
    p = ember_pipe(range(0, 20000, 1, 1), "head -n 2", &err);
    assert_collect(p, "[\"0\"] [\"1\"]");

    assert_null(ember_pipe(range(0, 1, 1, 1), "", &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

static void test_map_partitions(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *t = ember_map_partitions_with_index(
        range(0, 5, 1, 2), fn0("testfn.tag_partition"), 0, &err);
    assert_non_null(t);
    assert_collect(t, "[0,0] [0,1] [1,2] [1,3] [1,4]");

    /* state lives for one task: indexes restart in every partition */
    ember_rdd *c = ember_map_partitions(range(0, 5, 1, 2),
                                        fn0("testfn.count_batch"), 0, &err);
    assert_non_null(c);
    assert_collect(c, "[0] [1] [0] [1] [2]");

    /* a tuple record becomes one tuple value */
    static const char *const k[] = {"a"};
    static const int64_t v[] = {1};
    ember_buf b;
    ember_batch batch = pairs_si(&b, k, v, 1);
    ember_rdd *p = ember_parallelize(g_s, &batch, 1, &err);
    ember_buf_release(&b);
    t = ember_map_partitions_with_index(p, fn0("testfn.tag_partition"), 1,
                                        &err);
    assert_collect(t, "[0,[\"a\",1]]");

    /* the index is the function's own dataset's partition, also below a
     * union or a coalesce (which renumber partitions) */
    ember_rdd *a = range(1, 3, 1, 2);
    ember_rdd *tagged = ember_map_partitions_with_index(
        range(10, 12, 1, 2), fn0("testfn.tag_partition"), 0, &err);
    ember_rdd *both[2] = {a, tagged};
    assert_collect(ember_union(both, 2, &err), "[1] [2] [0,10] [1,11]");
    assert_collect(ember_coalesce(tagged, 1, &err), "[0,10] [1,11]");
}

/* Data bigger than one plan string (64 KiB of base64) travels in pieces:
 * one slice of 30,000 records, and 600 input files. */
static void test_big_sources(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_buf b = ember_buf_heap();
    for (int64_t i = 0; i < 30000; i++) {
        uint8_t rec[9];
        ember_buf rb = ember_buf_fixed(rec, sizeof rec);
        ember_rec_put_int(&rb, i);
        ember_batch_append(&b, rec, rb.len);
    }
    ember_batch batch = {b.data, b.len, 30000};
    ember_rdd *p = ember_parallelize(g_s, &batch, 1, &err);
    ember_buf_release(&b);
    assert_non_null(p);
    assert_int_equal(count_of(p), 30000);

    char dir[] = "/tmp/ember-engine-files-XXXXXX";
    assert_non_null(mkdtemp(dir));
    for (int i = 0; i < 600; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/f%03d.txt", dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "line of file %d\n", i);
        fclose(f);
    }
    ember_rdd *t = ember_text_file(g_s, dir, 0, &err);
    assert_non_null(t);
    assert_int_equal(ember_rdd_partitions(t), 600);
    assert_int_equal(count_of(t), 600);
    for (int i = 0; i < 600; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/f%03d.txt", dir, i);
        unlink(path);
    }
    rmdir(dir);
}

/* Many pipe commands at once, each waiting for the end of its own input:
 * none may inherit another's pipe (which would hang it). */
static void test_pipes_in_parallel(void **state)
{
    (void)state;
    ember_error err = {0};
    for (int round = 0; round < 20; round++) {
        ember_rdd *p = ember_pipe(range(0, 800, 1, 8), "cat", &err);
        assert_non_null(p);
        assert_int_equal(count_of(p), 800);
    }
}

/* Partitions far larger than one batch: functions keep their per-task
 * state across batches, and big records (glom) frame correctly. */
static void test_large_partitions(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    ember_rdd *r = range(0, 100000, 1, 2);
    assert_int_equal(count_of(r), 100000);
    ember_rdd *c = ember_map_partitions(r, fn0("testfn.count_batch"), 0,
                                        &err);
    /* indexes 0..49999 in each partition: 2 * 49999 * 50000 / 2 */
    expect_recs(ember_reduce(c, fn0("std.sum"), &rec, &err), &rec, 0,
                "[2499950000]");

    ember_buf a = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&a, "ge", 2), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&a, 99990), EMBER_OK);
    ember_rdd *f = ember_filter(r, fn_arg("std.compare", &a), &err);
    assert_collect(f, "[99990] [99991] [99992] [99993] [99994] [99995] "
                      "[99996] [99997] [99998] [99999]");
    ember_buf_release(&a);

    ember_rdd *in[2] = {r, range(0, 200000, 2, 2)};
    ember_rdd *zp = ember_zip_partitions(in, 2, fn0("testfn.sum_pairs_zip"),
                                         &err);
    assert_collect(zp, "[50000] [50000] [50000] [50000]");
    ember_rdd *z = ember_zip(r, in[1], &err);
    assert_int_equal(count_of(z), 100000);
    expect_recs(ember_take_ordered(ember_values(z, &err), 2, &rec, &err), &rec,
                0, "[0] [2]");
    expect_recs(ember_top(ember_values(z, &err), 2, &rec, &err), &rec, 0,
                "[199998] [199996]");
}

/* Corners of the sources and of multi-parent lineage. */
static void test_edges(void **state)
{
    (void)state;
    ember_error err = {0};
    /* ranges near the ends of int64 */
    assert_collect(range(INT64_MAX - 3, INT64_MAX, 1, 2),
                   "[9223372036854775804] [9223372036854775805] "
                   "[9223372036854775806]");
    assert_collect(range(INT64_MIN, INT64_MIN + 2, 1, 1),
                   "[-9223372036854775808] [-9223372036854775807]");
    assert_collect(range(0, INT64_MAX, INT64_MAX / 2, 2),
                   "[0] [4611686018427387903] [9223372036854775806]");
    assert_collect(range(5, -5, INT64_MIN, 1), "[5]");

    /* the same dataset twice in a union, and an empty one */
    ember_rdd *r = range(0, 3, 1, 2);
    ember_rdd *twice[3] = {r, ember_empty(g_s, &err), r};
    ember_rdd *u = ember_union(twice, 3, &err);
    assert_non_null(u);
    assert_int_equal(ember_rdd_partitions(u), 4);
    assert_collect(glom(u), "[[0]] [[1,2]] [[0]] [[1,2]]");
    assert_collect(glom(ember_coalesce(u, 3, &err)),
                   "[[0]] [[1,2]] [[0,1,2]]");
    ember_rdd *z = ember_zip(r, r, &err);
    assert_collect(z, "[0,0] [1,1] [2,2]");
    ember_rdd *three[3] = {r, r, range(10, 13, 1, 2)};
    assert_collect(ember_zip_partitions(three, 3,
                                        fn0("testfn.sum_pairs_zip"), &err),
                   "[1] [1] [1] [2] [2] [2]");

    /* a long chain of narrow operations runs in one task */
    ember_rdd *chain = range(0, 4, 1, 2);
    for (int i = 0; i < 200 && chain; i++)
        chain = ember_map(chain, fn0("std.identity"), &err);
    assert_non_null(chain);
    assert_collect(chain, "[0] [1] [2] [3]");

    /* key_by on a record of two elements: both sides become tuples */
    ember_rdd *kb = ember_key_by(z, fn0("std.identity"), &err);
    assert_collect(kb, "[[0,0],[0,0]] [[1,1],[1,1]] [[2,2],[2,2]]");

    /* zip_with_unique_id with empty partitions in between: slices
     * {}, {7}, {}, {8}, {9} */
    static const int64_t v[] = {7, 8, 9};
    assert_collect(ember_zip_with_unique_id(par_ints(v, 3, 5), &err),
                   "[7,1] [8,3] [9,4]");

    /* strings with NUL bytes survive every step */
    ember_buf b = ember_buf_heap(), one = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&one, "a\0b", 3), EMBER_OK);
    assert_int_equal(ember_batch_append(&b, one.data, one.len), EMBER_OK);
    ember_batch batch = {b.data, b.len, 1};
    ember_rdd *nul = ember_parallelize(g_s, &batch, 1, &err);
    ember_buf_release(&b);
    ember_buf_release(&one);
    assert_collect(ember_map(nul, fn0("std.identity"), &err),
                   "[\"a\\u0000b\"]");
    assert_collect(glom(nul), "[[\"a\\u0000b\"]]");

    /* pipe runs the command for an empty partition too (Spark's
     * PipedRDD) */
    assert_collect(ember_pipe(range(0, 0, 1, 2), "echo hi", &err),
                   "[\"hi\"] [\"hi\"]");

    /* many distinct values */
    ember_records rec = {0};
    assert_int_equal(ember_count_by_value(range(0, 20000, 1, 2), &rec, &err),
                     EMBER_OK);
    assert_int_equal(rec.count, 20000);
    ember_records_free(&rec);
    expect_recs(ember_count_by_value(ember_map(range(0, 20000, 1, 3),
                                               fn0("testfn.not_bool"), &err),
                                     &rec, &err),
                &rec, 0, "[1,20000]");

    /* duplicates in take_ordered; mixed types in typed order */
    static const int64_t d[] = {3, 1, 3, 1};
    expect_recs(ember_take_ordered(par_ints(d, 4, 2), 3, &rec, &err), &rec, 0,
                "[1] [1] [3]");
    ember_rdd *mixed[2] = {range(0, 3, 1, 1), NULL};
    static const char *const ss[] = {"b", "a"};
    mixed[1] = par_strs(ss, 2, 1);
    expect_recs(ember_top(ember_union(mixed, 2, &err), 3, &rec, &err), &rec, 0,
                "[\"b\"] [\"a\"] [2]");

    /* save of nothing: just _SUCCESS */
    char base[] = "/tmp/engine_test_XXXXXX";
    assert_non_null(mkdtemp(base));
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/none", base);
    assert_int_equal(ember_save_as_text_file(ember_empty(g_s, &err), dir,
                                             &err),
                     EMBER_OK);
    snprintf(path, sizeof path, "%s/_SUCCESS", dir);
    assert_int_equal(access(path, F_OK), 0);
    unlink(path);
    rmdir(dir);
    rmdir(base);

    /* fold's zero must be a record */
    static const uint8_t junk[] = {0xFF, 0x00};
    assert_int_equal(ember_fold(r, junk, sizeof junk, fn0("std.sum"), &rec,
                                &err),
                     EMBER_EINVAL);
    ember_records_free(&rec);

    /* the lineage description names the operations */
    char *text = NULL;
    assert_int_equal(ember_rdd_describe(kb, &text, &err), EMBER_OK);
    assert_non_null(strstr(text, "key_by"));
    assert_non_null(strstr(text, "zip"));
    free(text);
}

/* Several threads share one session (ember.h: sessions may be used from
 * several threads at once). */
typedef struct worker {
    int id;
    int ok;
    char msg[EMBER_ERROR_MAX];
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    ember_error err = {0};
    w->ok = 1;
    for (int i = 0; i < 10 && w->ok; i++) {
        int64_t lo = w->id * 1000 + i;
        ember_rdd *r = ember_range(g_s, lo, lo + 100, 1, 3, &err);
        ember_records rec = {0};
        if (!r || ember_reduce(r, fn0("std.sum"), &rec, &err) != EMBER_OK) {
            w->ok = 0;
            snprintf(w->msg, sizeof w->msg, "%s", err.msg);
            break;
        }
        ember_batch b = {rec.data, rec.len, rec.count};
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *p;
        size_t len;
        ember_value v;
        if (ember_batch_next(&c, &p, &len) != EMBER_OK ||
            ember_rec_get(p, len, 0, &v) != EMBER_OK ||
            v.type != EMBER_TYPE_INT || v.u.i64 != 100 * lo + 4950) {
            w->ok = 0;
            snprintf(w->msg, sizeof w->msg, "thread %d job %d: bad sum",
                     w->id, i);
        }
        ember_records_free(&rec);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    worker w[4];
    uint64_t jobs = ember_session_jobs(g_s);
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 4; i++)
        if (!w[i].ok)
            fail_msg("worker %d: %s", i, w[i].msg);
    assert_int_equal(ember_session_jobs(g_s), jobs + 40);
}

/* ---- actions ------------------------------------------------------------ */

static void test_first_take(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    expect_recs(ember_first(range(5, 10, 1, 2), &rec, &err), &rec, 0, "[5]");

    /* the only record sits in the last partition: S4 scans {0}, then
     * (nothing found) 4x as many: {1, 2} */
    static const int64_t v[] = {42};
    ember_rdd *last = par_ints(v, 1, 3);
    uint64_t jobs = ember_session_jobs(g_s);
    assert_int_equal(ember_first(last, &rec, &err), EMBER_OK);
    assert_string_equal(render(&rec, 0), "[42]");
    assert_int_equal(ember_session_jobs(g_s), jobs + 2);
    ember_records_free(&rec);

    /* take computes only the partitions it needs: a failure further on
     * is never reached */
    uint8_t arg[16];
    size_t al = int_rec(arg, sizeof arg, 7);
    ember_rdd *m = ember_map(range(0, 10, 1, 2),
                             (ember_fn){"testfn.fail_on", arg, al}, &err);
    expect_recs(ember_take(m, 2, &rec, &err), &rec, 0, "[0] [1]");
    assert_int_not_equal(ember_take(m, 6, &rec, &err), EMBER_OK);
    assert_contains(err.msg, "bad record 7");
    ember_records_free(&rec);

    /* S3: first of nothing */
    assert_int_equal(ember_first(range(0, 0, 1, 2), &rec, &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "empty collection");
    assert_int_equal(ember_first(ember_empty(g_s, &err), &rec, &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "empty collection");
    ember_records_free(&rec);

    expect_recs(ember_take(range(0, 10, 1, 3), 4, &rec, &err), &rec, 0,
                "[0] [1] [2] [3]");
    assert_int_equal(ember_take(range(0, 10, 1, 3), 1000, &rec, &err),
                     EMBER_OK);
    assert_int_equal(rec.count, 10);
    ember_records_free(&rec);
}

/* "as many as there are": Spark's take(Int.MaxValue) returns everything;
 * n above INT64_MAX means the same. */
static void test_take_everything(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    ember_status st = ember_take(range(0, 10, 1, 3), UINT64_MAX, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("take(UINT64_MAX): %s", err.msg);
    assert_int_equal(rec.count, 10);
    ember_records_free(&rec);
    st = ember_take_ordered(range(0, 10, 1, 3), UINT64_MAX, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("take_ordered(UINT64_MAX): %s", err.msg);
    assert_int_equal(rec.count, 10);
    ember_records_free(&rec);
    st = ember_top(range(0, 10, 1, 3), UINT64_MAX, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("top(UINT64_MAX): %s", err.msg);
    assert_string_equal(render(&rec, 0),
                        "[9] [8] [7] [6] [5] [4] [3] [2] [1] [0]");
    ember_records_free(&rec);
}

/* S4: 100 partitions of one element, take(50) -> jobs over {0}, {1..4},
 * {5..24}, {25..62}; take(0) runs none. */
static void test_take_incremental(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    ember_rdd *r = range(0, 100, 1, 100);
    uint64_t jobs = ember_session_jobs(g_s);
    assert_int_equal(ember_take(r, 50, &rec, &err), EMBER_OK);
    assert_int_equal(ember_session_jobs(g_s), jobs + 4);
    assert_int_equal(rec.count, 50);
    char want[512] = "";
    for (int i = 0; i < 50; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s[%d]",
                 i ? " " : "", i);
    assert_string_equal(render(&rec, 0), want);
    ember_records_free(&rec);

    jobs = ember_session_jobs(g_s);
    assert_int_equal(ember_take(r, 0, &rec, &err), EMBER_OK);
    assert_int_equal(rec.count, 0);
    assert_int_equal(ember_session_jobs(g_s), jobs);
    ember_records_free(&rec);
}

/* S5: take_ordered / top merge bounded per-partition lists, sorted. */
static void test_ordered(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    static const int64_t v[] = {5, 1, 4, 2, 3, 9, 0};
    ember_rdd *r = par_ints(v, 7, 3);
    expect_recs(ember_take_ordered(r, 3, &rec, &err), &rec, 0, "[0] [1] [2]");
    expect_recs(ember_top(r, 3, &rec, &err), &rec, 0, "[9] [5] [4]");
    expect_recs(ember_take_ordered(r, 100, &rec, &err), &rec, 0,
                "[0] [1] [2] [3] [4] [5] [9]");
    expect_recs(ember_top(r, 100, &rec, &err), &rec, 0,
                "[9] [5] [4] [3] [2] [1] [0]");

    uint64_t jobs = ember_session_jobs(g_s);
    assert_int_equal(ember_take_ordered(r, 0, &rec, &err), EMBER_OK);
    assert_int_equal(rec.count, 0);
    assert_int_equal(ember_session_jobs(g_s), jobs);
    assert_int_equal(ember_top(ember_empty(g_s, &err), 3, &rec, &err),
                     EMBER_OK);
    assert_int_equal(rec.count, 0);
    ember_records_free(&rec);

    /* typed order: strings bytewise */
    static const char *const s[] = {"pear", "apple", "fig", "apples"};
    expect_recs(ember_take_ordered(par_strs(s, 4, 2), 3, &rec, &err), &rec, 0,
                "[\"apple\"] [\"apples\"] [\"fig\"]");

    expect_recs(ember_max(r, &rec, &err), &rec, 0, "[9]");
    expect_recs(ember_min(r, &rec, &err), &rec, 0, "[0]");
    assert_int_equal(ember_max(range(0, 0, 1, 2), &rec, &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "empty collection");
    ember_records_free(&rec);
}

static void test_reduce(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    expect_recs(ember_reduce(range(1, 11, 1, 3), fn0("std.sum"), &rec, &err),
                &rec, 0, "[55]");

    /* empty partitions contribute nothing */
    static const int64_t v[] = {1, 2};
    expect_recs(ember_reduce(par_ints(v, 2, 4), fn0("std.sum"), &rec, &err),
                &rec, 0, "[3]");

    /* S3: reduce of nothing */
    assert_int_equal(ember_reduce(range(0, 0, 1, 3), fn0("std.sum"), &rec,
                                  &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "empty collection");
    assert_int_equal(ember_reduce(ember_empty(g_s, &err), fn0("std.sum"),
                                  &rec, &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "empty collection");

    /* one partition: the order is the records' order */
    static const char *const s[] = {"a", "b", "c"};
    expect_recs(ember_reduce(par_strs(s, 3, 1), fn0("testfn.concat_reduce"),
                             &rec, &err),
                &rec, 0, "[\"a|b|c\"]");

    /* a reduce function's own error reaches the caller */
    assert_int_not_equal(ember_reduce(par_strs(s, 3, 2), fn0("std.sum"),
                                      &rec, &err),
                         EMBER_OK);
    assert_contains(err.msg, "std.sum");
    ember_records_free(&rec);

    /* a map function is refused */
    assert_int_not_equal(ember_reduce(range(0, 3, 1, 1), fn0("std.identity"),
                                      &rec, &err),
                         EMBER_OK);
    assert_contains(err.msg, "std.identity");
    ember_records_free(&rec);
}

/* S1: the zero is applied once per partition and once on the driver. */
static void test_fold_aggregate(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    uint8_t zero[16], one[16];
    size_t zl = int_rec(zero, sizeof zero, 10);
    static const int64_t v[] = {1, 2, 3, 4};

    expect_recs(
        ember_fold(par_ints(v, 4, 2), zero, zl, fn0("std.sum"), &rec, &err),
        &rec, 0, "[40]");
    expect_recs(
        ember_fold(par_ints(v, 4, 4), zero, zl, fn0("std.sum"), &rec, &err),
        &rec, 0, "[60]");
    expect_recs(
        ember_fold(par_ints(v, 0, 3), zero, zl, fn0("std.sum"), &rec, &err),
        &rec, 0, "[40]");
    /* no partitions: the zero once, on the driver */
    expect_recs(ember_fold(ember_empty(g_s, &err), zero, zl, fn0("std.sum"),
                           &rec, &err),
                &rec, 0, "[10]");

    /* a non-commutative op on one partition shows where the zeros go */
    ember_buf z = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&z, "z", 1), EMBER_OK);
    static const char *const s[] = {"a", "b"};
    expect_recs(ember_fold(par_strs(s, 2, 1), z.data, z.len,
                           fn0("testfn.concat_reduce"), &rec, &err),
                &rec, 0, "[\"z|z|a|b\"]");
    ember_buf_release(&z);

    /* ... and on two partitions, merged in completion order (S1) */
    z = ember_buf_heap();
    assert_int_equal(ember_rec_put_string(&z, "z", 1), EMBER_OK);
    assert_int_equal(ember_fold(par_strs(s, 2, 2), z.data, z.len,
                                fn0("testfn.concat_reduce"), &rec, &err),
                     EMBER_OK);
    const char *got = render(&rec, 0);
    if (strcmp(got, "[\"z|z|a|z|b\"]") != 0 &&
        strcmp(got, "[\"z|z|b|z|a\"]") != 0)
        fail_msg("fold order: %s", got);
    ember_records_free(&rec);
    ember_buf_release(&z);

    /* aggregate(1)(+, *) over [1,2,3,4] in 2 = 1 * (1+1+2) * (1+3+4) */
    size_t ol = int_rec(one, sizeof one, 1);
    expect_recs(ember_aggregate(par_ints(v, 4, 2), one, ol, fn0("std.sum"),
                                fn0("testfn.product"), &rec, &err),
                &rec, 0, "[32]");
    expect_recs(ember_aggregate(ember_empty(g_s, &err), one, ol,
                                fn0("std.sum"), fn0("testfn.product"), &rec,
                                &err),
                &rec, 0, "[1]");
}

static void test_tree(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    uint8_t zero[16];
    ember_rdd *r = range(1, 101, 1, 10);
    for (uint32_t depth = 1; depth <= 3; depth++) {
        assert_int_equal(ember_tree_reduce(r, fn0("std.sum"), depth, &rec,
                                           &err),
                         EMBER_OK);
        assert_string_equal(render(&rec, 0), "[5050]");
        ember_records_free(&rec);
        size_t zl = int_rec(zero, sizeof zero, 0);
        assert_int_equal(ember_tree_aggregate(r, zero, zl, fn0("std.sum"),
                                              fn0("std.sum"), depth, &rec,
                                              &err),
                         EMBER_OK);
        assert_string_equal(render(&rec, 0), "[5050]");
        ember_records_free(&rec);
    }
    /* (derived from Spark's treeAggregate) zero 1, 10 partitions, depth 2:
     * scale 4; 10 per-partition zeros, one level of foldByKey into 2 keys
     * (a zero per element: 10), then fold over 2 partitions (2 + 1):
     * 5050 + 23. */
    size_t zl = int_rec(zero, sizeof zero, 1);
    expect_recs(ember_tree_aggregate(r, zero, zl, fn0("std.sum"),
                                     fn0("std.sum"), 2, &rec, &err),
                &rec, 0, "[5073]");

    /* no partitions: the zero */
    zl = int_rec(zero, sizeof zero, 7);
    expect_recs(ember_tree_aggregate(ember_empty(g_s, &err), zero, zl,
                                     fn0("std.sum"), fn0("std.sum"), 2, &rec,
                                     &err),
                &rec, 0, "[7]");
    assert_int_equal(ember_tree_reduce(range(0, 0, 1, 2), fn0("std.sum"), 2,
                                       &rec, &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "empty collection");
    assert_int_equal(ember_tree_reduce(r, fn0("std.sum"), 0, &rec, &err),
                     EMBER_EINVAL);
    ember_records_free(&rec);
}

static void test_foreach_is_empty(void **state)
{
    (void)state;
    ember_error err = {0};
    assert_int_equal(ember_foreach(range(0, 10, 1, 2), fn0("std.identity"),
                                   &err),
                     EMBER_OK);
    uint8_t arg[16];
    size_t al = int_rec(arg, sizeof arg, 3);
    ember_fn bad = {"testfn.fail_on", arg, al};
    assert_int_not_equal(ember_foreach(range(0, 10, 1, 2), bad, &err),
                         EMBER_OK);
    assert_contains(err.msg, "bad record 3");
    assert_int_not_equal(ember_foreach_partition(range(0, 10, 1, 2), bad,
                                                 &err),
                         EMBER_OK);
    assert_contains(err.msg, "bad record 3");

    int e = -1;
    assert_int_equal(ember_is_empty(range(0, 0, 1, 2), &e, &err), EMBER_OK);
    assert_int_equal(e, 1);
    e = -1;
    assert_int_equal(ember_is_empty(ember_empty(g_s, &err), &e, &err),
                     EMBER_OK);
    assert_int_equal(e, 1);
    e = -1;
    static const int64_t v[] = {1};
    assert_int_equal(ember_is_empty(par_ints(v, 1, 3), &e, &err), EMBER_OK);
    assert_int_equal(e, 0);
}

static void test_count_by_value(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records rec = {0};
    static const char *const s[] = {"a", "b", "a", "c", "a", "b"};
    expect_recs(ember_count_by_value(par_strs(s, 6, 3), &rec, &err), &rec, 1,
                "[\"a\",3] [\"b\",2] [\"c\",1]");
    /* a record of two elements counts as one tuple value */
    ember_rdd *z = ember_zip(range(0, 2, 1, 1), range(0, 2, 1, 1), &err);
    expect_recs(ember_count_by_value(z, &rec, &err), &rec, 1,
                "[[0,0],1] [[1,1],1]");
    assert_int_equal(ember_count_by_value(ember_empty(g_s, &err), &rec, &err),
                     EMBER_OK);
    assert_int_equal(rec.count, 0);
    ember_records_free(&rec);
}

static void test_stats(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_stats st;
    static const int64_t v[] = {1, 2, 3, 4, 5};
    assert_int_equal(ember_stats_of(par_ints(v, 5, 2), &st, &err), EMBER_OK);
    assert_int_equal(st.count, 5);
    assert_float_equal(st.mean, 3.0, 1e-12);
    assert_float_equal(st.sum, 15.0, 1e-12);
    assert_float_equal(st.max, 5.0, 0);
    assert_float_equal(st.min, 1.0, 0);
    assert_float_equal(st.variance, 2.0, 1e-12);
    assert_float_equal(st.stdev, sqrt(2.0), 1e-12);
    assert_float_equal(st.sample_variance, 2.5, 1e-12);
    assert_float_equal(st.sample_stdev, sqrt(2.5), 1e-12);

    /* NaN wins max and min, as Scala's math.max/min (and the mean) */
    {
        ember_buf nb = ember_buf_heap();
        static const double nd[] = {1.0, NAN, 3.0};
        for (int i = 0; i < 3; i++) {
            uint8_t rec[16];
            ember_buf rb = ember_buf_fixed(rec, sizeof rec);
            ember_rec_put_double(&rb, nd[i]);
            ember_batch_append(&nb, rec, rb.len);
        }
        ember_batch nbatch = {nb.data, nb.len, 3};
        ember_rdd *nr = ember_parallelize(g_s, &nbatch, 2, &err);
        ember_buf_release(&nb);
        assert_int_equal(ember_stats_of(nr, &st, &err), EMBER_OK);
        assert_int_equal(st.count, 3);
        assert_true(isnan(st.max) && isnan(st.min) && isnan(st.mean));
    }

    /* the same numbers in 4 partitions (one empty) */
    assert_int_equal(ember_stats_of(par_ints(v, 5, 6), &st, &err), EMBER_OK);
    assert_int_equal(st.count, 5);
    assert_float_equal(st.mean, 3.0, 1e-12);
    assert_float_equal(st.variance, 2.0, 1e-12);

    /* doubles, and ints mixed with doubles */
    ember_buf b = ember_buf_heap();
    static const double d[] = {1.5, 2.5, 4.0};
    for (size_t i = 0; i < 3; i++) {
        uint8_t tmp[16];
        ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
        assert_int_equal(ember_rec_put_double(&one, d[i]), EMBER_OK);
        assert_int_equal(ember_batch_append(&b, one.data, one.len), EMBER_OK);
    }
    ember_batch batch = {b.data, b.len, 3};
    ember_rdd *dr = ember_parallelize(g_s, &batch, 2, &err);
    ember_buf_release(&b);
    assert_int_equal(ember_stats_of(dr, &st, &err), EMBER_OK);
    assert_int_equal(st.count, 3);
    assert_float_equal(st.sum, 8.0, 1e-12);
    assert_float_equal(st.max, 4.0, 0);
    assert_float_equal(st.min, 1.5, 0);

    /* records that are not one number are an error, not a crash */
    static const char *const s[] = {"x"};
    assert_int_not_equal(ember_stats_of(par_strs(s, 1, 1), &st, &err),
                         EMBER_OK);
    assert_true(err.msg[0] != '\0');

    /* Spark's StatCounter of nothing: count 0, mean mu = 0 (mean is the
     * running mu, never NaN), sum 0, variances NaN, max -inf, min +inf. */
    assert_int_equal(ember_stats_of(range(0, 0, 1, 2), &st, &err), EMBER_OK);
    assert_int_equal(st.count, 0);
    assert_float_equal(st.sum, 0.0, 0);
    assert_true(isnan(st.variance));
    assert_true(isnan(st.sample_variance));
    assert_true(isinf(st.max) && st.max < 0);
    assert_true(isinf(st.min) && st.min > 0);
    assert_false(isnan(st.mean));
    assert_float_equal(st.mean, 0.0, 0);
}

static const char *file_text(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t n = fread(g_text, 1, sizeof g_text - 1, f);
    fclose(f);
    g_text[n] = '\0';
    return g_text;
}

static void test_save_as_text_file(void **state)
{
    (void)state;
    ember_error err = {0};
    char base[] = "/tmp/engine_test_XXXXXX";
    assert_non_null(mkdtemp(base));
    char dir[256];
    snprintf(dir, sizeof dir, "%s/out", base);

    static const char *const s[] = {"a", "b", "c", "d", "e"};
    ember_rdd *r = par_strs(s, 5, 3);
    assert_int_equal(ember_save_as_text_file(r, dir, &err), EMBER_OK);
    char names[1024];
    list_dir(dir, names, sizeof names);
    assert_string_equal(names, "_SUCCESS part-00000 part-00001 part-00002");
    assert_string_equal(file_text(dir, "part-00000"), "a\n");
    assert_string_equal(file_text(dir, "part-00001"), "b\nc\n");
    assert_string_equal(file_text(dir, "part-00002"), "d\ne\n");
    assert_string_equal(file_text(dir, "_SUCCESS"), "");

    /* the directory must not exist */
    assert_int_equal(ember_save_as_text_file(r, dir, &err), EMBER_EEXIST);
    assert_contains(err.msg, "already exists");
    rmtree(dir);

    /* pairs are written as tuples, an empty partition as an empty file */
    ember_buf arg = ember_buf_heap();
    assert_int_equal(ember_rec_put_int(&arg, 1), EMBER_OK);
    ember_rdd *p = ember_map(par_strs(s, 1, 2), fn_arg("std.pair_with", &arg),
                             &err);
    ember_buf_release(&arg);
    assert_int_equal(ember_save_as_text_file(p, dir, &err), EMBER_OK);
    list_dir(dir, names, sizeof names);
    assert_string_equal(names, "_SUCCESS part-00000 part-00001");
    assert_string_equal(file_text(dir, "part-00000"), "");
    assert_string_equal(file_text(dir, "part-00001"), "(a,1)\n");
    rmtree(dir);
    rmdir(base);
}

/* ---- failures ----------------------------------------------------------- */

static void test_function_failures(void **state)
{
    (void)state;
    ember_error err = {0};
    uint8_t arg[16];
    size_t al = int_rec(arg, sizeof arg, 7);
    ember_rdd *m = ember_map(range(0, 10, 1, 2),
                             (ember_fn){"testfn.fail_on", arg, al}, &err);
    assert_non_null(m);
    const char *msg = collect_error(m, NULL);
    assert_contains(msg, "testfn.fail_on");
    assert_contains(msg, "partition 1");
    assert_contains(msg, "bad record 7");

    /* map needs exactly one output per input */
    m = ember_map(range(0, 4, 1, 2), fn0("testfn.two_per"), &err);
    assert_contains(collect_error(m, NULL), "exactly one");
    m = ember_key_by(range(0, 4, 1, 2), fn0("testfn.two_per"), &err);
    assert_contains(collect_error(m, NULL), "exactly one");

    /* filter needs one bool per input */
    m = ember_filter(range(0, 4, 1, 2), fn0("testfn.not_bool"), &err);
    assert_contains(collect_error(m, NULL), "bool");

    /* a function's open() failing (no argument) names the function */
    m = ember_map(range(0, 4, 1, 2), fn0("testfn.fail_on"), &err);
    assert_contains(collect_error(m, NULL), "testfn.fail_on");

    /* a function of the wrong shape is named in the error */
    m = ember_map(range(0, 4, 1, 2), fn0("std.sum"), &err);
    assert_contains(collect_error(m, NULL), "std.sum");
    ember_records rec = {0};
    uint8_t zero[16];
    size_t zl = int_rec(zero, sizeof zero, 0);
    assert_int_not_equal(ember_aggregate(range(0, 4, 1, 2), zero, zl,
                                         fn0("std.sum"), fn0("std.identity"),
                                         &rec, &err),
                         EMBER_OK);
    assert_contains(err.msg, "std.identity");
    assert_int_not_equal(ember_foreach(range(0, 4, 1, 2), fn0("std.sum"),
                                       &err),
                         EMBER_OK);
    assert_contains(err.msg, "std.sum");
    ember_records_free(&rec);

    /* S25: local mode does not retry */
    m = ember_map(range(0, 4, 1, 2), fn0("testfn.fail_first_attempt"), &err);
    assert_contains(collect_error(m, NULL), "flaky");

    /* the session still works after failed jobs */
    assert_collect(range(0, 3, 1, 2), "[0] [1] [2]");
}

static void test_unknown_function(void **state)
{
    (void)state;
    ember_error err = {0};
    uint64_t jobs = ember_session_jobs(g_s);
    ember_rdd *m = ember_map(range(0, 4, 1, 2), fn0("nosuch.fn"), &err);
    if (m == NULL) {
        assert_contains(err.msg, "nosuch.fn");
    } else {
        assert_contains(collect_error(m, NULL), "nosuch.fn");
    }
    /* refused before any job ran */
    assert_int_equal(ember_session_jobs(g_s), jobs);

    ember_records rec = {0};
    assert_int_not_equal(ember_reduce(range(0, 4, 1, 2), fn0("nosuch.sum"),
                                      &rec, &err),
                         EMBER_OK);
    assert_contains(err.msg, "nosuch.sum");
    assert_int_equal(ember_session_jobs(g_s), jobs);
    ember_records_free(&rec);
}

static void test_session_basics(void **state)
{
    (void)state;
    assert_int_equal(ember_default_parallelism(g_s), 2);
    char v[64];
    assert_int_equal(ember_session_conf(g_s, "ember.task.maxFailures", v,
                                        sizeof v),
                     EMBER_OK);
    assert_string_equal(v, "1");
}

/*
 * A NULL dataset (what a failed transformation returns) handed to an
 * action is answered with EMBER_EINVAL, as most actions do. Each call runs
 * in a child process so that a crash is reported, not fatal to the suite.
 */
enum null_call { N_COLLECT, N_COUNT, N_DESCRIBE, N_TAKE, N_REDUCE, N_STATS,
                 N_IS_EMPTY, N_SAVE, N_FOREACH, N_COUNT_BY_VALUE, N_MAP,
                 N_ALL };

static const char *const null_names[N_ALL] = {
    "ember_collect", "ember_count", "ember_rdd_describe", "ember_take",
    "ember_reduce", "ember_stats_of", "ember_is_empty",
    "ember_save_as_text_file", "ember_foreach", "ember_count_by_value",
    "ember_map"};

static ember_status null_call(enum null_call k)
{
    ember_error err = {0};
    ember_records rec = {0};
    uint64_t n;
    char *text = NULL;
    ember_stats st;
    int e;
    switch (k) {
    case N_COLLECT: return ember_collect(NULL, &rec, &err);
    case N_COUNT: return ember_count(NULL, &n, &err);
    case N_DESCRIBE: return ember_rdd_describe(NULL, &text, &err);
    case N_TAKE: return ember_take(NULL, 3, &rec, &err);
    case N_REDUCE: return ember_reduce(NULL, fn0("std.sum"), &rec, &err);
    case N_STATS: return ember_stats_of(NULL, &st, &err);
    case N_IS_EMPTY: return ember_is_empty(NULL, &e, &err);
    case N_SAVE:
        return ember_save_as_text_file(NULL, "/tmp/engine_test_never", &err);
    case N_FOREACH: return ember_foreach(NULL, fn0("std.identity"), &err);
    case N_COUNT_BY_VALUE: return ember_count_by_value(NULL, &rec, &err);
    case N_MAP:
        return ember_map(NULL, fn0("std.identity"), &err) == NULL
                   ? err.code
                   : EMBER_OK;
    default: return EMBER_OK;
    }
}

static void test_null_dataset(void **state)
{
    (void)state;
    char bad[512] = "";
    for (int k = 0; k < N_ALL; k++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* cmocka's handlers would resume the suite in the child */
            static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE,
                                       SIGABRT};
            for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
                signal(sigs[i], SIG_DFL);
            _exit(null_call((enum null_call)k) == EMBER_EINVAL ? 0 : 42);
        }
        int ws = 0;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " %s(%s)",
                     null_names[k],
                     WIFSIGNALED(ws) ? "crashed"
                     : WEXITSTATUS(ws) == 42 ? "not EMBER_EINVAL"
                                             : "crashed");
    }
    if (bad[0])
        fail_msg("NULL dataset:%s", bad);
}

/* ---- tests with their own session --------------------------------------- */

/* Configuration and master URL mistakes are errors that say what. */
static void test_session_errors(void **state)
{
    (void)state;
    static const struct {
        const char *master;
        const char *conf;
        const char *plugin;
        const char *want;
    } cases[] = {
        {"local[2]", "nonsense", NULL, "nonsense"},
        {"local[2]", "ember.no.such.key=1", NULL, "ember.no.such.key"},
        {"local[2]", "ember.driver.maxResultSize=lots", NULL,
         "ember.driver.maxResultSize"},
        {"local[2]", NULL, "/nonexistent/plugin.so", "/nonexistent/plugin.so"},
        {"bogus://x", NULL, NULL, "bogus://x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *conf[] = {cases[i].conf, NULL};
        const char *plugins[] = {cases[i].plugin ? cases[i].plugin
                                                 : TESTFN_PLUGIN,
                                 NULL};
        ember_session_opts o = {.master = cases[i].master,
                                .conf = conf,
                                .plugins = plugins};
        ember_session *s = NULL;
        ember_error err = {0};
        assert_int_not_equal(ember_session_open(&s, &o, &err), EMBER_OK);
        assert_null(s);
        assert_contains(err.msg, cases[i].want);
    }
}

/* S25: local[N,F] retries a task up to F attempts. */
static void test_retry_local_n_f(void **state)
{
    (void)state;
    ember_session *s = open_session("local[2,3]", NULL);
    ember_error err = {0};
    ember_rdd *r = ember_range(s, 0, 6, 1, 2, &err);
    assert_non_null(r);
    ember_rdd *m = ember_map(r, fn0("testfn.fail_first_attempt"), &err);
    assert_non_null(m);
    ember_records rec = {0};
    ember_status st = ember_collect(m, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("collect on local[2,3]: %s", err.msg);
    assert_string_equal(render(&rec, 0), "[0] [1] [2] [3] [4] [5]");
    ember_records_free(&rec);

    /* a task that always fails is tried 3 times, then the job fails */
    uint8_t arg[16];
    size_t al = int_rec(arg, sizeof arg, 4);
    m = ember_map(r, (ember_fn){"testfn.fail_on", arg, al}, &err);
    assert_int_not_equal(ember_collect(m, &rec, &err), EMBER_OK);
    assert_contains(err.msg, "bad record 4");
    assert_contains(err.msg, "failed 3 times");
    ember_records_free(&rec);
    ember_session_close(s);

    /* local[*,F] too */
    s = open_session("local[*,3]", NULL);
    r = ember_range(s, 0, 6, 1, 2, &err);
    m = ember_map(r, fn0("testfn.fail_first_attempt"), &err);
    st = ember_collect(m, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("collect on local[*,3]: %s", err.msg);
    assert_int_equal(rec.count, 6);
    ember_records_free(&rec);
    ember_session_close(s);
}

/* S29: results over ember.driver.maxResultSize fail the job. */
static void test_max_result_size(void **state)
{
    (void)state;
    static const char *const conf[] = {"ember.driver.maxResultSize=1k", NULL};
    ember_session *s = open_session("local[2]", conf);
    ember_error err = {0};
    ember_records rec = {0};
    ember_rdd *small = ember_range(s, 0, 10, 1, 2, &err);
    assert_int_equal(ember_collect(small, &rec, &err), EMBER_OK);
    assert_int_equal(rec.count, 10);
    ember_records_free(&rec);

    ember_rdd *big = ember_range(s, 0, 2000, 1, 2, &err);
    assert_int_not_equal(ember_collect(big, &rec, &err), EMBER_OK);
    assert_contains(err.msg, "maxResultSize");
    ember_records_free(&rec);
    /* a small action on the same data is fine */
    uint64_t n = 0;
    assert_int_equal(ember_count(big, &n, &err), EMBER_OK);
    assert_int_equal(n, 2000);
    ember_session_close(s);
}

/* The progress hook sees every result partition of each job, ending with
 * done == total. */
typedef struct progress_seen {
    pthread_mutex_t mu;
    uint32_t calls, last_done, last_total, decreased;
} progress_seen;

static void on_progress(void *ctx, uint64_t job, uint32_t done,
                        uint32_t total)
{
    (void)job;
    progress_seen *p = ctx;
    pthread_mutex_lock(&p->mu);
    if (p->calls && done < p->last_done && total == p->last_total)
        p->decreased = 1;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
    pthread_mutex_unlock(&p->mu);
}

static void test_progress(void **state)
{
    (void)state;
    progress_seen seen = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};
    ember_session_opts o = {.master = "local[2]", .plugins = g_plugins,
                            .progress = on_progress,
                            .progress_ctx = &seen};
    ember_session *s = NULL;
    ember_error err = {0};
    assert_int_equal(ember_session_open(&s, &o, &err), EMBER_OK);
    uint64_t n = 0;
    assert_int_equal(ember_count(ember_range(s, 0, 80, 1, 8, &err), &n, &err),
                     EMBER_OK);
    assert_int_equal(n, 80);
    assert_int_equal(seen.calls, 8);
    assert_int_equal(seen.last_done, 8);
    assert_int_equal(seen.last_total, 8);
    assert_false(seen.decreased);
    ember_session_close(s);
}

/* ember.task.timeout stops a task at its next batch and fails the attempt
 * with a message that names the setting. */
static void test_task_timeout(void **state)
{
    (void)state;
    ember_session *s = open_session("local[2]", g_timeout_conf);
    ember_error err = {0};
    ember_rdd *r = NULL;
    const char *msg = count_past_timeout(s, &r);
    assert_contains(msg, "ember.task.timeout");
    assert_contains(msg, "partition 0");
    /* quick work in the same session is unaffected */
    uint64_t n = 0;
    assert_int_equal(ember_count(r, &n, &err), EMBER_OK);
    assert_int_equal(n, 40000);
    ember_session_close(s);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_session_basics),
        cmocka_unit_test(test_parallelize_slicing),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_map_flat_map_filter),
        cmocka_unit_test(test_pair_operations),
        cmocka_unit_test(test_union_coalesce),
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_zip),
        cmocka_unit_test(test_zip_with_unique_id),
        cmocka_unit_test(test_zip_with_index),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_map_partitions),
        cmocka_unit_test(test_big_sources),
        cmocka_unit_test(test_pipes_in_parallel),
        cmocka_unit_test(test_large_partitions),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_first_take),
        cmocka_unit_test(test_take_everything),
        cmocka_unit_test(test_take_incremental),
        cmocka_unit_test(test_ordered),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_fold_aggregate),
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_foreach_is_empty),
        cmocka_unit_test(test_count_by_value),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_save_as_text_file),
        cmocka_unit_test(test_function_failures),
        cmocka_unit_test(test_unknown_function),
        cmocka_unit_test(test_null_dataset),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_session_errors),
        cmocka_unit_test(test_retry_local_n_f),
        cmocka_unit_test(test_max_result_size),
        cmocka_unit_test(test_task_timeout),
        cmocka_unit_test(test_progress),
    };
    int failed = cmocka_run_group_tests_name("engine (shared local[2])",
                                             shared, group_open, group_close);
    failed += cmocka_run_group_tests_name("engine (own sessions)", own, NULL,
                                          NULL);
    return failed;
}
