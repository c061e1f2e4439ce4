/*
 * record_property_test.c — randomized properties of ember/record.h.
 *
 * A deterministic generator (splitmix64, fixed seeds) builds random typed
 * records biased towards the hard cases (integer width boundaries, signed
 * zeros, infinities, NaNs with any payload, denormals, strings with 0x00
 * and 0xFF, strings that are prefixes of each other, nested tuples). The
 * properties, checked against an independent typed model:
 *   - ember_rec_compare on the encodings has the sign of the typed order,
 *     so equal values have equal bytes and different values differ;
 *   - decoding an encoding gives back the generated value;
 *   - re-encoding the decoded elements gives the same bytes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/record.h"

/* ---- PRNG ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A number in [0, n). */
static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

/* ---- the typed model -------------------------------------------------- */

#define MAX_STR 8
#define MAX_KIDS 3
#define MAX_TOP 4
#define MAX_DEPTH 3
#define POOL 256

typedef struct gval {
    int type;  /* ember_type */
    int b;     /* BOOL */
    int64_t i; /* INT */
    double d;  /* DOUBLE */
    uint8_t s[MAX_STR];
    size_t slen;             /* STRING, BYTES */
    uint16_t kid[MAX_KIDS];  /* TUPLE: indices into the record's pool */
    size_t nkids;
} gval;

typedef struct grec {
    gval pool[POOL];
    size_t used;
    uint16_t top[MAX_TOP];
    size_t ntop;
} grec;

static uint16_t node_new(grec *r)
{
    assert_true(r->used < POOL);
    memset(&r->pool[r->used], 0, sizeof r->pool[0]);
    return (uint16_t)r->used++;
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

static int64_t gen_int(void)
{
    static const int64_t edge[] = {
        0, 1, -1, 2, -2, 127, 128, -128, -129, 255, 256, -255, -256, -257,
        65535, 65536, -65535, -65536, -65537, INT64_MAX, INT64_MAX - 1,
        INT64_MIN, INT64_MIN + 1, INT64_C(0x00FFFFFFFFFFFFFF),
        INT64_C(0x0100000000000000), -INT64_C(0x00FFFFFFFFFFFFFF),
        -INT64_C(0x0100000000000000)};
    unsigned k = rng_below(4);
    if (k < 2)
        return edge[rng_below(sizeof edge / sizeof edge[0])];
    if (k == 2) { /* +-2^n + small */
        int64_t base = (int64_t)(UINT64_C(1) << rng_below(63));
        int64_t v = base + (int64_t)rng_below(5) - 2;
        return rng_below(2) ? v : -v;
    }
    /* random value of random width */
    return (int64_t)(rng_next() >> rng_below(64));
}

static double gen_double(void)
{
    static const uint64_t edge[] = {
        UINT64_C(0x0000000000000000), UINT64_C(0x8000000000000000), /* 0 */
        UINT64_C(0x7FF0000000000000), UINT64_C(0xFFF0000000000000), /* inf */
        UINT64_C(0x7FF8000000000000), UINT64_C(0xFFF8000000000000), /* NaN */
        UINT64_C(0x7FF0000000000001), UINT64_C(0x7FFFFFFFFFFFFFFF),
        UINT64_C(0x0000000000000001), UINT64_C(0x8000000000000001),
        UINT64_C(0x000FFFFFFFFFFFFF), UINT64_C(0x0010000000000000),
        UINT64_C(0x3FF0000000000000), UINT64_C(0xBFF0000000000000),
        UINT64_C(0x7FEFFFFFFFFFFFFF), UINT64_C(0xFFEFFFFFFFFFFFFF)};
    switch (rng_below(6)) {
    case 0:
    case 1: return f64_of(edge[rng_below(sizeof edge / sizeof edge[0])]);
    case 2: /* denormal, either sign */
        return f64_of((rng_next() & UINT64_C(0x800FFFFFFFFFFFFF)));
    case 3: /* NaN with a random payload and sign */
        return f64_of(rng_next() | UINT64_C(0x7FF0000000000001));
    case 4: /* a small integer value, so neighbours collide */
        return (double)((int)rng_below(7) - 3) / 2.0;
    default: return f64_of(rng_next());
    }
}

static void gen_str(gval *v)
{
    /* a small alphabet makes prefixes and ties common */
    static const uint8_t alpha[] = {0x00, 0x00, 0xFF, 0x01, 'a', 'b', 0x80,
                                    0xFE};
    size_t i;
    v->slen = rng_below(4) == 0 ? 0 : rng_below(MAX_STR + 1);
    for (i = 0; i < v->slen; i++)
        v->s[i] = alpha[rng_below(sizeof alpha)];
}

static uint16_t gen_value(grec *r, int depth)
{
    uint16_t id = node_new(r);
    unsigned k = rng_below(depth < MAX_DEPTH ? 16 : 14);
    gval *v = &r->pool[id];
    if (k == 0) {
        v->type = EMBER_TYPE_NULL;
    } else if (k == 1) {
        v->type = EMBER_TYPE_BOOL;
        v->b = (int)rng_below(2);
    } else if (k < 6) {
        v->type = EMBER_TYPE_INT;
        v->i = gen_int();
    } else if (k < 9) {
        v->type = EMBER_TYPE_DOUBLE;
        v->d = gen_double();
    } else if (k < 12) {
        v->type = EMBER_TYPE_STRING;
        gen_str(v);
    } else if (k < 14) {
        v->type = EMBER_TYPE_BYTES;
        gen_str(v);
    } else {
        size_t n = rng_below(MAX_KIDS + 1), j;
        v->type = EMBER_TYPE_TUPLE;
        for (j = 0; j < n; j++) {
            uint16_t kid = gen_value(r, depth + 1);
            v = &r->pool[id];
            v->kid[v->nkids++] = kid;
        }
    }
    return id;
}

static void gen_record(grec *r)
{
    size_t n = 1 + rng_below(MAX_TOP), i;
    r->used = 0;
    r->ntop = 0;
    for (i = 0; i < n; i++)
        r->top[r->ntop++] = gen_value(r, 0);
}

/* Replaces one random top-level element (or appends/drops one), so the
 * result often shares a long prefix with the original. */
static void mutate_record(grec *r)
{
    unsigned k = rng_below(4);
    if (k == 0 && r->ntop < MAX_TOP) {
        r->top[r->ntop++] = gen_value(r, 0);
    } else if (k == 1 && r->ntop > 1) {
        r->ntop--;
    } else {
        size_t at = rng_below((unsigned)r->ntop);
        gval *v = &r->pool[r->top[at]];
        if (v->type == EMBER_TYPE_TUPLE && v->nkids > 0 && rng_below(2)) {
            /* change a child, keep the rest */
            size_t c = rng_below((unsigned)v->nkids);
            uint16_t kid = gen_value(r, 1);
            r->pool[r->top[at]].kid[c] = kid;
        } else if (v->type == EMBER_TYPE_INT && rng_below(2)) {
            if (rng_below(2))
                v->i = v->i == INT64_MAX ? INT64_MIN : v->i + 1;
            else
                v->i = v->i == INT64_MIN ? INT64_MAX : v->i - 1;
        } else if ((v->type == EMBER_TYPE_STRING ||
                    v->type == EMBER_TYPE_BYTES) &&
                   rng_below(2)) {
            if (v->slen < MAX_STR && rng_below(2))
                v->s[v->slen++] = rng_below(2) ? 0x00 : 0xFF;
            else if (v->slen > 0)
                v->slen--;
        } else {
            r->top[at] = gen_value(r, 0);
        }
    }
}

/* Typed order: type rank, then value. */
static int rank(const gval *v)
{
    switch (v->type) {
    case EMBER_TYPE_NULL: return 0;
    case EMBER_TYPE_BOOL: return v->b ? 2 : 1;
    case EMBER_TYPE_INT: return 3;
    case EMBER_TYPE_DOUBLE: return 4;
    case EMBER_TYPE_STRING: return 5;
    case EMBER_TYPE_BYTES: return 6;
    default: return 7;
    }
}

static int cmp_double(double a, double b)
{
    int an = isnan(a), bn = isnan(b);
    if (an || bn)
        return an - bn; /* NaN is greatest, all NaNs equal */
    if (a < b)
        return -1;
    if (a > b)
        return 1;
    /* numerically equal: only the zeros differ, -0.0 first */
    return (signbit(a) ? 0 : 1) - (signbit(b) ? 0 : 1);
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b,
                     size_t bn)
{
    size_t i;
    for (i = 0; i < an && i < bn; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

static int typed_cmp_seq(const grec *ra, const uint16_t *a, size_t an,
                         const grec *rb, const uint16_t *b, size_t bn);

static int typed_cmp(const grec *ra, const gval *a, const grec *rb,
                     const gval *b)
{
    int x = rank(a), y = rank(b);
    if (x != y)
        return x < y ? -1 : 1;
    switch (a->type) {
    case EMBER_TYPE_INT: return a->i < b->i ? -1 : (a->i > b->i ? 1 : 0);
    case EMBER_TYPE_DOUBLE: return cmp_double(a->d, b->d);
    case EMBER_TYPE_STRING:
    case EMBER_TYPE_BYTES: return cmp_bytes(a->s, a->slen, b->s, b->slen);
    case EMBER_TYPE_TUPLE:
        return typed_cmp_seq(ra, a->kid, a->nkids, rb, b->kid, b->nkids);
    default: return 0;
    }
}

static int typed_cmp_seq(const grec *ra, const uint16_t *a, size_t an,
                         const grec *rb, const uint16_t *b, size_t bn)
{
    size_t i;
    for (i = 0; i < an && i < bn; i++) {
        int c = typed_cmp(ra, &ra->pool[a[i]], rb, &rb->pool[b[i]]);
        if (c)
            return c;
    }
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

/* ---- encoding through the writer -------------------------------------- */

static void encode_value(ember_buf *b, const grec *r, const gval *v)
{
    size_t i;
    switch (v->type) {
    case EMBER_TYPE_NULL: assert_int_equal(ember_rec_put_null(b), EMBER_OK);
        break;
    case EMBER_TYPE_BOOL:
        assert_int_equal(ember_rec_put_bool(b, v->b), EMBER_OK);
        break;
    case EMBER_TYPE_INT:
        assert_int_equal(ember_rec_put_int(b, v->i), EMBER_OK);
        break;
    case EMBER_TYPE_DOUBLE:
        assert_int_equal(ember_rec_put_double(b, v->d), EMBER_OK);
        break;
    case EMBER_TYPE_STRING:
        assert_int_equal(ember_rec_put_string(b, (const char *)v->s, v->slen),
                         EMBER_OK);
        break;
    case EMBER_TYPE_BYTES:
        assert_int_equal(ember_rec_put_bytes(b, v->s, v->slen), EMBER_OK);
        break;
    default:
        assert_int_equal(ember_rec_tuple_begin(b), EMBER_OK);
        for (i = 0; i < v->nkids; i++)
            encode_value(b, r, &r->pool[v->kid[i]]);
        assert_int_equal(ember_rec_tuple_end(b), EMBER_OK);
    }
}

static void encode_record(ember_buf *b, const grec *r)
{
    size_t i;
    b->len = 0;
    for (i = 0; i < r->ntop; i++)
        encode_value(b, r, &r->pool[r->top[i]]);
}

/* ---- decoding back ---------------------------------------------------- */

static void check_seq(ember_rec_cursor c, const grec *r, const uint16_t *ids,
                      size_t n);

/* Asserts that the decoded v is the generated g. */
static void check_value(const ember_value *v, const grec *r, const gval *g)
{
    assert_int_equal(v->type, g->type);
    switch (g->type) {
    case EMBER_TYPE_BOOL: assert_int_equal(v->u.boolean, g->b); break;
    case EMBER_TYPE_INT: assert_true(v->u.i64 == g->i); break;
    case EMBER_TYPE_DOUBLE:
        if (isnan(g->d))
            assert_true(bits_of(v->u.f64) == UINT64_C(0x7FF8000000000000));
        else
            assert_true(bits_of(v->u.f64) == bits_of(g->d));
        break;
    case EMBER_TYPE_STRING:
    case EMBER_TYPE_BYTES: {
        uint8_t tmp[MAX_STR];
        assert_int_equal(v->u.str.len, g->slen);
        assert_int_equal(ember_rec_string_copy(v, tmp, sizeof tmp), g->slen);
        if (g->slen)
            assert_memory_equal(tmp, g->s, g->slen);
        /* zero copy exactly when there was nothing to escape */
        assert_int_equal(v->u.str.raw_len == v->u.str.len,
                         g->slen == 0 || memchr(g->s, 0, g->slen) == NULL);
        break;
    }
    case EMBER_TYPE_TUPLE:
        check_seq(ember_rec_tuple_cursor(v), r, g->kid, g->nkids);
        break;
    default: break;
    }
}

static void check_seq(ember_rec_cursor c, const grec *r, const uint16_t *ids,
                      size_t n)
{
    ember_value v = {0};
    size_t i;
    for (i = 0; i < n; i++) {
        assert_int_equal(ember_rec_next(&c, &v), EMBER_OK);
        check_value(&v, r, &r->pool[ids[i]]);
    }
    assert_int_equal(ember_rec_next(&c, &v), EMBER_END);
}

/* Round trip: validate, decode == generated, re-encode == same bytes. */
static void check_round_trip(const ember_buf *enc, const grec *r,
                             ember_buf *scratch)
{
    size_t count = 0, i;
    ember_value v = {0};
    assert_int_equal(ember_rec_validate(enc->data, enc->len, &count),
                     EMBER_OK);
    assert_int_equal(count, r->ntop);
    check_seq(ember_rec_cursor_init(enc->data, enc->len), r, r->top, r->ntop);
    scratch->len = 0;
    for (i = 0; i < r->ntop; i++) {
        assert_int_equal(ember_rec_get(enc->data, enc->len, i, &v), EMBER_OK);
        assert_int_equal(ember_rec_put_value(scratch, &v), EMBER_OK);
    }
    assert_int_equal(scratch->len, enc->len);
    assert_memory_equal(scratch->data, enc->data, enc->len);
}

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

/* ---- tests ------------------------------------------------------------ */

#define PAIRS 250000

static void test_order_matches_typed_order(void **state)
{
    static grec a, b;
    ember_buf ea = ember_buf_heap(), eb = ember_buf_heap(), scratch = ember_buf_heap();
    long i, equal = 0, less = 0, greater = 0;
    (void)state;
    rng_state = UINT64_C(0x5EED0000E3BE4001);
    for (i = 0; i < PAIRS; i++) {
        int typed, bytes;
        if (i % 2 == 0 || a.ntop == 0) {
            gen_record(&a);
            encode_record(&ea, &a);
            check_round_trip(&ea, &a, &scratch);
        }
        switch (rng_below(4)) {
        case 0: /* independent */
            gen_record(&b);
            break;
        case 1: /* equal (NaNs may differ in payload) */
            b = a;
            break;
        default: /* close to a */
            b = a;
            mutate_record(&b);
        }
        encode_record(&eb, &b);
        check_round_trip(&eb, &b, &scratch);
        typed = typed_cmp_seq(&a, a.top, a.ntop, &b, b.top, b.ntop);
        bytes = ember_rec_compare(ea.data, ea.len, eb.data, eb.len);
        if (sign(typed) != bytes) {
            print_error("pair %ld: typed %d, bytes %d\n", i, typed, bytes);
            fail();
        }
        /* antisymmetric */
        assert_int_equal(ember_rec_compare(eb.data, eb.len, ea.data, ea.len),
                         -bytes);
        if (typed == 0)
            equal++;
        else if (typed < 0)
            less++;
        else
            greater++;
    }
    /* the generator must exercise all three outcomes a fair amount */
    assert_true(equal > PAIRS / 10);
    assert_true(less > PAIRS / 10);
    assert_true(greater > PAIRS / 10);
    ember_buf_release(&ea);
    ember_buf_release(&eb);
    ember_buf_release(&scratch);
}

/* Whole elements compared on their own (not just whole records), including
 * elements deep inside tuples. */
static void test_element_order(void **state)
{
    static grec r;
    ember_buf ea = ember_buf_heap(), eb = ember_buf_heap();
    long i;
    (void)state;
    rng_state = UINT64_C(0x0DDBA11C0FFEE123);
    for (i = 0; i < 100000; i++) {
        uint16_t x, y;
        int typed;
        r.used = 0;
        x = gen_value(&r, 1);
        y = gen_value(&r, 1);
        ea.len = 0;
        eb.len = 0;
        encode_value(&ea, &r, &r.pool[x]);
        encode_value(&eb, &r, &r.pool[y]);
        typed = typed_cmp(&r, &r.pool[x], &r, &r.pool[y]);
        assert_int_equal(ember_rec_compare(ea.data, ea.len, eb.data, eb.len),
                         sign(typed));
    }
    ember_buf_release(&ea);
    ember_buf_release(&eb);
}

/* Every integer near a power of two, both signs: round trip, minimal
 * length, and order against the neighbours. */
static void test_int_sweep(void **state)
{
    ember_buf prev = ember_buf_heap(), cur = ember_buf_heap();
    int n, d, neg;
    (void)state;
    for (neg = 0; neg < 2; neg++) {
        for (n = 0; n < 64; n++) {
            for (d = -3; d <= 3; d++) {
                uint64_t m = (UINT64_C(1) << n) + (uint64_t)(int64_t)d;
                int64_t v;
                ember_value got = {0};
                size_t want_len;
                if (m > (uint64_t)INT64_MAX)
                    continue;
                v = neg ? -(int64_t)m : (int64_t)m;
                cur.len = 0;
                assert_int_equal(ember_rec_put_int(&cur, v), EMBER_OK);
                assert_int_equal(ember_rec_get(cur.data, cur.len, 0, &got),
                                 EMBER_OK);
                assert_true(got.u.i64 == v);
                /* length: 1 + minimal bytes of the magnitude */
                if (m == 0) {
                    want_len = 1;
                } else {
                    uint64_t t = m;
                    want_len = 1;
                    while (t) {
                        want_len++;
                        t >>= 8;
                    }
                }
                assert_int_equal(cur.len, want_len);
                /* v-1 < v */
                if (v != INT64_MIN) {
                    prev.len = 0;
                    assert_int_equal(ember_rec_put_int(&prev, v - 1),
                                     EMBER_OK);
                    assert_int_equal(ember_rec_compare(prev.data, prev.len,
                                                       cur.data, cur.len),
                                     -1);
                }
            }
        }
    }
    ember_buf_release(&prev);
    ember_buf_release(&cur);
}

/* Random bit patterns for doubles: round trip and order by value. */
static void test_double_bits(void **state)
{
    ember_buf ea = ember_buf_heap(), eb = ember_buf_heap();
    long i;
    (void)state;
    rng_state = 42;
    for (i = 0; i < 200000; i++) {
        double a = gen_double(), b = gen_double();
        ember_value v = {0};
        ea.len = 0;
        eb.len = 0;
        assert_int_equal(ember_rec_put_double(&ea, a), EMBER_OK);
        assert_int_equal(ember_rec_put_double(&eb, b), EMBER_OK);
        assert_int_equal(ember_rec_get(ea.data, ea.len, 0, &v), EMBER_OK);
        if (isnan(a))
            assert_true(bits_of(v.u.f64) == UINT64_C(0x7FF8000000000000));
        else
            assert_true(bits_of(v.u.f64) == bits_of(a));
        assert_int_equal(ember_rec_compare(ea.data, ea.len, eb.data, eb.len),
                         cmp_double(a, b));
    }
    ember_buf_release(&ea);
    ember_buf_release(&eb);
}

/* JSON renders every generated record, and the double text reads back. */
static void test_json_total(void **state)
{
    static grec r;
    ember_buf enc = ember_buf_heap(), out = ember_buf_heap();
    long i;
    (void)state;
    rng_state = 7;
    for (i = 0; i < 20000; i++) {
        gen_record(&r);
        encode_record(&enc, &r);
        out.len = 0;
        assert_int_equal(ember_rec_json(&out, enc.data, enc.len), EMBER_OK);
        assert_true(out.len >= 2);
        assert_int_equal(out.data[0], '[');
        assert_int_equal(out.data[out.len - 1], ']');
    }
    for (i = 0; i < 20000; i++) {
        double d = gen_double();
        ember_value v = {0};
        char text[64];
        enc.len = 0;
        out.len = 0;
        assert_int_equal(ember_rec_put_double(&enc, d), EMBER_OK);
        assert_int_equal(ember_rec_get(enc.data, enc.len, 0, &v), EMBER_OK);
        assert_int_equal(ember_rec_json_value(&out, &v), EMBER_OK);
        assert_true(out.len < sizeof text);
        memcpy(text, out.data, out.len);
        text[out.len] = '\0';
        if (isnan(d) || isinf(d)) {
            assert_int_equal(text[0], '"');
        } else {
            assert_true(strchr(text, '.') != NULL ||
                        strchr(text, 'e') != NULL);
            assert_true(bits_of(strtod(text, NULL)) == bits_of(d));
        }
    }
    ember_buf_release(&enc);
    ember_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_matches_typed_order),
        cmocka_unit_test(test_element_order),
        cmocka_unit_test(test_int_sweep),
        cmocka_unit_test(test_double_bits),
        cmocka_unit_test(test_json_total),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
