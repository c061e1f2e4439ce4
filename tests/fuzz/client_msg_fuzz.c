/*
 * client_msg_fuzz.c — fuzz target for the client <-> emberd envelope
 * (kernel/msg/client_msg.h).
 *
 * LLVMFuzzerTestOneInput decodes any bytes and aborts on any inconsistency:
 *   - a refusal is EMBER_EINVAL or EMBER_EVERSION, fills the error with the
 *     same status and a message, and zeroes the output;
 *   - an accepted message has a known type, hands out views inside the
 *     input, a header without NUL bytes within its limit, and encoding
 *     what was decoded gives back exactly the input (canonical form).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DEMBER_FUZZ_REPLAY it is client_msg_fuzz_replay, the replay driver of
 * replay.h over the messages of make_seeds (tests/fuzz/client_msg_corpus/
 * holds them, written by `client_msg_fuzz_replay --write-seeds`).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg/client_msg.h"
#include "replay.h"

#define CHECK(cond) EM_FUZZ_CHECK("client_msg_fuzz", cond)

/* Decodes accepted so far (the replay driver reports it). */
static size_t accepted;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    em_cmsg m;
    ember_error err;
    ember_status s;
    if (data == NULL && size > 0)
        return 0;
    memset(&err, 0, sizeof err);
    s = em_cmsg_decode(data, size, &m, &err);
    if (s != EMBER_OK) {
        CHECK(s == EMBER_EINVAL || s == EMBER_EVERSION);
        CHECK(err.code == s && err.msg[0] != '\0');
        CHECK(memchr(err.msg, 0, sizeof err.msg) != NULL);
        CHECK(em_fuzz_all_zero(&m, sizeof m));
        return 0;
    }
    accepted++;
    CHECK(m.type >= EM_CMSG_HELLO && m.type <= EM_CMSG_TYPE_MAX);
    CHECK(strcmp(em_cmsg_type_name(m.type), "UNKNOWN") != 0);
    CHECK(em_fuzz_inside(m.header.data, m.header.len, data, data + size));
    CHECK(em_fuzz_inside(m.body.data, m.body.len, data, data + size));
    CHECK(m.header.len <= EM_CMSG_HEADER_MAX);
    CHECK(m.body.len <= EM_CMSG_BODY_MAX);
    CHECK(m.header.len == 0 || memchr(m.header.data, 0, m.header.len) == NULL);
    {
        ember_buf b = ember_buf_heap();
        CHECK(em_cmsg_encode(&b, m.type, m.req_id, (const char *)m.header.data,
                             m.header.len, m.body.data, m.body.len) == EMBER_OK);
        CHECK(b.len == size && memcmp(b.data, data, size) == 0);
        ember_buf_release(&b);
    }
    return 0;
}

#ifdef EMBER_FUZZ_REPLAY

#define MUT_MAX 1024
#define NSEEDS 10

/* Seeds: valid messages, made with the encoder. */
static uint8_t seed_mem[NSEEDS][MUT_MAX];
static em_fuzz_seed seeds[NSEEDS] = {
    {"hello", seed_mem[0], 0},       {"welcome", seed_mem[1], 0},
    {"submit", seed_mem[2], 0},      {"result", seed_mem[3], 0},
    {"end", seed_mem[4], 0},         {"plugin-put", seed_mem[5], 0},
    {"error", seed_mem[6], 0},       {"ok-empty", seed_mem[7], 0},
    {"broadcast", seed_mem[8], 0},   {"broadcast-drop", seed_mem[9], 0},
};

static void put(size_t k, em_cmsg_type t, uint64_t req, const char *h,
                const void *body, size_t body_len)
{
    ember_buf b = ember_buf_fixed(seed_mem[k], MUT_MAX);
    CHECK(em_cmsg_encode(&b, t, req, h, h ? strlen(h) : 0, body, body_len) ==
          EMBER_OK);
    seeds[k].len = b.len;
}

static void make_seeds(void)
{
    static const uint8_t result[] = {0x03, 0x21, 0x02, 0x00, 0xff};
    static const char plan[] =
        "{\"ember_plan\":1,\"datasets\":[{\"id\":0,\"op\":\"range\","
        "\"partitions\":2,\"args\":{\"start\":0,\"end\":10,\"step\":1}}]}";
    put(0, EM_CMSG_HELLO, 1, "{\"app\":\"wordcount\",\"version\":\"0.1.0\"}",
        NULL, 0);
    put(1, EM_CMSG_WELCOME, 1,
        "{\"app_id\":3,\"slots\":2,\"default_parallelism\":2,"
        "\"master\":\"local[2]\"}",
        NULL, 0);
    put(2, EM_CMSG_SUBMIT, 300,
        "{\"dataset\":0,\"partitions\":null,\"pool\":\"etl\",\"group\":null,"
        "\"description\":null,\"action\":{\"kind\":\"count\"}}",
        plan, sizeof plan - 1);
    put(3, EM_CMSG_RESULT, 300, "{\"job_id\":9,\"partition\":1}", result,
        sizeof result);
    put(4, EM_CMSG_END, 300, "{\"job_id\":9,\"status\":0,\"message\":\"\"}",
        NULL, 0);
    put(5, EM_CMSG_PLUGIN_PUT, UINT64_MAX,
        "{\"name\":\"testfn\",\"sha256\":\"ba7816bf8f01cfea414140de5dae2223"
        "b00361a396177a9cb410ff61f20015ad\"}",
        "\x7f" "ELF", 4);
    put(6, EM_CMSG_ERROR, 0, "{\"status\":-1,\"message\":\"bad header\"}",
        NULL, 0);
    put(7, EM_CMSG_OK, 127, NULL, NULL, 0);
    put(8, EM_CMSG_BROADCAST, 12, "{\"id\":3}", result, sizeof result);
    put(9, EM_CMSG_BROADCAST_DROP, 13,
        "{\"id\":3,\"mode\":\"destroy\"}", NULL, 0);
}

/* One edit of em_fuzz_edit, another type over the same bytes, or the
 * start of another seed appended. */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
    static const uint8_t bytes[] = {0x00, 0x01, 0x02, 0x05, 0x06, 0x0F,
                                    0x10, 0x11, 0x12, 0x7F, 0x80, 0x81,
                                    0xFE, 0xFF, '{', '"'};
    em_fuzz_mutate_envelope(buf, n, cap, seeds, NSEEDS, 0, 23, bytes,
                            sizeof bytes);
}

int main(int argc, char **argv)
{
    static const em_fuzz_target target = {
        "client_msg_fuzz_replay", seeds, NSEEDS, 100000, MUT_MAX, 0, mutate,
        &accepted, "decodes accepted"};
    make_seeds();
    return em_fuzz_replay_main(&target, argc, argv);
}

#endif /* EMBER_FUZZ_REPLAY */
