/*
 * runtime/pipeline.c — em_pipe (see pipeline.h): building the operator tree
 * of a partition, the helpers every operator shares, and the sources
 * (parallelize, range, text_file, source, empty).
 */
#include "runtime/ops_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/base64.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"

/* Narrow chains deeper than this are refused rather than risk the stack. */
#define MAX_DEPTH 2048

struct em_pipe {
    em_opnode *root;
};

static _Thread_local int64_t fn_partition = -1;

void em_op_fn_enter(const em_opnode *o)
{
    fn_partition = o->partition;
}

void em_op_fn_leave(void)
{
    fn_partition = -1;
}

int64_t em_pipe_current_partition(void)
{
    return fn_partition;
}

ember_status em_pipe_blob(const json_t *v, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (json_is_string(v))
        return em_base64_decode(out, len, json_string_value(v),
                                json_string_length(v), SIZE_MAX, NULL);
    if (!json_is_array(v))
        return EMBER_EINVAL;
    ember_buf b = ember_buf_heap();
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *c = json_array_get(v, i);
        uint8_t *piece = NULL;
        size_t n = 0;
        if (!json_is_string(c) ||
            em_base64_decode(&piece, &n, json_string_value(c),
                             json_string_length(c), SIZE_MAX, NULL) !=
                EMBER_OK ||
            ember_buf_append(&b, piece, n) != EMBER_OK) {
            free(piece);
            ember_buf_release(&b);
            return EMBER_EINVAL;
        }
        free(piece);
    }
    if (b.len == 0) {
        ember_buf_release(&b);
        return EMBER_OK;
    }
    *out = b.data; /* a heap ember_buf's memory is malloc'd */
    *len = b.len;
    return EMBER_OK;
}

json_t **em_pipe_args_parse(const em_lineage *l, ember_error *err)
{
    json_t **a = calloc(l->count ? l->count : 1, sizeof *a);
    if (!a) {
        ember_errorf(err, EMBER_ENOMEM, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < l->count; i++) {
        if (!l->nodes[i].args_json)
            continue;
        json_error_t je;
        a[i] = json_loads(l->nodes[i].args_json, 0, &je);
        if (!a[i]) {
            ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64 ": args: %s",
                         l->nodes[i].id, je.text);
            em_pipe_args_free(a, l->count);
            return NULL;
        }
    }
    return a;
}

void em_pipe_args_free(json_t **args, uint32_t count)
{
    for (uint32_t i = 0; args && i < count; i++)
        json_decref(args[i]);
    free(args);
}

ember_status em_op_fail(const em_opnode *o, ember_error *err,
                        ember_status code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const em_node *n = o->node;
    const char *fn = n->nfns ? n->fns[0].name : NULL;
    return ember_errorf(err, code,
                        "dataset %" PRIu64 " (%s%s%s) partition %" PRIu32
                        ": %s", n->id, n->op->name, fn ? " " : "",
                        fn ? fn : "", o->partition, msg);
}

ember_status em_op_check_cancel(const em_opnode *o, ember_error *err)
{
    if (o->env->cancel && atomic_load(o->env->cancel))
        return ember_errorf(err, EMBER_ECANCELED, "task killed");
    return EMBER_OK;
}

ember_status em_op_arg_int(const em_opnode *o, const char *key, int64_t dflt,
                           int64_t *out, ember_error *err)
{
    json_t *v = o->args ? json_object_get(o->args, key) : NULL;
    if (!v) {
        *out = dflt;
        return EMBER_OK;
    }
    if (!json_is_integer(v))
        return em_op_fail(o, err, EMBER_EINVAL,
                          "args.%s must be an integer", key);
    *out = (int64_t)json_integer_value(v);
    return EMBER_OK;
}

ember_status em_op_arg_double(const em_opnode *o, const char *key,
                              double dflt, double *out, ember_error *err)
{
    json_t *v = o->args ? json_object_get(o->args, key) : NULL;
    if (!v) {
        *out = dflt;
        return EMBER_OK;
    }
    if (!json_is_number(v))
        return em_op_fail(o, err, EMBER_EINVAL, "args.%s must be a number",
                          key);
    *out = json_number_value(v);
    return EMBER_OK;
}

ember_status em_op_open_fn(em_opnode *o, uint32_t i, ember_error *err)
{
    const em_fn_ref *f = &o->node->fns[i];
    const em_component *c =
        o->env->registry
            ? em_registry_find(o->env->registry, EMBER_KIND_FUNCTION, f->name)
            : NULL;
    if (!c)
        return em_op_fail(o, err, EMBER_ENOTFOUND,
                          "function '%s' is not loaded on this executor",
                          f->name);
    const ember_function_vtable *vt = c->vtable;
    if (vt->shape != EMBER_FN_MAP || !vt->map_batch)
        return em_op_fail(o, err, EMBER_EINVAL,
                          "'%s' is a reduce function; %s needs a map function",
                          f->name, o->node->op->name);
    o->fn = vt;
    if (vt->open) {
        ember_error e = {0};
        em_op_fn_enter(o);
        ember_status s =
            vt->open(o->env->host, f->arg, f->arg_len, &o->fn_state, &e);
        em_op_fn_leave();
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "%s: open failed: %s", f->name,
                              e.msg[0] ? e.msg : ember_status_name(s));
    }
    o->fn_open = 1;
    return EMBER_OK;
}

void em_op_free(em_opnode *o)
{
    if (!o)
        return;
    if (o->close)
        o->close(o);
    for (uint32_t i = 0; i < o->nin; i++)
        em_op_free(o->in[i]);
    if (o->fn_open && o->fn->close)
        o->fn->close(o->fn_state);
    if (o->reader && o->src)
        o->src->close(o->reader);
    if (o->args_owned)
        json_decref(o->args);
    ember_buf_release(&o->buf);
    ember_buf_release(&o->buf2);
    free(o);
}

/* ---- sources ---------------------------------------------------------- */

/* parallelize: args.slices[partition] is the base64 batch of the slice
 * (the driver slices as Spark does, S16); one batch, then the end. */
static ember_status parallelize_next(em_opnode *o, ember_batch *b,
                                     ember_error *err)
{
    if (o->done)
        return EMBER_END;
    o->done = 1;
    json_t *sl = o->args ? json_object_get(o->args, "slices") : NULL;
    json_t *one = json_is_array(sl) ? json_array_get(sl, o->partition) : NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    ember_status s = one ? em_pipe_blob(one, &data, &len) : EMBER_EINVAL;
    if (s != EMBER_OK)
        return em_op_fail(o, err, s == EMBER_ENOMEM ? s : EMBER_EINVAL,
                          "args.slices[%" PRIu32 "] must be a base64 batch "
                          "(a string, or a list of strings)", o->partition);
    o->buf.len = 0;
    s = ember_buf_append(&o->buf, data, len);
    free(data);
    if (s != EMBER_OK)
        return em_op_fail(o, err, s, "out of memory");
    ember_batch in = {o->buf.data, o->buf.len, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&in);
    const uint8_t *r;
    size_t rl;
    uint64_t n = 0;
    while ((s = ember_batch_next(&c, &r, &rl)) == EMBER_OK) {
        if (ember_rec_validate(r, rl, NULL) != EMBER_OK)
            return em_op_fail(o, err, EMBER_EINVAL,
                              "record %" PRIu64 " of the slice is malformed",
                              n);
        n++;
    }
    if (s != EMBER_END)
        return em_op_fail(o, err, EMBER_EINVAL, "slice framing is malformed");
    o->env->records_in += n;
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

/* range: start, end (exclusive), step; partition i holds positions
 * [i*len/n, (i+1)*len/n) of the sequence, as Spark slices a range. */
static ember_status range_next(em_opnode *o, ember_batch *b,
                               ember_error *err)
{
    if (o->pos >= o->count)
        return EMBER_END;
    ember_status s = em_op_check_cancel(o, err);
    if (s != EMBER_OK)
        return s;
    o->buf.len = 0;
    uint64_t n = 0;
    while (o->pos < o->count && o->buf.len < o->env->batch_bytes) {
        int64_t v = (int64_t)((uint64_t)o->i0 + o->pos * (uint64_t)o->step);
        uint8_t rec[9];
        ember_buf rb = ember_buf_fixed(rec, sizeof rec);
        ember_rec_put_int(&rb, v);
        if ((s = ember_batch_append(&o->buf, rec, rb.len)) != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
        o->pos++;
        n++;
    }
    o->env->records_in += n;
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

static ember_status range_init(em_opnode *o, ember_error *err)
{
    int64_t start, end, step;
    ember_status s;
    if ((s = em_op_arg_int(o, "start", 0, &start, err)) != EMBER_OK ||
        (s = em_op_arg_int(o, "end", 0, &end, err)) != EMBER_OK ||
        (s = em_op_arg_int(o, "step", 1, &step, err)) != EMBER_OK)
        return s;
    if (step == 0)
        return em_op_fail(o, err, EMBER_EINVAL, "args.step must not be 0");
    /* Number of elements, in unsigned arithmetic to survive wide ranges. */
    uint64_t len = 0;
    if ((step > 0 && end > start) || (step < 0 && end < start)) {
        uint64_t d = step > 0 ? (uint64_t)end - (uint64_t)start
                              : (uint64_t)start - (uint64_t)end;
        uint64_t m = step > 0 ? (uint64_t)step
                              : (uint64_t)(-(step + 1)) + 1;
        len = d / m + (d % m != 0);
    }
    uint64_t n = o->node->partitions;
    unsigned __int128 lo = (unsigned __int128)o->partition * len / n;
    unsigned __int128 hi = (unsigned __int128)(o->partition + 1) * len / n;
    o->i0 = (int64_t)((uint64_t)start + (uint64_t)lo * (uint64_t)step);
    o->step = step;
    o->pos = 0;
    o->count = (uint64_t)(hi - lo);
    o->next = range_next;
    return EMBER_OK;
}

/* text_file / source: args.splits is a base64 batch of split records made
 * by the source's plan() on the driver; this partition reads split i. */
static ember_status source_next(em_opnode *o, ember_batch *b,
                                ember_error *err)
{
    if (o->done)
        return EMBER_END;
    ember_status s = em_op_check_cancel(o, err);
    if (s != EMBER_OK)
        return s;
    o->buf.len = 0;
    uint64_t n = 0;
    ember_error e = {0};
    s = o->src->read(o->reader, o->env->batch_bytes, &o->buf, &n, &e);
    if (s == EMBER_END) {
        o->done = 1;
        if (o->buf.len == 0)
            return EMBER_END;
        s = EMBER_OK;
    }
    if (s != EMBER_OK)
        return em_op_fail(o, err, s, "%s", e.msg[0] ? e.msg
                                                    : ember_status_name(s));
    o->env->records_in += n;
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

static ember_status source_init(em_opnode *o, const char *component,
                                ember_error *err)
{
    const em_component *c =
        o->env->registry
            ? em_registry_find(o->env->registry, EMBER_KIND_SOURCE, component)
            : NULL;
    if (!c)
        return em_op_fail(o, err, EMBER_ENOTFOUND,
                          "source '%s' is not loaded on this executor",
                          component);
    o->src = c->vtable;
    json_t *sp = o->args ? json_object_get(o->args, "splits") : NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    ember_status s = sp ? em_pipe_blob(sp, &data, &len) : EMBER_EINVAL;
    if (s != EMBER_OK)
        return em_op_fail(o, err, s == EMBER_ENOMEM ? s : EMBER_EINVAL,
                          "args.splits must be the base64 batch of the "
                          "splits (a string, or a list of strings)");
    ember_batch all = {data, len, 0};
    ember_batch_cursor cur = ember_batch_cursor_of(&all);
    const uint8_t *r = NULL;
    size_t rl = 0;
    for (uint32_t i = 0; i <= o->partition; i++)
        if ((s = ember_batch_next(&cur, &r, &rl)) != EMBER_OK)
            break;
    if (s != EMBER_OK) {
        free(data);
        return em_op_fail(o, err, EMBER_EINVAL,
                          "args.splits has no split for this partition");
    }
    ember_error e = {0};
    s = o->src->open(o->env->host, r, rl, &o->reader, &e);
    free(data);
    if (s != EMBER_OK) {
        o->reader = NULL;
        return em_op_fail(o, err, s, "%s", e.msg[0] ? e.msg
                                                    : ember_status_name(s));
    }
    o->next = source_next;
    return EMBER_OK;
}

static ember_status empty_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    (void)o, (void)b, (void)err;
    return EMBER_END;
}

ember_status em_op_init_source(em_opnode *o, ember_error *err)
{
    const char *op = o->node->op->name;
    if (strcmp(op, "parallelize") == 0) {
        o->next = parallelize_next;
        return EMBER_OK;
    }
    if (strcmp(op, "range") == 0)
        return range_init(o, err);
    if (strcmp(op, "text_file") == 0)
        return source_init(o, o->node->nfns ? o->node->fns[0].name
                                            : "text.lines", err);
    if (strcmp(op, "source") == 0)
        return source_init(o, o->node->fns[0].name, err);
    if (strcmp(op, "empty") == 0) {
        o->next = empty_next;
        return EMBER_OK;
    }
    return EMBER_EUNSUPPORTED;
}

/* ---- building --------------------------------------------------------- */

em_opnode *em_op_new(em_task_env *env, uint32_t index, uint32_t partition,
                     uint32_t depth)
{
    em_opnode *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->env = env;
    o->node = &env->lineage->nodes[index];
    o->index = index;
    o->partition = partition;
    o->depth = depth;
    o->buf = ember_buf_heap();
    o->buf2 = ember_buf_heap();
    return o;
}

ember_status em_op_build(em_opnode **out, em_task_env *env, uint32_t index,
                         uint32_t partition, uint32_t depth, ember_error *err)
{
    const em_node *n = &env->lineage->nodes[index];
    if (env->blocks && n->storage && strcmp(n->storage, "NONE") != 0)
        return em_op_build_cached(out, env, index, partition, depth, err);
    return em_op_build_uncached(out, env, index, partition, depth, err);
}

ember_status em_op_build_uncached(em_opnode **out, em_task_env *env,
                                  uint32_t index, uint32_t partition,
                                  uint32_t depth, ember_error *err)
{
    *out = NULL;
    const em_node *n = &env->lineage->nodes[index];
    if (depth > MAX_DEPTH)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "dataset %" PRIu64 ": more than %d narrow "
                            "operations in one stage", n->id, MAX_DEPTH);
    em_opnode *o = em_op_new(env, index, partition, depth);
    if (!o)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_status s = EMBER_OK;
    if (env->node_args) {
        o->args = env->node_args[index];
    } else if (n->args_json) {
        json_error_t je;
        o->args = json_loads(n->args_json, 0, &je);
        o->args_owned = 1;
        if (!o->args) {
            s = em_op_fail(o, err, EMBER_EINVAL, "args: %s", je.text);
            goto fail;
        }
    }
    s = n->op->deps != EM_OP_DEPS_NARROW ? em_op_init_shuffled(o, err)
                                         : em_op_init_source(o, err);
    if (s == EMBER_EUNSUPPORTED)
        s = em_op_init_fn(o, err);
    if (s == EMBER_EUNSUPPORTED)
        s = em_op_init_misc(o, err);
    if (s == EMBER_EUNSUPPORTED)
        s = em_op_init_pipe(o, err);
    if (s == EMBER_EUNSUPPORTED)
        s = em_op_init_checkpoint(o, err);
    if (s == EMBER_EUNSUPPORTED)
        s = em_op_fail(o, err, EMBER_EUNSUPPORTED,
                       "operation '%s' is not available in this build",
                       n->op->name);
    if (s != EMBER_OK)
        goto fail;
    *out = o;
    return EMBER_OK;
fail:
    em_op_free(o);
    return s;
}

ember_status em_pipe_open(em_pipe **out, em_task_env *env, uint32_t node,
                          uint32_t partition, ember_error *err)
{
    *out = NULL;
    if (env->batch_bytes < 4096)
        env->batch_bytes = 4096;
    em_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_status s = em_op_build(&p->root, env, node, partition, 0, err);
    if (s != EMBER_OK) {
        free(p);
        return s;
    }
    *out = p;
    return EMBER_OK;
}

ember_status em_pipe_next(em_pipe *p, ember_batch *b, ember_error *err)
{
    ember_status s = em_op_check_cancel(p->root, err);
    if (s != EMBER_OK)
        return s;
    return p->root->next(p->root, b, err);
}

void em_pipe_close(em_pipe *p)
{
    if (!p)
        return;
    em_op_free(p->root);
    free(p);
}
