/*
 * replay.c — the replay driver of the fuzz targets (see replay.h): seed
 * files, file replay, deterministic mutations, argument handling.
 */
#include "replay.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 1;

uint64_t em_fuzz_rand(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

size_t em_fuzz_below(size_t n)
{
    return n ? (size_t)(em_fuzz_rand() % n) : 0;
}

int em_fuzz_insert(uint8_t *buf, size_t *len, size_t cap, size_t at,
                   const void *src, size_t k)
{
    if (at > *len || k > cap || *len > cap - k)
        return 0;
    memmove(buf + at + k, buf + at, *len - at);
    if (k)
        memcpy(buf + at, src, k);
    *len += k;
    return 1;
}

void em_fuzz_delete(uint8_t *buf, size_t *len, size_t at, size_t k)
{
    if (at > *len || k > *len - at)
        return;
    memmove(buf + at, buf + at + k, *len - at - k);
    *len -= k;
}

void em_fuzz_duplicate(uint8_t *buf, size_t *len, size_t cap, size_t at,
                       size_t k)
{
    if (at > *len || k > *len - at || k > cap || *len > cap - k)
        return;
    memmove(buf + at + k, buf + at, *len - at);
    *len += k;
}

void em_fuzz_edit(uint8_t *buf, size_t *len, size_t cap, size_t at,
                  unsigned op, const uint8_t *dict, size_t ndict)
{
    switch (op) {
    case 0:
        if (*len)
            buf[at] ^= (uint8_t)(1u << em_fuzz_below(8));
        break;
    case 1:
        if (*len)
            buf[at] = dict[em_fuzz_below(ndict)];
        break;
    case 2:
        /* draw only when there is room, as the edit sequence depends on it */
        if (*len < cap) {
            uint8_t b = em_fuzz_below(2) ? dict[em_fuzz_below(ndict)]
                                         : (uint8_t)em_fuzz_rand();
            (void)em_fuzz_insert(buf, len, cap, at, &b, 1);
        }
        break;
    case 3: em_fuzz_delete(buf, len, at, 1); break;
    case 4: *len = at; break;
    default: em_fuzz_duplicate(buf, len, cap, at, 1 + em_fuzz_below(8)); break;
    }
}

void em_fuzz_mutate_envelope(uint8_t *buf, size_t *len, size_t cap,
                             const em_fuzz_seed *seeds, size_t nseeds,
                             unsigned type_lo, unsigned type_span,
                             const uint8_t *dict, size_t ndict)
{
    size_t at = *len ? em_fuzz_below(*len) : 0;
    unsigned op = (unsigned)em_fuzz_below(8);
    if (op == 5) {
        if (*len > 5)
            buf[5] = (uint8_t)(type_lo + em_fuzz_below(type_span));
    } else if (op == 6) {
        const em_fuzz_seed *s = &seeds[em_fuzz_below(nseeds)];
        size_t k = em_fuzz_below(s->len + 1);
        (void)em_fuzz_insert(buf, len, cap, *len, s->data, k);
    } else {
        em_fuzz_edit(buf, len, cap, at, op, dict, ndict);
    }
}

/* Reads the file at path into *data (malloc'd, the caller frees) and *len.
 * Returns 0, or 1 with a message on stderr. */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *mem = NULL;
    size_t n = 0, cap = 0;
    int rc = 1;
    if (f == NULL) {
        perror(path);
        return 1;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            uint8_t *p;
            cap = cap ? cap * 2 : 4096;
            p = (uint8_t *)realloc(mem, cap);
            if (p == NULL) {
                fprintf(stderr, "%s: out of memory\n", path);
                goto done;
            }
            mem = p;
        }
        got = fread(mem + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (ferror(f)) {
        perror(path);
        goto done;
    }
    *data = mem;
    *len = n;
    mem = NULL;
    rc = 0;
done:
    free(mem);
    fclose(f);
    return rc;
}

/* Runs the target on an exact-size heap copy of p[0..n), so that ASan sees
 * any over-read. Returns 0, or 1 when out of memory. */
static int run_exact(const em_fuzz_target *t, const uint8_t *p, size_t n)
{
    uint8_t *exact = (uint8_t *)malloc(n ? n : 1);
    if (exact == NULL) {
        fprintf(stderr, "%s: out of memory\n", t->name);
        return 1;
    }
    if (n)
        memcpy(exact, p, n);
    (void)LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int write_seeds(const em_fuzz_target *t, const char *dir)
{
    size_t i;
    for (i = 0; i < t->nseeds; i++) {
        const em_fuzz_seed *s = &t->seeds[i];
        char path[4096];
        FILE *f;
        if (snprintf(path, sizeof path, "%s/%s", dir, s->name) >=
            (int)sizeof path) {
            fprintf(stderr, "%s: path too long under %s\n", t->name, dir);
            return 1;
        }
        f = fopen(path, "wb");
        if (f == NULL || fwrite(s->data, 1, s->len, f) != s->len) {
            perror(path);
            if (f)
                fclose(f);
            return 1;
        }
        if (fclose(f) != 0) {
            perror(path);
            return 1;
        }
    }
    return 0;
}

static int replay_files(const em_fuzz_target *t, int n, char **paths)
{
    int a;
    for (a = 0; a < n; a++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int rc;
        if (read_file(paths[a], &data, &len) != 0)
            return 1;
        rc = run_exact(t, data, len);
        free(data);
        if (rc != 0)
            return 1;
    }
    printf("%s: %d file(s) ok\n", t->name, n);
    return 0;
}

static int not_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Frees the names and data of l[0..n), which load_dir allocated, and l;
 * NULL members and a NULL l are fine. */
static void free_seeds(em_fuzz_seed *l, size_t n)
{
    size_t i;
    for (i = 0; l != NULL && i < n; i++) {
        free((void *)l[i].name);
        free((void *)l[i].data);
    }
    free(l);
}

/*
 * Loads the files of dir (but dot files) into *out[0..*n), sorted by name
 * so that the mutations do not depend on the directory's order. Returns 0,
 * or 1 with a message on stderr.
 */
static int load_dir(const em_fuzz_target *t, const char *dir,
                    em_fuzz_seed **out, size_t *n)
{
    struct dirent **ents = NULL;
    em_fuzz_seed *l = NULL;
    size_t count = 0, i;
    int got = scandir(dir, &ents, not_hidden, alphasort), rc = 1;
    if (got < 0) {
        perror(dir);
        return 1;
    }
    if (got == 0) {
        fprintf(stderr, "%s: no seeds in %s\n", t->name, dir);
        goto done;
    }
    l = (em_fuzz_seed *)calloc((size_t)got, sizeof *l);
    if (l == NULL) {
        fprintf(stderr, "%s: out of memory\n", t->name);
        goto done;
    }
    for (count = 0; count < (size_t)got; count++) {
        char path[4096];
        const char *name = ents[count]->d_name;
        uint8_t *data = NULL;
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >=
            (int)sizeof path) {
            fprintf(stderr, "%s: path too long under %s\n", t->name, dir);
            goto done;
        }
        l[count].name = strdup(name);
        if (l[count].name == NULL) {
            fprintf(stderr, "%s: out of memory\n", t->name);
            goto done;
        }
        if (read_file(path, &data, &l[count].len) != 0)
            goto done;
        l[count].data = data;
    }
    *out = l;
    *n = count;
    l = NULL;
    rc = 0;
done:
    free_seeds(l, (size_t)got); /* calloc'd: unread entries are NULL */
    for (i = 0; i < (size_t)got; i++)
        free(ents[i]);
    free(ents);
    return rc;
}

/*
 * The seeds, a NULL input, then t->rounds mutations of random seeds (see
 * em_fuzz_replay_main).
 */
static int run_seeds(const em_fuzz_target *t, const em_fuzz_seed *seeds,
                     size_t nseeds)
{
    size_t i, runs = 0;
    for (i = 0; i < nseeds; i++) {
        size_t before = *t->accepted;
        if (run_exact(t, seeds[i].data, seeds[i].len) != 0)
            return 1;
        if (*t->accepted == before) {
            fprintf(stderr, "%s: seed %s is refused\n", t->name,
                    seeds[i].name);
            return 1;
        }
        runs++;
    }
    (void)LLVMFuzzerTestOneInput(NULL, 0);
    for (i = 0; i < t->rounds; i++) {
        size_t k = em_fuzz_below(nseeds), n = seeds[k].len, cap, m, edits;
        uint8_t *buf;
        int rc;
        cap = n + t->grow < t->min_cap ? t->min_cap : n + t->grow;
        buf = (uint8_t *)malloc(cap ? cap : 1);
        if (buf == NULL) {
            fprintf(stderr, "%s: out of memory\n", t->name);
            return 1;
        }
        if (n)
            memcpy(buf, seeds[k].data, n);
        edits = 1 + em_fuzz_below(4);
        for (m = 0; m < edits; m++)
            t->mutate(buf, &n, cap);
        rc = run_exact(t, buf, n);
        free(buf);
        if (rc != 0)
            return 1;
        runs++;
    }
    printf("%s: %zu inputs, %zu %s, all consistent\n", t->name, runs,
           *t->accepted, t->accepted_what);
    return 0;
}

/* Seeds from the files of dir. */
static int run_dir(const em_fuzz_target *t, const char *dir)
{
    em_fuzz_seed *seeds = NULL;
    size_t n = 0;
    int rc;
    if (load_dir(t, dir, &seeds, &n) != 0)
        return 1;
    rc = run_seeds(t, seeds, n);
    free_seeds(seeds, n);
    return rc;
}

static int is_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    closedir(d);
    return 1;
}

int em_fuzz_replay_main(const em_fuzz_target *t, int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        if (t->nseeds == 0) {
            fprintf(stderr, "%s: no built-in seeds to write\n", t->name);
            return 2;
        }
        return write_seeds(t, argv[2]);
    }
    if (argc == 2 && is_dir(argv[1]))
        return run_dir(t, argv[1]);
    if (argc > 1)
        return replay_files(t, argc - 1, argv + 1);
    if (t->nseeds == 0) {
        fprintf(stderr, "usage: %s DIR | FILE...\n", t->name);
        return 2;
    }
    return run_seeds(t, t->seeds, t->nseeds);
}
