/*
 * emberd — the kernel as a long-running service. See docs/service.md.
 *
 *   emberd --listen URL --state DIR [--master URL] [--conf KEY=VALUE]...
 *          [--properties-file FILE] [--max-client-queue SIZE]
 *          [--max-splits N] [--verbose]
 *
 * Prints "emberd: listening on URL" on stdout once clients can connect,
 * runs until SIGINT or SIGTERM, then stops cleanly and exits 0. Exit
 * status 1 when the service cannot start, 2 on a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/kernel/conf.h"
#include "service.h"

static const char usage[] =
    "usage: emberd --listen URL --state DIR [options]\n"
    "\n"
    "Runs the ember kernel as a service: clients (ember run/submit\n"
    "--master ember://HOST:PORT, the C API) connect to URL.\n"
    "\n"
    "options:\n"
    "  --listen URL             tcp://HOST:PORT (port 0: any free port) or\n"
    "                           ipc:///PATH\n"
    "  --state DIR              state directory (created if missing): the\n"
    "                           state store DIR/ember.db, shipped plugins\n"
    "  --master URL             the cluster manager: local[N], local[*],\n"
    "                           local-cluster[E,C,M] (default: ember.master,\n"
    "                           else local[*])\n"
    "  --conf KEY=VALUE         set a configuration value (repeatable)\n"
    "  --properties-file FILE   the defaults file (default:\n"
    "                           $EMBER_CONF_DIR/ember-defaults.conf)\n"
    "  --max-client-queue SIZE  bytes of requests one client may have\n"
    "                           waiting or in progress (e.g. 512m; default\n"
    "                           256m); a client sending more is refused\n"
    "                           and disconnected\n"
    "  --max-splits N           splits one input may expand to when a\n"
    "                           client plans a source (default 100000)\n"
    "  --verbose                log connections and jobs, and print every\n"
    "                           effective configuration value to stderr\n"
    "  --help                   show this help\n"
    "\n"
    "Stops cleanly on SIGINT or SIGTERM. No authentication: listen on\n"
    "localhost or a trusted network only.\n";

/* Written by the signal handler, read by main. */
static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    ssize_t w = write(stop_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

/* The value of option name at argv[*i] ("--name VALUE" or "--name=VALUE"),
 * advancing *i; NULL when missing. */
static const char *option_value(int argc, char **argv, int *i,
                                const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

int main(int argc, char **argv)
{
    emberd_opts o = {0};
    const char **flags = calloc((size_t)argc + 1, sizeof *flags);
    size_t nflags = 0;
    int rc = 2;
    if (!flags) {
        fputs("emberd: out of memory\n", stderr);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        static const char *const with_value[] = {
            "--listen",           "--state",      "--master",
            "--conf",             "--properties-file",
            "--max-client-queue", "--max-splits"};
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o.verbose = 1;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof with_value / sizeof *with_value; k++)
            if (is_option(a, with_value[k]))
                break;
        if (k == sizeof with_value / sizeof *with_value) {
            fprintf(stderr, "emberd: unknown option '%s' (try 'emberd "
                    "--help')\n", a);
            goto out;
        }
        if (!(v = option_value(argc, argv, &i, with_value[k]))) {
            fprintf(stderr, "emberd: %s needs a value (try 'emberd "
                    "--help')\n", with_value[k]);
            goto out;
        }
        int64_t n = 0;
        switch (k) {
        case 0: o.listen = v; break;
        case 1: o.state_dir = v; break;
        case 2: o.master = v; break;
        case 3: flags[nflags++] = v; break;
        case 4: o.properties_file = v; break;
        case 5:
            if (em_parse_size(v, &n) != EMBER_OK || n < 1024) {
                fprintf(stderr, "emberd: --max-client-queue '%s' is not a "
                        "size of at least 1k (e.g. 512m, 2g)\n", v);
                goto out;
            }
            o.max_client_queue = (size_t)n;
            break;
        default: {
            char *end = NULL;
            errno = 0;
            unsigned long long u = strtoull(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
                u == 0) {
                fprintf(stderr, "emberd: --max-splits '%s' is not a "
                        "positive integer\n", v);
                goto out;
            }
            o.max_splits = (uint64_t)u;
            break;
        }
        }
    }
    if (!o.listen || !o.state_dir) {
        fprintf(stderr, "emberd: --listen and --state are required (try "
                "'emberd --help')\n");
        goto out;
    }
    o.conf_flags = flags;

    rc = 1;
    if (pipe(stop_pipe) != 0) {
        fprintf(stderr, "emberd: pipe: %s\n", strerror(errno));
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    emberd *d = NULL;
    ember_error err = {0};
    if (emberd_start(&d, &o, &err) != EMBER_OK) {
        fprintf(stderr, "emberd: %s\n", err.msg);
        goto out;
    }
    printf("emberd: listening on %s\n", emberd_url(d));
    fflush(stdout);
    unsigned char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR)
        ;
    fprintf(stderr, "emberd: stopping (signal %u)\n", (unsigned)sig);
    emberd_stop(d);
    rc = 0;
out:
    if (stop_pipe[0] >= 0) {
        close(stop_pipe[0]);
        close(stop_pipe[1]);
    }
    free(flags);
    return rc;
}
