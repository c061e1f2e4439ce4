/*
 * msg.c — the kernel <-> executor messages: encoders, validating decoders
 * and batch cursors. The wire format is described in msg.h.
 */
#include "msg/msg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/varint.h"

static const uint8_t magic[4] = {'E', 'M', 'S', 'G'};

/* The smallest encoding of one batch entry, used to refuse a count that the
 * bytes left cannot possibly hold before looking at any entry. */
#define LAUNCH_ENTRY_MIN 7 /* six 1-byte varints and the speculative flag */
#define STATUS_ENTRY_MIN 6 /* task_id, state and four 1-byte varints */
#define KILL_ENTRY_MIN 1   /* one 1-byte varint */
#define BCAST_ENTRY_MIN 2  /* two 1-byte varints */

/* ---------------------------------------------------------------- names */

const char *em_msg_type_name(em_msg_type t)
{
    switch (t) {
    case EM_MSG_REGISTER: return "REGISTER";
    case EM_MSG_REGISTERED: return "REGISTERED";
    case EM_MSG_LAUNCH: return "LAUNCH";
    case EM_MSG_STATUS: return "STATUS";
    case EM_MSG_KILL: return "KILL";
    case EM_MSG_HEARTBEAT: return "HEARTBEAT";
    case EM_MSG_SHUTDOWN: return "SHUTDOWN";
    case EM_MSG_STAGE: return "STAGE";
    case EM_MSG_COMMIT_ASK: return "COMMIT_ASK";
    case EM_MSG_COMMIT_REPLY: return "COMMIT_REPLY";
    case EM_MSG_REMOVE_SHUFFLES: return "REMOVE_SHUFFLES";
    case EM_MSG_REMOVE_BLOCKS: return "REMOVE_BLOCKS";
    case EM_MSG_BCAST_FETCH: return "BCAST_FETCH";
    case EM_MSG_BCAST_CHUNK: return "BCAST_CHUNK";
    case EM_MSG_REMOVE_BROADCAST: return "REMOVE_BROADCAST";
    case EM_MSG_REPLICATE: return "REPLICATE";
    case EM_MSG_BLOCK_STORED: return "BLOCK_STORED";
    }
    return "UNKNOWN";
}

const char *em_task_state_name(uint8_t s)
{
    switch (s) {
    case EM_TASK_RUNNING: return "RUNNING";
    case EM_TASK_FINISHED: return "FINISHED";
    case EM_TASK_FAILED: return "FAILED";
    case EM_TASK_FETCH_FAILED: return "FETCH_FAILED";
    case EM_TASK_KILLED: return "KILLED";
    default: return "UNKNOWN";
    }
}

ember_status em_bytes_to_cstr(em_bytes b, char *buf, size_t cap)
{
    if (b.data == NULL && b.len > 0)
        return EMBER_EINVAL;
    if (buf == NULL || cap == 0)
        return EMBER_ENOSPC;
    if (b.len > cap - 1) {
        buf[0] = '\0';
        return EMBER_ENOSPC;
    }
    if (b.len)
        memcpy(buf, b.data, b.len);
    buf[b.len] = '\0';
    return EMBER_OK;
}

/* --------------------------------------------------------------- writing */

static ember_status put_varint(ember_buf *out, uint64_t v)
{
    uint8_t tmp[EM_VARINT_MAX];
    return ember_buf_append(out, tmp, em_varint_put(tmp, v));
}

/* Appends a length-prefixed view (already checked). */
static ember_status put_bytes(ember_buf *out, em_bytes b)
{
    ember_status s = put_varint(out, (uint64_t)b.len);
    if (s == EMBER_OK)
        s = ember_buf_append(out, b.data, b.len);
    return s;
}

/* Writes the 6-byte header of a type-t message at p. */
static void fill_header(uint8_t *p, em_msg_type t)
{
    memcpy(p, magic, sizeof magic);
    p[4] = EM_MSG_VERSION;
    p[5] = (uint8_t)t;
}

static ember_status put_header(ember_buf *out, em_msg_type t)
{
    uint8_t h[EM_MSG_HEADER_LEN];
    fill_header(h, t);
    return ember_buf_append(out, h, sizeof h);
}

/* Nonzero when b can go on the wire as a string field. */
static int str_ok(em_bytes b)
{
    if (b.len == 0)
        return 1;
    return b.data != NULL && b.len <= EM_MSG_STR_MAX &&
           memchr(b.data, 0, b.len) == NULL;
}

/* Nonzero when b can go on the wire as a blob field. */
static int blob_ok(em_bytes b)
{
    return b.len == 0 || (b.data != NULL && b.len <= EM_MSG_BLOB_MAX);
}

/* Runs one append step; on failure jumps to the function's `fail` label. */
#define TRY(expr)                                                            \
    do {                                                                     \
        s = (expr);                                                          \
        if (s != EMBER_OK)                                                   \
            goto fail;                                                       \
    } while (0)

ember_status em_msg_encode_register(ember_buf *out, const em_msg_register *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || !str_ok(m->executor_id) ||
        !str_ok(m->host) || !str_ok(m->endpoint))
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_REGISTER));
    TRY(put_bytes(out, m->executor_id));
    TRY(put_bytes(out, m->host));
    TRY(put_bytes(out, m->endpoint));
    TRY(put_varint(out, m->slots));
    TRY(put_varint(out, m->pid));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_registered(ember_buf *out,
                                      const em_msg_registered *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || m->accepted > 1 || !str_ok(m->reason))
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_REGISTERED));
    TRY(ember_buf_put_u8(out, m->accepted));
    TRY(put_bytes(out, m->reason));
    TRY(put_varint(out, m->app_id));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_stage(ember_buf *out, const em_msg_stage *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || !blob_ok(m->plan))
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_STAGE));
    TRY(put_varint(out, m->stage_id));
    TRY(put_varint(out, m->attempt));
    TRY(put_varint(out, m->job_id));
    TRY(put_bytes(out, m->plan));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_commit_ask(ember_buf *out,
                                      const em_msg_commit_ask *m)
{
    uint8_t tmp[EM_MSG_HEADER_LEN + 5 * EM_VARINT_MAX];
    size_t n = EM_MSG_HEADER_LEN;
    if (out == NULL || m == NULL)
        return EMBER_EINVAL;
    fill_header(tmp, EM_MSG_COMMIT_ASK);
    n += em_varint_put(tmp + n, m->task_id);
    n += em_varint_put(tmp + n, m->stage_id);
    n += em_varint_put(tmp + n, m->stage_attempt);
    n += em_varint_put(tmp + n, m->partition);
    n += em_varint_put(tmp + n, m->attempt);
    return ember_buf_append(out, tmp, n);
}

ember_status em_msg_encode_commit_reply(ember_buf *out,
                                        const em_msg_commit_reply *m)
{
    uint8_t tmp[EM_MSG_HEADER_LEN + EM_VARINT_MAX + 1];
    size_t n = EM_MSG_HEADER_LEN;
    if (out == NULL || m == NULL || m->allowed > 1)
        return EMBER_EINVAL;
    fill_header(tmp, EM_MSG_COMMIT_REPLY);
    n += em_varint_put(tmp + n, m->task_id);
    tmp[n++] = m->allowed;
    return ember_buf_append(out, tmp, n);
}

ember_status em_msg_encode_heartbeat(ember_buf *out,
                                     const em_msg_heartbeat *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || !str_ok(m->executor_id))
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_HEARTBEAT));
    TRY(put_bytes(out, m->executor_id));
    TRY(put_varint(out, m->running));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_shutdown(ember_buf *out, const em_msg_shutdown *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || !str_ok(m->reason))
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_SHUTDOWN));
    TRY(put_bytes(out, m->reason));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_bcast_fetch(ember_buf *out,
                                       const em_msg_bcast_fetch *m)
{
    uint8_t tmp[EM_MSG_HEADER_LEN + 3 * EM_VARINT_MAX];
    size_t n = EM_MSG_HEADER_LEN;
    if (out == NULL || m == NULL)
        return EMBER_EINVAL;
    fill_header(tmp, EM_MSG_BCAST_FETCH);
    n += em_varint_put(tmp + n, m->app);
    n += em_varint_put(tmp + n, m->bcast_id);
    n += em_varint_put(tmp + n, m->index);
    return ember_buf_append(out, tmp, n);
}

ember_status em_msg_encode_bcast_chunk(ember_buf *out,
                                       const em_msg_bcast_chunk *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || m->outcome > EM_BCAST_FAILED ||
        !blob_ok(m->data) || !str_ok(m->error))
        return EMBER_EINVAL;
    if (m->outcome == EM_BCAST_OK
            ? m->error.len || m->index >= m->nchunks ||
                  (uint64_t)m->data.len > m->total
            : m->nchunks || m->total || m->checksum || m->data.len)
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_BCAST_CHUNK));
    TRY(put_varint(out, m->app));
    TRY(put_varint(out, m->bcast_id));
    TRY(put_varint(out, m->index));
    TRY(ember_buf_put_u8(out, m->outcome));
    if (m->outcome == EM_BCAST_OK) {
        TRY(put_varint(out, m->nchunks));
        TRY(put_varint(out, m->total));
        TRY(put_varint(out, m->checksum));
        TRY(put_bytes(out, m->data));
    } else {
        TRY(put_bytes(out, m->error));
    }
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_replicate(ember_buf *out,
                                     const em_msg_replicate *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || !str_ok(m->level) || !m->level.len ||
        !str_ok(m->source_id) || !str_ok(m->source_endpoint) ||
        !m->source_endpoint.len)
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_REPLICATE));
    TRY(put_varint(out, m->app));
    TRY(put_varint(out, m->dataset));
    TRY(put_varint(out, m->partition));
    TRY(put_bytes(out, m->level));
    TRY(put_bytes(out, m->source_id));
    TRY(put_bytes(out, m->source_endpoint));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_encode_block_stored(ember_buf *out,
                                        const em_msg_block_stored *m)
{
    ember_status s;
    size_t mark;
    if (out == NULL || m == NULL || !blob_ok(m->report) || !m->report.len)
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_header(out, EM_MSG_BLOCK_STORED));
    TRY(put_bytes(out, m->report));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

/* ---------------------------------------------------------- batch writing */

/* The count field as begin reserves it: the padded varint of 0. */
static const uint8_t count_zero[EM_MSG_COUNT_LEN] = {0x80, 0x80, 0x80, 0x80,
                                                     0x00};

static ember_status batch_begin(em_msg_batch *b, ember_buf *out,
                                em_msg_type t, const char *reason)
{
    ember_status s;
    size_t mark, count_at;
    em_bytes r = {NULL, 0};
    if (b == NULL || out == NULL)
        return EMBER_EINVAL;
    if (reason != NULL) {
        r.data = (const uint8_t *)reason;
        r.len = strnlen(reason, EM_MSG_STR_MAX + 1);
        if (r.len > EM_MSG_STR_MAX)
            return EMBER_EINVAL;
    }
    mark = out->len;
    TRY(put_header(out, t));
    if (t == EM_MSG_KILL || t == EM_MSG_REMOVE_SHUFFLES ||
        t == EM_MSG_REMOVE_BLOCKS || t == EM_MSG_REMOVE_BROADCAST)
        TRY(put_bytes(out, r));
    count_at = out->len;
    TRY(ember_buf_append(out, count_zero, sizeof count_zero));
    b->out = out;
    b->count_at = count_at;
    b->count = 0;
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_msg_launch_begin(em_msg_batch *b, ember_buf *out)
{
    return batch_begin(b, out, EM_MSG_LAUNCH, NULL);
}

ember_status em_msg_status_begin(em_msg_batch *b, ember_buf *out)
{
    return batch_begin(b, out, EM_MSG_STATUS, NULL);
}

ember_status em_msg_kill_begin(em_msg_batch *b, ember_buf *out,
                               const char *reason)
{
    return batch_begin(b, out, EM_MSG_KILL, reason);
}

/* Checks that b can take one more entry. */
static ember_status batch_room(const em_msg_batch *b)
{
    if (b == NULL || b->out == NULL)
        return EMBER_EINVAL;
    if (b->count == UINT32_MAX)
        return EMBER_ENOSPC;
    return EMBER_OK;
}

ember_status em_msg_launch_add(em_msg_batch *b, const em_msg_task *t)
{
    uint8_t tmp[6 * EM_VARINT_MAX + 1];
    size_t n = 0;
    ember_status s = batch_room(b);
    if (s != EMBER_OK)
        return s;
    if (t == NULL || t->speculative > 1)
        return EMBER_EINVAL;
    n += em_varint_put(tmp + n, t->task_id);
    n += em_varint_put(tmp + n, t->job_id);
    n += em_varint_put(tmp + n, t->stage_id);
    n += em_varint_put(tmp + n, t->stage_attempt);
    n += em_varint_put(tmp + n, t->partition);
    n += em_varint_put(tmp + n, t->attempt);
    tmp[n++] = t->speculative;
    s = ember_buf_append(b->out, tmp, n);
    if (s == EMBER_OK)
        b->count++;
    return s;
}

ember_status em_msg_status_add(em_msg_batch *b, const em_msg_update *u)
{
    uint8_t tmp[6 * EM_VARINT_MAX];
    size_t n = 0, mark;
    int fetch;
    ember_status s = batch_room(b);
    if (s != EMBER_OK)
        return s;
    if (u == NULL || u->state < EM_TASK_RUNNING || u->state > EM_TASK_KILLED)
        return EMBER_EINVAL;
    fetch = u->state == EM_TASK_FETCH_FAILED;
    /* A field that does not apply to the state has no place on the wire;
     * refusing it beats dropping it silently. */
    if (((u->result.len || u->accums.len || u->blocks.len) &&
         u->state != EM_TASK_FINISHED) ||
        (u->error.len && (u->state == EM_TASK_RUNNING ||
                          u->state == EM_TASK_FINISHED)) ||
        (!fetch && (u->shuffle_id || u->map_index || u->lost_executor.len)))
        return EMBER_EINVAL;
    if (!blob_ok(u->result) || !blob_ok(u->accums) || !blob_ok(u->blocks) ||
        !str_ok(u->error) || !str_ok(u->lost_executor))
        return EMBER_EINVAL;
    n += em_varint_put(tmp + n, u->task_id);
    tmp[n++] = u->state;
    n += em_varint_put(tmp + n, u->run_us);
    n += em_varint_put(tmp + n, u->records_in);
    n += em_varint_put(tmp + n, u->records_out);
    n += em_varint_put(tmp + n, u->bytes_out);
    mark = b->out->len;
    TRY(ember_buf_append(b->out, tmp, n));
    switch (u->state) {
    case EM_TASK_FINISHED:
        TRY(put_bytes(b->out, u->result));
        TRY(put_bytes(b->out, u->accums));
        TRY(put_bytes(b->out, u->blocks));
        break;
    case EM_TASK_FAILED:
    case EM_TASK_KILLED: TRY(put_bytes(b->out, u->error)); break;
    case EM_TASK_FETCH_FAILED:
        TRY(put_bytes(b->out, u->error));
        TRY(put_varint(b->out, u->shuffle_id));
        TRY(put_varint(b->out, u->map_index));
        TRY(put_bytes(b->out, u->lost_executor));
        break;
    default: break;
    }
    b->count++;
    return EMBER_OK;
fail:
    b->out->len = mark;
    return s;
}

ember_status em_msg_remove_shuffles_begin(em_msg_batch *b, ember_buf *out,
                                          const char *reason)
{
    return batch_begin(b, out, EM_MSG_REMOVE_SHUFFLES, reason);
}

ember_status em_msg_remove_shuffles_add(em_msg_batch *b, uint64_t shuffle_id)
{
    return em_msg_kill_add(b, shuffle_id);
}

ember_status em_msg_remove_blocks_begin(em_msg_batch *b, ember_buf *out,
                                        const char *reason)
{
    return batch_begin(b, out, EM_MSG_REMOVE_BLOCKS, reason);
}

ember_status em_msg_remove_blocks_add(em_msg_batch *b, uint64_t key)
{
    return em_msg_kill_add(b, key);
}

ember_status em_msg_remove_broadcast_begin(em_msg_batch *b, ember_buf *out,
                                           const char *reason)
{
    return batch_begin(b, out, EM_MSG_REMOVE_BROADCAST, reason);
}

ember_status em_msg_remove_broadcast_add(em_msg_batch *b, uint64_t app,
                                         uint64_t bcast_id)
{
    uint8_t tmp[2 * EM_VARINT_MAX];
    size_t n = 0;
    ember_status s = batch_room(b);
    if (s != EMBER_OK)
        return s;
    n += em_varint_put(tmp + n, app);
    n += em_varint_put(tmp + n, bcast_id);
    s = ember_buf_append(b->out, tmp, n);
    if (s == EMBER_OK)
        b->count++;
    return s;
}

ember_status em_msg_kill_add(em_msg_batch *b, uint64_t task_id)
{
    ember_status s = batch_room(b);
    if (s != EMBER_OK)
        return s;
    s = put_varint(b->out, task_id);
    if (s == EMBER_OK)
        b->count++;
    return s;
}

ember_status em_msg_batch_finish(em_msg_batch *b)
{
    uint8_t *p;
    uint32_t c;
    if (b == NULL || b->out == NULL || b->count_at > b->out->len ||
        b->out->len - b->count_at < EM_MSG_COUNT_LEN)
        return EMBER_EINVAL;
    p = b->out->data + b->count_at;
    c = b->count;
    p[0] = (uint8_t)(0x80 | (c & 0x7f));
    p[1] = (uint8_t)(0x80 | ((c >> 7) & 0x7f));
    p[2] = (uint8_t)(0x80 | ((c >> 14) & 0x7f));
    p[3] = (uint8_t)(0x80 | ((c >> 21) & 0x7f));
    p[4] = (uint8_t)(c >> 28);
    return EMBER_OK;
}

/* --------------------------------------------------------------- reading */

/* A validating reader over one message; failures name the message, the
 * batch entry when there is one, the field and its offset. */
typedef struct rd {
    const uint8_t *base; /* offsets are counted from here */
    const uint8_t *p, *end;
    const char *what;  /* "STATUS", "map status" */
    const char *entry; /* "update", "task", ...; NULL outside batches */
    uint32_t index;    /* the entry being read */
    ember_error *err;  /* NULL: report codes only */
} rd;

static void rd_init(rd *r, const uint8_t *d, size_t n, const char *what,
                    ember_error *err)
{
    r->base = r->p = d;
    r->end = d + n;
    r->what = what;
    r->entry = NULL;
    r->index = 0;
    r->err = err;
}

static size_t rd_off(const rd *r, const uint8_t *at)
{
    return (size_t)(at - r->base);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static ember_status rd_bad(const rd *r, const char *field, const char *fmt,
                           ...)
{
    char detail[EMBER_ERROR_MAX];
    va_list ap;
    if (r->err == NULL)
        return EMBER_EINVAL;
    va_start(ap, fmt);
    if (vsnprintf(detail, sizeof detail, fmt, ap) < 0)
        detail[0] = '\0';
    va_end(ap);
    if (r->entry != NULL)
        return ember_errorf(r->err, EMBER_EINVAL,
                            "%s %s %" PRIu32 ": field '%s' %s", r->what,
                            r->entry, r->index, field, detail);
    return ember_errorf(r->err, EMBER_EINVAL, "%s: field '%s' %s", r->what,
                        field, detail);
}

/* Reads a minimal varint of at most max into *v. */
static ember_status rd_varint(rd *r, const char *field, uint64_t max,
                              uint64_t *v)
{
    const uint8_t *q = r->p;
    uint64_t out;
    em_varint_err e = em_varint_get(&q, r->end, &out);
    if (e == EM_VARINT_SHORT)
        return rd_bad(r, field,
                      "runs past the end of the message (offset %zu, "
                      "%zu bytes left)",
                      rd_off(r, r->p), (size_t)(r->end - r->p));
    if (e != EM_VARINT_OK)
        return rd_bad(r, field, "%s (offset %zu)", em_varint_why(e),
                      rd_off(r, r->p));
    if (out > max)
        return rd_bad(r, field,
                      "value %" PRIu64 " exceeds its maximum %" PRIu64
                      " (offset %zu)",
                      out, max, rd_off(r, r->p));
    r->p = q;
    *v = out;
    return EMBER_OK;
}

static ember_status rd_u64(rd *r, const char *field, uint64_t *v)
{
    return rd_varint(r, field, UINT64_MAX, v);
}

static ember_status rd_u32(rd *r, const char *field, uint32_t *v)
{
    uint64_t x;
    ember_status s = rd_varint(r, field, UINT32_MAX, &x);
    if (s == EMBER_OK)
        *v = (uint32_t)x;
    return s;
}

/* Reads one byte in [lo, hi]; kind names the allowed values. */
static ember_status rd_byte(rd *r, const char *field, uint8_t lo, uint8_t hi,
                            const char *kind, uint8_t *v)
{
    if (r->p == r->end)
        return rd_bad(r, field,
                      "runs past the end of the message (offset %zu, "
                      "0 bytes left)",
                      rd_off(r, r->p));
    if (*r->p < lo || *r->p > hi)
        return rd_bad(r, field, "value %u is not %s (offset %zu)",
                      (unsigned)*r->p, kind, rd_off(r, r->p));
    *v = *r->p++;
    return EMBER_OK;
}

static ember_status rd_bool(rd *r, const char *field, uint8_t *v)
{
    return rd_byte(r, field, 0, 1, "a boolean (0 or 1)", v);
}

/* Reads a length-prefixed string (is_str) or blob into a view. */
static ember_status rd_view(rd *r, const char *field, int is_str,
                            em_bytes *v)
{
    const uint8_t *at = r->p;
    size_t max = is_str ? EM_MSG_STR_MAX : EM_MSG_BLOB_MAX;
    size_t left;
    uint64_t len;
    const uint8_t *nul;
    ember_status s = rd_u64(r, field, &len);
    if (s != EMBER_OK)
        return s;
    left = (size_t)(r->end - r->p);
    if (len > max) {
        r->p = at;
        return rd_bad(r, field,
                      "length %" PRIu64 " exceeds the %s limit of %zu "
                      "bytes (offset %zu)",
                      len, is_str ? "string" : "blob", max, rd_off(r, at));
    }
    if (len > left) {
        r->p = at;
        return rd_bad(r, field,
                      "length %" PRIu64 " runs past the end of the message "
                      "(offset %zu, %zu bytes left)",
                      len, rd_off(r, at), left);
    }
    if (is_str && len &&
        (nul = (const uint8_t *)memchr(r->p, 0, (size_t)len)) != NULL) {
        size_t off = rd_off(r, nul);
        r->p = at;
        return rd_bad(r, field, "contains a NUL byte (offset %zu)", off);
    }
    v->data = r->p;
    v->len = (size_t)len;
    r->p += len;
    return EMBER_OK;
}

/* Reads the 5-byte padded varint of a batch count. */
static ember_status rd_count(rd *r, uint32_t *count)
{
    const uint8_t *p = r->p;
    if (r->end - p < EM_MSG_COUNT_LEN)
        return rd_bad(r, "count",
                      "runs past the end of the message (offset %zu, %zu "
                      "bytes left)",
                      rd_off(r, p), (size_t)(r->end - p));
    if (!(p[0] & p[1] & p[2] & p[3] & 0x80) || p[4] > 0x0f)
        return rd_bad(r, "count",
                      "is not the 5-byte padded varint of a batch count "
                      "(offset %zu)",
                      rd_off(r, p));
    *count = (uint32_t)(p[0] & 0x7f) | (uint32_t)(p[1] & 0x7f) << 7 |
             (uint32_t)(p[2] & 0x7f) << 14 | (uint32_t)(p[3] & 0x7f) << 21 |
             (uint32_t)p[4] << 28;
    r->p += EM_MSG_COUNT_LEN;
    return EMBER_OK;
}

/* Refuses bytes after the body. */
static ember_status rd_done(const rd *r)
{
    if (r->p == r->end)
        return EMBER_OK;
    return ember_errorf(r->err, EMBER_EINVAL,
                        "%s: %zu trailing bytes after the end of the "
                        "message body (offset %zu)",
                        r->what, (size_t)(r->end - r->p), rd_off(r, r->p));
}

/* Refuses a count that the bytes left cannot hold at min bytes an entry. */
static ember_status rd_count_fits(const rd *r, uint32_t count, size_t min,
                                  const uint8_t *count_at)
{
    uint64_t need = (uint64_t)count * min;
    size_t left = (size_t)(r->end - r->p);
    if (need <= left)
        return EMBER_OK;
    return ember_errorf(r->err, EMBER_EINVAL,
                        "%s: count %" PRIu32 " needs at least %" PRIu64
                        " bytes but only %zu are left (offset %zu)",
                        r->what, count, need, left, rd_off(r, count_at));
}

ember_status em_msg_type_of(const uint8_t *data, size_t len,
                            em_msg_type *type, ember_error *err)
{
    if (data == NULL && len > 0)
        return ember_errorf(err, EMBER_EINVAL, "message bytes are NULL");
    if (len < EM_MSG_HEADER_LEN)
        return ember_errorf(err, EMBER_EINVAL,
                            "message of %zu bytes is shorter than the "
                            "%d-byte header",
                            len, EM_MSG_HEADER_LEN);
    if (memcmp(data, magic, sizeof magic) != 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "not an ember message: bad magic (offset 0)");
    if (data[4] != EM_MSG_VERSION)
        return ember_errorf(err, EMBER_EVERSION,
                            "message version %u not supported (this ember "
                            "speaks %d)",
                            (unsigned)data[4], EM_MSG_VERSION);
    if (data[5] < EM_MSG_REGISTER || data[5] > EM_MSG_BLOCK_STORED)
        return ember_errorf(err, EMBER_EINVAL,
                            "unknown message type %u (offset 5)",
                            (unsigned)data[5]);
    if (type)
        *type = (em_msg_type)data[5];
    return EMBER_OK;
}

/* Checks the header of d[0..n) for type `want` and sets r past it. */
static ember_status rd_open(rd *r, const uint8_t *d, size_t n,
                            em_msg_type want, ember_error *err)
{
    em_msg_type got;
    ember_status s = em_msg_type_of(d, n, &got, err);
    if (s != EMBER_OK)
        return s;
    if (got != want)
        return ember_errorf(err, EMBER_EINVAL,
                            "expected a %s message but got a %s message",
                            em_msg_type_name(want), em_msg_type_name(got));
    rd_init(r, d, n, em_msg_type_name(want), err);
    r->p += EM_MSG_HEADER_LEN;
    return EMBER_OK;
}

/* Runs one read step; on failure jumps to the function's `fail` label. */
#define READ(expr) TRY(expr)

ember_status em_msg_decode_register(const uint8_t *d, size_t n,
                                    em_msg_register *m, ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_REGISTER, err));
    READ(rd_view(&r, "executor_id", 1, &m->executor_id));
    READ(rd_view(&r, "host", 1, &m->host));
    READ(rd_view(&r, "endpoint", 1, &m->endpoint));
    READ(rd_u32(&r, "slots", &m->slots));
    READ(rd_u32(&r, "pid", &m->pid));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_registered(const uint8_t *d, size_t n,
                                      em_msg_registered *m, ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_REGISTERED, err));
    READ(rd_bool(&r, "accepted", &m->accepted));
    READ(rd_view(&r, "reason", 1, &m->reason));
    READ(rd_u64(&r, "app_id", &m->app_id));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_stage(const uint8_t *d, size_t n, em_msg_stage *m,
                                 ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_STAGE, err));
    READ(rd_u64(&r, "stage_id", &m->stage_id));
    READ(rd_u32(&r, "attempt", &m->attempt));
    READ(rd_u64(&r, "job_id", &m->job_id));
    READ(rd_view(&r, "plan", 0, &m->plan));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_commit_ask(const uint8_t *d, size_t n,
                                      em_msg_commit_ask *m, ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_COMMIT_ASK, err));
    READ(rd_u64(&r, "task_id", &m->task_id));
    READ(rd_u64(&r, "stage_id", &m->stage_id));
    READ(rd_u32(&r, "stage_attempt", &m->stage_attempt));
    READ(rd_u32(&r, "partition", &m->partition));
    READ(rd_u32(&r, "attempt", &m->attempt));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_commit_reply(const uint8_t *d, size_t n,
                                        em_msg_commit_reply *m,
                                        ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_COMMIT_REPLY, err));
    READ(rd_u64(&r, "task_id", &m->task_id));
    READ(rd_bool(&r, "allowed", &m->allowed));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_heartbeat(const uint8_t *d, size_t n,
                                     em_msg_heartbeat *m, ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_HEARTBEAT, err));
    READ(rd_view(&r, "executor_id", 1, &m->executor_id));
    READ(rd_u32(&r, "running", &m->running));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_shutdown(const uint8_t *d, size_t n,
                                    em_msg_shutdown *m, ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_SHUTDOWN, err));
    READ(rd_view(&r, "reason", 1, &m->reason));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_bcast_fetch(const uint8_t *d, size_t n,
                                       em_msg_bcast_fetch *m,
                                       ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_BCAST_FETCH, err));
    READ(rd_u64(&r, "app", &m->app));
    READ(rd_u64(&r, "bcast_id", &m->bcast_id));
    READ(rd_u32(&r, "index", &m->index));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_bcast_chunk(const uint8_t *d, size_t n,
                                       em_msg_bcast_chunk *m,
                                       ember_error *err)
{
    rd r;
    ember_status s;
    const uint8_t *at;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_BCAST_CHUNK, err));
    READ(rd_u64(&r, "app", &m->app));
    READ(rd_u64(&r, "bcast_id", &m->bcast_id));
    at = r.p;
    READ(rd_u32(&r, "index", &m->index));
    READ(rd_byte(&r, "outcome", EM_BCAST_OK, EM_BCAST_FAILED,
                 "an outcome (0..3)", &m->outcome));
    if (m->outcome == EM_BCAST_OK) {
        READ(rd_u32(&r, "nchunks", &m->nchunks));
        READ(rd_u64(&r, "total", &m->total));
        READ(rd_u64(&r, "checksum", &m->checksum));
        READ(rd_view(&r, "data", 0, &m->data));
        if (m->index >= m->nchunks) {
            s = rd_bad(&r, "index", "value %" PRIu32 " is not below "
                       "nchunks %" PRIu32 " (offset %zu)", m->index,
                       m->nchunks, rd_off(&r, at));
            goto fail;
        }
        if ((uint64_t)m->data.len > m->total) {
            s = rd_bad(&r, "data", "length %zu exceeds total %" PRIu64,
                       m->data.len, m->total);
            goto fail;
        }
    } else {
        READ(rd_view(&r, "error", 1, &m->error));
    }
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

/* Reads a string or blob (as rd_view) that may not be empty. */
static ember_status rd_filled(rd *r, const char *field, int is_str,
                              em_bytes *v)
{
    const uint8_t *at = r->p;
    ember_status s = rd_view(r, field, is_str, v);
    if (s == EMBER_OK && v->len == 0)
        return rd_bad(r, field, "is empty (offset %zu)", rd_off(r, at));
    return s;
}

ember_status em_msg_decode_replicate(const uint8_t *d, size_t n,
                                     em_msg_replicate *m, ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_REPLICATE, err));
    READ(rd_u64(&r, "app", &m->app));
    READ(rd_u64(&r, "dataset", &m->dataset));
    READ(rd_u32(&r, "partition", &m->partition));
    READ(rd_filled(&r, "level", 1, &m->level));
    READ(rd_view(&r, "source_id", 1, &m->source_id));
    READ(rd_filled(&r, "source_endpoint", 1, &m->source_endpoint));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

ember_status em_msg_decode_block_stored(const uint8_t *d, size_t n,
                                        em_msg_block_stored *m,
                                        ember_error *err)
{
    rd r;
    ember_status s;
    memset(m, 0, sizeof *m);
    READ(rd_open(&r, d, n, EM_MSG_BLOCK_STORED, err));
    READ(rd_filled(&r, "report", 0, &m->report));
    READ(rd_done(&r));
    return EMBER_OK;
fail:
    memset(m, 0, sizeof *m);
    return s;
}

/* ---------------------------------------------------------- batch reading */

static ember_status rd_task(rd *r, em_msg_task *t)
{
    ember_status s;
    READ(rd_u64(r, "task_id", &t->task_id));
    READ(rd_u64(r, "job_id", &t->job_id));
    READ(rd_u64(r, "stage_id", &t->stage_id));
    READ(rd_u32(r, "stage_attempt", &t->stage_attempt));
    READ(rd_u32(r, "partition", &t->partition));
    READ(rd_u32(r, "attempt", &t->attempt));
    READ(rd_bool(r, "speculative", &t->speculative));
fail:
    return s;
}

static ember_status rd_update(rd *r, em_msg_update *u)
{
    ember_status s;
    memset(u, 0, sizeof *u);
    READ(rd_u64(r, "task_id", &u->task_id));
    READ(rd_byte(r, "state", EM_TASK_RUNNING, EM_TASK_KILLED,
                 "a task state (1..5)", &u->state));
    READ(rd_u64(r, "run_us", &u->run_us));
    READ(rd_u64(r, "records_in", &u->records_in));
    READ(rd_u64(r, "records_out", &u->records_out));
    READ(rd_u64(r, "bytes_out", &u->bytes_out));
    switch (u->state) {
    case EM_TASK_FINISHED:
        READ(rd_view(r, "result", 0, &u->result));
        READ(rd_view(r, "accums", 0, &u->accums));
        READ(rd_view(r, "blocks", 0, &u->blocks));
        break;
    case EM_TASK_FAILED:
    case EM_TASK_KILLED: READ(rd_view(r, "error", 1, &u->error)); break;
    case EM_TASK_FETCH_FAILED:
        READ(rd_view(r, "error", 1, &u->error));
        READ(rd_u64(r, "shuffle_id", &u->shuffle_id));
        READ(rd_u32(r, "map_index", &u->map_index));
        READ(rd_view(r, "lost_executor", 1, &u->lost_executor));
        break;
    default: break;
    }
fail:
    return s;
}

static ember_status rd_kill_id(rd *r, uint64_t *id)
{
    return rd_u64(r, "task_id", id);
}

/* Parses one entry of a batch (LAUNCH task, STATUS update or KILL id). */
typedef ember_status (*entry_fn)(rd *r, void *entry);

static ember_status launch_entry(rd *r, void *e)
{
    return rd_task(r, (em_msg_task *)e);
}

static ember_status status_entry(rd *r, void *e)
{
    return rd_update(r, (em_msg_update *)e);
}

static ember_status kill_entry(rd *r, void *e)
{
    return rd_kill_id(r, (uint64_t *)e);
}

/* Validates the count and every entry after r->p (the count field), and
 * points c at the first entry. scratch receives each entry in turn. */
static ember_status batch_open(rd *r, const char *entry, size_t min,
                               entry_fn parse, void *scratch,
                               em_msg_cursor *c)
{
    const uint8_t *count_at = r->p, *first;
    uint32_t count = 0, i;
    ember_status s;
    READ(rd_count(r, &count));
    READ(rd_count_fits(r, count, min, count_at));
    first = r->p;
    r->entry = entry;
    for (i = 0; i < count; i++) {
        r->index = i;
        READ(parse(r, scratch));
    }
    r->entry = NULL;
    READ(rd_done(r));
    c->p = first;
    c->end = r->end;
    c->remaining = count;
    c->index = 0;
fail:
    return s;
}

/* Reads the next entry at c; EMBER_END after the last. */
static ember_status batch_next(em_msg_cursor *c, entry_fn parse, void *entry)
{
    rd r;
    ember_status s;
    if (c == NULL || c->remaining == 0)
        return EMBER_END;
    rd_init(&r, c->p, (size_t)(c->end - c->p), "batch", NULL);
    s = parse(&r, entry);
    if (s != EMBER_OK)
        return s;
    c->p = r.p;
    c->remaining--;
    c->index++;
    return EMBER_OK;
}

static void cursor_clear(em_msg_cursor *c)
{
    c->p = c->end = NULL;
    c->remaining = 0;
    c->index = 0;
}

ember_status em_msg_launch_open(const uint8_t *d, size_t n, em_msg_cursor *c,
                                ember_error *err)
{
    rd r;
    em_msg_task t;
    ember_status s;
    cursor_clear(c);
    READ(rd_open(&r, d, n, EM_MSG_LAUNCH, err));
    READ(batch_open(&r, "task", LAUNCH_ENTRY_MIN, launch_entry, &t, c));
fail:
    return s;
}

ember_status em_msg_launch_next(em_msg_cursor *c, em_msg_task *t)
{
    return batch_next(c, launch_entry, t);
}

ember_status em_msg_status_open(const uint8_t *d, size_t n, em_msg_cursor *c,
                                ember_error *err)
{
    rd r;
    em_msg_update u;
    ember_status s;
    cursor_clear(c);
    READ(rd_open(&r, d, n, EM_MSG_STATUS, err));
    READ(batch_open(&r, "update", STATUS_ENTRY_MIN, status_entry, &u, c));
fail:
    return s;
}

ember_status em_msg_status_next(em_msg_cursor *c, em_msg_update *u)
{
    return batch_next(c, status_entry, u);
}

/* KILL, REMOVE_SHUFFLES and REMOVE_BLOCKS: a reason, then a batch of ids. */
static ember_status ids_open(const uint8_t *d, size_t n, em_msg_type t,
                             em_bytes *reason, em_msg_cursor *c,
                             ember_error *err)
{
    rd r;
    uint64_t id;
    ember_status s;
    em_bytes why = {NULL, 0};
    cursor_clear(c);
    READ(rd_open(&r, d, n, t, err));
    READ(rd_view(&r, "reason", 1, &why));
    READ(batch_open(&r, t == EM_MSG_KILL ? "task" : "shuffle",
                    KILL_ENTRY_MIN, kill_entry, &id, c));
fail:
    if (reason)
        *reason = s == EMBER_OK ? why : (em_bytes){NULL, 0};
    return s;
}

ember_status em_msg_kill_open(const uint8_t *d, size_t n, em_bytes *reason,
                              em_msg_cursor *c, ember_error *err)
{
    return ids_open(d, n, EM_MSG_KILL, reason, c, err);
}

ember_status em_msg_remove_shuffles_open(const uint8_t *d, size_t n,
                                         em_bytes *reason, em_msg_cursor *c,
                                         ember_error *err)
{
    return ids_open(d, n, EM_MSG_REMOVE_SHUFFLES, reason, c, err);
}

ember_status em_msg_remove_shuffles_next(em_msg_cursor *c,
                                         uint64_t *shuffle_id)
{
    return batch_next(c, kill_entry, shuffle_id);
}

ember_status em_msg_remove_blocks_open(const uint8_t *d, size_t n,
                                       em_bytes *reason, em_msg_cursor *c,
                                       ember_error *err)
{
    return ids_open(d, n, EM_MSG_REMOVE_BLOCKS, reason, c, err);
}

ember_status em_msg_remove_blocks_next(em_msg_cursor *c, uint64_t *key)
{
    return batch_next(c, kill_entry, key);
}

/* One REMOVE_BROADCAST entry, into a uint64_t[2] {app, bcast_id}. */
static ember_status bcast_entry(rd *r, void *e)
{
    uint64_t *pair = e;
    ember_status s;
    READ(rd_u64(r, "app", &pair[0]));
    READ(rd_u64(r, "bcast_id", &pair[1]));
fail:
    return s;
}

ember_status em_msg_remove_broadcast_open(const uint8_t *d, size_t n,
                                          em_bytes *reason, em_msg_cursor *c,
                                          ember_error *err)
{
    rd r;
    uint64_t pair[2];
    ember_status s;
    em_bytes why = {NULL, 0};
    cursor_clear(c);
    READ(rd_open(&r, d, n, EM_MSG_REMOVE_BROADCAST, err));
    READ(rd_view(&r, "reason", 1, &why));
    READ(batch_open(&r, "broadcast", BCAST_ENTRY_MIN, bcast_entry, pair, c));
fail:
    if (reason)
        *reason = s == EMBER_OK ? why : (em_bytes){NULL, 0};
    return s;
}

ember_status em_msg_remove_broadcast_next(em_msg_cursor *c, uint64_t *app,
                                          uint64_t *bcast_id)
{
    uint64_t pair[2];
    ember_status s = batch_next(c, bcast_entry, pair);
    if (s == EMBER_OK) {
        *app = pair[0];
        *bcast_id = pair[1];
    }
    return s;
}

ember_status em_msg_kill_next(em_msg_cursor *c, uint64_t *task_id)
{
    return batch_next(c, kill_entry, task_id);
}

/* ------------------------------------------------------------ map status */

ember_status em_map_status_encode(ember_buf *out, const uint64_t *sizes,
                                  uint32_t n)
{
    ember_status s;
    size_t mark;
    uint32_t i;
    if (out == NULL || (sizes == NULL && n > 0))
        return EMBER_EINVAL;
    mark = out->len;
    TRY(put_varint(out, n));
    for (i = 0; i < n; i++)
        TRY(put_varint(out, sizes[i]));
    return EMBER_OK;
fail:
    out->len = mark;
    return s;
}

ember_status em_map_status_decode(em_bytes in, uint32_t expected_n,
                                  uint64_t *sizes_out, ember_error *err)
{
    static const uint8_t none[1] = {0};
    rd r;
    uint32_t count = 0, i;
    uint64_t v;
    const uint8_t *first;
    ember_status s;
    if (in.data == NULL && in.len > 0)
        return ember_errorf(err, EMBER_EINVAL, "map status bytes are NULL");
    if (sizes_out == NULL && expected_n > 0)
        return ember_errorf(err, EMBER_EINVAL, "map status: no output array");
    rd_init(&r, in.data ? in.data : none, in.len, "map status", err);
    first = r.p;
    READ(rd_u32(&r, "count", &count));
    if (count != expected_n)
        return ember_errorf(err, EMBER_EINVAL,
                            "map status has %" PRIu32
                            " sizes, expected %" PRIu32,
                            count, expected_n);
    READ(rd_count_fits(&r, count, 1, first));
    /* Validate everything first, so sizes_out is only written when the
     * whole status is good. */
    first = r.p;
    r.entry = "size";
    for (i = 0; i < count; i++) {
        r.index = i;
        READ(rd_u64(&r, "bytes", &v));
    }
    r.entry = NULL;
    READ(rd_done(&r));
    r.p = first;
    for (i = 0; i < count; i++)
        (void)rd_u64(&r, "bytes", &sizes_out[i]);
fail:
    return s;
}
