/*
 * state/store.h — the kernel's state in SQLite: applications, jobs, stage
 * attempts, tasks, executors, map-output locations, shuffles, pools, loaded
 * plugins and events.
 *
 * Threading: an em_store is one SQLite connection and belongs to one thread
 * (the kernel's loop thread); no function here may be called on the same
 * store from two threads. Different stores (in this or other processes) may
 * share a file: SQLite runs in WAL mode, so readers never block the writer.
 *
 * Transactions: the first write after a flush opens a transaction
 * (BEGIN IMMEDIATE); every later write joins it; em_store_flush commits it.
 * The kernel flushes once per loop turn, before it sleeps, so the cost of a
 * commit is paid per turn, not per row. Other connections see nothing of a
 * turn until it is flushed, then all of it.
 *
 * Values: times are wall-clock milliseconds since the Unix epoch. Ids are
 * stored as SQLite integers and must not exceed INT64_MAX (EMBER_EINVAL).
 * Strings are borrowed for the duration of the call; a string parameter may
 * be NULL only where marked nullable (EMBER_EINVAL otherwise, also for an
 * empty string or a value outside the listed set).
 *
 * Errors: a failed write is undone and the writes before it in the same
 * turn stay pending, unless SQLite had to roll back the whole transaction
 * (I/O error, disk full, out of memory): em_store_pending then reads 0 and
 * the turn's writes are lost. SQLite errors map to ember statuses as follows, the message
 * keeping the database path and SQLite's own text: out of memory ENOMEM,
 * disk full ENOSPC, I/O error or cannot open EIO, corrupt or not a
 * database EINVAL, read-only EUNSUPPORTED, constraint (duplicate key)
 * EEXIST, busy or locked past the 5 s busy timeout ETIMEDOUT, anything else
 * EINTERNAL.
 */
#ifndef EM_STATE_STORE_H
#define EM_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

typedef struct em_store em_store;

/*
 * Opens (creating if missing) the state database at path for reading and
 * writing: WAL journal, synchronous=NORMAL, busy timeout 5000 ms, then
 * applies the missing migrations, each in its own transaction. Refuses,
 * leaving the file untouched:
 *   - a file that is not an SQLite database or is corrupt (EMBER_EINVAL);
 *   - an SQLite database that has tables but no ember meta (EMBER_EINVAL,
 *     "... is not an ember state database ...");
 *   - a schema newer than this build (EMBER_EVERSION, "state database PATH
 *     has schema version N, newer than this ember (M): upgrade ember").
 * On success *out owns the connection (free with em_store_close); on
 * failure *out is NULL. Any thread; the store then belongs to that thread.
 */
ember_status em_store_open(em_store **out, const char *path, ember_error *err);

/*
 * For tests and tools: as em_store_open, but migrates no further than
 * version (1 <= version <= em_store_latest_schema_version()). A database
 * already at a later (but known) version is opened as it is. Writes that
 * need tables of a later version fail with EMBER_EUNSUPPORTED. Used by the
 * tests to build a database of an older version and prove the upgrade.
 */
ember_status em_store_open_at_version(em_store **out, const char *path,
                                      int version, ember_error *err);

/*
 * Opens an existing state database read-only (SQLITE_OPEN_READONLY); never
 * migrates or otherwise writes. Refuses what em_store_open refuses, a
 * missing file (EMBER_EIO), an empty database (EMBER_ENOTFOUND) and a
 * schema older or newer than this build (EMBER_EVERSION, saying which and
 * what to do). Reads see the state as of the writer's last flush. Every
 * write function returns EMBER_EUNSUPPORTED; em_store_flush is a no-op.
 */
ember_status em_store_open_readonly(em_store **out, const char *path,
                                    ember_error *err);

/*
 * Flushes (commits) pending writes, finalizes the statements and closes the
 * connection. A failed final commit is lost silently: call em_store_flush
 * first to see it. NULL is a no-op.
 */
void em_store_close(em_store *s);

/* The schema version of the open database (its PRAGMA user_version). */
int em_store_schema_version(const em_store *s);

/* The schema version this build creates and understands. */
int em_store_latest_schema_version(void);

/*
 * Commits the open write transaction, if any; otherwise does nothing and
 * costs nothing. On failure the transaction is rolled back (its writes are
 * lost) and the error returned; the store stays usable.
 */
ember_status em_store_flush(em_store *s, ember_error *err);

/* Non-zero while a write transaction is open (writes await a flush). */
int em_store_pending(const em_store *s);

/* Ids to continue from after a restart. */
typedef struct em_store_ids {
    uint64_t app, job, stage, task, shuffle;
} em_store_ids;

/*
 * Fills *out with MAX(id) + 1 of each table (1 for an empty table), pending
 * writes included. shuffle covers both the shuffles and the map_outputs
 * tables. Works on a read-only store too.
 */
ember_status em_store_next_ids(em_store *s, em_store_ids *out,
                               ember_error *err);

/*
 * Marks every application, job, stage attempt and task whose status is
 * still RUNNING as INTERRUPTED with end time now_ms; *count (nullable) is
 * the number of jobs marked. Called by a kernel at start-up, for the work
 * a previous kernel left unfinished.
 */
ember_status em_store_mark_interrupted(em_store *s, int64_t now_ms,
                                       int64_t *count, ember_error *err);

/* Records an application (status RUNNING). EMBER_EEXIST if app_id is taken. */
ember_status em_store_app_begin(em_store *s, uint64_t app_id, const char *name,
                                int64_t start_ms, ember_error *err);

/* Sets an application's final status (free text) and end time.
 * EMBER_ENOTFOUND for an unknown app_id. */
ember_status em_store_app_end(em_store *s, uint64_t app_id, const char *status,
                              int64_t end_ms, ember_error *err);

/* Records a submitted job (status RUNNING). EMBER_EEXIST if job_id is taken. */
ember_status em_store_job_begin(em_store *s, uint64_t job_id, uint64_t app_id,
                                const char *description /* nullable */,
                                const char *pool /* nullable */,
                                const char *group /* nullable */,
                                int64_t submit_ms, ember_error *err);

/* Ends a job: status SUCCEEDED, FAILED or CANCELLED. EMBER_ENOTFOUND for
 * an unknown job_id. */
ember_status em_store_job_end(em_store *s, uint64_t job_id, const char *status,
                              const char *error /* nullable */, int64_t end_ms,
                              ember_error *err);

/*
 * Records one attempt of a stage (row per (stage_id, attempt), status
 * RUNNING); kind is "shuffle_map" or "result". EMBER_EEXIST if that attempt
 * is already recorded.
 */
ember_status em_store_stage_begin(em_store *s, uint64_t stage_id,
                                  uint32_t attempt, uint64_t job_id,
                                  const char *kind, const char *name,
                                  uint32_t num_tasks, int64_t submit_ms,
                                  ember_error *err);

/* Ends a stage attempt: status SUCCEEDED, FAILED or CANCELLED.
 * EMBER_ENOTFOUND for an unknown attempt. */
ember_status em_store_stage_end(em_store *s, uint64_t stage_id,
                                uint32_t attempt, const char *status,
                                const char *failure /* nullable */,
                                int64_t end_ms, ember_error *err);

/*
 * Records a launched task attempt (status RUNNING); locality is
 * PROCESS_LOCAL, NODE_LOCAL or ANY; speculative is a boolean. EMBER_EEXIST
 * if task_id is taken.
 */
ember_status em_store_task_begin(em_store *s, uint64_t task_id,
                                 uint64_t stage_id, uint32_t stage_attempt,
                                 uint32_t partition, uint32_t attempt,
                                 const char *executor_id, int speculative,
                                 const char *locality, int64_t launch_ms,
                                 ember_error *err);

/* Ends a task: status SUCCESS, FAILED, FETCH_FAILED, KILLED or LOST.
 * EMBER_ENOTFOUND for an unknown task_id. */
ember_status em_store_task_end(em_store *s, uint64_t task_id,
                               const char *status,
                               const char *error /* nullable */,
                               int64_t end_ms, ember_error *err);

/* Records an executor as ACTIVE; a re-registered id becomes ACTIVE again
 * with the new host, slots and time (its removal is forgotten). */
ember_status em_store_executor_add(em_store *s, const char *executor_id,
                                   const char *host, uint32_t slots,
                                   int64_t added_ms, ember_error *err);

/* Marks an executor REMOVED with the reason and time. EMBER_ENOTFOUND for
 * an unknown executor_id. */
ember_status em_store_executor_remove(em_store *s, const char *executor_id,
                                      const char *reason, int64_t removed_ms,
                                      ember_error *err);

/* Sets where map output (shuffle_id, map_index) lives, replacing any
 * earlier location. */
ember_status em_store_map_output_set(em_store *s, uint64_t shuffle_id,
                                     uint32_t map_index,
                                     const char *executor_id, uint64_t bytes,
                                     ember_error *err);

/* Forgets one map output; removing one that is not there is not an error. */
ember_status em_store_map_output_remove(em_store *s, uint64_t shuffle_id,
                                        uint32_t map_index, ember_error *err);

/* Forgets every map output held by executor_id (none is not an error). */
ember_status em_store_map_output_remove_executor(em_store *s,
                                                 const char *executor_id,
                                                 ember_error *err);

/* Forgets every map output of shuffle_id (none is not an error). */
ember_status em_store_map_output_remove_shuffle(em_store *s,
                                                uint64_t shuffle_id,
                                                ember_error *err);

/*
 * Records a registered shuffle (status ACTIVE). Needs schema version 2.
 * EMBER_EEXIST if shuffle_id is taken.
 */
ember_status em_store_shuffle_add(em_store *s, uint64_t shuffle_id,
                                  uint64_t app_id, uint64_t stage_id,
                                  uint32_t num_maps, uint32_t num_reduces,
                                  ember_error *err);

/* Marks a shuffle REMOVED. Needs schema version 2. EMBER_ENOTFOUND for an
 * unknown shuffle_id. */
ember_status em_store_shuffle_remove(em_store *s, uint64_t shuffle_id,
                                     ember_error *err);

/*
 * Inserts or replaces the pool called name; mode is FAIR or FIFO; weight
 * is finite and >= 0; max_share 0 means unlimited.
 */
ember_status em_store_pool_set(em_store *s, const char *name,
                               const char *parent /* nullable */,
                               const char *mode, double weight,
                               uint32_t min_share, uint32_t max_share,
                               ember_error *err);

/* Records a loaded plugin; loading the same name again (e.g. after a
 * restart) replaces the earlier row. */
ember_status em_store_plugin_add(em_store *s, const char *name,
                                 const char *version, const char *path,
                                 int64_t loaded_ms, ember_error *err);

/* Appends an event (sequence number assigned by SQLite, increasing, never
 * reused); detail_json is stored as given. */
ember_status em_store_event(em_store *s, int64_t time_ms, const char *kind,
                            const char *detail_json /* nullable */,
                            ember_error *err);

/*
 * For tests and CLIs: runs one SQL statement that SQLite reports as
 * read-only (sqlite3_stmt_readonly: a SELECT, or a reading PRAGMA such as
 * user_version, but not journal_mode; anything else is EMBER_EINVAL, as is
 * bad SQL or more than one statement) and stores the first column of the
 * first row in *out (SQL NULL reads as 0). No row is EMBER_ENOTFOUND. Sees
 * the pending writes of this store.
 */
ember_status em_store_query_int(em_store *s, const char *sql, int64_t *out,
                                ember_error *err);

/*
 * As em_store_query_int, but copies the first column of the first row as
 * text into buf[0..cap) (NUL-terminated; SQL NULL is ""). EMBER_ENOSPC
 * (buf holds "") when it does not fit.
 */
ember_status em_store_query_text(em_store *s, const char *sql, char *buf,
                                 size_t cap, ember_error *err);

/*
 * For the scheduler's write paths, which must keep scheduling when the
 * store fails: when st is not EMBER_OK, logs err's message once as an
 * error from source and adds one to *errors (a counter tests assert on).
 */
void em_store_report(const char *source, uint64_t *errors, ember_status st,
                     const ember_error *err);

/*
 * Deletes a state database that no kernel has open: the file and its
 * "-wal" and "-shm" companions. Missing files are not an error;
 * EMBER_EIO names the first file that could not be removed.
 */
ember_status em_store_remove_files(const char *path, ember_error *err);

/*
 * broadcasts (schema 3): records broadcast bcast_id of application app_id,
 * bytes long in chunks pieces, with status "live", "unpersisted" or
 * "destroyed" (EMBER_EINVAL otherwise); a second call for the same
 * broadcast replaces its row. EMBER_EUNSUPPORTED below schema 3.
 */
ember_status em_store_broadcast_set(em_store *s, uint64_t app_id,
                                    uint64_t bcast_id, uint64_t bytes,
                                    uint32_t chunks, const char *status,
                                    ember_error *err);

/*
 * blocks (schema 3): where the cached blocks of persisted datasets live.
 * em_store_block_set records that executor_id holds partition `partition`
 * of the application's dataset in tier "MEMORY", "DISK" or "OFF_HEAP"
 * (EMBER_EINVAL otherwise), bytes long, replacing that executor's earlier
 * row for the block. The removals forget one executor's copy of a block,
 * everything an executor held, a dataset's blocks, an application's, or
 * all rows; removing rows that are not there is not an error.
 * EMBER_EUNSUPPORTED below schema 3.
 */
ember_status em_store_block_set(em_store *s, uint64_t app_id,
                                uint64_t dataset, uint32_t partition,
                                const char *executor_id, const char *tier,
                                uint64_t bytes, ember_error *err);
/* See em_store_block_set. */
ember_status em_store_block_remove(em_store *s, uint64_t app_id,
                                   uint64_t dataset, uint32_t partition,
                                   const char *executor_id, ember_error *err);
/* See em_store_block_set. */
ember_status em_store_block_remove_executor(em_store *s,
                                            const char *executor_id,
                                            ember_error *err);
/* See em_store_block_set. */
ember_status em_store_block_remove_dataset(em_store *s, uint64_t app_id,
                                           uint64_t dataset, ember_error *err);
/* See em_store_block_set. */
ember_status em_store_block_remove_app(em_store *s, uint64_t app_id,
                                       ember_error *err);
/* See em_store_block_set. */
ember_status em_store_block_remove_all(em_store *s, ember_error *err);

/*
 * An application's accumulator (schema 3): its name (NULL: unnamed), kind
 * ("int64", "double" or the merge function's name) and value as text (a
 * number, or the JSON of a user value's record; NULL while it has none).
 * Inserts or replaces the row (app_id, acc_id).
 */
ember_status em_store_accum_set(em_store *s, uint64_t app_id,
                                uint64_t acc_id, const char *name,
                                const char *kind, const char *value,
                                ember_error *err);

#endif /* EM_STATE_STORE_H */
