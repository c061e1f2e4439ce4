/*
 * std_pairs.c — whole records and key/value pairs: std.identity,
 * std.pair_with, std.swap, std.hash.
 */
#include <string.h>

#include "ember/hash.h"
#include "std_internal.h"

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
        return std_frame_error(err, "identity", n);
    s = ember_buf_append(out, in->data, in->len);
    if (s != EMBER_OK)
        return std_out_error(err, "identity", s);
    *out_count += n;
    return EMBER_OK;
}

const ember_function_vtable std_identity_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = identity_map,
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
    s = std_check_arg(arg, arg_len, 1, "pair_with",
                      "an encoded record holding the value to pair with",
                      err);
    if (s != EMBER_OK)
        return s;
    if (ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK)
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

/* Each record r -> the record (r's first element, v). */
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
        if (s == EMBER_ENOTFOUND) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "std.pair_with: record %llu is empty",
                             (unsigned long long)n);
            goto done;
        }
        if (s != EMBER_OK) {
            s = std_malformed(err, "pair_with", "record", n);
            goto done;
        }
        s = ember_batch_frame_begin(out, &mark);
        if (s == EMBER_OK) {
            s = ember_rec_put_value(out, &first);
            if (s == EMBER_OK)
                s = ember_buf_append(out, st->enc, st->enc_len);
            if (s == EMBER_OK)
                s = ember_batch_frame_end(out, mark);
            else
                out->len = mark;
        }
        if (s != EMBER_OK) {
            s = std_out_error(err, "pair_with", s);
            goto done;
        }
        n++;
    }
    if (s != EMBER_END) {
        s = std_frame_error(err, "pair_with", n);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n;
    return s;
}

const ember_function_vtable std_pair_with_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = pair_with_open,
    .close = pair_with_close,
    .map_batch = pair_with_map,
};

/* ------------------------------------------------------------------------
 * std.swap
 * ---------------------------------------------------------------------- */

/*
 * Appends the framed record (b, a) for the pair rec[0..len) = (a, b). The
 * output is as long as the input (the same elements, reordered), so the
 * frame length is known up front. out->len unchanged on failure.
 */
static ember_status put_swapped(ember_buf *out, const ember_value *a,
                                const ember_value *b, size_t len)
{
    size_t mark = out->len;
    ember_status s = ember_uvarint_put(out, (uint64_t)len);
    if (s == EMBER_OK)
        s = ember_buf_reserve(out, len);
    if (s != EMBER_OK) {
        out->len = mark;
        return s;
    }
    memcpy(out->data + out->len, b->enc, b->enc_len);
    memcpy(out->data + out->len + b->enc_len, a->enc, a->enc_len);
    out->len += len;
    return EMBER_OK;
}

/* Each pair (a, b) -> (b, a); any record of another size is an error. */
static ember_status swap_map(void *state, const ember_batch *in,
                             ember_buf *out, uint64_t *out_count,
                             ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        size_t count = 0;
        ember_value a, b;
        if (ember_rec_validate(rec, len, &count) != EMBER_OK) {
            s = std_malformed(err, "swap", "record", n);
            goto done;
        }
        if (count != 2) {
            s = std_fail(err, EMBER_EINVAL, "swap", "record", n,
                         "expected a pair (2 elements), got %zu elements",
                         count);
            goto done;
        }
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        if (ember_rec_next(&rc, &a) != EMBER_OK ||
            ember_rec_next(&rc, &b) != EMBER_OK) {
            s = std_malformed(err, "swap", "record", n);
            goto done;
        }
        s = put_swapped(out, &a, &b, len);
        if (s != EMBER_OK) {
            s = std_out_error(err, "swap", s);
            goto done;
        }
        n++;
    }
    if (s != EMBER_END) {
        s = std_frame_error(err, "swap", n);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n;
    return s;
}

const ember_function_vtable std_swap_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = swap_map,
};

/* ------------------------------------------------------------------------
 * std.hash
 * ---------------------------------------------------------------------- */

/* The uint64 h as the int64 with the same bits (no implementation-defined
 * conversion). */
static int64_t as_int64(uint64_t h)
{
    if (h <= (uint64_t)INT64_MAX)
        return (int64_t)h;
    return -(int64_t)(~h) - 1;
}

/*
 * Each record -> the one-int record ember_hash64(record bytes) read as an
 * int64. Equal records have equal bytes (the encoding is canonical), so
 * equal keys hash alike. Malformed records are refused.
 */
static ember_status hash_map(void *state, const ember_batch *in,
                             ember_buf *out, uint64_t *out_count,
                             ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        uint8_t tmp[9];
        ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
        if (ember_rec_validate(rec, len, NULL) != EMBER_OK) {
            s = std_malformed(err, "hash", "record", n);
            goto done;
        }
        s = ember_rec_put_int(&one, as_int64(ember_hash64(rec, len)));
        if (s == EMBER_OK)
            s = ember_batch_append(out, one.data, one.len);
        if (s != EMBER_OK) {
            s = std_out_error(err, "hash", s);
            goto done;
        }
        n++;
    }
    if (s != EMBER_END) {
        s = std_frame_error(err, "hash", n);
        goto done;
    }
    s = EMBER_OK;
done:
    *out_count += n;
    return s;
}

const ember_function_vtable std_hash_vtable = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = hash_map,
};
