/*
 * logparse — an example custom transformation (USERS.md, journey 1).
 *
 * logparse.parse turns access-log lines "METHOD PATH STATUS BYTES" into
 * pairs ("METHOD PATH", BYTES), ready for reduce_by_key(std.sum). A line
 * that does not parse fails the task with the line in the message.
 *
 * Build it with CMake (ember_add_plugin, see CMakeLists.txt) or plain cc:
 *   cc -O2 -shared -fPIC $(pkg-config --cflags ember-sdk) \
 *      -o logparse.so logparse.c
 */
#include <ember/sdk.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 4096

/* Splits line[0..n) at blanks into at most 4 fields; returns the count. */
static int fields(const char *line, size_t n, const char **f, size_t *flen)
{
    int k = 0;
    size_t i = 0;
    while (i < n && k < 5) {
        while (i < n && line[i] == ' ')
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && line[i] != ' ')
            i++;
        if (k < 4) {
            f[k] = line + start;
            flen[k] = i - start;
        }
        k++;
    }
    return k;
}

/* Parses a run of decimal digits; -1 if empty, not digits, or too big. */
static int64_t number(const char *s, size_t n)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* One record in, one pair out. */
static ember_status parse_one(const uint8_t *rec, size_t len, ember_buf *out,
                              ember_error *err)
{
    ember_value v;
    if (ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_STRING)
        return ember_errorf(err, EMBER_EINVAL,
                            "logparse.parse: expected a string record");
    char line[MAX_LINE];
    if (v.u.str.len > sizeof line)
        return ember_errorf(err, EMBER_EINVAL,
                            "logparse.parse: line longer than %d bytes",
                            MAX_LINE);
    size_t n = ember_rec_string_copy(&v, line, sizeof line);
    const char *f[4];
    size_t flen[4];
    int64_t bytes = -1;
    if (fields(line, n, f, flen) == 4 && number(f[2], flen[2]) >= 0)
        bytes = number(f[3], flen[3]);
    if (bytes < 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "logparse.parse: not 'METHOD PATH STATUS BYTES': "
                            "'%.200s'",
                            line);
    /* key = "METHOD PATH" as it stands in the line (one blank between). */
    char key[MAX_LINE];
    size_t klen = flen[0] + 1 + flen[1];
    memcpy(key, f[0], flen[0]);
    key[flen[0]] = ' ';
    memcpy(key + flen[0] + 1, f[1], flen[1]);

    uint8_t scratch[MAX_LINE + 32];
    ember_buf pair = ember_buf_fixed(scratch, sizeof scratch);
    ember_status s = ember_rec_put_string(&pair, key, klen);
    if (s == EMBER_OK)
        s = ember_rec_put_int(&pair, bytes);
    if (s == EMBER_OK)
        s = ember_batch_append(out, pair.data, pair.len);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "logparse.parse: output buffer full");
    return EMBER_OK;
}

static ember_status parse_batch(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        if ((s = parse_one(rec, len, out, err)) != EMBER_OK)
            return s;
        (*out_count)++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, s, "logparse.parse: malformed batch");
    return EMBER_OK;
}

static const ember_function_vtable parse_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = parse_batch,
};

static const ember_component components[] = {
    EMBER_FUNCTION_COMPONENT("parse", "access-log line -> (\"METHOD PATH\", bytes)",
                             &parse_vt),
};

EMBER_PLUGIN(logparse, "1.0.0", "access-log parsing for ember", "Apache-2.0",
             components, NULL, NULL);
