/*
 * ember/batch.h — batches: many records packed back to back in one buffer.
 *
 * Partitions move between operators, plugins and processes as batches. A
 * batch is `count` records, each framed as
 *     uvarint(len) record[len]
 * where uvarint is LEB128 (7 bits a byte, low group first, high bit = more;
 * at most 10 bytes, minimal form) and record is a record as encoded by
 * ember/record.h. A batch owns no memory: it is a view over bytes someone
 * else owns (an arena, a received message, a mapped file), valid for the
 * duration of the call that hands it over unless a kind header says more.
 *
 * Reading uses a cursor (zero copy); writing appends to an ember_buf.
 */
#ifndef EMBER_BATCH_H
#define EMBER_BATCH_H

#include "ember/abi.h"
#include "ember/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ember_batch {
    const uint8_t *data;
    size_t len;
    uint64_t count;
} ember_batch;

/* Appends v as a minimal uvarint. Status as ember_buf_reserve. */
static inline ember_status ember_uvarint_put(ember_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        tmp[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
    return ember_buf_append(b, tmp, n);
}

/*
 * Reads a uvarint at *p (not past end) into *v and advances *p. Refuses
 * (EMBER_EINVAL) truncation, more than 10 bytes, overflow, and non-minimal
 * forms (a trailing 0x00 group), so each value has one encoding.
 */
static inline ember_status ember_uvarint_get(const uint8_t **p,
                                             const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t out = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (q >= end)
            return EMBER_EINVAL;
        uint8_t byte = *q++;
        if (shift == 63 && byte > 1)
            return EMBER_EINVAL;
        out |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            if (byte == 0 && shift > 0)
                return EMBER_EINVAL;
            *p = q;
            *v = out;
            return EMBER_OK;
        }
    }
    return EMBER_EINVAL;
}

/* Appends one framed record to b (the caller counts records). */
static inline ember_status ember_batch_append(ember_buf *b, const void *rec,
                                              size_t len)
{
    size_t mark = b->len;
    ember_status s = ember_uvarint_put(b, (uint64_t)len);
    if (s == EMBER_OK)
        s = ember_buf_append(b, rec, len);
    if (s != EMBER_OK)
        b->len = mark;
    return s;
}

/*
 * Writing a record in pieces: ember_batch_frame_begin reserves a one-byte
 * length at the end of b and sets *mark; append the record's body with any
 * writer (ember/record.h); ember_batch_frame_end writes the body's length
 * over the placeholder, moving the body up when the length needs more than
 * one byte (bodies of 128 bytes or more). On failure b->len is back at
 * mark. The caller counts records.
 */
static inline ember_status ember_batch_frame_begin(ember_buf *b, size_t *mark)
{
    *mark = b->len;
    return ember_buf_put_u8(b, 0);
}

static inline ember_status ember_batch_frame_end(ember_buf *b, size_t mark)
{
    uint8_t lb[10];
    ember_buf l = ember_buf_fixed(lb, sizeof lb);
    size_t body = b->len - (mark + 1);
    ember_status s = ember_uvarint_put(&l, (uint64_t)body);
    if (s == EMBER_OK && l.len > 1) {
        s = ember_buf_reserve(b, l.len - 1);
        if (s == EMBER_OK) {
            memmove(b->data + mark + l.len, b->data + mark + 1, body);
            b->len += l.len - 1;
        }
    }
    if (s != EMBER_OK) {
        b->len = mark;
        return s;
    }
    memcpy(b->data + mark, lb, l.len);
    return EMBER_OK;
}

/* A zero-copy reader over a batch's bytes. */
typedef struct ember_batch_cursor {
    const uint8_t *p;
    const uint8_t *end;
} ember_batch_cursor;

static inline ember_batch_cursor ember_batch_cursor_of(const ember_batch *b)
{
    ember_batch_cursor c;
    c.p = b->data;
    /* no pointer arithmetic on NULL: an empty batch may have no data */
    c.end = b->len ? b->data + b->len : b->data;
    return c;
}

/*
 * Sets *rec and *len to the next record's bytes (pointing into the batch).
 * EMBER_OK, EMBER_END at the end, EMBER_EINVAL for a bad frame (the cursor
 * does not move; *rec is NULL and *len 0 on both). Record contents are not validated here.
 */
static inline ember_status ember_batch_next(ember_batch_cursor *c,
                                            const uint8_t **rec, size_t *len)
{
    /* Set on every path, so callers never see an unset pointer. */
    *rec = NULL;
    *len = 0;
    if (c->p == c->end)
        return EMBER_END;
    const uint8_t *q = c->p;
    uint64_t n;
    if (ember_uvarint_get(&q, c->end, &n) != EMBER_OK ||
        n > (uint64_t)(c->end - q))
        return EMBER_EINVAL;
    *rec = q;
    *len = (size_t)n;
    c->p = q + n;
    return EMBER_OK;
}

#ifdef __cplusplus
}
#endif
#endif /* EMBER_BATCH_H */
