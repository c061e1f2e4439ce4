/*
 * local_cluster.c — plugin "local_cluster": the cluster manager for
 * local-cluster[E,C,M] — E executor processes with C task slots and M MiB
 * of memory each, on this machine, as Spark's local-cluster master.
 *
 * Each executor is a child process running ember.executor.command (the
 * ember-executor program; the driver sets it) with --kernel ENDPOINT --id
 * exec-K --slots C --memory Mm, plus --plugin for each file in
 * ember.executor.plugins (colon-separated: the plugins the driver loaded
 * by path, so user functions exist in executors too) and
 * --properties-file ember.executor.confFile (the driver's settings, so
 * --conf flags and values set in code reach executors). A thread per child
 * waits for it; a child that exits while the manager runs — killed by a
 * signal, crashed — is reported lost (the kernel reruns its tasks), and a
 * replacement exec-N is started so the cluster keeps its size (at most
 * MAX_CHILDREN processes over the manager's life, so an executor that
 * cannot start does not fork forever).
 */
#define _GNU_SOURCE /* close_range, nftw */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ember/cluster_manager.h"

#define MAX_EXECUTORS 256
/* Executor processes over the manager's life, replacements included. */
#define MAX_CHILDREN 1024

typedef struct child {
    struct lc_state *st;
    char id[32];
    pid_t pid;
    pthread_t waiter;
    int started, exited;
} child;

typedef struct lc_state {
    const ember_host_api *host;
    const ember_cluster_events *events;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    long executors, cores, memory_mb;
    child kids[MAX_CHILDREN];
    long nkids;
    char **argv; /* built once; "--id" value and slot patched per child */
    size_t argc;
} lc_state;

static int parse_master(const char *url, long *e, long *c, long *m)
{
    char tail;
    if (!url || sscanf(url, "local-cluster[%ld,%ld,%ld%c", e, c, m, &tail) !=
                    4 || tail != ']')
        return 0;
    const char *close = strchr(url, ']');
    if (!close || close[1] != '\0')
        return 0;
    return *e >= 1 && *e <= MAX_EXECUTORS && *c >= 1 && *c <= 4096 &&
           *m >= 1 && *m <= (1L << 24);
}

static int lc_accepts(const char *url)
{
    long e, c, m;
    return parse_master(url, &e, &c, &m);
}

static void respawn(lc_state *st);

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Removes the directories a dead executor left behind: ember-executor
 * keeps its shuffle files in <first of ember.local.dir>/ember-shuffle-
 * <pid>-<id> and its cached disk blocks in .../ember-blocks-<pid>-<id>,
 * and deletes them when it exits normally; one killed by a signal cannot. */
static void remove_executor_dirs(lc_state *st, const child *k)
{
    static const char *const kinds[] = {"shuffle", "blocks"};
    char base[4096] = "/tmp", dir[4200];
    size_t len;
    st->host->config_get("ember.local.dir", base, sizeof base, &len);
    char *comma = strchr(base, ',');
    if (comma)
        *comma = '\0';
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if ((size_t)snprintf(dir, sizeof dir, "%s/ember-%s-%ld-%s", base,
                             kinds[i], (long)k->pid, k->id) < sizeof dir)
            nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void *wait_child(void *arg)
{
    child *k = arg;
    lc_state *st = k->st;
    int status = 0;
    siginfo_t info;
    /* Wait without reaping, mark the child exited, then reap: until it
     * is reaped its pid cannot be reused, so lc_kill (which checks
     * `exited` under the lock) never signals a stranger. */
    while (waitid(P_PID, (id_t)k->pid, &info, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR)
        ;
    pthread_mutex_lock(&st->mu);
    k->exited = 1;
    pthread_mutex_unlock(&st->mu);
    while (waitpid(k->pid, &status, 0) < 0 && errno == EINTR)
        ;
    remove_executor_dirs(st, k);
    pthread_mutex_lock(&st->mu);
    int report = !st->stopping;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    if (report) {
        char why[96];
        if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "executor process %ld killed by "
                     "signal %d", (long)k->pid, WTERMSIG(status));
        else
            snprintf(why, sizeof why, "executor process %ld exited with "
                     "status %d", (long)k->pid, WEXITSTATUS(status));
        st->events->executor_lost(st->events->ctx, k->id, why);
        respawn(st);
    }
    return NULL;
}

/* argv: CMD --kernel URL --id ID --slots C --memory Mm [--plugin P]... */
static ember_status build_argv(lc_state *st, const char *endpoint,
                               ember_error *err)
{
    const ember_host_api *h = st->host;
    char cmd[4096], plugins[8192] = "";
    size_t len;
    if (h->config_get("ember.executor.command", cmd, sizeof cmd, &len) !=
        EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL,
                            "local-cluster: ember.executor.command (the "
                            "path of ember-executor) is not set");
    h->config_get("ember.executor.plugins", plugins, sizeof plugins, &len);
    char conffile[4096] = "";
    h->config_get("ember.executor.confFile", conffile, sizeof conffile, &len);
    size_t np = 0;
    for (const char *p = plugins; *p; p++)
        np += *p == ':';
    st->argv = h->alloc((14 + 2 * (np + 1)) * sizeof *st->argv);
    if (!st->argv)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    memset(st->argv, 0, (14 + 2 * (np + 1)) * sizeof *st->argv);
    char num[32], mem[32];
    snprintf(num, sizeof num, "%ld", st->cores);
    snprintf(mem, sizeof mem, "%ldm", st->memory_mb);
    const char *fixed[] = {cmd, "--kernel", endpoint, "--id", "", "--slots",
                           num, "--memory", mem};
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        size_t l = strlen(fixed[i]) + 1;
        st->argv[n] = h->alloc(l < 32 ? 32 : l);
        if (!st->argv[n])
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
        memcpy(st->argv[n++], fixed[i], l);
    }
    for (char *save = NULL, *p = strtok_r(plugins, ":", &save); p;
         p = strtok_r(NULL, ":", &save)) {
        const char *pair[2] = {"--plugin", p};
        for (int i = 0; i < 2; i++) {
            size_t l = strlen(pair[i]) + 1;
            if (!(st->argv[n] = h->alloc(l)))
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            memcpy(st->argv[n++], pair[i], l);
        }
    }
    if (conffile[0]) {
        const char *pair[2] = {"--properties-file", conffile};
        for (int i = 0; i < 2; i++) {
            size_t l = strlen(pair[i]) + 1;
            if (!(st->argv[n] = h->alloc(l)))
                return ember_errorf(err, EMBER_ENOMEM, "out of memory");
            memcpy(st->argv[n++], pair[i], l);
        }
    }
    st->argc = n;
    return EMBER_OK;
}

static ember_status spawn(lc_state *st, child *k, ember_error *err)
{
    /* argv[4] is the --id value, 32 bytes reserved */
    snprintf(st->argv[4], 32, "%s", k->id);
    pid_t pid = fork();
    if (pid == 0) {
        /* the executor gets nothing of the driver's but stdio */
        close_range(3, ~0u, 0);
        execv(st->argv[0], st->argv);
        _exit(127);
    }
    if (pid < 0)
        return ember_errorf(err, EMBER_EIO, "local-cluster: fork: %s",
                            strerror(errno));
    k->pid = pid;
    k->st = st;
    if (pthread_create(&k->waiter, NULL, wait_child, k) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ember_errorf(err, EMBER_ENOMEM,
                            "local-cluster: cannot start a thread");
    }
    k->started = 1;
    st->events->executor_added(st->events->ctx, k->id, "localhost",
                               (uint32_t)st->cores);
    return EMBER_OK;
}

static void lc_stop(void *state);

/* Starts a replacement for an executor that died. */
static void respawn(lc_state *st)
{
    pthread_mutex_lock(&st->mu);
    if (!st->stopping && st->nkids < MAX_CHILDREN) {
        child *k = &st->kids[st->nkids];
        snprintf(k->id, sizeof k->id, "exec-%ld", st->nkids);
        ember_error err;
        if (spawn(st, k, &err) == EMBER_OK)
            st->nkids++;
        else
            st->host->log(EMBER_LOG_ERROR, "local-cluster",
                          "cannot replace a lost executor: %s", err.msg);
    } else if (!st->stopping) {
        st->host->log(EMBER_LOG_ERROR, "local-cluster",
                      "not replacing a lost executor: %d executor "
                      "processes were started already", MAX_CHILDREN);
    }
    pthread_mutex_unlock(&st->mu);
}

static ember_status lc_start(const ember_host_api *host, const char *url,
                             const char *endpoint,
                             const ember_cluster_events *events, void **state,
                             ember_error *err)
{
    long e, c, m;
    if (!parse_master(url, &e, &c, &m))
        return ember_errorf(err, EMBER_EINVAL,
                            "local-cluster: bad master URL '%s' (expected "
                            "local-cluster[EXECUTORS,CORES,MEMORY_MB])", url);
    lc_state *st = host->alloc(sizeof *st);
    if (!st)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    memset(st, 0, sizeof *st);
    st->host = host;
    st->events = events;
    st->executors = e;
    st->cores = c;
    st->memory_mb = m;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    ember_status s = build_argv(st, endpoint, err);
    for (long i = 0; s == EMBER_OK && i < e; i++) {
        child *k = &st->kids[i];
        snprintf(k->id, sizeof k->id, "exec-%ld", i);
        s = spawn(st, k, err);
        if (s == EMBER_OK)
            st->nkids++;
    }
    if (s != EMBER_OK) {
        lc_stop(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

static ember_status lc_request(void *state, uint32_t count, ember_error *err)
{
    lc_state *st = state;
    ember_status s = EMBER_OK;
    pthread_mutex_lock(&st->mu);
    for (uint32_t i = 0; i < count && s == EMBER_OK; i++) {
        if (st->nkids == MAX_CHILDREN) {
            s = ember_errorf(err, EMBER_ENOSPC,
                             "local-cluster: at most %d executor processes",
                             MAX_CHILDREN);
            break;
        }
        child *k = &st->kids[st->nkids];
        snprintf(k->id, sizeof k->id, "exec-%ld", st->nkids);
        if ((s = spawn(st, k, err)) == EMBER_OK)
            st->nkids++;
    }
    pthread_mutex_unlock(&st->mu);
    return s;
}

static ember_status lc_kill(void *state, const char *id, ember_error *err)
{
    lc_state *st = state;
    ember_status s = EMBER_ENOTFOUND;
    pthread_mutex_lock(&st->mu);
    for (long i = 0; i < st->nkids; i++)
        if (strcmp(st->kids[i].id, id) == 0 && !st->kids[i].exited) {
            /* not reaped yet (exited is set before waitpid's caller lets
             * go of the pid), so the pid is still this child's */
            kill(st->kids[i].pid, SIGKILL);
            s = EMBER_OK;
        }
    pthread_mutex_unlock(&st->mu);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "local-cluster: no running executor "
                            "'%s'", id);
    return EMBER_OK;
}

static void lc_stop(void *state)
{
    lc_state *st = state;
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    for (long i = 0; i < st->nkids; i++)
        if (st->kids[i].started && !st->kids[i].exited)
            kill(st->kids[i].pid, SIGTERM);
    /* up to 2 s for a clean exit, then SIGKILL */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    for (;;) {
        int all = 1;
        for (long i = 0; i < st->nkids; i++)
            all &= !st->kids[i].started || st->kids[i].exited;
        if (all || pthread_cond_timedwait(&st->cv, &st->mu, &dl) != 0)
            break;
    }
    for (long i = 0; i < st->nkids; i++)
        if (st->kids[i].started && !st->kids[i].exited)
            kill(st->kids[i].pid, SIGKILL);
    pthread_mutex_unlock(&st->mu);
    for (long i = 0; i < st->nkids; i++)
        if (st->kids[i].started)
            pthread_join(st->kids[i].waiter, NULL);
    for (size_t i = 0; st->argv && st->argv[i]; i++)
        st->host->free(st->argv[i]);
    st->host->free(st->argv);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    st->host->free(st);
}

static const ember_cluster_manager_vtable lc_vt = {
    .accepts = lc_accepts,
    .start = lc_start,
    .request_executors = lc_request,
    .kill_executor = lc_kill,
    .stop = lc_stop,
};

static const ember_component components[] = {
    EMBER_CLUSTER_MANAGER_COMPONENT(
        "processes", "local-cluster[E,C,M]: E executor processes with C "
        "slots and M MiB each on this machine", &lc_vt),
};

EMBER_PLUGIN(local_cluster, "0.1.0",
             "executor processes on this machine (local-cluster[E,C,M])",
             "Apache-2.0", components, NULL, NULL);
