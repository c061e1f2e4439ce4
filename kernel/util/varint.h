/*
 * util/varint.h — the unsigned LEB128 varints of the kernel's wire formats
 * (executor and client messages, block reports): 7 bits a byte, low group
 * first, high bit set on every byte but the last. Written minimal; read
 * strictly, so that each value has one encoding. The same form as
 * ember_uvarint_put/_get of ember/batch.h, but writing into a fixed array
 * and saying why a read failed, so that each format's decoder can name the
 * field and offset in its own message. Pure functions: any thread.
 */
#ifndef EM_UTIL_VARINT_H
#define EM_UTIL_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The longest varint, in bytes (64 bits in groups of 7). */
#define EM_VARINT_MAX 10

/* Why em_varint_get refused its bytes. */
typedef enum em_varint_err {
    EM_VARINT_OK = 0,
    EM_VARINT_SHORT,    /* the bytes end before the varint does */
    EM_VARINT_TOO_LONG, /* more than 64 bits */
    EM_VARINT_OVERLONG  /* not minimal: a last group of 0 after others */
} em_varint_err;

/* Writes v as a minimal varint at p, which has room for EM_VARINT_MAX
 * bytes; returns its length (1 to EM_VARINT_MAX). */
static inline size_t em_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint at *p, not past end, into *v and advances *p; on a
 * refusal leaves *p and *v alone and says why. */
static inline em_varint_err em_varint_get(const uint8_t **p,
                                          const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t out = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (q >= end)
            return EM_VARINT_SHORT;
        uint8_t byte = *q++;
        /* The tenth byte holds bit 63 only, and ends the varint. */
        if (shift == 63 && byte > 1)
            return EM_VARINT_TOO_LONG;
        out |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            if (byte == 0 && shift > 0)
                return EM_VARINT_OVERLONG;
            break;
        }
    }
    *p = q;
    *v = out;
    return EM_VARINT_OK;
}

/* What a refusal means, as the end of a sentence about a field ("field
 * 'x' ..."): "is a varint longer than 64 bits", "has an overlong varint
 * encoding", "runs past the end"; "" for EM_VARINT_OK. Static strings. */
static inline const char *em_varint_why(em_varint_err e)
{
    switch (e) {
    case EM_VARINT_SHORT: return "runs past the end";
    case EM_VARINT_TOO_LONG: return "is a varint longer than 64 bits";
    case EM_VARINT_OVERLONG: return "has an overlong varint encoding";
    case EM_VARINT_OK: break;
    }
    return "";
}

#endif /* EM_UTIL_VARINT_H */
