/*
 * tier_common.h — what the storage tier plugins (memory, disk, offheap)
 * share: block id validation and operating-system error messages.
 *
 * Header-only (static inline), so each plugin compiles its own copy and
 * the three can be linked statically into one test program without
 * clashing. Every helper may be called from any thread.
 */
#ifndef EMBER_STORAGE_TIER_COMMON_H
#define EMBER_STORAGE_TIER_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/storage.h"

/* Longest block id, in bytes (without the NUL). */
#define TIER_ID_MAX 200u

/*
 * Copies a printable rendering of id (bytes outside 0x20..0x7e become '?',
 * at most 64 of them, "..." after a longer id) into out[0..cap). For
 * messages about ids that were refused, which may hold anything.
 */
static inline void tier_id_show(const char *id, char *out, size_t cap)
{
    size_t n = 0;
    size_t i = 0;
    if (cap == 0)
        return;
    for (; id[i] != '\0' && i < 64 && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)id[i];
        out[n++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
    }
    if (id[i] != '\0' && n + 4 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/*
 * Checks a block id: 1 to TIER_ID_MAX bytes of letters, digits, '_', '-'
 * and '.', and not "." or "..". The disk and offheap tiers put the id in
 * a file or shared-memory name, so this rule is what keeps a block inside
 * its directory; the memory tier applies it too, so that every tier takes
 * the same ids. EMBER_EINVAL with a message naming the tier (label) and
 * what is wrong.
 */
static inline ember_status tier_id_check(const char *label, const char *id,
                                         ember_error *err)
{
    char shown[72];
    size_t n;
    if (id == NULL)
        return ember_errorf(err, EMBER_EINVAL, "%s: block id is NULL",
                            label);
    for (n = 0; id[n] != '\0'; n++) {
        unsigned char c = (unsigned char)id[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (n >= TIER_ID_MAX) {
            tier_id_show(id, shown, sizeof shown);
            return ember_errorf(err, EMBER_EINVAL,
                                "%s: block id \"%s\" is longer than %u bytes",
                                label, shown, TIER_ID_MAX);
        }
        if (!ok) {
            tier_id_show(id, shown, sizeof shown);
            return ember_errorf(err, EMBER_EINVAL,
                                "%s: invalid block id \"%s\": byte %zu is "
                                "0x%02x; ids use only letters, digits, '_', "
                                "'-' and '.'",
                                label, shown, n, (unsigned)c);
        }
    }
    if (n == 0)
        return ember_errorf(err, EMBER_EINVAL, "%s: block id is empty",
                            label);
    if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: invalid block id \"%s\"", label, id);
    return EMBER_OK;
}

/*
 * Checks the batch handed to put: non-NULL, and data non-NULL unless the
 * batch is empty. EMBER_EINVAL naming the tier and the block otherwise.
 */
static inline ember_status tier_batch_check(const char *label,
                                            const char *id,
                                            const ember_batch *data,
                                            ember_error *err)
{
    if (data == NULL || (data->data == NULL && data->len > 0))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: put %s: NULL batch data", label, id);
    return EMBER_OK;
}

/*
 * Maps errno e to a status (ENOENT: EMBER_ENOTFOUND; ENOSPC, EDQUOT and
 * EFBIG: EMBER_ENOSPC, the block does not fit; ENOMEM: EMBER_ENOMEM;
 * anything else: EMBER_EIO) and fills err with
 * "<label>: <what> <where>[/<name>]: <strerror>" (name may be NULL).
 */
static inline ember_status tier_errno(ember_error *err, int e,
                                      const char *label, const char *what,
                                      const char *where, const char *name)
{
    char text[128];
    ember_status code;
    if (strerror_r(e, text, sizeof text) != 0)
        snprintf(text, sizeof text, "error %d", e);
    switch (e) {
    case ENOENT: code = EMBER_ENOTFOUND; break;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
    case EFBIG: code = EMBER_ENOSPC; break;
    case ENOMEM: code = EMBER_ENOMEM; break;
    default: code = EMBER_EIO; break;
    }
    return ember_errorf(err, code, "%s: %s %s%s%s: %s", label, what, where,
                        name ? "/" : "", name ? name : "", text);
}

#endif /* EMBER_STORAGE_TIER_COMMON_H */
