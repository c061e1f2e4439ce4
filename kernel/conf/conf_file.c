/*
 * The layers below code: the defaults file (ember-defaults.conf or
 * --properties-file) and --conf flags (see ember/kernel/conf.h).
 */
#include "ember/kernel/conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest line of a defaults file, without its line end. */
#define MAX_LINE (64 * 1024)

/* The name of the defaults file inside $EMBER_CONF_DIR. */
#define DEFAULTS_NAME "ember-defaults.conf"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Key characters: ASCII letters, digits and "._-" (locale-independent). */
static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Index of the first byte of key[0..n) that is not a key character, or n. */
static size_t bad_key_char(const char *key, size_t n)
{
    size_t i = 0;
    while (i < n && is_key_char(key[i]))
        i++;
    return i;
}

/* Describes byte c for a message: 'c' when printable ASCII, else hex. */
static void describe_byte(unsigned char c, char *out, size_t cap)
{
    if (c > 0x20 && c < 0x7f)
        snprintf(out, cap, "'%c'", (char)c);
    else
        snprintf(out, cap, "byte 0x%02x", (unsigned)c);
}

/*
 * Index of the first byte of s[0..n) that does not belong to a well-formed
 * UTF-8 sequence (overlong forms, surrogates and code points above
 * U+10FFFF are refused), or n when all of it is valid.
 */
static size_t bad_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return i;
        }
        if (n - i <= more || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= more; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return i;
        i += more + 1;
    }
    return n;
}

/*
 * Parses one line (line[0..len), NUL-terminated at len, line end removed)
 * into conf with origin "PATH:LINE".
 */
static ember_status parse_line(em_conf *conf, const char *path,
                               unsigned long lineno, char *line, size_t len,
                               ember_error *err)
{
    if (memchr(line, '\0', len))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s:%lu: contains a NUL byte (is this a text "
                            "file?)", path, lineno);
    size_t bad = bad_utf8((const unsigned char *)line, len);
    if (bad < len)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s:%lu: not valid UTF-8 at byte %zu", path,
                            lineno, bad + 1);
    char *p = line;
    while (is_blank(*p))
        p++;
    if (*p == '\0' || *p == '#')
        return EMBER_OK;
    char *key = p;
    while (*p && !is_blank(*p) && *p != '=')
        p++;
    size_t klen = (size_t)(p - key);
    if (klen == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s:%lu: '=' without a key before it", path,
                            lineno);
    size_t kbad = bad_key_char(key, klen);
    if (kbad < klen) {
        char what[16];
        describe_byte((unsigned char)key[kbad], what, sizeof what);
        return ember_errorf(err, EMBER_EINVAL,
                            "%s:%lu: key '%.*s' contains %s; keys are "
                            "letters, digits and . _ - (write 'key value' "
                            "or 'key=value')",
                            path, lineno, (int)(klen > 200 ? 200 : klen),
                            key, what);
    }
    while (is_blank(*p))
        p++;
    if (*p == '=') {
        p++;
        while (is_blank(*p))
            p++;
    }
    char *value = p;
    char *end = line + len;
    while (end > value && is_blank(end[-1]))
        end--;
    if (end == value)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s:%lu: key '%.*s' has no value", path, lineno,
                            (int)(klen > 200 ? 200 : klen), key);
    *end = '\0';
    key[klen] = '\0';
    size_t ocap = strlen(path) + 24;
    char *origin = malloc(ocap);
    if (!origin)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    snprintf(origin, ocap, "%s:%lu", path, lineno);
    ember_status s = em_conf_set(conf, key, value, origin, err);
    free(origin);
    return s;
}

/* Fills err for a failed open or read of path (errno in e). */
static ember_status io_error(ember_error *err, const char *path, int e)
{
    if (e == ENOENT)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "%s: No such file or directory", path);
    char why[128];
    if (strerror_r(e, why, sizeof why) != 0)
        snprintf(why, sizeof why, "error %d", e);
    return ember_errorf(err, EMBER_EIO, "%s: %s", path, why);
}

ember_status em_conf_load_file(em_conf *conf, const char *path,
                               ember_error *err)
{
    if (!conf || !path || !*path)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration file: no path given");
    ember_status s = EMBER_OK;
    em_conf *tmp = NULL;
    char *line = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        s = io_error(err, path, errno);
        goto out;
    }
    line = malloc(MAX_LINE + 1);
    if (!line || em_conf_create(&tmp) != EMBER_OK) {
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto out;
    }
    /* Parse into tmp so that conf changes only when the whole file is
     * good: a half-applied file would be worse than none. */
    size_t len = 0;
    unsigned long lineno = 1;
    int at_eof = 0;
    while (!at_eof) {
        int c = getc(f);
        if (c == EOF) {
            if (ferror(f)) {
                s = io_error(err, path, errno ? errno : EIO);
                goto out;
            }
            at_eof = 1;
            if (len == 0)
                break;
        } else if (c != '\n') {
            if (len == MAX_LINE) {
                s = ember_errorf(err, EMBER_EINVAL,
                                 "%s:%lu: line is longer than %d bytes",
                                 path, lineno, MAX_LINE);
                goto out;
            }
            line[len++] = (char)c;
            continue;
        }
        /* A CRLF line end's '\r' is trimmed with the other blanks. */
        line[len] = '\0';
        char *start = line;
        /* Editors on Windows begin UTF-8 files with a byte-order mark. */
        if (lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            start += 3;
            len -= 3;
        }
        s = parse_line(tmp, path, lineno, start, len, err);
        if (s != EMBER_OK)
            goto out;
        len = 0;
        lineno++;
    }
    s = em_conf_merge(conf, tmp, err);
out:
    em_conf_destroy(tmp);
    free(line);
    if (f)
        fclose(f);
    return s;
}

ember_status em_conf_set_flag(em_conf *conf, const char *flag,
                              ember_error *err)
{
    const char *eq = flag ? strchr(flag, '=') : NULL;
    if (!conf || !eq || eq == flag)
        return ember_errorf(err, EMBER_EINVAL,
                            "--conf '%.300s': expected key=value",
                            flag ? flag : "");
    size_t klen = (size_t)(eq - flag);
    size_t kbad = bad_key_char(flag, klen);
    if (kbad < klen) {
        char what[16];
        describe_byte((unsigned char)flag[kbad], what, sizeof what);
        return ember_errorf(err, EMBER_EINVAL,
                            "--conf '%.300s': the key contains %s; keys are "
                            "letters, digits and . _ -", flag, what);
    }
    char *key = malloc(klen + 1);
    if (!key)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    memcpy(key, flag, klen);
    key[klen] = '\0';
    ember_status s = em_conf_set(conf, key, eq + 1, "--conf", err);
    free(key);
    return s;
}

ember_status em_conf_load_defaults(em_conf *conf, const char *properties_file,
                                   ember_error *err)
{
    if (properties_file)
        return em_conf_load_file(conf, properties_file, err);
    const char *dir = getenv("EMBER_CONF_DIR");
    if (!dir || !*dir)
        return EMBER_OK;
    size_t n = strlen(dir);
    /* "dir/" and "dir" name the same file: no "//" in origins. */
    const char *sep = dir[n - 1] == '/' ? "" : "/";
    size_t cap = n + sizeof "/" DEFAULTS_NAME;
    char *path = malloc(cap);
    if (!path)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    snprintf(path, cap, "%s%s%s", dir, sep, DEFAULTS_NAME);
    ember_status s = em_conf_load_file(conf, path, err);
    if (s == EMBER_ENOTFOUND) {
        /* The file is optional; clear the message a caller might print. */
        if (err) {
            err->code = EMBER_OK;
            err->msg[0] = '\0';
        }
        s = EMBER_OK;
    }
    free(path);
    return s;
}

/* ---- em_conf_validate ---- */

typedef struct problems {
    char text[440];
    size_t count;
} problems;

static void collect_problem(void *ctx, const char *origin, const char *key,
                            const char *message)
{
    problems *p = ctx;
    (void)key;
    size_t used = strlen(p->text);
    if (p->count++ < 3 && used < sizeof p->text - 1)
        snprintf(p->text + used, sizeof p->text - used, "%s%s: %s",
                 used ? "; " : "", origin ? origin : "", message);
}

ember_status em_conf_validate(const em_conf *conf, ember_error *err)
{
    problems p = {"", 0};
    if (em_conf_check(conf, collect_problem, &p) == 0)
        return EMBER_OK;
    return ember_errorf(err, EMBER_EINVAL, "configuration: %s%s", p.text,
                        p.count > 3 ? " (and more)" : "");
}

/* ---- layers and dumps ---- */

ember_status em_conf_load_layers(em_conf *conf, const char *properties_file,
                                 const char *const *flags, ember_error *err)
{
    ember_status st = em_conf_load_defaults(conf, properties_file, err);
    for (size_t i = 0; st == EMBER_OK && flags && flags[i]; i++)
        st = em_conf_set_flag(conf, flags[i], err);
    return st;
}

typedef struct dump {
    FILE *f;
    const char *skip;
} dump;

static void dump_setting(void *ctx, const char *key, const char *value,
                         const char *origin)
{
    dump *d = ctx;
    if (value && origin && strcmp(origin, "default") != 0 &&
        !strstr(origin, "unknown key") &&
        !(d->skip && strcmp(key, d->skip) == 0))
        fprintf(d->f, "%s %s\n", key, value);
}

ember_status em_conf_write_file(const em_conf *conf, const char *path,
                                const char *skip_key, ember_error *err)
{
    dump d = {fopen(path, "w"), skip_key};
    if (!d.f)
        return ember_errorf(err, EMBER_EIO, "cannot write %s: %s", path,
                            strerror(errno));
    em_conf_each_effective(conf, dump_setting, &d);
    if (fclose(d.f) != 0)
        return ember_errorf(err, EMBER_EIO, "cannot write %s: %s", path,
                            strerror(errno));
    return EMBER_OK;
}
