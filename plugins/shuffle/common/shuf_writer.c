/*
 * shuf_writer.c — what the writers of both shuffle managers share: the
 * head of a writer (opened, failed and freed alike), the write /
 * write_tagged entry points, which check their arguments and walk the
 * batch handing each record to the manager's own add, and the checks
 * that start a commit.
 */
#include "shuffle_common.h"

ember_status shuf_writer_open(const char *label, void *state, void **out,
                              size_t size, const shuf_writer_ops *ops,
                              const ember_shuffle_writer_opts *opts,
                              shuf_writer **wp, ember_error *err)
{
    shuf_mgr *m = state;
    shuf_writer *w = NULL;
    char *sdir = NULL;
    ember_status s;
    *wp = NULL;
    if (!m || !out)
        return ember_errorf(err, EMBER_EINVAL, "%s: writer_open: no state",
                            label);
    *out = NULL;
    w = shuf_calloc(m, 1, size);
    if (!w)
        return shuf_oom(m, err, "opening a writer");
    w->m = m;
    w->ops = ops;
    shuf_enc_init(&w->enc, m);
    s = shuf_opts_copy(m, opts, &w->o, err);
    if (s != EMBER_OK)
        goto done;
    sdir = shuf_shuffle_dir(m, w->o.shuffle_id);
    w->base = shuf_strf(m, "%s/shuffle_%llu/map_%u", m->dir,
                        (unsigned long long)w->o.shuffle_id, w->o.map_id);
    if (!sdir || !w->base) {
        s = shuf_oom(m, err, "opening a writer");
        goto done;
    }
    s = shuf_mkdir(m, sdir, err);
    if (s != EMBER_OK)
        goto done;
    *wp = w;
    w = NULL;
done:
    shuf_writer_free(w);
    shuf_free(m, sdir);
    return s;
}

void shuf_writer_free(shuf_writer *w)
{
    if (!w)
        return;
    shuf_enc_free(&w->enc);
    shuf_free(w->m, w->base);
    shuf_free(w->m, w);
}

ember_status shuf_writer_fail(shuf_writer *w, ember_status s)
{
    if (s != EMBER_OK && w->failed == EMBER_OK) {
        w->failed = s;
        w->ops->discard(w);
    }
    return s;
}

/* Refuses use of a writer that failed before. */
static ember_status usable(const shuf_writer *w, ember_error *err)
{
    if (w->failed != EMBER_OK)
        return ember_errorf(err, w->failed,
                            "%s: shuffle %llu map %u: the writer failed "
                            "earlier",
                            w->m->label, (unsigned long long)w->o.shuffle_id,
                            w->o.map_id);
    return EMBER_OK;
}

ember_status shuf_writer_write(const char *label, shuf_writer *w,
                               uint32_t partition, const ember_batch *records,
                               ember_error *err)
{
    ember_status s;
    if (!w || !records)
        return ember_errorf(err, EMBER_EINVAL, "%s: write: no writer",
                            label);
    if ((s = usable(w, err)) != EMBER_OK)
        return s;
    if (partition >= w->o.num_partitions)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: write: partition %u out of range (%u "
                            "partitions)",
                            label, partition, w->o.num_partitions);
    ember_batch_cursor c = ember_batch_cursor_of(records);
    const uint8_t *rec;
    size_t len;
    uint64_t i = 0;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        s = w->ops->add(w, partition, rec, len, err);
        if (s != EMBER_OK)
            return shuf_writer_fail(w, s);
        i++;
    }
    if (s != EMBER_END)
        return shuf_writer_fail(
            w, ember_errorf(err, EMBER_EINVAL,
                            "%s: write: malformed batch at record %llu",
                            label, (unsigned long long)i));
    return EMBER_OK;
}

ember_status shuf_writer_write_tagged(const char *label, shuf_writer *w,
                                      const ember_batch *records,
                                      const uint32_t *partitions,
                                      ember_error *err)
{
    ember_status s;
    if (!w || !records || (!partitions && records->count))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: write_tagged: no writer or partitions",
                            label);
    if ((s = usable(w, err)) != EMBER_OK)
        return s;
    for (uint64_t i = 0; i < records->count; i++)
        if (partitions[i] >= w->o.num_partitions)
            return ember_errorf(err, EMBER_EINVAL,
                                "%s: write_tagged: record %llu: partition "
                                "%u out of range (%u partitions)",
                                label, (unsigned long long)i, partitions[i],
                                w->o.num_partitions);
    ember_batch_cursor c = ember_batch_cursor_of(records);
    for (uint64_t i = 0; i < records->count; i++) {
        const uint8_t *rec;
        size_t len;
        if (ember_batch_next(&c, &rec, &len) != EMBER_OK)
            return shuf_writer_fail(
                w, ember_errorf(err, EMBER_EINVAL,
                                "%s: write_tagged: malformed batch at record "
                                "%llu of %llu",
                                label, (unsigned long long)i,
                                (unsigned long long)records->count));
        s = w->ops->add(w, partitions[i], rec, len, err);
        if (s != EMBER_OK)
            return shuf_writer_fail(w, s);
    }
    if (c.p != c.end)
        return shuf_writer_fail(
            w, ember_errorf(err, EMBER_EINVAL,
                            "%s: write_tagged: batch holds more than its "
                            "%llu records",
                            label, (unsigned long long)records->count));
    return EMBER_OK;
}

ember_status shuf_writer_commit_begin(shuf_writer *w, const uint64_t *lengths,
                                      uint64_t *counts, uint64_t **cnt,
                                      ember_error *err)
{
    ember_status s;
    *cnt = NULL;
    if ((s = usable(w, err)) != EMBER_OK)
        return s;
    if (!lengths)
        return ember_errorf(err, EMBER_EINVAL, "%s: commit: no lengths array",
                            w->m->label);
    *cnt = counts ? counts
                  : shuf_calloc(w->m, w->o.num_partitions, sizeof **cnt);
    if (!*cnt)
        return shuf_oom(w->m, err, "committing");
    return EMBER_OK;
}
