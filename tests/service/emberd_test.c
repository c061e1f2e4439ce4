/*
 * emberd_test.c — emberd as a real process, and its clients: the C API
 * on ember://, a raw em_link client sending hostile messages, and the
 * `ember` CLI (submit, status, list, kill).
 *
 * Each emberd is a child started on tcp://127.0.0.1:0 with --state in a
 * fresh directory; the test reads the URL from its first line of output
 * ("emberd: listening on tcp://127.0.0.1:PORT"). Stopping one with
 * SIGTERM must end it with exit status 0 (under the sanitizers, a leak
 * makes that status nonzero).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ember/ember.h"
#include "ember/record.h"
#include "ember/service.h"
#include "msg/client_msg.h"
#include "msg/link.h"
#include "svc_support.h"

/* ------------------------------------------------------------ helpers */

/* Number of *.so files in dir. */
static int count_so(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l > 3 && !strcmp(e->d_name + l - 3, ".so");
    }
    if (d)
        closedir(d);
    return n;
}

/* ------------------------------------------------------ emberd children */

typedef struct svc {
    pid_t pid;
    char state[256];
    char url[128];    /* tcp://127.0.0.1:PORT */
    char master[128]; /* ember://127.0.0.1:PORT */
} svc;

/* Every emberd started and not yet stopped: a failed test leaves its
 * children behind, which the group teardown kills (ctest would otherwise
 * wait for them, as they hold its output). */
static pid_t g_children[16];

static void child_track(pid_t pid, int add)
{
    for (int i = 0; i < 16; i++)
        if (g_children[i] == (add ? 0 : pid)) {
            g_children[i] = add ? pid : 0;
            return;
        }
}

static void kill_children(void)
{
    for (int i = 0; i < 16; i++)
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
}

/* Starts emberd on state (made with mkdtemp when state is NULL) and
 * master URL mu, with the options in extra (NULL-terminated, nullable);
 * returns once it listens. */
static void svc_start_with(svc *s, const char *state, const char *mu,
                           const char *const *extra)
{
    if (state) {
        snprintf(s->state, sizeof s->state, "%s", state);
    } else {
        snprintf(s->state, sizeof s->state, "/tmp/ember-svc-test-XXXXXX");
        assert_non_null(mkdtemp(s->state));
    }
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        const char *argv[16] = {"emberd", "--listen", "tcp://127.0.0.1:0",
                                "--state", s->state, "--master", mu};
        for (int k = 0; extra && extra[k] && k < 8; k++)
            argv[7 + k] = extra[k];
        execv(EMBERD_BIN, (char *const *)argv);
        _exit(127);
    }
    child_track(s->pid, 1);
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256] = "";
    if (!fgets(line, sizeof line, f))
        fail_msg("emberd (master %s) ended before it listened", mu);
    fclose(f);
    const char *p = strstr(line, "emberd: listening on tcp://");
    assert_non_null(p);
    p += strlen("emberd: listening on ");
    snprintf(s->url, sizeof s->url, "%.*s", (int)strcspn(p, "\n"), p);
    snprintf(s->master, sizeof s->master, "ember://%s", s->url + 6);
}

static void svc_start(svc *s, const char *state, const char *mu)
{
    svc_start_with(s, state, mu, NULL);
}

/* Whether the child still runs. */
static int svc_alive(svc *s)
{
    int status;
    return waitpid(s->pid, &status, WNOHANG) == 0;
}

/* Sends sig and waits; returns the exit status, or 128 + the signal. */
static int svc_stop(svc *s, int sig)
{
    int status = 0;
    kill(s->pid, sig);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    child_track(s->pid, 0);
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
}

/* The emberd most tests share: local[2]. */
static svc g_svc;

static int setup_svc(void **state)
{
    (void)state;
    svc_start(&g_svc, NULL, "local[2]");
    return 0;
}

static int teardown_svc(void **state)
{
    (void)state;
    int rc = svc_stop(&g_svc, SIGTERM);
    kill_children();
    rmtree(g_svc.state);
    if (rc != 0)
        fail_msg("emberd exited with status %d after SIGTERM", rc);
    return 0;
}

/* ------------------------------------------------------------ sessions */

/* A session on master, shipping plugin (nullable). */
static ember_session *open_on(const char *master, const char *plugin)
{
    return session_open(master, NULL, NULL, plugin);
}

/* Records as JSON values joined by spaces (malloc'd). */
static char *render(const ember_records *r)
{
    ember_batch b = {r->data, r->len, r->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    ember_buf out = ember_buf_heap();
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        if (out.len)
            ember_buf_put_u8(&out, ' ');
        assert_int_equal(ember_rec_json(&out, rec, len), EMBER_OK);
    }
    ember_buf_put_u8(&out, 0);
    return (char *)out.data;
}

/* The one int of a one-record result. */
static int64_t only_int(const ember_records *r)
{
    ember_batch b = {r->data, r->len, r->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    ember_value v = {0};
    assert_int_equal(r->count, 1);
    assert_int_equal(ember_batch_next(&c, &rec, &len), EMBER_OK);
    ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
    assert_int_equal(ember_rec_next(&rc, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_INT);
    return v.u.i64;
}

static ember_rdd *ints(ember_session *s, const int64_t *v, size_t n,
                       uint32_t slices)
{
    ember_buf b = ember_buf_heap();
    ember_error err = {0};
    for (size_t i = 0; i < n; i++) {
        uint8_t tmp[16];
        ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
        assert_int_equal(ember_rec_put_int(&one, v[i]), EMBER_OK);
        assert_int_equal(ember_batch_append(&b, one.data, one.len), EMBER_OK);
    }
    ember_batch batch = {b.data, b.len, n};
    ember_rdd *r = ember_parallelize(s, &batch, slices, &err);
    ember_buf_release(&b);
    if (!r)
        fail_msg("parallelize: %s", err.msg);
    return r;
}

/* count, collect and fold with exact answers; returns nonzero on a wrong
 * answer (for threads, which cannot use cmocka's asserts). */
static int run_actions(ember_session *s, int64_t base, char *why,
                       size_t cap)
{
    ember_error err = {0};
    uint64_t n = 0;
    ember_rdd *r = ember_range(s, base, base + 10000, 1, 4, &err);
    if (!r || ember_count(r, &n, &err) != EMBER_OK || n != 10000) {
        snprintf(why, cap, "count: %llu (%s)", (unsigned long long)n,
                 err.msg);
        return 1;
    }
    int64_t v[5] = {base, base + 1, base + 2, base + 3, base + 4};
    ember_buf b = ember_buf_heap();
    for (int i = 0; i < 5; i++) {
        uint8_t tmp[16];
        ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
        ember_rec_put_int(&one, v[i]);
        ember_batch_append(&b, one.data, one.len);
    }
    ember_batch batch = {b.data, b.len, 5};
    ember_rdd *p = ember_parallelize(s, &batch, 3, &err);
    ember_buf_release(&b);
    ember_records out = {0};
    if (!p || ember_collect(p, &out, &err) != EMBER_OK || out.count != 5) {
        snprintf(why, cap, "collect: %s", err.msg);
        ember_records_free(&out);
        return 1;
    }
    char *text = render(&out);
    char want[128];
    snprintf(want, sizeof want, "[%lld] [%lld] [%lld] [%lld] [%lld]",
             (long long)v[0], (long long)v[1], (long long)v[2],
             (long long)v[3], (long long)v[4]);
    int bad = strcmp(text, want) != 0;
    if (bad)
        snprintf(why, cap, "collect: %s, not %s", text, want);
    free(text);
    ember_records_free(&out);
    if (bad)
        return 1;
    /* fold with zero 0 over 4 partitions: the sum */
    uint8_t zero[16];
    ember_buf zb = ember_buf_fixed(zero, sizeof zero);
    ember_rec_put_int(&zb, 0);
    if (ember_fold(r, zero, zb.len, fn0("std.sum"), &out, &err) !=
        EMBER_OK) {
        snprintf(why, cap, "fold: %s", err.msg);
        return 1;
    }
    ember_batch fb = {out.data, out.len, out.count};
    ember_batch_cursor fc = ember_batch_cursor_of(&fb);
    const uint8_t *rec;
    size_t len;
    ember_value sum = {0};
    if (out.count == 1 && ember_batch_next(&fc, &rec, &len) == EMBER_OK) {
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        ember_rec_next(&rc, &sum);
    }
    ember_records_free(&out);
    int64_t expect = 10000 * base + 10000LL * 9999 / 2;
    if (sum.type != EMBER_TYPE_INT || sum.u.i64 != expect) {
        snprintf(why, cap, "fold: %lld, not %lld", (long long)sum.u.i64,
                 (long long)expect);
        return 1;
    }
    return 0;
}

/* ----------------------------------------------------------- word count */

static char text_path[256];
static char *reference; /* "word\tcount\n" lines, sorted */

/* A ~4 MB text from a fixed xorshift generator over a skewed vocabulary
 * with mixed white space, and its word count made here (words: runs of
 * bytes that are not ASCII white space, as std.split_words). */
static void make_text(void)
{
    snprintf(text_path, sizeof text_path, "/tmp/ember-svc-text-%ld.txt",
             (long)getpid());
    FILE *f = fopen(text_path, "w");
    assert_non_null(f);
    enum { VOCAB = 3000 };
    static size_t counts[VOCAB];
    static const char *const sep[] = {" ", "\t", "  ", " \r", "\f"};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t bytes = 0;
    while (bytes < 4u * 1000 * 1000) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int words = 1 + (int)(x % 12);
        for (int i = 0; i < words; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned r = (unsigned)(x >> 40) % VOCAB;
            unsigned k = r * r / VOCAB; /* small ranks are common */
            counts[k]++;
            bytes += (size_t)fprintf(f, "k%u%s", k, sep[(x >> 20) % 5]);
        }
        fputc('\n', f);
        bytes++;
    }
    fclose(f);
    char **lines = calloc(VOCAB, sizeof *lines);
    size_t n = 0;
    for (unsigned k = 0; k < VOCAB; k++)
        if (counts[k]) {
            char buf[64];
            snprintf(buf, sizeof buf, "k%u\t%zu", k, counts[k]);
            lines[n++] = strdup(buf);
        }
    reference = join_sorted_lines(lines, n);
    free(lines);
}

static int setup_text(void **state)
{
    (void)state;
    make_text();
    return setup_svc(state);
}

static int teardown_text(void **state)
{
    unlink(text_path);
    free(reference);
    return teardown_svc(state);
}

/* ---------------------------------------------------------------- tests */

static void actions_through_emberd(void **state)
{
    (void)state;
    ember_session *s = open_on(g_svc.master, NULL);
    char why[1024] = "";
    if (run_actions(s, 7, why, sizeof why))
        fail_msg("%s", why);
    /* the service says how many slots it has: local[2] */
    assert_int_equal(ember_default_parallelism(s), 2);
    ember_session_close(s);
}

static void wordcount_through_emberd(void **state)
{
    (void)state;
    ember_session *s = open_on(g_svc.master, NULL);
    char *got = count_words(s, text_path, 6);
    assert_string_equal(got, reference);
    free(got);
    ember_session_close(s);
}

static void wordcount_through_emberd_local_cluster(void **state)
{
    (void)state;
    svc lc;
    svc_start(&lc, NULL, "local-cluster[2,1,512]");
    /* the testfn plugin ships to executor processes started before it
     * arrived: they find it in the service's plugin directory */
    ember_session *s = open_on(lc.master, TESTFN_PLUGIN);
    char *got = count_words(s, text_path, 6);
    assert_string_equal(got, reference);
    free(got);
    ember_error err = {0};
    ember_rdd *two =
        ember_flat_map(ember_range(s, 0, 50, 1, 2, &err),
                       fn0("testfn.two_per"), &err);
    uint64_t n = 0;
    if (!two || ember_count(two, &n, &err) != EMBER_OK)
        fail_msg("testfn.two_per on local-cluster: %s", err.msg);
    assert_int_equal(n, 100);
    ember_session_close(s);
    assert_int_equal(svc_stop(&lc, SIGTERM), 0);
    rmtree(lc.state);
}

/* A client on its own thread: a session on the shared emberd (app name
 * nullable), then `rounds` rounds of run_actions with bases base,
 * base + step, ...; failed and why say whether and how it went wrong. */
typedef struct worker {
    const char *app;
    int64_t base, step;
    int rounds;
    int failed;
    char why[1024];
} worker;

static void *worker_thread(void *arg)
{
    worker *w = arg;
    ember_error err = {0};
    ember_session *s = NULL;
    ember_session_opts o = {.master = g_svc.master, .app_name = w->app};
    if (ember_session_open(&s, &o, &err) != EMBER_OK) {
        w->failed = 1;
        snprintf(w->why, sizeof w->why, "open: %s", err.msg);
        return NULL;
    }
    for (int i = 0; i < w->rounds && !w->failed; i++)
        w->failed = run_actions(s, w->base + w->step * i, w->why,
                                sizeof w->why);
    ember_session_close(s);
    return NULL;
}

static void three_clients_at_once(void **state)
{
    (void)state;
    pthread_t t[3];
    worker w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (worker){.app = "parallel", .base = 1000000 * (i + 1),
                        .step = 1, .rounds = 3};
        assert_int_equal(pthread_create(&t[i], NULL, worker_thread, &w[i]),
                         0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        if (w[i].failed)
            fail_msg("client %d: %s", i, w[i].why);
    }
}

/* persist and unpersist through emberd: the same results from a cached
 * dataset, unpersist (UNPERSIST to the service) answers OK and the level
 * is NONE again, a new level then works. */
static void persist_and_unpersist_on_the_service(void **state)
{
    (void)state;
    ember_session *s = open_on(g_svc.master, TESTFN_PLUGIN);
    ember_error err = {0};
    static const int64_t v[] = {1, 2, 3};
    ember_rdd *two = ember_flat_map(ints(s, v, 3, 2), fn0("testfn.two_per"),
                                    &err);
    assert_non_null(two);
    assert_int_equal(ember_persist(two, "MEMORY_AND_DISK", &err), EMBER_OK);
    for (int round = 0; round < 3; round++) {
        ember_records out = {0};
        if (ember_collect(two, &out, &err) != EMBER_OK)
            fail_msg("collect %d: %s", round, err.msg);
        char *text = render(&out);
        assert_string_equal(text, "[1] [1] [2] [2] [3] [3]");
        free(text);
        ember_records_free(&out);
        if (round == 1) {
            if (ember_unpersist(two, &err) != EMBER_OK)
                fail_msg("unpersist: %s", err.msg);
            assert_string_equal(ember_rdd_storage_level(two), "NONE");
            assert_int_equal(ember_persist(two, "DISK_ONLY", &err),
                             EMBER_OK);
        }
    }
    ember_session_close(s);
}

/* ---- broadcast through emberd (BROADCAST, BROADCAST_DROP) ---- */

/* A broadcast table T[i] = k * i of n little-endian int64s on s. */
static ember_broadcast *bcast_table(ember_session *s, int64_t k, size_t n)
{
    uint8_t *t = malloc(n * 8);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 8; j++)
            t[i * 8 + (size_t)j] = (uint8_t)((uint64_t)(k * (int64_t)i) >>
                                             (8 * j));
    ember_broadcast *b = NULL;
    ember_error err = {0};
    if (ember_broadcast_new(s, t, n * 8, &b, &err) != EMBER_OK)
        fail_msg("broadcast: %s", err.msg);
    free(t);
    return b;
}

/* (1, 2, 3) through testfn.bcast_add of b, rendered. */
static char *bcast_job(ember_session *s, const ember_broadcast *b,
                       ember_status *st, char *why, size_t cap)
{
    static const int64_t v[] = {1, 2, 3};
    uint8_t tmp[32];
    ember_error err = {0};
    ember_rdd *r = ember_map(ints(s, v, 3, 2),
                             fn_int("testfn.bcast_add", tmp, sizeof tmp,
                                    (int64_t)ember_broadcast_id(b)),
                             &err);
    assert_non_null(r);
    ember_records out = {0};
    *st = ember_collect(r, &out, &err);
    snprintf(why, cap, "%s", err.msg);
    char *text = *st == EMBER_OK ? render(&out) : NULL;
    ember_records_free(&out);
    return text;
}

/* Accumulators through the service: the values arrive (ACCUMS) before
 * each job's END; an action's retried task counts once, a map counts
 * each time it is computed. */
static void accumulators_through_emberd(void **state)
{
    (void)state;
    ember_session *s = open_on(g_svc.master, TESTFN_PLUGIN);
    ember_error err = {0};
    ember_accumulator *sum = NULL, *cnt = NULL, *prod = NULL;
    assert_int_equal(ember_accumulator_new(s, "sum", "int64", &sum, &err),
                     EMBER_OK);
    assert_int_equal(ember_accumulator_new(s, NULL, "double", &cnt, &err),
                     EMBER_OK);
    assert_int_equal(ember_accumulator_new(s, NULL, "testfn.product", &prod,
                                           &err),
                     EMBER_OK);
    uint8_t mem[128];
    ember_buf a = ember_buf_fixed(mem, sizeof mem);
    assert_int_equal(ember_rec_put_int(&a, (int64_t)ember_accumulator_id(sum)),
                     EMBER_OK);
    assert_int_equal(ember_rec_put_string(&a, "int", 3), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&a, (int64_t)ember_accumulator_id(cnt)),
                     EMBER_OK);
    assert_int_equal(ember_rec_put_string(&a, "double", 6), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&a, (int64_t)ember_accumulator_id(prod)),
                     EMBER_OK);
    assert_int_equal(ember_rec_put_string(&a, "record", 6), EMBER_OK);
    ember_fn fn = {"testfn.accum_add", a.data, a.len};
    ember_rdd *r = ember_map(ember_range(s, 1, 11, 1, 3, NULL), fn, &err);
    assert_non_null(r);
    uint64_t n = 0;
    assert_int_equal(ember_count(r, &n, &err), EMBER_OK);
    assert_int_equal(n, 10);
    int64_t v = 0;
    double d = 0;
    assert_int_equal(ember_accumulator_int64(sum, &v, &err), EMBER_OK);
    assert_int_equal(v, 55);
    assert_int_equal(ember_accumulator_double(cnt, &d, &err), EMBER_OK);
    assert_true(d == 55.0);
    uint8_t *rec = NULL;
    size_t len = 0;
    assert_int_equal(ember_accumulator_value(prod, &rec, &len, &err),
                     EMBER_OK);
    ember_value pv = {0};
    assert_int_equal(ember_rec_get(rec, len, 0, &pv), EMBER_OK);
    assert_int_equal(pv.u.i64, 3628800);
    free(rec);
    /* a second action computes the map again: counted again */
    assert_int_equal(ember_count(r, &n, &err), EMBER_OK);
    assert_int_equal(ember_accumulator_int64(sum, &v, &err), EMBER_OK);
    assert_int_equal(v, 110);
    ember_session_close(s);
}

/* Two clients' broadcasts 1 are their own; unpersist refetches, destroy
 * makes uses fail, on the service as in an embedded session. */
static void broadcast_through_emberd(void **state)
{
    (void)state;
    ember_session *s = open_on(g_svc.master, TESTFN_PLUGIN);
    ember_session *s2 = open_on(g_svc.master, TESTFN_PLUGIN);
    ember_broadcast *b = bcast_table(s, 10, 100);
    ember_broadcast *b2 = bcast_table(s2, 100, 100);
    assert_int_equal(ember_broadcast_id(b), 1);
    assert_int_equal(ember_broadcast_id(b2), 1);
    ember_status st;
    char why[600];
    ember_error err = {0};
    for (int round = 0; round < 2; round++) {
        char *t = bcast_job(s, b, &st, why, sizeof why);
        if (st != EMBER_OK)
            fail_msg("job %d: %s", round, why);
        assert_string_equal(t, "[11] [22] [33]");
        free(t);
        t = bcast_job(s2, b2, &st, why, sizeof why);
        if (st != EMBER_OK)
            fail_msg("job %d of the second client: %s", round, why);
        assert_string_equal(t, "[101] [202] [303]");
        free(t);
        if (round == 0 && ember_broadcast_unpersist(b, &err) != EMBER_OK)
            fail_msg("unpersist: %s", err.msg);
    }
    assert_int_equal(ember_broadcast_destroy(b, &err), EMBER_OK);
    assert_null(bcast_job(s, b, &st, why, sizeof why));
    assert_int_not_equal(st, EMBER_OK);
    assert_contains(why, "Attempted to use broadcast 1 after it was "
                         "destroyed");
    const uint8_t *d;
    size_t len;
    assert_int_equal(ember_broadcast_value(b, &d, &len, &err), EMBER_EINVAL);
    /* the other application's broadcast 1 lives on */
    char *t = bcast_job(s2, b2, &st, why, sizeof why);
    if (st != EMBER_OK)
        fail_msg("second client after the first destroyed: %s", why);
    assert_string_equal(t, "[101] [202] [303]");
    free(t);
    ember_session_close(s);
    ember_session_close(s2);
}

static void shipped_plugin_runs_on_the_service(void **state)
{
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/plugins", g_svc.state);
    ember_session *s = open_on(g_svc.master, TESTFN_PLUGIN);
    ember_error err = {0};
    static const int64_t v[] = {1, 2, 3};
    ember_rdd *two = ember_flat_map(ints(s, v, 3, 2), fn0("testfn.two_per"),
                                    &err);
    assert_non_null(two);
    ember_records out = {0};
    if (ember_collect(two, &out, &err) != EMBER_OK)
        fail_msg("collect: %s", err.msg);
    char *text = render(&out);
    assert_string_equal(text, "[1] [1] [2] [2] [3] [3]");
    free(text);
    ember_records_free(&out);
    /* a driver-side reduce of the plugin (testfn.product) runs here too */
    ember_records prod = {0};
    if (ember_reduce(ints(s, v, 3, 2), fn0("testfn.product"), &prod, &err) !=
        EMBER_OK)
        fail_msg("reduce: %s", err.msg);
    assert_int_equal(only_int(&prod), 6);
    ember_records_free(&prod);
    ember_session_close(s);
    assert_int_equal(count_so(dir), 1);

    /* A second client with the same file: nothing is shipped again. */
    s = open_on(g_svc.master, TESTFN_PLUGIN);
    ember_session_close(s);
    assert_int_equal(count_so(dir), 1);

    /* Another file under the name testfn is refused, clearly. */
    char other[300];
    snprintf(other, sizeof other, "%s-other.so", g_svc.state);
    FILE *in = fopen(TESTFN_PLUGIN, "rb"), *out_f = fopen(other, "wb");
    assert_non_null(in);
    assert_non_null(out_f);
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out_f);
    fputs("trailing bytes change the digest", out_f);
    fclose(in);
    fclose(out_f);
    const char *plugins[] = {other, NULL};
    ember_session_opts o = {.master = g_svc.master, .plugins = plugins};
    assert_int_not_equal(ember_session_open(&s, &o, &err), EMBER_OK);
    assert_null(s);
    assert_contains(err.msg, "plugin 'testfn' is already loaded on emberd");
    assert_contains(err.msg, "other contents");
    unlink(other);
    assert_int_equal(count_so(dir), 1);
}

static void unreachable_service(void **state)
{
    (void)state;
    ember_session *s = NULL;
    ember_error err = {0};
    ember_session_opts o = {.master = "ember://127.0.0.1:1"};
    assert_int_equal(ember_session_open(&s, &o, &err), EMBER_ETIMEDOUT);
    assert_contains(err.msg,
                    "cannot connect to emberd at ember://127.0.0.1:1");
    o.master = "ember://nohost";
    assert_int_equal(ember_session_open(&s, &o, &err), EMBER_EINVAL);
    assert_contains(err.msg, "expected ember://HOST:PORT");
}

/* ------------------------------------------------------- hostile client */

static void send_raw(em_link *l, const void *d, size_t n)
{
    assert_int_equal(em_link_send(l, d, n), EMBER_OK);
}

/* Reply i must be an ERROR for request req whose message holds text. */
static void expect_error(inbox *b, size_t i, uint64_t req, const char *text)
{
    em_cmsg m;
    inbox_get(b, i, &m);
    if (m.type != EM_CMSG_ERROR)
        fail_msg("reply %zu: %s, not ERROR (expected '%s')", i,
                 em_cmsg_type_name(m.type), text);
    assert_int_equal(m.req_id, req);
    char h[1024];
    assert_contains(header_text(&m, h, sizeof h), text);
}

static void hostile_messages_get_errors(void **state)
{
    (void)state;
    inbox b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    em_link *l = inbox_dial(&b, g_svc.url);
    /* a well-behaved client at the same time */
    worker g = {.base = 0, .step = 100, .rounds = 5};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, worker_thread, &g), 0);

    size_t i = 0;
    /* not an envelope at all */
    send_raw(l, "garbage!", 8);
    expect_error(&b, i++, 0, "not an ember client message");
    /* an unknown type */
    static const uint8_t unknown[] = {'E', 'M', 'C', 'L', 1, 99, 5, 0, 0};
    send_raw(l, unknown, sizeof unknown);
    expect_error(&b, i++, 0, "unknown client message type 99");
    /* a body that claims a gigabyte and holds 3 bytes */
    static const uint8_t huge[] = {'E',  'M',  'C',  'L',  1,   10,
                                   7,    0,    0x80, 0x80, 0x80, 0x80,
                                   0x04, 'a',  'b',  'c'};
    send_raw(l, huge, sizeof huge);
    expect_error(&b, i++, 0, "'body' length 1073741824 runs past the end");
    /* a version from the future */
    static const uint8_t future[] = {'E', 'M', 'C', 'L', 9, 1, 5, 0, 0};
    send_raw(l, future, sizeof future);
    expect_error(&b, i++, 0, "version 9");
    /* a header that is not JSON, or not an object */
    send_msg(l, EM_CMSG_HELLO, 10, "{\"app\": ", NULL, 0);
    expect_error(&b, i++, 10, "the header is not JSON");
    send_msg(l, EM_CMSG_HELLO, 11, "[1,2,3]", NULL, 0);
    expect_error(&b, i++, 11, "not a JSON object");
    /* a message only the service sends */
    send_msg(l, EM_CMSG_WELCOME, 12, "{}", NULL, 0);
    expect_error(&b, i++, 12, "WELCOME is not a request");
    /* wrong types and missing fields */
    send_msg(l, EM_CMSG_HELLO, 13, "{\"app\":5,\"version\":\"1\"}", NULL, 0);
    expect_error(&b, i++, 13, "'app' must be a string");
    send_msg(l, EM_CMSG_HELLO, 14, "{\"app\":\"x\"}", NULL, 0);
    expect_error(&b, i++, 14, "'version' is missing");
    /* SUBMIT before HELLO */
    send_msg(l, EM_CMSG_SUBMIT, 15, "{}", "{}", 2);
    expect_error(&b, i++, 15, "send HELLO first");
    send_msg(l, EM_CMSG_HELLO, 16, "{\"app\":\"hostile\",\"version\":\"0\"}",
             NULL, 0);
    em_cmsg m;
    inbox_get(&b, i++, &m);
    assert_int_equal(m.type, EM_CMSG_WELCOME);
    assert_int_equal(m.req_id, 16);
    send_msg(l, EM_CMSG_HELLO, 17, "{\"app\":\"again\",\"version\":\"0\"}",
             NULL, 0);
    expect_error(&b, i++, 17, "already application");
    /* a corrupt plan, a plan missing its dataset, bad partitions */
    static const char sub[] =
        "{\"dataset\":0,\"partitions\":null,\"pool\":null,\"group\":null,"
        "\"description\":null,\"action\":{\"kind\":\"count\"}}";
    static const char bad_plan[] =
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"no_such_op\","
        "\"partitions\":1}]}";
    send_msg(l, EM_CMSG_SUBMIT, 18, sub, bad_plan, sizeof bad_plan - 1);
    expect_error(&b, i++, 18, "no_such_op");
    send_msg(l, EM_CMSG_SUBMIT, 19, sub, "\x01\x02\xff", 3);
    expect_error(&b, i++, 19, "plan");
    static const char plan[] =
        "{\"ember_plan\":1,\"datasets\":[{\"id\":3,\"op\":\"range\","
        "\"partitions\":2,\"args\":{\"start\":0,\"end\":10,\"step\":1}}]}";
    send_msg(l, EM_CMSG_SUBMIT, 20, sub, plan, sizeof plan - 1);
    expect_error(&b, i++, 20, "dataset 0 is not in the plan");
    send_msg(l, EM_CMSG_SUBMIT, 21,
             "{\"dataset\":3,\"partitions\":\"all\",\"pool\":null,"
             "\"group\":null,\"description\":null,\"action\":null}",
             plan, sizeof plan - 1);
    expect_error(&b, i++, 21, "'partitions' must be");
    send_msg(l, EM_CMSG_SUBMIT, 22,
             "{\"dataset\":3,\"partitions\":[0,-1],\"pool\":null,"
             "\"group\":null,\"description\":null,\"action\":null}",
             plan, sizeof plan - 1);
    expect_error(&b, i++, 22, "partitions[1]");
    send_msg(l, EM_CMSG_SUBMIT, 23,
             "{\"dataset\":3,\"partitions\":null,\"pool\":7,"
             "\"group\":null,\"description\":null,\"action\":[]}",
             plan, sizeof plan - 1);
    expect_error(&b, i++, 23, "'pool' must be a string");
    /* unknown job ids, an unknown source, a plugin that is not one */
    send_msg(l, EM_CMSG_CANCEL, 24, "{\"job_id\":987654}", NULL, 0);
    expect_error(&b, i++, 24, "no job 987654");
    send_msg(l, EM_CMSG_STATUS, 25, "{\"job_id\":-4}", NULL, 0);
    expect_error(&b, i++, 25, "'job_id' must be an integer");
    send_msg(l, EM_CMSG_SPLITS, 26,
             "{\"source\":\"nope.lines\",\"min_partitions\":2}", NULL, 0);
    expect_error(&b, i++, 26, "no source 'nope.lines'");
    send_msg(l, EM_CMSG_SPLITS, 40,
             "{\"source\":\"text.lines\",\"min_partitions\":2}", "\xff\x01",
             2);
    expect_error(&b, i++, 40, "text");
    send_msg(l, EM_CMSG_SPLITS, 41,
             "{\"source\":\"text.lines\",\"min_partitions\":0}", NULL, 0);
    expect_error(&b, i++, 41, "'min_partitions' must be an integer");
    send_msg(l, EM_CMSG_PLUGIN_PUT, 27,
             "{\"name\":\"evil\",\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb"
             "92427ae41e4649b934ca495991b7852b855\"}",
             "not empty", 9);
    expect_error(&b, i++, 27, "the body's sha256 is");
    /* sha256 of "not a plugin" */
    send_msg(l, EM_CMSG_PLUGIN_PUT, 28,
             "{\"name\":\"evil\",\"sha256\":\"c6c74590250e3d5d3e3ea67cd2074"
             "d7e4689b25a30b8dd137999c3ed6e00858e\"}",
             "not a plugin", 12);
    em_cmsg last;
    inbox_get(&b, i++, &last);
    assert_int_equal(last.type, EM_CMSG_ERROR);
    assert_int_equal(last.req_id, 28);
    /* a good request on the same connection still works */
    static const char good[] =
        "{\"dataset\":3,\"partitions\":[1],\"pool\":\"hostile\","
        "\"group\":null,\"description\":\"one partition\","
        "\"action\":{\"kind\":\"count\"}}";
    send_msg(l, EM_CMSG_SUBMIT, 29, good, plan, sizeof plan - 1);
    inbox_get(&b, i++, &m);
    assert_int_equal(m.type, EM_CMSG_JOB);
    assert_int_equal(m.req_id, 29);
    inbox_get(&b, i++, &m);
    assert_int_equal(m.type, EM_CMSG_RESULT);
    assert_int_equal(m.req_id, 29);
    assert_contains((const char *)m.header.data, "\"partition\":1");
    inbox_get(&b, i++, &m);
    assert_int_equal(m.type, EM_CMSG_END);
    assert_contains((const char *)m.header.data, "\"status\":0");

    pthread_join(t, NULL);
    if (g.failed)
        fail_msg("the well-behaved client failed: %s", g.why);
    em_link_close(l);
    inbox_free(&b);
    assert_true(svc_alive(&g_svc));
    char dir[300];
    snprintf(dir, sizeof dir, "%s/plugins", g_svc.state);
    /* the refused "plugin" was not kept */
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        assert_null(strstr(e->d_name, "c6c74590"));
    if (d)
        closedir(d);
}

/* ----------------------------------------------------------------- CLI */

typedef struct run {
    int status;
    char out[16384];
    char err[4096];
} run;

/* Reads fd until EOF into buf (cap bytes, NUL-terminated). */
static void slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t got;
    while ((got = read(fd, buf + n, cap - 1 - n)) > 0 && n + 1 < cap)
        n += (size_t)got;
    buf[n] = '\0';
}

/* Starts program bin with argv, stdout and stderr to files; returns
 * its pid. */
static pid_t prog_start(const char *bin, const char *out, const char *errf,
                        const char *const *argv)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Starts `ember argv...` with stdout and stderr to files; returns pid. */
static pid_t ember_start(const char *out, const char *errf,
                         const char *const *argv)
{
    return prog_start(EMBER_BIN, out, errf, argv);
}

static void ember_wait(pid_t pid, const char *out, const char *errf, run *r)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    int fd = open(out, O_RDONLY);
    slurp(fd, r->out, sizeof r->out);
    close(fd);
    fd = open(errf, O_RDONLY);
    slurp(fd, r->err, sizeof r->err);
    close(fd);
}

/* Runs program bin with argv to its end. */
static void prog_run(const char *bin, run *r, const char *const *argv)
{
    char out[128], errf[128];
    snprintf(out, sizeof out, "/tmp/ember-svc-cli-%ld.out", (long)getpid());
    snprintf(errf, sizeof errf, "/tmp/ember-svc-cli-%ld.err",
             (long)getpid());
    ember_wait(prog_start(bin, out, errf, argv), out, errf, r);
    unlink(out);
    unlink(errf);
}

static void ember_cli(run *r, const char *const *argv)
{
    prog_run(EMBER_BIN, r, argv);
}

/* Writes a plan file: n partitions of range, each sleeping ms per batch
 * in testfn.sleep_ms, then counted. */
static void long_plan(const char *path, int n, int ms)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"ember_plan\": 1, \"plugins\": [\"%s\"],\n"
            " \"datasets\": [\n"
            "  {\"id\": 0, \"op\": \"range\", \"partitions\": %d, "
            "\"args\": {\"start\": 0, \"end\": %d, \"step\": 1}},\n"
            "  {\"id\": 1, \"op\": \"map\", \"parents\": [0], \"fns\": "
            "[{\"name\": \"testfn.sleep_ms\", \"value\": %d}]}],\n"
            " \"actions\": [{\"action\": \"count\", \"dataset\": 1}]}\n",
            TESTFN_PLUGIN, n, n, ms);
    fclose(f);
}

/* The id of a running job of the service, polling `ember list
 * --running` (bounded: fails after ~60 s). */
static long running_job(const char *master)
{
    const char *argv[] = {"ember", "list", "--master", master, "--running",
                          NULL};
    for (int tries = 0; tries < 600; tries++) {
        run r;
        ember_cli(&r, argv);
        assert_int_equal(r.status, 0);
        const char *p = strstr(r.out, "\"job_id\":");
        if (p)
            return strtol(p + 9, NULL, 10);
        sleep_ms(100);
    }
    fail_msg("no job ever ran");
    return -1;
}

static void cli_submit_status_list_kill(void **state)
{
    (void)state;
    const char *m = g_svc.master;
    char plan[300];
    snprintf(plan, sizeof plan, "%s-count.json", g_svc.state);
    FILE *f = fopen(plan, "w");
    assert_non_null(f);
    fputs("{\"ember_plan\": 1, \"datasets\": [{\"id\": 0, \"op\": \"range\","
          " \"partitions\": 3, \"args\": {\"start\": 0, \"end\": 1000, "
          "\"step\": 1}}],\n"
          " \"actions\": [{\"action\": \"count\", \"dataset\": 0}]}\n",
          f);
    fclose(f);
    run r;
    const char *submit[] = {"ember", "submit", "--master", m, "--pool",
                            "analytics", plan, NULL};
    ember_cli(&r, submit);
    if (r.status != 0)
        fail_msg("submit: %d: %s", r.status, r.err);
    assert_string_equal(r.out, "1000\n");
    /* `ember run` against the service works the same */
    const char *runv[] = {"ember", "run", "--master", m, plan, NULL};
    ember_cli(&r, runv);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "1000\n");

    /* list shows the submitted job in its pool; status shows its stages */
    const char *list[] = {"ember", "list", "--master", m, NULL};
    ember_cli(&r, list);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "\"pool\":\"analytics\"");
    const char *p = strstr(r.out, "\"pool\":\"analytics\"");
    while (p > r.out && p[-1] != '\n')
        p--;
    long id = strtol(strstr(p, "\"job_id\":") + 9, NULL, 10);
    char idtext[32];
    snprintf(idtext, sizeof idtext, "job-%ld", id);
    const char *status[] = {"ember", "status", "--master", m, idtext, NULL};
    ember_cli(&r, status);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "\"status\":\"SUCCEEDED\"");
    assert_contains(r.out, "\"stages\":[{");
    assert_contains(r.out, "\"success\":3");
    assert_contains(r.out, "\"total\":3");
    assert_contains(r.out, "\"accumulators\":[]");

    /* a job's status shows its application's named accumulators */
    char accp[300];
    snprintf(accp, sizeof accp, "%s-accum.json", g_svc.state);
    f = fopen(accp, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"ember_plan\": 1, \"plugins\": [\"%s\"],"
            " \"accumulators\": [{\"id\": 7, \"kind\": \"int64\","
            " \"name\": \"records seen\"}],"
            " \"datasets\": [{\"id\": 0, \"op\": \"range\","
            " \"partitions\": 3, \"args\": {\"start\": 0, \"end\": 30}}],"
            " \"actions\": [{\"action\": \"foreach\", \"dataset\": 0,"
            " \"fn\": {\"name\": \"testfn.accum_add\","
            " \"value\": [7, \"one\"]}}]}\n",
            TESTFN_PLUGIN);
    fclose(f);
    const char *asub[] = {"ember", "submit", "--master", m, accp, NULL};
    ember_cli(&r, asub);
    if (r.status != 0)
        fail_msg("submit: %d: %s", r.status, r.err);
    assert_contains(r.err, "accumulator records seen = 30");
    ember_cli(&r, list);
    assert_int_equal(r.status, 0);
    const char *last = strstr(r.out, "\"job_id\":"), *q = last;
    while (q && (q = strstr(q + 1, "\"job_id\":")) != NULL)
        last = q;
    assert_non_null(last);
    snprintf(idtext, sizeof idtext, "job-%ld", strtol(last + 9, NULL, 10));
    ember_cli(&r, status);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "\"accumulators\":[{\"id\":7,\"name\":"
                           "\"records seen\",\"kind\":\"int64\","
                           "\"value\":\"30\"}]");

    /* a long job, killed from another process */
    char longp[300], out[300], errf[300];
    snprintf(longp, sizeof longp, "%s-long.json", g_svc.state);
    snprintf(out, sizeof out, "%s-long.out", g_svc.state);
    snprintf(errf, sizeof errf, "%s-long.err", g_svc.state);
    long_plan(longp, 200, 300);
    const char *lsub[] = {"ember", "submit", "--master", m, longp, NULL};
    pid_t pid = ember_start(out, errf, lsub);
    long job = running_job(m);
    snprintf(idtext, sizeof idtext, "%ld", job);
    const char *killv[] = {"ember", "kill", "--master", m, idtext, NULL};
    ember_cli(&r, killv);
    if (r.status != 0)
        fail_msg("kill: %s", r.err);
    assert_contains(r.out, "cancelled");
    run sub;
    ember_wait(pid, out, errf, &sub);
    assert_int_equal(sub.status, 1);
    assert_contains(sub.err, "cancel");
    const char *st2[] = {"ember", "status", "--master", m, idtext, NULL};
    ember_cli(&r, st2);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "\"status\":\"CANCELLED\"");
    /* killing it again, or a job that never was, is an error */
    ember_cli(&r, killv);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "is not running (CANCELLED)");
    const char *nojob[] = {"ember", "status", "--master", m, "424242", NULL};
    ember_cli(&r, nojob);
    assert_int_equal(r.status, 1);
    assert_contains(r.err, "no job 424242");
    /* usage errors */
    const char *nomaster[] = {"ember", "list", "--master", "local[2]", NULL};
    ember_cli(&r, nomaster);
    assert_int_equal(r.status, 2);
    assert_contains(r.err, "expected ember://HOST:PORT");
    const char *badid[] = {"ember", "kill", "--master", m, "x7", NULL};
    ember_cli(&r, badid);
    assert_int_equal(r.status, 2);
    unlink(plan);
    unlink(longp);
    unlink(out);
    unlink(errf);
}

/* ------------------------------------------------------------- limits */

/* A driver that freezes (SIGSTOP) while its job runs: emberd, with
 * ember.network.timeout=1s, hears nothing from it for a second, drops the
 * client and closes its application, which cancels the job. */
static void frozen_driver_is_dropped(void **state)
{
    (void)state;
    svc s;
    const char *extra[] = {"--conf", "ember.network.timeout=1s", NULL};
    svc_start_with(&s, NULL, "local[1]", extra);
    char plan[300], out[320], errf[320];
    snprintf(plan, sizeof plan, "%s-frozen.json", s.state);
    snprintf(out, sizeof out, "%s-frozen.out", s.state);
    snprintf(errf, sizeof errf, "%s-frozen.err", s.state);
    long_plan(plan, 4, 2000);
    const char *argv[] = {"ember", "run", "--master", s.master, plan, NULL};
    pid_t driver = ember_start(out, errf, argv);
    child_track(driver, 1);
    long id = running_job(s.master);
    assert_int_equal(kill(driver, SIGSTOP), 0);
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%ld", id);
    const char *st[] = {"ember", "status", "--master", s.master, idtext,
                        NULL};
    int ended = 0;
    for (int tries = 0; tries < 150 && !ended; tries++) {
        run r;
        ember_cli(&r, st);
        assert_int_equal(r.status, 0);
        ended = strstr(r.out, "\"status\":\"CANCELLED\"") != NULL;
        if (!ended)
            sleep_ms(100);
    }
    kill(driver, SIGKILL);
    while (waitpid(driver, NULL, 0) < 0 && errno == EINTR)
        ;
    child_track(driver, 0);
    unlink(plan);
    unlink(out);
    unlink(errf);
    assert_int_equal(svc_stop(&s, SIGTERM), 0);
    if (!ended)
        fail_msg("the frozen driver's job was never cancelled");
}

/* An emberd that freezes (SIGSTOP) under a driver: the driver, with
 * ember.network.timeout=2s, hears no answer to its keepalive and its action
 * fails with a message naming the service and the timeout, instead of
 * hanging; the session then refuses further work with the same reason. */
static void frozen_service_fails_the_driver(void **state)
{
    (void)state;
    svc s;
    svc_start(&s, NULL, "local[1]");
    const char *const conf[] = {"ember.network.timeout=2s", NULL};
    ember_session *ses = session_open(s.master, NULL, conf, NULL);
    ember_error err = {0};
    ember_rdd *r = ember_range(ses, 0, 1000, 1, 2, &err);
    if (!r)
        fail_msg("range: %s", err.msg);
    uint64_t n = 0;
    if (ember_count(r, &n, &err) != EMBER_OK)
        fail_msg("count before the freeze: %s", err.msg);
    assert_int_equal(n, 1000);
    assert_int_equal(kill(s.pid, SIGSTOP), 0);
    ember_status st = ember_count(r, &n, &err);
    assert_int_not_equal(st, EMBER_OK);
    assert_contains(err.msg, "emberd at ");
    assert_contains(err.msg, "did not answer within 2s");
    assert_int_not_equal(ember_count(r, &n, &err), EMBER_OK);
    assert_contains(err.msg, "did not answer");
    ember_session_close(ses);
    assert_int_equal(kill(s.pid, SIGCONT), 0);
    assert_int_equal(svc_stop(&s, SIGTERM), 0);
    rmtree(s.state);
}

/* A text input that expands to more splits than --max-splits allows is
 * refused with a message naming the limit; a smaller one is planned. */
static void splits_over_the_limit(void **state)
{
    (void)state;
    svc s;
    const char *extra[] = {"--max-splits", "5", NULL};
    svc_start_with(&s, NULL, "local[2]", extra);
    char dir[300], path[400], glob[400];
    snprintf(dir, sizeof dir, "%s-files", s.state);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int i = 0; i < 12; i++) {
        snprintf(path, sizeof path, "%s/part-%02d.txt", dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "line %d\n", i);
        fclose(f);
    }
    ember_session *ses = open_on(s.master, NULL);
    ember_error err = {0};
    snprintf(glob, sizeof glob, "%s/part-*.txt", dir);
    assert_null(ember_text_file(ses, glob, 1, &err));
    assert_int_equal(err.code, EMBER_ENOSPC);
    assert_contains(err.msg, "more than 5 splits");
    assert_contains(err.msg, "--max-splits");
    /* min_partitions can expand one file past the limit too */
    snprintf(path, sizeof path, "%s/part-00.txt", dir);
    assert_null(ember_text_file(ses, path, 7, &err));
    assert_contains(err.msg, "more than 5 splits");
    /* within the limit, on the same connection */
    snprintf(glob, sizeof glob, "%s/part-0[0-3].txt", dir);
    ember_rdd *r = ember_text_file(ses, glob, 1, &err);
    if (!r)
        fail_msg("text_file %s: %s", glob, err.msg);
    uint64_t n = 0;
    if (ember_count(r, &n, &err) != EMBER_OK)
        fail_msg("count: %s", err.msg);
    assert_int_equal(n, 4);
    ember_session_close(ses);
    assert_int_equal(svc_stop(&s, SIGTERM), 0);
    rmtree(dir);
    rmtree(s.state);

    /* the limits' values are checked */
    run r2;
    const char *bad_splits[] = {"emberd", "--listen", "tcp://127.0.0.1:0",
                                "--state", "/nonexistent/x",
                                "--max-splits", "0", NULL};
    prog_run(EMBERD_BIN, &r2, bad_splits);
    assert_int_equal(r2.status, 2);
    assert_contains(r2.err, "--max-splits '0' is not a positive integer");
    const char *bad_queue[] = {"emberd", "--listen", "tcp://127.0.0.1:0",
                               "--state", "/nonexistent/x",
                               "--max-client-queue", "lots", NULL};
    prog_run(EMBERD_BIN, &r2, bad_queue);
    assert_int_equal(r2.status, 2);
    assert_contains(r2.err, "--max-client-queue 'lots' is not a size");
}

/* ------------------------------------------------------------- restart */

typedef struct long_job {
    const char *master;
    ember_status st;
    char msg[512];
} long_job;

/* Runs a long job through the C API (with testfn shipped). */
static void *long_job_thread(void *arg)
{
    long_job *j = arg;
    ember_error err = {0};
    ember_session *s = NULL;
    const char *plugins[] = {TESTFN_PLUGIN, NULL};
    ember_session_opts o = {.master = j->master, .plugins = plugins};
    if ((j->st = ember_session_open(&s, &o, &err)) != EMBER_OK) {
        snprintf(j->msg, sizeof j->msg, "%s", err.msg);
        return NULL;
    }
    uint8_t arg_rec[16];
    ember_buf ab = ember_buf_fixed(arg_rec, sizeof arg_rec);
    ember_rec_put_int(&ab, 300);
    ember_rdd *r = ember_map(ember_range(s, 0, 200, 1, 200, &err),
                             (ember_fn){"testfn.sleep_ms", ab.data, ab.len},
                             &err);
    uint64_t n = 0;
    j->st = r ? ember_count(r, &n, &err) : EMBER_EINVAL;
    snprintf(j->msg, sizeof j->msg, "%s", err.msg);
    ember_session_close(s);
    return NULL;
}

/* Starts a long job on svc and waits until it runs; returns its id. */
static long start_long_job(svc *s, long_job *j, pthread_t *t)
{
    *j = (long_job){.master = s->master};
    assert_int_equal(pthread_create(t, NULL, long_job_thread, j), 0);
    for (int tries = 0; tries < 600; tries++) {
        char *json = NULL;
        ember_error err = {0};
        if (ember_service_list(s->master, 1, &json, &err) == EMBER_OK &&
            strstr(json, "\"job_id\":")) {
            long id = strtol(strstr(json, "\"job_id\":") + 9, NULL, 10);
            free(json);
            return id;
        }
        free(json);
        sleep_ms(100);
    }
    fail_msg("the long job never ran");
    return -1;
}

static void job_status(const char *master, long id, char *out, size_t cap)
{
    char *json = NULL;
    ember_error err = {0};
    if (ember_service_status(master, (uint64_t)id, &json, &err) != EMBER_OK)
        fail_msg("status %ld: %s", id, err.msg);
    snprintf(out, cap, "%s", json);
    free(json);
}

static void restart_finds_old_jobs(void **state)
{
    (void)state;
    svc s;
    long_job j;
    pthread_t t;
    char text[4096];
    svc_start(&s, NULL, "local[2]");
    char dir[256];
    snprintf(dir, sizeof dir, "%s", s.state);

    /* SIGTERM while a job runs: a clean stop cancels it, its driver hears
     * so, and the restarted service lists it as cancelled */
    long id1 = start_long_job(&s, &j, &t);
    assert_int_equal(svc_stop(&s, SIGTERM), 0);
    pthread_join(t, NULL);
    assert_int_not_equal(j.st, EMBER_OK);
    svc_start(&s, dir, "local[2]");
    job_status(s.master, id1, text, sizeof text);
    assert_contains(text, "\"status\":\"CANCELLED\"");
    assert_contains(text, "emberd is stopping");

    /* SIGKILL while a job runs: the driver sees the service go away, and
     * the restarted service finds the job INTERRUPTED */
    long id2 = start_long_job(&s, &j, &t);
    assert_true(id2 > id1);
    assert_int_equal(svc_stop(&s, SIGKILL), 128 + SIGKILL);
    pthread_join(t, NULL);
    assert_int_equal(j.st, EMBER_EIO);
    assert_contains(j.msg, "lost the connection to emberd at ");
    svc_start(&s, dir, "local[2]");
    job_status(s.master, id2, text, sizeof text);
    assert_contains(text, "\"status\":\"INTERRUPTED\"");
    const char *list[] = {"ember", "list", "--master", s.master, NULL};
    run r;
    ember_cli(&r, list);
    assert_int_equal(r.status, 0);
    assert_contains(r.out, "INTERRUPTED");
    assert_contains(r.out, "CANCELLED");
    /* new jobs continue after the old ids */
    ember_session *ses = open_on(s.master, NULL);
    char why[1024] = "";
    if (run_actions(ses, 1, why, sizeof why))
        fail_msg("%s", why);
    ember_session_close(ses);
    assert_int_equal(svc_stop(&s, SIGTERM), 0);
    rmtree(dir);
}

int main(void)
{
    /* a pipe command or a client that went away must not kill the test */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(actions_through_emberd),
        cmocka_unit_test(wordcount_through_emberd),
        cmocka_unit_test(wordcount_through_emberd_local_cluster),
        cmocka_unit_test(three_clients_at_once),
        cmocka_unit_test(shipped_plugin_runs_on_the_service),
        cmocka_unit_test(persist_and_unpersist_on_the_service),
        cmocka_unit_test(broadcast_through_emberd),
        cmocka_unit_test(accumulators_through_emberd),
        cmocka_unit_test(hostile_messages_get_errors),
        cmocka_unit_test(cli_submit_status_list_kill),
        cmocka_unit_test(restart_finds_old_jobs),
        cmocka_unit_test(splits_over_the_limit),
        cmocka_unit_test(frozen_driver_is_dropped),
        cmocka_unit_test(frozen_service_fails_the_driver),
        cmocka_unit_test(unreachable_service),
    };
    return cmocka_run_group_tests(tests, setup_text, teardown_text);
}
