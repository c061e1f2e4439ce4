/*
 * cmd_service.c — `ember status`, `ember list` and `ember kill`: ask a
 * running emberd about its jobs (ember/service.h). See docs/cli.md.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ember/kernel/conf.h"
#include "ember/service.h"

static const char service_usage[] =
    "usage: ember status --master ember://HOST:PORT JOB\n"
    "       ember list   --master ember://HOST:PORT [--running]\n"
    "       ember kill   --master ember://HOST:PORT JOB\n"
    "\n"
    "  status   print the job's state as one JSON object: status, error,\n"
    "           pool, stage attempts, task counts by status\n"
    "  list     print the service's jobs, one JSON object per line, oldest\n"
    "           first (--running: only running ones)\n"
    "  kill     cancel a running job (its driver sees it cancelled)\n"
    "\n"
    "JOB is a job id: 42 or job-42. --master defaults to ember.master\n"
    "from the defaults file (--properties-file FILE, else\n"
    "$EMBER_CONF_DIR/ember-defaults.conf).\n"
    "\n"
    "Exit status: 0 success, 1 the service refused or cannot be reached,\n"
    "2 usage error.\n";

int cli_service_master(const char **master, const char *properties_file,
                       const char *cmd)
{
    static char from_conf[256];
    if (!*master) {
        em_conf *conf = NULL;
        ember_error err = {0};
        size_t len;
        if (em_conf_create(&conf) != EMBER_OK) {
            cli_error("out of memory");
            return CLI_FAILED;
        }
        if (em_conf_load_defaults(conf, properties_file, &err) != EMBER_OK) {
            cli_error("%s", err.msg);
            em_conf_destroy(conf);
            return CLI_FAILED;
        }
        if (em_conf_get(conf, "ember.master", from_conf, sizeof from_conf,
                        &len) == EMBER_OK &&
            strncmp(from_conf, "ember://", 8) == 0)
            *master = from_conf;
        em_conf_destroy(conf);
    }
    if (!*master) {
        cli_error("%s: --master ember://HOST:PORT is needed (the emberd to "
                  "ask; try 'ember %s --help')", cmd, cmd);
        return CLI_USAGE;
    }
    if (strncmp(*master, "ember://", 8) != 0) {
        cli_error("%s: master '%s' is not a service: expected "
                  "ember://HOST:PORT", cmd, *master);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* "42" or "job-42". */
static int parse_job(const char *s, uint64_t *out)
{
    char *end;
    if (strncmp(s, "job-", 4) == 0)
        s += 4;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

static int is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Prints each element of a JSON array as one line. */
static int print_lines(const char *text)
{
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    if (!json_is_array(a)) {
        json_decref(a);
        cli_error("list: the service sent something that is not a JSON "
                  "array");
        return CLI_FAILED;
    }
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char *line = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            puts(line);
        free(line);
    }
    json_decref(a);
    return CLI_OK;
}

int cli_service(int argc, char **argv)
{
    const char *cmd = argv[0];
    const char *master = NULL, *props = NULL, *job = NULL;
    int running = 0, list = !strcmp(cmd, "list");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(service_usage, stdout);
            return CLI_OK;
        }
        if (list && !strcmp(a, "--running")) {
            running = 1;
            continue;
        }
        if (is_option(a, "--master"))
            slot = &master;
        else if (is_option(a, "--properties-file"))
            slot = &props;
        if (slot) {
            const char *eq = strchr(a, '=');
            if (eq) {
                *slot = eq + 1;
            } else if (i + 1 < argc) {
                *slot = argv[++i];
            } else {
                cli_error("%s: %s needs a value (try 'ember %s --help')",
                          cmd, a, cmd);
                return CLI_USAGE;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("%s: unknown option '%s' (try 'ember %s --help')", cmd,
                      a, cmd);
            return CLI_USAGE;
        } else if (list || job) {
            cli_error("%s: unexpected argument '%s' (try 'ember %s --help')",
                      cmd, a, cmd);
            return CLI_USAGE;
        } else {
            job = a;
        }
    }
    uint64_t id = 0;
    if (!list && !job) {
        cli_error("%s: a JOB id is needed (try 'ember %s --help')", cmd,
                  cmd);
        return CLI_USAGE;
    }
    if (job && parse_job(job, &id) != 0) {
        cli_error("%s: '%s' is not a job id (42 or job-42)", cmd, job);
        return CLI_USAGE;
    }
    int rc = cli_service_master(&master, props, cmd);
    if (rc != CLI_OK)
        return rc;
    ember_error err = {0};
    char *text = NULL;
    ember_status st;
    if (list)
        st = ember_service_list(master, running, &text, &err);
    else if (!strcmp(cmd, "status"))
        st = ember_service_status(master, id, &text, &err);
    else
        st = ember_service_kill(master, id, &err);
    if (st != EMBER_OK) {
        cli_error("%s: %s", cmd, err.msg);
        free(text);
        return CLI_FAILED;
    }
    if (list)
        rc = print_lines(text);
    else if (text)
        puts(text);
    else
        printf("job %llu cancelled\n", (unsigned long long)id);
    free(text);
    if (fflush(stdout) != 0) {
        cli_error("cannot write the output: %s", strerror(errno));
        rc = CLI_FAILED;
    }
    return rc;
}
