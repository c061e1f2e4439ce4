/*
 * ember/cluster_manager.h — cluster managers (component kind
 * "cluster_manager").
 *
 * A cluster manager starts and stops executors for one master URL
 * ("local[4]", "local-cluster[2,1,1024]", "slurm://..."), and tells the
 * kernel when they come and go. The kernel picks the component whose
 * accepts() claims the URL.
 *
 * Kind version 1. Required slots: accepts, start, request_executors,
 * kill_executor, stop.
 */
#ifndef EMBER_CLUSTER_MANAGER_H
#define EMBER_CLUSTER_MANAGER_H

#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_CLUSTER_MANAGER_VERSION 1

/* The kernel's side: called from any thread, strings borrowed. */
typedef struct ember_cluster_events {
    void *ctx;
    /* An executor is up and will register at `endpoint` with `slots`. */
    void (*executor_added)(void *ctx, const char *executor_id,
                           const char *host, uint32_t slots);
    /* An executor is gone (exited, killed, lost); reason is for users. */
    void (*executor_lost)(void *ctx, const char *executor_id,
                          const char *reason);
} ember_cluster_events;

typedef struct ember_cluster_manager_vtable {
    /* Non-zero when this manager handles master_url. Pure, no side effects. */
    int (*accepts)(const char *master_url);

    /* Starts managing; kernel_endpoint is where executors must connect.
     * events (borrowed) stays valid until stop returns. */
    ember_status (*start)(const ember_host_api *host, const char *master_url,
                          const char *kernel_endpoint,
                          const ember_cluster_events *events, void **state,
                          ember_error *err);
    /* Asks for `count` more executors (asynchronous: see events). */
    ember_status (*request_executors)(void *state, uint32_t count,
                                      ember_error *err);
    ember_status (*kill_executor)(void *state, const char *executor_id,
                                  ember_error *err);
    /* Stops every executor and frees state. */
    void (*stop)(void *state);
} ember_cluster_manager_vtable;

#define EMBER_CLUSTER_MANAGER_COMPONENT(name_, desc_, vtable_)             \
    EMBER_COMPONENT(EMBER_KIND_CLUSTER_MANAGER,                            \
                    EMBER_CLUSTER_MANAGER_VERSION, name_, desc_, vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_CLUSTER_MANAGER_H */
