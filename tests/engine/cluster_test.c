/*
 * cluster_test.c — the engine with executors that are processes
 * (local-cluster[E,C,M]) and threads (local[2]) on the same job: word count
 * over a multi-megabyte text matches a reference count made here, an
 * executor killed with SIGKILL mid-job does not change the answer, and a
 * function that kills its executor every time fails the job after
 * ember.task.maxFailures attempts with a message that says so, after which
 * the session (with replacement executors) still works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember/ember.h"
#include "ember/record.h"

static char text_path[256];
static char *reference; /* "word\tcount\n" lines, sorted */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Joins sorted lines into one string. */
static char *join_sorted(char **lines, size_t n)
{
    qsort(lines, n, sizeof *lines, cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    char *out = malloc(len), *p = out;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s\n", lines[i]);
    *p = '\0';
    return out;
}

/* A ~6 MB text from a fixed generator; the reference count by sorting
 * every word (words: runs of bytes that are not ASCII white space). */
static int setup_text(void **state)
{
    (void)state;
    snprintf(text_path, sizeof text_path, "/tmp/ember-cluster-test-%ld.txt",
             (long)getpid());
    FILE *f = fopen(text_path, "w");
    assert_non_null(f);
    uint64_t x = 12345;
    size_t nwords = 0, cap = 1 << 20;
    char **words = malloc(cap * sizeof *words);
    static const char *const ws[] = {" ", "  ", "\t", " \r", "\v", "\f"};
    while (ftell(f) < 6 * 1000 * 1000) {
        int line = 1 + (int)(x % 14);
        for (int i = 0; i < line; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(x >> 33);
            char w[16];
            /* a skewed vocabulary: rank r % 5000 squared-down */
            unsigned rank = (r % 5000) * (r % 5000) / 5000;
            int n = snprintf(w, sizeof w, "w%u%c", rank,
                             "abcxyz\x80\xff"[r % 8]);
            (void)n;
            fputs(w, f);
            fputs(ws[(x >> 20) % 6], f);
            if (nwords == cap)
                words = realloc(words, (cap *= 2) * sizeof *words);
            words[nwords++] = strdup(w);
        }
        fputc('\n', f);
    }
    fclose(f);
    qsort(words, nwords, sizeof *words, cmp_str);
    char **lines = malloc(nwords * sizeof *lines);
    size_t nl = 0;
    for (size_t i = 0; i < nwords;) {
        size_t j = i;
        while (j < nwords && strcmp(words[j], words[i]) == 0)
            j++;
        char buf[64];
        snprintf(buf, sizeof buf, "%s\t%zu", words[i], j - i);
        lines[nl++] = strdup(buf);
        i = j;
    }
    reference = join_sorted(lines, nl);
    for (size_t i = 0; i < nl; i++)
        free(lines[i]);
    for (size_t i = 0; i < nwords; i++)
        free(words[i]);
    free(lines);
    free(words);
    return 0;
}

static int teardown_text(void **state)
{
    (void)state;
    unlink(text_path);
    free(reference);
    return 0;
}

static ember_session *open_session(const char *master)
{
    ember_error err = {0};
    ember_session *s = NULL;
    const char *plugins[] = {TESTFN_PLUGIN, NULL};
    ember_session_opts o = {.master = master, .plugins = plugins};
    if (ember_session_open(&s, &o, &err) != EMBER_OK)
        fail_msg("open %s: %s", master, err.msg);
    return s;
}

/* Word count through the C API, rendered like the reference. */
static char *wordcount(ember_session *s)
{
    ember_error err = {0};
    ember_rdd *lines = ember_text_file(s, text_path, 8, &err);
    assert_non_null(lines);
    ember_rdd *words = ember_flat_map(
        lines, (ember_fn){"std.split_words", NULL, 0}, &err);
    assert_non_null(words);
    ember_records counts = {0};
    if (ember_count_by_value(words, &counts, &err) != EMBER_OK)
        fail_msg("count_by_value: %s", err.msg);
    char **out = malloc((counts.count + 1) * sizeof *out);
    ember_batch b = {counts.data, counts.len, counts.count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len, n = 0;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        ember_value w = {0}, k = {0};
        assert_int_equal(ember_rec_next(&rc, &w), EMBER_OK);
        assert_int_equal(ember_rec_next(&rc, &k), EMBER_OK);
        assert_int_equal(w.type, EMBER_TYPE_STRING);
        char word[64] = {0};
        assert_true(w.u.str.len < sizeof word);
        ember_rec_string_copy(&w, word, w.u.str.len);
        char buf[96];
        snprintf(buf, sizeof buf, "%s\t%lld", word, (long long)k.u.i64);
        out[n++] = strdup(buf);
    }
    char *joined = join_sorted(out, n);
    for (size_t i = 0; i < n; i++)
        free(out[i]);
    free(out);
    ember_records_free(&counts);
    return joined;
}

static void wordcount_local_matches_reference(void **state)
{
    (void)state;
    ember_session *s = open_session("local[2]");
    char *got = wordcount(s);
    assert_string_equal(got, reference);
    free(got);
    ember_session_close(s);
}

static void wordcount_local_cluster_matches_reference(void **state)
{
    (void)state;
    ember_session *s = open_session("local-cluster[2,1,512]");
    char *got = wordcount(s);
    assert_string_equal(got, reference);
    free(got);
    ember_session_close(s);
}

/* The pid of this process's child running ember-executor with --id id,
 * or -1. */
static pid_t executor_pid(const char *id)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    while (d && (e = readdir(d)) != NULL && found < 0) {
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int pid = 0, ppid = 0;
        char comm[256], st;
        int ok = fscanf(f, "%d %255s %c %d", &pid, comm, &st, &ppid) == 4;
        fclose(f);
        if (!ok || ppid != getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        for (size_t i = 0; i + 1 < n; i++)
            if (buf[i] == '\0' && strcmp(buf + i + 1, "--id") == 0 &&
                strcmp(buf + i + 1 + strlen("--id") + 1, id) == 0)
                found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

typedef struct count_job {
    ember_rdd *rdd;
    uint64_t n;
    ember_status st;
    ember_error err;
} count_job;

static void *run_count(void *arg)
{
    count_job *j = arg;
    j->st = ember_count(j->rdd, &j->n, &j->err);
    return NULL;
}

static void sigkill_mid_job_keeps_the_answer(void **state)
{
    (void)state;
    ember_session *s = open_session("local-cluster[2,1,512]");
    ember_error err = {0};
    /* 40 tasks of ~30 ms each on 2 one-slot executors: ~600 ms of work */
    uint8_t arg[4];
    ember_buf ab = ember_buf_fixed(arg, sizeof arg);
    ember_rec_put_int(&ab, 30);
    ember_rdd *r = ember_range(s, 0, 400000, 1, 40, &err);
    ember_rdd *slow = ember_map(r, (ember_fn){"testfn.sleep_ms", arg, ab.len},
                                &err);
    assert_non_null(slow);
    count_job j = {slow, 0, EMBER_OK, {0}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_count, &j), 0);
    pid_t victim = -1;
    for (int i = 0; i < 200 && victim < 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        victim = executor_pid("exec-0");
    }
    assert_true(victim > 0);
    struct timespec ts = {0, 150 * 1000 * 1000};
    nanosleep(&ts, NULL); /* let it take tasks */
    assert_int_equal(kill(victim, SIGKILL), 0);
    pthread_join(t, NULL);
    if (j.st != EMBER_OK)
        fail_msg("count after SIGKILL: %s", j.err.msg);
    assert_int_equal(j.n, 400000);
    /* a replacement executor took exec-0's place */
    pid_t replacement = -1;
    for (int i = 0; i < 200 && replacement < 0; i++) {
        replacement = executor_pid("exec-2");
        struct timespec w = {0, 10 * 1000 * 1000};
        nanosleep(&w, NULL);
    }
    assert_true(replacement > 0);
    ember_session_close(s);
}

static void crashing_function_fails_after_max_failures(void **state)
{
    (void)state;
    ember_session *s = open_session("local-cluster[2,1,512]");
    ember_error err = {0};
    ember_rdd *r = ember_range(s, 0, 10, 1, 1, &err);
    ember_rdd *boom = ember_map(r, (ember_fn){"testfn.crash", NULL, 0}, &err);
    uint64_t n = 0;
    assert_int_not_equal(ember_count(boom, &n, &err), EMBER_OK);
    assert_non_null(strstr(err.msg, "failed 4 times"));
    /* the connection closing or the cluster manager's report of the exit
     * status, whichever reached the kernel first */
    assert_true(strstr(err.msg, "killed by signal 9") ||
                strstr(err.msg, "peer disconnected"));
    assert_non_null(strstr(err.msg, "lost"));
    /* and it says what the lost task was running: the stage's operations,
     * with the function that brought the executor down */
    if (!strstr(err.msg, "lost while running task") ||
        !strstr(err.msg, "range -> map testfn.crash)"))
        fail_msg("the error does not name the crashing function: %s",
                 err.msg);
    /* the session still has executors (replacements) and works */
    assert_int_equal(ember_count(r, &n, &err), EMBER_OK);
    assert_int_equal(n, 10);
    ember_session_close(s);
}

/* Settings made in the driver (here: in code) reach executor processes. */
static void driver_settings_reach_executor_processes(void **state)
{
    (void)state;
    ember_error err = {0};
    ember_session *s = NULL;
    const char *plugins[] = {TESTFN_PLUGIN, NULL};
    const char *conf[] = {"ember.task.timeout=200ms",
                          "ember.result.batchBytes=4k", NULL};
    ember_session_opts o = {.master = "local-cluster[1,1,512]",
                            .plugins = plugins, .conf = conf};
    if (ember_session_open(&s, &o, &err) != EMBER_OK)
        fail_msg("open: %s", err.msg);
    uint8_t arg[4];
    ember_buf ab = ember_buf_fixed(arg, sizeof arg);
    ember_rec_put_int(&ab, 50);
    ember_rdd *r = ember_range(s, 0, 40000, 1, 1, &err);
    ember_rdd *slow =
        ember_map(r, (ember_fn){"testfn.sleep_ms", arg, ab.len}, &err);
    uint64_t n = 0;
    assert_int_not_equal(ember_count(slow, &n, &err), EMBER_OK);
    assert_non_null(strstr(err.msg, "ember.task.timeout"));
    ember_session_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wordcount_local_matches_reference),
        cmocka_unit_test(wordcount_local_cluster_matches_reference),
        cmocka_unit_test(sigkill_mid_job_keeps_the_answer),
        cmocka_unit_test(crashing_function_fails_after_max_failures),
        cmocka_unit_test(driver_settings_reach_executor_processes),
    };
    return cmocka_run_group_tests(tests, setup_text, teardown_text);
}
