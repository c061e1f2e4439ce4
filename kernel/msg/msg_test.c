/* Unit tests of the kernel <-> executor messages and their codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/batch.h"
#include "msg/msg.h"

/* ----------------------------------------------------------- helpers */

static em_bytes view(const void *p, size_t n)
{
    em_bytes b;
    b.data = (const uint8_t *)p;
    b.len = n;
    return b;
}

static em_bytes cstr(const char *s)
{
    return view(s, strlen(s));
}

static void assert_view(em_bytes got, em_bytes want)
{
    assert_int_equal(got.len, want.len);
    if (want.len)
        assert_memory_equal(got.data, want.data, want.len);
}

/* Starts a hand-made message: magic, version, type. */
static void hdr(ember_buf *b, uint8_t version, uint8_t type)
{
    static const uint8_t m[4] = {'E', 'M', 'S', 'G'};
    assert_int_equal(ember_buf_append(b, m, 4), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(b, version), EMBER_OK);
    assert_int_equal(ember_buf_put_u8(b, type), EMBER_OK);
}

static void put_v(ember_buf *b, uint64_t v)
{
    assert_int_equal(ember_uvarint_put(b, v), EMBER_OK);
}

static void put_raw(ember_buf *b, const void *p, size_t n)
{
    assert_int_equal(ember_buf_append(b, p, n), EMBER_OK);
}

/* The padded 5-byte count of a batch. */
static void put_count(ember_buf *b, uint32_t c)
{
    uint8_t p[5] = {(uint8_t)(0x80 | (c & 0x7f)),
                    (uint8_t)(0x80 | ((c >> 7) & 0x7f)),
                    (uint8_t)(0x80 | ((c >> 14) & 0x7f)),
                    (uint8_t)(0x80 | ((c >> 21) & 0x7f)), (uint8_t)(c >> 28)};
    put_raw(b, p, sizeof p);
}

/* A string of n bytes, none of them NUL. */
static char *long_string(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i % 26);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------- names */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(em_msg_type_name(EM_MSG_LAUNCH), "LAUNCH");
    assert_string_equal(em_msg_type_name(EM_MSG_COMMIT_REPLY), "COMMIT_REPLY");
    assert_string_equal(em_msg_type_name((em_msg_type)0), "UNKNOWN");
    assert_string_equal(em_msg_type_name(EM_MSG_REMOVE_SHUFFLES),
                        "REMOVE_SHUFFLES");
    assert_string_equal(em_msg_type_name(EM_MSG_REMOVE_BLOCKS),
                        "REMOVE_BLOCKS");
    assert_string_equal(em_msg_type_name(EM_MSG_REMOVE_BROADCAST),
                        "REMOVE_BROADCAST");
    assert_string_equal(em_msg_type_name(EM_MSG_REPLICATE), "REPLICATE");
    assert_string_equal(em_msg_type_name(EM_MSG_BLOCK_STORED),
                        "BLOCK_STORED");
    assert_string_equal(em_msg_type_name((em_msg_type)18), "UNKNOWN");
    assert_string_equal(em_task_state_name(EM_TASK_FETCH_FAILED),
                        "FETCH_FAILED");
    assert_string_equal(em_task_state_name(EM_TASK_KILLED), "KILLED");
    assert_string_equal(em_task_state_name(0), "UNKNOWN");
    assert_string_equal(em_task_state_name(6), "UNKNOWN");

    char buf[6];
    assert_int_equal(em_bytes_to_cstr(cstr("hello"), buf, sizeof buf),
                     EMBER_OK);
    assert_string_equal(buf, "hello");
    assert_int_equal(em_bytes_to_cstr(cstr("hello!"), buf, sizeof buf),
                     EMBER_ENOSPC);
    assert_string_equal(buf, "");
    assert_int_equal(em_bytes_to_cstr(view(NULL, 0), buf, 1), EMBER_OK);
    assert_string_equal(buf, "");
    assert_int_equal(em_bytes_to_cstr(view(NULL, 0), buf, 0), EMBER_ENOSPC);
}

/* ------------------------------------------------ single-message round trips */

static void test_register_round_trip(void **state)
{
    (void)state;
    char *big = long_string(EM_MSG_STR_MAX);
    struct {
        em_bytes id, host, ep;
        uint32_t slots, pid;
    } cases[] = {
        {cstr("exec-1"), cstr("node7.example"), cstr("tcp://10.0.0.7:7077"),
         8, 4242},
        {cstr(""), cstr(""), cstr(""), 0, 0},
        {view(big, EM_MSG_STR_MAX), cstr("h"), view(big, 1000), UINT32_MAX,
         UINT32_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ember_buf out = ember_buf_heap();
        ember_error err;
        em_msg_register m = {cases[i].id, cases[i].host, cases[i].ep,
                             cases[i].slots, cases[i].pid};
        em_msg_register got;
        em_msg_type t;
        assert_int_equal(em_msg_encode_register(&out, &m), EMBER_OK);
        assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err),
                         EMBER_OK);
        assert_int_equal(t, EM_MSG_REGISTER);
        assert_int_equal(em_msg_decode_register(out.data, out.len, &got, &err),
                         EMBER_OK);
        assert_view(got.executor_id, m.executor_id);
        assert_view(got.host, m.host);
        assert_view(got.endpoint, m.endpoint);
        assert_int_equal(got.slots, m.slots);
        assert_int_equal(got.pid, m.pid);
        /* views point into the message, not copies */
        if (got.host.len)
            assert_true(got.host.data > out.data &&
                        got.host.data < out.data + out.len);
        ember_buf_release(&out);
    }

    /* strings the format cannot carry are refused and nothing is written */
    ember_buf out = ember_buf_heap();
    em_msg_register m = {cstr("x"), cstr("y"), cstr("z"), 1, 1};
    assert_int_equal(em_msg_encode_register(&out, &m), EMBER_OK);
    size_t len = out.len;
    m.host = view("a\0b", 3);
    assert_int_equal(em_msg_encode_register(&out, &m), EMBER_EINVAL);
    free(big);
    big = long_string(EM_MSG_STR_MAX + 1);
    m.host = view(big, EM_MSG_STR_MAX);
    m.endpoint = view(big, EM_MSG_STR_MAX + 1);
    assert_int_equal(em_msg_encode_register(&out, &m), EMBER_EINVAL);
    m.endpoint = view(NULL, 3);
    assert_int_equal(em_msg_encode_register(&out, &m), EMBER_EINVAL);
    assert_int_equal(out.len, len);
    ember_buf_release(&out);
    free(big);
}

static void test_registered_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        ember_buf out = ember_buf_heap();
        ember_error err;
        em_msg_registered m = {(uint8_t)i, cstr(i ? "" : "too many executors"),
                               i ? UINT64_MAX : 0};
        em_msg_registered got;
        assert_int_equal(em_msg_encode_registered(&out, &m), EMBER_OK);
        assert_int_equal(
            em_msg_decode_registered(out.data, out.len, &got, &err), EMBER_OK);
        assert_int_equal(got.accepted, m.accepted);
        assert_view(got.reason, m.reason);
        assert_true(got.app_id == m.app_id);
        ember_buf_release(&out);
    }
    ember_buf out = ember_buf_heap();
    em_msg_registered bad = {2, cstr(""), 1};
    assert_int_equal(em_msg_encode_registered(&out, &bad), EMBER_EINVAL);
    assert_int_equal(out.len, 0);
    ember_buf_release(&out);
}

static void test_stage_round_trip(void **state)
{
    (void)state;
    size_t big_n = 3u << 20;
    uint8_t *big = malloc(big_n);
    assert_non_null(big);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (uint8_t)(i * 7); /* includes zero bytes */
    static const uint8_t zeros[] = {0, 0, 0, 1, 0};
    em_msg_stage cases[] = {
        {7, 0, 3, view(zeros, sizeof zeros)},
        {0, 0, 0, view(NULL, 0)},
        {UINT64_MAX, UINT32_MAX, UINT64_MAX, view(big, big_n)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ember_buf out = ember_buf_heap();
        ember_error err;
        em_msg_stage got;
        assert_int_equal(em_msg_encode_stage(&out, &cases[i]), EMBER_OK);
        assert_int_equal(em_msg_decode_stage(out.data, out.len, &got, &err),
                         EMBER_OK);
        assert_true(got.stage_id == cases[i].stage_id);
        assert_int_equal(got.attempt, cases[i].attempt);
        assert_true(got.job_id == cases[i].job_id);
        assert_view(got.plan, cases[i].plan);
        ember_buf_release(&out);
    }
    free(big);
}

static void test_small_messages_round_trip(void **state)
{
    (void)state;
    ember_error err;
    for (int edge = 0; edge < 3; edge++) {
        uint64_t v64 = edge == 0 ? 0 : edge == 1 ? 127 : UINT64_MAX;
        uint32_t v32 = edge == 0 ? 0 : edge == 1 ? 128 : UINT32_MAX;
        ember_buf out = ember_buf_heap();

        em_msg_commit_ask ask = {v64, v64 ^ 5, v32, v32 ^ 1, v32};
        em_msg_commit_ask ask2;
        assert_int_equal(em_msg_encode_commit_ask(&out, &ask), EMBER_OK);
        assert_int_equal(
            em_msg_decode_commit_ask(out.data, out.len, &ask2, &err), EMBER_OK);
        assert_true(ask2.task_id == ask.task_id);
        assert_true(ask2.stage_id == ask.stage_id);
        assert_int_equal(ask2.stage_attempt, ask.stage_attempt);
        assert_int_equal(ask2.partition, ask.partition);
        assert_int_equal(ask2.attempt, ask.attempt);
        out.len = 0;

        em_msg_commit_reply rep = {v64, (uint8_t)(edge & 1)};
        em_msg_commit_reply rep2;
        assert_int_equal(em_msg_encode_commit_reply(&out, &rep), EMBER_OK);
        assert_int_equal(
            em_msg_decode_commit_reply(out.data, out.len, &rep2, &err),
            EMBER_OK);
        assert_true(rep2.task_id == v64);
        assert_int_equal(rep2.allowed, edge & 1);
        out.len = 0;

        em_msg_heartbeat hb = {cstr(edge ? "exec-42" : ""), v32};
        em_msg_heartbeat hb2;
        assert_int_equal(em_msg_encode_heartbeat(&out, &hb), EMBER_OK);
        assert_int_equal(
            em_msg_decode_heartbeat(out.data, out.len, &hb2, &err), EMBER_OK);
        assert_view(hb2.executor_id, hb.executor_id);
        assert_int_equal(hb2.running, v32);
        out.len = 0;

        em_msg_shutdown sd = {cstr(edge ? "application finished" : "")};
        em_msg_shutdown sd2;
        assert_int_equal(em_msg_encode_shutdown(&out, &sd), EMBER_OK);
        assert_int_equal(em_msg_decode_shutdown(out.data, out.len, &sd2, &err),
                         EMBER_OK);
        assert_view(sd2.reason, sd.reason);
        ember_buf_release(&out);
    }
    ember_buf out = ember_buf_heap();
    em_msg_commit_reply bad = {1, 2};
    assert_int_equal(em_msg_encode_commit_reply(&out, &bad), EMBER_EINVAL);
    assert_int_equal(out.len, 0);
    ember_buf_release(&out);
}

static void test_encode_into_full_buffer(void **state)
{
    (void)state;
    uint8_t mem[12];
    ember_buf out = ember_buf_fixed(mem, sizeof mem);
    em_msg_heartbeat hb = {cstr("exec-1"), 3};
    assert_int_equal(em_msg_encode_heartbeat(&out, &hb), EMBER_ENOSPC);
    assert_int_equal(out.len, 0);
    em_msg_shutdown sd = {cstr("bye")};
    assert_int_equal(em_msg_encode_shutdown(&out, &sd), EMBER_OK);
    assert_int_equal(out.len, 10);

    /* a batch entry that does not fit leaves the batch as it was */
    em_msg_batch b;
    out = ember_buf_fixed(mem, sizeof mem);
    assert_int_equal(em_msg_launch_begin(&b, &out), EMBER_OK);
    em_msg_task t = {UINT64_MAX, 1, 1, 1, 1, 1, 0};
    assert_int_equal(em_msg_launch_add(&b, &t), EMBER_ENOSPC);
    assert_int_equal(out.len, 11);
    assert_int_equal(b.count, 0);
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
    em_msg_cursor c;
    assert_int_equal(em_msg_launch_open(out.data, out.len, &c, NULL),
                     EMBER_OK);
    assert_int_equal(em_msg_launch_next(&c, &t), EMBER_END);
}

/* ---------------------------------------------------------------- batches */

static em_msg_task task_of(uint32_t i)
{
    em_msg_task t;
    t.task_id = (uint64_t)i * 1000003u;
    t.job_id = i % 7;
    t.stage_id = i % 2 ? UINT64_MAX - i : i;
    t.stage_attempt = i % 3;
    t.partition = i;
    t.attempt = i % 5 == 4 ? UINT32_MAX : i % 5;
    t.speculative = (uint8_t)(i % 2);
    return t;
}

static void assert_task(const em_msg_task *got, const em_msg_task *want)
{
    assert_true(got->task_id == want->task_id);
    assert_true(got->job_id == want->job_id);
    assert_true(got->stage_id == want->stage_id);
    assert_int_equal(got->stage_attempt, want->stage_attempt);
    assert_int_equal(got->partition, want->partition);
    assert_int_equal(got->attempt, want->attempt);
    assert_int_equal(got->speculative, want->speculative);
}

static void test_launch_batches(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {0, 1, 100000};
    for (size_t k = 0; k < 3; k++) {
        ember_buf out = ember_buf_heap();
        ember_error err;
        em_msg_batch b;
        em_msg_cursor c;
        em_msg_task t;
        assert_int_equal(em_msg_launch_begin(&b, &out), EMBER_OK);
        for (uint32_t i = 0; i < sizes[k]; i++) {
            t = task_of(i);
            assert_int_equal(em_msg_launch_add(&b, &t), EMBER_OK);
        }
        assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
        if (sizes[k] == 0) /* header and the fixed 5-byte count */
            assert_int_equal(out.len, EM_MSG_HEADER_LEN + EM_MSG_COUNT_LEN);
        assert_int_equal(em_msg_launch_open(out.data, out.len, &c, &err),
                         EMBER_OK);
        assert_int_equal(c.remaining, sizes[k]);
        for (uint32_t i = 0; i < sizes[k]; i++) {
            em_msg_task want = task_of(i);
            assert_int_equal(c.index, i);
            assert_int_equal(em_msg_launch_next(&c, &t), EMBER_OK);
            assert_task(&t, &want);
        }
        assert_int_equal(em_msg_launch_next(&c, &t), EMBER_END);
        assert_int_equal(em_msg_launch_next(&c, &t), EMBER_END);
        ember_buf_release(&out);
    }
    ember_buf out = ember_buf_heap();
    em_msg_batch b;
    em_msg_task bad = task_of(1);
    bad.speculative = 2;
    assert_int_equal(em_msg_launch_begin(&b, &out), EMBER_OK);
    assert_int_equal(em_msg_launch_add(&b, &bad), EMBER_EINVAL);
    assert_int_equal(b.count, 0);
    assert_int_equal(out.len, 11);
    ember_buf_release(&out);
}

/* Update i of the test batches: every state in turn, with its fields. */
static em_msg_update update_of(uint32_t i)
{
    static const uint8_t result[] = {0, 1, 0, 2, 0xFF};
    em_msg_update u;
    memset(&u, 0, sizeof u);
    u.task_id = i;
    u.state = (uint8_t)(EM_TASK_RUNNING + i % 5);
    u.run_us = (uint64_t)i * 17;
    u.records_in = i % 3 ? i : UINT64_MAX;
    u.records_out = i / 2;
    u.bytes_out = (uint64_t)i << 20;
    switch (u.state) {
    case EM_TASK_FINISHED:
        u.result = view(result, i % 2 ? 5 : 0);
        u.accums = view(result + 1, i % 3 ? 4 : 0);
        u.blocks = view(result + 2, i % 4 ? 3 : 0);
        break;
    case EM_TASK_FAILED: u.error = cstr("java.lang.NullPointerException"); break;
    case EM_TASK_KILLED: u.error = cstr(i % 2 ? "" : "killed by user"); break;
    case EM_TASK_FETCH_FAILED:
        u.error = cstr("connection refused");
        u.shuffle_id = i % 2 ? UINT64_MAX : 0;
        u.map_index = i % 2 ? UINT32_MAX : i;
        u.lost_executor = cstr("exec-9");
        break;
    default: break;
    }
    return u;
}

static void assert_update(const em_msg_update *got, const em_msg_update *want)
{
    assert_true(got->task_id == want->task_id);
    assert_int_equal(got->state, want->state);
    assert_true(got->run_us == want->run_us);
    assert_true(got->records_in == want->records_in);
    assert_true(got->records_out == want->records_out);
    assert_true(got->bytes_out == want->bytes_out);
    assert_view(got->result, want->result);
    assert_view(got->accums, want->accums);
    assert_view(got->blocks, want->blocks);
    assert_view(got->error, want->error);
    assert_true(got->shuffle_id == want->shuffle_id);
    assert_int_equal(got->map_index, want->map_index);
    assert_view(got->lost_executor, want->lost_executor);
}

static void test_status_batches(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {0, 1, 5, 100000};
    for (size_t k = 0; k < 4; k++) {
        ember_buf out = ember_buf_heap();
        ember_error err;
        em_msg_batch b;
        em_msg_cursor c;
        em_msg_update u;
        assert_int_equal(em_msg_status_begin(&b, &out), EMBER_OK);
        for (uint32_t i = 0; i < sizes[k]; i++) {
            u = update_of(i);
            assert_int_equal(em_msg_status_add(&b, &u), EMBER_OK);
        }
        assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
        assert_int_equal(em_msg_status_open(out.data, out.len, &c, &err),
                         EMBER_OK);
        for (uint32_t i = 0; i < sizes[k]; i++) {
            em_msg_update want = update_of(i);
            assert_int_equal(em_msg_status_next(&c, &u), EMBER_OK);
            assert_update(&u, &want);
        }
        assert_int_equal(em_msg_status_next(&c, &u), EMBER_END);
        ember_buf_release(&out);
    }

    /* fields that do not apply to the state are refused, not dropped */
    ember_buf out = ember_buf_heap();
    em_msg_batch b;
    assert_int_equal(em_msg_status_begin(&b, &out), EMBER_OK);
    em_msg_update u = update_of(0); /* RUNNING */
    u.error = cstr("oops");
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(2); /* FAILED */
    u.result = cstr("r");
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(2);
    u.accums = cstr("a");
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(4); /* KILLED */
    u.blocks = cstr("b");
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(1); /* FINISHED */
    u.map_index = 3;
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(4); /* KILLED */
    u.lost_executor = cstr("exec-1");
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(0);
    u.state = 6;
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    u = update_of(3); /* FETCH_FAILED */
    u.lost_executor = view("a\0", 2);
    assert_int_equal(em_msg_status_add(&b, &u), EMBER_EINVAL);
    assert_int_equal(b.count, 0);
    assert_int_equal(out.len, 11);
    ember_buf_release(&out);
}

static void test_kill_batches(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {0, 1, 100000};
    for (size_t k = 0; k < 3; k++) {
        ember_buf out = ember_buf_heap();
        ember_error err;
        em_msg_batch b;
        em_msg_cursor c;
        em_bytes reason;
        uint64_t id;
        const char *why = k == 0 ? NULL : "job 3 cancelled";
        assert_int_equal(em_msg_kill_begin(&b, &out, why), EMBER_OK);
        for (uint32_t i = 0; i < sizes[k]; i++)
            assert_int_equal(em_msg_kill_add(&b, i == 0 ? UINT64_MAX : i),
                             EMBER_OK);
        assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
        assert_int_equal(
            em_msg_kill_open(out.data, out.len, &reason, &c, &err), EMBER_OK);
        assert_view(reason, cstr(why ? why : ""));
        for (uint32_t i = 0; i < sizes[k]; i++) {
            assert_int_equal(em_msg_kill_next(&c, &id), EMBER_OK);
            assert_true(id == (i == 0 ? UINT64_MAX : i));
        }
        assert_int_equal(em_msg_kill_next(&c, &id), EMBER_END);
        ember_buf_release(&out);
    }
    ember_buf out = ember_buf_heap();
    em_msg_batch b;
    char *big = long_string(EM_MSG_STR_MAX + 1);
    assert_int_equal(em_msg_kill_begin(&b, &out, big), EMBER_EINVAL);
    assert_int_equal(out.len, 0);
    free(big);
    ember_buf_release(&out);
}

static void test_remove_shuffles(void **state)
{
    (void)state;
    ember_buf out = ember_buf_heap();
    ember_error err;
    em_msg_batch b;
    em_msg_cursor c;
    em_bytes reason;
    uint64_t id;
    assert_int_equal(em_msg_remove_shuffles_begin(&b, &out, "app 3 closed"),
                     EMBER_OK);
    assert_int_equal(em_msg_remove_shuffles_add(&b, 7), EMBER_OK);
    assert_int_equal(em_msg_remove_shuffles_add(&b, UINT64_MAX), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
    em_msg_type t;
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_int_equal(t, EM_MSG_REMOVE_SHUFFLES);
    assert_int_equal(em_msg_remove_shuffles_open(out.data, out.len, &reason,
                                                 &c, &err),
                     EMBER_OK);
    assert_view(reason, cstr("app 3 closed"));
    assert_int_equal(em_msg_remove_shuffles_next(&c, &id), EMBER_OK);
    assert_true(id == 7);
    assert_int_equal(em_msg_remove_shuffles_next(&c, &id), EMBER_OK);
    assert_true(id == UINT64_MAX);
    assert_int_equal(em_msg_remove_shuffles_next(&c, &id), EMBER_END);
    /* a KILL is not a REMOVE_SHUFFLES, and the other way round */
    assert_int_equal(em_msg_kill_open(out.data, out.len, &reason, &c, &err),
                     EMBER_EINVAL);
    out.len = out.len - 1; /* truncated */
    assert_int_equal(em_msg_remove_shuffles_open(out.data, out.len, &reason,
                                                 &c, &err),
                     EMBER_EINVAL);
    ember_buf_release(&out);
}

static void test_remove_blocks(void **state)
{
    (void)state;
    ember_buf out = ember_buf_heap();
    ember_error err;
    em_msg_batch b;
    em_msg_cursor c;
    em_bytes reason;
    uint64_t key;
    assert_int_equal(em_msg_remove_blocks_begin(&b, &out, "unpersist"),
                     EMBER_OK);
    assert_int_equal(em_msg_remove_blocks_add(&b, (uint64_t)3 << 32 | 9),
                     EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
    em_msg_type t;
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_int_equal(t, EM_MSG_REMOVE_BLOCKS);
    assert_string_equal(em_msg_type_name(t), "REMOVE_BLOCKS");
    assert_int_equal(em_msg_remove_blocks_open(out.data, out.len, &reason, &c,
                                               &err),
                     EMBER_OK);
    assert_view(reason, cstr("unpersist"));
    assert_int_equal(em_msg_remove_blocks_next(&c, &key), EMBER_OK);
    assert_true(key == ((uint64_t)3 << 32 | 9));
    assert_int_equal(em_msg_remove_blocks_next(&c, &key), EMBER_END);
    /* a REMOVE_SHUFFLES is not a REMOVE_BLOCKS */
    assert_int_equal(em_msg_remove_shuffles_open(out.data, out.len, &reason,
                                                 &c, &err),
                     EMBER_EINVAL);
    ember_buf_release(&out);
}

/* BCAST_FETCH, BCAST_CHUNK (a chunk and a refusal) and REMOVE_BROADCAST
 * round trip; what does not fit an outcome is refused both ways. */
static void test_broadcast_messages(void **state)
{
    (void)state;
    ember_buf out = ember_buf_heap();
    ember_error err;
    em_msg_type t;
    em_msg_bcast_fetch f = {3, UINT64_MAX, 7}, f2;
    assert_int_equal(em_msg_encode_bcast_fetch(&out, &f), EMBER_OK);
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_int_equal(t, EM_MSG_BCAST_FETCH);
    assert_string_equal(em_msg_type_name(t), "BCAST_FETCH");
    assert_int_equal(em_msg_decode_bcast_fetch(out.data, out.len, &f2, &err),
                     EMBER_OK);
    assert_int_equal(f2.app, 3);
    assert_true(f2.bcast_id == UINT64_MAX);
    assert_int_equal(f2.index, 7);

    static const uint8_t bytes[] = {1, 0, 2, 0xff};
    em_msg_bcast_chunk c = {3, 1, 2, EM_BCAST_OK, 3, 9000, UINT64_MAX - 1,
                            view(bytes, sizeof bytes), view(NULL, 0)};
    em_msg_bcast_chunk c2;
    out.len = 0;
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &c), EMBER_OK);
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_string_equal(em_msg_type_name(t), "BCAST_CHUNK");
    assert_int_equal(em_msg_decode_bcast_chunk(out.data, out.len, &c2, &err),
                     EMBER_OK);
    assert_int_equal(c2.app, 3);
    assert_int_equal(c2.bcast_id, 1);
    assert_int_equal(c2.index, 2);
    assert_int_equal(c2.outcome, EM_BCAST_OK);
    assert_int_equal(c2.nchunks, 3);
    assert_int_equal(c2.total, 9000);
    assert_true(c2.checksum == UINT64_MAX - 1);
    assert_view(c2.data, view(bytes, sizeof bytes));
    assert_int_equal(c2.error.len, 0);
    /* a fetch is not a chunk */
    assert_int_equal(em_msg_decode_bcast_fetch(out.data, out.len, &f2, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "expected a BCAST_FETCH message but got a "
                                 "BCAST_CHUNK message");

    /* a chunk index the count does not have, on the wire: refused */
    size_t at_index = EM_MSG_HEADER_LEN + 2; /* after app 3, id 1 */
    assert_int_equal(out.data[at_index], 2);
    out.data[at_index] = 3;
    assert_int_equal(em_msg_decode_bcast_chunk(out.data, out.len, &c2, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "BCAST_CHUNK: field 'index' value 3 is not "
                                 "below nchunks 3 (offset 8)");
    out.data[at_index] = 2;
    out.data[at_index + 1] = 4; /* the outcome */
    assert_int_equal(em_msg_decode_bcast_chunk(out.data, out.len, &c2, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "BCAST_CHUNK: field 'outcome' value 4 is "
                                 "not an outcome (0..3) (offset 9)");

    em_msg_bcast_chunk r = {3, 1, 0, EM_BCAST_DESTROYED, 0, 0, 0,
                            view(NULL, 0), cstr("destroyed")};
    out.len = 0;
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &r), EMBER_OK);
    assert_int_equal(em_msg_decode_bcast_chunk(out.data, out.len, &c2, &err),
                     EMBER_OK);
    assert_int_equal(c2.outcome, EM_BCAST_DESTROYED);
    assert_view(c2.error, cstr("destroyed"));
    assert_int_equal(c2.data.len, 0);

    /* the encoder refuses what the decoder would */
    size_t before = out.len;
    em_msg_bcast_chunk bad = c;
    bad.index = 3;
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &bad), EMBER_EINVAL);
    bad = c;
    bad.total = 3;
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &bad), EMBER_EINVAL);
    bad = c;
    bad.error = cstr("no");
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &bad), EMBER_EINVAL);
    bad = r;
    bad.data = view(bytes, 1);
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &bad), EMBER_EINVAL);
    bad = r;
    bad.nchunks = 1;
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &bad), EMBER_EINVAL);
    bad = r;
    bad.outcome = 4;
    assert_int_equal(em_msg_encode_bcast_chunk(&out, &bad), EMBER_EINVAL);
    assert_int_equal(out.len, before);

    em_msg_batch b;
    em_msg_cursor cur;
    em_bytes reason;
    uint64_t app, id;
    out.len = 0;
    assert_int_equal(em_msg_remove_broadcast_begin(&b, &out, "destroyed"),
                     EMBER_OK);
    assert_int_equal(em_msg_remove_broadcast_add(&b, 3, 1), EMBER_OK);
    assert_int_equal(em_msg_remove_broadcast_add(&b, UINT64_MAX, 200),
                     EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_int_equal(t, EM_MSG_REMOVE_BROADCAST);
    assert_int_equal(em_msg_remove_broadcast_open(out.data, out.len, &reason,
                                                  &cur, &err),
                     EMBER_OK);
    assert_view(reason, cstr("destroyed"));
    assert_int_equal(em_msg_remove_broadcast_next(&cur, &app, &id),
                     EMBER_OK);
    assert_int_equal(app, 3);
    assert_int_equal(id, 1);
    assert_int_equal(em_msg_remove_broadcast_next(&cur, &app, &id),
                     EMBER_OK);
    assert_true(app == UINT64_MAX);
    assert_int_equal(id, 200);
    assert_int_equal(em_msg_remove_broadcast_next(&cur, &app, &id),
                     EMBER_END);
    /* a count the bytes cannot hold (two varints an entry) */
    out.data[out.len - 1] = 0x7f; /* 200's last byte: now a valid 1-byte */
    out.len -= 2;                 /* drop (UINT64_MAX..., 200) partly */
    assert_int_equal(em_msg_remove_broadcast_open(out.data, out.len, &reason,
                                                  &cur, &err),
                     EMBER_EINVAL);
    /* a REMOVE_BLOCKS is not a REMOVE_BROADCAST */
    out.len = 0;
    assert_int_equal(em_msg_remove_blocks_begin(&b, &out, "x"), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
    assert_int_equal(em_msg_remove_broadcast_open(out.data, out.len, &reason,
                                                  &cur, &err),
                     EMBER_EINVAL);
    ember_buf_release(&out);
}

/* REPLICATE and BLOCK_STORED round trip; an empty level, endpoint or
 * report is refused both ways, naming the field. */
static void test_replication_messages(void **state)
{
    (void)state;
    ember_buf out = ember_buf_heap();
    ember_error err;
    em_msg_type t;
    em_msg_replicate m = {7, UINT64_MAX, UINT32_MAX, cstr("MEMORY_ONLY_2"),
                          cstr("exec-2"), cstr("ipc:///tmp/x/blocks.sock")};
    em_msg_replicate m2;
    assert_int_equal(em_msg_encode_replicate(&out, &m), EMBER_OK);
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_int_equal(t, EM_MSG_REPLICATE);
    assert_int_equal(em_msg_decode_replicate(out.data, out.len, &m2, &err),
                     EMBER_OK);
    assert_int_equal(m2.app, 7);
    assert_true(m2.dataset == UINT64_MAX);
    assert_true(m2.partition == UINT32_MAX);
    assert_view(m2.level, cstr("MEMORY_ONLY_2"));
    assert_view(m2.source_id, cstr("exec-2"));
    assert_view(m2.source_endpoint, cstr("ipc:///tmp/x/blocks.sock"));
    /* the level's length byte set to 0: the rest is then trailing */
    size_t at_level = EM_MSG_HEADER_LEN + 1 + 10 + 5;
    assert_int_equal(out.data[at_level], 13);
    out.data[at_level] = 0;
    assert_int_equal(em_msg_decode_replicate(out.data, at_level + 1, &m2,
                                             &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "REPLICATE: field 'level' is empty "
                                 "(offset 22)");
    assert_int_equal(m2.app, 0);

    size_t before = out.len;
    em_msg_replicate bad = m;
    bad.level = cstr("");
    assert_int_equal(em_msg_encode_replicate(&out, &bad), EMBER_EINVAL);
    bad = m;
    bad.source_endpoint = cstr("");
    assert_int_equal(em_msg_encode_replicate(&out, &bad), EMBER_EINVAL);
    assert_int_equal(out.len, before);
    /* an empty source id is fine (a name for logs) */
    bad = m;
    bad.source_id = cstr("");
    out.len = 0;
    assert_int_equal(em_msg_encode_replicate(&out, &bad), EMBER_OK);
    assert_int_equal(em_msg_decode_replicate(out.data, out.len, &m2, &err),
                     EMBER_OK);
    assert_int_equal(m2.source_id.len, 0);

    static const uint8_t rep[] = {'E', 'M', 'B', 'R', 1, 0};
    em_msg_block_stored b = {view(rep, sizeof rep)}, b2;
    out.len = 0;
    assert_int_equal(em_msg_encode_block_stored(&out, &b), EMBER_OK);
    assert_int_equal(em_msg_type_of(out.data, out.len, &t, &err), EMBER_OK);
    assert_string_equal(em_msg_type_name(t), "BLOCK_STORED");
    assert_int_equal(em_msg_decode_block_stored(out.data, out.len, &b2, &err),
                     EMBER_OK);
    assert_view(b2.report, view(rep, sizeof rep));
    /* a BLOCK_STORED is not a REPLICATE */
    assert_int_equal(em_msg_decode_replicate(out.data, out.len, &m2, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "expected a REPLICATE message but got a "
                                 "BLOCK_STORED message");
    out.data[EM_MSG_HEADER_LEN] = 0;
    assert_int_equal(em_msg_decode_block_stored(out.data,
                                                EM_MSG_HEADER_LEN + 1, &b2,
                                                &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "BLOCK_STORED: field 'report' is empty "
                                 "(offset 6)");
    before = out.len;
    b.report = view(NULL, 0);
    assert_int_equal(em_msg_encode_block_stored(&out, &b), EMBER_EINVAL);
    assert_int_equal(out.len, before);
    ember_buf_release(&out);
}

/* ------------------------------------------------------------ malformed */

static void test_header_errors(void **state)
{
    (void)state;
    ember_error err;
    em_msg_type t;
    ember_buf b = ember_buf_heap();
    em_msg_shutdown sd = {cstr("x")};
    assert_int_equal(em_msg_encode_shutdown(&b, &sd), EMBER_OK);

    b.data[0] = 'X';
    assert_int_equal(em_msg_type_of(b.data, b.len, &t, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "magic"));
    assert_int_equal(em_msg_decode_shutdown(b.data, b.len, &sd, &err),
                     EMBER_EINVAL);
    b.data[0] = 'E';

    b.data[4] = 2;
    assert_int_equal(em_msg_type_of(b.data, b.len, &t, &err), EMBER_EVERSION);
    assert_string_equal(err.msg,
                        "message version 2 not supported (this ember speaks 1)");
    assert_int_equal(em_msg_decode_shutdown(b.data, b.len, &sd, &err),
                     EMBER_EVERSION);
    b.data[4] = 1;

    static const uint8_t bad_types[] = {0, 18, 255};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        b.data[5] = bad_types[i];
        assert_int_equal(em_msg_type_of(b.data, b.len, &t, &err),
                         EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "unknown message type"));
    }
    b.data[5] = EM_MSG_SHUTDOWN;
    assert_int_equal(em_msg_type_of(b.data, b.len, &t, NULL), EMBER_OK);
    assert_int_equal(em_msg_type_of(b.data, 5, &t, &err), EMBER_EINVAL);
    assert_int_equal(em_msg_type_of(NULL, 0, &t, &err), EMBER_EINVAL);
    ember_buf_release(&b);
}

/* A STATUS message with one update of every state. */
static void status_sample(ember_buf *out)
{
    em_msg_batch b;
    assert_int_equal(em_msg_status_begin(&b, out), EMBER_OK);
    for (uint32_t i = 0; i < 10; i++) {
        em_msg_update u = update_of(i);
        assert_int_equal(em_msg_status_add(&b, &u), EMBER_OK);
    }
    assert_int_equal(em_msg_batch_finish(&b), EMBER_OK);
}

static void test_status_truncated_everywhere(void **state)
{
    (void)state;
    ember_buf out = ember_buf_heap();
    status_sample(&out);
    em_msg_cursor c;
    assert_int_equal(em_msg_status_open(out.data, out.len, &c, NULL),
                     EMBER_OK);
    for (size_t n = 0; n < out.len; n++) {
        /* an exact-size copy, so the sanitizer sees any read past it */
        uint8_t *p = malloc(n ? n : 1);
        ember_error err;
        em_msg_update u;
        assert_non_null(p);
        memcpy(p, out.data, n);
        err.code = EMBER_OK;
        assert_int_equal(em_msg_status_open(p, n, &c, &err), EMBER_EINVAL);
        assert_int_equal(err.code, EMBER_EINVAL);
        assert_true(err.msg[0] != '\0');
        /* a refused batch yields nothing */
        assert_int_equal(em_msg_status_next(&c, &u), EMBER_END);
        free(p);
    }
    ember_buf_release(&out);
}

static void test_bad_varints(void **state)
{
    (void)state;
    ember_error err;
    em_msg_commit_reply m;
    ember_buf b = ember_buf_heap();

    /* 0 written as two bytes */
    hdr(&b, 1, EM_MSG_COMMIT_REPLY);
    put_raw(&b, "\x80\x00\x01", 3);
    assert_int_equal(em_msg_decode_commit_reply(b.data, b.len, &m, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "COMMIT_REPLY: field 'task_id'"));
    assert_non_null(strstr(err.msg, "overlong"));
    assert_non_null(strstr(err.msg, "offset 6"));

    /* eleven bytes */
    b.len = 0;
    hdr(&b, 1, EM_MSG_COMMIT_REPLY);
    put_raw(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01", 12);
    assert_int_equal(em_msg_decode_commit_reply(b.data, b.len, &m, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "64 bits"));

    /* ten bytes whose last one carries bits past 64 */
    b.len = 0;
    hdr(&b, 1, EM_MSG_COMMIT_REPLY);
    put_raw(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x01", 11);
    assert_int_equal(em_msg_decode_commit_reply(b.data, b.len, &m, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "64 bits"));

    /* UINT64_MAX itself is fine */
    b.len = 0;
    hdr(&b, 1, EM_MSG_COMMIT_REPLY);
    put_raw(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01", 11);
    assert_int_equal(em_msg_decode_commit_reply(b.data, b.len, &m, &err),
                     EMBER_OK);
    assert_true(m.task_id == UINT64_MAX);

    /* a u32 field holding 2^32 */
    em_msg_heartbeat hb;
    b.len = 0;
    hdr(&b, 1, EM_MSG_HEARTBEAT);
    put_v(&b, 2);
    put_raw(&b, "e1", 2);
    put_v(&b, (uint64_t)UINT32_MAX + 1);
    assert_int_equal(em_msg_decode_heartbeat(b.data, b.len, &hb, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg,
                        "HEARTBEAT: field 'running' value 4294967296 exceeds "
                        "its maximum 4294967295 (offset 9)");
    assert_int_equal(hb.executor_id.len, 0); /* zeroed on failure */
    ember_buf_release(&b);
}

static void test_bad_strings(void **state)
{
    (void)state;
    ember_error err;
    ember_buf b = ember_buf_heap();

    /* a NUL inside a string */
    em_msg_heartbeat hb;
    hdr(&b, 1, EM_MSG_HEARTBEAT);
    put_v(&b, 3);
    put_raw(&b, "a\0b", 3);
    put_v(&b, 1);
    assert_int_equal(em_msg_decode_heartbeat(b.data, b.len, &hb, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "field 'executor_id' contains a NUL"));
    assert_non_null(strstr(err.msg, "offset 8"));

    /* a string longer than 64 KiB, even when the bytes are there */
    char *big = long_string(EM_MSG_STR_MAX + 1);
    em_msg_shutdown sd;
    b.len = 0;
    hdr(&b, 1, EM_MSG_SHUTDOWN);
    put_v(&b, EM_MSG_STR_MAX + 1);
    put_raw(&b, big, EM_MSG_STR_MAX + 1);
    assert_int_equal(em_msg_decode_shutdown(b.data, b.len, &sd, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "SHUTDOWN: field 'reason' length 65537"));
    free(big);

    /* a blob whose length runs past the end */
    em_msg_stage st;
    b.len = 0;
    hdr(&b, 1, EM_MSG_STAGE);
    put_v(&b, 1);
    put_v(&b, 0);
    put_v(&b, 1);
    put_v(&b, 100);
    put_raw(&b, "0123456789", 10);
    assert_int_equal(em_msg_decode_stage(b.data, b.len, &st, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg,
                        "STAGE: field 'plan' length 100 runs past the end of "
                        "the message (offset 9, 10 bytes left)");

    /* a blob longer than 1 GiB is refused by its length alone */
    b.len = 0;
    hdr(&b, 1, EM_MSG_STAGE);
    put_v(&b, 1);
    put_v(&b, 0);
    put_v(&b, 1);
    put_v(&b, ((uint64_t)1 << 30) + 1);
    assert_int_equal(em_msg_decode_stage(b.data, b.len, &st, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "blob limit"));

    /* the error names the batch entry: update 3's error runs past the end */
    em_msg_cursor c;
    b.len = 0;
    hdr(&b, 1, EM_MSG_STATUS);
    put_count(&b, 5);
    for (int i = 0; i < 3; i++) { /* three RUNNING updates */
        put_v(&b, (uint64_t)i);
        put_raw(&b, "\x01\x00\x00\x00\x00", 5);
    }
    put_v(&b, 3);
    put_raw(&b, "\x03\x00\x00\x00\x00", 5); /* FAILED */
    size_t at = b.len;
    put_v(&b, 900);
    put_raw(&b, "short message", 13);
    put_v(&b, 4);
    put_raw(&b, "\x01\x00\x00\x00\x00", 5);
    assert_int_equal(em_msg_status_open(b.data, b.len, &c, &err),
                     EMBER_EINVAL);
    char want[200];
    snprintf(want, sizeof want,
             "STATUS update 3: field 'error' length 900 runs past the end of "
             "the message (offset %zu, %zu bytes left)",
             at, b.len - at - 2);
    assert_string_equal(err.msg, want);
    ember_buf_release(&b);
}

static void test_hostile_count(void **state)
{
    (void)state;
    ember_error err;
    em_msg_cursor c;
    em_bytes reason;
    ember_buf b = ember_buf_heap();

    hdr(&b, 1, EM_MSG_LAUNCH);
    put_count(&b, 4000000000u);
    put_raw(&b, "\x01\x01\x01\x00\x00\x00\x00\x01\x01\x01", 10);
    assert_int_equal(em_msg_launch_open(b.data, b.len, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "LAUNCH: count 4000000000"));
    assert_non_null(strstr(err.msg, "only 10 are left"));

    b.len = 0;
    hdr(&b, 1, EM_MSG_KILL);
    put_v(&b, 0);
    put_count(&b, UINT32_MAX);
    put_raw(&b, "\x01\x02", 2);
    assert_int_equal(em_msg_kill_open(b.data, b.len, &reason, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "KILL: count 4294967295"));

    /* the count must be the padded 5-byte form */
    b.len = 0;
    hdr(&b, 1, EM_MSG_KILL);
    put_v(&b, 0);
    put_v(&b, 1);
    put_v(&b, 9);
    assert_int_equal(em_msg_kill_open(b.data, b.len, &reason, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "field 'count'"));
    /* ... and fit 32 bits */
    b.len = 0;
    hdr(&b, 1, EM_MSG_KILL);
    put_v(&b, 0);
    put_raw(&b, "\x81\x80\x80\x80\x10", 5);
    assert_int_equal(em_msg_kill_open(b.data, b.len, &reason, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "field 'count'"));
    ember_buf_release(&b);
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    ember_error err;
    ember_buf b = ember_buf_heap();
    em_msg_shutdown sd = {cstr("bye")};
    assert_int_equal(em_msg_encode_shutdown(&b, &sd), EMBER_OK);
    put_raw(&b, "\x00", 1);
    assert_int_equal(em_msg_decode_shutdown(b.data, b.len, &sd, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg, "SHUTDOWN: 1 trailing bytes after the end "
                                 "of the message body (offset 10)");

    b.len = 0;
    em_msg_batch bt;
    em_msg_cursor c;
    em_bytes reason;
    assert_int_equal(em_msg_kill_begin(&bt, &b, "r"), EMBER_OK);
    assert_int_equal(em_msg_kill_add(&bt, 5), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&bt), EMBER_OK);
    put_raw(&b, "\x07\x07", 2);
    assert_int_equal(em_msg_kill_open(b.data, b.len, &reason, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "KILL: 2 trailing bytes"));
    assert_int_equal(reason.len, 0);

    b.len = 0;
    status_sample(&b);
    put_raw(&b, "\x01", 1);
    assert_int_equal(em_msg_status_open(b.data, b.len, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "trailing"));
    ember_buf_release(&b);
}

static void test_bad_enum_and_bool_bytes(void **state)
{
    (void)state;
    ember_error err;
    em_msg_cursor c;
    em_msg_task t;
    ember_buf b = ember_buf_heap();

    static const uint8_t states[] = {0, 6, 0xFF};
    for (size_t i = 0; i < sizeof states; i++) {
        b.len = 0;
        hdr(&b, 1, EM_MSG_STATUS);
        put_count(&b, 1);
        put_v(&b, 77);
        put_raw(&b, &states[i], 1);
        put_raw(&b, "\x00\x00\x00\x00", 4);
        assert_int_equal(em_msg_status_open(b.data, b.len, &c, &err),
                         EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "STATUS update 0: field 'state'"));
        assert_non_null(strstr(err.msg, "not a task state"));
    }

    /* speculative = 2 in the second task: the first is not handed out */
    b.len = 0;
    hdr(&b, 1, EM_MSG_LAUNCH);
    put_count(&b, 2);
    put_raw(&b, "\x01\x01\x01\x00\x00\x00\x00", 7);
    put_raw(&b, "\x02\x01\x01\x00\x00\x00\x02", 7);
    assert_int_equal(em_msg_launch_open(b.data, b.len, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "LAUNCH task 1: field 'speculative'"));
    assert_non_null(strstr(err.msg, "boolean"));
    assert_int_equal(em_msg_launch_next(&c, &t), EMBER_END);

    em_msg_registered r;
    b.len = 0;
    hdr(&b, 1, EM_MSG_REGISTERED);
    put_raw(&b, "\x02\x00\x01", 3);
    assert_int_equal(em_msg_decode_registered(b.data, b.len, &r, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "REGISTERED: field 'accepted'"));

    em_msg_commit_reply cr;
    b.len = 0;
    hdr(&b, 1, EM_MSG_COMMIT_REPLY);
    put_raw(&b, "\x05\x03", 2);
    assert_int_equal(em_msg_decode_commit_reply(b.data, b.len, &cr, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "field 'allowed' value 3"));
    ember_buf_release(&b);
}

static void test_wrong_decoder(void **state)
{
    (void)state;
    ember_error err;
    em_msg_cursor c;
    em_bytes reason;
    ember_buf b = ember_buf_heap();
    em_msg_batch bt;
    assert_int_equal(em_msg_launch_begin(&bt, &b), EMBER_OK);
    em_msg_task t = task_of(3);
    assert_int_equal(em_msg_launch_add(&bt, &t), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&bt), EMBER_OK);

    assert_int_equal(em_msg_status_open(b.data, b.len, &c, &err),
                     EMBER_EINVAL);
    assert_string_equal(err.msg,
                        "expected a STATUS message but got a LAUNCH message");
    assert_int_equal(em_msg_kill_open(b.data, b.len, &reason, &c, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "expected a KILL message"));
    em_msg_register rg;
    assert_int_equal(em_msg_decode_register(b.data, b.len, &rg, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "expected a REGISTER message"));
    assert_int_equal(em_msg_launch_open(b.data, b.len, &c, &err), EMBER_OK);
    ember_buf_release(&b);
}

/* ----------------------------------------------------------- map status */

static void test_map_status(void **state)
{
    (void)state;
    ember_error err;
    static const uint64_t sizes[] = {0, 1, 127, 128, 1u << 20, UINT64_MAX};
    const uint32_t n = sizeof sizes / sizeof sizes[0];
    ember_buf b = ember_buf_heap();
    uint64_t got[6];

    assert_int_equal(em_map_status_encode(&b, sizes, n), EMBER_OK);
    assert_int_equal(em_map_status_decode(view(b.data, b.len), n, got, &err),
                     EMBER_OK);
    assert_memory_equal(got, sizes, sizeof sizes);

    /* it travels as the result of a FINISHED update */
    ember_buf msg = ember_buf_heap();
    em_msg_batch bt;
    em_msg_update u;
    memset(&u, 0, sizeof u);
    u.task_id = 9;
    u.state = EM_TASK_FINISHED;
    u.result = view(b.data, b.len);
    assert_int_equal(em_msg_status_begin(&bt, &msg), EMBER_OK);
    assert_int_equal(em_msg_status_add(&bt, &u), EMBER_OK);
    assert_int_equal(em_msg_batch_finish(&bt), EMBER_OK);
    em_msg_cursor c;
    assert_int_equal(em_msg_status_open(msg.data, msg.len, &c, &err),
                     EMBER_OK);
    assert_int_equal(em_msg_status_next(&c, &u), EMBER_OK);
    memset(got, 0, sizeof got);
    assert_int_equal(em_map_status_decode(u.result, n, got, &err), EMBER_OK);
    assert_memory_equal(got, sizes, sizeof sizes);
    ember_buf_release(&msg);

    /* count mismatch; the output is untouched */
    memset(got, 0xAB, sizeof got);
    assert_int_equal(
        em_map_status_decode(view(b.data, b.len), n - 1, got, &err),
        EMBER_EINVAL);
    assert_string_equal(err.msg, "map status has 6 sizes, expected 5");
    assert_true(got[0] == UINT64_C(0xABABABABABABABAB));

    /* truncated and trailing */
    assert_int_equal(
        em_map_status_decode(view(b.data, b.len - 1), n, got, &err),
        EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "map status size 5"));
    put_raw(&b, "\x00", 1);
    assert_int_equal(em_map_status_decode(view(b.data, b.len), n, got, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "trailing"));

    /* zero partitions */
    b.len = 0;
    assert_int_equal(em_map_status_encode(&b, NULL, 0), EMBER_OK);
    assert_int_equal(b.len, 1);
    assert_int_equal(em_map_status_decode(view(b.data, b.len), 0, NULL, &err),
                     EMBER_OK);
    assert_int_equal(em_map_status_decode(view(NULL, 0), 0, NULL, &err),
                     EMBER_EINVAL);
    ember_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_register_round_trip),
        cmocka_unit_test(test_registered_round_trip),
        cmocka_unit_test(test_stage_round_trip),
        cmocka_unit_test(test_small_messages_round_trip),
        cmocka_unit_test(test_encode_into_full_buffer),
        cmocka_unit_test(test_launch_batches),
        cmocka_unit_test(test_status_batches),
        cmocka_unit_test(test_kill_batches),
        cmocka_unit_test(test_remove_shuffles),
        cmocka_unit_test(test_remove_blocks),
        cmocka_unit_test(test_broadcast_messages),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_replication_messages),
        cmocka_unit_test(test_status_truncated_everywhere),
        cmocka_unit_test(test_bad_varints),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_hostile_count),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_bad_enum_and_bool_bytes),
        cmocka_unit_test(test_wrong_decoder),
        cmocka_unit_test(test_map_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
