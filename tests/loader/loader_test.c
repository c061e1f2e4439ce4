/*
 * Loader tests: the good fixture loads with everything copied out of it;
 * every defective fixture is refused with its own message naming the file;
 * the registry scans directories, refuses duplicates and finds components.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/kernel/host.h"
#include "ember/kernel/registry.h"
#include "ember/sdk.h"

static char *fixture(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.so", FIXTURE_DIR, name);
    return path;
}

static void test_good_plugin_loads(void **state)
{
    (void)state;
    em_plugin *p;
    ember_error err;
    assert_int_equal(em_plugin_open(&p, fixture("good"), em_host_api(), &err),
                     EMBER_OK);
    assert_string_equal(p->name, "fixture");
    assert_string_equal(p->version, "1.2.3");
    assert_string_equal(p->description, "loader test fixture");
    assert_string_equal(p->license, "Apache-2.0");
    assert_int_equal(p->abi_major, EMBER_ABI_MAJOR);
    assert_int_equal(p->abi_minor, EMBER_ABI_MINOR);
    assert_int_equal(p->component_count, 9);

    /* init ran before we got the plugin. */
    int (*initialised)(void);
    *(void **)&initialised = dlsym(p->handle, "fixture_initialised");
    assert_non_null(initialised);
    assert_int_equal(initialised(), 1);

    /* Strings are the host's own copies, not pointers into the plugin. */
    const ember_plugin_info *(*entry)(void);
    *(void **)&entry = dlsym(p->handle, "ember_plugin_entry");
    const ember_plugin_info *info = entry();
    assert_ptr_not_equal(p->name, info->name);
    assert_ptr_not_equal(p->components[0].vtable, info->components[0].vtable);

    const em_component *echo = em_plugin_find(p, EMBER_KIND_FUNCTION, "echo");
    assert_non_null(echo);
    assert_string_equal(echo->qualified, "fixture.echo");
    assert_string_equal(echo->description, "copies records");
    const ember_function_vtable *f = echo->vtable;
    assert_int_equal(f->shape, EMBER_FN_MAP);
    assert_null(f->open);

    /* The copied vtable works: echo copies a batch. */
    uint8_t inbytes[16], outbytes[16];
    ember_buf in = ember_buf_fixed(inbytes, sizeof inbytes);
    assert_int_equal(ember_batch_append(&in, "\x15\x07", 2), EMBER_OK);
    ember_batch batch = {in.data, in.len, 1};
    ember_buf out = ember_buf_fixed(outbytes, sizeof outbytes);
    uint64_t count = 0;
    assert_int_equal(f->map_batch(NULL, &batch, &out, &count, &err), EMBER_OK);
    assert_int_equal(count, 1);
    assert_memory_equal(out.data, in.data, in.len);

    /* A vtable larger than the host's (newer minor) is cut to the host's. */
    const em_component *newer =
        em_plugin_find(p, EMBER_KIND_FUNCTION, "newer");
    assert_non_null(newer);
    assert_true(newer->declared_size > sizeof(ember_function_vtable));

    /* Every kind is present and found by name. */
    assert_non_null(em_plugin_find(p, EMBER_KIND_CODEC, "copy"));
    assert_non_null(em_plugin_find(p, EMBER_KIND_STORAGE, "MEMORY_ONLY"));
    assert_non_null(em_plugin_find(p, EMBER_KIND_SHUFFLE, "nop"));
    assert_non_null(em_plugin_find(p, EMBER_KIND_SOURCE, "nop"));
    assert_non_null(em_plugin_find(p, EMBER_KIND_SINK, "nop"));
    assert_non_null(em_plugin_find(p, EMBER_KIND_CLUSTER_MANAGER, "nop"));
    assert_null(em_plugin_find(p, EMBER_KIND_CODEC, "echo"));
    em_plugin_close(p);
}

/* One row per refusal: fixture, status, words the message must hold. */
static const struct refusal {
    const char *fixture;
    ember_status code;
    const char *message;
} refusals[] = {
    {"not_elf", EMBER_EPLUGIN, "cannot load shared object"},
    {"undefined_symbol", EMBER_EPLUGIN, "undefined symbol"},
    {"no_entry", EMBER_EPLUGIN, "not an ember plugin: no ember_plugin_entry"},
    {"null_entry", EMBER_EPLUGIN, "ember_plugin_entry returned NULL"},
    {"bad_magic", EMBER_EPLUGIN, "bad magic 0x12345678"},
    {"abi_major", EMBER_EVERSION, "built for ABI 2.0, this host provides 0.3"},
    {"abi_minor", EMBER_EVERSION,
     "built for ABI 0.7, this host provides 0.3: the plugin needs a newer "
     "host"},
    {"traits", EMBER_EVERSION, "built for another platform"},
    {"small_struct", EMBER_EPLUGIN, "descriptor declares 20 bytes"},
    {"no_name", EMBER_EPLUGIN, "plugin name is missing"},
    {"bad_name", EMBER_EPLUGIN, "invalid plugin name 'Bad Name'"},
    {"no_version", EMBER_EPLUGIN, "plugin version is missing"},
    {"wild_name", EMBER_EPLUGIN, "plugin name points to unreadable memory"},
    {"no_components", EMBER_EPLUGIN, "declares no components"},
    {"component_size", EMBER_EPLUGIN, "component entries declare 8 bytes"},
    {"unknown_kind", EMBER_EPLUGIN, "component 'fixture.odd' has unknown kind 99"},
    {"kind_version", EMBER_EVERSION,
     "function 'fixture.future' was built for function interface version 2, "
     "this host provides version 1"},
    {"null_vtable", EMBER_EPLUGIN, "codec 'fixture.empty' has no vtable"},
    {"small_vtable", EMBER_EPLUGIN,
     "codec 'fixture.tiny' declares a 4-byte vtable"},
    {"missing_slot", EMBER_EPLUGIN,
     "codec 'fixture.copy': required slot 'compress' is NULL"},
    {"bad_shape", EMBER_EPLUGIN, "function 'fixture.echo' declares unknown shape 9"},
    {"bad_determinism", EMBER_EPLUGIN,
     "function 'fixture.echo' declares determinism 0"},
    {"duplicate", EMBER_EPLUGIN, "duplicate function 'std.sum'"},
    {"component_name", EMBER_EPLUGIN, "invalid name 'a.b'"},
    {"reserved_flags", EMBER_EPLUGIN, "sets reserved flags 0x4"},
    {"wild_vtable", EMBER_EPLUGIN,
     "function 'fixture.wild': vtable points to unreadable memory"},
    {"init_fails", EMBER_EINVAL,
     "init of plugin 'fixture' failed: cannot reach the licence server"},
};

static void test_each_refusal(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const struct refusal *r = &refusals[i];
        em_plugin *p = (em_plugin *)1;
        ember_error err;
        ember_error_clear(&err);
        const char *path = fixture(r->fixture);
        ember_status s = em_plugin_open(&p, path, em_host_api(), &err);
        if (s != r->code || !strstr(err.msg, r->message) ||
            strncmp(err.msg, path, strlen(path)) != 0)
            fail_msg("%s: got %s \"%s\", want %s containing \"%s\"",
                     r->fixture, ember_status_name(s), err.msg,
                     ember_status_name(r->code), r->message);
        assert_null(p);
    }
}

static void test_missing_file(void **state)
{
    (void)state;
    em_plugin *p;
    ember_error err;
    assert_int_equal(em_plugin_open(&p, "/nonexistent/x.so", em_host_api(),
                                    &err),
                     EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/x.so"));
    assert_int_equal(em_plugin_open(&p, FIXTURE_DIR, em_host_api(), &err),
                     EMBER_EPLUGIN);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

/* Collects refusals reported by a directory scan. */
typedef struct seen {
    int count;
    char last[EMBER_ERROR_MAX];
} seen;

static void on_refused(void *ctx, const char *path, const ember_error *err)
{
    seen *s = ctx;
    (void)path;
    s->count++;
    snprintf(s->last, sizeof s->last, "%s", err->msg);
}

/* A scratch directory holding links to the named fixtures. */
static void make_dir(char *dir, size_t cap, const char *const *names,
                     size_t n)
{
    snprintf(dir, cap, "/tmp/ember-loader-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; i < n; i++) {
        char link[PATH_MAX];
        snprintf(link, sizeof link, "%s/%s.so", dir, names[i]);
        assert_int_equal(symlink(fixture(names[i]), link), 0);
    }
}

static void remove_dir(const char *dir, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char link[PATH_MAX];
        snprintf(link, sizeof link, "%s/%s.so", dir, names[i]);
        unlink(link);
    }
    rmdir(dir);
}

static void test_registry(void **state)
{
    (void)state;
    static const char *const names[] = {"good", "bad_magic", "good_again",
                                        "init_fails"};
    char dir[64];
    make_dir(dir, sizeof dir, names, 4);

    em_registry *r;
    ember_error err;
    seen s = {0};
    assert_int_equal(em_registry_create(&r, em_host_api()), EMBER_OK);
    assert_int_equal(em_registry_load_dir(r, dir, on_refused, &s, &err),
                     EMBER_OK);
    /* good loads; bad_magic and init_fails are refused; good_again is
     * refused as a duplicate (name order: bad_magic, good, good_again,
     * init_fails). */
    assert_int_equal(em_registry_count(r), 1);
    assert_int_equal(s.count, 3);
    assert_non_null(strstr(s.last, "init of plugin"));

    assert_int_equal(em_registry_load(r, fixture("good_again"), NULL, &err),
                     EMBER_EEXIST);
    assert_non_null(strstr(err.msg, "duplicate plugin 'fixture': already "
                                    "loaded from"));

    const em_component *c =
        em_registry_find(r, EMBER_KIND_FUNCTION, "fixture.sum");
    assert_non_null(c);
    assert_string_equal(c->qualified, "fixture.sum");
    assert_null(em_registry_find(r, EMBER_KIND_FUNCTION, "fixture.nothing"));
    assert_null(em_registry_find(r, EMBER_KIND_FUNCTION, "other.sum"));
    assert_null(em_registry_find(r, EMBER_KIND_FUNCTION, "nodot"));
    assert_null(em_registry_find(r, EMBER_KIND_CODEC, "fixture.sum"));

    assert_int_equal(em_registry_load_dir(r, "/nonexistent-dir", NULL, NULL,
                                          &err),
                     EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent-dir"));
    em_registry_destroy(r);
    remove_dir(dir, names, 4);
}

/* codec_none.c is compiled into this test with EMBER_PLUGIN_STATIC. */
const ember_plugin_info *ember_plugin_entry_none(void);

static void test_static_plugin(void **state)
{
    (void)state;
    em_plugin *p;
    ember_error err;
    assert_int_equal(em_plugin_open_static(&p, "static:none",
                                           ember_plugin_entry_none,
                                           em_host_api(), &err),
                     EMBER_OK);
    assert_string_equal(p->name, "none");
    assert_string_equal(p->path, "static:none");
    assert_null(p->handle);
    assert_non_null(em_plugin_find(p, EMBER_KIND_CODEC, "codec"));
    em_plugin_close(p);
}

static void test_kind_names(void **state)
{
    (void)state;
    static const char *const names[] = {"cluster_manager", "storage", "codec",
                                        "shuffle", "source", "sink",
                                        "function"};
    for (int k = 1; k <= 7; k++) {
        ember_component_kind parsed;
        assert_string_equal(em_kind_name((uint32_t)k), names[k - 1]);
        assert_int_equal(em_kind_parse(names[k - 1], &parsed), EMBER_OK);
        assert_int_equal(parsed, k);
    }
    ember_component_kind parsed;
    assert_string_equal(em_kind_name(0), "unknown");
    assert_int_equal(em_kind_parse("widget", &parsed), EMBER_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plugin_loads),
        cmocka_unit_test(test_each_refusal),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_static_plugin),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
