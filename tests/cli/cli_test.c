/*
 * CLI tests: run the built `ember` binary as a user would and check what
 * comes back — exit status, stdout and stderr (read apart), and the JSON
 * that `plugin inspect` and `plugin list --json` print.
 *
 * EMBER_BIN, FIXTURE_DIR (loader fixtures) and PLUGIN_DIR (in-tree plugins)
 * come from tests/cli/CMakeLists.txt.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

/* ---- running ember ---------------------------------------------------- */

typedef struct output {
    char *data; /* always NUL-terminated once run() returns */
    size_t len, cap;
} output;

typedef struct run_result {
    int code;   /* exit status, -1 when killed by a signal */
    int signal; /* the killing signal, or 0 */
    output out, err;
} run_result;

static void output_append(output *o, const char *bytes, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *grown = realloc(o->data, cap);
        assert_non_null(grown);
        o->data = grown;
        o->cap = cap;
    }
    memcpy(o->data + o->len, bytes, n);
    o->len += n;
    o->data[o->len] = '\0';
}

static void run_free(run_result *r)
{
    free(r->out.data);
    free(r->err.data);
    memset(r, 0, sizeof *r);
}

/* Reads both pipes until both are closed, so neither can fill up. */
static void drain(int outfd, int errfd, run_result *r)
{
    struct pollfd fds[2] = {{outfd, POLLIN, 0}, {errfd, POLLIN, 0}};
    output *dest[2] = {&r->out, &r->err};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail_msg("poll: %s", strerror(errno));
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char chunk[4096];
            ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            output_append(dest[i], chunk, (size_t)n);
        }
    }
}

/* Applies "NAME=VALUE" (set) or "NAME" (unset) in the child. */
static void apply_env(const char *const *env)
{
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq) {
            unsetenv(*env);
            continue;
        }
        char name[128];
        size_t n = (size_t)(eq - *env);
        if (n >= sizeof name)
            _exit(126);
        memcpy(name, *env, n);
        name[n] = '\0';
        setenv(name, eq + 1, 1);
    }
}

#define MAX_ARGS 16

/*
 * Runs EMBER_BIN with the NULL-terminated arguments that follow env, the
 * environment changed by env (NULL-terminated, may be NULL), stdin from
 * /dev/null. Fills r; the caller frees it with run_free().
 */
static void run_env(run_result *r, const char *const *env, ...)
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = (char *)EMBER_BIN;
    va_list ap;
    va_start(ap, env);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(argc <= MAX_ARGS);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;

    memset(r, 0, sizeof *r);
    int outp[2], errp[2];
    assert_int_equal(pipe(outp), 0);
    assert_int_equal(pipe(errp), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* This test is single-threaded, so setenv after fork is safe. */
        FILE *devnull = freopen("/dev/null", "r", stdin);
        (void)devnull;
        dup2(outp[1], STDOUT_FILENO);
        dup2(errp[1], STDERR_FILENO);
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        apply_env(env);
        execv(EMBER_BIN, argv);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    drain(outp[0], errp[0], r);
    output_append(&r->out, "", 0);
    output_append(&r->err, "", 0);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    if (WIFEXITED(status)) {
        r->code = WEXITSTATUS(status);
    } else {
        r->code = -1;
        r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    assert_int_not_equal(r->code, 127); /* exec failed */
}

/* Tests that do not care about the environment still pin the plugin path
 * so a user's EMBER_PLUGIN_PATH cannot change the answer. */
static const char *const clean_env[] = {"EMBER_PLUGIN_PATH", NULL};
#define run(r, ...) run_env((r), clean_env, __VA_ARGS__, (const char *)NULL)

/* Fails with the captured streams shown, so a failure says what ember said. */
#define expect_code(r, want)                                                  \
    do {                                                                      \
        if ((r)->code != (want))                                              \
            fail_msg("exit %d (signal %d), want %d\n--- stdout:\n%s"          \
                     "--- stderr:\n%s",                                       \
                     (r)->code, (r)->signal, (want), (r)->out.data,           \
                     (r)->err.data);                                          \
    } while (0)

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* ---- paths ------------------------------------------------------------- */

/* Paths come from a small ring of buffers, so several can be arguments of
 * one call. */
static char *path_buffer(void)
{
    static char ring[8][PATH_MAX];
    static unsigned next;
    return ring[next++ % 8];
}

static const char *fixture(const char *name)
{
    char *path = path_buffer();
    snprintf(path, PATH_MAX, "%s/%s.so", FIXTURE_DIR, name);
    return path;
}

static const char *plugin(const char *file)
{
    char *path = path_buffer();
    snprintf(path, PATH_MAX, "%s/%s", PLUGIN_DIR, file);
    return path;
}

/* ---- JSON helpers ------------------------------------------------------ */

static json_t *parse(const output *o)
{
    json_error_t error;
    json_t *root = json_loadb(o->data, o->len, 0, &error);
    if (!root)
        fail_msg("stdout is not JSON (%s, line %d):\n%s", error.text,
                 error.line, o->data);
    return root;
}

static const char *get_string(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("\"%s\" is not a string", key);
    return json_string_value(v);
}

static json_int_t get_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is not an integer", key);
    return json_integer_value(v);
}

static json_t *get_array(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_array(v))
        fail_msg("\"%s\" is not an array", key);
    return v;
}

/* The component of the given kind and qualified name, or NULL. */
static const json_t *find_component(const json_t *plugin_obj,
                                    const char *kind, const char *name)
{
    const json_t *comps = get_array(plugin_obj, "components");
    size_t i;
    const json_t *c;
    json_array_foreach(comps, i, c)
    {
        if (!strcmp(get_string(c, "kind"), kind) &&
            !strcmp(get_string(c, "name"), name))
            return c;
    }
    return NULL;
}

/* The plugin named name in a `list --json` plugins array, or NULL. */
static const json_t *find_plugin(const json_t *plugins, const char *name)
{
    size_t i;
    const json_t *p;
    json_array_foreach(plugins, i, p)
    {
        if (!strcmp(get_string(p, "name"), name))
            return p;
    }
    return NULL;
}

/* ---- text helpers ------------------------------------------------------ */

/* Number of lines of text that start with prefix and contain each of the
 * (up to two, NULL when unused) words. */
static int count_lines(const char *text, const char *prefix,
                       const char *word1, const char *word2)
{
    int n = 0;
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        char *line = strndup(text, len);
        assert_non_null(line);
        if (starts_with(line, prefix) && (!word1 || strstr(line, word1)) &&
            (!word2 || strstr(line, word2)))
            n++;
        free(line);
        text += len + (nl ? 1 : 0);
    }
    return n;
}

/* ---- scratch plugin directory (group state) ---------------------------- */

static const char *const scratch_names[] = {"good", "bad_magic",
                                            "good_again"};
#define SCRATCH_COUNT (sizeof scratch_names / sizeof scratch_names[0])

static char scratch[64];

static void scratch_link(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s.so", scratch, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/ember-cli-test-XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    for (size_t i = 0; i < SCRATCH_COUNT; i++) {
        char link[PATH_MAX];
        scratch_link(link, sizeof link, scratch_names[i]);
        if (symlink(fixture(scratch_names[i]), link) != 0)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!scratch[0])
        return 0;
    for (size_t i = 0; i < SCRATCH_COUNT; i++) {
        char link[PATH_MAX];
        scratch_link(link, sizeof link, scratch_names[i]);
        unlink(link);
    }
    return rmdir(scratch) == 0 ? 0 : -1;
}

/* ---- plugin inspect ---------------------------------------------------- */

static void test_inspect_good(void **state)
{
    (void)state;
    run_result r;
    run(&r, "plugin", "inspect", fixture("good"));
    expect_code(&r, 0);
    assert_string_equal(r.err.data, "");
    json_t *root = parse(&r.out);
    assert_string_equal(get_string(root, "file"), fixture("good"));
    assert_string_equal(get_string(root, "name"), "fixture");
    assert_string_equal(get_string(root, "version"), "1.2.3");
    assert_string_equal(get_string(root, "description"),
                        "loader test fixture");
    assert_string_equal(get_string(root, "license"), "Apache-2.0");
    const json_t *abi = json_object_get(root, "abi");
    assert_true(json_is_object(abi));
    assert_int_equal(get_int(abi, "major"), 0);
    assert_int_equal(get_int(abi, "minor"), 3);
    const json_t *host = json_object_get(root, "host_abi");
    assert_true(json_is_object(host));
    assert_int_equal(get_int(host, "major"), 0);
    assert_int_equal(get_int(host, "minor"), 3);

    assert_int_equal(json_array_size(get_array(root, "components")), 9);

    const json_t *echo = find_component(root, "function", "fixture.echo");
    assert_non_null(echo);
    assert_string_equal(get_string(echo, "shape"), "map");
    assert_string_equal(get_string(echo, "determinism"), "deterministic");
    assert_string_equal(get_string(echo, "description"), "copies records");

    const json_t *sum = find_component(root, "function", "fixture.sum");
    assert_non_null(sum);
    assert_string_equal(get_string(sum, "shape"), "reduce");

    const json_t *codec = find_component(root, "codec", "fixture.copy");
    assert_non_null(codec);
    assert_true(json_is_null(json_object_get(codec, "description")));

    const json_t *storage =
        find_component(root, "storage", "fixture.MEMORY_ONLY");
    assert_non_null(storage);
    const json_t *flags = get_array(storage, "flags");
    assert_int_equal(json_array_size(flags), 1);
    assert_string_equal(json_string_value(json_array_get(flags, 0)),
                        "memory");
    assert_int_equal(get_int(storage, "replication"), 1);

    static const char *const kinds[] = {"shuffle", "source", "sink",
                                        "cluster_manager"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        assert_non_null(find_component(root, kinds[i], "fixture.nop"));
    json_decref(root);
    run_free(&r);
}

static void test_inspect_compact(void **state)
{
    (void)state;
    run_result pretty, compact;
    run(&pretty, "plugin", "inspect", fixture("good"));
    run(&compact, "plugin", "inspect", "--compact", fixture("good"));
    expect_code(&compact, 0);
    assert_string_equal(compact.err.data, "");
    /* Exactly one line, newline-terminated. */
    assert_int_equal(count_char(compact.out.data, '\n'), 1);
    assert_int_equal(compact.out.data[compact.out.len - 1], '\n');
    /* The indented form really is several lines. */
    assert_true(count_char(pretty.out.data, '\n') > 10);
    json_t *a = parse(&pretty.out);
    json_t *b = parse(&compact.out);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    run_free(&pretty);
    run_free(&compact);
}

static void test_inspect_in_tree(void **state)
{
    (void)state;
    static const struct {
        const char *file, *name, *kind, *component;
    } cases[] = {
        {"std.so", "std", "function", "std.sum"},
        {"codec_lz4.so", "lz4", "codec", "lz4.codec"},
        {"codec_none.so", "none", "codec", "none.codec"},
        {"codec_zstd.so", "zstd", "codec", "zstd.codec"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r;
        run(&r, "plugin", "inspect", plugin(cases[i].file));
        expect_code(&r, 0);
        assert_string_equal(r.err.data, "");
        json_t *root = parse(&r.out);
        assert_string_equal(get_string(root, "name"), cases[i].name);
        assert_non_null(
            find_component(root, cases[i].kind, cases[i].component));
        json_decref(root);
        run_free(&r);
    }
}

/* Each refused file: exit 1, nothing on stdout, one line on stderr that
 * starts with "ember: <path>" and holds the reason. */
static void expect_refused(const char *path, const char *reason)
{
    run_result r;
    run(&r, "plugin", "inspect", path);
    expect_code(&r, 1);
    assert_string_equal(r.out.data, "");
    char prefix[PATH_MAX + 16];
    snprintf(prefix, sizeof prefix, "ember: %s", path);
    if (!starts_with(r.err.data, prefix) || !strstr(r.err.data, reason) ||
        count_char(r.err.data, '\n') != 1 ||
        r.err.data[r.err.len - 1] != '\n')
        fail_msg("stderr for %s:\n%swant one line starting \"%s\" holding "
                 "\"%s\"",
                 path, r.err.data, prefix, reason);
    run_free(&r);
}

static void test_inspect_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *fixture, *reason;
    } cases[] = {
        {"not_elf", "cannot load shared object"},
        {"undefined_symbol", "undefined symbol: ember_fixture_missing_symbol"},
        {"no_entry", "not an ember plugin: no ember_plugin_entry"},
        {"null_entry", "ember_plugin_entry returned NULL"},
        {"bad_magic", "bad magic 0x12345678"},
        {"abi_major", "built for ABI 2.0, this host provides 0.3"},
        {"abi_minor", "built for ABI 0.7, this host provides 0.3: the plugin "
                      "needs a newer host"},
        {"traits", "built for another platform"},
        {"small_struct", "descriptor declares 20 bytes"},
        {"no_name", "plugin name is missing"},
        {"bad_name", "invalid plugin name 'Bad Name'"},
        {"wild_name", "plugin name points to unreadable memory"},
        {"no_components", "declares no components"},
        {"kind_version", "function 'fixture.future' was built for function "
                         "interface version 2, this host provides version 1"},
        {"missing_slot",
         "codec 'fixture.copy': required slot 'compress' is NULL"},
        {"duplicate", "duplicate function 'std.sum'"},
        {"wild_vtable",
         "function 'fixture.wild': vtable points to unreadable memory"},
        {"init_fails", "init of plugin 'fixture' failed: cannot reach the "
                       "licence server"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(fixture(cases[i].fixture), cases[i].reason);
    expect_refused("/nonexistent/ember-cli-test/missing.so",
                   "No such file or directory");
    expect_refused(FIXTURE_DIR, "not a regular file");
}

static void test_inspect_crash(void **state)
{
    (void)state;
    /* Under AddressSanitizer the SEGV would be caught and turned into a
     * report and an exit; let it kill the loading child as it would
     * without ASan. Harmless when ember is not sanitized. */
    char asan[512];
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%shandle_segv=0",
             old ? old : "", old && *old ? ":" : "");
    const char *const env[] = {"EMBER_PLUGIN_PATH", asan, NULL};
    run_result r;
    run_env(&r, env, "plugin", "inspect", fixture("crash_init"),
            (const char *)NULL);
    expect_code(&r, 1);
    assert_string_equal(r.out.data, "");
    char prefix[PATH_MAX + 16];
    snprintf(prefix, sizeof prefix, "ember: %s: ", fixture("crash_init"));
    if (!starts_with(r.err.data, prefix) ||
        !strstr(r.err.data, "the plugin crashed while loading ("))
        fail_msg("stderr:\n%s", r.err.data);
    run_free(&r);
}

/* ---- usage, help, version ---------------------------------------------- */

static void expect_usage_error(const char *contains, ...)
{
    const char *args[MAX_ARGS + 1] = {0};
    va_list ap;
    va_start(ap, contains);
    for (int i = 0; i < MAX_ARGS; i++)
        if ((args[i] = va_arg(ap, const char *)) == NULL)
            break;
    va_end(ap);
    run_result r;
    run(&r, args[0], args[1], args[2], args[3]);
    if (r.code != 2 || r.out.len != 0 ||
        (contains && !strstr(r.err.data, contains)))
        fail_msg("ember %s %s %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant "
                 "exit 2, no stdout, stderr holding \"%s\"",
                 args[0] ? args[0] : "", args[1] ? args[1] : "",
                 args[2] ? args[2] : "", r.code, r.out.data, r.err.data,
                 contains ? contains : "");
    run_free(&r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    const char *good = fixture("good");
    expect_usage_error("usage:", (const char *)NULL); /* bare `ember` */
    expect_usage_error("unknown command 'frobnicate'", "frobnicate",
                       (const char *)NULL);
    expect_usage_error("usage:", "plugin", (const char *)NULL);
    expect_usage_error("unknown plugin command 'frob'", "plugin", "frob",
                       (const char *)NULL);
    expect_usage_error("plugin inspect takes exactly one FILE.so", "plugin",
                       "inspect", (const char *)NULL);
    expect_usage_error("plugin inspect takes exactly one FILE.so", "plugin",
                       "inspect", good, good, (const char *)NULL);
    expect_usage_error("usage: ember plugin inspect", "plugin", "inspect",
                       "--bogus", good, (const char *)NULL);
    expect_usage_error("unexpected argument 'extra'", "plugin", "list",
                       "extra", (const char *)NULL);
    expect_usage_error("usage: ember plugin list", "plugin", "list",
                       "--plugin-dir", (const char *)NULL);
}

static void test_help_and_version(void **state)
{
    (void)state;
    run_result r;
    run(&r, "--help");
    expect_code(&r, 0);
    assert_true(starts_with(r.out.data, "usage:"));
    assert_non_null(strstr(r.out.data, "plugin inspect"));
    assert_non_null(strstr(r.out.data, "plugin list"));
    assert_string_equal(r.err.data, "");
    run_free(&r);

    run(&r, "plugin", "inspect", "--help");
    expect_code(&r, 0);
    assert_true(starts_with(r.out.data, "usage: ember plugin inspect"));
    assert_non_null(strstr(r.out.data, "--compact"));
    run_free(&r);

    run(&r, "plugin", "list", "--help");
    expect_code(&r, 0);
    assert_true(starts_with(r.out.data, "usage: ember plugin list"));
    assert_non_null(strstr(r.out.data, "EMBER_PLUGIN_PATH"));
    run_free(&r);

    run(&r, "version");
    expect_code(&r, 0);
    assert_true(starts_with(r.out.data, "ember "));
    assert_non_null(strstr(r.out.data, "ABI 0.3"));
    assert_int_equal(count_char(r.out.data, '\n'), 1);
    assert_string_equal(r.err.data, "");
    run_free(&r);
}

/* ---- plugin list ------------------------------------------------------- */

/* The text listing of the scratch directory: the good fixture with its
 * components, and one refusal line each for bad_magic and good_again. */
static void check_scratch_text(const run_result *r)
{
    expect_code(r, 0);
    assert_string_equal(r->err.data, "");
    const char *out = r->out.data;
    char link[PATH_MAX];
    scratch_link(link, sizeof link, "good");
    assert_int_equal(count_lines(out, "fixture 1.2.3", link, "ABI 0.3"), 1);
    assert_int_equal(count_lines(out, "  ", "fixture.echo", "copies records"),
                     1);
    assert_int_equal(count_lines(out, "  ", "storage", "fixture.MEMORY_ONLY"),
                     1);
    /* Nine component lines under the one plugin. */
    assert_int_equal(count_lines(out, "  ", NULL, NULL), 9);
    assert_int_equal(count_lines(out, "refused: ", NULL, NULL), 2);
    scratch_link(link, sizeof link, "bad_magic");
    assert_int_equal(count_lines(out, "refused: ", link, "bad magic"), 1);
    scratch_link(link, sizeof link, "good_again");
    assert_int_equal(
        count_lines(out, "refused: ", link, "duplicate plugin 'fixture'"), 1);
    assert_int_equal(count_lines(out, "no plugins found", NULL, NULL), 0);
}

static void test_list_dir_text(void **state)
{
    (void)state;
    run_result r;
    run(&r, "plugin", "list", "--plugin-dir", scratch);
    check_scratch_text(&r);
    run_free(&r);
}

/* The JSON listing of the scratch directory. */
static void check_scratch_json(const run_result *r)
{
    expect_code(r, 0);
    assert_string_equal(r->err.data, "");
    assert_int_equal(count_char(r->out.data, '\n'), 1); /* one line */
    json_t *root = parse(&r->out);
    const json_t *plugins = get_array(root, "plugins");
    const json_t *refused = get_array(root, "refused");
    assert_int_equal(json_array_size(plugins), 1);
    const json_t *p = json_array_get(plugins, 0);
    assert_string_equal(get_string(p, "name"), "fixture");
    assert_string_equal(get_string(p, "version"), "1.2.3");
    assert_int_equal(json_array_size(get_array(p, "components")), 9);
    assert_non_null(find_component(p, "function", "fixture.echo"));

    assert_int_equal(json_array_size(refused), 2);
    int saw_magic = 0, saw_dup = 0;
    size_t i;
    const json_t *x;
    json_array_foreach(refused, i, x)
    {
        const char *file = get_string(x, "file");
        const char *error = get_string(x, "error");
        char link[PATH_MAX];
        scratch_link(link, sizeof link, "bad_magic");
        if (!strcmp(file, link)) {
            assert_true(starts_with(error, link));
            assert_non_null(strstr(error, "bad magic 0x12345678"));
            saw_magic++;
            continue;
        }
        scratch_link(link, sizeof link, "good_again");
        if (!strcmp(file, link)) {
            assert_non_null(strstr(error, "duplicate plugin 'fixture'"));
            saw_dup++;
            continue;
        }
        fail_msg("unexpected refusal of %s: %s", file, error);
    }
    assert_int_equal(saw_magic, 1);
    assert_int_equal(saw_dup, 1);
    json_decref(root);
}

static void test_list_dir_json(void **state)
{
    (void)state;
    run_result r;
    run(&r, "plugin", "list", "--plugin-dir", scratch, "--json");
    check_scratch_json(&r);
    run_free(&r);
}

static void test_list_env_path(void **state)
{
    (void)state;
    char var[PATH_MAX + 32];
    snprintf(var, sizeof var, "EMBER_PLUGIN_PATH=%s", scratch);
    const char *const env[] = {var, NULL};
    run_result r;
    run_env(&r, env, "plugin", "list", (const char *)NULL);
    check_scratch_text(&r);
    run_free(&r);
    run_env(&r, env, "plugin", "list", "--json", (const char *)NULL);
    check_scratch_json(&r);
    run_free(&r);
}

static void test_list_env_path_several_dirs(void **state)
{
    (void)state;
    /* ':'-separated, with an empty entry that must be skipped. */
    char var[2 * PATH_MAX + 32];
    snprintf(var, sizeof var, "EMBER_PLUGIN_PATH=%s::%s", scratch,
             PLUGIN_DIR);
    const char *const env[] = {var, NULL};
    run_result r;
    run_env(&r, env, "plugin", "list", "--json", (const char *)NULL);
    expect_code(&r, 0);
    assert_string_equal(r.err.data, "");
    json_t *root = parse(&r.out);
    const json_t *plugins = get_array(root, "plugins");
    static const char *const names[] = {"fixture", "std", "lz4", "none",
                                        "zstd"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!find_plugin(plugins, names[i]))
            fail_msg("plugin %s missing from:\n%s", names[i], r.out.data);
    assert_int_equal(json_array_size(get_array(root, "refused")), 2);
    json_decref(root);
    run_free(&r);
}

static void test_list_default_dir(void **state)
{
    (void)state;
    /* No flags, no EMBER_PLUGIN_PATH: the plugin directory beside
     * libember-kernel.so, i.e. the build tree's lib/ember/plugins. */
    static const char *const names[] = {"std", "lz4", "none", "zstd"};
    run_result r;
    run(&r, "plugin", "list");
    expect_code(&r, 0);
    assert_string_equal(r.err.data, "");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char header[64];
        snprintf(header, sizeof header, "%s 0.1.0  (", names[i]);
        if (count_lines(r.out.data, header, PLUGIN_DIR, NULL) != 1)
            fail_msg("no \"%s...\" line in:\n%s", header, r.out.data);
    }
    assert_int_equal(count_lines(r.out.data, "  ", "std.sum", NULL), 1);
    assert_int_equal(count_lines(r.out.data, "  ", "codec", "lz4.codec"), 1);
    assert_int_equal(count_lines(r.out.data, "refused: ", NULL, NULL), 0);
    run_free(&r);

    /* Same in JSON: each plugin's file is in PLUGIN_DIR; nothing refused.
     * An empty EMBER_PLUGIN_PATH counts as unset. */
    static const char *const empty_env[] = {"EMBER_PLUGIN_PATH=", NULL};
    run_env(&r, empty_env, "plugin", "list", "--json", (const char *)NULL);
    expect_code(&r, 0);
    json_t *root = parse(&r.out);
    const json_t *plugins = get_array(root, "plugins");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const json_t *p = find_plugin(plugins, names[i]);
        if (!p)
            fail_msg("plugin %s missing from:\n%s", names[i], r.out.data);
        assert_true(starts_with(get_string(p, "file"), PLUGIN_DIR "/"));
    }
    assert_int_equal(json_array_size(get_array(root, "refused")), 0);
    json_decref(root);
    run_free(&r);
}

static void test_list_missing_dir(void **state)
{
    (void)state;
    const char *missing = "/nonexistent/ember-cli-test-plugins";
    run_result r;
    run(&r, "plugin", "list", "--plugin-dir", missing);
    expect_code(&r, 1);
    assert_true(starts_with(r.err.data, "ember: "));
    assert_non_null(strstr(r.err.data, missing));
    run_free(&r);

    /* A missing directory beside a good one: the good one is still listed,
     * the exit status still says something was wrong. */
    run(&r, "plugin", "list", "--plugin-dir", missing, "--plugin-dir",
        scratch, "--json");
    expect_code(&r, 1);
    assert_non_null(strstr(r.err.data, missing));
    json_t *root = parse(&r.out);
    assert_non_null(find_plugin(get_array(root, "plugins"), "fixture"));
    json_decref(root);
    run_free(&r);
}

static void test_list_plugin_files(void **state)
{
    (void)state;
    const char *missing = "/nonexistent/ember-cli-test/gone.so";
    run_result r;
    run(&r, "plugin", "list", "--json", "--plugin", fixture("good"),
        "--plugin", fixture("abi_major"), "--plugin", missing);
    expect_code(&r, 0);
    json_t *root = parse(&r.out);
    const json_t *fx = find_plugin(get_array(root, "plugins"), "fixture");
    assert_non_null(fx);
    assert_string_equal(get_string(fx, "file"), fixture("good"));
    const json_t *refused = get_array(root, "refused");
    assert_int_equal(json_array_size(refused), 2);
    const json_t *r0 = json_array_get(refused, 0);
    const json_t *r1 = json_array_get(refused, 1);
    assert_string_equal(get_string(r0, "file"), fixture("abi_major"));
    assert_non_null(strstr(get_string(r0, "error"),
                           "built for ABI 2.0, this host provides 0.3"));
    assert_string_equal(get_string(r1, "file"), missing);
    assert_non_null(strstr(get_string(r1, "error"), missing));
    json_decref(root);
    run_free(&r);
}

/* ---- ember plan ---------------------------------------------------- */

/* Writes text to name in the scratch directory; the path is returned. */
static const char *scratch_file(const char *name, const char *text)
{
    char *path = path_buffer();
    snprintf(path, PATH_MAX, "%s/%s", scratch, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_plan_check_and_describe(void **state)
{
    (void)state;
    const char *wc = scratch_file(
        "wc.json",
        "{\"ember_plan\": 1, \"datasets\": [\n"
        " {\"id\": 0, \"op\": \"text_file\", \"partitions\": 4},\n"
        " {\"id\": 1, \"op\": \"flat_map\", \"parents\": [0],"
        " \"fns\": [\"std.split_words\"]},\n"
        " {\"id\": 2, \"op\": \"map\", \"parents\": [1],"
        " \"fns\": [\"std.pair_with\"]},\n"
        " {\"id\": 3, \"op\": \"reduce_by_key\", \"parents\": [2],"
        " \"fns\": [\"std.sum\"], \"partitioner\": {\"kind\": \"hash\","
        " \"partitions\": 2}, \"storage\": \"MEMORY_ONLY\","
        " \"name\": \"counts\"}]}\n");
    run_result r;
    run(&r, "plan", "check", wc);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out.data, "valid, 4 datasets"));
    run_free(&r);
    run(&r, "plan", "describe", wc, "3");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out.data, "(2) reduce_by_key [3] counts [MEMORY_ONLY]\n"
                                    " +-(4) map [2] []\n"
                                    "    |  flat_map [1] []\n"
                                    "    |  text_file [0] []\n");
    run_free(&r);
    /* A broken plan: exit 1, the file and the plan's own message. */
    const char *bad = scratch_file(
        "bad.json", "{\"ember_plan\": 1, \"datasets\": [{\"id\": 0, "
                    "\"op\": \"map\"}]}");
    run(&r, "plan", "check", bad);
    assert_int_equal(r.code, 1);
    assert_int_equal(r.out.len, 0);
    assert_non_null(strstr(r.err.data, "bad.json: plan: dataset 0 (map)"));
    run_free(&r);
    run(&r, "plan", "describe", wc, "9");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err.data, "no dataset 9"));
    run_free(&r);
    run(&r, "plan", "check", "/nonexistent/plan.json");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err.data, "cannot read /nonexistent/plan.json"));
    run_free(&r);
    expect_usage_error("not a dataset id", "plan", "describe", wc, "x",
                       (const char *)NULL);
    expect_usage_error("unknown plan command 'frob'", "plan", "frob",
                       (const char *)NULL);
    expect_usage_error("plan check takes exactly one PLAN.json", "plan",
                       "check", (const char *)NULL);
    unlink(wc);
    unlink(bad);
}

/* ---- ember run --------------------------------------------------------- */

/* No plugin path and no defaults file from the user's environment. */
static const char *const run_env_vars[] = {"EMBER_PLUGIN_PATH",
                                           "EMBER_CONF_DIR", NULL};

/* Writes text as name in the scratch directory and runs `ember run
 * --master local[2] EXTRA PLAN` on it (extra may be NULL). */
static const char *run_plan(run_result *r, const char *name,
                            const char *text, const char *extra)
{
    const char *path = scratch_file(name, text);
    if (extra)
        run_env(r, run_env_vars, "run", "--master", "local[2]", extra, path,
                (const char *)NULL);
    else
        run_env(r, run_env_vars, "run", "--master", "local[2]", path,
                (const char *)NULL);
    return path;
}

/* A plan that succeeds and prints exactly want. */
static void expect_run(const char *text, const char *want)
{
    run_result r;
    const char *path = run_plan(&r, "run.json", text, NULL);
    expect_code(&r, 0);
    if (strcmp(r.out.data, want) != 0)
        fail_msg("stdout:\n%s\nwant:\n%s\nstderr:\n%s", r.out.data, want,
                 r.err.data);
    assert_string_equal(r.err.data, "");
    run_free(&r);
    unlink(path);
}

/* A plan that fails: exit 1, stdout exactly out, stderr one line starting
 * "ember: PATH: " + prefix. */
static void expect_run_error(const char *text, const char *out,
                             const char *prefix)
{
    run_result r;
    const char *path = run_plan(&r, "bad-run.json", text, NULL);
    expect_code(&r, 1);
    char want[PATH_MAX + 512];
    snprintf(want, sizeof want, "ember: %s: %s", path, prefix);
    if (!starts_with(r.err.data, want) || count_char(r.err.data, '\n') != 1)
        fail_msg("stderr:\n%s\nwant one line starting:\n%s", r.err.data,
                 want);
    assert_string_equal(r.out.data, out);
    run_free(&r);
    unlink(path);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* text's lines sorted (a multiset compared as a string), malloc'd. */
static char *sorted_lines(const char *text)
{
    char *copy = strdup(text);
    assert_non_null(copy);
    char *lines[256];
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        assert_true(n < 256);
        lines[n++] = l;
    }
    qsort(lines, n, sizeof *lines, compare_strings);
    char *out = calloc(1, strlen(text) + 2);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(copy);
    return out;
}

static void expect_same_lines(const char *got, const char *want)
{
    char *g = sorted_lines(got), *w = sorted_lines(want);
    if (strcmp(g, w) != 0)
        fail_msg("lines (sorted):\n%s\nwant (sorted):\n%s", g, w);
    free(g);
    free(w);
}

static void test_run_parallelize_map_collect(void **state)
{
    (void)state;
    /* Each item a record; arrays inside are tuples; pairs print as
     * key/value, one-element records as their value. */
    expect_run("{\"ember_plan\": 1, \"datasets\": [\n"
               " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,\n"
               "  \"args\": {\"data\": [1, \"a\", [2, 3], [1, [2.5, null],"
               " true], {\"base64\": \"AA==\"}, -0.5]}},\n"
               " {\"id\": 1, \"op\": \"map\", \"parents\": [0],"
               " \"fns\": [\"std.identity\"]}],\n"
               " \"actions\": [{\"action\": \"collect\", \"dataset\": 1}]}\n",
               "1\n\"a\"\n{\"key\":2,\"value\":3}\n[1,[2.5,null],true]\n"
               "{\"base64\":\"AA==\"}\n-0.5\n");
}

static void test_run_range_count_take(void **state)
{
    (void)state;
    /* Actions run in order; datasets may come in any order. */
    expect_run("{\"ember_plan\": 1, \"datasets\": [\n"
               " {\"id\": 7, \"op\": \"filter\", \"parents\": [3],"
               " \"fns\": [{\"name\": \"std.compare\", \"value\": [\"ge\", "
               "95]}]},\n"
               " {\"id\": 3, \"op\": \"range\", \"partitions\": 4,"
               " \"args\": {\"start\": 0, \"end\": 100}}],\n"
               " \"actions\": [{\"action\": \"count\", \"dataset\": 3},\n"
               "  {\"action\": \"take\", \"dataset\": 3, \"n\": 3},\n"
               "  {\"action\": \"count\", \"dataset\": 7},\n"
               "  {\"action\": \"is_empty\", \"dataset\": 7}]}\n",
               "100\n0\n1\n2\n5\nfalse\n");
}

static void test_run_fold_with_zero(void **state)
{
    (void)state;
    /* SEMANTICS S1: the zero once per partition and once on the driver:
     * 10 + (10 + 1 + 2) + (10 + 3 + 4) = 40. */
    expect_run("{\"ember_plan\": 1, \"datasets\": [\n"
               " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,"
               " \"args\": {\"data\": [1, 2, 3, 4]}}],\n"
               " \"actions\": [{\"action\": \"fold\", \"dataset\": 0,"
               " \"zero\": 10, \"fn\": \"std.sum\"},\n"
               "  {\"action\": \"reduce\", \"dataset\": 0,"
               " \"fn\": \"std.sum\"}]}\n",
               "40\n10\n");
}

static void test_run_reduce_empty(void **state)
{
    (void)state;
    /* The count before it printed; then the failure names the action. */
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 4, \"op\": \"empty\"}],\n"
                     " \"actions\": [{\"action\": \"count\", \"dataset\": 4},\n"
                     "  {\"action\": \"reduce\", \"dataset\": 4,"
                     " \"fn\": \"std.sum\"}]}\n",
                     "0\n",
                     "action 1 (reduce of dataset 4): empty collection");
}

static void test_run_zip_with_unique_id(void **state)
{
    (void)state;
    /* SEMANTICS S14: item i of partition k of n gets i*n + k; range(0,10)
     * in 3 slices is [0,1,2] [3,4,5] [6,7,8,9]. */
    expect_run("{\"ember_plan\": 1, \"datasets\": [\n"
               " {\"id\": 0, \"op\": \"range\", \"partitions\": 3,"
               " \"args\": {\"start\": 0, \"end\": 10}},\n"
               " {\"id\": 1, \"op\": \"zip_with_unique_id\","
               " \"parents\": [0]}],\n"
               " \"actions\": [{\"action\": \"collect\", \"dataset\": 1}]}\n",
               "{\"key\":0,\"value\":0}\n{\"key\":1,\"value\":3}\n"
               "{\"key\":2,\"value\":6}\n{\"key\":3,\"value\":1}\n"
               "{\"key\":4,\"value\":4}\n{\"key\":5,\"value\":7}\n"
               "{\"key\":6,\"value\":2}\n{\"key\":7,\"value\":5}\n"
               "{\"key\":8,\"value\":8}\n{\"key\":9,\"value\":11}\n");
}

static void test_run_narrow_ops(void **state)
{
    (void)state;
    /* union, coalesce to one partition, glom: one record holding all. */
    expect_run("{\"ember_plan\": 1, \"datasets\": [\n"
               " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,"
               " \"args\": {\"data\": [1, 2]}},\n"
               " {\"id\": 1, \"op\": \"range\", \"partitions\": 2,"
               " \"args\": {\"start\": 3, \"end\": 7, \"step\": 2}},\n"
               " {\"id\": 2, \"op\": \"union\", \"parents\": [0, 1]},\n"
               " {\"id\": 3, \"op\": \"coalesce\", \"parents\": [2],"
               " \"partitions\": 1},\n"
               " {\"id\": 4, \"op\": \"glom\", \"parents\": [3]},\n"
               " {\"id\": 5, \"op\": \"zip\", \"parents\": [0, 1]}],\n"
               " \"actions\": [{\"action\": \"collect\", \"dataset\": 4},\n"
               "  {\"action\": \"collect\", \"dataset\": 5},\n"
               "  {\"action\": \"top\", \"dataset\": 2, \"n\": 2}]}\n",
               "[1,2,3,5]\n{\"key\":1,\"value\":3}\n{\"key\":2,\"value\":5}\n"
               "5\n3\n");
}

static void test_run_count_by_value(void **state)
{
    (void)state;
    run_result r;
    const char *path = run_plan(
        &r, "cbv.json",
        "{\"ember_plan\": 1, \"datasets\": [\n"
        " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 3,"
        " \"args\": {\"data\": [\"a\", \"b\", \"a\", 1, \"a\", 1, [1, 2]]}}],\n"
        " \"actions\": [{\"action\": \"count_by_value\", \"dataset\": 0}]}\n",
        NULL);
    expect_code(&r, 0);
    expect_same_lines(r.out.data, "{\"key\":\"a\",\"value\":3}\n"
                                  "{\"key\":\"b\",\"value\":1}\n"
                                  "{\"key\":1,\"value\":2}\n"
                                  "{\"key\":[1,2],\"value\":1}\n");
    run_free(&r);
    unlink(path);
}

/* Removes the files directly in dir, then dir. */
static void remove_flat_dir(const char *dir)
{
    static const char *const names[] = {"part-00000", "part-00001",
                                        "part-00002", "_SUCCESS"};
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    output o = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        output_append(&o, chunk, n);
    output_append(&o, "", 0);
    fclose(f);
    return o.data;
}

static void test_run_save_as_text_file(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/saved", scratch);
    remove_flat_dir(dir);
    /* "saved" is relative to the plan file's directory. */
    run_result r;
    const char *path = run_plan(
        &r, "save.json",
        "{\"ember_plan\": 1, \"datasets\": [\n"
        " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,"
        " \"args\": {\"data\": [\"x\", \"y\", \"z\"]}}],\n"
        " \"actions\": [{\"action\": \"save_as_text_file\", \"dataset\": 0,"
        " \"path\": \"saved\"}]}\n",
        NULL);
    expect_code(&r, 0);
    assert_string_equal(r.out.data, "");
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/_SUCCESS", dir);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/part-00002", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/part-00000", dir);
    char *a = slurp(p);
    snprintf(p, sizeof p, "%s/part-00001", dir);
    char *b = slurp(p);
    assert_string_equal(a, "x\n");
    assert_string_equal(b, "y\nz\n");
    free(a);
    free(b);
    run_free(&r);
    /* Saving again: the directory exists; the action fails. */
    run_env(&r, run_env_vars, "run", "--master", "local[2]", path,
            (const char *)NULL);
    expect_code(&r, 1);
    assert_non_null(strstr(r.err.data, "action 0 (save_as_text_file of "
                                       "dataset 0): "));
    assert_non_null(strstr(r.err.data, "already exists"));
    run_free(&r);
    remove_flat_dir(dir);
    unlink(path);
}

static void test_run_bad_plans(void **state)
{
    (void)state;
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"range\","
                     " \"args\": {\"start\": 0, \"end\": 3}},\n"
                     " {\"id\": 3, \"op\": \"frobnicate\", \"parents\": [0]}],\n"
                     " \"actions\": [{\"action\": \"count\", \"dataset\": 3}]}",
                     "",
                     "dataset 3 (frobnicate): op: unknown operation "
                     "'frobnicate'");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"range\","
                     " \"args\": {\"start\": 0, \"end\": 3}},\n"
                     " {\"id\": 1, \"op\": \"map\", \"parents\": [0],"
                     " \"fns\": [\"nosuch.fn\"]}],\n"
                     " \"actions\": [{\"action\": \"count\", \"dataset\": 1}]}",
                     "",
                     "dataset 1 (map): fns[0]: unknown function 'nosuch.fn'");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"range\",}]}",
                     "", "JSON error at line 2");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"range\","
                     " \"args\": {\"start\": 0, \"end\": 3, \"stop\": 4}}],\n"
                     " \"actions\": [{\"action\": \"count\", \"dataset\": 0}]}",
                     "", "dataset 0 (range): args: unknown field 'stop'");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"range\","
                     " \"args\": {\"start\": 0, \"end\": 3}}],\n"
                     " \"actions\": [{\"action\": \"take\", \"dataset\": 9,"
                     " \"n\": 1}]}",
                     "", "action 0 (take): dataset: no dataset 9");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"parallelize\","
                     " \"args\": {\"data\": [[1, {\"a\": 2}]]}}],\n"
                     " \"actions\": [{\"action\": \"count\", \"dataset\": 0}]}",
                     "", "dataset 0 (parallelize): args.data[0][1]: an object");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"map\", \"parents\": [1],"
                     " \"fns\": [\"std.identity\"]},\n"
                     " {\"id\": 1, \"op\": \"map\", \"parents\": [0],"
                     " \"fns\": [\"std.identity\"]}],\n"
                     " \"actions\": [{\"action\": \"count\", \"dataset\": 0}]}",
                     "", "cycle among datasets 0 -> 1 -> 0");
    expect_run_error("{\"ember_plan\": 1, \"datasets\": [\n"
                     " {\"id\": 0, \"op\": \"range\","
                     " \"args\": {\"start\": 0, \"end\": 3}}],\n"
                     " \"actions\": []}",
                     "", "actions must be an array of at least one action");
}

/* ---- ember run: key operations (shuffles) ------------------------------ */

/* Pair datasets the key-operation plans share:
 *   0  (1,"a") (2,"b") (2,"c")            in 2 slices
 *   1  (2,"x") (3,"y")                    in 2 slices
 *   2  1 5 5 2                            in 2 slices
 *   3  5 2 7                              in 2 slices
 *   4  ("a",1) ("b",2) ("a",3) ("c",4) ("b",5)   in 3 slices:
 *      [a1] [b2 a3] [c4 b5]
 */
#define KEY_DATA                                                              \
    " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,"              \
    " \"args\": {\"data\": [[1, \"a\"], [2, \"b\"], [2, \"c\"]]}},\n"        \
    " {\"id\": 1, \"op\": \"parallelize\", \"partitions\": 2,"              \
    " \"args\": {\"data\": [[2, \"x\"], [3, \"y\"]]}},\n"                    \
    " {\"id\": 2, \"op\": \"parallelize\", \"partitions\": 2,"              \
    " \"args\": {\"data\": [1, 5, 5, 2]}},\n"                                \
    " {\"id\": 3, \"op\": \"parallelize\", \"partitions\": 2,"              \
    " \"args\": {\"data\": [5, 2, 7]}},\n"                                   \
    " {\"id\": 4, \"op\": \"parallelize\", \"partitions\": 3,"              \
    " \"args\": {\"data\": [[\"a\", 1], [\"b\", 2], [\"a\", 3], [\"c\", 4],"  \
    " [\"b\", 5]]}}"

/* The plan of KEY_DATA, the datasets in `more` (each line starting with a
 * comma) and the actions in `actions`, in a static buffer (nothing to free
 * when an assertion jumps out). */
static const char *key_plan(const char *more, const char *actions)
{
    static char text[8192];
    int n = snprintf(text, sizeof text, "{\"ember_plan\": 1, \"datasets\": "
                     "[\n" KEY_DATA "%s],\n \"actions\": [%s]}\n", more,
                     actions);
    assert_true(n > 0 && (size_t)n < sizeof text);
    return text;
}

/* A key plan that succeeds; its lines are exactly want (in order) or, when
 * !exact, the same multiset. */
static void expect_key_run(const char *more, const char *actions,
                           const char *want, int exact)
{
    run_result r;
    const char *path = run_plan(&r, "keys.json", key_plan(more, actions),
                                NULL);
    expect_code(&r, 0);
    if (exact && strcmp(r.out.data, want) != 0)
        fail_msg("stdout:\n%s\nwant:\n%s", r.out.data, want);
    if (!exact)
        expect_same_lines(r.out.data, want);
    assert_string_equal(r.err.data, "");
    run_free(&r);
    unlink(path);
}

static void expect_key_error(const char *more, const char *actions,
                             const char *prefix)
{
    expect_run_error(key_plan(more, actions), "", prefix);
}

static void test_run_reduce_fold_aggregate_combine(void **state)
{
    (void)state;
    /* With a hash partitioner into 2 and "partitions" agreeing. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"reduce_by_key\", \"parents\":"
                   " [4], \"fns\": [\"std.sum\"], \"partitioner\":"
                   " {\"kind\": \"hash\", \"partitions\": 2},"
                   " \"partitions\": 2}",
                   "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":\"a\",\"value\":4}\n{\"key\":\"b\",\"value\":7}\n"
                   "{\"key\":\"c\",\"value\":4}\n", 0);
    /* SEMANTICS S2: the zero once per key per map partition:
     * a = (100+1) + (100+3), b = (100+2) + (100+5), c = 100+4. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"fold_by_key\", \"parents\":"
                   " [4], \"fns\": [\"std.sum\"], \"args\": {\"zero\": 100}}",
                   "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":\"a\",\"value\":204}\n"
                   "{\"key\":\"b\",\"value\":207}\n"
                   "{\"key\":\"c\",\"value\":104}\n", 0);
    /* Counting values: seq std.count from 0, comb std.sum. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"aggregate_by_key\", \"parents\":"
                   " [4], \"fns\": [\"std.count\", \"std.sum\"],"
                   " \"args\": {\"zero\": 0}, \"partitions\": 1}",
                   "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":\"a\",\"value\":2}\n{\"key\":\"b\",\"value\":2}\n"
                   "{\"key\":\"c\",\"value\":1}\n", 0);
    /* The largest value per key. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"combine_by_key\", \"parents\":"
                   " [4], \"fns\": [\"std.identity\", \"std.max\","
                   " \"std.max\"]}",
                   "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":\"a\",\"value\":3}\n{\"key\":\"b\",\"value\":5}\n"
                   "{\"key\":\"c\",\"value\":4}\n", 0);
}

static void test_run_group_ops(void **state)
{
    (void)state;
    /* Equal values, so the order inside a group (not promised) cannot
     * matter. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"parallelize\", \"args\":"
                   " {\"data\": [[\"k\", 1], [\"j\", 2], [\"k\", 1]]}},\n"
                   " {\"id\": 6, \"op\": \"group_by_key\", \"parents\": [5]}",
                   "{\"action\": \"collect\", \"dataset\": 6}",
                   "{\"key\":\"j\",\"value\":[2]}\n"
                   "{\"key\":\"k\",\"value\":[1,1]}\n", 0);
    expect_key_run(",\n {\"id\": 5, \"op\": \"parallelize\", \"args\":"
                   " {\"data\": [1, 5, 1, 5, 9, 9]}},\n"
                   " {\"id\": 6, \"op\": \"group_by\", \"parents\": [5],"
                   " \"fns\": [{\"name\": \"std.compare\", \"value\":"
                   " [\"ge\", 9]}]}",
                   "{\"action\": \"count\", \"dataset\": 6},"
                   " {\"action\": \"lookup\", \"dataset\": 6, \"key\": true}",
                   "2\n[9,9]\n", 1);
}

static void test_run_partition_by(void **state)
{
    (void)state;
    /* A function partitioner: std.identity makes the int key the
     * partition, so each partition's content is known. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"parallelize\", \"args\":"
                   " {\"data\": [[2, \"b\"], [0, \"z\"], [1, \"a\"]]}},\n"
                   " {\"id\": 6, \"op\": \"partition_by\", \"parents\": [5],"
                   " \"partitioner\": {\"kind\": \"function\","
                   " \"partitions\": 4, \"fn\": \"std.identity\"}},\n"
                   " {\"id\": 7, \"op\": \"glom\", \"parents\": [6]}",
                   "{\"action\": \"collect\", \"dataset\": 7}",
                   "[[0,\"z\"]]\n[[1,\"a\"]]\n[[2,\"b\"]]\n[]\n", 1);
    /* A range partitioner with bounds as JSON keys: keys up to 1 first,
     * then up to 2, then the rest; descending reverses it. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"parallelize\", \"args\":"
                   " {\"data\": [[3, \"c\"], [1, \"a\"], [2, \"b\"]]}},\n"
                   " {\"id\": 6, \"op\": \"partition_by\", \"parents\": [5],"
                   " \"partitioner\": {\"kind\": \"range\", \"bounds\":"
                   " [1, 2]}, \"partitions\": 3},\n"
                   " {\"id\": 7, \"op\": \"glom\", \"parents\": [6]},\n"
                   " {\"id\": 8, \"op\": \"partition_by\", \"parents\": [5],"
                   " \"partitioner\": {\"kind\": \"range\", \"bounds\":"
                   " [1, 2], \"descending\": true}},\n"
                   " {\"id\": 9, \"op\": \"glom\", \"parents\": [8]}",
                   "{\"action\": \"collect\", \"dataset\": 7},"
                   " {\"action\": \"collect\", \"dataset\": 9}",
                   "[[1,\"a\"]]\n[[2,\"b\"]]\n[[3,\"c\"]]\n"
                   "[[3,\"c\"]]\n[[2,\"b\"]]\n[[1,\"a\"]]\n", 1);
    /* "partitions" alone: a hash partitioner into that many. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"partition_by\", \"parents\":"
                   " [4], \"partitions\": 5},\n"
                   " {\"id\": 6, \"op\": \"glom\", \"parents\": [5]}",
                   "{\"action\": \"count\", \"dataset\": 6},"
                   " {\"action\": \"count\", \"dataset\": 5}",
                   "5\n5\n", 1);
}

static void test_run_joins_and_cogroup(void **state)
{
    (void)state;
    static const char *const more =
        ",\n {\"id\": 5, \"op\": \"join\", \"parents\": [0, 1]},\n"
        " {\"id\": 6, \"op\": \"left_outer_join\", \"parents\": [0, 1]},\n"
        " {\"id\": 7, \"op\": \"right_outer_join\", \"parents\": [0, 1],"
        " \"partitions\": 3},\n"
        " {\"id\": 8, \"op\": \"full_outer_join\", \"parents\": [0, 1],"
        " \"partitioner\": {\"kind\": \"hash\", \"partitions\": 1}}";
    expect_key_run(more, "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":2,\"value\":[\"b\",\"x\"]}\n"
                   "{\"key\":2,\"value\":[\"c\",\"x\"]}\n", 0);
    expect_key_run(more, "{\"action\": \"collect\", \"dataset\": 6}",
                   "{\"key\":1,\"value\":[\"a\",null]}\n"
                   "{\"key\":2,\"value\":[\"b\",\"x\"]}\n"
                   "{\"key\":2,\"value\":[\"c\",\"x\"]}\n", 0);
    expect_key_run(more, "{\"action\": \"collect\", \"dataset\": 7}",
                   "{\"key\":2,\"value\":[\"b\",\"x\"]}\n"
                   "{\"key\":2,\"value\":[\"c\",\"x\"]}\n"
                   "{\"key\":3,\"value\":[null,\"y\"]}\n", 0);
    expect_key_run(more, "{\"action\": \"collect\", \"dataset\": 8}",
                   "{\"key\":1,\"value\":[\"a\",null]}\n"
                   "{\"key\":2,\"value\":[\"b\",\"x\"]}\n"
                   "{\"key\":2,\"value\":[\"c\",\"x\"]}\n"
                   "{\"key\":3,\"value\":[null,\"y\"]}\n", 0);
    /* cogroup of three: one tuple of values per input. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"parallelize\", \"args\":"
                   " {\"data\": [[2, \"p\"], [4, \"q\"]]}},\n"
                   " {\"id\": 6, \"op\": \"cogroup\", \"parents\": [1, 5, 1]}",
                   "{\"action\": \"collect\", \"dataset\": 6}",
                   "{\"key\":2,\"value\":[[\"x\"],[\"p\"],[\"x\"]]}\n"
                   "{\"key\":3,\"value\":[[\"y\"],[],[\"y\"]]}\n"
                   "{\"key\":4,\"value\":[[],[\"q\"],[]]}\n", 0);
    /* A parent already partitioned like the result joins narrow; saying
     * so is accepted. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"partition_by\", \"parents\":"
                   " [0], \"partitioner\": {\"kind\": \"hash\","
                   " \"partitions\": 2}},\n"
                   " {\"id\": 6, \"op\": \"join\", \"parents\": [{\"id\": 5,"
                   " \"dep\": \"narrow\"}, {\"id\": 1, \"dep\": \"shuffle\"}],"
                   " \"partitioner\": {\"kind\": \"hash\", \"partitions\": 2}}",
                   "{\"action\": \"collect\", \"dataset\": 6}",
                   "{\"key\":2,\"value\":[\"b\",\"x\"]}\n"
                   "{\"key\":2,\"value\":[\"c\",\"x\"]}\n", 0);
}

static void test_run_set_ops(void **state)
{
    (void)state;
    expect_key_run(",\n {\"id\": 5, \"op\": \"subtract_by_key\", \"parents\":"
                   " [0, 1]}",
                   "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":1,\"value\":\"a\"}\n", 1);
    /* 1 5 5 2 against 5 2 7. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"subtract\", \"parents\": [2, 3]}",
                   "{\"action\": \"collect\", \"dataset\": 5}", "1\n", 1);
    expect_key_run(",\n {\"id\": 5, \"op\": \"intersection\", \"parents\":"
                   " [2, 3]}",
                   "{\"action\": \"collect\", \"dataset\": 5}", "2\n5\n", 0);
    expect_key_run(",\n {\"id\": 5, \"op\": \"distinct\", \"parents\": [2],"
                   " \"partitions\": 3},\n"
                   " {\"id\": 6, \"op\": \"glom\", \"parents\": [5]}",
                   "{\"action\": \"collect\", \"dataset\": 5},"
                   " {\"action\": \"count\", \"dataset\": 6}",
                   "1\n2\n5\n3\n", 0);
    /* cartesian: 3 x 2 pairs in 2 x 2 partitions. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"cartesian\", \"parents\": [3, 1],"
                   " \"partitions\": 4}",
                   "{\"action\": \"collect\", \"dataset\": 5}",
                   "{\"key\":5,\"value\":[2,\"x\"]}\n"
                   "{\"key\":5,\"value\":[3,\"y\"]}\n"
                   "{\"key\":2,\"value\":[2,\"x\"]}\n"
                   "{\"key\":2,\"value\":[3,\"y\"]}\n"
                   "{\"key\":7,\"value\":[2,\"x\"]}\n"
                   "{\"key\":7,\"value\":[3,\"y\"]}\n", 0);
}

static void test_run_repartition_and_sorts(void **state)
{
    (void)state;
    /* repartition and coalesce with a shuffle make more partitions (glom
     * counts them); the records stay the same multiset. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"repartition\", \"parents\": [2],"
                   " \"partitions\": 3},\n"
                   " {\"id\": 6, \"op\": \"glom\", \"parents\": [5]},\n"
                   " {\"id\": 7, \"op\": \"coalesce\", \"parents\": [2],"
                   " \"partitions\": 5, \"args\": {\"shuffle\": true}},\n"
                   " {\"id\": 8, \"op\": \"glom\", \"parents\": [7]}",
                   "{\"action\": \"count\", \"dataset\": 6},"
                   " {\"action\": \"count\", \"dataset\": 8},"
                   " {\"action\": \"take_ordered\", \"dataset\": 7, \"n\": 9}",
                   "3\n5\n1\n2\n5\n5\n", 1);
    /* Sorted within each range partition: [1 2] [3 4]; descending bounds
     * and order: [4 3] [2 1]. */
    expect_key_run(",\n {\"id\": 5, \"op\": \"parallelize\", \"args\":"
                   " {\"data\": [[3, \"c\"], [1, \"a\"], [4, \"d\"],"
                   " [2, \"b\"]]}, \"partitions\": 2},\n"
                   " {\"id\": 6, \"op\": \"repartition_and_sort_within_"
                   "partitions\", \"parents\": [5], \"partitioner\":"
                   " {\"kind\": \"range\", \"bounds\": [2]}},\n"
                   " {\"id\": 7, \"op\": \"repartition_and_sort_within_"
                   "partitions\", \"parents\": [5], \"partitioner\":"
                   " {\"kind\": \"range\", \"bounds\": [2], \"descending\":"
                   " true}, \"args\": {\"ascending\": false}}",
                   "{\"action\": \"collect\", \"dataset\": 6},"
                   " {\"action\": \"collect\", \"dataset\": 7}",
                   "{\"key\":1,\"value\":\"a\"}\n{\"key\":2,\"value\":\"b\"}\n"
                   "{\"key\":3,\"value\":\"c\"}\n{\"key\":4,\"value\":\"d\"}\n"
                   "{\"key\":4,\"value\":\"d\"}\n{\"key\":3,\"value\":\"c\"}\n"
                   "{\"key\":2,\"value\":\"b\"}\n{\"key\":1,\"value\":\"a\"}\n",
                   1);
    /* sort_by_key over word sums, both ways; sort_by on the swapped pair
     * (value first). */
    expect_key_run(",\n {\"id\": 5, \"op\": \"reduce_by_key\", \"parents\":"
                   " [4], \"fns\": [\"std.sum\"]},\n"
                   " {\"id\": 6, \"op\": \"sort_by_key\", \"parents\": [5],"
                   " \"partitions\": 2},\n"
                   " {\"id\": 7, \"op\": \"sort_by_key\", \"parents\": [5],"
                   " \"args\": {\"ascending\": false}},\n"
                   " {\"id\": 8, \"op\": \"sort_by\", \"parents\": [4],"
                   " \"fns\": [\"std.swap\"]}",
                   "{\"action\": \"collect\", \"dataset\": 6},"
                   " {\"action\": \"collect\", \"dataset\": 7},"
                   " {\"action\": \"collect\", \"dataset\": 8}",
                   "{\"key\":\"a\",\"value\":4}\n{\"key\":\"b\",\"value\":7}\n"
                   "{\"key\":\"c\",\"value\":4}\n"
                   "{\"key\":\"c\",\"value\":4}\n{\"key\":\"b\",\"value\":7}\n"
                   "{\"key\":\"a\",\"value\":4}\n"
                   "{\"key\":\"a\",\"value\":1}\n{\"key\":\"b\",\"value\":2}\n"
                   "{\"key\":\"a\",\"value\":3}\n{\"key\":\"c\",\"value\":4}\n"
                   "{\"key\":\"b\",\"value\":5}\n",
                   1);
}

static void test_run_pair_actions(void **state)
{
    (void)state;
    /* count_by_key, collect_as_map (the last pair of a key wins) and
     * reduce_by_key_locally are sorted by key; lookup prints each value of
     * the key (a tuple as an array). */
    expect_key_run(",\n {\"id\": 5, \"op\": \"join\", \"parents\": [0, 1]}",
                   "{\"action\": \"count_by_key\", \"dataset\": 4},\n"
                   " {\"action\": \"collect_as_map\", \"dataset\": 4},\n"
                   " {\"action\": \"reduce_by_key_locally\", \"dataset\": 4,"
                   " \"fn\": \"std.sum\"},\n"
                   " {\"action\": \"lookup\", \"dataset\": 0, \"key\": 2},\n"
                   " {\"action\": \"lookup\", \"dataset\": 0, \"key\": 9},\n"
                   " {\"action\": \"lookup\", \"dataset\": 5, \"key\": 2}",
                   "{\"key\":\"a\",\"value\":2}\n{\"key\":\"b\",\"value\":2}\n"
                   "{\"key\":\"c\",\"value\":1}\n"
                   "{\"key\":\"a\",\"value\":3}\n{\"key\":\"b\",\"value\":5}\n"
                   "{\"key\":\"c\",\"value\":4}\n"
                   "{\"key\":\"a\",\"value\":4}\n{\"key\":\"b\",\"value\":7}\n"
                   "{\"key\":\"c\",\"value\":4}\n"
                   "\"b\"\n\"c\"\n"
                   "[\"b\",\"x\"]\n[\"c\",\"x\"]\n",
                   1);
}

static void test_run_key_op_errors(void **state)
{
    (void)state;
    /* Each names the file, the dataset (or action) and the field. */
    expect_key_error(",\n {\"id\": 5, \"op\": \"reduce_by_key\", \"parents\":"
                     " [4], \"fns\": [\"std.sum\"], \"partitioner\":"
                     " {\"kind\": \"round\"}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (reduce_by_key): partitioner.kind: unknown "
                     "partitioner kind 'round' (hash, range, function)");
    expect_key_error(",\n {\"id\": 5, \"op\": \"group_by_key\", \"parents\":"
                     " [4], \"partitioner\": {\"kind\": \"hash\","
                     " \"count\": 2}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (group_by_key): partitioner: unknown field "
                     "'count' (a hash partitioner takes: kind partitions)");
    expect_key_error(",\n {\"id\": 5, \"op\": \"partition_by\", \"parents\":"
                     " [4], \"partitioner\": {\"kind\": \"range\","
                     " \"bounds\": [\"b\", \"a\"]}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (partition_by): partitioner.bounds[1]: "
                     "bounds must ascend strictly");
    expect_key_error(",\n {\"id\": 5, \"op\": \"partition_by\", \"parents\":"
                     " [4], \"partitioner\": {\"kind\": \"range\","
                     " \"bounds\": [\"b\"], \"partitions\": 1}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (partition_by): partitioner.partitions is 1 "
                     "but 1 bounds make 2 partitions");
    expect_key_error(",\n {\"id\": 5, \"op\": \"partition_by\", \"parents\":"
                     " [4], \"partitioner\": {\"kind\": \"function\","
                     " \"partitions\": 2, \"fn\": \"std.sum\"}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (partition_by): partitioner.fn: 'std.sum' is "
                     "a reduce function; a map function is needed here");
    expect_key_error(",\n {\"id\": 5, \"op\": \"reduce_by_key\", \"parents\":"
                     " [4], \"fns\": [\"std.sum\"], \"args\":"
                     " {\"ascending\": true}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (reduce_by_key): args: reduce_by_key takes "
                     "no arguments, got 'ascending'");
    expect_key_error(",\n {\"id\": 5, \"op\": \"sort_by_key\", \"parents\":"
                     " [4], \"args\": {\"ascending\": true},"
                     " \"partitoner\": {\"kind\": \"hash\"}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (sort_by_key): unknown field 'partitoner'");
    expect_key_error(",\n {\"id\": 5, \"op\": \"distinct\", \"parents\": [2],"
                     " \"partitioner\": {\"kind\": \"hash\"}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (distinct): partitioner: distinct places "
                     "records itself and takes no partitioner");
    expect_key_error(",\n {\"id\": 5, \"op\": \"reduce_by_key\", \"parents\":"
                     " [4], \"fns\": [\"std.identity\"]}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (reduce_by_key): fns[0]: 'std.identity' is a "
                     "map function; a reduce function is needed here");
    expect_key_error(",\n {\"id\": 5, \"op\": \"combine_by_key\", \"parents\":"
                     " [4], \"fns\": [\"std.identity\", \"std.sum\"]}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (combine_by_key): fns must be an array of "
                     "three functions: create (map), merge_value and "
                     "merge_combiners (reduce), got 2");
    expect_key_error(",\n {\"id\": 5, \"op\": \"fold_by_key\", \"parents\":"
                     " [4], \"fns\": [\"std.sum\"]}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (fold_by_key): args.zero is required");
    expect_key_error(",\n {\"id\": 5, \"op\": \"reduce_by_key\", \"parents\":"
                     " [{\"id\": 4, \"dep\": \"narrow\"}], \"fns\":"
                     " [\"std.sum\"]}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (reduce_by_key): parents[0].dep: "
                     "reduce_by_key shuffles its parent; its dependency "
                     "cannot be narrow");
    expect_key_error(",\n {\"id\": 5, \"op\": \"join\", \"parents\":"
                     " [0, {\"id\": 1, \"dep\": \"narrow\"}]}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (join): parents[1].dep: dataset 1 is not "
                     "partitioned like the result");
    expect_key_error(",\n {\"id\": 5, \"op\": \"count_by_key\", \"parents\":"
                     " [4]}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (count_by_key): op: count_by_key is an "
                     "action in plan files");
    expect_key_error("",
                     "{\"action\": \"reduce_by_key_locally\", \"dataset\": 4,"
                     " \"fn\": \"std.identity\"}",
                     "action 0 (reduce_by_key_locally of dataset 4): fn: "
                     "'std.identity' is a map function");
    expect_key_error("", "{\"action\": \"lookup\", \"dataset\": 4}",
                     "action 0 (lookup of dataset 4): key is required");
    /* A bad action is found before a dataset is made, so sort_by_key's
     * sampling job never runs (and nothing is printed). */
    expect_key_error(",\n {\"id\": 5, \"op\": \"sort_by_key\", \"parents\":"
                     " [4]}",
                     "{\"action\": \"collect\", \"dataset\": 5},"
                     " {\"action\": \"take\", \"dataset\": 5}",
                     "action 1 (take of dataset 5): n is required");
}

/* sample_by_key over dataset 4 of KEY_DATA: fractions 1 and 0 keep every
 * value of their key or none, whatever the seed; keys as an object (string
 * keys) or as [KEY, FRACTION] pairs (any key, here ints and tuples). */
static void test_run_sample_by_key(void **state)
{
    (void)state;
    expect_key_run(",\n {\"id\": 5, \"op\": \"sample_by_key\", \"parents\":"
                   " [{\"id\": 4, \"dep\": \"shuffle\"}], \"partitions\": 3,"
                   " \"args\": {\"with_replacement\": false, \"seed\": 7,"
                   " \"fractions\": {\"a\": 1.0, \"b\": 0.0, \"c\": 1}}},\n"
                   " {\"id\": 6, \"op\": \"sample_by_key\", \"parents\": [0],"
                   " \"args\": {\"fractions\": [[1, 0.0], [2, 1.0]]}},\n"
                   " {\"id\": 7, \"op\": \"map\", \"parents\": [0],"
                   " \"fns\": [\"std.swap\"]},\n"
                   " {\"id\": 8, \"op\": \"key_by\", \"parents\": [7],"
                   " \"fns\": [\"std.identity\"]},\n"
                   " {\"id\": 9, \"op\": \"sample_by_key\", \"parents\": [8],"
                   " \"args\": {\"fractions\": [[[\"a\", 1], 1],"
                   " [[\"b\", 2], 0], [[\"c\", 2], 1]]}}",
                   "{\"action\": \"collect\", \"dataset\": 5},"
                   " {\"action\": \"collect\", \"dataset\": 6},"
                   " {\"action\": \"collect\", \"dataset\": 9}",
                   "{\"key\":\"a\",\"value\":1}\n{\"key\":\"a\",\"value\":3}\n"
                   "{\"key\":\"c\",\"value\":4}\n"
                   "{\"key\":2,\"value\":\"b\"}\n{\"key\":2,\"value\":\"c\"}\n"
                   "{\"key\":[\"a\",1],\"value\":[\"a\",1]}\n"
                   "{\"key\":[\"c\",2],\"value\":[\"c\",2]}\n",
                   0);
    /* With replacement 0 still keeps nothing, and a fraction may exceed
     * 1 (how many copies it makes is random: only a count is printed). */
    run_result r;
    const char *path = run_plan(
        &r, "keys.json",
        key_plan(",\n {\"id\": 5, \"op\": \"sample_by_key\", \"parents\":"
                 " [4], \"args\": {\"with_replacement\": true,"
                 " \"fractions\": [[\"a\", 0], [\"b\", 0], [\"c\", 0]]}},\n"
                 " {\"id\": 6, \"op\": \"sample_by_key\", \"parents\": [4],"
                 " \"args\": {\"with_replacement\": true,"
                 " \"fractions\": {\"a\": 2.5, \"b\": 0, \"c\": 0}}}",
                 "{\"action\": \"count\", \"dataset\": 5},"
                 " {\"action\": \"count\", \"dataset\": 6}"),
        NULL);
    expect_code(&r, 0);
    assert_true(starts_with(r.out.data, "0\n"));
    char *end = NULL;
    strtoul(r.out.data + 2, &end, 10);
    assert_true(end > r.out.data + 2);
    assert_string_equal(end, "\n");
    run_free(&r);
    unlink(path);
}

static void test_run_sample_by_key_errors(void **state)
{
    (void)state;
    /* Each names the dataset and the field, down to the item. */
    static const struct {
        const char *args, *prefix;
    } cases[] = {
        {"{\"seed\": 1}",
         "args.fractions is required"},
        {"{\"fractions\": {\"a\": 1.5, \"b\": 0, \"c\": 0}}",
         "args.fractions[\"a\"]: the fraction 1.5 must be in [0, 1] "
         "(with_replacement is false)"},
        {"{\"fractions\": [[\"a\", 1], [\"b\", -0.25]],"
         " \"with_replacement\": true}",
         "args.fractions[1][1]: the fraction -0.25 must be >= 0"},
        {"{\"fractions\": [[\"a\", 1], [\"b\", 0], [\"a\", 0.5]]}",
         "args.fractions[2]: the key \"a\" is given twice (first at "
         "args.fractions[0])"},
        {"{\"fractions\": [[[1, 2], 1], [[1, 2.0], 1], [[1, 2], 0]]}",
         "args.fractions[2]: the key [1,2] is given twice (first at "
         "args.fractions[0])"},
        {"{\"fractions\": [[\"a\", 1], [\"b\"]]}",
         "args.fractions[1] must be a [KEY, FRACTION] pair, got an array "
         "of 1"},
        {"{\"fractions\": {\"a\": \"half\"}}",
         "args.fractions[\"a\"]: a fraction must be a number, got a string"},
        {"{\"fractions\": [[{\"x\": 1}, 1]]}",
         "args.fractions[0][0]: an object is not a record value"},
        {"{\"fractions\": 0.5}",
         "args.fractions must be an array of [KEY, FRACTION] pairs or an "
         "object of fractions by string key, got a number"},
        {"{\"fractions\": {\"a\": 1}, \"seed\": \"x\"}",
         "args.seed must be an integer, got a string"},
        {"{\"fractions\": {\"a\": 1}, \"fraction\": 1}",
         "args: unknown field 'fraction' (sample_by_key takes: "
         "with_replacement fractions seed)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char more[512], want[512];
        snprintf(more, sizeof more, ",\n {\"id\": 5, \"op\": "
                 "\"sample_by_key\", \"parents\": [4], \"args\": %s}",
                 cases[i].args);
        snprintf(want, sizeof want, "dataset 5 (sample_by_key): %s",
                 cases[i].prefix);
        expect_key_error(more, "{\"action\": \"collect\", \"dataset\": 5}",
                         want);
    }
    expect_key_error(",\n {\"id\": 5, \"op\": \"sample_by_key\", \"parents\":"
                     " [4], \"partitioner\": {\"kind\": \"hash\"},"
                     " \"args\": {\"fractions\": {\"a\": 1}}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (sample_by_key): partitioner: sample_by_key "
                     "places records itself and takes no partitioner");
    expect_key_error(",\n {\"id\": 5, \"op\": \"sample_by_key\", \"parents\":"
                     " [{\"id\": 4, \"dep\": \"narrow\"}],"
                     " \"args\": {\"fractions\": {\"a\": 1}}}",
                     "{\"action\": \"collect\", \"dataset\": 5}",
                     "dataset 5 (sample_by_key): parents[0].dep: "
                     "sample_by_key shuffles its parent");
    /* A key of the data without a fraction fails the job, as in the API. */
    run_result r;
    const char *path = run_plan(
        &r, "bad-run.json",
        key_plan(",\n {\"id\": 5, \"op\": \"sample_by_key\", \"parents\":"
                 " [4], \"args\": {\"fractions\": {\"a\": 1}}}",
                 "{\"action\": \"collect\", \"dataset\": 5}"),
        NULL);
    expect_code(&r, 1);
    assert_string_equal(r.out.data, "");
    assert_non_null(strstr(r.err.data, "action 0 (collect of dataset 5): "));
    assert_non_null(strstr(r.err.data, "a key has no fraction"));
    run_free(&r);
    unlink(path);
}

/* A source component read through `source`: the text plugin's lines give
 * what text_file gives. */
static void test_run_source(void **state)
{
    (void)state;
    const char *input = scratch_file("lines.txt", "one\ntwo\nthree\n");
    char in_path[128]; /* the scratch directory's name is short */
    assert_true(strlen(input) < sizeof in_path);
    snprintf(in_path, sizeof in_path, "%s", input);
    char plan[2048];
    snprintf(plan, sizeof plan,
             "{\"ember_plan\": 1, \"datasets\": [\n"
             " {\"id\": 0, \"op\": \"text_file\","
             " \"args\": {\"path\": \"lines.txt\", \"min_partitions\": 2}},\n"
             " {\"id\": 1, \"op\": \"source\", \"args\": {\"component\":"
             " \"text.lines\", \"value\": \"%s\", \"min_partitions\": 2}},\n"
             " {\"id\": 2, \"op\": \"source\", \"args\": {\"component\":"
             " \"text.lines\", \"value\": [\"%s\"]}, \"name\": \"in\"}],\n"
             " \"actions\": [{\"action\": \"collect\", \"dataset\": 0},\n"
             "  {\"action\": \"collect\", \"dataset\": 1},\n"
             "  {\"action\": \"count\", \"dataset\": 2}]}\n",
             in_path, in_path);
    static const char lines[] = "\"one\"\n\"two\"\n\"three\"\n";
    char want[256];
    snprintf(want, sizeof want, "%s%s3\n", lines, lines);
    expect_run(plan, want);

    /* Errors name the field. */
    static const struct {
        const char *args, *prefix;
    } cases[] = {
        {"{\"value\": \"x\"}", "args.component is required"},
        {"{\"component\": \"nosuch.lines\", \"value\": \"x\"}",
         "args.component: no source component 'nosuch.lines' is loaded"},
        {"{\"component\": \"text.lines\", \"arg\": \"AA=\"}",
         "args.arg is not canonical base64"},
        {"{\"component\": \"text.lines\", \"arg\": \"AA==\","
         " \"value\": \"x\"}",
         "args: give \"arg\" (base64) or \"value\" (a record), not both"},
        {"{\"component\": \"text.lines\", \"value\": \"x\","
         " \"min_partitions\": 0}",
         "args.min_partitions is 0 but must be in 1.."},
        {"{\"component\": \"text.lines\", \"path\": \"x\"}",
         "args: unknown field 'path' (source takes: component arg value "
         "min_partitions)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(plan, sizeof plan,
                 "{\"ember_plan\": 1, \"datasets\": [\n"
                 " {\"id\": 3, \"op\": \"source\", \"args\": %s}],\n"
                 " \"actions\": [{\"action\": \"count\", \"dataset\": 3}]}\n",
                 cases[i].args);
        snprintf(want, sizeof want, "dataset 3 (source): %s",
                 cases[i].prefix);
        expect_run_error(plan, "", want);
    }
    /* What only making the dataset finds: a missing input, a count of
     * partitions the input does not split into. */
    snprintf(plan, sizeof plan,
             "{\"ember_plan\": 1, \"datasets\": [\n"
             " {\"id\": 3, \"op\": \"source\", \"partitions\": 5, \"args\":"
             " {\"component\": \"text.lines\", \"value\": \"%s\"}}],\n"
             " \"actions\": [{\"action\": \"count\", \"dataset\": 3}]}\n",
             in_path);
    expect_run_error(plan, "", "dataset 3 (source): partitions is 5 but the "
                               "input splits into ");
    snprintf(plan, sizeof plan,
             "{\"ember_plan\": 1, \"datasets\": [\n"
             " {\"id\": 3, \"op\": \"source\", \"args\":"
             " {\"component\": \"text.lines\", \"value\": \"%s.missing\"}}],\n"
             " \"actions\": [{\"action\": \"count\", \"dataset\": 3}]}\n",
             in_path);
    expect_run_error(plan, "", "dataset 3 (source): ");
    unlink(in_path);
}

static const char range_plan[] =
    "{\"ember_plan\": 1, \"datasets\": [\n"
    " {\"id\": 0, \"op\": \"range\", \"args\": {\"start\": 0, \"end\": 5}}],\n"
    " \"actions\": [{\"action\": \"count\", \"dataset\": 0}]}\n";

static void test_run_verbose(void **state)
{
    (void)state;
    run_result r;
    const char *path = run_plan(&r, "verbose.json", range_plan, "--verbose");
    expect_code(&r, 0);
    assert_string_equal(r.out.data, "5\n");
    assert_int_equal(count_lines(r.err.data, "ember.master = local[2] "
                                             "(--master)", NULL, NULL), 1);
    /* A known key left alone shows its default. */
    assert_int_equal(count_lines(r.err.data, "ember.task.maxFailures = ",
                                 "(default)", NULL), 1);
    run_free(&r);

    /* Without --master, a --conf flag sets the master. */
    run_env(&r, run_env_vars, "run", "--conf", "ember.master=local[2]",
            "--verbose", path, (const char *)NULL);
    expect_code(&r, 0);
    assert_string_equal(r.out.data, "5\n");
    assert_int_equal(count_lines(r.err.data, "ember.master = local[2] "
                                             "(--conf)", NULL, NULL), 1);
    run_free(&r);

    /* Without --verbose, stderr stays quiet. */
    run_env(&r, run_env_vars, "run", "--master", "local[2]", path,
            (const char *)NULL);
    expect_code(&r, 0);
    assert_string_equal(r.err.data, "");
    run_free(&r);
    unlink(path);
}

static void test_run_plan_plugins(void **state)
{
    (void)state;
    /* "good.so" is the fixture, beside the plan in the scratch dir. The
     * same file given with --plugin too is loaded once. */
    static const char plan[] =
        "{\"ember_plan\": 1, \"plugins\": [\"good.so\"], \"datasets\": [\n"
        " {\"id\": 0, \"op\": \"parallelize\", \"partitions\": 2,"
        " \"args\": {\"data\": [\"x\", 7]}},\n"
        " {\"id\": 1, \"op\": \"map\", \"parents\": [0],"
        " \"fns\": [\"fixture.echo\"]}],\n"
        " \"actions\": [{\"action\": \"collect\", \"dataset\": 1}]}\n";
    run_result r;
    const char *path = run_plan(&r, "plugins.json", plan, NULL);
    expect_code(&r, 0);
    assert_string_equal(r.out.data, "\"x\"\n7\n");
    run_free(&r);
    char link[PATH_MAX];
    scratch_link(link, sizeof link, "good");
    run_env(&r, run_env_vars, "run", "--master", "local[2]", "--plugin", link,
            path, (const char *)NULL);
    expect_code(&r, 0);
    assert_string_equal(r.out.data, "\"x\"\n7\n");
    run_free(&r);
    unlink(path);
}

static void test_run_wordcount_example(void **state)
{
    (void)state;
    /* The shipped example, beside an input.txt of its own. */
    char *plan = slurp(EXAMPLES_DIR "/wordcount/wordcount.json");
    const char *input = scratch_file("input.txt", "to be or\nnot to be\n");
    run_result r;
    const char *path = run_plan(&r, "wordcount.json", plan, NULL);
    expect_code(&r, 0);
    expect_same_lines(r.out.data, "{\"key\":\"to\",\"value\":2}\n"
                                  "{\"key\":\"be\",\"value\":2}\n"
                                  "{\"key\":\"or\",\"value\":1}\n"
                                  "{\"key\":\"not\",\"value\":1}\n");
    run_free(&r);
    unlink(path);
    unlink(input);
    free(plan);
}

static void test_run_usage(void **state)
{
    (void)state;
    expect_usage_error("a PLAN.json is needed", "run", (const char *)NULL);
    expect_usage_error("unknown option '--frob'", "run", "--frob", "x.json",
                       (const char *)NULL);
    expect_usage_error("--master needs a value", "run", "--master",
                       (const char *)NULL);
    expect_usage_error("unexpected argument 'b.json'", "run", "a.json",
                       "b.json", (const char *)NULL);
    run_result r;
    run(&r, "run", "--help");
    expect_code(&r, 0);
    assert_true(starts_with(r.out.data, "usage: ember run"));
    assert_non_null(strstr(r.out.data, "--verbose"));
    run_free(&r);
    run(&r, "--help");
    assert_non_null(strstr(r.out.data, "  run "));
    run_free(&r);
    run(&r, "run", "--master", "local[2]", "/nonexistent/plan.json");
    expect_code(&r, 1);
    assert_non_null(strstr(r.err.data, "cannot read /nonexistent/plan.json"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inspect_good),
        cmocka_unit_test(test_inspect_compact),
        cmocka_unit_test(test_inspect_in_tree),
        cmocka_unit_test(test_inspect_refusals),
        cmocka_unit_test(test_inspect_crash),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_list_dir_text),
        cmocka_unit_test(test_list_dir_json),
        cmocka_unit_test(test_list_env_path),
        cmocka_unit_test(test_list_env_path_several_dirs),
        cmocka_unit_test(test_list_default_dir),
        cmocka_unit_test(test_list_missing_dir),
        cmocka_unit_test(test_list_plugin_files),
        cmocka_unit_test(test_plan_check_and_describe),
        cmocka_unit_test(test_run_parallelize_map_collect),
        cmocka_unit_test(test_run_range_count_take),
        cmocka_unit_test(test_run_fold_with_zero),
        cmocka_unit_test(test_run_reduce_empty),
        cmocka_unit_test(test_run_zip_with_unique_id),
        cmocka_unit_test(test_run_narrow_ops),
        cmocka_unit_test(test_run_count_by_value),
        cmocka_unit_test(test_run_save_as_text_file),
        cmocka_unit_test(test_run_bad_plans),
        cmocka_unit_test(test_run_reduce_fold_aggregate_combine),
        cmocka_unit_test(test_run_group_ops),
        cmocka_unit_test(test_run_partition_by),
        cmocka_unit_test(test_run_joins_and_cogroup),
        cmocka_unit_test(test_run_set_ops),
        cmocka_unit_test(test_run_repartition_and_sorts),
        cmocka_unit_test(test_run_pair_actions),
        cmocka_unit_test(test_run_key_op_errors),
        cmocka_unit_test(test_run_sample_by_key),
        cmocka_unit_test(test_run_sample_by_key_errors),
        cmocka_unit_test(test_run_source),
        cmocka_unit_test(test_run_verbose),
        cmocka_unit_test(test_run_plan_plugins),
        cmocka_unit_test(test_run_wordcount_example),
        cmocka_unit_test(test_run_usage),
    };
    return cmocka_run_group_tests_name("cli", tests, group_setup,
                                       group_teardown);
}
