/*
 * bcast/bcast.h — the kernel's broadcast values (SEMANTICS S18).
 *
 * The driver hands the kernel a broadcast's bytes once (em_bcast_put);
 * executors fetch them chunk by chunk (BCAST_FETCH, answered by
 * em_bcast_answer with a BCAST_CHUNK, kernel/msg/msg.h), verify each
 * chunk's checksum (em_bcast_checksum) and keep one copy per executor.
 * The kernel keeps the bytes in memory, in chunks of
 * ember.broadcast.blockSize, for as long as the broadcast lives:
 *
 *   live         fetchable
 *   unpersisted  executors were told to drop their copies (REMOVE_BROADCAST);
 *                the kernel keeps the bytes and the next use re-fetches
 *   destroyed    the bytes are gone; a fetch is answered DESTROYED
 *                ("Attempted to use broadcast 3 after it was destroyed")
 *
 * Closing the application forgets all of its broadcasts (a later fetch is
 * answered UNKNOWN) and tells the executors to drop their copies.
 *
 * Every state change is recorded in the state store's `broadcasts` table
 * (schema 3) through a connection of this module's own (SQLite in WAL
 * mode lets it write beside the kernel's; each write is committed at
 * once). A store that cannot be opened or written is logged, and
 * broadcasts work on without it.
 *
 * Threads: every function may be called from any thread; an internal
 * mutex serialises them. `tell` is called without that mutex held.
 */
#ifndef EM_BCAST_BCAST_H
#define EM_BCAST_BCAST_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

typedef struct em_bcast em_bcast;

/* ember.broadcast.blockSize's default, in bytes (Spark's 4m). */
#define EM_BCAST_BLOCK_SIZE_DEFAULT ((size_t)4 << 20)

/* How a broadcast is dropped (ember_broadcast_unpersist / _destroy). */
typedef enum em_bcast_drop_mode {
    EM_BCAST_DROP_UNPERSIST = 0, /* executors' copies only */
    EM_BCAST_DROP_DESTROY = 1    /* everything */
} em_bcast_drop_mode;

/*
 * Sends msg[0..len) (a REMOVE_BROADCAST) to every executor; msg is
 * borrowed for the call. Called on the thread that dropped broadcasts,
 * after the state change, without the module's mutex.
 */
typedef void (*em_bcast_tell_fn)(void *ctx, const uint8_t *msg, size_t len);

/*
 * Creates the broadcast table: chunks of block_size bytes (>= 1),
 * recorded in the state database at state_path (nullable: not recorded),
 * executors told through tell(ctx, ...) (nullable: not told). EMBER_EINVAL
 * for block_size 0, EMBER_ENOMEM. A store that cannot be opened is logged
 * and not an error.
 */
ember_status em_bcast_create(em_bcast **out, size_t block_size,
                             const char *state_path, em_bcast_tell_fn tell,
                             void *ctx, ember_error *err);

/* Frees every broadcast and closes the store connection. NULL-safe. */
void em_bcast_destroy(em_bcast *b);

/*
 * Adds broadcast id of application app with a copy of data[0..len) (data
 * may be NULL when len is 0), live. EMBER_EEXIST when the application
 * already has a broadcast id (of any status), EMBER_ENOMEM.
 */
ember_status em_bcast_put(em_bcast *b, uint64_t app, uint64_t id,
                          const void *data, size_t len, ember_error *err);

/*
 * Unpersists or destroys broadcast id of app and tells the executors to
 * drop their copies. Unpersisting an unpersisted broadcast tells them
 * again (harmless); destroying twice is fine. EMBER_ENOTFOUND for an
 * unknown broadcast; EMBER_EINVAL to unpersist a destroyed one
 * ("Attempted to use broadcast 3 after it was destroyed").
 */
ember_status em_bcast_drop(em_bcast *b, uint64_t app, uint64_t id,
                           em_bcast_drop_mode mode, ember_error *err);

/* Forgets every broadcast of app (recorded as destroyed) and tells the
 * executors to drop their copies. Nothing to do is fine. */
void em_bcast_app_close(em_bcast *b, uint64_t app);

/*
 * Answers the BCAST_FETCH msg[0..len): appends a BCAST_CHUNK to reply —
 * the chunk, or UNKNOWN / DESTROYED / FAILED with a message. EMBER_EINVAL
 * (err says why) when msg is not a valid BCAST_FETCH (reply unchanged),
 * EMBER_ENOMEM / EMBER_ENOSPC from reply.
 */
ember_status em_bcast_answer(em_bcast *b, const uint8_t *msg, size_t len,
                             ember_buf *reply, ember_error *err);

/*
 * The checksum of a chunk: a 64-bit multiply-rotate hash over the bytes
 * read as little-endian 64-bit words (the last one zero-padded), seeded
 * with the length; the same on every platform. It catches corruption,
 * not tampering. data may be NULL when len is 0. Pure.
 */
uint64_t em_bcast_checksum(const void *data, size_t len);

#endif /* EM_BCAST_BCAST_H */
