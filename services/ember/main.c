/* ember — the command-line tool. See docs/cli.md. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ember/abi.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "0.1.0"
#endif

static const char usage[] =
    "usage: ember <command> [options]\n"
    "\n"
    "commands:\n"
    "  plugin inspect FILE.so   print a plugin's metadata and components as "
    "JSON\n"
    "  plugin list              show the plugins the plugin directories "
    "hold\n"
    "  plan check PLAN.json     validate a plan file\n"
    "  plan describe PLAN.json DATASET\n"
    "                           print a dataset's lineage (toDebugString)\n"
    "  run [options] PLAN.json  run a plan file's actions and print their\n"
    "                           results as JSON lines\n"
    "  submit --master ember://HOST:PORT [--pool P] PLAN.json\n"
    "                           run a plan file's actions on emberd\n"
    "  status --master ember://HOST:PORT JOB\n"
    "                           print a job's state on emberd as JSON\n"
    "  list --master ember://HOST:PORT [--running]\n"
    "                           print emberd's jobs as JSON lines\n"
    "  kill --master ember://HOST:PORT JOB\n"
    "                           cancel a running job on emberd\n"
    "  version                  print the ember and ABI versions\n"
    "\n"
    "Run 'ember <command> --help' for a command's options.\n";

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ember: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("ember %s (plugin ABI %d.%d)\n", EMBER_VERSION,
               EMBER_ABI_MAJOR, EMBER_ABI_MINOR);
        return CLI_OK;
    }
    if (!strcmp(cmd, "plugin"))
        return cli_plugin(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan"))
        return cli_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "submit"))
        return cli_submit(argc - 1, argv + 1);
    if (!strcmp(cmd, "status") || !strcmp(cmd, "list") ||
        !strcmp(cmd, "kill"))
        return cli_service(argc - 1, argv + 1);
    cli_error("unknown command '%s' (try 'ember --help')", cmd);
    return CLI_USAGE;
}
