/*
 * runtime/bcast.h — an executor's broadcast copies (SEMANTICS S18).
 *
 * The first host->broadcast_value(id) of a task on an executor fetches the
 * broadcast from the kernel chunk by chunk (BCAST_FETCH / BCAST_CHUNK,
 * kernel/msg/msg.h), verifies each chunk's checksum (em_bcast_checksum; a
 * mismatch is fetched once more, then the use fails with EMBER_EIO
 * "broadcast 3 chunk 2 failed its checksum"), and keeps the assembled
 * bytes as the executor's one copy, shared by all its tasks. Tasks that
 * ask while a fetch runs wait for it rather than fetching again. The
 * fetching task thread sends and waits; the link thread only hands the
 * kernel's answers over (em_bcast_cache_on_chunk), so it never blocks.
 *
 * REMOVE_BROADCAST (unpersist, destroy, application closed) drops copies
 * from the cache; a task that already read a copy keeps it until the task
 * ends (em_bcast_cache_task_end): the pointer it was given stays valid.
 *
 * Each fetch of a whole broadcast adds 1 to the host counter
 * "ember.broadcast.fetches" (em_host_counter_value), each chunk fetched
 * again after a bad checksum 1 to "ember.broadcast.refetches".
 *
 * Threads: get and task_end on task threads, on_chunk and on_remove on
 * the link thread, stop anywhere; create and destroy on the executor's
 * owner.
 */
#ifndef EM_RUNTIME_BCAST_H
#define EM_RUNTIME_BCAST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

typedef struct em_bcast_cache em_bcast_cache;

/* Sends msg[0..len) to the kernel (borrowed for the call); any thread.
 * Anything but EMBER_OK fails the fetch. */
typedef ember_status (*em_bcast_send_fn)(void *ctx, const uint8_t *msg,
                                         size_t len);

/* An empty cache whose fetches go out through send(ctx, ...). executor_id
 * (copied) names the executor in messages. timeout_ms (the executor's
 * ember.network.timeout; 0 = none) bounds the wait for each chunk's
 * answer: a kernel that never answers fails the use with EMBER_ETIMEDOUT
 * instead of holding the task. EMBER_ENOMEM. */
ember_status em_bcast_cache_create(em_bcast_cache **out,
                                   const char *executor_id,
                                   int64_t timeout_ms, em_bcast_send_fn send,
                                   void *ctx);

/* The executor is stopping: fetches and waits in progress end with
 * EMBER_ECANCELED, and so do later gets. Any thread. */
void em_bcast_cache_stop(em_bcast_cache *c);

/* Frees the cache and its copies; no task may run any more and no
 * callback may follow. NULL-safe. */
void em_bcast_cache_destroy(em_bcast_cache *c);

/*
 * The bytes of broadcast id of application app: the executor's copy,
 * fetched first when it has none. *data stays valid until the calling
 * thread's task calls em_bcast_cache_task_end. cancel (nullable): the
 * task's cancel flag, checked while waiting. Errors: EMBER_ENOTFOUND
 * (unknown broadcast), EMBER_EINVAL ("Attempted to use broadcast 3 after
 * it was destroyed"), EMBER_EIO (a chunk failed its checksum twice, or
 * the kernel's answers do not fit together), EMBER_ETIMEDOUT (no answer
 * within the cache's timeout), EMBER_ECANCELED (task cancelled, executor
 * stopping), EMBER_ENOMEM, or what send returned.
 */
ember_status em_bcast_cache_get(em_bcast_cache *c, uint64_t app, uint64_t id,
                                atomic_int *cancel, const uint8_t **data,
                                size_t *len, ember_error *err);

/* The calling thread's task is over: releases the copies it read. */
void em_bcast_cache_task_end(em_bcast_cache *c);

/* A BCAST_CHUNK from the kernel (link thread): handed to the fetch that
 * asked for it (copied); one nobody asked for is dropped. */
void em_bcast_cache_on_chunk(em_bcast_cache *c, const uint8_t *msg,
                             size_t len);

/* A REMOVE_BROADCAST from the kernel (link thread): drops those copies. */
void em_bcast_cache_on_remove(em_bcast_cache *c, const uint8_t *msg,
                              size_t len);

#endif /* EM_RUNTIME_BCAST_H */
