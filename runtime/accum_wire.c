/* Accumulator values on the wire (see runtime/accum_wire.h). */
#include "runtime/accum_wire.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ember/batch.h"
#include "ember/record.h"

#define WIRE_VERSION 1
#define MAX_ID 9007199254740992ull /* 2^53, as plan ids */
/* The shortest entry: a one-byte id, the kind, a zero length. */
#define MIN_ENTRY 3

em_accum_kind em_accum_kind_of(const char *kind)
{
    if (strcmp(kind, "int64") == 0)
        return EM_ACCUM_INT64;
    if (strcmp(kind, "double") == 0)
        return EM_ACCUM_DOUBLE;
    return EM_ACCUM_USER;
}

static ember_status put_le64(ember_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return ember_buf_append(b, x, 8);
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

ember_status em_accum_wire_encode(ember_buf *out, const em_accum_value *v,
                                  uint32_t n)
{
    ember_status s = ember_buf_put_u8(out, WIRE_VERSION);
    if (s == EMBER_OK)
        s = ember_uvarint_put(out, n);
    for (uint32_t i = 0; s == EMBER_OK && i < n; i++) {
        const em_accum_value *e = &v[i];
        if (e->id == 0 || e->id > MAX_ID)
            return EMBER_EINVAL;
        s = ember_uvarint_put(out, e->id);
        if (s == EMBER_OK)
            s = ember_buf_put_u8(out, (uint8_t)e->kind);
        if (s != EMBER_OK)
            break;
        switch (e->kind) {
        case EM_ACCUM_INT64:
            s = put_le64(out, (uint64_t)e->i64);
            break;
        case EM_ACCUM_DOUBLE: {
            uint64_t bits;
            memcpy(&bits, &e->f64, sizeof bits);
            s = put_le64(out, bits);
            break;
        }
        case EM_ACCUM_USER:
            if (e->rec_len &&
                ember_rec_validate(e->rec, e->rec_len, NULL) != EMBER_OK)
                return EMBER_EINVAL;
            s = ember_uvarint_put(out, e->rec_len);
            if (s == EMBER_OK && e->rec_len)
                s = ember_buf_append(out, e->rec, e->rec_len);
            break;
        default:
            return EMBER_EINVAL;
        }
    }
    return s;
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = ((const em_accum_value *)a)->id;
    uint64_t y = ((const em_accum_value *)b)->id;
    return x < y ? -1 : x > y;
}

ember_status em_accum_wire_decode(const uint8_t *d, size_t len,
                                  em_accum_value **out, uint32_t *n,
                                  ember_error *err)
{
    static const char what[] = "accumulator updates";
    *out = NULL;
    *n = 0;
    if (len == 0 || d == NULL)
        return ember_errorf(err, EMBER_EINVAL, "%s: empty", what);
    if (d[0] != WIRE_VERSION)
        return ember_errorf(err, EMBER_EINVAL, "%s: version %u, expected %u",
                            what, (unsigned)d[0], WIRE_VERSION);
    const uint8_t *p = d + 1, *end = d + len;
    uint64_t count;
    if (ember_uvarint_get(&p, end, &count) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "%s: bad entry count "
                            "(offset 1)", what);
    if (count > (uint64_t)(end - p) / MIN_ENTRY)
        return ember_errorf(err, EMBER_EINVAL, "%s: %" PRIu64 " entries "
                            "cannot fit in the %zu bytes left", what, count,
                            (size_t)(end - p));
    if (count == 0) {
        if (p != end)
            return ember_errorf(err, EMBER_EINVAL, "%s: %zu bytes after the "
                                "last entry", what, (size_t)(end - p));
        return EMBER_OK;
    }
    em_accum_value *v = calloc((size_t)count, sizeof *v);
    if (!v)
        return ember_errorf(err, EMBER_ENOMEM, "%s: out of memory", what);
    ember_status s = EMBER_OK;
    for (uint64_t i = 0; i < count; i++) {
        em_accum_value *e = &v[i];
        size_t at = (size_t)(p - d);
        if (ember_uvarint_get(&p, end, &e->id) != EMBER_OK || e->id == 0 ||
            e->id > MAX_ID) {
            s = ember_errorf(err, EMBER_EINVAL, "%s: entry %" PRIu64 ": bad "
                             "id (offset %zu)", what, i, at);
            goto fail;
        }
        if (p == end) {
            s = ember_errorf(err, EMBER_EINVAL, "%s: entry %" PRIu64
                             " (id %" PRIu64 "): no kind (offset %zu)", what,
                             i, e->id, (size_t)(p - d));
            goto fail;
        }
        uint8_t kind = *p++;
        e->kind = (em_accum_kind)kind;
        if (kind == EM_ACCUM_INT64 || kind == EM_ACCUM_DOUBLE) {
            if (end - p < 8) {
                s = ember_errorf(err, EMBER_EINVAL, "%s: entry %" PRIu64
                                 " (id %" PRIu64 "): value runs past the end "
                                 "(offset %zu)", what, i, e->id,
                                 (size_t)(p - d));
                goto fail;
            }
            uint64_t bits = get_le64(p);
            p += 8;
            if (kind == EM_ACCUM_INT64)
                e->i64 = (int64_t)bits;
            else
                memcpy(&e->f64, &bits, sizeof bits);
        } else if (kind == EM_ACCUM_USER) {
            uint64_t rl;
            at = (size_t)(p - d);
            if (ember_uvarint_get(&p, end, &rl) != EMBER_OK ||
                rl > (uint64_t)(end - p)) {
                s = ember_errorf(err, EMBER_EINVAL, "%s: entry %" PRIu64
                                 " (id %" PRIu64 "): record length runs past "
                                 "the end (offset %zu)", what, i, e->id, at);
                goto fail;
            }
            e->rec_len = (size_t)rl;
            e->rec = rl ? p : NULL;
            if (rl && ember_rec_validate(p, e->rec_len, NULL) != EMBER_OK) {
                s = ember_errorf(err, EMBER_EINVAL, "%s: entry %" PRIu64
                                 " (id %" PRIu64 "): the value is not a "
                                 "valid record (offset %zu)", what, i, e->id,
                                 (size_t)(p - d));
                goto fail;
            }
            p += e->rec_len;
        } else {
            s = ember_errorf(err, EMBER_EINVAL, "%s: entry %" PRIu64
                             " (id %" PRIu64 "): unknown kind %u (offset "
                             "%zu)", what, i, e->id, (unsigned)kind,
                             (size_t)(p - 1 - d));
            goto fail;
        }
    }
    if (p != end) {
        s = ember_errorf(err, EMBER_EINVAL, "%s: %zu bytes after the last "
                         "entry", what, (size_t)(end - p));
        goto fail;
    }
    /* each id once: sort a copy of the order by id and compare neighbours */
    em_accum_value *sorted = malloc((size_t)count * sizeof *sorted);
    if (!sorted) {
        s = ember_errorf(err, EMBER_ENOMEM, "%s: out of memory", what);
        goto fail;
    }
    memcpy(sorted, v, (size_t)count * sizeof *sorted);
    qsort(sorted, (size_t)count, sizeof *sorted, id_cmp);
    for (uint64_t i = 1; i < count; i++)
        if (sorted[i].id == sorted[i - 1].id) {
            s = ember_errorf(err, EMBER_EINVAL, "%s: id %" PRIu64 " appears "
                             "twice", what, sorted[i].id);
            break;
        }
    free(sorted);
    if (s != EMBER_OK)
        goto fail;
    *out = v;
    *n = (uint32_t)count;
    return EMBER_OK;
fail:
    free(v);
    return s;
}
