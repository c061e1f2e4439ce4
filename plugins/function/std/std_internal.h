/*
 * std_internal.h — what the files of plugin "std" share: the function
 * vtables (gathered by std.c into the descriptor) and the macros that
 * define them, output framing, error messages, reading records and
 * arguments, opened state, the per-batch loop, and a substring finder.
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
#include "ember/host.h"
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

/*
 * Ends the output record begun at mark with ember_batch_frame_begin, whose
 * body was written with status s: when s is EMBER_OK closes the frame and
 * adds one to *out_count; when s or the closing fails, drops the record
 * (out->len = mark) and returns std_out_error for fn.
 */
ember_status std_end_record(ember_buf *out, size_t mark, ember_status s,
                            uint64_t *out_count, const char *fn,
                            ember_error *err);

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
 * EMBER_OK when v has the ember_type `type`, else EMBER_EINVAL
 * "std.<fn>: <want>, got <v's type>", want saying what was expected.
 */
ember_status std_want_type(const ember_value *v, uint32_t type,
                           const char *fn, const char *want,
                           ember_error *err);

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
 * Reads the first element of MAP input record `index` into *v: EMBER_OK,
 * or EMBER_EINVAL "std.<fn>: record N is empty" for an empty record and
 * std_malformed for bytes that do not decode.
 */
ember_status std_first_value(const uint8_t *rec, size_t len, ember_value *v,
                             const char *fn, uint64_t index,
                             ember_error *err);

/* ---- opened state ---- */

/*
 * The first member of every state a std function's open() makes: the host
 * whose alloc made it, so one close frees any of them.
 */
typedef struct std_state_head {
    const ember_host_api *host;
} std_state_head;

/*
 * The first step of fn's open(): EMBER_EINVAL ("std.<fn>: open: no host
 * services") unless state is given and host has alloc and free; else sets
 * *state to NULL and returns EMBER_OK.
 */
ember_status std_open_check(const ember_host_api *host, void **state,
                            const char *fn, ember_error *err);

/*
 * The first steps of fn's open() for a function that takes an argument of
 * exactly `want` values: std_open_check, then checks that arg (may be NULL
 * when arg_len is 0) is a record of `want` elements and reads them into
 * values[0..want) (they point into arg). EMBER_OK, or EMBER_EINVAL naming
 * fn and `shape` (a description of the argument the function takes) when
 * it is missing, malformed, or of another size.
 */
ember_status std_open_arg(const ember_host_api *host, void **state,
                          const uint8_t *arg, size_t arg_len, size_t want,
                          const char *fn, const char *shape,
                          ember_value *values, ember_error *err);

/*
 * Allocates `size` bytes (at least sizeof(std_state_head)) from host, which
 * std_open_check has accepted, sets their std_state_head and points *state
 * at them; the caller fills the rest. EMBER_ENOMEM ("std.<fn>: out of
 * memory") with *state untouched when alloc fails.
 */
ember_status std_state_new(const ember_host_api *host, size_t size,
                           const char *fn, void **state, ember_error *err);

/* Frees a state from std_state_new (NULL is a no-op): a close() slot. */
void std_state_free(void *state);

/* ---- the per-batch loop ---- */

/*
 * What std_each_record calls for record `index` (from 0 within the batch),
 * rec[0..len): writes its output records, if any, to out, adding their
 * number to *out_count, and returns EMBER_OK; or fills err naming the
 * record (std_fail and friends) and returns the code. ctx, out and
 * out_count are the caller's, passed through as given.
 */
typedef ember_status (*std_record_body)(void *ctx, const uint8_t *rec,
                                        size_t len, uint64_t index,
                                        ember_buf *out, uint64_t *out_count,
                                        ember_error *err);

/*
 * The loop of every std function: calls body for each record of `in` in
 * order and stops at the first failure, returning it. A batch whose
 * framing breaks is EMBER_EINVAL naming fn (std_frame_error) after body
 * has seen the records before the break. EMBER_OK when all went through.
 * Allocates nothing. Inline, so that the compiler may call (or inline) a
 * constant body directly instead of through the pointer.
 */
static inline ember_status std_each_record(const ember_batch *in,
                                           ember_buf *out,
                                           uint64_t *out_count,
                                           ember_error *err, const char *fn,
                                           std_record_body body, void *ctx)
{
    ember_batch_cursor c = ember_batch_cursor_of(in);
    const uint8_t *rec;
    size_t len;
    uint64_t n = 0;
    ember_status s;
    while ((s = ember_batch_next(&c, &rec, &len)) == EMBER_OK) {
        s = body(ctx, rec, len, n, out, out_count, err);
        if (s != EMBER_OK)
            return s;
        n++;
    }
    if (s != EMBER_END)
        return std_frame_error(err, fn, n);
    return EMBER_OK;
}

/*
 * The loop of a REDUCE function: body for the accumulator acc[0..acc_len)
 * first, when there is one (index STD_ACC), then for each record of
 * values as std_each_record does; out_count is NULL for body throughout.
 */
static inline ember_status std_fold(const uint8_t *acc, size_t acc_len,
                                    const ember_batch *values, ember_buf *out,
                                    ember_error *err, const char *fn,
                                    std_record_body body, void *ctx)
{
    if (acc != NULL) {
        ember_status s = body(ctx, acc, acc_len, STD_ACC, out, NULL, err);
        if (s != EMBER_OK)
            return s;
    }
    return std_each_record(values, out, NULL, err, fn, body, ctx);
}

/* Defines std_<name_>_vtable for a deterministic MAP function whose
 * map_batch is map_ (and that has open_ and close_, either may be NULL). */
#define STD_MAP_VTABLE(name_, map_, open_, close_)                         \
    const ember_function_vtable std_##name_##_vtable = {                   \
        .shape = EMBER_FN_MAP,                                             \
        .determinism = EMBER_DETERMINISTIC,                                \
        .open = (open_),                                                   \
        .close = (close_),                                                 \
        .map_batch = (map_),                                               \
    }

/*
 * Defines the MAP function std.<name_> made of a record body: a static
 * map_batch, name_##_map, that runs body_ over the batch (std_each_record,
 * "name_" in its messages) with ctx the opened state, or fallback_ when
 * the state is NULL; when that is NULL too and need_state_ is non-zero,
 * the call fails with EMBER_EINVAL "std.<name_>: called without open".
 * Then STD_MAP_VTABLE(name_, name_##_map, open_, close_). A const
 * fallback_ must only be read by body_.
 */
#define STD_MAP_FUNCTION(name_, body_, open_, close_, fallback_,           \
                         need_state_)                                      \
    static ember_status name_##_map(void *state, const ember_batch *in,    \
                                    ember_buf *out, uint64_t *out_count,   \
                                    ember_error *err)                      \
    {                                                                      \
        void *ctx = state != NULL ? state : (void *)(fallback_);           \
        if ((need_state_) && ctx == NULL)                                  \
            return ember_errorf(err, EMBER_EINVAL,                         \
                                "std." #name_ ": called without open");    \
        return std_each_record(in, out, out_count, err, #name_, body_,     \
                               ctx);                                       \
    }                                                                      \
    STD_MAP_VTABLE(name_, name_##_map, open_, close_)

/* Defines std_<name_>_vtable for a deterministic, stateless REDUCE
 * function whose reduce slot is reduce_. */
#define STD_REDUCE_VTABLE(name_, reduce_)                                  \
    const ember_function_vtable std_##name_##_vtable = {                   \
        .shape = EMBER_FN_REDUCE,                                          \
        .determinism = EMBER_DETERMINISTIC,                                \
        .reduce = (reduce_),                                               \
    }

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
