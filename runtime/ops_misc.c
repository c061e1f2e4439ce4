/*
 * runtime/ops_misc.c — the narrow operators that need no plugin function or
 * read several parents: keys, values, glom, sample, union, coalesce, zip,
 * zip_partitions, zip_with_unique_id, zip_with_index.
 */
#include "runtime/ops_internal.h"
#include "runtime/sampling.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/recval.h"

/* ---- keys / values ---------------------------------------------------- */

static ember_status kv_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    ember_batch in;
    ember_status s = o->in[0]->next(o->in[0], &in, err);
    if (s != EMBER_OK)
        return s;
    ember_batch_cursor c = ember_batch_cursor_of(&in);
    const uint8_t *r;
    size_t rl;
    o->buf.len = 0;
    for (uint64_t i = 0; i < in.count; i++) {
        ember_value k, v;
        if (ember_batch_next(&c, &r, &rl) != EMBER_OK ||
            em_rec_pair(r, rl, &k, &v) != EMBER_OK)
            return em_op_fail(o, err, EMBER_EINVAL,
                              "record %" PRIu64 " is not a (key, value) pair",
                              i);
        size_t mark;
        s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_value_as_record(&o->buf, o->seq ? &v : &k);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
    }
    *b = (ember_batch){o->buf.data, o->buf.len, in.count};
    return EMBER_OK;
}

/* ---- glom: the whole partition as one record ------------------------- */

/* Appends every record of input 0 as a value to dst (no framing); *n is
 * their number. */
static ember_status drain_values(em_opnode *in, ember_buf *dst, uint64_t *n,
                                 ember_error *err)
{
    ember_batch b;
    ember_status s;
    *n = 0;
    while ((s = in->next(in, &b, err)) == EMBER_OK) {
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            if ((s = em_rec_put_as_value(dst, r, rl)) != EMBER_OK)
                return ember_errorf(err, s, "out of memory");
            (*n)++;
        }
    }
    return s == EMBER_END ? EMBER_OK : s;
}

static ember_status glom_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    if (o->done)
        return EMBER_END;
    o->done = 1;
    o->buf.len = 0;
    size_t mark;
    uint64_t n;
    ember_status s = ember_batch_frame_begin(&o->buf, &mark);
    if (s == EMBER_OK)
        s = ember_rec_tuple_begin(&o->buf);
    if (s == EMBER_OK)
        s = drain_values(o->in[0], &o->buf, &n, err);
    else
        s = ember_errorf(err, s, "out of memory");
    if (s != EMBER_OK)
        return s;
    if ((s = ember_rec_tuple_end(&o->buf)) != EMBER_OK ||
        (s = ember_batch_frame_end(&o->buf, mark)) != EMBER_OK)
        return em_op_fail(o, err, s, "out of memory");
    *b = (ember_batch){o->buf.data, o->buf.len, 1};
    return EMBER_OK;
}

/* ---- sample ----------------------------------------------------------- */

static ember_status sample_next(em_opnode *o, ember_batch *b,
                                ember_error *err)
{
    ember_batch in;
    ember_status s = o->in[0]->next(o->in[0], &in, err);
    if (s != EMBER_OK)
        return s;
    double fraction = *(double *)o->extra;
    ember_batch_cursor c = ember_batch_cursor_of(&in);
    const uint8_t *r;
    size_t rl;
    uint64_t n = 0;
    o->buf.len = 0;
    while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        uint32_t copies = o->done ? em_rng_poisson(&o->pos, fraction)
                                  : em_rng_unit(&o->pos) < fraction;
        for (uint32_t k = 0; k < copies; k++) {
            if ((s = ember_batch_append(&o->buf, r, rl)) != EMBER_OK)
                return em_op_fail(o, err, s, "out of memory");
            n++;
        }
    }
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

static void free_extra(em_opnode *o)
{
    free(o->extra);
}

static ember_status sample_init(em_opnode *o, ember_error *err)
{
    double fraction;
    int64_t seed, repl;
    ember_status s;
    if ((s = em_op_arg_double(o, "fraction", -1, &fraction, err)) ||
        (s = em_op_arg_int(o, "seed", 0, &seed, err)))
        return s;
    json_t *w = o->args ? json_object_get(o->args, "with_replacement") : NULL;
    repl = json_is_true(w);
    if (!(fraction >= 0) || (!repl && fraction > 1))
        return em_op_fail(o, err, EMBER_EINVAL,
                          "args.fraction must be in [0, 1] without "
                          "replacement, >= 0 with it");
    o->extra = malloc(sizeof(double));
    if (!o->extra)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    *(double *)o->extra = fraction;
    o->close = free_extra;
    o->done = (int)repl; /* reused as the with-replacement flag */
    uint64_t st = em_rng_seed((uint64_t)seed, o->partition);
    em_rng_next(&st);
    o->pos = st;
    o->next = sample_next;
    return EMBER_OK;
}

/* ---- union / coalesce: parent partitions one after another ----------- */

/* The k-th (parent index, parent partition) this partition reads, or 0
 * when there are no more. */
static int group_member(const em_opnode *o, uint32_t k, uint32_t *parent,
                        uint32_t *ppart)
{
    const em_node *n = o->node;
    const em_lineage *l = o->env->lineage;
    if (strcmp(n->op->name, "coalesce") == 0) {
        uint64_t p = l->nodes[n->deps[0].parent].partitions, c = n->partitions;
        uint64_t lo = (uint64_t)o->partition * p / c,
                 hi = ((uint64_t)o->partition + 1) * p / c;
        if (lo + k >= hi)
            return 0;
        *parent = n->deps[0].parent;
        *ppart = (uint32_t)(lo + k);
        return 1;
    }
    if (n->partitioner.kind != EM_PART_NONE) {
        /* partitioner-aware union: partition i of every parent */
        if (k >= n->ndeps)
            return 0;
        *parent = n->deps[k].parent;
        *ppart = o->partition;
        return 1;
    }
    if (k > 0)
        return 0;
    uint32_t at = o->partition;
    for (uint32_t i = 0; i < n->ndeps; i++) {
        uint32_t pp = l->nodes[n->deps[i].parent].partitions;
        if (at < pp) {
            *parent = n->deps[i].parent;
            *ppart = at;
            return 1;
        }
        at -= pp;
    }
    return 0;
}

static ember_status seq_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    for (;;) {
        if (!o->in[0]) {
            uint32_t parent, ppart;
            if (!group_member(o, o->cur, &parent, &ppart))
                return EMBER_END;
            ember_status s = em_op_build(&o->in[0], o->env, parent, ppart,
                                         o->depth + 1, err);
            if (s != EMBER_OK)
                return s;
            o->nin = 1;
        }
        ember_status s = o->in[0]->next(o->in[0], b, err);
        if (s != EMBER_END)
            return s;
        em_op_free(o->in[0]);
        o->in[0] = NULL;
        o->nin = 0;
        o->cur++;
    }
}

/* ---- zip family ------------------------------------------------------- */

typedef struct side {
    ember_batch b;
    ember_batch_cursor c;
    int end;
} side;

/* The next record of input i, or EMBER_END. */
static ember_status side_next(em_opnode *o, side *sd, uint32_t i,
                              const uint8_t **r, size_t *rl, ember_error *err)
{
    for (;;) {
        if (sd->end)
            return EMBER_END;
        if (sd->b.data && ember_batch_next(&sd->c, r, rl) == EMBER_OK)
            return EMBER_OK;
        ember_status s = o->in[i]->next(o->in[i], &sd->b, err);
        if (s == EMBER_END) {
            sd->end = 1;
            return EMBER_END;
        }
        if (s != EMBER_OK)
            return s;
        sd->c = ember_batch_cursor_of(&sd->b);
    }
}

static ember_status zip_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    side *sd = o->extra;
    o->buf.len = 0;
    uint64_t n = 0;
    while (o->buf.len < o->env->batch_bytes) {
        const uint8_t *r1, *r2;
        size_t l1, l2;
        ember_status s1 = side_next(o, &sd[0], 0, &r1, &l1, err);
        if (s1 != EMBER_OK && s1 != EMBER_END)
            return s1;
        ember_status s2 = side_next(o, &sd[1], 1, &r2, &l2, err);
        if (s2 != EMBER_OK && s2 != EMBER_END)
            return s2;
        if (s1 != s2)
            return em_op_fail(o, err, EMBER_EINVAL,
                              "Can only zip RDDs with same number of "
                              "elements in each partition");
        if (s1 == EMBER_END)
            break;
        size_t mark;
        ember_status s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, r1, l1);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, r2, l2);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
        n++;
    }
    if (n == 0)
        return EMBER_END;
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

/* zip_partitions: one record (glom of input 0, glom of input 1, ...)
 * handed to the function in one call; its outputs are the partition. */
static ember_status zipp_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    if (o->done)
        return EMBER_END;
    o->done = 1;
    ember_buf rec = ember_buf_heap();
    ember_status s = EMBER_OK;
    for (uint32_t i = 0; i < o->nin && s == EMBER_OK; i++) {
        uint64_t n;
        s = ember_rec_tuple_begin(&rec);
        if (s == EMBER_OK)
            s = drain_values(o->in[i], &rec, &n, err);
        if (s == EMBER_OK)
            s = ember_rec_tuple_end(&rec);
    }
    o->buf.len = 0;
    if (s == EMBER_OK)
        s = ember_batch_append(&o->buf, rec.data, rec.len);
    ember_buf_release(&rec);
    if (s != EMBER_OK)
        return s < 0 && err && err->msg[0] ? s
                                           : em_op_fail(o, err, s, "out of memory");
    ember_batch in = {o->buf.data, o->buf.len, 1};
    uint64_t n = 0;
    o->buf2.len = 0;
    ember_error e = {0};
    em_op_fn_enter(o);
    s = o->fn->map_batch(o->fn_state, &in, &o->buf2, &n, &e);
    em_op_fn_leave();
    if (s != EMBER_OK)
        return em_op_fail(o, err, s, "%s", e.msg[0] ? e.msg
                                                    : ember_status_name(s));
    *b = (ember_batch){o->buf2.data, o->buf2.len, n};
    return EMBER_OK;
}

/* zip_with_unique_id: item i of partition k gets i*n + k (S14);
 * zip_with_index: args.starts[k] + i. */
static ember_status zid_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    ember_batch in;
    ember_status s = o->in[0]->next(o->in[0], &in, err);
    if (s != EMBER_OK)
        return s;
    ember_batch_cursor c = ember_batch_cursor_of(&in);
    const uint8_t *r;
    size_t rl;
    o->buf.len = 0;
    while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        int64_t id = o->i0 + (int64_t)(o->pos * (uint64_t)o->step);
        o->pos++;
        size_t mark;
        s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, r, rl);
        if (s == EMBER_OK)
            s = ember_rec_put_int(&o->buf, id);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
    }
    *b = (ember_batch){o->buf.data, o->buf.len, in.count};
    return EMBER_OK;
}

static ember_status zid_init(em_opnode *o, int with_index, ember_error *err)
{
    if (!with_index) {
        o->i0 = o->partition;
        o->step = o->node->partitions;
    } else {
        json_t *st = o->args ? json_object_get(o->args, "starts") : NULL;
        json_t *v = json_is_array(st) ? json_array_get(st, o->partition)
                                      : NULL;
        if (!json_is_integer(v))
            return em_op_fail(o, err, EMBER_EINVAL,
                              "args.starts must give each partition's first "
                              "index (the driver computes them)");
        o->i0 = json_integer_value(v);
        o->step = 1;
    }
    o->next = zid_next;
    return EMBER_OK;
}

/* ---- dispatch --------------------------------------------------------- */

static ember_status build_inputs(em_opnode *o, uint32_t count,
                                 ember_error *err)
{
    for (uint32_t i = 0; i < count; i++) {
        ember_status s = em_op_build(&o->in[i], o->env,
                                     o->node->deps[i].parent, o->partition,
                                     o->depth + 1, err);
        if (s != EMBER_OK)
            return s;
        o->nin = i + 1;
    }
    return EMBER_OK;
}

static void free_sides(em_opnode *o)
{
    free(o->extra);
}

ember_status em_op_init_misc(em_opnode *o, ember_error *err)
{
    const char *op = o->node->op->name;
    ember_status s;
    if (strcmp(op, "cartesian") == 0)
        return em_op_init_cartesian(o, err);
    if (strcmp(op, "union") == 0 || strcmp(op, "coalesce") == 0) {
        o->next = seq_next;
        return EMBER_OK;
    }
    if (strcmp(op, "keys") == 0 || strcmp(op, "values") == 0) {
        o->seq = op[0] == 'v';
        o->next = kv_next;
        return build_inputs(o, 1, err);
    }
    if (strcmp(op, "glom") == 0) {
        o->next = glom_next;
        return build_inputs(o, 1, err);
    }
    if (strcmp(op, "sample") == 0) {
        if ((s = build_inputs(o, 1, err)) != EMBER_OK)
            return s;
        return sample_init(o, err);
    }
    if (strcmp(op, "zip") == 0) {
        if ((s = build_inputs(o, 2, err)) != EMBER_OK)
            return s;
        o->extra = calloc(2, sizeof(side));
        if (!o->extra)
            return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
        o->close = free_sides;
        o->next = zip_next;
        return EMBER_OK;
    }
    if (strcmp(op, "zip_partitions") == 0) {
        if ((s = build_inputs(o, o->node->ndeps, err)) != EMBER_OK ||
            (s = em_op_open_fn(o, 0, err)) != EMBER_OK)
            return s;
        o->next = zipp_next;
        return EMBER_OK;
    }
    if (strcmp(op, "zip_with_unique_id") == 0 ||
        strcmp(op, "zip_with_index") == 0) {
        if ((s = build_inputs(o, 1, err)) != EMBER_OK)
            return s;
        return zid_init(o, op[9] == 'i', err);
    }
    return EMBER_EUNSUPPORTED;
}
