/*
 * ember-bench — ember's benchmarks, one subcommand each, one JSON object
 * per measurement on its own line so runs can be compared.
 *
 *   ember-bench scheduler [--tasks N] [--slots S] [--jobs J]
 *   ember-bench pipeline [--input FILE] [--master URL] [--repeat N]
 *
 * With no options, scheduler runs the matrix 1 / 1,000 / 100,000 tasks by
 * 1 / 100 / 10,000 slots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ember-bench scheduler [--tasks N] [--slots S] "
               "[--jobs J]\n"
               "       ember-bench pipeline [--input FILE] [--master URL] "
               "[--repeat N]\n"
               "  Prints one JSON object per measurement.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "scheduler"))
        return bench_scheduler(argc - 1, argv + 1);
    if (!strcmp(argv[1], "pipeline"))
        return bench_pipeline(argc - 1, argv + 1);
    fprintf(stderr, "ember-bench: unknown benchmark '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
