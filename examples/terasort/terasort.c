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
 * The pipeline: range(0, splits) -> flat_map(terasort.read: split i ->
 * its (key10, rest90) records) -> sort_by_key (range partitioning by
 * sampling, SEMANTICS S6) -> map_partitions_with_index(terasort.write:
 * each partition into an attempt file) -> collect, then the driver commits
 * the attempts it collected results from (renames their files into place).
 * The functions are the example's plugin, terasort_fns.c.
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
/* The largest input split: the read function holds one split's records at
 * once, so this bounds a task's memory. */
#define MAX_SPLIT ((int64_t)32 * 1024 * 1024 / RECORD * RECORD)

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

/*
 * Job commit: reads the (partition, attempt, records) results, renames
 * each partition's attempt file to part-NNNNN (an empty file for a
 * partition that had no records) and checks that every input record was
 * written. Returns 0 or -1 with a message printed.
 */
static int commit(const char *dir, uint32_t parts, const ember_records *res,
                  uint64_t want)
{
    int rc = -1;
    int64_t *attempt = malloc((parts ? parts : 1) * sizeof *attempt);
    if (!attempt) {
        fprintf(stderr, "terasort: out of memory\n");
        return -1;
    }
    for (uint32_t p = 0; p < parts; p++)
        attempt[p] = -1;
    uint64_t total = 0;
    ember_batch b = {res->data, res->len, res->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_rec_cursor rc2 = ember_rec_cursor_init(rec, len);
        ember_value p, a, n;
        if (ember_rec_next(&rc2, &p) != EMBER_OK ||
            ember_rec_next(&rc2, &a) != EMBER_OK ||
            ember_rec_next(&rc2, &n) != EMBER_OK || p.type != EMBER_TYPE_INT ||
            a.type != EMBER_TYPE_INT || n.type != EMBER_TYPE_INT ||
            p.u.i64 < 0 || p.u.i64 >= parts || a.u.i64 < 0 || n.u.i64 < 0 ||
            (attempt[p.u.i64] >= 0 && attempt[p.u.i64] != a.u.i64)) {
            fprintf(stderr, "terasort: unexpected result from "
                            "terasort.write\n");
            goto out;
        }
        attempt[p.u.i64] = a.u.i64;
        total += (uint64_t)n.u.i64;
    }
    if (total != want) {
        fprintf(stderr, "terasort: wrote %" PRIu64 " records, the input has "
                        "%" PRIu64 "\n", total, want);
        goto out;
    }
    char from[4096], to[4096];
    for (uint32_t p = 0; p < parts; p++) {
        snprintf(to, sizeof to, "%s/part-%05" PRIu32, dir, p);
        if (attempt[p] < 0) {
            if (touch(to) != 0)
                goto out;
            continue;
        }
        snprintf(from, sizeof from, "%s/_temporary/part-%05" PRIu32
                 ".attempt-%" PRId64, dir, p, attempt[p]);
        if (rename(from, to) != 0) {
            fprintf(stderr, "terasort: cannot move %s to %s: %s\n", from, to,
                    strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    free(attempt);
    return rc;
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
    ember_records res = {0};
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s/_temporary", output);

    /* One split per slot at least, none above MAX_SPLIT, all whole records. */
    int64_t par = ember_default_parallelism(s);
    int64_t split = (size + par - 1) / (par > 0 ? par : 1);
    split = (split + RECORD - 1) / RECORD * RECORD;
    if (split > MAX_SPLIT)
        split = MAX_SPLIT;
    if (split < RECORD)
        split = RECORD;
    int64_t splits = (size + split - 1) / split;

    uint8_t argbuf[4200];
    ember_buf rarg = ember_buf_fixed(argbuf, sizeof argbuf);
    if (ember_rec_put_string(&rarg, input, strlen(input)) != EMBER_OK ||
        ember_rec_put_int(&rarg, split) != EMBER_OK ||
        ember_rec_put_int(&rarg, size) != EMBER_OK) {
        fprintf(stderr, "terasort: input path too long\n");
        goto out;
    }
    uint8_t wargbuf[4200];
    ember_buf warg = ember_buf_fixed(wargbuf, sizeof wargbuf);
    if (ember_rec_put_string(&warg, output, strlen(output)) != EMBER_OK) {
        fprintf(stderr, "terasort: output path too long\n");
        goto out;
    }

    ember_rdd *ids = ember_range(s, 0, splits, 1,
                                 splits > 0 ? (uint32_t)splits : 1, &err);
    ember_rdd *recs =
        ids ? ember_flat_map(ids, (ember_fn){"terasort.read", rarg.data,
                                             rarg.len}, &err)
            : NULL;
    ember_rdd *sorted = recs ? ember_sort_by_key(recs, 1, 0, &err) : NULL;
    ember_rdd *written =
        sorted ? ember_map_partitions_with_index(
                     sorted, (ember_fn){"terasort.write", warg.data, warg.len},
                     0, &err)
               : NULL;
    if (!written || ember_collect(written, &res, &err) != EMBER_OK) {
        fprintf(stderr, "terasort: %s\n", err.msg);
        goto out;
    }
    uint32_t parts = ember_rdd_partitions(sorted);
    if (commit(output, parts, &res, (uint64_t)(size / RECORD)) != 0)
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
    ember_records_free(&res);
    ember_session_close(s);
    remove_flat_dir(tmpdir);
    return rc;
}
