/* Configuration store and value parsing (see ember/kernel/conf.h). */
#include "ember/kernel/conf.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
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
