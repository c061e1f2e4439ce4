/*
 * fake_host.c — the fake ember_host_api of fake_host.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "fake_host.h"

#include "ember/kernel/conf.h" /* the one size/duration parser */

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fake_config {
    int used;
    char key[EM_FAKE_CONFIG_TEXT];
    char value[EM_FAKE_CONFIG_TEXT];
} fake_config;

typedef struct fake_counter {
    char name[EM_FAKE_CONFIG_TEXT];
    _Atomic int64_t value;
} fake_counter;

/* All mutable state; `lock` guards everything but the atomics. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fake_config config[EM_FAKE_CONFIG_MAX];
static fake_counter counters[EM_FAKE_COUNTER_MAX];
static _Atomic uint32_t counter_count;
static char last_log[EM_FAKE_LOG_LINE];
static char last_log_source[EM_FAKE_CONFIG_TEXT];
static int last_log_level = -1;
static unsigned log_count;
static _Atomic int log_max_level = EMBER_LOG_TRACE;
static ember_error last_report;
static char last_report_source[EM_FAKE_CONFIG_TEXT];
static _Atomic long live_allocs;
static _Atomic unsigned fail_next;

/* Copies src into dst[0..cap) truncating, always NUL-terminated. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Non-zero when this allocation must fail (failure injection). */
static int inject_failure(void)
{
    unsigned n = atomic_load(&fail_next);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&fail_next, &n, n - 1))
            return 1;
    }
    return 0;
}

/* ---- allocation ---- */

/* alloc: malloc, counted; NULL for n == 0 is avoided (one byte). */
static void *fake_alloc(size_t n)
{
    if (inject_failure())
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        atomic_fetch_add(&live_allocs, 1);
    return p;
}

/* free: free, counted. */
static void fake_free(void *p)
{
    if (p) {
        atomic_fetch_sub(&live_allocs, 1);
        free(p);
    }
}

/* realloc: as C's, with realloc(p, 0) freeing p and returning NULL. */
static void *fake_realloc(void *p, size_t n)
{
    if (p == NULL)
        return fake_alloc(n);
    if (n == 0) {
        fake_free(p);
        return NULL;
    }
    if (inject_failure())
        return NULL;
    return realloc(p, n);
}

/* ---- logging ---- */

/* log_enabled: level at or above the configured verbosity. */
static int fake_log_enabled(int level)
{
    return level <= atomic_load(&log_max_level);
}

/* log: formats the line, keeps it as the last one, counts it. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fake_log(int level, const char *source, const char *fmt, ...)
{
    char line[EM_FAKE_LOG_LINE];
    va_list ap;
    if (!fake_log_enabled(level))
        return;
    va_start(ap, fmt);
    if (vsnprintf(line, sizeof line, fmt, ap) < 0)
        line[0] = '\0';
    va_end(ap);
    pthread_mutex_lock(&lock);
    copy_text(last_log, sizeof last_log, line);
    copy_text(last_log_source, sizeof last_log_source, source);
    last_log_level = level;
    log_count++;
    pthread_mutex_unlock(&lock);
}

/* report_error: keeps a copy of err and its source. */
static void fake_report_error(const char *source, const ember_error *err)
{
    pthread_mutex_lock(&lock);
    if (err) {
        last_report.code = err->code;
        copy_text(last_report.msg, sizeof last_report.msg, err->msg);
    } else {
        last_report.code = EMBER_EINTERNAL;
        copy_text(last_report.msg, sizeof last_report.msg,
                  "(report_error called with NULL)");
    }
    copy_text(last_report_source, sizeof last_report_source, source);
    pthread_mutex_unlock(&lock);
}

/* ---- configuration ---- */

/* The config slot holding key, or NULL; call with the lock held. */
static fake_config *find_config(const char *key)
{
    for (size_t i = 0; i < EM_FAKE_CONFIG_MAX; i++)
        if (config[i].used && strcmp(config[i].key, key) == 0)
            return &config[i];
    return NULL;
}

/* config_get: as host.h; value copied with the lock held. */
static ember_status fake_config_get(const char *key, char *out, size_t cap,
                                    size_t *len)
{
    ember_status s = EMBER_ENOTFOUND;
    if (key == NULL)
        return EMBER_EINVAL;
    pthread_mutex_lock(&lock);
    const fake_config *c = find_config(key);
    if (c != NULL) {
        size_t n = strlen(c->value);
        if (len)
            *len = n;
        if (out == NULL || cap <= n) {
            s = EMBER_ENOSPC;
        } else {
            memcpy(out, c->value, n + 1);
            s = EMBER_OK;
        }
    }
    pthread_mutex_unlock(&lock);
    return s;
}

/* Shared body of the size and duration getters. */
static ember_status get_parsed(const char *key, int64_t dflt, int64_t *out,
                               ember_error *err,
                               ember_status (*parse)(const char *, int64_t *),
                               const char *what)
{
    char text[EM_FAKE_CONFIG_TEXT];
    size_t len = 0;
    if (key == NULL || out == NULL)
        return ember_errorf(err, EMBER_EINVAL, "config: NULL argument");
    ember_status s = fake_config_get(key, text, sizeof text, &len);
    if (s == EMBER_ENOTFOUND) {
        *out = dflt;
        return EMBER_OK;
    }
    if (s != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "config: %s: value too long",
                            key);
    if (parse(text, out) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "config: %s: '%s' is not a valid %s", key, text,
                            what);
    return EMBER_OK;
}

/* config_get_size: as host.h. */
static ember_status fake_config_get_size(const char *key, int64_t dflt,
                                         int64_t *bytes, ember_error *err)
{
    return get_parsed(key, dflt, bytes, err, em_parse_size, "size");
}

/* config_get_duration_ms: as host.h. */
static ember_status fake_config_get_duration_ms(const char *key,
                                                int64_t dflt, int64_t *ms,
                                                ember_error *err)
{
    return get_parsed(key, dflt, ms, err, em_parse_duration_ms, "duration");
}

/* ---- counters ---- */

/* counter_register: the id of name (1-based), made on first use. */
static ember_status fake_counter_register(const char *name, uint32_t *id)
{
    ember_status s = EMBER_OK;
    if (name == NULL || id == NULL || strlen(name) >= EM_FAKE_CONFIG_TEXT)
        return EMBER_EINVAL;
    pthread_mutex_lock(&lock);
    uint32_t n = atomic_load(&counter_count);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(counters[i].name, name) == 0) {
            *id = i + 1;
            goto done;
        }
    }
    if (n == EM_FAKE_COUNTER_MAX) {
        s = EMBER_ENOSPC;
        goto done;
    }
    copy_text(counters[n].name, sizeof counters[n].name, name);
    atomic_store(&counters[n].value, 0);
    atomic_store(&counter_count, n + 1);
    *id = n + 1;
done:
    pthread_mutex_unlock(&lock);
    return s;
}

/* counter_add: lock-free; unknown ids ignored. */
static void fake_counter_add(uint32_t id, int64_t delta)
{
    if (id >= 1 && id <= atomic_load(&counter_count))
        atomic_fetch_add(&counters[id - 1].value, delta);
}

/* ---- buffers ---- */

/* The grow function of buffers made by buf_init (realloc-based). */
static ember_status fake_buf_grow(ember_buf *b, size_t min_cap)
{
    if (min_cap == 0) {
        fake_free(b->data);
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
        return EMBER_OK;
    }
    if (min_cap <= b->cap)
        return EMBER_OK;
    uint8_t *p = fake_realloc(b->data, min_cap);
    if (p == NULL)
        return EMBER_ENOMEM;
    b->data = p;
    b->cap = min_cap;
    return EMBER_OK;
}

/* buf_init: an empty growable buffer with room for cap bytes. */
static ember_status fake_buf_init(ember_buf *b, size_t cap)
{
    if (b == NULL)
        return EMBER_EINVAL;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->grow = fake_buf_grow;
    b->owner = NULL;
    if (cap > 0)
        return fake_buf_grow(b, cap);
    return EMBER_OK;
}

static const ember_host_api fake_api = {
    .size = (uint32_t)sizeof(ember_host_api),
    .abi_major = EMBER_ABI_MAJOR,
    .abi_minor = EMBER_ABI_MINOR,
    .alloc = fake_alloc,
    .realloc = fake_realloc,
    .free = fake_free,
    .log = fake_log,
    .log_enabled = fake_log_enabled,
    .report_error = fake_report_error,
    .config_get = fake_config_get,
    .config_get_size = fake_config_get_size,
    .config_get_duration_ms = fake_config_get_duration_ms,
    .counter_register = fake_counter_register,
    .counter_add = fake_counter_add,
    .buf_init = fake_buf_init,
};

/* ---- test-side helpers ---- */

const ember_host_api *em_fake_host(void)
{
    return &fake_api;
}

void em_fake_host_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(config, 0, sizeof config);
    for (size_t i = 0; i < EM_FAKE_COUNTER_MAX; i++) {
        counters[i].name[0] = '\0';
        atomic_store(&counters[i].value, 0);
    }
    atomic_store(&counter_count, 0);
    last_log[0] = '\0';
    last_log_source[0] = '\0';
    last_log_level = -1;
    log_count = 0;
    ember_error_clear(&last_report);
    last_report_source[0] = '\0';
    pthread_mutex_unlock(&lock);
    atomic_store(&log_max_level, EMBER_LOG_TRACE);
    atomic_store(&fail_next, 0);
}

void em_fake_host_set_config(const char *key, const char *value)
{
    if (key == NULL || strlen(key) >= EM_FAKE_CONFIG_TEXT ||
        (value && strlen(value) >= EM_FAKE_CONFIG_TEXT)) {
        fprintf(stderr, "fake_host: config key or value too long\n");
        abort();
    }
    int full = 0;
    pthread_mutex_lock(&lock);
    fake_config *c = find_config(key);
    if (value == NULL) {
        if (c)
            c->used = 0;
        goto done;
    }
    for (size_t i = 0; c == NULL && i < EM_FAKE_CONFIG_MAX; i++)
        if (!config[i].used)
            c = &config[i];
    if (c == NULL) {
        full = 1;
        goto done;
    }
    c->used = 1;
    copy_text(c->key, sizeof c->key, key);
    copy_text(c->value, sizeof c->value, value);
done:
    pthread_mutex_unlock(&lock);
    if (full) {
        fprintf(stderr, "fake_host: more than %d config keys\n",
                EM_FAKE_CONFIG_MAX);
        abort();
    }
}

const char *em_fake_host_last_log(void)
{
    return last_log;
}

int em_fake_host_last_log_level(void)
{
    return last_log_level;
}

const char *em_fake_host_last_log_source(void)
{
    return last_log_source;
}

unsigned em_fake_host_log_count(void)
{
    return log_count;
}

void em_fake_host_set_log_level(int level)
{
    atomic_store(&log_max_level, level);
}

const ember_error *em_fake_host_last_report(const char **source)
{
    if (source)
        *source = last_report_source;
    return &last_report;
}

int64_t em_fake_host_counter(const char *name)
{
    uint32_t n = atomic_load(&counter_count);
    for (uint32_t i = 0; name && i < n; i++)
        if (strcmp(counters[i].name, name) == 0)
            return atomic_load(&counters[i].value);
    return 0;
}

long em_fake_host_live_allocs(void)
{
    return atomic_load(&live_allocs);
}

void em_fake_host_fail_allocs(unsigned n)
{
    atomic_store(&fail_next, n);
}
