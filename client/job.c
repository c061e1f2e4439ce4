/*
 * client/job.c — running one job on the session's kernel (embedded, or
 * emberd's through em_client_submit) and gathering its per-partition
 * results.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct waiter {
    ember_session *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    em_job_result *res;
    int ended;
    int lost_result; /* a result could not be kept (out of memory) */
    ember_status status;
    char message[512];
} waiter;

static void on_result(void *ctx, uint64_t job_id, uint32_t partition,
                      const uint8_t *data, size_t len)
{
    waiter *w = ctx;
    em_job_result *res = w->res;
    uint32_t done;
    pthread_mutex_lock(&w->mu);
    for (uint32_t i = 0; i < res->nparts; i++) {
        em_part_result *p = &res->parts[i];
        if (p->partition != partition || p->have)
            continue;
        p->data = malloc(len ? len : 1);
        if (p->data) {
            if (len) /* an empty result may come without bytes (NULL) */
                memcpy(p->data, data, len);
            p->len = len;
            p->have = 1;
            res->order[res->ndone++] = i;
        } else {
            w->lost_result = 1; /* the job must not look complete */
        }
        break;
    }
    done = res->ndone;
    pthread_mutex_unlock(&w->mu);
    if (w->s->progress)
        w->s->progress(w->s->progress_ctx, job_id, done, res->nparts);
}

static void on_end(void *ctx, uint64_t job_id, ember_status st,
                   const char *message)
{
    (void)job_id;
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->ended = 1;
    w->status = st;
    snprintf(w->message, sizeof w->message, "%s", message ? message : "");
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The values of the session's accumulators, just before the end. */
static void on_accums(void *ctx, uint64_t job_id, const uint8_t *values,
                      size_t len)
{
    (void)job_id;
    waiter *w = ctx;
    em_client_accums_update(w->s, values, len);
}

void em_job_result_free(em_job_result *res)
{
    if (!res)
        return;
    for (uint32_t i = 0; res->parts && i < res->nparts; i++)
        free(res->parts[i].data);
    free(res->parts);
    free(res->order);
    memset(res, 0, sizeof *res);
}

ember_status em_client_run(ember_rdd *r, const uint32_t *parts,
                           uint32_t nparts, const char *action,
                           em_job_result *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return ember_errorf(err, EMBER_EINVAL, "dataset is NULL");
    ember_session *s = r->s;
    if (!parts)
        nparts = r->partitions;
    out->nparts = nparts;
    out->parts = calloc(nparts ? nparts : 1, sizeof *out->parts);
    out->order = calloc(nparts ? nparts : 1, sizeof *out->order);
    if (!out->parts || !out->order)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < nparts; i++)
        out->parts[i].partition = parts ? parts[i] : i;
    if (nparts == 0)
        return EMBER_OK; /* nothing to compute: no job (Spark runs none) */
    size_t plan_len;
    char *plan = em_client_plan(r, &plan_len);
    if (!plan)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    waiter w = {s, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, out,
                0, 0, EMBER_OK, ""};
    char pool[256];
    size_t pool_len;
    int have_pool = em_conf_get(s->conf, "ember.scheduler.pool", pool,
                                sizeof pool, &pool_len) == EMBER_OK;
    em_job_spec spec = {
        .app_id = s->app_id,
        .plan = plan,
        .plan_len = plan_len,
        .dataset = r->id,
        .partitions = parts,
        .npartitions = parts ? nparts : 0,
        .pool = have_pool ? pool : NULL,
        .action = action,
        .action_len = action ? strlen(action) : 0,
        .listener = {&w, on_result, on_end, on_accums},
    };
    uint64_t job_id;
    ember_status st = em_client_submit(s, &spec, &job_id, err);
    free(plan);
    if (st != EMBER_OK)
        return st;
    atomic_fetch_add(&s->jobs, 1);
    pthread_mutex_lock(&w.mu);
    while (!w.ended)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    if (w.status != EMBER_OK)
        return ember_errorf(err, w.status, "%s", w.message);
    if (w.lost_result)
        return ember_errorf(err, EMBER_ENOMEM,
                            "out of memory keeping a task's result");
    /* marked datasets the job used are checkpointed now (S22) */
    return em_client_checkpoint_after(r, err);
}

ember_status em_records_append(ember_records *out, const uint8_t *data,
                               size_t len)
{
    ember_batch b = {data, len, 0};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t rl;
    uint64_t n = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &rl)) == EMBER_OK)
        n++;
    if (s != EMBER_END)
        return EMBER_EINVAL;
    if (len) {
        uint8_t *nd = realloc(out->data, out->len + len);
        if (!nd)
            return EMBER_ENOMEM;
        memcpy(nd + out->len, data, len);
        out->data = nd;
        out->len += len;
    }
    out->count += n;
    return EMBER_OK;
}

void ember_records_free(ember_records *r)
{
    if (!r)
        return;
    free(r->data);
    memset(r, 0, sizeof *r);
}
