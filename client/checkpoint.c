/*
 * client/checkpoint.c — checkpoints (SEMANTICS S22, docs/engine.md
 * "Checkpoints"): ember_set_checkpoint_dir, ember_checkpoint,
 * ember_local_checkpoint, and their materialisation after the first job
 * that uses a marked dataset.
 *
 * Marking sets "checkpoint": true on the dataset's plan node. After a job
 * over a dataset completes, em_client_checkpoint_after walks its lineage
 * up to the nearest marked datasets (Spark's default
 * checkpointAllMarkedAncestors=false) and, for each:
 *   - reliable: runs a job with the "checkpoint" action
 *     (runtime/ops_checkpoint.c) that writes every partition to
 *     DIR/<session subdir>/rdd-<id>/part-NNNNN — recomputing the dataset,
 *     or reading its cached blocks when it is persisted;
 *   - local: runs a count over the dataset, which is persisted at a disk
 *     level, so that every partition is in a block manager;
 * then replaces the dataset's node by a checkpoint_read node (same id,
 * partitions, partitioner, storage level and name; args.dir or
 * args.local; args.fingerprint, the node's fingerprint before, so the
 * kernel sees the same dataset) with no parents: its lineage is
 * truncated.
 */
#include "client_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag/lineage.h"

/* Set on a thread while it runs a checkpoint's own job, whose end must
 * not start another checkpoint. */
static _Thread_local int in_checkpoint;

/* ---- the directory ------------------------------------------------------ */

/* mkdir -p path (a copy is cut at each '/'); errno set on failure. */
static int make_dirs(const char *path)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return -1;
        p[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

ember_status ember_set_checkpoint_dir(ember_session *s, const char *dir,
                                      ember_error *err)
{
    if (!s || !dir || !*dir)
        return ember_errorf(err, EMBER_EINVAL, "set_checkpoint_dir: %s",
                            s ? "empty directory" : "session is NULL");
    if (make_dirs(dir) != 0)
        return ember_errorf(err, EMBER_EINVAL, "set_checkpoint_dir: cannot "
                            "create directory '%s': %s", dir,
                            strerror(errno));
    if (access(dir, W_OK | X_OK) != 0)
        return ember_errorf(err, EMBER_EINVAL, "set_checkpoint_dir: cannot "
                            "write to '%s': %s", dir, strerror(errno));
    /* a subdirectory of the session's own, as Spark's UUID */
    uint8_t r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = getrandom(r + got, sizeof r - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ember_errorf(err, EMBER_EIO, "set_checkpoint_dir: no "
                                "random bytes: %s", strerror(errno));
        got += (size_t)k;
    }
    char sub[PATH_MAX];
    int n = snprintf(sub, sizeof sub,
                     "%s/%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                     "%02x%02x%02x%02x%02x%02x", dir, r[0], r[1], r[2], r[3],
                     r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
                     r[13], r[14], r[15]);
    /* room for "/rdd-<id>/part-NNNNN" and an attempt's temporary name */
    if (n < 0 || (size_t)n + 64 >= sizeof sub)
        return ember_errorf(err, EMBER_EINVAL, "set_checkpoint_dir: '%s' is "
                            "too long", dir);
    if (mkdir(sub, 0777) != 0)
        return ember_errorf(err, EMBER_EINVAL, "set_checkpoint_dir: cannot "
                            "create directory '%s': %s", sub,
                            strerror(errno));
    pthread_mutex_lock(&s->mu);
    memcpy(s->checkpoint_dir, sub, (size_t)n + 1);
    pthread_mutex_unlock(&s->mu);
    return EMBER_OK;
}

/* ---- marking ------------------------------------------------------------ */

const char *em_client_disk_level(const char *level)
{
    static const char *const to_disk[][2] = {
        {"NONE", "DISK_ONLY"},
        {"MEMORY_ONLY", "MEMORY_AND_DISK"},
        {"MEMORY_ONLY_2", "MEMORY_AND_DISK_2"},
        {"MEMORY_ONLY_SER", "MEMORY_AND_DISK_SER"},
        {"MEMORY_ONLY_SER_2", "MEMORY_AND_DISK_SER_2"},
    };
    for (size_t i = 0; level && i < sizeof to_disk / sizeof to_disk[0]; i++)
        if (strcmp(level, to_disk[i][0]) == 0)
            return em_storage_level_known(to_disk[i][1]);
    /* DISK_ONLY*, MEMORY_AND_DISK* use disk; so does Spark's OFF_HEAP */
    return em_storage_level_known(level);
}

/* Marks r (kind EM_CKPT_*) unless it is marked already; s->mu held. */
static ember_status mark_locked(ember_rdd *r, uint8_t kind, ember_error *err)
{
    if (r->checkpoint)
        return EMBER_OK; /* Spark: checkpointing twice does nothing */
    if (json_object_set_new(r->node, "checkpoint", json_true()) != 0)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    r->checkpoint = kind;
    r->checkpoint_state = EM_CKPT_PENDING;
    return EMBER_OK;
}

ember_status ember_checkpoint(ember_rdd *r, ember_error *err)
{
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "checkpoint: dataset is NULL");
    ember_session *s = r->s;
    pthread_mutex_lock(&s->mu);
    int have_dir = s->checkpoint_dir[0] != '\0';
    pthread_mutex_unlock(&s->mu);
    char conf_dir[PATH_MAX];
    size_t len = 0;
    if (!have_dir &&
        em_conf_get(s->conf, "ember.checkpoint.dir", conf_dir,
                    sizeof conf_dir, &len) == EMBER_OK &&
        len > 0) {
        ember_status st = ember_set_checkpoint_dir(s, conf_dir, err);
        if (st != EMBER_OK)
            return st;
        have_dir = 1;
    }
    if (!have_dir)
        return ember_errorf(err, EMBER_EINVAL, "checkpoint directory has not "
                            "been set (ember_set_checkpoint_dir)");
    pthread_mutex_lock(&s->mu);
    ember_status st = mark_locked(r, EM_CKPT_RELIABLE, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}

ember_status ember_local_checkpoint(ember_rdd *r, ember_error *err)
{
    if (!r)
        return ember_errorf(err, EMBER_EINVAL,
                            "local_checkpoint: dataset is NULL");
    ember_status st = EMBER_OK;
    pthread_mutex_lock(&r->s->mu);
    if (!r->checkpoint) {
        const char *have = em_storage_level_known(
            json_string_value(json_object_get(r->node, "storage")));
        /* Spark: MEMORY_AND_DISK when not persisted, else the level made
         * to use disk — the one exception to the level-change rule */
        const char *want = !have || strcmp(have, "NONE") == 0
                               ? "MEMORY_AND_DISK"
                               : em_client_disk_level(have);
        if (want != have &&
            json_object_set_new(r->node, "storage", json_string(want)) != 0)
            st = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        if (st == EMBER_OK)
            st = mark_locked(r, EM_CKPT_LOCAL, err);
    }
    pthread_mutex_unlock(&r->s->mu);
    return st;
}

int ember_rdd_is_checkpointed(const ember_rdd *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->s->mu);
    int done = r->checkpoint_state == EM_CKPT_DONE;
    pthread_mutex_unlock(&r->s->mu);
    return done;
}

/* ---- materialising ------------------------------------------------------ */

/* r's fingerprint as the kernel computes it, in 16 hex digits. */
static ember_status fingerprint_of(ember_rdd *r, char hex[17],
                                   ember_error *err)
{
    size_t len;
    char *plan = em_client_plan(r, &len);
    if (!plan)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    em_lineage *l = NULL;
    ember_status st = em_lineage_decode(&l, plan, len, NULL, err);
    free(plan);
    if (st != EMBER_OK)
        return st;
    int64_t at = em_lineage_find(l, r->id);
    if (at < 0)
        st = ember_errorf(err, EMBER_EINTERNAL, "dataset %" PRIu64 " is not "
                          "in its own plan", r->id);
    else
        snprintf(hex, 17, "%016" PRIx64, l->nodes[at].fingerprint);
    em_lineage_free(l);
    return st;
}

/* Writes every partition of r under root/rdd-<id>; *dir the directory. */
static ember_status write_files(ember_rdd *r, const char *root,
                                char dir[PATH_MAX], ember_error *err)
{
    int n = snprintf(dir, PATH_MAX, "%s/rdd-%" PRIu64, root, r->id);
    if (n < 0 || n >= PATH_MAX)
        return ember_errorf(err, EMBER_EINVAL, "checkpoint directory '%s' is "
                            "too long", root);
    /* what a failed earlier try left */
    em_client_rmtree(dir);
    if (mkdir(dir, 0777) != 0)
        return ember_errorf(err, EMBER_EIO, "cannot create '%s': %s", dir,
                            strerror(errno));
    json_t *a = json_pack("{s:s,s:s}", "kind", "checkpoint", "dir", dir);
    char *action = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!action)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    em_job_result res;
    ember_status st = em_client_run(r, NULL, 0, action, &res, err);
    em_job_result_free(&res);
    free(action);
    return st;
}

/* Replaces r's node by a checkpoint_read node with args (taken). */
static ember_status truncate_lineage(ember_rdd *r, json_t *args,
                                     ember_error *err)
{
    json_t *node = json_pack("{s:s,s:I,s:I,s:o}", "op", "checkpoint_read",
                             "id", (json_int_t)r->id, "partitions",
                             (json_int_t)r->partitions, "args", args);
    if (!node || (r->partitioner &&
                  json_object_set(node, "partitioner", r->partitioner) != 0)) {
        json_decref(node);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_session *s = r->s;
    pthread_mutex_lock(&s->mu);
    json_t *old = r->node;
    /* what the node keeps: its level (a local checkpoint lives in the
     * block managers) and its label */
    static const char *const keep[] = {"storage", "name"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(old, keep[i]);
        if (v)
            json_object_set(node, keep[i], v);
    }
    r->node = node;
    r->nparents = 0;
    r->checkpoint_state = EM_CKPT_DONE;
    pthread_mutex_unlock(&s->mu);
    json_decref(old);
    return EMBER_OK;
}

/* Checkpoints r (marked, state WRITING). */
static ember_status materialise(ember_rdd *r, ember_error *err)
{
    ember_session *s = r->s;
    char fp[17], root[PATH_MAX], dir[PATH_MAX];
    ember_status st = fingerprint_of(r, fp, err);
    if (st != EMBER_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    memcpy(root, s->checkpoint_dir, sizeof root);
    int local = r->checkpoint == EM_CKPT_LOCAL;
    pthread_mutex_unlock(&s->mu);
    json_t *args;
    if (local) {
        /* every partition into a block manager: cached ones are read
         * (cheap), the others computed and stored */
        em_job_result res;
        st = em_client_run(r, NULL, 0, "{\"kind\":\"count\"}", &res, err);
        em_job_result_free(&res);
        if (st != EMBER_OK)
            return st;
        args = json_pack("{s:b,s:s}", "local", 1, "fingerprint", fp);
    } else {
        if (!root[0])
            return ember_errorf(err, EMBER_EINVAL, "checkpoint directory has "
                                "not been set (ember_set_checkpoint_dir)");
        st = write_files(r, root, dir, err);
        if (st != EMBER_OK)
            return st;
        args = json_pack("{s:s,s:s}", "dir", dir, "fingerprint", fp);
    }
    if (!args)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    return truncate_lineage(r, args, err);
}

/* Appends to *list (growing it) the nearest marked datasets that are not
 * checkpointed yet on each path up from r, setting them WRITING; s->mu
 * held. */
static ember_status nearest_marked_locked(ember_rdd *r, ember_rdd ***list,
                                          size_t *n)
{
    size_t cap = 64, top = 0, nseen = 0, lcap = 0;
    ember_rdd **stack = malloc(cap * sizeof *stack);
    ember_rdd **seen = malloc(cap * sizeof *seen);
    ember_status st = EMBER_OK;
    if (!stack || !seen) {
        st = EMBER_ENOMEM;
        goto done;
    }
    stack[top++] = r;
    while (top) {
        ember_rdd *x = stack[--top];
        int dup = 0;
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = seen[i] == x;
        if (dup)
            continue;
        if (nseen == cap || top + x->nparents >= cap) {
            cap = cap * 2 + x->nparents;
            ember_rdd **a = realloc(seen, cap * sizeof *a);
            if (!a) {
                st = EMBER_ENOMEM;
                goto done;
            }
            seen = a;
            a = realloc(stack, cap * sizeof *a);
            if (!a) {
                st = EMBER_ENOMEM;
                goto done;
            }
            stack = a;
        }
        seen[nseen++] = x;
        if (x->checkpoint) {
            /* the nearest mark ends the walk up this path, whatever its
             * state (another thread may be writing it) */
            if (x->checkpoint_state != EM_CKPT_PENDING)
                continue;
            if (*n == lcap) {
                lcap = lcap ? 2 * lcap : 8;
                ember_rdd **a = realloc(*list, lcap * sizeof *a);
                if (!a) {
                    st = EMBER_ENOMEM;
                    goto done;
                }
                *list = a;
            }
            (*list)[(*n)++] = x;
            x->checkpoint_state = EM_CKPT_WRITING;
            continue;
        }
        for (uint32_t i = 0; i < x->nparents; i++)
            stack[top++] = x->parents[i];
    }
done:
    free(stack);
    free(seen);
    return st;
}

ember_status em_client_checkpoint_after(ember_rdd *r, ember_error *err)
{
    if (in_checkpoint || !r)
        return EMBER_OK;
    ember_session *s = r->s;
    ember_rdd **list = NULL;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    ember_status st = nearest_marked_locked(r, &list, &n);
    if (st != EMBER_OK) {
        for (size_t i = 0; i < n; i++)
            list[i]->checkpoint_state = EM_CKPT_PENDING;
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (st != EMBER_OK) {
        free(list);
        return ember_errorf(err, st, "out of memory");
    }
    in_checkpoint = 1;
    for (size_t i = 0; i < n; i++) {
        ember_error e = {0};
        ember_status one = st == EMBER_OK ? materialise(list[i], &e)
                                          : EMBER_ECANCELED;
        if (one != EMBER_OK) {
            /* still marked: the next job tries again */
            pthread_mutex_lock(&s->mu);
            list[i]->checkpoint_state = EM_CKPT_PENDING;
            pthread_mutex_unlock(&s->mu);
        }
        if (one != EMBER_OK && st == EMBER_OK)
            st = ember_errorf(err, one, "checkpoint of dataset %" PRIu64
                              ": %s", list[i]->id, e.msg);
    }
    in_checkpoint = 0;
    free(list);
    return st;
}
