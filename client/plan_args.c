/*
 * client/plan_args.c — operation arguments of plan files. See
 * plan_args.h.
 */
#include "plan_args.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dag/base64.h"
#include "ember/batch.h"
#include "ember/record.h"
#include "json_record.h"

ember_status em_plan_blob(const json_t *obj, const char *field,
                          uint8_t **out, size_t *len, ember_error *err)
{
    *out = NULL;
    *len = 0;
    const json_t *arg = json_object_get(obj, "arg");
    const json_t *value = json_object_get(obj, "value");
    if (arg && value)
        return ember_errorf(err, EMBER_EINVAL, "%s: give \"arg\" (base64) "
                            "or \"value\" (a record), not both", field);
    if (arg) {
        if (!json_is_string(arg))
            return ember_errorf(err, EMBER_EINVAL, "%s.arg must be a base64 "
                                "string, got %s", field, em_json_kind(arg));
        size_t at = 0;
        ember_status st = em_base64_decode(out, len, json_string_value(arg),
                                           json_string_length(arg),
                                           EM_PLAN_MAX_BLOB, &at);
        if (st == EMBER_EINVAL)
            return ember_errorf(err, st, "%s.arg is not canonical base64 "
                                "(at character %zu)", field, at);
        if (st == EMBER_ENOSPC)
            return ember_errorf(err, EMBER_EINVAL, "%s.arg is over 64 MiB",
                                field);
        if (st != EMBER_OK)
            return ember_errorf(err, st, "out of memory");
        return EMBER_OK;
    }
    if (!value)
        return EMBER_OK;
    char where[96];
    snprintf(where, sizeof where, "%s.value", field);
    ember_buf b = ember_buf_heap();
    ember_status st = em_json_to_record(value, where, &b, err);
    if (st == EMBER_OK && b.len > EM_PLAN_MAX_BLOB)
        st = ember_errorf(err, EMBER_EINVAL, "%s is over 64 MiB encoded",
                          where);
    if (st != EMBER_OK) {
        ember_buf_release(&b);
        return st;
    }
    *out = b.data;
    *len = b.len;
    return EMBER_OK;
}

/* ---- sample_by_key's fractions ----------------------------------------- */

/* A key read, for finding one given twice. */
typedef struct frac_key {
    size_t off, len; /* the key's encoding in the output buffer */
    const uint8_t *p; /* set once the buffer stops moving */
    size_t item;      /* its position in the JSON */
} frac_key;

static int key_cmp(const void *a, const void *b)
{
    const frac_key *x = a, *y = b;
    int c = ember_rec_compare(x->p, x->len, y->p, y->len);
    if (c != 0)
        return c;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Names an item: args.fractions["a"] by its key in an object, else
 * "args.fractions[2]". */
static void item_name(char *out, size_t cap, const char *field,
                      const char *key, size_t i)
{
    if (key)
        snprintf(out, cap, "%.64s[\"%.64s\"]", field, key);
    else
        snprintf(out, cap, "%.64s[%zu]", field, i);
}

/* The fraction f of the item named where, checked. */
static ember_status check_fraction(const json_t *f, const char *where,
                                   int with_replacement, double *out,
                                   ember_error *err)
{
    if (!f || !json_is_number(f))
        return ember_errorf(err, EMBER_EINVAL, "%s: a fraction must be a "
                            "number, got %s", where,
                            f ? em_json_kind(f) : "nothing");
    double x = json_number_value(f);
    if (!isfinite(x))
        return ember_errorf(err, EMBER_EINVAL, "%s: the fraction is not a "
                            "finite number", where);
    if (x < 0 || (!with_replacement && x > 1))
        return ember_errorf(err, EMBER_EINVAL, "%s: the fraction %g must be "
                            "%s", where, x,
                            with_replacement
                                ? ">= 0 (with_replacement is true)"
                                : "in [0, 1] (with_replacement is false)");
    *out = x;
    return EMBER_OK;
}

/* The message for a key given twice: the later item and the first. */
static ember_status twice(const char *field, const frac_key *first,
                          const frac_key *again, const char **names,
                          ember_error *err)
{
    char a[160], b[160];
    item_name(a, sizeof a, field, names ? names[again->item] : NULL,
              again->item);
    item_name(b, sizeof b, field, names ? names[first->item] : NULL,
              first->item);
    ember_buf text = ember_buf_heap();
    ember_rec_cursor cur = ember_rec_cursor_init(again->p, again->len);
    ember_value k;
    if (ember_rec_next(&cur, &k) != EMBER_OK ||
        ember_rec_json_value(&text, &k) != EMBER_OK ||
        ember_buf_put_u8(&text, '\0') != EMBER_OK)
        text.len = 0;
    ember_status st = ember_errorf(err, EMBER_EINVAL, "%s: the key %.96s is "
                                   "given twice (first at %s); each key "
                                   "takes one fraction", a,
                                   text.len ? (const char *)text.data : "",
                                   b);
    ember_buf_release(&text);
    return st;
}

ember_status em_plan_fractions(const json_t *v, const char *field,
                               int with_replacement, ember_buf *out,
                               uint64_t *count, ember_error *err)
{
    if (!v)
        return ember_errorf(err, EMBER_EINVAL, "%s is required (the fraction "
                            "of each key: [[KEY, FRACTION], ...] or "
                            "{\"KEY\": FRACTION, ...})", field);
    if (!json_is_array(v) && !json_is_object(v))
        return ember_errorf(err, EMBER_EINVAL, "%s must be an array of [KEY, "
                            "FRACTION] pairs or an object of fractions by "
                            "string key, got %s", field, em_json_kind(v));
    size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
    size_t mark = out->len;
    uint64_t added = 0;
    ember_buf rec = ember_buf_heap();
    frac_key *keys = calloc(n ? n : 1, sizeof *keys);
    const char **names = json_is_object(v)
                             ? calloc(n ? n : 1, sizeof *names) : NULL;
    ember_status st = EMBER_OK;
    if (!keys || (json_is_object(v) && !names)) {
        st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto done;
    }
    const char *name;
    const json_t *f;
    size_t i = 0;
    void *it = json_is_object(v) ? json_object_iter((json_t *)v) : NULL;
    for (i = 0; i < n; i++) {
        char where[160];
        const json_t *k = NULL;
        double x = 0;
        rec.len = 0;
        if (names) {
            name = json_object_iter_key(it);
            f = json_object_iter_value(it);
            it = json_object_iter_next((json_t *)v, it);
            names[i] = name;
            item_name(where, sizeof where, field, name, i);
            st = ember_rec_put_string(&rec, name, strlen(name));
            if (st != EMBER_OK) {
                st = ember_errorf(err, st, "out of memory");
                goto done;
            }
        } else {
            const json_t *pair = json_array_get(v, i);
            item_name(where, sizeof where, field, NULL, i);
            if (!json_is_array(pair) || json_array_size(pair) != 2) {
                st = json_is_array(pair)
                         ? ember_errorf(err, EMBER_EINVAL, "%s must be a "
                                        "[KEY, FRACTION] pair, got an array "
                                        "of %zu", where,
                                        json_array_size(pair))
                         : ember_errorf(err, EMBER_EINVAL, "%s must be a "
                                        "[KEY, FRACTION] pair, got %s",
                                        where, em_json_kind(pair));
                goto done;
            }
            k = json_array_get(pair, 0);
            f = json_array_get(pair, 1);
            char kwhere[176];
            snprintf(kwhere, sizeof kwhere, "%s[0]", where);
            if ((st = em_json_to_value(k, kwhere, &rec, err)) != EMBER_OK)
                goto done;
            snprintf(where + strlen(where), sizeof where - strlen(where),
                     "[1]");
        }
        keys[i].len = rec.len;
        keys[i].item = i;
        if ((st = check_fraction(f, where, with_replacement, &x, err)) !=
            EMBER_OK)
            goto done;
        if ((st = ember_rec_put_double(&rec, x)) != EMBER_OK ||
            (st = ember_batch_append(out, rec.data, rec.len)) != EMBER_OK) {
            st = ember_errorf(err, st, "out of memory");
            goto done;
        }
        /* the record just framed ends the batch; its key leads it */
        keys[i].off = out->len - rec.len;
        added++;
        if (out->len - mark > EM_PLAN_MAX_BLOB) {
            st = ember_errorf(err, EMBER_EINVAL, "%s: over 64 MiB encoded",
                              field);
            goto done;
        }
    }
    for (i = 0; i < n; i++)
        keys[i].p = out->data + keys[i].off;
    qsort(keys, n, sizeof *keys, key_cmp);
    /* Of the keys given twice, name the one given again earliest. */
    const frac_key *first = NULL, *again = NULL;
    for (size_t a = 0, b = 1; b < n; b++) {
        if (ember_rec_compare(keys[a].p, keys[a].len, keys[b].p,
                              keys[b].len) != 0) {
            a = b;
            continue;
        }
        if (b == a + 1 && (!again || keys[b].item < again->item)) {
            first = &keys[a];
            again = &keys[b];
        }
    }
    if (again)
        st = twice(field, first, again, names, err);
done:
    if (st != EMBER_OK)
        out->len = mark;
    else
        *count += added;
    free(names);
    free(keys);
    ember_buf_release(&rec);
    return st;
}

int64_t em_plan_random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)(((uint64_t)ts.tv_sec * 1000000007u) ^
                     (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
}
