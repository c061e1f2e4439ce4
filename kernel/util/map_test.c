/* Unit tests for util/map.c: the scheduler's hash maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "util/map.h"

static void u64map_put_get_del(void **state)
{
    (void)state;
    em_u64map m = {0};
    static int vals[3];
    for (uint64_t k = 1; k <= 100000; k++)
        assert_int_equal(em_u64map_put(&m, k, &vals[k % 3]), EMBER_OK);
    assert_int_equal(m.count, 100000);
    for (uint64_t k = 1; k <= 100000; k++)
        assert_ptr_equal(em_u64map_get(&m, k), &vals[k % 3]);
    assert_null(em_u64map_get(&m, 0));
    for (uint64_t k = 1; k <= 100000; k += 2)
        assert_ptr_equal(em_u64map_del(&m, k), &vals[k % 3]);
    assert_null(em_u64map_del(&m, 1));
    assert_int_equal(m.count, 50000);
    size_t pos = 0, seen = 0;
    uint64_t key;
    void *val;
    while (em_u64map_next(&m, &pos, &key, &val)) {
        assert_int_equal(key % 2, 0);
        seen++;
    }
    assert_int_equal(seen, 50000);
    /* Churn: tombstones must not make the table grow without bound. */
    for (uint64_t k = 200000; k < 400000; k++) {
        assert_int_equal(em_u64map_put(&m, k, &vals[0]), EMBER_OK);
        assert_non_null(em_u64map_del(&m, k));
    }
    assert_true(m.cap <= 262144);
    em_u64map_free(&m);
}

static void strmap_put_get_del(void **state)
{
    (void)state;
    em_strmap m = {0};
    static int a, b;
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "exec-%d", i);
        assert_int_equal(em_strmap_put(&m, key, i % 2 ? &a : &b),
                         EMBER_OK);
    }
    assert_ptr_equal(em_strmap_get(&m, "exec-7"), &a);
    assert_ptr_equal(em_strmap_getn(&m, "exec-70000", 6), &a);
    assert_null(em_strmap_get(&m, "exec-1000"));
    assert_int_equal(em_strmap_put(&m, "exec-7", &b), EMBER_OK);
    assert_ptr_equal(em_strmap_get(&m, "exec-7"), &b);
    assert_int_equal(m.count, 1000);
    assert_ptr_equal(em_strmap_del(&m, "exec-7"), &b);
    assert_null(em_strmap_get(&m, "exec-7"));
    size_t pos = 0, n = 0;
    while (em_strmap_next(&m, &pos, NULL, NULL))
        n++;
    assert_int_equal(n, 999);
    em_strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(u64map_put_get_del),
        cmocka_unit_test(strmap_put_get_del),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
