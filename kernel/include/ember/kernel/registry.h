/*
 * ember/kernel/registry.h — the set of loaded plugins, and the lookup of
 * components by their qualified names ("std.sum").
 *
 * Plugins come from configured directories (every *.so in them) and from
 * files the user names. Plugin names are unique in a registry, and so are
 * qualified component names per kind. A refused file never stops the
 * others from loading. Threading: loads and lookups may run from any
 * threads at once (a read-write lock; emberd loads plugins clients ship
 * while executors look functions up). A plugin, once loaded, stays loaded
 * until the registry is destroyed, so pointers lookups return stay valid.
 */
#ifndef EMBER_KERNEL_REGISTRY_H
#define EMBER_KERNEL_REGISTRY_H

#include "ember/kernel/export.h"
#include "ember/kernel/plugin.h"

typedef struct em_registry em_registry;

/* Creates an empty registry whose plugins get `host` (borrowed). */
EM_API ember_status em_registry_create(em_registry **out,
                                       const ember_host_api *host);

/* Unloads every plugin, last loaded first, and frees r. NULL is a no-op. */
EM_API void em_registry_destroy(em_registry *r);

/*
 * Loads the plugin file at path. A second plugin with an already-loaded
 * name is refused with EMBER_EEXIST ("duplicate plugin 'std': already
 * loaded from …"). *out (may be NULL) borrows the loaded plugin.
 */
EM_API ember_status em_registry_load(em_registry *r, const char *path,
                                     const em_plugin **out, ember_error *err);

/* Told about each file a directory scan refused, with the reason. */
typedef void (*em_refusal_fn)(void *ctx, const char *path,
                              const ember_error *err);

/*
 * Loads every regular file named *.so in dir, in name order. Each refused
 * file goes to on_refused (may be NULL) and is skipped. Returns an error
 * only when dir itself cannot be read (EMBER_ENOTFOUND when missing).
 */
EM_API ember_status em_registry_load_dir(em_registry *r, const char *dir,
                                         em_refusal_fn on_refused, void *ctx,
                                         ember_error *err);

/* Number of loaded plugins, and the i-th (load order). */
EM_API size_t em_registry_count(const em_registry *r);
EM_API const em_plugin *em_registry_at(const em_registry *r, size_t i);

/* The component of `kind` named `qualified` ("std.sum"), or NULL. */
EM_API const em_component *em_registry_find(const em_registry *r,
                                            ember_component_kind kind,
                                            const char *qualified);

/*
 * The default plugin directory: "ember/plugins" beside the directory that
 * holds the kernel library (build/lib/ember/plugins in a build tree,
 * <libdir>/ember/plugins when installed). EMBER_ENOSPC if cap is too small.
 */
EM_API ember_status em_registry_default_dir(char *out, size_t cap);

#endif /* EMBER_KERNEL_REGISTRY_H */
