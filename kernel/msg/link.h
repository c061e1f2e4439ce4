/*
 * msg/link.h — reliable, ordered message pipes between two peers over NNG.
 *
 * Kernel, executors and clients talk over NNG on inproc:// (embedded),
 * ipc:// (executor processes) and tcp:// (clients of emberd, remote
 * executors). An em_link is one peer connection: messages arrive whole, in
 * the order they were sent, none is dropped while the link is up, sending
 * never blocks the caller (an unbounded FIFO in memory sits behind NNG),
 * and each side learns when the other one is gone.
 *
 * How a link is made (a rendezvous)
 * ---------------------------------
 * The server listens on its public URL with a REP0 socket. A client
 * REQ0-dials it and sends "EMLINK2 HELLO". The server opens a new PAIR1
 * socket on a fresh private URL and replies "EMLINK2 OK <url>":
 *   inproc://name      -> inproc://name/c<N>
 *   ipc:///path        -> ipc:///path.c<N>       (also abstract://)
 *   tcp://host:port    -> tcp://host:<a port chosen by the system>
 * The client dials that URL with PAIR1 (for tcp it keeps the host it
 * dialed and takes only the port). From then on both sides use the PAIR1
 * pair: non-polyamorous PAIR1 has one pipe and applies back-pressure rather
 * than dropping. Anything else on the rendezvous socket gets
 * "EMLINK2 ERR <why>" and changes nothing (an "EMLINK1 ..." request gets
 * "EMLINK1 ERR <why>", so that older clients can print the refusal). A
 * private listener accepts one pipe in its life. At most
 * EM_LINK_MAX_PENDING channels may wait to be dialed at once; one more
 * rendezvous gets "EMLINK2 ERR busy: ..." (em_link_dial retries those until
 * its deadline), and a channel nobody dials within EM_LINK_PENDING_MS is
 * dropped. tcp pipes have TCP keepalive on.
 *
 * On the private channel every message is a frame: one type byte, then
 * the payload. DATA frames carry what em_link_send queued; PING/PONG are
 * the heartbeat (em_link_set_timeout) and BYE/BYE_ACK the goodbye.
 *
 * Closing (the goodbye)
 * ---------------------
 * NNG 1.5.2 (Debian 12) has a race in its tcp and ipc transports: when a
 * pipe is closed while its receive (or send) callback is between two reads
 * of one message (header done, body next), the transport re-arms an aio
 * that the close has just stopped; the read never completes, the protocol's
 * pipe_stop waits for it forever, and NNG's single reaper thread - and with
 * it every later nng_close in the process - hangs. A pipe is therefore only
 * closed when nothing is in flight on it: over tcp:// and ipc:// the side
 * that closes sends BYE (after the message it is sending, if any; queued
 * messages are dropped) and keeps reading; the peer answers BYE_ACK as its
 * last frame (its closed() says "peer disconnected"). Then the client's
 * side closes its socket (at once, on a background thread, whether or not
 * its owner called em_link_close yet), and the server's side closes when
 * the client's pipe is gone (the client goes first so that its dialer never
 * redials a dead channel). em_link_close waits up to 3 s for its part; a
 * goodbye that takes longer (a stopped or very busy peer) is finished by
 * that background thread, which closes the connection when the peer
 * answers or goes, or after 10 minutes. A link whose peer went silent
 * (em_link_set_timeout) starts its goodbye at once and does not wait for
 * it. inproc:// has no such race and closes at once.
 *
 * Threads and callbacks
 * ---------------------
 * recv(), closed() and accept() run on NNG threads, never while a thread
 * holds a lock of this module; data passed to them is borrowed for the
 * call. A link's recv() calls never overlap, and closed() is its last
 * callback. Keep callbacks short (they occupy an NNG worker thread); a
 * kernel callback typically copies or posts the message to the event loop.
 *
 * Lifetimes
 * ---------
 *   - A client link (from em_link_dial) is the caller's: free it with
 *     em_link_close.
 *   - A server link is created by the server and handed to accept(). It
 *     stays valid until the caller frees it with em_link_close, or until
 *     em_link_server_close frees all links the server still has. A link
 *     refused by accept() is freed by the server.
 *   - A dead link (peer gone, closed()) stays valid, and must still be
 *     freed as above; sends to it fail with EMBER_EIO.
 *   - em_link_close and em_link_server_close wait for NNG threads, so they
 *     must not be called from any callback of this module. Inside a
 *     callback use em_link_close_async, which only starts closing.
 *   - Do not call anything on a link concurrently with, or after, the call
 *     that frees it.
 */
#ifndef EMBER_KERNEL_MSG_LINK_H
#define EMBER_KERNEL_MSG_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

/* One peer connection. Opaque. */
typedef struct em_link em_link;
/* A rendezvous server that accepts links. Opaque. */
typedef struct em_link_server em_link_server;

/* The longest URL accepted, public or private, in bytes without the NUL. */
#define EM_LINK_URL_MAX 255

/* Private channels of one server that may wait to be dialed at once. */
#define EM_LINK_MAX_PENDING 64

/* How long a private channel waits to be dialed before it is dropped. */
#define EM_LINK_PENDING_MS 5000

/* The closed() reason of a link whose peer sent nothing for longer than
 * the link's timeout (em_link_set_timeout). */
#define EM_LINK_TIMED_OUT "peer did not answer within the link timeout"

/*
 * What a link calls. ctx is passed back unchanged. Either function may be
 * NULL (messages are then discarded / the end goes unnoticed).
 *   recv(ctx, l, data, len): one message, in order; data is valid only for
 *     the call (it is NNG's message body, not copied).
 *   closed(ctx, l, reason): exactly once per link the caller has seen,
 *     after its last recv(), when the peer is gone (its pipe was removed:
 *     it closed the link, its process died, the server closed), when it
 *     was silent for longer than the link's timeout (reason
 *     EM_LINK_TIMED_OUT), or when the link was closed locally
 *     (em_link_close, em_link_close_async, em_link_server_close). reason
 *     is a short text such as "peer disconnected" or "closed locally".
 *     Never runs after em_link_close returned.
 */
typedef struct em_link_handler {
    void *ctx;
    void (*recv)(void *ctx, em_link *l, const uint8_t *data, size_t len);
    void (*closed)(void *ctx, em_link *l, const char *reason);
} em_link_handler;

/*
 * Server side: called once for each peer whose private pipe is up, on an
 * NNG thread, before any recv() of that link. It fills *h (zeroed on entry)
 * with the link's handler and may set the user pointer or send. Returning
 * anything but EMBER_OK refuses the peer: its pipe is closed, the server
 * frees the link and no callback for it follows. Do not free l here.
 */
typedef ember_status (*em_link_accept_fn)(void *ctx, em_link *l,
                                          em_link_handler *h);

/*
 * Maps an NNG error code to an ember_status (the one place that does):
 * 0 -> EMBER_OK, NNG_ENOMEM -> EMBER_ENOMEM, NNG_ETIMEDOUT ->
 * EMBER_ETIMEDOUT, NNG_EINVAL / NNG_EADDRINVAL / NNG_EMSGSIZE ->
 * EMBER_EINVAL, NNG_ENOTSUP -> EMBER_EUNSUPPORTED, NNG_ECANCELED ->
 * EMBER_ECANCELED, NNG_ENOENT -> EMBER_ENOTFOUND, NNG_EADDRINUSE /
 * NNG_EEXIST -> EMBER_EEXIST, NNG_ENOSPC -> EMBER_ENOSPC, everything else
 * (closed, refused, reset, system errors) -> EMBER_EIO. Messages built by
 * this module keep nng_strerror's text. Any thread.
 */
ember_status em_link_status(int nng_rv);

/*
 * Opens a server listening on url (inproc://, ipc://, abstract:// or
 * tcp://; tcp port 0 picks a free port). accept is required; ctx is passed
 * to it. Returns EMBER_OK and *out, or: EMBER_EINVAL (bad arguments or
 * URL), EMBER_EUNSUPPORTED (another scheme), EMBER_EEXIST (address in use),
 * EMBER_EIO / EMBER_ENOMEM, with err filled. Any thread.
 */
ember_status em_link_server_open(em_link_server **out, const char *url,
                                 em_link_accept_fn accept, void *ctx,
                                 ember_error *err);

/*
 * The URL peers dial: the URL given to em_link_server_open with a tcp port
 * 0 replaced by the bound port. Owned by the server; valid until it is
 * closed. Any thread.
 */
const char *em_link_server_url(const em_link_server *s);

/*
 * Stops accepting, closes and frees every link the server still has
 * (closed("server closed") runs for each one accept() took, and the peers
 * see "peer disconnected"; the goodbyes run side by side, so a server with
 * silent peers waits about 3 s in all, not 3 s per peer), waits until no
 * callback of the server or its links runs, and frees the server. Not from
 * a callback of this module. NULL-safe.
 */
void em_link_server_close(em_link_server *s);

/*
 * Client side: the rendezvous with the server at url, then the PAIR1 dial
 * of the private channel. Blocks up to timeout_ms (> 0) for the whole
 * handshake, retrying while nothing listens yet (every 10..200 ms) and
 * while the server answers "busy" (too many channels waiting to be
 * dialed). On EMBER_OK *out is a link whose recv() may already be running;
 * free it with em_link_close. The link has no timeout until
 * em_link_set_timeout gives it one. Errors: EMBER_ETIMEDOUT (no server
 * answered, it stayed busy, or the channel did not come up in time),
 * EMBER_EIO (the peer is not an ember link server, refused us, or went
 * away), EMBER_EINVAL (bad arguments or URL), EMBER_EUNSUPPORTED,
 * EMBER_ENOMEM; err says which URL and why. Not from a callback of this
 * module.
 */
ember_status em_link_dial(em_link **out, const char *url,
                          const em_link_handler *h, int timeout_ms,
                          ember_error *err);

/*
 * Queues a copy of data[0..len) for sending and returns at once; messages
 * leave in the order of the calls that queued them (one nng_aio per link,
 * an unbounded FIFO behind it). Returns EMBER_OK, EMBER_EIO once the link
 * is dead or closing (peer gone or silent, a send or receive failed,
 * closed locally), EMBER_EINVAL for l NULL, data NULL with len > 0 or len
 * over 1 GiB + 8 MiB (more than a peer accepts), EMBER_ENOMEM. Messages
 * still queued when a link dies or is closed are dropped. Any thread,
 * including the link's own callbacks.
 */
ember_status em_link_send(em_link *l, const void *data, size_t len);

/*
 * Bytes accepted by em_link_send and not yet taken by NNG (the FIFO plus
 * the message in flight in the send aio). A producer can pace itself on
 * it. Any thread; the value may be stale by the time it is used.
 */
size_t em_link_queued_bytes(const em_link *l);

/*
 * Closes the link: queued messages are dropped, the goodbye runs (tcp,
 * ipc: see "Closing" above; the call waits for the peer's answer or for
 * the pipe to go, at most 3 s, not at all when the peer is already gone or
 * went silent, and leaves the rest to a background thread), the pipe goes
 * away (the peer sees closed()), this side's closed("closed locally") runs
 * on an NNG thread before the call returns unless it already ran, and the
 * call waits until no callback of l runs; then l is freed (client and
 * server links alike; l must not be used after the call even when its
 * goodbye still runs in the background). Never from a callback of this
 * module. NULL-safe.
 */
void em_link_close(em_link *l);

/*
 * Starts closing l and returns: sends fail from now on, the goodbye starts
 * (tcp, ipc; see "Closing") or the pipe is closed (inproc), and
 * closed("closed locally") follows on an NNG thread
 * (after the calling callback returned, if called from l's own recv()).
 * Does not free l: the owner still calls em_link_close (or
 * em_link_server_close) later. Any thread, including callbacks. NULL-safe;
 * idempotent.
 */
void em_link_close_async(em_link *l);

/*
 * Gives l a timeout: while nothing arrives from the peer, l sends a PING
 * every timeout_ms / 4 (every peer answers PINGs, whether or not it has a
 * timeout of its own), and when nothing at all (data, PING or PONG) has
 * arrived for timeout_ms the peer is declared dead as if it had
 * disconnected: closed(EM_LINK_TIMED_OUT) runs, sends fail, and the goodbye
 * starts (so that a peer that resumes finds a clean end). A peer whose
 * process is stopped, or whose recv() callback blocks, stops answering; an
 * idle peer does not. A single message that takes longer than timeout_ms
 * to arrive also counts as silence. 0 turns the timeout off (the default).
 * Call it right after em_link_dial or inside accept(). Returns EMBER_OK,
 * EMBER_EINVAL (l NULL, timeout_ms < 0), EMBER_ENOMEM. Any thread except
 * concurrently with the call that frees l.
 */
ember_status em_link_set_timeout(em_link *l, int timeout_ms);

/*
 * How many times, in this process, NNG did not close a link's socket
 * within 3 s (the link was then left to NNG, with a warning). The goodbye
 * exists so that this stays 0; tests assert it. Any thread.
 */
unsigned em_link_close_timeouts(void);

/* Sets the user pointer of l (initially NULL). Set it before another
 * thread reads it, e.g. inside accept() or right after em_link_dial. */
void em_link_set_user(em_link *l, void *p);

/* The user pointer of l. Any thread. */
void *em_link_user(const em_link *l);

/* A stable id of l, unique within the process (never 0, never reused).
 * Any thread. */
uint64_t em_link_id(const em_link *l);

#endif /* EMBER_KERNEL_MSG_LINK_H */
