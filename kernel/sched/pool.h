/*
 * sched/pool.h — scheduling pools: the order in which task sets are offered
 * free slots (SEMANTICS S26, "do better" 1).
 *
 * A pool tree has a root whose mode is the application's scheduling mode.
 *   FIFO: every task set sits directly in the root, ordered by priority
 *         (job id) then stage id; pool names are ignored.
 *   FAIR: the root holds pools, compared by Spark's fair algorithm (needy
 *         pools first, then running/minShare, then running/weight, then
 *         name); inside a pool its own mode orders its children. Pools may
 *         nest (an ember extension) and may carry a maxShare: a pool whose
 *         running tasks (summed over its subtree) reach maxShare is skipped
 *         when slots are offered. The built-in pool `default` is FAIR.
 *
 * Pool lifetimes: `default` and every pool an allocation file names (in
 * any load) live as long as the tree. A pool em_pool_tree_get creates for
 * an unknown name (as Spark does) is temporary: it is removed as soon as
 * no task set is left in it (em_pool_remove_entry, or em_pool_add_entry
 * moving its last one elsewhere), and one that never receives a task set
 * is removed by the next em_pool_tree_get for another name. So names
 * clients make up cannot pile up; using a name again later creates (and
 * warns about) a new pool. A later allocation file that names such a pool
 * makes it permanent, keeping its task sets.
 *
 * Cost: lookup by name is a hash-map probe; an offer only visits pools
 * that hold task sets in their subtree, so empty pools, however many,
 * cost nothing per offer.
 *
 * Threading: a tree and its entries belong to one thread (the task
 * scheduler's); nothing here locks.
 */
#ifndef EM_SCHED_POOL_H
#define EM_SCHED_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

/* How a pool orders its children. */
typedef enum em_sched_mode {
    EM_SCHED_FIFO = 0,
    EM_SCHED_FAIR = 1
} em_sched_mode;

/* A pool: owned by its tree, valid until the tree is destroyed, or, for a
 * temporary pool (see "Pool lifetimes" above), until it is removed. */
typedef struct em_pool em_pool;

/* The pools of one application, with their root. */
typedef struct em_pool_tree em_pool_tree;

/* Private: links a child (a task set or a pool) into its parent's list.
 * Users never read or write it. */
typedef struct em_pool_link {
    struct em_pool_link *prev;
    struct em_pool_link *next;
    int is_pool;
} em_pool_link;

/*
 * A schedulable leaf (a task set), embedded in the task scheduler's own
 * struct; the tree links it but never owns or frees it. Zero-initialise it,
 * then set priority, stage_id and name before em_pool_add_entry.
 */
typedef struct em_pool_entry {
    uint64_t priority; /* job id: FIFO order, lower first */
    uint64_t stage_id; /* FIFO tie-break, lower first */
    const char *name;  /* FAIR tie-break; borrowed, must outlive membership;
                          NULL reads as "" */
    uint32_t running;  /* read-only for users: maintained by
                          em_pool_entry_running_add */
    em_pool *pool;     /* set by em_pool_add_entry, NULL when not in a tree */
    em_pool_link link; /* private */
} em_pool_entry;

/*
 * Pool settings, as parsed from an allocation file and as reported by
 * em_pool_tree_next (for the state store). Strings are borrowed from the
 * tree and stay valid until the tree's next load or its destruction, or
 * until their temporary pool is removed.
 */
typedef struct em_pool_info {
    const char *name;
    const char *parent; /* NULL for children of the root */
    em_sched_mode mode;
    double weight;
    uint32_t min_share;
    uint32_t max_share; /* 0 = unlimited */
    uint32_t running;   /* running tasks in the whole subtree */
    uint32_t entries;   /* task sets directly in this pool */
} em_pool_info;

/*
 * Creates an empty tree in `mode` into *out. In FAIR mode it also holds
 * the pool `default` (FAIR, weight 1, minShare 0, no maxShare).
 * EMBER_EINVAL for an unknown mode, EMBER_ENOMEM; *out is NULL on failure.
 */
ember_status em_pool_tree_create(em_pool_tree **out, em_sched_mode mode,
                                 ember_error *err);

/* Frees the tree and its pools. Entries still in it are unlinked (their
 * pool becomes NULL), never freed. t may be NULL. */
void em_pool_tree_destroy(em_pool_tree *t);

/* The scheduling mode the tree was created with. */
em_sched_mode em_pool_tree_mode(const em_pool_tree *t);

/*
 * Reads a Spark fairscheduler.xml (see alloc_file.c for the format) and
 * applies it: pools it names get exactly its settings (unset ones take the
 * defaults: FIFO — FAIR for `default` —, weight 1, minShare 0, no maxShare)
 * and its nesting; pools it does not name are kept as they are; every pool
 * keeps its task sets. All or nothing: on any error the tree is unchanged.
 * FAIR trees only (EMBER_EINVAL otherwise). A missing file is
 * EMBER_ENOTFOUND, another read failure EMBER_EIO, a file over 16 MiB or
 * bad content EMBER_EINVAL with "path:line:column: " in the message.
 */
ember_status em_pool_tree_load_file(em_pool_tree *t, const char *path,
                                    ember_error *err);

/* As em_pool_tree_load_file, from xml[0..len); source_name (may be NULL)
 * prefixes error messages. */
ember_status em_pool_tree_load_xml(em_pool_tree *t, const char *xml,
                                   size_t len, const char *source_name,
                                   ember_error *err);

/*
 * The pool a job's task sets go to (*out). FIFO: the root, whatever the
 * name. FAIR: NULL or "" means `default`; a name no pool has creates a
 * temporary pool under the root (the `default` pool's mode, weight 1,
 * minShare 0, no maxShare) and logs a warning at its creation. Add a task
 * set to the pool returned before calling this again: a temporary pool
 * still without task sets is removed by the next call for another name.
 * EMBER_ENOMEM.
 */
ember_status em_pool_tree_get(em_pool_tree *t, const char *name,
                              em_pool **out, ember_error *err);

/* The pool with this name, or NULL; the root is not findable by name. */
em_pool *em_pool_tree_find(const em_pool_tree *t, const char *name);

/* The pool's name, owned by the pool; the root's is "root". */
const char *em_pool_name(const em_pool *p);

/*
 * Puts e into p (moving it if it is in a pool already; a temporary pool
 * it leaves empty is removed). e->running may be 0 or more; it is added to
 * the counts of p and all its ancestors. e must stay alive and in place
 * until removed or the tree is destroyed.
 */
void em_pool_add_entry(em_pool *p, em_pool_entry *e);

/* Takes e out of its pool, subtracting e->running from its ancestors, and
 * removes that pool if it is temporary and now holds no task set (in its
 * subtree). No-op for NULL or an entry in no pool. */
void em_pool_remove_entry(em_pool_entry *e);

/* Adds delta to e->running (never below 0) and to every ancestor pool's
 * count. Works on entries in no pool too. */
void em_pool_entry_running_add(em_pool_entry *e, int32_t delta);

/* Visitor of em_pool_tree_offer: non-zero accepts and stops the walk. */
typedef int (*em_pool_visit_fn)(em_pool_entry *e, void *ctx);

/*
 * Walks entries in scheduling order, re-sorting each pool's children that
 * hold task sets by the current counts (pools with none are not looked
 * at), skipping whole subtrees of pools at or over their maxShare, and calls fn until it returns non-zero; returns that value, or
 * 0 if no entry accepted. fn may call em_pool_entry_running_add on the
 * entry it accepts; it must not add or remove entries or pools, nor call
 * back into the walk. Allocates nothing: meant to run once per free slot.
 */
int em_pool_tree_offer(em_pool_tree *t, em_pool_visit_fn fn, void *ctx);

/* Stores the scheduling order (as em_pool_tree_offer walks it) in
 * out[0..cap) and returns how many entries it has in all. out may be NULL
 * when cap is 0. */
size_t em_pool_tree_order(em_pool_tree *t, em_pool_entry **out, size_t cap);

/*
 * Iterates all pools, parents before children (siblings in creation
 * order), root excluded; temporary pools removed are no longer listed. *cursor starts at 0. EMBER_OK with *out filled,
 * EMBER_END when done. The tree must not change during an iteration.
 */
ember_status em_pool_tree_next(const em_pool_tree *t, size_t *cursor,
                               em_pool_info *out);

/* ---- Between pool.c and alloc_file.c only ---------------------------- */

/* One pool as an allocation file defines it; parent is an index into the
 * same array (defined earlier), or -1 for the root. */
typedef struct em_pool_def {
    char *name; /* owned by the parser */
    long parent;
    int has_mode; /* 0: schedulingMode not given */
    em_sched_mode mode;
    double weight;
    uint32_t min_share;
    uint32_t max_share;
} em_pool_def;

/* Applies validated definitions (names unique, parents first) to a FAIR
 * tree, all or nothing: EMBER_ENOMEM leaves it unchanged. The pools named
 * become permanent. */
ember_status em_pool_tree_apply(em_pool_tree *t, const em_pool_def *defs,
                                size_t n, ember_error *err);

#endif /* EM_SCHED_POOL_H */
