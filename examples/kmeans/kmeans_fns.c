/*
 * kmeans_fns.c — plugin "kmeans": the functions of the kmeans example
 * (kmeans.c).
 *
 *   kmeans.parse    flat_map  (line) -> one record of D doubles, the
 *                             line's space-separated decimals; blank lines
 *                             give nothing, anything that is not a finite
 *                             decimal fails the task naming the line
 *   kmeans.closest  map       point (x1..xD) -> (i, ((x1..xD), 1)), i the
 *                             index of the closest centre (squared
 *                             Euclidean distance, the lowest index on a
 *                             tie); argument: the record (int D, c[0][0],
 *                             ..., c[0][D-1], c[1][0], ...), K x D doubles
 *   kmeans.add      reduce    ((s1..sD), n) values -> their elementwise sum
 *                             and total count
 *
 * States are per task; calls on one state are not concurrent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/sdk.h>

/* Longest number token kmeans.parse accepts. */
#define MAX_TOKEN 63

/* ------------------------------------------------------------------------
 * kmeans.parse
 * ---------------------------------------------------------------------- */

static int blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Parses token t[0..n) as a finite decimal into *x; -1 if it is not one. */
static int parse_number(const uint8_t *t, size_t n, double *x)
{
    char buf[MAX_TOKEN + 1];
    if (n == 0 || n > MAX_TOKEN)
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* decimals only: no hex, inf or nan through strtod */
        uint8_t c = t[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' ||
              c == 'e' || c == 'E'))
            return -1;
        buf[i] = (char)c;
    }
    buf[n] = '\0';
    char *end;
    *x = strtod(buf, &end);
    return *end == '\0' && isfinite(*x) ? 0 : -1;
}

static ember_status parse_batch(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value line;
        if (ember_rec_get(rec, len, 0, &line) != EMBER_OK ||
            line.type != EMBER_TYPE_STRING)
            return ember_errorf(err, EMBER_EINVAL,
                                "kmeans.parse: expected a line (string)");
        /* digits, signs, dots and exponents are never escaped bytes */
        const uint8_t *p = line.u.str.raw;
        size_t n = line.u.str.raw_len, i = 0, mark;
        if ((s = ember_batch_frame_begin(out, &mark)) != EMBER_OK)
            return ember_errorf(err, s, "kmeans.parse: out of memory");
        size_t dims = 0;
        while (i < n) {
            while (i < n && blank(p[i]))
                i++;
            if (i == n)
                break;
            size_t start = i;
            while (i < n && !blank(p[i]))
                i++;
            double x;
            if (parse_number(p + start, i - start, &x) != 0) {
                out->len = mark;
                return ember_errorf(err, EMBER_EINVAL,
                                    "kmeans.parse: '%.*s' is not a number, "
                                    "in line '%.*s'",
                                    (int)(i - start < 64 ? i - start : 64),
                                    (const char *)p + start,
                                    (int)(n < 200 ? n : 200), (const char *)p);
            }
            if ((s = ember_rec_put_double(out, x)) != EMBER_OK) {
                out->len = mark;
                return ember_errorf(err, s, "kmeans.parse: out of memory");
            }
            dims++;
        }
        if (dims == 0) { /* a blank line */
            out->len = mark;
            continue;
        }
        if ((s = ember_batch_frame_end(out, mark)) != EMBER_OK)
            return ember_errorf(err, s, "kmeans.parse: out of memory");
        (*out_count)++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL, "kmeans.parse: malformed batch");
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * kmeans.closest
 * ---------------------------------------------------------------------- */

typedef struct centres {
    const ember_host_api *host;
    size_t k, dims;
    double *c;     /* k x dims */
    double *point; /* dims: the point being placed */
} centres;

static void closest_close(void *state)
{
    centres *cs = state;
    if (!cs)
        return;
    cs->host->free(cs->c);
    cs->host->free(cs->point);
    cs->host->free(cs);
}

static ember_status closest_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    ember_rec_cursor c = ember_rec_cursor_init(arg, arg_len);
    ember_value v;
    size_t count = 0;
    ember_status s;
    while ((s = ember_rec_next(&c, &v)) == EMBER_OK)
        count++;
    if (s != EMBER_END || ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_INT || v.u.i64 <= 0 ||
        (uint64_t)v.u.i64 > count ||
        (count - 1) % (size_t)v.u.i64 != 0 || count == 1)
        return ember_errorf(err, EMBER_EINVAL,
                            "kmeans.closest: the argument must be (int D, "
                            "K x D doubles)");
    centres *cs = host->alloc(sizeof *cs);
    if (!cs)
        return ember_errorf(err, EMBER_ENOMEM, "kmeans.closest: out of memory");
    cs->host = host;
    cs->dims = (size_t)v.u.i64;
    cs->k = (count - 1) / cs->dims;
    cs->c = host->alloc(cs->k * cs->dims * sizeof *cs->c);
    cs->point = host->alloc(cs->dims * sizeof *cs->point);
    if (!cs->c || !cs->point) {
        closest_close(cs);
        return ember_errorf(err, EMBER_ENOMEM, "kmeans.closest: out of memory");
    }
    c = ember_rec_cursor_init(arg, arg_len);
    ember_rec_next(&c, NULL);
    for (size_t i = 0; i < cs->k * cs->dims; i++) {
        if (ember_rec_next(&c, &v) != EMBER_OK ||
            v.type != EMBER_TYPE_DOUBLE) {
            closest_close(cs);
            return ember_errorf(err, EMBER_EINVAL,
                                "kmeans.closest: centre coordinates must be "
                                "doubles");
        }
        cs->c[i] = v.u.f64;
    }
    *state = cs;
    return EMBER_OK;
}

static ember_status closest_batch(void *state, const ember_batch *in,
                                  ember_buf *out, uint64_t *out_count,
                                  ember_error *err)
{
    centres *cs = state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_rec_cursor pc = ember_rec_cursor_init(rec, len);
        ember_value v;
        size_t d = 0;
        while ((s = ember_rec_next(&pc, &v)) == EMBER_OK &&
               v.type == EMBER_TYPE_DOUBLE && d < cs->dims)
            cs->point[d++] = v.u.f64;
        if (s != EMBER_END || d != cs->dims)
            return ember_errorf(err, EMBER_EINVAL,
                                "kmeans.closest: a point must have %zu "
                                "coordinates (doubles), as the centres",
                                cs->dims);
        size_t best = 0;
        double best_d = INFINITY;
        for (size_t k = 0; k < cs->k; k++) {
            const double *ck = cs->c + k * cs->dims;
            double dist = 0;
            for (size_t j = 0; j < cs->dims; j++)
                dist += (cs->point[j] - ck[j]) * (cs->point[j] - ck[j]);
            if (dist < best_d) {
                best_d = dist;
                best = k;
            }
        }
        /* (best, ((x1..xD), 1)): the point's record bytes are exactly the
         * encodings of its coordinates */
        size_t mark;
        s = ember_batch_frame_begin(out, &mark);
        if (s == EMBER_OK)
            s = ember_rec_put_int(out, (int64_t)best);
        if (s == EMBER_OK)
            s = ember_rec_tuple_begin(out);
        if (s == EMBER_OK)
            s = ember_rec_tuple_begin(out);
        if (s == EMBER_OK)
            s = ember_buf_append(out, rec, len);
        if (s == EMBER_OK)
            s = ember_rec_tuple_end(out);
        if (s == EMBER_OK)
            s = ember_rec_put_int(out, 1);
        if (s == EMBER_OK)
            s = ember_rec_tuple_end(out);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(out, mark);
        if (s != EMBER_OK) {
            out->len = mark;
            return ember_errorf(err, s, "kmeans.closest: out of memory");
        }
        (*out_count)++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "kmeans.closest: malformed batch");
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * kmeans.add
 * ---------------------------------------------------------------------- */

typedef struct adder {
    const ember_host_api *host;
    double *sum;
    size_t cap;
} adder;

static ember_status add_open(const ember_host_api *host, const uint8_t *arg,
                             size_t arg_len, void **state, ember_error *err)
{
    (void)arg;
    (void)arg_len;
    adder *a = host->alloc(sizeof *a);
    if (!a)
        return ember_errorf(err, EMBER_ENOMEM, "kmeans.add: out of memory");
    a->host = host;
    a->sum = NULL;
    a->cap = 0;
    *state = a;
    return EMBER_OK;
}

static void add_close(void *state)
{
    adder *a = state;
    if (!a)
        return;
    a->host->free(a->sum);
    a->host->free(a);
}

/*
 * Adds the value ((x1..xD), n) in rec to a->sum[0..*dims) and *count; the
 * first value (*dims == 0) sets D. -1 when the value is not of that form.
 */
static int add_value(adder *a, const uint8_t *rec, size_t len, size_t *dims,
                     int64_t *count)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    ember_value vec, n, x;
    if (ember_rec_next(&c, &vec) != EMBER_OK || vec.type != EMBER_TYPE_TUPLE ||
        ember_rec_next(&c, &n) != EMBER_OK || n.type != EMBER_TYPE_INT ||
        ember_rec_next(&c, NULL) != EMBER_END)
        return -1;
    ember_rec_cursor vc = ember_rec_tuple_cursor(&vec);
    size_t d = 0;
    int first = *dims == 0;
    while (ember_rec_next(&vc, &x) == EMBER_OK) {
        if (x.type != EMBER_TYPE_DOUBLE || (!first && d >= *dims))
            return -1;
        if (first && d == a->cap) {
            size_t cap = a->cap ? 2 * a->cap : 16;
            double *ns = a->host->realloc(a->sum, cap * sizeof *ns);
            if (!ns)
                return -2;
            a->sum = ns;
            a->cap = cap;
        }
        if (first)
            a->sum[d] = x.u.f64;
        else
            a->sum[d] += x.u.f64;
        d++;
    }
    if (d == 0 || (!first && d != *dims))
        return -1;
    *dims = d;
    *count += n.u.i64;
    return 0;
}

static ember_status add_reduce(void *state, const uint8_t *acc,
                               size_t acc_len, const ember_batch *values,
                               ember_buf *out, ember_error *err)
{
    adder *a = state;
    size_t dims = 0;
    int64_t count = 0;
    int r = acc ? add_value(a, acc, acc_len, &dims, &count) : 0;
    ember_batch_cursor c = ember_batch_cursor_of(values);
    const uint8_t *rec;
    size_t len;
    ember_status s = EMBER_OK;
    while (r == 0 && (s = ember_batch_next(&c, &rec, &len)) == EMBER_OK)
        r = add_value(a, rec, len, &dims, &count);
    if (r == -2)
        return ember_errorf(err, EMBER_ENOMEM, "kmeans.add: out of memory");
    if (r != 0 || (s != EMBER_END && s != EMBER_OK) || dims == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "kmeans.add: expected ((x1..xD), n) values of "
                            "one dimension D");
    size_t mark = out->len;
    s = ember_rec_tuple_begin(out);
    for (size_t d = 0; d < dims && s == EMBER_OK; d++)
        s = ember_rec_put_double(out, a->sum[d]);
    if (s == EMBER_OK)
        s = ember_rec_tuple_end(out);
    if (s == EMBER_OK)
        s = ember_rec_put_int(out, count);
    if (s != EMBER_OK) {
        out->len = mark;
        return ember_errorf(err, s, "kmeans.add: out of memory");
    }
    return EMBER_OK;
}

static const ember_function_vtable parse_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = parse_batch,
};
static const ember_function_vtable closest_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = closest_open,
    .close = closest_close,
    .map_batch = closest_batch,
};
static const ember_function_vtable add_vt = {
    .shape = EMBER_FN_REDUCE,
    .determinism = EMBER_DETERMINISTIC,
    .open = add_open,
    .close = add_close,
    .reduce = add_reduce,
};

static const ember_component components[] = {
    EMBER_FUNCTION_COMPONENT("parse", "line of decimals -> (x1..xD)",
                             &parse_vt),
    EMBER_FUNCTION_COMPONENT("closest",
                             "point -> (closest centre, (point, 1))",
                             &closest_vt),
    EMBER_FUNCTION_COMPONENT("add", "((s1..sD), n) values summed", &add_vt),
};

EMBER_PLUGIN(kmeans, "1.0.0", "the functions of the kmeans example",
             "Apache-2.0", components, NULL, NULL);
