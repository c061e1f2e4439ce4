/*
 * ops.c — the table of lineage operations and their rules.
 *
 * Columns: name, parents min..max, dependency kind, functions min..max,
 * how the partition count is derived, order sensitivity, whether the plan
 * must give a partitioner, which partitioner the output carries, and
 * whether a shuffle leaves the output sorted by key.
 *
 * Judgement calls, beyond the brief's table:
 *   - glom is order sensitive (the arrays it makes depend on the order of
 *     their elements); so is sample_by_key, which samples map-side like
 *     sample.
 *   - the key aggregations (reduce/fold/aggregate/combine/count_by_key,
 *     group_by_key), partition_by and distinct read a parent that is
 *     already partitioned like them narrowly, combining inside each
 *     partition (SEMANTICS S2, S10, S13: Spark's combineByKey with the same
 *     partitioner is narrow).
 *   - repartition, distinct, subtract and intersection shuffle by something
 *     other than the key (round robin, the whole record), so their output
 *     claims no partitioner: a child never skips a shuffle on their account.
 */
#include <string.h>

#include "dag/lineage.h"

#define ANY 255 /* max_parents: up to EM_LINEAGE_MAX_PARENTS */

#define N EM_OP_DEPS_NARROW
#define S EM_OP_DEPS_SHUFFLE
#define E EM_OP_DEPS_EITHER

#define GIVEN EM_OP_PARTS_GIVEN
#define SAME EM_OP_PARTS_SAME
#define SUM EM_OP_PARTS_SUM
#define ATMOST EM_OP_PARTS_AT_MOST
#define PRODUCT EM_OP_PARTS_PRODUCT
#define PART EM_OP_PARTS_PARTITIONER

#define O_NONE EM_OUT_NONE
#define O_OWN EM_OUT_OWN
#define O_PARENT EM_OUT_PARENT
#define O_ARG EM_OUT_PARENT_IF_ARG
#define O_UNION EM_OUT_UNION

/* Sorted by name (strcmp order) for the binary search of em_op_find. */
static const em_op ops[] = {
    /* name                          par    dep fns   parts  ord np out   ko */
    {"aggregate_by_key",             1, 1,   E, 2, 2, PART,    0, 1, O_OWN,    0},
    {"cartesian",                    2, 2,   N, 0, 0, PRODUCT, 0, 0, O_NONE,   0},
    /* a checkpointed dataset read back (docs/plan-format.md): the plan
     * may give the partitioner it had (np 2: optional, EM_OP_NP_OPTIONAL) */
    {"checkpoint_read",              0, 0,   N, 0, 0, GIVEN,   0, 2, O_OWN,    0},
    {"coalesce",                     1, 1,   N, 0, 0, ATMOST,  1, 0, O_NONE,   0},
    {"cogroup",                      2, 4,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"combine_by_key",               1, 1,   E, 3, 3, PART,    0, 1, O_OWN,    0},
    {"count_by_key",                 1, 1,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"distinct",                     1, 1,   E, 0, 0, PART,    0, 1, O_NONE,   0},
    {"empty",                        0, 0,   N, 0, 0, GIVEN,   0, 0, O_NONE,   0},
    {"filter",                       1, 1,   N, 1, 1, SAME,    0, 0, O_PARENT, 0},
    {"flat_map",                     1, 1,   N, 1, 1, SAME,    0, 0, O_NONE,   0},
    {"flat_map_values",              1, 1,   N, 1, 1, SAME,    0, 0, O_PARENT, 0},
    {"fold_by_key",                  1, 1,   E, 1, 1, PART,    0, 1, O_OWN,    0},
    {"full_outer_join",              2, 2,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"glom",                         1, 1,   N, 0, 0, SAME,    1, 0, O_NONE,   0},
    {"group_by_key",                 1, 1,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"intersection",                 2, 2,   E, 0, 0, PART,    0, 1, O_NONE,   0},
    {"join",                         2, 2,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"key_by",                       1, 1,   N, 1, 1, SAME,    0, 0, O_NONE,   0},
    {"keys",                         1, 1,   N, 0, 0, SAME,    0, 0, O_NONE,   0},
    {"left_outer_join",              2, 2,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"map",                          1, 1,   N, 1, 1, SAME,    0, 0, O_NONE,   0},
    {"map_partitions",               1, 1,   N, 1, 1, SAME,    0, 0, O_ARG,    0},
    {"map_partitions_with_index",    1, 1,   N, 1, 1, SAME,    0, 0, O_ARG,    0},
    {"map_values",                   1, 1,   N, 1, 1, SAME,    0, 0, O_PARENT, 0},
    {"parallelize",                  0, 0,   N, 0, 1, GIVEN,   0, 0, O_NONE,   0},
    {"partition_by",                 1, 1,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"pipe",                         1, 1,   N, 0, 0, SAME,    0, 0, O_NONE,   0},
    {"range",                        0, 0,   N, 0, 1, GIVEN,   0, 0, O_NONE,   0},
    {"reduce_by_key",                1, 1,   E, 1, 1, PART,    0, 1, O_OWN,    0},
    {"repartition",                  1, 1,   S, 0, 0, PART,    1, 1, O_NONE,   0},
    {"repartition_and_sort_within_partitions",
                                     1, 1,   S, 0, 1, PART,    0, 1, O_OWN,    1},
    {"right_outer_join",             2, 2,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"sample",                       1, 1,   N, 0, 1, SAME,    1, 0, O_PARENT, 0},
    {"sample_by_key",                1, 1,   S, 0, 1, PART,    1, 1, O_OWN,    0},
    {"sort_by_key",                  1, 1,   S, 0, 1, PART,    0, 1, O_OWN,    1},
    {"source",                       0, 0,   N, 1, 1, GIVEN,   0, 0, O_NONE,   0},
    {"subtract",                     2, 2,   E, 0, 0, PART,    0, 1, O_NONE,   0},
    {"subtract_by_key",              2, 2,   E, 0, 0, PART,    0, 1, O_OWN,    0},
    {"text_file",                    0, 0,   N, 0, 1, GIVEN,   0, 0, O_NONE,   0},
    {"union",                        1, ANY, N, 0, 0, SUM,     0, 0, O_UNION,  0},
    {"values",                       1, 1,   N, 0, 0, SAME,    0, 0, O_NONE,   0},
    {"zip",                          2, 2,   N, 0, 0, SAME,    1, 0, O_NONE,   0},
    {"zip_partitions",               2, 4,   N, 1, 1, SAME,    0, 0, O_NONE,   0},
    {"zip_with_index",               1, 1,   N, 0, 0, SAME,    1, 0, O_NONE,   0},
    {"zip_with_unique_id",           1, 1,   N, 0, 0, SAME,    1, 0, O_NONE,   0},
};

const em_op *em_op_find(const char *name)
{
    size_t lo = 0, hi = sizeof ops / sizeof ops[0];
    if (name == NULL)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ops[mid].name);
        if (c == 0)
            return &ops[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
