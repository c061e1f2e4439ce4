/*
 * std_predicates.c — functions that answer a yes/no question per record,
 * for filter: std.compare, std.contains. Each outputs exactly one record
 * per input, holding one bool.
 */
#include <string.h>

#include "std_internal.h"

/* ------------------------------------------------------------------------
 * std.compare
 * ---------------------------------------------------------------------- */

/* The comparison operators, by the sign of ember_rec_compare they accept:
 * bit 0 for < 0, bit 1 for == 0, bit 2 for > 0. */
static const struct {
    const char *name;
    unsigned accept;
} compare_ops[] = {
    {"lt", 1u}, {"le", 3u}, {"eq", 2u}, {"ne", 5u}, {"ge", 6u}, {"gt", 4u},
};

#define COMPARE_SHAPE                                                      \
    "an encoded record (op, value) with op one of \"lt\", \"le\", "       \
    "\"eq\", \"ne\", \"ge\", \"gt\""

/* The opened compare: the accepted signs and a copy of the value. */
typedef struct compare_state {
    const ember_host_api *host;
    unsigned accept;
    size_t enc_len;
    uint8_t enc[]; /* the value's encoding */
} compare_state;

/* arg: (op, value), op a string naming the operator, value anything. */
static ember_status compare_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    ember_rec_cursor rc;
    ember_value op, value;
    unsigned accept = 0;
    size_t i;
    ember_status s;
    if (state == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free))
        return ember_errorf(err, EMBER_EINVAL,
                            "std.compare: open: no host services");
    *state = NULL;
    s = std_check_arg(arg, arg_len, 2, "compare", COMPARE_SHAPE, err);
    if (s != EMBER_OK)
        return s;
    rc = ember_rec_cursor_init(arg, arg_len);
    if (ember_rec_next(&rc, &op) != EMBER_OK ||
        ember_rec_next(&rc, &value) != EMBER_OK)
        return ember_errorf(err, EMBER_EINTERNAL,
                            "std.compare: cannot read a validated argument");
    if (op.type != EMBER_TYPE_STRING)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.compare: bad argument: the operator must be "
                            "a string, got %s",
                            ember_type_name(op.type));
    for (i = 0; i < sizeof compare_ops / sizeof compare_ops[0]; i++)
        if (op.u.str.raw_len == 2 &&
            memcmp(op.u.str.raw, compare_ops[i].name, 2) == 0)
            accept = compare_ops[i].accept;
    if (accept == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.compare: bad argument: unknown operator "
                            "'%.*s' (expected lt, le, eq, ne, ge or gt)",
                            (int)(op.u.str.raw_len > 16 ? 16
                                                        : op.u.str.raw_len),
                            (const char *)op.u.str.raw);
    compare_state *st = host->alloc(sizeof *st + value.enc_len);
    if (st == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "std.compare: out of memory");
    st->host = host;
    st->accept = accept;
    st->enc_len = value.enc_len;
    memcpy(st->enc, value.enc, value.enc_len);
    *state = st;
    return EMBER_OK;
}

/* Frees what compare_open made (NULL is a no-op). */
static void compare_close(void *state)
{
    compare_state *st = state;
    if (st)
        st->host->free(st);
}

/*
 * Each record -> (first element OP value), comparing the encodings, which
 * is the typed order: values of different types compare by type (null <
 * bool < int < double < string < bytes < tuple), so the int 5 is less
 * than the double 1.0. Elements after the first are not looked at.
 */
static ember_status compare_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    const compare_state *st = state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    if (st == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.compare: called without open");
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value first;
        s = ember_rec_get(rec, len, 0, &first);
        if (s == EMBER_ENOTFOUND) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.compare: record %llu is empty",
                             (unsigned long long)n);
            goto done;
        }
        if (s != EMBER_OK) {
            s = std_malformed(err, "compare", "record", n);
            goto done;
        }
        int cmp = ember_rec_compare(first.enc, first.enc_len, st->enc,
                                    st->enc_len);
        s = std_put_bool_record(out, (st->accept >> (cmp + 1)) & 1u);
        if (s != EMBER_OK) {
            s = std_out_error(err, "compare", s);
            goto done;
        }
        n++;
    }
    if (s != EMBER_END) {
        s = std_frame_error(err, "compare", n);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n;
    return s;
}

const ember_function_vtable std_compare_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = compare_open,
    .close = compare_close,
    .map_batch = compare_map,
};

/* ------------------------------------------------------------------------
 * std.contains
 * ---------------------------------------------------------------------- */

/* The opened contains: the needle (escaped form) and its finder. */
typedef struct contains_state {
    const ember_host_api *host;
    std_finder finder; /* points into needle */
    uint8_t needle[];
} contains_state;

/* arg: a record of one string, the text to look for (may be empty). */
static ember_status contains_open(const ember_host_api *host,
                                  const uint8_t *arg, size_t arg_len,
                                  void **state, ember_error *err)
{
    ember_value v;
    ember_status s;
    if (state == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free))
        return ember_errorf(err, EMBER_EINVAL,
                            "std.contains: open: no host services");
    *state = NULL;
    s = std_check_arg(arg, arg_len, 1, "contains",
                      "an encoded record holding the text to look for (a "
                      "string)",
                      err);
    if (s != EMBER_OK)
        return s;
    if (ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK)
        return ember_errorf(err, EMBER_EINTERNAL,
                            "std.contains: cannot read a validated argument");
    if (v.type != EMBER_TYPE_STRING)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.contains: bad argument: expected a string, "
                            "got %s",
                            ember_type_name(v.type));
    contains_state *st = host->alloc(sizeof *st + v.u.str.raw_len);
    if (st == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "std.contains: out of memory");
    st->host = host;
    if (v.u.str.raw_len)
        memcpy(st->needle, v.u.str.raw, v.u.str.raw_len);
    std_finder_init(&st->finder, st->needle, v.u.str.raw_len);
    *state = st;
    return EMBER_OK;
}

/* Frees what contains_open made (NULL is a no-op). */
static void contains_close(void *state)
{
    contains_state *st = state;
    if (st)
        st->host->free(st);
}

/* Each one-string record -> (true) when the needle occurs in it (the
 * empty needle occurs in every string), else (false). */
static ember_status contains_map(void *state, const ember_batch *in,
                                 ember_buf *out, uint64_t *out_count,
                                 ember_error *err)
{
    const contains_state *st = state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    if (st == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.contains: called without open");
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value v;
        s = std_one_string(rec, len, &v, "contains", n, err);
        if (s != EMBER_OK)
            goto done;
        size_t at = std_find(&st->finder, v.u.str.raw, v.u.str.raw_len, 0);
        s = std_put_bool_record(out, at != SIZE_MAX);
        if (s != EMBER_OK) {
            s = std_out_error(err, "contains", s);
            goto done;
        }
        n++;
    }
    if (s != EMBER_END) {
        s = std_frame_error(err, "contains", n);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n;
    return s;
}

const ember_function_vtable std_contains_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = contains_open,
    .close = contains_close,
    .map_batch = contains_map,
};
