/* Unit tests of the configuration store and size/duration parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ember/kernel/conf.h"

static void test_set_get_override(void **state)
{
    (void)state;
    em_conf *c;
    ember_error err;
    char buf[64];
    size_t len;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_get(c, "ember.master", buf, sizeof buf, &len),
                     EMBER_ENOTFOUND);
    assert_int_equal(em_conf_set(c, "ember.master", "local[2]", "file:3", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set(c, "ember.master", "local[4]", "--conf", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_get(c, "ember.master", buf, sizeof buf, &len),
                     EMBER_OK);
    assert_string_equal(buf, "local[4]");
    assert_int_equal(len, 8);
    /* Too small a buffer says how much is needed. */
    assert_int_equal(em_conf_get(c, "ember.master", buf, 8, &len), EMBER_ENOSPC);
    assert_int_equal(len, 8);
    assert_int_equal(em_conf_set(c, "bad key", "x", NULL, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "bad key"));
    assert_int_equal(em_conf_set(c, "", "x", NULL, &err), EMBER_EINVAL);
    em_conf_destroy(c);
    em_conf_destroy(NULL);
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t bytes;
    } good[] = {{"0", 0},           {"512", 512},
                {"1k", 1024},       {"1kb", 1024},
                {"512m", 512LL << 20}, {"2g", 2LL << 30},
                {"2G", 2LL << 30},  {" 3t ", 3LL << 40},
                {"7b", 7},          {"1p", 1LL << 50}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        assert_int_equal(em_parse_size(good[i].text, &v), EMBER_OK);
        assert_true(v == good[i].bytes);
    }
    static const char *bad[] = {"", "-1", "1x", "k", "1.5g", "1 g b",
                                "99999999999999999999", "9000000p"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        assert_int_equal(em_parse_size(bad[i], &v), EMBER_EINVAL);
    }
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"250", 250},  {"250ms", 250},    {"30s", 30000},
                {"5m", 300000}, {"5min", 300000}, {"2h", 7200000},
                {"1d", 86400000}, {"1500us", 1}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        assert_int_equal(em_parse_duration_ms(good[i].text, &v), EMBER_OK);
        assert_true(v == good[i].ms);
    }
    int64_t v;
    assert_int_equal(em_parse_duration_ms("3 weeks", &v), EMBER_EINVAL);
    assert_int_equal(em_parse_duration_ms("s", &v), EMBER_EINVAL);
}

static void test_typed_getters(void **state)
{
    (void)state;
    em_conf *c;
    ember_error err;
    int64_t v;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_get_size(c, "ember.shuffle.memory", 64, &v, &err),
                     EMBER_OK);
    assert_int_equal(v, 64);
    em_conf_set(c, "ember.shuffle.memory", "1g", NULL, &err);
    assert_int_equal(em_conf_get_size(c, "ember.shuffle.memory", 64, &v, &err),
                     EMBER_OK);
    assert_true(v == (1LL << 30));
    em_conf_set(c, "ember.network.timeout", "lots", NULL, &err);
    assert_int_equal(
        em_conf_get_duration_ms(c, "ember.network.timeout", 0, &v, &err),
        EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "ember.network.timeout"));
    assert_non_null(strstr(err.msg, "'lots'"));
    em_conf_destroy(c);
}

static void test_origin(void **state)
{
    (void)state;
    em_conf *c;
    ember_error err;
    char buf[64];
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_origin(c, "ember.master", buf, sizeof buf),
                     EMBER_ENOTFOUND);
    assert_int_equal(em_conf_set(c, "ember.master", "local", "conf/a.conf:12",
                                 &err),
                     EMBER_OK);
    assert_int_equal(em_conf_origin(c, "ember.master", buf, sizeof buf),
                     EMBER_OK);
    assert_string_equal(buf, "conf/a.conf:12");
    /* The origin follows the value that won. */
    assert_int_equal(em_conf_set(c, "ember.master", "x", "code", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_origin(c, "ember.master", buf, sizeof buf),
                     EMBER_OK);
    assert_string_equal(buf, "code");
    assert_int_equal(em_conf_origin(c, "ember.master", buf, 4), EMBER_ENOSPC);
    assert_int_equal(em_conf_set(c, "ember.app.name", "a", NULL, &err),
                     EMBER_OK);
    assert_int_equal(em_conf_origin(c, "ember.app.name", buf, sizeof buf),
                     EMBER_OK);
    assert_string_equal(buf, "unknown");
    em_conf_destroy(c);
}

static void test_merge(void **state)
{
    (void)state;
    em_conf *dst, *src;
    ember_error err;
    char buf[64];
    size_t len;
    assert_int_equal(em_conf_create(&dst), EMBER_OK);
    assert_int_equal(em_conf_create(&src), EMBER_OK);
    em_conf_set(dst, "ember.master", "local[1]", "d:1", &err);
    em_conf_set(dst, "ember.app.name", "old", "d:2", &err);
    em_conf_set(src, "ember.app.name", "new", "--conf", &err);
    em_conf_set(src, "ember.executor.memory", "2g", NULL, &err);
    /* Merging an empty conf changes nothing. */
    em_conf *empty;
    assert_int_equal(em_conf_create(&empty), EMBER_OK);
    assert_int_equal(em_conf_merge(dst, empty, &err), EMBER_OK);
    em_conf_destroy(empty);
    assert_int_equal(em_conf_merge(dst, src, &err), EMBER_OK);
    assert_int_equal(em_conf_get(dst, "ember.app.name", buf, sizeof buf, &len),
                     EMBER_OK);
    assert_string_equal(buf, "new");
    assert_int_equal(em_conf_origin(dst, "ember.app.name", buf, sizeof buf),
                     EMBER_OK);
    assert_string_equal(buf, "--conf");
    assert_int_equal(em_conf_get(dst, "ember.master", buf, sizeof buf, &len),
                     EMBER_OK);
    assert_string_equal(buf, "local[1]");
    assert_int_equal(em_conf_origin(dst, "ember.master", buf, sizeof buf),
                     EMBER_OK);
    assert_string_equal(buf, "d:1");
    assert_int_equal(
        em_conf_get(dst, "ember.executor.memory", buf, sizeof buf, &len),
        EMBER_OK);
    assert_string_equal(buf, "2g");
    assert_int_equal(
        em_conf_origin(dst, "ember.executor.memory", buf, sizeof buf),
        EMBER_OK);
    assert_string_equal(buf, "unknown");
    /* src is untouched, and merging into itself is a no-op. */
    assert_int_equal(em_conf_get(src, "ember.master", buf, sizeof buf, &len),
                     EMBER_ENOTFOUND);
    assert_int_equal(em_conf_merge(src, src, &err), EMBER_OK);
    assert_int_equal(em_conf_get(src, "ember.app.name", buf, sizeof buf, &len),
                     EMBER_OK);
    assert_string_equal(buf, "new");
    assert_int_equal(em_conf_merge(NULL, src, &err), EMBER_EINVAL);
    em_conf_destroy(src);
    em_conf_destroy(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_override),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
