/*
 * driver_support.c — sessions, actions and the word count shared by the
 * engine and service tests (see driver_support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_support.h"
#include "ember/kernel/host.h"

/* ---- sessions and actions ---------------------------------------------- */

ember_session *session_open(const char *master, const char *app,
                            const char *const *conf, const char *plugin)
{
    const char *plugins[] = {plugin, NULL};
    ember_session_opts o = {.master = master,
                            .app_name = app,
                            .conf = conf,
                            .plugins = plugin ? plugins : NULL};
    ember_error err = {0};
    ember_session *s = NULL;
    ember_status st = ember_session_open(&s, &o, &err);
    if (st != EMBER_OK)
        fail_msg("ember_session_open(%s): %s (%s)", master, err.msg,
                 ember_status_name(st));
    return s;
}

ember_fn fn0(const char *name)
{
    return (ember_fn){name, NULL, 0};
}

ember_fn fn_int(const char *name, uint8_t *tmp, size_t cap, int64_t v)
{
    ember_buf b = ember_buf_fixed(tmp, cap);
    assert_int_equal(ember_rec_put_int(&b, v), EMBER_OK);
    return (ember_fn){name, tmp, b.len};
}

ember_records collect_recs(ember_rdd *r)
{
    ember_records rec = {0};
    ember_error err = {0};
    assert_non_null(r);
    ember_status st = ember_collect(r, &rec, &err);
    if (st != EMBER_OK)
        fail_msg("collect: %s (%s)", err.msg, ember_status_name(st));
    return rec;
}

const char *collect_error(ember_rdd *r, ember_status *code)
{
    static char msg[EMBER_ERROR_MAX];
    ember_records rec = {0};
    ember_error err = {0};
    assert_non_null(r);
    ember_status st = ember_collect(r, &rec, &err);
    ember_records_free(&rec);
    if (st == EMBER_OK)
        fail_msg("collect succeeded; an error was expected");
    if (code)
        *code = st;
    snprintf(msg, sizeof msg, "%s", err.msg);
    return msg;
}

uint64_t count_of(ember_rdd *r)
{
    uint64_t n = UINT64_MAX;
    ember_error err = {0};
    assert_non_null(r);
    if (ember_count(r, &n, &err) != EMBER_OK)
        fail_msg("count: %s", err.msg);
    return n;
}

const char *const g_timeout_conf[] = {"ember.task.timeout=200ms",
                                      "ember.result.batchBytes=4k", NULL};

const char *count_past_timeout(ember_session *s, ember_rdd **quick)
{
    static char msg[EMBER_ERROR_MAX];
    ember_error err = {0};
    uint8_t arg[16];
    uint64_t n = 0;
    ember_rdd *r = ember_range(s, 0, 40000, 1, 1, &err);
    ember_rdd *slow =
        ember_map(r, fn_int("testfn.sleep_ms", arg, sizeof arg, 50), &err);
    assert_non_null(slow);
    assert_int_not_equal(ember_count(slow, &n, &err), EMBER_OK);
    snprintf(msg, sizeof msg, "%s", err.msg);
    if (quick)
        *quick = r;
    return msg;
}

static void *bg_main(void *arg)
{
    bg_action *a = arg;
    if (a->collect)
        a->st = ember_collect(a->rdd, &a->out, &a->err);
    else
        a->st = ember_count(a->rdd, &a->n, &a->err);
    return NULL;
}

void bg_start(bg_action *a, ember_rdd *rdd, int collect)
{
    *a = (bg_action){.rdd = rdd, .collect = collect, .st = EMBER_OK};
    assert_non_null(rdd);
    assert_int_equal(pthread_create(&a->thread, NULL, bg_main, a), 0);
}

void bg_join(bg_action *a)
{
    pthread_join(a->thread, NULL);
}

/* ---- records ----------------------------------------------------------- */

ember_batch_cursor records_cursor(const ember_records *r)
{
    ember_batch b = {r->data, r->len, r->count};
    return ember_batch_cursor_of(&b);
}

int next_pair(ember_batch_cursor *c, ember_value *k, ember_value *v)
{
    const uint8_t *rec;
    size_t len;
    if (ember_batch_next(c, &rec, &len) != EMBER_OK)
        return 0;
    *k = (ember_value){0};
    *v = (ember_value){0};
    assert_int_equal(ember_rec_get(rec, len, 0, k), EMBER_OK);
    assert_int_equal(ember_rec_get(rec, len, 1, v), EMBER_OK);
    return 1;
}

char *records_json(const ember_records *r, int sorted)
{
    ember_batch_cursor c = records_cursor(r);
    rec_span *sp = calloc(r->count + 1, sizeof *sp);
    size_t n = 0;
    assert_non_null(sp);
    while (n <= r->count &&
           ember_batch_next(&c, &sp[n].p, &sp[n].len) == EMBER_OK)
        n++;
    assert_int_equal(n, r->count);
    if (sorted)
        sort_rec_spans(sp, n);
    ember_buf out = ember_buf_heap();
    for (size_t i = 0; i < n; i++) {
        if (i)
            assert_int_equal(ember_buf_put_u8(&out, ' '), EMBER_OK);
        assert_int_equal(ember_rec_json(&out, sp[i].p, sp[i].len), EMBER_OK);
    }
    assert_int_equal(ember_buf_put_u8(&out, '\0'), EMBER_OK);
    free(sp);
    char *t = strdup((const char *)out.data);
    ember_buf_release(&out);
    assert_non_null(t);
    return t;
}

char *collect_json(ember_rdd *r, int sorted)
{
    ember_records rec = collect_recs(r);
    char *t = records_json(&rec, sorted);
    ember_records_free(&rec);
    return t;
}

/* Appends the formatted text to out (the test fails when it cannot). */
static void buf_printf(ember_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(ember_buf *out, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof tmp);
    assert_int_equal(ember_buf_append(out, tmp, (size_t)k), EMBER_OK);
}

/* out's text, NUL-terminated, as a malloc'd string; releases out. */
static char *buf_string(ember_buf *out)
{
    assert_int_equal(ember_buf_put_u8(out, '\0'), EMBER_OK);
    char *t = strdup((const char *)out->data);
    ember_buf_release(out);
    assert_non_null(t);
    return t;
}

char *ints_json(int64_t n)
{
    ember_buf out = ember_buf_heap();
    for (int64_t i = 0; i < n; i++)
        buf_printf(&out, "%s[%" PRId64 "]", i ? " " : "", i);
    return buf_string(&out);
}

char *mod_sums_json(int64_t n, int64_t m)
{
    ember_buf out = ember_buf_heap();
    for (int64_t key = 0; key < m; key++) {
        int64_t s = 0;
        for (int64_t i = key; i < n; i += m)
            s += i;
        buf_printf(&out, "%s[%" PRId64 ",%" PRId64 "]", key ? " " : "", key,
                   s);
    }
    return buf_string(&out);
}

char *lineage_of(const ember_rdd *r)
{
    ember_error err = {0};
    char *d = NULL;
    if (ember_rdd_describe(r, &d, &err) != EMBER_OK)
        fail_msg("describe: %s", err.msg);
    assert_non_null(d);
    return d;
}

/* ---- the test plugin testfn -------------------------------------------- */

ember_rdd *counted_range(ember_session *s, int64_t n)
{
    ember_error err = {0};
    ember_rdd *r = ember_range(s, 0, n, 1, 2, &err);
    if (!r)
        fail_msg("range: %s", err.msg);
    ember_rdd *m = ember_map(r, fn0("testfn.counted"), &err);
    if (!m)
        fail_msg("map: %s", err.msg);
    return m;
}

int64_t testfn_counted(void)
{
    int64_t v = 0;
    /* EMBER_ENOTFOUND until its first task registers it: 0 */
    (void)em_host_counter_value("testfn.counted", &v);
    return v;
}

/* ---- word count -------------------------------------------------------- */

char *join_sorted_lines(char **lines, size_t n)
{
    sort_strs(lines, n);
    char *out = join_strs(lines, n, "\n", "\n");
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    return out;
}

char *word_counts_text(const ember_records *counts)
{
    char **lines = calloc(counts->count + 1, sizeof *lines);
    ember_batch_cursor c = records_cursor(counts);
    ember_value w, k;
    size_t n = 0;
    assert_non_null(lines);
    while (n < counts->count && next_pair(&c, &w, &k)) {
        assert_int_equal(w.type, EMBER_TYPE_STRING);
        assert_int_equal(k.type, EMBER_TYPE_INT);
        char word[64] = {0}, line[96];
        assert_true(w.u.str.len < sizeof word);
        ember_rec_string_copy(&w, word, w.u.str.len);
        snprintf(line, sizeof line, "%s\t%" PRId64, word, k.u.i64);
        lines[n] = strdup(line);
        assert_non_null(lines[n++]);
    }
    char *text = join_sorted_lines(lines, n);
    free(lines);
    return text;
}

char *count_words(ember_session *s, const char *path, uint32_t slices)
{
    ember_error err = {0};
    ember_rdd *lines = ember_text_file(s, path, slices, &err);
    if (!lines)
        fail_msg("text_file: %s", err.msg);
    ember_rdd *words = ember_flat_map(lines, fn0("std.split_words"), &err);
    assert_non_null(words);
    ember_records counts = {0};
    if (ember_count_by_value(words, &counts, &err) != EMBER_OK)
        fail_msg("count_by_value: %s", err.msg);
    char *text = word_counts_text(&counts);
    ember_records_free(&counts);
    return text;
}
