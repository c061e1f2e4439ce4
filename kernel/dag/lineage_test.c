/* Unit tests of the lineage graph: the op table, partitioner propagation,
 * determinism, fingerprints, lookup and toDebugString. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dag/lineage.h"
#include "ember/buf.h"

static em_lineage *decode_plan(const char *datasets)
{
    size_t n = strlen(datasets) + 64;
    char *doc = malloc(n);
    em_lineage *l = NULL;
    ember_error err;
    assert_non_null(doc);
    snprintf(doc, n, "{\"ember_plan\":1,\"datasets\":[%s]}", datasets);
    if (em_lineage_decode(&l, doc, strlen(doc), NULL, &err) != EMBER_OK)
        fail_msg("decode failed: %s", err.msg);
    free(doc);
    return l;
}

static const em_node *node(const em_lineage *l, uint64_t id)
{
    int64_t i = em_lineage_find(l, id);
    if (i < 0)
        fail_msg("no dataset %llu", (unsigned long long)id);
    return &l->nodes[i];
}

static char *debug_string(const em_lineage *l, uint64_t id)
{
    char *s = NULL;
    ember_error err;
    assert_int_equal(em_lineage_debug_string(l, (uint32_t)em_lineage_find(l, id),
                                             &s, &err),
                     EMBER_OK);
    assert_non_null(s);
    return s;
}

static void test_op_table(void **state)
{
    (void)state;
    static const char *const names[] = {
        "parallelize", "range", "text_file", "source", "empty", "map",
        "flat_map", "filter", "map_partitions", "map_partitions_with_index",
        "glom", "key_by", "map_values", "flat_map_values", "keys", "values",
        "sample", "pipe", "zip_with_unique_id", "zip_with_index", "union",
        "zip", "zip_partitions", "cartesian", "coalesce", "partition_by",
        "reduce_by_key", "fold_by_key", "aggregate_by_key", "combine_by_key",
        "group_by_key", "sort_by_key", "repartition",
        "repartition_and_sort_within_partitions", "distinct", "count_by_key",
        "sample_by_key", "cogroup", "join", "left_outer_join",
        "right_outer_join", "full_outer_join", "subtract_by_key", "subtract",
        "intersection"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const em_op *op = em_op_find(names[i]);
        if (op == NULL)
            fail_msg("op %s not found", names[i]);
        assert_string_equal(op->name, names[i]);
        /* shuffle and join-like ops take their count from a partitioner */
        assert_int_equal(op->needs_partitioner,
                         op->deps != EM_OP_DEPS_NARROW);
        assert_int_equal(op->parts == EM_OP_PARTS_PARTITIONER,
                         op->needs_partitioner);
    }
    assert_null(em_op_find("Map"));
    assert_null(em_op_find(""));
    assert_null(em_op_find("zzz"));
    assert_null(em_op_find(NULL));

    const em_op *op = em_op_find("union");
    assert_int_equal(op->min_parents, 1);
    assert_int_equal(op->max_parents, 255);
    op = em_op_find("combine_by_key");
    assert_int_equal(op->min_fns, 3);
    assert_int_equal(op->deps, EM_OP_DEPS_EITHER);
    assert_int_equal(em_op_find("sort_by_key")->deps, EM_OP_DEPS_SHUFFLE);
    op = em_op_find("join");
    assert_int_equal(op->deps, EM_OP_DEPS_EITHER);
    assert_true(em_op_find("zip")->order_sensitive);
    assert_true(em_op_find("repartition")->order_sensitive);
    assert_false(em_op_find("map")->order_sensitive);
    assert_int_equal(em_op_find("coalesce")->parts, EM_OP_PARTS_AT_MOST);
    assert_int_equal(em_op_find("cartesian")->parts, EM_OP_PARTS_PRODUCT);

    assert_string_equal(em_dep_kind_name(EM_DEP_SHUFFLE), "shuffle");
    assert_string_equal(em_dep_kind_name(EM_DEP_NARROW), "narrow");
    assert_string_equal(em_determinism_name(EM_DET_UNORDERED), "unordered");
    assert_string_equal(em_determinism_name((em_determinism)9), "?");
    assert_string_equal(em_part_kind_name(EM_PART_RANGE), "range");
}

#define P4 "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4}"
#define HASH4 "\"partitioner\":{\"kind\":\"hash\",\"partitions\":4}"

static void test_partitioner_propagation(void **state)
{
    (void)state;
    em_lineage *l = decode_plan(
        P4 ","
        "{\"id\":1,\"op\":\"partition_by\",\"parents\":[0]," HASH4 "},"
        "{\"id\":2,\"op\":\"filter\",\"parents\":[1],\"fns\":[\"a.f\"]},"
        "{\"id\":3,\"op\":\"map_values\",\"parents\":[2],\"fns\":[\"a.f\"]},"
        "{\"id\":4,\"op\":\"map\",\"parents\":[3],\"fns\":[\"a.f\"]},"
        "{\"id\":5,\"op\":\"map_partitions\",\"parents\":[3],"
        "\"fns\":[\"a.f\"],\"args\":{\"preserves_partitioning\":true}},"
        "{\"id\":6,\"op\":\"map_partitions\",\"parents\":[3],"
        "\"fns\":[\"a.f\"],\"args\":{\"preserves_partitioning\":false}},"
        "{\"id\":7,\"op\":\"parallelize\",\"partitions\":3},"
        "{\"id\":8,\"op\":\"partition_by\",\"parents\":[7]," HASH4 "},"
        "{\"id\":9,\"op\":\"join\",\"parents\":[5,8]," HASH4 "},"
        "{\"id\":10,\"op\":\"join\",\"parents\":[4,8]," HASH4 "},"
        "{\"id\":11,\"op\":\"union\",\"parents\":[2,3]},"
        "{\"id\":12,\"op\":\"union\",\"parents\":[2,4]},"
        "{\"id\":13,\"op\":\"distinct\",\"parents\":[3]," HASH4 "},"
        "{\"id\":14,\"op\":\"filter\",\"parents\":[13],\"fns\":[\"a.f\"]},"
        "{\"id\":15,\"op\":\"join\",\"parents\":[13,8]," HASH4 "},"
        "{\"id\":16,\"op\":\"coalesce\",\"parents\":[3],\"partitions\":2},"
        "{\"id\":17,\"op\":\"cartesian\",\"parents\":[0,7]},"
        "{\"id\":18,\"op\":\"sample\",\"parents\":[1]},"
        "{\"id\":19,\"op\":\"partition_by\",\"parents\":[1],"
        "\"partitioner\":{\"kind\":\"hash\",\"partitions\":2}},"
        "{\"id\":20,\"op\":\"cogroup\",\"parents\":[1,19,8]," HASH4 "}");
    static const struct {
        uint64_t id;
        int keyed; /* output partitioned by hash/4 */
        uint32_t partitions;
    } want[] = {{0, 0, 4},  {1, 1, 4},  {2, 1, 4},  {3, 1, 4},  {4, 0, 4},
                {5, 1, 4},  {6, 0, 4},  {7, 0, 3},  {8, 1, 4},  {9, 1, 4},
                {10, 1, 4}, {11, 1, 4}, {12, 0, 8}, {13, 0, 4}, {14, 0, 4},
                {15, 1, 4}, {16, 0, 2}, {17, 0, 12}, {18, 1, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const em_node *n = node(l, want[i].id);
        const em_partitioner *p = em_node_output_partitioner(n);
        if ((p != NULL) != want[i].keyed)
            fail_msg("dataset %llu: keyed %d", (unsigned long long)want[i].id,
                     p != NULL);
        if (p != NULL) {
            assert_int_equal(p->kind, EM_PART_HASH);
            assert_int_equal(p->partitions, 4);
        }
        assert_int_equal(n->partitions, want[i].partitions);
    }
    /* distinct shuffles with its partitioner but claims none downstream */
    assert_int_equal(node(l, 13)->partitioner.kind, EM_PART_HASH);
    /* co-partitioned parents of a join are narrow, others shuffle */
    assert_int_equal(node(l, 9)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 9)->deps[1].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 10)->deps[0].kind, EM_DEP_SHUFFLE);
    assert_int_equal(node(l, 10)->deps[1].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 15)->deps[0].kind, EM_DEP_SHUFFLE);
    assert_int_equal(node(l, 20)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 20)->deps[1].kind, EM_DEP_SHUFFLE);
    assert_int_equal(node(l, 20)->deps[2].kind, EM_DEP_NARROW);
    assert_true(em_partitioner_equal(&node(l, 1)->partitioner,
                                     &node(l, 8)->partitioner));
    assert_false(em_partitioner_equal(&node(l, 1)->partitioner,
                                      &node(l, 19)->partitioner));
    assert_false(em_partitioner_equal(&node(l, 1)->partitioner, NULL));
    assert_true(em_partitioner_equal(NULL, &node(l, 0)->partitioner));
    em_lineage_free(l);

    /* range and function partitioners compare their bounds and function */
    l = decode_plan(
        P4 ","
        "{\"id\":1,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2,\"bounds\":\"AQ==\"}},"
        "{\"id\":2,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2,\"bounds\":\"Ag==\"}},"
        "{\"id\":3,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2,\"bounds\":\"AQ==\","
        "\"descending\":true}},"
        "{\"id\":4,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"function\",\"partitions\":2,\"fn\":\"p.f\"}},"
        "{\"id\":5,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"function\",\"partitions\":2,\"fn\":{\"name\":\"p.f\","
        "\"arg\":\"AA==\"}}},"
        "{\"id\":6,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2,\"bounds\":\"AQ==\"}},"
        "{\"id\":7,\"op\":\"join\",\"parents\":[1,6],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2,\"bounds\":\"AQ==\"}},"
        "{\"id\":8,\"op\":\"join\",\"parents\":[1,2],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2,\"bounds\":\"AQ==\"}}");
    for (uint64_t a = 1; a <= 5; a++)
        for (uint64_t b = 1; b <= 5; b++)
            assert_int_equal(em_partitioner_equal(&node(l, a)->partitioner,
                                                  &node(l, b)->partitioner),
                             a == b);
    assert_true(em_partitioner_equal(&node(l, 1)->partitioner,
                                     &node(l, 6)->partitioner));
    assert_int_equal(node(l, 7)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 7)->deps[1].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 8)->deps[1].kind, EM_DEP_SHUFFLE);
    em_lineage_free(l);
}

/* Partitioners declared by different datasets with the same contents get
 * the same class, and are co-partitioned for joins and unions; any
 * difference in contents gives another class. */
static void test_partitioner_classes(void **state)
{
    (void)state;
#define RANGE2(b) "\"partitioner\":{\"kind\":\"range\",\"partitions\":2," \
                  "\"bounds\":\"" b "\"}"
#define FN2(arg) "\"partitioner\":{\"kind\":\"function\",\"partitions\":2," \
                 "\"fn\":{\"name\":\"p.f\",\"arg\":\"" arg "\"}}"
    em_lineage *l = decode_plan(
        P4 ","
        "{\"id\":1,\"op\":\"sort_by_key\",\"parents\":[0]," RANGE2("AAECAwQF") "},"
        "{\"id\":2,\"op\":\"sort_by_key\",\"parents\":[0]," RANGE2("AAECAwQF") "},"
        /* same length, last byte differs */
        "{\"id\":3,\"op\":\"sort_by_key\",\"parents\":[0]," RANGE2("AAECAwQG") "},"
        "{\"id\":4,\"op\":\"partition_by\",\"parents\":[0]," FN2("AAE=") "},"
        "{\"id\":5,\"op\":\"partition_by\",\"parents\":[0]," FN2("AAE=") "},"
        "{\"id\":6,\"op\":\"partition_by\",\"parents\":[0]," FN2("AAI=") "},"
        "{\"id\":7,\"op\":\"filter\",\"parents\":[2],\"fns\":[\"a.f\"]},"
        /* the join declares its own, equal, copy of the bounds */
        "{\"id\":8,\"op\":\"join\",\"parents\":[1,7]," RANGE2("AAECAwQF") "},"
        "{\"id\":9,\"op\":\"join\",\"parents\":[1,3]," RANGE2("AAECAwQF") "},"
        "{\"id\":10,\"op\":\"join\",\"parents\":[4,5]," FN2("AAE=") "},"
        "{\"id\":11,\"op\":\"join\",\"parents\":[4,6]," FN2("AAE=") "},"
        "{\"id\":12,\"op\":\"union\",\"parents\":[1,7,2]},"
        "{\"id\":13,\"op\":\"union\",\"parents\":[1,3]},"
        "{\"id\":14,\"op\":\"union\",\"parents\":[4,5,4]},"
        "{\"id\":15,\"op\":\"union\",\"parents\":[5,6]}");
    const em_partitioner *p1 = &node(l, 1)->partitioner;
    const em_partitioner *p4 = &node(l, 4)->partitioner;
    assert_int_equal(node(l, 0)->partitioner.class_id, 0);
    assert_int_not_equal(p1->class_id, 0);
    assert_int_equal(node(l, 2)->partitioner.class_id, p1->class_id);
    assert_int_equal(node(l, 7)->partitioner.class_id, p1->class_id);
    assert_int_equal(node(l, 8)->partitioner.class_id, p1->class_id);
    assert_int_not_equal(node(l, 3)->partitioner.class_id, p1->class_id);
    assert_int_not_equal(p4->class_id, 0);
    assert_int_not_equal(p4->class_id, p1->class_id);
    assert_int_equal(node(l, 5)->partitioner.class_id, p4->class_id);
    assert_int_not_equal(node(l, 6)->partitioner.class_id, p4->class_id);
    /* classes agree with em_partitioner_equal */
    for (uint64_t a = 1; a <= 6; a++)
        for (uint64_t b = 1; b <= 6; b++)
            assert_int_equal(node(l, a)->partitioner.class_id ==
                                 node(l, b)->partitioner.class_id,
                             em_partitioner_equal(&node(l, a)->partitioner,
                                                  &node(l, b)->partitioner));
    /* joins: narrow on equal contents, shuffle on different ones */
    assert_int_equal(node(l, 8)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 8)->deps[1].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 9)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 9)->deps[1].kind, EM_DEP_SHUFFLE);
    assert_int_equal(node(l, 10)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 10)->deps[1].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 11)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 11)->deps[1].kind, EM_DEP_SHUFFLE);
    /* unions keep the partitioner only when every parent has an equal one */
    assert_non_null(em_node_output_partitioner(node(l, 12)));
    assert_int_equal(node(l, 12)->partitioner.class_id, p1->class_id);
    assert_int_equal(node(l, 12)->partitions, 2);
    assert_null(em_node_output_partitioner(node(l, 13)));
    assert_int_equal(node(l, 13)->partitions, 4);
    assert_int_equal(node(l, 14)->partitioner.class_id, p4->class_id);
    assert_int_equal(node(l, 14)->partitions, 2);
    assert_null(em_node_output_partitioner(node(l, 15)));
    assert_int_equal(node(l, 15)->partitions, 4);
    em_lineage_free(l);

    /* a declared narrow dependency needs an equal partitioner */
    {
        char doc[1024];
        em_lineage *bad = NULL;
        ember_error err;
        snprintf(doc, sizeof doc,
                 "{\"ember_plan\":1,\"datasets\":[" P4 ","
                 "{\"id\":1,\"op\":\"sort_by_key\",\"parents\":[0],"
                 RANGE2("AAECAwQF") "},"
                 "{\"id\":2,\"op\":\"sort_by_key\",\"parents\":[0],"
                 RANGE2("AAECAwQG") "},"
                 "{\"id\":3,\"op\":\"join\",\"parents\":[1,{\"id\":2,"
                 "\"dep\":\"narrow\"}]," RANGE2("AAECAwQF") "}]}");
        assert_int_equal(em_lineage_decode(&bad, doc, strlen(doc), NULL,
                                           &err),
                         EMBER_EINVAL);
        assert_null(bad);
        assert_non_null(strstr(err.msg, "parent 2 is not partitioned like"));
    }
#undef RANGE2
#undef FN2
}

static void test_determinism(void **state)
{
    (void)state;
    em_lineage *l = decode_plan(
        "{\"id\":0,\"op\":\"parallelize\",\"partitions\":2},"
        "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"a.f\"],"
        "\"determinism\":\"unordered\"},"
        "{\"id\":2,\"op\":\"zip_with_index\",\"parents\":[1]},"
        "{\"id\":3,\"op\":\"reduce_by_key\",\"parents\":[0],"
        "\"fns\":[\"a.f\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2}},"
        "{\"id\":4,\"op\":\"sort_by_key\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2}},"
        "{\"id\":5,\"op\":\"sort_by_key\",\"parents\":[2],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":2}},"
        "{\"id\":6,\"op\":\"repartition\",\"parents\":[1],\"partitioner\":"
        "{\"kind\":\"hash\",\"partitions\":3}},"
        "{\"id\":7,\"op\":\"repartition\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"hash\",\"partitions\":3}},"
        "{\"id\":8,\"op\":\"filter\",\"parents\":[3],\"fns\":[\"a.f\"]},"
        "{\"id\":9,\"op\":\"zip_with_unique_id\",\"parents\":[3]},"
        "{\"id\":10,\"op\":\"map\",\"parents\":[0],\"fns\":[\"a.f\"],"
        "\"determinism\":\"indeterminate\"},"
        "{\"id\":11,\"op\":\"glom\",\"parents\":[4]},"
        "{\"id\":12,\"op\":\"union\",\"parents\":[0,1]},"
        "{\"id\":13,\"op\":\"union\",\"parents\":[0,10]},"
        "{\"id\":14,\"op\":\"filter\",\"parents\":[0],\"fns\":[\"a.f\"]},"
        "{\"id\":15,\"op\":\"repartition_and_sort_within_partitions\","
        "\"parents\":[14],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2}}");
    static const struct {
        uint64_t id;
        em_determinism det;
    } want[] = {
        {0, EM_DET_DETERMINATE},   {1, EM_DET_UNORDERED},
        {2, EM_DET_INDETERMINATE}, {3, EM_DET_UNORDERED},
        {4, EM_DET_DETERMINATE},   {5, EM_DET_INDETERMINATE},
        {6, EM_DET_INDETERMINATE}, {7, EM_DET_UNORDERED},
        {8, EM_DET_UNORDERED},     {9, EM_DET_INDETERMINATE},
        {10, EM_DET_INDETERMINATE}, {11, EM_DET_DETERMINATE},
        {12, EM_DET_UNORDERED},    {13, EM_DET_INDETERMINATE},
        {14, EM_DET_DETERMINATE},  {15, EM_DET_DETERMINATE},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const em_node *n = node(l, want[i].id);
        if (n->output_determinism != want[i].det)
            fail_msg("dataset %llu: %s, wanted %s",
                     (unsigned long long)want[i].id,
                     em_determinism_name(n->output_determinism),
                     em_determinism_name(want[i].det));
    }
    assert_int_equal(node(l, 1)->determinism, EM_DET_UNORDERED);
    assert_int_equal(node(l, 2)->determinism, EM_DET_DETERMINATE);
    em_lineage_free(l);
}

static void test_fingerprints(void **state)
{
    (void)state;
    /* three copies of one chain: b renamed and re-labelled, c with
     * another argument in its map */
    em_lineage *l = decode_plan(
        "{\"id\":0,\"op\":\"text_file\",\"partitions\":2,"
        "\"args\":{\"path\":\"/x\",\"min\":1}},"
        "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[{\"name\":\"a.f\","
        "\"arg\":\"AQ==\"}]},"
        "{\"id\":2,\"op\":\"reduce_by_key\",\"parents\":[1],"
        "\"fns\":[\"a.g\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2}},"
        "{\"id\":10,\"op\":\"text_file\",\"partitions\":2,"
        "\"args\":{\"min\":1,\"path\":\"/x\"},\"name\":\"other\"},"
        "{\"id\":11,\"op\":\"map\",\"parents\":[{\"id\":10,"
        "\"dep\":\"narrow\"}],\"fns\":[{\"name\":\"a.f\",\"arg\":\"AQ==\"}],"
        "\"storage\":\"DISK_ONLY\",\"checkpoint\":true},"
        "{\"id\":12,\"op\":\"reduce_by_key\",\"parents\":[11],"
        "\"fns\":[\"a.g\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2}},"
        "{\"id\":20,\"op\":\"text_file\",\"partitions\":2,"
        "\"args\":{\"path\":\"/x\",\"min\":1}},"
        "{\"id\":21,\"op\":\"map\",\"parents\":[20],\"fns\":[{\"name\":"
        "\"a.f\",\"arg\":\"Ag==\"}]},"
        "{\"id\":22,\"op\":\"reduce_by_key\",\"parents\":[21],"
        "\"fns\":[\"a.g\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2}},"
        "{\"id\":30,\"op\":\"text_file\",\"partitions\":3,"
        "\"args\":{\"path\":\"/x\",\"min\":1}},"
        "{\"id\":31,\"op\":\"reduce_by_key\",\"parents\":[1],"
        "\"fns\":[\"a.g\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":3}},"
        "{\"id\":32,\"op\":\"map\",\"parents\":[0],\"fns\":[{\"name\":\"a.f\","
        "\"arg\":\"AQ==\"}],\"determinism\":\"unordered\"}");
    for (uint64_t i = 0; i < 3; i++) {
        /* same definition and ancestry, other ids and labels: equal */
        assert_true(node(l, i)->fingerprint == node(l, 10 + i)->fingerprint);
    }
    /* the arg differs at 21; 22 inherits the difference */
    assert_true(node(l, 20)->fingerprint == node(l, 0)->fingerprint);
    assert_true(node(l, 21)->fingerprint != node(l, 1)->fingerprint);
    assert_true(node(l, 22)->fingerprint != node(l, 2)->fingerprint);
    /* partitions, the partitioner and the declared determinism count */
    assert_true(node(l, 30)->fingerprint != node(l, 0)->fingerprint);
    assert_true(node(l, 31)->fingerprint != node(l, 2)->fingerprint);
    assert_true(node(l, 32)->fingerprint != node(l, 1)->fingerprint);
    em_lineage_free(l);
}

static void test_debug_two_shuffles(void **state)
{
    (void)state;
    em_lineage *l = decode_plan(
        "{\"id\":0,\"op\":\"text_file\",\"partitions\":4},"
        "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"a.f\"]},"
        "{\"id\":2,\"op\":\"reduce_by_key\",\"parents\":[1],"
        "\"fns\":[\"a.g\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2}},"
        "{\"id\":3,\"op\":\"map\",\"parents\":[2],\"fns\":[\"a.f\"]},"
        "{\"id\":4,\"op\":\"sort_by_key\",\"parents\":[3],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":3}}");
    char *s = debug_string(l, 4);
    assert_string_equal(s, "(3) sort_by_key [4] []\n"
                           " +-(2) map [3] []\n"
                           "    |  reduce_by_key [2] []\n"
                           "    +-(4) map [1] []\n"
                           "       |  text_file [0] []");
    free(s);
    s = debug_string(l, 0);
    assert_string_equal(s, "(4) text_file [0] []");
    free(s);
    em_lineage_free(l);

    /* the example of the brief, with its label, storage and checkpoint */
    l = decode_plan(
        "{\"id\":0,\"op\":\"text_file\",\"partitions\":4},"
        "{\"id\":1,\"op\":\"flat_map\",\"parents\":[0],\"fns\":[\"a.f\"]},"
        "{\"id\":2,\"op\":\"map\",\"parents\":[1],\"fns\":[\"a.f\"],"
        "\"storage\":\"NONE\"},"
        "{\"id\":3,\"op\":\"reduce_by_key\",\"parents\":[2],"
        "\"fns\":[\"a.g\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":2},\"name\":\"counts\",\"storage\":"
        "\"MEMORY_ONLY\",\"checkpoint\":true},"
        "{\"id\":4,\"op\":\"map\",\"parents\":[3],\"fns\":[\"a.f\"],"
        "\"name\":\"two\\nlines\"}");
    s = debug_string(l, 3);
    assert_string_equal(s, "(2) reduce_by_key [3] counts [MEMORY_ONLY] "
                           "checkpoint\n"
                           " +-(4) map [2] []\n"
                           "    |  flat_map [1] []\n"
                           "    |  text_file [0] []");
    free(s);
    s = debug_string(l, 4);
    assert_non_null(strstr(s, "(2) map [4] two lines []\n"));
    free(s);
    char *bad = (char *)1;
    ember_error err;
    assert_int_equal(em_lineage_debug_string(l, 5, &bad, &err), EMBER_EINVAL);
    assert_null(bad);
    em_lineage_free(l);
}

static void test_debug_diamond(void **state)
{
    (void)state;
    em_lineage *l = decode_plan(
        "{\"id\":0,\"op\":\"parallelize\",\"partitions\":2},"
        "{\"id\":1,\"op\":\"map\",\"parents\":[0],\"fns\":[\"a.f\"]},"
        "{\"id\":2,\"op\":\"map\",\"parents\":[0],\"fns\":[\"a.g\"]},"
        "{\"id\":3,\"op\":\"union\",\"parents\":[1,2]}");
    char *s = debug_string(l, 3);
    assert_string_equal(s, "(4) union [3] []\n"
                           " |  (2) map [1] []\n"
                           " |  parallelize [0] []\n"
                           " |  (2) map [2] []\n"
                           " |  parallelize [0] []");
    free(s);
    em_lineage_free(l);
}

static void test_debug_cogroup(void **state)
{
    (void)state;
    em_lineage *l = decode_plan(
        "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4},"
        "{\"id\":1,\"op\":\"partition_by\",\"parents\":[0],\"partitioner\":"
        "{\"kind\":\"hash\",\"partitions\":2}},"
        "{\"id\":2,\"op\":\"parallelize\",\"partitions\":3},"
        "{\"id\":3,\"op\":\"map\",\"parents\":[2],\"fns\":[\"a.f\"]},"
        "{\"id\":4,\"op\":\"cogroup\",\"parents\":[1,3,2],\"partitioner\":"
        "{\"kind\":\"hash\",\"partitions\":2},\"name\":\"grouped\","
        "\"storage\":\"MEMORY_AND_DISK\",\"checkpoint\":true}");
    assert_int_equal(node(l, 4)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(node(l, 4)->deps[1].kind, EM_DEP_SHUFFLE);
    char *s = debug_string(l, 4);
    assert_string_equal(s, "(2) cogroup [4] grouped [MEMORY_AND_DISK] "
                           "checkpoint\n"
                           " |  (2) partition_by [1] []\n"
                           " +-(4) parallelize [0] []\n"
                           " +-(3) map [3] []\n"
                           " |  |  parallelize [2] []\n"
                           " +-(3) parallelize [2] []");
    free(s);
    em_lineage_free(l);
}

static size_t count_lines(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A long chain: no recursion anywhere (ASan's stack would notice). */
static void test_long_chain(void **state)
{
    (void)state;
    const uint32_t n = 200000;
    ember_buf b = ember_buf_heap();
    char item[160];
    uint32_t i;
    assert_int_equal(ember_buf_append(&b, "{\"ember_plan\":1,\"datasets\":[",
                                      28),
                     EMBER_OK);
    /* listed child first, so the decoder has to sort all of it */
    for (i = n; i-- > 0;) {
        int k;
        if (i == 0)
            k = snprintf(item, sizeof item,
                         "{\"id\":0,\"op\":\"parallelize\",\"partitions\":2}");
        else
            k = snprintf(item, sizeof item,
                         "{\"id\":%u,\"op\":\"map\",\"parents\":[%u],"
                         "\"fns\":[\"a.f\"]},",
                         i, i - 1);
        assert_int_equal(ember_buf_append(&b, item, (size_t)k), EMBER_OK);
    }
    assert_int_equal(ember_buf_append(&b, "]}", 2), EMBER_OK);

    em_lineage *l = NULL;
    ember_error err;
    assert_int_equal(em_lineage_decode(&l, (const char *)b.data, b.len, NULL,
                                       &err),
                     EMBER_OK);
    ember_buf_release(&b);
    assert_int_equal(l->count, n);
    for (i = 0; i < n; i += 997)
        assert_int_equal(l->nodes[i].id, i);
    assert_int_equal(em_lineage_find(l, n - 1), n - 1);
    assert_int_equal(l->nodes[n - 1].partitions, 2);

    char *s = debug_string(l, n - 1);
    assert_int_equal(count_lines(s), n);
    snprintf(item, sizeof item, "(2) map [%u] []\n |  map [%u] []\n", n - 1,
             n - 2);
    assert_memory_equal(s, item, strlen(item));
    assert_non_null(strstr(s, "\n |  parallelize [0] []"));
    free(s);

    char *enc;
    size_t len;
    assert_int_equal(em_lineage_encode(l, &enc, &len, &err), EMBER_OK);
    em_lineage *l2 = NULL;
    assert_int_equal(em_lineage_decode(&l2, enc, len, NULL, &err), EMBER_OK);
    assert_true(l2->nodes[n - 1].fingerprint == l->nodes[n - 1].fingerprint);
    em_lineage_free(l2);
    free(enc);
    em_lineage_free(l);
}

/* Output is capped: a stack of diamonds reaches its source 2^40 ways, and
 * a deep shuffle chain makes ever longer prefixes. */
static void test_debug_caps(void **state)
{
    (void)state;
    static const char head[] = "{\"ember_plan\":1,\"datasets\":["
                               "{\"id\":0,\"op\":\"range\",\"partitions\":1}";
    ember_buf b = ember_buf_heap();
    char item[200];
    int k;
    uint32_t i;
    assert_int_equal(ember_buf_append(&b, head, strlen(head)), EMBER_OK);
    for (i = 1; i <= 40; i++) {
        k = snprintf(item, sizeof item,
                     ",{\"id\":%u,\"op\":\"zip\",\"parents\":[%u,%u]}", i,
                     i - 1, i - 1);
        assert_int_equal(ember_buf_append(&b, item, (size_t)k), EMBER_OK);
    }
    assert_int_equal(ember_buf_append(&b, "]}", 2), EMBER_OK);
    em_lineage *l = NULL;
    ember_error err;
    if (em_lineage_decode(&l, (const char *)b.data, b.len, NULL, &err) !=
        EMBER_OK)
        fail_msg("%s", err.msg);
    ember_buf_release(&b);
    char *s = debug_string(l, 40);
    assert_int_equal(count_lines(s), 1000001);
    assert_string_equal(s + strlen(s) - 4, "\n...");
    free(s);
    em_lineage_free(l);

    /* 20,000 shuffles deep (partition counts alternate, so that no
     * group_by_key reads its parent narrowly) */
    b = ember_buf_heap();
    assert_int_equal(ember_buf_append(&b, head, strlen(head)), EMBER_OK);
    for (i = 1; i <= 20000; i++) {
        k = snprintf(item, sizeof item,
                     ",{\"id\":%u,\"op\":\"group_by_key\",\"parents\":[%u],"
                     "\"partitioner\":{\"kind\":\"hash\",\"partitions\":%u}}",
                     i, i - 1, i % 2 + 1);
        assert_int_equal(ember_buf_append(&b, item, (size_t)k), EMBER_OK);
    }
    assert_int_equal(ember_buf_append(&b, "]}", 2), EMBER_OK);
    if (em_lineage_decode(&l, (const char *)b.data, b.len, NULL, &err) !=
        EMBER_OK)
        fail_msg("%s", err.msg);
    ember_buf_release(&b);
    s = debug_string(l, 20000);
    size_t len = strlen(s);
    assert_true(len <= 65u * 1024u * 1024u);
    assert_true(count_lines(s) < 20001);
    assert_string_equal(s + len - 4, "\n...");
    assert_memory_equal(s, "(1) group_by_key [20000] []\n"
                           " +-(2) group_by_key [19999] []\n"
                           "    +-(1) group_by_key [19998] []\n",
                        28 + 31 + 34);
    free(s);
    em_lineage_free(l);
}

/* A lineage built by hand (no id index) still works with find/encode. */
static void test_hand_built(void **state)
{
    (void)state;
    em_node nodes[2];
    em_dep dep = {0, EM_DEP_NARROW};
    em_fn_ref fn = {(char *)"a.f", NULL, 0};
    memset(nodes, 0, sizeof nodes);
    nodes[0].id = 7;
    nodes[0].op = em_op_find("range");
    nodes[0].partitions = 2;
    nodes[0].determinism = EM_DET_DETERMINATE;
    nodes[1].id = 3;
    nodes[1].op = em_op_find("map");
    nodes[1].deps = &dep;
    nodes[1].ndeps = 1;
    nodes[1].fns = &fn;
    nodes[1].nfns = 1;
    nodes[1].partitions = 2;
    nodes[1].determinism = EM_DET_DETERMINATE;
    em_lineage l = {nodes, 2, NULL};
    assert_int_equal(em_lineage_find(&l, 3), 1);
    assert_int_equal(em_lineage_find(&l, 4), -1);
    char *enc;
    size_t len;
    ember_error err;
    assert_int_equal(em_lineage_encode(&l, &enc, &len, &err), EMBER_OK);
    assert_string_equal(enc, "{\"ember_plan\":1,\"datasets\":["
                             "{\"id\":7,\"op\":\"range\",\"partitions\":2},"
                             "{\"id\":3,\"op\":\"map\",\"parents\":[{\"id\":7,"
                             "\"dep\":\"narrow\"}],\"partitions\":2,"
                             "\"fns\":[\"a.f\"]}]}");
    free(enc);
    dep.parent = 1; /* not before its child */
    assert_int_equal(em_lineage_encode(&l, &enc, &len, &err), EMBER_EINVAL);
    assert_null(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_partitioner_propagation),
        cmocka_unit_test(test_partitioner_classes),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_debug_two_shuffles),
        cmocka_unit_test(test_debug_diamond),
        cmocka_unit_test(test_debug_cogroup),
        cmocka_unit_test(test_long_chain),
        cmocka_unit_test(test_debug_caps),
        cmocka_unit_test(test_hand_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
