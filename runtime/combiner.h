/*
 * runtime/combiner.h — per-key aggregation in a hash table: the map-side
 * combine of a shuffle and the reduce side of reduce_by_key and friends
 * (Spark's Aggregator: createCombiner, mergeValue, mergeCombiners).
 *
 * Records go in as pairs (key, value) — or whole records for `distinct`,
 * which keeps one copy of each. One entry per distinct key holds its
 * accumulator; functions are called once per batch per key present in
 * the batch (never once per record), and std.sum over ints and counting
 * run inline without calls. em_combiner_emit writes every entry out as a
 * pair (key, accumulator) — or the record for `distinct` — and empties
 * the table; callers flush when em_combiner_bytes passes their budget
 * (a later merge of the partial results is still right).
 *
 * Kinds and sides (fns are the node's functions, zero its args.zero):
 *   REDUCE   reduce_by_key: map and reduce side fold with fns[0]
 *   FOLD     fold_by_key: map side starts each key at zero, fold fns[0];
 *            reduce side folds combiners with fns[0]
 *   AGGREGATE aggregate_by_key: map side zero then fns[0] (seqOp);
 *            reduce side fns[1] (combOp)
 *   COMBINE  combine_by_key: map side fns[0] (createCombiner, a MAP
 *            function: one record out per value) then fns[1]
 *            (mergeValue); reduce side fns[2] (mergeCombiners)
 *   COUNT    count_by_key: map side counts, reduce side sums
 *   DISTINCT distinct: keeps the first copy of each record
 *
 * Threads: one task's.
 */
#ifndef EM_RUNTIME_COMBINER_H
#define EM_RUNTIME_COMBINER_H

#include <stddef.h>
#include <stdint.h>

#include "dag/lineage.h"
#include "ember/batch.h"
#include "ember/host.h"
#include "ember/kernel/registry.h"

typedef enum em_combine_kind {
    EM_COMBINE_NONE = 0,
    EM_COMBINE_REDUCE,
    EM_COMBINE_FOLD,
    EM_COMBINE_AGGREGATE,
    EM_COMBINE_COMBINE,
    EM_COMBINE_COUNT,
    EM_COMBINE_DISTINCT
} em_combine_kind;

/* The combine kind of a shuffle operation (EM_COMBINE_NONE: none). */
em_combine_kind em_combine_kind_of(const char *op);

typedef struct em_combiner em_combiner;

/*
 * Opens a combiner for node n (its op gives the kind, its fns and args
 * the functions and zero) on the map side (map_side 1) or the reduce side.
 * args_json is the node's parsed args (a json_t *, nullable). Functions
 * are resolved in registry and opened here. Errors name the dataset, the
 * function, the partition (of the task, for messages) and the reason.
 */
ember_status em_combiner_open(em_combiner **out, const em_node *n,
                              const void *args_json, int map_side,
                              uint32_t partition, const em_registry *registry,
                              const ember_host_api *host, ember_error *err);
/*
 * A REDUCE combiner over a bare function reference (name "plugin.symbol",
 * arg borrowed until close), outside any dataset: reduce_by_key_locally's
 * per-partition tables (map_side 1) and its merge on the driver (0).
 * Errors name `what` (e.g. "reduce_by_key_locally").
 */
ember_status em_combiner_open_fn(em_combiner **out, const char *what,
                                 const char *fn_name, const uint8_t *arg,
                                 size_t arg_len, int map_side,
                                 uint32_t partition,
                                 const em_registry *registry,
                                 const ember_host_api *host,
                                 ember_error *err);
void em_combiner_close(em_combiner *c);

/* Adds a batch of records. A record that is not a pair (where pairs are
 * expected) is an error naming its position. */
ember_status em_combiner_add(em_combiner *c, const ember_batch *in,
                             ember_error *err);

/*
 * As em_combiner_add for the pairs (first element of r, value) of each
 * record r of `in` — what map(std.pair_with value) would make of it — or,
 * with split (a flat_map(std.split_words) node, else NULL), the pairs
 * (word, value) for each word of r's first element. value is one element's
 * encoding. Errors are the functions' own, naming pair (the
 * map(std.pair_with) node) or split.
 */
ember_status em_combiner_add_fused(em_combiner *c, const ember_batch *in,
                                   const uint8_t *value, size_t value_len,
                                   const em_node *pair, const em_node *split,
                                   ember_error *err);

/*
 * A hint before adding a batch of `records` records: makes room in the
 * table for that many keys at once when it holds fewer. A block of a map
 * task's combined output has one record per key, so a reduce side about
 * to take one needs at least its count of keys; sized at once, the table
 * is spared the growths on the way (each a new zeroed table and a rehash
 * of every key). Small batches are left to normal growth; a failure to
 * make room is ignored (the table grows as it would have).
 */
void em_combiner_expect(em_combiner *c, uint64_t records);

/* Bytes the table holds (keys, accumulators, index). */
size_t em_combiner_bytes(const em_combiner *c);
/* Distinct keys held. */
uint64_t em_combiner_count(const em_combiner *c);

/* Appends every entry to out as a record (batch framing), adds their
 * number to *count, and empties the table. */
ember_status em_combiner_emit(em_combiner *c, ember_buf *out,
                              uint64_t *count, ember_error *err);

/* em_combiner_emit in pieces: appends entries until out holds `limit`
 * bytes or more (at least one entry) and sets *done to 0, or appends the
 * rest, empties the table and sets *done to 1. No entry may be added
 * between the pieces of one emit. */
ember_status em_combiner_emit_some(em_combiner *c, ember_buf *out,
                                   uint64_t *count, size_t limit, int *done,
                                   ember_error *err);

#endif /* EM_RUNTIME_COMBINER_H */
