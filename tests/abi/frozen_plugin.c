/*
 * frozen_plugin.c — a plugin built against the frozen ABI 0.1 headers
 * (tests/abi/frozen/0.1), never against today's sdk/. abi_test loads it
 * with the current host: if a header change breaks old plugins, this
 * fixture stops loading or misbehaves.
 */
#include "ember/codec.h"
#include "ember/function.h"
#include "ember/plugin.h"
#include "ember/record.h"

#include <string.h>

static const ember_host_api *host;

/* Appends every record twice. */
static ember_status twice(void *state, const ember_batch *in, ember_buf *out,
                          uint64_t *out_count, ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        for (int i = 0; i < 2; i++)
            if ((s = ember_batch_append(out, rec, len)) != EMBER_OK)
                return ember_errorf(err, s, "frozen.twice: output full");
        *out_count += 2;
    }
    return s == EMBER_END ? EMBER_OK : ember_errorf(err, s, "bad batch");
}

/* Each record r -> (first element of r, 42), encoded by the frozen codec. */
static ember_status tag(void *state, const ember_batch *in, ember_buf *out,
                        uint64_t *out_count, ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value v;
        uint8_t scratch[256];
        ember_buf pair = ember_buf_fixed(scratch, sizeof scratch);
        if (ember_rec_get(rec, len, 0, &v) != EMBER_OK)
            return ember_errorf(err, EMBER_EINVAL, "frozen.tag: bad record");
        if ((s = ember_rec_put_value(&pair, &v)) != EMBER_OK ||
            (s = ember_rec_put_int(&pair, 42)) != EMBER_OK ||
            (s = ember_batch_append(out, pair.data, pair.len)) != EMBER_OK)
            return ember_errorf(err, s, "frozen.tag: output full");
        (*out_count)++;
    }
    return s == EMBER_END ? EMBER_OK : ember_errorf(err, s, "bad batch");
}

static size_t bound(void *state, size_t n)
{
    (void)state;
    return n;
}

static ember_status copy(void *state, const uint8_t *src, size_t src_len,
                         uint8_t *dst, size_t dst_cap, size_t *out_len,
                         ember_error *err)
{
    (void)state;
    if (dst_cap < src_len)
        return ember_errorf(err, EMBER_ENOSPC, "frozen.copy: dst too small");
    memcpy(dst, src, src_len);
    *out_len = src_len;
    return EMBER_OK;
}

static ember_status uncopy(void *state, const uint8_t *src, size_t src_len,
                           uint8_t *dst, size_t dst_len, ember_error *err)
{
    (void)state;
    if (src_len != dst_len)
        return ember_errorf(err, EMBER_EINVAL, "frozen.copy: bad length");
    memcpy(dst, src, src_len);
    return EMBER_OK;
}

static const ember_function_vtable twice_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = twice,
};

static const ember_function_vtable tag_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = tag,
};

static const ember_codec_vtable copy_vt = {
    .bound = bound,
    .compress = copy,
    .decompress = uncopy,
};

static const ember_component components[] = {
    EMBER_FUNCTION_COMPONENT("twice", "each record twice", &twice_vt),
    EMBER_FUNCTION_COMPONENT("tag", "r -> (first of r, 42)", &tag_vt),
    EMBER_CODEC_COMPONENT("copy", "stores blocks as they are", &copy_vt),
};

/* Uses a host slot, checked the way the SDK says. */
static ember_status init(const ember_host_api *h, ember_error *err)
{
    if (!EMBER_HOST_HAS(h, counter_register))
        return ember_errorf(err, EMBER_EUNSUPPORTED, "no counters");
    host = h;
    uint32_t id;
    if (host->counter_register("frozen.loaded", &id) != EMBER_OK)
        return ember_errorf(err, EMBER_EINTERNAL, "counter_register");
    host->counter_add(id, 1);
    return EMBER_OK;
}

EMBER_PLUGIN(frozen, "0.1.0", "built against the frozen ABI 0.1 headers",
             "Apache-2.0", components, init, NULL);
