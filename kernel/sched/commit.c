/*
 * sched/commit.c — the output-commit arbiter (Spark's
 * OutputCommitCoordinator, "do better" 9): per (stage, partition), across
 * stage attempts, the first attempt to ask may commit and every other is
 * refused until that one ends without success; attempts of a task set that
 * failed, finished or was cancelled are refused.
 */
#include "sched/tsched_internal.h"

#include <stdint.h>

#include "msg/msg.h"

/* The owner of a partition's commit, packed: stage attempt and task
 * attempt, each plus one, so that no owner is 0 (NULL). */
static void *owner_of(uint32_t stage_attempt, uint32_t attempt)
{
    return (void *)(uintptr_t)(((uint64_t)stage_attempt + 1) << 32 |
                               ((uint64_t)attempt + 1));
}

/* A failed or lost attempt gives up its claim to commit, if it had one. */
void em_tsched_commit_release(em_tsched *ts, const em_taskset *s, uint32_t i,
                           uint32_t attempt)
{
    em_u64map *parts = em_u64map_get(&ts->commits, s->stage_id);
    void *me = owner_of(s->stage_attempt, attempt);
    if (parts && em_u64map_get(parts, s->partitions[i]) == me)
        em_u64map_del(parts, s->partitions[i]);
}

void em_tsched_commit_ask(em_tsched *ts, em_exec *e,
                          const em_msg_commit_ask *ask)
{
    em_task *t = em_u64map_get(&ts->tasks, ask->task_id);
    uint8_t allowed = 0;
    /* Spark's OutputCommitCoordinator, per (stage, partition) across all
     * attempts: the first attempt to ask owns the commit until it fails;
     * attempts of a failed, finished or cancelled set never commit. */
    if (t && t->exec == e && t->set->stage_id == ask->stage_id &&
        t->set->stage_attempt == ask->stage_attempt &&
        t->attempt == ask->attempt &&
        t->set->partitions[t->index] == ask->partition && !t->set->zombie) {
        em_taskset *s = t->set;
        em_u64map *parts = em_u64map_get(&ts->commits, s->stage_id);
        if (!parts && (parts = calloc(1, sizeof *parts)) &&
            em_u64map_put(&ts->commits, s->stage_id, parts) != EMBER_OK) {
            free(parts);
            parts = NULL;
        }
        void *me = owner_of(s->stage_attempt, t->attempt);
        if (parts) {
            void *owner = em_u64map_get(parts, ask->partition);
            if (!owner && em_u64map_put(parts, ask->partition, me) ==
                              EMBER_OK)
                owner = me;
            allowed = owner == me;
        }
    }
    ember_buf b = ember_buf_heap();
    em_msg_commit_reply r = {.task_id = ask->task_id, .allowed = allowed};
    if (em_msg_encode_commit_reply(&b, &r) == EMBER_OK)
        e->send(e->send_ctx, b.data, b.len);
    ember_buf_release(&b);
}

void em_tsched_stage_done(em_tsched *ts, uint64_t stage_id)
{
    em_u64map *parts = em_u64map_del(&ts->commits, stage_id);
    if (parts) {
        em_u64map_free(parts);
        free(parts);
    }
}
