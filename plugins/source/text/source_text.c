/*
 * source_text.c — plugin "text": component "text.lines" (kind source),
 * lines of text files, one record (string) per line.
 *
 * Argument: an encoded record holding one string, the input spec — a file,
 * a directory (its regular files, not recursive, names starting with '.'
 * or '_' skipped, sorted by name), a glob(3) pattern (matches sorted by
 * name, hidden names skipped, a matched directory read as above), or a
 * comma-separated list of any of these.
 *
 * Driver side, plan(): lists the files and cuts each into byte ranges of
 *   size = max(1, min(ceil(total / min_partitions),
 *                     ember.files.maxPartitionBytes (default 128 MiB)))
 * while the rest of the file is more than 1.1 x size (Hadoop's SPLIT_SLOP),
 * the rest being the last range. Empty files give no split. Each split is
 * the record (path, start, end).
 *
 * Relative paths are made absolute with the driver's working directory.
 *
 * Executor side, a reader: the lines whose first byte lies in [start, end):
 * a split that starts inside a line (byte start-1 is not '\n') skips it,
 * since the split before reads it whole, even past its own end. Each line
 * becomes one record with one string, without its '\n' and without a '\r'
 * ending it. The file is read with pread in 1 MiB chunks into one buffer
 * per reader; nothing is allocated per line. The file is read as big as
 * it was when the reader opened it; one that is shorter than the split, or
 * gets shorter while being read, is an error (EMBER_EIO naming it).
 *
 * Readers are independent: any number may run at once on any threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/batch.h"
#include "ember/record.h"
#include "ember/source.h"

/* Bytes read from a file at a time (and the reader's buffer size). */
#define CHUNK ((size_t)1 << 20)

/* Default of ember.files.maxPartitionBytes. */
#define DEFAULT_MAX_PARTITION_BYTES ((int64_t)128 << 20)

/* The configuration key for the largest split. */
#define MAX_PARTITION_BYTES_KEY "ember.files.maxPartitionBytes"

/* Hadoop's SPLIT_SLOP: a rest of up to 10% more than the split size stays
 * in the last split rather than becoming a tiny one. */
#define SPLIT_SLOP 1.1

/* ------------------------------------------------------------------------
 * Small helpers.
 * ---------------------------------------------------------------------- */

/* Reads the argument, a record of one string without NUL bytes, into *v
 * (pointing into arg). */
static ember_status read_arg(const uint8_t *arg, size_t arg_len,
                             const char *fn, ember_value *v, ember_error *err)
{
    size_t count = 0;
    if (arg == NULL || arg_len == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: missing argument: expected an encoded record "
                            "holding the input path (a string)",
                            fn);
    if (ember_rec_validate(arg, arg_len, &count) != EMBER_OK || count != 1 ||
        ember_rec_get(arg, arg_len, 0, v) != EMBER_OK ||
        v->type != EMBER_TYPE_STRING)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: bad argument: expected an encoded record "
                            "holding the input path (a string)",
                            fn);
    if (v->u.str.raw_len != v->u.str.len)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: bad argument: the path contains a NUL byte",
                            fn);
    return EMBER_OK;
}

/* A growable array of files: paths in one string arena. */
typedef struct file_list {
    ember_buf names; /* NUL-terminated paths back to back */
    ember_buf items; /* file_item entries */
    ember_buf cwd;   /* the working directory, once a path needs it */
} file_list;

typedef struct file_item {
    size_t name_off; /* into names */
    int64_t size;
} file_item;

/* The number of files in l. */
static size_t list_count(const file_list *l)
{
    return l->items.len / sizeof(file_item);
}

/* The i-th file of l. */
static file_item *list_item(const file_list *l, size_t i)
{
    return (file_item *)(void *)(l->items.data + i * sizeof(file_item));
}

/* The i-th path of l. */
static const char *list_name(const file_list *l, size_t i)
{
    return (const char *)l->names.data + list_item(l, i)->name_off;
}

/*
 * Sets l->cwd to the working directory with a '/' at the end (once).
 * EMBER_ENOMEM, or EMBER_EIO when getcwd fails.
 */
static ember_status load_cwd(file_list *l)
{
    size_t cap = 256;
    while (l->cwd.len == 0) {
        if (ember_buf_reserve(&l->cwd, cap) != EMBER_OK)
            return EMBER_ENOMEM;
        if (getcwd((char *)l->cwd.data, l->cwd.cap) != NULL) {
            l->cwd.len = strlen((const char *)l->cwd.data);
            if (l->cwd.len == 0 || l->cwd.data[l->cwd.len - 1] != '/')
                return ember_buf_put_u8(&l->cwd, '/');
            return EMBER_OK;
        }
        if (errno != ERANGE)
            return EMBER_EIO;
        cap = l->cwd.cap * 2;
    }
    return EMBER_OK;
}

/*
 * Appends a file: dir[0..dir_len) + "/" + name when dir is not NULL, else
 * name alone; a relative path is made absolute (splits are read by
 * executors, whose working directory may differ). EMBER_OK, EMBER_ENOMEM,
 * or EMBER_EIO when the working directory is unknown.
 */
static ember_status list_add(file_list *l, const char *dir, size_t dir_len,
                             const char *name, int64_t size)
{
    file_item it;
    size_t mark = l->names.len;
    const char *first = dir ? dir : name;
    ember_status s = EMBER_OK;
    it.name_off = mark;
    it.size = size;
    if (first[0] != '/') {
        s = load_cwd(l);
        if (s == EMBER_OK)
            s = ember_buf_append(&l->names, l->cwd.data, l->cwd.len);
    }
    if (s == EMBER_OK && dir) {
        s = ember_buf_append(&l->names, dir, dir_len);
        if (s == EMBER_OK && (dir_len == 0 || dir[dir_len - 1] != '/'))
            s = ember_buf_put_u8(&l->names, '/');
    }
    if (s == EMBER_OK)
        s = ember_buf_append(&l->names, name, strlen(name) + 1);
    if (s == EMBER_OK)
        s = ember_buf_append(&l->items, &it, sizeof it);
    if (s != EMBER_OK)
        l->names.len = mark;
    return s;
}

/* The error for a failed list_add. */
static ember_status list_add_error(ember_error *err, ember_status s)
{
    if (s == EMBER_EIO)
        return ember_errorf(err, EMBER_EIO,
                            "text: cannot get the working directory (to "
                            "make the input paths absolute): %s",
                            strerror(errno));
    return ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
}

/* The sort order of listings: by name, bytewise (not the locale's). */
static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Non-zero for names a listing skips: hidden ('.') and Hadoop's '_'
 * (such as _SUCCESS, _temporary). */
static int is_hidden(const char *name)
{
    return name[0] == '.' || name[0] == '_';
}

/* The last path component of path (after the last '/'). */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The error for a failed stat/open of path. */
static ember_status path_error(ember_error *err, const char *what,
                               const char *path, int e)
{
    if (e == ENOENT || e == ENOTDIR)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "text: no such file or directory: '%s'", path);
    return ember_errorf(err, EMBER_EIO, "text: cannot %s '%s': %s", what,
                        path, strerror(e));
}

/* ------------------------------------------------------------------------
 * Listing the input.
 * ---------------------------------------------------------------------- */

/*
 * Adds the regular files of directory `dir` (not recursive; hidden names
 * skipped; symbolic links followed), sorted by name.
 */
static ember_status add_dir(file_list *l, const char *dir, ember_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    ember_buf names = ember_buf_heap(), ptrs = ember_buf_heap();
    ember_buf sorted = ember_buf_heap();
    size_t dir_len = strlen(dir), i, n;
    ember_status s = EMBER_OK;
    if (d == NULL)
        return path_error(err, "list", dir, errno);
    /* strip trailing slashes (but keep "/") so joined paths read well */
    while (dir_len > 1 && dir[dir_len - 1] == '/')
        dir_len--;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL)
            break;
        if (is_hidden(de->d_name))
            continue;
        size_t off = names.len;
        s = ember_buf_append(&names, de->d_name, strlen(de->d_name) + 1);
        if (s == EMBER_OK)
            s = ember_buf_append(&ptrs, &off, sizeof off);
        if (s != EMBER_OK) {
            s = ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
            goto done;
        }
    }
    if (errno != 0) {
        s = ember_errorf(err, EMBER_EIO, "text: cannot list '%s': %s", dir,
                         strerror(errno));
        goto done;
    }
    n = ptrs.len / sizeof(size_t);
    /* pointers only now, once names no longer moves */
    if (ember_buf_reserve(&sorted, n * sizeof(const char *)) != EMBER_OK) {
        s = ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        size_t off;
        const char *p;
        memcpy(&off, ptrs.data + i * sizeof off, sizeof off);
        p = (const char *)names.data + off;
        memcpy(sorted.data + i * sizeof p, &p, sizeof p);
    }
    if (n > 1)
        qsort(sorted.data, n, sizeof(const char *), cmp_names);
    for (i = 0; i < n; i++) {
        const char *name;
        struct stat st;
        size_t mark = l->names.len;
        memcpy(&name, sorted.data + i * sizeof name, sizeof name);
        s = list_add(l, dir, dir_len, name, 0);
        if (s != EMBER_OK) {
            s = list_add_error(err, s);
            goto done;
        }
        const char *path = (const char *)l->names.data + mark;
        if (stat(path, &st) != 0) {
            if (errno == ENOENT) { /* vanished, or a dangling link */
                l->names.len = mark;
                l->items.len -= sizeof(file_item);
                continue;
            }
            s = path_error(err, "stat", path, errno);
            goto done;
        }
        if (!S_ISREG(st.st_mode)) {
            l->names.len = mark;
            l->items.len -= sizeof(file_item);
            continue;
        }
        list_item(l, list_count(l) - 1)->size = (int64_t)st.st_size;
    }
done:
    ember_buf_release(&names);
    ember_buf_release(&ptrs);
    ember_buf_release(&sorted);
    closedir(d);
    return s;
}

/* Adds one path: a regular file, or a directory's files. from_glob says a
 * glob found it (then a hidden name is skipped; one the user typed is
 * read). */
static ember_status add_path(file_list *l, const char *path, int from_glob,
                             ember_error *err)
{
    struct stat st;
    if (from_glob && is_hidden(base_name(path)))
        return EMBER_OK;
    if (stat(path, &st) != 0)
        return path_error(err, "stat", path, errno);
    if (S_ISDIR(st.st_mode))
        return add_dir(l, path, err);
    if (!S_ISREG(st.st_mode))
        return ember_errorf(err, EMBER_EINVAL,
                            "text: not a regular file or directory: '%s'",
                            path);
    ember_status s = list_add(l, NULL, 0, path, (int64_t)st.st_size);
    return s == EMBER_OK ? EMBER_OK : list_add_error(err, s);
}

/* Non-zero when s holds a glob(3) metacharacter. */
static int has_glob_chars(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Adds what the glob pattern matches, sorted by name. */
static ember_status add_glob(file_list *l, const char *pattern,
                             ember_error *err)
{
    glob_t g;
    size_t i, before = list_count(l);
    ember_status s = EMBER_OK;
    int rc = glob(pattern, GLOB_NOSORT, NULL, &g);
    if (rc == GLOB_NOMATCH)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "text: no files match '%s'", pattern);
    if (rc == GLOB_NOSPACE)
        return ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
    if (rc != 0)
        return ember_errorf(err, EMBER_EIO, "text: cannot expand '%s': %s",
                            pattern, strerror(errno));
    if (g.gl_pathc > 1)
        qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_names);
    for (i = 0; s == EMBER_OK && i < g.gl_pathc; i++)
        s = add_path(l, g.gl_pathv[i], 1, err);
    /* everything it matched was hidden: as good as no match */
    if (s == EMBER_OK && list_count(l) == before) {
        size_t k, visible = 0;
        for (k = 0; k < g.gl_pathc; k++)
            visible += !is_hidden(base_name(g.gl_pathv[k]));
        if (visible == 0)
            s = ember_errorf(err, EMBER_ENOTFOUND,
                             "text: no files match '%s'", pattern);
    }
    globfree(&g);
    return s;
}

/*
 * Lists the input spec (comma-separated entries) into l, in order: each
 * entry's files sorted by name, entries as given.
 */
static ember_status list_input(file_list *l, const char *spec,
                               size_t spec_len, ember_error *err)
{
    ember_buf one = ember_buf_heap();
    size_t at = 0;
    ember_status s = EMBER_OK;
    if (spec_len == 0)
        return ember_errorf(err, EMBER_EINVAL, "text: the input path is "
                                               "empty");
    while (s == EMBER_OK && at <= spec_len) {
        const char *comma = memchr(spec + at, ',', spec_len - at);
        size_t n = comma ? (size_t)(comma - (spec + at)) : spec_len - at;
        if (n == 0) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "text: empty entry in the input list '%.*s'",
                             (int)(spec_len > 400 ? 400 : spec_len), spec);
            break;
        }
        one.len = 0;
        if (ember_buf_append(&one, spec + at, n) != EMBER_OK ||
            ember_buf_put_u8(&one, 0) != EMBER_OK) {
            s = ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
            break;
        }
        const char *path = (const char *)one.data;
        s = has_glob_chars(path) ? add_glob(l, path, err)
                                 : add_path(l, path, 0, err);
        at += n + 1;
    }
    ember_buf_release(&one);
    return s;
}

/* ------------------------------------------------------------------------
 * plan()
 * ---------------------------------------------------------------------- */

/* Appends the split record (path, start, end) to splits as a batch entry,
 * using scratch to build it. */
static ember_status put_split(ember_buf *splits, ember_buf *scratch,
                              const char *path, int64_t start, int64_t end)
{
    ember_status s;
    scratch->len = 0;
    s = ember_rec_put_string(scratch, path, strlen(path));
    if (s == EMBER_OK)
        s = ember_rec_put_int(scratch, start);
    if (s == EMBER_OK)
        s = ember_rec_put_int(scratch, end);
    if (s == EMBER_OK)
        s = ember_batch_append(splits, scratch->data, scratch->len);
    return s;
}

/* The split size for `total` input bytes (see the file comment). */
static int64_t split_size(int64_t total, uint32_t min_partitions,
                          int64_t max_bytes)
{
    int64_t parts = min_partitions ? (int64_t)min_partitions : 1;
    int64_t goal = total / parts + (total % parts != 0);
    int64_t size = goal < max_bytes ? goal : max_bytes;
    return size < 1 ? 1 : size;
}

static ember_status text_plan(const ember_host_api *host, const uint8_t *arg,
                              size_t arg_len, uint32_t min_partitions,
                              ember_buf *splits, uint64_t *count,
                              ember_error *err)
{
    file_list l = {ember_buf_heap(), ember_buf_heap(), ember_buf_heap()};
    ember_buf scratch = ember_buf_heap(), spec = ember_buf_heap();
    ember_value v = {0};
    int64_t max_bytes = DEFAULT_MAX_PARTITION_BYTES, total = 0, size;
    size_t i, mark = splits->len;
    uint64_t n = 0;
    ember_status s;
    s = read_arg(arg, arg_len, "text", &v, err);
    if (s != EMBER_OK)
        goto done;
    if (EMBER_HOST_HAS(host, config_get_size)) {
        s = host->config_get_size(MAX_PARTITION_BYTES_KEY,
                                  DEFAULT_MAX_PARTITION_BYTES, &max_bytes,
                                  err);
        if (s != EMBER_OK)
            goto done;
    }
    /* the spec as a C string */
    if (ember_buf_append(&spec, v.u.str.raw, v.u.str.len) != EMBER_OK ||
        ember_buf_put_u8(&spec, 0) != EMBER_OK) {
        s = ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
        goto done;
    }
    s = list_input(&l, (const char *)spec.data, v.u.str.len, err);
    if (s != EMBER_OK)
        goto done;
    for (i = 0; i < list_count(&l); i++) {
        int64_t fs = list_item(&l, i)->size;
        if (fs > INT64_MAX - total) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "text: the input is too large (over 2^63 "
                             "bytes)");
            goto done;
        }
        total += fs;
    }
    size = split_size(total, min_partitions, max_bytes);
    for (i = 0; i < list_count(&l); i++) {
        int64_t start = 0, rest = list_item(&l, i)->size;
        const char *path = list_name(&l, i);
        while ((double)rest / (double)size > SPLIT_SLOP) {
            s = put_split(splits, &scratch, path, start, start + size);
            if (s != EMBER_OK)
                goto out_full;
            n++;
            start += size;
            rest -= size;
        }
        if (rest > 0) {
            s = put_split(splits, &scratch, path, start, start + rest);
            if (s != EMBER_OK)
                goto out_full;
            n++;
        }
    }
    *count += n;
    s = EMBER_OK;
    goto done;
out_full:
    s = ember_errorf(err, s, "text: cannot append the splits: %s",
                     ember_status_name(s));
done:
    if (s != EMBER_OK)
        splits->len = mark;
    ember_buf_release(&l.names);
    ember_buf_release(&l.items);
    ember_buf_release(&l.cwd);
    ember_buf_release(&scratch);
    ember_buf_release(&spec);
    return s;
}

/* ------------------------------------------------------------------------
 * The reader.
 * ---------------------------------------------------------------------- */

/* Where a reader stands. */
enum { PHASE_SKIP, PHASE_LINES, PHASE_DONE };

typedef struct text_reader {
    const ember_host_api *host;
    int fd;
    int phase;
    ember_status failed; /* a read failed: the reader is unusable */
    int64_t start, end; /* the split */
    int64_t size;       /* the file's size when opened */
    int64_t base;       /* file offset of buf[0] */
    int64_t next;       /* file offset of the next byte to read = base+hi */
    size_t lo, hi;      /* unconsumed bytes: buf[lo..hi) */
    size_t zero_at;     /* buf[lo..zero_at) holds no 0x00 (so lines end
                           before it need no search; each byte is searched
                           for 0x00 about once) */
    uint8_t *buf;       /* CHUNK bytes */
    char path[];        /* for messages */
} text_reader;

/* Frees r and what it holds (NULL is a no-op). */
static void text_close(void *reader)
{
    text_reader *r = reader;
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    r->host->free(r->buf);
    r->host->free(r);
}

static ember_status text_open(const ember_host_api *host,
                              const uint8_t *split, size_t split_len,
                              void **reader, ember_error *err)
{
    ember_rec_cursor c = ember_rec_cursor_init(split, split_len);
    ember_value path, start, end;
    text_reader *r = NULL;
    struct stat st;
    ember_status s = EMBER_OK;
    if (reader == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, free))
        return ember_errorf(err, EMBER_EINVAL,
                            "text: open: no host services");
    *reader = NULL;
    if (ember_rec_next(&c, &path) != EMBER_OK ||
        ember_rec_next(&c, &start) != EMBER_OK ||
        ember_rec_next(&c, &end) != EMBER_OK ||
        ember_rec_next(&c, NULL) != EMBER_END ||
        path.type != EMBER_TYPE_STRING ||
        path.u.str.raw_len != path.u.str.len || path.u.str.len == 0 ||
        start.type != EMBER_TYPE_INT || end.type != EMBER_TYPE_INT ||
        start.u.i64 < 0 || end.u.i64 < start.u.i64)
        return ember_errorf(err, EMBER_EINVAL,
                            "text: bad split: expected (path, start, end) "
                            "with 0 <= start <= end");
    r = host->alloc(sizeof *r + path.u.str.len + 1);
    if (r == NULL)
        return ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
    memset(r, 0, sizeof *r);
    r->host = host;
    r->fd = -1;
    memcpy(r->path, path.u.str.raw, path.u.str.len);
    r->path[path.u.str.len] = '\0';
    r->start = start.u.i64;
    r->end = end.u.i64;
    r->buf = host->alloc(CHUNK);
    if (r->buf == NULL) {
        s = ember_errorf(err, EMBER_ENOMEM, "text: out of memory");
        goto done;
    }
    r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        s = ember_errorf(err, EMBER_EIO, "text: cannot open '%s': %s",
                         r->path, strerror(errno));
        goto done;
    }
    if (fstat(r->fd, &st) != 0) {
        s = ember_errorf(err, EMBER_EIO, "text: cannot stat '%s': %s",
                         r->path, strerror(errno));
        goto done;
    }
    r->size = (int64_t)st.st_size;
    if (r->size < r->end) {
        s = ember_errorf(err, EMBER_EIO,
                         "text: '%s' changed since the job was planned: it "
                         "has %lld bytes, the split ends at %lld",
                         r->path, (long long)r->size, (long long)r->end);
        goto done;
    }
    /* A split starting at 0 starts with a line; any other one reads from
     * the byte before it and drops everything up to the first '\n' (that
     * line belongs to the split before). */
    r->phase = r->start == 0 ? PHASE_LINES : PHASE_SKIP;
    r->base = r->next = r->start == 0 ? 0 : r->start - 1;
    if (r->start == r->end)
        r->phase = PHASE_DONE;
done:
    if (s != EMBER_OK) {
        text_close(r);
        return s;
    }
    *reader = r;
    return EMBER_OK;
}

/*
 * Reads more of the file into the buffer after hi, first moving the
 * unconsumed bytes buf[lo..hi) to the front. Sets *eof when the file (as
 * big as it was when opened) has nothing more. EMBER_EIO when the file
 * ends early or a read fails.
 */
static ember_status refill(text_reader *r, int *eof, ember_error *err)
{
    size_t want;
    ssize_t got;
    if (r->lo > 0) {
        memmove(r->buf, r->buf + r->lo, r->hi - r->lo);
        r->base += (int64_t)r->lo;
        r->zero_at = r->zero_at > r->lo ? r->zero_at - r->lo : 0;
        r->hi -= r->lo;
        r->lo = 0;
    }
    *eof = r->next >= r->size;
    if (*eof)
        return EMBER_OK;
    want = CHUNK - r->hi;
    if ((int64_t)want > r->size - r->next)
        want = (size_t)(r->size - r->next);
    do {
        got = pread(r->fd, r->buf + r->hi, want, (off_t)r->next);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        return ember_errorf(err, EMBER_EIO, "text: cannot read '%s': %s",
                            r->path, strerror(errno));
    if (got == 0)
        return ember_errorf(err, EMBER_EIO,
                            "text: '%s' changed while being read: it ended "
                            "at byte %lld, it had %lld bytes",
                            r->path, (long long)r->next, (long long)r->size);
    if (r->zero_at == r->hi) {
        const uint8_t *z = memchr(r->buf + r->hi, 0, (size_t)got);
        r->zero_at = z ? (size_t)(z - r->buf) : r->hi + (size_t)got;
    }
    r->hi += (size_t)got;
    r->next += got;
    return EMBER_OK;
}


/* Appends p[0..n) with every 0x00 escaped (as record.h writes strings);
 * `zeros` is how many 0x00 bytes it holds. */
static ember_status put_escaped(ember_buf *out, const uint8_t *p, size_t n,
                                size_t zeros)
{
    ember_status s = ember_buf_reserve(out, n + zeros);
    uint8_t *dst;
    if (s != EMBER_OK)
        return s;
    dst = out->data + out->len;
    while (n > 0) {
        const uint8_t *z = zeros ? memchr(p, 0, n) : NULL;
        size_t run = z ? (size_t)(z - p) : n;
        memcpy(dst, p, run);
        dst += run;
        p += run;
        n -= run;
        if (z) {
            *dst++ = 0x00;
            *dst++ = 0xFF;
            p++;
            n--;
            zeros--;
        }
    }
    out->len = (size_t)(dst - out->data);
    return EMBER_OK;
}

/* The number of 0x00 bytes in p[0..n). */
static size_t count_zeros(const uint8_t *p, size_t n)
{
    size_t zeros = 0;
    const uint8_t *z;
    while (n > 0 && (z = memchr(p, 0, n)) != NULL) {
        zeros++;
        n -= (size_t)(z - p) + 1;
        p = z + 1;
    }
    return zeros;
}

/* The number of 0x00 bytes in the line buf[lo..lo+n), moving zero_at past
 * it: no search at all for a line before the next 0x00. */
static size_t line_zeros(text_reader *r, size_t n)
{
    size_t end = r->lo + n;
    if (r->zero_at >= end)
        return 0;
    size_t from = r->zero_at > r->lo ? r->zero_at : r->lo;
    size_t zeros = count_zeros(r->buf + from, end - from);
    const uint8_t *z = memchr(r->buf + end, 0, r->hi - end);
    r->zero_at = z ? (size_t)(z - r->buf) : r->hi;
    return zeros;
}

/* Appends the framed one-string record of the line p[0..n) (its '\n' not
 * included; a '\r' ending it is dropped), which holds `zeros` 0x00 bytes.
 * out->len unchanged on failure. */
static ember_status put_line(ember_buf *out, const uint8_t *p, size_t n,
                             size_t zeros)
{
    size_t mark = out->len;
    ember_status s;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    s = ember_uvarint_put(out, (uint64_t)(n + zeros + 2));
    if (s == EMBER_OK)
        s = ember_buf_put_u8(out, (uint8_t)EMBER_REC_TAG_STRING);
    if (s == EMBER_OK)
        s = put_escaped(out, p, n, zeros);
    if (s == EMBER_OK)
        s = ember_buf_put_u8(out, 0x00);
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/*
 * Finishes a line longer than the buffer: buf[lo..hi) is its start and
 * holds no '\n'. The record is built in place in out behind a one-byte
 * length placeholder while the rest of the line is read, then the length
 * is written (moving the body up). out->len unchanged on failure.
 */
static ember_status put_long_line(text_reader *r, ember_buf *out,
                                  ember_error *err)
{
    size_t mark = out->len, body;
    uint8_t len_bytes[10];
    ember_buf lenb = ember_buf_fixed(len_bytes, sizeof len_bytes);
    int eof = 0, done = 0;
    ember_status s = ember_buf_put_u8(out, 0);
    if (s == EMBER_OK)
        s = ember_buf_put_u8(out, (uint8_t)EMBER_REC_TAG_STRING);
    while (s == EMBER_OK && !done) {
        const uint8_t *p = r->buf + r->lo;
        size_t n = r->hi - r->lo;
        const uint8_t *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        s = put_escaped(out, p, take, count_zeros(p, take));
        if (s != EMBER_OK)
            break;
        r->lo += take;
        if (nl) {
            r->lo++;
            done = 1;
            break;
        }
        s = refill(r, &eof, err);
        if (s != EMBER_OK)
            goto done;
        if (eof)
            done = 1;
    }
    if (s == EMBER_OK) {
        /* a '\r' ending the line (never the 0xFF of an escape) */
        if (out->len > mark + 2 && out->data[out->len - 1] == '\r')
            out->len--;
        s = ember_buf_put_u8(out, 0x00);
    }
    if (s == EMBER_OK) {
        body = out->len - (mark + 1);
        s = ember_uvarint_put(&lenb, (uint64_t)body);
        if (s == EMBER_OK && lenb.len > 1) {
            s = ember_buf_reserve(out, lenb.len - 1);
            if (s == EMBER_OK) {
                memmove(out->data + mark + lenb.len, out->data + mark + 1,
                        body);
                out->len += lenb.len - 1;
            }
        }
        if (s == EMBER_OK)
            memcpy(out->data + mark, len_bytes, lenb.len);
    }
    if (s != EMBER_OK)
        s = ember_errorf(err, s, "text: cannot append a line of '%s': %s",
                         r->path, ember_status_name(s));
done:
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/* Drops bytes through the first '\n' (PHASE_SKIP); PHASE_DONE when the
 * file ends first. */
static ember_status skip_partial_line(text_reader *r, ember_error *err)
{
    for (;;) {
        const uint8_t *p = r->buf + r->lo;
        const uint8_t *nl = memchr(p, '\n', r->hi - r->lo);
        int eof = 0;
        ember_status s;
        if (nl) {
            r->lo = (size_t)(nl - r->buf) + 1;
            r->phase = PHASE_LINES;
            return EMBER_OK;
        }
        r->lo = r->hi;
        s = refill(r, &eof, err);
        if (s != EMBER_OK)
            return s;
        if (eof) {
            r->phase = PHASE_DONE;
            return EMBER_OK;
        }
    }
}

/*
 * Appends one record per line until about max_bytes were added (at least
 * one record per call) or the split is done. The records appended before
 * a failure stay in out and are counted; the reader is unusable after it
 * (later calls fail too).
 */
static ember_status text_read(void *reader, size_t max_bytes, ember_buf *out,
                              uint64_t *count, ember_error *err)
{
    text_reader *r = reader;
    size_t mark = out->len;
    uint64_t n = 0;
    ember_status s = EMBER_OK;
    if (r == NULL)
        return ember_errorf(err, EMBER_EINVAL, "text: read without open");
    if (r->failed != EMBER_OK)
        return ember_errorf(err, r->failed,
                            "text: '%s': read after a failed read", r->path);
    if (r->phase == PHASE_SKIP)
        s = skip_partial_line(r, err);
    while (s == EMBER_OK && r->phase == PHASE_LINES) {
        int64_t line_start = r->base + (int64_t)r->lo;
        size_t scanned = 0; /* bytes of the line known to hold no '\n' */
        int eof = 0, got = 0;
        if (line_start >= r->end || line_start >= r->size) {
            r->phase = PHASE_DONE;
            break;
        }
        while (!got) {
            const uint8_t *p = r->buf + r->lo;
            size_t avail = r->hi - r->lo;
            const uint8_t *nl = memchr(p + scanned, '\n', avail - scanned);
            if (nl || (eof && avail > 0)) {
                size_t len = nl ? (size_t)(nl - p) : avail;
                s = put_line(out, p, len, line_zeros(r, len));
                if (s != EMBER_OK) {
                    s = ember_errorf(err, s,
                                     "text: cannot append a line of '%s': "
                                     "%s",
                                     r->path, ember_status_name(s));
                    break;
                }
                r->lo += nl ? len + 1 : len;
                got = 1;
            } else if (eof) {
                r->phase = PHASE_DONE; /* defensive: checked above */
                break;
            } else if (r->lo == 0 && r->hi == CHUNK) {
                /* a line longer than the buffer */
                s = put_long_line(r, out, err);
                if (s != EMBER_OK)
                    break;
                got = 1;
            } else {
                scanned = avail; /* refill keeps these bytes in front */
                s = refill(r, &eof, err);
                if (s != EMBER_OK)
                    break;
            }
        }
        if (!got)
            break;
        n++;
        if (out->len - mark >= max_bytes)
            break;
    }
    *count += n;
    if (s != EMBER_OK) {
        r->failed = s;
        return s;
    }
    return n == 0 && r->phase == PHASE_DONE ? EMBER_END : EMBER_OK;
}

/* ------------------------------------------------------------------------
 * The plugin.
 * ---------------------------------------------------------------------- */

static const ember_source_vtable lines_vtable = {
    .plan = text_plan,
    .open = text_open,
    .read = text_read,
    .close = text_close,
};

static const ember_component text_components[] = {
    EMBER_SOURCE_COMPONENT("lines",
                           "lines of text files (a file, a directory, a glob "
                           "or a comma-separated list), one string record "
                           "per line",
                           &lines_vtable),
};

EMBER_PLUGIN(text, "0.1.0", "text files as lines", "Apache-2.0",
             text_components, NULL, NULL);
