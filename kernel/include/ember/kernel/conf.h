/*
 * ember/kernel/conf.h — configuration values and their parsing.
 *
 * An em_conf maps `ember.*` keys to string values, remembering where each
 * came from (a file and line, a flag, code). Later layers (defaults file,
 * --conf flags, values set in code) are applied in order by em_conf_set;
 * the last one wins. Typed getters parse sizes and durations with Spark's
 * suffixes. Thread-safe: readers and writers may run concurrently.
 */
#ifndef EMBER_KERNEL_CONF_H
#define EMBER_KERNEL_CONF_H

#include "ember/abi.h"
#include "ember/kernel/export.h"

typedef struct em_conf em_conf;

/* Creates an empty configuration. EMBER_ENOMEM on failure. */
EM_API ember_status em_conf_create(em_conf **out);

/* Frees conf; NULL is a no-op. */
EM_API void em_conf_destroy(em_conf *conf);

/*
 * Sets key to value (both copied), replacing an earlier value. origin
 * (copied, may be NULL) says where it came from, e.g. "--conf" or
 * "conf/ember-defaults.conf:12". Keys must be non-empty and contain no
 * white space: EMBER_EINVAL otherwise.
 */
EM_API ember_status em_conf_set(em_conf *conf, const char *key,
                                const char *value, const char *origin,
                                ember_error *err);

/*
 * Copies key's value into out[0..cap) (NUL-terminated), setting *len to its
 * length. EMBER_ENOTFOUND when unset, EMBER_ENOSPC when it does not fit.
 */
EM_API ember_status em_conf_get(const em_conf *conf, const char *key,
                                char *out, size_t cap, size_t *len);

/* A size in bytes (suffixes as em_parse_size); dflt when unset. */
EM_API ember_status em_conf_get_size(const em_conf *conf, const char *key,
                                     int64_t dflt, int64_t *bytes,
                                     ember_error *err);

/* A duration in ms (suffixes as em_parse_duration_ms); dflt when unset. */
EM_API ember_status em_conf_get_duration_ms(const em_conf *conf,
                                            const char *key, int64_t dflt,
                                            int64_t *ms, ember_error *err);

/* A decimal integer in min..max; dflt when unset. */
EM_API ember_status em_conf_get_int(const em_conf *conf, const char *key,
                                    int64_t dflt, int64_t min, int64_t max,
                                    int64_t *out, ember_error *err);

/* true/false (also yes/no, 1/0, any case); dflt when unset. */
EM_API ember_status em_conf_get_bool(const em_conf *conf, const char *key,
                                     int dflt, int *out, ember_error *err);

/* A finite number in min..max; dflt when unset. */
EM_API ember_status em_conf_get_double(const em_conf *conf, const char *key,
                                       double dflt, double min, double max,
                                       double *out, ember_error *err);

/*
 * Parses a size: a non-negative integer with an optional suffix b, k/kb,
 * m/mb, g/gb, t/tb, p/pb (any case; binary multiples, 1k = 1024), as
 * Spark's byte-size strings. Overflow and junk are EMBER_EINVAL.
 */
EM_API ember_status em_parse_size(const char *text, int64_t *bytes);

/*
 * Parses a duration: a non-negative integer with an optional suffix us,
 * ms, s, m/min, h, d (bare numbers are milliseconds); microseconds are
 * rounded down to ms. Overflow and junk are EMBER_EINVAL.
 */
EM_API ember_status em_parse_duration_ms(const char *text, int64_t *ms);

#endif /* EMBER_KERNEL_CONF_H */
