/*
 * std.c — the standard function library: plugin "std" (its descriptor) and
 * the helpers its files share (std_internal.h).
 *
 * Components (all kind "function"; MAP functions see docs/plugin-sdk.md,
 * "How operations call functions", for what each operation expects):
 *   std.identity       MAP     every record unchanged
 *   std.split_words    MAP     a record whose first element is a string ->
 *                              one (word) record per run of bytes that are
 *                              not ASCII white space (" \t\n\v\f\r")
 *   std.pair_with      MAP     record r -> (r's first element, the argument)
 *   std.sum            REDUCE  sum of int/double values
 *   std.count          REDUCE  number of values (the accumulator is the
 *                              count so far)
 *   std.lines          MAP     a one-string record -> one record per line
 *                              (split on '\n', a trailing '\r' removed)
 *   std.split_fields   MAP     a one-string record -> one record of its
 *                              fields; the argument is the delimiter
 *                              (default "\t")
 *   std.parse_numbers  MAP     top-level strings that are decimal numbers
 *                              -> int or double; other elements unchanged
 *   std.swap           MAP     a pair (a, b) -> (b, a)
 *   std.hash           MAP     record -> (ember_hash64 of its bytes)
 *   std.compare        MAP     record -> (first element OP value): bool;
 *                              the argument is (op, value)
 *   std.contains       MAP     a one-string record -> (has the argument as
 *                              a substring): bool
 *   std.min, std.max   REDUCE  the smallest / largest record (typed order)
 *   std.concat         REDUCE  strings (or bytes) concatenated
 *
 * The functions live in std_pairs.c, std_text.c, std_predicates.c and
 * std_reduce.c. Everything works a batch at a time and allocates nothing
 * per record: output records are written straight into the caller's `out`
 * buffer (see ember_batch_frame_begin / _end). All functions are
 * stateless or have immutable state after open, so any number of tasks
 * may run them at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "std_internal.h"

/* ------------------------------------------------------------------------
 * Output framing.
 * ---------------------------------------------------------------------- */

ember_status std_put_raw_string(ember_buf *out, uint8_t tag,
                                const uint8_t *raw, size_t raw_len)
{
    ember_status s;
    if (raw_len > SIZE_MAX - 2)
        return out->grow ? EMBER_ENOMEM : EMBER_ENOSPC;
    s = ember_buf_reserve(out, raw_len + 2);
    if (s != EMBER_OK)
        return s;
    out->data[out->len] = tag;
    if (raw_len)
        memcpy(out->data + out->len + 1, raw, raw_len);
    out->data[out->len + 1 + raw_len] = 0x00;
    out->len += raw_len + 2;
    return EMBER_OK;
}

ember_status std_end_record(ember_buf *out, size_t mark, ember_status s,
                            uint64_t *out_count, const char *fn,
                            ember_error *err)
{
    if (s == EMBER_OK)
        s = ember_batch_frame_end(out, mark);
    if (s != EMBER_OK) {
        out->len = mark;
        return std_out_error(err, fn, s);
    }
    (*out_count)++;
    return EMBER_OK;
}

ember_status std_put_bool_record(ember_buf *out, int value)
{
    uint8_t rec[2] = {1, (uint8_t)(value ? EMBER_REC_TAG_TRUE
                                         : EMBER_REC_TAG_FALSE)};
    return ember_buf_append(out, rec, sizeof rec);
}

/* ------------------------------------------------------------------------
 * Errors.
 * ---------------------------------------------------------------------- */

ember_status std_fail(ember_error *err, ember_status code, const char *fn,
                      const char *noun, uint64_t index, const char *fmt, ...)
{
    char what[EMBER_ERROR_MAX];
    va_list ap;
    if (err == NULL)
        return code;
    va_start(ap, fmt);
    if (vsnprintf(what, sizeof what, fmt, ap) < 0)
        what[0] = '\0';
    va_end(ap);
    if (index == STD_ACC)
        return ember_errorf(err, code, "std.%s: %s (the accumulator)", fn,
                            what);
    return ember_errorf(err, code, "std.%s: %s (%s %llu)", fn, what, noun,
                        (unsigned long long)index);
}

ember_status std_malformed(ember_error *err, const char *fn, const char *noun,
                           uint64_t index)
{
    if (index != STD_ACC && strcmp(noun, "record") == 0)
        return ember_errorf(err, EMBER_EINVAL, "std.%s: malformed record %llu",
                            fn, (unsigned long long)index);
    return std_fail(err, EMBER_EINVAL, fn, noun, index, "malformed record");
}

ember_status std_frame_error(ember_error *err, const char *fn, uint64_t good)
{
    return ember_errorf(err, EMBER_EINVAL,
                        "std.%s: malformed batch: bad record frame after "
                        "%llu records",
                        fn, (unsigned long long)good);
}

ember_status std_out_error(ember_error *err, const char *fn, ember_status s)
{
    return ember_errorf(err, s, "std.%s: cannot append to the output: %s", fn,
                        ember_status_name(s));
}

/* ------------------------------------------------------------------------
 * Reading inputs.
 * ---------------------------------------------------------------------- */

ember_status std_want_type(const ember_value *v, uint32_t type,
                           const char *fn, const char *want,
                           ember_error *err)
{
    if (v->type == type)
        return EMBER_OK;
    return ember_errorf(err, EMBER_EINVAL, "std.%s: %s, got %s", fn, want,
                        ember_type_name(v->type));
}

ember_status std_single_value(const uint8_t *rec, size_t len, ember_value *v,
                              const char *fn, const char *what,
                              const char *noun, uint64_t index,
                              ember_error *err)
{
    size_t count = 0;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK)
        return std_malformed(err, fn, noun, index);
    if (count != 1)
        return std_fail(err, EMBER_EINVAL, fn, noun, index,
                        "expected a record of one %s, got %zu elements", what,
                        count);
    if (ember_rec_get(rec, len, 0, v) != EMBER_OK)
        return std_malformed(err, fn, noun, index);
    return EMBER_OK;
}

ember_status std_one_string(const uint8_t *rec, size_t len, ember_value *v,
                            const char *fn, uint64_t index, ember_error *err)
{
    ember_status s =
        std_single_value(rec, len, v, fn, "string", "record", index, err);
    if (s != EMBER_OK)
        return s;
    if (v->type != EMBER_TYPE_STRING)
        return std_fail(err, EMBER_EINVAL, fn, "record", index,
                        "expected a string, got %s", ember_type_name(v->type));
    return EMBER_OK;
}

ember_status std_first_value(const uint8_t *rec, size_t len, ember_value *v,
                             const char *fn, uint64_t index,
                             ember_error *err)
{
    ember_status s = ember_rec_get(rec, len, 0, v);
    if (s == EMBER_ENOTFOUND)
        return ember_errorf(err, EMBER_EINVAL, "std.%s: record %llu is empty",
                            fn, (unsigned long long)index);
    if (s != EMBER_OK)
        return std_malformed(err, fn, "record", index);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * Opened state.
 * ---------------------------------------------------------------------- */

ember_status std_open_check(const ember_host_api *host, void **state,
                            const char *fn, ember_error *err)
{
    if (state == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free))
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: open: no host services", fn);
    *state = NULL;
    return EMBER_OK;
}

ember_status std_open_arg(const ember_host_api *host, void **state,
                          const uint8_t *arg, size_t arg_len, size_t want,
                          const char *fn, const char *shape,
                          ember_value *values, ember_error *err)
{
    ember_rec_cursor rc;
    size_t count = 0, i;
    ember_status s = std_open_check(host, state, fn, err);
    if (s != EMBER_OK)
        return s;
    if (arg == NULL || arg_len == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: missing argument: expected %s", fn,
                            shape);
    if (ember_rec_validate(arg, arg_len, &count) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: bad argument: %zu bytes that are not an "
                            "encoded record (expected %s)",
                            fn, arg_len, shape);
    if (count != want)
        return ember_errorf(err, EMBER_EINVAL,
                            "std.%s: bad argument: expected %s, got %zu "
                            "values",
                            fn, shape, count);
    rc = ember_rec_cursor_init(arg, arg_len);
    for (i = 0; i < want; i++)
        if (ember_rec_next(&rc, &values[i]) != EMBER_OK)
            return ember_errorf(err, EMBER_EINTERNAL,
                                "std.%s: cannot read a validated argument",
                                fn);
    return EMBER_OK;
}

ember_status std_state_new(const ember_host_api *host, size_t size,
                           const char *fn, void **state, ember_error *err)
{
    std_state_head *head =
        host->alloc(size < sizeof *head ? sizeof *head : size);
    if (head == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "std.%s: out of memory", fn);
    head->host = host;
    *state = head;
    return EMBER_OK;
}

void std_state_free(void *state)
{
    std_state_head *head = state;
    if (head)
        head->host->free(head);
}

/* ------------------------------------------------------------------------
 * The substring finder.
 * ---------------------------------------------------------------------- */

void std_finder_init(std_finder *f, const uint8_t *needle, size_t len)
{
    size_t i;
    f->needle = needle;
    f->len = len;
    for (i = 0; i < 256; i++)
        f->skip[i] = len;
    for (i = 0; i + 1 < len; i++)
        f->skip[needle[i]] = len - 1 - i;
}

/* The first match at or after `from`, escape pairs not considered. */
static size_t find_bytes(const std_finder *f, const uint8_t *hay, size_t n,
                         size_t from)
{
    size_t m = f->len, i;
    if (m == 0)
        return from <= n ? from : SIZE_MAX;
    if (from > n || n - from < m)
        return SIZE_MAX;
    if (m == 1) {
        const uint8_t *p = memchr(hay + from, f->needle[0], n - from);
        return p ? (size_t)(p - hay) : SIZE_MAX;
    }
    i = from;
    while (i <= n - m) {
        uint8_t last = hay[i + m - 1];
        if (last == f->needle[m - 1] && memcmp(hay + i, f->needle, m - 1) == 0)
            return i;
        i += f->skip[last];
    }
    return SIZE_MAX;
}

size_t std_find(const std_finder *f, const uint8_t *hay, size_t n,
                size_t from)
{
    for (;;) {
        size_t at = find_bytes(f, hay, n, from);
        /* In escaped form 0x00 only ever starts a pair 0x00 0xFF, so a
         * match right after a 0x00 begins on that pair's second byte. */
        if (at == SIZE_MAX || at == 0 || hay[at - 1] != 0x00)
            return at;
        from = at + 1;
    }
}

/* ------------------------------------------------------------------------
 * The plugin.
 * ---------------------------------------------------------------------- */

static const ember_component std_components[] = {
    EMBER_FUNCTION_COMPONENT("identity", "map: every record unchanged",
                             &std_identity_vtable),
    EMBER_FUNCTION_COMPONENT("split_words",
                             "map: a record whose first element is a string "
                             "-> one (word) record per run of bytes that are "
                             "not ASCII white space",
                             &std_split_words_vtable),
    EMBER_FUNCTION_COMPONENT("pair_with",
                             "map: record r -> (first element of r, v); the "
                             "argument is an encoded record holding v",
                             &std_pair_with_vtable),
    EMBER_FUNCTION_COMPONENT("sum",
                             "reduce: sum of int/double values (int64 with "
                             "overflow check; double if any is a double)",
                             &std_sum_vtable),
    EMBER_FUNCTION_COMPONENT("count",
                             "reduce: number of values; the accumulator is "
                             "the count so far (an int)",
                             &std_count_vtable),
    EMBER_FUNCTION_COMPONENT("lines",
                             "map: a one-string record -> one string record "
                             "per line (split on \\n, a trailing \\r removed)",
                             &std_lines_vtable),
    EMBER_FUNCTION_COMPONENT("split_fields",
                             "map: a one-string record -> one record of its "
                             "fields; the argument (string) is the delimiter, "
                             "default tab",
                             &std_split_fields_vtable),
    EMBER_FUNCTION_COMPONENT("parse_numbers",
                             "map: top-level strings holding a decimal number "
                             "become ints or doubles; the rest unchanged",
                             &std_parse_numbers_vtable),
    EMBER_FUNCTION_COMPONENT("swap", "map: a pair (a, b) -> (b, a)",
                             &std_swap_vtable),
    EMBER_FUNCTION_COMPONENT("hash",
                             "map: record -> (ember_hash64 of its bytes, as "
                             "an int)",
                             &std_hash_vtable),
    EMBER_FUNCTION_COMPONENT("compare",
                             "map: record -> (first element OP value), a "
                             "bool; the argument is (op, value), op one of "
                             "lt le eq ne ge gt",
                             &std_compare_vtable),
    EMBER_FUNCTION_COMPONENT("contains",
                             "map: a one-string record -> (true) when it "
                             "contains the argument (a string), else (false)",
                             &std_contains_vtable),
    EMBER_FUNCTION_COMPONENT("min",
                             "reduce: the smallest value record (typed "
                             "order)",
                             &std_min_vtable),
    EMBER_FUNCTION_COMPONENT("max",
                             "reduce: the largest value record (typed order)",
                             &std_max_vtable),
    EMBER_FUNCTION_COMPONENT("concat",
                             "reduce: string values (or bytes values) "
                             "concatenated",
                             &std_concat_vtable),
};

EMBER_PLUGIN(std, "0.1.0", "the standard function library", "Apache-2.0",
             std_components, NULL, NULL);
