/*
 * bench/scheduler_bench.c — kernel throughput: tasks per second from
 * submit to job end through the whole kernel (loop, DAG scheduler, task
 * scheduler, pools, SQLite state store) with fake executors that finish
 * every task the moment its LAUNCH arrives. Executor messages are real
 * (kernel/msg), batched as real executors batch them. The matrix starts
 * with the floor: the same state-store writes alone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ember/kernel/kernel.h"
#include "ember/kernel/log.h"
#include "msg/msg.h"
#include "state/store.h"

typedef struct fake_exec {
    em_kernel *k;
    uint64_t conn;
    ember_buf out;
} fake_exec;

/* Answers a LAUNCH with one STATUS message finishing all its tasks. */
static void exec_send(void *ctx, const uint8_t *msg, size_t len)
{
    fake_exec *e = ctx;
    em_msg_type type;
    if (em_msg_type_of(msg, len, &type, NULL) != EMBER_OK ||
        type != EM_MSG_LAUNCH)
        return;
    em_msg_cursor c;
    em_msg_task t;
    em_msg_batch b;
    if (em_msg_launch_open(msg, len, &c, NULL) != EMBER_OK)
        return;
    e->out.len = 0;
    if (em_msg_status_begin(&b, &e->out) != EMBER_OK)
        return;
    static const uint8_t result[] = {'o', 'k'};
    while (em_msg_launch_next(&c, &t) == EMBER_OK) {
        em_msg_update u = {.task_id = t.task_id, .state = EM_TASK_FINISHED,
                           .run_us = 1, .result = {result, sizeof result}};
        if (em_msg_status_add(&b, &u) != EMBER_OK)
            return;
    }
    if (em_msg_batch_finish(&b) == EMBER_OK)
        (void)em_kernel_conn_recv(e->k, e->conn, e->out.data, e->out.len);
}

typedef struct run_state {
    em_kernel *k;
    uint32_t ended, failed;
    uint32_t jobs;
} run_state;

static void on_end(void *ctx, uint64_t job, ember_status st, const char *m)
{
    run_state *r = ctx;
    (void)job;
    if (st != EMBER_OK) {
        fprintf(stderr, "ember-bench: job failed: %s\n", m ? m : "");
        r->failed++;
    }
    if (++r->ended == r->jobs)
        em_kernel_stop(r->k);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Makes the temporary directory dir (a mkdtemp template) and names the
 * state database in it. */
static int temp_db(char *dir, char *db, size_t cap)
{
    if (!mkdtemp(dir)) {
        perror("ember-bench: mkdtemp");
        return -1;
    }
    snprintf(db, cap, "%s/ember.db", dir);
    return 0;
}

/* One measurement: jobs x tasks tasks on slots slots. */
static int measure(uint32_t tasks, uint32_t slots, uint32_t jobs)
{
    char dir[] = "/tmp/ember-bench-XXXXXX", db[64];
    if (temp_db(dir, db, sizeof db) != 0)
        return 1;
    em_kernel *k = NULL;
    ember_error err = {0};
    em_kernel_opts opts = {.state_path = db};
    if (em_kernel_create(&k, &opts, &err) != EMBER_OK) {
        fprintf(stderr, "ember-bench: %s\n", err.msg);
        return 1;
    }
    /* Executors of up to 100 slots each, as a cluster would have. */
    uint32_t per = slots < 100 ? slots : 100;
    uint32_t nexec = (slots + per - 1) / per;
    fake_exec *ex = calloc(nexec, sizeof *ex);
    if (!ex)
        return 1;
    for (uint32_t i = 0; i < nexec; i++) {
        char id[32], host[32];
        snprintf(id, sizeof id, "exec-%" PRIu32, i);
        snprintf(host, sizeof host, "host-%" PRIu32, i % 16);
        ex[i].k = k;
        ex[i].out = ember_buf_heap();
        uint32_t s = (i + 1 == nexec) ? slots - per * i : per;
        em_kernel_conn_open(k, exec_send, NULL, &ex[i], &ex[i].conn);
        em_msg_register reg = {
            .executor_id = {(const uint8_t *)id, strlen(id)},
            .host = {(const uint8_t *)host, strlen(host)},
            .endpoint = {(const uint8_t *)"inproc://bench", 14},
            .slots = s, .pid = (uint32_t)getpid()};
        ember_buf b = ember_buf_heap();
        em_msg_encode_register(&b, &reg);
        em_kernel_conn_recv(k, ex[i].conn, b.data, b.len);
        ember_buf_release(&b);
    }
    em_kernel_run(k, EM_KERNEL_RUN_UNTIL_IDLE);

    uint64_t app;
    em_kernel_app_open(k, "bench", &app, &err);
    char plan[512];
    snprintf(plan, sizeof plan,
             "{\"ember_plan\":1,\"datasets\":["
             "{\"id\":0,\"op\":\"parallelize\",\"partitions\":%" PRIu32 "},"
             "{\"id\":1,\"op\":\"map\",\"parents\":[0],"
             "\"fns\":[\"std.identity\"]}]}", tasks);
    run_state rs = {.k = k, .jobs = jobs};
    double t0 = now_s();
    for (uint32_t j = 0; j < jobs; j++) {
        em_job_spec spec = {.app_id = app, .plan = plan,
                            .plan_len = strlen(plan), .dataset = 1,
                            .listener = {&rs, NULL, on_end}};
        uint64_t id;
        if (em_kernel_submit(k, &spec, &id, &err) != EMBER_OK) {
            fprintf(stderr, "ember-bench: %s\n", err.msg);
            return 1;
        }
    }
    em_kernel_run(k, EM_KERNEL_RUN_DEFAULT);
    double secs = now_s() - t0;
    em_kernel_stats st;
    em_kernel_get_stats(k, &st);
    uint64_t total = (uint64_t)tasks * jobs;
    printf("{\"bench\":\"scheduler\",\"tasks\":%" PRIu64 ",\"slots\":%" PRIu32
           ",\"jobs\":%" PRIu32 ",\"executors\":%" PRIu32
           ",\"seconds\":%.6f,\"tasks_per_s\":%.0f,\"launched\":%" PRIu64
           ",\"store_errors\":%" PRIu64 "}\n",
           total, slots, jobs, nexec, secs, secs > 0 ? total / secs : 0.0,
           st.tasks_launched, st.store_errors);
    fflush(stdout);
    em_kernel_destroy(k);
    for (uint32_t i = 0; i < nexec; i++)
        ember_buf_release(&ex[i].out);
    free(ex);
    (void)em_store_remove_files(db, NULL);
    rmdir(dir);
    return rs.failed ? 1 : 0;
}

/*
 * The floor under the kernel's numbers: the same state-store writes a task
 * costs (its insert and its end), alone, in transactions of 1,000 — what
 * the kernel would spend if scheduling, messages and the loop were free.
 */
static int measure_store_floor(uint32_t tasks)
{
    char dir[] = "/tmp/ember-bench-XXXXXX", db[64];
    if (temp_db(dir, db, sizeof db) != 0)
        return 1;
    em_store *st = NULL;
    ember_error err = {0};
    if (em_store_open(&st, db, &err) != EMBER_OK ||
        em_store_app_begin(st, 1, "floor", 0, &err) != EMBER_OK ||
        em_store_job_begin(st, 1, 1, NULL, NULL, NULL, 0, &err) !=
            EMBER_OK ||
        em_store_stage_begin(st, 1, 0, 1, "result", "floor", tasks, 0,
                             &err) != EMBER_OK) {
        fprintf(stderr, "ember-bench: %s\n", err.msg);
        em_store_close(st);
        return 1;
    }
    double t0 = now_s();
    for (uint32_t i = 0; i < tasks; i++) {
        if (em_store_task_begin(st, i + 1, 1, 0, i, 0, "exec-0", 0,
                                "NO_PREF", 0, &err) != EMBER_OK ||
            em_store_task_end(st, i + 1, "SUCCESS", NULL, 0, &err) !=
                EMBER_OK ||
            ((i + 1) % 1000 == 0 && em_store_flush(st, &err) != EMBER_OK)) {
            fprintf(stderr, "ember-bench: %s\n", err.msg);
            em_store_close(st);
            return 1;
        }
    }
    if (em_store_flush(st, &err) != EMBER_OK) {
        fprintf(stderr, "ember-bench: %s\n", err.msg);
        em_store_close(st);
        return 1;
    }
    double secs = now_s() - t0;
    printf("{\"bench\":\"scheduler_store_floor\",\"tasks\":%" PRIu32
           ",\"batch\":1000,\"seconds\":%.6f,\"tasks_per_s\":%.0f}\n",
           tasks, secs, secs > 0 ? tasks / secs : 0.0);
    fflush(stdout);
    em_store_close(st);
    (void)em_store_remove_files(db, NULL);
    rmdir(dir);
    return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > 16777216)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int bench_scheduler(int argc, char **argv)
{
    uint32_t tasks = 0, slots = 0, jobs = 1;
    for (int i = 1; i < argc; i += 2) {
        uint32_t *dst = !strcmp(argv[i], "--tasks")   ? &tasks
                        : !strcmp(argv[i], "--slots") ? &slots
                        : !strcmp(argv[i], "--jobs")  ? &jobs
                                                      : NULL;
        if (!dst || i + 1 >= argc || parse_u32(argv[i + 1], dst) != 0) {
            fprintf(stderr, "ember-bench scheduler: bad option '%s' (use "
                            "--tasks N, --slots S, --jobs J with N, S, J "
                            "in 1..16777216)\n", argv[i]);
            return 2;
        }
    }
    em_log_set_level(EMBER_LOG_ERROR);
    if (tasks && slots)
        return measure(tasks, slots, jobs);
    static const uint32_t task_sizes[] = {1, 1000, 100000};
    static const uint32_t slot_sizes[] = {1, 100, 10000};
    int rc = measure_store_floor(100000);
    for (size_t t = 0; t < 3; t++)
        for (size_t s = 0; s < 3; s++)
            if ((!tasks || tasks == task_sizes[t]) &&
                (!slots || slots == slot_sizes[s]))
                rc |= measure(task_sizes[t], slot_sizes[s], jobs);
    return rc;
}
