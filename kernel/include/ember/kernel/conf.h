/*
 * ember/kernel/conf.h — configuration values and their parsing.
 *
 * An em_conf maps `ember.*` keys to string values, remembering where each
 * came from (its origin: "conf/ember-defaults.conf:12", "--conf", "code").
 * The layers are applied lowest first, and the last value set wins:
 *   1. the defaults file: --properties-file, else
 *      $EMBER_CONF_DIR/ember-defaults.conf (em_conf_load_defaults);
 *   2. --conf key=value flags (em_conf_set_flag);
 *   3. values set in the driver's code (em_conf_set with origin "code").
 * Typed getters parse sizes and durations with Spark's suffixes. A table of
 * known keys (em_conf_keys) lets em_conf_check report unknown keys and bad
 * values with their origin, and em_conf_each_effective list every
 * effective value (what --verbose prints). The kernel, the executors and
 * plugins (through the host API) all read configuration from here.
 * Thread-safe: readers and writers may run concurrently.
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

/* ---- Layers: the defaults file and --conf flags ---- */

/*
 * Parses a defaults file into conf. One setting per line: the key, then
 * white space, then the value to the end of the line with surrounding white
 * space trimmed; `key=value` and `key = value` are accepted too, as Spark
 * does. A line whose first non-blank character is '#' is a comment; blank
 * lines are ignored; CRLF line ends and a leading UTF-8 byte-order mark are
 * accepted. Keys are letters, digits and "._-". Each value is set with
 * origin "PATH:LINE" (PATH as given); a key repeated later in the file wins.
 *
 * All or nothing: conf is changed only when the whole file is valid.
 * Errors, with "PATH:LINE: " leading the message: a key without a value, a
 * key with another character, a line that is not valid UTF-8 or contains a
 * NUL byte, a line over 64 KiB (EMBER_EINVAL). A missing file is
 * EMBER_ENOTFOUND "PATH: No such file or directory"; other open or read
 * failures are EMBER_EIO "PATH: <reason>"; EMBER_ENOMEM when memory runs out.
 * Any thread.
 */
EM_API ember_status em_conf_load_file(em_conf *conf, const char *path,
                                      ember_error *err);

/*
 * Applies one --conf flag "key=value" (split at the first '='; the value
 * may be empty and may contain '='), origin "--conf". A missing '=' or an
 * empty key is EMBER_EINVAL "--conf 'FLAG': expected key=value"; a key
 * with characters other than letters, digits and "._-" is EMBER_EINVAL
 * naming the flag too. Any thread.
 */
EM_API ember_status em_conf_set_flag(em_conf *conf, const char *flag,
                                     ember_error *err);

/*
 * Loads the layer below the flags: properties_file when non-NULL (it must
 * exist: EMBER_ENOTFOUND otherwise, as em_conf_load_file), else
 * $EMBER_CONF_DIR/ember-defaults.conf when EMBER_CONF_DIR is set and not
 * empty (a missing file there is fine: EMBER_OK), else nothing. Errors in
 * the file are those of em_conf_load_file. Reads the environment, so call
 * it before starting threads that call setenv.
 */
EM_API ember_status em_conf_load_defaults(em_conf *conf,
                                          const char *properties_file,
                                          ember_error *err);

/*
 * Copies key's origin (see em_conf_set) into out[0..cap), NUL-terminated,
 * as em_conf_get copies values. A value set with a NULL origin reports
 * "unknown". EMBER_ENOTFOUND when key is unset, EMBER_ENOSPC when the
 * origin does not fit.
 */
EM_API ember_status em_conf_origin(const em_conf *conf, const char *key,
                                   char *out, size_t cap);

/*
 * Copies every entry of src into dst with its origin, src's values
 * replacing dst's. dst == src is a no-op. EMBER_ENOMEM leaves dst with part
 * of src merged. Any thread; src is copied before dst is locked, so two
 * merges in opposite directions cannot deadlock.
 */
EM_API ember_status em_conf_merge(em_conf *dst, const em_conf *src,
                                  ember_error *err);

/* ---- Known keys ---- */

/* The type of a known key's value (em_conf_key.type). */
typedef enum em_conf_type {
    EM_CONF_STRING,   /* any text */
    EM_CONF_SIZE,     /* em_parse_size, bytes in min..max */
    EM_CONF_DURATION, /* em_parse_duration_ms, ms in min..max */
    EM_CONF_INT,      /* a decimal integer in min..max */
    EM_CONF_BOOL,     /* true/false, yes/no, 1/0, any case */
    EM_CONF_DOUBLE,   /* a finite number in dmin..dmax */
    EM_CONF_ENUM,     /* one of values, any case */
    EM_CONF_PREFIX    /* not a key: every key starting with name is open */
} em_conf_type;

/*
 * One known key. The table is static, sorted by name, and read-only.
 */
typedef struct em_conf_key {
    const char *name;     /* the key, or for EM_CONF_PREFIX a prefix
                             ending in '.' */
    int type;             /* an em_conf_type */
    const char *dflt;     /* the default as text; NULL: unset by default
                             (doc says what that means) or see fallback */
    int64_t min, max;     /* INT: range; SIZE: bytes; DURATION: ms */
    double dmin, dmax;    /* DOUBLE: range */
    const char *values;   /* ENUM: the accepted values, '|'-separated */
    const char *fallback; /* non-NULL: unset, the key takes this key's
                             effective value */
    const char *doc;      /* one line for docs and --help */
} em_conf_key;

/*
 * The table of known keys (kernel/conf/keys.c), sorted by name; *count
 * receives its length. Static storage: never freed. Any thread.
 */
EM_API const em_conf_key *em_conf_keys(size_t *count);

/*
 * The table entry that covers key: the entry named key, else the
 * EM_CONF_PREFIX entry key starts with, else NULL. Any thread.
 */
EM_API const em_conf_key *em_conf_key_find(const char *key);

/*
 * Called by em_conf_check once per problem: origin is the value's origin
 * ("PATH:LINE", "--conf", "code", "unknown"), key the key, message the
 * problem. All three are valid only during the call.
 */
typedef void (*em_conf_report_fn)(void *ctx, const char *origin,
                                  const char *key, const char *message);

/*
 * Checks every set key against the known-key table and returns the number
 * of problems (0: clean), calling report (may be NULL) for each, in the
 * order the keys were first set:
 *   - a key not starting with "ember.": "'KEY' is not an ember key", with
 *     "(did you mean 'ember.…'?)" for a known spark.* key;
 *   - an unknown ember key: "unknown configuration key 'KEY' (did you mean
 *     'CLOSEST'?)", the suggestion when a known key is within edit
 *     distance 3;
 *   - a known key whose value does not parse as its type or is out of its
 *     range: "KEY: 'VALUE' is not a valid size (e.g. 512m, 2g)", "KEY: 0
 *     is out of range (1..65535)", ...
 * Keys under an open prefix (ember.plugin., ember.executorEnv.,
 * ember.hadoop.) are accepted as they are. report runs with conf's read
 * lock held: it may read conf but must not change it.
 */
EM_API size_t em_conf_check(const em_conf *conf, em_conf_report_fn report,
                            void *ctx);

/*
 * em_conf_check as one error for programs that refuse to start with a bad
 * configuration: EMBER_OK when clean, else EMBER_EINVAL with err holding
 * "configuration: ORIGIN: MESSAGE; ..." for the first three problems
 * (and " (and more)" when there are others).
 */
EM_API ember_status em_conf_validate(const em_conf *conf, ember_error *err);

/*
 * The layers below code: em_conf_load_defaults(properties_file), then each
 * "key=value" of flags (NULL-terminated, nullable) as --conf. Stops at the
 * first error.
 */
EM_API ember_status em_conf_load_layers(em_conf *conf,
                                        const char *properties_file,
                                        const char *const *flags,
                                        ember_error *err);

/*
 * Writes every setting that did not come from a default (nor an unknown
 * key, nor skip_key, nullable) to path as a defaults file, so another
 * process (an executor) can load the same settings with
 * --properties-file. EMBER_EIO naming the file on failure.
 */
EM_API ember_status em_conf_write_file(const em_conf *conf, const char *path,
                                       const char *skip_key,
                                       ember_error *err);

/*
 * Called by em_conf_each_effective once per key. value is NULL for a known
 * key that is unset and has no default. All strings are valid only during
 * the call.
 */
typedef void (*em_conf_emit_fn)(void *ctx, const char *key,
                                const char *value, const char *origin);

/*
 * Lists every effective setting, sorted by key (byte order): each set key
 * with its value and origin (origin + " (unknown key)" when em_conf_check
 * would call it unknown or not an ember key), and each known key that is
 * unset with its default (a fallback key's effective value) and origin
 * "default". Prefix entries of the table are not listed. This is what
 * --verbose prints. emit runs with conf's read lock held: it may read conf
 * but must not change it.
 */
EM_API void em_conf_each_effective(const em_conf *conf, em_conf_emit_fn emit,
                                   void *ctx);

#endif /* EMBER_KERNEL_CONF_H */
