/*
 * std_internal.h — what the files of plugin "std" share: the function
 * vtables (gathered by std.c into the descriptor), output framing, error
 * messages, reading arguments, and a substring finder.
 *
 * Everything here is hidden inside std.so (-fvisibility=hidden) and is
 * stateless, so any number of tasks may use it at once.
 *
 * Error messages follow one pattern, so a user can find the bad input:
 *   "std.<fn>: <what was wrong> (record N)"         a MAP input record
 *   "std.<fn>: <what was wrong> (value N)"          a REDUCE input value
 *   "std.<fn>: <what was wrong> (the accumulator)"  a REDUCE accumulator
 *   "std.<fn>: malformed record N"                  bytes that do not decode
 * where N counts from 0 within the batch.
 */
#ifndef EMBER_STD_INTERNAL_H
#define EMBER_STD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ember/batch.h"
#include "ember/function.h"
#include "ember/record.h"

/* ---- the components, one vtable each (defined in std_*.c) ---- */

extern const ember_function_vtable std_identity_vtable;     /* std_pairs.c */
extern const ember_function_vtable std_pair_with_vtable;    /* std_pairs.c */
extern const ember_function_vtable std_swap_vtable;         /* std_pairs.c */
extern const ember_function_vtable std_hash_vtable;         /* std_pairs.c */
extern const ember_function_vtable std_split_words_vtable;  /* std_text.c */
extern const ember_function_vtable std_lines_vtable;        /* std_text.c */
extern const ember_function_vtable std_split_fields_vtable; /* std_text.c */
extern const ember_function_vtable std_parse_numbers_vtable; /* std_text.c */
extern const ember_function_vtable std_compare_vtable; /* std_predicates.c */
extern const ember_function_vtable std_contains_vtable; /* std_predicates.c */
extern const ember_function_vtable std_sum_vtable;      /* std_reduce.c */
extern const ember_function_vtable std_count_vtable;    /* std_reduce.c */
extern const ember_function_vtable std_min_vtable;      /* std_reduce.c */
extern const ember_function_vtable std_max_vtable;      /* std_reduce.c */
extern const ember_function_vtable std_concat_vtable;   /* std_reduce.c */

/* Output records are framed with ember_batch_frame_begin/_end
 * (ember/batch.h). */

/*
 * Appends a string (tag EMBER_REC_TAG_STRING) or bytes element whose
 * payload is already in escaped form (raw, as ember_value.u.str.raw holds
 * it, or any piece of such a payload that does not split an escape pair):
 * tag, raw[0..raw_len), terminator. out->len unchanged on failure.
 */
ember_status std_put_raw_string(ember_buf *out, uint8_t tag,
                                const uint8_t *raw, size_t raw_len);

/* Appends the framed one-element record (true) or (false). */
ember_status std_put_bool_record(ember_buf *out, int value);

/* ---- errors ---- */

/* `index` for the accumulator of a REDUCE call. */
#define STD_ACC UINT64_MAX

/*
 * Fills err as "std.<fn>: <formatted> (<noun> <index>)", or
 * "(the accumulator)" when index is STD_ACC; noun is "record" for MAP
 * inputs, "value" for REDUCE values. Returns code.
 */
#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
ember_status std_fail(ember_error *err, ember_status code, const char *fn,
                      const char *noun, uint64_t index, const char *fmt, ...);

/*
 * EMBER_EINVAL for bytes that are not a well-formed record: "std.<fn>:
 * malformed record N" for MAP inputs (noun "record"), "std.<fn>: malformed
 * record (value N)" or "(the accumulator)" otherwise.
 */
ember_status std_malformed(ember_error *err, const char *fn, const char *noun,
                           uint64_t index);

/* EMBER_EINVAL for a batch whose framing breaks after `good` records. */
ember_status std_frame_error(ember_error *err, const char *fn, uint64_t good);

/* The error for a failed append to `out` (a full fixed buffer, no memory);
 * returns s. */
ember_status std_out_error(ember_error *err, const char *fn, ember_status s);

/* ---- reading inputs ---- */

/*
 * Reads the only element of the record rec[0..len) into *v. EMBER_OK, or
 * EMBER_EINVAL with a message naming fn, the position (noun, index as for
 * std_fail) and `what` the caller expected.
 */
ember_status std_single_value(const uint8_t *rec, size_t len, ember_value *v,
                              const char *fn, const char *what,
                              const char *noun, uint64_t index,
                              ember_error *err);

/* std_single_value for MAP input record `index` that must hold exactly one
 * string. */
ember_status std_one_string(const uint8_t *rec, size_t len, ember_value *v,
                            const char *fn, uint64_t index, ember_error *err);

/*
 * Checks an open() argument: a record of exactly `want` elements (arg may
 * be NULL when arg_len is 0). EMBER_OK, or EMBER_EINVAL naming fn and
 * `shape` (a description of the argument the function takes) when it is
 * missing, malformed, or of another size.
 */
ember_status std_check_arg(const uint8_t *arg, size_t arg_len, size_t want,
                           const char *fn, const char *shape,
                           ember_error *err);

/* ---- a substring finder over escaped payloads ---- */

/*
 * Finds a fixed needle in string payloads, both in escaped form (as
 * record.h stores them, 0x00 written 0x00 0xFF), so neither needs
 * decoding. A match never starts inside an escape pair, so positions are
 * those of whole characters. Boyer-Moore-Horspool with the skip table made
 * once; memchr for one-byte needles. The needle is borrowed: it must
 * outlive the finder.
 */
typedef struct std_finder {
    const uint8_t *needle;
    size_t len;
    size_t skip[256];
} std_finder;

/* Prepares f for needle[0..len) (escaped form; len may be 0). */
void std_finder_init(std_finder *f, const uint8_t *needle, size_t len);

/*
 * The offset of the first match in hay[from..n) (offsets count from hay),
 * or SIZE_MAX when there is none. An empty needle matches at `from`.
 */
size_t std_find(const std_finder *f, const uint8_t *hay, size_t n,
                size_t from);

#endif /* EMBER_STD_INTERNAL_H */
