/*
 * service.h — emberd: the kernel as a long-running service that clients
 * reach over the client protocol (kernel/msg/client_msg.h) on em_link.
 *
 * One emberd runs one kernel (an em_server: loop thread, executor
 * endpoint, the cluster manager of its master URL) with its state in
 * DIR/ember.db, and a link server on the listen URL. Each client
 * connection is one application: opened by HELLO, closed (its running
 * jobs cancelled, its requests still waiting dropped) when the connection
 * goes. Requests are handled by a few
 * worker threads (SPLITS by threads of their own, so a long listing never
 * holds up other requests), one request of a client at a time and in the
 * order the client sent them; results and job ends go back from the
 * kernel's loop thread. A malformed or refused request gets an ERROR
 * reply to that client alone, is counted and logged once. A client that
 * sends faster than it is served is bounded by max_client_queue, a SPLITS
 * request by max_splits (both refused with an ERROR naming the limit).
 *
 * Plugins shipped by clients are stored as DIR/plugins/<sha256>.so and
 * loaded into the service's registry (in-process executors see them at
 * once; executor processes rescan that directory, see docs/service.md).
 *
 * Threads: emberd_start and emberd_stop from one thread (main); the
 * getters from any thread.
 */
#ifndef EMBERD_SERVICE_H
#define EMBERD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

typedef struct emberd emberd;

typedef struct emberd_opts {
    const char *listen;      /* tcp://HOST:PORT (port 0: any) or ipc://PATH;
                                required */
    const char *state_dir;   /* created if missing; required */
    const char *master;      /* NULL = ember.master from configuration,
                                else local[*] */
    const char *const *conf_flags; /* "key=value", NULL-terminated;
                                      nullable */
    const char *properties_file;   /* NULL = $EMBER_CONF_DIR/
                                      ember-defaults.conf */
    int verbose;             /* log at INFO and print the configuration */
    size_t max_client_queue; /* bytes of requests one client may have
                                waiting or in progress (one in progress
                                and one waiting always fit); 0 = the
                                default EMBERD_MAX_CLIENT_QUEUE */
    uint64_t max_splits;     /* splits one SPLITS request may give; 0 =
                                the default EMBERD_MAX_SPLITS */
} emberd_opts;

/* Default of emberd_opts.max_client_queue (--max-client-queue): 256 MiB.
 * A client that would pass it gets an ERROR naming the limit and is
 * disconnected (see docs/service.md, Limits). */
#define EMBERD_MAX_CLIENT_QUEUE ((size_t)256 << 20)

/* Default of emberd_opts.max_splits (--max-splits): a SPLITS request whose
 * input expands to more splits (for text sources, about one per file) is
 * refused with an ERROR naming the limit. */
#define EMBERD_MAX_SPLITS ((uint64_t)100000)

/*
 * Reads configuration (unknown keys are an error), loads the plugin
 * directories, starts the kernel for the master URL with its state in
 * state_dir/ember.db, and listens. On EMBER_OK the service runs on its
 * own threads until emberd_stop. Errors name what failed (a bad key, a
 * master no cluster manager accepts, an address in use).
 */
ember_status emberd_start(emberd **out, const emberd_opts *opts,
                          ember_error *err);

/* The URL clients dial (a tcp port 0 resolved). Owned by d. */
const char *emberd_url(const emberd *d);

/* The master URL the kernel runs on. Owned by d. */
const char *emberd_master(const emberd *d);

/* Client messages refused so far (each got an ERROR reply). */
uint64_t emberd_bad_messages(const emberd *d);

/*
 * Bytes of client messages received and not yet done with (waiting in a
 * client's queue or being handled), all clients together. Falls back to
 * 0 once every request is answered. Any thread; the value may be stale.
 */
uint64_t emberd_queued_bytes(const emberd *d);

/*
 * The most bytes one client ever had waiting or in progress: at most
 * max_client_queue, unless one message in progress and one waiting
 * (always allowed, whatever their size) are more. Any thread.
 */
uint64_t emberd_queued_peak(const emberd *d);

/*
 * Stops cleanly: no new requests, every client's application closed
 * (running jobs cancelled), client connections closed, executors
 * stopped, the state store flushed; frees d. NULL-safe.
 */
void emberd_stop(emberd *d);

#endif /* EMBERD_SERVICE_H */
