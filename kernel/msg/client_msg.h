/*
 * msg/client_msg.h — the messages between clients (drivers, the `ember`
 * CLI) and emberd, and their binary codec.
 *
 * Every message is one envelope: a type, the id of the request it belongs
 * to, a small JSON header and an opaque body. The codec checks the
 * envelope only; the header's JSON (that it parses, is an object, and has
 * the fields of its type with the right JSON types) is checked by whoever
 * reads it. Decoding allocates nothing: the decoded message is made of
 * views into the received bytes, which must outlive it.
 *
 * Wire format, version 1
 * ----------------------
 *   message = "EMCL" version:u8 type:u8 req_id:varint header:str body:blob
 *   varint  = unsigned LEB128, at most 10 bytes, minimal (as msg.h)
 *   str     = varint length, then that many bytes, no NUL among them, at
 *             most EM_CMSG_HEADER_MAX (1 MiB)
 *   blob    = varint length, then that many bytes, at most
 *             EM_CMSG_BODY_MAX (1 GiB)
 * Nothing may follow the body.
 *
 * Requests carry a req_id chosen by the client (unique among its pending
 * requests); every reply, and every RESULT and END of a job, carries the
 * req_id of the request it answers. Header fields by type (all required
 * unless marked "or null"):
 *
 *   type              sender  header                          body
 *   1  HELLO          client  {"app": str, "version": str}    -
 *   2  WELCOME        service {"app_id": int, "slots": int,   -
 *                              "default_parallelism": int,
 *                              "master": str}
 *   3  ERROR          service {"status": int, "message": str} -
 *   4  OK             service {}                              -
 *   5  PLUGIN_HAVE    client  {"name": str, "sha256": hex}    -
 *   6  PLUGIN_NEED    service {"need": bool}                  -
 *   7  PLUGIN_PUT     client  {"name": str, "sha256": hex}    the .so file
 *   8  SPLITS         client  {"source": str,                 the source's
 *                              "min_partitions": int}         argument
 *   9  SPLITS_REPLY   service {"count": int}                  the splits
 *   10 SUBMIT         client  {"dataset": int,                the plan
 *                              "partitions": [int] or null,
 *                              "pool": str or null,
 *                              "group": str or null,
 *                              "description": str or null,
 *                              "action": object or null}
 *   11 JOB            service {"job_id": int}                 -
 *   12 RESULT         service {"job_id": int,                 the result
 *                              "partition": int}
 *   13 END            service {"job_id": int, "status": int,  -
 *                              "message": str}
 *   14 CANCEL         client  {"job_id": int}                 -
 *   15 STATUS         client  {"job_id": int}                 -
 *   16 INFO           service {"job": object} (STATUS) or     -
 *                             {"jobs": [object]} (LIST)
 *   17 LIST           client  {"running": bool}               -
 *   18 UNPERSIST      client  {"dataset": int}                -
 *   19 BROADCAST      client  {"id": int}                     the value
 *   20 BROADCAST_DROP client  {"id": int, "mode":             -
 *                              "unpersist" or "destroy"}
 *   21 ACCUMS         service {"job_id": int}                 the values
 *                                                             (runtime/
 *                                                             accum_wire.h)
 *
 * Replies: HELLO -> WELCOME; PLUGIN_HAVE -> PLUGIN_NEED; PLUGIN_PUT -> OK;
 * SPLITS -> SPLITS_REPLY; SUBMIT -> JOB, then RESULT*, ACCUMS (when the
 * application has accumulators: their values at the job's end) and
 * exactly one END;
 * CANCEL, UNPERSIST, BROADCAST, BROADCAST_DROP -> OK; STATUS, LIST ->
 * INFO. Any request may be answered by ERROR instead ("status" is an
 * ember_status). A message the service cannot
 * decode is answered by ERROR with req_id 0.
 *
 * Errors. A malformed envelope is refused with EMBER_EINVAL and a message
 * naming the field and its byte offset, e.g.
 *   client message: field 'body' length 900 runs past the end of the
 *   message (offset 57, 40 bytes left)
 * A version other than 1 is EMBER_EVERSION; an unknown type EMBER_EINVAL.
 *
 * Threads: every function here is reentrant; share nothing but the input.
 */
#ifndef EM_MSG_CLIENT_MSG_H
#define EM_MSG_CLIENT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"
#include "msg/msg.h"

/* The client protocol's wire version. */
#define EM_CMSG_VERSION 1
/* Bytes before req_id: magic, version, type. */
#define EM_CMSG_PREFIX_LEN 6
/* Longest header (JSON text), in bytes. */
#define EM_CMSG_HEADER_MAX ((size_t)1 << 20)
/* Longest body, in bytes. */
#define EM_CMSG_BODY_MAX ((size_t)1 << 30)

/* Message types (see the table above). */
typedef enum em_cmsg_type {
    EM_CMSG_HELLO = 1,
    EM_CMSG_WELCOME = 2,
    EM_CMSG_ERROR = 3,
    EM_CMSG_OK = 4,
    EM_CMSG_PLUGIN_HAVE = 5,
    EM_CMSG_PLUGIN_NEED = 6,
    EM_CMSG_PLUGIN_PUT = 7,
    EM_CMSG_SPLITS = 8,
    EM_CMSG_SPLITS_REPLY = 9,
    EM_CMSG_SUBMIT = 10,
    EM_CMSG_JOB = 11,
    EM_CMSG_RESULT = 12,
    EM_CMSG_END = 13,
    EM_CMSG_CANCEL = 14,
    EM_CMSG_STATUS = 15,
    EM_CMSG_INFO = 16,
    EM_CMSG_LIST = 17,
    EM_CMSG_UNPERSIST = 18,
    EM_CMSG_BROADCAST = 19,     /* a broadcast of the client's application,
                                   id chosen by the client */
    EM_CMSG_BROADCAST_DROP = 20, /* unpersist or destroy one */
    EM_CMSG_ACCUMS = 21 /* a job's application's accumulator values */
} em_cmsg_type;

/* The last type this version knows. */
#define EM_CMSG_TYPE_MAX EM_CMSG_ACCUMS

/* A decoded message: views into the received bytes. */
typedef struct em_cmsg {
    em_cmsg_type type;
    uint64_t req_id;
    em_bytes header; /* JSON text, not NUL-terminated; may be empty */
    em_bytes body;
} em_cmsg;

/*
 * Appends one whole message to out. header (header_len bytes, no NUL, at
 * most EM_CMSG_HEADER_MAX) and body (at most EM_CMSG_BODY_MAX) may be NULL
 * when their length is 0. EMBER_EINVAL for an unknown type or a header or
 * body the format cannot carry; EMBER_ENOMEM / EMBER_ENOSPC from out. On
 * failure out is as it was. Nothing is kept.
 */
ember_status em_cmsg_encode(ember_buf *out, em_cmsg_type type,
                            uint64_t req_id, const char *header,
                            size_t header_len, const void *body,
                            size_t body_len);

/*
 * Validates all of d[0..n) and fills *m with views into d. EMBER_EINVAL
 * (foreign, truncated, overlong varint, a header with a NUL or over its
 * limit, an unknown type, trailing bytes) or EMBER_EVERSION, with err
 * (nullable) saying what and where; *m is then zeroed. d may be NULL
 * when n is 0.
 */
ember_status em_cmsg_decode(const uint8_t *d, size_t n, em_cmsg *m,
                            ember_error *err);

/* "HELLO", "SUBMIT", ...; "UNKNOWN" for anything else. Never NULL. */
const char *em_cmsg_type_name(em_cmsg_type t);

#endif /* EM_MSG_CLIENT_MSG_H */
