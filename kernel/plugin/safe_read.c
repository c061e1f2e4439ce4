/* Fault-safe copies from plugin-declared addresses (see safe_read.h). */
#define _GNU_SOURCE
#include "safe_read.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Fallback when process_vm_readv is not allowed (seccomp, old kernels):
 * write(2) from a bad address fails with EFAULT instead of faulting. */
static int read_via_pipe(void *dst, const void *src, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0;) {
        size_t chunk = n - off < 4096 ? n - off : 4096;
        ssize_t w = write(fds[1], (const char *)src + off, chunk);
        if (w <= 0 || read(fds[0], (char *)dst + off, (size_t)w) != w)
            rc = -1;
        else
            off += (size_t)w;
    }
    close(fds[0]);
    close(fds[1]);
    return rc;
}

int em_safe_read(void *dst, const void *src, size_t n)
{
    if (n == 0)
        return 0;
    if (!src)
        return -1;
    struct iovec local = {dst, n};
    struct iovec remote = {(void *)(uintptr_t)src, n};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got == (ssize_t)n)
        return 0;
    if (got < 0 && (errno == ENOSYS || errno == EPERM))
        return read_via_pipe(dst, src, n);
    return -1;
}

int em_safe_strdup(const char *src, size_t max, char **out)
{
    *out = NULL;
    if (!src)
        return -1;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    char *buf = malloc(max + 1);
    if (!buf)
        return -3;
    size_t len = 0;
    while (len <= max) {
        /* Never read across a page boundary we have not reached yet. */
        uintptr_t at = (uintptr_t)src + len;
        size_t chunk = page - (size_t)(at % page);
        if (chunk > max + 1 - len)
            chunk = max + 1 - len;
        if (em_safe_read(buf + len, src + len, chunk) != 0) {
            free(buf);
            return -1;
        }
        char *nul = memchr(buf + len, '\0', chunk);
        if (nul) {
            *out = buf;
            return 0;
        }
        len += chunk;
    }
    free(buf);
    return -2;
}
