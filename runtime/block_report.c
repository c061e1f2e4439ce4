/* runtime/block_report.c — see block_report.h. */
#include "runtime/block_report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/varint.h"

#define MAGIC "EMBR"
#define VERSION 1
#define HEADER 5 /* magic, version */
/* The fewest bytes an entry takes: five one-byte varints and two u8. */
#define MIN_ENTRY 6

void em_block_report_add(em_block_report *r, const em_block_entry *e)
{
    if (!r || !e)
        return;
    /* The newest entries are the likeliest match (a put's own block). */
    for (size_t i = r->n; i-- > 0;) {
        em_block_entry *x = &r->e[i];
        if (x->app == e->app && x->dataset == e->dataset &&
            x->partition == e->partition) {
            *x = *e;
            return;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        em_block_entry *g = realloc(r->e, cap * sizeof *g);
        if (!g) {
            r->lost = 1;
            return;
        }
        r->e = g;
        r->cap = cap;
    }
    r->e[r->n++] = *e;
}

void em_block_report_note_put(em_block_report *r, uint64_t app,
                              uint64_t dataset, uint32_t partition,
                              const em_block_put_result *res)
{
    if (!r || !res)
        return;
    /* Evictions first: the put's own block is the newest news. */
    for (size_t i = 0; i < res->n_evicted; i++) {
        const em_block_moved *m = &res->evicted[i];
        em_block_entry e = {.app = m->dataset >> 32,
                            .dataset = m->dataset & 0xffffffffu,
                            .partition = m->partition};
        if (m->now == EM_BLOCK_NOWHERE) {
            e.event = EM_BLOCK_DROPPED;
        } else {
            e.event = EM_BLOCK_STORED;
            e.tier = (uint8_t)m->now;
            e.bytes = m->bytes;
        }
        em_block_report_add(r, &e);
    }
    if (res->where != EM_BLOCK_NOWHERE) {
        em_block_entry e = {.app = app, .dataset = dataset,
                            .partition = partition,
                            .event = EM_BLOCK_STORED,
                            .tier = (uint8_t)res->where,
                            .bytes = res->stored_bytes};
        em_block_report_add(r, &e);
    }
}

void em_block_report_release(em_block_report *r)
{
    if (!r)
        return;
    free(r->e);
    memset(r, 0, sizeof *r);
}

const char *em_block_tier_name(uint8_t tier)
{
    switch (tier) {
    case EM_BLOCK_MEMORY: return "MEMORY";
    case EM_BLOCK_DISK: return "DISK";
    case EM_BLOCK_OFF_HEAP: return "OFF_HEAP";
    default: return "NONE";
    }
}

/* ---- encoding */

static int entry_ok(const em_block_entry *e)
{
    if (e->event == EM_BLOCK_STORED)
        return e->tier >= EM_BLOCK_MEMORY && e->tier <= EM_BLOCK_OFF_HEAP;
    if (e->event == EM_BLOCK_DROPPED)
        return e->tier == EM_BLOCK_NOWHERE && e->bytes == 0;
    return 0;
}

ember_status em_block_report_encode(const em_block_report *r, ember_buf *out)
{
    size_t n = r ? r->n : 0;
    for (size_t i = 0; i < n; i++)
        if (!entry_ok(&r->e[i]))
            return EMBER_EINVAL;
    if (n > EM_BLOCK_REPORT_MAX)
        return EMBER_EINVAL;
    size_t mark = out->len;
    uint8_t tmp[4 * EM_VARINT_MAX + 2];
    ember_status s = ember_buf_reserve(out, HEADER + EM_VARINT_MAX);
    if (s != EMBER_OK)
        return s;
    memcpy(out->data + out->len, MAGIC, 4);
    out->data[out->len + 4] = VERSION;
    out->len += HEADER;
    out->len += em_varint_put(out->data + out->len, n);
    for (size_t i = 0; i < n; i++) {
        const em_block_entry *e = &r->e[i];
        size_t k = 0;
        k += em_varint_put(tmp + k, e->app);
        k += em_varint_put(tmp + k, e->dataset);
        k += em_varint_put(tmp + k, e->partition);
        tmp[k++] = e->event;
        tmp[k++] = e->tier;
        k += em_varint_put(tmp + k, e->bytes);
        if ((s = ember_buf_append(out, tmp, k)) != EMBER_OK) {
            out->len = mark;
            return s;
        }
    }
    return EMBER_OK;
}

/* ---- decoding */

typedef struct rd {
    const uint8_t *d;
    size_t n, at;
    size_t entry; /* the entry being read, or SIZE_MAX for the header */
    ember_error *err;
} rd;

static ember_status bad(rd *r, const char *field, size_t at, const char *why)
{
    if (r->entry == SIZE_MAX)
        return ember_errorf(r->err, EMBER_EINVAL, "block report: field '%s' "
                            "%s (offset %zu)", field, why, at);
    return ember_errorf(r->err, EMBER_EINVAL, "block report entry %zu: field "
                        "'%s' %s (offset %zu)", r->entry, field, why, at);
}

static ember_status rd_var(rd *r, const char *field, uint64_t max,
                          uint64_t *out)
{
    size_t at = r->at;
    const uint8_t *q = r->d + r->at;
    uint64_t v;
    em_varint_err e = em_varint_get(&q, r->d + r->n, &v);
    if (e == EM_VARINT_SHORT)
        return bad(r, field, at, "runs past the end of the report");
    if (e != EM_VARINT_OK)
        return bad(r, field, at, em_varint_why(e));
    if (v > max)
        return bad(r, field, at, "is out of range");
    r->at = (size_t)(q - r->d);
    *out = v;
    return EMBER_OK;
}

static ember_status rd_u8(rd *r, const char *field, uint8_t *out)
{
    if (r->at >= r->n)
        return bad(r, field, r->at, "runs past the end of the report");
    *out = r->d[r->at++];
    return EMBER_OK;
}

static ember_status rd_entry(rd *r, em_block_entry *e)
{
    uint64_t part = 0;
    ember_status s;
    if ((s = rd_var(r, "app", UINT64_MAX, &e->app)) != EMBER_OK ||
        (s = rd_var(r, "dataset", UINT64_MAX, &e->dataset)) != EMBER_OK ||
        (s = rd_var(r, "partition", UINT32_MAX, &part)) != EMBER_OK)
        return s;
    e->partition = (uint32_t)part;
    size_t at = r->at;
    if ((s = rd_u8(r, "event", &e->event)) != EMBER_OK)
        return s;
    if (e->event != EM_BLOCK_STORED && e->event != EM_BLOCK_DROPPED)
        return bad(r, "event", at, "is not 1 (stored) or 2 (dropped)");
    at = r->at;
    if ((s = rd_u8(r, "tier", &e->tier)) != EMBER_OK)
        return s;
    if (e->event == EM_BLOCK_STORED &&
        (e->tier < EM_BLOCK_MEMORY || e->tier > EM_BLOCK_OFF_HEAP))
        return bad(r, "tier", at, "of a stored block is not 1 (memory), "
                   "2 (disk) or 3 (off-heap)");
    if (e->event == EM_BLOCK_DROPPED && e->tier != EM_BLOCK_NOWHERE)
        return bad(r, "tier", at, "of a dropped block is not 0");
    at = r->at;
    if ((s = rd_var(r, "bytes", UINT64_MAX, &e->bytes)) != EMBER_OK)
        return s;
    if (e->event == EM_BLOCK_DROPPED && e->bytes != 0)
        return bad(r, "bytes", at, "of a dropped block is not 0");
    return EMBER_OK;
}

ember_status em_block_report_decode(const uint8_t *d, size_t n,
                                    em_block_report *out, ember_error *err)
{
    memset(out, 0, sizeof *out);
    rd r = {d, d ? n : 0, 0, SIZE_MAX, err};
    ember_status s;
    if (r.n < HEADER || memcmp(d, MAGIC, 4) != 0)
        return ember_errorf(err, EMBER_EINVAL, "block report: not a block "
                            "report (%zu bytes, no \"EMBR\" header)", r.n);
    if (d[4] != VERSION)
        return ember_errorf(err, EMBER_EVERSION, "block report: version %u, "
                            "this ember reads version %u", d[4], VERSION);
    r.at = HEADER;
    uint64_t count;
    size_t at = r.at;
    if ((s = rd_var(&r, "count", UINT64_MAX, &count)) != EMBER_OK)
        return s;
    if (count > EM_BLOCK_REPORT_MAX)
        return bad(&r, "count", at, "is more than the most entries a "
                   "report may hold");
    /* a count the bytes cannot hold is refused before allocating */
    if (count > (r.n - r.at) / MIN_ENTRY)
        return bad(&r, "count", at, "says more entries than the report "
                   "has bytes for");
    if (count) {
        out->e = calloc((size_t)count, sizeof *out->e);
        if (!out->e)
            return ember_errorf(err, EMBER_ENOMEM,
                                "out of memory decoding a block report");
        out->cap = (size_t)count;
    }
    for (size_t i = 0; i < count; i++) {
        r.entry = i;
        if ((s = rd_entry(&r, &out->e[i])) != EMBER_OK) {
            em_block_report_release(out);
            return s;
        }
        out->n++;
    }
    if (r.at != r.n) {
        size_t left = r.n - r.at;
        em_block_report_release(out);
        return ember_errorf(err, EMBER_EINVAL, "block report: %zu bytes "
                            "follow the last entry (offset %zu)", left, r.at);
    }
    return EMBER_OK;
}
