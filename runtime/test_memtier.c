/* runtime/test_memtier.c — see test_memtier.h. */
#include "runtime/test_memtier.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One lock for every memtier: a zeroed memtier needs no initialising.
 * `changed` is signalled whenever a gate opens or a call reaches one. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

/* Waits while t's gate holds calls of kind op for id. mu held. */
static void gate_pass(memtier *t, const char *id, unsigned op)
{
    if (!(t->gate_ops & op) || strcmp(t->gate_id, id) != 0)
        return;
    t->gate_held++;
    pthread_cond_broadcast(&changed);
    while ((t->gate_ops & op) && strcmp(t->gate_id, id) == 0)
        pthread_cond_wait(&changed, &mu);
    t->gate_held--;
}

static mblock **mem_find(memtier *t, const char *id)
{
    mblock **pp = &t->head;
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

static ember_status mem_put(void *st, const char *id, const ember_batch *b,
                            ember_error *err)
{
    memtier *t = st;
    ember_status s = EMBER_OK;
    pthread_mutex_lock(&mu);
    gate_pass(t, id, MEM_GATE_PUT);
    if (t->enospc) {
        s = ember_errorf(err, EMBER_ENOSPC, "memory tier full");
        goto done;
    }
    if (*mem_find(t, id)) {
        s = ember_errorf(err, EMBER_EEXIST, "%s exists", id);
        goto done;
    }
    mblock *x = calloc(1, sizeof *x);
    if (x == NULL) {
        s = EMBER_ENOMEM;
        goto done;
    }
    x->data = malloc(b->len ? b->len : 1);
    if (x->data == NULL) {
        free(x);
        s = EMBER_ENOMEM;
        goto done;
    }
    if (b->len)
        memcpy(x->data, b->data, b->len);
    snprintf(x->id, sizeof x->id, "%s", id);
    x->len = b->len;
    x->count = b->count;
    x->next = t->head;
    t->head = x;
    t->blocks++;
    t->bytes += b->len;
done:
    pthread_mutex_unlock(&mu);
    return s;
}

static ember_status mem_get(void *st, const char *id, ember_buf *out,
                            uint64_t *count, ember_error *err)
{
    memtier *t = st;
    ember_status s;
    pthread_mutex_lock(&mu);
    gate_pass(t, id, MEM_GATE_GET);
    mblock *x = *mem_find(t, id);
    if (x == NULL) {
        s = ember_errorf(err, EMBER_ENOTFOUND, "%s absent", id);
    } else {
        s = ember_buf_append(out, x->data, x->len);
        if (s == EMBER_OK)
            *count = x->count;
    }
    pthread_mutex_unlock(&mu);
    return s;
}

/* Removes id from t. mu held. */
static ember_status remove_locked(memtier *t, const char *id,
                                  ember_error *err)
{
    mblock **pp = mem_find(t, id);
    mblock *x = *pp;
    if (x == NULL)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s absent", id);
    *pp = x->next;
    t->blocks--;
    t->bytes -= x->len;
    free(x->data);
    free(x);
    return EMBER_OK;
}

static ember_status mem_remove(void *st, const char *id, ember_error *err)
{
    pthread_mutex_lock(&mu);
    ember_status s = remove_locked(st, id, err);
    pthread_mutex_unlock(&mu);
    return s;
}

void mem_free_all(memtier *t)
{
    pthread_mutex_lock(&mu);
    while (t->head)
        (void)remove_locked(t, t->head->id, NULL);
    pthread_mutex_unlock(&mu);
}

void mem_gate_close(memtier *t, const char *id, unsigned ops)
{
    pthread_mutex_lock(&mu);
    snprintf(t->gate_id, sizeof t->gate_id, "%s", id);
    t->gate_ops = ops;
    pthread_mutex_unlock(&mu);
}

bool mem_gate_wait_held(memtier *t, unsigned n, int timeout_s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s;
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (t->gate_held < n && rc == 0)
        rc = pthread_cond_timedwait(&changed, &mu, &until);
    bool ok = t->gate_held >= n;
    pthread_mutex_unlock(&mu);
    return ok;
}

void mem_gate_open(memtier *t)
{
    pthread_mutex_lock(&mu);
    t->gate_ops = 0;
    t->gate_id[0] = '\0';
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&mu);
}

const ember_storage_vtable mem_vt = {
    EMBER_STORAGE_MEMORY, 1, NULL, NULL, mem_put, mem_get, mem_remove};
