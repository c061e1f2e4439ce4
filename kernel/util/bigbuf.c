/* util/bigbuf.c — see bigbuf.h. */
#define _GNU_SOURCE /* mremap */
#include "util/bigbuf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAPPED_MIN ((size_t)2 << 20) /* from here on: a mapping */
#define HUGE_PAGE ((size_t)2 << 20)

/* b->owner: NULL while heap memory, (void *)1 once mapped. */
#define MAPPED ((void *)1)

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Mappings this thread's released big buffers left, for its next ones:
 * a reduce task gathers about as much as the one before it on the same
 * worker, and a mapping whose pages are in is reused without the page
 * faults and kernel zeroing of a fresh one. At most KEEP_MAX of them and
 * KEEP_BYTES together; em_bigbuf_drop_kept unmaps them. */
#define KEEP_MAX 4
#define KEEP_BYTES ((size_t)256 << 20)

static _Thread_local struct {
    void *p;
    size_t cap;
} kept[KEEP_MAX];
static _Thread_local size_t nkept, kept_total;
static _Thread_local bool keeping; /* this thread drops them when idle */

/* Keeps mapping p of cap bytes, or unmaps it (or a smaller kept one). */
static void keep_or_unmap(void *p, size_t cap)
{
    if (!keeping) {
        munmap(p, cap);
        return;
    }
    if (nkept == KEEP_MAX || kept_total + cap > KEEP_BYTES) {
        size_t small = 0;
        for (size_t i = 1; i < nkept; i++)
            if (kept[i].cap < kept[small].cap)
                small = i;
        if (nkept == 0 || kept[small].cap >= cap ||
            kept_total - kept[small].cap + cap > KEEP_BYTES) {
            munmap(p, cap);
            return;
        }
        munmap(kept[small].p, kept[small].cap);
        kept_total -= kept[small].cap;
        kept[small] = kept[--nkept];
    }
    kept[nkept].p = p;
    kept[nkept].cap = cap;
    nkept++;
    kept_total += cap;
}

/* The smallest kept mapping of at least want bytes, taken; or NULL. */
static void *take_kept(size_t want, size_t *cap)
{
    size_t best = KEEP_MAX;
    for (size_t i = 0; i < nkept; i++)
        if (kept[i].cap >= want &&
            (best == KEEP_MAX || kept[i].cap < kept[best].cap))
            best = i;
    if (best == KEEP_MAX)
        return NULL;
    void *p = kept[best].p;
    *cap = kept[best].cap;
    kept_total -= *cap;
    kept[best] = kept[--nkept];
    return p;
}

void em_bigbuf_keep(bool on)
{
    keeping = on;
    if (!on)
        em_bigbuf_drop_kept();
}

size_t em_bigbuf_kept_bytes(void)
{
    return kept_total;
}

void em_bigbuf_drop_kept(void)
{
    for (size_t i = 0; i < nkept; i++)
        munmap(kept[i].p, kept[i].cap);
    nkept = 0;
    kept_total = 0;
}

ember_status em_bigbuf_grow(ember_buf *b, size_t min_cap)
{
    if (min_cap == 0) {
        if (b->owner == MAPPED)
            keep_or_unmap(b->data, b->cap);
        else
            free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        b->owner = NULL;
        return EMBER_OK;
    }
    if (min_cap <= b->cap)
        return EMBER_OK;
    /* grow by half again at least, so that appends stay amortised */
    size_t want = b->cap + b->cap / 2;
    if (want < min_cap)
        want = min_cap;
    if (want < MAPPED_MIN) {
        void *p = realloc(b->data, want);
        if (!p)
            return EMBER_ENOMEM;
        b->data = p;
        b->cap = want;
        return EMBER_OK;
    }
    want = round_up(want, HUGE_PAGE);
    size_t got = 0;
    void *p = take_kept(want, &got);
    if (p) {
        if (b->len)
            memcpy(p, b->data, b->len);
        if (b->owner == MAPPED)
            keep_or_unmap(b->data, b->cap);
        else
            free(b->data);
        b->data = p;
        b->cap = got;
        b->owner = MAPPED;
        return EMBER_OK;
    }
    if (b->owner == MAPPED) {
        p = mremap(b->data, b->cap, want, MREMAP_MAYMOVE);
    } else {
        p = mmap(NULL, want, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED && b->len)
            memcpy(p, b->data, b->len);
    }
    if (p == MAP_FAILED)
        return EMBER_ENOMEM;
    madvise(p, want, MADV_HUGEPAGE); /* a hint: fine if refused */
    if (b->owner != MAPPED)
        free(b->data);
    b->data = p;
    b->cap = want;
    b->owner = MAPPED;
    return EMBER_OK;
}

ember_buf em_bigbuf(void)
{
    ember_buf b;
    b.data = NULL;
    b.len = b.cap = 0;
    b.grow = em_bigbuf_grow;
    b.owner = NULL;
    return b;
}
