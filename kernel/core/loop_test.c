/* Unit tests of the kernel event loop, stepped turn by turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

#include <nng/protocol/pair1/pair.h>

/* ---- helpers ---- */

typedef struct fake_clock {
    _Atomic uint64_t now;
} fake_clock;

static uint64_t fake_now(void *ctx)
{
    return atomic_load(&((fake_clock *)ctx)->now);
}

static em_loop *make_loop(fake_clock *fc)
{
    em_loop *loop = NULL;
    ember_error err;
    em_loop_clock clock = {fake_now, fc};
    assert_int_equal(em_loop_create(&loop, fc ? &clock : NULL, &err),
                     EMBER_OK);
    assert_non_null(loop);
    return loop;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A log of what ran, as short strings, to compare whole sequences. */
typedef struct trace {
    char text[1024];
} trace;

static void trace_add(trace *t, const char *what)
{
    size_t len = strlen(t->text);
    snprintf(t->text + len, sizeof t->text - len, "%s%s", len ? " " : "",
             what);
}

typedef struct tagged {
    trace *log;
    const char *name;
} tagged;

static void post_trace(em_loop *loop, void *ctx)
{
    (void)loop;
    tagged *tg = ctx;
    trace_add(tg->log, tg->name);
}

static int64_t timer_trace(em_loop *loop, uint64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    tagged *tg = ctx;
    trace_add(tg->log, tg->name);
    return EM_LOOP_TIMER_STOP;
}

static void count_fn(em_loop *loop, void *ctx)
{
    (void)loop;
    (*(int *)ctx)++;
}

/* ---- posting ---- */

#define POSTERS 4
#define POSTS_EACH 10000

typedef struct post_item {
    int thread;
    int seq;
} post_item;

typedef struct post_state {
    em_loop *loop;
    post_item items[POSTERS][POSTS_EACH];
    int runs[POSTERS][POSTS_EACH];
    int next[POSTERS];
    int out_of_order;
    int total;
} post_state;

static post_state *g_post;

static void post_record(em_loop *loop, void *ctx)
{
    (void)loop;
    post_item *it = ctx;
    g_post->runs[it->thread][it->seq]++;
    if (g_post->next[it->thread] != it->seq)
        g_post->out_of_order++;
    g_post->next[it->thread] = it->seq + 1;
    g_post->total++;
}

static void *poster(void *arg)
{
    post_item *row = arg;
    for (int i = 0; i < POSTS_EACH; i++)
        if (em_loop_post(g_post->loop, post_record, NULL, &row[i]) != EMBER_OK)
            return (void *)1;
    return NULL;
}

static void test_post_many_threads(void **state)
{
    (void)state;
    post_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    g_post = st;
    st->loop = make_loop(NULL);
    pthread_t th[POSTERS];
    for (int t = 0; t < POSTERS; t++) {
        for (int i = 0; i < POSTS_EACH; i++)
            st->items[t][i] = (post_item){t, i};
        assert_int_equal(pthread_create(&th[t], NULL, poster, st->items[t]),
                         0);
    }
    int64_t ran = 0;
    while (st->total < POSTERS * POSTS_EACH) {
        int64_t r = em_loop_run(st->loop, EM_LOOP_RUN_ONCE);
        assert_true(r >= 0);
        ran += r;
    }
    for (int t = 0; t < POSTERS; t++) {
        void *res;
        pthread_join(th[t], &res);
        assert_null(res);
    }
    assert_int_equal(em_loop_run_until_idle(st->loop), 0);
    assert_int_equal(ran, POSTERS * POSTS_EACH);
    assert_int_equal(st->out_of_order, 0);
    for (int t = 0; t < POSTERS; t++)
        for (int i = 0; i < POSTS_EACH; i++)
            assert_int_equal(st->runs[t][i], 1);
    em_loop_destroy(st->loop);
    free(st);
}

typedef struct chain {
    trace log;
    int depth;
} chain;

static void post_chain(em_loop *loop, void *ctx)
{
    chain *c = ctx;
    char name[16];
    snprintf(name, sizeof name, "e%d", c->depth);
    trace_add(&c->log, name);
    if (++c->depth < 3)
        assert_int_equal(em_loop_post(loop, post_chain, NULL, c), EMBER_OK);
}

static void test_post_during_turn_runs_next_turn(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    chain c = {{""}, 0};
    assert_int_equal(em_loop_post(loop, post_chain, NULL, &c), EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_string_equal(c.log.text, "e0");
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_string_equal(c.log.text, "e0 e1");
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_string_equal(c.log.text, "e0 e1 e2");
    assert_int_equal(em_loop_post(loop, NULL, NULL, NULL), EMBER_EINVAL);
    em_loop_destroy(loop);
}

static void test_destroy_drops_pending_posts(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    int ran = 0, dropped = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(em_loop_post(loop, count_fn, count_fn, &dropped),
                         EMBER_OK);
    /* No drop function: nothing to call, nothing leaked either. */
    assert_int_equal(em_loop_post(loop, count_fn, NULL, &ran), EMBER_OK);
    uint64_t id;
    assert_int_equal(em_loop_timer_add(loop, 1000000, timer_trace, NULL, &id),
                     EMBER_OK);
    em_loop_destroy(loop);
    assert_int_equal(dropped, 5);
    assert_int_equal(ran, 0);
    em_loop_destroy(NULL);
}

/* ---- timers ---- */

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    fake_clock fc = {1000};
    em_loop *loop = make_loop(&fc);
    trace log = {""};
    tagged a = {&log, "a"}, a2 = {&log, "a2"}, b = {&log, "b"},
           c = {&log, "c"};
    uint64_t ids[4];
    assert_int_equal(em_loop_next_timer_us(loop), -1);
    assert_int_equal(em_loop_timer_add(loop, 300, timer_trace, &c, &ids[0]),
                     EMBER_OK);
    assert_int_equal(em_loop_timer_add(loop, 100, timer_trace, &a, &ids[1]),
                     EMBER_OK);
    assert_int_equal(em_loop_timer_add(loop, 200, timer_trace, &b, &ids[2]),
                     EMBER_OK);
    assert_int_equal(em_loop_timer_add(loop, 100, timer_trace, &a2, &ids[3]),
                     EMBER_OK);
    for (int i = 0; i < 4; i++) {
        assert_true(ids[i] != 0);
        for (int j = 0; j < i; j++)
            assert_true(ids[i] != ids[j]);
    }
    assert_int_equal(em_loop_next_timer_us(loop), 100);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_string_equal(log.text, "");
    atomic_store(&fc.now, 1099);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    atomic_store(&fc.now, 1250);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 3);
    assert_string_equal(log.text, "a a2 b");
    assert_int_equal(em_loop_next_timer_us(loop), 50);
    atomic_store(&fc.now, 5000);
    assert_int_equal(em_loop_next_timer_us(loop), 0);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_string_equal(log.text, "a a2 b c");
    assert_int_equal(em_loop_next_timer_us(loop), -1);
    /* Fired one-shot timers are no longer armed. */
    assert_int_equal(em_loop_timer_cancel(loop, ids[1]), EMBER_ENOTFOUND);
    em_loop_destroy(loop);
}

typedef struct periodic {
    int fired;
    int limit;
    int64_t period;
    uint64_t seen_now[8];
} periodic;

static int64_t timer_periodic(em_loop *loop, uint64_t id, void *ctx)
{
    (void)id;
    periodic *p = ctx;
    p->seen_now[p->fired++] = em_loop_now_us(loop);
    return p->fired < p->limit ? p->period : EM_LOOP_TIMER_STOP;
}

static void test_periodic_timer(void **state)
{
    (void)state;
    fake_clock fc = {0};
    em_loop *loop = make_loop(&fc);
    periodic p = {0, 3, 100, {0}};
    uint64_t id;
    assert_int_equal(em_loop_timer_add(loop, 100, timer_periodic, &p, &id),
                     EMBER_OK);
    for (uint64_t t = 100; t <= 600; t += 100) {
        atomic_store(&fc.now, t);
        em_loop_run(loop, EM_LOOP_RUN_NOWAIT);
    }
    assert_int_equal(p.fired, 3);
    assert_int_equal(p.seen_now[0], 100);
    assert_int_equal(p.seen_now[1], 200);
    assert_int_equal(p.seen_now[2], 300);
    assert_int_equal(em_loop_next_timer_us(loop), -1);
    assert_int_equal(em_loop_timer_cancel(loop, id), EMBER_ENOTFOUND);

    /* A late turn re-arms from the turn's now, without catching up. */
    periodic q = {0, 3, 100, {0}};
    assert_int_equal(em_loop_timer_add(loop, 100, timer_periodic, &q, &id),
                     EMBER_OK);
    atomic_store(&fc.now, 1000);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(em_loop_next_timer_us(loop), 100);
    assert_int_equal(em_loop_timer_cancel(loop, id), EMBER_OK);

    /* Re-armed with 0: runs again in the next turn, not in the same one. */
    periodic z = {0, 3, 0, {0}};
    assert_int_equal(em_loop_timer_add(loop, 0, timer_periodic, &z, &id),
                     EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(z.fired, 1);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(z.fired, 2);
    assert_int_equal(em_loop_run_until_idle(loop), 1);
    assert_int_equal(z.fired, 3);
    em_loop_destroy(loop);
}

typedef struct canceller {
    uint64_t victim;
    ember_status rc;
    int fired;
} canceller;

static int64_t timer_cancel_other(em_loop *loop, uint64_t id, void *ctx)
{
    (void)id;
    canceller *c = ctx;
    c->fired++;
    c->rc = em_loop_timer_cancel(loop, c->victim);
    return EM_LOOP_TIMER_STOP;
}

static int64_t timer_cancel_self(em_loop *loop, uint64_t id, void *ctx)
{
    canceller *c = ctx;
    c->fired++;
    c->rc = em_loop_timer_cancel(loop, id);
    /* A second cancel finds it already cancelled. */
    if (em_loop_timer_cancel(loop, id) != EMBER_ENOTFOUND)
        c->rc = EMBER_EINTERNAL;
    return 50; /* ignored: cancelled */
}

static int64_t timer_count(em_loop *loop, uint64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    (*(int *)ctx)++;
    return EM_LOOP_TIMER_STOP;
}

static void test_timer_cancel(void **state)
{
    (void)state;
    fake_clock fc = {10};
    em_loop *loop = make_loop(&fc);
    int victim_fired = 0;
    uint64_t id, victim;

    /* Before it fires. */
    assert_int_equal(em_loop_timer_add(loop, 5, timer_count, &victim_fired,
                                       &id),
                     EMBER_OK);
    assert_int_equal(em_loop_timer_cancel(loop, id), EMBER_OK);
    assert_int_equal(em_loop_timer_cancel(loop, id), EMBER_ENOTFOUND);
    atomic_store(&fc.now, 100);
    assert_int_equal(em_loop_run_until_idle(loop), 0);
    assert_int_equal(victim_fired, 0);

    /* From another timer's callback, both due in the same turn. */
    assert_int_equal(em_loop_timer_add(loop, 20, timer_count, &victim_fired,
                                       &victim),
                     EMBER_OK);
    canceller c = {victim, EMBER_EINTERNAL, 0};
    assert_int_equal(em_loop_timer_add(loop, 10, timer_cancel_other, &c, &id),
                     EMBER_OK);
    atomic_store(&fc.now, 200);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(c.fired, 1);
    assert_int_equal(c.rc, EMBER_OK);
    assert_int_equal(victim_fired, 0);
    assert_int_equal(em_loop_next_timer_us(loop), -1);

    /* From its own callback: not re-armed despite returning a delay. */
    canceller s = {0, EMBER_EINTERNAL, 0};
    assert_int_equal(em_loop_timer_add(loop, 0, timer_cancel_self, &s, &id),
                     EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(s.rc, EMBER_OK);
    assert_int_equal(em_loop_next_timer_us(loop), -1);
    atomic_store(&fc.now, 1000);
    assert_int_equal(em_loop_run_until_idle(loop), 0);
    assert_int_equal(s.fired, 1);
    assert_int_equal(em_loop_timer_cancel(loop, id), EMBER_ENOTFOUND);

    /* Unknown ids. */
    assert_int_equal(em_loop_timer_cancel(loop, 0), EMBER_ENOTFOUND);
    assert_int_equal(em_loop_timer_cancel(loop, 987654321), EMBER_ENOTFOUND);
    em_loop_destroy(loop);
}

typedef struct many {
    uint64_t last_deadline;
    int fired;
    int disorder;
    int cancelled_fired;
} many;

typedef struct many_item {
    many *m;
    uint64_t deadline;
    int cancelled;
} many_item;

static int64_t timer_many(em_loop *loop, uint64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    many_item *it = ctx;
    if (it->cancelled)
        it->m->cancelled_fired++;
    if (it->deadline < it->m->last_deadline)
        it->m->disorder++;
    it->m->last_deadline = it->deadline;
    it->m->fired++;
    return EM_LOOP_TIMER_STOP;
}

/* Many timers through heap and id-map growth, half of them cancelled. */
static void test_many_timers_with_cancels(void **state)
{
    (void)state;
    enum { N = 2000 };
    fake_clock fc = {0};
    em_loop *loop = make_loop(&fc);
    many m = {0, 0, 0, 0};
    many_item *items = calloc(N, sizeof *items);
    uint64_t *ids = calloc(N, sizeof *ids);
    assert_non_null(items);
    assert_non_null(ids);
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items[i] = (many_item){&m, 1 + x % 100000, 0};
        assert_int_equal(em_loop_timer_add(loop, items[i].deadline,
                                           timer_many, &items[i], &ids[i]),
                         EMBER_OK);
    }
    for (int i = 0; i < N; i += 2) {
        assert_int_equal(em_loop_timer_cancel(loop, ids[i]), EMBER_OK);
        items[i].cancelled = 1;
    }
    for (int i = 1; i < N; i += 4) {
        assert_int_equal(em_loop_timer_cancel(loop, ids[i]), EMBER_OK);
        items[i].cancelled = 1;
    }
    /* Step the clock in slices so the heap is popped across many turns. */
    for (uint64_t t = 0; t <= 100000; t += 997) {
        atomic_store(&fc.now, t);
        assert_true(em_loop_run(loop, EM_LOOP_RUN_NOWAIT) >= 0);
    }
    atomic_store(&fc.now, 200000);
    em_loop_run_until_idle(loop);
    assert_int_equal(m.fired, N / 4);
    assert_int_equal(m.disorder, 0);
    assert_int_equal(m.cancelled_fired, 0);
    for (int i = 3; i < N; i += 4)
        assert_int_equal(em_loop_timer_cancel(loop, ids[i]), EMBER_ENOTFOUND);
    assert_int_equal(em_loop_next_timer_us(loop), -1);
    em_loop_destroy(loop);
    free(items);
    free(ids);
}

/* ---- hooks, clock, run modes ---- */

typedef struct hook_state {
    trace *log;
    const char *name;
    int post_once;
    tagged posted;
} hook_state;

static void hook_fn(em_loop *loop, void *ctx)
{
    hook_state *h = ctx;
    trace_add(h->log, h->name);
    if (h->post_once) {
        h->post_once = 0;
        assert_int_equal(em_loop_post(loop, post_trace, NULL, &h->posted),
                         EMBER_OK);
    }
}

static void test_before_sleep_hooks(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    trace log = {""};
    hook_state h1 = {&log, "H1", 0, {NULL, NULL}};
    hook_state h2 = {&log, "H2", 0, {NULL, NULL}};
    tagged e = {&log, "E"}, t = {&log, "T"};
    assert_int_equal(em_loop_add_before_sleep(loop, hook_fn, &h1), EMBER_OK);
    assert_int_equal(em_loop_add_before_sleep(loop, hook_fn, &h2), EMBER_OK);
    assert_int_equal(em_loop_add_before_sleep(loop, NULL, NULL), EMBER_EINVAL);
    assert_int_equal(em_loop_post(loop, post_trace, NULL, &e), EMBER_OK);
    assert_int_equal(em_loop_timer_add(loop, 0, timer_trace, &t, NULL),
                     EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 2);
    assert_string_equal(log.text, "T E H1 H2");
    /* An idle turn still runs each hook exactly once; hooks do not count. */
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_string_equal(log.text, "T E H1 H2 H1 H2");

    /* A hook that posts keeps the poll from blocking: ONCE returns at once
     * and the event runs in the next turn, followed by the hooks again. */
    log.text[0] = '\0';
    h2.post_once = 1;
    h2.posted = (tagged){&log, "P"};
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_ONCE), 0);
    assert_string_equal(log.text, "H1 H2");
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_string_equal(log.text, "H1 H2 P H1 H2");
    em_loop_destroy(loop);
}

typedef struct now_probe {
    fake_clock *fc;
    uint64_t turn_now;
    uint64_t fresh_now;
} now_probe;

static int64_t timer_now_probe(em_loop *loop, uint64_t id, void *ctx)
{
    (void)id;
    now_probe *p = ctx;
    atomic_store(&p->fc->now, 777);
    p->turn_now = em_loop_now_us(loop);
    p->fresh_now = em_loop_clock_now_us(loop);
    return EM_LOOP_TIMER_STOP;
}

static void test_clock_cached_per_turn(void **state)
{
    (void)state;
    fake_clock fc = {500};
    em_loop *loop = make_loop(&fc);
    assert_int_equal(em_loop_now_us(loop), 500);
    now_probe p = {&fc, 0, 0};
    assert_int_equal(em_loop_timer_add(loop, 0, timer_now_probe, &p, NULL),
                     EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(p.turn_now, 500);
    assert_int_equal(p.fresh_now, 777);
    /* Between runs the clock is read afresh. */
    assert_int_equal(em_loop_now_us(loop), 777);
    em_loop_destroy(loop);

    /* The default clock is monotonic. */
    loop = make_loop(NULL);
    uint64_t a = em_loop_clock_now_us(loop);
    uint64_t b = em_loop_clock_now_us(loop);
    assert_true(a > 0 && b >= a);
    em_loop_destroy(loop);

    ember_error err;
    em_loop_clock bad = {NULL, NULL};
    assert_int_equal(em_loop_create(&loop, &bad, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "now_us"));
    assert_int_equal(em_loop_create(NULL, NULL, &err), EMBER_EINVAL);
}

typedef struct delayed {
    em_loop *loop;
    int *flag;
} delayed;

static void set_flag(em_loop *loop, void *ctx)
{
    (void)loop;
    *(int *)ctx = 1;
}

static void *post_later(void *arg)
{
    delayed *d = arg;
    sleep_ms(50);
    em_loop_post(d->loop, set_flag, NULL, d->flag);
    return NULL;
}

static void *stop_later(void *arg)
{
    delayed *d = arg;
    sleep_ms(50);
    em_loop_stop(d->loop);
    return NULL;
}

static void test_run_modes(void **state)
{
    (void)state;
    fake_clock fc = {0};
    em_loop *loop = make_loop(&fc);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_int_equal(em_loop_run_until_idle(loop), 0);
    assert_int_equal(em_loop_run(loop, (em_loop_run_mode)7), EMBER_EINVAL);

    /* ONCE with nothing armed blocks until another thread posts, then runs
     * the posted event before returning. */
    int flag = 0;
    delayed d = {loop, &flag};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_later, &d), 0);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_ONCE), 1);
    assert_int_equal(flag, 1);
    pthread_join(th, NULL);

    /* ONCE with work at hand does it and returns without blocking. */
    flag = 0;
    assert_int_equal(em_loop_post(loop, set_flag, NULL, &flag), EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_ONCE), 1);
    assert_int_equal(flag, 1);

    /* DEFAULT returns once another thread stops it. */
    assert_int_equal(pthread_create(&th, NULL, stop_later, &d), 0);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_DEFAULT), 0);
    pthread_join(th, NULL);
    em_loop_destroy(loop);
}

static void stop_from_event(em_loop *loop, void *ctx)
{
    (*(int *)ctx)++;
    em_loop_stop(loop);
}

typedef struct reentry {
    int64_t nested;
    int on_thread;
} reentry;

static void try_reenter(em_loop *loop, void *ctx)
{
    reentry *r = ctx;
    r->nested = em_loop_run(loop, EM_LOOP_RUN_NOWAIT);
    r->on_thread = em_loop_on_loop_thread(loop);
}

static void *on_thread_elsewhere(void *arg)
{
    return em_loop_on_loop_thread(arg) ? (void *)1 : NULL;
}

static void test_stop_and_reentry(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    int n = 0;
    /* A stop from a callback ends the DEFAULT run after that turn; the
     * event it posted first still ran. */
    assert_int_equal(em_loop_post(loop, count_fn, NULL, &n), EMBER_OK);
    assert_int_equal(em_loop_post(loop, stop_from_event, NULL, &n), EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_DEFAULT), 2);
    assert_int_equal(n, 2);
    /* A stop before a DEFAULT run ends it after one turn. */
    em_loop_stop(loop);
    assert_int_equal(em_loop_post(loop, count_fn, NULL, &n), EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_DEFAULT), 1);
    assert_int_equal(n, 3);

    reentry r = {0, 0};
    assert_int_equal(em_loop_on_loop_thread(loop), 0);
    assert_int_equal(em_loop_post(loop, try_reenter, NULL, &r), EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(r.nested, EMBER_EINVAL);
    assert_int_equal(r.on_thread, 1);
    assert_int_equal(em_loop_on_loop_thread(loop), 0);
    pthread_t th;
    void *res = (void *)1;
    assert_int_equal(pthread_create(&th, NULL, on_thread_elsewhere, loop), 0);
    pthread_join(th, &res);
    assert_null(res);
    em_loop_destroy(loop);
}

typedef struct chain_all {
    int n;
} chain_all;

static void post_three(em_loop *loop, void *ctx)
{
    chain_all *c = ctx;
    if (++c->n < 3)
        em_loop_post(loop, post_three, NULL, c);
}

static void test_run_until_idle_totals(void **state)
{
    (void)state;
    fake_clock fc = {0};
    em_loop *loop = make_loop(&fc);
    chain_all c = {0};
    int fired = 0;
    assert_int_equal(em_loop_post(loop, post_three, NULL, &c), EMBER_OK);
    assert_int_equal(em_loop_timer_add(loop, 0, timer_count, &fired, NULL),
                     EMBER_OK);
    assert_int_equal(em_loop_timer_add(loop, 10, timer_count, &fired, NULL),
                     EMBER_OK);
    assert_int_equal(em_loop_run_until_idle(loop), 4);
    assert_int_equal(c.n, 3);
    assert_int_equal(fired, 1);
    assert_int_equal(em_loop_run_until_idle(loop), 0);
    em_loop_destroy(loop);
}

/* ---- fds ---- */

typedef struct pipe_state {
    int calls;
    unsigned events;
    int remove_self;
    int remove_other; /* fd to remove, or -1 */
    char got[16];
} pipe_state;

static int64_t stop_timer(em_loop *loop, uint64_t id, void *ctx)
{
    (void)loop;
    (void)id;
    (void)ctx;
    return EM_LOOP_TIMER_STOP;
}

/* busy: posts queued or a timer due means the loop will not sleep now. */
static void test_busy(void **state)
{
    (void)state;
    fake_clock fc = {1000};
    em_loop *loop = make_loop(&fc);
    int n = 0;
    assert_false(em_loop_busy(loop));
    assert_int_equal(em_loop_post(loop, count_fn, NULL, &n), EMBER_OK);
    assert_true(em_loop_busy(loop));
    em_loop_run_until_idle(loop);
    assert_int_equal(n, 1);
    assert_false(em_loop_busy(loop));
    uint64_t id;
    assert_int_equal(em_loop_timer_add(loop, 500, stop_timer, NULL, &id),
                     EMBER_OK);
    assert_false(em_loop_busy(loop)); /* armed, not due */
    atomic_store(&fc.now, 1500);
    assert_true(em_loop_busy(loop));
    em_loop_run_until_idle(loop);
    assert_false(em_loop_busy(loop));
    em_loop_destroy(loop);
}

static void on_pipe(em_loop *loop, int fd, unsigned events, void *ctx)
{
    pipe_state *p = ctx;
    p->calls++;
    p->events = events;
    if (events & EM_LOOP_READABLE) {
        ssize_t n = read(fd, p->got, sizeof p->got - 1);
        p->got[n > 0 ? n : 0] = '\0';
    }
    if (p->remove_self)
        em_loop_fd_remove(loop, fd);
    if (p->remove_other >= 0)
        em_loop_fd_remove(loop, p->remove_other);
}

static void test_fd_watch_pipe(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pipe_state p = {0, 0, 0, -1, ""};
    assert_int_equal(em_loop_fd_add(loop, fds[0], EM_LOOP_READABLE, on_pipe,
                                    &p),
                     EMBER_OK);
    assert_int_equal(em_loop_fd_add(loop, fds[0], EM_LOOP_READABLE, on_pipe,
                                    &p),
                     EMBER_EEXIST);
    assert_int_equal(em_loop_fd_add(loop, -1, EM_LOOP_READABLE, on_pipe, &p),
                     EMBER_EINVAL);
    assert_int_equal(em_loop_fd_add(loop, fds[1], 4, on_pipe, &p),
                     EMBER_EINVAL);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_int_equal(write(fds[1], "hi", 2), 2);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(p.events, EM_LOOP_READABLE);
    assert_string_equal(p.got, "hi");
    /* Level-triggered: nothing left, no call. */
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);

    /* ONCE blocks until the fd is ready. */
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_ONCE), 1);
    assert_string_equal(p.got, "x");

    /* Removal from inside its own callback. */
    p.remove_self = 1;
    assert_int_equal(write(fds[1], "y", 1), 1);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(write(fds[1], "z", 1), 1);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_int_equal(p.calls, 3);
    assert_int_equal(em_loop_fd_remove(loop, fds[0]), EMBER_ENOTFOUND);
    assert_int_equal(em_loop_fd_remove(loop, 100000), EMBER_ENOTFOUND);

    /* Writable end. */
    pipe_state w = {0, 0, 0, -1, ""};
    assert_int_equal(em_loop_fd_add(loop, fds[1], EM_LOOP_WRITABLE, on_pipe,
                                    &w),
                     EMBER_OK);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(w.events, EM_LOOP_WRITABLE);
    assert_int_equal(em_loop_fd_remove(loop, fds[1]), EMBER_OK);
    close(fds[0]);
    close(fds[1]);
    em_loop_destroy(loop);
}

static void test_fd_removed_by_earlier_callback(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    /* Both ready in the same turn; whichever runs first removes the other,
     * which then must not be called. */
    pipe_state pa = {0, 0, 0, b[0], ""};
    pipe_state pb = {0, 0, 0, a[0], ""};
    assert_int_equal(em_loop_fd_add(loop, a[0], EM_LOOP_READABLE, on_pipe,
                                    &pa),
                     EMBER_OK);
    assert_int_equal(em_loop_fd_add(loop, b[0], EM_LOOP_READABLE, on_pipe,
                                    &pb),
                     EMBER_OK);
    assert_int_equal(write(a[1], "a", 1), 1);
    assert_int_equal(write(b[1], "b", 1), 1);
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 1);
    assert_int_equal(pa.calls + pb.calls, 1);
    /* The one called is still watched; the other is gone. */
    int survivor = pa.calls ? a[0] : b[0];
    int removed = pa.calls ? b[0] : a[0];
    assert_int_equal(em_loop_fd_remove(loop, removed), EMBER_ENOTFOUND);
    assert_int_equal(em_loop_fd_remove(loop, survivor), EMBER_OK);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    em_loop_destroy(loop);
}

/* ---- NNG ---- */

#define NNG_MSGS 1000

typedef struct nng_state {
    int received;
    int disorder;
    int calls;
} nng_state;

static void on_nng(em_loop *loop, nng_socket sock, void *ctx)
{
    (void)loop;
    nng_state *st = ctx;
    st->calls++;
    nng_msg *msg;
    while (nng_recvmsg(sock, &msg, NNG_FLAG_NONBLOCK) == 0) {
        uint32_t v = 0;
        if (nng_msg_len(msg) == sizeof v)
            memcpy(&v, nng_msg_body(msg), sizeof v);
        if (v != (uint32_t)st->received)
            st->disorder++;
        st->received++;
        nng_msg_free(msg);
    }
}

static void *nng_sender(void *arg)
{
    nng_socket *s = arg;
    for (uint32_t i = 0; i < NNG_MSGS; i++)
        if (nng_send(*s, &i, sizeof i, 0) != 0)
            return (void *)1;
    return NULL;
}

static void test_nng_socket(void **state)
{
    (void)state;
    em_loop *loop = make_loop(NULL);
    nng_socket rx, tx;
    assert_int_equal(nng_pair1_open(&rx), 0);
    assert_int_equal(nng_pair1_open(&tx), 0);
    assert_int_equal(nng_listen(rx, "inproc://loop-test", NULL, 0), 0);
    assert_int_equal(nng_dial(tx, "inproc://loop-test", NULL, 0), 0);
    nng_state st = {0, 0, 0};
    assert_int_equal(em_loop_nng_add(loop, rx, on_nng, &st), EMBER_OK);
    assert_int_equal(em_loop_nng_add(loop, rx, on_nng, &st), EMBER_EEXIST);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, nng_sender, &tx), 0);
    while (st.received < NNG_MSGS)
        assert_true(em_loop_run(loop, EM_LOOP_RUN_ONCE) >= 0);
    void *res = (void *)1;
    pthread_join(th, &res);
    assert_null(res);
    assert_int_equal(st.received, NNG_MSGS);
    assert_int_equal(st.disorder, 0);
    /* Drained: the receive fd is quiet again. */
    int calls = st.calls;
    assert_int_equal(em_loop_run(loop, EM_LOOP_RUN_NOWAIT), 0);
    assert_int_equal(st.calls, calls);
    assert_int_equal(em_loop_nng_remove(loop, rx), EMBER_OK);
    assert_int_equal(em_loop_nng_remove(loop, rx), EMBER_ENOTFOUND);
    assert_int_equal(em_loop_nng_remove(loop, tx), EMBER_ENOTFOUND);
    nng_close(tx);
    nng_close(rx);
    assert_int_equal(em_loop_nng_add(loop, rx, on_nng, &st), EMBER_EINVAL);
    em_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_many_threads),
        cmocka_unit_test(test_post_during_turn_runs_next_turn),
        cmocka_unit_test(test_destroy_drops_pending_posts),
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_periodic_timer),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_many_timers_with_cancels),
        cmocka_unit_test(test_before_sleep_hooks),
        cmocka_unit_test(test_clock_cached_per_turn),
        cmocka_unit_test(test_run_modes),
        cmocka_unit_test(test_stop_and_reentry),
        cmocka_unit_test(test_run_until_idle_totals),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_fd_watch_pipe),
        cmocka_unit_test(test_fd_removed_by_earlier_callback),
        cmocka_unit_test(test_nng_socket),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
