/*
 * ember/codec.h — compression codecs (component kind "codec").
 *
 * A codec turns a block of bytes into a smaller one and back. Framing
 * (lengths, checksums) is the host's: the codec sees one whole block, and
 * decompress is told the exact original size.
 *
 * Kind version 1. Required slots: bound, compress, decompress.
 */
#ifndef EMBER_CODEC_H
#define EMBER_CODEC_H

#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_CODEC_VERSION 1

typedef struct ember_codec_vtable {
    /* Optional. Reads settings (e.g. a level) through host; sets *state. */
    ember_status (*open)(const ember_host_api *host, void **state,
                         ember_error *err);
    void (*close)(void *state);

    /* The largest compressed size of src_len bytes (0 if src_len is too
     * large to compress in one block). */
    size_t (*bound)(void *state, size_t src_len);

    /* Compresses src[0..src_len) into dst[0..dst_cap), sets *out_len.
     * dst_cap >= bound(src_len) always suffices. */
    ember_status (*compress)(void *state, const uint8_t *src, size_t src_len,
                             uint8_t *dst, size_t dst_cap, size_t *out_len,
                             ember_error *err);

    /* Decompresses exactly dst_len bytes into dst. Corrupt or short input,
     * or output of another length, is EMBER_EINVAL — never a crash. */
    ember_status (*decompress)(void *state, const uint8_t *src,
                               size_t src_len, uint8_t *dst, size_t dst_len,
                               ember_error *err);
} ember_codec_vtable;

#define EMBER_CODEC_COMPONENT(name_, desc_, vtable_)                       \
    EMBER_COMPONENT(EMBER_KIND_CODEC, EMBER_CODEC_VERSION, name_, desc_,   \
                    vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_CODEC_H */
