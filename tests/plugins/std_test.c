/*
 * std_test.c — the standard function library (plugin "std"), linked
 * statically and driven through its function vtables with batches built by
 * ember/record.h. Outputs are compared byte for byte with records encoded
 * independently by the test.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ember/function.h"
#include "ember/hash.h"
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

/* Appends one string element per string of v (NULL-terminated). */
static void put_strs(const char *const *v)
{
    for (; *v; v++)
        put_str(*v);
}

static void put_int(int64_t v)
{
    assert_int_equal(ember_rec_put_int(&g_rec, v), EMBER_OK);
}

static void put_double(double v)
{
    assert_int_equal(ember_rec_put_double(&g_rec, v), EMBER_OK);
}

static void put_bool(int v)
{
    assert_int_equal(ember_rec_put_bool(&g_rec, v), EMBER_OK);
}

static void put_null(void)
{
    assert_int_equal(ember_rec_put_null(&g_rec), EMBER_OK);
}

static void put_bytes(const void *p, size_t n)
{
    assert_int_equal(ember_rec_put_bytes(&g_rec, p, n), EMBER_OK);
}

static void tup_begin(void)
{
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
}

static void tup_end(void)
{
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
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

/* One-string records, one per string of v (NULL-terminated): in_strs to
 * the input batch, exp_strs to the expected output. */
static void in_strs(const char *const *v)
{
    for (; *v; v++)
        in_str(*v);
}

static void exp_strs(const char *const *v)
{
    for (; *v; v++)
        exp_str(*v);
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

/* Fails the test unless err's message contains needle. */
static void expect_msg(const ember_error *err, const char *needle)
{
    if (strstr(err->msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err->msg, needle);
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
    expect_msg(&err, needle);
}

/* Appends a deliberately broken frame (length past the end). */
static void in_bad_frame(void)
{
    uint8_t bad[] = {0x05, 0x28, 'a'};
    assert_int_equal(ember_buf_append(&g_in, bad, sizeof bad), EMBER_OK);
    g_in_count++;
}

static void reduce_refuses(const char *name, const ember_buf *acc,
                           const char *needle);

/* Appends a broken frame to the input: std.<name> (a map with state st,
 * or a reduce without accumulator) must refuse the batch as malformed,
 * naming itself. */
static void bad_frame_refused(const char *name, void *st)
{
    const ember_function_vtable *vt = fn(name);
    char want[64];
    snprintf(want, sizeof want, "std.%s: malformed batch", name);
    in_bad_frame();
    if (vt->shape == EMBER_FN_MAP)
        map_refuses(vt, st, want);
    else
        reduce_refuses(name, NULL, want);
}

/* The expected one-bool record. */
static void exp_bool(int v)
{
    rec_begin();
    put_bool(v);
    rec_to_exp();
}

/* Empties the input and expected batches and the output. */
static void clear_io(void)
{
    g_in.len = 0;
    g_in_count = 0;
    g_exp.len = 0;
    g_exp_count = 0;
    g_out.len = 0;
}

/*
 * Opens std.<name> with the record in g_rec as argument (or no argument
 * when with_arg is 0); returns the status, *st the state.
 */
static ember_status open_fn(const char *name, int with_arg, void **st,
                            ember_error *err)
{
    ember_error_clear(err);
    *st = NULL;
    return fn(name)->open(em_fake_host(), with_arg ? g_rec.data : NULL,
                          with_arg ? g_rec.len : 0, st, err);
}

/* open_fn that must succeed. */
static void *open_ok(const char *name, int with_arg)
{
    ember_error err;
    void *st = NULL;
    if (open_fn(name, with_arg, &st, &err) != EMBER_OK)
        fail_msg("std.%s open: %s", name, err.msg);
    return st;
}

/* open_fn that must fail with EINVAL mentioning needle. */
static void open_refuses(const char *name, int with_arg, const char *needle)
{
    ember_error err;
    void *st = (void *)&err;
    assert_int_equal(open_fn(name, with_arg, &st, &err), EMBER_EINVAL);
    assert_null(st);
    expect_msg(&err, needle);
}

/* ---- the descriptor ---- */

static void test_descriptor(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint32_t shape;
        int has_open;
    } want[] = {
        {"identity", EMBER_FN_MAP, 0},      {"split_words", EMBER_FN_MAP, 0},
        {"pair_with", EMBER_FN_MAP, 1},     {"sum", EMBER_FN_REDUCE, 0},
        {"count", EMBER_FN_REDUCE, 0},      {"lines", EMBER_FN_MAP, 0},
        {"split_fields", EMBER_FN_MAP, 1},  {"parse_numbers", EMBER_FN_MAP, 1},
        {"swap", EMBER_FN_MAP, 0},          {"hash", EMBER_FN_MAP, 0},
        {"compare", EMBER_FN_MAP, 1},       {"contains", EMBER_FN_MAP, 1},
        {"min", EMBER_FN_REDUCE, 0},        {"max", EMBER_FN_REDUCE, 0},
        {"concat", EMBER_FN_REDUCE, 0},
    };
    const ember_plugin_info *info = ember_plugin_entry_std();
    assert_int_equal(info->magic, EMBER_PLUGIN_MAGIC);
    assert_string_equal(info->name, "std");
    assert_int_equal(info->component_count, sizeof want / sizeof *want);
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
        assert_int_equal(vt->open != NULL, want[i].has_open);
        assert_int_equal(vt->close != NULL, want[i].has_open);
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
    tup_begin();
    put_double(2.5);
    tup_end();
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
    bad_frame_refused("identity", NULL);
}

/* ---- std.split_words ---- */

static void test_split_words_basic(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    in_str("hello world");
    in_str("the quick  brown\tfox");
    exp_strs((const char *const[]){"hello", "world", "the", "quick", "brown",
                                   "fox", NULL});
    map_expect(vt, NULL);
}

static void test_split_words_blanks(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_words");
    in_strs((const char *const[]){"   leading and trailing   ", "", " \t\r\n ",
                                  "tabs\t\tand\r\nCRLF\r\nlines\n", "x",
                                  NULL});
    in_str("caf\xc3\xa9 na\xc3\xafve"); /* UTF-8 is just bytes */
    in_str("comma,is;not-a-blank");
    exp_strs((const char *const[]){"leading", "and", "trailing", "tabs", "and",
                                   "CRLF", "lines", "x", "caf\xc3\xa9",
                                   "na\xc3\xafve", "comma,is;not-a-blank",
                                   NULL});
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
    put_bytes("b", 1);
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
    bad_frame_refused("split_words", NULL);
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

static void test_pair_with(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("pair_with");
    void *st = NULL;
    rec_begin();
    put_int(1);
    st = open_ok("pair_with", 1);
    assert_non_null(st);

    in_str("hello");
    rec_begin();
    put_str("x");
    put_int(7);
    rec_to_in();
    rec_begin();
    tup_begin();
    put_str("k");
    tup_end();
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
    tup_begin();
    put_str("k");
    tup_end();
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
    void *st = NULL;
    rec_begin();
    tup_begin();
    put_int(-3);
    put_str("v");
    tup_end();
    st = open_ok("pair_with", 1);

    char big[1000];
    memset(big, 'q', sizeof big);
    rec_begin();
    put_strn(big, sizeof big);
    rec_to_in();

    rec_begin();
    put_strn(big, sizeof big);
    tup_begin();
    put_int(-3);
    put_str("v");
    tup_end();
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
    assert_int_equal(open_fn("pair_with", 1, &st, &err), EMBER_EINVAL);
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
    assert_int_equal(open_fn("pair_with", 1, &st, &err), EMBER_ENOMEM);
    assert_null(st);
    em_fake_host_fail_allocs(0);
}

static void test_pair_with_bad_input(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("pair_with");
    void *st = NULL;
    rec_begin();
    put_str("v");
    st = open_ok("pair_with", 1);

    rec_begin(); /* an empty record has no first element */
    rec_to_in();
    map_refuses(vt, st, "std.pair_with: record 0 is empty");

    g_in.len = 0;
    in_str("ok");
    uint8_t junk[] = {0x1C, 0x00}; /* a truncated int */
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(vt, st, "std.pair_with: malformed record 1");

    g_in.len = 0;
    bad_frame_refused("pair_with", st);

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
    expect_msg(&err, needle);
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
    put_null();
    reduce_refuses("sum", &g_rec, "got null");
    g_in.len = 0;
    bad_frame_refused("sum", NULL);
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
    bad_frame_refused("count", NULL);
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

/* ---- std.split_words: every ASCII white space separates ---- */

static void test_split_words_all_spaces(void **state)
{
    (void)state;
    in_str("a\vb\fc d\te\nf\rg\x1ch");
    exp_strs((const char *const[]){"a", "b", "c", "d", "e", "f", NULL});
    exp_str("g\x1ch"); /* other control bytes are not white space */
    map_expect(fn("split_words"), NULL);
}

/* ---- std.lines ---- */

static void test_lines(void **state)
{
    (void)state;
    in_strs((const char *const[]){"a\nb", "c\r\nd\r\n", "", "\n", "e\n\nf\n\n",
                                  "g\r", "\r\n\r\n", "cr\rinside\n", NULL});
    exp_strs((const char *const[]){"a", "b", "c", "d", "", "e", "", "f", "",
                                   "g", "", "", "cr\rinside", NULL});
    map_expect(fn("lines"), NULL);
}

/* Embedded NULs stay in lines; long lines get multi-byte frames. */
static void test_lines_nul_and_long(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'z', sizeof big);
    big[100] = '\0';
    big[1000] = '\n';
    rec_begin();
    put_strn("x\0\ny\0", 5);
    rec_to_in();
    rec_begin();
    put_strn(big, sizeof big);
    rec_to_in();
    rec_begin();
    put_strn("x\0", 2);
    rec_to_exp();
    rec_begin();
    put_strn("y\0", 2);
    rec_to_exp();
    rec_begin();
    put_strn(big, 1000);
    rec_to_exp();
    rec_begin();
    put_strn(big + 1001, sizeof big - 1001);
    rec_to_exp();
    map_expect(fn("lines"), NULL);
}

static void test_lines_bad_input(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("lines");
    in_str("ok");
    in_int(3);
    map_refuses(vt, NULL, "std.lines: expected a string, got int (record 1)");
    clear_io();
    rec_begin();
    put_str("a");
    put_str("b");
    rec_to_in();
    map_refuses(vt, NULL,
                "std.lines: expected a record of one string, got 2 elements "
                "(record 0)");
    clear_io();
    rec_begin();
    rec_to_in();
    map_refuses(vt, NULL, "got 0 elements (record 0)");
    clear_io();
    in_str("a");
    in_str("b");
    uint8_t junk[] = {0x28, 'x'};
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(vt, NULL, "std.lines: malformed record 2");
    clear_io();
    bad_frame_refused("lines", NULL);
}

/* ---- std.split_fields ---- */

static void test_split_fields_default_tab(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_fields");
    void *st = open_ok("split_fields", 0);
    in_strs((const char *const[]){"a\tb\t\tc", "", "no tabs, here", "\t",
                                  NULL});
    rec_begin();
    put_strs((const char *const[]){"a", "b", "", "c", NULL});
    rec_to_exp();
    rec_begin();
    put_str("");
    rec_to_exp();
    rec_begin();
    put_str("no tabs, here");
    rec_to_exp();
    rec_begin();
    put_str("");
    put_str("");
    rec_to_exp();
    map_expect(vt, st);
    /* Without open at all, the delimiter is a tab too. */
    g_out.len = 0;
    map_expect(vt, NULL);
    vt->close(st);
}

static void test_split_fields_delimiters(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_fields");
    rec_begin();
    put_str("::");
    void *st = open_ok("split_fields", 1);
    in_str("a::b:::c::");
    in_str(":a:");
    rec_begin();
    put_strs((const char *const[]){"a", "b", ":c", "", NULL});
    rec_to_exp();
    rec_begin();
    put_str(":a:");
    rec_to_exp();
    map_expect(vt, st);
    vt->close(st);

    /* A NUL delimiter splits strings that need escaping. */
    clear_io();
    rec_begin();
    put_strn("\0", 1);
    st = open_ok("split_fields", 1);
    rec_begin();
    put_strn("ab\0\0c", 5);
    rec_to_in();
    rec_begin();
    put_strs((const char *const[]){"ab", "", "c", NULL});
    rec_to_exp();
    map_expect(vt, st);
    vt->close(st);

    /* A 0xFF delimiter never matches the second byte of an escaped NUL. */
    clear_io();
    rec_begin();
    put_strn("\xff", 1);
    st = open_ok("split_fields", 1);
    rec_begin();
    put_strn("\0\xffx\xffy", 5);
    rec_to_in();
    rec_begin();
    put_strn("\0", 1);
    put_str("x");
    put_str("y");
    rec_to_exp();
    map_expect(vt, st);
    vt->close(st);

    /* Many fields: a frame length of several bytes. */
    clear_io();
    rec_begin();
    put_str(",");
    st = open_ok("split_fields", 1);
    char line[2 * 300];
    for (size_t i = 0; i < 300; i++) {
        line[2 * i] = (char)('a' + (int)(i % 26));
        line[2 * i + 1] = ',';
    }
    rec_begin();
    put_strn(line, sizeof line - 1);
    rec_to_in();
    rec_begin();
    for (size_t i = 0; i < 300; i++)
        put_strn(line + 2 * i, 1);
    rec_to_exp();
    map_expect(vt, st);
    vt->close(st);
}

static void test_split_fields_bad(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("split_fields");
    rec_begin();
    put_int(1);
    open_refuses("split_fields", 1, "the delimiter must be a string, got int");
    rec_begin();
    put_str("");
    open_refuses("split_fields", 1, "std.split_fields: bad argument: the "
                                    "delimiter is empty");
    rec_begin();
    put_str(",");
    put_str(";");
    open_refuses("split_fields", 1, "std.split_fields: bad argument");
    in_str("a\tb");
    rec_begin();
    put_null();
    rec_to_in();
    map_refuses(vt, NULL,
                "std.split_fields: expected a string, got null (record 1)");
}

/* ---- std.parse_numbers ---- */

/* The expected output for the input of test_parse_numbers (in g_exp). */
static void parse_numbers_case(void)
{
    static const char *const same[] = {
        "abc", "", " 1", "1 ", "0x10", "inf", "-inf", "nan", "NaN",
        "infinity", "1e400", "-1e400", "-", "+", ".", "1e", "1e+", "e5",
        "1.2.3", "1,5", "--1", "1_000", "\xd9\xa1", NULL,
    };
    rec_begin();
    put_strs((const char *const[]){"42", "-7", "+5", "007", "-0",
                                   "9223372036854775807",
                                   "-9223372036854775808",
                                   "9223372036854775808",
                                   "-9223372036854775809", "3.5", "1e3", ".5",
                                   "5.", "-1.5E-3", "1e-400", "-0.0", NULL});
    put_strs(same);
    put_strn("1\0", 2);
    put_int(5);
    put_double(2.5);
    put_null();
    tup_begin();
    put_str("9");
    tup_end();
    rec_to_in();

    rec_begin();
    put_int(42);
    put_int(-7);
    put_int(5);
    put_int(7);
    put_int(0);
    put_int(INT64_MAX);
    put_int(INT64_MIN);
    put_double(9223372036854775808.0);
    put_double(-9223372036854775809.0);
    put_double(3.5);
    put_double(1000.0);
    put_double(0.5);
    put_double(5.0);
    put_double(-1.5e-3);
    put_double(0.0);
    put_double(-0.0);
    put_strs(same);
    put_strn("1\0", 2);
    put_int(5);
    put_double(2.5);
    put_null();
    tup_begin();
    put_str("9"); /* nested tuples are left alone */
    tup_end();
    rec_to_exp();
    rec_begin(); /* the empty record stays empty */
    rec_to_in();
    rec_to_exp();
}

static void test_parse_numbers(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("parse_numbers");
    void *st = open_ok("parse_numbers", 0);
    parse_numbers_case();
    map_expect(vt, st);
    vt->close(st);
}

/* The result does not depend on LC_NUMERIC (when a locale with a decimal
 * comma is installed; otherwise there is nothing to show). */
static void test_parse_numbers_locale(void **state)
{
    (void)state;
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                        "fr_FR.UTF-8", "fr_FR.utf8",
                                        "de_DE", "fr_FR"};
    const char *got = NULL;
    for (size_t i = 0; got == NULL && i < sizeof names / sizeof names[0];
         i++)
        got = setlocale(LC_NUMERIC, names[i]);
    if (got == NULL)
        skip();
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    assert_string_equal(probe, "1,5"); /* the locale is in force */
    const ember_function_vtable *vt = fn("parse_numbers");
    void *st = open_ok("parse_numbers", 0);
    parse_numbers_case();
    map_expect(vt, st);
    vt->close(st);
    setlocale(LC_NUMERIC, "C");
}

static void test_parse_numbers_bad(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("parse_numbers");
    rec_begin();
    put_int(1);
    open_refuses("parse_numbers", 1, "std.parse_numbers: takes no argument");
    void *st = open_ok("parse_numbers", 0);
    in_str("1");
    uint8_t junk[] = {0x14, 0x30, 0x14};
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(vt, st, "std.parse_numbers: malformed record 1");
    clear_io();
    in_str("1");
    map_refuses(vt, NULL, "std.parse_numbers: called without open");
    vt->close(st);
    vt->close(NULL);
}

/* ---- std.swap ---- */

static void test_swap(void **state)
{
    (void)state;
    char big[500];
    memset(big, 'k', sizeof big);
    rec_begin();
    put_str("a");
    put_int(1);
    rec_to_in();
    rec_begin();
    tup_begin();
    put_int(1);
    put_null();
    tup_end();
    put_double(-2.5);
    rec_to_in();
    rec_begin();
    put_strn(big, sizeof big);
    put_bool(1);
    rec_to_in();
    rec_begin();
    put_int(1);
    put_str("a");
    rec_to_exp();
    rec_begin();
    put_double(-2.5);
    tup_begin();
    put_int(1);
    put_null();
    tup_end();
    rec_to_exp();
    rec_begin();
    put_bool(1);
    put_strn(big, sizeof big);
    rec_to_exp();
    map_expect(fn("swap"), NULL);
}

static void test_swap_bad(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("swap");
    rec_begin();
    put_int(1);
    put_int(2);
    rec_to_in();
    rec_begin();
    put_int(1);
    rec_to_in();
    map_refuses(vt, NULL,
                "std.swap: expected a pair (2 elements), got 1 elements "
                "(record 1)");
    clear_io();
    rec_begin();
    put_int(1);
    put_int(2);
    put_int(3);
    rec_to_in();
    map_refuses(vt, NULL, "got 3 elements (record 0)");
    clear_io();
    uint8_t junk[] = {0x14, 0x1C};
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(vt, NULL, "std.swap: malformed record 0");
}

/* ---- std.hash and ember_hash64 ---- */

static void test_hash64_vectors(void **state)
{
    (void)state;
    uint8_t b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (uint8_t)i;
    /* The documented vectors (ember/hash.h, docs/record-format.md). */
    assert_true(ember_hash64(NULL, 0) == UINT64_C(0xe9e0033e3badaf36));
    assert_true(ember_hash64("a", 1) == UINT64_C(0x5e056afa4c83138d));
    assert_true(ember_hash64(b, 16) == UINT64_C(0x63497d21f69f4732));
    /* The length is folded in: zero padding does not collide. */
    assert_true(ember_hash64("a", 1) != ember_hash64("a\0", 2));
    assert_true(ember_hash64(b, 8) != ember_hash64(b, 9));
    /* Every input bit matters, in every position of a word. */
    for (size_t bit = 0; bit < 128; bit++) {
        uint8_t c[16];
        memcpy(c, b, sizeof c);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(ember_hash64(c, 16) != ember_hash64(b, 16));
    }
}

static void test_hash(void **state)
{
    (void)state;
    uint8_t one[8];
    ember_buf r = ember_buf_fixed(one, sizeof one);
    assert_int_equal(ember_rec_put_string(&r, "a", 1), EMBER_OK);
    uint64_t h = ember_hash64(one, r.len);
    in_str("a");
    rec_begin(); /* the empty record */
    rec_to_in();
    in_str("a");
    /* int64 with the same bits */
    int64_t want = h <= (uint64_t)INT64_MAX ? (int64_t)h
                                            : -(int64_t)(~h) - 1;
    uint64_t e = ember_hash64(NULL, 0);
    int64_t want_empty = e <= (uint64_t)INT64_MAX ? (int64_t)e
                                                  : -(int64_t)(~e) - 1;
    rec_begin();
    put_int(want);
    rec_to_exp();
    rec_begin();
    put_int(want_empty);
    rec_to_exp();
    rec_begin();
    put_int(want);
    rec_to_exp();
    map_expect(fn("hash"), NULL);
    /* the empty record's hash is the first vector, read as an int64 */
    assert_int_equal(want_empty, (int64_t)-0x161ffcc1c45250ca);
}

static void test_hash_bad(void **state)
{
    (void)state;
    in_str("ok");
    uint8_t junk[] = {0x28, 'x', 0x00, 0x00};
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    map_refuses(fn("hash"), NULL, "std.hash: malformed record 1");
}

/* ---- std.compare ---- */

/* Opens std.compare with (op, int value). */
static void *open_compare_int(const char *op, int64_t value)
{
    rec_begin();
    put_str(op);
    put_int(value);
    return open_ok("compare", 1);
}

static void test_compare(void **state)
{
    (void)state;
    static const struct {
        const char *op;
        int want[3]; /* for 3, 5, 7 against 5 */
    } cases[] = {
        {"lt", {1, 0, 0}}, {"le", {1, 1, 0}}, {"eq", {0, 1, 0}},
        {"ne", {1, 0, 1}}, {"ge", {0, 1, 1}}, {"gt", {0, 0, 1}},
    };
    const ember_function_vtable *vt = fn("compare");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_io();
        void *st = open_compare_int(cases[i].op, 5);
        in_int(3);
        rec_begin();
        put_int(5);
        put_str("later elements are ignored");
        rec_to_in();
        in_int(7);
        for (int k = 0; k < 3; k++)
            exp_bool(cases[i].want[k]);
        map_expect(vt, st);
        vt->close(st);
    }
    /* Typed order across types: every int is less than every double,
     * null less than all. */
    clear_io();
    void *st = open_compare_int("lt", 5);
    in_double(-1e300);
    in_int(-100);
    rec_begin();
    put_null();
    rec_to_in();
    in_str("1");
    exp_bool(0);
    exp_bool(1);
    exp_bool(1);
    exp_bool(0);
    map_expect(vt, st);
    vt->close(st);
    /* Strings, bytewise. */
    clear_io();
    rec_begin();
    put_str("ge");
    put_str("m");
    st = open_ok("compare", 1);
    in_strs((const char *const[]){"apple", "m", "mango", "Zebra", NULL});
    exp_bool(0);
    exp_bool(1);
    exp_bool(1);
    exp_bool(0);
    map_expect(vt, st);
    vt->close(st);
}

static void test_compare_bad(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("compare");
    open_refuses("compare", 0, "std.compare: missing argument");
    rec_begin();
    put_str("lt");
    open_refuses("compare", 1, "std.compare: bad argument: expected an "
                               "encoded record (op, value)");
    rec_begin();
    put_str("less");
    put_int(1);
    open_refuses("compare", 1, "unknown operator 'less'");
    rec_begin();
    put_str("LT");
    put_int(1);
    open_refuses("compare", 1, "unknown operator 'LT'");
    rec_begin();
    put_int(1);
    put_int(1);
    open_refuses("compare", 1, "the operator must be a string, got int");
    void *st = open_compare_int("eq", 1);
    in_int(1);
    rec_begin();
    rec_to_in();
    map_refuses(vt, st, "std.compare: record 1 is empty");
    clear_io();
    in_int(1);
    map_refuses(vt, NULL, "std.compare: called without open");
    vt->close(st);
}

/* ---- std.contains ---- */

/* Opens std.contains with the needle p[0..n). */
static void *open_contains(const char *p, size_t n)
{
    rec_begin();
    put_strn(p, n);
    return open_ok("contains", 1);
}

/* A naive reference substring test. */
static int naive_contains(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0)
        return 1;
    for (size_t i = 0; i + nn <= hn; i++)
        if (memcmp(h + i, n, nn) == 0)
            return 1;
    return 0;
}

static void test_contains(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("contains");
    void *st = open_contains("o w", 3);
    in_strs((const char *const[]){"hello world", "hello  world", "", "o w",
                                  "o wo w", NULL});
    exp_bool(1);
    exp_bool(0);
    exp_bool(0);
    exp_bool(1);
    exp_bool(1);
    map_expect(vt, st);
    vt->close(st);

    clear_io();
    st = open_contains("", 0); /* the empty needle is in every string */
    in_str("");
    in_str("x");
    exp_bool(1);
    exp_bool(1);
    map_expect(vt, st);
    vt->close(st);

    /* NULs in needle and haystack; a 0xFF needle must not match the second
     * byte of an escaped NUL. */
    clear_io();
    st = open_contains("\xff", 1);
    rec_begin();
    put_strn("\0", 1);
    rec_to_in();
    rec_begin();
    put_strn("a\0\xff", 3);
    rec_to_in();
    exp_bool(0);
    exp_bool(1);
    map_expect(vt, st);
    vt->close(st);
    clear_io();
    st = open_contains("b\0c", 3);
    rec_begin();
    put_strn("ab\0cd", 5);
    rec_to_in();
    rec_begin();
    put_strn("ab\0\0cd", 6);
    rec_to_in();
    in_str("bc");
    exp_bool(1);
    exp_bool(0);
    exp_bool(0);
    map_expect(vt, st);
    vt->close(st);
}

/* Many needles and haystacks over a two-letter alphabet (lots of partial
 * matches) agree with a naive search. */
static void test_contains_against_naive(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("contains");
    uint32_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        char needle[12], hay[16][64];
        size_t nn, hn[16];
        clear_io();
        seed = seed * 1103515245u + 12345u;
        nn = (seed >> 16) % sizeof needle;
        for (size_t i = 0; i < nn; i++) {
            seed = seed * 1103515245u + 12345u;
            needle[i] = "ab\0"[(seed >> 16) % 3];
        }
        void *st = open_contains(needle, nn);
        for (int k = 0; k < 16; k++) {
            seed = seed * 1103515245u + 12345u;
            hn[k] = (seed >> 16) % sizeof hay[k];
            for (size_t i = 0; i < hn[k]; i++) {
                seed = seed * 1103515245u + 12345u;
                hay[k][i] = "ab\0"[(seed >> 16) % 3];
            }
            rec_begin();
            put_strn(hay[k], hn[k]);
            rec_to_in();
            exp_bool(naive_contains(hay[k], hn[k], needle, nn));
        }
        map_expect(vt, st);
        vt->close(st);
    }
}

static void test_contains_bad(void **state)
{
    (void)state;
    const ember_function_vtable *vt = fn("contains");
    open_refuses("contains", 0, "std.contains: missing argument");
    rec_begin();
    put_int(3);
    open_refuses("contains", 1, "std.contains: bad argument: expected a "
                                "string, got int");
    void *st = open_contains("x", 1);
    in_str("x");
    in_str("y");
    in_int(1);
    map_refuses(vt, st, "std.contains: expected a string, got int "
                        "(record 2)");
    vt->close(st);
}

/* ---- std.min, std.max ---- */

/* Makes g_rec the record (s, i). */
static const ember_buf *acc_pair(const char *s, int64_t i)
{
    rec_begin();
    put_str(s);
    put_int(i);
    return &g_rec;
}

/* Appends the record (s, i) to the input. */
static void in_pair(const char *s, int64_t i)
{
    acc_pair(s, i);
    rec_to_in();
}

/* g_exp := the record (s, i), not batch-framed. */
static void exp_pair(const char *s, int64_t i)
{
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_string(&g_exp, s, strlen(s)), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&g_exp, i), EMBER_OK);
}

static void test_min_max(void **state)
{
    (void)state;
    in_int(3);
    in_int(-1);
    in_int(2);
    in_int(-1);
    exp_int(-1);
    reduce_expect("min", NULL);
    exp_int(3);
    reduce_expect("max", NULL);
    exp_int(-5);
    reduce_expect("min", acc_int(-5));
    exp_int(3);
    reduce_expect("max", acc_int(3)); /* a tie */
    exp_int(-1);
    reduce_expect("min", acc_int(0));
    exp_int(100);
    reduce_expect("max", acc_int(100));
    /* The accumulator alone. */
    clear_io();
    exp_int(4);
    reduce_expect("max", acc_int(4));
    /* Whole records in typed order: ints numerically, not as text. */
    clear_io();
    in_pair("a", 10);
    in_pair("a", 2);
    in_pair("b", -100);
    exp_pair("a", 2);
    reduce_expect("min", NULL);
    exp_pair("b", -100);
    reduce_expect("max", NULL);
    exp_pair("a", -1);
    reduce_expect("min", acc_pair("a", -1));
    /* Across types: null < int < double < string; a prefix first. */
    clear_io();
    in_str("x");
    in_double(-1e9);
    in_int(7);
    rec_begin();
    put_str("x");
    put_null();
    rec_to_in();
    exp_int(7);
    reduce_expect("min", NULL);
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_string(&g_exp, "x", 1), EMBER_OK);
    assert_int_equal(ember_rec_put_null(&g_exp), EMBER_OK);
    reduce_expect("max", NULL);
}

static void test_min_max_bad(void **state)
{
    (void)state;
    reduce_refuses("min", NULL, "std.min: nothing to fold");
    reduce_refuses("max", NULL, "std.max: nothing to fold");
    in_int(1);
    uint8_t junk[] = {0x30, 0x14};
    assert_int_equal(ember_batch_append(&g_in, junk, sizeof junk), EMBER_OK);
    reduce_refuses("max", NULL, "std.max: malformed record (value 1)");
    clear_io();
    in_int(1);
    rec_begin();
    assert_int_equal(ember_buf_append(&g_rec, junk, sizeof junk), EMBER_OK);
    reduce_refuses("min", &g_rec,
                   "std.min: malformed record (the accumulator)");
    clear_io();
    bad_frame_refused("min", NULL);
}

/* ---- std.concat ---- */

static void test_concat(void **state)
{
    (void)state;
    in_strs((const char *const[]){"ab", "", "c", NULL});
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_string(&g_exp, "abc", 3), EMBER_OK);
    reduce_expect("concat", NULL);
    rec_begin();
    put_strn("z\0", 2);
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_string(&g_exp, "z\0abc", 5), EMBER_OK);
    reduce_expect("concat", &g_rec);
    /* bytes, with NULs on both sides of a join */
    clear_io();
    rec_begin();
    put_bytes("\0\x01", 2);
    rec_to_in();
    rec_begin();
    put_bytes("\0", 1);
    rec_to_in();
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_bytes(&g_exp, "\0\x01\0", 3), EMBER_OK);
    reduce_expect("concat", NULL);
    /* the accumulator alone, and one empty string */
    clear_io();
    in_str("");
    g_exp.len = 0;
    assert_int_equal(ember_rec_put_string(&g_exp, "", 0), EMBER_OK);
    reduce_expect("concat", NULL);
}

static void test_concat_bad(void **state)
{
    (void)state;
    reduce_refuses("concat", NULL, "std.concat: nothing to fold");
    in_str("a");
    rec_begin();
    put_bytes("b", 1);
    rec_to_in();
    reduce_refuses("concat", NULL,
                   "std.concat: cannot concatenate bytes to string "
                   "(value 1)");
    assert_int_equal(g_out.len, 0); /* nothing left behind */
    clear_io();
    in_str("a");
    rec_begin();
    put_bytes("b", 1);
    reduce_refuses("concat", &g_rec,
                   "std.concat: cannot concatenate string to bytes "
                   "(value 0)");
    clear_io();
    in_str("a");
    in_int(1);
    reduce_refuses("concat", NULL, "std.concat: expected a string or bytes, "
                                   "got int (value 1)");
    clear_io();
    in_str("a");
    rec_begin();
    put_str("a");
    put_str("b");
    rec_to_in();
    reduce_refuses("concat", NULL, "got 2 elements (value 1)");
}

/* Errors name the position of the bad value. */
static void test_reduce_positions(void **state)
{
    (void)state;
    in_int(1);
    in_int(2);
    in_str("3");
    reduce_refuses("sum", NULL, "std.sum: expected an int or double, got "
                                "string (value 2)");
    rec_begin();
    put_str("0");
    reduce_refuses("sum", &g_rec, "(the accumulator)");
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
        T(test_split_words_all_spaces),
        T(test_lines),
        T(test_lines_nul_and_long),
        T(test_lines_bad_input),
        T(test_split_fields_default_tab),
        T(test_split_fields_delimiters),
        T(test_split_fields_bad),
        T(test_parse_numbers),
        T(test_parse_numbers_locale),
        T(test_parse_numbers_bad),
        T(test_swap),
        T(test_swap_bad),
        T(test_hash64_vectors),
        T(test_hash),
        T(test_hash_bad),
        T(test_compare),
        T(test_compare_bad),
        T(test_contains),
        T(test_contains_against_naive),
        T(test_contains_bad),
        T(test_min_max),
        T(test_min_max_bad),
        T(test_concat),
        T(test_concat_bad),
        T(test_reduce_positions),
    };
    return cmocka_run_group_tests_name("std", tests, NULL, NULL);
}
