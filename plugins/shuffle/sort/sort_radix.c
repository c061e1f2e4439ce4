/*
 * sort_radix.c — counting sort by partition and MSD radix sort by record
 * bytes (sort_internal.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ember/record.h"
#include "sort_internal.h"

/* Buckets at most this big are finished by insertion sort. */
#define SORT_SMALL 24
/* Deeper than this the radix sort hands its bucket to qsort, which keeps
 * the stack bounded for adversarial inputs (long shared prefixes that
 * shed one record per level). */
#define SORT_MAX_DEPTH 48

/* a < b in record order, given that both share every byte before the
 * window their prefixes hold. */
static int entry_less(const sort_entry *a, const sort_entry *b)
{
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix;
    return ember_rec_compare(a->rec, a->len, b->rec, b->len) < 0;
}

static void insertion(sort_entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        sort_entry x = a[i];
        size_t j = i;
        while (j > 0 && entry_less(&x, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* qsort comparators: whole records, and lengths alone. */
static int cmp_records(const void *x, const void *y)
{
    const sort_entry *a = x, *b = y;
    return ember_rec_compare(a->rec, a->len, b->rec, b->len);
}

static int cmp_lengths(const void *x, const void *y)
{
    const sort_entry *a = x, *b = y;
    return (a->len > b->len) - (a->len < b->len);
}

/*
 * Sorts a[0..n), whose records share every byte before `base` (padded),
 * by the byte `byte` (0 = most significant) of their window at base and
 * on.
 */
static void msd(sort_entry *a, sort_entry *tmp, size_t n, unsigned byte,
                size_t base, unsigned depth)
{
    size_t cnt[256];
    for (;;) {
        if (n <= SORT_SMALL) {
            insertion(a, n);
            return;
        }
        if (depth > SORT_MAX_DEPTH) {
            qsort(a, n, sizeof *a, cmp_records);
            return;
        }
        if (byte == 8) {
            /* The window is used up: load the next one. */
            size_t next = base + 8, maxlen = 0;
            for (size_t i = 0; i < n; i++)
                if (a[i].len > maxlen)
                    maxlen = a[i].len;
            if (next >= maxlen) {
                /* Equal but for trailing zeros: shorter first. */
                qsort(a, n, sizeof *a, cmp_lengths);
                return;
            }
            for (size_t i = 0; i < n; i++)
                a[i].prefix = sort_prefix(a[i].rec, a[i].len, next);
            base = next;
            byte = 0;
            continue;
        }
        unsigned shift = 56 - 8 * byte;
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(a[i].prefix >> shift) & 0xff]++;
        if (cnt[(a[0].prefix >> shift) & 0xff] == n) {
            byte++; /* one bucket: nothing to move at this byte */
            continue;
        }
        size_t pos = 0;
        for (unsigned b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[cnt[(a[i].prefix >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
        /* cnt[b] is now the end of bucket b. */
        size_t start = 0;
        for (unsigned b = 0; b < 256; b++) {
            size_t end = cnt[b];
            if (end - start > 1)
                msd(a + start, tmp + start, end - start, byte + 1, base,
                    depth + 1);
            start = end;
        }
        return;
    }
}

void sort_entries(sort_entry *a, sort_entry *tmp, size_t n,
                  uint32_t num_partitions, size_t *starts, int by_bytes)
{
    memset(starts, 0, ((size_t)num_partitions + 1) * sizeof *starts);
    if (num_partitions > 1) {
        for (size_t i = 0; i < n; i++)
            starts[a[i].part + 1]++;
        for (uint32_t p = 0; p < num_partitions; p++)
            starts[p + 1] += starts[p];
        /* Scatter stably, using starts[p] as the running position and
         * then restoring it. */
        for (size_t i = 0; i < n; i++)
            tmp[starts[a[i].part]++] = a[i];
        for (uint32_t p = num_partitions; p > 0; p--)
            starts[p] = starts[p - 1];
        starts[0] = 0;
        if (n)
            memcpy(a, tmp, n * sizeof *a);
    } else {
        starts[1] = n;
    }
    if (!by_bytes)
        return;
    for (uint32_t p = 0; p < num_partitions; p++) {
        size_t lo = starts[p], hi = starts[p + 1];
        if (hi - lo > 1)
            msd(a + lo, tmp + lo, hi - lo, 0, 0, 0);
    }
}
