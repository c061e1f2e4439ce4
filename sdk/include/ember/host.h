/*
 * ember/host.h — the host services table (ember_host_api).
 *
 * Plugins never link against the host; every service they use reaches them
 * through this table, handed to the plugin's init and to component calls
 * that take a `host` argument. The table is size-prefixed and append-only:
 * a newer host may have more slots than a plugin knows (harmless), an older
 * host fewer. Before calling a slot added after ABI 0.1, check it with
 * EMBER_HOST_HAS(host, slot).
 *
 * Threading: every slot may be called from any thread, concurrently.
 * Ownership: strings passed in are borrowed for the call only; memory from
 * alloc/realloc is released with free; buffers from buf_init are released
 * with ember_buf_release.
 */
#ifndef EMBER_HOST_H
#define EMBER_HOST_H

#include "ember/abi.h"
#include "ember/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels, most severe first. */
typedef enum ember_log_level {
    EMBER_LOG_ERROR = 0,
    EMBER_LOG_WARN = 1,
    EMBER_LOG_INFO = 2,
    EMBER_LOG_DEBUG = 3,
    EMBER_LOG_TRACE = 4
} ember_log_level;

typedef struct ember_host_api {
    uint32_t size;      /* sizeof(ember_host_api) as the host compiled it */
    uint16_t abi_major; /* the host's EMBER_ABI_MAJOR */
    uint16_t abi_minor; /* the host's EMBER_ABI_MINOR */

    /* --- allocation (ABI 0.1) ---
     * alloc(n): n bytes, uninitialised, or NULL when out of memory (never
     * aborts). realloc as C's. free(NULL) is a no-op. The host may account
     * these bytes to the calling task's memory budget. */
    void *(*alloc)(size_t n);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);

    /* --- logging (ABI 0.1) ---
     * log(level, source, fmt, ...): one line; source names the plugin or
     * component ("std.split_words"). log_enabled(level) is non-zero when a
     * line at that level would be written: check before costly formatting. */
    void (*log)(int level, const char *source, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    int (*log_enabled)(int level);

    /* --- error reporting (ABI 0.1) ---
     * report_error(source, err): records an error that no caller will see
     * (a plugin's background thread, a failed cleanup) in the host's log
     * and event history. Errors that have a caller are returned instead. */
    void (*report_error)(const char *source, const ember_error *err);

    /* --- configuration lookup (ABI 0.1) ---
     * config_get(key, out, cap, &len): copies the effective value of key
     * (NUL-terminated) into out[0..cap) and sets len to its length without
     * the NUL. EMBER_ENOTFOUND when unset; EMBER_ENOSPC when cap <= len
     * (len still set, so the caller can retry).
     * config_get_size(key, dflt, &bytes, err): a size with optional suffix
     * (b, k, m, g, t; binary multiples: 1k = 1024); dflt when unset.
     * config_get_duration_ms(key, dflt, &ms, err): a duration with optional
     * suffix (ms, s, m, min, h, d; bare numbers are ms); dflt when unset.
     * Malformed values give EMBER_EINVAL with the key and value in err. */
    ember_status (*config_get)(const char *key, char *out, size_t cap,
                               size_t *len);
    ember_status (*config_get_size)(const char *key, int64_t dflt,
                                    int64_t *bytes, ember_error *err);
    ember_status (*config_get_duration_ms)(const char *key, int64_t dflt,
                                           int64_t *ms, ember_error *err);

    /* --- metrics counters (ABI 0.1) ---
     * counter_register(name, &id): a process-wide monotonic counter (the
     * same name gives the same id). counter_add(id, delta) is lock-free
     * and cheap enough for per-batch use; unknown ids are ignored. */
    ember_status (*counter_register)(const char *name, uint32_t *id);
    void (*counter_add)(uint32_t id, int64_t delta);

    /* --- buffers (ABI 0.1) ---
     * buf_init(b, cap): makes b a host-owned growable buffer with at least
     * cap bytes of room; release it with ember_buf_release(b). */
    ember_status (*buf_init)(ember_buf *b, size_t cap);

    /* --- executors and tasks (ABI 0.2) ---
     * executor_start(endpoint, id, slots, &handle, err): runs an executor
     * with `slots` task slots inside this process (threads), registering
     * with the kernel at endpoint as executor `id`; the local cluster
     * manager uses it. EMBER_EUNSUPPORTED in a process without the
     * runtime. executor_stop(handle) stops it (its running tasks fail) and
     * frees it; NULL-safe.
     * task_partition(): the partition index of the task running on the
     * calling thread, or -1 outside a task (map_partitions_with_index).
     * task_attempt(): that task's attempt number, or -1. */
    ember_status (*executor_start)(const char *endpoint,
                                   const char *executor_id, uint32_t slots,
                                   void **handle, ember_error *err);
    void (*executor_stop)(void *handle);
    int64_t (*task_partition)(void);
    int64_t (*task_attempt)(void);

    /* --- shared variables (ABI 0.3; docs/engine.md "Shared variables") ---
     * Callable from a task's thread only; elsewhere EMBER_EUNSUPPORTED.
     * broadcast_value(id, &data, &len, err): the bytes the driver gave
     * broadcast `id` (ember_broadcast). The first use on an executor
     * fetches them from the kernel in checksummed chunks; later uses on
     * that executor read its copy. *data is borrowed until the task ends.
     * EMBER_ENOTFOUND for an unknown id; EMBER_EINVAL after the driver
     * destroyed it ("Attempted to use broadcast 3 after it was
     * destroyed"); EMBER_EIO when it cannot be fetched intact.
     * accum_add_i64(id, v) / accum_add_double(id, v): adds v to this task
     * attempt's update of an "int64" / "double" accumulator.
     * accum_add(id, rec, len, err): merges one encoded record into this
     * attempt's update of a user-defined accumulator with the accumulator's
     * merge function. An attempt's updates reach the driver only if it
     * finishes, and for result tasks only once per partition (S17).
     * EMBER_ENOTFOUND for an unknown id, EMBER_EINVAL for the wrong kind. */
    ember_status (*broadcast_value)(uint64_t id, const uint8_t **data,
                                    size_t *len, ember_error *err);
    ember_status (*accum_add_i64)(uint64_t id, int64_t v);
    ember_status (*accum_add_double)(uint64_t id, double v);
    ember_status (*accum_add)(uint64_t id, const uint8_t *rec, size_t len,
                              ember_error *err);
} ember_host_api;

/*
 * Non-zero when `host` has slot `slot` and it is set. Use it before calling
 * a slot newer than the oldest host the plugin supports.
 */
#define EMBER_HOST_HAS(host, slot)                                         \
    ((host) != NULL &&                                                     \
     (size_t)(host)->size >=                                               \
         offsetof(ember_host_api, slot) + sizeof((host)->slot) &&         \
     (host)->slot != NULL)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_HOST_H */
