/*
 * shuffle_test.c — the shuffle manager plugins "sort" and "hash", linked
 * statically with the codec plugins and run against the fake host.
 *
 * Round trips with codecs none/lz4/zstd (exact multisets, byte order for
 * sort with EMBER_SHUFFLE_SORTED, stored lengths and counts, empty
 * partitions); spills (several runs, exact output, no leftovers); the
 * bypass and partition-only paths; records larger than a chunk; two
 * commits of one map (the first wins) and abort; corruption (a flipped
 * byte, a truncated file, an index pointing past the end, 200 random
 * mutations) detected, never returned, and the output deleted; removing
 * a shuffle; two writer threads; and I/O errors with clear messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "ember/record.h"
#include "ember/shuffle.h"
#include "fake_host.h"
#include "sort_internal.h"
#include "test_util.h"

const ember_plugin_info *ember_plugin_entry_sort(void);
const ember_plugin_info *ember_plugin_entry_hash(void);
const ember_plugin_info *ember_plugin_entry_none(void);
const ember_plugin_info *ember_plugin_entry_lz4(void);
const ember_plugin_info *ember_plugin_entry_zstd(void);

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define NO_PART UINT32_MAX

/* ---- small utilities ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* Entries of dir (recursively) whose name contains needle. */
static int count_names(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)) != NULL) {
        char child[1024];
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (strstr(de->d_name, needle))
            n++;
        snprintf(child, sizeof child, "%s/%s", dir, de->d_name);
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_names(child, needle);
    }
    if (d)
        closedir(d);
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- plugins ---- */

static const ember_shuffle_vtable *manager_vt(const char *plugin)
{
    const ember_plugin_info *info = strcmp(plugin, "sort") == 0
                                        ? ember_plugin_entry_sort()
                                        : ember_plugin_entry_hash();
    assert_non_null(info);
    assert_string_equal(info->name, plugin);
    assert_int_equal(info->component_count, 1);
    const ember_component *c = &info->components[0];
    assert_int_equal(c->kind, EMBER_KIND_SHUFFLE);
    assert_int_equal(c->kind_version, EMBER_SHUFFLE_VERSION);
    assert_string_equal(c->name, "manager");
    assert_int_equal(c->vtable_size, sizeof(ember_shuffle_vtable));
    return c->vtable;
}

static const ember_codec_vtable *codec_vt(const char *name)
{
    const ember_plugin_info *info =
        !strcmp(name, "lz4")    ? ember_plugin_entry_lz4()
        : !strcmp(name, "zstd") ? ember_plugin_entry_zstd()
                                : ember_plugin_entry_none();
    assert_int_equal(info->components[0].kind, EMBER_KIND_CODEC);
    return info->components[0].vtable;
}

/* ---- the environment of one test ---- */

typedef struct env {
    char root[256];
    char dir[320];
    const char *plugin;
    const ember_shuffle_vtable *vt;
    void *state;
    const ember_codec_vtable *cvt;
    void *cstate;
    ember_shuffle_conf conf;
    long allocs;
} env;

static env E;

static int env_setup(void **state)
{
    (void)state;
    memset(&E, 0, sizeof E);
    em_fake_host_reset();
    E.allocs = em_fake_host_live_allocs();
    snprintf(E.root, sizeof E.root, "/tmp/ember-shuffle-test-XXXXXX");
    if (!mkdtemp(E.root))
        return -1;
    snprintf(E.dir, sizeof E.dir, "%s/mgr", E.root);
    if (mkdir(E.dir, 0755) != 0)
        return -1;
    return 0;
}

static void env_close(void)
{
    if (E.vt && E.state)
        E.vt->close(E.state);
    E.state = NULL;
    if (E.cvt && E.cvt->close && E.cstate)
        E.cvt->close(E.cstate);
    E.cstate = NULL;
    E.cvt = NULL;
}

static int env_teardown(void **state)
{
    (void)state;
    env_close();
    rmtree(E.root);
    if (em_fake_host_live_allocs() != E.allocs) {
        print_error("leaked %ld host allocations\n",
                    em_fake_host_live_allocs() - E.allocs);
        return -1;
    }
    return 0;
}

/* Opens plugin's manager over E.dir; codec NULL or "none" (NULL codec),
 * "none-plugin", "lz4", "zstd". */
static void env_open(const char *plugin, const char *codec, uint64_t memory,
                     uint32_t chunk, uint32_t bypass)
{
    ember_error err;
    ember_error_clear(&err);
    env_close();
    E.plugin = plugin;
    E.vt = manager_vt(plugin);
    memset(&E.conf, 0, sizeof E.conf);
    E.conf.size = sizeof E.conf;
    E.conf.dir = E.dir;
    E.conf.memory_bytes = memory;
    E.conf.file_buffer = 16 * KIB;
    E.conf.bypass_threshold = bypass;
    E.conf.chunk_bytes = chunk;
    if (codec && strcmp(codec, "none") != 0) {
        const char *name = strcmp(codec, "none-plugin") ? codec : "none";
        E.cvt = codec_vt(name);
        if (E.cvt->open &&
            E.cvt->open(em_fake_host(), &E.cstate, &err) != EMBER_OK)
            fail_msg("codec open: %s", err.msg);
        E.conf.codec = E.cvt;
        E.conf.codec_state = E.cstate;
        E.conf.codec_name = name;
    }
    if (E.vt->open(em_fake_host(), &E.conf, &E.state, &err) != EMBER_OK)
        fail_msg("open %s: %s", plugin, err.msg);
}

/* ---- record sets ---- */

typedef struct trec {
    size_t off;
    size_t len;
    uint32_t part;
} trec;

typedef struct recset {
    uint8_t *pool;
    size_t used, cap;
    trec *r;
    size_t n, capn;
} recset;

static void rs_add(recset *rs, const uint8_t *p, size_t len, uint32_t part)
{
    if (rs->used + len > rs->cap) {
        rs->cap = (rs->used + len) * 2 + 4096;
        rs->pool = realloc(rs->pool, rs->cap);
        assert_non_null(rs->pool);
    }
    if (rs->n == rs->capn) {
        rs->capn = rs->capn ? rs->capn * 2 : 1024;
        rs->r = realloc(rs->r, rs->capn * sizeof *rs->r);
        assert_non_null(rs->r);
    }
    if (len)
        memcpy(rs->pool + rs->used, p, len);
    rs->r[rs->n].off = rs->used;
    rs->r[rs->n].len = len;
    rs->r[rs->n].part = part;
    rs->n++;
    rs->used += len;
}

static const uint8_t *rs_bytes(const recset *rs, size_t i)
{
    return rs->pool + rs->r[i].off;
}

static void rs_free(recset *rs)
{
    free(rs->pool);
    free(rs->r);
    memset(rs, 0, sizeof *rs);
}

/*
 * count records of mixed sizes (mostly small, some up to a few KiB; text
 * and random bytes; duplicates, prefixes of each other, trailing zeros,
 * long shared prefixes) spread over nparts partitions, none in `empty`.
 */
static void rs_generate(recset *rs, size_t count, uint32_t nparts,
                        uint32_t empty, uint64_t seed)
{
    static const char *const words[] = {"spark ", "ember ", "shuffle ",
                                        "the ", "partition ", "key\n"};
    uint64_t s = seed ? seed : 1;
    uint8_t buf[4096];
    for (size_t i = 0; i < count; i++) {
        uint64_t x = rng_next(&s);
        uint32_t part = (uint32_t)(x % nparts);
        if (part == empty)
            part = (part + 1) % nparts;
        size_t len;
        unsigned kind = (unsigned)((x >> 20) % 100);
        if (kind < 60)
            len = (size_t)((x >> 32) % 40);
        else if (kind < 95)
            len = 40 + (size_t)((x >> 32) % 260);
        else
            len = 300 + (size_t)((x >> 32) % 3000);
        unsigned style = (unsigned)((x >> 8) % 10);
        if (style < 5) { /* text */
            size_t k = 0;
            while (k < len) {
                const char *w = words[rng_next(&s) % 6];
                for (size_t j = 0; w[j] && k < len; j++)
                    buf[k++] = (uint8_t)w[j];
            }
        } else if (style < 7) { /* shared 20-byte prefix */
            for (size_t k = 0; k < len; k++)
                buf[k] = k < 20 ? (uint8_t)('A' + k % 3)
                                : (uint8_t)(rng_next(&s) >> 56);
        } else if (style < 8 && rs->n > 0) { /* a duplicate or a prefix */
            const trec *o = &rs->r[rng_next(&s) % rs->n];
            len = o->len ? o->len - (size_t)(rng_next(&s) % 2) : 0;
            if (len > sizeof buf)
                len = sizeof buf;
            memcpy(buf, rs->pool + o->off, len);
            if (rng_next(&s) % 3 == 0 && len + 2 <= sizeof buf) {
                buf[len++] = 0; /* trailing zeros */
                buf[len++] = 0;
            }
        } else { /* random */
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)(rng_next(&s) >> 56);
        }
        rs_add(rs, buf, len, part);
    }
}

/* ---- writing and reading ---- */

static void *open_writer(uint64_t sid, uint32_t map, uint32_t attempt,
                         uint32_t nparts, uint32_t flags)
{
    ember_shuffle_writer_opts o;
    ember_error err;
    void *w = NULL;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.flags = flags;
    o.shuffle_id = sid;
    o.map_id = map;
    o.attempt = attempt;
    o.num_partitions = nparts;
    ember_error_clear(&err);
    if (E.vt->writer_open(E.state, &o, &w, &err) != EMBER_OK)
        fail_msg("writer_open: %s", err.msg);
    assert_non_null(w);
    return w;
}

/* Writes rs in batches of up to 250 records, alternating write_tagged and
 * per-partition write(). */
static void write_all(void *w, const recset *rs, uint32_t nparts)
{
    ember_buf b = ember_buf_heap();
    uint32_t *parts = xmalloc(250 * sizeof *parts);
    ember_error err;
    ember_error_clear(&err);
    for (size_t lo = 0, round = 0; lo < rs->n; lo += 250, round++) {
        size_t hi = lo + 250 < rs->n ? lo + 250 : rs->n;
        if (round % 2 == 0) {
            b.len = 0;
            for (size_t i = lo; i < hi; i++) {
                assert_int_equal(ember_batch_append(&b, rs_bytes(rs, i),
                                                    rs->r[i].len),
                                 EMBER_OK);
                parts[i - lo] = rs->r[i].part;
            }
            ember_batch batch = {b.data, b.len, hi - lo};
            if (E.vt->write_tagged(w, &batch, parts, &err) != EMBER_OK)
                fail_msg("write_tagged: %s", err.msg);
        } else {
            for (uint32_t p = 0; p < nparts; p++) {
                uint64_t n = 0;
                b.len = 0;
                for (size_t i = lo; i < hi; i++)
                    if (rs->r[i].part == p) {
                        assert_int_equal(ember_batch_append(&b,
                                                            rs_bytes(rs, i),
                                                            rs->r[i].len),
                                         EMBER_OK);
                        n++;
                    }
                ember_batch batch = {b.data, b.len, n};
                if (E.vt->write(w, p, &batch, &err) != EMBER_OK)
                    fail_msg("write: %s", err.msg);
            }
        }
    }
    free(parts);
    ember_buf_release(&b);
}

static void commit(void *w, uint32_t nparts, uint64_t *lengths,
                   uint64_t *counts)
{
    ember_error err;
    ember_error_clear(&err);
    memset(lengths, 0xff, nparts * sizeof *lengths);
    if (E.vt->writer_commit(w, lengths, counts, &err) != EMBER_OK)
        fail_msg("commit: %s", err.msg);
}

/* Writes rs as map `map` of shuffle sid and commits it. */
static void write_map(uint64_t sid, uint32_t map, uint32_t attempt,
                      const recset *rs, uint32_t nparts, uint32_t flags,
                      uint64_t *lengths, uint64_t *counts)
{
    void *w = open_writer(sid, map, attempt, nparts, flags);
    write_all(w, rs, nparts);
    commit(w, nparts, lengths, counts);
}

static ember_status read_block(uint64_t sid, uint32_t map, uint32_t part,
                               ember_buf *out, uint64_t *count,
                               ember_error *err)
{
    *count = 0;
    out->len = 0;
    ember_error_clear(err);
    return E.vt->read_block(E.state, sid, map, part, out, count, err);
}

/* Splits a batch into its records (asserting its framing). */
static rec_span *spans_of(const ember_buf *b, size_t *n)
{
    ember_batch batch = {b->data, b->len, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&batch);
    size_t cap = 64, k = 0;
    rec_span *v = xmalloc(cap * sizeof *v);
    const uint8_t *rec;
    size_t len;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        if (k == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[k].p = rec;
        v[k].len = len;
        k++;
    }
    assert_int_equal(s, EMBER_END);
    *n = k;
    return v;
}

/* Compares a block's records with rs's records of `part`: exactly in byte
 * order when ordered, as a multiset otherwise. */
static void check_records(const ember_buf *got, uint64_t count,
                          const recset *rs, uint32_t part, int ordered)
{
    size_t n = 0, m = 0;
    rec_span *a = spans_of(got, &n);
    rec_span *want = xmalloc((rs->n + 1) * sizeof *want);
    for (size_t i = 0; i < rs->n; i++)
        if (rs->r[i].part == part) {
            want[m].p = rs_bytes(rs, i);
            want[m].len = rs->r[i].len;
            m++;
        }
    assert_int_equal(count, n);
    assert_int_equal(n, m);
    sort_rec_spans(want, m);
    if (!ordered)
        sort_rec_spans(a, n);
    for (size_t i = 0; i < n; i++) {
        if (a[i].len != want[i].len ||
            (a[i].len && memcmp(a[i].p, want[i].p, a[i].len) != 0))
            fail_msg("partition %u record %zu differs (len %zu vs %zu)", part,
                     i, a[i].len, want[i].len);
    }
    free(a);
    free(want);
}

static void expect_block(uint64_t sid, uint32_t map, uint32_t part,
                         const recset *rs, int ordered)
{
    ember_buf b = ember_buf_heap();
    ember_error err;
    uint64_t count = 0;
    if (read_block(sid, map, part, &b, &count, &err) != EMBER_OK)
        fail_msg("read_block %u/%u: %s", map, part, err.msg);
    check_records(&b, count, rs, part, ordered);
    ember_buf_release(&b);
}

static void expect_status(uint64_t sid, uint32_t map, uint32_t part,
                          ember_status want, const char *msg_has)
{
    ember_buf b = ember_buf_heap();
    ember_error err;
    uint64_t count = 0;
    ember_status s = read_block(sid, map, part, &b, &count, &err);
    if (s != want)
        fail_msg("read_block %u/%u: status %d, want %d (%s)", map, part, s,
                 want, err.msg);
    assert_int_equal(b.len, 0);
    if (msg_has && !strstr(err.msg, msg_has))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_has);
    ember_buf_release(&b);
}

/* Paths of a committed map output. */
static void sort_data_path(char *out, size_t cap, uint64_t sid, uint32_t map)
{
    snprintf(out, cap, "%s/shuffle_%llu/map_%u.data", E.dir,
             (unsigned long long)sid, map);
}

static void sort_index_path(char *out, size_t cap, uint64_t sid, uint32_t map)
{
    snprintf(out, cap, "%s/shuffle_%llu/map_%u.index", E.dir,
             (unsigned long long)sid, map);
}

static void hash_part_path(char *out, size_t cap, uint64_t sid, uint32_t map,
                           uint32_t part)
{
    snprintf(out, cap, "%s/shuffle_%llu/map_%u/part_%u", E.dir,
             (unsigned long long)sid, map, part);
}

static void hash_index_path(char *out, size_t cap, uint64_t sid,
                            uint32_t map)
{
    snprintf(out, cap, "%s/shuffle_%llu/map_%u/index", E.dir,
             (unsigned long long)sid, map);
}

/* The stored sizes of the committed output agree with lengths[]. */
static void check_lengths(uint64_t sid, uint32_t map, uint32_t nparts,
                          const uint64_t *lengths)
{
    char path[512];
    if (!strcmp(E.plugin, "sort")) {
        uint64_t sum = 0;
        for (uint32_t p = 0; p < nparts; p++)
            sum += lengths[p];
        sort_data_path(path, sizeof path, sid, map);
        assert_int_equal(file_size(path), (long)sum);
    } else {
        for (uint32_t p = 0; p < nparts; p++) {
            hash_part_path(path, sizeof path, sid, map, p);
            if (lengths[p] == 0)
                assert_false(exists(path));
            else
                assert_int_equal(file_size(path), (long)lengths[p]);
        }
    }
}

static void flip_byte(const char *path, long off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* ---- tests ---- */

static void test_descriptors(void **state)
{
    (void)state;
    const ember_shuffle_vtable *s = manager_vt("sort");
    const ember_shuffle_vtable *h = manager_vt("hash");
    assert_int_equal(s->flags, EMBER_SHUFFLE_CAN_SORT);
    assert_int_equal(h->flags, 0);
    assert_non_null(s->write_tagged);
    assert_non_null(h->write_tagged);
    assert_int_equal(ember_plugin_entry_sort()->abi_major, EMBER_ABI_MAJOR);
    assert_int_equal(ember_plugin_entry_hash()->magic, EMBER_PLUGIN_MAGIC);
}

/* sort_entries against qsort on inputs that reach every path of the radix
 * sort: trailing zeros, long shared prefixes, records that shed one per
 * level (the depth limit), duplicates, empty records. */
static void test_sort_entries(void **state)
{
    (void)state;
    recset rs = {0};
    uint8_t buf[300];
    uint64_t s = 5;
    for (size_t len = 0; len <= 200; len++) { /* "", "A", "AA", ... */
        memset(buf, 'A', len);
        rs_add(&rs, buf, len, (uint32_t)(len % 2));
    }
    for (int rep = 0; rep < 40; rep++) /* "abc" + 0..9 zeros */
        for (size_t z = 0; z <= 9; z++) {
            memcpy(buf, "abc", 3);
            memset(buf + 3, 0, z);
            rs_add(&rs, buf, 3 + z, 0);
        }
    for (int i = 0; i < 3000; i++) { /* 40 shared bytes, then random */
        size_t len = 30 + (size_t)(rng_next(&s) % 40);
        for (size_t k = 0; k < len; k++)
            buf[k] = k < 40 ? (uint8_t)(k * 7)
                            : (uint8_t)(rng_next(&s) >> 60);
        rs_add(&rs, buf, len, (uint32_t)(rng_next(&s) % 3));
    }
    rs_generate(&rs, 5000, 3, NO_PART, 17);
    for (int by_bytes = 0; by_bytes <= 1; by_bytes++) {
        sort_entry *a = xmalloc(rs.n * sizeof *a);
        sort_entry *tmp = xmalloc(rs.n * sizeof *a);
        size_t starts[4];
        for (size_t i = 0; i < rs.n; i++) {
            a[i].rec = rs_bytes(&rs, i);
            a[i].len = (uint32_t)rs.r[i].len;
            a[i].part = rs.r[i].part;
            a[i].prefix = sort_prefix(a[i].rec, a[i].len, 0);
        }
        sort_entries(a, tmp, rs.n, 3, starts, by_bytes);
        assert_int_equal(starts[0], 0);
        assert_int_equal(starts[3], rs.n);
        for (uint32_t p = 0; p < 3; p++) {
            ember_buf b = ember_buf_heap();
            for (size_t i = starts[p]; i < starts[p + 1]; i++) {
                assert_int_equal(a[i].part, p);
                assert_int_equal(ember_batch_append(&b, a[i].rec, a[i].len),
                                 EMBER_OK);
            }
            check_records(&b, starts[p + 1] - starts[p], &rs, p, by_bytes);
            ember_buf_release(&b);
        }
        free(a);
        free(tmp);
    }
    rs_free(&rs);
}

/* 3 written partitions and an empty one; a few thousand records. */
static void round_trip(const char *plugin, const char *codec, uint32_t flags)
{
    const uint32_t np = 4, empty = 2;
    uint64_t lengths[4], counts[4];
    recset rs = {0};
    env_open(plugin, codec, 8 * MIB, 16 * KIB, 8);
    rs_generate(&rs, 4000, np, empty, 7);
    write_map(1, 0, 0, &rs, np, flags, lengths, counts);
    check_lengths(1, 0, np, lengths);
    int ordered = (flags & EMBER_SHUFFLE_SORTED) && !strcmp(plugin, "sort");
    for (uint32_t p = 0; p < np; p++) {
        uint64_t want = 0;
        for (size_t i = 0; i < rs.n; i++)
            want += rs.r[i].part == p;
        assert_int_equal(counts[p], want);
        expect_block(1, 0, p, &rs, ordered);
    }
    assert_int_equal(lengths[empty], 0);
    assert_int_equal(counts[empty], 0);
    if (codec && (!strcmp(codec, "lz4") || !strcmp(codec, "zstd"))) {
        uint64_t stored = 0;
        for (uint32_t p = 0; p < np; p++)
            stored += lengths[p];
        assert_true(stored < rs.used); /* it did compress */
    }
    assert_int_equal(count_names(E.dir, ".tmp"), 0);
    rs_free(&rs);
}

static void test_round_trip_sort(void **state)
{
    (void)state;
    const char *codecs[] = {"none", "none-plugin", "lz4", "zstd"};
    for (size_t i = 0; i < 4; i++) {
        round_trip("sort", codecs[i], EMBER_SHUFFLE_SORTED);
        rmtree(E.dir);
        mkdir(E.dir, 0755);
        round_trip("sort", codecs[i], 0); /* 4 <= 8: bypass */
        rmtree(E.dir);
        mkdir(E.dir, 0755);
    }
}

static void test_round_trip_hash(void **state)
{
    (void)state;
    const char *codecs[] = {"none", "none-plugin", "lz4", "zstd"};
    for (size_t i = 0; i < 4; i++) {
        round_trip("hash", codecs[i], EMBER_SHUFFLE_SORTED);
        rmtree(E.dir);
        mkdir(E.dir, 0755);
    }
}

/* ~5 MiB through a 64 KiB buffer: several runs, exact output. */
static void spill_case(uint32_t flags, uint32_t bypass)
{
    const uint32_t np = 3;
    uint64_t lengths[3], counts[3];
    recset rs = {0};
    char sdir[512];
    env_open("sort", "lz4", 64 * KIB, 8 * KIB, bypass);
    rs_generate(&rs, 40000, np, NO_PART, 99);
    assert_true(rs.used > 4 * MIB);
    int64_t spills0 = em_fake_host_counter("shuffle.sort.spills");
    void *w = open_writer(2, 5, 0, np, flags);
    write_all(w, &rs, np);
    snprintf(sdir, sizeof sdir, "%s/shuffle_2", E.dir);
    int files = count_names(sdir, ".spill");
    int64_t spills = em_fake_host_counter("shuffle.sort.spills") - spills0;
    assert_true(files >= 5);
    assert_int_equal(spills, files);
    commit(w, np, lengths, counts);
    assert_int_equal(count_names(sdir, ".spill"), 0);
    assert_int_equal(count_names(E.dir, ".tmp"), 0);
    check_lengths(2, 5, np, lengths);
    for (uint32_t p = 0; p < np; p++)
        expect_block(2, 5, p, &rs, flags & EMBER_SHUFFLE_SORTED);
    rs_free(&rs);
}

static void test_spill_sorted(void **state)
{
    (void)state;
    spill_case(EMBER_SHUFFLE_SORTED, 200);
}

static void test_spill_partition_only(void **state)
{
    (void)state;
    spill_case(0, 0); /* 3 > 0: sort by partition only */
}

/* Bypass (few partitions, no sort) and partition-only (many partitions). */
static void test_bypass_and_partition_only(void **state)
{
    (void)state;
    uint64_t lengths[40], counts[40];
    recset rs = {0};
    char sdir[512];
    snprintf(sdir, sizeof sdir, "%s/shuffle_3", E.dir);

    /* The bypass path holds the chunks while they fit the memory and
     * writes the data file once ... */
    env_open("sort", "lz4", 4 * MIB, 4 * KIB, 10);
    rs_generate(&rs, 3000, 10, 4, 5);
    void *w = open_writer(3, 0, 0, 10, 0);
    write_all(w, &rs, 10);
    assert_int_equal(count_names(sdir, ".part"), 0);
    commit(w, 10, lengths, counts);
    assert_int_equal(lengths[4], 0);
    check_lengths(3, 0, 10, lengths);
    for (uint32_t p = 0; p < 10; p++)
        expect_block(3, 0, p, &rs, 0);
    /* ... and past it writes one file per partition while mapping, then
     * concatenates them. */
    env_open("sort", "lz4", 16 * KIB, 4 * KIB, 10);
    w = open_writer(3, 1, 0, 10, 0);
    write_all(w, &rs, 10);
    assert_true(count_names(sdir, ".part") >= 9);
    commit(w, 10, lengths, counts);
    assert_int_equal(count_names(sdir, ".part"), 0);
    assert_int_equal(lengths[4], 0);
    check_lengths(3, 1, 10, lengths);
    for (uint32_t p = 0; p < 10; p++)
        expect_block(3, 1, p, &rs, 0);
    rs_free(&rs);

    rs_generate(&rs, 3000, 40, NO_PART, 6);
    w = open_writer(3, 1, 0, 40, 0); /* 40 > 10: partition-only sort */
    write_all(w, &rs, 40);
    assert_int_equal(count_names(sdir, ".part"), 0);
    commit(w, 40, lengths, counts);
    check_lengths(3, 1, 40, lengths);
    for (uint32_t p = 0; p < 40; p++)
        expect_block(3, 1, p, &rs, 0);
    rs_free(&rs);
}

/* Records of 100 KB with 4 KiB chunks, among small ones. */
static void big_records(const char *plugin, uint32_t flags, uint32_t bypass)
{
    uint64_t lengths[2], counts[2];
    recset rs = {0};
    uint8_t *big = xmalloc(100000);
    uint64_t s = 3;
    env_open(plugin, "lz4", 8 * MIB, 4 * KIB, bypass);
    for (size_t i = 0; i < 100000; i++)
        big[i] = (uint8_t)(i % 7 == 0 ? rng_next(&s) >> 56 : 'x');
    rs_generate(&rs, 500, 2, NO_PART, 11);
    rs_add(&rs, big, 100000, 0);
    big[5] = 'a';
    rs_add(&rs, big, 99999, 1);
    for (size_t i = 0; i < 100000; i++)
        big[i] = (uint8_t)(rng_next(&s) >> 56); /* incompressible */
    rs_add(&rs, big, 100000, 1);
    rs_add(&rs, (const uint8_t *)"tail", 4, 0);
    write_map(4, 0, 0, &rs, 2, flags, lengths, counts);
    check_lengths(4, 0, 2, lengths);
    int ordered = (flags & EMBER_SHUFFLE_SORTED) && !strcmp(plugin, "sort");
    expect_block(4, 0, 0, &rs, ordered);
    expect_block(4, 0, 1, &rs, ordered);
    free(big);
    rs_free(&rs);
}

static void test_big_records(void **state)
{
    (void)state;
    big_records("sort", EMBER_SHUFFLE_SORTED, 0);
    rmtree(E.dir);
    mkdir(E.dir, 0755);
    big_records("sort", 0, 10);
    rmtree(E.dir);
    mkdir(E.dir, 0755);
    big_records("sort", 0, 0);
    rmtree(E.dir);
    mkdir(E.dir, 0755);
    big_records("hash", 0, 0);
}

static void commit_twice(const char *plugin)
{
    uint64_t la[3], ca[3], lb[3], cb[3];
    recset a = {0}, b = {0};
    env_open(plugin, "lz4", 4 * MIB, 16 * KIB, 0);
    rs_generate(&a, 1500, 3, NO_PART, 21);
    rs_generate(&b, 900, 3, NO_PART, 22);

    /* Attempt 0 commits, then attempt 1 with other data: 0 wins. */
    write_map(5, 0, 0, &a, 3, EMBER_SHUFFLE_SORTED, la, ca);
    write_map(5, 0, 1, &b, 3, EMBER_SHUFFLE_SORTED, lb, cb);
    assert_memory_equal(la, lb, sizeof la);
    assert_memory_equal(ca, cb, sizeof ca);
    for (uint32_t p = 0; p < 3; p++)
        expect_block(5, 0, p, &a, !strcmp(plugin, "sort"));

    /* Two open at once: the one that commits first wins. */
    void *w2 = open_writer(5, 1, 2, 3, EMBER_SHUFFLE_SORTED);
    void *w3 = open_writer(5, 1, 3, 3, EMBER_SHUFFLE_SORTED);
    write_all(w2, &a, 3);
    write_all(w3, &b, 3);
    commit(w3, 3, lb, cb);
    commit(w2, 3, la, NULL);
    assert_memory_equal(la, lb, sizeof la);
    for (uint32_t p = 0; p < 3; p++)
        expect_block(5, 1, p, &b, 0);

    /* Abort leaves nothing. */
    void *w = open_writer(5, 2, 0, 3, EMBER_SHUFFLE_SORTED);
    write_all(w, &a, 3);
    E.vt->writer_abort(w);
    expect_status(5, 2, 0, EMBER_ENOTFOUND, "no committed output");
    assert_int_equal(count_names(E.dir, ".tmp"), 0);
    assert_int_equal(count_names(E.dir, ".part"), 0);
    rs_free(&a);
    rs_free(&b);
}

static void test_commit_twice_sort(void **state)
{
    (void)state;
    commit_twice("sort");
}

static void test_commit_twice_hash(void **state)
{
    (void)state;
    commit_twice("hash");
}

/* The file holding partition p's block, and the block's offset in it. */
static void block_file(uint64_t sid, uint32_t map, uint32_t p,
                       const uint64_t *lengths, char *path, size_t cap,
                       long *off)
{
    if (!strcmp(E.plugin, "sort")) {
        sort_data_path(path, cap, sid, map);
        *off = 0;
        for (uint32_t q = 0; q < p; q++)
            *off += (long)lengths[q];
    } else {
        hash_part_path(path, cap, sid, map, p);
        *off = 0;
    }
}

static void rewrite_after_corruption(const recset *rs, uint32_t attempt)
{
    uint64_t l[3], c[3];
    write_map(6, 0, attempt, rs, 3, EMBER_SHUFFLE_SORTED, l, c);
    for (uint32_t p = 0; p < 3; p++)
        expect_block(6, 0, p, rs, !strcmp(E.plugin, "sort"));
}

static void corruption(const char *plugin)
{
    uint64_t lengths[3], counts[3];
    recset rs = {0};
    char path[512], index[512];
    long off;
    env_open(plugin, "lz4", 4 * MIB, 4 * KIB, 0);
    rs_generate(&rs, 2000, 3, NO_PART, 31);

    /* One flipped byte inside partition 1's block. */
    write_map(6, 0, 0, &rs, 3, EMBER_SHUFFLE_SORTED, lengths, counts);
    int64_t bad0 = em_fake_host_counter("shuffle.corrupt_blocks");
    block_file(6, 0, 1, lengths, path, sizeof path, &off);
    flip_byte(path, off + (long)lengths[1] / 2, 0x10);
    expect_status(6, 0, 1, EMBER_EINVAL, path);
    expect_status(6, 0, 1, EMBER_ENOTFOUND, NULL); /* deleted */
    expect_status(6, 0, 0, EMBER_ENOTFOUND, NULL);
    assert_int_equal(em_fake_host_counter("shuffle.corrupt_blocks") - bad0,
                     1);
    rewrite_after_corruption(&rs, 1);

    /* A truncated file. */
    block_file(6, 0, 2, lengths, path, sizeof path, &off);
    assert_int_equal(truncate(path, file_size(path) - 3), 0);
    expect_status(6, 0, 2, EMBER_EINVAL, path);
    expect_status(6, 0, 2, EMBER_ENOTFOUND, NULL);
    rewrite_after_corruption(&rs, 2);

    /* An index entry (with a valid checksum) pointing past the end. */
    if (!strcmp(plugin, "sort"))
        sort_index_path(index, sizeof index, 6, 0);
    else
        hash_index_path(index, sizeof index, 6, 0);
    {
        uint8_t e[32];
        int fd = open(index, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, e, 32, 64), 32);
        uint64_t len = (uint64_t)1 << 40;
        for (int i = 0; i < 8; i++)
            e[8 + i] = (uint8_t)(len >> (8 * i));
        uint64_t sum = (uint64_t)XXH3_64bits_withSeed(e, 24, 0);
        for (int i = 0; i < 8; i++)
            e[24 + i] = (uint8_t)(sum >> (8 * i));
        assert_int_equal(pwrite(fd, e, 32, 64), 32);
        close(fd);
    }
    expect_status(6, 0, 0, EMBER_EINVAL, "past the end");
    expect_status(6, 0, 1, EMBER_ENOTFOUND, NULL);
    rewrite_after_corruption(&rs, 3);

    /* A read of a partition out of range is the caller's error: the
     * output stays. */
    expect_status(6, 0, 3, EMBER_EINVAL, "out of range");
    expect_block(6, 0, 0, &rs, !strcmp(plugin, "sort"));
    rs_free(&rs);
}

static void test_corruption_sort(void **state)
{
    (void)state;
    corruption("sort");
}

static void test_corruption_hash(void **state)
{
    (void)state;
    corruption("hash");
}

/* Files of the committed map 0 of shuffle 9 (data first). */
static int output_files(char paths[][512], uint32_t nparts)
{
    int n = 0;
    if (!strcmp(E.plugin, "sort")) {
        sort_data_path(paths[n++], 512, 9, 0);
        sort_index_path(paths[n++], 512, 9, 0);
    } else {
        for (uint32_t p = 0; p < nparts; p++) {
            hash_part_path(paths[n], 512, 9, 0, p);
            if (exists(paths[n]))
                n++;
        }
        hash_index_path(paths[n++], 512, 9, 0);
    }
    return n;
}

/* 200 random one-byte mutations: never a crash, never wrong data, and
 * always detected (every stored byte is covered by a checksum). */
static void mutations(const char *plugin, const char *codec)
{
    uint64_t lengths[3], counts[3];
    recset rs = {0};
    uint64_t s = 12345;
    ember_error err;
    env_open(plugin, codec, 4 * MIB, 512, 0);
    rs_generate(&rs, 150, 3, NO_PART, 41);
    for (int iter = 0; iter < 200; iter++) {
        char paths[8][512];
        assert_int_equal(E.vt->remove_shuffle(E.state, 9, &err), EMBER_OK);
        write_map(9, 0, 0, &rs, 3, EMBER_SHUFFLE_SORTED, lengths, counts);
        int nf = output_files(paths, 3);
        const char *victim = paths[rng_next(&s) % (uint64_t)nf];
        long size = file_size(victim);
        assert_true(size > 0);
        flip_byte(victim, (long)(rng_next(&s) % (uint64_t)size),
                  (uint8_t)(1u << (rng_next(&s) % 8)));
        int detected = 0;
        for (uint32_t p = 0; p < 3; p++) {
            ember_buf b = ember_buf_heap();
            uint64_t count = 0;
            ember_status st = read_block(9, 0, p, &b, &count, &err);
            if (st == EMBER_OK)
                check_records(&b, count, &rs, p, !strcmp(plugin, "sort"));
            else if (st == EMBER_EINVAL)
                detected++;
            else if (st != EMBER_ENOTFOUND)
                fail_msg("iteration %d: status %d (%s)", iter, st, err.msg);
            ember_buf_release(&b);
        }
        if (!detected)
            fail_msg("iteration %d: a flipped byte in %s went unnoticed",
                     iter, victim);
    }
    rs_free(&rs);
}

static void test_mutations_sort(void **state)
{
    (void)state;
    mutations("sort", "lz4");
    mutations("sort", "none");
}

static void test_mutations_hash(void **state)
{
    (void)state;
    mutations("hash", "zstd");
}

static void test_remove_shuffle(void **state)
{
    (void)state;
    const char *plugins[] = {"sort", "hash"};
    for (int k = 0; k < 2; k++) {
        uint64_t l[2], c[2];
        recset rs = {0};
        ember_error err;
        char sdir[512];
        rmtree(E.dir);
        mkdir(E.dir, 0755);
        env_open(plugins[k], "lz4", 4 * MIB, 0, 0);
        rs_generate(&rs, 500, 2, NO_PART, 51);
        write_map(7, 0, 0, &rs, 2, 0, l, c);
        write_map(7, 1, 0, &rs, 2, 0, l, c);
        write_map(8, 0, 0, &rs, 2, 0, l, c);
        void *open_w = open_writer(7, 2, 0, 2, 0); /* never committed */
        write_all(open_w, &rs, 2);
        E.vt->writer_abort(open_w);
        assert_int_equal(E.vt->remove_shuffle(E.state, 7, &err), EMBER_OK);
        snprintf(sdir, sizeof sdir, "%s/shuffle_7", E.dir);
        assert_false(exists(sdir));
        expect_status(7, 0, 0, EMBER_ENOTFOUND, NULL);
        expect_status(7, 1, 1, EMBER_ENOTFOUND, NULL);
        expect_block(8, 0, 1, &rs, 0);
        assert_int_equal(E.vt->remove_shuffle(E.state, 7, &err), EMBER_OK);
        assert_int_equal(E.vt->remove_shuffle(E.state, 99, &err), EMBER_OK);
        assert_int_equal(E.vt->remove_shuffle(E.state, 8, &err), EMBER_OK);
        /* Nothing left at all (no trash either). */
        assert_int_equal(count_names(E.dir, ""), 0);
        rs_free(&rs);
    }
}

typedef struct thread_arg {
    uint32_t map;
    const recset *rs;
    uint64_t lengths[3];
    ember_status status;
    char msg[EMBER_ERROR_MAX];
} thread_arg;

static void *writer_thread(void *p)
{
    thread_arg *a = p;
    ember_shuffle_writer_opts o;
    ember_error err;
    void *w = NULL;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.flags = EMBER_SHUFFLE_SORTED;
    o.shuffle_id = 10;
    o.map_id = a->map;
    o.num_partitions = 3;
    ember_error_clear(&err);
    a->status = E.vt->writer_open(E.state, &o, &w, &err);
    ember_buf b = ember_buf_heap();
    uint32_t *parts = malloc(a->rs->n * sizeof *parts);
    for (size_t i = 0; a->status == EMBER_OK && parts && i < a->rs->n; i++) {
        if (ember_batch_append(&b, rs_bytes(a->rs, i), a->rs->r[i].len) !=
            EMBER_OK)
            a->status = EMBER_ENOMEM;
        parts[i] = a->rs->r[i].part;
    }
    if (a->status == EMBER_OK && parts) {
        ember_batch batch = {b.data, b.len, a->rs->n};
        a->status = E.vt->write_tagged(w, &batch, parts, &err);
        if (a->status == EMBER_OK)
            a->status = E.vt->writer_commit(w, a->lengths, NULL, &err);
        else
            E.vt->writer_abort(w);
    }
    snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    free(parts);
    ember_buf_release(&b);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    const char *plugins[] = {"sort", "hash"};
    for (int k = 0; k < 2; k++) {
        recset rs[2] = {{0}, {0}};
        thread_arg args[2];
        pthread_t t[2];
        rmtree(E.dir);
        mkdir(E.dir, 0755);
        env_open(plugins[k], "lz4", 128 * KIB, 8 * KIB, 0);
        for (uint32_t i = 0; i < 2; i++) {
            rs_generate(&rs[i], 6000, 3, NO_PART, 61 + i);
            memset(&args[i], 0, sizeof args[i]);
            args[i].map = i;
            args[i].rs = &rs[i];
            assert_int_equal(pthread_create(&t[i], NULL, writer_thread,
                                            &args[i]),
                             0);
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            if (args[i].status != EMBER_OK)
                fail_msg("thread %d: %s", i, args[i].msg);
        }
        for (uint32_t i = 0; i < 2; i++)
            for (uint32_t p = 0; p < 3; p++)
                expect_block(10, i, p, &rs[i], k == 0);
        rs_free(&rs[0]);
        rs_free(&rs[1]);
    }
}

/* What a crashed process leaves (temp files, trash) is swept by the next
 * open; committed output stays. */
static void test_sweep_on_open(void **state)
{
    (void)state;
    const char *plugins[] = {"sort", "hash"};
    for (int k = 0; k < 2; k++) {
        uint64_t l[2], c[2];
        recset rs = {0};
        char p1[512], p2[512], p3[512], p4[512];
        rmtree(E.dir);
        mkdir(E.dir, 0755);
        env_open(plugins[k], "lz4", 0, 0, 0);
        rs_generate(&rs, 300, 2, NO_PART, 81);
        write_map(1, 2, 0, &rs, 2, 0, l, c);
        env_close();
        snprintf(p1, sizeof p1, "%s/shuffle_1/map_0.a0.spill0.tmp", E.dir);
        snprintf(p2, sizeof p2, "%s/shuffle_1/map_1.a3.tmp", E.dir);
        snprintf(p3, sizeof p3, "%s/shuffle_1/map_1.a3.tmp/part_0", E.dir);
        snprintf(p4, sizeof p4, "%s/.trash-1-7", E.dir);
        assert_int_equal(mkdir(p2, 0755), 0);
        assert_int_equal(mkdir(p4, 0755), 0);
        int fd = open(p1, O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        close(fd);
        fd = open(p3, O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        close(fd);
        env_open(plugins[k], "lz4", 0, 0, 0);
        assert_false(exists(p1));
        assert_false(exists(p2));
        assert_false(exists(p4));
        expect_status(1, 0, 0, EMBER_ENOTFOUND, NULL);
        expect_status(1, 1, 0, EMBER_ENOTFOUND, NULL);
        expect_block(1, 2, 0, &rs, 0);
        expect_block(1, 2, 1, &rs, 0);
        rs_free(&rs);
    }
}

static void test_bad_directory(void **state)
{
    (void)state;
    const char *plugins[] = {"sort", "hash"};
    for (int k = 0; k < 2; k++) {
        const ember_shuffle_vtable *vt = manager_vt(plugins[k]);
        ember_shuffle_conf conf;
        ember_error err;
        void *st = NULL;
        char missing[512], file[512];
        memset(&conf, 0, sizeof conf);
        conf.size = sizeof conf;
        snprintf(missing, sizeof missing, "%s/no/such/dir", E.root);
        conf.dir = missing;
        ember_error_clear(&err);
        assert_int_equal(vt->open(em_fake_host(), &conf, &st, &err),
                         EMBER_ENOTFOUND);
        assert_null(st);
        assert_non_null(strstr(err.msg, missing));
        assert_non_null(strstr(err.msg, "No such file or directory"));

        snprintf(file, sizeof file, "%s/a-file", E.root);
        int fd = open(file, O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        close(fd);
        conf.dir = file;
        assert_int_equal(vt->open(em_fake_host(), &conf, &st, &err),
                         EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "not a directory"));

        /* The directory disappears under an opened manager. */
        env_open(plugins[k], NULL, 0, 0, 0);
        rmtree(E.dir);
        ember_shuffle_writer_opts o;
        memset(&o, 0, sizeof o);
        o.size = sizeof o;
        o.num_partitions = 2;
        void *w = NULL;
        ember_status s = E.vt->writer_open(E.state, &o, &w, &err);
        assert_int_equal(s, EMBER_ENOTFOUND);
        assert_null(w);
        assert_non_null(strstr(err.msg, E.dir));
        expect_status(0, 0, 0, EMBER_ENOTFOUND, NULL);
        assert_int_equal(E.vt->remove_shuffle(E.state, 0, &err), EMBER_OK);
        /* Bad options. */
        mkdir(E.dir, 0755);
        o.num_partitions = 0;
        assert_int_equal(E.vt->writer_open(E.state, &o, &w, &err),
                         EMBER_EINVAL);
        env_close();
        unlink(file);
    }
}

/* Writes fail (a file size limit: EFBIG, as a full disk would fail):
 * a clear error naming the file, and the writer's files removed. */
static void write_error(const char *plugin, uint32_t flags, const char *what)
{
    struct rlimit old, lim;
    recset rs = {0};
    ember_error err;
    ember_status s = EMBER_OK;
    uint64_t l[3];
    env_open(plugin, NULL, 64 * KIB, 8 * KIB, 0);
    rs_generate(&rs, 8000, 3, NO_PART, 71);
    void *w = open_writer(11, 0, 0, 3, flags);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 16 * KIB;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ember_buf b = ember_buf_heap();
    for (size_t i = 0; i < rs.n && s == EMBER_OK; i++) {
        b.len = 0;
        assert_int_equal(ember_batch_append(&b, rs_bytes(&rs, i), rs.r[i].len),
                         EMBER_OK);
        ember_batch batch = {b.data, b.len, 1};
        ember_error_clear(&err);
        s = E.vt->write(w, rs.r[i].part, &batch, &err);
    }
    if (s == EMBER_OK) {
        ember_error_clear(&err);
        s = E.vt->writer_commit(w, l, NULL, &err);
        w = NULL;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    if (s != EMBER_EIO || !strstr(err.msg, what) || !strstr(err.msg, E.dir) ||
        !strstr(err.msg, "File too large"))
        fail_msg("status %d, message \"%s\"", s, err.msg);
    if (w) {
        /* The writer refuses more work, and its files are gone already. */
        assert_int_equal(count_names(E.dir, ".tmp"), 0);
        ember_batch none = {NULL, 0, 0};
        assert_int_equal(E.vt->write(w, 0, &none, &err), EMBER_EIO);
        assert_non_null(strstr(err.msg, "failed earlier"));
        E.vt->writer_abort(w);
    }
    assert_int_equal(count_names(E.dir, ".tmp"), 0);
    assert_int_equal(count_names(E.dir, "part"), 0);
    expect_status(11, 0, 0, EMBER_ENOTFOUND, NULL);
    ember_buf_release(&b);
    rs_free(&rs);
}

static void test_write_errors(void **state)
{
    (void)state;
    write_error("sort", EMBER_SHUFFLE_SORTED, "sort shuffle: writing spill");
    write_error("sort", 0, "sort shuffle: writing");
    write_error("hash", 0, "hash shuffle: writing");
}

/* Bad input to write and write_tagged. */
static void test_bad_writes(void **state)
{
    (void)state;
    const char *plugins[] = {"sort", "hash"};
    for (int k = 0; k < 2; k++) {
        ember_error err;
        uint32_t parts[2] = {0, 5};
        env_open(plugins[k], NULL, 0, 0, 0);
        void *w = open_writer(12, 0, 0, 3, EMBER_SHUFFLE_SORTED);
        ember_buf b = ember_buf_heap();
        ember_batch_append(&b, "ab", 2);
        ember_batch_append(&b, "cd", 2);
        ember_batch batch = {b.data, b.len, 2};
        assert_int_equal(E.vt->write(w, 3, &batch, &err), EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "out of range"));
        assert_int_equal(E.vt->write_tagged(w, &batch, parts, &err),
                         EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "out of range"));
        /* Still usable after refused partitions. */
        parts[1] = 2;
        assert_int_equal(E.vt->write_tagged(w, &batch, parts, &err),
                         EMBER_OK);
        uint8_t junk[3] = {0x85, 0x00, 0x01}; /* bad uvarint */
        ember_batch bad = {junk, sizeof junk, 1};
        assert_int_equal(E.vt->write(w, 0, &bad, &err), EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "malformed"));
        E.vt->writer_abort(w);
        ember_buf_release(&b);
        env_close();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)
        T(test_descriptors),
        T(test_sort_entries),
        T(test_round_trip_sort),
        T(test_round_trip_hash),
        T(test_spill_sorted),
        T(test_spill_partition_only),
        T(test_bypass_and_partition_only),
        T(test_big_records),
        T(test_commit_twice_sort),
        T(test_commit_twice_hash),
        T(test_corruption_sort),
        T(test_corruption_hash),
        T(test_mutations_sort),
        T(test_mutations_hash),
        T(test_remove_shuffle),
        T(test_concurrent_writers),
        T(test_sweep_on_open),
        T(test_bad_directory),
        T(test_write_errors),
        T(test_bad_writes),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
