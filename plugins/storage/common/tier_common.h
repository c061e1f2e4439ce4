/*
 * tier_common.h — what the storage tier plugins (memory, disk, offheap)
 * share: the argument checks of every slot, block id validation, the
 * messages of a missing block and a full output buffer, and
 * operating-system error messages.
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

#include "ember/buf.h"
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
 * Checks the arguments of open: host and state non-NULL (then sets *state
 * to NULL) and, when need_dir, dir non-empty. EMBER_EINVAL naming the tier
 * otherwise.
 */
static inline ember_status tier_open_check(const char *label,
                                           const ember_host_api *host,
                                           const char *dir, int need_dir,
                                           void **state, ember_error *err)
{
    if (host == NULL || state == NULL)
        return ember_errorf(err, EMBER_EINVAL, "%s: open: NULL argument",
                            label);
    *state = NULL;
    if (need_dir && (dir == NULL || dir[0] == '\0'))
        return ember_errorf(err, EMBER_EINVAL,
                            "%s: open: no directory given", label);
    return EMBER_OK;
}

/*
 * The checks every slot that takes a block id starts with: a valid id
 * (tier_id_check), then `ok` (the slot's other arguments are usable).
 * When ok is 0, EMBER_EINVAL with "<label>: <call> <id>: <problem>".
 */
static inline ember_status tier_call_check(const char *label,
                                           const char *call, const char *id,
                                           int ok, const char *problem,
                                           ember_error *err)
{
    ember_status s = tier_id_check(label, id, err);
    if (s != EMBER_OK)
        return s;
    if (!ok)
        return ember_errorf(err, EMBER_EINVAL, "%s: %s %s: %s", label, call,
                            id, problem);
    return EMBER_OK;
}

/*
 * Checks the arguments of put: a valid id, an open store st, and a batch
 * that is non-NULL with data non-NULL unless it is empty. EMBER_EINVAL
 * naming the tier and the block otherwise.
 */
static inline ember_status tier_put_check(const char *label, const void *st,
                                          const char *id,
                                          const ember_batch *data,
                                          ember_error *err)
{
    ember_status s = tier_call_check(label, "put", id, st != NULL,
                                     "no store", err);
    if (s != EMBER_OK)
        return s;
    return tier_call_check(label, "put", id,
                           data != NULL &&
                               (data->data != NULL || data->len == 0),
                           "NULL batch data", err);
}

/* Checks the arguments of get: a valid id, st and out non-NULL. */
static inline ember_status tier_get_check(const char *label, const void *st,
                                          const char *id,
                                          const ember_buf *out,
                                          ember_error *err)
{
    return tier_call_check(label, "get", id, st != NULL && out != NULL,
                           "NULL argument", err);
}

/* Checks the arguments of remove: a valid id and an open store st. */
static inline ember_status tier_remove_check(const char *label,
                                             const void *st, const char *id,
                                             ember_error *err)
{
    return tier_call_check(label, "remove", id, st != NULL, "no store", err);
}

/*
 * EMBER_ENOTFOUND with "<label>: no block <id>", followed by
 * " (no <kind> <name>)" when kind is not NULL (the file or object the
 * block would be).
 */
static inline ember_status tier_no_block(ember_error *err, const char *label,
                                         const char *id, const char *kind,
                                         const char *name)
{
    if (kind == NULL)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s: no block %s", label,
                            id);
    return ember_errorf(err, EMBER_ENOTFOUND, "%s: no block %s (no %s %s)",
                        label, id, kind, name);
}

/*
 * Makes room for len more bytes in out (ember_buf_reserve). On failure,
 * the reserve's status with a message naming the tier, the block and len.
 */
static inline ember_status tier_out_reserve(ember_buf *out, size_t len,
                                            const char *label,
                                            const char *id, ember_error *err)
{
    ember_status s = ember_buf_reserve(out, len);
    if (s != EMBER_OK)
        return ember_errorf(err, s,
                            "%s: get %s: no room for %zu bytes in the "
                            "output buffer",
                            label, id, len);
    return EMBER_OK;
}

/* The text of errno e into text[0..cap) ("error <e>" when there is none). */
static inline void tier_strerror(int e, char *text, size_t cap)
{
    if (strerror_r(e, text, cap) != 0)
        snprintf(text, cap, "error %d", e);
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
    tier_strerror(e, text, sizeof text);
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

/*
 * As tier_errno, but a missing file or object (ENOENT) is EMBER_EIO: what
 * went away is the directory or the shared-memory file system, an I/O
 * problem, not a missing block. For the paths that create a block.
 */
static inline ember_status tier_errno_io(ember_error *err, int e,
                                         const char *label, const char *what,
                                         const char *where)
{
    ember_status s = tier_errno(err, e, label, what, where, NULL);
    if (s == EMBER_ENOTFOUND) {
        s = EMBER_EIO;
        if (err)
            err->code = s;
    }
    return s;
}

/*
 * The status of a put that failed with errno e while doing `what` on
 * `where`: as tier_errno_io, except that a full device (EMBER_ENOSPC) gets
 * the message "<label>: put <id>: no room <space> for <size> bytes
 * [in <in>] (<strerror>); the block was not stored" (in may be NULL), the
 * one the block manager shows when it leaves a block uncached.
 */
static inline ember_status tier_put_errno(ember_error *err, int e,
                                          const char *label, const char *what,
                                          const char *where, const char *id,
                                          const char *space, size_t size,
                                          const char *in)
{
    char text[128];
    ember_status s = tier_errno_io(err, e, label, what, where);
    if (s != EMBER_ENOSPC)
        return s;
    tier_strerror(e, text, sizeof text);
    return ember_errorf(err, EMBER_ENOSPC,
                        "%s: put %s: no room %s for %zu bytes%s%s (%s); the "
                        "block was not stored",
                        label, id, space, size, in ? " in " : "",
                        in ? in : "", text);
}

/*
 * The status of looking up block id's file or object `name` (of the given
 * kind, as tier_no_block) that failed with errno e while doing `what` on
 * `where`: ENOENT is tier_no_block, anything else tier_errno.
 */
static inline ember_status tier_lookup_errno(ember_error *err, int e,
                                             const char *label,
                                             const char *id, const char *kind,
                                             const char *name,
                                             const char *what,
                                             const char *where)
{
    if (e == ENOENT)
        return tier_no_block(err, label, id, kind, name);
    return tier_errno(err, e, label, what, where, NULL);
}

#endif /* EMBER_STORAGE_TIER_COMMON_H */
