/*
 * svc_support.h — what emberd_test and emberd_limits_test share: the
 * inbox of a raw em_link client that collects emberd's replies (checks,
 * files and sessions come from tests/support/driver_support.h).
 *
 * Compiled into each of those tests (tests/service/CMakeLists.txt); the
 * helpers fail the running cmocka test on error. Threads: an inbox is
 * filled on the link's thread and read on the test's; everything else
 * runs on the test's thread.
 */
#ifndef EMBER_TESTS_SVC_SUPPORT_H
#define EMBER_TESTS_SVC_SUPPORT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "driver_support.h"
#include "msg/client_msg.h"
#include "msg/link.h"

/*
 * Replies a raw link collects (the first 64), and whether the link was
 * closed. Initialise with {PTHREAD_MUTEX_INITIALIZER,
 * PTHREAD_COND_INITIALIZER}; free the messages with inbox_free.
 */
typedef struct inbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *msg[64];
    size_t len[64];
    size_t n;
    int closed;
} inbox;

/* The em_link_handler callbacks that fill an inbox (ctx is the inbox). */
void inbox_recv(void *ctx, em_link *l, const uint8_t *d, size_t n);
void inbox_closed(void *ctx, em_link *l, const char *why);

/* Dials url (10 s timeout) with b collecting the replies. */
em_link *inbox_dial(inbox *b, const char *url);

/* Frees the messages b holds. */
void inbox_free(inbox *b);

/* Waits (at most 30 s: a missing reply fails, never hangs) for message
 * number i and decodes it into *m (views into the inbox). */
void inbox_get(inbox *b, size_t i, em_cmsg *m);

/* Message i, which must be of type t (else the test fails showing it). */
void inbox_expect(inbox *b, size_t i, em_cmsg_type t, em_cmsg *m);

/* Encodes a client message (header: nullable JSON text) and sends it. */
void send_msg(em_link *l, em_cmsg_type t, uint64_t req, const char *header,
              const void *body, size_t len);

/* The header of m as a C string in out; returns out. */
const char *header_text(const em_cmsg *m, char *out, size_t cap);

#endif /* EMBER_TESTS_SVC_SUPPORT_H */
