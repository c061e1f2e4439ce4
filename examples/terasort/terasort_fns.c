/*
 * terasort_fns.c — plugin "terasort": reading and writing fixed 100-byte
 * records for the terasort example (terasort.c).
 *
 * terasort.read (flat_map) turns a split number i into the records of byte
 * range [i*S, min((i+1)*S, size)) of the input file, each as the pair
 * (bytes key: the first 10 bytes, bytes rest: the other 90). Its argument
 * is the record (string path, int S, int size); S is a multiple of 100 and
 * size the file's size as the driver saw it (a file that changed since is
 * an error, not silently different output).
 *
 * terasort.write (map_partitions_with_index) writes the (key, rest) pairs
 * of one partition, byte-exact and in order, to
 * DIR/_temporary/part-NNNNN.attempt-A and returns one record
 * (int partition, int attempt, int records) per batch. The driver then
 * commits the attempt whose results it collected (renames its file to
 * DIR/part-NNNNN): the attempt that produced the results is the one whose
 * output is kept, as Hadoop's file output committer does at job commit.
 * Its argument is the record (string DIR).
 *
 * Both keep their state per task (open/close); calls on one state are not
 * concurrent.
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
/* Bytes read from the input per pread. */
#define READ_CHUNK (1024 * RECORD * 10)
#define MAX_PATH 4096

/* Reads a string element of arg into dst (NUL-terminated). */
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
 * terasort.read
 * ---------------------------------------------------------------------- */

typedef struct reader {
    const ember_host_api *host;
    char path[MAX_PATH];
    int64_t split;   /* S */
    int64_t size;    /* the input's size when the driver planned */
    uint8_t *chunk;  /* READ_CHUNK bytes */
} reader;

static void read_close(void *state)
{
    reader *r = state;
    if (!r)
        return;
    r->host->free(r->chunk);
    r->host->free(r);
}

static ember_status read_open(const ember_host_api *host, const uint8_t *arg,
                              size_t arg_len, void **state, ember_error *err)
{
    ember_rec_cursor c = ember_rec_cursor_init(arg, arg_len);
    ember_value path, split, size;
    reader *r = host->alloc(sizeof *r);
    if (!r)
        return ember_errorf(err, EMBER_ENOMEM, "terasort.read: out of memory");
    r->host = host;
    r->chunk = host->alloc(READ_CHUNK);
    if (!r->chunk) {
        read_close(r);
        return ember_errorf(err, EMBER_ENOMEM, "terasort.read: out of memory");
    }
    if (ember_rec_next(&c, &path) != EMBER_OK ||
        ember_rec_next(&c, &split) != EMBER_OK ||
        ember_rec_next(&c, &size) != EMBER_OK ||
        arg_string(&path, r->path, sizeof r->path) != EMBER_OK ||
        split.type != EMBER_TYPE_INT || size.type != EMBER_TYPE_INT ||
        split.u.i64 <= 0 || split.u.i64 % RECORD != 0 || size.u.i64 < 0) {
        read_close(r);
        return ember_errorf(err, EMBER_EINVAL,
                            "terasort.read: the argument must be (path, "
                            "split bytes (a multiple of %d), file size)",
                            RECORD);
    }
    r->split = split.u.i64;
    r->size = size.u.i64;
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
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/* The records of split i of r's file, appended to out. */
static ember_status read_split(reader *r, int fd, int64_t i, ember_buf *out,
                               uint64_t *out_count, ember_error *err)
{
    if (i < 0 || i >= (r->size + r->split - 1) / r->split)
        return ember_errorf(err, EMBER_EINVAL,
                            "terasort.read: split %" PRId64 " is out of range",
                            i);
    int64_t off = i * r->split;
    int64_t end = off + r->split < r->size ? off + r->split : r->size;
    /* about 104 bytes per record once encoded: reserve once */
    ember_status s = ember_buf_reserve(out, (size_t)(end - off) / RECORD * 106);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "terasort.read: out of memory");
    while (off < end) {
        size_t want = end - off < READ_CHUNK ? (size_t)(end - off) : READ_CHUNK;
        ssize_t got = pread(fd, r->chunk, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 || (size_t)got != want)
            return ember_errorf(err, EMBER_EIO,
                                "terasort.read: %s: %s at byte %" PRId64
                                " (did the file change during the job?)",
                                r->path,
                                got < 0 ? strerror(errno)
                                        : "unexpected end of file",
                                off + (got > 0 ? got : 0));
        for (size_t k = 0; k + RECORD <= (size_t)got; k += RECORD) {
            if ((s = put_pair(out, r->chunk + k)) != EMBER_OK)
                return ember_errorf(err, s, "terasort.read: out of memory");
            (*out_count)++;
        }
        off += got;
    }
    return EMBER_OK;
}

/* One input record (int i) per split: its records out. */
static ember_status read_batch(void *state, const ember_batch *in,
                               ember_buf *out, uint64_t *out_count,
                               ember_error *err)
{
    reader *r = state;
    int fd = open(r->path, O_RDONLY);
    if (fd < 0)
        return ember_errorf(err, EMBER_EIO, "terasort.read: cannot open %s: %s",
                            r->path, strerror(errno));
    struct stat sb;
    ember_status s = EMBER_OK;
    if (fstat(fd, &sb) != 0 || sb.st_size != r->size) {
        s = ember_errorf(err, EMBER_EIO,
                         "terasort.read: %s is %lld bytes, %" PRId64
                         " when the job started",
                         r->path, (long long)sb.st_size, r->size);
        goto out;
    }
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        ember_value v;
        if (ember_rec_get(rec, len, 0, &v) != EMBER_OK ||
            v.type != EMBER_TYPE_INT) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "terasort.read: expected a split number (int)");
            goto out;
        }
        if ((s = read_split(r, fd, v.u.i64, out, out_count, err)) != EMBER_OK)
            goto out;
    }
    if (s == EMBER_END)
        s = EMBER_OK;
    else
        s = ember_errorf(err, EMBER_EINVAL, "terasort.read: malformed batch");
out:
    close(fd);
    return s;
}

/* ------------------------------------------------------------------------
 * terasort.write
 * ---------------------------------------------------------------------- */

typedef struct writer {
    const ember_host_api *host;
    char dir[MAX_PATH];
    int fd;              /* -1 until the first batch */
    int64_t partition;
    int64_t attempt;
    ember_buf bytes;     /* one batch's records, raw */
} writer;

static void write_close(void *state)
{
    writer *w = state;
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    ember_buf_release(&w->bytes);
    w->host->free(w);
}

static ember_status write_open(const ember_host_api *host, const uint8_t *arg,
                               size_t arg_len, void **state, ember_error *err)
{
    ember_value dir;
    writer *w = host->alloc(sizeof *w);
    if (!w)
        return ember_errorf(err, EMBER_ENOMEM,
                            "terasort.write: out of memory");
    w->host = host;
    w->fd = -1;
    w->bytes = ember_buf_heap();
    if (ember_rec_get(arg, arg_len, 0, &dir) != EMBER_OK ||
        arg_string(&dir, w->dir, sizeof w->dir - 64) != EMBER_OK) {
        write_close(w);
        return ember_errorf(err, EMBER_EINVAL,
                            "terasort.write: the argument must be (output "
                            "directory)");
    }
    *state = w;
    return EMBER_OK;
}

/* Creates this attempt's file under DIR/_temporary (first batch only). */
static ember_status start_file(writer *w, ember_error *err)
{
    if (!EMBER_HOST_HAS(w->host, task_attempt))
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "terasort.write: the host has no task_attempt");
    w->partition = w->host->task_partition();
    w->attempt = w->host->task_attempt();
    if (w->partition < 0 || w->attempt < 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "terasort.write: called outside a task");
    char path[MAX_PATH + 128];
    snprintf(path, sizeof path, "%s/_temporary", w->dir);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return ember_errorf(err, EMBER_EIO, "terasort.write: cannot create "
                            "%s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/_temporary/part-%05" PRId64
             ".attempt-%" PRId64, w->dir, w->partition, w->attempt);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (w->fd < 0)
        return ember_errorf(err, EMBER_EIO, "terasort.write: cannot create "
                            "%s: %s", path, strerror(errno));
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
                            "terasort.write: expected (bytes key, bytes rest) "
                            "of %d bytes together", RECORD);
    ember_status s = ember_buf_reserve(&w->bytes, RECORD);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "terasort.write: out of memory");
    uint8_t *p = w->bytes.data + w->bytes.len;
    ember_rec_string_copy(&k, p, k.u.str.len);
    ember_rec_string_copy(&v, p + k.u.str.len, v.u.str.len);
    w->bytes.len += RECORD;
    return EMBER_OK;
}

static ember_status write_batch(void *state, const ember_batch *in,
                                ember_buf *out, uint64_t *out_count,
                                ember_error *err)
{
    writer *w = state;
    ember_status s;
    if (w->fd < 0 && (s = start_file(w, err)) != EMBER_OK)
        return s;
    w->bytes.len = 0;
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    int64_t n = 0;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        if ((s = raw_record(w, rec, len, err)) != EMBER_OK)
            return s;
        n++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "terasort.write: malformed batch");
    for (size_t done = 0; done < w->bytes.len;) {
        ssize_t k = write(w->fd, w->bytes.data + done, w->bytes.len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ember_errorf(err, EMBER_EIO,
                                "terasort.write: writing part %" PRId64
                                " under %s: %s",
                                w->partition, w->dir, strerror(errno));
        done += (size_t)k;
    }
    uint8_t tmp[32];
    ember_buf r = ember_buf_fixed(tmp, sizeof tmp);
    s = ember_rec_put_int(&r, w->partition);
    if (s == EMBER_OK)
        s = ember_rec_put_int(&r, w->attempt);
    if (s == EMBER_OK)
        s = ember_rec_put_int(&r, n);
    if (s == EMBER_OK)
        s = ember_batch_append(out, r.data, r.len);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "terasort.write: out of memory");
    (*out_count)++;
    return EMBER_OK;
}

static const ember_function_vtable read_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_DETERMINISTIC,
    .open = read_open,
    .close = read_close,
    .map_batch = read_batch,
};

/* The attempt number in its output differs between runs. */
static const ember_function_vtable write_vt = {
    .shape = EMBER_FN_MAP,
    .determinism = EMBER_INDETERMINATE,
    .open = write_open,
    .close = write_close,
    .map_batch = write_batch,
};

static const ember_component components[] = {
    EMBER_FUNCTION_COMPONENT("read",
                             "split number -> (key10, rest90) records of a "
                             "file of 100-byte records",
                             &read_vt),
    EMBER_FUNCTION_COMPONENT("write",
                             "(key10, rest90) records -> this attempt's part "
                             "file; (partition, attempt, records) out",
                             &write_vt),
};

EMBER_PLUGIN(terasort, "1.0.0", "100-byte record input and output for the "
             "terasort example", "Apache-2.0", components, NULL, NULL);
