/*
 * ember/buf.h — the byte buffer that crosses the ABI.
 *
 * An ember_buf is a window of bytes (data, len, cap) plus an optional grow
 * function that says who owns the memory. Three kinds exist:
 *   - fixed: grow == NULL. The memory belongs to whoever made the buffer
 *     (a stack array, an arena slice); appending past cap fails with
 *     EMBER_ENOSPC and leaves len unchanged. Needs no host.
 *   - host-made: made by ember_host_api.buf_init; grow reallocates through
 *     the host and ember_buf_release frees.
 *   - heap: made by ember_buf_heap; grows with the C library's realloc and
 *     ember_buf_release frees. Needs no host either.
 *   - caller-made: any other grow function.
 * Whoever receives an ember_buf * may append; only the maker releases it.
 */
#ifndef EMBER_BUF_H
#define EMBER_BUF_H

#include <stdlib.h>
#include <string.h>

#include "ember/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ember_buf ember_buf;

/*
 * Makes room for at least min_cap bytes in total (not additional), keeping
 * data[0..len). With min_cap == 0 it frees the memory and zeroes the window.
 * Returns EMBER_OK or EMBER_ENOMEM (buffer unchanged).
 */
typedef ember_status (*ember_buf_grow_fn)(ember_buf *b, size_t min_cap);

struct ember_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    ember_buf_grow_fn grow; /* NULL: fixed buffer */
    void *owner;            /* for grow's use: allocator, arena, ... */
};

/* A fixed buffer over mem[0..cap); len starts at 0. */
static inline ember_buf ember_buf_fixed(void *mem, size_t cap)
{
    ember_buf b;
    b.data = (uint8_t *)mem;
    b.len = 0;
    b.cap = cap;
    b.grow = NULL;
    b.owner = NULL;
    return b;
}

/* The grow function of heap buffers: realloc, and free for min_cap 0. */
static inline ember_status ember_buf_heap_grow(ember_buf *b, size_t min_cap)
{
    if (min_cap == 0) {
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        return EMBER_OK;
    }
    void *p = realloc(b->data, min_cap);
    if (!p)
        return EMBER_ENOMEM;
    b->data = (uint8_t *)p;
    b->cap = min_cap;
    return EMBER_OK;
}

/* An empty growable buffer on the C heap; release with ember_buf_release. */
static inline ember_buf ember_buf_heap(void)
{
    ember_buf b;
    b.data = NULL;
    b.len = 0;
    b.cap = 0;
    b.grow = ember_buf_heap_grow;
    b.owner = NULL;
    return b;
}

/*
 * Ensures room for `extra` more bytes after len. Grows geometrically when
 * the buffer can grow. EMBER_ENOSPC for a full fixed buffer, EMBER_ENOMEM
 * when growing failed; the buffer is unchanged on failure.
 */
static inline ember_status ember_buf_reserve(ember_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return EMBER_OK;
    if (b->grow == NULL)
        return EMBER_ENOSPC;
    if (extra > SIZE_MAX - b->len)
        return EMBER_ENOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    return b->grow(b, cap);
}

/* Appends n bytes from p; as ember_buf_reserve on failure. */
static inline ember_status ember_buf_append(ember_buf *b, const void *p,
                                            size_t n)
{
    ember_status s = ember_buf_reserve(b, n);
    if (s != EMBER_OK)
        return s;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return EMBER_OK;
}

/* Appends one byte; as ember_buf_reserve on failure. */
static inline ember_status ember_buf_put_u8(ember_buf *b, uint8_t v)
{
    if (b->len == b->cap) {
        ember_status s = ember_buf_reserve(b, 1);
        if (s != EMBER_OK)
            return s;
    }
    b->data[b->len++] = v;
    return EMBER_OK;
}

/* Frees a growable buffer's memory (a fixed one is only emptied). */
static inline void ember_buf_release(ember_buf *b)
{
    if (b->grow)
        (void)b->grow(b, 0);
    else
        b->len = 0;
}

#ifdef __cplusplus
}
#endif
#endif /* EMBER_BUF_H */
