/*
 * ABI tests: the layout of every struct that crosses the ABI is pinned
 * (LP64), the constants are pinned, EMBER_HOST_HAS sees what an older host
 * lacks, and a plugin built against the frozen 0.1 headers still loads and
 * works with today's host.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ember/kernel/host.h"
#include "ember/kernel/plugin.h"
#include "ember/sdk.h"

#define OFF(t, f, v) _Static_assert(offsetof(t, f) == (v), #t "." #f)
#define SIZE(t, v) _Static_assert(sizeof(t) == (v), "sizeof " #t)

/* The frozen header of the descriptor holds on every platform. */
OFF(ember_plugin_info, magic, 0);
OFF(ember_plugin_info, struct_size, 4);
OFF(ember_plugin_info, abi_major, 8);
OFF(ember_plugin_info, abi_minor, 10);
OFF(ember_plugin_info, abi_traits, 12);
OFF(ember_host_api, size, 0);
OFF(ember_host_api, abi_major, 4);
OFF(ember_host_api, abi_minor, 6);

/* Constants are part of the ABI. */
_Static_assert(EMBER_PLUGIN_MAGIC == 0x52424D45u, "magic");
_Static_assert(EMBER_KIND_CLUSTER_MANAGER == 1 && EMBER_KIND_STORAGE == 2 &&
                   EMBER_KIND_CODEC == 3 && EMBER_KIND_SHUFFLE == 4 &&
                   EMBER_KIND_SOURCE == 5 && EMBER_KIND_SINK == 6 &&
                   EMBER_KIND_FUNCTION == 7,
               "kind values");
_Static_assert(EMBER_OK == 0 && EMBER_END == 1 && EMBER_EINVAL == -1 &&
                   EMBER_ENOMEM == -2 && EMBER_ENOTFOUND == -3 &&
                   EMBER_EEXIST == -4 && EMBER_EIO == -5 &&
                   EMBER_ENOSPC == -6 && EMBER_EVERSION == -7 &&
                   EMBER_EUNSUPPORTED == -8 && EMBER_ECANCELED == -9 &&
                   EMBER_ETIMEDOUT == -10 && EMBER_EPLUGIN == -11 &&
                   EMBER_EINTERNAL == -12,
               "status values");
_Static_assert(EMBER_ERROR_MAX == 512, "error buffer size");
_Static_assert(EMBER_FN_MAP == 1 && EMBER_FN_REDUCE == 2, "shapes");
_Static_assert(EMBER_DETERMINISTIC == 1 && EMBER_UNORDERED == 2 &&
                   EMBER_INDETERMINATE == 3,
               "determinism");

#if UINTPTR_MAX == 0xffffffffffffffffu
/* LP64 layout of ABI 0.2 (0.1 ended at buf_init). A change here breaks every built plugin. */
SIZE(ember_plugin_info, 80);
OFF(ember_plugin_info, name, 16);
OFF(ember_plugin_info, version, 24);
OFF(ember_plugin_info, description, 32);
OFF(ember_plugin_info, license, 40);
OFF(ember_plugin_info, components, 48);
OFF(ember_plugin_info, component_count, 56);
OFF(ember_plugin_info, component_size, 60);
OFF(ember_plugin_info, init, 64);
OFF(ember_plugin_info, fini, 72);
SIZE(ember_component, 40);
OFF(ember_component, kind, 0);
OFF(ember_component, kind_version, 4);
OFF(ember_component, name, 8);
OFF(ember_component, description, 16);
OFF(ember_component, vtable, 24);
OFF(ember_component, vtable_size, 32);
OFF(ember_component, flags, 36);
SIZE(ember_host_api, 168);
OFF(ember_host_api, alloc, 8);
OFF(ember_host_api, realloc, 16);
OFF(ember_host_api, free, 24);
OFF(ember_host_api, log, 32);
OFF(ember_host_api, log_enabled, 40);
OFF(ember_host_api, report_error, 48);
OFF(ember_host_api, config_get, 56);
OFF(ember_host_api, config_get_size, 64);
OFF(ember_host_api, config_get_duration_ms, 72);
OFF(ember_host_api, counter_register, 80);
OFF(ember_host_api, counter_add, 88);
OFF(ember_host_api, buf_init, 96);
/* ABI 0.2 */
OFF(ember_host_api, executor_start, 104);
OFF(ember_host_api, executor_stop, 112);
OFF(ember_host_api, task_partition, 120);
OFF(ember_host_api, task_attempt, 128);
/* ABI 0.3 */
OFF(ember_host_api, broadcast_value, 136);
OFF(ember_host_api, accum_add_i64, 144);
OFF(ember_host_api, accum_add_double, 152);
OFF(ember_host_api, accum_add, 160);
SIZE(ember_error, 516);
SIZE(ember_buf, 40);
OFF(ember_buf, data, 0);
OFF(ember_buf, len, 8);
OFF(ember_buf, cap, 16);
OFF(ember_buf, grow, 24);
OFF(ember_buf, owner, 32);
SIZE(ember_batch, 24);
/* Kind version 1 vtables (these may change before ABI 1.0, each with its
 * kind version bumped). */
SIZE(ember_function_vtable, 40);
SIZE(ember_codec_vtable, 40);
SIZE(ember_storage_vtable, 48);
SIZE(ember_shuffle_vtable, 80); /* kind version 2 */
SIZE(ember_shuffle_conf, 64);
SIZE(ember_shuffle_writer_opts, 32);
SIZE(ember_source_vtable, 32);
SIZE(ember_sink_vtable, 32);
SIZE(ember_cluster_manager_vtable, 40);
#endif

static void test_traits_describe_this_platform(void **state)
{
    (void)state;
    uint32_t t = EMBER_ABI_TRAITS;
    assert_int_equal(t & 0xff, sizeof(void *));
    assert_int_equal((t >> 8) & 0xff, sizeof(size_t));
    uint16_t probe = 1;
    uint8_t first;
    memcpy(&first, &probe, 1);
    assert_int_equal((t >> 16) & 0xf, first == 1 ? 1 : 2);
    assert_int_equal((t >> 20) & 0xf, 4);
    assert_int_equal(t >> 24, 0);
}

static void test_host_has_sees_older_hosts(void **state)
{
    (void)state;
    const ember_host_api *host = em_host_api();
    assert_int_equal(host->size, sizeof(ember_host_api));
    assert_int_equal(host->abi_major, EMBER_ABI_MAJOR);
    assert_true(EMBER_HOST_HAS(host, buf_init));
    assert_true(EMBER_HOST_HAS(host, alloc));

    /* An older host whose table ends before buf_init. */
    ember_host_api older;
    memcpy(&older, host, sizeof older);
    older.size = (uint32_t)offsetof(ember_host_api, buf_init);
    assert_false(EMBER_HOST_HAS(&older, buf_init));
    assert_true(EMBER_HOST_HAS(&older, counter_add));
    /* A present but empty slot counts as missing. */
    older.size = sizeof older;
    older.counter_add = NULL;
    assert_false(EMBER_HOST_HAS(&older, counter_add));
    const ember_host_api *none = NULL;
    assert_false(EMBER_HOST_HAS(none, alloc));
}

static void test_frozen_plugin_loads_and_works(void **state)
{
    (void)state;
    em_plugin *p;
    ember_error err;
    ember_status s = em_plugin_open(&p, FROZEN_PLUGIN, em_host_api(), &err);
    if (s != EMBER_OK)
        fail_msg("frozen plugin refused: %s", err.msg);
    assert_string_equal(p->name, "frozen");
    assert_int_equal(p->abi_major, 0);
    assert_int_equal(p->abi_minor, 1);
    int64_t loaded = 0;
    assert_int_equal(em_host_counter_value("frozen.loaded", &loaded), EMBER_OK);
    assert_int_equal(loaded, 1);

    const em_component *c = em_plugin_find(p, EMBER_KIND_FUNCTION, "twice");
    assert_non_null(c);
    const ember_function_vtable *f = c->vtable;
    uint8_t inb[32], outb[64];
    ember_buf in = ember_buf_fixed(inb, sizeof inb);
    assert_int_equal(ember_batch_append(&in, "ab", 2), EMBER_OK);
    assert_int_equal(ember_batch_append(&in, "c", 1), EMBER_OK);
    ember_batch batch = {in.data, in.len, 2};
    ember_buf out = ember_buf_fixed(outb, sizeof outb);
    uint64_t n = 0;
    assert_int_equal(f->map_batch(NULL, &batch, &out, &n, &err), EMBER_OK);
    assert_int_equal(n, 4);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "\x02" "ab\x02" "ab\x01" "c\x01" "c", 10);

    /* Records encoded by the frozen codec decode with today's. */
    const em_component *t = em_plugin_find(p, EMBER_KIND_FUNCTION, "tag");
    assert_non_null(t);
    uint8_t recb[32];
    ember_buf rec = ember_buf_fixed(recb, sizeof recb);
    assert_int_equal(ember_rec_put_double(&rec, -0.5), EMBER_OK);
    in.len = 0;
    assert_int_equal(ember_batch_append(&in, rec.data, rec.len), EMBER_OK);
    batch = (ember_batch){in.data, in.len, 1};
    out.len = 0;
    n = 0;
    f = t->vtable;
    assert_int_equal(f->map_batch(NULL, &batch, &out, &n, &err), EMBER_OK);
    assert_int_equal(n, 1);
    ember_batch result = {out.data, out.len, 1};
    ember_batch_cursor cur = ember_batch_cursor_of(&result);
    const uint8_t *pair;
    size_t pair_len;
    ember_value key, value;
    assert_int_equal(ember_batch_next(&cur, &pair, &pair_len), EMBER_OK);
    assert_int_equal(ember_rec_get(pair, pair_len, 0, &key), EMBER_OK);
    assert_int_equal(ember_rec_get(pair, pair_len, 1, &value), EMBER_OK);
    assert_int_equal(key.type, EMBER_TYPE_DOUBLE);
    assert_true(key.u.f64 == -0.5);
    assert_int_equal(value.type, EMBER_TYPE_INT);
    assert_int_equal(value.u.i64, 42);

    const em_component *k = em_plugin_find(p, EMBER_KIND_CODEC, "copy");
    assert_non_null(k);
    const ember_codec_vtable *codec = k->vtable;
    uint8_t packed[8], back[8];
    size_t len = 0;
    assert_int_equal(codec->compress(NULL, (const uint8_t *)"ember", 5, packed,
                                     sizeof packed, &len, &err),
                     EMBER_OK);
    assert_int_equal(codec->decompress(NULL, packed, len, back, 5, &err),
                     EMBER_OK);
    assert_memory_equal(back, "ember", 5);
    em_plugin_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_describe_this_platform),
        cmocka_unit_test(test_host_has_sees_older_hosts),
        cmocka_unit_test(test_frozen_plugin_loads_and_works),
    };
    return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
