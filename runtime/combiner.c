/* runtime/combiner.c — see combiner.h. */
#include "runtime/combiner.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/function.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "runtime/bytemap.h"
#include "runtime/pipeline.h"
#include "runtime/recval.h"

enum { ST_NEW = 0, ST_ACC = 1, ST_INT = 2, ST_DBL = 3 };

typedef struct entry {
    size_t acc_off;  /* ST_ACC: the accumulator record in c->acc */
    size_t acc_len;
    int64_t ival;    /* ST_INT */
    double dval;     /* ST_DBL (std.sum folded in place, sum_in_place) */
    int64_t pending; /* newest record of this batch for the key, or -1 */
    uint32_t npend;
    uint8_t state;
} entry;

/* A record of the batch being added: its key, prepared for the map, and
 * its value's bytes as a record. */
typedef struct val {
    em_bmkey key;
    const uint8_t *p;
    size_t len;
    int64_t i64;   /* the value when it is an int */
    uint32_t type; /* the value's ember_type */
    int64_t next;  /* older record of the same key in this batch, or -1 */
} val;

typedef struct fn {
    const ember_function_vtable *vt;
    void *state;
    int open;
    const char *name;
} fn;

struct em_combiner {
    /* em_combiner_open_fn: the node it makes up for messages and fns */
    em_node own_node;
    em_fn_ref own_fn;
    em_op own_op;
    em_combine_kind kind;
    int map_side;
    const em_node *node;
    uint32_t partition;
    em_bytemap map;
    entry *entries;
    size_t nentries, cap_entries;
    ember_buf acc;       /* accumulator records */
    size_t acc_live;
    fn merge;            /* the REDUCE function of this side */
    fn create;           /* COMBINE map side: createCombiner (MAP) */
    uint8_t *zero;       /* FOLD/AGGREGATE map side */
    size_t zero_len;
    int zero_set;
    int64_t zero_int;    /* the zero, when fast_sum and zero_set */
    int sum_in_place;    /* the merge is std.sum: numbers folded into
                            their entries as they come (sum_in_place) */
    int dbl_slots;       /* fast_sum: the inline sums are doubles (a
                            std.sum whose values so far were all doubles) */
    int fast_sum;        /* ints summed inline in the map's values
                            (std.sum, COUNT); else values index entries */
    /* per batch scratch */
    val *vals;
    size_t cap_vals;
    uint32_t *touched;
    size_t ntouched, cap_touched;
    ember_buf vbuf, out, cin, cout;
    ember_buf keys; /* em_combiner_add_fused: the words' encodings */
    size_t peak_keys; /* most keys held at once (em_combiner_close) */
    size_t emit_pos;  /* the next slot of an emit in pieces */
};

/* ASCII white space, as std.split_words splits (em_combiner_add_fused). */
static const uint8_t space_of[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1};

/* The keys the last combiners of this thread held, by their shape (the
 * operation, its function, its partition count and its side): the next
 * combiner of that shape — the next task of the dataset, or the same
 * operation one iteration later (PageRank's reduce_by_key) — sizes its
 * table from it at once, sparing the growths (each a new zeroed table
 * and a rehash of every key). Only a hint: a wrong one costs a table
 * larger than needed. */
#define SIZE_HINTS 4
static _Thread_local struct {
    uint64_t shape;
    size_t keys;
} size_hints[SIZE_HINTS];
static _Thread_local unsigned size_hint_next;

/* FNV-1a of s into h. */
static uint64_t mix_str(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h * 0x100000001b3ull;
}

static uint64_t shape_of(const em_node *n, int map_side)
{
    uint64_t h = mix_str(0xcbf29ce484222325ull, n->op->name);
    for (uint32_t i = 0; i < n->nfns; i++)
        h = mix_str(h, n->fns[i].name);
    h = (h ^ ((uint64_t)n->partitions << 1 | (uint64_t)!!map_side)) *
        0x100000001b3ull;
    return h ? h : 1; /* never 0, the empty entry */
}

em_combine_kind em_combine_kind_of(const char *op)
{
    static const struct {
        const char *op;
        em_combine_kind k;
    } t[] = {{"aggregate_by_key", EM_COMBINE_AGGREGATE},
             {"combine_by_key", EM_COMBINE_COMBINE},
             {"count_by_key", EM_COMBINE_COUNT},
             {"distinct", EM_COMBINE_DISTINCT},
             {"fold_by_key", EM_COMBINE_FOLD},
             {"reduce_by_key", EM_COMBINE_REDUCE}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(op, t[i].op) == 0)
            return t[i].k;
    return EM_COMBINE_NONE;
}

static ember_status fail(const em_combiner *c, ember_error *err,
                         ember_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ember_status fail(const em_combiner *c, ember_error *err,
                         ember_status code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const em_node *n = c->node;
    const char *f = c->merge.name ? c->merge.name : "";
    return ember_errorf(err, code, "dataset %" PRIu64 " (%s%s%s) partition "
                        "%" PRIu32 ": %s", n->id, n->op->name, *f ? " " : "",
                        f, c->partition, msg);
}

static ember_status open_fn(em_combiner *c, fn *f, uint32_t i,
                            uint32_t shape, const em_registry *reg,
                            const ember_host_api *host, ember_error *err)
{
    const em_node *n = c->node;
    if (i >= n->nfns)
        return fail(c, err, EMBER_EINVAL, "%s needs %" PRIu32 " functions",
                    n->op->name, i + 1);
    const em_fn_ref *r = &n->fns[i];
    f->name = r->name;
    const em_component *comp =
        reg ? em_registry_find(reg, EMBER_KIND_FUNCTION, r->name) : NULL;
    if (!comp)
        return fail(c, err, EMBER_ENOTFOUND,
                    "function '%s' is not loaded on this executor", r->name);
    f->vt = comp->vtable;
    if (f->vt->shape != shape ||
        (shape == EMBER_FN_REDUCE ? !f->vt->reduce : !f->vt->map_batch))
        return fail(c, err, EMBER_EINVAL, "'%s' is not a %s function", r->name,
                    shape == EMBER_FN_REDUCE ? "reduce" : "map");
    if (f->vt->open) {
        ember_error e = {0};
        ember_status s = f->vt->open(host, r->arg, r->arg_len, &f->state, &e);
        if (s != EMBER_OK)
            return fail(c, err, s, "%s: open failed: %s", r->name,
                        e.msg[0] ? e.msg : ember_status_name(s));
    }
    f->open = 1;
    return EMBER_OK;
}

static void close_fn(fn *f)
{
    if (f->open && f->vt->close)
        f->vt->close(f->state);
    f->open = 0;
}

ember_status em_combiner_open(em_combiner **out, const em_node *n,
                              const void *args_json, int map_side,
                              uint32_t partition, const em_registry *registry,
                              const ember_host_api *host, ember_error *err)
{
    *out = NULL;
    em_combiner *c = calloc(1, sizeof *c);
    if (!c)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    c->kind = em_combine_kind_of(n->op->name);
    c->map_side = map_side;
    c->node = n;
    c->partition = partition;
    em_bytemap_init(&c->map);
    uint64_t shape = shape_of(n, map_side);
    for (unsigned i = 0; i < SIZE_HINTS; i++)
        if (size_hints[i].shape == shape && size_hints[i].keys > 0) {
            (void)em_bytemap_reserve(&c->map, size_hints[i].keys);
            break;
        }
    c->acc = ember_buf_heap();
    c->vbuf = ember_buf_heap();
    c->out = ember_buf_heap();
    c->cin = ember_buf_heap();
    c->cout = ember_buf_heap();
    c->keys = ember_buf_heap();
    ember_status s = EMBER_OK;
    int merge_fn = -1;
    switch (c->kind) {
    case EM_COMBINE_REDUCE: merge_fn = 0; break;
    case EM_COMBINE_FOLD: merge_fn = 0; break;
    case EM_COMBINE_AGGREGATE: merge_fn = map_side ? 0 : 1; break;
    case EM_COMBINE_COMBINE: merge_fn = map_side ? 1 : 2; break;
    case EM_COMBINE_COUNT: c->fast_sum = 1; break;
    case EM_COMBINE_DISTINCT: break;
    case EM_COMBINE_NONE:
        s = fail(c, err, EMBER_EINVAL, "%s does not combine", n->op->name);
        break;
    }
    if (s == EMBER_OK && merge_fn >= 0)
        s = open_fn(c, &c->merge, (uint32_t)merge_fn, EMBER_FN_REDUCE,
                    registry, host, err);
    if (s == EMBER_OK && map_side && c->kind == EM_COMBINE_COMBINE)
        s = open_fn(c, &c->create, 0, EMBER_FN_MAP, registry, host, err);
    if (s == EMBER_OK && map_side &&
        (c->kind == EM_COMBINE_FOLD || c->kind == EM_COMBINE_AGGREGATE)) {
        const json_t *z = args_json ? json_object_get(args_json, "zero")
                                    : NULL;
        if (!z || em_pipe_blob(z, &c->zero, &c->zero_len) != EMBER_OK ||
            ember_rec_validate(c->zero, c->zero_len, NULL) != EMBER_OK)
            s = fail(c, err, EMBER_EINVAL, "args.zero must be the base64 "
                     "of an encoded record");
        c->zero_set = 1;
    }
    if (s == EMBER_OK && c->merge.name && strcmp(c->merge.name, "std.sum") == 0) {
        /* inline when the fold starts from nothing or from an int zero */
        ember_value zv;
        ember_rec_cursor zc = ember_rec_cursor_init(c->zero, c->zero_len);
        c->fast_sum = !c->zero_set ||
                      (ember_rec_next(&zc, &zv) == EMBER_OK &&
                       zv.type == EMBER_TYPE_INT && zc.p == zc.end);
        if (c->fast_sum && c->zero_set)
            c->zero_int = zv.u.i64;
        /* not where a zero or createCombiner starts each key */
        c->sum_in_place =
            !(c->map_side && (c->zero_set || c->kind == EM_COMBINE_COMBINE));
    }
    if (s != EMBER_OK) {
        em_combiner_close(c);
        return s;
    }
    *out = c;
    return EMBER_OK;
}

ember_status em_combiner_open_fn(em_combiner **out, const char *what,
                                 const char *fn_name, const uint8_t *arg,
                                 size_t arg_len, int map_side,
                                 uint32_t partition,
                                 const em_registry *registry,
                                 const ember_host_api *host,
                                 ember_error *err)
{
    /* a stand-in dataset: one reduce_by_key node holding the function,
     * kept inside the combiner so that it lives as long */
    em_combiner tmp;
    memset(&tmp, 0, sizeof tmp);
    const em_op *rbk = em_op_find("reduce_by_key");
    if (!rbk)
        return ember_errorf(err, EMBER_EINTERNAL, "no reduce_by_key");
    tmp.own_op = *rbk;
    tmp.own_op.name = what;
    tmp.own_fn = (em_fn_ref){(char *)fn_name, (uint8_t *)arg, arg_len};
    tmp.own_node.op = &tmp.own_op;
    tmp.own_node.fns = &tmp.own_fn;
    tmp.own_node.nfns = 1;
    /* em_combiner_open reads the op's name for the kind: use the real one,
     * then show `what` in messages */
    em_node probe = tmp.own_node;
    probe.op = rbk;
    ember_status s = em_combiner_open(out, &probe, NULL, map_side, partition,
                                      registry, host, err);
    if (s != EMBER_OK)
        return s;
    em_combiner *c = *out;
    c->own_op = tmp.own_op;
    c->own_fn = tmp.own_fn;
    c->own_node = tmp.own_node;
    c->own_node.op = &c->own_op;
    c->own_node.fns = &c->own_fn;
    c->node = &c->own_node;
    return EMBER_OK;
}

void em_combiner_close(em_combiner *c)
{
    if (!c)
        return;
    if (c->node == &c->own_node) {
        /* a stand-in node: no dataset to remember */
    } else if (c->peak_keys > 0) {
        uint64_t shape = shape_of(c->node, c->map_side);
        unsigned at = size_hint_next;
        for (unsigned i = 0; i < SIZE_HINTS; i++)
            if (size_hints[i].shape == shape)
                at = i;
        if (at == size_hint_next)
            size_hint_next = (size_hint_next + 1) % SIZE_HINTS;
        size_hints[at].shape = shape;
        size_hints[at].keys = c->peak_keys;
    }
    close_fn(&c->merge);
    close_fn(&c->create);
    em_bytemap_free(&c->map);
    free(c->entries);
    free(c->vals);
    free(c->touched);
    free(c->zero);
    ember_buf_release(&c->acc);
    ember_buf_release(&c->vbuf);
    ember_buf_release(&c->out);
    ember_buf_release(&c->cin);
    ember_buf_release(&c->cout);
    ember_buf_release(&c->keys);
    free(c);
}

size_t em_combiner_bytes(const em_combiner *c)
{
    /* what the entries held take (slots at the map's load of one half),
     * not the capacity kept after a flush */
    return c->map.count * 2 * sizeof(em_bytemap_slot) + c->map.arena.len +
           c->nentries * sizeof(entry) + c->acc.len;
}

uint64_t em_combiner_count(const em_combiner *c)
{
    return c->map.count;
}

/* Stores rec as e's accumulator. */
static ember_status set_acc(em_combiner *c, entry *e, const uint8_t *rec,
                            size_t len)
{
    if (e->state == ST_ACC && len <= e->acc_len) {
        /* fits where the old one was */
        memmove(c->acc.data + e->acc_off, rec, len);
        c->acc_live -= e->acc_len - len;
        e->acc_len = len;
        return EMBER_OK;
    }
    if (c->acc.len > ((size_t)1 << 16) && c->acc.len > 2 * c->acc_live) {
        /* compact: half the arena is garbage */
        ember_buf fresh = ember_buf_heap();
        if (ember_buf_reserve(&fresh, c->acc_live + len) != EMBER_OK)
            return EMBER_ENOMEM;
        for (size_t i = 0; i < c->nentries; i++) {
            entry *x = &c->entries[i];
            if (x->state != ST_ACC || x == e)
                continue;
            size_t off = fresh.len;
            ember_buf_append(&fresh, c->acc.data + x->acc_off, x->acc_len);
            x->acc_off = off;
        }
        if (e->state == ST_ACC)
            c->acc_live -= e->acc_len;
        e->state = ST_NEW;
        /* rec may point into the old arena (never: it is c->out) */
        ember_buf_release(&c->acc);
        c->acc = fresh;
    }
    size_t off = c->acc.len;
    if (ember_buf_append(&c->acc, rec, len) != EMBER_OK)
        return EMBER_ENOMEM;
    if (e->state == ST_ACC)
        c->acc_live -= e->acc_len;
    c->acc_live += len;
    e->acc_off = off;
    e->acc_len = len;
    e->state = ST_ACC;
    return EMBER_OK;
}

/* Writes the int v as a record into b (reset first). */
static void int_record(ember_buf *b, int64_t v)
{
    b->len = 0;
    ember_rec_put_int(b, v);
}

/* Leaves the inline int path: every key gets an entry whose accumulator
 * is its int as a record; the map's values become entry indexes. `fresh`
 * is a slot just added whose value is not a sum yet (or NULL). */
static ember_status go_general(em_combiner *c, const uint64_t *fresh)
{
    c->fast_sum = 0;
    if (c->map.count > c->cap_entries) {
        entry *g = realloc(c->entries, c->map.count * sizeof *g);
        if (!g)
            return EMBER_ENOMEM;
        c->entries = g;
        c->cap_entries = c->map.count;
    }
    c->nentries = 0;
    for (size_t i = 0; i < c->map.cap; i++) {
        em_bytemap_slot *sl = &c->map.slots[i];
        if (!sl->tag)
            continue;
        entry *e = &c->entries[c->nentries];
        *e = (entry){.pending = -1, .state = ST_NEW};
        if (&sl->value != fresh && c->dbl_slots) {
            e->state = ST_DBL; /* sum_in_place: see inline_mode_for */
            memcpy(&e->dval, &sl->value, sizeof e->dval);
        } else if (&sl->value != fresh) {
            int_record(&c->out, (int64_t)sl->value);
            if (set_acc(c, e, c->out.data, c->out.len) != EMBER_OK)
                return EMBER_ENOMEM;
        }
        sl->value = c->nentries++;
    }
    c->dbl_slots = 0;
    return EMBER_OK;
}

static entry *entry_for(em_combiner *c, const em_bmkey *key,
                        uint32_t *index)
{
    int added;
    uint64_t *slot = em_bytemap_upsert_key(&c->map, key, &added);
    if (!slot)
        return NULL;
    if (added) {
        if (c->nentries == c->cap_entries) {
            size_t cap = c->cap_entries ? c->cap_entries * 2 : 1024;
            entry *g = realloc(c->entries, cap * sizeof *g);
            if (!g)
                return NULL;
            c->entries = g;
            c->cap_entries = cap;
        }
        *slot = c->nentries;
        c->entries[c->nentries++] =
            (entry){.pending = -1, .state = ST_NEW};
    }
    *index = (uint32_t)*slot;
    return &c->entries[*slot];
}

/* Adds v to the int sum held in a map slot; 0 when it cannot stay an
 * int (not an int, or overflow): the slot is then unchanged. */
static int fast_add(const em_combiner *c, uint64_t *slot, int added,
                    const val *v, int counting)
{
    if (c->dbl_slots) {
        /* as std.sum: a first double starts from the int 0 */
        if (counting || v->type != EMBER_TYPE_DOUBLE)
            return 0;
        double x, acc = 0.0;
        memcpy(&x, &v->i64, sizeof x);
        if (!added)
            memcpy(&acc, slot, sizeof acc);
        acc += x;
        memcpy(slot, &acc, sizeof acc);
        return 1;
    }
    int64_t x = 1;
    if (!counting) {
        if (v->type != EMBER_TYPE_INT)
            return 0;
        x = v->i64;
    }
    int64_t acc;
    if (added) {
        if (!c->zero_set && !counting) {
            *slot = (uint64_t)x;
            return 1;
        }
        acc = c->zero_int;
    } else {
        acc = (int64_t)*slot;
    }
    int64_t r;
    if (__builtin_add_overflow(acc, x, &r))
        return 0;
    *slot = (uint64_t)r;
    return 1;
}

/* COMBINE map side: createCombiner on the first value of each new key of
 * the batch, in one call. */
static ember_status create_new(em_combiner *c, ember_error *err)
{
    c->cin.len = 0;
    uint64_t n = 0;
    for (size_t t = 0; t < c->ntouched; t++) {
        entry *e = &c->entries[c->touched[t]];
        if (e->state != ST_NEW)
            continue;
        /* the oldest value is at the end of the chain */
        int64_t i = e->pending, prev = -1;
        while (c->vals[i].next >= 0) {
            prev = i;
            i = c->vals[i].next;
        }
        if (ember_batch_append(&c->cin, c->vals[i].p, c->vals[i].len) !=
            EMBER_OK)
            return fail(c, err, EMBER_ENOMEM, "out of memory");
        n++;
        /* unlink it: it becomes the accumulator */
        if (prev >= 0)
            c->vals[prev].next = -1;
        else
            e->pending = -1;
        e->npend--;
    }
    if (n == 0)
        return EMBER_OK;
    ember_batch in = {c->cin.data, c->cin.len, n};
    c->cout.len = 0;
    uint64_t got = 0;
    ember_error e2 = {0};
    ember_status s =
        c->create.vt->map_batch(c->create.state, &in, &c->cout, &got, &e2);
    if (s != EMBER_OK)
        return fail(c, err, s, "%s: %s", c->create.name,
                    e2.msg[0] ? e2.msg : ember_status_name(s));
    if (got != n)
        return fail(c, err, EMBER_EINVAL, "%s: createCombiner returned %"
                    PRIu64 " records for %" PRIu64, c->create.name, got, n);
    ember_batch ob = {c->cout.data, c->cout.len, got};
    ember_batch_cursor oc = ember_batch_cursor_of(&ob);
    for (size_t t = 0; t < c->ntouched; t++) {
        entry *e = &c->entries[c->touched[t]];
        if (e->state != ST_NEW)
            continue;
        const uint8_t *r;
        size_t rl;
        if (ember_batch_next(&oc, &r, &rl) != EMBER_OK)
            return fail(c, err, EMBER_EINVAL, "%s: malformed output",
                        c->create.name);
        if (set_acc(c, e, r, rl) != EMBER_OK)
            return fail(c, err, EMBER_ENOMEM, "out of memory");
    }
    return EMBER_OK;
}

/* Folds each touched key's pending values into its accumulator. */
static ember_status fold_pending(em_combiner *c, ember_error *err)
{
    if (c->kind == EM_COMBINE_COMBINE && c->map_side) {
        ember_status s = create_new(c, err);
        if (s != EMBER_OK)
            return s;
    }
    for (size_t t = 0; t < c->ntouched; t++) {
        entry *e = &c->entries[c->touched[t]];
        if (e->npend == 0) {
            e->pending = -1;
            continue;
        }
        /* the chain runs newest first: lay the values out oldest first */
        c->vbuf.len = 0;
        int64_t stack_idx[64];
        int64_t *order = e->npend <= 64 ? stack_idx
                                        : malloc(e->npend * sizeof *order);
        if (!order)
            return fail(c, err, EMBER_ENOMEM, "out of memory");
        uint32_t k = e->npend;
        for (int64_t i = e->pending; i >= 0; i = c->vals[i].next)
            order[--k] = i;
        ember_status s = EMBER_OK;
        for (uint32_t j = 0; j < e->npend && s == EMBER_OK; j++)
            s = ember_batch_append(&c->vbuf, c->vals[order[j]].p,
                                   c->vals[order[j]].len);
        if (order != stack_idx)
            free(order);
        if (s != EMBER_OK)
            return fail(c, err, EMBER_ENOMEM, "out of memory");
        const uint8_t *acc = NULL;
        size_t acc_len = 0;
        if (e->state == ST_INT) {
            int_record(&c->cin, e->ival);
            acc = c->cin.data;
            acc_len = c->cin.len;
        } else if (e->state == ST_DBL) {
            c->cin.len = 0;
            ember_rec_put_double(&c->cin, e->dval);
            acc = c->cin.data;
            acc_len = c->cin.len;
        } else if (e->state == ST_ACC) {
            acc = c->acc.data + e->acc_off;
            acc_len = e->acc_len;
        } else if (c->map_side && c->zero_set) {
            acc = c->zero;
            acc_len = c->zero_len;
        }
        ember_batch vb = {c->vbuf.data, c->vbuf.len, e->npend};
        c->out.len = 0;
        ember_error e2 = {0};
        s = c->merge.vt->reduce(c->merge.state, acc, acc_len, &vb, &c->out,
                                &e2);
        if (s != EMBER_OK)
            /* the prefix already names the function, as do std's own
             * messages */
            return fail(c, err, s, "%s", e2.msg[0] ? e2.msg
                                                   : ember_status_name(s));
        if (ember_rec_validate(c->out.data, c->out.len, NULL) != EMBER_OK)
            return fail(c, err, EMBER_EINVAL, "%s returned a malformed "
                        "record", c->merge.name);
        if (e->state == ST_INT || e->state == ST_DBL)
            e->state = ST_NEW;
        if (set_acc(c, e, c->out.data, c->out.len) != EMBER_OK)
            return fail(c, err, EMBER_ENOMEM, "out of memory");
        e->pending = -1;
        e->npend = 0;
    }
    c->ntouched = 0;
    return EMBER_OK;
}

/* How far ahead of its lookup a key's slot is prefetched. */
#define PREFETCH_AHEAD 16

/* Room for n records' vals and touched entries. */
static ember_status ensure_vals(em_combiner *c, size_t n, ember_error *err)
{
    if (n <= c->cap_vals)
        return EMBER_OK;
    size_t cap = n + n / 2 + 64;
    val *g = realloc(c->vals, cap * sizeof *g);
    if (g)
        c->vals = g;
    uint32_t *t = realloc(c->touched, cap * sizeof *t);
    if (t)
        c->touched = t;
    if (!g || !t)
        return fail(c, err, EMBER_ENOMEM, "out of memory");
    c->cap_vals = c->cap_touched = cap;
    return EMBER_OK;
}

/*
 * std.sum of x into e, in place, when e has no value of this batch
 * waiting (so record order holds) and holds no accumulator or a number:
 * exactly what std.sum computes (int64 until a double comes, then double;
 * a first double starts from the int 0, as std.sum's total does). 0: the
 * value must go through std.sum (not a number, or an int overflow, which
 * std.sum reports).
 */
static int sum_in_place(entry *e, const val *x)
{
    if (e->npend != 0 ||
        (x->type != EMBER_TYPE_INT && x->type != EMBER_TYPE_DOUBLE))
        return 0;
    double xd = 0;
    if (x->type == EMBER_TYPE_DOUBLE)
        memcpy(&xd, &x->i64, sizeof xd);
    switch (e->state) {
    case ST_NEW:
        if (x->type == EMBER_TYPE_INT) {
            e->state = ST_INT;
            e->ival = x->i64;
        } else {
            e->state = ST_DBL;
            e->dval = 0.0 + xd;
        }
        return 1;
    case ST_INT:
        if (x->type == EMBER_TYPE_INT) {
            int64_t r;
            if (__builtin_add_overflow(e->ival, x->i64, &r))
                return 0;
            e->ival = r;
        } else {
            e->state = ST_DBL;
            e->dval = (double)e->ival + xd;
        }
        return 1;
    case ST_DBL:
        e->dval += x->type == EMBER_TYPE_INT ? (double)x->i64 : xd;
        return 1;
    default:
        return 0;
    }
}

/* Whether the inline sums may switch kind for value v: only while the
 * table holds nothing but the slot just added (so no sum of the other
 * kind exists), and for doubles only where entries could hold them too
 * (sum_in_place, no zero). Switches and says 1, or says 0. */
static int inline_mode_for(em_combiner *c, int added, const val *v,
                           int counting)
{
    if (counting || !added || c->map.count != 1)
        return 0;
    if (v->type == EMBER_TYPE_DOUBLE && !c->dbl_slots && c->sum_in_place &&
        !c->zero_set) {
        c->dbl_slots = 1;
        return 1;
    }
    if (v->type == EMBER_TYPE_INT && c->dbl_slots) {
        c->dbl_slots = 0;
        return 1;
    }
    return 0;
}

/* Pass 2 over vals[0..n): looks the keys up (their slots prefetched
 * ahead), adds inline sums, chains the rest per key and folds them. */
static ember_status lookup_all(em_combiner *c, uint64_t n, ember_error *err)
{
    c->ntouched = 0;
    int counting = c->kind == EM_COMBINE_COUNT && c->map_side;
    for (uint64_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
        em_bytemap_prefetch(&c->map, &c->vals[i].key);
    for (uint64_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            em_bytemap_prefetch(&c->map, &c->vals[i + PREFETCH_AHEAD].key);
        val *x = &c->vals[i];
        if (c->fast_sum) {
            int added;
            uint64_t *slot = em_bytemap_upsert_key(&c->map, &x->key, &added);
            if (!slot)
                return fail(c, err, EMBER_ENOMEM, "out of memory");
            if (fast_add(c, slot, added, x, counting))
                continue;
            if (inline_mode_for(c, added, x, counting) &&
                fast_add(c, slot, added, x, counting))
                continue;
            if (c->kind == EM_COMBINE_COUNT)
                return fail(c, err, EMBER_EINVAL, "count of a key overflows "
                            "int64 or is not an int (record %" PRIu64 ")", i);
            /* a double, or an overflow: std.sum itself takes over */
            if (go_general(c, added ? slot : NULL) != EMBER_OK)
                return fail(c, err, EMBER_ENOMEM, "out of memory");
        }
        if (c->kind == EM_COMBINE_DISTINCT) {
            /* present in the map is all a record needs */
            int added;
            if (!em_bytemap_upsert_key(&c->map, &x->key, &added))
                return fail(c, err, EMBER_ENOMEM, "out of memory");
            continue;
        }
        uint32_t idx;
        entry *e = entry_for(c, &x->key, &idx);
        if (!e)
            return fail(c, err, EMBER_ENOMEM, "out of memory");
        if (c->sum_in_place && sum_in_place(e, x))
            continue;
        x->next = e->pending;
        e->pending = (int64_t)i;
        if (e->npend++ == 0)
            c->touched[c->ntouched++] = idx;
    }
    return fold_pending(c, err);
}

/* Sets x's value from v (an element). */
static void set_value(val *x, const ember_value *v)
{
    x->type = v->type;
    x->i64 = v->type == EMBER_TYPE_INT ? v->u.i64 : 0;
    if (v->type == EMBER_TYPE_DOUBLE) /* its bits, for sum_in_place */
        memcpy(&x->i64, &v->u.f64, sizeof x->i64);
    if (v->type == EMBER_TYPE_TUPLE) {
        x->p = v->u.tuple.raw;
        x->len = v->u.tuple.raw_len;
    } else {
        x->p = v->enc;
        x->len = v->enc_len;
    }
}

/* Batches smaller than this grow the table as they go. */
#define EXPECT_MIN ((uint64_t)1 << 16)

void em_combiner_expect(em_combiner *c, uint64_t records)
{
    if (records >= EXPECT_MIN && records > c->map.count &&
        records <= SIZE_MAX / 2)
        (void)em_bytemap_reserve(&c->map, (size_t)records);
}

ember_status em_combiner_add(em_combiner *c, const ember_batch *in,
                             ember_error *err)
{
    ember_status s = ensure_vals(c, in->count, err);
    if (s != EMBER_OK)
        return s;
    /* pass 1: split every record and prepare its key */
    ember_batch_cursor cur = ember_batch_cursor_of(in);
    const uint8_t *r;
    size_t rl;
    uint64_t n = 0;
    while ((s = ember_batch_next(&cur, &r, &rl)) == EMBER_OK) {
        if (n >= c->cap_vals)
            return fail(c, err, EMBER_EINVAL, "batch holds more records "
                        "than it says");
        val *x = &c->vals[n];
        if (c->kind == EM_COMBINE_DISTINCT) {
            em_bytemap_prep(&x->key, r, rl);
        } else {
            ember_value k, v;
            if (em_rec_pair(r, rl, &k, &v) != EMBER_OK)
                return fail(c, err, EMBER_EINVAL, "expected a (key, value) "
                            "pair (record %" PRIu64 " of its batch)", n);
            em_bytemap_prep(&x->key, k.enc, k.enc_len);
            set_value(x, &v);
        }
        n++;
    }
    if (s != EMBER_END)
        return fail(c, err, EMBER_EINVAL, "malformed batch framing");
    return lookup_all(c, n, err);
}

/* An error of a fused step, in its own dataset's words. */
static ember_status fused_fail(const em_combiner *c, const em_node *n,
                               ember_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ember_status fused_fail(const em_combiner *c, const em_node *n,
                               ember_error *err, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64 " (%s %s) "
                        "partition %" PRIu32 ": %s", n->id, n->op->name,
                        n->fns[0].name, c->partition, msg);
}

/* The first element of record r (index `index` of its batch) for a fused
 * step: any element for pair_with, a string for split_words; their own
 * errors otherwise. */
static ember_status fused_first(const em_combiner *c, const uint8_t *r,
                                size_t rl, uint64_t index,
                                const em_node *pair, const em_node *split,
                                ember_value *f, ember_error *err)
{
    ember_rec_cursor rc = ember_rec_cursor_init(r, rl);
    ember_status fs = ember_rec_next(&rc, f);
    if (!split && fs != EMBER_OK)
        return fused_fail(c, pair, err, "std.pair_with: record %" PRIu64
                          " is %s", index,
                          fs == EMBER_END ? "empty" : "malformed");
    if (split && (fs != EMBER_OK || f->type != EMBER_TYPE_STRING))
        return fused_fail(c, split, err, "std.split_words: %s (record %"
                          PRIu64 ")",
                          fs == EMBER_END ? "expected a string, got an "
                                            "empty record"
                          : fs != EMBER_OK ? "malformed record"
                                           : "expected a string",
                          index);
    return EMBER_OK;
}

/* Prepares in k the encoded string key of the next word of [*p, end)
 * (std.split_words' rule); 0 when there is none left. [*p, end) is a
 * string record's escaped bytes: the byte before it and *end are the
 * record's. Keys that fit a slot are built without being written out;
 * longer ones are written to c->keys (room reserved by the caller). */
static inline __attribute__((always_inline)) int
next_word_key(em_combiner *c, const uint8_t **p, const uint8_t *end,
              em_bmkey *key)
{
    const uint8_t *q = *p;
    while (q < end && space_of[*q])
        q++;
    const uint8_t *w = q;
    while (q < end && !space_of[*q])
        q++;
    *p = q;
    if (q == w)
        return 0;
    size_t wl = (size_t)(q - w);
    if (wl + 2 <= EM_BYTEMAP_INLINE) {
        em_bytemap_prep_word(key, (uint8_t)EMBER_REC_TAG_STRING, w, wl);
        return 1;
    }
    uint8_t *k = c->keys.data + c->keys.len;
    k[0] = EMBER_REC_TAG_STRING;
    memcpy(k + 1, w, wl);
    k[wl + 1] = 0x00;
    c->keys.len += wl + 2;
    em_bytemap_prep(key, k, wl + 2);
    return 1;
}

/* Keys prepared ahead of their lookups on the fused fast path. */
#define RING 32

/*
 * The fused path when every value is the int V and the sums are inline
 * (reduce_by_key(std.sum), count_by_key): each key goes through a small
 * ring of prepared keys — its slot prefetched when it enters, looked up
 * when it leaves — so that nothing per record is stored for the batch.
 */
static ember_status fused_inline(em_combiner *c, const ember_batch *in,
                                 const ember_value *vv, const em_node *pair,
                                 const em_node *split, ember_error *err)
{
    em_bmkey ring[RING];
    unsigned head = 0, used = 0;
    int counting = c->kind == EM_COMBINE_COUNT && c->map_side;
    val x;
    memset(&x, 0, sizeof x);
    x.type = EMBER_TYPE_INT;
    x.i64 = vv->u.i64;
    ember_batch_cursor cur = ember_batch_cursor_of(in);
    const uint8_t *r;
    size_t rl;
    uint64_t index = 0;
    ember_status s;
#define FLUSH_ONE()                                                          \
    do {                                                                     \
        int added_;                                                          \
        uint64_t *slot_ = em_bytemap_upsert_key(&c->map, &ring[head],        \
                                                &added_);                    \
        if (!slot_)                                                          \
            return fail(c, err, EMBER_ENOMEM, "out of memory");              \
        if (!fast_add(c, slot_, added_, &x, counting))                       \
            return fail(c, err, EMBER_EINVAL, "std.sum: the sum of a key "   \
                        "overflows int64");                                  \
        head = (head + 1) % RING;                                            \
        used--;                                                              \
    } while (0)
/* room for one more key in the ring (flushing the oldest) / the key
 * written to the free entry joins the ring, its slot prefetched */
#define RING_MAKE_ROOM()                                                     \
    do {                                                                     \
        if (used == RING)                                                    \
            FLUSH_ONE();                                                     \
    } while (0)
#define RING_PUSHED()                                                        \
    do {                                                                     \
        em_bytemap_prefetch(&c->map, &ring[(head + used) % RING]);           \
        used++;                                                              \
    } while (0)
    while ((s = ember_batch_next(&cur, &r, &rl)) == EMBER_OK) {
        ember_value f;
        ember_status fs = fused_first(c, r, rl, index++, pair, split, &f, err);
        if (fs != EMBER_OK)
            return fs;
        if (!split) {
            RING_MAKE_ROOM();
            em_bytemap_prep(&ring[(head + used) % RING], f.enc, f.enc_len);
            RING_PUSHED();
            continue;
        }
        const uint8_t *p = f.u.str.raw, *end = p + f.u.str.raw_len;
        for (;;) {
            RING_MAKE_ROOM();
            if (!next_word_key(c, &p, end, &ring[(head + used) % RING]))
                break;
            RING_PUSHED();
        }
    }
    if (s != EMBER_END)
        return fail(c, err, EMBER_EINVAL, "malformed batch framing");
    while (used > 0)
        FLUSH_ONE();
#undef RING_MAKE_ROOM
#undef RING_PUSHED
#undef FLUSH_ONE
    return EMBER_OK;
}

ember_status em_combiner_add_fused(em_combiner *c, const ember_batch *in,
                                   const uint8_t *value, size_t value_len,
                                   const em_node *pair, const em_node *split,
                                   ember_error *err)
{
    ember_value vv;
    ember_rec_cursor vc = ember_rec_cursor_init(value, value_len);
    if (ember_rec_next(&vc, &vv) != EMBER_OK)
        return fail(c, err, EMBER_EINVAL, "a malformed pair value");
    /* the words' key encodings: string tag, the raw (still escaped)
     * bytes, terminator — at most 3 bytes per byte of input */
    c->keys.len = 0;
    ember_status s = ember_buf_reserve(&c->keys, 3 * in->len + 16);
    if (s != EMBER_OK)
        return fail(c, err, EMBER_ENOMEM, "out of memory");
    if (c->fast_sum && vv.type == EMBER_TYPE_INT &&
        (!c->dbl_slots || c->map.count == 0)) {
        c->dbl_slots = 0;
        return fused_inline(c, in, &vv, pair, split, err);
    }
    s = ensure_vals(c, split ? in->count * 4 + 64 : in->count, err);
    if (s != EMBER_OK)
        return fail(c, err, EMBER_ENOMEM, "out of memory");
    ember_batch_cursor cur = ember_batch_cursor_of(in);
    const uint8_t *r;
    size_t rl;
    uint64_t n = 0, index = 0;
    while ((s = ember_batch_next(&cur, &r, &rl)) == EMBER_OK) {
        ember_value f;
        ember_status fs = fused_first(c, r, rl, index++, pair, split, &f, err);
        if (fs != EMBER_OK)
            return fs;
        const uint8_t *p = split ? f.u.str.raw : NULL;
        const uint8_t *end = split ? p + f.u.str.raw_len : NULL;
        /* one key: the element (pair_with), else each word */
        for (;;) {
            if (n >= c->cap_vals &&
                (s = ensure_vals(c, n + 1, err)) != EMBER_OK)
                return s;
            if (!split)
                em_bytemap_prep(&c->vals[n].key, f.enc, f.enc_len);
            else if (!next_word_key(c, &p, end, &c->vals[n].key))
                break;
            set_value(&c->vals[n], &vv);
            n++;
            if (!split)
                break;
        }
    }
    if (s != EMBER_END)
        return fail(c, err, EMBER_EINVAL, "malformed batch framing");
    return lookup_all(c, n, err);
}

ember_status em_combiner_emit_some(em_combiner *c, ember_buf *out,
                                   uint64_t *count, size_t limit, int *done,
                                   ember_error *err)
{
    if (c->map.count > c->peak_keys)
        c->peak_keys = c->map.count;
    *done = 0;
    for (size_t i = c->emit_pos; i < c->map.cap; i++) {
        if (out->len >= limit) {
            c->emit_pos = i;
            return EMBER_OK;
        }
        const em_bytemap_slot *sl = &c->map.slots[i];
        if (!sl->tag)
            continue;
        uint8_t kbuf[EM_BYTEMAP_INLINE];
        const uint8_t *key = em_bytemap_key(&c->map, sl, kbuf);
        const entry *e = c->fast_sum || c->kind == EM_COMBINE_DISTINCT
                             ? NULL
                             : &c->entries[sl->value];
        size_t mark;
        ember_status s = ember_batch_frame_begin(out, &mark);
        if (s == EMBER_OK)
            s = ember_buf_append(out, key, sl->len);
        if (s == EMBER_OK && c->kind != EM_COMBINE_DISTINCT) {
            if (!e && c->dbl_slots) {
                double d;
                memcpy(&d, &sl->value, sizeof d);
                s = ember_rec_put_double(out, d);
            } else if (!e) {
                s = ember_rec_put_int(out, (int64_t)sl->value);
            }
            else if (e->state == ST_INT)
                s = ember_rec_put_int(out, e->ival);
            else if (e->state == ST_DBL)
                s = ember_rec_put_double(out, e->dval);
            else
                s = em_rec_put_as_value(out, c->acc.data + e->acc_off,
                                        e->acc_len);
        }
        if (s == EMBER_OK)
            s = ember_batch_frame_end(out, mark);
        if (s != EMBER_OK)
            return fail(c, err, s, "out of memory");
        (*count)++;
    }
    /* empty the table, keeping its memory */
    em_bytemap_clear(&c->map);
    c->nentries = 0;
    c->acc.len = 0;
    c->acc_live = 0;
    c->emit_pos = 0;
    *done = 1;
    return EMBER_OK;
}

ember_status em_combiner_emit(em_combiner *c, ember_buf *out,
                              uint64_t *count, ember_error *err)
{
    int done;
    return em_combiner_emit_some(c, out, count, SIZE_MAX, &done, err);
}
