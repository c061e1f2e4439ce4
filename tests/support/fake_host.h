/*
 * fake_host.h — a stand-in ember_host_api for plugin tests.
 *
 * Plugin tests link plugin sources statically and hand them this table
 * instead of the kernel's. It is deliberately small and predictable:
 *   - alloc/realloc/free are malloc's, with a count of live blocks so a
 *     test can check that a plugin released what it took;
 *   - log keeps the last line (and its level and source) for assertions;
 *   - report_error keeps the last reported error;
 *   - config is a small table a test fills with em_fake_host_set_config;
 *     config_get_size / config_get_duration_ms parse it as the host.h
 *     contract describes (good enough for tests, not the kernel's parser);
 *   - counters live in a small fixed array;
 *   - buf_init makes realloc-backed growable buffers.
 *
 * Every slot may be called from any thread (a mutex guards the tables).
 * The em_fake_host_* helpers are for the test's main thread.
 */
#ifndef EMBER_TESTS_FAKE_HOST_H
#define EMBER_TESTS_FAKE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "ember/host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits of the fake's fixed tables. */
#define EM_FAKE_CONFIG_MAX 32      /* distinct config keys */
#define EM_FAKE_CONFIG_TEXT 256    /* bytes per key or value, with NUL */
#define EM_FAKE_COUNTER_MAX 64     /* distinct counters */
#define EM_FAKE_LOG_LINE 1024      /* bytes of the captured log line */

/* The fake host table; the same pointer on every call, never NULL. */
const ember_host_api *em_fake_host(void);

/*
 * Forgets all config values, the captured log line and reported error, and
 * every counter, and zeroes the log count. The live-allocation count is
 * kept (it tracks memory, not test state). Call it in each test's setup.
 */
void em_fake_host_reset(void);

/*
 * Sets key to value (both copied); value NULL unsets key. A key or value
 * too long for the table, or a full table, aborts the test program with a
 * message (a bug in the test, not in the code under test).
 */
void em_fake_host_set_config(const char *key, const char *value);

/* The last line logged (formatted, no newline), "" when none yet. */
const char *em_fake_host_last_log(void);

/* The level of the last line logged, -1 when none yet. */
int em_fake_host_last_log_level(void);

/* The source of the last line logged, "" when none yet. */
const char *em_fake_host_last_log_source(void);

/* How many lines were logged since the last reset. */
unsigned em_fake_host_log_count(void);

/*
 * Lines at levels more verbose than `level` are reported as disabled by
 * log_enabled and are not captured by log. Default EMBER_LOG_TRACE (all);
 * reset restores the default.
 */
void em_fake_host_set_log_level(int level);

/* The last error passed to report_error (code EMBER_OK and "" when none);
 * *source (when source is not NULL) gets its source string. */
const ember_error *em_fake_host_last_report(const char **source);

/* The value of counter `name`, 0 when it was never registered. */
int64_t em_fake_host_counter(const char *name);

/* Blocks from alloc/realloc/buf_init not yet freed, over the process. */
long em_fake_host_live_allocs(void);

/*
 * Makes the next `n` allocations (alloc, realloc, buffer growth) fail, to
 * test out-of-memory paths; 0 turns failure injection off. reset clears it.
 */
void em_fake_host_fail_allocs(unsigned n);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_TESTS_FAKE_HOST_H */
