/*
 * pagerank_test PAGERANK — the pagerank example end to end.
 *
 * 1. A tiny graph ranked by hand (a duplicate edge, a vertex nobody links
 *    to, one with no out-links, a comment and a blank line), after one and
 *    two iterations, in local[2] and local-cluster[2,1,512], with links
 *    cached and with --no-cache: the exact set of vertices and each rank
 *    within 1e-9.
 * 2. A 1000-vertex graph made like datagen's (grouped by source, skewed
 *    out-degrees, uniform destinations, duplicate edges, vertices without
 *    out-links), 10 iterations, cached and with --no-cache, against the
 *    straightforward C implementation below: same vertices, ranks within
 *    1e-9.
 * 3. A malformed line fails the job with the line in the message.
 * Prints what failed and exits 1, or exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define VERTICES 1000

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

/* Runs cmd; its stdout (up to cap - 1 bytes) into out, stderr into err
 * (a file). The exit status, or -1. */
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

/* The first line of a file (for messages). */
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

/* ---- the tiny graph ---------------------------------------------------- */

typedef struct expected {
    const char *vertex;
    double rank;
} expected;

/* Compares "vertex\trank" lines in out with want[0..n): exact set. */
static void compare_small(const char *what, char *out, const expected *want,
                          int n)
{
    int seen = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        CHECK(tab, "%s: line '%s' has no tab", what, line);
        if (!tab)
            continue;
        *tab = '\0';
        double r = strtod(tab + 1, NULL);
        int found = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(line, want[i].vertex) == 0) {
                found = 1;
                CHECK(fabs(r - want[i].rank) <= 1e-9,
                      "%s: rank of %s is %.15g, want %.15g", what, line, r,
                      want[i].rank);
            }
        CHECK(found, "%s: unexpected vertex '%s'", what, line);
        seen++;
    }
    CHECK(seen == n, "%s: %d vertices, want %d", what, seen, n);
}

static void tiny_graph(const char *pr, const char *dir)
{
    char path[256], errf[256], cmd[4096], out[65536];
    snprintf(path, sizeof path, "%s/tiny.tsv", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        CHECK(0, "cannot write %s", path);
        return;
    }
    fputs("# a tiny graph: a -> b, c; b -> c; c -> a; d -> c, e\n"
          "a\tb\na\tc\na\tb\nb\tc\n\nc\ta\nd\tc\nd\te\n", f);
    fclose(f);
    /*
     * N = 4 (a, b, c, d have out-links), so each rank is 0.85 x sum +
     * 0.0375. Iteration 1 from 1.0 each: a gets 1 (from c); b 0.5 (a);
     * c 0.5 (a) + 1 (b) + 0.5 (d) = 2; e 0.5 (d); d nothing.
     */
    const expected one[] = {{"a", 0.8875}, {"b", 0.4625}, {"c", 1.7375},
                            {"e", 0.4625}};
    /*
     * Iteration 2: a gets 1.7375 (c); b 0.8875 / 2; c 0.8875 / 2 + 0.4625;
     * e has no out-links and d no rank, so neither contributes.
     */
    const expected two[] = {{"a", 0.85 * 1.7375 + 0.0375},
                            {"b", 0.85 * 0.44375 + 0.0375},
                            {"c", 0.85 * (0.44375 + 0.4625) + 0.0375}};
    const char *masters[] = {"local[2]", "local-cluster[2,1,512]"};
    const char *caching[] = {"", " --no-cache"};
    /* each master, links cached or not, one and two iterations */
    for (int k = 0; k < 8; k++) {
        int m = k / 4, c = k / 2 % 2, it = k % 2 + 1;
        snprintf(cmd, sizeof cmd, "'%s' --master '%s' --iterations %d%s "
                 "'%s'", pr, masters[m], it, caching[c], path);
        int st = run(cmd, errf, out, sizeof out);
        char what[128];
        snprintf(what, sizeof what, "tiny graph, %s%s, %d iteration(s)",
                 masters[m], caching[c], it);
        CHECK(st == 0, "%s: exit %d: %s", what, st, first_line(errf));
        if (st == 0)
            compare_small(what, out, it == 1 ? one : two, it == 1 ? 4 : 3);
    }
}

/* ---- the 1000-vertex graph and the reference implementation ----------- */

typedef struct edge {
    int src, dst;
} edge;

static int edge_cmp(const void *a, const void *b)
{
    const edge *x = a, *y = b;
    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    return (x->dst > y->dst) - (x->dst < y->dst);
}

/* Writes the graph: vertices in a shuffled order, out-degree of the vertex
 * at position i about 300 / (i + 1)^0.7 (about 7000 edges, a tenth of
 * the vertices none), destinations uniform. */
static int make_graph(const char *path, edge **edges, size_t *n)
{
    uint64_t seed = 7;
    int order[VERTICES];
    for (int i = 0; i < VERTICES; i++)
        order[i] = i;
    for (int i = VERTICES - 1; i > 0; i--) {
        int j = (int)(splitmix(&seed) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    size_t cap = 1 << 14;
    *edges = malloc(cap * sizeof **edges);
    *n = 0;
    FILE *f = fopen(path, "w");
    if (!f || !*edges) {
        if (f)
            fclose(f);
        return -1;
    }
    for (int i = 0; i < VERTICES; i++) {
        int deg = (int)(300.0 / pow(i + 1, 0.7)) -
                  (int)(splitmix(&seed) % 3);
        for (int k = 0; k < deg; k++) {
            int dst = (int)(splitmix(&seed) % (VERTICES - 1));
            if (dst >= order[i])
                dst++; /* no self loops */
            /* the first edge of every fifth vertex twice: a duplicate */
            for (int copies = k == 0 && i % 5 == 0 ? 2 : 1; copies > 0;
                 copies--) {
                if (*n == cap) {
                    edge *ne = realloc(*edges, (cap *= 2) * sizeof *ne);
                    if (!ne) {
                        fclose(f);
                        return -1;
                    }
                    *edges = ne;
                }
                (*edges)[(*n)++] = (edge){order[i], dst};
                fprintf(f, "%d\t%d\n", order[i], dst);
            }
        }
    }
    return fclose(f);
}

/* PageRank as the issue defines it, over arrays. has[v]: v has a rank. */
static void reference(edge *e, size_t n, int iterations, double *rank,
                      int *has)
{
    qsort(e, n, sizeof *e, edge_cmp);
    size_t m = 0; /* distinct edges */
    for (size_t i = 0; i < n; i++)
        if (m == 0 || edge_cmp(&e[m - 1], &e[i]) != 0)
            e[m++] = e[i];
    int outdeg[VERTICES] = {0};
    for (size_t i = 0; i < m; i++)
        outdeg[e[i].src]++;
    int nlinked = 0;
    for (int v = 0; v < VERTICES; v++) {
        has[v] = outdeg[v] > 0;
        rank[v] = 1.0;
        nlinked += has[v];
    }
    for (int it = 0; it < iterations; it++) {
        double sum[VERTICES] = {0};
        int got[VERTICES] = {0};
        for (size_t i = 0; i < m; i++)
            if (has[e[i].src]) {
                sum[e[i].dst] += rank[e[i].src] / outdeg[e[i].src];
                got[e[i].dst] = 1;
            }
        for (int v = 0; v < VERTICES; v++) {
            has[v] = got[v];
            rank[v] = 0.85 * sum[v] + 0.15 / nlinked;
        }
    }
}

static void big_graph(const char *pr, const char *dir)
{
    char path[256], errf[256], cmd[4096];
    snprintf(path, sizeof path, "%s/graph.tsv", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    edge *e = NULL;
    size_t n = 0;
    if (make_graph(path, &e, &n) != 0) {
        CHECK(0, "cannot write %s", path);
        free(e);
        return;
    }
    static double rank[VERTICES];
    static int has[VERTICES];
    reference(e, n, 10, rank, has);
    free(e);

    size_t cap = 1 << 20;
    char *out = malloc(cap);
    if (!out)
        return;
    int want = 0;
    for (int v = 0; v < VERTICES; v++)
        want += has[v];
    const char *caching[] = {"", " --no-cache"};
    for (int c = 0; c < 2; c++) {
        snprintf(cmd, sizeof cmd, "'%s' --master 'local[2]'%s '%s'", pr,
                 caching[c], path);
        int st = run(cmd, errf, out, cap);
        CHECK(st == 0, "1000-vertex graph%s: exit %d: %s", caching[c], st,
              first_line(errf));
        int seen[VERTICES] = {0}, lines = 0;
        for (char *line = strtok(out, "\n"); st == 0 && line;
             line = strtok(NULL, "\n")) {
            char *end;
            long v = strtol(line, &end, 10);
            CHECK(*end == '\t' && v >= 0 && v < VERTICES && !seen[v],
                  "1000-vertex graph%s: bad or repeated line '%s'",
                  caching[c], line);
            if (*end != '\t' || v < 0 || v >= VERTICES || seen[v])
                continue;
            seen[v] = 1;
            lines++;
            double r = strtod(end + 1, NULL);
            CHECK(has[v] && fabs(r - rank[v]) <= 1e-9,
                  "1000-vertex graph%s: vertex %ld: rank %.15g, reference "
                  "%s%.15g",
                  caching[c], v, r, has[v] ? "" : "(none) ", rank[v]);
        }
        CHECK(st != 0 || lines == want, "1000-vertex graph%s: %d vertices, "
              "the reference has %d", caching[c], lines, want);
    }
    free(out);
}

static void malformed(const char *pr, const char *dir)
{
    char path[256], errf[256], cmd[4096], out[4096];
    snprintf(path, sizeof path, "%s/bad.tsv", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs("1\t2\n1 2 3\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --master 'local[2]' '%s'", pr, path);
    int st = run(cmd, errf, out, sizeof out);
    CHECK(st != 0 && strstr(first_line(errf), "got '1 2 3'"),
          "a malformed line: exit %d: %s", st, first_line(errf));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pagerank_test PAGERANK\n");
        return 2;
    }
    char tmpl[] = "/tmp/pagerank_test.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 2;
    }
    tiny_graph(argv[1], dir);
    big_graph(argv[1], dir);
    malformed(argv[1], dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("pagerank: the hand-ranked graph and a 1000-vertex graph match\n");
    return 0;
}
