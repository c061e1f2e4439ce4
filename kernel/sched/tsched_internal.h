/*
 * sched/tsched_internal.h — the task scheduler's own structures, shared by
 * its files (not a public contract):
 *   task_scheduler.c  executors, task sets, offers and locality, launches,
 *                     status updates, failures, kills
 *   commit.c          the output-commit arbiter (COMMIT_ASK)
 *   speculation.c     finding slow tasks and picking copies to launch
 * Everything here runs on the kernel's loop thread.
 */
#ifndef EMBER_KERNEL_SCHED_TSCHED_INTERNAL_H
#define EMBER_KERNEL_SCHED_TSCHED_INTERNAL_H

#include <stdlib.h>

#include "sched/task_scheduler.h"
#include "util/map.h"

typedef struct idxvec {
    uint32_t *v;
    uint32_t n, cap;
} idxvec;

typedef struct em_task {
    uint64_t id;
    em_taskset *set;
    em_exec *exec;
    uint32_t index, attempt;
    uint64_t launch_us;
    uint8_t speculative, kill_sent;
    struct em_task *exec_prev, *exec_next; /* the executor's running list */
    struct em_task *idx_next;              /* other attempts of the index */
} em_task;

struct em_exec {
    uint32_t no;
    char *id, *host;
    char *endpoint; /* where it serves shuffle blocks ("" if nowhere) */
    uint64_t conn;
    em_send_fn send;
    void *send_ctx;
    uint32_t slots, free;
    uint64_t idle_since_us;    /* last launch or last 0 -> free transition */
    uint64_t blocked_since_us; /* free slots held back by locality, or 0 */
    uint64_t last_seen_us;
    em_task *running;
    em_u64map stages_sent;     /* stage key -> (void *)1 */
    ember_buf launch_buf, kill_buf;
    em_msg_batch launch, kill;
    int launch_open, kill_open, queued; /* queued: on ts->outbox */
    char kill_reason[128];
};

struct em_taskset {
    em_pool_entry entry; /* first: entry pointer == set pointer */
    char name[64];
    void *owner;
    uint64_t stage_id, job_id;
    uint32_t stage_attempt;
    int is_map;
    uint32_t n;
    uint32_t *partitions;
    uint8_t *succeeded, *nrunning, *spec_flag;
    uint16_t *failures;
    uint32_t *next_attempt;
    em_task **running;
    uint32_t num_succeeded, idle_indices;
    int zombie, reaped;
    /* Pending queues. */
    idxvec all, nopref, spec;
    em_strmap by_exec, by_host; /* -> idxvec * */
    uint32_t *pref_off;         /* n + 1 offsets into pref_vecs, or NULL */
    idxvec **pref_vecs;
    /* Delay scheduling. */
    em_locality levels[3];
    uint32_t nlevels, cur_level;
    uint64_t last_launch_us;
    /* Speculation: successful run times. */
    uint64_t *durations;
    uint32_t ndurations;
    uint8_t *plan;
    size_t plan_len;
    char *last_error;
    char *desc; /* em_taskset_spec.desc (copied), or NULL */
    struct em_taskset *prev, *next;
};

struct em_tsched {
    em_loop *loop;
    em_pool_tree *pools;
    em_store *store;
    em_tsched_conf conf;
    em_tsched_events ev;
    uint64_t next_task_id;
    uint32_t next_exec_no;
    em_u64map tasks;     /* task id -> em_task */
    em_u64map by_conn;   /* conn -> em_exec */
    em_strmap by_id;     /* executor id -> em_exec */
    em_exec **execs;     /* live executors */
    uint32_t nexecs, cap_execs;
    em_exec **outbox;    /* executors with queued batches */
    uint32_t noutbox, cap_outbox;
    em_u64map commits;   /* stage id -> em_u64map: partition -> owner */
    em_taskset *sets;    /* all task sets, newest first */
    uint32_t nsets;
    int dirty;
    uint64_t locality_timer, spec_timer, heartbeat_timer;
    uint64_t locality_deadline; /* when locality_timer fires */
    em_tsched_stats stats;
};

/* ---------------------------------------------------------------- util */

/* Appends x to v, growing it; -1 when out of memory (v unchanged). */
static inline int em_idxvec_push(idxvec *v, uint32_t x)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        uint32_t *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

/* Appends an executor event to the store's history, JSON-escaped. */

/* ---- commit.c ---- */

/* A failed, lost or killed attempt gives up its claim to commit, if it had
 * one (Spark's OutputCommitCoordinator clears it on any end but success). */
void em_tsched_commit_release(em_tsched *ts, const em_taskset *s, uint32_t i,
                              uint32_t attempt);

/* ---- speculation.c ---- */

/* A speculative copy to launch on e: an index of s running once, not yet
 * done, not on e. Returns 1 with *out set, else 0. */
int em_tsched_pop_speculative(em_taskset *s, const em_exec *e, uint32_t *out);
/* The periodic check (ember.speculation.interval) that marks slow tasks. */
int64_t em_tsched_speculation_tick(em_loop *loop, uint64_t id, void *ctx);

#endif /* EMBER_KERNEL_SCHED_TSCHED_INTERNAL_H */
