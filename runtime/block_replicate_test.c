/* Unit tests of block copies between executors (runtime/block_replicate.h
 * and the cached-block requests of runtime/fetch.h), with two block
 * managers over small in-test memory tiers and a real block server on
 * inproc://: a copy arrives whole at the level asked for and is reported;
 * a block the source lacks, an unreachable source, an unknown level and
 * a tier the copying executor lacks are clear failures that store
 * nothing; malformed requests get a clear refusal; the replicator queue
 * forgets an unpersisted dataset and stops at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember/batch.h"
#include "runtime/block_replicate.h"
#include "runtime/fetch.h"
#include "runtime/test_memtier.h"

/* ---- a memory tier: runtime/test_memtier.h */

/* ---- two executors: a source serving its blocks, a copier */

#define URL "inproc://block_replicate_test"
#define APP 3
#define DS 5
#define KEY ((uint64_t)APP << 32 | DS)

typedef struct side {
    memtier mem;
    em_block_mgr *m;
} side;

static side src, dst;
static em_block_server *server;
static ember_buf block; /* the source's block, batch-framed */

static void side_open(side *s)
{
    memset(s, 0, sizeof *s);
    em_block_mgr_opts o;
    memset(&o, 0, sizeof o);
    o.memory_budget = 1 << 20;
    o.memory.vt = &mem_vt;
    o.memory.state = &s->mem;
    ember_error err;
    assert_int_equal(em_block_mgr_open(&s->m, &o, &err), EMBER_OK);
}

static void side_close(side *s)
{
    em_block_mgr_close(s->m);
    assert_int_equal(s->mem.blocks, 0);
}

static em_storage_level level_of(const char *name)
{
    em_storage_level l;
    assert_int_equal(em_storage_level_parse(name, &l, NULL), EMBER_OK);
    return l;
}

static int setup(void **state)
{
    (void)state;
    side_open(&src);
    side_open(&dst);
    block = ember_buf_heap();
    char rec[32];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(rec, sizeof rec, "record %d", i);
        assert_int_equal(ember_batch_append(&block, rec, (size_t)n),
                         EMBER_OK);
    }
    ember_batch b = {block.data, block.len, 100};
    em_block_put_result res;
    ember_error err;
    assert_int_equal(em_block_mgr_put(src.m, KEY, 1,
                                      level_of("MEMORY_ONLY_2"), &b, &res,
                                      &err),
                     EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    em_block_put_result_release(&res);
    char bound[128];
    assert_int_equal(em_block_server_start(&server, URL, NULL, NULL, bound,
                                           sizeof bound, &err),
                     EMBER_OK);
    em_block_server_set_blocks(server, src.m);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    em_block_server_stop(server);
    (void)em_block_mgr_remove_all(src.m);
    (void)em_block_mgr_remove_all(dst.m);
    side_close(&src);
    side_close(&dst);
    ember_buf_release(&block);
    return 0;
}

static em_msg_replicate req_of(uint32_t partition, const char *level,
                               const char *endpoint)
{
    em_msg_replicate r = {APP, DS, partition,
                          {(const uint8_t *)level, strlen(level)},
                          {(const uint8_t *)"exec-1", 6},
                          {(const uint8_t *)endpoint, strlen(endpoint)}};
    return r;
}

/* A copy holds the same records, at the level, and is reported. */
static void test_copy_arrives_whole(void **state)
{
    (void)state;
    em_msg_replicate r = req_of(1, "MEMORY_ONLY_2", URL);
    em_block_report rep = {0};
    ember_error err = {0};
    assert_int_equal(em_replicate_block(dst.m, &r, 5000, &rep, &err),
                     EMBER_OK);
    assert_int_equal(em_block_mgr_where(dst.m, KEY, 1), EM_BLOCK_MEMORY);
    ember_buf got = ember_buf_heap();
    uint64_t count = 0;
    assert_int_equal(em_block_mgr_get(dst.m, KEY, 1, &got, &count, &err),
                     EMBER_OK);
    assert_int_equal(count, 100);
    assert_int_equal(got.len, block.len);
    assert_memory_equal(got.data, block.data, block.len);
    ember_buf_release(&got);
    assert_int_equal(rep.n, 1);
    assert_int_equal(rep.e[0].app, APP);
    assert_int_equal(rep.e[0].dataset, DS);
    assert_int_equal(rep.e[0].partition, 1);
    assert_int_equal(rep.e[0].event, EM_BLOCK_STORED);
    assert_int_equal(rep.e[0].tier, EM_BLOCK_MEMORY);
    assert_int_equal(rep.e[0].bytes, block.len);
    em_block_report_release(&rep);
}

/* What cannot be copied is a clear failure and stores nothing. */
static void test_failures_store_nothing(void **state)
{
    (void)state;
    em_block_report rep = {0};
    ember_error err = {0};
    em_msg_replicate r = req_of(2, "MEMORY_ONLY_2", URL);
    assert_int_equal(em_replicate_block(dst.m, &r, 5000, &rep, &err),
                     EMBER_ENOTFOUND);
    assert_string_equal(err.msg, "block server " URL ": block of dataset 5 "
                                 "(application 3) partition 2: not cached "
                                 "here");
    r = req_of(1, "MEMORY_ONLY_2", "inproc://nobody");
    assert_int_equal(em_replicate_block(dst.m, &r, 5000, &rep, &err),
                     EMBER_EIO);
    assert_non_null(strstr(err.msg, "cannot reach the block server at "
                                    "inproc://nobody"));
    r = req_of(1, "MEMORY_ONLY_7", URL);
    assert_int_equal(em_replicate_block(dst.m, &r, 5000, &rep, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "MEMORY_ONLY_7"));
    /* this executor has no disk tier */
    r = req_of(1, "DISK_ONLY_2", URL);
    assert_int_equal(em_replicate_block(dst.m, &r, 5000, &rep, &err),
                     EMBER_EUNSUPPORTED);
    assert_int_equal(rep.n, 0);
    assert_int_equal(em_block_mgr_where(dst.m, KEY, 1), EM_BLOCK_NOWHERE);
    assert_int_equal(em_block_mgr_where(dst.m, KEY, 2), EM_BLOCK_NOWHERE);
}

/* Checks reply is a cached-block refusal with code and message. */
static void assert_refusal(const ember_buf *reply, uint8_t code,
                           const char *msg)
{
    static const uint8_t head[] = {'E', 'M', 'B', 'F', 1, 4, 1};
    assert_true(reply->len > sizeof head + 2);
    assert_memory_equal(reply->data, head, sizeof head);
    assert_int_equal(reply->data[sizeof head], code);
    const uint8_t *p = reply->data + sizeof head + 1;
    uint64_t n;
    assert_int_equal(ember_uvarint_get(&p, reply->data + reply->len, &n),
                     EMBER_OK);
    assert_int_equal(n, strlen(msg));
    assert_int_equal(reply->data + reply->len - p, n);
    assert_memory_equal(p, msg, n);
}

/* Requests the server cannot read, and a server that caches nothing. */
static void test_serve_refusals(void **state)
{
    (void)state;
    ember_buf reply = ember_buf_heap();
    static const uint8_t trailing[] = {'E', 'M', 'B', 'F', 1, 3, 5, 1, 0};
    em_fetch_serve_block(src.m, trailing, sizeof trailing, &reply);
    assert_refusal(&reply, 3, "malformed block request");
    static const uint8_t ok[] = {'E', 'M', 'B', 'F', 1, 3, 5, 1};
    em_fetch_serve_block(src.m, ok, 5, &reply);
    assert_refusal(&reply, 3, "malformed block request");
    em_fetch_serve_block(NULL, ok, sizeof ok, &reply);
    assert_refusal(&reply, 1, "block of dataset 5 (application 0) "
                              "partition 1: this executor caches nothing");
    ember_buf_release(&reply);
}

/* A message sink for the replicator: the last BLOCK_STORED, decoded. */
typedef struct sink {
    int sent;
    em_block_report rep;
} sink;

static ember_status sink_send(void *ctx, const uint8_t *msg, size_t len)
{
    sink *s = ctx;
    em_msg_block_stored m;
    assert_int_equal(em_msg_decode_block_stored(msg, len, &m, NULL),
                     EMBER_OK);
    em_block_report_release(&s->rep);
    assert_int_equal(em_block_report_decode(m.report.data, m.report.len,
                                            &s->rep, NULL),
                     EMBER_OK);
    s->sent++;
    return EMBER_OK;
}

static void submit(em_replicator *r, uint32_t partition, const char *ep)
{
    ember_buf msg = ember_buf_heap();
    em_msg_replicate m = req_of(partition, "MEMORY_ONLY_2", ep);
    assert_int_equal(em_msg_encode_replicate(&msg, &m), EMBER_OK);
    em_replicator_submit(r, msg.data, msg.len);
    ember_buf_release(&msg);
}

/* The replicator copies on its thread and sends BLOCK_STORED; a copy of
 * an unreachable source counts as failed and sends nothing. */
static void test_replicator_reports(void **state)
{
    (void)state;
    sink s = {0};
    em_replicator *r;
    ember_error err;
    assert_int_equal(em_replicator_create(&r, dst.m, "exec-2", 5000,
                                          sink_send, &s, &err),
                     EMBER_OK);
    submit(r, 9, "inproc://nobody");
    submit(r, 1, URL);
    uint64_t done = 0, failed = 0;
    for (int i = 0; i < 5000 && done + failed < 2; i++) {
        em_replicator_counts(r, &done, &failed);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    em_replicator_destroy(r);
    assert_int_equal(done, 1);
    assert_int_equal(failed, 1);
    assert_int_equal(s.sent, 1);
    assert_int_equal(s.rep.n, 1);
    assert_int_equal(s.rep.e[0].partition, 1);
    assert_int_equal(s.rep.e[0].tier, EM_BLOCK_MEMORY);
    em_block_report_release(&s.rep);
    assert_int_equal(em_block_mgr_where(dst.m, KEY, 1), EM_BLOCK_MEMORY);
}

/* A stopped replicator copies nothing it is given; forgetting drops
 * queued copies, and destroy frees the rest without making them. */
static void test_replicator_forgets(void **state)
{
    (void)state;
    sink s = {0};
    em_replicator *r;
    ember_error err;
    assert_int_equal(em_replicator_create(&r, dst.m, "exec-2", 5000,
                                          sink_send, &s, &err),
                     EMBER_OK);
    em_replicator_stop(r); /* nothing runs: the queue only fills */
    submit(r, 1, URL);
    submit(r, 1, URL);
    em_replicator_forget(r, KEY);
    submit(r, 1, URL);
    em_replicator_destroy(r);
    assert_int_equal(s.sent, 0);
    assert_int_equal(em_block_mgr_where(dst.m, KEY, 1), EM_BLOCK_NOWHERE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_arrives_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failures_store_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_serve_refusals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replicator_reports, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replicator_forgets, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
