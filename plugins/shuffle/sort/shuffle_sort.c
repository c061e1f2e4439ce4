/*
 * shuffle_sort.c — the sort-based shuffle manager: plugin "sort",
 * component "sort.manager" (Spark's SortShuffleManager).
 *
 * A writer copies records into an arena and keeps one sort_entry each.
 * When the buffer passes memory_bytes it sorts the entries and spills a
 * run: one file with every partition's block in partition order. Commit
 * sorts what is left and merges it with the runs into one data file plus
 * one index file (docs/shuffle-format.md). Three paths:
 *   - EMBER_SHUFFLE_SORTED: sorted by (partition, record bytes); runs are
 *     merged k-way per partition;
 *   - not sorted, num_partitions <= bypass_threshold: no sort, each
 *     record goes to its partition's chunks (Spark's bypass merge path);
 *     finished chunks are held in memory up to memory_bytes and commit
 *     writes them once, partition after partition; past that they all go
 *     to one file per partition, which commit concatenates;
 *   - not sorted, more partitions: sorted by partition only; runs are
 *     merged by copying their stored chunks as they are.
 *
 * Files of map m of shuffle s, under <dir>/shuffle_<s>/:
 *   map_<m>.data, map_<m>.index              committed output
 *   map_<m>.a<attempt>.{data,index}.tmp      being committed
 *   map_<m>.a<attempt>.spill<k>.tmp          spilled runs
 *   map_<m>.a<attempt>.part<r>.tmp           bypass partition files
 * Commit renames data then index into place under the manager's lock; the
 * index is what makes an output visible, and the first committed attempt
 * of a map wins (a later one deletes its files and reports the winner's
 * sizes). A block that fails its checks makes read_block delete that map
 * output, so the rerun of the map task can commit afresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/record.h"
#include "ember/shuffle.h"
#include "shuffle_common.h"
#include "sort_internal.h"

#define SORT_LABEL "sort shuffle"
#define ARENA_MIN ((size_t)16 << 10)
#define ARENA_MAX ((size_t)4 << 20)

enum { MODE_SORT, MODE_PART, MODE_BYPASS };

/* A block of the record arena. */
typedef struct arena_blk {
    struct arena_blk *next;
    size_t cap;
    size_t used;
    uint8_t data[];
} arena_blk;

/* One spilled run: its file, and each partition's block and count. */
typedef struct sort_run {
    char *path;
    uint64_t *offsets; /* num_partitions + 1 */
    uint64_t *counts;  /* num_partitions */
} sort_run;

typedef struct sort_writer {
    shuf_writer head; /* first: see shuf_writer; head.base is the
                         prefix of the files, "<dir>/shuffle_<s>/map_<m>" */
    int mode;
    shuf_cbuf chunk; /* the chunk being filled (data file and spills) */
    /* sort paths */
    arena_blk *blocks;
    arena_blk *cur;
    size_t blk_size;
    sort_entry *ents;
    sort_entry *tmp;
    size_t n_ents;
    size_t cap_ents;
    size_t cap_tmp;
    size_t *starts; /* num_partitions + 1 */
    uint64_t buffered;
    sort_run *runs;
    size_t n_runs;
    size_t cap_runs;
    ember_buf copy; /* scratch for copying stored bytes */
    /* bypass path */
    shuf_parts parts;
} sort_writer;

/* ---- arena ---- */

/* Blocks of 2 MiB and more are mappings of their own marked for huge
 * pages: filling the arena then faults once per 2 MiB, not per 4 KiB. */
#define BLK_MAPPED ((size_t)2 << 20)

static arena_blk *blk_alloc(sort_writer *w, size_t cap)
{
    size_t bytes = sizeof(arena_blk) + cap;
    if (bytes < BLK_MAPPED)
        return shuf_alloc(w->head.m, bytes);
    return shuf_map_alloc(w->head.m, bytes);
}

static void blk_free(sort_writer *w, arena_blk *b)
{
    size_t bytes = sizeof(arena_blk) + b->cap;
    if (bytes < BLK_MAPPED)
        shuf_free(w->head.m, b);
    else
        shuf_map_free(w->head.m, b, bytes);
}

/* Room for len bytes in the arena; NULL when out of memory. */
static uint8_t *arena_take(sort_writer *w, size_t len)
{
    arena_blk *b = w->cur;
    if (b && b->cap - b->used >= len) {
        uint8_t *p = b->data + b->used;
        b->used += len;
        return p;
    }
    if (b && b->next && b->next->cap >= len) {
        b = w->cur = b->next;
        b->used = len;
        return b->data;
    }
    size_t cap = len > w->blk_size ? len : w->blk_size;
    arena_blk *nb = blk_alloc(w, cap);
    if (!nb)
        return NULL;
    nb->cap = cap;
    nb->used = len;
    if (b) {
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = w->blocks;
        w->blocks = nb;
    }
    w->cur = nb;
    return nb->data;
}

/* Empties the arena, keeping standard blocks for reuse. */
static void arena_reset(sort_writer *w)
{
    arena_blk **pp = &w->blocks;
    while (*pp) {
        arena_blk *b = *pp;
        if (b->cap > w->blk_size) {
            *pp = b->next;
            blk_free(w, b);
            continue;
        }
        b->used = 0;
        pp = &b->next;
    }
    w->cur = w->blocks;
}

static void arena_free(sort_writer *w)
{
    while (w->blocks) {
        arena_blk *b = w->blocks;
        w->blocks = b->next;
        blk_free(w, b);
    }
    w->cur = NULL;
}

/* ---- paths and cleanup ---- */

static char *tmp_path(const sort_writer *w, const char *what)
{
    return shuf_strf(w->head.m, "%s.a%u.%s.tmp", w->head.base, w->head.o.attempt,
                     what);
}

/* Deletes every temp file of the writer (spills, bypass files, the data
 * and index being committed). */
static void remove_temps(sort_writer *w)
{
    for (size_t i = 0; i < w->n_runs; i++)
        if (w->runs[i].path)
            (void)unlink(w->runs[i].path);
    shuf_parts_remove(&w->parts);
    char *d = tmp_path(w, "data"), *x = tmp_path(w, "index");
    if (d)
        (void)unlink(d);
    if (x)
        (void)unlink(x);
    shuf_free(w->head.m, d);
    shuf_free(w->head.m, x);
}

/* The writer's first failure (after an I/O error): deletes its files. */
static void discard(shuf_writer *h)
{
    remove_temps((sort_writer *)h);
}

static void writer_free(sort_writer *w)
{
    if (!w)
        return;
    shuf_mgr *m = w->head.m;
    for (size_t i = 0; i < w->n_runs; i++) {
        shuf_free(m, w->runs[i].path);
        shuf_free(m, w->runs[i].offsets);
        shuf_free(m, w->runs[i].counts);
    }
    shuf_free(m, w->runs);
    arena_free(w);
    shuf_free(m, w->ents);
    shuf_free(m, w->tmp);
    shuf_free(m, w->starts);
    shuf_cbuf_free(m, &w->chunk);
    ember_buf_release(&w->copy);
    shuf_parts_free(&w->parts);
    shuf_writer_free(&w->head);
}

/* ---- buffering and sorting ---- */

/* Sorts the buffered entries (tmp grown to match). */
static ember_status sort_buffer(sort_writer *w, ember_error *err)
{
    if (w->cap_tmp < w->n_ents) {
        shuf_free(w->head.m, w->tmp);
        w->tmp = w->cap_ents > SIZE_MAX / sizeof *w->tmp
                     ? NULL
                     : shuf_alloc(w->head.m, w->cap_ents * sizeof *w->tmp);
        if (!w->tmp) {
            w->cap_tmp = 0;
            return shuf_oom(w->head.m, err, "sorting");
        }
        w->cap_tmp = w->cap_ents;
    }
    sort_entries(w->ents, w->tmp, w->n_ents, w->head.o.num_partitions,
                 w->starts, w->mode == MODE_SORT);
    return EMBER_OK;
}

/* Adds partition p's sorted buffered records to the chunk going to f and
 * counts them (no flush). */
static ember_status emit_buffer(sort_writer *w, shuf_file *f, uint32_t p,
                                uint64_t *count, ember_error *err)
{
    size_t lo = w->starts[p], hi = w->starts[p + 1];
    for (size_t i = lo; i < hi; i++) {
#if defined(__GNUC__)
        /* Sorted entries visit the arena out of order: fetch ahead. */
        if (i + 8 < hi)
            __builtin_prefetch(w->ents[i + 8].rec);
#endif
        ember_status s = shuf_chunk_add(&w->head.enc, &w->chunk, w->ents[i].rec,
                                        w->ents[i].len, shuf_sink_file, f,
                                        err);
        if (s != EMBER_OK)
            return s;
    }
    *count += hi - lo;
    return EMBER_OK;
}

/* Sorts the buffer and writes it to a new spill file as one run. */
static ember_status spill(sort_writer *w, ember_error *err)
{
    shuf_mgr *m = w->head.m;
    uint32_t n = w->head.o.num_partitions;
    shuf_file f = SHUF_FILE_INIT;
    sort_run run = {NULL, NULL, NULL};
    ember_status s;
    char what[32];

    if (w->n_runs == w->cap_runs) {
        size_t cap = w->cap_runs ? w->cap_runs * 2 : 8;
        sort_run *r = m->host->realloc(w->runs, cap * sizeof *r);
        if (!r)
            return shuf_oom(m, err, "spilling");
        w->runs = r;
        w->cap_runs = cap;
    }
    s = sort_buffer(w, err);
    if (s != EMBER_OK)
        return s;
    run.offsets = shuf_calloc(m, (size_t)n + 1, sizeof *run.offsets);
    run.counts = shuf_calloc(m, n, sizeof *run.counts);
    if (!run.offsets || !run.counts) {
        s = shuf_oom(m, err, "spilling");
        goto done;
    }
    snprintf(what, sizeof what, "spill%zu", w->n_runs);
    s = shuf_file_create(m, &f, tmp_path(w, what), (size_t)m->file_buffer,
                         "writing spill", err);
    for (uint32_t p = 0; s == EMBER_OK && p < n; p++) {
        run.offsets[p] = f.pos;
        s = emit_buffer(w, &f, p, &run.counts[p], err);
        if (s == EMBER_OK)
            s = shuf_chunk_flush(&w->head.enc, &w->chunk, shuf_sink_file, &f,
                                 err);
    }
    run.offsets[n] = f.pos;
    if (s == EMBER_OK)
        s = shuf_file_finish(m, &f, err);
    if (s != EMBER_OK) {
        w->chunk.len = 0;
        shuf_file_discard(m, &f);
        goto done;
    }
    shuf_mgr_count(m, m->ctr_spills, 1);
    shuf_mgr_count(m, m->ctr_spill_bytes, (int64_t)f.pos);
    run.path = f.path;
    f.path = NULL;
    w->runs[w->n_runs++] = run;
    run.offsets = run.counts = NULL;
    arena_reset(w);
    w->n_ents = 0;
    w->buffered = 0;
done:
    shuf_file_release(m, &f);
    shuf_free(m, run.offsets);
    shuf_free(m, run.counts);
    return s;
}

/* Adds one record for partition p (p < num_partitions, checked); the
 * caller fails the writer on an error (shuf_writer_ops). */
static ember_status add(shuf_writer *h, uint32_t p, const uint8_t *rec,
                        size_t len, ember_error *err)
{
    sort_writer *w = (sort_writer *)h;
    shuf_mgr *m = h->m;
    const size_t per = 2 * sizeof(sort_entry); /* entry and sort scratch */
    ember_status s;
    if (w->mode == MODE_BYPASS)
        return shuf_parts_add(&w->parts, p, rec, len, err);
    if (len > SHUF_CHUNK_MAX - 16)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: a record of %zu bytes is over the limit "
                            "of %u bytes",
                            SORT_LABEL, len, SHUF_CHUNK_MAX - 16);
    if (w->n_ents && w->buffered + len + per > m->memory_bytes) {
        s = spill(w, err);
        if (s != EMBER_OK)
            return s;
    }
    if (w->n_ents == w->cap_ents) {
        size_t cap = w->cap_ents ? w->cap_ents * 2 : 1024;
        sort_entry *e = m->host->realloc(w->ents, cap * sizeof *e);
        if (!e)
            return shuf_oom(m, err, "buffering records");
        w->ents = e;
        w->cap_ents = cap;
    }
    uint8_t *dst = arena_take(w, len);
    if (!dst)
        return shuf_oom(m, err, "buffering records");
    if (len)
        memcpy(dst, rec, len);
    sort_entry *e = &w->ents[w->n_ents++];
    e->rec = dst;
    e->len = (uint32_t)len;
    e->part = p;
    e->prefix = w->mode == MODE_SORT ? sort_prefix(dst, len, 0) : 0;
    w->buffered += len + per;
    return EMBER_OK;
}

static const shuf_writer_ops sort_writer_ops = {add, discard};

/* ---- merging at commit ---- */

/* A cursor over one run's block (a spill) or the sorted buffer. */
typedef struct run_cur {
    int fd; /* -1 for the buffer */
    const char *path;
    uint64_t off, end;
    ember_buf stored, raw;
    const uint8_t *p, *pend;
    size_t mi, mend; /* the buffer's entries */
    const uint8_t *rec;
    size_t len;
    uint64_t key; /* sort_prefix of rec: most comparisons end here */
} run_cur;

/* Moves c to its next record: EMBER_OK, EMBER_END, or an error. */
static ember_status cur_next(sort_writer *w, run_cur *c, ember_error *err)
{
    if (c->fd < 0) {
        if (c->mi >= c->mend)
            return EMBER_END;
        c->rec = w->ents[c->mi].rec;
        c->len = w->ents[c->mi].len;
        c->key = sort_prefix(c->rec, c->len, 0);
        c->mi++;
        return EMBER_OK;
    }
    while (c->p == c->pend) {
        uint64_t at = c->off;
        ember_status s = shuf_chunk_read(w->head.m, c->fd, c->path, &c->off,
                                         c->end, &c->stored, &c->raw, err);
        if (s != EMBER_OK)
            return s;
        if (c->raw.len == 0)
            return ember_errorf(err, EMBER_EINVAL,
                                "%s: corrupt %s at offset %llu: empty chunk",
                                SORT_LABEL, c->path, (unsigned long long)at);
        c->p = c->raw.data;
        c->pend = c->raw.data + c->raw.len;
    }
    uint64_t len;
    if (ember_uvarint_get(&c->p, c->pend, &len) != EMBER_OK ||
        len > (uint64_t)(c->pend - c->p))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: corrupt %s: bad record framing in a chunk "
                            "before offset %llu",
                            SORT_LABEL, c->path, (unsigned long long)c->off);
    c->rec = c->p;
    c->len = (size_t)len;
    c->key = sort_prefix(c->rec, c->len, 0);
    c->p += len;
    return EMBER_OK;
}

static int cur_less(const run_cur *a, const run_cur *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return ember_rec_compare(a->rec, a->len, b->rec, b->len) < 0;
}

/* Restores the heap property below slot i of heap[0..n). */
static void sift_down(run_cur **heap, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < n && cur_less(heap[l], heap[min]))
            min = l;
        if (r < n && cur_less(heap[r], heap[min]))
            min = r;
        if (min == i)
            return;
        run_cur *t = heap[i];
        heap[i] = heap[min];
        heap[min] = t;
        i = min;
    }
}

/* Merges partition p of every run and the buffer into f, in byte order. */
static ember_status merge_partition(sort_writer *w, run_cur *curs,
                                    run_cur **heap, shuf_file *f, uint32_t p,
                                    uint64_t *count, ember_error *err)
{
    size_t k = w->n_runs + 1, h = 0;
    ember_status s;
    for (size_t i = 0; i < k; i++) {
        run_cur *c = &curs[i];
        if (i < w->n_runs) {
            c->off = w->runs[i].offsets[p];
            c->end = w->runs[i].offsets[p + 1];
            c->p = c->pend = NULL;
        } else {
            c->mi = w->starts[p];
            c->mend = w->starts[p + 1];
        }
        s = cur_next(w, c, err);
        if (s == EMBER_OK)
            heap[h++] = c;
        else if (s != EMBER_END)
            return s;
    }
    for (size_t i = h / 2; i-- > 0;)
        sift_down(heap, h, i);
    while (h > 0) {
        run_cur *c = heap[0];
        s = shuf_chunk_add(&w->head.enc, &w->chunk, c->rec, c->len, shuf_sink_file,
                           f, err);
        if (s != EMBER_OK)
            return s;
        (*count)++;
        s = cur_next(w, c, err);
        if (s == EMBER_END)
            heap[0] = heap[--h];
        else if (s != EMBER_OK)
            return s;
        sift_down(heap, h, 0);
    }
    return EMBER_OK;
}

/* Writes the data file of the sort paths into f; fills offsets, lengths
 * and counts. */
static ember_status write_sorted(sort_writer *w, shuf_file *f,
                                 uint64_t *offsets, uint64_t *lengths,
                                 uint64_t *counts, ember_error *err)
{
    shuf_mgr *m = w->head.m;
    uint32_t n = w->head.o.num_partitions;
    size_t k = w->n_runs + 1;
    run_cur *curs = NULL;
    run_cur **heap = NULL;
    ember_status s = sort_buffer(w, err);
    if (s != EMBER_OK)
        return s;
    if (w->n_runs) {
        curs = shuf_calloc(m, k, sizeof *curs);
        heap = shuf_calloc(m, k, sizeof *heap);
        if (!curs || !heap) {
            s = shuf_oom(m, err, "merging spills");
            goto done;
        }
        for (size_t i = 0; i < k; i++) {
            curs[i].fd = -1;
            curs[i].stored = shuf_buf(m);
            curs[i].raw = shuf_buf(m);
        }
        for (size_t i = 0; i < w->n_runs; i++) {
            curs[i].path = w->runs[i].path;
            curs[i].fd = open(w->runs[i].path, O_RDONLY | O_CLOEXEC);
            if (curs[i].fd < 0) {
                s = shuf_errno(m, err, errno, "reading spill",
                               w->runs[i].path);
                goto done;
            }
        }
    }
    for (uint32_t p = 0; s == EMBER_OK && p < n; p++) {
        offsets[p] = f->pos;
        counts[p] = 0;
        if (w->n_runs == 0) {
            s = emit_buffer(w, f, p, &counts[p], err);
        } else if (w->mode == MODE_SORT) {
            s = merge_partition(w, curs, heap, f, p, &counts[p], err);
        } else {
            /* Order within the block is free: copy the runs' stored
             * chunks as they are, then add the buffer's records. */
            for (size_t i = 0; s == EMBER_OK && i < w->n_runs; i++) {
                const sort_run *r = &w->runs[i];
                s = shuf_file_copy_range(m, f, curs[i].fd, r->path,
                                         r->offsets[p],
                                         r->offsets[p + 1] - r->offsets[p],
                                         &w->copy, err);
                counts[p] += r->counts[p];
            }
            if (s == EMBER_OK)
                s = emit_buffer(w, f, p, &counts[p], err);
        }
        if (s == EMBER_OK)
            s = shuf_chunk_flush(&w->head.enc, &w->chunk, shuf_sink_file, f, err);
        lengths[p] = f->pos - offsets[p];
    }
done:
    for (size_t i = 0; curs && i < k; i++) {
        if (curs[i].fd >= 0)
            (void)close(curs[i].fd);
        ember_buf_release(&curs[i].stored);
        ember_buf_release(&curs[i].raw);
    }
    shuf_free(m, curs);
    shuf_free(m, heap);
    return s;
}

/* Writes the data file of the bypass path: the partitions one after the
 * other, from memory when they all fit ember.shuffle.memory (written
 * once), else from their files. */
static ember_status write_bypass(sort_writer *w, shuf_file *f,
                                 uint64_t *offsets, uint64_t *lengths,
                                 uint64_t *counts, ember_error *err)
{
    shuf_mgr *m = w->head.m;
    ember_status s = shuf_parts_finish(&w->parts, lengths, counts, err);
    int held = shuf_parts_all_held(&w->parts);
    for (uint32_t p = 0; s == EMBER_OK && p < w->head.o.num_partitions; p++) {
        offsets[p] = f->pos;
        if (held) {
            s = shuf_parts_write_held(&w->parts, p, f, err);
            continue;
        }
        if (lengths[p] == 0)
            continue;
        char *path = shuf_parts_path(&w->parts, p);
        if (!path)
            return shuf_oom(m, err, "concatenating partitions");
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            s = shuf_errno(m, err, errno, "reading", path);
        } else {
            s = shuf_file_copy_range(m, f, fd, path, 0, lengths[p], &w->copy,
                                     err);
            (void)close(fd);
        }
        shuf_free(m, path);
    }
    return s;
}

/* ---- publishing and deleting outputs ---- */

/*
 * Makes the temp data and index files the committed output unless an
 * attempt committed first; then fills lengths/counts with the winner's.
 */
static ember_status publish(sort_writer *w, const char *tdata,
                            const char *tindex, uint64_t *lengths,
                            uint64_t *counts, ember_error *err)
{
    shuf_mgr *m = w->head.m;
    uint32_t n = w->head.o.num_partitions;
    char *data = shuf_strf(m, "%s.data", w->head.base);
    char *index = shuf_strf(m, "%s.index", w->head.base);
    uint64_t *wl = shuf_calloc(m, n, sizeof *wl);
    uint64_t *wc = shuf_calloc(m, n, sizeof *wc);
    ember_status s = EMBER_OK;
    ember_error lerr;
    if (!data || !index || !wl || !wc) {
        s = shuf_oom(m, err, "committing");
        goto done;
    }
    pthread_mutex_lock(&m->lock);
    s = shuf_index_load(m, index, n, wl, wc, &lerr);
    if (s == EMBER_OK) {
        /* An earlier attempt won; ours goes. */
        memcpy(lengths, wl, n * sizeof *wl);
        memcpy(counts, wc, n * sizeof *wc);
        (void)unlink(tdata);
        (void)unlink(tindex);
    } else if (s == EMBER_EINVAL || s == EMBER_ENOTFOUND) {
        if (s == EMBER_EINVAL) {
            /* A broken earlier output must not block a fresh one. */
            (void)unlink(index);
            (void)unlink(data);
        }
        s = EMBER_OK;
        if (rename(tdata, data) != 0)
            s = shuf_errno(m, err, errno, "committing", data);
        else if (rename(tindex, index) != 0)
            s = shuf_errno(m, err, errno, "committing", index);
    } else {
        *err = lerr;
    }
    pthread_mutex_unlock(&m->lock);
done:
    shuf_free(m, wl);
    shuf_free(m, wc);
    shuf_free(m, data);
    shuf_free(m, index);
    return s;
}

/* Deletes a corrupt output, unless it was replaced since the reader
 * opened the index (dev/ino differ). */
static void delete_output(shuf_mgr *m, const char *index, const char *data,
                          const struct stat *seen)
{
    struct stat st;
    pthread_mutex_lock(&m->lock);
    if (stat(index, &st) == 0 && st.st_dev == seen->st_dev &&
        st.st_ino == seen->st_ino) {
        (void)unlink(index);
        (void)unlink(data);
    }
    pthread_mutex_unlock(&m->lock);
    shuf_mgr_count(m, m->ctr_corrupt, 1);
}

/* ---- the vtable ---- */

static ember_status sort_open(const ember_host_api *host,
                              const ember_shuffle_conf *conf, void **state,
                              ember_error *err)
{
    return shuf_vt_open(SORT_LABEL, host, conf, state, err);
}

static void sort_close(void *state)
{
    shuf_mgr_close(state);
}

static ember_status sort_writer_open(void *state,
                                     const ember_shuffle_writer_opts *opts,
                                     void **out, ember_error *err)
{
    shuf_writer *h;
    ember_status s = shuf_writer_open(SORT_LABEL, state, out,
                                      sizeof(sort_writer), &sort_writer_ops,
                                      opts, &h, err);
    if (s != EMBER_OK)
        return s;
    sort_writer *w = (sort_writer *)h;
    shuf_mgr *m = h->m;
    w->copy = shuf_buf(m);
    if (h->o.flags & EMBER_SHUFFLE_SORTED)
        w->mode = MODE_SORT;
    else if (h->o.num_partitions <= m->bypass_threshold)
        w->mode = MODE_BYPASS;
    else
        w->mode = MODE_PART;
    w->chunk.cap = m->chunk_bytes;
    if (w->mode == MODE_BYPASS) {
        s = shuf_parts_init(&w->parts, m, &h->enc, h->o.num_partitions,
                            shuf_strf(m, "%s.a%u.part", h->base,
                                      h->o.attempt),
                            ".tmp", "writing", m->memory_bytes, err);
        if (s != EMBER_OK)
            goto done;
    } else {
        w->starts = shuf_calloc(m, (size_t)h->o.num_partitions + 1,
                                sizeof *w->starts);
        if (!w->starts) {
            s = shuf_oom(m, err, "opening a writer");
            goto done;
        }
        w->blk_size = (size_t)(m->memory_bytes / 8);
        if (w->blk_size < ARENA_MIN)
            w->blk_size = ARENA_MIN;
        if (w->blk_size > ARENA_MAX)
            w->blk_size = ARENA_MAX;
    }
    *out = w;
    w = NULL;
done:
    writer_free(w);
    return s;
}

static ember_status sort_write(void *writer, uint32_t partition,
                               const ember_batch *records, ember_error *err)
{
    return shuf_writer_write(SORT_LABEL, writer, partition, records, err);
}

static ember_status sort_write_tagged(void *writer, const ember_batch *records,
                                      const uint32_t *partitions,
                                      ember_error *err)
{
    return shuf_writer_write_tagged(SORT_LABEL, writer, records, partitions,
                                    err);
}

static ember_status sort_writer_commit(void *writer, uint64_t *lengths,
                                       uint64_t *counts, ember_error *err)
{
    sort_writer *w = writer;
    uint64_t *offsets = NULL, *cnt = NULL;
    shuf_file f = SHUF_FILE_INIT, x = SHUF_FILE_INIT;
    ember_status s;
    if (!w)
        return ember_errorf(err, EMBER_EINVAL, "%s: commit: no writer",
                            SORT_LABEL);
    shuf_mgr *m = w->head.m;
    uint32_t n = w->head.o.num_partitions;
    s = shuf_writer_commit_begin(&w->head, lengths, counts, &cnt, err);
    if (s != EMBER_OK)
        goto done;
    offsets = shuf_calloc(m, n, sizeof *offsets);
    if (!offsets) {
        s = shuf_oom(m, err, "committing");
        goto done;
    }
    s = shuf_file_create(m, &f, tmp_path(w, "data"), (size_t)m->file_buffer,
                         "writing", err);
    if (s == EMBER_OK)
        s = w->mode == MODE_BYPASS
                ? write_bypass(w, &f, offsets, lengths, cnt, err)
                : write_sorted(w, &f, offsets, lengths, cnt, err);
    if (s == EMBER_OK)
        s = shuf_file_finish(m, &f, err);
    if (s == EMBER_OK)
        s = shuf_index_write(m, &x, tmp_path(w, "index"), n, offsets,
                             lengths, cnt, f.pos, err);
    if (s == EMBER_OK) {
        /* The spills are merged: drop them before publishing. */
        for (size_t i = 0; i < w->n_runs; i++)
            (void)unlink(w->runs[i].path);
        shuf_parts_remove(&w->parts);
        s = publish(w, f.path, x.path, lengths, cnt, err);
    }
done:
    if (s != EMBER_OK)
        remove_temps(w);
    shuf_file_release(m, &f);
    shuf_file_release(m, &x);
    shuf_free(m, offsets);
    if (cnt != counts)
        shuf_free(m, cnt);
    writer_free(w);
    return s;
}

static void sort_writer_abort(void *writer)
{
    sort_writer *w = writer;
    if (!w)
        return;
    remove_temps(w);
    writer_free(w);
}

static ember_status sort_read_block(void *state, uint64_t shuffle_id,
                                    uint32_t map_id, uint32_t partition,
                                    ember_buf *out, uint64_t *count,
                                    ember_error *err)
{
    shuf_mgr *m = state;
    char *index = NULL, *data = NULL;
    int dfd = -1;
    uint64_t size;
    shuf_index_ref x = SHUF_INDEX_REF_INIT;
    ember_status s = EMBER_OK;
    if (!m || !out || !count)
        return ember_errorf(err, EMBER_EINVAL, "%s: read_block: no state",
                            SORT_LABEL);
    size_t mark = out->len;
    index = shuf_strf(m, "%s/shuffle_%llu/map_%u.index", m->dir,
                      (unsigned long long)shuffle_id, map_id);
    data = shuf_strf(m, "%s/shuffle_%llu/map_%u.data", m->dir,
                     (unsigned long long)shuffle_id, map_id);
    if (!index || !data) {
        s = shuf_oom(m, err, "reading a block");
        goto done;
    }
    s = shuf_index_open(m, index, shuffle_id, map_id, partition, &x, err);
    if (s != EMBER_OK)
        goto done;
    dfd = open(data, O_RDONLY | O_CLOEXEC);
    if (dfd < 0) {
        /* An index without its data: nothing usable is there. */
        s = shuf_errno(m, err, errno, "no data for its index: opening",
                       data);
        if (s == EMBER_ENOTFOUND) {
            delete_output(m, index, data, &x.st);
            x.corrupt = 0;
        }
        goto done;
    }
    s = shuf_data_size(m, dfd, data, x.h.data_len, &size, err);
    if (s == EMBER_OK)
        s = shuf_read_block_at(m, dfd, data, size, &x.h, &x.e, out, count,
                               err);
done:
    if (s != EMBER_OK)
        out->len = mark;
    if (s == EMBER_EINVAL && x.corrupt)
        delete_output(m, index, data, &x.st);
    if (x.fd >= 0)
        (void)close(x.fd);
    if (dfd >= 0)
        (void)close(dfd);
    shuf_free(m, index);
    shuf_free(m, data);
    return s;
}

static ember_status sort_remove_shuffle(void *state, uint64_t shuffle_id,
                                        ember_error *err)
{
    return shuf_vt_remove_shuffle(SORT_LABEL, state, shuffle_id, err);
}

static const ember_shuffle_vtable sort_vtable = {
    .flags = EMBER_SHUFFLE_CAN_SORT,
    .open = sort_open,
    .close = sort_close,
    .writer_open = sort_writer_open,
    .write = sort_write,
    .write_tagged = sort_write_tagged,
    .writer_commit = sort_writer_commit,
    .writer_abort = sort_writer_abort,
    .read_block = sort_read_block,
    .remove_shuffle = sort_remove_shuffle,
};

static const ember_component sort_components[] = {
    EMBER_SHUFFLE_COMPONENT("manager",
                            "sort-based shuffle: one sorted data file and "
                            "one index per map task, spills and merges",
                            &sort_vtable),
};

EMBER_PLUGIN(sort, "0.1.0", "Sort-based shuffle manager", "Apache-2.0",
             sort_components, NULL, NULL);
