/*
 * std_text.c — functions over text: std.split_words, std.lines,
 * std.split_fields, std.parse_numbers.
 *
 * Strings are cut in their escaped form (record.h writes 0x00 as 0x00
 * 0xFF): no separator byte is 0x00 or 0xFF, so a cut never falls inside an
 * escape pair, and each piece, written between a string tag and a
 * terminator as is, is exactly the encoding of the unescaped piece. Nothing
 * is decoded or copied aside.
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "std_internal.h"

/*
 * Appends the framed one-string record whose escaped payload is
 * raw[0..n). The body is n + 2 bytes (tag, payload, terminator), so the
 * frame length is written first. out->len unchanged on failure.
 */
static ember_status put_string_record(ember_buf *out, const uint8_t *raw,
                                      size_t n)
{
    size_t mark = out->len;
    ember_status s;
    if (n > SIZE_MAX - 2)
        return out->grow ? EMBER_ENOMEM : EMBER_ENOSPC;
    s = ember_uvarint_put(out, (uint64_t)n + 2);
    if (s == EMBER_OK)
        s = std_put_raw_string(out, (uint8_t)EMBER_REC_TAG_STRING, raw, n);
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/* ------------------------------------------------------------------------
 * std.split_words
 * ---------------------------------------------------------------------- */

/* ASCII white space: the separators of words (a table: one load per
 * byte of text). */
static const uint8_t space_table[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1};

static inline int is_space(uint8_t c)
{
    return space_table[c];
}

/*
 * For each input record, whose first element must be a string: one output
 * record holding one string per word, in order. Words are maximal runs of
 * bytes that are not ASCII white space; an empty or all-blank string gives
 * no records. Elements after the first are ignored.
 */
static ember_status split_words_one(void *ctx, const uint8_t *rec,
                                    size_t len, uint64_t index,
                                    ember_buf *out, uint64_t *out_count,
                                    ember_error *err)
{
    ember_value v;
    ember_status s = ember_rec_get(rec, len, 0, &v);
    (void)ctx;
    if (s == EMBER_ENOTFOUND)
        return std_fail(err, EMBER_EINVAL, "split_words", "record", index,
                        "expected a string, got an empty record");
    if (s != EMBER_OK)
        return std_malformed(err, "split_words", "record", index);
    if (v.type != EMBER_TYPE_STRING)
        return std_fail(err, EMBER_EINVAL, "split_words", "record", index,
                        "expected a string, got %s", ember_type_name(v.type));
    const uint8_t *p = v.u.str.raw;
    const uint8_t *end = p + v.u.str.raw_len;
    while (p < end) {
        while (p < end && is_space(*p))
            p++;
        const uint8_t *w = p;
        while (p < end && !is_space(*p))
            p++;
        if (p > w) {
            s = put_string_record(out, w, (size_t)(p - w));
            if (s != EMBER_OK)
                return std_out_error(err, "split_words", s);
            (*out_count)++;
        }
    }
    return EMBER_OK;
}

STD_MAP_FUNCTION(split_words, split_words_one, NULL, NULL, NULL, 0);

/* ------------------------------------------------------------------------
 * std.lines
 * ---------------------------------------------------------------------- */

/*
 * For each one-string record: one string record per line. Lines end at
 * '\n' (not included); a '\r' ending a line is removed (CRLF text); the
 * text after the last '\n' is a line when it is not empty. So "a\nb" and
 * "a\nb\n" both give "a", "b"; "\n" gives one empty line; "" gives none.
 */
static ember_status lines_one(void *ctx, const uint8_t *rec, size_t len,
                              uint64_t index, ember_buf *out,
                              uint64_t *out_count, ember_error *err)
{
    ember_value v;
    ember_status s = std_one_string(rec, len, &v, "lines", index, err);
    (void)ctx;
    if (s != EMBER_OK)
        return s;
    const uint8_t *p = v.u.str.raw;
    const uint8_t *end = p + v.u.str.raw_len;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        s = put_string_record(out, p, n);
        if (s != EMBER_OK)
            return std_out_error(err, "lines", s);
        (*out_count)++;
        p = nl ? nl + 1 : end;
    }
    return EMBER_OK;
}

STD_MAP_FUNCTION(lines, lines_one, NULL, NULL, NULL, 0);

/* ------------------------------------------------------------------------
 * std.split_fields
 * ---------------------------------------------------------------------- */

/* The opened split_fields: the delimiter (escaped form) and its finder. */
typedef struct split_fields_state {
    std_state_head head;
    std_finder finder; /* points into delim */
    size_t delim_len;
    uint8_t delim[];
} split_fields_state;

/* Used when there is no argument: the delimiter "\t" (a one-byte needle
 * uses memchr and no skip table). */
static const split_fields_state tab_fields = {
    .finder = {.needle = (const uint8_t *)"\t", .len = 1},
    .delim_len = 1,
};

/*
 * arg: none (the delimiter is "\t"), or an encoded record holding one
 * non-empty string, the delimiter. Without an argument *state stays NULL.
 */
static ember_status split_fields_open(const ember_host_api *host,
                                      const uint8_t *arg, size_t arg_len,
                                      void **state, ember_error *err)
{
    ember_value v;
    split_fields_state *st;
    ember_status s;
    if (state == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.split_fields: open: no state pointer");
    *state = NULL;
    if (arg == NULL || arg_len == 0)
        return EMBER_OK;
    s = std_open_arg(host, state, arg, arg_len, 1, "split_fields",
                     "an encoded record holding the delimiter (a string)", &v,
                     err);
    if (s != EMBER_OK)
        return s;
    s = std_want_type(&v, EMBER_TYPE_STRING, "split_fields",
                      "bad argument: the delimiter must be a string", err);
    if (s != EMBER_OK)
        return s;
    if (v.u.str.len == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.split_fields: bad argument: the delimiter "
                            "is empty");
    s = std_state_new(host, sizeof *st + v.u.str.raw_len, "split_fields",
                      state, err);
    if (s != EMBER_OK)
        return s;
    st = *state;
    st->delim_len = v.u.str.raw_len;
    memcpy(st->delim, v.u.str.raw, v.u.str.raw_len);
    std_finder_init(&st->finder, st->delim, st->delim_len);
    return EMBER_OK;
}

/*
 * For each one-string record: one record of k + 1 strings, the text
 * between k delimiters (empty fields kept, trailing ones too): "a,,b" ->
 * ("a", "", "b"), "" -> ("").
 */
static ember_status split_fields_one(void *ctx, const uint8_t *rec,
                                     size_t len, uint64_t index,
                                     ember_buf *out, uint64_t *out_count,
                                     ember_error *err)
{
    const split_fields_state *st = ctx;
    ember_value v;
    size_t mark, from = 0;
    ember_status s = std_one_string(rec, len, &v, "split_fields", index, err);
    if (s != EMBER_OK)
        return s;
    const uint8_t *raw = v.u.str.raw;
    size_t raw_len = v.u.str.raw_len;
    s = ember_batch_frame_begin(out, &mark);
    while (s == EMBER_OK) {
        size_t at = std_find(&st->finder, raw, raw_len, from);
        size_t stop = at == SIZE_MAX ? raw_len : at;
        s = std_put_raw_string(out, (uint8_t)EMBER_REC_TAG_STRING,
                               raw + from, stop - from);
        if (at == SIZE_MAX)
            break;
        from = at + st->delim_len;
    }
    return std_end_record(out, mark, s, out_count, "split_fields", err);
}

STD_MAP_FUNCTION(split_fields, split_fields_one, split_fields_open,
                 std_state_free, &tab_fields, 1);

/* ------------------------------------------------------------------------
 * std.parse_numbers
 * ---------------------------------------------------------------------- */

/* The opened parse_numbers: the "C" locale, for strtod. */
typedef struct parse_numbers_state {
    std_state_head head;
    locale_t c_locale;
} parse_numbers_state;

/* Makes the "C" numeric locale that map_batch switches to around strtod,
 * so the result does not depend on the process's LC_NUMERIC. */
static ember_status parse_numbers_open(const ember_host_api *host,
                                       const uint8_t *arg, size_t arg_len,
                                       void **state, ember_error *err)
{
    parse_numbers_state *st;
    ember_status s = std_open_check(host, state, "parse_numbers", err);
    (void)arg;
    if (s != EMBER_OK)
        return s;
    if (arg_len != 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.parse_numbers: takes no argument, got %zu "
                            "bytes",
                            arg_len);
    s = std_state_new(host, sizeof *st, "parse_numbers", state, err);
    if (s != EMBER_OK)
        return s;
    st = *state;
    st->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (st->c_locale == (locale_t)0) {
        std_state_free(st);
        *state = NULL;
        return ember_errorf(err, EMBER_ENOMEM,
                            "std.parse_numbers: cannot make the C locale");
    }
    return EMBER_OK;
}

/* Frees what parse_numbers_open made (NULL is a no-op). */
static void parse_numbers_close(void *state)
{
    parse_numbers_state *st = state;
    if (st) {
        freelocale(st->c_locale);
        std_state_free(st);
    }
}

/* Number kinds of a string. */
enum { NUM_NONE, NUM_INT, NUM_DOUBLE };

/* Skips decimal digits from *i; returns how many. */
static size_t skip_digits(const uint8_t *p, size_t n, size_t *i)
{
    size_t start = *i;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9')
        (*i)++;
    return *i - start;
}

/*
 * Classifies p[0..n): NUM_INT for [+-]?[0-9]+ within int64 (value in
 * *iv), NUM_DOUBLE for the rest of the decimal floating-point syntax
 * [+-]?(D+(.D*)?|.D+)([eE][+-]?D+)? (and for integers out of int64 range),
 * else NUM_NONE. No white space, no hex, no inf or nan.
 */
static int classify(const uint8_t *p, size_t n, int64_t *iv)
{
    size_t i = 0, int_digits, frac_digits = 0;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    int_digits = skip_digits(p, n, &i);
    if (i == n && int_digits > 0) {
        /* accumulate the magnitude as a negative number: -INT64_MIN does
         * not fit */
        int64_t acc = 0;
        size_t k;
        for (k = neg || p[0] == '+' ? 1 : 0; k < n; k++) {
            int d = p[k] - '0';
            if (acc < (INT64_MIN + d) / 10)
                return NUM_DOUBLE;
            acc = acc * 10 - d;
        }
        if (!neg) {
            if (acc == INT64_MIN)
                return NUM_DOUBLE;
            acc = -acc;
        }
        *iv = acc;
        return NUM_INT;
    }
    if (i < n && p[i] == '.') {
        i++;
        frac_digits = skip_digits(p, n, &i);
    }
    if (int_digits + frac_digits == 0)
        return NUM_NONE;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (skip_digits(p, n, &i) == 0)
            return NUM_NONE;
    }
    return i == n ? NUM_DOUBLE : NUM_NONE;
}

/*
 * Appends v, or the number it spells when it is a string in the syntax
 * classify accepts (a double only when finite). The caller has switched
 * to the C locale.
 */
static ember_status put_parsed(ember_buf *out, const ember_value *v)
{
    int64_t iv = 0;
    /* an escaped string holds a 0x00, so it is no number */
    if (v->type != EMBER_TYPE_STRING || v->u.str.raw_len != v->u.str.len ||
        v->u.str.len == 0)
        return ember_rec_put_value(out, v);
    switch (classify(v->u.str.raw, v->u.str.len, &iv)) {
    case NUM_INT: return ember_rec_put_int(out, iv);
    case NUM_DOUBLE: {
        /* The payload is followed by the string's 0x00 terminator in the
         * record, so strtod stops right after it. */
        char *end = NULL;
        double d = strtod((const char *)v->u.str.raw, &end);
        if (end == (const char *)v->u.str.raw + v->u.str.len && isfinite(d))
            return ember_rec_put_double(out, d);
        return ember_rec_put_value(out, v);
    }
    default: return ember_rec_put_value(out, v);
    }
}

/* One record -> the record with its numbers parsed (see
 * parse_numbers_map). */
static ember_status parse_numbers_one(void *ctx, const uint8_t *rec,
                                      size_t len, uint64_t index,
                                      ember_buf *out, uint64_t *out_count,
                                      ember_error *err)
{
    ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
    ember_value v;
    size_t mark;
    ember_status next = EMBER_END;
    ember_status s = ember_batch_frame_begin(out, &mark);
    (void)ctx;
    while (s == EMBER_OK && (next = ember_rec_next(&rc, &v)) == EMBER_OK)
        s = put_parsed(out, &v);
    if (s == EMBER_OK && next != EMBER_END) {
        out->len = mark;
        return std_malformed(err, "parse_numbers", "record", index);
    }
    return std_end_record(out, mark, s, out_count, "parse_numbers", err);
}

/*
 * Each record -> the same record with every top-level string that is a
 * whole decimal integer in int64 range turned into an int, and every other
 * one that is a finite decimal floating-point number turned into a double.
 * Other elements (nested tuples included) are copied unchanged.
 */
static ember_status parse_numbers_map(void *state, const ember_batch *in,
                                      ember_buf *out, uint64_t *out_count,
                                      ember_error *err)
{
    const parse_numbers_state *st = state;
    ember_status s;
    locale_t old;
    if (st == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.parse_numbers: called without open");
    old = uselocale(st->c_locale);
    if (old == (locale_t)0)
        return ember_errorf(err, EMBER_EINTERNAL,
                            "std.parse_numbers: cannot switch to the C "
                            "locale");
    s = std_each_record(in, out, out_count, err, "parse_numbers",
                        parse_numbers_one, NULL);
    uselocale(old);
    return s;
}

STD_MAP_VTABLE(parse_numbers, parse_numbers_map, parse_numbers_open,
               parse_numbers_close);
