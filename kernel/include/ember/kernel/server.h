/*
 * ember/kernel/server.h — the kernel as a running service: its event loop
 * on its own thread, an executor endpoint that executors dial (NNG, see
 * kernel/msg/link.h), and the cluster manager chosen by the master URL.
 * emberd runs one; an embedded driver (local[N]) runs one on inproc://.
 *
 * Threads: every function may be called from any thread except from the
 * kernel's own callbacks (em_server_stop joins the loop thread).
 */
#ifndef EMBER_KERNEL_SERVER_H
#define EMBER_KERNEL_SERVER_H

#include "ember/kernel/kernel.h"

typedef struct em_server em_server;

typedef struct em_server_opts {
    const em_conf *conf;          /* borrowed; must outlive the server */
    const char *state_path;       /* SQLite file, required */
    const em_registry *registry;  /* plugins: functions and the cluster
                                     manager; borrowed */
    const char *executor_url;     /* where executors dial; NULL = a fresh
                                     inproc:// URL */
    const char *master;           /* master URL ("local[4]"); NULL = none:
                                     executors are started by others */
} em_server_opts;

/*
 * Creates the kernel, opens the executor endpoint, starts the cluster
 * manager whose accepts() claims the master URL (EMBER_ENOTFOUND "no
 * cluster manager accepts master URL 'x'" otherwise) and the loop thread.
 */
EM_API ember_status em_server_start(em_server **out,
                                    const em_server_opts *opts,
                                    ember_error *err);

/* The kernel it runs (for submit, cancel, apps). */
EM_API em_kernel *em_server_kernel(em_server *s);

/* The URL executors dial (tcp port resolved). */
EM_API const char *em_server_executor_url(const em_server *s);

/*
 * Runs fn(ctx) on the loop thread and waits for it to return (for reading
 * loop-thread-only state such as em_kernel_get_stats).
 */
EM_API ember_status em_server_call(em_server *s, void (*fn)(void *ctx),
                                   void *ctx);

/*
 * Task slots a master URL provides — local 1, local[N] and local[N,F] N,
 * local[*] the processors, local-cluster[E,C,M] E*C, anything else 1 —
 * and, for local[N,F] / local[*,F], F in *failures (0 otherwise).
 */
EM_API uint32_t em_master_slots(const char *master, long *failures);

/* Stops the loop, closes every executor connection, stops the cluster
 * manager, destroys the kernel. NULL-safe. */
EM_API void em_server_stop(em_server *s);

/* ---- broadcasts (kernel/bcast/bcast.h) ---- */

/*
 * Keeps a copy of data[0..len) as broadcast id of application app, in
 * chunks of ember.broadcast.blockSize, for executors to fetch (they ask
 * this server's executor endpoint, which answers on its own threads).
 * EMBER_EEXIST when app has that id already, EMBER_ENOMEM.
 */
EM_API ember_status em_server_broadcast_put(em_server *s, uint64_t app,
                                            uint64_t id, const void *data,
                                            size_t len, ember_error *err);

/*
 * Unpersists (destroy 0: executors drop their copies, the next use
 * fetches again) or destroys (everything goes; later fetches fail with
 * "Attempted to use broadcast ID after it was destroyed") a broadcast of
 * app. Returns once every executor connection has been sent its
 * REMOVE_BROADCAST (so a job submitted afterwards comes after it).
 * Errors as em_bcast_drop.
 */
EM_API ember_status em_server_broadcast_drop(em_server *s, uint64_t app,
                                             uint64_t id, int destroy,
                                             ember_error *err);

/* Forgets every broadcast of app and tells the executors (for an
 * application that closes). */
EM_API void em_server_broadcast_app_close(em_server *s, uint64_t app);

#endif /* EMBER_KERNEL_SERVER_H */
