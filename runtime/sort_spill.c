/* runtime/sort_spill.c — see sort_spill.h. */
#include "runtime/sort_spill.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/batch.h"
#include "runtime/recval.h"

/* stdio buffer of each run file, writing and reading */
#define RUN_BUFFER ((size_t)1 << 20)

typedef struct run {
    char *path;
    FILE *f;
    char *iobuf;
    uint8_t *rec; /* the head record */
    size_t len, cap;
    em_keyref key;
} run;

struct em_sortspill {
    char dir[PATH_MAX];
    int descending;
    run *runs;
    size_t n, cap;
    int merging;
    size_t *heap; /* indexes of runs with a head, heap-ordered */
    size_t nheap;
};

static _Atomic uint64_t run_seq;

ember_status em_sortspill_open(em_sortspill **out, const char *dir,
                               int descending, ember_error *err)
{
    *out = NULL;
    em_sortspill *s = calloc(1, sizeof *s);
    if (!s)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    if ((size_t)snprintf(s->dir, sizeof s->dir, "%s", dir) >= sizeof s->dir) {
        free(s);
        return ember_errorf(err, EMBER_EINVAL, "spill directory too long");
    }
    s->descending = descending;
    *out = s;
    return EMBER_OK;
}

size_t em_sortspill_runs(const em_sortspill *s)
{
    return s->n;
}

ember_status em_sortspill_add_run(em_sortspill *s, const em_keyref *refs,
                                  size_t n, ember_error *err)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        run *g = realloc(s->runs, cap * sizeof *g);
        if (!g)
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        s->runs = g;
        s->cap = cap;
    }
    run *r = &s->runs[s->n];
    memset(r, 0, sizeof *r);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/sortrun-%ld-%llu.tmp", s->dir,
             (long)getpid(),
             (unsigned long long)atomic_fetch_add(&run_seq, 1));
    r->path = strdup(path);
    if (!r->path)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    s->n++; /* from here on closed (and deleted) with the others */
    FILE *f = fopen(path, "wb");
    if (!f)
        return ember_errorf(err, EMBER_EIO, "sort spill: cannot create %s: "
                            "%s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, RUN_BUFFER);
    int ok = 1;
    /* in the order of the merge: a descending merge takes runs written
     * from their largest key down */
    for (size_t j = 0; ok && j < n; j++) {
        const em_keyref *x = &refs[s->descending ? n - 1 - j : j];
        uint8_t lb[10];
        ember_buf l = ember_buf_fixed(lb, sizeof lb);
        ember_uvarint_put(&l, x->rlen);
        ok = fwrite(lb, 1, l.len, f) == l.len &&
             fwrite(x->rec, 1, x->rlen, f) == x->rlen;
    }
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok)
        return ember_errorf(err, saved == ENOSPC ? EMBER_ENOSPC : EMBER_EIO,
                            "sort spill: writing %s: %s%s", path,
                            strerror(saved),
                            saved == EFBIG ? " (over the process's file "
                                             "size limit, RLIMIT_FSIZE / "
                                             "ulimit -f)"
                                           : "");
    return EMBER_OK;
}

/* Reads r's next record into r->rec: 1, 0 at the end, -1 on error. */
static int read_head(run *r, ember_error *err)
{
    uint64_t len = 0;
    int c, shift = 0;
    while ((c = getc(r->f)) != EOF) {
        len |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
        shift += 7;
        if (shift > 63) {
            ember_errorf(err, EMBER_EINVAL, "sort spill: %s is corrupt",
                         r->path);
            return -1;
        }
    }
    if (c == EOF) {
        if (shift == 0 && !ferror(r->f))
            return 0;
        ember_errorf(err, EMBER_EIO, "sort spill: reading %s failed",
                     r->path);
        return -1;
    }
    if (len > r->cap) {
        uint8_t *g = realloc(r->rec, len);
        if (!g) {
            ember_errorf(err, EMBER_ENOMEM, "out of memory");
            return -1;
        }
        r->rec = g;
        r->cap = len;
    }
    if (fread(r->rec, 1, len, r->f) != len) {
        ember_errorf(err, EMBER_EIO, "sort spill: %s ends inside a record",
                     r->path);
        return -1;
    }
    r->len = len;
    ember_value k, v;
    if (em_rec_pair(r->rec, len, &k, &v) != EMBER_OK) {
        ember_errorf(err, EMBER_EINVAL, "sort spill: %s holds a record "
                     "that is not a pair", r->path);
        return -1;
    }
    r->key.key = k.enc;
    r->key.klen = (uint32_t)k.enc_len;
    return 1;
}

/* Whether run a's head comes before run b's. */
static int before(const em_sortspill *s, size_t a, size_t b)
{
    int c = em_key_compare(&s->runs[a].key, &s->runs[b].key);
    return s->descending ? c > 0 : c < 0;
}

static void sift_down(em_sortspill *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && before(s, s->heap[l], s->heap[m]))
            m = l;
        if (r < s->nheap && before(s, s->heap[r], s->heap[m]))
            m = r;
        if (m == i)
            return;
        size_t t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

static ember_status start_merge(em_sortspill *s, ember_error *err)
{
    s->merging = 1;
    s->heap = malloc((s->n ? s->n : 1) * sizeof *s->heap);
    if (!s->heap)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        run *r = &s->runs[i];
        r->f = fopen(r->path, "rb");
        if (!r->f)
            return ember_errorf(err, EMBER_EIO, "sort spill: cannot open "
                                "%s: %s", r->path, strerror(errno));
        r->iobuf = malloc(RUN_BUFFER);
        if (r->iobuf)
            setvbuf(r->f, r->iobuf, _IOFBF, RUN_BUFFER);
        int got = read_head(r, err);
        if (got < 0)
            return err ? err->code : EMBER_EIO;
        if (got)
            s->heap[s->nheap++] = i;
    }
    for (size_t i = s->nheap; i-- > 0;)
        sift_down(s, i);
    return EMBER_OK;
}

ember_status em_sortspill_next(em_sortspill *s, ember_buf *out,
                               size_t max_bytes, uint64_t *count,
                               ember_error *err)
{
    ember_status st;
    if (!s->merging && (st = start_merge(s, err)) != EMBER_OK)
        return st;
    if (s->nheap == 0)
        return EMBER_END;
    while (s->nheap > 0 && out->len < max_bytes) {
        run *r = &s->runs[s->heap[0]];
        if (ember_batch_append(out, r->rec, r->len) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        (*count)++;
        int got = read_head(r, err);
        if (got < 0)
            return err ? err->code : EMBER_EIO;
        if (!got)
            s->heap[0] = s->heap[--s->nheap];
        if (s->nheap > 0)
            sift_down(s, 0);
    }
    return EMBER_OK;
}

void em_sortspill_close(em_sortspill *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        run *r = &s->runs[i];
        if (r->f)
            fclose(r->f);
        if (r->path)
            unlink(r->path);
        free(r->path);
        free(r->iobuf);
        free(r->rec);
    }
    free(s->runs);
    free(s->heap);
    free(s);
}
