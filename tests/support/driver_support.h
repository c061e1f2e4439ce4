/*
 * driver_support.h — what the tests that drive the engine through the C
 * API (ember/ember.h) share: sessions and actions that must succeed (or
 * fail), records read as pairs, and the word count several of them
 * compare with a reference made in the test. The helpers of test_util.h
 * come with it.
 *
 * Compiled into each test that uses it (tests/engine, tests/service:
 * ember_driver_support() in tests/CMakeLists.txt), which links libember
 * or the static kernel. The helpers fail the running cmocka test on
 * error, so they run on the test's main thread only.
 */
#ifndef EMBER_TESTS_DRIVER_SUPPORT_H
#define EMBER_TESTS_DRIVER_SUPPORT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/ember.h"
#include "ember/record.h"
#include "test_util.h"

/* ---- sessions and actions ---------------------------------------------- */

/*
 * Opens a session on master with the app name, settings (NULL-terminated)
 * and the one plugin given, each nullable; the test fails when it cannot.
 * The caller closes the session.
 */
ember_session *session_open(const char *master, const char *app,
                            const char *const *conf, const char *plugin);

/* The function name without an argument. */
ember_fn fn0(const char *name);

/* A function with an int argument (tmp, cap bytes, holds the encoding and
 * must outlive the ember_fn). */
ember_fn fn_int(const char *name, uint8_t *tmp, size_t cap, int64_t v);

/* collect(r), which must succeed (r must not be NULL); the caller frees
 * the records. */
ember_records collect_recs(ember_rdd *r);

/* collect(r), which must fail; the message (a static buffer, valid until
 * the next call), and the status in *code (nullable). */
const char *collect_error(ember_rdd *r, ember_status *code);

/* count(r), which must succeed. */
uint64_t count_of(ember_rdd *r);

/* Settings under which a task of ~2 s times out: ember.task.timeout=200ms,
 * with small result batches (4k) for the task to check it often. */
extern const char *const g_timeout_conf[];

/*
 * Counts on s, which runs with g_timeout_conf and plugin testfn, 40000
 * ints in one partition through testfn.sleep_ms at 50 ms a batch (~40
 * batches: far over the timeout). The count must fail; returns its
 * message (a static buffer, valid until the next call) and the range
 * before the slow map in *quick (nullable).
 */
const char *count_past_timeout(ember_session *s, ember_rdd **quick);

/*
 * An action run on a thread of its own while the test does something
 * else (such as killing an executor): collect (when collect is set) or
 * count of rdd. Once bg_join returns, st and err say how it ended and out
 * (collect) or n (count) hold its result; the caller frees out. The
 * struct must not move until then (static storage when the thread may
 * outlive a failed test).
 */
typedef struct bg_action {
    ember_rdd *rdd;
    int collect;
    uint64_t n;
    ember_records out;
    ember_status st;
    ember_error err;
    pthread_t thread;
} bg_action;

/* Starts collect (collect != 0) or count of rdd on a new thread. */
void bg_start(bg_action *a, ember_rdd *rdd, int collect);

/* Waits for a's action to end. */
void bg_join(bg_action *a);

/* ---- records ----------------------------------------------------------- */

/* A cursor over the records of r (whose bytes must outlive it). */
ember_batch_cursor records_cursor(const ember_records *r);

/* Reads the next record of c as a pair: its first two elements into *k
 * and *v (the test fails when it has fewer). 0 at the end, else 1. */
int next_pair(ember_batch_cursor *c, ember_value *k, ember_value *v);

/* Records as JSON arrays joined by single spaces ("[1] [2,\"a\"]"),
 * sorted first (ember_rec_compare) when sorted is set; malloc'd. */
char *records_json(const ember_records *r, int sorted);

/* collect(r), which must succeed, as records_json renders it (malloc'd). */
char *collect_json(ember_rdd *r, int sorted);

/* "[0] [1] ... [n-1]", the rendering of range(0, n) (malloc'd). */
char *ints_json(int64_t n);

/* "[0,s0] [1,s1] ... [m-1,s(m-1)]" with sk the sum of the i in [0, n)
 * with i mod m == k: a reduce_by_key(std.sum) of the pairs
 * (i mod m, i), sorted (malloc'd). */
char *mod_sums_json(int64_t n, int64_t m);

/* The lineage description of r (ember_rdd_describe), which must succeed
 * (malloc'd). */
char *lineage_of(const ember_rdd *r);

/* ---- the test plugin testfn -------------------------------------------- */

/* range(0, n) in 2 partitions on s through testfn.counted (an identity map
 * that counts the records it maps in the host counter "testfn.counted");
 * the session must have loaded testfn. */
ember_rdd *counted_range(ember_session *s, int64_t n);

/* Records testfn.counted has mapped in this process so far (tasks of
 * local[N], which run in this process; 0 before its first use). */
int64_t testfn_counted(void);

/* ---- word count -------------------------------------------------------- */

/* Sorts lines[0..n) and joins them, each followed by '\n', into one
 * malloc'd string; frees every line (not the array). */
char *join_sorted_lines(char **lines, size_t n);

/* The (word, count) pairs of counts (a string and an int each) as sorted
 * "word\tcount\n" lines (malloc'd), the form of a test's reference. */
char *word_counts_text(const ember_records *counts);

/* Word count of the text file path in (at least) slices partitions on s
 * (flat_map std.split_words, then count_by_value), as word_counts_text
 * renders it. */
char *count_words(ember_session *s, const char *path, uint32_t slices);

#endif /* EMBER_TESTS_DRIVER_SUPPORT_H */
