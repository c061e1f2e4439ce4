/*
 * runtime/ops_shuffle.c — the reduce side of every key operation: the
 * datasets that read a shuffle (or, for joins of co-partitioned parents,
 * read their parents' partitions directly).
 *
 * At the first batch the operator gathers its inputs: shuffle inputs are
 * read block by block — the executor's own map outputs straight from its
 * shuffle manager, the others from their executors' block servers
 * (runtime/fetch.h), at most ember.reducer.maxSizeInFlight bytes per
 * request — and narrow inputs from their parent's partition. A block that
 * cannot be had marks the task FETCH_FAILED (env->fetch_failed).
 *
 *   combining ops (reduce/fold/aggregate/combine/count_by_key, distinct)
 *       feed each block to a reduce-side combiner (runtime/combiner.h)
 *   partition_by, repartition, sample_by_key
 *       the records as they come
 *   sort_by_key, repartition_and_sort_within_partitions
 *       the records sorted by key (args.ascending false: descending)
 *   group_by_key  (k, (v1, v2, ...))
 *   cogroup       (k, ((values of input 0), (values of input 1), ...))
 *   join          (k, (v, w)) for every pair; left/right/full outer joins
 *                 put null for the missing side
 *   subtract_by_key, subtract, intersection
 *       the left records whose key (record) the right lacks; one copy of
 *       each record both sides have
 * Grouping sorts the gathered records by key (runtime/keysort.h), so keys
 * come out in byte order; values keep their order of arrival.
 */
#include "runtime/ops_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/record.h"
#include "runtime/combiner.h"
#include "runtime/fetch.h"
#include "runtime/keysort.h"
#include "runtime/partition.h"
#include "runtime/recval.h"
#include "runtime/shuffle_svc.h"
#include "runtime/sort_spill.h"
#include "util/bigbuf.h"

typedef enum kind {
    K_PASS,      /* records as they come */
    K_COMBINE,   /* a reduce-side combiner */
    K_SORT,      /* sorted by key */
    K_GROUP,     /* group_by_key */
    K_COGROUP,
    K_JOIN,
    K_LEFT,
    K_RIGHT,
    K_FULL,
    K_SUBTRACT,  /* subtract_by_key, subtract */
    K_INTERSECT
} kind;

typedef struct sh {
    kind k;
    int descending;
    em_combiner *comb;
    ember_buf in[EM_OP_MAX_INPUTS];
    uint64_t nin[EM_OP_MAX_INPUTS];
    ember_buf out;  /* the partition's output, handed out in slices */
    uint64_t nout;
    size_t pos;
    int ready;
    /* sorts: the records in output order, handed out batch by batch
     * (they point into in[]); grouping kinds hand out the groups of
     * these refs instead, a batch of groups at a time, so no copy of the
     * whole partition's output is ever made */
    em_keyref *sorted;       /* in sorted_buf */
    ember_buf sorted_buf;
    size_t nsorted, next_sorted;
    int grouping;            /* sorted holds groups to emit */
    ember_buf scratch;       /* a group's values (group, cogroup) */
    /* sorts past ember.shuffle.memory: sorted runs on disk, merged */
    em_sortspill *spill;
} sh;

static kind kind_of(const char *op)
{
    static const struct {
        const char *op;
        kind k;
    } t[] = {{"cogroup", K_COGROUP},
             {"full_outer_join", K_FULL},
             {"group_by_key", K_GROUP},
             {"intersection", K_INTERSECT},
             {"join", K_JOIN},
             {"left_outer_join", K_LEFT},
             {"partition_by", K_PASS},
             {"repartition", K_PASS},
             {"repartition_and_sort_within_partitions", K_SORT},
             {"right_outer_join", K_RIGHT},
             {"sample_by_key", K_PASS},
             {"sort_by_key", K_SORT},
             {"subtract", K_SUBTRACT},
             {"subtract_by_key", K_SUBTRACT}};
    if (em_combine_kind_of(op) != EM_COMBINE_NONE)
        return K_COMBINE;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(op, t[i].op) == 0)
            return t[i].k;
    return K_PASS;
}

/* ---- gathering ---------------------------------------------------------- */

/* Takes one batch of input i: a map task's whole shuffle block (block
 * 1) or a batch of a narrow parent (block 0). */
static ember_status consume(em_opnode *o, sh *st, uint32_t i,
                            const ember_batch *b, int block,
                            ember_error *err)
{
    if (b->count == 0)
        return EMBER_OK;
    if (st->comb) {
        /* a block holds one record per key when its map side combined;
         * a narrow parent's values may repeat keys at will */
        if (block)
            em_combiner_expect(st->comb, b->count);
        return em_combiner_add(st->comb, b, err);
    }
    if (ember_buf_append(&st->in[i], b->data, b->len) != EMBER_OK)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory gathering "
                          "the partition's records");
    st->nin[i] += b->count;
    return EMBER_OK;
}

static ember_status fetch_failed(em_opnode *o, const em_stage_input *in,
                                 uint32_t map, const char *exec,
                                 ember_status code, const char *why,
                                 ember_error *err)
{
    em_task_env *env = o->env;
    env->fetch_failed = 1;
    env->ff_shuffle = in->shuffle_id;
    env->ff_map = map;
    snprintf(env->ff_executor, sizeof env->ff_executor, "%s", exec);
    return em_op_fail(o, err, code, "cannot read map output %" PRIu32
                      " of shuffle %" PRIu64 "%s%s: %s", map, in->shuffle_id,
                      exec[0] ? " from executor " : "", exec, why);
}

static ember_status sort_and_emit(em_opnode *o, sh *st, ember_error *err);

/* A sort past ember.shuffle.memory: what it holds becomes a sorted run on
 * disk and the gathering goes on. */
static ember_status spill_now(em_opnode *o, sh *st, ember_error *err)
{
    ember_status s = EMBER_OK;
    if (!st->spill)
        s = em_sortspill_open(&st->spill,
                              em_shuffle_svc_dir(o->env->shuffle),
                              st->descending, err);
    if (s == EMBER_OK)
        s = sort_and_emit(o, st, err);
    st->in[0].len = 0;
    st->nin[0] = 0;
    return s;
}

/* Whether a sort's gathered records should go to disk now. */
static int over_budget(const em_opnode *o, const sh *st)
{
    return st->k == K_SORT && o->env->shuffle &&
           st->in[0].len > em_shuffle_svc_memory(o->env->shuffle);
}

/* Reads this partition's blocks of shuffle input `in` (edge i). */
static ember_status gather_shuffle(em_opnode *o, sh *st, uint32_t i,
                                   const em_stage_input *in, ember_error *err)
{
    em_task_env *env = o->env;
    em_shuffle_svc *svc = env->shuffle;
    const ember_shuffle_vtable *vt = em_shuffle_svc_vt(svc);
    void *state = em_shuffle_svc_state(svc);
    ember_buf blk = ember_buf_heap();
    uint32_t *maps = malloc((in->num_maps ? in->num_maps : 1) * sizeof *maps);
    uint8_t *done = calloc(in->num_maps ? in->num_maps : 1, 1);
    ember_status s = maps && done ? EMBER_OK
                                  : em_op_fail(o, err, EMBER_ENOMEM,
                                               "out of memory");
    /* local blocks first, then executor by executor */
    for (uint32_t m = 0; s == EMBER_OK && m < in->num_maps; m++) {
        if (!in->loc[m]) {
            s = fetch_failed(o, in, m, "", EMBER_ENOTFOUND,
                             "no executor holds it", err);
            break;
        }
        const em_stage_exec *ex = em_stage_io_exec(env->io, in->loc[m]);
        if (!ex) {
            s = fetch_failed(o, in, m, "", EMBER_ENOTFOUND,
                             "its executor is gone", err);
            break;
        }
        if (!env->executor_id || strcmp(ex->id, env->executor_id) != 0)
            continue;
        /* without a combiner the block lands straight in the input */
        ember_buf *to = st->comb ? &blk : &st->in[i];
        if (st->comb)
            blk.len = 0;
        uint64_t n = 0;
        ember_error e = {0};
        s = vt->read_block(state, in->shuffle_id, m, o->partition, to, &n,
                           &e);
        if (s != EMBER_OK) {
            s = fetch_failed(o, in, m, ex->id, s, e.msg[0] ? e.msg
                                                 : ember_status_name(s),
                             err);
            break;
        }
        done[m] = 1;
        if (!st->comb) {
            st->nin[i] += n;
            s = em_op_check_cancel(o, err);
            if (s == EMBER_OK && over_budget(o, st))
                s = spill_now(o, st, err);
            continue;
        }
        ember_batch b = {blk.data, blk.len, n};
        s = consume(o, st, i, &b, 1, err);
        if (s == EMBER_OK)
            s = em_op_check_cancel(o, err);
    }
    for (uint32_t m = 0; s == EMBER_OK && m < in->num_maps; m++) {
        if (done[m])
            continue;
        const em_stage_exec *ex = em_stage_io_exec(env->io, in->loc[m]);
        uint32_t n = 0;
        for (uint32_t k = m; k < in->num_maps; k++)
            if (!done[k] && in->loc[k] == in->loc[m]) {
                maps[n++] = k;
                done[k] = 1;
            }
        if (!ex->endpoint[0]) {
            s = fetch_failed(o, in, maps[0], ex->id, EMBER_EIO,
                             "it serves no blocks", err);
            break;
        }
        em_fetch_client *fc = NULL;
        ember_error e = {0};
        s = em_fetch_open(&fc, ex->endpoint, em_shuffle_svc_timeout_ms(svc),
                          &e);
        if (s != EMBER_OK) {
            s = fetch_failed(o, in, maps[0], ex->id, s, e.msg, err);
            break;
        }
        /* request by request, so that one budget's worth is in memory */
        uint64_t budget = em_shuffle_svc_max_in_flight(svc);
        for (uint32_t k = 0; s == EMBER_OK && k < n; k++) {
            ember_buf *to = st->comb ? &blk : &st->in[i];
            if (st->comb)
                blk.len = 0;
            uint64_t cnt = 0;
            uint32_t failed = maps[k];
            s = em_fetch_blocks(fc, in->shuffle_id, o->partition, &maps[k], 1,
                                budget, to, &cnt, &failed, &e);
            if (s != EMBER_OK) {
                s = fetch_failed(o, in, failed, ex->id, s, e.msg, err);
                break;
            }
            if (!st->comb) {
                st->nin[i] += cnt;
                s = em_op_check_cancel(o, err);
                if (s == EMBER_OK && over_budget(o, st))
                    s = spill_now(o, st, err);
                continue;
            }
            ember_batch b = {blk.data, blk.len, cnt};
            s = consume(o, st, i, &b, 1, err);
            if (s == EMBER_OK)
                s = em_op_check_cancel(o, err);
        }
        em_fetch_close(fc);
    }
    free(maps);
    free(done);
    ember_buf_release(&blk);
    return s;
}

/* Reads input i: a shuffle, or the same partition of a co-partitioned
 * parent. */
static ember_status gather(em_opnode *o, sh *st, uint32_t i, ember_error *err)
{
    const em_dep *d = &o->node->deps[i];
    if (d->kind == EM_DEP_SHUFFLE) {
        const em_stage_input *in =
            o->env->io ? em_stage_io_input(o->env->io, o->node->id, i) : NULL;
        if (!in || !o->env->shuffle)
            return em_op_fail(o, err, EMBER_EINVAL, "the stage does not say "
                              "where shuffle input %" PRIu32 " is", i);
        return gather_shuffle(o, st, i, in, err);
    }
    em_opnode *child = NULL;
    ember_status s = em_op_build(&child, o->env, d->parent, o->partition,
                                 o->depth + 1, err);
    if (s == EMBER_OK && child->take && !st->comb && st->in[i].len == 0) {
        /* a cached block: taken whole instead of copied */
        uint64_t n = 0;
        if (child->take(child, &st->in[i], &n) == EMBER_OK) {
            st->nin[i] = n;
            em_op_free(child);
            return EMBER_OK;
        }
    }
    ember_batch b;
    while (s == EMBER_OK && (s = child->next(child, &b, err)) == EMBER_OK)
        s = consume(o, st, i, &b, 0, err);
    em_op_free(child);
    return s == EMBER_END ? EMBER_OK : s;
}

/* ---- output ---------------------------------------------------------- */

static ember_status put_rec(sh *st, const uint8_t *r, size_t n)
{
    ember_status s = ember_batch_append(&st->out, r, n);
    if (s == EMBER_OK)
        st->nout++;
    return s;
}

/* Appends the record key ++ value (two encodings) to the output. */
static ember_status put_pair(sh *st, const uint8_t *k, size_t kl,
                             const uint8_t *v, size_t vl)
{
    size_t mark;
    ember_status s = ember_batch_frame_begin(&st->out, &mark);
    if (s == EMBER_OK)
        s = ember_buf_append(&st->out, k, kl);
    if (s == EMBER_OK)
        s = ember_buf_append(&st->out, v, vl);
    if (s == EMBER_OK)
        s = ember_batch_frame_end(&st->out, mark);
    if (s == EMBER_OK)
        st->nout++;
    return s;
}

/* Appends the record (key, (v, w)) to the output, written in place. */
static ember_status put_join(sh *st, const em_keyref *k, const uint8_t *v,
                             size_t vl, const uint8_t *w, size_t wl)
{
    size_t mark;
    ember_status s = ember_batch_frame_begin(&st->out, &mark);
    if (s == EMBER_OK)
        s = ember_buf_append(&st->out, k->key, k->klen);
    if (s == EMBER_OK)
        s = ember_rec_tuple_begin(&st->out);
    if (s == EMBER_OK)
        s = ember_buf_append(&st->out, v, vl);
    if (s == EMBER_OK)
        s = ember_buf_append(&st->out, w, wl);
    if (s == EMBER_OK)
        s = ember_rec_tuple_end(&st->out);
    if (s == EMBER_OK)
        s = ember_batch_frame_end(&st->out, mark);
    if (s == EMBER_OK)
        st->nout++;
    return s;
}

/* The value encoding of a pair ref (the record past its key). */
static inline const uint8_t *val_of(const em_keyref *r, size_t *len)
{
    *len = r->rlen - r->klen;
    return r->rec + r->klen;
}

/* A group: refs[a..b) share a key; first[i] .. first[i+1] are input i's. */
typedef struct group {
    const em_keyref *r;
    size_t a, b;
    size_t from[EM_OP_MAX_INPUTS + 1];
} group;

static ember_status emit_group(sh *st, const group *g, uint32_t nin,
                               ember_buf *scratch)
{
    const em_keyref *k0 = &g->r[g->a];
    size_t cnt[EM_OP_MAX_INPUTS];
    for (uint32_t i = 0; i < nin; i++)
        cnt[i] = g->from[i + 1] - g->from[i];
    ember_status s = EMBER_OK;
    size_t vl, wl;
    const uint8_t *v, *w;
    switch (st->k) {
    case K_GROUP:
    case K_COGROUP:
        scratch->len = 0;
        if (st->k == K_COGROUP)
            s = ember_rec_tuple_begin(scratch);
        for (uint32_t i = 0; s == EMBER_OK && i < nin; i++) {
            s = ember_rec_tuple_begin(scratch);
            for (size_t j = g->from[i]; s == EMBER_OK && j < g->from[i + 1];
                 j++) {
                v = val_of(&g->r[j], &vl);
                s = ember_buf_append(scratch, v, vl);
            }
            if (s == EMBER_OK)
                s = ember_rec_tuple_end(scratch);
        }
        if (s == EMBER_OK && st->k == K_COGROUP)
            s = ember_rec_tuple_end(scratch);
        if (s == EMBER_OK)
            s = put_pair(st, k0->key, k0->klen, scratch->data, scratch->len);
        return s;
    case K_JOIN:
    case K_LEFT:
    case K_RIGHT:
    case K_FULL: {
        static const uint8_t null_enc[1] = {EMBER_REC_TAG_NULL};
        int keep_left = st->k == K_LEFT || st->k == K_FULL;
        int keep_right = st->k == K_RIGHT || st->k == K_FULL;
        size_t l0 = g->from[0], l1 = g->from[1], r0 = g->from[1],
               r1 = g->from[2];
        int lnull = cnt[0] == 0, rnull = cnt[1] == 0;
        if ((lnull && !keep_right) || (rnull && !keep_left))
            return EMBER_OK;
        size_t ln = lnull ? 1 : cnt[0], rn = rnull ? 1 : cnt[1];
        for (size_t a = 0; s == EMBER_OK && a < ln; a++) {
            if (lnull) {
                v = null_enc;
                vl = 1;
            } else {
                v = val_of(&g->r[l0 + a], &vl);
            }
            for (size_t b = 0; s == EMBER_OK && b < rn; b++) {
                if (rnull) {
                    w = null_enc;
                    wl = 1;
                } else {
                    w = val_of(&g->r[r0 + b], &wl);
                }
                s = put_join(st, k0, v, vl, w, wl);
            }
        }
        (void)l1;
        (void)r1;
        return s;
    }
    case K_SUBTRACT:
        if (cnt[1] != 0)
            return EMBER_OK;
        for (size_t j = g->from[0]; s == EMBER_OK && j < g->from[1]; j++)
            s = put_rec(st, g->r[j].rec, g->r[j].rlen);
        return s;
    case K_INTERSECT:
        if (cnt[0] == 0 || cnt[1] == 0)
            return EMBER_OK;
        return put_rec(st, k0->rec, k0->rlen);
    default:
        return EMBER_OK;
    }
}

/* Builds refs over every gathered record, sorts them by key and emits. */
static ember_status sort_and_emit(em_opnode *o, sh *st, ember_error *err)
{
    uint32_t nin = o->node->ndeps;
    uint64_t total = 0;
    for (uint32_t i = 0; i < nin; i++)
        total += st->nin[i];
    if (total > UINT32_MAX)
        return em_op_fail(o, err, EMBER_EUNSUPPORTED, "%" PRIu64 " records "
                          "in one partition (at most 2^32-1)", total);
    /* the refs and the radix sort's scratch: big buffers (huge pages) */
    ember_buf rb = em_bigbuf(), tb = em_bigbuf();
    size_t bytes = (size_t)(total ? total : 1) * sizeof(em_keyref);
    if (ember_buf_reserve(&rb, bytes) != EMBER_OK ||
        ember_buf_reserve(&tb, bytes) != EMBER_OK) {
        ember_buf_release(&rb);
        ember_buf_release(&tb);
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory sorting %"
                          PRIu64 " records", total);
    }
    em_keyref *refs = (em_keyref *)(void *)rb.data;
    em_keyref *tmp = (em_keyref *)(void *)tb.data;
    int whole = em_key_mode_of(o->node->op->name) == EM_KEY_RECORD;
    size_t n = 0;
    ember_status s = EMBER_OK;
    for (uint32_t i = 0; s == EMBER_OK && i < nin; i++) {
        ember_batch b = {st->in[i].data, st->in[i].len, st->nin[i]};
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            em_keyref *x = &refs[n];
            x->rec = r;
            x->rlen = (uint32_t)rl;
            x->input = i;
            x->seq = (uint32_t)n;
            if (whole) {
                x->key = r;
                x->klen = (uint32_t)rl;
            } else {
                ember_value k, v;
                if (em_rec_pair(r, rl, &k, &v) != EMBER_OK) {
                    s = em_op_fail(o, err, EMBER_EINVAL, "expected a (key, "
                                   "value) pair (input %" PRIu32 ")", i);
                    break;
                }
                x->key = k.enc;
                x->klen = (uint32_t)k.enc_len;
            }
            em_keyref_prefix(x);
            n++;
        }
    }
    if (s == EMBER_OK)
        em_keysort(refs, tmp, n);
    if (s == EMBER_OK && st->k == K_SORT && st->spill) {
        /* a run (ascending; the merge takes care of the direction) */
        s = em_sortspill_add_run(st->spill, refs, n, err);
    } else if (s == EMBER_OK && st->k == K_SORT) {
        /* descending: the groups of equal keys in reverse, each group
         * keeping its order (reverse all, then each group back) */
        if (st->descending && n > 1) {
            for (size_t a = 0, b = n - 1; a < b; a++, b--) {
                em_keyref t = refs[a];
                refs[a] = refs[b];
                refs[b] = t;
            }
            size_t a = 0;
            while (a < n) {
                size_t b = a + 1;
                while (b < n && em_key_equal(&refs[a], &refs[b]))
                    b++;
                for (size_t x = a, y = b - 1; x < y; x++, y--) {
                    em_keyref t = refs[x];
                    refs[x] = refs[y];
                    refs[y] = t;
                }
                a = b;
            }
        }
        /* the refs are the output: no copy of the partition is made */
        st->sorted_buf = rb;
        st->sorted = refs;
        st->nsorted = n;
        rb = em_bigbuf();
    } else if (s == EMBER_OK) {
        /* grouping: the groups are emitted batch by batch (emit_groups) */
        st->sorted_buf = rb;
        st->sorted = refs;
        st->nsorted = n;
        st->grouping = 1;
        rb = em_bigbuf();
    }
    ember_buf_release(&rb);
    ember_buf_release(&tb);
    return s;
}

/* Emits the groups of the sorted refs from next_sorted on into st->out
 * until it holds limit bytes or the groups run out. */
static ember_status emit_groups(em_opnode *o, sh *st, size_t limit,
                                ember_error *err)
{
    uint32_t nin = o->node->ndeps;
    const em_keyref *refs = st->sorted;
    size_t a = st->next_sorted, n = st->nsorted;
    ember_status s = EMBER_OK;
    while (s == EMBER_OK && a < n && st->out.len < limit) {
        size_t b = a + 1;
        while (b < n && em_key_equal(&refs[a], &refs[b]))
            b++;
        group g = {refs, a, b, {0}};
        /* within a group refs are in seq order, so inputs ascend */
        size_t j = a;
        for (uint32_t i = 0; i <= nin; i++) {
            while (j < b && refs[j].input < i)
                j++;
            g.from[i] = i == nin ? b : j;
        }
        g.from[0] = a;
        s = emit_group(st, &g, nin, &st->scratch);
        if (s != EMBER_OK)
            s = em_op_fail(o, err, s, "out of memory");
        a = b;
    }
    st->next_sorted = a;
    return s;
}

static ember_status compute(em_opnode *o, sh *st, ember_error *err)
{
    ember_status s = EMBER_OK;
    for (uint32_t i = 0; s == EMBER_OK && i < o->node->ndeps; i++)
        s = gather(o, st, i, err);
    if (s != EMBER_OK)
        return s;
    if (st->comb) {
        s = em_combiner_emit(st->comb, &st->out, &st->nout, err);
        em_combiner_close(st->comb);
        st->comb = NULL;
        return s;
    }
    if (st->k == K_PASS) {
        for (uint32_t i = 0; i < o->node->ndeps; i++) {
            /* hand the gathered bytes over as they are */
            if (st->out.len == 0 && i == 0) {
                ember_buf t = st->out;
                st->out = st->in[0];
                st->in[0] = t;
            } else if (ember_buf_append(&st->out, st->in[i].data,
                                        st->in[i].len) != EMBER_OK) {
                return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
            }
            st->nout += st->nin[i];
        }
        return EMBER_OK;
    }
    if (st->spill) {
        /* the rest becomes the last run; the merge hands them out */
        if (st->nin[0] > 0)
            s = spill_now(o, st, err);
        for (uint32_t i = 0; i < EM_OP_MAX_INPUTS; i++)
            ember_buf_release(&st->in[i]);
        return s;
    }
    s = sort_and_emit(o, st, err);
    if (!st->sorted)
        for (uint32_t i = 0; i < EM_OP_MAX_INPUTS; i++)
            ember_buf_release(&st->in[i]);
    return s;
}

static ember_status shuffled_next(em_opnode *o, ember_batch *b,
                                  ember_error *err)
{
    sh *st = o->extra;
    if (!st->ready) {
        st->ready = 1;
        ember_status s = compute(o, st, err);
        if (s != EMBER_OK)
            return s;
    }
    if (st->spill) {
        ember_status s = em_op_check_cancel(o, err);
        if (s != EMBER_OK)
            return s;
        o->buf.len = 0;
        uint64_t n = 0;
        ember_error e = {0};
        s = em_sortspill_next(st->spill, &o->buf, o->env->batch_bytes, &n,
                              &e);
        if (s != EMBER_OK)
            return s == EMBER_END ? s : em_op_fail(o, err, s, "%s", e.msg);
        *b = (ember_batch){o->buf.data, o->buf.len, n};
        return EMBER_OK;
    }
    if (st->grouping) {
        /* the next groups, about batch_bytes of them */
        if (st->next_sorted >= st->nsorted)
            return EMBER_END;
        ember_status s = em_op_check_cancel(o, err);
        if (s != EMBER_OK)
            return s;
        st->out.len = 0;
        st->nout = 0;
        s = emit_groups(o, st, o->env->batch_bytes, err);
        if (s != EMBER_OK)
            return s;
        if (st->nout == 0)
            return EMBER_END; /* the last groups emitted nothing */
        *b = (ember_batch){st->out.data, st->out.len, st->nout};
        return EMBER_OK;
    }
    if (st->sorted) {
        /* a batch of about batch_bytes, copied from the sorted refs */
        if (st->next_sorted >= st->nsorted)
            return EMBER_END;
        ember_status s = em_op_check_cancel(o, err);
        if (s != EMBER_OK)
            return s;
        o->buf.len = 0;
        uint64_t n = 0;
        while (st->next_sorted < st->nsorted &&
               o->buf.len < o->env->batch_bytes) {
            const em_keyref *r = &st->sorted[st->next_sorted++];
            if (ember_batch_append(&o->buf, r->rec, r->rlen) != EMBER_OK)
                return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
            n++;
        }
        *b = (ember_batch){o->buf.data, o->buf.len, n};
        return EMBER_OK;
    }
    if (st->pos >= st->out.len)
        return EMBER_END;
    ember_status s = em_op_check_cancel(o, err);
    if (s != EMBER_OK)
        return s;
    /* the next slice of about batch_bytes, cut at record boundaries */
    ember_batch all = {st->out.data + st->pos, st->out.len - st->pos, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&all);
    const uint8_t *r;
    size_t rl;
    uint64_t n = 0;
    const uint8_t *start = st->out.data + st->pos;
    while (c.p - start < (ptrdiff_t)o->env->batch_bytes &&
           ember_batch_next(&c, &r, &rl) == EMBER_OK)
        n++;
    size_t len = (size_t)(c.p - start);
    *b = (ember_batch){start, len, n};
    st->pos += len;
    return EMBER_OK;
}

static void shuffled_close(em_opnode *o)
{
    sh *st = o->extra;
    if (!st)
        return;
    em_combiner_close(st->comb);
    for (uint32_t i = 0; i < EM_OP_MAX_INPUTS; i++)
        ember_buf_release(&st->in[i]);
    ember_buf_release(&st->out);
    ember_buf_release(&st->sorted_buf);
    ember_buf_release(&st->scratch);
    em_sortspill_close(st->spill);
    free(st);
    o->extra = NULL;
}

ember_status em_op_init_shuffled(em_opnode *o, ember_error *err)
{
    const em_node *n = o->node;
    if (n->ndeps > EM_OP_MAX_INPUTS)
        return em_op_fail(o, err, EMBER_EUNSUPPORTED, "more than %d inputs",
                          EM_OP_MAX_INPUTS);
    sh *st = calloc(1, sizeof *st);
    if (!st)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    o->extra = st;
    o->close = shuffled_close;
    o->next = shuffled_next;
    st->k = kind_of(n->op->name);
    for (uint32_t i = 0; i < EM_OP_MAX_INPUTS; i++)
        st->in[i] = em_bigbuf();
    st->out = em_bigbuf();
    st->scratch = ember_buf_heap();
    if (st->k == K_SORT) {
        json_t *a = o->args ? json_object_get(o->args, "ascending") : NULL;
        if (a && !json_is_boolean(a))
            return em_op_fail(o, err, EMBER_EINVAL,
                              "args.ascending must be true or false");
        st->descending = a && json_is_false(a);
    }
    if (st->k == K_COMBINE)
        /* a parent already partitioned like n holds values, not map-side
         * combiners: combine them as a map side would (S2) */
        return em_combiner_open(&st->comb, n, o->args,
                                n->deps[0].kind == EM_DEP_NARROW,
                                o->partition, o->env->registry, o->env->host,
                                err);
    return EMBER_OK;
}
