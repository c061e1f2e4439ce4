/* Unit tests of the block manager over small in-test tiers (a memory list,
 * a disk tier over a temp dir with an optional checksum, both able to
 * answer ENOSPC) and an XOR codec: level names, where blocks go, LRU
 * eviction across datasets only (S19), disk fallback, serialized sizes,
 * corrupt blocks, unpersist, unrolling (S20), concurrent use, and tier
 * calls held inside the tier (test_memtier.h's gate): blocks pinned while
 * read, stores in progress, other calls going on meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/block_mgr.h"
#include "runtime/test_memtier.h"

/* ---- a memory tier: runtime/test_memtier.h */

/* ---- a disk tier: one file per block ------------------------------------
 * A file is "TDSK", the count, the length and an FNV-1a hash of the bytes
 * (8 bytes each, host order), then the bytes; with `verify` a mismatch
 * reads as EMBER_EINVAL. Thread-safe (the manager calls it concurrently):
 * files of different ids are independent, and `files` is atomic. */

#define DISK_HEADER 28

typedef struct disktier {
    char dir[64];
    bool enospc, verify;
    atomic_int files;
} disktier;

static void disk_path(const disktier *t, const char *id, char *path,
                      size_t cap)
{
    snprintf(path, cap, "%s/%s", t->dir, id);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static ember_status disk_put(void *st, const char *id, const ember_batch *b,
                             ember_error *err)
{
    disktier *t = st;
    char path[128];
    if (t->enospc)
        return ember_errorf(err, EMBER_ENOSPC, "disk full");
    disk_path(t, id, path, sizeof path);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return ember_errorf(err, EMBER_EIO, "cannot write %s", path);
    uint64_t len = b->len, h = fnv(b->data, b->len);
    int ok = fwrite("TDSK", 1, 4, f) == 4 &&
             fwrite(&b->count, 8, 1, f) == 1 && fwrite(&len, 8, 1, f) == 1 &&
             fwrite(&h, 8, 1, f) == 1 &&
             (b->len == 0 || fwrite(b->data, 1, b->len, f) == b->len);
    if (fclose(f) != 0 || !ok)
        return ember_errorf(err, EMBER_EIO, "cannot write %s", path);
    t->files++;
    return EMBER_OK;
}

static ember_status disk_get(void *st, const char *id, ember_buf *out,
                             uint64_t *count, ember_error *err)
{
    disktier *t = st;
    char path[128];
    disk_path(t, id, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s absent", id);
    char magic[4];
    uint64_t c, len, h;
    ember_status s = EMBER_OK;
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "TDSK", 4) != 0 ||
        fread(&c, 8, 1, f) != 1 || fread(&len, 8, 1, f) != 1 ||
        fread(&h, 8, 1, f) != 1) {
        s = ember_errorf(err, EMBER_EINVAL, "%s: bad header", id);
        goto done;
    }
    size_t mark = out->len;
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if ((s = ember_buf_append(out, chunk, n)) != EMBER_OK)
            goto done;
    if (t->verify && (out->len - mark != len ||
                      fnv(out->data + mark, len) != h)) {
        out->len = mark;
        s = ember_errorf(err, EMBER_EINVAL, "%s: checksum mismatch", id);
        goto done;
    }
    *count = c;
done:
    fclose(f);
    return s;
}

static ember_status disk_remove(void *st, const char *id, ember_error *err)
{
    disktier *t = st;
    char path[128];
    disk_path(t, id, path, sizeof path);
    if (unlink(path) != 0)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s absent", id);
    t->files--;
    return EMBER_OK;
}

static bool disk_has(const disktier *t, const char *id)
{
    char path[128];
    struct stat sb;
    disk_path(t, id, path, sizeof path);
    return stat(path, &sb) == 0;
}

static const ember_storage_vtable disk_vt = {
    EMBER_STORAGE_DISK, 1, NULL, NULL, disk_put, disk_get, disk_remove};

/* ---- an XOR codec: 'X' then every byte ^ 0x5A */

static size_t xor_bound(void *st, size_t n)
{
    (void)st;
    return n + 1;
}

static ember_status xor_compress(void *st, const uint8_t *src, size_t n,
                                 uint8_t *dst, size_t cap, size_t *out_len,
                                 ember_error *err)
{
    (void)st;
    if (cap < n + 1)
        return ember_errorf(err, EMBER_ENOSPC, "xor: small output");
    dst[0] = 'X';
    for (size_t i = 0; i < n; i++)
        dst[i + 1] = src[i] ^ 0x5A;
    *out_len = n + 1;
    return EMBER_OK;
}

static ember_status xor_decompress(void *st, const uint8_t *src, size_t n,
                                   uint8_t *dst, size_t dst_len,
                                   ember_error *err)
{
    (void)st;
    if (n != dst_len + 1 || src[0] != 'X')
        return ember_errorf(err, EMBER_EINVAL, "xor: corrupt input");
    for (size_t i = 0; i < dst_len; i++)
        dst[i] = src[i + 1] ^ 0x5A;
    return EMBER_OK;
}

static const ember_codec_vtable xor_vt = {NULL, NULL, xor_bound,
                                          xor_compress, xor_decompress};

/* ---- fixture */

typedef struct env {
    memtier mem, off;
    disktier disk;
    memtier mdisk; /* the disk tier with mem_disk: gated like memory */
    em_block_mgr *m;
} env;

typedef struct env_opts {
    uint64_t memory_budget, off_heap_budget, unroll_cap, unroll_threshold;
    bool codec, no_disk;
    bool mem_disk; /* a memtier (e->mdisk) as the disk tier */
} env_opts;

static env *env_open(env_opts eo)
{
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    snprintf(e->disk.dir, sizeof e->disk.dir, "/tmp/block_mgr_test.XXXXXX");
    assert_non_null(mkdtemp(e->disk.dir));
    e->disk.verify = true;
    em_block_mgr_opts o;
    memset(&o, 0, sizeof o);
    o.memory_budget = eo.memory_budget;
    o.off_heap_budget = eo.off_heap_budget;
    o.unroll_cap = eo.unroll_cap;
    o.unroll_threshold = eo.unroll_threshold;
    o.memory.vt = &mem_vt;
    o.memory.state = &e->mem;
    if (eo.mem_disk) {
        o.disk.vt = &mem_vt;
        o.disk.state = &e->mdisk;
    } else if (!eo.no_disk) {
        o.disk.vt = &disk_vt;
        o.disk.state = &e->disk;
    }
    o.off_heap.vt = &mem_vt;
    o.off_heap.state = &e->off;
    if (eo.codec)
        o.codec.vt = &xor_vt;
    ember_error err;
    assert_int_equal(em_block_mgr_open(&e->m, &o, &err), EMBER_OK);
    return e;
}

static void env_close(env *e)
{
    em_block_mgr_close(e->m);
    /* close leaves disk and off-heap blocks; the test cleans them up */
    mem_free_all(&e->off);
    mem_free_all(&e->mdisk);
    assert_int_equal(e->mem.blocks, 0);
    DIR *d = opendir(e->disk.dir);
    assert_non_null(d);
    struct dirent *de;
    char path[400];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", e->disk.dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(e->disk.dir);
    free(e);
}

static em_storage_level level(const char *name)
{
    em_storage_level l;
    assert_int_equal(em_storage_level_parse(name, &l, NULL), EMBER_OK);
    return l;
}

/* A batch of n records of 20 bytes (21 with framing), from seed. */
static ember_batch make_batch(ember_buf *buf, unsigned seed, size_t n)
{
    *buf = ember_buf_heap();
    for (size_t i = 0; i < n; i++) {
        uint8_t rec[20];
        for (size_t j = 0; j < sizeof rec; j++)
            rec[j] = (uint8_t)(seed * 31 + i * 7 + j);
        assert_int_equal(ember_batch_append(buf, rec, sizeof rec), EMBER_OK);
    }
    ember_batch b = {buf->data, buf->len, n};
    return b;
}

/* Puts n records (21 n bytes) from seed; returns where it went. */
static em_block_where put(env *e, uint64_t ds, uint32_t part,
                          const char *lvl, size_t n,
                          em_block_put_result *res)
{
    ember_buf buf;
    ember_batch b = make_batch(&buf, (unsigned)(ds * 100 + part), n);
    em_block_put_result local;
    ember_error err;
    em_block_put_result *r = res ? res : &local;
    assert_int_equal(em_block_mgr_put(e->m, ds, part, level(lvl), &b, r,
                                      &err), EMBER_OK);
    em_block_where w = r->where;
    if (!res)
        em_block_put_result_release(&local);
    ember_buf_release(&buf);
    return w;
}

/* Asserts the block reads back as put() wrote it with n records. */
static void expect_block(env *e, uint64_t ds, uint32_t part, size_t n)
{
    ember_buf want, got = ember_buf_heap();
    (void)make_batch(&want, (unsigned)(ds * 100 + part), n);
    uint64_t count = 0;
    ember_error err;
    ember_status s = em_block_mgr_get(e->m, ds, part, &got, &count, &err);
    if (s != EMBER_OK)
        fail_msg("rdd_%u_%u: %s", (unsigned)ds, (unsigned)part, err.msg);
    assert_int_equal(count, n);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ember_buf_release(&want);
    ember_buf_release(&got);
}

static void expect_absent(env *e, uint64_t ds, uint32_t part)
{
    ember_buf got = ember_buf_heap();
    uint64_t count = 0;
    ember_error err;
    assert_int_equal(em_block_mgr_get(e->m, ds, part, &got, &count, &err),
                     EMBER_ENOTFOUND);
    assert_int_equal(got.len, 0);
    ember_buf_release(&got);
}

static em_block_stats stats(env *e)
{
    em_block_stats st;
    em_block_mgr_stats(e->m, &st);
    return st;
}

/* ---- tests */

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool mem, disk, off, ser;
        int rep;
    } want[] = {
        {"NONE", 0, 0, 0, 0, 1},
        {"DISK_ONLY", 0, 1, 0, 1, 1},
        {"DISK_ONLY_2", 0, 1, 0, 1, 2},
        {"DISK_ONLY_3", 0, 1, 0, 1, 3},
        {"MEMORY_ONLY", 1, 0, 0, 0, 1},
        {"MEMORY_ONLY_2", 1, 0, 0, 0, 2},
        {"MEMORY_ONLY_SER", 1, 0, 0, 1, 1},
        {"MEMORY_ONLY_SER_2", 1, 0, 0, 1, 2},
        {"MEMORY_AND_DISK", 1, 1, 0, 0, 1},
        {"MEMORY_AND_DISK_2", 1, 1, 0, 0, 2},
        {"MEMORY_AND_DISK_SER", 1, 1, 0, 1, 1},
        {"MEMORY_AND_DISK_SER_2", 1, 1, 0, 1, 2},
        {"OFF_HEAP", 0, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        em_storage_level l;
        ember_error err;
        assert_int_equal(em_storage_level_parse(want[i].name, &l, &err),
                         EMBER_OK);
        assert_int_equal(l.use_memory, want[i].mem);
        assert_int_equal(l.use_disk, want[i].disk);
        assert_int_equal(l.use_off_heap, want[i].off);
        assert_int_equal(l.serialized, want[i].ser);
        assert_int_equal(l.replication, want[i].rep);
        assert_string_equal(em_storage_level_name(l), want[i].name);
    }
    em_storage_level l;
    assert_int_equal(em_storage_level_parse("memory_and_disk_ser", &l, NULL),
                     EMBER_OK);
    assert_true(l.use_memory && l.use_disk && l.serialized);

    static const char *bad[] = {"", "MEMORY", "MEMORY_ONLY_3", "DISK_ONLY_4",
                                "MEMORY_AND_DISK ", "OFFHEAP"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ember_error err;
        assert_int_equal(em_storage_level_parse(bad[i], &l, &err),
                         EMBER_EINVAL);
        assert_int_equal(err.code, EMBER_EINVAL);
        /* the message names what was given and every valid name */
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_non_null(strstr(err.msg, quoted));
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++)
            assert_non_null(strstr(err.msg, want[j].name));
    }
    ember_error err;
    assert_int_equal(em_storage_level_parse(NULL, &l, &err), EMBER_EINVAL);
}

static void test_memory_only_round_trip(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 10000});
    em_block_put_result res;
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY", 10, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 210);
    assert_int_equal(res.n_evicted, 0);
    assert_false(res.already);
    em_block_put_result_release(&res);
    expect_block(e, 1, 0, 10);
    expect_block(e, 1, 0, 10); /* reading does not consume */
    expect_absent(e, 1, 1);
    expect_absent(e, 2, 0);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_used, 210);
    assert_int_equal(st.memory_budget, 10000);
    assert_int_equal(st.blocks_memory, 1);
    assert_int_equal(st.blocks_disk, 0);
    assert_int_equal(e->mem.bytes, 210);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);

    /* a second put of a cached partition changes nothing */
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY", 3, &res), EM_BLOCK_MEMORY);
    assert_true(res.already);
    em_block_put_result_release(&res);
    expect_block(e, 1, 0, 10);

    /* an empty partition is a block too */
    assert_int_equal(put(e, 1, 1, "MEMORY_ONLY", 0, NULL), EM_BLOCK_MEMORY);
    expect_block(e, 1, 1, 0);

    /* appending to a buffer that holds something keeps it */
    ember_buf got = ember_buf_heap();
    assert_int_equal(ember_buf_append(&got, "ab", 2), EMBER_OK);
    uint64_t count;
    assert_int_equal(em_block_mgr_get(e->m, 1, 0, &got, &count, NULL),
                     EMBER_OK);
    assert_int_equal(got.len, 212);
    assert_memory_equal(got.data, "ab", 2);
    ember_buf_release(&got);
    env_close(e);
}

/* S19: least recently used first, never the dataset being stored, and
 * nothing at all unless enough can be freed. */
static void test_lru_eviction_across_datasets(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 630}); /* 3 x 210 */
    em_block_put_result res;
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 3, 0, "MEMORY_ONLY", 10, NULL);
    expect_block(e, 1, 0, 10); /* 1 is now the most recently used */

    assert_int_equal(put(e, 4, 0, "MEMORY_ONLY", 10, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 2);
    assert_int_equal(res.evicted[0].partition, 0);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_NOWHERE);
    em_block_put_result_release(&res);
    expect_absent(e, 2, 0);
    expect_block(e, 1, 0, 10);
    expect_block(e, 3, 0, 10);

    /* more of dataset 4: other datasets go, 4's own blocks stay */
    assert_int_equal(put(e, 4, 1, "MEMORY_ONLY", 10, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 1);
    em_block_put_result_release(&res);
    assert_int_equal(put(e, 4, 2, "MEMORY_ONLY", 10, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 3);
    em_block_put_result_release(&res);
    assert_int_equal(put(e, 4, 3, "MEMORY_ONLY", 10, &res), EM_BLOCK_NOWHERE);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    expect_absent(e, 4, 3);
    for (uint32_t p = 0; p < 3; p++)
        expect_block(e, 4, p, 10);
    expect_absent(e, 1, 0);
    expect_absent(e, 3, 0);
    em_block_stats st = stats(e);
    assert_int_equal(st.evictions, 3);
    assert_int_equal(st.blocks_memory, 3);
    assert_int_equal(st.memory_used, 630);
    assert_int_equal(e->mem.blocks, 3);

    /* a block of another dataset may evict several of dataset 4's,
     * least recently used first */
    assert_int_equal(put(e, 5, 0, "MEMORY_ONLY", 20, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 2);
    assert_int_equal(res.evicted[0].dataset, 4);
    assert_int_equal(res.evicted[0].partition, 0);
    assert_int_equal(res.evicted[1].dataset, 4);
    assert_int_equal(res.evicted[1].partition, 1);
    em_block_put_result_release(&res);
    expect_absent(e, 4, 0);
    expect_absent(e, 4, 1);
    expect_block(e, 4, 2, 10);
    expect_block(e, 5, 0, 20);
    env_close(e);
}

/* When what could be freed is not enough, nothing is evicted. */
static void test_no_eviction_when_it_cannot_fit(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 630});
    em_block_put_result res;
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 2, 1, "MEMORY_ONLY", 10, NULL);
    /* dataset 2 needs 420 more; only dataset 1's 210 may go */
    assert_int_equal(put(e, 2, 2, "MEMORY_ONLY", 20, &res), EM_BLOCK_NOWHERE);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    expect_block(e, 1, 0, 10);
    assert_int_equal(stats(e).evictions, 0);
    env_close(e);
}

static void test_memory_only_too_large_not_cached(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 100});
    em_block_put_result res;
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY", 10, &res), EM_BLOCK_NOWHERE);
    assert_int_equal(res.stored_bytes, 0);
    em_block_put_result_release(&res);
    expect_absent(e, 1, 0);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_used, 0);
    assert_int_equal(st.blocks_memory + st.blocks_disk, 0);
    assert_int_equal(e->mem.blocks, 0);
    assert_int_equal(e->disk.files, 0);

    /* a memory tier that says it is full: not cached either, still OK */
    e->mem.enospc = true;
    assert_int_equal(put(e, 1, 1, "MEMORY_ONLY", 1, NULL), EM_BLOCK_NOWHERE);
    /* ...but a level with disk goes to disk */
    assert_int_equal(put(e, 1, 2, "MEMORY_AND_DISK", 1, NULL), EM_BLOCK_DISK);
    expect_block(e, 1, 2, 1);
    env_close(e);
}

static void test_memory_and_disk(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 300});
    em_block_put_result res;
    assert_int_equal(put(e, 1, 0, "MEMORY_AND_DISK", 10, NULL),
                     EM_BLOCK_MEMORY);
    /* dataset 2 pushes dataset 1's block to disk */
    assert_int_equal(put(e, 2, 0, "MEMORY_AND_DISK", 10, &res),
                     EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 1);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_DISK);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);
    assert_true(disk_has(&e->disk, "rdd_1_0"));
    expect_block(e, 1, 0, 10);
    expect_block(e, 2, 0, 10);
    em_block_stats st = stats(e);
    assert_int_equal(st.blocks_memory, 1);
    assert_int_equal(st.blocks_disk, 1);
    assert_int_equal(st.memory_used, 210);
    assert_int_equal(st.disk_used, 210);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(e->mem.blocks, 1);

    /* larger than the whole budget: straight to disk */
    assert_int_equal(put(e, 3, 0, "MEMORY_AND_DISK", 20, &res),
                     EM_BLOCK_DISK);
    assert_int_equal(res.n_evicted, 0);
    assert_int_equal(res.stored_bytes, 420);
    em_block_put_result_release(&res);
    expect_block(e, 3, 0, 20);
    expect_block(e, 2, 0, 10); /* memory untouched */

    /* DISK_ONLY goes to disk whatever memory holds */
    assert_int_equal(put(e, 4, 0, "DISK_ONLY", 1, NULL), EM_BLOCK_DISK);
    expect_block(e, 4, 0, 1);

    /* eviction follows each victim's level: a MEMORY_ONLY block is
     * dropped, a MEMORY_AND_DISK one moves to disk */
    assert_int_equal(put(e, 5, 0, "MEMORY_ONLY", 4, NULL), EM_BLOCK_MEMORY);
    expect_block(e, 2, 0, 10); /* 5 is now the least recently used */
    assert_int_equal(put(e, 6, 0, "MEMORY_AND_DISK", 10, &res),
                     EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 2);
    assert_int_equal(res.evicted[0].dataset, 5);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_NOWHERE);
    assert_int_equal(res.evicted[1].dataset, 2);
    assert_int_equal(res.evicted[1].now, EM_BLOCK_DISK);
    em_block_put_result_release(&res);
    expect_absent(e, 5, 0);
    expect_block(e, 2, 0, 10);
    assert_int_equal(em_block_mgr_where(e->m, 2, 0), EM_BLOCK_DISK);
    env_close(e);
}

static void test_serialized_sizes(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 8u << 20, .codec = true});
    em_block_put_result res;
    /* header 16 + one chunk: 8 + 210 + the codec's 1 */
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY_SER", 10, &res),
                     EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 16 + 8 + 211);
    em_block_put_result_release(&res);
    assert_int_equal(stats(e).memory_used, 235);
    assert_int_equal(e->mem.bytes, 235);
    /* the tier holds the encoded form, not the batch */
    assert_memory_equal(e->mem.head->data, "EMBS", 4);
    expect_block(e, 1, 0, 10);

    /* deserialized levels ignore the codec */
    assert_int_equal(put(e, 1, 1, "MEMORY_ONLY", 10, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 210);
    em_block_put_result_release(&res);

    /* 2.5 MiB of records: three chunks */
    size_t n = (5u << 20) / 2 / 21;
    size_t raw = n * 21;
    size_t chunks = (raw + (1u << 20) - 1) >> 20;
    assert_int_equal(put(e, 2, 0, "MEMORY_AND_DISK_SER", n, &res),
                     EM_BLOCK_MEMORY);
    assert_int_equal(chunks, 3);
    assert_int_equal(res.stored_bytes, 16 + chunks * 9 + raw);
    em_block_put_result_release(&res);
    expect_block(e, 2, 0, n);
    assert_int_equal(stats(e).memory_used, 235 + 210 + 16 + chunks * 9 + raw);

    /* on disk too: DISK_ONLY is serialized */
    assert_int_equal(put(e, 3, 0, "DISK_ONLY", 10, &res), EM_BLOCK_DISK);
    assert_int_equal(res.stored_bytes, 235);
    em_block_put_result_release(&res);
    expect_block(e, 3, 0, 10);
    env_close(e);

    /* without a codec, serialized blocks are kept as they are */
    e = env_open((env_opts){.memory_budget = 1000});
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY_SER", 10, &res),
                     EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 210);
    em_block_put_result_release(&res);
    assert_int_equal(stats(e).memory_used, 210);
    expect_block(e, 1, 0, 10);
    env_close(e);
}

static void test_disk_enospc_not_cached(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 100});
    e->disk.enospc = true;
    assert_int_equal(put(e, 1, 0, "DISK_ONLY", 10, NULL), EM_BLOCK_NOWHERE);
    assert_int_equal(put(e, 1, 1, "MEMORY_AND_DISK", 10, NULL),
                     EM_BLOCK_NOWHERE);
    expect_absent(e, 1, 0);
    expect_absent(e, 1, 1);
    assert_int_equal(stats(e).blocks_disk, 0);

    /* an evicted MEMORY_AND_DISK block the disk refuses is dropped */
    e->disk.enospc = false;
    env_close(e);
    e = env_open((env_opts){.memory_budget = 210});
    put(e, 1, 0, "MEMORY_AND_DISK", 10, NULL);
    e->disk.enospc = true;
    em_block_put_result res;
    assert_int_equal(put(e, 2, 0, "MEMORY_ONLY", 10, &res), EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_NOWHERE);
    em_block_put_result_release(&res);
    expect_absent(e, 1, 0);
    env_close(e);
}

static void test_corrupt_disk_block(void **state)
{
    (void)state;
    /* the tier's checksum finds it */
    env *e = env_open((env_opts){.memory_budget = 0});
    put(e, 1, 0, "DISK_ONLY", 10, NULL);
    put(e, 1, 1, "DISK_ONLY", 10, NULL);
    char path[128];
    disk_path(&e->disk, "rdd_1_0", path, sizeof path);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, DISK_HEADER + 5, SEEK_SET);
    fputc(0xEE, f);
    fclose(f);
    expect_absent(e, 1, 0);
    assert_false(disk_has(&e->disk, "rdd_1_0"));
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_NOWHERE);
    assert_int_equal(stats(e).blocks_disk, 1);
    expect_absent(e, 1, 0);
    expect_block(e, 1, 1, 10);

    /* a tier without checksums: a truncated block is caught by its size */
    e->disk.verify = false;
    disk_path(&e->disk, "rdd_1_1", path, sizeof path);
    assert_int_equal(truncate(path, DISK_HEADER + 100), 0);
    expect_absent(e, 1, 1);
    assert_false(disk_has(&e->disk, "rdd_1_1"));

    /* a block deleted behind the manager's back is just not cached */
    put(e, 1, 2, "DISK_ONLY", 10, NULL);
    disk_path(&e->disk, "rdd_1_2", path, sizeof path);
    assert_int_equal(unlink(path), 0);
    expect_absent(e, 1, 2);
    assert_int_equal(stats(e).blocks_disk, 0);
    env_close(e);

    /* an encoded block whose codec frame is damaged: the decoder finds it */
    e = env_open((env_opts){.memory_budget = 0, .codec = true});
    e->disk.verify = false;
    put(e, 2, 0, "DISK_ONLY", 10, NULL);
    disk_path(&e->disk, "rdd_2_0", path, sizeof path);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, DISK_HEADER + 16 + 8, SEEK_SET); /* the codec's 'X' */
    assert_int_equal(fgetc(f), 'X');
    fseek(f, DISK_HEADER + 16 + 8, SEEK_SET);
    fputc('Y', f);
    fclose(f);
    expect_absent(e, 2, 0);
    assert_false(disk_has(&e->disk, "rdd_2_0"));
    assert_int_equal(stats(e).blocks_disk, 0);

    /* and one whose header is damaged */
    put(e, 2, 1, "DISK_ONLY", 10, NULL);
    disk_path(&e->disk, "rdd_2_1", path, sizeof path);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, DISK_HEADER + 8, SEEK_SET); /* the raw length */
    fputc(0x77, f);
    fclose(f);
    expect_absent(e, 2, 1);
    assert_false(disk_has(&e->disk, "rdd_2_1"));
    env_close(e);
}

static void test_remove_dataset(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 500});
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 1, 1, "MEMORY_AND_DISK", 30, NULL); /* 630: on disk */
    put(e, 1, 2, "DISK_ONLY", 10, NULL);
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 2, 1, "DISK_ONLY", 10, NULL);
    assert_int_equal(e->disk.files, 3);
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 1), 3);
    for (uint32_t p = 0; p < 3; p++)
        expect_absent(e, 1, p);
    expect_block(e, 2, 0, 10);
    expect_block(e, 2, 1, 10);
    assert_int_equal(e->disk.files, 1);
    assert_int_equal(e->mem.blocks, 1);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_used, 210);
    assert_int_equal(st.blocks_memory, 1);
    assert_int_equal(st.blocks_disk, 1);
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 1), 0);
    /* the dataset can be cached again */
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY", 10, NULL), EM_BLOCK_MEMORY);

    assert_int_equal(em_block_mgr_remove_all(e->m), 3);
    assert_int_equal(e->disk.files, 0);
    assert_int_equal(e->mem.blocks, 0);
    st = stats(e);
    assert_int_equal(st.memory_used + st.disk_used, 0);
    env_close(e);
}

/* close frees memory blocks and leaves disk and off-heap ones. */
static void test_close_leaves_disk_and_off_heap(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 500,
                                 .off_heap_budget = 500});
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 1, 1, "DISK_ONLY", 10, NULL);
    assert_int_equal(put(e, 1, 2, "OFF_HEAP", 10, NULL), EM_BLOCK_OFF_HEAP);
    em_block_mgr_close(e->m);
    e->m = NULL;
    assert_int_equal(e->mem.blocks, 0);
    assert_true(disk_has(&e->disk, "rdd_1_1"));
    assert_int_equal(e->off.blocks, 1);
    env_close(e);
}

static void test_off_heap(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000,
                                 .off_heap_budget = 300});
    em_block_put_result res;
    assert_int_equal(put(e, 1, 0, "OFF_HEAP", 10, NULL), EM_BLOCK_OFF_HEAP);
    expect_block(e, 1, 0, 10);
    em_block_stats st = stats(e);
    assert_int_equal(st.off_heap_used, 210);
    assert_int_equal(st.blocks_off_heap, 1);
    assert_int_equal(st.memory_used, 0);
    /* its own budget: dataset 2 evicts dataset 1 to disk */
    assert_int_equal(put(e, 2, 0, "OFF_HEAP", 10, &res), EM_BLOCK_OFF_HEAP);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_DISK);
    em_block_put_result_release(&res);
    expect_block(e, 1, 0, 10);
    /* too large for off-heap memory: disk */
    assert_int_equal(put(e, 3, 0, "OFF_HEAP", 20, NULL), EM_BLOCK_DISK);
    expect_block(e, 3, 0, 20);
    env_close(e);
}

static void test_missing_tier(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000, .no_disk = true});
    ember_buf buf;
    ember_batch b = make_batch(&buf, 1, 3);
    ember_error err;
    em_block_put_result res;
    assert_int_equal(em_block_mgr_put(e->m, 1, 0, level("MEMORY_AND_DISK"),
                                      &b, &res, &err), EMBER_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "MEMORY_AND_DISK"));
    assert_non_null(strstr(err.msg, "disk"));
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    assert_int_equal(em_block_mgr_put(e->m, 1, 0, level("DISK_ONLY"), &b,
                                      &res, &err), EMBER_EUNSUPPORTED);
    em_block_unroll *u = NULL;
    assert_int_equal(em_block_unroll_begin(&u, e->m, 1, 0,
                                           level("DISK_ONLY"), &err),
                     EMBER_EUNSUPPORTED);
    assert_null(u);
    assert_int_equal(em_block_mgr_put(e->m, 1, 0, level("MEMORY_ONLY"), &b,
                                      &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    /* NONE stores nothing and is no error */
    assert_int_equal(em_block_mgr_put(e->m, 1, 1, level("NONE"), &b, &res,
                                      &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    ember_buf_release(&buf);
    env_close(e);
}

static void unroll_batches(em_block_unroll *u, uint64_t ds, uint32_t part,
                           size_t batches, size_t per)
{
    for (size_t i = 0; i < batches; i++) {
        ember_buf buf;
        ember_batch b = make_batch(&buf, (unsigned)(ds * 100 + part + i),
                                   per);
        em_block_unroll_append(u, &b);
        ember_buf_release(&buf);
    }
}

/* The block (ds, part) reads back as the batches unroll_batches(u, ds,
 * part, batches, per) appended. */
static void check_unrolled(env *e, uint64_t ds, uint32_t part,
                           size_t batches, size_t per)
{
    ember_buf got = ember_buf_heap(), want = ember_buf_heap();
    for (size_t i = 0; i < batches; i++) {
        ember_buf one;
        (void)make_batch(&one, (unsigned)(ds * 100 + part + i), per);
        assert_int_equal(ember_buf_append(&want, one.data, one.len),
                         EMBER_OK);
        ember_buf_release(&one);
    }
    uint64_t count;
    ember_error err = {0};
    assert_int_equal(em_block_mgr_get(e->m, ds, part, &got, &count, &err),
                     EMBER_OK);
    assert_int_equal(count, batches * per);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ember_buf_release(&got);
    ember_buf_release(&want);
}


static void test_unroll(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000,
                                 .unroll_cap = 2000});
    em_block_put_result res;
    ember_error err;

    /* 3 x 210 fits: stored whole, in order */
    em_block_unroll *u;
    assert_int_equal(em_block_unroll_begin(&u, e->m, 1, 0,
                                           level("MEMORY_ONLY"), &err),
                     EMBER_OK);
    unroll_batches(u, 1, 0, 3, 10);
    assert_false(em_block_unroll_gave_up(u));
    assert_int_equal(em_block_unroll_bytes(u), 630);
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 630);
    em_block_put_result_release(&res);
    check_unrolled(e, 1, 0, 3, 10);

    /* 5 x 210 > 1000: gives up at the fifth batch, holds nothing */
    assert_int_equal(em_block_unroll_begin(&u, e->m, 2, 0,
                                           level("MEMORY_ONLY"), &err),
                     EMBER_OK);
    unroll_batches(u, 2, 0, 4, 10);
    assert_false(em_block_unroll_gave_up(u));
    unroll_batches(u, 2, 0, 1, 10);
    assert_true(em_block_unroll_gave_up(u));
    assert_int_equal(em_block_unroll_bytes(u), 0);
    unroll_batches(u, 2, 0, 1, 10); /* later batches are ignored */
    assert_int_equal(em_block_unroll_bytes(u), 0);
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_true(res.gave_up);
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    /* its reservation came from the storage pool (S20): at the second
     * batch it evicted dataset 1, which finish reports though nothing
     * was stored */
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 1);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_NOWHERE);
    em_block_put_result_release(&res);
    expect_absent(e, 2, 0);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_NOWHERE);
    assert_int_equal(stats(e).memory_reserved, 0);

    /* with disk, past the memory budget it keeps holding; stored on disk */
    assert_int_equal(em_block_unroll_begin(&u, e->m, 3, 0,
                                           level("MEMORY_AND_DISK"), &err),
                     EMBER_OK);
    unroll_batches(u, 3, 0, 8, 10);
    assert_false(em_block_unroll_gave_up(u));
    assert_int_equal(em_block_unroll_bytes(u), 1680);
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_DISK);
    em_block_put_result_release(&res);
    /* ...but not past the hard cap */
    assert_int_equal(em_block_unroll_begin(&u, e->m, 3, 1,
                                           level("DISK_ONLY"), &err),
                     EMBER_OK);
    unroll_batches(u, 3, 1, 10, 10);
    assert_true(em_block_unroll_gave_up(u));
    assert_int_equal(em_block_unroll_finish(u, NULL, &err), EMBER_OK);
    expect_absent(e, 3, 1);

    /* abort stores nothing */
    assert_int_equal(em_block_unroll_begin(&u, e->m, 4, 0,
                                           level("MEMORY_ONLY"), &err),
                     EMBER_OK);
    unroll_batches(u, 4, 0, 1, 10);
    em_block_unroll_abort(u);
    em_block_unroll_abort(NULL);
    expect_absent(e, 4, 0);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_reserved, 0);
    assert_int_equal(st.off_heap_reserved, 0);
    env_close(e);
}

/* Serialized unrolls hold (and limit) the encoded form. */
static void test_unroll_serialized(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000, .codec = true});
    em_block_unroll *u;
    em_block_put_result res;
    ember_error err;
    assert_int_equal(em_block_unroll_begin(&u, e->m, 1, 0,
                                           level("MEMORY_ONLY_SER"), &err),
                     EMBER_OK);
    unroll_batches(u, 1, 0, 2, 10);
    /* header, then a chunk of 8 + 211 per batch */
    assert_int_equal(em_block_unroll_bytes(u), 16 + 2 * 219);
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 16 + 2 * 219);
    em_block_put_result_release(&res);
    ember_buf got = ember_buf_heap();
    uint64_t count;
    assert_int_equal(em_block_mgr_get(e->m, 1, 0, &got, &count, &err),
                     EMBER_OK);
    assert_int_equal(count, 20);
    assert_int_equal(got.len, 420);
    ember_buf one;
    (void)make_batch(&one, 101, 10);
    assert_memory_equal(got.data + 210, one.data, 210);
    ember_buf_release(&one);
    ember_buf_release(&got);

    assert_int_equal(em_block_unroll_begin(&u, e->m, 1, 1,
                                           level("MEMORY_ONLY_SER"), &err),
                     EMBER_OK);
    unroll_batches(u, 1, 1, 5, 10);
    assert_true(em_block_unroll_gave_up(u));
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_true(res.gave_up);
    em_block_put_result_release(&res);
    env_close(e);
}

/* ---- unroll reservations (S20) */

static em_block_unroll *begin(env *e, uint64_t ds, uint32_t part,
                              const char *lvl)
{
    em_block_unroll *u = NULL;
    ember_error err;
    assert_int_equal(em_block_unroll_begin(&u, e->m, ds, part, level(lvl),
                                           &err), EMBER_OK);
    assert_non_null(u);
    return u;
}

/* Two unrolls of one dataset at once, each about 60% of the budget: their
 * reservations cannot both be had, so the second gives up instead of
 * holding 2x the budget between them. */
static void test_unroll_two_at_once(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000});
    em_block_unroll *a = begin(e, 1, 0, "MEMORY_ONLY");
    em_block_unroll *b = begin(e, 1, 1, "MEMORY_ONLY");
    em_block_put_result res;
    ember_error err;
    for (size_t i = 0; i < 3; i++) { /* 3 x 210 each, interleaved */
        unroll_batches(a, 1, 0, 1, 10);
        unroll_batches(b, 1, 1, 1, 10);
        em_block_stats st = stats(e);
        assert_true(st.memory_used + st.memory_reserved <= st.memory_budget);
        assert_true(st.memory_reserved >= em_block_unroll_bytes(a) +
                                               em_block_unroll_bytes(b));
    }
    assert_false(em_block_unroll_gave_up(a));
    assert_true(em_block_unroll_gave_up(b));
    assert_int_equal(em_block_unroll_bytes(b), 0);
    assert_int_equal(em_block_unroll_finish(a, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 630);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_unroll_finish(b, &res, &err), EMBER_OK);
    assert_true(res.gave_up);
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    expect_absent(e, 1, 1);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_used, 630);
    assert_int_equal(st.memory_reserved, 0);
    env_close(e);
}

/* A reservation evicts other datasets' blocks, least recently used first,
 * and finish reports them; blocks of the unrolled dataset stay. */
static void test_unroll_reservation_evicts(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000});
    em_block_put_result res;
    ember_error err;
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);     /* least recently used */
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);     /* the unroll's own */
    put(e, 3, 0, "MEMORY_AND_DISK", 10, NULL); /* 630 used */
    em_block_unroll *u = begin(e, 1, 1, "MEMORY_ONLY");
    unroll_batches(u, 1, 1, 1, 10);
    /* 315 reserved, nothing evicted yet */
    assert_int_equal(stats(e).memory_reserved, 315);
    assert_int_equal(stats(e).evictions, 0);
    unroll_batches(u, 1, 1, 2, 10);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_reserved, 630);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.memory_used, 210);
    assert_int_equal(em_block_mgr_where(e->m, 2, 0), EM_BLOCK_NOWHERE);
    assert_int_equal(em_block_mgr_where(e->m, 3, 0), EM_BLOCK_DISK);
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.n_evicted, 2);
    assert_int_equal(res.evicted[0].dataset, 2);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_NOWHERE);
    assert_int_equal(res.evicted[1].dataset, 3);
    assert_int_equal(res.evicted[1].now, EM_BLOCK_DISK);
    assert_int_equal(res.evicted[1].bytes, 210);
    em_block_put_result_release(&res);
    expect_block(e, 1, 0, 10);
    expect_block(e, 3, 0, 10);
    st = stats(e);
    assert_int_equal(st.memory_used, 840);
    assert_int_equal(st.memory_reserved, 0);

    /* only dataset 1 is left in memory: an unroll of dataset 1 that needs
     * more than is free gives up and evicts none of it */
    u = begin(e, 1, 2, "MEMORY_ONLY");
    unroll_batches(u, 1, 2, 1, 10);
    assert_true(em_block_unroll_gave_up(u));
    assert_int_equal(em_block_unroll_finish(u, &res, &err), EMBER_OK);
    assert_true(res.gave_up);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    assert_int_equal(em_block_mgr_where(e->m, 1, 1), EM_BLOCK_MEMORY);
    assert_int_equal(stats(e).evictions, 2);

    /* an unroll that stops early (cancel) stores nothing, lets its
     * reservation go and hands out what reserving evicted */
    put(e, 4, 0, "MEMORY_ONLY", 4, NULL); /* 84: 924 used */
    u = begin(e, 5, 0, "MEMORY_ONLY");
    unroll_batches(u, 5, 0, 1, 4);
    assert_true(stats(e).memory_reserved > 0);
    em_block_unroll_cancel(u, &res);
    assert_true(res.gave_up);
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    /* dataset 1's partition 1 was the least recently used */
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 1);
    assert_int_equal(res.evicted[0].partition, 1);
    em_block_put_result_release(&res);
    expect_absent(e, 1, 1);
    expect_absent(e, 5, 0);
    assert_int_equal(stats(e).memory_reserved, 0);
    env_close(e);
}

/* A level with disk whose reservation fails (another unroll holds the
 * memory) goes on for the disk tier, and finish does not try memory
 * again; off-heap the same. */
static void test_unroll_falls_back_to_disk(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000,
                                 .off_heap_budget = 500});
    em_block_put_result res;
    ember_error err;
    em_block_unroll *a = begin(e, 1, 0, "MEMORY_ONLY");
    unroll_batches(a, 1, 0, 4, 10); /* 840: 1000 reserved */
    assert_int_equal(stats(e).memory_reserved, 1000);
    em_block_unroll *b = begin(e, 2, 0, "MEMORY_AND_DISK");
    unroll_batches(b, 2, 0, 3, 10);
    assert_false(em_block_unroll_gave_up(b));
    assert_int_equal(em_block_unroll_bytes(b), 630);
    assert_int_equal(stats(e).memory_reserved, 1000);
    assert_int_equal(em_block_unroll_finish(a, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    em_block_put_result_release(&res);
    /* memory now could take b's block by evicting dataset 1: it must not */
    assert_int_equal(em_block_unroll_finish(b, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_DISK);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    assert_int_equal(stats(e).memory_used, 840);
    assert_int_equal(stats(e).memory_reserved, 0);

    /* the bytes on disk are the three batches */
    check_unrolled(e, 2, 0, 3, 10);

    /* off-heap: its own pool */
    a = begin(e, 3, 0, "OFF_HEAP");
    unroll_batches(a, 3, 0, 2, 10); /* 420: 500 reserved */
    em_block_stats st = stats(e);
    assert_int_equal(st.off_heap_reserved, 500);
    assert_int_equal(st.memory_reserved, 0);
    b = begin(e, 4, 0, "OFF_HEAP");
    unroll_batches(b, 4, 0, 1, 10);
    assert_false(em_block_unroll_gave_up(b));
    assert_int_equal(em_block_unroll_finish(a, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_OFF_HEAP);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_unroll_finish(b, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_DISK);
    em_block_put_result_release(&res);
    expect_block(e, 4, 0, 10);

    /* abort lets a reservation go */
    a = begin(e, 5, 0, "OFF_HEAP");
    unroll_batches(a, 5, 0, 1, 1);
    assert_int_equal(stats(e).off_heap_reserved, 31); /* 21 x 1.5 */
    em_block_unroll_abort(a);
    assert_int_equal(stats(e).off_heap_reserved, 0);
    env_close(e);
}

/* opts.unroll_threshold is reserved at begin (at most the budget). */
static void test_unroll_threshold(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 1000,
                                 .unroll_threshold = 400});
    em_block_put_result res;
    ember_error err;
    em_block_unroll *a = begin(e, 1, 0, "MEMORY_ONLY");
    assert_int_equal(stats(e).memory_reserved, 400);
    unroll_batches(a, 1, 0, 1, 10); /* 210: within the threshold */
    assert_int_equal(stats(e).memory_reserved, 400);
    em_block_unroll *b = begin(e, 1, 1, "MEMORY_ONLY");
    em_block_unroll *c = begin(e, 1, 2, "MEMORY_ONLY"); /* 200 left */
    assert_false(em_block_unroll_gave_up(b));
    assert_true(em_block_unroll_gave_up(c));
    em_block_unroll *d = begin(e, 2, 0, "DISK_ONLY"); /* no reservation */
    assert_int_equal(stats(e).memory_reserved, 800);
    em_block_unroll_abort(b);
    assert_int_equal(em_block_unroll_finish(c, NULL, &err), EMBER_OK);
    assert_int_equal(em_block_unroll_finish(d, NULL, &err), EMBER_OK);
    assert_int_equal(em_block_unroll_finish(a, &res, &err), EMBER_OK);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 210);
    em_block_put_result_release(&res);
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_reserved, 0);
    assert_int_equal(st.memory_used, 210);
    env_close(e);
}

/* ---- disk blocks promoted back to memory */

static void get_promote(env *e, uint64_t ds, uint32_t part, size_t n,
                        em_block_put_result *res)
{
    ember_buf want, got = ember_buf_heap();
    (void)make_batch(&want, (unsigned)(ds * 100 + part), n);
    uint64_t count = 0;
    ember_error err;
    ember_status s = em_block_mgr_get_promote(e->m, ds, part, &got, &count,
                                              res, &err);
    if (s != EMBER_OK)
        fail_msg("rdd_%u_%u: %s", (unsigned)ds, (unsigned)part, err.msg);
    assert_int_equal(count, n);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    ember_buf_release(&want);
    ember_buf_release(&got);
}

static const mblock *mem_find(const memtier *t, const char *id)
{
    for (const mblock *b = t->head; b; b = b->next)
        if (strcmp(b->id, id) == 0)
            return b;
    return NULL;
}

static void test_promote(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 420});
    em_block_put_result res;
    put(e, 1, 0, "MEMORY_AND_DISK", 10, NULL);
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 3, 0, "MEMORY_ONLY", 10, NULL); /* evicts 1/0 to disk */
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);

    /* no room without evicting, and blocks of 2 and 3 are more recent:
     * promotion evicts the least recently used other dataset (2) */
    get_promote(e, 1, 0, 10, &res);
    assert_true(res.promoted);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 210);
    assert_int_equal(res.n_evicted, 1);
    assert_int_equal(res.evicted[0].dataset, 2);
    assert_int_equal(res.evicted[0].now, EM_BLOCK_NOWHERE);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    assert_false(disk_has(&e->disk, "rdd_1_0"));
    em_block_stats st = stats(e);
    assert_int_equal(st.memory_used, 420);
    assert_int_equal(st.blocks_disk, 0);
    assert_int_equal(st.disk_used, 0);
    assert_non_null(mem_find(&e->mem, "rdd_1_0"));
    expect_block(e, 1, 0, 10); /* read from memory now */

    /* memory freed by unpersisting: promoted without evicting */
    put(e, 4, 0, "MEMORY_AND_DISK", 10, NULL); /* evicts 3/0 (dropped) */
    put(e, 5, 0, "MEMORY_AND_DISK", 10, NULL); /* evicts 1/0 to disk */
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 5), 1);
    get_promote(e, 1, 0, 10, &res);
    assert_true(res.promoted);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);

    /* a plain get never moves a block */
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 4), 1);
    put(e, 6, 0, "MEMORY_AND_DISK", 30, NULL); /* too large: disk */
    put(e, 6, 1, "MEMORY_AND_DISK", 10, NULL);
    assert_int_equal(em_block_mgr_where(e->m, 6, 1), EM_BLOCK_MEMORY);
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 6), 2);
    put(e, 7, 0, "MEMORY_AND_DISK", 10, NULL);
    put(e, 8, 0, "MEMORY_AND_DISK", 10, NULL); /* evicts 1/0 to disk */
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 8), 1);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);
    expect_block(e, 1, 0, 10);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);

    /* DISK_ONLY stays on disk though memory has room */
    put(e, 9, 0, "DISK_ONLY", 5, NULL);
    get_promote(e, 9, 0, 5, &res);
    assert_false(res.promoted);
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 9, 0), EM_BLOCK_DISK);
    env_close(e);

    /* promotion that would need evicting its own dataset does not happen */
    e = env_open((env_opts){.memory_budget = 420});
    put(e, 1, 0, "MEMORY_AND_DISK", 10, NULL);
    put(e, 1, 1, "MEMORY_AND_DISK", 10, NULL);
    assert_int_equal(put(e, 1, 2, "MEMORY_AND_DISK", 10, NULL),
                     EM_BLOCK_DISK);
    get_promote(e, 1, 2, 10, &res);
    assert_false(res.promoted);
    assert_int_equal(res.where, EM_BLOCK_NOWHERE);
    assert_int_equal(res.n_evicted, 0);
    em_block_put_result_release(&res);
    assert_int_equal(em_block_mgr_where(e->m, 1, 2), EM_BLOCK_DISK);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    assert_int_equal(em_block_mgr_where(e->m, 1, 1), EM_BLOCK_MEMORY);
    assert_int_equal(stats(e).evictions, 0);
    env_close(e);

    /* OFF_HEAP blocks go back to the off-heap tier */
    e = env_open((env_opts){.memory_budget = 1000, .off_heap_budget = 210});
    put(e, 1, 0, "OFF_HEAP", 10, NULL);
    put(e, 2, 0, "OFF_HEAP", 10, NULL); /* evicts 1/0 to disk */
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 2), 1);
    get_promote(e, 1, 0, 10, &res);
    assert_true(res.promoted);
    assert_int_equal(res.where, EM_BLOCK_OFF_HEAP);
    em_block_put_result_release(&res);
    assert_int_equal(stats(e).off_heap_used, 210);
    assert_int_equal(stats(e).memory_used, 0);
    env_close(e);
}

/* A serialized block keeps its encoded form in memory and reads back the
 * same. */
static void test_promote_serialized(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 470, .codec = true});
    em_block_put_result res;
    put(e, 1, 0, "MEMORY_AND_DISK_SER", 10, NULL); /* 235 encoded */
    put(e, 2, 0, "MEMORY_ONLY_SER", 10, NULL);
    put(e, 3, 0, "MEMORY_ONLY_SER", 10, NULL); /* evicts 1/0 to disk */
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_DISK);
    assert_int_equal(stats(e).disk_used, 235);
    assert_int_equal(em_block_mgr_remove_dataset(e->m, 2), 1);
    get_promote(e, 1, 0, 10, &res);
    assert_true(res.promoted);
    assert_int_equal(res.where, EM_BLOCK_MEMORY);
    assert_int_equal(res.stored_bytes, 235);
    em_block_put_result_release(&res);
    const mblock *mb = mem_find(&e->mem, "rdd_1_0");
    assert_non_null(mb);
    assert_int_equal(mb->len, 235);
    assert_memory_equal(mb->data, "EMBS", 4);
    assert_int_equal(stats(e).memory_used, 470);
    assert_false(disk_has(&e->disk, "rdd_1_0"));
    expect_block(e, 1, 0, 10); /* decoded from memory: the same bytes */
    env_close(e);
}

/* ---- concurrency */

typedef struct worker {
    env *e;
    uint64_t dataset;
    const char *level;
    int bad;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    ember_buf want, got = ember_buf_heap();
    for (unsigned i = 0; i < 300; i++) {
        uint32_t part = (i * 7) % 16;
        ember_buf buf;
        ember_batch b = make_batch(&buf, (unsigned)(w->dataset * 100 + part),
                                   5 + part);
        em_block_put_result res;
        ember_error err;
        if (i % 3 == 0) {
            /* an unroll of the same records in two batches (21 bytes a
             * record) */
            em_block_unroll *u = NULL;
            size_t k = (5 + part) / 2;
            ember_batch b1 = {b.data, 21 * k, k};
            ember_batch b2 = {b.data + 21 * k, b.len - 21 * k,
                              b.count - k};
            if (em_block_unroll_begin(&u, w->e->m, w->dataset, part,
                                      level(w->level), &err) != EMBER_OK)
                w->bad++;
            em_block_unroll_append(u, &b1);
            em_block_unroll_append(u, &b2);
            if (i % 2)
                em_block_unroll_abort(u);
            else if (em_block_unroll_finish(u, &res, &err) != EMBER_OK)
                w->bad++;
        } else if (em_block_mgr_put(w->e->m, w->dataset, part,
                                    level(w->level), &b, &res,
                                    &err) != EMBER_OK) {
            w->bad++;
        }
        if (i % 3 != 0 || i % 2 == 0)
            em_block_put_result_release(&res);
        ember_buf_release(&buf);

        uint32_t q = (i * 5) % 16;
        uint64_t count = 0;
        got.len = 0;
        ember_status s =
            i % 2 ? em_block_mgr_get_promote(w->e->m, w->dataset, q, &got,
                                             &count, &res, &err)
                  : em_block_mgr_get(w->e->m, w->dataset, q, &got, &count,
                                     &err);
        if (i % 2)
            em_block_put_result_release(&res);
        if (s == EMBER_OK) {
            (void)make_batch(&want, (unsigned)(w->dataset * 100 + q), 5 + q);
            if (count != 5 + q || got.len != want.len ||
                memcmp(got.data, want.data, want.len) != 0)
                w->bad++;
            ember_buf_release(&want);
        } else if (s != EMBER_ENOTFOUND) {
            w->bad++;
        }
        if (i % 97 == 96)
            (void)em_block_mgr_remove_dataset(w->e->m, w->dataset);
        em_block_stats st;
        em_block_mgr_stats(w->e->m, &st);
        if (st.memory_used + st.memory_reserved > st.memory_budget)
            w->bad++;
    }
    ember_buf_release(&got);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 6000, .codec = true});
    static const char *levels[] = {"MEMORY_ONLY", "MEMORY_AND_DISK",
                                   "MEMORY_ONLY_SER", "MEMORY_AND_DISK_SER"};
    worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){e, (uint64_t)i + 1, levels[i], 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
    }
    /* the books agree with the tiers */
    em_block_stats st = stats(e);
    assert_true(st.memory_used <= 6000);
    assert_int_equal(st.memory_reserved, 0);
    assert_int_equal(st.memory_used, e->mem.bytes);
    assert_int_equal(st.blocks_memory, e->mem.blocks);
    assert_int_equal(st.blocks_disk, (uint64_t)e->disk.files);
    assert_true(st.evictions > 0);
    for (uint64_t ds = 1; ds <= 4; ds++)
        for (uint32_t p = 0; p < 16; p++)
            if (em_block_mgr_where(e->m, ds, p) != EM_BLOCK_NOWHERE)
                expect_block(e, ds, p, 5 + p);
    env_close(e);
}

/* ---- calls held inside a tier
 * An op is one manager call run on a thread of its own, so that the test
 * can hold another call inside a tier (test_memtier.h's gate) and see
 * whether this one still returns. The op records what it got; the test
 * asserts on its own thread. */

typedef enum op_kind { OP_GET, OP_GET_PROMOTE, OP_PUT, OP_REMOVE, OP_WHERE,
                       OP_STATS } op_kind;

typedef struct op {
    env *e;
    op_kind kind;
    uint64_t ds;
    uint32_t part;
    em_storage_level level; /* OP_PUT */
    ember_buf in;           /* OP_PUT: the batch's bytes */
    ember_batch b;
    ember_status s;         /* what the call returned */
    ember_error err;
    ember_buf got;          /* OP_GET*: the bytes read */
    uint64_t count;
    em_block_put_result res; /* OP_PUT, OP_GET_PROMOTE */
    size_t removed;          /* OP_REMOVE */
    em_block_where where;    /* OP_WHERE */
    em_block_stats st;       /* OP_STATS */
    bool done;               /* under op_mu */
    pthread_t th;
} op;

static pthread_mutex_t op_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t op_cv = PTHREAD_COND_INITIALIZER;

/* Seconds a call may take before the test says it waited for a held one
 * (a watchdog: the calls here never wait for anything else). */
#define WATCHDOG_S 20

static op op_make(env *e, op_kind kind, uint64_t ds, uint32_t part)
{
    op o;
    memset(&o, 0, sizeof o);
    o.e = e;
    o.kind = kind;
    o.ds = ds;
    o.part = part;
    o.in = ember_buf_heap();
    o.got = ember_buf_heap();
    return o;
}

/* A put of n records from the seed put() uses. */
static op op_put(env *e, uint64_t ds, uint32_t part, const char *lvl,
                 size_t n)
{
    op o = op_make(e, OP_PUT, ds, part);
    o.level = level(lvl);
    o.b = make_batch(&o.in, (unsigned)(ds * 100 + part), n);
    return o;
}

static void *op_run(void *arg)
{
    op *o = arg;
    em_block_mgr *m = o->e->m;
    switch (o->kind) {
    case OP_GET:
        o->s = em_block_mgr_get(m, o->ds, o->part, &o->got, &o->count,
                                &o->err);
        break;
    case OP_GET_PROMOTE:
        o->s = em_block_mgr_get_promote(m, o->ds, o->part, &o->got,
                                        &o->count, &o->res, &o->err);
        break;
    case OP_PUT:
        o->s = em_block_mgr_put(m, o->ds, o->part, o->level, &o->b, &o->res,
                                &o->err);
        break;
    case OP_REMOVE:
        o->removed = em_block_mgr_remove_dataset(m, o->ds);
        break;
    case OP_WHERE:
        o->where = em_block_mgr_where(m, o->ds, o->part);
        break;
    case OP_STATS:
        em_block_mgr_stats(m, &o->st);
        break;
    }
    pthread_mutex_lock(&op_mu);
    o->done = true;
    pthread_cond_broadcast(&op_cv);
    pthread_mutex_unlock(&op_mu);
    return NULL;
}

static void op_start(op *o)
{
    assert_int_equal(pthread_create(&o->th, NULL, op_run, o), 0);
}

/* Whether o has returned, waiting at most timeout_s seconds for it. */
static bool op_wait(op *o, int timeout_s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s;
    pthread_mutex_lock(&op_mu);
    int rc = 0;
    while (!o->done && rc == 0)
        rc = pthread_cond_timedwait(&op_cv, &op_mu, &until);
    bool done = o->done;
    pthread_mutex_unlock(&op_mu);
    return done;
}

static void op_join(op *o)
{
    assert_int_equal(pthread_join(o->th, NULL), 0);
}

static void op_release(op *o)
{
    ember_buf_release(&o->in);
    ember_buf_release(&o->got);
    em_block_put_result_release(&o->res);
}

static void open_gates(env *e)
{
    mem_gate_open(&e->mem);
    mem_gate_open(&e->off);
    mem_gate_open(&e->mdisk);
}

/* Starts `held`, a call the test holds at gate t's gate, and waits until
 * it is there. */
static void op_hold(env *e, memtier *t, op *held)
{
    op_start(held);
    if (!mem_gate_wait_held(t, 1, WATCHDOG_S)) {
        open_gates(e);
        op_join(held);
        fail_msg("the call on rdd_%u_%u never reached the tier",
                 (unsigned)held->ds, (unsigned)held->part);
    }
}

/* Runs o to its end while `held` is held in a tier: o must return on
 * its own (it must not wait for the held call), and the held call must
 * still be held then. If o does not return within the watchdog's time,
 * the gates open (so both calls end and the test does not hang) and the
 * test fails. */
static void op_within(env *e, op *o, op *held)
{
    op_start(o);
    bool returned = op_wait(o, WATCHDOG_S);
    if (!returned) {
        open_gates(e);
        op_join(o);
        op_join(held);
        static const char *names[] = {"get", "get_promote", "put",
                                      "remove_dataset", "where", "stats"};
        fail_msg("%s of rdd_%u_%u waited for the call on rdd_%u_%u held "
                 "in its tier", names[o->kind], (unsigned)o->ds,
                 (unsigned)o->part, (unsigned)held->ds,
                 (unsigned)held->part);
    }
    op_join(o);
    pthread_mutex_lock(&op_mu);
    bool held_done = held->done;
    pthread_mutex_unlock(&op_mu);
    assert_false(held_done);
}

/* Lets the calls held in e's tiers go and waits for `held`. */
static void op_finish(env *e, op *held)
{
    open_gates(e);
    op_join(held);
}

/* Asserts a get op read what put() writes with n records. */
static void expect_got(const op *o, size_t n)
{
    ember_buf want;
    (void)make_batch(&want, (unsigned)(o->ds * 100 + o->part), n);
    if (o->s != EMBER_OK)
        fail_msg("rdd_%u_%u: %s", (unsigned)o->ds, (unsigned)o->part,
                 o->err.msg);
    assert_int_equal(o->count, n);
    assert_int_equal(o->got.len, want.len);
    assert_memory_equal(o->got.data, want.data, want.len);
    ember_buf_release(&want);
}

/* A get held inside the tier for one block stops neither gets nor puts
 * of others: the tier I/O runs outside the manager's lock. */
static void test_held_get_blocks_nobody(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 2000});
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);
    mem_gate_close(&e->mem, "rdd_1_0", MEM_GATE_GET);
    op a = op_make(e, OP_GET, 1, 0);
    op_hold(e, &e->mem, &a);

    op b = op_make(e, OP_GET, 2, 0);
    op_within(e, &b, &a);
    expect_got(&b, 10);
    op c = op_put(e, 3, 0, "MEMORY_ONLY", 10);
    op_within(e, &c, &a);
    assert_int_equal(c.s, EMBER_OK);
    assert_int_equal(c.res.where, EM_BLOCK_MEMORY);
    op d = op_make(e, OP_WHERE, 1, 0); /* a block being read is cached */
    op_within(e, &d, &a);
    assert_int_equal(d.where, EM_BLOCK_MEMORY);

    op_finish(e, &a);
    expect_got(&a, 10);
    expect_block(e, 3, 0, 10);
    op_release(&a);
    op_release(&b);
    op_release(&c);
    op_release(&d);
    env_close(e);

    /* the same for a read from the disk tier (and one that promotes) */
    e = env_open((env_opts){.memory_budget = 2000, .mem_disk = true});
    e->mem.enospc = true; /* so it goes to disk */
    assert_int_equal(put(e, 1, 0, "MEMORY_AND_DISK", 10, NULL),
                     EM_BLOCK_DISK);
    e->mem.enospc = false;
    mem_gate_close(&e->mdisk, "rdd_1_0", MEM_GATE_GET);
    a = op_make(e, OP_GET_PROMOTE, 1, 0);
    op_hold(e, &e->mdisk, &a);
    c = op_put(e, 2, 0, "DISK_ONLY", 10);
    op_within(e, &c, &a);
    assert_int_equal(c.res.where, EM_BLOCK_DISK);
    b = op_make(e, OP_GET, 2, 0);
    op_within(e, &b, &a);
    expect_got(&b, 10);
    op_finish(e, &a);
    expect_got(&a, 10);
    assert_true(a.res.promoted);
    assert_int_equal(a.res.where, EM_BLOCK_MEMORY);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    assert_int_equal(e->mdisk.blocks, 1); /* 2/0 only */
    op_release(&a);
    op_release(&b);
    op_release(&c);
    env_close(e);
}

/* A block being read is not evicted (S19: "locked for reading"): a put
 * that would need its room does without. */
static void test_pinned_block_not_evicted(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 420});
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 2, 0, "MEMORY_ONLY", 10, NULL);
    mem_gate_close(&e->mem, "rdd_1_0", MEM_GATE_GET);
    op a = op_make(e, OP_GET, 1, 0);
    op_hold(e, &e->mem, &a);

    /* 420 bytes: all of memory, which would evict both blocks */
    op b = op_put(e, 3, 0, "MEMORY_ONLY", 20);
    op_within(e, &b, &a);
    assert_int_equal(b.s, EMBER_OK);
    assert_int_equal(b.res.where, EM_BLOCK_NOWHERE);
    assert_int_equal(b.res.n_evicted, 0);
    op c = op_put(e, 3, 1, "MEMORY_AND_DISK", 20);
    op_within(e, &c, &a);
    assert_int_equal(c.res.where, EM_BLOCK_DISK);
    assert_int_equal(c.res.n_evicted, 0);
    /* 210 bytes: room is made from the block nobody reads */
    op d = op_put(e, 3, 2, "MEMORY_ONLY", 10);
    op_within(e, &d, &a);
    assert_int_equal(d.res.where, EM_BLOCK_MEMORY);
    assert_int_equal(d.res.n_evicted, 1);
    assert_int_equal(d.res.evicted[0].dataset, 2);

    op_finish(e, &a);
    expect_got(&a, 10);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    expect_block(e, 1, 0, 10);
    assert_int_equal(stats(e).memory_used, 420);
    /* unpinned, it is evictable again */
    assert_int_equal(put(e, 4, 0, "MEMORY_ONLY", 20, NULL), EM_BLOCK_MEMORY);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_NOWHERE);
    op_release(&a);
    op_release(&b);
    op_release(&c);
    op_release(&d);
    env_close(e);
}

/* Unpersisting a block being read: it is gone for everyone else at once,
 * the reader still gets its bytes, and the tier and the books let it go
 * when the read ends. */
static void test_remove_while_read(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 2000});
    put(e, 1, 0, "MEMORY_ONLY", 10, NULL);
    put(e, 1, 1, "MEMORY_ONLY", 10, NULL);
    mem_gate_close(&e->mem, "rdd_1_0", MEM_GATE_GET);
    op a = op_make(e, OP_GET, 1, 0);
    op_hold(e, &e->mem, &a);

    op r = op_make(e, OP_REMOVE, 1, 0);
    op_within(e, &r, &a);
    assert_int_equal(r.removed, 2);
    op w = op_make(e, OP_WHERE, 1, 0);
    op_within(e, &w, &a);
    assert_int_equal(w.where, EM_BLOCK_NOWHERE);
    op g = op_make(e, OP_GET, 1, 0);
    op_within(e, &g, &a);
    assert_int_equal(g.s, EMBER_ENOTFOUND);
    assert_int_equal(g.got.len, 0);
    /* a new store of it waits for nobody and is not cached this time */
    op p = op_put(e, 1, 0, "MEMORY_ONLY", 10);
    op_within(e, &p, &a);
    assert_int_equal(p.s, EMBER_OK);
    assert_int_equal(p.res.where, EM_BLOCK_NOWHERE);
    assert_false(p.res.already);
    /* a doomed block still holds its memory until the read ends */
    op st = op_make(e, OP_STATS, 0, 0);
    op_within(e, &st, &a);
    assert_int_equal(st.st.memory_used, 210);
    assert_int_equal(st.st.blocks_memory, 1);
    op r2 = op_make(e, OP_REMOVE, 1, 0); /* already removed: not again */
    op_within(e, &r2, &a);
    assert_int_equal(r2.removed, 0);

    op_finish(e, &a);
    expect_got(&a, 10);
    assert_int_equal(e->mem.blocks, 0);
    em_block_stats s = stats(e);
    assert_int_equal(s.memory_used, 0);
    assert_int_equal(s.blocks_memory, 0);
    assert_int_equal(s.memory_reserved, 0);
    expect_absent(e, 1, 0);
    /* and it can be stored again */
    assert_int_equal(put(e, 1, 0, "MEMORY_ONLY", 10, NULL), EM_BLOCK_MEMORY);
    expect_block(e, 1, 0, 10);
    op_release(&a);
    op_release(&r);
    op_release(&w);
    op_release(&g);
    op_release(&p);
    op_release(&st);
    op_release(&r2);
    env_close(e);
}

/* A store in progress is not cached yet: gets miss (the task computes
 * the partition), a second store of it is "already", and unpersisting
 * it removes it when the write ends. */
static void test_put_in_progress(void **state)
{
    (void)state;
    env *e = env_open((env_opts){.memory_budget = 2000});
    mem_gate_close(&e->mem, "rdd_1_0", MEM_GATE_PUT);
    op a = op_put(e, 1, 0, "MEMORY_ONLY", 10);
    op_hold(e, &e->mem, &a);

    op g = op_make(e, OP_GET, 1, 0);
    op_within(e, &g, &a);
    assert_int_equal(g.s, EMBER_ENOTFOUND);
    assert_int_equal(g.got.len, 0);
    op w = op_make(e, OP_WHERE, 1, 0);
    op_within(e, &w, &a);
    assert_int_equal(w.where, EM_BLOCK_NOWHERE);
    op p = op_put(e, 1, 0, "MEMORY_ONLY", 10);
    op_within(e, &p, &a);
    assert_int_equal(p.s, EMBER_OK);
    assert_true(p.res.already);
    assert_int_equal(p.res.where, EM_BLOCK_NOWHERE);
    /* its room is taken while it is written */
    op st = op_make(e, OP_STATS, 0, 0);
    op_within(e, &st, &a);
    assert_int_equal(st.st.memory_reserved, 210);
    assert_int_equal(st.st.memory_used, 0);

    op_finish(e, &a);
    assert_int_equal(a.s, EMBER_OK);
    assert_false(a.res.already);
    assert_int_equal(a.res.where, EM_BLOCK_MEMORY);
    assert_int_equal(a.res.stored_bytes, 210);
    assert_int_equal(em_block_mgr_where(e->m, 1, 0), EM_BLOCK_MEMORY);
    expect_block(e, 1, 0, 10);
    em_block_stats s = stats(e);
    assert_int_equal(s.memory_used, 210);
    assert_int_equal(s.memory_reserved, 0);
    op_release(&a);
    op_release(&g);
    op_release(&w);
    op_release(&p);
    op_release(&st);

    /* removed while written: not cached, nothing left behind */
    mem_gate_close(&e->mem, "rdd_1_1", MEM_GATE_PUT);
    a = op_put(e, 1, 1, "MEMORY_AND_DISK", 10);
    op_hold(e, &e->mem, &a);
    op r = op_make(e, OP_REMOVE, 1, 0);
    op_within(e, &r, &a);
    assert_int_equal(r.removed, 1); /* 1/0; 1/1 is not cached yet */
    op_finish(e, &a);
    assert_int_equal(a.s, EMBER_OK);
    assert_int_equal(a.res.where, EM_BLOCK_NOWHERE);
    assert_int_equal(em_block_mgr_where(e->m, 1, 1), EM_BLOCK_NOWHERE);
    expect_absent(e, 1, 1);
    assert_int_equal(e->mem.blocks, 0);
    assert_int_equal(e->disk.files, 0);
    s = stats(e);
    assert_int_equal(s.memory_used + s.memory_reserved + s.disk_used, 0);
    assert_int_equal(s.blocks_memory + s.blocks_disk, 0);
    op_release(&a);
    op_release(&r);

    /* a memory tier that refuses it after the room was made: disk, as
     * before, and the room is let go */
    e->mem.enospc = true;
    assert_int_equal(put(e, 2, 0, "MEMORY_AND_DISK", 10, NULL),
                     EM_BLOCK_DISK);
    assert_int_equal(put(e, 2, 1, "MEMORY_ONLY", 10, NULL),
                     EM_BLOCK_NOWHERE);
    e->mem.enospc = false;
    s = stats(e);
    assert_int_equal(s.memory_reserved + s.memory_used, 0);
    assert_int_equal(s.disk_used, 210);
    expect_block(e, 2, 0, 10);
    env_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_memory_only_round_trip),
        cmocka_unit_test(test_lru_eviction_across_datasets),
        cmocka_unit_test(test_no_eviction_when_it_cannot_fit),
        cmocka_unit_test(test_memory_only_too_large_not_cached),
        cmocka_unit_test(test_memory_and_disk),
        cmocka_unit_test(test_serialized_sizes),
        cmocka_unit_test(test_disk_enospc_not_cached),
        cmocka_unit_test(test_corrupt_disk_block),
        cmocka_unit_test(test_remove_dataset),
        cmocka_unit_test(test_close_leaves_disk_and_off_heap),
        cmocka_unit_test(test_off_heap),
        cmocka_unit_test(test_missing_tier),
        cmocka_unit_test(test_unroll),
        cmocka_unit_test(test_unroll_serialized),
        cmocka_unit_test(test_unroll_two_at_once),
        cmocka_unit_test(test_unroll_reservation_evicts),
        cmocka_unit_test(test_unroll_falls_back_to_disk),
        cmocka_unit_test(test_unroll_threshold),
        cmocka_unit_test(test_promote),
        cmocka_unit_test(test_promote_serialized),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_held_get_blocks_nobody),
        cmocka_unit_test(test_pinned_block_not_evicted),
        cmocka_unit_test(test_remove_while_read),
        cmocka_unit_test(test_put_in_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
