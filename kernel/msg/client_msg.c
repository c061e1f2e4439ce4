/*
 * client_msg.c — the client <-> emberd envelope: encoder and validating
 * decoder. The format is described in client_msg.h.
 */
#include "msg/client_msg.h"

#include <inttypes.h>
#include <string.h>

#include "util/varint.h"

static const uint8_t magic[4] = {'E', 'M', 'C', 'L'};

const char *em_cmsg_type_name(em_cmsg_type t)
{
    switch (t) {
    case EM_CMSG_HELLO: return "HELLO";
    case EM_CMSG_WELCOME: return "WELCOME";
    case EM_CMSG_ERROR: return "ERROR";
    case EM_CMSG_OK: return "OK";
    case EM_CMSG_PLUGIN_HAVE: return "PLUGIN_HAVE";
    case EM_CMSG_PLUGIN_NEED: return "PLUGIN_NEED";
    case EM_CMSG_PLUGIN_PUT: return "PLUGIN_PUT";
    case EM_CMSG_SPLITS: return "SPLITS";
    case EM_CMSG_SPLITS_REPLY: return "SPLITS_REPLY";
    case EM_CMSG_SUBMIT: return "SUBMIT";
    case EM_CMSG_JOB: return "JOB";
    case EM_CMSG_RESULT: return "RESULT";
    case EM_CMSG_END: return "END";
    case EM_CMSG_CANCEL: return "CANCEL";
    case EM_CMSG_STATUS: return "STATUS";
    case EM_CMSG_INFO: return "INFO";
    case EM_CMSG_LIST: return "LIST";
    case EM_CMSG_UNPERSIST: return "UNPERSIST";
    case EM_CMSG_BROADCAST: return "BROADCAST";
    case EM_CMSG_BROADCAST_DROP: return "BROADCAST_DROP";
    case EM_CMSG_ACCUMS: return "ACCUMS";
    }
    return "UNKNOWN";
}

ember_status em_cmsg_encode(ember_buf *out, em_cmsg_type type,
                            uint64_t req_id, const char *header,
                            size_t header_len, const void *body,
                            size_t body_len)
{
    uint8_t head[EM_CMSG_PREFIX_LEN + 2 * EM_VARINT_MAX];
    uint8_t blen[EM_VARINT_MAX];
    size_t n = EM_CMSG_PREFIX_LEN, nb;
    ember_status s;
    if (out == NULL || type < EM_CMSG_HELLO || type > EM_CMSG_TYPE_MAX ||
        (header == NULL && header_len > 0) ||
        header_len > EM_CMSG_HEADER_MAX ||
        (header_len && memchr(header, 0, header_len) != NULL) ||
        (body == NULL && body_len > 0) || body_len > EM_CMSG_BODY_MAX)
        return EMBER_EINVAL;
    memcpy(head, magic, sizeof magic);
    head[4] = EM_CMSG_VERSION;
    head[5] = (uint8_t)type;
    n += em_varint_put(head + n, req_id);
    n += em_varint_put(head + n, (uint64_t)header_len);
    nb = em_varint_put(blen, (uint64_t)body_len);
    /* One reservation, so that a failure leaves out as it was. */
    s = ember_buf_reserve(out, n + header_len + nb + body_len);
    if (s != EMBER_OK)
        return s;
    memcpy(out->data + out->len, head, n);
    out->len += n;
    if (header_len) {
        memcpy(out->data + out->len, header, header_len);
        out->len += header_len;
    }
    memcpy(out->data + out->len, blen, nb);
    out->len += nb;
    if (body_len) {
        memcpy(out->data + out->len, body, body_len);
        out->len += body_len;
    }
    return EMBER_OK;
}

/* Reads a minimal varint at *p (before end); offsets count from base. */
static ember_status rd_varint(const uint8_t *base, const uint8_t **p,
                              const uint8_t *end, const char *field,
                              uint64_t *v, ember_error *err)
{
    em_varint_err e = em_varint_get(p, end, v);
    if (e == EM_VARINT_SHORT)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message: field '%s' runs past the "
                            "end of the message (offset %zu, %zu bytes "
                            "left)",
                            field, (size_t)(*p - base), (size_t)(end - *p));
    if (e != EM_VARINT_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message: field '%s' %s (offset %zu)",
                            field, em_varint_why(e), (size_t)(*p - base));
    return EMBER_OK;
}

/* Reads a length-prefixed field of at most max bytes into *v. */
static ember_status rd_view(const uint8_t *base, const uint8_t **p,
                            const uint8_t *end, const char *field,
                            size_t max, int is_str, em_bytes *v,
                            ember_error *err)
{
    const uint8_t *at = *p, *q = *p, *nul;
    uint64_t len;
    size_t left;
    ember_status s = rd_varint(base, &q, end, field, &len, err);
    if (s != EMBER_OK)
        return s;
    left = (size_t)(end - q);
    if (len > max)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message: field '%s' length %" PRIu64
                            " exceeds its limit of %zu bytes (offset %zu)",
                            field, len, max, (size_t)(at - base));
    if (len > left)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message: field '%s' length %" PRIu64
                            " runs past the end of the message (offset %zu, "
                            "%zu bytes left)",
                            field, len, (size_t)(at - base), left);
    if (is_str && len &&
        (nul = (const uint8_t *)memchr(q, 0, (size_t)len)) != NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message: field '%s' contains a NUL "
                            "byte (offset %zu)",
                            field, (size_t)(nul - base));
    v->data = len ? q : NULL;
    v->len = (size_t)len;
    *p = q + len;
    return EMBER_OK;
}

ember_status em_cmsg_decode(const uint8_t *d, size_t n, em_cmsg *m,
                            ember_error *err)
{
    const uint8_t *p, *end;
    ember_status s;
    memset(m, 0, sizeof *m);
    if (d == NULL && n > 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message: bytes are NULL");
    if (n < EM_CMSG_PREFIX_LEN)
        return ember_errorf(err, EMBER_EINVAL,
                            "client message of %zu bytes is shorter than "
                            "the %d-byte prefix",
                            n, EM_CMSG_PREFIX_LEN);
    if (memcmp(d, magic, sizeof magic) != 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "not an ember client message: bad magic "
                            "(offset 0)");
    if (d[4] != EM_CMSG_VERSION)
        return ember_errorf(err, EMBER_EVERSION,
                            "client message version %u not supported (this "
                            "ember speaks %d)",
                            (unsigned)d[4], EM_CMSG_VERSION);
    if (d[5] < EM_CMSG_HELLO || d[5] > EM_CMSG_TYPE_MAX)
        return ember_errorf(err, EMBER_EINVAL,
                            "unknown client message type %u (offset 5)",
                            (unsigned)d[5]);
    p = d + EM_CMSG_PREFIX_LEN;
    end = d + n;
    if ((s = rd_varint(d, &p, end, "req_id", &m->req_id, err)) != EMBER_OK ||
        (s = rd_view(d, &p, end, "header", EM_CMSG_HEADER_MAX, 1, &m->header,
                     err)) != EMBER_OK ||
        (s = rd_view(d, &p, end, "body", EM_CMSG_BODY_MAX, 0, &m->body,
                     err)) != EMBER_OK)
        goto fail;
    if (p != end) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "client message: %zu trailing bytes after the body "
                         "(offset %zu)",
                         (size_t)(end - p), (size_t)(p - d));
        goto fail;
    }
    m->type = (em_cmsg_type)d[5];
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}
