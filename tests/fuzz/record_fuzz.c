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
 * -DEMBER_RECORD_FUZZ_MAIN it gets a plain main instead:
 *     record_fuzz_replay                   seeds + deterministic mutations
 *     record_fuzz_replay FILE...           replays the given inputs
 *     record_fuzz_replay --write-seeds DIR writes the seed corpus to DIR
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "record_fuzz:%d: check failed: %s\n", __LINE__,  \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

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

#ifdef EMBER_RECORD_FUZZ_MAIN

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

static const struct {
    const uint8_t *p;
    size_t n;
} seeds[] = {
    {seed0, sizeof seed0}, {seed1, sizeof seed1}, {seed2, sizeof seed2},
    {seed3, sizeof seed3}, {seed4, sizeof seed4}, {seed5, sizeof seed5},
    {seed6, sizeof seed6}, {seed7, sizeof seed7},
};
#define NSEEDS (sizeof seeds / sizeof seeds[0])

static uint64_t rng_state = 1;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

#define MUT_MAX 256

/* Applies one random edit to buf[0..*n) (capacity MUT_MAX). */
static void mutate(uint8_t *buf, size_t *n)
{
    static const uint8_t tags[] = {0x00, 0x01, 0x02, 0x03, 0x0C, 0x13, 0x14,
                                   0x15, 0x1C, 0x20, 0x28, 0x29, 0x30, 0xFF};
    size_t at = *n ? rng_below(*n) : 0;
    switch (rng_below(7)) {
    case 0: /* flip a bit */
        if (*n)
            buf[at] ^= (uint8_t)(1u << rng_below(8));
        break;
    case 1: /* overwrite with an interesting byte */
        if (*n)
            buf[at] = tags[rng_below(sizeof tags)];
        break;
    case 2: /* insert a byte */
        if (*n < MUT_MAX) {
            memmove(buf + at + 1, buf + at, *n - at);
            buf[at] = rng_below(2) ? tags[rng_below(sizeof tags)]
                                   : (uint8_t)rng_next();
            (*n)++;
        }
        break;
    case 3: /* delete a byte */
        if (*n) {
            memmove(buf + at, buf + at + 1, *n - at - 1);
            (*n)--;
        }
        break;
    case 4: /* truncate */
        *n = at;
        break;
    case 5: { /* append another seed (a valid record stays valid) */
        size_t k = rng_below(NSEEDS);
        if (*n + seeds[k].n <= MUT_MAX) {
            memcpy(buf + *n, seeds[k].p, seeds[k].n);
            *n += seeds[k].n;
        }
        break;
    }
    default: { /* duplicate a chunk in place */
        size_t len = 1 + rng_below(8);
        if (at + len <= *n && *n + len <= MUT_MAX) {
            memmove(buf + at + len, buf + at, *n - at);
            *n += len;
        }
        break;
    }
    }
}

static int write_seeds(const char *dir)
{
    size_t i;
    for (i = 0; i < NSEEDS; i++) {
        char path[4096];
        FILE *f;
        if (snprintf(path, sizeof path, "%s/seed-%02u", dir, (unsigned)i) >=
            (int)sizeof path)
            return 1;
        f = fopen(path, "wb");
        if (f == NULL || fwrite(seeds[i].p, 1, seeds[i].n, f) != seeds[i].n) {
            perror(path);
            if (f)
                fclose(f);
            return 1;
        }
        if (fclose(f) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        perror(path);
        return 1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 4096;
            p = (uint8_t *)realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return 1;
            }
            data = p;
        }
        got = fread(data + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    fclose(f);
    (void)LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t buf[MUT_MAX];
    size_t i, valid = 0, runs = 0;
    int a;
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    if (argc > 1) {
        for (a = 1; a < argc; a++)
            if (replay_file(argv[a]) != 0)
                return 1;
        printf("record_fuzz_replay: %d file(s) ok\n", argc - 1);
        return 0;
    }
    for (i = 0; i < NSEEDS; i++) {
        CHECK(ember_rec_validate(seeds[i].p, seeds[i].n, NULL) == EMBER_OK);
        (void)LLVMFuzzerTestOneInput(seeds[i].p, seeds[i].n);
        runs++;
    }
    (void)LLVMFuzzerTestOneInput(NULL, 0);
    for (i = 0; i < 50000; i++) {
        size_t k = rng_below(NSEEDS), n = seeds[k].n, m, edits;
        memcpy(buf, seeds[k].p, n);
        edits = 1 + rng_below(4);
        for (m = 0; m < edits; m++)
            mutate(buf, &n);
        if (ember_rec_validate(buf, n, NULL) == EMBER_OK)
            valid++;
        /* an exact-size heap copy, so ASan sees any over-read */
        {
            uint8_t *exact = (uint8_t *)malloc(n ? n : 1);
            CHECK(exact != NULL);
            if (n)
                memcpy(exact, buf, n);
            (void)LLVMFuzzerTestOneInput(exact, n);
            free(exact);
        }
        runs++;
    }
    printf("record_fuzz_replay: %zu inputs, %zu valid, all consistent\n",
           runs, valid);
    return 0;
}

#endif /* EMBER_RECORD_FUZZ_MAIN */
