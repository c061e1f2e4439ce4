/*
 * client/persist.c — persist and cache: a storage level on a dataset's
 * plan node ("storage", docs/plan-format.md), which the executors' block
 * managers honour for the jobs that follow (SEMANTICS S19–S21).
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Spark's StorageLevel names, as the plan codec accepts them. */
static const char *const levels[] = {
    "NONE",
    "DISK_ONLY",
    "DISK_ONLY_2",
    "DISK_ONLY_3",
    "MEMORY_ONLY",
    "MEMORY_ONLY_2",
    "MEMORY_ONLY_SER",
    "MEMORY_ONLY_SER_2",
    "MEMORY_AND_DISK",
    "MEMORY_AND_DISK_2",
    "MEMORY_AND_DISK_SER",
    "MEMORY_AND_DISK_SER_2",
    "OFF_HEAP",
};

#define NLEVELS (sizeof levels / sizeof levels[0])

/* The static name equal to name (exactly: Spark's names are upper case),
 * or NULL. */
static const char *level_of(const char *name)
{
    for (size_t i = 0; name && i < NLEVELS; i++)
        if (strcmp(name, levels[i]) == 0)
            return levels[i];
    return NULL;
}

/* r's level as a static name; the caller holds r->s->mu (the node may be
 * changed by another thread's persist). */
static const char *level_locked(const ember_rdd *r)
{
    const char *l = level_of(json_string_value(json_object_get(r->node,
                                                               "storage")));
    return l ? l : levels[0];
}

ember_status ember_persist(ember_rdd *r, const char *level, ember_error *err)
{
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "persist: dataset is NULL");
    const char *want = level_of(level);
    if (!want) {
        char names[256] = "";
        size_t at = 0;
        for (size_t i = 0; i < NLEVELS; i++) {
            int k = snprintf(names + at, sizeof names - at, "%s%s",
                             i ? ", " : "", levels[i]);
            if (k < 0 || (size_t)k >= sizeof names - at)
                break;
            at += (size_t)k;
        }
        return ember_errorf(err, EMBER_EINVAL,
                            "persist: unknown storage level '%.64s' (one of "
                            "%s)",
                            level ? level : "(null)", names);
    }
    ember_status st = EMBER_OK;
    pthread_mutex_lock(&r->s->mu);
    const char *have = level_locked(r);
    if (have != levels[0] && have != want) {
        /* Spark's RDD.persist refuses to change a level once set */
        st = ember_errorf(err, EMBER_EINVAL,
                          "dataset %" PRIu64 " is already persisted at %s; "
                          "a storage level cannot be changed once set",
                          r->id, have);
    } else if (want != have &&
               json_object_set_new(r->node, "storage", json_string(want)) !=
                   0) {
        st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&r->s->mu);
    return st;
}

ember_status ember_cache(ember_rdd *r, ember_error *err)
{
    return ember_persist(r, "MEMORY_ONLY", err);
}

const char *ember_rdd_storage_level(const ember_rdd *r)
{
    if (!r)
        return levels[0];
    pthread_mutex_lock(&r->s->mu);
    const char *l = level_locked(r);
    pthread_mutex_unlock(&r->s->mu);
    return l;
}
