/*
 * cmd_run.c — `ember run`: open a session on a master, run a plan file's
 * datasets and actions (docs/plan-format.md, "Plan files") and print the
 * results as JSON lines; and `ember submit`, the same against a running
 * emberd with a scheduler pool. See docs/cli.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cli.h"
#include "ember/ember.h"
#include "ember/kernel/conf.h"

static const char run_usage[] =
    "usage: ember run [options] PLAN.json\n"
    "\n"
    "Runs the plan file's actions in a session and prints their results\n"
    "to stdout, one JSON value per line.\n"
    "\n"
    "options:\n"
    "  --master URL             local, local[N], local[*], local[N,F],\n"
    "                           local-cluster[E,C,M], ember://HOST:PORT (a\n"
    "                           running emberd) (default: ember.master,\n"
    "                           else local[*])\n"
    "  --conf KEY=VALUE         set a configuration value (repeatable)\n"
    "  --properties-file FILE   the defaults file (default:\n"
    "                           $EMBER_CONF_DIR/ember-defaults.conf)\n"
    "  --plugin FILE.so         load a plugin besides the plugin directories\n"
    "                           and the plan's \"plugins\" (repeatable)\n"
    "  --verbose                print every effective configuration value\n"
    "                           and where it came from to stderr first\n"
    "  --help                   show this help\n"
    "\n"
    "Exit status: 0 success, 1 the plan or a job failed, 2 usage error.\n";

static const char submit_usage[] =
    "usage: ember submit --master ember://HOST:PORT [options] PLAN.json\n"
    "\n"
    "Runs the plan file's actions on a running emberd, as 'ember run'\n"
    "does, and prints their results to stdout, one JSON value per line.\n"
    "Plugin files given with --plugin or named by the plan are shipped to\n"
    "the service.\n"
    "\n"
    "options:\n"
    "  --master ember://HOST:PORT  the service (default: ember.master)\n"
    "  --pool NAME              the scheduler pool of the jobs\n"
    "                           (ember.scheduler.pool)\n"
    "  --conf KEY=VALUE         set a configuration value (repeatable)\n"
    "  --properties-file FILE   the defaults file (default:\n"
    "                           $EMBER_CONF_DIR/ember-defaults.conf)\n"
    "  --plugin FILE.so         load and ship a plugin (repeatable)\n"
    "  --verbose                print every effective configuration value\n"
    "                           and where it came from to stderr first\n"
    "  --help                   show this help\n"
    "\n"
    "Exit status: 0 success, 1 the plan or a job failed, 2 usage error.\n";

typedef struct file_id {
    int known;
    dev_t dev;
    ino_t ino;
} file_id;

typedef struct run_opts {
    const char *master;
    const char *properties_file;
    const char *plan;
    const char **flags;   /* --conf, NULL-terminated */
    size_t nflags;
    const char **plugins; /* --plugin, then the plan's; NULL-terminated */
    size_t nplugins;
    file_id *ids;         /* which file each plugin is */
    int verbose;
    const char *cmd;      /* "run" or "submit" */
    char *pool_flag;      /* submit --pool: "ember.scheduler.pool=NAME" */
} run_opts;

/* Appends s to a NULL-terminated list of n items; 0 or -1 (no memory). */
static int list_add(const char ***list, size_t *n, const char *s)
{
    const char **grown = realloc(*list, (*n + 2) * sizeof *grown);
    if (!grown)
        return -1;
    grown[(*n)++] = s;
    grown[*n] = NULL;
    *list = grown;
    return 0;
}

/* Adds a plugin file unless the same file is already listed (a plan may
 * name the plugin that --plugin gave too). A file that cannot be stat'ed
 * is added as it is: loading it reports why. */
static int add_plugin(run_opts *o, const char *path)
{
    struct stat sb;
    int known = stat(path, &sb) == 0;
    for (size_t i = 0; known && i < o->nplugins; i++)
        if (o->ids[i].known && o->ids[i].dev == sb.st_dev &&
            o->ids[i].ino == sb.st_ino)
            return 0;
    file_id *grown = realloc(o->ids, (o->nplugins + 1) * sizeof *grown);
    if (!grown)
        return -1;
    o->ids = grown;
    o->ids[o->nplugins] = (file_id){known, known ? sb.st_dev : 0,
                                    known ? sb.st_ino : 0};
    return list_add(&o->plugins, &o->nplugins, path);
}

/* The value of option name at argv[*i] ("--name VALUE" or "--name=VALUE"),
 * advancing *i; NULL (usage error printed) when it is missing. */
static const char *option_value(int argc, char **argv, int *i,
                                const char *name, const char *cmd)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        cli_error("%s: %s needs a value (try 'ember %s --help')", cmd, name,
                  cmd);
        return NULL;
    }
    return argv[++*i];
}

static int is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Parses argv into o; an exit code, or -1 to go on. */
static int parse_args(int argc, char **argv, run_opts *o)
{
    int submit = !strcmp(o->cmd, "submit");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(submit ? submit_usage : run_usage, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o->verbose = 1;
        } else if (is_option(a, "--master")) {
            if (!(v = option_value(argc, argv, &i, "--master", o->cmd)))
                return CLI_USAGE;
            o->master = v;
        } else if (is_option(a, "--properties-file")) {
            if (!(v = option_value(argc, argv, &i, "--properties-file",
                                   o->cmd)))
                return CLI_USAGE;
            o->properties_file = v;
        } else if (is_option(a, "--conf")) {
            if (!(v = option_value(argc, argv, &i, "--conf", o->cmd)))
                return CLI_USAGE;
            if (list_add(&o->flags, &o->nflags, v) != 0) {
                cli_error("out of memory");
                return CLI_FAILED;
            }
        } else if (is_option(a, "--plugin")) {
            if (!(v = option_value(argc, argv, &i, "--plugin", o->cmd)))
                return CLI_USAGE;
            if (add_plugin(o, v) != 0) {
                cli_error("out of memory");
                return CLI_FAILED;
            }
        } else if (submit && is_option(a, "--pool")) {
            if (!(v = option_value(argc, argv, &i, "--pool", o->cmd)))
                return CLI_USAGE;
            if (!*v) {
                cli_error("submit: --pool needs a pool name");
                return CLI_USAGE;
            }
            free(o->pool_flag);
            size_t n = strlen(v) + sizeof "ember.scheduler.pool=";
            if (!(o->pool_flag = malloc(n))) {
                cli_error("out of memory");
                return CLI_FAILED;
            }
            snprintf(o->pool_flag, n, "ember.scheduler.pool=%s", v);
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("%s: unknown option '%s' (try 'ember %s --help')",
                      o->cmd, a, o->cmd);
            return CLI_USAGE;
        } else if (o->plan) {
            cli_error("%s: unexpected argument '%s' (one PLAN.json)", o->cmd,
                      a);
            return CLI_USAGE;
        } else {
            o->plan = a;
        }
    }
    if (!o->plan) {
        cli_error("%s: a PLAN.json is needed (try 'ember %s --help')",
                  o->cmd, o->cmd);
        return CLI_USAGE;
    }
    /* Last, so that --pool wins over a --conf of the same key. */
    if (o->pool_flag && list_add(&o->flags, &o->nflags, o->pool_flag) != 0) {
        cli_error("out of memory");
        return CLI_FAILED;
    }
    return -1;
}

static void print_setting(void *ctx, const char *key, const char *value,
                          const char *origin)
{
    (void)ctx;
    if (value)
        fprintf(stderr, "%s = %s (%s)\n", key, value, origin);
}

/* --verbose: the configuration as the session will read it (the defaults
 * file, --conf flags, then --master), every effective value listed. */
static int print_conf(const run_opts *o)
{
    em_conf *conf = NULL;
    ember_error err = {0};
    ember_status st = em_conf_create(&conf);
    if (st != EMBER_OK) {
        cli_error("out of memory");
        return CLI_FAILED;
    }
    st = em_conf_load_layers(conf, o->properties_file, o->flags, &err);
    if (st == EMBER_OK && o->master)
        st = em_conf_set(conf, "ember.master", o->master, "--master", &err);
    if (st == EMBER_OK)
        em_conf_each_effective(conf, print_setting, NULL);
    else
        cli_error("%s", err.msg);
    em_conf_destroy(conf);
    return st == EMBER_OK ? CLI_OK : CLI_FAILED;
}

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    fputs(line, stdout);
    fputc('\n', stdout);
}

/* A progress bar on stderr when it is a terminal, as Spark's console
 * shows: [Job 3:==========>          (37 / 64)]. Cleared when the job has
 * all its results, before its output lines are printed. */
static void show_progress(void *ctx, uint64_t job, uint32_t done,
                          uint32_t total)
{
    (void)ctx;
    enum { WIDTH = 40 };
    if (done >= total) {
        fprintf(stderr, "\r%*s\r", WIDTH + 40, "");
        fflush(stderr);
        return;
    }
    char bar[WIDTH + 1];
    uint32_t fill = total ? (uint32_t)((uint64_t)done * WIDTH / total) : 0;
    for (uint32_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r[Job %llu:%s(%u / %u)]", (unsigned long long)job, bar,
            done, total);
    fflush(stderr);
}

static int run_plan(run_opts *o, const char *text, size_t len)
{
    if (o->verbose) {
        int rc = print_conf(o);
        if (rc != CLI_OK)
            return rc;
    }
    ember_session_opts so = {0};
    so.master = o->master;
    so.conf_flags = o->flags;
    so.properties_file = o->properties_file;
    so.plugins = o->plugins;
    if (isatty(STDERR_FILENO))
        so.progress = show_progress;
    ember_session *s = NULL;
    ember_error err = {0};
    if (ember_session_open(&s, &so, &err) != EMBER_OK) {
        cli_error("%s", err.msg);
        return CLI_FAILED;
    }
    int rc = CLI_OK;
    if (ember_plan_run(s, text, len, o->plan, print_line, NULL, &err) !=
        EMBER_OK) {
        fflush(stdout);
        cli_error("%s", err.msg);
        rc = CLI_FAILED;
    }
    ember_session_close(s);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the results: %s", strerror(errno));
        rc = CLI_FAILED;
    }
    return rc;
}

/* `ember run` (submit 0) and `ember submit` (submit 1). */
static int run_command(int argc, char **argv, int submit)
{
    run_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = submit ? "submit" : "run";
    char **plan_plugins = NULL;
    size_t nplan = 0;
    char *text = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        goto done;
    if (submit && (rc = cli_service_master(&o.master, o.properties_file,
                                           "submit")) != CLI_OK)
        goto done;
    size_t len = 0;
    if (!(text = cli_read_file(o.plan, &len))) {
        rc = CLI_FAILED;
        goto done;
    }
    ember_error err = {0};
    if (ember_plan_plugins(text, len, o.plan, &plan_plugins, &nplan, &err) !=
        EMBER_OK) {
        cli_error("%s", err.msg);
        rc = CLI_FAILED;
        goto done;
    }
    for (size_t i = 0; i < nplan; i++)
        if (add_plugin(&o, plan_plugins[i]) != 0) {
            cli_error("out of memory");
            rc = CLI_FAILED;
            goto done;
        }
    rc = run_plan(&o, text, len);
done:
    for (size_t i = 0; i < nplan; i++)
        free(plan_plugins[i]);
    free(plan_plugins);
    free(o.ids);
    free(o.plugins);
    free(o.flags);
    free(o.pool_flag);
    free(text);
    return rc;
}

int cli_run(int argc, char **argv)
{
    return run_command(argc, argv, 0);
}

int cli_submit(int argc, char **argv)
{
    return run_command(argc, argv, 1);
}
