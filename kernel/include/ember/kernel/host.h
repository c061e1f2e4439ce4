/*
 * ember/kernel/host.h — the kernel's implementation of ember_host_api.
 *
 * There is one host services table per process: allocation through libc,
 * logging through em_log, configuration from the em_conf installed with
 * em_host_set_conf, process-wide counters, and realloc-backed buffers.
 */
#ifndef EMBER_KERNEL_HOST_H
#define EMBER_KERNEL_HOST_H

#include "ember/host.h"
#include "ember/kernel/conf.h"
#include "ember/kernel/export.h"

/* The table handed to plugins; valid for the life of the process. */
EM_API const ember_host_api *em_host_api(void);

/*
 * Makes conf the configuration plugins read (borrowed: it must outlive
 * every plugin call; NULL means "everything unset").
 */
EM_API void em_host_set_conf(em_conf *conf);

/* Forgets conf if it is the one plugins read (a session closing must not
 * take another session's configuration away). */
EM_API void em_host_unset_conf(em_conf *conf);

/*
 * What the runtime (executors, libember-runtime) adds to the host table:
 * in-process executors and the calling thread's task. Installed once by
 * the runtime at start-up; until then the slots answer
 * EMBER_EUNSUPPORTED / -1. The struct is copied.
 */
typedef struct em_host_runtime {
    ember_status (*executor_start)(const char *endpoint,
                                   const char *executor_id, uint32_t slots,
                                   void **handle, ember_error *err);
    void (*executor_stop)(void *handle);
    int64_t (*task_partition)(void);
    int64_t (*task_attempt)(void);
    /* The shared-variable slots of ember_host_api (ABI 0.3), as there;
     * NULL slots make the host answer EMBER_EUNSUPPORTED. */
    ember_status (*broadcast_value)(uint64_t id, const uint8_t **data,
                                    size_t *len, ember_error *err);
    ember_status (*accum_add_i64)(uint64_t id, int64_t v);
    ember_status (*accum_add_double)(uint64_t id, double v);
    ember_status (*accum_add)(uint64_t id, const uint8_t *rec, size_t len,
                              ember_error *err);
} em_host_runtime;
EM_API void em_host_set_runtime(const em_host_runtime *rt);

/* Most counters a process can register. */
#define EM_HOST_MAX_COUNTERS 1024

/* The value of counter `name`; EMBER_ENOTFOUND if never registered. */
EM_API ember_status em_host_counter_value(const char *name, int64_t *value);

#endif /* EMBER_KERNEL_HOST_H */
