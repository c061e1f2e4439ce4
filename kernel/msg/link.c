/*
 * msg/link.c — reliable message pipes over NNG: a REQ/REP rendezvous that
 * hands each peer a private PAIR1 channel. See link.h for the contract.
 *
 * Locking and lifetimes. Each link has one mutex (mu) guarding its flags,
 * its send FIFO and refs; no NNG call that can wait and no user callback
 * runs under it. Pipe-event callbacks find their link through a registry
 * keyed by link id (the callback argument is the id, not a pointer), so a
 * late pipe event for a link being freed finds nothing. Every other NNG
 * callback (receive, send) counts itself in refs while it runs; teardown
 * (link_destroy) waits for refs to reach 0 and for the receive and send
 * chains to end before freeing the aios and the link. NNG forbids closing
 * sockets, listeners or dialers from its own callbacks, so teardown that
 * starts in a callback (a refused peer, an undialed channel) is handed to
 * the server's reaper thread.
 */
#include "msg/link.h"

#include "ember/kernel/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

/* Rendezvous wire text. */
#define RV_HELLO "EMLINK1 HELLO"
#define RV_OK "EMLINK1 OK "
#define RV_ERR "EMLINK1 ERR "
#define RV_FAMILY "EMLINK"
/* Largest rendezvous message either side accepts. */
#define RV_MAXSZ 4096
/* A private channel nobody dialed within this long is dropped. */
#define CHANNEL_WAIT_MS 10000
/* Dial retry back-off while the other side is not there yet. */
#define RECONN_MIN_MS 10
#define RECONN_MAX_MS 200
/* Back-off for a dead client link's dialer, so it does not keep
 * reconnecting to a private listener that will refuse it. */
#define DEAD_RECONN_MS 3600000
#define REASON_MAX 160

enum scheme { SCHEME_INPROC, SCHEME_IPC, SCHEME_TCP };

/* A URL split into what the rendezvous needs. */
typedef struct url_parts {
    enum scheme scheme;
    char scheme_name[16]; /* "inproc", "ipc", "tcp4" ... */
    char host[EM_LINK_URL_MAX + 1]; /* tcp only; may be empty */
} url_parts;

struct em_link {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t id;
    em_link_server *server; /* NULL for client links */
    em_link *snext, *sprev; /* server list or reap queue */
    bool in_list;           /* on server->links (guarded by server->mu) */
    em_link *rnext;         /* registry (guarded by reg_mu) */

    nng_socket sock;
    bool sock_open;
    nng_dialer dialer; /* client links */
    bool has_dialer;
    nng_pipe pipe;     /* the one pipe, once had_pipe */
    nng_aio *rx, *tx;
    nng_aio *timer;    /* server links: the 10 s dial wait */
    em_link_handler h; /* fixed before rx is first armed */
    void *user;

    /* guarded by mu */
    int refs;              /* NNG callbacks running on this link */
    bool had_pipe;         /* a pipe came up (only one ever may) */
    int early_rem;         /* id of a pipe removed before it came up */
    bool dead;             /* no more traffic: peer gone, closing, failed */
    bool peer_gone;        /* dead because the pipe was removed */
    bool accepted;         /* the user knows the link: closed() is due */
    bool closed_done;      /* closed() ran */
    bool rx_active;        /* the receive chain runs */
    bool tx_busy;          /* the send aio is in use */
    char reason[REASON_MAX];
    nng_msg **q;           /* send FIFO (ring) */
    size_t qhead, qlen, qcap;
    size_t inflight;       /* bytes of the message in the send aio */
    _Atomic size_t queued; /* written under mu, read anywhere */
};

struct em_link_server {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char url[EM_LINK_URL_MAX + 1];
    url_parts parts;
    em_link_accept_fn accept;
    void *accept_ctx;
    nng_socket rep;
    bool rep_open;
    nng_aio *rv;
    bool rv_sending; /* only touched by the rv callback chain */
    /* guarded by mu */
    em_link *links;     /* every live link of this server */
    em_link *reap_head; /* links for the reaper to destroy */
    bool closing, reaper_stop, reaper_started;
    pthread_t reaper;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static em_link *reg_head;
static _Atomic uint64_t next_link_id = 1;
static _Atomic uint64_t next_channel = 1;

/* ------------------------------------------------------------ errors */

ember_status em_link_status(int nng_rv)
{
    if (nng_rv == 0)
        return EMBER_OK;
    if (nng_rv & (NNG_ESYSERR | NNG_ETRANERR))
        return EMBER_EIO;
    switch (nng_rv) {
    case NNG_ENOMEM: return EMBER_ENOMEM;
    case NNG_ETIMEDOUT: return EMBER_ETIMEDOUT;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_EMSGSIZE:
    case NNG_EBADTYPE:
    case NNG_ENOARG:
    case NNG_EAMBIGUOUS:
    case NNG_EREADONLY:
    case NNG_EWRITEONLY: return EMBER_EINVAL;
    case NNG_ENOTSUP: return EMBER_EUNSUPPORTED;
    case NNG_ECANCELED: return EMBER_ECANCELED;
    case NNG_ENOENT: return EMBER_ENOTFOUND;
    case NNG_EADDRINUSE:
    case NNG_EEXIST: return EMBER_EEXIST;
    case NNG_ENOSPC: return EMBER_ENOSPC;
    default: return EMBER_EIO;
    }
}

/* Fills err with "<what>: <nng text>" and returns the mapped status. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ember_status nng_fail(ember_error *err, int rv, const char *fmt, ...)
{
    char what[EMBER_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(what, sizeof what, fmt, ap) < 0)
        what[0] = '\0';
    va_end(ap);
    return ember_errorf(err, em_link_status(rv), "%s: %s", what,
                        nng_strerror(rv));
}

/* ------------------------------------------------------------ helpers */

/* snprintf that reports truncation: false when buf was too small. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static bool fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A condition variable on CLOCK_MONOTONIC (so deadlines survive clock
 * changes). */
static int cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc == 0 ? 0 : -1;
}

static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                            int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    (void)pthread_cond_timedwait(cv, mu, &ts);
}

static ember_status parse_url(const char *url, url_parts *p,
                              ember_error *err)
{
    memset(p, 0, sizeof *p);
    if (url == NULL || url[0] == '\0')
        return ember_errorf(err, EMBER_EINVAL, "link URL is empty");
    size_t n = strlen(url);
    if (n > EM_LINK_URL_MAX - 24)
        return ember_errorf(err, EMBER_EINVAL,
                            "link URL '%.64s...' is %zu bytes long (at most "
                            "%d)",
                            url, n, EM_LINK_URL_MAX - 24);
    const char *sep = strstr(url, "://");
    if (sep == NULL || sep == url ||
        (size_t)(sep - url) >= sizeof p->scheme_name)
        return ember_errorf(err, EMBER_EINVAL,
                            "link URL '%s' has no scheme (want "
                            "inproc://, ipc:// or tcp://)",
                            url);
    memcpy(p->scheme_name, url, (size_t)(sep - url));
    const char *rest = sep + 3;
    if (strcmp(p->scheme_name, "inproc") == 0) {
        p->scheme = SCHEME_INPROC;
    } else if (strcmp(p->scheme_name, "ipc") == 0 ||
               strcmp(p->scheme_name, "abstract") == 0) {
        p->scheme = SCHEME_IPC;
    } else if (strcmp(p->scheme_name, "tcp") == 0 ||
               strcmp(p->scheme_name, "tcp4") == 0 ||
               strcmp(p->scheme_name, "tcp6") == 0) {
        p->scheme = SCHEME_TCP;
        const char *colon = strrchr(rest, ':');
        const char *bracket = strrchr(rest, ']');
        if (colon == NULL || (bracket != NULL && colon < bracket) ||
            colon[1] == '\0')
            return ember_errorf(err, EMBER_EINVAL,
                                "link URL '%s' has no port", url);
        memcpy(p->host, rest, (size_t)(colon - rest));
        p->host[colon - rest] = '\0';
        return EMBER_OK;
    } else {
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "link URL '%s': scheme '%s' is not supported "
                            "(use inproc://, ipc:// or tcp://)",
                            url, p->scheme_name);
    }
    if (rest[0] == '\0')
        return ember_errorf(err, EMBER_EINVAL,
                            "link URL '%s' names no address", url);
    return EMBER_OK;
}

/* Sets the options every socket of ours shares. */
static int set_common_opts(nng_socket s, size_t recvmax)
{
    int rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, recvmax);
    if (rv == 0)
        rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, RECONN_MIN_MS);
    if (rv == 0)
        rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, RECONN_MAX_MS);
    return rv;
}

/* ------------------------------------------------------------ registry */

static void registry_add(em_link *l)
{
    pthread_mutex_lock(&reg_mu);
    l->rnext = reg_head;
    reg_head = l;
    pthread_mutex_unlock(&reg_mu);
}

static void registry_remove(em_link *l)
{
    pthread_mutex_lock(&reg_mu);
    for (em_link **pp = &reg_head; *pp != NULL; pp = &(*pp)->rnext) {
        if (*pp == l) {
            *pp = l->rnext;
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
}

/* The registered link with this id, with a reference, or NULL. */
static em_link *registry_hold(uint64_t id)
{
    em_link *l;
    pthread_mutex_lock(&reg_mu);
    for (l = reg_head; l != NULL; l = l->rnext) {
        if (l->id == id) {
            pthread_mutex_lock(&l->mu);
            l->refs++;
            pthread_mutex_unlock(&l->mu);
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return l;
}

static void link_hold(em_link *l)
{
    pthread_mutex_lock(&l->mu);
    l->refs++;
    pthread_mutex_unlock(&l->mu);
}

static void link_release(em_link *l)
{
    pthread_mutex_lock(&l->mu);
    l->refs--;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------ the link */

static void rx_done(void *arg);
static void tx_done(void *arg);

static ember_status link_new(em_link **out, em_link_server *s,
                             ember_error *err)
{
    em_link *l = calloc(1, sizeof *l);
    if (l == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory for a link");
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return ember_errorf(err, EMBER_ENOMEM, "cannot create a mutex");
    }
    if (cond_init(&l->cv) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return ember_errorf(err, EMBER_ENOMEM, "cannot create a condition");
    }
    l->id = atomic_fetch_add(&next_link_id, 1);
    l->server = s;
    atomic_init(&l->queued, 0);
    int rv = nng_aio_alloc(&l->rx, rx_done, l);
    if (rv == 0)
        rv = nng_aio_alloc(&l->tx, tx_done, l);
    if (rv != 0) {
        if (l->rx != NULL)
            nng_aio_free(l->rx);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return nng_fail(err, rv, "cannot allocate link aios");
    }
    *out = l;
    return EMBER_OK;
}

/*
 * Makes l dead once: no more sends, the receive chain ends with closed().
 * peer_gone asks the receive chain to drain what already arrived;
 * close_pipe closes our pipe so the peer notices. Callable anywhere.
 */
static void mark_dead(em_link *l, const char *reason, bool peer_gone,
                      bool close_pipe)
{
    pthread_mutex_lock(&l->mu);
    if (l->dead) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->dead = true;
    l->peer_gone = peer_gone;
    snprintf(l->reason, sizeof l->reason, "%s", reason);
    bool had_pipe = l->had_pipe;
    nng_pipe pipe = l->pipe;
    pthread_mutex_unlock(&l->mu);

    nng_aio_cancel(l->rx);
    nng_aio_cancel(l->tx);
    if (close_pipe && had_pipe)
        (void)nng_pipe_close(pipe);
    if (l->has_dialer) {
        (void)nng_dialer_set_ms(l->dialer, NNG_OPT_RECONNMINT,
                                DEAD_RECONN_MS);
        (void)nng_dialer_set_ms(l->dialer, NNG_OPT_RECONNMAXT,
                                DEAD_RECONN_MS);
    }
}

/*
 * Starts a receive. If the link died meanwhile the receive is cancelled:
 * mark_dead's own cancel may have come before the receive was armed.
 */
static void rx_arm(em_link *l)
{
    nng_recv_aio(l->sock, l->rx);
    pthread_mutex_lock(&l->mu);
    bool dead = l->dead;
    pthread_mutex_unlock(&l->mu);
    if (dead)
        nng_aio_cancel(l->rx);
}

static void deliver(em_link *l, nng_msg *m)
{
    if (l->h.recv != NULL)
        l->h.recv(l->h.ctx, l, (const uint8_t *)nng_msg_body(m),
                  nng_msg_len(m));
    nng_msg_free(m);
}

/* The end of the receive chain: the last recv()s, then closed(). */
static void rx_finish(em_link *l, int rv)
{
    if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
        char why[REASON_MAX];
        snprintf(why, sizeof why, "receive failed: %s", nng_strerror(rv));
        mark_dead(l, why, false, true);
    } else {
        mark_dead(l, "closed", false, true);
    }
    pthread_mutex_lock(&l->mu);
    bool drain = l->peer_gone;
    pthread_mutex_unlock(&l->mu);
    /* Messages the peer sent before it went may still sit in the
     * socket's queue; they were delivered by NNG, so deliver them too. */
    if (drain) {
        nng_msg *m;
        while (nng_recvmsg(l->sock, &m, NNG_FLAG_NONBLOCK) == 0)
            deliver(l, m);
    }
    char reason[REASON_MAX];
    pthread_mutex_lock(&l->mu);
    bool call = l->accepted && !l->closed_done;
    l->closed_done = true;
    memcpy(reason, l->reason, sizeof reason);
    pthread_mutex_unlock(&l->mu);
    if (call && l->h.closed != NULL)
        l->h.closed(l->h.ctx, l, reason);
    pthread_mutex_lock(&l->mu);
    l->rx_active = false;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void rx_done(void *arg)
{
    em_link *l = arg;
    int rv = nng_aio_result(l->rx);
    link_hold(l);
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(l->rx);
        nng_aio_set_msg(l->rx, NULL);
        deliver(l, m);
        rx_arm(l);
    } else {
        rx_finish(l, rv);
    }
    link_release(l);
}

/* Hands m to the send aio; tx_busy is already set by the caller. */
static void tx_start(em_link *l, nng_msg *m)
{
    nng_aio_set_msg(l->tx, m);
    nng_send_aio(l->sock, l->tx);
    pthread_mutex_lock(&l->mu);
    bool dead = l->dead;
    pthread_mutex_unlock(&l->mu);
    if (dead)
        nng_aio_cancel(l->tx);
}

/* Empties the FIFO (mu held); the caller frees nothing else. */
static void queue_drop_locked(em_link *l)
{
    while (l->qlen > 0) {
        nng_msg_free(l->q[l->qhead]);
        l->qhead = (l->qhead + 1) % l->qcap;
        l->qlen--;
    }
    l->qhead = 0;
    atomic_store(&l->queued, 0);
}

static void tx_done(void *arg)
{
    em_link *l = arg;
    int rv = nng_aio_result(l->tx);
    link_hold(l);
    if (rv != 0) {
        nng_msg *m = nng_aio_get_msg(l->tx);
        nng_aio_set_msg(l->tx, NULL);
        if (m != NULL)
            nng_msg_free(m);
        char why[REASON_MAX];
        snprintf(why, sizeof why, "send failed: %s", nng_strerror(rv));
        mark_dead(l, why, false, true); /* no-op when already dead */
    }
    pthread_mutex_lock(&l->mu);
    atomic_fetch_sub(&l->queued, l->inflight);
    l->inflight = 0;
    if (l->dead || l->qlen == 0) {
        queue_drop_locked(l);
        l->tx_busy = false;
        l->refs--;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        return;
    }
    nng_msg *next = l->q[l->qhead];
    l->qhead = (l->qhead + 1) % l->qcap;
    l->qlen--;
    l->inflight = nng_msg_len(next);
    pthread_mutex_unlock(&l->mu);
    tx_start(l, next);
    link_release(l);
}

/* Appends m to the FIFO (mu held). EMBER_ENOMEM when it cannot grow. */
static ember_status queue_push_locked(em_link *l, nng_msg *m)
{
    if (l->qlen == l->qcap) {
        size_t cap = l->qcap ? l->qcap * 2 : 64;
        nng_msg **q = malloc(cap * sizeof *q);
        if (q == NULL)
            return EMBER_ENOMEM;
        for (size_t i = 0; i < l->qlen; i++)
            q[i] = l->q[(l->qhead + i) % l->qcap];
        free(l->q);
        l->q = q;
        l->qcap = cap;
        l->qhead = 0;
    }
    l->q[(l->qhead + l->qlen) % l->qcap] = m;
    l->qlen++;
    return EMBER_OK;
}

/* How long link_destroy waits for nng_close. */
#define CLOSE_WAIT_MS 3000

typedef struct closer {
    nng_socket sock;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, abandoned;
} closer;

static void *closer_main(void *arg)
{
    closer *c = arg;
    nng_close(c->sock);
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    int abandoned = c->abandoned;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (abandoned) { /* the waiter gave up and left c to us */
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
    }
    return NULL;
}

/* Closes sock on a helper thread, waiting at most ms; false when NNG did
 * not finish in time (the thread keeps waiting for it, detached). */
static bool close_socket_bounded(nng_socket sock, int ms)
{
    closer *c = calloc(1, sizeof *c);
    pthread_t t;
    pthread_attr_t attr;
    if (!c || pthread_attr_init(&attr) != 0) {
        free(c);
        nng_close(sock);
        return true;
    }
    c->sock = sock;
    pthread_mutex_init(&c->mu, NULL);
    cond_init(&c->cv);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, closer_main, c) != 0) {
        pthread_attr_destroy(&attr);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        nng_close(sock);
        return true;
    }
    pthread_attr_destroy(&attr);
    int64_t deadline = now_ms() + ms;
    pthread_mutex_lock(&c->mu);
    while (!c->done && now_ms() < deadline)
        cond_wait_until(&c->cv, &c->mu, deadline);
    int done = c->done;
    if (!done)
        c->abandoned = 1;
    pthread_mutex_unlock(&c->mu);
    if (done) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
    }
    return done;
}

/*
 * Frees l after making sure nothing of NNG still calls into it. Never from
 * an NNG callback (it closes the socket). reason is what closed() says if
 * it has not run yet.
 */
static void link_destroy(em_link *l, const char *reason)
{
    registry_remove(l);
    mark_dead(l, reason, false, false);
    /* A timer callback may hand l to the reaper; nng_aio_free waits for
     * it, and the reaper only takes links still on the server list. */
    if (l->timer != NULL)
        nng_aio_free(l->timer);
    if (l->sock_open && !close_socket_bounded(l->sock, CLOSE_WAIT_MS)) {
        /* NNG 1.5.2 can hang in nng_close when a message arrives as the
         * socket closes (seen on ipc/tcp). Rather than hang the caller (a
         * kernel loop, a driver), leave the socket and this link to NNG:
         * its callbacks may still refer to them, so they are not freed. */
        em_log(EMBER_LOG_WARN, "link", "link %" PRIu64 ": NNG did not close "
               "its socket within %d ms; leaving it", l->id, CLOSE_WAIT_MS);
        return;
    }
    pthread_mutex_lock(&l->mu);
    while (l->refs > 0 || l->rx_active || l->tx_busy)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    nng_aio_free(l->rx);
    nng_aio_free(l->tx);
    queue_drop_locked(l);
    free(l->q);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ------------------------------------------------------------ server */

/* Hands l to the reaper unless someone else (em_link_close, the server's
 * close) already took it off the server list. */
static void server_reap(em_link_server *s, em_link *l)
{
    pthread_mutex_lock(&s->mu);
    if (l->in_list) {
        if (l->sprev != NULL)
            l->sprev->snext = l->snext;
        else
            s->links = l->snext;
        if (l->snext != NULL)
            l->snext->sprev = l->sprev;
        l->in_list = false;
        l->sprev = NULL;
        l->snext = s->reap_head;
        s->reap_head = l;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Takes l off the server list; false when it was not on it. */
static bool server_unlist(em_link_server *s, em_link *l)
{
    pthread_mutex_lock(&s->mu);
    bool was = l->in_list;
    if (was) {
        if (l->sprev != NULL)
            l->sprev->snext = l->snext;
        else
            s->links = l->snext;
        if (l->snext != NULL)
            l->snext->sprev = l->sprev;
        l->in_list = false;
        l->snext = l->sprev = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return was;
}

static void *reaper_main(void *arg)
{
    em_link_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->reap_head == NULL && !s->reaper_stop)
            pthread_cond_wait(&s->cv, &s->mu);
        em_link *l = s->reap_head;
        if (l == NULL)
            break;
        s->reap_head = l->snext;
        l->snext = NULL;
        pthread_mutex_unlock(&s->mu);
        link_destroy(l, "closed locally");
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The server side of a pipe that came up: ask accept(), then receive. */
static void server_accept(em_link_server *s, em_link *l, nng_pipe p)
{
    nng_aio_cancel(l->timer);
    em_link_handler h;
    memset(&h, 0, sizeof h);
    ember_status st = s->accept(s->accept_ctx, l, &h);
    if (st != EMBER_OK) {
        mark_dead(l, "refused", false, false);
        (void)nng_pipe_close(p);
        server_reap(s, l);
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->h = h;
    l->accepted = true;
    l->rx_active = true;
    pthread_mutex_unlock(&l->mu);
    rx_arm(l);
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    em_link *l = registry_hold((uint64_t)(uintptr_t)arg);
    if (l == NULL) {
        if (ev == NNG_PIPE_EV_ADD_PRE)
            (void)nng_pipe_close(p);
        return;
    }
    pthread_mutex_lock(&l->mu);
    if (ev == NNG_PIPE_EV_ADD_PRE || ev == NNG_PIPE_EV_ADD_POST) {
        /* One pipe per link, ever: a second dialer (or a redial after the
         * first pipe went) is refused. */
        bool refuse = l->had_pipe || l->dead;
        bool gone = false;
        if (!refuse && ev == NNG_PIPE_EV_ADD_POST) {
            l->had_pipe = true;
            l->pipe = p;
            gone = l->early_rem == nng_pipe_id(p);
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
        if (refuse) {
            (void)nng_pipe_close(p);
        } else if (gone) {
            mark_dead(l, "peer disconnected", true, false);
            if (l->server != NULL)
                server_reap(l->server, l);
        } else if (ev == NNG_PIPE_EV_ADD_POST && l->server != NULL) {
            server_accept(l->server, l, p);
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        /* NNG may reap a pipe the peer closed at once while its ADD_POST
         * callback still runs; remember it for ADD_POST to see. */
        bool ours = l->had_pipe && nng_pipe_id(l->pipe) == nng_pipe_id(p);
        if (!l->had_pipe)
            l->early_rem = nng_pipe_id(p);
        pthread_mutex_unlock(&l->mu);
        if (ours)
            mark_dead(l, "peer disconnected", true, false);
    } else {
        pthread_mutex_unlock(&l->mu);
    }
    link_release(l);
}

/* Opens l's PAIR1 socket (not yet listening or dialing). */
static int link_open_socket(em_link *l)
{
    int rv = nng_pair1_open(&l->sock);
    if (rv != 0)
        return rv;
    l->sock_open = true;
    /* The largest message any of our protocols carries (a 1 GiB blob plus
     * its framing): bigger ones are refused by NNG before they are held in
     * memory. */
    rv = set_common_opts(l->sock, ((size_t)1 << 30) + ((size_t)8 << 20));
    void *arg = (void *)(uintptr_t)l->id;
    if (rv == 0)
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, arg);
    if (rv == 0)
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, pipe_event, arg);
    if (rv == 0)
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, pipe_event, arg);
    return rv;
}

static void timer_done(void *arg)
{
    em_link *l = arg;
    if (nng_aio_result(l->timer) != 0)
        return; /* cancelled: the peer came, or the link is going */
    pthread_mutex_lock(&l->mu);
    bool drop = !l->had_pipe && !l->dead;
    pthread_mutex_unlock(&l->mu);
    if (drop) {
        mark_dead(l, "never dialed", false, false);
        server_reap(l->server, l);
    }
}

/*
 * Opens a private channel for one rendezvous; writes the URL the client
 * dials into url (cap bytes). On failure writes the reason into url and
 * returns non-zero.
 */
static int open_channel(em_link_server *s, char *url, size_t cap)
{
    em_link *l;
    ember_error err;
    if (link_new(&l, s, &err) != EMBER_OK) {
        (void)fmt(url, cap, "%s", err.msg);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    if (s->closing) {
        pthread_mutex_unlock(&s->mu);
        link_destroy(l, "closed locally");
        snprintf(url, cap, "server closing");
        return -1;
    }
    l->snext = s->links;
    if (s->links != NULL)
        s->links->sprev = l;
    s->links = l;
    l->in_list = true;
    pthread_mutex_unlock(&s->mu);
    /* From here on a failure goes to the reaper, which may close sockets. */

    registry_add(l);
    uint64_t n = atomic_fetch_add(&next_channel, 1);
    char listen_url[EM_LINK_URL_MAX + 1];
    const char *sfx = s->parts.scheme == SCHEME_INPROC ? "/c" : ".c";
    bool fits;
    if (s->parts.scheme == SCHEME_TCP)
        fits = fmt(listen_url, sizeof listen_url, "%s://%s:0",
                   s->parts.scheme_name, s->parts.host);
    else
        fits = fmt(listen_url, sizeof listen_url, "%s%s%llu", s->url, sfx,
                   (unsigned long long)n);
    nng_listener lst;
    int port = 0;
    /* The timer exists before the listener starts: a peer may come at
     * once, and server_accept cancels the timer. */
    int rv = fits ? nng_aio_alloc(&l->timer, timer_done, l) : NNG_EINVAL;
    if (rv == 0)
        rv = link_open_socket(l);
    if (rv == 0)
        rv = nng_listener_create(&lst, l->sock, listen_url);
    if (rv == 0)
        rv = nng_listener_start(lst, 0);
    if (rv == 0 && s->parts.scheme == SCHEME_TCP)
        rv = nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port);
    if (rv != 0) {
        snprintf(url, cap, "cannot open a channel on %s: %s", listen_url,
                 nng_strerror(rv));
        mark_dead(l, "failed", false, false);
        server_reap(s, l);
        return -1;
    }
    nng_sleep_aio(CHANNEL_WAIT_MS, l->timer);
    if (s->parts.scheme == SCHEME_TCP)
        (void)fmt(url, cap, "%s://%s:%d", s->parts.scheme_name,
                  s->parts.host, port);
    else
        (void)fmt(url, cap, "%s", listen_url);
    return 0;
}

/* Answers one rendezvous request, rewriting m into the reply. */
static void answer(em_link_server *s, nng_msg *m)
{
    char text[EM_LINK_URL_MAX + 64];
    char url[EM_LINK_URL_MAX + 32];
    size_t len = nng_msg_len(m);
    const char *body = nng_msg_body(m);
    size_t hello = strlen(RV_HELLO);
    if (len == hello && memcmp(body, RV_HELLO, hello) == 0) {
        if (open_channel(s, url, sizeof url) == 0)
            snprintf(text, sizeof text, "%s%s", RV_OK, url);
        else
            snprintf(text, sizeof text, "%s%s", RV_ERR, url);
    } else if (len >= strlen(RV_FAMILY) &&
               memcmp(body, RV_FAMILY, strlen(RV_FAMILY)) == 0) {
        snprintf(text, sizeof text,
                 "%sunsupported link protocol version (this server "
                 "speaks EMLINK1)",
                 RV_ERR);
    } else {
        snprintf(text, sizeof text,
                 "%snot an ember link request (expected \"%s\")", RV_ERR,
                 RV_HELLO);
    }
    nng_msg_clear(m);
    if (nng_msg_append(m, text, strlen(text)) != 0)
        nng_msg_clear(m);
}

/* The rendezvous loop: receive a request, answer it, repeat. */
static void rv_done(void *arg)
{
    em_link_server *s = arg;
    int rv = nng_aio_result(s->rv);
    if (s->rv_sending) {
        nng_msg *m = rv != 0 ? nng_aio_get_msg(s->rv) : NULL;
        if (m != NULL) {
            nng_msg_free(m);
            nng_aio_set_msg(s->rv, NULL);
        }
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        s->rv_sending = false;
        nng_recv_aio(s->rep, s->rv);
        return;
    }
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (rv != 0) {
        nng_recv_aio(s->rep, s->rv);
        return;
    }
    nng_msg *m = nng_aio_get_msg(s->rv);
    answer(s, m);
    s->rv_sending = true;
    nng_aio_set_msg(s->rv, m);
    nng_send_aio(s->rep, s->rv);
}

ember_status em_link_server_open(em_link_server **out, const char *url,
                                 em_link_accept_fn accept, void *ctx,
                                 ember_error *err)
{
    if (out == NULL || accept == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "em_link_server_open: out and accept are "
                            "required");
    *out = NULL;
    url_parts parts;
    ember_status st = parse_url(url, &parts, err);
    if (st != EMBER_OK)
        return st;
    em_link_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory for a server");
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return ember_errorf(err, EMBER_ENOMEM, "cannot create a mutex");
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ember_errorf(err, EMBER_ENOMEM, "cannot create a condition");
    }
    s->parts = parts;
    s->accept = accept;
    s->accept_ctx = ctx;
    snprintf(s->url, sizeof s->url, "%s", url);

    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        st = ember_errorf(err, EMBER_ENOMEM,
                          "cannot start the link reaper thread");
        goto fail;
    }
    s->reaper_started = true;

    int rv = nng_rep0_open(&s->rep);
    if (rv != 0) {
        st = nng_fail(err, rv, "cannot open the rendezvous socket");
        goto fail;
    }
    s->rep_open = true;
    rv = set_common_opts(s->rep, RV_MAXSZ);
    if (rv != 0) {
        st = nng_fail(err, rv, "cannot set rendezvous socket options");
        goto fail;
    }
    nng_listener lst;
    rv = nng_listener_create(&lst, s->rep, url);
    if (rv == 0)
        rv = nng_listener_start(lst, 0);
    if (rv != 0) {
        st = nng_fail(err, rv, "cannot listen on '%s'", url);
        goto fail;
    }
    if (parts.scheme == SCHEME_TCP) {
        int port = 0;
        rv = nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port);
        if (rv != 0) {
            st = nng_fail(err, rv, "cannot read the port bound for '%s'",
                          url);
            goto fail;
        }
        if (!fmt(s->url, sizeof s->url, "%s://%s:%d", parts.scheme_name,
                 parts.host, port)) {
            st = ember_errorf(err, EMBER_EINVAL, "link URL '%s' is too long",
                              url);
            goto fail;
        }
    }
    rv = nng_aio_alloc(&s->rv, rv_done, s);
    if (rv != 0) {
        st = nng_fail(err, rv, "cannot allocate the rendezvous aio");
        goto fail;
    }
    nng_recv_aio(s->rep, s->rv);
    *out = s;
    return EMBER_OK;

fail:
    em_link_server_close(s);
    return st;
}

const char *em_link_server_url(const em_link_server *s)
{
    return s->url;
}

void em_link_server_close(em_link_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_mutex_unlock(&s->mu);
    if (s->rep_open)
        nng_close(s->rep);
    /* Waits for a rendezvous in progress: after this no link is added. */
    if (s->rv != NULL)
        nng_aio_free(s->rv);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        em_link *l = s->links;
        pthread_mutex_unlock(&s->mu);
        if (l == NULL)
            break;
        if (server_unlist(s, l))
            link_destroy(l, "server closed");
    }
    pthread_mutex_lock(&s->mu);
    s->reaper_stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->reaper_started)
        pthread_join(s->reaper, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ------------------------------------------------------------ client */

/*
 * The REQ side of the rendezvous: asks the server at url for a channel and
 * writes the URL to dial into chan (EM_LINK_URL_MAX + 1 bytes).
 */
static ember_status rendezvous(const char *url, const url_parts *parts,
                               int64_t deadline, int timeout_ms, char *chan,
                               ember_error *err)
{
    nng_socket req;
    nng_msg *m = NULL;
    ember_status st = EMBER_OK;
    int rv = nng_req0_open(&req);
    if (rv != 0)
        return nng_fail(err, rv, "cannot open a rendezvous socket for '%s'",
                        url);
    rv = set_common_opts(req, RV_MAXSZ);
    nng_dialer d;
    if (rv == 0)
        rv = nng_dialer_create(&d, req, url);
    if (rv == 0)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        st = nng_fail(err, rv, "cannot dial '%s'", url);
        goto done;
    }
    int64_t left = deadline - now_ms();
    rv = nng_socket_set_ms(req, NNG_OPT_SENDTIMEO,
                           (nng_duration)(left < 1 ? 1 : left));
    if (rv == 0)
        rv = nng_msg_alloc(&m, 0);
    if (rv == 0)
        rv = nng_msg_append(m, RV_HELLO, strlen(RV_HELLO));
    if (rv == 0) {
        rv = nng_sendmsg(req, m, 0);
        if (rv == 0)
            m = NULL; /* sent: NNG owns it */
    }
    if (rv == 0) {
        /* The send may have waited for the connection: what is left of
         * the deadline bounds the reply. */
        left = deadline - now_ms();
        rv = nng_socket_set_ms(req, NNG_OPT_RECVTIMEO,
                               (nng_duration)(left < 1 ? 1 : left));
    }
    if (rv == 0)
        rv = nng_recvmsg(req, &m, 0);
    if (rv == NNG_ETIMEDOUT) {
        st = ember_errorf(err, EMBER_ETIMEDOUT,
                          "no link server answered at '%s' within %d ms",
                          url, timeout_ms);
        goto done;
    }
    if (rv != 0) {
        st = nng_fail(err, rv, "rendezvous with '%s' failed", url);
        goto done;
    }

    size_t len = nng_msg_len(m);
    const char *body = nng_msg_body(m);
    size_t ok = strlen(RV_OK), bad = strlen(RV_ERR);
    if (len > ok && len - ok <= EM_LINK_URL_MAX &&
        memcmp(body, RV_OK, ok) == 0 && memchr(body, '\0', len) == NULL) {
        memcpy(chan, body + ok, len - ok);
        chan[len - ok] = '\0';
    } else if (len >= bad && memcmp(body, RV_ERR, bad) == 0) {
        char why[200];
        size_t n = len - bad < sizeof why - 1 ? len - bad : sizeof why - 1;
        for (size_t i = 0; i < n; i++) {
            char c = body[bad + i];
            why[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
        why[n] = '\0';
        st = ember_errorf(err, EMBER_EIO, "link server at '%s' refused: %s",
                          url, why);
        goto done;
    } else {
        st = ember_errorf(err, EMBER_EIO,
                          "'%s' is not an ember link server (bad rendezvous "
                          "reply of %zu bytes)",
                          url, len);
        goto done;
    }

    if (parts->scheme == SCHEME_TCP) {
        /* Keep the host we reached the server by; take only the port. */
        const char *colon = strrchr(chan, ':');
        if (colon == NULL || colon[1] == '\0' ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            st = ember_errorf(err, EMBER_EIO,
                              "link server at '%s' sent a bad channel URL "
                              "'%s'",
                              url, chan);
            goto done;
        }
        char port[16];
        snprintf(port, sizeof port, "%.15s", colon + 1);
        if (!fmt(chan, EM_LINK_URL_MAX + 1, "%s://%s:%s",
                 parts->scheme_name, parts->host, port)) {
            st = ember_errorf(err, EMBER_EINVAL, "link URL '%s' is too long",
                              url);
            goto done;
        }
    } else {
        /* The channel must be of the server's own kind. */
        url_parts cp;
        if (parse_url(chan, &cp, NULL) != EMBER_OK ||
            cp.scheme != parts->scheme) {
            st = ember_errorf(err, EMBER_EIO,
                              "link server at '%s' sent a bad channel URL "
                              "'%s'",
                              url, chan);
            goto done;
        }
    }

done:
    if (m != NULL)
        nng_msg_free(m);
    (void)close_socket_bounded(req, CLOSE_WAIT_MS);
    return st;
}

ember_status em_link_dial(em_link **out, const char *url,
                          const em_link_handler *h, int timeout_ms,
                          ember_error *err)
{
    if (out == NULL || h == NULL || timeout_ms <= 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "em_link_dial: out and handler are required and "
                            "timeout_ms must be positive (got %d)",
                            timeout_ms);
    *out = NULL;
    url_parts parts;
    ember_status st = parse_url(url, &parts, err);
    if (st != EMBER_OK)
        return st;
    int64_t deadline = now_ms() + timeout_ms;
    char chan[EM_LINK_URL_MAX + 1];
    st = rendezvous(url, &parts, deadline, timeout_ms, chan, err);
    if (st != EMBER_OK)
        return st;

    em_link *l;
    st = link_new(&l, NULL, err);
    if (st != EMBER_OK)
        return st;
    l->h = *h;
    registry_add(l);
    int rv = link_open_socket(l);
    if (rv == 0)
        rv = nng_dialer_create(&l->dialer, l->sock, chan);
    if (rv == 0) {
        l->has_dialer = true;
        rv = nng_dialer_start(l->dialer, NNG_FLAG_NONBLOCK);
    }
    if (rv != 0) {
        st = nng_fail(err, rv, "cannot dial channel '%s' of '%s'", chan, url);
        goto fail;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->had_pipe && !l->dead && now_ms() < deadline)
        cond_wait_until(&l->cv, &l->mu, deadline);
    bool up = l->had_pipe, dead = l->dead;
    if (up && !dead) {
        l->accepted = true;
        l->rx_active = true;
    }
    pthread_mutex_unlock(&l->mu);
    if (!up) {
        st = ember_errorf(err, EMBER_ETIMEDOUT,
                          "channel '%s' of link server '%s' did not come up "
                          "within %d ms",
                          chan, url, timeout_ms);
        goto fail;
    }
    if (dead) {
        st = ember_errorf(err, EMBER_EIO,
                          "link server '%s' closed channel '%s' at once",
                          url, chan);
        goto fail;
    }
    rx_arm(l);
    *out = l;
    return EMBER_OK;

fail:
    link_destroy(l, "closed locally");
    return st;
}

/* ------------------------------------------------------------ common */

ember_status em_link_send(em_link *l, const void *data, size_t len)
{
    if (l == NULL || (data == NULL && len > 0))
        return EMBER_EINVAL;
    nng_msg *m;
    int rv = nng_msg_alloc(&m, len);
    if (rv != 0)
        return em_link_status(rv);
    if (len > 0)
        memcpy(nng_msg_body(m), data, len);
    pthread_mutex_lock(&l->mu);
    if (l->dead) {
        pthread_mutex_unlock(&l->mu);
        nng_msg_free(m);
        return EMBER_EIO;
    }
    if (l->tx_busy) {
        if (queue_push_locked(l, m) != EMBER_OK) {
            pthread_mutex_unlock(&l->mu);
            nng_msg_free(m);
            return EMBER_ENOMEM;
        }
        atomic_fetch_add(&l->queued, len);
        pthread_mutex_unlock(&l->mu);
        return EMBER_OK;
    }
    l->tx_busy = true;
    l->inflight = len;
    atomic_fetch_add(&l->queued, len);
    pthread_mutex_unlock(&l->mu);
    tx_start(l, m);
    return EMBER_OK;
}

size_t em_link_queued_bytes(const em_link *l)
{
    return l == NULL ? 0 : atomic_load(&l->queued);
}

void em_link_close(em_link *l)
{
    if (l == NULL)
        return;
    if (l->server != NULL)
        (void)server_unlist(l->server, l);
    link_destroy(l, "closed locally");
}

void em_link_close_async(em_link *l)
{
    if (l == NULL)
        return;
    mark_dead(l, "closed locally", false, true);
}

void em_link_set_user(em_link *l, void *p)
{
    l->user = p;
}

void *em_link_user(const em_link *l)
{
    return l->user;
}

uint64_t em_link_id(const em_link *l)
{
    return l->id;
}
