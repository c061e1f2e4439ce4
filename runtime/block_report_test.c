/*
 * Unit tests of the block report (runtime/block_report.h): round trips of
 * every kind of entry, the last note about a block replacing earlier ones,
 * what a put result turns into, the exact bytes of a small report, and
 * the decoder's refusals (each with the field and offset it names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/block_report.h"

static void test_round_trip(void **state)
{
    (void)state;
    em_block_report r = {0};
    em_block_entry a = {1, 7, 0, EM_BLOCK_STORED, EM_BLOCK_MEMORY, 4096};
    em_block_entry b = {1, 7, 3, EM_BLOCK_STORED, EM_BLOCK_DISK,
                        (uint64_t)1 << 40};
    em_block_entry c = {UINT64_MAX, UINT64_MAX, UINT32_MAX, EM_BLOCK_STORED,
                        EM_BLOCK_OFF_HEAP, UINT64_MAX};
    em_block_entry d = {2, 9, 1, EM_BLOCK_DROPPED, EM_BLOCK_NOWHERE, 0};
    em_block_report_add(&r, &a);
    em_block_report_add(&r, &b);
    em_block_report_add(&r, &c);
    em_block_report_add(&r, &d);
    assert_int_equal(r.n, 4);
    ember_buf out = ember_buf_heap();
    assert_int_equal(em_block_report_encode(&r, &out), EMBER_OK);
    em_block_report back;
    ember_error err = {0};
    assert_int_equal(em_block_report_decode(out.data, out.len, &back, &err),
                     EMBER_OK);
    assert_int_equal(back.n, 4);
    assert_memory_equal(back.e, r.e, 4 * sizeof *r.e);
    em_block_report_release(&back);
    em_block_report_release(&r);
    assert_int_equal(r.n, 0);
    assert_null(r.e);
    ember_buf_release(&out);
}

static void test_exact_bytes(void **state)
{
    (void)state;
    em_block_report r = {0};
    em_block_entry a = {1, 300, 2, EM_BLOCK_STORED, EM_BLOCK_DISK, 5};
    em_block_report_add(&r, &a);
    ember_buf out = ember_buf_heap();
    assert_int_equal(em_block_report_encode(&r, &out), EMBER_OK);
    static const uint8_t want[] = {'E', 'M', 'B', 'R', 1, 1,
                                   1, 0xac, 0x02, 2, 1, 2, 5};
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);
    /* an empty report is a header and a zero count */
    em_block_report none = {0};
    out.len = 0;
    assert_int_equal(em_block_report_encode(&none, &out), EMBER_OK);
    assert_int_equal(out.len, 6);
    em_block_report back;
    assert_int_equal(em_block_report_decode(out.data, out.len, &back, NULL),
                     EMBER_OK);
    assert_int_equal(back.n, 0);
    em_block_report_release(&back);
    em_block_report_release(&r);
    ember_buf_release(&out);
}

static void test_last_word_wins(void **state)
{
    (void)state;
    em_block_report r = {0};
    em_block_entry a = {1, 7, 0, EM_BLOCK_STORED, EM_BLOCK_MEMORY, 10};
    em_block_entry other = {1, 7, 1, EM_BLOCK_STORED, EM_BLOCK_MEMORY, 20};
    em_block_entry gone = {1, 7, 0, EM_BLOCK_DROPPED, EM_BLOCK_NOWHERE, 0};
    em_block_report_add(&r, &a);
    em_block_report_add(&r, &other);
    em_block_report_add(&r, &gone);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.e[0].event, EM_BLOCK_DROPPED);
    assert_int_equal(r.e[0].partition, 0);
    assert_int_equal(r.e[1].bytes, 20);
    /* another application's block of the same dataset id is another block */
    em_block_entry app2 = {2, 7, 0, EM_BLOCK_STORED, EM_BLOCK_DISK, 30};
    em_block_report_add(&r, &app2);
    assert_int_equal(r.n, 3);
    em_block_report_release(&r);
    em_block_report_release(NULL);
}

static void test_note_put(void **state)
{
    (void)state;
    em_block_report r = {0};
    em_block_moved ev[2] = {
        {(uint64_t)3 << 32 | 5, 1, EM_BLOCK_NOWHERE, 0},
        {(uint64_t)4 << 32 | 6, 2, EM_BLOCK_DISK, 77},
    };
    em_block_put_result res = {.where = EM_BLOCK_MEMORY,
                               .stored_bytes = 123,
                               .n_evicted = 2,
                               .evicted = ev};
    em_block_report_note_put(&r, 3, 8, 0, &res);
    assert_int_equal(r.n, 3);
    assert_true(r.e[0].app == 3 && r.e[0].dataset == 5 &&
                r.e[0].partition == 1);
    assert_int_equal(r.e[0].event, EM_BLOCK_DROPPED);
    assert_int_equal(r.e[0].tier, EM_BLOCK_NOWHERE);
    assert_true(r.e[1].app == 4 && r.e[1].dataset == 6 &&
                r.e[1].partition == 2);
    assert_int_equal(r.e[1].event, EM_BLOCK_STORED);
    assert_int_equal(r.e[1].tier, EM_BLOCK_DISK);
    assert_int_equal(r.e[1].bytes, 77);
    assert_true(r.e[2].app == 3 && r.e[2].dataset == 8 &&
                r.e[2].partition == 0);
    assert_int_equal(r.e[2].tier, EM_BLOCK_MEMORY);
    assert_int_equal(r.e[2].bytes, 123);
    /* a block that went nowhere (MEMORY_ONLY without room) is not news */
    em_block_put_result none = {.where = EM_BLOCK_NOWHERE};
    em_block_report_note_put(&r, 3, 9, 0, &none);
    assert_int_equal(r.n, 3);
    em_block_report_note_put(NULL, 3, 9, 0, &res); /* no report: nothing */
    em_block_report_release(&r);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    static const em_block_entry bad[] = {
        {1, 1, 0, 0, EM_BLOCK_MEMORY, 1},                  /* no event */
        {1, 1, 0, EM_BLOCK_STORED, EM_BLOCK_NOWHERE, 1},   /* stored nowhere */
        {1, 1, 0, EM_BLOCK_STORED, 4, 1},                  /* no such tier */
        {1, 1, 0, EM_BLOCK_DROPPED, EM_BLOCK_DISK, 0},     /* dropped, tier */
        {1, 1, 0, EM_BLOCK_DROPPED, EM_BLOCK_NOWHERE, 9},  /* dropped, bytes */
    };
    ember_buf out = ember_buf_heap();
    assert_int_equal(ember_buf_append(&out, "xy", 2), EMBER_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        em_block_report r = {0};
        em_block_entry ok = {1, 2, 3, EM_BLOCK_STORED, EM_BLOCK_DISK, 4};
        em_block_report_add(&r, &ok);
        em_block_report_add(&r, &bad[i]);
        assert_int_equal(em_block_report_encode(&r, &out), EMBER_EINVAL);
        assert_int_equal(out.len, 2); /* as it was */
        em_block_report_release(&r);
    }
    ember_buf_release(&out);
}

/* Decodes d[0..n), which must be refused with code, err.msg holding
 * want. */
static void refused(const uint8_t *d, size_t n, ember_status code,
                    const char *want)
{
    em_block_report r;
    ember_error err = {0};
    assert_int_equal(em_block_report_decode(d, n, &r, &err), code);
    assert_int_equal(r.n, 0);
    assert_null(r.e);
    if (!strstr(err.msg, want))
        fail_msg("wanted \"%s\" in \"%s\"", want, err.msg);
}

static void test_decode_refuses(void **state)
{
    (void)state;
    static const uint8_t magic[] = {'E', 'M', 'S', 'G', 1, 0};
    refused(magic, sizeof magic, EMBER_EINVAL, "not a block report");
    refused(NULL, 0, EMBER_EINVAL, "not a block report (0 bytes");
    static const uint8_t version[] = {'E', 'M', 'B', 'R', 2, 0};
    refused(version, sizeof version, EMBER_EVERSION, "version 2");
    static const uint8_t no_count[] = {'E', 'M', 'B', 'R', 1};
    refused(no_count, sizeof no_count, EMBER_EINVAL,
            "field 'count' runs past the end of the report (offset 5)");
    static const uint8_t too_many[] = {'E', 'M', 'B', 'R', 1, 2,
                                       1, 1, 0, 1, 1, 5};
    refused(too_many, sizeof too_many, EMBER_EINVAL,
            "field 'count' says more entries than the report has bytes");
    static const uint8_t huge[] = {'E', 'M', 'B', 'R', 1, 0x81, 0x80, 0x80,
                                   0x80, 0x01};
    refused(huge, sizeof huge, EMBER_EINVAL,
            "more than the most entries a report may hold");
    static const uint8_t event[] = {'E', 'M', 'B', 'R', 1, 1,
                                    1, 1, 0, 3, 1, 5};
    refused(event, sizeof event, EMBER_EINVAL,
            "entry 0: field 'event' is not 1 (stored) or 2 (dropped) "
            "(offset 9)");
    static const uint8_t tier[] = {'E', 'M', 'B', 'R', 1, 1,
                                   1, 1, 0, 1, 0, 5};
    refused(tier, sizeof tier, EMBER_EINVAL,
            "entry 0: field 'tier' of a stored block is not");
    static const uint8_t drop_tier[] = {'E', 'M', 'B', 'R', 1, 1,
                                        1, 1, 0, 2, 2, 0};
    refused(drop_tier, sizeof drop_tier, EMBER_EINVAL,
            "field 'tier' of a dropped block is not 0 (offset 10)");
    static const uint8_t drop_bytes[] = {'E', 'M', 'B', 'R', 1, 1,
                                         1, 1, 0, 2, 0, 7};
    refused(drop_bytes, sizeof drop_bytes, EMBER_EINVAL,
            "field 'bytes' of a dropped block is not 0 (offset 11)");
    static const uint8_t part[] = {'E', 'M', 'B', 'R', 1, 1, 1, 1,
                                   0x80, 0x80, 0x80, 0x80, 0x10, 1, 1, 5};
    refused(part, sizeof part, EMBER_EINVAL,
            "entry 0: field 'partition' is out of range (offset 8)");
    static const uint8_t padded[] = {'E', 'M', 'B', 'R', 1, 1,
                                     0x81, 0x00, 1, 0, 1, 1, 5};
    refused(padded, sizeof padded, EMBER_EINVAL,
            "field 'app' has an overlong varint encoding (offset 6)");
    static const uint8_t trailing[] = {'E', 'M', 'B', 'R', 1, 1,
                                       1, 1, 0, 1, 1, 5, 0};
    refused(trailing, sizeof trailing, EMBER_EINVAL,
            "1 bytes follow the last entry (offset 12)");
    static const uint8_t cut[] = {'E', 'M', 'B', 'R', 1, 1,
                                  1, 1, 0, 1, 1, 0x85, 0x80};
    refused(cut, sizeof cut, EMBER_EINVAL,
            "field 'bytes' runs past the end of the report (offset 11)");
    /* a second entry that is bad: the first, good one is not kept */
    static const uint8_t second[] = {'E', 'M', 'B', 'R', 1, 2,
                                     1, 1, 0, 1, 1, 5,
                                     1, 1, 1, 1, 9, 5};
    refused(second, sizeof second, EMBER_EINVAL, "entry 1: field 'tier'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_last_word_wins),
        cmocka_unit_test(test_note_put),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_decode_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
