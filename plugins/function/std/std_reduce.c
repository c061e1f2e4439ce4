/*
 * std_reduce.c — the folds: std.sum, std.count, std.min, std.max,
 * std.concat.
 *
 * A REDUCE call folds the accumulator (when there is one) and then every
 * value of the batch, in order, and writes exactly one record, not
 * batch-framed, to `out`; on failure out->len is left as it was.
 */
#include <string.h>

#include "std_internal.h"

/* ------------------------------------------------------------------------
 * std.sum
 * ---------------------------------------------------------------------- */

/* A running sum: int64 until a double shows up, then double. */
typedef struct sum_acc {
    int is_double;
    int64_t i;
    double d;
} sum_acc;

/* Adds the single int/double element of rec[0..len) (value `index`, or
 * the accumulator) to the sum_acc ctx; an std_record_body that writes
 * nothing. */
static ember_status sum_add(void *ctx, const uint8_t *rec, size_t len,
                            uint64_t index, ember_buf *out,
                            uint64_t *out_count, ember_error *err)
{
    sum_acc *acc = ctx;
    ember_value v;
    ember_status s = std_single_value(rec, len, &v, "sum", "int or double",
                                      "value", index, err);
    (void)out;
    (void)out_count;
    if (s != EMBER_OK)
        return s;
    if (v.type == EMBER_TYPE_INT) {
        if (acc->is_double) {
            acc->d += (double)v.u.i64;
        } else if ((v.u.i64 > 0 && acc->i > INT64_MAX - v.u.i64) ||
                   (v.u.i64 < 0 && acc->i < INT64_MIN - v.u.i64)) {
            return std_fail(err, EMBER_EINVAL, "sum", "value", index,
                            "int64 overflow");
        } else {
            acc->i += v.u.i64;
        }
    } else if (v.type == EMBER_TYPE_DOUBLE) {
        if (!acc->is_double) {
            acc->is_double = 1;
            acc->d = (double)acc->i;
        }
        acc->d += v.u.f64;
    } else {
        return std_fail(err, EMBER_EINVAL, "sum", "value", index,
                        "expected an int or double, got %s",
                        ember_type_name(v.type));
    }
    return EMBER_OK;
}

/*
 * acc (if any) + every value, each a record of one INT or DOUBLE. Ints add
 * as int64 (overflow is an error); once any double is involved the result
 * is a double. No accumulator and no values gives the int 0.
 */
static ember_status sum_reduce(void *state, const uint8_t *acc,
                               size_t acc_len, const ember_batch *values,
                               ember_buf *out, ember_error *err)
{
    (void)state;
    sum_acc total = {0, 0, 0.0};
    ember_status s =
        std_fold(acc, acc_len, values, NULL, err, "sum", sum_add, &total);
    if (s != EMBER_OK)
        return s;
    s = total.is_double ? ember_rec_put_double(out, total.d)
                        : ember_rec_put_int(out, total.i);
    if (s != EMBER_OK)
        return std_out_error(err, "sum", s);
    return EMBER_OK;
}

STD_REDUCE_VTABLE(sum, sum_reduce);

/* ------------------------------------------------------------------------
 * std.count
 * ---------------------------------------------------------------------- */

/* Adds one value to the int64_t count ctx; an std_record_body that writes
 * nothing. */
static ember_status count_add(void *ctx, const uint8_t *rec, size_t len,
                              uint64_t index, ember_buf *out,
                              uint64_t *out_count, ember_error *err)
{
    int64_t *count = ctx;
    (void)rec;
    (void)len;
    (void)out;
    (void)out_count;
    if (*count == INT64_MAX)
        return std_fail(err, EMBER_EINVAL, "count", "value", index,
                        "int64 overflow");
    (*count)++;
    return EMBER_OK;
}

/*
 * The count so far plus one per value. acc, when present, is the count so
 * far: a record of one non-negative INT (what this function outputs); the
 * values' contents are not looked at, only their framing. out receives one
 * record holding the int64 count. To merge partial counts computed
 * elsewhere, use std.sum.
 */
static ember_status count_reduce(void *state, const uint8_t *acc,
                                 size_t acc_len, const ember_batch *values,
                                 ember_buf *out, ember_error *err)
{
    (void)state;
    int64_t count = 0;
    ember_status s;
    if (acc != NULL) {
        ember_value v;
        s = std_single_value(acc, acc_len, &v, "count",
                             "int (the count so far)", "value", STD_ACC, err);
        if (s != EMBER_OK)
            return s;
        s = std_want_type(&v, EMBER_TYPE_INT, "count",
                          "the accumulator must be the count so far (an "
                          "int)",
                          err);
        if (s != EMBER_OK)
            return s;
        if (v.u.i64 < 0)
            return ember_errorf(err, EMBER_EINVAL,
                                "std.count: the accumulator must be the "
                                "count so far, got the negative %lld",
                                (long long)v.u.i64);
        count = v.u.i64;
    }
    s = std_each_record(values, NULL, NULL, err, "count", count_add, &count);
    if (s != EMBER_OK)
        return s;
    s = ember_rec_put_int(out, count);
    if (s != EMBER_OK)
        return std_out_error(err, "count", s);
    return EMBER_OK;
}

STD_REDUCE_VTABLE(count, count_reduce);

/* ------------------------------------------------------------------------
 * std.min and std.max
 * ---------------------------------------------------------------------- */

/* The fold of std.min / std.max so far. */
typedef struct extreme {
    const char *fn; /* "min" or "max" */
    int sign;       /* the ember_rec_compare result that replaces best */
    const uint8_t *best;
    size_t best_len;
} extreme;

/* Validates rec[0..len) (value `index`, or the accumulator) and keeps it
 * in the extreme ctx when it beats the best so far; writes nothing. */
static ember_status extreme_add(void *ctx, const uint8_t *rec, size_t len,
                                uint64_t index, ember_buf *out,
                                uint64_t *out_count, ember_error *err)
{
    extreme *x = ctx;
    (void)out;
    (void)out_count;
    if (ember_rec_validate(rec, len, NULL) != EMBER_OK)
        return std_malformed(err, x->fn, "value", index);
    if (x->best == NULL ||
        ember_rec_compare(rec, len, x->best, x->best_len) == x->sign) {
        x->best = rec;
        x->best_len = len;
    }
    return EMBER_OK;
}

/*
 * The smallest (sign -1) or largest (sign 1) of acc and the values, whole
 * records compared by their encodings (the typed order); the first of
 * equal records wins. Every record is validated. With no accumulator and
 * no values there is nothing to return: an error.
 */
static ember_status extreme_reduce(const char *fn, int sign,
                                   const uint8_t *acc, size_t acc_len,
                                   const ember_batch *values, ember_buf *out,
                                   ember_error *err)
{
    extreme x = {fn, sign, NULL, 0};
    ember_status s =
        std_fold(acc, acc_len, values, NULL, err, fn, extreme_add, &x);
    if (s != EMBER_OK)
        return s;
    if (x.best == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: nothing to fold: no accumulator and no "
                            "values",
                            fn);
    s = ember_buf_append(out, x.best, x.best_len);
    if (s != EMBER_OK)
        return std_out_error(err, fn, s);
    return EMBER_OK;
}

/* The smallest record. */
static ember_status min_reduce(void *state, const uint8_t *acc,
                               size_t acc_len, const ember_batch *values,
                               ember_buf *out, ember_error *err)
{
    (void)state;
    return extreme_reduce("min", -1, acc, acc_len, values, out, err);
}

/* The largest record. */
static ember_status max_reduce(void *state, const uint8_t *acc,
                               size_t acc_len, const ember_batch *values,
                               ember_buf *out, ember_error *err)
{
    (void)state;
    return extreme_reduce("max", 1, acc, acc_len, values, out, err);
}

STD_REDUCE_VTABLE(min, min_reduce);

STD_REDUCE_VTABLE(max, max_reduce);

/* ------------------------------------------------------------------------
 * std.concat
 * ---------------------------------------------------------------------- */

/*
 * Appends the payload of the one-string-or-bytes record rec[0..len) (value
 * `index`, or the accumulator) to out, writing the tag first when the
 * uint32_t type ctx is still 0 and refusing a type other than it after
 * that. Escaped payloads concatenate into the escaped concatenation, so
 * raw bytes are copied as they are. out_count is not used.
 */
static ember_status concat_add(void *ctx, const uint8_t *rec, size_t len,
                               uint64_t index, ember_buf *out,
                               uint64_t *out_count, ember_error *err)
{
    uint32_t *type = ctx;
    ember_value v;
    ember_status s = std_single_value(rec, len, &v, "concat",
                                      "string or bytes", "value", index, err);
    (void)out_count;
    if (s != EMBER_OK)
        return s;
    if (v.type != EMBER_TYPE_STRING && v.type != EMBER_TYPE_BYTES)
        return std_fail(err, EMBER_EINVAL, "concat", "value", index,
                        "expected a string or bytes, got %s",
                        ember_type_name(v.type));
    if (*type == 0) {
        s = ember_buf_put_u8(out, v.type == EMBER_TYPE_STRING
                                      ? (uint8_t)EMBER_REC_TAG_STRING
                                      : (uint8_t)EMBER_REC_TAG_BYTES);
        if (s != EMBER_OK)
            return std_out_error(err, "concat", s);
        *type = v.type;
    } else if (v.type != *type) {
        return std_fail(err, EMBER_EINVAL, "concat", "value", index,
                        "cannot concatenate %s to %s", ember_type_name(v.type),
                        ember_type_name(*type));
    }
    s = ember_buf_append(out, v.u.str.raw, v.u.str.raw_len);
    if (s != EMBER_OK)
        return std_out_error(err, "concat", s);
    return EMBER_OK;
}

/*
 * acc (if any) followed by every value, each a record of one string (or
 * each of one bytes value): one string (bytes) with all of them in order.
 * Mixing strings and bytes is an error, and so is having nothing at all.
 */
static ember_status concat_reduce(void *state, const uint8_t *acc,
                                  size_t acc_len, const ember_batch *values,
                                  ember_buf *out, ember_error *err)
{
    (void)state;
    size_t mark = out->len;
    uint32_t type = 0;
    ember_status s =
        std_fold(acc, acc_len, values, out, err, "concat", concat_add, &type);
    if (s != EMBER_OK)
        goto done;
    if (type == 0) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "std.concat: nothing to fold: no accumulator and no "
                         "values");
        goto done;
    }
    s = ember_buf_put_u8(out, 0x00);
    if (s != EMBER_OK)
        s = std_out_error(err, "concat", s);
done:
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

STD_REDUCE_VTABLE(concat, concat_reduce);
