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
    std_state_head head;
    unsigned accept;
    size_t enc_len;
    uint8_t enc[]; /* the value's encoding */
} compare_state;

/* arg: (op, value), op a string naming the operator, value anything. */
static ember_status compare_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    ember_value ov[2]; /* op, value */
    const ember_value *op = &ov[0], *value = &ov[1];
    unsigned accept = 0;
    size_t i;
    compare_state *st;
    ember_status s = std_open_arg(host, state, arg, arg_len, 2, "compare",
                                  COMPARE_SHAPE, ov, err);
    if (s != EMBER_OK)
        return s;
    s = std_want_type(op, EMBER_TYPE_STRING, "compare",
                      "bad argument: the operator must be a string", err);
    if (s != EMBER_OK)
        return s;
    for (i = 0; i < sizeof compare_ops / sizeof compare_ops[0]; i++)
        if (op->u.str.raw_len == 2 &&
            memcmp(op->u.str.raw, compare_ops[i].name, 2) == 0)
            accept = compare_ops[i].accept;
    if (accept == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.compare: bad argument: unknown operator "
                            "'%.*s' (expected lt, le, eq, ne, ge or gt)",
                            (int)(op->u.str.raw_len > 16
                                      ? 16
                                      : op->u.str.raw_len),
                            (const char *)op->u.str.raw);
    s = std_state_new(host, sizeof *st + value->enc_len, "compare", state,
                      err);
    if (s != EMBER_OK)
        return s;
    st = *state;
    st->accept = accept;
    st->enc_len = value->enc_len;
    memcpy(st->enc, value->enc, value->enc_len);
    return EMBER_OK;
}

/*
 * Each record -> (first element OP value), comparing the encodings, which
 * is the typed order: values of different types compare by type (null <
 * bool < int < double < string < bytes < tuple), so the int 5 is less
 * than the double 1.0. Elements after the first are not looked at.
 */
static ember_status compare_one(void *ctx, const uint8_t *rec, size_t len,
                                uint64_t index, ember_buf *out,
                                uint64_t *out_count, ember_error *err)
{
    const compare_state *st = ctx;
    ember_value first;
    ember_status s = std_first_value(rec, len, &first, "compare", index, err);
    if (s != EMBER_OK)
        return s;
    int cmp =
        ember_rec_compare(first.enc, first.enc_len, st->enc, st->enc_len);
    s = std_put_bool_record(out, (st->accept >> (cmp + 1)) & 1u);
    if (s != EMBER_OK)
        return std_out_error(err, "compare", s);
    (*out_count)++;
    return EMBER_OK;
}

STD_MAP_FUNCTION(compare, compare_one, compare_open, std_state_free, NULL,
                 1);

/* ------------------------------------------------------------------------
 * std.contains
 * ---------------------------------------------------------------------- */

/* The opened contains: the needle (escaped form) and its finder. */
typedef struct contains_state {
    std_state_head head;
    std_finder finder; /* points into needle */
    uint8_t needle[];
} contains_state;

/* arg: a record of one string, the text to look for (may be empty). */
static ember_status contains_open(const ember_host_api *host,
                                  const uint8_t *arg, size_t arg_len,
                                  void **state, ember_error *err)
{
    ember_value v;
    contains_state *st;
    ember_status s = std_open_arg(host, state, arg, arg_len, 1, "contains",
                                  "an encoded record holding the text to "
                                  "look for (a string)",
                                  &v, err);
    if (s != EMBER_OK)
        return s;
    s = std_want_type(&v, EMBER_TYPE_STRING, "contains",
                      "bad argument: expected a string", err);
    if (s != EMBER_OK)
        return s;
    s = std_state_new(host, sizeof *st + v.u.str.raw_len, "contains", state,
                      err);
    if (s != EMBER_OK)
        return s;
    st = *state;
    if (v.u.str.raw_len)
        memcpy(st->needle, v.u.str.raw, v.u.str.raw_len);
    std_finder_init(&st->finder, st->needle, v.u.str.raw_len);
    return EMBER_OK;
}

/* Each one-string record -> (true) when the needle occurs in it (the
 * empty needle occurs in every string), else (false). */
static ember_status contains_one(void *ctx, const uint8_t *rec, size_t len,
                                 uint64_t index, ember_buf *out,
                                 uint64_t *out_count, ember_error *err)
{
    const contains_state *st = ctx;
    ember_value v;
    ember_status s = std_one_string(rec, len, &v, "contains", index, err);
    if (s != EMBER_OK)
        return s;
    size_t at = std_find(&st->finder, v.u.str.raw, v.u.str.raw_len, 0);
    s = std_put_bool_record(out, at != SIZE_MAX);
    if (s != EMBER_OK)
        return std_out_error(err, "contains", s);
    (*out_count)++;
    return EMBER_OK;
}

STD_MAP_FUNCTION(contains, contains_one, contains_open, std_state_free,
                 NULL, 1);

