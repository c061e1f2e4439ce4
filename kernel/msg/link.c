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
 *
 * The receive chain. Once a link's pipe is up one receive is always armed
 * until the socket closes, also after the link died: it answers PINGs,
 * takes the goodbye's BYE/BYE_ACK, and delivers closed() (the chain is
 * woken by cancelling its receive when the link dies elsewhere), so that
 * recv() and closed() never overlap. It ends (rx_stop) just before the
 * socket closes.
 *
 * The send chain. One send aio per link; control frames (BYE_ACK, BYE,
 * PONG, PING, in that order) go before queued data. A link that died
 * drops its queued data; one that died badly (tx_abort) sends nothing
 * more.
 *
 * Why the goodbye: see "Closing" in link.h. In short, NNG 1.5.2's tcp and
 * ipc transports hang forever when a pipe closes while a message is half
 * read or half written (the transport's receive callback re-arms an aio
 * the close has just stopped: tcptran_pipe_recv_cb / ipc's, between the
 * length header and the body), so a pipe is only closed once both sides
 * agreed that nothing more will be sent. Pipes are never closed on their
 * own after the goodbye: sockets are (nng_close closes a client's dialer
 * before its pipe, so the dialer cannot redial). That happens on a user
 * thread (link_destroy) or on the linger thread (the retire list: a
 * socket whose goodbye is done; the linger list: links whose owner let go
 * before the peer answered).
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
#define RV_VERSION "EMLINK2"
#define RV_HELLO RV_VERSION " HELLO"
#define RV_OK RV_VERSION " OK "
#define RV_ERR RV_VERSION " ERR "
#define RV_BUSY "busy: "
#define RV_FAMILY "EMLINK"
/* Largest rendezvous message either side accepts. */
#define RV_MAXSZ 4096
/* Dial retry back-off while the other side is not there yet. */
#define RECONN_MIN_MS 10
#define RECONN_MAX_MS 200
/* Back-off for a client link's dialer once its one pipe came up, so that
 * it never redials a private listener that would refuse it. */
#define DEAD_RECONN_MS 3600000
/* Retry back-off while a server answers "busy". */
#define BUSY_MIN_MS 20
#define BUSY_MAX_MS 500
/* How long em_link_close waits for the goodbye before it leaves it to the
 * linger thread, how long that one waits for a peer that does not answer
 * (a stopped process may resume: closing its connection under it while it
 * has unread frames and answers them would expose it to NNG's close race),
 * and how long nng_close may take before the link is left to NNG. */
#define GOODBYE_WAIT_MS 3000
#define LINGER_MS 600000
#define CLOSE_WAIT_MS 3000
/* Largest payload: a 1 GiB blob plus its framing, and our frame byte. */
#define PAYLOAD_MAX (((size_t)1 << 30) + ((size_t)8 << 20))
#define REASON_MAX 160

/* Frame types: the first byte of every message on a private channel. */
enum frame {
    FRAME_DATA = 0,
    FRAME_PING = 1,
    FRAME_PONG = 2,
    FRAME_BYE = 3,
    FRAME_BYE_ACK = 4,
};

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
    bool pending;           /* counted in server->npending (server->mu) */
    em_link *rnext;         /* registry (guarded by reg_mu) */
    bool graceful;          /* tcp/ipc: close with a goodbye (fixed) */
    bool is_client;         /* from em_link_dial (fixed) */

    nng_socket sock;
    bool sock_open;
    nng_dialer dialer; /* client links */
    bool has_dialer;
    nng_pipe pipe;     /* the one pipe, once had_pipe */
    nng_aio *rx, *tx;
    nng_aio *timer;    /* server links: the wait to be dialed */
    nng_aio *hb;       /* the heartbeat, once a timeout was set */
    em_link_handler h; /* fixed before rx is first armed */
    void *user;

    /* guarded by mu */
    int refs;              /* NNG callbacks running on this link */
    bool had_pipe;         /* a pipe came up (only one ever may) */
    int early_rem;         /* id of a pipe removed before it came up */
    bool pipe_gone;        /* our pipe was removed */
    bool dead;             /* no more data either way */
    bool peer_gone;        /* dead because the pipe was removed: drain */
    bool tx_abort;         /* died badly: send nothing more */
    bool silent;           /* died of the timeout: do not wait for it */
    bool closing;          /* closed locally (link_quit ran) */
    bool accepted;         /* the user knows the link: closed() is due */
    bool closed_done;      /* closed() ran */
    bool rx_active;        /* the receive chain runs */
    bool rx_stop;          /* the receive chain must end (teardown) */
    bool closed_returned;  /* closed() returned */
    bool parked;           /* on the linger list */
    int64_t linger_until;  /* parked: close anyway after this */
    int sock_state;        /* SOCK_OPEN ... */
    bool retire_queued;    /* on the retire list (holds a ref) */
    em_link *lnext;        /* linger list (guarded by linger_mu) */
    em_link *tnext;        /* retire list (guarded by linger_mu) */
    int cancels;           /* link_cancel calls inside nng_aio_cancel */
    bool cancel_gate;      /* sock_close is past its last cancel */
    bool tx_busy;          /* the send aio is in use */
    enum frame tx_kind;    /* of the frame in the send aio */
    bool want_ping, want_pong, want_bye, want_ack;
    bool sent_bye, sent_ack, ack_done; /* ack_done: BYE_ACK left */
    bool got_bye, got_ack, pipe_closed; /* pipe_closed: by us */
    int timeout_ms;        /* 0: no heartbeat */
    bool hb_running;
    int64_t last_rx, last_ping;
    char reason[REASON_MAX];
    nng_msg **q;           /* send FIFO (ring) of DATA frames */
    size_t qhead, qlen, qcap;
    size_t inflight;       /* payload bytes of the frame in the send aio */
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
    int npending;       /* channels waiting to be dialed */
    bool closing, reaper_stop, reaper_started;
    pthread_t reaper;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static em_link *reg_head;
static _Atomic uint64_t next_link_id = 1;
static _Atomic uint64_t next_channel = 1;
static _Atomic unsigned close_timeouts;

/* The linger thread. It closes the socket of a link whose goodbye is done
 * (the retire list), so that the peer is not kept waiting for the link's
 * owner, and frees links whose goodbye outlived em_link_close's wait (the
 * linger list) when it ends or at linger_until. */
static pthread_once_t linger_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t linger_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t linger_cv;
static em_link *linger_head;
static em_link *retire_head;
static bool linger_ok; /* the thread runs */

/* em_link.sock_state */
enum { SOCK_OPEN, SOCK_CLOSING, SOCK_CLOSED, SOCK_LEFT /* to NNG */ };

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
                             enum scheme scheme, ember_error *err)
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
    l->graceful = scheme != SCHEME_INPROC;
    l->is_client = s == NULL;
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

/* Stops a client link's dialer from ever dialing again. */
static void dialer_quiet(em_link *l)
{
    if (l->has_dialer) {
        (void)nng_dialer_set_ms(l->dialer, NNG_OPT_RECONNMINT,
                                DEAD_RECONN_MS);
        (void)nng_dialer_set_ms(l->dialer, NNG_OPT_RECONNMAXT,
                                DEAD_RECONN_MS);
    }
}

static void linger_start(void);

/* Our BYE_ACK is queued or still leaving (mu held). */
static bool ack_pending_locked(const em_link *l)
{
    return l->want_ack || (l->sent_ack && !l->ack_done);
}

/*
 * The goodbye of l is over and its socket may close (mu held): the pipe
 * went, or, on the client's side, nothing more can come either way (we
 * sent BYE and got BYE_ACK, or got BYE and our BYE_ACK left). The server's
 * side waits for the client to close first: a client whose pipe is closed
 * under it while its socket stays open has its dialer redial, and NNG
 * 1.5.2 leaks a dial that is in progress when the socket closes.
 */
static bool goodbye_done_locked(const em_link *l)
{
    if (!l->graceful || !l->had_pipe)
        return false;
    if (l->pipe_gone)
        return true;
    if (!l->is_client || ack_pending_locked(l))
        return false;
    return l->sent_bye ? l->got_ack : l->got_bye;
}

/* The goodbye of l still runs: its pipe and socket are up and the peer
 * may answer (mu held). */
static bool goodbye_running_locked(const em_link *l)
{
    return l->graceful && l->had_pipe && !l->pipe_gone && !l->tx_abort &&
           l->sock_state == SOCK_OPEN;
}

/*
 * Tells the linger thread about l: to close its socket if its goodbye is
 * done (holding a reference until it has), or to look at it again if it
 * is parked. Never waits for long: callable anywhere, also on NNG's
 * reaper thread.
 */
static void linger_poke(em_link *l)
{
    pthread_mutex_lock(&l->mu);
    bool retire = l->sock_state == SOCK_OPEN && !l->retire_queued &&
                  goodbye_done_locked(l);
    bool parked = l->parked;
    if (retire) {
        l->retire_queued = true;
        l->refs++;
    }
    pthread_mutex_unlock(&l->mu);
    if (!retire && !parked)
        return;
    pthread_once(&linger_once, linger_start);
    if (!linger_ok) {
        /* No thread: the owner's em_link_close closes the socket. */
        pthread_mutex_lock(&l->mu);
        if (retire) {
            l->retire_queued = false;
            l->refs--;
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
        return;
    }
    pthread_mutex_lock(&linger_mu);
    if (retire) {
        l->tnext = retire_head;
        retire_head = l;
    }
    pthread_cond_broadcast(&linger_cv);
    pthread_mutex_unlock(&linger_mu);
}

/*
 * nng_aio_cancel(aio) for l's rx or tx. NNG 1.5.2 calls the socket's
 * cancel routine after dropping the aio's lock, so a cancel racing with
 * nng_close may run on the socket after it was freed (a panic in
 * pthread_mutex_unlock). sock_close shuts the gate and waits for the
 * cancels in flight before it closes; after the gate nothing of l's is
 * pending on the socket that nng_close does not end itself. Callable
 * anywhere but with mu held.
 */
static void link_cancel(em_link *l, nng_aio *aio)
{
    pthread_mutex_lock(&l->mu);
    bool go = !l->cancel_gate;
    if (go)
        l->cancels++;
    pthread_mutex_unlock(&l->mu);
    if (!go)
        return;
    nng_aio_cancel(aio);
    pthread_mutex_lock(&l->mu);
    if (--l->cancels == 0)
        pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/*
 * Makes l dead without a goodbye (the peer went, a send or receive
 * failed, the peer went silent, or the goodbye is over): nothing more is
 * sent, the receive chain is woken to deliver closed(). The reason is kept
 * only if l was not dead yet; peer_gone (the pipe was removed) asks the
 * receive chain to deliver what already arrived. close_pipe closes our
 * pipe so the peer notices. Callable anywhere, also on NNG's reaper thread
 * (it never waits).
 */
static void link_fail(em_link *l, const char *reason, bool peer_gone,
                      bool close_pipe)
{
    pthread_mutex_lock(&l->mu);
    if (!l->dead) {
        l->dead = true;
        l->peer_gone = peer_gone;
        snprintf(l->reason, sizeof l->reason, "%s", reason);
    }
    bool was_aborted = l->tx_abort;
    l->tx_abort = true;
    bool do_close = close_pipe && l->had_pipe && !l->pipe_gone &&
                    !l->pipe_closed;
    if (do_close)
        l->pipe_closed = true;
    nng_pipe pipe = l->pipe;
    pthread_mutex_unlock(&l->mu);

    link_cancel(l, l->rx);
    if (!was_aborted)
        link_cancel(l, l->tx);
    if (do_close)
        (void)nng_pipe_close(pipe);
    dialer_quiet(l);
    linger_poke(l);
}

/*
 * Starts the next frame on the send aio if it is free (see "The send
 * chain"). The frame is chosen under mu, sent outside it.
 */
static void tx_start(em_link *l, nng_msg *m);
static nng_msg *tx_pick_locked(em_link *l);

static void tx_kick(em_link *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->tx_busy) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    nng_msg *m = tx_pick_locked(l);
    if (m != NULL)
        l->tx_busy = true;
    pthread_mutex_unlock(&l->mu);
    if (m != NULL)
        tx_start(l, m);
}

/*
 * Closes l locally: makes it dead ("closed locally" or the given reason),
 * drops queued data, and starts the goodbye when one is possible (tcp/ipc,
 * the pipe still up); otherwise closes the pipe at once. Idempotent;
 * callable anywhere, including callbacks.
 */
static void link_quit(em_link *l, const char *reason)
{
    pthread_mutex_lock(&l->mu);
    if (l->closing) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->closing = true;
    bool bye = l->graceful && l->had_pipe && !l->pipe_gone && !l->tx_abort;
    if (!l->dead) {
        l->dead = true;
        snprintf(l->reason, sizeof l->reason, "%s", reason);
    }
    /* A peer that said BYE first is only owed our BYE_ACK (already due). */
    if (bye && !l->got_bye)
        l->want_bye = true;
    pthread_mutex_unlock(&l->mu);
    if (!bye) {
        link_fail(l, reason, false, true);
        return;
    }
    dialer_quiet(l);
    tx_kick(l);
    /* Wakes the receive chain, which delivers closed(). */
    link_cancel(l, l->rx);
}

/*
 * Starts a receive. If l died and closed() is still due, or the chain must
 * end, the receive is cancelled at once so that the chain sees it (the
 * cancel that asked for it may have come before the receive was armed).
 */
static void rx_arm(em_link *l)
{
    nng_recv_aio(l->sock, l->rx);
    pthread_mutex_lock(&l->mu);
    bool kick = l->rx_stop || (l->dead && l->accepted && !l->closed_done);
    pthread_mutex_unlock(&l->mu);
    if (kick)
        link_cancel(l, l->rx);
}

/* Handles one frame from the peer; takes m. */
static void rx_frame(em_link *l, nng_msg *m)
{
    size_t len = nng_msg_len(m);
    const uint8_t *b = nng_msg_body(m);
    int64_t now = now_ms();
    bool kick = false, poke = false, bad = false;
    pthread_mutex_lock(&l->mu);
    l->last_rx = now;
    if (len == 0) {
        bad = true;
    } else if (b[0] == FRAME_DATA) {
        bool deliver = l->accepted && !l->closed_done &&
                       (!l->dead || l->peer_gone);
        pthread_mutex_unlock(&l->mu);
        if (deliver && l->h.recv != NULL)
            l->h.recv(l->h.ctx, l, b + 1, len - 1);
        nng_msg_free(m);
        return;
    } else if (b[0] == FRAME_PING) {
        /* After our BYE or BYE_ACK nothing may follow. */
        if (!l->sent_bye && !l->sent_ack && !l->tx_abort) {
            l->want_pong = true;
            kick = true;
        }
    } else if (b[0] == FRAME_PONG) {
        /* last_rx is all a PONG is for */
    } else if (b[0] == FRAME_BYE) {
        l->got_bye = true;
        if (!l->sent_ack && !l->tx_abort) {
            l->want_ack = true;
            kick = true;
        }
        if (!l->dead) {
            l->dead = true;
            snprintf(l->reason, sizeof l->reason, "peer disconnected");
        }
    } else if (b[0] == FRAME_BYE_ACK) {
        l->got_ack = true;
        poke = true;
        pthread_cond_broadcast(&l->cv);
    } else {
        bad = true;
    }
    pthread_mutex_unlock(&l->mu);
    nng_msg_free(m);
    if (bad) {
        char why[REASON_MAX];
        snprintf(why, sizeof why, "protocol error: %s",
                 len == 0 ? "an empty frame" : "an unknown frame type");
        link_fail(l, why, false, true);
        return;
    }
    if (kick)
        tx_kick(l);
    if (poke)
        linger_poke(l);
}

/* After a receive completed: closed() if due, then re-arm or end. */
static void rx_after(em_link *l, bool again)
{
    pthread_mutex_lock(&l->mu);
    bool call = l->dead && l->accepted && !l->closed_done;
    bool drain = call && l->peer_gone;
    pthread_mutex_unlock(&l->mu);
    /* Messages the peer sent before its pipe went may still sit in the
     * socket's queue; they were delivered by NNG, so deliver them too. */
    if (drain) {
        nng_msg *m;
        while (nng_recvmsg(l->sock, &m, NNG_FLAG_NONBLOCK) == 0)
            rx_frame(l, m);
    }
    if (call) {
        char reason[REASON_MAX];
        pthread_mutex_lock(&l->mu);
        l->closed_done = true;
        memcpy(reason, l->reason, sizeof reason);
        pthread_mutex_unlock(&l->mu);
        if (l->h.closed != NULL)
            l->h.closed(l->h.ctx, l, reason);
        pthread_mutex_lock(&l->mu);
        l->closed_returned = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_lock(&l->mu);
    if (again && !l->rx_stop) {
        pthread_mutex_unlock(&l->mu);
        rx_arm(l);
        return;
    }
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
        rx_frame(l, m);
    } else if (rv == NNG_ECLOSED) {
        link_fail(l, "closed", false, false);
    } else if (rv != NNG_ECANCELED) {
        char why[REASON_MAX];
        snprintf(why, sizeof why, "receive failed: %s", nng_strerror(rv));
        link_fail(l, why, false, true);
    }
    /* The chain ends only when the socket closes (or fails). */
    rx_after(l, rv == 0 || rv == NNG_ECANCELED);
    link_release(l);
}

/* Empties the data FIFO (mu held). */
static void queue_drop_locked(em_link *l)
{
    while (l->qlen > 0) {
        nng_msg_free(l->q[l->qhead]);
        l->qhead = (l->qhead + 1) % l->qcap;
        l->qlen--;
    }
    l->qhead = 0;
    atomic_store(&l->queued, l->inflight);
}

/* A one-byte control frame, or NULL when out of memory (the frame is then
 * skipped: a PING or PONG does not matter, a missing goodbye frame only
 * makes the peer wait for its bound). */
static nng_msg *control_frame(enum frame t)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, 1) != 0)
        return NULL;
    *(uint8_t *)nng_msg_body(m) = (uint8_t)t;
    return m;
}

/*
 * The next frame for the free send aio, or NULL (mu held). Sets tx_kind
 * and inflight for it.
 */
static nng_msg *tx_pick_locked(em_link *l)
{
    if (l->tx_abort || l->dead)
        queue_drop_locked(l);
    if (l->tx_abort)
        return NULL;
    enum frame t;
    if (l->want_ack) {
        l->want_ack = false;
        l->sent_ack = true;
        t = FRAME_BYE_ACK;
    } else if (l->sent_bye || l->sent_ack) {
        return NULL; /* nothing may follow our BYE or BYE_ACK */
    } else if (l->want_bye) {
        l->want_bye = false;
        l->sent_bye = true;
        t = FRAME_BYE;
    } else if (l->want_pong) {
        l->want_pong = false;
        t = FRAME_PONG;
    } else if (l->want_ping) {
        l->want_ping = false;
        t = FRAME_PING;
    } else if (l->qlen > 0) {
        nng_msg *m = l->q[l->qhead];
        l->qhead = (l->qhead + 1) % l->qcap;
        l->qlen--;
        l->tx_kind = FRAME_DATA;
        l->inflight = nng_msg_len(m) - 1;
        return m;
    } else {
        return NULL;
    }
    nng_msg *m = control_frame(t);
    if (m == NULL && t == FRAME_BYE_ACK)
        l->ack_done = true; /* never leaves: do not wait for it */
    l->tx_kind = t;
    l->inflight = 0;
    return m;
}

/* Hands m to the send aio; tx_busy is already set by the caller. */
static void tx_start(em_link *l, nng_msg *m)
{
    nng_aio_set_msg(l->tx, m);
    nng_send_aio(l->sock, l->tx);
    pthread_mutex_lock(&l->mu);
    bool abort = l->tx_abort;
    pthread_mutex_unlock(&l->mu);
    if (abort)
        link_cancel(l, l->tx);
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
        link_fail(l, why, false, true); /* keeps an earlier reason */
    }
    pthread_mutex_lock(&l->mu);
    atomic_fetch_sub(&l->queued, l->inflight);
    l->inflight = 0;
    bool poke = false;
    if (l->tx_kind == FRAME_BYE_ACK) {
        l->ack_done = true;
        poke = true;
        pthread_cond_broadcast(&l->cv);
    }
    nng_msg *next = tx_pick_locked(l);
    if (next == NULL)
        l->tx_busy = false;
    pthread_mutex_unlock(&l->mu);
    if (poke)
        linger_poke(l);
    if (next != NULL)
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

/* ------------------------------------------------------------ heartbeat */

/* How often the heartbeat looks: often enough that a death is noticed
 * close to the timeout, at most once a second. */
static int hb_tick(int timeout_ms)
{
    int t = timeout_ms / 8;
    return t < 1 ? 1 : t > 1000 ? 1000 : t;
}

static void hb_done(void *arg)
{
    em_link *l = arg;
    if (nng_aio_result(l->hb) != 0) {
        pthread_mutex_lock(&l->mu);
        l->hb_running = false;
        pthread_mutex_unlock(&l->mu);
        return;
    }
    int64_t now = now_ms();
    pthread_mutex_lock(&l->mu);
    int t = l->timeout_ms;
    if (t <= 0 || l->dead) {
        l->hb_running = false;
        pthread_mutex_unlock(&l->mu);
        return;
    }
    int64_t idle = now - l->last_rx;
    bool expire = idle >= t;
    bool ping = false;
    if (expire) {
        l->silent = true;
        l->hb_running = false;
    } else if (idle >= t / 4 && now - l->last_ping >= t / 4 &&
               !l->want_ping) {
        l->want_ping = true;
        l->last_ping = now;
        ping = true;
    }
    pthread_mutex_unlock(&l->mu);
    if (expire) {
        /* Dead as if disconnected, but the pipe stays and the goodbye
         * starts: a stopped peer that resumes reads what we sent, answers
         * into a live connection and then takes our BYE. */
        link_quit(l, EM_LINK_TIMED_OUT);
        return;
    }
    if (ping)
        tx_kick(l);
    nng_sleep_aio(hb_tick(t), l->hb);
}

/* ------------------------------------------------------------ closing */

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

/*
 * Closes sock on a helper thread, waiting at most ms; false when NNG did
 * not finish in time (the thread keeps waiting for it, detached; counted
 * in close_timeouts). The last guard against NNG's close race: the
 * goodbye keeps it from being needed.
 */
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
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        pthread_attr_destroy(&attr);
        free(c);
        nng_close(sock);
        return true;
    }
    if (cond_init(&c->cv) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_attr_destroy(&attr);
        free(c);
        nng_close(sock);
        return true;
    }
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
    } else {
        atomic_fetch_add(&close_timeouts, 1);
    }
    return done;
}

unsigned em_link_close_timeouts(void)
{
    return atomic_load(&close_timeouts);
}

/*
 * Closes l's socket, once: the receive chain ends first (delivering
 * closed() if still due; NNG 1.5.2 leaves a receive that is started while
 * its socket closes pending forever), then nng_close, bounded. A second
 * caller waits for the first. false when NNG did not close the socket in
 * time (l is then left to NNG).
 */
static bool sock_close(em_link *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->sock_state == SOCK_CLOSING)
        pthread_cond_wait(&l->cv, &l->mu);
    if (l->sock_state != SOCK_OPEN) {
        bool ok = l->sock_state == SOCK_CLOSED;
        pthread_mutex_unlock(&l->mu);
        return ok;
    }
    l->sock_state = SOCK_CLOSING;
    l->rx_stop = true;
    pthread_mutex_unlock(&l->mu);
    link_cancel(l, l->rx);
    pthread_mutex_lock(&l->mu);
    while (l->rx_active)
        pthread_cond_wait(&l->cv, &l->mu);
    l->cancel_gate = true;
    while (l->cancels > 0)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    bool ok = !l->sock_open || close_socket_bounded(l->sock, CLOSE_WAIT_MS);
    if (!ok)
        /* NNG's close race (see link.h) despite the goodbye. Rather than
         * hang the caller (a kernel loop, a driver), leave the socket and
         * this link to NNG: its callbacks may still refer to them, so they
         * are not freed. */
        em_log(EMBER_LOG_WARN, "link", "link %" PRIu64 ": NNG did not close "
               "its socket within %d ms; leaving it", l->id, CLOSE_WAIT_MS);
    pthread_mutex_lock(&l->mu);
    l->sock_state = ok ? SOCK_CLOSED : SOCK_LEFT;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return ok;
}

/* Takes l off the retire list if it waits there (dropping its ref). */
static void retire_cancel(em_link *l)
{
    bool found = false;
    pthread_mutex_lock(&linger_mu);
    for (em_link **pp = &retire_head; *pp != NULL; pp = &(*pp)->tnext) {
        if (*pp == l) {
            *pp = l->tnext;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&linger_mu);
    if (found) {
        pthread_mutex_lock(&l->mu);
        l->retire_queued = false;
        l->refs--;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

/*
 * Frees l after making sure nothing of NNG still calls into it: ends what
 * is left of the goodbye, closes the socket (if the linger thread did not
 * already), waits for the callbacks. Never from an NNG callback. reason is
 * what closed() says if it has not run yet.
 */
static void link_finish(em_link *l, const char *reason)
{
    registry_remove(l);
    link_fail(l, reason, false, false);
    retire_cancel(l);
    /* A timer callback may hand l to the reaper; nng_aio_free waits for
     * it, and the reaper only takes links still on the server list. */
    if (l->timer != NULL)
        nng_aio_free(l->timer);
    if (l->hb != NULL)
        nng_aio_free(l->hb);
    if (!sock_close(l))
        return; /* left to NNG */
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

/* The linger thread (see linger_head). Retiring comes first: link_finish
 * of a parked link waits for the reference a retire holds. */
static void *linger_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&linger_mu);
    for (;;) {
        em_link *l = retire_head;
        if (l != NULL) {
            retire_head = l->tnext;
            l->tnext = NULL;
            pthread_mutex_unlock(&linger_mu);
            (void)sock_close(l);
            pthread_mutex_lock(&l->mu);
            l->refs--;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            pthread_mutex_lock(&linger_mu);
            continue;
        }
        int64_t now = now_ms(), next = INT64_MAX;
        em_link **pp = &linger_head, *done = NULL;
        for (; *pp != NULL; pp = &(*pp)->lnext) {
            l = *pp;
            pthread_mutex_lock(&l->mu);
            bool over = !goodbye_running_locked(l) ||
                        goodbye_done_locked(l) || now >= l->linger_until;
            if (l->linger_until < next)
                next = l->linger_until;
            pthread_mutex_unlock(&l->mu);
            if (over) {
                done = l;
                *pp = l->lnext;
                break;
            }
        }
        if (done != NULL) {
            pthread_mutex_unlock(&linger_mu);
            link_finish(done, "closed locally");
            pthread_mutex_lock(&linger_mu);
            continue;
        }
        if (next == INT64_MAX)
            pthread_cond_wait(&linger_cv, &linger_mu);
        else
            cond_wait_until(&linger_cv, &linger_mu, next);
    }
    return NULL;
}

static void linger_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    if (cond_init(&linger_cv) != 0 || pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    linger_ok = pthread_create(&t, &attr, linger_main, NULL) == 0;
    pthread_attr_destroy(&attr);
}

/*
 * Leaves l, whose goodbye still runs, to the linger thread. closed() has
 * returned (or was never due): no callback of the user's runs any more.
 * false when there is no linger thread (the caller then finishes l).
 */
static bool link_park(em_link *l)
{
    pthread_once(&linger_once, linger_start);
    if (!linger_ok)
        return false;
    pthread_mutex_lock(&l->mu);
    l->parked = true;
    l->linger_until = now_ms() + LINGER_MS;
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_lock(&linger_mu);
    l->lnext = linger_head;
    linger_head = l;
    pthread_cond_broadcast(&linger_cv);
    pthread_mutex_unlock(&linger_mu);
    return true;
}

/*
 * Closes l for its owner: starts the goodbye (unless it already runs),
 * waits for it until deadline (ms, now_ms clock; not for a peer that went
 * silent), makes sure closed() ran and returned, and then frees l, or
 * leaves it to the linger thread if the peer has not answered yet. Never
 * from an NNG callback. reason is what closed() says if it has not run.
 */
static void link_destroy(em_link *l, const char *reason, int64_t deadline)
{
    link_quit(l, reason);
    pthread_mutex_lock(&l->mu);
    while (goodbye_running_locked(l) && !goodbye_done_locked(l) &&
           !l->silent && now_ms() < deadline)
        cond_wait_until(&l->cv, &l->mu, deadline);
    bool late = goodbye_running_locked(l) && !goodbye_done_locked(l);
    /* The receive chain delivers closed() (link_quit woke it). */
    while (late && l->accepted && !l->closed_returned && l->rx_active)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    if (late && link_park(l))
        return;
    link_finish(l, reason);
}

/* ------------------------------------------------------------ server */

/* Uncounts l from the channels waiting to be dialed (s->mu held). */
static void pending_done_locked(em_link_server *s, em_link *l)
{
    if (l->pending) {
        l->pending = false;
        s->npending--;
    }
}

/* Hands l to the reaper unless someone else (em_link_close, the server's
 * close) already took it off the server list. */
static void server_reap(em_link_server *s, em_link *l)
{
    pthread_mutex_lock(&s->mu);
    pending_done_locked(s, l);
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
    pending_done_locked(s, l);
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
        link_destroy(l, "closed locally", now_ms() + GOODBYE_WAIT_MS);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The server side of a pipe that came up: ask accept(), then receive. */
static void server_accept(em_link_server *s, em_link *l, nng_pipe p)
{
    (void)p;
    nng_aio_cancel(l->timer);
    pthread_mutex_lock(&s->mu);
    pending_done_locked(s, l);
    pthread_mutex_unlock(&s->mu);
    em_link_handler h;
    memset(&h, 0, sizeof h);
    ember_status st = s->accept(s->accept_ctx, l, &h);
    pthread_mutex_lock(&l->mu);
    if (st == EMBER_OK) {
        l->h = h;
        l->accepted = true;
    }
    l->last_rx = now_ms();
    l->rx_active = true;
    pthread_mutex_unlock(&l->mu);
    /* A refused peer gets a goodbye too (the receive chain takes its
     * answer); the reaper frees the link once it is over. */
    rx_arm(l);
    if (st != EMBER_OK) {
        link_quit(l, "refused");
        server_reap(s, l);
    }
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
            if (gone)
                l->pipe_gone = true;
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
        if (refuse) {
            (void)nng_pipe_close(p);
        } else if (gone) {
            link_fail(l, "peer disconnected", true, false);
            if (l->server != NULL)
                server_reap(l->server, l);
        } else if (ev == NNG_PIPE_EV_ADD_POST && l->server != NULL) {
            server_accept(l->server, l, p);
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        /* NNG may reap a pipe the peer closed at once while its ADD_POST
         * callback still runs; remember it for ADD_POST to see. This runs
         * on NNG's reaper thread: nothing here may wait. */
        bool ours = l->had_pipe && nng_pipe_id(l->pipe) == nng_pipe_id(p);
        if (!l->had_pipe)
            l->early_rem = nng_pipe_id(p);
        if (ours) {
            l->pipe_gone = true;
            pthread_cond_broadcast(&l->cv);
        }
        pthread_mutex_unlock(&l->mu);
        if (ours)
            link_fail(l, "peer disconnected", true, false);
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
    /* The largest message any of our protocols carries, plus our frame
     * byte: bigger ones are refused by NNG before they are held in
     * memory. */
    rv = set_common_opts(l->sock, PAYLOAD_MAX + 1);
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
        link_fail(l, "never dialed", false, false);
        server_reap(l->server, l);
    }
}

/*
 * Opens a private channel for one rendezvous; writes the URL the client
 * dials into url (cap bytes). On failure writes the reason into url and
 * returns -1, or 1 when too many channels wait to be dialed.
 */
static int open_channel(em_link_server *s, char *url, size_t cap)
{
    em_link *l;
    ember_error err;
    if (link_new(&l, s, s->parts.scheme, &err) != EMBER_OK) {
        (void)fmt(url, cap, "%s", err.msg);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    if (s->closing || s->npending >= EM_LINK_MAX_PENDING) {
        bool busy = !s->closing;
        pthread_mutex_unlock(&s->mu);
        link_destroy(l, "closed locally", 0);
        if (busy)
            snprintf(url, cap,
                     "%stoo many link channels wait to be dialed (%d); "
                     "try again later",
                     RV_BUSY, EM_LINK_MAX_PENDING);
        else
            snprintf(url, cap, "server closing");
        return busy ? 1 : -1;
    }
    l->snext = s->links;
    if (s->links != NULL)
        s->links->sprev = l;
    s->links = l;
    l->in_list = true;
    l->pending = true;
    s->npending++;
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
    if (rv == 0 && s->parts.scheme == SCHEME_TCP)
        (void)nng_listener_set_bool(lst, NNG_OPT_TCP_KEEPALIVE, true);
    if (rv == 0)
        rv = nng_listener_start(lst, 0);
    if (rv == 0 && s->parts.scheme == SCHEME_TCP)
        rv = nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port);
    if (rv != 0) {
        snprintf(url, cap, "cannot open a channel on %s: %s", listen_url,
                 nng_strerror(rv));
        link_fail(l, "failed", false, false);
        server_reap(s, l);
        return -1;
    }
    nng_sleep_aio(EM_LINK_PENDING_MS, l->timer);
    if (s->parts.scheme == SCHEME_TCP)
        (void)fmt(url, cap, "%s://%s:%d", s->parts.scheme_name,
                  s->parts.host, port);
    else
        (void)fmt(url, cap, "%s", listen_url);
    return 0;
}

/* The "EMLINK<digits>" a request starts with (into ver), or false. */
static bool request_version(const char *body, size_t len, char *ver,
                            size_t cap)
{
    size_t fam = strlen(RV_FAMILY), n = fam;
    if (len < fam || memcmp(body, RV_FAMILY, fam) != 0)
        return false;
    while (n < len && n < cap - 1 && body[n] >= '0' && body[n] <= '9')
        n++;
    if (n == fam || n >= cap - 1 || (n < len && body[n] != ' '))
        return false;
    memcpy(ver, body, n);
    ver[n] = '\0';
    return true;
}

/* Answers one rendezvous request, rewriting m into the reply. */
static void answer(em_link_server *s, nng_msg *m)
{
    char text[EM_LINK_URL_MAX + 160];
    char url[EM_LINK_URL_MAX + 96];
    char ver[16];
    size_t len = nng_msg_len(m);
    const char *body = nng_msg_body(m);
    size_t hello = strlen(RV_HELLO);
    if (len == hello && memcmp(body, RV_HELLO, hello) == 0) {
        if (open_channel(s, url, sizeof url) == 0)
            snprintf(text, sizeof text, "%s%s", RV_OK, url);
        else
            snprintf(text, sizeof text, "%s%s", RV_ERR, url);
    } else if (request_version(body, len, ver, sizeof ver) &&
               strcmp(ver, RV_VERSION) != 0) {
        /* Answered in the asker's version, which it can read. */
        snprintf(text, sizeof text,
                 "%s ERR unsupported link protocol version %s (this server "
                 "speaks %s)",
                 ver, ver, RV_VERSION);
    } else if (len >= strlen(RV_FAMILY) &&
               memcmp(body, RV_FAMILY, strlen(RV_FAMILY)) == 0) {
        snprintf(text, sizeof text,
                 "%sunsupported link protocol request (this server speaks "
                 "%s)",
                 RV_ERR, RV_VERSION);
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

/* Starts the goodbye of every link s still has, so that they run side by
 * side rather than one after the other. */
static void server_quit_all(em_link_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    for (em_link *l = s->links; l != NULL; l = l->snext)
        n++;
    em_link **all = n ? malloc(n * sizeof *all) : NULL;
    if (all == NULL) {
        /* Out of memory or nothing to do: the goodbyes run one by one. */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    n = 0;
    for (em_link *l = s->links; l != NULL; l = l->snext) {
        link_hold(l); /* link_destroy waits for refs: l stays valid */
        all[n++] = l;
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        link_quit(all[i], "server closed");
        link_release(all[i]);
    }
    free(all);
}

void em_link_server_close(em_link_server *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_mutex_unlock(&s->mu);
    bool rep_closed = true;
    if (s->rep_open)
        rep_closed = close_socket_bounded(s->rep, CLOSE_WAIT_MS);
    /* Waits for a rendezvous in progress: after this no link is added. */
    if (s->rv != NULL && rep_closed)
        nng_aio_free(s->rv);
    server_quit_all(s);
    int64_t deadline = now_ms() + GOODBYE_WAIT_MS;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        em_link *l = s->links;
        pthread_mutex_unlock(&s->mu);
        if (l == NULL)
            break;
        if (server_unlist(s, l))
            link_destroy(l, "server closed", deadline);
    }
    pthread_mutex_lock(&s->mu);
    s->reaper_stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->reaper_started)
        pthread_join(s->reaper, NULL);
    if (!rep_closed) {
        /* The rendezvous callback may still run: s stays NNG's. */
        em_log(EMBER_LOG_WARN, "link", "link server %s: NNG did not close "
               "the rendezvous socket within %d ms; leaving it", s->url,
               CLOSE_WAIT_MS);
        return;
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ------------------------------------------------------------ client */

/* Sleeps ms milliseconds. */
static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/*
 * The REQ side of the rendezvous: asks the server at url for a channel and
 * writes the URL to dial into chan (EM_LINK_URL_MAX + 1 bytes). A "busy"
 * answer is asked again, with back-off, until the deadline.
 */
static ember_status rendezvous(const char *url, const url_parts *parts,
                               int64_t deadline, int timeout_ms, char *chan,
                               ember_error *err)
{
    nng_socket req;
    nng_msg *m = NULL;
    ember_status st = EMBER_OK;
    char busy[200] = "";
    int64_t backoff = BUSY_MIN_MS;
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
    size_t len;
    const char *body;
    for (;;) {
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
            if (busy[0] != '\0')
                st = ember_errorf(err, EMBER_ETIMEDOUT,
                                  "link server at '%s' stayed busy for %d "
                                  "ms: %s",
                                  url, timeout_ms, busy);
            else
                st = ember_errorf(err, EMBER_ETIMEDOUT,
                                  "no link server answered at '%s' within "
                                  "%d ms",
                                  url, timeout_ms);
            goto done;
        }
        if (rv != 0) {
            st = nng_fail(err, rv, "rendezvous with '%s' failed", url);
            goto done;
        }
        len = nng_msg_len(m);
        body = nng_msg_body(m);
        size_t err_len = strlen(RV_ERR), busy_len = strlen(RV_BUSY);
        if (len < err_len + busy_len || memcmp(body, RV_ERR, err_len) != 0 ||
            memcmp(body + err_len, RV_BUSY, busy_len) != 0)
            break;
        /* Busy: too many channels wait to be dialed. Ask again. */
        size_t n = len - err_len;
        if (n > sizeof busy - 1)
            n = sizeof busy - 1;
        for (size_t i = 0; i < n; i++) {
            char c = body[err_len + i];
            busy[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
        busy[n] = '\0';
        nng_msg_free(m);
        m = NULL;
        int64_t wait = deadline - now_ms();
        if (wait <= 0) {
            st = ember_errorf(err, EMBER_ETIMEDOUT,
                              "link server at '%s' stayed busy for %d ms: "
                              "%s",
                              url, timeout_ms, busy);
            goto done;
        }
        sleep_ms(wait < backoff ? wait : backoff);
        backoff = backoff * 2 > BUSY_MAX_MS ? BUSY_MAX_MS : backoff * 2;
    }

    size_t ok = strlen(RV_OK);
    char ver[16];
    if (len > ok && len - ok <= EM_LINK_URL_MAX &&
        memcmp(body, RV_OK, ok) == 0 && memchr(body, '\0', len) == NULL) {
        memcpy(chan, body + ok, len - ok);
        chan[len - ok] = '\0';
    } else if (request_version(body, len, ver, sizeof ver) &&
               len > strlen(ver) + 5 &&
               memcmp(body + strlen(ver), " ERR ", 5) == 0) {
        /* A refusal, in any version of the protocol: show its text. */
        size_t skip = strlen(ver) + 5;
        char why[200];
        size_t n = len - skip < sizeof why - 1 ? len - skip : sizeof why - 1;
        for (size_t i = 0; i < n; i++) {
            char c = body[skip + i];
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
    st = link_new(&l, NULL, parts.scheme, err);
    if (st != EMBER_OK)
        return st;
    l->h = *h;
    registry_add(l);
    int rv = link_open_socket(l);
    if (rv == 0)
        rv = nng_dialer_create(&l->dialer, l->sock, chan);
    if (rv == 0) {
        l->has_dialer = true;
        if (parts.scheme == SCHEME_TCP)
            (void)nng_dialer_set_bool(l->dialer, NNG_OPT_TCP_KEEPALIVE,
                                      true);
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
        l->last_rx = now_ms();
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
    /* The one pipe is up: the dialer must never dial again. */
    dialer_quiet(l);
    rx_arm(l);
    *out = l;
    return EMBER_OK;

fail:
    link_destroy(l, "closed locally", now_ms() + GOODBYE_WAIT_MS);
    return st;
}

/* ------------------------------------------------------------ common */

ember_status em_link_send(em_link *l, const void *data, size_t len)
{
    if (l == NULL || (data == NULL && len > 0))
        return EMBER_EINVAL;
    if (len > PAYLOAD_MAX)
        return EMBER_EINVAL;
    nng_msg *m;
    int rv = nng_msg_alloc(&m, len + 1);
    if (rv != 0)
        return em_link_status(rv);
    uint8_t *b = nng_msg_body(m);
    b[0] = FRAME_DATA;
    if (len > 0)
        memcpy(b + 1, data, len);
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
    l->tx_kind = FRAME_DATA;
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
    link_destroy(l, "closed locally", now_ms() + GOODBYE_WAIT_MS);
}

void em_link_close_async(em_link *l)
{
    if (l == NULL)
        return;
    link_quit(l, "closed locally");
}

ember_status em_link_set_timeout(em_link *l, int timeout_ms)
{
    if (l == NULL || timeout_ms < 0)
        return EMBER_EINVAL;
    pthread_mutex_lock(&l->mu);
    l->timeout_ms = timeout_ms;
    l->last_rx = now_ms();
    bool start = timeout_ms > 0 && !l->hb_running && !l->dead;
    if (start)
        l->hb_running = true;
    pthread_mutex_unlock(&l->mu);
    if (!start)
        return EMBER_OK;
    /* Only the caller that set hb_running gets here, and the aio lives
     * until link_destroy. */
    if (l->hb == NULL && nng_aio_alloc(&l->hb, hb_done, l) != 0) {
        pthread_mutex_lock(&l->mu);
        l->hb_running = false;
        pthread_mutex_unlock(&l->mu);
        return EMBER_ENOMEM;
    }
    nng_sleep_aio(hb_tick(timeout_ms), l->hb);
    return EMBER_OK;
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
