/*
 * shuffle_ops_test.c — every key operation of the driver API (ember/ember.h,
 * "key operations" and "actions on pair datasets") end to end, with exact
 * expected outputs taken from Spark's behaviour (SEMANTICS.md S2, S6–S13,
 * S23, S27, S28): combining, grouping, joins, set operations, sorting,
 * repartitioning, the three partitioners and the default-partitioner rule,
 * what a co-partitioned join and a reused shuffle save (read from the
 * session's state store), and word count over a multi-megabyte text with
 * both shuffle managers and every codec, on local[2] and local-cluster.
 *
 * Shuffle output order is not promised (S23): unless an operation sorts,
 * results are compared as multisets — each record rendered with
 * ember_rec_json (group values sorted inside their tuple first), the
 * renderings sorted and joined with single spaces, e.g. `[1,["a","c"]]`.
 * The test plugin "testfn" (testfn.c) is loaded by path (TESTFN_PLUGIN).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ember/ember.h"
#include "ember/hash.h"
#include "ember/record.h"
#include "shuffle_support.h"

/* ---- sessions ---------------------------------------------------------- */

#define APP "shuffle_ops_test"

/* The session of the main group (local[2]). */
static sess g;

static int group_open(void **state)
{
    (void)state;
    sess_open(&g, APP, "local[2]", NULL);
    sess_track(&g, 0); /* closed by group_close, not after each test */
    return g.s ? 0 : -1;
}

static int group_close(void **state)
{
    (void)state;
    sess_close(&g);
    return 0;
}

/* ---- the state store --------------------------------------------------- */

/* The id of x's latest job, once the store holds its end. */
static int64_t last_job(const sess *x)
{
    store_settle(x);
    return db_int(x, "SELECT max(job_id) FROM jobs");
}

/* Stages the latest job ran (skipped ones are not recorded). */
static int64_t last_job_stages(const sess *x)
{
    int64_t j = last_job(x);
    return db_int(x, "SELECT count(DISTINCT stage_id) FROM stage_attempts "
                     "WHERE job_id = %" PRId64, j);
}

/* ---- records --------------------------------------------------------------
 *
 * build() appends one framed record per space-separated token of fmt to b;
 * in a token, i is an int argument, L an int64_t, d a double, s a string,
 * n null, t true, f false, ( and ) open and close a nested tuple.
 */
static uint64_t vbuild(ember_buf *b, const char *fmt, va_list ap)
{
    uint64_t n = 0;
    const char *p = fmt;
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        size_t mark;
        assert_int_equal(ember_batch_frame_begin(b, &mark), EMBER_OK);
        for (; *p && *p != ' '; p++) {
            ember_status s = EMBER_OK;
            const char *str;
            switch (*p) {
            case 'i': s = ember_rec_put_int(b, va_arg(ap, int)); break;
            case 'L': s = ember_rec_put_int(b, va_arg(ap, int64_t)); break;
            case 'd': s = ember_rec_put_double(b, va_arg(ap, double)); break;
            case 's':
                str = va_arg(ap, const char *);
                s = ember_rec_put_string(b, str, strlen(str));
                break;
            case 'n': s = ember_rec_put_null(b); break;
            case 't': s = ember_rec_put_bool(b, 1); break;
            case 'f': s = ember_rec_put_bool(b, 0); break;
            case '(': s = ember_rec_tuple_begin(b); break;
            case ')': s = ember_rec_tuple_end(b); break;
            default: fail_msg("build: bad format character '%c'", *p);
            }
            assert_int_equal(s, EMBER_OK);
        }
        assert_int_equal(ember_batch_frame_end(b, mark), EMBER_OK);
        n++;
    }
    return n;
}

/* Appends the records fmt describes (see vbuild) to b; their number. */
static uint64_t build(ember_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    uint64_t n = vbuild(b, fmt, ap);
    va_end(ap);
    return n;
}

/* A dataset of the records fmt describes (see vbuild), in `slices`
 * partitions of session s. */
static ember_rdd *par_in(ember_session *s, uint32_t slices, const char *fmt,
                         ...)
{
    ember_buf b = ember_buf_heap();
    va_list ap;
    va_start(ap, fmt);
    uint64_t n = vbuild(&b, fmt, ap);
    va_end(ap);
    ember_batch batch = {b.data, b.len, n};
    ember_error err = {0};
    ember_rdd *r = ember_parallelize(s, &batch, slices, &err);
    ember_buf_release(&b);
    if (!r)
        fail_msg("parallelize: %s", err.msg);
    return r;
}

#define par(...) par_in(g.s, __VA_ARGS__)

/* A dataset of the records of b (n of them). */
static ember_rdd *par_buf(ember_session *s, const ember_buf *b, uint64_t n,
                          uint32_t slices)
{
    ember_batch batch = {b->data, b->len, n};
    ember_error err = {0};
    ember_rdd *r = ember_parallelize(s, &batch, slices, &err);
    if (!r)
        fail_msg("parallelize: %s", err.msg);
    return r;
}

/* The encoding of one int element into tmp; its length. */
static size_t int_enc(uint8_t *tmp, size_t cap, int64_t v)
{
    ember_buf b = ember_buf_fixed(tmp, cap);
    assert_int_equal(ember_rec_put_int(&b, v), EMBER_OK);
    return b.len;
}

/* ---- rendering and comparing ------------------------------------------- */

/* Appends tuple t with its elements sorted (depth 0) or with each of its
 * tuple elements so treated one level down (depth > 0). */
static void put_sorted_tuple(ember_buf *out, const ember_value *t, int depth)
{
    rec_span sp[4096];
    size_t n = 0;
    ember_rec_cursor c = ember_rec_tuple_cursor(t);
    ember_value e;
    assert_int_equal(ember_rec_tuple_begin(out), EMBER_OK);
    while (ember_rec_next(&c, &e) == EMBER_OK) {
        if (depth > 0) {
            if (e.type == EMBER_TYPE_TUPLE)
                put_sorted_tuple(out, &e, depth - 1);
            else
                assert_int_equal(ember_rec_put_value(out, &e), EMBER_OK);
            continue;
        }
        assert_true(n < sizeof sp / sizeof sp[0]);
        sp[n++] = (rec_span){e.enc, e.enc_len};
    }
    sort_rec_spans(sp, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ember_buf_append(out, sp[i].p, sp[i].len), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(out), EMBER_OK);
}

/*
 * The canonical form of rec: level 0 as it is; level 1 (group_by_key) the
 * value tuple of a pair sorted; level 2 (cogroup) each tuple inside the
 * value sorted.
 */
static void canon(ember_buf *out, const uint8_t *rec, size_t len, int level)
{
    if (level == 0) {
        assert_int_equal(ember_buf_append(out, rec, len), EMBER_OK);
        return;
    }
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    ember_value v;
    int i = 0;
    while (ember_rec_next(&c, &v) == EMBER_OK) {
        if (i++ == 1 && v.type == EMBER_TYPE_TUPLE)
            put_sorted_tuple(out, &v, level - 1);
        else
            assert_int_equal(ember_rec_put_value(out, &v), EMBER_OK);
    }
}

/* Sorts words[0..n) (when sort is set) and joins them with spaces
 * (malloc'd). */
static char *join_words(char **words, size_t n, int sort)
{
    if (sort)
        sort_strs(words, n);
    return join_strs(words, n, " ", "");
}

/* The records of r (a batch), each canonicalized at level and rendered as
 * JSON, joined with spaces in their order (sort 0) or sorted (sort 1).
 * malloc'd. */
static char *render(const ember_records *r, int level, int sort)
{
    ember_batch b = {r->data, r->len, r->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    char **words = calloc(r->count + 1, sizeof *words);
    const uint8_t *rec;
    size_t len, n = 0;
    assert_non_null(words);
    while (n <= r->count && ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_buf cb = ember_buf_heap(), js = ember_buf_heap();
        canon(&cb, rec, len, level);
        assert_int_equal(ember_rec_json(&js, cb.data, cb.len), EMBER_OK);
        assert_int_equal(ember_buf_put_u8(&js, 0), EMBER_OK);
        words[n++] = (char *)js.data; /* a heap buffer: free() releases it */
        ember_buf_release(&cb);
    }
    assert_int_equal(n, r->count);
    char *out = join_words(words, n, sort);
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
    return out;
}

/* want's space-separated words sorted (malloc'd). */
static char *sorted_words(const char *want)
{
    char *copy = strdup(want), *save = NULL;
    char **words = calloc(strlen(want) / 2 + 2, sizeof *words);
    size_t n = 0;
    assert_non_null(copy);
    assert_non_null(words);
    for (char *w = strtok_r(copy, " ", &save); w;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    char *out = join_words(words, n, 1);
    free(words);
    free(copy);
    return out;
}

/* r's records (level: see canon) must be the multiset want. */
static void check_bag_recs(const ember_records *got, int level,
                           const char *want)
{
    char *g_text = render(got, level, 1);
    char *w_text = sorted_words(want);
    if (strcmp(g_text, w_text) != 0)
        fail_msg("got the multiset\n  %s\nwanted\n  %s", g_text, w_text);
    free(g_text);
    free(w_text);
}

static void check_bag(ember_rdd *r, int level, const char *want)
{
    ember_records rec = collect_recs(r);
    check_bag_recs(&rec, level, want);
    ember_records_free(&rec);
}

/* r's records, in order, must be want. */
static void check_seq_recs(const ember_records *got, const char *want)
{
    char *g_text = render(got, 0, 0);
    if (strcmp(g_text, want) != 0)
        fail_msg("got\n  %s\nwanted\n  %s", g_text, want);
    free(g_text);
}

static void check_seq(ember_rdd *r, const char *want)
{
    ember_records rec = collect_recs(r);
    check_seq_recs(&rec, want);
    ember_records_free(&rec);
}

/*
 * The partitions of r as glom shows them: for partition i, calls
 * each(ctx, i, element) for each of its records (as a value: a pair is a
 * tuple). Returns the number of partitions.
 */
typedef void (*part_visit)(void *ctx, uint32_t part, const ember_value *rec);

static uint32_t visit_partitions(ember_rdd *r, part_visit each, void *ctx)
{
    ember_error err = {0};
    ember_rdd *gl = ember_glom(r, &err);
    assert_non_null(gl);
    ember_records rec = collect_recs(gl);
    ember_batch b = {rec.data, rec.len, rec.count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *p;
    size_t len;
    uint32_t part = 0;
    while (ember_batch_next(&c, &p, &len) == EMBER_OK) {
        ember_value t = {0}, e = {0};
        assert_int_equal(ember_rec_get(p, len, 0, &t), EMBER_OK);
        assert_int_equal(t.type, EMBER_TYPE_TUPLE);
        ember_rec_cursor tc = ember_rec_tuple_cursor(&t);
        while (ember_rec_next(&tc, &e) == EMBER_OK)
            each(ctx, part, &e);
        part++;
    }
    ember_records_free(&rec);
    return part;
}

/* The key of a pair value (a tuple (k, v)). */
static ember_value pair_key(const ember_value *pair)
{
    ember_value k = {0};
    assert_int_equal(pair->type, EMBER_TYPE_TUPLE);
    ember_rec_cursor c = ember_rec_tuple_cursor(pair);
    assert_int_equal(ember_rec_next(&c, &k), EMBER_OK);
    return k;
}

/* r's records as testfn.tag_partition sees them, (partition, record),
 * must be the multiset want. */
static void check_placement(ember_rdd *r, const char *want)
{
    ember_error err = {0};
    check_bag(ember_map(r, fn0("testfn.tag_partition"), &err), 0, want);
}

static const ember_partitioner *hash_p(ember_partitioner *p, uint32_t n)
{
    *p = (ember_partitioner){.kind = EMBER_PART_HASH, .partitions = n};
    return p;
}

/* ---- combining (S2) ---------------------------------------------------- */

static void test_fold_and_aggregate_by_key(void **state)
{
    (void)state;
    ember_error err = {0};
    uint8_t zero[16];
    size_t zl = int_enc(zero, sizeof zero, 10);
    ember_rdd *two = par(2, "ii ii", 1, 1, 1, 2);
    ember_rdd *one = par(1, "ii ii", 1, 1, 1, 2);

    /* the zero once per key per map partition, never on the driver */
    check_bag(ember_fold_by_key(two, zero, zl, fn0("std.sum"), NULL, &err), 0,
              "[1,23]");
    check_bag(ember_fold_by_key(one, zero, zl, fn0("std.sum"), NULL, &err), 0,
              "[1,13]");
    check_bag(ember_aggregate_by_key(two, zero, zl, fn0("std.sum"),
                                     fn0("std.sum"), NULL, &err),
              0, "[1,23]");
    check_bag(ember_aggregate_by_key(one, zero, zl, fn0("std.sum"),
                                     fn0("std.sum"), NULL, &err),
              0, "[1,13]");
    /* comb merges the per-partition results: 11 * 12 */
    check_bag(ember_aggregate_by_key(two, zero, zl, fn0("std.sum"),
                                     fn0("testfn.product"), NULL, &err),
              0, "[1,132]");

    /* several keys, each its own zero in each partition: slices
     * [(1,1) (2,5)] [(1,2) (3,7)] */
    ember_rdd *r = par(2, "ii ii ii ii", 1, 1, 2, 5, 1, 2, 3, 7);
    check_bag(ember_fold_by_key(r, zero, zl, fn0("std.sum"), NULL, &err), 0,
              "[1,23] [2,15] [3,17]");

    /* the source is unchanged by the folds */
    check_seq(two, "[1,1] [1,2]");

    /* a zero is required */
    assert_null(ember_fold_by_key(r, NULL, 0, fn0("std.sum"), NULL, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

static void test_reduce_by_key(void **state)
{
    (void)state;
    ember_error err = {0};
    /* word count */
    ember_rdd *words = par(3, "si si si si si si si", "to", 1, "be", 1, "or",
                           1, "not", 1, "to", 1, "be", 1, "to", 1);
    ember_rdd *wc = ember_reduce_by_key(words, fn0("std.sum"), NULL, &err);
    assert_non_null(wc);
    assert_int_equal(ember_rdd_partitions(wc), 3);
    check_bag(wc, 0, "[\"to\",3] [\"be\",2] [\"or\",1] [\"not\",1]");

    /* ints and doubles: a key with a double sums to a double */
    ember_rdd *mixed = par(2, "sd si si sd si si", "x", 1.5, "x", 2, "y", 3,
                           "z", 0.25, "y", 4, "z", 1);
    check_bag(ember_reduce_by_key(mixed, fn0("std.sum"), NULL, &err), 0,
              "[\"x\",3.5] [\"y\",7] [\"z\",1.25]");
    /* as std.sum computes it, also where the sum is kept in place: a sum
     * starts from the int 0 (so -0.0 alone gives 0.0), a double after
     * ints turns the sum to double, and an int64 overflow is std.sum's
     * error */
    ember_rdd *edges = par(1, "sd sL sd sL sL", "n", -0.0, "m", (int64_t)5,
                           "m", 0.5, "m", (int64_t)1, "o",
                           (int64_t)INT64_MAX);
    check_bag(ember_reduce_by_key(edges, fn0("std.sum"), NULL, &err), 0,
              "[\"n\",0.0] [\"m\",6.5] [\"o\",9223372036854775807]");
    /* doubles only are summed inline as doubles; an int after them
     * (for that key, or a new one) goes on from the double sums, on both
     * sides of the shuffle */
    for (uint32_t parts = 1; parts <= 2; parts++) {
        ember_rdd *dbl = par(parts, "sd sd sd sL sd sL", "p", 0.5, "q", -0.0,
                             "p", 0.25, "p", (int64_t)2, "q", 1.0, "r",
                             (int64_t)7);
        check_bag(ember_reduce_by_key(dbl, fn0("std.sum"), NULL, &err), 0,
                  "[\"p\",2.75] [\"q\",1.0] [\"r\",7]");
    }
    ember_rdd *over = par(1, "sL sd sL", "o", (int64_t)INT64_MAX, "d", 1.0,
                          "o", (int64_t)1);
    assert_contains(collect_error(ember_reduce_by_key(over, fn0("std.sum"),
                                                      NULL, &err),
                                  NULL),
                    "overflow");

    /* an explicit partition count */
    ember_partitioner hp;
    wc = ember_reduce_by_key(words, fn0("std.sum"), hash_p(&hp, 5), &err);
    assert_int_equal(ember_rdd_partitions(wc), 5);
    check_bag(wc, 0, "[\"to\",3] [\"be\",2] [\"or\",1] [\"not\",1]");

    /* a failing reduce function: the job fails naming it */
    ember_rdd *bad = par(1, "is is", 1, "x", 1, "y");
    const char *msg = collect_error(
        ember_reduce_by_key(bad, fn0("std.sum"), NULL, &err), NULL);
    assert_contains(msg, "std.sum");
    assert_contains(msg, "reduce_by_key");

    /* records that are not pairs */
    msg = collect_error(
        ember_reduce_by_key(par(1, "i i", 1, 2), fn0("std.sum"), NULL, &err),
        NULL);
    assert_contains(msg, "pair");

    /* map(std.pair_with) and flat_map(std.split_words) before a combine
     * are fused into it (runtime/shuffle_write.h): the same results, and
     * their own errors */
    uint8_t one[16];
    size_t ol = int_enc(one, sizeof one, 1);
    ember_fn pw = {"std.pair_with", one, ol};
    ember_rdd *lines = par(2, "s s s s", "to be or", "not to\tbe", "  ",
                           "to");
    ember_rdd *w = ember_flat_map(lines, fn0("std.split_words"), &err);
    check_bag(ember_reduce_by_key(ember_map(w, pw, &err), fn0("std.sum"),
                                  NULL, &err),
              0, "[\"to\",3] [\"be\",2] [\"or\",1] [\"not\",1]");
    ember_rdd *nums = par(2, "i i i", 7, 7, 8);
    check_bag(ember_reduce_by_key(ember_map(nums, pw, &err), fn0("std.sum"),
                                  NULL, &err),
              0, "[7,2] [8,1]");
    msg = collect_error(ember_reduce_by_key(
        ember_map(ember_flat_map(par(1, "i", 5), fn0("std.split_words"),
                                 &err),
                  pw, &err),
        fn0("std.sum"), NULL, &err), NULL);
    assert_contains(msg, "std.split_words");
    assert_contains(msg, "expected a string");
}

/* combine_by_key computing (sum, count) per key with testfn's
 * createCombiner: slices [(1,2) (1,4)] [(2,5) (1,6)]. */
static void test_combine_by_key(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *r = par(2, "ii ii ii ii", 1, 2, 1, 4, 2, 5, 1, 6);
    ember_rdd *c = ember_combine_by_key(r, fn0("testfn.sum_count_create"),
                                        fn0("testfn.sum_count"),
                                        fn0("testfn.sum_count"), NULL, &err);
    assert_non_null(c);
    check_bag(c, 0, "[1,[12,3]] [2,[5,1]]");

    /* keys spread over three map partitions, one key in one */
    ember_rdd *ones = par(3, "ii ii ii ii ii ii", 7, 1, 7, 1, 7, 1, 7, 1, 7,
                          1, 8, 1);
    c = ember_combine_by_key(ones, fn0("testfn.sum_count_create"),
                             fn0("testfn.sum_count"), fn0("testfn.sum_count"),
                             NULL, &err);
    check_bag(c, 0, "[7,[5,5]] [8,[1,1]]");

    /* a createCombiner that is not a map function */
    const char *msg = collect_error(ember_combine_by_key(
        r, fn0("std.sum"), fn0("std.sum"), fn0("std.sum"), NULL, &err), NULL);
    assert_contains(msg, "std.sum");
}

/* ---- grouping (S9, S23) ------------------------------------------------ */

static void test_group_by_key_and_group_by(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *r = par(3, "is is is is is", 1, "a", 2, "b", 1, "c", 3, "d", 1,
                       "e");
    ember_rdd *gk = ember_group_by_key(r, NULL, &err);
    assert_non_null(gk);
    assert_int_equal(ember_rdd_partitions(gk), 3);
    check_bag(gk, 1, "[1,[\"a\",\"c\",\"e\"]] [2,[\"b\"]] [3,[\"d\"]]");

    /* tuple values stay whole inside the group */
    ember_rdd *tv = par(2, "i(is) i(is) i(is)", 1, 1, "x", 1, 2, "y", 2, 3,
                        "z");
    check_bag(ember_group_by_key(tv, NULL, &err), 1,
              "[1,[[1,\"x\"],[2,\"y\"]]] [2,[[3,\"z\"]]]");

    /* group_by: key_by then group_by_key (key = x mod 3) */
    ember_rdd *ints = par(2, "i i i i i i i", 0, 1, 2, 3, 4, 5, 6);
    uint8_t arg[16];
    ember_rdd *gb = ember_group_by(ints, fn_int("testfn.key_mod", arg,
                                                sizeof arg, 3),
                                   NULL, &err);
    assert_non_null(gb);
    check_bag(gb, 1, "[0,[0,3,6]] [1,[1,4]] [2,[2,5]]");

    /* an empty input: no groups */
    check_bag(ember_group_by_key(par(2, ""), NULL, &err), 1, "");
}

static void test_cogroup(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *a = par(2, "is is is", 1, "a", 2, "b", 1, "c");
    ember_rdd *b = par(3, "ii ii ii", 1, 10, 3, 30, 1, 11);
    ember_rdd *c = par(1, "is", 3, "z");
    ember_rdd *d = par(2, "it if", 4, 1, 1, 0);

    ember_rdd *ab[2] = {a, b};
    ember_rdd *cg = ember_cogroup(ab, 2, NULL, &err);
    assert_non_null(cg);
    assert_int_equal(ember_rdd_partitions(cg), 3);
    /* S9: a key of one input only gets an empty tuple for the other */
    check_bag(cg, 2,
              "[1,[[\"a\",\"c\"],[10,11]]] [2,[[\"b\"],[]]] "
              "[3,[[],[30]]]");

    ember_rdd *abc[3] = {a, b, c};
    check_bag(ember_cogroup(abc, 3, NULL, &err), 2,
              "[1,[[\"a\",\"c\"],[10,11],[]]] [2,[[\"b\"],[],[]]] "
              "[3,[[],[30],[\"z\"]]]");

    ember_rdd *abcd[4] = {a, b, c, d};
    check_bag(ember_cogroup(abcd, 4, NULL, &err), 2,
              "[1,[[\"a\",\"c\"],[10,11],[],[false]]] "
              "[2,[[\"b\"],[],[],[]]] [3,[[],[30],[\"z\"],[]]] "
              "[4,[[],[],[],[true]]]");

    /* 2 to 4 inputs */
    ember_rdd *five[5] = {a, b, c, d, a};
    assert_null(ember_cogroup(five, 5, NULL, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
    assert_null(ember_cogroup(five, 1, NULL, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

/* ---- joins (S8) -------------------------------------------------------- */

static void test_joins(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *a = par(2, "is is is is", 1, "a", 1, "b", 2, "c", 3, "d");
    ember_rdd *b = par(3, "ii ii ii ii", 1, 10, 1, 11, 2, 20, 4, 40);
    static const char inner[] =
        "[1,[\"a\",10]] [1,[\"a\",11]] [1,[\"b\",10]] [1,[\"b\",11]] "
        "[2,[\"c\",20]]";

    ember_rdd *j = ember_join(a, b, NULL, &err);
    assert_non_null(j);
    assert_int_equal(ember_rdd_partitions(j), 3);
    check_bag(j, 0, inner);

    char want[512];
    snprintf(want, sizeof want, "%s [3,[\"d\",null]]", inner);
    check_bag(ember_left_outer_join(a, b, NULL, &err), 0, want);
    snprintf(want, sizeof want, "%s [4,[null,40]]", inner);
    check_bag(ember_right_outer_join(a, b, NULL, &err), 0, want);
    snprintf(want, sizeof want, "%s [3,[\"d\",null]] [4,[null,40]]", inner);
    check_bag(ember_full_outer_join(a, b, NULL, &err), 0, want);

    /* a key on one side only joins nothing; an empty side */
    ember_rdd *e = par(2, "");
    check_bag(ember_join(a, e, NULL, &err), 0, "");
    check_bag(ember_left_outer_join(par(1, "ii", 5, 6), e, NULL, &err), 0,
              "[5,[6,null]]");

    /* an explicit partitioner */
    ember_partitioner hp;
    j = ember_join(a, b, hash_p(&hp, 7), &err);
    assert_int_equal(ember_rdd_partitions(j), 7);
    check_bag(j, 0, inner);
}

/* ---- set operations (S10) ---------------------------------------------- */

static void test_subtract_intersection_distinct(void **state)
{
    (void)state;
    ember_error err = {0};
    /* subtract_by_key keeps the left side's duplicates */
    ember_rdd *a = par(3, "is is is is is", 1, "a", 1, "a", 2, "c", 3, "d", 1,
                       "b");
    ember_rdd *b = par(1, "ii ii", 2, 0, 4, 0);
    ember_rdd *sk = ember_subtract_by_key(a, b, NULL, &err);
    assert_non_null(sk);
    assert_int_equal(ember_rdd_partitions(sk), 3);
    check_bag(sk, 0, "[1,\"a\"] [1,\"a\"] [1,\"b\"] [3,\"d\"]");

    /* subtract: duplicates of a not in b kept, a's partition count */
    ember_rdd *x = par(3, "i i i i i i", 1, 1, 2, 3, 3, 4);
    ember_rdd *y = par(1, "i i", 3, 5);
    ember_rdd *sub = ember_subtract(x, y, NULL, &err);
    assert_non_null(sub);
    assert_int_equal(ember_rdd_partitions(sub), 3);
    check_bag(sub, 0, "[1] [1] [2] [4]");
    sub = ember_subtract(y, x, NULL, &err);
    assert_int_equal(ember_rdd_partitions(sub), 1);
    check_bag(sub, 0, "[5]");

    /* intersection: one copy of each record both have */
    ember_rdd *p = par(2, "i i i i s", 1, 1, 2, 3, "q");
    ember_rdd *q = par(3, "i i i i s", 1, 1, 3, 4, "q");
    check_bag(ember_intersection(p, q, NULL, &err), 0, "[1] [3] [\"q\"]");
    check_bag(ember_intersection(p, par(1, ""), NULL, &err), 0, "");

    /* distinct: whole records, n = 0 keeps the partition count */
    ember_rdd *dup = par(2, "i i i ii ii i", 1, 2, 1, 1, 2, 1, 2, 3);
    ember_rdd *d = ember_distinct(dup, 0, &err);
    assert_int_equal(ember_rdd_partitions(d), 2);
    check_bag(d, 0, "[1] [2] [1,2] [3]");
    d = ember_distinct(dup, 5, &err);
    assert_int_equal(ember_rdd_partitions(d), 5);
    check_bag(d, 0, "[1] [2] [1,2] [3]");

    /* S10: a dataset with a partitioner and n = its partition count is
     * deduplicated inside each partition, with no shuffle */
    ember_partitioner hp = {.kind = EMBER_PART_HASH, .partitions = 3};
    ember_rdd *pp = ember_partition_by(par(2, "ii ii ii ii ii", 1, 1, 2, 2, 1,
                                           1, 3, 3, 2, 2),
                                       &hp, &err);
    assert_int_equal(count_of(pp), 5); /* its shuffle exists now */
    d = ember_distinct(pp, 0, &err);
    assert_int_equal(ember_rdd_partitions(d), 3);
    check_bag(d, 0, "[1,1] [2,2] [3,3]");
    assert_int_equal(last_job_stages(&g), 1);
}

/* The sums of reduce_by_key(std.sum) over r: checks the key count, the
 * sum for key 7 and the total; returns the bytes its map side wrote. */
static int64_t check_skip_sums(ember_rdd *r, int64_t seven_sum)
{
    ember_error err = {0};
    ember_partitioner hp;
    ember_rdd *sums = ember_reduce_by_key(r, fn0("std.sum"), hash_p(&hp, 2),
                                          &err);
    assert_non_null(sums);
    ember_records got = collect_recs(sums);
    assert_int_equal(got.count, 300000);
    ember_batch gb = {got.data, got.len, got.count};
    ember_batch_cursor c = ember_batch_cursor_of(&gb);
    const uint8_t *rec;
    size_t rl;
    int64_t total = 0, seven = -1;
    while (ember_batch_next(&c, &rec, &rl) == EMBER_OK) {
        ember_value k = {0}, v = {0};
        assert_int_equal(ember_rec_get(rec, rl, 0, &k), EMBER_OK);
        assert_int_equal(ember_rec_get(rec, rl, 1, &v), EMBER_OK);
        total += v.u.i64;
        if (k.u.i64 == 7)
            seven = v.u.i64;
    }
    ember_records_free(&got);
    assert_int_equal(seven, seven_sum);
    assert_int_equal(total, (int64_t)299999 * 300000 / 2 + 100000);
    return db_int(&g, "SELECT SUM(bytes) FROM map_outputs WHERE shuffle_id ="
                      " (SELECT MAX(shuffle_id) FROM map_outputs)");
}

/* A map-side combine that hardly combines stops: a map task whose first
 * 2^18 records are more than 9 in 10 distinct keys flushes its table and
 * sends the rest as they are (runtime/shuffle_write.c). One map task
 * reads 300,000 distinct keys (i, i) and 100,000 records (7, 1): read in
 * that order, the sevens come after the probe and reach the shuffle
 * uncombined; read sevens first, the probe sees repeats and the task
 * combines all. The sums are the same, the map output 100,000 records
 * larger in the first case. */
static void test_map_side_combine_skipped(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *uniq = ember_key_by(ember_range(g.s, 0, 300000, 1, 1, &err),
                                   fn0("std.identity"), &err);
    ember_buf same = ember_buf_heap();
    for (int i = 0; i < 100000; i++) {
        size_t mark;
        assert_int_equal(ember_batch_frame_begin(&same, &mark), EMBER_OK);
        assert_int_equal(ember_rec_put_int(&same, 7), EMBER_OK);
        assert_int_equal(ember_rec_put_int(&same, 1), EMBER_OK);
        assert_int_equal(ember_batch_frame_end(&same, mark), EMBER_OK);
    }
    ember_batch sb = {same.data, same.len, 100000};
    ember_rdd *sevens = ember_parallelize(g.s, &sb, 1, &err);
    ember_buf_release(&same);
    ember_rdd *late[2] = {uniq, sevens}, *early[2] = {sevens, uniq};
    ember_rdd *skipped = ember_coalesce(ember_union(late, 2, &err), 1, &err);
    ember_rdd *combined = ember_coalesce(ember_union(early, 2, &err), 1,
                                         &err);
    int64_t skipped_bytes = check_skip_sums(skipped, 100007);
    int64_t combined_bytes = check_skip_sums(combined, 100007);
    if (skipped_bytes - combined_bytes < 100000 * 4)
        fail_msg("map output %lld bytes with the sevens last, %lld first: "
                 "the sevens were combined", (long long)skipped_bytes,
                 (long long)combined_bytes);

    /* distinct over unique records then repeats: the same records */
    ember_rdd *vals = ember_map(skipped, fn0("std.swap"), &err);
    uint64_t n = 0;
    assert_int_equal(ember_count(ember_distinct(vals, 2, &err), &n, &err),
                     EMBER_OK);
    assert_int_equal(n, 300001); /* (i, i) and (1, 7) */
}

/* ---- sorting (S6) ------------------------------------------------------ */

/* Checks that r (pairs (int key, value)) collected in partition order
 * has keys in order and holds exactly the records of `in`. */
static void check_sorted(ember_rdd *r, const ember_records *in, int ascending)
{
    ember_records got = collect_recs(r);
    assert_int_equal(got.count, in->count);
    ember_batch b = {got.data, got.len, got.count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *p;
    size_t len;
    int64_t prev = 0;
    uint64_t i = 0;
    while (ember_batch_next(&c, &p, &len) == EMBER_OK) {
        ember_value k = {0};
        assert_int_equal(ember_rec_get(p, len, 0, &k), EMBER_OK);
        assert_int_equal(k.type, EMBER_TYPE_INT);
        if (i > 0 && (ascending ? k.u.i64 < prev : k.u.i64 > prev))
            fail_msg("record %" PRIu64 ": key %" PRId64 " after %" PRId64, i,
                     k.u.i64, prev);
        prev = k.u.i64;
        i++;
    }
    char *gt = render(&got, 0, 1), *wt = render(in, 0, 1);
    assert_string_equal(gt, wt);
    free(gt);
    free(wt);
    ember_records_free(&got);
}

typedef struct key_range {
    int64_t lo[64], hi[64];
    uint64_t n[64];
} key_range;

static void note_range(void *ctx, uint32_t part, const ember_value *rec)
{
    key_range *kr = ctx;
    ember_value k = pair_key(rec);
    assert_true(part < 64);
    if (kr->n[part] == 0 || k.u.i64 < kr->lo[part])
        kr->lo[part] = k.u.i64;
    if (kr->n[part] == 0 || k.u.i64 > kr->hi[part])
        kr->hi[part] = k.u.i64;
    kr->n[part]++;
}

static void test_sort_by_key(void **state)
{
    (void)state;
    ember_error err = {0};
    /* 1000 random keys (with some repeats) in 4 partitions */
    ember_buf b = ember_buf_heap();
    uint64_t x = 42;
    for (int i = 0; i < 1000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int64_t key = (int64_t)((x >> 33) % 20000) - 10000;
        build(&b, "Li", key, i);
    }
    ember_records in = {b.data, b.len, 1000};
    ember_rdd *r = par_buf(g.s, &b, 1000, 4);

    /* the sampling job runs when the dataset is defined */
    uint64_t jobs = ember_session_jobs(g.s);
    ember_rdd *asc = ember_sort_by_key(r, 1, 0, &err);
    assert_non_null(asc);
    assert_int_equal(ember_session_jobs(g.s), jobs + 1);
    assert_int_equal(ember_rdd_partitions(asc), 4);
    check_sorted(asc, &in, 1);
    /* partitions hold consecutive key ranges, in order, none empty */
    key_range kr = {0};
    assert_int_equal(visit_partitions(asc, note_range, &kr), 4);
    for (int i = 0; i < 4; i++) {
        assert_true(kr.n[i] > 0);
        if (i > 0)
            assert_true(kr.lo[i] > kr.hi[i - 1]);
    }

    ember_rdd *desc = ember_sort_by_key(r, 0, 0, &err);
    assert_non_null(desc);
    assert_int_equal(ember_rdd_partitions(desc), 4);
    check_sorted(desc, &in, 0);
    memset(&kr, 0, sizeof kr);
    assert_int_equal(visit_partitions(desc, note_range, &kr), 4);
    for (int i = 1; i < 4; i++)
        assert_true(kr.hi[i] < kr.lo[i - 1]);

    /* another partition count */
    ember_rdd *seven = ember_sort_by_key(r, 1, 7, &err);
    assert_int_equal(ember_rdd_partitions(seven), 7);
    check_sorted(seven, &in, 1);
    ember_buf_release(&b);
}

static void test_sort_by_key_bounds(void **state)
{
    (void)state;
    ember_error err = {0};
    /* keys 0 and 1 only: duplicate bounds are dropped, so fewer than the
     * 4 partitions asked for */
    ember_buf b = ember_buf_heap();
    for (int i = 0; i < 400; i++)
        build(&b, "ii", i % 2, i);
    ember_records in = {b.data, b.len, 400};
    ember_rdd *r = par_buf(g.s, &b, 400, 4);
    ember_rdd *s = ember_sort_by_key(r, 1, 4, &err);
    assert_non_null(s);
    assert_true(ember_rdd_partitions(s) < 4);
    assert_true(ember_rdd_partitions(s) >= 1);
    check_sorted(s, &in, 1);
    ember_buf_release(&b);

    /* one key: at most one bound */
    r = par(4, "ii ii ii ii ii ii ii ii", 7, 1, 7, 2, 7, 3, 7, 4, 7, 5, 7, 6,
            7, 7, 7, 8);
    s = ember_sort_by_key(r, 1, 4, &err);
    assert_non_null(s);
    assert_true(ember_rdd_partitions(s) <= 2);
    assert_int_equal(count_of(s), 8);

    /* no data: one partition; no partitions at all: one too */
    s = ember_sort_by_key(par(3, ""), 1, 0, &err);
    assert_non_null(s);
    assert_int_equal(ember_rdd_partitions(s), 1);
    check_seq(s, "");
    ember_rdd *e = ember_empty(g.s, &err);
    s = ember_sort_by_key(e, 0, 0, &err);
    assert_non_null(s);
    assert_int_equal(ember_rdd_partitions(s), 1);
    check_seq(s, "");

    /* one partition asked for: no bounds at all */
    s = ember_sort_by_key(par(2, "ii ii ii", 3, 0, 1, 0, 2, 0), 1, 1, &err);
    assert_int_equal(ember_rdd_partitions(s), 1);
    check_seq(s, "[1,0] [2,0] [3,0]");

    /* string keys sort bytewise */
    s = ember_sort_by_key(par(2, "si si si si", "pear", 1, "apple", 2, "fig",
                              3, "apples", 4),
                          1, 0, &err);
    check_seq(s, "[\"apple\",2] [\"apples\",4] [\"fig\",3] [\"pear\",1]");
    s = ember_sort_by_key(par(2, "si si si si", "pear", 1, "apple", 2, "fig",
                              3, "apples", 4),
                          0, 0, &err);
    check_seq(s, "[\"pear\",1] [\"fig\",3] [\"apples\",4] [\"apple\",2]");
}

static void test_sort_by(void **state)
{
    (void)state;
    ember_error err = {0};
    uint8_t arg[16];
    /* sorted by x mod 10: 3 7 1 4 5 9 */
    ember_rdd *r = par(3, "i i i i i i", 13, 7, 21, 4, 35, 9);
    ember_rdd *s = ember_sort_by(r, fn_int("testfn.key_mod", arg, sizeof arg,
                                           10),
                                 1, 0, &err);
    assert_non_null(s);
    check_seq(s, "[21] [13] [4] [35] [7] [9]");
    s = ember_sort_by(r, fn_int("testfn.key_mod", arg, sizeof arg, 10), 0, 2,
                      &err);
    assert_non_null(s);
    check_seq(s, "[9] [7] [35] [4] [13] [21]");
}

/* ---- repartitioning (S7, S13) ------------------------------------------ */

typedef struct sizes {
    uint64_t n[64];
} sizes;

static void note_size(void *ctx, uint32_t part, const ember_value *rec)
{
    (void)rec;
    sizes *sz = ctx;
    assert_true(part < 64);
    sz->n[part]++;
}

static void test_repartition(void **state)
{
    (void)state;
    ember_error err = {0};
    /* one input partition: dealt round robin, sizes within one */
    ember_rdd *r = ember_range(g.s, 0, 100, 1, 1, &err);
    ember_rdd *rp = ember_repartition(r, 7, &err);
    assert_non_null(rp);
    assert_int_equal(ember_rdd_partitions(rp), 7);
    assert_int_equal(count_of(rp), 100);
    sizes sz = {0};
    assert_int_equal(visit_partitions(rp, note_size, &sz), 7);
    for (int i = 0; i < 7; i++)
        assert_true(sz.n[i] == 14 || sz.n[i] == 15);

    /* four input partitions: each deals its own round, so the sizes are
     * within four of each other; nothing lost or doubled */
    r = ember_range(g.s, 0, 1000, 1, 4, &err);
    rp = ember_repartition(r, 3, &err);
    assert_int_equal(ember_rdd_partitions(rp), 3);
    memset(&sz, 0, sizeof sz);
    assert_int_equal(visit_partitions(rp, note_size, &sz), 3);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 3; i++) {
        lo = sz.n[i] < lo ? sz.n[i] : lo;
        hi = sz.n[i] > hi ? sz.n[i] : hi;
    }
    assert_true(hi - lo <= 4);
    ember_rdd *back = ember_sort_by(rp, fn0("std.identity"), 1, 1, &err);
    ember_records got = collect_recs(back);
    assert_int_equal(got.count, 1000);
    ember_records want = collect_recs(r);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, got.len);
    ember_records_free(&got);
    ember_records_free(&want);

    /* more partitions than records; n = 0 refused */
    rp = ember_repartition(par(1, "i i", 1, 2), 5, &err);
    assert_int_equal(ember_rdd_partitions(rp), 5);
    check_bag(rp, 0, "[1] [2]");
    assert_null(ember_repartition(r, 0, &err));
    assert_int_equal(err.code, EMBER_EINVAL);
}

typedef struct placed {
    uint32_t n;       /* partitions */
    int bad;          /* records in the wrong partition */
    int unsorted;     /* records after a larger key in their partition */
    uint32_t last_part;
    int64_t last_key;
    uint64_t seen;
    uint64_t used;    /* bit per non-empty partition */
} placed;

static void note_hash(void *ctx, uint32_t part, const ember_value *rec)
{
    placed *p = ctx;
    ember_value k = pair_key(rec);
    if (ember_hash64(k.enc, k.enc_len) % p->n != part)
        p->bad++;
    if (p->seen && part == p->last_part && k.u.i64 < p->last_key)
        p->unsorted++;
    p->last_part = part;
    p->last_key = k.u.i64;
    p->seen++;
    p->used |= 1ull << part;
}

static void test_repartition_and_sort_within_partitions(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_buf b = ember_buf_heap();
    for (int i = 0; i < 60; i++)
        build(&b, "is", (i * 37) % 60, "v");
    ember_rdd *r = par_buf(g.s, &b, 60, 3);
    ember_buf_release(&b);
    ember_partitioner hp;
    ember_rdd *s =
        ember_repartition_and_sort_within_partitions(r, hash_p(&hp, 4), 1,
                                                     &err);
    assert_non_null(s);
    assert_int_equal(ember_rdd_partitions(s), 4);
    placed pl = {.n = 4};
    assert_int_equal(visit_partitions(s, note_hash, &pl), 4);
    assert_int_equal(pl.seen, 60);
    assert_int_equal(pl.bad, 0);
    assert_int_equal(pl.unsorted, 0);
}

/* S13: partition_by with the partitioner the dataset already has returns
 * it as it is; another partitioner shuffles. */
static void test_partition_by_same_partitioner(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_partitioner hp;
    ember_rdd *r = par(2, "ii ii ii", 1, 1, 2, 2, 3, 3);
    ember_rdd *a = ember_partition_by(r, hash_p(&hp, 4), &err);
    assert_non_null(a);
    assert_int_not_equal(ember_rdd_id(a), ember_rdd_id(r));
    assert_int_equal(ember_rdd_partitions(a), 4);
    ember_rdd *again = ember_partition_by(a, hash_p(&hp, 4), &err);
    assert_non_null(again);
    assert_int_equal(ember_rdd_id(again), ember_rdd_id(a));
    /* kept through filter-like operations (map_values), dropped by map */
    ember_rdd *mv = ember_map_values(a, fn0("std.identity"), &err);
    assert_int_equal(ember_rdd_id(ember_partition_by(mv, hash_p(&hp, 4),
                                                     &err)),
                     ember_rdd_id(mv));
    ember_rdd *m = ember_map(a, fn0("std.identity"), &err);
    assert_int_not_equal(ember_rdd_id(ember_partition_by(m, hash_p(&hp, 4),
                                                         &err)),
                         ember_rdd_id(m));
    ember_rdd *five = ember_partition_by(a, hash_p(&hp, 5), &err);
    assert_int_not_equal(ember_rdd_id(five), ember_rdd_id(a));
    assert_int_equal(ember_rdd_partitions(five), 5);
    check_bag(five, 0, "[1,1] [2,2] [3,3]");
}

/* ---- partitioners (S12) ------------------------------------------------ */

static void test_hash_placement(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_buf b = ember_buf_heap();
    for (int i = -10; i < 30; i++)
        build(&b, "ii", i, 0);
    ember_rdd *r = par_buf(g.s, &b, 40, 3);
    ember_buf_release(&b);
    ember_partitioner hp;
    ember_rdd *p = ember_partition_by(r, hash_p(&hp, 4), &err);
    placed pl = {.n = 4};
    assert_int_equal(visit_partitions(p, note_hash, &pl), 4);
    assert_int_equal(pl.seen, 40);
    assert_int_equal(pl.bad, 0);
    assert_int_equal(pl.used, 0xf); /* the hash spreads them */

    /* one key checked by hand: the partition testfn.tag_partition sees */
    uint8_t k[16];
    size_t kl = int_enc(k, sizeof k, 12345);
    char want[64];
    snprintf(want, sizeof want, "[%u,[12345,\"v\"]]",
             (unsigned)(ember_hash64(k, kl) % 7));
    p = ember_partition_by(par(2, "is", 12345, "v"), hash_p(&hp, 7), &err);
    check_placement(p, want);

    /* shuffles by key use the same placement (reduce_by_key) */
    ember_rdd *red = ember_reduce_by_key(par(2, "is is", 12345, "v", 12345,
                                             "w"),
                                         fn0("std.concat"), hash_p(&hp, 7),
                                         &err);
    ember_records got = collect_recs(ember_map(red,
                                               fn0("testfn.tag_partition"),
                                               &err));
    assert_int_equal(got.count, 1);
    ember_value part;
    ember_batch gb = {got.data, got.len, 1};
    ember_batch_cursor gc = ember_batch_cursor_of(&gb);
    const uint8_t *rec;
    size_t rl;
    assert_int_equal(ember_batch_next(&gc, &rec, &rl), EMBER_OK);
    assert_int_equal(ember_rec_get(rec, rl, 0, &part), EMBER_OK);
    assert_int_equal(part.u.i64, (int64_t)(ember_hash64(k, kl) % 7));
    ember_records_free(&got);
}

static void test_range_partitioner(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_buf bounds = ember_buf_heap();
    build(&bounds, "i i", 10, 20);
    ember_rdd *r = par(2, "is is is is is", 5, "a", 10, "b", 15, "c", 20, "d",
                       25, "e");
    ember_partitioner rp = {.kind = EMBER_PART_RANGE,
                            .partitions = 3,
                            .bounds = bounds.data,
                            .bounds_len = bounds.len};
    ember_rdd *p = ember_partition_by(r, &rp, &err);
    assert_non_null(p);
    assert_int_equal(ember_rdd_partitions(p), 3);
    /* a key goes to the first bound at or above it */
    check_placement(p, "[0,[5,\"a\"]] [0,[10,\"b\"]] [1,[15,\"c\"]] "
                       "[1,[20,\"d\"]] [2,[25,\"e\"]]");
    rp.descending = 1;
    p = ember_partition_by(r, &rp, &err);
    check_placement(p, "[2,[5,\"a\"]] [2,[10,\"b\"]] [1,[15,\"c\"]] "
                       "[1,[20,\"d\"]] [0,[25,\"e\"]]");

    /* bounds out of order are refused (now or when run) */
    ember_buf bad = ember_buf_heap();
    build(&bad, "i i", 20, 10);
    rp = (ember_partitioner){.kind = EMBER_PART_RANGE,
                             .partitions = 3,
                             .bounds = bad.data,
                             .bounds_len = bad.len};
    p = ember_partition_by(r, &rp, &err);
    if (p)
        assert_contains(collect_error(p, NULL), "bound");
    else
        assert_contains(err.msg, "bound");
    ember_buf_release(&bad);
    ember_buf_release(&bounds);
}

static void test_function_partitioner(void **state)
{
    (void)state;
    ember_error err = {0};
    uint8_t arg[16];
    ember_rdd *r = par(2, "is is is is is is", 0, "a", 1, "b", 2, "c", 4, "d",
                       -1, "e", 9, "f");
    ember_partitioner fp = {.kind = EMBER_PART_FUNCTION,
                            .partitions = 3,
                            .fn = fn_int("testfn.key_mod", arg, sizeof arg,
                                         3)};
    ember_rdd *p = ember_partition_by(r, &fp, &err);
    assert_non_null(p);
    assert_int_equal(ember_rdd_partitions(p), 3);
    check_placement(p, "[0,[0,\"a\"]] [1,[1,\"b\"]] [2,[2,\"c\"]] "
                       "[1,[4,\"d\"]] [2,[-1,\"e\"]] [0,[9,\"f\"]]");
    /* used by a combining operation too */
    ember_rdd *red = ember_reduce_by_key(par(2, "ii ii ii", 4, 1, 4, 2, 5, 3),
                                         fn0("std.sum"), &fp, &err);
    check_placement(red, "[1,[4,3]] [2,[5,3]]");

    /* a partition out of range fails the job with a clear message */
    uint8_t arg5[16];
    ember_partitioner out = {.kind = EMBER_PART_FUNCTION,
                             .partitions = 3,
                             .fn = fn_int("testfn.key_mod", arg5,
                                          sizeof arg5, 5)};
    p = ember_partition_by(r, &out, &err);
    assert_non_null(p);
    const char *msg = collect_error(p, NULL);
    assert_contains(msg, "testfn.key_mod");
    assert_contains(msg, "0..2");

    /* an unknown function */
    ember_partitioner unk = {.kind = EMBER_PART_FUNCTION,
                             .partitions = 2,
                             .fn = fn0("testfn.no_such")};
    p = ember_partition_by(r, &unk, &err);
    if (p)
        assert_contains(collect_error(p, NULL), "testfn.no_such");
    else
        assert_contains(err.msg, "testfn.no_such");
}

/* ---- the default partitioner (S11) ------------------------------------- */

static void test_default_partitioner_rule(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_partitioner hp;
    ember_rdd *pairs = par(2, "ii ii ii ii", 1, 1, 2, 2, 1, 3, 5, 5);
    /* a parent hash-partitioned into 4: kept */
    ember_rdd *four = ember_partition_by(pairs, hash_p(&hp, 4), &err);
    ember_rdd *red = ember_reduce_by_key(four, fn0("std.sum"), NULL, &err);
    assert_int_equal(ember_rdd_partitions(red), 4);
    check_bag(red, 0, "[1,4] [2,2] [5,5]");
    /* ... and reducing it needs no new shuffle: only the result stage
     * runs once four's shuffle exists */
    assert_int_equal(count_of(four), 4);
    check_bag(ember_reduce_by_key(four, fn0("std.sum"), NULL, &err), 0,
              "[1,4] [2,2] [5,5]");
    assert_int_equal(last_job_stages(&g), 1);

    /* no partitioner: the largest parent's count (no
     * ember.default.parallelism in this session) */
    ember_rdd *two = par(2, "ii ii", 1, 1, 2, 2);
    ember_rdd *eight = par(8, "ii ii ii", 1, 10, 2, 20, 3, 30);
    ember_rdd *j = ember_join(two, eight, NULL, &err);
    assert_int_equal(ember_rdd_partitions(j), 8);
    check_bag(j, 0, "[1,[1,10]] [2,[2,20]]");
    j = ember_join(eight, two, NULL, &err);
    assert_int_equal(ember_rdd_partitions(j), 8);

    /* a partitioned parent much smaller than the largest parent is not
     * eligible: log10(40) - log10(2) >= 1 */
    ember_rdd *p2 = ember_partition_by(two, hash_p(&hp, 2), &err);
    ember_rdd *forty = ember_range(g.s, 0, 40, 1, 40, &err);
    ember_rdd *fp = ember_map(forty, fn0("testfn.tag_partition"), &err);
    j = ember_join(p2, fp, NULL, &err);
    assert_int_equal(ember_rdd_partitions(j), 40);
    /* ... but one within 10x is: log10(8) - log10(4) < 1 */
    j = ember_join(four, eight, NULL, &err);
    assert_int_equal(ember_rdd_partitions(j), 4);
    check_bag(j, 0, "[1,[1,10]] [1,[3,10]] [2,[2,20]]");

    /* with ember.default.parallelism set: that count */
    static sess x; /* static: see sess_open */
    const char *conf[] = {"ember.default.parallelism=3", NULL};
    sess_open(&x, APP, "local[2]", conf);
    ember_rdd *a = par_in(x.s, 2, "ii ii", 1, 1, 2, 2);
    ember_rdd *b = par_in(x.s, 8, "ii ii ii", 1, 10, 2, 20, 3, 30);
    j = ember_join(a, b, NULL, &err);
    assert_non_null(j);
    assert_int_equal(ember_rdd_partitions(j), 3);
    check_bag(j, 0, "[1,[1,10]] [2,[2,20]]");
    red = ember_reduce_by_key(b, fn0("std.sum"), NULL, &err);
    assert_int_equal(ember_rdd_partitions(red), 3);
    sess_close(&x);
}

/* A join of two datasets partitioned alike reads their partitions
 * directly: once both shuffles exist, the join's job runs one stage. */
static void test_co_partitioned_join(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_partitioner hp;
    ember_rdd *a = ember_partition_by(par(2, "is is is", 1, "a", 2, "b", 3,
                                          "c"),
                                      hash_p(&hp, 4), &err);
    ember_rdd *b = ember_partition_by(par(3, "ii ii ii", 1, 10, 3, 30, 3, 31),
                                      hash_p(&hp, 4), &err);
    ember_rdd *j = ember_join(a, b, NULL, &err);
    assert_non_null(j);
    assert_int_equal(ember_rdd_partitions(j), 4);
    /* fresh: the two partition_by map stages and the join's result stage,
     * no shuffle of its own */
    check_bag(j, 0, "[1,[\"a\",10]] [3,[\"c\",30]] [3,[\"c\",31]]");
    assert_int_equal(last_job_stages(&g), 3);
    /* again: both shuffles are reused */
    check_bag(j, 0, "[1,[\"a\",10]] [3,[\"c\",30]] [3,[\"c\",31]]");
    assert_int_equal(last_job_stages(&g), 1);
    ember_rdd *ab[2] = {a, b};
    check_bag(ember_cogroup(ab, 2, NULL, &err), 2,
              "[1,[[\"a\"],[10]]] [2,[[\"b\"],[]]] [3,[[\"c\"],[30,31]]]");
    assert_int_equal(last_job_stages(&g), 1);

    /* not co-partitioned (b by 5): a new shuffle of b at least */
    ember_rdd *b5 = ember_partition_by(b, hash_p(&hp, 5), &err);
    j = ember_join(a, b5, NULL, &err);
    check_bag(j, 0, "[1,[\"a\",10]] [3,[\"c\",30]] [3,[\"c\",31]]");
    assert_true(last_job_stages(&g) > 1);
}

/* ---- actions on pair datasets (S27, S28) ------------------------------- */

static void test_pair_actions(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records out = {0};
    ember_rdd *r = par(3, "si si si si si", "b", 2, "a", 1, "c", 5, "a", 3,
                       "b", 4);
    assert_int_equal(ember_count_by_key(r, &out, &err), EMBER_OK);
    check_seq_recs(&out, "[\"a\",2] [\"b\",2] [\"c\",1]");
    ember_records_free(&out);

    /* S27: one value per key, the last one wins (partition order) */
    ember_rdd *m = par(2, "is is is is", 1, "x", 2, "y", 1, "z", 2, "w");
    assert_int_equal(ember_collect_as_map(m, &out, &err), EMBER_OK);
    check_seq_recs(&out, "[1,\"z\"] [2,\"w\"]");
    ember_records_free(&out);

    assert_int_equal(ember_reduce_by_key_locally(r, fn0("std.sum"), &out,
                                                 &err),
                     EMBER_OK);
    check_seq_recs(&out, "[\"a\",4] [\"b\",6] [\"c\",5]");
    ember_records_free(&out);

    /* empty inputs */
    assert_int_equal(ember_count_by_key(par(2, ""), &out, &err), EMBER_OK);
    assert_int_equal(out.count, 0);
    ember_records_free(&out);
    assert_int_equal(ember_collect_as_map(par(2, ""), &out, &err), EMBER_OK);
    assert_int_equal(out.count, 0);
    ember_records_free(&out);

    /* not pairs */
    assert_int_not_equal(ember_count_by_key(par(1, "i", 1), &out, &err),
                         EMBER_OK);
    ember_records_free(&out);
}

/* reduce_by_key_locally merges on the driver (ember.h, S27): its job
 * has no shuffle, one stage. */
static void test_reduce_by_key_locally_no_shuffle(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records out = {0};
    ember_rdd *r = par(3, "si si si si", "b", 2, "a", 1, "a", 3, "b", 4);
    assert_int_equal(ember_reduce_by_key_locally(r, fn0("std.sum"), &out,
                                                 &err),
                     EMBER_OK);
    check_seq_recs(&out, "[\"a\",4] [\"b\",6]");
    ember_records_free(&out);
    int64_t stages = last_job_stages(&g);
    if (stages != 1)
        fail_msg("reduce_by_key_locally ran %" PRId64 " stages: a shuffle",
                 stages);
}

static void test_lookup(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_records out = {0};
    ember_partitioner hp;
    uint8_t k[16];
    size_t kl = int_enc(k, sizeof k, 1);
    ember_rdd *r = par(4, "is is is is is", 1, "x", 2, "y", 1, "z", 3, "w", 4,
                       "v");

    /* no partitioner: every partition is searched */
    uint64_t jobs = ember_session_jobs(g.s);
    assert_int_equal(ember_lookup(r, k, kl, &out, &err), EMBER_OK);
    assert_int_equal(ember_session_jobs(g.s), jobs + 1);
    check_bag_recs(&out, 0, "[\"x\"] [\"z\"]");
    ember_records_free(&out);
    int64_t j = last_job(&g);
    assert_int_equal(db_int(&g, "SELECT num_tasks FROM stage_attempts WHERE "
                                "job_id = %" PRId64 " AND kind = 'result'",
                            j),
                     4);

    /* S28: a hash-partitioned dataset: one partition's job */
    ember_rdd *p = ember_partition_by(r, hash_p(&hp, 6), &err);
    jobs = ember_session_jobs(g.s);
    assert_int_equal(ember_lookup(p, k, kl, &out, &err), EMBER_OK);
    assert_int_equal(ember_session_jobs(g.s), jobs + 1);
    check_bag_recs(&out, 0, "[\"x\"] [\"z\"]");
    ember_records_free(&out);
    j = last_job(&g);
    assert_int_equal(db_int(&g, "SELECT num_tasks FROM stage_attempts WHERE "
                                "job_id = %" PRId64 " AND kind = 'result'",
                            j),
                     1);

    /* a range-partitioned (sorted) dataset too */
    ember_rdd *s = ember_sort_by_key(r, 1, 3, &err);
    assert_non_null(s);
    assert_int_equal(ember_lookup(s, k, kl, &out, &err), EMBER_OK);
    check_bag_recs(&out, 0, "[\"x\"] [\"z\"]");
    ember_records_free(&out);
    j = last_job(&g);
    assert_int_equal(db_int(&g, "SELECT num_tasks FROM stage_attempts WHERE "
                                "job_id = %" PRId64 " AND kind = 'result'",
                            j),
                     1);

    /* a missing key: nothing */
    kl = int_enc(k, sizeof k, 99);
    assert_int_equal(ember_lookup(p, k, kl, &out, &err), EMBER_OK);
    assert_int_equal(out.count, 0);
    ember_records_free(&out);
}

static void test_cartesian(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *a = par(2, "i i", 0, 1);
    ember_rdd *b = par(3, "s s s", "x", "y", "z");
    ember_rdd *c = ember_cartesian(a, b, &err);
    assert_non_null(c);
    assert_int_equal(ember_rdd_partitions(c), 6);
    /* partition i * 3 + j pairs a's partition i with b's j */
    check_seq(c, "[0,\"x\"] [0,\"y\"] [0,\"z\"] [1,\"x\"] [1,\"y\"] "
                 "[1,\"z\"]");
    check_seq(ember_glom(c, &err),
              "[[[0,\"x\"]]] [[[0,\"y\"]]] [[[0,\"z\"]]] [[[1,\"x\"]]] "
              "[[[1,\"y\"]]] [[[1,\"z\"]]]");
    assert_int_equal(count_of(ember_cartesian(b, b, &err)), 9);
    c = ember_cartesian(a, par(2, ""), &err);
    assert_int_equal(ember_rdd_partitions(c), 4);
    assert_int_equal(count_of(c), 0);
}

/* reduce_by_key, map, group_by_key: two shuffles in one job; a second job
 * on the same dataset reuses both. */
static void test_chain_and_reuse(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_rdd *words = par(3, "si si si si si si si si", "a", 1, "b", 1, "a",
                           1, "c", 1, "d", 1, "a", 1, "b", 1, "e", 1);
    ember_rdd *counts = ember_reduce_by_key(words, fn0("std.sum"), NULL,
                                            &err);
    ember_rdd *swapped = ember_map(counts, fn0("std.swap"), &err);
    ember_rdd *by_count = ember_group_by_key(swapped, NULL, &err);
    assert_non_null(by_count);
    uint64_t jobs = ember_session_jobs(g.s);
    check_bag(by_count, 1,
              "[1,[\"c\",\"d\",\"e\"]] [2,[\"b\"]] [3,[\"a\"]]");
    assert_int_equal(ember_session_jobs(g.s), jobs + 1);
    assert_int_equal(last_job_stages(&g), 3);

    assert_int_equal(count_of(by_count), 3);
    assert_int_equal(ember_session_jobs(g.s), jobs + 2);
    assert_int_equal(last_job_stages(&g), 1);
    /* a dataset downstream of the first shuffle only reuses it too */
    assert_int_equal(count_of(swapped), 5);
    assert_int_equal(last_job_stages(&g), 1);

    /* the lineage shows both shuffle boundaries */
    char *desc = NULL;
    assert_int_equal(ember_rdd_describe(by_count, &desc, &err), EMBER_OK);
    assert_contains(desc, "group_by_key");
    assert_contains(desc, "reduce_by_key");
    free(desc);
}

/* ---- word count over a multi-megabyte text ----------------------------- */

#define VOCAB (5000 * 8)

static char g_text_path[256];
static char *g_reference; /* sorted "word\tcount\n" lines */

/* Word id -> word: "w<rank><suffix>" with a suffix byte from a set
 * including non-ASCII ones. */
static void word_of(unsigned id, char *out, size_t cap)
{
    snprintf(out, cap, "w%u%c", id / 8, "abcxyz\x80\xff"[id % 8]);
}

/* A ~4 MB text from a fixed generator and its word counts made here
 * (sorted "word\tcount\n" lines). */
static int text_setup(void **state)
{
    (void)state;
    snprintf(g_text_path, sizeof g_text_path,
             "/tmp/ember-shops-text-%ld.txt", (long)getpid());
    FILE *f = fopen(g_text_path, "w");
    if (!f)
        return -1;
    static uint64_t counts[VOCAB];
    static const char *const ws[] = {" ", "  ", "\t", " \r", "\v", "\f"};
    uint64_t x = 777;
    while (ftell(f) < 4 * 1000 * 1000) {
        int line = 1 + (int)(x % 13);
        for (int i = 0; i < line; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(x >> 33);
            unsigned rank = (r % 5000) * (r % 5000) / 5000; /* skewed */
            unsigned id = rank * 8 + (r >> 20) % 8;
            char w[32];
            word_of(id, w, sizeof w);
            fputs(w, f);
            fputs(ws[(x >> 24) % 6], f);
            counts[id]++;
        }
        fputc('\n', f);
    }
    fclose(f);
    char **lines = malloc(VOCAB * sizeof *lines);
    size_t n = 0;
    for (unsigned id = 0; id < VOCAB; id++) {
        if (!counts[id])
            continue;
        char w[32], buf[64];
        word_of(id, w, sizeof w);
        snprintf(buf, sizeof buf, "%s\t%" PRIu64, w, counts[id]);
        lines[n++] = strdup(buf);
    }
    g_reference = join_sorted_lines(lines, n);
    free(lines);
    return 0;
}

static int text_teardown(void **state)
{
    (void)state;
    unlink(g_text_path);
    free(g_reference);
    return 0;
}

/* Word count with reduce_by_key on master with the shuffle manager and
 * codec given; must equal the reference. */
static void word_count_with(const char *master, const char *manager,
                            const char *codec)
{
    char c1[64], c2[64];
    snprintf(c1, sizeof c1, "ember.shuffle.manager=%s", manager);
    snprintf(c2, sizeof c2, "ember.io.compression.codec=%s", codec);
    /* compress even where auto would not (one host) */
    const char *conf[] = {c1, c2, "ember.shuffle.compress=true", NULL};
    static sess x; /* static: see sess_open */
    sess_open(&x, APP, master, conf);
    ember_error err = {0};
    uint8_t one[16];
    ember_rdd *lines = ember_text_file(x.s, g_text_path, 6, &err);
    assert_non_null(lines);
    ember_rdd *words = ember_flat_map(lines, fn0("std.split_words"), &err);
    ember_rdd *pairs =
        ember_map(words, fn_int("std.pair_with", one, sizeof one, 1), &err);
    ember_rdd *counts = ember_reduce_by_key(pairs, fn0("std.sum"), NULL, &err);
    assert_non_null(counts);
    ember_records got = collect_recs(counts);
    char *joined = word_counts_text(&got);
    ember_records_free(&got);
    if (strcmp(joined, g_reference) != 0)
        fail_msg("word count on %s with %s/%s differs from the reference "
                 "(%zu vs %zu bytes)",
                 master, manager, codec, strlen(joined),
                 strlen(g_reference));
    free(joined);
    sess_close(&x);
}

/* word_count_with on master and manager with every codec, in the order
 * none, lz4, zstd. */
static void word_count_every_codec(const char *master, const char *manager)
{
    static const char *const codecs[] = {"none", "lz4", "zstd"};
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        word_count_with(master, manager, codecs[i]);
}

static void test_word_count_local_sort(void **state)
{
    (void)state;
    word_count_every_codec("local[2]", "sort");
}

static void test_word_count_local_hash(void **state)
{
    (void)state;
    word_count_every_codec("local[2]", "hash");
}

static void test_word_count_local_cluster(void **state)
{
    (void)state;
    word_count_with("local-cluster[2,1,512]", "sort", "lz4");
    word_count_with("local-cluster[2,1,512]", "hash", "zstd");
    word_count_with("local-cluster[2,1,512]", "sort", "none");
}

/* sample_by_key: fraction 1 keeps every value of its key, 0 none, 0.5
 * about half; the same seed samples the same records; a key without a
 * fraction fails the job; with replacement a fraction may exceed 1. */
static void test_sample_by_key(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_buf in = ember_buf_heap();
    uint64_t n = 0;
    for (int64_t i = 0; i < 3000; i++)
        n += build(&in, "LL", i % 3 + 1, i);
    ember_rdd *r = par_buf(g.s, &in, n, 3);
    ember_buf fr = ember_buf_heap();
    uint64_t nf = build(&fr, "id id id", 1, 1.0, 2, 0.0, 3, 0.5);
    ember_batch fb = {fr.data, fr.len, nf};
    ember_rdd *a = ember_sample_by_key(r, 0, &fb, 7, &err);
    assert_non_null(a);
    ember_rdd *b = ember_sample_by_key(r, 0, &fb, 7, &err);
    ember_records ra = collect_recs(a), rb = collect_recs(b);
    uint64_t k1 = 0, k2 = 0, k3 = 0;
    ember_batch ab = {ra.data, ra.len, ra.count};
    ember_batch_cursor c = ember_batch_cursor_of(&ab);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_value k;
        memset(&k, 0, sizeof k);
        assert_int_equal(ember_rec_get(rec, len, 0, &k), EMBER_OK);
        k1 += k.u.i64 == 1;
        k2 += k.u.i64 == 2;
        k3 += k.u.i64 == 3;
    }
    assert_int_equal(k1, 1000);
    assert_int_equal(k2, 0);
    assert_true(k3 > 400 && k3 < 600);
    /* the same seed: the same records (as a multiset) */
    char *sa = render(&ra, 0, 1), *sb = render(&rb, 0, 1);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    ember_records_free(&ra);
    ember_records_free(&rb);
    /* with replacement, 2.0 gives about twice the values */
    fr.len = 0;
    nf = build(&fr, "id id id", 1, 2.0, 2, 0.0, 3, 0.0);
    fb = (ember_batch){fr.data, fr.len, nf};
    ember_rdd *w = ember_sample_by_key(r, 1, &fb, 9, &err);
    ember_records rw = collect_recs(w);
    assert_true(rw.count > 1700 && rw.count < 2300);
    ember_records_free(&rw);
    /* a key without a fraction */
    fr.len = 0;
    nf = build(&fr, "id", 1, 1.0);
    fb = (ember_batch){fr.data, fr.len, nf};
    ember_rdd *bad = ember_sample_by_key(r, 0, &fb, 1, &err);
    assert_non_null(
        strstr(collect_error(bad, NULL), "a key has no fraction"));
    ember_buf_release(&fr);
    ember_buf_release(&in);
}

/* A test whose sessions are closed even when it fails. */
#define T(f) cmocka_unit_test_teardown(f, close_live)

int main(void)
{
    const struct CMUnitTest ops[] = {
        T(test_fold_and_aggregate_by_key),
        T(test_reduce_by_key),
        T(test_combine_by_key),
        T(test_group_by_key_and_group_by),
        T(test_cogroup),
        T(test_joins),
        T(test_subtract_intersection_distinct),
        T(test_map_side_combine_skipped),
        T(test_sort_by_key),
        T(test_sort_by_key_bounds),
        T(test_sort_by),
        T(test_repartition),
        T(test_repartition_and_sort_within_partitions),
        T(test_partition_by_same_partitioner),
        T(test_hash_placement),
        T(test_range_partitioner),
        T(test_function_partitioner),
        T(test_default_partitioner_rule),
        T(test_co_partitioned_join),
        T(test_pair_actions),
        T(test_reduce_by_key_locally_no_shuffle),
        T(test_lookup),
        T(test_cartesian),
        T(test_chain_and_reuse),
        T(test_sample_by_key),
    };
    const struct CMUnitTest wc[] = {
        T(test_word_count_local_sort),
        T(test_word_count_local_hash),
        T(test_word_count_local_cluster),
    };
    int failed = cmocka_run_group_tests_name("shuffle_ops", ops, group_open,
                                             group_close);
    failed += cmocka_run_group_tests_name("shuffle_word_count", wc,
                                          text_setup, text_teardown);
    return failed;
}
