/*
 * shuffle_support.h — what the engine tests that read the session's state
 * store share (shuffle_ops_test, shuffle_fault_test, checkpoint_test,
 * locality_test, accum_test, replication_test, tests/fault/fault_test):
 * sessions with testfn (TESTFN_PLUGIN) in a temp ember.local.dir, closed
 * by the teardown when a test fails half way, reads of the session's
 * state store, executors killed with their blocks, and the datasets and
 * checks of testfn's functions (the helpers of
 * tests/support/driver_support.h come with it).
 *
 * Compiled into each of those tests (tests/engine/CMakeLists.txt); the
 * helpers fail the running cmocka test on error. Threads: the test's
 * main thread only.
 */
#ifndef EMBER_TESTS_SHUFFLE_SUPPORT_H
#define EMBER_TESTS_SHUFFLE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "driver_support.h"
#include "ember/ember.h"

/* A session and the temp directory it uses as ember.local.dir, where its
 * state store (ember-driver-*\/ember.db) lives. */
typedef struct sess {
    ember_session *s;
    char dir[256];
    char db[1024];
} sess;

/*
 * Opens a session on master with testfn, app name app, ember.local.dir a
 * new temp directory "/tmp/ember-<app>-XXXXXX" and the extra settings
 * (NULL-terminated, nullable). The session is tracked for close_live
 * until sess_close (or sess_track(x, 0)); x must live in static storage.
 */
void sess_open(sess *x, const char *app, const char *master,
               const char *const *extra);

/* As sess_open, with the plugins given (NULL-terminated; nullable: none)
 * instead of testfn alone. */
void sess_open_plugins(sess *x, const char *app, const char *master,
                       const char *const *extra,
                       const char *const *plugins);

/* Starts (on) or stops tracking x for close_live: a session that outlives
 * one test, such as a group's, is not tracked. */
void sess_track(sess *x, int on);

/*
 * A cmocka teardown: closes the tracked sessions a failed test left open
 * and removes their directories (their executor processes would
 * otherwise outlive the test). Returns 0.
 */
int close_live(void **state);

/* Closes the session; its shuffle files and state directory must be gone
 * soon after (executor processes delete theirs as they exit); then
 * removes its directory. */
void sess_close(sess *x);

/* The first column of the first row of the SQL (printf format) over x's
 * state store, or -1 when there is no row. */
int64_t db_int(const sess *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first column of the first row of sql as text into out ("" without
 * a row). */
void db_text(const sess *x, char *out, size_t cap, const char *sql);

/* Waits until the store holds the end of every job the session ran (the
 * kernel writes it once per loop turn, so it may lag an action). */
void store_settle(const sess *x);

/* Waits (~60 s: block copies are made after the job that stored them)
 * until the count query sql reads want over x's state store; else fails
 * the test naming what and the count last read. */
void wait_rows(const sess *x, int64_t want, const char *what,
               const char *sql);

/*
 * SIGKILLs the executor process of local-cluster executor id (an
 * executor_id of x's state store) and waits until the kernel has dropped
 * its rows of the blocks table; returns how many rows it had (at least 1:
 * the test fails when it held no block or has no process).
 */
int64_t kill_block_holder(const sess *x, const char *id);

/* ---- datasets and checks ----------------------------------------------- */

/* range(0, n) in parts partitions on s through testfn.counted_file(path)
 * (which appends each batch's record count to the file at path, from any
 * process), persisted at level (NULL: not persisted). */
ember_rdd *counted_file_range(ember_session *s, const char *path, int64_t n,
                              uint32_t parts, const char *level);

/* Records testfn.counted_file has mapped into the file at path (0 when
 * there is no file yet). */
int64_t counted_file_total(const char *path);

/* Checks that got holds one (k, sum) per k in [0, m) with sum the sum of
 * the i in [0, n) with i mod m == k (ints); a sum may also be a tuple (a
 * group) whose elements add up to it. */
void check_mod_sums(const ember_records *got, int64_t n, int64_t m);

#endif /* EMBER_TESTS_SHUFFLE_SUPPORT_H */
