/*
 * plan_codec.c — the plan (JSON) form of a lineage: decoding with full
 * validation, and the canonical encoding.
 *
 * Grammar (JSON; every object rejects keys not listed here):
 *
 *   plan        = {"ember_plan": 1, "datasets": [dataset, ...]}
 *   dataset     = {"id": ID,                         required, unique
 *                  "op": OPNAME,                     required, see ops.c
 *                  "parents": [parent, ...],         default []
 *                  "partitions": COUNT,              see below
 *                  "partitioner": partitioner,       shuffle ops only, required;
 *                                                    checkpoint_read: optional
 *                  "fns": [fn, ...],                 default []
 *                  "args": {...},                    op arguments, any JSON
 *                                                    object, depth <= 64
 *                  "storage": LEVEL,                 default none
 *                  "checkpoint": true | false,       default false
 *                  "determinism": "deterministic" | "unordered" |
 *                                 "indeterminate",   default "deterministic"
 *                  "name": STRING}                   default none
 *   parent      = ID | {"id": ID, "dep": "narrow" | "shuffle"}
 *   fn          = FNNAME | {"name": FNNAME, "arg": BASE64}
 *   partitioner = {"kind": "hash", "partitions": COUNT}
 *               | {"kind": "range", "partitions": COUNT,
 *                  "bounds": BASE64, "descending": true | false}
 *               | {"kind": "function", "partitions": COUNT, "fn": fn}
 *   ID          = integer 0 .. 2^53
 *   COUNT       = integer 0 .. 2^24 (a partitioner's: 1 .. 2^24)
 *   FNNAME      = plugin "." symbol, plugin [A-Za-z0-9_-]+,
 *                 symbol [A-Za-z0-9_.-]+
 *   BASE64      = RFC 4648 with padding, canonical; at most 64 MiB decoded
 *   LEVEL       = NONE DISK_ONLY DISK_ONLY_2 DISK_ONLY_3 MEMORY_ONLY
 *                 MEMORY_ONLY_2 MEMORY_ONLY_SER MEMORY_ONLY_SER_2
 *                 MEMORY_AND_DISK MEMORY_AND_DISK_2 MEMORY_AND_DISK_SER
 *                 MEMORY_AND_DISK_SER_2 OFF_HEAP
 *
 * Datasets may come in any order; parents are named by id. Other strings
 * are at most 64 KiB, a plan holds at most 1,000,000 datasets, a dataset
 * at most 64 parents and 16 functions, and a document at most 1 GiB.
 *
 * Derived values:
 *   - dependency kind, when a parent is a bare id: the op's (narrow or
 *     shuffle); for join-like ops narrow when the parent's output is
 *     partitioned like the node (same kind, count, function, bounds),
 *     else shuffle. Partitioners are compared by class (see
 *     em_partitioner.class_id), interned once per declaring dataset, so
 *     a comparison never rereads bounds or arguments. A declared kind that contradicts this is an error
 *     (a narrow join dependency needs a co-partitioned parent).
 *   - "partitions": required for sources; otherwise derived (the parents'
 *     common count, their sum for union, their product for cartesian, the
 *     partitioner's for shuffle ops) and, if given, must agree; coalesce
 *     takes 1 .. its parent's count (default: the parent's).
 *   - the output partitioner (S13) per em_op.out_part;
 *   - output determinism and the fingerprint (see derive_node); a
 *     checkpoint_read with args "fingerprint" takes that one (the
 *     fingerprint of the dataset it replaces).
 *
 * Nothing here recurses over the plan: the topological sort (Kahn, a
 * min-heap on input position so an already sorted plan keeps its order),
 * the cycle search and the "args" walk are iterative. jansson's parser
 * recurses but stops at JSON_PARSER_MAX_DEPTH (2048).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "dag/base64.h"
#include "dag/lineage.h"
#include "ember/buf.h"

#define DEP_DEFAULT 2 /* a bare parent id: the kind is derived */

/* Per input position: what pass 1 read that em_node has no room for. */
typedef struct pending {
    int64_t parts;     /* "partitions", -1 if absent */
    uint32_t decl_off; /* into dec.decl: declared kinds of the deps */
    uint8_t preserves; /* args.preserves_partitioning */
    uint8_t has_fp;    /* checkpoint_read: args.fingerprint given */
    uint64_t fp;       /* ... its value: the replaced dataset's */
} pending;

/* An interned partitioner in dec.classes: its content hash, its class id
 * (0: a free slot) and the node that declared it first. */
typedef struct part_class {
    uint64_t hash;
    uint32_t id;
    uint32_t rep;
} part_class;

typedef struct dec {
    const em_fn_resolver *resolver;
    ember_error *err;
    json_t *arr;
    uint32_t n;
    em_lineage_slot *ids;  /* (id, input position), sorted by id */
    uint64_t *pos_id;      /* id of each input position */
    em_node *tmp;          /* parsed nodes by input position */
    pending *pend;
    ember_buf decl;        /* declared dep kinds, DEP_DEFAULT if none */
    uint32_t *order;       /* topological order: input positions */
    uint32_t *pos_to_idx;
    uint64_t key[2];       /* SipHash key for the partitioner classes */
    part_class *classes;   /* open addressing, a power of two in size */
    size_t classes_mask;
    uint32_t nclasses;
    char where[160];       /* "plan: dataset 3 (map)" */
} dec;

/* ------------------------------------------------------------------ */
/* messages */

/* Copies s into buf for a message: printable ASCII, others as '?',
 * shortened with "..." past 60 characters. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    size_t i, o = 0;
    for (i = 0; s[i] != '\0' && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    buf[o] = '\0';
    return buf;
}

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a fractional number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    default: return "something else";
    }
}

static void set_where(dec *d, uint32_t pos, const em_op *op)
{
    if (op != NULL)
        snprintf(d->where, sizeof d->where, "plan: dataset %" PRIu64 " (%s)",
                 d->pos_id[pos], op->name);
    else
        snprintf(d->where, sizeof d->where, "plan: dataset %" PRIu64,
                 d->pos_id[pos]);
}

/* ------------------------------------------------------------------ */
/* typed field readers; what names the field in messages */

static ember_status get_uint(dec *d, const json_t *v, const char *what,
                             uint64_t min, uint64_t max, uint64_t *out)
{
    json_int_t x;
    if (!json_is_integer(v))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s must be an integer, got %s", d->where,
                            what, jtype(v));
    x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s must be from %" PRIu64 " to %" PRIu64
                            ", got %" JSON_INTEGER_FORMAT,
                            d->where, what, min, max, x);
    *out = (uint64_t)x;
    return EMBER_OK;
}

/* A string of at most EM_LINEAGE_MAX_STRING bytes without NUL. */
static ember_status get_str(dec *d, const json_t *v, const char *what,
                            const char **out)
{
    size_t len;
    if (!json_is_string(v))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s must be a string, got %s", d->where, what,
                            jtype(v));
    len = json_string_length(v);
    if (len > EM_LINEAGE_MAX_STRING)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s is %zu bytes, more than the %u allowed",
                            d->where, what, len, EM_LINEAGE_MAX_STRING);
    *out = json_string_value(v);
    if (strlen(*out) != len)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s contains a NUL character", d->where, what);
    return EMBER_OK;
}

static ember_status dup_str(dec *d, const char *s, char **out)
{
    size_t n = strlen(s);
    *out = (char *)malloc(n + 1);
    if (*out == NULL)
        return ember_errorf(d->err, EMBER_ENOMEM, "%s: out of memory",
                            d->where);
    memcpy(*out, s, n + 1);
    return EMBER_OK;
}

/* A base64 blob (what names it) of at most EM_LINEAGE_MAX_BLOB bytes. */
static ember_status get_blob(dec *d, const json_t *v, const char *what,
                             uint8_t **out, size_t *out_len)
{
    size_t bad = 0;
    ember_status s;
    if (!json_is_string(v))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s must be a base64 string, got %s", d->where,
                            what, jtype(v));
    s = em_base64_decode(out, out_len, json_string_value(v),
                         json_string_length(v), EM_LINEAGE_MAX_BLOB, &bad);
    if (s == EMBER_EINVAL)
        return ember_errorf(d->err, s,
                            "%s: %s is not valid base64 (at character %zu)",
                            d->where, what, bad);
    if (s == EMBER_ENOSPC)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s is more than %u bytes", d->where, what,
                            EM_LINEAGE_MAX_BLOB);
    if (s != EMBER_OK)
        return ember_errorf(d->err, s, "%s: out of memory", d->where);
    return EMBER_OK;
}

static int is_plugin_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Checks "plugin.symbol" syntax, then asks the resolver. */
static ember_status check_fn_name(dec *d, const char *name, const char *what)
{
    const char *dot = strchr(name, '.');
    const char *p;
    char buf[80];
    int ok = dot != NULL && dot != name && dot[1] != '\0';
    for (p = name; ok && p < dot; p++)
        ok = is_plugin_char((unsigned char)*p);
    for (p = dot ? dot + 1 : name; ok && *p; p++)
        ok = is_plugin_char((unsigned char)*p) || *p == '.';
    if (!ok)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s '%s' is not a function name "
                            "(plugin.symbol)",
                            d->where, what, shown(name, buf, sizeof buf));
    if (d->resolver != NULL && d->resolver->exists != NULL &&
        !d->resolver->exists(d->resolver->ctx, name))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: unknown function '%s'", d->where, name);
    return EMBER_OK;
}

/* fn = FNNAME | {"name": FNNAME, "arg": BASE64} */
static ember_status get_fn(dec *d, json_t *v, const char *what, em_fn_ref *f)
{
    const char *name = NULL, *key;
    json_t *val, *arg = NULL;
    char buf[80];
    ember_status s;
    if (json_is_string(v)) {
        s = get_str(d, v, what, &name);
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, val) {
            if (strcmp(key, "name") == 0)
                name = ""; /* read below */
            else if (strcmp(key, "arg") == 0)
                arg = val;
            else
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: %s: unknown key '%s'", d->where,
                                    what, shown(key, buf, sizeof buf));
        }
        if (name == NULL)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: %s has no \"name\"", d->where, what);
        s = get_str(d, json_object_get(v, "name"), what, &name);
    } else {
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: %s must be a function name or an object with "
                            "\"name\" and \"arg\", got %s",
                            d->where, what, jtype(v));
    }
    if (s == EMBER_OK)
        s = check_fn_name(d, name, what);
    if (s == EMBER_OK)
        s = dup_str(d, name, &f->name);
    if (s == EMBER_OK && arg != NULL) {
        char w[64];
        snprintf(w, sizeof w, "%s.arg", what);
        s = get_blob(d, arg, w, &f->arg, &f->arg_len);
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* "args": checked iteratively, then dumped compact with sorted keys */

typedef struct args_frame {
    json_t *v;
    void *iter;  /* objects */
    size_t next; /* arrays */
} args_frame;

static int dump_to_buf(const char *buffer, size_t size, void *data)
{
    return ember_buf_append((ember_buf *)data, buffer, size) == EMBER_OK ? 0
                                                                         : -1;
}

static ember_status get_args(dec *d, json_t *args, char **out)
{
    args_frame st[EM_LINEAGE_MAX_ARGS_DEPTH];
    size_t depth = 1;
    ember_buf b = ember_buf_heap();
    ember_status s = EMBER_OK;
    if (!json_is_object(args))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: \"args\" must be an object, got %s", d->where,
                            jtype(args));
    st[0].v = args;
    st[0].iter = json_object_iter(args);
    st[0].next = 0;
    while (depth > 0) {
        args_frame *f = &st[depth - 1];
        json_t *child;
        if (json_is_object(f->v)) {
            const char *key;
            if (f->iter == NULL) {
                depth--;
                continue;
            }
            key = json_object_iter_key(f->iter);
            child = json_object_iter_value(f->iter);
            f->iter = json_object_iter_next(f->v, f->iter);
            if (strlen(key) > EM_LINEAGE_MAX_STRING)
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: \"args\" has a key longer than %u "
                                    "bytes",
                                    d->where, EM_LINEAGE_MAX_STRING);
        } else {
            if (f->next >= json_array_size(f->v)) {
                depth--;
                continue;
            }
            child = json_array_get(f->v, f->next++);
        }
        if (json_is_string(child) &&
            json_string_length(child) > EM_LINEAGE_MAX_STRING)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"args\" has a string longer than %u "
                                "bytes",
                                d->where, EM_LINEAGE_MAX_STRING);
        if (json_is_object(child) || json_is_array(child)) {
            if (depth == EM_LINEAGE_MAX_ARGS_DEPTH)
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: \"args\" is nested more than %u "
                                    "deep",
                                    d->where, EM_LINEAGE_MAX_ARGS_DEPTH);
            st[depth].v = child;
            st[depth].iter = json_is_object(child) ? json_object_iter(child)
                                                   : NULL;
            st[depth].next = 0;
            depth++;
        }
    }
    if (json_dump_callback(args, dump_to_buf, &b,
                           JSON_COMPACT | JSON_SORT_KEYS) != 0 ||
        ember_buf_put_u8(&b, '\0') != EMBER_OK) {
        s = ember_errorf(d->err, b.len ? EMBER_ENOMEM : EMBER_EINVAL,
                         "%s: \"args\" cannot be written out as JSON%s",
                         d->where, b.len ? " (out of memory)" : "");
        goto done;
    }
    *out = (char *)b.data;
    b = ember_buf_heap();

done:
    ember_buf_release(&b);
    return s;
}

/* ------------------------------------------------------------------ */
/* pass 0: ids */

static int slot_cmp(const void *a, const void *b)
{
    const em_lineage_slot *x = (const em_lineage_slot *)a;
    const em_lineage_slot *y = (const em_lineage_slot *)b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static ember_status read_ids(dec *d)
{
    uint32_t i;
    for (i = 0; i < d->n; i++) {
        json_t *o = json_array_get(d->arr, i);
        json_t *id;
        uint64_t v;
        ember_status s;
        snprintf(d->where, sizeof d->where, "plan: datasets[%" PRIu32 "]", i);
        if (!json_is_object(o))
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s must be an object, got %s", d->where,
                                jtype(o));
        id = json_object_get(o, "id");
        if (id == NULL)
            return ember_errorf(d->err, EMBER_EINVAL, "%s has no \"id\"",
                                d->where);
        s = get_uint(d, id, "\"id\"", 0, EM_LINEAGE_MAX_ID, &v);
        if (s != EMBER_OK)
            return s;
        d->pos_id[i] = v;
        d->ids[i].id = v;
        d->ids[i].index = i;
    }
    qsort(d->ids, d->n, sizeof *d->ids, slot_cmp);
    for (i = 1; i < d->n; i++)
        if (d->ids[i].id == d->ids[i - 1].id)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "plan: duplicate dataset id %" PRIu64
                                " (datasets[%" PRIu32 "] and datasets[%" PRIu32
                                "])",
                                d->ids[i].id, d->ids[i - 1].index,
                                d->ids[i].index);
    return EMBER_OK;
}

/* Input position of dataset id, or -1. */
static int64_t pos_of(const dec *d, uint64_t id)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->ids[mid].id == id)
            return d->ids[mid].index;
        if (d->ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* pass 1: every field of one dataset, parents as input positions */

static ember_status parse_partitioner(dec *d, json_t *v, em_partitioner *p)
{
    const char *key, *kind = NULL;
    json_t *val, *jk, *jn;
    uint64_t parts;
    char buf[80];
    ember_status s;
    if (!json_is_object(v))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: \"partitioner\" must be an object, got %s",
                            d->where, jtype(v));
    jk = json_object_get(v, "kind");
    if (jk == NULL)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: \"partitioner\" has no \"kind\"", d->where);
    s = get_str(d, jk, "partitioner \"kind\"", &kind);
    if (s != EMBER_OK)
        return s;
    if (strcmp(kind, "hash") == 0)
        p->kind = EM_PART_HASH;
    else if (strcmp(kind, "range") == 0)
        p->kind = EM_PART_RANGE;
    else if (strcmp(kind, "function") == 0)
        p->kind = EM_PART_FUNCTION;
    else
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: unknown partitioner kind '%s' (hash, range "
                            "or function)",
                            d->where, shown(kind, buf, sizeof buf));
    json_object_foreach(v, key, val) {
        int ok = strcmp(key, "kind") == 0 || strcmp(key, "partitions") == 0 ||
                 (p->kind == EM_PART_RANGE && (strcmp(key, "bounds") == 0 ||
                                               strcmp(key, "descending") == 0)) ||
                 (p->kind == EM_PART_FUNCTION && strcmp(key, "fn") == 0);
        if (!ok)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: unknown key '%s' in a %s partitioner",
                                d->where, shown(key, buf, sizeof buf), kind);
    }
    jn = json_object_get(v, "partitions");
    if (jn == NULL)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: the partitioner has no \"partitions\"",
                            d->where);
    s = get_uint(d, jn, "the partitioner's \"partitions\"", 1,
                 EM_LINEAGE_MAX_PARTITIONS, &parts);
    if (s != EMBER_OK)
        return s;
    p->partitions = (uint32_t)parts;
    if (p->kind == EM_PART_RANGE) {
        json_t *b = json_object_get(v, "bounds");
        json_t *desc = json_object_get(v, "descending");
        if (b != NULL) {
            s = get_blob(d, b, "partitioner \"bounds\"", &p->bounds,
                         &p->bounds_len);
            if (s != EMBER_OK)
                return s;
        }
        if (desc != NULL) {
            if (!json_is_boolean(desc))
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: partitioner \"descending\" must be "
                                    "true or false, got %s",
                                    d->where, jtype(desc));
            p->descending = json_is_true(desc);
        }
    } else if (p->kind == EM_PART_FUNCTION) {
        json_t *fn = json_object_get(v, "fn");
        if (fn == NULL)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: a function partitioner needs \"fn\"",
                                d->where);
        s = get_fn(d, fn, "partitioner \"fn\"", &p->fn);
        if (s != EMBER_OK)
            return s;
    }
    return EMBER_OK;
}

static ember_status parse_parents(dec *d, uint32_t pos, json_t *v,
                                  em_node *nd)
{
    const em_op *op = nd->op;
    size_t count, j;
    char buf[80];
    if (v == NULL) {
        count = 0;
    } else if (!json_is_array(v)) {
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: \"parents\" must be an array, got %s",
                            d->where, jtype(v));
    } else {
        count = json_array_size(v);
    }
    {
        size_t max = op->max_parents == 255 ? EM_LINEAGE_MAX_PARENTS
                                            : op->max_parents;
        if (count < op->min_parents || count > max) {
            if (op->min_parents == max)
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: takes %u parent%s, got %zu", d->where,
                                    (unsigned)max, max == 1 ? "" : "s", count);
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: takes %u to %zu parents, got %zu",
                                d->where, op->min_parents, max, count);
        }
    }
    d->pend[pos].decl_off = (uint32_t)d->decl.len;
    if (count == 0)
        return EMBER_OK;
    if (ember_buf_reserve(&d->decl, count) != EMBER_OK)
        return ember_errorf(d->err, EMBER_ENOMEM, "%s: out of memory",
                            d->where);
    nd->deps = (em_dep *)calloc(count, sizeof *nd->deps);
    if (nd->deps == NULL)
        return ember_errorf(d->err, EMBER_ENOMEM, "%s: out of memory",
                            d->where);
    nd->ndeps = (uint32_t)count;
    for (j = 0; j < count; j++) {
        json_t *e = json_array_get(v, j), *jid = e;
        uint8_t decl = DEP_DEFAULT;
        uint64_t id;
        int64_t ppos;
        char what[48];
        ember_status s;
        snprintf(what, sizeof what, "parents[%zu]", j);
        if (json_is_object(e)) {
            const char *key, *dep;
            json_t *val, *jdep;
            json_object_foreach(e, key, val) {
                if (strcmp(key, "id") != 0 && strcmp(key, "dep") != 0)
                    return ember_errorf(d->err, EMBER_EINVAL,
                                        "%s: %s: unknown key '%s'", d->where,
                                        what, shown(key, buf, sizeof buf));
            }
            jid = json_object_get(e, "id");
            if (jid == NULL)
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: %s has no \"id\"", d->where, what);
            jdep = json_object_get(e, "dep");
            if (jdep != NULL) {
                s = get_str(d, jdep, "a parent's \"dep\"", &dep);
                if (s != EMBER_OK)
                    return s;
                if (strcmp(dep, "narrow") == 0)
                    decl = EM_DEP_NARROW;
                else if (strcmp(dep, "shuffle") == 0)
                    decl = EM_DEP_SHUFFLE;
                else
                    return ember_errorf(d->err, EMBER_EINVAL,
                                        "%s: %s: \"dep\" must be \"narrow\" "
                                        "or \"shuffle\", got '%s'",
                                        d->where, what,
                                        shown(dep, buf, sizeof buf));
            }
        } else if (!json_is_integer(e)) {
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: %s must be a dataset id or an object "
                                "with \"id\" and \"dep\", got %s",
                                d->where, what, jtype(e));
        }
        s = get_uint(d, jid, "a parent id", 0, EM_LINEAGE_MAX_ID, &id);
        if (s != EMBER_OK)
            return s;
        ppos = pos_of(d, id);
        if (ppos < 0)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: parent %" PRIu64 " is not in the plan",
                                d->where, id);
        if ((uint32_t)ppos == pos)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "plan: cycle among datasets %" PRIu64
                                " -> %" PRIu64 " (dataset %" PRIu64
                                " lists itself as a parent)",
                                id, id, id);
        if (op->deps == EM_OP_DEPS_NARROW && decl == EM_DEP_SHUFFLE)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: a %s reads its parents without a "
                                "shuffle; parent %" PRIu64
                                " cannot be a shuffle dependency",
                                d->where, op->name, id);
        if (op->deps == EM_OP_DEPS_SHUFFLE && decl == EM_DEP_NARROW)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: a %s always shuffles; parent %" PRIu64
                                " cannot be a narrow dependency",
                                d->where, op->name, id);
        nd->deps[j].parent = (uint32_t)ppos;
        nd->deps[j].kind = EM_DEP_NARROW;
        d->decl.data[d->decl.len++] = decl;
    }
    return EMBER_OK;
}

static ember_status parse_fns(dec *d, json_t *v, em_node *nd)
{
    const em_op *op = nd->op;
    size_t count = 0, j;
    if (v != NULL) {
        if (!json_is_array(v))
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"fns\" must be an array, got %s",
                                d->where, jtype(v));
        count = json_array_size(v);
    }
    if (count < op->min_fns || count > op->max_fns) {
        if (op->min_fns == op->max_fns)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: takes %u function%s, got %zu", d->where,
                                op->min_fns, op->max_fns == 1 ? "" : "s",
                                count);
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: takes %u to %u functions, got %zu", d->where,
                            op->min_fns, op->max_fns, count);
    }
    if (count == 0)
        return EMBER_OK;
    nd->fns = (em_fn_ref *)calloc(count, sizeof *nd->fns);
    if (nd->fns == NULL)
        return ember_errorf(d->err, EMBER_ENOMEM, "%s: out of memory",
                            d->where);
    nd->nfns = (uint32_t)count;
    for (j = 0; j < count; j++) {
        char what[32];
        ember_status s;
        snprintf(what, sizeof what, "fns[%zu]", j);
        s = get_fn(d, json_array_get(v, j), what, &nd->fns[j]);
        if (s != EMBER_OK)
            return s;
    }
    return EMBER_OK;
}

/*
 * checkpoint_read's args.fingerprint: 16 lowercase hex digits, the
 * fingerprint of the dataset the checkpoint replaces, which the node then
 * takes as its own (the kernel checks that dataset ids keep their
 * fingerprints within an application, and reuses shuffles below it).
 */
static ember_status get_replaced_fingerprint(dec *d, const em_node *nd,
                                             json_t *args, pending *pd)
{
    json_t *f = json_object_get(args, "fingerprint");
    const char *t;
    uint64_t v = 0;
    size_t i;
    if (f == NULL || strcmp(nd->op->name, "checkpoint_read") != 0)
        return EMBER_OK;
    t = json_string_value(f);
    for (i = 0; t != NULL && i < 16; i++) {
        char c = t[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            break;
    }
    if (t == NULL || i != 16 || t[16] != '\0')
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: args \"fingerprint\" must be 16 lowercase "
                            "hex digits", d->where);
    pd->has_fp = 1;
    pd->fp = v;
    return EMBER_OK;
}

static const char *const dataset_keys[] = {
    "id",      "op",      "parents",     "partitions",
    "partitioner", "fns", "args",        "storage",
    "checkpoint", "determinism", "name",
};

static ember_status parse_dataset(dec *d, uint32_t pos)
{
    json_t *o = json_array_get(d->arr, pos), *v, *val;
    em_node *nd = &d->tmp[pos];
    pending *pd = &d->pend[pos];
    const char *key, *str;
    char buf[80];
    ember_status s;
    size_t k;

    nd->id = d->pos_id[pos];
    nd->determinism = EM_DET_DETERMINATE;
    pd->parts = -1;
    set_where(d, pos, NULL);

    v = json_object_get(o, "op");
    if (v == NULL)
        return ember_errorf(d->err, EMBER_EINVAL, "%s has no \"op\"",
                            d->where);
    s = get_str(d, v, "\"op\"", &str);
    if (s != EMBER_OK)
        return s;
    nd->op = em_op_find(str);
    if (nd->op == NULL)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: unknown operation '%s'", d->where,
                            shown(str, buf, sizeof buf));
    set_where(d, pos, nd->op);

    json_object_foreach(o, key, val) {
        for (k = 0; k < sizeof dataset_keys / sizeof dataset_keys[0]; k++)
            if (strcmp(key, dataset_keys[k]) == 0)
                break;
        if (k == sizeof dataset_keys / sizeof dataset_keys[0])
            return ember_errorf(d->err, EMBER_EINVAL, "%s: unknown key '%s'",
                                d->where, shown(key, buf, sizeof buf));
    }

    s = parse_parents(d, pos, json_object_get(o, "parents"), nd);
    if (s != EMBER_OK)
        return s;
    s = parse_fns(d, json_object_get(o, "fns"), nd);
    if (s != EMBER_OK)
        return s;

    v = json_object_get(o, "partitions");
    if (v != NULL) {
        uint64_t p;
        s = get_uint(d, v, "\"partitions\"", 0, EM_LINEAGE_MAX_PARTITIONS, &p);
        if (s != EMBER_OK)
            return s;
        pd->parts = (int64_t)p;
    }

    v = json_object_get(o, "partitioner");
    if (nd->op->needs_partitioner == EM_OP_NP_OPTIONAL && v == NULL) {
        /* none given: the node's output claims no partitioner */
    } else if (nd->op->needs_partitioner) {
        if (v == NULL)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: a %s needs a \"partitioner\"", d->where,
                                nd->op->name);
        s = parse_partitioner(d, v, &nd->partitioner);
        if (s != EMBER_OK)
            return s;
    } else if (v != NULL) {
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: a %s takes no \"partitioner\" (its output "
                            "partitioner is derived)",
                            d->where, nd->op->name);
    }

    v = json_object_get(o, "args");
    if (v != NULL) {
        s = get_args(d, v, &nd->args_json);
        if (s != EMBER_OK)
            return s;
        if (nd->op->out_part == EM_OUT_PARENT_IF_ARG) {
            json_t *pp = json_object_get(v, "preserves_partitioning");
            if (pp != NULL && !json_is_boolean(pp))
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: args \"preserves_partitioning\" must "
                                    "be true or false, got %s",
                                    d->where, jtype(pp));
            pd->preserves = pp != NULL && json_is_true(pp);
        }
        s = get_replaced_fingerprint(d, nd, v, pd);
        if (s != EMBER_OK)
            return s;
    }

    v = json_object_get(o, "storage");
    if (v != NULL) {
        s = get_str(d, v, "\"storage\"", &str);
        if (s != EMBER_OK)
            return s;
        if (!em_storage_level_known(str))
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: unknown storage level '%s' (NONE, "
                                "MEMORY_ONLY, MEMORY_AND_DISK, DISK_ONLY, "
                                "OFF_HEAP, ...)",
                                d->where, shown(str, buf, sizeof buf));
        /* executors and the kernel name a cached block by application
         * and dataset in one 64-bit key, 32 bits each */
        if (strcmp(str, "NONE") != 0 && nd->id > UINT32_MAX)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: a persisted dataset's id must be below "
                                "2^32 (it is %" PRIu64 ")",
                                d->where, nd->id);
        s = dup_str(d, str, &nd->storage);
        if (s != EMBER_OK)
            return s;
    }

    v = json_object_get(o, "checkpoint");
    if (v != NULL) {
        if (!json_is_boolean(v))
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"checkpoint\" must be true or false, "
                                "got %s",
                                d->where, jtype(v));
        nd->checkpoint = json_is_true(v);
    }

    v = json_object_get(o, "determinism");
    if (v != NULL) {
        s = get_str(d, v, "\"determinism\"", &str);
        if (s != EMBER_OK)
            return s;
        if (strcmp(str, "deterministic") == 0)
            nd->determinism = EM_DET_DETERMINATE;
        else if (strcmp(str, "unordered") == 0)
            nd->determinism = EM_DET_UNORDERED;
        else if (strcmp(str, "indeterminate") == 0)
            nd->determinism = EM_DET_INDETERMINATE;
        else
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"determinism\" must be "
                                "\"deterministic\", \"unordered\" or "
                                "\"indeterminate\", got '%s'",
                                d->where, shown(str, buf, sizeof buf));
    }

    v = json_object_get(o, "name");
    if (v != NULL) {
        s = get_str(d, v, "\"name\"", &str);
        if (s == EMBER_OK)
            s = dup_str(d, str, &nd->name);
        if (s != EMBER_OK)
            return s;
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------ */
/* pass 2: topological order (Kahn on a min-heap of input positions) */

static void heap_push(uint32_t *h, uint32_t *n, uint32_t v)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (h[up] <= v)
            break;
        h[i] = h[up];
        i = up;
    }
    h[i] = v;
}

static uint32_t heap_pop(uint32_t *h, uint32_t *n)
{
    uint32_t top = h[0], last = h[--(*n)], i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= last)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

/* Names a cycle among the datasets left unsorted (indeg > 0). */
static ember_status report_cycle(dec *d, const uint32_t *indeg)
{
    uint32_t *step = NULL, *path = NULL, cur = 0, len = 0, i, start;
    char msg[400];
    size_t o = 0;
    ember_status s = EMBER_EINVAL;
    step = (uint32_t *)malloc((size_t)d->n * sizeof *step);
    path = (uint32_t *)malloc((size_t)d->n * sizeof *path);
    if (step == NULL || path == NULL) {
        s = ember_errorf(d->err, EMBER_ENOMEM,
                         "plan: cycle among datasets (out of memory naming "
                         "it)");
        goto done;
    }
    memset(step, 0xFF, (size_t)d->n * sizeof *step);
    while (indeg[cur] == 0)
        cur++;
    /* walk to unsorted parents (each unsorted dataset has one) until a
     * dataset comes round again */
    while (step[cur] == UINT32_MAX) {
        const em_node *nd = &d->tmp[cur];
        step[cur] = len;
        path[len++] = cur;
        for (i = 0; i < nd->ndeps; i++)
            if (indeg[nd->deps[i].parent] > 0)
                break;
        cur = nd->deps[i].parent;
    }
    start = step[cur];
    /* path[start..len) walks child -> parent; print parent -> child */
    o += (size_t)snprintf(msg, sizeof msg, "%" PRIu64, d->pos_id[cur]);
    for (i = len; i-- > start;) {
        if (o > sizeof msg - 64) {
            o += (size_t)snprintf(msg + o, sizeof msg - o,
                                  " -> ... -> %" PRIu64, d->pos_id[cur]);
            break;
        }
        o += (size_t)snprintf(msg + o, sizeof msg - o, " -> %" PRIu64,
                              d->pos_id[path[i]]);
    }
    s = ember_errorf(d->err, EMBER_EINVAL, "plan: cycle among datasets %s",
                     msg);

done:
    free(step);
    free(path);
    return s;
}

static ember_status topo_sort(dec *d)
{
    uint32_t *indeg = NULL, *coff = NULL, *clist = NULL, *heap = NULL;
    uint32_t i, j, hn = 0, k = 0;
    size_t edges = d->decl.len;
    ember_status s = EMBER_OK;

    indeg = (uint32_t *)calloc((size_t)d->n + 1, sizeof *indeg);
    coff = (uint32_t *)calloc((size_t)d->n + 1, sizeof *coff);
    clist = (uint32_t *)malloc((edges ? edges : 1) * sizeof *clist);
    heap = (uint32_t *)malloc(((size_t)d->n + 1) * sizeof *heap);
    d->order = (uint32_t *)malloc(((size_t)d->n + 1) * sizeof *d->order);
    d->pos_to_idx = (uint32_t *)malloc(((size_t)d->n + 1) *
                                       sizeof *d->pos_to_idx);
    if (!indeg || !coff || !clist || !heap || !d->order || !d->pos_to_idx) {
        s = ember_errorf(d->err, EMBER_ENOMEM, "plan: out of memory");
        goto done;
    }
    /* children of each position, in CSR form: coff[p]..coff[p+1] */
    for (i = 0; i < d->n; i++) {
        indeg[i] = d->tmp[i].ndeps;
        for (j = 0; j < d->tmp[i].ndeps; j++)
            coff[d->tmp[i].deps[j].parent + 1]++;
    }
    for (i = 0; i < d->n; i++)
        coff[i + 1] += coff[i];
    {
        uint32_t *fill = heap; /* borrowed as a cursor array for a moment */
        memcpy(fill, coff, (size_t)d->n * sizeof *fill);
        for (i = 0; i < d->n; i++)
            for (j = 0; j < d->tmp[i].ndeps; j++)
                clist[fill[d->tmp[i].deps[j].parent]++] = i;
    }
    for (i = 0; i < d->n; i++)
        if (indeg[i] == 0)
            heap_push(heap, &hn, i);
    while (hn > 0) {
        uint32_t p = heap_pop(heap, &hn);
        d->pos_to_idx[p] = k;
        d->order[k++] = p;
        for (j = coff[p]; j < coff[p + 1]; j++)
            if (--indeg[clist[j]] == 0)
                heap_push(heap, &hn, clist[j]);
    }
    if (k < d->n)
        s = report_cycle(d, indeg);

done:
    free(indeg);
    free(coff);
    free(clist);
    free(heap);
    return s;
}

/* ------------------------------------------------------------------ */
/* pass 3: derived values, in topological order */

typedef struct fnv {
    uint64_t h;
} fnv;

static void fnv_bytes(fnv *f, const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i;
    for (i = 0; i < n; i++) {
        f->h ^= b[i];
        f->h *= UINT64_C(0x100000001b3);
    }
}

static void fnv_u64(fnv *f, uint64_t v)
{
    uint8_t b[8];
    int i;
    for (i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    fnv_bytes(f, b, 8);
}

/* Length-prefixed, so no two field sequences hash the same bytes. */
static void fnv_blob(fnv *f, const void *p, size_t n)
{
    fnv_u64(f, n);
    fnv_bytes(f, p, n);
}

static void fnv_str(fnv *f, const char *s)
{
    if (s == NULL)
        fnv_u64(f, UINT64_MAX);
    else
        fnv_blob(f, s, strlen(s));
}

static void fnv_fn(fnv *f, const em_fn_ref *r)
{
    fnv_str(f, r->name);
    fnv_blob(f, r->arg, r->arg_len);
}

/*
 * The fingerprint: FNV-1a over op, partitions, the declared partitioner,
 * functions, args, declared determinism and each dependency's kind and
 * parent fingerprint (not the id, storage, checkpoint or name), finished
 * with a 64-bit mixer so near-identical inputs spread over all bits.
 */
static uint64_t fingerprint(const em_lineage *l, const em_node *n)
{
    fnv f = {UINT64_C(0xcbf29ce484222325)};
    uint64_t h;
    uint32_t i;
    fnv_str(&f, n->op->name);
    fnv_u64(&f, n->partitions);
    if (n->op->needs_partitioner) {
        const em_partitioner *p = &n->partitioner;
        fnv_u64(&f, (uint64_t)p->kind);
        fnv_u64(&f, p->partitions);
        fnv_fn(&f, &p->fn);
        fnv_blob(&f, p->bounds, p->bounds_len);
        fnv_u64(&f, p->descending != 0);
    }
    fnv_u64(&f, n->nfns);
    for (i = 0; i < n->nfns; i++)
        fnv_fn(&f, &n->fns[i]);
    fnv_str(&f, n->args_json);
    fnv_u64(&f, (uint64_t)n->determinism);
    fnv_u64(&f, n->ndeps);
    for (i = 0; i < n->ndeps; i++) {
        fnv_u64(&f, (uint64_t)n->deps[i].kind);
        fnv_u64(&f, l->nodes[n->deps[i].parent].fingerprint);
    }
    h = f.h;
    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 31);
}

/*
 * Partitioner classes. Comparing partitioners by content costs up to
 * 64 MiB each time, and a plan can ask for a comparison per dependency of
 * every union and join, so each declared partitioner is interned once:
 * hashed, looked up among the classes seen so far, and compared by content
 * only with the classes of the same hash (one, short of a 64-bit
 * collision). The hash is SipHash-2-4 under a fresh random key per decode,
 * so a plan cannot be built to make many different partitioners collide.
 */
static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND                                                              \
    do {                                                                      \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);        \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                             \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                             \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);        \
    } while (0)

static uint64_t siphash(const uint64_t key[2], const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    uint64_t v0 = key[0] ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = key[1] ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = key[0] ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = key[1] ^ UINT64_C(0x7465646279746573);
    uint64_t m;
    size_t i, left = n & 7;
    for (i = 0; i + 8 <= n; i += 8) {
        m = load_le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    m = (uint64_t)n << 56;
    while (left-- > 0)
        m |= (uint64_t)p[i + left] << (8 * left);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

#undef SIPROUND

static void seed_key(uint64_t key[2], const void *salt)
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) == (ssize_t)sizeof b) {
        key[0] = load_le64(b);
        key[1] = load_le64(b + 8);
    } else {
        /* no entropy yet (early boot): still unknown to the plan's author */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        key[0] = (uint64_t)t.tv_sec * UINT64_C(1000000000) +
                 (uint64_t)t.tv_nsec;
        key[1] = (uint64_t)(uintptr_t)salt ^ rotl64(key[0], 29);
    }
}

/* A hash of exactly what em_partitioner_equal compares. */
static uint64_t part_hash(const dec *d, const em_partitioner *p)
{
    uint64_t w[5] = {(uint64_t)p->kind, p->partitions, 0, 0, 0};
    uint8_t b[sizeof w];
    size_t i, k;
    if (p->kind == EM_PART_RANGE) {
        w[2] = p->descending != 0;
        w[3] = p->bounds_len;
        w[4] = siphash(d->key, p->bounds, p->bounds_len);
    } else if (p->kind == EM_PART_FUNCTION) {
        w[2] = p->fn.name ? siphash(d->key, p->fn.name, strlen(p->fn.name))
                          : UINT64_MAX;
        w[3] = p->fn.arg_len;
        w[4] = siphash(d->key, p->fn.arg, p->fn.arg_len);
    }
    for (i = 0; i < 5; i++)
        for (k = 0; k < 8; k++)
            b[8 * i + k] = (uint8_t)(w[i] >> (8 * k));
    return siphash(d->key, b, sizeof b);
}

/* Sizes the class table for the nodes of l that declare a partitioner. */
static ember_status classes_init(dec *d, const em_lineage *l)
{
    size_t owners = 0, cap = 16;
    uint32_t i;
    for (i = 0; i < l->count; i++)
        owners += l->nodes[i].op->needs_partitioner != 0;
    while (cap < 2 * owners)
        cap *= 2;
    d->classes = (part_class *)calloc(cap, sizeof *d->classes);
    if (d->classes == NULL)
        return ember_errorf(d->err, EMBER_ENOMEM, "plan: out of memory");
    d->classes_mask = cap - 1;
    seed_key(d->key, d);
    return EMBER_OK;
}

/* Gives node idx's declared partitioner its class id (lineage.h). */
static void intern_partitioner(dec *d, em_lineage *l, uint32_t idx)
{
    em_partitioner *p = &l->nodes[idx].partitioner;
    uint64_t h = part_hash(d, p);
    size_t i = (size_t)h & d->classes_mask;
    /* at most half full (classes_init), so a free slot ends every probe */
    for (;; i = (i + 1) & d->classes_mask) {
        part_class *c = &d->classes[i];
        if (c->id == 0) {
            c->hash = h;
            c->id = ++d->nclasses;
            c->rep = idx;
            p->class_id = c->id;
            return;
        }
        if (c->hash == h &&
            em_partitioner_equal(&l->nodes[c->rep].partitioner, p)) {
            p->class_id = c->id;
            return;
        }
    }
}

/* The class of a partitioner that may be NULL (no partitioner: 0). */
static uint32_t class_of(const em_partitioner *p)
{
    return p == NULL ? 0 : p->class_id;
}

static const char *part_desc(const em_partitioner *p, char *buf, size_t cap)
{
    if (p == NULL || p->kind == EM_PART_NONE)
        snprintf(buf, cap, "none");
    else
        snprintf(buf, cap, "%s/%" PRIu32, em_part_kind_name(p->kind),
                 p->partitions);
    return buf;
}

static ember_status derive_partitions(dec *d, em_lineage *l, em_node *n,
                                      const pending *pd, int *union_aware)
{
    const em_op *op = n->op;
    uint64_t derived = 0;
    uint32_t j;
    *union_aware = 0;
    switch ((em_op_parts)op->parts) {
    case EM_OP_PARTS_GIVEN:
        if (pd->parts < 0)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"partitions\" is required for a %s",
                                d->where, op->name);
        n->partitions = (uint32_t)pd->parts;
        if (n->partitioner.kind != EM_PART_NONE &&
            n->partitioner.partitions != n->partitions)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"partitions\" is %" PRIu32 " but the "
                                "partitioner has %" PRIu32, d->where,
                                n->partitions, n->partitioner.partitions);
        return EMBER_OK;
    case EM_OP_PARTS_SAME:
        derived = l->nodes[n->deps[0].parent].partitions;
        for (j = 1; j < n->ndeps; j++) {
            const em_node *p = &l->nodes[n->deps[j].parent];
            if (p->partitions != derived)
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: parents have different partition "
                                    "counts (%" PRIu64 " and %" PRIu32 ")",
                                    d->where, derived, p->partitions);
        }
        break;
    case EM_OP_PARTS_SUM: {
        const em_partitioner *first =
            em_node_output_partitioner(&l->nodes[n->deps[0].parent]);
        int same = op->out_part == EM_OUT_UNION && first != NULL;
        for (j = 0; j < n->ndeps; j++) {
            const em_node *p = &l->nodes[n->deps[j].parent];
            derived += p->partitions;
            if (same && class_of(first) !=
                            class_of(em_node_output_partitioner(p)))
                same = 0;
        }
        if (same) {
            derived = first->partitions;
            *union_aware = 1;
        }
        break;
    }
    case EM_OP_PARTS_AT_MOST: {
        uint32_t parent = l->nodes[n->deps[0].parent].partitions;
        if (pd->parts < 0) {
            n->partitions = parent;
        } else if (parent == 0 ? pd->parts != 0
                               : (pd->parts < 1 || pd->parts > parent)) {
            return ember_errorf(d->err, EMBER_EINVAL,
                                "%s: \"partitions\" is %" PRId64
                                " but must be from %u to %" PRIu32
                                " (its parent's count)",
                                d->where, pd->parts, parent ? 1u : 0u, parent);
        } else {
            n->partitions = (uint32_t)pd->parts;
        }
        return EMBER_OK;
    }
    case EM_OP_PARTS_PRODUCT:
        derived = 1;
        for (j = 0; j < n->ndeps; j++) {
            derived *= l->nodes[n->deps[j].parent].partitions;
            if (derived > EM_LINEAGE_MAX_PARTITIONS)
                break;
        }
        break;
    case EM_OP_PARTS_PARTITIONER:
        derived = n->partitioner.partitions;
        break;
    default:
        return ember_errorf(d->err, EMBER_EINTERNAL,
                            "%s: bad partition rule in the op table",
                            d->where);
    }
    if (derived > EM_LINEAGE_MAX_PARTITIONS)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: would have %" PRIu64
                            " partitions, more than the %u allowed",
                            d->where, derived, EM_LINEAGE_MAX_PARTITIONS);
    if (pd->parts >= 0 && (uint64_t)pd->parts != derived)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "%s: \"partitions\" is %" PRId64
                            " but a %s of these parents has %" PRIu64,
                            d->where, pd->parts, op->name, derived);
    n->partitions = (uint32_t)derived;
    return EMBER_OK;
}

static em_determinism det_max(em_determinism a, em_determinism b)
{
    return a > b ? a : b;
}

/*
 * Output determinism: the declared one, raised by each parent. Through a
 * narrow dependency the parent's carries over, except that an
 * order-sensitive op over an UNORDERED parent is INDETERMINATE. Through a
 * shuffle: INDETERMINATE stays; an order-sensitive op (repartition's round
 * robin happens map-side) over an UNORDERED parent is INDETERMINATE; else
 * the fetch order makes it UNORDERED, unless the op sorts by key.
 */
static em_determinism output_determinism(const em_lineage *l, const em_node *n)
{
    em_determinism out = n->determinism;
    uint32_t j;
    for (j = 0; j < n->ndeps; j++) {
        em_determinism p = l->nodes[n->deps[j].parent].output_determinism, c;
        if (p == EM_DET_INDETERMINATE ||
            (n->op->order_sensitive && p == EM_DET_UNORDERED))
            c = EM_DET_INDETERMINATE;
        else if (n->deps[j].kind == EM_DEP_NARROW || n->op->key_ordered)
            c = p;
        else
            c = EM_DET_UNORDERED;
        out = det_max(out, c);
    }
    return out;
}

static ember_status derive_node(dec *d, em_lineage *l, uint32_t idx)
{
    em_node *n = &l->nodes[idx];
    const em_op *op = n->op;
    const pending *pd = &d->pend[d->order[idx]];
    /* no dependencies anywhere leaves the buffer unallocated */
    const uint8_t *decl = d->decl.data ? d->decl.data + pd->decl_off : NULL;
    int union_aware;
    uint32_t j;
    ember_status s;

    set_where(d, d->order[idx], op);
    if (op->needs_partitioner && n->partitioner.kind != EM_PART_NONE)
        intern_partitioner(d, l, idx);
    s = derive_partitions(d, l, n, pd, &union_aware);
    if (s != EMBER_OK)
        return s;

    for (j = 0; j < n->ndeps; j++) {
        const em_node *p = &l->nodes[n->deps[j].parent];
        if (op->deps == EM_OP_DEPS_NARROW) {
            n->deps[j].kind = EM_DEP_NARROW;
        } else if (op->deps == EM_OP_DEPS_SHUFFLE) {
            n->deps[j].kind = EM_DEP_SHUFFLE;
        } else {
            const em_partitioner *pp = em_node_output_partitioner(p);
            int co = class_of(pp) == n->partitioner.class_id;
            if (decl[j] == EM_DEP_NARROW && !co) {
                char a[48], b[48];
                return ember_errorf(d->err, EMBER_EINVAL,
                                    "%s: parent %" PRIu64
                                    " is not partitioned like this dataset "
                                    "(%s, this one %s), so it cannot be a "
                                    "narrow dependency",
                                    d->where, p->id,
                                    part_desc(pp, a, sizeof a),
                                    part_desc(&n->partitioner, b, sizeof b));
            }
            n->deps[j].kind = decl[j] == DEP_DEFAULT
                                  ? (co ? EM_DEP_NARROW : EM_DEP_SHUFFLE)
                                  : (em_dep_kind)decl[j];
        }
    }

    /* the output partitioner; shuffle ops keep the one they were given */
    if (!op->needs_partitioner) {
        const em_partitioner *inherit = NULL;
        if (op->out_part == EM_OUT_PARENT ||
            (op->out_part == EM_OUT_PARENT_IF_ARG && pd->preserves) ||
            (op->out_part == EM_OUT_UNION && union_aware))
            inherit = em_node_output_partitioner(&l->nodes[n->deps[0].parent]);
        if (inherit != NULL)
            n->partitioner = *inherit; /* borrowed, see lineage.h */
        else
            memset(&n->partitioner, 0, sizeof n->partitioner);
    }

    n->output_determinism = output_determinism(l, n);
    n->fingerprint = pd->has_fp ? pd->fp : fingerprint(l, n);
    return EMBER_OK;
}

/* ------------------------------------------------------------------ */
/* decode */

ember_status em_lineage_decode_datasets(em_lineage **out,
                                        const void *json_datasets,
                                        const em_fn_resolver *resolver,
                                        ember_error *err)
{
    dec d;
    em_lineage *l = NULL;
    ember_status s = EMBER_OK;
    size_t count;
    uint32_t i, j;

    *out = NULL;
    memset(&d, 0, sizeof d);
    d.resolver = resolver;
    d.err = err;
    d.arr = (json_t *)(uintptr_t)json_datasets;
    d.decl = ember_buf_heap();
    if (d.arr == NULL || !json_is_array(d.arr))
        return ember_errorf(err, EMBER_EINVAL,
                            "plan: \"datasets\" must be an array, got %s",
                            d.arr ? jtype(d.arr) : "nothing");
    count = json_array_size(d.arr);
    if (count > EM_LINEAGE_MAX_DATASETS)
        return ember_errorf(err, EMBER_EINVAL,
                            "plan: %zu datasets, more than the %u allowed",
                            count, EM_LINEAGE_MAX_DATASETS);
    d.n = (uint32_t)count;

    l = (em_lineage *)calloc(1, sizeof *l);
    d.ids = (em_lineage_slot *)malloc((count + 1) * sizeof *d.ids);
    d.pos_id = (uint64_t *)malloc((count + 1) * sizeof *d.pos_id);
    d.tmp = (em_node *)calloc(count + 1, sizeof *d.tmp);
    d.pend = (pending *)calloc(count + 1, sizeof *d.pend);
    if (!l || !d.ids || !d.pos_id || !d.tmp || !d.pend) {
        s = ember_errorf(err, EMBER_ENOMEM, "plan: out of memory");
        goto done;
    }

    s = read_ids(&d);
    for (i = 0; s == EMBER_OK && i < d.n; i++)
        s = parse_dataset(&d, i);
    if (s == EMBER_OK)
        s = topo_sort(&d);
    if (s != EMBER_OK)
        goto done;

    /* move the parsed nodes into topological order */
    l->nodes = (em_node *)calloc(count + 1, sizeof *l->nodes);
    if (l->nodes == NULL) {
        s = ember_errorf(err, EMBER_ENOMEM, "plan: out of memory");
        goto done;
    }
    l->count = d.n;
    for (i = 0; i < d.n; i++) {
        em_node *nd = &l->nodes[i];
        *nd = d.tmp[d.order[i]];
        for (j = 0; j < nd->ndeps; j++)
            nd->deps[j].parent = d.pos_to_idx[nd->deps[j].parent];
    }
    free(d.tmp); /* its contents now belong to l */
    d.tmp = NULL;

    s = classes_init(&d, l);
    for (i = 0; s == EMBER_OK && i < d.n; i++)
        s = derive_node(&d, l, i);
    if (s != EMBER_OK)
        goto done;

    /* the id index: d.ids is sorted by id already */
    for (i = 0; i < d.n; i++)
        d.ids[i].index = d.pos_to_idx[d.ids[i].index];
    l->by_id = d.ids;
    d.ids = NULL;
    *out = l;
    l = NULL;

done:
    if (l != NULL && d.tmp != NULL) {
        /* not moved yet: the parsed nodes own what they point to */
        l->nodes = d.tmp;
        l->count = d.n;
        d.tmp = NULL;
    }
    em_lineage_free(l);
    free(d.tmp);
    free(d.ids);
    free(d.pos_id);
    free(d.pend);
    free(d.order);
    free(d.pos_to_idx);
    free(d.classes);
    ember_buf_release(&d.decl);
    return s;
}

/* ------------------------------------------------------------------ */
/* accumulators */

void em_accum_decls_free(em_accum_decl *d, uint32_t n)
{
    for (uint32_t i = 0; d != NULL && i < n; i++) {
        free(d[i].kind);
        free(d[i].name);
    }
    free(d);
}

static int decl_cmp(const void *a, const void *b)
{
    uint64_t x = ((const em_accum_decl *)a)->id;
    uint64_t y = ((const em_accum_decl *)b)->id;
    return x < y ? -1 : x > y;
}

/* One entry of "accumulators" into *o (its strings owned by o). */
static ember_status accum_decl(dec *d, json_t *e, size_t i, em_accum_decl *o)
{
    char buf[80];
    const char *key;
    json_t *v;
    if (!json_is_object(e))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "plan: accumulators[%zu] must be an object, "
                            "got %s", i, jtype(e));
    json_object_foreach(e, key, v) {
        if (strcmp(key, "id") != 0 && strcmp(key, "kind") != 0 &&
            strcmp(key, "name") != 0)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "plan: accumulators[%zu]: unknown key '%s'",
                                i, shown(key, buf, sizeof buf));
    }
    snprintf(d->where, sizeof d->where, "plan: accumulators[%zu]", i);
    json_t *id = json_object_get(e, "id");
    if (id == NULL)
        return ember_errorf(d->err, EMBER_EINVAL,
                            "plan: accumulators[%zu]: missing \"id\"", i);
    ember_status s = get_uint(d, id, "id", 1, EM_LINEAGE_MAX_ID, &o->id);
    if (s != EMBER_OK)
        return s;
    json_t *k = json_object_get(e, "kind");
    if (!json_is_string(k) || json_string_length(k) == 0 ||
        json_string_length(k) > 256 ||
        strlen(json_string_value(k)) != json_string_length(k))
        return ember_errorf(d->err, EMBER_EINVAL,
                            "plan: accumulators[%zu].kind must be a string "
                            "(int64, double or PLUGIN.FUNCTION), got %s", i,
                            k ? jtype(k) : "nothing");
    const char *kind = json_string_value(k);
    if (strcmp(kind, "int64") != 0 && strcmp(kind, "double") != 0) {
        if (strchr(kind, '.') == NULL)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "plan: accumulators[%zu].kind: unknown kind "
                                "'%s' (int64, double, or the PLUGIN.FUNCTION "
                                "of a REDUCE function)", i,
                                shown(kind, buf, sizeof buf));
        snprintf(d->where, sizeof d->where, "plan: accumulators[%zu].kind",
                 i);
        if ((s = check_fn_name(d, kind, "kind")) != EMBER_OK)
            return s;
    }
    if ((s = dup_str(d, kind, &o->kind)) != EMBER_OK)
        return s;
    json_t *nm = json_object_get(e, "name");
    if (nm != NULL && !json_is_null(nm)) {
        if (!json_is_string(nm) || json_string_length(nm) == 0 ||
            json_string_length(nm) > 1024)
            return ember_errorf(d->err, EMBER_EINVAL,
                                "plan: accumulators[%zu].name must be a "
                                "string of 1 to 1024 bytes, or null", i);
        if ((s = dup_str(d, json_string_value(nm), &o->name)) != EMBER_OK)
            return s;
    }
    return EMBER_OK;
}

ember_status em_accum_decls_decode(const void *json_accums,
                                   const em_fn_resolver *resolver,
                                   em_accum_decl **out, uint32_t *n,
                                   ember_error *err)
{
    json_t *arr = (json_t *)(uintptr_t)json_accums;
    dec d;
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr))
        return ember_errorf(err, EMBER_EINVAL,
                            "plan: \"accumulators\" must be an array, got %s",
                            arr ? jtype(arr) : "nothing");
    size_t count = json_array_size(arr);
    if (count == 0)
        return EMBER_OK;
    if (count > EM_LINEAGE_MAX_ACCUMS)
        return ember_errorf(err, EMBER_EINVAL,
                            "plan: %zu accumulators, more than the %u "
                            "allowed", count, EM_LINEAGE_MAX_ACCUMS);
    memset(&d, 0, sizeof d);
    d.resolver = resolver;
    d.err = err;
    em_accum_decl *a = calloc(count, sizeof *a);
    if (a == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "plan: out of memory");
    ember_status s = EMBER_OK;
    for (size_t i = 0; s == EMBER_OK && i < count; i++)
        s = accum_decl(&d, json_array_get(arr, i), i, &a[i]);
    if (s == EMBER_OK) {
        qsort(a, count, sizeof *a, decl_cmp);
        for (size_t i = 1; s == EMBER_OK && i < count; i++)
            if (a[i].id == a[i - 1].id)
                s = ember_errorf(err, EMBER_EINVAL,
                                 "plan: accumulators: id %" PRIu64
                                 " is declared twice", a[i].id);
    }
    if (s != EMBER_OK) {
        em_accum_decls_free(a, (uint32_t)count);
        return s;
    }
    *out = a;
    *n = (uint32_t)count;
    return EMBER_OK;
}

ember_status em_lineage_decode(em_lineage **out, const char *json, size_t len,
                               const em_fn_resolver *resolver,
                               ember_error *err)
{
    json_error_t jerr;
    json_t *root = NULL, *v, *datasets;
    const char *key;
    char buf[80];
    ember_status s;

    *out = NULL;
    if (json == NULL && len > 0)
        return ember_errorf(err, EMBER_EINVAL, "plan: no document");
    if (len > EM_LINEAGE_MAX_DOCUMENT)
        return ember_errorf(err, EMBER_EINVAL,
                            "plan: the document is %zu bytes, more than the "
                            "1 GiB allowed",
                            len);
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "plan: JSON error at line %d, column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "plan: the document must be an object, got %s",
                         jtype(root));
        goto done;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "ember_plan") != 0 && strcmp(key, "datasets") != 0 &&
            strcmp(key, "accumulators") != 0) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "plan: unknown key '%s' at the top level",
                             shown(key, buf, sizeof buf));
            goto done;
        }
    }
    v = json_object_get(root, "ember_plan");
    if (v == NULL) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "plan: missing \"ember_plan\" (the format version, "
                         "1)");
        goto done;
    }
    if (!json_is_integer(v)) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "plan: \"ember_plan\" must be an integer, got %s",
                         jtype(v));
        goto done;
    }
    if (json_integer_value(v) != 1) {
        s = ember_errorf(err, EMBER_EVERSION,
                         "plan format version %" JSON_INTEGER_FORMAT
                         " is not supported by this ember (supports 1)",
                         json_integer_value(v));
        goto done;
    }
    datasets = json_object_get(root, "datasets");
    if (datasets == NULL) {
        s = ember_errorf(err, EMBER_EINVAL, "plan: missing \"datasets\"");
        goto done;
    }
    s = em_lineage_decode_datasets(out, datasets, resolver, err);
    v = json_object_get(root, "accumulators");
    if (s == EMBER_OK && v != NULL) {
        s = em_accum_decls_decode(v, resolver, &(*out)->accums,
                                  &(*out)->naccums, err);
        if (s != EMBER_OK) {
            em_lineage_free(*out);
            *out = NULL;
        }
    }

done:
    json_decref(root);
    return s;
}

/* ------------------------------------------------------------------ */
/* encode */

static ember_status put_s(ember_buf *b, const char *s)
{
    return ember_buf_append(b, s, strlen(s));
}

static ember_status put_u64(ember_buf *b, uint64_t v)
{
    char num[24];
    int k = snprintf(num, sizeof num, "%" PRIu64, v);
    return ember_buf_append(b, num, (size_t)k);
}

/* A JSON string: quotes, escapes for '"', '\\' and control characters. */
static ember_status put_jstr(ember_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    ember_status st = ember_buf_put_u8(b, '"');
    while (st == EMBER_OK && *p) {
        const unsigned char *run = p;
        while (*p && *p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        st = ember_buf_append(b, run, (size_t)(p - run));
        if (st != EMBER_OK || *p == '\0')
            break;
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            st = ember_buf_append(b, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            st = ember_buf_append(b, e, 6);
        }
        p++;
    }
    if (st == EMBER_OK)
        st = ember_buf_put_u8(b, '"');
    return st;
}

static ember_status put_fn(ember_buf *b, const em_fn_ref *f)
{
    ember_status s;
    if (f->arg_len == 0)
        return put_jstr(b, f->name ? f->name : "");
    s = put_s(b, "{\"name\":");
    if (s == EMBER_OK)
        s = put_jstr(b, f->name ? f->name : "");
    if (s == EMBER_OK)
        s = put_s(b, ",\"arg\":\"");
    if (s == EMBER_OK)
        s = em_base64_encode(b, f->arg, f->arg_len);
    if (s == EMBER_OK)
        s = put_s(b, "\"}");
    return s;
}

static ember_status put_partitioner(ember_buf *b, const em_partitioner *p)
{
    ember_status s = put_s(b, "{\"kind\":\"");
    if (s == EMBER_OK)
        s = put_s(b, em_part_kind_name(p->kind));
    if (s == EMBER_OK)
        s = put_s(b, "\",\"partitions\":");
    if (s == EMBER_OK)
        s = put_u64(b, p->partitions);
    if (s == EMBER_OK && p->kind == EM_PART_RANGE && p->bounds_len > 0) {
        s = put_s(b, ",\"bounds\":\"");
        if (s == EMBER_OK)
            s = em_base64_encode(b, p->bounds, p->bounds_len);
        if (s == EMBER_OK)
            s = put_s(b, "\"");
    }
    if (s == EMBER_OK && p->kind == EM_PART_RANGE && p->descending)
        s = put_s(b, ",\"descending\":true");
    if (s == EMBER_OK && p->kind == EM_PART_FUNCTION) {
        s = put_s(b, ",\"fn\":");
        if (s == EMBER_OK)
            s = put_fn(b, &p->fn);
    }
    if (s == EMBER_OK)
        s = put_s(b, "}");
    return s;
}

static ember_status put_node(ember_buf *b, const em_lineage *l,
                             const em_node *n)
{
    uint32_t j;
    ember_status s = put_s(b, "{\"id\":");
    if (s == EMBER_OK)
        s = put_u64(b, n->id);
    if (s == EMBER_OK)
        s = put_s(b, ",\"op\":");
    if (s == EMBER_OK)
        s = put_jstr(b, n->op->name);
    for (j = 0; s == EMBER_OK && j < n->ndeps; j++) {
        s = put_s(b, j == 0 ? ",\"parents\":[{\"id\":" : ",{\"id\":");
        if (s == EMBER_OK)
            s = put_u64(b, l->nodes[n->deps[j].parent].id);
        if (s == EMBER_OK)
            s = put_s(b, n->deps[j].kind == EM_DEP_SHUFFLE
                             ? ",\"dep\":\"shuffle\"}"
                             : ",\"dep\":\"narrow\"}");
        if (s == EMBER_OK && j == n->ndeps - 1)
            s = put_s(b, "]");
    }
    if (s == EMBER_OK)
        s = put_s(b, ",\"partitions\":");
    if (s == EMBER_OK)
        s = put_u64(b, n->partitions);
    if (s == EMBER_OK && n->op->needs_partitioner &&
        n->partitioner.kind != EM_PART_NONE) {
        s = put_s(b, ",\"partitioner\":");
        if (s == EMBER_OK)
            s = put_partitioner(b, &n->partitioner);
    }
    for (j = 0; s == EMBER_OK && j < n->nfns; j++) {
        s = put_s(b, j == 0 ? ",\"fns\":[" : ",");
        if (s == EMBER_OK)
            s = put_fn(b, &n->fns[j]);
        if (s == EMBER_OK && j == n->nfns - 1)
            s = put_s(b, "]");
    }
    if (s == EMBER_OK && n->args_json != NULL) {
        s = put_s(b, ",\"args\":");
        if (s == EMBER_OK)
            s = put_s(b, n->args_json);
    }
    if (s == EMBER_OK && n->storage != NULL) {
        s = put_s(b, ",\"storage\":");
        if (s == EMBER_OK)
            s = put_jstr(b, n->storage);
    }
    if (s == EMBER_OK && n->checkpoint)
        s = put_s(b, ",\"checkpoint\":true");
    if (s == EMBER_OK && n->determinism != EM_DET_DETERMINATE) {
        s = put_s(b, ",\"determinism\":");
        if (s == EMBER_OK)
            s = put_jstr(b, em_determinism_name(n->determinism));
    }
    if (s == EMBER_OK && n->name != NULL) {
        s = put_s(b, ",\"name\":");
        if (s == EMBER_OK)
            s = put_jstr(b, n->name);
    }
    if (s == EMBER_OK)
        s = put_s(b, "}");
    return s;
}

ember_status em_lineage_encode(const em_lineage *l, char **out, size_t *len,
                               ember_error *err)
{
    ember_buf b = ember_buf_heap();
    ember_status s;
    uint32_t i, j;
    *out = NULL;
    if (len)
        *len = 0;
    if (l == NULL || (l->count > 0 && l->nodes == NULL))
        return ember_errorf(err, EMBER_EINVAL, "lineage: nothing to encode");
    for (i = 0; i < l->count; i++) {
        const em_node *n = &l->nodes[i];
        if (n->op == NULL)
            return ember_errorf(err, EMBER_EINVAL,
                                "lineage: dataset %" PRIu64 " has no op",
                                n->id);
        for (j = 0; j < n->ndeps; j++)
            if (n->deps[j].parent >= i)
                return ember_errorf(err, EMBER_EINVAL,
                                    "lineage: dataset %" PRIu64
                                    " has a parent that does not come "
                                    "before it",
                                    n->id);
    }
    s = put_s(&b, "{\"ember_plan\":1,\"datasets\":[");
    for (i = 0; s == EMBER_OK && i < l->count; i++) {
        if (i > 0)
            s = ember_buf_put_u8(&b, ',');
        if (s == EMBER_OK)
            s = put_node(&b, l, &l->nodes[i]);
    }
    if (s == EMBER_OK)
        s = put_s(&b, "]");
    for (i = 0; s == EMBER_OK && i < l->naccums; i++) {
        const em_accum_decl *a = &l->accums[i];
        s = put_s(&b, i == 0 ? ",\"accumulators\":[{\"id\":" : ",{\"id\":");
        if (s == EMBER_OK)
            s = put_u64(&b, a->id);
        if (s == EMBER_OK)
            s = put_s(&b, ",\"kind\":");
        if (s == EMBER_OK)
            s = put_jstr(&b, a->kind);
        if (s == EMBER_OK && a->name != NULL) {
            s = put_s(&b, ",\"name\":");
            if (s == EMBER_OK)
                s = put_jstr(&b, a->name);
        }
        if (s == EMBER_OK)
            s = put_s(&b, i + 1 == l->naccums ? "}]" : "}");
    }
    if (s == EMBER_OK)
        s = put_s(&b, "}");
    if (s == EMBER_OK)
        s = ember_buf_put_u8(&b, '\0');
    if (s != EMBER_OK) {
        ember_errorf(err, s, "lineage: out of memory encoding the plan");
        goto done;
    }
    if (len)
        *len = b.len - 1;
    *out = (char *)b.data;
    b = ember_buf_heap();

done:
    ember_buf_release(&b);
    return s;
}
