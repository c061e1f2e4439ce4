/*
 * gentext — a deterministic text for word count runs and benchmarks:
 * lines of 5–20 lower-case words separated by single spaces, words drawn
 * with Zipf(1.0) ranks from a vocabulary of distinct 3–10 letter words.
 * The output is a pure function of the arguments.
 *
 *   gentext [--bytes N] [--vocab V] [--seed S] [-o FILE]
 *
 * Defaults: 16 MiB, 50,000 words, seed 42, stdout. (The benchmark inputs
 * of record come from ../shared/datagen; this one ships with ember so the
 * main job needs nothing from outside the repository.)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    uint64_t bytes = 16u << 20, seed = 42;
    long vocab = 50000;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
            bytes = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc)
            vocab = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: gentext [--bytes N] [--vocab V] "
                            "[--seed S] [-o FILE]\n");
            return 2;
        }
    }
    if (vocab < 1 || vocab > 10000000) {
        fprintf(stderr, "gentext: --vocab must be 1..10000000\n");
        return 2;
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    char (*words)[11] = malloc((size_t)vocab * sizeof *words);
    double *cdf = malloc((size_t)vocab * sizeof *cdf);
    if (!f || !words || !cdf) {
        perror("gentext");
        return 1;
    }
    uint64_t st = seed;
    /* Distinct words: the rank in base 25 (letters a..y), then 'z', then
     * random letters a..y up to a random length of 3..10 — the part up to
     * the first 'z' names the rank, so no two words are equal. */
    for (long w = 0; w < vocab; w++) {
        int len = 3 + (int)(next(&st) % 8);
        long r = w;
        int k = 0;
        do {
            words[w][k++] = (char)('a' + r % 25);
            r /= 25;
        } while (r);
        words[w][k++] = 'z';
        while (k < len)
            words[w][k++] = (char)('a' + next(&st) % 25);
        words[w][k] = '\0';
    }
    double sum = 0;
    for (long w = 0; w < vocab; w++)
        cdf[w] = (sum += 1.0 / (double)(w + 1));
    uint64_t written = 0;
    while (written < bytes) {
        int n = 5 + (int)(next(&st) % 16);
        for (int i = 0; i < n; i++) {
            double u = (double)(next(&st) >> 11) / 9007199254740992.0 * sum;
            long lo = 0, hi = vocab - 1;
            while (lo < hi) {
                long mid = (lo + hi) / 2;
                if (cdf[mid] < u)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (i)
                fputc(' ', f);
            written += fputs(words[lo], f) >= 0 ? strlen(words[lo]) + 1 : 0;
        }
        fputc('\n', f);
    }
    free(words);
    free(cdf);
    return fclose(f) == 0 ? 0 : 1;
}
