/*
 * lineage.c — the lineage graph: freeing, lookup by id, partitioner
 * comparison and Spark's toDebugString. Decoding and encoding live in
 * plan_codec.c.
 */
#include "dag/lineage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ember/buf.h"

#define DEBUG_MAX_LINES 1000000u
#define DEBUG_MAX_BYTES (64u * 1024u * 1024u)

static void fn_ref_free(em_fn_ref *f)
{
    free(f->name);
    free(f->arg);
}

void em_lineage_free(em_lineage *l)
{
    uint32_t i, j;
    if (l == NULL)
        return;
    for (i = 0; l->nodes != NULL && i < l->count; i++) {
        em_node *n = &l->nodes[i];
        free(n->deps);
        for (j = 0; n->fns != NULL && j < n->nfns; j++)
            fn_ref_free(&n->fns[j]);
        free(n->fns);
        free(n->args_json);
        free(n->storage);
        free(n->name);
        /* an inherited partitioner is borrowed from the ancestor */
        if (n->op != NULL && n->op->needs_partitioner) {
            fn_ref_free(&n->partitioner.fn);
            free(n->partitioner.bounds);
        }
    }
    free(l->nodes);
    free(l->by_id);
    em_accum_decls_free(l->accums, l->naccums);
    free(l);
}

int64_t em_lineage_find(const em_lineage *l, uint64_t id)
{
    uint32_t i;
    if (l == NULL)
        return -1;
    if (l->by_id != NULL) {
        size_t lo = 0, hi = l->count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (l->by_id[mid].id == id)
                return l->by_id[mid].index;
            if (l->by_id[mid].id < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        return -1;
    }
    for (i = 0; i < l->count; i++)
        if (l->nodes[i].id == id)
            return i;
    return -1;
}

const em_partitioner *em_node_output_partitioner(const em_node *n)
{
    if (n == NULL || n->op == NULL || n->op->out_part == EM_OUT_NONE ||
        n->partitioner.kind == EM_PART_NONE)
        return NULL;
    return &n->partitioner;
}

static int bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return 0;
    return alen == 0 || a == b || memcmp(a, b, alen) == 0;
}

int em_partitioner_equal(const em_partitioner *a, const em_partitioner *b)
{
    int a_none = a == NULL || a->kind == EM_PART_NONE;
    int b_none = b == NULL || b->kind == EM_PART_NONE;
    if (a_none || b_none)
        return a_none && b_none;
    if (a == b)
        return 1;
    if (a->kind != b->kind || a->partitions != b->partitions)
        return 0;
    switch (a->kind) {
    case EM_PART_HASH:
        return 1;
    case EM_PART_RANGE:
        return (a->descending != 0) == (b->descending != 0) &&
               bytes_equal(a->bounds, a->bounds_len, b->bounds, b->bounds_len);
    case EM_PART_FUNCTION:
        if (a->fn.name == NULL || b->fn.name == NULL)
            return a->fn.name == b->fn.name;
        return strcmp(a->fn.name, b->fn.name) == 0 &&
               bytes_equal(a->fn.arg, a->fn.arg_len, b->fn.arg, b->fn.arg_len);
    default:
        return 0;
    }
}

const char *em_dep_kind_name(em_dep_kind k)
{
    switch (k) {
    case EM_DEP_NARROW: return "narrow";
    case EM_DEP_SHUFFLE: return "shuffle";
    default: return "?";
    }
}

const char *em_determinism_name(em_determinism d)
{
    switch (d) {
    case EM_DET_DETERMINATE: return "deterministic";
    case EM_DET_UNORDERED: return "unordered";
    case EM_DET_INDETERMINATE: return "indeterminate";
    default: return "?";
    }
}

const char *em_part_kind_name(em_part_kind k)
{
    switch (k) {
    case EM_PART_NONE: return "none";
    case EM_PART_HASH: return "hash";
    case EM_PART_RANGE: return "range";
    case EM_PART_FUNCTION: return "function";
    default: return "?";
    }
}

/*
 * toDebugString. Spark builds it recursively; here an explicit stack of
 * frames, each naming a node to print and the prefix it is printed under.
 * Prefixes live in one arena, referred to by offset (the arena moves as it
 * grows); a narrow parent shares its child's prefix, so the arena only
 * grows at shuffles.
 */
typedef struct dbg_frame {
    uint32_t node;
    size_t pre_off, pre_len;
    uint8_t shuffle; /* reached through a shuffle dependency */
    uint8_t last;    /* the last parent of its child */
    uint8_t count;   /* print "(N) " (a parent of a multi-parent node) */
} dbg_frame;

typedef struct dbg {
    const em_lineage *l;
    ember_buf out, arena;
    dbg_frame *stack;
    size_t depth, cap;
    size_t lines;
    int full;
} dbg;

static ember_status put(ember_buf *b, const char *s, size_t n)
{
    return ember_buf_append(b, s, n);
}

static ember_status put_str(ember_buf *b, const char *s)
{
    return ember_buf_append(b, s, strlen(s));
}

/* What a checkpoint_read node reads: " checkpoint DIR" (its args.dir) or
 * " [local checkpoint]" (args.local). */
static ember_status put_checkpoint_read(ember_buf *b, const em_node *n)
{
    json_t *a = n->args_json ? json_loads(n->args_json, 0, NULL) : NULL;
    const char *dir = json_string_value(json_object_get(a, "dir"));
    ember_status s;
    if (json_is_true(json_object_get(a, "local")))
        s = put_str(b, " [local checkpoint]");
    else if (dir != NULL && (s = put_str(b, " checkpoint ")) == EMBER_OK)
        s = put_str(b, dir);
    else
        s = put_str(b, " checkpoint");
    json_decref(a);
    return s;
}

/* "op [id] name [STORAGE] checkpoint"; a checkpoint_read says what it
 * reads instead of "checkpoint". */
static ember_status put_desc(ember_buf *b, const em_node *n)
{
    char num[32];
    ember_status s;
    int k;
    s = put_str(b, n->op ? n->op->name : "?");
    if (s != EMBER_OK)
        return s;
    k = snprintf(num, sizeof num, " [%" PRIu64 "]", n->id);
    s = put(b, num, (size_t)k);
    if (s == EMBER_OK && n->name != NULL) {
        size_t at = b->len, i, len = strlen(n->name);
        s = put_str(b, " ");
        if (s == EMBER_OK)
            s = put(b, n->name, len);
        /* a label must not break the layout */
        for (i = at; s == EMBER_OK && i < b->len; i++)
            if (b->data[i] < 0x20 || b->data[i] == 0x7F)
                b->data[i] = ' ';
    }
    if (s == EMBER_OK)
        s = put_str(b, " [");
    if (s == EMBER_OK && n->storage != NULL && strcmp(n->storage, "NONE") != 0)
        s = put_str(b, n->storage);
    if (s == EMBER_OK)
        s = put_str(b, "]");
    if (s == EMBER_OK && n->op != NULL &&
        strcmp(n->op->name, "checkpoint_read") == 0)
        s = put_checkpoint_read(b, n);
    else if (s == EMBER_OK && n->checkpoint)
        s = put_str(b, " checkpoint");
    return s;
}

/* Starts a new line; sets d->full (and writes "...") past the caps. */
static ember_status begin_line(dbg *d, size_t prefix_len)
{
    ember_status s;
    if (d->lines >= DEBUG_MAX_LINES ||
        d->out.len + prefix_len > DEBUG_MAX_BYTES) {
        d->full = 1;
        return put_str(&d->out, "\n...");
    }
    if (d->lines > 0) {
        s = put_str(&d->out, "\n");
        if (s != EMBER_OK)
            return s;
    }
    d->lines++;
    return EMBER_OK;
}

/*
 * Appends to the arena the prefix Spark gives the parents of a node printed
 * as "(N)" after `base`: base, then `lead` ("  " / "| " / ""), then spaces
 * and a bar under the middle of "(N)", then spaces. Returns the new
 * prefix's offset and length.
 */
static ember_status next_prefix(dbg *d, size_t base_off, size_t base_len,
                                const char *lead, size_t count_len,
                                size_t *off, size_t *len)
{
    size_t left = (count_len - 1) / 2, lead_len = strlen(lead);
    size_t need = base_len + lead_len + left + 1 + (count_len - left);
    ember_status s = ember_buf_reserve(&d->arena, need);
    uint8_t *p;
    if (s != EMBER_OK)
        return s;
    /* reserved first: the base is read from the arena being appended to */
    p = d->arena.data + d->arena.len;
    memmove(p, d->arena.data + base_off, base_len);
    p += base_len;
    memcpy(p, lead, lead_len);
    p += lead_len;
    memset(p, ' ', left);
    p += left;
    *p++ = '|';
    memset(p, ' ', count_len - left);
    *off = d->arena.len;
    *len = need;
    d->arena.len += need;
    return EMBER_OK;
}

/* Pushes frames for the parents of node, under prefix (off, len). */
static ember_status push_parents(dbg *d, uint32_t node, size_t off, size_t len)
{
    const em_node *n = &d->l->nodes[node];
    uint32_t j;
    if (n->ndeps > d->cap - d->depth) {
        size_t cap = d->cap ? d->cap : 64;
        dbg_frame *p;
        while (cap - d->depth < n->ndeps)
            cap *= 2;
        p = (dbg_frame *)realloc(d->stack, cap * sizeof *p);
        if (p == NULL)
            return EMBER_ENOMEM;
        d->stack = p;
        d->cap = cap;
    }
    /* reversed, so the first parent is popped (printed) first */
    for (j = n->ndeps; j-- > 0;) {
        dbg_frame *f = &d->stack[d->depth++];
        f->node = n->deps[j].parent;
        f->pre_off = off;
        f->pre_len = len;
        f->shuffle = n->deps[j].kind == EM_DEP_SHUFFLE;
        f->last = j == n->ndeps - 1;
        f->count = n->ndeps > 1;
    }
    return EMBER_OK;
}

/* Prints one frame and pushes its parents. */
static ember_status print_frame(dbg *d, const dbg_frame *f)
{
    const em_node *n = &d->l->nodes[f->node];
    char count[16];
    size_t clen = (size_t)snprintf(count, sizeof count, "(%" PRIu32 ")",
                                   n->partitions);
    size_t off = f->pre_off, len = f->pre_len, noff, nlen;
    ember_status s;
    if (!f->shuffle) {
        s = begin_line(d, len);
        if (s != EMBER_OK || d->full)
            return s;
        s = put(&d->out, (const char *)d->arena.data + off, len);
        if (s == EMBER_OK && f->count) {
            s = put(&d->out, count, clen);
            if (s == EMBER_OK)
                s = put_str(&d->out, " ");
        }
        if (s == EMBER_OK)
            s = put_desc(&d->out, n);
        if (s == EMBER_OK)
            s = push_parents(d, f->node, off, len);
        return s;
    }
    /* Spark strips a trailing "|" and the blanks after it, then "+-(N) " */
    {
        const uint8_t *p = d->arena.data + off;
        size_t k = len;
        while (k > 0 && p[k - 1] == ' ')
            k--;
        if (k < len && k > 0 && p[k - 1] == '|')
            len = k - 1;
    }
    s = begin_line(d, len);
    if (s != EMBER_OK || d->full)
        return s;
    s = put(&d->out, (const char *)d->arena.data + off, len);
    if (s == EMBER_OK)
        s = put_str(&d->out, "+-");
    if (s == EMBER_OK)
        s = put(&d->out, count, clen);
    if (s == EMBER_OK)
        s = put_str(&d->out, " ");
    if (s == EMBER_OK)
        s = put_desc(&d->out, n);
    if (s == EMBER_OK && n->ndeps > 0)
        s = next_prefix(d, off, len, f->last ? "  " : "| ", clen, &noff,
                        &nlen);
    if (s == EMBER_OK && n->ndeps > 0)
        s = push_parents(d, f->node, noff, nlen);
    return s;
}

ember_status em_lineage_debug_string(const em_lineage *l, uint32_t index,
                                     char **out, ember_error *err)
{
    dbg d;
    ember_status s;
    char count[16];
    size_t clen, off = 0, len = 0;
    *out = NULL;
    if (l == NULL || index >= l->count)
        return ember_errorf(err, EMBER_EINVAL,
                            "lineage: no dataset at index %" PRIu32, index);
    memset(&d, 0, sizeof d);
    d.l = l;
    d.out = ember_buf_heap();
    d.arena = ember_buf_heap();

    clen = (size_t)snprintf(count, sizeof count, "(%" PRIu32 ")",
                            l->nodes[index].partitions);
    d.lines = 1;
    s = put(&d.out, count, clen);
    if (s == EMBER_OK)
        s = put_str(&d.out, " ");
    if (s == EMBER_OK)
        s = put_desc(&d.out, &l->nodes[index]);
    if (s == EMBER_OK)
        s = next_prefix(&d, 0, 0, "", clen, &off, &len);
    if (s == EMBER_OK)
        s = push_parents(&d, index, off, len);
    while (s == EMBER_OK && d.depth > 0 && !d.full) {
        dbg_frame f = d.stack[--d.depth];
        s = print_frame(&d, &f);
    }
    if (s == EMBER_OK)
        s = ember_buf_put_u8(&d.out, '\0');
    if (s != EMBER_OK) {
        ember_errorf(err, s, "lineage: out of memory printing dataset %" PRIu64,
                     l->nodes[index].id);
        goto done;
    }
    *out = (char *)d.out.data;
    d.out = ember_buf_heap(); /* handed over */

done:
    ember_buf_release(&d.out);
    ember_buf_release(&d.arena);
    free(d.stack);
    return s;
}

static const char *const storage_levels[] = {
    "NONE",          "DISK_ONLY",         "DISK_ONLY_2",
    "DISK_ONLY_3",   "MEMORY_ONLY",       "MEMORY_ONLY_2",
    "MEMORY_ONLY_SER", "MEMORY_ONLY_SER_2", "MEMORY_AND_DISK",
    "MEMORY_AND_DISK_2", "MEMORY_AND_DISK_SER", "MEMORY_AND_DISK_SER_2",
    "OFF_HEAP",
};

const char *em_storage_level_known(const char *name)
{
    for (size_t i = 0;
         name && i < sizeof storage_levels / sizeof storage_levels[0]; i++)
        if (strcmp(name, storage_levels[i]) == 0)
            return storage_levels[i];
    return NULL;
}

const char *em_storage_level_list(void)
{
    return "NONE, DISK_ONLY, DISK_ONLY_2, DISK_ONLY_3, MEMORY_ONLY, "
           "MEMORY_ONLY_2, MEMORY_ONLY_SER, MEMORY_ONLY_SER_2, "
           "MEMORY_AND_DISK, MEMORY_AND_DISK_2, MEMORY_AND_DISK_SER, "
           "MEMORY_AND_DISK_SER_2, OFF_HEAP";
}
