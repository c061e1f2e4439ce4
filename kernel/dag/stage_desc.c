/*
 * dag/stage_desc.c — what executors are told about a stage: the STAGE
 * message's JSON (see em_dag_stage_plan) and the preferred locations of
 * its tasks, from "locations" in a source's args (docs/plan-format.md).
 */
#include "dag/dag_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *em_dag_stage_plan(const stage *s, uint32_t attempt, size_t *len)
{
    const em_lineage *l = s->plan->l;
    const char *action =
        !s->is_map && s->result_job ? s->result_job->action : NULL;
    size_t cap = s->plan->json_len + 256 + (size_t)s->ninputs * 96 +
                 (action ? strlen(action) + 16 : 0);
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int n = snprintf(buf, cap, "{\"stage\":%" PRIu64 ",\"attempt\":%" PRIu32
                     ",\"kind\":\"%s\",\"dataset\":%" PRIu64
                     ",\"partitions\":%" PRIu32, s->id, attempt,
                     s->is_map ? "shuffle_map" : "result",
                     l->nodes[s->node].id, s->nparts);
    if (s->is_map && s->out)
        n += snprintf(buf + n, cap - (size_t)n,
                      ",\"shuffle\":{\"id\":%" PRIu64 ",\"partitions\":%"
                      PRIu32 "}", s->out->id, s->out->num_reduces);
    n += snprintf(buf + n, cap - (size_t)n, ",\"inputs\":[");
    for (uint32_t k = 0; k < s->ninputs; k++) {
        const shuffle *sh = s->inputs[k];
        n += snprintf(buf + n, cap - (size_t)n,
                      "%s{\"dataset\":%" PRIu64 ",\"edge\":%" PRIu32
                      ",\"shuffle\":%" PRIu64 "}", k ? "," : "",
                      sh->key >> 8, (uint32_t)(sh->key & 0xff), sh->id);
    }
    n += snprintf(buf + n, cap - (size_t)n, "]");
    if (action)
        n += snprintf(buf + n, cap - (size_t)n, ",\"action\":%s", action);
    n += snprintf(buf + n, cap - (size_t)n, ",\"plan\":");
    memcpy(buf + n, s->plan->json, s->plan->json_len);
    n += (int)s->plan->json_len;
    buf[n++] = '}';
    *len = (size_t)n;
    return buf;
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

static const json_t *node_locations(const em_lineage *l, uint32_t node,
                                    json_t **doc)
{
    for (;;) {
        const em_node *n = &l->nodes[node];
        if (n->args_json && strstr(n->args_json, "\"locations\"")) {
            *doc = json_loads(n->args_json, 0, NULL);
            const json_t *locs = json_object_get(*doc, "locations");
            if (json_is_array(locs))
                return locs;
            json_decref(*doc);
            *doc = NULL;
            return NULL;
        }
        if (n->ndeps != 1 || n->deps[0].kind != EM_DEP_NARROW ||
            n->op->parts != EM_OP_PARTS_SAME)
            return NULL;
        node = n->deps[0].parent;
    }
}

void em_dag_stage_prefs(const stage *s, const uint32_t *parts, uint32_t n,
                        em_dag_prefs *out)
{
    memset(out, 0, sizeof *out);
    const json_t *locs = node_locations(s->plan->l, s->node, &out->doc);
    if (!locs)
        return;
    out->per = calloc(n, sizeof *out->per);
    out->count = calloc(n, sizeof *out->count);
    if (!out->per || !out->count) {
        em_dag_prefs_free(out, n);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        const json_t *list = json_array_get(locs, parts[k]);
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
