/* Configuration store and value parsing (see ember/kernel/conf.h). */
#include "ember/kernel/conf.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct conf_entry {
    char *key;
    char *value;
    char *origin;
} conf_entry;

struct em_conf {
    pthread_rwlock_t lock;
    conf_entry *entries; /* unsorted; configurations hold tens of keys */
    size_t count;
    size_t cap;
};

ember_status em_conf_create(em_conf **out)
{
    em_conf *c = calloc(1, sizeof *c);
    if (!c)
        return EMBER_ENOMEM;
    if (pthread_rwlock_init(&c->lock, NULL) != 0) {
        free(c);
        return EMBER_ENOMEM;
    }
    *out = c;
    return EMBER_OK;
}

void em_conf_destroy(em_conf *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->count; i++) {
        free(conf->entries[i].key);
        free(conf->entries[i].value);
        free(conf->entries[i].origin);
    }
    free(conf->entries);
    pthread_rwlock_destroy(&conf->lock);
    free(conf);
}

static conf_entry *find(const em_conf *conf, const char *key)
{
    for (size_t i = 0; i < conf->count; i++)
        if (strcmp(conf->entries[i].key, key) == 0)
            return &conf->entries[i];
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

ember_status em_conf_set(em_conf *conf, const char *key, const char *value,
                         const char *origin, ember_error *err)
{
    if (!key || !*key || !value)
        return ember_errorf(err, EMBER_EINVAL, "configuration key is empty");
    for (const char *p = key; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return ember_errorf(err, EMBER_EINVAL,
                                "configuration key '%s' contains white "
                                "space or control characters",
                                key);
    char *v = strdup(value);
    char *o = dup_or_null(origin);
    if (!v || (origin && !o)) {
        free(v);
        free(o);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_status s = EMBER_OK;
    pthread_rwlock_wrlock(&conf->lock);
    conf_entry *e = find(conf, key);
    if (e) {
        free(e->value);
        free(e->origin);
        e->value = v;
        e->origin = o;
        goto out;
    }
    if (conf->count == conf->cap) {
        size_t ncap = conf->cap ? conf->cap * 2 : 16;
        conf_entry *n = realloc(conf->entries, ncap * sizeof *n);
        if (!n) {
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            goto fail;
        }
        conf->entries = n;
        conf->cap = ncap;
    }
    char *k = strdup(key);
    if (!k) {
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto fail;
    }
    conf->entries[conf->count++] = (conf_entry){k, v, o};
    goto out;
fail:
    free(v);
    free(o);
out:
    pthread_rwlock_unlock(&conf->lock);
    return s;
}

ember_status em_conf_get(const em_conf *conf, const char *key, char *out,
                         size_t cap, size_t *len)
{
    ember_status s = EMBER_OK;
    em_conf *c = (em_conf *)conf; /* the lock is not part of the value */
    pthread_rwlock_rdlock(&c->lock);
    const conf_entry *e = key ? find(conf, key) : NULL;
    if (!e) {
        s = EMBER_ENOTFOUND;
        goto out;
    }
    size_t n = strlen(e->value);
    if (len)
        *len = n;
    if (!out || cap <= n) {
        s = EMBER_ENOSPC;
        goto out;
    }
    memcpy(out, e->value, n + 1);
out:
    pthread_rwlock_unlock(&c->lock);
    return s;
}

/* Splits text into a non-negative integer and its suffix (leading and
 * trailing blanks allowed). */
static ember_status split_number(const char *text, uint64_t *num,
                                 char *suffix, size_t cap)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!isdigit((unsigned char)*p))
        return EMBER_EINVAL;
    uint64_t v = 0;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return EMBER_EINVAL;
        v = v * 10 + d;
        p++;
    }
    size_t n = 0;
    while (isalpha((unsigned char)*p)) {
        if (n + 1 >= cap)
            return EMBER_EINVAL;
        suffix[n++] = (char)tolower((unsigned char)*p);
        p++;
    }
    suffix[n] = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return EMBER_EINVAL;
    *num = v;
    return EMBER_OK;
}

static ember_status scale(uint64_t v, uint64_t mul, uint64_t div,
                          int64_t *out)
{
    if (v > (uint64_t)INT64_MAX / mul)
        return EMBER_EINVAL;
    *out = (int64_t)(v * mul / div);
    return EMBER_OK;
}

ember_status em_parse_size(const char *text, int64_t *bytes)
{
    static const struct {
        const char *a, *b;
        unsigned shift;
    } units[] = {{"", "b", 0},   {"k", "kb", 10}, {"m", "mb", 20},
                 {"g", "gb", 30}, {"t", "tb", 40}, {"p", "pb", 50}};
    uint64_t v;
    char suf[8];
    if (!text || split_number(text, &v, suf, sizeof suf) != EMBER_OK)
        return EMBER_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(suf, units[i].a) || !strcmp(suf, units[i].b))
            return scale(v, (uint64_t)1 << units[i].shift, 1, bytes);
    return EMBER_EINVAL;
}

ember_status em_parse_duration_ms(const char *text, int64_t *ms)
{
    static const struct {
        const char *name;
        uint64_t mul, div;
    } units[] = {{"", 1, 1},          {"ms", 1, 1},        {"us", 1, 1000},
                 {"s", 1000, 1},      {"m", 60000, 1},     {"min", 60000, 1},
                 {"h", 3600000, 1},   {"d", 86400000, 1}};
    uint64_t v;
    char suf[8];
    if (!text || split_number(text, &v, suf, sizeof suf) != EMBER_OK)
        return EMBER_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(suf, units[i].name))
            return scale(v, units[i].mul, units[i].div, ms);
    return EMBER_EINVAL;
}

/* Shared body of the typed getters. */
static ember_status get_parsed(const em_conf *conf, const char *key,
                               int64_t dflt, int64_t *out, ember_error *err,
                               ember_status (*parse)(const char *, int64_t *),
                               const char *what)
{
    char buf[256];
    size_t len;
    ember_status s = em_conf_get(conf, key, buf, sizeof buf, &len);
    if (s == EMBER_ENOTFOUND) {
        *out = dflt;
        return EMBER_OK;
    }
    if (s == EMBER_ENOSPC)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration %s: value is too long for a %s",
                            key, what);
    if (parse(buf, out) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration %s: '%s' is not a valid %s", key,
                            buf, what);
    return EMBER_OK;
}

ember_status em_conf_get_size(const em_conf *conf, const char *key,
                              int64_t dflt, int64_t *bytes, ember_error *err)
{
    return get_parsed(conf, key, dflt, bytes, err, em_parse_size,
                      "size (e.g. 512m, 2g)");
}

ember_status em_conf_get_duration_ms(const em_conf *conf, const char *key,
                                     int64_t dflt, int64_t *ms,
                                     ember_error *err)
{
    return get_parsed(conf, key, dflt, ms, err, em_parse_duration_ms,
                      "duration (e.g. 500ms, 30s, 5min)");
}

/* A decimal integer, optionally signed; nothing else. */
static ember_status parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0' || isspace((unsigned char)*text))
        return EMBER_EINVAL;
    *out = v;
    return EMBER_OK;
}

static ember_status parse_bool(const char *text, int64_t *out)
{
    if (!strcasecmp(text, "true") || !strcmp(text, "1") ||
        !strcasecmp(text, "yes")) {
        *out = 1;
        return EMBER_OK;
    }
    if (!strcasecmp(text, "false") || !strcmp(text, "0") ||
        !strcasecmp(text, "no")) {
        *out = 0;
        return EMBER_OK;
    }
    return EMBER_EINVAL;
}

ember_status em_conf_get_int(const em_conf *conf, const char *key,
                             int64_t dflt, int64_t min, int64_t max,
                             int64_t *out, ember_error *err)
{
    int64_t v;
    ember_status s = get_parsed(conf, key, dflt, &v, err, parse_int,
                                "whole number");
    if (s != EMBER_OK)
        return s;
    if (v < min || v > max)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration %s: %lld is out of range "
                            "(%lld..%lld)", key, (long long)v,
                            (long long)min, (long long)max);
    *out = v;
    return EMBER_OK;
}

ember_status em_conf_get_bool(const em_conf *conf, const char *key,
                              int dflt, int *out, ember_error *err)
{
    int64_t v = dflt;
    ember_status s = get_parsed(conf, key, dflt, &v, err, parse_bool,
                                "boolean (true or false)");
    if (s == EMBER_OK)
        *out = (int)v;
    return s;
}

ember_status em_conf_get_double(const em_conf *conf, const char *key,
                                double dflt, double min, double max,
                                double *out, ember_error *err)
{
    char buf[256];
    size_t len;
    ember_status s = em_conf_get(conf, key, buf, sizeof buf, &len);
    if (s == EMBER_ENOTFOUND) {
        *out = dflt;
        return EMBER_OK;
    }
    char *end = buf;
    errno = 0;
    double v = s == EMBER_OK ? strtod(buf, &end) : 0;
    if (s != EMBER_OK || errno || end == buf || *end != '\0' || v != v)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration %s: '%s' is not a number", key,
                            s == EMBER_OK ? buf : "(too long)");
    if (v < min || v > max)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration %s: %g is out of range (%g..%g)",
                            key, v, min, max);
    *out = v;
    return EMBER_OK;
}

/* ---- Origins, merging ---- */

/* What a value set without an origin reports as its origin. */
#define NO_ORIGIN "unknown"

ember_status em_conf_origin(const em_conf *conf, const char *key, char *out,
                            size_t cap)
{
    ember_status s = EMBER_OK;
    em_conf *c = (em_conf *)conf; /* the lock is not part of the value */
    pthread_rwlock_rdlock(&c->lock);
    const conf_entry *e = key ? find(conf, key) : NULL;
    if (!e) {
        s = EMBER_ENOTFOUND;
        goto out;
    }
    const char *o = e->origin ? e->origin : NO_ORIGIN;
    size_t n = strlen(o);
    if (!out || cap <= n) {
        s = EMBER_ENOSPC;
        goto out;
    }
    memcpy(out, o, n + 1);
out:
    pthread_rwlock_unlock(&c->lock);
    return s;
}

/* Frees the first n entries of a snapshot and the array itself. */
static void free_entries(conf_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
        free(v[i].origin);
    }
    free(v);
}

ember_status em_conf_merge(em_conf *dst, const em_conf *src, ember_error *err)
{
    if (!dst || !src)
        return ember_errorf(err, EMBER_EINVAL, "em_conf_merge: no conf");
    if (dst == src)
        return EMBER_OK;
    /* Copy src first so that no thread ever holds two conf locks. */
    em_conf *s = (em_conf *)src;
    ember_status st = EMBER_OK;
    size_t n = 0;
    pthread_rwlock_rdlock(&s->lock);
    conf_entry *copy = calloc(s->count ? s->count : 1, sizeof *copy);
    if (!copy) {
        st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        pthread_rwlock_unlock(&s->lock);
        goto out;
    }
    for (; n < s->count; n++) {
        const conf_entry *e = &s->entries[n];
        copy[n].key = strdup(e->key);
        copy[n].value = strdup(e->value);
        copy[n].origin = dup_or_null(e->origin);
        if (!copy[n].key || !copy[n].value || (e->origin && !copy[n].origin)) {
            n++;
            st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    for (size_t i = 0; st == EMBER_OK && i < n; i++)
        st = em_conf_set(dst, copy[i].key, copy[i].value, copy[i].origin,
                         err);
out:
    free_entries(copy, n);
    return st;
}

/* ---- Checking against the known keys ---- */

/*
 * Edit distance between a and b counting insertions, deletions,
 * substitutions and swaps of neighbours as 1 each (optimal string
 * alignment), or limit + 1 when it is more than limit. Keys longer than
 * the rows hold are never close.
 */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
    enum { ROW = 128 };
    size_t na = strlen(a), nb = strlen(b);
    if ((na > nb ? na - nb : nb - na) > limit || na >= ROW || nb >= ROW)
        return limit + 1;
    size_t rows[3][ROW];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= nb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[nb] > limit ? limit + 1 : prev[nb];
}

/* The known key closest to key (edit distance <= 3), or NULL. */
static const char *closest_key(const char *key)
{
    size_t n;
    const em_conf_key *keys = em_conf_keys(&n);
    const char *best = NULL;
    size_t best_d = 4;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].type == EM_CONF_PREFIX)
            continue;
        size_t d = edit_distance(key, keys[i].name, 3);
        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    return best;
}

/* Whether key is known to em_conf_check (a key or under an open prefix). */
static int is_known(const char *key)
{
    return strncmp(key, "ember.", 6) == 0 && em_conf_key_find(key) != NULL;
}

/*
 * Writes into msg what is wrong with an unknown key. Keys and values are
 * shown cut to 200 bytes: the message must stay readable.
 */
static void unknown_message(const char *key, char *msg, size_t cap)
{
    if (strncmp(key, "ember.", 6) != 0) {
        /* Spark habits: spark.executor.memory means ember.executor.memory. */
        if (strncmp(key, "spark.", 6) == 0) {
            char alt[256];
            int n = snprintf(alt, sizeof alt, "ember.%s", key + 6);
            if (n > 0 && (size_t)n < sizeof alt && is_known(alt)) {
                snprintf(msg, cap,
                         "'%.200s' is not an ember key (did you mean "
                         "'%s'?)", key, alt);
                return;
            }
        }
        const char *near = closest_key(key);
        if (near)
            snprintf(msg, cap,
                     "'%.200s' is not an ember key (did you mean '%s'?)",
                     key, near);
        else
            snprintf(msg, cap,
                     "'%.200s' is not an ember key (ember keys start with "
                     "'ember.')", key);
        return;
    }
    const char *near = closest_key(key);
    if (near)
        snprintf(msg, cap,
                 "unknown configuration key '%.200s' (did you mean '%s'?)",
                 key, near);
    else
        snprintf(msg, cap, "unknown configuration key '%.200s'", key);
}

/* Whether value is one of the '|'-separated values, ignoring case. */
static int enum_has(const char *values, const char *value)
{
    size_t vlen = strlen(value);
    for (const char *p = values; *p;) {
        size_t n = strcspn(p, "|");
        if (n == vlen && strncasecmp(p, value, n) == 0)
            return 1;
        p += n;
        if (*p == '|')
            p++;
    }
    return 0;
}

/*
 * Checks value against k's type and range. Returns 0 when it is good, else
 * 1 with the problem in msg.
 */
static int bad_value(const em_conf_key *k, const char *key,
                     const char *value, char *msg, size_t cap)
{
    int64_t v;
    switch ((em_conf_type)k->type) {
    case EM_CONF_STRING:
    case EM_CONF_PREFIX:
        return 0;
    case EM_CONF_SIZE:
        if (em_parse_size(value, &v) != EMBER_OK) {
            snprintf(msg, cap,
                     "%s: '%.200s' is not a valid size (e.g. 512m, 2g)", key,
                     value);
            return 1;
        }
        if (v < k->min || v > k->max) {
            snprintf(msg, cap,
                     "%s: '%.200s' is out of range (%lld..%lld bytes)", key,
                     value, (long long)k->min, (long long)k->max);
            return 1;
        }
        return 0;
    case EM_CONF_DURATION:
        if (em_parse_duration_ms(value, &v) != EMBER_OK) {
            snprintf(msg, cap,
                     "%s: '%.200s' is not a valid duration (e.g. 500ms, 30s, "
                     "5min)", key, value);
            return 1;
        }
        if (v < k->min || v > k->max) {
            snprintf(msg, cap,
                     "%s: '%.200s' is out of range (%lld..%lld ms)", key,
                     value, (long long)k->min, (long long)k->max);
            return 1;
        }
        return 0;
    case EM_CONF_INT:
        if (parse_int(value, &v) != EMBER_OK) {
            snprintf(msg, cap, "%s: '%.200s' is not a whole number", key,
                     value);
            return 1;
        }
        if (v < k->min || v > k->max) {
            snprintf(msg, cap, "%s: %lld is out of range (%lld..%lld)", key,
                     (long long)v, (long long)k->min, (long long)k->max);
            return 1;
        }
        return 0;
    case EM_CONF_BOOL:
        if (parse_bool(value, &v) != EMBER_OK) {
            snprintf(msg, cap,
                     "%s: '%.200s' is not a boolean (true or false)", key,
                     value);
            return 1;
        }
        return 0;
    case EM_CONF_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (errno || end == value || *end != '\0' || d != d ||
            isspace((unsigned char)*value)) {
            snprintf(msg, cap, "%s: '%.200s' is not a number", key, value);
            return 1;
        }
        if (d < k->dmin || d > k->dmax) {
            snprintf(msg, cap, "%s: %g is out of range (%g..%g)", key, d,
                     k->dmin, k->dmax);
            return 1;
        }
        return 0;
    }
    case EM_CONF_ENUM:
        if (!enum_has(k->values, value)) {
            snprintf(msg, cap, "%s: '%.200s' is not one of %s", key, value,
                     k->values);
            return 1;
        }
        return 0;
    }
    return 0;
}

size_t em_conf_check(const em_conf *conf, em_conf_report_fn report,
                     void *ctx)
{
    if (!conf)
        return 0;
    em_conf *c = (em_conf *)conf;
    size_t problems = 0;
    char msg[1024];
    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; i < c->count; i++) {
        const conf_entry *e = &c->entries[i];
        const em_conf_key *k =
            strncmp(e->key, "ember.", 6) == 0 ? em_conf_key_find(e->key)
                                              : NULL;
        if (!k)
            unknown_message(e->key, msg, sizeof msg);
        else if (!bad_value(k, e->key, e->value, msg, sizeof msg))
            continue;
        problems++;
        if (report)
            report(ctx, e->origin ? e->origin : NO_ORIGIN, e->key, msg);
    }
    pthread_rwlock_unlock(&c->lock);
    return problems;
}

/* The smallest key after `after` (NULL: the smallest), set or known. */
static const char *next_key(const em_conf *conf, const em_conf_key *keys,
                            size_t nkeys, const char *after)
{
    const char *best = NULL;
    for (size_t i = 0; i < nkeys; i++) {
        const char *k = keys[i].name;
        if (keys[i].type != EM_CONF_PREFIX &&
            (!after || strcmp(k, after) > 0) && (!best || strcmp(k, best) < 0))
            best = k;
    }
    for (size_t i = 0; i < conf->count; i++) {
        const char *k = conf->entries[i].key;
        if ((!after || strcmp(k, after) > 0) &&
            (!best || strcmp(k, best) < 0))
            best = k;
    }
    return best;
}

void em_conf_each_effective(const em_conf *conf, em_conf_emit_fn emit,
                            void *ctx)
{
    if (!conf || !emit)
        return;
    em_conf *c = (em_conf *)conf;
    size_t nkeys;
    const em_conf_key *keys = em_conf_keys(&nkeys);
    /* Room for a PATH:LINE origin and the note; longer origins are cut. */
    char origin[4200];
    pthread_rwlock_rdlock(&c->lock);
    /* Tens of keys: picking the next one by scanning keeps this free of
     * allocation, so it cannot fail. */
    for (const char *key = next_key(conf, keys, nkeys, NULL); key;
         key = next_key(conf, keys, nkeys, key)) {
        const conf_entry *e = find(conf, key);
        if (e) {
            const char *o = e->origin ? e->origin : NO_ORIGIN;
            if (!is_known(key)) {
                snprintf(origin, sizeof origin, "%s (unknown key)", o);
                o = origin;
            }
            emit(ctx, key, e->value, o);
            continue;
        }
        const em_conf_key *k = em_conf_key_find(key);
        const char *value = k->dflt;
        if (!value && k->fallback) {
            const conf_entry *f = find(conf, k->fallback);
            const em_conf_key *fk = em_conf_key_find(k->fallback);
            value = f ? f->value : fk ? fk->dflt : NULL;
        }
        emit(ctx, key, value, "default");
    }
    pthread_rwlock_unlock(&c->lock);
}
