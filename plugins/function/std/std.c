/*
 * std.c — the standard function library: plugin "std".
 *
 * Components (all kind "function"):
 *   std.identity     MAP     every record unchanged
 *   std.split_words  MAP     a string record → one record per word
 *   std.pair_with    MAP     record r → (r's first element, the argument)
 *   std.sum          REDUCE  sum of int/double values
 *   std.count        REDUCE  number of values (the accumulator is the
 *                            count so far)
 *
 * Everything works a batch at a time and allocates nothing per record:
 * output records are written straight into the caller's `out` buffer behind
 * a one-byte length placeholder that is patched (and, for records of 128
 * bytes or more, the body shifted) once the record is complete — see
 * frame_begin/frame_end. Records are encoded with ember/record.h.
 *
 * All functions are stateless or have immutable state after open, so any
 * number of tasks may run them at once.
 */
#include <string.h>

#include "ember/function.h"
#include "ember/record.h"

/* ------------------------------------------------------------------------
 * Helpers shared by the functions.
 * ---------------------------------------------------------------------- */

/*
 * Starts a framed output record at the end of out: appends a one-byte
 * length placeholder and sets *mark to its offset. Pair with frame_end.
 */
static ember_status frame_begin(ember_buf *out, size_t *mark)
{
    *mark = out->len;
    return ember_buf_put_u8(out, 0);
}

/*
 * Finishes the record started at mark: writes the uvarint length of the
 * bytes after the placeholder over it, moving the body up when the length
 * needs more than one byte. On failure out->len is reset to mark, dropping
 * the partial record.
 */
static ember_status frame_end(ember_buf *out, size_t mark)
{
    uint8_t len_bytes[10];
    ember_buf lenb = ember_buf_fixed(len_bytes, sizeof len_bytes);
    size_t body = out->len - (mark + 1);
    ember_status s = ember_uvarint_put(&lenb, (uint64_t)body);
    if (s == EMBER_OK && lenb.len > 1) {
        s = ember_buf_reserve(out, lenb.len - 1);
        if (s == EMBER_OK) {
            memmove(out->data + mark + lenb.len, out->data + mark + 1, body);
            out->len += lenb.len - 1;
        }
    }
    if (s != EMBER_OK) {
        out->len = mark;
        return s;
    }
    memcpy(out->data + mark, len_bytes, lenb.len);
    return EMBER_OK;
}

/* The error for a failed append to `out` (a full fixed buffer, no memory). */
static ember_status out_error(ember_error *err, const char *fn,
                              ember_status s)
{
    return ember_errorf(err, s, "std.%s: cannot append to the output: %s",
                        fn, ember_status_name(s));
}

/* The error for a batch whose framing is broken after `good` records. */
static ember_status frame_error(ember_error *err, const char *fn,
                                uint64_t good)
{
    return ember_errorf(err, EMBER_EINVAL,
                        "std.%s: malformed batch: bad record frame after "
                        "%llu records",
                        fn, (unsigned long long)good);
}

/*
 * Reads the only element of the record rec[0..len) into *v. EMBER_OK, or
 * EMBER_EINVAL with a message naming fn and `what` the caller expected.
 */
static ember_status single_value(const uint8_t *rec, size_t len,
                                 ember_value *v, const char *fn,
                                 const char *what, ember_error *err)
{
    size_t count = 0;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: malformed record (%zu bytes)", fn, len);
    if (count != 1)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: expected a record of one %s, got %zu "
                            "elements",
                            fn, what, count);
    return ember_rec_get(rec, len, 0, v);
}

/* ------------------------------------------------------------------------
 * std.identity
 * ---------------------------------------------------------------------- */

/*
 * Checks the framing of every record and copies the batch through in one
 * piece. Record contents are passed on byte for byte, not validated.
 */
static ember_status identity_map(void *state, const ember_batch *in,
                                 ember_buf *out, uint64_t *out_count,
                                 ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK)
        n++;
    if (s != EMBER_END)
        return frame_error(err, "identity", n);
    s = ember_buf_append(out, in->data, in->len);
    if (s != EMBER_OK)
        return out_error(err, "identity", s);
    *out_count += n;
    return EMBER_OK;
}

static const ember_function_vtable identity_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = identity_map,
};

/* ------------------------------------------------------------------------
 * std.split_words
 * ---------------------------------------------------------------------- */

/* Word separators: the benchmark's definition. */
static int is_space(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * Appends one framed single-string record for the word whose encoded
 * payload is w[0..n). `escaped` says whether the string the word came from
 * had escaped 0x00 bytes: then w is already in escaped form (a separator
 * never falls inside an escape pair 0x00 0xFF, as neither byte is a
 * separator), so it is written between the string tag and terminator as
 * is, which is exactly what ember_rec_put_string would produce for the
 * unescaped word.
 */
static ember_status put_word(ember_buf *out, const uint8_t *w, size_t n,
                             int escaped)
{
    size_t mark;
    ember_status s = frame_begin(out, &mark);
    if (s != EMBER_OK)
        return s;
    if (!escaped) {
        s = ember_rec_put_string(out, (const char *)w, n);
    } else {
        s = ember_buf_put_u8(out, (uint8_t)EMBER_REC_TAG_STRING);
        if (s == EMBER_OK)
            s = ember_buf_append(out, w, n);
        if (s == EMBER_OK)
            s = ember_buf_put_u8(out, 0x00);
    }
    if (s != EMBER_OK) {
        out->len = mark;
        return s;
    }
    return frame_end(out, mark);
}

/*
 * For each input record, whose first element must be a string: one output
 * record holding one string per word, in order. Words are maximal runs of
 * bytes other than ' ', '\n', '\r' and '\t'; an empty or all-blank string
 * gives no records. Elements after the first are ignored.
 */
static ember_status split_words_map(void *state, const ember_batch *in,
                                    ember_buf *out, uint64_t *out_count,
                                    ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n_in = 0, n_out = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value v;
        s = ember_rec_get(rec, len, 0, &v);
        if (s == EMBER_ENOTFOUND) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.split_words: expected a string, got an "
                             "empty record");
            goto done;
        }
        if (s != EMBER_OK) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.split_words: malformed record %llu",
                             (unsigned long long)n_in);
            goto done;
        }
        if (v.type != EMBER_TYPE_STRING) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.split_words: expected a string, got %s",
                             ember_type_name(v.type));
            goto done;
        }
        const uint8_t *p = v.u.str.raw;
        const uint8_t *end = p + v.u.str.raw_len;
        int escaped = v.u.str.raw_len != v.u.str.len;
        while (p < end) {
            while (p < end && is_space(*p))
                p++;
            const uint8_t *w = p;
            while (p < end && !is_space(*p))
                p++;
            if (p > w) {
                s = put_word(out, w, (size_t)(p - w), escaped);
                if (s != EMBER_OK) {
                    s = out_error(err, "split_words", s);
                    goto done;
                }
                n_out++;
            }
        }
        n_in++;
    }
    if (s != EMBER_END) {
        s = frame_error(err, "split_words", n_in);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n_out;
    return s;
}

static const ember_function_vtable split_words_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = split_words_map,
};

/* ------------------------------------------------------------------------
 * std.pair_with
 * ---------------------------------------------------------------------- */

/* The opened pair_with: a private copy of the value's encoding. */
typedef struct pair_with_state {
    const ember_host_api *host;
    size_t enc_len;
    uint8_t enc[]; /* the value's encoding, enc_len bytes */
} pair_with_state;

/*
 * arg is one encoded record holding exactly one value v (of any type, a
 * nested tuple included); keeps a copy of v's encoding.
 */
static ember_status pair_with_open(const ember_host_api *host,
                                   const uint8_t *arg, size_t arg_len,
                                   void **state, ember_error *err)
{
    ember_value v;
    ember_status s;
    if (state == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free))
        return ember_errorf(err, EMBER_EINVAL,
                            "std.pair_with: open: no host services");
    *state = NULL;
    if (arg == NULL || arg_len == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.pair_with: missing argument: expected an "
                            "encoded record holding the value to pair with");
    size_t count = 0;
    if (ember_rec_validate(arg, arg_len, &count) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.pair_with: bad argument: %zu bytes that are "
                            "not an encoded record",
                            arg_len);
    if (count != 1)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.pair_with: bad argument: expected a record "
                            "of exactly one value, got %zu values",
                            count);
    s = ember_rec_get(arg, arg_len, 0, &v);
    if (s != EMBER_OK)
        return ember_errorf(err, EMBER_EINTERNAL,
                            "std.pair_with: cannot read a validated "
                            "argument");
    pair_with_state *st = host->alloc(sizeof *st + v.enc_len);
    if (st == NULL)
        return ember_errorf(err, EMBER_ENOMEM,
                            "std.pair_with: out of memory");
    st->host = host;
    st->enc_len = v.enc_len;
    memcpy(st->enc, v.enc, v.enc_len);
    *state = st;
    return EMBER_OK;
}

/* Frees what pair_with_open made (NULL is a no-op). */
static void pair_with_close(void *state)
{
    pair_with_state *st = state;
    if (st)
        st->host->free(st);
}

/* Each record r → the record (r's first element, v). */
static ember_status pair_with_map(void *state, const ember_batch *in,
                                  ember_buf *out, uint64_t *out_count,
                                  ember_error *err)
{
    const pair_with_state *st = state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    if (st == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.pair_with: called without open");
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value first;
        size_t mark;
        s = ember_rec_get(rec, len, 0, &first);
        if (s != EMBER_OK) {
            s = ember_errorf(err, EMBER_EINVAL,
                             s == EMBER_ENOTFOUND
                                 ? "std.pair_with: record %llu is empty"
                                 : "std.pair_with: malformed record %llu",
                             (unsigned long long)n);
            goto done;
        }
        s = frame_begin(out, &mark);
        if (s == EMBER_OK) {
            s = ember_rec_put_value(out, &first);
            if (s == EMBER_OK)
                s = ember_buf_append(out, st->enc, st->enc_len);
            if (s == EMBER_OK)
                s = frame_end(out, mark);
            else
                out->len = mark;
        }
        if (s != EMBER_OK) {
            s = out_error(err, "pair_with", s);
            goto done;
        }
        n++;
    }
    if (s != EMBER_END) {
        s = frame_error(err, "pair_with", n);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n;
    return s;
}

static const ember_function_vtable pair_with_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = pair_with_open,
    .close = pair_with_close,
    .map_batch = pair_with_map,
};

/* ------------------------------------------------------------------------
 * std.sum
 * ---------------------------------------------------------------------- */

/* A running sum: int64 until a double shows up, then double. */
typedef struct sum_acc {
    int is_double;
    int64_t i;
    double d;
} sum_acc;

/* Adds the single int/double element of rec[0..len) to *acc. */
static ember_status sum_add(sum_acc *acc, const uint8_t *rec, size_t len,
                            ember_error *err)
{
    ember_value v;
    ember_status s = single_value(rec, len, &v, "sum", "int or double", err);
    if (s != EMBER_OK)
        return s;
    if (v.type == EMBER_TYPE_INT) {
        if (acc->is_double) {
            acc->d += (double)v.u.i64;
        } else if ((v.u.i64 > 0 && acc->i > INT64_MAX - v.u.i64) ||
                   (v.u.i64 < 0 && acc->i < INT64_MIN - v.u.i64)) {
            return ember_errorf(err, EMBER_EINVAL, "std.sum: int64 overflow");
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
        return ember_errorf(err, EMBER_EINVAL,
                            "std.sum: expected an int or double, got %s",
                            ember_type_name(v.type));
    }
    return EMBER_OK;
}

/*
 * acc (if any) + every value, each a record of one INT or DOUBLE. Ints add
 * as int64 (overflow is an error); once any double is involved the result
 * is a double. No accumulator and no values gives the int 0. out receives
 * one record of one element (not batch-framed).
 */
static ember_status sum_reduce(void *state, const uint8_t *acc,
                               size_t acc_len, const ember_batch *values,
                               ember_buf *out, ember_error *err)
{
    (void)state;
    sum_acc total = {0, 0, 0.0};
    ember_batch_cursor c = ember_batch_cursor_of(values);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s = EMBER_OK;
    if (acc != NULL) {
        s = sum_add(&total, acc, acc_len, err);
        if (s != EMBER_OK)
            goto done;
    }
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        s = sum_add(&total, rec, len, err);
        if (s != EMBER_OK)
            goto done;
        n++;
    }
    if (s != EMBER_END) {
        s = frame_error(err, "sum", n);
        goto done;
    }
    s = total.is_double ? ember_rec_put_double(out, total.d)
                        : ember_rec_put_int(out, total.i);
    if (s != EMBER_OK)
        s = out_error(err, "sum", s);
done:
    return s;
}

static const ember_function_vtable sum_vtable = {
    .shape = EMBER_FN_REDUCE,
    .determinism = EMBER_DETERMINISTIC,
    .reduce = sum_reduce,
};

/* ------------------------------------------------------------------------
 * std.count
 * ---------------------------------------------------------------------- */

/*
 * The count so far plus one per value. acc, when present, is the count so
 * far: a record of one non-negative INT (what this function outputs); the
 * values' contents are not looked at, only their framing. out receives one
 * record holding the int64 count (not batch-framed). To merge partial
 * counts computed elsewhere, use std.sum.
 */
static ember_status count_reduce(void *state, const uint8_t *acc,
                                 size_t acc_len, const ember_batch *values,
                                 ember_buf *out, ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(values);
    const uint8_t *rec;
    size_t len;
    int64_t count = 0;
    uint64_t n = 0;
    ember_status s = EMBER_OK;
    if (acc != NULL) {
        ember_value v;
        s = single_value(acc, acc_len, &v, "count", "int (the count so far)",
                         err);
        if (s != EMBER_OK)
            goto done;
        if (v.type != EMBER_TYPE_INT) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.count: the accumulator must be the count "
                             "so far (an int), got %s",
                             ember_type_name(v.type));
            goto done;
        }
        if (v.u.i64 < 0) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.count: the accumulator must be the count "
                             "so far, got the negative %lld",
                             (long long)v.u.i64);
            goto done;
        }
        count = v.u.i64;
    }
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        if (count == INT64_MAX) {
            s = ember_errorf(err, EMBER_EINVAL, "std.count: int64 overflow");
            goto done;
        }
        count++;
        n++;
    }
    if (s != EMBER_END) {
        s = frame_error(err, "count", n);
        goto done;
    }
    s = ember_rec_put_int(out, count);
    if (s != EMBER_OK)
        s = out_error(err, "count", s);
done:
    return s;
}

static const ember_function_vtable count_vtable = {
    .shape = EMBER_FN_REDUCE,
    .determinism = EMBER_DETERMINISTIC,
    .reduce = count_reduce,
};

/* ------------------------------------------------------------------------
 * The plugin.
 * ---------------------------------------------------------------------- */

static const ember_component std_components[] = {
    EMBER_FUNCTION_COMPONENT("identity",
                             "map: every record unchanged", &identity_vtable),
    EMBER_FUNCTION_COMPONENT("split_words",
                             "map: a record whose first element is a string "
                             "-> one (word) record per run of non-blank "
                             "bytes (blanks: space, \\t, \\n, \\r)",
                             &split_words_vtable),
    EMBER_FUNCTION_COMPONENT("pair_with",
                             "map: record r -> (first element of r, v); the "
                             "argument is an encoded record holding v",
                             &pair_with_vtable),
    EMBER_FUNCTION_COMPONENT("sum",
                             "reduce: sum of int/double values (int64 with "
                             "overflow check; double if any is a double)",
                             &sum_vtable),
    EMBER_FUNCTION_COMPONENT("count",
                             "reduce: number of values; the accumulator is "
                             "the count so far (an int)",
                             &count_vtable),
};

EMBER_PLUGIN(std, "0.1.0", "the standard function library", "Apache-2.0",
             std_components, NULL, NULL);
