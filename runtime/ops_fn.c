/*
 * runtime/ops_fn.c — operators that call a plugin MAP function once per
 * batch: map, flat_map, filter, key_by, map_values, map_partitions,
 * map_partitions_with_index, and flat_map_values (once per value). The
 * output-count and type rules are those of docs/plugin-sdk.md ("How
 * operations call functions").
 */
#include "runtime/ops_internal.h"

#include <inttypes.h>
#include <string.h>

#include "runtime/recval.h"

enum fn_kind { K_MAP, K_FLAT, K_FILTER, K_KEY_BY, K_MAP_VALUES, K_FMV };

/* Calls the function on `in`, output into o->buf2 (cleared first). */
static ember_status call_fn(em_opnode *o, const ember_batch *in,
                            uint64_t *count, ember_error *err)
{
    o->buf2.len = 0;
    *count = 0;
    ember_error e = {0};
    em_op_fn_enter(o);
    ember_status s = o->fn->map_batch(o->fn_state, in, &o->buf2, count, &e);
    em_op_fn_leave();
    if (s != EMBER_OK) {
        o->buf2.len = 0;
        return em_op_fail(o, err, s == EMBER_OK ? EMBER_EPLUGIN : s, "%s",
                          e.msg[0] ? e.msg : ember_status_name(s));
    }
    return EMBER_OK;
}

static ember_status exact_count(em_opnode *o, uint64_t got, uint64_t want,
                                ember_error *err)
{
    if (got == want)
        return EMBER_OK;
    return em_op_fail(o, err, EMBER_EPLUGIN,
                      "function returned %" PRIu64 " records for %" PRIu64
                      " (%s needs exactly one per record)", got, want,
                      o->node->op->name);
}

/* filter: keep inputs whose output is a single true. */
static ember_status keep_true(em_opnode *o, const ember_batch *in,
                              uint64_t *kept, ember_error *err)
{
    ember_batch outs = {o->buf2.data, o->buf2.len, in->count};
    ember_batch_cursor ci = ember_batch_cursor_of(in),
                       co = ember_batch_cursor_of(&outs);
    const uint8_t *r, *b;
    size_t rl, bl;
    o->buf.len = 0;
    *kept = 0;
    for (uint64_t i = 0; i < in->count; i++) {
        if (ember_batch_next(&ci, &r, &rl) != EMBER_OK ||
            ember_batch_next(&co, &b, &bl) != EMBER_OK)
            return em_op_fail(o, err, EMBER_EPLUGIN, "malformed batch");
        if (bl != 1 || (b[0] != 0x02 && b[0] != 0x03))
            return em_op_fail(o, err, EMBER_EPLUGIN,
                              "filter function must return one bool per "
                              "record; record %" PRIu64 " got something else",
                              i);
        if (b[0] == 0x03) {
            ember_status s = ember_batch_append(&o->buf, r, rl);
            if (s != EMBER_OK)
                return em_op_fail(o, err, s, "out of memory");
            (*kept)++;
        }
    }
    return EMBER_OK;
}

/* key_by: (function output as a value, input as a value). */
static ember_status pair_up(em_opnode *o, const ember_batch *in,
                            ember_error *err)
{
    ember_batch outs = {o->buf2.data, o->buf2.len, in->count};
    ember_batch_cursor ci = ember_batch_cursor_of(in),
                       co = ember_batch_cursor_of(&outs);
    const uint8_t *r, *k;
    size_t rl, kl;
    o->buf.len = 0;
    for (uint64_t i = 0; i < in->count; i++) {
        if (ember_batch_next(&ci, &r, &rl) != EMBER_OK ||
            ember_batch_next(&co, &k, &kl) != EMBER_OK)
            return em_op_fail(o, err, EMBER_EPLUGIN, "malformed batch");
        size_t mark;
        ember_status s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, k, kl);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, r, rl);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
    }
    return EMBER_OK;
}

/* map_values: the values of the pairs in `in`, as records, into o->buf. */
static ember_status values_of(em_opnode *o, const ember_batch *in,
                              ember_buf *vals, ember_error *err)
{
    ember_batch_cursor ci = ember_batch_cursor_of(in);
    const uint8_t *r;
    size_t rl;
    vals->len = 0;
    for (uint64_t i = 0; i < in->count; i++) {
        ember_value k, v;
        if (ember_batch_next(&ci, &r, &rl) != EMBER_OK ||
            em_rec_pair(r, rl, &k, &v) != EMBER_OK)
            return em_op_fail(o, err, EMBER_EINVAL,
                              "record %" PRIu64 " is not a (key, value) pair",
                              i);
        size_t mark;
        ember_status s = ember_batch_frame_begin(vals, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_value_as_record(vals, &v);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(vals, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
    }
    return EMBER_OK;
}

/* Appends (key of pair rec, each output record of outs as a value). */
static ember_status rekey(em_opnode *o, ember_buf *dst, const uint8_t *rec,
                          size_t len, const uint8_t **op, size_t *ol,
                          uint64_t n, ember_batch_cursor *co,
                          ember_error *err)
{
    ember_value k, v;
    if (em_rec_pair(rec, len, &k, &v) != EMBER_OK)
        return em_op_fail(o, err, EMBER_EINVAL,
                          "record is not a (key, value) pair");
    for (uint64_t j = 0; j < n; j++) {
        if (ember_batch_next(co, op, ol) != EMBER_OK)
            return em_op_fail(o, err, EMBER_EPLUGIN, "malformed batch");
        size_t mark;
        ember_status s = ember_batch_frame_begin(dst, &mark);
        if (s == EMBER_OK)
            s = ember_rec_put_value(dst, &k);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(dst, *op, *ol);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(dst, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
    }
    return EMBER_OK;
}

static ember_status fn_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    enum fn_kind kind = (enum fn_kind)o->seq;
    for (;;) {
        ember_batch in;
        ember_status s = o->in[0]->next(o->in[0], &in, err);
        if (s != EMBER_OK)
            return s;
        if ((s = em_op_check_cancel(o, err)) != EMBER_OK)
            return s;
        uint64_t n = 0;
        switch (kind) {
        case K_MAP:
        case K_FLAT:
            if ((s = call_fn(o, &in, &n, err)) != EMBER_OK)
                return s;
            if (kind == K_MAP && (s = exact_count(o, n, in.count, err)))
                return s;
            *b = (ember_batch){o->buf2.data, o->buf2.len, n};
            break;
        case K_FILTER:
            if ((s = call_fn(o, &in, &n, err)) != EMBER_OK ||
                (s = exact_count(o, n, in.count, err)) != EMBER_OK ||
                (s = keep_true(o, &in, &n, err)) != EMBER_OK)
                return s;
            *b = (ember_batch){o->buf.data, o->buf.len, n};
            break;
        case K_KEY_BY:
            if ((s = call_fn(o, &in, &n, err)) != EMBER_OK ||
                (s = exact_count(o, n, in.count, err)) != EMBER_OK ||
                (s = pair_up(o, &in, err)) != EMBER_OK)
                return s;
            *b = (ember_batch){o->buf.data, o->buf.len, in.count};
            break;
        case K_MAP_VALUES: {
            ember_buf vals = ember_buf_heap();
            ember_batch vb = {0};
            s = values_of(o, &in, &vals, err);
            vb = (ember_batch){vals.data, vals.len, in.count};
            if (s == EMBER_OK)
                s = call_fn(o, &vb, &n, err);
            if (s == EMBER_OK)
                s = exact_count(o, n, in.count, err);
            ember_buf_release(&vals);
            if (s != EMBER_OK)
                return s;
            ember_batch outs = {o->buf2.data, o->buf2.len, n};
            ember_batch_cursor ci = ember_batch_cursor_of(&in),
                               co = ember_batch_cursor_of(&outs);
            o->buf.len = 0;
            for (uint64_t i = 0; i < in.count; i++) {
                const uint8_t *r, *x;
                size_t rl, xl;
                ember_batch_next(&ci, &r, &rl);
                if ((s = rekey(o, &o->buf, r, rl, &x, &xl, 1, &co, err)))
                    return s;
            }
            *b = (ember_batch){o->buf.data, o->buf.len, in.count};
            break;
        }
        case K_FMV: {
            /* Once per value: a MAP call cannot say which input made
             * which output. */
            ember_batch_cursor ci = ember_batch_cursor_of(&in);
            ember_buf one = ember_buf_heap(), fr = ember_buf_heap();
            uint64_t total = 0;
            o->buf.len = 0;
            for (uint64_t i = 0; i < in.count && s == EMBER_OK; i++) {
                const uint8_t *r, *x;
                size_t rl, xl;
                ember_batch_next(&ci, &r, &rl);
                /* the record alone, as a batch, then its value (scratch
                 * buffers reused: no allocation per record) */
                fr.len = 0;
                s = ember_batch_append(&fr, r, rl);
                ember_batch pairb = {fr.data, fr.len, 1};
                if (s == EMBER_OK)
                    s = values_of(o, &pairb, &one, err);
                ember_batch vb = {one.data, one.len, 1};
                if (s == EMBER_OK)
                    s = call_fn(o, &vb, &n, err);
                if (s == EMBER_OK) {
                    ember_batch outs = {o->buf2.data, o->buf2.len, n};
                    ember_batch_cursor co = ember_batch_cursor_of(&outs);
                    s = rekey(o, &o->buf, r, rl, &x, &xl, n, &co, err);
                    total += n;
                }
            }
            ember_buf_release(&one);
            ember_buf_release(&fr);
            if (s != EMBER_OK)
                return s;
            *b = (ember_batch){o->buf.data, o->buf.len, total};
            break;
        }
        }
        return EMBER_OK;
    }
}

ember_status em_op_init_fn(em_opnode *o, ember_error *err)
{
    static const struct {
        const char *name;
        enum fn_kind kind;
    } table[] = {
        {"map", K_MAP},
        {"flat_map", K_FLAT},
        {"map_partitions", K_FLAT},
        {"map_partitions_with_index", K_FLAT},
        {"filter", K_FILTER},
        {"key_by", K_KEY_BY},
        {"map_values", K_MAP_VALUES},
        {"flat_map_values", K_FMV},
    };
    const char *op = o->node->op->name;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(op, table[i].name) != 0)
            continue;
        o->seq = (uint64_t)table[i].kind;
        ember_status s = em_op_build(&o->in[0], o->env, o->node->deps[0].parent,
                                     o->partition, o->depth + 1, err);
        if (s != EMBER_OK)
            return s;
        o->nin = 1;
        if ((s = em_op_open_fn(o, 0, err)) != EMBER_OK)
            return s;
        o->next = fn_next;
        return EMBER_OK;
    }
    return EMBER_EUNSUPPORTED;
}
