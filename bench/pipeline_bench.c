/*
 * bench/pipeline_bench.c — narrow-pipeline throughput: ember reading a text
 * file and splitting it into words (text_file -> flat_map(std.split_words)
 * -> count) next to hand-written C loops doing the same work — reading the
 * file in 1 MiB blocks and counting maximal runs of non-white-space bytes —
 * on one thread and on as many threads as ember has slots. Also word count
 * proper (count_by_value) next to a C loop with an open-addressing table.
 *
 *   ember-bench pipeline [--input FILE] [--master URL] [--repeat N]
 *
 * Without --input a 64 MiB text is generated with gentext (next to
 * ember-bench). One JSON object per measurement: records, bytes, seconds,
 * records/s, MB/s, and for ember the ratio to the C loop with the same
 * number of threads.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ember/ember.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

typedef struct slice {
    const char *path;
    off_t from, to; /* words starting in [from, to) */
    uint64_t words;
} slice;

/* Counts words whose first byte lies in [from, to). */
static void *count_slice(void *arg)
{
    slice *s = arg;
    int fd = open(s->path, O_RDONLY);
    char *buf = malloc(1 << 20);
    if (fd < 0 || !buf) {
        free(buf);
        return NULL;
    }
    off_t at = s->from;
    /* inside a word that began before `from`? */
    int in = 0;
    if (at > 0) {
        char c;
        in = pread(fd, &c, 1, at - 1) == 1 && !is_space((unsigned char)c);
    }
    uint64_t n = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, 1 << 20, at);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            int sp = is_space((unsigned char)buf[i]);
            if (!sp && !in && at + i < s->to)
                n++;
            in = !sp;
        }
        at += r;
        if (at >= s->to && !in)
            break;
    }
    s->words = n;
    free(buf);
    close(fd);
    return NULL;
}

static uint64_t c_words(const char *path, off_t size, int threads)
{
    slice sl[64];
    pthread_t th[64];
    uint64_t total = 0;
    for (int t = 0; t < threads; t++) {
        sl[t] = (slice){path, size * t / threads, size * (t + 1) / threads, 0};
        pthread_create(&th[t], NULL, count_slice, &sl[t]);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        total += sl[t].words;
    }
    return total;
}

/* Word count in C: one thread, FNV-hashed open addressing over words
 * copied into an arena. Returns distinct words. */
static uint64_t c_wordcount(const char *path, uint64_t *words)
{
    size_t cap = 1 << 20, used = 0, arena_len = 0, arena_cap = 16 << 20;
    struct ent { uint64_t h; uint32_t off, len; uint64_t n; } *t =
        calloc(cap, sizeof *t);
    char *arena = malloc(arena_cap), *buf = malloc((1 << 20) + 64);
    FILE *f = fopen(path, "rb");
    char word[256];
    size_t wl = 0;
    *words = 0;
    if (!t || !arena || !buf || !f)
        return 0;
    size_t r;
    while ((r = fread(buf, 1, 1 << 20, f)) > 0 || wl) {
        for (size_t i = 0; i <= r; i++) {
            int end = i == r;
            if (end && r > 0)
                break;
            if (!end && !is_space((unsigned char)buf[i])) {
                if (wl < sizeof word)
                    word[wl++] = buf[i];
                continue;
            }
            if (!wl)
                continue;
            uint64_t h = 1469598103934665603ull;
            for (size_t k = 0; k < wl; k++)
                h = (h ^ (unsigned char)word[k]) * 1099511628211ull;
            h |= 1;
            size_t j = h & (cap - 1);
            while (t[j].h && !(t[j].h == h && t[j].len == wl &&
                               !memcmp(arena + t[j].off, word, wl)))
                j = (j + 1) & (cap - 1);
            if (!t[j].h) {
                if (arena_len + wl > arena_cap || used * 2 > cap)
                    break; /* the inputs here stay far below these */
                memcpy(arena + arena_len, word, wl);
                t[j] = (struct ent){h, (uint32_t)arena_len, (uint32_t)wl, 0};
                arena_len += wl;
                used++;
            }
            t[j].n++;
            (*words)++;
            wl = 0;
        }
        if (r == 0)
            break;
    }
    fclose(f);
    free(t);
    free(arena);
    free(buf);
    return used;
}

static void report(const char *name, int threads, uint64_t records,
                   off_t bytes, double secs, double base_secs)
{
    printf("{\"bench\":\"pipeline\",\"case\":\"%s\",\"threads\":%d,"
           "\"records\":%llu,\"bytes\":%lld,\"seconds\":%.4f,"
           "\"records_per_s\":%.0f,\"mb_per_s\":%.1f",
           name, threads, (unsigned long long)records, (long long)bytes,
           secs, (double)records / secs, (double)bytes / secs / 1e6);
    if (base_secs > 0)
        printf(",\"vs_c_loop\":%.2f", secs / base_secs);
    printf("}\n");
    fflush(stdout);
}

int bench_pipeline(int argc, char **argv)
{
    const char *input = NULL, *master = "local[2]";
    int repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc)
            input = argv[++i];
        else if (!strcmp(argv[i], "--master") && i + 1 < argc)
            master = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: ember-bench pipeline [--input FILE] "
                            "[--master URL] [--repeat N]\n");
            return 2;
        }
    }
    char gen[4096];
    if (!input) {
        char self[2048];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        self[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(gen, sizeof gen, "/tmp/ember-bench-text-%ld.txt",
                 (long)getpid());
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "%s/gentext --bytes %d -o %s", self,
                 64 << 20, gen);
        if (system(cmd) != 0) {
            fprintf(stderr, "ember-bench: cannot run %s\n", cmd);
            return 1;
        }
        input = gen;
    }
    struct stat sb;
    if (stat(input, &sb) != 0) {
        perror(input);
        return 1;
    }
    /* ember-bench links the engine statically: name the build tree's
     * plugin directory (bench/../lib/ember/plugins) explicitly. */
    char here[2048], plugins[2100];
    ssize_t hl = readlink("/proc/self/exe", here, sizeof here - 1);
    here[hl > 0 ? hl : 0] = '\0';
    char *sl = strrchr(here, '/');
    if (sl)
        *sl = '\0';
    snprintf(plugins, sizeof plugins, "ember.plugins.path=%s/../lib/ember/"
             "plugins", here);
    const char *conf[] = {plugins, NULL};
    ember_error err = {0};
    ember_session *s = NULL;
    ember_session_opts o = {.master = master, .app_name = "bench",
                            .conf = conf};
    if (ember_session_open(&s, &o, &err) != EMBER_OK) {
        fprintf(stderr, "ember-bench: %s\n", err.msg);
        return 1;
    }
    int threads = (int)ember_default_parallelism(s);
    if (threads > 64)
        threads = 64;
    ember_rdd *lines = ember_text_file(s, input, (uint32_t)threads * 2, &err);
    ember_rdd *words =
        lines ? ember_flat_map(lines, (ember_fn){"std.split_words", NULL, 0},
                               &err)
              : NULL;
    if (!words) {
        fprintf(stderr, "ember-bench: %s\n", err.msg);
        ember_session_close(s);
        return 1;
    }
    double best_c1 = 1e9, best_cn = 1e9, best_e = 1e9, best_cwc = 1e9,
           best_ewc = 1e9;
    uint64_t n_c = 0, n_e = 0, wc_words = 0, wc_distinct = 0, e_distinct = 0;
    for (int r = 0; r < repeat; r++) {
        double t0 = now_s();
        n_c = c_words(input, sb.st_size, 1);
        double t1 = now_s();
        c_words(input, sb.st_size, threads);
        double t2 = now_s();
        if (ember_count(words, &n_e, &err) != EMBER_OK) {
            fprintf(stderr, "ember-bench: %s\n", err.msg);
            break;
        }
        double t3 = now_s();
        wc_distinct = c_wordcount(input, &wc_words);
        double t4 = now_s();
        ember_records counts = {0};
        if (ember_count_by_value(words, &counts, &err) != EMBER_OK) {
            fprintf(stderr, "ember-bench: %s\n", err.msg);
            break;
        }
        double t5 = now_s();
        e_distinct = counts.count;
        ember_records_free(&counts);
        best_c1 = t1 - t0 < best_c1 ? t1 - t0 : best_c1;
        best_cn = t2 - t1 < best_cn ? t2 - t1 : best_cn;
        best_e = t3 - t2 < best_e ? t3 - t2 : best_e;
        best_cwc = t4 - t3 < best_cwc ? t4 - t3 : best_cwc;
        best_ewc = t5 - t4 < best_ewc ? t5 - t4 : best_ewc;
    }
    report("c_loop_split_count", 1, n_c, sb.st_size, best_c1, 0);
    report("c_loop_split_count", threads, n_c, sb.st_size, best_cn, 0);
    report("ember_text_flat_map_count", threads, n_e, sb.st_size, best_e,
           best_cn);
    report("c_loop_word_count_hash", 1, wc_words, sb.st_size, best_cwc, 0);
    report("ember_count_by_value", threads, n_e, sb.st_size, best_ewc,
           best_cwc);
    if (n_e != n_c || e_distinct != wc_distinct)
        fprintf(stderr, "ember-bench: MISMATCH: words %llu vs %llu, "
                "distinct %llu vs %llu\n", (unsigned long long)n_e,
                (unsigned long long)n_c, (unsigned long long)e_distinct,
                (unsigned long long)wc_distinct);
    ember_session_close(s);
    if (input == gen)
        unlink(gen);
    return n_e == n_c ? 0 : 1;
}
