/*
 * client/pair_actions.c — actions on pair datasets (count_by_key,
 * collect_as_map, reduce_by_key_locally, lookup) and sort_by_key, whose
 * range bounds come from a sampling job run when the dataset is defined
 * (SEMANTICS S6).
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dag/base64.h"
#include "ember/hash.h"
#include "ember/record.h"
#include "ember/kernel/host.h"
#include "runtime/combiner.h"
#include "runtime/keysort.h"
#include "runtime/recval.h"

/* Sorts the pairs of *recs by key and keeps one per key: the last one
 * (keep_last) or all (else). Rewrites *recs. */
static ember_status sort_pairs(ember_records *recs, int keep_last,
                               ember_error *err)
{
    size_t n = (size_t)recs->count;
    em_keyref *refs = malloc((n ? n : 1) * sizeof *refs);
    em_keyref *tmp = malloc((n ? n : 1) * sizeof *tmp);
    ember_buf out = ember_buf_heap();
    ember_status s = refs && tmp ? EMBER_OK
                                 : ember_errorf(err, EMBER_ENOMEM,
                                                "out of memory");
    ember_batch b = {recs->data, recs->len, recs->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *r;
    size_t rl, i = 0;
    while (s == EMBER_OK && i < n && ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        ember_value k, v;
        if (em_rec_pair(r, rl, &k, &v) != EMBER_OK) {
            s = ember_errorf(err, EMBER_EINVAL, "expected (key, value) pairs "
                             "(record %zu)", i);
            break;
        }
        refs[i] = (em_keyref){0, k.enc, r, (uint32_t)k.enc_len,
                              (uint32_t)rl, 0, (uint32_t)i};
        em_keyref_prefix(&refs[i]);
        i++;
    }
    if (s == EMBER_OK)
        em_keysort(refs, tmp, i);
    uint64_t kept = 0;
    for (size_t j = 0; s == EMBER_OK && j < i; j++) {
        if (keep_last && j + 1 < i && em_key_compare(&refs[j], &refs[j + 1]) == 0)
            continue;
        s = ember_batch_append(&out, refs[j].rec, refs[j].rlen);
        kept++;
    }
    free(refs);
    free(tmp);
    if (s != EMBER_OK) {
        ember_buf_release(&out);
        return s;
    }
    free(recs->data);
    recs->data = out.data;
    recs->len = out.len;
    recs->count = kept;
    return EMBER_OK;
}

ember_status ember_count_by_key(ember_rdd *r, ember_records *out,
                                ember_error *err)
{
    memset(out, 0, sizeof *out);
    ember_rdd *c = em_client_keyed_count(r, err);
    if (!c)
        return err ? err->code : EMBER_EINVAL;
    ember_status s = ember_collect(c, out, err);
    return s == EMBER_OK ? sort_pairs(out, 0, err) : s;
}

ember_status ember_collect_as_map(ember_rdd *r, ember_records *out,
                                  ember_error *err)
{
    ember_status s = ember_collect(r, out, err);
    return s == EMBER_OK ? sort_pairs(out, 1, err) : s;
}

ember_status ember_reduce_by_key_locally(ember_rdd *r, ember_fn fn,
                                         ember_records *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "reduce_by_key_locally: "
                            "dataset is NULL");
    /* each partition folds its pairs per key; the driver merges the
     * partitions' tables with the same function: no shuffle (S27) */
    json_t *f = em_client_fn_json(fn);
    json_t *a = f ? json_pack("{s:s,s:o}", "kind", "reduce_by_key_locally",
                              "fn", f)
                  : NULL;
    char *action = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!action)
        return ember_errorf(err, f ? EMBER_ENOMEM : EMBER_EINVAL,
                            "reduce_by_key_locally: %s",
                            f ? "out of memory" : "a function is needed");
    ember_records parts;
    ember_status s = em_client_run_all(r, action, &parts, err);
    free(action);
    if (s != EMBER_OK)
        return s;
    em_combiner *c = NULL;
    s = em_combiner_open_fn(&c, "reduce_by_key_locally", fn.name, fn.arg,
                            fn.arg_len, 0, 0, r->s->registry, em_host_api(),
                            err);
    ember_batch b = {parts.data, parts.len, parts.count};
    if (s == EMBER_OK)
        s = em_combiner_add(c, &b, err);
    ember_buf merged = ember_buf_heap();
    uint64_t n = 0;
    if (s == EMBER_OK)
        s = em_combiner_emit(c, &merged, &n, err);
    em_combiner_close(c);
    ember_records_free(&parts);
    if (s != EMBER_OK) {
        ember_buf_release(&merged);
        return s;
    }
    out->data = merged.data;
    out->len = merged.len;
    out->count = n;
    return sort_pairs(out, 0, err);
}

/* The partition of key under r's partitioner, or -1 when r has none that
 * a key decides (S28). */
static int64_t partition_of_key(const ember_rdd *r, const uint8_t *key,
                                size_t len)
{
    const json_t *p = r->partitioner;
    const char *kind = json_string_value(json_object_get(p, "kind"));
    int64_t n = json_integer_value(json_object_get(p, "partitions"));
    if (!kind || n <= 0)
        return -1;
    if (strcmp(kind, "hash") == 0)
        return (int64_t)(ember_hash64(key, len) % (uint64_t)n);
    if (strcmp(kind, "range") != 0)
        return -1;
    const json_t *bj = json_object_get(p, "bounds");
    uint8_t *bounds = NULL;
    size_t blen = 0;
    if (json_is_string(bj) &&
        em_base64_decode(&bounds, &blen, json_string_value(bj),
                         json_string_length(bj), SIZE_MAX, NULL) != EMBER_OK)
        return -1;
    ember_batch b = {bounds, blen, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *x;
    size_t xl;
    int64_t below = 0, total = 0;
    while (ember_batch_next(&c, &x, &xl) == EMBER_OK) {
        total++;
        if (ember_rec_compare(x, xl, key, len) < 0)
            below++;
    }
    free(bounds);
    return json_is_true(json_object_get(p, "descending")) ? total - below
                                                           : below;
}

ember_status ember_lookup(ember_rdd *r, const uint8_t *key, size_t key_len,
                          ember_records *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (!r || !key || key_len == 0)
        return ember_errorf(err, EMBER_EINVAL, "lookup: a dataset and an "
                            "encoded key are needed");
    json_t *a = json_pack("{s:s,s:o}", "kind", "lookup", "key",
                          em_client_b64(key, key_len));
    char *action = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!action)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    int64_t p = partition_of_key(r, key, key_len);
    ember_status s;
    if (p >= 0 && (uint32_t)p < r->partitions) {
        em_job_result res;
        uint32_t part = (uint32_t)p;
        s = em_client_run(r, &part, 1, action, &res, err);
        if (s == EMBER_OK && res.nparts == 1 && res.parts[0].have)
            s = em_records_append(out, res.parts[0].data, res.parts[0].len);
        em_job_result_free(&res);
    } else {
        s = em_client_run_all(r, action, out, err);
    }
    free(action);
    return s;
}

/* ---- sort_by_key: range bounds from a sample (S6) ---------------------- */

typedef struct cand {
    em_keyref ref;
    double weight;
} cand;

static int cand_cmp(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    int c = em_key_compare(&a->ref, &b->ref);
    return c ? c : (a->ref.seq > b->ref.seq) - (a->ref.seq < b->ref.seq);
}

/* Spark's RangePartitioner.determineBounds over the sample. */
static ember_status choose_bounds(em_job_result *res, uint32_t parts,
                                  ember_buf *bounds, uint32_t *nbounds,
                                  ember_error *err)
{
    size_t ncand = 0, cap = 0;
    cand *c = NULL;
    double total = 0;
    for (uint32_t i = 0; i < res->nparts; i++) {
        ember_batch b = {res->parts[i].data, res->parts[i].len, 0};
        ember_batch_cursor bc = ember_batch_cursor_of(&b);
        const uint8_t *rec;
        size_t rl;
        ember_value cnt, keys;
        if (!res->parts[i].have ||
            ember_batch_next(&bc, &rec, &rl) != EMBER_OK ||
            em_rec_pair(rec, rl, &cnt, &keys) != EMBER_OK ||
            cnt.type != EMBER_TYPE_INT || keys.type != EMBER_TYPE_TUPLE) {
            free(c);
            return ember_errorf(err, EMBER_EINTERNAL, "sort_by_key: a "
                                "malformed sample");
        }
        total += (double)cnt.u.i64;
        ember_rec_cursor kc = ember_rec_tuple_cursor(&keys);
        size_t first = ncand;
        ember_value k;
        while (ember_rec_next(&kc, &k) == EMBER_OK) {
            if (ncand == cap) {
                cap = cap ? cap * 2 : 1024;
                cand *g = realloc(c, cap * sizeof *g);
                if (!g) {
                    free(c);
                    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
                }
                c = g;
            }
            c[ncand].ref = (em_keyref){0, k.enc, k.enc, (uint32_t)k.enc_len,
                                       (uint32_t)k.enc_len, i,
                                       (uint32_t)ncand};
            ncand++;
        }
        /* each sampled key stands for count / sampled keys of its
         * partition */
        for (size_t j = first; j < ncand; j++)
            c[j].weight = (double)cnt.u.i64 / (double)(ncand - first);
    }
    *nbounds = 0;
    if (ncand == 0 || parts <= 1 || total == 0) {
        free(c);
        return EMBER_OK;
    }
    qsort(c, ncand, sizeof *c, cand_cmp);
    double sum = 0;
    for (size_t i = 0; i < ncand; i++)
        sum += c[i].weight;
    double step = sum / parts, cum = 0, target = step;
    const cand *prev = NULL;
    for (size_t i = 0; i < ncand && *nbounds + 1 < parts; i++) {
        cum += c[i].weight;
        if (cum < target)
            continue;
        /* duplicate bounds are skipped */
        if (prev && em_key_compare(&c[i].ref, &prev->ref) <= 0)
            continue;
        if (ember_batch_append(bounds, c[i].ref.key, c[i].ref.klen) !=
            EMBER_OK) {
            free(c);
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        }
        (*nbounds)++;
        target += step;
        prev = &c[i];
    }
    free(c);
    return EMBER_OK;
}

ember_rdd *ember_sort_by_key(ember_rdd *r, int ascending, uint32_t n,
                             ember_error *err)
{
    if (!r) {
        ember_errorf(err, EMBER_EINVAL, "sort_by_key: dataset is NULL");
        return NULL;
    }
    uint32_t parts = n ? n : r->partitions;
    ember_buf bounds = ember_buf_heap();
    uint32_t nbounds = 0;
    ember_status s = EMBER_OK;
    if (parts > 1 && r->partitions > 0) {
        /* Spark: min(20 per partition, 1e6) keys, 3x over-sampled */
        uint64_t size = (uint64_t)parts * 20;
        if (size > 1000000)
            size = 1000000;
        uint64_t per = (3 * size + r->partitions - 1) / r->partitions;
        char action[128];
        /* JSON integers are int64: the seed travels as its bits */
        snprintf(action, sizeof action,
                 "{\"kind\":\"sketch\",\"n\":%" PRIu64 ",\"seed\":%" PRId64
                 "}", per, (int64_t)ember_hash64(&r->id, sizeof r->id));
        em_job_result res;
        s = em_client_run(r, NULL, 0, action, &res, err);
        if (s == EMBER_OK)
            s = choose_bounds(&res, parts, &bounds, &nbounds, err);
        em_job_result_free(&res);
    }
    if (s != EMBER_OK) {
        ember_buf_release(&bounds);
        return NULL;
    }
    ember_partitioner p = {EMBER_PART_RANGE, nbounds + 1, {0}, bounds.data,
                           bounds.len, !ascending};
    ember_rdd *out = em_client_keyed_sort(r, &p, ascending, err);
    ember_buf_release(&bounds);
    return out;
}

ember_rdd *ember_sort_by(ember_rdd *r, ember_fn fn, int ascending, uint32_t n,
                         ember_error *err)
{
    ember_rdd *k = ember_key_by(r, fn, err);
    ember_rdd *sorted = k ? ember_sort_by_key(k, ascending, n, err) : NULL;
    return sorted ? ember_values(sorted, err) : NULL;
}
