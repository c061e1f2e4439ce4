/*
 * shuf_parts.c — one chunked file per reduce partition: the hash
 * manager's output and the sort manager's bypass path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shuffle_common.h"

/* Above this many partitions a file is opened for each chunk it gets
 * instead of staying open, so descriptors stay bounded. */
#define PARTS_KEEP_OPEN_MAX 256u
#define PARTS_MIN_CHUNK ((uint32_t)4 << 10)

/* What the chunk sink of a partition needs. */
typedef struct part_sink_arg {
    shuf_parts *ps;
    uint32_t r;
} part_sink_arg;

char *shuf_parts_path(const shuf_parts *ps, uint32_t r)
{
    return shuf_strf(ps->m, "%s%u%s", ps->prefix, r, ps->suffix);
}

/* The path of partition r's file, in the set's own buffer. */
static const char *part_path(shuf_parts *ps, uint32_t r)
{
    snprintf(ps->pathbuf, ps->pathcap, "%s%u%s", ps->prefix, r, ps->suffix);
    return ps->pathbuf;
}

/* Mapped blocks for held chunks (reused through the manager). */
#define HOLD_BLOCK ((size_t)8 << 20)

/* Writes hdr (SHUF_CHUNK_HDR bytes, may be NULL: data holds it) and
 * data[0..n) to partition r's file, created by its first chunk. */
static ember_status file_sink(shuf_parts *ps, uint32_t r, const uint8_t *hdr,
                              const uint8_t *data, size_t n,
                              ember_error *err);

/* Room for a held chunk of len bytes, or NULL when out of memory. */
static shuf_held *held_take(shuf_parts *ps, size_t len)
{
    size_t need = (sizeof(shuf_held) + len + 7) & ~(size_t)7;
    shuf_hold_blk *b = ps->blocks;
    if (!b || b->cap - b->used < need) {
        size_t cap = sizeof(shuf_hold_blk) + need > HOLD_BLOCK
                         ? sizeof(shuf_hold_blk) + need
                         : HOLD_BLOCK;
        b = shuf_map_alloc(ps->m, cap);
        if (!b)
            return NULL;
        b->next = ps->blocks;
        b->used = (sizeof(shuf_hold_blk) + 7) & ~(size_t)7;
        b->cap = cap;
        ps->blocks = b;
    }
    shuf_held *h = (shuf_held *)(void *)((uint8_t *)b + b->used);
    b->used += need;
    h->next = NULL;
    h->len = len;
    return h;
}

static void held_free(shuf_parts *ps)
{
    while (ps->blocks) {
        shuf_hold_blk *b = ps->blocks;
        ps->blocks = b->next;
        shuf_map_free(ps->m, b, b->cap);
    }
    for (uint32_t r = 0; ps->p && r < ps->n; r++)
        ps->p[r].held = ps->p[r].held_tail = NULL;
    ps->held = 0;
}

/* Past the hold: every held chunk goes to its partition's file. */
static ember_status spill_held(shuf_parts *ps, ember_error *err)
{
    ember_status s = EMBER_OK;
    ps->spilled = 1;
    shuf_mgr_count(ps->m, ps->m->ctr_spills, 1);
    shuf_mgr_count(ps->m, ps->m->ctr_spill_bytes, (int64_t)ps->held);
    for (uint32_t r = 0; s == EMBER_OK && r < ps->n; r++)
        for (shuf_held *h = ps->p[r].held; s == EMBER_OK && h; h = h->next)
            s = file_sink(ps, r, NULL, h->data, h->len, err);
    held_free(ps);
    return s;
}

/* The sink of partition r: held while in hold mode, else its file. */
static ember_status part_sink(void *arg, const uint8_t *hdr,
                              const uint8_t *data, size_t n, ember_error *err)
{
    part_sink_arg *a = arg;
    shuf_parts *ps = a->ps;
    shuf_part *p = &ps->p[a->r];
    if (ps->hold && !ps->spilled) {
        shuf_held *h = held_take(ps, SHUF_CHUNK_HDR + n);
        if (!h)
            return shuf_oom(ps->m, err, "holding a chunk");
        memcpy(h->data, hdr, SHUF_CHUNK_HDR);
        memcpy(h->data + SHUF_CHUNK_HDR, data, n);
        if (p->held_tail)
            p->held_tail->next = h;
        else
            p->held = h;
        p->held_tail = h;
        p->bytes += SHUF_CHUNK_HDR + n;
        ps->held += SHUF_CHUNK_HDR + n;
        return ps->held > ps->hold ? spill_held(ps, err) : EMBER_OK;
    }
    ember_status s = file_sink(ps, a->r, hdr, data, n, err);
    if (s == EMBER_OK)
        p->bytes += (hdr ? SHUF_CHUNK_HDR : 0) + n;
    return s;
}

static ember_status file_sink(shuf_parts *ps, uint32_t r, const uint8_t *hdr,
                              const uint8_t *data, size_t n,
                              ember_error *err)
{
    shuf_part *p = &ps->p[r];
    ember_status s;
    if (p->fd < 0) {
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC |
                    (p->created ? O_APPEND : O_TRUNC);
        p->fd = open(part_path(ps, r), flags, 0644);
        if (p->fd < 0)
            return shuf_errno(ps->m, err, errno, ps->what, ps->pathbuf);
        p->created = 1;
    }
    struct iovec iov[2];
    iov[0].iov_base = (void *)(uintptr_t)hdr;
    iov[0].iov_len = hdr ? SHUF_CHUNK_HDR : 0;
    iov[1].iov_base = (void *)(uintptr_t)data;
    iov[1].iov_len = n;
    s = shuf_writev_all(ps->m, p->fd, iov, 2, ps->what, part_path(ps, r),
                        err);
    if (!ps->keep_open) {
        if (close(p->fd) != 0 && s == EMBER_OK)
            s = shuf_errno(ps->m, err, errno, ps->what, part_path(ps, r));
        p->fd = -1;
    }
    return s;
}

ember_status shuf_parts_init(shuf_parts *ps, shuf_mgr *m, shuf_enc *enc,
                             uint32_t n, char *prefix, const char *suffix,
                             const char *what, uint64_t hold,
                             ember_error *err)
{
    memset(ps, 0, sizeof *ps);
    ps->m = m;
    ps->hold = hold;
    ps->enc = enc;
    ps->prefix = prefix;
    ps->suffix = suffix;
    ps->what = what;
    if (!prefix)
        return shuf_oom(m, err, what);
    ps->pathcap = strlen(prefix) + strlen(suffix) + 12;
    ps->pathbuf = shuf_alloc(m, ps->pathcap);
    if (!ps->pathbuf)
        return shuf_oom(m, err, what);
    ps->p = shuf_calloc(m, n, sizeof *ps->p);
    if (!ps->p)
        return shuf_oom(m, err, "for partition buffers");
    ps->n = n;
    ps->keep_open = n <= PARTS_KEEP_OPEN_MAX;
    /* All partitions' chunk buffers together stay near memory_bytes. */
    uint64_t share = m->memory_bytes / n;
    uint32_t chunk = m->chunk_bytes;
    if (share < chunk)
        chunk = share < PARTS_MIN_CHUNK ? PARTS_MIN_CHUNK : (uint32_t)share;
    if (chunk > m->chunk_bytes)
        chunk = m->chunk_bytes;
    ps->chunk = chunk;
    for (uint32_t r = 0; r < n; r++) {
        ps->p[r].fd = -1;
        ps->p[r].c.cap = chunk;
    }
    return EMBER_OK;
}

ember_status shuf_parts_add(shuf_parts *ps, uint32_t r, const uint8_t *rec,
                            size_t len, ember_error *err)
{
    part_sink_arg a = {ps, r};
    ember_status s = shuf_chunk_add(ps->enc, &ps->p[r].c, rec, len,
                                    part_sink, &a, err);
    if (s == EMBER_OK)
        ps->p[r].count++;
    return s;
}

ember_status shuf_parts_finish(shuf_parts *ps, uint64_t *lengths,
                               uint64_t *counts, ember_error *err)
{
    ember_status s = EMBER_OK;
    for (uint32_t r = 0; r < ps->n; r++) {
        shuf_part *p = &ps->p[r];
        part_sink_arg a = {ps, r};
        if (s == EMBER_OK)
            s = shuf_chunk_flush(ps->enc, &p->c, part_sink, &a, err);
        shuf_cbuf_free(ps->m, &p->c);
        if (p->fd >= 0) {
            if (close(p->fd) != 0 && s == EMBER_OK)
                s = shuf_errno(ps->m, err, errno, ps->what,
                               part_path(ps, r));
            p->fd = -1;
        }
        if (lengths)
            lengths[r] = p->bytes;
        if (counts)
            counts[r] = p->count;
    }
    return s;
}

int shuf_parts_all_held(const shuf_parts *ps)
{
    return ps->hold && !ps->spilled;
}

ember_status shuf_parts_write_held(shuf_parts *ps, uint32_t r, shuf_file *f,
                                   ember_error *err)
{
    ember_status s = EMBER_OK;
    for (shuf_held *h = ps->p[r].held; s == EMBER_OK && h; h = h->next)
        s = shuf_file_write(ps->m, f, h->data, h->len, NULL, 0, err);
    return s;
}

void shuf_parts_remove(shuf_parts *ps)
{
    for (uint32_t r = 0; ps->p && r < ps->n; r++) {
        if (!ps->p[r].created)
            continue;
        if (ps->p[r].fd >= 0) {
            (void)close(ps->p[r].fd);
            ps->p[r].fd = -1;
        }
        (void)unlink(part_path(ps, r));
        ps->p[r].created = 0;
    }
}

void shuf_parts_free(shuf_parts *ps)
{
    if (!ps->m)
        return;
    for (uint32_t r = 0; ps->p && r < ps->n; r++) {
        if (ps->p[r].fd >= 0)
            (void)close(ps->p[r].fd);
        shuf_cbuf_free(ps->m, &ps->p[r].c);
    }
    held_free(ps);
    shuf_free(ps->m, ps->p);
    shuf_free(ps->m, ps->prefix);
    shuf_free(ps->m, ps->pathbuf);
    memset(ps, 0, sizeof *ps);
}
