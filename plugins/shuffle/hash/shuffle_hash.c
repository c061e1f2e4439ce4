/*
 * shuffle_hash.c — the hash shuffle manager: plugin "hash", component
 * "hash.manager". The simple baseline (Spark's old HashShuffleManager):
 * one file per reduce partition per map task, no sorting and no spills —
 * each record is appended to its partition's chunk buffer, and full
 * chunks go straight to the partition's file. It ignores
 * EMBER_SHUFFLE_SORTED (vtable flags 0: the reader sorts).
 *
 * Files of map m of shuffle s, under <dir>/shuffle_<s>/:
 *   map_<m>/part_<r>, map_<m>/index       committed output (a partition
 *                                         with no records has no file)
 *   map_<m>.a<attempt>.tmp/               the same, being written
 * Commit writes the index into the temp directory and renames the
 * directory into place under the manager's lock; the first committed
 * attempt wins. Blocks use the chunk format of docs/shuffle-format.md,
 * and a block that fails its checks makes read_block delete that map
 * output.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/shuffle.h"
#include "shuffle_common.h"

#define HASH_LABEL "hash shuffle"

/* A writer; head.base is its map directory "<dir>/shuffle_<s>/map_<m>". */
typedef struct hash_writer {
    shuf_writer head; /* first: see shuf_writer */
    char *tmpdir;     /* "<base>.a<attempt>.tmp" */
    shuf_parts parts;
} hash_writer;

static void writer_free(hash_writer *w)
{
    if (!w)
        return;
    shuf_parts_free(&w->parts);
    shuf_free(w->head.m, w->tmpdir);
    shuf_writer_free(&w->head);
}

/* The writer's first failure: deletes what it wrote. */
static void hash_discard(shuf_writer *h)
{
    hash_writer *w = (hash_writer *)h;
    shuf_parts_remove(&w->parts);
    (void)shuf_rmtree(w->tmpdir);
}

static ember_status hash_add(shuf_writer *h, uint32_t p, const uint8_t *rec,
                             size_t len, ember_error *err)
{
    return shuf_parts_add(&((hash_writer *)h)->parts, p, rec, len, err);
}

static const shuf_writer_ops hash_writer_ops = {hash_add, hash_discard};

static ember_status hash_open(const ember_host_api *host,
                              const ember_shuffle_conf *conf, void **state,
                              ember_error *err)
{
    return shuf_vt_open(HASH_LABEL, host, conf, state, err);
}

static void hash_close(void *state)
{
    shuf_mgr_close(state);
}

static ember_status hash_writer_open(void *state,
                                     const ember_shuffle_writer_opts *opts,
                                     void **out, ember_error *err)
{
    shuf_writer *h;
    ember_status s = shuf_writer_open(HASH_LABEL, state, out,
                                      sizeof(hash_writer), &hash_writer_ops,
                                      opts, &h, err);
    if (s != EMBER_OK)
        return s;
    hash_writer *w = (hash_writer *)h;
    shuf_mgr *m = h->m;
    w->tmpdir = shuf_strf(m, "%s.a%u.tmp", h->base, h->o.attempt);
    if (!w->tmpdir) {
        s = shuf_oom(m, err, "opening a writer");
        goto done;
    }
    (void)shuf_rmtree(w->tmpdir); /* a dead earlier run of this attempt */
    s = shuf_mkdir(m, w->tmpdir, err);
    if (s != EMBER_OK)
        goto done;
    s = shuf_parts_init(&w->parts, m, &h->enc, h->o.num_partitions,
                        shuf_strf(m, "%s/part_", w->tmpdir), "", "writing",
                        0, err);
    if (s != EMBER_OK) {
        (void)shuf_rmtree(w->tmpdir);
        goto done;
    }
    *out = w;
    w = NULL;
done:
    writer_free(w);
    return s;
}

static ember_status hash_write(void *writer, uint32_t partition,
                               const ember_batch *records, ember_error *err)
{
    return shuf_writer_write(HASH_LABEL, writer, partition, records, err);
}

static ember_status hash_write_tagged(void *writer, const ember_batch *records,
                                      const uint32_t *partitions,
                                      ember_error *err)
{
    return shuf_writer_write_tagged(HASH_LABEL, writer, records, partitions,
                                    err);
}

/*
 * Renames the temp directory into place unless an attempt committed
 * first; then fills lengths/counts with the winner's.
 */
static ember_status publish(hash_writer *w, uint64_t *lengths,
                            uint64_t *counts, ember_error *err)
{
    shuf_mgr *m = w->head.m;
    uint32_t n = w->head.o.num_partitions;
    char *index = shuf_strf(m, "%s/index", w->head.base);
    uint64_t *wl = shuf_calloc(m, n, sizeof *wl);
    uint64_t *wc = shuf_calloc(m, n, sizeof *wc);
    ember_status s = EMBER_OK;
    ember_error lerr;
    struct stat st;
    int won = 1;
    if (!index || !wl || !wc) {
        s = shuf_oom(m, err, "committing");
        goto done;
    }
    pthread_mutex_lock(&m->lock);
    s = lstat(w->head.base, &st) == 0
            ? shuf_index_load(m, index, n, wl, wc, &lerr)
            : EMBER_ENOTFOUND;
    if (s == EMBER_OK) {
        /* An earlier attempt won; ours goes (deleted below). */
        memcpy(lengths, wl, n * sizeof *wl);
        memcpy(counts, wc, n * sizeof *wc);
        won = 0;
    } else if (s == EMBER_EINVAL || s == EMBER_ENOTFOUND) {
        /* A broken earlier output must not block a fresh one. */
        if (lstat(w->head.base, &st) == 0)
            shuf_mgr_trash_locked(m, w->head.base);
        s = EMBER_OK;
        if (rename(w->tmpdir, w->head.base) != 0)
            s = shuf_errno(m, err, errno, "committing", w->head.base);
    } else {
        *err = lerr;
    }
    pthread_mutex_unlock(&m->lock);
    if (!won)
        (void)shuf_rmtree(w->tmpdir);
done:
    shuf_free(m, wl);
    shuf_free(m, wc);
    shuf_free(m, index);
    return s;
}

static ember_status hash_writer_commit(void *writer, uint64_t *lengths,
                                       uint64_t *counts, ember_error *err)
{
    hash_writer *w = writer;
    uint64_t *cnt = NULL;
    shuf_file x = SHUF_FILE_INIT;
    ember_status s;
    if (!w)
        return ember_errorf(err, EMBER_EINVAL, "%s: commit: no writer",
                            HASH_LABEL);
    shuf_mgr *m = w->head.m;
    uint32_t n = w->head.o.num_partitions;
    s = shuf_writer_commit_begin(&w->head, lengths, counts, &cnt, err);
    if (s != EMBER_OK)
        goto done;
    s = shuf_parts_finish(&w->parts, lengths, cnt, err);
    uint64_t total = 0;
    for (uint32_t r = 0; s == EMBER_OK && r < n; r++)
        total += lengths[r];
    if (s == EMBER_OK)
        s = shuf_index_write(m, &x, shuf_strf(m, "%s/index", w->tmpdir), n,
                             NULL, lengths, cnt, total, err);
    if (s == EMBER_OK)
        s = publish(w, lengths, cnt, err);
done:
    if (s != EMBER_OK)
        hash_discard(&w->head);
    shuf_file_release(m, &x);
    if (cnt != counts)
        shuf_free(m, cnt);
    writer_free(w);
    return s;
}

static void hash_writer_abort(void *writer)
{
    hash_writer *w = writer;
    if (!w)
        return;
    hash_discard(&w->head);
    writer_free(w);
}

/* Deletes a corrupt map output, unless it was replaced since the reader
 * opened its index (dev/ino differ). */
static void delete_output(shuf_mgr *m, const char *mapdir, const char *index,
                          const struct stat *seen)
{
    struct stat st;
    pthread_mutex_lock(&m->lock);
    if (stat(index, &st) == 0 && st.st_dev == seen->st_dev &&
        st.st_ino == seen->st_ino)
        shuf_mgr_trash_locked(m, mapdir);
    pthread_mutex_unlock(&m->lock);
    shuf_mgr_count(m, m->ctr_corrupt, 1);
}

static ember_status hash_read_block(void *state, uint64_t shuffle_id,
                                    uint32_t map_id, uint32_t partition,
                                    ember_buf *out, uint64_t *count,
                                    ember_error *err)
{
    shuf_mgr *m = state;
    char *mapdir = NULL, *index = NULL, *part = NULL;
    int pfd = -1;
    uint64_t size;
    shuf_index_ref x = SHUF_INDEX_REF_INIT;
    ember_status s = EMBER_OK;
    if (!m || !out || !count)
        return ember_errorf(err, EMBER_EINVAL, "%s: read_block: no state",
                            HASH_LABEL);
    size_t mark = out->len;
    mapdir = shuf_strf(m, "%s/shuffle_%llu/map_%u", m->dir,
                       (unsigned long long)shuffle_id, map_id);
    index = shuf_strf(m, "%s/index", mapdir ? mapdir : "");
    part = shuf_strf(m, "%s/part_%u", mapdir ? mapdir : "", partition);
    if (!mapdir || !index || !part) {
        s = shuf_oom(m, err, "reading a block");
        goto done;
    }
    s = shuf_index_open(m, index, shuffle_id, map_id, partition, &x, err);
    if (s != EMBER_OK)
        goto done;
    if (x.e.offset != 0) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: corrupt %s at offset %llu: partition %u "
                         "starts at %llu, not 0",
                         HASH_LABEL, index,
                         (unsigned long long)(SHUF_INDEX_HDR +
                                              (uint64_t)partition *
                                                  SHUF_INDEX_ENTRY),
                         partition, (unsigned long long)x.e.offset);
        goto done;
    }
    if (x.e.length == 0)
        goto done; /* an empty block has no file */
    pfd = open(part, O_RDONLY | O_CLOEXEC);
    if (pfd < 0) {
        s = errno == ENOENT
                ? ember_errorf(err, EMBER_EINVAL,
                               "%s: corrupt %s at offset 0: the index "
                               "lists %llu bytes, the file is missing",
                               HASH_LABEL, part,
                               (unsigned long long)x.e.length)
                : shuf_errno(m, err, errno, "opening", part);
        goto done;
    }
    s = shuf_data_size(m, pfd, part, x.e.length, &size, err);
    if (s == EMBER_OK)
        s = shuf_read_block_at(m, pfd, part, size, &x.h, &x.e, out, count,
                               err);
done:
    if (s != EMBER_OK)
        out->len = mark;
    if (s == EMBER_EINVAL && x.corrupt)
        delete_output(m, mapdir, index, &x.st);
    if (x.fd >= 0)
        (void)close(x.fd);
    if (pfd >= 0)
        (void)close(pfd);
    shuf_free(m, mapdir);
    shuf_free(m, index);
    shuf_free(m, part);
    return s;
}

static ember_status hash_remove_shuffle(void *state, uint64_t shuffle_id,
                                        ember_error *err)
{
    return shuf_vt_remove_shuffle(HASH_LABEL, state, shuffle_id, err);
}

static const ember_shuffle_vtable hash_vtable = {
    .flags = 0,
    .open = hash_open,
    .close = hash_close,
    .writer_open = hash_writer_open,
    .write = hash_write,
    .write_tagged = hash_write_tagged,
    .writer_commit = hash_writer_commit,
    .writer_abort = hash_writer_abort,
    .read_block = hash_read_block,
    .remove_shuffle = hash_remove_shuffle,
};

static const ember_component hash_components[] = {
    EMBER_SHUFFLE_COMPONENT("manager",
                            "hash shuffle: one file per reduce partition per "
                            "map task, no sorting (the baseline)",
                            &hash_vtable),
};

EMBER_PLUGIN(hash, "0.1.0", "Hash shuffle manager (one file per reducer)",
             "Apache-2.0", hash_components, NULL, NULL);
