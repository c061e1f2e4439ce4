/*
 * codec_zstd.c — Zstandard compression: plugin "zstd", component
 * "zstd.codec".
 *
 * One zstd frame per ember block. open() reads the compression level from
 * the host configuration key ember.io.compression.zstd.level (default 1;
 * any level libzstd accepts, negative "fast" levels included). The state is
 * immutable after open and every call uses zstd's one-shot API, so one
 * opened codec may be used from any number of threads at once.
 * Decompression must produce exactly the expected size; anything else,
 * including trailing garbage or an empty block, is EMBER_EINVAL.
 */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "ember/codec.h"

#define ZSTDC_LEVEL_KEY "ember.io.compression.zstd.level"
#define ZSTDC_DEFAULT_LEVEL 1

/* The opened codec: the level, and the host whose free releases it. */
typedef struct zstdc_state {
    const ember_host_api *host;
    int level;
} zstdc_state;

/* The level to compress at: the opened one, or the default without open. */
static int zstdc_level(const void *state)
{
    return state ? ((const zstdc_state *)state)->level : ZSTDC_DEFAULT_LEVEL;
}

/*
 * Parses a whole decimal integer level ("-5", "3") in libzstd's range into
 * *level. Returns 0 on success, -1 for anything else (empty, spaces, junk,
 * out of range).
 */
static int zstdc_parse_level(const char *text, int *level)
{
    char *end = NULL;
    const char *digits = text[0] == '-' ? text + 1 : text;
    if (*digits < '0' || *digits > '9')
        return -1; /* strtol would skip spaces and take a '+' */
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0)
        return -1;
    if (v < (long)ZSTD_minCLevel() || v > (long)ZSTD_maxCLevel())
        return -1;
    *level = (int)v;
    return 0;
}

/* open: reads the level from the host config (unset → 1). */
static ember_status zstdc_open(const ember_host_api *host, void **state,
                               ember_error *err)
{
    char text[64];
    size_t len = 0;
    int level = ZSTDC_DEFAULT_LEVEL;
    ember_status s = EMBER_OK;

    if (state == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free))
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: open: no host services");
    *state = NULL;
    if (EMBER_HOST_HAS(host, config_get)) {
        s = host->config_get(ZSTDC_LEVEL_KEY, text, sizeof text, &len);
        if (s == EMBER_OK) {
            if (zstdc_parse_level(text, &level) != 0)
                return ember_errorf(err, EMBER_EINVAL,
                                    "zstd.codec: invalid %s '%s': expected "
                                    "an integer from %d to %d",
                                    ZSTDC_LEVEL_KEY, text, ZSTD_minCLevel(),
                                    ZSTD_maxCLevel());
        } else if (s == EMBER_ENOSPC) {
            return ember_errorf(err, EMBER_EINVAL,
                                "zstd.codec: invalid %s: value of %zu "
                                "characters is not a level",
                                ZSTDC_LEVEL_KEY, len);
        } else if (s != EMBER_ENOTFOUND) {
            return ember_errorf(err, s, "zstd.codec: cannot read %s: %s",
                                ZSTDC_LEVEL_KEY, ember_status_name(s));
        }
    }
    zstdc_state *st = host->alloc(sizeof *st);
    if (st == NULL)
        return ember_errorf(err, EMBER_ENOMEM,
                            "zstd.codec: open: out of memory");
    st->host = host;
    st->level = level;
    *state = st;
    return EMBER_OK;
}

/* close: frees what open made (NULL is a no-op). */
static void zstdc_close(void *state)
{
    zstdc_state *st = state;
    if (st)
        st->host->free(st);
}

/* bound: ZSTD_compressBound, or 0 when src_len is too large. */
static size_t zstdc_bound(void *state, size_t src_len)
{
    (void)state;
    size_t b = ZSTD_compressBound(src_len);
    return ZSTD_isError(b) ? 0 : b;
}

/* compress: one zstd frame at the opened level. */
static ember_status zstdc_compress(void *state, const uint8_t *src,
                                   size_t src_len, uint8_t *dst,
                                   size_t dst_cap, size_t *out_len,
                                   ember_error *err)
{
    static const uint8_t empty = 0;
    if (out_len == NULL || (src == NULL && src_len > 0) ||
        (dst == NULL && dst_cap > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: compress: NULL buffer");
    uint8_t dummy = 0;
    size_t n = ZSTD_compress(dst ? (void *)dst : (void *)&dummy, dst_cap,
                             src ? (const void *)src : (const void *)&empty,
                             src_len, zstdc_level(state));
    if (ZSTD_isError(n)) {
        if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
            return ember_errorf(err, EMBER_ENOSPC,
                                "zstd.codec: compress: output room %zu is "
                                "too small for %zu bytes",
                                dst_cap, src_len);
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: compress: %s",
                            ZSTD_getErrorName(n));
    }
    *out_len = n;
    return EMBER_OK;
}

/* decompress: the block's frames must hold exactly dst_len bytes. */
static ember_status zstdc_decompress(void *state, const uint8_t *src,
                                     size_t src_len, uint8_t *dst,
                                     size_t dst_len, ember_error *err)
{
    (void)state;
    uint8_t dummy = 0;
    if ((src == NULL && src_len > 0) || (dst == NULL && dst_len > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: decompress: NULL buffer");
    if (src_len == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: decompress: empty block");
    size_t n = ZSTD_decompress(dst ? (void *)dst : (void *)&dummy, dst_len,
                               src, src_len);
    if (ZSTD_isError(n))
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: decompress: corrupt block of %zu "
                            "bytes (expected %zu out): %s",
                            src_len, dst_len, ZSTD_getErrorName(n));
    if (n != dst_len)
        return ember_errorf(err, EMBER_EINVAL,
                            "zstd.codec: decompress: block holds %zu bytes, "
                            "expected %zu",
                            n, dst_len);
    return EMBER_OK;
}

static const ember_codec_vtable zstdc_vtable = {
    .open = zstdc_open,
    .close = zstdc_close,
    .bound = zstdc_bound,
    .compress = zstdc_compress,
    .decompress = zstdc_decompress,
};

static const ember_component zstdc_components[] = {
    EMBER_CODEC_COMPONENT("codec",
                          "Zstandard compression (libzstd); level from "
                          "ember.io.compression.zstd.level, default 1",
                          &zstdc_vtable),
};

EMBER_PLUGIN(zstd, "0.1.0", "Zstandard compression codec", "Apache-2.0",
             zstdc_components, NULL, NULL);
