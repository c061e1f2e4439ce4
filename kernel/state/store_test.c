/*
 * Unit tests of the SQLite state store: schema, migrations, refusal of
 * foreign files, every write read back, one transaction per flush, and
 * readers in this and in another process. Databases live in a mkdtemp
 * directory removed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "state/store.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-store-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d)
        return -1;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(tmpdir);
}

static void db_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static int64_t q_int(em_store *s, const char *sql)
{
    int64_t v = -1;
    ember_error err;
    ember_status rc = em_store_query_int(s, sql, &v, &err);
    if (rc != EMBER_OK)
        fail_msg("%s: %s", sql, err.msg);
    return v;
}

static const char *q_text(em_store *s, const char *sql)
{
    static char buf[512];
    ember_error err;
    ember_status rc = em_store_query_text(s, sql, buf, sizeof buf, &err);
    if (rc != EMBER_OK)
        fail_msg("%s: %s", sql, err.msg);
    return buf;
}

static em_store *open_ok(const char *path)
{
    em_store *s = NULL;
    ember_error err;
    ember_status rc = em_store_open(&s, path, &err);
    if (rc != EMBER_OK)
        fail_msg("em_store_open %s: %s", path, err.msg);
    return s;
}

/* Runs one script on a file with plain SQLite, outside the store. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The first column of the first row of sql, read with plain SQLite. */
static const char *raw_text(const char *path, const char *sql)
{
    static char buf[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return buf;
}

static void test_open_creates_wal_at_latest(void **state)
{
    (void)state;
    char path[512];
    db_path(path, sizeof path, "new.db");
    em_store *s = open_ok(path);
    assert_string_equal(raw_text(path, "PRAGMA journal_mode"), "wal");
    assert_int_equal(q_int(s, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(em_store_schema_version(s), em_store_latest_schema_version());
    assert_int_equal(em_store_latest_schema_version(), 3);
    assert_int_equal(q_int(s, "PRAGMA user_version"), 3);
    assert_string_equal(q_text(s, "SELECT value FROM meta WHERE key = 'format'"),
                        "ember-state");
    assert_false(em_store_pending(s));
    assert_int_equal(em_store_flush(s, NULL), EMBER_OK);
    em_store_close(s);
    em_store_close(NULL);

    /* A directory that does not exist is an I/O error naming the path. */
    ember_error err;
    em_store *bad = NULL;
    assert_int_equal(em_store_open(&bad, "/nonexistent-ember-dir/x.db", &err),
                     EMBER_EIO);
    assert_null(bad);
    assert_non_null(strstr(err.msg, "/nonexistent-ember-dir/x.db"));

    /* Reopening an up-to-date database changes nothing. */
    s = open_ok(path);
    assert_int_equal(em_store_schema_version(s), 3);
    assert_int_equal(q_int(s, "SELECT count(*) FROM meta"), 1);
    em_store_close(s);
}

static void test_round_trips(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    db_path(path, sizeof path, "roundtrip.db");
    em_store *s = open_ok(path);

    assert_int_equal(em_store_app_begin(s, 7, "wordcount", 1000, &err), EMBER_OK);
    assert_true(em_store_pending(s));
    assert_string_equal(q_text(s, "SELECT name || '|' || status || '|' || "
                                  "start_ms || '|' || ifnull(end_ms, '-') "
                                  "FROM applications WHERE app_id = 7"),
                        "wordcount|RUNNING|1000|-");
    assert_int_equal(em_store_app_begin(s, 7, "again", 1001, &err), EMBER_EEXIST);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(em_store_app_end(s, 7, "FINISHED", 9000, &err), EMBER_OK);
    assert_string_equal(q_text(s, "SELECT status || '|' || end_ms FROM "
                                  "applications WHERE app_id = 7"),
                        "FINISHED|9000");
    assert_int_equal(em_store_app_end(s, 8, "FINISHED", 9000, &err),
                     EMBER_ENOTFOUND);

    assert_int_equal(em_store_job_begin(s, 1, 7, "count words", "prod", "g1",
                                        1100, &err),
                     EMBER_OK);
    assert_int_equal(em_store_job_begin(s, 2, 7, NULL, NULL, NULL, 1200, &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT app_id || '|' || description || '|' "
                                  "|| pool || '|' || job_group || '|' || "
                                  "status || '|' || submit_ms FROM jobs "
                                  "WHERE job_id = 1"),
                        "7|count words|prod|g1|RUNNING|1100");
    assert_int_equal(q_int(s, "SELECT count(*) FROM jobs WHERE job_id = 2 AND "
                              "description IS NULL AND pool IS NULL AND "
                              "job_group IS NULL"),
                     1);
    assert_int_equal(em_store_job_end(s, 1, "FAILED", "stage 3 failed", 1500,
                                      &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT status || '|' || error || '|' || "
                                  "end_ms FROM jobs WHERE job_id = 1"),
                        "FAILED|stage 3 failed|1500");
    assert_int_equal(em_store_job_end(s, 2, "DONE", NULL, 1500, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "SUCCEEDED|FAILED|CANCELLED"));
    assert_int_equal(em_store_job_end(s, 99, "SUCCEEDED", NULL, 1500, &err),
                     EMBER_ENOTFOUND);

    assert_int_equal(em_store_stage_begin(s, 3, 0, 1, "shuffle_map", "map at x.c:1",
                                          8, 1110, &err),
                     EMBER_OK);
    assert_int_equal(em_store_stage_begin(s, 3, 1, 1, "shuffle_map", "map at x.c:1",
                                          8, 1300, &err),
                     EMBER_OK);
    assert_int_equal(em_store_stage_begin(s, 3, 1, 1, "result", "dup", 8, 1300,
                                          &err),
                     EMBER_EEXIST);
    assert_int_equal(em_store_stage_begin(s, 4, 0, 1, "reduce", "bad", 8, 1300,
                                          &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_stage_end(s, 3, 0, "FAILED", "fetch failed", 1250,
                                        &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT job_id || '|' || kind || '|' || name "
                                  "|| '|' || num_tasks || '|' || status || '|' "
                                  "|| failure || '|' || submit_ms || '|' || "
                                  "end_ms FROM stage_attempts WHERE "
                                  "stage_id = 3 AND attempt = 0"),
                        "1|shuffle_map|map at x.c:1|8|FAILED|fetch failed|"
                        "1110|1250");
    assert_string_equal(q_text(s, "SELECT status FROM stage_attempts WHERE "
                                  "stage_id = 3 AND attempt = 1"),
                        "RUNNING");
    assert_int_equal(em_store_stage_end(s, 3, 5, "SUCCEEDED", NULL, 1, &err),
                     EMBER_ENOTFOUND);

    assert_int_equal(em_store_task_begin(s, 10, 3, 1, 4, 0, "exec-1", 1,
                                         "NODE_LOCAL", 1310, &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT stage_id || '|' || stage_attempt || "
                                  "'|' || partition || '|' || attempt || '|' "
                                  "|| executor_id || '|' || speculative || "
                                  "'|' || locality || '|' || status || '|' || "
                                  "launch_ms FROM tasks WHERE task_id = 10"),
                        "3|1|4|0|exec-1|1|NODE_LOCAL|RUNNING|1310");
    assert_int_equal(em_store_task_begin(s, 10, 3, 1, 4, 1, "exec-1", 0, "ANY",
                                         1310, &err),
                     EMBER_EEXIST);
    assert_int_equal(em_store_task_begin(s, 11, 3, 1, 4, 1, "exec-1", 0,
                                         "RACK", 1310, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_task_begin(s, 11, 3, 1, 4, 1, NULL, 0, "ANY",
                                         1310, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "executor_id"));
    assert_int_equal(em_store_task_begin(s, UINT64_MAX, 3, 1, 4, 1, "e", 0,
                                         "ANY", 1310, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_task_end(s, 10, "FETCH_FAILED", "lost block",
                                       1400, &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT status || '|' || error || '|' || "
                                  "end_ms FROM tasks WHERE task_id = 10"),
                        "FETCH_FAILED|lost block|1400");
    assert_int_equal(em_store_task_end(s, 12, "SUCCESS", NULL, 1400, &err),
                     EMBER_ENOTFOUND);

    assert_int_equal(em_store_executor_add(s, "exec-1", "host-a", 4, 900, &err),
                     EMBER_OK);
    assert_int_equal(em_store_executor_remove(s, "exec-1", "heartbeat timeout",
                                              2000, &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT status || '|' || reason || '|' || "
                                  "removed_ms FROM executors WHERE "
                                  "executor_id = 'exec-1'"),
                        "REMOVED|heartbeat timeout|2000");
    /* Re-registering brings it back ACTIVE with the new values. */
    assert_int_equal(em_store_executor_add(s, "exec-1", "host-b", 8, 3000, &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT host || '|' || slots || '|' || status "
                                  "|| '|' || added_ms || '|' || "
                                  "ifnull(reason, '-') || '|' || "
                                  "ifnull(removed_ms, '-') FROM executors "
                                  "WHERE executor_id = 'exec-1'"),
                        "host-b|8|ACTIVE|3000|-|-");
    assert_int_equal(em_store_executor_remove(s, "exec-9", "gone", 1, &err),
                     EMBER_ENOTFOUND);

    assert_int_equal(em_store_map_output_set(s, 5, 0, "exec-1", 100, &err),
                     EMBER_OK);
    assert_int_equal(em_store_map_output_set(s, 5, 1, "exec-2", 200, &err),
                     EMBER_OK);
    assert_int_equal(em_store_map_output_set(s, 5, 2, "exec-1", 300, &err),
                     EMBER_OK);
    assert_int_equal(em_store_map_output_set(s, 6, 0, "exec-2", 400, &err),
                     EMBER_OK);
    /* Upsert: a recomputed map output moves. */
    assert_int_equal(em_store_map_output_set(s, 5, 0, "exec-3", 150, &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT executor_id || '|' || bytes FROM "
                                  "map_outputs WHERE shuffle_id = 5 AND "
                                  "map_index = 0"),
                        "exec-3|150");
    assert_int_equal(em_store_map_output_remove(s, 5, 1, &err), EMBER_OK);
    assert_int_equal(em_store_map_output_remove(s, 5, 1, &err), EMBER_OK);
    assert_int_equal(q_int(s, "SELECT count(*) FROM map_outputs"), 3);
    assert_int_equal(em_store_map_output_remove_executor(s, "exec-1", &err),
                     EMBER_OK);
    assert_int_equal(q_int(s, "SELECT count(*) FROM map_outputs WHERE "
                              "executor_id = 'exec-1'"),
                     0);
    assert_int_equal(q_int(s, "SELECT count(*) FROM map_outputs"), 2);
    assert_int_equal(em_store_map_output_remove_shuffle(s, 5, &err), EMBER_OK);
    assert_string_equal(q_text(s, "SELECT group_concat(shuffle_id || ':' || "
                                  "map_index) FROM map_outputs"),
                        "6:0");

    assert_int_equal(em_store_shuffle_add(s, 6, 7, 3, 8, 4, &err), EMBER_OK);
    assert_string_equal(q_text(s, "SELECT app_id || '|' || stage_id || '|' || "
                                  "num_maps || '|' || num_reduces || '|' || "
                                  "status FROM shuffles WHERE shuffle_id = 6"),
                        "7|3|8|4|ACTIVE");
    assert_int_equal(em_store_shuffle_add(s, 6, 7, 3, 8, 4, &err), EMBER_EEXIST);
    assert_int_equal(em_store_shuffle_remove(s, 6, &err), EMBER_OK);
    assert_string_equal(q_text(s, "SELECT status FROM shuffles WHERE "
                                  "shuffle_id = 6"),
                        "REMOVED");
    assert_int_equal(em_store_shuffle_remove(s, 60, &err), EMBER_ENOTFOUND);

    assert_int_equal(em_store_pool_set(s, "prod", NULL, "FAIR", 2.5, 3, 0, &err),
                     EMBER_OK);
    assert_int_equal(em_store_pool_set(s, "prod", "root", "FIFO", 1.0, 1, 16,
                                       &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT parent || '|' || mode || '|' || "
                                  "weight || '|' || min_share || '|' || "
                                  "max_share FROM pools WHERE name = 'prod'"),
                        "root|FIFO|1.0|1|16");
    assert_int_equal(em_store_pool_set(s, "bad", NULL, "LIFO", 1, 0, 0, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_pool_set(s, "bad", NULL, "FAIR", -1, 0, 0, &err),
                     EMBER_EINVAL);
    assert_int_equal(q_int(s, "SELECT count(*) FROM pools"), 1);

    assert_int_equal(em_store_plugin_add(s, "csv", "0.1.0", "/p/libcsv.so", 50,
                                         &err),
                     EMBER_OK);
    assert_int_equal(em_store_plugin_add(s, "csv", "0.2.0", "/q/libcsv.so", 60,
                                         &err),
                     EMBER_OK);
    assert_string_equal(q_text(s, "SELECT version || '|' || path || '|' || "
                                  "loaded_ms FROM plugins WHERE name = 'csv'"),
                        "0.2.0|/q/libcsv.so|60");

    assert_int_equal(em_store_event(s, 70, "job_start", "{\"job\":1}", &err),
                     EMBER_OK);
    assert_int_equal(em_store_event(s, 71, "job_end", NULL, &err), EMBER_OK);
    assert_string_equal(q_text(s, "SELECT group_concat(seq || ':' || time_ms || "
                                  "':' || kind || ':' || ifnull(detail, '-'), "
                                  "' ') FROM (SELECT * FROM events ORDER BY "
                                  "seq)"),
                        "1:70:job_start:{\"job\":1} 2:71:job_end:-");

    /* Everything survives a flush and a reopen. */
    assert_int_equal(em_store_flush(s, &err), EMBER_OK);
    assert_false(em_store_pending(s));
    em_store_close(s);
    s = open_ok(path);
    assert_int_equal(q_int(s, "SELECT count(*) FROM applications"), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM jobs"), 2);
    assert_int_equal(q_int(s, "SELECT count(*) FROM stage_attempts"), 2);
    assert_int_equal(q_int(s, "SELECT count(*) FROM tasks"), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM executors"), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM events"), 2);
    em_store_close(s);
}

static void test_queries(void **state)
{
    (void)state;
    char path[512], small[4];
    ember_error err;
    int64_t v;
    db_path(path, sizeof path, "queries.db");
    em_store *s = open_ok(path);
    assert_int_equal(em_store_query_int(s, "SELEC 1", &v, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "syntax error"));
    assert_int_equal(em_store_query_int(s, "DELETE FROM jobs", &v, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_query_int(s, "SELECT 1; SELECT 2", &v, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_query_int(s, "SELECT job_id FROM jobs", &v, &err),
                     EMBER_ENOTFOUND);
    assert_int_equal(em_store_query_int(s, "SELECT 42;", &v, &err), EMBER_OK);
    assert_int_equal(v, 42);
    assert_int_equal(em_store_query_text(s, "SELECT 'abcd'", small, sizeof small,
                                         &err),
                     EMBER_ENOSPC);
    assert_string_equal(small, "");
    assert_int_equal(em_store_query_text(s, "SELECT 'abc'", small, sizeof small,
                                         &err),
                     EMBER_OK);
    assert_string_equal(small, "abc");
    assert_int_equal(em_store_query_text(s, "SELECT NULL", small, sizeof small,
                                         &err),
                     EMBER_OK);
    assert_string_equal(small, "");
    /* Transaction control, ATTACH and setting pragmas look read-only to
     * SQLite; they must not get through, or a query could discard or
     * wedge the kernel's open transaction. */
    assert_int_equal(em_store_app_begin(s, 7, "pending", 1, &err), EMBER_OK);
    assert_true(em_store_pending(s));
    static const char *const control[] = {
        "ROLLBACK", "BEGIN", "COMMIT", "SAVEPOINT x", "RELEASE x",
        "ATTACH 'other.db' AS other", "DETACH other",
        "PRAGMA journal_mode=DELETE", "PRAGMA wal_checkpoint"};
    for (size_t k = 0; k < sizeof control / sizeof control[0]; k++)
        assert_int_not_equal(em_store_query_int(s, control[k], &v, &err),
                             EMBER_OK);
    assert_int_equal(em_store_query_int(s, "PRAGMA user_version", &v, &err),
                     EMBER_OK);
    assert_int_equal(em_store_flush(s, &err), EMBER_OK);
    assert_int_equal(em_store_query_int(s, "SELECT COUNT(*) FROM "
                                           "applications WHERE app_id=7",
                                        &v, &err),
                     EMBER_OK);
    assert_int_equal(v, 1);
    em_store_close(s);
}

static void test_flush_makes_writes_visible(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    em_store *r = NULL;
    db_path(path, sizeof path, "flush.db");
    em_store *w = open_ok(path);
    assert_int_equal(em_store_app_begin(w, 1, "a", 1, &err), EMBER_OK);
    assert_int_equal(em_store_job_begin(w, 1, 1, NULL, NULL, NULL, 2, &err),
                     EMBER_OK);
    assert_true(em_store_pending(w));

    /* A reader opened while the writer's transaction is open works, and
     * sees the last flushed state: nothing yet. */
    assert_int_equal(em_store_open_readonly(&r, path, &err), EMBER_OK);
    assert_int_equal(q_int(r, "SELECT count(*) FROM applications"), 0);
    assert_int_equal(q_int(r, "SELECT count(*) FROM jobs"), 0);
    assert_int_equal(q_int(w, "SELECT count(*) FROM jobs"), 1);

    assert_int_equal(em_store_flush(w, &err), EMBER_OK);
    assert_false(em_store_pending(w));
    assert_int_equal(q_int(r, "SELECT count(*) FROM applications"), 1);
    assert_int_equal(q_int(r, "SELECT count(*) FROM jobs"), 1);

    /* The next turn: again all or nothing. */
    assert_int_equal(em_store_job_end(w, 1, "SUCCEEDED", NULL, 3, &err), EMBER_OK);
    assert_int_equal(em_store_app_end(w, 1, "FINISHED", 4, &err), EMBER_OK);
    assert_string_equal(q_text(r, "SELECT status FROM jobs"), "RUNNING");
    assert_string_equal(q_text(r, "SELECT status FROM applications"), "RUNNING");
    assert_int_equal(em_store_flush(w, &err), EMBER_OK);
    assert_string_equal(q_text(r, "SELECT status FROM jobs"), "SUCCEEDED");
    assert_string_equal(q_text(r, "SELECT status FROM applications"), "FINISHED");
    /* A flush with nothing pending is a no-op. */
    assert_int_equal(em_store_flush(w, &err), EMBER_OK);
    assert_int_equal(em_store_flush(r, &err), EMBER_OK);

    /* The read-only store answers id and ad-hoc queries. */
    em_store_ids ids;
    assert_int_equal(em_store_next_ids(r, &ids, &err), EMBER_OK);
    assert_true(ids.app == 2 && ids.job == 2);
    em_store_close(r);
    em_store_close(w);
}

static void test_readonly_refuses_writes(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    em_store *r = NULL;
    db_path(path, sizeof path, "ro.db");
    em_store_close(open_ok(path));
    assert_int_equal(em_store_open_readonly(&r, path, &err), EMBER_OK);
    assert_int_equal(em_store_schema_version(r), 3);
    assert_int_equal(em_store_app_begin(r, 1, "a", 1, &err), EMBER_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "read-only"));
    assert_int_equal(em_store_app_end(r, 1, "X", 1, NULL), EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_job_begin(r, 1, 1, NULL, NULL, NULL, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_job_end(r, 1, "FAILED", NULL, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_stage_begin(r, 1, 0, 1, "result", "r", 1, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_stage_end(r, 1, 0, "FAILED", NULL, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_task_begin(r, 1, 1, 0, 0, 0, "e", 0, "ANY", 1,
                                         NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_task_end(r, 1, "LOST", NULL, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_executor_add(r, "e", "h", 1, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_executor_remove(r, "e", "x", 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_map_output_set(r, 1, 0, "e", 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_map_output_remove(r, 1, 0, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_map_output_remove_executor(r, "e", NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_map_output_remove_shuffle(r, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_shuffle_add(r, 1, 1, 1, 1, 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_shuffle_remove(r, 1, NULL), EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_pool_set(r, "p", NULL, "FAIR", 1, 0, 0, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_plugin_add(r, "p", "1", "/p", 1, NULL),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_event(r, 1, "k", NULL, NULL), EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_mark_interrupted(r, 1, NULL, NULL),
                     EMBER_EUNSUPPORTED);
    assert_false(em_store_pending(r));
    em_store_close(r);

    /* Read-only opens never create: a missing file is refused, and so is
     * an empty one. */
    db_path(path, sizeof path, "missing.db");
    assert_int_equal(em_store_open_readonly(&r, path, &err), EMBER_EIO);
    assert_null(r);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(access(path, F_OK), -1);
    db_path(path, sizeof path, "empty.db");
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(em_store_open_readonly(&r, path, &err), EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, "empty"));
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    char path[512], want[640];
    ember_error err;
    em_store *s = NULL;
    db_path(path, sizeof path, "newer.db");
    em_store_close(open_ok(path));
    raw_exec(path, "PRAGMA user_version = 4");
    snprintf(want, sizeof want,
             "state database %s has schema version 4, newer than this ember "
             "(3): upgrade ember",
             path);
    assert_int_equal(em_store_open(&s, path, &err), EMBER_EVERSION);
    assert_null(s);
    assert_string_equal(err.msg, want);
    assert_int_equal(em_store_open_readonly(&s, path, &err), EMBER_EVERSION);
    assert_string_equal(err.msg, want);
}

static void test_foreign_sqlite_refused(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    em_store *s = NULL;
    db_path(path, sizeof path, "foreign.db");
    raw_exec(path, "CREATE TABLE photos(id INTEGER PRIMARY KEY, name TEXT);"
                   "INSERT INTO photos(name) VALUES('cat.jpg');");
    assert_int_equal(em_store_open(&s, path, &err), EMBER_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "not an ember state database"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(em_store_open_readonly(&s, path, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "not an ember state database"));

    /* A table called meta is not enough. */
    db_path(path, sizeof path, "foreign-meta.db");
    raw_exec(path, "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
                   "INSERT INTO meta VALUES('format', 'something-else');"
                   "PRAGMA user_version = 1;");
    assert_int_equal(em_store_open(&s, path, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "not an ember state database"));

    /* Neither file was touched: no ember tables, no WAL. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT count(*) FROM "
                                        "sqlite_master), (SELECT value FROM "
                                        "meta), (SELECT user_version FROM "
                                        "pragma_user_version)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2); /* meta + its index */
    assert_string_equal((const char *)sqlite3_column_text(st, 1),
                        "something-else");
    assert_int_equal(sqlite3_column_int(st, 2), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    db_path(path, sizeof path, "foreign.db-wal");
    assert_int_equal(access(path, F_OK), -1);
}

static void test_garbage_refused_untouched(void **state)
{
    (void)state;
    char path[512], side[600];
    unsigned char bytes[4096], after[sizeof bytes];
    ember_error err;
    em_store *s = NULL;
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof bytes; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes[i] = (unsigned char)x;
    }
    bytes[0] = 'G';
    db_path(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, sizeof bytes, f), sizeof bytes);
    fclose(f);

    assert_int_equal(em_store_open(&s, path, &err), EMBER_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "not an ember state database or is corrupt"));
    assert_int_equal(em_store_open_readonly(&s, path, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "corrupt"));

    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(after, 1, sizeof after + 0, f), sizeof after);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
    assert_memory_equal(bytes, after, sizeof bytes);
    snprintf(side, sizeof side, "%s-wal", path);
    assert_int_equal(access(side, F_OK), -1);
    snprintf(side, sizeof side, "%s-journal", path);
    assert_int_equal(access(side, F_OK), -1);
}

static void test_migration_1_to_latest(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    em_store *s = NULL;
    em_store_ids ids;
    db_path(path, sizeof path, "v1.db");
    assert_int_equal(em_store_open_at_version(&s, path, 0, &err), EMBER_EINVAL);
    assert_int_equal(em_store_open_at_version(&s, path, 4, &err), EMBER_EINVAL);
    assert_int_equal(em_store_open_at_version(&s, path, 1, &err), EMBER_OK);
    assert_int_equal(em_store_schema_version(s), 1);
    assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_master WHERE "
                              "name = 'shuffles'"),
                     0);
    assert_int_equal(em_store_app_begin(s, 1, "old", 10, &err), EMBER_OK);
    assert_int_equal(em_store_job_begin(s, 4, 1, "old job", NULL, NULL, 11, &err),
                     EMBER_OK);
    assert_int_equal(em_store_map_output_set(s, 9, 0, "e1", 5, &err), EMBER_OK);
    /* Writes that need version 2 say so. */
    assert_int_equal(em_store_shuffle_add(s, 9, 1, 1, 1, 1, &err),
                     EMBER_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "schema version 1"));
    assert_int_equal(em_store_next_ids(s, &ids, &err), EMBER_EUNSUPPORTED);
    assert_int_equal(em_store_flush(s, &err), EMBER_OK);
    em_store_close(s);

    /* Readers do not migrate: they ask for a read-write open first. */
    assert_int_equal(em_store_open_readonly(&s, path, &err), EMBER_EVERSION);
    assert_non_null(strstr(err.msg, "older than this ember"));

    s = open_ok(path);
    assert_int_equal(em_store_schema_version(s), 3);
    assert_int_equal(q_int(s, "PRAGMA user_version"), 3);
    assert_int_equal(q_int(s, "SELECT count(*) FROM sqlite_master WHERE "
                              "type = 'table' AND name = 'shuffles'"),
                     1);
    assert_string_equal(q_text(s, "SELECT name FROM applications WHERE "
                                  "app_id = 1"),
                        "old");
    assert_string_equal(q_text(s, "SELECT description FROM jobs WHERE "
                                  "job_id = 4"),
                        "old job");
    assert_int_equal(q_int(s, "SELECT bytes FROM map_outputs"), 5);
    assert_int_equal(em_store_shuffle_add(s, 9, 1, 1, 1, 1, &err), EMBER_OK);
    assert_int_equal(em_store_next_ids(s, &ids, &err), EMBER_OK);
    assert_true(ids.app == 2 && ids.job == 5 && ids.shuffle == 10);
    em_store_close(s);
}

static void test_next_ids(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    em_store_ids ids;
    db_path(path, sizeof path, "ids.db");
    em_store *s = open_ok(path);
    assert_int_equal(em_store_next_ids(s, &ids, &err), EMBER_OK);
    assert_true(ids.app == 1 && ids.job == 1 && ids.stage == 1 &&
                ids.task == 1 && ids.shuffle == 1);
    assert_int_equal(em_store_app_begin(s, 3, "a", 1, &err), EMBER_OK);
    assert_int_equal(em_store_job_begin(s, 10, 3, NULL, NULL, NULL, 1, &err),
                     EMBER_OK);
    assert_int_equal(em_store_job_begin(s, 4, 3, NULL, NULL, NULL, 1, &err),
                     EMBER_OK);
    assert_int_equal(em_store_stage_begin(s, 20, 0, 10, "result", "r", 1, 1,
                                          &err),
                     EMBER_OK);
    assert_int_equal(em_store_stage_begin(s, 20, 1, 10, "result", "r", 1, 1,
                                          &err),
                     EMBER_OK);
    assert_int_equal(em_store_task_begin(s, 100, 20, 1, 0, 0, "e", 0, "ANY", 1,
                                         &err),
                     EMBER_OK);
    assert_int_equal(em_store_map_output_set(s, 7, 0, "e", 1, &err), EMBER_OK);
    assert_int_equal(em_store_shuffle_add(s, 5, 3, 20, 1, 1, &err), EMBER_OK);
    /* Pending writes count. */
    assert_int_equal(em_store_next_ids(s, &ids, &err), EMBER_OK);
    assert_true(ids.app == 4 && ids.job == 11 && ids.stage == 21 &&
                ids.task == 101 && ids.shuffle == 8);
    assert_int_equal(em_store_shuffle_add(s, 30, 3, 20, 1, 1, &err), EMBER_OK);
    em_store_close(s); /* flushes */

    s = open_ok(path);
    assert_int_equal(em_store_next_ids(s, &ids, &err), EMBER_OK);
    assert_true(ids.app == 4 && ids.job == 11 && ids.stage == 21 &&
                ids.task == 101 && ids.shuffle == 31);
    em_store_close(s);
}

static void test_mark_interrupted(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    int64_t count = -1;
    db_path(path, sizeof path, "interrupted.db");
    em_store *s = open_ok(path);
    assert_int_equal(em_store_app_begin(s, 1, "done", 1, &err), EMBER_OK);
    assert_int_equal(em_store_app_end(s, 1, "FINISHED", 5, &err), EMBER_OK);
    assert_int_equal(em_store_app_begin(s, 2, "crashed", 6, &err), EMBER_OK);
    assert_int_equal(em_store_job_begin(s, 1, 1, NULL, NULL, NULL, 2, &err),
                     EMBER_OK);
    assert_int_equal(em_store_job_end(s, 1, "SUCCEEDED", NULL, 4, &err),
                     EMBER_OK);
    for (uint64_t j = 2; j <= 3; j++)
        assert_int_equal(em_store_job_begin(s, j, 2, NULL, NULL, NULL, 7, &err),
                         EMBER_OK);
    assert_int_equal(em_store_stage_begin(s, 1, 0, 2, "shuffle_map", "m", 2, 7,
                                          &err),
                     EMBER_OK);
    assert_int_equal(em_store_stage_end(s, 1, 0, "FAILED", "x", 8, &err),
                     EMBER_OK);
    assert_int_equal(em_store_stage_begin(s, 1, 1, 2, "shuffle_map", "m", 2, 9,
                                          &err),
                     EMBER_OK);
    assert_int_equal(em_store_task_begin(s, 1, 1, 1, 0, 0, "e", 0, "ANY", 9,
                                         &err),
                     EMBER_OK);
    assert_int_equal(em_store_task_begin(s, 2, 1, 1, 1, 0, "e", 0, "ANY", 9,
                                         &err),
                     EMBER_OK);
    assert_int_equal(em_store_task_end(s, 2, "SUCCESS", NULL, 10, &err),
                     EMBER_OK);
    em_store_close(s);

    /* A new kernel starts. */
    s = open_ok(path);
    assert_int_equal(em_store_mark_interrupted(s, 1000, &count, &err), EMBER_OK);
    assert_int_equal(count, 2);
    assert_int_equal(em_store_flush(s, &err), EMBER_OK);
    assert_string_equal(q_text(s, "SELECT group_concat(job_id || ':' || status "
                                  "|| ':' || end_ms, ' ') FROM (SELECT * FROM "
                                  "jobs ORDER BY job_id)"),
                        "1:SUCCEEDED:4 2:INTERRUPTED:1000 3:INTERRUPTED:1000");
    assert_string_equal(q_text(s, "SELECT group_concat(app_id || ':' || status "
                                  "|| ':' || end_ms, ' ') FROM (SELECT * FROM "
                                  "applications ORDER BY app_id)"),
                        "1:FINISHED:5 2:INTERRUPTED:1000");
    assert_string_equal(q_text(s, "SELECT group_concat(attempt || ':' || status "
                                  "|| ':' || end_ms, ' ') FROM (SELECT * FROM "
                                  "stage_attempts ORDER BY attempt)"),
                        "0:FAILED:8 1:INTERRUPTED:1000");
    assert_string_equal(q_text(s, "SELECT group_concat(task_id || ':' || status "
                                  "|| ':' || end_ms, ' ') FROM (SELECT * FROM "
                                  "tasks ORDER BY task_id)"),
                        "1:INTERRUPTED:1000 2:SUCCESS:10");
    /* Nothing is left running: a second start marks nothing. */
    assert_int_equal(em_store_mark_interrupted(s, 2000, &count, &err), EMBER_OK);
    assert_int_equal(count, 0);
    em_store_close(s);
}

/* One loop turn of the benchmark shape: 1,000 tasks launched and ended. */
static ember_status task_batch(em_store *s, uint64_t first, ember_error *err)
{
    ember_status rc = EMBER_OK;
    for (uint64_t t = first; t < first + 1000 && rc == EMBER_OK; t++) {
        rc = em_store_task_begin(s, t, 1, 0, (uint32_t)(t % 200), 0, "exec-1",
                                 0, "PROCESS_LOCAL", (int64_t)t, err);
        if (rc == EMBER_OK)
            rc = em_store_task_end(s, t, "SUCCESS", NULL, (int64_t)t + 5, err);
    }
    return rc == EMBER_OK ? em_store_flush(s, err) : rc;
}

static void test_many_tasks(void **state)
{
    (void)state;
    char path[512];
    ember_error err;
    db_path(path, sizeof path, "many.db");
    em_store *s = open_ok(path);
    for (uint64_t b = 0; b < 100; b++) {
        ember_status rc = task_batch(s, 1 + b * 1000, &err);
        if (rc != EMBER_OK)
            fail_msg("batch %d: %s", (int)b, err.msg);
    }
    assert_false(em_store_pending(s));
    assert_int_equal(q_int(s, "SELECT count(*) FROM tasks"), 100000);
    assert_int_equal(q_int(s, "SELECT count(*) FROM tasks WHERE status = "
                              "'SUCCESS' AND end_ms = launch_ms + 5"),
                     100000);
    assert_int_equal(q_int(s, "SELECT count(*) FROM tasks WHERE stage_id = 1 "
                              "AND stage_attempt = 0 AND partition = 7"),
                     500);
    em_store_close(s);
}

/*
 * The reader process: waits until the database exists, then counts tasks
 * until the writer says it is done. Every count it sees must be a whole
 * number of flushed batches (all ended), never shrinking; the last must be
 * the final total. Returns its exit code (0 success).
 */
static int child_reader(const char *path, int ready_fd, int ack_fd,
                        int done_fd, int64_t total)
{
    char c = 0;
    em_store *r = NULL;
    int64_t last = 0, n = -1, running = -1;
    int code = 0, first = 1;
    if (read(ready_fd, &c, 1) != 1)
        return 10;
    if (em_store_open_readonly(&r, path, NULL) != EMBER_OK)
        return 11;
    for (;;) {
        struct pollfd p = {.fd = done_fd, .events = POLLIN};
        int finished = poll(&p, 1, 0) > 0;
        if (em_store_query_int(r, "SELECT count(*) FROM tasks", &n, NULL) ||
            em_store_query_int(r, "SELECT count(*) FROM tasks WHERE "
                                  "status <> 'SUCCESS'",
                               &running, NULL)) {
            code = 12;
            break;
        }
        if (n < 1000 || n % 1000 != 0 || n < last || running != 0) {
            code = 13;
            break;
        }
        last = n;
        if (first && write(ack_fd, "a", 1) != 1) {
            code = 14;
            break;
        }
        first = 0;
        if (finished) {
            code = n == total ? 0 : 15;
            break;
        }
    }
    em_store_close(r);
    return code;
}

static void test_reader_in_another_process(void **state)
{
    (void)state;
    char path[512], c;
    ember_error err;
    int ready[2], ack[2], done[2], wstatus = 0;
    const int batches = 40;
    db_path(path, sizeof path, "process.db");
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(ack), 0);
    assert_int_equal(pipe(done), 0);
    /* Fork before opening anything, so the child inherits no connection. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[1]);
        close(ack[0]);
        close(done[1]);
        _exit(child_reader(path, ready[0], ack[1], done[0],
                           (int64_t)batches * 1000));
    }
    close(ready[0]);
    close(ack[1]);
    close(done[0]);
    em_store *s = open_ok(path);
    assert_int_equal(task_batch(s, 1, &err), EMBER_OK);
    assert_int_equal(write(ready[1], "r", 1), 1);
    /* Wait for the child's first read, then keep writing as it reads. */
    ssize_t got = read(ack[0], &c, 1);
    for (int b = 1; b < batches; b++)
        assert_int_equal(task_batch(s, 1 + (uint64_t)b * 1000, &err), EMBER_OK);
    assert_int_equal(write(done[1], "d", 1), 1);
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    close(ready[1]);
    close(ack[0]);
    close(done[1]);
    em_store_close(s);
    assert_int_equal(got, 1);
    assert_true(WIFEXITED(wstatus));
    assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_wal_at_latest),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_flush_makes_writes_visible),
        cmocka_unit_test(test_readonly_refuses_writes),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_foreign_sqlite_refused),
        cmocka_unit_test(test_garbage_refused_untouched),
        cmocka_unit_test(test_migration_1_to_latest),
        cmocka_unit_test(test_next_ids),
        cmocka_unit_test(test_mark_interrupted),
        cmocka_unit_test(test_many_tasks),
        cmocka_unit_test(test_reader_in_another_process),
    };
    return cmocka_run_group_tests_name("state_store", tests, setup_dir,
                                       remove_dir);
}
