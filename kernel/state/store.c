/* The SQLite state store (see state/store.h). */
#include "state/store.h"

#include "ember/kernel/log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#include "state/migrations.h"

/* Every statement the store runs more than once, prepared at open. */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_APP_BEGIN,
    ST_APP_END,
    ST_JOB_BEGIN,
    ST_JOB_END,
    ST_STAGE_BEGIN,
    ST_STAGE_END,
    ST_TASK_BEGIN,
    ST_TASK_END,
    ST_EXEC_ADD,
    ST_EXEC_REMOVE,
    ST_MAP_SET,
    ST_MAP_REMOVE,
    ST_MAP_REMOVE_EXEC,
    ST_MAP_REMOVE_SHUFFLE,
    ST_SHUFFLE_ADD,
    ST_SHUFFLE_REMOVE,
    ST_POOL_SET,
    ST_PLUGIN_ADD,
    ST_EVENT,
    ST_INT_APPS,
    ST_INT_JOBS,
    ST_INT_STAGES,
    ST_INT_TASKS,
    ST_NEXT_IDS,
    ST_BLOCK_SET,
    ST_BLOCK_REMOVE,
    ST_BLOCK_REMOVE_EXEC,
    ST_BLOCK_REMOVE_DATASET,
    ST_BLOCK_REMOVE_APP,
    ST_BLOCK_REMOVE_ALL,
    ST_BCAST_SET,
    ST_ACCUM_SET,
    ST_COUNT
};

static const struct stmt_def {
    const char *sql;
    int min_version; /* schema version whose tables the statement needs */
    int writes;      /* not prepared on a read-only store */
} stmt_defs[ST_COUNT] = {
    [ST_BEGIN] = {"BEGIN IMMEDIATE", 1, 1},
    [ST_COMMIT] = {"COMMIT", 1, 1},
    [ST_ROLLBACK] = {"ROLLBACK", 1, 1},
    [ST_APP_BEGIN] = {"INSERT INTO applications(app_id, name, status, "
                      "start_ms) VALUES(?1, ?2, 'RUNNING', ?3)",
                      1, 1},
    [ST_APP_END] = {"UPDATE applications SET status = ?2, end_ms = ?3 "
                    "WHERE app_id = ?1",
                    1, 1},
    [ST_JOB_BEGIN] = {"INSERT INTO jobs(job_id, app_id, description, pool, "
                      "job_group, status, submit_ms) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, 'RUNNING', ?6)",
                      1, 1},
    [ST_JOB_END] = {"UPDATE jobs SET status = ?2, error = ?3, end_ms = ?4 "
                    "WHERE job_id = ?1",
                    1, 1},
    [ST_STAGE_BEGIN] = {"INSERT INTO stage_attempts(stage_id, attempt, "
                        "job_id, kind, name, num_tasks, status, submit_ms) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, 'RUNNING', ?7)",
                        1, 1},
    [ST_STAGE_END] = {"UPDATE stage_attempts SET status = ?3, failure = ?4, "
                      "end_ms = ?5 WHERE stage_id = ?1 AND attempt = ?2",
                      1, 1},
    [ST_TASK_BEGIN] = {"INSERT INTO tasks(task_id, stage_id, stage_attempt, "
                       "partition, attempt, executor_id, speculative, "
                       "locality, status, launch_ms) VALUES(?1, ?2, ?3, ?4, "
                       "?5, ?6, ?7, ?8, 'RUNNING', ?9)",
                       1, 1},
    [ST_TASK_END] = {"UPDATE tasks SET status = ?2, error = ?3, end_ms = ?4 "
                     "WHERE task_id = ?1",
                     1, 1},
    [ST_EXEC_ADD] = {"INSERT INTO executors(executor_id, host, slots, "
                     "status, added_ms) VALUES(?1, ?2, ?3, 'ACTIVE', ?4) "
                     "ON CONFLICT(executor_id) DO UPDATE SET "
                     "host = excluded.host, slots = excluded.slots, "
                     "status = 'ACTIVE', reason = NULL, "
                     "added_ms = excluded.added_ms, removed_ms = NULL",
                     1, 1},
    [ST_EXEC_REMOVE] = {"UPDATE executors SET status = 'REMOVED', "
                        "reason = ?2, removed_ms = ?3 WHERE executor_id = ?1",
                        1, 1},
    [ST_MAP_SET] = {"INSERT INTO map_outputs(shuffle_id, map_index, "
                    "executor_id, bytes) VALUES(?1, ?2, ?3, ?4) "
                    "ON CONFLICT(shuffle_id, map_index) DO UPDATE SET "
                    "executor_id = excluded.executor_id, "
                    "bytes = excluded.bytes",
                    1, 1},
    [ST_MAP_REMOVE] = {"DELETE FROM map_outputs "
                       "WHERE shuffle_id = ?1 AND map_index = ?2",
                       1, 1},
    [ST_MAP_REMOVE_EXEC] = {"DELETE FROM map_outputs WHERE executor_id = ?1",
                            1, 1},
    [ST_MAP_REMOVE_SHUFFLE] = {"DELETE FROM map_outputs "
                               "WHERE shuffle_id = ?1",
                               1, 1},
    [ST_SHUFFLE_ADD] = {"INSERT INTO shuffles(shuffle_id, app_id, stage_id, "
                        "num_maps, num_reduces, status) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, 'ACTIVE')",
                        2, 1},
    [ST_SHUFFLE_REMOVE] = {"UPDATE shuffles SET status = 'REMOVED' "
                           "WHERE shuffle_id = ?1",
                           2, 1},
    [ST_POOL_SET] = {"INSERT INTO pools(name, parent, mode, weight, "
                     "min_share, max_share) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                     "ON CONFLICT(name) DO UPDATE SET "
                     "parent = excluded.parent, mode = excluded.mode, "
                     "weight = excluded.weight, "
                     "min_share = excluded.min_share, "
                     "max_share = excluded.max_share",
                     1, 1},
    [ST_PLUGIN_ADD] = {"INSERT INTO plugins(name, version, path, loaded_ms) "
                       "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE "
                       "SET version = excluded.version, "
                       "path = excluded.path, loaded_ms = excluded.loaded_ms",
                       1, 1},
    [ST_EVENT] = {"INSERT INTO events(time_ms, kind, detail) "
                  "VALUES(?1, ?2, ?3)",
                  1, 1},
    [ST_INT_APPS] = {"UPDATE applications SET status = 'INTERRUPTED', "
                     "end_ms = ?1 WHERE status = 'RUNNING'",
                     1, 1},
    [ST_INT_JOBS] = {"UPDATE jobs SET status = 'INTERRUPTED', end_ms = ?1 "
                     "WHERE status = 'RUNNING'",
                     1, 1},
    [ST_INT_STAGES] = {"UPDATE stage_attempts SET status = 'INTERRUPTED', "
                       "end_ms = ?1 WHERE status = 'RUNNING'",
                       1, 1},
    [ST_INT_TASKS] = {"UPDATE tasks SET status = 'INTERRUPTED', end_ms = ?1 "
                      "WHERE status = 'RUNNING'",
                      1, 1},
    [ST_NEXT_IDS] = {"SELECT "
                     "(SELECT COALESCE(MAX(app_id), 0) FROM applications), "
                     "(SELECT COALESCE(MAX(job_id), 0) FROM jobs), "
                     "(SELECT COALESCE(MAX(stage_id), 0) FROM stage_attempts), "
                     "(SELECT COALESCE(MAX(task_id), 0) FROM tasks), "
                     "MAX((SELECT COALESCE(MAX(shuffle_id), 0) FROM shuffles), "
                     "(SELECT COALESCE(MAX(shuffle_id), 0) FROM map_outputs))",
                     2, 0},
    [ST_BLOCK_SET] = {"INSERT INTO blocks(app_id, dataset, partition, "
                      "executor_id, tier, bytes) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                      "ON CONFLICT(app_id, dataset, partition, executor_id) "
                      "DO UPDATE SET tier = excluded.tier, "
                      "bytes = excluded.bytes",
                      3, 1},
    [ST_BLOCK_REMOVE] = {"DELETE FROM blocks WHERE app_id = ?1 AND "
                         "dataset = ?2 AND partition = ?3 AND "
                         "executor_id = ?4",
                         3, 1},
    [ST_BLOCK_REMOVE_EXEC] = {"DELETE FROM blocks WHERE executor_id = ?1",
                              3, 1},
    [ST_BLOCK_REMOVE_DATASET] = {"DELETE FROM blocks WHERE app_id = ?1 AND "
                                 "dataset = ?2",
                                 3, 1},
    [ST_BLOCK_REMOVE_APP] = {"DELETE FROM blocks WHERE app_id = ?1", 3, 1},
    [ST_BLOCK_REMOVE_ALL] = {"DELETE FROM blocks", 3, 1},
    [ST_BCAST_SET] = {"INSERT INTO broadcasts(app_id, bcast_id, bytes, "
                      "chunks, status) VALUES(?1, ?2, ?3, ?4, ?5) "
                      "ON CONFLICT(app_id, bcast_id) DO UPDATE SET "
                      "bytes = excluded.bytes, chunks = excluded.chunks, "
                      "status = excluded.status",
                      3, 1},
    [ST_ACCUM_SET] = {"INSERT INTO accumulators(app_id, acc_id, name, kind, "
                      "value) VALUES(?1, ?2, ?3, ?4, ?5) "
                      "ON CONFLICT(app_id, acc_id) DO UPDATE SET "
                      "name = excluded.name, kind = excluded.kind, "
                      "value = excluded.value",
                      3, 1},
};

struct em_store {
    sqlite3 *db;
    char *path;
    int readonly;
    int version; /* user_version, as read at open and raised by migrations */
    int in_txn;  /* a write transaction is open */
    sqlite3_stmt *stmts[ST_COUNT]; /* NULL: not available on this store */
};

static const char *const job_statuses[] = {"SUCCEEDED", "FAILED",
                                           "CANCELLED", NULL};
static const char *const stage_kinds[] = {"shuffle_map", "result", NULL};
static const char *const localities[] = {"PROCESS_LOCAL", "NODE_LOCAL",
                                         "NO_PREF", "ANY", NULL};
static const char *const task_statuses[] = {"SUCCESS", "FAILED",
                                            "FETCH_FAILED", "KILLED", "LOST",
                                            NULL};
static const char *const pool_modes[] = {"FAIR", "FIFO", NULL};

/*
 * The one place where SQLite result codes become ember statuses. what says
 * what was being done; user_sql marks SQL that came from a caller (a bad
 * statement is then the caller's error, not ours).
 */
static ember_status store_error(const char *path, sqlite3 *db, int rc,
                                const char *what, int user_sql,
                                ember_error *err)
{
    /* The connection's message, when it is about this error. */
    const char *detail = db && (sqlite3_extended_errcode(db) == rc ||
                                sqlite3_errcode(db) == rc)
                             ? sqlite3_errmsg(db)
                             : sqlite3_errstr(rc);
    ember_status code;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        code = EMBER_ENOMEM;
        break;
    case SQLITE_FULL:
        code = EMBER_ENOSPC;
        break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        code = EMBER_EIO;
        break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ember_errorf(err, EMBER_EINVAL,
                            "state database %s is not an ember state "
                            "database or is corrupt (%s: %s)",
                            path, what, detail);
    case SQLITE_READONLY:
        code = EMBER_EUNSUPPORTED;
        break;
    case SQLITE_CONSTRAINT:
        code = EMBER_EEXIST;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        /* Another connection held its lock past the busy timeout. */
        code = EMBER_ETIMEDOUT;
        break;
    case SQLITE_ERROR:
        code = user_sql ? EMBER_EINVAL : EMBER_EINTERNAL;
        break;
    default:
        code = EMBER_EINTERNAL;
        break;
    }
    return ember_errorf(err, code, "state database %s: %s: %s", path, what,
                        detail);
}

static ember_status need_str(const char *fn, const char *field, const char *v,
                             const char *const *allowed, ember_error *err)
{
    if (!v || !*v)
        return ember_errorf(err, EMBER_EINVAL, "%s: %s is required", fn,
                            field);
    if (!allowed)
        return EMBER_OK;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(v, allowed[i]) == 0)
            return EMBER_OK;
    char list[128] = "";
    size_t len = 0;
    for (size_t i = 0; allowed[i] && len < sizeof list; i++) {
        snprintf(list + len, sizeof list - len, "%s%s", i ? "|" : "",
                 allowed[i]);
        len = strlen(list);
    }
    return ember_errorf(err, EMBER_EINVAL, "%s: %s '%s' is not one of %s", fn,
                        field, v, list);
}

static ember_status need_id(const char *fn, const char *field, uint64_t v,
                            ember_error *err)
{
    if (v > (uint64_t)INT64_MAX)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s %" PRIu64 " is larger than %" PRId64, fn,
                            field, v, INT64_MAX);
    return EMBER_OK;
}

/*
 * Binds parameters 1, 2, ... of st, one argument per letter of types:
 * 'i' int64_t, 't' const char * (NULL binds SQL NULL; the text must outlive
 * the step), 'd' double. Returns an SQLite result code; SQLITE_RANGE when
 * types does not name every parameter (a bug here, reported as internal).
 */
static int bind_args(sqlite3_stmt *st, const char *types, ...)
{
    va_list ap;
    int rc = SQLITE_OK;
    if ((int)strlen(types) != sqlite3_bind_parameter_count(st))
        return SQLITE_RANGE;
    va_start(ap, types);
    for (int i = 0; types[i] && rc == SQLITE_OK; i++) {
        switch (types[i]) {
        case 'i':
            rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
            break;
        case 't': {
            const char *t = va_arg(ap, const char *);
            rc = t ? sqlite3_bind_text(st, i + 1, t, -1, SQLITE_STATIC)
                   : sqlite3_bind_null(st, i + 1);
            break;
        }
        default:
            rc = sqlite3_bind_double(st, i + 1, va_arg(ap, double));
            break;
        }
    }
    va_end(ap);
    return rc;
}

/* Steps a statement that returns no rows once, then resets it. */
static ember_status exec_stmt(em_store *s, sqlite3_stmt *st, const char *what,
                              ember_error *err)
{
    int rc = sqlite3_step(st);
    ember_status out = EMBER_OK;
    if (rc != SQLITE_DONE)
        out = store_error(s->path, s->db, rc, what, 0, err);
    sqlite3_reset(st);
    return out;
}

/* Runs a script (one or more statements) that returns no rows. */
static ember_status exec_sql(em_store *s, const char *sql, const char *what,
                             ember_error *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_error(s->path, s->db, rc, what, 0, err);
    return EMBER_OK;
}

/*
 * Prepares one statement of sql, checks it only reads and steps it once.
 * On EMBER_OK *out is the statement positioned on its first row (the
 * caller finalizes it). user_sql says whether sql came from a caller.
 */
/* Authorizer for caller-supplied queries: plain reads only — no
 * transaction control, no ATTACH, and only pragmas that read settings. */
static int deny_control(void *ctx, int action, const char *a, const char *b,
                        const char *c, const char *d)
{
    static const char *const readable[] = {
        "user_version", "synchronous", "journal_mode", "page_size",
        "page_count", "table_info", "index_list", NULL};
    (void)ctx;
    (void)c;
    (void)d;
    switch (action) {
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        for (size_t i = 0; readable[i]; i++)
            if (a && !strcasecmp(a, readable[i]) &&
                (!b || !strcmp(readable[i], "table_info") ||
                 !strcmp(readable[i], "index_list")))
                return SQLITE_OK;
        return SQLITE_DENY;
    default:
        return SQLITE_OK;
    }
}

static ember_status query_first_row(em_store *s, const char *sql,
                                    const char *fn, int user_sql,
                                    sqlite3_stmt **out, ember_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    ember_status status = EMBER_OK;
    *out = NULL;
    if (!s || !sql)
        return ember_errorf(err, EMBER_EINVAL, "%s: store or SQL is NULL",
                            fn);
    /* sqlite3_stmt_readonly() says yes to BEGIN, ROLLBACK, SAVEPOINT and
     * ATTACH: refuse them (and pragmas) while preparing a caller's SQL,
     * or a query could discard or wedge the kernel's open transaction. */
    if (user_sql)
        sqlite3_set_authorizer(s->db, deny_control, NULL);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, &tail);
    if (user_sql)
        sqlite3_set_authorizer(s->db, NULL, NULL);
    if (rc != SQLITE_OK) {
        status = store_error(s->path, s->db, rc, fn, user_sql, err);
        goto done;
    }
    while (tail && (isspace((unsigned char)*tail) || *tail == ';'))
        tail++;
    if (!st || (tail && *tail)) {
        status = ember_errorf(err, EMBER_EINVAL,
                              "%s: expected exactly one SQL statement in '%s'",
                              fn, sql);
        goto done;
    }
    if (!sqlite3_stmt_readonly(st)) {
        status = ember_errorf(err, EMBER_EINVAL,
                              "%s: '%s' would write; only reading statements "
                              "are allowed",
                              fn, sql);
        goto done;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        status = ember_errorf(err, EMBER_ENOTFOUND, "%s: '%s' returned no row",
                              fn, sql);
    else if (rc != SQLITE_ROW)
        status = store_error(s->path, s->db, rc, fn, user_sql, err);
done:
    if (status == EMBER_OK)
        *out = st;
    else
        sqlite3_finalize(st);
    return status;
}

/* The first column of the first row of an internal query, as an integer. */
static ember_status query_int(em_store *s, const char *sql, int64_t *out,
                              ember_error *err)
{
    sqlite3_stmt *st;
    ember_status status =
        query_first_row(s, sql, "reading the schema", 0, &st, err);
    if (status != EMBER_OK)
        return status;
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return EMBER_OK;
}

/*
 * Reads the schema version and decides whether the file is an ember state
 * database (or a fresh one: s->version 0). Reads only, so a file that is
 * refused here is left as it was.
 */
static ember_status inspect(em_store *s, ember_error *err)
{
    int64_t version = 0, objects = 0, meta = 0, ember = 0;
    int latest = em_state_migration_count();
    ember_status status;
    if ((status = query_int(s, "PRAGMA user_version", &version, err)) ||
        (status = query_int(s, "SELECT count(*) FROM sqlite_master",
                            &objects, err)) ||
        (status = query_int(s,
                            "SELECT count(*) FROM sqlite_master WHERE "
                            "type = 'table' AND name = 'meta'",
                            &meta, err)))
        return status;
    if (meta && (status = query_int(s,
                                    "SELECT count(*) FROM meta WHERE "
                                    "key = 'format' AND value = '" EM_STATE_FORMAT
                                    "'",
                                    &ember, err)))
        return status;
    if (objects == 0 && version == 0) {
        s->version = 0;
        return EMBER_OK;
    }
    if (!ember)
        return ember_errorf(err, EMBER_EINVAL,
                            "state database %s is not an ember state "
                            "database (it has %s but no ember meta); choose "
                            "another path",
                            s->path, objects ? "tables" : "a schema version");
    if (version <= 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "state database %s is corrupt: it has ember meta "
                            "but schema version %" PRId64,
                            s->path, version);
    if (version > latest)
        return ember_errorf(err, EMBER_EVERSION,
                            "state database %s has schema version %" PRId64
                            ", newer than this ember (%d): upgrade ember",
                            s->path, version, latest);
    s->version = (int)version;
    return EMBER_OK;
}

/* Switches a read-write connection to WAL; checks that it took. */
static ember_status set_wal(em_store *s, ember_error *err)
{
    sqlite3_stmt *st = NULL;
    ember_status status = EMBER_OK;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        status = store_error(s->path, s->db, rc, "switching to WAL", 0, err);
        goto done;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    /* An in-memory database (":memory:") has no WAL and needs none. */
    if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0))
        status = ember_errorf(err, EMBER_EIO,
                              "state database %s: could not switch to WAL "
                              "(journal mode stays '%s'); is it on a "
                              "file system without shared memory?",
                              s->path, mode ? mode : "?");
done:
    sqlite3_finalize(st);
    return status;
}

/*
 * Applies migration s->version + 1 together with its user_version bump in
 * one transaction. The version is read again inside the transaction, so two
 * processes opening a new file at once migrate it once: the later one finds
 * the work done and only takes the new version.
 */
static ember_status migrate_one(em_store *s, ember_error *err)
{
    int v = s->version + 1;
    int64_t now = 0;
    char what[64], bump[64];
    ember_status status =
        exec_sql(s, "BEGIN IMMEDIATE", "starting a migration", err);
    if (status != EMBER_OK)
        return status;
    snprintf(what, sizeof what, "applying migration %d", v);
    snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v);
    if ((status = query_int(s, "PRAGMA user_version", &now, err)))
        goto fail;
    if (now != s->version) {
        /* Another process migrated meanwhile: continue from its version. */
        if ((status = exec_sql(s, "COMMIT", what, err)))
            goto fail;
        if (now > em_state_migration_count())
            return ember_errorf(err, EMBER_EVERSION,
                                "state database %s has schema version "
                                "%" PRId64 ", newer than this ember (%d): "
                                "upgrade ember",
                                s->path, now, em_state_migration_count());
        s->version = (int)now;
        return EMBER_OK;
    }
    if ((status = exec_sql(s, em_state_migration_sql(v), what, err)) ||
        (status = exec_sql(s, bump, what, err)) ||
        (status = exec_sql(s, "COMMIT", what, err)))
        goto fail;
    s->version = v;
    return EMBER_OK;
fail:
    if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return status;
}

static ember_status migrate_to(em_store *s, int target, ember_error *err)
{
    while (s->version < target) {
        ember_status status = migrate_one(s, err);
        if (status != EMBER_OK)
            return status;
    }
    return EMBER_OK;
}

static ember_status prepare_all(em_store *s, ember_error *err)
{
    for (int i = 0; i < ST_COUNT; i++) {
        const struct stmt_def *d = &stmt_defs[i];
        if ((s->readonly && d->writes) || d->min_version > s->version)
            continue;
        int rc = sqlite3_prepare_v3(s->db, d->sql, -1,
                                    SQLITE_PREPARE_PERSISTENT, &s->stmts[i],
                                    NULL);
        if (rc != SQLITE_OK)
            return store_error(s->path, s->db, rc, "preparing statements", 0,
                               err);
    }
    return EMBER_OK;
}

static ember_status store_open(em_store **out, const char *path, int readonly,
                               int target, ember_error *err)
{
    em_store *s = NULL;
    ember_status status = EMBER_OK;
    int latest = em_state_migration_count();
    if (!out)
        return ember_errorf(err, EMBER_EINVAL, "em_store_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return ember_errorf(err, EMBER_EINVAL,
                            "em_store_open: no state database path");
    if (target < 1 || target > latest)
        return ember_errorf(err, EMBER_EINVAL,
                            "em_store_open: schema version %d is not between "
                            "1 and %d",
                            target, latest);
    s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        status = ember_errorf(err, EMBER_ENOMEM,
                              "state database %s: out of memory", path);
        goto fail;
    }
    s->readonly = readonly;
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        status = store_error(path, s->db, rc, "opening", 0, err);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    if ((status = inspect(s, err)))
        goto fail;
    if (readonly) {
        if (s->version == 0) {
            status = ember_errorf(err, EMBER_ENOTFOUND,
                                  "state database %s is empty: no ember "
                                  "kernel has written to it yet",
                                  path);
            goto fail;
        }
        if (s->version < latest) {
            status = ember_errorf(err, EMBER_EVERSION,
                                  "state database %s has schema version %d, "
                                  "older than this ember (%d): open it "
                                  "read-write once (start the kernel on it) "
                                  "to migrate it",
                                  path, s->version, latest);
            goto fail;
        }
    } else {
        if ((status = set_wal(s, err)) ||
            (status = exec_sql(s, "PRAGMA synchronous = NORMAL",
                               "setting synchronous=NORMAL", err)) ||
            (status = migrate_to(s, target, err)))
            goto fail;
    }
    if ((status = prepare_all(s, err)))
        goto fail;
    *out = s;
    return EMBER_OK;
fail:
    em_store_close(s);
    return status;
}

ember_status em_store_open(em_store **out, const char *path, ember_error *err)
{
    return store_open(out, path, 0, em_state_migration_count(), err);
}

ember_status em_store_open_at_version(em_store **out, const char *path,
                                      int version, ember_error *err)
{
    return store_open(out, path, 0, version, err);
}

ember_status em_store_open_readonly(em_store **out, const char *path,
                                    ember_error *err)
{
    return store_open(out, path, 1, em_state_migration_count(), err);
}

void em_store_close(em_store *s)
{
    if (!s)
        return;
    if (s->in_txn)
        (void)em_store_flush(s, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

int em_store_schema_version(const em_store *s)
{
    return s ? s->version : 0;
}

int em_store_latest_schema_version(void)
{
    return em_state_migration_count();
}

int em_store_pending(const em_store *s)
{
    return s && s->in_txn;
}

ember_status em_store_flush(em_store *s, ember_error *err)
{
    if (!s || !s->in_txn)
        return EMBER_OK;
    ember_status status =
        exec_stmt(s, s->stmts[ST_COMMIT], "committing a turn's writes", err);
    if (status != EMBER_OK && !sqlite3_get_autocommit(s->db))
        (void)exec_stmt(s, s->stmts[ST_ROLLBACK], "rolling back", NULL);
    s->in_txn = !sqlite3_get_autocommit(s->db);
    return status;
}

/*
 * The statement for a write, inside the turn's transaction (begun here when
 * it is the first write since the last flush).
 */
static ember_status write_stmt(em_store *s, enum stmt_id id, const char *fn,
                               sqlite3_stmt **out, ember_error *err)
{
    if (!s)
        return ember_errorf(err, EMBER_EINVAL, "%s: store is NULL", fn);
    if (s->readonly)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "%s: state database %s is open read-only", fn,
                            s->path);
    if (!s->stmts[id])
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "%s: state database %s has schema version %d; "
                            "this needs version %d",
                            fn, s->path, s->version, stmt_defs[id].min_version);
    if (!s->in_txn) {
        ember_status status = exec_stmt(s, s->stmts[ST_BEGIN],
                                        "beginning a transaction", err);
        if (status != EMBER_OK)
            return status;
        s->in_txn = 1;
    }
    *out = s->stmts[id];
    return EMBER_OK;
}

/*
 * Steps a bound write statement (bind_rc: the result of bind_args) and
 * resets it; *changes (nullable) gets the number of rows it changed.
 */
static ember_status run_write(em_store *s, sqlite3_stmt *st, int bind_rc,
                              const char *fn, int *changes, ember_error *err)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(st) : bind_rc;
    ember_status status = EMBER_OK;
    if (rc == SQLITE_DONE) {
        if (changes)
            *changes = sqlite3_changes(s->db);
    } else {
        status = store_error(s->path, s->db, rc, fn, 0, err);
    }
    sqlite3_reset(st);
    /* Some errors (I/O, disk full) make SQLite roll back the whole turn. */
    if (status != EMBER_OK)
        s->in_txn = !sqlite3_get_autocommit(s->db);
    return status;
}

/* run_write for an update of one row that must exist. */
static ember_status run_update(em_store *s, sqlite3_stmt *st, int bind_rc,
                               const char *fn, const char *what,
                               ember_error *err)
{
    int changes = 0;
    ember_status status = run_write(s, st, bind_rc, fn, &changes, err);
    if (status == EMBER_OK && changes == 0)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s: no %s in %s", fn, what,
                            s->path);
    return status;
}

ember_status em_store_next_ids(em_store *s, em_store_ids *out,
                               ember_error *err)
{
    static const char fn[] = "em_store_next_ids";
    if (!s || !out)
        return ember_errorf(err, EMBER_EINVAL, "%s: store or out is NULL", fn);
    sqlite3_stmt *st = s->stmts[ST_NEXT_IDS];
    if (!st)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "%s: state database %s has schema version %d; "
                            "this needs version %d",
                            fn, s->path, s->version,
                            stmt_defs[ST_NEXT_IDS].min_version);
    ember_status status = EMBER_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->app = (uint64_t)sqlite3_column_int64(st, 0) + 1;
        out->job = (uint64_t)sqlite3_column_int64(st, 1) + 1;
        out->stage = (uint64_t)sqlite3_column_int64(st, 2) + 1;
        out->task = (uint64_t)sqlite3_column_int64(st, 3) + 1;
        out->shuffle = (uint64_t)sqlite3_column_int64(st, 4) + 1;
    } else {
        status = store_error(s->path, s->db, rc, fn, 0, err);
    }
    sqlite3_reset(st);
    return status;
}

ember_status em_store_mark_interrupted(em_store *s, int64_t now_ms,
                                       int64_t *count, ember_error *err)
{
    static const char fn[] = "em_store_mark_interrupted";
    static const enum stmt_id order[] = {ST_INT_TASKS, ST_INT_STAGES,
                                         ST_INT_JOBS, ST_INT_APPS};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        sqlite3_stmt *st;
        int changes = 0;
        ember_status status = write_stmt(s, order[i], fn, &st, err);
        if (status == EMBER_OK)
            status = run_write(s, st, bind_args(st, "i", now_ms), fn,
                               &changes, err);
        if (status != EMBER_OK)
            return status;
        if (order[i] == ST_INT_JOBS && count)
            *count = changes;
    }
    return EMBER_OK;
}

ember_status em_store_app_begin(em_store *s, uint64_t app_id, const char *name,
                                int64_t start_ms, ember_error *err)
{
    static const char fn[] = "em_store_app_begin";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "app_id", app_id, err)) ||
        (status = need_str(fn, "name", name, NULL, err)) ||
        (status = write_stmt(s, ST_APP_BEGIN, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "iti", (int64_t)app_id, name, start_ms),
                     fn, NULL, err);
}

ember_status em_store_app_end(em_store *s, uint64_t app_id, const char *status,
                              int64_t end_ms, ember_error *err)
{
    static const char fn[] = "em_store_app_end";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = need_str(fn, "status", status, NULL, err)) ||
        (rv = write_stmt(s, ST_APP_END, fn, &st, err)))
        return rv;
    return run_update(s, st,
                      bind_args(st, "iti", (int64_t)app_id, status, end_ms),
                      fn, "such application", err);
}

ember_status em_store_job_begin(em_store *s, uint64_t job_id, uint64_t app_id,
                                const char *description, const char *pool,
                                const char *group, int64_t submit_ms,
                                ember_error *err)
{
    static const char fn[] = "em_store_job_begin";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "job_id", job_id, err)) ||
        (status = need_id(fn, "app_id", app_id, err)) ||
        (status = write_stmt(s, ST_JOB_BEGIN, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "iittti", (int64_t)job_id,
                               (int64_t)app_id, description, pool, group,
                               submit_ms),
                     fn, NULL, err);
}

ember_status em_store_job_end(em_store *s, uint64_t job_id, const char *status,
                              const char *error, int64_t end_ms,
                              ember_error *err)
{
    static const char fn[] = "em_store_job_end";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "job_id", job_id, err)) ||
        (rv = need_str(fn, "status", status, job_statuses, err)) ||
        (rv = write_stmt(s, ST_JOB_END, fn, &st, err)))
        return rv;
    return run_update(s, st,
                      bind_args(st, "itti", (int64_t)job_id, status, error,
                                end_ms),
                      fn, "such job", err);
}

ember_status em_store_stage_begin(em_store *s, uint64_t stage_id,
                                  uint32_t attempt, uint64_t job_id,
                                  const char *kind, const char *name,
                                  uint32_t num_tasks, int64_t submit_ms,
                                  ember_error *err)
{
    static const char fn[] = "em_store_stage_begin";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "stage_id", stage_id, err)) ||
        (status = need_id(fn, "job_id", job_id, err)) ||
        (status = need_str(fn, "kind", kind, stage_kinds, err)) ||
        (status = need_str(fn, "name", name, NULL, err)) ||
        (status = write_stmt(s, ST_STAGE_BEGIN, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "iiittii", (int64_t)stage_id,
                               (int64_t)attempt, (int64_t)job_id, kind, name,
                               (int64_t)num_tasks, submit_ms),
                     fn, NULL, err);
}

ember_status em_store_stage_end(em_store *s, uint64_t stage_id,
                                uint32_t attempt, const char *status,
                                const char *failure, int64_t end_ms,
                                ember_error *err)
{
    static const char fn[] = "em_store_stage_end";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "stage_id", stage_id, err)) ||
        (rv = need_str(fn, "status", status, job_statuses, err)) ||
        (rv = write_stmt(s, ST_STAGE_END, fn, &st, err)))
        return rv;
    return run_update(s, st,
                      bind_args(st, "iitti", (int64_t)stage_id,
                                (int64_t)attempt, status, failure, end_ms),
                      fn, "such stage attempt", err);
}

ember_status em_store_task_begin(em_store *s, uint64_t task_id,
                                 uint64_t stage_id, uint32_t stage_attempt,
                                 uint32_t partition, uint32_t attempt,
                                 const char *executor_id, int speculative,
                                 const char *locality, int64_t launch_ms,
                                 ember_error *err)
{
    static const char fn[] = "em_store_task_begin";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "task_id", task_id, err)) ||
        (status = need_id(fn, "stage_id", stage_id, err)) ||
        (status = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (status = need_str(fn, "locality", locality, localities, err)) ||
        (status = write_stmt(s, ST_TASK_BEGIN, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "iiiiititi", (int64_t)task_id,
                               (int64_t)stage_id, (int64_t)stage_attempt,
                               (int64_t)partition, (int64_t)attempt,
                               executor_id, (int64_t)(speculative != 0),
                               locality, launch_ms),
                     fn, NULL, err);
}

ember_status em_store_task_end(em_store *s, uint64_t task_id,
                               const char *status, const char *error,
                               int64_t end_ms, ember_error *err)
{
    static const char fn[] = "em_store_task_end";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "task_id", task_id, err)) ||
        (rv = need_str(fn, "status", status, task_statuses, err)) ||
        (rv = write_stmt(s, ST_TASK_END, fn, &st, err)))
        return rv;
    return run_update(s, st,
                      bind_args(st, "itti", (int64_t)task_id, status, error,
                                end_ms),
                      fn, "such task", err);
}

ember_status em_store_executor_add(em_store *s, const char *executor_id,
                                   const char *host, uint32_t slots,
                                   int64_t added_ms, ember_error *err)
{
    static const char fn[] = "em_store_executor_add";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (status = need_str(fn, "host", host, NULL, err)) ||
        (status = write_stmt(s, ST_EXEC_ADD, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "ttii", executor_id, host, (int64_t)slots,
                               added_ms),
                     fn, NULL, err);
}

ember_status em_store_executor_remove(em_store *s, const char *executor_id,
                                      const char *reason, int64_t removed_ms,
                                      ember_error *err)
{
    static const char fn[] = "em_store_executor_remove";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (status = need_str(fn, "reason", reason, NULL, err)) ||
        (status = write_stmt(s, ST_EXEC_REMOVE, fn, &st, err)))
        return status;
    return run_update(s, st,
                      bind_args(st, "tti", executor_id, reason, removed_ms),
                      fn, "such executor", err);
}

ember_status em_store_map_output_set(em_store *s, uint64_t shuffle_id,
                                     uint32_t map_index,
                                     const char *executor_id, uint64_t bytes,
                                     ember_error *err)
{
    static const char fn[] = "em_store_map_output_set";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "shuffle_id", shuffle_id, err)) ||
        (status = need_id(fn, "bytes", bytes, err)) ||
        (status = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (status = write_stmt(s, ST_MAP_SET, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "iiti", (int64_t)shuffle_id,
                               (int64_t)map_index, executor_id,
                               (int64_t)bytes),
                     fn, NULL, err);
}

ember_status em_store_map_output_remove(em_store *s, uint64_t shuffle_id,
                                        uint32_t map_index, ember_error *err)
{
    static const char fn[] = "em_store_map_output_remove";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "shuffle_id", shuffle_id, err)) ||
        (status = write_stmt(s, ST_MAP_REMOVE, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "ii", (int64_t)shuffle_id,
                               (int64_t)map_index),
                     fn, NULL, err);
}

ember_status em_store_map_output_remove_executor(em_store *s,
                                                 const char *executor_id,
                                                 ember_error *err)
{
    static const char fn[] = "em_store_map_output_remove_executor";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (status = write_stmt(s, ST_MAP_REMOVE_EXEC, fn, &st, err)))
        return status;
    return run_write(s, st, bind_args(st, "t", executor_id), fn, NULL, err);
}

ember_status em_store_map_output_remove_shuffle(em_store *s,
                                                uint64_t shuffle_id,
                                                ember_error *err)
{
    static const char fn[] = "em_store_map_output_remove_shuffle";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "shuffle_id", shuffle_id, err)) ||
        (status = write_stmt(s, ST_MAP_REMOVE_SHUFFLE, fn, &st, err)))
        return status;
    return run_write(s, st, bind_args(st, "i", (int64_t)shuffle_id), fn, NULL,
                     err);
}

ember_status em_store_shuffle_add(em_store *s, uint64_t shuffle_id,
                                  uint64_t app_id, uint64_t stage_id,
                                  uint32_t num_maps, uint32_t num_reduces,
                                  ember_error *err)
{
    static const char fn[] = "em_store_shuffle_add";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "shuffle_id", shuffle_id, err)) ||
        (status = need_id(fn, "app_id", app_id, err)) ||
        (status = need_id(fn, "stage_id", stage_id, err)) ||
        (status = write_stmt(s, ST_SHUFFLE_ADD, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "iiiii", (int64_t)shuffle_id,
                               (int64_t)app_id, (int64_t)stage_id,
                               (int64_t)num_maps, (int64_t)num_reduces),
                     fn, NULL, err);
}

ember_status em_store_shuffle_remove(em_store *s, uint64_t shuffle_id,
                                     ember_error *err)
{
    static const char fn[] = "em_store_shuffle_remove";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_id(fn, "shuffle_id", shuffle_id, err)) ||
        (status = write_stmt(s, ST_SHUFFLE_REMOVE, fn, &st, err)))
        return status;
    return run_update(s, st, bind_args(st, "i", (int64_t)shuffle_id), fn,
                      "such shuffle", err);
}

ember_status em_store_pool_set(em_store *s, const char *name,
                               const char *parent, const char *mode,
                               double weight, uint32_t min_share,
                               uint32_t max_share, ember_error *err)
{
    static const char fn[] = "em_store_pool_set";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_str(fn, "name", name, NULL, err)) ||
        (status = need_str(fn, "mode", mode, pool_modes, err)))
        return status;
    if (!isfinite(weight) || weight < 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: pool '%s' has weight %g; it must be a "
                            "finite number >= 0",
                            fn, name, weight);
    if ((status = write_stmt(s, ST_POOL_SET, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "tttdii", name, parent, mode, weight,
                               (int64_t)min_share, (int64_t)max_share),
                     fn, NULL, err);
}

ember_status em_store_plugin_add(em_store *s, const char *name,
                                 const char *version, const char *path,
                                 int64_t loaded_ms, ember_error *err)
{
    static const char fn[] = "em_store_plugin_add";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_str(fn, "name", name, NULL, err)) ||
        (status = need_str(fn, "version", version, NULL, err)) ||
        (status = need_str(fn, "path", path, NULL, err)) ||
        (status = write_stmt(s, ST_PLUGIN_ADD, fn, &st, err)))
        return status;
    return run_write(s, st,
                     bind_args(st, "ttti", name, version, path, loaded_ms), fn,
                     NULL, err);
}

ember_status em_store_event(em_store *s, int64_t time_ms, const char *kind,
                            const char *detail_json, ember_error *err)
{
    static const char fn[] = "em_store_event";
    sqlite3_stmt *st;
    ember_status status;
    if ((status = need_str(fn, "kind", kind, NULL, err)) ||
        (status = write_stmt(s, ST_EVENT, fn, &st, err)))
        return status;
    return run_write(s, st, bind_args(st, "itt", time_ms, kind, detail_json),
                     fn, NULL, err);
}

ember_status em_store_query_int(em_store *s, const char *sql, int64_t *out,
                                ember_error *err)
{
    static const char fn[] = "em_store_query_int";
    sqlite3_stmt *st;
    if (!out)
        return ember_errorf(err, EMBER_EINVAL, "%s: out is NULL", fn);
    ember_status status = query_first_row(s, sql, fn, 1, &st, err);
    if (status != EMBER_OK)
        return status;
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return EMBER_OK;
}

ember_status em_store_query_text(em_store *s, const char *sql, char *buf,
                                 size_t cap, ember_error *err)
{
    static const char fn[] = "em_store_query_text";
    sqlite3_stmt *st;
    if (!buf && cap)
        return ember_errorf(err, EMBER_EINVAL, "%s: buf is NULL", fn);
    if (cap)
        buf[0] = '\0';
    ember_status status = query_first_row(s, sql, fn, 1, &st, err);
    if (status != EMBER_OK)
        return status;
    const unsigned char *text = sqlite3_column_text(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    if (!text && sqlite3_column_type(st, 0) != SQLITE_NULL)
        status = store_error(s->path, s->db, sqlite3_errcode(s->db), fn, 1,
                             err);
    else if (len + 1 > cap)
        status = ember_errorf(err, EMBER_ENOSPC,
                              "%s: the result needs %zu bytes, the buffer "
                              "has %zu",
                              fn, len + 1, cap);
    else if (text)
        memcpy(buf, text, len + 1);
    sqlite3_finalize(st);
    return status;
}

void em_store_report(const char *source, uint64_t *errors, ember_status st,
                     const ember_error *err)
{
    if (st == EMBER_OK)
        return;
    (*errors)++;
    em_log(EMBER_LOG_ERROR, source, "state store: %s", err->msg);
}

ember_status em_store_remove_files(const char *path, ember_error *err)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char name[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (snprintf(name, sizeof name, "%s%s", path, suffixes[i]) >=
            (int)sizeof name)
            return ember_errorf(err, EMBER_EINVAL, "path too long: %s",
                                path);
        if (unlink(name) != 0 && errno != ENOENT)
            return ember_errorf(err, EMBER_EIO, "cannot remove %s: %s", name,
                                strerror(errno));
    }
    return EMBER_OK;
}

ember_status em_store_broadcast_set(em_store *s, uint64_t app_id,
                                    uint64_t bcast_id, uint64_t bytes,
                                    uint32_t chunks, const char *status,
                                    ember_error *err)
{
    static const char fn[] = "em_store_broadcast_set";
    static const char *const statuses[] = {"live", "unpersisted",
                                           "destroyed", NULL};
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = need_id(fn, "bcast_id", bcast_id, err)) ||
        (rv = need_id(fn, "bytes", bytes, err)) ||
        (rv = need_str(fn, "status", status, statuses, err)) ||
        (rv = write_stmt(s, ST_BCAST_SET, fn, &st, err)))
        return rv;
    return run_write(s, st,
                     bind_args(st, "iiiit", (int64_t)app_id,
                               (int64_t)bcast_id, (int64_t)bytes,
                               (int64_t)chunks, status),
                     fn, NULL, err);
}

/* ---- blocks (schema 3) */

ember_status em_store_block_set(em_store *s, uint64_t app_id,
                                uint64_t dataset, uint32_t partition,
                                const char *executor_id, const char *tier,
                                uint64_t bytes, ember_error *err)
{
    static const char fn[] = "em_store_block_set";
    static const char *const tiers[] = {"MEMORY", "DISK", "OFF_HEAP", NULL};
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = need_id(fn, "dataset", dataset, err)) ||
        (rv = need_id(fn, "bytes", bytes, err)) ||
        (rv = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (rv = need_str(fn, "tier", tier, tiers, err)) ||
        (rv = write_stmt(s, ST_BLOCK_SET, fn, &st, err)))
        return rv;
    return run_write(s, st,
                     bind_args(st, "iiitti", (int64_t)app_id,
                               (int64_t)dataset, (int64_t)partition,
                               executor_id, tier, (int64_t)bytes),
                     fn, NULL, err);
}

ember_status em_store_block_remove(em_store *s, uint64_t app_id,
                                   uint64_t dataset, uint32_t partition,
                                   const char *executor_id, ember_error *err)
{
    static const char fn[] = "em_store_block_remove";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = need_id(fn, "dataset", dataset, err)) ||
        (rv = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (rv = write_stmt(s, ST_BLOCK_REMOVE, fn, &st, err)))
        return rv;
    return run_write(s, st,
                     bind_args(st, "iiit", (int64_t)app_id, (int64_t)dataset,
                               (int64_t)partition, executor_id),
                     fn, NULL, err);
}

ember_status em_store_block_remove_executor(em_store *s,
                                            const char *executor_id,
                                            ember_error *err)
{
    static const char fn[] = "em_store_block_remove_executor";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_str(fn, "executor_id", executor_id, NULL, err)) ||
        (rv = write_stmt(s, ST_BLOCK_REMOVE_EXEC, fn, &st, err)))
        return rv;
    return run_write(s, st, bind_args(st, "t", executor_id), fn, NULL, err);
}

ember_status em_store_block_remove_dataset(em_store *s, uint64_t app_id,
                                           uint64_t dataset, ember_error *err)
{
    static const char fn[] = "em_store_block_remove_dataset";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = need_id(fn, "dataset", dataset, err)) ||
        (rv = write_stmt(s, ST_BLOCK_REMOVE_DATASET, fn, &st, err)))
        return rv;
    return run_write(s, st,
                     bind_args(st, "ii", (int64_t)app_id, (int64_t)dataset),
                     fn, NULL, err);
}

ember_status em_store_block_remove_app(em_store *s, uint64_t app_id,
                                       ember_error *err)
{
    static const char fn[] = "em_store_block_remove_app";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = write_stmt(s, ST_BLOCK_REMOVE_APP, fn, &st, err)))
        return rv;
    return run_write(s, st, bind_args(st, "i", (int64_t)app_id), fn, NULL,
                     err);
}

ember_status em_store_block_remove_all(em_store *s, ember_error *err)
{
    static const char fn[] = "em_store_block_remove_all";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = write_stmt(s, ST_BLOCK_REMOVE_ALL, fn, &st, err)))
        return rv;
    return run_write(s, st, SQLITE_OK, fn, NULL, err);
}

/* ---- accumulators (schema 3) */

ember_status em_store_accum_set(em_store *s, uint64_t app_id,
                                uint64_t acc_id, const char *name,
                                const char *kind, const char *value,
                                ember_error *err)
{
    static const char fn[] = "em_store_accum_set";
    sqlite3_stmt *st;
    ember_status rv;
    if ((rv = need_id(fn, "app_id", app_id, err)) ||
        (rv = need_id(fn, "acc_id", acc_id, err)) ||
        (rv = need_str(fn, "kind", kind, NULL, err)) ||
        (rv = write_stmt(s, ST_ACCUM_SET, fn, &st, err)))
        return rv;
    return run_write(s, st,
                     bind_args(st, "iittt", (int64_t)app_id, (int64_t)acc_id,
                               name, kind, value),
                     fn, NULL, err);
}
