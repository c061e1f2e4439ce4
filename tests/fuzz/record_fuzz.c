/*
 * record_fuzz.c — fuzz target for the record decoder of ember/record.h.
 *
 * LLVMFuzzerTestOneInput takes any bytes as a record and checks that every
 * reader agrees on them, aborting on any inconsistency:
 *   - ember_rec_validate, a cursor walk, ember_rec_get and ember_rec_json
 *     all accept the input or all refuse it (EMBER_EINVAL, output
 *     unchanged);
 *   - for a valid record: every value lies inside the input and re-encodes
 *     through the typed writer to exactly its own bytes (canonical form),
 *     re-encoding every top-level element with ember_rec_put_value gives
 *     back the input, and the JSON rendering is valid UTF-8 without raw
 *     control characters.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DEMBER_FUZZ_REPLAY it is record_fuzz_replay, the replay driver of
 * replay.h over the hand-made records below (the seed corpus).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/record.h"
#include "replay.h"

/* Valid inputs so far (the replay driver reports it). */
static size_t accepted;

#define CHECK(cond) EM_FUZZ_CHECK("record_fuzz", cond)

/* Nonzero when s[0..n) is valid UTF-8 (shortest forms, no surrogates,
 * nothing above U+10FFFF) with no byte below 0x20. */
static int json_text_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k, j;
        if (s[i] < 0x20)
            return 0;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            k = 2;
            cp = s[i] & 0x1Fu;
        } else if ((s[i] & 0xF0) == 0xE0) {
            k = 3;
            cp = s[i] & 0x0Fu;
        } else if ((s[i] & 0xF8) == 0xF0) {
            k = 4;
            cp = s[i] & 0x07u;
        } else {
            return 0;
        }
        if (n - i < k)
            return 0;
        for (j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3Fu);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
            (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k;
    }
    return 1;
}

/*
 * Walks the elements under cursor c (inside [lo, hi)), re-encoding each one
 * through the typed writer into typed; returns the element count. depth is
 * the nesting depth of the elements walked.
 */
static size_t walk(ember_rec_cursor c, const uint8_t *lo, const uint8_t *hi,
                   unsigned depth, ember_buf *typed)
{
    ember_value v = {0};
    ember_status s;
    size_t n = 0;
    CHECK(depth <= EMBER_REC_MAX_DEPTH + 1);
    while ((s = ember_rec_next(&c, &v)) == EMBER_OK) {
        size_t mark = typed->len;
        n++;
        CHECK(v.enc >= lo && v.enc_len >= 1 &&
              v.enc_len <= (size_t)(hi - v.enc));
        CHECK(v.enc + v.enc_len == c.p);
        switch (v.type) {
        case EMBER_TYPE_NULL:
            CHECK(v.enc_len == 1);
            CHECK(ember_rec_put_null(typed) == EMBER_OK);
            break;
        case EMBER_TYPE_BOOL:
            CHECK(v.enc_len == 1 && (v.u.boolean == 0 || v.u.boolean == 1));
            CHECK(ember_rec_put_bool(typed, v.u.boolean) == EMBER_OK);
            break;
        case EMBER_TYPE_INT:
            CHECK(ember_rec_put_int(typed, v.u.i64) == EMBER_OK);
            break;
        case EMBER_TYPE_DOUBLE:
            CHECK(v.enc_len == 9);
            CHECK(ember_rec_put_double(typed, v.u.f64) == EMBER_OK);
            break;
        case EMBER_TYPE_STRING:
        case EMBER_TYPE_BYTES: {
            uint8_t *tmp;
            size_t got;
            CHECK(v.u.str.raw == v.enc + 1);
            CHECK(v.u.str.raw_len == v.enc_len - 2);
            CHECK(v.u.str.len <= v.u.str.raw_len);
            tmp = (uint8_t *)malloc(v.u.str.len + 1);
            CHECK(tmp != NULL);
            got = ember_rec_string_copy(&v, tmp, v.u.str.len);
            CHECK(got == v.u.str.len);
            if (v.u.str.raw_len == v.u.str.len)
                CHECK(got == 0 || memcmp(tmp, v.u.str.raw, got) == 0);
            if (v.type == EMBER_TYPE_STRING)
                CHECK(ember_rec_put_string(typed, (const char *)tmp, got) ==
                      EMBER_OK);
            else
                CHECK(ember_rec_put_bytes(typed, tmp, got) == EMBER_OK);
            free(tmp);
            break;
        }
        case EMBER_TYPE_TUPLE:
            CHECK(depth < EMBER_REC_MAX_DEPTH);
            CHECK(v.u.tuple.raw == v.enc + 1);
            CHECK(v.u.tuple.raw_len == v.enc_len - 2);
            CHECK(ember_rec_tuple_begin(typed) == EMBER_OK);
            (void)walk(ember_rec_tuple_cursor(&v), v.enc + 1,
                       v.enc + v.enc_len - 1, depth + 1, typed);
            CHECK(ember_rec_tuple_end(typed) == EMBER_OK);
            break;
        default: CHECK(0 && "unknown type");
        }
        /* canonical: the typed re-encoding is the element's own bytes */
        CHECK(typed->len - mark == v.enc_len);
        CHECK(memcmp(typed->data + mark, v.enc, v.enc_len) == 0);
        {
            /* a single value renders on its own */
            ember_buf j = ember_buf_heap();
            CHECK(ember_rec_json_value(&j, &v) == EMBER_OK);
            CHECK(json_text_ok(j.data, j.len));
            ember_buf_release(&j);
        }
    }
    /* the input was validated as a whole, so no element is refused */
    CHECK(s == EMBER_END);
    return n;
}

static void check_invalid(const uint8_t *data, size_t size)
{
    ember_rec_cursor c = ember_rec_cursor_init(data, size);
    ember_buf out = ember_buf_heap();
    ember_value v = {0};
    ember_status s;
    size_t n = 0, i;
    while ((s = ember_rec_next(&c, &v)) == EMBER_OK)
        n++;
    CHECK(s == EMBER_EINVAL);
    {
        const uint8_t *at = c.p;
        CHECK(ember_rec_next(&c, &v) == EMBER_EINVAL && c.p == at);
    }
    /* get agrees: the n elements before the bad one are fine */
    for (i = 0; i < n && i < 64; i++)
        CHECK(ember_rec_get(data, size, i, &v) == EMBER_OK);
    CHECK(ember_rec_get(data, size, n, &v) == EMBER_EINVAL);
    CHECK(ember_buf_put_u8(&out, '#') == EMBER_OK);
    CHECK(ember_rec_json(&out, data, size) == EMBER_EINVAL);
    CHECK(out.len == 1);
    ember_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ember_buf typed, copy, json;
    ember_rec_cursor c;
    ember_value v = {0};
    size_t count = (size_t)-1, n, i;

    static const uint8_t empty[1];
    if (data == NULL) {
        if (size > 0)
            return 0;
        data = empty; /* keeps pointer arithmetic below well-defined */
    }
    if (ember_rec_validate(data, size, &count) != EMBER_OK) {
        CHECK(count == (size_t)-1);
        check_invalid(data, size);
        return 0;
    }
    accepted++;

    /* walk with cursors, recursing into tuples; typed re-encoding */
    typed = ember_buf_heap();
    n = walk(ember_rec_cursor_init(data, size), data, data + size, 0, &typed);
    CHECK(n == count);
    CHECK(typed.len == size);
    CHECK(size == 0 || memcmp(typed.data, data, size) == 0);
    ember_buf_release(&typed);

    /* put_value of every top-level element gives back the input */
    copy = ember_buf_heap();
    c = ember_rec_cursor_init(data, size);
    i = 0;
    while (ember_rec_next(&c, &v) == EMBER_OK) {
        ember_value g = {0};
        CHECK(ember_rec_get(data, size, i, &g) == EMBER_OK);
        CHECK(g.enc == v.enc && g.enc_len == v.enc_len && g.type == v.type);
        CHECK(ember_rec_put_value(&copy, &v) == EMBER_OK);
        i++;
    }
    CHECK(i == count);
    CHECK(ember_rec_get(data, size, count, &v) == EMBER_ENOTFOUND);
    CHECK(copy.len == size);
    CHECK(size == 0 || memcmp(copy.data, data, size) == 0);
    ember_buf_release(&copy);

    /* order: equal to itself, a proper prefix sorts first */
    CHECK(ember_rec_compare(data, size, data, size) == 0);
    if (size > 0) {
        CHECK(ember_rec_compare(data, size - 1, data, size) == -1);
        CHECK(ember_rec_compare(data, size, data, size - 1) == 1);
    }

    /* JSON: renders, is clean text, and a too-small buffer is refused */
    json = ember_buf_heap();
    CHECK(ember_rec_json(&json, data, size) == EMBER_OK);
    CHECK(json.len >= 2 && json.data[0] == '[' && json.data[json.len - 1] == ']');
    CHECK(json_text_ok(json.data, json.len));
    {
        size_t cap = json.len - 1;
        uint8_t *mem = (uint8_t *)malloc(cap);
        ember_buf fixed;
        CHECK(mem != NULL);
        fixed = ember_buf_fixed(mem, cap);
        CHECK(ember_rec_json(&fixed, data, size) == EMBER_ENOSPC);
        CHECK(fixed.len == 0);
        free(mem);
    }
    ember_buf_release(&json);
    return 0;
}

#ifdef EMBER_FUZZ_REPLAY

/* Hand-made valid records: the seed corpus. */
static const uint8_t seed0[] = {0x01, 0x02, 0x03};
static const uint8_t seed1[] = {0x14, 0x15, 0x01, 0x13, 0xFE, 0x16, 0x01,
                                0x00, 0x12, 0xFE, 0xFF};
static const uint8_t seed2[] = {0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                0xFF, 0x1C, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                0xFF, 0xFF};
static const uint8_t seed3[] = {0x20, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                0xFF, 0x20, 0x80, 0, 0, 0, 0, 0, 0, 0,
                                0x20, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0,
                                0x20, 0xBF, 0xF8, 0, 0, 0, 0, 0, 0};
static const uint8_t seed4[] = {0x28, 'h', 'i', 0x00, 0xFF, 0xC3, 0xA9, 0x00,
                                0x29, 0x00, 0xFF, 0xFF, 0x00, 0x28, 0x00};
static const uint8_t seed5[] = {0x30, 0x15, 0x01, 0x30, 0x01, 0x30, 0x00, 0x00,
                                0x28, 'x', 0x00, 0x00, 0x30, 0x00};
static const uint8_t seed6[] = {0x28, 'k', 'e', 'y', 0x00, 0x30, 0x20, 0xC0,
                                0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18,
                                0x29, 0x01, 0x02, 0x00, 0x03, 0x00};
static const uint8_t seed7[] = {0x30, 0x30, 0x30, 0x30, 0x14, 0x00, 0x00,
                                0x00, 0x00};

#define SEED(i) {"seed-0" #i, seed##i, sizeof seed##i}
static const em_fuzz_seed seeds[] = {
    SEED(0), SEED(1), SEED(2), SEED(3), SEED(4), SEED(5), SEED(6), SEED(7),
};
#define NSEEDS (sizeof seeds / sizeof seeds[0])

/* One edit of em_fuzz_edit, or (one time in seven) another seed appended:
 * a valid record followed by a valid record stays valid. */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
    static const uint8_t tags[] = {0x00, 0x01, 0x02, 0x03, 0x0C, 0x13, 0x14,
                                   0x15, 0x1C, 0x20, 0x28, 0x29, 0x30, 0xFF};
    size_t at = *n ? em_fuzz_below(*n) : 0;
    unsigned op = (unsigned)em_fuzz_below(7);
    if (op == 5) {
        const em_fuzz_seed *s = &seeds[em_fuzz_below(NSEEDS)];
        (void)em_fuzz_insert(buf, n, cap, *n, s->data, s->len);
    } else {
        em_fuzz_edit(buf, n, cap, at, op, tags, sizeof tags);
    }
}

int main(int argc, char **argv)
{
    static const em_fuzz_target target = {
        "record_fuzz_replay", seeds, NSEEDS, 50000, 256, 0, mutate,
        &accepted, "valid"};
    return em_fuzz_replay_main(&target, argc, argv);
}

#endif /* EMBER_FUZZ_REPLAY */
