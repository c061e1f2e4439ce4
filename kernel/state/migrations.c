/*
 * The schema of the state database (see migrations.h). Scripts are only
 * ever appended: a released script is never edited, a change is a new
 * migration.
 */
#include "state/migrations.h"

#include <stddef.h>

static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "INSERT INTO meta(key, value) VALUES('format', '" EM_STATE_FORMAT "');"
    "CREATE TABLE applications("
    "  app_id INTEGER PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,"
    "  start_ms INTEGER NOT NULL, end_ms INTEGER);"
    "CREATE TABLE jobs("
    "  job_id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL, description TEXT,"
    "  pool TEXT, job_group TEXT, status TEXT NOT NULL, error TEXT,"
    "  submit_ms INTEGER NOT NULL, end_ms INTEGER);"
    "CREATE INDEX jobs_status ON jobs(status);"
    "CREATE TABLE stage_attempts("
    "  stage_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  job_id INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,"
    "  num_tasks INTEGER NOT NULL, status TEXT NOT NULL, failure TEXT,"
    "  submit_ms INTEGER NOT NULL, end_ms INTEGER,"
    "  PRIMARY KEY(stage_id, attempt));"
    "CREATE TABLE tasks("
    "  task_id INTEGER PRIMARY KEY, stage_id INTEGER NOT NULL,"
    "  stage_attempt INTEGER NOT NULL, partition INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL, executor_id TEXT NOT NULL,"
    "  speculative INTEGER NOT NULL, locality TEXT NOT NULL,"
    "  status TEXT NOT NULL, error TEXT, launch_ms INTEGER NOT NULL,"
    "  end_ms INTEGER);"
    "CREATE INDEX tasks_stage ON tasks(stage_id, stage_attempt);"
    "CREATE TABLE executors("
    "  executor_id TEXT PRIMARY KEY, host TEXT NOT NULL,"
    "  slots INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT,"
    "  added_ms INTEGER NOT NULL, removed_ms INTEGER);"
    "CREATE TABLE map_outputs("
    "  shuffle_id INTEGER NOT NULL, map_index INTEGER NOT NULL,"
    "  executor_id TEXT NOT NULL, bytes INTEGER NOT NULL,"
    "  PRIMARY KEY(shuffle_id, map_index));"
    "CREATE INDEX map_outputs_executor ON map_outputs(executor_id);"
    "CREATE TABLE pools("
    "  name TEXT PRIMARY KEY, parent TEXT, mode TEXT NOT NULL,"
    "  weight REAL NOT NULL, min_share INTEGER NOT NULL,"
    "  max_share INTEGER NOT NULL);"
    "CREATE TABLE plugins("
    "  name TEXT PRIMARY KEY, version TEXT NOT NULL, path TEXT NOT NULL,"
    "  loaded_ms INTEGER NOT NULL);"
    "CREATE TABLE events("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, detail TEXT);",

    /* 2: shuffles, so a restarted kernel knows which ids were registered. */
    "CREATE TABLE shuffles("
    "  shuffle_id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL,"
    "  stage_id INTEGER NOT NULL, num_maps INTEGER NOT NULL,"
    "  num_reduces INTEGER NOT NULL, status TEXT NOT NULL);",

    /* 3: shared variables and persisted blocks. blocks: where each cached
     * partition lives (executors report them with their tasks); a row goes
     * with its executor, its dataset's unpersist or its application.
     * accumulators: each application's accumulators and their merged
     * values (value rendered as text: a number, or the JSON of a user
     * accumulator's record). broadcasts: each broadcast and its state
     * (live, unpersisted, destroyed). */
    "CREATE TABLE blocks("
    "  app_id INTEGER NOT NULL, dataset INTEGER NOT NULL,"
    "  partition INTEGER NOT NULL, executor_id TEXT NOT NULL,"
    "  tier TEXT NOT NULL, bytes INTEGER NOT NULL,"
    "  PRIMARY KEY(app_id, dataset, partition, executor_id));"
    "CREATE INDEX blocks_executor ON blocks(executor_id);"
    "CREATE TABLE accumulators("
    "  app_id INTEGER NOT NULL, acc_id INTEGER NOT NULL, name TEXT,"
    "  kind TEXT NOT NULL, value TEXT,"
    "  PRIMARY KEY(app_id, acc_id));"
    "CREATE TABLE broadcasts("
    "  app_id INTEGER NOT NULL, bcast_id INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL, chunks INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  PRIMARY KEY(app_id, bcast_id));",
};

int em_state_migration_count(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *em_state_migration_sql(int version)
{
    if (version < 1 || version > em_state_migration_count())
        return NULL;
    return migrations[version - 1];
}
