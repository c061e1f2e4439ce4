/*
 * ember/source.h — data sources (component kind "source").
 *
 * A source turns its argument (a path, a URL, options — the plan's blob)
 * into splits, one per partition, on the driver; executors then open one
 * split each and read it as batches.
 *
 * Kind version 1. Required slots: plan, open, read, close.
 */
#ifndef EMBER_SOURCE_H
#define EMBER_SOURCE_H

#include "ember/batch.h"
#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_SOURCE_VERSION 1

typedef struct ember_source_vtable {
    /* Driver side. Appends one encoded record per split to `splits` (as a
     * batch) and adds their number to *count; at least min_partitions when
     * the input allows. Empty input gives zero splits. Missing or
     * unreadable input is an error naming it. */
    ember_status (*plan)(const ember_host_api *host, const uint8_t *arg,
                         size_t arg_len, uint32_t min_partitions,
                         ember_buf *splits, uint64_t *count,
                         ember_error *err);

    /* Executor side. split (borrowed) is one record produced by plan. */
    ember_status (*open)(const ember_host_api *host, const uint8_t *split,
                         size_t split_len, void **reader, ember_error *err);
    /* Appends up to about max_bytes of records to out, adds their number
     * to *count; EMBER_END when the split is exhausted (nothing added). */
    ember_status (*read)(void *reader, size_t max_bytes, ember_buf *out,
                         uint64_t *count, ember_error *err);
    void (*close)(void *reader);
} ember_source_vtable;

#define EMBER_SOURCE_COMPONENT(name_, desc_, vtable_)                      \
    EMBER_COMPONENT(EMBER_KIND_SOURCE, EMBER_SOURCE_VERSION, name_, desc_, \
                    vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_SOURCE_H */
