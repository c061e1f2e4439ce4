/*
 * terasort-check — validates terasort's output against its input.
 *
 *   terasort-check INPUT OUTPUT_DIR
 *
 * Checks that OUTPUT_DIR holds part-00000 ... part-N (consecutive, nothing
 * missing) and _SUCCESS, that the concatenation of the part files in part
 * order is a whole number of 100-byte records sorted by their first 10
 * bytes (unsigned), and that it holds the same multiset of records as INPUT
 * (same count, same sum and xor of a 64-bit hash of each record). Prints
 * "OK: ..." and exits 0, or prints what is wrong and exits 1 (2 for a
 * usage or I/O error). Needs no ember: plain C.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD 100
#define KEY 10
#define MAX_PARTS 100000

/* The multiset summary of a sequence of records. */
typedef struct summary {
    uint64_t count, sum, xor;
} summary;

/* FNV-1a over the record, then a SplitMix64 finalizer to spread it. */
static uint64_t record_hash(const unsigned char *r)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (int i = 0; i < RECORD; i++) {
        h ^= r[i];
        h *= UINT64_C(1099511628211);
    }
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 31);
}

static void add(summary *s, const unsigned char *r)
{
    uint64_t h = record_hash(r);
    s->count++;
    s->sum += h;
    s->xor ^= h;
}

/* Summarises INPUT; -1 on an I/O error or a partial record. */
static int summarise_input(const char *path, summary *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "terasort-check: %s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char r[RECORD];
    size_t got;
    while ((got = fread(r, 1, RECORD, f)) == RECORD)
        add(s, r);
    int bad = ferror(f) || got != 0;
    fclose(f);
    if (bad)
        fprintf(stderr, "terasort-check: %s: %s\n", path,
                got ? "ends with a partial record" : "read error");
    return bad ? -1 : 0;
}

/* The number of part files, or -1 when one is missing or misnamed. */
static long count_parts(const char *dir, int *has_success)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "terasort-check: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    long n = 0, max = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, "_SUCCESS") == 0) {
            *has_success = 1;
            continue;
        }
        if (strncmp(e->d_name, "part-", 5) != 0)
            continue;
        char *end;
        long p = strtol(e->d_name + 5, &end, 10);
        if (*end != '\0' || p < 0 || p >= MAX_PARTS ||
            strlen(e->d_name + 5) < 5) {
            fprintf(stderr, "terasort-check: unexpected file %s/%s\n", dir,
                    e->d_name);
            closedir(d);
            return -1;
        }
        n++;
        if (p > max)
            max = p;
    }
    closedir(d);
    if (n != max + 1) {
        fprintf(stderr, "terasort-check: %s: %ld part files but the last is "
                        "part-%05ld: some are missing\n", dir, n, max);
        return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: terasort-check INPUT OUTPUT_DIR\n");
        return 2;
    }
    summary in = {0, 0, 0}, out = {0, 0, 0};
    if (summarise_input(argv[1], &in) != 0)
        return 2;
    int has_success = 0;
    long parts = count_parts(argv[2], &has_success);
    if (parts < 0)
        return 1;
    if (!has_success) {
        printf("FAIL: %s/_SUCCESS is missing (the job did not finish)\n",
               argv[2]);
        return 1;
    }
    /* Records may straddle part files in principle: carry the tail. */
    unsigned char prev[RECORD], r[RECORD];
    size_t have = 0;
    int first = 1;
    uint64_t unsorted = 0, first_unsorted = 0;
    char path[4096];
    for (long p = 0; p < parts; p++) {
        snprintf(path, sizeof path, "%s/part-%05ld", argv[2], p);
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "terasort-check: %s: %s\n", path, strerror(errno));
            return 2;
        }
        size_t got;
        while ((got = fread(r + have, 1, RECORD - have, f)) > 0) {
            have += got;
            if (have < RECORD)
                continue;
            have = 0;
            if (!first && memcmp(prev, r, KEY) > 0 && unsorted++ == 0)
                first_unsorted = out.count;
            first = 0;
            memcpy(prev, r, RECORD);
            add(&out, r);
        }
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            fprintf(stderr, "terasort-check: %s: read error\n", path);
            return 2;
        }
    }
    int ok = 1;
    if (have != 0) {
        printf("FAIL: the output ends with a partial record (%zu bytes)\n",
               have);
        ok = 0;
    }
    if (unsorted) {
        printf("FAIL: not sorted: %" PRIu64 " records have a smaller key "
               "than the one before them (the first is record %" PRIu64
               ")\n", unsorted, first_unsorted);
        ok = 0;
    }
    if (in.count != out.count) {
        printf("FAIL: the input has %" PRIu64 " records, the output %" PRIu64
               "\n", in.count, out.count);
        ok = 0;
    } else if (in.sum != out.sum || in.xor != out.xor) {
        printf("FAIL: the output's records differ from the input's (same "
               "count, different checksums)\n");
        ok = 0;
    }
    if (!ok)
        return 1;
    printf("OK: %" PRIu64 " records in %ld part files, sorted, the same "
           "records as the input (checksum %016" PRIx64 ")\n",
           out.count, parts, out.sum ^ out.xor);
    return 0;
}
