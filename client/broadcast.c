/*
 * client/broadcast.c — broadcast variables on the driver (SEMANTICS S18):
 * the driver keeps its own copy (ember_broadcast_value) and hands one to
 * the kernel — embedded (em_server_broadcast_put) or emberd (BROADCAST) —
 * which serves it to executors in checksummed chunks (kernel/bcast,
 * runtime/bcast). Ids are the session's: 1, 2, ...
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct ember_broadcast {
    ember_session *s;
    uint64_t id;
    pthread_mutex_t mu; /* destroyed, data */
    int destroyed;
    uint8_t *data; /* len bytes; NULL once destroyed */
    size_t len;
    ember_broadcast *next; /* the session's list, under s->mu */
};

static ember_status destroyed_error(const ember_broadcast *b,
                                    ember_error *err)
{
    return ember_errorf(err, EMBER_EINVAL, "Attempted to use broadcast %"
                        PRIu64 " after it was destroyed", b->id);
}

ember_status ember_broadcast_new(ember_session *s, const void *data,
                                 size_t len, ember_broadcast **out,
                                 ember_error *err)
{
    if (out)
        *out = NULL;
    if (!s || !out || (!data && len))
        return ember_errorf(err, EMBER_EINVAL, "broadcast: %s is NULL",
                            !s ? "the session" : !out ? "out" : "data");
    if (!s->server && !s->remote)
        return ember_errorf(err, EMBER_EINVAL,
                            "broadcast: the session is closed");
    ember_broadcast *b = calloc(1, sizeof *b);
    if (!b || !(b->data = malloc(len ? len : 1))) {
        free(b);
        return ember_errorf(err, EMBER_ENOMEM, "broadcast: out of memory "
                            "for %zu bytes", len);
    }
    if (len)
        memcpy(b->data, data, len);
    b->len = len;
    b->s = s;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_lock(&s->mu);
    b->id = ++s->last_broadcast;
    pthread_mutex_unlock(&s->mu);
    ember_status st =
        s->remote ? em_remote_broadcast(s, b->id, data, len, err)
                  : em_server_broadcast_put(s->server, s->app_id, b->id, data,
                                            len, err);
    if (st != EMBER_OK) {
        pthread_mutex_destroy(&b->mu);
        free(b->data);
        free(b);
        return st;
    }
    pthread_mutex_lock(&s->mu);
    b->next = s->broadcasts;
    s->broadcasts = b;
    pthread_mutex_unlock(&s->mu);
    *out = b;
    return EMBER_OK;
}

uint64_t ember_broadcast_id(const ember_broadcast *b)
{
    return b ? b->id : 0;
}

ember_status ember_broadcast_value(const ember_broadcast *b,
                                   const uint8_t **data, size_t *len,
                                   ember_error *err)
{
    if (!b || !data || !len)
        return ember_errorf(err, EMBER_EINVAL,
                            "broadcast value: %s is NULL",
                            !b ? "the broadcast" : !data ? "data" : "len");
    ember_broadcast *m = (ember_broadcast *)b; /* its mutex only */
    pthread_mutex_lock(&m->mu);
    int gone = b->destroyed;
    *data = gone ? NULL : b->data;
    *len = gone ? 0 : b->len;
    pthread_mutex_unlock(&m->mu);
    return gone ? destroyed_error(b, err) : EMBER_OK;
}

/* Tells the kernel to drop b's copies (destroy: everything). */
static ember_status drop(ember_broadcast *b, int destroy, ember_error *err)
{
    ember_session *s = b->s;
    if (s->remote)
        return em_remote_broadcast_drop(s, b->id, destroy, err);
    if (!s->server)
        return ember_errorf(err, EMBER_EINVAL,
                            "broadcast: the session is closed");
    return em_server_broadcast_drop(s->server, s->app_id, b->id, destroy,
                                    err);
}

ember_status ember_broadcast_unpersist(ember_broadcast *b, ember_error *err)
{
    if (!b)
        return ember_errorf(err, EMBER_EINVAL,
                            "broadcast unpersist: the broadcast is NULL");
    pthread_mutex_lock(&b->mu);
    int gone = b->destroyed;
    pthread_mutex_unlock(&b->mu);
    if (gone)
        return destroyed_error(b, err);
    return drop(b, 0, err);
}

ember_status ember_broadcast_destroy(ember_broadcast *b, ember_error *err)
{
    if (!b)
        return ember_errorf(err, EMBER_EINVAL,
                            "broadcast destroy: the broadcast is NULL");
    pthread_mutex_lock(&b->mu);
    int gone = b->destroyed;
    b->destroyed = 1;
    uint8_t *data = b->data;
    b->data = NULL;
    b->len = 0;
    pthread_mutex_unlock(&b->mu);
    free(data);
    if (gone)
        return EMBER_OK;
    return drop(b, 1, err);
}

void em_client_broadcasts_free(ember_session *s)
{
    while (s->broadcasts) {
        ember_broadcast *b = s->broadcasts;
        s->broadcasts = b->next;
        pthread_mutex_destroy(&b->mu);
        free(b->data);
        free(b);
    }
}
