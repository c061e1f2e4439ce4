/*
 * ember/kernel/describe.h — a loaded plugin described as JSON, for
 * `ember plugin inspect`, `ember plugin list --json` and the state store.
 *
 * The object has: file, name, version, description, license,
 * abi {major, minor, traits}, host_abi {major, minor}, and components:
 * [{kind, name (qualified), kind_version, description, vtable_size, and per
 * kind: shape + determinism (function), flags + replication (storage)}].
 * See docs/cli.md for an example.
 */
#ifndef EMBER_KERNEL_DESCRIBE_H
#define EMBER_KERNEL_DESCRIBE_H

#include "ember/kernel/export.h"
#include "ember/kernel/plugin.h"

/*
 * Renders p as JSON into *out (malloc'd, NUL-terminated; free with free()).
 * indent 0 gives one line; otherwise pretty-printed with that many spaces.
 */
EM_API ember_status em_plugin_describe_json(const em_plugin *p, int indent,
                                            char **out);

#endif /* EMBER_KERNEL_DESCRIBE_H */
