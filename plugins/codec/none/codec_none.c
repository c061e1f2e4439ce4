/*
 * codec_none.c — the identity codec: plugin "none", component "none.codec".
 *
 * A "compressed" block is the original bytes unchanged, so bound(n) == n.
 * Useful to switch compression off without changing the block framing, and
 * as the reference the other codecs are tested against. Stateless and safe
 * to call from any number of threads at once.
 */
#include <string.h>

#include "ember/codec.h"

/* bound: a stored block is exactly as long as its input. */
static size_t none_bound(void *state, size_t src_len)
{
    (void)state;
    return src_len;
}

/* compress: copies src into dst; EMBER_ENOSPC when dst_cap < src_len. */
static ember_status none_compress(void *state, const uint8_t *src,
                                  size_t src_len, uint8_t *dst,
                                  size_t dst_cap, size_t *out_len,
                                  ember_error *err)
{
    (void)state;
    if (out_len == NULL || (src == NULL && src_len > 0) ||
        (dst == NULL && dst_cap > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "none.codec: compress: NULL buffer");
    if (dst_cap < src_len)
        return ember_errorf(err, EMBER_ENOSPC,
                            "none.codec: compress: output room %zu < %zu "
                            "bytes of input",
                            dst_cap, src_len);
    if (src_len > 0)
        memcpy(dst, src, src_len);
    *out_len = src_len;
    return EMBER_OK;
}

/* decompress: copies src into dst; the sizes must be equal. */
static ember_status none_decompress(void *state, const uint8_t *src,
                                    size_t src_len, uint8_t *dst,
                                    size_t dst_len, ember_error *err)
{
    (void)state;
    if ((src == NULL && src_len > 0) || (dst == NULL && dst_len > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "none.codec: decompress: NULL buffer");
    if (src_len != dst_len)
        return ember_errorf(err, EMBER_EINVAL,
                            "none.codec: decompress: block is %zu bytes, "
                            "expected %zu",
                            src_len, dst_len);
    if (src_len > 0)
        memcpy(dst, src, src_len);
    return EMBER_OK;
}

static const ember_codec_vtable none_vtable = {
    .open = NULL,
    .close = NULL,
    .bound = none_bound,
    .compress = none_compress,
    .decompress = none_decompress,
};

static const ember_component none_components[] = {
    EMBER_CODEC_COMPONENT("codec",
                          "no compression: blocks are stored as they are",
                          &none_vtable),
};

EMBER_PLUGIN(none, "0.1.0", "identity codec (no compression)", "Apache-2.0",
             none_components, NULL, NULL);
