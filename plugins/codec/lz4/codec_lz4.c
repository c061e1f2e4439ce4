/*
 * codec_lz4.c — LZ4 block compression: plugin "lz4", component "lz4.codec".
 *
 * One raw LZ4 block per ember block (no LZ4 frame header: the host frames
 * blocks and knows the original size), compressed in the plain fast mode
 * (LZ4_compress_default). Decompression uses LZ4_decompress_safe, which
 * never reads or writes out of bounds on corrupt input, and the result must
 * be exactly the expected size. Stateless and safe to call from any number
 * of threads at once.
 */
#include <limits.h>

#include <lz4.h>

#include "ember/codec.h"

/* bound: LZ4_compressBound, or 0 when the block is over LZ4's input limit. */
static size_t lz4c_bound(void *state, size_t src_len)
{
    (void)state;
    if (src_len > (size_t)LZ4_MAX_INPUT_SIZE)
        return 0;
    return (size_t)LZ4_compressBound((int)src_len);
}

/* compress: one LZ4 block, fast mode. EMBER_ENOSPC when dst is too small,
 * EMBER_EINVAL when src is larger than LZ4 can take in one block. */
static ember_status lz4c_compress(void *state, const uint8_t *src,
                                  size_t src_len, uint8_t *dst,
                                  size_t dst_cap, size_t *out_len,
                                  ember_error *err)
{
    (void)state;
    static const char empty = 0;
    if (out_len == NULL || (src == NULL && src_len > 0) ||
        (dst == NULL && dst_cap > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "lz4.codec: compress: NULL buffer");
    if (src_len > (size_t)LZ4_MAX_INPUT_SIZE)
        return ember_errorf(err, EMBER_EINVAL,
                            "lz4.codec: compress: block of %zu bytes is over "
                            "the LZ4 limit of %d bytes",
                            src_len, LZ4_MAX_INPUT_SIZE);
    int cap = dst_cap > (size_t)INT_MAX ? INT_MAX : (int)dst_cap;
    int n = LZ4_compress_default(src ? (const char *)src : &empty,
                                 (char *)dst, (int)src_len, cap);
    if (n <= 0)
        return ember_errorf(err, EMBER_ENOSPC,
                            "lz4.codec: compress: output room %zu is too "
                            "small for %zu bytes (bound %d)",
                            dst_cap, src_len,
                            LZ4_compressBound((int)src_len));
    *out_len = (size_t)n;
    return EMBER_OK;
}

/* decompress: LZ4_decompress_safe into exactly dst_len bytes. */
static ember_status lz4c_decompress(void *state, const uint8_t *src,
                                    size_t src_len, uint8_t *dst,
                                    size_t dst_len, ember_error *err)
{
    (void)state;
    char dummy = 0;
    if ((src == NULL && src_len > 0) || (dst == NULL && dst_len > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "lz4.codec: decompress: NULL buffer");
    if (src_len == 0 || src_len > (size_t)INT_MAX ||
        dst_len > (size_t)INT_MAX)
        return ember_errorf(err, EMBER_EINVAL,
                            "lz4.codec: decompress: bad block (%zu bytes "
                            "in, %zu expected out)",
                            src_len, dst_len);
    int n = LZ4_decompress_safe((const char *)src,
                                dst ? (char *)dst : &dummy, (int)src_len,
                                (int)dst_len);
    if (n < 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "lz4.codec: decompress: corrupt block of %zu "
                            "bytes (or longer than the expected %zu)",
                            src_len, dst_len);
    if ((size_t)n != dst_len)
        return ember_errorf(err, EMBER_EINVAL,
                            "lz4.codec: decompress: block holds %d bytes, "
                            "expected %zu",
                            n, dst_len);
    return EMBER_OK;
}

static const ember_codec_vtable lz4c_vtable = {
    .open = NULL,
    .close = NULL,
    .bound = lz4c_bound,
    .compress = lz4c_compress,
    .decompress = lz4c_decompress,
};

static const ember_component lz4c_components[] = {
    EMBER_CODEC_COMPONENT("codec",
                          "LZ4 block compression, fast mode (liblz4)",
                          &lz4c_vtable),
};

EMBER_PLUGIN(lz4, "0.1.0", "LZ4 compression codec", "Apache-2.0",
             lz4c_components, NULL, NULL);
