/* The kernel event loop: epoll + eventfd (see core/loop.h for the turn). */
#include "core/loop.h"
#include "util/map.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NOT_IN_HEAP SIZE_MAX
#define WAKE_TAG UINT64_MAX /* epoll data of the eventfd */
#define POLL_BATCH 64

typedef struct post_node {
    struct post_node *next;
    em_loop_fn fn;
    em_loop_fn drop;
    void *ctx;
} post_node;

typedef struct timer {
    uint64_t id;
    uint64_t deadline;
    uint64_t seq; /* arming order, breaks deadline ties */
    size_t pos;   /* index in the heap, NOT_IN_HEAP while running */
    int cancelled;
    em_loop_timer_fn fn;
    void *ctx;
} timer;

typedef struct watch {
    uint32_t gen; /* matches the epoll data of this registration */
    int is_nng;
    unsigned events;
    em_loop_fd_fn fd_fn;
    em_loop_nng_fn nng_fn;
    nng_socket sock;
    void *ctx;
} watch;

typedef struct hook {
    em_loop_fn fn;
    void *ctx;
} hook;

struct em_loop {
    em_loop_clock clock;
    int epfd;
    int wakefd;
    /* Address of the running thread's marker, NULL when not running. */
    _Atomic(const char *) owner;
    atomic_int stop;
    em_loop_run_mode mode; /* of the current run (loop thread) */
    atomic_int in_turn;
    _Atomic uint64_t now; /* cached turn time */

    pthread_mutex_t lock; /* guards head and tail */
    post_node *head;
    post_node *tail;

    timer **heap; /* min-heap on (deadline, seq) */
    size_t heap_count;
    size_t heap_cap;
    em_u64map timers; /* id -> timer */
    uint64_t next_id;
    uint64_t next_seq;
    timer *running; /* the timer whose callback runs now, out of the heap */

    watch **watches; /* indexed by fd */
    size_t watch_cap;
    uint32_t next_gen;

    hook *hooks;
    size_t hook_count;
    size_t hook_cap;
};

/* One per thread; its address identifies the thread that runs a loop. */
static _Thread_local char thread_marker;

static uint64_t monotonic_us(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void wake(em_loop *loop)
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(loop->wakefd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already huge, hence readable: woken. */
}

ember_status em_loop_create(em_loop **out, const em_loop_clock *clock,
                            ember_error *err)
{
    ember_status rc;
    em_loop *loop = NULL;
    if (!out)
        return ember_errorf(err, EMBER_EINVAL, "em_loop_create: out is NULL");
    *out = NULL;
    if (clock && !clock->now_us)
        return ember_errorf(err, EMBER_EINVAL,
                            "em_loop_create: clock has no now_us function");
    loop = calloc(1, sizeof *loop);
    if (!loop)
        return ember_errorf(err, EMBER_ENOMEM, "em_loop_create: out of memory");
    loop->epfd = -1;
    loop->wakefd = -1;
    if (clock)
        loop->clock = *clock;
    else
        loop->clock.now_us = monotonic_us;
    loop->next_id = 1;
    loop->next_gen = 1;
    atomic_init(&loop->owner, NULL);
    atomic_init(&loop->stop, 0);
    atomic_init(&loop->in_turn, 0);
    atomic_init(&loop->now, 0);
    if (pthread_mutex_init(&loop->lock, NULL) != 0) {
        free(loop);
        return ember_errorf(err, EMBER_ENOMEM,
                            "em_loop_create: cannot make a mutex");
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        rc = ember_errorf(err, errno == ENOMEM ? EMBER_ENOMEM : EMBER_EIO,
                          "em_loop_create: epoll_create1: %s",
                          strerror(errno));
        goto fail;
    }
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wakefd < 0) {
        rc = ember_errorf(err, errno == ENOMEM ? EMBER_ENOMEM : EMBER_EIO,
                          "em_loop_create: eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) != 0) {
        rc = ember_errorf(err, errno == ENOMEM ? EMBER_ENOMEM : EMBER_EIO,
                          "em_loop_create: epoll_ctl(eventfd): %s",
                          strerror(errno));
        goto fail;
    }
    *out = loop;
    return EMBER_OK;
fail:
    em_loop_destroy(loop);
    return rc;
}

void em_loop_destroy(em_loop *loop)
{
    if (!loop)
        return;
    post_node *n = loop->head;
    loop->head = loop->tail = NULL;
    while (n) {
        post_node *next = n->next;
        if (n->drop)
            n->drop(loop, n->ctx);
        free(n);
        n = next;
    }
    for (size_t i = 0; i < loop->heap_count; i++)
        free(loop->heap[i]);
    free(loop->heap);
    em_u64map_free(&loop->timers);
    for (size_t i = 0; i < loop->watch_cap; i++)
        free(loop->watches[i]);
    free(loop->watches);
    free(loop->hooks);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}

uint64_t em_loop_clock_now_us(const em_loop *loop)
{
    return loop->clock.now_us(loop->clock.ctx);
}

uint64_t em_loop_now_us(const em_loop *loop)
{
    if (atomic_load_explicit(&loop->in_turn, memory_order_relaxed))
        return atomic_load_explicit(&loop->now, memory_order_relaxed);
    return em_loop_clock_now_us(loop);
}

ember_status em_loop_post(em_loop *loop, em_loop_fn fn, em_loop_fn drop,
                          void *ctx)
{
    if (!loop || !fn)
        return EMBER_EINVAL;
    post_node *n = malloc(sizeof *n);
    if (!n)
        return EMBER_ENOMEM;
    n->next = NULL;
    n->fn = fn;
    n->drop = drop;
    n->ctx = ctx;
    pthread_mutex_lock(&loop->lock);
    int was_empty = loop->head == NULL;
    if (loop->tail)
        loop->tail->next = n;
    else
        loop->head = n;
    loop->tail = n;
    pthread_mutex_unlock(&loop->lock);
    /* Only the first event of a batch needs to wake the loop: the loop
     * empties the queue before it may block, and does not block while the
     * queue holds anything. */
    if (was_empty)
        wake(loop);
    return EMBER_OK;
}

void em_loop_stop(em_loop *loop)
{
    if (!loop)
        return;
    atomic_store(&loop->stop, 1);
    wake(loop);
}

int em_loop_on_loop_thread(const em_loop *loop)
{
    return loop && atomic_load(&loop->owner) == &thread_marker;
}

/* ---- timers: a min-heap plus an id -> timer hash map ---- */

static int timer_before(const timer *a, const timer *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(em_loop *loop, size_t i, timer *t)
{
    loop->heap[i] = t;
    t->pos = i;
}

static void heap_up(em_loop *loop, size_t i)
{
    timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(em_loop *loop, size_t i)
{
    timer *t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->heap_count)
            break;
        if (c + 1 < loop->heap_count &&
            timer_before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!timer_before(loop->heap[c], t))
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

/* Needs heap_cap > heap_count. */
static void heap_push(em_loop *loop, timer *t)
{
    loop->heap[loop->heap_count] = t;
    t->pos = loop->heap_count++;
    heap_up(loop, t->pos);
}

static void heap_remove(em_loop *loop, timer *t)
{
    size_t i = t->pos;
    timer *last = loop->heap[--loop->heap_count];
    t->pos = NOT_IN_HEAP;
    if (last == t)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->pos);
}

ember_status em_loop_timer_add(em_loop *loop, uint64_t delay_us,
                               em_loop_timer_fn fn, void *ctx,
                               uint64_t *id_out)
{
    if (!loop || !fn)
        return EMBER_EINVAL;
    /* The running timer is out of the heap but may be re-armed after its
     * callback returns: keep a slot for it so re-arming cannot fail. */
    size_t need = loop->heap_count + 1 + (loop->running != NULL);
    if (need > loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
        while (cap < need)
            cap *= 2;
        timer **h = realloc(loop->heap, cap * sizeof *h);
        if (!h)
            return EMBER_ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    if (em_u64map_reserve(&loop->timers, loop->timers.count + 1) != EMBER_OK)
        return EMBER_ENOMEM;
    timer *t = malloc(sizeof *t);
    if (!t)
        return EMBER_ENOMEM;
    t->id = loop->next_id++;
    t->deadline = add_sat(em_loop_now_us(loop), delay_us);
    t->seq = loop->next_seq++;
    t->cancelled = 0;
    t->fn = fn;
    t->ctx = ctx;
    (void)em_u64map_put(&loop->timers, t->id, t); /* reserved above */
    heap_push(loop, t);
    if (id_out)
        *id_out = t->id;
    return EMBER_OK;
}

ember_status em_loop_timer_cancel(em_loop *loop, uint64_t timer_id)
{
    if (!loop)
        return EMBER_EINVAL;
    timer *t = em_u64map_get(&loop->timers, timer_id);
    if (!t)
        return EMBER_ENOTFOUND;
    if (t == loop->running) {
        /* Freed by run_timers once its callback returns. */
        if (t->cancelled)
            return EMBER_ENOTFOUND;
        t->cancelled = 1;
        return EMBER_OK;
    }
    heap_remove(loop, t);
    em_u64map_del(&loop->timers, timer_id);
    free(t);
    return EMBER_OK;
}

int64_t em_loop_next_timer_us(const em_loop *loop)
{
    if (!loop || loop->heap_count == 0)
        return -1;
    uint64_t now = em_loop_now_us(loop);
    uint64_t deadline = loop->heap[0]->deadline;
    if (deadline <= now)
        return 0;
    uint64_t d = deadline - now;
    return d > INT64_MAX ? INT64_MAX : (int64_t)d;
}

static int64_t run_timers(em_loop *loop, uint64_t now)
{
    int64_t ran = 0;
    /* Timers armed from here on (re-armed ones included) wait a turn. */
    uint64_t seq_limit = loop->next_seq;
    while (loop->heap_count > 0) {
        timer *t = loop->heap[0];
        if (t->deadline > now || t->seq >= seq_limit)
            break;
        heap_remove(loop, t);
        loop->running = t;
        int64_t next = t->fn(loop, t->id, t->ctx);
        loop->running = NULL;
        ran++;
        if (t->cancelled || next < 0) {
            em_u64map_del(&loop->timers, t->id);
            free(t);
        } else {
            t->deadline = add_sat(now, (uint64_t)next);
            t->seq = loop->next_seq++;
            heap_push(loop, t); /* room kept by em_loop_timer_add */
        }
    }
    return ran;
}

/* ---- fd and NNG watches ---- */

static ember_status errno_status(int e)
{
    switch (e) {
    case ENOMEM:
    case ENOSPC:
        return EMBER_ENOMEM;
    case EBADF:
    case EPERM:
    case EINVAL:
        return EMBER_EINVAL;
    case EEXIST:
        return EMBER_EEXIST;
    default:
        return EMBER_EIO;
    }
}

static ember_status watch_add(em_loop *loop, int fd, const watch *proto)
{
    if ((size_t)fd >= loop->watch_cap) {
        size_t cap = loop->watch_cap ? loop->watch_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        watch **w = realloc(loop->watches, cap * sizeof *w);
        if (!w)
            return EMBER_ENOMEM;
        memset(w + loop->watch_cap, 0, (cap - loop->watch_cap) * sizeof *w);
        loop->watches = w;
        loop->watch_cap = cap;
    }
    if (loop->watches[fd])
        return EMBER_EEXIST;
    watch *w = malloc(sizeof *w);
    if (!w)
        return EMBER_ENOMEM;
    *w = *proto;
    w->gen = loop->next_gen++;
    if (loop->next_gen == 0)
        loop->next_gen = 1;
    struct epoll_event ev = {0};
    if (w->events & EM_LOOP_READABLE)
        ev.events |= EPOLLIN;
    if (w->events & EM_LOOP_WRITABLE)
        ev.events |= EPOLLOUT;
    ev.data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ember_status rc = errno_status(errno);
        free(w);
        return rc;
    }
    loop->watches[fd] = w;
    return EMBER_OK;
}

static void watch_remove(em_loop *loop, int fd)
{
    /* Fails harmlessly if the caller already closed fd. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    free(loop->watches[fd]);
    loop->watches[fd] = NULL;
}

ember_status em_loop_fd_add(em_loop *loop, int fd, unsigned events,
                            em_loop_fd_fn fn, void *ctx)
{
    if (!loop || fd < 0 || !fn || events == 0 ||
        (events & ~(EM_LOOP_READABLE | EM_LOOP_WRITABLE)))
        return EMBER_EINVAL;
    watch w = {.events = events, .fd_fn = fn, .ctx = ctx};
    return watch_add(loop, fd, &w);
}

ember_status em_loop_fd_remove(em_loop *loop, int fd)
{
    if (!loop || fd < 0 || (size_t)fd >= loop->watch_cap ||
        !loop->watches[fd] || loop->watches[fd]->is_nng)
        return EMBER_ENOTFOUND;
    watch_remove(loop, fd);
    return EMBER_OK;
}

ember_status em_loop_nng_add(em_loop *loop, nng_socket sock,
                             em_loop_nng_fn fn, void *ctx)
{
    if (!loop || !fn)
        return EMBER_EINVAL;
    int fd;
    int rv = nng_socket_get_int(sock, NNG_OPT_RECVFD, &fd);
    if (rv == NNG_ENOMEM)
        return EMBER_ENOMEM;
    if (rv != 0 || fd < 0)
        return EMBER_EINVAL;
    watch w = {.is_nng = 1, .events = EM_LOOP_READABLE, .nng_fn = fn,
               .sock = sock, .ctx = ctx};
    return watch_add(loop, fd, &w);
}

ember_status em_loop_nng_remove(em_loop *loop, nng_socket sock)
{
    if (!loop)
        return EMBER_ENOTFOUND;
    /* By socket id, not by asking NNG: the socket may be closing. */
    for (size_t fd = 0; fd < loop->watch_cap; fd++) {
        watch *w = loop->watches[fd];
        if (w && w->is_nng && nng_socket_id(w->sock) == nng_socket_id(sock)) {
            watch_remove(loop, (int)fd);
            return EMBER_OK;
        }
    }
    return EMBER_ENOTFOUND;
}

/* ---- hooks and the turn ---- */

ember_status em_loop_add_before_sleep(em_loop *loop, em_loop_fn fn,
                                      void *ctx)
{
    if (!loop || !fn)
        return EMBER_EINVAL;
    if (loop->hook_count == loop->hook_cap) {
        size_t cap = loop->hook_cap ? loop->hook_cap * 2 : 4;
        hook *h = realloc(loop->hooks, cap * sizeof *h);
        if (!h)
            return EMBER_ENOMEM;
        loop->hooks = h;
        loop->hook_cap = cap;
    }
    loop->hooks[loop->hook_count++] = (hook){fn, ctx};
    return EMBER_OK;
}

static int64_t run_posts(em_loop *loop)
{
    pthread_mutex_lock(&loop->lock);
    post_node *n = loop->head;
    loop->head = loop->tail = NULL;
    pthread_mutex_unlock(&loop->lock);
    int64_t ran = 0;
    while (n) {
        post_node *next = n->next;
        em_loop_fn fn = n->fn;
        void *ctx = n->ctx;
        free(n);
        fn(loop, ctx);
        ran++;
        n = next;
    }
    return ran;
}

static int posts_queued(em_loop *loop)
{
    pthread_mutex_lock(&loop->lock);
    int queued = loop->head != NULL;
    pthread_mutex_unlock(&loop->lock);
    return queued;
}

int em_loop_busy(em_loop *loop)
{
    /* A run that returns after this turn will not run the next one. */
    if (loop->mode != EM_LOOP_RUN_DEFAULT || atomic_load(&loop->stop))
        return 0;
    return posts_queued(loop) || em_loop_next_timer_us(loop) == 0;
}

/* Milliseconds for epoll_wait: rounded up so that a wake-up never comes
 * before the deadline and then spins. */
static int poll_timeout_ms(em_loop *loop, em_loop_run_mode mode,
                           int64_t ran)
{
    if (mode == EM_LOOP_RUN_NOWAIT || (mode == EM_LOOP_RUN_ONCE && ran) ||
        posts_queued(loop) ||
        (mode == EM_LOOP_RUN_DEFAULT && atomic_load(&loop->stop)))
        return 0;
    if (loop->heap_count == 0)
        return -1;
    uint64_t now = em_loop_clock_now_us(loop);
    uint64_t deadline = loop->heap[0]->deadline;
    if (deadline <= now)
        return 0;
    uint64_t ms = (deadline - now + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void drain_wakefd(em_loop *loop)
{
    uint64_t count;
    ssize_t n;
    do
        n = read(loop->wakefd, &count, sizeof count);
    while (n < 0 && errno == EINTR);
}

/* Runs one turn; *slept tells whether its poll was allowed to block. */
static int64_t turn(em_loop *loop, em_loop_run_mode mode, int *slept)
{
    uint64_t now = em_loop_clock_now_us(loop);
    atomic_store_explicit(&loop->now, now, memory_order_relaxed);
    int64_t ran = run_timers(loop, now);
    ran += run_posts(loop);
    size_t hooks = loop->hook_count;
    for (size_t i = 0; i < hooks; i++) {
        hook h = loop->hooks[i];
        h.fn(loop, h.ctx);
    }

    int timeout = poll_timeout_ms(loop, mode, ran);
    *slept = timeout != 0;
    struct epoll_event evs[POLL_BATCH];
    int n = epoll_wait(loop->epfd, evs, POLL_BATCH, timeout);
    if (n < 0) {
        if (errno != EINTR)
            return EMBER_EIO;
        n = 0;
    }
    if (*slept)
        atomic_store_explicit(&loop->now, em_loop_clock_now_us(loop),
                              memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        if (tag == WAKE_TAG) {
            drain_wakefd(loop);
            continue;
        }
        int fd = (int)(uint32_t)tag;
        watch *w = (size_t)fd < loop->watch_cap ? loop->watches[fd] : NULL;
        /* Removed (or removed and re-added) by an earlier callback. */
        if (!w || w->gen != (uint32_t)(tag >> 32))
            continue;
        unsigned ready = 0;
        if (evs[i].events & EPOLLIN)
            ready |= EM_LOOP_READABLE;
        if (evs[i].events & EPOLLOUT)
            ready |= EM_LOOP_WRITABLE;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            ready |= EM_LOOP_READABLE | EM_LOOP_WRITABLE;
        ready &= w->events;
        if (!ready)
            continue;
        if (w->is_nng)
            w->nng_fn(loop, w->sock, w->ctx);
        else
            w->fd_fn(loop, fd, ready, w->ctx);
        ran++;
    }
    return ran;
}

int64_t em_loop_run(em_loop *loop, em_loop_run_mode mode)
{
    if (!loop || (mode != EM_LOOP_RUN_DEFAULT && mode != EM_LOOP_RUN_ONCE &&
                  mode != EM_LOOP_RUN_NOWAIT))
        return EMBER_EINVAL;
    const char *expected = NULL;
    if (!atomic_compare_exchange_strong(&loop->owner, &expected,
                                        &thread_marker))
        return EMBER_EINVAL;
    atomic_store_explicit(&loop->in_turn, 1, memory_order_relaxed);
    loop->mode = mode;
    int64_t total = 0;
    int slept = 0;
    for (;;) {
        int64_t ran = turn(loop, mode, &slept);
        if (ran < 0) {
            total = ran;
            break;
        }
        total += ran;
        if (mode == EM_LOOP_RUN_NOWAIT)
            break;
        if (mode == EM_LOOP_RUN_ONCE) {
            if (slept) {
                ran = turn(loop, EM_LOOP_RUN_NOWAIT, &slept);
                total = ran < 0 ? ran : total + ran;
            }
            break;
        }
        if (atomic_exchange(&loop->stop, 0))
            break;
    }
    atomic_store_explicit(&loop->in_turn, 0, memory_order_relaxed);
    loop->mode = EM_LOOP_RUN_DEFAULT;
    atomic_store(&loop->owner, NULL);
    return total;
}

int64_t em_loop_run_until_idle(em_loop *loop)
{
    int64_t total = 0;
    for (;;) {
        int64_t ran = em_loop_run(loop, EM_LOOP_RUN_NOWAIT);
        if (ran < 0)
            return ran;
        if (ran == 0)
            return total;
        total += ran;
    }
}
