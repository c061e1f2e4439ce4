/* Accumulators on an executor (see runtime/accum_task.h). */
#include "runtime/accum_task.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/batch.h"
#include "ember/function.h"
#include "ember/kernel/host.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"

typedef struct def {
    uint64_t id;
    em_accum_kind kind;
    const ember_function_vtable *vt; /* user kinds, when usable */
    char fn[272];                    /* user kinds: the function's name */
    char why[200];                   /* user kinds without vt: why */
} def;

struct em_accum_defs {
    def *d;
    uint32_t n;
};

ember_status em_accum_defs_create(em_accum_defs **out,
                                  const em_accum_decl *decl, uint32_t n,
                                  const em_registry *registry,
                                  ember_error *err)
{
    *out = NULL;
    if (n == 0)
        return EMBER_OK;
    em_accum_defs *ds = calloc(1, sizeof *ds);
    def *d = calloc(n, sizeof *d);
    if (!ds || !d) {
        free(ds);
        free(d);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        d[i].id = decl[i].id;
        d[i].kind = em_accum_kind_of(decl[i].kind);
        if (d[i].kind != EM_ACCUM_USER)
            continue;
        snprintf(d[i].fn, sizeof d[i].fn, "%s", decl[i].kind);
        const em_component *c =
            registry ? em_registry_find(registry, EMBER_KIND_FUNCTION,
                                        decl[i].kind)
                     : NULL;
        const ember_function_vtable *vt = c ? c->vtable : NULL;
        if (!vt)
            snprintf(d[i].why, sizeof d[i].why, "its merge function %.100s "
                     "is not loaded on this executor", decl[i].kind);
        else if (vt->shape != EMBER_FN_REDUCE || !vt->reduce)
            snprintf(d[i].why, sizeof d[i].why, "its merge function %.100s "
                     "is not a REDUCE function", decl[i].kind);
        else
            d[i].vt = vt;
    }
    ds->d = d;
    ds->n = n;
    *out = ds;
    return EMBER_OK;
}

void em_accum_defs_free(em_accum_defs *ds)
{
    if (!ds)
        return;
    free(ds->d);
    free(ds);
}

/* ---- one task attempt (thread-local) ----------------------------------- */

typedef struct slot {
    int touched;
    int opened; /* the merge function's open ran */
    void *state;
    int64_t i64;
    double f64;
    ember_buf v, out, in; /* user kinds: the value, the merge's output,
                             the framed record merged */
} slot;

typedef struct task_state {
    int active;
    const em_accum_defs *defs;
    slot *slots; /* one per def */
    int failed;
    ember_error err; /* the first failed add */
} task_state;

static _Thread_local task_state tl;

ember_status em_accum_task_begin(const em_accum_defs *defs, ember_error *err)
{
    memset(&tl, 0, sizeof tl);
    if (defs && !(tl.slots = calloc(defs->n, sizeof *tl.slots)))
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    tl.defs = defs;
    tl.active = 1;
    return EMBER_OK;
}

/* Says why this add failed in err (nullable) and remembers the first
 * failure of the attempt (the attempt will fail with it). */
__attribute__((format(printf, 3, 4))) static ember_status
fail(ember_error *err, ember_status code, const char *fmt, ...)
{
    ember_error e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    if (!tl.failed) {
        tl.err = e;
        tl.failed = 1;
    }
    if (err)
        *err = e;
    return code;
}

static const char *kind_name(em_accum_kind k)
{
    return k == EM_ACCUM_INT64    ? "int64"
           : k == EM_ACCUM_DOUBLE ? "double"
                                  : "user-defined";
}

/* The slot of accumulator id, checked to be of kind want; NULL after
 * recording why not (in err too, nullable). */
static slot *find(uint64_t id, em_accum_kind want, ember_status *st,
                  ember_error *err)
{
    const em_accum_defs *ds = tl.defs;
    uint32_t lo = 0, hi = ds ? ds->n : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ds->d[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!ds || lo == ds->n || ds->d[lo].id != id) {
        *st = fail(err, EMBER_ENOTFOUND, "accumulator %" PRIu64 " is not "
                   "declared in the job's plan (create it with "
                   "ember_accumulator_new in this session)", id);
        return NULL;
    }
    const def *d = &ds->d[lo];
    if (d->kind != want) {
        *st = fail(err, EMBER_EINVAL, "accumulator %" PRIu64 " is %s %s, "
                   "not %s %s",
                   id, d->kind == EM_ACCUM_INT64 ? "an" : "a",
                   kind_name(d->kind), want == EM_ACCUM_INT64 ? "an" : "a",
                   kind_name(want));
        return NULL;
    }
    return &tl.slots[lo];
}

ember_status em_accum_add_i64(uint64_t id, int64_t v)
{
    if (!tl.active)
        return EMBER_EUNSUPPORTED;
    ember_status st = EMBER_OK;
    slot *s = find(id, EM_ACCUM_INT64, &st, NULL);
    if (!s)
        return st;
    /* Long addition wraps, as Spark's LongAccumulator */
    s->i64 = (int64_t)((uint64_t)s->i64 + (uint64_t)v);
    s->touched = 1;
    return EMBER_OK;
}

ember_status em_accum_add_double(uint64_t id, double v)
{
    if (!tl.active)
        return EMBER_EUNSUPPORTED;
    ember_status st = EMBER_OK;
    slot *s = find(id, EM_ACCUM_DOUBLE, &st, NULL);
    if (!s)
        return st;
    s->f64 += v;
    s->touched = 1;
    return EMBER_OK;
}

ember_status em_accum_add(uint64_t id, const uint8_t *rec, size_t len,
                          ember_error *err)
{
    if (!tl.active)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "accumulators are updated inside tasks only");
    ember_status st = EMBER_OK;
    slot *s = find(id, EM_ACCUM_USER, &st, err);
    if (!s)
        return st;
    const def *d = &tl.defs->d[s - tl.slots];
    if (!d->vt)
        return fail(err, EMBER_ENOTFOUND, "accumulator %" PRIu64 ": %s", id,
                    d->why);
    if (!rec || ember_rec_validate(rec, len, NULL) != EMBER_OK)
        return fail(err, EMBER_EINVAL, "accumulator %" PRIu64 ": the value "
                    "added is not a valid record", id);
    if (!s->opened) {
        ember_error e = {0};
        if (d->vt->open &&
            (st = d->vt->open(em_host_api(), NULL, 0, &s->state, &e)) !=
                EMBER_OK)
            return fail(err, st, "accumulator %" PRIu64 ": %s: open "
                        "failed: %s", id, d->fn, e.msg);
        s->opened = 1;
        s->v = ember_buf_heap();
        s->out = ember_buf_heap();
        s->in = ember_buf_heap();
    }
    s->in.len = 0;
    s->out.len = 0;
    if (ember_batch_append(&s->in, rec, len) != EMBER_OK)
        return fail(err, EMBER_ENOMEM, "out of memory");
    ember_batch one = {s->in.data, s->in.len, 1};
    ember_error e = {0};
    st = d->vt->reduce(s->state, s->touched ? s->v.data : NULL,
                       s->touched ? s->v.len : 0, &one, &s->out, &e);
    if (st == EMBER_OK &&
        ember_rec_validate(s->out.data, s->out.len, NULL) != EMBER_OK)
        st = ember_errorf(&e, EMBER_EINVAL, "it returned a malformed record");
    if (st != EMBER_OK)
        return fail(err, st, "accumulator %" PRIu64 ": %s: %s", id, d->fn,
                    e.msg[0] ? e.msg : ember_status_name(st));
    ember_buf t = s->v;
    s->v = s->out;
    s->out = t;
    s->touched = 1;
    return EMBER_OK;
}

ember_status em_accum_task_end(int ok, ember_buf *blob, int *failed,
                               ember_error *err)
{
    ember_status st = EMBER_OK;
    const em_accum_defs *ds = tl.defs;
    *failed = tl.failed;
    if (tl.failed)
        ember_errorf(err, tl.err.code, "%s", tl.err.msg);
    uint32_t touched = 0;
    for (uint32_t i = 0; ds && i < ds->n; i++)
        touched += tl.slots[i].touched;
    if (ok && !tl.failed && touched) {
        em_accum_value *v = calloc(touched, sizeof *v);
        uint32_t k = 0;
        for (uint32_t i = 0; v && i < ds->n; i++) {
            const slot *s = &tl.slots[i];
            if (!s->touched)
                continue;
            v[k].id = ds->d[i].id;
            v[k].kind = ds->d[i].kind;
            v[k].i64 = s->i64;
            v[k].f64 = s->f64;
            v[k].rec = s->v.data;
            v[k].rec_len = s->v.len;
            k++;
        }
        st = v ? em_accum_wire_encode(blob, v, touched) : EMBER_ENOMEM;
        free(v);
        if (st != EMBER_OK)
            ember_errorf(err, st, "accumulator updates: %s",
                         ember_status_name(st));
    }
    for (uint32_t i = 0; ds && i < ds->n; i++) {
        slot *s = &tl.slots[i];
        if (s->opened && ds->d[i].vt->close)
            ds->d[i].vt->close(s->state);
        ember_buf_release(&s->v);
        ember_buf_release(&s->out);
        ember_buf_release(&s->in);
    }
    free(tl.slots);
    memset(&tl, 0, sizeof tl);
    return st;
}
