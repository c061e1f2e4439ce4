/* JSON descriptions of loaded plugins (see ember/kernel/describe.h). */
#include "ember/kernel/describe.h"

#include <jansson.h>
#include <stdio.h>

#include "ember/sdk.h"

static const char *shape_name(uint32_t shape)
{
    switch (shape) {
    case EMBER_FN_MAP: return "map";
    case EMBER_FN_REDUCE: return "reduce";
    default: return "unknown";
    }
}

static const char *determinism_name(uint32_t d)
{
    switch (d) {
    case EMBER_DETERMINISTIC: return "deterministic";
    case EMBER_UNORDERED: return "unordered";
    case EMBER_INDETERMINATE: return "indeterminate";
    default: return "unknown";
    }
}

/* Adds kind-specific fields of c to obj; 0 on success. */
static int describe_kind(const em_component *c, json_t *obj)
{
    if (c->kind == EMBER_KIND_FUNCTION) {
        const ember_function_vtable *f = c->vtable;
        return json_object_set_new(obj, "shape",
                                   json_string(shape_name(f->shape))) |
               json_object_set_new(
                   obj, "determinism",
                   json_string(determinism_name(f->determinism)));
    }
    if (c->kind == EMBER_KIND_STORAGE) {
        const ember_storage_vtable *s = c->vtable;
        json_t *flags = json_array();
        if (!flags)
            return -1;
        static const struct {
            uint32_t bit;
            const char *name;
        } names[] = {{EMBER_STORAGE_MEMORY, "memory"},
                     {EMBER_STORAGE_DISK, "disk"},
                     {EMBER_STORAGE_SERIALIZED, "serialized"},
                     {EMBER_STORAGE_OFF_HEAP, "off_heap"}};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (s->flags & names[i].bit)
                json_array_append_new(flags, json_string(names[i].name));
        return json_object_set_new(obj, "flags", flags) |
               json_object_set_new(obj, "replication",
                                   json_integer(s->replication));
    }
    return 0;
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

ember_status em_plugin_describe_json(const em_plugin *p, int indent,
                                     char **out)
{
    *out = NULL;
    ember_status s = EMBER_ENOMEM;
    char traits[16];
    snprintf(traits, sizeof traits, "0x%08x", p->abi_traits);
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:{s:i, s:i, s:s}, s:{s:i, s:i}}", "file",
        p->path, "name", p->name, "version", p->version, "description",
        string_or_null(p->description), "license",
        string_or_null(p->license), "abi", "major", (int)p->abi_major,
        "minor", (int)p->abi_minor, "traits", traits, "host_abi", "major",
        EMBER_ABI_MAJOR, "minor", EMBER_ABI_MINOR);
    json_t *comps = json_array();
    if (!root || !comps)
        goto out;
    for (size_t i = 0; i < p->component_count; i++) {
        const em_component *c = &p->components[i];
        json_t *o = json_pack("{s:s, s:s, s:i, s:o, s:i}", "kind",
                              em_kind_name(c->kind), "name", c->qualified,
                              "kind_version", (int)c->kind_version,
                              "description", string_or_null(c->description),
                              "vtable_size", (int)c->declared_size);
        if (!o || describe_kind(c, o) != 0 ||
            json_array_append_new(comps, o) != 0) {
            json_decref(o);
            goto out;
        }
    }
    if (json_object_set(root, "components", comps) != 0)
        goto out;
    size_t flags = JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII;
    flags |= indent > 0 ? JSON_INDENT(indent) : JSON_COMPACT;
    *out = json_dumps(root, flags);
    if (*out)
        s = EMBER_OK;
out:
    json_decref(comps);
    json_decref(root);
    return s;
}
