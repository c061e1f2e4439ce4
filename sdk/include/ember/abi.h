/*
 * ember/abi.h — versioning, status codes and the error buffer of the ember
 * plugin ABI.
 *
 * This header is part of the frozen SDK: everything here is the loading
 * contract between a host and a plugin. It may gain new status codes and new
 * traits bits, never change the meaning or value of existing ones.
 *
 * C11, libc only, fixed-width types. Safe to include from C++.
 */
#ifndef EMBER_ABI_H
#define EMBER_ABI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ABI version. A host loads a plugin when the majors are equal and the
 * plugin's minor is not newer than the host's. Minor releases only append:
 * new slots at the end of ember_host_api, new component kinds, new status
 * codes. While the major is 0, a per-kind vtable may still change; each kind
 * carries its own version (EMBER_<KIND>_VERSION, see the kind headers) that
 * the loader checks separately, so such a change is refused by name rather
 * than misread.
 */
#define EMBER_ABI_MAJOR 0
#define EMBER_ABI_MINOR 3

/* "EMBR" read as a little-endian word; the first field of ember_plugin_info. */
#define EMBER_PLUGIN_MAGIC 0x52424D45u

/*
 * The ABI-traits word: facts about the compiler and target that must match
 * between host and plugin for any struct to be shared.
 *   bits  0..7   sizeof(void *)
 *   bits  8..15  sizeof(size_t)
 *   bits 16..19  byte order: 1 little-endian, 2 big-endian
 *   bits 20..23  sizeof(double) / 2 (4 for IEEE-754 binary64)
 *   bits 24..31  reserved, 0
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define EMBER__BYTE_ORDER 2u
#else
#define EMBER__BYTE_ORDER 1u
#endif
#define EMBER_ABI_TRAITS                                                  \
    ((uint32_t)sizeof(void *) | ((uint32_t)sizeof(size_t) << 8) |         \
     (EMBER__BYTE_ORDER << 16) | ((uint32_t)(sizeof(double) / 2) << 20))

/* Symbol visibility: plugins are built with -fvisibility=hidden and mark
 * only their entry points with EMBER_EXPORT. */
#if defined(_WIN32)
#define EMBER_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define EMBER_EXPORT __attribute__((visibility("default")))
#else
#define EMBER_EXPORT
#endif

/*
 * Status codes. Every function that crosses the ABI returns one; EMBER_OK is
 * 0, errors are negative, EMBER_END (1) means "no more" for iterators.
 */
typedef int32_t ember_status;
#define EMBER_OK 0
#define EMBER_END 1          /* iterator exhausted; not an error */
#define EMBER_EINVAL (-1)    /* invalid argument or malformed data */
#define EMBER_ENOMEM (-2)    /* allocation failed */
#define EMBER_ENOTFOUND (-3) /* no such key, file, plugin, component */
#define EMBER_EEXIST (-4)    /* already exists (duplicate name) */
#define EMBER_EIO (-5)       /* operating-system I/O error */
#define EMBER_ENOSPC (-6)    /* fixed-size buffer too small */
#define EMBER_EVERSION (-7)  /* incompatible ABI or kind version */
#define EMBER_EUNSUPPORTED (-8) /* operation not provided */
#define EMBER_ECANCELED (-9) /* work was cancelled */
#define EMBER_ETIMEDOUT (-10) /* deadline passed */
#define EMBER_EPLUGIN (-11)  /* a plugin failed or broke its contract */
#define EMBER_EINTERNAL (-12) /* a bug in ember: please report it */

/* A short constant name for a status ("EMBER_EINVAL"); never NULL. */
static inline const char *ember_status_name(ember_status s)
{
    switch (s) {
    case EMBER_OK: return "EMBER_OK";
    case EMBER_END: return "EMBER_END";
    case EMBER_EINVAL: return "EMBER_EINVAL";
    case EMBER_ENOMEM: return "EMBER_ENOMEM";
    case EMBER_ENOTFOUND: return "EMBER_ENOTFOUND";
    case EMBER_EEXIST: return "EMBER_EEXIST";
    case EMBER_EIO: return "EMBER_EIO";
    case EMBER_ENOSPC: return "EMBER_ENOSPC";
    case EMBER_EVERSION: return "EMBER_EVERSION";
    case EMBER_EUNSUPPORTED: return "EMBER_EUNSUPPORTED";
    case EMBER_ECANCELED: return "EMBER_ECANCELED";
    case EMBER_ETIMEDOUT: return "EMBER_ETIMEDOUT";
    case EMBER_EPLUGIN: return "EMBER_EPLUGIN";
    case EMBER_EINTERNAL: return "EMBER_EINTERNAL";
    default: return "EMBER_E(unknown)";
    }
}

/*
 * The error buffer. The caller owns it (usually on its stack) and passes a
 * pointer down; the callee that decides a failure fills it once and returns
 * the same code. Messages are NUL-terminated UTF-8, truncated to fit.
 */
#define EMBER_ERROR_MAX 512
typedef struct ember_error {
    ember_status code;
    char msg[EMBER_ERROR_MAX];
} ember_error;

/* Clears err (code EMBER_OK, empty message). err may be NULL. */
static inline void ember_error_clear(ember_error *err)
{
    if (err) {
        err->code = EMBER_OK;
        err->msg[0] = '\0';
    }
}

/*
 * Fills err with code and a printf-style message and returns code, so a
 * failure reads `return ember_errorf(err, EMBER_EINVAL, "bad %s", what);`.
 * err may be NULL (the message is dropped, the code still returned).
 */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline ember_status ember_errorf(ember_error *err, ember_status code,
                                        const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        if (vsnprintf(err->msg, sizeof err->msg, fmt, ap) < 0)
            err->msg[0] = '\0';
        va_end(ap);
    }
    return code;
}

#ifdef __cplusplus
}
#endif
#endif /* EMBER_ABI_H */
