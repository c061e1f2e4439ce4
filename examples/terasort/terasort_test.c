/*
 * terasort_test TERASORT TERASORT_CHECK — the terasort example end to end.
 *
 * Makes a 20,000-record input with a deterministic generator (keys of any
 * byte value, 0x00, '\n' and 0xFF included, and repeated keys), sorts it
 * with terasort in local[2] and local-cluster[2,1,512] and validates each
 * output with terasort-check. Then checks the refusals (an existing output
 * directory, an input that is not whole records) and that the checker
 * does fail on output that is out of order or has a changed record.
 * Prints what failed and exits 1, or exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define RECORDS 20000
#define RECORD 100

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAILED %s:%d: ", __FILE__, __LINE__);         \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Runs cmd through the shell, its output (both streams) into out; the exit
 * status, or -1 when it did not exit normally. */
static int run(const char *cmd, char *out, size_t cap)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    while (fgetc(p) != EOF) /* drain whatever did not fit */
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The input: records i = key (10 bytes), "  ", i in 32 hex digits, "  ",
 * 52 bytes of anything, "\r\n"; every 7th record repeats an earlier key. */
static int generate(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint64_t seed = 42;
    unsigned char rec[RECORD], keys[64][10];
    for (int i = 0; i < RECORDS; i++) {
        if (i % 7 == 6) {
            memcpy(rec, keys[splitmix(&seed) % 64], 10);
        } else {
            for (int k = 0; k < 10; k++)
                rec[k] = (unsigned char)splitmix(&seed);
            /* the byte values that text or record framing treat specially */
            if (i % 11 == 0)
                rec[splitmix(&seed) % 10] = 0x00;
            if (i % 13 == 0)
                rec[splitmix(&seed) % 10] = '\n';
            if (i % 17 == 0)
                rec[0] = 0xFF;
            if (i < 64)
                memcpy(keys[i], rec, 10);
        }
        char num[40];
        snprintf(num, sizeof num, "  %032X  ", (unsigned)i);
        memcpy(rec + 10, num, 36);
        for (int k = 46; k < 98; k++)
            rec[k] = (unsigned char)splitmix(&seed);
        rec[98] = '\r';
        rec[99] = '\n';
        if (fwrite(rec, 1, RECORD, f) != RECORD) {
            fclose(f);
            return -1;
        }
    }
    return fclose(f);
}

/* Copies file from to file to, changing byte `flip` (when >= 0). */
static int copy_file(const char *from, const char *to, long flip)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int c, rc = 0;
    long i = 0;
    if (!a || !b)
        rc = -1;
    while (rc == 0 && (c = fgetc(a)) != EOF) {
        if (i++ == flip)
            c ^= 0x01;
        if (fputc(c, b) == EOF)
            rc = -1;
    }
    if (a)
        fclose(a);
    if (b && fclose(b) != 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: terasort_test TERASORT TERASORT_CHECK\n");
        return 2;
    }
    const char *ts = argv[1], *chk = argv[2];
    char tmpl[] = "/tmp/terasort_test.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 2;
    }
    char input[256], out[256], cmd[4096], text[16384];
    snprintf(input, sizeof input, "%s/input.dat", dir);
    if (generate(input) != 0) {
        fprintf(stderr, "cannot write %s\n", input);
        return 2;
    }

    const char *masters[] = {"local[2]", "local-cluster[2,1,512]"};
    for (int m = 0; m < 2; m++) {
        snprintf(out, sizeof out, "%s/out%d", dir, m);
        snprintf(cmd, sizeof cmd,
                 "'%s' --master '%s' --conf ember.default.parallelism=3 "
                 "'%s' '%s'", ts, masters[m], input, out);
        int st = run(cmd, text, sizeof text);
        CHECK(st == 0, "terasort on %s exited %d: %s", masters[m], st, text);
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", chk, input, out);
        st = run(cmd, text, sizeof text);
        CHECK(st == 0 &&
                  strstr(text, "OK: 20000 records in 3 part files") == text,
              "terasort-check of the %s output exited %d: %s", masters[m],
              st, text);
    }

    /* Refusals, with a message that says why. */
    snprintf(cmd, sizeof cmd, "'%s' --master 'local[2]' '%s' '%s/out0'", ts,
             input, dir);
    int st = run(cmd, text, sizeof text);
    CHECK(st != 0 && strstr(text, "already exists"),
          "an existing output directory: exit %d: %s", st, text);
    char odd[256];
    snprintf(odd, sizeof odd, "%s/odd.dat", dir);
    FILE *f = fopen(odd, "wb");
    if (f) {
        fputs("a record that is not 100 bytes long\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' --master 'local[2]' '%s' '%s/odd-out'",
             ts, odd, dir);
    st = run(cmd, text, sizeof text);
    CHECK(st != 0 && strstr(text, "not a whole number of 100-byte records"),
          "an input of partial records: exit %d: %s", st, text);

    /* The checker fails on parts out of order (same records)... */
    char a[512], b[512];
    snprintf(cmd, sizeof cmd, "mkdir '%s/swapped' '%s/changed'", dir, dir);
    CHECK(run(cmd, text, sizeof text) == 0, "mkdir: %s", text);
    const char *names[] = {"part-00000", "part-00001", "part-00002",
                           "_SUCCESS"};
    const int swap[] = {1, 0, 2, 3};
    for (int i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/out0/%s", dir, names[swap[i]]);
        snprintf(b, sizeof b, "%s/swapped/%s", dir, names[i]);
        CHECK(copy_file(a, b, -1) == 0, "copy %s", a);
        /* ... and on one changed byte in the rest of a record */
        snprintf(a, sizeof a, "%s/out0/%s", dir, names[i]);
        snprintf(b, sizeof b, "%s/changed/%s", dir, names[i]);
        CHECK(copy_file(a, b, i == 2 ? 150 : -1) == 0, "copy %s", a);
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s/swapped'", chk, input, dir);
    st = run(cmd, text, sizeof text);
    CHECK(st == 1 && strstr(text, "FAIL: not sorted"),
          "checker on swapped parts: exit %d: %s", st, text);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s/changed'", chk, input, dir);
    st = run(cmd, text, sizeof text);
    CHECK(st == 1 && strstr(text, "records differ") &&
              !strstr(text, "not sorted"),
          "checker on a changed record: exit %d: %s", st, text);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    run(cmd, text, sizeof text);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("terasort: local[2] and local-cluster[2,1,512] outputs pass "
           "terasort-check; refusals and checker failures as expected\n");
    return 0;
}
