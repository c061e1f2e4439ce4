/*
 * msg.h — the messages between the kernel and its executors, and their
 * binary codec.
 *
 * Kernel, executors and clients exchange these messages over NNG (inproc,
 * ipc or tcp); only the transport differs. Launches, status updates and
 * kills carry many tasks per message: a kernel that schedules 100,000 tasks
 * a second batches them. Encoders append to an ember_buf; decoders allocate
 * nothing and hand out views (em_bytes) into the message bytes, so the
 * message must outlive every view taken from it. Batch entries are read
 * with a cursor, one at a time, after the whole message was validated.
 *
 * Wire format, version 1
 * ----------------------
 *   message  = "EMSG" version:u8 type:u8 body          (version is 1)
 *   varint   = unsigned LEB128: 7 bits a byte, low group first, high bit
 *              set on every byte but the last; at most 10 bytes; minimal
 *              (no trailing 0x00 group); the value must fit the field
 *              (u32 fields refuse values above UINT32_MAX).
 *   u8       = one byte: booleans are 0 or 1, enums are range-checked.
 *   str      = varint length, then that many bytes, no NUL among them;
 *              at most EM_MSG_STR_MAX (64 KiB) bytes.
 *   blob     = varint length, then that many bytes (any values); at most
 *              EM_MSG_BLOB_MAX (1 GiB) bytes.
 *   count    = the number of batch entries as a varint padded to exactly
 *              5 bytes: four bytes with the high bit set, then a byte of at
 *              most 0x0F. It is the one non-minimal varint, written so the
 *              count can be filled in after the entries; decoders accept
 *              only this 5-byte form, so the encoding stays canonical.
 *
 *   type                body
 *   1  REGISTER         executor_id:str host:str endpoint:str
 *                       slots:varint(u32) pid:varint(u32)
 *   2  REGISTERED       accepted:u8(bool) reason:str app_id:varint
 *   3  LAUNCH           count, then count tasks, each:
 *                         task_id:varint job_id:varint stage_id:varint
 *                         stage_attempt:varint(u32) partition:varint(u32)
 *                         attempt:varint(u32) speculative:u8(bool)
 *   4  STATUS           count, then count updates, each:
 *                         task_id:varint state:u8(1..5) run_us:varint
 *                         records_in:varint records_out:varint
 *                         bytes_out:varint
 *                       followed, by state, by only the fields that apply:
 *                         RUNNING       nothing
 *                         FINISHED      result:blob
 *                         FAILED        error:str
 *                         KILLED        error:str
 *                         FETCH_FAILED  error:str shuffle_id:varint
 *                                       map_index:varint(u32)
 *                                       lost_executor:str
 *                       (fields that do not apply decode as 0 / empty, and
 *                       encoders refuse them unless 0 / empty)
 *   5  KILL             reason:str count, then count task_id:varint
 *   6  HEARTBEAT        executor_id:str running:varint(u32)
 *   7  SHUTDOWN         reason:str
 *   8  STAGE            stage_id:varint attempt:varint(u32) job_id:varint
 *                       plan:blob (empty: the stage attempt is over and its
 *                       description may be dropped)
 *   9  COMMIT_ASK       task_id:varint stage_id:varint
 *                       stage_attempt:varint(u32) partition:varint(u32)
 *                       attempt:varint(u32)
 *   10 COMMIT_REPLY     task_id:varint allowed:u8(bool)
 *   11 REMOVE_SHUFFLES  reason:str count, then count shuffle_id:varint
 *                       (no job can read these shuffles any more: delete
 *                       their files)
 *   12 REMOVE_BLOCKS    reason:str count, then count key:varint
 *                       (drop the cached blocks of these persisted
 *                       datasets; key = application id << 32 | dataset id)
 *   13 BCAST_FETCH      app:varint bcast_id:varint index:varint(u32)
 *                       (an executor asks for chunk `index` of a
 *                       broadcast of application `app`)
 *   14 BCAST_CHUNK      app:varint bcast_id:varint index:varint(u32)
 *                       outcome:u8(0..3), then by outcome:
 *                         OK         nchunks:varint(u32) total:varint
 *                                    checksum:varint data:blob
 *                         otherwise  error:str
 *                       (the kernel's answer to BCAST_FETCH: the chunk,
 *                       how many there are, the broadcast's length and
 *                       the chunk's checksum, em_bcast_checksum; or why
 *                       not. OK needs index < nchunks and data no longer
 *                       than total)
 *   15 REMOVE_BROADCAST reason:str count, then count entries, each:
 *                         app:varint bcast_id:varint
 *                       (drop these broadcasts' copies: unpersisted,
 *                       destroyed, or of a closed application)
 *   16 REPLICATE        app:varint dataset:varint partition:varint(u32)
 *                       level:str source_id:str source_endpoint:str
 *                       (copy the cached block of the app's dataset
 *                       partition from executor source_id, whose block
 *                       server is at source_endpoint, and keep it at
 *                       level, a Spark level name; level and endpoint are
 *                       never empty)
 *   17 BLOCK_STORED     report:blob (never empty)
 *                       (an executor's block report, runtime/block_report.h,
 *                       for blocks it stored or dropped outside any task:
 *                       a copy REPLICATE asked for and what storing it
 *                       evicted)
 *
 * Nothing may follow the body. A map status (the FINISHED result of a
 * shuffle-map task) is, on its own, count:varint(u32) then count sizes
 * (varint each, bytes written for each reduce partition).
 *
 * Errors. A malformed message is refused with EMBER_EINVAL and a message
 * naming the message type, the batch entry (0-based) when there is one,
 * the field and the byte offset from the start of the message where that
 * field begins, e.g.
 *   STATUS update 3: field 'error' length 900 runs past the end of the
 *   message (offset 57, 40 bytes left)
 * A version other than 1 is EMBER_EVERSION. Encoders refuse values the
 * decoders would refuse (EMBER_EINVAL) and leave the buffer as it was on
 * any failure; EMBER_ENOMEM / EMBER_ENOSPC come from the buffer.
 *
 * Threads: every function here is reentrant; share nothing but the input.
 */
#ifndef EM_MSG_MSG_H
#define EM_MSG_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

/* The wire version this ember speaks. */
#define EM_MSG_VERSION 1
/* Bytes in every message's header: magic, version, type. */
#define EM_MSG_HEADER_LEN 6
/* Longest string field, in bytes. */
#define EM_MSG_STR_MAX ((size_t)64 * 1024)
/* Longest blob field, in bytes. */
#define EM_MSG_BLOB_MAX ((size_t)1 << 30)
/* Bytes of a batch count field (a padded varint). */
#define EM_MSG_COUNT_LEN 5

/* Message types; the comment says who sends it. */
typedef enum em_msg_type {
    EM_MSG_REGISTER = 1,     /* executor -> kernel */
    EM_MSG_REGISTERED = 2,   /* kernel -> executor */
    EM_MSG_LAUNCH = 3,       /* kernel -> executor: batch of tasks */
    EM_MSG_STATUS = 4,       /* executor -> kernel: batch of task updates */
    EM_MSG_KILL = 5,         /* kernel -> executor: batch of task ids */
    EM_MSG_HEARTBEAT = 6,    /* executor -> kernel */
    EM_MSG_SHUTDOWN = 7,     /* kernel -> executor */
    EM_MSG_STAGE = 8,        /* kernel -> executor: a stage's plan, sent
                                once per executor before its tasks */
    EM_MSG_COMMIT_ASK = 9,   /* executor -> kernel: may this attempt commit
                                its output? */
    EM_MSG_COMMIT_REPLY = 10, /* kernel -> executor */
    EM_MSG_REMOVE_SHUFFLES = 11, /* kernel -> executors: batch of shuffle
                                    ids whose files may go */
    EM_MSG_REMOVE_BLOCKS = 12, /* kernel -> executors: batch of persisted
                                  dataset keys whose blocks may go */
    EM_MSG_BCAST_FETCH = 13,  /* executor -> kernel: a broadcast's chunk,
                                 please */
    EM_MSG_BCAST_CHUNK = 14,  /* kernel -> executor: the chunk, or why not */
    EM_MSG_REMOVE_BROADCAST = 15, /* kernel -> executors: batch of (app,
                                     broadcast) whose copies may go */
    EM_MSG_REPLICATE = 16,    /* kernel -> executor: copy a cached block
                                 from another executor (_2/_3 levels) */
    EM_MSG_BLOCK_STORED = 17  /* executor -> kernel: blocks stored or
                                 dropped outside tasks (replicas) */
} em_msg_type;

/*
 * A view of bytes owned by someone else (a received message, the caller's
 * memory). For string fields the bytes are NOT NUL-terminated; use
 * em_bytes_to_cstr. data may be NULL when len is 0.
 */
typedef struct em_bytes {
    const uint8_t *data;
    size_t len;
} em_bytes;

/* REGISTER: an executor introduces itself. */
typedef struct em_msg_register {
    em_bytes executor_id, host, endpoint; /* strings */
    uint32_t slots;                       /* tasks it runs at once */
    uint32_t pid;
} em_msg_register;

/* REGISTERED: the kernel's answer to REGISTER. */
typedef struct em_msg_registered {
    uint8_t accepted; /* 0 or 1 */
    em_bytes reason;  /* string; why not, when refused */
    uint64_t app_id;
} em_msg_registered;

/* One entry of LAUNCH: a task attempt to run. */
typedef struct em_msg_task {
    uint64_t task_id, job_id, stage_id;
    uint32_t stage_attempt, partition, attempt;
    uint8_t speculative; /* 0 or 1 */
} em_msg_task;

/* The state a STATUS update reports. */
typedef enum em_task_state {
    EM_TASK_RUNNING = 1,
    EM_TASK_FINISHED = 2,
    EM_TASK_FAILED = 3,
    EM_TASK_FETCH_FAILED = 4,
    EM_TASK_KILLED = 5
} em_task_state;

/* One entry of STATUS: what happened to a task. */
typedef struct em_msg_update {
    uint64_t task_id;
    uint8_t state;   /* em_task_state */
    uint64_t run_us; /* time the task ran */
    uint64_t records_in, records_out, bytes_out; /* metrics */
    em_bytes result; /* blob. FINISHED: the result task's result, or for a
                        map task its map status (em_map_status_encode);
                        otherwise empty */
    em_bytes accums; /* blob. FINISHED only, else empty: the accumulator
                        updates the attempt made (em_accum_updates, in
                        runtime/accum_wire.h); the kernel merges them */
    em_bytes blocks; /* blob. FINISHED only, else empty: the persisted
                        blocks the attempt stored or dropped on its executor
                        (runtime/block_report.h); the kernel records them */
    em_bytes error;  /* string. FAILED/KILLED/FETCH_FAILED: a message for
                        users; otherwise empty */
    uint64_t shuffle_id;    /* FETCH_FAILED only, else 0 */
    uint32_t map_index;     /* FETCH_FAILED only, else 0: the map output
                               that could not be fetched */
    em_bytes lost_executor; /* string. FETCH_FAILED only, else empty: the
                               executor that held it */
} em_msg_update;

/* STAGE: a stage's plan, sent once per executor before its tasks. */
typedef struct em_msg_stage {
    uint64_t stage_id;
    uint32_t attempt;
    uint64_t job_id;
    em_bytes plan; /* blob: the encoded plan */
} em_msg_stage;

/* COMMIT_ASK: may this task attempt commit its output? */
typedef struct em_msg_commit_ask {
    uint64_t task_id, stage_id;
    uint32_t stage_attempt, partition, attempt;
} em_msg_commit_ask;

/* COMMIT_REPLY: the kernel's answer to COMMIT_ASK. */
typedef struct em_msg_commit_reply {
    uint64_t task_id;
    uint8_t allowed; /* 0 or 1 */
} em_msg_commit_reply;

/* BCAST_FETCH: an executor asks for one chunk of a broadcast. */
typedef struct em_msg_bcast_fetch {
    uint64_t app, bcast_id;
    uint32_t index; /* 0-based chunk number */
} em_msg_bcast_fetch;

/* What a BCAST_CHUNK answers. */
typedef enum em_bcast_outcome {
    EM_BCAST_OK = 0,        /* the chunk follows */
    EM_BCAST_UNKNOWN = 1,   /* no such broadcast (never made, or its
                               application closed) */
    EM_BCAST_DESTROYED = 2, /* the driver destroyed it */
    EM_BCAST_FAILED = 3     /* anything else (a chunk index out of range,
                               out of memory); error says what */
} em_bcast_outcome;

/* BCAST_CHUNK: the kernel's answer to BCAST_FETCH. */
typedef struct em_msg_bcast_chunk {
    uint64_t app, bcast_id;
    uint32_t index;
    uint8_t outcome;   /* em_bcast_outcome */
    uint32_t nchunks;  /* OK only, else 0: chunks of the broadcast (>= 1) */
    uint64_t total;    /* OK only, else 0: the broadcast's bytes */
    uint64_t checksum; /* OK only, else 0: em_bcast_checksum of data */
    em_bytes data;     /* blob. OK only, else empty: the chunk's bytes */
    em_bytes error;    /* string. Not OK only, else empty: for users */
} em_msg_bcast_chunk;

/* REPLICATE: keep a copy of another executor's cached block. */
typedef struct em_msg_replicate {
    uint64_t app, dataset;
    uint32_t partition;
    em_bytes level;           /* string, not empty: a Spark level name */
    em_bytes source_id;       /* string: the executor holding the block */
    em_bytes source_endpoint; /* string, not empty: its block server */
} em_msg_replicate;

/* BLOCK_STORED: blocks an executor stored or dropped outside tasks. */
typedef struct em_msg_block_stored {
    em_bytes report; /* blob, not empty: a block report
                        (runtime/block_report.h) */
} em_msg_block_stored;

/* HEARTBEAT: an executor is alive and runs this many tasks. */
typedef struct em_msg_heartbeat {
    em_bytes executor_id; /* string */
    uint32_t running;
} em_msg_heartbeat;

/* SHUTDOWN: the executor should stop. */
typedef struct em_msg_shutdown {
    em_bytes reason; /* string */
} em_msg_shutdown;

/*
 * Validates the header of data[0..len) (length, magic, version, a known
 * type) and sets *type. EMBER_EINVAL for a short or foreign message or an
 * unknown type, EMBER_EVERSION for another version; err says which.
 * data may be NULL when len is 0.
 */
ember_status em_msg_type_of(const uint8_t *data, size_t len,
                            em_msg_type *type, ember_error *err);

/*
 * Encoders: each appends one whole message to out. EMBER_OK; EMBER_EINVAL
 * when m holds something the format cannot carry (a NUL in a string, a
 * string or blob too long, a boolean other than 0/1, a view with NULL data
 * and nonzero length); EMBER_ENOMEM / EMBER_ENOSPC from out. On failure
 * out is as it was. m's views are copied, not kept.
 */
ember_status em_msg_encode_register(ember_buf *out, const em_msg_register *m);
/* As em_msg_encode_register, for REGISTERED. */
ember_status em_msg_encode_registered(ember_buf *out,
                                      const em_msg_registered *m);
/* As em_msg_encode_register, for STAGE. */
ember_status em_msg_encode_stage(ember_buf *out, const em_msg_stage *m);
/* As em_msg_encode_register, for COMMIT_ASK. */
ember_status em_msg_encode_commit_ask(ember_buf *out,
                                      const em_msg_commit_ask *m);
/* As em_msg_encode_register, for COMMIT_REPLY. */
ember_status em_msg_encode_commit_reply(ember_buf *out,
                                        const em_msg_commit_reply *m);
/* As em_msg_encode_register, for HEARTBEAT. */
ember_status em_msg_encode_heartbeat(ember_buf *out,
                                     const em_msg_heartbeat *m);
/* As em_msg_encode_register, for SHUTDOWN. */
ember_status em_msg_encode_shutdown(ember_buf *out, const em_msg_shutdown *m);
/* As em_msg_encode_register, for BCAST_FETCH. */
ember_status em_msg_encode_bcast_fetch(ember_buf *out,
                                       const em_msg_bcast_fetch *m);
/* As em_msg_encode_register, for BCAST_CHUNK; also EMBER_EINVAL for an
 * outcome outside em_bcast_outcome, fields that do not apply to the
 * outcome and are not 0 / empty, or an OK chunk whose index is not below
 * nchunks or whose data is longer than total. */
ember_status em_msg_encode_bcast_chunk(ember_buf *out,
                                       const em_msg_bcast_chunk *m);
/* As em_msg_encode_register, for REPLICATE; also EMBER_EINVAL for an empty
 * level or source_endpoint. */
ember_status em_msg_encode_replicate(ember_buf *out,
                                     const em_msg_replicate *m);
/* As em_msg_encode_register, for BLOCK_STORED; also EMBER_EINVAL for an
 * empty report. */
ember_status em_msg_encode_block_stored(ember_buf *out,
                                        const em_msg_block_stored *m);

/*
 * A batch message being built in out: LAUNCH, STATUS or KILL. Fields are
 * the builder's; read count if useful, touch nothing. Nothing else may be
 * appended to out between begin and finish.
 */
typedef struct em_msg_batch {
    ember_buf *out;  /* where the message is being built */
    size_t count_at; /* offset in out of the 5-byte count field */
    uint32_t count;  /* entries added so far */
} em_msg_batch;

/*
 * Starts a LAUNCH message at the end of out: writes the header and reserves
 * the 5-byte count field (see the format). out stays owned by the caller
 * and must outlive b. Status as ember_buf_reserve; on failure out is as it
 * was.
 */
ember_status em_msg_launch_begin(em_msg_batch *b, ember_buf *out);
/*
 * Appends one task. EMBER_EINVAL for a bad speculative flag, EMBER_ENOSPC
 * when the batch already holds UINT32_MAX entries, else as ember_buf_reserve.
 * On failure the batch is as it was (earlier entries stay).
 */
ember_status em_msg_launch_add(em_msg_batch *b, const em_msg_task *t);
/* Starts a STATUS message; as em_msg_launch_begin. */
ember_status em_msg_status_begin(em_msg_batch *b, ember_buf *out);
/*
 * Appends one update. EMBER_EINVAL for a state outside em_task_state, for
 * a field that does not apply to the state and is not 0 / empty, or for a
 * bad string or blob; otherwise as em_msg_launch_add.
 */
ember_status em_msg_status_add(em_msg_batch *b, const em_msg_update *u);
/*
 * Starts a KILL message with a reason (NULL means none; NUL-terminated,
 * at most EM_MSG_STR_MAX bytes, else EMBER_EINVAL); as em_msg_launch_begin.
 */
ember_status em_msg_kill_begin(em_msg_batch *b, ember_buf *out,
                               const char *reason);
/* Appends one task id to a KILL; as em_msg_launch_add. */
ember_status em_msg_kill_add(em_msg_batch *b, uint64_t task_id);
/* Starts a REMOVE_SHUFFLES message; as em_msg_kill_begin. */
ember_status em_msg_remove_shuffles_begin(em_msg_batch *b, ember_buf *out,
                                          const char *reason);
/* Appends one shuffle id to a REMOVE_SHUFFLES; as em_msg_launch_add. */
ember_status em_msg_remove_shuffles_add(em_msg_batch *b, uint64_t shuffle_id);
/* Starts a REMOVE_BLOCKS message; as em_msg_kill_begin. */
ember_status em_msg_remove_blocks_begin(em_msg_batch *b, ember_buf *out,
                                        const char *reason);
/* Appends one dataset key to a REMOVE_BLOCKS; as em_msg_launch_add. */
ember_status em_msg_remove_blocks_add(em_msg_batch *b, uint64_t key);
/* Starts a REMOVE_BROADCAST message; as em_msg_kill_begin. */
ember_status em_msg_remove_broadcast_begin(em_msg_batch *b, ember_buf *out,
                                           const char *reason);
/* Appends one (application, broadcast) to a REMOVE_BROADCAST; as
 * em_msg_launch_add. */
ember_status em_msg_remove_broadcast_add(em_msg_batch *b, uint64_t app,
                                         uint64_t bcast_id);
/*
 * Writes the entry count into the message; it is then complete (a batch of
 * zero entries is a valid message). EMBER_EINVAL if out was shortened
 * below the count field since begin.
 */
ember_status em_msg_batch_finish(em_msg_batch *b);

/*
 * Decoders of single messages: validate all of d[0..n) and fill *m with
 * views into d. EMBER_EINVAL (wrong type, malformed, trailing bytes) or
 * EMBER_EVERSION, with err (may be NULL) saying what and where; *m is then
 * zeroed. Nothing is allocated.
 */
ember_status em_msg_decode_register(const uint8_t *d, size_t n,
                                    em_msg_register *m, ember_error *err);
/* As em_msg_decode_register, for REGISTERED. */
ember_status em_msg_decode_registered(const uint8_t *d, size_t n,
                                      em_msg_registered *m, ember_error *err);
/* As em_msg_decode_register, for STAGE. */
ember_status em_msg_decode_stage(const uint8_t *d, size_t n, em_msg_stage *m,
                                 ember_error *err);
/* As em_msg_decode_register, for COMMIT_ASK. */
ember_status em_msg_decode_commit_ask(const uint8_t *d, size_t n,
                                      em_msg_commit_ask *m, ember_error *err);
/* As em_msg_decode_register, for COMMIT_REPLY. */
ember_status em_msg_decode_commit_reply(const uint8_t *d, size_t n,
                                        em_msg_commit_reply *m,
                                        ember_error *err);
/* As em_msg_decode_register, for HEARTBEAT. */
ember_status em_msg_decode_heartbeat(const uint8_t *d, size_t n,
                                     em_msg_heartbeat *m, ember_error *err);
/* As em_msg_decode_register, for SHUTDOWN. */
ember_status em_msg_decode_shutdown(const uint8_t *d, size_t n,
                                    em_msg_shutdown *m, ember_error *err);
/* As em_msg_decode_register, for BCAST_FETCH. */
ember_status em_msg_decode_bcast_fetch(const uint8_t *d, size_t n,
                                       em_msg_bcast_fetch *m,
                                       ember_error *err);
/* As em_msg_decode_register, for BCAST_CHUNK (refusing what
 * em_msg_encode_bcast_chunk refuses). */
ember_status em_msg_decode_bcast_chunk(const uint8_t *d, size_t n,
                                       em_msg_bcast_chunk *m,
                                       ember_error *err);
/* As em_msg_decode_register, for REPLICATE (refusing an empty level or
 * source_endpoint). */
ember_status em_msg_decode_replicate(const uint8_t *d, size_t n,
                                     em_msg_replicate *m, ember_error *err);
/* As em_msg_decode_register, for BLOCK_STORED (refusing an empty
 * report). */
ember_status em_msg_decode_block_stored(const uint8_t *d, size_t n,
                                        em_msg_block_stored *m,
                                        ember_error *err);

/*
 * A reader over the entries of a validated batch message. p/end bound the
 * entries not yet read, remaining counts them and index is the 0-based
 * number of the next one. Made by an _open function; views handed out
 * point into the message, which must outlive them.
 */
typedef struct em_msg_cursor {
    const uint8_t *p, *end;
    uint32_t remaining;
    uint32_t index;
} em_msg_cursor;

/*
 * Validates a whole LAUNCH message, every entry included, and sets *c to
 * its first task: a batch is either entirely valid or refused before any
 * entry is acted on. A count that the remaining bytes cannot hold is
 * refused before any entry is looked at. Errors as em_msg_decode_register;
 * *c is then empty (next returns EMBER_END).
 */
ember_status em_msg_launch_open(const uint8_t *d, size_t n, em_msg_cursor *c,
                                ember_error *err);
/*
 * Reads the next task into *t: EMBER_OK, or EMBER_END when there is none.
 * EMBER_EINVAL only if the bytes changed since open.
 */
ember_status em_msg_launch_next(em_msg_cursor *c, em_msg_task *t);
/* As em_msg_launch_open, for STATUS. */
ember_status em_msg_status_open(const uint8_t *d, size_t n, em_msg_cursor *c,
                                ember_error *err);
/* As em_msg_launch_next, for STATUS updates. */
ember_status em_msg_status_next(em_msg_cursor *c, em_msg_update *u);
/* As em_msg_launch_open, for KILL; also sets *reason (a string view). */
ember_status em_msg_kill_open(const uint8_t *d, size_t n, em_bytes *reason,
                              em_msg_cursor *c, ember_error *err);
/* As em_msg_launch_next, for KILL task ids. */
ember_status em_msg_kill_next(em_msg_cursor *c, uint64_t *task_id);
/* As em_msg_kill_open, for REMOVE_SHUFFLES. */
ember_status em_msg_remove_shuffles_open(const uint8_t *d, size_t n,
                                         em_bytes *reason, em_msg_cursor *c,
                                         ember_error *err);
/* As em_msg_launch_next, for REMOVE_SHUFFLES shuffle ids. */
ember_status em_msg_remove_shuffles_next(em_msg_cursor *c,
                                         uint64_t *shuffle_id);
/* As em_msg_kill_open, for REMOVE_BLOCKS. */
ember_status em_msg_remove_blocks_open(const uint8_t *d, size_t n,
                                       em_bytes *reason, em_msg_cursor *c,
                                       ember_error *err);
/* As em_msg_launch_next, for REMOVE_BLOCKS dataset keys. */
ember_status em_msg_remove_blocks_next(em_msg_cursor *c, uint64_t *key);
/* As em_msg_kill_open, for REMOVE_BROADCAST. */
ember_status em_msg_remove_broadcast_open(const uint8_t *d, size_t n,
                                          em_bytes *reason, em_msg_cursor *c,
                                          ember_error *err);
/* As em_msg_launch_next, for REMOVE_BROADCAST entries. */
ember_status em_msg_remove_broadcast_next(em_msg_cursor *c, uint64_t *app,
                                          uint64_t *bcast_id);

/*
 * Appends a map status to out: n, then sizes[0..n) (bytes per reduce
 * partition). sizes may be NULL when n is 0 (else EMBER_EINVAL). Status
 * as ember_buf_reserve; on failure out is as it was.
 */
ember_status em_map_status_encode(ember_buf *out, const uint64_t *sizes,
                                  uint32_t n);
/*
 * Decodes the map status in `in` into sizes_out[0..expected_n). EMBER_EINVAL
 * with err when malformed, when it holds another number of sizes than
 * expected_n, or when bytes follow it; sizes_out is then left unchanged.
 */
ember_status em_map_status_decode(em_bytes in, uint32_t expected_n,
                                  uint64_t *sizes_out, ember_error *err);

/* "LAUNCH", "STATUS", ...; "UNKNOWN" for anything else. Never NULL. */
const char *em_msg_type_name(em_msg_type t);
/* "RUNNING", "FINISHED", ...; "UNKNOWN" for anything else. Never NULL. */
const char *em_task_state_name(uint8_t s);

/*
 * Copies b into buf as a NUL-terminated string (cap counts the NUL).
 * EMBER_ENOSPC when b.len + 1 > cap (buf then holds "" if cap > 0).
 */
ember_status em_bytes_to_cstr(em_bytes b, char *buf, size_t cap);

#endif /* EM_MSG_MSG_H */
