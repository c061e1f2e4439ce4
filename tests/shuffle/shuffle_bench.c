/*
 * shuffle_bench.c — how fast the sort shuffle manager sorts, on
 * TeraSort-like records (100 random bytes each).
 *
 *   shuffle_bench [records] [dir]     (default 10000000, /tmp)
 *
 * Prints records/s for: the in-memory sort alone (sort_entries over
 * 1 and 64 partitions), and the plugin's write_tagged + commit with
 * EMBER_SHUFFLE_SORTED into 64 partitions, without and with spills, with
 * no codec and with lz4. A measurement, not a test: nothing is asserted
 * except that the calls succeed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ember/shuffle.h"
#include "fake_host.h"
#include "sort_internal.h"

const ember_plugin_info *ember_plugin_entry_sort(void);
const ember_plugin_info *ember_plugin_entry_lz4(void);

#define REC 100
#define PARTS 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* The in-memory sort alone. */
static void bench_sort(const uint8_t *pool, size_t n, uint32_t parts)
{
    sort_entry *a = xmalloc(n * sizeof *a), *tmp = xmalloc(n * sizeof *a);
    size_t *starts = xmalloc(((size_t)parts + 1) * sizeof *starts);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = pool + i * REC;
        a[i].rec = r;
        a[i].len = REC;
        a[i].part = (uint32_t)(r[REC - 1] % parts);
        a[i].prefix = sort_prefix(r, REC, 0);
    }
    double t0 = now();
    sort_entries(a, tmp, n, parts, starts, 1);
    double t = now() - t0;
    for (size_t i = 1; i < n; i++) {
        if (a[i].part < a[i - 1].part ||
            (a[i].part == a[i - 1].part &&
             memcmp(a[i - 1].rec, a[i].rec, REC) > 0)) {
            fprintf(stderr, "not sorted at %zu\n", i);
            exit(1);
        }
    }
    printf("sort_entries, %2u partitions: %zu records in %.3f s = %.2f M "
           "records/s\n",
           parts, n, t, (double)n / t / 1e6);
    free(a);
    free(tmp);
    free(starts);
}

/* write_tagged + commit through the plugin. */
static void bench_plugin(const uint8_t *pool, size_t n, const char *dir,
                         uint64_t memory, int lz4)
{
    const ember_shuffle_vtable *vt = ember_plugin_entry_sort()->components[0]
                                         .vtable;
    const ember_codec_vtable *cvt = ember_plugin_entry_lz4()->components[0]
                                        .vtable;
    ember_shuffle_conf conf;
    ember_shuffle_writer_opts o;
    ember_error err;
    void *st = NULL, *w = NULL;
    uint64_t lengths[PARTS];
    const size_t batch_n = 4096;
    uint8_t *frames = xmalloc(batch_n * (REC + 1));
    uint32_t *tags = xmalloc(batch_n * sizeof *tags);

    memset(&conf, 0, sizeof conf);
    conf.size = sizeof conf;
    conf.dir = dir;
    conf.memory_bytes = memory;
    conf.file_buffer = 1 << 20;
    conf.chunk_bytes = 64 << 10;
    conf.bypass_threshold = 200;
    if (lz4) {
        conf.codec = cvt;
        conf.codec_name = "lz4";
    }
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.flags = EMBER_SHUFFLE_SORTED;
    o.shuffle_id = 1;
    o.num_partitions = PARTS;
    if (vt->open(em_fake_host(), &conf, &st, &err) != EMBER_OK ||
        vt->writer_open(st, &o, &w, &err) != EMBER_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    double t0 = now();
    for (size_t lo = 0; lo < n; lo += batch_n) {
        size_t hi = lo + batch_n < n ? lo + batch_n : n;
        for (size_t i = lo; i < hi; i++) {
            uint8_t *f = frames + (i - lo) * (REC + 1);
            f[0] = REC;
            memcpy(f + 1, pool + i * REC, REC);
            tags[i - lo] = pool[i * REC + REC - 1] % PARTS;
        }
        ember_batch b = {frames, (hi - lo) * (REC + 1), hi - lo};
        if (vt->write_tagged(w, &b, tags, &err) != EMBER_OK) {
            fprintf(stderr, "write: %s\n", err.msg);
            exit(1);
        }
    }
    double t1 = now();
    if (vt->writer_commit(w, lengths, NULL, &err) != EMBER_OK) {
        fprintf(stderr, "commit: %s\n", err.msg);
        exit(1);
    }
    double t2 = now();
    uint64_t stored = 0;
    for (int p = 0; p < PARTS; p++)
        stored += lengths[p];
    printf("plugin, memory %4llu MiB, %-4s: write %.3f s + commit %.3f s = "
           "%.2f M records/s (%.0f MB stored, %lld spills)\n",
           (unsigned long long)(memory >> 20), lz4 ? "lz4" : "none",
           t1 - t0, t2 - t1, (double)n / (t2 - t0) / 1e6,
           (double)stored / 1e6,
           (long long)em_fake_host_counter("shuffle.sort.spills"));
    (void)vt->remove_shuffle(st, 1, &err);
    vt->close(st);
    free(frames);
    free(tags);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000000;
    const char *base = argc > 2 ? argv[2] : "/tmp";
    char dir[512];
    uint64_t s = 42;
    uint8_t *pool = xmalloc(n * REC);
    for (size_t i = 0; i < n * REC; i += 8) {
        uint64_t x = rng_next(&s);
        memcpy(pool + i, &x, n * REC - i < 8 ? n * REC - i : 8);
    }
    snprintf(dir, sizeof dir, "%s/ember-shuffle-bench-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    bench_sort(pool, n, 1);
    bench_sort(pool, n, PARTS);
    em_fake_host_reset();
    bench_plugin(pool, n, dir, (uint64_t)4 << 30, 0);
    em_fake_host_reset();
    bench_plugin(pool, n, dir, (uint64_t)4 << 30, 1);
    em_fake_host_reset();
    bench_plugin(pool, n, dir, (uint64_t)256 << 20, 0);
    rmdir(dir);
    free(pool);
    return 0;
}
