/*
 * cmd_plan.c — `ember plan check` and `ember plan describe`: validate a
 * plan file (docs/plan-format.md) and print a dataset's lineage the way
 * Spark's toDebugString does. See docs/cli.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ember/kernel/kernel.h"

static const char plan_usage[] =
    "usage: ember plan check PLAN.json\n"
    "       ember plan describe PLAN.json DATASET\n"
    "\n"
    "  check     validate the plan (structure, operations, dependencies,\n"
    "            partition counts); exit 1 with the first error\n"
    "  describe  print DATASET's lineage: one line per dataset, partition\n"
    "            counts where stages begin, indentation at shuffles\n";

/* Plans bigger than this are refused before reading (the decoder's own
 * limit is 1 GiB; a CLI has no business with more). */
#define PLAN_FILE_MAX ((size_t)1 << 30)

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > PLAN_FILE_MAX + 1) {
                cli_error("%s: larger than 1 GiB", path);
                goto fail;
            }
            char *g = realloc(buf, cap);
            if (!g) {
                cli_error("out of memory reading %s", path);
                goto fail;
            }
            buf = g;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (ferror(f)) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

static int parse_id(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || *s == '-')
        return -1;
    *out = v;
    return 0;
}

int cli_plan(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(plan_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    int check = !strcmp(argv[1], "check");
    if (!check && strcmp(argv[1], "describe")) {
        cli_error("unknown plan command '%s' (check, describe)", argv[1]);
        return CLI_USAGE;
    }
    uint64_t dataset = 0;
    if (check ? argc != 3 : argc != 4) {
        cli_error(check ? "plan check takes exactly one PLAN.json"
                        : "plan describe takes PLAN.json and a DATASET id");
        return CLI_USAGE;
    }
    if (!check && parse_id(argv[3], &dataset) != 0) {
        cli_error("plan describe: '%s' is not a dataset id", argv[3]);
        return CLI_USAGE;
    }
    size_t len = 0;
    char *plan = cli_read_file(argv[2], &len);
    if (!plan)
        return CLI_FAILED;
    ember_error err = {0};
    int rc = CLI_OK;
    if (check) {
        uint32_t n = 0;
        if (em_plan_check(plan, len, NULL, &n, &err) != EMBER_OK) {
            cli_error("%s: %s", argv[2], err.msg);
            rc = CLI_FAILED;
        } else {
            printf("%s: valid, %" PRIu32 " datasets\n", argv[2], n);
        }
    } else {
        char *text = NULL;
        if (em_plan_describe(plan, len, dataset, &text, &err) != EMBER_OK) {
            cli_error("%s: %s", argv[2], err.msg);
            rc = CLI_FAILED;
        } else {
            printf("%s\n", text);
        }
        free(text);
    }
    free(plan);
    return rc;
}
