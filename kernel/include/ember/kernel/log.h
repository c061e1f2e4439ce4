/*
 * ember/kernel/log.h — the process's log: one line per call on stderr.
 *
 * Lines look like `ember WARN [source] message`. The threshold comes from
 * em_log_set_level() or, at first use, the EMBER_LOG_LEVEL environment
 * variable (error, warn, info, debug, trace; default warn). Thread-safe:
 * each line is written with a single write(2).
 */
#ifndef EMBER_KERNEL_LOG_H
#define EMBER_KERNEL_LOG_H

#include <stdarg.h>

#include "ember/host.h"
#include "ember/kernel/export.h"

/* Sets the threshold (an ember_log_level); lines above it are dropped. */
EM_API void em_log_set_level(int level);

/* Non-zero when a line at `level` would be written. */
EM_API int em_log_enabled(int level);

/* Writes one line at `level` from `source` (may be NULL). */
EM_API void em_log(int level, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
EM_API void em_logv(int level, const char *source, const char *fmt,
                    va_list ap) __attribute__((format(printf, 3, 0)));

/* Parses "error".."trace" (any case) into *level; EMBER_EINVAL otherwise. */
EM_API ember_status em_log_parse_level(const char *name, int *level);

#endif /* EMBER_KERNEL_LOG_H */
