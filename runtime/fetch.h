/*
 * runtime/fetch.h — moving shuffle blocks between executors.
 *
 * A reduce task reads the blocks its executor holds straight from the
 * shuffle manager, and fetches the others from the executor that wrote
 * them: one request at a time per peer, each asking for a list of map
 * outputs of one reduce partition and a byte budget. The server answers
 * with whole blocks, as many as fit the budget (at least one), and the
 * client asks again for the rest — so a task never has more than
 * ember.reducer.maxSizeInFlight bytes (or one block, if bigger) requested
 * and not yet stored.
 *
 * Wire format (NNG req/rep), version 1:
 *   request = "EMBF" 1 1 shuffle:varint partition:varint(u32)
 *             max_bytes:varint count:varint(u32) then count map:varint(u32)
 *   reply   = "EMBF" 1 2 status:u8
 *             status 0: count:varint then count blocks, each
 *                       map:varint records:varint len:varint bytes[len]
 *                       (bytes: the block's records, batch-framed)
 *             status 1: map:varint code:u8 (1 missing, 2 corrupt, 3 other)
 *                       message:varint-length string
 * Replies to malformed requests are status 1 with map 0 and code 3.
 *
 * The same server serves cached blocks of persisted datasets from the
 * executor's block manager (runtime/block_mgr.h), for replicas of _2/_3
 * storage levels (runtime/block_replicate.h):
 *   request = "EMBF" 1 3 key:varint partition:varint(u32)
 *             (key: the manager's dataset key, app << 32 | dataset)
 *   reply   = "EMBF" 1 4 status:u8
 *             status 0: records:varint len:varint bytes[len]
 *                       (the block's records, batch-framed, decoded)
 *             status 1: code:u8 (1 missing, 2 corrupt, 3 other)
 *                       message:varint-length string
 * A server without a block manager answers every such request "missing".
 *
 * Threads: a server runs its own threads; a client belongs to one task
 * (or the one thread replicating), but em_fetch_cancel may come from any.
 */
#ifndef EM_RUNTIME_FETCH_H
#define EM_RUNTIME_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "ember/buf.h"
#include "ember/shuffle.h"
#include "runtime/block_mgr.h"

typedef struct em_block_server em_block_server;

/*
 * Starts a server on url answering from the manager (vt, state, both
 * borrowed until stop). For "tcp://host:0" the port is chosen by the
 * system; *bound (cap bytes) gets the address clients should dial.
 */
ember_status em_block_server_start(em_block_server **out, const char *url,
                                   const ember_shuffle_vtable *vt,
                                   void *state, char *bound, size_t cap,
                                   ember_error *err);
/* Stops serving and joins its threads. NULL-safe. */
void em_block_server_stop(em_block_server *s);

/*
 * Serves cached blocks from m (borrowed: it must outlive the server, or
 * be unset with NULL first) from now on. Any thread; s NULL: nothing.
 */
void em_block_server_set_blocks(em_block_server *s, em_block_mgr *m);

/*
 * Builds the reply to a cached-block request req[0..n) into reply (reset
 * first), reading the block from m (NULL: every block is missing).
 * Exposed for tests; the server calls it.
 */
void em_fetch_serve_block(em_block_mgr *m, const uint8_t *req, size_t n,
                          ember_buf *reply);

/*
 * Builds the reply to request req[0..n) into reply (reset first), reading
 * blocks from the manager. Exposed for tests; the server calls it.
 */
void em_fetch_serve(const ember_shuffle_vtable *vt, void *state,
                    const uint8_t *req, size_t n, ember_buf *reply);

typedef struct em_fetch_client em_fetch_client;

/* Connects to a block server; timeout_ms bounds each request's wait. */
ember_status em_fetch_open(em_fetch_client **out, const char *endpoint,
                           int64_t timeout_ms, ember_error *err);
void em_fetch_close(em_fetch_client *c);

/*
 * Fetches the blocks (shuffle, maps[k], partition) for k < n and appends
 * their records to out (batch framing), adding their number to *count.
 * max_bytes is the budget of one request. On failure *failed_map is the
 * map output that could not be had (the first one still missing when the
 * peer itself failed) and err says why.
 */
ember_status em_fetch_blocks(em_fetch_client *c, uint64_t shuffle_id,
                             uint32_t partition, const uint32_t *maps,
                             uint32_t n, uint64_t max_bytes, ember_buf *out,
                             uint64_t *count, uint32_t *failed_map,
                             ember_error *err);

/*
 * Fetches the cached block (key, partition) — key as the block manager's,
 * app << 32 | dataset — appending its records (batch framing) to out and
 * setting *count to their number. EMBER_ENOTFOUND when the server does
 * not hold it, EMBER_EINVAL when it reads as corrupt there, EMBER_EIO for
 * a transport failure or a malformed reply, EMBER_ECANCELED after
 * em_fetch_cancel; err says which. On failure out is as it was.
 */
ember_status em_fetch_block(em_fetch_client *c, uint64_t key,
                            uint32_t partition, ember_buf *out,
                            uint64_t *count, ember_error *err);

/*
 * Makes the request c is waiting for, and every later one, fail at once
 * (EMBER_ECANCELED): for a thread stopping the one that fetches. c must
 * still be closed by its owner, after its call returned. Any thread.
 */
void em_fetch_cancel(em_fetch_client *c);

#endif /* EM_RUNTIME_FETCH_H */
