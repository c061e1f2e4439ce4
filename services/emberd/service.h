/*
 * service.h — emberd: the kernel as a long-running service that clients
 * reach over the client protocol (kernel/msg/client_msg.h) on em_link.
 *
 * One emberd runs one kernel (an em_server: loop thread, executor
 * endpoint, the cluster manager of its master URL) with its state in
 * DIR/ember.db, and a link server on the listen URL. Each client
 * connection is one application: opened by HELLO, closed (its running
 * jobs cancelled) when the connection goes. Requests are handled by a few
 * worker threads, one request of a client at a time and in the order the
 * client sent them; results and job ends go back from the kernel's loop
 * thread. A malformed or refused request gets an ERROR reply to that
 * client alone, is counted and logged once.
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
} emberd_opts;

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
 * Stops cleanly: no new requests, every client's application closed
 * (running jobs cancelled), client connections closed, executors
 * stopped, the state store flushed; frees d. NULL-safe.
 */
void emberd_stop(emberd *d);

#endif /* EMBERD_SERVICE_H */
