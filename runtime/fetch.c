/*
 * runtime/fetch.c — the block server and the fetch client (fetch.h).
 */
#include "runtime/fetch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "ember/batch.h"
#include "ember/kernel/log.h"

#define SERVER_THREADS 2
#define REQ_MAGIC "EMBF"
#define T_REQUEST 1
#define T_REPLY 2
#define T_BLOCK_REQUEST 3
#define T_BLOCK_REPLY 4
/* A request lists at most this many map outputs. */
#define MAX_MAPS_PER_REQUEST 65536u

enum { CODE_MISSING = 1, CODE_CORRUPT = 2, CODE_OTHER = 3 };

/* ------------------------------------------------------------- server */

static void header(ember_buf *b, uint8_t type)
{
    uint8_t h[6] = {'E', 'M', 'B', 'F', 1, type};
    ember_buf_append(b, h, sizeof h);
}

static void reply_error(ember_buf *reply, uint32_t map, uint8_t code,
                        const char *msg)
{
    reply->len = 0;
    header(reply, T_REPLY);
    ember_buf_put_u8(reply, 1);
    ember_uvarint_put(reply, map);
    ember_buf_put_u8(reply, code);
    size_t n = strlen(msg);
    ember_uvarint_put(reply, n);
    ember_buf_append(reply, msg, n);
}

void em_fetch_serve(const ember_shuffle_vtable *vt, void *state,
                    const uint8_t *req, size_t n, ember_buf *reply)
{
    const uint8_t *p = n >= 6 ? req + 6 : req, *end = req + n;
    uint64_t shuffle, part, max_bytes, count;
    if (n < 6 || memcmp(req, REQ_MAGIC, 4) != 0 || req[4] != 1 ||
        req[5] != T_REQUEST ||
        ember_uvarint_get(&p, end, &shuffle) != EMBER_OK ||
        ember_uvarint_get(&p, end, &part) != EMBER_OK || part > UINT32_MAX ||
        ember_uvarint_get(&p, end, &max_bytes) != EMBER_OK ||
        ember_uvarint_get(&p, end, &count) != EMBER_OK ||
        count > MAX_MAPS_PER_REQUEST || count > (uint64_t)(end - p)) {
        reply_error(reply, 0, CODE_OTHER, "malformed fetch request");
        return;
    }
    reply->len = 0;
    header(reply, T_REPLY);
    ember_buf_put_u8(reply, 0);
    /* the block count is written last, as a fixed 5-byte varint */
    size_t count_at = reply->len;
    uint8_t pad[5] = {0x80, 0x80, 0x80, 0x80, 0x00};
    ember_buf_append(reply, pad, sizeof pad);
    ember_buf block = ember_buf_heap();
    uint64_t served = 0, bytes = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t map;
        if (ember_uvarint_get(&p, end, &map) != EMBER_OK ||
            map > UINT32_MAX) {
            ember_buf_release(&block);
            reply_error(reply, 0, CODE_OTHER, "malformed fetch request");
            return;
        }
        if (served > 0 && bytes >= max_bytes)
            break;
        block.len = 0;
        uint64_t nrec = 0;
        ember_error err = {0};
        ember_status s = vt->read_block(state, shuffle, (uint32_t)map,
                                        (uint32_t)part, &block, &nrec, &err);
        if (s != EMBER_OK) {
            ember_buf_release(&block);
            reply_error(reply, (uint32_t)map,
                        s == EMBER_ENOTFOUND ? CODE_MISSING
                        : s == EMBER_EINVAL  ? CODE_CORRUPT
                                             : CODE_OTHER,
                        err.msg[0] ? err.msg : ember_status_name(s));
            return;
        }
        if (ember_uvarint_put(reply, map) != EMBER_OK ||
            ember_uvarint_put(reply, nrec) != EMBER_OK ||
            ember_uvarint_put(reply, block.len) != EMBER_OK ||
            ember_buf_append(reply, block.data, block.len) != EMBER_OK) {
            ember_buf_release(&block);
            reply_error(reply, (uint32_t)map, CODE_OTHER, "out of memory");
            return;
        }
        served++;
        bytes += block.len;
    }
    ember_buf_release(&block);
    uint64_t v = served;
    for (int k = 0; k < 5; k++) {
        reply->data[count_at + (size_t)k] =
            (uint8_t)((v & 0x7f) | (k < 4 ? 0x80 : 0));
        v >>= 7;
    }
}

/* A cached-block reply saying why not. */
static void block_reply_error(ember_buf *reply, uint8_t code, const char *msg)
{
    reply->len = 0;
    header(reply, T_BLOCK_REPLY);
    ember_buf_put_u8(reply, 1);
    ember_buf_put_u8(reply, code);
    size_t n = strlen(msg);
    ember_uvarint_put(reply, n);
    ember_buf_append(reply, msg, n);
}

void em_fetch_serve_block(em_block_mgr *m, const uint8_t *req, size_t n,
                          ember_buf *reply)
{
    const uint8_t *p = n >= 6 ? req + 6 : req, *end = req + n;
    uint64_t key, part;
    if (n < 6 || memcmp(req, REQ_MAGIC, 4) != 0 || req[4] != 1 ||
        req[5] != T_BLOCK_REQUEST ||
        ember_uvarint_get(&p, end, &key) != EMBER_OK ||
        ember_uvarint_get(&p, end, &part) != EMBER_OK || part > UINT32_MAX ||
        p != end) {
        block_reply_error(reply, CODE_OTHER, "malformed block request");
        return;
    }
    char what[96];
    snprintf(what, sizeof what, "block of dataset %" PRIu64 " (application "
             "%" PRIu64 ") partition %" PRIu64, key & 0xffffffffu, key >> 32,
             part);
    if (!m) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: this executor caches nothing", what);
        block_reply_error(reply, CODE_MISSING, msg);
        return;
    }
    ember_buf block = ember_buf_heap();
    uint64_t nrec = 0;
    ember_error err = {0};
    ember_status s = em_block_mgr_get(m, key, (uint32_t)part, &block, &nrec,
                                      &err);
    if (s != EMBER_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s", what,
                 s == EMBER_ENOTFOUND ? "not cached here"
                 : err.msg[0]         ? err.msg
                                      : ember_status_name(s));
        block_reply_error(reply, s == EMBER_ENOTFOUND ? CODE_MISSING
                                 : s == EMBER_EINVAL  ? CODE_CORRUPT
                                                      : CODE_OTHER,
                          msg);
        ember_buf_release(&block);
        return;
    }
    reply->len = 0;
    header(reply, T_BLOCK_REPLY);
    if (ember_buf_put_u8(reply, 0) != EMBER_OK ||
        ember_uvarint_put(reply, nrec) != EMBER_OK ||
        ember_uvarint_put(reply, block.len) != EMBER_OK ||
        ember_buf_append(reply, block.data, block.len) != EMBER_OK)
        block_reply_error(reply, CODE_OTHER, "out of memory");
    ember_buf_release(&block);
}

struct em_block_server {
    nng_socket sock;
    const ember_shuffle_vtable *vt;
    void *state;
    _Atomic(em_block_mgr *) blocks; /* cached blocks served, or NULL */
    pthread_t threads[SERVER_THREADS];
    int nthreads;
};

static void *serve_main(void *arg)
{
    em_block_server *s = arg;
    nng_ctx ctx;
    nng_aio *aio = NULL;
    if (nng_ctx_open(&ctx, s->sock) != 0)
        return NULL;
    if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
        nng_ctx_close(ctx);
        return NULL;
    }
    ember_buf reply = ember_buf_heap();
    for (;;) {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0)
            break; /* closed */
        nng_msg *m = nng_aio_get_msg(aio);
        const uint8_t *body = nng_msg_body(m);
        if (nng_msg_len(m) >= 6 && body[5] == T_BLOCK_REQUEST)
            em_fetch_serve_block(atomic_load(&s->blocks), body,
                                 nng_msg_len(m), &reply);
        else
            em_fetch_serve(s->vt, s->state, body, nng_msg_len(m), &reply);
        nng_msg_free(m);
        nng_msg *r = NULL;
        if (reply.len == 0 || nng_msg_alloc(&r, reply.len) != 0)
            continue; /* the client times out */
        memcpy(nng_msg_body(r), reply.data, reply.len);
        /* keep memory bounded between large replies */
        if (reply.cap > ((size_t)64 << 20))
            ember_buf_release(&reply);
        nng_aio_set_msg(aio, r);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) != 0) {
            nng_msg_free(r);
            if (nng_aio_result(aio) == NNG_ECLOSED)
                break;
        }
    }
    ember_buf_release(&reply);
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return NULL;
}

ember_status em_block_server_start(em_block_server **out, const char *url,
                                   const ember_shuffle_vtable *vt,
                                   void *state, char *bound, size_t cap,
                                   ember_error *err)
{
    *out = NULL;
    em_block_server *s = calloc(1, sizeof *s);
    if (!s)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    s->vt = vt;
    s->state = state;
    nng_listener l;
    int rv = nng_rep0_open(&s->sock);
    if (rv == 0)
        rv = nng_listener_create(&l, s->sock, url);
    if (rv == 0)
        nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, (size_t)1 << 20);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv != 0) {
        if (nng_socket_id(s->sock) > 0)
            nng_close(s->sock);
        free(s);
        return ember_errorf(err, EMBER_EIO, "block server: cannot listen "
                            "on %s: %s", url, nng_strerror(rv));
    }
    snprintf(bound, cap, "%s", url);
    if (strncmp(url, "tcp://", 6) == 0) {
        nng_sockaddr sa;
        if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) == 0 &&
            sa.s_family == NNG_AF_INET) {
            const char *host = url + 6;
            const char *colon = strrchr(host, ':');
            int hl = colon ? (int)(colon - host) : (int)strlen(host);
            unsigned port = ((sa.s_in.sa_port & 0xff) << 8) |
                            (sa.s_in.sa_port >> 8);
            snprintf(bound, cap, "tcp://%.*s:%u", hl, host, port);
        }
    }
    for (int i = 0; i < SERVER_THREADS; i++)
        if (pthread_create(&s->threads[i], NULL, serve_main, s) == 0)
            s->nthreads++;
    if (s->nthreads == 0) {
        em_block_server_stop(s);
        return ember_errorf(err, EMBER_ENOMEM, "block server: no threads");
    }
    *out = s;
    return EMBER_OK;
}

void em_block_server_set_blocks(em_block_server *s, em_block_mgr *m)
{
    if (s)
        atomic_store(&s->blocks, m);
}

void em_block_server_stop(em_block_server *s)
{
    if (!s)
        return;
    nng_close(s->sock);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    free(s);
}

/* ------------------------------------------------------------- client */

struct em_fetch_client {
    nng_socket sock;
    atomic_int closed;   /* the socket was closed (cancel or close) */
    atomic_int canceled; /* em_fetch_cancel was called */
    char endpoint[512];
};

ember_status em_fetch_open(em_fetch_client **out, const char *endpoint,
                           int64_t timeout_ms, ember_error *err)
{
    *out = NULL;
    em_fetch_client *c = calloc(1, sizeof *c);
    if (!c)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    int rv = nng_req0_open(&c->sock);
    if (rv == 0) {
        nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 0);
        /* a request is sent once: a slow answer is not a lost one */
        nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO,
                          timeout_ms > 0 ? (nng_duration)timeout_ms
                                         : NNG_DURATION_INFINITE);
        nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO,
                          timeout_ms > 0 ? (nng_duration)timeout_ms
                                         : NNG_DURATION_INFINITE);
        rv = nng_dial(c->sock, endpoint, NULL, 0);
    }
    if (rv != 0) {
        if (nng_socket_id(c->sock) > 0)
            nng_close(c->sock);
        free(c);
        return ember_errorf(err, EMBER_EIO, "cannot reach the block server "
                            "at %s: %s", endpoint, nng_strerror(rv));
    }
    *out = c;
    return EMBER_OK;
}

void em_fetch_close(em_fetch_client *c)
{
    if (!c)
        return;
    if (!atomic_exchange(&c->closed, 1))
        nng_close(c->sock);
    free(c);
}

void em_fetch_cancel(em_fetch_client *c)
{
    if (!c)
        return;
    atomic_store(&c->canceled, 1);
    /* closing the socket ends a wait in nng_recv at once */
    if (!atomic_exchange(&c->closed, 1))
        nng_close(c->sock);
}

/* Parses one reply; appends blocks; sets *done_upto to how many of the
 * requested maps were served. */
static ember_status parse_reply(em_fetch_client *c, const uint8_t *d,
                                size_t n, const uint32_t *maps, uint32_t nmaps,
                                ember_buf *out, uint64_t *count,
                                uint32_t *served, uint32_t *failed_map,
                                ember_error *err)
{
    const uint8_t *p = d + 7, *end = d + n;
    if (n < 7 || memcmp(d, REQ_MAGIC, 4) != 0 || d[4] != 1 ||
        d[5] != T_REPLY)
        goto bad;
    if (d[6] == 1) {
        uint64_t map, len;
        if (ember_uvarint_get(&p, end, &map) != EMBER_OK || p >= end)
            goto bad;
        uint8_t code = *p++;
        if (ember_uvarint_get(&p, end, &len) != EMBER_OK ||
            len > (uint64_t)(end - p))
            goto bad;
        *failed_map = (uint32_t)map;
        return ember_errorf(err, code == CODE_MISSING ? EMBER_ENOTFOUND
                                 : code == CODE_CORRUPT ? EMBER_EINVAL
                                                        : EMBER_EIO,
                            "block server %s: %.*s", c->endpoint, (int)len,
                            (const char *)p);
    }
    /* status 0: the block count is a 5-byte padded varint */
    if (d[6] != 0 || end - p < 5)
        goto bad;
    uint64_t nb = 0;
    for (int k = 0; k < 5; k++)
        nb |= (uint64_t)(p[k] & 0x7f) << (7 * k);
    p += 5;
    if (nb == 0 || nb > nmaps)
        goto bad;
    for (uint64_t i = 0; i < nb; i++) {
        uint64_t map, nrec, len;
        if (ember_uvarint_get(&p, end, &map) != EMBER_OK ||
            ember_uvarint_get(&p, end, &nrec) != EMBER_OK ||
            ember_uvarint_get(&p, end, &len) != EMBER_OK ||
            len > (uint64_t)(end - p) || map != maps[i])
            goto bad;
        if (ember_buf_append(out, p, len) != EMBER_OK)
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        *count += nrec;
        p += len;
    }
    if (p != end)
        goto bad;
    *served = (uint32_t)nb;
    return EMBER_OK;
bad:
    *failed_map = maps[0];
    return ember_errorf(err, EMBER_EIO, "block server %s sent a malformed "
                        "reply", c->endpoint);
}

ember_status em_fetch_blocks(em_fetch_client *c, uint64_t shuffle_id,
                             uint32_t partition, const uint32_t *maps,
                             uint32_t n, uint64_t max_bytes, ember_buf *out,
                             uint64_t *count, uint32_t *failed_map,
                             ember_error *err)
{
    ember_buf req = ember_buf_heap();
    ember_status s = EMBER_OK;
    uint32_t done = 0;
    while (s == EMBER_OK && done < n) {
        uint32_t k = n - done;
        if (k > MAX_MAPS_PER_REQUEST)
            k = MAX_MAPS_PER_REQUEST;
        req.len = 0;
        header(&req, T_REQUEST);
        ember_uvarint_put(&req, shuffle_id);
        ember_uvarint_put(&req, partition);
        ember_uvarint_put(&req, max_bytes);
        ember_uvarint_put(&req, k);
        for (uint32_t i = 0; i < k; i++)
            if ((s = ember_uvarint_put(&req, maps[done + i])) != EMBER_OK)
                break;
        if (s != EMBER_OK) {
            *failed_map = maps[done];
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            break;
        }
        int rv = nng_send(c->sock, req.data, req.len, 0);
        void *rep = NULL;
        size_t rlen = 0;
        if (rv == 0)
            rv = nng_recv(c->sock, &rep, &rlen, NNG_FLAG_ALLOC);
        if (rv != 0) {
            *failed_map = maps[done];
            s = ember_errorf(err, EMBER_EIO, "fetching from %s: %s",
                             c->endpoint, nng_strerror(rv));
            break;
        }
        uint32_t served = 0;
        s = parse_reply(c, rep, rlen, maps + done, k, out, count, &served,
                        failed_map, err);
        nng_free(rep, rlen);
        done += served;
    }
    ember_buf_release(&req);
    return s;
}

ember_status em_fetch_block(em_fetch_client *c, uint64_t key,
                            uint32_t partition, ember_buf *out,
                            uint64_t *count, ember_error *err)
{
    if (atomic_load(&c->canceled))
        return ember_errorf(err, EMBER_ECANCELED, "fetch from %s canceled",
                            c->endpoint);
    uint8_t req[6 + 20];
    ember_buf rb = ember_buf_fixed(req, sizeof req);
    header(&rb, T_BLOCK_REQUEST);
    ember_uvarint_put(&rb, key);
    ember_uvarint_put(&rb, partition);
    int rv = nng_send(c->sock, rb.data, rb.len, 0);
    void *rep = NULL;
    size_t n = 0;
    if (rv == 0)
        rv = nng_recv(c->sock, &rep, &n, NNG_FLAG_ALLOC);
    if (rv != 0) {
        if (atomic_load(&c->canceled))
            return ember_errorf(err, EMBER_ECANCELED, "fetch from %s "
                                "canceled", c->endpoint);
        return ember_errorf(err, EMBER_EIO, "fetching a block from %s: %s",
                            c->endpoint, nng_strerror(rv));
    }
    const uint8_t *d = rep, *p = d + 7, *end = d + n;
    ember_status s;
    uint64_t nrec, len;
    if (n < 7 || memcmp(d, REQ_MAGIC, 4) != 0 || d[4] != 1 ||
        d[5] != T_BLOCK_REPLY || d[6] > 1)
        goto bad;
    if (d[6] == 1) {
        if (p >= end)
            goto bad;
        uint8_t code = *p++;
        if (ember_uvarint_get(&p, end, &len) != EMBER_OK ||
            len != (uint64_t)(end - p))
            goto bad;
        s = ember_errorf(err, code == CODE_MISSING ? EMBER_ENOTFOUND
                              : code == CODE_CORRUPT ? EMBER_EINVAL
                                                     : EMBER_EIO,
                         "block server %s: %.*s", c->endpoint, (int)len,
                         (const char *)p);
        nng_free(rep, n);
        return s;
    }
    if (ember_uvarint_get(&p, end, &nrec) != EMBER_OK ||
        ember_uvarint_get(&p, end, &len) != EMBER_OK ||
        len != (uint64_t)(end - p))
        goto bad;
    /* the count must be the block's: its copy is stored with it */
    ember_batch blk = {p, (size_t)len, nrec};
    ember_batch_cursor cur = ember_batch_cursor_of(&blk);
    const uint8_t *rec;
    size_t rl;
    uint64_t seen = 0;
    while ((s = ember_batch_next(&cur, &rec, &rl)) == EMBER_OK)
        seen++;
    if (s != EMBER_END || seen != nrec)
        goto bad;
    s = ember_buf_append(out, p, (size_t)len);
    nng_free(rep, n);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "out of memory");
    *count = nrec;
    return EMBER_OK;
bad:
    nng_free(rep, n);
    return ember_errorf(err, EMBER_EIO, "block server %s sent a malformed "
                        "reply", c->endpoint);
}
