/*
 * client/plan_file.c — plan files: datasets and actions written as JSON
 * for people (docs/plan-format.md, "Plan files"), built with the driver
 * API and run by ember_plan_run (`ember run`).
 *
 * A file is read in passes: the top level and every dataset's common
 * fields (ids, operations, parents); an order of the datasets, parents
 * first, refusing cycles; every dataset's own fields (functions, args,
 * partitioner) checked without making anything; every action. Only then
 * are the datasets made through the API, parents first — which runs a job
 * for sort_by_key's bounds (S6) and zip_with_index's partition counts —
 * and the actions run, in order.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/function.h"
#include "ember/record.h"
#include "json_record.h"
#include "plan_args.h"
#include "dag/lineage.h"

#define MAX_DATASETS 1000000
#define MAX_PARENTS 64
#define MAX_PARTITIONS (1u << 24)
#define MAX_ID ((json_int_t)1 << 53)

/* ---- operations -------------------------------------------------------- */

typedef enum op_kind {
    OP_PARALLELIZE,
    OP_RANGE,
    OP_TEXT_FILE,
    OP_EMPTY,
    OP_MAP,
    OP_FLAT_MAP,
    OP_FILTER,
    OP_MAP_PARTITIONS,
    OP_MAP_PARTITIONS_WITH_INDEX,
    OP_KEY_BY,
    OP_MAP_VALUES,
    OP_FLAT_MAP_VALUES,
    OP_GLOM,
    OP_KEYS,
    OP_VALUES,
    OP_ZIP_WITH_UNIQUE_ID,
    OP_ZIP_WITH_INDEX,
    OP_UNION,
    OP_COALESCE,
    OP_SAMPLE,
    OP_SAMPLE_BY_KEY,
    OP_SOURCE,
    OP_ZIP,
    OP_ZIP_PARTITIONS,
    OP_PIPE,
    OP_CARTESIAN,
    OP_PARTITION_BY,
    OP_REDUCE_BY_KEY,
    OP_FOLD_BY_KEY,
    OP_AGGREGATE_BY_KEY,
    OP_COMBINE_BY_KEY,
    OP_GROUP_BY_KEY,
    OP_GROUP_BY,
    OP_JOIN,
    OP_LEFT_OUTER_JOIN,
    OP_RIGHT_OUTER_JOIN,
    OP_FULL_OUTER_JOIN,
    OP_COGROUP,
    OP_SUBTRACT_BY_KEY,
    OP_SUBTRACT,
    OP_INTERSECTION,
    OP_DISTINCT,
    OP_REPARTITION,
    OP_REPARTITION_AND_SORT,
    OP_SORT_BY_KEY,
    OP_SORT_BY
} op_kind;

/* What an operation takes and how its parents depend on it. */
enum {
    OPF_PARTITIONER = 1 << 0, /* takes "partitioner" (and "partitions" as
                                 a hash partitioner's count) */
    OPF_SHUFFLE = 1 << 1,     /* its parents' dependency is a shuffle */
    OPF_COPART = 1 << 2,      /* narrow for a parent partitioned like the
                                 result, else a shuffle */
    OPF_COUNT_IN = 1 << 3     /* "partitions" is the count asked for, not
                                 checked against the result's */
};

typedef struct op_info {
    const char *name;
    op_kind kind;
    uint8_t min_parents, max_parents;
    const char *fns;       /* the shape of each function in "fns": 'm'
                              map, 'r' reduce */
    unsigned flags;
    const char *args;      /* the keys "args" may hold, space-separated */
} op_info;

#define PT OPF_PARTITIONER
#define SH OPF_SHUFFLE
#define CO OPF_COPART
#define IN OPF_COUNT_IN

static const op_info ops[] = {
    {"parallelize", OP_PARALLELIZE, 0, 0, "", 0, "data"},
    {"range", OP_RANGE, 0, 0, "", 0, "start end step"},
    {"text_file", OP_TEXT_FILE, 0, 0, "", 0, "path min_partitions"},
    {"empty", OP_EMPTY, 0, 0, "", 0, ""},
    {"source", OP_SOURCE, 0, 0, "", 0, "component arg value min_partitions"},
    {"map", OP_MAP, 1, 1, "m", 0, ""},
    {"flat_map", OP_FLAT_MAP, 1, 1, "m", 0, ""},
    {"filter", OP_FILTER, 1, 1, "m", 0, ""},
    {"map_partitions", OP_MAP_PARTITIONS, 1, 1, "m", 0,
     "preserves_partitioning"},
    {"map_partitions_with_index", OP_MAP_PARTITIONS_WITH_INDEX, 1, 1, "m", 0,
     "preserves_partitioning"},
    {"key_by", OP_KEY_BY, 1, 1, "m", 0, ""},
    {"map_values", OP_MAP_VALUES, 1, 1, "m", 0, ""},
    {"flat_map_values", OP_FLAT_MAP_VALUES, 1, 1, "m", 0, ""},
    {"glom", OP_GLOM, 1, 1, "", 0, ""},
    {"keys", OP_KEYS, 1, 1, "", 0, ""},
    {"values", OP_VALUES, 1, 1, "", 0, ""},
    {"zip_with_unique_id", OP_ZIP_WITH_UNIQUE_ID, 1, 1, "", 0, ""},
    {"zip_with_index", OP_ZIP_WITH_INDEX, 1, 1, "", 0, ""},
    {"union", OP_UNION, 1, MAX_PARENTS, "", 0, ""},
    {"coalesce", OP_COALESCE, 1, 1, "", IN, "shuffle"},
    {"sample", OP_SAMPLE, 1, 1, "", 0, "with_replacement fraction seed"},
    {"sample_by_key", OP_SAMPLE_BY_KEY, 1, 1, "", SH,
     "with_replacement fractions seed"},
    {"zip", OP_ZIP, 2, 2, "", 0, ""},
    {"zip_partitions", OP_ZIP_PARTITIONS, 2, 4, "m", 0, ""},
    {"pipe", OP_PIPE, 1, 1, "", 0, "command"},
    {"cartesian", OP_CARTESIAN, 2, 2, "", 0, ""},
    {"partition_by", OP_PARTITION_BY, 1, 1, "", PT | SH, ""},
    {"reduce_by_key", OP_REDUCE_BY_KEY, 1, 1, "r", PT | SH, ""},
    {"fold_by_key", OP_FOLD_BY_KEY, 1, 1, "r", PT | SH, "zero"},
    {"aggregate_by_key", OP_AGGREGATE_BY_KEY, 1, 1, "rr", PT | SH, "zero"},
    {"combine_by_key", OP_COMBINE_BY_KEY, 1, 1, "mrr", PT | SH, ""},
    {"group_by_key", OP_GROUP_BY_KEY, 1, 1, "", PT | SH, ""},
    {"group_by", OP_GROUP_BY, 1, 1, "m", PT | SH, ""},
    {"join", OP_JOIN, 2, 2, "", PT | CO, ""},
    {"left_outer_join", OP_LEFT_OUTER_JOIN, 2, 2, "", PT | CO, ""},
    {"right_outer_join", OP_RIGHT_OUTER_JOIN, 2, 2, "", PT | CO, ""},
    {"full_outer_join", OP_FULL_OUTER_JOIN, 2, 2, "", PT | CO, ""},
    {"cogroup", OP_COGROUP, 2, 4, "", PT | CO, ""},
    {"subtract_by_key", OP_SUBTRACT_BY_KEY, 2, 2, "", PT | CO, ""},
    {"subtract", OP_SUBTRACT, 2, 2, "", PT | CO, ""},
    {"intersection", OP_INTERSECTION, 2, 2, "", PT | CO, ""},
    {"distinct", OP_DISTINCT, 1, 1, "", SH | IN, ""},
    {"repartition", OP_REPARTITION, 1, 1, "", SH | IN, ""},
    {"repartition_and_sort_within_partitions", OP_REPARTITION_AND_SORT, 1, 1,
     "", PT | SH, "ascending"},
    {"sort_by_key", OP_SORT_BY_KEY, 1, 1, "", SH | IN, "ascending"},
    {"sort_by", OP_SORT_BY, 1, 1, "m", SH | IN, "ascending"},
};

#undef PT
#undef SH
#undef CO
#undef IN

static const char *const dataset_keys[] = {
    "id", "op", "parents", "partitions", "partitioner", "fns", "args",
    "storage", "checkpoint", "determinism", "name",
};

/* ---- actions ----------------------------------------------------------- */

typedef enum act_kind {
    ACT_COLLECT,
    ACT_COUNT,
    ACT_FIRST,
    ACT_TAKE,
    ACT_TAKE_ORDERED,
    ACT_TOP,
    ACT_MAX,
    ACT_MIN,
    ACT_REDUCE,
    ACT_FOLD,
    ACT_AGGREGATE,
    ACT_TREE_REDUCE,
    ACT_TREE_AGGREGATE,
    ACT_FOREACH,
    ACT_FOREACH_PARTITION,
    ACT_IS_EMPTY,
    ACT_COUNT_BY_VALUE,
    ACT_STATS,
    ACT_SAVE_AS_TEXT_FILE,
    ACT_COUNT_BY_KEY,
    ACT_COLLECT_AS_MAP,
    ACT_REDUCE_BY_KEY_LOCALLY,
    ACT_LOOKUP
} act_kind;

/* Fields an action takes besides "action" and "dataset". */
enum {
    AF_N = 1 << 0,       /* "n", required */
    AF_FN = 1 << 1,      /* "fn", required */
    AF_ZERO = 1 << 2,    /* "zero", required */
    AF_SEQCOMB = 1 << 3, /* "seq" and "comb", required */
    AF_DEPTH = 1 << 4,   /* "depth", optional (2) */
    AF_PATH = 1 << 5,    /* "path", required */
    AF_KEY = 1 << 6      /* "key", required */
};

typedef struct act_info {
    const char *name;
    act_kind kind;
    unsigned fields;
    uint32_t fn_shape; /* of fn/seq/comb */
} act_info;

static const act_info acts[] = {
    {"collect", ACT_COLLECT, 0, 0},
    {"count", ACT_COUNT, 0, 0},
    {"first", ACT_FIRST, 0, 0},
    {"take", ACT_TAKE, AF_N, 0},
    {"take_ordered", ACT_TAKE_ORDERED, AF_N, 0},
    {"top", ACT_TOP, AF_N, 0},
    {"max", ACT_MAX, 0, 0},
    {"min", ACT_MIN, 0, 0},
    {"reduce", ACT_REDUCE, AF_FN, EMBER_FN_REDUCE},
    {"fold", ACT_FOLD, AF_ZERO | AF_FN, EMBER_FN_REDUCE},
    {"aggregate", ACT_AGGREGATE, AF_ZERO | AF_SEQCOMB, EMBER_FN_REDUCE},
    {"tree_reduce", ACT_TREE_REDUCE, AF_FN | AF_DEPTH, EMBER_FN_REDUCE},
    {"tree_aggregate", ACT_TREE_AGGREGATE, AF_ZERO | AF_SEQCOMB | AF_DEPTH,
     EMBER_FN_REDUCE},
    {"foreach", ACT_FOREACH, AF_FN, EMBER_FN_MAP},
    {"foreach_partition", ACT_FOREACH_PARTITION, AF_FN, EMBER_FN_MAP},
    {"is_empty", ACT_IS_EMPTY, 0, 0},
    {"count_by_value", ACT_COUNT_BY_VALUE, 0, 0},
    {"stats", ACT_STATS, 0, 0},
    {"save_as_text_file", ACT_SAVE_AS_TEXT_FILE, AF_PATH, 0},
    {"count_by_key", ACT_COUNT_BY_KEY, 0, 0},
    {"collect_as_map", ACT_COLLECT_AS_MAP, 0, 0},
    {"reduce_by_key_locally", ACT_REDUCE_BY_KEY_LOCALLY, AF_FN,
     EMBER_FN_REDUCE},
    {"lookup", ACT_LOOKUP, AF_KEY, 0},
};

/* A function reference read from the file; arg is malloc'd. */
typedef struct pf_fn {
    const char *name; /* points into the JSON document */
    uint8_t *arg;
    size_t arg_len;
} pf_fn;

typedef struct pf_action {
    const act_info *info;
    size_t ds;          /* index into the datasets */
    uint64_t n;
    uint32_t depth;
    pf_fn fn, comb;     /* fn is seq for aggregates */
    ember_buf zero;     /* the zero record; lookup's encoded key */
    char *path;         /* resolved; malloc'd */
} pf_action;

typedef struct pf_dataset {
    const json_t *obj;
    json_int_t id;
    const op_info *op;
    uint32_t first_parent; /* into the parent pool */
    uint32_t nparents;
    uint32_t next;         /* the next parent to visit while building */
    int state;             /* 0 not built, 1 being built, 2 built */
    ember_rdd *rdd;
} pf_dataset;

/* A parent's declared dependency. */
enum { DEP_ANY = 0, DEP_NARROW = 1, DEP_SHUFFLE = 2 };

typedef struct pf_id {
    json_int_t id;
    size_t index;
} pf_id;

typedef struct plan_ctx {
    ember_session *s;
    const char *origin;
    char dir[PATH_MAX];   /* the file's directory; "" = current */
    char where[160];      /* "dataset 3 (map)", "action 2 (...)"; or "" */
    ember_error *err;
    json_t *root;
    pf_dataset *ds;
    size_t nds;
    pf_id *ids;           /* sorted by id */
    uint32_t *parents;    /* the parent pool: dataset indexes */
    uint8_t *deps;        /* beside it: the declared dependency (DEP_*) */
    int checking;         /* building only checks: no dataset is made */
    uint32_t *order;      /* dataset indexes, parents first */
    pf_action *acts;
    size_t nacts;
    em_accum_decl *accs;  /* the file's "accumulators", sorted by id */
    uint32_t naccs;
    ember_accumulator **acc; /* made in the session, per accs entry */
} plan_ctx;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ember_status fail(plan_ctx *c, ember_status code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    return ember_errorf(c->err, code, "%s: %s%s%s", c->origin, c->where,
                        c->where[0] ? ": " : "", msg);
}

/* ---- paths ------------------------------------------------------------- */

static void set_dir(plan_ctx *c, const char *origin)
{
    c->dir[0] = '\0';
    const char *slash = origin ? strrchr(origin, '/') : NULL;
    if (!slash)
        return;
    size_t n = (size_t)(slash - origin);
    if (n == 0)
        n = 1; /* "/job.json": the root */
    if (n < sizeof c->dir) {
        memcpy(c->dir, origin, n);
        c->dir[n] = '\0';
    }
}

/* Appends p to out, resolved against dir when relative. */
static ember_status put_path(ember_buf *out, const char *dir, const char *p,
                             size_t n)
{
    ember_status st = EMBER_OK;
    if (dir[0] && n > 0 && p[0] != '/') {
        size_t dl = strlen(dir);
        st = ember_buf_append(out, dir, dl);
        if (st == EMBER_OK && dir[dl - 1] != '/')
            st = ember_buf_put_u8(out, '/');
    }
    if (st == EMBER_OK)
        st = ember_buf_append(out, p, n);
    return st;
}

/* A malloc'd copy of path resolved against dir; with commas, each of the
 * comma-separated paths is (text_file takes lists). NULL: no memory. */
static char *resolve(const char *dir, const char *path, int list)
{
    ember_buf b = ember_buf_heap();
    ember_status st = EMBER_OK;
    const char *p = path;
    for (;;) {
        const char *comma = list ? strchr(p, ',') : NULL;
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        st = put_path(&b, dir, p, n);
        if (st != EMBER_OK || !comma)
            break;
        st = ember_buf_put_u8(&b, ',');
        if (st != EMBER_OK)
            break;
        p = comma + 1;
    }
    if (st == EMBER_OK)
        st = ember_buf_put_u8(&b, '\0');
    if (st != EMBER_OK) {
        ember_buf_release(&b);
        return NULL;
    }
    return (char *)b.data;
}

/* ---- field readers ----------------------------------------------------- */

/* Checks obj's keys against the space-separated list allowed. */
static ember_status known_keys(plan_ctx *c, const json_t *obj,
                               const char *field, const char *allowed,
                               const char *owner)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        size_t kl = strlen(key);
        const char *p = allowed;
        int ok = 0;
        while (!ok && p && *p) {
            const char *sp = strchr(p, ' ');
            size_t n = sp ? (size_t)(sp - p) : strlen(p);
            ok = n == kl && memcmp(p, key, n) == 0;
            p = sp ? sp + 1 : NULL;
        }
        if (ok)
            continue;
        if (!allowed[0])
            return fail(c, EMBER_EINVAL, "%s: %s takes no arguments, got "
                        "'%.64s'", field, owner, key);
        return fail(c, EMBER_EINVAL, "%s%sunknown field '%.64s' (%s takes: %s)",
                    field, field[0] ? ": " : "", key, owner, allowed);
    }
    return EMBER_OK;
}

/* An integer field in min..max; dflt (have_dflt) when absent. */
static ember_status get_int(plan_ctx *c, const json_t *v, const char *field,
                            json_int_t min, json_int_t max, int required,
                            json_int_t dflt, json_int_t *out)
{
    if (!v) {
        if (required)
            return fail(c, EMBER_EINVAL, "%s is required", field);
        *out = dflt;
        return EMBER_OK;
    }
    if (!json_is_integer(v))
        return fail(c, EMBER_EINVAL, "%s must be an integer, got %s", field,
                    em_json_kind(v));
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return fail(c, EMBER_EINVAL,
                    "%s is %" JSON_INTEGER_FORMAT " but must be in %"
                    JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                    field, x, min, max);
    *out = x;
    return EMBER_OK;
}

static ember_status get_bool(plan_ctx *c, const json_t *v, const char *field,
                             int dflt, int *out)
{
    if (!v) {
        *out = dflt;
        return EMBER_OK;
    }
    if (!json_is_boolean(v))
        return fail(c, EMBER_EINVAL, "%s must be true or false, got %s",
                    field, em_json_kind(v));
    *out = json_is_true(v);
    return EMBER_OK;
}

/* A non-empty string without NUL bytes. */
static ember_status get_string(plan_ctx *c, const json_t *v,
                               const char *field, const char **out)
{
    if (!v)
        return fail(c, EMBER_EINVAL, "%s is required", field);
    if (!json_is_string(v))
        return fail(c, EMBER_EINVAL, "%s must be a string, got %s", field,
                    em_json_kind(v));
    if (json_string_length(v) == 0)
        return fail(c, EMBER_EINVAL, "%s is empty", field);
    *out = json_string_value(v);
    return EMBER_OK;
}

/* ---- function references ----------------------------------------------- */

static void fn_free(pf_fn *f)
{
    free(f->arg);
    memset(f, 0, sizeof *f);
}

static ember_fn fn_view(const pf_fn *f)
{
    return (ember_fn){f->name, f->arg, f->arg_len};
}

/*
 * "plugin.symbol", {"name": N, "arg": BASE64} or {"name": N, "value":
 * RECORD}; the function must be loaded and of the given shape.
 */
static ember_status get_fn(plan_ctx *c, const json_t *v, const char *field,
                           uint32_t shape, pf_fn *out)
{
    memset(out, 0, sizeof *out);
    if (!v)
        return fail(c, EMBER_EINVAL, "%s is required", field);
    const json_t *name = v;
    ember_status st;
    if (json_is_object(v)) {
        name = json_object_get(v, "name");
        if ((st = known_keys(c, v, field, "name arg value",
                             "a function reference")) != EMBER_OK)
            return st;
    } else if (!json_is_string(v)) {
        return fail(c, EMBER_EINVAL,
                    "%s must be \"plugin.symbol\" or {\"name\": ..., "
                    "\"value\": ...}, got %s", field, em_json_kind(v));
    }
    if (!json_is_string(name) || json_string_length(name) == 0)
        return fail(c, EMBER_EINVAL, "%s: a function name is required "
                    "(\"plugin.symbol\")", field);
    out->name = json_string_value(name);
    const em_component *comp =
        em_registry_find(c->s->registry, EMBER_KIND_FUNCTION, out->name);
    if (!comp)
        return fail(c, EMBER_EINVAL,
                    "%s: unknown function '%.128s' (is its plugin loaded? "
                    "'ember plugin list' shows what is)", field, out->name);
    const ember_function_vtable *vt = comp->vtable;
    if (shape && vt->shape != shape)
        return fail(c, EMBER_EINVAL, "%s: '%.128s' is a %s function; a %s "
                    "function is needed here", field, out->name,
                    vt->shape == EMBER_FN_MAP ? "map" : "reduce",
                    shape == EMBER_FN_MAP ? "map" : "reduce");
    if (!json_is_object(v))
        return EMBER_OK;
    ember_error e = {0};
    if ((st = em_plan_blob(v, field, &out->arg, &out->arg_len, &e)) !=
        EMBER_OK)
        return fail(c, st, "%s", e.msg);
    return EMBER_OK;
}

/* ---- the top level ----------------------------------------------------- */

static ember_status load_root(plan_ctx *c, const char *json, size_t len)
{
    json_error_t je;
    c->root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!c->root)
        return fail(c, EMBER_EINVAL, "JSON error at line %d, column %d: %s",
                    je.line, je.column, je.text);
    if (!json_is_object(c->root))
        return fail(c, EMBER_EINVAL, "a plan file is a JSON object, got %s",
                    em_json_kind(c->root));
    ember_status st = known_keys(c, c->root, "", "ember_plan datasets "
                                 "actions plugins accumulators",
                                 "a plan file");
    if (st != EMBER_OK)
        return st;
    const json_t *ver = json_object_get(c->root, "ember_plan");
    if (!ver)
        return fail(c, EMBER_EINVAL, "\"ember_plan\": 1 is required");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
        if (json_is_integer(ver))
            return fail(c, EMBER_EINVAL,
                        "plan format version %" JSON_INTEGER_FORMAT
                        " is not supported by this ember (supports 1)",
                        json_integer_value(ver));
        return fail(c, EMBER_EINVAL, "ember_plan must be the integer 1, "
                    "got %s", em_json_kind(ver));
    }
    const json_t *pl = json_object_get(c->root, "plugins");
    if (pl) {
        if (!json_is_array(pl))
            return fail(c, EMBER_EINVAL, "plugins must be an array of "
                        "paths, got %s", em_json_kind(pl));
        for (size_t i = 0; i < json_array_size(pl); i++) {
            char field[32];
            const char *p;
            snprintf(field, sizeof field, "plugins[%zu]", i);
            if ((st = get_string(c, json_array_get(pl, i), field, &p)) !=
                EMBER_OK)
                return st;
        }
    }
    return EMBER_OK;
}

/* ---- datasets: the first pass ------------------------------------------ */

static int id_cmp(const void *a, const void *b)
{
    json_int_t x = ((const pf_id *)a)->id, y = ((const pf_id *)b)->id;
    return x < y ? -1 : x > y;
}

/* The index of the dataset with id, or -1. */
static long find_id(const plan_ctx *c, json_int_t id)
{
    pf_id key = {id, 0};
    const pf_id *hit = bsearch(&key, c->ids, c->nds, sizeof *c->ids, id_cmp);
    return hit ? (long)hit->index : -1;
}

static int in_list(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* id, op and the other common fields of dataset i. */
static ember_status read_dataset(plan_ctx *c, size_t i)
{
    pf_dataset *d = &c->ds[i];
    const json_t *o = d->obj;
    snprintf(c->where, sizeof c->where, "datasets[%zu]", i);
    if (!json_is_object(o))
        return fail(c, EMBER_EINVAL, "a dataset is an object, got %s",
                    em_json_kind(o));
    ember_status st = get_int(c, json_object_get(o, "id"), "id", 0, MAX_ID,
                              1, 0, &d->id);
    if (st != EMBER_OK)
        return st;
    snprintf(c->where, sizeof c->where, "dataset %" JSON_INTEGER_FORMAT,
             d->id);
    const char *op;
    if ((st = get_string(c, json_object_get(o, "op"), "op", &op)) != EMBER_OK)
        return st;
    snprintf(c->where, sizeof c->where, "dataset %" JSON_INTEGER_FORMAT
             " (%.64s)", d->id, op);
    for (size_t k = 0; k < COUNT(ops) && !d->op; k++)
        if (strcmp(ops[k].name, op) == 0)
            d->op = &ops[k];
    if (!d->op) {
        if (strcmp(op, "count_by_key") == 0)
            return fail(c, EMBER_EINVAL, "op: count_by_key is an action in "
                        "plan files ({\"action\": \"count_by_key\", "
                        "\"dataset\": ID})");
        return fail(c, EMBER_EINVAL, "op: unknown operation '%.64s'", op);
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        if (!in_list(dataset_keys, COUNT(dataset_keys), key))
            return fail(c, EMBER_EINVAL, "unknown field '%.64s'", key);
    }
    if (json_object_get(o, "partitioner") &&
        !(d->op->flags & OPF_PARTITIONER)) {
        if (d->op->flags & OPF_SHUFFLE)
            return fail(c, EMBER_EINVAL, "partitioner: %s places records "
                        "itself and takes no partitioner%s", op,
                        d->op->flags & OPF_COUNT_IN
                            ? " (\"partitions\" sets how many)"
                            : " (it keeps its parent's, else hashes into "
                              "the parent's partition count)");
        return fail(c, EMBER_EINVAL, "partitioner: only shuffle operations "
                    "take a partitioner");
    }
    const json_t *ps = json_object_get(o, "parents");
    if (ps && !json_is_array(ps))
        return fail(c, EMBER_EINVAL, "parents must be an array, got %s",
                    em_json_kind(ps));
    size_t np = json_array_size(ps);
    if (np < d->op->min_parents || np > d->op->max_parents) {
        if (d->op->min_parents == d->op->max_parents)
            return fail(c, EMBER_EINVAL, "parents: takes %u parent%s, got %zu",
                        d->op->min_parents,
                        d->op->min_parents == 1 ? "" : "s", np);
        return fail(c, EMBER_EINVAL, "parents: takes %u to %u parents, got %zu",
                    d->op->min_parents, d->op->max_parents, np);
    }
    d->nparents = (uint32_t)np;
    return EMBER_OK;
}

/* Parent references of dataset i into the pool at d->first_parent. */
static ember_status read_parents(plan_ctx *c, size_t i)
{
    pf_dataset *d = &c->ds[i];
    snprintf(c->where, sizeof c->where, "dataset %" JSON_INTEGER_FORMAT
             " (%s)", d->id, d->op->name);
    const json_t *ps = json_object_get(d->obj, "parents");
    for (uint32_t k = 0; k < d->nparents; k++) {
        const json_t *p = json_array_get(ps, k);
        char field[32];
        snprintf(field, sizeof field, "parents[%" PRIu32 "]", k);
        const json_t *idv = p;
        if (json_is_object(p)) {
            ember_status st = known_keys(c, p, field, "id dep", "a parent");
            if (st != EMBER_OK)
                return st;
            idv = json_object_get(p, "id");
            const json_t *dep = json_object_get(p, "dep");
            if (dep && !(json_is_string(dep) &&
                         (!strcmp(json_string_value(dep), "narrow") ||
                          !strcmp(json_string_value(dep), "shuffle"))))
                return fail(c, EMBER_EINVAL, "%s.dep must be \"narrow\" or "
                            "\"shuffle\"", field);
            if (dep)
                c->deps[d->first_parent + k] =
                    strcmp(json_string_value(dep), "narrow") == 0
                        ? DEP_NARROW : DEP_SHUFFLE;
            snprintf(field, sizeof field, "parents[%" PRIu32 "].id", k);
        }
        json_int_t pid;
        ember_status st = get_int(c, idv, field, 0, MAX_ID, 1, 0, &pid);
        if (st != EMBER_OK)
            return st;
        long at = find_id(c, pid);
        if (at < 0)
            return fail(c, EMBER_EINVAL, "%s: no dataset %" JSON_INTEGER_FORMAT,
                        field, pid);
        c->parents[d->first_parent + k] = (uint32_t)at;
    }
    return EMBER_OK;
}

static ember_status read_datasets(plan_ctx *c)
{
    const json_t *arr = json_object_get(c->root, "datasets");
    if (!arr)
        return fail(c, EMBER_EINVAL, "datasets is required");
    if (!json_is_array(arr))
        return fail(c, EMBER_EINVAL, "datasets must be an array, got %s",
                    em_json_kind(arr));
    c->nds = json_array_size(arr);
    if (c->nds > MAX_DATASETS)
        return fail(c, EMBER_EINVAL, "%zu datasets; at most %d", c->nds,
                    MAX_DATASETS);
    c->ds = calloc(c->nds ? c->nds : 1, sizeof *c->ds);
    c->ids = calloc(c->nds ? c->nds : 1, sizeof *c->ids);
    if (!c->ds || !c->ids)
        return fail(c, EMBER_ENOMEM, "out of memory");
    size_t total = 0;
    ember_status st;
    for (size_t i = 0; i < c->nds; i++) {
        c->ds[i].obj = json_array_get(arr, i);
        if ((st = read_dataset(c, i)) != EMBER_OK)
            return st;
        c->ds[i].first_parent = (uint32_t)total;
        total += c->ds[i].nparents;
        c->ids[i] = (pf_id){c->ds[i].id, i};
    }
    qsort(c->ids, c->nds, sizeof *c->ids, id_cmp);
    for (size_t i = 1; i < c->nds; i++)
        if (c->ids[i].id == c->ids[i - 1].id) {
            const pf_dataset *d = &c->ds[c->ids[i].index];
            snprintf(c->where, sizeof c->where, "dataset %"
                     JSON_INTEGER_FORMAT " (%s)", d->id, d->op->name);
            return fail(c, EMBER_EINVAL, "id: %" JSON_INTEGER_FORMAT
                        " is the id of another dataset too", d->id);
        }
    c->parents = calloc(total ? total : 1, sizeof *c->parents);
    c->deps = calloc(total ? total : 1, sizeof *c->deps);
    if (!c->parents || !c->deps)
        return fail(c, EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nds; i++)
        if ((st = read_parents(c, i)) != EMBER_OK)
            return st;
    c->where[0] = '\0';
    return EMBER_OK;
}

/* ---- datasets: building ------------------------------------------------ */

/* The common fields that ride on the dataset's plan node; checked only
 * while c->checking (there is no dataset yet). */
static ember_status set_extras(plan_ctx *c, pf_dataset *d)
{
    const json_t *o = d->obj;
    const json_t *v;
    const char *str;
    ember_status st;
    if ((v = json_object_get(o, "name"))) {
        if (!json_is_string(v))
            return fail(c, EMBER_EINVAL, "name must be a string, got %s",
                        em_json_kind(v));
        if (d->rdd)
            ember_rdd_set_name(d->rdd, json_string_value(v));
    }
    if ((v = json_object_get(o, "storage"))) {
        if ((st = get_string(c, v, "storage", &str)) != EMBER_OK)
            return st;
        if (!em_storage_level_known(str))
            return fail(c, EMBER_EINVAL, "storage: unknown storage level "
                        "'%.64s' (NONE, MEMORY_ONLY, MEMORY_AND_DISK, "
                        "DISK_ONLY, OFF_HEAP, ...)", str);
        ember_error pe = {0};
        /* through the API: a dataset two plan entries share (partition_by
         * returns its input when already partitioned so) keeps its rule
         * that a level cannot change */
        if (d->rdd && ember_persist(d->rdd, str, &pe) != EMBER_OK)
            return fail(c, EMBER_EINVAL, "storage: %s", pe.msg);
    }
    if ((v = json_object_get(o, "checkpoint"))) {
        int b = 0;
        if ((st = get_bool(c, v, "checkpoint", 0, &b)) != EMBER_OK)
            return st;
        ember_error ce = {0};
        /* through the API: it needs ember.checkpoint.dir */
        if (d->rdd && b && ember_checkpoint(d->rdd, &ce) != EMBER_OK)
            return fail(c, EMBER_EINVAL, "checkpoint: %s", ce.msg);
    }
    if ((v = json_object_get(o, "determinism"))) {
        static const char *const dets[] = {"deterministic", "unordered",
                                           "indeterminate"};
        if ((st = get_string(c, v, "determinism", &str)) != EMBER_OK)
            return st;
        if (!in_list(dets, COUNT(dets), str))
            return fail(c, EMBER_EINVAL, "determinism must be "
                        "\"deterministic\", \"unordered\" or "
                        "\"indeterminate\", got '%.64s'", str);
        if (d->rdd)
            json_object_set_new(d->rdd->node, "determinism",
                                json_string(str));
    }
    return EMBER_OK;
}

/* parallelize's records: every item of args.data, as one batch. */
static ember_status data_batch(plan_ctx *c, const json_t *data, ember_buf *b,
                               uint64_t *count)
{
    if (!data)
        return fail(c, EMBER_EINVAL, "args.data is required (an array of "
                    "records)");
    if (!json_is_array(data))
        return fail(c, EMBER_EINVAL, "args.data must be an array of "
                    "records, got %s", em_json_kind(data));
    ember_buf rec = ember_buf_heap();
    ember_status st = EMBER_OK;
    for (size_t i = 0; i < json_array_size(data) && st == EMBER_OK; i++) {
        char where[48];
        ember_error e = {0};
        snprintf(where, sizeof where, "args.data[%zu]", i);
        rec.len = 0;
        st = em_json_to_record(json_array_get(data, i), where, &rec, &e);
        if (st != EMBER_OK)
            st = fail(c, st, "%s", e.msg);
        else if ((st = ember_batch_append(b, rec.data, rec.len)) != EMBER_OK)
            st = fail(c, st, "out of memory");
        else
            (*count)++;
    }
    ember_buf_release(&rec);
    return st;
}

static ember_status build_source(plan_ctx *c, pf_dataset *d,
                                 const json_t *args, ember_error *e)
{
    const json_t *pv = json_object_get(d->obj, "partitions");
    json_int_t parts, a, b, step;
    ember_status st;
    switch (d->op->kind) {
    case OP_PARALLELIZE: {
        if ((st = get_int(c, pv, "partitions", 1, MAX_PARTITIONS, 0,
                          ember_default_parallelism(c->s), &parts)) !=
            EMBER_OK)
            return st;
        ember_buf buf = ember_buf_heap();
        uint64_t n = 0;
        st = data_batch(c, json_object_get(args, "data"), &buf, &n);
        if (st == EMBER_OK && !c->checking) {
            ember_batch batch = {buf.data, buf.len, n};
            d->rdd = ember_parallelize(c->s, &batch, (uint32_t)parts, e);
        }
        ember_buf_release(&buf);
        return st;
    }
    case OP_RANGE:
        if ((st = get_int(c, pv, "partitions", 1, MAX_PARTITIONS, 0,
                          ember_default_parallelism(c->s), &parts)) !=
                EMBER_OK ||
            (st = get_int(c, json_object_get(args, "start"), "args.start",
                          INT64_MIN, INT64_MAX, 1, 0, &a)) != EMBER_OK ||
            (st = get_int(c, json_object_get(args, "end"), "args.end",
                          INT64_MIN, INT64_MAX, 1, 0, &b)) != EMBER_OK ||
            (st = get_int(c, json_object_get(args, "step"), "args.step",
                          INT64_MIN, INT64_MAX, 0, 1, &step)) != EMBER_OK)
            return st;
        if (step == 0)
            return fail(c, EMBER_EINVAL, "args.step must not be 0");
        if (!c->checking)
            d->rdd = ember_range(c->s, a, b, step, (uint32_t)parts, e);
        return EMBER_OK;
    case OP_TEXT_FILE: {
        const char *path;
        if ((st = get_string(c, json_object_get(args, "path"), "args.path",
                             &path)) != EMBER_OK ||
            (st = get_int(c, json_object_get(args, "min_partitions"),
                          "args.min_partitions", 1, MAX_PARTITIONS, 0, 0,
                          &parts)) != EMBER_OK ||
            (pv && (st = get_int(c, pv, "partitions", 0, MAX_PARTITIONS, 1,
                                 0, &a)) != EMBER_OK))
            return st;
        if (c->checking)
            return EMBER_OK; /* a missing input is found when building */
        char *full = resolve(c->dir, path, 1);
        if (!full)
            return fail(c, EMBER_ENOMEM, "out of memory");
        d->rdd = ember_text_file(c->s, full, (uint32_t)parts, e);
        free(full);
        return EMBER_OK;
    }
    case OP_SOURCE: {
        const char *comp;
        uint8_t *arg = NULL;
        size_t len = 0;
        ember_error pe = {0};
        if ((st = get_string(c, json_object_get(args, "component"),
                             "args.component", &comp)) != EMBER_OK ||
            (st = get_int(c, json_object_get(args, "min_partitions"),
                          "args.min_partitions", 1, MAX_PARTITIONS, 0, 0,
                          &parts)) != EMBER_OK ||
            (pv && (st = get_int(c, pv, "partitions", 0, MAX_PARTITIONS, 1,
                                 0, &a)) != EMBER_OK))
            return st;
        /* A remote session plans on the service, which has the source. */
        if (!c->s->remote &&
            !em_registry_find(c->s->registry, EMBER_KIND_SOURCE, comp))
            return fail(c, EMBER_EINVAL, "args.component: no source "
                        "component '%.128s' is loaded (is its plugin "
                        "loaded? 'ember plugin list' shows what is)", comp);
        if ((st = em_plan_blob(args, "args", &arg, &len, &pe)) != EMBER_OK)
            return fail(c, st, "%s", pe.msg);
        /* the argument goes to the component as is: a path in it is not
         * resolved against the file's directory */
        if (!c->checking)
            d->rdd = ember_source(c->s, comp, arg, len, (uint32_t)parts, e);
        free(arg);
        return EMBER_OK;
    }
    default: /* OP_EMPTY */
        if ((st = get_int(c, pv, "partitions", 0, 0, 0, 0, &parts)) !=
            EMBER_OK)
            return st;
        if (!c->checking)
            d->rdd = ember_empty(c->s, e);
        return EMBER_OK;
    }
}

/* A partitioner read from a dataset: the API's view and what it points
 * into. */
typedef struct pf_part {
    ember_partitioner p;
    pf_fn fn;
    ember_buf bounds; /* a batch of encoded keys */
} pf_part;

static void part_free(pf_part *p)
{
    fn_free(&p->fn);
    ember_buf_release(&p->bounds);
}

/* A range partitioner's "bounds": keys (JSON values, as record values),
 * strictly ascending, into p->bounds; their number into *n. */
static ember_status get_bounds(plan_ctx *c, const json_t *bv, pf_part *p,
                               uint32_t *n)
{
    if (!bv)
        return fail(c, EMBER_EINVAL, "partitioner.bounds is required (an "
                    "array of keys, ascending)");
    if (!json_is_array(bv))
        return fail(c, EMBER_EINVAL, "partitioner.bounds must be an array "
                    "of keys, got %s", em_json_kind(bv));
    if (json_array_size(bv) >= MAX_PARTITIONS)
        return fail(c, EMBER_EINVAL, "partitioner.bounds: %zu bounds; at "
                    "most %u", json_array_size(bv), MAX_PARTITIONS - 1);
    ember_buf key = ember_buf_heap();
    size_t prev_off = 0, prev_len = 0;
    ember_status st = EMBER_OK;
    for (size_t i = 0; i < json_array_size(bv) && st == EMBER_OK; i++) {
        char where[48];
        ember_error e = {0};
        snprintf(where, sizeof where, "partitioner.bounds[%zu]", i);
        key.len = 0;
        if ((st = em_json_to_value(json_array_get(bv, i), where, &key,
                                   &e)) != EMBER_OK) {
            st = fail(c, st, "%s", e.msg);
            break;
        }
        if (i > 0 && ember_rec_compare(p->bounds.data + prev_off, prev_len,
                                       key.data, key.len) >= 0) {
            st = fail(c, EMBER_EINVAL, "%s: bounds must ascend strictly "
                      "(this key is not above the one before)", where);
            break;
        }
        if ((st = ember_batch_append(&p->bounds, key.data, key.len)) !=
            EMBER_OK) {
            st = fail(c, st, "out of memory");
            break;
        }
        /* the key just framed ends the batch */
        prev_off = p->bounds.len - key.len;
        prev_len = key.len;
    }
    ember_buf_release(&key);
    *n = (uint32_t)json_array_size(bv);
    return st;
}

/* d's "partitioner"; without one, a hash partitioner into "partitions"
 * when that is given (Spark's numPartitions), else the default rule
 * (SEMANTICS S11). */
static ember_status get_partitioner(plan_ctx *c, const pf_dataset *d,
                                    pf_part *out)
{
    const json_t *pj = json_object_get(d->obj, "partitioner");
    json_int_t n, pn;
    ember_status st = get_int(c, json_object_get(d->obj, "partitions"),
                              "partitions", 1, MAX_PARTITIONS, 0, 0, &n);
    if (st != EMBER_OK)
        return st;
    out->p.kind = EMBER_PART_DEFAULT;
    out->p.partitions = (uint32_t)n;
    if (!pj)
        return EMBER_OK;
    if (!json_is_object(pj))
        return fail(c, EMBER_EINVAL, "partitioner must be an object "
                    "({\"kind\": \"hash\", \"partitions\": N}, ...), got %s",
                    em_json_kind(pj));
    const char *kind;
    if ((st = get_string(c, json_object_get(pj, "kind"), "partitioner.kind",
                         &kind)) != EMBER_OK)
        return st;
    const json_t *pv = json_object_get(pj, "partitions");
    if (strcmp(kind, "hash") == 0) {
        if ((st = known_keys(c, pj, "partitioner", "kind partitions",
                             "a hash partitioner")) != EMBER_OK ||
            (st = get_int(c, pv, "partitioner.partitions", 1, MAX_PARTITIONS,
                          0, n, &pn)) != EMBER_OK)
            return st;
        out->p.kind = EMBER_PART_HASH;
        out->p.partitions = (uint32_t)pn;
        return EMBER_OK;
    }
    if (strcmp(kind, "range") == 0) {
        uint32_t nb = 0;
        if ((st = known_keys(c, pj, "partitioner", "kind partitions bounds "
                             "descending", "a range partitioner")) !=
                EMBER_OK ||
            (st = get_bounds(c, json_object_get(pj, "bounds"), out, &nb)) !=
                EMBER_OK ||
            (st = get_bool(c, json_object_get(pj, "descending"),
                           "partitioner.descending", 0,
                           &out->p.descending)) != EMBER_OK)
            return st;
        if ((st = get_int(c, pv, "partitioner.partitions", 1, MAX_PARTITIONS,
                          0, n ? n : (json_int_t)nb + 1, &pn)) != EMBER_OK)
            return st;
        if (pn <= (json_int_t)nb)
            return fail(c, EMBER_EINVAL, "%s is %" JSON_INTEGER_FORMAT
                        " but %" PRIu32 " bounds make %" PRIu32
                        " partitions", pv ? "partitioner.partitions"
                                          : "partitions",
                        pn, nb, nb + 1);
        out->p.kind = EMBER_PART_RANGE;
        out->p.partitions = (uint32_t)pn;
        out->p.bounds = out->bounds.data;
        out->p.bounds_len = out->bounds.len;
        return EMBER_OK;
    }
    if (strcmp(kind, "function") == 0) {
        if ((st = known_keys(c, pj, "partitioner", "kind partitions fn",
                             "a function partitioner")) != EMBER_OK ||
            (st = get_int(c, pv, "partitioner.partitions", 1, MAX_PARTITIONS,
                          1, 0, &pn)) != EMBER_OK ||
            (st = get_fn(c, json_object_get(pj, "fn"), "partitioner.fn",
                         EMBER_FN_MAP, &out->fn)) != EMBER_OK)
            return st;
        out->p.kind = EMBER_PART_FUNCTION;
        out->p.partitions = (uint32_t)pn;
        out->p.fn = fn_view(&out->fn);
        return EMBER_OK;
    }
    return fail(c, EMBER_EINVAL, "partitioner.kind: unknown partitioner "
                "kind '%.64s' (hash, range, function)", kind);
}

/* The values a derived dataset's "args" (and "partitions", where it is
 * the count asked for) give. */
typedef struct pf_args {
    int flag;          /* preserves_partitioning, with_replacement,
                          ascending or shuffle */
    json_int_t n;      /* the count asked for; 0 = as the operation says */
    json_int_t seed;
    double fraction;
    const char *command;
    ember_buf zero;    /* the zero record; sample_by_key's fractions (a
                          batch of count records) */
    uint64_t count;
} pf_args;

static ember_status read_args(plan_ctx *c, const pf_dataset *d,
                              const json_t *args, pf_args *a)
{
    const json_t *pv = json_object_get(d->obj, "partitions");
    ember_status st;
    ember_error e = {0};
    op_kind kind = d->op->kind;
    switch (kind) {
    case OP_MAP_PARTITIONS:
    case OP_MAP_PARTITIONS_WITH_INDEX:
        return get_bool(c, json_object_get(args, "preserves_partitioning"),
                        "args.preserves_partitioning", 0, &a->flag);
    case OP_COALESCE:
        if ((st = get_bool(c, json_object_get(args, "shuffle"),
                           "args.shuffle", 0, &a->flag)) != EMBER_OK)
            return st;
        return get_int(c, pv, "partitions", 1, MAX_PARTITIONS, 1, 0, &a->n);
    case OP_REPARTITION:
        return get_int(c, pv, "partitions", 1, MAX_PARTITIONS, 1, 0, &a->n);
    case OP_DISTINCT:
        return get_int(c, pv, "partitions", 1, MAX_PARTITIONS, 0, 0, &a->n);
    case OP_SORT_BY_KEY:
    case OP_SORT_BY:
        if ((st = get_int(c, pv, "partitions", 1, MAX_PARTITIONS, 0, 0,
                          &a->n)) != EMBER_OK)
            return st;
        return get_bool(c, json_object_get(args, "ascending"),
                        "args.ascending", 1, &a->flag);
    case OP_REPARTITION_AND_SORT:
        return get_bool(c, json_object_get(args, "ascending"),
                        "args.ascending", 1, &a->flag);
    case OP_FOLD_BY_KEY:
    case OP_AGGREGATE_BY_KEY: {
        const json_t *z = json_object_get(args, "zero");
        if (!z)
            return fail(c, EMBER_EINVAL, "args.zero is required (a record)");
        if ((st = em_json_to_record(z, "args.zero", &a->zero, &e)) !=
            EMBER_OK)
            return fail(c, st, "%s", e.msg);
        if (a->zero.len == 0)
            return fail(c, EMBER_EINVAL, "args.zero: the zero needs at least "
                        "one value (got an empty record)");
        return EMBER_OK;
    }
    case OP_SAMPLE:
    case OP_SAMPLE_BY_KEY: {
        const json_t *fv = json_object_get(args, "fraction");
        if ((st = get_bool(c, json_object_get(args, "with_replacement"),
                           "args.with_replacement", 0, &a->flag)) !=
                EMBER_OK ||
            (st = get_int(c, json_object_get(args, "seed"), "args.seed",
                          INT64_MIN, INT64_MAX, 0, em_plan_random_seed(),
                          &a->seed)) != EMBER_OK)
            return st;
        if (kind == OP_SAMPLE_BY_KEY) {
            if ((st = em_plan_fractions(json_object_get(args, "fractions"),
                                        "args.fractions", a->flag, &a->zero,
                                        &a->count, &e)) != EMBER_OK)
                return fail(c, st, "%s", e.msg);
            return EMBER_OK;
        }
        if (!fv)
            return fail(c, EMBER_EINVAL, "args.fraction is required");
        if (!json_is_number(fv))
            return fail(c, EMBER_EINVAL, "args.fraction must be a number, "
                        "got %s", em_json_kind(fv));
        a->fraction = json_number_value(fv);
        return EMBER_OK;
    }
    case OP_PIPE:
        return get_string(c, json_object_get(args, "command"),
                          "args.command", &a->command);
    default:
        return EMBER_OK;
    }
}

/* Makes derived dataset d through the driver API (nothing while
 * c->checking, which only reads and checks). */
static ember_status build_derived(plan_ctx *c, pf_dataset *d,
                                  const json_t *args, ember_rdd **ps,
                                  const pf_fn *fns, const pf_part *part,
                                  ember_error *e)
{
    pf_args a;
    memset(&a, 0, sizeof a);
    a.zero = ember_buf_heap();
    ember_status st = read_args(c, d, args, &a);
    if (st != EMBER_OK || c->checking)
        goto done;
    ember_fn f = fn_view(&fns[0]), f1 = fn_view(&fns[1]);
    const ember_partitioner *p = &part->p;
    ember_rdd *r = ps[0];
    uint32_t n = (uint32_t)a.n;
    switch (d->op->kind) {
    case OP_MAP: d->rdd = ember_map(r, f, e); break;
    case OP_FLAT_MAP: d->rdd = ember_flat_map(r, f, e); break;
    case OP_FILTER: d->rdd = ember_filter(r, f, e); break;
    case OP_MAP_PARTITIONS:
        d->rdd = ember_map_partitions(r, f, a.flag, e);
        break;
    case OP_MAP_PARTITIONS_WITH_INDEX:
        d->rdd = ember_map_partitions_with_index(r, f, a.flag, e);
        break;
    case OP_KEY_BY: d->rdd = ember_key_by(r, f, e); break;
    case OP_MAP_VALUES: d->rdd = ember_map_values(r, f, e); break;
    case OP_FLAT_MAP_VALUES: d->rdd = ember_flat_map_values(r, f, e); break;
    case OP_GLOM: d->rdd = ember_glom(r, e); break;
    case OP_KEYS: d->rdd = ember_keys(r, e); break;
    case OP_VALUES: d->rdd = ember_values(r, e); break;
    case OP_ZIP_WITH_UNIQUE_ID: d->rdd = ember_zip_with_unique_id(r, e); break;
    case OP_ZIP_WITH_INDEX: d->rdd = ember_zip_with_index(r, e); break;
    case OP_UNION: d->rdd = ember_union(ps, d->nparents, e); break;
    case OP_COALESCE:
        /* Spark's coalesce(n, shuffle = true) is repartition(n) */
        d->rdd = a.flag ? ember_repartition(r, n, e)
                        : ember_coalesce(r, n, e);
        break;
    case OP_SAMPLE:
        d->rdd = ember_sample(r, a.flag, a.fraction, (uint64_t)a.seed, e);
        break;
    case OP_SAMPLE_BY_KEY: {
        ember_batch fr = {a.zero.data, a.zero.len, a.count};
        d->rdd = ember_sample_by_key(r, a.flag, &fr, (uint64_t)a.seed, e);
        break;
    }
    case OP_ZIP: d->rdd = ember_zip(ps[0], ps[1], e); break;
    case OP_ZIP_PARTITIONS:
        d->rdd = ember_zip_partitions(ps, d->nparents, f, e);
        break;
    case OP_PIPE: d->rdd = ember_pipe(r, a.command, e); break;
    case OP_CARTESIAN: d->rdd = ember_cartesian(ps[0], ps[1], e); break;
    case OP_PARTITION_BY: d->rdd = ember_partition_by(r, p, e); break;
    case OP_REDUCE_BY_KEY: d->rdd = ember_reduce_by_key(r, f, p, e); break;
    case OP_FOLD_BY_KEY:
        d->rdd = ember_fold_by_key(r, a.zero.data, a.zero.len, f, p, e);
        break;
    case OP_AGGREGATE_BY_KEY:
        d->rdd = ember_aggregate_by_key(r, a.zero.data, a.zero.len, f, f1, p,
                                        e);
        break;
    case OP_COMBINE_BY_KEY:
        d->rdd = ember_combine_by_key(r, f, f1, fn_view(&fns[2]), p, e);
        break;
    case OP_GROUP_BY_KEY: d->rdd = ember_group_by_key(r, p, e); break;
    case OP_GROUP_BY: d->rdd = ember_group_by(r, f, p, e); break;
    case OP_JOIN: d->rdd = ember_join(ps[0], ps[1], p, e); break;
    case OP_LEFT_OUTER_JOIN:
        d->rdd = ember_left_outer_join(ps[0], ps[1], p, e);
        break;
    case OP_RIGHT_OUTER_JOIN:
        d->rdd = ember_right_outer_join(ps[0], ps[1], p, e);
        break;
    case OP_FULL_OUTER_JOIN:
        d->rdd = ember_full_outer_join(ps[0], ps[1], p, e);
        break;
    case OP_COGROUP: d->rdd = ember_cogroup(ps, d->nparents, p, e); break;
    case OP_SUBTRACT_BY_KEY:
        d->rdd = ember_subtract_by_key(ps[0], ps[1], p, e);
        break;
    case OP_SUBTRACT: d->rdd = ember_subtract(ps[0], ps[1], p, e); break;
    case OP_INTERSECTION:
        d->rdd = ember_intersection(ps[0], ps[1], p, e);
        break;
    case OP_DISTINCT: d->rdd = ember_distinct(r, n, e); break;
    case OP_REPARTITION: d->rdd = ember_repartition(r, n, e); break;
    case OP_REPARTITION_AND_SORT:
        d->rdd = ember_repartition_and_sort_within_partitions(r, p, a.flag, e);
        break;
    case OP_SORT_BY_KEY:
        /* runs the sampling job that chooses the range bounds (S6) */
        d->rdd = ember_sort_by_key(r, a.flag, n, e);
        break;
    case OP_SORT_BY: d->rdd = ember_sort_by(r, f, a.flag, n, e); break;
    default: /* the sources: not derived */
        st = fail(c, EMBER_EINTERNAL, "not a derived operation");
        break;
    }
done:
    ember_buf_release(&a.zero);
    return st;
}

/*
 * Checks each parent's declared "dep" against what the operation makes of
 * it: narrow for narrow operations, a shuffle for shuffling ones, and for
 * the join-like ones narrow exactly when the parent is partitioned like the
 * result (known once d is built; skipped while checking).
 */
static ember_status check_deps(plan_ctx *c, const pf_dataset *d)
{
    const op_info *op = d->op;
    const json_t *args = json_object_get(d->obj, "args");
    int shuffles = (op->flags & OPF_SHUFFLE) ||
                   (op->kind == OP_COALESCE &&
                    json_is_true(json_object_get(args, "shuffle")));
    for (uint32_t k = 0; k < d->nparents; k++) {
        uint8_t dep = c->deps[d->first_parent + k];
        if (dep == DEP_ANY)
            continue;
        const pf_dataset *pd = &c->ds[c->parents[d->first_parent + k]];
        if (op->flags & OPF_COPART) {
            if (c->checking)
                continue;
            const json_t *mine = d->rdd->partitioner;
            const json_t *theirs = pd->rdd->partitioner;
            int narrow = mine && theirs && json_equal((json_t *)mine,
                                                      (json_t *)theirs);
            if (narrow && dep == DEP_SHUFFLE)
                return fail(c, EMBER_EINVAL, "parents[%" PRIu32 "].dep: "
                            "dataset %" JSON_INTEGER_FORMAT " is already "
                            "partitioned like the result, so its dependency "
                            "is narrow, not a shuffle", k, pd->id);
            if (!narrow && dep == DEP_NARROW)
                return fail(c, EMBER_EINVAL, "parents[%" PRIu32 "].dep: "
                            "dataset %" JSON_INTEGER_FORMAT " is not "
                            "partitioned like the result, so its dependency "
                            "is a shuffle, not narrow", k, pd->id);
        } else if (shuffles && dep == DEP_NARROW) {
            return fail(c, EMBER_EINVAL, "parents[%" PRIu32 "].dep: %s "
                        "shuffles its parent; its dependency cannot be "
                        "narrow", k, op->name);
        } else if (!shuffles && dep == DEP_SHUFFLE) {
            return fail(c, EMBER_EINVAL, "parents[%" PRIu32 "].dep: %s is a "
                        "narrow operation; its dependency cannot be a "
                        "shuffle", k, op->name);
        }
    }
    return EMBER_OK;
}

/* What "fns" of op must hold, for messages. */
static const char *fns_wanted(const op_info *op)
{
    if (strcmp(op->fns, "m") == 0)
        return "one map function";
    if (strcmp(op->fns, "r") == 0)
        return "one reduce function";
    if (strcmp(op->fns, "rr") == 0)
        return "two reduce functions: seq, comb";
    return "three functions: create (map), merge_value and "
           "merge_combiners (reduce)";
}

/* Reads and checks dataset d (c->checking), or makes it: its parents are
 * made. */
static ember_status build_one(plan_ctx *c, pf_dataset *d)
{
    snprintf(c->where, sizeof c->where, "dataset %" JSON_INTEGER_FORMAT
             " (%s)", d->id, d->op->name);
    const json_t *o = d->obj;
    const json_t *fns = json_object_get(o, "fns");
    const json_t *args = json_object_get(o, "args");
    const json_t *pv = json_object_get(o, "partitions");
    size_t nf = strlen(d->op->fns);
    ember_status st = EMBER_OK;
    pf_fn fn[3];
    pf_part part;
    memset(fn, 0, sizeof fn);
    memset(&part, 0, sizeof part);
    part.bounds = ember_buf_heap();
    if (nf == 0 && fns && !(json_is_array(fns) && json_array_size(fns) == 0)) {
        st = fail(c, EMBER_EINVAL, "fns: %s takes no function", d->op->name);
    } else if (nf > 0 && !fns) {
        st = fail(c, EMBER_EINVAL, "fns is required (%s)", fns_wanted(d->op));
    } else if (nf > 0 && !json_is_array(fns)) {
        st = fail(c, EMBER_EINVAL, "fns must be an array of %s, got %s",
                  fns_wanted(d->op), em_json_kind(fns));
    } else if (nf > 0 && json_array_size(fns) != nf) {
        st = fail(c, EMBER_EINVAL, "fns must be an array of %s, got %zu",
                  fns_wanted(d->op), json_array_size(fns));
    }
    for (size_t k = 0; k < nf && st == EMBER_OK; k++) {
        char field[32];
        snprintf(field, sizeof field, "fns[%zu]", k);
        st = get_fn(c, json_array_get(fns, k), field,
                    d->op->fns[k] == 'm' ? EMBER_FN_MAP : EMBER_FN_REDUCE,
                    &fn[k]);
    }
    if (st == EMBER_OK && args && !json_is_object(args))
        st = fail(c, EMBER_EINVAL, "args must be an object, got %s",
                  em_json_kind(args));
    if (st == EMBER_OK && args)
        st = known_keys(c, args, "args", d->op->args, d->op->name);
    if (st == EMBER_OK && (d->op->flags & OPF_PARTITIONER))
        st = get_partitioner(c, d, &part);
    if (st == EMBER_OK && c->checking)
        st = check_deps(c, d);
    if (st != EMBER_OK)
        goto done;
    ember_rdd *ps[MAX_PARENTS];
    for (uint32_t k = 0; k < d->nparents; k++)
        ps[k] = c->ds[c->parents[d->first_parent + k]].rdd;
    ember_error e = {0};
    st = d->nparents == 0 ? build_source(c, d, args, &e)
                          : build_derived(c, d, args, ps, fn, &part, &e);
    if (st != EMBER_OK)
        goto done;
    if (c->checking) {
        json_int_t want;
        st = set_extras(c, d);
        if (st == EMBER_OK && pv && d->nparents > 0 &&
            !(d->op->flags & (OPF_COUNT_IN | OPF_PARTITIONER)))
            st = get_int(c, pv, "partitions", 0, MAX_PARTITIONS, 1, 0, &want);
        goto done;
    }
    if (!d->rdd) {
        st = fail(c, e.code ? e.code : EMBER_EINTERNAL, "%s",
                  e.msg[0] ? e.msg : "the dataset could not be made");
        goto done;
    }
    if ((st = set_extras(c, d)) != EMBER_OK ||
        (st = check_deps(c, d)) != EMBER_OK)
        goto done;
    if (pv && d->nparents > 0 && !(d->op->flags & OPF_COUNT_IN)) {
        json_int_t want = json_integer_value(pv);
        if ((uint32_t)want != ember_rdd_partitions(d->rdd))
            st = fail(c, EMBER_EINVAL, "partitions is %" JSON_INTEGER_FORMAT
                      " but a %s of these parents has %" PRIu32, want,
                      d->op->name, ember_rdd_partitions(d->rdd));
    } else if (pv && (d->op->kind == OP_TEXT_FILE ||
                      d->op->kind == OP_SOURCE)) {
        json_int_t want = json_integer_value(pv);
        if ((uint32_t)want != ember_rdd_partitions(d->rdd))
            st = fail(c, EMBER_EINVAL, "partitions is %" JSON_INTEGER_FORMAT
                      " but the input splits into %" PRIu32 " (give "
                      "args.min_partitions instead)", want,
                      ember_rdd_partitions(d->rdd));
    }
done:
    for (size_t k = 0; k < COUNT(fn); k++)
        fn_free(&fn[k]);
    part_free(&part);
    return st;
}

/* Formats the cycle stack[from..top) + stack[from] into c's error. */
static ember_status cycle(plan_ctx *c, const uint32_t *stack, size_t from,
                          size_t top)
{
    char text[400] = "";
    size_t used = 0;
    for (size_t k = from; k <= top && used < sizeof text - 1; k++) {
        const pf_dataset *d = &c->ds[stack[k < top ? k : from]];
        int n = snprintf(text + used, sizeof text - used, "%s%"
                         JSON_INTEGER_FORMAT, k > from ? " -> " : "", d->id);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    c->where[0] = '\0';
    return fail(c, EMBER_EINVAL, "cycle among datasets %s", text);
}

/* Orders the datasets parents first into c->order (a depth-first walk
 * with an explicit stack: chains may be long), refusing cycles. */
static ember_status order_datasets(plan_ctx *c)
{
    uint32_t *stack = malloc((c->nds ? c->nds : 1) * sizeof *stack);
    c->order = malloc((c->nds ? c->nds : 1) * sizeof *c->order);
    if (!stack || !c->order) {
        free(stack);
        return fail(c, EMBER_ENOMEM, "out of memory");
    }
    size_t done = 0;
    ember_status st = EMBER_OK;
    for (size_t i = 0; i < c->nds && st == EMBER_OK; i++) {
        if (c->ds[i].state)
            continue;
        size_t top = 0;
        stack[top++] = (uint32_t)i;
        c->ds[i].state = 1;
        while (top && st == EMBER_OK) {
            pf_dataset *d = &c->ds[stack[top - 1]];
            if (d->next < d->nparents) {
                uint32_t p = c->parents[d->first_parent + d->next++];
                if (c->ds[p].state == 1) {
                    size_t from = 0;
                    while (stack[from] != p)
                        from++;
                    st = cycle(c, stack, from, top);
                } else if (c->ds[p].state == 0) {
                    c->ds[p].state = 1;
                    stack[top++] = p;
                }
                continue;
            }
            d->state = 2;
            c->order[done++] = stack[--top];
        }
    }
    free(stack);
    return st;
}

/* Reads and checks every dataset (no dataset is made, no job runs). */
static ember_status check_datasets(plan_ctx *c)
{
    ember_status st = EMBER_OK;
    c->checking = 1;
    for (size_t i = 0; i < c->nds && st == EMBER_OK; i++)
        st = build_one(c, &c->ds[i]);
    c->checking = 0;
    if (st == EMBER_OK)
        c->where[0] = '\0';
    return st;
}

/* Makes every dataset, parents first. */
static ember_status build_datasets(plan_ctx *c)
{
    ember_status st = EMBER_OK;
    for (size_t i = 0; i < c->nds && st == EMBER_OK; i++)
        st = build_one(c, &c->ds[c->order[i]]);
    if (st == EMBER_OK)
        c->where[0] = '\0';
    return st;
}

/* ---- actions ----------------------------------------------------------- */

static void action_free(pf_action *a)
{
    fn_free(&a->fn);
    fn_free(&a->comb);
    ember_buf_release(&a->zero);
    free(a->path);
}

static ember_status read_action(plan_ctx *c, size_t i, const json_t *o,
                                pf_action *a)
{
    snprintf(c->where, sizeof c->where, "action %zu", i);
    if (!json_is_object(o))
        return fail(c, EMBER_EINVAL, "an action is an object, got %s",
                    em_json_kind(o));
    const char *kind;
    ember_status st = get_string(c, json_object_get(o, "action"), "action",
                                 &kind);
    if (st != EMBER_OK)
        return st;
    for (size_t k = 0; k < COUNT(acts) && !a->info; k++)
        if (strcmp(acts[k].name, kind) == 0)
            a->info = &acts[k];
    if (!a->info)
        return fail(c, EMBER_EINVAL,
                    "unknown action '%.64s' (collect, count, first, take, "
                    "take_ordered, top, max, min, reduce, fold, aggregate, "
                    "tree_reduce, tree_aggregate, foreach, "
                    "foreach_partition, is_empty, count_by_value, stats, "
                    "save_as_text_file, count_by_key, collect_as_map, "
                    "reduce_by_key_locally, lookup)", kind);
    snprintf(c->where, sizeof c->where, "action %zu (%s)", i, kind);
    json_int_t id;
    if ((st = get_int(c, json_object_get(o, "dataset"), "dataset", 0, MAX_ID,
                      1, 0, &id)) != EMBER_OK)
        return st;
    long at = find_id(c, id);
    if (at < 0)
        return fail(c, EMBER_EINVAL, "dataset: no dataset %"
                    JSON_INTEGER_FORMAT, id);
    a->ds = (size_t)at;
    snprintf(c->where, sizeof c->where, "action %zu (%s of dataset %"
             JSON_INTEGER_FORMAT ")", i, kind, id);
    unsigned f = a->info->fields;
    char allowed[64] = "action dataset";
    static const struct {
        unsigned flag;
        const char *keys;
    } extra[] = {{AF_N, " n"},           {AF_ZERO, " zero"},
                 {AF_FN, " fn"},         {AF_SEQCOMB, " seq comb"},
                 {AF_DEPTH, " depth"},   {AF_PATH, " path"},
                 {AF_KEY, " key"}};
    for (size_t k = 0; k < COUNT(extra); k++)
        if (f & extra[k].flag)
            strcat(allowed, extra[k].keys);
    if ((st = known_keys(c, o, "", allowed, kind)) != EMBER_OK)
        return st;
    json_int_t x;
    if ((f & AF_N) &&
        (st = get_int(c, json_object_get(o, "n"), "n", 0, INT64_MAX, 1, 0,
                      &x)) == EMBER_OK)
        a->n = (uint64_t)x;
    if (st == EMBER_OK && (f & AF_DEPTH) &&
        (st = get_int(c, json_object_get(o, "depth"), "depth", 1, 64, 0, 2,
                      &x)) == EMBER_OK)
        a->depth = (uint32_t)x;
    if (st == EMBER_OK && (f & AF_ZERO)) {
        ember_error e = {0};
        const json_t *z = json_object_get(o, "zero");
        if (!z)
            st = fail(c, EMBER_EINVAL, "zero is required (a record)");
        else if ((st = em_json_to_record(z, "zero", &a->zero, &e)) !=
                 EMBER_OK)
            st = fail(c, st, "%s", e.msg);
    }
    if (st == EMBER_OK && (f & AF_KEY)) {
        ember_error e = {0};
        const json_t *k = json_object_get(o, "key");
        if (!k)
            st = fail(c, EMBER_EINVAL, "key is required (a JSON value)");
        else if ((st = em_json_to_value(k, "key", &a->zero, &e)) != EMBER_OK)
            st = fail(c, st, "%s", e.msg);
    }
    if (st == EMBER_OK && (f & AF_FN))
        st = get_fn(c, json_object_get(o, "fn"), "fn", a->info->fn_shape,
                    &a->fn);
    if (st == EMBER_OK && (f & AF_SEQCOMB) &&
        (st = get_fn(c, json_object_get(o, "seq"), "seq", a->info->fn_shape,
                     &a->fn)) == EMBER_OK)
        st = get_fn(c, json_object_get(o, "comb"), "comb",
                    a->info->fn_shape, &a->comb);
    if (st == EMBER_OK && (f & AF_PATH)) {
        const char *p;
        if ((st = get_string(c, json_object_get(o, "path"), "path", &p)) ==
                EMBER_OK &&
            !(a->path = resolve(c->dir, p, 0)))
            st = fail(c, EMBER_ENOMEM, "out of memory");
    }
    return st;
}

static ember_status read_actions(plan_ctx *c)
{
    const json_t *arr = json_object_get(c->root, "actions");
    if (!arr)
        return fail(c, EMBER_EINVAL, "actions is required (at least one "
                    "action)");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return fail(c, EMBER_EINVAL, "actions must be an array of at least "
                    "one action, got %s", json_is_array(arr)
                                                ? "an empty array"
                                                : em_json_kind(arr));
    c->acts = calloc(json_array_size(arr), sizeof *c->acts);
    if (!c->acts)
        return fail(c, EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        c->acts[i].zero = ember_buf_heap();
        c->nacts = i + 1;
        ember_status st = read_action(c, i, json_array_get(arr, i),
                                      &c->acts[i]);
        if (st != EMBER_OK)
            return st;
    }
    return EMBER_OK;
}

/* ---- running ----------------------------------------------------------- */

typedef struct emitter {
    ember_plan_emit_fn fn;
    void *ctx;
    ember_buf line;
} emitter;

static ember_status emit_line(emitter *em)
{
    ember_status st = ember_buf_put_u8(&em->line, '\0');
    if (st == EMBER_OK && em->fn)
        em->fn(em->ctx, (const char *)em->line.data);
    em->line.len = 0;
    return st;
}

/* Appends value record rec (a value made a record: a tuple's elements,
 * else the one value) to line as that value: one element as itself, else
 * the array of the elements. */
static ember_status value_to_json(ember_buf *line, const uint8_t *rec,
                                  size_t len)
{
    ember_rec_cursor cur = ember_rec_cursor_init(rec, len);
    ember_value v;
    ember_status st = ember_rec_next(&cur, &v);
    if (st == EMBER_OK && cur.p == cur.end)
        return ember_rec_json_value(line, &v);
    return ember_rec_json(line, rec, len);
}

/* One line per record of r: as records (pairs as key/value), or as values
 * (lookup's). */
static ember_status emit_records(plan_ctx *c, emitter *em,
                                 const ember_records *r, int values)
{
    ember_batch b = {r->data, r->len, r->count};
    ember_batch_cursor cur = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t rl;
    ember_status st;
    while ((st = ember_batch_next(&cur, &rec, &rl)) == EMBER_OK) {
        em->line.len = 0;
        st = values ? value_to_json(&em->line, rec, rl)
                    : em_record_to_json(&em->line, rec, rl);
        if (st != EMBER_OK || (st = emit_line(em)) != EMBER_OK)
            return fail(c, st == EMBER_EINVAL ? EMBER_EINTERNAL : st,
                        "cannot render a result record as JSON (%s)",
                        ember_status_name(st));
    }
    return st == EMBER_END ? EMBER_OK
                           : fail(c, EMBER_EINTERNAL, "malformed results");
}

/* Appends "name":d (non-finite as null) to line. */
static ember_status put_stat(ember_buf *line, const char *name, double d,
                             int first)
{
    char head[40];
    int n = snprintf(head, sizeof head, "%s\"%s\":", first ? "" : ",", name);
    ember_status st = ember_buf_append(line, head, (size_t)n);
    if (st != EMBER_OK)
        return st;
    if (!isfinite(d))
        return ember_buf_append(line, "null", 4);
    ember_value v;
    memset(&v, 0, sizeof v);
    v.type = EMBER_TYPE_DOUBLE;
    v.u.f64 = d;
    return ember_rec_json_value(line, &v);
}

static ember_status emit_stats(emitter *em, const ember_stats *s)
{
    char head[48];
    int n = snprintf(head, sizeof head, "{\"count\":%" PRIu64, s->count);
    ember_status st = ember_buf_append(&em->line, head, (size_t)n);
    const struct {
        const char *name;
        double v;
    } f[] = {{"mean", s->mean},
             {"stdev", s->stdev},
             {"variance", s->variance},
             {"sample_stdev", s->sample_stdev},
             {"sample_variance", s->sample_variance},
             {"sum", s->sum},
             {"max", s->max},
             {"min", s->min}};
    for (size_t k = 0; k < COUNT(f) && st == EMBER_OK; k++)
        st = put_stat(&em->line, f[k].name, f[k].v, 0);
    if (st == EMBER_OK)
        st = ember_buf_put_u8(&em->line, '}');
    return st == EMBER_OK ? emit_line(em) : st;
}

static ember_status run_action(plan_ctx *c, size_t i, emitter *em)
{
    pf_action *a = &c->acts[i];
    ember_rdd *r = c->ds[a->ds].rdd;
    snprintf(c->where, sizeof c->where, "action %zu (%s of dataset %"
             JSON_INTEGER_FORMAT ")", i, a->info->name, c->ds[a->ds].id);
    ember_records recs = {0};
    ember_error e = {0};
    ember_status st;
    int records = 1;
    ember_fn fn = fn_view(&a->fn), comb = fn_view(&a->comb);
    const uint8_t *z = a->zero.data;
    size_t zl = a->zero.len;
    /* An empty record is a valid zero: give the API a non-NULL pointer. */
    static const uint8_t none[1];
    if (!z)
        z = none;
    em->line.len = 0;
    switch (a->info->kind) {
    case ACT_COLLECT: st = ember_collect(r, &recs, &e); break;
    case ACT_FIRST: st = ember_first(r, &recs, &e); break;
    case ACT_TAKE: st = ember_take(r, a->n, &recs, &e); break;
    case ACT_TAKE_ORDERED: st = ember_take_ordered(r, a->n, &recs, &e); break;
    case ACT_TOP: st = ember_top(r, a->n, &recs, &e); break;
    case ACT_MAX: st = ember_max(r, &recs, &e); break;
    case ACT_MIN: st = ember_min(r, &recs, &e); break;
    case ACT_REDUCE: st = ember_reduce(r, fn, &recs, &e); break;
    case ACT_FOLD: st = ember_fold(r, z, zl, fn, &recs, &e); break;
    case ACT_AGGREGATE:
        st = ember_aggregate(r, z, zl, fn, comb, &recs, &e);
        break;
    case ACT_TREE_REDUCE:
        st = ember_tree_reduce(r, fn, a->depth, &recs, &e);
        break;
    case ACT_TREE_AGGREGATE:
        st = ember_tree_aggregate(r, z, zl, fn, comb, a->depth, &recs, &e);
        break;
    case ACT_COUNT_BY_VALUE: st = ember_count_by_value(r, &recs, &e); break;
    case ACT_COUNT_BY_KEY: st = ember_count_by_key(r, &recs, &e); break;
    case ACT_COLLECT_AS_MAP: st = ember_collect_as_map(r, &recs, &e); break;
    case ACT_REDUCE_BY_KEY_LOCALLY:
        st = ember_reduce_by_key_locally(r, fn, &recs, &e);
        break;
    case ACT_LOOKUP: st = ember_lookup(r, z, zl, &recs, &e); break;
    default:
        records = 0;
        break;
    }
    if (!records) {
        uint64_t n = 0;
        int empty = 0;
        ember_stats stats;
        char text[32];
        switch (a->info->kind) {
        case ACT_COUNT:
            if ((st = ember_count(r, &n, &e)) == EMBER_OK) {
                snprintf(text, sizeof text, "%" PRIu64, n);
                st = ember_buf_append(&em->line, text, strlen(text));
                if (st == EMBER_OK)
                    st = emit_line(em);
            }
            break;
        case ACT_IS_EMPTY:
            if ((st = ember_is_empty(r, &empty, &e)) == EMBER_OK) {
                st = ember_buf_append(&em->line, empty ? "true" : "false",
                                      empty ? 4 : 5);
                if (st == EMBER_OK)
                    st = emit_line(em);
            }
            break;
        case ACT_STATS:
            if ((st = ember_stats_of(r, &stats, &e)) == EMBER_OK)
                st = emit_stats(em, &stats);
            break;
        case ACT_FOREACH: st = ember_foreach(r, fn, &e); break;
        case ACT_FOREACH_PARTITION:
            st = ember_foreach_partition(r, fn, &e);
            break;
        default: /* ACT_SAVE_AS_TEXT_FILE */
            st = ember_save_as_text_file(r, a->path, &e);
            break;
        }
    }
    if (st != EMBER_OK) {
        ember_records_free(&recs);
        return fail(c, st, "%s", e.msg[0] ? e.msg : ember_status_name(st));
    }
    if (records)
        st = emit_records(c, em, &recs, a->info->kind == ACT_LOOKUP);
    ember_records_free(&recs);
    return st;
}

/* ---- accumulators ------------------------------------------------------ */

/* Reads the file's "accumulators" (docs/plan-format.md): checked as a
 * plan's are; made in the session by make_accumulators. */
static ember_status read_accumulators(plan_ctx *c)
{
    const json_t *arr = json_object_get(c->root, "accumulators");
    c->where[0] = '\0';
    if (!arr)
        return EMBER_OK;
    ember_error e = {0};
    ember_status st = em_accum_decls_decode(arr, NULL, &c->accs, &c->naccs,
                                            &e);
    if (st != EMBER_OK) /* its messages start "plan: " */
        return fail(c, st, "%s",
                    strncmp(e.msg, "plan: ", 6) == 0 ? e.msg + 6 : e.msg);
    return EMBER_OK;
}

static ember_status make_accumulators(plan_ctx *c)
{
    c->where[0] = '\0';
    if (!c->naccs)
        return EMBER_OK;
    if (!(c->acc = calloc(c->naccs, sizeof *c->acc)))
        return fail(c, EMBER_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < c->naccs; i++) {
        ember_error e = {0};
        ember_status st = em_client_accum_declare(
            c->s, c->accs[i].id, c->accs[i].name, c->accs[i].kind,
            &c->acc[i], &e);
        if (st != EMBER_OK)
            return fail(c, st, "accumulators: id %" PRIu64 ": %s",
                        c->accs[i].id, e.msg);
    }
    return EMBER_OK;
}

/* `accumulator NAME = VALUE` on stderr for each of the file's
 * accumulators (NAME: its name, else its id), after the actions. */
static void print_accumulators(const plan_ctx *c)
{
    ember_buf text = ember_buf_heap();
    for (uint32_t i = 0; c->acc && i < c->naccs; i++) {
        uint8_t *rec = NULL;
        size_t len = 0;
        text.len = 0;
        if (ember_accumulator_value(c->acc[i], &rec, &len, NULL) !=
            EMBER_OK)
            continue;
        ember_value v;
        size_t count = 0;
        ember_status st;
        if (len == 0)
            st = ember_buf_append(&text, "null", 4);
        else if (ember_rec_validate(rec, len, &count) == EMBER_OK &&
                 count == 1 && ember_rec_get(rec, len, 0, &v) == EMBER_OK)
            st = ember_rec_json_value(&text, &v);
        else
            st = ember_rec_json(&text, rec, len);
        free(rec);
        if (st != EMBER_OK || ember_buf_put_u8(&text, 0) != EMBER_OK)
            continue;
        if (c->accs[i].name)
            fprintf(stderr, "accumulator %s = %s\n", c->accs[i].name,
                    (const char *)text.data);
        else
            fprintf(stderr, "accumulator %" PRIu64 " = %s\n", c->accs[i].id,
                    (const char *)text.data);
    }
    ember_buf_release(&text);
}

/* ---- entry points ------------------------------------------------------ */

static void ctx_free(plan_ctx *c)
{
    em_accum_decls_free(c->accs, c->naccs);
    free(c->acc);
    for (size_t i = 0; i < c->nacts; i++)
        action_free(&c->acts[i]);
    free(c->acts);
    free(c->parents);
    free(c->deps);
    free(c->order);
    free(c->ids);
    free(c->ds);
    json_decref(c->root);
}

static void ctx_init(plan_ctx *c, ember_session *s, const char *origin,
                     ember_error *err)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    c->origin = origin ? origin : "plan";
    c->err = err;
    set_dir(c, origin);
}

ember_status ember_plan_run(ember_session *s, const char *json, size_t len,
                            const char *origin, ember_plan_emit_fn emit,
                            void *ctx, ember_error *err)
{
    plan_ctx c;
    ctx_init(&c, s, origin, err);
    emitter em = {emit, ctx, ember_buf_heap()};
    ember_status st;
    if (!s || !json) {
        st = fail(&c, EMBER_EINVAL, "a session and the plan's text are "
                  "needed");
        goto done;
    }
    /* Everything is read and checked before a dataset is made: making
     * one may run a job (sort_by_key's sampling, zip_with_index). */
    if ((st = load_root(&c, json, len)) != EMBER_OK ||
        (st = read_datasets(&c)) != EMBER_OK ||
        (st = order_datasets(&c)) != EMBER_OK ||
        (st = check_datasets(&c)) != EMBER_OK ||
        (st = read_actions(&c)) != EMBER_OK ||
        (st = read_accumulators(&c)) != EMBER_OK ||
        (st = make_accumulators(&c)) != EMBER_OK ||
        (st = build_datasets(&c)) != EMBER_OK)
        goto done;
    for (size_t i = 0; i < c.nacts && st == EMBER_OK; i++)
        st = run_action(&c, i, &em);
    if (st == EMBER_OK)
        print_accumulators(&c);
done:
    ember_buf_release(&em.line);
    ctx_free(&c);
    return st;
}

ember_status ember_plan_plugins(const char *json, size_t len,
                                const char *origin, char ***paths,
                                size_t *count, ember_error *err)
{
    plan_ctx c;
    ctx_init(&c, NULL, origin, err);
    *paths = NULL;
    *count = 0;
    ember_status st = json ? load_root(&c, json, len)
                           : fail(&c, EMBER_EINVAL, "no plan text");
    const json_t *pl = st == EMBER_OK ? json_object_get(c.root, "plugins")
                                      : NULL;
    size_t n = json_array_size(pl);
    char **out = NULL;
    if (n > 0) {
        out = calloc(n + 1, sizeof *out);
        for (size_t i = 0; out && i < n; i++)
            if (!(out[i] = resolve(c.dir, json_string_value(
                                              json_array_get(pl, i)), 0))) {
                for (size_t k = 0; k < i; k++)
                    free(out[k]);
                free(out);
                out = NULL;
            }
        if (!out)
            st = fail(&c, EMBER_ENOMEM, "out of memory");
    }
    if (st == EMBER_OK) {
        *paths = out;
        *count = n;
    }
    ctx_free(&c);
    return st;
}
