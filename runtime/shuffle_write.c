/* runtime/shuffle_write.c — see shuffle_write.h. */
#include "runtime/shuffle_write.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg.h"
#include "runtime/bytemap.h"
#include "runtime/combiner.h"
#include "runtime/partition.h"
#include "runtime/recval.h"
#include "runtime/sampling.h"

typedef struct map_ctx {
    const ember_shuffle_vtable *vt;
    void *writer;
    em_partfn *part;
    uint32_t *parts;
    size_t cap_parts;
    uint64_t records_out;
} map_ctx;

/* sample_by_key's map side: each key's fraction, and the generator. */
typedef struct sampler {
    em_bytemap fractions; /* encoded key -> double bits */
    uint64_t rng;
    int with_replacement;
    ember_buf out;
} sampler;

static void sampler_free(sampler *sm)
{
    em_bytemap_free(&sm->fractions);
    ember_buf_release(&sm->out);
}

/* Reads args {"fractions": batch of (key, number) pairs, "seed": int,
 * "with_replacement": bool}. */
static ember_status sampler_init(sampler *sm, const em_node *n,
                                 const json_t *args, uint32_t map_id,
                                 ember_error *err)
{
    em_bytemap_init(&sm->fractions);
    sm->out = ember_buf_heap();
    const json_t *seed = args ? json_object_get(args, "seed") : NULL;
    const json_t *fr = args ? json_object_get(args, "fractions") : NULL;
    sm->with_replacement =
        args && json_is_true(json_object_get(args, "with_replacement"));
    sm->rng = em_rng_seed(json_is_integer(seed)
                              ? (uint64_t)json_integer_value(seed)
                              : 0,
                          map_id);
    em_rng_next(&sm->rng);
    uint8_t *blob = NULL;
    size_t len = 0;
    if (!fr || em_pipe_blob(fr, &blob, &len) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                            " (sample_by_key): args.fractions must be the "
                            "base64 of a batch of (key, fraction) pairs",
                            n->id);
    ember_batch b = {blob, len, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *r;
    size_t rl;
    ember_status s = EMBER_OK;
    while (s == EMBER_OK && ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        ember_value k, v;
        double f = -1;
        if (em_rec_pair(r, rl, &k, &v) == EMBER_OK)
            f = v.type == EMBER_TYPE_DOUBLE ? v.u.f64
                : v.type == EMBER_TYPE_INT  ? (double)v.u.i64
                                            : -1;
        if (!(f >= 0) || (!sm->with_replacement && f > 1)) {
            s = ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                             " (sample_by_key): each fraction must be a "
                             "number in [0, 1] (>= 0 with replacement)",
                             n->id);
            break;
        }
        int added;
        uint64_t *slot = em_bytemap_upsert(&sm->fractions, k.enc, k.enc_len,
                                           &added);
        if (!slot)
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        else
            memcpy(slot, &f, sizeof f);
    }
    free(blob);
    return s;
}

/* Keeps each record of b with its key's fraction (copies: Poisson). */
static ember_status sample(sampler *sm, const em_node *n, const ember_batch *b,
                           ember_batch *kept, ember_error *err)
{
    sm->out.len = 0;
    uint64_t m = 0;
    ember_batch_cursor c = ember_batch_cursor_of(b);
    const uint8_t *r;
    size_t rl;
    while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        ember_value k, v;
        int added;
        uint64_t *slot = NULL;
        if (em_rec_pair(r, rl, &k, &v) != EMBER_OK ||
            !(slot = em_bytemap_upsert(&sm->fractions, k.enc, k.enc_len,
                                       &added)) ||
            added)
            return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                                " (sample_by_key): %s", n->id,
                                slot ? "a key has no fraction"
                                     : "expected (key, value) pairs");
        double f;
        memcpy(&f, slot, sizeof f);
        uint32_t copies = sm->with_replacement ? em_rng_poisson(&sm->rng, f)
                                               : em_rng_unit(&sm->rng) < f;
        for (uint32_t i = 0; i < copies; i++) {
            if (ember_batch_append(&sm->out, r, rl) != EMBER_OK)
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            m++;
        }
    }
    *kept = (ember_batch){sm->out.data, sm->out.len, m};
    return EMBER_OK;
}

/* Tags every record of b with its partition and hands it to the writer. */
static ember_status route(map_ctx *m, const ember_batch *b, ember_error *err)
{
    if (b->count == 0)
        return EMBER_OK;
    if (b->count > m->cap_parts) {
        size_t cap = b->count + 1024;
        uint32_t *g = realloc(m->parts, cap * sizeof *g);
        if (!g)
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        m->parts = g;
        m->cap_parts = cap;
    }
    ember_status s = em_partfn_assign(m->part, b, m->parts, err);
    if (s != EMBER_OK)
        return s;
    ember_error e = {0};
    s = m->vt->write_tagged(m->writer, b, m->parts, &e);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "shuffle write: %s",
                            e.msg[0] ? e.msg : ember_status_name(s));
    m->records_out += b->count;
    return EMBER_OK;
}

/* Bytes of combined records routed at a time: a batch that stays in
 * cache, however many keys the table holds. */
#define FLUSH_BATCH ((size_t)1 << 20)

/* Emits the combiner's entries through route() in batches. */
static ember_status flush(map_ctx *m, em_combiner *c, ember_buf *scratch,
                          ember_error *err)
{
    int done = 0;
    while (!done) {
        scratch->len = 0;
        uint64_t n = 0;
        ember_status s = em_combiner_emit_some(c, scratch, &n, FLUSH_BATCH,
                                               &done, err);
        if (s != EMBER_OK)
            return s;
        ember_batch b = {scratch->data, scratch->len, n};
        s = route(m, &b, err);
        if (s != EMBER_OK)
            return s;
    }
    return EMBER_OK;
}

/* A map-side combine that does not combine is skipped: once the table
 * has seen PROBE_RECORDS records and holds more than 9 in 10 of them as
 * distinct keys (distinct over unique records, reduce_by_key over keys
 * that hardly repeat), the table is flushed and the records that follow
 * go to the shuffle as they are. Only where a record and a map-side
 * combiner are the same thing — reduce_by_key (combiners are values) and
 * distinct — so the reduce side's result is unchanged; not for the fused
 * word count, whose input records are lines. */
#define PROBE_RECORDS ((uint64_t)1 << 18)

static int may_skip_combine(const em_node *reader)
{
    em_combine_kind k = em_combine_kind_of(reader->op->name);
    return k == EM_COMBINE_REDUCE || k == EM_COMBINE_DISTINCT;
}

/* What the map task fuses away (see shuffle_write.h). */
typedef struct fusion {
    int on;
    int words;            /* also flat_map(std.split_words) */
    uint32_t source;      /* the dataset whose records are read instead */
    const uint8_t *value; /* V's encoding (one element) */
    size_t value_len;
} fusion;

/* Whether lineage node `node` is a narrow one-function `op` with `fn`
 * (and not persisted: a fused step is never computed on its own, so its
 * partitions could not be cached). */
static int is_step(const em_node *n, const char *op, const char *fn)
{
    return strcmp(n->op->name, op) == 0 && n->nfns == 1 && n->ndeps == 1 &&
           (!n->storage || strcmp(n->storage, "NONE") == 0) &&
           n->deps[0].kind == EM_DEP_NARROW &&
           strcmp(n->fns[0].name, fn) == 0;
}

static fusion find_fusion(const em_lineage *l, uint32_t node, int combines)
{
    fusion f = {0};
    const em_node *d = &l->nodes[node];
    if (!combines || !is_step(d, "map", "std.pair_with"))
        return f;
    /* std.pair_with's argument: a record of exactly one element, V */
    ember_rec_cursor c = ember_rec_cursor_init(d->fns[0].arg,
                                               d->fns[0].arg_len);
    ember_value v;
    if (ember_rec_next(&c, &v) != EMBER_OK || c.p != c.end)
        return f; /* the function itself reports the bad argument */
    f.on = 1;
    f.value = v.enc;
    f.value_len = v.enc_len;
    f.source = d->deps[0].parent;
    if (is_step(&l->nodes[f.source], "flat_map", "std.split_words")) {
        f.words = 1;
        f.source = l->nodes[f.source].deps[0].parent;
    }
    return f;
}

ember_status em_shuffle_map_task(em_task_env *env, uint32_t node,
                                 em_shuffle_svc *svc, const em_stage_io *io,
                                 uint32_t map_id, uint32_t attempt,
                                 ember_buf *status, ember_error *err)
{
    em_pipe *pipe = NULL;
    const em_lineage *l = env->lineage;
    int64_t ri = em_lineage_find(l, io->reader_dataset);
    if (ri < 0)
        return ember_errorf(err, EMBER_EINVAL, "STAGE: the dataset reading "
                            "shuffle %" PRIu64 " is not in the plan",
                            io->out_shuffle);
    const em_node *reader = &l->nodes[ri];
    map_ctx m = {.vt = em_shuffle_svc_vt(svc)};
    em_combiner *comb = NULL;
    ember_buf scratch = ember_buf_heap();
    uint64_t *lengths = calloc(io->out_partitions, sizeof *lengths);
    ember_status s = lengths ? EMBER_OK
                             : ember_errorf(err, EMBER_ENOMEM,
                                            "out of memory");
    if (s == EMBER_OK)
        s = em_partfn_open(&m.part, reader, map_id, env->registry, env->host,
                           err);
    if (s == EMBER_OK && em_combine_kind_of(reader->op->name) !=
                             EM_COMBINE_NONE)
        s = em_combiner_open(&comb, reader,
                             env->node_args ? env->node_args[ri] : NULL, 1,
                             map_id, env->registry, env->host, err);
    fusion fu = find_fusion(l, node, comb != NULL &&
                                         em_combine_kind_of(reader->op->name)
                                             != EM_COMBINE_DISTINCT);
    if (s == EMBER_OK)
        s = em_pipe_open(&pipe, env, fu.on ? fu.source : node, map_id, err);
    /* No order is asked of the blocks, even for sorts: the reduce side
     * sorts all it gathers (runtime/ops_shuffle.c), as Spark's does, so a
     * map-side sort by key would be work done twice. */
    ember_shuffle_writer_opts wo = {
        .size = sizeof wo,
        .flags = 0,
        .shuffle_id = io->out_shuffle,
        .map_id = map_id,
        .attempt = attempt,
        .num_partitions = io->out_partitions,
    };
    if (s == EMBER_OK) {
        ember_error e = {0};
        s = m.vt->writer_open(em_shuffle_svc_state(svc), &wo, &m.writer, &e);
        if (s != EMBER_OK) {
            m.writer = NULL;
            s = ember_errorf(err, s, "shuffle write: %s",
                             e.msg[0] ? e.msg : ember_status_name(s));
        }
    }
    sampler sm;
    int sampling = strcmp(reader->op->name, "sample_by_key") == 0;
    memset(&sm, 0, sizeof sm);
    if (s == EMBER_OK && sampling)
        s = sampler_init(&sm, reader,
                         env->node_args ? env->node_args[ri] : NULL, map_id,
                         err);
    /* a combine table may use half the shuffle memory; the writer the
     * rest */
    size_t budget = (size_t)(em_shuffle_svc_memory(svc) / 2);
    int probing = comb && !fu.on && may_skip_combine(reader);
    uint64_t probed = 0; /* records the table saw while probing */
    ember_batch b;
    while (s == EMBER_OK && (s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        if (sampling) {
            ember_batch kept;
            s = sample(&sm, reader, &b, &kept, err);
            if (s == EMBER_OK)
                s = route(&m, &kept, err);
        } else if (comb) {
            s = fu.on ? em_combiner_add_fused(
                            comb, &b, fu.value, fu.value_len, &l->nodes[node],
                            fu.words ? &l->nodes[l->nodes[node].deps[0].parent]
                                     : NULL,
                            err)
                      : em_combiner_add(comb, &b, err);
            probed += b.count;
            if (s == EMBER_OK && probing && probed >= PROBE_RECORDS) {
                probing = 0;
                if (em_combiner_count(comb) * 10 > probed * 9) {
                    s = flush(&m, comb, &scratch, err);
                    em_combiner_close(comb);
                    comb = NULL; /* from here on: routed as they come */
                    continue;
                }
            }
            if (s == EMBER_OK && em_combiner_bytes(comb) > budget) {
                s = flush(&m, comb, &scratch, err);
                probing = 0; /* the count no longer tells */
            }
        } else {
            s = route(&m, &b, err);
        }
    }
    if (s == EMBER_END)
        s = comb ? flush(&m, comb, &scratch, err) : EMBER_OK;
    if (s == EMBER_OK) {
        ember_error e = {0};
        s = m.vt->writer_commit(m.writer, lengths, NULL, &e);
        m.writer = NULL;
        if (s != EMBER_OK)
            s = ember_errorf(err, s, "shuffle commit: %s",
                             e.msg[0] ? e.msg : ember_status_name(s));
    }
    if (s == EMBER_OK)
        s = em_map_status_encode(status, lengths, io->out_partitions);
    if (m.writer)
        m.vt->writer_abort(m.writer);
    if (sampling)
        sampler_free(&sm);
    em_pipe_close(pipe);
    em_combiner_close(comb);
    em_partfn_close(m.part);
    free(m.parts);
    free(lengths);
    ember_buf_release(&scratch);
    return s;
}
