/*
 * Unit tests of the block location table (dag/block_locs.h) over a real
 * state store in a temp directory: what is recorded and replaced, the
 * order of holders, and each way rows go (a dropped report, a lost
 * executor, an unpersisted dataset, a closed application, a new kernel),
 * in memory and in the store's blocks table alike.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dag/block_locs.h"
#include "runtime/block_mgr.h"
#include "state/store.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    em_store *store;
    em_block_locs *bl;
    uint64_t errors;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/block_locs_test-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/state.db", f->dir);
    ember_error err = {0};
    if (em_store_open(&f->store, f->path, &err) != EMBER_OK ||
        em_block_locs_create(&f->bl, f->store, &f->errors, &err) != EMBER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    em_block_locs_destroy(f->bl);
    em_store_close(f->store);
    em_store_remove_files(f->path, NULL);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The number of store rows matching the SQL condition. */
static int64_t rows(fixture *f, const char *where)
{
    char sql[256];
    int64_t n = -1;
    ember_error err = {0};
    snprintf(sql, sizeof sql, "SELECT count(*) FROM blocks%s%s",
             where ? " WHERE " : "", where ? where : "");
    if (em_store_query_int(f->store, sql, &n, &err) != EMBER_OK)
        fail_msg("%s: %s", sql, err.msg);
    return n;
}

static void test_stored_and_replaced(void **state)
{
    fixture *f = *state;
    em_block_holder h[4];
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 4), 0);
    em_block_locs_stored(f->bl, 1, 5, 0, 7, "exec-a", EM_BLOCK_MEMORY, 100);
    em_block_locs_stored(f->bl, 1, 5, 0, 3, "exec-b", EM_BLOCK_DISK, 90);
    em_block_locs_stored(f->bl, 1, 5, 1, 3, "exec-b", EM_BLOCK_MEMORY, 80);
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 4), 2);
    assert_int_equal(h[0].exec_no, 7); /* in the order they reported */
    assert_int_equal(h[0].tier, EM_BLOCK_MEMORY);
    assert_int_equal(h[0].bytes, 100);
    assert_int_equal(h[1].exec_no, 3);
    /* cap 1: one copied, the count still says two */
    memset(h, 0, sizeof h);
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 1), 2);
    assert_int_equal(h[1].exec_no, 0);
    /* the same executor again replaces its entry (moved to disk) */
    em_block_locs_stored(f->bl, 1, 5, 0, 7, "exec-a", EM_BLOCK_DISK, 60);
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 4), 2);
    assert_int_equal(h[0].tier, EM_BLOCK_DISK);
    assert_int_equal(h[0].bytes, 60);
    assert_int_equal(em_block_locs_count(f->bl), 3);
    assert_int_equal(rows(f, NULL), 3);
    assert_int_equal(rows(f, "app_id = 1 AND dataset = 5 AND partition = 0 "
                             "AND executor_id = 'exec-a' AND tier = 'DISK' "
                             "AND bytes = 60"), 1);
    /* another application's dataset 5 is another dataset */
    assert_int_equal(em_block_locs_get(f->bl, 2, 5, 0, h, 4), 0);
    assert_int_equal(f->errors, 0);
}

static void test_dropped(void **state)
{
    fixture *f = *state;
    em_block_holder h[4];
    em_block_locs_stored(f->bl, 1, 5, 0, 7, "exec-a", EM_BLOCK_MEMORY, 100);
    em_block_locs_stored(f->bl, 1, 5, 0, 3, "exec-b", EM_BLOCK_MEMORY, 100);
    em_block_locs_dropped(f->bl, 1, 5, 0, 7, "exec-a");
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 4), 1);
    assert_int_equal(h[0].exec_no, 3);
    assert_int_equal(rows(f, "executor_id = 'exec-a'"), 0);
    assert_int_equal(rows(f, "executor_id = 'exec-b'"), 1);
    /* dropping what is not there is nothing */
    em_block_locs_dropped(f->bl, 1, 5, 0, 7, "exec-a");
    em_block_locs_dropped(f->bl, 9, 9, 9, 9, "exec-z");
    em_block_locs_dropped(f->bl, 1, 5, 0, 3, "exec-b");
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 4), 0);
    assert_int_equal(em_block_locs_count(f->bl), 0);
    assert_int_equal(rows(f, NULL), 0);
    assert_int_equal(f->errors, 0);
}

static void test_remove_executor(void **state)
{
    fixture *f = *state;
    em_block_holder h[4];
    for (uint32_t p = 0; p < 100; p++) {
        em_block_locs_stored(f->bl, 1, 5, p, 7, "exec-a", EM_BLOCK_MEMORY, 1);
        if (p % 2)
            em_block_locs_stored(f->bl, 2, 6, p, 3, "exec-b", EM_BLOCK_DISK,
                                 1);
    }
    em_block_locs_stored(f->bl, 1, 5, 0, 3, "exec-b", EM_BLOCK_MEMORY, 1);
    assert_int_equal(em_block_locs_count(f->bl), 151);
    em_block_locs_remove_executor(f->bl, 3, "exec-b");
    assert_int_equal(em_block_locs_count(f->bl), 100);
    assert_int_equal(rows(f, NULL), 100);
    assert_int_equal(rows(f, "executor_id = 'exec-b'"), 0);
    assert_int_equal(em_block_locs_get(f->bl, 2, 6, 1, h, 4), 0);
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 0, h, 4), 1);
    assert_int_equal(h[0].exec_no, 7);
    assert_int_equal(f->errors, 0);
}

static void test_remove_dataset_and_app(void **state)
{
    fixture *f = *state;
    em_block_holder h[4];
    for (uint32_t p = 0; p < 4; p++) {
        em_block_locs_stored(f->bl, 1, 5, p, 7, "exec-a", EM_BLOCK_MEMORY, 1);
        em_block_locs_stored(f->bl, 1, 6, p, 7, "exec-a", EM_BLOCK_MEMORY, 1);
        em_block_locs_stored(f->bl, 2, 5, p, 7, "exec-a", EM_BLOCK_MEMORY, 1);
    }
    em_block_locs_remove_dataset(f->bl, 1, 5);
    assert_int_equal(em_block_locs_get(f->bl, 1, 5, 2, h, 4), 0);
    assert_int_equal(em_block_locs_get(f->bl, 1, 6, 2, h, 4), 1);
    assert_int_equal(em_block_locs_get(f->bl, 2, 5, 2, h, 4), 1);
    assert_int_equal(em_block_locs_count(f->bl), 8);
    assert_int_equal(rows(f, "app_id = 1 AND dataset = 5"), 0);
    assert_int_equal(rows(f, NULL), 8);
    em_block_locs_remove_app(f->bl, 2);
    assert_int_equal(em_block_locs_get(f->bl, 2, 5, 2, h, 4), 0);
    assert_int_equal(em_block_locs_count(f->bl), 4);
    assert_int_equal(rows(f, "app_id = 2"), 0);
    assert_int_equal(rows(f, NULL), 4);
    /* unknown ones are nothing */
    em_block_locs_remove_app(f->bl, 42);
    em_block_locs_remove_dataset(f->bl, 42, 1);
    assert_int_equal(rows(f, NULL), 4);
    assert_int_equal(f->errors, 0);
}

static void test_new_table_clears_store(void **state)
{
    fixture *f = *state;
    em_block_locs_stored(f->bl, 1, 5, 0, 7, "exec-a", EM_BLOCK_MEMORY, 1);
    assert_int_equal(rows(f, NULL), 1);
    em_block_locs *again = NULL;
    ember_error err = {0};
    assert_int_equal(em_block_locs_create(&again, f->store, &f->errors, &err),
                     EMBER_OK);
    assert_int_equal(rows(f, NULL), 0);
    assert_int_equal(em_block_locs_count(again), 0);
    em_block_locs_destroy(again);
    em_block_locs_destroy(NULL);
    /* a failing store write is counted, the table goes on */
    em_block_locs_stored(f->bl, 1, 5, 1, 7, "", EM_BLOCK_MEMORY, 1);
    assert_int_equal(f->errors, 1);
    assert_int_equal(em_block_locs_count(f->bl), 2);
}

static void test_store_refusals(void **state)
{
    fixture *f = *state;
    ember_error err = {0};
    assert_int_equal(em_store_block_set(f->store, 1, 2, 3, "e", "RAM", 1,
                                        &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "RAM"));
    assert_int_equal(em_store_block_set(f->store, 1, 2, 3, NULL, "DISK", 1,
                                        &err),
                     EMBER_EINVAL);
    assert_int_equal(em_store_block_set(f->store, 1, 2, 3, "e", "OFF_HEAP",
                                        5, &err),
                     EMBER_OK);
    assert_int_equal(rows(f, "tier = 'OFF_HEAP'"), 1);
    assert_int_equal(em_store_block_remove(f->store, 1, 2, 3, "e", &err),
                     EMBER_OK);
    assert_int_equal(rows(f, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_and_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_executor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_dataset_and_app, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_table_clears_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_refusals, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
