/*
 * test_util.h — small helpers any test may use, with libc, cmocka and the
 * SDK's headers only: sleeping, temp trees and their entries, the
 * executor processes a local-cluster session starts, strings and records
 * sorted, strings joined, and a check that a message says what it
 * should.
 *
 * Built as the static library ember_test_util (tests/support); the
 * helpers that check fail the running cmocka test, so they run on the
 * test's main thread (sleep_ms, rmtree, find_entry, executor_pid and
 * sort_strs touch no cmocka state and run on any thread).
 */
#ifndef EMBER_TESTS_TEST_UTIL_H
#define EMBER_TESTS_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- files and processes ----------------------------------------------- */

/* Sleeps ms milliseconds (through signals). */
void sleep_ms(long ms);

/* Removes a directory tree, or a file (best effort). */
void rmtree(const char *path);

struct stat;
/* Calls visit(path, its lstat, ctx) for every entry under dir that is
 * not a directory, at any depth, until visit returns nonzero; returns
 * that value (0 when every entry was visited). Unreadable entries are
 * skipped. */
int walk_files(const char *dir,
               int (*visit)(const char *path, const struct stat *st,
                            void *ctx),
               void *ctx);

/* The name of an entry of dir starting with prefix into out ("" when
 * there is none). */
void find_entry(const char *dir, const char *prefix, char *out, size_t cap);

/* Waits (up to 5 s) until dir has no entry starting with prefix; the
 * entry left, or "" (in out). */
void wait_gone(const char *dir, const char *prefix, char *out, size_t cap);

/* The names in dir (but "." and ".."; the first 64), sorted and joined
 * by single spaces, into out; the test fails when dir cannot be read. */
void list_dir(const char *dir, char *out, size_t cap);

/* The pid of this process's child whose command line holds "--id id"
 * (an ember-executor of a local-cluster session), or -1. */
pid_t executor_pid(const char *id);

/* ---- strings ----------------------------------------------------------- */

/* Sorts v[0..n) (C strings) bytewise. */
void sort_strs(char **v, size_t n);

/* v[0..n) in one malloc'd string: sep between two of them, end after the
 * last (nothing at all when n is 0). */
char *join_strs(char *const *v, size_t n, const char *sep, const char *end);

/* An encoded record (or element): its bytes, borrowed. */
typedef struct rec_span {
    const uint8_t *p;
    size_t len;
} rec_span;

/* Sorts v[0..n) in the records' order (ember_rec_compare). */
void sort_rec_spans(rec_span *v, size_t n);

/* Fails the test unless hay (nullable) contains needle. */
void assert_contains(const char *hay, const char *needle);

#endif /* EMBER_TESTS_TEST_UTIL_H */
