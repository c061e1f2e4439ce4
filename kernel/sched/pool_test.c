/* Unit tests of scheduling pools and the fairscheduler.xml loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ember/kernel/log.h"
#include "sched/pool.h"

/* A task set as the task scheduler would embed it. */
typedef struct job {
    em_pool_entry e; /* first, so an entry pointer is a job pointer */
    char tag;
} job;

static void job_init(job *j, char tag, uint64_t prio, uint64_t stage,
                     const char *name)
{
    memset(j, 0, sizeof *j);
    j->tag = tag;
    j->e.priority = prio;
    j->e.stage_id = stage;
    j->e.name = name;
}

/* Accepts the first entry offered and starts one task on it. */
static int accept_first(em_pool_entry *e, void *ctx)
{
    (void)ctx;
    em_pool_entry_running_add(e, 1);
    return ((job *)(void *)e)->tag;
}

/* Offers n slots one by one; seq gets the tags launched, NUL-terminated. */
static size_t launch(em_pool_tree *t, size_t n, char *seq)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int tag = em_pool_tree_offer(t, accept_first, NULL);
        if (tag == 0)
            break;
        seq[i] = (char)tag;
    }
    seq[i] = '\0';
    return i;
}

static em_pool_tree *fair_tree(const char *xml)
{
    em_pool_tree *t;
    ember_error err;
    assert_int_equal(em_pool_tree_create(&t, EM_SCHED_FAIR, &err), EMBER_OK);
    if (xml) {
        ember_status s =
            em_pool_tree_load_xml(t, xml, strlen(xml), "test.xml", &err);
        if (s != EMBER_OK)
            fail_msg("%s", err.msg);
    }
    return t;
}

static em_pool *pool(em_pool_tree *t, const char *name)
{
    em_pool *p = NULL;
    ember_error err;
    assert_int_equal(em_pool_tree_get(t, name, &p, &err), EMBER_OK);
    assert_non_null(p);
    return p;
}

static int find_info(em_pool_tree *t, const char *name, em_pool_info *out)
{
    size_t cur = 0;
    while (em_pool_tree_next(t, &cur, out) == EMBER_OK)
        if (strcmp(out->name, name) == 0)
            return 1;
    return 0;
}

static void test_fifo_ignores_pools(void **state)
{
    (void)state;
    em_pool_tree *t;
    ember_error err;
    assert_int_equal(em_pool_tree_create(&t, EM_SCHED_FIFO, &err), EMBER_OK);
    assert_int_equal(em_pool_tree_mode(t), EM_SCHED_FIFO);
    job a, b, c, d;
    job_init(&a, 'A', 2, 5, "a");
    job_init(&b, 'B', 1, 7, "b");
    job_init(&c, 'C', 1, 3, "c");
    job_init(&d, 'D', 3, 0, "d");
    em_pool *pa = pool(t, "production");
    em_pool *pd = pool(t, NULL);
    assert_ptr_equal(pa, pd);
    assert_string_equal(em_pool_name(pa), "root");
    em_pool_add_entry(pa, &a.e);
    em_pool_add_entry(pool(t, "test"), &b.e);
    em_pool_add_entry(pd, &c.e);
    em_pool_add_entry(pool(t, "other"), &d.e);
    /* No pools exist in FIFO mode. */
    size_t cur = 0;
    em_pool_info info;
    assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_END);
    assert_null(em_pool_tree_find(t, "production"));

    em_pool_entry *order[4];
    assert_int_equal(em_pool_tree_order(t, order, 4), 4);
    assert_ptr_equal(order[0], &c.e);
    assert_ptr_equal(order[1], &b.e);
    assert_ptr_equal(order[2], &a.e);
    assert_ptr_equal(order[3], &d.e);
    /* A short buffer still gets the full count. */
    assert_int_equal(em_pool_tree_order(t, order, 1), 4);
    assert_ptr_equal(order[0], &c.e);
    assert_int_equal(em_pool_tree_order(t, NULL, 0), 4);

    /* Running tasks do not change FIFO order: the earliest job takes all. */
    char seq[8];
    assert_int_equal(launch(t, 3, seq), 3);
    assert_string_equal(seq, "CCC");
    em_pool_remove_entry(&c.e);
    assert_int_equal(launch(t, 2, seq), 2);
    assert_string_equal(seq, "BB");

    /* Loading an allocation file is refused in FIFO mode. */
    const char *xml = "<allocations/>";
    assert_int_equal(em_pool_tree_load_xml(t, xml, strlen(xml), "f.xml", &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "FAIR"));
    em_pool_tree_destroy(t);
}

static const char two_pools[] = "<allocations>\n"
                                "  <pool name=\"a\"><schedulingMode>FAIR"
                                "</schedulingMode></pool>\n"
                                "  <pool name=\"b\"><schedulingMode>FAIR"
                                "</schedulingMode></pool>\n"
                                "</allocations>\n";

static void test_fair_equal_weights_alternate(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(two_pools);
    job a, b;
    job_init(&a, 'A', 1, 0, "job1");
    job_init(&b, 'B', 2, 0, "job2");
    em_pool_add_entry(pool(t, "a"), &a.e);
    em_pool_add_entry(pool(t, "b"), &b.e);
    char seq[16];
    assert_int_equal(launch(t, 8, seq), 8);
    assert_string_equal(seq, "ABABABAB");
    assert_int_equal(a.e.running, 4);
    assert_int_equal(b.e.running, 4);
    em_pool_tree_destroy(t);
}

static void test_fair_weights(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree("<allocations>\n"
                                "  <pool name=\"a\"><weight>1</weight></pool>\n"
                                "  <pool name=\"b\"><weight>2</weight></pool>\n"
                                "  <pool name=\"z\"><weight>0</weight></pool>\n"
                                "</allocations>\n");
    job a, b, z;
    job_init(&a, 'A', 1, 0, "job1");
    job_init(&b, 'B', 2, 0, "job2");
    job_init(&z, 'Z', 3, 0, "job3");
    em_pool_add_entry(pool(t, "a"), &a.e);
    em_pool_add_entry(pool(t, "b"), &b.e);
    em_pool_add_entry(pool(t, "z"), &z.e);
    char seq[64];
    assert_int_equal(launch(t, 9, seq), 9);
    assert_string_equal(seq, "ABBABBABB");
    assert_int_equal(launch(t, 21, seq), 21);
    assert_int_equal(a.e.running, 10);
    assert_int_equal(b.e.running, 20);
    /* Weight 0 gets slots only when no weighted pool has work. */
    assert_int_equal(z.e.running, 0);
    em_pool_remove_entry(&a.e);
    em_pool_remove_entry(&b.e);
    assert_int_equal(launch(t, 2, seq), 2);
    assert_string_equal(seq, "ZZ");
    em_pool_tree_destroy(t);
}

static void test_min_share_first(void **state)
{
    (void)state;
    /* z sorts after a by name, yet gets slots first while below minShare. */
    em_pool_tree *t = fair_tree(
        "<allocations>\n"
        "  <pool name=\"a\"><schedulingMode>FAIR</schedulingMode></pool>\n"
        "  <pool name=\"z\"><minShare>3</minShare></pool>\n"
        "</allocations>\n");
    job a, z;
    job_init(&a, 'A', 1, 0, "job1");
    job_init(&z, 'Z', 2, 0, "job2");
    em_pool_add_entry(pool(t, "a"), &a.e);
    em_pool_add_entry(pool(t, "z"), &z.e);
    char seq[16];
    assert_int_equal(launch(t, 8, seq), 8);
    assert_string_equal(seq, "ZZZAAAAZ");
    em_pool_tree_destroy(t);
}

static void test_max_share_caps(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(
        "<allocations>\n"
        "  <pool name=\"a\"><maxShare>2</maxShare></pool>\n"
        "  <pool name=\"b\"/>\n"
        "</allocations>\n");
    job a, b;
    job_init(&a, 'A', 1, 0, "job1");
    job_init(&b, 'B', 2, 0, "job2");
    em_pool_add_entry(pool(t, "a"), &a.e);
    em_pool_add_entry(pool(t, "b"), &b.e);
    char seq[16];
    assert_int_equal(launch(t, 6, seq), 6);
    assert_string_equal(seq, "ABABBB");
    /* Only the capped pool has work left: free slots stay free. */
    em_pool_remove_entry(&b.e);
    assert_int_equal(em_pool_tree_offer(t, accept_first, NULL), 0);
    assert_int_equal(em_pool_tree_order(t, NULL, 0), 0);
    assert_int_equal(a.e.running, 2);
    /* A task ends: the pool is under its cap again. */
    em_pool_entry_running_add(&a.e, -1);
    assert_int_equal(launch(t, 3, seq), 1);
    assert_string_equal(seq, "A");
    em_pool_tree_destroy(t);
}

static void test_nested_pools(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(
        "<allocations>\n"
        "  <pool name=\"p\">\n"
        "    <schedulingMode>FAIR</schedulingMode>\n"
        "    <maxShare>3</maxShare>\n"
        "    <pool name=\"c1\"/>\n"
        "    <pool name=\"c2\"/>\n"
        "  </pool>\n"
        "  <pool name=\"q\"/>\n"
        "</allocations>\n");
    job x, y, q;
    job_init(&x, 'X', 1, 0, "job1");
    job_init(&y, 'Y', 2, 0, "job2");
    job_init(&q, 'Q', 3, 0, "job3");
    em_pool_add_entry(pool(t, "c1"), &x.e);
    em_pool_add_entry(pool(t, "c2"), &y.e);
    em_pool_add_entry(pool(t, "q"), &q.e);
    char seq[16];
    assert_int_equal(launch(t, 10, seq), 10);
    /* p shares fairly with q and between its children, up to 3 in all. */
    assert_string_equal(seq, "XQYQXQQQQQ");
    em_pool_info info;
    assert_true(find_info(t, "p", &info));
    assert_int_equal(info.running, 3);
    assert_int_equal(info.entries, 0);
    assert_true(find_info(t, "c1", &info));
    assert_string_equal(info.parent, "p");
    assert_int_equal(info.running, 2);
    assert_int_equal(info.entries, 1);
    em_pool_remove_entry(&q.e);
    assert_int_equal(em_pool_tree_offer(t, accept_first, NULL), 0);
    em_pool_tree_destroy(t);
}

static void test_default_pool_is_fair(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(NULL);
    em_pool *d1 = pool(t, NULL);
    em_pool *d2 = pool(t, "");
    assert_ptr_equal(d1, d2);
    assert_string_equal(em_pool_name(d1), "default");
    assert_ptr_equal(em_pool_tree_find(t, "default"), d1);
    job a, b;
    job_init(&a, 'A', 1, 0, "job1");
    job_init(&b, 'B', 2, 0, "job2");
    em_pool_add_entry(d1, &a.e);
    em_pool_add_entry(d2, &b.e);
    char seq[16];
    /* Spark's FIFO default pool would give "AAAA". */
    assert_int_equal(launch(t, 4, seq), 4);
    assert_string_equal(seq, "ABAB");
    em_pool_info info;
    assert_true(find_info(t, "default", &info));
    assert_int_equal(info.mode, EM_SCHED_FAIR);
    assert_null(info.parent);
    assert_int_equal(info.entries, 2);
    assert_int_equal(info.running, 4);
    em_pool_tree_destroy(t);
}

static void test_fifo_inside_fair_pool(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(
        "<allocations>\n"
        "  <pool name=\"etl\"><schedulingMode>fifo</schedulingMode></pool>\n"
        "  <pool name=\"default\"><schedulingMode>FIFO</schedulingMode>"
        "</pool>\n"
        "</allocations>\n");
    job late, early, early2;
    job_init(&late, 'L', 7, 0, "a");
    job_init(&early, 'E', 3, 1, "b");
    job_init(&early2, 'F', 3, 0, "c");
    em_pool *etl = pool(t, "etl");
    em_pool_add_entry(etl, &late.e);
    em_pool_add_entry(etl, &early.e);
    char seq[16];
    assert_int_equal(launch(t, 3, seq), 3);
    assert_string_equal(seq, "EEE");
    em_pool_add_entry(etl, &early2.e); /* same job, earlier stage */
    assert_int_equal(launch(t, 2, seq), 2);
    assert_string_equal(seq, "FF");
    em_pool_remove_entry(&early2.e);
    em_pool_remove_entry(&early.e);
    assert_int_equal(launch(t, 2, seq), 2);
    assert_string_equal(seq, "LL");
    /* The file made `default` FIFO too. */
    em_pool_info info;
    assert_true(find_info(t, "default", &info));
    assert_int_equal(info.mode, EM_SCHED_FIFO);
    em_pool_tree_destroy(t);
}

/* Runs fn with stderr going to a temporary file; returns what it wrote. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    static char text[4096];
    rewind(tmp);
    size_t n = fread(text, 1, sizeof text - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
    return text;
}

static void get_adhoc_twice(void *arg)
{
    em_pool_tree *t = arg;
    em_pool *p1 = pool(t, "adhoc");
    em_pool *p2 = pool(t, "adhoc");
    assert_ptr_equal(p1, p2);
}

static size_t count_substr(const char *s, const char *sub)
{
    size_t n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static void test_unknown_pool_created_with_warning(void **state)
{
    (void)state;
    em_log_set_level(EMBER_LOG_WARN);
    em_pool_tree *t = fair_tree(two_pools);
    assert_null(em_pool_tree_find(t, "adhoc"));
    char *log = capture_stderr(get_adhoc_twice, t);
    assert_int_equal(count_substr(log, "'adhoc'"), 1);
    assert_non_null(strstr(log, "WARN"));
    em_pool_info info;
    assert_true(find_info(t, "adhoc", &info));
    assert_null(info.parent);
    assert_int_equal(info.mode, EM_SCHED_FAIR);
    assert_true(info.weight == 1.0);
    assert_int_equal(info.min_share, 0);
    assert_int_equal(info.max_share, 0);
    /* Known pools are not reported. */
    log = capture_stderr(get_adhoc_twice, t);
    assert_string_equal(log, "");
    em_pool_tree_destroy(t);

    /* The new pool takes the mode of the default pool. */
    t = fair_tree("<allocations><pool name=\"default\"><schedulingMode>FIFO"
                  "</schedulingMode></pool></allocations>");
    (void)capture_stderr(get_adhoc_twice, t);
    assert_true(find_info(t, "adhoc", &info));
    assert_int_equal(info.mode, EM_SCHED_FIFO);
    em_pool_tree_destroy(t);
}

/* A temporary directory holding one file; returns the file's path. */
static char *temp_file(char *dir, const char *name, const char *text)
{
    strcpy(dir, "/tmp/pool_test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (text)
        fputs(text, f);
    fclose(f);
    return path;
}

static void test_spark_template_file(void **state)
{
    (void)state;
    /* The shape of Spark's conf/fairscheduler.xml.template. */
    static const char xml[] =
        "<?xml version=\"1.0\"?>\n"
        "\n"
        "<!--\n"
        "  Two pools: production shares fairly among its jobs, test runs\n"
        "  its jobs one after another.\n"
        "-->\n"
        "\n"
        "<allocations>\n"
        "  <pool name=\"production\">\n"
        "    <schedulingMode>FAIR</schedulingMode>\n"
        "    <weight>1</weight>\n"
        "    <minShare>2</minShare>\n"
        "  </pool>\n"
        "  <pool name=\"test\">\n"
        "    <schedulingMode>FIFO</schedulingMode>\n"
        "    <weight>2</weight>\n"
        "    <minShare>3</minShare>\n"
        "  </pool>\n"
        "</allocations>\n";
    char dir[64];
    char *path = temp_file(dir, "fairscheduler.xml", xml);
    em_pool_tree *t = fair_tree(NULL);
    ember_error err;
    assert_int_equal(em_pool_tree_load_file(t, path, &err), EMBER_OK);
    em_pool_info info;
    assert_true(find_info(t, "production", &info));
    assert_int_equal(info.mode, EM_SCHED_FAIR);
    assert_true(info.weight == 1.0);
    assert_int_equal(info.min_share, 2);
    assert_int_equal(info.max_share, 0);
    assert_null(info.parent);
    assert_true(find_info(t, "test", &info));
    assert_int_equal(info.mode, EM_SCHED_FIFO);
    assert_true(info.weight == 2.0);
    assert_int_equal(info.min_share, 3);
    assert_true(find_info(t, "default", &info));
    assert_int_equal(info.mode, EM_SCHED_FAIR);
    em_pool_tree_destroy(t);
    unlink(path);
    rmdir(dir);
}

static void test_file_errors(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(NULL);
    ember_error err;
    assert_int_equal(em_pool_tree_load_file(t, "/nonexistent/fair.xml", &err),
                     EMBER_ENOTFOUND);
    assert_non_null(
        strstr(err.msg, "cannot read allocation file /nonexistent/fair.xml"));

    /* Over 16 MiB: refused before parsing. */
    char dir[64];
    char *path = temp_file(dir, "big.xml", NULL);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("<allocations>", f);
    assert_int_equal(fseek(f, (16L << 20) + 1, SEEK_SET), 0);
    fputs("</allocations>", f);
    fclose(f);
    assert_int_equal(em_pool_tree_load_file(t, path, &err), EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "16 MiB"));
    unlink(path);
    rmdir(dir);
    em_pool_tree_destroy(t);
}

static void test_xml_errors(void **state)
{
    (void)state;
    static const struct {
        const char *xml;
        const char *where; /* "test.xml:LINE:" */
        const char *what;
    } cases[] = {
        {"<allocations>\n  <pool name=\"a\">\n</allocations>\n", "test.xml:3:",
         "mismatched tag"},
        {"", "test.xml:1:", "no element found"},
        {"<?xml version=\"1.0\"?>\n<pools/>\n", "test.xml:2:",
         "root element is <pools>, expected <allocations>"},
        {"<allocations>\n <pool name=\"a\">\n  <priority>1</priority>\n"
         " </pool>\n</allocations>\n",
         "test.xml:3:", "unknown element <priority> inside <pool>"},
        {"<allocations>\n<weight>1</weight>\n</allocations>\n", "test.xml:2:",
         "unknown element <weight> inside <allocations>"},
        {"<allocations>\n\n <pool name=\"a\" color=\"red\"/>\n</allocations>",
         "test.xml:3:", "unknown attribute 'color' on <pool>"},
        {"<allocations version=\"2\">\n</allocations>", "test.xml:1:",
         "unknown attribute 'version'"},
        {"<allocations>\n <pool name=\"a\">\n  <weight unit=\"x\">1</weight>"
         "\n </pool>\n</allocations>",
         "test.xml:3:", "unknown attribute 'unit' on <weight>"},
        {"<allocations>\n <pool>\n </pool>\n</allocations>", "test.xml:2:",
         "<pool> has no name"},
        {"<allocations>\n <pool name=\"\"/>\n</allocations>", "test.xml:2:",
         "empty name"},
        {"<allocations>\n <pool name=\"a\"/>\n <pool name=\"b\">\n"
         "  <pool name=\"a\"/>\n </pool>\n</allocations>",
         "test.xml:4:", "duplicate pool name 'a'"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>1</weight>\n"
         "  <weight>2</weight>\n </pool>\n</allocations>",
         "test.xml:4:", "duplicate <weight> in pool 'a'"},
        {"<allocations>\n <pool name=\"a\">\n\n  <minShare>abc</minShare>\n"
         " </pool>\n</allocations>",
         "test.xml:4:", "<minShare> 'abc' is not a whole number"},
        {"<allocations>\n <pool name=\"a\">\n  <minShare>2.5</minShare>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "not a whole number"},
        {"<allocations>\n <pool name=\"a\">\n  <minShare> -1 </minShare>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "<minShare> -1 is negative"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>-2</weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "<weight> -2 is negative"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>1.2.3</weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "<weight> '1.2.3' is not a number"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>2x</weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "not a number"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>nan</weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "not a number"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>1e99</weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "not a number"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>99999999999</weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "out of range"},
        {"<allocations>\n <pool name=\"a\">\n  <weight>  </weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "<weight> is empty"},
        {"<allocations>\n <pool name=\"a\">\n  <minShare>4294967296</minShare>"
         "\n </pool>\n</allocations>",
         "test.xml:3:", "out of range (at most 4294967295)"},
        {"<allocations>\n <pool name=\"a\">\n  <maxShare>0</maxShare>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "<maxShare> 0 is out of range (at least 1)"},
        {"<allocations>\n <pool name=\"a\">\n  <schedulingMode>ROUND_ROBIN"
         "</schedulingMode>\n </pool>\n</allocations>",
         "test.xml:3:", "unknown scheduling mode 'ROUND_ROBIN'"},
        {"<allocations>\n <pool name=\"a\">\n  hello\n </pool>\n</allocations>",
         "test.xml:3:3:", "unexpected text 'hello' inside <pool>"},
        {"<allocations>\n oops\n</allocations>", "test.xml:2:2:",
         "unexpected text 'oops' inside <allocations>"},
        {"<allocations>\n <pool name=\"a\">\n  <weight><b>1</b></weight>\n"
         " </pool>\n</allocations>",
         "test.xml:3:", "unexpected element <b> inside <weight>"},
        {"<?xml version=\"1.0\"?>\n<!DOCTYPE allocations [\n"
         "<!ENTITY x \"y\">]>\n<allocations/>",
         "test.xml:2:", "document type declarations are not allowed"},
        /* A valid pool before the error: nothing is applied. */
        {"<allocations>\n <pool name=\"a\"><weight>5</weight></pool>\n"
         " <pool name=\"b\"><minShare>x</minShare></pool>\n</allocations>",
         "test.xml:3:", "not a whole number"},
    };
    em_pool_tree *t = fair_tree(NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ember_error err;
        ember_status s = em_pool_tree_load_xml(
            t, cases[i].xml, strlen(cases[i].xml), "test.xml", &err);
        if (s != EMBER_EINVAL || strstr(err.msg, cases[i].where) != err.msg ||
            !strstr(err.msg, cases[i].what))
            fail_msg("case %zu: status %d, message '%s'; expected '%s' ... "
                     "'%s'",
                     i, (int)s, err.msg, cases[i].where, cases[i].what);
        /* The tree is as it was: only the built-in default pool. */
        size_t cur = 0;
        em_pool_info info;
        assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_OK);
        assert_string_equal(info.name, "default");
        assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_END);
    }
    em_pool_tree_destroy(t);
}

static void test_nesting_limit(void **state)
{
    (void)state;
    char xml[4096] = "<allocations>\n";
    for (int i = 0; i < 33; i++)
        snprintf(xml + strlen(xml), sizeof xml - strlen(xml),
                 "<pool name=\"p%d\">\n", i);
    for (int i = 0; i < 33; i++)
        strcat(xml, "</pool>");
    strcat(xml, "</allocations>");
    em_pool_tree *t = fair_tree(NULL);
    ember_error err;
    assert_int_equal(em_pool_tree_load_xml(t, xml, strlen(xml), "deep.xml",
                                           &err),
                     EMBER_EINVAL);
    assert_non_null(strstr(err.msg, "deep.xml:34:"));
    assert_non_null(strstr(err.msg, "nested deeper than 32"));
    em_pool_tree_destroy(t);
}

static void test_next_lists_parents_first(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(
        "<allocations>\n"
        "  <pool name=\"x\">\n"
        "    <pool name=\"x1\"><pool name=\"x11\"/></pool>\n"
        "    <pool name=\"x2\"/>\n"
        "  </pool>\n"
        "  <pool name=\"y\"><weight>1.5</weight><pool name=\"y1\"/></pool>\n"
        "</allocations>\n");
    (void)pool(t, "default");
    static const struct {
        const char *name;
        const char *parent;
    } want[] = {{"default", NULL}, {"x", NULL},   {"x1", "x"}, {"x11", "x1"},
                {"x2", "x"},       {"y", NULL},   {"y1", "y"}};
    size_t cur = 0;
    em_pool_info info;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_OK);
        assert_string_equal(info.name, want[i].name);
        if (want[i].parent)
            assert_string_equal(info.parent, want[i].parent);
        else
            assert_null(info.parent);
    }
    assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_END);
    assert_true(find_info(t, "y", &info));
    assert_true(info.weight == 1.5);
    /* Pools made for unknown names come last, under the root. */
    em_log_set_level(EMBER_LOG_ERROR);
    (void)pool(t, "late");
    em_log_set_level(EMBER_LOG_WARN);
    assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_OK);
    assert_string_equal(info.name, "late");
    assert_null(info.parent);
    assert_int_equal(em_pool_tree_next(t, &cur, &info), EMBER_END);
    em_pool_tree_destroy(t);
}

static void test_reload_replaces_settings(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(
        "<allocations>\n"
        "  <pool name=\"a\"><weight>4</weight><minShare>2</minShare>\n"
        "    <pool name=\"b\"><maxShare>5</maxShare></pool>\n"
        "  </pool>\n"
        "</allocations>\n");
    job j;
    job_init(&j, 'J', 1, 0, "job1");
    em_pool *b = pool(t, "b");
    em_pool_add_entry(b, &j.e);
    em_pool_entry_running_add(&j.e, 2);
    em_pool_info info;
    assert_true(find_info(t, "a", &info));
    assert_int_equal(info.running, 2);

    static const char v2[] =
        "<allocations>\n"
        "  <pool name=\"a\"><schedulingMode>FIFO</schedulingMode></pool>\n"
        "  <pool name=\"b\"><weight>3</weight></pool>\n"
        "  <pool name=\"c\"/>\n"
        "</allocations>\n";
    ember_error err;
    assert_int_equal(em_pool_tree_load_xml(t, v2, strlen(v2), "v2", &err),
                     EMBER_OK);
    /* Same pool object, same task set, new place and settings. */
    assert_ptr_equal(pool(t, "b"), b);
    assert_ptr_equal(j.e.pool, b);
    assert_true(find_info(t, "a", &info));
    assert_int_equal(info.mode, EM_SCHED_FIFO);
    assert_true(info.weight == 1.0);
    assert_int_equal(info.min_share, 0);
    assert_int_equal(info.running, 0);
    assert_true(find_info(t, "b", &info));
    assert_null(info.parent);
    assert_true(info.weight == 3.0);
    assert_int_equal(info.max_share, 0);
    assert_int_equal(info.running, 2);
    assert_int_equal(info.entries, 1);
    assert_true(find_info(t, "c", &info));
    /* Loading the same file again changes nothing. */
    assert_int_equal(em_pool_tree_load_xml(t, v2, strlen(v2), "v2", &err),
                     EMBER_OK);
    size_t n = 0, cur = 0;
    while (em_pool_tree_next(t, &cur, &info) == EMBER_OK)
        n++;
    assert_int_equal(n, 4); /* default, a, b, c */
    char seq[4];
    assert_int_equal(launch(t, 1, seq), 1);
    assert_int_equal(j.e.running, 3);
    em_pool_tree_destroy(t);
}

static void test_entry_lifecycle(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree("<allocations><pool name=\"p\">"
                                "<pool name=\"c\"/></pool></allocations>");
    job j, k;
    job_init(&j, 'J', 1, 0, "job1");
    job_init(&k, 'K', 2, 0, "job2");
    /* Counts kept while out of a tree are carried in. */
    em_pool_entry_running_add(&j.e, 3);
    assert_int_equal(j.e.running, 3);
    em_pool *c = pool(t, "c");
    em_pool_add_entry(c, &j.e);
    assert_ptr_equal(j.e.pool, c);
    em_pool_info info;
    assert_true(find_info(t, "p", &info));
    assert_int_equal(info.running, 3);
    /* Never below zero. */
    em_pool_entry_running_add(&j.e, -10);
    assert_int_equal(j.e.running, 0);
    assert_true(find_info(t, "p", &info));
    assert_int_equal(info.running, 0);
    em_pool_entry_running_add(&j.e, 2);
    /* Adding to another pool moves the entry with its count. */
    em_pool_add_entry(pool(t, "default"), &j.e);
    assert_true(find_info(t, "p", &info));
    assert_int_equal(info.running, 0);
    assert_true(find_info(t, "default", &info));
    assert_int_equal(info.running, 2);
    assert_int_equal(info.entries, 1);
    em_pool_remove_entry(&j.e);
    assert_null(j.e.pool);
    assert_true(find_info(t, "default", &info));
    assert_int_equal(info.running, 0);
    assert_int_equal(info.entries, 0);
    em_pool_remove_entry(&j.e);
    em_pool_remove_entry(NULL);
    assert_int_equal(em_pool_tree_offer(t, accept_first, NULL), 0);
    /* Destroying the tree unlinks what is left. */
    em_pool_add_entry(c, &j.e);
    em_pool_add_entry(pool(t, "default"), &k.e);
    em_pool_tree_destroy(t);
    assert_null(j.e.pool);
    assert_null(k.e.pool);
    em_pool_tree_destroy(NULL);
}

/* Names of the pools em_pool_tree_next lists, comma-separated. */
static const char *pool_list(em_pool_tree *t)
{
    static char text[1024];
    size_t cur = 0, n = 0;
    em_pool_info info;
    text[0] = '\0';
    while (em_pool_tree_next(t, &cur, &info) == EMBER_OK) {
        int w = snprintf(text + n, sizeof text - n, "%s%s", n ? "," : "",
                         info.name);
        assert_true(w > 0 && (size_t)w < sizeof text - n);
        n += (size_t)w;
    }
    return text;
}

static void test_unknown_pools_removed_when_empty(void **state)
{
    (void)state;
    em_log_set_level(EMBER_LOG_ERROR);
    em_pool_tree *t = fair_tree(two_pools);
    char name[32];
    char seq[8];
    /* 50,000 made-up names, each used by one task set and released. */
    for (int i = 0; i < 50000; i++) {
        snprintf(name, sizeof name, "made-up-%05d", i);
        job j;
        job_init(&j, 'J', (uint64_t)i, 0, "job");
        em_pool *p = pool(t, name);
        assert_string_equal(em_pool_name(p), name);
        assert_ptr_equal(em_pool_tree_find(t, name), p);
        em_pool_add_entry(p, &j.e);
        assert_int_equal(launch(t, 1, seq), 1);
        assert_string_equal(seq, "J");
        em_pool_entry_running_add(&j.e, -1);
        em_pool_remove_entry(&j.e);
        assert_null(j.e.pool);
        assert_null(em_pool_tree_find(t, name));
    }
    assert_string_equal(pool_list(t), "default,a,b");

    /* 1,000 at once, sharing fairly, released in another order. */
    static job many[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "live-%04d", i);
        job_init(&many[i], 'M', (uint64_t)i, 0, "job");
        em_pool_add_entry(pool(t, name), &many[i].e);
    }
    assert_int_equal(em_pool_tree_order(t, NULL, 0), 1000);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(em_pool_tree_offer(t, accept_first, NULL), 'M');
    for (int i = 0; i < 1000; i++)
        assert_int_equal(many[i].e.running, 2);
    em_pool_info info;
    assert_true(find_info(t, "live-0999", &info));
    assert_int_equal(info.running, 2);
    assert_int_equal(info.entries, 1);
    for (int i = 0; i < 1000; i += 2)
        em_pool_remove_entry(&many[i].e);
    for (int i = 999; i > 0; i -= 2) {
        /* A task ending in a removed pool's set is still counted. */
        em_pool_entry_running_add(&many[i - 1].e, -1);
        assert_int_equal(many[i - 1].e.running, 1);
        em_pool_remove_entry(&many[i].e);
    }
    assert_string_equal(pool_list(t), "default,a,b");
    assert_int_equal(em_pool_tree_offer(t, accept_first, NULL), 0);

    /* A pool that never got a task set goes at the next get of another
     * name; asking for it again keeps it. */
    em_pool *ghost = pool(t, "ghost");
    assert_ptr_equal(pool(t, "ghost"), ghost);
    assert_string_equal(pool_list(t), "default,a,b,ghost");
    (void)pool(t, "a");
    assert_null(em_pool_tree_find(t, "ghost"));
    assert_string_equal(pool_list(t), "default,a,b");

    /* Moving an entry: back into its own pool keeps it; elsewhere empties
     * and removes it, the running count moving along. */
    job m;
    job_init(&m, 'M', 1, 0, "job");
    em_pool *mp = pool(t, "mover");
    em_pool_add_entry(mp, &m.e);
    em_pool_entry_running_add(&m.e, 3);
    em_pool_add_entry(mp, &m.e);
    assert_ptr_equal(em_pool_tree_find(t, "mover"), mp);
    assert_true(find_info(t, "mover", &info));
    assert_int_equal(info.running, 3);
    assert_int_equal(info.entries, 1);
    em_pool *a = pool(t, "a");
    em_pool_add_entry(a, &m.e);
    assert_null(em_pool_tree_find(t, "mover"));
    assert_true(find_info(t, "a", &info));
    assert_int_equal(info.running, 3);
    assert_string_equal(pool_list(t), "default,a,b");
    /* Allocation-file pools and `default` stay when empty. */
    em_pool_remove_entry(&m.e);
    em_pool_add_entry(pool(t, NULL), &m.e);
    em_pool_remove_entry(&m.e);
    assert_string_equal(pool_list(t), "default,a,b");
    em_pool_tree_destroy(t);
}

/* Uses the name "again" twice, releasing the pool in between. */
static void use_again_twice(void *arg)
{
    em_pool_tree *t = arg;
    for (int i = 0; i < 2; i++) {
        job j;
        job_init(&j, 'J', 1, 0, "job");
        em_pool_add_entry(pool(t, "again"), &j.e);
        em_pool_remove_entry(&j.e);
    }
}

static void test_reused_name_warns_again(void **state)
{
    (void)state;
    em_log_set_level(EMBER_LOG_WARN);
    em_pool_tree *t = fair_tree(NULL);
    char *log = capture_stderr(use_again_twice, t);
    assert_int_equal(count_substr(log, "'again'"), 2);
    assert_null(em_pool_tree_find(t, "again"));
    em_pool_tree_destroy(t);
}

static void test_reload_with_temporary_pools(void **state)
{
    (void)state;
    em_log_set_level(EMBER_LOG_ERROR);
    em_pool_tree *t = fair_tree(NULL);
    job x, y, z;
    job_init(&x, 'X', 1, 0, "job1");
    job_init(&y, 'Y', 2, 0, "job2");
    job_init(&z, 'Z', 3, 0, "job3");
    em_pool *px = pool(t, "x");
    em_pool_add_entry(px, &x.e);
    em_pool_add_entry(pool(t, "y"), &y.e);
    em_pool_entry_running_add(&y.e, 1);
    /* The file names x: it becomes permanent, same object, same task set. */
    static const char v1[] = "<allocations>\n"
                             "  <pool name=\"x\"><weight>2</weight>\n"
                             "    <pool name=\"x1\"/>\n"
                             "  </pool>\n"
                             "</allocations>\n";
    ember_error err;
    assert_int_equal(em_pool_tree_load_xml(t, v1, strlen(v1), "v1", &err),
                     EMBER_OK);
    assert_ptr_equal(pool(t, "x"), px);
    assert_ptr_equal(x.e.pool, px);
    assert_string_equal(pool_list(t), "default,x,x1,y");
    em_pool_remove_entry(&x.e);
    assert_ptr_equal(em_pool_tree_find(t, "x"), px);
    em_pool_info info;
    assert_true(find_info(t, "x", &info));
    assert_true(info.weight == 2.0);
    /* y is still temporary, reload or not. */
    assert_int_equal(em_pool_tree_load_xml(t, v1, strlen(v1), "v1", &err),
                     EMBER_OK);
    assert_true(find_info(t, "y", &info));
    assert_int_equal(info.running, 1);
    em_pool_add_entry(pool(t, "z"), &z.e);
    em_pool_remove_entry(&y.e);
    assert_string_equal(pool_list(t), "default,x,x1,z");
    char seq[4];
    assert_int_equal(launch(t, 2, seq), 2);
    assert_string_equal(seq, "ZZ");
    em_pool_remove_entry(&z.e);
    assert_string_equal(pool_list(t), "default,x,x1");
    /* An entry placed in the file's child pool after all this. */
    em_pool_add_entry(pool(t, "x1"), &x.e);
    assert_int_equal(launch(t, 1, seq), 1);
    assert_string_equal(seq, "X");
    assert_true(find_info(t, "x", &info));
    assert_int_equal(info.running, 1);
    em_pool_tree_destroy(t);
    assert_null(x.e.pool);
}

/* An allocation file with pools f<first>..f<first+n-1>; f12345, when in
 * range, has weight 2. */
static char *many_pools_xml(int first, int n, size_t *len)
{
    size_t cap = 64 + (size_t)n * 64;
    char *xml = malloc(cap);
    assert_non_null(xml);
    size_t k = (size_t)snprintf(xml, cap, "<allocations>\n");
    for (int i = first; i < first + n; i++)
        k += (size_t)snprintf(xml + k, cap - k,
                              i == 12345 ? "<pool name=\"f%05d\"><weight>2"
                                           "</weight></pool>\n"
                                         : "<pool name=\"f%05d\"/>\n",
                              i);
    k += (size_t)snprintf(xml + k, cap - k, "</allocations>\n");
    *len = k;
    return xml;
}

static void test_offers_among_many_empty_pools(void **state)
{
    (void)state;
    em_pool_tree *t = fair_tree(NULL);
    /* 50,000 pools kept while empty: five files of 10,000 (the most one
     * file may define). */
    for (int f = 0; f < 5; f++) {
        size_t len;
        char *xml = many_pools_xml(f * 10000, 10000, &len);
        ember_error err;
        ember_status s = em_pool_tree_load_xml(t, xml, len, "many.xml", &err);
        free(xml);
        if (s != EMBER_OK)
            fail_msg("%s", err.msg);
    }
    size_t n = 0, cur = 0;
    em_pool_info info;
    while (em_pool_tree_next(t, &cur, &info) == EMBER_OK)
        n++;
    assert_int_equal(n, 50001);
    /* Lookup is by name among them all. */
    static const char *const names[] = {"f00000", "f12345", "f31415",
                                        "f49999", "default"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        em_pool *p = em_pool_tree_find(t, names[i]);
        assert_non_null(p);
        assert_string_equal(em_pool_name(p), names[i]);
        assert_ptr_equal(pool(t, names[i]), p);
    }
    assert_null(em_pool_tree_find(t, "f50000"));
    assert_null(em_pool_tree_find(t, "f0000"));
    assert_true(find_info(t, "f12345", &info));
    assert_true(info.weight == 2.0);

    job d, a, e, b;
    job_init(&d, 'D', 1, 0, "job1");
    job_init(&a, 'A', 2, 0, "job2");
    job_init(&e, 'E', 3, 0, "job3");
    job_init(&b, 'B', 4, 0, "job4");
    em_pool_add_entry(pool(t, NULL), &d.e);
    em_pool_add_entry(pool(t, "f00003"), &a.e);
    em_pool_add_entry(pool(t, "f12345"), &e.e);
    em_pool_add_entry(pool(t, "f49998"), &b.e);
    char seq[16];
    /* Fair shares by running/weight, then name; the empty pools never
     * get in the way. */
    assert_int_equal(launch(t, 9, seq), 9);
    assert_string_equal(seq, "DAEBEDAEB");
    em_pool_entry *order[8];
    assert_int_equal(em_pool_tree_order(t, order, 8), 4);
    /* running/weight: E 3/2, then D, A, B at 2 by pool name. */
    assert_ptr_equal(order[0], &e.e);
    assert_ptr_equal(order[1], &d.e);
    assert_ptr_equal(order[2], &a.e);
    assert_ptr_equal(order[3], &b.e);
    em_pool_remove_entry(&d.e);
    em_pool_remove_entry(&a.e);
    em_pool_remove_entry(&b.e);
    assert_int_equal(launch(t, 2, seq), 2);
    assert_string_equal(seq, "EE");
    em_pool_remove_entry(&e.e);
    assert_int_equal(em_pool_tree_offer(t, accept_first, NULL), 0);
    assert_int_equal(em_pool_tree_order(t, NULL, 0), 0);
    em_pool_tree_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_ignores_pools),
        cmocka_unit_test(test_fair_equal_weights_alternate),
        cmocka_unit_test(test_fair_weights),
        cmocka_unit_test(test_min_share_first),
        cmocka_unit_test(test_max_share_caps),
        cmocka_unit_test(test_nested_pools),
        cmocka_unit_test(test_default_pool_is_fair),
        cmocka_unit_test(test_fifo_inside_fair_pool),
        cmocka_unit_test(test_unknown_pool_created_with_warning),
        cmocka_unit_test(test_spark_template_file),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_xml_errors),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_next_lists_parents_first),
        cmocka_unit_test(test_reload_replaces_settings),
        cmocka_unit_test(test_entry_lifecycle),
        cmocka_unit_test(test_unknown_pools_removed_when_empty),
        cmocka_unit_test(test_reused_name_warns_again),
        cmocka_unit_test(test_reload_with_temporary_pools),
        cmocka_unit_test(test_offers_among_many_empty_pools),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
