/*
 * pagerank_fns.c — plugin "pagerank": the functions of the pagerank
 * example (pagerank.c).
 *
 *   pagerank.parse_edge  flat_map    (line) -> (src, dst): two fields
 *                                    separated by blanks (tab or space);
 *                                    blank lines and lines starting with
 *                                    '#' give nothing, anything else fails
 *                                    the task naming the line
 *   pagerank.one         map_values  any value -> 1.0 (the initial rank)
 *   pagerank.contribs    flat_map    (src, ((dst...), rank)) -> one
 *                                    (dst, rank / number of dsts) per dst
 *   pagerank.damp        map_values  sum -> 0.85 * sum + base; argument:
 *                                    the record (double base), 0.15 / N
 *
 * Vertices are strings. All functions are stateless and deterministic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/sdk.h>

#define DAMPING 0.85

/* Appends the framed one-double record (x). */
static ember_status put_double_record(ember_buf *out, double x)
{
    uint8_t tmp[9];
    ember_buf r = ember_buf_fixed(tmp, sizeof tmp);
    ember_status s = ember_rec_put_double(&r, x);
    if (s == EMBER_OK)
        s = ember_batch_append(out, r.data, r.len);
    return s;
}

/* ------------------------------------------------------------------------
 * pagerank.parse_edge
 * ---------------------------------------------------------------------- */

static int blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Finds the next field of p[*i..n): sets *start and *len; 0 when none. */
static int next_field(const uint8_t *p, size_t n, size_t *i, size_t *start,
                      size_t *len)
{
    while (*i < n && blank(p[*i]))
        (*i)++;
    if (*i == n)
        return 0;
    *start = *i;
    while (*i < n && !blank(p[*i]))
        (*i)++;
    *len = *i - *start;
    return 1;
}

static ember_status parse_edge_batch(void *state, const ember_batch *in,
                                     ember_buf *out, uint64_t *out_count,
                                     ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    uint64_t index = 0;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value line;
        if (ember_rec_get(rec, len, 0, &line) != EMBER_OK ||
            line.type != EMBER_TYPE_STRING)
            return ember_errorf(err, EMBER_EINVAL,
                                "pagerank.parse_edge: expected a line "
                                "(string), record %llu",
                                (unsigned long long)index);
        /* Escaped 0x00 bytes are not blanks, so fields can be cut from the
         * escaped payload and written back as they are. */
        const uint8_t *p = line.u.str.raw;
        size_t n = line.u.str.raw_len, i = 0, fs[3], fl[3];
        int k = 0;
        while (k < 3 && next_field(p, n, &i, &fs[k], &fl[k]))
            k++;
        index++;
        if (k == 0 || p[fs[0]] == '#')
            continue;
        if (k != 2)
            return ember_errorf(err, EMBER_EINVAL,
                                "pagerank.parse_edge: expected 'src<TAB>dst', "
                                "got '%.*s'",
                                (int)(n < 200 ? n : 200), (const char *)p);
        size_t mark;
        s = ember_batch_frame_begin(out, &mark);
        for (int f = 0; f < 2 && s == EMBER_OK; f++) {
            s = ember_buf_reserve(out, fl[f] + 2);
            if (s == EMBER_OK) {
                out->data[out->len++] = EMBER_REC_TAG_STRING;
                memcpy(out->data + out->len, p + fs[f], fl[f]);
                out->len += fl[f];
                out->data[out->len++] = 0x00;
            }
        }
        if (s == EMBER_OK)
            s = ember_batch_frame_end(out, mark);
        if (s != EMBER_OK)
            return ember_errorf(err, s, "pagerank.parse_edge: out of memory");
        (*out_count)++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "pagerank.parse_edge: malformed batch");
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * pagerank.one
 * ---------------------------------------------------------------------- */

static ember_status one_batch(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err)
{
    (void)state;
    for (uint64_t i = 0; i < in->count; i++) {
        if (put_double_record(out, 1.0) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "pagerank.one: out of memory");
        (*out_count)++;
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * pagerank.contribs
 * ---------------------------------------------------------------------- */

/* Where each record of the current vertex keeps its share (offsets in
 * the output), so that the links are read once: the records are written
 * with a placeholder, and the share, known once they are counted, is
 * written into each. Grown as needed, kept for the task. */
typedef struct contribs_state {
    size_t *at;
    size_t cap;
} contribs_state;

static ember_status contribs_open(const ember_host_api *host,
                                  const uint8_t *arg, size_t arg_len,
                                  void **state, ember_error *err)
{
    (void)host;
    (void)arg;
    (void)arg_len;
    contribs_state *st = calloc(1, sizeof *st);
    if (!st)
        return ember_errorf(err, EMBER_ENOMEM, "pagerank.contribs: out of "
                            "memory");
    *state = st;
    return EMBER_OK;
}

static void contribs_close(void *state)
{
    contribs_state *st = state;
    if (st)
        free(st->at);
    free(st);
}

static ember_status shape_error(ember_error *err)
{
    return ember_errorf(err, EMBER_EINVAL, "pagerank.contribs: expected "
                        "(src, ((dst...), rank))");
}

static ember_status contribs_batch(void *state, const ember_batch *in,
                                   ember_buf *out, uint64_t *out_count,
                                   ember_error *err)
{
    contribs_state *st = state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    static const uint8_t placeholder[9] = {EMBER_REC_TAG_DOUBLE};
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        /* (src, ((dst...), rank)), read in one pass: the links are not
         * stepped over first (that would read them twice) but entered,
         * their brackets checked here (docs/record-format.md) */
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        ember_value src, dst, rank;
        size_t n = 0, mark, undo = out->len;
        uint64_t undo_count = *out_count;
        if (ember_rec_next(&rc, &src) != EMBER_OK || rc.end - rc.p < 2 ||
            rc.p[0] != EMBER_REC_TAG_TUPLE || rc.p[1] != EMBER_REC_TAG_TUPLE)
            return shape_error(err);
        rc.p += 2;
        while (rc.p < rc.end && *rc.p != EMBER_REC_TAG_END) {
            if (ember_rec_next(&rc, &dst) != EMBER_OK)
                return shape_error(err);
            if (n == st->cap) {
                size_t cap = st->cap ? st->cap * 2 : 256;
                size_t *g = realloc(st->at, cap * sizeof *g);
                if (!g)
                    return ember_errorf(err, EMBER_ENOMEM,
                                        "pagerank.contribs: out of memory");
                st->at = g;
                st->cap = cap;
            }
            /* the record dst ++ share, framed (ember/batch.h): a short
             * one written whole, a long one in pieces */
            size_t body = dst.enc_len + sizeof placeholder;
            if (body < 0x80 &&
                ember_buf_reserve(out, body + 1) == EMBER_OK) {
                uint8_t *w = out->data + out->len;
                w[0] = (uint8_t)body;
                memcpy(w + 1, dst.enc, dst.enc_len);
                st->at[n++] = out->len + 1 + dst.enc_len;
                memcpy(w + 1 + dst.enc_len, placeholder, sizeof placeholder);
                out->len += body + 1;
                (*out_count)++;
                continue;
            }
            s = ember_batch_frame_begin(out, &mark);
            if (s == EMBER_OK)
                s = ember_buf_append(out, dst.enc, dst.enc_len);
            if (s == EMBER_OK)
                s = ember_buf_append(out, placeholder, sizeof placeholder);
            if (s == EMBER_OK) /* may move the body up */
                s = ember_batch_frame_end(out, mark);
            if (s != EMBER_OK)
                return ember_errorf(err, EMBER_ENOMEM,
                                    "pagerank.contribs: out of memory");
            st->at[n++] = out->len - sizeof placeholder;
            (*out_count)++;
        }
        if (rc.p == rc.end)
            return shape_error(err);
        rc.p++; /* the links' end */
        if (ember_rec_next(&rc, &rank) != EMBER_OK ||
            rank.type != EMBER_TYPE_DOUBLE || rc.p == rc.end ||
            *rc.p++ != EMBER_REC_TAG_END || rc.p != rc.end)
            return shape_error(err);
        if (n == 0) {
            out->len = undo;
            *out_count = undo_count;
            continue;
        }
        uint8_t share[9];
        ember_buf sb = ember_buf_fixed(share, sizeof share);
        if (ember_rec_put_double(&sb, rank.u.f64 / (double)n) != EMBER_OK)
            return ember_errorf(err, EMBER_EINVAL,
                                "pagerank.contribs: cannot encode a share");
        for (size_t i = 0; i < n; i++)
            memcpy(out->data + st->at[i], share, sizeof share);
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "pagerank.contribs: malformed batch");
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * pagerank.damp
 * ---------------------------------------------------------------------- */

typedef struct damp_state {
    const ember_host_api *host;
    double base;
} damp_state;

static ember_status damp_open(const ember_host_api *host, const uint8_t *arg,
                              size_t arg_len, void **state, ember_error *err)
{
    ember_value v;
    if (ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_DOUBLE)
        return ember_errorf(err, EMBER_EINVAL,
                            "pagerank.damp: the argument must be (double "
                            "base)");
    damp_state *d = host->alloc(sizeof *d);
    if (!d)
        return ember_errorf(err, EMBER_ENOMEM, "pagerank.damp: out of memory");
    d->host = host;
    d->base = v.u.f64;
    *state = d;
    return EMBER_OK;
}

static void damp_close(void *state)
{
    damp_state *d = state;
    if (d)
        d->host->free(d);
}

static ember_status damp_batch(void *state, const ember_batch *in,
                               ember_buf *out, uint64_t *out_count,
                               ember_error *err)
{
    damp_state *d = state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value v;
        if (ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
            v.type != EMBER_TYPE_DOUBLE)
            return ember_errorf(err, EMBER_EINVAL,
                                "pagerank.damp: expected a double");
        if (put_double_record(out, DAMPING * v.u.f64 + d->base) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "pagerank.damp: out of memory");
        (*out_count)++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "pagerank.damp: malformed batch");
    return EMBER_OK;
}

static const ember_function_vtable parse_edge_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = parse_edge_batch,
};
static const ember_function_vtable one_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = one_batch,
};
static const ember_function_vtable contribs_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = contribs_open,
    .close = contribs_close,
    .map_batch = contribs_batch,
};
static const ember_function_vtable damp_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = damp_open,
    .close = damp_close,
    .map_batch = damp_batch,
};

static const ember_component components[] = {
    EMBER_FUNCTION_COMPONENT("parse_edge", "line 'src<TAB>dst' -> (src, dst)",
                             &parse_edge_vt),
    EMBER_FUNCTION_COMPONENT("one", "any value -> 1.0", &one_vt),
    EMBER_FUNCTION_COMPONENT("contribs",
                             "(src, ((dst...), rank)) -> (dst, rank / "
                             "out-degree) per dst",
                             &contribs_vt),
    EMBER_FUNCTION_COMPONENT("damp", "sum -> 0.85 * sum + base",
                             &damp_vt),
};

EMBER_PLUGIN(pagerank, "1.0.0", "the functions of the pagerank example",
             "Apache-2.0", components, NULL, NULL);
