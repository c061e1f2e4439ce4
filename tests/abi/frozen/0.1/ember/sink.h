/*
 * ember/sink.h — data sinks (component kind "sink").
 *
 * A sink writes one partition per task attempt and commits it through the
 * host's commit arbiter: only one attempt per partition is ever committed,
 * so a retried or speculative attempt never leaves partial output.
 *
 * Kind version 1. Required slots: open, write, commit, abort.
 */
#ifndef EMBER_SINK_H
#define EMBER_SINK_H

#include "ember/batch.h"
#include "ember/host.h"
#include "ember/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_SINK_VERSION 1

typedef struct ember_sink_vtable {
    /* Starts attempt `attempt` of `partition`; arg is the plan's blob
     * (borrowed). Nothing becomes visible before commit. */
    ember_status (*open)(const ember_host_api *host, const uint8_t *arg,
                         size_t arg_len, uint32_t partition, uint32_t attempt,
                         void **writer, ember_error *err);
    ember_status (*write)(void *writer, const ember_batch *records,
                          ember_error *err);
    /* Makes the attempt's output visible (called only for the attempt the
     * arbiter chose); frees the writer either way. */
    ember_status (*commit)(void *writer, ember_error *err);
    /* Removes the attempt's output; frees the writer. */
    void (*abort)(void *writer);
} ember_sink_vtable;

#define EMBER_SINK_COMPONENT(name_, desc_, vtable_)                        \
    EMBER_COMPONENT(EMBER_KIND_SINK, EMBER_SINK_VERSION, name_, desc_,     \
                    vtable_)

#ifdef __cplusplus
}
#endif
#endif /* EMBER_SINK_H */
