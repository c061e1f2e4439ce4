/*
 * client/plan_args.h — operation arguments of plan files
 * (docs/plan-format.md, "Plan files") read into what the driver API
 * takes: a plugin argument given as base64 or as a record, and
 * sample_by_key's fractions.
 *
 * Errors are EMBER_EINVAL with a message that starts with the field
 * ("args.fractions[2][1]: ..."), for plan_file.c to put after the file
 * and the dataset; or EMBER_ENOMEM. Pure functions over their arguments:
 * any thread.
 */
#ifndef EM_CLIENT_PLAN_ARGS_H
#define EM_CLIENT_PLAN_ARGS_H

#include <jansson.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

/* The largest argument blob or fractions batch a plan file may give. */
#define EM_PLAN_MAX_BLOB ((size_t)64 << 20)

/*
 * The plugin argument that object obj gives as "arg" (canonical base64)
 * or "value" (a record in JSON, json_record.h), into *out (malloc'd;
 * NULL when empty or when obj gives neither) and *len. field names obj in
 * messages ("fns[0]" gives "fns[0].arg is not canonical base64 ...").
 * Both keys at once, a non-string "arg", a bad record or a blob over
 * EM_PLAN_MAX_BLOB is EMBER_EINVAL. *out is NULL on failure.
 */
ember_status em_plan_blob(const json_t *obj, const char *field,
                          uint8_t **out, size_t *len, ember_error *err);

/*
 * sample_by_key's fractions v — an array of [KEY, FRACTION] pairs, KEY a
 * value as inside a record (an array is a tuple), or an object of
 * FRACTION by string key — appended to out as a batch of (key, double)
 * records, their number added to *count. field names v in messages
 * ("args.fractions"). Every fraction is a finite number, in [0, 1]
 * without replacement and >= 0 with it; no key is given twice. On
 * failure out->len is unchanged.
 */
ember_status em_plan_fractions(const json_t *v, const char *field,
                               int with_replacement, ember_buf *out,
                               uint64_t *count, ember_error *err);

/* A seed that differs from run to run: what sample and sample_by_key use
 * when a plan file gives none (Spark draws a random one). */
int64_t em_plan_random_seed(void);

#endif /* EM_CLIENT_PLAN_ARGS_H */
