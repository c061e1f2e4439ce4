/*
 * pagerank — PageRank over a link graph, by iterated joins.
 *
 *   pagerank [--master URL] [--iterations N] [--no-cache]
 *            [--conf key=value]... EDGES
 *
 * EDGES holds one directed edge per line, "src<TAB>dst". As Spark's
 * examples/src/main/python/pagerank.py: the distinct edges are grouped by
 * source (links); every vertex with out-links starts at rank 1.0; each
 * iteration a vertex's rank becomes 0.85 x (the sum of rank / out-degree
 * over its in-links) + 0.15 / N, N = the number of vertices with out-links
 * (Spark's example adds 0.15 instead). Prints one "vertex<TAB>rank" line
 * per vertex of the last iteration's ranks (any order): vertices nobody
 * links to drop out after the first iteration, as in Spark's example.
 *
 * The pipeline: text_file -> flat_map(pagerank.parse_edge) -> distinct ->
 * group_by_key (links, hash-partitioned); ranks = map_values(links,
 * pagerank.one); N iterations of join(links, ranks) ->
 * flat_map(pagerank.contribs) -> reduce_by_key(std.sum) ->
 * map_values(pagerank.damp). links, ranks and the sums share one hash
 * partitioner, so each join reads links without a shuffle.
 *
 * links is read by every iteration's job, so it is cached (ember_cache,
 * MEMORY_ONLY): the first job (the count of N) keeps its partitions in the
 * executors and the iterations read them from there. --no-cache leaves it
 * uncached: each job then rebuilds links from the group_by_key shuffle's
 * output (which the kernel keeps). The ranks printed are the same either
 * way.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>
#include <ember/record.h>

#ifndef PAGERANK_PLUGIN
#error "PAGERANK_PLUGIN (the path of the pagerank plugin) must be defined"
#endif

static int usage(void)
{
    fprintf(stderr,
            "usage: pagerank [--master URL] [--iterations N] [--no-cache] "
            "[--conf key=value]... EDGES\n"
            "Ranks the vertices of EDGES (lines 'src<TAB>dst'); prints "
            "'vertex<TAB>rank'\nlines. --iterations defaults to 10. "
            "The links dataset is cached in the\nexecutors' memory "
            "(MEMORY_ONLY) unless --no-cache is given; the ranks are\n"
            "the same either way.\n");
    return 2;
}

/* Prints the (vertex, rank) records of res; -1 on an unexpected record. */
static int print_ranks(const ember_records *res)
{
    ember_batch b = {res->data, res->len, res->count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    char *name = NULL;
    size_t cap = 0;
    int rc = 0;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_rec_cursor rc2 = ember_rec_cursor_init(rec, len);
        ember_value v, r;
        if (ember_rec_next(&rc2, &v) != EMBER_OK ||
            ember_rec_next(&rc2, &r) != EMBER_OK ||
            v.type != EMBER_TYPE_STRING || r.type != EMBER_TYPE_DOUBLE) {
            fprintf(stderr, "pagerank: unexpected result record\n");
            rc = -1;
            break;
        }
        if (v.u.str.len > cap) {
            char *n = realloc(name, v.u.str.len);
            if (!n) {
                fprintf(stderr, "pagerank: out of memory\n");
                rc = -1;
                break;
            }
            name = n;
            cap = v.u.str.len;
        }
        ember_rec_string_copy(&v, name, cap);
        fwrite(name, 1, v.u.str.len, stdout);
        printf("\t%.15g\n", r.u.f64);
    }
    free(name);
    return rc;
}

int main(int argc, char **argv)
{
    const char *master = NULL, *edges = NULL;
    const char *flags[64];
    size_t nflags = 0;
    long iterations = 10;
    int cache = 1;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--master") == 0 && i + 1 < argc) {
            master = argv[++i];
        } else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            iterations = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || iterations < 0 ||
                iterations > 1000000) {
                fprintf(stderr, "pagerank: --iterations wants a number from "
                                "0 to 1000000, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--no-cache") == 0) {
            cache = 0;
        } else if (strcmp(argv[i], "--conf") == 0 && i + 1 < argc &&
                   nflags < 63) {
            flags[nflags++] = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            return usage() - 2;
        } else if (argv[i][0] == '-' || edges) {
            return usage();
        } else {
            edges = argv[i];
        }
    }
    if (!edges)
        return usage();
    flags[nflags] = NULL;

    const char *plugins[] = {PAGERANK_PLUGIN, NULL};
    ember_error err = {0};
    ember_session *s = NULL;
    ember_session_opts opts = {.master = master,
                               .app_name = "pagerank",
                               .conf_flags = flags,
                               .plugins = plugins};
    if (ember_session_open(&s, &opts, &err) != EMBER_OK) {
        fprintf(stderr, "pagerank: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    ember_records res = {0};
    uint64_t n = 0;

    ember_rdd *lines = ember_text_file(s, edges, 0, &err);
    ember_rdd *pairs =
        lines ? ember_flat_map(lines, (ember_fn){"pagerank.parse_edge", NULL, 0},
                               &err)
              : NULL;
    ember_rdd *distinct = pairs ? ember_distinct(pairs, 0, &err) : NULL;
    ember_partitioner part = {.kind = EMBER_PART_HASH};
    if (distinct)
        part.partitions = ember_rdd_partitions(distinct);
    ember_rdd *links = distinct ? ember_group_by_key(distinct, &part, &err)
                                : NULL;
    if (links)
        ember_rdd_set_name(links, "links");
    /* Cached before its first job, so that the count below keeps it for
     * every iteration's join. */
    if (links && cache && ember_cache(links, &err) != EMBER_OK)
        links = NULL;
    /* N: the number of vertices with out-links */
    if (!links || ember_count(links, &n, &err) != EMBER_OK) {
        fprintf(stderr, "pagerank: %s\n", err.msg);
        goto out;
    }
    uint8_t argbuf[9];
    ember_buf base = ember_buf_fixed(argbuf, sizeof argbuf);
    ember_rec_put_double(&base, n ? 0.15 / (double)n : 0.0);
    ember_fn damp = {"pagerank.damp", base.data, base.len};

    ember_rdd *ranks =
        ember_map_values(links, (ember_fn){"pagerank.one", NULL, 0}, &err);
    for (long i = 0; ranks && i < iterations; i++) {
        ember_rdd *joined = ember_join(links, ranks, &part, &err);
        ember_rdd *contribs =
            joined ? ember_flat_map(joined,
                                    (ember_fn){"pagerank.contribs", NULL, 0},
                                    &err)
                   : NULL;
        ember_rdd *sums =
            contribs ? ember_reduce_by_key(contribs,
                                           (ember_fn){"std.sum", NULL, 0},
                                           &part, &err)
                     : NULL;
        ranks = sums ? ember_map_values(sums, damp, &err) : NULL;
    }
    if (!ranks || ember_collect(ranks, &res, &err) != EMBER_OK) {
        fprintf(stderr, "pagerank: %s\n", err.msg);
        goto out;
    }
    if (print_ranks(&res) != 0)
        goto out;
    rc = 0;
out:
    ember_records_free(&res);
    ember_session_close(s);
    return rc;
}
