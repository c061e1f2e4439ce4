/* tests/kernel/harness.c — see harness.h. */
#include "harness.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ember/kernel/log.h"
#include "state/store.h"

/* ------------------------------------------------ fake cluster manager */

typedef struct fake_cm {
    harness *h;
    const ember_cluster_events *events;
    const char *next_host;
    uint32_t next_slots;
} fake_cm;

static fake_cm the_cm;

static int cm_accepts(const char *url) { return strncmp(url, "fake", 4) == 0; }

static void exec_send(void *ctx, const uint8_t *msg, size_t len);

static ember_status cm_start(const ember_host_api *host, const char *url,
                             const char *endpoint,
                             const ember_cluster_events *events,
                             void **state, ember_error *err)
{
    (void)host;
    (void)url;
    (void)endpoint;
    (void)err;
    the_cm.events = events;
    *state = &the_cm;
    return EMBER_OK;
}

static ember_status cm_request(void *state, uint32_t count, ember_error *err)
{
    fake_cm *cm = state;
    harness *h = cm->h;
    for (uint32_t i = 0; i < count; i++) {
        if (h->nexecs == H_MAX_EXECS)
            return ember_errorf(err, EMBER_ENOSPC, "too many executors");
        h_exec *e = &h->execs[h->nexecs];
        memset(e, 0, sizeof *e);
        e->h = h;
        snprintf(e->id, sizeof e->id, "exec-%d", h->nexecs);
        snprintf(e->host, sizeof e->host, "%s", cm->next_host);
        e->slots = cm->next_slots;
        h->nexecs++;
        cm->events->executor_added(cm->events->ctx, e->id, e->host,
                                   e->slots);
        h_exec_connect(h, e);
    }
    return EMBER_OK;
}

static ember_status cm_kill(void *state, const char *id, ember_error *err)
{
    fake_cm *cm = state;
    (void)err;
    cm->events->executor_lost(cm->events->ctx, id, "killed by the test");
    return EMBER_OK;
}

static void cm_stop(void *state) { (void)state; }

static const ember_cluster_manager_vtable fake_cm_vtable = {
    .accepts = cm_accepts, .start = cm_start,
    .request_executors = cm_request, .kill_executor = cm_kill,
    .stop = cm_stop};

/* ------------------------------------------------------ fake executors */

static void push_running(harness *h, const h_task *t)
{
    if (h->nrunning == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->running = realloc(h->running, h->cap * sizeof *h->running);
        assert_non_null(h->running);
    }
    h->running[h->nrunning++] = *t;
    if (h->nlaunched == h->cap_launched) {
        h->cap_launched = h->cap_launched ? h->cap_launched * 2 : 64;
        h->launched = realloc(h->launched,
                              h->cap_launched * sizeof *h->launched);
        assert_non_null(h->launched);
    }
    h->launched[h->nlaunched++] = t->t;
}

static int stage_slot(harness *h, uint64_t stage_id)
{
    for (int i = 0; i < h->nstages; i++)
        if (h->stage_ids[i] == stage_id)
            return i;
    return -1;
}

static void learn_stage(harness *h, const em_msg_stage *m)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)m->plan.data, m->plan.len, 0,
                             &jerr);
    assert_non_null(doc);
    int slot = stage_slot(h, m->stage_id);
    if (slot < 0) {
        assert_true(h->nstages < 256);
        slot = h->nstages++;
    }
    h->stage_ids[slot] = m->stage_id;
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    assert_non_null(kind);
    h->stage_is_map[slot] = strcmp(kind, "shuffle_map") == 0;
    json_t *sh = json_object_get(doc, "shuffle");
    h->stage_nreduce[slot] =
        sh ? (uint32_t)json_integer_value(json_object_get(sh, "partitions"))
           : 0;
    assert_non_null(json_object_get(doc, "plan"));
    json_t *inputs = json_object_get(doc, "inputs");
    h->stage_ninputs[slot] = 0;
    for (size_t k = 0; k < json_array_size(inputs) && k < H_MAX_INPUTS;
         k++)
        h->stage_inputs[slot][h->stage_ninputs[slot]++] =
            (uint64_t)json_integer_value(
                json_object_get(json_array_get(inputs, k), "shuffle"));
    if (sh) {
        uint64_t id = (uint64_t)json_integer_value(json_object_get(sh, "id"));
        int at = -1;
        for (int k = 0; k < h->nshuffles; k++)
            if (h->shuffle_ids[k] == id)
                at = k;
        if (at < 0 && h->nshuffles < 256)
            at = h->nshuffles++;
        if (at >= 0) {
            h->shuffle_ids[at] = id;
            h->shuffle_maps[at] = (uint32_t)json_integer_value(
                json_object_get(doc, "partitions"));
        }
    }
    json_decref(doc);
}

static void send_updates(harness *h, int exec, const em_msg_update *u,
                         size_t n)
{
    ember_buf b = ember_buf_heap();
    em_msg_batch batch;
    assert_int_equal(em_msg_status_begin(&batch, &b), EMBER_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(em_msg_status_add(&batch, &u[i]), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&batch), EMBER_OK);
    assert_int_equal(em_kernel_conn_recv(h->k, h->execs[exec].conn, b.data,
                                         b.len), EMBER_OK);
    ember_buf_release(&b);
}

static void remove_running(harness *h, size_t i)
{
    memmove(&h->running[i], &h->running[i + 1],
            (h->nrunning - i - 1) * sizeof *h->running);
    h->nrunning--;
}

static void exec_send(void *ctx, const uint8_t *msg, size_t len)
{
    h_exec *e = ctx;
    harness *h = e->h;
    int idx = (int)(e - h->execs);
    em_msg_type type;
    assert_false(e->closed); /* nothing is sent after closed */
    ember_error err;
    assert_int_equal(em_msg_type_of(msg, len, &type, &err), EMBER_OK);
    switch (type) {
    case EM_MSG_REGISTERED: {
        em_msg_registered r;
        assert_int_equal(em_msg_decode_registered(msg, len, &r, &err),
                         EMBER_OK);
        if (r.accepted)
            e->registered = 1;
        else
            e->refused = 1;
        break;
    }
    case EM_MSG_STAGE: {
        em_msg_stage s;
        assert_int_equal(em_msg_decode_stage(msg, len, &s, &err), EMBER_OK);
        if (s.plan.len == 0)
            break; /* the stage attempt is over */
        e->stage_msgs++;
        learn_stage(h, &s);
        break;
    }
    case EM_MSG_LAUNCH: {
        em_msg_cursor c;
        em_msg_task t;
        assert_int_equal(em_msg_launch_open(msg, len, &c, &err), EMBER_OK);
        while (em_msg_launch_next(&c, &t) == EMBER_OK) {
            int slot = stage_slot(h, t.stage_id);
            assert_true(slot >= 0); /* STAGE always comes first */
            h_task ht = {.t = t, .exec = idx,
                         .is_map = h->stage_is_map[slot],
                         .nreduce = h->stage_nreduce[slot]};
            push_running(h, &ht);
        }
        break;
    }
    case EM_MSG_KILL: {
        em_msg_cursor c;
        em_bytes reason;
        uint64_t id;
        e->kill_msgs++;
        assert_int_equal(em_msg_kill_open(msg, len, &reason, &c, &err),
                         EMBER_OK);
        while (em_msg_kill_next(&c, &id) == EMBER_OK) {
            h->killed =
                realloc(h->killed, (h->nkilled + 1) * sizeof(*h->killed));
            assert_non_null(h->killed);
            h->killed[h->nkilled++] = id;
            /* A real executor stops the task and says so. */
            for (size_t i = 0; i < h->nrunning; i++)
                if (h->running[i].t.task_id == id &&
                    h->running[i].exec == idx) {
                    em_msg_update u = {.task_id = id,
                                       .state = EM_TASK_KILLED};
                    remove_running(h, i);
                    send_updates(h, idx, &u, 1);
                    break;
                }
        }
        break;
    }
    case EM_MSG_COMMIT_REPLY: {
        em_msg_commit_reply r;
        assert_int_equal(em_msg_decode_commit_reply(msg, len, &r, &err),
                         EMBER_OK);
        h->commit_replies++;
        h->commit_allowed += r.allowed;
        break;
    }
    default:
        break;
    }
}

/* The kernel is done with this connection: no send may follow. */
static void exec_closed(void *ctx)
{
    h_exec *e = ctx;
    assert_false(e->closed);
    e->closed = 1;
}

void h_exec_connect(harness *h, h_exec *e)
{
    e->h = h;
    assert_int_equal(
        em_kernel_conn_open(h->k, exec_send, exec_closed, e, &e->conn),
        EMBER_OK);
    em_msg_register reg = {
        .executor_id = {(const uint8_t *)e->id, strlen(e->id)},
        .host = {(const uint8_t *)e->host, strlen(e->host)},
        .endpoint = {(const uint8_t *)"inproc://none", 13},
        .slots = e->slots,
        .pid = (uint32_t)getpid()};
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_msg_encode_register(&b, &reg), EMBER_OK);
    assert_int_equal(em_kernel_conn_recv(h->k, e->conn, b.data, b.len),
                     EMBER_OK);
    ember_buf_release(&b);
    h_run(h);
}

/* --------------------------------------------------------------- jobs */

static void on_result(void *ctx, uint64_t job_id, uint32_t partition,
                      const uint8_t *data, size_t len)
{
    h_job *j = ctx;
    assert_int_equal(j->id, job_id);
    assert_false(j->ended);
    j->results++;
    if (partition < 64)
        snprintf(j->result[partition], sizeof j->result[partition], "%.*s",
                 (int)len, (const char *)data);
}

static void on_end(void *ctx, uint64_t job_id, ember_status st,
                   const char *msg)
{
    h_job *j = ctx;
    assert_int_equal(j->id, job_id);
    assert_false(j->ended); /* exactly once */
    j->ended = 1;
    j->status = st;
    snprintf(j->message, sizeof j->message, "%s", msg ? msg : "");
}

/* ------------------------------------------------------------- harness */

static uint64_t fake_now(void *ctx) { return ((harness *)ctx)->now_us; }

ember_status h_try_new(const char *const *conf, harness **out,
                       ember_error *err)
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    the_cm.h = h;
    snprintf(h->dir, sizeof h->dir, "/tmp/ember-kernel-test-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->db, sizeof h->db, "%s/ember.db", h->dir);
    h->now_us = 1000000;
    h->clock = (em_kernel_clock){fake_now, h};
    assert_int_equal(em_conf_create(&h->conf), EMBER_OK);
    for (size_t i = 0; conf && conf[i]; i++) {
        char key[128];
        const char *eq = strchr(conf[i], '=');
        assert_non_null(eq);
        snprintf(key, sizeof key, "%.*s", (int)(eq - conf[i]), conf[i]);
        assert_int_equal(em_conf_set(h->conf, key, eq + 1, "test", NULL),
                         EMBER_OK);
    }
    em_kernel_opts opts = {.conf = h->conf, .state_path = h->db,
                           .clock = &h->clock};
    ember_status st = em_kernel_create(&h->k, &opts, err);
    if (st != EMBER_OK) {
        h_free(h);
        *out = NULL;
        return st;
    }
    assert_int_equal(em_kernel_start_cluster(h->k, &fake_cm_vtable, "fake",
                                             "inproc://kernel", 0, err),
                     EMBER_OK);
    assert_int_equal(em_kernel_app_open(h->k, "test", &h->app, err),
                     EMBER_OK);
    h_run(h);
    *out = h;
    return EMBER_OK;
}

harness *h_new(const char *const *conf)
{
    harness *h;
    ember_error err = {0};
    ember_status st = h_try_new(conf, &h, &err);
    if (st != EMBER_OK)
        fail_msg("kernel refused: %s", err.msg);
    return h;
}

void h_free(harness *h)
{
    if (!h)
        return;
    if (h->k) {
        /* Every state-store write of the test must have worked. */
        em_kernel_stats st;
        em_kernel_get_stats(h->k, &st);
        assert_int_equal(st.store_errors, 0);
    }
    em_kernel_destroy(h->k);
    em_conf_destroy(h->conf);
    (void)em_store_remove_files(h->db, NULL);
    rmdir(h->dir);
    free(h->running);
    free(h->launched);
    free(h->killed);
    free(h);
}

void h_run(harness *h)
{
    if (!h->run_turn_limit) {
        assert_true(em_kernel_run(h->k, EM_KERNEL_RUN_UNTIL_IDLE) >= 0);
        return;
    }
    for (int turn = 0;; turn++) {
        if (turn == h->run_turn_limit)
            fail_msg("the kernel's loop is still busy after %d turns on a "
                     "clock that does not move", turn);
        int64_t ran = em_kernel_run(h->k, EM_KERNEL_RUN_NOWAIT);
        assert_true(ran >= 0);
        if (ran == 0)
            break;
    }
}

void h_advance(harness *h, uint64_t us)
{
    h->now_us += us;
    h_run(h);
}

int h_exec_add(harness *h, const char *host, uint32_t slots)
{
    ember_error err;
    the_cm.next_host = host;
    the_cm.next_slots = slots;
    assert_int_equal(cm_request(&the_cm, 1, &err), EMBER_OK);
    h_run(h);
    int e = h->nexecs - 1;
    assert_true(h->execs[e].registered);
    return e;
}

void h_exec_kill(harness *h, int e)
{
    ember_error err;
    h->execs[e].lost = 1;
    /* Tasks it held die with it. */
    for (size_t i = h->nrunning; i-- > 0;)
        if (h->running[i].exec == e)
            remove_running(h, i);
    assert_int_equal(cm_kill(&the_cm, h->execs[e].id, &err), EMBER_OK);
    h_run(h);
}

int h_submit(harness *h, const char *plan, uint64_t dataset,
             const char *pool, const char *group)
{
    assert_true(h->njobs < H_MAX_JOBS);
    h_job *j = &h->jobs[h->njobs];
    memset(j, 0, sizeof *j);
    em_job_spec spec = {.app_id = h->app, .plan = plan,
                        .plan_len = strlen(plan), .dataset = dataset,
                        .pool = pool, .group = group,
                        .listener = {j, on_result, on_end}};
    ember_error err = {0};
    ember_status st = em_kernel_submit(h->k, &spec, &j->id, &err);
    if (st != EMBER_OK)
        fail_msg("submit refused: %s", err.msg);
    h_run(h);
    return h->njobs++;
}

int h_find(harness *h, uint64_t stage_id, uint32_t partition)
{
    for (size_t i = 0; i < h->nrunning; i++)
        if (h->running[i].t.stage_id == stage_id &&
            h->running[i].t.partition == partition)
            return (int)i;
    return -1;
}

void h_task_result(const h_task *t, ember_buf *scratch)
{
    scratch->len = 0;
    if (t->is_map) {
        uint64_t sizes[256];
        for (uint32_t r = 0; r < t->nreduce && r < 256; r++)
            sizes[r] = 10;
        assert_int_equal(em_map_status_encode(scratch, sizes, t->nreduce),
                         EMBER_OK);
    } else {
        char text[32];
        int n = snprintf(text, sizeof text, "p%u", t->t.partition);
        assert_int_equal(ember_buf_append(scratch, text, (size_t)n),
                         EMBER_OK);
    }
}

static em_msg_update finished_update(h_task *t, ember_buf *scratch)
{
    em_msg_update u = {.task_id = t->t.task_id, .state = EM_TASK_FINISHED,
                       .run_us = 1000};
    h_task_result(t, scratch);
    u.result = (em_bytes){scratch->data, scratch->len};
    return u;
}

int h_find_attempt(harness *h, uint64_t stage, uint32_t partition,
                   uint32_t stage_attempt)
{
    for (size_t i = 0; i < h->nrunning; i++)
        if (h->running[i].t.stage_id == stage &&
            h->running[i].t.partition == partition &&
            h->running[i].t.stage_attempt == stage_attempt)
            return (int)i;
    return -1;
}

size_t h_must_find(harness *h, uint64_t stage, uint32_t partition,
                   uint32_t stage_attempt)
{
    int i = h_find_attempt(h, stage, partition, stage_attempt);
    assert_true(i >= 0);
    return (size_t)i;
}

void h_finish_tasks_of(harness *h, uint64_t stage)
{
    for (size_t i = 0; i < h->nrunning;)
        if (h->running[i].t.stage_id == stage)
            h_finish(h, i);
        else
            i++;
}

void h_finish_stage(harness *h)
{
    assert_true(h->nrunning > 0);
    h_finish_tasks_of(h, h->running[0].t.stage_id);
}

uint32_t h_launches_of(harness *h, uint64_t stage, uint32_t partition)
{
    uint32_t n = 0;
    for (size_t i = 0; i < h->nlaunched; i++)
        n += h->launched[i].stage_id == stage &&
             h->launched[i].partition == partition;
    return n;
}

void h_finish(harness *h, size_t i)
{
    assert_true(i < h->nrunning);
    h_task t = h->running[i];
    remove_running(h, i);
    ember_buf b = ember_buf_heap();
    em_msg_update u = finished_update(&t, &b);
    send_updates(h, t.exec, &u, 1);
    ember_buf_release(&b);
    h_run(h);
}

void h_finish_with(harness *h, size_t i, const void *result, size_t len)
{
    assert_true(i < h->nrunning);
    h_task t = h->running[i];
    remove_running(h, i);
    em_msg_update u = {.task_id = t.t.task_id, .state = EM_TASK_FINISHED,
                       .result = {result, len}};
    send_updates(h, t.exec, &u, 1);
    h_run(h);
}

void h_fail(harness *h, size_t i, const char *error)
{
    assert_true(i < h->nrunning);
    h_task t = h->running[i];
    remove_running(h, i);
    em_msg_update u = {.task_id = t.t.task_id, .state = EM_TASK_FAILED,
                       .error = {(const uint8_t *)error, strlen(error)}};
    send_updates(h, t.exec, &u, 1);
    h_run(h);
}

void h_fetch_fail(harness *h, size_t i, uint64_t shuffle, uint32_t map,
                  const char *lost_exec)
{
    assert_true(i < h->nrunning);
    h_task t = h->running[i];
    remove_running(h, i);
    const char *msg = "connection refused";
    em_msg_update u = {
        .task_id = t.t.task_id, .state = EM_TASK_FETCH_FAILED,
        .error = {(const uint8_t *)msg, strlen(msg)}, .shuffle_id = shuffle,
        .map_index = map,
        .lost_executor = {(const uint8_t *)lost_exec, strlen(lost_exec)}};
    send_updates(h, t.exec, &u, 1);
    h_run(h);
}

void h_finish_all(harness *h)
{
    for (int round = 0; h->nrunning > 0; round++) {
        assert_true(round < 10000);
        /* One STATUS message per executor, as real executors batch. */
        for (int e = 0; e < h->nexecs; e++) {
            size_t n = 0;
            for (size_t i = 0; i < h->nrunning; i++)
                n += h->running[i].exec == e;
            if (n == 0)
                continue;
            em_msg_update *u = calloc(n, sizeof *u);
            ember_buf *bufs = calloc(n, sizeof *bufs);
            assert_non_null(u);
            assert_non_null(bufs);
            size_t k = 0;
            for (size_t i = 0; i < h->nrunning;) {
                if (h->running[i].exec != e) {
                    i++;
                    continue;
                }
                bufs[k] = ember_buf_heap();
                u[k] = finished_update(&h->running[i], &bufs[k]);
                k++;
                remove_running(h, i);
            }
            send_updates(h, e, u, n);
            for (size_t i = 0; i < n; i++)
                ember_buf_release(&bufs[i]);
            free(bufs);
            free(u);
        }
        h_run(h);
    }
}

void h_send_raw(harness *h, int e, const void *msg, size_t len)
{
    assert_int_equal(em_kernel_conn_recv(h->k, h->execs[e].conn, msg, len),
                     EMBER_OK);
    h_run(h);
}

int64_t h_sql_int(harness *h, const char *sql)
{
    /* Read through a second, read-only connection, as another process
     * would while the kernel runs: only flushed turns are visible. */
    em_store *ro = NULL;
    ember_error err = {0};
    int64_t v = -1;
    if (em_store_open_readonly(&ro, h->db, &err) != EMBER_OK)
        fail_msg("read-only open: %s", err.msg);
    if (em_store_query_int(ro, sql, &v, &err) != EMBER_OK)
        fail_msg("%s: %s", sql, err.msg);
    em_store_close(ro);
    return v;
}

h_task h_take(harness *h, size_t i)
{
    assert_true(i < h->nrunning);
    h_task t = h->running[i];
    remove_running(h, i);
    return t;
}

void h_send_updates(harness *h, int exec, const em_msg_update *u, size_t n)
{
    send_updates(h, exec, u, n);
    h_run(h);
}

void h_commit_ask(harness *h, const h_task *t)
{
    em_msg_commit_ask ask = {.task_id = t->t.task_id,
                             .stage_id = t->t.stage_id,
                             .stage_attempt = t->t.stage_attempt,
                             .partition = t->t.partition,
                             .attempt = t->t.attempt};
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_msg_encode_commit_ask(&b, &ask), EMBER_OK);
    h_send_raw(h, t->exec, b.data, b.len);
    ember_buf_release(&b);
}

int h_stage_inputs(harness *h, uint64_t stage_id, uint64_t *out, int cap)
{
    int slot = stage_slot(h, stage_id);
    if (slot < 0)
        return -1;
    int n = 0;
    for (uint32_t k = 0; k < h->stage_ninputs[slot] && n < cap; k++)
        out[n++] = h->stage_inputs[slot][k];
    return n;
}

uint32_t h_shuffle_maps(harness *h, uint64_t shuffle)
{
    for (int k = 0; k < h->nshuffles; k++)
        if (h->shuffle_ids[k] == shuffle)
            return h->shuffle_maps[k];
    return 0;
}

void h_heartbeat(harness *h, int e)
{
    uint32_t running = 0;
    for (size_t i = 0; i < h->nrunning; i++)
        running += h->running[i].exec == e;
    em_msg_heartbeat hb = {
        .executor_id = {(const uint8_t *)h->execs[e].id,
                        strlen(h->execs[e].id)},
        .running = running};
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_msg_encode_heartbeat(&b, &hb), EMBER_OK);
    h_send_raw(h, e, b.data, b.len);
    ember_buf_release(&b);
}

void h_exec_close(harness *h, int e)
{
    h->execs[e].lost = 1;
    for (size_t i = h->nrunning; i-- > 0;)
        if (h->running[i].exec == e)
            remove_running(h, i);
    assert_int_equal(em_kernel_conn_close(h->k, h->execs[e].conn,
                                          "connection reset by the test"),
                     EMBER_OK);
    h_run(h);
}
