/*
 * tier_block.h — the stored form of a block, shared by the disk tier (one
 * file per block) and the offheap tier (one shared-memory object per
 * block): a 48-byte header, then the block's batch bytes as put.
 *
 *   offset  field
 *      0    u8[4]  magic "EMBK"
 *      4    u32    format version (TIER_BLOCK_VERSION)
 *      8    u64    record count
 *     16    u64    payload length in bytes
 *     24    u64    XXH3-64 of the payload
 *     32    u64    XXH3-64 of bytes 0..32 (so a corrupt count or length
 *                  is caught too, not only a corrupt payload)
 *     40    u32    state: TIER_BLOCK_COMPLETE once the whole block is
 *                  written, anything else while it is being written
 *     44    u32    reserved, 0
 *
 * Integers are little-endian, except the state word of a shared-memory
 * block, which is the host's native u32 (it is stored with an atomic
 * release store and never leaves the host; on the little-endian machines
 * ember runs on the two agree). A block is valid only when all of magic,
 * version, both checksums, the state and the total size
 * (48 + payload length) agree.
 *
 * Header-only (static inline), like tier_common.h. Needs libxxhash.
 */
#ifndef EMBER_STORAGE_TIER_BLOCK_H
#define EMBER_STORAGE_TIER_BLOCK_H

#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "tier_common.h"

#define TIER_BLOCK_HDR 48u       /* bytes of the header */
#define TIER_BLOCK_VERSION 1u    /* the layout above */
#define TIER_BLOCK_STATE_OFF 40u /* offset of the state word */
#define TIER_BLOCK_COMPLETE 0x504d4f43u /* "COMP" read little-endian */

/* A decoded header. */
typedef struct tier_header {
    uint64_t count;   /* records in the payload */
    uint64_t len;     /* payload bytes */
    uint64_t sum;     /* XXH3-64 of the payload */
} tier_header;

/* Stores v little-endian at p[0..4). */
static inline void tier_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Stores v little-endian at p[0..8). */
static inline void tier_put_u64(uint8_t *p, uint64_t v)
{
    tier_put_u32(p, (uint32_t)v);
    tier_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Loads the little-endian u32 at p[0..4). */
static inline uint32_t tier_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Loads the little-endian u64 at p[0..8). */
static inline uint64_t tier_get_u64(const uint8_t *p)
{
    return (uint64_t)tier_get_u32(p) | (uint64_t)tier_get_u32(p + 4) << 32;
}

/* XXH3-64 of p[0..n) (p may be NULL when n is 0). */
static inline uint64_t tier_sum(const void *p, size_t n)
{
    static const uint8_t none = 0;
    return (uint64_t)XXH3_64bits(n ? p : &none, n);
}

/*
 * Writes the header of a block of `count` records whose payload is
 * p[0..len) into h[0..TIER_BLOCK_HDR), computing the payload checksum.
 * The state word is left 0 (incomplete) unless `complete`: the offheap
 * tier sets it last, on its own.
 */
static inline void tier_header_encode(uint8_t *h, uint64_t count,
                                      const void *p, size_t len,
                                      int complete)
{
    memcpy(h, "EMBK", 4);
    tier_put_u32(h + 4, TIER_BLOCK_VERSION);
    tier_put_u64(h + 8, count);
    tier_put_u64(h + 16, (uint64_t)len);
    tier_put_u64(h + 24, tier_sum(p, len));
    tier_put_u64(h + 32, tier_sum(h, 32));
    tier_put_u32(h + TIER_BLOCK_STATE_OFF, complete ? TIER_BLOCK_COMPLETE : 0);
    tier_put_u32(h + 44, 0);
}

/*
 * Checks the header h[0..TIER_BLOCK_HDR) of a stored object of `size`
 * bytes (header included) and fills *out. The state word is not looked at
 * here (each tier reads it its own way). EMBER_EINVAL with
 * "<label>: <where>: <what is wrong>" when the magic, version, header
 * checksum or size disagree; `where` names the file or object.
 */
static inline ember_status tier_header_decode(const uint8_t *h, uint64_t size,
                                              tier_header *out,
                                              const char *label,
                                              const char *where,
                                              ember_error *err)
{
    if (memcmp(h, "EMBK", 4) != 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s is not a stored block (bad magic "
                            "%02x%02x%02x%02x, expected \"EMBK\")",
                            label, where, h[0], h[1], h[2], h[3]);
    uint32_t version = tier_get_u32(h + 4);
    if (version != TIER_BLOCK_VERSION)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s has block format version %u, expected "
                            "%u",
                            label, where, (unsigned)version,
                            TIER_BLOCK_VERSION);
    if (tier_get_u64(h + 32) != tier_sum(h, 32))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s is corrupt: header checksum mismatch",
                            label, where);
    out->count = tier_get_u64(h + 8);
    out->len = tier_get_u64(h + 16);
    out->sum = tier_get_u64(h + 24);
    if (size < TIER_BLOCK_HDR || out->len != size - TIER_BLOCK_HDR)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s is truncated or corrupt: %llu bytes, "
                            "the header says %u + %llu",
                            label, where, (unsigned long long)size,
                            TIER_BLOCK_HDR, (unsigned long long)out->len);
    return EMBER_OK;
}

/*
 * Checks that a stored object of `size` bytes can hold the header.
 * EMBER_EINVAL with "<label>: <where> is truncated: ..." when it cannot.
 */
static inline ember_status tier_size_check(long long size, const char *label,
                                           const char *where,
                                           ember_error *err)
{
    if (size < (long long)TIER_BLOCK_HDR)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s is truncated: %lld bytes, shorter than "
                            "the %u-byte block header",
                            label, where, size, TIER_BLOCK_HDR);
    return EMBER_OK;
}

/*
 * Makes room in out for the payload hdr describes and sets *dst to where
 * it goes (NULL for an empty payload, which may meet an empty buffer with
 * no memory at all). The caller copies the payload to *dst, then calls
 * tier_payload_commit; out->len is unchanged until then. EMBER_ENOMEM when
 * the payload does not fit in a size_t, else as tier_out_reserve.
 */
static inline ember_status tier_payload_reserve(ember_buf *out,
                                                const tier_header *hdr,
                                                uint8_t **dst,
                                                const char *label,
                                                const char *id,
                                                ember_error *err)
{
    ember_status s;
    *dst = NULL;
    if ((uint64_t)(size_t)hdr->len != hdr->len)
        return ember_errorf(err, EMBER_ENOMEM,
                            "%s: get %s: %llu bytes do not fit in memory",
                            label, id, (unsigned long long)hdr->len);
    if ((s = tier_out_reserve(out, (size_t)hdr->len, label, id, err)) !=
        EMBER_OK)
        return s;
    if (hdr->len)
        *dst = out->data + out->len;
    return EMBER_OK;
}

/*
 * Checks the payload copied to dst (from tier_payload_reserve) against the
 * header's checksum, then appends it to out and sets *count (count may be
 * NULL) to the header's record count. EMBER_EINVAL naming `where` on a
 * mismatch, with out unchanged: what was checked is what the caller gets.
 */
static inline ember_status tier_payload_commit(ember_buf *out,
                                               const tier_header *hdr,
                                               const uint8_t *dst,
                                               uint64_t *count,
                                               const char *label,
                                               const char *where,
                                               ember_error *err)
{
    if (tier_sum(dst, (size_t)hdr->len) != hdr->sum)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s is corrupt: payload checksum mismatch",
                            label, where);
    out->len += (size_t)hdr->len;
    if (count)
        *count = hdr->count;
    return EMBER_OK;
}

#endif /* EMBER_STORAGE_TIER_BLOCK_H */
