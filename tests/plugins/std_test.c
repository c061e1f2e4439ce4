/*
 * std_test.c — the standard function library (plugin "std"), linked
 * statically and driven through its function vtables with batches built by
 * ember/record.h. Outputs are compared byte for byte with records encoded
 * independently by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/function.h"
#include "ember/record.h"
#include "fake_host.h"

/* The entry of the statically linked plugin (EMBER_PLUGIN_STATIC). */
const ember_plugin_info *ember_plugin_entry_std(void);

/* Per-test buffers (fake host buffers, made in setup, freed in teardown). */
static ember_buf g_rec; /* the record being built */
static ember_buf g_in;  /* the input batch */
static uint64_t g_in_count;
static ember_buf g_exp; /* the expected output batch (or record) */
static uint64_t g_exp_count;
static ember_buf g_out; /* what the function wrote */
static long g_allocs_before;

static int setup(void **state)
{
    (void)state;
    const ember_host_api *h = em_fake_host();
    em_fake_host_reset();
    g_allocs_before = em_fake_host_live_allocs();
    if (h->buf_init(&g_rec, 64) != EMBER_OK ||
        h->buf_init(&g_in, 256) != EMBER_OK ||
        h->buf_init(&g_exp, 256) != EMBER_OK ||
        h->buf_init(&g_out, 256) != EMBER_OK)
        return -1;
    g_in_count = 0;
    g_exp_count = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ember_buf_release(&g_rec);
    ember_buf_release(&g_in);
    ember_buf_release(&g_exp);
    ember_buf_release(&g_out);
    if (em_fake_host_live_allocs() != g_allocs_before) {
        print_error("host allocations leaked\n");
        return -1;
    }
    return 0;
}

/* The vtable of std.<name>. */
static const ember_function_vtable *fn(const char *name)
{
    const ember_plugin_info *info = ember_plugin_entry_std();
    for (uint32_t i = 0; i < info->component_count; i++)
        if (strcmp(info->components[i].name, name) == 0)
            return info->components[i].vtable;
    fail_msg("no component std.%s", name);
    return NULL;
}

/* ---- building records and batches ---- */

static void rec_begin(void)
{
    g_rec.len = 0;
}

static void put_str(const char *s)
{
    assert_int_equal(ember_rec_put_string(&g_rec, s, strlen(s)), EMBER_OK);
}

static void put_strn(const char *s, size_t n)
{
    assert_int_equal(ember_rec_put_string(&g_rec, s, n), EMBER_OK);
}

static void put_int(int64_t v)
{
    assert_int_equal(ember_rec_put_int(&g_rec, v), EMBER_OK);
}

static void put_double(double v)
{
    assert_int_equal(ember_rec_put_double(&g_rec, v), EMBER_OK);
}

/* Appends the record built so far to the input batch. */
static void rec_to_in(void)
{
    assert_int_equal(ember_batch_append(&g_in, g_rec.data, g_rec.len),
                     EMBER_OK);
    g_in_count++;
}

/* Appends the record built so far to the expected output batch. */
static void rec_to_exp(void)
{
    assert_int_equal(ember_batch_append(&g_exp, g_rec.data, g_rec.len),
                     EMBER_OK);
    g_exp_count++;
}

/* One-string records, in and expected. */
static void in_str(const char *s)
{
    rec_begin();
    put_str(s);
    rec_to_in();
}

static void exp_str(const char *s)
{
    rec_begin();
    put_str(s);
    rec_to_exp();
}

/* The input batch as an ember_batch. */
static ember_batch in_batch(void)
{
    ember_batch b = {g_in.data, g_in.len, g_in_count};
    return b;
}

/* Runs a MAP function over the input batch into g_out; returns status. */
static ember_status run_map(const ember_function_vtable *vt, void *st,
                            uint64_t *count, ember_error *err)
{
    ember_batch b = in_batch();
    *count = 0;
    ember_error_clear(err);
    return vt->map_batch(st, &b, &g_out, count, err);
}

/* Runs a MAP function and checks its output equals the expected batch. */
static void map_expect(const ember_function_vtable *vt, void *st)
{
    ember_error err;
    uint64_t count = 0;
    ember_status s = run_map(vt, st, &count, &err);
    if (s != EMBER_OK)
        fail_msg("map_batch: %s", err.msg);
    assert_int_equal(count, g_exp_count);
    assert_int_equal(g_out.len, g_exp.len);
    if (g_exp.len)
        assert_memory_equal(g_out.data, g_exp.data, g_exp.len);
}

/* Runs a MAP function that must fail with EINVAL and a message that
 * contains `needle`. */
static void map_refuses(const ember_function_vtable *vt, void *st,
                        const char *needle)
{
    ember_error err;
    uint64_t count = 0;
    ember_status s = run_map(vt, st, &count, &err);
    assert_int_equal(s, EMBER_EINVAL);
    assert_int_equal(err.code, EMBER_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

/* Appends a deliberately broken frame (length past the end). */
static void in_bad_frame(void)
{
    uint8_t bad[] = {0x05, 0x28, 'a'};
    assert_int_equal(ember_buf_append(&g_in, bad, sizeof bad), EMBER_OK);
    g_in_count++;
}

/* ---- the descriptor ---- */

static void test_descriptor(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint32_t shape;
    } want[] = {
        {"identity", EMBER_FN_MAP}, {"split_words", EMBER_FN_MAP},
        {"pair_with", EMBER_FN_MAP}, {"sum", EMBER_FN_REDUCE},
        {"count", EMBER_FN_REDUCE},
    };
    const ember_plugin_info *info = ember_plugin_entry_std();
    assert_int_equal(info->magic, EMBER_PLUGIN_MAGIC);
    assert_string_equal(info->name, "std");
    assert_int_equal(info->component_count, 5);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const ember_component *c = &info->components[i];
        const ember_function_vtable *vt = c->vtable;
        assert_string_equal(c->name, want[i].name);
        assert_int_equal(c->kind, EMBER_KIND_FUNCTION);
        assert_int_equal(c->kind_version, EMBER_FUNCTION_VERSION);
        assert_int_equal(c->vtable_size, sizeof(ember_function_vtable));
        assert_non_null(c->description);
        assert_null(strchr(c->description, '\n'));
        assert_int_equal(vt->shape, want[i].shape);
        assert_int_equal(vt->determinism, EMBER_DETERMINISTIC);
        if (want[i].shape == EMBER_FN_MAP)
            assert_non_null(vt->map_batch);
        else
            assert_non_null(vt->reduce);
    }
}

/* ---- std.identity ---- */

static void test_identity(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("identity");
    rec_begin();
    put_str("hello");
    put_int(42);
    rec_to_in();
    rec_to_exp();
    rec_begin(); /* the empty record */
    rec_to_in();
    rec_to_exp();
    rec_begin();
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    put_double(2.5);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    put_strn("a\0b", 3);
    rec_to_in();
    rec_to_exp();
    map_expect(vt, NULL);
    /* Appends after what is already in out. */
    g_out.len = 0;
    assert_int_equal(ember_buf_append(&g_out, "xy", 2), EMBER_OK);
    ember_error err;
    uint64_t count = 0;
    assert_int_equal(run_map(vt, NULL, &count, &err), EMBER_OK);
    assert_int_equal(count, 3);
    assert_int_equal(g_out.len, 2 + g_exp.len);
    assert_memory_equal(g_out.data + 2, g_exp.data, g_exp.len);
}

static void test_identity_empty_and_bad(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("identity");
    map_expect(vt, NULL); /* empty batch: nothing out */
    in_str("ok");
    in_bad_frame();
    map_refuses(vt, NULL, "std.identity: malformed batch");
}

/* ---- std.split_words ---- */

static void test_split_words_basic(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    in_str("hello world");
    in_str("the quick  brown\tfox");
    exp_str("hello");
    exp_str("world");
    exp_str("the");
    exp_str("quick");
    exp_str("brown");
    exp_str("fox");
    map_expect(vt, NULL);
}

static void test_split_words_blanks(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    in_str("   leading and trailing   ");
    in_str("");
    in_str(" \t\r\n ");
    in_str("tabs\t\tand\r\nCRLF\r\nlines\n");
    in_str("x");
    in_str("caf\xc3\xa9 na\xc3\xafve"); /* UTF-8 is just bytes */
    in_str("comma,is;not-a-blank");
    exp_str("leading");
    exp_str("and");
    exp_str("trailing");
    exp_str("tabs");
    exp_str("and");
    exp_str("CRLF");
    exp_str("lines");
    exp_str("x");
    exp_str("caf\xc3\xa9");
    exp_str("na\xc3\xafve");
    exp_str("comma,is;not-a-blank");
    map_expect(vt, NULL);
}

/* Later elements of a record are ignored; embedded NULs stay in words. */
static void test_split_words_extra_and_nul(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    rec_begin();
    put_str("a b");
    put_int(5);
    rec_to_in();
    rec_begin();
    put_strn("x\0y z\0 \0", 8);
    rec_to_in();
    exp_str("a");
    exp_str("b");
    rec_begin();
    put_strn("x\0y", 3);
    rec_to_exp();
    rec_begin();
    put_strn("z\0", 2);
    rec_to_exp();
    rec_begin();
    put_strn("\0", 1);
    rec_to_exp();
    map_expect(vt, NULL);
}

/* Words long enough to need 2- and 3-byte frame lengths. */
static void test_split_words_long(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    enum { A = 126, B = 127, C = 300, D = 20000 };
    char *text = malloc(A + B + C + D + 8);
    assert_non_null(text);
    size_t n = 0;
    size_t lens[] = {A, B, C, D};
    for (size_t w = 0; w < 4; w++) {
        memset(text + n, 'a' + (int)w, lens[w]);
        n += lens[w];
        text[n++] = ' ';
    }
    rec_begin();
    put_strn(text, n);
    rec_to_in();
    n = 0;
    for (size_t w = 0; w < 4; w++) {
        rec_begin();
        put_strn(text + n, lens[w]);
        rec_to_exp();
        n += lens[w] + 1;
    }
    map_expect(vt, NULL);
    free(text);
}

static void test_split_words_bad_input(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    rec_begin();
    put_int(7);
    rec_to_in();
    map_refuses(vt, NULL, "std.split_words: expected a string, got int");

    g_in.len = 0;
    rec_begin();
    put_double(1.0);
    put_str("late");
    rec_to_in();
    map_refuses(vt, NULL, "std.split_words: expected a string, got double");

    g_in.len = 0;
    rec_begin();
    assert_int_equal(ember_rec_put_bytes(&g_rec, "b", 1), EMBER_OK);
    rec_to_in();
    map_refuses(vt, NULL, "std.split_words: expected a string, got bytes");

    g_in.len = 0;
    rec_begin();
    rec_to_in();
    map_refuses(vt, NULL, "std.split_words: expected a string");

    g_in.len = 0;
    uint8_t junk[] = {0x28, 'n', 'o', 'e', 'n', 'd'}; /* no terminator */
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(vt, NULL, "std.split_words: malformed record");

    g_in.len = 0;
    in_str("fine");
    in_bad_frame();
    map_refuses(vt, NULL, "std.split_words: malformed batch");
}

/* A full fixed output buffer is reported, not overrun. */
static void test_split_words_out_full(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    uint8_t mem[10];
    ember_buf small = ember_buf_fixed(mem, sizeof mem);
    in_str("one two three four");
    ember_batch b = in_batch();
    ember_error err;
    uint64_t count = 0;
    ember_error_clear(&err);
    assert_int_equal(vt->map_batch(NULL, &b, &small, &count, &err),
                     EMBER_ENOSPC);
    assert_int_equal(err.code, EMBER_ENOSPC);
    assert_true(small.len <= sizeof mem);
    /* What was appended is whole records: only "one" (6 bytes) fits. */
    assert_int_equal(count, 1);
    assert_int_equal(small.len, 1 + 5);
    assert_memory_equal(mem, "\x05\x28one\x00", 6);
}

/* ---- std.pair_with ---- */

/* Opens std.pair_with with the record built in g_rec as argument. */
static ember_status open_pair_with(void **st, ember_error *err)
{
    ember_error_clear(err);
    *st = NULL;
    return fn("pair_with")->open(em_fake_host(), g_rec.data, g_rec.len, st,
                                 err);
}

static void test_pair_with(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("pair_with");
    ember_error err;
    void *st = NULL;
    rec_begin();
    put_int(1);
    assert_int_equal(open_pair_with(&st, &err), EMBER_OK);
    assert_non_null(st);

    in_str("hello");
    rec_begin();
    put_str("x");
    put_int(7);
    rec_to_in();
    rec_begin();
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    put_str("k");
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    rec_to_in();

    rec_begin();
    put_str("hello");
    put_int(1);
    rec_to_exp();
    rec_begin();
    put_str("x");
    put_int(1);
    rec_to_exp();
    rec_begin();
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    put_str("k");
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    put_int(1);
    rec_to_exp();
    map_expect(vt, st);
    vt->close(st);
}

/* A tuple value and a long first element (a multi-byte frame length). */
static void test_pair_with_tuple_and_long(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("pair_with");
    ember_error err;
    void *st = NULL;
    rec_begin();
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    put_int(-3);
    put_str("v");
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    assert_int_equal(open_pair_with(&st, &err), EMBER_OK);

    char big[1000];
    memset(big, 'q', sizeof big);
    rec_begin();
    put_strn(big, sizeof big);
    rec_to_in();

    rec_begin();
    put_strn(big, sizeof big);
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    put_int(-3);
    put_str("v");
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    rec_to_exp();
    map_expect(vt, st);
    vt->close(st);
}

static void test_pair_with_bad_arg(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("pair_with");
    ember_error err;
    void *st = (void *)&err;

    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), NULL, 0, &st, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "std.pair_with: missing argument"));
    assert_null(st);

    uint8_t nothing = 0; /* a pointer, but no bytes */
    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), &nothing, 0, &st, &err),
                     EMBER_EINVAL);

    rec_begin(); /* two values */
    put_int(1);
    put_int(2);
    assert_int_equal(open_pair_with(&st, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "std.pair_with: bad argument"));
    assert_non_null(strstr(err.msg, "got 2"));
    assert_null(st);

    static const uint8_t junk[] = {0xEE, 0x01};
    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), junk, sizeof junk, &st, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "std.pair_with: bad argument"));

    static const uint8_t open_tuple[] = {0x30, 0x14};
    assert_int_equal(
        vt->open(em_fake_host(), open_tuple, sizeof open_tuple, &st, &err),
        EMBER_EINVAL);

    /* Out of memory in open. */
    rec_begin();
    put_int(1);
    em_fake_host_fail_allocs(1);
    assert_int_equal(open_pair_with(&st, &err), EMBER_ENOMEM);
    assert_null(st);
    em_fake_host_fail_allocs(0);
}

static void test_pair_with_bad_input(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("pair_with");
    ember_error err;
    void *st = NULL;
    rec_begin();
    put_str("v");
    assert_int_equal(open_pair_with(&st, &err), EMBER_OK);

    rec_begin(); /* an empty record has no first element */
    rec_to_in();
    map_refuses(vt, st, "std.pair_with: record 0 is empty");

    g_in.len = 0;
    in_str("ok");
    uint8_t junk[] = {0x1C, 0x00}; /* a truncated int */
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(vt, st, "std.pair_with: malformed record 1");

    g_in.len = 0;
    in_bad_frame();
    map_refuses(vt, st, "std.pair_with: malformed batch");

    /* Called without open. */
    g_in.len = 0;
    in_str("ok");
    map_refuses(vt, NULL, "std.pair_with");
    vt->close(st);
    vt->close(NULL);
}

/* ---- std.sum and std.count ---- */

/* Input: one-element int / double records. */
static void in_int(int64_t v)
{
    rec_begin();
    put_int(v);
    rec_to_in();
}

static void in_double(double v)
{
    rec_begin();
    put_double(v);
    rec_to_in();
}

/*
 * Runs a REDUCE function with the accumulator acc (NULL for none) over the
 * input batch into g_out; returns its status.
 */
static ember_status run_reduce(const char *name, const ember_buf *acc,
                               ember_error *err)
{
    ember_batch b = in_batch();
    ember_error_clear(err);
    g_out.len = 0;
    return fn(name)->reduce(NULL, acc ? acc->data : NULL, acc ? acc->len : 0,
                            &b, &g_out, err);
}

/* The record of one int / double, as the expected output. */
static void exp_int(int64_t v)
{
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_int(&g_exp, v), EMBER_OK);
}

static void exp_double(double v)
{
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_double(&g_exp, v), EMBER_OK);
}

/* Runs a REDUCE function and compares its record with g_exp. */
static void reduce_expect(const char *name, const ember_buf *acc)
{
    ember_error err;
    ember_status s = run_reduce(name, acc, &err);
    if (s != EMBER_OK)
        fail_msg("std.%s: %s", name, err.msg);
    assert_int_equal(g_out.len, g_exp.len);
    assert_memory_equal(g_out.data, g_exp.data, g_exp.len);
}

/* Runs a REDUCE function that must fail with EINVAL mentioning needle. */
static void reduce_refuses(const char *name, const ember_buf *acc,
                           const char *needle)
{
    ember_error err;
    assert_int_equal(run_reduce(name, acc, &err), EMBER_EINVAL);
    assert_int_equal(err.code, EMBER_EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

/* Makes g_rec the accumulator record holding one int. */
static const ember_buf *acc_int(int64_t v)
{
    rec_begin();
    put_int(v);
    return &g_rec;
}

static void test_sum_int(void **state)
{
    (void)state;
    exp_int(0);
    reduce_expect("sum", NULL); /* nothing at all: 0 */
    in_int(1);
    in_int(2);
    in_int(3);
    in_int(-10);
    in_int(0);
    exp_int(-4);
    reduce_expect("sum", NULL);
    exp_int(96);
    reduce_expect("sum", acc_int(100));
    g_in.len = 0;
    exp_int(7);
    reduce_expect("sum", acc_int(7)); /* accumulator only */
}

static void test_sum_double(void **state)
{
    (void)state;
    in_double(1.5);
    in_double(0.25);
    exp_double(1.75);
    reduce_expect("sum", NULL);
    in_int(2); /* int after double */
    exp_double(3.75);
    reduce_expect("sum", NULL);
    g_in.len = 0;
    in_int(1); /* double after int */
    in_double(0.5);
    exp_double(1.5);
    reduce_expect("sum", NULL);
    exp_double(11.5);
    reduce_expect("sum", acc_int(10));
    g_in.len = 0;
    in_int(3);
    rec_begin();
    put_double(-0.5);
    exp_double(2.5);
    reduce_expect("sum", &g_rec); /* a double accumulator */
}

static void test_sum_overflow(void **state)
{
    (void)state;
    in_int(INT64_MAX);
    in_int(1);
    reduce_refuses("sum", NULL, "std.sum: int64 overflow");
    g_in.len = 0;
    in_int(INT64_MIN);
    in_int(-1);
    reduce_refuses("sum", NULL, "std.sum: int64 overflow");
    g_in.len = 0;
    in_int(1);
    reduce_refuses("sum", acc_int(INT64_MAX), "std.sum: int64 overflow");
    g_in.len = 0;
    in_int(INT64_MAX);
    in_int(INT64_MIN);
    in_int(INT64_MAX);
    exp_int(INT64_MAX - 1);
    reduce_expect("sum", NULL);
    g_in.len = 0;
    in_int(INT64_MAX); /* doubles do not overflow */
    in_double(1.0);
    in_int(INT64_MAX);
    exp_double((double)INT64_MAX * 2.0 + 1.0);
    reduce_expect("sum", NULL);
}

static void test_sum_bad_input(void **state)
{
    (void)state;
    in_int(1);
    in_str("two");
    reduce_refuses("sum", NULL, "std.sum: expected an int or double, got "
                                "string");
    g_in.len = 0;
    rec_begin();
    put_int(1);
    put_int(2);
    rec_to_in();
    reduce_refuses("sum", NULL, "got 2 elements");
    g_in.len = 0;
    rec_begin();
    rec_to_in();
    reduce_refuses("sum", NULL, "got 0 elements");
    g_in.len = 0;
    in_int(1);
    rec_begin();
    assert_int_equal(ember_rec_put_null(&g_rec), EMBER_OK);
    reduce_refuses("sum", &g_rec, "got null");
    g_in.len = 0;
    in_bad_frame();
    reduce_refuses("sum", NULL, "std.sum: malformed batch");
    g_in.len = 0;
    uint8_t junk[] = {0x20, 1, 2}; /* a truncated double */
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    reduce_refuses("sum", NULL, "std.sum: malformed record");
}

static void test_count(void **state)
{
    (void)state;
    exp_int(0);
    reduce_expect("count", NULL);
    in_str("a");
    in_int(99);
    rec_begin(); /* any record counts, the empty one too */
    rec_to_in();
    exp_int(3);
    reduce_expect("count", NULL);
    exp_int(8);
    reduce_expect("count", acc_int(5));
    g_in.len = 0;
    exp_int(5);
    reduce_expect("count", acc_int(5));
    /* The output feeds back as the next accumulator. */
    in_int(0);
    exp_int(6);
    reduce_expect("count", acc_int(5));
}

static void test_count_bad_input(void **state)
{
    (void)state;
    in_int(1);
    rec_begin();
    put_str("five");
    reduce_refuses("count", &g_rec, "std.count: the accumulator");
    reduce_refuses("count", acc_int(-1), "negative");
    rec_begin();
    put_int(1);
    put_int(2);
    reduce_refuses("count", &g_rec, "std.count");
    reduce_refuses("count", acc_int(INT64_MAX), "std.count: int64 overflow");
    g_in.len = 0;
    in_bad_frame();
    reduce_refuses("count", NULL, "std.count: malformed batch");
}

/* A full fixed output buffer is reported by the reducers. */
static void test_reduce_out_full(void **state)
{
    (void)state;
    uint8_t mem[1];
    ember_buf small = ember_buf_fixed(mem, sizeof mem);
    in_int(300);
    ember_batch b = in_batch();
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(fn("sum")->reduce(NULL, NULL, 0, &b, &small, &err),
                     EMBER_ENOSPC);
    assert_int_equal(small.len, 0);
    assert_non_null(strstr(err.msg, "std.sum"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_descriptor),
        T(test_identity),
        T(test_identity_empty_and_bad),
        T(test_split_words_basic),
        T(test_split_words_blanks),
        T(test_split_words_extra_and_nul),
        T(test_split_words_long),
        T(test_split_words_bad_input),
        T(test_split_words_out_full),
        T(test_pair_with),
        T(test_pair_with_tuple_and_long),
        T(test_pair_with_bad_arg),
        T(test_pair_with_bad_input),
        T(test_sum_int),
        T(test_sum_double),
        T(test_sum_overflow),
        T(test_sum_bad_input),
        T(test_count),
        T(test_count_bad_input),
        T(test_reduce_out_full),
    };
    return cmocka_run_group_tests_name("std", tests, NULL, NULL);
}
