/*
 * shuf_mgr.c — the manager both shuffle plugins share: settings, the
 * directory sweep at open, removing shuffles, memory and path helpers,
 * and the open / remove_shuffle entries of both vtables.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, madvise */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shuffle_common.h"

#define SHUF_DEFAULT_MEMORY ((uint64_t)64 << 20)
#define SHUF_DEFAULT_FILE_BUFFER ((uint64_t)32 << 10)
#define SHUF_DEFAULT_CHUNK ((uint32_t)64 << 10)
#define SHUF_MIN_CHUNK 64u
#define SHUF_MAX_CONF_CHUNK ((uint32_t)64 << 20)
#define SHUF_MAX_FILE_BUFFER ((uint64_t)64 << 20)

void *shuf_alloc(const shuf_mgr *m, size_t n)
{
    return m->host->alloc(n ? n : 1);
}

void *shuf_calloc(const shuf_mgr *m, size_t a, size_t b)
{
    if (b && a > SIZE_MAX / b)
        return NULL;
    size_t n = a * b;
    void *p = shuf_alloc(m, n);
    if (p && n)
        memset(p, 0, n);
    return p;
}

void shuf_free(const shuf_mgr *m, void *p)
{
    if (p)
        m->host->free(p);
}

void *shuf_map_alloc(shuf_mgr *m, size_t bytes)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nkept; i++) {
        if (m->kept[i].bytes == bytes) {
            void *p = m->kept[i].p;
            m->kept[i] = m->kept[--m->nkept];
            m->kept_bytes -= bytes;
            pthread_mutex_unlock(&m->lock);
            return p;
        }
    }
    pthread_mutex_unlock(&m->lock);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* a hint */
    return p;
}

void shuf_map_free(shuf_mgr *m, void *p, size_t bytes)
{
    if (!p)
        return;
    pthread_mutex_lock(&m->lock);
    int keep = m->nkept < SHUF_KEPT_MAX &&
               m->kept_bytes + bytes <= m->memory_bytes;
    if (keep) {
        m->kept[m->nkept].p = p;
        m->kept[m->nkept].bytes = bytes;
        m->nkept++;
        m->kept_bytes += bytes;
    }
    pthread_mutex_unlock(&m->lock);
    if (!keep)
        munmap(p, bytes);
}

/* The grow function of shuf_buf: owner is the host table. */
static ember_status shuf_buf_grow(ember_buf *b, size_t min_cap)
{
    const ember_host_api *host = b->owner;
    if (min_cap == 0) {
        if (b->data)
            host->free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        return EMBER_OK;
    }
    void *p = host->realloc(b->data, min_cap);
    if (!p)
        return EMBER_ENOMEM;
    b->data = p;
    b->cap = min_cap;
    return EMBER_OK;
}

ember_buf shuf_buf(const shuf_mgr *m)
{
    ember_buf b = ember_buf_heap();
    b.grow = shuf_buf_grow;
    b.owner = (void *)(uintptr_t)m->host;
    return b;
}

char *shuf_strf(const shuf_mgr *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = shuf_alloc(m, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    (void)vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *shuf_shuffle_dir(const shuf_mgr *m, uint64_t shuffle_id)
{
    return shuf_strf(m, "%s/shuffle_%llu", m->dir,
                     (unsigned long long)shuffle_id);
}

ember_status shuf_oom(const shuf_mgr *m, ember_error *err, const char *what)
{
    return ember_errorf(err, EMBER_ENOMEM, "%s: out of memory %s", m->label,
                        what);
}

void shuf_mgr_count(const shuf_mgr *m, uint32_t id, int64_t delta)
{
    if (m->have_counters)
        m->host->counter_add(id, delta);
}

/* Deletes the leftovers of writers that died: "*.tmp" entries in every
 * shuffle directory, and trash entries. Best effort. */
static void sweep(const shuf_mgr *m)
{
    DIR *d = opendir(m->dir);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        char *path;
        if (strncmp(name, ".trash-", 7) == 0) {
            path = shuf_strf(m, "%s/%s", m->dir, name);
            if (path)
                (void)shuf_rmtree(path);
            shuf_free(m, path);
            continue;
        }
        if (strncmp(name, "shuffle_", 8) != 0)
            continue;
        path = shuf_strf(m, "%s/%s", m->dir, name);
        DIR *sd = path ? opendir(path) : NULL;
        struct dirent *se;
        while (sd && (se = readdir(sd)) != NULL) {
            size_t len = strlen(se->d_name);
            if (len > 4 && strcmp(se->d_name + len - 4, ".tmp") == 0) {
                char *tp = shuf_strf(m, "%s/%s", path, se->d_name);
                if (tp)
                    (void)shuf_rmtree(tp);
                shuf_free(m, tp);
            }
        }
        if (sd)
            closedir(sd);
        shuf_free(m, path);
    }
    closedir(d);
}

ember_status shuf_mgr_open(shuf_mgr **out, const ember_host_api *host,
                           const ember_shuffle_conf *conf, const char *label,
                           ember_error *err)
{
    ember_shuffle_conf c;
    shuf_mgr *m = NULL;
    struct stat st;
    ember_status s = EMBER_OK;
    int locked = 0;

    if (out == NULL || host == NULL || !EMBER_HOST_HAS(host, alloc) ||
        !EMBER_HOST_HAS(host, realloc) || !EMBER_HOST_HAS(host, free) ||
        conf == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: open: no host services or no conf", label);
    *out = NULL;
    /* Only the bytes the host declared; newer fields read as zero. */
    memset(&c, 0, sizeof c);
    size_t n = conf->size < sizeof c ? conf->size : sizeof c;
    if (n < offsetof(ember_shuffle_conf, dir) + sizeof c.dir)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: open: conf size %u is too small", label,
                            (unsigned)conf->size);
    memcpy(&c, conf, n);
    if (c.dir == NULL || c.dir[0] == '\0')
        return ember_errorf(err, EMBER_EINVAL, "%s: open: no directory",
                            label);
    if (c.codec && (!c.codec->bound || !c.codec->compress ||
                    !c.codec->decompress))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: open: the codec lacks bound, compress or "
                            "decompress",
                            label);
    if (c.codec && c.codec_name &&
        strlen(c.codec_name) >= SHUF_CODEC_NAME)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: open: codec name \"%s\" is longer than %u "
                            "bytes",
                            label, c.codec_name, SHUF_CODEC_NAME - 1);

    m = host->alloc(sizeof *m);
    if (!m)
        return ember_errorf(err, EMBER_ENOMEM, "%s: open: out of memory",
                            label);
    memset(m, 0, sizeof *m);
    m->host = host;
    m->label = label;
    m->dir = shuf_strf(m, "%s", c.dir);
    if (!m->dir) {
        s = shuf_oom(m, err, "opening");
        goto done;
    }
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        s = ember_errorf(err, EMBER_ENOMEM, "%s: open: no mutex", label);
        goto done;
    }
    locked = 1;
    if (stat(m->dir, &st) != 0) {
        s = shuf_errno(m, err, errno, "opening directory", m->dir);
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        s = ember_errorf(err, EMBER_EINVAL, "%s: opening directory %s: "
                         "not a directory", label, m->dir);
        goto done;
    }
    m->memory_bytes = c.memory_bytes ? c.memory_bytes : SHUF_DEFAULT_MEMORY;
    m->file_buffer = c.file_buffer ? c.file_buffer : SHUF_DEFAULT_FILE_BUFFER;
    if (m->file_buffer > SHUF_MAX_FILE_BUFFER)
        m->file_buffer = SHUF_MAX_FILE_BUFFER;
    m->bypass_threshold = c.bypass_threshold;
    m->chunk_bytes = c.chunk_bytes ? c.chunk_bytes : SHUF_DEFAULT_CHUNK;
    if (m->chunk_bytes < SHUF_MIN_CHUNK)
        m->chunk_bytes = SHUF_MIN_CHUNK;
    if (m->chunk_bytes > SHUF_MAX_CONF_CHUNK)
        m->chunk_bytes = SHUF_MAX_CONF_CHUNK;
    m->codec = c.codec;
    m->codec_state = c.codec_state;
    if (c.codec)
        snprintf(m->codec_name, sizeof m->codec_name, "%s",
                 c.codec_name ? c.codec_name : "unnamed");
    if (EMBER_HOST_HAS(host, counter_register) &&
        EMBER_HOST_HAS(host, counter_add) &&
        host->counter_register("shuffle.sort.spills", &m->ctr_spills) ==
            EMBER_OK &&
        host->counter_register("shuffle.sort.spill_bytes",
                               &m->ctr_spill_bytes) == EMBER_OK &&
        host->counter_register("shuffle.corrupt_blocks", &m->ctr_corrupt) ==
            EMBER_OK)
        m->have_counters = 1;
    sweep(m);
    *out = m;
    m = NULL;
done:
    if (m) {
        if (locked)
            pthread_mutex_destroy(&m->lock);
        shuf_free(m, m->dir);
        host->free(m);
    }
    return s;
}

void shuf_mgr_close(shuf_mgr *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nkept; i++)
        munmap(m->kept[i].p, m->kept[i].bytes);
    pthread_mutex_destroy(&m->lock);
    shuf_free(m, m->dir);
    m->host->free(m);
}

void shuf_mgr_trash_locked(shuf_mgr *m, const char *path)
{
    char *t = shuf_strf(m, "%s/.trash-%ld-%llu", m->dir, (long)getpid(),
                        (unsigned long long)m->trash_seq++);
    if (t && rename(path, t) == 0)
        (void)shuf_rmtree(t);
    else
        (void)shuf_rmtree(path);
    shuf_free(m, t);
}

ember_status shuf_mgr_remove_shuffle(shuf_mgr *m, uint64_t shuffle_id,
                                     ember_error *err)
{
    ember_status s = EMBER_OK;
    char *sdir = shuf_shuffle_dir(m, shuffle_id);
    char *t = shuf_strf(m, "%s/.trash-%ld-r%llu", m->dir, (long)getpid(),
                        (unsigned long long)shuffle_id);
    char *t2 = NULL;
    int e;
    if (!sdir || !t) {
        s = shuf_oom(m, err, "removing a shuffle");
        goto done;
    }
    pthread_mutex_lock(&m->lock);
    t2 = shuf_strf(m, "%s.%llu", t, (unsigned long long)m->trash_seq++);
    e = t2 && rename(sdir, t2) == 0 ? 0 : errno;
    pthread_mutex_unlock(&m->lock);
    if (!t2) {
        s = shuf_oom(m, err, "removing a shuffle");
        goto done;
    }
    if (e == ENOENT)
        goto done;
    /* Renaming failed for another reason: delete in place. */
    e = shuf_rmtree(e ? sdir : t2);
    if (e && e != ENOENT)
        s = shuf_errno(m, err, e, "removing", sdir);
done:
    shuf_free(m, t2);
    shuf_free(m, t);
    shuf_free(m, sdir);
    return s;
}

ember_status shuf_opts_copy(const shuf_mgr *m,
                            const ember_shuffle_writer_opts *opts,
                            ember_shuffle_writer_opts *o, ember_error *err)
{
    size_t need = offsetof(ember_shuffle_writer_opts, num_partitions) +
                  sizeof opts->num_partitions;
    if (opts == NULL || opts->size < need)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: writer_open: no options or size %u too "
                            "small",
                            m->label, opts ? (unsigned)opts->size : 0u);
    memset(o, 0, sizeof *o);
    memcpy(o, opts, opts->size < sizeof *o ? opts->size : sizeof *o);
    o->size = sizeof *o;
    if (o->num_partitions == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: writer_open: shuffle %llu map %u has 0 "
                            "partitions",
                            m->label, (unsigned long long)o->shuffle_id,
                            o->map_id);
    return EMBER_OK;
}

ember_status shuf_vt_open(const char *label, const ember_host_api *host,
                          const ember_shuffle_conf *conf, void **state,
                          ember_error *err)
{
    shuf_mgr *m = NULL;
    if (!state)
        return ember_errorf(err, EMBER_EINVAL, "%s: open: no state pointer",
                            label);
    ember_status s = shuf_mgr_open(&m, host, conf, label, err);
    *state = m;
    return s;
}

ember_status shuf_vt_remove_shuffle(const char *label, void *state,
                                    uint64_t shuffle_id, ember_error *err)
{
    if (!state)
        return ember_errorf(err, EMBER_EINVAL, "%s: remove_shuffle: no state",
                            label);
    return shuf_mgr_remove_shuffle(state, shuffle_id, err);
}
