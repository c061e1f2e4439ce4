/*
 * text_test.c — the text source (plugin "text", text.lines) and the text
 * sink (plugin "textout", textout.files), linked statically and driven
 * through their vtables against the fake host, on real files in a fresh
 * temporary directory per test.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/batch.h"
#include "ember/record.h"
#include "ember/sink.h"
#include "ember/source.h"
#include "fake_host.h"

/* The entries of the statically linked plugins (EMBER_PLUGIN_STATIC). */
const ember_plugin_info *ember_plugin_entry_text(void);
const ember_plugin_info *ember_plugin_entry_textout(void);

#define KEY "ember.files.maxPartitionBytes"

static char g_dir[64]; /* this test's temporary directory */
static long g_allocs_before;

/* ---- the file system ---- */

/* Removes path and everything under it (no symlinks are made here). */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        assert_non_null(d);
        while ((de = readdir(d)) != NULL) {
            char sub[1024];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            remove_tree(sub);
        }
        closedir(d);
        assert_int_equal(rmdir(path), 0);
    } else {
        assert_int_equal(unlink(path), 0);
    }
}

static int setup(void **state)
{
    (void)state;
    em_fake_host_reset();
    g_allocs_before = em_fake_host_live_allocs();
    snprintf(g_dir, sizeof g_dir, "/tmp/ember_text_test.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(g_dir);
    if (em_fake_host_live_allocs() != g_allocs_before) {
        print_error("host allocations leaked\n");
        return -1;
    }
    return 0;
}

/* g_dir + "/" + rel, in a static buffer of its own per slot (0..3). */
static const char *at(int slot, const char *rel)
{
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", g_dir, rel);
    return paths[slot];
}

/* Writes data[0..n) to g_dir/rel. */
static void write_file(const char *rel, const void *data, size_t n)
{
    FILE *f = fopen(at(3, rel), "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *rel, const char *text)
{
    write_file(rel, text, strlen(text));
}

static void make_dir(const char *rel)
{
    assert_int_equal(mkdir(at(3, rel), 0777), 0);
}

/* Non-zero when g_dir/rel exists. */
static int exists(const char *rel)
{
    struct stat st;
    return lstat(at(3, rel), &st) == 0;
}

/* The whole of g_dir/rel, malloc'd (*n its size). */
static char *read_whole(const char *rel, size_t *n)
{
    FILE *f = fopen(at(3, rel), "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *p = malloc((size_t)size + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)size, f), (size_t)size);
    p[size] = '\0';
    fclose(f);
    *n = (size_t)size;
    return p;
}

/* The vtable of the one component of plugin `plugin` (info), which must
 * be named name, of kind kind. */
static const void *only_component(const ember_plugin_info *info,
                                  const char *plugin, const char *name,
                                  uint32_t kind)
{
    assert_string_equal(info->name, plugin);
    assert_int_equal(info->component_count, 1);
    assert_string_equal(info->components[0].name, name);
    assert_int_equal(info->components[0].kind, kind);
    return info->components[0].vtable;
}

/* ---- the source ---- */

static const ember_source_vtable *source(void)
{
    return only_component(ember_plugin_entry_text(), "text", "lines",
                          EMBER_KIND_SOURCE);
}

/* One split as plan made it. */
typedef struct split {
    char path[512];
    int64_t start, end;
    uint8_t rec[600];
    size_t rec_len;
} split;

#define MAX_SPLITS 4096

static split g_splits[MAX_SPLITS];
static size_t g_nsplits;

/* Runs plan over the spec string; fills g_splits. */
static ember_status plan(const char *spec, uint32_t min_partitions,
                         ember_error *err)
{
    uint8_t argmem[1024];
    ember_buf arg = ember_buf_fixed(argmem, sizeof argmem);
    ember_buf out = ember_buf_heap();
    uint64_t count = 0;
    assert_int_equal(ember_rec_put_string(&arg, spec, strlen(spec)),
                     EMBER_OK);
    ember_error_clear(err);
    g_nsplits = 0;
    ember_status s = source()->plan(em_fake_host(), arg.data, arg.len,
                                    min_partitions, &out, &count, err);
    if (s != EMBER_OK) {
        assert_int_equal(out.len, 0);
        assert_int_equal(count, 0);
        ember_buf_release(&out);
        return s;
    }
    static const uint8_t none[1];
    ember_batch b = {out.data ? out.data : none, out.len, count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        split *sp = &g_splits[g_nsplits++];
        ember_value p = {0}, a = {0}, z = {0};
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        assert_true(g_nsplits <= MAX_SPLITS);
        assert_int_equal(ember_rec_next(&rc, &p), EMBER_OK);
        assert_int_equal(ember_rec_next(&rc, &a), EMBER_OK);
        assert_int_equal(ember_rec_next(&rc, &z), EMBER_OK);
        assert_int_equal(ember_rec_next(&rc, NULL), EMBER_END);
        assert_int_equal(p.type, EMBER_TYPE_STRING);
        assert_int_equal(a.type, EMBER_TYPE_INT);
        assert_int_equal(z.type, EMBER_TYPE_INT);
        assert_true(p.u.str.len < sizeof sp->path);
        ember_rec_string_copy(&p, sp->path, sizeof sp->path);
        sp->path[p.u.str.len] = '\0';
        sp->start = a.u.i64;
        sp->end = z.u.i64;
        assert_true(len <= sizeof sp->rec);
        memcpy(sp->rec, rec, len);
        sp->rec_len = len;
    }
    assert_int_equal(g_nsplits, count);
    ember_buf_release(&out);
    return EMBER_OK;
}

/* plan that must succeed. */
static void plan_ok(const char *spec, uint32_t min_partitions)
{
    ember_error err;
    if (plan(spec, min_partitions, &err) != EMBER_OK)
        fail_msg("plan(%s): %s", spec, err.msg);
}

/* Checks split i is (g_dir/rel, start, end). */
static void expect_split(size_t i, const char *rel, int64_t start,
                         int64_t end)
{
    assert_true(i < g_nsplits);
    assert_string_equal(g_splits[i].path, at(0, rel));
    assert_int_equal(g_splits[i].start, start);
    assert_int_equal(g_splits[i].end, end);
}

/* Lines read, decoded, appended in order: text joined by '\n' into g_got
 * (each line followed by '\n'), g_got_lines counting them. */
static ember_buf g_got;
static size_t g_got_lines;

/* Reads split i to the end with reads of max_bytes; appends to g_got. */
static void read_split(size_t i, size_t max_bytes)
{
    const ember_source_vtable *vt = source();
    void *r = NULL;
    ember_error err;
    ember_buf out = ember_buf_heap();
    ember_error_clear(&err);
    if (vt->open(em_fake_host(), g_splits[i].rec, g_splits[i].rec_len, &r,
                 &err) != EMBER_OK)
        fail_msg("open split %zu: %s", i, err.msg);
    for (;;) {
        uint64_t count = 0;
        out.len = 0;
        ember_status s = vt->read(r, max_bytes, &out, &count, &err);
        if (s == EMBER_END) {
            assert_int_equal(count, 0);
            assert_int_equal(out.len, 0);
            break;
        }
        if (s != EMBER_OK)
            fail_msg("read split %zu: %s", i, err.msg);
        assert_true(count > 0);
        ember_batch b = {out.data, out.len, count};
        ember_batch_cursor c = ember_batch_cursor_of(&b);
        const uint8_t *rec;
        size_t len, last = 0;
        uint64_t n = 0;
        while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
            ember_value v = {0};
            last = len;
            size_t k;
            assert_int_equal(ember_rec_validate(rec, len, &k), EMBER_OK);
            assert_int_equal(k, 1);
            assert_int_equal(ember_rec_get(rec, len, 0, &v), EMBER_OK);
            assert_int_equal(v.type, EMBER_TYPE_STRING);
            assert_int_equal(ember_buf_reserve(&g_got, v.u.str.len + 1),
                             EMBER_OK);
            ember_rec_string_copy(&v, g_got.data + g_got.len, v.u.str.len);
            g_got.len += v.u.str.len;
            g_got.data[g_got.len++] = '\n';
            g_got_lines++;
            n++;
        }
        assert_int_equal(n, count);
        /* about max_bytes: one record past it at most */
        if (count > 1 && out.len - last >= max_bytes + 16)
            fail_msg("read %llu records, %zu bytes, the last %zu, for "
                     "max_bytes %zu",
                     (unsigned long long)count, out.len, last, max_bytes);
    }
    vt->close(r);
    ember_buf_release(&out);
}

/* Reads every split in order into g_got (emptied first). */
static void read_all(size_t max_bytes)
{
    g_got.len = 0;
    g_got_lines = 0;
    for (size_t i = 0; i < g_nsplits; i++)
        read_split(i, max_bytes);
}

/* The expected g_got for file contents data[0..n): lines split on '\n',
 * a '\r' ending one dropped, no line after a final '\n'. */
static void expected_lines(const char *data, size_t n, ember_buf *exp,
                           size_t *lines)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t stop = nl ? (size_t)(nl - data) : n;
        size_t len = stop - i;
        if (len > 0 && data[i + len - 1] == '\r')
            len--;
        assert_int_equal(ember_buf_append(exp, data + i, len), EMBER_OK);
        assert_int_equal(ember_buf_put_u8(exp, '\n'), EMBER_OK);
        (*lines)++;
        i = stop + 1;
    }
}

/* Checks g_got equals the expected lines of data[0..n). */
static void expect_got(const char *data, size_t n)
{
    ember_buf exp = ember_buf_heap();
    size_t lines = 0;
    expected_lines(data, n, &exp, &lines);
    assert_int_equal(g_got_lines, lines);
    assert_int_equal(g_got.len, exp.len);
    if (exp.len)
        assert_memory_equal(g_got.data, exp.data, exp.len);
    ember_buf_release(&exp);
}

/* Sets maxPartitionBytes to n bytes. */
static void set_max(int64_t n)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)n);
    em_fake_host_set_config(KEY, v);
}

/* ---- source: split math ---- */

static void test_plan_split_math(void **state)
{
    (void)state;
    static char blob[1200];
    memset(blob, 'x', sizeof blob);
    write_file("a", blob, 1000);

    /* maxPartitionBytes caps the goal; the rest 100 is under 1.1 x 300 */
    set_max(300);
    plan_ok(at(1, "a"), 1);
    assert_int_equal(g_nsplits, 4);
    expect_split(0, "a", 0, 300);
    expect_split(1, "a", 300, 600);
    expect_split(2, "a", 600, 900);
    expect_split(3, "a", 900, 1000);

    /* the slop: 330 = 1.1 x 300 stays one split, 331 does not */
    write_file("a", blob, 330);
    plan_ok(at(1, "a"), 1);
    assert_int_equal(g_nsplits, 1);
    expect_split(0, "a", 0, 330);
    write_file("a", blob, 331);
    plan_ok(at(1, "a"), 1);
    assert_int_equal(g_nsplits, 2);
    expect_split(0, "a", 0, 300);
    expect_split(1, "a", 300, 331);
    /* a last range may hold up to 1.1 x size: 630 -> 300, 330 */
    write_file("a", blob, 630);
    plan_ok(at(1, "a"), 1);
    assert_int_equal(g_nsplits, 2);
    expect_split(1, "a", 300, 630);

    /* min_partitions sets the goal over all files: 1000 / 4 = 250 */
    set_max(128 << 20);
    write_file("a", blob, 600);
    write_file("b", blob, 400);
    write_file("c", blob, 0); /* empty: no split */
    char spec[4096];
    snprintf(spec, sizeof spec, "%s,%s,%s", at(0, "a"), at(1, "c"),
             at(2, "b"));
    plan_ok(spec, 4);
    assert_int_equal(g_nsplits, 5);
    expect_split(0, "a", 0, 250);
    expect_split(1, "a", 250, 500);
    expect_split(2, "a", 500, 600);
    expect_split(3, "b", 0, 250);
    expect_split(4, "b", 250, 400);

    /* the goal rounds up: 1000 / 3 -> 334 (400 > 1.1 x 334) */
    plan_ok(spec, 3);
    assert_int_equal(g_nsplits, 4);
    expect_split(0, "a", 0, 334);
    expect_split(1, "a", 334, 600);
    expect_split(2, "b", 0, 334);
    expect_split(3, "b", 334, 400);

    /* min_partitions 0 counts as 1; unset config: 128 MiB */
    em_fake_host_set_config(KEY, NULL);
    plan_ok(spec, 0);
    assert_int_equal(g_nsplits, 2);
    expect_split(0, "a", 0, 600);
    expect_split(1, "b", 0, 400);

    /* a size suffix; and a size of 0 still makes progress (1 byte) */
    em_fake_host_set_config(KEY, "1k");
    write_file("a", blob, 1000);
    write_file("b", blob, 1200);
    snprintf(spec, sizeof spec, "%s,%s", at(0, "a"), at(1, "b"));
    plan_ok(spec, 1);
    assert_int_equal(g_nsplits, 3);
    expect_split(0, "a", 0, 1000);
    expect_split(1, "b", 0, 1024);
    expect_split(2, "b", 1024, 1200);
    set_max(0);
    write_file("a", "xyz", 3);
    plan_ok(at(1, "a"), 1);
    assert_int_equal(g_nsplits, 3);
    expect_split(0, "a", 0, 1);
    expect_split(1, "a", 1, 2);
    expect_split(2, "a", 2, 3);

    /* a malformed config value is reported */
    em_fake_host_set_config(KEY, "lots");
    ember_error err;
    assert_int_equal(plan(at(1, "a"), 1, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, KEY));
}

/* ---- source: every line exactly once ---- */

/* Plans file g_dir/rel for every maxPartitionBytes in sizes and reads all
 * splits with each read size in reads, checking each line comes out
 * exactly once, in order. */
static void check_exactly_once(const char *rel, const char *data, size_t n,
                               const int64_t *sizes, size_t nsizes,
                               const size_t *reads, size_t nreads)
{
    for (size_t i = 0; i < nsizes; i++) {
        set_max(sizes[i]);
        plan_ok(at(1, rel), 1);
        for (size_t k = 0; k < nreads; k++) {
            read_all(reads[k]);
            expect_got(data, n);
        }
    }
}

static void test_lines_exactly_once(void **state)
{
    (void)state;
#define TEXT(s) {s, sizeof s - 1}
    static const struct {
        const char *p;
        size_t n;
    } texts[] = {
        TEXT("alpha\nbeta\ngamma\n"),
        TEXT("no final newline"),
        TEXT("one\ntwo\nthree without newline"),
        TEXT("\n\n\nempty lines\n\n"),
        TEXT("crlf\r\nline\r\n\r\nend\r\n"),
        TEXT("a\rb\r\r\n\rc\n\r"),
        TEXT("short\na much longer line that spans many small splits and "
             "more\nx\n\ny\n"),
        TEXT("\n"),
        TEXT("x"),
        TEXT("nul\0inside\n\0\n"),
    };
#undef TEXT
    static const size_t reads[] = {1, 7, 1 << 20};
    int64_t sizes[64];
    size_t nsizes = 0;
    for (int64_t s = 1; s <= 40; s++)
        sizes[nsizes++] = s;
    sizes[nsizes++] = 64;
    sizes[nsizes++] = 1000;
    ember_buf_release(&g_got);
    g_got = ember_buf_heap();
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        write_file("f", texts[t].p, texts[t].n);
        check_exactly_once("f", texts[t].p, texts[t].n, sizes, nsizes, reads,
                           sizeof reads / sizeof reads[0]);
    }
    ember_buf_release(&g_got);
}

/* Lines longer than the reader's 1 MiB buffer and lines across its
 * chunk boundaries, for split sizes around the buffer size. */
static void test_lines_long(void **state)
{
    (void)state;
    const size_t mib = (size_t)1 << 20;
    size_t n = 0, cap = 4 * mib + 64;
    char *data = malloc(cap);
    assert_non_null(data);
    /* a line of exactly one buffer minus its "\n" */
    memset(data + n, 'a', mib - 1);
    n += mib - 1;
    data[n++] = '\n';
    /* a line longer than the buffer, ending in CRLF, a NUL inside */
    memset(data + n, 'b', mib + 5);
    data[n + 77] = '\0';
    n += mib + 5;
    data[n++] = '\r';
    data[n++] = '\n';
    /* many short lines, some with a NUL or two (the reader searches each
     * byte for NULs once, across its buffer refills) */
    for (int i = 0; i < 20000; i++) {
        int w = snprintf(data + n, cap - n, "line %d\n", i);
        if (i % 97 == 0)
            data[n + 1] = '\0';
        if (i % 389 == 0)
            data[n + 3] = '\0';
        n += (size_t)w;
    }
    /* a long last line without a newline */
    memset(data + n, 'c', mib + mib / 2);
    n += mib + mib / 2;
    assert_true(n <= cap);
    write_file("big", data, n);

    static const int64_t sizes[] = {1000003, 1 << 20, 1500000, 3 << 20,
                                    128 << 20};
    static const size_t reads[] = {100000, 64 << 20};
    g_got = ember_buf_heap();
    check_exactly_once("big", data, n, sizes, sizeof sizes / sizeof sizes[0],
                       reads, sizeof reads / sizeof reads[0]);
    ember_buf_release(&g_got);
    free(data);
}

/* Splits that start exactly at a line start read that line; one that
 * starts inside a line leaves it to the split before. */
static void test_split_boundaries(void **state)
{
    (void)state;
    write_text("f", "aa\nbb\ncc\n");
    set_max(3);
    plan_ok(at(1, "f"), 1);
    assert_int_equal(g_nsplits, 3);
    g_got = ember_buf_heap();
    static const char *const each[] = {"aa\n", "bb\n", "cc\n"};
    for (size_t i = 0; i < 3; i++) {
        g_got.len = 0;
        g_got_lines = 0;
        read_split(i, 1 << 20);
        assert_int_equal(g_got_lines, 1);
        assert_int_equal(g_got.len, 3);
        assert_memory_equal(g_got.data, each[i], 3);
    }
    /* "aaaa\nb\n" in 2-byte splits: the first reads the whole long line
     * past its end, the second nothing, the third "b" (it starts on the
     * '\n' before it), the last nothing. */
    write_text("f", "aaaa\nb\n");
    set_max(2);
    plan_ok(at(1, "f"), 1);
    assert_int_equal(g_nsplits, 4);
    expect_split(2, "f", 4, 6);
    expect_split(3, "f", 6, 7);
    static const size_t lines[] = {1, 0, 1, 0};
    for (size_t i = 0; i < 4; i++) {
        g_got.len = 0;
        g_got_lines = 0;
        read_split(i, 1 << 20);
        assert_int_equal(g_got_lines, lines[i]);
    }
    ember_buf_release(&g_got);
}

/* ---- source: listing ---- */

static void test_plan_directory(void **state)
{
    (void)state;
    make_dir("in");
    write_text("in/b.txt", "b\n");
    write_text("in/a.txt", "a\n");
    write_text("in/C.log", "c\n");
    write_text("in/.hidden", "h\n");
    write_text("in/_SUCCESS", "");
    write_text("in/_part", "p\n");
    write_text("in/empty", "");
    make_dir("in/sub");
    write_text("in/sub/deep", "d\n");
    plan_ok(at(1, "in"), 1);
    assert_int_equal(g_nsplits, 3); /* sorted bytewise: C < a < b */
    expect_split(0, "in/C.log", 0, 2);
    expect_split(1, "in/a.txt", 0, 2);
    expect_split(2, "in/b.txt", 0, 2);
    /* a trailing slash changes nothing */
    char spec[4096];
    snprintf(spec, sizeof spec, "%s/", at(1, "in"));
    plan_ok(spec, 1);
    assert_int_equal(g_nsplits, 3);
    expect_split(0, "in/C.log", 0, 2);
    /* relative paths become absolute (executors may run elsewhere) */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(g_dir), 0);
    plan_ok("in/a.txt,in", 1);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(g_nsplits, 4);
    expect_split(0, "in/a.txt", 0, 2);
    expect_split(1, "in/C.log", 0, 2);
    /* a hidden file named explicitly is read */
    plan_ok(at(1, "in/.hidden"), 1);
    assert_int_equal(g_nsplits, 1);
    expect_split(0, "in/.hidden", 0, 2);
}

static void test_plan_glob_and_list(void **state)
{
    (void)state;
    make_dir("in");
    make_dir("in2");
    write_text("in/b.txt", "bb\n");
    write_text("in/a.txt", "a\n");
    write_text("in/c.dat", "c\n");
    write_text("in/_x.txt", "x\n");
    write_text("in2/z.txt", "z\n");
    plan_ok(at(1, "in/*.txt"), 1);
    assert_int_equal(g_nsplits, 2);
    expect_split(0, "in/a.txt", 0, 2);
    expect_split(1, "in/b.txt", 0, 3);
    /* a glob matching directories reads their files */
    plan_ok(at(1, "in?"), 1);
    assert_int_equal(g_nsplits, 1);
    expect_split(0, "in2/z.txt", 0, 2);
    /* a list keeps its order; each entry is sorted within */
    char spec[4096];
    snprintf(spec, sizeof spec, "%s,%s,%s", at(0, "in2"), at(1, "in/c.*"),
             at(2, "in/b.txt"));
    plan_ok(spec, 1);
    assert_int_equal(g_nsplits, 3);
    expect_split(0, "in2/z.txt", 0, 2);
    expect_split(1, "in/c.dat", 0, 2);
    expect_split(2, "in/b.txt", 0, 3);
    /* and reading them gives every line */
    g_got = ember_buf_heap();
    read_all(1 << 20);
    assert_int_equal(g_got_lines, 3);
    assert_memory_equal(g_got.data, "z\nc\nbb\n", 7);
    ember_buf_release(&g_got);
}

static void test_plan_empty_input(void **state)
{
    (void)state;
    ember_error err;
    make_dir("none");
    assert_int_equal(plan(at(1, "none"), 4, &err), EMBER_OK);
    assert_int_equal(g_nsplits, 0);
    write_text("e1", "");
    write_text("e2", "");
    char spec[4096];
    snprintf(spec, sizeof spec, "%s,%s", at(0, "e1"), at(1, "e2"));
    assert_int_equal(plan(spec, 4, &err), EMBER_OK);
    assert_int_equal(g_nsplits, 0);
    make_dir("hidden_only");
    write_text("hidden_only/.a", "a\n");
    write_text("hidden_only/_b", "b\n");
    assert_int_equal(plan(at(1, "hidden_only"), 1, &err), EMBER_OK);
    assert_int_equal(g_nsplits, 0);
}

static void test_plan_errors(void **state)
{
    (void)state;
    ember_error err;
    char want[1200];
    assert_int_equal(plan(at(1, "missing"), 1, &err), EMBER_ENOTFOUND);
    snprintf(want, sizeof want, "text: no such file or directory: '%s'",
             at(1, "missing"));
    assert_string_equal(err.msg, want);

    assert_int_equal(plan(at(1, "nothing*.txt"), 1, &err), EMBER_ENOTFOUND);
    snprintf(want, sizeof want, "text: no files match '%s'",
             at(1, "nothing*.txt"));
    assert_string_equal(err.msg, want);

    make_dir("d");
    write_text("d/_SUCCESS", "");
    assert_int_equal(plan(at(1, "d/_*"), 1, &err), EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, "text: no files match"));

    /* one missing entry in a list fails the whole plan */
    write_text("ok", "x\n");
    char spec[4096];
    snprintf(spec, sizeof spec, "%s,%s", at(0, "ok"), at(1, "gone"));
    assert_int_equal(plan(spec, 1, &err), EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, at(1, "gone")));
    snprintf(spec, sizeof spec, "%s,,%s", at(0, "ok"), at(1, "ok"));
    assert_int_equal(plan(spec, 1, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "text: empty entry"));
    assert_int_equal(plan("", 1, &err), EMBER_EINVAL);

    /* a path below a regular file */
    assert_int_equal(plan(at(1, "ok/x"), 1, &err), EMBER_ENOTFOUND);

    /* not an encoded string */
    uint64_t count = 0;
    ember_buf out = ember_buf_heap();
    uint8_t bad[] = {0x15, 0x01};
    ember_error_clear(&err);
    assert_int_equal(source()->plan(em_fake_host(), bad, sizeof bad, 1, &out,
                                    &count, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "text: bad argument"));
    assert_int_equal(source()->plan(em_fake_host(), NULL, 0, 1, &out, &count,
                                    &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "text: missing argument"));
    assert_int_equal(out.len, 0);
    ember_buf_release(&out);
}

/* A directory that cannot be listed: EMBER_EIO with the system's reason
 * (root reads anything, so there is nothing to show then). */
static void test_plan_unreadable(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip();
    make_dir("locked");
    write_text("locked/a", "a\n");
    assert_int_equal(chmod(at(1, "locked"), 0), 0);
    ember_error err;
    ember_status s = plan(at(1, "locked"), 1, &err);
    assert_int_equal(chmod(at(1, "locked"), 0700), 0);
    assert_int_equal(s, EMBER_EIO);
    assert_non_null(strstr(err.msg, at(1, "locked")));
    assert_non_null(strstr(err.msg, "Permission denied"));
}

/* A file that shrank or vanished after planning fails the reader with
 * EMBER_EIO naming it. */
static void test_reader_file_changed(void **state)
{
    (void)state;
    const ember_source_vtable *vt = source();
    ember_error err;
    void *r = NULL;
    write_text("f", "0123456789\nabc\n");
    set_max(5);
    plan_ok(at(1, "f"), 1);
    assert_true(g_nsplits >= 3);

    write_text("f", "0123\n"); /* shrank below the splits' ends */
    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), g_splits[2].rec,
                              g_splits[2].rec_len, &r, &err),
                     EMBER_EIO);
    assert_null(r);
    assert_non_null(strstr(err.msg, at(1, "f")));
    assert_non_null(strstr(err.msg, "changed"));

    assert_int_equal(unlink(at(1, "f")), 0);
    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), g_splits[0].rec,
                              g_splits[0].rec_len, &r, &err),
                     EMBER_EIO);
    assert_non_null(strstr(err.msg, at(1, "f")));
    assert_non_null(strstr(err.msg, "No such file"));

    /* bad split records */
    uint8_t mem[64];
    ember_buf b = ember_buf_fixed(mem, sizeof mem);
    assert_int_equal(ember_rec_put_string(&b, "x", 1), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, 5), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&b, 4), EMBER_OK); /* end < start */
    assert_int_equal(vt->open(em_fake_host(), mem, b.len, &r, &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "text: bad split"));
    assert_int_equal(vt->open(em_fake_host(), mem, 3, &r, &err),
                     EMBER_EINVAL);
    vt->close(NULL);
}

/* A file that shrinks while being read: EMBER_EIO, and the reader stays
 * failed. */
static void test_reader_shrinks_while_reading(void **state)
{
    (void)state;
    const ember_source_vtable *vt = source();
    const size_t n = (3u << 20) + 100;
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (i % 64 == 63) ? '\n' : 'q';
    write_file("f", data, n);
    free(data);
    plan_ok(at(1, "f"), 1);
    assert_int_equal(g_nsplits, 1);
    void *r = NULL;
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), g_splits[0].rec,
                              g_splits[0].rec_len, &r, &err),
                     EMBER_OK);
    ember_buf out = ember_buf_heap();
    uint64_t count = 0;
    assert_int_equal(vt->read(r, 1000, &out, &count, &err), EMBER_OK);
    assert_true(count > 0);
    assert_int_equal(truncate(at(1, "f"), 1 << 20), 0);
    ember_status s;
    do {
        out.len = 0;
        s = vt->read(r, 1 << 20, &out, &count, &err);
    } while (s == EMBER_OK);
    assert_int_equal(s, EMBER_EIO);
    assert_non_null(strstr(err.msg, at(1, "f")));
    assert_int_equal(vt->read(r, 1 << 20, &out, &count, &err), EMBER_EIO);
    vt->close(r);
    ember_buf_release(&out);
}

/* ---- the sink ---- */

static const ember_sink_vtable *sink(void)
{
    return only_component(ember_plugin_entry_textout(), "textout", "files",
                          EMBER_KIND_SINK);
}

/* Records to write, as a batch. */
static ember_buf g_batch;
static uint64_t g_batch_count;
static ember_buf g_rec;

static void rec_begin(void)
{
    g_rec.len = 0;
}

static void rec_done(void)
{
    assert_int_equal(ember_batch_append(&g_batch, g_rec.data, g_rec.len),
                     EMBER_OK);
    g_batch_count++;
}

/* Opens the sink on g_dir/rel for (partition, attempt). */
static ember_status open_sink(const char *rel, uint32_t partition,
                              uint32_t attempt, void **w, ember_error *err)
{
    uint8_t argmem[600];
    ember_buf arg = ember_buf_fixed(argmem, sizeof argmem);
    const char *dir = at(2, rel);
    assert_int_equal(ember_rec_put_string(&arg, dir, strlen(dir)), EMBER_OK);
    ember_error_clear(err);
    *w = NULL;
    return sink()->open(em_fake_host(), arg.data, arg.len, partition,
                        attempt, w, err);
}

static void *open_sink_ok(const char *rel, uint32_t partition,
                          uint32_t attempt)
{
    ember_error err;
    void *w = NULL;
    if (open_sink(rel, partition, attempt, &w, &err) != EMBER_OK)
        fail_msg("open sink: %s", err.msg);
    return w;
}

/* Writes g_batch to w. */
static void write_batch(void *w)
{
    ember_batch b = {g_batch.data, g_batch.len, g_batch_count};
    ember_error err;
    ember_error_clear(&err);
    if (sink()->write(w, &b, &err) != EMBER_OK)
        fail_msg("write: %s", err.msg);
}

/* Checks g_dir/rel holds exactly text. */
static void expect_file(const char *rel, const char *text, size_t n)
{
    size_t got_n = 0;
    char *got = read_whole(rel, &got_n);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, text, n);
    free(got);
}

static int sink_setup(void **state)
{
    if (setup(state) != 0)
        return -1;
    g_batch = ember_buf_heap();
    g_rec = ember_buf_heap();
    g_batch_count = 0;
    make_dir("out");
    return 0;
}

static int sink_teardown(void **state)
{
    ember_buf_release(&g_batch);
    ember_buf_release(&g_rec);
    return teardown(state);
}

static void test_sink_commit(void **state)
{
    (void)state;
    const ember_sink_vtable *vt = sink();
    void *w = open_sink_ok("out", 3, 1);
    assert_true(exists("out/_temporary/3-1/part-00003"));
    assert_false(exists("out/part-00003"));
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "hello", 5), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "world", 5), EMBER_OK);
    rec_done();
    write_batch(w);
    write_batch(w); /* twice */
    assert_false(exists("out/part-00003"));
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(vt->commit(w, &err), EMBER_OK);
    expect_file("out/part-00003", "hello\nworld\nhello\nworld\n", 24);
    assert_false(exists("out/_temporary/3-1"));

    /* an empty partition commits an empty file; a big partition number
     * gets more digits */
    w = open_sink_ok("out", 123456, 0);
    ember_error_clear(&err);
    assert_int_equal(vt->commit(w, &err), EMBER_OK);
    expect_file("out/part-123456", "", 0);
}

static void test_sink_abort(void **state)
{
    (void)state;
    const ember_sink_vtable *vt = sink();
    void *w = open_sink_ok("out", 0, 0);
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "gone", 4), EMBER_OK);
    rec_done();
    write_batch(w);
    vt->abort(w);
    assert_false(exists("out/part-00000"));
    assert_false(exists("out/_temporary/0-0"));
    vt->abort(NULL);

    /* two attempts of one partition: only the committed one shows */
    void *a = open_sink_ok("out", 7, 0);
    void *b = open_sink_ok("out", 7, 1);
    write_batch(a);
    write_batch(b);
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(vt->commit(b, &err), EMBER_OK);
    vt->abort(a);
    expect_file("out/part-00007", "gone\n", 5);
    assert_false(exists("out/_temporary/7-0"));
    assert_false(exists("out/_temporary/7-1"));

    /* committing over an existing part file is refused */
    a = open_sink_ok("out", 7, 2);
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "late", 4), EMBER_OK);
    rec_done();
    write_batch(a);
    ember_error_clear(&err);
    assert_int_equal(vt->commit(a, &err), EMBER_EEXIST);
    assert_non_null(strstr(err.msg, "part-00007"));
    expect_file("out/part-00007", "gone\n", 5);
    assert_false(exists("out/_temporary/7-2"));
}

static void test_sink_rendering(void **state)
{
    (void)state;
    const ember_sink_vtable *vt = sink();
    static const char want[] =
        "plain\n"
        "42\n"
        "(a,1)\n"
        "((k,-7),2.5)\n"
        "()\n"
        "(null,true,false)\n"
        "{\"base64\":\"aGk=\"}\n"
        "1.0\n"
        "(NaN,Infinity,-Infinity)\n"
        "(x)\n"
        "a\0b\n"
        "(-9223372036854775808,1e+300,\"q\")\n"
        "((),(1,(2,(3))))\n";
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "plain", 5), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_int(&g_rec, 42), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "a", 1), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&g_rec, 1), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&g_rec, "k", 1), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&g_rec, -7), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&g_rec, 2.5), EMBER_OK);
    rec_done();
    rec_begin(); /* the empty record */
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_null(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&g_rec, 1), EMBER_OK);
    assert_int_equal(ember_rec_put_bool(&g_rec, 0), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_bytes(&g_rec, "hi", 2), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_double(&g_rec, 1.0), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_double(&g_rec, NAN), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&g_rec, INFINITY), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&g_rec, -INFINITY), EMBER_OK);
    rec_done();
    rec_begin(); /* a nested one-tuple keeps its parentheses */
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&g_rec, "x", 1), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_put_string(&g_rec, "a\0b", 3), EMBER_OK);
    rec_done();
    rec_begin(); /* strings in tuples are raw too */
    assert_int_equal(ember_rec_put_int(&g_rec, INT64_MIN), EMBER_OK);
    assert_int_equal(ember_rec_put_double(&g_rec, 1e300), EMBER_OK);
    assert_int_equal(ember_rec_put_string(&g_rec, "\"q\"", 3), EMBER_OK);
    rec_done();
    rec_begin();
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&g_rec, 1), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&g_rec, 2), EMBER_OK);
    assert_int_equal(ember_rec_tuple_begin(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_put_int(&g_rec, 3), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    assert_int_equal(ember_rec_tuple_end(&g_rec), EMBER_OK);
    rec_done();
    void *w = open_sink_ok("out", 1, 0);
    write_batch(w);
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(vt->commit(w, &err), EMBER_OK);
    expect_file("out/part-00001", want, sizeof want - 1);
}

/* More than the 1 MiB buffer, written in several batches. */
static void test_sink_large(void **state)
{
    (void)state;
    const ember_sink_vtable *vt = sink();
    char line[100];
    memset(line, 'v', sizeof line);
    void *w = open_sink_ok("out", 2, 0);
    for (int batch = 0; batch < 30; batch++) {
        g_batch.len = 0;
        g_batch_count = 0;
        for (int i = 0; i < 1000; i++) {
            rec_begin();
            assert_int_equal(ember_rec_put_string(&g_rec, line, sizeof line),
                             EMBER_OK);
            rec_done();
        }
        write_batch(w);
    }
    ember_error err;
    ember_error_clear(&err);
    assert_int_equal(vt->commit(w, &err), EMBER_OK);
    size_t n = 0;
    char *got = read_whole("out/part-00002", &n);
    assert_int_equal(n, 30 * 1000 * (sizeof line + 1));
    for (size_t i = 0; i < n; i += sizeof line + 1) {
        assert_memory_equal(got + i, line, sizeof line);
        assert_int_equal(got[i + sizeof line], '\n');
    }
    free(got);
}

static void test_sink_errors(void **state)
{
    (void)state;
    const ember_sink_vtable *vt = sink();
    ember_error err;
    void *w = (void *)&err;
    uint8_t bad[] = {0x15, 0x01};
    ember_error_clear(&err);
    assert_int_equal(vt->open(em_fake_host(), bad, sizeof bad, 0, 0, &w, &err),
                     EMBER_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err.msg, "textout: bad argument"));
    /* the output directory must exist (the driver makes it) */
    assert_int_equal(open_sink("no/such/dir", 0, 0, &w, &err), EMBER_EIO);
    assert_non_null(strstr(err.msg, "textout: cannot create"));
    assert_null(w);
    /* a malformed batch or record */
    w = open_sink_ok("out", 0, 0);
    uint8_t frame[] = {0x05, 0x28};
    ember_batch b = {frame, sizeof frame, 1};
    ember_error_clear(&err);
    assert_int_equal(vt->write(w, &b, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "textout: malformed batch"));
    uint8_t rec[] = {0x02, 0x28, 'x'};
    ember_batch b2 = {rec, sizeof rec, 1};
    assert_int_equal(vt->write(w, &b2, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "textout: malformed record 0"));
    vt->abort(w);
    assert_false(exists("out/_temporary/0-0"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define S(f) cmocka_unit_test_setup_teardown(f, sink_setup, sink_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_plan_split_math),
        T(test_lines_exactly_once),
        T(test_lines_long),
        T(test_split_boundaries),
        T(test_plan_directory),
        T(test_plan_glob_and_list),
        T(test_plan_empty_input),
        T(test_plan_errors),
        T(test_plan_unreadable),
        T(test_reader_file_changed),
        T(test_reader_shrinks_while_reading),
        S(test_sink_commit),
        S(test_sink_abort),
        S(test_sink_rendering),
        S(test_sink_large),
        S(test_sink_errors),
    };
    return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
