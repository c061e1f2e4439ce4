/* Scheduling pools and the order of slot offers (see sched/pool.h). */
#include "sched/pool.h"

#include <stdlib.h>
#include <string.h>

#include "ember/kernel/log.h"
#include "util/map.h"

struct em_pool {
    em_pool_link link; /* in the parent's active children; must stay first */
    em_pool_tree *tree;
    em_pool *parent;   /* NULL for the root (and while being created) */
    char *name;
    em_sched_mode mode;
    double weight;
    uint32_t min_share;
    uint32_t max_share; /* 0 = unlimited */
    uint32_t running;   /* summed over the subtree */
    uint32_t entries;   /* task sets directly here */
    size_t subtree_entries;
    int is_auto;        /* made for an unknown name: removed when empty */
    size_t slot;        /* index in tree->all */
    /* Active children in scheduling order: task sets, and the child pools
     * whose subtree holds a task set (subtree_entries > 0). Empty pools
     * stay out, so an offer never looks at them. Re-sorted in place by
     * every offer, so no scratch memory is needed. */
    em_pool_link *head;
    em_pool_link *tail;
    /* All child pools in creation order, for listing. */
    em_pool *first_child;
    em_pool *last_child;
    em_pool *next_sibling;
    em_pool *prev_sibling;
    /* FIFO key of the subtree (its earliest task set), refreshed before a
     * FIFO pool sorts its child pools. */
    int fifo_has;
    uint64_t fifo_prio;
    uint64_t fifo_stage;
};

struct em_pool_tree {
    em_sched_mode mode;
    em_pool *root;
    /* Every pool but the root, parents first; a removed pool leaves a NULL
     * hole until the next compaction, so removal is O(1). */
    em_pool **all;
    size_t len;    /* used slots, holes included */
    size_t nholes;
    size_t cap;
    em_strmap by_name; /* name -> pool, every pool but the root */
    /* The last pool em_pool_tree_get made for an unknown name: removed at
     * the next get if it never received a task set. NULL when none. */
    em_pool *fresh;
};

static em_pool *pool_of(em_pool_link *l)
{
    return (em_pool *)(void *)l; /* link is the first member */
}

static em_pool_entry *entry_of(em_pool_link *l)
{
    return (em_pool_entry *)(void *)((char *)l -
                                     offsetof(em_pool_entry, link));
}

static em_pool *pool_new(em_pool_tree *t, const char *name,
                         em_sched_mode mode)
{
    em_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->tree = t;
    p->name = strdup(name);
    if (!p->name) {
        free(p);
        return NULL;
    }
    p->link.is_pool = 1;
    p->mode = mode;
    p->weight = 1.0;
    return p;
}

static void pool_free(em_pool *p)
{
    if (!p)
        return;
    free(p->name);
    free(p);
}

static uint32_t add_clamped(uint32_t v, int64_t delta)
{
    int64_t r = (int64_t)v + delta;
    if (r < 0)
        return 0;
    if (r > (int64_t)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)r;
}

static void link_append(em_pool *p, em_pool_link *l)
{
    l->next = NULL;
    l->prev = p->tail;
    if (p->tail)
        p->tail->next = l;
    else
        p->head = l;
    p->tail = l;
}

static void link_remove(em_pool *p, em_pool_link *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        p->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        p->tail = l->prev;
    l->prev = l->next = NULL;
}

/* Adds to the counts of p and every ancestor, keeping each pool in its
 * parent's active list exactly while its subtree holds task sets. */
static void adjust_up(em_pool *p, int64_t drunning, int64_t dentries)
{
    for (; p; p = p->parent) {
        size_t before = p->subtree_entries;
        p->running = add_clamped(p->running, drunning);
        p->subtree_entries = (size_t)((int64_t)before + dentries);
        if (!p->parent)
            continue;
        if (before == 0 && p->subtree_entries > 0)
            link_append(p->parent, &p->link);
        else if (before > 0 && p->subtree_entries == 0)
            link_remove(p->parent, &p->link);
    }
}

static void attach(em_pool *parent, em_pool *p)
{
    p->parent = parent;
    p->next_sibling = NULL;
    p->prev_sibling = parent->last_child;
    if (parent->last_child)
        parent->last_child->next_sibling = p;
    else
        parent->first_child = p;
    parent->last_child = p;
    if (p->subtree_entries > 0)
        link_append(parent, &p->link);
    adjust_up(parent, p->running, (int64_t)p->subtree_entries);
}

static void detach(em_pool *p)
{
    em_pool *parent = p->parent;
    if (p->subtree_entries > 0)
        link_remove(parent, &p->link);
    adjust_up(parent, -(int64_t)p->running, -(int64_t)p->subtree_entries);
    if (p->prev_sibling)
        p->prev_sibling->next_sibling = p->next_sibling;
    else
        parent->first_child = p->next_sibling;
    if (p->next_sibling)
        p->next_sibling->prev_sibling = p->prev_sibling;
    else
        parent->last_child = p->prev_sibling;
    p->next_sibling = p->prev_sibling = NULL;
    p->parent = NULL;
}

/* Closes the holes in t->all, keeping the order. */
static void compact(em_pool_tree *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (!t->all[i])
            continue;
        t->all[k] = t->all[i];
        t->all[k]->slot = k;
        k++;
    }
    t->len = k;
    t->nholes = 0;
}

static ember_status reserve_pools(em_pool_tree *t, size_t extra)
{
    if (extra <= t->cap - t->len)
        return EMBER_OK;
    if (t->nholes) {
        compact(t);
        if (extra <= t->cap - t->len)
            return EMBER_OK;
    }
    size_t cap = t->cap ? t->cap : 8;
    while (cap < t->len + extra)
        cap *= 2;
    em_pool **all = realloc(t->all, cap * sizeof *all);
    if (!all)
        return EMBER_ENOMEM;
    t->all = all;
    t->cap = cap;
    return EMBER_OK;
}

static void collect_preorder(em_pool_tree *t, em_pool *p, size_t *n)
{
    for (em_pool *c = p->first_child; c; c = c->next_sibling) {
        c->slot = *n;
        t->all[(*n)++] = c;
        collect_preorder(t, c, n);
    }
}

/* Appends p, a new child of the root: it comes after every existing
 * subtree in pre-order. The caller reserved the slot. */
static void append_root_child(em_pool_tree *t, em_pool *p)
{
    attach(t->root, p);
    p->slot = t->len;
    t->all[t->len++] = p;
}

/* Removes p if it was made for an unknown name and holds no task set. */
static void drop_if_unused(em_pool *p)
{
    if (!p || !p->is_auto || p->subtree_entries > 0 || p->first_child)
        return;
    em_pool_tree *t = p->tree;
    if (t->fresh == p)
        t->fresh = NULL;
    detach(p);
    (void)em_strmap_del(&t->by_name, p->name);
    t->all[p->slot] = NULL;
    t->nholes++;
    /* Holes never outnumber pools for long: listing stays linear. */
    if (t->nholes >= 16 && t->nholes * 2 >= t->len)
        compact(t);
    pool_free(p);
}

ember_status em_pool_tree_create(em_pool_tree **out, em_sched_mode mode,
                                 ember_error *err)
{
    ember_status s = EMBER_OK;
    *out = NULL;
    if (mode != EM_SCHED_FIFO && mode != EM_SCHED_FAIR)
        return ember_errorf(err, EMBER_EINVAL, "unknown scheduling mode %d",
                            (int)mode);
    em_pool_tree *t = calloc(1, sizeof *t);
    if (!t) {
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto fail;
    }
    t->mode = mode;
    t->root = pool_new(t, "root", mode);
    if (!t->root) {
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto fail;
    }
    if (mode == EM_SCHED_FAIR) {
        /* Spark's default pool is FIFO, which makes FAIR mode without an
         * allocation file behave like FIFO between jobs; ours shares. */
        em_pool *def = pool_new(t, "default", EM_SCHED_FAIR);
        if (!def || reserve_pools(t, 1) != EMBER_OK ||
            em_strmap_put(&t->by_name, def->name, def) != EMBER_OK) {
            pool_free(def);
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            goto fail;
        }
        append_root_child(t, def);
    }
    *out = t;
    return EMBER_OK;
fail:
    em_pool_tree_destroy(t);
    return s;
}

static void unlink_entries(em_pool *p)
{
    em_pool_link *l = p->head;
    while (l) {
        em_pool_link *next = l->next;
        if (!l->is_pool) {
            em_pool_entry *e = entry_of(l);
            e->pool = NULL;
            l->prev = l->next = NULL;
        }
        l = next;
    }
}

void em_pool_tree_destroy(em_pool_tree *t)
{
    if (!t)
        return;
    /* Child lists run through other pools: unlink everything first. */
    for (size_t i = 0; i < t->len; i++)
        if (t->all[i])
            unlink_entries(t->all[i]);
    if (t->root)
        unlink_entries(t->root);
    for (size_t i = 0; i < t->len; i++)
        pool_free(t->all[i]);
    pool_free(t->root);
    free(t->all);
    em_strmap_free(&t->by_name);
    free(t);
}

em_sched_mode em_pool_tree_mode(const em_pool_tree *t)
{
    return t->mode;
}

em_pool *em_pool_tree_find(const em_pool_tree *t, const char *name)
{
    if (!name)
        return NULL;
    return em_strmap_get(&t->by_name, name);
}

ember_status em_pool_tree_get(em_pool_tree *t, const char *name,
                              em_pool **out, ember_error *err)
{
    *out = NULL;
    if (t->mode == EM_SCHED_FIFO) {
        *out = t->root;
        return EMBER_OK;
    }
    if (!name || !*name)
        name = "default";
    em_pool *p = em_pool_tree_find(t, name);
    /* A pool made by the previous call that got no task set (its caller
     * failed before adding one) goes now, so such pools cannot pile up. */
    if (t->fresh && t->fresh != p) {
        em_pool *f = t->fresh;
        t->fresh = NULL;
        drop_if_unused(f);
    }
    if (p) {
        *out = p;
        return EMBER_OK;
    }
    em_pool *def = em_pool_tree_find(t, "default");
    em_sched_mode mode = def ? def->mode : EM_SCHED_FAIR;
    p = pool_new(t, name, mode);
    if (!p || reserve_pools(t, 1) != EMBER_OK ||
        em_strmap_put(&t->by_name, p->name, p) != EMBER_OK) {
        pool_free(p);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    p->is_auto = 1;
    append_root_child(t, p);
    t->fresh = p;
    em_log(EMBER_LOG_WARN, "sched",
           "pool '%s' is not in the allocation file; created it with default "
           "settings (%s, weight 1, minShare 0, no maxShare)",
           name, mode == EM_SCHED_FAIR ? "FAIR" : "FIFO");
    *out = p;
    return EMBER_OK;
}

const char *em_pool_name(const em_pool *p)
{
    return p->name;
}

/* Unlinks e from its pool without removing the pool. */
static void take_out(em_pool_entry *e)
{
    em_pool *p = e->pool;
    link_remove(p, &e->link);
    p->entries--;
    adjust_up(p, -(int64_t)e->running, -1);
    e->pool = NULL;
}

void em_pool_add_entry(em_pool *p, em_pool_entry *e)
{
    em_pool *old = e->pool;
    if (old)
        take_out(e);
    e->link.is_pool = 0;
    link_append(p, &e->link);
    e->pool = p;
    p->entries++;
    adjust_up(p, e->running, 1);
    /* Only now: re-adding to the same pool must not free it. */
    if (old != p)
        drop_if_unused(old);
}

void em_pool_remove_entry(em_pool_entry *e)
{
    if (!e || !e->pool)
        return;
    em_pool *p = e->pool;
    take_out(e);
    drop_if_unused(p);
}

void em_pool_entry_running_add(em_pool_entry *e, int32_t delta)
{
    uint32_t before = e->running;
    e->running = add_clamped(before, delta);
    if (e->pool)
        adjust_up(e->pool, (int64_t)e->running - (int64_t)before, 0);
}

/* ---- Ordering -------------------------------------------------------- */

static const char *link_name(em_pool_link *l)
{
    if (l->is_pool)
        return pool_of(l)->name;
    const char *n = entry_of(l)->name;
    return n ? n : "";
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_double(double a, double b)
{
    return a < b ? -1 : a > b;
}

/* Entries with equal names still get a fixed order. */
static int cmp_tail(em_pool_link *a, em_pool_link *b)
{
    int c = strcmp(link_name(a), link_name(b));
    if (c != 0 || a->is_pool || b->is_pool)
        return c;
    em_pool_entry *ea = entry_of(a), *eb = entry_of(b);
    c = cmp_u64(ea->priority, eb->priority);
    return c ? c : cmp_u64(ea->stage_id, eb->stage_id);
}

/* Spark's FairSchedulingAlgorithm; task sets count as weight 1, minShare
 * 0. Weight 0 sorts after every positive weight (Spark divides by it). */
static int cmp_fair(em_pool_link *a, em_pool_link *b)
{
    double ra, rb, wa = 1.0, wb = 1.0;
    uint32_t ma = 0, mb = 0;
    if (a->is_pool) {
        ra = pool_of(a)->running;
        wa = pool_of(a)->weight;
        ma = pool_of(a)->min_share;
    } else {
        ra = entry_of(a)->running;
    }
    if (b->is_pool) {
        rb = pool_of(b)->running;
        wb = pool_of(b)->weight;
        mb = pool_of(b)->min_share;
    } else {
        rb = entry_of(b)->running;
    }
    int needy_a = ra < ma, needy_b = rb < mb;
    int c;
    if (needy_a && !needy_b)
        return -1;
    if (!needy_a && needy_b)
        return 1;
    if (needy_a)
        c = cmp_double(ra / (ma > 1 ? ma : 1), rb / (mb > 1 ? mb : 1));
    else if (wa > 0 && wb > 0)
        c = cmp_double(ra / wa, rb / wb);
    else
        c = wa > 0 ? -1 : wb > 0 ? 1 : 0;
    return c ? c : cmp_tail(a, b);
}

/* Task sets by (job, stage); a child pool by its earliest task set, pools
 * without any after everything else. */
static int cmp_fifo(em_pool_link *a, em_pool_link *b)
{
    int ha = 1, hb = 1;
    uint64_t pa, pb, sa, sb;
    if (a->is_pool) {
        ha = pool_of(a)->fifo_has;
        pa = pool_of(a)->fifo_prio;
        sa = pool_of(a)->fifo_stage;
    } else {
        pa = entry_of(a)->priority;
        sa = entry_of(a)->stage_id;
    }
    if (b->is_pool) {
        hb = pool_of(b)->fifo_has;
        pb = pool_of(b)->fifo_prio;
        sb = pool_of(b)->fifo_stage;
    } else {
        pb = entry_of(b)->priority;
        sb = entry_of(b)->stage_id;
    }
    if (ha != hb)
        return ha ? -1 : 1;
    if (!ha)
        return strcmp(link_name(a), link_name(b));
    int c = cmp_u64(pa, pb);
    if (!c)
        c = cmp_u64(sa, sb);
    return c ? c : cmp_tail(a, b);
}

static void fifo_key(em_pool *p)
{
    p->fifo_has = 0;
    for (em_pool_link *l = p->head; l; l = l->next) {
        uint64_t pr, st;
        if (l->is_pool) {
            em_pool *c = pool_of(l);
            fifo_key(c);
            if (!c->fifo_has)
                continue;
            pr = c->fifo_prio;
            st = c->fifo_stage;
        } else {
            pr = entry_of(l)->priority;
            st = entry_of(l)->stage_id;
        }
        if (!p->fifo_has || pr < p->fifo_prio ||
            (pr == p->fifo_prio && st < p->fifo_stage)) {
            p->fifo_has = 1;
            p->fifo_prio = pr;
            p->fifo_stage = st;
        }
    }
}

/* Stable insertion sort of p's active children in place: the order
 * changes little between offers, so this is close to one pass. Empty
 * pools are not in the list, so they cost nothing here. */
static void sort_children(em_pool *p)
{
    if (!p->head || !p->head->next)
        return;
    int (*cmp)(em_pool_link *, em_pool_link *) =
        p->mode == EM_SCHED_FAIR ? cmp_fair : cmp_fifo;
    if (p->mode == EM_SCHED_FIFO)
        for (em_pool_link *l = p->head; l; l = l->next)
            if (l->is_pool)
                fifo_key(pool_of(l));
    em_pool_link *cur = p->head->next;
    while (cur) {
        em_pool_link *next = cur->next;
        if (cmp(cur->prev, cur) > 0) {
            em_pool_link *at = cur->prev;
            while (at->prev && cmp(at->prev, cur) > 0)
                at = at->prev;
            link_remove(p, cur);
            cur->next = at;
            cur->prev = at->prev;
            if (at->prev)
                at->prev->next = cur;
            else
                p->head = cur;
            at->prev = cur;
        }
        cur = next;
    }
}

static int offer_pool(em_pool *p, em_pool_visit_fn fn, void *ctx)
{
    if (p->subtree_entries == 0)
        return 0;
    if (p->max_share && p->running >= p->max_share)
        return 0;
    sort_children(p);
    for (em_pool_link *l = p->head; l; l = l->next) {
        int r = l->is_pool ? offer_pool(pool_of(l), fn, ctx)
                           : fn(entry_of(l), ctx);
        if (r)
            return r;
    }
    return 0;
}

int em_pool_tree_offer(em_pool_tree *t, em_pool_visit_fn fn, void *ctx)
{
    return offer_pool(t->root, fn, ctx);
}

typedef struct order_ctx {
    em_pool_entry **out;
    size_t cap;
    size_t n;
} order_ctx;

static int order_visit(em_pool_entry *e, void *ctx)
{
    order_ctx *o = ctx;
    if (o->n < o->cap)
        o->out[o->n] = e;
    o->n++;
    return 0;
}

size_t em_pool_tree_order(em_pool_tree *t, em_pool_entry **out, size_t cap)
{
    order_ctx o = {out, out ? cap : 0, 0};
    (void)em_pool_tree_offer(t, order_visit, &o);
    return o.n;
}

ember_status em_pool_tree_next(const em_pool_tree *t, size_t *cursor,
                               em_pool_info *out)
{
    while (*cursor < t->len && !t->all[*cursor])
        (*cursor)++;
    if (*cursor >= t->len)
        return EMBER_END;
    const em_pool *p = t->all[(*cursor)++];
    out->name = p->name;
    out->parent = p->parent == t->root ? NULL : p->parent->name;
    out->mode = p->mode;
    out->weight = p->weight;
    out->min_share = p->min_share;
    out->max_share = p->max_share;
    out->running = p->running;
    out->entries = p->entries;
    return EMBER_OK;
}

/* ---- Allocation files ------------------------------------------------ */

ember_status em_pool_tree_apply(em_pool_tree *t, const em_pool_def *defs,
                                size_t n, ember_error *err)
{
    ember_status s = EMBER_OK;
    size_t fresh = 0;
    em_pool **target = calloc(n ? n : 1, sizeof *target);
    if (!target)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (defs[i].parent >= (long)i || defs[i].parent < -1) {
            s = ember_errorf(err, EMBER_EINTERNAL,
                             "pool definition %zu names a later parent", i);
            goto done;
        }
        target[i] = em_pool_tree_find(t, defs[i].name);
        if (!target[i])
            fresh++;
    }
    if (reserve_pools(t, fresh) != EMBER_OK) {
        s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (target[i])
            continue;
        em_pool *p = pool_new(t, defs[i].name, EM_SCHED_FIFO);
        if (!p || em_strmap_put(&t->by_name, p->name, p) != EMBER_OK) {
            pool_free(p);
            /* Only the pools made here have no parent yet. */
            for (size_t j = 0; j < i; j++) {
                if (!target[j]->parent) {
                    (void)em_strmap_del(&t->by_name, target[j]->name);
                    pool_free(target[j]);
                }
            }
            s = ember_errorf(err, EMBER_ENOMEM, "out of memory");
            goto done;
        }
        target[i] = p;
    }
    /* Nothing below can fail. Definitions come parents first, so a parent
     * is in its final place before its children move under it. */
    for (size_t i = 0; i < n; i++) {
        em_pool *p = target[i];
        const em_pool_def *d = &defs[i];
        if (d->has_mode)
            p->mode = d->mode;
        else
            p->mode = strcmp(d->name, "default") == 0 ? EM_SCHED_FAIR
                                                      : EM_SCHED_FIFO;
        p->weight = d->weight;
        p->min_share = d->min_share;
        p->max_share = d->max_share;
        /* Named by the file: kept from now on, even when empty. */
        p->is_auto = 0;
        em_pool *parent = d->parent < 0 ? t->root : target[d->parent];
        if (!p->parent) {
            attach(parent, p);
        } else if (p->parent != parent) {
            detach(p);
            attach(parent, p);
        }
    }
    /* Every pool is reachable from the root, so this fills t->all anew,
     * holes closed; reserve_pools made room for the new ones. */
    size_t k = 0;
    collect_preorder(t, t->root, &k);
    t->len = k;
    t->nholes = 0;
done:
    free(target);
    return s;
}
