/*
 * shuffle_support.c — sessions, the state store and small helpers shared
 * by shuffle_ops_test and shuffle_fault_test (see shuffle_support.h).
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

#include "ember/record.h"
#include "shuffle_support.h"

static const char *const g_plugins[] = {TESTFN_PLUGIN, NULL};

/* Sessions opened and not yet closed, which live in static storage: a
 * test that fails half way leaves its session here for the teardown to
 * close. */
static sess *g_live[4];

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rmtree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void find_entry(const char *dir, const char *prefix, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    out[0] = '\0';
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            snprintf(out, cap, "%s", e->d_name);
    if (d)
        closedir(d);
}

void wait_gone(const char *dir, const char *prefix, char *out, size_t cap)
{
    for (int i = 0; i < 500; i++) {
        find_entry(dir, prefix, out, cap);
        if (!out[0])
            return;
        sleep_ms(10);
    }
}

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

void sess_open(sess *x, const char *app, const char *master,
               const char *const *extra)
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
    ember_session_opts o = {.master = master,
                            .app_name = app,
                            .conf = conf,
                            .plugins = g_plugins};
    ember_error err = {0};
    ember_status st = ember_session_open(&x->s, &o, &err);
    if (st != EMBER_OK)
        fail_msg("ember_session_open(%s): %s (%s)", master, err.msg,
                 ember_status_name(st));
    sess_track(x, 1);
    DIR *d = opendir(x->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "ember-driver-", 13) == 0)
            snprintf(x->db, sizeof x->db, "%s/%s/ember.db", x->dir,
                     e->d_name);
    if (d)
        closedir(d);
    assert_true(x->db[0] != '\0');
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

ember_records collect_recs(ember_rdd *r)
{
    ember_records rec = {0};
    ember_error err = {0};
    assert_non_null(r);
    ember_status st = ember_collect(r, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("collect: %s (%s)", err.msg, ember_status_name(st));
    return rec;
}

ember_fn fn0(const char *name)
{
    return (ember_fn){name, NULL, 0};
}

ember_fn fn_int(const char *name, uint8_t *tmp, size_t cap, int64_t v)
{
    ember_buf b = ember_buf_fixed(tmp, cap);
    assert_int_equal(ember_rec_put_int(&b, v), EMBER_OK);
    return (ember_fn){name, tmp, b.len};
}
