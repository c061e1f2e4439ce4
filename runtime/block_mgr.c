/* The executor's block manager: see block_mgr.h. */
#include "runtime/block_mgr.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ember/kernel/log.h"

#define LOG_SOURCE "block_mgr"

/* The encoded form of serialized blocks (see block_mgr.h). */
#define ENC_MAGIC "EMBS"
#define ENC_VERSION 1
#define ENC_HEADER 16
#define ENC_CHUNK_HEADER 8
#define ENC_CHUNK ((size_t)1 << 20)

/* ---- storage levels */

static const struct level_name {
    const char *name;
    em_storage_level level;
} level_names[] = {
    {"NONE", {false, false, false, false, 1}},
    {"DISK_ONLY", {false, true, false, true, 1}},
    {"DISK_ONLY_2", {false, true, false, true, 2}},
    {"DISK_ONLY_3", {false, true, false, true, 3}},
    {"MEMORY_ONLY", {true, false, false, false, 1}},
    {"MEMORY_ONLY_2", {true, false, false, false, 2}},
    {"MEMORY_ONLY_SER", {true, false, false, true, 1}},
    {"MEMORY_ONLY_SER_2", {true, false, false, true, 2}},
    {"MEMORY_AND_DISK", {true, true, false, false, 1}},
    {"MEMORY_AND_DISK_2", {true, true, false, false, 2}},
    {"MEMORY_AND_DISK_SER", {true, true, false, true, 1}},
    {"MEMORY_AND_DISK_SER_2", {true, true, false, true, 2}},
    {"OFF_HEAP", {false, true, true, true, 1}},
};
#define N_LEVELS (sizeof level_names / sizeof level_names[0])

ember_status em_storage_level_parse(const char *name, em_storage_level *out,
                                    ember_error *err)
{
    if (name == NULL || out == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "storage level: no name given");
    for (size_t i = 0; i < N_LEVELS; i++) {
        if (strcasecmp(name, level_names[i].name) == 0) {
            *out = level_names[i].level;
            return EMBER_OK;
        }
    }
    char list[400];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < N_LEVELS && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s",
                         i ? ", " : "", level_names[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return ember_errorf(err, EMBER_EINVAL,
                        "unknown storage level '%.64s': expected one of %s",
                        name, list);
}

const char *em_storage_level_name(em_storage_level level)
{
    for (size_t i = 0; i < N_LEVELS; i++) {
        const em_storage_level *l = &level_names[i].level;
        if (l->use_memory == level.use_memory &&
            l->use_disk == level.use_disk &&
            l->use_off_heap == level.use_off_heap &&
            l->serialized == level.serialized &&
            l->replication == level.replication)
            return level_names[i].name;
    }
    return "custom";
}

/* ---- the manager's state */

enum { POOL_MEMORY, POOL_OFF_HEAP, N_POOLS };

typedef struct blk {
    uint64_t dataset;
    uint32_t partition;
    em_storage_level level;
    em_block_where where;
    bool encoded;       /* stored in the encoded form */
    uint64_t size;      /* bytes in its tier */
    uint64_t count;     /* records */
    uint32_t readers;   /* gets reading it outside the lock: pinned, so
                           never evicted, promoted by another or freed */
    bool writing;       /* its tier put runs outside the lock: not yet
                           cached (gets miss, where() says NOWHERE), not
                           in an LRU list; its bytes are in its pool's
                           `reserved` */
    bool doomed;        /* removed while pinned or writing: no longer
                           found, still in the hash (one entry an id) and
                           on the books; the last reader, or the writer,
                           removes it from its tier and frees it */
    struct blk *hnext;  /* hash chain */
    struct blk *prev, *next; /* its pool's LRU list (memory, off-heap) */
} blk;

typedef struct pool {
    uint64_t budget, used, blocks;
    uint64_t reserved; /* held by unrolls and by stores being written;
                          used + reserved <= budget */
    blk *lru, *mru; /* list ends: least and most recently used */
    em_block_tier *tier;
    em_block_where where;
} pool;

struct em_block_mgr {
    pthread_mutex_t mu;
    em_block_mgr_opts o;
    blk **buckets;
    size_t nbuckets, nblocks; /* nbuckets a power of two */
    pool pools[N_POOLS];
    uint64_t disk_used, disk_blocks, evictions;
};

struct em_block_unroll {
    em_block_mgr *m;
    uint64_t dataset;
    uint32_t partition;
    em_storage_level level;
    bool encode, gave_up;
    bool disk_only;     /* its reservation failed: it finishes on disk */
    pool *pool;         /* where it reserves; NULL = it does not */
    uint64_t reserved;  /* bytes of pool->reserved that are its own */
    uint64_t limit; /* 0 = none */
    uint64_t count, raw_len;
    ember_buf held;
    em_block_put_result ev; /* the evictions its reservations made */
};

typedef struct block_id {
    char s[48];
} block_id;

static block_id make_id(uint64_t dataset, uint32_t partition)
{
    block_id id;
    snprintf(id.s, sizeof id.s, "rdd_%" PRIu64 "_%" PRIu32, dataset,
             partition);
    return id;
}

static size_t bucket_of(const em_block_mgr *m, uint64_t dataset,
                        uint32_t partition)
{
    uint64_t h = (dataset ^ ((uint64_t)partition << 32 | partition)) *
                 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return (size_t)(h & (m->nbuckets - 1));
}

/* The entry of a block id, whatever its state (writing, doomed). */
static blk *lookup(const em_block_mgr *m, uint64_t dataset,
                   uint32_t partition)
{
    blk *e = m->buckets[bucket_of(m, dataset, partition)];
    while (e && (e->dataset != dataset || e->partition != partition))
        e = e->hnext;
    return e;
}

/* The block if it is cached: stored, neither being written nor doomed. */
static blk *find(const em_block_mgr *m, uint64_t dataset,
                 uint32_t partition)
{
    blk *e = lookup(m, dataset, partition);
    return e && !e->writing && !e->doomed ? e : NULL;
}

/* Inserts e, growing the table past one block a bucket (a failed growth
 * only leaves chains longer). */
static void hash_insert(em_block_mgr *m, blk *e)
{
    if (m->nblocks >= m->nbuckets && m->nbuckets <= SIZE_MAX / 4) {
        size_t n = m->nbuckets * 2;
        blk **nb = calloc(n, sizeof *nb);
        if (nb) {
            blk **old = m->buckets;
            size_t on = m->nbuckets;
            m->buckets = nb;
            m->nbuckets = n;
            for (size_t i = 0; i < on; i++) {
                blk *x = old[i];
                while (x) {
                    blk *next = x->hnext;
                    size_t b = bucket_of(m, x->dataset, x->partition);
                    x->hnext = nb[b];
                    nb[b] = x;
                    x = next;
                }
            }
            free(old);
        }
    }
    size_t b = bucket_of(m, e->dataset, e->partition);
    e->hnext = m->buckets[b];
    m->buckets[b] = e;
    m->nblocks++;
}

static void hash_remove(em_block_mgr *m, blk *e)
{
    blk **pp = &m->buckets[bucket_of(m, e->dataset, e->partition)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    m->nblocks--;
}

static pool *pool_of(em_block_mgr *m, em_block_where w)
{
    if (w == EM_BLOCK_MEMORY)
        return &m->pools[POOL_MEMORY];
    if (w == EM_BLOCK_OFF_HEAP)
        return &m->pools[POOL_OFF_HEAP];
    return NULL;
}

static em_block_tier *tier_of(em_block_mgr *m, em_block_where w)
{
    pool *p = pool_of(m, w);
    return p ? p->tier : &m->o.disk;
}

static void lru_unlink(pool *p, blk *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        p->lru = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        p->mru = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_mru(pool *p, blk *e)
{
    e->next = NULL;
    e->prev = p->mru;
    if (p->mru)
        p->mru->next = e;
    else
        p->lru = e;
    p->mru = e;
}

/* Accounts e as stored at e->where (already in its tier). */
static void account_add(em_block_mgr *m, blk *e)
{
    pool *p = pool_of(m, e->where);
    if (p) {
        p->used += e->size;
        p->blocks++;
        lru_push_mru(p, e);
    } else {
        m->disk_used += e->size;
        m->disk_blocks++;
    }
}

static void account_sub(em_block_mgr *m, blk *e)
{
    pool *p = pool_of(m, e->where);
    if (p) {
        p->used -= e->size;
        p->blocks--;
        lru_unlink(p, e);
    } else {
        m->disk_used -= e->size;
        m->disk_blocks--;
    }
}

static const char *where_name(em_block_where w)
{
    switch (w) {
    case EM_BLOCK_MEMORY: return "memory";
    case EM_BLOCK_DISK: return "disk";
    case EM_BLOCK_OFF_HEAP: return "off-heap";
    default: return "nowhere";
    }
}

/* Removes e from its tier (already absent is fine) and from the books,
 * and frees it. e is stored and nobody reads it. Lock held. */
static void drop_block(em_block_mgr *m, blk *e)
{
    em_block_tier *t = tier_of(m, e->where);
    block_id id = make_id(e->dataset, e->partition);
    ember_error terr;
    ember_error_clear(&terr);
    ember_status s = t->vt->remove(t->state, id.s, &terr);
    if (s != EMBER_OK && s != EMBER_ENOTFOUND)
        em_log(EMBER_LOG_WARN, LOG_SOURCE,
               "removing block %s from the %s tier failed (%s): %s", id.s,
               where_name(e->where), ember_status_name(s), terr.msg);
    account_sub(m, e);
    hash_remove(m, e);
    free(e);
}

/* Removes stored block e: at once when nobody reads it, else it is doomed
 * and its last reader drops it. Lock held. */
static void remove_block(em_block_mgr *m, blk *e)
{
    if (e->readers)
        e->doomed = true;
    else
        drop_block(m, e);
}

/* Ends one read of e, dropping it if it was doomed meanwhile and this was
 * its last reader. Lock held. */
static void unpin(em_block_mgr *m, blk *e)
{
    if (--e->readers == 0 && e->doomed)
        drop_block(m, e);
}

/* Stores data in tier t under id; logs failures other than ENOSPC. */
static ember_status tier_put(em_block_tier *t, em_block_where w,
                             const char *id, const uint8_t *data,
                             size_t len, uint64_t count)
{
    ember_batch b = {data, len, count};
    ember_error terr;
    ember_error_clear(&terr);
    ember_status s = t->vt->put(t->state, id, &b, &terr);
    if (s != EMBER_OK && s != EMBER_ENOSPC)
        em_log(EMBER_LOG_WARN, LOG_SOURCE,
               "caching block %s in the %s tier failed (%s): %s; it is not "
               "cached there", id, where_name(w), ember_status_name(s),
               terr.msg);
    return s;
}

/* Evicts victim (not pinned) from its pool: to disk when its level uses
 * disk and the disk tier takes it, else dropped. Records the move in
 * *res. The move's tier calls run under the lock (see block_mgr.h). */
static void evict_one(em_block_mgr *m, blk *v, em_block_put_result *res)
{
    em_block_tier *from = tier_of(m, v->where);
    block_id id = make_id(v->dataset, v->partition);
    em_block_where now = EM_BLOCK_NOWHERE;
    m->evictions++;
    if (v->level.use_disk && m->o.disk.vt) {
        ember_buf tmp = ember_buf_heap();
        uint64_t count = 0;
        ember_error terr;
        ember_error_clear(&terr);
        if (from->vt->get(from->state, id.s, &tmp, &count, &terr) ==
                EMBER_OK &&
            tmp.len == v->size && count == v->count &&
            tier_put(&m->o.disk, EM_BLOCK_DISK, id.s, tmp.data, tmp.len,
                     count) == EMBER_OK)
            now = EM_BLOCK_DISK;
        ember_buf_release(&tmp);
    }
    if (res && res->evicted) {
        em_block_moved *mv = &res->evicted[res->n_evicted++];
        mv->dataset = v->dataset;
        mv->partition = v->partition;
        mv->now = now;
        mv->bytes = now == EM_BLOCK_NOWHERE ? 0 : v->size;
    }
    if (now == EM_BLOCK_NOWHERE) {
        drop_block(m, v);
        return;
    }
    ember_error terr;
    ember_error_clear(&terr);
    ember_status s = from->vt->remove(from->state, id.s, &terr);
    if (s != EMBER_OK && s != EMBER_ENOTFOUND)
        em_log(EMBER_LOG_WARN, LOG_SOURCE,
               "removing evicted block %s from the %s tier failed (%s): %s",
               id.s, where_name(v->where), ember_status_name(s), terr.msg);
    account_sub(m, v);
    v->where = EM_BLOCK_DISK;
    account_add(m, v);
}

/* Bytes of p neither stored nor reserved. */
static uint64_t pool_free(const pool *p)
{
    uint64_t taken = p->used + p->reserved;
    return taken < p->budget ? p->budget - taken : 0;
}

/* Whether make_room may evict v for a block of `dataset` (S19: never
 * one of the same dataset, nor one locked for reading). */
static bool evictable(const blk *v, uint64_t dataset)
{
    return v->dataset != dataset && v->readers == 0;
}

/*
 * Makes room for `need` bytes in pool p for a block (or an unroll's
 * reservation) of `dataset` (S19): walks from the least recently used
 * block, skipping blocks of that dataset and pinned blocks; evicts only
 * when what it found frees enough, else nothing. What unrolls and stores
 * in progress reserve is not free. Returns true when `need` bytes now
 * fit. Lock held.
 */
static bool make_room(em_block_mgr *m, pool *p, uint64_t need,
                      uint64_t dataset, em_block_put_result *res)
{
    if (p->tier->vt == NULL || p->reserved > p->budget ||
        need > p->budget - p->reserved)
        return false;
    uint64_t avail = pool_free(p);
    if (need <= avail)
        return true;
    uint64_t want = need - avail, found = 0;
    size_t n = 0;
    for (blk *v = p->lru; v && found < want; v = v->next) {
        if (evictable(v, dataset)) {
            found += v->size;
            n++;
        }
    }
    if (found < want)
        return false;
    if (res) {
        em_block_moved *ev = realloc(res->evicted,
                                     (res->n_evicted + n) * sizeof *ev);
        if (ev == NULL)
            return false; /* treated as not fitting: nothing changed */
        res->evicted = ev;
    }
    uint64_t freed = 0;
    blk *v = p->lru;
    while (v && freed < want) {
        blk *next = v->next;
        if (evictable(v, dataset)) {
            freed += v->size;
            evict_one(m, v, res);
        }
        v = next;
    }
    return true;
}

/* A level's tiers, each of which the executor must have. */
static ember_status check_tiers(const em_block_mgr *m, em_storage_level l,
                                ember_error *err)
{
    const char *missing = NULL;
    if (l.use_memory && m->o.memory.vt == NULL)
        missing = "memory";
    else if (l.use_off_heap && m->o.off_heap.vt == NULL)
        missing = "off-heap";
    else if (l.use_disk && m->o.disk.vt == NULL)
        missing = "disk";
    if (missing)
        return ember_errorf(err, EMBER_EUNSUPPORTED,
                            "storage level %s needs the %s storage tier, "
                            "which this executor has not configured",
                            em_storage_level_name(l), missing);
    if (l.replication < 1)
        return ember_errorf(err, EMBER_EINVAL,
                            "storage level %s: replication must be at "
                            "least 1", em_storage_level_name(l));
    return EMBER_OK;
}

static bool stores_something(em_storage_level l)
{
    return l.use_memory || l.use_disk || l.use_off_heap;
}

/* ---- the encoded form */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Appends the header of an encoded block (raw length patched later). */
static ember_status enc_begin(ember_buf *out)
{
    ember_status s = ember_buf_reserve(out, ENC_HEADER);
    if (s != EMBER_OK)
        return s;
    uint8_t *h = out->data + out->len;
    memcpy(h, ENC_MAGIC, 4);
    h[4] = ENC_VERSION;
    h[5] = h[6] = h[7] = 0;
    put_le64(h + 8, 0);
    out->len += ENC_HEADER;
    return EMBER_OK;
}

/* Appends src[0..n) as compressed chunks. On failure out is as it was. */
static ember_status enc_append(const em_block_codec *c, const uint8_t *src,
                               size_t n, ember_buf *out, ember_error *err)
{
    size_t mark = out->len;
    ember_status s = EMBER_OK;
    while (n > 0) {
        size_t k = n < ENC_CHUNK ? n : ENC_CHUNK;
        size_t bound = c->vt->bound(c->state, k);
        if (bound == 0 || bound > UINT32_MAX) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "the codec cannot compress a chunk of %zu "
                             "bytes", k);
            goto done;
        }
        s = ember_buf_reserve(out, ENC_CHUNK_HEADER + bound);
        if (s != EMBER_OK) {
            s = ember_errorf(err, EMBER_ENOMEM,
                             "out of memory encoding a block");
            goto done;
        }
        uint8_t *h = out->data + out->len;
        size_t clen = 0;
        s = c->vt->compress(c->state, src, k, h + ENC_CHUNK_HEADER, bound,
                            &clen, err);
        if (s != EMBER_OK)
            goto done;
        if (clen > bound) {
            s = ember_errorf(err, EMBER_EINVAL,
                             "the codec wrote %zu bytes past its bound %zu",
                             clen, bound);
            goto done;
        }
        put_le32(h, (uint32_t)k);
        put_le32(h + 4, (uint32_t)clen);
        out->len += ENC_CHUNK_HEADER + clen;
        src += k;
        n -= k;
    }
done:
    if (s != EMBER_OK)
        out->len = mark;
    return s;
}

/* Writes the total raw length into the header at buf->data[0..). */
static void enc_end(ember_buf *buf, uint64_t raw_len)
{
    put_le64(buf->data + 8, raw_len);
}

/* Encodes a whole batch into out (empty heap buffer). */
static ember_status enc_batch(const em_block_codec *c, const ember_batch *b,
                              ember_buf *out, ember_error *err)
{
    ember_status s = enc_begin(out);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "out of memory encoding a block");
    s = enc_append(c, b->data, b->len, out, err);
    if (s == EMBER_OK)
        enc_end(out, b->len);
    return s;
}

/* Decodes an encoded block src[0..n), appending the raw bytes to out.
 * Anything malformed is EMBER_EINVAL; on failure out is as it was. */
static ember_status decode(const em_block_codec *c, const uint8_t *src,
                           size_t n, ember_buf *out, ember_error *err)
{
    if (n < ENC_HEADER || memcmp(src, ENC_MAGIC, 4) != 0 ||
        src[4] != ENC_VERSION || src[5] || src[6] || src[7])
        return ember_errorf(err, EMBER_EINVAL,
                            "not an encoded block (bad header)");
    uint64_t raw = get_le64(src + 8), total = 0;
    /* Check every chunk's frame before allocating what the header says. */
    size_t p = ENC_HEADER;
    while (p < n) {
        if (n - p < ENC_CHUNK_HEADER)
            return ember_errorf(err, EMBER_EINVAL,
                                "truncated chunk header at byte %zu", p);
        uint32_t rl = get_le32(src + p), cl = get_le32(src + p + 4);
        if (rl == 0 || rl > ENC_CHUNK || cl > n - p - ENC_CHUNK_HEADER)
            return ember_errorf(err, EMBER_EINVAL,
                                "bad chunk at byte %zu (%" PRIu32
                                " bytes from %" PRIu32 ")", p, rl, cl);
        total += rl;
        if (total > raw)
            return ember_errorf(err, EMBER_EINVAL,
                                "chunks hold more than the %" PRIu64
                                " bytes the header says", raw);
        p += ENC_CHUNK_HEADER + cl;
    }
    if (total != raw)
        return ember_errorf(err, EMBER_EINVAL,
                            "chunks hold %" PRIu64 " bytes, the header "
                            "says %" PRIu64, total, raw);
    if (raw > SIZE_MAX || ember_buf_reserve(out, (size_t)raw) != EMBER_OK)
        return ember_errorf(err, EMBER_ENOMEM,
                            "out of memory decoding a block of %" PRIu64
                            " bytes", raw);
    size_t o = out->len;
    for (p = ENC_HEADER; p < n;) {
        uint32_t rl = get_le32(src + p), cl = get_le32(src + p + 4);
        ember_status s;
        if (c->vt == NULL)
            s = ember_errorf(err, EMBER_EINVAL,
                             "the block is compressed but no codec is set");
        else
            s = c->vt->decompress(c->state, src + p + ENC_CHUNK_HEADER, cl,
                                  out->data + o, rl, err);
        if (s != EMBER_OK)
            return s == EMBER_ENOMEM ? s : EMBER_EINVAL;
        o += rl;
        p += ENC_CHUNK_HEADER + cl;
    }
    out->len = o;
    return EMBER_OK;
}

/* ---- open, close */

static ember_status check_tier(const em_block_tier *t, const char *what,
                              ember_error *err)
{
    if (t->vt && (!t->vt->put || !t->vt->get || !t->vt->remove))
        return ember_errorf(err, EMBER_EINVAL,
                            "the %s storage tier lacks put, get or remove",
                            what);
    return EMBER_OK;
}

ember_status em_block_mgr_open(em_block_mgr **out,
                               const em_block_mgr_opts *opts,
                               ember_error *err)
{
    em_block_mgr *m = NULL;
    ember_status s = EMBER_OK;
    if (out == NULL || opts == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "block manager: no options given");
    *out = NULL;
    if ((s = check_tier(&opts->memory, "memory", err)) != EMBER_OK ||
        (s = check_tier(&opts->disk, "disk", err)) != EMBER_OK ||
        (s = check_tier(&opts->off_heap, "off-heap", err)) != EMBER_OK)
        return s;
    const ember_codec_vtable *cv = opts->codec.vt;
    if (cv && (!cv->bound || !cv->compress || !cv->decompress))
        return ember_errorf(err, EMBER_EINVAL,
                            "block manager: the codec lacks bound, "
                            "compress or decompress");
    m = calloc(1, sizeof *m);
    if (m == NULL)
        goto nomem;
    m->o = *opts;
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (m->buckets == NULL)
        goto nomem;
    if (pthread_mutex_init(&m->mu, NULL) != 0)
        goto nomem;
    m->pools[POOL_MEMORY].budget = opts->memory_budget;
    m->pools[POOL_MEMORY].tier = &m->o.memory;
    m->pools[POOL_MEMORY].where = EM_BLOCK_MEMORY;
    m->pools[POOL_OFF_HEAP].budget = opts->off_heap_budget;
    m->pools[POOL_OFF_HEAP].tier = &m->o.off_heap;
    m->pools[POOL_OFF_HEAP].where = EM_BLOCK_OFF_HEAP;
    *out = m;
    return EMBER_OK;
nomem:
    if (m)
        free(m->buckets);
    free(m);
    return ember_errorf(err, EMBER_ENOMEM,
                        "out of memory opening the block manager");
}

void em_block_mgr_close(em_block_mgr *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        blk *e = m->buckets[i];
        while (e) {
            blk *next = e->hnext;
            if (e->where == EM_BLOCK_MEMORY) {
                block_id id = make_id(e->dataset, e->partition);
                (void)m->o.memory.vt->remove(m->o.memory.state, id.s, NULL);
            }
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void em_block_put_result_release(em_block_put_result *res)
{
    if (res == NULL)
        return;
    free(res->evicted);
    memset(res, 0, sizeof *res);
}

/* ---- put */

/* The pool a level keeps its blocks in (memory first), or NULL. */
static pool *level_pool(em_block_mgr *m, em_storage_level level)
{
    if (level.use_memory)
        return &m->pools[POOL_MEMORY];
    if (level.use_off_heap)
        return &m->pools[POOL_OFF_HEAP];
    return NULL;
}

/*
 * The first half of a store, under the lock: the tier it goes to and its
 * room. A block already cached or being stored is "already" (res); one
 * still doomed (removed while read) is not cached this time. Otherwise
 * the entry goes in the hash as writing, in memory or off-heap when room
 * can be made there (unless disk_only; its bytes then held in the pool's
 * `reserved`), else on disk for levels with disk. *out is that entry for
 * put_write, or NULL when nothing is to be written.
 */
static ember_status put_begin(em_block_mgr *m, uint64_t dataset,
                              uint32_t partition, em_storage_level level,
                              size_t len, uint64_t count, bool encoded,
                              bool disk_only, em_block_put_result *res,
                              blk **out, ember_error *err)
{
    *out = NULL;
    blk *old = lookup(m, dataset, partition);
    if (old) {
        if (!old->doomed) {
            /* one being written is the writer's to report */
            res->already = true;
            res->where = old->writing ? EM_BLOCK_NOWHERE : old->where;
            res->stored_bytes = old->writing ? 0 : old->size;
        }
        return EMBER_OK;
    }
    blk *e = calloc(1, sizeof *e);
    if (e == NULL)
        return ember_errorf(err, EMBER_ENOMEM,
                            "out of memory caching a block");
    e->dataset = dataset;
    e->partition = partition;
    e->level = level;
    e->encoded = encoded;
    e->size = len;
    e->count = count;
    e->writing = true;
    pool *p = disk_only ? NULL : level_pool(m, level);
    if (p && make_room(m, p, len, dataset, res)) {
        e->where = p->where;
        p->reserved += len;
    } else if (level.use_disk) {
        e->where = EM_BLOCK_DISK;
    } else {
        free(e);
        return EMBER_OK;
    }
    hash_insert(m, e);
    *out = e;
    return EMBER_OK;
}

/*
 * The second half: writes data[0..e->size) to e's tier OUTSIDE the lock
 * (not held on entry nor on return), then books the outcome under it.
 * A memory or off-heap tier that refuses it lets its room go and, for a
 * level with disk, the disk tier is tried the same way; what no tier took
 * is not cached. A block removed while it was written (doomed) is
 * removed from its tier now and reported as not cached.
 */
static void put_write(em_block_mgr *m, blk *e, const uint8_t *data,
                      em_block_put_result *res)
{
    /* Only this writer changes e->where, size and count while writing. */
    em_block_where w = e->where;
    size_t len = (size_t)e->size;
    uint64_t count = e->count;
    em_storage_level level = e->level;
    block_id id = make_id(e->dataset, e->partition);
    for (;;) {
        ember_status s = tier_put(tier_of(m, w), w, id.s, data, len, count);
        pthread_mutex_lock(&m->mu);
        pool *p = pool_of(m, w);
        if (p)
            p->reserved -= len;
        if (s == EMBER_OK) {
            e->writing = false;
            account_add(m, e);
            if (e->doomed) {
                drop_block(m, e);
            } else {
                res->where = w;
                res->stored_bytes = len;
            }
            break;
        }
        if (w != EM_BLOCK_DISK && level.use_disk && !e->doomed) {
            w = e->where = EM_BLOCK_DISK;
            pthread_mutex_unlock(&m->mu);
            continue;
        }
        hash_remove(m, e);
        free(e);
        break;
    }
    pthread_mutex_unlock(&m->mu);
}

/* Puts a block's stored form: the common end of put and unroll_finish.
 * unroll (may be NULL) is the unroll whose reservation goes as the
 * block takes its place. */
static ember_status put_stored(em_block_mgr *m, em_block_unroll *unroll,
                               uint64_t dataset, uint32_t partition,
                               em_storage_level level, const uint8_t *data,
                               size_t len, uint64_t count, bool encoded,
                               bool disk_only, em_block_put_result *res,
                               ember_error *err)
{
    blk *e = NULL;
    pthread_mutex_lock(&m->mu);
    /* The reservation covers what is held: letting it go under the same
     * lock leaves the room for the block itself. */
    if (unroll && unroll->reserved) {
        unroll->pool->reserved -= unroll->reserved;
        unroll->reserved = 0;
    }
    ember_status s = put_begin(m, dataset, partition, level, len, count,
                               encoded, disk_only, res, &e, err);
    pthread_mutex_unlock(&m->mu);
    if (e)
        put_write(m, e, data, res);
    return s;
}

ember_status em_block_mgr_put(em_block_mgr *m, uint64_t dataset,
                              uint32_t partition, em_storage_level level,
                              const ember_batch *b, em_block_put_result *res,
                              ember_error *err)
{
    em_block_put_result local;
    ember_buf enc = ember_buf_heap();
    ember_status s;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);
    if (m == NULL || b == NULL || (b->len && b->data == NULL))
        return ember_errorf(err, EMBER_EINVAL,
                            "block manager put: no manager or batch");
    if ((s = check_tiers(m, level, err)) != EMBER_OK)
        return s;
    if (!stores_something(level))
        return EMBER_OK;
    bool encoded = level.serialized && m->o.codec.vt != NULL;
    const uint8_t *data = b->data;
    size_t len = b->len;
    if (encoded) {
        /* outside the lock: compression is the expensive part */
        s = enc_batch(&m->o.codec, b, &enc, err);
        if (s != EMBER_OK)
            goto done;
        data = enc.data;
        len = enc.len;
    }
    s = put_stored(m, NULL, dataset, partition, level, data, len,
                   b->count, encoded, false, res, err);
done:
    ember_buf_release(&enc);
    if (res == &local)
        em_block_put_result_release(&local);
    return s;
}

/* ---- get */

/* Removes e, pinned by the caller, which read as corrupt or lost: it is
 * doomed, so the caller's unpin (or a later reader's) drops it. Warns.
 * Lock held. */
static void drop_bad(blk *e, em_block_where w, const char *why)
{
    e->doomed = true;
    em_log(EMBER_LOG_WARN, LOG_SOURCE,
           "cached block rdd_%" PRIu64 "_%" PRIu32 " in the %s tier is "
           "unreadable (%s): removed; it will be recomputed", e->dataset,
           e->partition, where_name(w), why);
}

/*
 * Moves e, just read from the disk tier as data[0..e->size), to its
 * level's pool when the pool can hold it (evicting other datasets' blocks
 * as a put does), and says so in *res. The caller's is e's only pin, so
 * nobody else is reading it from disk. Lock held: the pool's tier put
 * runs under it.
 */
static void promote(em_block_mgr *m, blk *e, const uint8_t *data,
                    em_block_put_result *res)
{
    pool *p = level_pool(m, e->level);
    if (p == NULL || !make_room(m, p, e->size, e->dataset, res))
        return;
    block_id id = make_id(e->dataset, e->partition);
    if (tier_put(p->tier, p->where, id.s, data, (size_t)e->size, e->count) !=
        EMBER_OK)
        return; /* the evictions stand, as in a put */
    ember_error terr;
    ember_error_clear(&terr);
    ember_status s = m->o.disk.vt->remove(m->o.disk.state, id.s, &terr);
    if (s != EMBER_OK && s != EMBER_ENOTFOUND)
        em_log(EMBER_LOG_WARN, LOG_SOURCE,
               "removing promoted block %s from the disk tier failed (%s): "
               "%s", id.s, ember_status_name(s), terr.msg);
    account_sub(m, e);
    e->where = p->where;
    account_add(m, e);
    res->where = p->where;
    res->promoted = true;
    res->stored_bytes = e->size;
}

/*
 * em_block_mgr_get, and with res (zeroed) the promotion of a block read
 * from disk. The block is found and pinned under the lock; its tier get
 * and its decoding run outside it; the lock is taken again to unpin it
 * (and drop it when unreadable, or promote it).
 */
static ember_status get_block(em_block_mgr *m, uint64_t dataset,
                              uint32_t partition, ember_buf *out,
                              uint64_t *count, em_block_put_result *res,
                              ember_error *err)
{
    if (m == NULL || out == NULL || count == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "block manager get: no manager or output");
    block_id id = make_id(dataset, partition);
    ember_buf tmp = ember_buf_heap();
    size_t mark = out->len;
    ember_status s = EMBER_OK;
    ember_error terr;
    ember_error_clear(&terr);

    pthread_mutex_lock(&m->mu);
    blk *e = find(m, dataset, partition);
    if (e == NULL) {
        pthread_mutex_unlock(&m->mu);
        return ember_errorf(err, EMBER_ENOTFOUND, "block %s is not cached",
                            id.s);
    }
    pool *p = pool_of(m, e->where);
    if (p) {
        lru_unlink(p, e);
        lru_push_mru(p, e);
    }
    /* Pinned, e stays where it is and keeps these until unpinned. */
    e->readers++;
    bool encoded = e->encoded;
    uint64_t want = e->count, size = e->size;
    em_block_where where = e->where;
    pthread_mutex_unlock(&m->mu);

    em_block_tier *t = tier_of(m, where);
    ember_buf *dst = encoded ? &tmp : out;
    size_t dmark = dst->len;
    uint64_t got = 0;
    bool decoding = false;
    s = t->vt->get(t->state, id.s, dst, &got, &terr);
    if (s == EMBER_OK && (dst->len - dmark != size || got != want)) {
        s = EMBER_EINVAL;
        snprintf(terr.msg, sizeof terr.msg,
                 "read %zu bytes and %" PRIu64 " records, stored %" PRIu64
                 " and %" PRIu64, dst->len - dmark, got, size, want);
    }
    bool bad = s == EMBER_EINVAL || s == EMBER_ENOTFOUND;
    if (s == EMBER_OK && encoded) {
        /* decompression is the expensive part */
        decoding = true;
        s = decode(&m->o.codec, tmp.data, tmp.len, out, &terr);
        bad = s == EMBER_EINVAL;
    }

    pthread_mutex_lock(&m->mu);
    if (bad)
        drop_bad(e, where,
                 s == EMBER_ENOTFOUND ? "the tier lost it" : terr.msg);
    else if (s == EMBER_OK && res && where == EM_BLOCK_DISK &&
             e->readers == 1 && !e->doomed)
        /* the stored form just read is what its pool keeps */
        promote(m, e, dst->data + dmark, res);
    unpin(m, e);
    pthread_mutex_unlock(&m->mu);

    if (bad) {
        s = ember_errorf(err, EMBER_ENOTFOUND,
                         "block %s is not cached (it was %s)", id.s,
                         decoding ? "corrupt" : "unreadable");
        goto done;
    }
    if (s != EMBER_OK) {
        if (decoding)
            s = ember_errorf(err, s, "decoding block %s: %s", id.s,
                             terr.msg);
        else
            s = ember_errorf(err, s, "reading block %s from the %s tier: %s",
                             id.s, where_name(where), terr.msg);
        goto done;
    }
    *count = want;
done:
    if (s != EMBER_OK)
        out->len = mark;
    ember_buf_release(&tmp);
    return s;
}

ember_status em_block_mgr_get(em_block_mgr *m, uint64_t dataset,
                              uint32_t partition, ember_buf *out,
                              uint64_t *count, ember_error *err)
{
    return get_block(m, dataset, partition, out, count, NULL, err);
}

ember_status em_block_mgr_get_promote(em_block_mgr *m, uint64_t dataset,
                                      uint32_t partition, ember_buf *out,
                                      uint64_t *count,
                                      em_block_put_result *res,
                                      ember_error *err)
{
    if (res == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "block manager get: no result given");
    memset(res, 0, sizeof *res);
    return get_block(m, dataset, partition, out, count, res, err);
}

em_block_where em_block_mgr_where(em_block_mgr *m, uint64_t dataset,
                                  uint32_t partition)
{
    pthread_mutex_lock(&m->mu);
    blk *e = find(m, dataset, partition);
    em_block_where w = e ? e->where : EM_BLOCK_NOWHERE;
    pthread_mutex_unlock(&m->mu);
    return w;
}

/* ---- removal, stats */

static size_t remove_where(em_block_mgr *m, bool all, uint64_t dataset)
{
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nbuckets; i++) {
        blk *e = m->buckets[i];
        while (e) {
            blk *next = e->hnext;
            /* one being written is not cached yet (not counted): the
             * writer removes it when its write ends */
            if ((all || e->dataset == dataset) && !e->doomed) {
                if (e->writing) {
                    e->doomed = true;
                } else {
                    remove_block(m, e);
                    n++;
                }
            }
            e = next;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t em_block_mgr_remove_dataset(em_block_mgr *m, uint64_t dataset)
{
    return remove_where(m, false, dataset);
}

size_t em_block_mgr_remove_all(em_block_mgr *m)
{
    return remove_where(m, true, 0);
}

void em_block_mgr_stats(em_block_mgr *m, em_block_stats *out)
{
    pthread_mutex_lock(&m->mu);
    const pool *mem = &m->pools[POOL_MEMORY];
    const pool *off = &m->pools[POOL_OFF_HEAP];
    out->memory_used = mem->used;
    out->memory_budget = mem->budget;
    out->off_heap_used = off->used;
    out->off_heap_budget = off->budget;
    out->memory_reserved = mem->reserved;
    out->off_heap_reserved = off->reserved;
    out->disk_used = m->disk_used;
    out->blocks_memory = mem->blocks;
    out->blocks_off_heap = off->blocks;
    out->blocks_disk = m->disk_blocks;
    out->evictions = m->evictions;
    pthread_mutex_unlock(&m->mu);
}

/* ---- unrolling */

/* Lets u's whole reservation go. */
static void unreserve(em_block_unroll *u)
{
    if (u->reserved == 0)
        return;
    pthread_mutex_lock(&u->m->mu);
    u->pool->reserved -= u->reserved;
    pthread_mutex_unlock(&u->m->mu);
    u->reserved = 0;
}

/* Adds `more` bytes to u's reservation if its pool can take them
 * (evicting other datasets' blocks into u->ev). Lock held. */
static bool reserve_more(em_block_unroll *u, uint64_t more)
{
    if (!make_room(u->m, u->pool, more, u->dataset, &u->ev))
        return false;
    u->pool->reserved += more;
    u->reserved += more;
    return true;
}

/*
 * Makes u's reservation cover `need` bytes: 1.5 times need (at most the
 * budget) when it can, else need itself. `grow` false: exactly need (the
 * initial threshold). Returns false when neither can be had.
 */
static bool reserve(em_block_unroll *u, uint64_t need, bool grow)
{
    pool *p = u->pool;
    if (need <= u->reserved)
        return true;
    if (need > p->budget) /* budgets are fixed at open */
        return false;
    uint64_t target = need;
    if (grow)
        target = need / 2 > p->budget - need ? p->budget : need + need / 2;
    pthread_mutex_lock(&u->m->mu);
    bool ok = reserve_more(u, target - u->reserved) ||
              (target > need && reserve_more(u, need - u->reserved));
    pthread_mutex_unlock(&u->m->mu);
    return ok;
}

static void give_up(em_block_unroll *u)
{
    ember_buf_release(&u->held);
    u->gave_up = true;
    unreserve(u);
}

/*
 * Makes sure u may hold `need` bytes: its reservation covers them, or —
 * for a level with disk — it lets the reservation go and holds for the
 * disk tier from now on. Gives up (false) otherwise.
 */
static bool hold_room(em_block_unroll *u, uint64_t need, bool grow)
{
    if (u->pool == NULL || reserve(u, need, grow))
        return true;
    if (u->level.use_disk) {
        unreserve(u);
        u->pool = NULL;
        u->disk_only = true;
        return true;
    }
    give_up(u);
    return false;
}

ember_status em_block_unroll_begin(em_block_unroll **out, em_block_mgr *m,
                                   uint64_t dataset, uint32_t partition,
                                   em_storage_level level, ember_error *err)
{
    if (out == NULL || m == NULL)
        return ember_errorf(err, EMBER_EINVAL,
                            "block unroll: no manager given");
    *out = NULL;
    ember_status s = check_tiers(m, level, err);
    if (s != EMBER_OK)
        return s;
    em_block_unroll *u = calloc(1, sizeof *u);
    if (u == NULL)
        return ember_errorf(err, EMBER_ENOMEM,
                            "out of memory starting an unroll");
    u->m = m;
    u->dataset = dataset;
    u->partition = partition;
    u->level = level;
    u->held = ember_buf_heap();
    u->encode = level.serialized && m->o.codec.vt != NULL;
    /* Budgets are fixed at open: read without the lock. */
    if (level.use_disk)
        u->limit = m->o.unroll_cap;
    else if (level.use_memory)
        u->limit = m->o.memory_budget;
    else if (level.use_off_heap)
        u->limit = m->o.off_heap_budget;
    if (!level.use_disk && m->o.unroll_cap &&
        (u->limit == 0 || m->o.unroll_cap < u->limit))
        u->limit = m->o.unroll_cap;
    u->pool = level_pool(m, level);
    /* A memory-only level with a zero budget can never store anything. */
    if (!stores_something(level) || (!level.use_disk && u->limit == 0)) {
        u->gave_up = true;
    } else if (u->encode && enc_begin(&u->held) != EMBER_OK) {
        u->gave_up = true;
    } else if (u->pool && m->o.unroll_threshold) {
        uint64_t first = m->o.unroll_threshold;
        if (first > u->pool->budget)
            first = u->pool->budget;
        (void)hold_room(u, first, false);
    }
    if (u->gave_up)
        u->pool = NULL;
    *out = u;
    return EMBER_OK;
}

void em_block_unroll_append(em_block_unroll *u, const ember_batch *b)
{
    if (u == NULL || u->gave_up || b == NULL || (b->len && !b->data))
        return;
    if (!u->encode) {
        if (u->limit && b->len > u->limit - u->held.len) {
            give_up(u); /* checked before copying: no need to hold it first */
            return;
        }
        if (!hold_room(u, u->held.len + b->len, true))
            return;
    }
    ember_status s = u->encode
                         ? enc_append(&u->m->o.codec, b->data, b->len,
                                      &u->held, NULL)
                         : ember_buf_append(&u->held, b->data, b->len);
    if (s != EMBER_OK || (u->limit && u->held.len > u->limit)) {
        give_up(u);
        return;
    }
    /* the encoded size is known only now */
    if (u->encode && !hold_room(u, u->held.len, true))
        return;
    u->raw_len += b->len;
    u->count += b->count;
}

bool em_block_unroll_gave_up(const em_block_unroll *u)
{
    return u == NULL || u->gave_up;
}

uint64_t em_block_unroll_bytes(const em_block_unroll *u)
{
    return u ? u->held.len : 0;
}

/* Moves the evictions u's reservations made into res (zeroed). */
static void take_evictions(em_block_unroll *u, em_block_put_result *res)
{
    res->evicted = u->ev.evicted;
    res->n_evicted = u->ev.n_evicted;
    u->ev.evicted = NULL;
    u->ev.n_evicted = 0;
}

ember_status em_block_unroll_finish(em_block_unroll *u,
                                    em_block_put_result *res,
                                    ember_error *err)
{
    em_block_put_result local;
    ember_status s = EMBER_OK;
    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof *res);
    if (u == NULL)
        return ember_errorf(err, EMBER_EINVAL, "block unroll: none given");
    take_evictions(u, res);
    if (u->gave_up) {
        res->gave_up = true;
        goto done;
    }
    if (u->encode)
        enc_end(&u->held, u->raw_len);
    s = put_stored(u->m, u, u->dataset, u->partition, u->level,
                   u->held.data, u->held.len, u->count, u->encode,
                   u->disk_only, res, err);
done:
    em_block_unroll_abort(u);
    if (res == &local)
        em_block_put_result_release(&local);
    return s;
}

void em_block_unroll_cancel(em_block_unroll *u, em_block_put_result *res)
{
    if (res) {
        memset(res, 0, sizeof *res);
        res->gave_up = true;
    }
    if (u == NULL)
        return;
    if (res)
        take_evictions(u, res);
    unreserve(u);
    ember_buf_release(&u->held);
    em_block_put_result_release(&u->ev);
    free(u);
}

void em_block_unroll_abort(em_block_unroll *u)
{
    em_block_unroll_cancel(u, NULL);
}
