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

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver_support.h"
#include "ember/ember.h"
#include "ember/record.h"

static char text_path[256];
static char *reference; /* "word\tcount\n" lines, sorted */

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
    sort_strs(words, nwords);
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
    reference = join_sorted_lines(lines, nl);
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

/* A session on master with testfn. */
static ember_session *open_session(const char *master)
{
    return session_open(master, NULL, NULL, TESTFN_PLUGIN);
}

/* Word count on master must equal the reference. */
static void check_wordcount(const char *master)
{
    ember_session *s = open_session(master);
    char *got = count_words(s, text_path, 8);
    assert_string_equal(got, reference);
    free(got);
    ember_session_close(s);
}

static void wordcount_local_matches_reference(void **state)
{
    (void)state;
    check_wordcount("local[2]");
}

static void wordcount_local_cluster_matches_reference(void **state)
{
    (void)state;
    check_wordcount("local-cluster[2,1,512]");
}

static void sigkill_mid_job_keeps_the_answer(void **state)
{
    (void)state;
    ember_session *s = open_session("local-cluster[2,1,512]");
    ember_error err = {0};
    /* 40 tasks of ~30 ms each on 2 one-slot executors: ~600 ms of work */
    uint8_t arg[16];
    ember_rdd *r = ember_range(s, 0, 400000, 1, 40, &err);
    ember_rdd *slow = ember_map(r, fn_int("testfn.sleep_ms", arg, sizeof arg,
                                          30),
                                &err);
    static bg_action j; /* static: the thread may outlive a failed test */
    bg_start(&j, slow, 0);
    pid_t victim = -1;
    for (int i = 0; i < 200 && victim < 0; i++) {
        sleep_ms(10);
        victim = executor_pid("exec-0");
    }
    assert_true(victim > 0);
    sleep_ms(150); /* let it take tasks */
    assert_int_equal(kill(victim, SIGKILL), 0);
    bg_join(&j);
    if (j.st != EMBER_OK)
        fail_msg("count after SIGKILL: %s", j.err.msg);
    assert_int_equal(j.n, 400000);
    /* a replacement executor took exec-0's place */
    pid_t replacement = -1;
    for (int i = 0; i < 200 && replacement < 0; i++) {
        replacement = executor_pid("exec-2");
        sleep_ms(10);
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
    ember_rdd *boom = ember_map(r, fn0("testfn.crash"), &err);
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
    ember_session *s = session_open("local-cluster[1,1,512]", NULL,
                                    g_timeout_conf, TESTFN_PLUGIN);
    assert_non_null(strstr(count_past_timeout(s, NULL),
                           "ember.task.timeout"));
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
