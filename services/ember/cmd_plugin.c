/* `ember plugin inspect` and `ember plugin list`. */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ember/kernel/describe.h"
#include "ember/kernel/host.h"
#include "ember/kernel/registry.h"

static const char inspect_usage[] =
    "usage: ember plugin inspect [--compact] FILE.so\n"
    "\n"
    "Loads FILE.so as the host would (every ABI check, then the plugin's\n"
    "init) and prints its metadata and components as JSON. Exits 1 with the\n"
    "reason when the file is not a plugin this host accepts.\n"
    "\n"
    "  --compact   one line of JSON instead of indented output\n";

static const char list_usage[] =
    "usage: ember plugin list [--plugin-dir DIR]... [--plugin FILE]... "
    "[--json]\n"
    "\n"
    "Loads every *.so in the plugin directories, and every FILE named, and\n"
    "shows each plugin with its components, and each refused file with the\n"
    "reason. The directories are the --plugin-dir options; without any\n"
    "(and without --plugin),\n"
    "those in EMBER_PLUGIN_PATH (separated by ':'); without it, the\n"
    "directory installed with ember.\n"
    "\n"
    "  --json   one JSON object {\"plugins\": [...], \"refused\": [...]}\n";

/* Loads and prints in this process; the child side of inspect. */
static int inspect_here(const char *file, int compact)
{
    em_plugin *p;
    ember_error err;
    if (em_plugin_open(&p, file, em_host_api(), &err) != EMBER_OK) {
        cli_error("%s", err.msg);
        return CLI_FAILED;
    }
    char *json;
    int rc = CLI_OK;
    if (em_plugin_describe_json(p, compact ? 0 : 2, &json) != EMBER_OK) {
        cli_error("%s: out of memory describing the plugin", file);
        rc = CLI_FAILED;
    } else {
        puts(json);
        free(json);
    }
    em_plugin_close(p);
    return rc;
}

/*
 * A plugin's constructors and init run inside the loading process; if they
 * crash, inspect should say so rather than die. So the load happens in a
 * child, and a child killed by a signal becomes an ordinary error.
 */
static int inspect(const char *file, int compact)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return inspect_here(file, compact);
    if (pid == 0) {
        int rc = inspect_here(file, compact);
        fflush(NULL);
        _exit(rc);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFSIGNALED(status)) {
        cli_error("%s: the plugin crashed while loading (%s)", file,
                  strsignal(WTERMSIG(status)));
        return CLI_FAILED;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : CLI_FAILED;
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"compact", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int compact = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ch", opts, NULL)) != -1) {
        if (c == 'c') {
            compact = 1;
        } else if (c == 'h') {
            fputs(inspect_usage, stdout);
            return CLI_OK;
        } else {
            fputs(inspect_usage, stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_error("plugin inspect takes exactly one FILE.so");
        fputs(inspect_usage, stderr);
        return CLI_USAGE;
    }
    return inspect(argv[optind], compact);
}

/* Refusals collected while listing. */
typedef struct refusals {
    char **paths;
    char **reasons;
    size_t count;
} refusals;

static void note_refusal(void *ctx, const char *path, const ember_error *err)
{
    refusals *r = ctx;
    char **p = realloc(r->paths, (r->count + 1) * sizeof *p);
    if (p)
        r->paths = p;
    char **q = realloc(r->reasons, (r->count + 1) * sizeof *q);
    if (q)
        r->reasons = q;
    if (!p || !q)
        return;
    r->paths[r->count] = strdup(path);
    r->reasons[r->count] = strdup(err->msg);
    if (r->paths[r->count] && r->reasons[r->count])
        r->count++;
}

static void print_text(const em_registry *reg, const refusals *ref)
{
    for (size_t i = 0; i < em_registry_count(reg); i++) {
        const em_plugin *p = em_registry_at(reg, i);
        printf("%s %s  (%s, ABI %u.%u)\n", p->name, p->version, p->path,
               p->abi_major, p->abi_minor);
        for (size_t j = 0; j < p->component_count; j++) {
            const em_component *c = &p->components[j];
            printf("  %-16s %-24s %s\n", em_kind_name(c->kind), c->qualified,
                   c->description ? c->description : "");
        }
    }
    if (em_registry_count(reg) == 0)
        printf("no plugins found\n");
    for (size_t i = 0; i < ref->count; i++)
        printf("refused: %s\n", ref->reasons[i]);
}

static int print_json(const em_registry *reg, const refusals *ref)
{
    fputs("{\"plugins\":[", stdout);
    for (size_t i = 0; i < em_registry_count(reg); i++) {
        char *json;
        if (em_plugin_describe_json(em_registry_at(reg, i), 0, &json) !=
            EMBER_OK)
            return CLI_FAILED;
        printf("%s%s", i ? "," : "", json);
        free(json);
    }
    fputs("],\"refused\":[", stdout);
    for (size_t i = 0; i < ref->count; i++) {
        printf("%s{\"file\":", i ? "," : "");
        /* Reuse the describer's escaping rules: only printable ASCII and
         * escapes reach stdout. */
        for (int k = 0; k < 2; k++) {
            const char *s = k ? ref->reasons[i] : ref->paths[i];
            putchar('"');
            for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                    printf("\\%c", ch);
                else if (ch < 0x20 || ch >= 0x7f)
                    printf("\\u%04x", ch);
                else
                    putchar(ch);
            }
            putchar('"');
            if (!k)
                fputs(",\"error\":", stdout);
        }
        putchar('}');
    }
    puts("]}");
    return CLI_OK;
}

static int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"plugin-dir", required_argument, 0, 'd'},
        {"plugin", required_argument, 0, 'p'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int json = 0, c, rc = CLI_OK;
    int ndirs = 0;
    char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0;
    char *pathcopy = NULL;
    em_registry *reg = NULL;
    refusals ref = {0};
    if (!dirs || !files) {
        cli_error("out of memory");
        rc = CLI_FAILED;
        goto out;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:p:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dirs[ndirs++] = optarg; break;
        case 'p': files[nfiles++] = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(list_usage, stdout); goto out;
        default:
            fputs(list_usage, stderr);
            rc = CLI_USAGE;
            goto out;
        }
    }
    if (optind != argc) {
        cli_error("plugin list: unexpected argument '%s'", argv[optind]);
        rc = CLI_USAGE;
        goto out;
    }
    char defdir[4096];
    const char *env = getenv("EMBER_PLUGIN_PATH");
    if (ndirs == 0 && nfiles == 0 && env && *env) {
        pathcopy = strdup(env);
        char **grown = realloc(dirs, (strlen(env) + 2) * sizeof *dirs);
        if (!pathcopy || !grown) {
            cli_error("out of memory");
            rc = CLI_FAILED;
            goto out;
        }
        dirs = grown;
        for (char *tok = strtok(pathcopy, ":"); tok; tok = strtok(NULL, ":"))
            dirs[ndirs++] = tok;
    } else if (ndirs == 0 && nfiles == 0 &&
               em_registry_default_dir(defdir, sizeof defdir) == EMBER_OK) {
        dirs[ndirs++] = defdir;
    }
    if (em_registry_create(&reg, em_host_api()) != EMBER_OK) {
        cli_error("out of memory");
        rc = CLI_FAILED;
        goto out;
    }
    for (int i = 0; i < ndirs; i++) {
        ember_error err;
        if (em_registry_load_dir(reg, dirs[i], note_refusal, &ref, &err) !=
            EMBER_OK) {
            cli_error("%s", err.msg);
            rc = CLI_FAILED;
        }
    }
    for (int i = 0; i < nfiles; i++) {
        ember_error err;
        if (em_registry_load(reg, files[i], NULL, &err) != EMBER_OK)
            note_refusal(&ref, files[i], &err);
    }
    if (json) {
        if (print_json(reg, &ref) != CLI_OK)
            rc = CLI_FAILED;
    } else {
        print_text(reg, &ref);
    }
out:
    em_registry_destroy(reg);
    for (size_t i = 0; i < ref.count; i++) {
        free(ref.paths[i]);
        free(ref.reasons[i]);
    }
    free(ref.paths);
    free(ref.reasons);
    free(pathcopy);
    free(files);
    free(dirs);
    return rc;
}

int cli_plugin(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(inspect_usage, argc < 2 ? stderr : stdout);
        fputs("\n", argc < 2 ? stderr : stdout);
        fputs(list_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "inspect"))
        return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list"))
        return cmd_list(argc - 1, argv + 1);
    cli_error("unknown plugin command '%s' (inspect, list)", argv[1]);
    return CLI_USAGE;
}
