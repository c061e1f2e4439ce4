/* runtime/block_replicate.c — see block_replicate.h. */
#include "runtime/block_replicate.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "runtime/fetch.h"

#define LOG_SRC "blocks"

/* A queued copy: the REPLICATE message, decoded into owned strings. */
typedef struct job {
    uint64_t app, dataset;
    uint32_t partition;
    char *level, *source_id, *endpoint;
    struct job *next;
} job;

struct em_replicator {
    em_block_mgr *mgr;
    char *executor_id;
    int64_t timeout_ms;
    em_replicator_send_fn send;
    void *send_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int stopping, joined;
    uint64_t cur_key;         /* the copy being made, when busy */
    int busy, cur_forgotten;  /* its dataset was unpersisted meanwhile */
    em_fetch_client *cur;     /* its fetch, for destroy to cancel */
    uint64_t done, failed;
    pthread_t thread;
};

static uint64_t key_of(uint64_t app, uint64_t dataset)
{
    /* as runtime/ops_cache.c's em_op_cache_key */
    return app << 32 | (dataset & 0xffffffffu);
}

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->level);
    free(j->source_id);
    free(j->endpoint);
    free(j);
}

/* The copy itself; r (nullable) lets destroy cancel the fetch. */
static ember_status copy_block(em_replicator *r, em_block_mgr *m,
                               const em_msg_replicate *req,
                               int64_t timeout_ms, em_block_report *report,
                               ember_error *err)
{
    char level_name[64], endpoint[512];
    em_storage_level level;
    ember_status s;
    if (em_bytes_to_cstr(req->level, level_name, sizeof level_name) !=
        EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "REPLICATE: a level of %zu "
                            "bytes (at most %zu)", req->level.len,
                            sizeof level_name - 1);
    if (em_bytes_to_cstr(req->source_endpoint, endpoint, sizeof endpoint) !=
        EMBER_OK)
        return ember_errorf(err, EMBER_EINVAL, "REPLICATE: a source "
                            "endpoint of %zu bytes (at most %zu)",
                            req->source_endpoint.len, sizeof endpoint - 1);
    if ((s = em_storage_level_parse(level_name, &level, err)) != EMBER_OK)
        return s;
    uint64_t key = key_of(req->app, req->dataset);
    em_fetch_client *c = NULL;
    ember_buf block = ember_buf_heap();
    em_block_put_result res = {0};
    uint64_t count = 0;
    if ((s = em_fetch_open(&c, endpoint, timeout_ms, err)) != EMBER_OK)
        goto done;
    if (r) {
        pthread_mutex_lock(&r->mu);
        r->cur = c;
        if (r->stopping)
            em_fetch_cancel(c);
        pthread_mutex_unlock(&r->mu);
    }
    s = em_fetch_block(c, key, req->partition, &block, &count, err);
    if (r) {
        pthread_mutex_lock(&r->mu);
        r->cur = NULL;
        pthread_mutex_unlock(&r->mu);
    }
    if (s != EMBER_OK)
        goto done;
    ember_batch b = {block.data, block.len, count};
    s = em_block_mgr_put(m, key, req->partition, level, &b, &res, err);
    if (s == EMBER_OK)
        em_block_report_note_put(report, req->app, req->dataset,
                                 req->partition, &res);
done:
    em_block_put_result_release(&res);
    ember_buf_release(&block);
    em_fetch_close(c);
    return s;
}

ember_status em_replicate_block(em_block_mgr *m, const em_msg_replicate *req,
                                int64_t timeout_ms, em_block_report *report,
                                ember_error *err)
{
    return copy_block(NULL, m, req, timeout_ms, report, err);
}

/* Makes one queued copy and reports it (r->mu not held). */
static void run_job(em_replicator *r, const job *j)
{
    em_msg_replicate req = {
        .app = j->app,
        .dataset = j->dataset,
        .partition = j->partition,
        .level = {(const uint8_t *)j->level, strlen(j->level)},
        .source_id = {(const uint8_t *)j->source_id, strlen(j->source_id)},
        .source_endpoint = {(const uint8_t *)j->endpoint,
                            strlen(j->endpoint)},
    };
    em_block_report rep = {0};
    ember_error err = {0};
    ember_status s = copy_block(r, r->mgr, &req, r->timeout_ms, &rep, &err);
    pthread_mutex_lock(&r->mu);
    int forgotten = r->cur_forgotten, stopping = r->stopping;
    if (s == EMBER_OK)
        r->done++;
    else
        r->failed++;
    pthread_mutex_unlock(&r->mu);
    if (s != EMBER_OK) {
        if (!stopping)
            em_log(EMBER_LOG_WARN, LOG_SRC, "executor %s: no copy of "
                   "dataset %" PRIu64 " partition %" PRIu32 " (application "
                   "%" PRIu64 ", %s) from executor %s: %s; it is held by "
                   "fewer executors", r->executor_id, j->dataset,
                   j->partition, j->app, j->level, j->source_id, err.msg);
        goto out;
    }
    if (forgotten) {
        /* unpersisted while it was copied: REMOVE_BLOCKS came too early
         * to find it */
        (void)em_block_mgr_remove_dataset(r->mgr, key_of(j->app,
                                                         j->dataset));
        goto out;
    }
    if (rep.n == 0) {
        em_log(EMBER_LOG_WARN, LOG_SRC, "executor %s: no room for a copy "
               "of dataset %" PRIu64 " partition %" PRIu32 " at %s; it is "
               "held by fewer executors", r->executor_id, j->dataset,
               j->partition, j->level);
        goto out;
    }
    ember_buf msg = ember_buf_heap();
    ember_buf blob = ember_buf_heap();
    if (em_block_report_encode(&rep, &blob) == EMBER_OK) {
        em_msg_block_stored bs = {{blob.data, blob.len}};
        if (em_msg_encode_block_stored(&msg, &bs) == EMBER_OK &&
            r->send(r->send_ctx, msg.data, msg.len) == EMBER_OK)
            em_log(EMBER_LOG_DEBUG, LOG_SRC, "executor %s: copied dataset "
                   "%" PRIu64 " partition %" PRIu32 " from executor %s",
                   r->executor_id, j->dataset, j->partition, j->source_id);
    }
    ember_buf_release(&msg);
    ember_buf_release(&blob);
out:
    em_block_report_release(&rep);
}

static void *replicator_main(void *arg)
{
    em_replicator *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stopping)
            break;
        job *j = r->head;
        r->head = j->next;
        if (!r->head)
            r->tail = NULL;
        r->busy = 1;
        r->cur_key = key_of(j->app, j->dataset);
        r->cur_forgotten = 0;
        pthread_mutex_unlock(&r->mu);
        run_job(r, j);
        job_free(j);
        pthread_mutex_lock(&r->mu);
        r->busy = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

ember_status em_replicator_create(em_replicator **out, em_block_mgr *m,
                                  const char *executor_id, int64_t timeout_ms,
                                  em_replicator_send_fn send, void *ctx,
                                  ember_error *err)
{
    *out = NULL;
    em_replicator *r = calloc(1, sizeof *r);
    if (!r || !(r->executor_id = strdup(executor_id ? executor_id : ""))) {
        free(r);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    r->mgr = m;
    r->timeout_ms = timeout_ms;
    r->send = send;
    r->send_ctx = ctx;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, replicator_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r->executor_id);
        free(r);
        return ember_errorf(err, EMBER_EINTERNAL, "cannot start the block "
                            "replication thread");
    }
    *out = r;
    return EMBER_OK;
}

static char *dup_bytes(em_bytes b)
{
    char *s = malloc(b.len + 1);
    if (s) {
        if (b.len)
            memcpy(s, b.data, b.len);
        s[b.len] = '\0';
    }
    return s;
}

void em_replicator_submit(em_replicator *r, const uint8_t *msg, size_t len)
{
    em_msg_replicate m;
    ember_error err = {0};
    if (em_msg_decode_replicate(msg, len, &m, &err) != EMBER_OK) {
        em_log(EMBER_LOG_ERROR, LOG_SRC, "bad REPLICATE: %s", err.msg);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (j) {
        j->app = m.app;
        j->dataset = m.dataset;
        j->partition = m.partition;
        j->level = dup_bytes(m.level);
        j->source_id = dup_bytes(m.source_id);
        j->endpoint = dup_bytes(m.source_endpoint);
    }
    if (!j || !j->level || !j->source_id || !j->endpoint) {
        job_free(j);
        em_log(EMBER_LOG_WARN, LOG_SRC, "out of memory: no copy of dataset "
               "%" PRIu64 " partition %" PRIu32, m.dataset, m.partition);
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void em_replicator_forget(em_replicator *r, uint64_t key)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    job **pp = &r->head, *prev = NULL;
    while (*pp) {
        job *j = *pp;
        if (key_of(j->app, j->dataset) == key) {
            *pp = j->next;
            job_free(j);
            continue;
        }
        prev = j;
        pp = &j->next;
    }
    r->tail = prev;
    if (r->busy && r->cur_key == key)
        r->cur_forgotten = 1;
    pthread_mutex_unlock(&r->mu);
}

void em_replicator_counts(em_replicator *r, uint64_t *done, uint64_t *failed)
{
    pthread_mutex_lock(&r->mu);
    *done = r->done;
    *failed = r->failed;
    pthread_mutex_unlock(&r->mu);
}

void em_replicator_stop(em_replicator *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    int joined = r->joined;
    r->stopping = 1;
    r->joined = 1;
    if (r->cur)
        em_fetch_cancel(r->cur);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (!joined)
        pthread_join(r->thread, NULL);
}

void em_replicator_destroy(em_replicator *r)
{
    if (!r)
        return;
    em_replicator_stop(r);
    while (r->head) {
        job *j = r->head;
        r->head = j->next;
        job_free(j);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->executor_id);
    free(r);
}
