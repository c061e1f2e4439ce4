/*
 * ember/record.h — records: an order-preserving, self-describing encoding of
 * a tuple of typed values.
 *
 * A record is a tuple; its bytes are the concatenation of its elements'
 * encodings with no outer framing (the container — a batch frame, a key
 * field — knows the length). The encoding is canonical (equal values have
 * equal bytes, so keys may be hashed by their bytes) and order-preserving
 * (memcmp of two encodings, shorter prefix first, is their typed order).
 * docs/record-format.md is the byte-level specification; in short:
 *
 *   0x00          end of a nested tuple
 *   0x01          null
 *   0x02 / 0x03   false / true
 *   0x0C..0x1C    int64: 0x14 is zero; 0x14+L a positive value in L
 *                 big-endian bytes; 0x14-L a negative value, the one's
 *                 complement of its magnitude in L bytes (L minimal, 1..8)
 *   0x20          double: 8 bytes, IEEE-754 bits transformed to sort
 *   0x28 / 0x29   string / bytes: payload with each 0x00 as 0x00 0xFF,
 *                 then 0x00
 *   0x30          nested tuple: elements, then 0x00 (nesting <= 64)
 *
 * Writers append to an ember_buf and leave buf->len unchanged on failure.
 * Readers are zero-copy and strict: anything not in canonical form is
 * EMBER_EINVAL. Everything here is static inline and uses libc only (no
 * host calls, no allocation), so plugins and the kernel share one
 * implementation.
 *
 * C11. Safe to include from C++.
 */
#ifndef EMBER_RECORD_H
#define EMBER_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/abi.h"
#include "ember/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element tags (the first byte of every element's encoding). */
#define EMBER_REC_TAG_END 0x00u       /* end of a nested tuple */
#define EMBER_REC_TAG_NULL 0x01u
#define EMBER_REC_TAG_FALSE 0x02u
#define EMBER_REC_TAG_TRUE 0x03u
#define EMBER_REC_TAG_INT_FIRST 0x0Cu /* negative, 8 payload bytes */
#define EMBER_REC_TAG_INT_ZERO 0x14u  /* the integer 0, no payload */
#define EMBER_REC_TAG_INT_LAST 0x1Cu  /* positive, 8 payload bytes */
#define EMBER_REC_TAG_DOUBLE 0x20u
#define EMBER_REC_TAG_STRING 0x28u
#define EMBER_REC_TAG_BYTES 0x29u
#define EMBER_REC_TAG_TUPLE 0x30u

/* Deepest nesting of tuples inside a record; deeper input is EMBER_EINVAL. */
#define EMBER_REC_MAX_DEPTH 64

/* Value types, in their cross-type sort order (false sorts before true). */
typedef enum ember_type {
    EMBER_TYPE_NULL = 1,
    EMBER_TYPE_BOOL,
    EMBER_TYPE_INT,
    EMBER_TYPE_DOUBLE,
    EMBER_TYPE_STRING,
    EMBER_TYPE_BYTES,
    EMBER_TYPE_TUPLE
} ember_type;

/*
 * One decoded element. Every pointer points into the record it was read
 * from, so a value is valid as long as those bytes are.
 */
typedef struct ember_value {
    uint32_t type;      /* ember_type */
    const uint8_t *enc; /* this element's whole encoding (tag .. end) */
    size_t enc_len;
    union {
        int boolean;    /* BOOL: 0 or 1 */
        int64_t i64;    /* INT */
        double f64;     /* DOUBLE (NaN is always the canonical quiet NaN) */
        struct {
            /* STRING/BYTES: raw = the escaped payload (no tag, no
             * terminator); len = the decoded length. raw_len == len means
             * there was nothing to escape and raw IS the value (zero
             * copy); otherwise use ember_rec_string_copy. */
            const uint8_t *raw;
            size_t raw_len;
            size_t len;
        } str;
        struct {
            /* TUPLE: the inner elements' encoding (no start tag, no
             * terminator); open it with ember_rec_tuple_cursor. */
            const uint8_t *raw;
            size_t raw_len;
        } tuple;
    } u;
} ember_value;

/* A constant name for a type ("int"); "unknown" for anything else. */
static inline const char *ember_type_name(uint32_t type)
{
    switch (type) {
    case EMBER_TYPE_NULL: return "null";
    case EMBER_TYPE_BOOL: return "bool";
    case EMBER_TYPE_INT: return "int";
    case EMBER_TYPE_DOUBLE: return "double";
    case EMBER_TYPE_STRING: return "string";
    case EMBER_TYPE_BYTES: return "bytes";
    case EMBER_TYPE_TUPLE: return "tuple";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------------------
 * Writer. Each call appends one element (or a tuple bracket) to b. On
 * failure — EMBER_ENOSPC for a full fixed buffer, EMBER_ENOMEM when growing
 * failed — b->len is unchanged. The writer does not track nesting: the
 * caller pairs every ember_rec_tuple_begin with an ember_rec_tuple_end and
 * keeps nesting within EMBER_REC_MAX_DEPTH, or readers refuse the record.
 * ---------------------------------------------------------------------- */

/* Appends a null. */
static inline ember_status ember_rec_put_null(ember_buf *b)
{
    return ember_buf_put_u8(b, (uint8_t)EMBER_REC_TAG_NULL);
}

/* Appends a boolean: false when v == 0, true otherwise. */
static inline ember_status ember_rec_put_bool(ember_buf *b, int v)
{
    return ember_buf_put_u8(b, (uint8_t)(v ? EMBER_REC_TAG_TRUE
                                           : EMBER_REC_TAG_FALSE));
}

/* Internal: the minimal number of bytes (1..8) that hold m. */
static inline unsigned ember__rec_nbytes(uint64_t m)
{
    unsigned n = 1;
    while (n < 8 && (m >> (8 * n)) != 0)
        n++;
    return n;
}

/* Appends a 64-bit signed integer (any value, INT64_MIN included). */
static inline ember_status ember_rec_put_int(ember_buf *b, int64_t v)
{
    uint8_t tmp[9];
    uint64_t m, payload;
    unsigned n, i;
    if (v == 0)
        return ember_buf_put_u8(b, (uint8_t)EMBER_REC_TAG_INT_ZERO);
    if (v > 0) {
        m = (uint64_t)v;
        payload = m;
    } else {
        m = (uint64_t)0 - (uint64_t)v;
        payload = ~m;
    }
    n = ember__rec_nbytes(m);
    tmp[0] = (uint8_t)(v > 0 ? EMBER_REC_TAG_INT_ZERO + n
                             : EMBER_REC_TAG_INT_ZERO - n);
    for (i = 0; i < n; i++)
        tmp[1 + i] = (uint8_t)(payload >> (8 * (n - 1 - i)));
    return ember_buf_append(b, tmp, (size_t)n + 1);
}

#define EMBER__REC_F64_SIGN UINT64_C(0x8000000000000000)
#define EMBER__REC_F64_EXP UINT64_C(0x7FF0000000000000)
#define EMBER__REC_F64_MANT UINT64_C(0x000FFFFFFFFFFFFF)
#define EMBER__REC_F64_QNAN UINT64_C(0x7FF8000000000000)

/* Internal: the IEEE-754 bits of d. */
static inline uint64_t ember__rec_f64_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

/* Internal: nonzero when bits is a NaN (any sign, any payload). */
static inline int ember__rec_f64_isnan(uint64_t bits)
{
    return (bits & EMBER__REC_F64_EXP) == EMBER__REC_F64_EXP &&
           (bits & EMBER__REC_F64_MANT) != 0;
}

/*
 * Appends a double. Every NaN is written as the canonical quiet NaN
 * (0x7FF8000000000000); -0.0 and +0.0 stay distinct (-0.0 sorts first).
 */
static inline ember_status ember_rec_put_double(ember_buf *b, double v)
{
    uint8_t tmp[9];
    uint64_t bits = ember__rec_f64_bits(v);
    unsigned i;
    if (ember__rec_f64_isnan(bits))
        bits = EMBER__REC_F64_QNAN;
    bits = (bits & EMBER__REC_F64_SIGN) ? ~bits : (bits | EMBER__REC_F64_SIGN);
    tmp[0] = (uint8_t)EMBER_REC_TAG_DOUBLE;
    for (i = 0; i < 8; i++)
        tmp[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
    return ember_buf_append(b, tmp, sizeof tmp);
}

/* Internal: the number of 0x00 bytes in p[0..len). Short strings are
 * scanned 8 bytes at a time in registers (cheaper than a call to memchr),
 * long ones with memchr. */
static inline size_t ember__rec_count_zeros(const uint8_t *p, size_t len)
{
    size_t zeros = 0, off = 0;
    if (len <= 64) {
        while (off + 8 <= len) {
            uint64_t v;
            memcpy(&v, p + off, 8);
            if ((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull) {
                unsigned i;
                for (i = 0; i < 8; i++)
                    zeros += p[off + i] == 0;
            }
            off += 8;
        }
        while (off < len)
            zeros += p[off++] == 0;
        return zeros;
    }
    while (off < len) {
        const uint8_t *z = (const uint8_t *)memchr(p + off, 0, len - off);
        if (z == NULL)
            break;
        zeros++;
        off = (size_t)(z - p) + 1;
    }
    return zeros;
}

/* Internal: appends tag, p[0..len) with every 0x00 escaped, then 0x00. */
static inline ember_status ember__rec_put_escaped(ember_buf *b, uint8_t tag,
                                                  const uint8_t *p, size_t len)
{
    size_t zeros = ember__rec_count_zeros(p, len), total, off = 0;
    uint8_t *dst;
    ember_status s;
    if (len > SIZE_MAX - 2 - zeros)
        return b->grow ? EMBER_ENOMEM : EMBER_ENOSPC;
    total = len + zeros + 2;
    s = ember_buf_reserve(b, total);
    if (s != EMBER_OK)
        return s;
    dst = b->data + b->len;
    *dst++ = tag;
    off = 0;
    while (off < len) {
        const uint8_t *z = zeros ? (const uint8_t *)memchr(p + off, 0,
                                                           len - off)
                                 : NULL;
        size_t run = z ? (size_t)(z - (p + off)) : len - off;
        memcpy(dst, p + off, run);
        dst += run;
        off += run;
        if (z) {
            *dst++ = 0x00;
            *dst++ = 0xFF;
            off++;
        }
    }
    *dst = 0x00;
    b->len += total;
    return EMBER_OK;
}

/*
 * Appends a string of len bytes from s (s may be NULL when len is 0). UTF-8
 * is expected but not checked; embedded 0x00 bytes are fine.
 */
static inline ember_status ember_rec_put_string(ember_buf *b, const char *s,
                                                size_t len)
{
    return ember__rec_put_escaped(b, (uint8_t)EMBER_REC_TAG_STRING,
                                  (const uint8_t *)s, len);
}

/* Appends a byte string of len bytes from p (p may be NULL when len is 0). */
static inline ember_status ember_rec_put_bytes(ember_buf *b, const void *p,
                                               size_t len)
{
    return ember__rec_put_escaped(b, (uint8_t)EMBER_REC_TAG_BYTES,
                                  (const uint8_t *)p, len);
}

/* Opens a nested tuple: the elements appended next belong to it. */
static inline ember_status ember_rec_tuple_begin(ember_buf *b)
{
    return ember_buf_put_u8(b, (uint8_t)EMBER_REC_TAG_TUPLE);
}

/* Closes the innermost open tuple. */
static inline ember_status ember_rec_tuple_end(ember_buf *b)
{
    return ember_buf_put_u8(b, (uint8_t)EMBER_REC_TAG_END);
}

/*
 * Appends v->enc verbatim: copies one element (of any type, a whole nested
 * tuple included) from a record read earlier. v must come from the reader.
 * EMBER_EINVAL when v is NULL or has no encoding.
 */
static inline ember_status ember_rec_put_value(ember_buf *b,
                                               const ember_value *v)
{
    if (v == NULL || v->enc == NULL || v->enc_len == 0)
        return EMBER_EINVAL;
    return ember_buf_append(b, v->enc, v->enc_len);
}

/* ------------------------------------------------------------------------
 * Reader.
 * ---------------------------------------------------------------------- */

/* A zero-copy cursor over a sequence of elements (a record, or a tuple's
 * inner bytes). */
typedef struct ember_rec_cursor {
    const uint8_t *p;
    const uint8_t *end;
} ember_rec_cursor;

/* A cursor over the record rec[0..len) (rec may be NULL when len is 0). */
static inline ember_rec_cursor ember_rec_cursor_init(const void *rec,
                                                     size_t len)
{
    ember_rec_cursor c;
    c.p = (const uint8_t *)rec;
    c.end = len ? c.p + len : c.p;
    return c;
}

/* A cursor over the elements of a TUPLE value (an empty cursor for any
 * other type). */
static inline ember_rec_cursor ember_rec_tuple_cursor(const ember_value *v)
{
    if (v == NULL || v->type != EMBER_TYPE_TUPLE)
        return ember_rec_cursor_init(NULL, 0);
    return ember_rec_cursor_init(v->u.tuple.raw, v->u.tuple.raw_len);
}

/* Internal: the first 0x00 in [p, end), or NULL. The first 32 bytes are
 * looked at 8 at a time in registers (cheaper than a call to memchr for
 * the short strings records mostly hold: keys, names, ids), the rest with
 * memchr. */
static inline const uint8_t *ember__rec_find_zero(const uint8_t *p,
                                                  const uint8_t *end)
{
    unsigned words = 0;
    while ((size_t)(end - p) >= 8 && words++ < 4) {
        uint64_t v;
        memcpy(&v, p, 8);
        if ((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull) {
            while (*p) /* one of these 8 bytes is 0x00 */
                p++;
            return p;
        }
        p += 8;
    }
    return (const uint8_t *)memchr(p, 0, (size_t)(end - p));
}

/*
 * Internal: decodes the non-tuple element at p (p < end) into *out and sets
 * *next past it. EMBER_EINVAL for a tuple bracket, an unknown tag, a
 * truncated or non-canonical element.
 */
static inline ember_status ember__rec_scalar(const uint8_t *p,
                                             const uint8_t *end,
                                             ember_value *out,
                                             const uint8_t **next)
{
    unsigned tag = *p;
    const uint8_t *q = p + 1;
    size_t avail = (size_t)(end - q);
    if (tag == EMBER_REC_TAG_NULL) {
        out->type = EMBER_TYPE_NULL;
    } else if (tag == EMBER_REC_TAG_FALSE || tag == EMBER_REC_TAG_TRUE) {
        out->type = EMBER_TYPE_BOOL;
        out->u.boolean = tag == EMBER_REC_TAG_TRUE;
    } else if (tag >= EMBER_REC_TAG_INT_FIRST &&
               tag <= EMBER_REC_TAG_INT_LAST) {
        out->type = EMBER_TYPE_INT;
        if (tag == EMBER_REC_TAG_INT_ZERO) {
            out->u.i64 = 0;
        } else {
            int pos = tag > EMBER_REC_TAG_INT_ZERO;
            unsigned n = pos ? tag - EMBER_REC_TAG_INT_ZERO
                             : EMBER_REC_TAG_INT_ZERO - tag;
            uint64_t x = 0;
            unsigned i;
            if (avail < n)
                return EMBER_EINVAL;
            for (i = 0; i < n; i++)
                x = (x << 8) | q[i];
            if (pos) {
                /* minimal, and within int64 */
                if (q[0] == 0x00 || x > (uint64_t)INT64_MAX)
                    return EMBER_EINVAL;
                out->u.i64 = (int64_t)x;
            } else {
                uint64_t m = ~x;
                if (q[0] == 0xFF)
                    return EMBER_EINVAL;
                if (n < 8)
                    m &= (UINT64_C(1) << (8 * n)) - 1;
                if (m > EMBER__REC_F64_SIGN) /* magnitude above 2^63 */
                    return EMBER_EINVAL;
                out->u.i64 = m == EMBER__REC_F64_SIGN ? INT64_MIN
                                                      : -(int64_t)m;
            }
            q += n;
        }
    } else if (tag == EMBER_REC_TAG_DOUBLE) {
        uint64_t x = 0;
        unsigned i;
        if (avail < 8)
            return EMBER_EINVAL;
        for (i = 0; i < 8; i++)
            x = (x << 8) | q[i];
        x = (x & EMBER__REC_F64_SIGN) ? (x ^ EMBER__REC_F64_SIGN) : ~x;
        if (ember__rec_f64_isnan(x) && x != EMBER__REC_F64_QNAN)
            return EMBER_EINVAL;
        out->type = EMBER_TYPE_DOUBLE;
        memcpy(&out->u.f64, &x, sizeof x);
        q += 8;
    } else if (tag == EMBER_REC_TAG_STRING || tag == EMBER_REC_TAG_BYTES) {
        const uint8_t *start = q;
        size_t zeros = 0;
        for (;;) {
            const uint8_t *z = ember__rec_find_zero(q, end);
            if (z == NULL)
                return EMBER_EINVAL; /* no terminator */
            if (end - z >= 2 && z[1] == 0xFF) {
                zeros++;
                q = z + 2;
                continue;
            }
            out->type = tag == EMBER_REC_TAG_STRING ? EMBER_TYPE_STRING
                                                    : EMBER_TYPE_BYTES;
            out->u.str.raw = start;
            out->u.str.raw_len = (size_t)(z - start);
            out->u.str.len = out->u.str.raw_len - zeros;
            q = z + 1;
            break;
        }
    } else {
        return EMBER_EINVAL;
    }
    out->enc = p;
    out->enc_len = (size_t)(q - p);
    *next = q;
    return EMBER_OK;
}

/*
 * Internal: decodes the element at p (p < end) into *out, a nested tuple
 * included (validated in full, nesting at most EMBER_REC_MAX_DEPTH), and
 * sets *next past it. A 0x00 at p is EMBER_EINVAL.
 */
static inline ember_status ember__rec_element(const uint8_t *p,
                                              const uint8_t *end,
                                              ember_value *out,
                                              const uint8_t **next)
{
    const uint8_t *q = p + 1;
    unsigned depth = 1;
    if (*p != EMBER_REC_TAG_TUPLE)
        return ember__rec_scalar(p, end, out, next);
    while (depth) {
        ember_value tmp;
        if (q >= end)
            return EMBER_EINVAL; /* missing terminator */
        if (*q == EMBER_REC_TAG_END) {
            depth--;
            q++;
        } else if (*q == EMBER_REC_TAG_TUPLE) {
            if (++depth > EMBER_REC_MAX_DEPTH)
                return EMBER_EINVAL;
            q++;
        } else if (ember__rec_scalar(q, end, &tmp, &q) != EMBER_OK) {
            return EMBER_EINVAL;
        }
    }
    out->type = EMBER_TYPE_TUPLE;
    out->enc = p;
    out->enc_len = (size_t)(q - p);
    out->u.tuple.raw = p + 1;
    out->u.tuple.raw_len = (size_t)(q - p) - 2;
    *next = q;
    return EMBER_OK;
}

/*
 * Reads the next element into *out (out may be NULL to skip) and advances.
 * Returns EMBER_OK, EMBER_END when the cursor is at the end, or EMBER_EINVAL
 * for a malformed element (the cursor and *out unchanged). A nested tuple is
 * validated in full when stepped over; a 0x00 (tuple end) where an element
 * should start is EMBER_EINVAL. Union members a type does not use are 0.
 */
static inline ember_status ember_rec_next(ember_rec_cursor *c,
                                          ember_value *out)
{
    ember_value v;
    const uint8_t *next;
    if (c->p >= c->end)
        return EMBER_END;
    memset(&v, 0, sizeof v); /* fields a type does not use read as 0 */
    if (ember__rec_element(c->p, c->end, &v, &next) != EMBER_OK)
        return EMBER_EINVAL;
    c->p = next;
    if (out)
        *out = v;
    return EMBER_OK;
}

/*
 * Checks that rec[0..len) is a well-formed canonical record and sets *count
 * (when count is not NULL) to its number of top-level elements. EMBER_OK or
 * EMBER_EINVAL (*count untouched). The empty record is valid (count 0).
 */
static inline ember_status ember_rec_validate(const void *rec, size_t len,
                                              size_t *count)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    size_t n = 0;
    ember_status s;
    while ((s = ember_rec_next(&c, NULL)) == EMBER_OK)
        n++;
    if (s != EMBER_END)
        return EMBER_EINVAL;
    if (count)
        *count = n;
    return EMBER_OK;
}

/*
 * Reads the idx-th (from 0) top-level element of rec[0..len) into *out.
 * EMBER_OK, EMBER_ENOTFOUND when the record has no more than idx elements,
 * EMBER_EINVAL when an element up to and including the idx-th is malformed
 * (elements after it are not examined).
 */
static inline ember_status ember_rec_get(const void *rec, size_t len,
                                         size_t idx, ember_value *out)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    size_t i;
    ember_status s;
    for (i = 0; i < idx; i++) {
        s = ember_rec_next(&c, NULL);
        if (s != EMBER_OK)
            return s == EMBER_END ? EMBER_ENOTFOUND : s;
    }
    s = ember_rec_next(&c, out);
    return s == EMBER_END ? EMBER_ENOTFOUND : s;
}

/*
 * Unescapes a STRING or BYTES value into dst: writes min(len, cap) bytes
 * (no NUL terminator added) and returns the decoded length v->u.str.len, so
 * a return value above cap means the copy was cut. Returns 0 and writes
 * nothing for any other type. dst may be NULL when cap is 0.
 */
static inline size_t ember_rec_string_copy(const ember_value *v, void *dst,
                                           size_t cap)
{
    const uint8_t *r;
    uint8_t *d = (uint8_t *)dst;
    size_t i, w = 0;
    if (v == NULL ||
        (v->type != EMBER_TYPE_STRING && v->type != EMBER_TYPE_BYTES))
        return 0;
    r = v->u.str.raw;
    if (v->u.str.raw_len == v->u.str.len) {
        size_t n = v->u.str.len < cap ? v->u.str.len : cap;
        if (n)
            memcpy(d, r, n);
        return v->u.str.len;
    }
    for (i = 0; i < v->u.str.raw_len && w < cap; i++) {
        d[w++] = r[i];
        if (r[i] == 0x00)
            i++; /* skip the 0xFF of the escape */
    }
    return v->u.str.len;
}

/*
 * Compares two encodings as unsigned bytes, a proper prefix first: < 0,
 * 0 or > 0 (exactly -1, 0, 1). For valid records this is their typed order:
 * type first (null < false < true < int < double < string < bytes <
 * tuple), then value (ints numerically; doubles -inf < ... < -0.0 < +0.0 <
 * ... < +inf < NaN; strings and bytes bytewise, a prefix first; tuples and
 * records element by element, a prefix first). Pointers may be NULL when
 * their length is 0.
 */
static inline int ember_rec_compare(const void *a, size_t alen, const void *b,
                                    size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

/* ------------------------------------------------------------------------
 * JSON rendering. The mapping (docs/record-format.md has the full table):
 *   null -> null; bool -> true / false; int -> integer, exact;
 *   double -> the shortest of %.15g/%.16g/%.17g that reads back to the same
 *     bits, always with a '.' or an exponent (1.0, -0.0, 1e+300); NaN,
 *     +inf, -inf -> the strings "NaN", "Infinity", "-Infinity";
 *   string -> JSON string: \" \\ \b \f \n \r \t, other controls as \u00xx,
 *     valid UTF-8 as is, each byte of invalid UTF-8 as \ufffd;
 *   bytes -> {"base64":"<RFC 4648 base64 with padding>"};
 *   tuple (and a whole record) -> array, no whitespace.
 * Number formatting goes through snprintf/strtod; whatever the LC_NUMERIC
 * locale, the decimal separator is written as '.'.
 * ---------------------------------------------------------------------- */

/* Internal: appends a NUL-terminated ASCII string. */
static inline ember_status ember__rec_puts(ember_buf *out, const char *s)
{
    return ember_buf_append(out, s, strlen(s));
}

/* Internal: appends v in decimal. */
static inline ember_status ember__rec_json_int(ember_buf *out, int64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    if (v < 0)
        tmp[--i] = '-';
    return ember_buf_append(out, tmp + i, sizeof tmp - i);
}

/* Internal: appends d as a JSON number (or a string for NaN/inf). */
static inline ember_status ember__rec_json_double(ember_buf *out, double d)
{
    char tmp[64], norm[72];
    uint64_t bits = ember__rec_f64_bits(d);
    size_t i, n = 0;
    int prec, marked = 0;
    if (ember__rec_f64_isnan(bits))
        return ember__rec_puts(out, "\"NaN\"");
    if ((bits & ~EMBER__REC_F64_SIGN) == EMBER__REC_F64_EXP)
        return ember__rec_puts(out, (bits & EMBER__REC_F64_SIGN)
                                        ? "\"-Infinity\""
                                        : "\"Infinity\"");
    for (prec = 15; prec <= 17; prec++) {
        if (snprintf(tmp, sizeof tmp, "%.*g", prec, d) <= 0)
            return EMBER_EINTERNAL;
        if (ember__rec_f64_bits(strtod(tmp, NULL)) == bits)
            break;
    }
    /* Keep digits, signs and the exponent mark; any run of other bytes is
     * the locale's decimal separator and becomes '.'. */
    for (i = 0; tmp[i] != '\0'; i++) {
        char ch = tmp[i];
        if ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == 'e' ||
            ch == 'E') {
            norm[n++] = ch;
            if (ch == 'e' || ch == 'E')
                marked = 1;
        } else if (n == 0 || norm[n - 1] != '.') {
            norm[n++] = '.';
            marked = 1;
        }
    }
    if (!marked) {
        norm[n++] = '.';
        norm[n++] = '0';
    }
    return ember_buf_append(out, norm, n);
}

/*
 * Internal: the length (2..4) of the valid UTF-8 sequence starting at p
 * (p < end, *p >= 0x80), or 0 when it is not one.
 */
static inline size_t ember__rec_utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* Internal: appends the escaped payload raw[0..raw_len) as a JSON string. */
static inline ember_status ember__rec_json_string(ember_buf *out,
                                                  const uint8_t *raw,
                                                  size_t raw_len)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = raw, *end = raw + raw_len, *run = raw;
    ember_status s = ember_buf_put_u8(out, '"');
    while (s == EMBER_OK && p < end) {
        uint8_t c = *p;
        char esc[7];
        const char *rep = NULL;
        size_t step = 1, n;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80 && (n = ember__rec_utf8_len(p, end)) != 0) {
            p += n;
            continue;
        }
        /* flush the plain run before p */
        s = ember_buf_append(out, run, (size_t)(p - run));
        if (s != EMBER_OK)
            break;
        switch (c) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\b': rep = "\\b"; break;
        case '\f': rep = "\\f"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default:
            if (c >= 0x80) {
                rep = "\\ufffd";
            } else {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                esc[6] = '\0';
                rep = esc;
                if (c == 0x00 && end - p >= 2 && p[1] == 0xFF)
                    step = 2; /* the escape's 0xFF */
            }
        }
        s = ember__rec_puts(out, rep);
        p += step;
        run = p;
    }
    if (s == EMBER_OK)
        s = ember_buf_append(out, run, (size_t)(p - run));
    if (s == EMBER_OK)
        s = ember_buf_put_u8(out, '"');
    return s;
}

/* Internal: appends {"base64":"..."} for the escaped payload raw. */
static inline ember_status ember__rec_json_bytes(ember_buf *out,
                                                 const uint8_t *raw,
                                                 size_t raw_len)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t grp[3];
    size_t i, k = 0;
    ember_status s = ember__rec_puts(out, "{\"base64\":\"");
    for (i = 0; s == EMBER_OK && i <= raw_len; i++) {
        int last = i == raw_len;
        if (!last) {
            grp[k++] = raw[i];
            if (raw[i] == 0x00)
                i++; /* skip the 0xFF of the escape */
        }
        if (k == 3 || (last && k > 0)) {
            char q[4];
            uint32_t w = (uint32_t)grp[0] << 16;
            if (k > 1)
                w |= (uint32_t)grp[1] << 8;
            if (k > 2)
                w |= grp[2];
            q[0] = b64[(w >> 18) & 63];
            q[1] = b64[(w >> 12) & 63];
            q[2] = k > 1 ? b64[(w >> 6) & 63] : '=';
            q[3] = k > 2 ? b64[w & 63] : '=';
            s = ember_buf_append(out, q, 4);
            k = 0;
        }
    }
    if (s == EMBER_OK)
        s = ember__rec_puts(out, "\"}");
    return s;
}

static inline ember_status ember__rec_json_seq(ember_buf *out,
                                               ember_rec_cursor c);

/* Internal: ember_rec_json_value without restoring out->len on failure. */
static inline ember_status ember__rec_json_value(ember_buf *out,
                                                 const ember_value *v)
{
    switch (v->type) {
    case EMBER_TYPE_NULL: return ember__rec_puts(out, "null");
    case EMBER_TYPE_BOOL:
        return ember__rec_puts(out, v->u.boolean ? "true" : "false");
    case EMBER_TYPE_INT: return ember__rec_json_int(out, v->u.i64);
    case EMBER_TYPE_DOUBLE: return ember__rec_json_double(out, v->u.f64);
    case EMBER_TYPE_STRING:
        return ember__rec_json_string(out, v->u.str.raw, v->u.str.raw_len);
    case EMBER_TYPE_BYTES:
        return ember__rec_json_bytes(out, v->u.str.raw, v->u.str.raw_len);
    case EMBER_TYPE_TUPLE:
        return ember__rec_json_seq(out, ember_rec_tuple_cursor(v));
    default: return EMBER_EINVAL;
    }
}

/* Internal: appends the cursor's elements as a JSON array. */
static inline ember_status ember__rec_json_seq(ember_buf *out,
                                               ember_rec_cursor c)
{
    ember_value v;
    ember_status s = ember_buf_put_u8(out, '[');
    int first = 1;
    while (s == EMBER_OK && (s = ember_rec_next(&c, &v)) == EMBER_OK) {
        if (!first)
            s = ember_buf_put_u8(out, ',');
        first = 0;
        if (s == EMBER_OK)
            s = ember__rec_json_value(out, &v);
    }
    if (s == EMBER_END)
        s = ember_buf_put_u8(out, ']');
    return s;
}

/*
 * Appends the JSON rendering of one value (as read by the reader) to out.
 * EMBER_OK, EMBER_EINVAL for an unknown type or a malformed nested tuple,
 * or the buffer's status; out->len is unchanged on failure.
 */
static inline ember_status ember_rec_json_value(ember_buf *out,
                                                const ember_value *v)
{
    size_t mark = out->len;
    ember_status s = v ? ember__rec_json_value(out, v) : EMBER_EINVAL;
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/*
 * Appends the whole record rec[0..len) to out as a JSON array ("[]" for the
 * empty record). EMBER_EINVAL for a malformed record, or the buffer's
 * status; out->len is unchanged on failure.
 */
static inline ember_status ember_rec_json(ember_buf *out, const void *rec,
                                          size_t len)
{
    size_t mark = out->len;
    ember_status s = ember__rec_json_seq(out, ember_rec_cursor_init(rec, len));
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

#ifdef __cplusplus
}
#endif
#endif /* EMBER_RECORD_H */
