/*
 * record_test.c — unit tests of ember/record.h: exact encodings, round
 * trips, the cursor and random access, buffer failures, strict refusal of
 * malformed input, and the JSON rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/record.h"

/* ---- helpers ---------------------------------------------------------- */

/* A grow function that always fails (tests EMBER_ENOMEM). */
static ember_status grow_fail(ember_buf *b, size_t min_cap)
{
    (void)b;
    (void)min_cap;
    return EMBER_ENOMEM;
}

/* Asserts that b holds exactly the n bytes of want. */
static void assert_bytes(const ember_buf *b, const uint8_t *want, size_t n)
{
    if (b->len != n || (n && memcmp(b->data, want, n) != 0)) {
        size_t i;
        print_error("got  (%zu):", b->len);
        for (i = 0; i < b->len; i++)
            print_error(" %02X", b->data[i]);
        print_error("\nwant (%zu):", n);
        for (i = 0; i < n; i++)
            print_error(" %02X", want[i]);
        print_error("\n");
        fail();
    }
}

/* Asserts that rec[0..len) holds exactly one value and returns it. */
static ember_value only_value(const uint8_t *rec, size_t len)
{
    ember_value v = {0};
    size_t count = 99;
    assert_int_equal(ember_rec_validate(rec, len, &count), EMBER_OK);
    assert_int_equal(count, 1);
    assert_int_equal(ember_rec_get(rec, len, 0, &v), EMBER_OK);
    assert_ptr_equal(v.enc, rec);
    assert_int_equal(v.enc_len, len);
    return v;
}

/* Asserts that rec[0..len) is refused everywhere it can be read. */
static void assert_invalid(const uint8_t *rec, size_t len)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    ember_buf out = ember_buf_heap();
    size_t count = 12345;
    ember_status s;
    if (ember_rec_validate(rec, len, &count) != EMBER_EINVAL) {
        size_t i;
        print_error("accepted:");
        for (i = 0; i < len; i++)
            print_error(" %02X", rec[i]);
        print_error("\n");
        fail();
    }
    assert_int_equal(count, 12345);
    /* a cursor reaches the same error and then stays put */
    while ((s = ember_rec_next(&c, NULL)) == EMBER_OK)
        ;
    assert_int_equal(s, EMBER_EINVAL);
    {
        const uint8_t *at = c.p;
        ember_value v = {0};
        assert_int_equal(ember_rec_next(&c, &v), EMBER_EINVAL);
        assert_ptr_equal(c.p, at);
    }
    assert_int_equal(ember_buf_put_u8(&out, 'x'), EMBER_OK);
    assert_int_equal(ember_rec_json(&out, rec, len), EMBER_EINVAL);
    assert_int_equal(out.len, 1);
    ember_buf_release(&out);
}

#define ARR(...) ((const uint8_t[]){__VA_ARGS__})
#define ASSERT_INVALID(...)                                                  \
    assert_invalid(ARR(__VA_ARGS__), sizeof((const uint8_t[]){__VA_ARGS__}))

/* ---- exact encodings -------------------------------------------------- */

typedef struct int_case {
    int64_t v;
    uint8_t enc[9];
    size_t n;
} int_case;

/* Sorted ascending by value: the encodings must sort the same way. */
static const int_case int_cases[] = {
    {INT64_MIN, {0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 9},
    {INT64_MIN + 1, {0x0C, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9},
    {-(INT64_C(1) << 56), {0x0C, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                           0xFF}, 9},
    {-(INT64_C(1) << 56) + 1, {0x0D, 0, 0, 0, 0, 0, 0, 0}, 8},
    {-65536, {0x11, 0xFE, 0xFF, 0xFF}, 4},
    {-65535, {0x12, 0x00, 0x00}, 3},
    {-257, {0x12, 0xFE, 0xFE}, 3},
    {-256, {0x12, 0xFE, 0xFF}, 3},
    {-255, {0x13, 0x00}, 2},
    {-128, {0x13, 0x7F}, 2},
    {-2, {0x13, 0xFD}, 2},
    {-1, {0x13, 0xFE}, 2},
    {0, {0x14}, 1},
    {1, {0x15, 0x01}, 2},
    {127, {0x15, 0x7F}, 2},
    {255, {0x15, 0xFF}, 2},
    {256, {0x16, 0x01, 0x00}, 3},
    {65535, {0x16, 0xFF, 0xFF}, 3},
    {65536, {0x17, 0x01, 0x00, 0x00}, 4},
    {INT64_C(1) << 56, {0x1C, 0x01, 0, 0, 0, 0, 0, 0, 0}, 9},
    {INT64_MAX, {0x1C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 9},
};

static void test_int_encodings(void **state)
{
    size_t i, n = sizeof int_cases / sizeof int_cases[0];
    (void)state;
    for (i = 0; i < n; i++) {
        ember_buf b = ember_buf_heap();
        ember_value v = {0};
        assert_int_equal(ember_rec_put_int(&b, int_cases[i].v), EMBER_OK);
        assert_bytes(&b, int_cases[i].enc, int_cases[i].n);
        v = only_value(b.data, b.len);
        assert_int_equal(v.type, EMBER_TYPE_INT);
        assert_true(v.u.i64 == int_cases[i].v);
        if (i > 0)
            assert_int_equal(ember_rec_compare(int_cases[i - 1].enc,
                                               int_cases[i - 1].n,
                                               int_cases[i].enc,
                                               int_cases[i].n),
                             -1);
        ember_buf_release(&b);
    }
}

static double f64_of(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

typedef struct f64_case {
    uint64_t bits;
    uint8_t enc[9];
} f64_case;

/* Sorted by the total order -inf < ... < -0.0 < +0.0 < ... < inf < NaN. */
static const f64_case f64_cases[] = {
    {UINT64_C(0xFFF0000000000000), /* -inf */
     {0x20, 0x00, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
    {UINT64_C(0xBFF0000000000000), /* -1.0 */
     {0x20, 0x40, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
    {UINT64_C(0x8000000000000001), /* -smallest denormal */
     {0x20, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}},
    {UINT64_C(0x8000000000000000), /* -0.0 */
     {0x20, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
    {UINT64_C(0x0000000000000000), /* +0.0 */
     {0x20, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {UINT64_C(0x0000000000000001), /* smallest denormal */
     {0x20, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}},
    {UINT64_C(0x3FF0000000000000), /* 1.0 */
     {0x20, 0xBF, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {UINT64_C(0x7FEFFFFFFFFFFFFF), /* DBL_MAX */
     {0x20, 0xFF, 0xEF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},
    {UINT64_C(0x7FF0000000000000), /* +inf */
     {0x20, 0xFF, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {UINT64_C(0x7FF8000000000000), /* NaN */
     {0x20, 0xFF, 0xF8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
};

static void test_double_encodings(void **state)
{
    static const uint64_t other_nans[] = {
        UINT64_C(0xFFF8000000000000), /* -NaN */
        UINT64_C(0x7FF0000000000001), /* signalling */
        UINT64_C(0x7FFFFFFFFFFFFFFF), UINT64_C(0xFFFFFFFFFFFFFFFF),
        UINT64_C(0x7FF8000000000123)};
    static const uint8_t nan_enc[9] = {0x20, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0};
    size_t i, n = sizeof f64_cases / sizeof f64_cases[0];
    (void)state;
    for (i = 0; i < n; i++) {
        ember_buf b = ember_buf_heap();
        ember_value v = {0};
        assert_int_equal(ember_rec_put_double(&b, f64_of(f64_cases[i].bits)),
                         EMBER_OK);
        assert_bytes(&b, f64_cases[i].enc, 9);
        v = only_value(b.data, b.len);
        assert_int_equal(v.type, EMBER_TYPE_DOUBLE);
        assert_true(bits_of(v.u.f64) == f64_cases[i].bits);
        if (i > 0)
            assert_int_equal(ember_rec_compare(f64_cases[i - 1].enc, 9,
                                               f64_cases[i].enc, 9),
                             -1);
        ember_buf_release(&b);
    }
    for (i = 0; i < sizeof other_nans / sizeof other_nans[0]; i++) {
        ember_buf b = ember_buf_heap();
        assert_int_equal(ember_rec_put_double(&b, f64_of(other_nans[i])),
                         EMBER_OK);
        assert_bytes(&b, nan_enc, 9);
        ember_buf_release(&b);
    }
}

static void test_scalar_encodings(void **state)
{
    ember_buf b = ember_buf_heap();
    ember_value v = {0};
    (void)state;

    assert_int_equal(ember_rec_put_null(&b), EMBER_OK);
    assert_bytes(&b, ARR(0x01), 1);
    assert_int_equal(only_value(b.data, b.len).type, EMBER_TYPE_NULL);
    b.len = 0;

    assert_int_equal(ember_rec_put_bool(&b, 0), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&b, 1), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&b, 42), EMBER_OK);
    assert_bytes(&b, ARR(0x02, 0x03, 0x03), 3);
    assert_int_equal(ember_rec_get(b.data, b.len, 0, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_BOOL);
    assert_int_equal(v.u.boolean, 0);
    assert_int_equal(ember_rec_get(b.data, b.len, 2, &v), EMBER_OK);
    assert_int_equal(v.u.boolean, 1);
    b.len = 0;

    assert_int_equal(ember_rec_put_string(&b, NULL, 0), EMBER_OK);
    assert_bytes(&b, ARR(0x28, 0x00), 2);
    b.len = 0;
    assert_int_equal(ember_rec_put_string(&b, "a", 1), EMBER_OK);
    assert_bytes(&b, ARR(0x28, 0x61, 0x00), 3);
    b.len = 0;
    assert_int_equal(ember_rec_put_string(&b, "a\0b", 3), EMBER_OK);
    assert_bytes(&b, ARR(0x28, 0x61, 0x00, 0xFF, 0x62, 0x00), 6);
    b.len = 0;
    assert_int_equal(ember_rec_put_string(&b, "\0\0", 2), EMBER_OK);
    assert_bytes(&b, ARR(0x28, 0x00, 0xFF, 0x00, 0xFF, 0x00), 6);
    b.len = 0;
    assert_int_equal(ember_rec_put_bytes(&b, NULL, 0), EMBER_OK);
    assert_bytes(&b, ARR(0x29, 0x00), 2);
    b.len = 0;
    assert_int_equal(ember_rec_put_bytes(&b, ARR(0x00, 0xFF, 0x01), 3),
                     EMBER_OK);
    assert_bytes(&b, ARR(0x29, 0x00, 0xFF, 0xFF, 0x01, 0x00), 6);
    b.len = 0;

    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_bytes(&b, ARR(0x30, 0x00), 2);
    v = only_value(b.data, b.len);
    assert_int_equal(v.type, EMBER_TYPE_TUPLE);
    assert_int_equal(v.u.tuple.raw_len, 0);
    b.len = 0;

    /* (1, (null), "x") */
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, 1), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_null(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&b, "x", 1), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_bytes(&b, ARR(0x30, 0x15, 0x01, 0x30, 0x01, 0x00, 0x28, 0x78, 0x00,
                         0x00),
                 10);
    ember_buf_release(&b);
}

/* Cross-type order and prefix rules, on hand-written encodings. */
static void test_type_order(void **state)
{
    static const struct {
        uint8_t b[6];
        size_t n;
    } asc[] = {
        {{0x01}, 1},                         /* null */
        {{0x02}, 1},                         /* false */
        {{0x03}, 1},                         /* true */
        {{0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF}, 6}, /* (prefix of) INT64_MIN */
        {{0x14}, 1},                         /* 0 */
        {{0x20, 0x00}, 2},                   /* (prefix of) -inf */
        {{0x28, 0x00}, 2},                   /* "" */
        {{0x28, 0x00, 0xFF, 0x00}, 4},       /* "\0" */
        {{0x28, 0x61, 0x00}, 3},             /* "a" */
        {{0x28, 0x61, 0x00, 0x01}, 4},       /* "a", null */
        {{0x28, 0x61, 0x00, 0xFF, 0x00}, 5}, /* "a\0" */
        {{0x28, 0x61, 0x62, 0x00}, 4},       /* "ab" */
        {{0x29, 0x00}, 2},                   /* bytes "" */
        {{0x30, 0x00}, 2},                   /* () */
        {{0x30, 0x00, 0x01}, 3},             /* (), null */
        {{0x30, 0x01, 0x00}, 3},             /* (null) */
        {{0x30, 0x30, 0x00, 0x00}, 4},       /* (()) */
    };
    size_t i, j, n = sizeof asc / sizeof asc[0];
    (void)state;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            assert_int_equal(
                ember_rec_compare(asc[i].b, asc[i].n, asc[j].b, asc[j].n),
                i < j ? -1 : (i > j ? 1 : 0));
    assert_int_equal(ember_rec_compare(NULL, 0, NULL, 0), 0);
    assert_int_equal(ember_rec_compare(NULL, 0, asc[0].b, 1), -1);
    assert_int_equal(ember_rec_compare(asc[0].b, 1, NULL, 0), 1);
}

/* ---- round trips ------------------------------------------------------ */

static void test_round_trip_all_types(void **state)
{
    ember_buf b = ember_buf_heap();
    ember_rec_cursor c, t, u;
    ember_value v = {0}, w = {0}, x = {0};
    char sbuf[16];
    size_t count;
    (void)state;

    assert_int_equal(ember_rec_put_null(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&b, 1), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, -123456789), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&b, 2.5), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&b, "héllo", 6), EMBER_OK);
    assert_int_equal(ember_rec_put_bytes(&b, "\0\xff", 2), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, INT64_MIN), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&b, "in", 2), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&b, 0), EMBER_OK);

    assert_int_equal(ember_rec_validate(b.data, b.len, &count), EMBER_OK);
    assert_int_equal(count, 8);
    assert_int_equal(ember_rec_validate(b.data, b.len, NULL), EMBER_OK);

    c = ember_rec_cursor_init(b.data, b.len);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_NULL);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_BOOL);
    assert_int_equal(v.u.boolean, 1);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_INT);
    assert_true(v.u.i64 == -123456789);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_DOUBLE);
    assert_true(v.u.f64 == 2.5);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_STRING);
    assert_int_equal(v.u.str.len, 6);
    assert_memory_equal(v.u.str.raw, "héllo", 6);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_BYTES);
    assert_int_equal(v.u.str.len, 2);
    assert_int_equal(v.u.str.raw_len, 3);
    assert_int_equal(ember_rec_string_copy(&v, sbuf, sizeof sbuf), 2);
    assert_memory_equal(sbuf, "\0\xff", 2);

    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_TUPLE);
    assert_ptr_equal(v.u.tuple.raw, v.enc + 1);
    assert_int_equal(v.u.tuple.raw_len, v.enc_len - 2);
    t = ember_rec_tuple_cursor(&v);
    assert_int_equal(ember_rec_next(&t, &w), EMBER_OK);
    assert_int_equal(w.type, EMBER_TYPE_INT);
    assert_true(w.u.i64 == INT64_MIN);
    assert_int_equal(ember_rec_next(&t, &w), EMBER_OK);
    assert_int_equal(w.type, EMBER_TYPE_TUPLE);
    u = ember_rec_tuple_cursor(&w);
    assert_int_equal(ember_rec_next(&u, &x), EMBER_OK);
    assert_int_equal(x.type, EMBER_TYPE_STRING);
    assert_memory_equal(x.u.str.raw, "in", 2);
    assert_int_equal(ember_rec_next(&u, &x), EMBER_END);
    assert_int_equal(ember_rec_next(&t, &w), EMBER_OK);
    assert_int_equal(w.type, EMBER_TYPE_TUPLE);
    assert_int_equal(w.u.tuple.raw_len, 0);
    u = ember_rec_tuple_cursor(&w);
    assert_int_equal(ember_rec_next(&u, &x), EMBER_END);
    assert_int_equal(ember_rec_next(&t, &w), EMBER_END);

    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_BOOL);
    assert_int_equal(v.u.boolean, 0);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_END);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_END);

    /* a non-tuple opens as an empty cursor */
    t = ember_rec_tuple_cursor(&x);
    assert_int_equal(ember_rec_next(&t, NULL), EMBER_END);
    ember_buf_release(&b);
}

static void test_empty_record(void **state)
{
    size_t count = 7;
    ember_value v = {0};
    ember_rec_cursor c = ember_rec_cursor_init(NULL, 0);
    (void)state;
    assert_int_equal(ember_rec_next(&c, &v), EMBER_END);
    assert_int_equal(ember_rec_validate(NULL, 0, &count), EMBER_OK);
    assert_int_equal(count, 0);
    assert_int_equal(ember_rec_get(NULL, 0, 0, &v), EMBER_ENOTFOUND);
}

static void test_strings_zero_copy_and_escaped(void **state)
{
    ember_buf b = ember_buf_heap();
    ember_value v = {0};
    char out[8];
    (void)state;

    assert_int_equal(ember_rec_put_string(&b, "plain", 5), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&b, "a\0b\0", 4), EMBER_OK);
    assert_int_equal(ember_rec_put_bytes(&b, "\xff\xfe", 2), EMBER_OK);

    /* zero copy: raw is the value, inside the record */
    assert_int_equal(ember_rec_get(b.data, b.len, 0, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_STRING);
    assert_int_equal(v.u.str.len, 5);
    assert_int_equal(v.u.str.raw_len, 5);
    assert_ptr_equal(v.u.str.raw, b.data + 1);
    assert_int_equal(ember_rec_string_copy(&v, out, sizeof out), 5);
    assert_memory_equal(out, "plain", 5);
    /* cut copy: writes cap bytes, returns the full length */
    memset(out, '#', sizeof out);
    assert_int_equal(ember_rec_string_copy(&v, out, 3), 5);
    assert_memory_equal(out, "pla###", 6);
    assert_int_equal(ember_rec_string_copy(&v, NULL, 0), 5);

    /* escaped: raw_len counts the escapes */
    assert_int_equal(ember_rec_get(b.data, b.len, 1, &v), EMBER_OK);
    assert_int_equal(v.u.str.len, 4);
    assert_int_equal(v.u.str.raw_len, 6);
    assert_ptr_equal(v.u.str.raw, b.data + 7 + 1);
    memset(out, '#', sizeof out);
    assert_int_equal(ember_rec_string_copy(&v, out, sizeof out), 4);
    assert_memory_equal(out, "a\0b\0##", 6);
    memset(out, '#', sizeof out);
    assert_int_equal(ember_rec_string_copy(&v, out, 2), 4);
    assert_memory_equal(out, "a\0##", 4);
    memset(out, '#', sizeof out);
    assert_int_equal(ember_rec_string_copy(&v, out, 3), 4);
    assert_memory_equal(out, "a\0b##", 5);

    assert_int_equal(ember_rec_get(b.data, b.len, 2, &v), EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_BYTES);
    assert_int_equal(v.u.str.raw_len, 2);
    assert_memory_equal(v.u.str.raw, "\xff\xfe", 2);

    /* other types copy nothing */
    b.len = 0;
    assert_int_equal(ember_rec_put_int(&b, 5), EMBER_OK);
    v = only_value(b.data, b.len);
    memset(out, '#', sizeof out);
    assert_int_equal(ember_rec_string_copy(&v, out, sizeof out), 0);
    assert_int_equal(out[0], '#');
    assert_int_equal(ember_rec_string_copy(NULL, out, sizeof out), 0);
    ember_buf_release(&b);
}

static void test_get(void **state)
{
    ember_buf b = ember_buf_heap();
    ember_value v = {0};
    int64_t i;
    (void)state;
    for (i = 0; i < 10; i++)
        assert_int_equal(ember_rec_put_int(&b, i * 1000 - 3000), EMBER_OK);
    for (i = 0; i < 10; i++) {
        assert_int_equal(ember_rec_get(b.data, b.len, (size_t)i, &v),
                         EMBER_OK);
        assert_int_equal(v.type, EMBER_TYPE_INT);
        assert_true(v.u.i64 == i * 1000 - 3000);
    }
    assert_int_equal(ember_rec_get(b.data, b.len, 10, &v), EMBER_ENOTFOUND);
    assert_int_equal(ember_rec_get(b.data, b.len, SIZE_MAX, &v),
                     EMBER_ENOTFOUND);
    /* skip without output */
    assert_int_equal(ember_rec_get(b.data, b.len, 3, NULL), EMBER_OK);

    /* malformed before the index: EINVAL; after it: not examined */
    assert_int_equal(ember_buf_put_u8(&b, 0xEE), EMBER_OK);
    assert_int_equal(ember_rec_get(b.data, b.len, 9, &v), EMBER_OK);
    assert_int_equal(ember_rec_get(b.data, b.len, 10, &v), EMBER_EINVAL);
    assert_int_equal(ember_rec_get(b.data, b.len, 11, &v), EMBER_EINVAL);
    ember_buf_release(&b);
}

static void test_put_value(void **state)
{
    ember_buf a = ember_buf_heap(), b = ember_buf_heap(), want = ember_buf_heap();
    ember_rec_cursor c;
    ember_value v = {0}, vals[4] = {{0}};
    size_t n = 0;
    (void)state;

    assert_int_equal(ember_rec_put_string(&a, "k\0y", 3), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&a), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&a, -0.0), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&a), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&a), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&a), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&a, 300), EMBER_OK);
    assert_int_equal(ember_rec_put_null(&a), EMBER_OK);

    /* copying every element gives the same bytes */
    c = ember_rec_cursor_init(a.data, a.len);
    while (ember_rec_next(&c, &v) == EMBER_OK) {
        vals[n++] = v;
        assert_int_equal(ember_rec_put_value(&b, &v), EMBER_OK);
    }
    assert_int_equal(n, 4);
    assert_bytes(&b, a.data, a.len);

    /* reordered copy equals writing in that order */
    b.len = 0;
    assert_int_equal(ember_rec_put_value(&b, &vals[2]), EMBER_OK);
    assert_int_equal(ember_rec_put_value(&b, &vals[1]), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&want, 300), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&want), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&want, -0.0), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&want), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&want), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&want), EMBER_OK);
    assert_bytes(&b, want.data, want.len);

    /* an inner element of a tuple copies too */
    b.len = 0;
    c = ember_rec_tuple_cursor(&vals[1]);
    assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
    assert_int_equal(ember_rec_put_value(&b, &v), EMBER_OK);
    want.len = 0;
    assert_int_equal(ember_rec_put_double(&want, -0.0), EMBER_OK);
    assert_bytes(&b, want.data, want.len);

    memset(&v, 0, sizeof v);
    assert_int_equal(ember_rec_put_value(&b, &v), EMBER_EINVAL);
    assert_int_equal(ember_rec_put_value(&b, NULL), EMBER_EINVAL);
    assert_int_equal(b.len, 9);

    ember_buf_release(&a);
    ember_buf_release(&b);
    ember_buf_release(&want);
}

/* ---- buffer failures -------------------------------------------------- */

/* Runs each writer on a fixed buffer one byte too small, then exactly big
 * enough; and on a buffer whose growth fails. */
static ember_status write_case(ember_buf *b, int which, const ember_value *val)
{
    switch (which) {
    case 0: return ember_rec_put_null(b);
    case 1: return ember_rec_put_bool(b, 1);
    case 2: return ember_rec_put_int(b, 0);
    case 3: return ember_rec_put_int(b, -256);
    case 4: return ember_rec_put_int(b, INT64_MIN);
    case 5: return ember_rec_put_double(b, 1.5);
    case 6: return ember_rec_put_string(b, "ab\0c", 4);
    case 7: return ember_rec_put_bytes(b, "", 0);
    case 8: return ember_rec_tuple_begin(b);
    case 9: return ember_rec_tuple_end(b);
    case 10: return ember_rec_put_value(b, val);
    case 11: return ember_rec_put_string(b, "\0\0\0", 3);
    default: return EMBER_EINTERNAL;
    }
}

static void test_buffer_full(void **state)
{
    static const size_t sizes[] = {1, 1, 1, 3, 9, 9, 7, 2, 1, 1, 7, 8};
    uint8_t src[16], mem[32];
    ember_buf sb = ember_buf_fixed(src, sizeof src);
    ember_value val = {0};
    int which;
    (void)state;
    assert_int_equal(ember_rec_put_string(&sb, "xy\0z", 4), EMBER_OK);
    val = only_value(src, sb.len);

    for (which = 0; which < 12; which++) {
        size_t need = sizes[which];
        ember_buf b;
        /* 3 bytes already there, room for need - 1 more */
        memset(mem, 0xAA, sizeof mem);
        b = ember_buf_fixed(mem, 3 + need - 1);
        b.len = 3;
        assert_int_equal(write_case(&b, which, &val), EMBER_ENOSPC);
        assert_int_equal(b.len, 3);
        assert_int_equal(mem[3], 0xAA);
        /* exactly enough */
        b = ember_buf_fixed(mem, 3 + need);
        b.len = 3;
        assert_int_equal(write_case(&b, which, &val), EMBER_OK);
        assert_int_equal(b.len, 3 + need);
        /* growth fails */
        b = ember_buf_fixed(mem, 3);
        b.len = 3;
        b.grow = grow_fail;
        assert_int_equal(write_case(&b, which, &val), EMBER_ENOMEM);
        assert_int_equal(b.len, 3);
    }
}

static void test_json_buffer_full(void **state)
{
    uint8_t rec[64], mem[64];
    ember_buf r = ember_buf_fixed(rec, sizeof rec);
    static const char want[] = "[1,\"ab\",[null,{\"base64\":\"AA==\"}]]";
    size_t cap;
    (void)state;
    assert_int_equal(ember_rec_put_int(&r, 1), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&r, "ab", 2), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&r), EMBER_OK);
    assert_int_equal(ember_rec_put_null(&r), EMBER_OK);
    assert_int_equal(ember_rec_put_bytes(&r, "", 1), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&r), EMBER_OK);
    for (cap = 2; cap < sizeof want - 1 + 2; cap++) {
        ember_buf o = ember_buf_fixed(mem, cap);
        o.len = 2;
        mem[0] = 'x';
        mem[1] = 'y';
        assert_int_equal(ember_rec_json(&o, rec, r.len), EMBER_ENOSPC);
        assert_int_equal(o.len, 2);
    }
    {
        ember_buf o = ember_buf_fixed(mem, 2 + sizeof want - 1);
        o.len = 2;
        assert_int_equal(ember_rec_json(&o, rec, r.len), EMBER_OK);
        assert_int_equal(o.len, 2 + sizeof want - 1);
        assert_memory_equal(mem + 2, want, sizeof want - 1);
    }
}

/* ---- malformed input -------------------------------------------------- */

/* Builds a record of many element kinds, remembering where each top-level
 * element ends. No string here contains 0x00, so the only valid prefixes
 * are the element boundaries. */
static void test_truncation_every_prefix(void **state)
{
    ember_buf b = ember_buf_heap(), t = ember_buf_heap();
    size_t ends[16], nends = 0, cut, i;
    (void)state;

#define STEP(call)                                                           \
    do {                                                                     \
        assert_int_equal((call), EMBER_OK);                                  \
        ends[nends++] = b.len;                                               \
    } while (0)
    STEP(ember_rec_put_null(&b));
    STEP(ember_rec_put_bool(&b, 0));
    STEP(ember_rec_put_int(&b, -256));
    STEP(ember_rec_put_int(&b, INT64_MAX));
    STEP(ember_rec_put_int(&b, 0));
    STEP(ember_rec_put_double(&b, -1.25));
    STEP(ember_rec_put_string(&b, "hello", 5));
    STEP(ember_rec_put_bytes(&b, "\xff\x01\xff", 3));
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, 7), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&b, "x", 1), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&b, 3.0), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    STEP(ember_rec_tuple_end(&b));
    STEP(ember_rec_put_bool(&b, 1));
#undef STEP

    for (cut = 0; cut <= b.len; cut++) {
        int boundary = cut == 0;
        size_t count = 0;
        for (i = 0; i < nends; i++)
            if (ends[i] == cut)
                boundary = 1;
        if (boundary) {
            assert_int_equal(ember_rec_validate(b.data, cut, &count),
                             EMBER_OK);
        } else {
            /* a copy of exactly cut bytes, so ASan sees any over-read */
            uint8_t *copy = (uint8_t *)malloc(cut);
            assert_non_null(copy);
            memcpy(copy, b.data, cut);
            assert_invalid(copy, cut);
            free(copy);
        }
    }

    /* wrapped in a tuple: no proper non-empty prefix is valid */
    assert_int_equal(ember_rec_tuple_begin(&t), EMBER_OK);
    assert_int_equal(ember_buf_append(&t, b.data, b.len), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&t), EMBER_OK);
    assert_int_equal(ember_rec_validate(t.data, t.len, NULL), EMBER_OK);
    for (cut = 1; cut < t.len; cut++) {
        uint8_t *copy = (uint8_t *)malloc(cut);
        assert_non_null(copy);
        memcpy(copy, t.data, cut);
        assert_invalid(copy, cut);
        free(copy);
    }

    /* an escaped 0x00 makes one more valid prefix: "a\0b" cut after "a" */
    b.len = 0;
    assert_int_equal(ember_rec_put_string(&b, "a\0b", 3), EMBER_OK);
    for (cut = 1; cut < b.len; cut++) {
        if (cut == 3) /* 28 61 00: the string "a" */
            assert_int_equal(ember_rec_validate(b.data, cut, NULL), EMBER_OK);
        else
            assert_invalid(b.data, cut);
    }
    ember_buf_release(&b);
    ember_buf_release(&t);
}

static void test_bad_tags(void **state)
{
    unsigned tag;
    (void)state;
    for (tag = 0; tag < 256; tag++) {
        int known = tag == 0x01 || tag == 0x02 || tag == 0x03 ||
                    (tag >= 0x0C && tag <= 0x1C) || tag == 0x20 ||
                    tag == 0x28 || tag == 0x29 || tag == 0x30;
        uint8_t rec[2] = {(uint8_t)tag, 0x14};
        if (known)
            continue;
        assert_invalid(rec, 1);
        assert_invalid(rec, 2);
        /* after a valid element, and inside a tuple */
        {
            uint8_t r2[4] = {0x01, (uint8_t)tag, 0x01, 0x00};
            uint8_t r3[4] = {0x30, (uint8_t)tag, 0x00, 0x00};
            assert_invalid(r2, 3);
            assert_invalid(r3, 4);
        }
    }
}

static void test_non_minimal_ints(void **state)
{
    (void)state;
    ASSERT_INVALID(0x15, 0x00);            /* +0 in one byte */
    ASSERT_INVALID(0x16, 0x00, 0xFF);      /* 255 in two bytes */
    ASSERT_INVALID(0x17, 0x00, 0x01, 0x00);
    ASSERT_INVALID(0x1C, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    ASSERT_INVALID(0x1C, 0x80, 0, 0, 0, 0, 0, 0, 0); /* 2^63: above max */
    ASSERT_INVALID(0x1C, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    ASSERT_INVALID(0x13, 0xFF);            /* -0 */
    ASSERT_INVALID(0x12, 0xFF, 0x00);      /* -255 in two bytes */
    ASSERT_INVALID(0x12, 0xFF, 0xFF);
    ASSERT_INVALID(0x0C, 0xFF, 0x00, 0, 0, 0, 0, 0, 0);
    /* magnitude 2^63 + 1: below INT64_MIN */
    ASSERT_INVALID(0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE);
    ASSERT_INVALID(0x0C, 0x00, 0, 0, 0, 0, 0, 0, 0);
    /* inside a tuple too */
    ASSERT_INVALID(0x30, 0x15, 0x00, 0x00);
    /* the neighbours are fine */
    assert_int_equal(ember_rec_validate(ARR(0x15, 0x01), 2, NULL), EMBER_OK);
    assert_int_equal(ember_rec_validate(ARR(0x13, 0xFE), 2, NULL), EMBER_OK);
    assert_int_equal(ember_rec_validate(ARR(0x12, 0xFE, 0xFF), 3, NULL),
                     EMBER_OK);
}

static void test_non_canonical_nan(void **state)
{
    (void)state;
    /* NaN with a payload bit */
    ASSERT_INVALID(0x20, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0x01);
    /* signalling NaN 0x7FF0000000000001 */
    ASSERT_INVALID(0x20, 0xFF, 0xF0, 0, 0, 0, 0, 0, 0x01);
    /* all-ones NaN 0x7FFFFFFFFFFFFFFF */
    ASSERT_INVALID(0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    /* -NaN 0xFFF8000000000000 (flipped) */
    ASSERT_INVALID(0x20, 0x00, 0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
    /* 0xFFFFFFFFFFFFFFFF (flipped) */
    ASSERT_INVALID(0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00);
    ASSERT_INVALID(0x30, 0x20, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0x01, 0x00);
    /* canonical NaN, inf and -inf are fine */
    assert_int_equal(
        ember_rec_validate(ARR(0x20, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0), 9, NULL),
        EMBER_OK);
    assert_int_equal(
        ember_rec_validate(ARR(0x20, 0xFF, 0xF0, 0, 0, 0, 0, 0, 0), 9, NULL),
        EMBER_OK);
    assert_int_equal(ember_rec_validate(ARR(0x20, 0x00, 0x0F, 0xFF, 0xFF,
                                            0xFF, 0xFF, 0xFF, 0xFF),
                                        9, NULL),
                     EMBER_OK);
}

static void test_bad_escapes_and_terminators(void **state)
{
    (void)state;
    /* 0x00 followed by something that is neither 0xFF nor a valid end */
    ASSERT_INVALID(0x28, 0x61, 0x00, 0xFE);
    ASSERT_INVALID(0x28, 0x61, 0x00, 0x80, 0x00);
    ASSERT_INVALID(0x28, 0x61, 0x00, 0x00); /* stray end after the string */
    ASSERT_INVALID(0x30, 0x28, 0x61, 0x00, 0xFE, 0x00);
    /* escape then nothing: no terminator */
    ASSERT_INVALID(0x28, 0x00, 0xFF);
    ASSERT_INVALID(0x29, 0x00, 0xFF, 0xFF);
    ASSERT_INVALID(0x28, 0x61);
    ASSERT_INVALID(0x28);
    ASSERT_INVALID(0x29, 0xFF, 0xFF);
    /* missing tuple terminators */
    ASSERT_INVALID(0x30);
    ASSERT_INVALID(0x30, 0x15, 0x01);
    ASSERT_INVALID(0x30, 0x30, 0x00);
    ASSERT_INVALID(0x30, 0x28, 0x61, 0x00);
    /* the string terminator cannot close the tuple too */
    ASSERT_INVALID(0x30, 0x28, 0x61, 0x00);
    /* stray 0x00 at top level */
    ASSERT_INVALID(0x00);
    ASSERT_INVALID(0x15, 0x01, 0x00);
    ASSERT_INVALID(0x30, 0x00, 0x00);
    ASSERT_INVALID(0x00, 0x01);
    /* the valid neighbours */
    assert_int_equal(ember_rec_validate(ARR(0x29, 0x00, 0x01), 3, NULL),
                     EMBER_OK);
    assert_int_equal(
        ember_rec_validate(ARR(0x30, 0x28, 0x61, 0x00, 0x00), 5, NULL),
        EMBER_OK);
}

static void test_depth(void **state)
{
    uint8_t rec[2 * (EMBER_REC_MAX_DEPTH + 1) + 1];
    size_t d, count;
    ember_value v = {0};
    (void)state;
    /* depth 64 is fine, empty or with an element at the bottom */
    for (d = 0; d < EMBER_REC_MAX_DEPTH; d++) {
        rec[d] = 0x30;
        rec[EMBER_REC_MAX_DEPTH + 1 + d] = 0x00;
    }
    rec[EMBER_REC_MAX_DEPTH] = 0x01;
    assert_int_equal(
        ember_rec_validate(rec, 2 * EMBER_REC_MAX_DEPTH + 1, &count),
        EMBER_OK);
    assert_int_equal(count, 1);
    assert_int_equal(ember_rec_get(rec, 2 * EMBER_REC_MAX_DEPTH + 1, 0, &v),
                     EMBER_OK);
    assert_int_equal(v.type, EMBER_TYPE_TUPLE);
    memmove(rec + EMBER_REC_MAX_DEPTH, rec + EMBER_REC_MAX_DEPTH + 1,
            EMBER_REC_MAX_DEPTH);
    assert_int_equal(ember_rec_validate(rec, 2 * EMBER_REC_MAX_DEPTH, NULL),
                     EMBER_OK);

    /* depth 65 is refused */
    for (d = 0; d <= EMBER_REC_MAX_DEPTH; d++) {
        rec[d] = 0x30;
        rec[EMBER_REC_MAX_DEPTH + 1 + d] = 0x00;
    }
    assert_invalid(rec, 2 * (EMBER_REC_MAX_DEPTH + 1));
    /* ... also as the second element of a record */
    {
        uint8_t r2[2 * (EMBER_REC_MAX_DEPTH + 1) + 1];
        r2[0] = 0x01;
        memcpy(r2 + 1, rec, 2 * (EMBER_REC_MAX_DEPTH + 1));
        assert_invalid(r2, sizeof r2);
    }
    /* ... and the same depth reached in two siblings is fine */
    {
        uint8_t r3[4 * EMBER_REC_MAX_DEPTH];
        for (d = 0; d < EMBER_REC_MAX_DEPTH; d++) {
            r3[d] = 0x30;
            r3[EMBER_REC_MAX_DEPTH + d] = 0x00;
            r3[2 * EMBER_REC_MAX_DEPTH + d] = 0x30;
            r3[3 * EMBER_REC_MAX_DEPTH + d] = 0x00;
        }
        assert_int_equal(ember_rec_validate(r3, sizeof r3, &count), EMBER_OK);
        assert_int_equal(count, 2);
    }
}

/* ---- JSON ------------------------------------------------------------- */

/* Asserts that the JSON rendering of the record in b is want. */
static void assert_json(const ember_buf *b, const char *want)
{
    ember_buf out = ember_buf_heap();
    assert_int_equal(ember_rec_json(&out, b->data, b->len), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(&out, 0), EMBER_OK);
    assert_string_equal((const char *)out.data, want);
    ember_buf_release(&out);
}

/* Asserts that the JSON rendering of the only element of the record in b
 * (ember_rec_json_value) is want. */
static void assert_value_json(const ember_buf *b, const char *want)
{
    ember_buf out = ember_buf_heap();
    ember_value v = only_value(b->data, b->len);
    assert_int_equal(ember_rec_json_value(&out, &v), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(&out, 0), EMBER_OK);
    assert_string_equal((const char *)out.data, want);
    ember_buf_release(&out);
}

/* in[0..n) as a string element (or a bytes element), and its JSON. */
typedef struct json_case {
    const char *in;
    size_t n;
    const char *json;
} json_case;

/* Asserts the JSON of each case, made a bytes element when bytes is set,
 * else a string element. */
static void assert_json_cases(const json_case *cases, size_t n, int bytes)
{
    for (size_t i = 0; i < n; i++) {
        ember_buf b = ember_buf_heap();
        assert_int_equal(bytes ? ember_rec_put_bytes(&b, cases[i].in,
                                                     cases[i].n)
                               : ember_rec_put_string(&b, cases[i].in,
                                                      cases[i].n),
                         EMBER_OK);
        assert_value_json(&b, cases[i].json);
        ember_buf_release(&b);
    }
}

static void test_json_scalars(void **state)
{
    ember_buf b = ember_buf_heap();
    (void)state;
    assert_json(&b, "[]");
    assert_int_equal(ember_rec_put_null(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&b, 0), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&b, 1), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, 0), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, -1), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, 256), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, INT64_MIN), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, INT64_MAX), EMBER_OK);
    assert_json(&b, "[null,false,true,0,-1,256,-9223372036854775808,"
                    "9223372036854775807]");
    ember_buf_release(&b);
}

static void test_json_doubles(void **state)
{
    static const struct {
        uint64_t bits;
        const char *json;
    } cases[] = {
        {UINT64_C(0x0000000000000000), "0.0"},
        {UINT64_C(0x8000000000000000), "-0.0"},
        {UINT64_C(0x3FF0000000000000), "1.0"},
        {UINT64_C(0xBFF8000000000000), "-1.5"},
        {UINT64_C(0x4059000000000000), "100.0"},
        {UINT64_C(0x3FB999999999999A), "0.1"},
        {UINT64_C(0x3FD3333333333334), "0.30000000000000004"}, /* 0.1+0.2 */
        {UINT64_C(0x3FD5555555555555), "0.3333333333333333"},  /* 1/3 */
        {UINT64_C(0x4341C37937E08000), "1e+16"},
        {UINT64_C(0x7E37E43C8800759C), "1e+300"},
        {UINT64_C(0x0000000000000001), "4.94065645841247e-324"},
        {UINT64_C(0x7FEFFFFFFFFFFFFF), "1.7976931348623157e+308"},
        {UINT64_C(0x7FF8000000000000), "\"NaN\""},
        {UINT64_C(0x7FF0000000000000), "\"Infinity\""},
        {UINT64_C(0xFFF0000000000000), "\"-Infinity\""},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ember_buf b = ember_buf_heap();
        assert_int_equal(ember_rec_put_double(&b, f64_of(cases[i].bits)),
                         EMBER_OK);
        assert_value_json(&b, cases[i].json);
        ember_buf_release(&b);
    }
}

static void test_json_strings(void **state)
{
    static const json_case cases[] = {
        {"", 0, "\"\""},
        {"plain text", 10, "\"plain text\""},
        {"q\"b\\s/", 6, "\"q\\\"b\\\\s/\""},
        {"\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
        {"a\0b", 3, "\"a\\u0000b\""},
        {"\0", 1, "\"\\u0000\""},
        /* valid UTF-8 passes through */
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 13,
         "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\""},
        /* each invalid byte becomes \ufffd */
        {"\xc3", 1, "\"\\ufffd\""},
        {"\xc3(", 2, "\"\\ufffd(\""},
        {"\xc0\x80", 2, "\"\\ufffd\\ufffd\""},              /* overlong */
        {"\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\""},    /* overlong */
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},    /* surrogate */
        {"\xf4\x90\x80\x80", 4,
         "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},               /* > U+10FFFF */
        {"\xf0\x8f\xbf\xbf", 4,
         "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},               /* overlong */
        {"\xe2\x82", 2, "\"\\ufffd\\ufffd\""},              /* truncated */
        {"\xe2\x82\0", 3, "\"\\ufffd\\ufffd\\u0000\""},
        {"\xff\xfex", 3, "\"\\ufffd\\ufffdx\""},
        {"a\x80\xc3\xa9", 4, "\"a\\ufffd\xc3\xa9\""},
    };
    (void)state;
    assert_json_cases(cases, sizeof cases / sizeof cases[0], 0);
}

static void test_json_bytes(void **state)
{
    static const json_case cases[] = {
        {"", 0, "{\"base64\":\"\"}"},
        {"f", 1, "{\"base64\":\"Zg==\"}"},
        {"fo", 2, "{\"base64\":\"Zm8=\"}"},
        {"foo", 3, "{\"base64\":\"Zm9v\"}"},
        {"foob", 4, "{\"base64\":\"Zm9vYg==\"}"},
        {"fooba", 5, "{\"base64\":\"Zm9vYmE=\"}"},
        {"foobar", 6, "{\"base64\":\"Zm9vYmFy\"}"},
        {"\0", 1, "{\"base64\":\"AA==\"}"},
        {"\0\xff\0", 3, "{\"base64\":\"AP8A\"}"},
        {"\xfb\xff\xbf", 3, "{\"base64\":\"+/+/\"}"},
        {"\0\0\0\0", 4, "{\"base64\":\"AAAAAA==\"}"},
    };
    (void)state;
    assert_json_cases(cases, sizeof cases / sizeof cases[0], 1);
}

static void test_json_tuples(void **state)
{
    ember_buf b = ember_buf_heap(), out = ember_buf_heap();
    ember_value v = {0};
    (void)state;
    assert_int_equal(ember_rec_put_int(&b, 1), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_null(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&b), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&b, 2.0), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&b), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&b, "x", 1), EMBER_OK);
    assert_int_equal(ember_rec_put_bytes(&b, "x", 1), EMBER_OK);
    assert_json(&b, "[1,[null,[],2.0],\"x\",{\"base64\":\"eA==\"}]");

    assert_int_equal(ember_rec_get(b.data, b.len, 1, &v), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(&out, '>'), EMBER_OK);
    assert_int_equal(ember_rec_json_value(&out, &v), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(&out, 0), EMBER_OK);
    assert_string_equal((const char *)out.data, ">[null,[],2.0]");

    /* an unknown type is refused, out unchanged */
    out.len = 1;
    v.type = 99;
    assert_int_equal(ember_rec_json_value(&out, &v), EMBER_EINVAL);
    assert_int_equal(ember_rec_json_value(&out, NULL), EMBER_EINVAL);
    assert_int_equal(out.len, 1);

    /* malformed record: EINVAL, out unchanged (also after partial output) */
    assert_int_equal(ember_rec_json(&out, ARR(0x15, 0x01, 0x30, 0x14), 4),
                     EMBER_EINVAL);
    assert_int_equal(out.len, 1);
    ember_buf_release(&b);
    ember_buf_release(&out);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(ember_type_name(EMBER_TYPE_NULL), "null");
    assert_string_equal(ember_type_name(EMBER_TYPE_TUPLE), "tuple");
    assert_string_equal(ember_type_name(0), "unknown");
}

/* Byte strings of every length up to 80 with 0x00 at each position (and
 * a second one further on) encode to tag, escaped bytes, terminator and
 * decode back: short ones are scanned a word at a time, long ones not. */
static void test_bytes_zero_positions(void **state)
{
    (void)state;
    uint8_t src[80], back[80], enc[2 * 80 + 2];
    for (size_t len = 0; len <= sizeof src; len++) {
        for (size_t z = 0; z <= len; z++) { /* z == len: no 0x00 */
            memset(src, 'x', sizeof src);
            size_t zeros = 0;
            if (z < len) {
                src[z] = 0x00;
                zeros++;
                if (z + 9 < len) {
                    src[z + 9] = 0x00;
                    zeros++;
                }
            }
            ember_buf b = ember_buf_fixed(enc, sizeof enc);
            assert_int_equal(ember_rec_put_bytes(&b, src, len), EMBER_OK);
            assert_int_equal(b.len, len + zeros + 2);
            assert_int_equal(enc[0], EMBER_REC_TAG_BYTES);
            assert_int_equal(enc[b.len - 1], 0x00);
            ember_rec_cursor c = ember_rec_cursor_init(enc, b.len);
            ember_value v;
            memset(&v, 0, sizeof v);
            assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
            assert_int_equal(v.u.str.len, len);
            assert_int_equal(ember_rec_string_copy(&v, back, sizeof back),
                             len);
            assert_memory_equal(back, src, len);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_encodings),
        cmocka_unit_test(test_double_encodings),
        cmocka_unit_test(test_scalar_encodings),
        cmocka_unit_test(test_type_order),
        cmocka_unit_test(test_round_trip_all_types),
        cmocka_unit_test(test_empty_record),
        cmocka_unit_test(test_strings_zero_copy_and_escaped),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_put_value),
        cmocka_unit_test(test_buffer_full),
        cmocka_unit_test(test_json_buffer_full),
        cmocka_unit_test(test_truncation_every_prefix),
        cmocka_unit_test(test_bad_tags),
        cmocka_unit_test(test_non_minimal_ints),
        cmocka_unit_test(test_non_canonical_nan),
        cmocka_unit_test(test_bad_escapes_and_terminators),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_json_scalars),
        cmocka_unit_test(test_json_doubles),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_json_bytes),
        cmocka_unit_test(test_json_tuples),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_bytes_zero_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
