/*
 * dag/lineage.h — the lineage graph a driver sends to the kernel, its plan
 * (JSON) form, and Spark's toDebugString.
 *
 * A lineage is a DAG of datasets (nodes) in topological order: every
 * parent's index is smaller than its child's. Each node names an operation
 * from the table in ops.c, its parents with the dependency kind (narrow or
 * shuffle), a partition count, a partitioner, function references
 * ("plugin.symbol" plus an argument blob), a storage level, a checkpoint
 * flag and a declared determinism (SEMANTICS "do better" 3).
 *
 * Lineages are made by em_lineage_decode / em_lineage_decode_datasets,
 * which validate everything (hostile input gets a clear error, never a
 * crash, hang or unbounded recursion). A decoded lineage is immutable: any
 * number of threads may read it at once; em_lineage_free must not race
 * with readers.
 */
#ifndef EMBER_KERNEL_DAG_LINEAGE_H
#define EMBER_KERNEL_DAG_LINEAGE_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

/* Limits enforced by the decoder. */
#define EM_LINEAGE_MAX_DATASETS 1000000u
#define EM_LINEAGE_MAX_PARENTS 64u
#define EM_LINEAGE_MAX_FNS 16u
#define EM_LINEAGE_MAX_PARTITIONS 16777216u       /* 2^24 */
#define EM_LINEAGE_MAX_STRING 65536u              /* bytes, any string */
#define EM_LINEAGE_MAX_BLOB (64u * 1024u * 1024u) /* decoded arg/bounds */
#define EM_LINEAGE_MAX_DOCUMENT (1024u * 1024u * 1024u)
#define EM_LINEAGE_MAX_ARGS_DEPTH 64u             /* nesting of "args" */
#define EM_LINEAGE_MAX_ID 9007199254740992ull     /* 2^53 */

/* How a child reads a parent: partition by partition, or through a shuffle. */
typedef enum em_dep_kind { EM_DEP_NARROW = 0, EM_DEP_SHUFFLE = 1 } em_dep_kind;

/*
 * How repeatable a dataset's output is, ordered DETERMINATE < UNORDERED <
 * INDETERMINATE. Same values as ember_determinism in ember/function.h.
 */
typedef enum em_determinism {
    EM_DET_DETERMINATE = 1,  /* same records in the same order */
    EM_DET_UNORDERED = 2,    /* same multiset per partition, any order */
    EM_DET_INDETERMINATE = 3 /* anything */
} em_determinism;

/* The kinds of partitioner. */
typedef enum em_part_kind {
    EM_PART_NONE = 0,
    EM_PART_HASH = 1,
    EM_PART_RANGE = 2,
    EM_PART_FUNCTION = 3
} em_part_kind;

/* Which dependency kinds an operation takes on its parents. */
typedef enum em_op_deps {
    EM_OP_DEPS_NARROW = 0,
    EM_OP_DEPS_SHUFFLE = 1,
    /* narrow on a parent already partitioned like the node, else shuffle */
    EM_OP_DEPS_EITHER = 2
} em_op_deps;

/* How an operation's partition count follows from its parents. */
typedef enum em_op_parts {
    EM_OP_PARTS_GIVEN = 0,      /* sources: the plan says */
    EM_OP_PARTS_SAME = 1,       /* = parent(s), all equal */
    EM_OP_PARTS_SUM = 2,        /* union (see em_op_out) */
    EM_OP_PARTS_AT_MOST = 3,    /* coalesce: 1..parent */
    EM_OP_PARTS_PRODUCT = 4,    /* cartesian */
    EM_OP_PARTS_PARTITIONER = 5 /* = partitioner.partitions */
} em_op_parts;

/*
 * Which partitioner a node's output carries (S13), for em_op.out_part.
 * Only a partitioner that places records by their key is propagated:
 * downstream it lets a child skip a shuffle, so claiming one wrongly would
 * give wrong results, while dropping one only costs a shuffle.
 */
typedef enum em_op_out {
    EM_OUT_NONE = 0,   /* no partitioner (map, keys, coalesce, ...) */
    EM_OUT_OWN = 1,    /* the partitioner the plan gave (shuffle ops) */
    EM_OUT_PARENT = 2, /* the parent's (filter, map_values, sample, ...) */
    /* the parent's when args {"preserves_partitioning": true}, else none
     * (map_partitions, map_partitions_with_index) */
    EM_OUT_PARENT_IF_ARG = 3,
    /* union: the parents' when all have the same one; the node then has
     * that many partitions and partition i reads partition i of every
     * parent (Spark's PartitionerAwareUnionRDD); otherwise none, and the
     * parents' partitions are laid end to end (SUM) */
    EM_OUT_UNION = 4
} em_op_out;

/*
 * An entry of the operation table. The first eight fields are the shape
 * the DAG scheduler is written against; out_part and key_ordered are
 * additions of this module.
 */
typedef struct em_op {
    const char *name;
    uint8_t min_parents, max_parents; /* max 255 = any up to
                                         EM_LINEAGE_MAX_PARENTS */
    uint8_t deps;                     /* em_op_deps */
    uint8_t min_fns, max_fns;
    uint8_t parts;                    /* em_op_parts */
    uint8_t order_sensitive;          /* output order depends on input order
                                         (zip, zip_with_unique_id,
                                         zip_with_index, repartition,
                                         coalesce, sample, glom) */
    uint8_t needs_partitioner;        /* the plan must give a partitioner
                                         (1), or may (EM_OP_NP_OPTIONAL:
                                         checkpoint_read); either way the
                                         node owns it */
    uint8_t out_part;                 /* em_op_out */
    uint8_t key_ordered;              /* a shuffle op whose output is sorted
                                         by key (sort_by_key,
                                         repartition_and_sort_within_
                                         partitions): DETERMINATE after a
                                         shuffle of a non-INDETERMINATE
                                         parent */
} em_op;

/* em_op.needs_partitioner of an op whose plan may give a partitioner
 * (checkpoint_read, which keeps the one of the dataset it replaces). */
#define EM_OP_NP_OPTIONAL 2

/*
 * The operation called name (NUL-terminated), or NULL if there is none.
 * The table is static and immutable; any thread.
 */
const em_op *em_op_find(const char *name);

/*
 * A reference to a plugin function: name is "plugin.symbol", arg an opaque
 * argument blob (NULL when arg_len is 0).
 */
typedef struct em_fn_ref {
    char *name;
    uint8_t *arg;
    size_t arg_len;
} em_fn_ref;

/*
 * A partitioner. For a node whose op needs a partitioner this is the one
 * the plan gave (the node owns its memory). For other nodes it is the
 * output partitioner inherited per em_op.out_part: a shallow copy whose
 * fn.name, fn.arg and bounds point into the ancestor that declared it
 * (valid as long as the lineage), or kind EM_PART_NONE with all fields 0.
 *
 * class_id is filled in by the decoder: within one decoded lineage two
 * partitioners have the same class_id exactly when em_partitioner_equal
 * holds for them, so comparing them is O(1) however big their bounds or
 * arguments; 0 for kind NONE, 1, 2, ... in order of first declaration
 * otherwise. Ids of different lineages are unrelated, and a hand-built
 * lineage may leave them 0. Not part of the plan, the encoding or the
 * fingerprint.
 */
typedef struct em_partitioner {
    em_part_kind kind;
    uint32_t partitions;
    em_fn_ref fn;                        /* FUNCTION */
    uint8_t *bounds; size_t bounds_len;  /* RANGE: optional, encoded records
                                            back to back (opaque here) */
    int descending;                      /* RANGE */
    uint32_t class_id;                   /* see above */
} em_partitioner;

/* A parent edge: parent is an index into em_lineage.nodes, always smaller
 * than the child's index. */
typedef struct em_dep {
    uint32_t parent;
    em_dep_kind kind;
} em_dep;

/* A dataset. All pointers are owned by the lineage (see em_partitioner). */
typedef struct em_node {
    uint64_t id;                 /* the driver's dataset id, unique */
    const em_op *op;             /* points into the static table */
    em_dep *deps; uint32_t ndeps;
    uint32_t partitions;         /* resolved (0 only for an empty source) */
    em_partitioner partitioner;  /* see em_partitioner */
    em_fn_ref *fns; uint32_t nfns;
    char *args_json;             /* op arguments: compact JSON object text
                                    with sorted keys, or NULL */
    char *storage;               /* NULL or a Spark storage level name */
    int checkpoint;
    em_determinism determinism;  /* declared (default DETERMINATE) */
    em_determinism output_determinism; /* computed at decode */
    uint64_t fingerprint;        /* computed at decode: hash of the node's
                                    definition and its parents' fingerprints;
                                    equal iff same definition and ancestry */
    char *name;                  /* optional label, NULL if none */
} em_node;

/* An entry of a lineage's id index. */
typedef struct em_lineage_slot {
    uint64_t id;
    uint32_t index;
} em_lineage_slot;

/*
 * The graph: count nodes in topological order. by_id is an addition of
 * this module: count entries sorted by id, filled by the decoder, so
 * em_lineage_find is O(log n); a lineage built by hand may leave it NULL
 * (em_lineage_find then scans).
 */
typedef struct em_lineage {
    em_node *nodes;
    uint32_t count;
    em_lineage_slot *by_id;
    struct em_accum_decl *accums; /* the plan's "accumulators", sorted by
                                     id (em_accum_decls_decode), or NULL */
    uint32_t naccums;
} em_lineage;

/*
 * An accumulator a plan declares (docs/plan-format.md "Accumulators"):
 * its id (unique in the plan, 1..2^53), its kind ("int64", "double" or
 * the "plugin.fn" of a REDUCE function that merges two values) and its
 * name (NULL when unnamed). Owned by the lineage or array holding it.
 */
typedef struct em_accum_decl {
    uint64_t id;
    char *kind;
    char *name;
} em_accum_decl;

/* Most accumulators one plan may declare. */
#define EM_LINEAGE_MAX_ACCUMS 65536u

/*
 * Resolver for function names: exists returns non-zero if a loaded plugin
 * provides the function "plugin.symbol". Called on the decoding thread.
 * A NULL resolver means names are only checked for syntax.
 */
typedef struct em_fn_resolver {
    int (*exists)(void *ctx, const char *qualified_name);
    void *ctx;
} em_fn_resolver;

/* Frees l and everything it owns. NULL-safe. */
void em_lineage_free(em_lineage *l);

/*
 * Decodes a plan's "accumulators" array (a json_t * from <jansson.h>; the
 * caller keeps it) into *out (n entries sorted by id, or NULL when empty;
 * free with em_accum_decls_free). Each entry is {"id": INT, "kind": KIND,
 * "name": STRING or null or absent}; KIND is "int64", "double" or a
 * function name, checked by resolver when it is not NULL. Errors name the
 * entry and field: "plan: accumulators[1].kind: unknown kind 'float' ...",
 * "plan: accumulators[2]: id 3 is declared twice". EMBER_EINVAL,
 * EMBER_ENOMEM. Reentrant.
 */
ember_status em_accum_decls_decode(const void *json_accums,
                                   const em_fn_resolver *resolver,
                                   em_accum_decl **out, uint32_t *n,
                                   ember_error *err);

/* Frees n declarations from em_accum_decls_decode. NULL-safe. */
void em_accum_decls_free(em_accum_decl *d, uint32_t n);

/*
 * Decodes a plan document {"ember_plan": 1, "datasets": [...]} of len
 * bytes (need not be NUL-terminated) into a new lineage (*out, free with
 * em_lineage_free). All-or-nothing: on failure *out is NULL and err says
 * what and where ("plan: dataset 3 (map): ..."). EMBER_EINVAL for bad
 * input, EMBER_EVERSION for another format version, EMBER_ENOMEM.
 * Reentrant.
 */
ember_status em_lineage_decode(em_lineage **out, const char *json, size_t len,
                               const em_fn_resolver *resolver,
                               ember_error *err);

/*
 * As em_lineage_decode for the "datasets" array alone, a json_t * (from
 * <jansson.h>) that belongs to a bigger document; the caller keeps it.
 */
ember_status em_lineage_decode_datasets(em_lineage **out,
                                        const void *json_datasets,
                                        const em_fn_resolver *resolver,
                                        ember_error *err);

/*
 * Canonical encoding of l: a plan document, compact, keys in a fixed
 * order, nodes in l's order, every derived value written out. For a
 * decoded lineage, decoding the encoding gives the same graph and
 * fingerprints, and encoding that again gives the same bytes. *out is
 * malloc'd and NUL-terminated, *len its length without the NUL (len may
 * be NULL). EMBER_EINVAL if l is not well formed (NULL op, parent index not
 * below the child's), EMBER_ENOMEM.
 */
ember_status em_lineage_encode(const em_lineage *l, char **out, size_t *len,
                               ember_error *err);

/* Index of the node with dataset id, or -1. O(log n) with by_id. */
int64_t em_lineage_find(const em_lineage *l, uint64_t id);

/*
 * Spark's RDD.toDebugString for the node at index into *out (malloc'd,
 * NUL-terminated, lines joined by '\n' without a final one). A line is
 * "(N) op [id] name [STORAGE] checkpoint" (name and checkpoint only when
 * set; control characters in names print as spaces); a checkpoint_read
 * ends in " checkpoint DIR" or " [local checkpoint]" instead. A narrow parent is
 * printed under the same prefix, a shuffle parent as "+-(N) " one level
 * in; the parents of a node with several parents all carry "(N) ". A
 * dataset reached twice is printed twice. At most 1,000,000 lines and
 * 64 MiB, then a last line "...". EMBER_EINVAL for a bad index.
 */
ember_status em_lineage_debug_string(const em_lineage *l, uint32_t index,
                                     char **out, ember_error *err);

/*
 * The partitioner that places node n's output records by key, which a child
 * may be co-partitioned with, or NULL (kind NONE, or an op such as
 * distinct or repartition that shuffles by something other than the key).
 */
const em_partitioner *em_node_output_partitioner(const em_node *n);

/* Non-zero when a and b are the same partitioner (kind, partitions, fn name
 * and arg, bounds, descending). NULL equals only a kind NONE partitioner.
 * Compares contents (class_id is ignored), so it costs up to the size of
 * the bounds or argument; within one decoded lineage compare class_id. */
int em_partitioner_equal(const em_partitioner *a, const em_partitioner *b);

/* "narrow" / "shuffle" ("?" for other values). Static strings. */
const char *em_dep_kind_name(em_dep_kind k);
/* "deterministic" / "unordered" / "indeterminate", as in the plan; "?". */
const char *em_determinism_name(em_determinism d);
/* "none" / "hash" / "range" / "function"; "?". */
const char *em_part_kind_name(em_part_kind k);

/* Spark's storage level names (StorageLevel.fromString, exact case):
 * the static copy of name when it is one, else NULL. "NONE" is one. */
const char *em_storage_level_known(const char *name);

/* Every level name, comma-separated (static), for messages. */
const char *em_storage_level_list(void);

#endif /* EMBER_KERNEL_DAG_LINEAGE_H */
