/*
 * client/session.c — opening and closing a session: configuration layers,
 * plugins, and the kernel for the master URL (embedded for local masters).
 */
#define _GNU_SOURCE /* dladdr, realpath */
#include "client_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/kernel/host.h"
#include "ember/kernel/log.h"
#include "ember/runtime/executor.h"

void em_client_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[PATH_MAX];
            if ((size_t)snprintf(child, sizeof child, "%s/%s", path,
                                 e->d_name) < sizeof child)
                em_client_rmtree(child);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static ember_status read_conf(ember_session *s, const ember_session_opts *o,
                              ember_error *err)
{
    ember_status st = em_conf_create(&s->conf);
    if (st != EMBER_OK)
        return ember_errorf(err, st, "out of memory");
    if ((st = em_conf_load_layers(s->conf, o->properties_file,
                                  o->conf_flags, err)) != EMBER_OK)
        return st;
    for (size_t i = 0; o->conf && o->conf[i]; i++) {
        const char *eq = strchr(o->conf[i], '=');
        if (!eq || eq == o->conf[i])
            return ember_errorf(err, EMBER_EINVAL,
                                "configuration '%s': expected key=value",
                                o->conf[i]);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - o->conf[i]), o->conf[i]);
        if ((st = em_conf_set(s->conf, key, eq + 1, "code", err)) != EMBER_OK)
            return st;
    }
    if (o->app_name &&
        (st = em_conf_set(s->conf, "ember.app.name", o->app_name, "code",
                          err)) != EMBER_OK)
        return st;
    if ((st = em_conf_validate(s->conf, err)) != EMBER_OK)
        return st;
    return EMBER_OK;
}

static void on_refused(void *ctx, const char *path, const ember_error *e)
{
    (void)ctx;
    em_log(EMBER_LOG_WARN, "session", "plugin %s not loaded: %s", path,
           e->msg);
}

static ember_status load_plugins(ember_session *s, const ember_session_opts *o,
                                 ember_error *err)
{
    ember_status st = em_registry_create(&s->registry, em_host_api());
    if (st != EMBER_OK)
        return ember_errorf(err, st, "out of memory");
    char dir[PATH_MAX];
    if (getenv("EMBER_PLUGIN_PATH") == NULL &&
        em_registry_default_dir(dir, sizeof dir) == EMBER_OK)
        em_registry_load_dir(s->registry, dir, on_refused, NULL, NULL);
    char path[4096];
    size_t len;
    const char *env = getenv("EMBER_PLUGIN_PATH");
    const char *paths[2] = {env, NULL};
    if (em_conf_get(s->conf, "ember.plugins.path", path, sizeof path, &len) ==
        EMBER_OK)
        paths[1] = path;
    for (int k = 0; k < 2; k++) {
        const char *p = paths[k];
        while (p && *p) {
            const char *colon = strchr(p, ':');
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            if (n > 0 && n < sizeof dir) {
                memcpy(dir, p, n);
                dir[n] = '\0';
                ember_error e;
                if (em_registry_load_dir(s->registry, dir, on_refused, NULL,
                                         &e) != EMBER_OK)
                    em_log(EMBER_LOG_WARN, "session", "plugin directory %s: "
                           "%s", dir, e.msg);
            }
            p = colon ? colon + 1 : NULL;
        }
    }
    for (size_t i = 0; o->plugins && o->plugins[i]; i++)
        if ((st = em_registry_load(s->registry, o->plugins[i], NULL, err)) !=
            EMBER_OK)
            return st;
    return EMBER_OK;
}

/* ember-executor beside this library: <libdir>/EMBER_LIB_TO_BIN. */
static void default_executor_command(em_conf *conf)
{
    char buf[PATH_MAX];
    size_t len;
    Dl_info info;
    if (em_conf_get(conf, "ember.executor.command", buf, sizeof buf, &len) ==
            EMBER_OK ||
        dladdr((void *)default_executor_command, &info) == 0 ||
        !info.dli_fname)
        return;
    const char *slash = strrchr(info.dli_fname, '/');
    int dir = slash ? (int)(slash - info.dli_fname) : 1;
    if ((size_t)snprintf(buf, sizeof buf, "%.*s/%s/ember-executor", dir,
                         slash ? info.dli_fname : ".", EMBER_LIB_TO_BIN) <
        sizeof buf)
        em_conf_set(conf, "ember.executor.command", buf, "default", NULL);
}

/* DIR/executor.conf holds the driver's settings for executor processes
 * (ember.executor.confFile), so --conf flags and values set in code reach
 * them. */
static void executor_conf_file(ember_session *s)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/executor.conf", s->state_dir);
    if (em_conf_write_file(s->conf, path, "ember.executor.confFile", NULL) ==
        EMBER_OK)
        em_conf_set(s->conf, "ember.executor.confFile", path, "session",
                    NULL);
}

/* The plugin files the session loaded by path, for executor processes. */
static void executor_plugins(ember_session *s, const ember_session_opts *o)
{
    char list[8192] = "";
    size_t used = 0;
    for (size_t i = 0; o->plugins && o->plugins[i]; i++) {
        char abs[PATH_MAX];
        if (!realpath(o->plugins[i], abs))
            continue;
        int n = snprintf(list + used, sizeof list - used, "%s%s",
                         used ? ":" : "", abs);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    if (used)
        em_conf_set(s->conf, "ember.executor.plugins", list, "session", NULL);
}

ember_status ember_session_open(ember_session **out,
                                const ember_session_opts *opts,
                                ember_error *err)
{
    static const ember_session_opts none = {0};
    const ember_session_opts *o = opts ? opts : &none;
    *out = NULL;
    ember_session *s = calloc(1, sizeof *s);
    if (!s)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->progress = o->progress;
    s->progress_ctx = o->progress_ctx;
    ember_status st = read_conf(s, o, err);
    if (st != EMBER_OK)
        goto fail;
    em_host_set_conf(s->conf);
    size_t len;
    if (o->master)
        snprintf(s->master, sizeof s->master, "%s", o->master);
    else if (em_conf_get(s->conf, "ember.master", s->master, sizeof s->master,
                         &len) != EMBER_OK)
        snprintf(s->master, sizeof s->master, "local[*]");
    if (strncmp(s->master, "ember://", 8) == 0) {
        /* The kernel is emberd's: plugins load here too (driver-side
         * functions run in the driver) and are shipped to the service. */
        if ((st = load_plugins(s, o, err)) != EMBER_OK ||
            (st = em_remote_open(s, o->plugins, err)) != EMBER_OK)
            goto fail;
        *out = s;
        return EMBER_OK;
    }
    long failures;
    s->slots = em_master_slots(s->master, &failures);
    if (strncmp(s->master, "local", 5) == 0 &&
        strncmp(s->master, "local-cluster", 13) != 0) {
        /* Spark: local mode does not retry tasks unless local[N,F]. */
        char v[32];
        snprintf(v, sizeof v, "%ld", failures > 0 ? failures : 1);
        if ((st = em_conf_set(s->conf, "ember.task.maxFailures", v,
                              "master URL", err)) != EMBER_OK)
            goto fail;
    }
    int64_t par;
    if ((st = em_conf_get_int(s->conf, "ember.default.parallelism", s->slots,
                              1, 1000000, &par, err)) != EMBER_OK)
        goto fail;
    s->default_parallelism = (uint32_t)par;
    if ((st = load_plugins(s, o, err)) != EMBER_OK)
        goto fail;
    char base[PATH_MAX] = "/tmp";
    em_conf_get(s->conf, "ember.local.dir", base, sizeof base, &len);
    if ((size_t)snprintf(s->state_dir, sizeof s->state_dir,
                         "%s/ember-driver-XXXXXX", base) >=
            sizeof s->state_dir ||
        !mkdtemp(s->state_dir)) {
        st = ember_errorf(err, EMBER_EIO, "cannot create a directory in %s: "
                          "%s", base, strerror(errno));
        s->state_dir[0] = '\0';
        goto fail;
    }
    char db[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/ember.db", s->state_dir);
    em_runtime_init(s->registry, s->conf);
    default_executor_command(s->conf);
    executor_plugins(s, o);
    executor_conf_file(s);
    /* Executor processes dial a socket in the session's directory;
     * executor threads an inproc:// one. */
    char url[PATH_MAX + 32];
    int processes = strncmp(s->master, "local-cluster", 13) == 0;
    snprintf(url, sizeof url, "ipc://%s/executors.sock", s->state_dir);
    em_server_opts so = {s->conf, db, s->registry, processes ? url : NULL,
                         s->master};
    if ((st = em_server_start(&s->server, &so, err)) != EMBER_OK)
        goto fail;
    char app[256] = "ember";
    em_conf_get(s->conf, "ember.app.name", app, sizeof app, &len);
    if ((st = em_kernel_app_open(em_server_kernel(s->server), app, &s->app_id,
                                 err)) != EMBER_OK)
        goto fail;
    *out = s;
    return EMBER_OK;
fail:
    ember_session_close(s);
    return st;
}

void ember_session_close(ember_session *s)
{
    if (!s)
        return;
    if (s->server) {
        em_kernel_app_close(em_server_kernel(s->server), s->app_id);
        em_server_stop(s->server);
    }
    em_remote_close(s->remote);
    em_client_broadcasts_free(s);
    em_client_accums_free(s);
    while (s->rdds) {
        ember_rdd *r = s->rdds;
        s->rdds = r->next;
        json_decref(r->node);
        json_decref(r->partitioner);
        free(r);
    }
    em_registry_destroy(s->registry);
    if (s->state_dir[0])
        em_client_rmtree(s->state_dir);
    em_host_unset_conf(s->conf);
    em_conf_destroy(s->conf);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

ember_status ember_session_load_plugin(ember_session *s, const char *path,
                                       ember_error *err)
{
    ember_status st = em_registry_load(s->registry, path, NULL, err);
    if (st == EMBER_OK && s->remote)
        st = em_remote_ship_plugin(s, path, err);
    return st;
}

uint64_t ember_session_jobs(const ember_session *s)
{
    return atomic_load(&((ember_session *)s)->jobs);
}

uint32_t ember_default_parallelism(const ember_session *s)
{
    return s->default_parallelism;
}

ember_status ember_session_conf(const ember_session *s, const char *key,
                                char *out, size_t cap)
{
    size_t len;
    return em_conf_get(s->conf, key, out, cap, &len);
}
