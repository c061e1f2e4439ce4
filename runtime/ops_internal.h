/*
 * runtime/ops_internal.h — the operator objects behind em_pipe (shared by
 * pipeline.c, ops_fn.c, ops_misc.c and ops_pipe.c; not installed).
 *
 * An operator produces its partition's records as batches in its own
 * arena (`buf`, reused every call). `next` returns EMBER_OK with a batch
 * (possibly empty), EMBER_END, or an error with err filled.
 */
#ifndef EM_RUNTIME_OPS_INTERNAL_H
#define EM_RUNTIME_OPS_INTERNAL_H

#include <jansson.h>

#include "ember/function.h"
#include "ember/source.h"
#include "runtime/pipeline.h"

#define EM_OP_MAX_INPUTS 4

typedef struct em_opnode em_opnode;

struct em_opnode {
    ember_status (*next)(em_opnode *o, ember_batch *b, ember_error *err);
    void (*close)(em_opnode *o); /* extra cleanup; may be NULL */
    /* Optional (NULL: not offered): before the first next, moves the
     * whole output, one batch, into *dst (its memory released first) and
     * sets *count; the operator is then at its end. For consumers that
     * gather a whole partition: a cached block is handed over without a
     * copy. EMBER_EUNSUPPORTED once next was called. */
    ember_status (*take)(em_opnode *o, ember_buf *dst, uint64_t *count);
    em_task_env *env;
    const em_node *node;
    uint32_t index;     /* the node's index in the lineage */
    uint32_t partition; /* the partition of this node computed */
    uint32_t depth;     /* narrow steps from the task's final dataset */
    em_opnode *in[EM_OP_MAX_INPUTS];
    uint32_t nin;
    ember_buf buf, buf2; /* output arena, scratch */
    json_t *args;        /* the node's args, or NULL */
    int args_owned;      /* parsed here (else shared by the stage) */
    /* the node's first function (MAP shape), opened for this task */
    const ember_function_vtable *fn;
    void *fn_state;
    int fn_open;
    /* sources */
    const ember_source_vtable *src;
    void *reader;
    /* state of the specific operator */
    uint64_t pos, count, seq;
    int64_t i0, i1, step;
    uint32_t cur;       /* union/coalesce: current input group */
    int done;
    void *extra;        /* operator-owned, freed by close */
};

/* "dataset 3 (map std.parse) partition 7: " into err, then the message. */
ember_status em_op_fail(const em_opnode *o, ember_error *err,
                        ember_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Builds the operator for (node index, partition); recursive over narrow
 * parents up to a depth limit. */
ember_status em_op_build(em_opnode **out, em_task_env *env, uint32_t index,
                         uint32_t partition, uint32_t depth,
                         ember_error *err);
/* em_op_build without the block manager: the node computed (the build of
 * a persisted node's partition that is not cached). */
ember_status em_op_build_uncached(em_opnode **out, em_task_env *env,
                                  uint32_t index, uint32_t partition,
                                  uint32_t depth, ember_error *err);
/* A persisted node (its lineage storage level set) when the task has a
 * block manager: served from the cached block, or built uncached and its
 * output unrolled into a block (ops_cache.c). */
ember_status em_op_build_cached(em_opnode **out, em_task_env *env,
                                uint32_t index, uint32_t partition,
                                uint32_t depth, ember_error *err);
/* A zeroed operator for (node index, partition, depth) with empty
 * buffers, or NULL when out of memory; freed with em_op_free. */
em_opnode *em_op_new(em_task_env *env, uint32_t index, uint32_t partition,
                     uint32_t depth);
/* The block manager's dataset key of (application, dataset). */
uint64_t em_op_cache_key(uint64_t app, uint64_t dataset);
void em_op_free(em_opnode *o);

/* Resolves and opens the node's function number i as a MAP function. */
ember_status em_op_open_fn(em_opnode *o, uint32_t i, ember_error *err);

/* Marks the calling thread as running o's function (see
 * em_pipe_current_partition) until em_op_fn_leave. */
void em_op_fn_enter(const em_opnode *o);
void em_op_fn_leave(void);

/* Checks the cancel flag: EMBER_ECANCELED when set. */
ember_status em_op_check_cancel(const em_opnode *o, ember_error *err);

/* Operator constructors: each sets o->next (and o->close). */
ember_status em_op_init_source(em_opnode *o, ember_error *err);
ember_status em_op_init_fn(em_opnode *o, ember_error *err);
ember_status em_op_init_misc(em_opnode *o, ember_error *err);
ember_status em_op_init_pipe(em_opnode *o, ember_error *err);
/* Datasets whose operation shuffles (or may: joins of co-partitioned
 * parents): every key operation's reduce side. */
ember_status em_op_init_shuffled(em_opnode *o, ember_error *err);
/* checkpoint_read (ops_checkpoint.c): the partition's checkpoint file,
 * or, for a local checkpoint whose block is gone, Spark's failure. */
ember_status em_op_init_checkpoint(em_opnode *o, ember_error *err);
/* cartesian (ops_cartesian.c). */
ember_status em_op_init_cartesian(em_opnode *o, ember_error *err);

/* Reads an integer / number / string member of o->args (dflt if absent);
 * a wrong type is an error naming the field. */
ember_status em_op_arg_int(const em_opnode *o, const char *key, int64_t dflt,
                           int64_t *out, ember_error *err);
ember_status em_op_arg_double(const em_opnode *o, const char *key,
                              double dflt, double *out, ember_error *err);

#endif /* EM_RUNTIME_OPS_INTERNAL_H */
