/*
 * client/dataset.c — datasets: sources, narrow transformations, and the
 * plan document a job sends (docs/plan-format.md).
 */
#include "client_internal.h"

#include "dag/lineage.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dag/base64.h"
#include "ember/kernel/host.h"
#include "ember/kernel/kernel.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "ember/source.h"

json_t *em_client_b64(const void *data, size_t len)
{
    ember_buf b = ember_buf_heap();
    json_t *j = NULL;
    if (em_base64_encode(&b, data, len) == EMBER_OK)
        j = json_stringn(b.len ? (const char *)b.data : "", b.len);
    ember_buf_release(&b);
    return j;
}

json_t *em_client_blob(const void *data, size_t len)
{
    /* 48 KiB of data is 64 KiB of base64: the longest plan string */
    const size_t piece = 49152;
    if (len <= piece)
        return em_client_b64(data, len);
    json_t *a = json_array();
    for (size_t at = 0; a && at < len; at += piece) {
        json_t *c = em_client_b64((const uint8_t *)data + at,
                                  len - at < piece ? len - at : piece);
        if (!c || json_array_append_new(a, c) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *em_client_fn_json(ember_fn fn)
{
    if (!fn.name)
        return NULL;
    if (fn.arg_len == 0)
        return json_string(fn.name);
    return json_pack("{s:s,s:o}", "name", fn.name, "arg",
                     em_client_b64(fn.arg, fn.arg_len));
}

/* The partitioner a dataset's output carries (SEMANTICS S13, the kernel's
 * em_op.out_part): its own for key shuffles, its parent's for operations
 * that keep keys in place, else none. A new reference, or NULL. */
static json_t *output_partitioner(json_t *node, ember_rdd *const *parents,
                                  uint32_t nparents)
{
    const em_op *op = em_op_find(json_string_value(json_object_get(node,
                                                                   "op")));
    if (!op)
        return NULL;
    switch (op->out_part) {
    case EM_OUT_OWN:
        return json_incref(json_object_get(node, "partitioner"));
    case EM_OUT_PARENT:
        return nparents ? json_incref(parents[0]->partitioner) : NULL;
    case EM_OUT_PARENT_IF_ARG:
        return nparents && json_is_true(json_object_get(
                               json_object_get(node, "args"),
                               "preserves_partitioning"))
                   ? json_incref(parents[0]->partitioner)
                   : NULL;
    case EM_OUT_UNION:
        for (uint32_t i = 0; i < nparents; i++)
            if (!parents[i]->partitioner ||
                !json_equal(parents[i]->partitioner, parents[0]->partitioner))
                return NULL;
        return nparents ? json_incref(parents[0]->partitioner) : NULL;
    default:
        return NULL;
    }
}

ember_rdd *em_client_rdd(ember_session *s, json_t *node, uint32_t partitions,
                         ember_rdd *const *parents, uint32_t nparents,
                         ember_error *err)
{
    if (!node) {
        ember_errorf(err, EMBER_ENOMEM, "out of memory");
        return NULL;
    }
    if (nparents > 64) {
        json_decref(node);
        ember_errorf(err, EMBER_EINVAL, "at most 64 parents");
        return NULL;
    }
    for (uint32_t i = 0; i < nparents; i++)
        if (!parents[i] || parents[i]->s != s) {
            json_decref(node);
            ember_errorf(err, EMBER_EINVAL,
                         parents[i] ? "a parent belongs to another session"
                                    : "a parent dataset is NULL");
            return NULL;
        }
    ember_rdd *r = calloc(1, sizeof *r);
    json_t *ps = json_array();
    if (!r || !ps) {
        free(r);
        json_decref(ps);
        json_decref(node);
        ember_errorf(err, EMBER_ENOMEM, "out of memory");
        return NULL;
    }
    r->s = s;
    r->node = node;
    r->partitions = partitions;
    r->nparents = nparents;
    for (uint32_t i = 0; i < nparents; i++) {
        r->parents[i] = parents[i];
        json_array_append_new(ps, json_integer((json_int_t)parents[i]->id));
    }
    pthread_mutex_lock(&s->mu);
    r->id = s->next_id++;
    r->next = s->rdds;
    s->rdds = r;
    pthread_mutex_unlock(&s->mu);
    json_object_set_new(node, "id", json_integer((json_int_t)r->id));
    r->partitioner = output_partitioner(node, parents, nparents);
    if (nparents)
        json_object_set_new(node, "parents", ps);
    else
        json_decref(ps);
    return r;
}

char *em_client_plan(const ember_rdd *r, size_t *len)
{
    if (!r)
        return NULL;
    /* r and its ancestors, each once (a walk with an explicit stack). */
    size_t cap = 64, n = 0, top = 0;
    int locked = 0;
    const ember_rdd **seen = malloc(cap * sizeof *seen);
    const ember_rdd **stack = malloc(cap * sizeof *stack);
    json_t *ds = json_array();
    char *out = NULL;
    if (!seen || !stack || !ds)
        goto done;
    /* a checkpoint's truncation (checkpoint.c) may replace nodes and
     * drop parents from another thread */
    pthread_mutex_lock(&r->s->mu);
    locked = 1;
    stack[top++] = r;
    while (top) {
        const ember_rdd *x = stack[--top];
        int dup = 0;
        for (size_t i = 0; i < n && !dup; i++)
            dup = seen[i] == x;
        if (dup)
            continue;
        if (n == cap || top + x->nparents >= cap) {
            cap = cap * 2 + x->nparents;
            const ember_rdd **a = realloc(seen, cap * sizeof *a);
            if (!a)
                goto done;
            seen = a;
            a = realloc(stack, cap * sizeof *a);
            if (!a)
                goto done;
            stack = a;
        }
        seen[n++] = x;
        json_array_append(ds, x->node);
        for (uint32_t i = 0; i < x->nparents; i++)
            stack[top++] = x->parents[i];
    }
    /* ember_accumulator_new may add to the list from another thread */
    json_t *accums = em_client_accums_json(r->s);
    pthread_mutex_unlock(&r->s->mu);
    locked = 0;
    json_t *doc = json_pack("{s:i,s:O}", "ember_plan", 1, "datasets", ds);
    if (!doc)
        json_decref(accums);
    else if (accums &&
             json_object_set_new(doc, "accumulators", accums) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    if (doc) {
        /* ember_persist and ember_rdd_set_name may change a node from
         * another thread while it is written out */
        pthread_mutex_lock(&r->s->mu);
        out = json_dumps(doc, JSON_COMPACT);
        pthread_mutex_unlock(&r->s->mu);
        json_decref(doc);
        if (out && len)
            *len = strlen(out);
    }
done:
    if (locked)
        pthread_mutex_unlock(&r->s->mu);
    free(seen);
    free(stack);
    json_decref(ds);
    return out;
}

/* ---- sources ---------------------------------------------------------- */

ember_rdd *ember_parallelize(ember_session *s, const ember_batch *records,
                             uint32_t slices, ember_error *err)
{
    if (slices < 1) {
        ember_errorf(err, EMBER_EINVAL,
                     "parallelize: number of slices must be positive");
        return NULL;
    }
    /* Record boundaries, then Spark's slicing: [i*n/k, (i+1)*n/k). */
    ember_batch b = records ? *records : (ember_batch){NULL, 0, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t rl, cap = 1024, n = 0;
    size_t *starts = malloc(cap * sizeof *starts);
    ember_status st;
    while (starts && (starts[n] = (size_t)(c.p - b.data),
                      (st = ember_batch_next(&c, &rec, &rl)) == EMBER_OK)) {
        if (ember_rec_validate(rec, rl, NULL) != EMBER_OK) {
            free(starts);
            ember_errorf(err, EMBER_EINVAL,
                         "parallelize: record %zu is malformed", n);
            return NULL;
        }
        if (++n == cap) {
            size_t *ns = realloc(starts, (cap *= 2) * sizeof *ns);
            if (!ns) {
                free(starts);
                starts = NULL;
                break;
            }
            starts = ns;
        }
    }
    if (!starts) {
        ember_errorf(err, EMBER_ENOMEM, "out of memory");
        return NULL;
    }
    if (b.data && (size_t)(c.p - b.data) != b.len) {
        free(starts);
        ember_errorf(err, EMBER_EINVAL,
                     "parallelize: batch framing is malformed after record "
                     "%zu", n);
        return NULL;
    }
    starts[n] = b.len;
    json_t *sl = json_array();
    for (uint32_t i = 0; sl && i < slices; i++) {
        size_t lo = (size_t)((uint64_t)i * n / slices),
               hi = (size_t)(((uint64_t)i + 1) * n / slices);
        json_array_append_new(
            sl, em_client_blob(hi > lo ? b.data + starts[lo] : NULL,
                               starts[hi] - starts[lo]));
    }
    free(starts);
    json_t *node = json_pack("{s:s,s:I,s:{s:o}}", "op", "parallelize",
                             "partitions", (json_int_t)slices, "args",
                             "slices", sl);
    return em_client_rdd(s, node, slices, NULL, 0, err);
}

ember_rdd *ember_range(ember_session *s, int64_t start, int64_t end,
                       int64_t step, uint32_t slices, ember_error *err)
{
    if (step == 0 || slices < 1) {
        ember_errorf(err, EMBER_EINVAL, step == 0
                                            ? "range: step must not be 0"
                                            : "range: slices must be >= 1");
        return NULL;
    }
    json_t *node = json_pack("{s:s,s:I,s:{s:I,s:I,s:I}}", "op", "range",
                             "partitions", (json_int_t)slices, "args",
                             "start", (json_int_t)start, "end",
                             (json_int_t)end, "step", (json_int_t)step);
    return em_client_rdd(s, node, slices, NULL, 0, err);
}

ember_rdd *ember_source(ember_session *s, const char *component,
                        const void *arg, size_t arg_len,
                        uint32_t min_partitions, ember_error *err)
{
    if (!s || !component || !*component) {
        ember_errorf(err, EMBER_EINVAL, "source: a session and a source "
                     "component are needed");
        return NULL;
    }
    /* A remote session plans on the service, which has the source. */
    if (!s->remote &&
        !em_registry_find(s->registry, EMBER_KIND_SOURCE, component)) {
        ember_errorf(err, EMBER_ENOTFOUND, "source: no source component "
                     "'%s' is loaded", component);
        return NULL;
    }
    if (min_partitions == 0)
        min_partitions = s->default_parallelism < 2 ? s->default_parallelism
                                                    : 2;
    ember_buf splits = ember_buf_heap();
    uint64_t count = 0;
    ember_status st = em_client_splits(s, component, arg, arg_len,
                                       min_partitions, &splits, &count, err);
    ember_rdd *r = NULL;
    if (st == EMBER_OK) {
        json_t *node = json_pack("{s:s,s:I,s:[s],s:{s:o}}", "op", "source",
                                 "partitions", (json_int_t)count, "fns",
                                 component, "args", "splits",
                                 em_client_blob(splits.data, splits.len));
        r = em_client_rdd(s, node, (uint32_t)count, NULL, 0, err);
    }
    ember_buf_release(&splits);
    return r;
}

ember_rdd *ember_text_file(ember_session *s, const char *path,
                           uint32_t min_partitions, ember_error *err)
{
    /* A remote session plans on the service, which has the source. */
    if (!s->remote &&
        !em_registry_find(s->registry, EMBER_KIND_SOURCE, "text.lines")) {
        ember_errorf(err, EMBER_ENOTFOUND,
                     "text_file: the text source plugin (text.lines) is not "
                     "loaded");
        return NULL;
    }
    if (!path || !*path) {
        ember_errorf(err, EMBER_EINVAL, "text_file: empty path");
        return NULL;
    }
    if (min_partitions == 0)
        min_partitions = s->default_parallelism < 2 ? s->default_parallelism
                                                    : 2;
    ember_buf arg = ember_buf_heap(), splits = ember_buf_heap();
    uint64_t count = 0;
    ember_status st = ember_rec_put_string(&arg, path, strlen(path));
    if (st == EMBER_OK)
        st = em_client_splits(s, "text.lines", arg.data, arg.len,
                              min_partitions, &splits, &count, err);
    ember_rdd *r = NULL;
    if (st == EMBER_OK) {
        json_t *node = json_pack("{s:s,s:I,s:{s:s,s:o}}", "op", "text_file",
                                 "partitions", (json_int_t)count, "args",
                                 "path", path, "splits",
                                 em_client_blob(splits.data, splits.len));
        r = em_client_rdd(s, node, (uint32_t)count, NULL, 0, err);
    }
    ember_buf_release(&arg);
    ember_buf_release(&splits);
    return r;
}

ember_rdd *ember_empty(ember_session *s, ember_error *err)
{
    return em_client_rdd(s, json_pack("{s:s,s:i}", "op", "empty",
                                      "partitions", 0),
                         0, NULL, 0, err);
}

/* ---- narrow transformations ------------------------------------------- */

static ember_rdd *unary(ember_rdd *r, const char *op, const ember_fn *fn,
                        json_t *args, ember_error *err)
{
    if (!r) {
        json_decref(args);
        ember_errorf(err, EMBER_EINVAL, "%s: dataset is NULL", op);
        return NULL;
    }
    json_t *node = json_pack("{s:s}", "op", op);
    if (node && fn) {
        json_t *f = em_client_fn_json(*fn);
        if (!f) {
            json_decref(node);
            json_decref(args);
            ember_errorf(err, EMBER_EINVAL, "%s: a function name is needed",
                         op);
            return NULL;
        }
        json_object_set_new(node, "fns", json_pack("[o]", f));
    }
    if (node && args)
        json_object_set_new(node, "args", args);
    else
        json_decref(args);
    return em_client_rdd(r->s, node, r->partitions, &r, 1, err);
}

ember_rdd *ember_map(ember_rdd *r, ember_fn fn, ember_error *err)
{
    return unary(r, "map", &fn, NULL, err);
}

ember_rdd *ember_flat_map(ember_rdd *r, ember_fn fn, ember_error *err)
{
    return unary(r, "flat_map", &fn, NULL, err);
}

ember_rdd *ember_filter(ember_rdd *r, ember_fn fn, ember_error *err)
{
    return unary(r, "filter", &fn, NULL, err);
}

ember_rdd *ember_map_partitions(ember_rdd *r, ember_fn fn, int preserves,
                                ember_error *err)
{
    return unary(r, "map_partitions", &fn,
                 preserves ? json_pack("{s:b}", "preserves_partitioning", 1)
                           : NULL,
                 err);
}

ember_rdd *ember_map_partitions_with_index(ember_rdd *r, ember_fn fn,
                                           int preserves, ember_error *err)
{
    return unary(r, "map_partitions_with_index", &fn,
                 preserves ? json_pack("{s:b}", "preserves_partitioning", 1)
                           : NULL,
                 err);
}

ember_rdd *ember_glom(ember_rdd *r, ember_error *err)
{
    return unary(r, "glom", NULL, NULL, err);
}

ember_rdd *ember_key_by(ember_rdd *r, ember_fn fn, ember_error *err)
{
    return unary(r, "key_by", &fn, NULL, err);
}

ember_rdd *ember_map_values(ember_rdd *r, ember_fn fn, ember_error *err)
{
    return unary(r, "map_values", &fn, NULL, err);
}

ember_rdd *ember_flat_map_values(ember_rdd *r, ember_fn fn, ember_error *err)
{
    return unary(r, "flat_map_values", &fn, NULL, err);
}

ember_rdd *ember_keys(ember_rdd *r, ember_error *err)
{
    return unary(r, "keys", NULL, NULL, err);
}

ember_rdd *ember_values(ember_rdd *r, ember_error *err)
{
    return unary(r, "values", NULL, NULL, err);
}

ember_rdd *ember_sample(ember_rdd *r, int with_replacement, double fraction,
                        uint64_t seed, ember_error *err)
{
    if (!(fraction >= 0) || (!with_replacement && fraction > 1)) {
        ember_errorf(err, EMBER_EINVAL,
                     with_replacement
                         ? "sample: fraction must be >= 0"
                         : "sample: fraction must be in [0, 1] without "
                           "replacement");
        return NULL;
    }
    return unary(r, "sample", NULL,
                 json_pack("{s:b,s:f,s:I}", "with_replacement",
                           with_replacement ? 1 : 0, "fraction", fraction,
                           "seed", (json_int_t)seed),
                 err);
}

ember_rdd *ember_zip_with_unique_id(ember_rdd *r, ember_error *err)
{
    return unary(r, "zip_with_unique_id", NULL, NULL, err);
}

ember_rdd *ember_pipe(ember_rdd *r, const char *command, ember_error *err)
{
    if (!command || !*command) {
        ember_errorf(err, EMBER_EINVAL, "pipe: empty command");
        return NULL;
    }
    return unary(r, "pipe", NULL, json_pack("{s:s}", "command", command),
                 err);
}

ember_rdd *ember_coalesce(ember_rdd *r, uint32_t n, ember_error *err)
{
    if (n < 1) {
        ember_errorf(err, EMBER_EINVAL,
                     "coalesce: number of partitions (%" PRIu32
                     ") must be positive", n);
        return NULL;
    }
    if (!r) {
        ember_errorf(err, EMBER_EINVAL, "coalesce: dataset is NULL");
        return NULL;
    }
    uint32_t parts = n < r->partitions ? n : r->partitions;
    json_t *node = json_pack("{s:s,s:I}", "op", "coalesce", "partitions",
                             (json_int_t)parts);
    return em_client_rdd(r->s, node, parts, &r, 1, err);
}

ember_rdd *ember_union(ember_rdd *const *rdds, uint32_t n, ember_error *err)
{
    if (n < 1 || n > 64 || !rdds || !rdds[0]) {
        ember_errorf(err, EMBER_EINVAL, "union: 1 to 64 datasets needed");
        return NULL;
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += rdds[i] ? rdds[i]->partitions : 0;
    return em_client_rdd(rdds[0]->s, json_pack("{s:s}", "op", "union"),
                         (uint32_t)sum, rdds, n, err);
}

static ember_status same_partitions(const char *op, ember_rdd *const *rdds,
                                    uint32_t n, ember_error *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (!rdds[i])
            return ember_errorf(err, EMBER_EINVAL, "%s: a dataset is NULL",
                                op);
    for (uint32_t i = 1; i < n; i++)
        if (rdds[i]->partitions != rdds[0]->partitions)
            return ember_errorf(err, EMBER_EINVAL,
                                "Can't zip RDDs with unequal numbers of "
                                "partitions: %" PRIu32 " and %" PRIu32,
                                rdds[0]->partitions, rdds[i]->partitions);
    return EMBER_OK;
}

ember_rdd *ember_zip(ember_rdd *a, ember_rdd *b, ember_error *err)
{
    ember_rdd *both[2] = {a, b};
    if (same_partitions("zip", both, 2, err) != EMBER_OK)
        return NULL;
    return em_client_rdd(a->s, json_pack("{s:s}", "op", "zip"),
                         a->partitions, both, 2, err);
}

ember_rdd *ember_zip_partitions(ember_rdd *const *rdds, uint32_t n,
                                ember_fn fn, ember_error *err)
{
    if (n < 2 || n > 4 || !rdds) {
        ember_errorf(err, EMBER_EINVAL, "zip_partitions: 2 to 4 datasets");
        return NULL;
    }
    if (same_partitions("zip_partitions", rdds, n, err) != EMBER_OK)
        return NULL;
    json_t *f = em_client_fn_json(fn);
    if (!f) {
        ember_errorf(err, EMBER_EINVAL, "zip_partitions: a function is needed");
        return NULL;
    }
    return em_client_rdd(rdds[0]->s,
                         json_pack("{s:s,s:[o]}", "op", "zip_partitions",
                                   "fns", f),
                         rdds[0]->partitions, rdds, n, err);
}

ember_rdd *ember_zip_with_index(ember_rdd *r, ember_error *err)
{
    if (!r) {
        ember_errorf(err, EMBER_EINVAL, "zip_with_index: dataset is NULL");
        return NULL;
    }
    /* Spark's ZippedWithIndexRDD: count partitions 0..n-2 (a job, unless
     * there are fewer than 2 partitions), prefix sums are the starts. */
    uint32_t n = r->partitions;
    json_t *starts = json_array();
    int64_t at = 0;
    json_array_append_new(starts, json_integer(0));
    if (n >= 2) {
        uint32_t *parts = malloc((n - 1) * sizeof *parts);
        if (!parts) {
            json_decref(starts);
            ember_errorf(err, EMBER_ENOMEM, "out of memory");
            return NULL;
        }
        for (uint32_t i = 0; i + 1 < n; i++)
            parts[i] = i;
        em_job_result res;
        ember_status st = em_client_run(r, parts, n - 1, "{\"kind\":\"count\"}",
                                        &res, err);
        free(parts);
        for (uint32_t i = 0; st == EMBER_OK && i + 1 < n; i++) {
            ember_batch b = {res.parts[i].data, res.parts[i].len, 1};
            ember_batch_cursor c = ember_batch_cursor_of(&b);
            const uint8_t *rec;
            size_t rl;
            ember_value v;
            ember_rec_cursor rc;
            if (ember_batch_next(&c, &rec, &rl) != EMBER_OK ||
                (rc = ember_rec_cursor_init(rec, rl),
                 ember_rec_next(&rc, &v)) != EMBER_OK ||
                v.type != EMBER_TYPE_INT) {
                st = ember_errorf(err, EMBER_EINTERNAL,
                                  "zip_with_index: bad count result");
                break;
            }
            at += v.u.i64;
            json_array_append_new(starts, json_integer(at));
        }
        em_job_result_free(&res);
        if (st != EMBER_OK) {
            json_decref(starts);
            return NULL;
        }
    }
    return unary(r, "zip_with_index", NULL,
                 json_pack("{s:o}", "starts", starts), err);
}

void ember_rdd_set_name(ember_rdd *r, const char *name)
{
    if (r && name) {
        pthread_mutex_lock(&r->s->mu);
        json_object_set_new(r->node, "name", json_string(name));
        pthread_mutex_unlock(&r->s->mu);
    }
}

uint32_t ember_rdd_partitions(const ember_rdd *r)
{
    return r ? r->partitions : 0;
}

uint64_t ember_rdd_id(const ember_rdd *r)
{
    return r ? r->id : 0;
}

ember_status ember_rdd_describe(const ember_rdd *r, char **out,
                                ember_error *err)
{
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "describe: dataset is NULL");
    size_t len;
    char *plan = em_client_plan(r, &len);
    if (!plan)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_status st = em_plan_describe(plan, len, r->id, out, err);
    free(plan);
    return st;
}
