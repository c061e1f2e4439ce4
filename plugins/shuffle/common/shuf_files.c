/*
 * shuf_files.c — file helpers of the shuffle plugins: errno messages,
 * directory trees, full reads and writes, and the buffered output file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shuffle_common.h"

ember_status shuf_errno(const shuf_mgr *m, ember_error *err, int e,
                        const char *what, const char *path)
{
    char text[160];
    ember_status code;
    if (strerror_r(e, text, sizeof text) != 0)
        snprintf(text, sizeof text, "error %d", e);
    switch (e) {
    case ENOENT: code = EMBER_ENOTFOUND; break;
    case EFBIG:
        /* strerror's "File too large" alone reads as a fault of the data;
         * it is the process's file size limit that is full */
        code = EMBER_EIO;
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 " (over the process's file size limit, RLIMIT_FSIZE / "
                 "ulimit -f)");
        break;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        code = EMBER_ENOSPC;
        break;
    case ENOMEM: code = EMBER_ENOMEM; break;
    default: code = EMBER_EIO; break;
    }
    return ember_errorf(err, code, "%s: %s %s: %s", m->label, what,
                        path ? path : "(no path)", text);
}

ember_status shuf_mkdir(const shuf_mgr *m, const char *path,
                        ember_error *err)
{
    struct stat st;
    if (mkdir(path, 0755) == 0)
        return EMBER_OK;
    int e = errno;
    if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return EMBER_OK;
    return shuf_errno(m, err, e, "creating directory", path);
}

int shuf_rmtree(const char *path)
{
    struct stat st;
    int first = 0;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 || errno == ENOENT ? 0 : errno;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        size_t plen = strlen(path);
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            size_t n = plen + 1 + strlen(de->d_name) + 1;
            /* Transient and off the data path: the C heap is fine here. */
            char *child = malloc(n);
            if (!child) {
                first = first ? first : ENOMEM;
                continue;
            }
            snprintf(child, n, "%s/%s", path, de->d_name);
            int e = shuf_rmtree(child);
            free(child);
            if (e && !first)
                first = e;
        }
        closedir(d);
    } else if (!first) {
        first = errno;
    }
    if (rmdir(path) != 0 && errno != ENOENT && !first)
        first = errno;
    return first;
}

ember_status shuf_writev_all(const shuf_mgr *m, int fd, struct iovec *iov,
                             int n, const char *what, const char *path,
                             ember_error *err)
{
    while (n > 0) {
        if (iov->iov_len == 0) {
            iov++;
            n--;
            continue;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return shuf_errno(m, err, errno, what, path);
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return EMBER_OK;
}

ember_status shuf_pread_all(const shuf_mgr *m, int fd, void *buf, size_t n,
                            uint64_t off, size_t *got, const char *what,
                            const char *path, ember_error *err)
{
    size_t done = 0;
    if (got)
        *got = 0;
    if (off > (uint64_t)INT64_MAX - n)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: %s %s: offset %llu out of range", m->label,
                            what, path, (unsigned long long)off);
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done,
                          (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return shuf_errno(m, err, errno, what, path);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    if (got)
        *got = done;
    return done == n ? EMBER_OK : EMBER_END;
}

ember_status shuf_file_create(const shuf_mgr *m, shuf_file *f, char *path,
                              size_t cap, const char *what, ember_error *err)
{
    f->m = m;
    f->fd = -1;
    f->path = path;
    f->what = what;
    f->buf = NULL;
    f->len = 0;
    f->cap = 0;
    f->pos = 0;
    if (!path)
        return shuf_oom(m, err, what);
    if (cap) {
        f->buf = shuf_alloc(m, cap);
        if (!f->buf)
            return shuf_oom(m, err, what);
        f->cap = cap;
    }
    f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0)
        return shuf_errno(m, err, errno, what, path);
    return EMBER_OK;
}

ember_status shuf_file_write(const shuf_mgr *m, shuf_file *f, const void *a,
                             size_t an, const void *b, size_t bn,
                             ember_error *err)
{
    if (f->fd < 0)
        return ember_errorf(err, EMBER_EINTERNAL, "%s: %s %s: file not open",
                            m->label, f->what, f->path);
    if (an + bn <= f->cap - f->len) {
        if (an)
            memcpy(f->buf + f->len, a, an);
        if (bn)
            memcpy(f->buf + f->len + an, b, bn);
        f->len += an + bn;
        f->pos += an + bn;
        return EMBER_OK;
    }
    struct iovec iov[3];
    iov[0].iov_base = f->buf;
    iov[0].iov_len = f->len;
    iov[1].iov_base = (void *)(uintptr_t)a;
    iov[1].iov_len = an;
    iov[2].iov_base = (void *)(uintptr_t)b;
    iov[2].iov_len = bn;
    ember_status s = shuf_writev_all(m, f->fd, iov, 3, f->what, f->path, err);
    if (s != EMBER_OK)
        return s;
    f->len = 0;
    f->pos += an + bn;
    return EMBER_OK;
}

ember_status shuf_file_finish(const shuf_mgr *m, shuf_file *f,
                              ember_error *err)
{
    ember_status s = EMBER_OK;
    if (f->fd < 0)
        return EMBER_OK;
    if (f->len) {
        struct iovec iov = {f->buf, f->len};
        s = shuf_writev_all(m, f->fd, &iov, 1, f->what, f->path, err);
        f->len = 0;
    }
    if (close(f->fd) != 0 && s == EMBER_OK)
        s = shuf_errno(m, err, errno, f->what, f->path);
    f->fd = -1;
    return s;
}

void shuf_file_release(const shuf_mgr *m, shuf_file *f)
{
    if (f->fd >= 0)
        (void)close(f->fd);
    f->fd = -1;
    shuf_free(m, f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
    shuf_free(m, f->path);
    f->path = NULL;
}

void shuf_file_discard(const shuf_mgr *m, shuf_file *f)
{
    if (f->fd >= 0)
        (void)close(f->fd);
    f->fd = -1;
    if (f->path)
        (void)unlink(f->path);
    shuf_file_release(m, f);
}

ember_status shuf_file_copy_range(const shuf_mgr *m, shuf_file *f, int fd,
                                  const char *path, uint64_t off,
                                  uint64_t len, ember_buf *scratch,
                                  ember_error *err)
{
    const size_t piece = (size_t)1 << 20;
    ember_status s = EMBER_OK;
    if (len && scratch->cap < piece &&
        ember_buf_reserve(scratch, piece - scratch->len) != EMBER_OK)
        return shuf_oom(m, err, "copying a block");
    while (len > 0) {
        size_t n = len < scratch->cap ? (size_t)len : scratch->cap;
        size_t got;
        s = shuf_pread_all(m, fd, scratch->data, n, off, &got, "reading",
                           path, err);
        if (s == EMBER_END)
            return ember_errorf(err, EMBER_EIO,
                                "%s: reading %s: file ends at offset %llu, "
                                "before the %llu bytes expected",
                                m->label, path,
                                (unsigned long long)(off + got),
                                (unsigned long long)len);
        if (s != EMBER_OK)
            return s;
        s = shuf_file_write(m, f, scratch->data, n, NULL, 0, err);
        if (s != EMBER_OK)
            return s;
        off += n;
        len -= n;
    }
    return EMBER_OK;
}
