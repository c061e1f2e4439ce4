/*
 * record_bench — throughput of the record codec on word-count-shaped data:
 * pair records (string word, int count) encoded into one batch, then
 * decoded with the batch and record cursors, then compared pairwise with
 * ember_rec_compare (what a sort does). Reports ns/record and MB/s, and a
 * plain-C baseline that writes the same (len, bytes, int64) layout with
 * memcpy, so the codec's cost over the minimum is visible.
 *
 *   record_bench [records]        (default 5,000,000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember/batch.h"
#include "ember/record.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Deterministic words of 3..10 letters. */
static uint64_t rng = 42;
static uint64_t next(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 5000000;
    char *words = malloc(n * 11);
    uint8_t *wlen = malloc(n);
    if (!words || !wlen)
        return 1;
    for (size_t i = 0; i < n; i++) {
        wlen[i] = (uint8_t)(3 + next() % 8);
        for (size_t k = 0; k < wlen[i]; k++)
            words[i * 11 + k] = (char)('a' + next() % 26);
    }

    ember_buf batch = ember_buf_heap();
    uint8_t scratch[64];
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        ember_buf rec = ember_buf_fixed(scratch, sizeof scratch);
        ember_rec_put_string(&rec, words + i * 11, wlen[i]);
        ember_rec_put_int(&rec, (int64_t)(i & 0xffff));
        if (ember_batch_append(&batch, rec.data, rec.len) != EMBER_OK)
            return 1;
    }
    double t1 = now();

    ember_batch b = {batch.data, batch.len, n};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *r;
    size_t len;
    uint64_t sum = 0, count = 0;
    while (ember_batch_next(&c, &r, &len) == EMBER_OK) {
        ember_rec_cursor rc = ember_rec_cursor_init(r, len);
        ember_value k, v;
        if (ember_rec_next(&rc, &k) != EMBER_OK ||
            ember_rec_next(&rc, &v) != EMBER_OK)
            return 1;
        sum += k.u.str.len + (uint64_t)v.u.i64;
        count++;
    }
    double t2 = now();

    c = ember_batch_cursor_of(&b);
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    int64_t order = 0;
    while (ember_batch_next(&c, &r, &len) == EMBER_OK) {
        if (prev)
            order += ember_rec_compare(prev, prev_len, r, len);
        prev = r;
        prev_len = len;
    }
    double t3 = now();

    /* Baseline: the same information with memcpy and no encoding. */
    uint8_t *raw = malloc(n * 20);
    if (!raw)
        return 1;
    size_t off = 0;
    double t4 = now();
    for (size_t i = 0; i < n; i++) {
        int64_t val = (int64_t)(i & 0xffff);
        raw[off++] = wlen[i];
        memcpy(raw + off, words + i * 11, wlen[i]);
        off += wlen[i];
        memcpy(raw + off, &val, 8);
        off += 8;
    }
    double t5 = now();

    double mb = (double)batch.len / 1e6;
    printf("records            %zu (%.1f MB encoded, %.1f bytes/record)\n",
           n, mb, (double)batch.len / (double)n);
    printf("encode             %6.1f ns/record  %7.0f MB/s\n",
           (t1 - t0) * 1e9 / (double)n, mb / (t1 - t0));
    printf("decode (cursor)    %6.1f ns/record  %7.0f MB/s\n",
           (t2 - t1) * 1e9 / (double)n, mb / (t2 - t1));
    printf("compare adjacent   %6.1f ns/pair\n", (t3 - t2) * 1e9 / (double)n);
    printf("baseline memcpy    %6.1f ns/record  (%.1f MB raw)\n",
           (t5 - t4) * 1e9 / (double)n, (double)off / 1e6);
    printf("encode / baseline  %.2fx\n", (t1 - t0) / (t5 - t4));
    /* Keep the work observable. */
    fprintf(stderr, "check %llu %llu %lld %u\n", (unsigned long long)sum,
            (unsigned long long)count, (long long)order, raw[n]);
    ember_buf_release(&batch);
    free(raw);
    free(words);
    free(wlen);
    return 0;
}
