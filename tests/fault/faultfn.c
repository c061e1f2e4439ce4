/*
 * faultfn.c — plugin "faultfn": functions that inject faults into tasks
 * and record what ran, across executor processes, in files (the fault
 * tests, tests/fault/fault_test.c, load it beside testfn by path).
 *
 *   faultfn.log_work    MAP  identity; appends one line "P N PID\n" per
 *                            batch it maps to DIR/work.log (P the task's
 *                            partition, N the batch's records, PID the
 *                            process that ran it): what a test reads to
 *                            see which partitions were computed (and not
 *                            served from a cache) by which executor. The
 *                            argument is the string DIR.
 *   faultfn.fail_times  MAP  identity, except that the first batch of a
 *                            task of partition P fails with "faultfn:
 *                            injected failure K of N (partition P)" while
 *                            fewer than N of its tasks have failed so
 *                            far: the count is kept as marker files
 *                            DIR/fail.P.K created with O_EXCL, so it holds
 *                            across attempts on different executor
 *                            processes. The argument is the record
 *                            (DIR, P, N).
 *
 * Threads: both are safe in many tasks at once; their state is per task,
 * the files are shared through O_APPEND writes of one line and O_EXCL
 * creates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ember/batch.h"
#include "ember/function.h"
#include "ember/plugin.h"
#include "ember/record.h"

/* The host table, kept by init for the task_* slots and alloc. */
static const ember_host_api *g_host;

static ember_status faultfn_init(const ember_host_api *host, ember_error *err)
{
    (void)err;
    g_host = host;
    return EMBER_OK;
}

/* Per-task state of both functions. */
typedef struct fault_state {
    char dir[1024];
    int64_t partition; /* fail_times: the partition that fails */
    int64_t times;     /* fail_times: how many of its tasks fail */
    int checked;       /* fail_times: this task has decided */
} fault_state;

/* Copies the string element i of arg into dst (NUL-terminated);
 * EMBER_EINVAL naming fn when it is not a string or does not fit. */
static ember_status arg_string(const uint8_t *arg, size_t len, size_t i,
                               char *dst, size_t cap, const char *fn,
                               ember_error *err)
{
    ember_value v;
    if (arg == NULL || ember_rec_get(arg, len, i, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_STRING)
        return ember_errorf(err, EMBER_EINVAL,
                            "faultfn.%s: argument %zu must be a string (a "
                            "directory)", fn, i);
    size_t n = ember_rec_string_copy(&v, dst, cap - 1);
    if (n >= cap)
        return ember_errorf(err, EMBER_EINVAL,
                            "faultfn.%s: the directory is over %zu bytes",
                            fn, cap - 1);
    dst[n] = '\0';
    return EMBER_OK;
}

/* The int element i of arg into *out; EMBER_EINVAL naming fn. */
static ember_status arg_int(const uint8_t *arg, size_t len, size_t i,
                            int64_t *out, const char *fn, ember_error *err)
{
    ember_value v;
    if (arg == NULL || ember_rec_get(arg, len, i, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_INT)
        return ember_errorf(err, EMBER_EINVAL,
                            "faultfn.%s: argument %zu must be an int", fn, i);
    *out = v.u.i64;
    return EMBER_OK;
}

/* A zeroed fault_state from the host's allocator. */
static ember_status state_new(fault_state **out, const char *fn,
                              ember_error *err)
{
    *out = g_host->alloc(sizeof **out);
    if (*out == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "faultfn.%s: out of memory",
                            fn);
    memset(*out, 0, sizeof **out);
    return EMBER_OK;
}

static void state_close(void *state)
{
    g_host->free(state);
}

/* Copies in to out unchanged, adding its records to *out_count. */
static ember_status pass_through(const ember_batch *in, ember_buf *out,
                                 uint64_t *out_count, ember_error *err)
{
    if (ember_buf_append(out, in->data, in->len) != EMBER_OK)
        return ember_errorf(err, EMBER_ENOMEM, "faultfn: out of memory");
    *out_count += in->count;
    return EMBER_OK;
}

/* The task's partition, or -1 when the host cannot tell. */
static int64_t task_partition(void)
{
    return EMBER_HOST_HAS(g_host, task_partition) ? g_host->task_partition()
                                                  : -1;
}

/* ---- faultfn.log_work -------------------------------------------------- */

static ember_status log_open(const ember_host_api *host, const uint8_t *arg,
                             size_t arg_len, void **state, ember_error *err)
{
    (void)host;
    fault_state *st;
    ember_status s = state_new(&st, "log_work", err);
    if (s == EMBER_OK)
        s = arg_string(arg, arg_len, 0, st->dir, sizeof st->dir, "log_work",
                       err);
    if (s != EMBER_OK) {
        state_close(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

static ember_status log_map(void *state, const ember_batch *in,
                            ember_buf *out, uint64_t *out_count,
                            ember_error *err)
{
    const fault_state *st = state;
    char path[1100], line[96];
    snprintf(path, sizeof path, "%s/work.log", st->dir);
    int n = snprintf(line, sizeof line, "%lld %llu %ld\n",
                     (long long)task_partition(),
                     (unsigned long long)in->count, (long)getpid());
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return ember_errorf(err, EMBER_EIO, "faultfn.log_work: %s: %s", path,
                            strerror(errno));
    /* one write of one short line: O_APPEND keeps lines whole when tasks
     * of several processes log at once */
    ssize_t w = write(fd, line, (size_t)n);
    int e = errno;
    close(fd);
    if (w != n)
        return ember_errorf(err, EMBER_EIO, "faultfn.log_work: %s: %s", path,
                            w < 0 ? strerror(e) : "short write");
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable log_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = log_open,
    .close = state_close,
    .map_batch = log_map,
};

/* ---- faultfn.fail_times ------------------------------------------------ */

static ember_status fail_open(const ember_host_api *host, const uint8_t *arg,
                              size_t arg_len, void **state, ember_error *err)
{
    (void)host;
    fault_state *st;
    ember_status s = state_new(&st, "fail_times", err);
    if (s == EMBER_OK)
        s = arg_string(arg, arg_len, 0, st->dir, sizeof st->dir,
                       "fail_times", err);
    if (s == EMBER_OK)
        s = arg_int(arg, arg_len, 1, &st->partition, "fail_times", err);
    if (s == EMBER_OK)
        s = arg_int(arg, arg_len, 2, &st->times, "fail_times", err);
    if (s != EMBER_OK) {
        state_close(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

/* Whether this task is one of the first st->times of its partition: the
 * first marker DIR/fail.P.K it can create says which one (K from 0). */
static ember_status fail_decide(fault_state *st, ember_error *err)
{
    st->checked = 1;
    if (task_partition() != st->partition)
        return EMBER_OK;
    for (int64_t k = 0; k < st->times; k++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/fail.%lld.%lld", st->dir,
                 (long long)st->partition, (long long)k);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            close(fd);
            return ember_errorf(err, EMBER_EIO,
                                "faultfn: injected failure %lld of %lld "
                                "(partition %lld)",
                                (long long)k + 1, (long long)st->times,
                                (long long)st->partition);
        }
        if (errno != EEXIST)
            return ember_errorf(err, EMBER_EIO, "faultfn.fail_times: %s: %s",
                                path, strerror(errno));
    }
    return EMBER_OK;
}

static ember_status fail_map(void *state, const ember_batch *in,
                             ember_buf *out, uint64_t *out_count,
                             ember_error *err)
{
    fault_state *st = state;
    if (!st->checked) {
        ember_status s = fail_decide(st, err);
        if (s != EMBER_OK)
            return s;
    }
    return pass_through(in, out, out_count, err);
}

static const ember_function_vtable fail_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = fail_open,
    .close = state_close,
    .map_batch = fail_map,
};

/* ---- the plugin -------------------------------------------------------- */

static const ember_component faultfn_components[] = {
    EMBER_FUNCTION_COMPONENT("log_work",
                             "map: identity, logging each batch's partition, "
                             "size and process to DIR/work.log",
                             &log_vt),
    EMBER_FUNCTION_COMPONENT("fail_times",
                             "map: identity; the first N tasks of partition "
                             "P fail",
                             &fail_vt),
};

EMBER_PLUGIN(faultfn, "0.1.0", "fault injection for the fault tests",
             "Apache-2.0", faultfn_components, faultfn_init, NULL);
