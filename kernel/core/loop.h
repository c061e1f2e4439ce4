/*
 * core/loop.h — the kernel event loop.
 *
 * One thread owns all scheduler state by running em_loop_run(); other
 * threads (and NNG, through its pollable receive descriptors) hand work to
 * it with em_loop_post(). Timers, fd watches, NNG sockets and before-sleep
 * hooks belong to the loop thread. The model is Redis ae.c (timers return
 * their next delay, a hook runs before sleeping) with libuv's run modes, so
 * a test can step the loop one turn at a time against a fake clock.
 * Backend: Linux epoll, woken from other threads through an eventfd.
 *
 * A turn does, in order:
 *   1. now = clock, cached for the turn (em_loop_now_us).
 *   2. Runs the expired timers (deadline <= now) in deadline order, ties in
 *      arming order. A timer re-armed with delay d gets deadline now + d and
 *      does not run again in the same turn; nor does any timer armed during
 *      this step, even with delay 0.
 *   3. Runs the events that were posted before this step began, FIFO per
 *      poster; events posted meanwhile wait for the next turn.
 *   4. Runs the before-sleep hooks, in registration order (hooks registered
 *      during this step first run in the next turn).
 *   5. Polls the fds once. The timeout is 0 in NOWAIT mode, in ONCE mode
 *      when steps 2-3 ran a callback, when events are queued, when a timer
 *      is due or when a DEFAULT run has been asked to stop; otherwise it lasts until the earliest timer deadline (measured
 *      on the loop's clock but slept in real time, so with a fake clock and
 *      no fds a blocking poll simply waits for a post), or forever if no
 *      timer is armed. Ready fd and NNG callbacks are then dispatched; one
 *      removed by an earlier callback of the same turn is not called. The
 *      cached now is refreshed after a poll that may have slept, so a timer
 *      armed from an fd callback counts from the wake-up, not from before it.
 * Work done in steps 2-3 is therefore always followed by the hooks before
 * the loop can block. Work done by fd/NNG callbacks in step 5 gets its hooks
 * at the start of the next turn's step 4 — that turn never blocks before
 * running them, because its poll comes after its hooks.
 *
 * Thread rules: em_loop_post, em_loop_stop, em_loop_clock_now_us and
 * em_loop_on_loop_thread may be called from any thread. Everything else is
 * "loop thread only": the thread inside em_loop_run, or, while no thread
 * runs the loop, the single thread that sets it up or tears it down.
 */
#ifndef EMBER_CORE_LOOP_H
#define EMBER_CORE_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "ember/abi.h"

/* The event loop. Opaque; made by em_loop_create, freed by em_loop_destroy. */
typedef struct em_loop em_loop;

/*
 * Injectable monotonic clock in microseconds. now_us(ctx) must never go
 * backwards and may be called from any thread that calls
 * em_loop_clock_now_us. A NULL clock means CLOCK_MONOTONIC.
 */
typedef struct em_loop_clock {
    uint64_t (*now_us)(void *ctx);
    void *ctx;
} em_loop_clock;

/* A posted event, a before-sleep hook, or a drop function. Loop thread. */
typedef void (*em_loop_fn)(em_loop *loop, void *ctx);

/*
 * Timer callback, on the loop thread. Returns the next delay in microseconds
 * to re-arm the same timer (same id; 0 = next turn), or EM_LOOP_TIMER_STOP
 * (any negative value) to disarm it.
 */
typedef int64_t (*em_loop_timer_fn)(em_loop *loop, uint64_t timer_id,
                                    void *ctx);
#define EM_LOOP_TIMER_STOP (-1)

/* Event bits of fd watches. */
#define EM_LOOP_READABLE 1u
#define EM_LOOP_WRITABLE 2u

/*
 * fd callback, on the loop thread. events holds the ready bits among those
 * watched; a hang-up or error on the fd reports every watched bit so that
 * the callback's read or write sees it.
 */
typedef void (*em_loop_fd_fn)(em_loop *loop, int fd, unsigned events,
                              void *ctx);

/*
 * NNG callback, on the loop thread. Called when the socket may have
 * messages; must drain with nng_recvmsg(..., NNG_FLAG_NONBLOCK) until
 * NNG_EAGAIN (NNG's receive fd stays readable while messages are pending,
 * so a partial drain is called again at the next turn).
 */
typedef void (*em_loop_nng_fn)(em_loop *loop, nng_socket sock, void *ctx);

/* How far em_loop_run goes. */
typedef enum em_loop_run_mode {
    /* Turn after turn until em_loop_stop(). */
    EM_LOOP_RUN_DEFAULT = 0,
    /* One turn whose poll blocks until something happens, unless the
     * turn's timers and events already ran a callback (as libuv's ONCE).
     * If its poll was allowed to block, one more non-blocking turn
     * follows, so that whatever woke the loop (a post, a due timer, the
     * hooks of fd work) has run when em_loop_run returns. */
    EM_LOOP_RUN_ONCE = 1,
    /* One turn; never blocks. */
    EM_LOOP_RUN_NOWAIT = 2
} em_loop_run_mode;

/*
 * Makes a loop in *out. clock is copied (NULL = CLOCK_MONOTONIC). Returns
 * EMBER_OK, EMBER_EINVAL (out is NULL or the clock has no now_us),
 * EMBER_ENOMEM, or EMBER_EIO when epoll or eventfd cannot be made; err
 * (nullable) says why. Any thread; the caller owns the loop.
 */
ember_status em_loop_create(em_loop **out, const em_loop_clock *clock,
                            ember_error *err);

/*
 * Frees the loop. NULL-safe. Calls the drop function (when not NULL) of
 * every posted event that never ran, on the calling thread; disarms the
 * timers and forgets the watches and hooks without calling them. Watched
 * fds and NNG sockets are not closed. Must not be called from a callback,
 * nor while any thread may still post.
 */
void em_loop_destroy(em_loop *loop);

/*
 * The clock as read at the start of the current turn (refreshed after a
 * poll that may have slept, see the turn order). Outside em_loop_run —
 * before the first turn or between runs — it reads the clock afresh, so a
 * timer armed there counts from the present. Loop thread.
 */
uint64_t em_loop_now_us(const em_loop *loop);

/* Reads the loop's clock afresh. Any thread. */
uint64_t em_loop_clock_now_us(const em_loop *loop);

/*
 * Any thread. Queues fn(loop, ctx) to run on the loop thread in a later
 * turn (step 3), FIFO per poster, and wakes a blocked loop. drop (nullable)
 * is called with ctx instead if the loop is destroyed before the event ran.
 * The caller keeps ctx alive until one of the two is called. Returns
 * EMBER_OK, EMBER_EINVAL (loop or fn NULL) or EMBER_ENOMEM (nothing queued).
 */
ember_status em_loop_post(em_loop *loop, em_loop_fn fn, em_loop_fn drop,
                          void *ctx);

/*
 * Loop thread only. Arms a timer that calls fn(loop, id, ctx) once
 * em_loop_now_us() + delay_us has passed; fn's return value makes it
 * periodic or one-shot. delay 0 = next turn. The id is written to *id_out
 * (nullable); ids are never 0 and never reused by this loop. Returns
 * EMBER_OK, EMBER_EINVAL (fn NULL) or EMBER_ENOMEM (nothing armed).
 */
ember_status em_loop_timer_add(em_loop *loop, uint64_t delay_us,
                               em_loop_timer_fn fn, void *ctx,
                               uint64_t *id_out);

/*
 * Loop thread only, also from inside any callback including the timer's
 * own (which then is not re-armed, whatever it returns). O(log n). Returns
 * EMBER_OK, or EMBER_ENOTFOUND if the id is not armed (unknown, fired and
 * stopped, or already cancelled).
 */
ember_status em_loop_timer_cancel(em_loop *loop, uint64_t timer_id);

/*
 * Loop thread only. Microseconds from em_loop_now_us() until the earliest
 * armed timer is due (0 if overdue), or -1 if no timer is armed. A timer
 * whose callback is running is not armed.
 */
int64_t em_loop_next_timer_us(const em_loop *loop);

/*
 * Loop thread (typically from a before-sleep hook): non-zero when the next
 * turn has work already — posted events queued or a timer due — and this
 * DEFAULT run, not asked to stop, will run it without sleeping. Zero in
 * ONCE and NOWAIT runs (they return after the turn). Hooks that batch (the
 * state store) may wait while it is non-zero.
 */
int em_loop_busy(em_loop *loop);

/*
 * Loop thread only. Watches fd (level-triggered) for events (a non-empty
 * mix of EM_LOOP_READABLE and EM_LOOP_WRITABLE) and calls fn(loop, fd, ready,
 * ctx) in step 5 of every turn where it is ready. The caller keeps the fd
 * open until em_loop_fd_remove. Returns EMBER_OK, EMBER_EINVAL (bad fd,
 * events or fn; or an fd epoll cannot watch, such as a regular file),
 * EMBER_EEXIST if fd is already watched (also through em_loop_nng_add),
 * EMBER_ENOMEM, or EMBER_EIO.
 */
ember_status em_loop_fd_add(em_loop *loop, int fd, unsigned events,
                            em_loop_fd_fn fn, void *ctx);

/*
 * Loop thread only. Stops watching fd; a pending ready event of this turn
 * is not delivered. Allowed from inside any callback, the fd's own too.
 * Returns EMBER_OK or EMBER_ENOTFOUND (not watched as a plain fd).
 */
ember_status em_loop_fd_remove(em_loop *loop, int fd);

/*
 * Loop thread only. Watches an NNG socket through its NNG_OPT_RECVFD and
 * calls fn(loop, sock, ctx) in step 5 when messages may be waiting. The
 * caller keeps the socket open until em_loop_nng_remove. Returns EMBER_OK,
 * EMBER_EINVAL (fn NULL, or the socket is closed or cannot receive),
 * EMBER_EEXIST (already watched), EMBER_ENOMEM or EMBER_EIO.
 */
ember_status em_loop_nng_add(em_loop *loop, nng_socket sock,
                             em_loop_nng_fn fn, void *ctx);

/*
 * Loop thread only. Stops watching sock; same rules as em_loop_fd_remove.
 * Returns EMBER_OK or EMBER_ENOTFOUND.
 */
ember_status em_loop_nng_remove(em_loop *loop, nng_socket sock);

/*
 * Loop thread only. Registers a hook that runs as step 4 of every turn, in
 * registration order, before the loop may block (the kernel flushes SQLite
 * and runs one coalesced scheduling pass here). A hook may post events, arm
 * timers and so on; queued events keep the following poll from blocking.
 * Hooks live as long as the loop. Returns EMBER_OK, EMBER_EINVAL (fn NULL)
 * or EMBER_ENOMEM.
 */
ember_status em_loop_add_before_sleep(em_loop *loop, em_loop_fn fn,
                                      void *ctx);

/*
 * Runs the loop on the calling thread, which becomes the loop thread until
 * it returns. Returns the number of callbacks run during this call (timers,
 * posted events, fd and NNG callbacks; hooks are not counted), or a
 * negative ember_status: EMBER_EIO if the poll backend fails, EMBER_EINVAL
 * if loop is NULL, mode is unknown, or the loop is already running
 * (em_loop_run called from one of its callbacks, or from a second thread).
 * Callbacks run before a failure are not counted then. A DEFAULT run
 * returns after the turn in which em_loop_stop() was seen; a stop requested
 * while no DEFAULT run is active ends the next DEFAULT run after one turn.
 */
int64_t em_loop_run(em_loop *loop, em_loop_run_mode mode);

/*
 * Test convenience: em_loop_run(NOWAIT) until a turn runs no callback.
 * Returns the total number of callbacks, or a negative ember_status as
 * em_loop_run does.
 */
int64_t em_loop_run_until_idle(em_loop *loop);

/*
 * Any thread. Makes the current (or next) DEFAULT run return after its
 * current turn, and wakes the loop if it is blocked. NULL-safe.
 */
void em_loop_stop(em_loop *loop);

/*
 * Any thread. Non-zero when the calling thread is inside em_loop_run for
 * this loop (also from inside another loop's run nested in it).
 */
int em_loop_on_loop_thread(const em_loop *loop);

#endif
