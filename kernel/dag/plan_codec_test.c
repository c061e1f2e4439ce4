/* Unit tests of the plan codec: decoding, validation errors, the canonical
 * encoding and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "dag/base64.h"
#include "dag/lineage.h"

/* The example of the plan format. */
static const char example[] =
    "{\"ember_plan\": 1,\n"
    " \"datasets\": [\n"
    "  {\"id\": 0, \"op\": \"text_file\", \"partitions\": 4, \"args\": "
    "{\"path\": \"/data/in.txt\"}},\n"
    "  {\"id\": 1, \"op\": \"flat_map\", \"parents\": [0], \"fns\": "
    "[\"std.split_words\"]},\n"
    "  {\"id\": 2, \"op\": \"map\", \"parents\": [{\"id\": 1, \"dep\": "
    "\"narrow\"}], \"fns\": [{\"name\": \"std.pair_with\", \"arg\": "
    "\"AQ==\"}]},\n"
    "  {\"id\": 3, \"op\": \"reduce_by_key\", \"parents\": [{\"id\": 2, "
    "\"dep\": \"shuffle\"}], \"fns\": [\"std.sum\"],\n"
    "   \"partitioner\": {\"kind\": \"hash\", \"partitions\": 2}, "
    "\"storage\": \"MEMORY_ONLY\", \"checkpoint\": false,\n"
    "   \"determinism\": \"deterministic\", \"name\": \"counts\"}\n"
    " ]}";

static em_lineage *decode_ok(const char *json)
{
    em_lineage *l = NULL;
    ember_error err;
    ember_error_clear(&err);
    ember_status s = em_lineage_decode(&l, json, strlen(json), NULL, &err);
    if (s != EMBER_OK)
        fail_msg("decode failed (%d): %s", s, err.msg);
    assert_non_null(l);
    return l;
}

/* Decoding json fails with code and a message containing needle. */
static void expect_error_at(const char *json, size_t len,
                            const em_fn_resolver *r, ember_status code,
                            const char *needle, int line)
{
    em_lineage *l = (em_lineage *)&l; /* must be reset to NULL */
    ember_error err;
    ember_error_clear(&err);
    ember_status s = em_lineage_decode(&l, json, len, r, &err);
    if (s != code || strstr(err.msg, needle) == NULL)
        fail_msg("line %d: got %d \"%s\", wanted %d with \"%s\"", line, s,
                 err.msg, code, needle);
    assert_null(l);
    assert_int_equal(err.code, code);
}
#define expect_error(json, code, needle)                                      \
    expect_error_at(json, strlen(json), NULL, code, needle, __LINE__)

/* A plan document around the given datasets text. */
static char *plan(const char *datasets)
{
    size_t n = strlen(datasets) + 64;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "{\"ember_plan\":1,\"datasets\":[%s]}", datasets);
    return p;
}

#define expect_plan_error(datasets, needle)                                   \
    do {                                                                      \
        char *doc_ = plan(datasets);                                          \
        expect_error_at(doc_, strlen(doc_), NULL, EMBER_EINVAL, needle,       \
                        __LINE__);                                            \
        free(doc_);                                                           \
    } while (0)

#define SRC "{\"id\":0,\"op\":\"parallelize\",\"partitions\":4}"
#define SRC3 "{\"id\":7,\"op\":\"parallelize\",\"partitions\":3}"

static void test_example(void **state)
{
    (void)state;
    em_lineage *l = decode_ok(example);
    assert_int_equal(l->count, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(l->nodes[i].id, i);
        assert_int_equal(em_lineage_find(l, i), i);
    }
    assert_int_equal(em_lineage_find(l, 4), -1);
    const em_node *n0 = &l->nodes[0], *n1 = &l->nodes[1], *n2 = &l->nodes[2],
                  *n3 = &l->nodes[3];
    assert_string_equal(n0->op->name, "text_file");
    assert_int_equal(n0->ndeps, 0);
    assert_int_equal(n0->partitions, 4);
    assert_string_equal(n0->args_json, "{\"path\":\"/data/in.txt\"}");
    assert_null(n0->name);
    assert_null(n0->storage);

    assert_int_equal(n1->ndeps, 1);
    assert_int_equal(n1->deps[0].parent, 0);
    assert_int_equal(n1->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(n1->partitions, 4); /* derived */
    assert_int_equal(n1->nfns, 1);
    assert_string_equal(n1->fns[0].name, "std.split_words");
    assert_int_equal(n1->fns[0].arg_len, 0);
    assert_null(n1->args_json);

    assert_int_equal(n2->deps[0].kind, EM_DEP_NARROW);
    assert_string_equal(n2->fns[0].name, "std.pair_with");
    assert_int_equal(n2->fns[0].arg_len, 1);
    assert_int_equal(n2->fns[0].arg[0], 1);
    assert_int_equal(n2->partitioner.kind, EM_PART_NONE);

    assert_int_equal(n3->deps[0].parent, 2);
    assert_int_equal(n3->deps[0].kind, EM_DEP_SHUFFLE);
    assert_int_equal(n3->partitions, 2); /* from the partitioner */
    assert_int_equal(n3->partitioner.kind, EM_PART_HASH);
    assert_int_equal(n3->partitioner.partitions, 2);
    assert_non_null(em_node_output_partitioner(n3));
    assert_string_equal(n3->storage, "MEMORY_ONLY");
    assert_int_equal(n3->checkpoint, 0);
    assert_string_equal(n3->name, "counts");

    assert_int_equal(n2->output_determinism, EM_DET_DETERMINATE);
    assert_int_equal(n3->determinism, EM_DET_DETERMINATE);
    assert_int_equal(n3->output_determinism, EM_DET_UNORDERED);
    /* every node has its own fingerprint */
    for (uint32_t i = 0; i < 4; i++)
        for (uint32_t j = i + 1; j < 4; j++)
            assert_true(l->nodes[i].fingerprint != l->nodes[j].fingerprint);
    em_lineage_free(l);
    em_lineage_free(NULL);
}

static void test_any_order(void **state)
{
    (void)state;
    /* children before parents: the decoder sorts */
    char *doc = plan("{\"id\":30,\"op\":\"union\",\"parents\":[20,10]},"
                     "{\"id\":20,\"op\":\"map\",\"parents\":[5],"
                     "\"fns\":[\"a.b\"]},"
                     "{\"id\":10,\"op\":\"filter\",\"parents\":[5],"
                     "\"fns\":[\"a.c\"]},"
                     "{\"id\":5,\"op\":\"range\",\"partitions\":3}");
    em_lineage *l = decode_ok(doc);
    assert_int_equal(l->count, 4);
    assert_int_equal(l->nodes[0].id, 5);
    for (uint32_t i = 0; i < l->count; i++)
        for (uint32_t j = 0; j < l->nodes[i].ndeps; j++)
            assert_true(l->nodes[i].deps[j].parent < i);
    int64_t u = em_lineage_find(l, 30);
    assert_int_equal(u, 3);
    assert_int_equal(l->nodes[u].partitions, 6);
    assert_int_equal(l->nodes[l->nodes[u].deps[0].parent].id, 20);
    assert_int_equal(l->nodes[l->nodes[u].deps[1].parent].id, 10);
    assert_int_equal(em_lineage_find(l, 10) >= 0, 1);
    assert_int_equal(em_lineage_find(l, 11), -1);
    em_lineage_free(l);
    free(doc);
}

static void encode_ok(const em_lineage *l, char **out, size_t *len)
{
    ember_error err;
    assert_int_equal(em_lineage_encode(l, out, len, &err), EMBER_OK);
    assert_non_null(*out);
    assert_int_equal(strlen(*out), *len);
}

static void check_round_trip(const char *json)
{
    em_lineage *a = decode_ok(json), *b;
    char *e1, *e2;
    size_t n1, n2;
    encode_ok(a, &e1, &n1);
    b = decode_ok(e1);
    encode_ok(b, &e2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(e1, e2, n1);
    assert_int_equal(a->count, b->count);
    for (uint32_t i = 0; i < a->count; i++) {
        const em_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_int_equal(x->id, y->id);
        assert_true(x->fingerprint == y->fingerprint);
        assert_int_equal(x->partitions, y->partitions);
        assert_int_equal(x->ndeps, y->ndeps);
        for (uint32_t j = 0; j < x->ndeps; j++) {
            assert_int_equal(x->deps[j].parent, y->deps[j].parent);
            assert_int_equal(x->deps[j].kind, y->deps[j].kind);
        }
        assert_int_equal(x->partitioner.kind, y->partitioner.kind);
        assert_int_equal(x->output_determinism, y->output_determinism);
    }
    em_lineage_free(a);
    em_lineage_free(b);
    free(e1);
    free(e2);
}

static void test_round_trip(void **state)
{
    (void)state;
    check_round_trip(example);
    char *doc = plan(
        SRC ","
        "{\"id\":1,\"op\":\"partition_by\",\"parents\":[0],"
        "\"partitioner\":{\"kind\":\"range\",\"partitions\":4,"
        "\"bounds\":\"AAECAw==\",\"descending\":true}},"
        "{\"id\":2,\"op\":\"map_partitions\",\"parents\":[1],"
        "\"fns\":[{\"name\":\"p.f\",\"arg\":\"\"}],"
        "\"args\":{\"z\":[1,2.5,{\"q\":null}],\"preserves_partitioning\":true,"
        "\"s\":\"t\\u00e9\\n\\\"x\"}},"
        "{\"id\":3,\"op\":\"sort_by_key\",\"parents\":[2],"
        "\"partitioner\":{\"kind\":\"function\",\"partitions\":5,"
        "\"fn\":{\"name\":\"p.part\",\"arg\":\"/w==\"}},"
        "\"determinism\":\"unordered\",\"name\":\"we\\\"ird\\tname\","
        "\"checkpoint\":true,\"storage\":\"OFF_HEAP\"},"
        "{\"id\":4,\"op\":\"cogroup\",\"parents\":[2,{\"id\":3,"
        "\"dep\":\"shuffle\"},0],\"partitioner\":{\"kind\":\"range\","
        "\"partitions\":4,\"bounds\":\"AAECAw==\",\"descending\":true}},"
        "{\"id\":5,\"op\":\"empty\",\"partitions\":0},"
        "{\"id\":6,\"op\":\"coalesce\",\"parents\":[5]},"
        "{\"id\":9007199254740992,\"op\":\"cartesian\",\"parents\":[0,4]}");
    check_round_trip(doc);
    /* the encoding is canonical: key order and spacing do not matter */
    em_lineage *l = decode_ok(doc);
    assert_int_equal(l->nodes[4].deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(l->nodes[4].deps[1].kind, EM_DEP_SHUFFLE);
    assert_int_equal(l->nodes[4].deps[2].kind, EM_DEP_SHUFFLE);
    assert_string_equal(l->nodes[2].args_json,
                        "{\"preserves_partitioning\":true,"
                        "\"s\":\"t\xc3\xa9\\n\\\"x\",\"z\":[1,2.5,{\"q\":null}]}");
    assert_int_equal(l->nodes[7].partitions, 16);
    assert_int_equal(l->nodes[6].partitions, 0);
    char *e;
    size_t n;
    encode_ok(l, &e, &n);
    assert_non_null(strstr(e, "{\"id\":1,\"op\":\"partition_by\","
                              "\"parents\":[{\"id\":0,\"dep\":\"shuffle\"}],"
                              "\"partitions\":4,\"partitioner\":{\"kind\":"
                              "\"range\",\"partitions\":4,\"bounds\":"
                              "\"AAECAw==\",\"descending\":true}}"));
    assert_non_null(strstr(e, "\"name\":\"we\\\"ird\\u0009name\""));
    em_lineage_free(l);
    free(e);
    free(doc);

    /* an empty plan */
    check_round_trip("{\"datasets\":[],\"ember_plan\":1}");
}

/*
 * A small plan that names big partitioners many times: two sort_by_key
 * with equal 1 MiB bounds (decoded into different buffers), one with
 * bounds differing in the last byte, and many 64-parent unions alternating
 * between the first two. Partitioners are told apart by content, however
 * often they are compared.
 */
#define BIG_BOUNDS (1u << 20) /* bytes, a multiple of 3 plus 1 */
#define BIG_UNIONS 300

static char *big_bounds_plan(void)
{
    size_t b64 = ((BIG_BOUNDS + 2) / 3) * 4;
    size_t cap = 3 * b64 + (size_t)BIG_UNIONS * 400 + 4096, o = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    o += (size_t)snprintf(doc + o, cap - o,
                          "{\"ember_plan\":1,\"datasets\":[{\"id\":1,"
                          "\"op\":\"source\",\"fns\":[\"p.src\"],"
                          "\"partitions\":4}");
    for (int k = 2; k <= 4; k++) {
        o += (size_t)snprintf(doc + o, cap - o,
                              ",{\"id\":%d,\"op\":\"sort_by_key\","
                              "\"parents\":[1],\"partitioner\":{\"kind\":"
                              "\"range\",\"partitions\":4,\"bounds\":\"",
                              k);
        /* BIG_BOUNDS zero bytes; dataset 4's last one is 1 instead */
        memset(doc + o, 'A', b64 - 4);
        o += b64 - 4;
        memcpy(doc + o, k == 4 ? "AQ==" : "AA==", 4);
        o += 4;
        o += (size_t)snprintf(doc + o, cap - o, "\"}}");
    }
    for (int u = 0; u < BIG_UNIONS; u++) {
        o += (size_t)snprintf(doc + o, cap - o,
                              ",{\"id\":%d,\"op\":\"union\",\"parents\":[",
                              100 + u);
        for (int j = 0; j < 64; j++)
            o += (size_t)snprintf(doc + o, cap - o, "%s%d", j ? "," : "",
                                  2 + (j & 1));
        o += (size_t)snprintf(doc + o, cap - o, "]}");
    }
    o += (size_t)snprintf(
        doc + o, cap - o,
        ",{\"id\":10,\"op\":\"union\",\"parents\":[100,101,2,3]}"
        ",{\"id\":11,\"op\":\"union\",\"parents\":[100,2,4,3]}"
        ",{\"id\":12,\"op\":\"join\",\"parents\":[100,3],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":4,\"bounds\":\"AAAA\"}}"
        ",{\"id\":13,\"op\":\"join\",\"parents\":[10,4],\"partitioner\":"
        "{\"kind\":\"range\",\"partitions\":4,\"bounds\":\"AAAA\"}}"
        "]}");
    assert_true(o < cap);
    return doc;
}

static const em_node *by_id(const em_lineage *l, uint64_t id)
{
    int64_t i = em_lineage_find(l, id);
    assert_true(i >= 0);
    return &l->nodes[i];
}

static void test_unions_of_big_partitioners(void **state)
{
    (void)state;
    char *doc = big_bounds_plan();
    em_lineage *l = decode_ok(doc);
    const em_node *a = by_id(l, 2), *b = by_id(l, 3), *c = by_id(l, 4);
    assert_int_equal(a->partitioner.bounds_len, BIG_BOUNDS);
    assert_int_equal(c->partitioner.bounds_len, BIG_BOUNDS);
    assert_true(a->partitioner.bounds != b->partitioner.bounds);
    assert_true(em_partitioner_equal(&a->partitioner, &b->partitioner));
    assert_false(em_partitioner_equal(&a->partitioner, &c->partitioner));
    assert_int_equal(a->partitioner.class_id, b->partitioner.class_id);
    assert_int_not_equal(a->partitioner.class_id, c->partitioner.class_id);
    for (int u = 0; u < BIG_UNIONS; u++) {
        const em_node *n = by_id(l, 100 + (uint64_t)u);
        const em_partitioner *p = em_node_output_partitioner(n);
        /* partition i reads partition i of every parent */
        assert_int_equal(n->partitions, 4);
        assert_non_null(p);
        assert_true(em_partitioner_equal(p, &a->partitioner));
        assert_int_equal(n->ndeps, 64);
        for (uint32_t j = 0; j < n->ndeps; j++)
            assert_int_equal(n->deps[j].kind, EM_DEP_NARROW);
    }
    /* unions of unions keep it; one parent with other bounds drops it */
    assert_int_equal(by_id(l, 10)->partitions, 4);
    assert_int_equal(by_id(l, 10)->partitioner.class_id,
                     a->partitioner.class_id);
    assert_int_equal(by_id(l, 11)->partitions, 16);
    assert_null(em_node_output_partitioner(by_id(l, 11)));
    /* the joins' own small bounds differ from the big ones */
    assert_int_equal(by_id(l, 12)->deps[0].kind, EM_DEP_SHUFFLE);
    assert_int_equal(by_id(l, 12)->deps[1].kind, EM_DEP_SHUFFLE);
    em_lineage_free(l);
    free(doc);
}

static void test_join_of_big_partitioners(void **state)
{
    (void)state;
    char *doc = big_bounds_plan();
    size_t len = strlen(doc);
    /* keep datasets 1..4 and the unions; add joins declaring big bounds */
    char *tail = strstr(doc, ",{\"id\":10,");
    assert_non_null(tail);
    *tail = '\0';
    {
        size_t b64 = ((BIG_BOUNDS + 2) / 3) * 4;
        size_t cap = len + 2 * b64 + 1024, o = strlen(doc);
        char *big = realloc(doc, cap);
        assert_non_null(big);
        doc = big;
        for (int k = 12; k <= 13; k++) {
            o += (size_t)snprintf(doc + o, cap - o,
                                  ",{\"id\":%d,\"op\":\"join\",\"parents\":"
                                  "[%s],\"partitioner\":{\"kind\":\"range\","
                                  "\"partitions\":4,\"bounds\":\"",
                                  k, k == 12 ? "100,3" : "2,4");
            memset(doc + o, 'A', b64 - 4);
            o += b64 - 4;
            memcpy(doc + o, "AA==", 4);
            o += 4;
            o += (size_t)snprintf(doc + o, cap - o, "\"}}");
        }
        o += (size_t)snprintf(doc + o, cap - o, "]}");
        assert_true(o < cap);
    }
    em_lineage *l = decode_ok(doc);
    /* equal contents from other datasets: co-partitioned, narrow */
    assert_int_equal(by_id(l, 12)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(by_id(l, 12)->deps[1].kind, EM_DEP_NARROW);
    assert_int_equal(by_id(l, 12)->partitioner.class_id,
                     by_id(l, 2)->partitioner.class_id);
    /* different bounds (last byte): shuffle */
    assert_int_equal(by_id(l, 13)->deps[0].kind, EM_DEP_NARROW);
    assert_int_equal(by_id(l, 13)->deps[1].kind, EM_DEP_SHUFFLE);
    em_lineage_free(l);
    /* the canonical encoding and fingerprints are unchanged by classes */
    check_round_trip(doc);
    free(doc);
}

static void test_decode_datasets(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *doc = json_loads("{\"datasets\":[" SRC "],\"actions\":[]}", 0,
                             &jerr);
    assert_non_null(doc);
    em_lineage *l = NULL;
    ember_error err;
    assert_int_equal(em_lineage_decode_datasets(
                         &l, json_object_get(doc, "datasets"), NULL, &err),
                     EMBER_OK);
    assert_int_equal(l->count, 1);
    em_lineage_free(l);
    assert_int_equal(em_lineage_decode_datasets(
                         &l, json_object_get(doc, "actions"), NULL, &err),
                     EMBER_OK);
    assert_int_equal(l->count, 0);
    em_lineage_free(l);
    assert_int_equal(em_lineage_decode_datasets(&l, doc, NULL, &err),
                     EMBER_EINVAL);
    assert_null(l);
    assert_non_null(strstr(err.msg, "must be an array"));
    /* a caller-built document may hold strings with NUL */
    json_t *arr = json_array();
    json_t *o = json_pack("{s:i,s:s%,s:i}", "id", 0, "op", "range\0x", (size_t)7,
                          "partitions", 1);
    assert_non_null(o);
    json_array_append_new(arr, o);
    assert_int_equal(em_lineage_decode_datasets(&l, arr, NULL, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
    json_decref(arr);
    json_decref(doc);
}

static int known_fn(void *ctx, const char *name)
{
    (void)ctx;
    return strncmp(name, "std.", 4) == 0;
}

static void test_resolver(void **state)
{
    (void)state;
    em_fn_resolver r = {known_fn, NULL};
    em_lineage *l = NULL;
    ember_error err;
    assert_int_equal(em_lineage_decode(&l, example, strlen(example), &r, &err),
                     EMBER_OK);
    em_lineage_free(l);
    char *doc = plan(SRC ",{\"id\":3,\"op\":\"map\",\"parents\":[0],"
                         "\"fns\":[\"foo.bar\"]}");
    expect_error_at(doc, strlen(doc), &r, EMBER_EINVAL,
                    "dataset 3 (map): unknown function 'foo.bar'", __LINE__);
    free(doc);
    doc = plan(SRC ",{\"id\":3,\"op\":\"partition_by\",\"parents\":[0],"
                   "\"partitioner\":{\"kind\":\"function\",\"partitions\":2,"
                   "\"fn\":\"my.part\"}}");
    expect_error_at(doc, strlen(doc), &r, EMBER_EINVAL,
                    "unknown function 'my.part'", __LINE__);
    free(doc);
}

static void test_document_errors(void **state)
{
    (void)state;
    expect_error("{\"ember_plan\": 1,\n \"datasets\": [}", EMBER_EINVAL,
                 "plan: JSON error at line 2, column 15:");
    expect_error("", EMBER_EINVAL, "plan: JSON error at line");
    expect_error("{\"ember_plan\":1,\"ember_plan\":1,\"datasets\":[]}",
                 EMBER_EINVAL, "duplicate");
    expect_error("{\"ember_plan\":2,\"datasets\":[]}", EMBER_EVERSION,
                 "plan format version 2 is not supported by this ember "
                 "(supports 1)");
    expect_error("{\"ember_plan\":\"1\",\"datasets\":[]}", EMBER_EINVAL,
                 "\"ember_plan\" must be an integer, got a string");
    expect_error("{\"datasets\":[]}", EMBER_EINVAL, "missing \"ember_plan\"");
    expect_error("{\"ember_plan\":1}", EMBER_EINVAL, "missing \"datasets\"");
    expect_error("{\"ember_plan\":1,\"datasets\":{}}", EMBER_EINVAL,
                 "\"datasets\" must be an array, got an object");
    expect_error("{\"ember_plan\":1,\"datasets\":[],\"actions\":[]}",
                 EMBER_EINVAL, "unknown key 'actions' at the top level");
    expect_error("[1]", EMBER_EINVAL, "must be an object, got an array");
    expect_error("{\"ember_plan\":1,\"datasets\":[3]}", EMBER_EINVAL,
                 "datasets[0] must be an object, got an integer");
    expect_error("{\"ember_plan\":1,\"datasets\":[{\"op\":\"map\"}]}",
                 EMBER_EINVAL, "datasets[0] has no \"id\"");

    /* the size check comes before anything is read */
    expect_error_at("{}", (size_t)EM_LINEAGE_MAX_DOCUMENT + 1, NULL,
                    EMBER_EINVAL, "more than the 1 GiB allowed", __LINE__);

    /* nesting past jansson's limit is a JSON error, not a crash */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    expect_error(deep, EMBER_EINVAL, "plan: JSON error at line 1");
    free(deep);
}

static void test_graph_errors(void **state)
{
    (void)state;
    expect_plan_error(SRC "," SRC, "duplicate dataset id 0 (datasets[0] and "
                                   "datasets[1])");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"mapp\",\"parents\":[0]}",
                      "plan: dataset 1: unknown operation 'mapp'");
    expect_plan_error("{\"id\":1}", "dataset 1 has no \"op\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[9],"
                          "\"fns\":[\"a.b\"]}",
                      "dataset 1 (map): parent 9 is not in the plan");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[1],"
                          "\"fns\":[\"a.b\"]}",
                      "plan: cycle among datasets 1 -> 1");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[3],"
                          "\"fns\":[\"a.b\"]},"
                          "{\"id\":2,\"op\":\"map\",\"parents\":[1],"
                          "\"fns\":[\"a.b\"]},"
                          "{\"id\":3,\"op\":\"map\",\"parents\":[2],"
                          "\"fns\":[\"a.b\"]}",
                      "plan: cycle among datasets 1 -> 2 -> 3 -> 1");
    /* a dataset downstream of a cycle is not named in it */
    expect_plan_error("{\"id\":9,\"op\":\"filter\",\"parents\":[4],"
                      "\"fns\":[\"a.b\"]},"
                      "{\"id\":4,\"op\":\"union\",\"parents\":[7]},"
                      "{\"id\":7,\"op\":\"union\",\"parents\":[4]}",
                      "plan: cycle among datasets 4 -> 7 -> 4");

    /* arity */
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"fns\":[\"a.b\"]}",
                      "dataset 1 (map): takes 1 parent, got 0");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0,0],"
                          "\"fns\":[\"a.b\"]}",
                      "dataset 1 (map): takes 1 parent, got 2");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"zip\",\"parents\":[0,0,0]}",
                      "dataset 1 (zip): takes 2 parents, got 3");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"cogroup\",\"parents\":[0],"
                          "\"partitioner\":{\"kind\":\"hash\","
                          "\"partitions\":2}}",
                      "dataset 1 (cogroup): takes 2 to 4 parents, got 1");
    expect_plan_error("{\"id\":0,\"op\":\"range\",\"partitions\":1,"
                      "\"parents\":[0]}",
                      "dataset 0 (range): takes 0 parents, got 1");
    {
        char ds[1024] = SRC ",{\"id\":1,\"op\":\"union\",\"parents\":[0";
        for (int i = 0; i < 64; i++)
            strcat(ds, ",0");
        strcat(ds, "]}");
        expect_plan_error(ds, "dataset 1 (union): takes 1 to 64 parents, "
                              "got 65");
    }
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0]}",
                      "dataset 1 (map): takes 1 function, got 0");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"keys\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"]}",
                      "dataset 1 (keys): takes 0 functions, got 1");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"combine_by_key\","
                          "\"parents\":[0],\"fns\":[\"a.b\",\"a.c\"],"
                          "\"partitioner\":{\"kind\":\"hash\","
                          "\"partitions\":2}}",
                      "dataset 1 (combine_by_key): takes 3 functions, got 2");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"sample\",\"parents\":[0],"
                          "\"fns\":[\"a.b\",\"a.c\"]}",
                      "dataset 1 (sample): takes 0 to 1 functions, got 2");
    expect_plan_error("{\"id\":0,\"op\":\"source\",\"partitions\":1}",
                      "dataset 0 (source): takes 1 function, got 0");

    /* dependency kinds */
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[{\"id\":0,"
                          "\"dep\":\"shuffle\"}],\"fns\":[\"a.b\"]}",
                      "dataset 1 (map): a map reads its parents without a "
                      "shuffle; parent 0 cannot be a shuffle dependency");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"sort_by_key\","
                          "\"parents\":[{\"id\":0,\"dep\":\"narrow\"}],"
                          "\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":2}}",
                      "dataset 1 (sort_by_key): a sort_by_key always "
                      "shuffles; parent 0 cannot be a narrow dependency");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"reduce_by_key\","
                          "\"parents\":[{\"id\":0,\"dep\":\"narrow\"}],"
                          "\"fns\":[\"a.b\"],\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":2}}",
                      "dataset 1 (reduce_by_key): parent 0 is not "
                      "partitioned like this dataset (none, this one "
                      "hash/2), so it cannot be a narrow dependency");
    expect_plan_error(SRC "," SRC3 ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"hash\",\"partitions\":4}},"
                          "{\"id\":2,\"op\":\"join\",\"parents\":["
                          "{\"id\":1,\"dep\":\"narrow\"},"
                          "{\"id\":7,\"dep\":\"narrow\"}],\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":4}}",
                      "dataset 2 (join): parent 7 is not partitioned like "
                      "this dataset (none, this one hash/4), so it cannot "
                      "be a narrow dependency");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"hash\",\"partitions\":4}},"
                          "{\"id\":2,\"op\":\"join\",\"parents\":["
                          "{\"id\":1,\"dep\":\"narrow\"},1],\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":3}}",
                      "parent 1 is not partitioned like this dataset "
                      "(hash/4, this one hash/3)");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[{\"id\":0,"
                          "\"dep\":\"wide\"}],\"fns\":[\"a.b\"]}",
                      "parents[0]: \"dep\" must be \"narrow\" or "
                      "\"shuffle\", got 'wide'");

    /* partitions */
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"partitions\":5}",
                      "dataset 1 (map): \"partitions\" is 5 but a map of "
                      "these parents has 4");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"reduce_by_key\","
                          "\"parents\":[0],\"fns\":[\"a.b\"],"
                          "\"partitions\":3,\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":2}}",
                      "\"partitions\" is 3 but a reduce_by_key of these "
                      "parents has 2");
    expect_plan_error(SRC "," SRC3 ",{\"id\":1,\"op\":\"zip\","
                          "\"parents\":[0,7]}",
                      "dataset 1 (zip): parents have different partition "
                      "counts (4 and 3)");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"reduce_by_key\","
                          "\"parents\":[0],\"fns\":[\"a.b\"],\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":0}}",
                      "dataset 1 (reduce_by_key): the partitioner's "
                      "\"partitions\" must be from 1 to 16777216, got 0");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"group_by_key\","
                          "\"parents\":[0],\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":16777217}}",
                      "must be from 1 to 16777216, got 16777217");
    expect_plan_error("{\"id\":0,\"op\":\"range\",\"partitions\":16777217}",
                      "dataset 0 (range): \"partitions\" must be from 0 to "
                      "16777216, got 16777217");
    expect_plan_error("{\"id\":0,\"op\":\"range\",\"partitions\":4096},"
                      "{\"id\":1,\"op\":\"range\",\"partitions\":4097},"
                      "{\"id\":2,\"op\":\"cartesian\",\"parents\":[0,1]}",
                      "dataset 2 (cartesian): would have 16781312 "
                      "partitions, more than the 16777216 allowed");
    expect_plan_error("{\"id\":0,\"op\":\"text_file\"}",
                      "dataset 0 (text_file): \"partitions\" is required");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"coalesce\",\"parents\":[0],"
                          "\"partitions\":5}",
                      "dataset 1 (coalesce): \"partitions\" is 5 but must "
                      "be from 1 to 4");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"coalesce\",\"parents\":[0],"
                          "\"partitions\":0}",
                      "must be from 1 to 4");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"group_by_key\","
                          "\"parents\":[0]}",
                      "dataset 1 (group_by_key): a group_by_key needs a "
                      "\"partitioner\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"partitioner\":"
                          "{\"kind\":\"hash\",\"partitions\":4}}",
                      "dataset 1 (map): a map takes no \"partitioner\"");
}

static void test_field_errors(void **state)
{
    (void)state;
    /* function names and blobs */
    static const char *const bad_names[] = {"nodot", ".sym", "plug.",
                                            "pl ug.x", "a.b c", "a/b.c",
                                            ""};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        char ds[256];
        snprintf(ds, sizeof ds,
                 SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                     "\"fns\":[\"%s\"]}",
                 bad_names[i]);
        expect_plan_error(ds, "is not a function name (plugin.symbol)");
    }
    {
        /* the dot may repeat in the symbol, '-' and '_' are fine */
        char *doc = plan(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                             "\"fns\":[\"my-plug_2.sym.v-1_x\"]}");
        em_lineage_free(decode_ok(doc));
        free(doc);
    }
    static const char *const bad_b64[] = {"AQ=", "A*==", "AR==", "AQ==AQ==",
                                          "=AAA", "AQ\\n=", "AB=C"};
    for (size_t i = 0; i < sizeof bad_b64 / sizeof bad_b64[0]; i++) {
        char ds[256];
        snprintf(ds, sizeof ds,
                 SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                     "\"fns\":[{\"name\":\"a.b\",\"arg\":\"%s\"}]}",
                 bad_b64[i]);
        expect_plan_error(ds, "dataset 1 (map): fns[0].arg is not valid "
                              "base64");
    }
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"range\",\"partitions\":2,\"bounds\":\"@@@@\"}}",
                      "partitioner \"bounds\" is not valid base64");

    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"storage\":\"MEMORY\"}",
                      "dataset 1 (map): unknown storage level 'MEMORY'");
    expect_plan_error(SRC ",{\"id\":4294967296,\"op\":\"map\","
                          "\"parents\":[0],\"fns\":[\"a.b\"],"
                          "\"storage\":\"MEMORY_ONLY\"}",
                      "dataset 4294967296 (map): a persisted dataset's id "
                      "must be below 2^32 (it is 4294967296)");

    /* unknown keys, everywhere */
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fn\":[\"a.b\"]}",
                      "dataset 1 (map): unknown key 'fn'");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[{\"id\":0,"
                          "\"kind\":\"narrow\"}],\"fns\":[\"a.b\"]}",
                      "dataset 1 (map): parents[0]: unknown key 'kind'");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[{\"name\":\"a.b\",\"args\":\"\"}]}",
                      "dataset 1 (map): fns[0]: unknown key 'args'");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"hash\",\"partitions\":2,\"bounds\":\"\"}}",
                      "unknown key 'bounds' in a hash partitioner");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"modulo\",\"partitions\":2}}",
                      "unknown partitioner kind 'modulo'");

    /* wrong JSON types */
    expect_plan_error("{\"id\":\"0\",\"op\":\"range\",\"partitions\":1}",
                      "datasets[0]: \"id\" must be an integer, got a string");
    expect_plan_error("{\"id\":1.5,\"op\":\"range\",\"partitions\":1}",
                      "\"id\" must be an integer, got a fractional number");
    expect_plan_error("{\"id\":1.0,\"op\":\"range\",\"partitions\":1}",
                      "\"id\" must be an integer, got a fractional number");
    expect_plan_error("{\"id\":-1,\"op\":\"range\",\"partitions\":1}",
                      "\"id\" must be from 0 to 9007199254740992, got -1");
    expect_plan_error("{\"id\":9007199254740993,\"op\":\"range\","
                      "\"partitions\":1}",
                      "got 9007199254740993");
    expect_plan_error("{\"id\":0,\"op\":7,\"partitions\":1}",
                      "dataset 0: \"op\" must be a string, got an integer");
    expect_plan_error("{\"id\":0,\"op\":\"range\",\"partitions\":\"1\"}",
                      "dataset 0 (range): \"partitions\" must be an integer, "
                      "got a string");
    expect_plan_error("{\"id\":0,\"op\":\"range\",\"partitions\":-2}",
                      "\"partitions\" must be from 0 to 16777216, got -2");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":0,"
                          "\"fns\":[\"a.b\"]}",
                      "\"parents\" must be an array, got an integer");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[\"0\"],"
                          "\"fns\":[\"a.b\"]}",
                      "parents[0] must be a dataset id or an object");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[-1],"
                          "\"fns\":[\"a.b\"]}",
                      "a parent id must be from 0 to");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0.5],"
                          "\"fns\":[\"a.b\"]}",
                      "parents[0] must be a dataset id or an object with "
                      "\"id\" and \"dep\", got a fractional number");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[{\"dep\":"
                          "\"narrow\"}],\"fns\":[\"a.b\"]}",
                      "parents[0] has no \"id\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[{\"id\":"
                          "true}],\"fns\":[\"a.b\"]}",
                      "a parent id must be an integer, got a boolean");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":\"a.b\"}",
                      "\"fns\" must be an array, got a string");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[3]}",
                      "fns[0] must be a function name or an object");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[{\"arg\":\"\"}]}",
                      "fns[0] has no \"name\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[{\"name\":\"a.b\",\"arg\":5}]}",
                      "fns[0].arg must be a base64 string, got an integer");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":[\"hash\"]}",
                      "\"partitioner\" must be an object, got an array");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":1,"
                          "\"partitions\":2}}",
                      "partitioner \"kind\" must be a string");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"hash\"}}",
                      "the partitioner has no \"partitions\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"range\",\"partitions\":2,\"descending\":1}}",
                      "partitioner \"descending\" must be true or false");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"partition_by\","
                          "\"parents\":[0],\"partitioner\":{\"kind\":"
                          "\"function\",\"partitions\":2}}",
                      "a function partitioner needs \"fn\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"storage\":1}",
                      "\"storage\" must be a string, got an integer");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"checkpoint\":\"yes\"}",
                      "\"checkpoint\" must be true or false, got a string");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"determinism\":\"random\"}",
                      "\"determinism\" must be \"deterministic\"");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"determinism\":3}",
                      "\"determinism\" must be a string, got an integer");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"name\":null}",
                      "\"name\" must be a string, got null");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                          "\"fns\":[\"a.b\"],\"args\":[1]}",
                      "\"args\" must be an object, got an array");
    expect_plan_error(SRC ",{\"id\":1,\"op\":\"map_partitions\","
                          "\"parents\":[0],\"fns\":[\"a.b\"],\"args\":"
                          "{\"preserves_partitioning\":\"yes\"}}",
                      "args \"preserves_partitioning\" must be true or "
                      "false");

    /* "args" nesting: 64 levels pass, 65 do not */
    for (int levels = 64; levels <= 65; levels++) {
        char ds[1024] = SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                            "\"fns\":[\"a.b\"],\"args\":";
        for (int i = 0; i < levels; i++)
            strcat(ds, i % 2 ? "[" : "{\"k\":");
        strcat(ds, "1");
        for (int i = levels; i-- > 0;)
            strcat(ds, i % 2 ? "]" : "}");
        strcat(ds, "}");
        char *doc = plan(ds);
        if (levels == 64) {
            em_lineage_free(decode_ok(doc));
        } else {
            expect_error_at(doc, strlen(doc), NULL, EMBER_EINVAL,
                            "dataset 1 (map): \"args\" is nested more than "
                            "64 deep",
                            __LINE__);
        }
        free(doc);
    }

    /* long strings */
    {
        size_t n = EM_LINEAGE_MAX_STRING + 1;
        char *big = malloc(n + 256);
        assert_non_null(big);
        strcpy(big, SRC ",{\"id\":1,\"op\":\"map\",\"parents\":[0],"
                        "\"fns\":[\"a.b\"],\"name\":\"");
        size_t at = strlen(big);
        memset(big + at, 'x', n);
        strcpy(big + at + n, "\"}");
        expect_plan_error(big, "\"name\" is 65537 bytes, more than the "
                               "65536 allowed");
        free(big);
    }
}

/* checkpoint_read (a checkpointed dataset read back): an optional
 * partitioner that children may be co-partitioned with, the replaced
 * dataset's fingerprint, and their errors. */
static void test_checkpoint_read(void **state)
{
    (void)state;
    /* the fingerprint of a reduce_by_key, then the same dataset as a
     * checkpoint read that claims it */
    char *p = plan(
        SRC ",{\"id\":1,\"op\":\"reduce_by_key\",\"parents\":[0],"
        "\"fns\":[\"std.sum\"],\"partitioner\":{\"kind\":\"hash\","
        "\"partitions\":3}},{\"id\":2,\"op\":\"reduce_by_key\","
        "\"parents\":[1],\"fns\":[\"std.sum\"],\"partitioner\":"
        "{\"kind\":\"hash\",\"partitions\":3}}");
    em_lineage *l = decode_ok(p);
    free(p);
    char fp[17], fp2[17], doc[600];
    snprintf(fp, sizeof fp, "%016" PRIx64, by_id(l, 1)->fingerprint);
    snprintf(fp2, sizeof fp2, "%016" PRIx64, by_id(l, 2)->fingerprint);
    em_lineage_free(l);
    snprintf(doc, sizeof doc,
             "{\"ember_plan\":1,\"datasets\":[{\"id\":1,\"op\":"
             "\"checkpoint_read\",\"partitions\":3,\"partitioner\":"
             "{\"kind\":\"hash\",\"partitions\":3},\"args\":{\"dir\":"
             "\"/c/rdd-1\",\"fingerprint\":\"%s\"}},{\"id\":2,\"op\":"
             "\"reduce_by_key\",\"parents\":[1],\"fns\":[\"std.sum\"],"
             "\"partitioner\":{\"kind\":\"hash\",\"partitions\":3}}]}",
             fp);
    l = decode_ok(doc);
    const em_node *c = by_id(l, 1), *r = by_id(l, 2);
    assert_int_equal(c->ndeps, 0);
    assert_int_equal(c->partitions, 3);
    assert_non_null(em_node_output_partitioner(c));
    /* co-partitioned: no shuffle, and the child is the same dataset */
    assert_int_equal(r->deps[0].kind, EM_DEP_NARROW);
    char got[17], got2[17];
    snprintf(got, sizeof got, "%016" PRIx64, c->fingerprint);
    snprintf(got2, sizeof got2, "%016" PRIx64, r->fingerprint);
    assert_string_equal(got, fp);
    assert_string_equal(got2, fp2);
    char *desc = NULL;
    ember_error err;
    assert_int_equal(em_lineage_debug_string(l, 1, &desc, &err), EMBER_OK);
    assert_string_equal(desc, "(3) reduce_by_key [2] []\n"
                              " |  checkpoint_read [1] [] checkpoint "
                              "/c/rdd-1");
    free(desc);
    em_lineage_free(l);
    check_round_trip(doc);

    /* without a partitioner: none claimed, a local one described so */
    p = plan("{\"id\":4,\"op\":\"checkpoint_read\",\"partitions\":2,"
             "\"storage\":\"MEMORY_AND_DISK\",\"args\":{\"local\":true}}");
    l = decode_ok(p);
    free(p);
    assert_null(em_node_output_partitioner(&l->nodes[0]));
    assert_int_equal(em_lineage_debug_string(l, 0, &desc, &err), EMBER_OK);
    assert_string_equal(desc, "(2) checkpoint_read [4] [MEMORY_AND_DISK] "
                              "[local checkpoint]");
    free(desc);
    em_lineage_free(l);

    expect_plan_error("{\"id\":1,\"op\":\"checkpoint_read\"}",
                      "\"partitions\" is required for a checkpoint_read");
    expect_plan_error("{\"id\":1,\"op\":\"checkpoint_read\",\"partitions\""
                      ":2,\"partitioner\":{\"kind\":\"hash\",\"partitions\""
                      ":3}}",
                      "plan: dataset 1 (checkpoint_read): \"partitions\" is 2 "
                      "but the partitioner has 3");
    expect_plan_error("{\"id\":1,\"op\":\"checkpoint_read\",\"partitions\""
                      ":2,\"args\":{\"fingerprint\":\"ABC\"}}",
                      "plan: dataset 1 (checkpoint_read): args "
                      "\"fingerprint\" must be 16 lowercase hex digits");
    expect_plan_error("{\"id\":1,\"op\":\"checkpoint_read\",\"partitions\""
                      ":2,\"parents\":[0]}," SRC, "checkpoint_read");
}

/* A plan's "accumulators": decoded sorted by id, encoded canonically,
 * every mistake named by entry and field. */
static void test_accumulators(void **state)
{
    (void)state;
    static const char good[] =
        "{\"ember_plan\":1,\"datasets\":[" SRC "],\"accumulators\":["
        "{\"id\":7,\"kind\":\"testfn.product\",\"name\":\"p\"},"
        "{\"id\":2,\"kind\":\"int64\",\"name\":null},"
        "{\"id\":3,\"kind\":\"double\"}]}";
    em_lineage *l = decode_ok(good);
    assert_int_equal(l->naccums, 3);
    assert_true(l->accums[0].id == 2 && l->accums[0].name == NULL);
    assert_string_equal(l->accums[1].kind, "double");
    assert_string_equal(l->accums[2].kind, "testfn.product");
    assert_string_equal(l->accums[2].name, "p");
    char *enc;
    size_t n;
    encode_ok(l, &enc, &n);
    assert_non_null(strstr(enc, ",\"accumulators\":[{\"id\":2,\"kind\":"
                                "\"int64\"},{\"id\":3,\"kind\":\"double\"},"
                                "{\"id\":7,\"kind\":\"testfn.product\","
                                "\"name\":\"p\"}]}"));
    free(enc);
    em_lineage_free(l);
    check_round_trip(good);

#define ACC(body) "{\"ember_plan\":1,\"datasets\":[" SRC "],\"accumulators\":" body "}"
    expect_error(ACC("{}"), EMBER_EINVAL,
                 "plan: \"accumulators\" must be an array, got an object");
    expect_error(ACC("[{\"id\":1,\"kind\":\"float\"}]"), EMBER_EINVAL,
                 "plan: accumulators[0].kind: unknown kind 'float' (int64, "
                 "double, or the PLUGIN.FUNCTION of a REDUCE function)");
    expect_error(ACC("[{\"id\":1,\"kind\":\"int64\"},{\"id\":1,\"kind\":"
                     "\"double\"}]"),
                 EMBER_EINVAL, "plan: accumulators: id 1 is declared twice");
    expect_error(ACC("[{\"kind\":\"int64\"}]"), EMBER_EINVAL,
                 "plan: accumulators[0]: missing \"id\"");
    expect_error(ACC("[{\"id\":0,\"kind\":\"int64\"}]"), EMBER_EINVAL,
                 "plan: accumulators[0]: id must be from 1 to");
    expect_error(ACC("[{\"id\":1,\"kind\":7}]"), EMBER_EINVAL,
                 "plan: accumulators[0].kind must be a string");
    expect_error(ACC("[{\"id\":1,\"kind\":\"int64\",\"nmae\":\"x\"}]"),
                 EMBER_EINVAL, "plan: accumulators[0]: unknown key 'nmae'");
    expect_error(ACC("[{\"id\":1,\"kind\":\"int64\",\"name\":\"\"}]"),
                 EMBER_EINVAL, "plan: accumulators[0].name must be a string");
    expect_error(ACC("[{\"id\":1,\"kind\":\"a.\"}]"), EMBER_EINVAL,
                 "plan: accumulators[0].kind: kind 'a.' is not a function "
                 "name");
    em_fn_resolver r = {known_fn, NULL};
    static const char unknown[] = ACC("[{\"id\":1,\"kind\":\"foo.bar\"}]");
    expect_error_at(unknown, strlen(unknown), &r, EMBER_EINVAL,
                    "plan: accumulators[0].kind: unknown function 'foo.bar'",
                    __LINE__);
#undef ACC
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *b64;
    } v[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
             {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ember_buf b = ember_buf_heap();
        size_t n = strlen(v[i].raw);
        assert_int_equal(em_base64_encode(&b, (const uint8_t *)v[i].raw, n),
                         EMBER_OK);
        assert_int_equal(b.len, strlen(v[i].b64));
        assert_int_equal(em_base64_encoded_len(n), b.len);
        assert_true(b.len == 0 || memcmp(b.data, v[i].b64, b.len) == 0);
        ember_buf_release(&b);
        uint8_t *out;
        size_t len, bad;
        assert_int_equal(em_base64_decode(&out, &len, v[i].b64,
                                          strlen(v[i].b64), 100, &bad),
                         EMBER_OK);
        assert_int_equal(len, n);
        assert_true(n == 0 || memcmp(out, v[i].raw, n) == 0);
        free(out);
    }
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_base64_encode(&b, all, 256), EMBER_OK);
    uint8_t *out;
    size_t len, bad = 0;
    assert_int_equal(em_base64_decode(&out, &len, (const char *)b.data, b.len,
                                      256, &bad),
                     EMBER_OK);
    assert_int_equal(len, 256);
    assert_memory_equal(out, all, 256);
    free(out);
    assert_int_equal(em_base64_decode(&out, &len, (const char *)b.data, b.len,
                                      255, &bad),
                     EMBER_ENOSPC);
    assert_null(out);
    ember_buf_release(&b);
    assert_int_equal(em_base64_decode(&out, &len, "Zm9v!mFy", 8, 100, &bad),
                     EMBER_EINVAL);
    assert_int_equal(bad, 4);
    assert_int_equal(em_base64_decode(&out, &len, "Zh==", 4, 100, &bad),
                     EMBER_EINVAL);
    assert_int_equal(bad, 1);
    assert_int_equal(em_base64_decode(&out, &len, "Zm9", 3, 100, &bad),
                     EMBER_EINVAL);
    assert_int_equal(bad, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_any_order),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_unions_of_big_partitioners),
        cmocka_unit_test(test_join_of_big_partitioners),
        cmocka_unit_test(test_decode_datasets),
        cmocka_unit_test(test_resolver),
        cmocka_unit_test(test_document_errors),
        cmocka_unit_test(test_graph_errors),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_checkpoint_read),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_accumulators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
