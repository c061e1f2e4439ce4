/*
 * bcast_test.c — the kernel's broadcast table (bcast/bcast.h): chunks and
 * their checksums as executors receive them, the answers for unknown,
 * destroyed and out-of-range fetches, the REMOVE_BROADCAST messages that
 * unpersist, destroy and an application's close send, and the rows of the
 * state store's broadcasts table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcast/bcast.h"
#include "msg/msg.h"
#include "state/store.h"

static char tmpdir[64];
static char db[128];

/* What tell was handed: the (app, id) pairs of every REMOVE_BROADCAST. */
static uint64_t told[32][2];
static size_t ntold, nmsgs;
static char last_reason[64];

static void tell(void *ctx, const uint8_t *msg, size_t len)
{
    (void)ctx;
    em_msg_cursor c;
    em_bytes reason;
    assert_int_equal(em_msg_remove_broadcast_open(msg, len, &reason, &c,
                                                  NULL),
                     EMBER_OK);
    assert_int_equal(em_bytes_to_cstr(reason, last_reason,
                                      sizeof last_reason),
                     EMBER_OK);
    uint64_t app, id;
    while (em_msg_remove_broadcast_next(&c, &app, &id) == EMBER_OK) {
        assert_true(ntold < 32);
        told[ntold][0] = app;
        told[ntold][1] = id;
        ntold++;
    }
    nmsgs++;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember-bcast-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(db, sizeof db, "%s/state.db", tmpdir);
    ntold = nmsgs = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    em_store_remove_files(db, NULL);
    rmdir(tmpdir);
    return 0;
}

/* Asks b for chunk index of (app, id); the decoded answer in *m, whose
 * views point into *buf (the caller releases it). */
static void fetch(em_bcast *b, uint64_t app, uint64_t id, uint32_t index,
                  ember_buf *buf, em_msg_bcast_chunk *m)
{
    ember_buf req = ember_buf_heap();
    em_msg_bcast_fetch f = {app, id, index};
    assert_int_equal(em_msg_encode_bcast_fetch(&req, &f), EMBER_OK);
    *buf = ember_buf_heap();
    assert_int_equal(em_bcast_answer(b, req.data, req.len, buf, NULL),
                     EMBER_OK);
    ember_buf_release(&req);
    assert_int_equal(em_msg_decode_bcast_chunk(buf->data, buf->len, m,
                                               NULL),
                     EMBER_OK);
    assert_int_equal(m->app, app);
    assert_int_equal(m->bcast_id, id);
    assert_int_equal(m->index, index);
}

/* The error text of m as a C string (static). */
static const char *error_of(const em_msg_bcast_chunk *m)
{
    static char text[512];
    assert_int_equal(em_bytes_to_cstr(m->error, text, sizeof text), EMBER_OK);
    return text;
}

/* 2500 bytes in chunks of 1024: three chunks (1024, 1024, 452) whose
 * bytes put together are the value, each with its checksum. */
static void test_chunks(void **state)
{
    (void)state;
    em_bcast *b = NULL;
    uint8_t value[2500];
    for (size_t i = 0; i < sizeof value; i++)
        value[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(em_bcast_create(&b, 1024, NULL, tell, NULL, NULL),
                     EMBER_OK);
    assert_int_equal(em_bcast_put(b, 5, 1, value, sizeof value, NULL),
                     EMBER_OK);
    uint8_t got[2500];
    size_t at = 0;
    static const size_t sizes[] = {1024, 1024, 452};
    for (uint32_t i = 0; i < 3; i++) {
        ember_buf buf;
        em_msg_bcast_chunk m;
        fetch(b, 5, 1, i, &buf, &m);
        assert_int_equal(m.outcome, EM_BCAST_OK);
        assert_int_equal(m.nchunks, 3);
        assert_int_equal(m.total, 2500);
        assert_int_equal(m.data.len, sizes[i]);
        assert_int_equal(m.checksum,
                         em_bcast_checksum(value + at, sizes[i]));
        memcpy(got + at, m.data.data, m.data.len);
        at += m.data.len;
        ember_buf_release(&buf);
    }
    assert_memory_equal(got, value, sizeof value);
    /* the same id again is refused; another application may use it */
    ember_error err = {0};
    assert_int_equal(em_bcast_put(b, 5, 1, "x", 1, &err), EMBER_EEXIST);
    assert_string_equal(err.msg, "broadcast 1 of application 5 exists "
                                 "already");
    assert_int_equal(em_bcast_put(b, 6, 1, "x", 1, NULL), EMBER_OK);
    /* an empty value is one empty chunk */
    assert_int_equal(em_bcast_put(b, 5, 2, NULL, 0, NULL), EMBER_OK);
    ember_buf buf;
    em_msg_bcast_chunk m;
    fetch(b, 5, 2, 0, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_OK);
    assert_int_equal(m.nchunks, 1);
    assert_int_equal(m.total, 0);
    assert_int_equal(m.data.len, 0);
    ember_buf_release(&buf);
    em_bcast_destroy(b);
}

/* Unknown broadcasts, chunks past the end and malformed requests. */
static void test_refusals(void **state)
{
    (void)state;
    em_bcast *b = NULL;
    assert_int_equal(em_bcast_create(&b, 1024, NULL, NULL, NULL, NULL),
                     EMBER_OK);
    assert_int_equal(em_bcast_put(b, 1, 3, "abc", 3, NULL), EMBER_OK);
    ember_buf buf;
    em_msg_bcast_chunk m;
    fetch(b, 1, 4, 0, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_UNKNOWN);
    assert_string_equal(error_of(&m), "no broadcast 4 in application 1 "
                                      "(never created, or its session "
                                      "closed)");
    ember_buf_release(&buf);
    fetch(b, 1, 3, 1, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_FAILED);
    assert_string_equal(error_of(&m),
                        "broadcast 3 has 1 chunks; there is no chunk 1");
    ember_buf_release(&buf);
    ember_buf out = ember_buf_heap();
    ember_error err = {0};
    static const uint8_t junk[] = "EMSG\001\015\377";
    assert_int_equal(em_bcast_answer(b, junk, sizeof junk - 1, &out, &err),
                     EMBER_EINVAL);
    assert_int_equal(out.len, 0);
    assert_non_null(strstr(err.msg, "BCAST_FETCH"));
    ember_buf_release(&out);
    assert_int_equal(em_bcast_drop(b, 1, 9, EM_BCAST_DROP_UNPERSIST, &err),
                     EMBER_ENOTFOUND);
    assert_string_equal(err.msg, "no broadcast 9 in application 1");
    em_bcast *zero = NULL;
    assert_int_equal(em_bcast_create(&zero, 0, NULL, NULL, NULL, &err),
                     EMBER_EINVAL);
    assert_null(zero);
    em_bcast_destroy(b);
}

/* Unpersist keeps the bytes and tells the executors; destroy drops them
 * and fetches say so; closing the application forgets the rest. Every
 * step is in the broadcasts table. */
static void test_lifecycle(void **state)
{
    (void)state;
    em_store *st = NULL;
    /* the kernel's own connection makes the database first */
    assert_int_equal(em_store_open(&st, db, NULL), EMBER_OK);
    em_bcast *b = NULL;
    assert_int_equal(em_bcast_create(&b, 4096, db, tell, NULL, NULL),
                     EMBER_OK);
    assert_int_equal(em_bcast_put(b, 2, 1, "first", 5, NULL), EMBER_OK);
    assert_int_equal(em_bcast_put(b, 2, 2, "second", 6, NULL), EMBER_OK);
    assert_int_equal(em_bcast_put(b, 3, 1, "other", 5, NULL), EMBER_OK);
    char text[64];
    int64_t n = 0;
    assert_int_equal(em_store_query_text(st, "SELECT status || ' ' || bytes "
                                             "|| ' ' || chunks FROM "
                                             "broadcasts WHERE app_id = 2 "
                                             "AND bcast_id = 2",
                                         text, sizeof text, NULL),
                     EMBER_OK);
    assert_string_equal(text, "live 6 1");

    assert_int_equal(em_bcast_drop(b, 2, 1, EM_BCAST_DROP_UNPERSIST, NULL),
                     EMBER_OK);
    assert_int_equal(nmsgs, 1);
    assert_int_equal(ntold, 1);
    assert_int_equal(told[0][0], 2);
    assert_int_equal(told[0][1], 1);
    assert_string_equal(last_reason, "unpersisted");
    ember_buf buf;
    em_msg_bcast_chunk m;
    fetch(b, 2, 1, 0, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_OK);
    assert_memory_equal(m.data.data, "first", 5);
    ember_buf_release(&buf);

    assert_int_equal(em_bcast_drop(b, 2, 1, EM_BCAST_DROP_DESTROY, NULL),
                     EMBER_OK);
    assert_string_equal(last_reason, "destroyed");
    fetch(b, 2, 1, 0, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_DESTROYED);
    assert_string_equal(error_of(&m), "Attempted to use broadcast 1 after "
                                      "it was destroyed");
    ember_buf_release(&buf);
    ember_error err = {0};
    assert_int_equal(em_bcast_drop(b, 2, 1, EM_BCAST_DROP_UNPERSIST, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "Attempted to use broadcast 1 after it was "
                                 "destroyed");
    assert_int_equal(em_bcast_drop(b, 2, 1, EM_BCAST_DROP_DESTROY, NULL),
                     EMBER_OK);
    assert_int_equal(em_store_query_text(st, "SELECT group_concat(bcast_id "
                                             "|| ':' || status, ' ') FROM "
                                             "(SELECT * FROM broadcasts "
                                             "WHERE app_id = 2 ORDER BY "
                                             "bcast_id)",
                                         text, sizeof text, NULL),
                     EMBER_OK);
    assert_string_equal(text, "1:destroyed 2:live");

    ntold = 0;
    em_bcast_app_close(b, 2);
    assert_int_equal(ntold, 2);
    assert_string_equal(last_reason, "application closed");
    fetch(b, 2, 2, 0, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_UNKNOWN);
    ember_buf_release(&buf);
    /* application 3 is untouched */
    fetch(b, 3, 1, 0, &buf, &m);
    assert_int_equal(m.outcome, EM_BCAST_OK);
    ember_buf_release(&buf);
    assert_int_equal(em_store_query_int(st, "SELECT count(*) FROM "
                                            "broadcasts WHERE app_id = 2 "
                                            "AND status = 'destroyed'",
                                        &n, NULL),
                     EMBER_OK);
    assert_int_equal(n, 2);
    em_bcast_destroy(b);
    em_store_close(st);
}

/* The checksum is a fixed function of the bytes: these values are what
 * every build computes (executors and kernels of different builds must
 * agree), and one flipped bit changes it. */
static void test_checksum(void **state)
{
    (void)state;
    uint8_t v[37];
    for (size_t i = 0; i < sizeof v; i++)
        v[i] = (uint8_t)i;
    uint64_t a = em_bcast_checksum(v, sizeof v);
    assert_int_equal(a, em_bcast_checksum(v, sizeof v));
    v[20] ^= 4;
    assert_true(em_bcast_checksum(v, sizeof v) != a);
    v[20] ^= 4;
    /* the length counts: a zero byte more is another value */
    uint8_t w[38] = {0};
    memcpy(w, v, sizeof v);
    assert_true(em_bcast_checksum(w, sizeof w) != a);
    assert_int_equal(em_bcast_checksum(NULL, 0), em_bcast_checksum("", 0));
    assert_int_equal(em_bcast_checksum(v, sizeof v),
                     0x9d1d7360f636dfecULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test(test_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
