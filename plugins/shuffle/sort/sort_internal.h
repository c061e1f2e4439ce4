/*
 * sort_internal.h — the in-memory sort of the sort shuffle manager.
 *
 * A writer keeps one small entry per buffered record and sorts the entries,
 * never the records: first by reduce partition (a counting sort), then,
 * when the block must be in byte order, by the record bytes with an MSD
 * radix sort on 8-byte big-endian windows of the record (zero-padded), so
 * comparisons only happen inside tiny buckets. Records whose bytes agree
 * up to their padded length differ only by trailing zero bytes and are
 * ordered by length, which is memcmp order with a shorter prefix first.
 *
 * Pure functions over caller memory: no allocation, any thread.
 */
#ifndef EMBER_SORT_INTERNAL_H
#define EMBER_SORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* One buffered record: where it is, its partition, its first 8 bytes. */
typedef struct sort_entry {
    uint64_t prefix; /* bytes [0, 8) big-endian, zero-padded */
    const uint8_t *rec;
    uint32_t part;
    uint32_t len;
} sort_entry;

/* The bytes [at, at + 8) of rec[0..len) as a big-endian number, zero
 * bytes where the record has none. */
static inline uint64_t sort_prefix(const uint8_t *rec, size_t len, size_t at)
{
    uint64_t v = 0;
    if (at + 8 <= len) {
        const uint8_t *p = rec + at;
        return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 |
               (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
               (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
               (uint64_t)p[6] << 8 | (uint64_t)p[7];
    }
    for (size_t i = 0; i < 8; i++) {
        v <<= 8;
        if (at + i < len)
            v |= rec[at + i];
    }
    return v;
}

/*
 * Sorts a[0..n) by partition (stable), and when by_bytes also by record
 * bytes (memcmp, a shorter prefix first) within each partition; prefix
 * fields must hold sort_prefix(rec, len, 0) when by_bytes and may be
 * overwritten. tmp has room for n entries. starts gets num_partitions + 1
 * values: partition p's entries are a[starts[p] .. starts[p + 1]).
 */
void sort_entries(sort_entry *a, sort_entry *tmp, size_t n,
                  uint32_t num_partitions, size_t *starts, int by_bytes);

#endif /* EMBER_SORT_INTERNAL_H */
