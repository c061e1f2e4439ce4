/*
 * client/persist.c — persist and cache: a storage level on a dataset's
 * plan node ("storage", docs/plan-format.md), which the executors' block
 * managers honour for the jobs that follow (SEMANTICS S19–S21).
 */
#include "client_internal.h"
#include "dag/lineage.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The static name equal to name (exactly: Spark's names are upper case),
 * or NULL. */
static const char *level_of(const char *name)
{
    return em_storage_level_known(name);
}

/* r's level as a static name; the caller holds r->s->mu (the node may be
 * changed by another thread's persist). */
static const char *level_locked(const ember_rdd *r)
{
    const char *l = level_of(json_string_value(json_object_get(r->node,
                                                               "storage")));
    return l ? l : em_storage_level_known("NONE");
}

ember_status ember_persist(ember_rdd *r, const char *level, ember_error *err)
{
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "persist: dataset is NULL");
    const char *want = level_of(level);
    if (!want)
        return ember_errorf(err, EMBER_EINVAL,
                            "persist: unknown storage level '%.64s' (one of "
                            "%s)",
                            level ? level : "(null)",
                            em_storage_level_list());
    ember_status st = EMBER_OK;
    pthread_mutex_lock(&r->s->mu);
    const char *have = level_locked(r);
    /* S21's exception: after local_checkpoint a level may change, made
     * to use disk (Spark's persist with allowOverride) */
    int may_change = r->checkpoint == EM_CKPT_LOCAL;
    if (may_change)
        want = em_client_disk_level(want);
    if (!may_change && strcmp(have, "NONE") != 0 && have != want) {
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
        return "NONE";
    pthread_mutex_lock(&r->s->mu);
    const char *l = level_locked(r);
    pthread_mutex_unlock(&r->s->mu);
    return l;
}

ember_status ember_unpersist(ember_rdd *r, ember_error *err)
{
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "unpersist: dataset is NULL");
    ember_session *s = r->s;
    pthread_mutex_lock(&s->mu);
    int was = strcmp(level_locked(r), "NONE") != 0;
    if (was)
        json_object_del(r->node, "storage");
    pthread_mutex_unlock(&s->mu);
    if (!was)
        return EMBER_OK;
    if (s->remote)
        return em_remote_unpersist(s, r->id, err);
    ember_status st = s->server ? em_kernel_unpersist(
                                      em_server_kernel(s->server), s->app_id,
                                      r->id)
                                : EMBER_OK;
    if (st != EMBER_OK)
        return ember_errorf(err, st, "unpersist: %s", ember_status_name(st));
    return EMBER_OK;
}
