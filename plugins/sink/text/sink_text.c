/*
 * sink_text.c — plugin "textout": component "textout.files" (kind sink),
 * records written as lines of text files, one file per partition.
 *
 * Argument: an encoded record holding one string, the output directory
 * DIR (the driver creates it, refusing one that exists, and removes
 * DIR/_temporary when the job is over). Attempt `a` of partition `p`
 * writes DIR/_temporary/<p>-<a>/part-NNNNN (NNNNN = p, at least five
 * digits); commit moves that file to DIR/part-NNNNN, never replacing one,
 * and removes the attempt's directory; abort removes both.
 *
 * Each record becomes one line, rendered like Spark's toString of a tuple:
 *   - a record of one element: that element alone;
 *   - a record of several elements, and any nested tuple: "(e1,e2,...)";
 *   - strings raw (no quotes, no escaping), ints in decimal, doubles as
 *     record.h's JSON rendering (1.0, 1e+300) with NaN, Infinity and
 *     -Infinity unquoted, bools true / false, null as null, bytes as the
 *     JSON rendering ({"base64":"..."}).
 * Lines are collected in a 1 MiB buffer and written with write(2); there
 * is no fsync.
 *
 * A writer belongs to one task: calls on one writer are not concurrent;
 * different writers are independent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/batch.h"
#include "ember/record.h"
#include "ember/sink.h"

/* Bytes of lines collected before a write(2). */
#define FLUSH_AT ((size_t)1 << 20)

/* How many times open retries creating its directories when another task
 * removes _temporary at the same moment. */
#define MKDIR_TRIES 8

typedef struct text_writer {
    const ember_host_api *host;
    int fd;
    ember_buf lines;     /* rendered lines not yet written */
    char *tmp_dir;       /* DIR/_temporary/<p>-<a> */
    char *tmp_file;      /* tmp_dir/part-NNNNN */
    char *final_file;    /* DIR/part-NNNNN */
} text_writer;

/* ------------------------------------------------------------------------
 * Rendering.
 * ---------------------------------------------------------------------- */

/* Appends the string or bytes payload raw[0..raw_len) unescaped. */
static ember_status put_unescaped(ember_buf *out, const uint8_t *raw,
                                  size_t raw_len)
{
    ember_status s = ember_buf_reserve(out, raw_len);
    const uint8_t *p = raw, *end = raw + raw_len;
    if (s != EMBER_OK)
        return s;
    while (p < end) {
        const uint8_t *z = memchr(p, 0x00, (size_t)(end - p));
        size_t run = z ? (size_t)(z - p) + 1 : (size_t)(end - p);
        memcpy(out->data + out->len, p, run);
        out->len += run;
        p += run;
        if (z)
            p++; /* the 0xFF of the escape */
    }
    return EMBER_OK;
}

static ember_status render_seq(ember_buf *out, ember_rec_cursor c);

/* Appends one element as the file comment describes. */
static ember_status render_value(ember_buf *out, const ember_value *v)
{
    size_t mark;
    ember_status s;
    switch (v->type) {
    case EMBER_TYPE_STRING:
        return put_unescaped(out, v->u.str.raw, v->u.str.raw_len);
    case EMBER_TYPE_TUPLE: return render_seq(out, ember_rec_tuple_cursor(v));
    case EMBER_TYPE_DOUBLE:
        /* the JSON rendering, without the quotes it puts around NaN and
         * the infinities */
        mark = out->len;
        s = ember_rec_json_value(out, v);
        if (s == EMBER_OK && out->data[mark] == '"') {
            memmove(out->data + mark, out->data + mark + 1,
                    out->len - mark - 2);
            out->len -= 2;
        }
        return s;
    default: return ember_rec_json_value(out, v);
    }
}

/* Appends "(e1,e2,...)" for the elements under c. */
static ember_status render_seq(ember_buf *out, ember_rec_cursor c)
{
    ember_value v;
    int first = 1;
    ember_status s = ember_buf_put_u8(out, '(');
    while (s == EMBER_OK && (s = ember_rec_next(&c, &v)) == EMBER_OK) {
        if (!first)
            s = ember_buf_put_u8(out, ',');
        first = 0;
        if (s == EMBER_OK)
            s = render_value(out, &v);
    }
    if (s == EMBER_END)
        s = ember_buf_put_u8(out, ')');
    return s;
}

/* Appends the line for the record rec[0..len), '\n' included. EMBER_EINVAL
 * for a malformed record; out->len unchanged on failure. */
static ember_status render_record(ember_buf *out, const uint8_t *rec,
                                  size_t len)
{
    size_t mark = out->len, count = 0;
    ember_value v;
    ember_status s;
    if (ember_rec_validate(rec, len, &count) != EMBER_OK)
        return EMBER_EINVAL;
    if (count == 1) {
        s = ember_rec_get(rec, len, 0, &v);
        if (s == EMBER_OK)
            s = render_value(out, &v);
    } else {
        s = render_seq(out, ember_rec_cursor_init(rec, len));
    }
    if (s == EMBER_OK)
        s = ember_buf_put_u8(out, '\n');
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/* ------------------------------------------------------------------------
 * Files.
 * ---------------------------------------------------------------------- */

/* A host-allocated copy of the printf-formatted string, or NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static char *host_printf(const ember_host_api *host, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    p = host->alloc((size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    if (vsnprintf(p, (size_t)n + 1, fmt, ap) != n) {
        host->free(p);
        p = NULL;
    }
    va_end(ap);
    return p;
}

/* Frees w and what it holds; the files are left as they are. */
static void writer_free(text_writer *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    ember_buf_release(&w->lines);
    w->host->free(w->tmp_dir);
    w->host->free(w->tmp_file);
    w->host->free(w->final_file);
    w->host->free(w);
}

/* Removes the attempt's file and directory (whatever of them exists). */
static void remove_attempt(text_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->tmp_file)
        (void)unlink(w->tmp_file);
    if (w->tmp_dir)
        (void)rmdir(w->tmp_dir);
}

/* Writes out every collected line. EMBER_EIO naming the file on failure. */
static ember_status flush_lines(text_writer *w, ember_error *err)
{
    size_t off = 0;
    while (off < w->lines.len) {
        ssize_t n = write(w->fd, w->lines.data + off, w->lines.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return ember_errorf(err, EMBER_EIO,
                                "textout: cannot write '%s': %s",
                                w->tmp_file,
                                n < 0 ? strerror(errno) : "no progress");
        off += (size_t)n;
    }
    w->lines.len = 0;
    return EMBER_OK;
}

/* Creates DIR/_temporary and the attempt's directory under it. */
static ember_status make_dirs(text_writer *w, const char *temporary,
                              ember_error *err)
{
    for (int i = 0; i < MKDIR_TRIES; i++) {
        if (mkdir(temporary, 0777) != 0 && errno != EEXIST)
            return ember_errorf(err, EMBER_EIO,
                                "textout: cannot create '%s': %s", temporary,
                                strerror(errno));
        if (mkdir(w->tmp_dir, 0777) == 0 || errno == EEXIST)
            return EMBER_OK;
        if (errno != ENOENT) /* ENOENT: _temporary went away meanwhile */
            break;
    }
    return ember_errorf(err, EMBER_EIO, "textout: cannot create '%s': %s",
                        w->tmp_dir, strerror(errno));
}

/* ------------------------------------------------------------------------
 * The sink.
 * ---------------------------------------------------------------------- */

static ember_status textout_open(const ember_host_api *host,
                                 const uint8_t *arg, size_t arg_len,
                                 uint32_t partition, uint32_t attempt,
                                 void **writer, ember_error *err)
{
    ember_value v;
    size_t count = 0;
    text_writer *w = NULL;
    char *dir = NULL, *temporary = NULL;
    ember_status s = EMBER_OK;
    if (writer == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free) || !EMBER_HOST_HAS(host, buf_init))
        return ember_errorf(err, EMBER_EINVAL,
                            "textout: open: no host services");
    *writer = NULL;
    if (arg == NULL || arg_len == 0 ||
        ember_rec_validate(arg, arg_len, &count) != EMBER_OK || count != 1 ||
        ember_rec_get(arg, arg_len, 0, &v) != EMBER_OK ||
        v.type != EMBER_TYPE_STRING || v.u.str.len == 0 ||
        v.u.str.raw_len != v.u.str.len)
        return ember_errorf(err, EMBER_EINVAL,
                            "textout: bad argument: expected an encoded "
                            "record holding the output directory (a "
                            "non-empty string without NUL bytes)");
    w = host->alloc(sizeof *w);
    if (w == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "textout: out of memory");
    memset(w, 0, sizeof *w);
    w->host = host;
    w->fd = -1;
    if (host->buf_init(&w->lines, 0) != EMBER_OK) {
        host->free(w);
        return ember_errorf(err, EMBER_ENOMEM, "textout: out of memory");
    }
    dir = host_printf(host, "%.*s", (int)v.u.str.len,
                      (const char *)v.u.str.raw);
    if (dir)
        temporary = host_printf(host, "%s/_temporary", dir);
    if (temporary) {
        w->tmp_dir = host_printf(host, "%s/%u-%u", temporary,
                                 (unsigned)partition, (unsigned)attempt);
        w->final_file = host_printf(host, "%s/part-%05u", dir,
                                    (unsigned)partition);
    }
    if (w->tmp_dir)
        w->tmp_file = host_printf(host, "%s/part-%05u", w->tmp_dir,
                                  (unsigned)partition);
    if (w->tmp_file == NULL || w->final_file == NULL) {
        s = ember_errorf(err, EMBER_ENOMEM, "textout: out of memory");
        goto done;
    }
    s = make_dirs(w, temporary, err);
    if (s != EMBER_OK)
        goto done;
    w->fd = open(w->tmp_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        s = ember_errorf(err, EMBER_EIO, "textout: cannot create '%s': %s",
                         w->tmp_file, strerror(errno));
        goto done;
    }
done:
    host->free(dir);
    host->free(temporary);
    if (s != EMBER_OK) {
        remove_attempt(w);
        writer_free(w);
        return s;
    }
    *writer = w;
    return EMBER_OK;
}

static ember_status textout_write(void *writer, const ember_batch *records,
                                  ember_error *err)
{
    text_writer *w = writer;
    ember_batch_cursor c;
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    if (w == NULL || records == NULL)
        return ember_errorf(err, EMBER_EINVAL, "textout: write without open");
    c = ember_batch_cursor_of(records);
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        s = render_record(&w->lines, rec, len);
        if (s == EMBER_EINVAL)
            return ember_errorf(err, s,
                                "textout: malformed record %llu of the batch",
                                (unsigned long long)n);
        if (s != EMBER_OK)
            return ember_errorf(err, s, "textout: cannot render a line: %s",
                                ember_status_name(s));
        if (w->lines.len >= FLUSH_AT) {
            s = flush_lines(w, err);
            if (s != EMBER_OK)
                return s;
        }
        n++;
    }
    if (s != EMBER_END)
        return ember_errorf(err, EMBER_EINVAL,
                            "textout: malformed batch: bad record frame "
                            "after %llu records",
                            (unsigned long long)n);
    return EMBER_OK;
}

/*
 * Makes the part file visible without replacing an existing one: a hard
 * link fails with EEXIST when the name is taken. Where the file system has
 * no hard links, a check and a rename, which a writer racing on the same
 * name could slip between (the arbiter already stops that).
 */
static ember_status publish(text_writer *w, ember_error *err)
{
    struct stat st;
    if (link(w->tmp_file, w->final_file) == 0)
        return EMBER_OK;
    if (errno == EEXIST)
        return ember_errorf(err, EMBER_EEXIST,
                            "textout: '%s' already exists", w->final_file);
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP &&
        errno != EMLINK && errno != ENOSYS)
        return ember_errorf(err, EMBER_EIO,
                            "textout: cannot create '%s': %s",
                            w->final_file, strerror(errno));
    if (lstat(w->final_file, &st) == 0)
        return ember_errorf(err, EMBER_EEXIST,
                            "textout: '%s' already exists", w->final_file);
    if (rename(w->tmp_file, w->final_file) != 0)
        return ember_errorf(err, EMBER_EIO,
                            "textout: cannot rename '%s' to '%s': %s",
                            w->tmp_file, w->final_file, strerror(errno));
    return EMBER_OK;
}

static ember_status textout_commit(void *writer, ember_error *err)
{
    text_writer *w = writer;
    ember_status s;
    if (w == NULL)
        return ember_errorf(err, EMBER_EINVAL, "textout: commit without open");
    s = flush_lines(w, err);
    if (s == EMBER_OK) {
        int rc = close(w->fd);
        w->fd = -1;
        if (rc != 0)
            s = ember_errorf(err, EMBER_EIO, "textout: cannot close '%s': %s",
                             w->tmp_file, strerror(errno));
    }
    if (s == EMBER_OK)
        s = publish(w, err);
    /* success or not, the attempt's own files go (after a link, the part
     * file lives on under its final name) */
    remove_attempt(w);
    writer_free(w);
    return s;
}

static void textout_abort(void *writer)
{
    text_writer *w = writer;
    if (w == NULL)
        return;
    remove_attempt(w);
    writer_free(w);
}

/* ------------------------------------------------------------------------
 * The plugin.
 * ---------------------------------------------------------------------- */

static const ember_sink_vtable files_vtable = {
    .open = textout_open,
    .write = textout_write,
    .commit = textout_commit,
    .abort = textout_abort,
};

static const ember_component textout_components[] = {
    EMBER_SINK_COMPONENT("files",
                         "records as lines of text, one part-NNNNN file per "
                         "partition in the output directory",
                         &files_vtable),
};

EMBER_PLUGIN(textout, "0.1.0", "text files, one line per record",
             "Apache-2.0", textout_components, NULL, NULL);
