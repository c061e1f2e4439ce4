/*
 * core/server.c — the kernel as a service (see ember/kernel/server.h):
 * executor connections arrive through an em_link server and are bridged
 * to em_kernel connections; the loop runs on its own thread.
 *
 * Lifetime of a connection: the link's accept creates a bridge and opens a
 * kernel connection for it. Link callbacks (NNG threads) feed the kernel;
 * the kernel's send (loop thread) writes to the link. When the peer goes,
 * the link's closed() closes the kernel connection; when the kernel is
 * done with the connection its closed callback frees the bridge. At stop
 * the link server is closed first (no link callback runs after that), then
 * the kernel is destroyed.
 */
#include "ember/kernel/server.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/kernel/log.h"
#include "ember/kernel/plugin.h"
#include "bcast/bcast.h"
#include "core/loop.h"
#include "msg/link.h"
#include "msg/msg.h"

#define LOG_SRC "server"

typedef struct bridge bridge;

struct em_server {
    em_kernel *k;
    em_link_server *links;
    pthread_t loop_thread;
    int loop_started;
    char url[256];
    em_bcast *bcast;       /* broadcast values, served to executors here */
    pthread_mutex_t mu;    /* bridges */
    bridge *bridges;       /* every connection, for REMOVE_BROADCAST */
};

struct bridge {
    em_server *srv;
    pthread_mutex_t mu;
    em_link *link;   /* NULL once the link is closed */
    int kernel_gone; /* the kernel's closed callback ran */
    uint64_t conn_id;
    bridge *prev, *next; /* srv->bridges, under srv->mu */
};

/* Whoever of the link and the kernel lets go second frees the bridge. */
static void bridge_free(bridge *b)
{
    em_server *srv = b->srv;
    pthread_mutex_lock(&srv->mu);
    if (b->prev)
        b->prev->next = b->next;
    else if (srv->bridges == b)
        srv->bridges = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pthread_mutex_unlock(&srv->mu);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* em_bcast's tell: a REMOVE_BROADCAST to every executor connection. */
static void bcast_tell(void *ctx, const uint8_t *msg, size_t len)
{
    em_server *srv = ctx;
    pthread_mutex_lock(&srv->mu);
    for (bridge *b = srv->bridges; b; b = b->next) {
        pthread_mutex_lock(&b->mu);
        if (b->link)
            em_link_send(b->link, msg, len);
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_unlock(&srv->mu);
}

/* BCAST_FETCH is answered here, on the link's thread, from the broadcast
 * table: the kernel's loop never copies broadcast bytes. */
static void answer_fetch(em_server *srv, em_link *l, const uint8_t *data,
                         size_t len)
{
    ember_buf out = ember_buf_heap();
    ember_error err = {0};
    if (em_bcast_answer(srv->bcast, data, len, &out, &err) == EMBER_OK)
        em_link_send(l, out.data, out.len);
    else
        em_log(EMBER_LOG_ERROR, LOG_SRC, "BCAST_FETCH refused: %s", err.msg);
    ember_buf_release(&out);
}

static void kernel_send(void *ctx, const uint8_t *msg, size_t len)
{
    bridge *b = ctx;
    pthread_mutex_lock(&b->mu);
    if (b->link)
        em_link_send(b->link, msg, len);
    pthread_mutex_unlock(&b->mu);
}

static void kernel_closed(void *ctx)
{
    bridge *b = ctx;
    pthread_mutex_lock(&b->mu);
    em_link *l = b->link;
    b->kernel_gone = 1;
    pthread_mutex_unlock(&b->mu);
    if (l)
        /* The kernel let go first (executor lost by heartbeat, or the
         * kernel is being destroyed): the link's closed() frees b. */
        em_link_close_async(l);
    else
        bridge_free(b);
}

static void link_recv(void *ctx, em_link *l, const uint8_t *data, size_t len)
{
    (void)ctx;
    bridge *b = em_link_user(l);
    pthread_mutex_lock(&b->mu);
    int live = !b->kernel_gone;
    pthread_mutex_unlock(&b->mu);
    em_msg_type type;
    if (live && em_msg_type_of(data, len, &type, NULL) == EMBER_OK &&
        type == EM_MSG_BCAST_FETCH)
        answer_fetch(b->srv, l, data, len);
    else if (live)
        em_kernel_conn_recv(b->srv->k, b->conn_id, data, len);
}

static void link_closed(void *ctx, em_link *l, const char *reason)
{
    (void)ctx;
    bridge *b = em_link_user(l);
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->link = NULL;
    int gone = b->kernel_gone;
    pthread_mutex_unlock(&b->mu);
    if (gone)
        bridge_free(b);
    else
        em_kernel_conn_close(b->srv->k, b->conn_id,
                             reason ? reason : "disconnected");
}

static ember_status link_accept(void *ctx, em_link *l, em_link_handler *h)
{
    em_server *srv = ctx;
    bridge *b = calloc(1, sizeof *b);
    if (!b)
        return EMBER_ENOMEM;
    pthread_mutex_init(&b->mu, NULL);
    b->srv = srv;
    b->link = l;
    em_link_set_user(l, b);
    *h = (em_link_handler){srv, link_recv, link_closed};
    /* listed before the kernel knows it: once posted, the kernel may
     * close the connection and free b (bridge_free unlists it) */
    pthread_mutex_lock(&srv->mu);
    b->next = srv->bridges;
    if (b->next)
        b->next->prev = b;
    srv->bridges = b;
    pthread_mutex_unlock(&srv->mu);
    ember_status s = em_kernel_conn_open(srv->k, kernel_send, kernel_closed,
                                         b, &b->conn_id);
    if (s != EMBER_OK) {
        em_link_set_user(l, NULL);
        bridge_free(b);
    }
    return s;
}

static void *loop_main(void *arg)
{
    em_server *srv = arg;
    int64_t r = em_kernel_run(srv->k, EM_KERNEL_RUN_DEFAULT);
    if (r < 0)
        em_log(EMBER_LOG_ERROR, LOG_SRC, "kernel loop ended: %s",
               ember_status_name((ember_status)r));
    return NULL;
}

/* The cluster manager component that accepts master, or NULL. */
static const ember_cluster_manager_vtable *
find_cluster_manager(const em_registry *r, const char *master)
{
    for (size_t i = 0; r && i < em_registry_count(r); i++) {
        const em_plugin *p = em_registry_at(r, i);
        for (size_t c = 0; c < p->component_count; c++) {
            const em_component *cm = &p->components[c];
            if (cm->kind != EMBER_KIND_CLUSTER_MANAGER)
                continue;
            const ember_cluster_manager_vtable *vt = cm->vtable;
            if (vt->accepts(master))
                return vt;
        }
    }
    return NULL;
}

ember_status em_server_start(em_server **out, const em_server_opts *o,
                             ember_error *err)
{
    static _Atomic unsigned seq;
    *out = NULL;
    em_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    pthread_mutex_init(&srv->mu, NULL);
    em_kernel_opts ko = {o->conf, o->state_path, o->registry, NULL};
    ember_status s = em_kernel_create(&srv->k, &ko, err);
    if (s != EMBER_OK)
        goto fail;
    int64_t block = (int64_t)EM_BCAST_BLOCK_SIZE_DEFAULT;
    if (o->conf &&
        (s = em_conf_get_size(o->conf, "ember.broadcast.blockSize", block,
                              &block, err)) != EMBER_OK)
        goto fail;
    if (block < 1024 || block > ((int64_t)1 << 30)) {
        s = ember_errorf(err, EMBER_EINVAL, "ember.broadcast.blockSize: %"
                         PRId64 " bytes is outside 1k..1g", block);
        goto fail;
    }
    if ((s = em_bcast_create(&srv->bcast, (size_t)block, o->state_path,
                             bcast_tell, srv, err)) != EMBER_OK)
        goto fail;
    char url[256];
    if (o->executor_url)
        snprintf(url, sizeof url, "%s", o->executor_url);
    else
        snprintf(url, sizeof url, "inproc://ember-%ld-%u/executors",
                 (long)getpid(), atomic_fetch_add(&seq, 1));
    if ((s = em_link_server_open(&srv->links, url, link_accept, srv, err)) !=
        EMBER_OK)
        goto fail;
    snprintf(srv->url, sizeof srv->url, "%s",
             em_link_server_url(srv->links));
    if (o->master) {
        const ember_cluster_manager_vtable *vt =
            find_cluster_manager(o->registry, o->master);
        if (!vt) {
            s = ember_errorf(err, EMBER_ENOTFOUND,
                             "no cluster manager accepts master URL '%s' "
                             "(is its plugin loaded?)", o->master);
            goto fail;
        }
        /* The manager decides how many executors the URL asks for. */
        if ((s = em_kernel_start_cluster(srv->k, vt, o->master, srv->url, 0,
                                         err)) != EMBER_OK)
            goto fail;
    }
    if (pthread_create(&srv->loop_thread, NULL, loop_main, srv) != 0) {
        s = ember_errorf(err, EMBER_ENOMEM, "cannot start the loop thread");
        goto fail;
    }
    srv->loop_started = 1;
    *out = srv;
    return EMBER_OK;
fail:
    em_server_stop(srv);
    return s;
}

em_kernel *em_server_kernel(em_server *s)
{
    return s->k;
}

const char *em_server_executor_url(const em_server *s)
{
    return s->url;
}

typedef struct call {
    void (*fn)(void *);
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} call;

static void run_call(em_loop *loop, void *ctx)
{
    (void)loop;
    call *c = ctx;
    if (c->fn)
        c->fn(c->ctx);
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void drop_call(em_loop *loop, void *ctx)
{
    (void)loop;
    call *c = ctx;
    c->fn = NULL;
    run_call(loop, c);
}

ember_status em_server_call(em_server *s, void (*fn)(void *ctx), void *ctx)
{
    call c = {fn, ctx, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    ember_status st = em_loop_post(em_kernel_loop(s->k), run_call, drop_call,
                                   &c);
    if (st != EMBER_OK)
        return st;
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    return c.fn ? EMBER_OK : EMBER_ECANCELED;
}

void em_server_stop(em_server *s)
{
    if (!s)
        return;
    if (s->loop_started) {
        em_kernel_stop(s->k);
        pthread_join(s->loop_thread, NULL);
    }
    em_link_server_close(s->links);
    em_kernel_destroy(s->k);
    em_bcast_destroy(s->bcast);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

ember_status em_server_broadcast_put(em_server *s, uint64_t app, uint64_t id,
                                     const void *data, size_t len,
                                     ember_error *err)
{
    return em_bcast_put(s->bcast, app, id, data, len, err);
}

ember_status em_server_broadcast_drop(em_server *s, uint64_t app,
                                      uint64_t id, int destroy,
                                      ember_error *err)
{
    return em_bcast_drop(s->bcast, app, id,
                         destroy ? EM_BCAST_DROP_DESTROY
                                 : EM_BCAST_DROP_UNPERSIST,
                         err);
}

void em_server_broadcast_app_close(em_server *s, uint64_t app)
{
    em_bcast_app_close(s->bcast, app);
}

uint32_t em_master_slots(const char *m, long *failures)
{
    long a = 0, b = 0, c = 0;
    char star;
    *failures = 0;
    if (strcmp(m, "local") == 0)
        return 1;
    /* local[*,F] before local[*]: "%c]" would match the '*' of both */
    if (sscanf(m, "local[*,%ld]", &b) == 1) {
        *failures = b;
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (uint32_t)n : 1;
    }
    if (sscanf(m, "local[%c]", &star) == 1 && star == '*') {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (uint32_t)n : 1;
    }
    if (sscanf(m, "local[%ld,%ld]", &a, &b) == 2) {
        *failures = b;
        return a > 0 ? (uint32_t)a : 1;
    }
    if (sscanf(m, "local[%ld]", &a) == 1)
        return a > 0 ? (uint32_t)a : 1;
    if (sscanf(m, "local-cluster[%ld,%ld,%ld]", &a, &b, &c) == 3)
        return a > 0 && b > 0 ? (uint32_t)(a * b) : 1;
    return 1;
}
