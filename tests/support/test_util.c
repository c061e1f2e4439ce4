/*
 * test_util.c — sleeping, temp trees, executor processes, strings and
 * checks for any test (see test_util.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ember/record.h"
#include "test_util.h"

/* ---- files and processes ----------------------------------------------- */

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rmtree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int walk_files(const char *dir,
               int (*visit)(const char *path, const struct stat *st,
                            void *ctx),
               void *ctx)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int stop = 0;
    while (d && !stop && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        stop = S_ISDIR(st.st_mode) ? walk_files(path, visit, ctx)
                                   : visit(path, &st, ctx);
    }
    if (d)
        closedir(d);
    return stop;
}

void find_entry(const char *dir, const char *prefix, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    out[0] = '\0';
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            snprintf(out, cap, "%s", e->d_name);
    if (d)
        closedir(d);
}

void list_dir(const char *dir, char *out, size_t cap)
{
    char *names[64];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        fail_msg("cannot list %s", dir);
    while ((e = readdir(d)) != NULL && n < 64)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            names[n] = strdup(e->d_name);
            assert_non_null(names[n]);
            n++;
        }
    closedir(d);
    sort_strs(names, n);
    char *j = join_strs(names, n, " ", "");
    snprintf(out, cap, "%s", j);
    free(j);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

void wait_gone(const char *dir, const char *prefix, char *out, size_t cap)
{
    for (int i = 0; i < 500; i++) {
        find_entry(dir, prefix, out, cap);
        if (!out[0])
            return;
        sleep_ms(10);
    }
}

/* Reads /proc/<name>/<what> (at most cap - 1 bytes, NUL-terminated) into
 * buf; its length, or -1 when it cannot be read. */
static long proc_read(const char *name, const char *what, char *buf,
                      size_t cap)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/%s", name, what);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

pid_t executor_pid(const char *id)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    while (d && (e = readdir(d)) != NULL && found < 0) {
        char buf[4096], comm[256], st;
        int pid = 0, ppid = 0;
        if (proc_read(e->d_name, "stat", buf, sizeof buf) < 0 ||
            sscanf(buf, "%d %255s %c %d", &pid, comm, &st, &ppid) != 4 ||
            ppid != getpid())
            continue;
        long n = proc_read(e->d_name, "cmdline", buf, sizeof buf);
        /* the arguments are NUL-separated: "\0--id\0<id>" */
        for (long i = 0; i + 1 < n; i++)
            if (buf[i] == '\0' && strcmp(buf + i + 1, "--id") == 0 &&
                i + 2 + (long)strlen("--id") < n &&
                strcmp(buf + i + 2 + strlen("--id"), id) == 0)
                found = pid;
    }
    if (d)
        closedir(d);
    return found;
}

/* ---- strings ----------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sort_strs(char **v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_str);
}

char *join_strs(char *const *v, size_t n, const char *sep, const char *end)
{
    size_t len = 1 + strlen(end);
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + strlen(sep);
    char *out = malloc(len), *p = out;
    assert_non_null(out);
    *p = '\0';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", v[i], i + 1 < n ? sep : end);
    return out;
}

static int cmp_rec_span(const void *a, const void *b)
{
    const rec_span *x = a, *y = b;
    return ember_rec_compare(x->p, x->len, y->p, y->len);
}

void sort_rec_spans(rec_span *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_rec_span);
}

void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}
