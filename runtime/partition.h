/*
 * runtime/partition.h — where a map task sends each record: the reading
 * dataset's partitioner applied to a batch at once.
 *
 *   hash      ember_hash64(the key's encoded bytes) mod partitions
 *             (ember/hash.h; stable across processes and releases)
 *   range     bounds b[0] < b[1] < ... (encoded keys, docs/plan-format.md):
 *             partition = the number of bounds below the key (a key equal
 *             to b[i] goes to i, as Spark's RangePartitioner); descending:
 *             nbounds - that
 *   function  a MAP function called once per batch with one record per
 *             key (the key as a record); it returns one int per key, the
 *             partition, which must be in 0 .. partitions-1
 *   round robin (repartition) the next partition after the previous
 *             record's, starting from a place fixed by the map partition
 *             (Spark's coalesce with shuffle)
 *
 * The key is a pair's first element, or the whole record for distinct,
 * subtract and intersection. Threads: one task's.
 */
#ifndef EM_RUNTIME_PARTITION_H
#define EM_RUNTIME_PARTITION_H

#include <stdint.h>

#include "dag/lineage.h"
#include "ember/batch.h"
#include "ember/host.h"
#include "ember/kernel/registry.h"

/* How a shuffle operation finds a record's key. */
typedef enum em_key_mode {
    EM_KEY_PAIR = 0,   /* (key, value) pairs */
    EM_KEY_RECORD = 1, /* the whole record */
    EM_KEY_NONE = 2    /* no key: round robin */
} em_key_mode;

/* The key mode of a shuffle operation. */
em_key_mode em_key_mode_of(const char *op);

typedef struct em_partfn em_partfn;

/*
 * Prepares the partitioner of `reader` (the dataset reading the shuffle)
 * for map task `map_partition`. Errors (bad bounds, a missing function)
 * name the dataset.
 */
ember_status em_partfn_open(em_partfn **out, const em_node *reader,
                            uint32_t map_partition,
                            const em_registry *registry,
                            const ember_host_api *host, ember_error *err);
void em_partfn_close(em_partfn *p);

/* parts[i] = the partition of record i of records (records->count
 * entries). A record that is not a pair where pairs are needed, or a
 * function's bad answer, is an error naming the record. */
ember_status em_partfn_assign(em_partfn *p, const ember_batch *records,
                              uint32_t *parts, ember_error *err);

/* Decodes a range partitioner's bounds blob into views (for tests and the
 * client's checks): *n bounds. EMBER_EINVAL when malformed or unsorted. */
ember_status em_range_bounds_check(const uint8_t *bounds, size_t len,
                                   uint32_t *n, ember_error *err);

#endif /* EM_RUNTIME_PARTITION_H */
