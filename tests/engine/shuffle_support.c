/*
 * shuffle_support.c — sessions in a temp directory and their state store,
 * executors killed, testfn's datasets and checks, shared by the engine
 * tests that read the state store (see shuffle_support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shuffle_support.h"

/* Sessions opened and not yet closed, which live in static storage: a
 * test that fails half way leaves its session here for the teardown to
 * close. */
static sess *g_live[4];

void sess_track(sess *x, int on)
{
    for (size_t i = 0; i < sizeof g_live / sizeof g_live[0]; i++) {
        if (on && !g_live[i]) {
            g_live[i] = x;
            return;
        }
        if (!on && g_live[i] == x)
            g_live[i] = NULL;
    }
}

int close_live(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof g_live / sizeof g_live[0]; i++) {
        if (!g_live[i])
            continue;
        ember_session_close(g_live[i]->s);
        g_live[i]->s = NULL;
        rmtree(g_live[i]->dir);
        g_live[i] = NULL;
    }
    return 0;
}

void sess_open_plugins(sess *x, const char *app, const char *master,
                       const char *const *extra, const char *const *plugins)
{
    memset(x, 0, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/ember-%s-XXXXXX", app);
    assert_non_null(mkdtemp(x->dir));
    char localdir[300];
    snprintf(localdir, sizeof localdir, "ember.local.dir=%s", x->dir);
    const char *conf[16] = {localdir};
    size_t n = 1;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        conf[n++] = extra[i];
    conf[n] = NULL;
    ember_session_opts o = {
        .master = master, .app_name = app, .conf = conf, .plugins = plugins};
    ember_error err = {0};
    ember_status st = ember_session_open(&x->s, &o, &err);
    if (st != EMBER_OK)
        fail_msg("ember_session_open(%s): %s (%s)", master, err.msg,
                 ember_status_name(st));
    sess_track(x, 1);
    char driver[256];
    find_entry(x->dir, "ember-driver-", driver, sizeof driver);
    assert_true(driver[0] != '\0');
    snprintf(x->db, sizeof x->db, "%s/%s/ember.db", x->dir, driver);
}

void sess_open(sess *x, const char *app, const char *master,
               const char *const *extra)
{
    const char *const plugins[] = {TESTFN_PLUGIN, NULL};
    sess_open_plugins(x, app, master, extra, plugins);
}

void sess_close(sess *x)
{
    sess_track(x, 0);
    ember_session_close(x->s);
    x->s = NULL;
    char left[300];
    wait_gone(x->dir, "ember-", left, sizeof left);
    if (left[0])
        fail_msg("%s/%s is left after the session closed", x->dir, left);
    rmtree(x->dir);
    x->dir[0] = '\0';
}

/* Opens x's state store read-only and prepares sql (the test fails on
 * an error); the caller finalizes the statement and closes *db. */
static sqlite3_stmt *db_prepare(const sess *x, const char *sql, sqlite3 **db)
{
    *db = NULL;
    if (sqlite3_open_v2(x->db, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("cannot open %s: %s", x->db, sqlite3_errmsg(*db));
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(*db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(*db));
    return st;
}

int64_t db_int(const sess *x, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3 *db;
    sqlite3_stmt *st = db_prepare(x, sql, &db);
    int64_t v = -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void db_text(const sess *x, char *out, size_t cap, const char *sql)
{
    sqlite3 *db;
    out[0] = '\0';
    sqlite3_stmt *st = db_prepare(x, sql, &db);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

void store_settle(const sess *x)
{
    int64_t want = (int64_t)ember_session_jobs(x->s);
    for (int i = 0; i < 1000; i++) {
        if (db_int(x, "SELECT count(*) FROM jobs WHERE end_ms IS NOT NULL") >=
                want &&
            db_int(x, "SELECT count(*) FROM jobs WHERE end_ms IS NULL") == 0)
            return;
        sleep_ms(10);
    }
    fail_msg("the state store never showed %" PRId64 " finished jobs", want);
}

void wait_rows(const sess *x, int64_t want, const char *what,
               const char *sql)
{
    int64_t got = -1;
    for (int i = 0; i < 6000; i++) {
        if ((got = db_int(x, "%s", sql)) == want)
            return;
        sleep_ms(10);
    }
    fail_msg("%s: %" PRId64 " rows, want %" PRId64 " (%s)", what, got, want,
             sql);
}

int64_t kill_block_holder(const sess *x, const char *id)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM blocks WHERE "
             "executor_id = '%s'", id);
    int64_t held = db_int(x, "%s", sql);
    if (held < 1)
        fail_msg("executor '%s' holds no block to lose", id);
    pid_t pid = executor_pid(id);
    if (pid <= 0)
        fail_msg("no process for executor '%s'", id);
    assert_int_equal(kill(pid, SIGKILL), 0);
    wait_rows(x, 0, "the killed executor's blocks", sql);
    return held;
}

/* ---- datasets and checks ----------------------------------------------- */

ember_rdd *counted_file_range(ember_session *s, const char *path, int64_t n,
                              uint32_t parts, const char *level)
{
    ember_error err = {0};
    ember_rdd *r = ember_range(s, 0, n, 1, parts, &err);
    if (!r)
        fail_msg("range: %s", err.msg);
    ember_fn f = {"testfn.counted_file", path, strlen(path)};
    ember_rdd *m = ember_map(r, f, &err);
    if (!m)
        fail_msg("map: %s", err.msg);
    if (level && ember_persist(m, level, &err) != EMBER_OK)
        fail_msg("persist %s: %s", level, err.msg);
    return m;
}

int64_t counted_file_total(const char *path)
{
    FILE *f = fopen(path, "r");
    long long n, sum = 0;
    if (!f)
        return 0;
    while (fscanf(f, "%lld", &n) == 1)
        sum += n;
    fclose(f);
    return sum;
}

void check_mod_sums(const ember_records *got, int64_t n, int64_t m)
{
    assert_int_equal(got->count, (uint64_t)m);
    char *seen = calloc((size_t)m, 1);
    assert_non_null(seen);
    ember_batch_cursor c = records_cursor(got);
    ember_value k, v;
    while (next_pair(&c, &k, &v)) {
        assert_int_equal(k.type, EMBER_TYPE_INT);
        assert_true(k.u.i64 >= 0 && k.u.i64 < m);
        assert_false(seen[k.u.i64]);
        seen[k.u.i64] = 1;
        int64_t want = 0, sum = 0;
        for (int64_t i = k.u.i64; i < n; i += m)
            want += i;
        if (v.type == EMBER_TYPE_TUPLE) {
            ember_rec_cursor tc = ember_rec_tuple_cursor(&v);
            ember_value e = {0};
            while (ember_rec_next(&tc, &e) == EMBER_OK) {
                assert_int_equal(e.u.i64 % m, k.u.i64);
                sum += e.u.i64;
            }
        } else {
            assert_int_equal(v.type, EMBER_TYPE_INT);
            sum = v.u.i64;
        }
        if (sum != want)
            fail_msg("key %" PRId64 ": sum %" PRId64 ", wanted %" PRId64,
                     k.u.i64, sum, want);
    }
    free(seen);
}
