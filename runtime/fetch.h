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
 * Threads: a server runs its own threads; a client belongs to one task.
 */
#ifndef EM_RUNTIME_FETCH_H
#define EM_RUNTIME_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "ember/buf.h"
#include "ember/shuffle.h"

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

#endif /* EM_RUNTIME_FETCH_H */
