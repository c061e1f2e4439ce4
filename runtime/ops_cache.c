/*
 * runtime/ops_cache.c — persisted datasets inside a task (SEMANTICS S19–
 * S21). A partition the executor's block manager holds is served from it
 * in batches and nothing below it is computed; one it does not hold is
 * computed as usual, unrolled while its batches stream through, and stored
 * as one block once the whole partition went by. A consumer that stops
 * early (take) or a task that fails stores nothing: all or nothing.
 * Whatever the block manager moves on the way — blocks its unroll
 * reservations evicted, a block read from disk and moved back to memory,
 * and what that evicted — goes into the task's block report.
 */
#include "runtime/ops_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "runtime/block_mgr.h"
#include "runtime/block_report.h"
#include "util/bigbuf.h"

/* Per operator state. */
typedef struct cached {
    em_block_unroll *unroll; /* miss: what is being unrolled, or NULL */
    ember_batch_cursor cur;  /* hit: the next record of the block */
    uint64_t count;          /* hit: the block's records */
} cached;

uint64_t em_op_cache_key(uint64_t app, uint64_t dataset)
{
    /* dataset ids are per application; the key keeps applications apart
     * in one executor (and in the off-heap tier, across executors) */
    return app << 32 | (dataset & 0xffffffffu);
}

/* A hit: the next batch of about batch_bytes from the block in o->buf. */
static ember_status serve_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    cached *c = o->extra;
    ember_status s = em_op_check_cancel(o, err);
    if (s != EMBER_OK)
        return s;
    if (c->cur.p >= c->cur.end)
        return EMBER_END;
    const uint8_t *start = c->cur.p, *r;
    size_t rl;
    uint64_t n = 0;
    while ((size_t)(c->cur.p - start) < o->env->batch_bytes &&
           ember_batch_next(&c->cur, &r, &rl) == EMBER_OK)
        n++;
    *b = (ember_batch){start, (size_t)(c->cur.p - start), n};
    return EMBER_OK;
}

/* A hit, whole: the block's buffer itself (see em_opnode.take). */
static ember_status serve_take(em_opnode *o, ember_buf *dst, uint64_t *count)
{
    cached *c = o->extra;
    if (c->cur.p != o->buf.data)
        return EMBER_EUNSUPPORTED;
    ember_buf_release(dst);
    *dst = o->buf;
    *count = c->count;
    o->buf = em_bigbuf();
    c->cur.p = c->cur.end = NULL;
    return EMBER_OK;
}

/* A miss: the computed batches, each also handed to the unroll. */
static ember_status unroll_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    cached *c = o->extra;
    ember_status s = o->in[0]->next(o->in[0], b, err);
    if (s == EMBER_OK && c->unroll) {
        em_block_unroll_append(c->unroll, b);
    } else if (s == EMBER_END && c->unroll) {
        em_block_put_result res;
        ember_error e = {0};
        em_block_unroll *u = c->unroll;
        c->unroll = NULL;
        if (em_block_unroll_finish(u, &res, &e) != EMBER_OK)
            em_log(EMBER_LOG_WARN, "blocks", "dataset %" PRIu64 " partition "
                   "%" PRIu32 " not cached: %s", o->node->id, o->partition,
                   e.msg);
        /* also on failure: res holds what the unroll's reservations
         * evicted (and no stored block) */
        em_block_report_note_put(o->env->block_report, o->env->app_id,
                                 o->node->id, o->partition, &res);
        em_block_put_result_release(&res);
    }
    return s;
}

static void cached_close(em_opnode *o)
{
    cached *c = o->extra;
    if (c && c->unroll) {
        /* stopped early or failed: nothing stored, but what the unroll's
         * reservations evicted is gone all the same */
        em_block_put_result res;
        em_block_unroll_cancel(c->unroll, &res);
        c->unroll = NULL;
        em_block_report_note_put(o->env->block_report, o->env->app_id,
                                 o->node->id, o->partition, &res);
        em_block_put_result_release(&res);
    }
    free(c);
    o->extra = NULL;
}

ember_status em_op_build_cached(em_opnode **out, em_task_env *env,
                                uint32_t index, uint32_t partition,
                                uint32_t depth, ember_error *err)
{
    *out = NULL;
    const em_node *n = &env->lineage->nodes[index];
    em_storage_level level;
    ember_status s = em_storage_level_parse(n->storage, &level, err);
    if (s != EMBER_OK)
        return s;
    em_opnode *o = em_op_new(env, index, partition, depth);
    cached *c = calloc(1, sizeof *c);
    if (!o || !c) {
        em_op_free(o);
        free(c);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    o->extra = c;
    o->close = cached_close;
    uint64_t key = em_op_cache_key(env->app_id, n->id);
    uint64_t count = 0;
    ember_error ge = {0};
    /* a block can be tens of MiB: a big buffer, its pages kept between
     * tasks */
    ember_buf_release(&o->buf);
    o->buf = em_bigbuf();
    em_block_put_result moved;
    s = em_block_mgr_get_promote(env->blocks, key, partition, &o->buf,
                                 &count, &moved, &ge);
    /* a block read from disk may have moved back to memory (evicting
     * others): the kernel hears of it as of a put */
    em_block_report_note_put(env->block_report, env->app_id, n->id,
                             partition, &moved);
    em_block_put_result_release(&moved);
    if (s == EMBER_OK) {
        ember_batch all = {o->buf.data, o->buf.len, count};
        c->cur = ember_batch_cursor_of(&all);
        c->count = count;
        o->next = serve_next;
        o->take = serve_take;
        *out = o;
        return EMBER_OK;
    }
    s = em_op_build_uncached(&o->in[0], env, index, partition, depth, err);
    if (s != EMBER_OK) {
        em_op_free(o);
        return s;
    }
    o->nin = 1;
    o->next = unroll_next;
    ember_error ue = {0};
    if (em_block_unroll_begin(&c->unroll, env->blocks, key, partition, level,
                              &ue) != EMBER_OK) {
        c->unroll = NULL; /* computed, not cached (a missing tier) */
        em_log(EMBER_LOG_WARN, "blocks", "dataset %" PRIu64 " (%s) is not "
               "cached: %s", n->id, n->storage, ue.msg);
    }
    *out = o;
    return EMBER_OK;
}
