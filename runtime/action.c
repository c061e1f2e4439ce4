/* runtime/action.c — the per-partition half of actions (see action.h). */
#include "runtime/action.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dag/base64.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "ember/sink.h"
#include "runtime/bytemap.h"
#include "runtime/recval.h"

ember_status em_result_put(ember_buf *out, const uint8_t *rec, size_t len)
{
    return ember_batch_append(out, rec, len);
}

ember_status em_action_fn(const em_registry *registry, const json_t *ref,
                          uint32_t shape, const ember_function_vtable **vt,
                          uint8_t **arg, size_t *arg_len, const char **name,
                          ember_error *err)
{
    *arg = NULL;
    *arg_len = 0;
    const json_t *n = json_is_object(ref) ? json_object_get(ref, "name")
                                          : ref;
    if (!json_is_string(n))
        return ember_errorf(err, EMBER_EINVAL,
                            "action: a function reference needs a name");
    *name = json_string_value(n);
    const em_component *c =
        registry ? em_registry_find(registry, EMBER_KIND_FUNCTION, *name)
                 : NULL;
    if (!c)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "action: function '%s' is not loaded", *name);
    *vt = c->vtable;
    if (shape && (*vt)->shape != shape)
        return ember_errorf(err, EMBER_EINVAL,
                            "action: '%s' is a %s function; this action "
                            "needs a %s function", *name,
                            (*vt)->shape == EMBER_FN_MAP ? "map" : "reduce",
                            shape == EMBER_FN_MAP ? "map" : "reduce");
    const json_t *a = json_is_object(ref) ? json_object_get(ref, "arg") : NULL;
    if (a) {
        if (!json_is_string(a) ||
            em_base64_decode(arg, arg_len, json_string_value(a),
                             json_string_length(a), SIZE_MAX, NULL) !=
                EMBER_OK)
            return ember_errorf(err, EMBER_EINVAL,
                                "action: '%s' arg is not canonical base64",
                                *name);
    }
    return EMBER_OK;
}

/* ---- folds: reduce / fold / aggregate --------------------------------- */

static ember_status run_fold(em_task_env *env, em_pipe *pipe,
                             const json_t *action, int with_zero,
                             ember_buf *out, ember_error *err)
{
    const ember_function_vtable *vt;
    uint8_t *arg = NULL, *zero = NULL;
    size_t arg_len, zero_len = 0;
    const char *name;
    void *state = NULL;
    int opened = 0;
    ember_buf acc = ember_buf_heap(), next = ember_buf_heap();
    int have = 0;
    ember_status s = em_action_fn(env->registry,
                                  json_object_get(action, "fn"),
                                  EMBER_FN_REDUCE, &vt, &arg, &arg_len, &name,
                                  err);
    if (s != EMBER_OK)
        goto out;
    if (with_zero) {
        const json_t *z = json_object_get(action, "zero");
        if (!json_is_string(z) ||
            em_base64_decode(&zero, &zero_len, json_string_value(z),
                             json_string_length(z), SIZE_MAX, NULL) !=
                EMBER_OK ||
            ember_rec_validate(zero, zero_len, NULL) != EMBER_OK) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "action: zero must be base64 of one record");
            goto out;
        }
        if ((s = ember_buf_append(&acc, zero, zero_len)) != EMBER_OK)
            goto nomem;
        have = 1;
    }
    if (vt->open) {
        ember_error e = {0};
        if ((s = vt->open(env->host, arg, arg_len, &state, &e)) != EMBER_OK) {
            s = ember_errorf(err, s, "%s: open failed: %s", name, e.msg);
            goto out;
        }
    }
    opened = 1;
    ember_batch b;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        if (b.count == 0)
            continue;
        ember_error e = {0};
        next.len = 0;
        s = vt->reduce(state, have ? acc.data : NULL, have ? acc.len : 0, &b,
                       &next, &e);
        if (s != EMBER_OK) {
            s = ember_errorf(err, s, "%s partition %" PRIu32 ": %s", name,
                             env->partition,
                             e.msg[0] ? e.msg : ember_status_name(s));
            goto out;
        }
        ember_buf t = acc;
        acc = next;
        next = t;
        have = 1;
    }
    if (s != EMBER_END)
        goto out;
    s = have ? em_result_put(out, acc.data, acc.len) : EMBER_OK;
    if (s != EMBER_OK)
        goto nomem;
    goto out;
nomem:
    s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
out:
    if (opened && vt->close)
        vt->close(state);
    free(arg);
    free(zero);
    ember_buf_release(&acc);
    ember_buf_release(&next);
    return s;
}

/* ---- take_ordered ----------------------------------------------------- */

typedef struct span {
    size_t off, len;
} span;

typedef struct order_ctx {
    const uint8_t *base;
    int desc;
} order_ctx;

static _Thread_local order_ctx sort_ctx;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(sort_ctx.base + x->off, sort_ctx.base + y->off, n);
    if (c == 0)
        c = (x->len > y->len) - (x->len < y->len);
    return sort_ctx.desc ? -c : c;
}

/* Keeps the best n of spans (sorted), compacting the arena. */
static ember_status trim(ember_buf *arena, span **sp, size_t *count,
                         size_t n, int desc)
{
    if (*count == 0)
        return EMBER_OK;
    sort_ctx = (order_ctx){arena->data, desc};
    qsort(*sp, *count, sizeof **sp, cmp_span);
    if (*count > n)
        *count = n;
    ember_buf fresh = ember_buf_heap();
    for (size_t i = 0; i < *count; i++) {
        size_t off = fresh.len;
        if (ember_buf_append(&fresh, arena->data + (*sp)[i].off,
                             (*sp)[i].len) != EMBER_OK) {
            ember_buf_release(&fresh);
            return EMBER_ENOMEM;
        }
        (*sp)[i].off = off;
    }
    ember_buf_release(arena);
    *arena = fresh;
    return EMBER_OK;
}

static ember_status run_take_ordered(em_pipe *pipe, uint64_t n, int desc,
                                     ember_buf *out, ember_error *err)
{
    ember_buf arena = ember_buf_heap();
    span *sp = NULL;
    size_t count = 0, cap = 0;
    ember_status s;
    ember_batch b;
    if (n == 0)
        return EMBER_OK;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            if (count == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                span *ns = realloc(sp, ncap * sizeof *ns);
                if (!ns)
                    goto nomem;
                sp = ns;
                cap = ncap;
            }
            sp[count++] = (span){arena.len, rl};
            if (ember_buf_append(&arena, r, rl) != EMBER_OK)
                goto nomem;
            if (count > n && count - n >= n + 1024 &&
                trim(&arena, &sp, &count, (size_t)n, desc) != EMBER_OK)
                goto nomem;
        }
    }
    if (s != EMBER_END)
        goto out;
    if (trim(&arena, &sp, &count, (size_t)n, desc) != EMBER_OK)
        goto nomem;
    s = EMBER_OK;
    for (size_t i = 0; i < count && s == EMBER_OK; i++)
        s = em_result_put(out, arena.data + sp[i].off, sp[i].len);
    if (s != EMBER_OK)
        goto nomem;
    goto out;
nomem:
    s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
out:
    free(sp);
    ember_buf_release(&arena);
    return s;
}

/* ---- count_by_value, stats, foreach, save ----------------------------- */

static ember_status run_count_by_value(em_pipe *pipe, ember_buf *out,
                                       ember_error *err)
{
    em_bytemap m;
    em_bytemap_init(&m);
    ember_status s;
    ember_batch b;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            int added;
            uint64_t *v = em_bytemap_upsert(&m, r, rl, &added);
            if (!v) {
                em_bytemap_free(&m);
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            }
            (*v)++;
        }
    }
    if (s == EMBER_END) {
        s = EMBER_OK;
        for (size_t i = 0; i < m.cap && s == EMBER_OK; i++) {
            const em_bytemap_slot *sl = &m.slots[i];
            uint8_t kbuf[EM_BYTEMAP_INLINE];
            if (!sl->tag)
                continue;
            size_t mark;
            s = ember_batch_frame_begin(out, &mark);
            if (s == EMBER_OK)
                s = em_rec_put_as_value(out, em_bytemap_key(&m, sl, kbuf),
                                        sl->len);
            if (s == EMBER_OK)
                s = ember_rec_put_int(out, (int64_t)sl->value);
            if (s == EMBER_OK)
                s = ember_batch_frame_end(out, mark);
        }
        if (s != EMBER_OK)
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    em_bytemap_free(&m);
    return s;
}

/* Spark's StatCounter over numeric single-element records. */
static ember_status run_stats(em_task_env *env, em_pipe *pipe, ember_buf *out,
                              ember_error *err)
{
    int64_t n = 0;
    double mu = 0, m2 = 0, mx = -INFINITY, mn = INFINITY;
    ember_status s;
    ember_batch b;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            ember_rec_cursor rc = ember_rec_cursor_init(r, rl);
            ember_value v;
            double x;
            if (ember_rec_next(&rc, &v) != EMBER_OK || rc.p != rc.end ||
                (v.type != EMBER_TYPE_INT && v.type != EMBER_TYPE_DOUBLE))
                return ember_errorf(err, EMBER_EINVAL,
                                    "stats partition %" PRIu32 ": record "
                                    "is not one number", env->partition);
            x = v.type == EMBER_TYPE_INT ? (double)v.u.i64 : v.u.f64;
            double delta = x - mu;
            n++;
            mu += delta / (double)n;
            m2 += delta * (x - mu);
            /* as Scala's math.max/min: NaN wins */
            if (isnan(x) || x > mx)
                mx = isnan(mx) ? mx : x;
            if (isnan(x) || x < mn)
                mn = isnan(mn) ? mn : x;
        }
    }
    if (s != EMBER_END)
        return s;
    ember_buf rec = ember_buf_heap();
    s = ember_rec_put_int(&rec, n);
    if (s == EMBER_OK)
        s = ember_rec_put_double(&rec, mu);
    if (s == EMBER_OK)
        s = ember_rec_put_double(&rec, m2);
    if (s == EMBER_OK)
        s = ember_rec_put_double(&rec, mx);
    if (s == EMBER_OK)
        s = ember_rec_put_double(&rec, mn);
    if (s == EMBER_OK)
        s = em_result_put(out, rec.data, rec.len);
    ember_buf_release(&rec);
    return s == EMBER_OK ? s : ember_errorf(err, s, "out of memory");
}

static ember_status run_foreach(em_task_env *env, em_pipe *pipe,
                                const json_t *action, ember_error *err)
{
    const ember_function_vtable *vt;
    uint8_t *arg;
    size_t arg_len;
    const char *name;
    void *state = NULL;
    ember_status s = em_action_fn(env->registry, json_object_get(action, "fn"),
                                  EMBER_FN_MAP, &vt, &arg, &arg_len, &name,
                                  err);
    if (s != EMBER_OK)
        return s;
    if (vt->open) {
        ember_error e = {0};
        if ((s = vt->open(env->host, arg, arg_len, &state, &e)) != EMBER_OK) {
            free(arg);
            return ember_errorf(err, s, "%s: open failed: %s", name, e.msg);
        }
    }
    free(arg);
    ember_buf sink = ember_buf_heap();
    ember_batch b;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        uint64_t n = 0;
        ember_error e = {0};
        sink.len = 0;
        if ((s = vt->map_batch(state, &b, &sink, &n, &e)) != EMBER_OK) {
            s = ember_errorf(err, s, "%s partition %" PRIu32 ": %s", name,
                             env->partition,
                             e.msg[0] ? e.msg : ember_status_name(s));
            break;
        }
    }
    if (s == EMBER_END)
        s = EMBER_OK;
    ember_buf_release(&sink);
    if (vt->close)
        vt->close(state);
    return s;
}

static ember_status run_save(em_task_env *env, em_pipe *pipe,
                             const json_t *action, em_commit_ask_fn ask,
                             void *ask_ctx, ember_error *err)
{
    const json_t *sk = json_object_get(action, "sink");
    const json_t *a = json_object_get(action, "arg");
    const char *name = json_is_string(sk) ? json_string_value(sk) : "";
    const em_component *c =
        env->registry ? em_registry_find(env->registry, EMBER_KIND_SINK, name)
                      : NULL;
    if (!c)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "save: sink '%s' is not loaded", name);
    const ember_sink_vtable *vt = c->vtable;
    uint8_t *arg = NULL;
    size_t arg_len = 0;
    if (a && (!json_is_string(a) ||
              em_base64_decode(&arg, &arg_len, json_string_value(a),
                               json_string_length(a), SIZE_MAX, NULL) !=
                  EMBER_OK))
        return ember_errorf(err, EMBER_EINVAL,
                            "save: arg is not canonical base64");
    void *w = NULL;
    ember_error e = {0};
    ember_status s = vt->open(env->host, arg, arg_len, env->partition,
                              env->attempt, &w, &e);
    free(arg);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "%s partition %" PRIu32 ": %s", name,
                            env->partition, e.msg);
    ember_batch b;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        if ((s = vt->write(w, &b, &e)) != EMBER_OK) {
            s = ember_errorf(err, s, "%s partition %" PRIu32 ": %s", name,
                             env->partition, e.msg);
            break;
        }
    }
    if (s != EMBER_END) {
        vt->abort(w);
        return s;
    }
    int allowed = ask ? ask(ask_ctx) : 1;
    if (allowed != 1) {
        vt->abort(w);
        return allowed < 0
                   ? ember_errorf(err, (ember_status)allowed,
                                  "save partition %" PRIu32 ": could not "
                                  "reach the commit arbiter", env->partition)
                   : ember_errorf(err, EMBER_ECANCELED,
                                  "save partition %" PRIu32 ": another "
                                  "attempt committed this partition",
                                  env->partition);
    }
    if ((s = vt->commit(w, &e)) != EMBER_OK)
        return ember_errorf(err, s, "%s partition %" PRIu32 ": commit: %s",
                            name, env->partition, e.msg);
    return EMBER_OK;
}

/* ---- dispatch --------------------------------------------------------- */

static ember_status run_take(em_pipe *pipe, uint64_t n, int all,
                             ember_buf *out, ember_error *err)
{
    ember_status s;
    ember_batch b;
    uint64_t got = 0;
    if (!all && n == 0)
        return EMBER_OK;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        if (all || got + b.count <= n) {
            if (ember_buf_append(out, b.data, b.len) != EMBER_OK)
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            got += b.count;
        } else {
            ember_batch_cursor c = ember_batch_cursor_of(&b);
            const uint8_t *r;
            size_t rl;
            while (got < n && ember_batch_next(&c, &r, &rl) == EMBER_OK) {
                if (em_result_put(out, r, rl) != EMBER_OK)
                    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
                got++;
            }
        }
        if (!all && got >= n)
            return EMBER_OK; /* the rest of the partition is never read */
    }
    return s == EMBER_END ? EMBER_OK : s;
}

static ember_status run_count(em_pipe *pipe, ember_buf *out, ember_error *err)
{
    ember_status s;
    ember_batch b;
    uint64_t n = 0;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK)
        n += b.count;
    if (s != EMBER_END)
        return s;
    uint8_t rec[9];
    ember_buf rb = ember_buf_fixed(rec, sizeof rec);
    ember_rec_put_int(&rb, (int64_t)n);
    return em_result_put(out, rec, rb.len);
}

ember_status em_action_run(em_task_env *env, em_pipe *pipe,
                           const json_t *action, em_commit_ask_fn ask,
                           void *ask_ctx, ember_buf *out, ember_error *err)
{
    const json_t *k = action ? json_object_get(action, "kind") : NULL;
    const char *kind = json_is_string(k) ? json_string_value(k) : "collect";
    const json_t *nj = action ? json_object_get(action, "n") : NULL;
    int64_t n = json_is_integer(nj) ? json_integer_value(nj) : 0;
    if (n < 0)
        return ember_errorf(err, EMBER_EINVAL, "action %s: n must be >= 0",
                            kind);
    if (strcmp(kind, "collect") == 0)
        return run_take(pipe, 0, 1, out, err);
    if (strcmp(kind, "count") == 0)
        return run_count(pipe, out, err);
    if (strcmp(kind, "take") == 0)
        return run_take(pipe, (uint64_t)n, 0, out, err);
    if (strcmp(kind, "take_ordered") == 0)
        return run_take_ordered(
            pipe, (uint64_t)n,
            json_is_true(json_object_get(action, "descending")), out, err);
    if (strcmp(kind, "reduce") == 0)
        return run_fold(env, pipe, action, 0, out, err);
    if (strcmp(kind, "fold") == 0 || strcmp(kind, "aggregate") == 0)
        return run_fold(env, pipe, action, 1, out, err);
    if (strcmp(kind, "foreach") == 0)
        return run_foreach(env, pipe, action, err);
    if (strcmp(kind, "count_by_value") == 0)
        return run_count_by_value(pipe, out, err);
    if (strcmp(kind, "stats") == 0)
        return run_stats(env, pipe, out, err);
    if (strcmp(kind, "save") == 0)
        return run_save(env, pipe, action, ask, ask_ctx, err);
    if (strcmp(kind, "checkpoint") == 0)
        return em_action_checkpoint(env, pipe, action, ask, ask_ctx, out,
                                    err);
    if (strcmp(kind, "sketch") == 0) {
        const json_t *sj = json_object_get(action, "seed");
        return em_action_sketch(env, pipe, (uint64_t)n,
                                json_is_integer(sj)
                                    ? (uint64_t)json_integer_value(sj)
                                    : 0,
                                out, err);
    }
    if (strcmp(kind, "lookup") == 0)
        return em_action_lookup(pipe, action, out, err);
    if (strcmp(kind, "reduce_by_key_locally") == 0)
        return em_action_reduce_locally(env, pipe, action, out, err);
    return ember_errorf(err, EMBER_EINVAL, "unknown action kind '%s'", kind);
}
