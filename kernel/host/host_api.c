/* The host services table (see ember/kernel/host.h). */
#include "ember/kernel/host.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"

static _Atomic(em_conf *) current_conf;

void em_host_set_conf(em_conf *conf)
{
    atomic_store(&current_conf, conf);
}

void em_host_unset_conf(em_conf *conf)
{
    /* only if it is still this one: another session may have set its own */
    atomic_compare_exchange_strong(&current_conf, &conf, NULL);
}

static void *host_alloc(size_t n)
{
    return malloc(n ? n : 1);
}

static void *host_realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

static void host_free(void *p)
{
    free(p);
}

__attribute__((format(printf, 3, 4))) static void
host_log(int level, const char *source, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_logv(level, source, fmt, ap);
    va_end(ap);
}

static void host_report_error(const char *source, const ember_error *err)
{
    if (err)
        em_log(EMBER_LOG_ERROR, source, "%s (%s)", err->msg,
               ember_status_name(err->code));
}

static ember_status host_config_get(const char *key, char *out, size_t cap,
                                    size_t *len)
{
    em_conf *c = atomic_load(&current_conf);
    if (!c)
        return EMBER_ENOTFOUND;
    return em_conf_get(c, key, out, cap, len);
}

static ember_status host_config_get_size(const char *key, int64_t dflt,
                                         int64_t *bytes, ember_error *err)
{
    em_conf *c = atomic_load(&current_conf);
    if (!c) {
        *bytes = dflt;
        return EMBER_OK;
    }
    return em_conf_get_size(c, key, dflt, bytes, err);
}

static ember_status host_config_get_duration_ms(const char *key, int64_t dflt,
                                                int64_t *ms, ember_error *err)
{
    em_conf *c = atomic_load(&current_conf);
    if (!c) {
        *ms = dflt;
        return EMBER_OK;
    }
    return em_conf_get_duration_ms(c, key, dflt, ms, err);
}

/* Counters: names under a mutex (registration is rare), values atomic. */
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;
static char *counter_names[EM_HOST_MAX_COUNTERS];
static _Atomic int64_t counter_values[EM_HOST_MAX_COUNTERS];
static _Atomic uint32_t counter_count;

static ember_status host_counter_register(const char *name, uint32_t *id)
{
    if (!name || !*name || !id)
        return EMBER_EINVAL;
    ember_status s = EMBER_OK;
    pthread_mutex_lock(&counters_lock);
    uint32_t n = atomic_load(&counter_count);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(counter_names[i], name) == 0) {
            *id = i;
            goto out;
        }
    }
    if (n == EM_HOST_MAX_COUNTERS) {
        s = EMBER_ENOSPC;
        goto out;
    }
    counter_names[n] = strdup(name);
    if (!counter_names[n]) {
        s = EMBER_ENOMEM;
        goto out;
    }
    *id = n;
    atomic_store(&counter_count, n + 1);
out:
    pthread_mutex_unlock(&counters_lock);
    return s;
}

static void host_counter_add(uint32_t id, int64_t delta)
{
    if (id < atomic_load(&counter_count))
        atomic_fetch_add_explicit(&counter_values[id], delta,
                                  memory_order_relaxed);
}

ember_status em_host_counter_value(const char *name, int64_t *value)
{
    ember_status s = EMBER_ENOTFOUND;
    pthread_mutex_lock(&counters_lock);
    uint32_t n = atomic_load(&counter_count);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(counter_names[i], name) == 0) {
            *value = atomic_load(&counter_values[i]);
            s = EMBER_OK;
            break;
        }
    }
    pthread_mutex_unlock(&counters_lock);
    return s;
}

static ember_status host_buf_init(ember_buf *b, size_t cap)
{
    if (!b)
        return EMBER_EINVAL;
    *b = ember_buf_heap();
    return cap ? ember_buf_heap_grow(b, cap) : EMBER_OK;
}

/* Runtime services: installed once, read lock-free afterwards. */
static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;
static em_host_runtime runtime_pending;
static _Atomic(const em_host_runtime *) runtime;
static em_host_runtime runtime_slots;

static void install_runtime(void)
{
    runtime_slots = runtime_pending;
    atomic_store(&runtime, &runtime_slots);
}

void em_host_set_runtime(const em_host_runtime *rt)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    runtime_pending = *rt;
    pthread_once(&runtime_once, install_runtime);
    pthread_mutex_unlock(&lock);
}

static ember_status host_executor_start(const char *endpoint,
                                        const char *executor_id,
                                        uint32_t slots, void **handle,
                                        ember_error *err)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    if (!rt || !rt->executor_start)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "this process cannot run executors (no runtime)");
    return rt->executor_start(endpoint, executor_id, slots, handle, err);
}

static void host_executor_stop(void *handle)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    if (handle && rt && rt->executor_stop)
        rt->executor_stop(handle);
}

static int64_t host_task_partition(void)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    return rt && rt->task_partition ? rt->task_partition() : -1;
}

static int64_t host_task_attempt(void)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    return rt && rt->task_attempt ? rt->task_attempt() : -1;
}

static ember_status host_broadcast_value(uint64_t id, const uint8_t **data,
                                        size_t *len, ember_error *err)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    if (!rt || !rt->broadcast_value)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "broadcast values are read inside tasks only");
    return rt->broadcast_value(id, data, len, err);
}

static ember_status host_accum_add_i64(uint64_t id, int64_t v)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    return rt && rt->accum_add_i64 ? rt->accum_add_i64(id, v)
                                   : EMBER_EUNSUPPORTED;
}

static ember_status host_accum_add_double(uint64_t id, double v)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    return rt && rt->accum_add_double ? rt->accum_add_double(id, v)
                                      : EMBER_EUNSUPPORTED;
}

static ember_status host_accum_add(uint64_t id, const uint8_t *rec,
                                   size_t len, ember_error *err)
{
    const em_host_runtime *rt = atomic_load(&runtime);
    if (!rt || !rt->accum_add)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "accumulators are updated inside tasks only");
    return rt->accum_add(id, rec, len, err);
}

static const ember_host_api host_table = {
    .size = sizeof(ember_host_api),
    .abi_major = EMBER_ABI_MAJOR,
    .abi_minor = EMBER_ABI_MINOR,
    .alloc = host_alloc,
    .realloc = host_realloc,
    .free = host_free,
    .log = host_log,
    .log_enabled = em_log_enabled,
    .report_error = host_report_error,
    .config_get = host_config_get,
    .config_get_size = host_config_get_size,
    .config_get_duration_ms = host_config_get_duration_ms,
    .counter_register = host_counter_register,
    .counter_add = host_counter_add,
    .buf_init = host_buf_init,
    .executor_start = host_executor_start,
    .executor_stop = host_executor_stop,
    .task_partition = host_task_partition,
    .task_attempt = host_task_attempt,
    .broadcast_value = host_broadcast_value,
    .accum_add_i64 = host_accum_add_i64,
    .accum_add_double = host_accum_add_double,
    .accum_add = host_accum_add,
};

const ember_host_api *em_host_api(void)
{
    return &host_table;
}
