/*
 * client/actions.c — actions: the driver's half (the executors' half is
 * runtime/action.c). Results are merged as Spark merges them: take scans
 * partitions incrementally (S4), fold/aggregate apply the zero once per
 * partition and once here in completion order (S1), reduce of nothing is
 * "empty collection" (S3), take_ordered/top merge bounded per-partition
 * lists (S5).
 */
#include "client_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/function.h"
#include "ember/kernel/host.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "runtime/bytemap.h"
#include "runtime/recval.h"

static ember_status empty_collection(ember_error *err)
{
    return ember_errorf(err, EMBER_ENOTFOUND, "empty collection");
}

ember_status em_client_run_all(ember_rdd *r, const char *action,
                            ember_records *out, ember_error *err)
{
    em_job_result res;
    memset(out, 0, sizeof *out);
    ember_status st = em_client_run(r, NULL, 0, action, &res, err);
    for (uint32_t i = 0; st == EMBER_OK && i < res.nparts; i++)
        if (res.parts[i].have &&
            em_records_append(out, res.parts[i].data, res.parts[i].len) !=
                EMBER_OK)
            st = ember_errorf(err, EMBER_EINTERNAL,
                              "partition %" PRIu32 " sent a malformed result",
                              res.parts[i].partition);
    em_job_result_free(&res);
    if (st != EMBER_OK)
        ember_records_free(out);
    return st;
}

ember_status ember_collect(ember_rdd *r, ember_records *out, ember_error *err)
{
    return em_client_run_all(r, "{\"kind\":\"collect\"}", out, err);
}

/* The single int of a one-record result. */
static int64_t first_int(const uint8_t *data, size_t len)
{
    ember_batch b = {data, len, 1};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t rl;
    ember_value v;
    if (ember_batch_next(&c, &rec, &rl) != EMBER_OK)
        return 0;
    ember_rec_cursor rc = ember_rec_cursor_init(rec, rl);
    if (ember_rec_next(&rc, &v) != EMBER_OK || v.type != EMBER_TYPE_INT)
        return 0;
    return v.u.i64;
}

ember_status ember_count(ember_rdd *r, uint64_t *out, ember_error *err)
{
    em_job_result res;
    *out = 0;
    ember_status st =
        em_client_run(r, NULL, 0, "{\"kind\":\"count\"}", &res, err);
    for (uint32_t i = 0; st == EMBER_OK && i < res.nparts; i++)
        *out += (uint64_t)first_int(res.parts[i].data, res.parts[i].len);
    em_job_result_free(&res);
    return st;
}

static int64_t conf_int(ember_session *s, const char *key, int64_t dflt)
{
    int64_t v;
    if (em_conf_get_int(s->conf, key, dflt, 1, INT32_MAX, &v, NULL) !=
        EMBER_OK)
        return dflt;
    return v;
}

ember_status ember_take(ember_rdd *r, uint64_t n, ember_records *out,
                        ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "take: dataset is NULL");
    if (n > INT64_MAX)
        n = INT64_MAX; /* as Spark's take(Int.MaxValue): everything */
    uint64_t total = r->partitions, scanned = 0;
    uint64_t scale = (uint64_t)conf_int(r->s, "ember.rdd.limit.scaleUpFactor",
                                        4);
    uint64_t initial = (uint64_t)conf_int(
        r->s, "ember.rdd.limit.initialNumPartitions", 1);
    if (scale < 2)
        scale = 2;
    while (out->count < n && scanned < total) {
        uint64_t try = initial;
        if (scanned > 0) {
            if (out->count == 0) {
                try = scanned * scale;
            } else {
                uint64_t left = n - out->count;
                double want = ceil(1.5 * (double)left * (double)scanned /
                                   (double)out->count);
                try = want < (double)(scanned * scale) ? (uint64_t)want
                                                       : scanned * scale;
            }
        }
        uint64_t end = scanned + try < total ? scanned + try : total;
        uint32_t np = (uint32_t)(end - scanned);
        uint32_t *parts = malloc(np * sizeof *parts);
        if (!parts) {
            ember_records_free(out);
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        }
        for (uint32_t i = 0; i < np; i++)
            parts[i] = (uint32_t)(scanned + i);
        char action[64];
        snprintf(action, sizeof action, "{\"kind\":\"take\",\"n\":%" PRIu64
                 "}", n - out->count);
        em_job_result res;
        ember_status st = em_client_run(r, parts, np, action, &res, err);
        free(parts);
        /* results in partition order, then cut to n */
        for (uint32_t i = 0; st == EMBER_OK && i < res.nparts; i++) {
            ember_batch b = {res.parts[i].data, res.parts[i].len, 0};
            ember_batch_cursor c = ember_batch_cursor_of(&b);
            const uint8_t *rec;
            size_t rl;
            while (out->count < n && ember_batch_next(&c, &rec, &rl) ==
                                         EMBER_OK) {
                ember_buf one = ember_buf_heap();
                ember_batch_append(&one, rec, rl);
                st = em_records_append(out, one.data, one.len);
                ember_buf_release(&one);
            }
        }
        em_job_result_free(&res);
        if (st != EMBER_OK) {
            ember_records_free(out);
            return st;
        }
        scanned = end;
    }
    return EMBER_OK;
}

ember_status ember_first(ember_rdd *r, ember_records *out, ember_error *err)
{
    ember_status st = ember_take(r, 1, out, err);
    if (st == EMBER_OK && out->count == 0)
        return empty_collection(err);
    return st;
}

ember_status ember_is_empty(ember_rdd *r, int *out, ember_error *err)
{
    ember_records rec;
    *out = 1;
    if (!r || r->partitions == 0)
        return r ? EMBER_OK : ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    ember_status st = ember_take(r, 1, &rec, err);
    if (st == EMBER_OK)
        *out = rec.count == 0;
    ember_records_free(&rec);
    return st;
}

/* ---- ordered ---------------------------------------------------------- */

typedef struct span {
    const uint8_t *p;
    size_t len;
} span;

static int span_cmp(const span *a, const span *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int span_asc(const void *a, const void *b)
{
    return span_cmp(a, b);
}

static int span_desc(const void *a, const void *b)
{
    return span_cmp(b, a);
}

static ember_status ordered(ember_rdd *r, uint64_t n, int desc,
                            ember_records *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (n > INT64_MAX)
        n = INT64_MAX;
    if (n == 0 || !r || r->partitions == 0)
        return r ? EMBER_OK : ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    char action[96];
    snprintf(action, sizeof action,
             "{\"kind\":\"take_ordered\",\"n\":%" PRIu64
             ",\"descending\":%s}", n, desc ? "true" : "false");
    ember_records all;
    ember_status st = em_client_run_all(r, action, &all, err);
    if (st != EMBER_OK)
        return st;
    span *sp = malloc((all.count + 1) * sizeof *sp); /* +1: next() at the end writes too */
    if (!sp) {
        ember_records_free(&all);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_batch b = {all.data, all.len, all.count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    size_t k = 0;
    while (ember_batch_next(&c, &sp[k].p, &sp[k].len) == EMBER_OK)
        k++;
    qsort(sp, k, sizeof *sp, desc ? span_desc : span_asc);
    ember_buf o = ember_buf_heap();
    for (size_t i = 0; i < k && i < n && st == EMBER_OK; i++)
        st = ember_batch_append(&o, sp[i].p, sp[i].len);
    if (st == EMBER_OK)
        st = em_records_append(out, o.data, o.len);
    ember_buf_release(&o);
    free(sp);
    ember_records_free(&all);
    return st == EMBER_OK ? st : ember_errorf(err, st, "out of memory");
}

ember_status ember_take_ordered(ember_rdd *r, uint64_t n, ember_records *out,
                                ember_error *err)
{
    return ordered(r, n, 0, out, err);
}

ember_status ember_top(ember_rdd *r, uint64_t n, ember_records *out,
                       ember_error *err)
{
    return ordered(r, n, 1, out, err);
}

ember_status ember_max(ember_rdd *r, ember_records *out, ember_error *err)
{
    ember_status st = ordered(r, 1, 1, out, err);
    return st == EMBER_OK && out->count == 0 ? empty_collection(err) : st;
}

ember_status ember_min(ember_rdd *r, ember_records *out, ember_error *err)
{
    ember_status st = ordered(r, 1, 0, out, err);
    return st == EMBER_OK && out->count == 0 ? empty_collection(err) : st;
}

/* ---- folds ------------------------------------------------------------ */

/* A REDUCE function opened on the driver. */
typedef struct driver_fn {
    const ember_function_vtable *vt;
    void *state;
    int opened;
    const char *name;
} driver_fn;

static ember_status fn_open(ember_session *s, ember_fn fn, driver_fn *d,
                            ember_error *err)
{
    memset(d, 0, sizeof *d);
    d->name = fn.name ? fn.name : "";
    const em_component *c =
        fn.name ? em_registry_find(s->registry, EMBER_KIND_FUNCTION, fn.name)
                : NULL;
    if (!c)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "function '%s' is not loaded in this session",
                            d->name);
    d->vt = c->vtable;
    if (d->vt->shape != EMBER_FN_REDUCE)
        return ember_errorf(err, EMBER_EINVAL,
                            "'%s' is a map function; this action needs a "
                            "reduce function", d->name);
    if (d->vt->open) {
        ember_error e = {0};
        ember_status st = d->vt->open(em_host_api(), fn.arg, fn.arg_len,
                                      &d->state, &e);
        if (st != EMBER_OK)
            return ember_errorf(err, st, "%s: open failed: %s", d->name,
                                e.msg);
    }
    d->opened = 1;
    return EMBER_OK;
}

static void fn_close(driver_fn *d)
{
    if (d->opened && d->vt->close)
        d->vt->close(d->state);
    d->opened = 0;
}

/* acc = acc op (the records of batch data[0..len)); acc empty = none. */
static ember_status fn_apply(driver_fn *d, ember_buf *acc, int *have,
                             const uint8_t *data, size_t len,
                             ember_error *err)
{
    ember_batch b = {data, len, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t rl;
    while (ember_batch_next(&c, &rec, &rl) == EMBER_OK)
        b.count++;
    if (b.count == 0)
        return EMBER_OK;
    ember_buf next = ember_buf_heap();
    ember_error e = {0};
    ember_status st = d->vt->reduce(d->state, *have ? acc->data : NULL,
                                    *have ? acc->len : 0, &b, &next, &e);
    if (st != EMBER_OK) {
        ember_buf_release(&next);
        return ember_errorf(err, st, "%s on the driver: %s", d->name,
                            e.msg[0] ? e.msg : ember_status_name(st));
    }
    ember_buf_release(acc);
    *acc = next;
    *have = 1;
    return EMBER_OK;
}

static char *fold_action(const char *kind, ember_fn fn, const uint8_t *zero,
                         size_t zero_len)
{
    json_t *a = json_pack("{s:s,s:o}", "kind", kind, "fn",
                          em_client_fn_json(fn));
    if (a && zero)
        json_object_set_new(a, "zero", em_client_b64(zero, zero_len));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

/* Runs a fold-like job and merges results with merge_fn, starting from
 * zero (NULL: nothing), in completion order (S1). */
static ember_status fold_job(ember_rdd *r, const char *kind, ember_fn fn,
                             ember_fn merge_fn, const uint8_t *zero,
                             size_t zero_len, ember_records *out,
                             ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    if (zero && ember_rec_validate(zero, zero_len, NULL) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "zero is not a valid record");
    driver_fn d;
    ember_status st = fn_open(r->s, merge_fn, &d, err);
    if (st != EMBER_OK) {
        fn_close(&d);
        return st;
    }
    char *action = fold_action(kind, fn, zero, zero_len);
    em_job_result res;
    memset(&res, 0, sizeof res);
    ember_buf acc = ember_buf_heap();
    int have = 0;
    if (!action) {
        st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto out;
    }
    if (zero) {
        if ((st = ember_buf_append(&acc, zero, zero_len)) != EMBER_OK)
            goto out;
        have = 1;
    }
    if ((st = em_client_run(r, NULL, 0, action, &res, err)) != EMBER_OK)
        goto out;
    for (uint32_t i = 0; i < res.ndone && st == EMBER_OK; i++) {
        const em_part_result *p = &res.parts[res.order[i]];
        st = fn_apply(&d, &acc, &have, p->data, p->len, err);
    }
    if (st == EMBER_OK && !have)
        st = empty_collection(err);
    if (st == EMBER_OK) {
        ember_buf one = ember_buf_heap();
        st = ember_batch_append(&one, acc.data, acc.len);
        if (st == EMBER_OK)
            st = em_records_append(out, one.data, one.len);
        ember_buf_release(&one);
    }
out:
    free(action);
    em_job_result_free(&res);
    ember_buf_release(&acc);
    fn_close(&d);
    return st;
}

ember_status ember_reduce(ember_rdd *r, ember_fn fn, ember_records *out,
                          ember_error *err)
{
    return fold_job(r, "reduce", fn, fn, NULL, 0, out, err);
}

ember_status ember_fold(ember_rdd *r, const uint8_t *zero, size_t zero_len,
                        ember_fn fn, ember_records *out, ember_error *err)
{
    if (!zero)
        return ember_errorf(err, EMBER_EINVAL, "fold: a zero value is needed");
    return fold_job(r, "fold", fn, fn, zero, zero_len, out, err);
}

ember_status ember_aggregate(ember_rdd *r, const uint8_t *zero,
                             size_t zero_len, ember_fn seq, ember_fn comb,
                             ember_records *out, ember_error *err)
{
    if (!zero)
        return ember_errorf(err, EMBER_EINVAL,
                            "aggregate: a zero value is needed");
    return fold_job(r, "aggregate", seq, comb, zero, zero_len, out, err);
}

/*
 * Spark's treeAggregate: per-partition aggregates, then while there are
 * more than scale + ceil(n / scale) of them, fold groups (index % n) with
 * the zero applied once per element (foldByKey's map-side combine), then
 * a final fold with the zero once per remaining part and once here.
 * tree_reduce has no zero at any step.
 */
static ember_status tree(ember_rdd *r, const uint8_t *zero, size_t zero_len,
                         ember_fn seq, ember_fn comb, uint32_t depth,
                         ember_records *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (depth < 1)
        return ember_errorf(err, EMBER_EINVAL,
                            "depth must be greater than or equal to 1 but "
                            "got %" PRIu32, depth);
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    driver_fn d;
    ember_status st = fn_open(r->s, comb, &d, err);
    em_job_result res;
    memset(&res, 0, sizeof res);
    char *action = NULL;
    uint32_t n = r->partitions;
    ember_buf *parts = NULL;
    int *have = NULL;
    if (st != EMBER_OK)
        goto out;
    if (n == 0) {
        if (!zero) {
            st = empty_collection(err);
            goto out;
        }
        ember_buf one = ember_buf_heap();
        st = ember_batch_append(&one, zero, zero_len);
        if (st == EMBER_OK)
            st = em_records_append(out, one.data, one.len);
        ember_buf_release(&one);
        goto out;
    }
    action = fold_action(zero ? "aggregate" : "reduce", seq, zero, zero_len);
    parts = calloc(n, sizeof *parts);
    have = calloc(n, sizeof *have);
    if (!action || !parts || !have) {
        st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = em_client_run(r, NULL, 0, action, &res, err)) != EMBER_OK)
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        parts[i] = ember_buf_heap();
        if (st == EMBER_OK && res.parts[i].len)
            st = fn_apply(&d, &parts[i], &have[i], res.parts[i].data,
                          res.parts[i].len, err);
        /* fn_apply with no accumulator takes the record as it is */
    }
    uint32_t scale = (uint32_t)ceil(pow((double)n, 1.0 / depth));
    if (scale < 2)
        scale = 2;
    uint32_t cur = n;
    while (st == EMBER_OK && cur > scale + (uint32_t)ceil((double)cur / scale)) {
        uint32_t next = cur / scale;
        for (uint32_t i = 0; i < cur && st == EMBER_OK; i++) {
            if (!have[i])
                continue;
            ember_buf one = ember_buf_heap();
            ember_buf x = ember_buf_heap();
            int hx = 0;
            if (zero) {
                ember_buf_append(&x, zero, zero_len);
                hx = 1;
            }
            ember_batch_append(&one, parts[i].data, parts[i].len);
            st = fn_apply(&d, &x, &hx, one.data, one.len, err);
            ember_buf_release(&one);
            ember_buf_release(&parts[i]);
            parts[i] = x;
        }
        for (uint32_t i = next; i < cur && st == EMBER_OK; i++) {
            uint32_t g = i % next;
            if (!have[i])
                continue;
            ember_buf one = ember_buf_heap();
            ember_batch_append(&one, parts[i].data, parts[i].len);
            st = fn_apply(&d, &parts[g], &have[g], one.data, one.len, err);
            ember_buf_release(&one);
            ember_buf_release(&parts[i]);
            have[i] = 0;
        }
        cur = next;
    }
    /* the final fold: zero per part, then zero on the driver */
    ember_buf acc = ember_buf_heap();
    int hacc = 0;
    if (zero) {
        ember_buf_append(&acc, zero, zero_len);
        hacc = 1;
    }
    for (uint32_t i = 0; i < cur && st == EMBER_OK; i++) {
        if (!have[i] && !zero)
            continue;
        ember_buf x = ember_buf_heap();
        int hx = 0;
        if (zero) {
            ember_buf_append(&x, zero, zero_len);
            hx = 1;
        }
        if (have[i]) {
            ember_buf one = ember_buf_heap();
            ember_batch_append(&one, parts[i].data, parts[i].len);
            st = fn_apply(&d, &x, &hx, one.data, one.len, err);
            ember_buf_release(&one);
        }
        ember_buf one = ember_buf_heap();
        ember_batch_append(&one, x.data, x.len);
        if (st == EMBER_OK)
            st = fn_apply(&d, &acc, &hacc, one.data, one.len, err);
        ember_buf_release(&one);
        ember_buf_release(&x);
    }
    if (st == EMBER_OK && !hacc)
        st = empty_collection(err);
    if (st == EMBER_OK) {
        ember_buf one = ember_buf_heap();
        st = ember_batch_append(&one, acc.data, acc.len);
        if (st == EMBER_OK)
            st = em_records_append(out, one.data, one.len);
        ember_buf_release(&one);
    }
    ember_buf_release(&acc);
out:
    for (uint32_t i = 0; parts && i < n; i++)
        ember_buf_release(&parts[i]);
    free(parts);
    free(have);
    free(action);
    em_job_result_free(&res);
    fn_close(&d);
    return st;
}

ember_status ember_tree_reduce(ember_rdd *r, ember_fn fn, uint32_t depth,
                               ember_records *out, ember_error *err)
{
    return tree(r, NULL, 0, fn, fn, depth, out, err);
}

ember_status ember_tree_aggregate(ember_rdd *r, const uint8_t *zero,
                                  size_t zero_len, ember_fn seq,
                                  ember_fn comb, uint32_t depth,
                                  ember_records *out, ember_error *err)
{
    if (!zero)
        return ember_errorf(err, EMBER_EINVAL,
                            "tree_aggregate: a zero value is needed");
    return tree(r, zero, zero_len, seq, comb, depth, out, err);
}

/* ---- foreach, count_by_value, stats, save ------------------------------ */

ember_status ember_foreach(ember_rdd *r, ember_fn fn, ember_error *err)
{
    json_t *a = json_pack("{s:s,s:o}", "kind", "foreach", "fn",
                          em_client_fn_json(fn));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return ember_errorf(err, EMBER_EINVAL, "foreach: a function is needed");
    em_job_result res;
    ember_status st = r ? em_client_run(r, NULL, 0, text, &res, err)
                        : ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    if (r)
        em_job_result_free(&res);
    free(text);
    return st;
}

ember_status ember_foreach_partition(ember_rdd *r, ember_fn fn,
                                     ember_error *err)
{
    return ember_foreach(r, fn, err);
}

ember_status ember_count_by_value(ember_rdd *r, ember_records *out,
                                  ember_error *err)
{
    memset(out, 0, sizeof *out);
    em_job_result res;
    ember_status st = r ? em_client_run(r, NULL, 0,
                                        "{\"kind\":\"count_by_value\"}", &res,
                                        err)
                        : ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    if (!r)
        return st;
    em_bytemap m;
    em_bytemap_init(&m);
    for (uint32_t i = 0; st == EMBER_OK && i < res.nparts; i++) {
        ember_batch b = {res.parts[i].data, res.parts[i].len, 0};
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *rec;
        size_t rl;
        while (st == EMBER_OK && ember_batch_next(&c, &rec, &rl) == EMBER_OK) {
            ember_value k, v;
            int added;
            if (em_rec_pair(rec, rl, &k, &v) != EMBER_OK ||
                v.type != EMBER_TYPE_INT) {
                st = ember_errorf(err, EMBER_EINTERNAL,
                                  "count_by_value: malformed result");
                break;
            }
            uint64_t *slot = em_bytemap_upsert(&m, k.enc, k.enc_len, &added);
            if (!slot)
                st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            else
                *slot += (uint64_t)v.u.i64;
        }
    }
    ember_buf o = ember_buf_heap();
    for (size_t i = 0; st == EMBER_OK && i < m.cap; i++) {
        const em_bytemap_slot *sl = &m.slots[i];
        uint8_t kbuf[EM_BYTEMAP_INLINE];
        if (!sl->tag)
            continue;
        size_t mark;
        st = ember_batch_frame_begin(&o, &mark);
        if (st == EMBER_OK)
            st = ember_buf_append(&o, em_bytemap_key(&m, sl, kbuf), sl->len);
        if (st == EMBER_OK)
            st = ember_rec_put_int(&o, (int64_t)sl->value);
        if (st == EMBER_OK)
            st = ember_batch_frame_end(&o, mark);
    }
    if (st == EMBER_OK)
        st = em_records_append(out, o.data, o.len);
    ember_buf_release(&o);
    em_bytemap_free(&m);
    em_job_result_free(&res);
    return st;
}

ember_status ember_stats_of(ember_rdd *r, ember_stats *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    em_job_result res;
    ember_status st = r ? em_client_run(r, NULL, 0, "{\"kind\":\"stats\"}",
                                        &res, err)
                        : ember_errorf(err, EMBER_EINVAL, "NULL dataset");
    if (!r)
        return st;
    double n = 0, mu = 0, m2 = 0, mx = -INFINITY, mn = INFINITY;
    for (uint32_t i = 0; st == EMBER_OK && i < res.ndone; i++) {
        const em_part_result *p = &res.parts[res.order[i]];
        ember_batch b = {p->data, p->len, 1};
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *rec;
        size_t rl;
        ember_value v[5];
        if (ember_batch_next(&c, &rec, &rl) != EMBER_OK)
            continue;
        ember_rec_cursor rc = ember_rec_cursor_init(rec, rl);
        for (int k = 0; k < 5; k++)
            if (ember_rec_next(&rc, &v[k]) != EMBER_OK)
                st = ember_errorf(err, EMBER_EINTERNAL, "malformed stats");
        if (st != EMBER_OK)
            break;
        double on = (double)v[0].u.i64, omu = v[1].u.f64, om2 = v[2].u.f64;
        if (on == 0)
            continue;
        /* Spark's StatCounter.merge */
        if (n == 0) {
            mu = omu;
            m2 = om2;
        } else {
            double delta = omu - mu;
            if (on * 10 < n)
                mu = mu + delta * on / (n + on);
            else if (n * 10 < on)
                mu = omu - delta * n / (n + on);
            else
                mu = (mu * n + omu * on) / (n + on);
            m2 += om2 + delta * delta * n * on / (n + on);
        }
        n += on;
        /* as Scala's math.max/min: NaN wins */
        if (!isnan(mx) && (isnan(v[3].u.f64) || v[3].u.f64 > mx))
            mx = v[3].u.f64;
        if (!isnan(mn) && (isnan(v[4].u.f64) || v[4].u.f64 < mn))
            mn = v[4].u.f64;
    }
    em_job_result_free(&res);
    if (st != EMBER_OK)
        return st;
    out->count = (uint64_t)n;
    out->mean = mu; /* 0 when empty, as Spark's StatCounter */
    out->sum = n * mu;
    out->max = mx;
    out->min = mn;
    out->variance = n ? m2 / n : NAN;
    out->stdev = sqrt(out->variance);
    out->sample_variance = n > 1 ? m2 / (n - 1) : NAN;
    out->sample_stdev = sqrt(out->sample_variance);
    return EMBER_OK;
}

/* Removes dir/_temporary, where attempts write before they commit. */
static void remove_temporary(const char *dir)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/_temporary", dir);
    em_client_rmtree(tmp);
}

ember_status ember_save(ember_rdd *r, const char *sink, const void *arg,
                        size_t arg_len, ember_error *err)
{
    if (!r || !sink || !*sink)
        return ember_errorf(err, EMBER_EINVAL,
                            "save: a dataset and a sink component are needed");
    json_t *a = json_pack("{s:s,s:s,s:o}", "kind", "save", "sink", sink,
                          "arg", em_client_b64(arg, arg_len));
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    em_job_result res;
    ember_status st = em_client_run(r, NULL, 0, text, &res, err);
    em_job_result_free(&res);
    free(text);
    return st;
}

ember_status ember_save_as_text_file(ember_rdd *r, const char *dir,
                                     ember_error *err)
{
    if (!r || !dir || !*dir)
        return ember_errorf(err, EMBER_EINVAL,
                            "save_as_text_file: dataset and directory needed");
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return ember_errorf(err, EMBER_EEXIST,
                            "Output directory %s already exists", dir);
    if (mkdir(dir, 0777) != 0)
        return ember_errorf(err, EMBER_EIO, "cannot create %s: %s", dir,
                            strerror(errno));
    ember_buf arg = ember_buf_heap();
    ember_status st = ember_rec_put_string(&arg, dir, strlen(dir));
    json_t *a = json_pack("{s:s,s:s,s:o}", "kind", "save", "sink",
                          "textout.files", "arg",
                          em_client_b64(arg.data, arg.len));
    ember_buf_release(&arg);
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!text || st != EMBER_OK) {
        free(text);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    em_job_result res;
    st = em_client_run(r, NULL, 0, text, &res, err);
    em_job_result_free(&res);
    free(text);
    remove_temporary(dir);
    if (st == EMBER_OK) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/_SUCCESS", dir);
        FILE *f = fopen(path, "w");
        if (!f || fclose(f) != 0)
            return ember_errorf(err, EMBER_EIO, "cannot write %s", path);
    }
    return st;
}
