/*
 * shuf_index.c — index files and reading one block through its entry.
 *
 * Index layout, little-endian (docs/shuffle-format.md):
 *   header, 64 bytes:
 *     0  "EMSHUFIX"          magic
 *     8  u32 version         1
 *     12 u32 num_partitions  >= 1
 *     16 u64 data_len        bytes of the data the entries point into
 *     24 char codec[32]      the codec of compressed chunks, NUL-padded
 *     56 u64 checksum        XXH3_64bits of bytes 0..56
 *   then one 32-byte entry per partition r:
 *     u64 offset, u64 length, u64 count,
 *     u64 checksum           XXH3_64bits_withSeed(the 24 bytes before, r)
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "shuffle_common.h"

static const uint8_t index_magic[8] = {'E', 'M', 'S', 'H', 'U', 'F', 'I', 'X'};

static uint64_t entry_sum(const uint8_t *p, uint32_t part)
{
    return (uint64_t)XXH3_64bits_withSeed(p, 24, (XXH64_hash_t)part);
}

ember_status shuf_index_build(const shuf_mgr *m, ember_buf *out, uint32_t n,
                              const uint64_t *offsets, const uint64_t *lengths,
                              const uint64_t *counts, uint64_t data_len,
                              ember_error *err)
{
    size_t total = SHUF_INDEX_HDR + (size_t)n * SHUF_INDEX_ENTRY;
    out->len = 0;
    if (ember_buf_reserve(out, total) != EMBER_OK)
        return shuf_oom(m, err, "building an index");
    uint8_t *p = out->data;
    memset(p, 0, SHUF_INDEX_HDR);
    memcpy(p, index_magic, sizeof index_magic);
    shuf_put_u32(p + 8, SHUF_INDEX_VERSION);
    shuf_put_u32(p + 12, n);
    shuf_put_u64(p + 16, data_len);
    memcpy(p + 24, m->codec_name, strlen(m->codec_name));
    shuf_put_u64(p + 56, (uint64_t)XXH3_64bits(p, 56));
    for (uint32_t r = 0; r < n; r++) {
        uint8_t *e = p + SHUF_INDEX_HDR + (size_t)r * SHUF_INDEX_ENTRY;
        shuf_put_u64(e, offsets ? offsets[r] : 0);
        shuf_put_u64(e + 8, lengths[r]);
        shuf_put_u64(e + 16, counts[r]);
        shuf_put_u64(e + 24, entry_sum(e, r));
    }
    out->len = total;
    return EMBER_OK;
}

/* Fills err for a bad index; returns EMBER_EINVAL. */
static ember_status bad_index(const shuf_mgr *m, ember_error *err,
                              const char *path, uint64_t off,
                              const char *why)
{
    return ember_errorf(err, EMBER_EINVAL,
                        "%s: corrupt %s at offset %llu: %s", m->label, path,
                        (unsigned long long)off, why);
}

ember_status shuf_index_read_hdr(const shuf_mgr *m, int fd, const char *path,
                                 shuf_index_hdr *h, ember_error *err)
{
    uint8_t p[SHUF_INDEX_HDR];
    struct stat st;
    ember_status s;
    if (fstat(fd, &st) != 0)
        return shuf_errno(m, err, errno, "reading", path);
    s = shuf_pread_all(m, fd, p, sizeof p, 0, NULL, "reading", path, err);
    if (s == EMBER_END)
        return bad_index(m, err, path, 0, "index shorter than its header");
    if (s != EMBER_OK)
        return s;
    if (memcmp(p, index_magic, sizeof index_magic) != 0)
        return bad_index(m, err, path, 0, "not a shuffle index (magic)");
    if (shuf_get_u64(p + 56) != (uint64_t)XXH3_64bits(p, 56))
        return bad_index(m, err, path, 0, "index header checksum mismatch");
    if (shuf_get_u32(p + 8) != SHUF_INDEX_VERSION)
        return bad_index(m, err, path, 8, "unknown index version");
    h->num_partitions = shuf_get_u32(p + 12);
    h->data_len = shuf_get_u64(p + 16);
    memcpy(h->codec, p + 24, SHUF_CODEC_NAME);
    if (h->num_partitions == 0 || h->codec[SHUF_CODEC_NAME - 1] != '\0')
        return bad_index(m, err, path, 12, "bad index header fields");
    uint64_t want = SHUF_INDEX_HDR +
                    (uint64_t)h->num_partitions * SHUF_INDEX_ENTRY;
    if ((uint64_t)st.st_size != want)
        return bad_index(m, err, path, (uint64_t)st.st_size,
                         "index size does not match its partitions");
    return EMBER_OK;
}

/* Parses and checks one entry's 32 bytes. */
static ember_status parse_entry(const shuf_mgr *m, const uint8_t *p,
                                const char *path, const shuf_index_hdr *h,
                                uint32_t part, int check_len,
                                shuf_index_entry *e, ember_error *err)
{
    uint64_t off = SHUF_INDEX_HDR + (uint64_t)part * SHUF_INDEX_ENTRY;
    if (shuf_get_u64(p + 24) != entry_sum(p, part))
        return bad_index(m, err, path, off, "index entry checksum mismatch");
    e->offset = shuf_get_u64(p);
    e->length = shuf_get_u64(p + 8);
    e->count = shuf_get_u64(p + 16);
    if (e->offset > UINT64_MAX - e->length ||
        (check_len && e->offset + e->length > h->data_len))
        return bad_index(m, err, path, off,
                         "index entry points past the end of the data");
    if ((e->length == 0) != (e->count == 0))
        return bad_index(m, err, path, off,
                         "index entry with records but no bytes");
    return EMBER_OK;
}

ember_status shuf_index_read_entry(const shuf_mgr *m, int fd,
                                   const char *path, const shuf_index_hdr *h,
                                   uint32_t part, int check_len,
                                   shuf_index_entry *e, ember_error *err)
{
    uint8_t p[SHUF_INDEX_ENTRY];
    uint64_t off = SHUF_INDEX_HDR + (uint64_t)part * SHUF_INDEX_ENTRY;
    ember_status s = shuf_pread_all(m, fd, p, sizeof p, off, NULL,
                                    "reading", path, err);
    if (s == EMBER_END)
        return bad_index(m, err, path, off, "index ends early");
    if (s != EMBER_OK)
        return s;
    return parse_entry(m, p, path, h, part, check_len, e, err);
}

ember_status shuf_index_load(const shuf_mgr *m, const char *path, uint32_t n,
                             uint64_t *lengths, uint64_t *counts,
                             ember_error *err)
{
    shuf_index_hdr h;
    uint8_t *p = NULL;
    ember_status s;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shuf_errno(m, err, errno, "opening", path);
    s = shuf_index_read_hdr(m, fd, path, &h, err);
    if (s != EMBER_OK)
        goto done;
    if (h.num_partitions != n) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: %s has %u partitions, the writer %u", m->label,
                         path, h.num_partitions, n);
        goto done;
    }
    size_t bytes = (size_t)n * SHUF_INDEX_ENTRY;
    p = shuf_alloc(m, bytes);
    if (!p) {
        s = shuf_oom(m, err, "reading an index");
        goto done;
    }
    s = shuf_pread_all(m, fd, p, bytes, SHUF_INDEX_HDR, NULL, "reading",
                       path, err);
    if (s == EMBER_END)
        s = bad_index(m, err, path, SHUF_INDEX_HDR, "index ends early");
    for (uint32_t r = 0; s == EMBER_OK && r < n; r++) {
        shuf_index_entry e;
        s = parse_entry(m, p + (size_t)r * SHUF_INDEX_ENTRY, path, &h, r, 1,
                        &e, err);
        if (s == EMBER_OK) {
            lengths[r] = e.length;
            if (counts)
                counts[r] = e.count;
        }
    }
done:
    shuf_free(m, p);
    (void)close(fd);
    return s;
}

ember_status shuf_read_block_at(const shuf_mgr *m, int fd, const char *path,
                                uint64_t data_size, const shuf_index_hdr *h,
                                const shuf_index_entry *e, ember_buf *out,
                                uint64_t *count, ember_error *err)
{
    uint8_t *blk = NULL;
    uint64_t n = 0;
    ember_status s;
    shuf_origin o;
    if (e->length == 0)
        return EMBER_OK;
    if (e->offset > data_size || e->length > data_size - e->offset)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: corrupt %s at offset %llu: block of %llu "
                            "bytes runs past the end of the file (%llu "
                            "bytes)",
                            m->label, path, (unsigned long long)e->offset,
                            (unsigned long long)e->length,
                            (unsigned long long)data_size);
    if (e->length > (uint64_t)SIZE_MAX / 2)
        return shuf_oom(m, err, "reading a block");
    blk = shuf_alloc(m, (size_t)e->length);
    if (!blk)
        return shuf_oom(m, err, "reading a block");
    s = shuf_pread_all(m, fd, blk, (size_t)e->length, e->offset, NULL,
                       "reading", path, err);
    if (s == EMBER_END)
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: corrupt %s at offset %llu: file ends inside "
                         "the block",
                         m->label, path, (unsigned long long)e->offset);
    if (s != EMBER_OK)
        goto done;
    o.path = path;
    o.offset = e->offset;
    o.codec = h->codec;
    size_t mark = out->len;
    s = shuf_block_decode(m, &o, blk, (size_t)e->length, out, &n, err);
    if (s == EMBER_OK && n != e->count) {
        out->len = mark;
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: corrupt %s at offset %llu: block holds %llu "
                         "records, its index says %llu",
                         m->label, path, (unsigned long long)e->offset,
                         (unsigned long long)n, (unsigned long long)e->count);
    }
    if (s == EMBER_OK)
        *count += n;
done:
    shuf_free(m, blk);
    return s;
}

ember_status shuf_index_write(const shuf_mgr *m, shuf_file *x, char *path,
                              uint32_t n, const uint64_t *offsets,
                              const uint64_t *lengths, const uint64_t *counts,
                              uint64_t data_len, ember_error *err)
{
    ember_buf idx = shuf_buf(m);
    ember_status s = shuf_index_build(m, &idx, n, offsets, lengths, counts,
                                      data_len, err);
    if (s != EMBER_OK) {
        shuf_free(m, path);
        goto done;
    }
    s = shuf_file_create(m, x, path, 0, "writing", err);
    if (s == EMBER_OK)
        s = shuf_file_write(m, x, idx.data, idx.len, NULL, 0, err);
    if (s == EMBER_OK)
        s = shuf_file_finish(m, x, err);
done:
    ember_buf_release(&idx);
    return s;
}

ember_status shuf_index_open(const shuf_mgr *m, const char *path,
                             uint64_t shuffle_id, uint32_t map_id,
                             uint32_t partition, shuf_index_ref *x,
                             ember_error *err)
{
    ember_status s;
    x->corrupt = 0;
    x->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (x->fd < 0) {
        if (errno == ENOENT)
            return ember_errorf(err, EMBER_ENOTFOUND,
                                "%s: no committed output for shuffle %llu "
                                "map %u (%s)",
                                m->label, (unsigned long long)shuffle_id,
                                map_id, path);
        return shuf_errno(m, err, errno, "opening", path);
    }
    if (fstat(x->fd, &x->st) != 0)
        return shuf_errno(m, err, errno, "reading", path);
    x->corrupt = 1; /* from here an EINVAL is a broken output */
    s = shuf_index_read_hdr(m, x->fd, path, &x->h, err);
    if (s != EMBER_OK)
        return s;
    if (partition >= x->h.num_partitions) {
        x->corrupt = 0;
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: read_block: partition %u out of range (%s "
                            "has %u)",
                            m->label, partition, path, x->h.num_partitions);
    }
    return shuf_index_read_entry(m, x->fd, path, &x->h, partition, 1, &x->e,
                                 err);
}

ember_status shuf_data_size(const shuf_mgr *m, int fd, const char *path,
                            uint64_t want, uint64_t *size, ember_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return shuf_errno(m, err, errno, "reading", path);
    *size = (uint64_t)st.st_size;
    if (*size != want)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: corrupt %s at offset %llu: the file is %llu "
                            "bytes, its index says %llu",
                            m->label, path, (unsigned long long)*size,
                            (unsigned long long)*size,
                            (unsigned long long)want);
    return EMBER_OK;
}
