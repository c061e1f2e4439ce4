/*
 * client/json_record.h — records written as JSON, for plan files and
 * `ember run` output (docs/plan-format.md, "Plan files").
 *
 * Reading: a JSON array is a record whose elements are the array's items;
 * any other value is a one-element record. Inside a record a JSON array is
 * a nested tuple, an integer an int, any other number a double, a string a
 * string, true/false a bool, null null, and an object of the one key
 * "base64" (a string) a bytes value — the way docs/record-format.md
 * renders bytes. Other objects are refused.
 *
 * Writing: one output line per record, as `ember run` prints it: a
 * two-element record is {"key":K,"value":V}, a one-element record its
 * value, any other record the array of its elements; values are rendered
 * by ember_rec_json_value.
 *
 * Pure functions over their arguments: any thread.
 */
#ifndef EM_CLIENT_JSON_RECORD_H
#define EM_CLIENT_JSON_RECORD_H

#include <jansson.h>

#include "ember/abi.h"
#include "ember/buf.h"

/* What kind of JSON value j is, for messages: "an object", "an array",
 * "a string", "an integer", "a number", "a boolean" or "null". */
const char *em_json_kind(const json_t *j);

/*
 * Appends the record that j describes (rules above) to out, unframed.
 * where (may be NULL) names j in messages, e.g. "args.data[3]"; an error
 * names the offending item below it too ("args.data[3][1]: ..."). Errors:
 * EMBER_EINVAL for an object that is not {"base64": ...}, base64 that is
 * not canonical, tuples nested deeper than EMBER_REC_MAX_DEPTH; or
 * the buffer's status. out->len is unchanged on failure.
 */
ember_status em_json_to_record(const json_t *j, const char *where,
                               ember_buf *out, ember_error *err);

/*
 * Appends the one value j describes to out, as one element (a JSON array
 * is a nested tuple): a key, such as lookup's or a range partitioner's
 * bound. where and errors as em_json_to_record.
 */
ember_status em_json_to_value(const json_t *j, const char *where,
                              ember_buf *out, ember_error *err);

/*
 * Appends the output line of the record rec[0..len) (rules above) to out,
 * without a newline or a NUL. EMBER_EINVAL for a malformed record, or the
 * buffer's status; out->len is unchanged on failure.
 */
ember_status em_record_to_json(ember_buf *out, const uint8_t *rec,
                               size_t len);

#endif /* EM_CLIENT_JSON_RECORD_H */
