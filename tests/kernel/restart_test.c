/*
 * A kernel that dies with jobs running leaves them in its state database;
 * the next kernel on that database marks them INTERRUPTED and continues
 * its ids after them. The dying kernel is a child process that exits
 * without cleaning up, as a crash would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ember/kernel/kernel.h"
#include "plans.h"
#include "state/store.h"

static int64_t count(const char *db, const char *sql)
{
    em_store *ro = NULL;
    ember_error err = {0};
    int64_t v = -1;
    if (em_store_open_readonly(&ro, db, &err) != EMBER_OK ||
        em_store_query_int(ro, sql, &v, &err) != EMBER_OK)
        fail_msg("%s", err.msg);
    em_store_close(ro);
    return v;
}

static uint64_t submit(em_kernel *k, uint64_t app)
{
    em_job_spec spec = {.app_id = app, .plan = PLAN_NARROW("2"),
                        .plan_len = strlen(PLAN_NARROW("2")), .dataset = 1};
    ember_error err = {0};
    uint64_t id = 0;
    if (em_kernel_submit(k, &spec, &id, &err) != EMBER_OK)
        fail_msg("%s", err.msg);
    em_kernel_run(k, EM_KERNEL_RUN_UNTIL_IDLE);
    return id;
}

static void unfinished_jobs_are_interrupted_after_a_crash(void **state)
{
    (void)state;
    char dir[] = "/tmp/ember-restart-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char db[64];
    snprintf(db, sizeof db, "%s/ember.db", dir);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        em_kernel *k = NULL;
        em_kernel_opts opts = {.state_path = db};
        uint64_t app;
        if (em_kernel_create(&k, &opts, NULL) != EMBER_OK ||
            em_kernel_app_open(k, "first", &app, NULL) != EMBER_OK)
            _exit(1);
        submit(k, app);
        submit(k, app);
        _exit(0); /* no destroy: the jobs stay RUNNING on disk */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(count(db, "SELECT COUNT(*) FROM jobs WHERE "
                               "status='RUNNING'"), 2);

    em_kernel *k = NULL;
    em_kernel_opts opts = {.state_path = db};
    ember_error err = {0};
    assert_int_equal(em_kernel_create(&k, &opts, &err), EMBER_OK);
    assert_int_equal(count(db, "SELECT COUNT(*) FROM jobs WHERE "
                               "status='INTERRUPTED'"), 2);
    assert_int_equal(count(db, "SELECT COUNT(*) FROM applications WHERE "
                               "status='INTERRUPTED'"), 1);
    uint64_t app;
    assert_int_equal(em_kernel_app_open(k, "second", &app, &err), EMBER_OK);
    assert_int_equal(app, 2);
    assert_int_equal(submit(k, app), 3);
    em_kernel_destroy(k);
    (void)em_store_remove_files(db, NULL);
    rmdir(dir);
}

static void unusable_state_path_is_a_clear_error(void **state)
{
    (void)state;
    em_kernel *k = NULL;
    em_kernel_opts opts = {.state_path = "/nonexistent-dir/ember.db"};
    ember_error err = {0};
    assert_int_not_equal(em_kernel_create(&k, &opts, &err), EMBER_OK);
    assert_null(k);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/ember.db"));
    opts.state_path = NULL;
    assert_int_equal(em_kernel_create(&k, &opts, &err), EMBER_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unfinished_jobs_are_interrupted_after_a_crash),
        cmocka_unit_test(unusable_state_path_is_a_clear_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
