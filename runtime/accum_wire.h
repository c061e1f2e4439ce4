/*
 * runtime/accum_wire.h — accumulator values on the wire: the `accums`
 * blob of a FINISHED status update (one task attempt's updates, which the
 * kernel merges) and the values the kernel hands the driver at a job's
 * end (the same format, every accumulator of the application).
 *
 * Format, version 1 (integers little-endian; uvarint as ember/batch.h):
 *   blob  = version:u8 (1) count:uvarint entry*count
 *   entry = id:uvarint kind:u8 value
 *   value = kind 1 (int64):  8 bytes, two's complement
 *           kind 2 (double): 8 bytes, IEEE-754 binary64 bits
 *           kind 3 (user):   len:uvarint, then one encoded record
 *                            (ember/record.h) of len bytes; len 0 = no
 *                            value yet (driver values only)
 * Ids are 1..2^53, each at most once; nothing may follow the last entry.
 *
 * Threads: reentrant; nothing is shared.
 */
#ifndef EMBER_RUNTIME_ACCUM_WIRE_H
#define EMBER_RUNTIME_ACCUM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

/* The kinds of accumulator. */
typedef enum em_accum_kind {
    EM_ACCUM_INT64 = 1,
    EM_ACCUM_DOUBLE = 2,
    EM_ACCUM_USER = 3 /* merged by a plugin's REDUCE function */
} em_accum_kind;

/* The kind a plan's kind string names: "int64", "double", anything else
 * (a function name) EM_ACCUM_USER. */
em_accum_kind em_accum_kind_of(const char *kind);

/* One accumulator's value. rec points into the decoded blob (user kind). */
typedef struct em_accum_value {
    uint64_t id;
    em_accum_kind kind;
    int64_t i64;        /* EM_ACCUM_INT64 */
    double f64;         /* EM_ACCUM_DOUBLE */
    const uint8_t *rec; /* EM_ACCUM_USER: the record, or NULL when len 0 */
    size_t rec_len;
} em_accum_value;

/* Appends the blob of v[0..n) to out. EMBER_EINVAL for an id of 0 or
 * over 2^53, an unknown kind or a user value that is not a record;
 * EMBER_ENOMEM. On failure out may hold part of the blob. */
ember_status em_accum_wire_encode(ember_buf *out, const em_accum_value *v,
                                  uint32_t n);

/*
 * Validates all of d[0..len) and returns its entries in *out (malloc'd,
 * NULL when there are none; free it), their number in *n; user values
 * point into d. EMBER_EINVAL with err (nullable) saying what and where
 * ("accumulator updates: entry 2 (id 7): record of 30 bytes runs past
 * the end (offset 41)"); EMBER_ENOMEM.
 */
ember_status em_accum_wire_decode(const uint8_t *d, size_t len,
                                  em_accum_value **out, uint32_t *n,
                                  ember_error *err);

#endif /* EMBER_RUNTIME_ACCUM_WIRE_H */
