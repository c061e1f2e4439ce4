/*
 * testfn.c — plugin "testfn": functions that exist to test the engine
 * (tests/engine/engine_test.c loads it with ember_session_opts.plugins).
 * Each one either breaks a rule on purpose (so the test can check the
 * engine's message) or exposes what the engine did (partition, attempt,
 * merge order).
 *
 *   testfn.fail_on            MAP     fails with "bad record K" on a record
 *                                     whose first element is the int K (the
 *                                     argument, an encoded int record);
 *                                     otherwise identity
 *   testfn.fail_first_attempt MAP     fails with "flaky" on attempt 0 of a
 *                                     task, identity on later attempts
 *   testfn.tag_partition      MAP     record -> (task partition, record as a
 *                                     value)
 *   testfn.count_batch        MAP     record -> (its index among the records
 *                                     this task has seen, from 0)
 *   testfn.sleep_ms           MAP     sleeps the argument (an int record,
 *                                     ms) once per batch, then identity
 *   testfn.slow_first_attempt MAP     as sleep_ms, but only in the first
 *                                     attempt (0) of partition 0: a task
 *                                     speculation copies
 *   testfn.two_per            MAP     every record twice
 *   testfn.not_bool           MAP     every record -> (1), an int
 *   testfn.sum_pairs_zip      MAP     for zip_partitions: each input record
 *                                     is a tuple per zipped input; outputs
 *                                     one (element count) per tuple
 *   testfn.concat_reduce      REDUCE  strings joined with '|' (not
 *                                     commutative: shows merge order)
 *   testfn.product            REDUCE  product of ints
 *   testfn.crash              MAP     kills its own process (SIGKILL): an
 *                                     executor that dies under a task
 *   testfn.key_mod            MAP     a partitioner: a record whose first
 *                                     element is the int k -> (k mod M), M
 *                                     the argument (an int record), the
 *                                     result in 0..M-1
 *   testfn.sum_count_create   MAP     a createCombiner: the int v -> (v, 1)
 *   testfn.sum_count          REDUCE  merges ints v (as (v, 1)) and
 *                                     (sum, count) pairs into one (sum,
 *                                     count): mergeValue and
 *                                     mergeCombiners of an average
 *   testfn.counted            MAP     identity, adding the number of
 *                                     records it maps to the host counter
 *                                     "testfn.counted" (what a test reads
 *                                     to see whether a dataset was
 *                                     computed or served from a cache)
 *   testfn.counted_file       MAP     identity, appending "<n>\n" per
 *                                     batch of n records to the file its
 *                                     argument names (the path's raw
 *                                     bytes): the counting of
 *                                     testfn.counted across executor
 *                                     processes (block locations)
 *   testfn.accum_add          MAP     identity, adding to accumulators per
 *                                     record: the argument is (ID, MODE)
 *                                     pairs, MODE "one" (accum_add_i64 1),
 *                                     "int" (the record's first int),
 *                                     "double" (it, as a double) or
 *                                     "record" (accum_add of the record,
 *                                     whose failure fails the task); the
 *                                     status of the other adds is
 *                                     ignored (the runtime fails the task)
 *   testfn.accum_flaky        MAP     accum_add with the argument (DIR,
 *                                     PARTITION, ID, MODE, ...): the first
 *                                     attempt of partition PARTITION
 *                                     fails with "flaky after adding"
 *                                     once it has added (a marker file in
 *                                     DIR makes it once across processes)
 *   testfn.bcast_add          MAP     the int v -> (v + T[v mod n]), T
 *                                     the broadcast whose id is the
 *                                     argument (an int record), read as n
 *                                     little-endian int64s; a failed
 *                                     host->broadcast_value fails the task
 *                                     with its message
 *
 * Threads: every function is safe to run in many tasks at once; state is
 * per task (open) or immutable.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember/batch.h"
#include "ember/function.h"
#include "ember/plugin.h"
#include "ember/record.h"

/* The host table, kept by init for the task_* slots. */
static const ember_host_api *g_host;

static ember_status testfn_init(const ember_host_api *host, ember_error *err)
{
    (void)err;
    g_host = host;
    return EMBER_OK;
}

/* ---- helpers ----------------------------------------------------------- */

/* The vtable of a deterministic MAP function (open and close nullable). */
#define MAP_VTABLE(open_, close_, map_)                                     \
    {                                                                       \
        .shape = EMBER_FN_MAP, .determinism = EMBER_DETERMINISTIC,          \
        .open = (open_), .close = (close_), .map_batch = (map_)             \
    }

/* The vtable of a deterministic REDUCE function without state. */
#define REDUCE_VTABLE(reduce_)                                              \
    {                                                                       \
        .shape = EMBER_FN_REDUCE, .determinism = EMBER_DETERMINISTIC,       \
        .reduce = (reduce_)                                                 \
    }

/* EMBER_ENOMEM with the message "<who>: out of memory". */
static ember_status no_memory(ember_error *err, const char *who)
{
    return ember_errorf(err, EMBER_ENOMEM, "%s: out of memory", who);
}

/* Whether rec[0..len) (nullable) is exactly one element of type `type`;
 * that element in *v. */
static int one_of_type(const uint8_t *rec, size_t len, uint32_t type,
                       ember_value *v)
{
    size_t count = 0;
    return rec != NULL && ember_rec_validate(rec, len, &count) == EMBER_OK &&
           count == 1 && ember_rec_get(rec, len, 0, v) == EMBER_OK &&
           v->type == type;
}

/* Whether the first element of rec[0..len) is an int; it in *out. */
static int first_int(const uint8_t *rec, size_t len, int64_t *out)
{
    ember_value v;
    if (ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_INT)
        return 0;
    *out = v.u.i64;
    return 1;
}

/* Per-task state of the functions that need some: an int, the argument
 * (which must be one int: EMBER_EINVAL otherwise) when parse is set, else
 * 0. fn names the function in messages. */
static ember_status open_int(const uint8_t *arg, size_t arg_len,
                             const char *fn, int parse, void **state,
                             ember_error *err)
{
    ember_value v;
    int64_t *st = g_host->alloc(sizeof *st);
    if (st == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "testfn.%s: out of memory",
                            fn);
    *st = 0;
    if (parse) {
        if (!one_of_type(arg, arg_len, EMBER_TYPE_INT, &v)) {
            g_host->free(st);
            return ember_errorf(err, EMBER_EINVAL,
                                "testfn.%s: the argument must be one int",
                                fn);
        }
        *st = v.u.i64;
    }
    *state = st;
    return EMBER_OK;
}

static void close_int(void *state)
{
    g_host->free(state);
}

/* Copies in to out unchanged, adding its records to *out_count. */
static ember_status pass_through(const ember_batch *in, ember_buf *out,
                                 uint64_t *out_count, ember_error *err)
{
    if (ember_buf_append(out, in->data, in->len) != EMBER_OK)
        return no_memory(err, "testfn");
    *out_count += in->count;
    return EMBER_OK;
}

/* What a function does with one record (or value) rec[0..len), given its
 * context ctx; a failure stops the loop that calls it. */
typedef ember_status (*rec_fn)(void *ctx, const uint8_t *rec, size_t len,
                               ember_error *err);

/* one(ctx, ...) on each record of batch, up to the first error. */
static ember_status each_record(const ember_batch *batch, rec_fn one,
                                void *ctx, ember_error *err)
{
    ember_batch_cursor c = ember_batch_cursor_of(batch);
    const uint8_t *rec;
    size_t len;
    ember_status s = EMBER_OK;
    while (s == EMBER_OK && ember_batch_next(&c, &rec, &len) == EMBER_OK)
        s = one(ctx, rec, len, err);
    return s;
}

/* A reduce's loop: one(ctx, ...) on acc (when not NULL), then on each
 * record of values, up to the first error. */
static ember_status fold_values(const uint8_t *acc, size_t acc_len,
                                const ember_batch *values, rec_fn one,
                                void *ctx, ember_error *err)
{
    ember_status s = EMBER_OK;
    if (acc != NULL)
        s = one(ctx, acc, acc_len, err);
    if (s == EMBER_OK)
        s = each_record(values, one, ctx, err);
    return s;
}

/* The ctx of a map's per-record step: where its output goes, and the
 * task's int (see open_int; NULL for a function without state). */
typedef struct map_ctx {
    ember_buf *out;
    uint64_t *out_count;
    int64_t *st;
} map_ctx;

/* A map_batch made of a per-record step: step(ctx, record) for each
 * record of in, ctx a map_ctx over out, out_count and state. */
static ember_status map_each(void *state, const ember_batch *in, rec_fn step,
                             ember_buf *out, uint64_t *out_count,
                             ember_error *err)
{
    map_ctx m = {out, out_count, state};
    return each_record(in, step, &m, err);
}

/* Appends the record (v), one int, to m's output and counts it;
 * EMBER_ENOMEM. */
static ember_status emit_int(const map_ctx *m, int64_t v)
{
    uint8_t tmp[16];
    ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
    if (ember_rec_put_int(&one, v) != EMBER_OK ||
        ember_batch_append(m->out, one.data, one.len) != EMBER_OK)
        return EMBER_ENOMEM;
    (*m->out_count)++;
    return EMBER_OK;
}

/* ---- testfn.fail_on ---------------------------------------------------- */

static ember_status fail_on_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    (void)host;
    return open_int(arg, arg_len, "fail_on", 1, state, err);
}

/* Fails on a record whose first element is the int K (*st). */
static ember_status fail_on_check(void *ctx, const uint8_t *rec, size_t len,
                                  ember_error *err)
{
    const map_ctx *m = ctx;
    int64_t v;
    if (first_int(rec, len, &v) && v == *m->st)
        return ember_errorf(err, EMBER_EINVAL, "bad record %lld",
                            (long long)v);
    return EMBER_OK;
}

static ember_status fail_on_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    ember_status s = map_each(state, in, fail_on_check, out, out_count, err);
    return s == EMBER_OK ? pass_through(in, out, out_count, err) : s;
}

static const ember_function_vtable fail_on_vt =
    MAP_VTABLE(fail_on_open, close_int, fail_on_map);

/* ---- testfn.fail_first_attempt ----------------------------------------- */

static ember_status flaky_map(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err)
{
    (void)state;
    if (!EMBER_HOST_HAS(g_host, task_attempt))
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "testfn.fail_first_attempt: the host has no "
                            "task_attempt");
    if (g_host->task_attempt() == 0)
        return ember_errorf(err, EMBER_EIO, "flaky");
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable flaky_vt = MAP_VTABLE(NULL, NULL,
                                                         flaky_map);

/* ---- testfn.tag_partition ---------------------------------------------- */

/* Appends rec as one element: itself when it has one, else a tuple. */
static ember_status put_as_value(ember_buf *out, const uint8_t *rec,
                                 size_t len)
{
    size_t count = 0;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK)
        return EMBER_EINVAL;
    if (count == 1)
        return ember_buf_append(out, rec, len);
    if (ember_rec_tuple_begin(out) != EMBER_OK ||
        ember_buf_append(out, rec, len) != EMBER_OK ||
        ember_rec_tuple_end(out) != EMBER_OK)
        return EMBER_ENOMEM;
    return EMBER_OK;
}

/* Writes (the task's partition, rec as a value). */
static ember_status tag_one(void *ctx, const uint8_t *rec, size_t len,
                            ember_error *err)
{
    const map_ctx *m = ctx;
    int64_t part = EMBER_HOST_HAS(g_host, task_partition)
                       ? g_host->task_partition()
                       : -2;
    size_t mark;
    ember_status s = ember_batch_frame_begin(m->out, &mark);
    if (s == EMBER_OK)
        s = ember_rec_put_int(m->out, part);
    if (s == EMBER_OK)
        s = put_as_value(m->out, rec, len);
    if (s == EMBER_OK)
        s = ember_batch_frame_end(m->out, mark);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "testfn.tag_partition: cannot write");
    (*m->out_count)++;
    return EMBER_OK;
}

static ember_status tag_map(void *state, const ember_batch *in,
                            ember_buf *out, uint64_t *out_count,
                            ember_error *err)
{
    return map_each(state, in, tag_one, out, out_count, err);
}

static const ember_function_vtable tag_vt = MAP_VTABLE(NULL, NULL, tag_map);

/* ---- testfn.count_batch ------------------------------------------------ */

static ember_status count_open(const ember_host_api *host, const uint8_t *arg,
                               size_t arg_len, void **state, ember_error *err)
{
    (void)host;
    return open_int(arg, arg_len, "count_batch", 0, state, err);
}

/* Writes (the records this task has seen so far, *st), and counts rec. */
static ember_status count_one(void *ctx, const uint8_t *rec, size_t len,
                              ember_error *err)
{
    const map_ctx *m = ctx;
    (void)rec, (void)len;
    if (emit_int(m, (*m->st)++) != EMBER_OK)
        return no_memory(err, "testfn.count_batch");
    return EMBER_OK;
}

static ember_status count_map(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err)
{
    return map_each(state, in, count_one, out, out_count, err);
}

static const ember_function_vtable count_vt =
    MAP_VTABLE(count_open, close_int, count_map);

/* ---- testfn.sleep_ms --------------------------------------------------- */

static ember_status sleep_open(const ember_host_api *host, const uint8_t *arg,
                               size_t arg_len, void **state, ember_error *err)
{
    (void)host;
    return open_int(arg, arg_len, "sleep_ms", 1, state, err);
}

static ember_status sleep_map(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err)
{
    int64_t ms = *(const int64_t *)state;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable sleep_vt =
    MAP_VTABLE(sleep_open, close_int, sleep_map);

static ember_status slow_first_map(void *state, const ember_batch *in,
                                   ember_buf *out, uint64_t *out_count,
                                   ember_error *err)
{
    if (!EMBER_HOST_HAS(g_host, task_attempt))
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "testfn.slow_first_attempt: the host has no "
                            "task_attempt");
    if (g_host->task_partition() == 0 && g_host->task_attempt() == 0)
        return sleep_map(state, in, out, out_count, err);
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable slow_first_vt =
    MAP_VTABLE(sleep_open, close_int, slow_first_map);

/* ---- testfn.crash ------------------------------------------------------ */

static ember_status crash_map(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err)
{
    (void)state, (void)in, (void)out, (void)out_count, (void)err;
    kill(getpid(), SIGKILL);
    pause(); /* not reached: SIGKILL cannot be caught */
    return EMBER_EINTERNAL;
}

static const ember_function_vtable crash_vt = MAP_VTABLE(NULL, NULL,
                                                         crash_map);

/* ---- testfn.two_per ---------------------------------------------------- */

static ember_status two_per_one(void *ctx, const uint8_t *rec, size_t len,
                                ember_error *err)
{
    const map_ctx *m = ctx;
    if (ember_batch_append(m->out, rec, len) != EMBER_OK ||
        ember_batch_append(m->out, rec, len) != EMBER_OK)
        return no_memory(err, "testfn.two_per");
    *m->out_count += 2;
    return EMBER_OK;
}

static ember_status two_per_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    return map_each(state, in, two_per_one, out, out_count, err);
}

static const ember_function_vtable two_per_vt = MAP_VTABLE(NULL, NULL,
                                                           two_per_map);

/* ---- testfn.not_bool --------------------------------------------------- */

static ember_status not_bool_one(void *ctx, const uint8_t *rec, size_t len,
                                 ember_error *err)
{
    (void)rec, (void)len;
    if (emit_int(ctx, 1) != EMBER_OK)
        return no_memory(err, "testfn.not_bool");
    return EMBER_OK;
}

static ember_status not_bool_map(void *state, const ember_batch *in,
                                 ember_buf *out, uint64_t *out_count,
                                 ember_error *err)
{
    return map_each(state, in, not_bool_one, out, out_count, err);
}

static const ember_function_vtable not_bool_vt = MAP_VTABLE(NULL, NULL,
                                                            not_bool_map);

/* ---- testfn.sum_pairs_zip ---------------------------------------------- */

/* Writes one (element count) per tuple of rec. */
static ember_status zip_count_one(void *ctx, const uint8_t *rec, size_t len,
                                  ember_error *err)
{
    ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
    ember_value t;
    ember_status s;
    while ((s = ember_rec_next(&rc, &t)) == EMBER_OK) {
        ember_rec_cursor ic = ember_rec_tuple_cursor(&t);
        int64_t n = 0;
        if (t.type != EMBER_TYPE_TUPLE)
            return ember_errorf(err, EMBER_EINVAL,
                                "testfn.sum_pairs_zip: expected tuples, "
                                "got %s", ember_type_name(t.type));
        while (ember_rec_next(&ic, NULL) == EMBER_OK)
            n++;
        if (emit_int(ctx, n) != EMBER_OK)
            return no_memory(err, "testfn.sum_pairs_zip");
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.sum_pairs_zip: malformed record");
    return EMBER_OK;
}

static ember_status zip_count_map(void *state, const ember_batch *in,
                                  ember_buf *out, uint64_t *out_count,
                                  ember_error *err)
{
    return map_each(state, in, zip_count_one, out, out_count, err);
}

static const ember_function_vtable zip_count_vt =
    MAP_VTABLE(NULL, NULL, zip_count_map);

/* ---- testfn.concat_reduce ---------------------------------------------- */

/* Appends the single string of rec[0..len) to ctx (a plain byte buffer,
 * an ember_buf). */
static ember_status concat_one(void *ctx, const uint8_t *rec, size_t len,
                               ember_error *err)
{
    ember_buf *acc = ctx;
    ember_value v;
    if (!one_of_type(rec, len, EMBER_TYPE_STRING, &v))
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.concat_reduce: expected one string");
    if ((acc->len > 0 && ember_buf_put_u8(acc, '|') != EMBER_OK) ||
        ember_buf_reserve(acc, v.u.str.len) != EMBER_OK)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    acc->len += ember_rec_string_copy(&v, acc->data + acc->len, v.u.str.len);
    return EMBER_OK;
}

static ember_status concat_reduce(void *state, const uint8_t *acc,
                                  size_t acc_len, const ember_batch *values,
                                  ember_buf *out, ember_error *err)
{
    (void)state;
    ember_buf text = ember_buf_heap();
    ember_status s = fold_values(acc, acc_len, values, concat_one, &text, err);
    if (s == EMBER_OK &&
        ember_rec_put_string(out, (const char *)text.data, text.len) !=
            EMBER_OK)
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_buf_release(&text);
    return s;
}

static const ember_function_vtable concat_vt = REDUCE_VTABLE(concat_reduce);

/* ---- testfn.product ---------------------------------------------------- */

/* Multiplies ctx (an int64_t) by the single int of rec[0..len). */
static ember_status product_one(void *ctx, const uint8_t *rec, size_t len,
                                ember_error *err)
{
    int64_t *p = ctx;
    ember_value v;
    if (!one_of_type(rec, len, EMBER_TYPE_INT, &v))
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.product: expected one int");
    *p *= v.u.i64;
    return EMBER_OK;
}

static ember_status product_reduce(void *state, const uint8_t *acc,
                                   size_t acc_len, const ember_batch *values,
                                   ember_buf *out, ember_error *err)
{
    (void)state;
    int64_t p = 1;
    ember_status s = fold_values(acc, acc_len, values, product_one, &p, err);
    if (s == EMBER_OK && ember_rec_put_int(out, p) != EMBER_OK)
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
    return s;
}

static const ember_function_vtable product_vt = REDUCE_VTABLE(product_reduce);

/* ---- testfn.key_mod ---------------------------------------------------- */

static ember_status key_mod_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    (void)host;
    ember_status s = open_int(arg, arg_len, "key_mod", 1, state, err);
    if (s == EMBER_OK && *(int64_t *)*state <= 0) {
        close_int(*state);
        *state = NULL;
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.key_mod: the modulus must be positive");
    }
    return s;
}

/* Writes (k mod M) for the int key k of rec, M being *st. */
static ember_status key_mod_one(void *ctx, const uint8_t *rec, size_t len,
                                ember_error *err)
{
    const map_ctx *m = ctx;
    int64_t k;
    if (!first_int(rec, len, &k))
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.key_mod: expected an int key");
    int64_t r = k % *m->st;
    if (emit_int(m, r < 0 ? r + *m->st : r) != EMBER_OK)
        return no_memory(err, "testfn.key_mod");
    return EMBER_OK;
}

static ember_status key_mod_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    return map_each(state, in, key_mod_one, out, out_count, err);
}

static const ember_function_vtable key_mod_vt =
    MAP_VTABLE(key_mod_open, close_int, key_mod_map);

/* ---- testfn.sum_count_create / testfn.sum_count ------------------------ */

/* Reads rec as an int v (count 1) or a (sum, count) pair of ints. */
static ember_status sum_count_of(const uint8_t *rec, size_t len, int64_t *sum,
                                 int64_t *count, ember_error *err)
{
    ember_value a, b;
    size_t n = 0;
    if (ember_rec_validate(rec, len, &n) == EMBER_OK && n == 1 &&
        ember_rec_get(rec, len, 0, &a) == EMBER_OK &&
        a.type == EMBER_TYPE_INT) {
        *sum = a.u.i64;
        *count = 1;
        return EMBER_OK;
    }
    if (n == 2 && ember_rec_get(rec, len, 0, &a) == EMBER_OK &&
        ember_rec_get(rec, len, 1, &b) == EMBER_OK &&
        a.type == EMBER_TYPE_INT && b.type == EMBER_TYPE_INT) {
        *sum = a.u.i64;
        *count = b.u.i64;
        return EMBER_OK;
    }
    return ember_errorf(err, EMBER_EINVAL,
                        "testfn.sum_count: expected an int or (sum, count)");
}

/* Adds rec (as sum_count_of reads it) to ctx, an int64_t[2] {sum, count}. */
static ember_status sum_count_add(void *ctx, const uint8_t *rec, size_t len,
                                  ember_error *err)
{
    int64_t *total = ctx, sum, count;
    ember_status s = sum_count_of(rec, len, &sum, &count, err);
    if (s == EMBER_OK) {
        total[0] += sum;
        total[1] += count;
    }
    return s;
}

static ember_status put_sum_count(ember_buf *out, int64_t sum, int64_t count)
{
    if (ember_rec_put_int(out, sum) != EMBER_OK ||
        ember_rec_put_int(out, count) != EMBER_OK)
        return EMBER_ENOMEM;
    return EMBER_OK;
}

/* Writes (v, 1) for the int v of rec. */
static ember_status sum_count_create_one(void *ctx, const uint8_t *rec,
                                         size_t len, ember_error *err)
{
    const map_ctx *m = ctx;
    int64_t sum, count;
    size_t mark;
    ember_status s = sum_count_of(rec, len, &sum, &count, err);
    if (s != EMBER_OK)
        return s;
    if (count != 1)
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.sum_count_create: expected an int");
    if (ember_batch_frame_begin(m->out, &mark) != EMBER_OK ||
        put_sum_count(m->out, sum, 1) != EMBER_OK ||
        ember_batch_frame_end(m->out, mark) != EMBER_OK)
        return no_memory(err, "testfn.sum_count_create");
    (*m->out_count)++;
    return EMBER_OK;
}

static ember_status sum_count_create_map(void *state, const ember_batch *in,
                                         ember_buf *out, uint64_t *out_count,
                                         ember_error *err)
{
    return map_each(state, in, sum_count_create_one, out, out_count, err);
}

static const ember_function_vtable sum_count_create_vt =
    MAP_VTABLE(NULL, NULL, sum_count_create_map);

static ember_status sum_count_reduce(void *state, const uint8_t *acc,
                                     size_t acc_len,
                                     const ember_batch *values,
                                     ember_buf *out, ember_error *err)
{
    (void)state;
    int64_t total[2] = {0, 0};
    ember_status s = fold_values(acc, acc_len, values, sum_count_add, total,
                                 err);
    if (s != EMBER_OK)
        return s;
    if (put_sum_count(out, total[0], total[1]) != EMBER_OK)
        return no_memory(err, "testfn.sum_count");
    return EMBER_OK;
}

static const ember_function_vtable sum_count_vt =
    REDUCE_VTABLE(sum_count_reduce);

/* ---- testfn.counted ---------------------------------------------------- */

/* The counter's id, registered per task (the same name gives the same
 * id), in the task's int. */
static ember_status counted_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    (void)host;
    uint32_t id = 0;
    ember_status s = open_int(arg, arg_len, "counted", 0, state, err);
    if (s != EMBER_OK)
        return s;
    if (g_host->counter_register("testfn.counted", &id) != EMBER_OK) {
        close_int(*state);
        *state = NULL;
        return ember_errorf(err, EMBER_EINTERNAL,
                            "testfn.counted: cannot register the counter");
    }
    *(int64_t *)*state = id;
    return EMBER_OK;
}

static ember_status counted_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    g_host->counter_add((uint32_t)*(const int64_t *)state,
                        (int64_t)in->count);
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable counted_vt =
    MAP_VTABLE(counted_open, close_int, counted_map);

/* ---- testfn.counted_file (block locations) ---------------------------- */

static ember_status counted_file_open(const ember_host_api *host,
                                      const uint8_t *arg, size_t arg_len,
                                      void **state, ember_error *err)
{
    (void)host;
    if (arg_len == 0 || arg_len > 4000 || memchr(arg, 0, arg_len))
        return ember_errorf(err, EMBER_EINVAL, "testfn.counted_file: the "
                            "argument must be a file path");
    char *path = g_host->alloc(arg_len + 1);
    if (!path)
        return no_memory(err, "testfn.counted_file");
    memcpy(path, arg, arg_len);
    path[arg_len] = '\0';
    *state = path;
    return EMBER_OK;
}

static void counted_file_close(void *state)
{
    g_host->free(state);
}

static ember_status counted_file_map(void *state, const ember_batch *in,
                                     ember_buf *out, uint64_t *out_count,
                                     ember_error *err)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%llu\n",
                     (unsigned long long)in->count);
    /* one short O_APPEND write per batch: lines of many processes never
     * interleave */
    int fd = open(state, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        if (fd >= 0)
            close(fd);
        return ember_errorf(err, EMBER_EIO, "testfn.counted_file: cannot "
                            "append to %s", (const char *)state);
    }
    close(fd);
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable counted_file_vt =
    MAP_VTABLE(counted_file_open, counted_file_close, counted_file_map);

/* ---- testfn.accum_add / testfn.accum_flaky (accumulators) -------------- */

#define ACCUM_MAX 8

/* What to add: up to ACCUM_MAX (accumulator id, mode) pairs; for
 * accum_flaky also the marker directory and the partition that fails. */
typedef struct accum_state {
    uint64_t id[ACCUM_MAX];
    char mode[ACCUM_MAX]; /* 'o' one, 'i' int, 'd' double, 'r' record */
    int n;
    char dir[1024];
    int64_t fail_partition;
} accum_state;

/* Reads the (ID, MODE) pairs of arg from element `from` on. */
static ember_status accum_parse(const uint8_t *arg, size_t arg_len,
                                size_t from, const char *fn,
                                accum_state *st, ember_error *err)
{
    size_t count = 0;
    if (!arg || ember_rec_validate(arg, arg_len, &count) != EMBER_OK ||
        count < from + 2 || (count - from) % 2 != 0 ||
        (count - from) / 2 > ACCUM_MAX)
        return ember_errorf(err, EMBER_EINVAL, "testfn.%s: the argument "
                            "must be (ID, MODE) pairs", fn);
    for (size_t i = from; i < count; i += 2) {
        ember_value id = {0}, mode = {0};
        char m[8] = "";
        if (ember_rec_get(arg, arg_len, i, &id) != EMBER_OK ||
            ember_rec_get(arg, arg_len, i + 1, &mode) != EMBER_OK ||
            id.type != EMBER_TYPE_INT || mode.type != EMBER_TYPE_STRING ||
            mode.u.str.len >= sizeof m)
            return ember_errorf(err, EMBER_EINVAL, "testfn.%s: bad (ID, "
                                "MODE) pair", fn);
        ember_rec_string_copy(&mode, m, sizeof m - 1);
        char c = strcmp(m, "one") == 0      ? 'o'
                 : strcmp(m, "int") == 0    ? 'i'
                 : strcmp(m, "double") == 0 ? 'd'
                 : strcmp(m, "record") == 0 ? 'r'
                                            : 0;
        if (!c)
            return ember_errorf(err, EMBER_EINVAL, "testfn.%s: mode must be "
                                "one, int, double or record", fn);
        st->id[st->n] = (uint64_t)id.u.i64;
        st->mode[st->n++] = c;
    }
    return EMBER_OK;
}

static ember_status accum_add_open(const ember_host_api *host,
                                   const uint8_t *arg, size_t arg_len,
                                   void **state, ember_error *err)
{
    (void)host;
    accum_state *st = g_host->alloc(sizeof *st);
    if (!st)
        return no_memory(err, "testfn.accum_add");
    memset(st, 0, sizeof *st);
    st->fail_partition = -1;
    ember_status s = accum_parse(arg, arg_len, 0, "accum_add", st, err);
    if (s != EMBER_OK) {
        g_host->free(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

/* accum_flaky's argument: (DIR, PARTITION, ID, MODE, ...). */
static ember_status accum_flaky_open(const ember_host_api *host,
                                     const uint8_t *arg, size_t arg_len,
                                     void **state, ember_error *err)
{
    (void)host;
    ember_value dir = {0}, part = {0};
    accum_state *st = g_host->alloc(sizeof *st);
    if (!st)
        return no_memory(err, "testfn.accum_flaky");
    memset(st, 0, sizeof *st);
    ember_status s = EMBER_OK;
    if (!arg || ember_rec_get(arg, arg_len, 0, &dir) != EMBER_OK ||
        ember_rec_get(arg, arg_len, 1, &part) != EMBER_OK ||
        dir.type != EMBER_TYPE_STRING || part.type != EMBER_TYPE_INT ||
        dir.u.str.len >= sizeof st->dir)
        s = ember_errorf(err, EMBER_EINVAL, "testfn.accum_flaky: the "
                         "argument must be (DIR, PARTITION, ID, MODE, ...)");
    if (s == EMBER_OK) {
        ember_rec_string_copy(&dir, st->dir, sizeof st->dir - 1);
        st->fail_partition = part.u.i64;
        s = accum_parse(arg, arg_len, 2, "accum_flaky", st, err);
    }
    if (s != EMBER_OK) {
        g_host->free(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

static void accum_close(void *state)
{
    g_host->free(state);
}

/* Adds what st says for one record; the host's status on failure. */
static ember_status accum_one(void *ctx, const uint8_t *rec, size_t len,
                              ember_error *err)
{
    const map_ctx *m = ctx;
    const accum_state *st = (const accum_state *)m->st;
    for (int k = 0; k < st->n; k++) {
        int64_t v = 0;
        ember_status s;
        if (st->mode[k] == 'i' || st->mode[k] == 'd')
            if (!first_int(rec, len, &v))
                return ember_errorf(err, EMBER_EINVAL,
                                    "testfn.accum_add: expected an int");
        switch (st->mode[k]) {
        case 'o': s = g_host->accum_add_i64(st->id[k], 1); break;
        case 'i': s = g_host->accum_add_i64(st->id[k], v); break;
        case 'd': s = g_host->accum_add_double(st->id[k], (double)v); break;
        default: s = g_host->accum_add(st->id[k], rec, len, err); break;
        }
        /* accum_add_i64 / _double have no message: their failure is
         * left to the runtime, which fails the attempt with its own */
        if (s != EMBER_OK && st->mode[k] == 'r')
            return s;
    }
    return EMBER_OK;
}

static ember_status accum_add_map(void *state, const ember_batch *in,
                                  ember_buf *out, uint64_t *out_count,
                                  ember_error *err)
{
    if (!EMBER_HOST_HAS(g_host, accum_add))
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "testfn.accum_add: the host has no accumulators");
    ember_status s = map_each(state, in, accum_one, out, out_count, err);
    return s == EMBER_OK ? pass_through(in, out, out_count, err) : s;
}

/* As accum_add; then the first attempt that adds in the partition the
 * argument names fails (marker file DIR/accum-flaky-P, O_EXCL: once per
 * partition across processes). */
static ember_status accum_flaky_map(void *state, const ember_batch *in,
                                    ember_buf *out, uint64_t *out_count,
                                    ember_error *err)
{
    const accum_state *st = state;
    ember_status s = accum_add_map(state, in, out, out_count, err);
    if (s != EMBER_OK || g_host->task_partition() != st->fail_partition)
        return s;
    char path[1100];
    snprintf(path, sizeof path, "%s/accum-flaky-%lld", st->dir,
             (long long)st->fail_partition);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd < 0)
        return EMBER_OK; /* failed once already */
    close(fd);
    return ember_errorf(err, EMBER_EIO, "flaky after adding");
}

static const ember_function_vtable accum_add_vt =
    MAP_VTABLE(accum_add_open, accum_close, accum_add_map);
static const ember_function_vtable accum_flaky_vt =
    MAP_VTABLE(accum_flaky_open, accum_close, accum_flaky_map);

/* ---- testfn.bcast_add (broadcast) ------------------------------------- */

static ember_status bcast_add_open(const ember_host_api *host,
                                   const uint8_t *arg, size_t arg_len,
                                   void **state, ember_error *err)
{
    (void)host;
    return open_int(arg, arg_len, "bcast_add", 1, state, err);
}

/* The table of a bcast_add step, and where its output goes. */
typedef struct bcast_ctx {
    map_ctx m;
    const uint8_t *table;
    size_t n; /* int64s in it */
} bcast_ctx;

static ember_status bcast_add_one(void *ctx, const uint8_t *rec, size_t len,
                                  ember_error *err)
{
    const bcast_ctx *b = ctx;
    int64_t v;
    if (!first_int(rec, len, &v))
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.bcast_add: expected an int");
    int64_t i = v % (int64_t)b->n;
    if (i < 0)
        i += (int64_t)b->n;
    uint64_t t = 0;
    for (int k = 7; k >= 0; k--)
        t = t << 8 | b->table[(size_t)i * 8 + (size_t)k];
    if (emit_int(&b->m, v + (int64_t)t) != EMBER_OK)
        return no_memory(err, "testfn.bcast_add");
    return EMBER_OK;
}

static ember_status bcast_add_map(void *state, const ember_batch *in,
                                  ember_buf *out, uint64_t *out_count,
                                  ember_error *err)
{
    bcast_ctx b = {{out, out_count, state}, NULL, 0};
    size_t len = 0;
    if (!EMBER_HOST_HAS(g_host, broadcast_value))
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "testfn.bcast_add: the host has no broadcasts");
    /* every batch asks: the executor's copy answers after the first */
    ember_status s = g_host->broadcast_value((uint64_t)*(int64_t *)state,
                                             &b.table, &len, err);
    if (s != EMBER_OK)
        return s;
    b.n = len / 8;
    if (b.n == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.bcast_add: the table is empty");
    return each_record(in, bcast_add_one, &b, err);
}

static const ember_function_vtable bcast_add_vt =
    MAP_VTABLE(bcast_add_open, close_int, bcast_add_map);

/* ---- the plugin -------------------------------------------------------- */

static const ember_component testfn_components[] = {
    EMBER_FUNCTION_COMPONENT("fail_on", "map: fails on the int K",
                             &fail_on_vt),
    EMBER_FUNCTION_COMPONENT("fail_first_attempt",
                             "map: fails attempt 0 of every task", &flaky_vt),
    EMBER_FUNCTION_COMPONENT("tag_partition",
                             "map: record -> (partition, record)", &tag_vt),
    EMBER_FUNCTION_COMPONENT("count_batch",
                             "map: record -> (its index in the task)",
                             &count_vt),
    EMBER_FUNCTION_COMPONENT("sleep_ms", "map: sleeps per batch, identity",
                             &sleep_vt),
    EMBER_FUNCTION_COMPONENT("slow_first_attempt", "map: sleeps per batch "
                             "in partition 0's first attempt, identity",
                             &slow_first_vt),
    EMBER_FUNCTION_COMPONENT("crash", "map: kills its own process",
                             &crash_vt),
    EMBER_FUNCTION_COMPONENT("two_per", "map: every record twice",
                             &two_per_vt),
    EMBER_FUNCTION_COMPONENT("not_bool", "map: every record -> (1)",
                             &not_bool_vt),
    EMBER_FUNCTION_COMPONENT("sum_pairs_zip",
                             "map: one (count) per tuple of the record",
                             &zip_count_vt),
    EMBER_FUNCTION_COMPONENT("concat_reduce",
                             "reduce: strings joined with '|'", &concat_vt),
    EMBER_FUNCTION_COMPONENT("product", "reduce: product of ints",
                             &product_vt),
    EMBER_FUNCTION_COMPONENT("key_mod", "map: an int key -> (key mod M)",
                             &key_mod_vt),
    EMBER_FUNCTION_COMPONENT("sum_count_create", "map: the int v -> (v, 1)",
                             &sum_count_create_vt),
    EMBER_FUNCTION_COMPONENT("sum_count",
                             "reduce: ints and (sum, count) -> (sum, count)",
                             &sum_count_vt),
    EMBER_FUNCTION_COMPONENT("counted",
                             "map: identity, counting records in a host "
                             "counter",
                             &counted_vt),
    EMBER_FUNCTION_COMPONENT("counted_file",
                             "map: identity, counting records in a file",
                             &counted_file_vt),
    EMBER_FUNCTION_COMPONENT("accum_add",
                             "map: identity, adding to accumulators",
                             &accum_add_vt),
    EMBER_FUNCTION_COMPONENT("accum_flaky",
                             "map: accum_add, failing one partition's "
                             "first attempt after adding",
                             &accum_flaky_vt),
    EMBER_FUNCTION_COMPONENT("bcast_add",
                             "map: v -> v + the broadcast table's T[v mod n]",
                             &bcast_add_vt),
};

EMBER_PLUGIN(testfn, "0.1.0", "functions for the engine tests",
             "Apache-2.0", testfn_components, testfn_init, NULL);
