/*
 * shuf_chunk.c — the chunk format of stored blocks: encoding (framing,
 * compression, checksum) and decoding with every check.
 *
 * Chunk header, little-endian (docs/shuffle-format.md):
 *   u32 raw_len     bytes of framed records after decompression (>= 1)
 *   u32 stored_len  bytes that follow the header (>= 1)
 *   u32 flags       bit 0: compressed with the index's codec; others 0
 *   u64 checksum    XXH3_64bits_withSeed(stored bytes, seed) with
 *                   seed = raw_len | stored_len << 32 | flags << 63
 * Lengths are at most 2^31 - 1, so the seed's fields never overlap, and
 * the checksum covers the header's fields as well as the stored bytes.
 */
#include <string.h>

#include <xxhash.h>

#include "shuffle_common.h"

static uint64_t chunk_sum(const uint8_t *stored, size_t n, uint32_t raw_len,
                          uint32_t flags)
{
    uint64_t seed = (uint64_t)raw_len | (uint64_t)n << 32 |
                    (uint64_t)(flags & 1u) << 63;
    return (uint64_t)XXH3_64bits_withSeed(stored, n, (XXH64_hash_t)seed);
}

void shuf_enc_init(shuf_enc *e, const shuf_mgr *m)
{
    e->m = m;
    e->z = shuf_buf(m);
    e->big = shuf_buf(m);
}

void shuf_enc_free(shuf_enc *e)
{
    if (e->m == NULL)
        return;
    ember_buf_release(&e->z);
    ember_buf_release(&e->big);
}

void shuf_cbuf_free(const shuf_mgr *m, shuf_cbuf *c)
{
    shuf_free(m, c->raw);
    c->raw = NULL;
    c->len = 0;
}

ember_status shuf_sink_file(void *sink, const uint8_t *hdr,
                            const uint8_t *data, size_t n, ember_error *err)
{
    shuf_file *f = sink;
    return shuf_file_write(f->m, f, hdr, SHUF_CHUNK_HDR, data, n, err);
}

/* Encodes raw[0..n) as one chunk and hands it to the sink. */
static ember_status emit(shuf_enc *e, const uint8_t *raw, size_t n,
                         shuf_sink_fn sink, void *sink_arg, ember_error *err)
{
    const shuf_mgr *m = e->m;
    const uint8_t *stored = raw;
    size_t stored_len = n;
    uint32_t flags = 0;
    uint8_t hdr[SHUF_CHUNK_HDR];

    if (n == 0 || n > SHUF_CHUNK_MAX)
        return ember_errorf(err, EMBER_EINTERNAL,
                            "%s: chunk of %zu bytes", m->label, n);
    int try_codec = m->codec != NULL;
    if (try_codec && e->skip > 0) {
        e->skip--;
        try_codec = 0;
    }
    if (try_codec) {
        size_t bound = m->codec->bound(m->codec_state, n);
        if (bound > 0) {
            size_t zn = 0;
            ember_error cerr;
            ember_error_clear(&cerr);
            if (e->z.cap < bound &&
                ember_buf_reserve(&e->z, bound - e->z.len) != EMBER_OK)
                return shuf_oom(m, err, "compressing a chunk");
            ember_status s = m->codec->compress(m->codec_state, raw, n,
                                                e->z.data, e->z.cap, &zn,
                                                &cerr);
            if (s != EMBER_OK)
                return ember_errorf(err, s,
                                    "%s: compressing a chunk of %zu bytes "
                                    "with %s: %s",
                                    m->label, n, m->codec_name, cerr.msg);
            /* Keep the compressed form only when it saves something. */
            if (zn > 0 && zn < n) {
                stored = e->z.data;
                stored_len = zn;
                flags = SHUF_CHUNK_COMPRESSED;
            }
            /* After 8 chunks that saved under 1/8 together, store the
             * next 64 as they are, then look again. */
            e->tried_in += n;
            e->tried_out += stored_len;
            if (e->tried_in >= (uint64_t)8 * SHUF_CHUNK_MIN_TRY) {
                if (e->tried_out * 8 > e->tried_in * 7)
                    e->skip = 64;
                e->tried_in = e->tried_out = 0;
            }
        }
    }
    shuf_put_u32(hdr, (uint32_t)n);
    shuf_put_u32(hdr + 4, (uint32_t)stored_len);
    shuf_put_u32(hdr + 8, flags);
    shuf_put_u64(hdr + 12, chunk_sum(stored, stored_len, (uint32_t)n, flags));
    return sink(sink_arg, hdr, stored, stored_len, err);
}

/* Appends uvarint(len) and rec to p; returns the end. */
static uint8_t *frame(uint8_t *p, const uint8_t *rec, size_t len)
{
    size_t v = len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    if (len)
        memcpy(p, rec, len);
    return p + len;
}

ember_status shuf_chunk_flush(shuf_enc *e, shuf_cbuf *c, shuf_sink_fn sink,
                              void *sink_arg, ember_error *err)
{
    if (c->len == 0)
        return EMBER_OK;
    ember_status s = emit(e, c->raw, c->len, sink, sink_arg, err);
    c->len = 0;
    return s;
}

ember_status shuf_chunk_add(shuf_enc *e, shuf_cbuf *c, const uint8_t *rec,
                            size_t len, shuf_sink_fn sink, void *sink_arg,
                            ember_error *err)
{
    const shuf_mgr *m = e->m;
    ember_status s;
    size_t framed = shuf_frame_len(len) + len;
    if (framed <= (size_t)(c->cap - c->len)) {
        if (!c->raw) {
            c->raw = shuf_alloc(m, c->cap);
            if (!c->raw)
                return shuf_oom(m, err, "for a chunk buffer");
        }
        c->len = (uint32_t)(frame(c->raw + c->len, rec, len) - c->raw);
        return EMBER_OK;
    }
    if (len > SHUF_CHUNK_MAX - 16)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: a record of %zu bytes is over the limit of "
                            "%u bytes",
                            m->label, len, SHUF_CHUNK_MAX - 16);
    s = shuf_chunk_flush(e, c, sink, sink_arg, err);
    if (s != EMBER_OK)
        return s;
    if (framed <= c->cap)
        return shuf_chunk_add(e, c, rec, len, sink, sink_arg, err);
    /* Larger than a chunk: a chunk of its own. */
    e->big.len = 0;
    if (ember_buf_reserve(&e->big, framed) != EMBER_OK)
        return shuf_oom(m, err, "for a large record");
    e->big.len = (size_t)(frame(e->big.data, rec, len) - e->big.data);
    s = emit(e, e->big.data, e->big.len, sink, sink_arg, err);
    /* Do not hold on to memory the size of the largest record ever. */
    if (e->big.cap > ((size_t)4 << 20))
        ember_buf_release(&e->big);
    return s;
}

/* The parsed header of a chunk. */
typedef struct chunk_hdr {
    uint32_t raw_len;
    uint32_t stored_len;
    uint32_t flags;
    uint64_t sum;
} chunk_hdr;

static void parse_hdr(const uint8_t *p, chunk_hdr *h)
{
    h->raw_len = shuf_get_u32(p);
    h->stored_len = shuf_get_u32(p + 4);
    h->flags = shuf_get_u32(p + 8);
    h->sum = shuf_get_u64(p + 12);
}

/* Checks the header's fields on their own; NULL or what is wrong. */
static const char *check_hdr(const chunk_hdr *h)
{
    if (h->flags & ~SHUF_CHUNK_COMPRESSED)
        return "unknown chunk flags";
    if (h->raw_len == 0 || h->stored_len == 0 ||
        h->raw_len > SHUF_CHUNK_MAX || h->stored_len > SHUF_CHUNK_MAX)
        return "bad chunk lengths";
    if (!(h->flags & SHUF_CHUNK_COMPRESSED) && h->raw_len != h->stored_len)
        return "uncompressed chunk with two lengths";
    if ((h->flags & SHUF_CHUNK_COMPRESSED) && h->stored_len >= h->raw_len)
        return "compressed chunk not smaller than its data";
    return NULL;
}

/* Fills err for corruption at off of path; returns EMBER_EINVAL. */
static ember_status corrupt(const shuf_mgr *m, ember_error *err,
                            const char *path, uint64_t off, const char *why,
                            const char *detail)
{
    return ember_errorf(err, EMBER_EINVAL,
                        "%s: corrupt %s at offset %llu: %s%s%s", m->label,
                        path, (unsigned long long)off, why,
                        detail && detail[0] ? ": " : "",
                        detail ? detail : "");
}

/* Decompresses (or copies) stored into dst[0..h->raw_len). */
static ember_status unpack(const shuf_mgr *m, const chunk_hdr *h,
                           const uint8_t *stored, uint8_t *dst,
                           const char *file_codec, const char *path,
                           uint64_t off, ember_error *err)
{
    if (!(h->flags & SHUF_CHUNK_COMPRESSED)) {
        memcpy(dst, stored, h->raw_len);
        return EMBER_OK;
    }
    if (!m->codec || strcmp(file_codec, m->codec_name) != 0) {
        char why[160];
        snprintf(why, sizeof why,
                 "chunk compressed with codec \"%s\", this manager has "
                 "\"%s\"",
                 file_codec, m->codec ? m->codec_name : "none");
        return corrupt(m, err, path, off, why, NULL);
    }
    ember_error cerr;
    ember_error_clear(&cerr);
    if (m->codec->decompress(m->codec_state, stored, h->stored_len, dst,
                             h->raw_len, &cerr) != EMBER_OK)
        return corrupt(m, err, path, off, "chunk does not decompress",
                       cerr.msg);
    return EMBER_OK;
}

/* Checks the framing of raw[0..n) (whole records, at least one) and
 * counts them; -1 when it is broken. */
static int64_t count_records(const uint8_t *raw, size_t n)
{
    const uint8_t *p = raw, *end = raw + n;
    int64_t count = 0;
    while (p < end) {
        uint64_t len;
        if (ember_uvarint_get(&p, end, &len) != EMBER_OK ||
            len > (uint64_t)(end - p))
            return -1;
        p += len;
        count++;
    }
    return count ? count : -1;
}

ember_status shuf_block_decode(const shuf_mgr *m, const shuf_origin *o,
                               const uint8_t *blk, size_t len, ember_buf *out,
                               uint64_t *count, ember_error *err)
{
    size_t mark = out->len;
    size_t pos = 0;
    uint64_t total = 0;
    ember_status s = EMBER_OK;

    while (pos < len) {
        chunk_hdr h;
        const char *bad;
        uint64_t off = o->offset + pos;
        if (len - pos < SHUF_CHUNK_HDR) {
            s = corrupt(m, err, o->path, off, "truncated chunk header", NULL);
            goto done;
        }
        parse_hdr(blk + pos, &h);
        if ((bad = check_hdr(&h)) != NULL) {
            s = corrupt(m, err, o->path, off, bad, NULL);
            goto done;
        }
        if (h.stored_len > len - pos - SHUF_CHUNK_HDR) {
            s = corrupt(m, err, o->path, off, "chunk runs past its block",
                        NULL);
            goto done;
        }
        const uint8_t *stored = blk + pos + SHUF_CHUNK_HDR;
        if (chunk_sum(stored, h.stored_len, h.raw_len, h.flags) != h.sum) {
            s = corrupt(m, err, o->path, off, "checksum mismatch", NULL);
            goto done;
        }
        if (ember_buf_reserve(out, h.raw_len) != EMBER_OK) {
            s = shuf_oom(m, err, "reading a block");
            goto done;
        }
        s = unpack(m, &h, stored, out->data + out->len, o->codec, o->path,
                   off, err);
        if (s != EMBER_OK)
            goto done;
        int64_t n = count_records(out->data + out->len, h.raw_len);
        if (n < 0) {
            s = corrupt(m, err, o->path, off, "bad record framing", NULL);
            goto done;
        }
        out->len += h.raw_len;
        total += (uint64_t)n;
        pos += SHUF_CHUNK_HDR + h.stored_len;
    }
    *count += total;
done:
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

ember_status shuf_chunk_read(const shuf_mgr *m, int fd, const char *path,
                             uint64_t *off, uint64_t end, ember_buf *stored,
                             ember_buf *raw, ember_error *err)
{
    uint8_t hb[SHUF_CHUNK_HDR];
    chunk_hdr h;
    const char *bad;
    ember_status s;
    if (*off >= end)
        return EMBER_END;
    if (end - *off < SHUF_CHUNK_HDR)
        return corrupt(m, err, path, *off, "truncated chunk header", NULL);
    s = shuf_pread_all(m, fd, hb, sizeof hb, *off, NULL, "reading", path,
                       err);
    if (s == EMBER_END)
        return corrupt(m, err, path, *off, "file ends inside a chunk", NULL);
    if (s != EMBER_OK)
        return s;
    parse_hdr(hb, &h);
    if ((bad = check_hdr(&h)) != NULL)
        return corrupt(m, err, path, *off, bad, NULL);
    if (h.stored_len > end - *off - SHUF_CHUNK_HDR)
        return corrupt(m, err, path, *off, "chunk runs past its block", NULL);
    raw->len = 0;
    stored->len = 0;
    if (ember_buf_reserve(stored, h.stored_len) != EMBER_OK)
        return shuf_oom(m, err, "reading a spill");
    s = shuf_pread_all(m, fd, stored->data, h.stored_len,
                       *off + SHUF_CHUNK_HDR, NULL, "reading", path, err);
    if (s == EMBER_END)
        return corrupt(m, err, path, *off, "file ends inside a chunk", NULL);
    if (s != EMBER_OK)
        return s;
    if (chunk_sum(stored->data, h.stored_len, h.raw_len, h.flags) != h.sum)
        return corrupt(m, err, path, *off, "checksum mismatch", NULL);
    /* Sized only after the checksum vouched for raw_len. */
    if (ember_buf_reserve(raw, h.raw_len) != EMBER_OK)
        return shuf_oom(m, err, "reading a spill");
    s = unpack(m, &h, stored->data, raw->data, m->codec_name, path, *off,
               err);
    if (s != EMBER_OK)
        return s;
    raw->len = h.raw_len;
    *off += SHUF_CHUNK_HDR + h.stored_len;
    return EMBER_OK;
}
