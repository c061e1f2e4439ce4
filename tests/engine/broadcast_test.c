/*
 * broadcast_test.c — broadcast variables through the driver API (issue 6,
 * SEMANTICS S18):
 *
 *   - local[2] (one executor of two slots, in this process, whose host
 *     counters the test reads): a 3 MiB lookup table in chunks of 64 KiB
 *     (ember.broadcast.blockSize) used by testfn.bcast_add over
 *     range(0, 10000) in 8 partitions gives the exact sum; the executor
 *     fetches it once ("ember.broadcast.fetches" goes up by 1) however
 *     many tasks and jobs read it; after unpersist the next job fetches it
 *     again and is still right; after destroy a job that uses it fails
 *     with "Attempted to use broadcast 1 after it was destroyed", and so
 *     does ember_broadcast_value on the driver. The state store's
 *     broadcasts table follows (live, unpersisted, destroyed);
 *   - local-cluster[2,1,512] (executor processes, each fetching): the same
 *     job is right before and after unpersist;
 *   - errors: a broadcast nobody made fails the task with a message
 *     naming it; NULL arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_support.h"
#include "ember/ember.h"
#include "ember/kernel/host.h"
#include "ember/record.h"

#define N 10000
#define TABLE_INTS ((size_t)3 << 17) /* 3 MiB of int64s */

static uint8_t *g_table; /* T[i] = 3 i + 1, little-endian int64s */
static char g_dir[64];   /* ember.local.dir of the sessions */
static char g_local_dir[96];

static int setup(void **state)
{
    (void)state;
    g_table = malloc(TABLE_INTS * 8);
    if (!g_table)
        return -1;
    for (size_t i = 0; i < TABLE_INTS; i++) {
        uint64_t v = 3 * (uint64_t)i + 1;
        for (int k = 0; k < 8; k++)
            g_table[i * 8 + (size_t)k] = (uint8_t)(v >> (8 * k));
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/ember-bcast-test-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_local_dir, sizeof g_local_dir, "ember.local.dir=%s", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_table);
    rmtree(g_dir);
    return 0;
}

/* sum over v in [0, N) of v + T[v] = 4 * N(N-1)/2 + N */
static const int64_t want_sum = 4 * ((int64_t)N * (N - 1) / 2) + N;

static ember_session *open_session(const char *master)
{
    const char *conf[] = {"ember.broadcast.blockSize=64k", g_local_dir,
                          NULL};
    return session_open(master, "broadcast_test", conf, TESTFN_PLUGIN);
}

/* range(0, N) in 8 partitions through testfn.bcast_add of broadcast id. */
static ember_rdd *lookup_job(ember_session *s, uint64_t id, uint8_t *tmp,
                             size_t cap)
{
    ember_error err = {0};
    ember_rdd *r = ember_range(s, 0, N, 1, 8, &err);
    assert_non_null(r);
    r = ember_map(r, fn_int("testfn.bcast_add", tmp, cap, (int64_t)id),
                  &err);
    if (!r)
        fail_msg("map: %s", err.msg);
    return r;
}

/* The sum of the (int) records of r, which must have N of them. */
static int64_t sum_of(ember_rdd *r)
{
    ember_records rec = collect_recs(r);
    assert_int_equal(rec.count, N);
    ember_batch_cursor c = records_cursor(&rec);
    const uint8_t *p;
    size_t len;
    int64_t sum = 0;
    while (ember_batch_next(&c, &p, &len) == EMBER_OK) {
        ember_value v;
        memset(&v, 0, sizeof v);
        assert_int_equal(ember_rec_get(p, len, 0, &v), EMBER_OK);
        assert_int_equal(v.type, EMBER_TYPE_INT);
        sum += v.u.i64;
    }
    ember_records_free(&rec);
    return sum;
}

static int64_t fetches(void)
{
    int64_t v = 0;
    /* EMBER_ENOTFOUND until the first executor registers it: 0 */
    em_host_counter_value("ember.broadcast.fetches", &v);
    return v;
}

/* "status bytes chunks" of broadcast id in the state store of the one
 * session open under g_dir. */
static void broadcast_row(uint64_t id, char *out, size_t cap)
{
    char name[256], path[512];
    find_entry(g_dir, "ember-driver-", name, sizeof name);
    assert_true(name[0] != '\0');
    snprintf(path, sizeof path, "%s/%s/ember.db", g_dir, name);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT status || ' ' || bytes || "
                                        "' ' || chunks FROM broadcasts "
                                        "WHERE bcast_id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    else
        snprintf(out, cap, "(no row)");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* local[2]: the life of a broadcast, as the list at the top says. */
static void lookup_table_local(void **state)
{
    (void)state;
    ember_session *s = open_session("local[2]");
    ember_error err = {0};
    ember_broadcast *b = NULL;
    assert_int_equal(ember_broadcast_new(s, g_table, TABLE_INTS * 8, &b,
                                         &err),
                     EMBER_OK);
    assert_int_equal(ember_broadcast_id(b), 1);
    const uint8_t *d = NULL;
    size_t len = 0;
    assert_int_equal(ember_broadcast_value(b, &d, &len, &err), EMBER_OK);
    assert_int_equal(len, TABLE_INTS * 8);
    assert_memory_equal(d, g_table, len);
    char row[128];
    broadcast_row(1, row, sizeof row);
    assert_string_equal(row, "live 3145728 48");

    uint8_t tmp[32];
    ember_rdd *r = lookup_job(s, ember_broadcast_id(b), tmp, sizeof tmp);
    int64_t f0 = fetches();
    assert_int_equal(sum_of(r), want_sum);
    assert_int_equal(fetches() - f0, 1);
    /* a second job reads the executor's copy */
    assert_int_equal(sum_of(r), want_sum);
    assert_int_equal(fetches() - f0, 1);

    /* unpersist: the next job fetches it again */
    assert_int_equal(ember_broadcast_unpersist(b, &err), EMBER_OK);
    assert_int_equal(sum_of(r), want_sum);
    assert_int_equal(fetches() - f0, 2);
    broadcast_row(1, row, sizeof row);
    assert_string_equal(row, "unpersisted 3145728 48");
    assert_int_equal(ember_broadcast_value(b, &d, &len, &err), EMBER_OK);
    assert_memory_equal(d, g_table, len);

    /* destroy: every later use is an error */
    assert_int_equal(ember_broadcast_destroy(b, &err), EMBER_OK);
    const char *why = collect_error(r, NULL);
    assert_contains(why, "Attempted to use broadcast 1 after it was "
                         "destroyed");
    assert_int_equal(ember_broadcast_value(b, &d, &len, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "Attempted to use broadcast 1 after it was "
                                 "destroyed");
    assert_null(d);
    assert_int_equal(ember_broadcast_unpersist(b, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "Attempted to use broadcast 1 after it was "
                                 "destroyed");
    assert_int_equal(ember_broadcast_destroy(b, &err), EMBER_OK);
    broadcast_row(1, row, sizeof row);
    assert_string_equal(row, "destroyed 3145728 48");

    /* another broadcast gets the next id and works */
    ember_broadcast *b2 = NULL;
    assert_int_equal(ember_broadcast_new(s, g_table, TABLE_INTS * 8, &b2,
                                         &err),
                     EMBER_OK);
    assert_int_equal(ember_broadcast_id(b2), 2);
    assert_int_equal(sum_of(lookup_job(s, 2, tmp, sizeof tmp)), want_sum);
    ember_session_close(s);
}

/* local-cluster: each executor process fetches; right before and after
 * unpersist. */
static void lookup_table_local_cluster(void **state)
{
    (void)state;
    ember_session *s = open_session("local-cluster[2,1,512]");
    ember_error err = {0};
    ember_broadcast *b = NULL;
    assert_int_equal(ember_broadcast_new(s, g_table, TABLE_INTS * 8, &b,
                                         &err),
                     EMBER_OK);
    uint8_t tmp[32];
    ember_rdd *r = lookup_job(s, ember_broadcast_id(b), tmp, sizeof tmp);
    assert_int_equal(sum_of(r), want_sum);
    assert_int_equal(ember_broadcast_unpersist(b, &err), EMBER_OK);
    assert_int_equal(sum_of(r), want_sum);
    assert_int_equal(ember_broadcast_destroy(b, &err), EMBER_OK);
    assert_contains(collect_error(r, NULL),
                    "Attempted to use broadcast 1 after it was destroyed");
    ember_session_close(s);
}

/* A broadcast nobody made; NULL arguments; an empty value. */
static void errors(void **state)
{
    (void)state;
    ember_session *s = open_session("local[2]");
    ember_error err = {0};
    uint8_t tmp[32];
    ember_status code = EMBER_OK;
    assert_contains(collect_error(lookup_job(s, 99, tmp, sizeof tmp),
                                  &code),
                    "no broadcast 99 in application");
    ember_broadcast *b = NULL;
    assert_int_equal(ember_broadcast_new(NULL, "x", 1, &b, &err),
                     EMBER_EINVAL);
    assert_null(b);
    assert_int_equal(ember_broadcast_new(s, NULL, 1, &b, &err),
                     EMBER_EINVAL);
    assert_int_equal(ember_broadcast_id(NULL), 0);
    assert_int_equal(ember_broadcast_destroy(NULL, &err), EMBER_EINVAL);
    /* an empty value is a value; a table of no int64s fails the task */
    assert_int_equal(ember_broadcast_new(s, NULL, 0, &b, &err), EMBER_OK);
    const uint8_t *d = NULL;
    size_t len = 1;
    assert_int_equal(ember_broadcast_value(b, &d, &len, &err), EMBER_OK);
    assert_int_equal(len, 0);
    assert_contains(collect_error(lookup_job(s, ember_broadcast_id(b), tmp,
                                             sizeof tmp),
                                  NULL),
                    "testfn.bcast_add: the table is empty");
    ember_session_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lookup_table_local),
        cmocka_unit_test(lookup_table_local_cluster),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
