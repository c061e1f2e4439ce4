/*
 * client/pairs.c — the key operations of the driver API (ember/ember.h):
 * partitioners, the default-partitioner rule (SEMANTICS S11), partitioner
 * propagation (S13) and every shuffle operation's plan node.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- partitioners ------------------------------------------------------ */

static json_t *hash_part(uint32_t n)
{
    return json_pack("{s:s,s:I}", "kind", "hash", "partitions",
                     (json_int_t)(n ? n : 1));
}

/* The partition count S11 falls back to: ember.default.parallelism when
 * it is set, else the largest of the parents'. */
static uint32_t default_count(ember_rdd *const *rdds, uint32_t n)
{
    ember_session *s = rdds[0]->s;
    char v[32];
    size_t len = 0;
    if (em_conf_get(s->conf, "ember.default.parallelism", v, sizeof v,
                    &len) == EMBER_OK)
        return s->default_parallelism;
    uint32_t max = 0;
    for (uint32_t i = 0; i < n; i++)
        if (rdds[i]->partitions > max)
            max = rdds[i]->partitions;
    return max;
}

/* S11: the partitioner of the parent with the most partitions among those
 * that have one, when eligible; else hash(default_count). */
static json_t *default_partitioner(ember_rdd *const *rdds, uint32_t n)
{
    const ember_rdd *best = NULL;
    uint32_t max_up = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rdds[i]->partitions > max_up)
            max_up = rdds[i]->partitions;
        if (rdds[i]->partitioner &&
            (!best || rdds[i]->partitions > best->partitions))
            best = rdds[i];
    }
    uint32_t dflt = default_count(rdds, n);
    if (best && best->partitions > 0 &&
        (log10((double)max_up) - log10((double)best->partitions) < 1.0 ||
         best->partitions >= dflt))
        return json_deep_copy(best->partitioner);
    return hash_part(dflt);
}

/* The plan form of p, or the default for these parents. */
static json_t *partitioner_json(const ember_partitioner *p,
                                ember_rdd *const *rdds, uint32_t n,
                                ember_error *err)
{
    if (!p || p->kind == EMBER_PART_DEFAULT) {
        if (p && p->partitions)
            return hash_part(p->partitions);
        return default_partitioner(rdds, n);
    }
    switch (p->kind) {
    case EMBER_PART_HASH:
        return hash_part(p->partitions ? p->partitions
                                       : default_count(rdds, n));
    case EMBER_PART_RANGE:
        if (p->partitions == 0 || (!p->bounds && p->bounds_len)) {
            ember_errorf(err, EMBER_EINVAL, "range partitioner: partitions "
                         "and bounds are needed");
            return NULL;
        }
        return json_pack("{s:s,s:I,s:o,s:b}", "kind", "range", "partitions",
                         (json_int_t)p->partitions, "bounds",
                         em_client_b64(p->bounds, p->bounds_len),
                         "descending", p->descending ? 1 : 0);
    case EMBER_PART_FUNCTION: {
        json_t *f = em_client_fn_json(p->fn);
        if (!f || p->partitions == 0) {
            json_decref(f);
            ember_errorf(err, EMBER_EINVAL, "function partitioner: a "
                         "function and partitions >= 1 are needed");
            return NULL;
        }
        return json_pack("{s:s,s:I,s:o}", "kind", "function", "partitions",
                         (json_int_t)p->partitions, "fn", f);
    }
    default:
        ember_errorf(err, EMBER_EINVAL, "unknown partitioner kind %d",
                     (int)p->kind);
        return NULL;
    }
}

static uint32_t part_count(const json_t *pj)
{
    return (uint32_t)json_integer_value(json_object_get(pj, "partitions"));
}

/*
 * A shuffle node: op over parents with partitioner pj (taken), functions
 * fns[0..nfns) and args (taken, nullable).
 */
static ember_rdd *keyed(const char *op, ember_rdd *const *rdds, uint32_t n,
                        json_t *pj, const ember_fn *fns, uint32_t nfns,
                        json_t *args, ember_error *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (!rdds[i]) {
            json_decref(pj);
            json_decref(args);
            ember_errorf(err, EMBER_EINVAL, "%s: dataset is NULL", op);
            return NULL;
        }
    if (!pj) {
        json_decref(args);
        if (err && err->code == 0)
            ember_errorf(err, EMBER_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *node = json_pack("{s:s,s:O}", "op", op, "partitioner", pj);
    uint32_t parts = part_count(pj);
    json_decref(pj);
    if (node && nfns) {
        json_t *list = json_array();
        for (uint32_t i = 0; i < nfns; i++) {
            json_t *f = em_client_fn_json(fns[i]);
            if (!f) {
                json_decref(list);
                json_decref(node);
                json_decref(args);
                ember_errorf(err, EMBER_EINVAL, "%s: function %" PRIu32
                             " needs a name", op, i + 1);
                return NULL;
            }
            json_array_append_new(list, f);
        }
        json_object_set_new(node, "fns", list);
    }
    if (node && args)
        json_object_set_new(node, "args", args);
    else
        json_decref(args);
    return em_client_rdd(rdds[0]->s, node, parts, rdds, n, err);
}

static json_t *zero_args(const uint8_t *zero, size_t len)
{
    return json_pack("{s:o}", "zero", em_client_b64(zero, len));
}

/* ---- single-input operations ------------------------------------------ */

ember_rdd *ember_partition_by(ember_rdd *r, const ember_partitioner *p,
                              ember_error *err)
{
    if (!r) {
        ember_errorf(err, EMBER_EINVAL, "partition_by: dataset is NULL");
        return NULL;
    }
    json_t *pj = partitioner_json(p, &r, 1, err);
    if (pj && r->partitioner && json_equal(pj, r->partitioner)) {
        json_decref(pj);
        return r; /* S13: already partitioned so */
    }
    return keyed("partition_by", &r, 1, pj, NULL, 0, NULL, err);
}

ember_rdd *ember_reduce_by_key(ember_rdd *r, ember_fn fn,
                               const ember_partitioner *p, ember_error *err)
{
    return keyed("reduce_by_key", &r, 1,
                 r ? partitioner_json(p, &r, 1, err) : NULL, &fn, 1, NULL,
                 err);
}

ember_rdd *ember_fold_by_key(ember_rdd *r, const uint8_t *zero,
                             size_t zero_len, ember_fn fn,
                             const ember_partitioner *p, ember_error *err)
{
    if (!zero || !zero_len) {
        ember_errorf(err, EMBER_EINVAL, "fold_by_key: a zero record is "
                     "needed");
        return NULL;
    }
    return keyed("fold_by_key", &r, 1,
                 r ? partitioner_json(p, &r, 1, err) : NULL, &fn, 1,
                 zero_args(zero, zero_len), err);
}

ember_rdd *ember_aggregate_by_key(ember_rdd *r, const uint8_t *zero,
                                  size_t zero_len, ember_fn seq, ember_fn comb,
                                  const ember_partitioner *p, ember_error *err)
{
    if (!zero || !zero_len) {
        ember_errorf(err, EMBER_EINVAL, "aggregate_by_key: a zero record is "
                     "needed");
        return NULL;
    }
    ember_fn fns[2] = {seq, comb};
    return keyed("aggregate_by_key", &r, 1,
                 r ? partitioner_json(p, &r, 1, err) : NULL, fns, 2,
                 zero_args(zero, zero_len), err);
}

ember_rdd *ember_combine_by_key(ember_rdd *r, ember_fn create,
                                ember_fn merge_value,
                                ember_fn merge_combiners,
                                const ember_partitioner *p, ember_error *err)
{
    ember_fn fns[3] = {create, merge_value, merge_combiners};
    return keyed("combine_by_key", &r, 1,
                 r ? partitioner_json(p, &r, 1, err) : NULL, fns, 3, NULL,
                 err);
}

ember_rdd *ember_group_by_key(ember_rdd *r, const ember_partitioner *p,
                              ember_error *err)
{
    return keyed("group_by_key", &r, 1,
                 r ? partitioner_json(p, &r, 1, err) : NULL, NULL, 0, NULL,
                 err);
}

ember_rdd *ember_group_by(ember_rdd *r, ember_fn fn,
                          const ember_partitioner *p, ember_error *err)
{
    ember_rdd *k = ember_key_by(r, fn, err);
    return k ? ember_group_by_key(k, p, err) : NULL;
}

ember_rdd *ember_distinct(ember_rdd *r, uint32_t n, ember_error *err)
{
    if (!r) {
        ember_errorf(err, EMBER_EINVAL, "distinct: dataset is NULL");
        return NULL;
    }
    return keyed("distinct", &r, 1, hash_part(n ? n : r->partitions), NULL,
                 0, NULL, err);
}

ember_rdd *ember_repartition(ember_rdd *r, uint32_t n, ember_error *err)
{
    if (n < 1) {
        ember_errorf(err, EMBER_EINVAL, "repartition: number of partitions "
                     "must be positive");
        return NULL;
    }
    return keyed("repartition", &r, 1, hash_part(n), NULL, 0, NULL, err);
}

ember_rdd *ember_repartition_and_sort_within_partitions(
    ember_rdd *r, const ember_partitioner *p, int ascending, ember_error *err)
{
    return keyed("repartition_and_sort_within_partitions", &r, 1,
                 r ? partitioner_json(p, &r, 1, err) : NULL, NULL, 0,
                 json_pack("{s:b}", "ascending", ascending ? 1 : 0), err);
}

ember_rdd *ember_sample_by_key(ember_rdd *r, int with_replacement,
                               const ember_batch *fractions, uint64_t seed,
                               ember_error *err)
{
    if (!r || !fractions) {
        ember_errorf(err, EMBER_EINVAL, "sample_by_key: a dataset and the "
                     "fractions are needed");
        return NULL;
    }
    json_t *pj = r->partitioner ? json_deep_copy(r->partitioner)
                                : hash_part(r->partitions);
    json_t *args = json_pack("{s:o,s:I,s:b}", "fractions",
                             em_client_blob(fractions->data, fractions->len),
                             "seed", (json_int_t)seed, "with_replacement",
                             with_replacement ? 1 : 0);
    return keyed("sample_by_key", &r, 1, pj, NULL, 0, args, err);
}

/* ---- several inputs ---------------------------------------------------- */

static ember_rdd *two(const char *op, ember_rdd *a, ember_rdd *b,
                      const ember_partitioner *p, int keep_left,
                      ember_error *err)
{
    ember_rdd *both[2] = {a, b};
    if (!a || !b) {
        ember_errorf(err, EMBER_EINVAL, "%s: dataset is NULL", op);
        return NULL;
    }
    if (a->s != b->s) {
        ember_errorf(err, EMBER_EINVAL, "%s: datasets of two sessions", op);
        return NULL;
    }
    json_t *pj;
    if (keep_left && (!p || p->kind == EMBER_PART_DEFAULT) &&
        !(p && p->partitions))
        /* subtract: a's partitioner, else hash(a's partition count) */
        pj = a->partitioner ? json_deep_copy(a->partitioner)
                            : hash_part(a->partitions);
    else
        pj = partitioner_json(p, both, 2, err);
    return keyed(op, both, 2, pj, NULL, 0, NULL, err);
}

ember_rdd *ember_join(ember_rdd *a, ember_rdd *b, const ember_partitioner *p,
                      ember_error *err)
{
    return two("join", a, b, p, 0, err);
}

ember_rdd *ember_left_outer_join(ember_rdd *a, ember_rdd *b,
                                 const ember_partitioner *p, ember_error *err)
{
    return two("left_outer_join", a, b, p, 0, err);
}

ember_rdd *ember_right_outer_join(ember_rdd *a, ember_rdd *b,
                                  const ember_partitioner *p,
                                  ember_error *err)
{
    return two("right_outer_join", a, b, p, 0, err);
}

ember_rdd *ember_full_outer_join(ember_rdd *a, ember_rdd *b,
                                 const ember_partitioner *p, ember_error *err)
{
    return two("full_outer_join", a, b, p, 0, err);
}

ember_rdd *ember_subtract_by_key(ember_rdd *a, ember_rdd *b,
                                 const ember_partitioner *p, ember_error *err)
{
    return two("subtract_by_key", a, b, p, 1, err);
}

ember_rdd *ember_subtract(ember_rdd *a, ember_rdd *b,
                          const ember_partitioner *p, ember_error *err)
{
    return two("subtract", a, b, p, 1, err);
}

ember_rdd *ember_intersection(ember_rdd *a, ember_rdd *b,
                              const ember_partitioner *p, ember_error *err)
{
    return two("intersection", a, b, p, 0, err);
}

ember_rdd *ember_cogroup(ember_rdd *const *rdds, uint32_t n,
                         const ember_partitioner *p, ember_error *err)
{
    if (!rdds || n < 2 || n > 4) {
        ember_errorf(err, EMBER_EINVAL, "cogroup: 2 to 4 datasets");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!rdds[i] || rdds[i]->s != rdds[0]->s) {
            ember_errorf(err, EMBER_EINVAL, "cogroup: dataset %" PRIu32
                         " is NULL or of another session", i);
            return NULL;
        }
    return keyed("cogroup", rdds, n, partitioner_json(p, rdds, n, err), NULL,
                 0, NULL, err);
}

ember_rdd *ember_cartesian(ember_rdd *a, ember_rdd *b, ember_error *err)
{
    ember_rdd *both[2] = {a, b};
    if (!a || !b || a->s != b->s) {
        ember_errorf(err, EMBER_EINVAL, "cartesian: two datasets of one "
                     "session are needed");
        return NULL;
    }
    uint64_t parts = (uint64_t)a->partitions * b->partitions;
    if (parts > 16777216u) {
        ember_errorf(err, EMBER_EINVAL, "cartesian: %" PRIu64 " partitions "
                     "(at most 2^24)", parts);
        return NULL;
    }
    return em_client_rdd(a->s, json_pack("{s:s}", "op", "cartesian"),
                         (uint32_t)parts, both, 2, err);
}

/* ---- for pair_actions.c ------------------------------------------------ */

ember_rdd *em_client_keyed_count(ember_rdd *r, ember_error *err)
{
    return keyed("count_by_key", &r, 1,
                 r ? partitioner_json(NULL, &r, 1, err) : NULL, NULL, 0,
                 NULL, err);
}

ember_rdd *em_client_keyed_sort(ember_rdd *r, const ember_partitioner *p,
                                int ascending, ember_error *err)
{
    return keyed("sort_by_key", &r, 1, partitioner_json(p, &r, 1, err),
                 NULL, 0, json_pack("{s:b}", "ascending", ascending ? 1 : 0),
                 err);
}
