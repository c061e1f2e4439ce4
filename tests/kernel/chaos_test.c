/*
 * A seeded random walk over the whole kernel. Each seed builds a kernel
 * (FIFO or FAIR, with or without speculation, random retry limits and
 * locality waits) with fake executors, then takes a few hundred random
 * steps: submit jobs of several shapes (narrow, with locality, two-stage,
 * chains, diamonds with cogroup, indeterminate map sides, conflicting
 * dataset definitions, partition subsets), finish / fail / fetch-fail
 * tasks, hold a status back and deliver it late, send garbage and stale
 * messages, add / kill / disconnect executors, cancel jobs and groups, ask
 * to commit, and move the fake clock. After every step the kernel's
 * accounting must agree with what the fake executors hold; at the end of
 * each seed every job must end, with one result per partition when it
 * succeeded, and the state store must agree.
 *
 * The walk is deterministic: a seed and a step number reproduce any
 * failure. To explore by hand, CHAOS_FIRST, CHAOS_SEEDS and CHAOS_STEPS
 * override the range, CHAOS_TRACE prints each step and CHAOS_VERBOSE what
 * the walk did in total. The kernel bugs it found (fixed in 04c89f1) are
 * reproduced by the small tests at the end of this file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "plans.h"

#define SEEDS 300
#define STEPS 300
#define DRAIN_ROUNDS 200
#define C_MAX_JOBS 48
#define C_MAX_PARTS 8
#define C_MAX_INFLIGHT 64
#define C_MAX_OWNERS 512
#define C_MAX_EXECS 48

/* ------------------------------------------------------------- the rng */

/* xorshift64*: small, fast, and the same on every platform. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

/* ----------------------------------------------------------- the plans */

typedef struct variant {
    char plan[2048];
    uint64_t dataset;
    uint32_t nparts; /* partitions of the job's dataset */
} variant;

enum { NVARIANTS = 14 };
static variant variants[NVARIANTS];

static void narrow_plan(variant *v, unsigned b, int n, int located)
{
    snprintf(v->plan, sizeof v->plan,
             "{\"ember_plan\":1,\"datasets\":["
             "{\"id\":%u,\"op\":\"parallelize\",\"partitions\":%d%s},"
             "{\"id\":%u,\"op\":\"map\",\"parents\":[%u],"
             "\"fns\":[\"std.identity\"]}]}",
             b, n,
             located ? ",\"args\":{\"locations\":[[\"host-0\"],[\"host-1\"],"
                       "[{\"host\":\"host-0\",\"executor\":\"exec-1\"}],"
                       "[\"host-9\"]]}"
                     : "",
             b + 1, b);
    v->dataset = b + 1;
    v->nparts = (uint32_t)n;
}

static void two_stage_plan(variant *v, unsigned b, const char *det)
{
    snprintf(v->plan, sizeof v->plan,
             "{\"ember_plan\":1,\"datasets\":["
             "{\"id\":%u,\"op\":\"parallelize\",\"partitions\":4,"
             "\"determinism\":\"%s\"},"
             "{\"id\":%u,\"op\":\"reduce_by_key\",\"parents\":[%u],"
             "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","
             "\"partitions\":2}}]}",
             b, det, b + 1, b);
    v->dataset = b + 1;
    v->nparts = 2;
}

/* As PLAN_CHAIN from base b; the job reads dataset b + at. */
static void chain_plan(variant *v, unsigned b, const char *det, unsigned at)
{
    snprintf(v->plan, sizeof v->plan,
             "{\"ember_plan\":1,\"datasets\":["
             "{\"id\":%u,\"op\":\"parallelize\",\"partitions\":4,"
             "\"determinism\":\"%s\"},"
             "{\"id\":%u,\"op\":\"map\",\"parents\":[%u],"
             "\"fns\":[\"std.identity\"]},"
             "{\"id\":%u,\"op\":\"reduce_by_key\",\"parents\":[%u],"
             "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","
             "\"partitions\":3}},"
             "{\"id\":%u,\"op\":\"map_values\",\"parents\":[%u],"
             "\"fns\":[\"std.identity\"]},"
             "{\"id\":%u,\"op\":\"group_by_key\",\"parents\":[%u],"
             "\"partitioner\":{\"kind\":\"hash\",\"partitions\":2}}]}",
             b, det, b + 1, b, b + 2, b + 1, b + 3, b + 2, b + 4, b + 3);
    v->dataset = b + at;
    v->nparts = at == 4 ? 2 : at >= 2 ? 3 : 4;
}

/* As PLAN_DIAMOND from base b. */
static void diamond_plan(variant *v, unsigned b, const char *det)
{
    snprintf(v->plan, sizeof v->plan,
             "{\"ember_plan\":1,\"datasets\":["
             "{\"id\":%u,\"op\":\"parallelize\",\"partitions\":2,"
             "\"determinism\":\"%s\"},"
             "{\"id\":%u,\"op\":\"map\",\"parents\":[%u],"
             "\"fns\":[\"std.identity\"]},"
             "{\"id\":%u,\"op\":\"filter\",\"parents\":[%u],"
             "\"fns\":[\"std.identity\"]},"
             "{\"id\":%u,\"op\":\"union\",\"parents\":[%u,%u]},"
             "{\"id\":%u,\"op\":\"reduce_by_key\",\"parents\":[%u],"
             "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","
             "\"partitions\":2}},"
             "{\"id\":%u,\"op\":\"group_by_key\",\"parents\":[%u],"
             "\"partitioner\":{\"kind\":\"hash\",\"partitions\":3}},"
             "{\"id\":%u,\"op\":\"cogroup\",\"parents\":[%u,%u],"
             "\"partitioner\":{\"kind\":\"hash\",\"partitions\":2}}]}",
             b, det, b + 1, b, b + 2, b, b + 3, b + 1, b + 2, b + 4, b + 3,
             b + 5, b, b + 6, b + 4, b + 5);
    v->dataset = b + 6;
    v->nparts = 2;
}

static void raw_plan(variant *v, const char *plan, uint64_t dataset,
                     uint32_t nparts)
{
    snprintf(v->plan, sizeof v->plan, "%s", plan);
    v->dataset = dataset;
    v->nparts = nparts;
}

static void build_variants(void)
{
    narrow_plan(&variants[0], 100, 3, 0);
    narrow_plan(&variants[1], 110, 4, 1);
    two_stage_plan(&variants[2], 200, "deterministic");
    two_stage_plan(&variants[3], 210, "unordered");
    two_stage_plan(&variants[4], 220, "indeterminate");
    chain_plan(&variants[5], 300, "deterministic", 4);
    chain_plan(&variants[6], 300, "deterministic", 2); /* shares 300's */
    chain_plan(&variants[7], 320, "indeterminate", 4);
    diamond_plan(&variants[8], 400, "deterministic");
    diamond_plan(&variants[9], 410, "indeterminate");
    /* plans.h as is: their dataset ids clash, so whichever comes first in
     * a seed defines them and the others are refused. */
    raw_plan(&variants[10], PLAN_TWO_STAGE, 1, 2);
    raw_plan(&variants[11], PLAN_CHAIN, 4, 2);
    raw_plan(&variants[12], PLAN_DIAMOND, 6, 2);
    raw_plan(&variants[13], PLAN_NARROW("2"), 1, 2);
}

/* ------------------------------------------------------------ the walk */

typedef struct chaos chaos;

typedef struct cjob {
    chaos *c;
    uint64_t id;
    int variant;
    int ended, bad_request;
    ember_status status;
    char message[256];
    uint32_t nparts;
    uint32_t parts[C_MAX_PARTS];
    uint32_t got[C_MAX_PARTS];
    const char *group;
} cjob;

/* A status the executor has not sent yet (h_take). */
typedef struct inflight {
    h_task t;
    uint8_t state; /* EM_TASK_FINISHED or EM_TASK_FAILED */
} inflight;

/* The commit arbiter's answer as the walk saw it: who may commit. */
typedef struct owner {
    uint64_t stage;
    uint32_t partition;
    uint64_t task_id;
    int finished; /* it reported success: it keeps the claim */
} owner;

struct chaos {
    harness *h;
    uint64_t rng;
    cjob jobs[C_MAX_JOBS];
    int njobs;
    inflight inflight[C_MAX_INFLIGHT];
    int ninflight;
    owner owners[C_MAX_OWNERS];
    int nowners;
    h_task old[16]; /* tasks reported already, for stale messages */
    int nold;
    int fair, alloc, spec;
    uint64_t actions[32];
};

static unsigned cur_seed;
static int cur_step = -1;
static int in_walk;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void violation(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    in_walk = 0;
    fail_msg("chaos seed %u step %d: %s", cur_seed, cur_step, buf);
}

static uint32_t rnd(chaos *c, uint32_t n)
{
    return n ? (uint32_t)(rng_next(&c->rng) >> 33) % n : 0;
}

/* True with probability pct / 100. */
static int chance(chaos *c, uint32_t pct) { return rnd(c, 100) < pct; }

static int exec_live(chaos *c, int e)
{
    return !c->h->execs[e].lost && !c->h->execs[e].closed;
}

static int live_execs(chaos *c)
{
    int n = 0;
    for (int e = 0; e < c->h->nexecs; e++)
        n += exec_live(c, e);
    return n;
}

/* ------------------------------------------------------------ listener */

static void on_result(void *ctx, uint64_t job_id, uint32_t partition,
                      const uint8_t *data, size_t len)
{
    cjob *j = ctx;
    if (j->id != job_id)
        violation("result for job %llu reached job %llu's listener",
                  (unsigned long long)job_id, (unsigned long long)j->id);
    if (j->ended)
        violation("job %llu: result for partition %u after its end",
                  (unsigned long long)j->id, partition);
    int k = -1;
    for (uint32_t i = 0; i < j->nparts; i++)
        if (j->parts[i] == partition)
            k = (int)i;
    if (k < 0)
        violation("job %llu: result for partition %u, not requested",
                  (unsigned long long)j->id, partition);
    if (++j->got[k] > 1)
        violation("job %llu: partition %u delivered twice",
                  (unsigned long long)j->id, partition);
    char want[32];
    snprintf(want, sizeof want, "p%u", partition);
    if (len != strlen(want) || memcmp(data, want, len) != 0)
        violation("job %llu: partition %u returned '%.*s'",
                  (unsigned long long)j->id, partition, (int)len,
                  (const char *)data);
}

static void on_end(void *ctx, uint64_t job_id, ember_status st,
                   const char *msg)
{
    cjob *j = ctx;
    if (j->id != job_id)
        violation("end of job %llu reached job %llu's listener",
                  (unsigned long long)job_id, (unsigned long long)j->id);
    if (j->ended)
        violation("job %llu ended twice (%d, then %d: %s)",
                  (unsigned long long)j->id, j->status, st, msg ? msg : "");
    j->ended = 1;
    j->status = st;
    snprintf(j->message, sizeof j->message, "%s", msg ? msg : "");
    if (st == EMBER_OK)
        for (uint32_t i = 0; i < j->nparts; i++)
            if (j->got[i] != 1)
                violation("job %llu succeeded with %u results for "
                          "partition %u", (unsigned long long)j->id,
                          j->got[i], j->parts[i]);
    if (j->bad_request && st != EMBER_EINVAL)
        violation("job %llu asked for bad partitions but ended %d",
                  (unsigned long long)j->id, st);
}

/* ---------------------------------------------------------- invariants */

static int find_owner(chaos *c, uint64_t stage, uint32_t partition)
{
    for (int k = 0; k < c->nowners; k++)
        if (c->owners[k].stage == stage &&
            c->owners[k].partition == partition)
            return k;
    return -1;
}

static int task_alive(chaos *c, uint64_t task_id)
{
    for (size_t i = 0; i < c->h->nrunning; i++)
        if (c->h->running[i].t.task_id == task_id)
            return 1;
    for (int i = 0; i < c->ninflight; i++)
        if (c->inflight[i].t.t.task_id == task_id)
            return 1;
    return 0;
}

/* A task reported success: if it owns its commit, it keeps it. */
static void note_finished(chaos *c, const h_task *t)
{
    int k = find_owner(c, t->t.stage_id, t->t.partition);
    if (k >= 0 && c->owners[k].task_id == t->t.task_id)
        c->owners[k].finished = 1;
    c->old[c->nold++ % 16] = *t;
    if (c->nold >= 32)
        c->nold = 16;
}

static void check_invariants(chaos *c)
{
    harness *h = c->h;
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    if (st.store_errors != 0)
        violation("%llu state-store writes failed",
                  (unsigned long long)st.store_errors);
    uint64_t held = 0, slots = 0;
    for (size_t i = 0; i < h->nrunning; i++) {
        if (!exec_live(c, h->running[i].exec))
            violation("task %llu runs on lost executor %s",
                      (unsigned long long)h->running[i].t.task_id,
                      h->execs[h->running[i].exec].id);
        for (size_t k = 0; k < i; k++)
            if (h->running[k].t.task_id == h->running[i].t.task_id)
                violation("task %llu launched twice",
                          (unsigned long long)h->running[i].t.task_id);
        held++;
    }
    for (int i = 0; i < c->ninflight; i++) {
        if (!exec_live(c, c->inflight[i].t.exec))
            violation("held-back task on a lost executor");
        held++;
    }
    for (int e = 0; e < h->nexecs; e++)
        if (exec_live(c, e))
            slots += h->execs[e].slots;
    if (st.executors != (uint32_t)live_execs(c))
        violation("kernel counts %u executors, %d are alive", st.executors,
                  live_execs(c));
    if (st.total_slots != slots)
        violation("kernel counts %llu slots, live executors have %llu",
                  (unsigned long long)st.total_slots,
                  (unsigned long long)slots);
    for (int k = 0; k < h->nshuffles; k++) {
        int64_t avail = em_kernel_shuffle_available(h->k, h->shuffle_ids[k]);
        if (avail > (int64_t)h->shuffle_maps[k])
            violation("shuffle %llu has %lld of %u map outputs",
                      (unsigned long long)h->shuffle_ids[k],
                      (long long)avail, h->shuffle_maps[k]);
    }
    if (st.free_slots + held != st.total_slots)
        violation("free slots %llu + running %llu != total slots %llu",
                  (unsigned long long)st.free_slots,
                  (unsigned long long)held,
                  (unsigned long long)st.total_slots);
}

/* ------------------------------------------------------------- actions */

enum {
    A_SUBMIT, A_FINISH, A_FAIL, A_FETCH_FAIL, A_BAD_RESULT, A_TAKE,
    A_DELIVER, A_BATCH, A_GARBAGE, A_ADD_EXEC, A_KILL_EXEC, A_CANCEL,
    A_ADVANCE, A_COMMIT, NACTIONS
};
static const char *const action_names[NACTIONS] = {
    "submit", "finish", "fail", "fetch-fail", "bad-result", "take",
    "deliver", "batch", "garbage", "add-exec", "kill-exec", "cancel",
    "advance", "commit"};
/* Weights, out of their sum. */
static const uint32_t action_weights[NACTIONS] = {
    9, 26, 5, 6, 2, 4, 4, 3, 5, 3, 3, 4, 18, 8};

static const char *const pools[] = {NULL,   "heavy",  "light", "capped",
                                    "team", "team-a", "team-b", "adhoc"};
static const char *const groups[] = {NULL, "g0", "g1", "g2"};

static void act_submit(chaos *c)
{
    if (c->njobs == C_MAX_JOBS)
        return;
    cjob *j = &c->jobs[c->njobs];
    memset(j, 0, sizeof *j);
    j->c = c;
    int v = chance(c, 5) ? 10 + (int)rnd(c, 4) : (int)rnd(c, 10);
    const variant *va = &variants[v];
    j->variant = v;
    uint32_t parts[C_MAX_PARTS];
    uint32_t nparts = 0;
    const uint32_t *req = NULL;
    uint32_t how = rnd(c, 100);
    if (how < 70) {
        for (uint32_t p = 0; p < va->nparts; p++)
            j->parts[j->nparts++] = p;
    } else if (how < 90) {
        /* A random non-empty subset, in random order. */
        for (uint32_t p = 0; p < va->nparts; p++)
            if (chance(c, 50))
                parts[nparts++] = p;
        if (nparts == 0)
            parts[nparts++] = rnd(c, va->nparts);
        for (uint32_t k = nparts; k > 1; k--) {
            uint32_t o = rnd(c, k), t = parts[k - 1];
            parts[k - 1] = parts[o];
            parts[o] = t;
        }
        memcpy(j->parts, parts, nparts * sizeof *parts);
        j->nparts = nparts;
        req = parts;
    } else if (how < 95) {
        req = parts; /* none: the job ends at once */
    } else {
        /* Out of range, or twice: refused, with no result. */
        parts[nparts++] = 0;
        parts[nparts++] = chance(c, 50) ? va->nparts + rnd(c, 3) : 0;
        req = parts;
        j->bad_request = 1;
    }
    j->group = groups[rnd(c, 4)];
    em_job_spec spec = {.app_id = c->h->app, .plan = va->plan,
                        .plan_len = strlen(va->plan),
                        .dataset = va->dataset, .partitions = req,
                        .npartitions = nparts,
                        .pool = pools[rnd(c, 8)], .group = j->group,
                        .listener = {j, on_result, on_end}};
    ember_error err = {0};
    if (em_kernel_submit(c->h->k, &spec, &j->id, &err) != EMBER_OK)
        violation("submit of variant %d refused: %s", v, err.msg);
    c->njobs++;
    h_run(c->h);
}

static int pick_running(chaos *c)
{
    return c->h->nrunning ? (int)rnd(c, (uint32_t)c->h->nrunning) : -1;
}

static void act_finish(chaos *c)
{
    int i = pick_running(c);
    if (i < 0)
        return;
    h_task t = c->h->running[i];
    note_finished(c, &t);
    h_finish(c->h, (size_t)i);
}

static void act_fail(chaos *c)
{
    int i = pick_running(c);
    if (i < 0)
        return;
    c->old[c->nold++ % 16] = c->h->running[i];
    if (c->nold >= 32)
        c->nold = 16;
    h_fail(c->h, (size_t)i, "chaos: the task threw");
}

static void act_fetch_fail(chaos *c)
{
    harness *h = c->h;
    int cand[256], n = 0;
    uint64_t in[H_MAX_INPUTS];
    for (size_t i = 0; i < h->nrunning && n < 256; i++)
        if (h_stage_inputs(h, h->running[i].t.stage_id, in, H_MAX_INPUTS) >
            0)
            cand[n++] = (int)i;
    if (n == 0)
        return;
    int i = cand[rnd(c, (uint32_t)n)];
    int nin = h_stage_inputs(h, h->running[i].t.stage_id, in, H_MAX_INPUTS);
    uint64_t shuffle = in[rnd(c, (uint32_t)nin)];
    uint32_t maps = h_shuffle_maps(h, shuffle);
    uint32_t map = maps ? rnd(c, maps) : 0;
    if (chance(c, 5))
        map = maps; /* out of range: an ordinary failure */
    if (chance(c, 5))
        shuffle = h->nshuffles ? h->shuffle_ids[rnd(c, (uint32_t)
                                                       h->nshuffles)]
                               : 999;
    const char *lost;
    uint32_t who = rnd(c, 10);
    if (who < 7)
        lost = h->execs[rnd(c, (uint32_t)h->nexecs)].id;
    else if (who < 9)
        lost = "";
    else
        lost = "exec-unknown";
    h_fetch_fail(h, (size_t)i, shuffle, map, lost);
}

/* A map task returns something that is not its map status. */
static void act_bad_result(chaos *c)
{
    harness *h = c->h;
    int cand[256], n = 0;
    for (size_t i = 0; i < h->nrunning && n < 256; i++)
        if (h->running[i].is_map)
            cand[n++] = (int)i;
    if (n == 0)
        return;
    int i = cand[rnd(c, (uint32_t)n)];
    static const uint8_t junk[] = {0x05, 0x01};
    h_finish_with(h, (size_t)i, junk, chance(c, 50) ? sizeof junk : 0);
}

static void act_take(chaos *c)
{
    int i = pick_running(c);
    if (i < 0 || c->ninflight == C_MAX_INFLIGHT)
        return;
    inflight *f = &c->inflight[c->ninflight++];
    f->t = h_take(c->h, (size_t)i);
    f->state = chance(c, 80) ? EM_TASK_FINISHED : EM_TASK_FAILED;
}

/* The update a fake executor sends for t; scratch holds the result. */
static em_msg_update update_for(const h_task *t, uint8_t state,
                                ember_buf *scratch)
{
    em_msg_update u = {.task_id = t->t.task_id, .state = state,
                       .run_us = 1000};
    scratch->len = 0;
    if (state == EM_TASK_KILLED)
        return u;
    if (state == EM_TASK_FAILED) {
        static const char msg[] = "chaos: late failure";
        u.error = (em_bytes){(const uint8_t *)msg, sizeof msg - 1};
        return u;
    }
    h_task_result(t, scratch);
    u.result = (em_bytes){scratch->data, scratch->len};
    return u;
}

static void deliver(chaos *c, int k)
{
    inflight f = c->inflight[k];
    c->inflight[k] = c->inflight[--c->ninflight];
    if (f.state == EM_TASK_FINISHED)
        note_finished(c, &f.t);
    ember_buf b = ember_buf_heap();
    em_msg_update u = update_for(&f.t, f.state, &b);
    h_send_updates(c->h, f.t.exec, &u, 1);
    ember_buf_release(&b);
}

static void act_deliver(chaos *c)
{
    if (c->ninflight)
        deliver(c, (int)rnd(c, (uint32_t)c->ninflight));
}

/* Several updates of one executor in one STATUS message, sometimes with
 * the same task twice. */
static void act_batch(chaos *c)
{
    harness *h = c->h;
    int i = pick_running(c);
    if (i < 0)
        return;
    int e = h->running[i].exec;
    h_task ts[9];
    uint8_t states[9];
    int n = 0;
    for (size_t k = 0; k < h->nrunning && n < 8;) {
        if (h->running[k].exec == e && chance(c, 70)) {
            states[n] = chance(c, 85) ? EM_TASK_FINISHED : EM_TASK_FAILED;
            ts[n++] = h_take(h, k);
        } else {
            k++;
        }
    }
    int first = n; /* entries from here on repeat an earlier one */
    if (n > 0 && chance(c, 20)) {
        ts[n] = ts[0];
        states[n++] = EM_TASK_FINISHED;
    }
    em_msg_update u[9];
    ember_buf b[9];
    for (int k = 0; k < n; k++) {
        b[k] = ember_buf_heap();
        u[k] = update_for(&ts[k], states[k], &b[k]);
        if (states[k] == EM_TASK_FINISHED && k < first)
            note_finished(c, &ts[k]);
    }
    if (n > 0)
        h_send_updates(h, e, u, (size_t)n);
    for (int k = 0; k < n; k++)
        ember_buf_release(&b[k]);
}

static int random_live_exec(chaos *c)
{
    int live[H_MAX_EXECS], n = 0;
    for (int e = 0; e < c->h->nexecs; e++)
        if (exec_live(c, e))
            live[n++] = e;
    return n ? live[rnd(c, (uint32_t)n)] : -1;
}

static void act_garbage(chaos *c)
{
    harness *h = c->h;
    int e = random_live_exec(c);
    if (chance(c, 10) || e < 0)
        e = (int)rnd(c, (uint32_t)h->nexecs); /* maybe a closed one */
    uint8_t msg[96];
    size_t len = 0;
    ember_buf b = ember_buf_heap();
    switch (rnd(c, 8)) {
    case 0: /* noise */
        len = rnd(c, sizeof msg);
        for (size_t k = 0; k < len; k++)
            msg[k] = (uint8_t)rnd(c, 256);
        h_send_raw(h, e, msg, len);
        break;
    case 1: /* a good header, then noise */
        memcpy(msg, "EMSG\x01", 5);
        msg[5] = (uint8_t)rnd(c, 12);
        len = 6 + rnd(c, 40);
        for (size_t k = 6; k < len; k++)
            msg[k] = (uint8_t)rnd(c, 256);
        h_send_raw(h, e, msg, len);
        break;
    case 2: { /* a real update, cut short */
        int i = pick_running(c);
        if (i < 0)
            break;
        em_msg_batch batch;
        em_msg_update u = update_for(&h->running[i], EM_TASK_FINISHED, &b);
        ember_buf m = ember_buf_heap();
        assert_int_equal(em_msg_status_begin(&batch, &m), EMBER_OK);
        assert_int_equal(em_msg_status_add(&batch, &u), EMBER_OK);
        assert_int_equal(em_msg_batch_finish(&batch), EMBER_OK);
        h_send_raw(h, h->running[i].exec, m.data, 1 + rnd(c, (uint32_t)
                                                              m.len - 1));
        ember_buf_release(&m);
        break;
    }
    case 3: { /* an update for a task that never was */
        h_task t = {.t = {.task_id = (UINT64_C(1) << 40) + rnd(c, 1000),
                          .partition = 0}};
        em_msg_update u = update_for(&t, EM_TASK_FINISHED, &b);
        h_send_updates(h, e, &u, 1);
        break;
    }
    case 4: { /* an update from the wrong executor */
        int i = pick_running(c);
        if (i < 0)
            break;
        int other = random_live_exec(c);
        if (other < 0 || other == h->running[i].exec)
            break;
        em_msg_update u = update_for(&h->running[i], EM_TASK_FINISHED, &b);
        h_send_updates(h, other, &u, 1);
        break;
    }
    case 5: { /* a stale update for a task already reported */
        int n = c->nold < 16 ? c->nold : 16;
        if (n == 0)
            break;
        h_task t = c->old[rnd(c, (uint32_t)n)];
        if (!exec_live(c, t.exec))
            break;
        em_msg_update u = update_for(&t, chance(c, 50) ? EM_TASK_FINISHED
                                                        : EM_TASK_KILLED,
                                     &b);
        h_send_updates(h, t.exec, &u, 1);
        break;
    }
    case 6: { /* REGISTER again on a registered connection */
        em_msg_register reg = {
            .executor_id = {(const uint8_t *)h->execs[e].id,
                            strlen(h->execs[e].id)},
            .host = {(const uint8_t *)"host-x", 6},
            .endpoint = {(const uint8_t *)"inproc://none", 13},
            .slots = 1 + rnd(c, 4), .pid = 1};
        assert_int_equal(em_msg_encode_register(&b, &reg), EMBER_OK);
        h_send_raw(h, e, b.data, b.len);
        break;
    }
    default: { /* a commit ask that does not match its task */
        int i = pick_running(c);
        if (i < 0)
            break;
        h_task t = h->running[i];
        switch (rnd(c, 3)) {
        case 0: t.t.attempt++; break;
        case 1: t.t.stage_attempt++; break;
        default: t.t.partition++; break;
        }
        int allowed = h->commit_allowed;
        h_commit_ask(h, &t);
        if (h->commit_allowed != allowed)
            violation("commit allowed to a mismatched ask for task %llu",
                      (unsigned long long)t.t.task_id);
        break;
    }
    }
    ember_buf_release(&b);
}

static void act_add_exec(chaos *c)
{
    if (c->h->nexecs >= C_MAX_EXECS)
        return;
    char host[16];
    snprintf(host, sizeof host, "host-%u", rnd(c, 3));
    h_exec_add(c->h, host, 1 + rnd(c, 4));
}

static void drop_inflight_of(chaos *c, int e)
{
    for (int k = c->ninflight; k-- > 0;)
        if (c->inflight[k].t.exec == e)
            c->inflight[k] = c->inflight[--c->ninflight];
}

static void act_kill_exec(chaos *c)
{
    int e = random_live_exec(c);
    /* Keep one alive, most of the time. */
    if (e < 0 || (live_execs(c) == 1 && !chance(c, 10)))
        return;
    drop_inflight_of(c, e);
    if (chance(c, 50))
        h_exec_kill(c->h, e);
    else
        h_exec_close(c->h, e);
}

static void act_cancel(chaos *c)
{
    harness *h = c->h;
    if (chance(c, 70)) {
        uint64_t id = c->njobs ? c->jobs[rnd(c, (uint32_t)c->njobs)].id
                               : 12345;
        assert_int_equal(em_kernel_cancel_job(h->k, id, "chaos"), EMBER_OK);
    } else {
        const char *g = groups[1 + rnd(c, 3)];
        assert_int_equal(em_kernel_cancel_group(h->k, h->app, g, "chaos"),
                         EMBER_OK);
    }
    h_run(h);
}

/* Every live executor says it is alive, as real ones do every few
 * seconds: the fake clock may not outrun ember.executor.heartbeatTimeout. */
static void heartbeats(chaos *c)
{
    for (int e = 0; e < c->h->nexecs; e++)
        if (exec_live(c, e))
            h_heartbeat(c->h, e);
}

static void act_advance(chaos *c)
{
    heartbeats(c);
    uint32_t kind = rnd(c, 4);
    uint64_t us = kind == 0   ? rnd(c, 1000)
                  : kind == 1 ? rnd(c, 300000)
                              : rnd(c, 2000001);
    h_advance(c->h, us);
}

static void act_commit(chaos *c)
{
    harness *h = c->h;
    h_task t;
    uint32_t n = (uint32_t)h->nrunning + (uint32_t)c->ninflight;
    if (n == 0)
        return;
    uint32_t k = rnd(c, n);
    t = k < h->nrunning ? h->running[k]
                        : c->inflight[k - h->nrunning].t;
    int allowed = h->commit_allowed, replies = h->commit_replies;
    h_commit_ask(h, &t);
    if (getenv("CHAOS_TRACE"))
        fprintf(stderr, "chaos: commit ask task %llu stage %llu.%u part %u "
                "attempt %u: %s\n", (unsigned long long)t.t.task_id,
                (unsigned long long)t.t.stage_id, t.t.stage_attempt,
                t.t.partition, t.t.attempt,
                h->commit_allowed != allowed ? "allowed" : "denied");
    if (h->commit_replies != replies + 1)
        violation("commit ask of task %llu got %d replies",
                  (unsigned long long)t.t.task_id,
                  h->commit_replies - replies);
    if (h->commit_allowed == allowed)
        return;
    int o = find_owner(c, t.t.stage_id, t.t.partition);
    if (o >= 0 && c->owners[o].task_id != t.t.task_id &&
        (c->owners[o].finished || task_alive(c, c->owners[o].task_id)))
        violation("stage %llu partition %u: task %llu may commit, but "
                  "task %llu %s the commit",
                  (unsigned long long)t.t.stage_id, t.t.partition,
                  (unsigned long long)t.t.task_id,
                  (unsigned long long)c->owners[o].task_id,
                  c->owners[o].finished ? "finished after winning"
                                        : "still holds");
    if (o < 0) {
        if (c->nowners == C_MAX_OWNERS)
            return;
        o = c->nowners++;
    }
    c->owners[o] = (owner){.stage = t.t.stage_id,
                           .partition = t.t.partition,
                           .task_id = t.t.task_id};
}

typedef void (*action_fn)(chaos *c);
static const action_fn action_fns[NACTIONS] = {
    act_submit, act_finish, act_fail, act_fetch_fail, act_bad_result,
    act_take, act_deliver, act_batch, act_garbage, act_add_exec,
    act_kill_exec, act_cancel, act_advance, act_commit};

/* ------------------------------------------------------------- a seed */

static const char *const ALLOC_XML =
    "<?xml version=\"1.0\"?>\n"
    "<allocations>\n"
    "  <pool name=\"heavy\"><schedulingMode>FAIR</schedulingMode>"
    "<weight>2</weight><minShare>1</minShare></pool>\n"
    "  <pool name=\"light\"><schedulingMode>FIFO</schedulingMode>"
    "<weight>1</weight></pool>\n"
    "  <pool name=\"capped\"><maxShare>1</maxShare></pool>\n"
    "  <pool name=\"team\"><schedulingMode>FAIR</schedulingMode>"
    "<maxShare>2</maxShare>\n"
    "    <pool name=\"team-a\"/>\n"
    "    <pool name=\"team-b\"><minShare>1</minShare></pool>\n"
    "  </pool>\n"
    "</allocations>\n";

static harness *seed_harness(chaos *c)
{
    char conf[12][160];
    const char *argv[13];
    int n = 0;
    char alloc_path[64] = "";
    c->fair = chance(c, 50);
    c->spec = chance(c, 35);
    if (c->fair) {
        snprintf(conf[n++], sizeof conf[0], "ember.scheduler.mode=FAIR");
        if (chance(c, 60)) {
            snprintf(alloc_path, sizeof alloc_path,
                     "/tmp/ember-chaos-alloc-XXXXXX");
            int fd = mkstemp(alloc_path);
            assert_true(fd >= 0);
            FILE *f = fdopen(fd, "w");
            assert_non_null(f);
            fputs(ALLOC_XML, f);
            fclose(f);
            snprintf(conf[n++], sizeof conf[0],
                     "ember.scheduler.allocation.file=%s", alloc_path);
            c->alloc = 1;
        }
    }
    if (c->spec) {
        snprintf(conf[n++], sizeof conf[0], "ember.speculation=true");
        snprintf(conf[n++], sizeof conf[0],
                 "ember.speculation.quantile=0.5");
        snprintf(conf[n++], sizeof conf[0],
                 "ember.speculation.minTaskRuntime=100ms");
        snprintf(conf[n++], sizeof conf[0],
                 "ember.speculation.interval=100ms");
    }
    snprintf(conf[n++], sizeof conf[0], "ember.task.maxFailures=%u",
             1 + rnd(c, 4));
    snprintf(conf[n++], sizeof conf[0],
             "ember.stage.maxConsecutiveAttempts=%u", 1 + rnd(c, 4));
    static const char *const waits[] = {"0ms", "100ms", "3s"};
    snprintf(conf[n++], sizeof conf[0], "ember.locality.wait=%s",
             waits[rnd(c, 3)]);
    if (chance(c, 30))
        snprintf(conf[n++], sizeof conf[0],
                 "ember.stage.resubmitDelay=50ms");
    if (chance(c, 10))
        snprintf(conf[n++], sizeof conf[0], "ember.driver.maxResultSize=5b");
    for (int k = 0; k < n; k++)
        argv[k] = conf[k];
    argv[n] = NULL;
    harness *h = h_new(argv);
    if (alloc_path[0])
        unlink(alloc_path);
    return h;
}

/* Every running task finishes, every held-back status arrives, the clock
 * moves on, until every job ended and nothing runs. */
static void drain(chaos *c)
{
    harness *h = c->h;
    while (c->ninflight)
        deliver(c, 0);
    if (live_execs(c) == 0)
        h_exec_add(h, "host-0", 2);
    check_invariants(c);
    for (int round = 0;; round++) {
        int open = 0;
        for (int k = 0; k < c->njobs; k++)
            open += !c->jobs[k].ended;
        if (open == 0 && h->nrunning == 0)
            break;
        if (round == DRAIN_ROUNDS)
            violation("%d jobs and %zu tasks still running after %d "
                      "rounds of finishing everything", open, h->nrunning,
                      DRAIN_ROUNDS);
        for (size_t n = h->nrunning; n > 0 && h->nrunning > 0; n--) {
            note_finished(c, &h->running[0]);
            h_finish(h, 0);
        }
        heartbeats(c);
        h_advance(h, 300000);
        check_invariants(c);
    }
}

static void check_end(chaos *c)
{
    harness *h = c->h;
    int ok = 0;
    for (int k = 0; k < c->njobs; k++) {
        cjob *j = &c->jobs[k];
        if (!j->ended)
            violation("job %llu never ended", (unsigned long long)j->id);
        for (uint32_t i = 0; i < j->nparts; i++)
            if (j->got[i] > 1 || (j->status == EMBER_OK && j->got[i] != 1))
                violation("job %llu ended %d with %u results for "
                          "partition %u", (unsigned long long)j->id,
                          j->status, j->got[i], j->parts[i]);
        ok += j->status == EMBER_OK;
    }
    em_kernel_stats st;
    em_kernel_get_stats(h->k, &st);
    if (st.active_jobs != 0)
        violation("%u jobs still active", st.active_jobs);
    if (st.free_slots != st.total_slots)
        violation("%llu of %llu slots busy with nothing running",
                  (unsigned long long)(st.total_slots - st.free_slots),
                  (unsigned long long)st.total_slots);
    int64_t running =
        h_sql_int(h, "SELECT COUNT(*) FROM jobs WHERE status='RUNNING'");
    int64_t succeeded =
        h_sql_int(h, "SELECT COUNT(*) FROM jobs WHERE status='SUCCEEDED'");
    if (running != 0)
        violation("the state store has %lld jobs RUNNING",
                  (long long)running);
    if (succeeded != ok)
        violation("the state store has %lld jobs SUCCEEDED, %d ended OK",
                  (long long)succeeded, ok);
    if (st.jobs_succeeded != (uint64_t)ok)
        violation("stats count %llu jobs succeeded, %d ended OK",
                  (unsigned long long)st.jobs_succeeded, ok);
    int64_t tasks_running =
        h_sql_int(h, "SELECT COUNT(*) FROM tasks WHERE status='RUNNING'");
    if (tasks_running != 0)
        violation("the state store has %lld tasks RUNNING",
                  (long long)tasks_running);
    int64_t stages_running = h_sql_int(
        h, "SELECT COUNT(*) FROM stage_attempts WHERE status='RUNNING'");
    if (stages_running != 0)
        violation("the state store has %lld stage attempts RUNNING",
                  (long long)stages_running);
    int64_t active = h_sql_int(
        h, "SELECT COUNT(*) FROM executors WHERE status='ACTIVE'");
    if (active != live_execs(c))
        violation("the state store has %lld executors ACTIVE, %d are "
                  "alive", (long long)active, live_execs(c));
    int64_t stray = h_sql_int(
        h, "SELECT COUNT(*) FROM map_outputs WHERE executor_id NOT IN "
           "(SELECT executor_id FROM executors WHERE status='ACTIVE')");
    if (stray != 0)
        violation("the state store has %lld map outputs on executors "
                  "that are gone", (long long)stray);
    for (int k = 0; k < h->nshuffles; k++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM map_outputs WHERE "
                 "shuffle_id=%llu", (unsigned long long)h->shuffle_ids[k]);
        int64_t rows = h_sql_int(h, sql);
        int64_t avail = em_kernel_shuffle_available(h->k, h->shuffle_ids[k]);
        if (rows != avail)
            violation("shuffle %llu: %lld map outputs in the state store, "
                      "%lld in the kernel",
                      (unsigned long long)h->shuffle_ids[k], (long long)rows,
                      (long long)avail);
    }
    int64_t starts = h_sql_int(
        h, "SELECT COUNT(*) FROM events WHERE kind='job_start'");
    int64_t ends = h_sql_int(
        h, "SELECT COUNT(*) FROM events WHERE kind='job_end'");
    if (starts != ends)
        violation("the history has %lld job_start and %lld job_end events",
                  (long long)starts, (long long)ends);
}

static void run_seed(unsigned seed, int steps, uint64_t *totals)
{
    chaos *c = calloc(1, sizeof *c);
    assert_non_null(c);
    cur_seed = seed;
    cur_step = -1;
    in_walk = 1;
    c->rng = (seed + 1) * UINT64_C(0x9E3779B97F4A7C15);
    for (int k = 0; k < 4; k++)
        (void)rng_next(&c->rng);
    c->h = seed_harness(c);
    c->h->run_turn_limit = 20000; /* a livelock fails, not hangs */
    int first = 1 + (int)rnd(c, 3);
    for (int k = 0; k < first; k++) {
        char host[16];
        snprintf(host, sizeof host, "host-%u", rnd(c, 3));
        h_exec_add(c->h, host, 1 + rnd(c, 4));
    }
    uint32_t total = 0;
    for (int a = 0; a < NACTIONS; a++)
        total += action_weights[a];
    for (cur_step = 0; cur_step < steps; cur_step++) {
        uint32_t r = rnd(c, total);
        int a = 0;
        while (r >= action_weights[a])
            r -= action_weights[a++];
        c->actions[a]++;
        if (getenv("CHAOS_TRACE"))
            fprintf(stderr, "chaos: step %d: %s (running %zu)\n", cur_step,
                    action_names[a], c->h->nrunning);
        action_fns[a](c);
        check_invariants(c);
    }
    cur_step = steps; /* the drain */
    drain(c);
    check_end(c);
    for (int a = 0; a < NACTIONS; a++)
        totals[a] += c->actions[a];
    for (int k = 0; k < c->njobs; k++)
        totals[NACTIONS + (c->jobs[k].status == EMBER_OK ? 0
                           : c->jobs[k].status == EMBER_ECANCELED ? 1
                                                                   : 2)]++;
    em_kernel_stats st;
    em_kernel_get_stats(c->h->k, &st);
    totals[NACTIONS + 3] += st.tasks_launched;
    totals[NACTIONS + 4] += st.tasks_fetch_failed;
    totals[NACTIONS + 5] += st.speculative_launched;
    h_free(c->h);
    free(c);
    in_walk = 0;
}

static unsigned env_uint(const char *name, unsigned dflt)
{
    const char *v = getenv(name);
    return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

static void random_walk_keeps_the_kernel_consistent(void **state)
{
    (void)state;
    build_variants();
    unsigned first = env_uint("CHAOS_FIRST", 0);
    unsigned seeds = env_uint("CHAOS_SEEDS", SEEDS);
    int steps = (int)env_uint("CHAOS_STEPS", STEPS);
    uint64_t totals[NACTIONS + 6] = {0};
    for (unsigned s = first; s < first + seeds; s++)
        run_seed(s, steps, totals);
    if (getenv("CHAOS_VERBOSE")) {
        for (int a = 0; a < NACTIONS; a++)
            fprintf(stderr, "%s=%llu ", action_names[a],
                    (unsigned long long)totals[a]);
        fprintf(stderr, "\njobs ok=%llu cancelled=%llu failed=%llu "
                "tasks=%llu fetch_failed=%llu speculative=%llu\n",
                (unsigned long long)totals[NACTIONS],
                (unsigned long long)totals[NACTIONS + 1],
                (unsigned long long)totals[NACTIONS + 2],
                (unsigned long long)totals[NACTIONS + 3],
                (unsigned long long)totals[NACTIONS + 4],
                (unsigned long long)totals[NACTIONS + 5]);
    }
}


/* ---------------------------- the bugs the walk found, reproduced small */

/* More than ember.stage.resubmitDelay (200 ms by default). */
#define RESUBMIT_DELAY_US 250000

/* Four partitions that all prefer host-a. */
#define PLAN_ON_HOST_A                                                      \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4,\"args\":"         \
    "{\"locations\":[[\"host-a\"],[\"host-a\"],[\"host-a\"],"               \
    "[\"host-a\"]]}},"                                                      \
    "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"std.identity\"]}]}"

/* One narrow task, with ids of its own. */
#define PLAN_ONE_TASK                                                       \
    "{\"ember_plan\":1,\"datasets\":["                                      \
    "{\"id\":20,\"op\":\"parallelize\",\"partitions\":1},"                  \
    "{\"id\":21,\"op\":\"map\",\"parents\":[20],"                           \
    "\"fns\":[\"std.identity\"]}]}"

/*
 * Walk seeds 103, 1082 and 1339: a task set in a pool at its maxShare is
 * never offered slots, so its locality clock never moves; while another
 * set was held back for locality, em_tsched_schedule armed the locality
 * timer for the capped set's deadline, already past: a 0 ms timer every
 * turn. On the fake clock the loop never went idle; on a real one it spun
 * a core for up to ember.locality.wait.
 */
static void capped_pool_with_locality_wait_does_not_spin(void **state)
{
    (void)state;
    char path[64] = "/tmp/ember-chaos-alloc-XXXXXX", conf_file[128];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("<?xml version=\"1.0\"?>\n<allocations>\n"
          "  <pool name=\"capped\"><maxShare>1</maxShare></pool>\n"
          "</allocations>\n", f);
    fclose(f);
    snprintf(conf_file, sizeof conf_file,
             "ember.scheduler.allocation.file=%s", path);
    const char *conf[] = {"ember.scheduler.mode=FAIR", conf_file, NULL};
    harness *h = h_new(conf);
    unlink(path);
    h->run_turn_limit = 1000;
    h_exec_add(h, "host-a", 1);
    h_exec_add(h, "host-b", 1);
    /* A: one task runs on host-a, three wait in the capped pool. */
    int a = h_submit(h, PLAN_ON_HOST_A, 1, "capped", NULL);
    assert_int_equal(h->nrunning, 1);
    h_advance(h, 5000000);
    /* host-b's slot was just busy, so it is not idle for the whole wait. */
    h_submit(h, PLAN_ONE_TASK, 21, NULL, NULL);
    assert_int_equal(h->nrunning, 2);
    h_finish(h, 1);
    /* B wants host-a too and is held back on host-b: the loop must go
     * idle (h_run fails the test after 1000 busy turns). */
    int b = h_submit(h, PLAN_ON_HOST_A, 1, NULL, NULL);
    assert_int_equal(h->nrunning, 1);
    /* After the wait, host-b's idle slot takes B's tasks. */
    h_advance(h, 3000000);
    assert_int_equal(h->nrunning, 2);
    h_finish_all(h);
    assert_int_equal(h->jobs[a].status, EMBER_OK);
    assert_int_equal(h->jobs[b].status, EMBER_OK);
    h_free(h);
}

/*
 * About half of the walk's seeds: rollback_downstream (dag/recovery.c)
 * stopped a running stage downstream of a rerun indeterminate shuffle
 * without ending its attempt in the state store, which showed it RUNNING
 * forever.
 */
static void rollback_ends_the_rolled_back_attempt_in_the_store(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 2);
    int e1 = h_exec_add(h, "host-b", 2);
    int j = h_submit(h, PLAN_TWO_STAGE_DET("indeterminate"), 1, NULL, NULL);
    assert_int_equal(h->nrunning, 4);
    uint64_t map = h->running[0].t.stage_id;
    h_finish_tasks_of(h, map);
    assert_int_equal(h->nrunning, 2); /* the result stage runs */
    /* host-b held map output of the indeterminate stage: all of it
     * reruns, and the running result stage rolls back. */
    h_exec_kill(h, e1);
    h_advance(h, RESUBMIT_DELAY_US);
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM stage_attempts "
                                  "WHERE status='RUNNING'"), 0);
    h_free(h);
}

/* PLAN_TWO_STAGE on one executor: the result stage's attempt 0 fails a
 * fetch on partition 0 while partition 1 runs on; after the resubmit the
 * map stage reruns and attempt 1 runs both partitions. Returns the result
 * stage's id. */
static uint64_t two_result_attempts(harness *h, int *job)
{
    *job = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t map = h->running[0].t.stage_id;
    h_finish_tasks_of(h, map);
    uint64_t rs = h->running[0].t.stage_id;
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    h_advance(h, RESUBMIT_DELAY_US);
    h_finish_tasks_of(h, map);
    assert_true(h_find_attempt(h, rs, 0, 1) >= 0);
    assert_true(h_find_attempt(h, rs, 1, 1) >= 0);
    assert_true(h_find_attempt(h, rs, 1, 0) >= 0); /* the failed attempt's */
    return rs;
}

/*
 * A few seeds in a hundred: when a job's last result came from an older,
 * failed attempt's task, ev_task_succeeded (dag/dag_scheduler.c) ended
 * only the finishing task's attempt in the state store, and the newest
 * attempt stayed RUNNING forever.
 */
static void job_finished_by_an_old_attempt_ends_the_new_one_in_store(
    void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j;
    uint64_t rs = two_result_attempts(h, &j);
    h_finish(h, h_must_find(h, rs, 0, 1));
    h_finish(h, h_must_find(h, rs, 1, 0)); /* the last result, from att. 0 */
    assert_true(h->jobs[j].ended);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    assert_int_equal(h->nrunning, 0);
    assert_int_equal(h_sql_int(h, "SELECT COUNT(*) FROM stage_attempts "
                                  "WHERE status='RUNNING'"), 0);
    h_free(h);
}

/*
 * Found reading the code for the walk's commit check: a task that won the
 * commit and then failed a fetch kept its claim (on_fetch_failed did not
 * release it, unlike every other unsuccessful end), so no later attempt of
 * that partition could ever commit.
 */
static void fetch_failed_committer_releases_its_claim(void **state)
{
    (void)state;
    harness *h = h_new(NULL);
    h_exec_add(h, "host-a", 8);
    int j = h_submit(h, PLAN_TWO_STAGE, 1, NULL, NULL);
    uint64_t map = h->running[0].t.stage_id;
    h_finish_tasks_of(h, map);
    uint64_t rs = h->running[0].t.stage_id;
    h_task r0 = h->running[h_must_find(h, rs, 0, 0)];
    h_commit_ask(h, &r0);
    assert_int_equal(h->commit_allowed, 1);
    h_fetch_fail(h, h_must_find(h, rs, 0, 0), 1, 0, "exec-0");
    h_advance(h, RESUBMIT_DELAY_US);
    h_finish_tasks_of(h, map);
    h_task again = h->running[h_must_find(h, rs, 0, 1)];
    h_commit_ask(h, &again);
    assert_int_equal(h->commit_replies, 2);
    assert_int_equal(h->commit_allowed, 2); /* the failed one let go */
    h_finish_all(h);
    assert_int_equal(h->jobs[j].status, EMBER_OK);
    h_free(h);
}

/* Runs after a failed test too: says where the walk was. */
static int report_position(void **state)
{
    (void)state;
    if (in_walk)
        fprintf(stderr, "chaos: stopped at seed %u step %d\n", cur_seed,
                cur_step);
    in_walk = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(random_walk_keeps_the_kernel_consistent,
                                  report_position),
        cmocka_unit_test(capped_pool_with_locality_wait_does_not_spin),
        cmocka_unit_test(rollback_ends_the_rolled_back_attempt_in_the_store),
        cmocka_unit_test(
            job_finished_by_an_old_attempt_ends_the_new_one_in_store),
        cmocka_unit_test(fetch_failed_committer_releases_its_claim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
