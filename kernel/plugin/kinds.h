/*
 * kinds.h — what the host knows about each component kind: its name, the
 * vtable versions and sizes it supports, and which slots must be set.
 * Internal to the loader.
 */
#ifndef EM_PLUGIN_KINDS_H
#define EM_PLUGIN_KINDS_H

#include <stddef.h>

#include "ember/abi.h"

/* One function-pointer slot of a vtable. */
typedef struct em_slot {
    const char *name;
    size_t offset;
    int required;
} em_slot;

typedef struct em_kind_info {
    uint32_t kind;
    const char *name;        /* "function" */
    uint32_t version;        /* the host's EMBER_<KIND>_VERSION */
    uint32_t min_version;    /* oldest kind version still accepted */
    size_t vtable_size;      /* sizeof the host's vtable */
    size_t min_vtable_size;  /* bytes a version-1 vtable must declare */
    const em_slot *slots;    /* function pointers, for required checks */
    size_t slot_count;
    /* Kind-specific checks of non-pointer fields (enums, flags) on the
     * host-sized copy; NULL when there are none. */
    ember_status (*check)(const void *vtable, const char *qualified,
                          ember_error *err);
} em_kind_info;

/* The info for kind, or NULL for a kind this host does not know. */
const em_kind_info *em_kind_info_of(uint32_t kind);

#endif /* EM_PLUGIN_KINDS_H */
