/* An application's accumulators in the kernel (see accum/accum.h). */
#include "accum/accum.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/batch.h"
#include "ember/function.h"
#include "ember/kernel/host.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "runtime/accum_wire.h"

typedef struct entry {
    uint64_t id;
    em_accum_kind kind;
    char *kind_text; /* as declared */
    char *name;      /* NULL: unnamed */
    const ember_function_vtable *vt; /* user kinds */
    int64_t i64;
    double f64;
    ember_buf v; /* user kinds: the value (len 0: none yet) */
} entry;

struct em_accums {
    const em_registry *registry;
    entry *e; /* sorted by id */
    uint32_t n, cap;
};

ember_status em_accums_create(em_accums **out, const em_registry *registry,
                              ember_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    (*out)->registry = registry;
    return EMBER_OK;
}

void em_accums_destroy(em_accums *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->n; i++) {
        free(a->e[i].kind_text);
        free(a->e[i].name);
        ember_buf_release(&a->e[i].v);
    }
    free(a->e);
    free(a);
}

uint32_t em_accums_count(const em_accums *a)
{
    return a ? a->n : 0;
}

/* The index of id, or where it would go (*found says which). */
static uint32_t locate(const em_accums *a, uint64_t id, int *found)
{
    uint32_t lo = 0, hi = a->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a->e[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < a->n && a->e[lo].id == id;
    return lo;
}

ember_status em_accums_declare(em_accums *a, const em_accum_decl *d,
                               uint32_t n, ember_error *err)
{
    /* check everything first: all or nothing */
    uint32_t fresh = 0;
    for (uint32_t i = 0; i < n; i++) {
        int found;
        uint32_t at = locate(a, d[i].id, &found);
        if (found) {
            if (strcmp(a->e[at].kind_text, d[i].kind) != 0)
                return ember_errorf(err, EMBER_EINVAL,
                                    "accumulator %" PRIu64 " is %s in an "
                                    "earlier job of this application, %s "
                                    "here", d[i].id,
                                    a->e[at].kind_text,
                                    d[i].kind);
            continue;
        }
        fresh++;
        if (em_accum_kind_of(d[i].kind) != EM_ACCUM_USER)
            continue;
        const em_component *c =
            a->registry ? em_registry_find(a->registry, EMBER_KIND_FUNCTION,
                                           d[i].kind)
                        : NULL;
        const ember_function_vtable *vt = c ? c->vtable : NULL;
        if (!vt)
            return ember_errorf(err, EMBER_EINVAL,
                                "accumulator %" PRIu64 ": its merge function "
                                "%s is not loaded", d[i].id, d[i].kind);
        if (vt->shape != EMBER_FN_REDUCE || !vt->reduce)
            return ember_errorf(err, EMBER_EINVAL,
                                "accumulator %" PRIu64 ": %s is not a REDUCE "
                                "function (a merge takes two values)",
                                d[i].id, d[i].kind);
    }
    if (a->n + fresh > a->cap) {
        uint32_t cap = a->cap ? a->cap : 8;
        while (cap < a->n + fresh)
            cap *= 2;
        entry *g = realloc(a->e, cap * sizeof *g);
        if (!g)
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        a->e = g;
        a->cap = cap;
    }
    /* every copy before the first change, so that running out of memory
     * changes nothing either: strs[2i] the name, strs[2i+1] the kind */
    char **strs = calloc(n ? 2 * (size_t)n : 1, sizeof *strs);
    int nomem = !strs;
    for (uint32_t i = 0; !nomem && i < n; i++) {
        int found;
        locate(a, d[i].id, &found);
        nomem = (d[i].name && !(strs[2 * i] = strdup(d[i].name))) ||
                (!found && !(strs[2 * i + 1] = strdup(d[i].kind)));
    }
    if (nomem) {
        for (size_t i = 0; strs && i < 2 * (size_t)n; i++)
            free(strs[i]);
        free(strs);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        int found;
        uint32_t at = locate(a, d[i].id, &found);
        char *name = strs[2 * i], *kt = strs[2 * i + 1];
        if (found) {
            free(kt); /* an id twice in d: the first declaration holds */
            if (name) {
                free(a->e[at].name);
                a->e[at].name = name;
            }
            continue;
        }
        memmove(&a->e[at + 1], &a->e[at], (a->n - at) * sizeof *a->e);
        a->n++;
        entry *e = &a->e[at];
        memset(e, 0, sizeof *e);
        e->id = d[i].id;
        e->kind = em_accum_kind_of(kt);
        e->kind_text = kt;
        e->name = name;
        e->v = ember_buf_heap();
        if (e->kind == EM_ACCUM_USER)
            e->vt = em_registry_find(a->registry, EMBER_KIND_FUNCTION, kt)
                        ->vtable;
    }
    free(strs);
    return EMBER_OK;
}

/* value = fn(value, update) with e's merge function. */
static ember_status merge_user(entry *e, const uint8_t *rec, size_t len,
                               ember_error *err)
{
    if (len == 0)
        return EMBER_OK;
    if (e->v.len == 0)
        return ember_buf_append(&e->v, rec, len) == EMBER_OK
                   ? EMBER_OK
                   : ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_buf in = ember_buf_heap(), out = ember_buf_heap();
    void *state = NULL;
    ember_error fe = {0};
    ember_status s = ember_batch_append(&in, rec, len);
    if (s != EMBER_OK) {
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto done;
    }
    if (e->vt->open &&
        (s = e->vt->open(em_host_api(), NULL, 0, &state, &fe)) != EMBER_OK) {
        s = ember_errorf(err, s, "accumulator %" PRIu64 ": %s: open failed: "
                         "%s", e->id, e->kind_text, fe.msg);
        goto done;
    }
    ember_batch one = {in.data, in.len, 1};
    s = e->vt->reduce(state, e->v.data, e->v.len, &one, &out, &fe);
    if (e->vt->open && e->vt->close)
        e->vt->close(state);
    if (s == EMBER_OK && ember_rec_validate(out.data, out.len, NULL) !=
                             EMBER_OK)
        s = ember_errorf(&fe, EMBER_EINVAL, "it returned a malformed record");
    if (s != EMBER_OK) {
        s = ember_errorf(err, s, "accumulator %" PRIu64 ": %s: %s", e->id,
                         e->kind_text, fe.msg[0] ? fe.msg
                                                 : ember_status_name(s));
        goto done;
    }
    ember_buf t = e->v;
    e->v = out;
    out = t;
done:
    ember_buf_release(&in);
    ember_buf_release(&out);
    return s;
}

/* Merges one decoded update into its accumulator; refuses it (err) when
 * the id is undeclared, the kind differs or the merge function fails. */
static ember_status merge_one(em_accums *a, const em_accum_value *u,
                              ember_error *err)
{
    int found;
    uint32_t at = locate(a, u->id, &found);
    if (!found)
        return ember_errorf(err, EMBER_EINVAL, "accumulator %" PRIu64
                            " is not declared by this application", u->id);
    entry *e = &a->e[at];
    if (e->kind != u->kind)
        return ember_errorf(err, EMBER_EINVAL, "accumulator %" PRIu64
                            " is %s, the update is of another kind", u->id,
                            e->kind_text);
    switch (e->kind) {
    case EM_ACCUM_INT64:
        /* Long addition: wraps, as Spark's LongAccumulator */
        e->i64 = (int64_t)((uint64_t)e->i64 + (uint64_t)u->i64);
        return EMBER_OK;
    case EM_ACCUM_DOUBLE:
        e->f64 += u->f64;
        return EMBER_OK;
    default:
        return merge_user(e, u->rec, u->rec_len, err);
    }
}

ember_status em_accums_merge(em_accums *a, const uint8_t *blob, size_t len,
                             ember_error *err)
{
    em_accum_value *v = NULL;
    uint32_t n = 0;
    ember_status s = em_accum_wire_decode(blob, len, &v, &n, err);
    if (s != EMBER_OK)
        return s;
    /* Each update on its own, as Spark's updateAccumulators: a refused
     * one does not keep the others from merging; the first refusal is
     * the one reported */
    ember_error first = {0};
    for (uint32_t i = 0; i < n; i++) {
        ember_error e = {0};
        ember_status t = merge_one(a, &v[i], &e);
        if (t != EMBER_OK && s == EMBER_OK) {
            s = t;
            first = e;
        }
    }
    free(v);
    if (s != EMBER_OK)
        ember_errorf(err, s, "%s", first.msg);
    return s;
}

ember_status em_accums_values(const em_accums *a, ember_buf *out)
{
    em_accum_value *v = calloc(a->n ? a->n : 1, sizeof *v);
    if (!v)
        return EMBER_ENOMEM;
    for (uint32_t i = 0; i < a->n; i++) {
        const entry *e = &a->e[i];
        v[i] = (em_accum_value){e->id, e->kind, e->i64, e->f64,
                                e->v.len ? e->v.data : NULL, e->v.len};
    }
    ember_status s = em_accum_wire_encode(out, v, a->n);
    free(v);
    return s;
}

/* A double as the shortest text that reads back the same. */
static void double_text(char *buf, size_t cap, double d)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

ember_status em_accums_store(const em_accums *a, em_store *store,
                             uint64_t app_id, ember_error *err)
{
    ember_buf text = ember_buf_heap();
    ember_status s = EMBER_OK;
    for (uint32_t i = 0; s == EMBER_OK && i < a->n; i++) {
        const entry *e = &a->e[i];
        if (!e->name)
            continue;
        char num[48];
        const char *value = num;
        if (e->kind == EM_ACCUM_INT64) {
            snprintf(num, sizeof num, "%" PRId64, e->i64);
        } else if (e->kind == EM_ACCUM_DOUBLE) {
            double_text(num, sizeof num, e->f64);
        } else if (e->v.len == 0) {
            value = NULL;
        } else {
            text.len = 0;
            if (ember_rec_json(&text, e->v.data, e->v.len) != EMBER_OK ||
                ember_buf_put_u8(&text, 0) != EMBER_OK) {
                s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
                break;
            }
            value = (const char *)text.data;
        }
        s = em_store_accum_set(store, app_id, e->id, e->name, e->kind_text,
                               value, err);
    }
    ember_buf_release(&text);
    return s;
}
