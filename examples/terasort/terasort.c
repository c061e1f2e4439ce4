/*
 * terasort — sort a file of 100-byte records by their first 10 bytes.
 *
 *   terasort [--master URL] [--conf key=value]... INPUT OUTPUT_DIR
 *
 * writes OUTPUT_DIR/part-00000, part-00001, ... whose concatenation in
 * part order is INPUT sorted by key bytes (unsigned; records with equal
 * keys in any order), then OUTPUT_DIR/_SUCCESS. Records are opaque: any
 * byte may appear in a key or in the rest. terasort-check validates the
 * output.
 *
 * The pipeline: source(terasort.records: (key10, rest90) pairs) ->
 * repartition_and_sort_within_partitions (a range partitioner whose
 * bounds the driver picks from keys it samples in the input itself, as
 * Hadoop's TeraSort does: no sampling job over the whole input) ->
 * save(terasort.out: each partition's attempt file, renamed into place by
 * the attempt the kernel's commit arbiter chose). The source and the sink
 * are the example's plugin, terasort_fns.c.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ember/ember.h>
#include <ember/record.h>

#ifndef TERASORT_PLUGIN
#error "TERASORT_PLUGIN (the path of the terasort plugin) must be defined"
#endif

#define RECORD 100
#define KEY 10
/* The sample: SAMPLE_PLACES runs of SAMPLE_RUN consecutive records, evenly
 * spaced through the input (Hadoop's TeraSort reads 100,000 keys from 10
 * splits). */
#define SAMPLE_PLACES 10
#define SAMPLE_RUN 10000

static int usage(void)
{
    fprintf(stderr,
            "usage: terasort [--master URL] [--conf key=value]... INPUT "
            "OUTPUT_DIR\n"
            "Sorts INPUT, a file of 100-byte records, by their first 10 "
            "bytes into\nOUTPUT_DIR/part-NNNNN files (OUTPUT_DIR must not "
            "exist).\n");
    return 2;
}

/* Removes dir's entries and dir itself (one level: _temporary is flat). */
static void remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* Creates an empty file (or fails with a message). */
static int touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "terasort: cannot create %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, KEY);
}

/*
 * Range bounds for `parts` partitions from keys sampled in the input
 * (see SAMPLE_PLACES): the keys at the quantiles of the sorted sample,
 * duplicates dropped, appended to bounds as encoded byte-string keys in
 * ascending order. *nbounds is their number (parts - 1 at most). -1 with
 * a message on a read error.
 */
static int sample_bounds(const char *input, int64_t records, uint32_t parts,
                         ember_buf *bounds, uint32_t *nbounds)
{
    *nbounds = 0;
    if (parts <= 1 || records == 0)
        return 0;
    int64_t run = records < SAMPLE_PLACES * SAMPLE_RUN
                      ? (records + SAMPLE_PLACES - 1) / SAMPLE_PLACES
                      : SAMPLE_RUN;
    uint8_t *keys = malloc((size_t)(SAMPLE_PLACES * run) * KEY);
    uint8_t *buf = malloc((size_t)run * RECORD);
    FILE *f = fopen(input, "rb");
    size_t n = 0;
    int rc = -1;
    if (!keys || !buf || !f) {
        fprintf(stderr, "terasort: cannot sample %s: %s\n", input,
                f ? "out of memory" : strerror(errno));
        goto out;
    }
    for (int i = 0; i < SAMPLE_PLACES; i++) {
        int64_t first = records * i / SAMPLE_PLACES;
        int64_t take = records - first < run ? records - first : run;
        if (fseeko(f, (off_t)(first * RECORD), SEEK_SET) != 0 ||
            fread(buf, RECORD, (size_t)take, f) != (size_t)take) {
            fprintf(stderr, "terasort: cannot read %s to sample it\n",
                    input);
            goto out;
        }
        for (int64_t r = 0; r < take; r++)
            memcpy(keys + (n++) * KEY, buf + r * RECORD, KEY);
    }
    qsort(keys, n, KEY, key_cmp);
    const uint8_t *prev = NULL;
    for (uint32_t b = 1; b < parts; b++) {
        const uint8_t *k = keys + (size_t)((uint64_t)n * b / parts) * KEY;
        if (prev && memcmp(k, prev, KEY) <= 0)
            continue; /* a repeated key bounds one partition only */
        uint8_t enc[2 * KEY + 2];
        ember_buf e = ember_buf_fixed(enc, sizeof enc);
        if (ember_rec_put_bytes(&e, k, KEY) != EMBER_OK ||
            ember_batch_append(bounds, e.data, e.len) != EMBER_OK) {
            fprintf(stderr, "terasort: out of memory\n");
            goto out;
        }
        (*nbounds)++;
        prev = k;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    free(buf);
    free(keys);
    return rc;
}

/* Checks that every partition's file is there (the sink commits one per
 * partition, empty ones too). */
static int check_parts(const char *dir, uint32_t parts)
{
    char path[4200];
    struct stat sb;
    for (uint32_t p = 0; p < parts; p++) {
        snprintf(path, sizeof path, "%s/part-%05" PRIu32, dir, p);
        if (stat(path, &sb) != 0) {
            fprintf(stderr, "terasort: %s is missing after the job\n", path);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *master = NULL, *input = NULL, *output = NULL;
    const char *flags[64];
    size_t nflags = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--master") == 0 && i + 1 < argc)
            master = argv[++i];
        else if (strcmp(argv[i], "--conf") == 0 && i + 1 < argc && nflags < 63)
            flags[nflags++] = argv[++i];
        else if (strcmp(argv[i], "--help") == 0)
            return usage() - 2;
        else if (argv[i][0] == '-' || output)
            return usage();
        else if (!input)
            input = argv[i];
        else
            output = argv[i];
    }
    if (!output)
        return usage();
    flags[nflags] = NULL;

    struct stat sb;
    if (stat(input, &sb) != 0) {
        fprintf(stderr, "terasort: %s: %s\n", input, strerror(errno));
        return 1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "terasort: %s: not a regular file\n", input);
        return 1;
    }
    int64_t size = (int64_t)sb.st_size;
    if (size % RECORD != 0) {
        fprintf(stderr, "terasort: %s is %" PRId64 " bytes, not a whole "
                        "number of %d-byte records\n", input, size, RECORD);
        return 1;
    }
    if (mkdir(output, 0777) != 0) {
        fprintf(stderr, "terasort: cannot create %s: %s\n", output,
                errno == EEXIST ? "it already exists" : strerror(errno));
        return 1;
    }

    const char *plugins[] = {TERASORT_PLUGIN, NULL};
    ember_error err = {0};
    ember_session *s = NULL;
    ember_session_opts opts = {.master = master,
                               .app_name = "terasort",
                               .conf_flags = flags,
                               .plugins = plugins};
    if (ember_session_open(&s, &opts, &err) != EMBER_OK) {
        fprintf(stderr, "terasort: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s/_temporary", output);
    uint8_t argbuf[4200], wargbuf[4200];
    ember_buf rarg = ember_buf_fixed(argbuf, sizeof argbuf);
    ember_buf warg = ember_buf_fixed(wargbuf, sizeof wargbuf);
    if (ember_rec_put_string(&rarg, input, strlen(input)) != EMBER_OK ||
        ember_rec_put_string(&warg, output, strlen(output)) != EMBER_OK) {
        fprintf(stderr, "terasort: path too long\n");
        goto out;
    }
    /* at least one input split per slot */
    uint32_t par = ember_default_parallelism(s);
    ember_rdd *recs = ember_source(s, "terasort.records", rarg.data,
                                   rarg.len, par, &err);
    ember_buf bounds = ember_buf_heap();
    uint32_t nbounds = 0;
    if (recs && sample_bounds(input, size / RECORD, ember_rdd_partitions(recs),
                              &bounds, &nbounds) != 0) {
        ember_buf_release(&bounds);
        goto out;
    }
    ember_partitioner range = {EMBER_PART_RANGE, nbounds + 1, {0},
                               bounds.data, bounds.len, 0};
    ember_rdd *sorted =
        recs ? ember_repartition_and_sort_within_partitions(recs, &range, 1,
                                                            &err)
             : NULL;
    ember_buf_release(&bounds);
    if (!sorted ||
        ember_save(sorted, "terasort.out", warg.data, warg.len, &err) !=
            EMBER_OK) {
        fprintf(stderr, "terasort: %s\n", err.msg);
        goto out;
    }
    uint32_t parts = ember_rdd_partitions(sorted);
    if (check_parts(output, parts) != 0)
        goto out;
    char done[4200];
    snprintf(done, sizeof done, "%s/_SUCCESS", output);
    if (touch(done) != 0)
        goto out;
    printf("terasort: %" PRId64 " records sorted into %" PRIu32
           " part files in %s\n",
           size / RECORD, parts, output);
    rc = 0;
out:
    ember_session_close(s);
    remove_flat_dir(tmpdir);
    return rc;
}
