/* base64.c — canonical base64 for plan argument blobs. */
#include "dag/base64.h"

#include <stdlib.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, or -1 when c is not in the alphabet. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t em_base64_encoded_len(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > SIZE_MAX / 4)
        return SIZE_MAX;
    return groups * 4;
}

ember_status em_base64_encode(ember_buf *out, const uint8_t *src, size_t n)
{
    size_t need = em_base64_encoded_len(n), i;
    uint8_t *p;
    ember_status s;
    if (need == SIZE_MAX)
        return EMBER_ENOMEM;
    if (n == 0)
        return EMBER_OK; /* out->data may still be NULL */
    s = ember_buf_reserve(out, need);
    if (s != EMBER_OK)
        return s;
    p = out->data + out->len;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 |
                     src[i + 2];
        *p++ = (uint8_t)alphabet[v >> 18];
        *p++ = (uint8_t)alphabet[(v >> 12) & 63];
        *p++ = (uint8_t)alphabet[(v >> 6) & 63];
        *p++ = (uint8_t)alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)src[i] << 16;
        *p++ = (uint8_t)alphabet[v >> 18];
        *p++ = (uint8_t)alphabet[(v >> 12) & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
        *p++ = (uint8_t)alphabet[v >> 18];
        *p++ = (uint8_t)alphabet[(v >> 12) & 63];
        *p++ = (uint8_t)alphabet[(v >> 6) & 63];
        *p++ = '=';
    }
    out->len += need;
    return EMBER_OK;
}

ember_status em_base64_decode(uint8_t **out, size_t *out_len, const char *text,
                              size_t n, size_t max_len, size_t *bad_at)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t pad = 0, len, i, o = 0, bad = 0;
    uint8_t *buf = NULL;
    ember_status s = EMBER_EINVAL;
    *out = NULL;
    *out_len = 0;
    if (n % 4 != 0) {
        bad = n;
        goto fail;
    }
    if (n == 0)
        return EMBER_OK;
    if (t[n - 1] == '=')
        pad = t[n - 2] == '=' ? 2 : 1;
    len = n / 4 * 3 - pad;
    if (len > max_len) {
        s = EMBER_ENOSPC;
        goto fail;
    }
    buf = (uint8_t *)malloc(len);
    if (buf == NULL) {
        s = EMBER_ENOMEM;
        goto fail;
    }
    for (i = 0; i < n; i += 4) {
        size_t data = (i + 4 == n) ? 4 - pad : 4, k;
        uint32_t v = 0;
        for (k = 0; k < 4; k++) {
            int q = 0; /* a '=' (already counted in pad) adds zero bits */
            if (k < data) {
                q = sextet(t[i + k]);
                if (q < 0) {
                    bad = i + k;
                    goto fail;
                }
            }
            v = v << 6 | (uint32_t)q;
        }
        /* canonical: the bits the padding leaves unused are zero */
        if ((data == 3 && (v & 0xFF) != 0) ||
            (data == 2 && (v & 0xFFFF) != 0)) {
            bad = i + data - 1;
            goto fail;
        }
        buf[o++] = (uint8_t)(v >> 16);
        if (data > 2)
            buf[o++] = (uint8_t)(v >> 8);
        if (data > 3)
            buf[o++] = (uint8_t)v;
    }
    *out = buf;
    *out_len = len;
    return EMBER_OK;

fail:
    free(buf);
    if (s == EMBER_EINVAL && bad_at)
        *bad_at = bad;
    return s;
}
