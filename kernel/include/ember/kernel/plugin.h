/*
 * ember/kernel/plugin.h — loading one plugin file (the host side of the
 * contract in ember/plugin.h).
 *
 * em_plugin_open() dlopen()s a file with RTLD_NOW | RTLD_LOCAL, validates
 * its descriptor — magic, sizes, ABI major/minor, traits, names, every
 * component's kind, kind version, vtable size and required slots — copies
 * what it declared into host-owned memory (zeroed structs of the host's
 * size, duplicated strings), and runs the plugin's init. Every refusal is
 * EMBER_EPLUGIN or EMBER_EVERSION (EMBER_ENOTFOUND for a missing file) with
 * a message that starts with the file's path and says why. The descriptor
 * is read through a fault-safe copy, so a wild pointer in it is refused,
 * not followed.
 *
 * Threading: open and close on one thread at a time per plugin; a loaded
 * em_plugin is immutable and may be read from any thread.
 */
#ifndef EMBER_KERNEL_PLUGIN_H
#define EMBER_KERNEL_PLUGIN_H

#include "ember/kernel/export.h"
#include "ember/plugin.h"

/* A validated component, owned by its em_plugin. */
typedef struct em_component {
    ember_component_kind kind;
    uint32_t kind_version;  /* as the plugin declared it */
    char *name;             /* "sum" */
    char *qualified;        /* "std.sum" */
    char *description;      /* may be NULL */
    const void *vtable;     /* host copy: the kind's host-sized vtable */
    uint32_t declared_size; /* vtable_size the plugin declared */
} em_component;

/* A loaded plugin: everything copied out of its descriptor. */
typedef struct em_plugin {
    char *path; /* as given to em_plugin_open */
    char *name;
    char *version;
    char *description; /* may be NULL */
    char *license;     /* may be NULL */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t abi_traits;
    em_component *components;
    size_t component_count;
    void *handle;       /* dlopen handle */
    void (*fini)(void); /* called by em_plugin_close */
} em_plugin;

/*
 * Loads and validates the plugin at path, then calls its init with host
 * (which must outlive the plugin). On success *out owns the plugin; on
 * failure *out is NULL, the file is unloaded and err says why.
 */
EM_API ember_status em_plugin_open(em_plugin **out, const char *path,
                                   const ember_host_api *host,
                                   ember_error *err);

/*
 * Validates an already-resolved descriptor (a plugin linked statically
 * into the program) exactly as em_plugin_open would; `label` stands in for
 * the file name in messages. handle is NULL in the result.
 */
EM_API ember_status em_plugin_open_static(em_plugin **out, const char *label,
                                          ember_plugin_entry_fn entry,
                                          const ember_host_api *host,
                                          ember_error *err);

/* Runs fini, unloads the file and frees p. NULL is a no-op. */
EM_API void em_plugin_close(em_plugin *p);

/* The component of `kind` named `name` (unqualified) in p, or NULL. */
EM_API const em_component *em_plugin_find(const em_plugin *p,
                                          ember_component_kind kind,
                                          const char *name);

/* "function", "codec" ... for a kind; "unknown" for anything else. */
EM_API const char *em_kind_name(uint32_t kind);

/* Parses a kind name; EMBER_EINVAL if unknown. */
EM_API ember_status em_kind_parse(const char *name,
                                  ember_component_kind *kind);

#endif /* EMBER_KERNEL_PLUGIN_H */
