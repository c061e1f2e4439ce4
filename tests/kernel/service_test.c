/*
 * The kernel as a service: its loop on its own thread while other threads
 * submit jobs and executors answer, plans checked against loaded plugins,
 * and the plugins and pools it records for readers of the state store.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "ember/kernel/host.h"
#include "ember/kernel/kernel.h"
#include "msg/msg.h"
#include "plans.h"
#include "state/store.h"

/* Checks on the kernel's thread, where cmocka's assertions must not run:
 * a failure aborts the test program with the condition. */
#define CHECK(x)                                                          \
    do {                                                                  \
        if (!(x)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #x);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

typedef struct service {
    char dir[64], db[96];
    em_kernel *k;
    pthread_t loop;
    uint64_t app;
} service;

static void *run_loop(void *arg)
{
    service *s = arg;
    em_kernel_run(s->k, EM_KERNEL_RUN_DEFAULT);
    return NULL;
}

static void service_start(service *s, const em_registry *reg)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/ember-service-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->db, sizeof s->db, "%s/ember.db", s->dir);
    em_kernel_opts opts = {.state_path = s->db, .registry = reg};
    ember_error err = {0};
    if (em_kernel_create(&s->k, &opts, &err) != EMBER_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(em_kernel_app_open(s->k, "svc", &s->app, &err),
                     EMBER_OK);
    assert_int_equal(pthread_create(&s->loop, NULL, run_loop, s), 0);
}

static int64_t count_rows(const char *db, const char *sql)
{
    em_store *ro = NULL;
    ember_error err = {0};
    int64_t n = -1;
    if (em_store_open_readonly(&ro, db, &err) != EMBER_OK ||
        em_store_query_int(ro, sql, &n, &err) != EMBER_OK)
        fail_msg("%s", err.msg);
    em_store_close(ro);
    return n;
}

static void service_stop(service *s)
{
    em_kernel_stop(s->k);
    assert_int_equal(pthread_join(s->loop, NULL), 0);
    /* A stopped kernel has committed everything it did. */
    assert_int_equal(count_rows(s->db, "SELECT COUNT(*) FROM applications"),
                     1);
    em_kernel_destroy(s->k);
    (void)em_store_remove_files(s->db, NULL);
    rmdir(s->dir);
}

/* An executor that finishes every task the moment it arrives (on the
 * loop thread, answering through the thread-safe conn_recv). */
typedef struct instant_exec {
    em_kernel *k;
    uint64_t conn;
    uint64_t stage[1024];   /* stage ids seen in STAGE messages */
    uint32_t nreduce[1024]; /* 0 for result stages */
    int nstages;
} instant_exec;

/* Remembers from a STAGE message whether its tasks write a shuffle. */
static void learn(instant_exec *e, const uint8_t *msg, size_t len)
{
    em_msg_stage m;
    CHECK(em_msg_decode_stage(msg, len, &m, NULL) == EMBER_OK);
    if (m.plan.len == 0)
        return; /* the stage attempt is over */
    json_t *doc = json_loadb((const char *)m.plan.data, m.plan.len, 0, NULL);
    CHECK(doc != NULL);
    json_t *sh = json_object_get(doc, "shuffle");
    CHECK(e->nstages < 1024);
    e->stage[e->nstages] = m.stage_id;
    e->nreduce[e->nstages++] =
        sh ? (uint32_t)json_integer_value(json_object_get(sh, "partitions"))
           : 0;
    json_decref(doc);
}

static void instant_send(void *ctx, const uint8_t *msg, size_t len)
{
    instant_exec *e = ctx;
    em_msg_type type;
    em_msg_cursor c;
    em_msg_task t;
    if (em_msg_type_of(msg, len, &type, NULL) != EMBER_OK)
        return;
    if (type == EM_MSG_STAGE) {
        learn(e, msg, len);
        return;
    }
    if (type != EM_MSG_LAUNCH ||
        em_msg_launch_open(msg, len, &c, NULL) != EMBER_OK)
        return;
    ember_buf b = ember_buf_heap(), status = ember_buf_heap();
    em_msg_batch batch;
    CHECK(em_msg_status_begin(&batch, &b) == EMBER_OK);
    static const uint64_t sizes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    while (em_msg_launch_next(&c, &t) == EMBER_OK) {
        uint32_t nreduce = 0;
        for (int i = 0; i < e->nstages; i++)
            if (e->stage[i] == t.stage_id)
                nreduce = e->nreduce[i];
        em_msg_update u = {.task_id = t.task_id, .state = EM_TASK_FINISHED,
                           .result = {(const uint8_t *)"r", 1}};
        if (nreduce) {
            status.len = 0;
            CHECK(nreduce <= 8);
            CHECK(em_map_status_encode(&status, sizes, nreduce) == EMBER_OK);
            u.result = (em_bytes){status.data, status.len};
        }
        CHECK(em_msg_status_add(&batch, &u) == EMBER_OK);
    }
    ember_buf_release(&status);
    CHECK(em_msg_batch_finish(&batch) == EMBER_OK);
    CHECK(em_kernel_conn_recv(e->k, e->conn, b.data, b.len) == EMBER_OK);
    ember_buf_release(&b);
}

static void instant_exec_start(service *s, instant_exec *e, const char *id,
                               uint32_t slots)
{
    memset(e, 0, sizeof *e);
    e->k = s->k;
    assert_int_equal(em_kernel_conn_open(s->k, instant_send, NULL, e, &e->conn),
                     EMBER_OK);
    em_msg_register reg = {
        .executor_id = {(const uint8_t *)id, strlen(id)},
        .host = {(const uint8_t *)"localhost", 9},
        .endpoint = {(const uint8_t *)"inproc://x", 10},
        .slots = slots};
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_msg_encode_register(&b, &reg), EMBER_OK);
    assert_int_equal(em_kernel_conn_recv(s->k, e->conn, b.data, b.len),
                     EMBER_OK);
    ember_buf_release(&b);
}

typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ended, ok, results;
} tally;

static void t_result(void *ctx, uint64_t job, uint32_t p, const uint8_t *d,
                     size_t n)
{
    (void)job;
    (void)p;
    (void)d;
    (void)n;
    tally *t = ctx;
    pthread_mutex_lock(&t->mu);
    t->results++;
    pthread_mutex_unlock(&t->mu);
}

static void t_end(void *ctx, uint64_t job, ember_status st, const char *m)
{
    (void)job;
    (void)m;
    tally *t = ctx;
    pthread_mutex_lock(&t->mu);
    t->ended++;
    t->ok += st == EMBER_OK;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

typedef struct submitter {
    service *s;
    tally *t;
    int jobs;
} submitter;

static void *submit_many(void *arg)
{
    submitter *sb = arg;
    for (int i = 0; i < sb->jobs; i++) {
        em_job_spec spec = {.app_id = sb->s->app, .plan = PLAN_CHAIN,
                            .plan_len = strlen(PLAN_CHAIN), .dataset = 4,
                            .listener = {sb->t, t_result, t_end}};
        ember_error err = {0};
        uint64_t id;
        if (em_kernel_submit(sb->s->k, &spec, &id, &err) != EMBER_OK)
            return (void *)1;
    }
    return NULL;
}

static void jobs_from_many_threads_all_finish(void **state)
{
    (void)state;
    service s;
    service_start(&s, NULL);
    instant_exec e[3];
    instant_exec_start(&s, &e[0], "e0", 4);
    instant_exec_start(&s, &e[1], "e1", 2);
    tally t = {.mu = PTHREAD_MUTEX_INITIALIZER,
               .cv = PTHREAD_COND_INITIALIZER};
    submitter sb = {&s, &t, 40};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, submit_many, &sb), 0);
    /* An executor joining while jobs run. */
    instant_exec_start(&s, &e[2], "e2", 3);
    for (int i = 0; i < 3; i++) {
        void *rc;
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_null(rc);
    }
    pthread_mutex_lock(&t.mu);
    while (t.ended < 120)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    assert_int_equal(t.ok, 120);
    assert_int_equal(t.results, 240); /* 2 result partitions per job */
    /* Readers see every end once the kernel's next commit lands (it
     * commits before sleeping, at least every 10 ms while busy). */
    int64_t done = 0;
    for (int tries = 0; tries < 500 && done != 120; tries++) {
        done = count_rows(s.db, "SELECT COUNT(*) FROM jobs WHERE "
                                "status='SUCCEEDED'");
        if (done != 120)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    assert_int_equal(done, 120);
    service_stop(&s);
}

static void plans_resolve_against_loaded_plugins(void **state)
{
    (void)state;
    em_registry *reg = NULL;
    ember_error err = {0};
    assert_int_equal(em_registry_create(&reg, em_host_api()), EMBER_OK);
    if (em_registry_load(reg, PLUGIN_DIR "/std.so", NULL, &err) != EMBER_OK)
        fail_msg("%s", err.msg);
    service s;
    service_start(&s, reg);
    /* std.identity exists; nope.fn does not. */
    em_job_spec spec = {.app_id = s.app, .plan = PLAN_NARROW("2"),
                        .plan_len = strlen(PLAN_NARROW("2")), .dataset = 1};
    uint64_t id;
    assert_int_equal(em_kernel_submit(s.k, &spec, &id, &err), EMBER_OK);
    const char *bad =
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"parallelize\","
        "\"partitions\":1},{\"id\":1,\"op\":\"map\",\"parents\":[0],"
        "\"fns\":[\"nope.fn\"]}]}";
    spec.plan = bad;
    spec.plan_len = strlen(bad);
    assert_int_equal(em_kernel_submit(s.k, &spec, &id, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "unknown function 'nope.fn'"));
    /* The loaded plugins were recorded for readers, while it runs. */
    em_store *ro = NULL;
    int64_t n = 0;
    assert_int_equal(em_store_open_readonly(&ro, s.db, &err), EMBER_OK);
    assert_int_equal(em_store_query_int(ro, "SELECT COUNT(*) FROM plugins "
                                            "WHERE name='std'", &n, &err),
                     EMBER_OK);
    assert_int_equal(n, 1);
    em_store_close(ro);
    service_stop(&s);
    em_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_from_many_threads_all_finish),
        cmocka_unit_test(plans_resolve_against_loaded_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
