/* runtime/bytemap.c — see bytemap.h. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include "runtime/bytemap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Tables of this size and more are mappings of their own, marked for
 * huge pages: lookups land anywhere in them, and 2 MiB pages spare most
 * of the TLB misses. */
#define TABLE_MAPPED ((size_t)2 << 20)

/* The last mapped tables this thread freed (at most SPARES, the largest
 * kept), each kept for its next table of the same size: the tasks of a
 * stage run one after another on a worker thread and size their tables
 * alike (combiner.c's hint) — an iterative job's map-side and reduce-side
 * tables take turns — and clearing a table we hold is several times
 * cheaper than having the kernel fault in and zero fresh huge pages.
 * em_bytemap_drop_spare unmaps them. */
#define SPARES 2
static _Thread_local struct {
    em_bytemap_slot *slots;
    size_t bytes;
} spares[SPARES];
static _Thread_local bool keep_spare; /* this thread drops them when idle */

/* Zeroed slots, faulted in writable before use: calloc's fresh pages map
 * the shared zero page, so a lookup's read and then an insert's write
 * would fault twice, the second flushing every thread's TLB. A fresh
 * mapping is zeroed by the kernel as it populates it (huge pages when it
 * can), so it is not written over again. */
static em_bytemap_slot *slots_alloc(size_t n)
{
    size_t bytes = n * sizeof(em_bytemap_slot);
    void *mem = NULL;
    for (size_t i = 0; bytes >= TABLE_MAPPED && i < SPARES; i++)
        if (spares[i].slots && spares[i].bytes == bytes) {
            mem = spares[i].slots;
            spares[i].slots = NULL;
            spares[i].bytes = 0;
            break;
        }
    if (mem) {
        /* cleared below */
    } else if (bytes >= TABLE_MAPPED) {
        mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return NULL;
        madvise(mem, bytes, MADV_HUGEPAGE); /* a hint */
#ifdef MADV_POPULATE_WRITE
        if (madvise(mem, bytes, MADV_POPULATE_WRITE) == 0)
            return mem;
#endif
    } else if (posix_memalign(&mem, 64, bytes) != 0) {
        return NULL;
    }
    memset(mem, 0, bytes);
    return mem;
}

static void slots_free(em_bytemap_slot *slots, size_t n)
{
    size_t bytes = n * sizeof(em_bytemap_slot);
    if (!slots)
        return;
    if (bytes < TABLE_MAPPED) {
        free(slots);
        return;
    }
    /* keep the largest: tables grow to their final size */
    size_t at = 0;
    for (size_t i = 1; i < SPARES; i++)
        if (spares[i].bytes < spares[at].bytes)
            at = i;
    if (!keep_spare || (spares[at].slots && spares[at].bytes >= bytes)) {
        munmap(slots, bytes);
        return;
    }
    if (spares[at].slots)
        munmap(spares[at].slots, spares[at].bytes);
    spares[at].slots = slots;
    spares[at].bytes = bytes;
}

void em_bytemap_keep_spare(bool on)
{
    keep_spare = on;
    if (!on)
        em_bytemap_drop_spare();
}

size_t em_bytemap_spare_bytes(void)
{
    size_t sum = 0;
    for (size_t i = 0; i < SPARES; i++)
        sum += spares[i].bytes;
    return sum;
}

void em_bytemap_drop_spare(void)
{
    for (size_t i = 0; i < SPARES; i++) {
        if (spares[i].slots)
            munmap(spares[i].slots, spares[i].bytes);
        spares[i].slots = NULL;
        spares[i].bytes = 0;
    }
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

uint64_t em_bytemap_hash_long(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    size_t left = n;
    while (left > 8) {
        h = (h ^ load64(p)) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        left -= 8;
    }
    h = (h ^ load64(p + left - 8)) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

const uint8_t *em_bytemap_key(const em_bytemap *m, const em_bytemap_slot *s,
                              uint8_t buf[EM_BYTEMAP_INLINE])
{
    size_t len = s->len;
    if (len > EM_BYTEMAP_INLINE)
        return m->arena.data + s->w1;
    if (len >= 8) {
        memcpy(buf, &s->w0, 8);
        memcpy(buf + len - 8, &s->w1, 8);
    } else if (len >= 4) {
        uint32_t lo = (uint32_t)s->w0, hi = (uint32_t)(s->w0 >> 32);
        memcpy(buf, &lo, 4);
        memcpy(buf + len - 4, &hi, 4);
    } else if (len > 0) {
        buf[0] = (uint8_t)s->w0;
        buf[len / 2] = (uint8_t)(s->w0 >> 8);
        buf[len - 1] = (uint8_t)(s->w0 >> 16);
    }
    return buf;
}

void em_bytemap_init(em_bytemap *m)
{
    memset(m, 0, sizeof *m);
    m->arena = ember_buf_heap();
}

void em_bytemap_free(em_bytemap *m)
{
    slots_free(m->slots, m->cap);
    ember_buf_release(&m->arena);
    memset(m, 0, sizeof *m);
}

void em_bytemap_clear(em_bytemap *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
    m->arena.len = 0;
}

static inline uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static uint64_t slot_hash(const em_bytemap *m, const em_bytemap_slot *s)
{
    if (s->len > EM_BYTEMAP_INLINE)
        return em_bytemap_hash_long(m->arena.data + s->w1, s->len);
    return em_bytemap_hash_words(s->w0, s->w1, s->len);
}

/* Re-slots m into ncap slots (a power of two holding every key). */
static int resize(em_bytemap *m, size_t ncap)
{
    em_bytemap_slot *ns = slots_alloc(ncap);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        const em_bytemap_slot *s = &m->slots[i];
        if (!s->tag)
            continue;
        size_t j = slot_hash(m, s) & (ncap - 1);
        while (ns[j].tag)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    slots_free(m->slots, m->cap);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

static int grow(em_bytemap *m)
{
    return resize(m, m->cap ? m->cap * 2 : 1024);
}

/* Slots from which a table may be three quarters full instead of half:
 * past 256 MiB of slots the memory (and the kernel's zeroing of it)
 * weighs more than the slightly longer probes. */
#define LOOSE_SLOTS ((size_t)1 << 23)

/* The most keys a table of cap slots holds before it grows. */
static size_t max_keys(size_t cap)
{
    return cap >= LOOSE_SLOTS ? cap / 4 * 3 : cap / 2;
}

ember_status em_bytemap_reserve(em_bytemap *m, size_t keys)
{
    size_t cap = 1024;
    while (keys > max_keys(cap) && cap < ((size_t)1 << 40))
        cap *= 2;
    if (cap <= m->cap)
        return EMBER_OK;
    return resize(m, cap) == 0 ? EMBER_OK : EMBER_ENOMEM;
}

uint64_t *em_bytemap_upsert_key(em_bytemap *m, const em_bmkey *k, int *added)
{
    *added = 0;
    if (m->count + 1 > max_keys(m->cap) && grow(m) != 0)
        return NULL;
    uint32_t tag = tag_of(k->hash);
    size_t mask = m->cap - 1, j = k->hash & mask;
    int inl = k->len <= EM_BYTEMAP_INLINE;
    for (;;) {
        em_bytemap_slot *s = &m->slots[j];
        if (!s->tag)
            break;
        if (s->tag == tag && s->len == k->len &&
            (inl ? s->w0 == k->w0 && s->w1 == k->w1
                 : memcmp(m->arena.data + s->w1, k->p, k->len) == 0))
            return &s->value;
        j = (j + 1) & mask;
    }
    em_bytemap_slot *s = &m->slots[j];
    if (inl) {
        s->w0 = k->w0;
        s->w1 = k->w1;
    } else {
        s->w0 = 0;
        s->w1 = m->arena.len;
        if (ember_buf_append(&m->arena, k->p, k->len) != EMBER_OK)
            return NULL;
    }
    s->len = (uint32_t)k->len;
    s->tag = tag;
    s->value = 0;
    m->count++;
    *added = 1;
    return &s->value;
}

uint64_t *em_bytemap_upsert(em_bytemap *m, const uint8_t *key, size_t len,
                            int *added)
{
    em_bmkey k;
    em_bytemap_prep(&k, key, len);
    return em_bytemap_upsert_key(m, &k, added);
}
