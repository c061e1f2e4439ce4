/*
 * runtime/action_keys.c — the per-partition halves of the key actions
 * (see action.h): "sketch", the sample the driver chooses range bounds
 * from (SEMANTICS S6), and "lookup", the values of one key (S28).
 */
#include "runtime/action.h"

#include <stdlib.h>
#include <string.h>

#include "dag/base64.h"
#include "ember/hash.h"
#include "ember/record.h"
#include "runtime/combiner.h"
#include "runtime/recval.h"

/* splitmix64: the reservoir's random numbers, seeded per partition. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

typedef struct kspan {
    size_t off, len;
} kspan;

ember_status em_action_sketch(em_task_env *env, em_pipe *pipe, uint64_t k,
                              uint64_t seed, ember_buf *out, ember_error *err)
{
    /* reservoir sampling of keys: the first k, then each later key i
     * replaces a random slot with probability k / (i + 1). Kept keys are
     * appended to an arena that is compacted when mostly garbage. */
    kspan *slot = calloc(k ? k : 1, sizeof *slot);
    ember_buf arena = ember_buf_heap(), fresh;
    uint64_t rng = seed ^ ember_hash64(&env->partition, sizeof env->partition);
    uint64_t seen = 0, kept = 0;
    ember_status s = slot ? EMBER_OK
                          : ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_batch b;
    while (s == EMBER_OK && (s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            ember_value kv, vv;
            if (em_rec_pair(r, rl, &kv, &vv) != EMBER_OK) {
                s = ember_errorf(err, EMBER_EINVAL, "sort_by_key: expected "
                                 "(key, value) pairs (record %llu of "
                                 "partition %u)", (unsigned long long)seen,
                                 (unsigned)env->partition);
                break;
            }
            uint64_t at = seen < k ? seen : next_random(&rng) % (seen + 1);
            seen++;
            if (at >= k)
                continue;
            if (at == kept)
                kept++;
            slot[at] = (kspan){arena.len, kv.enc_len};
            if (ember_buf_append(&arena, kv.enc, kv.enc_len) != EMBER_OK) {
                s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
                break;
            }
            if (arena.len > ((size_t)1 << 20) && arena.len > 64 * k * 4) {
                fresh = ember_buf_heap();
                for (uint64_t i = 0; i < kept; i++) {
                    size_t off = fresh.len;
                    ember_buf_append(&fresh, arena.data + slot[i].off,
                                     slot[i].len);
                    slot[i].off = off;
                }
                ember_buf_release(&arena);
                arena = fresh;
            }
        }
    }
    if (s == EMBER_END) {
        /* (int count, (key, key, ...)) */
        size_t mark;
        s = ember_batch_frame_begin(out, &mark);
        if (s == EMBER_OK)
            s = ember_rec_put_int(out, (int64_t)seen);
        if (s == EMBER_OK)
            s = ember_rec_tuple_begin(out);
        for (uint64_t i = 0; s == EMBER_OK && i < kept; i++)
            s = ember_buf_append(out, arena.data + slot[i].off, slot[i].len);
        if (s == EMBER_OK)
            s = ember_rec_tuple_end(out);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(out, mark);
        if (s != EMBER_OK)
            s = ember_errorf(err, s, "out of memory");
    }
    free(slot);
    ember_buf_release(&arena);
    return s;
}

ember_status em_action_lookup(em_pipe *pipe, const json_t *action,
                              ember_buf *out, ember_error *err)
{
    const json_t *kj = json_object_get(action, "key");
    uint8_t *key = NULL;
    size_t klen = 0;
    if (!json_is_string(kj) ||
        em_base64_decode(&key, &klen, json_string_value(kj),
                         json_string_length(kj), SIZE_MAX, NULL) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "action lookup: key must be "
                            "the base64 of an encoded key");
    ember_status s;
    ember_batch b;
    while ((s = em_pipe_next(pipe, &b, err)) == EMBER_OK) {
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *r;
        size_t rl;
        while (s == EMBER_OK && ember_batch_next(&c, &r, &rl) == EMBER_OK) {
            ember_value kv, vv;
            if (em_rec_pair(r, rl, &kv, &vv) != EMBER_OK)
                s = ember_errorf(err, EMBER_EINVAL, "lookup: expected "
                                 "(key, value) pairs");
            else if (kv.enc_len == klen && memcmp(kv.enc, key, klen) == 0) {
                size_t mark;
                s = ember_batch_frame_begin(out, &mark);
                if (s == EMBER_OK)
                    s = em_rec_put_value_as_record(out, &vv);
                if (s == EMBER_OK)
                    s = ember_batch_frame_end(out, mark);
            }
        }
        if (s != EMBER_OK)
            break;
    }
    free(key);
    return s == EMBER_END ? EMBER_OK : s;
}

ember_status em_action_reduce_locally(em_task_env *env, em_pipe *pipe,
                                      const json_t *action, ember_buf *out,
                                      ember_error *err)
{
    const ember_function_vtable *vt;
    uint8_t *arg = NULL;
    size_t arg_len = 0;
    const char *name = NULL;
    ember_status s = em_action_fn(env->registry, json_object_get(action, "fn"),
                                  EMBER_FN_REDUCE, &vt, &arg, &arg_len, &name,
                                  err);
    em_combiner *c = NULL;
    if (s == EMBER_OK)
        s = em_combiner_open_fn(&c, "reduce_by_key_locally", name, arg,
                                arg_len, 1, env->partition, env->registry,
                                env->host, err);
    ember_batch b;
    while (s == EMBER_OK && (s = em_pipe_next(pipe, &b, err)) == EMBER_OK)
        s = em_combiner_add(c, &b, err);
    if (s == EMBER_END) {
        uint64_t n = 0;
        s = em_combiner_emit(c, out, &n, err);
    }
    em_combiner_close(c);
    free(arg);
    return s;
}
