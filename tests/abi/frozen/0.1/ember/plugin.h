/*
 * ember/plugin.h — the plugin descriptor and the loading contract.
 *
 * A plugin is a shared object exporting one function, ember_plugin_entry(),
 * that returns a pointer to a constant ember_plugin_info. The host:
 *   1. dlopen()s the file (RTLD_NOW | RTLD_LOCAL) and looks the entry up;
 *   2. checks magic, struct_size, ABI major (equal), ABI minor (plugin's not
 *      newer than the host's), the ABI-traits word, the names, and each
 *      component's kind, kind version, vtable size and required slots;
 *   3. copies what it needs — only the bytes the plugin declared, into zeroed
 *      structs of the host's own size — and duplicates every string, so
 *      nothing the plugin declared is read again after loading except the
 *      functions its vtables point to;
 *   4. calls init (if any) once, before any component is used, and fini (if
 *      any) once, before dlclose.
 * Everything the descriptor points to must stay valid and unchanged while
 * the plugin is loaded (use static const data). The host never writes to it.
 *
 * The fields up to and including abi_traits are frozen forever; later
 * fields may only be appended (and struct_size tells the host which exist).
 */
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

#include "ember/abi.h"
#include "ember/host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Component kinds. Values are stable; new kinds are appended. */
typedef enum ember_component_kind {
    EMBER_KIND_CLUSTER_MANAGER = 1,
    EMBER_KIND_STORAGE = 2,
    EMBER_KIND_CODEC = 3,
    EMBER_KIND_SHUFFLE = 4,
    EMBER_KIND_SOURCE = 5,
    EMBER_KIND_SINK = 6,
    EMBER_KIND_FUNCTION = 7
} ember_component_kind;

/*
 * One component: a named implementation of one kind. The user-visible name
 * is "<plugin>.<name>" (e.g. "std.sum"). name matches [A-Za-z0-9_]+ and is
 * unique per kind within the plugin. vtable points to the kind's vtable
 * struct (see the kind headers) and vtable_size is sizeof that struct as
 * the plugin was compiled; kind_version is the kind header's
 * EMBER_<KIND>_VERSION. Use the EMBER_<KIND>_COMPONENT() macros.
 */
typedef struct ember_component {
    uint32_t kind;         /* ember_component_kind */
    uint32_t kind_version; /* EMBER_<KIND>_VERSION the plugin was built with */
    const char *name;
    const char *description; /* one line, may be NULL */
    const void *vtable;
    uint32_t vtable_size;
    uint32_t flags; /* reserved, must be 0 */
} ember_component;

/* Fills an ember_component initializer; kind headers wrap this. */
#define EMBER_COMPONENT(kind_, version_, name_, desc_, vtable_)           \
    {                                                                     \
        (uint32_t)(kind_), (uint32_t)(version_), (name_), (desc_),        \
            (const void *)(vtable_), (uint32_t)sizeof(*(vtable_)), 0u     \
    }

/*
 * The descriptor. name matches [a-z][a-z0-9_]* (it prefixes component
 * names); version is free text (semver recommended); license an SPDX id.
 * components points to component_count entries of component_size bytes.
 *
 * init (optional) runs once after the host accepted the plugin, with the
 * host services table, which stays valid until fini returns; a plugin keeps
 * the pointer if it needs host services outside component calls. A failing
 * init (non-OK status, message in err) refuses the plugin. fini (optional)
 * runs once before unloading. Both run on the loading thread.
 */
typedef struct ember_plugin_info {
    uint32_t magic;       /* EMBER_PLUGIN_MAGIC */
    uint32_t struct_size; /* sizeof(ember_plugin_info) as compiled */
    uint16_t abi_major;   /* EMBER_ABI_MAJOR as compiled */
    uint16_t abi_minor;   /* EMBER_ABI_MINOR as compiled */
    uint32_t abi_traits;  /* EMBER_ABI_TRAITS as compiled */
    /* --- frozen header ends here --- */
    const char *name;
    const char *version;
    const char *description;
    const char *license;
    const ember_component *components;
    uint32_t component_count;
    uint32_t component_size; /* sizeof(ember_component) as compiled */
    ember_status (*init)(const ember_host_api *host, ember_error *err);
    void (*fini)(void);
} ember_plugin_info;

/* The symbol every plugin exports, and its type. */
#define EMBER_PLUGIN_ENTRY_SYMBOL "ember_plugin_entry"
typedef const ember_plugin_info *(*ember_plugin_entry_fn)(void);

/*
 * EMBER_PLUGIN(name, version, description, license, components, init, fini)
 * declares a plugin in one statement. `name` is a bare identifier (it
 * becomes the plugin's name string); `components` a static array of
 * ember_component; init/fini may be NULL. It emits:
 *   - ember_plugin_entry_<name>(): the entry under a name-specific symbol,
 *     so several plugins can be linked statically into one program (tests);
 *   - ember_plugin_entry(): the generic entry the loader looks for, unless
 *     EMBER_PLUGIN_STATIC is defined when compiling.
 */
#define EMBER_PLUGIN_INFO_INIT(name_, version_, desc_, license_, comps_,  \
                               init_, fini_)                              \
    {                                                                     \
        EMBER_PLUGIN_MAGIC, (uint32_t)sizeof(ember_plugin_info),          \
            EMBER_ABI_MAJOR, EMBER_ABI_MINOR, EMBER_ABI_TRAITS, #name_,   \
            (version_), (desc_), (license_), (comps_),                    \
            (uint32_t)(sizeof(comps_) / sizeof((comps_)[0])),             \
            (uint32_t)sizeof(ember_component), (init_), (fini_)           \
    }

#ifdef EMBER_PLUGIN_STATIC
#define EMBER__PLUGIN_GENERIC_ENTRY(name_)
#else
#define EMBER__PLUGIN_GENERIC_ENTRY(name_)                                \
    EMBER_EXPORT const ember_plugin_info *ember_plugin_entry(void);       \
    EMBER_EXPORT const ember_plugin_info *ember_plugin_entry(void)        \
    {                                                                     \
        return &ember__plugin_info_##name_;                               \
    }
#endif

#define EMBER_PLUGIN(name_, version_, desc_, license_, comps_, init_,     \
                     fini_)                                               \
    static const ember_plugin_info ember__plugin_info_##name_ =           \
        EMBER_PLUGIN_INFO_INIT(name_, version_, desc_, license_, comps_,  \
                               init_, fini_);                             \
    EMBER_EXPORT const ember_plugin_info *ember_plugin_entry_##name_(void); \
    EMBER_EXPORT const ember_plugin_info *ember_plugin_entry_##name_(void) \
    {                                                                     \
        return &ember__plugin_info_##name_;                               \
    }                                                                     \
    EMBER__PLUGIN_GENERIC_ENTRY(name_)                                    \
    typedef int ember__plugin_##name_##_declared

#ifdef __cplusplus
}
#endif
#endif /* EMBER_PLUGIN_H */
