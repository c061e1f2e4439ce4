/*
 * emberd_limits_test.c — emberd's per-client queue limit, in-process.
 *
 * The service runs in this process (services/emberd/service.c is built
 * into the test against the static kernel), so the test reads its queue
 * counters (emberd_queued_bytes, emberd_queued_peak) instead of guessing
 * from memory use. Clients are raw em_links on tcp://127.0.0.1.
 *
 * Seam: -Wl,--wrap=em_sha256_hex. While the gate is armed, the worker
 * that hashes a PLUGIN_PUT body waits in the wrapper, so the test decides
 * when a client's queue grows and when it drains — no timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msg/client_msg.h"
#include "msg/link.h"
#include "service.h"
#include "svc_support.h"
#include "util/sha256.h"

/* The limit the service under test runs with. */
#define QUEUE_MAX ((size_t)4 << 20)
/* Body of each flooding message. */
#define BODY ((size_t)1 << 20)

/* ------------------------------------------------------------ the gate */

void __real_em_sha256_hex(const void *data, size_t len,
                          char out[EM_SHA256_HEX_LEN + 1]);
void __wrap_em_sha256_hex(const void *data, size_t len,
                          char out[EM_SHA256_HEX_LEN + 1]);

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_armed, gate_inside;

void __wrap_em_sha256_hex(const void *data, size_t len,
                          char out[EM_SHA256_HEX_LEN + 1])
{
    pthread_mutex_lock(&gate_mu);
    if (gate_armed) {
        gate_inside++;
        pthread_cond_broadcast(&gate_cv);
        while (gate_armed)
            pthread_cond_wait(&gate_cv, &gate_mu);
        gate_inside--;
    }
    pthread_mutex_unlock(&gate_mu);
    __real_em_sha256_hex(data, len, out);
}

static void gate_arm(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_armed = 1;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_armed = 0;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Waits (at most 30 s: fails, never hangs) until a worker is held. */
static void gate_wait_held(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&gate_mu);
    while (gate_inside == 0)
        if (pthread_cond_timedwait(&gate_cv, &gate_mu, &until) == ETIMEDOUT)
            break;
    int held = gate_inside > 0;
    pthread_mutex_unlock(&gate_mu);
    if (!held)
        fail_msg("no worker reached the gate");
}

/* ------------------------------------------------------------ helpers */

/* Waits (at most 30 s) until the service closed the link. */
static void inbox_wait_closed(inbox *b)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&b->mu);
    while (!b->closed)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT)
            break;
    int closed = b->closed;
    pthread_mutex_unlock(&b->mu);
    if (!closed)
        fail_msg("emberd did not close the connection");
}

/* ------------------------------------------------------------- service */

static emberd *g_d;
static char g_state[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_state, sizeof g_state, "/tmp/ember-limits-test-XXXXXX");
    if (!mkdtemp(g_state))
        return -1;
    emberd_opts o = {.listen = "tcp://127.0.0.1:0",
                     .state_dir = g_state,
                     .master = "local[2]",
                     .max_client_queue = QUEUE_MAX};
    ember_error err = {0};
    if (emberd_start(&g_d, &o, &err) != EMBER_OK) {
        fprintf(stderr, "emberd_start: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gate_release();
    emberd_stop(g_d);
    g_d = NULL;
    rmtree(g_state);
    return 0;
}

static em_link *dial(inbox *b)
{
    return inbox_dial(b, emberd_url(g_d));
}

/* HELLO, and its WELCOME as message *i. */
static void hello(em_link *l, inbox *b, size_t *i)
{
    em_cmsg m;
    send_msg(l, EM_CMSG_HELLO, 1, "{\"app\":\"limits\",\"version\":\"0\"}",
             NULL, 0);
    inbox_expect(b, (*i)++, EM_CMSG_WELCOME, &m);
}

/* Waits (bounded: ~30 s) until the service holds from lo to hi bytes of
 * client messages; the test fails when it never does. */
static void wait_queued(uint64_t lo, uint64_t hi)
{
    uint64_t q = 0;
    for (int tries = 0; tries < 3000; tries++) {
        q = emberd_queued_bytes(g_d);
        if (q >= lo && q <= hi)
            return;
        sleep_ms(10);
    }
    fail_msg("emberd holds %llu bytes of client messages, not %llu to %llu",
             (unsigned long long)q, (unsigned long long)lo,
             (unsigned long long)hi);
}

/* Waits (bounded) until the service holds no client message. */
static void wait_queue_empty(void)
{
    wait_queued(0, 0);
}

/* A PLUGIN_PUT whose announced digest is wrong: handled (and answered
 * with ERROR) only after its body was hashed. */
static void put_wrong_digest(em_link *l, uint64_t req, const void *body,
                             size_t len)
{
    send_msg(l, EM_CMSG_PLUGIN_PUT, req,
             "{\"name\":\"flood\",\"sha256\":\"00000000000000000000000000000"
             "00000000000000000000000000000000000\"}",
             body, len);
}

/* ---------------------------------------------------------------- tests */

/*
 * Client A floods while its first request is held: the message that
 * would pass the limit is refused with an ERROR naming it, A's waiting
 * requests are dropped and A is disconnected; the service never holds
 * more than the limit for it, and client B's job runs meanwhile.
 */
static void flooding_client_is_refused_others_run(void **state)
{
    (void)state;
    inbox a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    inbox b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    size_t ia = 0, ib = 0;
    em_cmsg m;
    char h[1024];
    uint64_t bad_before = emberd_bad_messages(g_d);
    uint8_t *body = calloc(1, BODY);
    assert_non_null(body);

    em_link *la = dial(&a);
    hello(la, &a, &ia);
    gate_arm();
    put_wrong_digest(la, 2, body, BODY);
    gate_wait_held();
    /* 24 MiB more, six times the limit */
    for (uint64_t req = 3; req < 27; req++)
        put_wrong_digest(la, req, body, BODY);

    inbox_expect(&a, ia++, EM_CMSG_ERROR, &m);
    header_text(&m, h, sizeof h);
    assert_contains(h, "over its limit of 4194304 bytes");
    assert_contains(h, "--max-client-queue");
    assert_contains(h, "the connection is closed");
    /* the request that passed the limit: the fourth one waiting */
    assert_true(m.req_id >= 3 && m.req_id < 27);
    assert_true(emberd_queued_peak(g_d) <= QUEUE_MAX);
    /* the waiting requests are freed; only the one in hand is left */
    assert_true(emberd_queued_bytes(g_d) <= BODY + 1024);

    /* B's requests never wait on A's: its job runs while A's is held */
    static const char sub[] =
        "{\"dataset\":0,\"partitions\":null,\"pool\":null,\"group\":null,"
        "\"description\":null,\"action\":{\"kind\":\"count\"}}";
    static const char plan[] =
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"range\","
        "\"partitions\":2,\"args\":{\"start\":0,\"end\":10,\"step\":1}}]}";
    em_link *lb = dial(&b);
    hello(lb, &b, &ib);
    send_msg(lb, EM_CMSG_SUBMIT, 2, sub, plan, sizeof plan - 1);
    inbox_expect(&b, ib++, EM_CMSG_JOB, &m);
    for (int part = 0; part < 2; part++) {
        inbox_expect(&b, ib++, EM_CMSG_RESULT, &m);
    }
    inbox_expect(&b, ib++, EM_CMSG_END, &m);
    assert_contains(header_text(&m, h, sizeof h), "\"status\":0");

    /* Once everything A sent has left it, let the held request go: the
     * service then closes A's connection and frees all of A's messages. */
    for (int tries = 0; tries < 3000 && em_link_queued_bytes(la) > 0;
         tries++)
        sleep_ms(10);
    gate_release();
    inbox_wait_closed(&a);
    wait_queue_empty();
    assert_true(emberd_queued_peak(g_d) <= QUEUE_MAX);
    assert_true(emberd_bad_messages(g_d) > bad_before);

    /* B is still served */
    send_msg(lb, EM_CMSG_LIST, 3, "{\"running\":false}", NULL, 0);
    inbox_expect(&b, ib++, EM_CMSG_INFO, &m);
    em_link_close(la);
    em_link_close(lb);
    inbox_free(&a);
    inbox_free(&b);
    free(body);
}

/* One request in progress and one waiting always fit, even when the one
 * in progress alone is larger than the limit. */
static void one_large_message_fits(void **state)
{
    (void)state;
    inbox a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    size_t ia = 0;
    em_cmsg m;
    char h[1024];
    size_t len = QUEUE_MAX + BODY;
    uint8_t *body = calloc(1, len);
    assert_non_null(body);
    em_link *la = dial(&a);
    hello(la, &a, &ia);
    gate_arm();
    put_wrong_digest(la, 2, body, len);
    gate_wait_held();
    send_msg(la, EM_CMSG_LIST, 3, "{\"running\":true}", NULL, 0);
    /* both are in: the large one held, the LIST waiting behind it */
    wait_queued(len + 1, UINT64_MAX);
    gate_release();
    inbox_expect(&a, ia++, EM_CMSG_ERROR, &m);
    assert_int_equal(m.req_id, 2);
    assert_contains(header_text(&m, h, sizeof h), "the body's sha256 is");
    inbox_expect(&a, ia++, EM_CMSG_INFO, &m);
    assert_int_equal(m.req_id, 3);
    wait_queue_empty();
    em_link_close(la);
    inbox_free(&a);
    free(body);
}

/* Requests a client sends back to back, within the limit, are all
 * answered in order. */
static void pipelined_requests_within_the_limit(void **state)
{
    (void)state;
    inbox a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    size_t ia = 0;
    em_cmsg m;
    uint8_t *body = calloc(1, BODY);
    assert_non_null(body);
    em_link *la = dial(&a);
    hello(la, &a, &ia);
    gate_arm();
    for (uint64_t req = 2; req < 5; req++)
        put_wrong_digest(la, req, body, BODY);
    gate_wait_held();
    gate_release();
    for (uint64_t req = 2; req < 5; req++) {
        inbox_expect(&a, ia++, EM_CMSG_ERROR, &m);
        assert_int_equal(m.req_id, req);
    }
    wait_queue_empty();
    em_link_close(la);
    inbox_free(&a);
    free(body);
}

/* A client that goes while requests of its are waiting: they are freed
 * at once, not run (nobody would read their replies). */
static void a_client_that_goes_frees_its_requests(void **state)
{
    (void)state;
    inbox a = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    size_t ia = 0;
    uint8_t *body = calloc(1, BODY);
    assert_non_null(body);
    em_link *la = dial(&a);
    hello(la, &a, &ia);
    uint64_t bad_before = emberd_bad_messages(g_d);
    gate_arm();
    for (uint64_t req = 2; req < 5; req++)
        put_wrong_digest(la, req, body, BODY);
    gate_wait_held();
    wait_queued(3 * BODY, UINT64_MAX);
    em_link_close(la);
    /* the two waiting are freed while the first is still held */
    wait_queued(0, BODY + 1024);
    gate_release();
    wait_queue_empty();
    /* only the one in hand was answered (refused: its digest is wrong) */
    assert_int_equal(emberd_bad_messages(g_d) - bad_before, 1);
    inbox_free(&a);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: the peak it checks is the service's since start */
        cmocka_unit_test(flooding_client_is_refused_others_run),
        cmocka_unit_test(pipelined_requests_within_the_limit),
        cmocka_unit_test(a_client_that_goes_frees_its_requests),
        cmocka_unit_test(one_large_message_fits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
