/*
 * runtime/recval.h — records as values and values as records, the two
 * conversions every pair operation needs (docs/plugin-sdk.md, "How
 * operations call functions").
 *
 * A record is a sequence of elements. "A record as a value" is its single
 * element when it has exactly one, else a nested tuple of its elements.
 * "A value as a record" is the inverse: a nested tuple's elements, or the
 * one element alone. A pair record is exactly two elements (key, value).
 * Nested tuples are 0x30, the inner elements unescaped, then 0x00
 * (docs/record-format.md), so wrapping a record is two bytes of framing.
 *
 * All helpers are static inline, allocate nothing and write through
 * ember_buf; any thread.
 */
#ifndef EM_RUNTIME_RECVAL_H
#define EM_RUNTIME_RECVAL_H

#include "ember/batch.h"
#include "ember/record.h"

/* Number of top-level elements of rec, or -1 when malformed. */
static inline int64_t em_rec_arity(const uint8_t *rec, size_t len)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    int64_t n = 0;
    ember_status s;
    while ((s = ember_rec_next(&c, NULL)) == EMBER_OK)
        n++;
    return s == EMBER_END ? n : -1;
}

/* Appends rec as one element (see the file comment). */
static inline ember_status em_rec_put_as_value(ember_buf *out,
                                               const uint8_t *rec, size_t len)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    ember_value v;
    if (ember_rec_next(&c, &v) == EMBER_OK && c.p == c.end)
        return ember_buf_append(out, rec, len);
    size_t mark = out->len;
    ember_status s = ember_rec_tuple_begin(out);
    if (s == EMBER_OK)
        s = ember_buf_append(out, rec, len);
    if (s == EMBER_OK)
        s = ember_rec_tuple_end(out);
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/* Appends the record's bytes for value v (a tuple's elements, or v). */
static inline ember_status em_rec_put_value_as_record(ember_buf *out,
                                                      const ember_value *v)
{
    if (v->type == EMBER_TYPE_TUPLE)
        return ember_buf_append(out, v->u.tuple.raw, v->u.tuple.raw_len);
    return ember_buf_append(out, v->enc, v->enc_len);
}

/*
 * Splits a pair record into its key and value elements. EMBER_EINVAL when
 * rec is not exactly two well-formed elements.
 */
static inline ember_status em_rec_pair(const uint8_t *rec, size_t len,
                                       ember_value *k, ember_value *v)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    if (ember_rec_next(&c, k) != EMBER_OK || ember_rec_next(&c, v) != EMBER_OK ||
        c.p != c.end)
        return EMBER_EINVAL;
    return EMBER_OK;
}

#endif /* EM_RUNTIME_RECVAL_H */
