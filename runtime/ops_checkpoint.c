/*
 * runtime/ops_checkpoint.c — checkpoint files (docs/engine.md
 * "Checkpoints", SEMANTICS S22): the "checkpoint" action that writes a
 * partition's records to DIR/part-NNNNN, and the checkpoint_read operator
 * that reads them back (or, for a local checkpoint, explains that the
 * block it should have found is gone).
 *
 * A file is a 16-byte header, chunks, and an end chunk:
 *
 *   header  "EMBERCKP" | u32 version (1) | u32 partition
 *   chunk   u64 len | u64 count | u32 crc32c(payload) | u32 crc32c(the
 *           20 bytes before) | payload: `count` records in the batch
 *           format (ember/batch.h), len > 0
 *   end     a chunk header with len 0, count = the file's records, and
 *           payload crc 0; nothing follows
 *
 * all little-endian. One chunk per batch the pipeline produced, so both
 * sides work a batch at a time. An attempt writes DIR/.part-NNNNN-XXXXXX
 * and renames it to DIR/part-NNNNN only once the kernel's commit arbiter
 * let it commit; a failed or refused attempt removes its file, so a
 * partition's file is whole or absent.
 */
#include "runtime/ops_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/record.h"
#include "runtime/action.h"

#define CKPT_MAGIC "EMBERCKP"
#define CKPT_VERSION 1u
#define CKPT_HEADER 16u
#define CKPT_CHUNK 24u
/* A chunk longer than this is taken for corruption (batches are far
 * smaller; a single record may not exceed it either). */
#define CKPT_MAX_CHUNK ((uint64_t)1 << 32)

/* ---- CRC-32C (Castagnoli), reflected, table-driven ---------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c(const uint8_t *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A chunk header for len bytes of count records with payload crc. */
static void chunk_header(uint8_t h[CKPT_CHUNK], uint64_t len, uint64_t count,
                         uint32_t crc)
{
    put_le(h, len, 8);
    put_le(h + 8, count, 8);
    put_le(h + 16, crc, 4);
    put_le(h + 20, crc32c(h, 20), 4);
}

/* ---- reading ------------------------------------------------------------ */

typedef struct ckpt_reader {
    int fd;
    char path[4096];
    uint64_t records; /* read so far */
    int ended;
} ckpt_reader;

/* Reads up to n bytes (fewer only at the end of the file); -1 on error. */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* "checkpoint file 'PATH' is corrupt: WHY" as the task's failure. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ember_status corrupt(const em_opnode *o, ember_error *err,
                            const char *fmt, ...)
{
    const ckpt_reader *r = o->extra;
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return em_op_fail(o, err, EMBER_EIO, "checkpoint file '%s' is corrupt: "
                      "%s", r->path, why);
}

static ember_status reader_next(em_opnode *o, ember_batch *b,
                                ember_error *err)
{
    ckpt_reader *r = o->extra;
    uint8_t h[CKPT_CHUNK];
    ember_status s = em_op_check_cancel(o, err);
    if (s != EMBER_OK)
        return s;
    if (r->ended)
        return EMBER_END;
    ssize_t k = read_full(r->fd, h, sizeof h);
    if (k < 0)
        return em_op_fail(o, err, EMBER_EIO, "cannot read checkpoint file "
                          "'%s': %s", r->path, strerror(errno));
    if ((size_t)k < sizeof h)
        return corrupt(o, err, "it ends after %" PRIu64 " records, without "
                       "its end marker", r->records);
    if (get_le(h + 20, 4) != crc32c(h, 20))
        return corrupt(o, err, "a chunk header's checksum does not match "
                       "(after %" PRIu64 " records)", r->records);
    uint64_t len = get_le(h, 8), count = get_le(h + 8, 8);
    if (len == 0) {
        uint8_t extra;
        if (count != r->records)
            return corrupt(o, err, "it holds %" PRIu64 " records but its end "
                           "marker says %" PRIu64, r->records, count);
        ssize_t more = read_full(r->fd, &extra, 1);
        if (more < 0)
            return em_op_fail(o, err, EMBER_EIO, "cannot read checkpoint "
                              "file '%s': %s", r->path, strerror(errno));
        if (more != 0)
            return corrupt(o, err, "bytes follow its end marker");
        r->ended = 1;
        return EMBER_END;
    }
    if (len > CKPT_MAX_CHUNK || count == 0 || count > len)
        return corrupt(o, err, "a chunk of %" PRIu64 " bytes and %" PRIu64
                       " records is impossible", len, count);
    o->buf.len = 0;
    if ((s = ember_buf_reserve(&o->buf, (size_t)len)) != EMBER_OK)
        return em_op_fail(o, err, s, "out of memory");
    k = read_full(r->fd, o->buf.data, (size_t)len);
    if (k < 0)
        return em_op_fail(o, err, EMBER_EIO, "cannot read checkpoint file "
                          "'%s': %s", r->path, strerror(errno));
    if ((uint64_t)k < len)
        return corrupt(o, err, "it ends inside a chunk (after %" PRIu64
                       " records)", r->records);
    o->buf.len = (size_t)len;
    if (crc32c(o->buf.data, o->buf.len) != (uint32_t)get_le(h + 16, 4))
        return corrupt(o, err, "a chunk's checksum does not match (after %"
                       PRIu64 " records)", r->records);
    /* the checksum vouches for the bytes; the framing is checked all the
     * same, as downstream operators trust it */
    ember_batch all = {o->buf.data, o->buf.len, count};
    ember_batch_cursor c = ember_batch_cursor_of(&all);
    const uint8_t *rec;
    size_t rl;
    uint64_t n = 0;
    while ((s = ember_batch_next(&c, &rec, &rl)) == EMBER_OK)
        n++;
    if (s != EMBER_END || n != count)
        return corrupt(o, err, "a chunk's records are malformed (after %"
                       PRIu64 " records)", r->records);
    r->records += count;
    o->env->records_in += count;
    *b = all;
    return EMBER_OK;
}

static void reader_close(em_opnode *o)
{
    ckpt_reader *r = o->extra;
    if (r && r->fd >= 0)
        close(r->fd);
    free(r);
    o->extra = NULL;
}

/* Opens the partition's file and checks its header. */
static ember_status reader_init(em_opnode *o, const char *dir,
                                ember_error *err)
{
    ckpt_reader *r = calloc(1, sizeof *r);
    if (!r)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    r->fd = -1;
    o->extra = r;
    o->close = reader_close;
    int n = snprintf(r->path, sizeof r->path, "%s/part-%05" PRIu32, dir,
                     o->partition);
    if (n < 0 || (size_t)n >= sizeof r->path)
        return em_op_fail(o, err, EMBER_EINVAL, "checkpoint directory '%s' "
                          "is too long", dir);
    r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return em_op_fail(o, err, EMBER_EIO, "cannot open checkpoint file "
                          "'%s': %s", r->path, strerror(errno));
    uint8_t h[CKPT_HEADER];
    ssize_t k = read_full(r->fd, h, sizeof h);
    if (k < 0)
        return em_op_fail(o, err, EMBER_EIO, "cannot read checkpoint file "
                          "'%s': %s", r->path, strerror(errno));
    if ((size_t)k < sizeof h || memcmp(h, CKPT_MAGIC, 8) != 0)
        return corrupt(o, err, "not a checkpoint file (bad header)");
    if (get_le(h + 8, 4) != CKPT_VERSION)
        return corrupt(o, err, "format version %" PRIu64 " (this build "
                       "reads %u)", get_le(h + 8, 4), CKPT_VERSION);
    if (get_le(h + 12, 4) != o->partition)
        return corrupt(o, err, "it holds partition %" PRIu64,
                       get_le(h + 12, 4));
    o->next = reader_next;
    return EMBER_OK;
}

ember_status em_op_init_checkpoint(em_opnode *o, ember_error *err)
{
    if (strcmp(o->node->op->name, "checkpoint_read") != 0)
        return EMBER_EUNSUPPORTED;
    if (o->args && json_is_true(json_object_get(o->args, "local")))
        /* reached only when the block manager lacks the block: a local
         * checkpoint has nothing else to read (Spark's
         * LocalCheckpointRDD.compute) */
        return ember_errorf(
            err, EMBER_ENOTFOUND,
            "Checkpoint block rdd_%" PRIu64 "_%" PRIu32 " not found! Either "
            "the executor that originally checkpointed this partition is no "
            "longer alive, or the original RDD is unpersisted. If this "
            "problem persists, you may consider using ember_checkpoint() "
            "instead, which is slower than local checkpointing but more "
            "fault-tolerant.", o->node->id, o->partition);
    const char *dir = o->args ? json_string_value(json_object_get(o->args,
                                                                  "dir"))
                              : NULL;
    if (!dir || !*dir)
        return em_op_fail(o, err, EMBER_EINVAL, "args.dir must name the "
                          "checkpoint directory");
    return reader_init(o, dir, err);
}

/* ---- writing ------------------------------------------------------------ */

static ember_status write_all(int fd, const uint8_t *p, size_t n,
                              const char *path, ember_error *err)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return ember_errorf(err, errno == ENOSPC ? EMBER_ENOSPC
                                                     : EMBER_EIO,
                                "cannot write checkpoint file '%s': %s", path,
                                k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return EMBER_OK;
}

ember_status em_action_checkpoint(em_task_env *env, em_pipe *pipe,
                                  const json_t *action, em_commit_ask_fn ask,
                                  void *ask_ctx, ember_buf *out,
                                  ember_error *err)
{
    const char *dir = json_string_value(json_object_get(action, "dir"));
    char tmp[4096], final[4096];
    int fd = -1;
    ember_status s = EMBER_OK;
    if (!dir || !*dir)
        return ember_errorf(err, EMBER_EINVAL,
                            "checkpoint: \"dir\" must name a directory");
    int a = snprintf(final, sizeof final, "%s/part-%05" PRIu32, dir,
                     env->partition);
    int b = snprintf(tmp, sizeof tmp, "%s/.part-%05" PRIu32 "-XXXXXX", dir,
                     env->partition);
    if (a < 0 || b < 0 || (size_t)a >= sizeof final ||
        (size_t)b >= sizeof tmp)
        return ember_errorf(err, EMBER_EINVAL, "checkpoint: directory '%s' "
                            "is too long", dir);
    /* the driver made it; an executor on another host may see it first */
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ember_errorf(err, EMBER_EIO, "checkpoint: cannot create '%s': "
                            "%s", dir, strerror(errno));
    fd = mkstemp(tmp);
    if (fd < 0)
        return ember_errorf(err, EMBER_EIO, "checkpoint: cannot create a "
                            "file in '%s': %s", dir, strerror(errno));
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    uint8_t h[CKPT_CHUNK];
    memcpy(h, CKPT_MAGIC, 8);
    put_le(h + 8, CKPT_VERSION, 4);
    put_le(h + 12, env->partition, 4);
    s = write_all(fd, h, CKPT_HEADER, tmp, err);
    uint64_t total = 0;
    ember_batch batch;
    while (s == EMBER_OK &&
           (s = em_pipe_next(pipe, &batch, err)) == EMBER_OK) {
        if (batch.len == 0)
            continue; /* a length of 0 is the end marker */
        chunk_header(h, batch.len, batch.count,
                     crc32c(batch.data, batch.len));
        s = write_all(fd, h, CKPT_CHUNK, tmp, err);
        if (s == EMBER_OK)
            s = write_all(fd, batch.data, batch.len, tmp, err);
        total += batch.count;
    }
    if (s == EMBER_END) {
        chunk_header(h, 0, total, 0);
        s = write_all(fd, h, CKPT_CHUNK, tmp, err);
    }
    if (s == EMBER_OK) {
        int rc = close(fd);
        fd = -1;
        if (rc != 0)
            s = ember_errorf(err, EMBER_EIO, "cannot write checkpoint file "
                             "'%s': %s", tmp, strerror(errno));
    }
    if (s == EMBER_OK) {
        /* one attempt per partition commits (the kernel's arbiter) */
        int allowed = ask ? ask(ask_ctx) : 1;
        if (allowed < 0)
            s = ember_errorf(err, (ember_status)allowed, "checkpoint "
                             "partition %" PRIu32 ": could not reach the "
                             "commit arbiter", env->partition);
        else if (allowed == 0)
            s = ember_errorf(err, EMBER_ECANCELED, "checkpoint partition %"
                             PRIu32 ": another attempt committed this "
                             "partition", env->partition);
    }
    if (s == EMBER_OK && rename(tmp, final) != 0)
        s = ember_errorf(err, EMBER_EIO, "checkpoint: cannot rename '%s' to "
                         "'%s': %s", tmp, final, strerror(errno));
    if (s != EMBER_OK) {
        if (fd >= 0)
            close(fd);
        (void)unlink(tmp);
        return s;
    }
    uint8_t rec[9];
    ember_buf rb = ember_buf_fixed(rec, sizeof rec);
    ember_rec_put_int(&rb, (int64_t)total);
    return em_result_put(out, rec, rb.len);
}
