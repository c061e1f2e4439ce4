/* runtime/partition.c — see partition.h. */
#include "runtime/partition.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/function.h"
#include "ember/hash.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "runtime/recval.h"

typedef struct bound {
    const uint8_t *p;
    size_t len;
    uint64_t pre; /* prefix_of(p, len) */
} bound;

/* The first 8 bytes of an encoding (zero-padded) as a big-endian number:
 * when two prefixes differ they order the encodings as
 * ember_rec_compare does, so most comparisons need no memcmp. */
static inline uint64_t prefix_of(const uint8_t *p, size_t len)
{
    uint8_t b[8] = {0};
    memcpy(b, p, len < 8 ? len : 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

struct em_partfn {
    const em_node *node;
    em_key_mode mode;
    em_part_kind kind;
    uint32_t n;
    uint32_t next_rr;
    bound *bounds;
    uint32_t nbounds;
    int descending;
    const ember_function_vtable *fn;
    void *fn_state;
    int fn_open;
    ember_buf keys, out;
};

em_key_mode em_key_mode_of(const char *op)
{
    if (strcmp(op, "distinct") == 0 || strcmp(op, "subtract") == 0 ||
        strcmp(op, "intersection") == 0)
        return EM_KEY_RECORD;
    if (strcmp(op, "repartition") == 0)
        return EM_KEY_NONE;
    return EM_KEY_PAIR;
}

static ember_status parse_bounds(const uint8_t *b, size_t len, bound **out,
                                 uint32_t *n, ember_error *err)
{
    *out = NULL;
    *n = 0;
    ember_batch all = {b, len, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&all);
    const uint8_t *r;
    size_t rl;
    uint32_t count = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &r, &rl)) == EMBER_OK)
        count++;
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL, "range bounds: malformed "
                            "framing");
    bound *v = calloc(count ? count : 1, sizeof *v);
    if (!v)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    c = ember_batch_cursor_of(&all);
    for (uint32_t i = 0; i < count; i++) {
        ember_batch_next(&c, &r, &rl);
        ember_rec_cursor rc = ember_rec_cursor_init(r, rl);
        if (ember_rec_next(&rc, NULL) != EMBER_OK || rc.p != rc.end) {
            free(v);
            return ember_errorf(err, EMBER_EINVAL, "range bounds: bound %"
                                PRIu32 " is not one encoded key", i);
        }
        v[i] = (bound){r, rl, prefix_of(r, rl)};
        if (i > 0 && ember_rec_compare(v[i - 1].p, v[i - 1].len, r, rl) >= 0) {
            free(v);
            return ember_errorf(err, EMBER_EINVAL, "range bounds: bound %"
                                PRIu32 " is not above bound %" PRIu32, i,
                                i - 1);
        }
    }
    *out = v;
    *n = count;
    return EMBER_OK;
}

ember_status em_range_bounds_check(const uint8_t *bounds, size_t len,
                                   uint32_t *n, ember_error *err)
{
    bound *v = NULL;
    ember_status s = parse_bounds(bounds, len, &v, n, err);
    free(v);
    return s;
}

ember_status em_partfn_open(em_partfn **out, const em_node *reader,
                            uint32_t map_partition,
                            const em_registry *registry,
                            const ember_host_api *host, ember_error *err)
{
    *out = NULL;
    em_partfn *p = calloc(1, sizeof *p);
    if (!p)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    p->node = reader;
    p->mode = em_key_mode_of(reader->op->name);
    p->kind = reader->partitioner.kind;
    p->n = reader->partitions ? reader->partitions : 1;
    p->keys = ember_buf_heap();
    p->out = ember_buf_heap();
    /* Spark starts each map partition's round robin at a different place */
    p->next_rr = (uint32_t)(ember_hash64(&map_partition, sizeof map_partition)
                            % p->n);
    ember_status s = EMBER_OK;
    const em_partitioner *pt = &reader->partitioner;
    if (p->mode != EM_KEY_NONE && p->kind == EM_PART_RANGE) {
        s = parse_bounds(pt->bounds, pt->bounds_len, &p->bounds, &p->nbounds,
                         err);
        p->descending = pt->descending;
        if (s == EMBER_OK && p->nbounds >= p->n)
            s = ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64 ": %"
                             PRIu32 " range bounds for %" PRIu32
                             " partitions", reader->id, p->nbounds, p->n);
    } else if (p->mode != EM_KEY_NONE && p->kind == EM_PART_FUNCTION) {
        const em_component *c =
            registry ? em_registry_find(registry, EMBER_KIND_FUNCTION,
                                        pt->fn.name)
                     : NULL;
        if (!c)
            s = ember_errorf(err, EMBER_ENOTFOUND, "dataset %" PRIu64
                             ": partitioner function '%s' is not loaded on "
                             "this executor", reader->id, pt->fn.name);
        else if (((const ember_function_vtable *)c->vtable)->shape !=
                 EMBER_FN_MAP)
            s = ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                             ": partitioner '%s' must be a map function",
                             reader->id, pt->fn.name);
        else {
            p->fn = c->vtable;
            ember_error e = {0};
            if (p->fn->open &&
                (s = p->fn->open(host, pt->fn.arg, pt->fn.arg_len,
                                 &p->fn_state, &e)) != EMBER_OK)
                s = ember_errorf(err, s, "dataset %" PRIu64 ": %s: open "
                                 "failed: %s", reader->id, pt->fn.name,
                                 e.msg);
            else
                p->fn_open = 1;
        }
    }
    if (s != EMBER_OK) {
        em_partfn_close(p);
        return s;
    }
    *out = p;
    return EMBER_OK;
}

void em_partfn_close(em_partfn *p)
{
    if (!p)
        return;
    if (p->fn_open && p->fn->close)
        p->fn->close(p->fn_state);
    free(p->bounds);
    ember_buf_release(&p->keys);
    ember_buf_release(&p->out);
    free(p);
}

/* The number of bounds below key (binary search). */
static uint32_t range_of(const em_partfn *p, const uint8_t *k, size_t kl)
{
    uint32_t lo = 0, hi = p->nbounds;
    uint64_t kp = prefix_of(k, kl);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const bound *b = &p->bounds[mid];
        if (b->pre < kp ||
            (b->pre == kp && ember_rec_compare(b->p, b->len, k, kl) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return p->descending ? p->nbounds - lo : lo;
}

static ember_status by_function(em_partfn *p, const ember_batch *records,
                                uint32_t *parts, ember_error *err)
{
    p->keys.len = 0;
    ember_batch_cursor c = ember_batch_cursor_of(records);
    const uint8_t *r;
    size_t rl;
    uint64_t i = 0;
    while (ember_batch_next(&c, &r, &rl) == EMBER_OK) {
        ember_value k, v;
        if (em_rec_pair(r, rl, &k, &v) != EMBER_OK)
            return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                                " (%s): expected a (key, value) pair "
                                "(record %" PRIu64 ")", p->node->id,
                                p->node->op->name, i);
        size_t mark;
        ember_status s = ember_batch_frame_begin(&p->keys, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_value_as_record(&p->keys, &k);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&p->keys, mark);
        if (s != EMBER_OK)
            return ember_errorf(err, s, "out of memory");
        i++;
    }
    ember_batch kb = {p->keys.data, p->keys.len, i};
    p->out.len = 0;
    uint64_t got = 0;
    ember_error e = {0};
    const char *name = p->node->partitioner.fn.name;
    ember_status s = p->fn->map_batch(p->fn_state, &kb, &p->out, &got, &e);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "dataset %" PRIu64 " (%s): partitioner "
                            "%s: %s", p->node->id, p->node->op->name, name,
                            e.msg[0] ? e.msg : ember_status_name(s));
    if (got != i)
        return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64 " (%s): "
                            "partitioner %s returned %" PRIu64 " records for %"
                            PRIu64 " keys", p->node->id, p->node->op->name,
                            name, got, i);
    ember_batch ob = {p->out.data, p->out.len, got};
    c = ember_batch_cursor_of(&ob);
    for (uint64_t j = 0; j < i; j++) {
        ember_value v;
        if (ember_batch_next(&c, &r, &rl) != EMBER_OK ||
            ember_rec_get(r, rl, 0, &v) != EMBER_OK ||
            v.type != EMBER_TYPE_INT || v.u.i64 < 0 ||
            v.u.i64 >= (int64_t)p->n)
            return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                                " (%s): partitioner %s must return an int in "
                                "0..%" PRIu32 " for each key (key %" PRIu64
                                ")", p->node->id, p->node->op->name, name,
                                p->n - 1, j);
        parts[j] = (uint32_t)v.u.i64;
    }
    return EMBER_OK;
}

ember_status em_partfn_assign(em_partfn *p, const ember_batch *records,
                              uint32_t *parts, ember_error *err)
{
    if (p->mode == EM_KEY_NONE) {
        for (uint64_t i = 0; i < records->count; i++) {
            parts[i] = p->next_rr;
            p->next_rr = p->next_rr + 1 == p->n ? 0 : p->next_rr + 1;
        }
        return EMBER_OK;
    }
    if (p->kind == EM_PART_FUNCTION)
        return by_function(p, records, parts, err);
    ember_batch_cursor c = ember_batch_cursor_of(records);
    const uint8_t *r;
    size_t rl;
    uint64_t i = 0;
    while (ember_batch_next(&c, &r, &rl) == EMBER_OK && i < records->count) {
        const uint8_t *k = r;
        size_t kl = rl;
        if (p->mode == EM_KEY_PAIR) {
            ember_rec_cursor rc = ember_rec_cursor_init(r, rl);
            ember_value kv;
            if (ember_rec_next(&rc, &kv) != EMBER_OK ||
                ember_rec_next(&rc, NULL) != EMBER_OK || rc.p != rc.end)
                return ember_errorf(err, EMBER_EINVAL, "dataset %" PRIu64
                                    " (%s): expected a (key, value) pair "
                                    "(record %" PRIu64 " of its batch)",
                                    p->node->id, p->node->op->name, i);
            k = kv.enc;
            kl = kv.enc_len;
        }
        if (p->kind == EM_PART_RANGE)
            parts[i] = range_of(p, k, kl);
        else
            parts[i] = (uint32_t)(ember_hash64(k, kl) % p->n);
        i++;
    }
    return EMBER_OK;
}
