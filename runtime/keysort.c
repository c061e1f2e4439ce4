/* runtime/keysort.c — see keysort.h. */
#include "runtime/keysort.h"

#include <stdlib.h>
#include <string.h>

void em_keyref_prefix(em_keyref *r)
{
    uint64_t p = 0;
    size_t n = r->klen < 8 ? r->klen : 8;
    for (size_t i = 0; i < 8; i++)
        p = (p << 8) | (i < n ? r->key[i] : 0);
    r->prefix = p;
}

int em_key_compare(const em_keyref *a, const em_keyref *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static int full_cmp(const void *x, const void *y)
{
    const em_keyref *a = x, *b = y;
    int c = em_key_compare(a, b);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The MSD pass splits by 16 bits; LSD passes go 8 bits at a time (their
 * counters are cleared per pass, cheap for small buckets too). */
#define MSD_BITS 16
#define MSD_DIGITS ((size_t)1 << MSD_BITS)
#define LSD_DIGITS 256
/* From this many refs on, an MSD pass splits them into buckets first. */
#define MSD_MIN ((size_t)1 << 15)
/* Buckets this small are put in order by insertion; up to MEDIUM, by
 * byte-wise MSD (one pass per level, no pass on bytes that are equal). */
#define SMALL 24
#define MEDIUM 1024

/* Turns counts per digit into the offsets where each digit's refs start. */
static void to_offsets(size_t *count, size_t digits)
{
    size_t sum = 0;
    for (size_t d = 0; d < digits; d++) {
        size_t c = count[d];
        count[d] = sum;
        sum += c;
    }
}

/* Stable LSD radix on the prefix, a byte a pass, skipping bytes that are
 * the same for every ref; the result is in refs. */
static void lsd(em_keyref *refs, em_keyref *tmp, size_t n)
{
    size_t count[LSD_DIGITS];
    em_keyref *src = refs, *dst = tmp;
    for (int sh = 0; sh < 64; sh += 8) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[(src[i].prefix >> sh) & 0xff]++;
        if (count[(src[0].prefix >> sh) & 0xff] == n)
            continue;
        to_offsets(count, LSD_DIGITS);
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].prefix >> sh) & 0xff]++] = src[i];
        em_keyref *t = src;
        src = dst;
        dst = t;
    }
    if (src != refs)
        memcpy(refs, src, n * sizeof *refs);
}

/* Stable insertion sort by prefix. */
static void by_insertion(em_keyref *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        em_keyref x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].prefix > x.prefix) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static int msd(em_keyref *refs, em_keyref *tmp, size_t n);

/* The bits in which the prefixes of refs[0..n) differ. */
static uint64_t varying(const em_keyref *refs, size_t n)
{
    uint64_t any = 0, all = ~(uint64_t)0;
    for (size_t i = 0; i < n; i++) {
        any |= refs[i].prefix;
        all &= refs[i].prefix;
    }
    return any ^ all;
}

/* A bucket of a few hundred refs at most: stable MSD on the highest 8
 * bits where they differ, then each part the same way; result in refs. */
static void msd8(em_keyref *refs, em_keyref *tmp, size_t n)
{
    uint64_t vary = varying(refs, n);
    if (!vary)
        return;
    int top = 63 - __builtin_clzll(vary);
    int sh = top >= 7 ? top - 7 : 0;
    size_t ends[LSD_DIGITS];
    memset(ends, 0, sizeof ends);
    for (size_t i = 0; i < n; i++)
        ends[(refs[i].prefix >> sh) & 0xff]++;
    to_offsets(ends, LSD_DIGITS);
    for (size_t i = 0; i < n; i++)
        tmp[ends[(refs[i].prefix >> sh) & 0xff]++] = refs[i];
    memcpy(refs, tmp, n * sizeof *refs);
    size_t start = 0;
    for (size_t d = 0; d < LSD_DIGITS; d++) {
        size_t len = ends[d] - start;
        if (len > SMALL)
            msd8(refs + start, tmp + start, len);
        else if (len > 1)
            by_insertion(refs + start, len);
        start = ends[d];
    }
}

/* Sorts a bucket of refs by prefix (stable); tmp as large. */
static int bucket_sort(em_keyref *refs, em_keyref *tmp, size_t n)
{
    if (n >= MSD_MIN)
        return msd(refs, tmp, n);
    if (n > MEDIUM)
        lsd(refs, tmp, n);
    else if (n > SMALL)
        msd8(refs, tmp, n);
    else if (n > 1)
        by_insertion(refs, n);
    return 0;
}

/*
 * Many refs: one stable MSD pass on the highest MSD_BITS bits in which
 * the prefixes differ scatters them into tmp, each bucket is sorted on
 * its own, and the whole is copied back: for keys spread over their first
 * bytes, one pass over all the refs and then buckets that fit in cache,
 * instead of a pass over them all per byte. -1 when out of memory.
 */
static int msd(em_keyref *refs, em_keyref *tmp, size_t n)
{
    uint64_t vary = varying(refs, n);
    if (!vary)
        return 0; /* one prefix: the comparison pass orders them */
    int top = 63 - __builtin_clzll(vary);
    int sh = top >= MSD_BITS - 1 ? top - (MSD_BITS - 1) : 0;
    size_t *ends = calloc(MSD_DIGITS, sizeof *ends);
    if (!ends)
        return -1;
    for (size_t i = 0; i < n; i++)
        ends[(refs[i].prefix >> sh) & (MSD_DIGITS - 1)]++;
    to_offsets(ends, MSD_DIGITS);
    for (size_t i = 0; i < n; i++)
        tmp[ends[(refs[i].prefix >> sh) & (MSD_DIGITS - 1)]++] = refs[i];
    /* ends[d] is now where bucket d ends */
    int rc = 0;
    size_t start = 0;
    for (size_t d = 0; rc == 0 && d < MSD_DIGITS; d++) {
        rc = bucket_sort(tmp + start, refs + start, ends[d] - start);
        start = ends[d];
    }
    free(ends);
    memcpy(refs, tmp, n * sizeof *refs);
    return rc;
}

/* Whether refs[0..n), of one prefix, are one key that the prefix holds
 * whole: then they are equal, and the stable radix passes left them in
 * their original order (seq), which is the comparison pass's order. */
static int whole_in_prefix(const em_keyref *refs, size_t n)
{
    uint32_t klen = refs[0].klen;
    if (klen > 8)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (refs[i].klen != klen)
            return 0;
    return 1;
}

void em_keysort(em_keyref *refs, em_keyref *tmp, size_t n)
{
    if (n < 2)
        return;
    if (bucket_sort(refs, tmp, n) != 0) {
        /* no memory for the MSD counters: by comparison */
        qsort(refs, n, sizeof *refs, full_cmp);
        return;
    }
    /* equal prefixes: order by the whole key, then the original order */
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && refs[j].prefix == refs[i].prefix)
            j++;
        if (j - i > 1 && !whole_in_prefix(refs + i, j - i))
            qsort(refs + i, j - i, sizeof *refs, full_cmp);
        i = j;
    }
}
