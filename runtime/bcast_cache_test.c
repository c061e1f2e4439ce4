/*
 * bcast_cache_test.c — an executor's broadcast copies (runtime/bcast.h)
 * against a fake kernel: the kernel's own broadcast table (bcast/bcast.h)
 * answering each BCAST_FETCH, at once on the asking thread or later on a
 * thread of its own, optionally corrupting chunks on the way. Covers
 * assembling chunks, one fetch per executor however many tasks ask, a
 * chunk that fails its checksum once (fetched again) or twice (EIO), the
 * kernel's refusals, REMOVE_BROADCAST while a task holds the copy,
 * stopping or cancelling a task that waits, a kernel that never answers
 * (the cache's timeout) and chunks that claim more bytes than the value
 * has.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bcast/bcast.h"
#include "ember/kernel/host.h"
#include "msg/msg.h"
#include "runtime/bcast.h"

#define APP 7
#define VALUE_LEN 5000 /* 5 chunks of 1024 bytes, the last one 904 */

static uint8_t value[VALUE_LEN];

/* The fake kernel. */
typedef struct fake {
    em_bcast *kernel;
    em_bcast_cache *cache;
    int async;         /* answer on the responder thread */
    int silent;        /* never answer */
    int forged;        /* answer chunks of 8 bytes of a 10-byte value */
    uint32_t corrupt_index; /* chunk to corrupt ... */
    int corrupt_times;      /* ... this many more times */
    int asked;              /* BCAST_FETCHes seen */
    /* async: requests waiting for the responder */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *queue[64];
    size_t qlen[64];
    size_t nq;
    int quit;
    pthread_t responder;
} fake;

static int64_t counter(const char *name)
{
    int64_t v = 0;
    em_host_counter_value(name, &v);
    return v;
}

/* Answers one request through the kernel table and hands it to the
 * cache, corrupting it when told to. */
static void answer(fake *f, const uint8_t *msg, size_t len)
{
    ember_buf out = ember_buf_heap();
    assert_int_equal(em_bcast_answer(f->kernel, msg, len, &out, NULL),
                     EMBER_OK);
    em_msg_bcast_fetch req;
    assert_int_equal(em_msg_decode_bcast_fetch(msg, len, &req, NULL),
                     EMBER_OK);
    pthread_mutex_lock(&f->mu);
    int corrupt = req.index == f->corrupt_index && f->corrupt_times > 0;
    if (corrupt)
        f->corrupt_times--;
    pthread_mutex_unlock(&f->mu);
    if (corrupt)
        out.data[out.len - 1] ^= 0x40; /* the chunk's last byte */
    em_bcast_cache_on_chunk(f->cache, out.data, out.len);
    ember_buf_release(&out);
}

/* Answers a request with a chunk that does not fit its value: 3 chunks,
 * 10 bytes in all, and every chunk 8 bytes (with a right checksum). */
static void answer_forged(fake *f, const uint8_t *msg, size_t len)
{
    em_msg_bcast_fetch req;
    assert_int_equal(em_msg_decode_bcast_fetch(msg, len, &req, NULL),
                     EMBER_OK);
    static const uint8_t eight[8] = "abcdefgh";
    em_msg_bcast_chunk c = {.app = req.app,
                            .bcast_id = req.bcast_id,
                            .index = req.index,
                            .outcome = EM_BCAST_OK,
                            .nchunks = 3,
                            .total = 10,
                            .checksum = em_bcast_checksum(eight, 8),
                            .data = {eight, 8}};
    ember_buf out = ember_buf_heap();
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &c), EMBER_OK);
    em_bcast_cache_on_chunk(f->cache, out.data, out.len);
    ember_buf_release(&out);
}

static ember_status fake_send(void *ctx, const uint8_t *msg, size_t len)
{
    fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->asked++;
    int async = f->async, silent = f->silent;
    if (async && f->nq < 64) {
        f->queue[f->nq] = malloc(len);
        memcpy(f->queue[f->nq], msg, len);
        f->qlen[f->nq++] = len;
        pthread_cond_signal(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    if (f->forged)
        answer_forged(f, msg, len);
    else if (!async && !silent)
        answer(f, msg, len);
    return EMBER_OK;
}

static void *responder_main(void *arg)
{
    fake *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->nq && !f->quit)
            pthread_cond_wait(&f->cv, &f->mu);
        if (!f->nq)
            break;
        uint8_t *m = f->queue[0];
        size_t n = f->qlen[0];
        memmove(f->queue, f->queue + 1, (f->nq - 1) * sizeof *f->queue);
        memmove(f->qlen, f->qlen + 1, (f->nq - 1) * sizeof *f->qlen);
        f->nq--;
        pthread_mutex_unlock(&f->mu);
        answer(f, m, n);
        free(m);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static int setup(void **state)
{
    for (size_t i = 0; i < VALUE_LEN; i++)
        value[i] = (uint8_t)(i * 31 + 1);
    fake *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (em_bcast_create(&f->kernel, 1024, NULL, NULL, NULL, NULL) !=
            EMBER_OK ||
        em_bcast_put(f->kernel, APP, 1, value, VALUE_LEN, NULL) !=
            EMBER_OK ||
        em_bcast_cache_create(&f->cache, "exec-1", 0, fake_send, f) != EMBER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fake *f = *state;
    if (f->async) {
        pthread_mutex_lock(&f->mu);
        f->quit = 1;
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->responder, NULL);
    }
    em_bcast_cache_destroy(f->cache);
    em_bcast_destroy(f->kernel);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static void start_async(fake *f)
{
    f->async = 1;
    assert_int_equal(pthread_create(&f->responder, NULL, responder_main, f),
                     0);
}

/* A REMOVE_BROADCAST of (APP, id) handed to the cache. */
static void remove_copy(fake *f, uint64_t id)
{
    ember_buf out = ember_buf_heap();
    em_msg_batch b;
    assert_int_equal(em_msg_remove_broadcast_begin(&b, &out, "test"),
                     EMBER_OK);
    assert_int_equal(em_msg_remove_broadcast_add(&b, APP, id), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
    em_bcast_cache_on_remove(f->cache, out.data, out.len);
    ember_buf_release(&out);
}

/* Five chunks put together; the copy is read again without a fetch, in
 * the same task and in later ones. */
static void test_fetch_once(void **state)
{
    fake *f = *state;
    int64_t before = counter("ember.broadcast.fetches");
    const uint8_t *d = NULL, *d2 = NULL;
    size_t n = 0;
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        NULL),
                     EMBER_OK);
    assert_int_equal(n, VALUE_LEN);
    assert_memory_equal(d, value, VALUE_LEN);
    assert_int_equal(f->asked, 5);
    assert_int_equal(counter("ember.broadcast.fetches") - before, 1);
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d2, &n,
                                        NULL),
                     EMBER_OK);
    assert_ptr_equal(d2, d);
    em_bcast_cache_task_end(f->cache);
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d2, &n,
                                        NULL),
                     EMBER_OK);
    assert_memory_equal(d2, value, VALUE_LEN);
    em_bcast_cache_task_end(f->cache);
    assert_int_equal(f->asked, 5);
    assert_int_equal(counter("ember.broadcast.fetches") - before, 1);
}

/* A chunk that fails its checksum once is fetched again; twice fails the
 * use with EIO, and a later use tries anew. */
static void test_checksum(void **state)
{
    fake *f = *state;
    int64_t refetched = counter("ember.broadcast.refetches");
    const uint8_t *d = NULL;
    size_t n = 0;
    f->corrupt_index = 2;
    f->corrupt_times = 1;
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        NULL),
                     EMBER_OK);
    assert_memory_equal(d, value, VALUE_LEN);
    assert_int_equal(f->asked, 6);
    assert_int_equal(counter("ember.broadcast.refetches") - refetched, 1);
    em_bcast_cache_task_end(f->cache);

    assert_int_equal(em_bcast_put(f->kernel, APP, 2, value, VALUE_LEN, NULL),
                     EMBER_OK);
    f->corrupt_index = 4;
    f->corrupt_times = 2;
    ember_error err = {0};
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 2, NULL, &d, &n,
                                        &err),
                     EMBER_EIO);
    assert_string_equal(err.msg, "broadcast 2 chunk 4 failed its checksum");
    assert_null(d);
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 2, NULL, &d, &n,
                                        NULL),
                     EMBER_OK);
    assert_memory_equal(d, value, VALUE_LEN);
    em_bcast_cache_task_end(f->cache);
}

/* The kernel's refusals become the use's errors. */
static void test_refusals(void **state)
{
    fake *f = *state;
    const uint8_t *d = NULL;
    size_t n = 0;
    ember_error err = {0};
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 9, NULL, &d, &n,
                                        &err),
                     EMBER_ENOTFOUND);
    assert_string_equal(err.msg, "no broadcast 9 in application 7 (never "
                                 "created, or its session closed)");
    assert_int_equal(em_bcast_drop(f->kernel, APP, 1, EM_BCAST_DROP_DESTROY,
                                   NULL),
                     EMBER_OK);
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "Attempted to use broadcast 1 after it was "
                                 "destroyed");
}

/* REMOVE_BROADCAST while a task holds the copy: the task reads on; the
 * next task fetches again. */
static void test_remove_while_held(void **state)
{
    fake *f = *state;
    int64_t before = counter("ember.broadcast.fetches");
    const uint8_t *d = NULL, *d2 = NULL;
    size_t n = 0;
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        NULL),
                     EMBER_OK);
    remove_copy(f, 1);
    /* still this task's copy (ASan would see a freed one) */
    assert_memory_equal(d, value, VALUE_LEN);
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d2, &n,
                                        NULL),
                     EMBER_OK);
    assert_ptr_equal(d2, d);
    em_bcast_cache_task_end(f->cache);
    assert_int_equal(counter("ember.broadcast.fetches") - before, 1);
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d2, &n,
                                        NULL),
                     EMBER_OK);
    assert_memory_equal(d2, value, VALUE_LEN);
    em_bcast_cache_task_end(f->cache);
    assert_int_equal(counter("ember.broadcast.fetches") - before, 2);
    assert_int_equal(f->asked, 10);
}

typedef struct getter {
    fake *f;
    const uint8_t *d;
    size_t n;
    ember_status st;
    ember_error err;
    atomic_int cancel;
    pthread_t th;
} getter;

static void *getter_main(void *arg)
{
    getter *g = arg;
    g->st = em_bcast_cache_get(g->f->cache, APP, 1, &g->cancel, &g->d, &g->n,
                               &g->err);
    if (g->st == EMBER_OK && (g->n != VALUE_LEN ||
                              memcmp(g->d, value, VALUE_LEN) != 0))
        g->st = EMBER_EINTERNAL;
    em_bcast_cache_task_end(g->f->cache);
    return NULL;
}

/* Four tasks ask at once, answers come from another thread: one fetch. */
static void test_concurrent(void **state)
{
    fake *f = *state;
    start_async(f);
    int64_t before = counter("ember.broadcast.fetches");
    getter g[4];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 4; i++) {
        g[i].f = f;
        assert_int_equal(pthread_create(&g[i].th, NULL, getter_main, &g[i]),
                         0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(g[i].th, NULL);
        assert_int_equal(g[i].st, EMBER_OK);
    }
    assert_int_equal(counter("ember.broadcast.fetches") - before, 1);
    assert_int_equal(f->asked, 5);
}

/* A task waiting for an answer that never comes ends when it is
 * cancelled, or when the executor stops. */
static void test_cancel_and_stop(void **state)
{
    fake *f = *state;
    f->silent = 1;
    getter g;
    memset(&g, 0, sizeof g);
    g.f = f;
    assert_int_equal(pthread_create(&g.th, NULL, getter_main, &g), 0);
    atomic_store(&g.cancel, 1);
    pthread_join(g.th, NULL);
    assert_int_equal(g.st, EMBER_ECANCELED);

    memset(&g, 0, sizeof g);
    g.f = f;
    assert_int_equal(pthread_create(&g.th, NULL, getter_main, &g), 0);
    em_bcast_cache_stop(f->cache);
    pthread_join(g.th, NULL);
    assert_int_equal(g.st, EMBER_ECANCELED);
    const uint8_t *d;
    size_t n;
    ember_error err = {0};
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        &err),
                     EMBER_ECANCELED);
    assert_string_equal(err.msg, "broadcast 1: executor exec-1 is stopping");
}

/* A kernel that never answers: the use fails once the cache's timeout
 * (ember.network.timeout on an executor) has passed, saying so, and is
 * not remembered: the next use asks again. */
static void test_silent_kernel_times_out(void **state)
{
    fake *f = *state;
    em_bcast_cache_destroy(f->cache);
    assert_int_equal(
        em_bcast_cache_create(&f->cache, "exec-1", 50, fake_send, f),
        EMBER_OK);
    f->silent = 1;
    const uint8_t *d;
    size_t n;
    ember_error err = {0};
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        &err),
                     EMBER_ETIMEDOUT);
    assert_string_equal(err.msg, "broadcast 1 chunk 0: executor exec-1 had "
                                 "no answer from the kernel within 50 ms "
                                 "(ember.network.timeout)");
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        &err),
                     EMBER_ETIMEDOUT);
    assert_int_equal(f->asked, 2);
    em_bcast_cache_task_end(f->cache);
}

/* Chunks whose lengths run past the value's total are refused before
 * anything is copied (EIO), not written past the copy's end. */
static void test_chunks_past_total(void **state)
{
    fake *f = *state;
    f->forged = 1;
    const uint8_t *d;
    size_t n;
    ember_error err = {0};
    assert_int_equal(em_bcast_cache_get(f->cache, APP, 1, NULL, &d, &n,
                                        &err),
                     EMBER_EIO);
    assert_string_equal(err.msg, "broadcast 1 chunk 1: the kernel's answer "
                                 "does not fit the chunks before it");
    em_bcast_cache_task_end(f->cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_while_held, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_stop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_kernel_times_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chunks_past_total, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
