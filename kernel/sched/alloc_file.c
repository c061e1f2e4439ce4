/*
 * The allocation file: Spark's fairscheduler.xml, read with expat.
 *
 *   <allocations>
 *     <pool name="production">
 *       <schedulingMode>FAIR</schedulingMode>  FIFO | FAIR, any case
 *       <weight>2</weight>                     number >= 0 (decimals too)
 *       <minShare>3</minShare>                 integer >= 0
 *       <maxShare>10</maxShare>                ember: integer >= 1
 *       <pool name="etl">...</pool>            ember: nesting
 *     </pool>
 *   </allocations>
 *
 * Parsing builds a list of definitions without touching the tree; only a
 * file that parsed and validated whole is applied (em_pool_tree_apply).
 */
#include "sched/pool.h"

#include <errno.h>
#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ember/buf.h"
#include "util/map.h"

#define MAX_FILE_BYTES ((size_t)16 << 20)
#define MAX_NESTING 32     /* pools inside pools */
#define MAX_POOLS 10000    /* per file */
#define MAX_VALUE_BYTES 256
#define MAX_WEIGHT 2147483647.0 /* Spark's weight is an Int */

typedef enum frame_kind {
    FRAME_ALLOCATIONS,
    FRAME_POOL,
    FRAME_SETTING
} frame_kind;

typedef enum setting_kind {
    SET_MODE,
    SET_WEIGHT,
    SET_MIN_SHARE,
    SET_MAX_SHARE,
    SET_COUNT
} setting_kind;

static const char *const setting_names[SET_COUNT] = {
    "schedulingMode", "weight", "minShare", "maxShare"};

typedef struct frame {
    frame_kind kind;
    long def;     /* FRAME_POOL: index into defs */
    unsigned seen; /* FRAME_POOL: bit per setting_kind already given */
} frame;

typedef struct parser {
    XML_Parser xp;
    const char *source;
    ember_error *err;
    ember_status status;
    frame stack[MAX_NESTING + 3];
    int depth;
    /* The setting being read: its kind, where it started, its text. */
    setting_kind setting;
    unsigned long set_line;
    unsigned long set_col;
    char text[MAX_VALUE_BYTES + 1];
    size_t text_len;
    int text_too_long;
    em_pool_def *defs;
    size_t ndefs;
    size_t cap;
    em_strmap names; /* pool names seen so far, for the duplicate check */
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static void fail_at(parser *ps, ember_status code, unsigned long line,
                    unsigned long col, const char *fmt, ...)
{
    if (ps->status != EMBER_OK)
        return;
    char msg[EMBER_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    ps->status = ember_errorf(ps->err, code, "%s:%lu:%lu: %s", ps->source,
                              line, col, msg);
    XML_StopParser(ps->xp, XML_FALSE);
}

/* Position of the event being handled; columns counted from 1. */
#define FAIL(ps, code, ...)                                                  \
    fail_at((ps), (code), (unsigned long)XML_GetCurrentLineNumber((ps)->xp), \
            (unsigned long)XML_GetCurrentColumnNumber((ps)->xp) + 1,         \
            __VA_ARGS__)

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *element_label(frame_kind k)
{
    return k == FRAME_ALLOCATIONS ? "<allocations>" : "<pool>";
}

/* Reports the first attribute, if any; returns 1 when there is none. */
static int no_attributes(parser *ps, const char *element,
                         const XML_Char **attrs)
{
    for (size_t i = 0; attrs[i]; i += 2) {
        FAIL(ps, EMBER_EINVAL, "unknown attribute '%s' on <%s>", attrs[i],
             element);
        return 0;
    }
    return 1;
}

static void start_pool(parser *ps, long parent, const XML_Char **attrs)
{
    const char *name = NULL;
    int seen_name = 0;
    for (size_t i = 0; attrs[i]; i += 2) {
        if (strcmp(attrs[i], "name") != 0) {
            FAIL(ps, EMBER_EINVAL, "unknown attribute '%s' on <pool>",
                 attrs[i]);
            return;
        }
        seen_name = 1;
        name = attrs[i + 1];
    }
    if (!seen_name) {
        FAIL(ps, EMBER_EINVAL, "<pool> has no name attribute");
        return;
    }
    if (!*name) {
        FAIL(ps, EMBER_EINVAL, "<pool> has an empty name");
        return;
    }
    if (em_strmap_get(&ps->names, name)) {
        FAIL(ps, EMBER_EINVAL, "duplicate pool name '%s'", name);
        return;
    }
    if (ps->ndefs == MAX_POOLS) {
        FAIL(ps, EMBER_EINVAL, "too many pools (at most %d)", MAX_POOLS);
        return;
    }
    if (ps->ndefs == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        em_pool_def *defs = realloc(ps->defs, cap * sizeof *defs);
        if (!defs) {
            FAIL(ps, EMBER_ENOMEM, "out of memory");
            return;
        }
        ps->defs = defs;
        ps->cap = cap;
    }
    em_pool_def *d = &ps->defs[ps->ndefs];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    if (!d->name || em_strmap_put(&ps->names, name, d->name) != EMBER_OK) {
        free(d->name);
        FAIL(ps, EMBER_ENOMEM, "out of memory");
        return;
    }
    d->parent = parent;
    d->mode = EM_SCHED_FIFO;
    d->weight = 1.0;
    ps->stack[ps->depth].kind = FRAME_POOL;
    ps->stack[ps->depth].def = (long)ps->ndefs;
    ps->stack[ps->depth].seen = 0;
    ps->ndefs++;
    ps->depth++;
}

static void XMLCALL on_start(void *ud, const XML_Char *el,
                             const XML_Char **attrs)
{
    parser *ps = ud;
    if (ps->depth == 0) {
        if (strcmp(el, "allocations") != 0) {
            FAIL(ps, EMBER_EINVAL,
                 "root element is <%s>, expected <allocations>", el);
            return;
        }
        if (!no_attributes(ps, el, attrs))
            return;
        ps->stack[0].kind = FRAME_ALLOCATIONS;
        ps->stack[0].def = -1;
        ps->depth = 1;
        return;
    }
    frame *top = &ps->stack[ps->depth - 1];
    if (top->kind == FRAME_SETTING) {
        FAIL(ps, EMBER_EINVAL, "unexpected element <%s> inside <%s>", el,
             setting_names[ps->setting]);
        return;
    }
    if (strcmp(el, "pool") == 0) {
        /* Frames: allocations, then pools; depth - 1 pools are open. */
        if (ps->depth - 1 >= MAX_NESTING) {
            FAIL(ps, EMBER_EINVAL, "pools nested deeper than %d levels",
                 MAX_NESTING);
            return;
        }
        start_pool(ps, top->def, attrs);
        return;
    }
    int k;
    for (k = 0; k < SET_COUNT; k++)
        if (strcmp(el, setting_names[k]) == 0)
            break;
    if (k == SET_COUNT || top->kind != FRAME_POOL) {
        FAIL(ps, EMBER_EINVAL, "unknown element <%s> inside %s", el,
             element_label(top->kind));
        return;
    }
    if (top->seen & (1u << k)) {
        FAIL(ps, EMBER_EINVAL, "duplicate <%s> in pool '%s'", el,
             ps->defs[top->def].name);
        return;
    }
    if (!no_attributes(ps, el, attrs))
        return;
    top->seen |= 1u << k;
    ps->setting = (setting_kind)k;
    ps->set_line = (unsigned long)XML_GetCurrentLineNumber(ps->xp);
    ps->set_col = (unsigned long)XML_GetCurrentColumnNumber(ps->xp) + 1;
    ps->text_len = 0;
    ps->text_too_long = 0;
    ps->stack[ps->depth].kind = FRAME_SETTING;
    ps->stack[ps->depth].def = top->def;
    ps->stack[ps->depth].seen = 0;
    ps->depth++;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    parser *ps = ud;
    if (ps->status != EMBER_OK || ps->depth == 0)
        return;
    frame *top = &ps->stack[ps->depth - 1];
    if (top->kind == FRAME_SETTING) {
        size_t n = (size_t)len;
        if (n > MAX_VALUE_BYTES - ps->text_len) {
            ps->text_too_long = 1;
            n = MAX_VALUE_BYTES - ps->text_len;
        }
        memcpy(ps->text + ps->text_len, s, n);
        ps->text_len += n;
        return;
    }
    /* The chunk may start with whitespace over several lines: point at
     * the text itself. */
    unsigned long line = (unsigned long)XML_GetCurrentLineNumber(ps->xp);
    unsigned long col = (unsigned long)XML_GetCurrentColumnNumber(ps->xp) + 1;
    for (int i = 0; i < len; i++) {
        if (s[i] == '\n') {
            line++;
            col = 1;
            continue;
        }
        if (is_space(s[i])) {
            col++;
            continue;
        }
        int shown = len - i;
        while (shown > 0 && is_space(s[i + shown - 1]))
            shown--;
        fail_at(ps, EMBER_EINVAL, line, col, "unexpected text '%.*s' inside %s",
                shown > 40 ? 40 : shown, s + i, element_label(top->kind));
        return;
    }
}

/* Reports a bad value at the start of the setting being read. */
#define FAIL_VALUE(ps, ...) \
    fail_at((ps), EMBER_EINVAL, (ps)->set_line, (ps)->set_col, __VA_ARGS__)

/* Whole-number value of a setting, at least min; reports and returns 0 on
 * error. */
static int parse_count(parser *ps, const char *v, const char *what,
                       uint32_t min, uint32_t *out)
{
    const char *p = v;
    int negative = *p == '-';
    if (negative)
        p++;
    if (!*v) {
        FAIL_VALUE(ps, "<%s> is empty", what);
        return 0;
    }
    unsigned long long n = 0;
    int overflow = 0;
    if (!*p) {
        FAIL_VALUE(ps, "<%s> '%s' is not a whole number", what, v);
        return 0;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            FAIL_VALUE(ps, "<%s> '%s' is not a whole number", what, v);
            return 0;
        }
        if (!overflow) {
            n = n * 10 + (unsigned)(*p - '0');
            overflow = n > UINT32_MAX;
        }
    }
    if (negative && (n > 0 || overflow)) {
        FAIL_VALUE(ps, "<%s> %s is negative", what, v);
        return 0;
    }
    if (overflow) {
        FAIL_VALUE(ps, "<%s> %s is out of range (at most %lu)", what, v,
                   (unsigned long)UINT32_MAX);
        return 0;
    }
    if (n < min) {
        FAIL_VALUE(ps, "<%s> %s is out of range (at least %lu)", what, v,
                   (unsigned long)min);
        return 0;
    }
    *out = (uint32_t)n;
    return 1;
}

/* A weight: digits with at most one '.'; no sign, exponent, hex, inf or
 * nan. Reports and returns 0 on error. */
static int parse_weight(parser *ps, const char *v, double *out)
{
    const char *p = v;
    int negative = *p == '-';
    if (negative)
        p++;
    if (!*v) {
        FAIL_VALUE(ps, "<weight> is empty");
        return 0;
    }
    size_t digits = 0, dots = 0, other = 0;
    for (const char *q = p; *q; q++) {
        if (*q >= '0' && *q <= '9')
            digits++;
        else if (*q == '.')
            dots++;
        else
            other++;
    }
    if (digits == 0 || dots > 1 || other > 0) {
        FAIL_VALUE(ps, "<weight> '%s' is not a number", v);
        return 0;
    }
    double w = strtod(p, NULL);
    if (negative && w > 0) {
        FAIL_VALUE(ps, "<weight> %s is negative", v);
        return 0;
    }
    if (w > MAX_WEIGHT) {
        FAIL_VALUE(ps, "<weight> %s is out of range (at most %.0f)", v,
                   MAX_WEIGHT);
        return 0;
    }
    *out = w;
    return 1;
}

static void end_setting(parser *ps, em_pool_def *d)
{
    const char *what = setting_names[ps->setting];
    if (ps->text_too_long) {
        FAIL_VALUE(ps, "<%s> value is longer than %d bytes", what,
                   MAX_VALUE_BYTES);
        return;
    }
    /* Spark trims values. */
    char *v = ps->text;
    size_t n = ps->text_len;
    while (n && is_space(v[n - 1]))
        n--;
    v[n] = '\0';
    while (is_space(*v))
        v++;
    switch (ps->setting) {
    case SET_MODE:
        if (strcasecmp(v, "FIFO") == 0) {
            d->mode = EM_SCHED_FIFO;
        } else if (strcasecmp(v, "FAIR") == 0) {
            d->mode = EM_SCHED_FAIR;
        } else {
            FAIL_VALUE(ps,
                       "unknown scheduling mode '%s' (expected FIFO or FAIR)",
                       v);
            return;
        }
        d->has_mode = 1;
        break;
    case SET_WEIGHT:
        parse_weight(ps, v, &d->weight);
        break;
    case SET_MIN_SHARE:
        parse_count(ps, v, what, 0, &d->min_share);
        break;
    case SET_MAX_SHARE:
        parse_count(ps, v, what, 1, &d->max_share);
        break;
    case SET_COUNT:
        break;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *el)
{
    parser *ps = ud;
    (void)el;
    if (ps->status != EMBER_OK || ps->depth == 0)
        return;
    frame *top = &ps->stack[ps->depth - 1];
    if (top->kind == FRAME_SETTING)
        end_setting(ps, &ps->defs[top->def]);
    ps->depth--;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name,
                               const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
    parser *ps = ud;
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    /* Entities buy nothing here and invite expansion bombs. */
    FAIL(ps, EMBER_EINVAL, "document type declarations are not allowed");
}

static void free_defs(em_pool_def *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(defs[i].name);
    free(defs);
}

ember_status em_pool_tree_load_xml(em_pool_tree *t, const char *xml,
                                   size_t len, const char *source_name,
                                   ember_error *err)
{
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.source = source_name ? source_name : "<allocations>";
    ps.err = err;
    if (em_pool_tree_mode(t) != EM_SCHED_FAIR)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: allocation files apply only in FAIR "
                            "scheduling mode",
                            ps.source);
    if (len > MAX_FILE_BYTES)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: allocation file is larger than 16 MiB",
                            ps.source);
    ps.xp = XML_ParserCreate("UTF-8");
    if (!ps.xp)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    XML_SetUserData(ps.xp, &ps);
    XML_SetElementHandler(ps.xp, on_start, on_end);
    XML_SetCharacterDataHandler(ps.xp, on_text);
    XML_SetStartDoctypeDeclHandler(ps.xp, on_doctype);
    if (XML_Parse(ps.xp, xml ? xml : "", (int)len, XML_TRUE) ==
            XML_STATUS_ERROR &&
        ps.status == EMBER_OK) {
        enum XML_Error code = XML_GetErrorCode(ps.xp);
        fail_at(&ps,
                code == XML_ERROR_NO_MEMORY ? EMBER_ENOMEM : EMBER_EINVAL,
                (unsigned long)XML_GetCurrentLineNumber(ps.xp),
                (unsigned long)XML_GetCurrentColumnNumber(ps.xp) + 1, "%s",
                XML_ErrorString(code));
    }
    if (ps.status == EMBER_OK)
        ps.status = em_pool_tree_apply(t, ps.defs, ps.ndefs, err);
    XML_ParserFree(ps.xp);
    free_defs(ps.defs, ps.ndefs);
    em_strmap_free(&ps.names);
    return ps.status;
}

ember_status em_pool_tree_load_file(em_pool_tree *t, const char *path,
                                    ember_error *err)
{
    ember_status s = EMBER_OK;
    ember_buf b = ember_buf_heap();
    if (em_pool_tree_mode(t) != EM_SCHED_FAIR)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: allocation files apply only in FAIR "
                            "scheduling mode",
                            path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return ember_errorf(err, e == ENOENT ? EMBER_ENOTFOUND : EMBER_EIO,
                            "cannot read allocation file %s: %s", path,
                            strerror(e));
    }
    for (;;) {
        if (ember_buf_reserve(&b, 65536) != EMBER_OK) {
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            goto done;
        }
        size_t got = fread(b.data + b.len, 1, b.cap - b.len, f);
        b.len += got;
        if (b.len > MAX_FILE_BYTES) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "allocation file %s is larger than 16 MiB", path);
            goto done;
        }
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                s = ember_errorf(err, EMBER_EIO,
                                 "cannot read allocation file %s: %s", path,
                                 strerror(e));
                goto done;
            }
            break;
        }
    }
    s = em_pool_tree_load_xml(t, (const char *)b.data, b.len, path, err);
done:
    fclose(f);
    ember_buf_release(&b);
    return s;
}
