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

typedef struct hash_writer {
    shuf_mgr *m;
    ember_shuffle_writer_opts o;
    ember_status failed;
    char *tmpdir; /* "<dir>/shuffle_<s>/map_<m>.a<attempt>.tmp" */
    char *mapdir; /* "<dir>/shuffle_<s>/map_<m>" */
    shuf_enc enc;
    shuf_parts parts;
} hash_writer;

static void writer_free(hash_writer *w)
{
    if (!w)
        return;
    shuf_parts_free(&w->parts);
    shuf_enc_free(&w->enc);
    shuf_free(w->m, w->tmpdir);
    shuf_free(w->m, w->mapdir);
    shuf_free(w->m, w);
}

/* Marks the writer failed and deletes what it wrote. */
static ember_status fail(hash_writer *w, ember_status s)
{
    if (s != EMBER_OK && w->failed == EMBER_OK) {
        w->failed = s;
        shuf_parts_remove(&w->parts);
        (void)shuf_rmtree(w->tmpdir);
    }
    return s;
}

static ember_status hash_open(const ember_host_api *host,
                              const ember_shuffle_conf *conf, void **state,
                              ember_error *err)
{
    shuf_mgr *m = NULL;
    if (!state)
        return ember_errorf(err, EMBER_EINVAL, "%s: open: no state pointer",
                            HASH_LABEL);
    ember_status s = shuf_mgr_open(&m, host, conf, HASH_LABEL, err);
    *state = m;
    return s;
}

static void hash_close(void *state)
{
    shuf_mgr_close(state);
}

static ember_status hash_writer_open(void *state,
                                     const ember_shuffle_writer_opts *opts,
                                     void **out, ember_error *err)
{
    shuf_mgr *m = state;
    hash_writer *w = NULL;
    char *sdir = NULL;
    ember_status s;
    if (!m || !out)
        return ember_errorf(err, EMBER_EINVAL, "%s: writer_open: no state",
                            HASH_LABEL);
    *out = NULL;
    w = shuf_calloc(m, 1, sizeof *w);
    if (!w)
        return shuf_oom(m, err, "opening a writer");
    w->m = m;
    shuf_enc_init(&w->enc, m);
    s = shuf_opts_copy(m, opts, &w->o, err);
    if (s != EMBER_OK)
        goto done;
    sdir = shuf_shuffle_dir(m, w->o.shuffle_id);
    w->mapdir = shuf_strf(m, "%s/shuffle_%llu/map_%u", m->dir,
                          (unsigned long long)w->o.shuffle_id, w->o.map_id);
    w->tmpdir = shuf_strf(m, "%s.a%u.tmp", w->mapdir ? w->mapdir : "",
                          w->o.attempt);
    if (!sdir || !w->mapdir || !w->tmpdir) {
        s = shuf_oom(m, err, "opening a writer");
        goto done;
    }
    s = shuf_mkdir(m, sdir, err);
    if (s != EMBER_OK)
        goto done;
    (void)shuf_rmtree(w->tmpdir); /* a dead earlier run of this attempt */
    s = shuf_mkdir(m, w->tmpdir, err);
    if (s != EMBER_OK)
        goto done;
    s = shuf_parts_init(&w->parts, m, &w->enc, w->o.num_partitions,
                        shuf_strf(m, "%s/part_", w->tmpdir), "", "writing",
                        err);
    if (s != EMBER_OK) {
        (void)shuf_rmtree(w->tmpdir);
        goto done;
    }
    *out = w;
    w = NULL;
done:
    writer_free(w);
    shuf_free(m, sdir);
    return s;
}

static ember_status check_usable(const hash_writer *w, ember_error *err)
{
    if (w->failed != EMBER_OK)
        return ember_errorf(err, w->failed,
                            "%s: shuffle %llu map %u: the writer failed "
                            "earlier",
                            HASH_LABEL, (unsigned long long)w->o.shuffle_id,
                            w->o.map_id);
    return EMBER_OK;
}

static ember_status hash_write(void *writer, uint32_t partition,
                               const ember_batch *records, ember_error *err)
{
    hash_writer *w = writer;
    ember_status s;
    if (!w || !records)
        return ember_errorf(err, EMBER_EINVAL, "%s: write: no writer",
                            HASH_LABEL);
    if ((s = check_usable(w, err)) != EMBER_OK)
        return s;
    if (partition >= w->o.num_partitions)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: write: partition %u out of range (%u "
                            "partitions)",
                            HASH_LABEL, partition, w->o.num_partitions);
    ember_batch_cursor c = ember_batch_cursor_of(records);
    const uint8_t *rec;
    size_t len;
    uint64_t i = 0;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        s = shuf_parts_add(&w->parts, partition, rec, len, err);
        if (s != EMBER_OK)
            return fail(w, s);
        i++;
    }
    if (s != EMBER_END)
        return fail(w, ember_errorf(err, EMBER_EINVAL,
                                    "%s: write: malformed batch at record "
                                    "%llu",
                                    HASH_LABEL, (unsigned long long)i));
    return EMBER_OK;
}

static ember_status hash_write_tagged(void *writer, const ember_batch *records,
                                      const uint32_t *partitions,
                                      ember_error *err)
{
    hash_writer *w = writer;
    ember_status s;
    if (!w || !records || (!partitions && records->count))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: write_tagged: no writer or partitions",
                            HASH_LABEL);
    if ((s = check_usable(w, err)) != EMBER_OK)
        return s;
    for (uint64_t i = 0; i < records->count; i++)
        if (partitions[i] >= w->o.num_partitions)
            return ember_errorf(err, EMBER_EINVAL,
                                "%s: write_tagged: record %llu: partition "
                                "%u out of range (%u partitions)",
                                HASH_LABEL, (unsigned long long)i,
                                partitions[i], w->o.num_partitions);
    ember_batch_cursor c = ember_batch_cursor_of(records);
    for (uint64_t i = 0; i < records->count; i++) {
        const uint8_t *rec;
        size_t len;
        if (ember_batch_next(&c, &rec, &len) != EMBER_OK)
            return fail(w, ember_errorf(err, EMBER_EINVAL,
                                        "%s: write_tagged: malformed batch "
                                        "at record %llu of %llu",
                                        HASH_LABEL, (unsigned long long)i,
                                        (unsigned long long)records->count));
        s = shuf_parts_add(&w->parts, partitions[i], rec, len, err);
        if (s != EMBER_OK)
            return fail(w, s);
    }
    if (c.p != c.end)
        return fail(w, ember_errorf(err, EMBER_EINVAL,
                                    "%s: write_tagged: batch holds more than "
                                    "its %llu records",
                                    HASH_LABEL,
                                    (unsigned long long)records->count));
    return EMBER_OK;
}

/*
 * Renames the temp directory into place unless an attempt committed
 * first; then fills lengths/counts with the winner's.
 */
static ember_status publish(hash_writer *w, uint64_t *lengths,
                            uint64_t *counts, ember_error *err)
{
    shuf_mgr *m = w->m;
    uint32_t n = w->o.num_partitions;
    char *index = shuf_strf(m, "%s/index", w->mapdir);
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
    s = lstat(w->mapdir, &st) == 0 ? shuf_index_load(m, index, n, wl, wc,
                                                      &lerr)
                                   : EMBER_ENOTFOUND;
    if (s == EMBER_OK) {
        /* An earlier attempt won; ours goes (deleted below). */
        memcpy(lengths, wl, n * sizeof *wl);
        memcpy(counts, wc, n * sizeof *wc);
        won = 0;
    } else if (s == EMBER_EINVAL || s == EMBER_ENOTFOUND) {
        /* A broken earlier output must not block a fresh one. */
        if (lstat(w->mapdir, &st) == 0)
            shuf_mgr_trash_locked(m, w->mapdir);
        s = EMBER_OK;
        if (rename(w->tmpdir, w->mapdir) != 0)
            s = shuf_errno(m, err, errno, "committing", w->mapdir);
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
    shuf_mgr *m;
    uint64_t *cnt = NULL;
    shuf_file x = SHUF_FILE_INIT;
    ember_buf idx;
    ember_status s;
    if (!w)
        return ember_errorf(err, EMBER_EINVAL, "%s: commit: no writer",
                            HASH_LABEL);
    m = w->m;
    idx = shuf_buf(m);
    if ((s = check_usable(w, err)) != EMBER_OK)
        goto done;
    if (!lengths) {
        s = ember_errorf(err, EMBER_EINVAL, "%s: commit: no lengths array",
                         HASH_LABEL);
        goto done;
    }
    uint32_t n = w->o.num_partitions;
    cnt = counts ? counts : shuf_calloc(m, n, sizeof *cnt);
    if (!cnt) {
        s = shuf_oom(m, err, "committing");
        goto done;
    }
    s = shuf_parts_finish(&w->parts, lengths, cnt, err);
    uint64_t total = 0;
    for (uint32_t r = 0; s == EMBER_OK && r < n; r++)
        total += lengths[r];
    if (s == EMBER_OK)
        s = shuf_index_build(m, &idx, n, NULL, lengths, cnt, total, err);
    if (s == EMBER_OK)
        s = shuf_file_create(m, &x, shuf_strf(m, "%s/index", w->tmpdir), 0,
                             "writing", err);
    if (s == EMBER_OK)
        s = shuf_file_write(m, &x, idx.data, idx.len, NULL, 0, err);
    if (s == EMBER_OK)
        s = shuf_file_finish(m, &x, err);
    if (s == EMBER_OK)
        s = publish(w, lengths, cnt, err);
done:
    if (s != EMBER_OK) {
        shuf_parts_remove(&w->parts);
        (void)shuf_rmtree(w->tmpdir);
    }
    shuf_file_release(m, &x);
    ember_buf_release(&idx);
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
    shuf_parts_remove(&w->parts);
    (void)shuf_rmtree(w->tmpdir);
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
    int ifd = -1, pfd = -1, corrupt = 0;
    struct stat ist, pst;
    shuf_index_hdr h;
    shuf_index_entry e;
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
    ifd = open(index, O_RDONLY | O_CLOEXEC);
    if (ifd < 0) {
        if (errno == ENOENT)
            s = ember_errorf(err, EMBER_ENOTFOUND,
                             "%s: no committed output for shuffle %llu map "
                             "%u (%s)",
                             HASH_LABEL, (unsigned long long)shuffle_id,
                             map_id, index);
        else
            s = shuf_errno(m, err, errno, "opening", index);
        goto done;
    }
    if (fstat(ifd, &ist) != 0) {
        s = shuf_errno(m, err, errno, "reading", index);
        goto done;
    }
    corrupt = 1; /* from here an EINVAL is a broken output */
    s = shuf_index_read_hdr(m, ifd, index, &h, err);
    if (s != EMBER_OK)
        goto done;
    if (partition >= h.num_partitions) {
        corrupt = 0;
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: read_block: partition %u out of range (%s "
                         "has %u)",
                         HASH_LABEL, partition, index, h.num_partitions);
        goto done;
    }
    s = shuf_index_read_entry(m, ifd, index, &h, partition, 1, &e, err);
    if (s != EMBER_OK)
        goto done;
    if (e.offset != 0) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: corrupt %s at offset %llu: partition %u "
                         "starts at %llu, not 0",
                         HASH_LABEL, index,
                         (unsigned long long)(SHUF_INDEX_HDR +
                                              (uint64_t)partition *
                                                  SHUF_INDEX_ENTRY),
                         partition, (unsigned long long)e.offset);
        goto done;
    }
    if (e.length == 0)
        goto done; /* an empty block has no file */
    pfd = open(part, O_RDONLY | O_CLOEXEC);
    if (pfd < 0) {
        s = errno == ENOENT
                ? ember_errorf(err, EMBER_EINVAL,
                               "%s: corrupt %s at offset 0: the index "
                               "lists %llu bytes, the file is missing",
                               HASH_LABEL, part,
                               (unsigned long long)e.length)
                : shuf_errno(m, err, errno, "opening", part);
        goto done;
    }
    if (fstat(pfd, &pst) != 0) {
        s = shuf_errno(m, err, errno, "reading", part);
        goto done;
    }
    if ((uint64_t)pst.st_size != e.length) {
        s = ember_errorf(err, EMBER_EINVAL,
                         "%s: corrupt %s at offset %llu: the file is %llu "
                         "bytes, its index says %llu",
                         HASH_LABEL, part, (unsigned long long)pst.st_size,
                         (unsigned long long)pst.st_size,
                         (unsigned long long)e.length);
        goto done;
    }
    s = shuf_read_block_at(m, pfd, part, (uint64_t)pst.st_size, &h, &e, out,
                           count, err);
done:
    if (s != EMBER_OK)
        out->len = mark;
    if (s == EMBER_EINVAL && corrupt)
        delete_output(m, mapdir, index, &ist);
    if (ifd >= 0)
        (void)close(ifd);
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
    if (!state)
        return ember_errorf(err, EMBER_EINVAL, "%s: remove_shuffle: no state",
                            HASH_LABEL);
    return shuf_mgr_remove_shuffle(state, shuffle_id, err);
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
