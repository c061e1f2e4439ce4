/*
 * client/json_record.c — records to and from the JSON of plan files and
 * `ember run` output. See json_record.h.
 */
#include "json_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/base64.h"
#include "ember/record.h"

/* Where we are inside the JSON value, for messages: "args.data[3][1]". */
typedef struct where_path {
    char text[192];
} where_path;

static void path_index(where_path *p, const where_path *parent, size_t i)
{
    snprintf(p->text, sizeof p->text, "%.160s[%zu]", parent->text, i);
}

static ember_status bad(ember_error *err, const where_path *p,
                        const char *what)
{
    return ember_errorf(err, EMBER_EINVAL, "%s%s%s", p->text,
                        p->text[0] ? ": " : "", what);
}

const char *em_json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static ember_status put_value(const json_t *j, const where_path *p,
                              unsigned depth, ember_buf *out,
                              ember_error *err);

/* The items of array a, each as one element (the body of a record or of a
 * tuple). */
static ember_status put_items(const json_t *a, const where_path *p,
                              unsigned depth, ember_buf *out,
                              ember_error *err)
{
    for (size_t i = 0; i < json_array_size(a); i++) {
        where_path q;
        path_index(&q, p, i);
        ember_status s = put_value(json_array_get(a, i), &q, depth, out, err);
        if (s != EMBER_OK)
            return s;
    }
    return EMBER_OK;
}

static ember_status put_bytes(const json_t *j, const where_path *p,
                              ember_buf *out, ember_error *err)
{
    const json_t *b64 = json_object_get(j, "base64");
    if (json_object_size(j) != 1 || !json_is_string(b64))
        return bad(err, p,
                   "an object is not a record value (only {\"base64\": "
                   "\"...\"} for bytes; write a tuple as an array)");
    uint8_t *data = NULL;
    size_t n = 0, at = 0;
    ember_status s = em_base64_decode(&data, &n, json_string_value(b64),
                                      json_string_length(b64), SIZE_MAX, &at);
    if (s == EMBER_EINVAL) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 "\"base64\" is not canonical base64 (at character %zu)", at);
        return bad(err, p, msg);
    }
    if (s != EMBER_OK)
        return ember_errorf(err, s, "out of memory");
    s = ember_rec_put_bytes(out, data, n);
    free(data);
    return s == EMBER_OK ? s : ember_errorf(err, s, "out of memory");
}

static ember_status put_value(const json_t *j, const where_path *p,
                              unsigned depth, ember_buf *out,
                              ember_error *err)
{
    ember_status s;
    switch (json_typeof(j)) {
    case JSON_NULL: s = ember_rec_put_null(out); break;
    case JSON_TRUE: s = ember_rec_put_bool(out, 1); break;
    case JSON_FALSE: s = ember_rec_put_bool(out, 0); break;
    case JSON_INTEGER:
        s = ember_rec_put_int(out, (int64_t)json_integer_value(j));
        break;
    case JSON_REAL: s = ember_rec_put_double(out, json_real_value(j)); break;
    case JSON_STRING:
        s = ember_rec_put_string(out, json_string_value(j),
                                 json_string_length(j));
        break;
    case JSON_OBJECT: return put_bytes(j, p, out, err);
    case JSON_ARRAY:
        if (depth >= EMBER_REC_MAX_DEPTH)
            return bad(err, p, "tuples nest deeper than 64");
        if ((s = ember_rec_tuple_begin(out)) != EMBER_OK)
            break;
        if ((s = put_items(j, p, depth + 1, out, err)) != EMBER_OK)
            return s;
        s = ember_rec_tuple_end(out);
        break;
    default:
        return bad(err, p, em_json_kind(j));
    }
    return s == EMBER_OK ? s : ember_errorf(err, s, "out of memory");
}

ember_status em_json_to_record(const json_t *j, const char *where,
                               ember_buf *out, ember_error *err)
{
    where_path p;
    snprintf(p.text, sizeof p.text, "%s", where ? where : "");
    size_t mark = out->len;
    ember_status s = !j ? bad(err, &p, "a record is needed")
                   : json_is_array(j) ? put_items(j, &p, 0, out, err)
                                      : put_value(j, &p, 0, out, err);
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

ember_status em_json_to_value(const json_t *j, const char *where,
                              ember_buf *out, ember_error *err)
{
    where_path p;
    snprintf(p.text, sizeof p.text, "%s", where ? where : "");
    size_t mark = out->len;
    ember_status s = !j ? bad(err, &p, "a value is needed")
                        : put_value(j, &p, 0, out, err);
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

ember_status em_record_to_json(ember_buf *out, const uint8_t *rec,
                               size_t len)
{
    size_t mark = out->len;
    ember_value v[3];
    size_t n = 0;
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    ember_status s = EMBER_OK;
    while (n < 3 && (s = ember_rec_next(&c, &v[n])) == EMBER_OK)
        n++;
    if (n < 3 && s != EMBER_END)
        return EMBER_EINVAL;
    if (n == 1) {
        s = ember_rec_json_value(out, &v[0]);
    } else if (n == 2) {
        s = ember_buf_append(out, "{\"key\":", 7);
        if (s == EMBER_OK)
            s = ember_rec_json_value(out, &v[0]);
        if (s == EMBER_OK)
            s = ember_buf_append(out, ",\"value\":", 9);
        if (s == EMBER_OK)
            s = ember_rec_json_value(out, &v[1]);
        if (s == EMBER_OK)
            s = ember_buf_put_u8(out, '}');
    } else {
        s = ember_rec_json(out, rec, len);
    }
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}
