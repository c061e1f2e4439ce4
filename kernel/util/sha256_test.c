/* Unit tests for util/sha256.c against the FIPS 180-2 example vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/sha256.h"

static void check(const char *text, const char *want)
{
    char hex[EM_SHA256_HEX_LEN + 1];
    em_sha256_hex(text, strlen(text), hex);
    assert_string_equal(hex, want);
}

static void fips_vectors(void **state)
{
    (void)state;
    check("abc",
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("",
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* the 448-bit message: padding spills into a second block */
    check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* One million 'a' fed in uneven pieces gives the FIPS digest: the
 * partial-block bookkeeping of update is right. */
static void million_a_in_pieces(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 63, 64, 65, 1000, 7};
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    em_sha256 c;
    em_sha256_init(&c);
    size_t at = 0, k = 0;
    while (at < 1000000) {
        size_t n = steps[k++ % 6];
        if (n > 1000000 - at)
            n = 1000000 - at;
        em_sha256_update(&c, a + at, n);
        at += n;
    }
    uint8_t d[EM_SHA256_LEN];
    char hex[EM_SHA256_HEX_LEN + 1];
    em_sha256_final(&c, d);
    em_sha256_to_hex(d, hex);
    assert_string_equal(
        hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void file_digest(void **state)
{
    (void)state;
    char path[] = "/tmp/ember-sha256-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    char hex[EM_SHA256_HEX_LEN + 1];
    ember_error err = {0};
    assert_int_equal(em_sha256_file_hex(path, hex, &err), EMBER_OK);
    assert_string_equal(
        hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    unlink(path);
    assert_int_equal(em_sha256_file_hex(path, hex, &err), EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, path));
}

static void hex_form(void **state)
{
    (void)state;
    assert_true(em_sha256_is_hex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(em_sha256_is_hex(
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(em_sha256_is_hex("abc"));
    assert_false(em_sha256_is_hex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
    assert_false(em_sha256_is_hex(
        "../816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_false(em_sha256_is_hex(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fips_vectors),
        cmocka_unit_test(million_a_in_pieces),
        cmocka_unit_test(file_digest),
        cmocka_unit_test(hex_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
