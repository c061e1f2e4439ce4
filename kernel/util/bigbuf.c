/* util/bigbuf.c — see bigbuf.h. */
#define _GNU_SOURCE /* mremap */
#include "util/bigbuf.h"

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

ember_status em_bigbuf_grow(ember_buf *b, size_t min_cap)
{
    if (min_cap == 0) {
        if (b->owner == MAPPED)
            munmap(b->data, b->cap);
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
    void *p;
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
