/*
 * kmeans_test KMEANS — the kmeans example end to end.
 *
 * Writes 3000 points in 3 dimensions from 5 Gaussian blobs (the format of
 * datagen's points: 4 fractional digits, blobs interleaved), runs
 * `kmeans --k 5 --iterations 10` in local[2] and local-cluster[2,1,512] and
 * compares the printed centres with the reference implementation below
 * (the same Lloyd's algorithm from the first K points) within 1e-4 (the
 * output has 6 decimals). Then checks the refusals: fewer points than K, a
 * line that is not numbers, points of different dimensions.
 * Prints what failed and exits 1, or exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define POINTS 3000
#define DIMS 3
#define K 5
#define ITERATIONS 10
#define PI 3.14159265358979323846

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

/* A uniform double in (0, 1). */
static double uniform(uint64_t *s)
{
    return ((double)(splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* Runs cmd; stdout into out, stderr into errfile. Exit status or -1. */
static int run(const char *cmd, const char *errfile, char *out, size_t cap)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>'%s'", cmd, errfile);
    FILE *p = popen(full, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    while (fgetc(p) != EOF)
        ;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *first_line(const char *path)
{
    static char line[1024];
    line[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    return line;
}

/* Writes the points; pts receives them as the file has them (parsed back
 * from their 4-decimal text, so both sides start from the same doubles). */
static int make_points(const char *path, double *pts)
{
    uint64_t seed = 42;
    double centre[K][DIMS];
    for (int k = 0; k < K; k++)
        for (int d = 0; d < DIMS; d++)
            centre[k][d] = 100.0 * uniform(&seed);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (int i = 0; i < POINTS; i++) {
        int k = (int)(splitmix(&seed) % K);
        for (int d = 0; d < DIMS; d++) {
            /* Box-Muller, sigma 4 */
            double g = sqrt(-2.0 * log(uniform(&seed))) *
                       cos(2.0 * PI * uniform(&seed));
            char num[64];
            snprintf(num, sizeof num, "%.4f", centre[k][d] + 4.0 * g);
            pts[i * DIMS + d] = strtod(num, NULL);
            fprintf(f, "%s%c", num, d + 1 < DIMS ? ' ' : '\n');
        }
    }
    return fclose(f);
}

/* Lloyd's algorithm as the example describes it. */
static void reference(const double *pts, double *c)
{
    memcpy(c, pts, sizeof(double) * K * DIMS);
    for (int it = 0; it < ITERATIONS; it++) {
        double sum[K][DIMS] = {{0}};
        long n[K] = {0};
        for (int i = 0; i < POINTS; i++) {
            const double *p = pts + i * DIMS;
            int best = 0;
            double best_d = INFINITY;
            for (int k = 0; k < K; k++) {
                double dist = 0;
                for (int d = 0; d < DIMS; d++)
                    dist += (p[d] - c[k * DIMS + d]) * (p[d] - c[k * DIMS + d]);
                if (dist < best_d) {
                    best_d = dist;
                    best = k;
                }
            }
            n[best]++;
            for (int d = 0; d < DIMS; d++)
                sum[best][d] += p[d];
        }
        int moved = 0;
        for (int k = 0; k < K; k++)
            for (int d = 0; d < DIMS && n[k]; d++) {
                double mean = sum[k][d] / (double)n[k];
                moved |= mean != c[k * DIMS + d];
                c[k * DIMS + d] = mean;
            }
        if (!moved)
            break;
    }
}

/* Runs kmeans on `points` with `args` and expects failure naming `want`. */
static void refused(const char *km, const char *dir, const char *content,
                    const char *args, const char *want)
{
    char path[256], errf[256], cmd[4096], out[4096];
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(content, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --master 'local[2]' %s '%s'", km, args,
             path);
    int st = run(cmd, errf, out, sizeof out);
    CHECK(st != 0 && strstr(first_line(errf), want),
          "refusal '%s': exit %d: %s", want, st, first_line(errf));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kmeans_test KMEANS\n");
        return 2;
    }
    const char *km = argv[1];
    char tmpl[] = "/tmp/kmeans_test.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 2;
    }
    char path[256], errf[256], cmd[4096], out[65536];
    snprintf(path, sizeof path, "%s/points.txt", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    static double pts[POINTS * DIMS];
    double want[K * DIMS];
    if (make_points(path, pts) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return 2;
    }
    reference(pts, want);

    const char *masters[] = {"local[2]", "local-cluster[2,1,512]"};
    for (int m = 0; m < 2; m++) {
        snprintf(cmd, sizeof cmd, "'%s' --master '%s' --k %d --iterations %d "
                 "'%s'", km, masters[m], K, ITERATIONS, path);
        int st = run(cmd, errf, out, sizeof out);
        CHECK(st == 0, "%s: exit %d: %s", masters[m], st, first_line(errf));
        if (st != 0)
            continue;
        char *p = out;
        for (int i = 0; i < K * DIMS; i++) {
            char *end;
            double x = strtod(p, &end);
            CHECK(end != p, "%s: centre %d coordinate %d is missing",
                  masters[m], i / DIMS, i % DIMS);
            if (end == p)
                break;
            CHECK(fabs(x - want[i]) <= 1e-4,
                  "%s: centre %d coordinate %d is %.6f, reference %.6f",
                  masters[m], i / DIMS, i % DIMS, x, want[i]);
            p = end;
        }
        while (*p == ' ' || *p == '\n')
            p++;
        CHECK(*p == '\0', "%s: more output than %d centres: '%s'",
              masters[m], K, p);
    }

    refused(km, dir, "1 2\n3 4\n", "--k 3", "has 2 points, fewer than K = 3");
    refused(km, dir, "1 2\n3 four\n", "--k 1", "'four' is not a number");
    refused(km, dir, "1 2\n3 4 5\n", "--k 2",
            "point 2 has 3 coordinates, the first has 2");
    refused(km, dir, "1 2\n3 4\n5 6 7\n", "--k 2",
            "a point must have 2 coordinates");

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("kmeans: centres match the reference in local[2] and "
           "local-cluster[2,1,512]; refusals as expected\n");
    return 0;
}
