/* Unit tests of the client <-> emberd envelope (msg/client_msg.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/batch.h"
#include "msg/client_msg.h"

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("'%s' does not contain '%s'", hay, needle);
}

/* Starts a hand-made message: magic, version, type, req_id. */
static void prefix(ember_buf *b, uint8_t version, uint8_t type,
                   uint64_t req_id)
{
    assert_int_equal(ember_buf_append(b, "EMCL", 4), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(b, version), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(b, type), EMBER_OK);
    assert_int_equal(ember_uvarint_put(b, req_id), EMBER_OK);
}

static void round_trip_every_type(void **state)
{
    (void)state;
    static const uint8_t body[] = {0, 1, 2, 0xff, 0};
    for (int t = EM_CMSG_HELLO; t <= EM_CMSG_TYPE_MAX; t++) {
        ember_buf b = ember_buf_heap();
        const char *h = "{\"job_id\":42}";
        uint64_t req = (uint64_t)t * 1000003u;
        assert_int_equal(em_cmsg_encode(&b, (em_cmsg_type)t, req, h,
                                        strlen(h), body, sizeof body),
                         EMBER_OK);
        em_cmsg m;
        ember_error err = {0};
        assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_OK);
        assert_int_equal(m.type, t);
        assert_int_equal(m.req_id, req);
        assert_int_equal(m.header.len, strlen(h));
        assert_memory_equal(m.header.data, h, strlen(h));
        assert_int_equal(m.body.len, sizeof body);
        assert_memory_equal(m.body.data, body, sizeof body);
        /* views point into the message */
        assert_true(m.body.data > b.data && m.body.data < b.data + b.len);
        assert_string_not_equal(em_cmsg_type_name((em_cmsg_type)t),
                                "UNKNOWN");
        ember_buf_release(&b);
    }
    assert_string_equal(em_cmsg_type_name(EM_CMSG_SUBMIT), "SUBMIT");
    assert_string_equal(em_cmsg_type_name(EM_CMSG_BROADCAST), "BROADCAST");
    assert_int_equal(EM_CMSG_BROADCAST, 19);
    assert_string_equal(em_cmsg_type_name(EM_CMSG_BROADCAST_DROP),
                        "BROADCAST_DROP");
    assert_int_equal(EM_CMSG_BROADCAST_DROP, 20);
    assert_string_equal(em_cmsg_type_name((em_cmsg_type)0), "UNKNOWN");
    assert_string_equal(em_cmsg_type_name((em_cmsg_type)99), "UNKNOWN");
}

static void empty_header_and_body_and_big_req_id(void **state)
{
    (void)state;
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_OK, UINT64_MAX, NULL, 0,
                                    NULL, 0),
                     EMBER_OK);
    assert_int_equal(b.len, 6 + 10 + 1 + 1);
    em_cmsg m;
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, NULL), EMBER_OK);
    assert_int_equal(m.type, EM_CMSG_OK);
    assert_true(m.req_id == UINT64_MAX);
    assert_int_equal(m.header.len, 0);
    assert_int_equal(m.body.len, 0);
    ember_buf_release(&b);
}

/* Every proper prefix of a valid message is refused, with a message. */
static void every_truncation_refused(void **state)
{
    (void)state;
    ember_buf b = ember_buf_heap();
    const char *h = "{\"app\":\"x\",\"version\":\"0.1.0\"}";
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_HELLO, 300, h, strlen(h),
                                    "body", 4),
                     EMBER_OK);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        em_cmsg m;
        ember_error err = {0};
        assert_int_equal(em_cmsg_decode(n ? copy : NULL, n, &m, &err),
                         EMBER_EINVAL);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(m.type, 0);
        assert_null(m.header.data);
        free(copy);
    }
    /* one byte more is refused too */
    assert_int_equal(ember_buf_put_u8(&b, 0), EMBER_OK);
    em_cmsg m;
    ember_error err = {0};
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "1 trailing bytes");
    ember_buf_release(&b);
}

static void bad_prefix(void **state)
{
    (void)state;
    em_cmsg m;
    ember_error err = {0};
    ember_buf b = ember_buf_heap();
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_LIST, 1, "{}", 2, NULL, 0),
                     EMBER_OK);
    b.data[0] = 'X';
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "bad magic");
    b.data[0] = 'E';
    b.data[4] = 2;
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err),
                     EMBER_EVERSION);
    assert_contains(err.msg, "version 2");
    b.data[4] = EM_CMSG_VERSION;
    b.data[5] = 0;
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "unknown client message type 0");
    b.data[5] = EM_CMSG_TYPE_MAX + 1;
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "unknown client message type 22");
    /* a kernel <-> executor message is not a client message */
    memcpy(b.data, "EMSG", 4);
    b.data[5] = 1;
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    ember_buf_release(&b);
}

static void bad_varints(void **state)
{
    (void)state;
    em_cmsg m;
    ember_error err = {0};
    /* overlong req_id: 0x80 0x00 */
    ember_buf b = ember_buf_heap();
    assert_int_equal(ember_buf_append(&b, "EMCL\x01\x04\x80\x00\x00\x00", 10),
                     EMBER_OK);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "'req_id' has an overlong varint");
    /* more than 64 bits */
    b.len = 0;
    assert_int_equal(ember_buf_append(&b, "EMCL\x01\x04", 6), EMBER_OK);
    for (int i = 0; i < 9; i++)
        ember_buf_put_u8(&b, 0xff);
    ember_buf_put_u8(&b, 0x02);
    ember_buf_put_u8(&b, 0);
    ember_buf_put_u8(&b, 0);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "longer than 64 bits (offset 6)");
    /* a varint that never ends */
    b.len = 0;
    assert_int_equal(ember_buf_append(&b, "EMCL\x01\x04\x01\xff\xff", 9),
                     EMBER_OK);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "'header' runs past the end of the message "
                             "(offset 7, 2 bytes left)");
    ember_buf_release(&b);
}

static void bad_lengths(void **state)
{
    (void)state;
    em_cmsg m;
    ember_error err = {0};
    ember_buf b = ember_buf_heap();
    /* a header longer than 1 MiB is refused by its length alone */
    prefix(&b, 1, EM_CMSG_SUBMIT, 5);
    ember_uvarint_put(&b, EM_CMSG_HEADER_MAX + 1);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "'header' length 1048577 exceeds its limit");
    /* a body over 1 GiB likewise */
    b.len = 0;
    prefix(&b, 1, EM_CMSG_SUBMIT, 5);
    ember_uvarint_put(&b, 2);
    ember_buf_append(&b, "{}", 2);
    ember_uvarint_put(&b, EM_CMSG_BODY_MAX + 1);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "'body' length 1073741825 exceeds its limit");
    /* a body length past the end */
    b.len = 0;
    prefix(&b, 1, EM_CMSG_SUBMIT, 5);
    ember_uvarint_put(&b, 0);
    ember_uvarint_put(&b, 900);
    ember_buf_append(&b, "abc", 3);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "'body' length 900 runs past the end of the "
                             "message (offset 8, 3 bytes left)");
    /* a NUL inside the header */
    b.len = 0;
    prefix(&b, 1, EM_CMSG_SUBMIT, 5);
    ember_uvarint_put(&b, 3);
    ember_buf_append(&b, "{\0}", 3);
    ember_uvarint_put(&b, 0);
    assert_int_equal(em_cmsg_decode(b.data, b.len, &m, &err), EMBER_EINVAL);
    assert_contains(err.msg, "'header' contains a NUL byte (offset 9)");
    ember_buf_release(&b);
}

static void encoder_refusals(void **state)
{
    (void)state;
    uint8_t mem[16];
    ember_buf b = ember_buf_fixed(mem, sizeof mem);
    assert_int_equal(em_cmsg_encode(&b, (em_cmsg_type)0, 1, NULL, 0, NULL, 0),
                     EMBER_EINVAL);
    assert_int_equal(em_cmsg_encode(&b, (em_cmsg_type)22, 1, NULL, 0, NULL,
                                    0),
                     EMBER_EINVAL);
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_OK, 1, "a\0b", 3, NULL, 0),
                     EMBER_EINVAL);
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_OK, 1, NULL, 2, NULL, 0),
                     EMBER_EINVAL);
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_OK, 1, NULL, 0, NULL, 2),
                     EMBER_EINVAL);
    assert_int_equal(em_cmsg_encode(NULL, EM_CMSG_OK, 1, NULL, 0, NULL, 0),
                     EMBER_EINVAL);
    /* a full fixed buffer: ENOSPC and nothing written */
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_OK, 1, "{}", 2, NULL, 0),
                     EMBER_OK);
    size_t used = b.len;
    assert_int_equal(em_cmsg_encode(&b, EM_CMSG_OK, 1, "{\"x\":1}", 7, NULL,
                                    0),
                     EMBER_ENOSPC);
    assert_int_equal(b.len, used);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_type),
        cmocka_unit_test(empty_header_and_body_and_big_req_id),
        cmocka_unit_test(every_truncation_refused),
        cmocka_unit_test(bad_prefix),
        cmocka_unit_test(bad_varints),
        cmocka_unit_test(bad_lengths),
        cmocka_unit_test(encoder_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
