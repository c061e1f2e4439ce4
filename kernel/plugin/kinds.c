/* The host's table of component kinds (see kinds.h). */
#include "kinds.h"

#include <string.h>

#include "ember/kernel/plugin.h"
#include "ember/sdk.h"

#define SLOT(type, field, req) {#field, offsetof(type, field), req}
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* Bytes up to and including the last field of kind version 1. */
#define V1_SIZE(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

static const em_slot cluster_slots[] = {
    SLOT(ember_cluster_manager_vtable, accepts, 1),
    SLOT(ember_cluster_manager_vtable, start, 1),
    SLOT(ember_cluster_manager_vtable, request_executors, 1),
    SLOT(ember_cluster_manager_vtable, kill_executor, 1),
    SLOT(ember_cluster_manager_vtable, stop, 1),
};

static const em_slot storage_slots[] = {
    SLOT(ember_storage_vtable, open, 1),
    SLOT(ember_storage_vtable, close, 1),
    SLOT(ember_storage_vtable, put, 1),
    SLOT(ember_storage_vtable, get, 1),
    SLOT(ember_storage_vtable, remove, 1),
};

static const em_slot codec_slots[] = {
    SLOT(ember_codec_vtable, open, 0),
    SLOT(ember_codec_vtable, close, 0),
    SLOT(ember_codec_vtable, bound, 1),
    SLOT(ember_codec_vtable, compress, 1),
    SLOT(ember_codec_vtable, decompress, 1),
};

static const em_slot shuffle_slots[] = {
    SLOT(ember_shuffle_vtable, open, 1),
    SLOT(ember_shuffle_vtable, close, 1),
    SLOT(ember_shuffle_vtable, writer_open, 1),
    SLOT(ember_shuffle_vtable, write, 1),
    SLOT(ember_shuffle_vtable, write_tagged, 1),
    SLOT(ember_shuffle_vtable, writer_commit, 1),
    SLOT(ember_shuffle_vtable, writer_abort, 1),
    SLOT(ember_shuffle_vtable, read_block, 1),
    SLOT(ember_shuffle_vtable, remove_shuffle, 1),
};

static const em_slot source_slots[] = {
    SLOT(ember_source_vtable, plan, 1),
    SLOT(ember_source_vtable, open, 1),
    SLOT(ember_source_vtable, read, 1),
    SLOT(ember_source_vtable, close, 1),
};

static const em_slot sink_slots[] = {
    SLOT(ember_sink_vtable, open, 1),
    SLOT(ember_sink_vtable, write, 1),
    SLOT(ember_sink_vtable, commit, 1),
    SLOT(ember_sink_vtable, abort, 1),
};

/* Function slots: map_batch / reduce are required by shape, below. */
static const em_slot function_slots[] = {
    SLOT(ember_function_vtable, open, 0),
    SLOT(ember_function_vtable, close, 0),
    SLOT(ember_function_vtable, map_batch, 0),
    SLOT(ember_function_vtable, reduce, 0),
};

static ember_status check_function(const void *vt, const char *qualified,
                                   ember_error *err)
{
    const ember_function_vtable *f = vt;
    if (f->determinism < EMBER_DETERMINISTIC ||
        f->determinism > EMBER_INDETERMINATE)
        return ember_errorf(err, EMBER_EPLUGIN,
                            "function '%s' declares determinism %u; expected "
                            "1 (deterministic), 2 (unordered) or 3 "
                            "(indeterminate)",
                            qualified, f->determinism);
    switch (f->shape) {
    case EMBER_FN_MAP:
        if (!f->map_batch)
            return ember_errorf(err, EMBER_EPLUGIN,
                                "function '%s' has shape map but its "
                                "required slot 'map_batch' is NULL",
                                qualified);
        return EMBER_OK;
    case EMBER_FN_REDUCE:
        if (!f->reduce)
            return ember_errorf(err, EMBER_EPLUGIN,
                                "function '%s' has shape reduce but its "
                                "required slot 'reduce' is NULL",
                                qualified);
        return EMBER_OK;
    default:
        return ember_errorf(err, EMBER_EPLUGIN,
                            "function '%s' declares unknown shape %u; "
                            "expected 1 (map) or 2 (reduce)",
                            qualified, f->shape);
    }
}

static ember_status check_storage(const void *vt, const char *qualified,
                                  ember_error *err)
{
    const ember_storage_vtable *s = vt;
    const uint32_t known = EMBER_STORAGE_MEMORY | EMBER_STORAGE_DISK |
                           EMBER_STORAGE_SERIALIZED | EMBER_STORAGE_OFF_HEAP;
    if (s->flags & ~known)
        return ember_errorf(err, EMBER_EPLUGIN,
                            "storage '%s' sets unknown flags 0x%x", qualified,
                            s->flags & ~known);
    if (s->replication < 1)
        return ember_errorf(err, EMBER_EPLUGIN,
                            "storage '%s' declares replication 0; expected 1 "
                            "or more",
                            qualified);
    return EMBER_OK;
}

#define KIND(k, nm, ver, type, last, slots, chk)                           \
    {k, nm, ver, 1, sizeof(type), V1_SIZE(type, last), slots,             \
     COUNT(slots), chk}

static const em_kind_info kinds[] = {
    KIND(EMBER_KIND_CLUSTER_MANAGER, "cluster_manager",
         EMBER_CLUSTER_MANAGER_VERSION, ember_cluster_manager_vtable, stop,
         cluster_slots, NULL),
    KIND(EMBER_KIND_STORAGE, "storage", EMBER_STORAGE_VERSION,
         ember_storage_vtable, remove, storage_slots, check_storage),
    KIND(EMBER_KIND_CODEC, "codec", EMBER_CODEC_VERSION, ember_codec_vtable,
         decompress, codec_slots, NULL),
    KIND(EMBER_KIND_SHUFFLE, "shuffle", EMBER_SHUFFLE_VERSION,
         ember_shuffle_vtable, remove_shuffle, shuffle_slots, NULL),
    KIND(EMBER_KIND_SOURCE, "source", EMBER_SOURCE_VERSION,
         ember_source_vtable, close, source_slots, NULL),
    KIND(EMBER_KIND_SINK, "sink", EMBER_SINK_VERSION, ember_sink_vtable,
         abort, sink_slots, NULL),
    KIND(EMBER_KIND_FUNCTION, "function", EMBER_FUNCTION_VERSION,
         ember_function_vtable, reduce, function_slots, check_function),
};

const em_kind_info *em_kind_info_of(uint32_t kind)
{
    for (size_t i = 0; i < COUNT(kinds); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    return NULL;
}

const char *em_kind_name(uint32_t kind)
{
    const em_kind_info *k = em_kind_info_of(kind);
    return k ? k->name : "unknown";
}

ember_status em_kind_parse(const char *name, ember_component_kind *kind)
{
    for (size_t i = 0; i < COUNT(kinds); i++) {
        if (name && strcmp(kinds[i].name, name) == 0) {
            *kind = (ember_component_kind)kinds[i].kind;
            return EMBER_OK;
        }
    }
    return EMBER_EINVAL;
}
