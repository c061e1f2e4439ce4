/*
 * storage_test.c — the storage tier plugins (memory, disk, offheap),
 * linked statically and run against the fake host.
 *
 * Every tier: its descriptor (one "store" component, flags, replication
 * 1); put/get round trips of multi-record batches (exact bytes and count,
 * appended after what the output buffer already holds; empty and 1 MiB
 * blocks too); a missing id is EMBER_ENOTFOUND; remove then get is
 * EMBER_ENOTFOUND; put of an existing id replaces it; invalid ids are
 * refused by put, get and remove, and the longest and oddest valid ones
 * work; 4 threads putting, getting, replacing and removing distinct ids at
 * once; everything allocated is freed by close.
 * disk: the directory is created; a truncated file, a flipped payload
 * byte, a wrong magic and a corrupt header are EMBER_EINVAL naming the
 * file; leftover temporary files are never read and open removes them; a
 * write over the file-size limit is EMBER_ENOSPC with nothing left behind
 * and the block it replaced intact.
 * offheap: a second store on the same dir (another executor) reads the
 * blocks of the first after it is closed, one on another dir does not; an
 * incomplete block (state word not set), a flipped byte and a truncated
 * object are EMBER_EINVAL; remove unlinks the object in /dev/shm; the
 * file-size limit gives EMBER_ENOSPC and no object. Teardown removes the test's
 * /dev/shm objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "ember/storage.h"
#include "fake_host.h"
#include "test_util.h"

/* The entries of the statically linked plugins (EMBER_PLUGIN_STATIC). */
const ember_plugin_info *ember_plugin_entry_memory(void);
const ember_plugin_info *ember_plugin_entry_disk(void);
const ember_plugin_info *ember_plugin_entry_offheap(void);

#define MIB ((size_t)1 << 20)
#define SHM_DIR "/dev/shm"
#define HDR 48 /* bytes of the stored block header (tier_block.h) */
#define STATE_OFF 40 /* offset of its state word */

/* One tier under test: its plugin and, once set up, an open store. */
typedef struct tier_case {
    const char *plugin;
    ember_plugin_entry_fn entry;
    uint32_t flags;
    const ember_storage_vtable *vt;
    void *st;
    char base[64];       /* mkdtemp'd; removed by teardown */
    char dir[128];       /* the store's dir: base/local/executor-1 */
    long allocs_before;
} tier_case;

static tier_case case_memory = {"memory", ember_plugin_entry_memory,
                                EMBER_STORAGE_MEMORY, NULL, NULL, "", "", 0};
static tier_case case_disk = {"disk", ember_plugin_entry_disk,
                              EMBER_STORAGE_DISK, NULL, NULL, "", "", 0};
static tier_case case_offheap = {"offheap", ember_plugin_entry_offheap,
                                 EMBER_STORAGE_MEMORY |
                                     EMBER_STORAGE_OFF_HEAP,
                                 NULL, NULL, "", "", 0};

/* ---- helpers ----------------------------------------------------------- */

/* xorshift64*: deterministic pseudo-random numbers. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/*
 * A batch of `n` records of pseudo-random bytes from seed into b (which
 * the caller releases), record lengths 0 to 299 (so some frames need a
 * two-byte length). Returns the record count.
 */
static uint64_t make_batch(ember_buf *b, uint64_t n, uint64_t seed)
{
    uint8_t rec[300];
    uint64_t s = seed ? seed : 1;
    *b = ember_buf_heap();
    for (uint64_t i = 0; i < n; i++) {
        size_t len = (size_t)(rng_next(&s) % sizeof rec);
        for (size_t k = 0; k < len; k++)
            rec[k] = (uint8_t)(rng_next(&s) >> 56);
        assert_int_equal(ember_batch_append(b, rec, len), EMBER_OK);
    }
    return n;
}

/* A batch of about `bytes` bytes (records of 1000 bytes). */
static uint64_t make_big_batch(ember_buf *b, size_t bytes, uint64_t seed)
{
    static uint8_t rec[1000];
    uint64_t s = seed ? seed : 1;
    uint64_t n = 0;
    *b = ember_buf_heap();
    while (b->len < bytes) {
        for (size_t k = 0; k < sizeof rec; k++)
            rec[k] = (uint8_t)(rng_next(&s) >> 56);
        assert_int_equal(ember_batch_append(b, rec, sizeof rec), EMBER_OK);
        n++;
    }
    return n;
}

/* The batch view of buffer b holding `count` records. */
static ember_batch batch_of(const ember_buf *b, uint64_t count)
{
    ember_batch batch = {b->data, b->len, count};
    return batch;
}

/* put of b (count records) under id; the status. */
static ember_status put_buf(tier_case *tc, const char *id, const ember_buf *b,
                            uint64_t count, ember_error *err)
{
    ember_batch batch = batch_of(b, count);
    ember_error_clear(err);
    return tc->vt->put(tc->st, id, &batch, err);
}

/* Fails the test unless block id holds exactly b's bytes and count. */
static void expect_block(tier_case *tc, const char *id, const ember_buf *b,
                         uint64_t count)
{
    ember_error err;
    ember_error_clear(&err);
    ember_buf out = ember_buf_heap();
    uint64_t got = UINT64_MAX;
    ember_status s = tc->vt->get(tc->st, id, &out, &got, &err);
    if (s != EMBER_OK)
        fail_msg("%s: get %s: %d %s", tc->plugin, id, s, err.msg);
    assert_int_equal(got, count);
    assert_int_equal(out.len, b->len);
    if (b->len)
        assert_memory_equal(out.data, b->data, b->len);
    ember_buf_release(&out);
}

/* Expects get of id to fail with `code` and a message holding `needle`
 * (when not NULL), leaving the output buffer (which holds "keep") as it
 * was. */
static void expect_get_fails(tier_case *tc, const char *id,
                             ember_status code, const char *needle)
{
    ember_error err;
    ember_error_clear(&err);
    ember_buf out = ember_buf_heap();
    assert_int_equal(ember_buf_append(&out, "keep", 4), EMBER_OK);
    uint64_t got = 12345;
    ember_status s = tc->vt->get(tc->st, id, &out, &got, &err);
    if (s != code)
        fail_msg("%s: get %s: got %d (%s), want %d", tc->plugin, id, s,
                 err.msg, code);
    assert_int_equal(err.code, code);
    if (needle)
        assert_contains(err.msg, needle);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "keep", 4);
    assert_int_equal(got, 12345);
    ember_buf_release(&out);
}

/* The /dev/shm name prefix of the offheap objects of dir
 * ("ember-<XXH3-64 of dir in hex>-"). */
static void shm_prefix(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "ember-%016llx-",
             (unsigned long long)XXH3_64bits(dir, strlen(dir)));
}

/* The /dev/shm path of offheap block id of dir. */
static void shm_path(const char *dir, const char *id, char *out, size_t cap)
{
    char prefix[64];
    shm_prefix(dir, prefix, sizeof prefix);
    snprintf(out, cap, SHM_DIR "/%s%s", prefix, id);
}

/* Unlinks every /dev/shm object of dir; how many there were. */
static int shm_cleanup(const char *dir)
{
    char prefix[64];
    int n = 0;
    shm_prefix(dir, prefix, sizeof prefix);
    DIR *d = opendir(SHM_DIR);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, SHM_DIR "/%s", e->d_name);
        unlink(path);
        n++;
    }
    closedir(d);
    return n;
}

/* The entries of directory dir, "." and ".." not counted. */
static int count_entries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* The disk path of block id (dir/<id>.blk). */
static void disk_path(const tier_case *tc, const char *id, char *out,
                      size_t cap)
{
    snprintf(out, cap, "%s/%s.blk", tc->dir, id);
}

/* The file that holds block id in the tier (disk file or shm object). */
static void block_path(const tier_case *tc, const char *id, char *out,
                       size_t cap)
{
    if (tc == &case_disk)
        disk_path(tc, id, out, cap);
    else
        shm_path(tc->dir, id, out, cap);
}

/* Flips one bit of byte `off` of file path. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* The size of file path, -1 when it does not exist. */
static long long file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (long long)sb.st_size;
}

/* Finds the single "store" component of a storage plugin. */
static const ember_storage_vtable *tier_vtable(const ember_plugin_info *info)
{
    assert_non_null(info);
    assert_int_equal(info->component_count, 1);
    const ember_component *c = &info->components[0];
    assert_int_equal(c->kind, EMBER_KIND_STORAGE);
    assert_int_equal(c->kind_version, EMBER_STORAGE_VERSION);
    assert_string_equal(c->name, "store");
    assert_int_equal(c->vtable_size, sizeof(ember_storage_vtable));
    return c->vtable;
}

/* Opens a store of the case on dir into *st. */
static void open_store(tier_case *tc, const char *dir, void **st)
{
    ember_error err;
    ember_error_clear(&err);
    ember_status s = tc->vt->open(em_fake_host(), dir, st, &err);
    if (s != EMBER_OK)
        fail_msg("%s: open %s: %d %s", tc->plugin, dir, s, err.msg);
    assert_non_null(*st);
}

/* cmocka setup: a fresh temp dir and an open store in it. */
static int tier_setup(void **state)
{
    tier_case *tc = *state;
    em_fake_host_reset();
    tc->allocs_before = em_fake_host_live_allocs();
    tc->vt = tier_vtable(tc->entry());
    snprintf(tc->base, sizeof tc->base, "/tmp/ember-storage-test-XXXXXX");
    if (!mkdtemp(tc->base)) {
        print_error("mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(tc->dir, sizeof tc->dir, "%s/local/executor-1", tc->base);
    tc->st = NULL;
    ember_error err;
    ember_error_clear(&err);
    if (tc->vt->open(em_fake_host(), tc->dir, &tc->st, &err) != EMBER_OK) {
        print_error("open %s: %s\n", tc->plugin, err.msg);
        return -1;
    }
    return 0;
}

/* cmocka teardown: closes the store (which must free all it took) and
 * removes the temp dir and the store's /dev/shm objects. */
static int tier_teardown(void **state)
{
    tier_case *tc = *state;
    tc->vt->close(tc->st);
    tc->st = NULL;
    shm_cleanup(tc->dir);
    rmtree(tc->base);
    if (em_fake_host_live_allocs() != tc->allocs_before) {
        print_error("%s: %ld host allocations not freed\n", tc->plugin,
                    em_fake_host_live_allocs() - tc->allocs_before);
        return -1;
    }
    return 0;
}

/* ---- every tier --------------------------------------------------------- */

static void test_descriptor(void **state)
{
    tier_case *tc = *state;
    const ember_plugin_info *info = tc->entry();
    assert_string_equal(info->name, tc->plugin);
    assert_int_equal(tc->vt->flags, tc->flags);
    assert_int_equal(tc->vt->replication, 1);
    assert_non_null(tc->vt->open);
    assert_non_null(tc->vt->close);
    assert_non_null(tc->vt->put);
    assert_non_null(tc->vt->get);
    assert_non_null(tc->vt->remove);
}

static void test_round_trip(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    ember_buf small, big, empty = ember_buf_heap();
    uint64_t n_small = make_batch(&small, 100, 7);
    uint64_t n_big = make_big_batch(&big, MIB, 8);
    assert_true(small.len > 1000);

    assert_int_equal(put_buf(tc, "rdd_3_7", &small, n_small, &err),
                     EMBER_OK);
    assert_int_equal(put_buf(tc, "rdd_3_8", &big, n_big, &err), EMBER_OK);
    assert_int_equal(put_buf(tc, "rdd_3_9", &empty, 0, &err), EMBER_OK);
    expect_block(tc, "rdd_3_7", &small, n_small);
    expect_block(tc, "rdd_3_8", &big, n_big);
    expect_block(tc, "rdd_3_9", &empty, 0);
    /* Reading twice gives the same (get does not consume). */
    expect_block(tc, "rdd_3_7", &small, n_small);

    /* get appends after what the buffer already holds. */
    ember_buf out = ember_buf_heap();
    assert_int_equal(ember_buf_append(&out, "prefix", 6), EMBER_OK);
    uint64_t count = 0;
    ember_error_clear(&err);
    assert_int_equal(tc->vt->get(tc->st, "rdd_3_7", &out, &count, &err),
                     EMBER_OK);
    assert_int_equal(count, n_small);
    assert_int_equal(out.len, 6 + small.len);
    assert_memory_equal(out.data, "prefix", 6);
    assert_memory_equal(out.data + 6, small.data, small.len);

    /* The stored bytes are a copy: changing the caller's batch after put
     * changes nothing. */
    ember_buf copy = ember_buf_heap();
    assert_int_equal(ember_buf_append(&copy, small.data, small.len),
                     EMBER_OK);
    memset(small.data, 0, small.len);
    expect_block(tc, "rdd_3_7", &copy, n_small);

    /* The batch's records read back one by one. */
    ember_batch b = batch_of(&copy, n_small);
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    uint64_t seen = 0;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK)
        seen++;
    assert_int_equal(seen, n_small);

    /* A fixed output buffer that is too small: the buffer's status, the
     * buffer unchanged. */
    uint8_t tiny[16];
    ember_buf fixed = ember_buf_fixed(tiny, sizeof tiny);
    ember_error_clear(&err);
    assert_int_equal(tc->vt->get(tc->st, "rdd_3_7", &fixed, &count, &err),
                     EMBER_ENOSPC);
    assert_int_equal(fixed.len, 0);
    assert_contains(err.msg, "rdd_3_7");

    ember_buf_release(&copy);
    ember_buf_release(&out);
    ember_buf_release(&small);
    ember_buf_release(&big);
}

static void test_missing(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    expect_get_fails(tc, "rdd_1_1", EMBER_ENOTFOUND, "rdd_1_1");
    ember_error_clear(&err);
    assert_int_equal(tc->vt->remove(tc->st, "rdd_1_1", &err),
                     EMBER_ENOTFOUND);
    assert_contains(err.msg, "rdd_1_1");
    /* Another block being there changes nothing. */
    ember_buf b;
    uint64_t n = make_batch(&b, 3, 1);
    assert_int_equal(put_buf(tc, "rdd_1_2", &b, n, &err), EMBER_OK);
    expect_get_fails(tc, "rdd_1_1", EMBER_ENOTFOUND, "rdd_1_1");
    ember_buf_release(&b);
}

static void test_remove(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    ember_buf a, b;
    uint64_t na = make_batch(&a, 10, 2);
    uint64_t nb = make_batch(&b, 11, 3);
    assert_int_equal(put_buf(tc, "rdd_2_0", &a, na, &err), EMBER_OK);
    assert_int_equal(put_buf(tc, "rdd_2_1", &b, nb, &err), EMBER_OK);
    ember_error_clear(&err);
    assert_int_equal(tc->vt->remove(tc->st, "rdd_2_0", &err), EMBER_OK);
    expect_get_fails(tc, "rdd_2_0", EMBER_ENOTFOUND, "rdd_2_0");
    ember_error_clear(&err);
    assert_int_equal(tc->vt->remove(tc->st, "rdd_2_0", &err),
                     EMBER_ENOTFOUND);
    /* Only that block went. */
    expect_block(tc, "rdd_2_1", &b, nb);
    /* The id can be used again. */
    assert_int_equal(put_buf(tc, "rdd_2_0", &b, nb, &err), EMBER_OK);
    expect_block(tc, "rdd_2_0", &b, nb);
    ember_buf_release(&a);
    ember_buf_release(&b);
}

static void test_replace(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    ember_buf a, b, empty = ember_buf_heap();
    uint64_t na = make_batch(&a, 50, 4);
    uint64_t nb = make_batch(&b, 5, 5);
    assert_int_equal(put_buf(tc, "broadcast_0", &a, na, &err), EMBER_OK);
    assert_int_equal(put_buf(tc, "broadcast_0", &b, nb, &err), EMBER_OK);
    expect_block(tc, "broadcast_0", &b, nb);
    /* Back to the larger one, then to an empty one. */
    assert_int_equal(put_buf(tc, "broadcast_0", &a, na, &err), EMBER_OK);
    expect_block(tc, "broadcast_0", &a, na);
    assert_int_equal(put_buf(tc, "broadcast_0", &empty, 0, &err), EMBER_OK);
    expect_block(tc, "broadcast_0", &empty, 0);
    /* One remove drops it: a replaced block leaves nothing behind. */
    ember_error_clear(&err);
    assert_int_equal(tc->vt->remove(tc->st, "broadcast_0", &err), EMBER_OK);
    expect_get_fails(tc, "broadcast_0", EMBER_ENOTFOUND, NULL);
    ember_buf_release(&a);
    ember_buf_release(&b);
}

static void test_invalid_ids(void **state)
{
    tier_case *tc = *state;
    char too_long[202];
    memset(too_long, 'a', 201);
    too_long[201] = '\0';
    const char *const bad[] = {
        "",      "a/b",     "/etc/passwd", ".",   "..",     "../x",
        "a b",   "rdd\n1",  "rdd_1\t",     "a~b", "caf\xc3\xa9",
        "a:b",   too_long,
    };
    ember_buf b;
    uint64_t n = make_batch(&b, 2, 6);
    ember_batch batch = batch_of(&b, n);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ember_error err;
        ember_buf out = ember_buf_heap();
        uint64_t count = 0;
        ember_error_clear(&err);
        if (tc->vt->put(tc->st, bad[i], &batch, &err) != EMBER_EINVAL)
            fail_msg("%s: put of bad id %zu accepted", tc->plugin, i);
        assert_contains(err.msg, "block id");
        assert_contains(err.msg, tc->plugin);
        ember_error_clear(&err);
        assert_int_equal(tc->vt->get(tc->st, bad[i], &out, &count, &err),
                         EMBER_EINVAL);
        assert_int_equal(out.len, 0);
        ember_error_clear(&err);
        assert_int_equal(tc->vt->remove(tc->st, bad[i], &err),
                         EMBER_EINVAL);
    }
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(tc->vt->put(tc->st, NULL, &batch, &err), EMBER_EINVAL);

    /* Nothing was stored under any of them, not even by another name. */
    if (tc == &case_disk) {
        assert_int_equal(count_entries(tc->dir), 0);
    } else if (tc == &case_offheap) {
        assert_int_equal(shm_cleanup(tc->dir), 0);
    }

    /* The edges that are valid. */
    char longest[201];
    memset(longest, 'z', 200);
    longest[200] = '\0';
    const char *const good[] = {longest, "..a", ".x", "a..b",
                                "rdd_3_7-Aa.0", "-", "_"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (put_buf(tc, good[i], &b, n, &err) != EMBER_OK)
            fail_msg("%s: put %s: %s", tc->plugin, good[i], err.msg);
        expect_block(tc, good[i], &b, n);
    }
    ember_buf_release(&b);
}

/* ---- concurrency -------------------------------------------------------- */

#define CONC_THREADS 4
#define CONC_IDS 48

typedef struct conc_arg {
    tier_case *tc;
    int t;
    _Atomic int *failures;
    char first_failure[256];
} conc_arg;

/* The content of block i of thread t, version v. */
static uint64_t conc_batch(ember_buf *b, int t, int i, int v)
{
    return make_batch(b, (uint64_t)(1 + (i % 7) * 3),
                      (uint64_t)(t * 100000 + i * 10 + v + 1));
}

/* Notes a failure (the first one's text is kept for the main thread). */
static void conc_fail(conc_arg *a, const char *what, const char *id,
                      const char *msg)
{
    atomic_fetch_add(a->failures, 1);
    if (a->first_failure[0] == '\0')
        snprintf(a->first_failure, sizeof a->first_failure, "%s %s: %s",
                 what, id, msg);
}

/* Checks block id holds b (count); 0 when it does. */
static int conc_check(conc_arg *a, const char *id, const ember_buf *b,
                      uint64_t count)
{
    ember_error err;
    ember_error_clear(&err);
    ember_buf out = ember_buf_heap();
    uint64_t got = 0;
    int bad = 0;
    ember_status s = a->tc->vt->get(a->tc->st, id, &out, &got, &err);
    if (s != EMBER_OK) {
        conc_fail(a, "get", id, err.msg);
        bad = 1;
    } else if (got != count || out.len != b->len ||
               (b->len && memcmp(out.data, b->data, b->len) != 0)) {
        conc_fail(a, "get", id, "wrong bytes or count");
        bad = 1;
    }
    ember_buf_release(&out);
    return bad;
}

/* One thread: put its ids, read them back, replace every third, remove
 * every fourth, and read everything again. */
static void *conc_main(void *p)
{
    conc_arg *a = p;
    tier_case *tc = a->tc;
    ember_error err;
    char id[32];
    for (int i = 0; i < CONC_IDS; i++) {
        ember_buf b;
        uint64_t n = conc_batch(&b, a->t, i, 0);
        snprintf(id, sizeof id, "rdd_%d_%d", a->t, i);
        ember_batch batch = batch_of(&b, n);
        ember_error_clear(&err);
        if (tc->vt->put(tc->st, id, &batch, &err) != EMBER_OK)
            conc_fail(a, "put", id, err.msg);
        else
            conc_check(a, id, &b, n);
        ember_buf_release(&b);
    }
    for (int i = 0; i < CONC_IDS; i++) {
        snprintf(id, sizeof id, "rdd_%d_%d", a->t, i);
        if (i % 3 == 0) {
            ember_buf b;
            uint64_t n = conc_batch(&b, a->t, i, 1);
            ember_batch batch = batch_of(&b, n);
            ember_error_clear(&err);
            if (tc->vt->put(tc->st, id, &batch, &err) != EMBER_OK)
                conc_fail(a, "replace", id, err.msg);
            ember_buf_release(&b);
        }
        if (i % 4 == 0) {
            ember_error_clear(&err);
            if (tc->vt->remove(tc->st, id, &err) != EMBER_OK)
                conc_fail(a, "remove", id, err.msg);
        }
    }
    for (int i = 0; i < CONC_IDS; i++) {
        snprintf(id, sizeof id, "rdd_%d_%d", a->t, i);
        if (i % 4 == 0) {
            ember_buf out = ember_buf_heap();
            uint64_t got = 0;
            ember_error_clear(&err);
            if (tc->vt->get(tc->st, id, &out, &got, &err) !=
                EMBER_ENOTFOUND)
                conc_fail(a, "get removed", id, "not EMBER_ENOTFOUND");
            ember_buf_release(&out);
            continue;
        }
        ember_buf b;
        uint64_t n = conc_batch(&b, a->t, i, i % 3 == 0 ? 1 : 0);
        conc_check(a, id, &b, n);
        ember_buf_release(&b);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    tier_case *tc = *state;
    pthread_t th[CONC_THREADS];
    conc_arg args[CONC_THREADS];
    _Atomic int failures = 0;
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t].tc = tc;
        args[t].t = t;
        args[t].failures = &failures;
        args[t].first_failure[0] = '\0';
        assert_int_equal(pthread_create(&th[t], NULL, conc_main, &args[t]),
                         0);
    }
    for (int t = 0; t < CONC_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < CONC_THREADS; t++)
        if (args[t].first_failure[0])
            fail_msg("%s: thread %d: %s (%d failures in all)", tc->plugin, t,
                     args[t].first_failure, (int)failures);
    assert_int_equal(failures, 0);

    /* The main thread sees the same final state. */
    for (int t = 0; t < CONC_THREADS; t++)
        for (int i = 0; i < CONC_IDS; i++) {
            char id[32];
            snprintf(id, sizeof id, "rdd_%d_%d", t, i);
            if (i % 4 == 0) {
                expect_get_fails(tc, id, EMBER_ENOTFOUND, NULL);
                continue;
            }
            ember_buf b;
            uint64_t n = conc_batch(&b, t, i, i % 3 == 0 ? 1 : 0);
            expect_block(tc, id, &b, n);
            ember_buf_release(&b);
        }
}

/* ---- memory ------------------------------------------------------------- */

static void test_memory_out_of_memory(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    ember_buf a, b;
    uint64_t na = make_batch(&a, 20, 9);
    uint64_t nb = make_batch(&b, 21, 10);
    assert_int_equal(put_buf(tc, "rdd_9_0", &a, na, &err), EMBER_OK);
    em_fake_host_fail_allocs(1);
    assert_int_equal(put_buf(tc, "rdd_9_0", &b, nb, &err), EMBER_ENOMEM);
    assert_contains(err.msg, "rdd_9_0");
    assert_int_equal(put_buf(tc, "rdd_9_1", &b, nb, &err), EMBER_OK);
    em_fake_host_fail_allocs(0);
    /* The failed put left the old block as it was. */
    expect_block(tc, "rdd_9_0", &a, na);
    expect_block(tc, "rdd_9_1", &b, nb);
    ember_buf_release(&a);
    ember_buf_release(&b);
}

/* ---- disk --------------------------------------------------------------- */

static void test_disk_layout(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    char path[512];
    struct stat sb;
    /* open created the directory, parents included. */
    assert_int_equal(stat(tc->dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    ember_buf b;
    uint64_t n = make_batch(&b, 30, 11);
    assert_int_equal(put_buf(tc, "rdd_4_0", &b, n, &err), EMBER_OK);
    disk_path(tc, "rdd_4_0", path, sizeof path);
    assert_int_equal(file_size(path), (long long)(HDR + b.len));
    /* Only the block's file: no temporary file is left. */
    char found[256];
    find_entry(tc->dir, "rdd_4_0.blk.", found, sizeof found);
    assert_string_equal(found, "");
    /* remove unlinks it. */
    ember_error_clear(&err);
    assert_int_equal(tc->vt->remove(tc->st, "rdd_4_0", &err), EMBER_OK);
    assert_int_equal(file_size(path), -1);
    ember_buf_release(&b);
}

/* Puts a block under id and returns the path of its file (disk) or object
 * (offheap) in path. */
static void put_for_corruption(tier_case *tc, const char *id, char *path,
                               size_t cap, ember_buf *b)
{
    ember_error err;
    uint64_t n = make_batch(b, 40, 12);
    assert_int_equal(put_buf(tc, id, b, n, &err), EMBER_OK);
    expect_block(tc, id, b, n);
    block_path(tc, id, path, cap);
    assert_int_equal(file_size(path), (long long)(HDR + b->len));
}

static void test_corrupt_truncated(void **state)
{
    tier_case *tc = *state;
    char path[512];
    ember_buf b;
    put_for_corruption(tc, "rdd_5_0", path, sizeof path, &b);
    const char *shown = tc == &case_disk ? path : strrchr(path, '/');
    /* Cut in the payload. */
    assert_int_equal(truncate(path, (off_t)(HDR + b.len / 2)), 0);
    expect_get_fails(tc, "rdd_5_0", EMBER_EINVAL, shown);
    /* Cut in the header. */
    assert_int_equal(truncate(path, 20), 0);
    expect_get_fails(tc, "rdd_5_0", EMBER_EINVAL, shown);
    /* Empty. */
    assert_int_equal(truncate(path, 0), 0);
    expect_get_fails(tc, "rdd_5_0", EMBER_EINVAL, shown);
    /* Longer than the header says. */
    ember_buf_release(&b);
    put_for_corruption(tc, "rdd_5_1", path, sizeof path, &b);
    assert_int_equal(truncate(path, (off_t)(HDR + b.len + 1)), 0);
    expect_get_fails(tc, "rdd_5_1", EMBER_EINVAL, "truncated or corrupt");
    ember_buf_release(&b);
}

static void test_corrupt_flipped_byte(void **state)
{
    tier_case *tc = *state;
    char path[512];
    ember_buf b;
    put_for_corruption(tc, "rdd_6_0", path, sizeof path, &b);
    const char *shown = tc == &case_disk ? path : strrchr(path, '/');
    flip_byte(path, (off_t)(HDR + b.len / 3));
    expect_get_fails(tc, "rdd_6_0", EMBER_EINVAL, shown);
    expect_get_fails(tc, "rdd_6_0", EMBER_EINVAL, "checksum");
    /* The last byte too. */
    flip_byte(path, (off_t)(HDR + b.len / 3));
    flip_byte(path, (off_t)(HDR + b.len - 1));
    expect_get_fails(tc, "rdd_6_0", EMBER_EINVAL, "checksum");
    ember_buf_release(&b);
}

static void test_corrupt_header(void **state)
{
    tier_case *tc = *state;
    char path[512];
    ember_buf b;
    /* Wrong magic. */
    put_for_corruption(tc, "rdd_7_0", path, sizeof path, &b);
    const char *shown = tc == &case_disk ? path : strrchr(path, '/');
    flip_byte(path, 1);
    expect_get_fails(tc, "rdd_7_0", EMBER_EINVAL, shown);
    expect_get_fails(tc, "rdd_7_0", EMBER_EINVAL, "magic");
    ember_buf_release(&b);
    /* A corrupt record count (caught by the header checksum). */
    put_for_corruption(tc, "rdd_7_1", path, sizeof path, &b);
    flip_byte(path, 8);
    expect_get_fails(tc, "rdd_7_1", EMBER_EINVAL, shown);
    ember_buf_release(&b);
    /* A file that is not a block at all. */
    put_for_corruption(tc, "rdd_7_2", path, sizeof path, &b);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100; i++)
        fputs("not a block\n", f);
    fclose(f);
    expect_get_fails(tc, "rdd_7_2", EMBER_EINVAL, shown);
    ember_buf_release(&b);
}

static void test_disk_temp_files(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    char path[512], tmp[600];
    ember_buf a, b;
    uint64_t na = make_batch(&a, 10, 13);
    uint64_t nb = make_batch(&b, 12, 14);
    /* A complete block sitting under a temporary name (a writer that
     * crashed just before its rename) is not a block. */
    assert_int_equal(put_buf(tc, "rdd_8_0", &a, na, &err), EMBER_OK);
    disk_path(tc, "rdd_8_0", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp~4242.0", path);
    assert_int_equal(rename(path, tmp), 0);
    expect_get_fails(tc, "rdd_8_0", EMBER_ENOTFOUND, NULL);
    /* Nor is it read as any other id ("rdd_8_0.blk.tmp~4242.0" is not a
     * valid id, and no valid id maps to its name). */
    expect_get_fails(tc, "rdd_8_0.blk", EMBER_ENOTFOUND, NULL);
    assert_int_equal(put_buf(tc, "rdd_8_1", &b, nb, &err), EMBER_OK);

    /* A new store on the directory (the executor restarted) removes the
     * leftover and keeps the blocks. */
    tc->vt->close(tc->st);
    tc->st = NULL;
    open_store(tc, tc->dir, &tc->st);
    assert_int_equal(file_size(tmp), -1);
    expect_block(tc, "rdd_8_1", &b, nb);
    expect_get_fails(tc, "rdd_8_0", EMBER_ENOTFOUND, NULL);
    ember_buf_release(&a);
    ember_buf_release(&b);
}

/* Puts 1 MiB with the file-size limit at 64 KiB: EMBER_ENOSPC and nothing
 * left behind. The block that put was replacing: intact on disk (the new
 * one never got its name); gone from offheap (an object cannot be renamed,
 * so put unlinks the old one first, as documented). */
static void test_no_space(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    ember_buf small, big;
    uint64_t ns = make_batch(&small, 10, 15);
    uint64_t nb = make_big_batch(&big, MIB, 16);
    assert_int_equal(put_buf(tc, "rdd_10_0", &small, ns, &err), EMBER_OK);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ember_status s1 = put_buf(tc, "rdd_10_0", &big, nb, &err);
    ember_error err1 = err;
    ember_status s2 = put_buf(tc, "rdd_10_1", &big, nb, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);

    assert_int_equal(s1, EMBER_ENOSPC);
    assert_int_equal(s2, EMBER_ENOSPC);
    assert_contains(err1.msg, "rdd_10_0");
    assert_contains(err1.msg, "not stored");
    if (tc == &case_disk)
        expect_block(tc, "rdd_10_0", &small, ns);
    else
        expect_get_fails(tc, "rdd_10_0", EMBER_ENOTFOUND, NULL);
    expect_get_fails(tc, "rdd_10_1", EMBER_ENOTFOUND, NULL);
    if (tc == &case_disk) {
        char found[256];
        find_entry(tc->dir, "rdd_10_1", found, sizeof found);
        assert_string_equal(found, "");
        find_entry(tc->dir, "rdd_10_0.blk.", found, sizeof found);
        assert_string_equal(found, "");
    } else {
        char path[512];
        shm_path(tc->dir, "rdd_10_1", path, sizeof path);
        assert_int_equal(file_size(path), -1);
    }
    /* With room again, the same put works. */
    assert_int_equal(put_buf(tc, "rdd_10_1", &big, nb, &err), EMBER_OK);
    expect_block(tc, "rdd_10_1", &big, nb);
    ember_buf_release(&small);
    ember_buf_release(&big);
}

/* ---- offheap ------------------------------------------------------------ */

static void test_offheap_outlives_store(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    ember_buf a, b;
    uint64_t na = make_batch(&a, 25, 17);
    uint64_t nb = make_big_batch(&b, MIB / 2, 18);
    assert_int_equal(put_buf(tc, "rdd_11_0", &a, na, &err), EMBER_OK);
    assert_int_equal(put_buf(tc, "rdd_11_1", &b, nb, &err), EMBER_OK);
    /* The first executor goes away (close, as a crash would leave it:
     * close removes nothing). */
    tc->vt->close(tc->st);
    tc->st = NULL;
    char path[512];
    shm_path(tc->dir, "rdd_11_0", path, sizeof path);
    assert_int_equal(file_size(path), (long long)(HDR + a.len));

    /* Another executor opens the tier with the same dir. */
    open_store(tc, tc->dir, &tc->st);
    expect_block(tc, "rdd_11_0", &a, na);
    expect_block(tc, "rdd_11_1", &b, nb);

    /* A store on another dir does not see them. */
    void *other = NULL;
    char other_dir[160];
    snprintf(other_dir, sizeof other_dir, "%s/local/executor-2", tc->base);
    open_store(tc, other_dir, &other);
    uint64_t count;
    ember_buf out = ember_buf_heap();
    ember_error_clear(&err);
    assert_int_equal(tc->vt->get(other, "rdd_11_0", &out, &count, &err),
                     EMBER_ENOTFOUND);
    tc->vt->close(other);
    assert_int_equal(shm_cleanup(other_dir), 0);
    ember_buf_release(&out);
    ember_buf_release(&a);
    ember_buf_release(&b);
}

static void test_offheap_incomplete(void **state)
{
    tier_case *tc = *state;
    char path[512];
    ember_buf b;
    put_for_corruption(tc, "rdd_12_0", path, sizeof path, &b);
    /* Clear the state word, as a writer that crashed before setting it
     * would leave it. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint32_t zero = 0;
    assert_int_equal(pwrite(fd, &zero, sizeof zero, STATE_OFF),
                     (ssize_t)sizeof zero);
    close(fd);
    expect_get_fails(tc, "rdd_12_0", EMBER_EINVAL, "incomplete");
    expect_get_fails(tc, "rdd_12_0", EMBER_EINVAL, strrchr(path, '/'));
    /* A fresh put of the id replaces it with a complete block. */
    ember_error err;
    ember_buf_release(&b);
    uint64_t n = make_batch(&b, 3, 19);
    assert_int_equal(put_buf(tc, "rdd_12_0", &b, n, &err), EMBER_OK);
    expect_block(tc, "rdd_12_0", &b, n);
    ember_buf_release(&b);
}

static void test_offheap_remove_unlinks(void **state)
{
    tier_case *tc = *state;
    ember_error err;
    char path[512];
    ember_buf b;
    uint64_t n = make_batch(&b, 8, 20);
    assert_int_equal(put_buf(tc, "rdd_13_0", &b, n, &err), EMBER_OK);
    shm_path(tc->dir, "rdd_13_0", path, sizeof path);
    assert_int_equal(file_size(path), (long long)(HDR + b.len));
    /* A replacing put leaves one object. */
    assert_int_equal(put_buf(tc, "rdd_13_0", &b, n, &err), EMBER_OK);
    ember_error_clear(&err);
    assert_int_equal(tc->vt->remove(tc->st, "rdd_13_0", &err), EMBER_OK);
    assert_int_equal(file_size(path), -1);
    assert_int_equal(shm_cleanup(tc->dir), 0);
    ember_buf_release(&b);
}

/* ---- groups ------------------------------------------------------------- */

#define T(fn, tc)                                                          \
    cmocka_unit_test_prestate_setup_teardown(fn, tier_setup, tier_teardown, \
                                             &(tc))

#define COMMON_TESTS(tc)                                                   \
    T(test_descriptor, tc), T(test_round_trip, tc), T(test_missing, tc),   \
        T(test_remove, tc), T(test_replace, tc), T(test_invalid_ids, tc), \
        T(test_concurrent, tc)

int main(void)
{
    const struct CMUnitTest memory_tests[] = {
        COMMON_TESTS(case_memory),
        T(test_memory_out_of_memory, case_memory),
    };
    const struct CMUnitTest disk_tests[] = {
        COMMON_TESTS(case_disk),
        T(test_disk_layout, case_disk),
        T(test_corrupt_truncated, case_disk),
        T(test_corrupt_flipped_byte, case_disk),
        T(test_corrupt_header, case_disk),
        T(test_disk_temp_files, case_disk),
        T(test_no_space, case_disk),
    };
    const struct CMUnitTest offheap_tests[] = {
        COMMON_TESTS(case_offheap),
        T(test_offheap_outlives_store, case_offheap),
        T(test_offheap_incomplete, case_offheap),
        T(test_offheap_remove_unlinks, case_offheap),
        T(test_corrupt_truncated, case_offheap),
        T(test_corrupt_flipped_byte, case_offheap),
        T(test_corrupt_header, case_offheap),
        T(test_no_space, case_offheap),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("memory.store", memory_tests, NULL,
                                          NULL);
    failed += cmocka_run_group_tests_name("disk.store", disk_tests, NULL,
                                          NULL);
    failed += cmocka_run_group_tests_name("offheap.store", offheap_tests,
                                          NULL, NULL);
    return failed ? 1 : 0;
}
