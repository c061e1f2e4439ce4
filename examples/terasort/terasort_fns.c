/*
 * terasort_fns.c — plugin "terasort": a source and a sink of fixed 100-byte
 * records for the terasort example (terasort.c).
 *
 * terasort.records (source) reads a file of 100-byte records. Its argument
 * is the record (string path). plan() cuts the file into byte ranges of
 * whole records (at least min_partitions, at most 32 MiB each) and refuses
 * a missing file or one whose size is not a multiple of 100; each reader
 * returns the pairs (bytes key: the first 10 bytes, bytes rest: the other
 * 90), batch by batch. A file that changed size since plan() is an error,
 * not silently different output.
 *
 * terasort.out (sink) writes the (key, rest) pairs of one partition,
 * byte-exact and in order, to DIR/_temporary/part-NNNNN.attempt-A, and its
 * commit — called only for the attempt the kernel's commit arbiter chose —
 * renames that file to DIR/part-NNNNN. Its argument is the record
 * (string DIR).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ember/sdk.h>

#define RECORD 100
#define KEY 10
/* Largest split, in bytes (a multiple of RECORD). */
#define MAX_SPLIT ((int64_t)32 * 1024 * 1024 / RECORD * RECORD)
/* Bytes an encoded pair takes at most: frame, two tags, escapes of 0x00
 * (one extra byte each) and terminators. */
#define ENCODED_MAX (2 + 2 * (RECORD + 2))
#define MAX_PATH 4096

/* Reads a string element into dst (NUL-terminated). */
static ember_status arg_string(const ember_value *v, char *dst, size_t cap)
{
    if (v->type != EMBER_TYPE_STRING || v->u.str.len == 0 ||
        v->u.str.len >= cap)
        return EMBER_EINVAL;
    size_t n = ember_rec_string_copy(v, dst, cap - 1);
    if (memchr(dst, 0, n))
        return EMBER_EINVAL;
    dst[n] = '\0';
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * terasort.records
 * ---------------------------------------------------------------------- */

static ember_status rec_plan(const ember_host_api *host, const uint8_t *arg,
                             size_t arg_len, uint32_t min_partitions,
                             ember_buf *splits, uint64_t *count,
                             ember_error *err)
{
    (void)host;
    char path[MAX_PATH];
    ember_value v;
    if (ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK ||
        arg_string(&v, path, sizeof path) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "terasort.records: the "
                            "argument must be (path)");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ember_errorf(err, EMBER_ENOTFOUND, "terasort.records: %s: %s",
                            path, strerror(errno));
    int64_t size = (int64_t)sb.st_size;
    if (!S_ISREG(sb.st_mode) || size % RECORD != 0)
        return ember_errorf(err, EMBER_EINVAL, "terasort.records: %s is not "
                            "a file of %d-byte records (%lld bytes)", path,
                            RECORD, (long long)size);
    int64_t parts = min_partitions ? min_partitions : 1;
    int64_t split = (size / RECORD + parts - 1) / parts * RECORD;
    if (split > MAX_SPLIT)
        split = MAX_SPLIT;
    if (split < RECORD)
        split = RECORD;
    for (int64_t off = 0; off < size; off += split) {
        int64_t end = off + split < size ? off + split : size;
        uint8_t tmp[MAX_PATH + 64];
        ember_buf r = ember_buf_fixed(tmp, sizeof tmp);
        ember_status s = ember_rec_put_string(&r, path, strlen(path));
        if (s == EMBER_OK)
            s = ember_rec_put_int(&r, off);
        if (s == EMBER_OK)
            s = ember_rec_put_int(&r, end);
        if (s == EMBER_OK)
            s = ember_rec_put_int(&r, size);
        if (s == EMBER_OK)
            s = ember_batch_append(splits, r.data, r.len);
        if (s != EMBER_OK)
            return ember_errorf(err, s, "terasort.records: out of memory");
        (*count)++;
    }
    return EMBER_OK;
}

typedef struct reader {
    const ember_host_api *host;
    char path[MAX_PATH];
    int fd;
    int64_t off, end;
    uint8_t *chunk;
    size_t chunk_cap;
} reader;

static void rec_close(void *state)
{
    reader *r = state;
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    r->host->free(r->chunk);
    r->host->free(r);
}

static ember_status rec_open(const ember_host_api *host, const uint8_t *split,
                             size_t split_len, void **state, ember_error *err)
{
    ember_rec_cursor c = ember_rec_cursor_init(split, split_len);
    ember_value path, off, end, size;
    reader *r = host->alloc(sizeof *r);
    if (!r)
        return ember_errorf(err, EMBER_ENOMEM, "terasort.records: out of "
                            "memory");
    memset(r, 0, sizeof *r);
    r->host = host;
    r->fd = -1;
    if (ember_rec_next(&c, &path) != EMBER_OK ||
        ember_rec_next(&c, &off) != EMBER_OK ||
        ember_rec_next(&c, &end) != EMBER_OK ||
        ember_rec_next(&c, &size) != EMBER_OK ||
        arg_string(&path, r->path, sizeof r->path) != EMBER_OK ||
        off.type != EMBER_TYPE_INT || end.type != EMBER_TYPE_INT ||
        size.type != EMBER_TYPE_INT || off.u.i64 < 0 ||
        off.u.i64 % RECORD != 0 || end.u.i64 < off.u.i64) {
        rec_close(r);
        return ember_errorf(err, EMBER_EINVAL, "terasort.records: a "
                            "malformed split");
    }
    r->off = off.u.i64;
    r->end = end.u.i64;
    r->fd = open(r->path, O_RDONLY);
    struct stat sb;
    if (r->fd < 0 || fstat(r->fd, &sb) != 0 || sb.st_size != size.u.i64) {
        ember_status s = ember_errorf(
            err, EMBER_EIO, "terasort.records: %s: %s", r->path,
            r->fd < 0 ? strerror(errno)
                      : "its size changed since the job was planned");
        rec_close(r);
        return s;
    }
    *state = r;
    return EMBER_OK;
}

/* Appends the pair (bytes rec[0..10), bytes rec[10..100)) framed. */
static ember_status put_pair(ember_buf *out, const uint8_t *rec)
{
    size_t mark;
    ember_status s = ember_batch_frame_begin(out, &mark);
    if (s == EMBER_OK)
        s = ember_rec_put_bytes(out, rec, KEY);
    if (s == EMBER_OK)
        s = ember_rec_put_bytes(out, rec + KEY, RECORD - KEY);
    if (s == EMBER_OK)
        s = ember_batch_frame_end(out, mark);
    return s;
}

static ember_status rec_read(void *state, size_t max_bytes, ember_buf *out,
                             uint64_t *count, ember_error *err)
{
    reader *r = state;
    if (r->off >= r->end)
        return EMBER_END;
    size_t n = max_bytes / ENCODED_MAX;
    if (n == 0)
        n = 1;
    if ((int64_t)n * RECORD > r->end - r->off)
        n = (size_t)((r->end - r->off) / RECORD);
    size_t want = n * RECORD;
    if (want > r->chunk_cap) {
        r->host->free(r->chunk);
        r->chunk = r->host->alloc(want);
        r->chunk_cap = r->chunk ? want : 0;
        if (!r->chunk)
            return ember_errorf(err, EMBER_ENOMEM, "terasort.records: out "
                                "of memory");
    }
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(r->fd, r->chunk + got, want - got,
                          (off_t)(r->off + (int64_t)got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return ember_errorf(err, EMBER_EIO, "terasort.records: %s: %s at "
                                "byte %" PRId64, r->path,
                                k < 0 ? strerror(errno)
                                      : "unexpected end of file",
                                r->off + (int64_t)got);
        got += (size_t)k;
    }
    ember_status s = ember_buf_reserve(out, n * ENCODED_MAX);
    for (size_t k = 0; s == EMBER_OK && k < n; k++)
        s = put_pair(out, r->chunk + k * RECORD);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "terasort.records: out of memory");
    *count += n;
    r->off += (int64_t)want;
    return EMBER_OK;
}

/* ------------------------------------------------------------------------
 * terasort.out
 * ---------------------------------------------------------------------- */

typedef struct writer {
    const ember_host_api *host;
    char tmp[MAX_PATH + 128], final[MAX_PATH + 64];
    int fd;
    ember_buf bytes; /* one batch's records, raw */
} writer;

static void out_free(writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    ember_buf_release(&w->bytes);
    w->host->free(w);
}

static ember_status out_open(const ember_host_api *host, const uint8_t *arg,
                             size_t arg_len, uint32_t partition,
                             uint32_t attempt, void **state, ember_error *err)
{
    char dir[MAX_PATH];
    ember_value v;
    if (ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK ||
        arg_string(&v, dir, sizeof dir) != EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "terasort.out: the argument "
                            "must be (output directory)");
    writer *w = host->alloc(sizeof *w);
    if (!w)
        return ember_errorf(err, EMBER_ENOMEM, "terasort.out: out of memory");
    memset(w, 0, sizeof *w);
    w->host = host;
    w->bytes = ember_buf_heap();
    snprintf(w->tmp, sizeof w->tmp, "%s/_temporary", dir);
    if (mkdir(w->tmp, 0777) != 0 && errno != EEXIST) {
        ember_status s = ember_errorf(err, EMBER_EIO, "terasort.out: cannot "
                                      "create %s: %s", w->tmp,
                                      strerror(errno));
        w->fd = -1;
        out_free(w);
        return s;
    }
    snprintf(w->tmp, sizeof w->tmp, "%s/_temporary/part-%05" PRIu32
             ".attempt-%" PRIu32, dir, partition, attempt);
    snprintf(w->final, sizeof w->final, "%s/part-%05" PRIu32, dir, partition);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (w->fd < 0) {
        ember_status s = ember_errorf(err, EMBER_EIO, "terasort.out: cannot "
                                      "create %s: %s", w->tmp,
                                      strerror(errno));
        out_free(w);
        return s;
    }
    *state = w;
    return EMBER_OK;
}

/* Appends the raw bytes of one (bytes, bytes) pair to w->bytes. */
static ember_status raw_record(writer *w, const uint8_t *rec, size_t len,
                               ember_error *err)
{
    ember_rec_cursor c = ember_rec_cursor_init(rec, len);
    ember_value k, v;
    if (ember_rec_next(&c, &k) != EMBER_OK ||
        ember_rec_next(&c, &v) != EMBER_OK || k.type != EMBER_TYPE_BYTES ||
        v.type != EMBER_TYPE_BYTES || k.u.str.len + v.u.str.len != RECORD)
        return ember_errorf(err, EMBER_EINVAL,
                            "terasort.out: expected (bytes key, bytes rest) "
                            "of %d bytes together", RECORD);
    uint8_t *p = w->bytes.data + w->bytes.len;
    ember_rec_string_copy(&k, p, k.u.str.len);
    ember_rec_string_copy(&v, p + k.u.str.len, v.u.str.len);
    w->bytes.len += RECORD;
    return EMBER_OK;
}

static ember_status out_write(void *state, const ember_batch *in,
                              ember_error *err)
{
    writer *w = state;
    w->bytes.len = 0;
    ember_status s = ember_buf_reserve(&w->bytes, in->count * RECORD);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "terasort.out: out of memory");
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    while (n < in->count && (s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        if ((s = raw_record(w, rec, len, err)) != EMBER_OK)
            return s;
        n++;
    }
    for (size_t done = 0; done < w->bytes.len;) {
        ssize_t k = write(w->fd, w->bytes.data + done, w->bytes.len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ember_errorf(err, EMBER_EIO, "terasort.out: writing %s: "
                                "%s", w->tmp, strerror(errno));
        done += (size_t)k;
    }
    return EMBER_OK;
}

static ember_status out_commit(void *state, ember_error *err)
{
    writer *w = state;
    ember_status s = EMBER_OK;
    if (close(w->fd) != 0 || rename(w->tmp, w->final) != 0)
        s = ember_errorf(err, EMBER_EIO, "terasort.out: committing %s: %s",
                         w->final, strerror(errno));
    w->fd = -1;
    if (s != EMBER_OK)
        unlink(w->tmp);
    out_free(w);
    return s;
}

static void out_abort(void *state)
{
    writer *w = state;
    unlink(w->tmp);
    out_free(w);
}

static const ember_source_vtable records_vt = {
    .plan = rec_plan,
    .open = rec_open,
    .read = rec_read,
    .close = rec_close,
};

static const ember_sink_vtable out_vt = {
    .open = out_open,
    .write = out_write,
    .commit = out_commit,
    .abort = out_abort,
};

static const ember_component components[] = {
    EMBER_SOURCE_COMPONENT("records",
                           "a file of 100-byte records -> (key10, rest90) "
                           "pairs", &records_vt),
    EMBER_SINK_COMPONENT("out",
                         "(key10, rest90) pairs -> DIR/part-NNNNN, raw",
                         &out_vt),
};

EMBER_PLUGIN(terasort, "1.0.0", "100-byte record input and output for the "
             "terasort example", "Apache-2.0", components, NULL, NULL);
