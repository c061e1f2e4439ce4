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
 *
 * Threads: every function is safe to run in many tasks at once; state is
 * per task (open) or immutable.
 */
#include <signal.h>
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

/* The single int of an argument record; EMBER_EINVAL otherwise. */
static ember_status arg_int(const uint8_t *arg, size_t arg_len,
                            const char *fn, int64_t *out, ember_error *err)
{
    ember_value v;
    size_t count = 0;
    if (arg == NULL || ember_rec_validate(arg, arg_len, &count) != EMBER_OK ||
        count != 1 || ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_INT)
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.%s: the argument must be one int", fn);
    *out = v.u.i64;
    return EMBER_OK;
}

/* Per-task state of the functions that need some: an int, the argument
 * when parse is set, else 0. */
static ember_status open_int(const uint8_t *arg, size_t arg_len,
                             const char *fn, int parse, void **state,
                             ember_error *err)
{
    int64_t *st = g_host->alloc(sizeof *st);
    if (st == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "testfn.%s: out of memory",
                            fn);
    *st = 0;
    if (parse && arg_int(arg, arg_len, fn, st, err) != EMBER_OK) {
        g_host->free(st);
        return EMBER_EINVAL;
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
        return ember_errorf(err, EMBER_ENOMEM, "testfn: out of memory");
    *out_count += in->count;
    return EMBER_OK;
}

/* Appends the record (v), one int, to out and counts it; EMBER_ENOMEM. */
static ember_status emit_int(ember_buf *out, uint64_t *out_count, int64_t v)
{
    uint8_t tmp[16];
    ember_buf one = ember_buf_fixed(tmp, sizeof tmp);
    if (ember_rec_put_int(&one, v) != EMBER_OK ||
        ember_batch_append(out, one.data, one.len) != EMBER_OK)
        return EMBER_ENOMEM;
    (*out_count)++;
    return EMBER_OK;
}

/* Adds one value (a record) to a reduce's running result ctx. */
typedef ember_status (*fold_fn)(void *ctx, const uint8_t *rec, size_t len,
                                ember_error *err);

/* A reduce's loop: one(ctx, ...) on acc (when not NULL), then on each
 * record of values, up to the first error. */
static ember_status fold_values(const uint8_t *acc, size_t acc_len,
                                const ember_batch *values, fold_fn one,
                                void *ctx, ember_error *err)
{
    ember_batch_cursor c = ember_batch_cursor_of(values);
    const uint8_t *rec;
    size_t len;
    ember_status s = EMBER_OK;
    if (acc != NULL)
        s = one(ctx, acc, acc_len, err);
    while (s == EMBER_OK && ember_batch_next(&c, &rec, &len) == EMBER_OK)
        s = one(ctx, rec, len, err);
    return s;
}

/* ---- testfn.fail_on ---------------------------------------------------- */

static ember_status fail_on_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 void **state, ember_error *err)
{
    (void)host;
    return open_int(arg, arg_len, "fail_on", 1, state, err);
}

static ember_status fail_on_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    int64_t k = *(const int64_t *)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_value v;
        if (ember_rec_get(rec, len, 0, &v) == EMBER_OK &&
            v.type == EMBER_TYPE_INT && v.u.i64 == k)
            return ember_errorf(err, EMBER_EINVAL, "bad record %lld",
                                (long long)k);
    }
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable fail_on_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = fail_on_open,
    .close = close_int,
    .map_batch = fail_on_map,
};

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

static const ember_function_vtable flaky_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = flaky_map,
};

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

static ember_status tag_map(void *state, const ember_batch *in,
                            ember_buf *out, uint64_t *out_count,
                            ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    int64_t part = EMBER_HOST_HAS(g_host, task_partition)
                       ? g_host->task_partition()
                       : -2;
    ember_buf one = ember_buf_heap();
    ember_status s = EMBER_OK;
    while (s == EMBER_OK && ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        one.len = 0;
        s = ember_rec_put_int(&one, part);
        if (s == EMBER_OK)
            s = put_as_value(&one, rec, len);
        if (s == EMBER_OK)
            s = ember_batch_append(out, one.data, one.len);
        if (s == EMBER_OK)
            (*out_count)++;
    }
    ember_buf_release(&one);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "testfn.tag_partition: cannot write");
    return EMBER_OK;
}

static const ember_function_vtable tag_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = tag_map,
};

/* ---- testfn.count_batch ------------------------------------------------ */

static ember_status count_open(const ember_host_api *host, const uint8_t *arg,
                               size_t arg_len, void **state, ember_error *err)
{
    (void)host;
    return open_int(arg, arg_len, "count_batch", 0, state, err);
}

static ember_status count_map(void *state, const ember_batch *in,
                              ember_buf *out, uint64_t *out_count,
                              ember_error *err)
{
    int64_t *seen = state;
    for (uint64_t i = 0; i < in->count; i++)
        if (emit_int(out, out_count, (*seen)++) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "testfn.count_batch: out of memory");
    return EMBER_OK;
}

static const ember_function_vtable count_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = count_open,
    .close = close_int,
    .map_batch = count_map,
};

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

static const ember_function_vtable sleep_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = sleep_open,
    .close = close_int,
    .map_batch = sleep_map,
};

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

static const ember_function_vtable crash_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = crash_map,
};

/* ---- testfn.two_per ---------------------------------------------------- */

static ember_status two_per_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        if (ember_batch_append(out, rec, len) != EMBER_OK ||
            ember_batch_append(out, rec, len) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "testfn.two_per: out of memory");
        *out_count += 2;
    }
    return EMBER_OK;
}

static const ember_function_vtable two_per_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = two_per_map,
};

/* ---- testfn.not_bool --------------------------------------------------- */

static ember_status not_bool_map(void *state, const ember_batch *in,
                                 ember_buf *out, uint64_t *out_count,
                                 ember_error *err)
{
    static const uint8_t one[] = {0x15, 0x01}; /* the int 1 */
    (void)state;
    for (uint64_t i = 0; i < in->count; i++) {
        if (ember_batch_append(out, one, sizeof one) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "testfn.not_bool: out of memory");
        (*out_count)++;
    }
    return EMBER_OK;
}

static const ember_function_vtable not_bool_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = not_bool_map,
};

/* ---- testfn.sum_pairs_zip ---------------------------------------------- */

static ember_status zip_count_map(void *state, const ember_batch *in,
                                  ember_buf *out, uint64_t *out_count,
                                  ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
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
            if (emit_int(out, out_count, n) != EMBER_OK)
                return ember_errorf(err, EMBER_ENOMEM,
                                    "testfn.sum_pairs_zip: out of memory");
        }
        if (s != EMBER_END)
            return ember_errorf(err, EMBER_EINVAL,
                                "testfn.sum_pairs_zip: malformed record");
    }
    return EMBER_OK;
}

static const ember_function_vtable zip_count_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = zip_count_map,
};

/* ---- testfn.concat_reduce ---------------------------------------------- */

/* Appends the single string of rec[0..len) to ctx (a plain byte buffer,
 * an ember_buf). */
static ember_status concat_one(void *ctx, const uint8_t *rec, size_t len,
                               ember_error *err)
{
    ember_buf *acc = ctx;
    ember_value v;
    size_t count = 0;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK || count != 1 ||
        ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_STRING)
        return ember_errorf(err, EMBER_EINVAL,
                            "testfn.concat_reduce: expected one string");
    if (acc->len > 0 && ember_buf_put_u8(acc, '|') != EMBER_OK)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    if (ember_buf_reserve(acc, v.u.str.len) != EMBER_OK)
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

static const ember_function_vtable concat_vt = {
    .shape = EMBER_FN_REDUCE,
    .determinism = EMBER_DETERMINISTIC,
    .reduce = concat_reduce,
};

/* ---- testfn.product ---------------------------------------------------- */

/* Multiplies ctx (an int64_t) by the single int of rec[0..len). */
static ember_status product_one(void *ctx, const uint8_t *rec, size_t len,
                                ember_error *err)
{
    int64_t *p = ctx;
    ember_value v;
    size_t count = 0;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK || count != 1 ||
        ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_INT)
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

static const ember_function_vtable product_vt = {
    .shape = EMBER_FN_REDUCE,
    .determinism = EMBER_DETERMINISTIC,
    .reduce = product_reduce,
};

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

static ember_status key_mod_map(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    int64_t m = *(const int64_t *)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_value v;
        if (ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
            v.type != EMBER_TYPE_INT)
            return ember_errorf(err, EMBER_EINVAL,
                                "testfn.key_mod: expected an int key");
        int64_t r = v.u.i64 % m;
        if (emit_int(out, out_count, r < 0 ? r + m : r) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "testfn.key_mod: out of memory");
    }
    return EMBER_OK;
}

static const ember_function_vtable key_mod_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = key_mod_open,
    .close = close_int,
    .map_batch = key_mod_map,
};

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

static ember_status sum_count_create_map(void *state, const ember_batch *in,
                                         ember_buf *out, uint64_t *out_count,
                                         ember_error *err)
{
    (void)state;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        int64_t sum, count;
        size_t mark;
        ember_status s = sum_count_of(rec, len, &sum, &count, err);
        if (s != EMBER_OK)
            return s;
        if (count != 1)
            return ember_errorf(err, EMBER_EINVAL,
                                "testfn.sum_count_create: expected an int");
        if (ember_batch_frame_begin(out, &mark) != EMBER_OK ||
            put_sum_count(out, sum, 1) != EMBER_OK ||
            ember_batch_frame_end(out, mark) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM,
                                "testfn.sum_count_create: out of memory");
        (*out_count)++;
    }
    return EMBER_OK;
}

static const ember_function_vtable sum_count_create_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .map_batch = sum_count_create_map,
};

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
        return ember_errorf(err, EMBER_ENOMEM,
                            "testfn.sum_count: out of memory");
    return EMBER_OK;
}

static const ember_function_vtable sum_count_vt = {
    .shape = EMBER_FN_REDUCE,
    .determinism = EMBER_DETERMINISTIC,
    .reduce = sum_count_reduce,
};

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
};

EMBER_PLUGIN(testfn, "0.1.0", "functions for the engine tests",
             "Apache-2.0", testfn_components, testfn_init, NULL);
