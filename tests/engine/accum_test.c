/*
 * accum_test.c — accumulators through the driver API (issue 6, SEMANTICS
 * S17) on local[2,4] (tasks may be retried), local-cluster[2,1,512]
 * (executor processes):
 *
 *   - int64 and double sums and a count over range(0, 1000) in 4
 *     partitions, added by testfn.accum_add in a foreach: exact values;
 *   - a named accumulator's value in the state store's accumulators table
 *     after the job (an unnamed one is not there);
 *   - exactly once for actions: testfn.accum_flaky adds every record of
 *     partition 1 and then fails that attempt once; the retry adds again,
 *     and the value is still the record count (the failed attempt shows
 *     in the tasks table);
 *   - exactly once under speculation (local-cluster): partition 0's first
 *     attempt adds and then stalls, a speculative copy on the other
 *     executor adds and wins; the value is the record count (the copy
 *     shows in the tasks table);
 *   - transformations count per computation: an accumulator updated in a
 *     map counts twice over two actions on the uncached dataset, once
 *     with the dataset cached;
 *   - user-defined kinds merged by a REDUCE function (testfn.product,
 *     testfn.sum_count, whose first fold turns v into (v, 1));
 *   - errors: unknown kinds, MAP functions as kinds, the wrong getter, an
 *     add to an id the plan does not declare (the task fails naming it);
 *   - a plan file's accumulators (ember_plan_run).
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

#include "ember/ember.h"
#include "ember/record.h"
#include "shuffle_support.h"

#define N 1000

static sess g_x; /* local[2,4], shared by the local tests */

static int group_open(void **state)
{
    (void)state;
    sess_open(&g_x, "accum_test", "local[2,4]", NULL);
    sess_track(&g_x, 0);
    return 0;
}

static int group_close(void **state)
{
    (void)state;
    sess_close(&g_x);
    return 0;
}

/* An argument record for testfn.accum_add: (id, mode) pairs, ended by a
 * 0 id; for accum_flaky, prefix = (dir, partition) first. */
typedef struct arg {
    uint8_t mem[2048];
    ember_buf b;
} arg;

static ember_fn accum_fn(arg *a, const char *name, const char *dir,
                         int64_t part, ...)
{
    a->b = ember_buf_fixed(a->mem, sizeof a->mem);
    if (dir) {
        assert_int_equal(ember_rec_put_string(&a->b, dir, strlen(dir)),
                         EMBER_OK);
        assert_int_equal(ember_rec_put_int(&a->b, part), EMBER_OK);
    }
    va_list ap;
    va_start(ap, part);
    for (;;) {
        uint64_t id = va_arg(ap, uint64_t);
        if (!id)
            break;
        const char *mode = va_arg(ap, const char *);
        assert_int_equal(ember_rec_put_int(&a->b, (int64_t)id), EMBER_OK);
        assert_int_equal(ember_rec_put_string(&a->b, mode, strlen(mode)),
                         EMBER_OK);
    }
    va_end(ap);
    return (ember_fn){name, a->b.data, a->b.len};
}

static ember_accumulator *new_acc(ember_session *s, const char *name,
                                  const char *kind)
{
    ember_accumulator *a = NULL;
    ember_error err = {0};
    if (ember_accumulator_new(s, name, kind, &a, &err) != EMBER_OK)
        fail_msg("accumulator %s: %s", kind, err.msg);
    return a;
}

static int64_t i64_of(const ember_accumulator *a)
{
    int64_t v = -1;
    ember_error err = {0};
    if (ember_accumulator_int64(a, &v, &err) != EMBER_OK)
        fail_msg("int64 getter: %s", err.msg);
    return v;
}

static double f64_of(const ember_accumulator *a)
{
    double v = -1;
    ember_error err = {0};
    if (ember_accumulator_double(a, &v, &err) != EMBER_OK)
        fail_msg("double getter: %s", err.msg);
    return v;
}

static void foreach_ok(ember_rdd *r, ember_fn fn)
{
    ember_error err = {0};
    if (ember_foreach(r, fn, &err) != EMBER_OK)
        fail_msg("foreach: %s", err.msg);
}

/* ---- sums ---------------------------------------------------------------- */

/* int64, double and count accumulators over range(0, N) in 4 partitions. */
static void sums_on(ember_session *s)
{
    ember_accumulator *sum = new_acc(s, NULL, "int64");
    ember_accumulator *dsum = new_acc(s, NULL, "double");
    ember_accumulator *count = new_acc(s, NULL, "int64");
    assert_int_equal(i64_of(sum), 0);
    assert_true(f64_of(dsum) == 0.0);
    arg a;
    foreach_ok(ember_range(s, 0, N, 1, 4, NULL),
               accum_fn(&a, "testfn.accum_add", NULL, 0,
                        ember_accumulator_id(sum), "int",
                        ember_accumulator_id(dsum), "double",
                        ember_accumulator_id(count), "one", (uint64_t)0));
    assert_int_equal(i64_of(sum), 499500);
    assert_true(f64_of(dsum) == 499500.0);
    assert_int_equal(i64_of(count), N);
    /* any kind as a record */
    uint8_t *rec = NULL;
    size_t len = 0;
    ember_error err = {0};
    assert_int_equal(ember_accumulator_value(dsum, &rec, &len, &err),
                     EMBER_OK);
    ember_value v;
    assert_int_equal(ember_rec_get(rec, len, 0, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_DOUBLE);
    assert_true(v.u.f64 == 499500.0);
    free(rec);
    /* a second job adds to the same values */
    foreach_ok(ember_range(s, 0, 10, 1, 2, NULL),
               accum_fn(&a, "testfn.accum_add", NULL, 0,
                        ember_accumulator_id(count), "one", (uint64_t)0));
    assert_int_equal(i64_of(count), N + 10);
    assert_int_equal(i64_of(sum), 499500);
}

static void sums(void **state)
{
    (void)state;
    sums_on(g_x.s);
}

/* ---- state store --------------------------------------------------------- */

static void named_in_state_store(void **state)
{
    (void)state;
    ember_accumulator *named = new_acc(g_x.s, "records seen", "int64");
    ember_accumulator *total = new_acc(g_x.s, "total", "double");
    ember_accumulator *anon = new_acc(g_x.s, NULL, "int64");
    arg a;
    foreach_ok(ember_range(g_x.s, 0, N, 1, 4, NULL),
               accum_fn(&a, "testfn.accum_add", NULL, 0,
                        ember_accumulator_id(named), "one",
                        ember_accumulator_id(total), "double",
                        ember_accumulator_id(anon), "one", (uint64_t)0));
    store_settle(&g_x);
    char sql[256], text[128];
    snprintf(sql, sizeof sql, "SELECT kind || ' ' || value FROM accumulators "
             "WHERE name = 'records seen' AND acc_id = %" PRIu64,
             ember_accumulator_id(named));
    db_text(&g_x, text, sizeof text, sql);
    assert_string_equal(text, "int64 1000");
    db_text(&g_x, text, sizeof text,
            "SELECT kind || ' ' || value FROM accumulators WHERE name = "
            "'total'");
    assert_string_equal(text, "double 499500");
    assert_int_equal(db_int(&g_x, "SELECT count(*) FROM accumulators WHERE "
                                  "acc_id = %" PRIu64,
                            ember_accumulator_id(anon)),
                     0);
}

/* ---- exactly once -------------------------------------------------------- */

/* Partition 1's first attempt adds its 250 records, then fails. */
static void exactly_once_on(ember_session *s, const sess *x)
{
    char dir[] = "/tmp/ember-accum-flaky-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int64_t failed_before =
        x ? db_int(x, "SELECT count(*) FROM tasks WHERE status = 'FAILED'")
          : 0;
    ember_accumulator *c = new_acc(s, "flaky count", "int64");
    arg a;
    foreach_ok(ember_range(s, 0, N, 1, 4, NULL),
               accum_fn(&a, "testfn.accum_flaky", dir, 1,
                        ember_accumulator_id(c), "one", (uint64_t)0));
    assert_int_equal(i64_of(c), N);
    if (x) {
        /* the attempt that added and failed did run */
        store_settle(x);
        assert_int_equal(db_int(x, "SELECT count(*) FROM tasks WHERE "
                                   "status = 'FAILED'") -
                             failed_before,
                         1);
    }
    char marker[128];
    snprintf(marker, sizeof marker, "%s/accum-flaky-1", dir);
    assert_int_equal(remove(marker), 0); /* it failed once */
    rmtree(dir);
}

static void exactly_once(void **state)
{
    (void)state;
    exactly_once_on(g_x.s, &g_x);
}

/* ---- transformations ----------------------------------------------------- */

static void transformations_count_per_computation(void **state)
{
    (void)state;
    ember_session *s = g_x.s;
    ember_error err = {0};
    ember_accumulator *c = new_acc(s, NULL, "int64");
    arg a;
    ember_rdd *mapped = ember_map(ember_range(s, 0, N, 1, 4, NULL),
                                  accum_fn(&a, "testfn.accum_add", NULL, 0,
                                           ember_accumulator_id(c), "one",
                                           (uint64_t)0),
                                  &err);
    assert_non_null(mapped);
    /* lazy: nothing counted before an action */
    assert_int_equal(i64_of(c), 0);
    assert_int_equal(count_of(mapped), N);
    assert_int_equal(count_of(mapped), N);
    assert_int_equal(i64_of(c), 2 * N); /* computed twice: counted twice */

    ember_accumulator *k = new_acc(s, NULL, "int64");
    ember_rdd *cached = ember_map(ember_range(s, 0, N, 1, 4, NULL),
                                  accum_fn(&a, "testfn.accum_add", NULL, 0,
                                           ember_accumulator_id(k), "one",
                                           (uint64_t)0),
                                  &err);
    assert_non_null(cached);
    assert_int_equal(ember_cache(cached, &err), EMBER_OK);
    assert_int_equal(count_of(cached), N);
    assert_int_equal(count_of(cached), N);
    assert_int_equal(i64_of(k), N); /* the second job read the cache */
}

/* ---- user-defined kinds -------------------------------------------------- */

static void user_defined_kinds(void **state)
{
    (void)state;
    ember_session *s = g_x.s;
    ember_accumulator *prod = new_acc(s, "product", "testfn.product");
    ember_accumulator *avg = new_acc(s, NULL, "testfn.sum_count");
    ember_error err = {0};
    uint8_t *rec = NULL;
    size_t len = 99;
    /* nothing added yet: length 0 */
    assert_int_equal(ember_accumulator_value(prod, &rec, &len, &err),
                     EMBER_OK);
    assert_int_equal(len, 0);
    free(rec);
    arg a;
    foreach_ok(ember_range(s, 1, 11, 1, 3, NULL),
               accum_fn(&a, "testfn.accum_add", NULL, 0,
                        ember_accumulator_id(prod), "record", (uint64_t)0));
    assert_int_equal(ember_accumulator_value(prod, &rec, &len, &err),
                     EMBER_OK);
    ember_value v;
    assert_int_equal(ember_rec_get(rec, len, 0, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_INT);
    assert_int_equal(v.u.i64, 3628800); /* 10! */
    free(rec);
    foreach_ok(ember_range(s, 0, N, 1, 4, NULL),
               accum_fn(&a, "testfn.accum_add", NULL, 0,
                        ember_accumulator_id(avg), "record", (uint64_t)0));
    assert_int_equal(ember_accumulator_value(avg, &rec, &len, &err),
                     EMBER_OK);
    ember_value sum, n;
    assert_int_equal(ember_rec_get(rec, len, 0, &sum), EMBER_OK);
    assert_int_equal(ember_rec_get(rec, len, 1, &n), EMBER_OK);
    assert_int_equal(sum.u.i64, 499500);
    assert_int_equal(n.u.i64, N);
    free(rec);
    /* the store shows a user value as the JSON of its record */
    store_settle(&g_x);
    char text[128];
    db_text(&g_x, text, sizeof text,
            "SELECT kind || ' ' || value FROM accumulators WHERE name = "
            "'product'");
    assert_string_equal(text, "testfn.product [3628800]");
}

/* ---- errors -------------------------------------------------------------- */

static void errors(void **state)
{
    (void)state;
    ember_session *s = g_x.s;
    ember_error err = {0};
    ember_accumulator *a = NULL;
    assert_int_equal(ember_accumulator_new(s, NULL, "float", &a, &err),
                     EMBER_EINVAL);
    assert_null(a);
    assert_string_equal(err.msg, "accumulator kind 'float' is not int64, "
                                 "double or a loaded function "
                                 "(PLUGIN.FUNCTION)");
    assert_int_equal(ember_accumulator_new(s, NULL, "testfn.nope", &a, &err),
                     EMBER_EINVAL);
    assert_int_equal(ember_accumulator_new(s, NULL, "testfn.two_per", &a,
                                           &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator kind 'testfn.two_per' is not "
                                 "a REDUCE function (a merge takes two "
                                 "values)");
    assert_int_equal(ember_accumulator_new(s, "", "int64", &a, &err),
                     EMBER_EINVAL);

    ember_accumulator *i = new_acc(s, NULL, "int64");
    double d;
    assert_int_equal(ember_accumulator_double(i, &d, &err), EMBER_EINVAL);
    char want[160];
    snprintf(want, sizeof want, "ember_accumulator_double: accumulator %"
             PRIu64 " is of kind int64", ember_accumulator_id(i));
    assert_string_equal(err.msg, want);
    int64_t x;
    ember_accumulator *f = new_acc(s, NULL, "double");
    assert_int_equal(ember_accumulator_int64(f, &x, &err), EMBER_EINVAL);
    assert_int_equal(ember_accumulator_int64(i, NULL, &err), EMBER_EINVAL);
    assert_int_equal(ember_accumulator_double(f, NULL, &err), EMBER_EINVAL);
    assert_int_equal(ember_accumulator_id(NULL), 0);

    /* a task adding to an id its plan does not declare fails, naming it
     * (local[2,4]: each of the 4 attempts fails the same way) */
    arg ar;
    ember_status st = ember_foreach(ember_range(s, 0, 10, 1, 1, NULL),
                                    accum_fn(&ar, "testfn.accum_add", NULL, 0,
                                             (uint64_t)4242, "one",
                                             (uint64_t)0),
                                    &err);
    assert_int_not_equal(st, EMBER_OK);
    assert_non_null(strstr(err.msg, "accumulator 4242 is not declared in "
                                    "the job's plan"));
    /* the wrong kind, through accum_add's own message */
    st = ember_foreach(ember_range(s, 0, 10, 1, 1, NULL),
                       accum_fn(&ar, "testfn.accum_add", NULL, 0,
                                ember_accumulator_id(i), "record",
                                (uint64_t)0),
                       &err);
    assert_int_not_equal(st, EMBER_OK);
    snprintf(want, sizeof want, "accumulator %" PRIu64 " is an int64, not a "
             "user-defined", ember_accumulator_id(i));
    assert_non_null(strstr(err.msg, want));
    /* the failed jobs added nothing */
    assert_int_equal(i64_of(i), 0);
}

/* ---- plan files ---------------------------------------------------------- */

static void no_emit(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

/* A plan file's accumulators are made in the session with its ids; its
 * functions add to them; named ones reach the state store. */
static void plan_file_accumulators(void **state)
{
    (void)state;
    static const char plan[] =
        "{\"ember_plan\": 1,"
        " \"accumulators\": [{\"id\": 9001, \"kind\": \"int64\","
        "                     \"name\": \"plan records\"}],"
        " \"datasets\": [{\"id\": 0, \"op\": \"range\", \"partitions\": 3,"
        "                \"args\": {\"start\": 0, \"end\": 30}}],"
        " \"actions\": [{\"action\": \"foreach\", \"dataset\": 0,"
        "               \"fn\": {\"name\": \"testfn.accum_add\","
        "                      \"value\": [9001, \"one\"]}}]}";
    ember_error err = {0};
    if (ember_plan_run(g_x.s, plan, strlen(plan), "acc.json", no_emit, NULL,
                       &err) != EMBER_OK)
        fail_msg("plan: %s", err.msg);
    store_settle(&g_x);
    char text[64];
    db_text(&g_x, text, sizeof text, "SELECT value FROM accumulators WHERE "
            "acc_id = 9001 AND name = 'plan records'");
    assert_string_equal(text, "30");
    /* the same ids again in this session are refused */
    assert_int_equal(ember_plan_run(g_x.s, plan, strlen(plan), "acc.json",
                                    no_emit, NULL, &err),
                     EMBER_EEXIST);
    assert_string_equal(err.msg, "acc.json: accumulators: id 9001: "
                                 "accumulator 9001 already exists in this "
                                 "session");
    static const char bad[] =
        "{\"ember_plan\": 1, \"accumulators\": [{\"id\": 1, \"kind\": "
        "\"float\"}], \"datasets\": [{\"id\": 0, \"op\": \"range\", "
        "\"partitions\": 1, \"args\": {\"start\": 0, \"end\": 3}}], "
        "\"actions\": [{\"action\": \"count\", \"dataset\": 0}]}";
    assert_int_equal(ember_plan_run(g_x.s, bad, strlen(bad), "bad.json",
                                    no_emit, NULL, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "bad.json: accumulators[0].kind: unknown "
                                 "kind 'float' (int64, double, or the "
                                 "PLUGIN.FUNCTION of a REDUCE function)");
}

/* ---- executor processes -------------------------------------------------- */

static void local_cluster(void **state)
{
    (void)state;
    static sess x;
    sess_open(&x, "accum_cluster", "local-cluster[2,1,512]", NULL);
    sums_on(x.s);
    exactly_once_on(x.s, &x);
    sess_close(&x);
}

/* Speculation (S17): partition 0's first attempt adds its records and
 * then sleeps 3 s (testfn.slow_first_attempt after the adds); the others
 * finish, a speculative copy of partition 0 runs on the other executor,
 * adds the same records and wins. Only the winner's adds count: the value
 * is the record count, neither more (the original's too) nor less. */
static void speculated_once(void **state)
{
    (void)state;
    static sess x;
    const char *const conf[] = {"ember.speculation=true",
                                "ember.speculation.quantile=0.5",
                                "ember.speculation.multiplier=1.5",
                                "ember.speculation.minTaskRuntime=100ms",
                                "ember.speculation.interval=50ms", NULL};
    sess_open(&x, "accum_spec", "local-cluster[2,1,512]", conf);
    ember_accumulator *c = new_acc(x.s, "speculated count", "int64");
    arg a;
    uint8_t tmp[16];
    ember_error err = {0};
    ember_rdd *added = ember_map(
        ember_range(x.s, 0, N, 1, 4, NULL),
        accum_fn(&a, "testfn.accum_add", NULL, 0, ember_accumulator_id(c),
                 "one", (uint64_t)0),
        &err);
    ember_rdd *slow = ember_map(
        added, fn_int("testfn.slow_first_attempt", tmp, sizeof tmp, 3000),
        &err);
    uint64_t n = 0;
    if (ember_count(slow, &n, &err) != EMBER_OK)
        fail_msg("count: %s", err.msg);
    assert_int_equal(n, N);
    assert_int_equal(i64_of(c), N);
    store_settle(&x);
    assert_int_equal(db_int(&x, "SELECT count(*) FROM tasks WHERE "
                                "speculative = 1 AND partition = 0"),
                     1);
    sess_close(&x);
}

int main(void)
{
    const struct CMUnitTest local[] = {
        cmocka_unit_test(sums),
        cmocka_unit_test(named_in_state_store),
        cmocka_unit_test(exactly_once),
        cmocka_unit_test(transformations_count_per_computation),
        cmocka_unit_test(user_defined_kinds),
        cmocka_unit_test(errors),
        cmocka_unit_test(plan_file_accumulators),
    };
    const struct CMUnitTest cluster[] = {
        cmocka_unit_test_teardown(local_cluster, close_live),
        cmocka_unit_test_teardown(speculated_once, close_live),
    };
    int failed = cmocka_run_group_tests_name("local", local, group_open,
                                             group_close);
    failed += cmocka_run_group_tests_name("local_cluster", cluster, NULL,
                                          NULL);
    return failed;
}
