/*
 * shuffle_support.h — what shuffle_ops_test and shuffle_fault_test share:
 * sessions with testfn (TESTFN_PLUGIN) in a temp ember.local.dir, closed
 * by the teardown when a test fails half way, reads of the session's
 * state store (the helpers of tests/support/driver_support.h come with
 * it).
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

#endif /* EMBER_TESTS_SHUFFLE_SUPPORT_H */
