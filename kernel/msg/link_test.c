/* Unit tests of em_link: rendezvous, ordered lossless pipes, peer death,
 * the goodbye (close while the peer sends), the rendezvous cap and the
 * link timeout, over real NNG on inproc, ipc and tcp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "msg/link.h"

/* ----------------------------------------------------------- helpers */

#define N_CLIENTS 3
#define N_STREAM 100000 /* data messages each way per client */
#define N_GATED 48      /* 1 MiB messages sent while the receiver waits */
#define PACE_BYTES ((size_t)4 << 20)
#define MIB ((size_t)1 << 20)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Polls cond(arg) every millisecond until it holds or ms pass. */
static int wait_for(int (*cond)(void *), void *arg, int ms)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        if (cond(arg))
            return 1;
        if (now_ms() > deadline)
            return 0;
        sleep_us(1000);
    }
}

/* Data message seq: mostly small, some 16..64 KiB, some 1 MiB; the gated
 * phase after the stream sends only 1 MiB messages. */
static size_t msg_size(uint64_t seq)
{
    if (seq >= N_STREAM)
        return MIB;
    if (seq % 5000 == 4999)
        return MIB;
    if (seq % 500 == 250)
        return 16384 + (size_t)(seq * 37 % 49152);
    return 1 + (size_t)(seq * 13 % 256);
}

static uint8_t pattern(int k, int dir, uint64_t seq, size_t j)
{
    return (uint8_t)(k * 31 + dir * 101 + seq * 7 + j * 3 + (j >> 8));
}

static size_t fill(uint8_t *buf, int k, int dir, uint64_t seq)
{
    size_t n = msg_size(seq);
    for (size_t j = 0; j < n; j++)
        buf[j] = pattern(k, dir, seq, j);
    return n;
}

/* One end of a link as the tests see it. */
typedef struct end {
    em_link *link;
    int dir;                 /* direction of the data it receives */
    _Atomic int index;       /* client number; -1 until known */
    _Atomic int welcomed;    /* client: got WELCOME for its own number */
    _Atomic int hello_seen;  /* server: got the HELLO */
    _Atomic uint64_t got;    /* data messages received in order */
    _Atomic int errors;      /* wrong order, size or content */
    _Atomic int closed;      /* closed() calls */
    _Atomic int gate;        /* 1: the next recv() waits for the gate */
    _Atomic int recv_after_close;
    _Atomic int reason_set;
    char reason[128];
} end;

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void end_init(end *e, int index, int dir)
{
    memset(e, 0, sizeof *e);
    atomic_init(&e->index, index);
    e->dir = dir;
}

/* Checks one data message against the expected sequence. */
static void check_data(end *e, const uint8_t *data, size_t len)
{
    uint64_t seq = atomic_load(&e->got);
    int k = atomic_load(&e->index);
    size_t want = msg_size(seq);
    int bad = len != want;
    for (size_t j = 0; !bad && j < len; j++)
        bad = data[j] != pattern(k, e->dir, seq, j);
    if (bad)
        atomic_fetch_add(&e->errors, 1);
    atomic_fetch_add(&e->got, 1);
}

static void wait_gate(end *e)
{
    if (!atomic_exchange(&e->gate, 0))
        return;
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void on_closed(void *ctx, em_link *l, const char *reason)
{
    end *e = ctx;
    (void)l;
    /* The reason is written before the count a test thread polls. */
    if (!atomic_exchange(&e->reason_set, 1))
        snprintf(e->reason, sizeof e->reason, "%s", reason);
    atomic_fetch_add(&e->closed, 1);
}

/* Server side: the first message is "HELLO <k>", answered on the same
 * link with "WELCOME <k>"; data follows. */
static void server_recv(void *ctx, em_link *l, const uint8_t *data,
                        size_t len)
{
    end *e = ctx;
    if (atomic_load(&e->closed))
        atomic_fetch_add(&e->recv_after_close, 1);
    wait_gate(e);
    if (!atomic_load(&e->hello_seen)) {
        char text[32];
        int k = -1;
        if (len < sizeof text) {
            memcpy(text, data, len);
            text[len] = '\0';
            if (sscanf(text, "HELLO %d", &k) != 1)
                k = -1;
        }
        if (k < 0) {
            atomic_fetch_add(&e->errors, 1);
            return;
        }
        atomic_store(&e->index, k);
        int n = snprintf(text, sizeof text, "WELCOME %d", k);
        if (em_link_send(l, text, (size_t)n) != EMBER_OK)
            atomic_fetch_add(&e->errors, 1);
        atomic_store(&e->hello_seen, 1);
        return;
    }
    check_data(e, data, len);
}

static void client_recv(void *ctx, em_link *l, const uint8_t *data,
                        size_t len)
{
    end *e = ctx;
    (void)l;
    if (atomic_load(&e->closed))
        atomic_fetch_add(&e->recv_after_close, 1);
    if (!atomic_load(&e->welcomed)) {
        char want[32];
        int n = snprintf(want, sizeof want, "WELCOME %d",
                         atomic_load(&e->index));
        if (len == (size_t)n && memcmp(data, want, len) == 0)
            atomic_store(&e->welcomed, 1);
        else
            atomic_fetch_add(&e->errors, 1);
        return;
    }
    check_data(e, data, len);
}

/* The server of a test: hands out ends in accept order. */
typedef struct srv {
    end ends[8];
    _Atomic int naccept;
    _Atomic int refuse; /* accept() refuses while set */
} srv;

static ember_status srv_accept(void *ctx, em_link *l, em_link_handler *h)
{
    srv *s = ctx;
    if (atomic_load(&s->refuse))
        return EMBER_EINVAL;
    int slot = atomic_fetch_add(&s->naccept, 1);
    if (slot >= 8)
        return EMBER_EINVAL;
    end *e = &s->ends[slot];
    e->link = l;
    em_link_set_user(l, e);
    h->ctx = e;
    h->recv = server_recv;
    h->closed = on_closed;
    return EMBER_OK;
}

static void srv_init(srv *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 8; i++)
        end_init(&s->ends[i], -1, 0);
    atomic_init(&s->naccept, 0);
    atomic_init(&s->refuse, 0);
}

/* Initialises s and opens a server on url whose accept() is accept with
 * s; the test fails when it cannot. */
static em_link_server *serve(srv *s, const char *url,
                             em_link_accept_fn accept)
{
    em_link_server *server = NULL;
    ember_error err;
    srv_init(s);
    if (em_link_server_open(&server, url, accept, s, &err) != EMBER_OK)
        fail_msg("serve %s: %s", url, err.msg);
    return server;
}

/* Dials url (within timeout_ms) as client c, number index, receiving
 * data; the test fails when it cannot. */
static void dial_end(end *c, int index, const char *url, int timeout_ms)
{
    ember_error err;
    em_link_handler h = {c, client_recv, on_closed};
    end_init(c, index, 1);
    if (em_link_dial(&c->link, url, &h, timeout_ms, &err) != EMBER_OK)
        fail_msg("dial %s: %s", url, err.msg);
}

static int welcomed(void *arg)
{
    return atomic_load(&((end *)arg)->welcomed);
}

/*
 * A dial on a thread of its own, to url within timeout_ms: as client e
 * (its link in e->link) or, when e is NULL, with no handlers (its link in
 * link). Once joined, st and msg say how it went.
 */
typedef struct bg_dial {
    const char *url;
    int timeout_ms;
    end *e;
    em_link *link;
    ember_status st;
    char msg[EMBER_ERROR_MAX];
} bg_dial;

static void *bg_dial_main(void *arg)
{
    bg_dial *d = arg;
    ember_error err;
    em_link_handler h = {NULL, NULL, NULL};
    if (d->e)
        h = (em_link_handler){d->e, client_recv, on_closed};
    d->st = em_link_dial(d->e ? &d->e->link : &d->link, d->url, &h,
                         d->timeout_ms, &err);
    if (d->st != EMBER_OK)
        snprintf(d->msg, sizeof d->msg, "%s", err.msg);
    return NULL;
}

/* ------------------------------------------------ the per-transport run */

typedef struct run_ctx {
    srv *s;
    end *clients;
} run_ctx;

static int all_introduced(void *arg)
{
    run_ctx *r = arg;
    if (atomic_load(&r->s->naccept) < N_CLIENTS)
        return 0;
    for (int i = 0; i < N_CLIENTS; i++)
        if (!atomic_load(&r->s->ends[i].hello_seen) ||
            !atomic_load(&r->clients[i].welcomed))
            return 0;
    return 1;
}

static int all_streamed(void *arg)
{
    run_ctx *r = arg;
    for (int i = 0; i < N_CLIENTS; i++)
        if (atomic_load(&r->s->ends[i].got) < N_STREAM ||
            atomic_load(&r->clients[i].got) < N_STREAM)
            return 0;
    return 1;
}

typedef struct gate_wait {
    end *e;
    em_link *sender;
} gate_wait;

static int gated_drained(void *arg)
{
    gate_wait *g = arg;
    return atomic_load(&g->e->got) == N_STREAM + N_GATED &&
           em_link_queued_bytes(g->sender) == 0;
}

static int closed_once(void *arg)
{
    return atomic_load(&((end *)arg)->closed) >= 1;
}

/* Finds the server end serving client k. */
static end *server_end_of(srv *s, int k)
{
    for (int i = 0; i < N_CLIENTS; i++)
        if (atomic_load(&s->ends[i].index) == k)
            return &s->ends[i];
    return NULL;
}

static void run_transport(const char *url, const char *name)
{
    static srv s;
    static end clients[N_CLIENTS];
    em_link_server *server = serve(&s, url, srv_accept);
    const char *u = em_link_server_url(server);
    if (strncmp(url, "tcp", 3) == 0) /* port 0 was resolved */
        assert_true(strcmp(strrchr(u, ':'), ":0") != 0);

    /* Three clients, each introduced by name; the server answers each on
     * its own link. */
    for (int k = 0; k < N_CLIENTS; k++) {
        dial_end(&clients[k], k, u, 10000);
        char hello[32];
        int n = snprintf(hello, sizeof hello, "HELLO %d", k);
        assert_int_equal(em_link_send(clients[k].link, hello, (size_t)n),
                         EMBER_OK);
    }
    run_ctx r = {&s, clients};
    assert_true(wait_for(all_introduced, &r, 20000));
    end *se[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++) {
        se[k] = server_end_of(&s, k);
        assert_non_null(se[k]);
        assert_ptr_equal(em_link_user(se[k]->link), se[k]);
        assert_true(em_link_id(se[k]->link) != 0);
        for (int j = 0; j < k; j++) {
            assert_true(se[j] != se[k]);
            assert_true(em_link_id(se[j]->link) != em_link_id(se[k]->link));
        }
        assert_true(em_link_id(clients[k].link) != em_link_id(se[k]->link));
    }

    /* 100,000 messages each way per client, round robin, paced on the
     * queued bytes so memory stays bounded. */
    uint8_t *buf = malloc(MIB);
    assert_non_null(buf);
    int64_t t0 = now_ms();
    for (uint64_t seq = 0; seq < N_STREAM; seq++) {
        for (int k = 0; k < N_CLIENTS; k++) {
            em_link *to_server = clients[k].link;
            em_link *to_client = se[k]->link;
            size_t n = fill(buf, k, 0, seq);
            while (em_link_queued_bytes(to_server) > PACE_BYTES)
                sleep_us(100);
            assert_int_equal(em_link_send(to_server, buf, n), EMBER_OK);
            n = fill(buf, k, 1, seq);
            while (em_link_queued_bytes(to_client) > PACE_BYTES)
                sleep_us(100);
            assert_int_equal(em_link_send(to_client, buf, n), EMBER_OK);
        }
    }
    assert_true(wait_for(all_streamed, &r, 200000));
    int64_t dt = now_ms() - t0;
    fprintf(stderr, "[ info ] %s: %d messages in %lld ms (%.0f msg/s)\n", name,
            2 * N_CLIENTS * N_STREAM, (long long)dt,
            dt > 0 ? 2.0 * N_CLIENTS * N_STREAM * 1000.0 / (double)dt : 0.0);
    for (int k = 0; k < N_CLIENTS; k++) {
        assert_int_equal(atomic_load(&clients[k].errors), 0);
        assert_int_equal(atomic_load(&se[k]->errors), 0);
        assert_int_equal(atomic_load(&clients[k].got), N_STREAM);
        assert_int_equal(atomic_load(&se[k]->got), N_STREAM);
    }

    /* A slow receiver: the server end of client 0 holds its recv() until
     * the gate opens. Sending never blocks: the queue grows, then drains. */
    pthread_mutex_lock(&gate_mu);
    gate_open = 0;
    pthread_mutex_unlock(&gate_mu);
    atomic_store(&se[0]->gate, 1);
    for (uint64_t seq = N_STREAM; seq < N_STREAM + N_GATED; seq++) {
        size_t n = fill(buf, 0, 0, seq);
        assert_int_equal(em_link_send(clients[0].link, buf, n), EMBER_OK);
    }
    assert_true(em_link_queued_bytes(clients[0].link) > 0);
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    gate_wait g = {se[0], clients[0].link};
    assert_true(wait_for(gated_drained, &g, 60000));
    assert_int_equal(atomic_load(&se[0]->errors), 0);
    free(buf);

    /* Client 0 closes: its own closed() runs before em_link_close returns,
     * the server's closed() for it follows once. */
    em_link_close(clients[0].link);
    assert_int_equal(atomic_load(&clients[0].closed), 1);
    assert_string_equal(clients[0].reason, "closed locally");
    assert_true(wait_for(closed_once, se[0], 5000));
    assert_string_equal(se[0]->reason, "peer disconnected");
    assert_int_equal(em_link_send(se[0]->link, "x", 1), EMBER_EIO);

    /* The server closes: closed() for its remaining links, and each client
     * notices. */
    em_link_server_close(server);
    for (int k = 0; k < N_CLIENTS; k++)
        assert_int_equal(atomic_load(&se[k]->closed), 1);
    assert_string_equal(se[1]->reason, "server closed");
    for (int k = 1; k < N_CLIENTS; k++) {
        assert_true(wait_for(closed_once, &clients[k], 5000));
        assert_string_equal(clients[k].reason, "peer disconnected");
        assert_int_equal(em_link_send(clients[k].link, "x", 1), EMBER_EIO);
        em_link_close(clients[k].link);
        assert_int_equal(atomic_load(&clients[k].closed), 1);
    }
    for (int k = 0; k < N_CLIENTS; k++) {
        assert_int_equal(atomic_load(&clients[k].recv_after_close), 0);
        assert_int_equal(atomic_load(&se[k]->recv_after_close), 0);
        assert_int_equal(atomic_load(&clients[k].errors), 0);
        assert_int_equal(atomic_load(&se[k]->errors), 0);
    }
    assert_int_equal(em_link_close_timeouts(), 0);
}

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/emlink-XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_inproc(void **state)
{
    (void)state;
    run_transport("inproc://link-test", "inproc");
}

static void test_ipc(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/server", tmpdir);
    run_transport(url, "ipc");
}

static void test_tcp(void **state)
{
    (void)state;
    run_transport("tcp://127.0.0.1:0", "tcp");
}

/* ------------------------------------------------------ peer death */

static char self_exe[4096];

/* Runs this test binary as a child that dials url and then dies as mode
 * says ("exit": _exit at once; "hang": send "hi" and wait to be killed),
 * or ("serve") that serves a link server on url until it is killed. */
static pid_t spawn_child(const char *url, const char *mode)
{
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {self_exe, (char *)"--link-child", (char *)url,
                        (char *)mode, NULL};
        execv(self_exe, argv);
        _exit(127);
    }
    return pid;
}

static ember_status serve_accept(void *ctx, em_link *l, em_link_handler *h)
{
    (void)ctx;
    (void)l;
    (void)h; /* messages are discarded; PINGs are answered by the link */
    return EMBER_OK;
}

static int child_main(const char *url, const char *mode)
{
    static end e;
    end_init(&e, 0, 1);
    if (strcmp(mode, "serve") == 0) {
        em_link_server *s;
        ember_error err;
        if (em_link_server_open(&s, url, serve_accept, NULL, &err) !=
            EMBER_OK) {
            fprintf(stderr, "child: %s\n", err.msg);
            _exit(2);
        }
        for (int i = 0; i < 600; i++)
            sleep_us(100000);
        _exit(3);
    }
    em_link_handler h = {&e, NULL, NULL};
    em_link *l;
    ember_error err;
    if (em_link_dial(&l, url, &h, 10000, &err) != EMBER_OK) {
        fprintf(stderr, "child: %s\n", err.msg);
        _exit(2);
    }
    if (strcmp(mode, "exit") == 0)
        _exit(0); /* no close: the process just ends */
    (void)em_link_send(l, "hi", 2);
    for (int i = 0; i < 300; i++)
        sleep_us(100000);
    _exit(3);
}

typedef struct death_srv {
    _Atomic int accepted;
    _Atomic int got_hi;
    _Atomic int closed;
    _Atomic int reason_set;
    char reason[128];
} death_srv;

static void death_recv(void *ctx, em_link *l, const uint8_t *data,
                       size_t len)
{
    death_srv *d = ctx;
    (void)l;
    if (len == 2 && memcmp(data, "hi", 2) == 0)
        atomic_store(&d->got_hi, 1);
}

static void death_closed(void *ctx, em_link *l, const char *reason)
{
    death_srv *d = ctx;
    (void)l;
    if (!atomic_exchange(&d->reason_set, 1))
        snprintf(d->reason, sizeof d->reason, "%s", reason);
    atomic_fetch_add(&d->closed, 1);
}

static ember_status death_accept(void *ctx, em_link *l, em_link_handler *h)
{
    death_srv *d = ctx;
    (void)l;
    atomic_fetch_add(&d->accepted, 1);
    h->ctx = d;
    h->recv = death_recv;
    h->closed = death_closed;
    return EMBER_OK;
}

static int death_got_hi(void *arg)
{
    return atomic_load(&((death_srv *)arg)->got_hi);
}

static int death_closed_once(void *arg)
{
    return atomic_load(&((death_srv *)arg)->closed) >= 1;
}

static void run_death(const char *mode)
{
    death_srv d;
    memset(&d, 0, sizeof d);
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/death-%s", tmpdir, mode);
    em_link_server *s;
    ember_error err;
    assert_int_equal(em_link_server_open(&s, url, death_accept, &d, &err),
                     EMBER_OK);
    pid_t pid = spawn_child(url, mode);
    assert_true(pid > 0);
    int status = 0;
    if (strcmp(mode, "exit") == 0) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    } else {
        assert_true(wait_for(death_got_hi, &d, 20000));
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
    }
    /* The peer is gone: closed() must come within 2 s. */
    assert_true(wait_for(death_closed_once, &d, 2000));
    assert_int_equal(atomic_load(&d.accepted), 1);
    assert_string_equal(d.reason, "peer disconnected");
    em_link_server_close(s);
    assert_int_equal(atomic_load(&d.closed), 1);
}

static void test_peer_exits(void **state)
{
    (void)state;
    run_death("exit");
}

static void test_peer_killed(void **state)
{
    (void)state;
    run_death("hang");
}

/* ------------------------------------------------ rendezvous hygiene */

/* Sends req on a raw REQ socket to url and returns the reply's length
 * (copied NUL-terminated into reply), or -1. */
static int raw_request(const char *url, const void *req, size_t len,
                       char *reply, size_t cap)
{
    nng_socket s;
    int n = -1;
    if (nng_req0_open(&s) != 0)
        return -1;
    char *got = NULL;
    size_t got_len = 0;
    if (nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000) == 0 &&
        nng_dial(s, url, NULL, 0) == 0 &&
        nng_send(s, (void *)req, len, 0) == 0 &&
        nng_recv(s, &got, &got_len, NNG_FLAG_ALLOC) == 0) {
        n = (int)got_len;
        size_t c = got_len < cap - 1 ? got_len : cap - 1;
        memcpy(reply, got, c);
        reply[c] = '\0';
        nng_free(got, got_len);
    }
    nng_close(s);
    return n;
}

static void test_garbage_rendezvous(void **state)
{
    (void)state;
    srv s;
    em_link_server *server = serve(&s, "inproc://garbage", srv_accept);
    uint8_t junk[300];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    char reply[512];
    assert_true(raw_request("inproc://garbage", junk, sizeof junk, reply,
                            sizeof reply) > 0);
    assert_true(strncmp(reply, "EMLINK2 ERR ", 12) == 0);
    /* Another protocol version is refused by name, in its own version so
     * that its client can read the refusal. */
    assert_true(raw_request("inproc://garbage", "EMLINK9 HELLO", 13, reply,
                            sizeof reply) > 0);
    assert_true(strncmp(reply, "EMLINK9 ERR ", 12) == 0);
    assert_non_null(strstr(reply, "version"));
    assert_non_null(strstr(reply, "EMLINK2"));
    assert_true(raw_request("inproc://garbage", "EMLINK1 HELLO", 13, reply,
                            sizeof reply) > 0);
    assert_true(strncmp(reply, "EMLINK1 ERR ", 12) == 0);
    assert_true(raw_request("inproc://garbage", "", 0, reply,
                            sizeof reply) > 0);
    assert_true(strncmp(reply, "EMLINK2 ERR ", 12) == 0);
    assert_int_equal(atomic_load(&s.naccept), 0);

    /* The server still serves real clients. */
    static end c;
    dial_end(&c, 5, "inproc://garbage", 5000);
    assert_int_equal(em_link_send(c.link, "HELLO 5", 7), EMBER_OK);
    end *e = &s.ends[0];
    assert_true(wait_for(welcomed, &c, 5000));
    assert_int_equal(atomic_load(&s.naccept), 1);
    assert_int_equal(atomic_load(&e->index), 5);
    em_link_close(c.link);
    em_link_server_close(server);
    assert_int_equal(atomic_load(&e->closed), 1);
}

/* accept() refusing a peer: the dialer sees its link close. */
static void test_accept_refuses(void **state)
{
    (void)state;
    srv s;
    em_link_server *server = serve(&s, "inproc://refuse", srv_accept);
    atomic_store(&s.refuse, 1);
    ember_error err;
    static end c;
    end_init(&c, 0, 1);
    em_link_handler h = {&c, client_recv, on_closed};
    ember_status st = em_link_dial(&c.link, "inproc://refuse", &h, 5000,
                                   &err);
    /* Refused at once (EIO) or just after the dial returned. */
    if (st == EMBER_OK) {
        assert_true(wait_for(closed_once, &c, 5000));
        assert_string_equal(c.reason, "peer disconnected");
        em_link_close(c.link);
    } else {
        assert_int_equal(st, EMBER_EIO);
    }
    em_link_server_close(server);
    assert_int_equal(atomic_load(&s.naccept), 0);
}

static int path_gone(void *arg)
{
    struct stat st;
    return stat((const char *)arg, &st) != 0 && errno == ENOENT;
}

/* A channel nobody dials is dropped after EM_LINK_PENDING_MS (its ipc
 * file goes). */
static void test_undialed_channel_dropped(void **state)
{
    (void)state;
    srv s;
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/undialed", tmpdir);
    em_link_server *server = serve(&s, url, srv_accept);
    char reply[512];
    assert_true(raw_request(url, "EMLINK2 HELLO", 13, reply, sizeof reply) >
                0);
    assert_true(strncmp(reply, "EMLINK2 OK ipc://", 17) == 0);
    const char *path = reply + strlen("EMLINK2 OK ipc://");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(wait_for(path_gone, (void *)path, 20000));
    assert_int_equal(atomic_load(&s.naccept), 0);
    em_link_server_close(server);
}

static void test_dial_nothing_listening(void **state)
{
    (void)state;
    em_link *l = NULL;
    ember_error err;
    em_link_handler h = {NULL, NULL, NULL};
    assert_int_equal(em_link_dial(&l, "inproc://nobody-home", &h, 300, &err),
                     EMBER_ETIMEDOUT);
    assert_null(l);
    assert_non_null(strstr(err.msg, "inproc://nobody-home"));
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/nobody", tmpdir);
    assert_int_equal(em_link_dial(&l, url, &h, 300, &err), EMBER_ETIMEDOUT);
    assert_null(l);
}

/* A client that dials before the server exists keeps trying until the
 * server comes up. */
static void test_dial_before_server(void **state)
{
    (void)state;
    static end c;
    end_init(&c, 2, 1);
    bg_dial d = {"inproc://late", 10000, &c, NULL, EMBER_EINTERNAL, ""};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_dial_main, &d), 0);
    sleep_us(300000);
    srv s;
    em_link_server *server = serve(&s, "inproc://late", srv_accept);
    pthread_join(t, NULL);
    if (d.st != EMBER_OK)
        fail_msg("late dial: %s", d.msg);
    em_link_close(c.link);
    em_link_server_close(server);
    assert_int_equal(atomic_load(&s.naccept), 1);
    assert_int_equal(atomic_load(&s.ends[0].closed), 1);
}

/* A REP server that is not an ember link server. */
static void *foreign_main(void *arg)
{
    nng_socket rep = *(nng_socket *)arg;
    char *buf = NULL;
    size_t len = 0;
    if (nng_recv(rep, &buf, &len, NNG_FLAG_ALLOC) == 0) {
        nng_free(buf, len);
        (void)nng_send(rep, "hello there", 11, 0);
    }
    return NULL;
}

static void test_dial_foreign_server(void **state)
{
    (void)state;
    nng_socket rep;
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 10000), 0);
    assert_int_equal(nng_listen(rep, "inproc://foreign", NULL, 0), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, foreign_main, &rep), 0);
    em_link *l = NULL;
    ember_error err;
    em_link_handler h = {NULL, NULL, NULL};
    assert_int_equal(em_link_dial(&l, "inproc://foreign", &h, 5000, &err),
                     EMBER_EIO);
    assert_non_null(strstr(err.msg, "not an ember link server"));
    pthread_join(t, NULL);
    nng_close(rep);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    em_link_server *s;
    ember_error err;
    srv sv;
    srv_init(&sv);
    assert_int_equal(em_link_server_open(&s, "ws://127.0.0.1:0", srv_accept,
                                         &sv, &err),
                     EMBER_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "ws://"));
    assert_int_equal(em_link_server_open(&s, "nonsense", srv_accept, &sv,
                                         &err),
                     EMBER_EINVAL);
    assert_int_equal(em_link_server_open(&s, "tcp://127.0.0.1", srv_accept,
                                         &sv, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_link_server_open(&s, "inproc://x", NULL, &sv, &err),
                     EMBER_EINVAL);
    /* The same address twice. */
    em_link_server *a;
    assert_int_equal(em_link_server_open(&a, "inproc://twice", srv_accept,
                                         &sv, &err),
                     EMBER_OK);
    assert_int_equal(em_link_server_open(&s, "inproc://twice", srv_accept,
                                         &sv, &err),
                     EMBER_EEXIST);
    assert_non_null(strstr(err.msg, "inproc://twice"));
    em_link_server_close(a);
    em_link *l;
    em_link_handler h = {NULL, NULL, NULL};
    assert_int_equal(em_link_dial(&l, "inproc://x", &h, 0, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_link_dial(&l, "inproc://x", NULL, 100, &err),
                     EMBER_EINVAL);
    assert_int_equal(em_link_send(NULL, "x", 1), EMBER_EINVAL);
    assert_int_equal(em_link_status(NNG_ETIMEDOUT), EMBER_ETIMEDOUT);
    assert_int_equal(em_link_status(NNG_ECONNREFUSED), EMBER_EIO);
    assert_int_equal(em_link_status(0), EMBER_OK);
    em_link_close(NULL);
    em_link_close_async(NULL);
    em_link_server_close(NULL);
}


/* ------------------------------------------- close while the peer sends */

/* One link at a time: the server end of the current cycle. */
typedef struct cyc_srv {
    _Atomic(em_link *) link;
    _Atomic int got;     /* messages the server end received */
    _Atomic int closed;  /* its closed() calls */
    _Atomic int echo;    /* echo every message back */
    _Atomic int reason_set;
    char reason[128];
} cyc_srv;

static void cyc_recv(void *ctx, em_link *l, const uint8_t *data, size_t len)
{
    cyc_srv *c = ctx;
    atomic_fetch_add(&c->got, 1);
    if (atomic_load(&c->echo))
        (void)em_link_send(l, data, len); /* EIO once the client is gone */
}

static void cyc_closed(void *ctx, em_link *l, const char *reason)
{
    cyc_srv *c = ctx;
    (void)l;
    if (!atomic_exchange(&c->reason_set, 1))
        snprintf(c->reason, sizeof c->reason, "%s", reason);
    atomic_fetch_add(&c->closed, 1);
}

static ember_status cyc_accept(void *ctx, em_link *l, em_link_handler *h)
{
    cyc_srv *c = ctx;
    h->ctx = c;
    h->recv = cyc_recv;
    h->closed = cyc_closed;
    atomic_store(&c->link, l);
    return EMBER_OK;
}

static int cyc_got_one(void *arg)
{
    cyc_srv *c = arg;
    return atomic_load(&c->link) != NULL && atomic_load(&c->got) >= 1;
}

static int cyc_closed_once(void *arg)
{
    return atomic_load(&((cyc_srv *)arg)->closed) >= 1;
}

/* Counts what a client end receives. */
typedef struct cyc_cli {
    _Atomic int got;
    _Atomic int closed;
} cyc_cli;

static void cyc_cli_recv(void *ctx, em_link *l, const uint8_t *data,
                         size_t len)
{
    (void)l;
    (void)data;
    (void)len;
    atomic_fetch_add(&((cyc_cli *)ctx)->got, 1);
}

static void cyc_cli_closed(void *ctx, em_link *l, const char *reason)
{
    (void)l;
    (void)reason;
    atomic_fetch_add(&((cyc_cli *)ctx)->closed, 1);
}

static int cyc_cli_closed_once(void *arg)
{
    return atomic_load(&((cyc_cli *)arg)->closed) >= 1;
}

/* 200: the old close hung within 80 cycles on tcp and at once on ipc. */
#define N_CYCLES 200

/*
 * N_CYCLES links, each closed while its peer is sending. Even cycles: the
 * client sends a few messages and closes at once while the server echoes
 * them back (the reproducer of NNG 1.5.2's close race: without the goodbye
 * a few dozen cycles leave nng_close hanging). Odd cycles: the server
 * closes as soon as the first of a stream of messages arrived, while the
 * client is still sending. Every close must finish without the 3 s guard.
 */
static void run_close_cycles(const char *url)
{
    static cyc_srv c;
    memset(&c, 0, sizeof c);
    em_link_server *server;
    ember_error err;
    assert_int_equal(em_link_server_open(&server, url, cyc_accept, &c, &err),
                     EMBER_OK);
    const char *u = em_link_server_url(server);
    unsigned timeouts = em_link_close_timeouts();
    char msg[4096];
    memset(msg, 'm', sizeof msg);
    for (int i = 0; i < N_CYCLES; i++) {
        atomic_store(&c.link, NULL);
        atomic_store(&c.got, 0);
        atomic_store(&c.closed, 0);
        atomic_store(&c.reason_set, 0);
        atomic_store(&c.echo, i % 2 == 0);
        cyc_cli cli;
        atomic_init(&cli.got, 0);
        atomic_init(&cli.closed, 0);
        em_link_handler h = {&cli, cyc_cli_recv, cyc_cli_closed};
        em_link *l;
        if (em_link_dial(&l, u, &h, 10000, &err) != EMBER_OK)
            fail_msg("cycle %d: dial %s: %s", i, u, err.msg);
        if (i % 2 == 0) {
            for (int k = 0; k < 3; k++)
                assert_int_equal(em_link_send(l, msg, 16 + (size_t)k * 1000),
                                 EMBER_OK);
            em_link_close(l);
            assert_int_equal(atomic_load(&cli.closed), 1);
            if (!wait_for(cyc_closed_once, &c, 10000))
                fail_msg("cycle %d: the server never saw the close", i);
            assert_string_equal(c.reason, "peer disconnected");
            em_link_close(atomic_load(&c.link));
        } else {
            for (int k = 0; k < 20; k++)
                assert_int_equal(em_link_send(l, msg, sizeof msg), EMBER_OK);
            if (!wait_for(cyc_got_one, &c, 10000))
                fail_msg("cycle %d: nothing arrived", i);
            em_link_close(atomic_load(&c.link));
            assert_int_equal(atomic_load(&c.closed), 1);
            if (!wait_for(cyc_cli_closed_once, &cli, 10000))
                fail_msg("cycle %d: the client never saw the close", i);
            assert_int_equal(em_link_send(l, "x", 1), EMBER_EIO);
            em_link_close(l);
        }
        if (em_link_close_timeouts() != timeouts)
            fail_msg("cycle %d: nng_close hung on %s", i, url);
    }
    em_link_server_close(server);
    assert_int_equal(em_link_close_timeouts(), timeouts);
}

static void test_close_cycles_tcp(void **state)
{
    (void)state;
    run_close_cycles("tcp://127.0.0.1:0");
}

static void test_close_cycles_ipc(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/cycles", tmpdir);
    run_close_cycles(url);
}

/* -------------------------------------------------- rendezvous flood */

/* A client that asks for channels and never dials them gets at most
 * EM_LINK_MAX_PENDING; the next one is refused as busy until the
 * undialed ones expire, and a real client waiting meanwhile gets in. */
static void test_rendezvous_flood(void **state)
{
    (void)state;
    srv s;
    em_link_server *server = serve(&s, "tcp://127.0.0.1:0", srv_accept);
    ember_error err;
    const char *u = em_link_server_url(server);
    char reply[512];
    for (int i = 0; i < EM_LINK_MAX_PENDING; i++) {
        assert_true(raw_request(u, "EMLINK2 HELLO", 13, reply,
                                sizeof reply) > 0);
        if (strncmp(reply, "EMLINK2 OK tcp://", 17) != 0)
            fail_msg("rendezvous %d: %s", i, reply);
    }
    assert_true(raw_request(u, "EMLINK2 HELLO", 13, reply, sizeof reply) >
                0);
    assert_true(strncmp(reply, "EMLINK2 ERR busy: ", 18) == 0);
    assert_non_null(strstr(reply, "too many"));

    /* A client with little time gives up, saying why. */
    em_link *l = NULL;
    em_link_handler h = {NULL, NULL, NULL};
    assert_int_equal(em_link_dial(&l, u, &h, 300, &err), EMBER_ETIMEDOUT);
    assert_null(l);
    assert_non_null(strstr(err.msg, "busy"));

    /* One with time keeps asking and gets in once channels expire. */
    bg_dial d = {u, 30000, NULL, NULL, EMBER_EINTERNAL, ""};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_dial_main, &d), 0);
    pthread_join(t, NULL);
    if (d.st != EMBER_OK)
        fail_msg("dial after the flood: %s", d.msg);
    assert_int_equal(em_link_send(d.link, "HELLO 0", 7), EMBER_OK);
    em_link_close(d.link);
    em_link_server_close(server);
    assert_int_equal(atomic_load(&s.naccept), 1);
    assert_int_equal(atomic_load(&s.ends[0].closed), 1);
}

/* ------------------------------------------------------- link timeout */

#define LINK_TIMEOUT_MS 1000

/* A link whose peer's recv() blocks is declared dead by its timeout; the
 * peer side (no timeout of its own) goes on until it is closed. */
static void test_timeout_recv_blocked(void **state)
{
    (void)state;
    srv s;
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/blocked", tmpdir);
    em_link_server *server = serve(&s, url, srv_accept);
    unsigned timeouts = em_link_close_timeouts();
    static end c;
    dial_end(&c, 3, url, 10000);
    assert_int_equal(em_link_set_timeout(c.link, -1), EMBER_EINVAL);
    assert_int_equal(em_link_set_timeout(c.link, LINK_TIMEOUT_MS), EMBER_OK);
    assert_int_equal(em_link_send(c.link, "HELLO 3", 7), EMBER_OK);
    assert_int_equal(atomic_load(&c.closed), 0);
    assert_true(wait_for(welcomed, &c, 10000));

    /* The server's next recv() blocks until the gate opens. */
    pthread_mutex_lock(&gate_mu);
    gate_open = 0;
    pthread_mutex_unlock(&gate_mu);
    atomic_store(&s.ends[0].gate, 1);
    uint8_t one = 0;
    assert_int_equal(em_link_send(c.link, &one, 1), EMBER_OK);
    assert_true(wait_for(closed_once, &c, 20000));
    assert_string_equal(c.reason, EM_LINK_TIMED_OUT);
    assert_int_equal(em_link_send(c.link, "x", 1), EMBER_EIO);
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    em_link_close(c.link);
    assert_int_equal(atomic_load(&c.closed), 1);
    /* Once it reads again, the server takes the goodbye. */
    assert_true(wait_for(closed_once, &s.ends[0], 10000));
    assert_string_equal(s.ends[0].reason, "peer disconnected");
    em_link_server_close(server);
    /* (no count of close timeouts here: the goodbye of the timed-out link
     * races the gate, and on a loaded machine it may take the 3 s guard) */
    (void)timeouts;
    assert_int_equal(em_link_set_timeout(NULL, 5), EMBER_EINVAL);
}

/* The idle test's timeout: long enough that a loaded machine (a parallel
 * sanitizer run) does not starve the pings of a live link. */
#define IDLE_TIMEOUT_MS 3000

static ember_status idle_accept(void *ctx, em_link *l, em_link_handler *h)
{
    ember_status st = srv_accept(ctx, l, h);
    if (st == EMBER_OK)
        st = em_link_set_timeout(l, IDLE_TIMEOUT_MS);
    return st;
}

/* Idle but alive peers keep their links, both sides with a timeout. */
static void test_timeout_idle_alive(void **state)
{
    (void)state;
    srv s;
    em_link_server *server = serve(&s, "tcp://127.0.0.1:0", idle_accept);
    static end c;
    dial_end(&c, 4, em_link_server_url(server), 10000);
    assert_int_equal(em_link_set_timeout(c.link, IDLE_TIMEOUT_MS), EMBER_OK);
    /* Two timeouts of silence from the user on both sides. */
    sleep_us(2 * IDLE_TIMEOUT_MS * 1000L);
    assert_int_equal(atomic_load(&c.closed), 0);
    assert_int_equal(atomic_load(&s.naccept), 1);
    assert_int_equal(atomic_load(&s.ends[0].closed), 0);
    /* And the link still carries messages. */
    assert_int_equal(em_link_send(c.link, "HELLO 4", 7), EMBER_OK);
    assert_true(wait_for(welcomed, &c, 10000));
    assert_int_equal(atomic_load(&c.errors), 0);
    em_link_close(c.link);
    assert_string_equal(c.reason, "closed locally");
    assert_true(wait_for(closed_once, &s.ends[0], 10000));
    assert_string_equal(s.ends[0].reason, "peer disconnected");
    em_link_server_close(server);
}

/* A server process that is stopped (SIGSTOP) is declared dead by its
 * client's timeout; while it ran, the idle link stayed up. */
static void test_timeout_server_stopped(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "ipc://%s/stopped", tmpdir);
    pid_t pid = spawn_child(url, "serve");
    assert_true(pid > 0);
    static end c;
    end_init(&c, 0, 1);
    em_link_handler h = {&c, NULL, on_closed};
    ember_error err;
    ember_status st = em_link_dial(&c.link, url, &h, 20000, &err);
    if (st != EMBER_OK) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("dial the child: %s", err.msg);
    }
    assert_int_equal(em_link_set_timeout(c.link, LINK_TIMEOUT_MS), EMBER_OK);
    sleep_us(2500000);
    assert_int_equal(atomic_load(&c.closed), 0);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    assert_true(wait_for(closed_once, &c, 20000));
    assert_string_equal(c.reason, EM_LINK_TIMED_OUT);
    unsigned timeouts = em_link_close_timeouts();
    em_link_close(c.link); /* a silent peer gets no goodbye */
    assert_int_equal(em_link_close_timeouts(), timeouts);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--link-child") == 0)
        return child_main(argv[2], argv[3]);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_dial_nothing_listening),
        cmocka_unit_test(test_dial_foreign_server),
        cmocka_unit_test(test_dial_before_server),
        cmocka_unit_test(test_garbage_rendezvous),
        cmocka_unit_test(test_accept_refuses),
        cmocka_unit_test(test_peer_exits),
        cmocka_unit_test(test_peer_killed),
        cmocka_unit_test(test_inproc),
        cmocka_unit_test(test_ipc),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_undialed_channel_dropped),
        cmocka_unit_test(test_close_cycles_tcp),
        cmocka_unit_test(test_close_cycles_ipc),
        cmocka_unit_test(test_rendezvous_flood),
        cmocka_unit_test(test_timeout_recv_blocked),
        cmocka_unit_test(test_timeout_idle_alive),
        cmocka_unit_test(test_timeout_server_stopped),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
