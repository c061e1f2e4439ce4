/*
 * Unit tests of the configuration layers: defaults files (real files in a
 * mkdtemp directory), --conf flags, EMBER_CONF_DIR, the known-key check and
 * the --verbose listing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/kernel/conf.h"

/* ---- Fixture: a temporary directory and the files written into it ---- */

typedef struct fixture {
    char dir[64];
    char *files[16];
    size_t nfiles;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/ember-conf-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    unsetenv("EMBER_CONF_DIR");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < f->nfiles; i++) {
        unlink(f->files[i]);
        free(f->files[i]);
    }
    rmdir(f->dir);
    free(f);
    unsetenv("EMBER_CONF_DIR");
    return 0;
}

/* Writes len bytes of text to DIR/name; returns the path (fixture-owned). */
static const char *write_bytes(fixture *f, const char *name, const char *text,
                               size_t len)
{
    char *path = malloc(strlen(f->dir) + strlen(name) + 2);
    assert_non_null(path);
    sprintf(path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    assert_true(f->nfiles < sizeof f->files / sizeof f->files[0]);
    f->files[f->nfiles++] = path;
    return path;
}

static const char *write_file(fixture *f, const char *name, const char *text)
{
    return write_bytes(f, name, text, strlen(text));
}

/* Asserts that key's value and origin are as given. */
static void expect(const em_conf *c, const char *key, const char *value,
                   const char *origin)
{
    char buf[512];
    size_t len;
    assert_int_equal(em_conf_get(c, key, buf, sizeof buf, &len), EMBER_OK);
    assert_string_equal(buf, value);
    assert_int_equal(em_conf_origin(c, key, buf, sizeof buf), EMBER_OK);
    assert_string_equal(buf, origin);
}

static char *origin_of(const char *path, int line)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s:%d", path, line);
    return buf;
}

/* ---- The defaults file ---- */

static void test_line_forms(void **state)
{
    fixture *f = *state;
    const char *path = write_file(
        f, "forms.conf",
        "# ember defaults\n"                              /* 1 */
        "\n"                                              /* 2 */
        "ember.master local[4]\n"                         /* 3 */
        "ember.app.name=wordcount\n"                      /* 4 */
        "ember.executor.memory = 2g\n"                    /* 5 */
        "   \t\n"                                         /* 6 */
        "  # an indented comment\n"                       /* 7 */
        "ember.local.dir\t/var/tmp/ember  \t \n"          /* 8 */
        "ember.scheduler.pool   team a # not a comment\r\n" /* 9 */
        "ember.plugin.x.opt  a=b\r\n"                     /* 10 */
        "ember.task.maxFailures 2\n"                      /* 11 */
        "ember.task.maxFailures 3");                      /* 12, no '\n' */
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_file(c, path, &err), EMBER_OK);
    expect(c, "ember.master", "local[4]", origin_of(path, 3));
    expect(c, "ember.app.name", "wordcount", origin_of(path, 4));
    expect(c, "ember.executor.memory", "2g", origin_of(path, 5));
    expect(c, "ember.local.dir", "/var/tmp/ember", origin_of(path, 8));
    expect(c, "ember.scheduler.pool", "team a # not a comment",
           origin_of(path, 9));
    expect(c, "ember.plugin.x.opt", "a=b", origin_of(path, 10));
    /* A key repeated later in the file wins. */
    expect(c, "ember.task.maxFailures", "3", origin_of(path, 12));
    char buf[64];
    size_t len;
    assert_int_equal(em_conf_get(c, "#", buf, sizeof buf, &len),
                     EMBER_ENOTFOUND);
    em_conf_destroy(c);
}

static void test_bom_and_empty_file(void **state)
{
    fixture *f = *state;
    const char *bom = write_file(f, "bom.conf", "\xef\xbb\xbf" "ember.master x\n");
    const char *empty = write_file(f, "empty.conf", "");
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_file(c, bom, &err), EMBER_OK);
    expect(c, "ember.master", "x", origin_of(bom, 1));
    assert_int_equal(em_conf_load_file(c, empty, &err), EMBER_OK);
    expect(c, "ember.master", "x", origin_of(bom, 1));
    em_conf_destroy(c);
}

/* Loads text as a file and expects EMBER_EINVAL with "PATH:LINE: ..." and
 * every word of want in the message; the conf must stay unchanged. */
static void expect_file_error(fixture *f, const char *name, const char *text,
                              size_t len, int line, const char *want)
{
    const char *path = write_bytes(f, name, text, len);
    em_conf *c;
    ember_error err;
    char buf[64];
    size_t n;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_set(c, "ember.master", "before", "code", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_load_file(c, path, &err), EMBER_EINVAL);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
    if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, prefix);
    if (!strstr(err.msg, want))
        fail_msg("message '%s' lacks '%s'", err.msg, want);
    /* All or nothing: earlier good lines were not applied. */
    expect(c, "ember.master", "before", "code");
    assert_int_equal(em_conf_get(c, "ember.app.name", buf, sizeof buf, &n),
                     EMBER_ENOTFOUND);
    em_conf_destroy(c);
}

static void test_file_errors(void **state)
{
    fixture *f = *state;
    static const char novalue[] = "ember.master local\n"
                                  "ember.app.name a\n"
                                  "ember.executor.memory   \n";
    expect_file_error(f, "novalue.conf", novalue, sizeof novalue - 1, 3,
                      "key 'ember.executor.memory' has no value");
    static const char novalue_eq[] = "ember.app.name a\n"
                                     "ember.master =  \r\n";
    expect_file_error(f, "novalue-eq.conf", novalue_eq, sizeof novalue_eq - 1,
                      2, "has no value");
    static const char colon[] = "ember.app.name a\n"
                                "ember.master: local\n";
    expect_file_error(f, "colon.conf", colon, sizeof colon - 1, 2,
                      "key 'ember.master:' contains ':'");
    static const char nokey[] = "ember.app.name a\n"
                                "\n"
                                " = local\n";
    expect_file_error(f, "nokey.conf", nokey, sizeof nokey - 1, 3,
                      "without a key");
    static const char nul[] = "ember.app.name a\n"
                              "# fine\n"
                              "\n"
                              "ember.master lo\0cal\n";
    expect_file_error(f, "nul.conf", nul, sizeof nul - 1, 4, "NUL byte");
    static const char latin1[] = "ember.app.name a\n"
                                 "ember.master caf\xe9\n";
    expect_file_error(f, "latin1.conf", latin1, sizeof latin1 - 1, 2,
                      "not valid UTF-8 at byte 17");
    static const char surrogate[] = "ember.app.name \xed\xa0\x80\n";
    expect_file_error(f, "surrogate.conf", surrogate, sizeof surrogate - 1,
                      1, "not valid UTF-8");
    static const char overlong[] = "ember.app.name a\n"
                                   "ember.master \xc0\xaf\n";
    expect_file_error(f, "overlong.conf", overlong, sizeof overlong - 1, 2,
                      "not valid UTF-8");
    /* Valid UTF-8 is accepted, multi-byte characters included. */
    const char *utf8 = write_file(f, "utf8.conf",
                                  "ember.app.name caf\xc3\xa9 \xf0\x9f\x94\xa5\n");
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_file(c, utf8, &err), EMBER_OK);
    expect(c, "ember.app.name", "caf\xc3\xa9 \xf0\x9f\x94\xa5",
           origin_of(utf8, 1));
    em_conf_destroy(c);
}

static void test_long_lines(void **state)
{
    fixture *f = *state;
    /* A value of exactly 64 KiB of line is fine; one byte more is not. */
    const size_t max = 64 * 1024;
    const char head[] = "ember.app.name a\nember.master ";
    size_t vlen = max - (sizeof "ember.master " - 1);
    size_t total = sizeof head - 1 + vlen + 1;
    char *text = malloc(total + 2);
    assert_non_null(text);
    memcpy(text, head, sizeof head - 1);
    memset(text + sizeof head - 1, 'x', vlen);
    text[total - 1] = '\n';
    const char *ok = write_bytes(f, "max.conf", text, total);
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_file(c, ok, &err), EMBER_OK);
    size_t len;
    assert_int_equal(em_conf_get(c, "ember.master", NULL, 0, &len),
                     EMBER_ENOSPC);
    assert_int_equal(len, vlen);
    em_conf_destroy(c);
    /* One byte over. */
    memset(text + sizeof head - 1, 'x', vlen + 1);
    text[total] = '\n';
    expect_file_error(f, "long.conf", text, total + 1, 2,
                      "line is longer than 65536 bytes");
    free(text);
}

static void test_missing_and_unreadable(void **state)
{
    fixture *f = *state;
    em_conf *c;
    ember_error err;
    char path[128];
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    snprintf(path, sizeof path, "%s/none.conf", f->dir);
    assert_int_equal(em_conf_load_file(c, path, &err), EMBER_ENOTFOUND);
    char want[192];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err.msg, want);
    /* A directory opens but cannot be read as a file. */
    assert_int_equal(em_conf_load_file(c, f->dir, &err), EMBER_EIO);
    assert_non_null(strstr(err.msg, f->dir));
    assert_int_equal(em_conf_load_file(c, "", &err), EMBER_EINVAL);
    em_conf_destroy(c);
}

/* ---- Flags and layering ---- */

static void test_flags(void **state)
{
    (void)state;
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "ember.master=local[2]", &err),
                     EMBER_OK);
    expect(c, "ember.master", "local[2]", "--conf");
    /* Split at the first '='; the value may hold more, or be empty. */
    assert_int_equal(
        em_conf_set_flag(c, "ember.executorEnv.OPTS=-Da=b c", &err), EMBER_OK);
    expect(c, "ember.executorEnv.OPTS", "-Da=b c", "--conf");
    assert_int_equal(em_conf_set_flag(c, "ember.plugins.path=", &err),
                     EMBER_OK);
    expect(c, "ember.plugins.path", "", "--conf");

    assert_int_equal(em_conf_set_flag(c, "ember.master", &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "--conf 'ember.master': expected key=value");
    assert_int_equal(em_conf_set_flag(c, "=local", &err), EMBER_EINVAL);
    assert_string_equal(err.msg, "--conf '=local': expected key=value");
    assert_int_equal(em_conf_set_flag(c, "", &err), EMBER_EINVAL);
    assert_int_equal(em_conf_set_flag(c, NULL, &err), EMBER_EINVAL);
    assert_int_equal(em_conf_set_flag(c, "ember.master =x", &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "--conf 'ember.master =x'"));
    expect(c, "ember.master", "local[2]", "--conf");
    em_conf_destroy(c);
}

static void test_precedence(void **state)
{
    fixture *f = *state;
    const char *path = write_file(f, "ember-defaults.conf",
                                  "ember.master local[1]\n"
                                  "ember.app.name from-file\n"
                                  "ember.executor.memory 4g\n");
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    /* Layers in order, lowest first: file, flags, code. */
    assert_int_equal(em_conf_load_defaults(c, path, &err), EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "ember.master=local[8]", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "ember.app.name=from-flag", &err),
                     EMBER_OK);
    assert_int_equal(
        em_conf_set(c, "ember.app.name", "from-code", "code", &err), EMBER_OK);
    expect(c, "ember.executor.memory", "4g", origin_of(path, 3));
    expect(c, "ember.master", "local[8]", "--conf");
    expect(c, "ember.app.name", "from-code", "code");
    em_conf_destroy(c);
}

static void test_defaults_sources(void **state)
{
    fixture *f = *state;
    em_conf *c;
    ember_error err;
    char buf[64];
    size_t len;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    /* No EMBER_CONF_DIR and no --properties-file: nothing, no error. */
    assert_int_equal(em_conf_load_defaults(c, NULL, &err), EMBER_OK);
    /* EMBER_CONF_DIR without the file is fine too. */
    assert_int_equal(setenv("EMBER_CONF_DIR", f->dir, 1), 0);
    assert_int_equal(em_conf_load_defaults(c, NULL, &err), EMBER_OK);
    assert_int_equal(em_conf_get(c, "ember.master", buf, sizeof buf, &len),
                     EMBER_ENOTFOUND);
    /* A missing --properties-file is an error. */
    char missing[128];
    snprintf(missing, sizeof missing, "%s/props.conf", f->dir);
    assert_int_equal(em_conf_load_defaults(c, missing, &err),
                     EMBER_ENOTFOUND);
    assert_non_null(strstr(err.msg, missing));
    /* With the file, EMBER_CONF_DIR/ember-defaults.conf is read... */
    const char *dflt = write_file(f, "ember-defaults.conf",
                                  "ember.master local[3]\n");
    assert_int_equal(em_conf_load_defaults(c, NULL, &err), EMBER_OK);
    expect(c, "ember.master", "local[3]", origin_of(dflt, 1));
    /* ...also with a trailing '/', naming the file the same way... */
    char slash[80];
    snprintf(slash, sizeof slash, "%s/", f->dir);
    assert_int_equal(setenv("EMBER_CONF_DIR", slash, 1), 0);
    em_conf_destroy(c);
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_defaults(c, NULL, &err), EMBER_OK);
    expect(c, "ember.master", "local[3]", origin_of(dflt, 1));
    /* ...and --properties-file replaces it rather than adding to it. */
    const char *props = write_file(f, "props.conf", "ember.app.name p\n");
    em_conf_destroy(c);
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_defaults(c, props, &err), EMBER_OK);
    expect(c, "ember.app.name", "p", origin_of(props, 1));
    assert_int_equal(em_conf_get(c, "ember.master", buf, sizeof buf, &len),
                     EMBER_ENOTFOUND);
    /* Errors in the EMBER_CONF_DIR file are reported. */
    write_file(f, "ember-defaults.conf", "ember.master\n");
    assert_int_equal(em_conf_load_defaults(c, NULL, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, origin_of(dflt, 1)));
    em_conf_destroy(c);
}

/* ---- em_conf_check ---- */

typedef struct report {
    size_t n;
    char origin[8][256];
    char key[8][128];
    char msg[8][512];
} report;

static void collect(void *ctx, const char *origin, const char *key,
                    const char *message)
{
    report *r = ctx;
    assert_true(r->n < 8);
    snprintf(r->origin[r->n], sizeof r->origin[0], "%s", origin);
    snprintf(r->key[r->n], sizeof r->key[0], "%s", key);
    snprintf(r->msg[r->n], sizeof r->msg[0], "%s", message);
    r->n++;
}

static void test_check(void **state)
{
    fixture *f = *state;
    const char *path = write_file(
        f, "check.conf",
        "# problems on lines 4, 7, 8, 9 and 10\n"     /* 1 */
        "ember.master local[2]\n"                     /* 2 */
        "ember.plugin.logparse.mode strict\n"         /* 3 */
        "ember.executor.memory 12q\n"                 /* 4 */
        "ember.executorEnv.LD_LIBRARY_PATH /opt/lib\n" /* 5 */
        "ember.scheduler.mode fair\n"                 /* 6 */
        "ember.exeutor.memory 2g\n"                   /* 7 */
        "ember.task.maxFailures 0\n"                  /* 8 */
        "spark.executor.cores 2\n"                    /* 9 */
        "ember.speculation maybe\n");                 /* 10 */
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_load_file(c, path, &err), EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "ember.hadoop.fs.defaultFS=x", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "colour=blue", &err), EMBER_OK);
    assert_int_equal(em_conf_set(c, "ember.zzz.unheard.of", "1", "code", &err),
                     EMBER_OK);
    report r = {0};
    assert_int_equal(em_conf_check(c, collect, &r), 7);
    assert_int_equal(r.n, 7);
    /* In the order the keys were set. */
    assert_string_equal(r.origin[0], origin_of(path, 4));
    assert_string_equal(r.key[0], "ember.executor.memory");
    assert_string_equal(r.msg[0], "ember.executor.memory: '12q' is not a "
                                  "valid size (e.g. 512m, 2g)");
    assert_string_equal(r.origin[1], origin_of(path, 7));
    assert_string_equal(r.key[1], "ember.exeutor.memory");
    assert_string_equal(r.msg[1], "unknown configuration key "
                                  "'ember.exeutor.memory' (did you mean "
                                  "'ember.executor.memory'?)");
    assert_string_equal(r.origin[2], origin_of(path, 8));
    assert_string_equal(r.msg[2],
                        "ember.task.maxFailures: 0 is out of range (1..65535)");
    assert_string_equal(r.origin[3], origin_of(path, 9));
    assert_string_equal(r.msg[3], "'spark.executor.cores' is not an ember key "
                                  "(did you mean 'ember.executor.cores'?)");
    assert_string_equal(r.origin[4], origin_of(path, 10));
    assert_non_null(strstr(r.msg[4], "'maybe' is not a boolean"));
    assert_string_equal(r.origin[5], "--conf");
    assert_string_equal(r.key[5], "colour");
    assert_non_null(strstr(r.msg[5], "'colour' is not an ember key"));
    assert_string_equal(r.origin[6], "code");
    assert_string_equal(r.msg[6],
                        "unknown configuration key 'ember.zzz.unheard.of'");
    /* Fixing the problems leaves a clean configuration. */
    em_conf *good;
    assert_int_equal(em_conf_create(&good), EMBER_OK);
    assert_int_equal(em_conf_set_flag(good, "ember.executor.memory=512m", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set_flag(good, "ember.scheduler.mode=FAIR", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set_flag(good, "ember.plugin.a.b=c", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_check(good, NULL, NULL), 0);
    /* The prefix itself is not a key. */
    assert_int_equal(em_conf_set_flag(good, "ember.plugin.=c", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_check(good, NULL, NULL), 1);
    em_conf_destroy(good);
    em_conf_destroy(c);
}

/* em_conf_validate: the first three problems in one error, then "and
 * more"; a clean configuration passes. */
static void test_validate(void **state)
{
    fixture *f = *state;
    const char *path = write_file(f, "validate.conf",
                                  "ember.exeutor.memory 2g\n"
                                  "ember.task.maxFailures 0\n"
                                  "spark.executor.cores 2\n"
                                  "ember.speculation maybe\n");
    em_conf *c;
    ember_error err = {0};
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    assert_int_equal(em_conf_validate(c, &err), EMBER_OK);
    assert_int_equal(em_conf_load_file(c, path, &err), EMBER_OK);
    assert_int_equal(em_conf_validate(c, &err), EMBER_EINVAL);
    assert_true(strncmp(err.msg, "configuration: ", 15) == 0);
    assert_non_null(strstr(err.msg, "validate.conf:1: "));
    assert_non_null(strstr(err.msg, "ember.exeutor.memory"));
    assert_non_null(strstr(err.msg, " (and more)"));
    em_conf_destroy(c);
}

static void test_check_values(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value;
        const char *want; /* NULL: accepted */
    } cases[] = {
        {"ember.default.parallelism", "8", NULL},
        {"ember.default.parallelism", "0", "0 is out of range (1..1000000)"},
        {"ember.default.parallelism", "eight", "'eight' is not a whole number"},
        {"ember.rdd.limit.scaleUpFactor", "1", "1 is out of range"},
        {"ember.stage.resubmitDelay", "soon", "'soon' is not a valid duration"},
        {"ember.executor.heartbeatInterval", "0", "out of range"},
        {"ember.task.timeout", "0", NULL},
        {"ember.task.timeout", "106751992d", "out of range"},
        {"ember.speculation.quantile", "1.5", "1.5 is out of range (0..1)"},
        {"ember.speculation.quantile", "half", "'half' is not a number"},
        {"ember.speculation.multiplier", "2", NULL},
        {"ember.scheduler.mode", "LIFO", "'LIFO' is not one of FIFO|FAIR"},
        {"ember.speculation", "YES", NULL},
        {"ember.files.maxPartitionBytes", "0", "out of range"},
        {"ember.io.compression.zstd.level", "-5", NULL},
        {"ember.master", "anything at all", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        em_conf *c;
        ember_error err;
        assert_int_equal(em_conf_create(&c), EMBER_OK);
        assert_int_equal(em_conf_set(c, cases[i].key, cases[i].value, "code",
                                     &err),
                         EMBER_OK);
        report r = {0};
        size_t n = em_conf_check(c, collect, &r);
        if (!cases[i].want && n != 0)
            fail_msg("%s=%s: unexpected '%s'", cases[i].key, cases[i].value,
                     r.msg[0]);
        if (cases[i].want && (n != 1 || !strstr(r.msg[0], cases[i].want) ||
                              strncmp(r.msg[0], cases[i].key,
                                      strlen(cases[i].key)) != 0))
            fail_msg("%s=%s: got %zu problems, '%s'", cases[i].key,
                     cases[i].value, n, n ? r.msg[0] : "");
        em_conf_destroy(c);
    }
}

/* ---- em_conf_each_effective ---- */

typedef struct listing {
    size_t n;
    char key[128][96];
    char value[128][64];
    char origin[128][256];
    int has_value[128];
} listing;

static void list_one(void *ctx, const char *key, const char *value,
                     const char *origin)
{
    listing *l = ctx;
    assert_true(l->n < 128);
    snprintf(l->key[l->n], sizeof l->key[0], "%s", key);
    l->has_value[l->n] = value != NULL;
    snprintf(l->value[l->n], sizeof l->value[0], "%s", value ? value : "");
    snprintf(l->origin[l->n], sizeof l->origin[0], "%s", origin);
    l->n++;
}

/* The index of key in l; fails the test when it is not listed. */
static size_t listed(const listing *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->key[i], key))
            return i;
    fail_msg("%s is not listed", key);
    return 0;
}

static void test_each_effective(void **state)
{
    fixture *f = *state;
    size_t nkeys, nprefix = 0;
    const em_conf_key *keys = em_conf_keys(&nkeys);
    for (size_t i = 0; i < nkeys; i++)
        nprefix += keys[i].type == EM_CONF_PREFIX;
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);

    /* Nothing set: every known key with its default. */
    listing *l = calloc(1, sizeof *l);
    assert_non_null(l);
    em_conf_each_effective(c, list_one, l);
    assert_int_equal(l->n, nkeys - nprefix);
    size_t i = listed(l, "ember.executor.memory");
    assert_string_equal(l->value[i], "1g");
    assert_string_equal(l->origin[i], "default");
    i = listed(l, "ember.master");
    assert_string_equal(l->value[i], "local[*]");
    i = listed(l, "ember.executor.instances");
    assert_false(l->has_value[i]);
    assert_string_equal(l->origin[i], "default");
    i = listed(l, "ember.locality.wait.node");
    assert_string_equal(l->value[i], "3s");

    /* Set values, from a file, a flag and code. */
    const char *path = write_file(f, "v.conf",
                                  "ember.executor.memory 2g\n"
                                  "ember.exeutor.cores 2\n");
    assert_int_equal(em_conf_load_file(c, path, &err), EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "ember.locality.wait=10s", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set_flag(c, "ember.plugin.p.q=r", &err),
                     EMBER_OK);
    assert_int_equal(em_conf_set(c, "aaa", "1", "code", &err), EMBER_OK);
    memset(l, 0, sizeof *l);
    em_conf_each_effective(c, list_one, l);
    assert_int_equal(l->n, nkeys - nprefix + 3);
    for (size_t j = 1; j < l->n; j++)
        if (strcmp(l->key[j - 1], l->key[j]) >= 0)
            fail_msg("not sorted: %s before %s", l->key[j - 1], l->key[j]);
    assert_string_equal(l->key[0], "aaa");
    assert_string_equal(l->origin[0], "code (unknown key)");
    i = listed(l, "ember.executor.memory");
    assert_string_equal(l->value[i], "2g");
    assert_string_equal(l->origin[i], origin_of(path, 1));
    i = listed(l, "ember.exeutor.cores");
    assert_string_equal(l->value[i], "2");
    char want[300];
    snprintf(want, sizeof want, "%s (unknown key)", origin_of(path, 2));
    assert_string_equal(l->origin[i], want);
    i = listed(l, "ember.plugin.p.q");
    assert_string_equal(l->origin[i], "--conf");
    i = listed(l, "ember.locality.wait");
    assert_string_equal(l->origin[i], "--conf");
    /* An unset key that defaults to another key's value follows it. */
    i = listed(l, "ember.locality.wait.process");
    assert_string_equal(l->value[i], "10s");
    assert_string_equal(l->origin[i], "default");
    free(l);
    em_conf_destroy(c);
}

/* ---- The key table ---- */

static void test_key_table(void **state)
{
    (void)state;
    size_t n;
    const em_conf_key *keys = em_conf_keys(&n);
    assert_true(n > 30);
    em_conf *c;
    ember_error err;
    assert_int_equal(em_conf_create(&c), EMBER_OK);
    for (size_t i = 0; i < n; i++) {
        const em_conf_key *k = &keys[i];
        if (i > 0 && strcmp(keys[i - 1].name, k->name) >= 0)
            fail_msg("table not sorted: %s before %s", keys[i - 1].name,
                     k->name);
        assert_true(strncmp(k->name, "ember.", 6) == 0);
        assert_true(strlen(k->name) < 96);
        assert_non_null(k->doc);
        if (k->type == EM_CONF_PREFIX) {
            assert_int_equal(k->name[strlen(k->name) - 1], '.');
            assert_null(em_conf_key_find(k->name));
            continue;
        }
        assert_ptr_equal(em_conf_key_find(k->name), k);
        if (k->fallback)
            assert_non_null(em_conf_key_find(k->fallback));
        if (k->dflt)
            assert_int_equal(em_conf_set(c, k->name, k->dflt, "default", &err),
                             EMBER_OK);
    }
    /* Every default passes its own check. */
    report r = {0};
    if (em_conf_check(c, collect, &r) != 0)
        fail_msg("a default is invalid: %s", r.msg[0]);
    /* Every key kernel/core/settings.c reads is known. */
    static const char *read_by_kernel[] = {
        "ember.scheduler.mode", "ember.scheduler.allocation.file",
        "ember.task.maxFailures", "ember.stage.maxConsecutiveAttempts",
        "ember.stage.resubmitDelay", "ember.driver.maxResultSize",
        "ember.locality.wait", "ember.locality.wait.process",
        "ember.locality.wait.node", "ember.speculation",
        "ember.speculation.interval", "ember.speculation.multiplier",
        "ember.speculation.quantile", "ember.speculation.minTaskRuntime",
        "ember.executor.heartbeatTimeout"};
    for (size_t i = 0; i < sizeof read_by_kernel / sizeof read_by_kernel[0];
         i++)
        if (!em_conf_key_find(read_by_kernel[i]))
            fail_msg("%s is not in the table", read_by_kernel[i]);
    const em_conf_key *env = em_conf_key_find("ember.executorEnv.PATH");
    assert_non_null(env);
    assert_int_equal(env->type, EM_CONF_PREFIX);
    assert_null(em_conf_key_find("ember.executor"));
    assert_null(em_conf_key_find(NULL));
    em_conf_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bom_and_empty_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_unreadable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_sources, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_effective, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_table, setup, teardown),
    };
    return cmocka_run_group_tests_name("conf_file", tests, NULL, NULL);
}
