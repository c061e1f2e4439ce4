/*
 * msg_fuzz.c — fuzz target for the kernel <-> executor message codec
 * (kernel/msg/msg.h).
 *
 * LLVMFuzzerTestOneInput hands any bytes to every decoder and aborts on any
 * inconsistency:
 *   - em_msg_type_of and the decoders agree: when the header is refused,
 *     every decoder refuses it with the same status; otherwise only the
 *     decoder of that type may accept it;
 *   - a refusal fills the error with the same status and a message, zeroes
 *     the output and leaves a cursor that yields nothing;
 *   - an accepted message hands out views inside the input, and encoding
 *     what was decoded gives back exactly the input (canonical form);
 *   - the map-status decoder, fed input[1..] with input[0] as the expected
 *     count, follows the same rules.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DEMBER_FUZZ_REPLAY it is msg_fuzz_replay, the replay driver of replay.h
 * over the messages of make_seeds (tests/fuzz/msg_corpus/ holds them,
 * written by `msg_fuzz_replay --write-seeds`).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg.h"
#include "replay.h"

#define CHECK(cond) EM_FUZZ_CHECK("msg_fuzz", cond)

/* Decodes accepted so far (the replay driver reports it). */
static size_t accepted;

/* The input being checked; views must lie inside it. */
static const uint8_t *in_lo, *in_hi;

static void check_view(em_bytes v)
{
    CHECK(em_fuzz_inside(v.data, v.len, in_lo, in_hi));
}

static void check_string(em_bytes v)
{
    check_view(v);
    CHECK(v.len <= EM_MSG_STR_MAX);
    CHECK(v.len == 0 || memchr(v.data, 0, v.len) == NULL);
}

/* Checks a decoder's verdict s against the header's: returns nonzero when
 * the message was accepted. out/out_len is the decoder's output. */
static int verdict(ember_status s, const ember_error *err, ember_status head,
                   em_msg_type type, em_msg_type want, const void *out,
                   size_t out_len)
{
    if (s == EMBER_OK) {
        CHECK(head == EMBER_OK && type == want);
        accepted++;
        return 1;
    }
    CHECK(s == EMBER_EINVAL || s == EMBER_EVERSION);
    CHECK(err->code == s && err->msg[0] != '\0');
    CHECK(memchr(err->msg, 0, sizeof err->msg) != NULL);
    if (head != EMBER_OK)
        CHECK(s == head);
    else
        CHECK(s == EMBER_EINVAL);
    if (out)
        CHECK(em_fuzz_all_zero(out, out_len));
    return 0;
}

/* The encoding of a decoded message equals the input. */
static void check_same(const ember_buf *b, const uint8_t *data, size_t size)
{
    CHECK(b->len == size);
    CHECK(memcmp(b->data, data, size) == 0);
}

static void check_singles(const uint8_t *data, size_t size,
                          ember_status head, em_msg_type type)
{
    ember_buf b = ember_buf_heap();
    ember_error err;

    {
        em_msg_register m;
        ember_status s = em_msg_decode_register(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_REGISTER, &m, sizeof m)) {
            check_string(m.executor_id);
            check_string(m.host);
            check_string(m.endpoint);
            CHECK(em_msg_encode_register(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_registered m;
        ember_status s = em_msg_decode_registered(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_REGISTERED, &m, sizeof m)) {
            CHECK(m.accepted <= 1);
            check_string(m.reason);
            CHECK(em_msg_encode_registered(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_stage m;
        ember_status s = em_msg_decode_stage(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_STAGE, &m, sizeof m)) {
            check_view(m.plan);
            CHECK(em_msg_encode_stage(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_commit_ask m;
        ember_status s = em_msg_decode_commit_ask(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_COMMIT_ASK, &m, sizeof m)) {
            CHECK(em_msg_encode_commit_ask(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_commit_reply m;
        ember_status s = em_msg_decode_commit_reply(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_COMMIT_REPLY, &m, sizeof m)) {
            CHECK(m.allowed <= 1);
            CHECK(em_msg_encode_commit_reply(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_heartbeat m;
        ember_status s = em_msg_decode_heartbeat(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_HEARTBEAT, &m, sizeof m)) {
            check_string(m.executor_id);
            CHECK(em_msg_encode_heartbeat(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_shutdown m;
        ember_status s = em_msg_decode_shutdown(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_SHUTDOWN, &m, sizeof m)) {
            check_string(m.reason);
            CHECK(em_msg_encode_shutdown(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_bcast_fetch m;
        ember_status s = em_msg_decode_bcast_fetch(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_BCAST_FETCH, &m, sizeof m)) {
            CHECK(em_msg_encode_bcast_fetch(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_bcast_chunk m;
        ember_status s = em_msg_decode_bcast_chunk(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_BCAST_CHUNK, &m, sizeof m)) {
            CHECK(m.outcome <= EM_BCAST_FAILED);
            CHECK(m.outcome != EM_BCAST_OK ||
                  (m.index < m.nchunks && m.data.len <= m.total));
            check_view(m.data);
            check_string(m.error);
            CHECK(em_msg_encode_bcast_chunk(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_replicate m;
        ember_status s = em_msg_decode_replicate(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_REPLICATE, &m, sizeof m)) {
            check_string(m.level);
            check_string(m.source_id);
            check_string(m.source_endpoint);
            CHECK(m.level.len > 0 && m.source_endpoint.len > 0);
            CHECK(em_msg_encode_replicate(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    b.len = 0;
    {
        em_msg_block_stored m;
        ember_status s = em_msg_decode_block_stored(data, size, &m, &err);
        if (verdict(s, &err, head, type, EM_MSG_BLOCK_STORED, &m,
                    sizeof m)) {
            check_view(m.report);
            CHECK(m.report.len > 0);
            CHECK(em_msg_encode_block_stored(&b, &m) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    ember_buf_release(&b);
}

static void check_batches(const uint8_t *data, size_t size,
                          ember_status head, em_msg_type type)
{
    ember_buf b = ember_buf_heap();
    ember_error err;
    em_msg_batch bt;
    em_msg_cursor c;
    ember_status s;

    s = em_msg_launch_open(data, size, &c, &err);
    if (verdict(s, &err, head, type, EM_MSG_LAUNCH, NULL, 0)) {
        em_msg_task t;
        uint32_t n = c.remaining, i = 0;
        CHECK(em_msg_launch_begin(&bt, &b) == EMBER_OK);
        while ((s = em_msg_launch_next(&c, &t)) == EMBER_OK) {
            CHECK(t.speculative <= 1);
            CHECK(em_msg_launch_add(&bt, &t) == EMBER_OK);
            i++;
        }
        CHECK(s == EMBER_END && i == n && c.remaining == 0);
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        check_same(&b, data, size);
    } else {
        em_msg_task t;
        CHECK(em_msg_launch_next(&c, &t) == EMBER_END);
    }

    b.len = 0;
    s = em_msg_status_open(data, size, &c, &err);
    if (verdict(s, &err, head, type, EM_MSG_STATUS, NULL, 0)) {
        em_msg_update u;
        uint32_t n = c.remaining, i = 0;
        CHECK(em_msg_status_begin(&bt, &b) == EMBER_OK);
        while ((s = em_msg_status_next(&c, &u)) == EMBER_OK) {
            CHECK(u.state >= EM_TASK_RUNNING && u.state <= EM_TASK_KILLED);
            check_view(u.result);
            check_string(u.error);
            check_string(u.lost_executor);
            CHECK(strcmp(em_task_state_name(u.state), "UNKNOWN") != 0);
            CHECK(em_msg_status_add(&bt, &u) == EMBER_OK);
            i++;
        }
        CHECK(s == EMBER_END && i == n);
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        check_same(&b, data, size);
    } else {
        em_msg_update u;
        CHECK(em_msg_status_next(&c, &u) == EMBER_END);
    }

    b.len = 0;
    {
        em_bytes reason;
        s = em_msg_kill_open(data, size, &reason, &c, &err);
        if (verdict(s, &err, head, type, EM_MSG_KILL, NULL, 0)) {
            /* the builder takes a C string: copy the reason out */
            char why[EM_MSG_STR_MAX + 1];
            uint64_t id;
            uint32_t n = c.remaining, i = 0;
            check_string(reason);
            CHECK(em_bytes_to_cstr(reason, why, sizeof why) == EMBER_OK);
            CHECK(em_msg_kill_begin(&bt, &b, why) == EMBER_OK);
            while ((s = em_msg_kill_next(&c, &id)) == EMBER_OK) {
                CHECK(em_msg_kill_add(&bt, id) == EMBER_OK);
                i++;
            }
            CHECK(s == EMBER_END && i == n);
            CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
            check_same(&b, data, size);
        } else {
            uint64_t id;
            CHECK(reason.data == NULL && reason.len == 0);
            CHECK(em_msg_kill_next(&c, &id) == EMBER_END);
        }
    }

    b.len = 0;
    {
        em_bytes reason;
        s = em_msg_remove_shuffles_open(data, size, &reason, &c, &err);
        if (verdict(s, &err, head, type, EM_MSG_REMOVE_SHUFFLES, NULL, 0)) {
            char why[EM_MSG_STR_MAX + 1];
            uint64_t id;
            uint32_t n = c.remaining, i = 0;
            check_string(reason);
            CHECK(em_bytes_to_cstr(reason, why, sizeof why) == EMBER_OK);
            CHECK(em_msg_remove_shuffles_begin(&bt, &b, why) == EMBER_OK);
            while ((s = em_msg_remove_shuffles_next(&c, &id)) == EMBER_OK) {
                CHECK(em_msg_remove_shuffles_add(&bt, id) == EMBER_OK);
                i++;
            }
            CHECK(s == EMBER_END && i == n);
            CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
            check_same(&b, data, size);
        }
    }

    b.len = 0;
    {
        em_bytes reason;
        s = em_msg_remove_blocks_open(data, size, &reason, &c, &err);
        if (verdict(s, &err, head, type, EM_MSG_REMOVE_BLOCKS, NULL, 0)) {
            char why[EM_MSG_STR_MAX + 1];
            uint64_t key;
            uint32_t n = c.remaining, i = 0;
            check_string(reason);
            CHECK(em_bytes_to_cstr(reason, why, sizeof why) == EMBER_OK);
            CHECK(em_msg_remove_blocks_begin(&bt, &b, why) == EMBER_OK);
            while ((s = em_msg_remove_blocks_next(&c, &key)) == EMBER_OK) {
                CHECK(em_msg_remove_blocks_add(&bt, key) == EMBER_OK);
                i++;
            }
            CHECK(s == EMBER_END && i == n);
            CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
            check_same(&b, data, size);
        }
    }

    b.len = 0;
    {
        em_bytes reason;
        s = em_msg_remove_broadcast_open(data, size, &reason, &c, &err);
        if (verdict(s, &err, head, type, EM_MSG_REMOVE_BROADCAST, NULL, 0)) {
            char why[EM_MSG_STR_MAX + 1];
            uint64_t app, id;
            uint32_t n = c.remaining, i = 0;
            check_string(reason);
            CHECK(em_bytes_to_cstr(reason, why, sizeof why) == EMBER_OK);
            CHECK(em_msg_remove_broadcast_begin(&bt, &b, why) == EMBER_OK);
            while ((s = em_msg_remove_broadcast_next(&c, &app, &id)) ==
                   EMBER_OK) {
                CHECK(em_msg_remove_broadcast_add(&bt, app, id) == EMBER_OK);
                i++;
            }
            CHECK(s == EMBER_END && i == n);
            CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
            check_same(&b, data, size);
        }
    }
    ember_buf_release(&b);
}

/* input[0] is the expected count, input[1..] the map status. */
static void check_map_status(const uint8_t *data, size_t size)
{
    uint64_t sizes[256];
    ember_error err;
    em_bytes in;
    ember_status s;
    uint32_t n;
    if (size == 0)
        return;
    n = data[0];
    in.data = data + 1;
    in.len = size - 1;
    memset(sizes, 0xA5, sizeof sizes);
    s = em_map_status_decode(in, n, sizes, &err);
    if (s == EMBER_OK) {
        ember_buf b = ember_buf_heap();
        accepted++;
        CHECK(em_map_status_encode(&b, sizes, n) == EMBER_OK);
        check_same(&b, in.data, in.len);
        ember_buf_release(&b);
    } else {
        CHECK(s == EMBER_EINVAL && err.code == s && err.msg[0] != '\0');
        for (size_t i = 0; i < 256; i++)
            CHECK(sizes[i] == UINT64_C(0xA5A5A5A5A5A5A5A5));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1];
    em_msg_type type = (em_msg_type)0;
    ember_error err;
    ember_status head;
    if (data == NULL) {
        if (size > 0)
            return 0;
        data = empty; /* keeps pointer arithmetic below well-defined */
    }
    in_lo = data;
    in_hi = data + size;
    head = em_msg_type_of(data, size, &type, &err);
    if (head == EMBER_OK) {
        CHECK(type >= EM_MSG_REGISTER && type <= EM_MSG_BLOCK_STORED);
        CHECK(strcmp(em_msg_type_name(type), "UNKNOWN") != 0);
    } else {
        CHECK(head == EMBER_EINVAL || head == EMBER_EVERSION);
        CHECK(err.code == head && err.msg[0] != '\0');
    }
    check_singles(data, size, head, type);
    check_batches(data, size, head, type);
    check_map_status(data, size);
    return 0;
}

#ifdef EMBER_FUZZ_REPLAY

#define MUT_MAX 1024
#define NSEEDS 20

/* Seeds: valid messages of every type, made with the encoders. */
static uint8_t seed_mem[NSEEDS][MUT_MAX];
/* Their file names under --write-seeds; make_seeds fills in the lengths. */
static em_fuzz_seed seeds[NSEEDS] = {
    {"register", seed_mem[0], 0},
    {"registered", seed_mem[1], 0},
    {"registered-refused", seed_mem[2], 0},
    {"launch", seed_mem[3], 0},
    {"launch-empty", seed_mem[4], 0},
    {"status", seed_mem[5], 0},
    {"kill", seed_mem[6], 0},
    {"heartbeat", seed_mem[7], 0},
    {"shutdown", seed_mem[8], 0},
    {"stage", seed_mem[9], 0},
    {"commit-ask", seed_mem[10], 0},
    {"commit-reply", seed_mem[11], 0},
    {"map-status", seed_mem[12], 0},
    {"map-status-empty", seed_mem[13], 0},
    {"bcast-fetch", seed_mem[14], 0},
    {"bcast-chunk", seed_mem[15], 0},
    {"bcast-chunk-refused", seed_mem[16], 0},
    {"remove-broadcast", seed_mem[17], 0},
    {"replicate", seed_mem[18], 0},
    {"block-stored", seed_mem[19], 0},
};

static em_bytes str_of(const char *s)
{
    em_bytes b;
    b.data = (const uint8_t *)s;
    b.len = strlen(s);
    return b;
}

static void make_seeds(void)
{
    static const uint8_t blob[] = {0, 1, 2, 0, 0xFF, 0x80};
    static const uint64_t map_sizes[] = {0, 300, UINT64_MAX, 1};
    ember_buf b[NSEEDS];
    em_msg_batch bt;
    size_t k = 0, i;
    for (i = 0; i < NSEEDS; i++)
        b[i] = ember_buf_fixed(seed_mem[i], MUT_MAX);
    {
        em_msg_register m = {str_of("exec-1"), str_of("node7"),
                             str_of("tcp://10.0.0.7:7077"), 8, 4242};
        CHECK(em_msg_encode_register(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_registered m = {1, str_of(""), UINT64_MAX};
        CHECK(em_msg_encode_registered(&b[k++], &m) == EMBER_OK);
        m.accepted = 0;
        m.reason = str_of("duplicate executor id");
        m.app_id = 0;
        CHECK(em_msg_encode_registered(&b[k++], &m) == EMBER_OK);
    }
    {
        CHECK(em_msg_launch_begin(&bt, &b[k]) == EMBER_OK);
        for (i = 0; i < 3; i++) {
            em_msg_task t = {1000 + i, 1, 2 + i, 0, (uint32_t)i,
                             i == 2 ? UINT32_MAX : 0, (uint8_t)(i & 1)};
            CHECK(em_msg_launch_add(&bt, &t) == EMBER_OK);
        }
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        k++;
        CHECK(em_msg_launch_begin(&bt, &b[k]) == EMBER_OK);
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        k++;
    }
    {
        uint8_t ms_mem[64];
        ember_buf ms = ember_buf_fixed(ms_mem, sizeof ms_mem);
        CHECK(em_map_status_encode(&ms, map_sizes, 4) == EMBER_OK);
        CHECK(em_msg_status_begin(&bt, &b[k]) == EMBER_OK);
        for (i = 0; i < 5; i++) {
            em_msg_update u;
            memset(&u, 0, sizeof u);
            u.task_id = 1000 + i;
            u.state = (uint8_t)(EM_TASK_RUNNING + i);
            u.run_us = 1500 * i;
            u.records_in = i;
            u.records_out = i == 1 ? UINT64_MAX : 0;
            u.bytes_out = 1u << (i * 4);
            if (u.state == EM_TASK_FINISHED) {
                u.result.data = ms.data;
                u.result.len = ms.len;
            } else if (u.state == EM_TASK_FAILED) {
                u.error = str_of("division by zero");
            } else if (u.state == EM_TASK_KILLED) {
                u.error = str_of("");
            } else if (u.state == EM_TASK_FETCH_FAILED) {
                u.error = str_of("connection refused");
                u.shuffle_id = 3;
                u.map_index = 17;
                u.lost_executor = str_of("exec-2");
            }
            CHECK(em_msg_status_add(&bt, &u) == EMBER_OK);
        }
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        k++;
    }
    {
        CHECK(em_msg_kill_begin(&bt, &b[k], "job 4 cancelled") == EMBER_OK);
        CHECK(em_msg_kill_add(&bt, 7) == EMBER_OK);
        CHECK(em_msg_kill_add(&bt, UINT64_MAX) == EMBER_OK);
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        k++;
    }
    {
        em_msg_heartbeat m = {str_of("exec-1"), 3};
        CHECK(em_msg_encode_heartbeat(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_shutdown m = {str_of("application finished")};
        CHECK(em_msg_encode_shutdown(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_stage m = {5, 1, 2, {blob, sizeof blob}};
        CHECK(em_msg_encode_stage(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_commit_ask m = {1001, 5, 0, 3, UINT32_MAX};
        CHECK(em_msg_encode_commit_ask(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_commit_reply m = {1001, 1};
        CHECK(em_msg_encode_commit_reply(&b[k++], &m) == EMBER_OK);
    }
    {
        /* a map status with its expected count in front */
        CHECK(ember_buf_put_u8(&b[k], 4) == EMBER_OK);
        CHECK(em_map_status_encode(&b[k], map_sizes, 4) == EMBER_OK);
        k++;
    }
    {
        /* no reduce partitions: expected count 0, then the status */
        CHECK(ember_buf_put_u8(&b[k], 0) == EMBER_OK);
        CHECK(em_map_status_encode(&b[k], NULL, 0) == EMBER_OK);
        k++;
    }
    {
        em_msg_bcast_fetch m = {3, 1, 2};
        CHECK(em_msg_encode_bcast_fetch(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_bcast_chunk m = {3, 1, 2, EM_BCAST_OK, 3, 4000,
                                UINT64_MAX, {blob, sizeof blob}, {NULL, 0}};
        CHECK(em_msg_encode_bcast_chunk(&b[k++], &m) == EMBER_OK);
        em_msg_bcast_chunk r = {3, 1, 0, EM_BCAST_DESTROYED, 0, 0, 0,
                                {NULL, 0},
                                str_of("Attempted to use broadcast 1 after "
                                       "it was destroyed")};
        CHECK(em_msg_encode_bcast_chunk(&b[k++], &r) == EMBER_OK);
    }
    {
        CHECK(em_msg_remove_broadcast_begin(&bt, &b[k], "unpersisted") ==
              EMBER_OK);
        CHECK(em_msg_remove_broadcast_add(&bt, 3, 1) == EMBER_OK);
        CHECK(em_msg_remove_broadcast_add(&bt, UINT64_MAX, 200) == EMBER_OK);
        CHECK(em_msg_batch_finish(&bt) == EMBER_OK);
        k++;
    }
    {
        em_msg_replicate m = {3, 1, 2, str_of("MEMORY_ONLY_2"),
                              str_of("exec-1"),
                              str_of("ipc:///tmp/e1/blocks.sock")};
        CHECK(em_msg_encode_replicate(&b[k++], &m) == EMBER_OK);
    }
    {
        em_msg_block_stored m = {{blob, sizeof blob}};
        CHECK(em_msg_encode_block_stored(&b[k++], &m) == EMBER_OK);
    }
    CHECK(k == NSEEDS);
    for (i = 0; i < NSEEDS; i++)
        seeds[i].len = b[i].len;
}

/* One edit of em_fuzz_edit, or another message type over the same body,
 * or the start of another seed appended. */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
    static const uint8_t bytes[] = {0x00, 0x01, 0x02, 0x05, 0x06, 0x0F,
                                    0x10, 0x7F, 0x80, 0x81, 0xFE, 0xFF};
    em_fuzz_mutate_envelope(buf, n, cap, seeds, NSEEDS, 1, 18, bytes,
                            sizeof bytes);
}

int main(int argc, char **argv)
{
    static const em_fuzz_target target = {
        "msg_fuzz_replay", seeds, NSEEDS, 100000, MUT_MAX, 0, mutate,
        &accepted, "decodes accepted"};
    make_seeds();
    return em_fuzz_replay_main(&target, argc, argv);
}

#endif /* EMBER_FUZZ_REPLAY */
