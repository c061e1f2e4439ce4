/*
 * dag/stage_desc.c — what executors are told about a stage: the STAGE
 * message's JSON (see em_dag_stage_plan) and the preferred locations of
 * its tasks: the executors holding a cached block of the partition
 * (dag/block_locs.h), else "locations" in a source's args
 * (docs/plan-format.md).
 */
#include "dag/dag_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends printf output to b; sets *ok to 0 on failure. */
static void bprintf(ember_buf *b, int *ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bprintf(ember_buf *b, int *ok, const char *fmt, ...)
{
    va_list ap;
    for (int round = 0; *ok && round < 2; round++) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            *ok = 0;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (ember_buf_reserve(b, (size_t)n + 1) != EMBER_OK)
            *ok = 0;
    }
}

/* Appends s as a JSON string (executor ids and endpoints: printable). */
static void bstring(ember_buf *b, int *ok, const char *s)
{
    bprintf(b, ok, "\"");
    for (; *ok && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            bprintf(b, ok, "\\%c", c);
        else if (c < 0x20)
            bprintf(b, ok, "\\u%04x", c);
        else
            bprintf(b, ok, "%c", c);
    }
    bprintf(b, ok, "\"");
}

char *em_dag_stage_plan(em_dag *d, const stage *s, uint32_t attempt,
                        size_t *len)
{
    const em_lineage *l = s->plan->l;
    const char *action =
        !s->is_map && s->result_job ? s->result_job->action : NULL;
    ember_buf b = ember_buf_heap();
    int ok = ember_buf_reserve(&b, s->plan->json_len + 512) == EMBER_OK;
    bprintf(&b, &ok, "{\"stage\":%" PRIu64 ",\"attempt\":%" PRIu32
            ",\"app\":%" PRIu64 ",\"kind\":\"%s\",\"dataset\":%" PRIu64
            ",\"partitions\":%" PRIu32, s->id, attempt,
            s->app ? s->app->id : 0, s->is_map ? "shuffle_map" : "result",
            l->nodes[s->node].id, s->nparts);
    if (s->is_map && s->out)
        bprintf(&b, &ok, ",\"shuffle\":{\"id\":%" PRIu64
                ",\"partitions\":%" PRIu32 ",\"reader\":%" PRIu64
                ",\"edge\":%" PRIu32 "}", s->out->id, s->out->num_reduces,
                s->out->key >> 8, (uint32_t)(s->out->key & 0xff));
    /* Each input lists the executor number holding each map output; the
     * numbers are then resolved once in "executors". */
    uint32_t *seen = NULL, nseen = 0, capseen = 0;
    bprintf(&b, &ok, ",\"inputs\":[");
    for (uint32_t k = 0; ok && k < s->ninputs; k++) {
        const shuffle *sh = s->inputs[k];
        bprintf(&b, &ok, "%s{\"dataset\":%" PRIu64 ",\"edge\":%" PRIu32
                ",\"shuffle\":%" PRIu64 ",\"maps\":[", k ? "," : "",
                sh->key >> 8, (uint32_t)(sh->key & 0xff), sh->id);
        for (uint32_t m = 0; ok && m < sh->num_maps; m++) {
            uint32_t no = sh->loc[m];
            bprintf(&b, &ok, "%s%" PRIu32, m ? "," : "", no);
            uint32_t i = 0;
            while (i < nseen && seen[i] != no)
                i++;
            if (no && i == nseen) {
                if (nseen == capseen) {
                    uint32_t cap = capseen ? capseen * 2 : 8;
                    uint32_t *g = realloc(seen, cap * sizeof *g);
                    if (!g) {
                        ok = 0;
                        break;
                    }
                    seen = g;
                    capseen = cap;
                }
                seen[nseen++] = no;
            }
        }
        bprintf(&b, &ok, "]}");
    }
    bprintf(&b, &ok, "],\"executors\":[");
    uint32_t listed = 0;
    for (uint32_t i = 0; ok && i < nseen; i++) {
        em_exec *e = em_tsched_executor_by_no(d->ts, seen[i]);
        if (!e)
            continue; /* lost since: its readers fail and resubmit */
        bprintf(&b, &ok, "%s{\"no\":%" PRIu32 ",\"id\":", listed++ ? ","
                : "", seen[i]);
        bstring(&b, &ok, em_exec_id(e));
        bprintf(&b, &ok, ",\"endpoint\":");
        bstring(&b, &ok, em_exec_endpoint(e));
        bprintf(&b, &ok, "}");
    }
    free(seen);
    bprintf(&b, &ok, "]");
    if (action)
        bprintf(&b, &ok, ",\"action\":%s", action);
    bprintf(&b, &ok, ",\"plan\":");
    if (ok && ember_buf_append(&b, s->plan->json, s->plan->json_len) !=
                  EMBER_OK)
        ok = 0;
    bprintf(&b, &ok, "}");
    if (!ok) {
        ember_buf_release(&b);
        return NULL;
    }
    *len = b.len;
    return (char *)b.data;
}

void em_dag_prefs_free(em_dag_prefs *p, uint32_t n)
{
    if (p->per)
        for (uint32_t k = 0; k < n; k++)
            free(p->per[k]);
    free(p->per);
    free(p->count);
    json_decref(p->doc);
    memset(p, 0, sizeof *p);
}

/* Whether a plan gave dataset n a storage level (its blocks may be
 * cached). */
static int persisted(const em_node *n)
{
    return n->storage && strcmp(n->storage, "NONE") != 0;
}

/*
 * The datasets a task of the stage at `node` reads partition by partition:
 * node, then up its one-to-one narrow chain (one narrow parent with the
 * same partitions), up to the first whose args carry "locations" (*locs
 * and *doc set then, else NULL). Indices into chain[0..*n), at most cap.
 */
static void pref_chain(const em_lineage *l, uint32_t node, uint32_t *chain,
                       uint32_t cap, uint32_t *n, const json_t **locs,
                       json_t **doc)
{
    *n = 0;
    *locs = NULL;
    for (;;) {
        const em_node *x = &l->nodes[node];
        if (*n < cap)
            chain[(*n)++] = node;
        if (x->args_json && strstr(x->args_json, "\"locations\"")) {
            *doc = json_loads(x->args_json, 0, NULL);
            *locs = json_object_get(*doc, "locations");
            if (!json_is_array(*locs)) {
                json_decref(*doc);
                *doc = NULL;
                *locs = NULL;
            }
            return;
        }
        if (x->ndeps != 1 || x->deps[0].kind != EM_DEP_NARROW ||
            x->op->parts != EM_OP_PARTS_SAME)
            return;
        node = x->deps[0].parent;
    }
}

/* Most holders of one block turned into preferences. */
#define MAX_HOLDERS 8

/* The live executors holding a cached block of partition p of a dataset
 * on the chain, as preferences into out[0..MAX_HOLDERS); returns how
 * many (0: no dataset on the chain has it cached). */
static uint32_t cached_prefs(em_dag *d, const stage *s, const uint32_t *chain,
                             uint32_t nchain, uint32_t p, em_task_pref *out)
{
    const em_lineage *l = s->plan->l;
    if (!d->blocks || !s->app)
        return 0;
    for (uint32_t c = 0; c < nchain; c++) {
        const em_node *x = &l->nodes[chain[c]];
        em_block_holder h[MAX_HOLDERS];
        if (!persisted(x))
            continue;
        uint32_t nh = em_block_locs_get(d->blocks, s->app->id, x->id, p, h,
                                        MAX_HOLDERS);
        uint32_t m = 0;
        for (uint32_t i = 0; i < nh && i < MAX_HOLDERS; i++) {
            em_exec *e = em_tsched_executor_by_no(d->ts, h[i].exec_no);
            if (!e)
                continue; /* lost: its rows go with it */
            out[m].host = em_exec_host(e);
            out[m].executor_id = em_exec_id(e);
            m++;
        }
        if (m)
            return m;
    }
    return 0;
}

void em_dag_stage_prefs(em_dag *d, const stage *s, const uint32_t *parts,
                        uint32_t n, em_dag_prefs *out)
{
    memset(out, 0, sizeof *out);
    const em_lineage *l = s->plan->l;
    uint32_t chain[64], nchain = 0;
    const json_t *locs = NULL;
    pref_chain(l, s->node, chain, 64, &nchain, &locs, &out->doc);
    int any_cached = 0;
    for (uint32_t c = 0; c < nchain && !any_cached; c++)
        any_cached = persisted(&l->nodes[chain[c]]);
    if (!locs && !any_cached)
        return;
    out->per = calloc(n ? n : 1, sizeof *out->per);
    out->count = calloc(n ? n : 1, sizeof *out->count);
    if (!out->per || !out->count) {
        em_dag_prefs_free(out, n);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        em_task_pref cached[MAX_HOLDERS];
        uint32_t nc = any_cached ? cached_prefs(d, s, chain, nchain, parts[k],
                                                cached)
                                 : 0;
        if (nc) {
            /* Spark: a cached partition's locations come first and alone */
            if ((out->per[k] = calloc(nc, sizeof **out->per))) {
                memcpy(out->per[k], cached, nc * sizeof *cached);
                out->count[k] = nc;
            }
            continue;
        }
        const json_t *list = locs ? json_array_get(locs, parts[k]) : NULL;
        size_t m = json_array_size(list);
        if (m == 0 || !(out->per[k] = calloc(m, sizeof **out->per)))
            continue;
        for (size_t i = 0; i < m; i++) {
            const json_t *e = json_array_get(list, i);
            const char *host = json_is_string(e)
                                   ? json_string_value(e)
                                   : json_string_value(
                                         json_object_get(e, "host"));
            if (!host || !*host)
                continue;
            em_task_pref *p = &out->per[k][out->count[k]++];
            p->host = host;
            p->executor_id =
                json_string_value(json_object_get(e, "executor"));
        }
    }
}
