/*
 * The set of loaded plugins (see ember/kernel/registry.h).
 *
 * A service loads plugins while executors look functions up (a client
 * ships one to emberd while jobs run), so the plugin list sits behind a
 * read-write lock: loads take it for writing only to check the name and
 * append (dlopen runs outside it); lookups take it for reading. Plugins
 * are never unloaded before em_registry_destroy, so a pointer a lookup
 * returned stays valid after the lock is released.
 */
#define _GNU_SOURCE
#include "ember/kernel/registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct em_registry {
    const ember_host_api *host;
    pthread_rwlock_t lock; /* plugins, count, cap */
    em_plugin **plugins;
    size_t count;
    size_t cap;
};

ember_status em_registry_create(em_registry **out, const ember_host_api *host)
{
    em_registry *r = calloc(1, sizeof *r);
    if (!r)
        return EMBER_ENOMEM;
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        free(r);
        return EMBER_ENOMEM;
    }
    r->host = host;
    *out = r;
    return EMBER_OK;
}

void em_registry_destroy(em_registry *r)
{
    if (!r)
        return;
    while (r->count > 0)
        em_plugin_close(r->plugins[--r->count]);
    free(r->plugins);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

static const em_plugin *find_plugin(const em_registry *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->plugins[i]->name, name) == 0)
            return r->plugins[i];
    return NULL;
}

ember_status em_registry_load(em_registry *r, const char *path,
                              const em_plugin **out, ember_error *err)
{
    if (out)
        *out = NULL;
    em_plugin *p;
    ember_status s = em_plugin_open(&p, path, r->host, err);
    if (s != EMBER_OK)
        return s;
    pthread_rwlock_wrlock(&r->lock);
    const em_plugin *other = find_plugin(r, p->name);
    if (other) {
        s = ember_errorf(err, EMBER_EEXIST,
                         "%s: duplicate plugin '%s': already loaded from %s",
                         path, p->name, other->path);
        goto refuse;
    }
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 8;
        em_plugin **n = realloc(r->plugins, ncap * sizeof *n);
        if (!n) {
            s = ember_errorf(err, EMBER_ENOMEM, "%s: out of memory", path);
            goto refuse;
        }
        r->plugins = n;
        r->cap = ncap;
    }
    r->plugins[r->count++] = p;
    pthread_rwlock_unlock(&r->lock);
    if (out)
        *out = p;
    return EMBER_OK;
refuse:
    pthread_rwlock_unlock(&r->lock);
    em_plugin_close(p);
    return s;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_plugin_file(const char *dir, const char *name)
{
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 3, ".so") != 0 || name[0] == '.')
        return 0;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return 0;
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

ember_status em_registry_load_dir(em_registry *r, const char *dir,
                                  em_refusal_fn on_refused, void *ctx,
                                  ember_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ember_errorf(err, errno == ENOENT ? EMBER_ENOTFOUND : EMBER_EIO,
                            "plugin directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t count = 0, cap = 0;
    ember_status s = EMBER_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_plugin_file(dir, e->d_name))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **n = realloc(names, cap * sizeof *n);
            if (!n) {
                s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
                goto out;
            }
            names = n;
        }
        if (!(names[count] = strdup(e->d_name))) {
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            goto out;
        }
        count++;
    }
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ember_error why;
        if (em_registry_load(r, path, NULL, &why) != EMBER_OK && on_refused)
            on_refused(ctx, path, &why);
    }
out:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return s;
}

size_t em_registry_count(const em_registry *r)
{
    em_registry *w = (em_registry *)r; /* the lock is not the contents */
    pthread_rwlock_rdlock(&w->lock);
    size_t n = r->count;
    pthread_rwlock_unlock(&w->lock);
    return n;
}

const em_plugin *em_registry_at(const em_registry *r, size_t i)
{
    em_registry *w = (em_registry *)r;
    pthread_rwlock_rdlock(&w->lock);
    const em_plugin *p = i < r->count ? r->plugins[i] : NULL;
    pthread_rwlock_unlock(&w->lock);
    return p;
}

const em_component *em_registry_find(const em_registry *r,
                                     ember_component_kind kind,
                                     const char *qualified)
{
    const char *dot = qualified ? strchr(qualified, '.') : NULL;
    const em_component *c = NULL;
    if (!dot)
        return NULL;
    em_registry *w = (em_registry *)r;
    pthread_rwlock_rdlock(&w->lock);
    size_t n = (size_t)(dot - qualified);
    for (size_t i = 0; i < r->count; i++) {
        const em_plugin *p = r->plugins[i];
        if (strlen(p->name) == n && memcmp(p->name, qualified, n) == 0) {
            c = em_plugin_find(p, kind, dot + 1);
            break;
        }
    }
    pthread_rwlock_unlock(&w->lock);
    return c;
}

ember_status em_registry_default_dir(char *out, size_t cap)
{
    Dl_info info;
    if (dladdr((void *)em_registry_default_dir, &info) == 0 ||
        !info.dli_fname)
        return EMBER_ENOTFOUND;
    const char *slash = strrchr(info.dli_fname, '/');
    size_t dirlen = slash ? (size_t)(slash - info.dli_fname) : 1;
    const char *dir = slash ? info.dli_fname : ".";
    int n = snprintf(out, cap, "%.*s/ember/plugins", (int)dirlen, dir);
    return n < 0 || (size_t)n >= cap ? EMBER_ENOSPC : EMBER_OK;
}
