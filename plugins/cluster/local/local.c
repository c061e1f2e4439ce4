/*
 * local.c — plugin "local": the cluster manager of the embedded default.
 *
 * Master URLs, as Spark's:
 *   local        one executor thread
 *   local[N]     N task slots
 *   local[*]     as many slots as the machine has processors
 *   local[N,F]   N slots; F is ember.task.maxFailures (the driver applies
 *                it, since the kernel reads its settings before managers
 *                start; here F is only validated)
 * One executor named "driver" (as Spark names it) runs the slots as
 * threads inside this process, started through the host's executor_start
 * service; it dials the kernel's inproc:// endpoint like any executor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/cluster_manager.h"

typedef struct local_state {
    const ember_host_api *host;
    const ember_cluster_events *events;
    char endpoint[512];
    uint32_t slots;
    void *executor; /* host executor handle, or NULL */
} local_state;

/* Parses a decimal in 1..max at *p, advancing it. */
static int parse_count(const char **p, long max, long *out)
{
    char *end;
    if (**p < '1' || **p > '9')
        return 0;
    long v = strtol(*p, &end, 10);
    if (v < 1 || v > max)
        return 0;
    *p = end;
    *out = v;
    return 1;
}

/* slots (0 for "*": all processors) and failures (0 if not given). */
static int parse_master(const char *url, long *slots, long *failures)
{
    *slots = 1;
    *failures = 0;
    if (strcmp(url, "local") == 0)
        return 1;
    if (strncmp(url, "local[", 6) != 0)
        return 0;
    const char *p = url + 6;
    if (*p == '*') {
        *slots = 0;
        p++;
    } else if (!parse_count(&p, 4096, slots)) {
        return 0;
    }
    if (*p == ',') {
        p++;
        if (!parse_count(&p, 65535, failures))
            return 0;
    }
    return p[0] == ']' && p[1] == '\0';
}

static int local_accepts(const char *url)
{
    long s, f;
    return url && parse_master(url, &s, &f);
}

static ember_status local_start(const ember_host_api *host, const char *url,
                                const char *endpoint,
                                const ember_cluster_events *events,
                                void **state, ember_error *err)
{
    long slots, failures;
    if (!parse_master(url, &slots, &failures))
        return ember_errorf(err, EMBER_EINVAL, "local: bad master URL '%s'",
                            url);
    if (!EMBER_HOST_HAS(host, executor_start))
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "local: this host cannot run executors");
    if (slots == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        slots = n > 0 ? n : 1;
    }
    local_state *st = host->alloc(sizeof *st);
    if (!st)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    memset(st, 0, sizeof *st);
    st->host = host;
    st->events = events;
    st->slots = (uint32_t)slots;
    if ((size_t)snprintf(st->endpoint, sizeof st->endpoint, "%s", endpoint) >=
        sizeof st->endpoint) {
        host->free(st);
        return ember_errorf(err, EMBER_EINVAL, "local: endpoint too long");
    }
    ember_status s = host->executor_start(st->endpoint, "driver", st->slots,
                                          &st->executor, err);
    if (s != EMBER_OK) {
        host->free(st);
        return s;
    }
    events->executor_added(events->ctx, "driver", "localhost", st->slots);
    *state = st;
    return EMBER_OK;
}

static ember_status local_request(void *state, uint32_t count,
                                  ember_error *err)
{
    (void)state;
    /* Local mode has exactly one executor; asking for more is a no-op. */
    (void)count;
    (void)err;
    return EMBER_OK;
}

static ember_status local_kill(void *state, const char *id, ember_error *err)
{
    local_state *st = state;
    if (strcmp(id, "driver") != 0 || !st->executor)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "local: no executor '%s'", id);
    st->host->executor_stop(st->executor);
    st->executor = NULL;
    st->events->executor_lost(st->events->ctx, "driver", "killed");
    return EMBER_OK;
}

static void local_stop(void *state)
{
    local_state *st = state;
    if (!st)
        return;
    if (st->executor)
        st->host->executor_stop(st->executor);
    st->host->free(st);
}

static const ember_cluster_manager_vtable local_vt = {
    .accepts = local_accepts,
    .start = local_start,
    .request_executors = local_request,
    .kill_executor = local_kill,
    .stop = local_stop,
};

static const ember_component components[] = {
    EMBER_CLUSTER_MANAGER_COMPONENT(
        "threads", "local, local[N], local[*], local[N,F]: executor threads "
        "in this process", &local_vt),
};

EMBER_PLUGIN(local, "0.1.0", "the embedded cluster manager (local[N])",
             "Apache-2.0", components, NULL, NULL);
