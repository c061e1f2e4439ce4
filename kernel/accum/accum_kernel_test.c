/*
 * Unit tests of accumulators below the engine: the wire format of
 * updates (runtime/accum_wire.h), the kernel's declarations and merges
 * (accum/accum.h) for int64 and double kinds, and one task attempt's
 * adds on an executor (runtime/accum_task.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accum/accum.h"
#include "ember/record.h"
#include "runtime/accum_task.h"
#include "runtime/accum_wire.h"

static void test_wire_round_trip(void **state)
{
    (void)state;
    uint8_t rec[32];
    ember_buf rb = ember_buf_fixed(rec, sizeof rec);
    assert_int_equal(ember_rec_put_string(&rb, "ab", 2), EMBER_OK);
    em_accum_value in[3] = {
        {.id = 7, .kind = EM_ACCUM_INT64, .i64 = INT64_MIN},
        {.id = 2, .kind = EM_ACCUM_DOUBLE, .f64 = -0.5},
        {.id = 9007199254740992ull, .kind = EM_ACCUM_USER, .rec = rb.data,
         .rec_len = rb.len},
    };
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_accum_wire_encode(&b, in, 3), EMBER_OK);
    em_accum_value *out = NULL;
    uint32_t n = 0;
    ember_error err = {0};
    assert_int_equal(em_accum_wire_decode(b.data, b.len, &out, &n, &err),
                     EMBER_OK);
    assert_int_equal(n, 3);
    assert_true(out[0].id == 7 && out[0].kind == EM_ACCUM_INT64 &&
                out[0].i64 == INT64_MIN);
    assert_true(out[1].id == 2 && out[1].f64 == -0.5);
    assert_true(out[2].id == 9007199254740992ull &&
                out[2].rec_len == rb.len);
    assert_memory_equal(out[2].rec, rb.data, rb.len);
    free(out);
    /* every truncation is refused with a message, never read past */
    for (size_t cut = 0; cut < b.len; cut++) {
        out = NULL;
        err.msg[0] = '\0';
        assert_int_equal(em_accum_wire_decode(b.data, cut, &out, &n, &err),
                         EMBER_EINVAL);
        assert_null(out);
        assert_non_null(strstr(err.msg, "accumulator updates"));
    }
    ember_buf_release(&b);
}

static void test_wire_refusals(void **state)
{
    (void)state;
    em_accum_value *out = NULL;
    uint32_t n = 0;
    ember_error err = {0};
    /* version 2 */
    static const uint8_t v2[] = {2, 0};
    assert_int_equal(em_accum_wire_decode(v2, sizeof v2, &out, &n, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator updates: version 2, expected 1");
    /* unknown kind 4 for id 5 */
    static const uint8_t k4[] = {1, 1, 5, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(em_accum_wire_decode(k4, sizeof k4, &out, &n, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator updates: entry 0 (id 5): "
                                 "unknown kind 4 (offset 3)");
    /* the same id twice */
    static const uint8_t dup[] = {1, 2, 5, 1, 1, 0, 0, 0, 0, 0, 0, 0,
                                  5, 1, 2, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(em_accum_wire_decode(dup, sizeof dup, &out, &n, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator updates: id 5 appears twice");
    /* a user value that is not a record (tag 0xFF) */
    static const uint8_t bad[] = {1, 1, 3, 3, 1, 0xFF};
    assert_int_equal(em_accum_wire_decode(bad, sizeof bad, &out, &n, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "not a valid record"));
    /* trailing bytes */
    static const uint8_t trail[] = {1, 0, 9};
    assert_int_equal(em_accum_wire_decode(trail, sizeof trail, &out, &n,
                                          &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg,
                        "accumulator updates: 1 bytes after the last entry");
    /* id 0 */
    static const uint8_t zero[] = {1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(em_accum_wire_decode(zero, sizeof zero, &out, &n, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg,
                        "accumulator updates: entry 0: bad id (offset 2)");
    assert_null(out);
}

/* Encodes one update of id into b (reset first). */
static void update(ember_buf *b, uint64_t id, em_accum_kind k, int64_t i,
                   double d)
{
    em_accum_value v = {.id = id, .kind = k, .i64 = i, .f64 = d};
    b->len = 0;
    assert_int_equal(em_accum_wire_encode(b, &v, 1), EMBER_OK);
}

static void test_kernel_merges(void **state)
{
    (void)state;
    em_accums *a = NULL;
    ember_error err = {0};
    assert_int_equal(em_accums_create(&a, NULL, &err), EMBER_OK);
    char k1[] = "int64", k2[] = "double", name[] = "records";
    em_accum_decl d[2] = {{1, k1, name}, {2, k2, NULL}};
    assert_int_equal(em_accums_declare(a, d, 2, &err), EMBER_OK);
    assert_int_equal(em_accums_count(a), 2);
    /* declaring again with the same kinds is fine; another kind is not */
    assert_int_equal(em_accums_declare(a, d, 2, &err), EMBER_OK);
    em_accum_decl other = {2, k1, NULL};
    assert_int_equal(em_accums_declare(a, &other, 1, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator 2 is double in an earlier job "
                                 "of this application, int64 here");
    /* a user kind needs its function loaded */
    char k3[] = "testfn.product";
    em_accum_decl user = {3, k3, NULL};
    assert_int_equal(em_accums_declare(a, &user, 1, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator 3: its merge function "
                                 "testfn.product is not loaded");
    assert_int_equal(em_accums_count(a), 2);

    ember_buf b = ember_buf_heap();
    update(&b, 1, EM_ACCUM_INT64, INT64_MAX, 0);
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_OK);
    update(&b, 1, EM_ACCUM_INT64, 2, 0); /* wraps, as Spark's Long */
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_OK);
    update(&b, 2, EM_ACCUM_DOUBLE, 0, 1.25);
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_OK);
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_OK);
    /* refused: an undeclared id, the wrong kind, garbage */
    update(&b, 4, EM_ACCUM_INT64, 1, 0);
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator 4 is not declared by this "
                                 "application");
    update(&b, 2, EM_ACCUM_INT64, 1, 0);
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator 2 is double, the update is of "
                                 "another kind");
    /* a refused update does not keep the others of its blob from merging:
     * 1 and 2 still add their parts around the two refused ones */
    em_accum_value mix[4] = {{.id = 1, .kind = EM_ACCUM_INT64, .i64 = 10},
                             {.id = 4, .kind = EM_ACCUM_INT64, .i64 = 1},
                             {.id = 2, .kind = EM_ACCUM_DOUBLE, .f64 = 0.5},
                             {.id = 5, .kind = EM_ACCUM_DOUBLE, .f64 = 1}};
    b.len = 0;
    assert_int_equal(em_accum_wire_encode(&b, mix, 4), EMBER_OK);
    assert_int_equal(em_accums_merge(a, b.data, b.len, &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator 4 is not declared by this "
                                 "application");
    static const uint8_t junk[] = {9, 9, 9};
    assert_int_equal(em_accums_merge(a, junk, sizeof junk, &err),
                     EMBER_EINVAL);

    b.len = 0;
    assert_int_equal(em_accums_values(a, &b), EMBER_OK);
    em_accum_value *v = NULL;
    uint32_t n = 0;
    assert_int_equal(em_accum_wire_decode(b.data, b.len, &v, &n, &err),
                     EMBER_OK);
    assert_int_equal(n, 2);
    assert_true(v[0].id == 1 && v[0].i64 == INT64_MIN + 11);
    assert_true(v[1].id == 2 && v[1].f64 == 3.0);
    free(v);
    ember_buf_release(&b);
    em_accums_destroy(a);
    em_accums_destroy(NULL);
}

/* A task attempt's adds: summed into the FINISHED blob; each failed add
 * says why it failed, and the attempt fails with the first failure. */
static void test_task_adds(void **state)
{
    (void)state;
    char k1[] = "int64", k2[] = "double";
    em_accum_decl d[2] = {{1, k1, NULL}, {2, k2, NULL}};
    em_accum_defs *defs = NULL;
    ember_error err = {0};
    assert_int_equal(em_accum_defs_create(&defs, d, 2, NULL, &err),
                     EMBER_OK);
    assert_int_equal(em_accum_add_i64(1, 1), EMBER_EUNSUPPORTED);

    ember_buf blob = ember_buf_heap();
    int failed = -1;
    assert_int_equal(em_accum_task_begin(defs, &err), EMBER_OK);
    assert_int_equal(em_accum_add_i64(1, 2), EMBER_OK);
    assert_int_equal(em_accum_add_i64(1, 3), EMBER_OK);
    assert_int_equal(em_accum_add_double(2, 0.5), EMBER_OK);
    assert_int_equal(em_accum_task_end(1, &blob, &failed, &err), EMBER_OK);
    assert_int_equal(failed, 0);
    em_accum_value *v = NULL;
    uint32_t n = 0;
    assert_int_equal(em_accum_wire_decode(blob.data, blob.len, &v, &n, &err),
                     EMBER_OK);
    assert_int_equal(n, 2);
    assert_true(v[0].id == 1 && v[0].i64 == 5);
    assert_true(v[1].id == 2 && v[1].f64 == 0.5);
    free(v);

    ember_buf rec = ember_buf_heap();
    assert_int_equal(ember_rec_put_int(&rec, 7), EMBER_OK);
    blob.len = 0;
    assert_int_equal(em_accum_task_begin(defs, &err), EMBER_OK);
    assert_int_equal(em_accum_add(9, rec.data, rec.len, &err),
                     EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, "accumulator 9 is not declared"));
    /* a later failure is reported as itself, not as the first one */
    assert_int_equal(em_accum_add(1, rec.data, rec.len, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "accumulator 1 is an int64, not a "
                                 "user-defined");
    assert_int_equal(em_accum_add_double(1, 1.0), EMBER_EINVAL);
    assert_int_equal(em_accum_add_i64(1, 4), EMBER_OK);
    memset(&err, 0, sizeof err);
    assert_int_equal(em_accum_task_end(1, &blob, &failed, &err), EMBER_OK);
    assert_int_equal(failed, 1);
    assert_non_null(strstr(err.msg, "accumulator 9 is not declared"));
    assert_int_equal(blob.len, 0);

    ember_buf_release(&rec);
    ember_buf_release(&blob);
    em_accum_defs_free(defs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_wire_refusals),
        cmocka_unit_test(test_kernel_merges),
        cmocka_unit_test(test_task_adds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
