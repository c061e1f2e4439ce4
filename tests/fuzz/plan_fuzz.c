/*
 * plan_fuzz.c — fuzz target for the plan decoder of kernel/dag.
 *
 * LLVMFuzzerTestOneInput decodes any bytes as a plan and aborts on any
 * inconsistency:
 *   - a refused input leaves no lineage and a non-empty message;
 *   - an accepted one is a DAG in topological order with ids found by
 *     em_lineage_find; its canonical encoding decodes to the same graph
 *     and fingerprints, and encoding that again gives the same bytes;
 *   - toDebugString of its last dataset works (small plans only: a stack
 *     of diamonds legitimately prints a million lines).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DEMBER_PLAN_FUZZ_MAIN it gets a plain main instead:
 *     plan_fuzz_replay DIR          the files in DIR as seeds, plus
 *                                   deterministic mutations of them
 *     plan_fuzz_replay FILE...      replays the given inputs
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/lineage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t accepted; /* inputs that decoded, for the replay's summary */

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "plan_fuzz:%d: check failed: %s\n", __LINE__,    \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Resolves every name but those of plugin "missing". */
static int resolve(void *ctx, const char *name)
{
    (void)ctx;
    return strncmp(name, "missing.", 8) != 0;
}

static void check_same(const em_lineage *a, const em_lineage *b)
{
    uint32_t i, j;
    CHECK(a->count == b->count);
    for (i = 0; i < a->count; i++) {
        const em_node *x = &a->nodes[i], *y = &b->nodes[i];
        CHECK(x->id == y->id && x->op == y->op);
        CHECK(x->fingerprint == y->fingerprint);
        CHECK(x->partitions == y->partitions);
        CHECK(x->output_determinism == y->output_determinism);
        CHECK(em_partitioner_equal(&x->partitioner, &y->partitioner));
        CHECK(x->ndeps == y->ndeps && x->nfns == y->nfns);
        for (j = 0; j < x->ndeps; j++)
            CHECK(x->deps[j].parent == y->deps[j].parent &&
                  x->deps[j].kind == y->deps[j].kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    em_lineage *l = NULL, *l2 = NULL;
    em_fn_resolver r = {resolve, NULL};
    ember_error err;
    char *e1 = NULL, *e2 = NULL, *dbg = NULL;
    size_t n1 = 0, n2 = 0;
    uint32_t i, j;
    ember_status s;

    ember_error_clear(&err);
    s = em_lineage_decode(&l, (const char *)data, size, &r, &err);
    if (s != EMBER_OK) {
        CHECK(l == NULL);
        CHECK(err.code == s && err.msg[0] != '\0');
        return 0;
    }
    CHECK(l != NULL);
    accepted++;
    for (i = 0; i < l->count; i++) {
        const em_node *n = &l->nodes[i];
        CHECK(em_lineage_find(l, n->id) == (int64_t)i);
        CHECK(n->op != NULL);
        CHECK(n->partitions <= EM_LINEAGE_MAX_PARTITIONS);
        CHECK(n->output_determinism >= n->determinism);
        for (j = 0; j < n->ndeps; j++)
            CHECK(n->deps[j].parent < i);
    }

    CHECK(em_lineage_encode(l, &e1, &n1, &err) == EMBER_OK);
    CHECK(strlen(e1) == n1);
    s = em_lineage_decode(&l2, e1, n1, &r, &err);
    if (s != EMBER_OK) {
        fprintf(stderr, "plan_fuzz: the encoding does not decode: %s\n%s\n",
                err.msg, e1);
        abort();
    }
    check_same(l, l2);
    CHECK(em_lineage_encode(l2, &e2, &n2, &err) == EMBER_OK);
    CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);

    if (l->count > 0 && l->count <= 24) {
        CHECK(em_lineage_debug_string(l, l->count - 1, &dbg, &err) ==
              EMBER_OK);
        CHECK(dbg != NULL && dbg[0] == '(');
    }

    free(dbg);
    free(e1);
    free(e2);
    em_lineage_free(l2);
    em_lineage_free(l);
    return 0;
}

#ifdef EMBER_PLAN_FUZZ_MAIN

#include <dirent.h>

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

static int read_file(const char *path, blob *out)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        perror(path);
        return 1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 4096;
            p = (uint8_t *)realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return 1;
            }
            data = p;
        }
        got = fread(data + len, 1, cap - len, f);
        if (got == 0)
            break;
        len += got;
    }
    fclose(f);
    out->p = data;
    out->n = len;
    return 0;
}

static uint64_t rng_state = 1;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return n ? (size_t)(rng_next() % n) : 0;
}

/* Applies one edit to buf[0..*n), capacity cap. JSON-aware tokens make
 * mutations that still parse common. */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
    static const char *const tokens[] = {
        "0",       "1",          "-1",        "4",       "16777217",
        "1.5",     "\"narrow\"", "\"shuffle\"", "\"map\"", "\"union\"",
        "\"join\"", "[]",        "{}",        "null",    "true",
        "\"AQ==\"", "\"x.y\"",   ",",         ":",       "\"id\"",
        "9007199254740993", "\"missing.f\"", "\"hash\"", "\"range\""};
    size_t at = rng_below(*n + 1);
    switch (rng_below(6)) {
    case 0: /* flip a bit */
        if (*n)
            buf[rng_below(*n)] ^= (uint8_t)(1u << rng_below(8));
        break;
    case 1: { /* insert a token */
        const char *t = tokens[rng_below(sizeof tokens / sizeof tokens[0])];
        size_t k = strlen(t);
        if (*n + k <= cap) {
            memmove(buf + at + k, buf + at, *n - at);
            memcpy(buf + at, t, k);
            *n += k;
        }
        break;
    }
    case 2: { /* delete a few bytes */
        size_t k = 1 + rng_below(8);
        if (at + k <= *n) {
            memmove(buf + at, buf + at + k, *n - at - k);
            *n -= k;
        }
        break;
    }
    case 3: /* replace a digit */
        if (*n) {
            size_t p = rng_below(*n);
            if (buf[p] >= '0' && buf[p] <= '9')
                buf[p] = (uint8_t)('0' + rng_below(10));
        }
        break;
    case 4: /* truncate */
        *n = at;
        break;
    default: { /* duplicate a chunk in place */
        size_t k = 1 + rng_below(32);
        if (at + k <= *n && *n + k <= cap) {
            memmove(buf + at + k, buf + at, *n - at);
            *n += k;
        }
        break;
    }
    }
}

static int run_seeds(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    blob seeds[64];
    size_t nseeds = 0, i, runs = 0;
    if (d == NULL) {
        perror(dir);
        return 1;
    }
    while ((ent = readdir(d)) != NULL && nseeds < 64) {
        char path[4096];
        if (ent->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) >=
            (int)sizeof path)
            continue;
        if (read_file(path, &seeds[nseeds]) != 0) {
            closedir(d);
            return 1;
        }
        nseeds++;
    }
    closedir(d);
    if (nseeds == 0) {
        fprintf(stderr, "plan_fuzz_replay: no seeds in %s\n", dir);
        return 1;
    }
    for (i = 0; i < nseeds; i++) {
        em_lineage *l = NULL;
        ember_error err;
        /* the seeds are valid plans */
        if (em_lineage_decode(&l, (const char *)seeds[i].p, seeds[i].n, NULL,
                              &err) != EMBER_OK) {
            fprintf(stderr, "plan_fuzz_replay: seed %zu: %s\n", i, err.msg);
            return 1;
        }
        em_lineage_free(l);
        (void)LLVMFuzzerTestOneInput(seeds[i].p, seeds[i].n);
        runs++;
    }
    (void)LLVMFuzzerTestOneInput(NULL, 0);
    for (i = 0; i < 20000; i++) {
        size_t k = rng_below(nseeds), n = seeds[k].n, cap = n + 512, m;
        size_t edits = 1 + rng_below(4);
        uint8_t *buf = (uint8_t *)malloc(cap);
        CHECK(buf != NULL);
        memcpy(buf, seeds[k].p, n);
        for (m = 0; m < edits; m++)
            mutate(buf, &n, cap);
        {
            /* an exact-size copy, so ASan sees any over-read */
            uint8_t *exact = (uint8_t *)malloc(n ? n : 1);
            CHECK(exact != NULL);
            memcpy(exact, buf, n);
            (void)LLVMFuzzerTestOneInput(exact, n);
            free(exact);
        }
        free(buf);
        runs++;
    }
    for (i = 0; i < nseeds; i++)
        free(seeds[i].p);
    printf("plan_fuzz_replay: %zu inputs, %zu valid, all consistent\n", runs,
           accepted);
    return 0;
}

int main(int argc, char **argv)
{
    int a;
    if (argc == 2) {
        DIR *d = opendir(argv[1]);
        if (d != NULL) {
            closedir(d);
            return run_seeds(argv[1]);
        }
    }
    if (argc < 2) {
        fprintf(stderr, "usage: plan_fuzz_replay DIR | FILE...\n");
        return 2;
    }
    for (a = 1; a < argc; a++) {
        blob b;
        if (read_file(argv[a], &b) != 0)
            return 1;
        (void)LLVMFuzzerTestOneInput(b.p, b.n);
        free(b.p);
    }
    printf("plan_fuzz_replay: %d file(s) ok\n", argc - 1);
    return 0;
}

#endif /* EMBER_PLAN_FUZZ_MAIN */
