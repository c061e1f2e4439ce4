/*
 * storage_disk.c — the disk tier: plugin "disk", component "disk.store".
 *
 * One file per block in the store's directory (the block manager gives
 * each executor its own directory under ember.local.dir; open creates it,
 * parents included, when missing). Block `id` is the file "<id>.blk": the
 * stored form of tier_block.h, a 48-byte header (magic "EMBK", version,
 * record count, payload length, XXH3-64 checksums) and the batch bytes.
 *
 * put writes "<id>.blk.tmp~<pid>.<n>" and renames it over "<id>.blk", so a
 * crash never leaves half a block under a block's name, and a reader sees
 * either the old block or the new one. No id maps to a temporary name (ids
 * have no '~'), so get never reads one; open removes the ones a crashed
 * writer left behind, which is why a directory belongs to one open store
 * at a time. The file is not fsync'd: cached blocks do not outlive their
 * host, and a block torn by a power loss fails its checksum.
 *
 * get checks everything before handing out a byte: a short, truncated or
 * corrupt file is EMBER_EINVAL with a message naming the file, never data.
 * A full disk or quota while writing is EMBER_ENOSPC, with the temporary
 * file removed (the block manager then leaves the block uncached).
 *
 * Threads: put, get and remove may run on any number of threads at once
 * (the directory is opened once; every call works relative to it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tier_block.h"

#define LABEL "disk.store"
#define DISK_SUFFIX ".blk"
#define DISK_TMP_MARK ".blk.tmp~"
/* Bytes of a file name: id, ".blk.tmp~", pid, '.', counter, NUL. */
#define DISK_NAME_MAX (TIER_ID_MAX + 64u)
/* Bytes of "<dir>/<name>" in messages (an ember_error holds 512 anyway). */
#define DISK_WHERE_MAX 1024u

/* An opened store. */
typedef struct disk_store {
    const ember_host_api *host;
    int dirfd;  /* the store's directory, O_DIRECTORY */
    char *dir;  /* its path as given, for messages */
    _Atomic uint64_t seq; /* numbers temporary files */
} disk_store;

/* "<dir>/<name>" into where[DISK_WHERE_MAX], for messages. */
static void disk_where(const disk_store *st, const char *name, char *where)
{
    snprintf(where, DISK_WHERE_MAX, "%s/%s", st->dir, name);
}

/* Creates dir and its missing parents (as mkdir -p). */
static ember_status disk_mkdirs(const ember_host_api *host, const char *dir,
                                ember_error *err)
{
    ember_status s = EMBER_OK;
    size_t n = strlen(dir);
    char *p = host->alloc(n + 1);
    if (!p)
        return ember_errorf(err, EMBER_ENOMEM, LABEL ": open: out of memory");
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            s = tier_errno(err, errno, LABEL, "creating directory", p, NULL);
            goto done;
        }
        p[i] = c;
    }
done:
    host->free(p);
    return s;
}

/* Removes the temporary files a crashed put left in the directory (best
 * effort: a file that cannot be removed only takes room). */
static void disk_sweep(disk_store *st)
{
    int fd = fcntl(st->dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, DISK_TMP_MARK) != NULL)
            (void)unlinkat(st->dirfd, de->d_name, 0);
    closedir(d);
}

/* close: closes the directory; the blocks stay on disk (the block manager
 * removes them by id, or removes the whole directory). */
static void disk_close(void *state)
{
    disk_store *st = state;
    if (!st)
        return;
    if (st->dirfd >= 0)
        close(st->dirfd);
    st->host->free(st->dir);
    st->host->free(st);
}

/* open: creates dir when missing, opens it, sweeps old temporary files. */
static ember_status disk_open(const ember_host_api *host, const char *dir,
                              void **state, ember_error *err)
{
    ember_status s;
    disk_store *st = NULL;
    if ((s = tier_open_check(LABEL, host, dir, 1, state, err)) != EMBER_OK)
        return s;
    st = host->alloc(sizeof *st);
    if (!st)
        return ember_errorf(err, EMBER_ENOMEM, LABEL ": open: out of memory");
    st->host = host;
    st->dirfd = -1;
    atomic_init(&st->seq, 0);
    size_t n = strlen(dir);
    st->dir = host->alloc(n + 1);
    if (!st->dir) {
        s = ember_errorf(err, EMBER_ENOMEM, LABEL ": open: out of memory");
        goto fail;
    }
    memcpy(st->dir, dir, n + 1);
    if ((s = disk_mkdirs(host, dir, err)) != EMBER_OK)
        goto fail;
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0) {
        s = tier_errno(err, errno, LABEL, "opening directory", dir, NULL);
        goto fail;
    }
    disk_sweep(st);
    *state = st;
    return EMBER_OK;
fail:
    disk_close(st);
    return s;
}

/* Writes iov[0..n) to fd in full (through short writes and EINTR);
 * 0 or an errno value. */
static int disk_writev_all(int fd, struct iovec *iov, int n)
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
            return errno;
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
    return 0;
}

/* Reads n bytes at off into buf, through short reads and EINTR; sets *got
 * to the bytes read (fewer than n at the end of the file). 0 or an errno
 * value. */
static int disk_pread_all(int fd, void *buf, size_t n, off_t off,
                          size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, n - done,
                          off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = done;
            return errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* put: header + bytes into a fresh temporary file, then rename. */
static ember_status disk_put(void *state, const char *id,
                             const ember_batch *data, ember_error *err)
{
    disk_store *st = state;
    char name[DISK_NAME_MAX];
    char tmp[DISK_NAME_MAX];
    char where[DISK_WHERE_MAX];
    uint8_t h[TIER_BLOCK_HDR];
    ember_status s = tier_put_check(LABEL, st, id, data, err);
    int fd = -1;
    int e;
    if (s != EMBER_OK)
        return s;
    snprintf(name, sizeof name, "%s" DISK_SUFFIX, id);
    snprintf(tmp, sizeof tmp, "%s" DISK_TMP_MARK "%ld.%llu", id,
             (long)getpid(),
             (unsigned long long)atomic_fetch_add(&st->seq, 1));
    tier_header_encode(h, data->count, data->data, data->len, 1);

    fd = openat(st->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                0600);
    if (fd < 0) {
        e = errno;
        goto fail;
    }
    struct iovec iov[2];
    iov[0].iov_base = h;
    iov[0].iov_len = sizeof h;
    iov[1].iov_base = (void *)(uintptr_t)data->data;
    iov[1].iov_len = data->len;
    if ((e = disk_writev_all(fd, iov, 2)) != 0)
        goto fail;
    /* Some file systems (NFS) report a full disk only at close. */
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        e = errno;
        goto fail;
    }
    if (renameat(st->dirfd, tmp, st->dirfd, name) != 0) {
        e = errno;
        goto fail;
    }
    return EMBER_OK;
fail:
    if (fd >= 0)
        close(fd);
    (void)unlinkat(st->dirfd, tmp, 0);
    disk_where(st, tmp, where);
    return tier_put_errno(err, e, LABEL, "writing block", where, id,
                          "on disk", data->len + TIER_BLOCK_HDR, st->dir);
}

/* get: checks size, header, state and checksum, then appends. */
static ember_status disk_get(void *state, const char *id, ember_buf *out,
                             uint64_t *count, ember_error *err)
{
    disk_store *st = state;
    char name[DISK_NAME_MAX];
    char where[DISK_WHERE_MAX];
    uint8_t h[TIER_BLOCK_HDR];
    tier_header hdr = {0, 0, 0};
    struct stat sb;
    uint8_t *dst;
    size_t got;
    int e;
    ember_status s = tier_get_check(LABEL, st, id, out, err);
    if (s != EMBER_OK)
        return s;
    snprintf(name, sizeof name, "%s" DISK_SUFFIX, id);
    disk_where(st, name, where);
    int fd = openat(st->dirfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return tier_lookup_errno(err, errno, LABEL, id, "file", where,
                                 "opening", where);
    if (fstat(fd, &sb) != 0) {
        s = tier_errno(err, errno, LABEL, "reading", where, NULL);
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        s = ember_errorf(err, EMBER_EINVAL,
                         LABEL ": %s is not a regular file", where);
        goto done;
    }
    if ((s = tier_size_check((long long)sb.st_size, LABEL, where, err)) !=
        EMBER_OK)
        goto done;
    if ((e = disk_pread_all(fd, h, sizeof h, 0, &got)) != 0) {
        s = tier_errno(err, e, LABEL, "reading", where, NULL);
        goto done;
    }
    /* The file shrank after fstat. */
    if ((s = tier_size_check((long long)got, LABEL, where, err)) != EMBER_OK)
        goto done;
    s = tier_header_decode(h, (uint64_t)sb.st_size, &hdr, LABEL, where, err);
    if (s != EMBER_OK)
        goto done;
    if (tier_get_u32(h + TIER_BLOCK_STATE_OFF) != TIER_BLOCK_COMPLETE) {
        s = ember_errorf(err, EMBER_EINVAL,
                         LABEL ": %s is corrupt: the block is not marked "
                         "complete",
                         where);
        goto done;
    }
    s = tier_payload_reserve(out, &hdr, &dst, LABEL, id, err);
    if (s != EMBER_OK)
        goto done;
    size_t len = (size_t)hdr.len;
    got = 0;
    if (len && (e = disk_pread_all(fd, dst, len, (off_t)TIER_BLOCK_HDR,
                                   &got)) != 0) {
        s = tier_errno(err, e, LABEL, "reading", where, NULL);
        goto done;
    }
    if (got < len) {
        /* The file shrank after fstat: not something put ever does. */
        s = ember_errorf(err, EMBER_EINVAL,
                         LABEL ": %s is truncated: %zu of %zu payload "
                         "bytes",
                         where, got, len);
        goto done;
    }
    s = tier_payload_commit(out, &hdr, dst, count, LABEL, where, err);
done:
    close(fd);
    return s;
}

/* remove: unlinks the block's file. */
static ember_status disk_remove(void *state, const char *id,
                                ember_error *err)
{
    disk_store *st = state;
    char name[DISK_NAME_MAX];
    char where[DISK_WHERE_MAX];
    ember_status s = tier_remove_check(LABEL, st, id, err);
    if (s != EMBER_OK)
        return s;
    snprintf(name, sizeof name, "%s" DISK_SUFFIX, id);
    if (unlinkat(st->dirfd, name, 0) == 0)
        return EMBER_OK;
    int e = errno; /* disk_where may not keep errno */
    disk_where(st, name, where);
    return tier_lookup_errno(err, e, LABEL, id, "file", where, "removing",
                             where);
}

static const ember_storage_vtable disk_vtable = {
    .flags = EMBER_STORAGE_DISK,
    .replication = 1,
    .open = disk_open,
    .close = disk_close,
    .put = disk_put,
    .get = disk_get,
    .remove = disk_remove,
};

static const ember_component disk_components[] = {
    EMBER_STORAGE_COMPONENT("store",
                            "storage tier: one checksummed file per block",
                            &disk_vtable),
};

EMBER_PLUGIN(disk, "0.1.0", "disk storage tier", "Apache-2.0",
             disk_components, NULL, NULL);
