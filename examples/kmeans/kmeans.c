/*
 * kmeans — K-Means clustering by Lloyd's algorithm.
 *
 *   kmeans [--master URL] [--k K] [--iterations N] [--conf key=value]...
 *          POINTS
 *
 * POINTS holds one point per line, space-separated decimals (every line
 * the same number of them; blank lines are skipped). The first K points
 * are the initial centres. Each iteration maps every point to
 * (index of the closest centre, (point, 1)), sums those per centre with
 * reduce_by_key and moves each centre to the mean of its points (a centre
 * no point is closest to stays where it is). It stops after N iterations
 * (default 10), or earlier when no centre moved. Prints the K centres, one
 * line each, coordinates separated by spaces, in centre order.
 *
 * The current centres travel to the executors as the argument blob of
 * kmeans.closest, rebuilt each iteration (broadcast variables come with
 * persistence). The functions are the example's plugin, kmeans_fns.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>
#include <ember/record.h>

#ifndef KMEANS_PLUGIN
#error "KMEANS_PLUGIN (the path of the kmeans plugin) must be defined"
#endif

static int usage(void)
{
    fprintf(stderr,
            "usage: kmeans [--master URL] [--k K] [--iterations N] "
            "[--conf key=value]... POINTS\n"
            "Clusters the points of POINTS (lines of space-separated "
            "decimals) into K\nclusters (default 10), starting from the "
            "first K points, for N iterations\n(default 10); prints the "
            "centres.\n");
    return 2;
}

/* Parses a whole decimal in [lo, hi] into *out; -1 otherwise. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/*
 * Reads the first k points of res (records of doubles) into c (k x *dims,
 * malloc'd into *c). -1 with a message when they differ in dimension.
 */
static int initial_centres(const ember_records *res, long k, size_t *dims,
                           double **c)
{
    ember_batch b = {res->data, res->len, res->count};
    ember_batch_cursor bc = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    *dims = 0;
    *c = NULL;
    for (long i = 0; i < k; i++) {
        if (ember_batch_next(&bc, &rec, &len) != EMBER_OK)
            return -1;
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        ember_value v;
        size_t d = 0;
        while (ember_rec_next(&rc, &v) == EMBER_OK)
            d++;
        if (i == 0) {
            *dims = d;
            *c = malloc((size_t)k * d * sizeof **c);
            if (!*c) {
                fprintf(stderr, "kmeans: out of memory\n");
                return -1;
            }
        } else if (d != *dims) {
            fprintf(stderr, "kmeans: point %ld has %zu coordinates, the "
                            "first has %zu\n", i + 1, d, *dims);
            return -1;
        }
        rc = ember_rec_cursor_init(rec, len);
        for (size_t j = 0; j < d; j++) {
            ember_rec_next(&rc, &v);
            (*c)[(size_t)i * d + j] = v.u.f64;
        }
    }
    return 0;
}

/*
 * Moves each centre to the mean of its points from the (i, ((s..), n))
 * records of res. Sets *moved when a centre changed; -1 on an unexpected
 * record.
 */
static int update_centres(const ember_records *res, long k, size_t dims,
                          double *c, int *moved)
{
    ember_batch b = {res->data, res->len, res->count};
    ember_batch_cursor bc = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    *moved = 0;
    while (ember_batch_next(&bc, &rec, &len) == EMBER_OK) {
        ember_rec_cursor rc = ember_rec_cursor_init(rec, len);
        ember_value idx, val, vec, n, x;
        if (ember_rec_next(&rc, &idx) != EMBER_OK ||
            ember_rec_next(&rc, &val) != EMBER_OK ||
            idx.type != EMBER_TYPE_INT || idx.u.i64 < 0 || idx.u.i64 >= k ||
            val.type != EMBER_TYPE_TUPLE)
            return -1;
        ember_rec_cursor vc = ember_rec_tuple_cursor(&val);
        if (ember_rec_next(&vc, &vec) != EMBER_OK ||
            ember_rec_next(&vc, &n) != EMBER_OK ||
            vec.type != EMBER_TYPE_TUPLE || n.type != EMBER_TYPE_INT ||
            n.u.i64 <= 0)
            return -1;
        ember_rec_cursor xc = ember_rec_tuple_cursor(&vec);
        double *ci = c + (size_t)idx.u.i64 * dims;
        for (size_t j = 0; j < dims; j++) {
            if (ember_rec_next(&xc, &x) != EMBER_OK ||
                x.type != EMBER_TYPE_DOUBLE)
                return -1;
            double mean = x.u.f64 / (double)n.u.i64;
            if (mean != ci[j])
                *moved = 1;
            ci[j] = mean;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *master = NULL, *points_path = NULL;
    const char *flags[64];
    size_t nflags = 0;
    long k = 10, iterations = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--master") == 0 && i + 1 < argc) {
            master = argv[++i];
        } else if (strcmp(argv[i], "--k") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 1, 100000, &k) != 0) {
                fprintf(stderr, "kmeans: --k wants a number from 1 to "
                                "100000, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            if (parse_long(argv[++i], 0, 1000000, &iterations) != 0) {
                fprintf(stderr, "kmeans: --iterations wants a number from 0 "
                                "to 1000000, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--conf") == 0 && i + 1 < argc &&
                   nflags < 63) {
            flags[nflags++] = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            return usage() - 2;
        } else if (argv[i][0] == '-' || points_path) {
            return usage();
        } else {
            points_path = argv[i];
        }
    }
    if (!points_path)
        return usage();
    flags[nflags] = NULL;

    const char *plugins[] = {KMEANS_PLUGIN, NULL};
    ember_error err = {0};
    ember_session *s = NULL;
    ember_session_opts opts = {.master = master,
                               .app_name = "kmeans",
                               .conf_flags = flags,
                               .plugins = plugins};
    if (ember_session_open(&s, &opts, &err) != EMBER_OK) {
        fprintf(stderr, "kmeans: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    ember_records first = {0}, sums = {0};
    ember_buf arg = ember_buf_heap();
    double *c = NULL;
    size_t dims = 0;

    ember_rdd *lines = ember_text_file(s, points_path, 0, &err);
    ember_rdd *points =
        lines ? ember_flat_map(lines, (ember_fn){"kmeans.parse", NULL, 0}, &err)
              : NULL;
    if (points)
        ember_rdd_set_name(points, "points");
    if (!points || ember_take(points, (uint64_t)k, &first, &err) != EMBER_OK) {
        fprintf(stderr, "kmeans: %s\n", err.msg);
        goto out;
    }
    if (first.count < (uint64_t)k) {
        fprintf(stderr, "kmeans: %s has %" PRIu64 " points, fewer than "
                        "K = %ld\n", points_path, first.count, k);
        goto out;
    }
    if (initial_centres(&first, k, &dims, &c) != 0)
        goto out;

    for (long it = 0; it < iterations; it++) {
        /* the centres as kmeans.closest's argument: (D, c[0][0], ...) */
        arg.len = 0;
        ember_status st = ember_rec_put_int(&arg, (int64_t)dims);
        for (size_t j = 0; j < (size_t)k * dims && st == EMBER_OK; j++)
            st = ember_rec_put_double(&arg, c[j]);
        if (st != EMBER_OK) {
            fprintf(stderr, "kmeans: out of memory\n");
            goto out;
        }
        ember_rdd *closest = ember_map(
            points, (ember_fn){"kmeans.closest", arg.data, arg.len}, &err);
        ember_rdd *sum = closest ? ember_reduce_by_key(
                                       closest, (ember_fn){"kmeans.add", NULL, 0},
                                       NULL, &err)
                                 : NULL;
        ember_records_free(&sums);
        if (!sum || ember_collect(sum, &sums, &err) != EMBER_OK) {
            fprintf(stderr, "kmeans: %s\n", err.msg);
            goto out;
        }
        int moved;
        if (update_centres(&sums, k, dims, c, &moved) != 0) {
            fprintf(stderr, "kmeans: unexpected result record\n");
            goto out;
        }
        if (!moved)
            break;
    }
    for (long i = 0; i < k; i++)
        for (size_t j = 0; j < dims; j++)
            printf("%.6f%c", c[(size_t)i * dims + j],
                   j + 1 < dims ? ' ' : '\n');
    rc = 0;
out:
    free(c);
    ember_buf_release(&arg);
    ember_records_free(&first);
    ember_records_free(&sums);
    ember_session_close(s);
    return rc;
}
