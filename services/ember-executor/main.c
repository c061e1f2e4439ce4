/*
 * ember-executor — one executor process. Started by a cluster manager
 * (local-cluster, standalone workers, Slurm ...), it dials the kernel's
 * executor endpoint, registers, runs tasks until the kernel shuts it down
 * or goes away, and exits.
 *
 *   ember-executor --kernel URL --id ID [--slots N] [--memory SIZE]
 *                  [--plugin PATH]... [--plugin-dir DIR]
 *                  [--properties-file FILE] [--conf key=value]...
 *
 * Plugins: the default plugin directory, ember.plugins.path, then each
 * --plugin. --plugin-dir (else $EMBER_EXECUTOR_PLUGIN_DIR, which emberd
 * sets for the executors it starts) names the directory of the plugins
 * clients ship to emberd: it is rescanned for new files whenever a stage
 * arrives. Configuration: as every ember program (ember-defaults.conf
 * from EMBER_CONF_DIR, or --properties-file instead; then --conf). Exit status 0 after a clean shutdown, 1 on errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/conf.h"
#include "ember/kernel/host.h"
#include "ember/kernel/log.h"
#include "ember/kernel/registry.h"
#include "ember/runtime/executor.h"

static int usage(FILE *f, int code)
{
    fprintf(f, "usage: ember-executor --kernel URL --id ID [--slots N] "
               "[--memory SIZE]\n"
               "                      [--plugin PATH]... [--plugin-dir DIR] "
               "[--properties-file FILE]\n"
               "                      [--conf key=value]...\n");
    return code;
}

static void on_refused(void *ctx, const char *path, const ember_error *e)
{
    (void)ctx;
    fprintf(stderr, "ember-executor: plugin %s not loaded: %s\n", path,
            e->msg);
}

int main(int argc, char **argv)
{
    const char *kernel = NULL, *id = NULL;
    const char *plugin_dir = getenv("EMBER_EXECUTOR_PLUGIN_DIR");
    long slots = 1;
    const char *plugins[256];
    size_t nplugins = 0;
    ember_error err = {0};
    em_conf *conf = NULL;
    em_registry *reg = NULL;
    em_executor *ex = NULL;
    int rc = 1;
    if (em_conf_create(&conf) != EMBER_OK)
        return 1;
    const char *props = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--properties-file") == 0)
            props = argv[i + 1];
    if (em_conf_load_defaults(conf, props, &err) != EMBER_OK) {
        fprintf(stderr, "ember-executor: %s\n", err.msg);
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            rc = usage(stdout, 0);
            goto out;
        }
        if (!v) {
            rc = usage(stderr, 2);
            goto out;
        }
        i++;
        if (strcmp(a, "--kernel") == 0) {
            kernel = v;
        } else if (strcmp(a, "--id") == 0) {
            id = v;
        } else if (strcmp(a, "--slots") == 0) {
            char *end;
            slots = strtol(v, &end, 10);
            if (*end || slots < 1 || slots > 4096) {
                fprintf(stderr, "ember-executor: --slots '%s': a number "
                        "from 1 to 4096 expected\n", v);
                rc = 2;
                goto out;
            }
        } else if (strcmp(a, "--memory") == 0) {
            if (em_conf_set(conf, "ember.executor.memory", v, "--memory",
                            &err) != EMBER_OK) {
                fprintf(stderr, "ember-executor: %s\n", err.msg);
                goto out;
            }
        } else if (strcmp(a, "--properties-file") == 0) {
            /* loaded above, before the flags */
        } else if (strcmp(a, "--plugin") == 0 && nplugins < 256) {
            plugins[nplugins++] = v;
        } else if (strcmp(a, "--plugin-dir") == 0) {
            plugin_dir = v;
        } else if (strcmp(a, "--conf") == 0) {
            if (em_conf_set_flag(conf, v, &err) != EMBER_OK) {
                fprintf(stderr, "ember-executor: %s\n", err.msg);
                rc = 2;
                goto out;
            }
        } else {
            rc = usage(stderr, 2);
            goto out;
        }
    }
    if (!kernel || !id) {
        rc = usage(stderr, 2);
        goto out;
    }
    em_host_set_conf(conf);
    if (em_registry_create(&reg, em_host_api()) != EMBER_OK)
        goto out;
    char dir[4096];
    if (em_registry_default_dir(dir, sizeof dir) == EMBER_OK)
        em_registry_load_dir(reg, dir, on_refused, NULL, NULL);
    size_t len;
    if (em_conf_get(conf, "ember.plugins.path", dir, sizeof dir, &len) ==
        EMBER_OK) {
        for (char *p = strtok(dir, ":"); p; p = strtok(NULL, ":"))
            em_registry_load_dir(reg, p, on_refused, NULL, NULL);
    }
    for (size_t i = 0; i < nplugins; i++) {
        if (em_registry_load(reg, plugins[i], NULL, &err) != EMBER_OK &&
            err.code != EMBER_EEXIST) {
            fprintf(stderr, "ember-executor: %s\n", err.msg);
            goto out;
        }
    }
    em_runtime_init(reg, conf);
    em_executor_opts o = {.endpoint = kernel,
                          .executor_id = id,
                          .slots = (uint32_t)slots,
                          .registry = reg,
                          .conf = conf,
                          .plugin_dir = plugin_dir && *plugin_dir
                                            ? plugin_dir
                                            : NULL};
    if (em_executor_start(&ex, &o, &err) != EMBER_OK) {
        fprintf(stderr, "ember-executor %s: %s\n", id, err.msg);
        goto out;
    }
    em_executor_wait(ex);
    rc = 0;
out:
    em_executor_stop(ex);
    em_registry_destroy(reg);
    em_host_set_conf(NULL);
    em_conf_destroy(conf);
    return rc;
}
