/*
 * codec_test.c — the codec plugins (none, lz4, zstd), linked statically.
 *
 * Every codec: round trips of empty, small, 1 MiB compressible and 1 MiB
 * random blocks; bound() suffices for worst-case input; too small an output
 * is EMBER_ENOSPC; corrupt or truncated input and a wrong expected size are
 * EMBER_EINVAL (and random mutations never crash: run under ASan/UBSan).
 * zstd: the level comes from ember.io.compression.zstd.level, bad values
 * are refused naming key and value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/codec.h"
#include "fake_host.h"

/* The entries of the statically linked plugins (EMBER_PLUGIN_STATIC). */
const ember_plugin_info *ember_plugin_entry_none(void);
const ember_plugin_info *ember_plugin_entry_lz4(void);
const ember_plugin_info *ember_plugin_entry_zstd(void);

#define MIB ((size_t)1 << 20)

/* One codec under test: its plugin entry and, once set up, its state. */
typedef struct codec_case {
    const char *plugin;
    ember_plugin_entry_fn entry;
    const ember_codec_vtable *vt;
    void *state;
    long allocs_before;
} codec_case;

static codec_case case_none = {"none", ember_plugin_entry_none, NULL, NULL, 0};
static codec_case case_lz4 = {"lz4", ember_plugin_entry_lz4, NULL, NULL, 0};
static codec_case case_zstd = {"zstd", ember_plugin_entry_zstd, NULL, NULL, 0};

/* xorshift64*: deterministic pseudo-random bytes for the tests. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/* Fills p[0..n) with random bytes from seed. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed ? seed : 1;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next(&s) >> 56);
}

/* Fills p[0..n) with text-like, compressible bytes. */
static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
    static const char *const words[] = {
        "spark ", "ember ", "shuffle ", "partition ", "record ", "batch\n",
        "codec ", "the ",   "of ",      "stage ",     "task\t",  "plugin ",
    };
    uint64_t s = seed ? seed : 1;
    size_t i = 0;
    while (i < n) {
        const char *w = words[rng_next(&s) % (sizeof words / sizeof *words)];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
    }
}

/* Checked malloc for test buffers (n may be 0). */
static uint8_t *xmalloc(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* Finds the single "codec" component of the case's plugin. */
static const ember_codec_vtable *codec_vtable(const ember_plugin_info *info)
{
    assert_non_null(info);
    assert_int_equal(info->component_count, 1);
    const ember_component *c = &info->components[0];
    assert_int_equal(c->kind, EMBER_KIND_CODEC);
    assert_int_equal(c->kind_version, EMBER_CODEC_VERSION);
    assert_string_equal(c->name, "codec");
    assert_int_equal(c->vtable_size, sizeof(ember_codec_vtable));
    return c->vtable;
}

/* cmocka setup: resets the host, opens the codec of the case. */
static int codec_setup(void **state)
{
    codec_case *cc = *state;
    ember_error err;
    ember_error_clear(&err);
    em_fake_host_reset();
    cc->allocs_before = em_fake_host_live_allocs();
    cc->vt = codec_vtable(cc->entry());
    cc->state = NULL;
    if (cc->vt->open &&
        cc->vt->open(em_fake_host(), &cc->state, &err) != EMBER_OK) {
        print_error("open %s: %s\n", cc->plugin, err.msg);
        return -1;
    }
    return 0;
}

/* cmocka teardown: closes the codec; it must free everything it took. */
static int codec_teardown(void **state)
{
    codec_case *cc = *state;
    if (cc->vt && cc->vt->close)
        cc->vt->close(cc->state);
    cc->state = NULL;
    if (em_fake_host_live_allocs() != cc->allocs_before) {
        print_error("%s leaked host allocations\n", cc->plugin);
        return -1;
    }
    return 0;
}

/* Compresses src with a bound()-sized buffer and decompresses it back. */
static void round_trip(const codec_case *cc, const uint8_t *src, size_t n)
{
    ember_error err;
    ember_error_clear(&err);
    size_t bound = cc->vt->bound(cc->state, n);
    assert_true(bound >= 1 || n == 0);
    uint8_t *z = xmalloc(bound);
    uint8_t *back = xmalloc(n);
    size_t zn = (size_t)-1;
    ember_status s =
        cc->vt->compress(cc->state, src, n, z, bound, &zn, &err);
    if (s != EMBER_OK)
        fail_msg("%s compress %zu: %s", cc->plugin, n, err.msg);
    assert_true(zn <= bound);
    s = cc->vt->decompress(cc->state, z, zn, back, n, &err);
    if (s != EMBER_OK)
        fail_msg("%s decompress %zu: %s", cc->plugin, n, err.msg);
    assert_true(n == 0 || memcmp(src, back, n) == 0);
    free(z);
    free(back);
}

static void test_descriptor(void **state)
{
    codec_case *cc = *state;
    const ember_plugin_info *info = cc->entry();
    assert_int_equal(info->magic, EMBER_PLUGIN_MAGIC);
    assert_int_equal(info->abi_major, EMBER_ABI_MAJOR);
    assert_int_equal(info->abi_traits, EMBER_ABI_TRAITS);
    assert_string_equal(info->name, cc->plugin);
    assert_non_null(info->components[0].description);
    assert_non_null(cc->vt->bound);
    assert_non_null(cc->vt->compress);
    assert_non_null(cc->vt->decompress);
}

static void test_round_trip_empty(void **state)
{
    codec_case *cc = *state;
    round_trip(cc, NULL, 0);
    uint8_t one = 0;
    round_trip(cc, &one, 0);
}

static void test_round_trip_small(void **state)
{
    codec_case *cc = *state;
    static const char hello[] = "hello, hello, hello ember";
    round_trip(cc, (const uint8_t *)hello, sizeof hello - 1);
    uint8_t b = 0x5a;
    round_trip(cc, &b, 1);
    uint8_t buf[300];
    for (size_t n = 2; n <= sizeof buf; n += 37) {
        fill_random(buf, n, n);
        round_trip(cc, buf, n);
    }
}

static void test_round_trip_compressible(void **state)
{
    codec_case *cc = *state;
    uint8_t *src = xmalloc(MIB);
    fill_text(src, MIB, 42);
    round_trip(cc, src, MIB);
    /* It must actually compress (except the identity codec). */
    ember_error err;
    size_t bound = cc->vt->bound(cc->state, MIB);
    uint8_t *z = xmalloc(bound);
    size_t zn = 0;
    assert_int_equal(
        cc->vt->compress(cc->state, src, MIB, z, bound, &zn, &err),
        EMBER_OK);
    if (strcmp(cc->plugin, "none") == 0)
        assert_int_equal(zn, MIB);
    else
        assert_true(zn < MIB / 2);
    free(z);
    free(src);
}

static void test_round_trip_random(void **state)
{
    codec_case *cc = *state;
    uint8_t *src = xmalloc(MIB);
    fill_random(src, MIB, 7);
    round_trip(cc, src, MIB);
    free(src);
}

/* Worst-case input compressed into exactly bound() bytes always fits. */
static void test_bound_suffices(void **state)
{
    codec_case *cc = *state;
    ember_error err;
    uint64_t s = 99;
    uint8_t *src = xmalloc(70000);
    for (int round = 0; round < 60; round++) {
        size_t n = (size_t)(rng_next(&s) % 70000);
        if (round < 4)
            n = (size_t)round;
        fill_random(src, n, s);
        size_t bound = cc->vt->bound(cc->state, n);
        uint8_t *z = xmalloc(bound);
        size_t zn = 0;
        if (cc->vt->compress(cc->state, src, n, z, bound, &zn, &err) !=
            EMBER_OK)
            fail_msg("%s: %zu bytes into bound %zu: %s", cc->plugin, n,
                     bound, err.msg);
        assert_true(zn <= bound);
        free(z);
    }
    free(src);
    assert_true(cc->vt->bound(cc->state, 1000) >= 1000);
}

/* An output buffer smaller than needed is EMBER_ENOSPC, not an overflow. */
static void test_compress_no_room(void **state)
{
    codec_case *cc = *state;
    ember_error err;
    uint8_t src[4096];
    uint8_t dst[16];
    size_t zn = 0;
    fill_random(src, sizeof src, 3);
    ember_error_clear(&err);
    assert_int_equal(cc->vt->compress(cc->state, src, sizeof src, dst,
                                      sizeof dst, &zn, &err),
                     EMBER_ENOSPC);
    assert_int_equal(err.code, EMBER_ENOSPC);
    assert_true(strlen(err.msg) > 0);
}

/* Compresses n text bytes; returns the block (caller frees), sets *zn. */
static uint8_t *compress_text(const codec_case *cc, uint8_t *src, size_t n,
                              size_t *zn)
{
    ember_error err;
    fill_text(src, n, 5);
    size_t bound = cc->vt->bound(cc->state, n);
    uint8_t *z = xmalloc(bound);
    assert_int_equal(cc->vt->compress(cc->state, src, n, z, bound, zn, &err),
                     EMBER_OK);
    return z;
}

/* Decompressing into a size other than the original is EMBER_EINVAL. */
static void test_wrong_size(void **state)
{
    codec_case *cc = *state;
    enum { N = 10000 };
    uint8_t *src = xmalloc(N);
    uint8_t *back = xmalloc(N + 1);
    size_t zn = 0;
    uint8_t *z = compress_text(cc, src, N, &zn);
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(cc->vt->decompress(cc->state, z, zn, back, N - 1, &err),
                     EMBER_EINVAL);
    assert_true(strlen(err.msg) > 0);
    ember_error_clear(&err);
    assert_int_equal(cc->vt->decompress(cc->state, z, zn, back, N + 1, &err),
                     EMBER_EINVAL);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(cc->vt->decompress(cc->state, z, zn, back, 0, &err),
                     EMBER_EINVAL);
    assert_int_equal(cc->vt->decompress(cc->state, z, zn, back, N, &err),
                     EMBER_OK);
    assert_memory_equal(src, back, N);
    free(z);
    free(back);
    free(src);
}

/* Truncated and garbage blocks are refused; random damage never crashes. */
static void test_corrupt_input(void **state)
{
    codec_case *cc = *state;
    enum { N = 20000 };
    uint8_t *src = xmalloc(N);
    uint8_t *back = xmalloc(N);
    size_t zn = 0;
    uint8_t *z = compress_text(cc, src, N, &zn);
    ember_error err;

    /* Truncated: every codec notices (none by its length). */
    size_t cuts[] = {0, 1, zn / 2, zn - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        ember_error_clear(&err);
        assert_int_equal(
            cc->vt->decompress(cc->state, z, cuts[i], back, N, &err),
            EMBER_EINVAL);
        assert_int_equal(err.code, EMBER_EINVAL);
    }
    /* An empty block cannot stand for a non-empty one. */
    assert_int_equal(cc->vt->decompress(cc->state, NULL, 0, back, N, &err),
                     EMBER_EINVAL);

    /* Garbage that is not a block at all (the identity codec accepts
     * anything of the right length). */
    if (strcmp(cc->plugin, "none") != 0) {
        uint8_t junk[64];
        memset(junk, 0xff, sizeof junk);
        assert_int_equal(
            cc->vt->decompress(cc->state, junk, sizeof junk, back, N, &err),
            EMBER_EINVAL);
        memset(junk, 0, sizeof junk);
        assert_int_equal(
            cc->vt->decompress(cc->state, junk, sizeof junk, back, N, &err),
            EMBER_EINVAL);
    }

    /* Random damage: OK (undetected, no checksum) or EINVAL, never more. */
    uint8_t *bad = xmalloc(zn);
    uint64_t s = 2024;
    for (int round = 0; round < 500; round++) {
        memcpy(bad, z, zn);
        int flips = 1 + (int)(rng_next(&s) % 8);
        for (int f = 0; f < flips; f++)
            bad[rng_next(&s) % zn] ^= (uint8_t)(1u + rng_next(&s) % 255);
        ember_status st = cc->vt->decompress(cc->state, bad, zn, back, N,
                                             &err);
        assert_true(st == EMBER_OK || st == EMBER_EINVAL);
    }
    free(bad);
    free(z);
    free(back);
    free(src);
}

/* NULL buffers with a non-zero length are refused, not dereferenced. */
static void test_null_buffers(void **state)
{
    codec_case *cc = *state;
    ember_error err;
    uint8_t buf[64];
    size_t zn = 0;
    assert_int_equal(
        cc->vt->compress(cc->state, NULL, 10, buf, sizeof buf, &zn, &err),
        EMBER_EINVAL);
    assert_int_equal(
        cc->vt->compress(cc->state, buf, 10, buf, sizeof buf, NULL, &err),
        EMBER_EINVAL);
    assert_int_equal(cc->vt->decompress(cc->state, NULL, 10, buf, 10, &err),
                     EMBER_EINVAL);
    assert_int_equal(cc->vt->decompress(cc->state, buf, 10, NULL, 10, &err),
                     EMBER_EINVAL);
}

/* ---- zstd level ---- */

/* Opens zstd.codec with the current fake config; returns the status. */
static ember_status zstd_open(void **st, ember_error *err)
{
    const ember_codec_vtable *vt = codec_vtable(ember_plugin_entry_zstd());
    ember_error_clear(err);
    *st = NULL;
    return vt->open(em_fake_host(), st, err);
}

/* Compressed size of the same text at the configured level. */
static size_t zstd_size_at(const char *level)
{
    const ember_codec_vtable *vt = codec_vtable(ember_plugin_entry_zstd());
    enum { N = 256 * 1024 };
    ember_error err;
    void *st = NULL;
    em_fake_host_set_config("ember.io.compression.zstd.level", level);
    if (zstd_open(&st, &err) != EMBER_OK)
        fail_msg("level %s: %s", level ? level : "(unset)", err.msg);
    uint8_t *src = xmalloc(N);
    fill_text(src, N, 11);
    size_t bound = vt->bound(st, N);
    uint8_t *z = xmalloc(bound);
    uint8_t *back = xmalloc(N);
    size_t zn = 0;
    assert_int_equal(vt->compress(st, src, N, z, bound, &zn, &err), EMBER_OK);
    assert_int_equal(vt->decompress(st, z, zn, back, N, &err), EMBER_OK);
    assert_memory_equal(src, back, N);
    vt->close(st);
    free(back);
    free(z);
    free(src);
    return zn;
}

static void test_zstd_level_from_config(void **state)
{
    (void)state;
    em_fake_host_reset();
    long before = em_fake_host_live_allocs();
    size_t dflt = zstd_size_at(NULL);
    size_t one = zstd_size_at("1");
    size_t fast = zstd_size_at("-5");
    size_t high = zstd_size_at("19");
    assert_int_equal(dflt, one); /* the default is level 1 */
    assert_true(high < one);
    assert_true(fast > one);
    assert_int_equal(em_fake_host_live_allocs(), before);
    em_fake_host_reset();
}

static void test_zstd_bad_level(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "abc", "3x", " 3", "1.5", "999", "-99999999", "99999999999999999",
        "000000000000000000000000000000000000000000000000000000000000000000001",
    };
    em_fake_host_reset();
    long before = em_fake_host_live_allocs();
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ember_error err;
        void *st = (void *)&err;
        em_fake_host_set_config("ember.io.compression.zstd.level", bad[i]);
        ember_status s = zstd_open(&st, &err);
        if (s != EMBER_EINVAL)
            fail_msg("level '%s' accepted", bad[i]);
        assert_int_equal(err.code, EMBER_EINVAL);
        assert_non_null(strstr(err.msg, "ember.io.compression.zstd.level"));
        if (strlen(bad[i]) < 20)
            assert_non_null(strstr(err.msg, bad[i]));
        assert_null(st);
    }
    assert_int_equal(em_fake_host_live_allocs(), before);
    em_fake_host_reset();
}

/* open's allocation failing is EMBER_ENOMEM, not a crash. */
static void test_zstd_open_nomem(void **state)
{
    (void)state;
    ember_error err;
    void *st = NULL;
    em_fake_host_reset();
    em_fake_host_fail_allocs(1);
    assert_int_equal(zstd_open(&st, &err), EMBER_ENOMEM);
    assert_null(st);
    em_fake_host_reset();
}

/* Without open (state NULL) zstd compresses at the default level. */
static void test_zstd_without_open(void **state)
{
    (void)state;
    const ember_codec_vtable *vt = codec_vtable(ember_plugin_entry_zstd());
    ember_error err;
    static const char text[] = "no state, no problem, no state, no problem";
    uint8_t z[128];
    uint8_t back[sizeof text];
    size_t zn = 0;
    assert_int_equal(vt->compress(NULL, (const uint8_t *)text, sizeof text, z,
                                  sizeof z, &zn, &err),
                     EMBER_OK);
    assert_int_equal(vt->decompress(NULL, z, zn, back, sizeof text, &err),
                     EMBER_OK);
    assert_memory_equal(text, back, sizeof text);
}

#define CODEC_TESTS(cc)                                                    \
    cmocka_unit_test_prestate_setup_teardown(test_descriptor,             \
                                             codec_setup, codec_teardown,  \
                                             &(cc)),                       \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_round_trip_empty, codec_setup, codec_teardown, &(cc)),    \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_round_trip_small, codec_setup, codec_teardown, &(cc)),    \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_round_trip_compressible, codec_setup, codec_teardown,     \
            &(cc)),                                                        \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_round_trip_random, codec_setup, codec_teardown, &(cc)),   \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_bound_suffices, codec_setup, codec_teardown, &(cc)),      \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_compress_no_room, codec_setup, codec_teardown, &(cc)),    \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_wrong_size, codec_setup, codec_teardown, &(cc)),          \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_corrupt_input, codec_setup, codec_teardown, &(cc)),       \
        cmocka_unit_test_prestate_setup_teardown(                          \
            test_null_buffers, codec_setup, codec_teardown, &(cc))

/* Runs the common tests against one codec as a named cmocka group. */
static int run_codec_group(const char *name, codec_case *cc)
{
    const struct CMUnitTest tests[] = {CODEC_TESTS(*cc)};
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest zstd_tests[] = {
        cmocka_unit_test(test_zstd_level_from_config),
        cmocka_unit_test(test_zstd_bad_level),
        cmocka_unit_test(test_zstd_open_nomem),
        cmocka_unit_test(test_zstd_without_open),
    };
    int failed = 0;
    failed += run_codec_group("none.codec", &case_none);
    failed += run_codec_group("lz4.codec", &case_lz4);
    failed += run_codec_group("zstd.codec", &case_zstd);
    failed += cmocka_run_group_tests_name("zstd.codec level", zstd_tests,
                                          NULL, NULL);
    return failed ? 1 : 0;
}
