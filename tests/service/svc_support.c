/*
 * svc_support.c — the raw-client inbox shared by the service tests (see
 * svc_support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc_support.h"

void inbox_recv(void *ctx, em_link *l, const uint8_t *d, size_t n)
{
    (void)l;
    inbox *b = ctx;
    pthread_mutex_lock(&b->mu);
    if (b->n < 64) {
        b->msg[b->n] = malloc(n ? n : 1);
        memcpy(b->msg[b->n], d, n);
        b->len[b->n++] = n;
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void inbox_closed(void *ctx, em_link *l, const char *why)
{
    (void)l;
    (void)why;
    inbox *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

em_link *inbox_dial(inbox *b, const char *url)
{
    em_link_handler h = {b, inbox_recv, inbox_closed};
    em_link *l = NULL;
    ember_error err = {0};
    if (em_link_dial(&l, url, &h, 10000, &err) != EMBER_OK)
        fail_msg("dial %s: %s", url, err.msg);
    return l;
}

void inbox_free(inbox *b)
{
    for (size_t k = 0; k < b->n; k++)
        free(b->msg[k]);
}

void inbox_get(inbox *b, size_t i, em_cmsg *m)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&b->mu);
    while (b->n <= i && !b->closed)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &until) == ETIMEDOUT)
            break;
    int have = b->n > i;
    pthread_mutex_unlock(&b->mu);
    if (!have)
        fail_msg("no reply %zu from emberd", i);
    ember_error err = {0};
    if (em_cmsg_decode(b->msg[i], b->len[i], m, &err) != EMBER_OK)
        fail_msg("emberd sent a bad message: %s", err.msg);
}

void inbox_expect(inbox *b, size_t i, em_cmsg_type t, em_cmsg *m)
{
    inbox_get(b, i, m);
    if (m->type != t)
        fail_msg("reply %zu: %s %.*s, not %s", i, em_cmsg_type_name(m->type),
                 (int)m->header.len, (const char *)m->header.data,
                 em_cmsg_type_name(t));
}

void send_msg(em_link *l, em_cmsg_type t, uint64_t req, const char *header,
              const void *body, size_t len)
{
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_cmsg_encode(&b, t, req, header,
                                    header ? strlen(header) : 0, body, len),
                     EMBER_OK);
    assert_int_equal(em_link_send(l, b.data, b.len), EMBER_OK);
    ember_buf_release(&b);
}

const char *header_text(const em_cmsg *m, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)m->header.len,
             (const char *)m->header.data);
    return out;
}
