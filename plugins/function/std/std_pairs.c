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

/* Counts one record (an std_record_body that writes nothing). */
static ember_status count_one(void *ctx, const uint8_t *rec, size_t len,
                              uint64_t index, ember_buf *out,
                              uint64_t *out_count, ember_error *err)
{
    (void)ctx;
    (void)rec;
    (void)len;
    (void)index;
    (void)out;
    (void)err;
    (*out_count)++;
    return EMBER_OK;
}

/*
 * Checks the framing of every record and copies the batch through in one
 * piece. Record contents are passed on byte for byte, not validated.
 */
static ember_status identity_map(void *state, const ember_batch *in,
                                 ember_buf *out, uint64_t *out_count,
                                 ember_error *err)
{
    (void)state;
    uint64_t n = 0;
    ember_status s =
        std_each_record(in, NULL, &n, err, "identity", count_one, NULL);
    if (s != EMBER_OK)
        return s;
    s = ember_buf_append(out, in->data, in->len);
    if (s != EMBER_OK)
        return std_out_error(err, "identity", s);
    *out_count += n;
    return EMBER_OK;
}

STD_MAP_VTABLE(identity, identity_map, NULL, NULL);

/* ------------------------------------------------------------------------
 * std.pair_with
 * ---------------------------------------------------------------------- */

/* The opened pair_with: a private copy of the value's encoding. */
typedef struct pair_with_state {
    std_state_head head;
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
    pair_with_state *st;
    ember_status s = std_open_arg(
        host, state, arg, arg_len, 1, "pair_with",
        "an encoded record holding the value to pair with", &v, err);
    if (s != EMBER_OK)
        return s;
    s = std_state_new(host, sizeof *st + v.enc_len, "pair_with", state, err);
    if (s != EMBER_OK)
        return s;
    st = *state;
    st->enc_len = v.enc_len;
    memcpy(st->enc, v.enc, v.enc_len);
    return EMBER_OK;
}

/* Each record r -> the record (r's first element, v). */
static ember_status pair_with_one(void *ctx, const uint8_t *rec, size_t len,
                                  uint64_t index, ember_buf *out,
                                  uint64_t *out_count, ember_error *err)
{
    const pair_with_state *st = ctx;
    ember_value first;
    size_t mark;
    ember_status s = std_first_value(rec, len, &first, "pair_with", index,
                                     err);
    if (s != EMBER_OK)
        return s;
    /* the element's encoding is canonical: copy it as it is, with the
     * frame length known up front */
    mark = out->len;
    s = ember_uvarint_put(out, (uint64_t)(first.enc_len + st->enc_len));
    if (s == EMBER_OK)
        s = ember_buf_append(out, first.enc, first.enc_len);
    if (s == EMBER_OK)
        s = ember_buf_append(out, st->enc, st->enc_len);
    if (s != EMBER_OK) {
        out->len = mark;
        return std_out_error(err, "pair_with", s);
    }
    (*out_count)++;
    return EMBER_OK;
}

STD_MAP_FUNCTION(pair_with, pair_with_one, pair_with_open, std_state_free,
                 NULL, 1);

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
static ember_status swap_one(void *ctx, const uint8_t *rec, size_t len,
                             uint64_t index, ember_buf *out,
                             uint64_t *out_count, ember_error *err)
{
    size_t count = 0;
    ember_value a, b;
    ember_status s;
    (void)ctx;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK)
        return std_malformed(err, "swap", "record", index);
    if (count != 2)
        return std_fail(err, EMBER_EINVAL, "swap", "record", index,
                        "expected a pair (2 elements), got %zu elements",
                        count);
    ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
    if (ember_rec_next(&rc, &a) != EMBER_OK ||
        ember_rec_next(&rc, &b) != EMBER_OK)
        return std_malformed(err, "swap", "record", index);
    s = put_swapped(out, &a, &b, len);
    if (s != EMBER_OK)
        return std_out_error(err, "swap", s);
    (*out_count)++;
    return EMBER_OK;
}

STD_MAP_FUNCTION(swap, swap_one, NULL, NULL, NULL, 0);

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
static ember_status hash_one(void *ctx, const uint8_t *rec, size_t len,
                             uint64_t index, ember_buf *out,
                             uint64_t *out_count, ember_error *err)
{
    uint8_t tmp[9];
    ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
    ember_status s;
    (void)ctx;
    if (ember_rec_validate(rec, len, NULL) != EMBER_OK)
        return std_malformed(err, "hash", "record", index);
    s = ember_rec_put_int(&one, as_int64(ember_hash64(rec, len)));
    if (s == EMBER_OK)
        s = ember_batch_append(out, one.data, one.len);
    if (s != EMBER_OK)
        return std_out_error(err, "hash", s);
    (*out_count)++;
    return EMBER_OK;
}

STD_MAP_FUNCTION(hash, hash_one, NULL, NULL, NULL, 0);

