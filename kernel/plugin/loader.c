/* Loading and validating one plugin (see ember/kernel/plugin.h). */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ember/kernel/plugin.h"
#include "kinds.h"
#include "safe_read.h"

/* Limits that keep a hostile descriptor from making the host do silly
 * amounts of work. */
#define MAX_NAME 64
#define MAX_TEXT 4096
#define MAX_COMPONENTS 10000
#define MAX_STRUCT 65536

/* Bytes of the ABI 0.1 structs: what every plugin must declare. */
#define INFO_MIN_SIZE                                                     \
    (offsetof(ember_plugin_info, fini) + sizeof(void (*)(void)))
#define COMPONENT_MIN_SIZE                                                \
    (offsetof(ember_component, flags) + sizeof(uint32_t))

/* The frozen header every descriptor starts with. */
typedef struct info_header {
    uint32_t magic;
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t abi_traits;
} info_header;

_Static_assert(sizeof(info_header) ==
                   offsetof(ember_plugin_info, abi_traits) + sizeof(uint32_t),
               "info_header must mirror the frozen descriptor header");

/* Fills err with "<label>: <message>" and returns code. */
__attribute__((format(printf, 4, 5))) static ember_status
refuse(ember_error *err, ember_status code, const char *label,
       const char *fmt, ...)
{
    char msg[EMBER_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    return ember_errorf(err, code, "%s: %s", label, msg);
}

static int valid_plugin_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

static int valid_component_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static const char *traits_text(uint32_t t, char *buf, size_t cap)
{
    unsigned order = (t >> 16) & 0xf;
    snprintf(buf, cap, "%u-byte pointers, %s-endian, %u-byte size_t",
             t & 0xff, order == 1 ? "little" : order == 2 ? "big" : "unknown",
             (t >> 8) & 0xff);
    return buf;
}

/* Copies a string field; `what` names it in messages. *out may be NULL
 * afterwards only when optional. */
static ember_status copy_string(const char *src, size_t max, int optional,
                                const char *label, const char *what,
                                char **out, ember_error *err)
{
    *out = NULL;
    if (!src) {
        if (optional)
            return EMBER_OK;
        return refuse(err, EMBER_EPLUGIN, label, "%s is missing (NULL)",
                      what);
    }
    switch (em_safe_strdup(src, max, out)) {
    case 0:
        if (!optional && !**out) {
            free(*out);
            *out = NULL;
            return refuse(err, EMBER_EPLUGIN, label, "%s is empty", what);
        }
        return EMBER_OK;
    case -2:
        return refuse(err, EMBER_EPLUGIN, label,
                      "%s is longer than %zu bytes", what, max);
    case -3:
        return refuse(err, EMBER_ENOMEM, label, "out of memory");
    default:
        return refuse(err, EMBER_EPLUGIN, label,
                      "%s points to unreadable memory (%p)", what,
                      (const void *)src);
    }
}

/* Checks every function-pointer slot of a host-sized vtable copy. */
static ember_status check_slots(const em_kind_info *k, const void *vt,
                                size_t declared, const char *qualified,
                                const char *label, ember_error *err)
{
    for (size_t i = 0; i < k->slot_count; i++) {
        const em_slot *s = &k->slots[i];
        void *fn;
        if (s->offset + sizeof fn > declared)
            fn = NULL; /* the plugin predates this slot */
        else
            memcpy(&fn, (const char *)vt + s->offset, sizeof fn);
        if (!fn) {
            if (s->required)
                return refuse(err, EMBER_EPLUGIN, label,
                              "%s '%s': required slot '%s' is NULL", k->name,
                              qualified, s->name);
            continue;
        }
        Dl_info info;
        if (dladdr(fn, &info) == 0)
            return refuse(err, EMBER_EPLUGIN, label,
                          "%s '%s': slot '%s' points outside any loaded "
                          "object (%p)",
                          k->name, qualified, s->name, fn);
    }
    if (k->check) {
        ember_error inner;
        if (k->check(vt, qualified, &inner) != EMBER_OK)
            return refuse(err, inner.code, label, "%s", inner.msg);
    }
    return EMBER_OK;
}

/* Validates and copies component i of the descriptor into c. */
static ember_status load_component(em_plugin *p, const ember_plugin_info *d,
                                   uint32_t i, em_component *c,
                                   const char *label, ember_error *err)
{
    ember_component raw;
    memset(&raw, 0, sizeof raw);
    size_t n = d->component_size < sizeof raw ? d->component_size
                                              : sizeof raw;
    const char *at = (const char *)d->components + (size_t)i * d->component_size;
    if (em_safe_read(&raw, at, n) != 0)
        return refuse(err, EMBER_EPLUGIN, label,
                      "component %u lies in unreadable memory (%p)", i,
                      (const void *)at);

    char what[64];
    snprintf(what, sizeof what, "the name of component %u", i);
    ember_status s = copy_string(raw.name, MAX_NAME, 0, label, what,
                                 &c->name, err);
    if (s != EMBER_OK)
        return s;
    if (!valid_component_name(c->name))
        return refuse(err, EMBER_EPLUGIN, label,
                      "component %u has an invalid name '%s': use letters, "
                      "digits and '_'",
                      i, c->name);
    size_t qlen = strlen(p->name) + 1 + strlen(c->name) + 1;
    c->qualified = malloc(qlen);
    if (!c->qualified)
        return refuse(err, EMBER_ENOMEM, label, "out of memory");
    snprintf(c->qualified, qlen, "%s.%s", p->name, c->name);

    const em_kind_info *k = em_kind_info_of(raw.kind);
    if (!k)
        return refuse(err, EMBER_EPLUGIN, label,
                      "component '%s' has unknown kind %u (this host knows "
                      "kinds %d to %d)",
                      c->qualified, raw.kind, EMBER_KIND_CLUSTER_MANAGER,
                      EMBER_KIND_FUNCTION);
    c->kind = (ember_component_kind)raw.kind;
    c->kind_version = raw.kind_version;
    if (raw.kind_version > k->version)
        return refuse(err, EMBER_EVERSION, label,
                      "%s '%s' was built for %s interface version %u, this "
                      "host provides version %u: upgrade the host",
                      k->name, c->qualified, k->name, raw.kind_version,
                      k->version);
    if (raw.kind_version < k->min_version)
        return refuse(err, EMBER_EVERSION, label,
                      "%s '%s' was built for %s interface version %u, which "
                      "this host no longer supports (it supports %u to %u): "
                      "rebuild the plugin",
                      k->name, c->qualified, k->name, raw.kind_version,
                      k->min_version, k->version);
    if (raw.flags != 0)
        return refuse(err, EMBER_EPLUGIN, label,
                      "%s '%s' sets reserved flags 0x%x (must be 0)", k->name,
                      c->qualified, raw.flags);
    if (!raw.vtable)
        return refuse(err, EMBER_EPLUGIN, label, "%s '%s' has no vtable",
                      k->name, c->qualified);
    if (raw.vtable_size < k->min_vtable_size || raw.vtable_size > MAX_STRUCT)
        return refuse(err, EMBER_EPLUGIN, label,
                      "%s '%s' declares a %u-byte vtable; %s interface "
                      "version %u needs at least %zu bytes",
                      k->name, c->qualified, raw.vtable_size, k->name,
                      raw.kind_version, k->min_vtable_size);
    snprintf(what, sizeof what, "the description of component %u", i);
    s = copy_string(raw.description, MAX_TEXT, 1, label, what,
                    &c->description, err);
    if (s != EMBER_OK)
        return s;

    /* Copy only the declared bytes into a zeroed host-sized vtable. */
    void *vt = calloc(1, k->vtable_size);
    if (!vt)
        return refuse(err, EMBER_ENOMEM, label, "out of memory");
    c->vtable = vt;
    c->declared_size = raw.vtable_size;
    size_t take = raw.vtable_size < k->vtable_size ? raw.vtable_size
                                                   : k->vtable_size;
    if (em_safe_read(vt, raw.vtable, take) != 0)
        return refuse(err, EMBER_EPLUGIN, label,
                      "%s '%s': vtable points to unreadable memory (%p)",
                      k->name, c->qualified, raw.vtable);
    return check_slots(k, vt, take, c->qualified, label, err);
}

static void free_contents(em_plugin *p)
{
    for (size_t i = 0; i < p->component_count; i++) {
        em_component *c = &p->components[i];
        free(c->name);
        free(c->qualified);
        free(c->description);
        free((void *)c->vtable);
    }
    free(p->components);
    free(p->path);
    free(p->name);
    free(p->version);
    free(p->description);
    free(p->license);
}

/* Reads and checks the descriptor, filling p (whose path is set). */
static ember_status load_descriptor(em_plugin *p, ember_plugin_entry_fn entry,
                                    ember_plugin_info *d, const char *label,
                                    ember_error *err)
{
    const ember_plugin_info *info = entry();
    if (!info)
        return refuse(err, EMBER_EPLUGIN, label,
                      "ember_plugin_entry returned NULL");
    info_header h;
    if (em_safe_read(&h, info, sizeof h) != 0)
        return refuse(err, EMBER_EPLUGIN, label,
                      "ember_plugin_entry returned an unreadable "
                      "descriptor (%p)",
                      (const void *)info);
    if (h.magic != EMBER_PLUGIN_MAGIC)
        return refuse(err, EMBER_EPLUGIN, label,
                      "bad magic 0x%08x in descriptor (expected 0x%08x, "
                      "\"EMBR\"): not an ember plugin descriptor",
                      h.magic, EMBER_PLUGIN_MAGIC);
    if (h.abi_major != EMBER_ABI_MAJOR)
        return refuse(err, EMBER_EVERSION, label,
                      "built for ABI %u.%u, this host provides %u.%u", 
                      h.abi_major, h.abi_minor, EMBER_ABI_MAJOR,
                      EMBER_ABI_MINOR);
    if (h.abi_minor > EMBER_ABI_MINOR)
        return refuse(err, EMBER_EVERSION, label,
                      "built for ABI %u.%u, this host provides %u.%u: the "
                      "plugin needs a newer host",
                      h.abi_major, h.abi_minor, EMBER_ABI_MAJOR,
                      EMBER_ABI_MINOR);
    if (h.abi_traits != EMBER_ABI_TRAITS) {
        char a[96], b[96];
        return refuse(err, EMBER_EVERSION, label,
                      "built for another platform: ABI traits 0x%08x (%s), "
                      "this host has 0x%08x (%s)",
                      h.abi_traits, traits_text(h.abi_traits, a, sizeof a),
                      (uint32_t)EMBER_ABI_TRAITS,
                      traits_text(EMBER_ABI_TRAITS, b, sizeof b));
    }
    if (h.struct_size < INFO_MIN_SIZE || h.struct_size > MAX_STRUCT)
        return refuse(err, EMBER_EPLUGIN, label,
                      "descriptor declares %u bytes; ABI %u.%u needs at "
                      "least %zu",
                      h.struct_size, h.abi_major, h.abi_minor,
                      (size_t)INFO_MIN_SIZE);
    memset(d, 0, sizeof *d);
    size_t take = h.struct_size < sizeof *d ? h.struct_size : sizeof *d;
    if (em_safe_read(d, info, take) != 0)
        return refuse(err, EMBER_EPLUGIN, label,
                      "descriptor of %u bytes at %p is not fully readable",
                      h.struct_size, (const void *)info);

    p->abi_major = h.abi_major;
    p->abi_minor = h.abi_minor;
    p->abi_traits = h.abi_traits;
    ember_status s =
        copy_string(d->name, MAX_NAME, 0, label, "plugin name", &p->name, err);
    if (s != EMBER_OK)
        return s;
    if (!valid_plugin_name(p->name))
        return refuse(err, EMBER_EPLUGIN, label,
                      "invalid plugin name '%s': use a lower-case letter, "
                      "then lower-case letters, digits or '_'",
                      p->name);
    if ((s = copy_string(d->version, MAX_NAME, 0, label, "plugin version",
                         &p->version, err)) != EMBER_OK ||
        (s = copy_string(d->description, MAX_TEXT, 1, label,
                         "plugin description", &p->description, err)) !=
            EMBER_OK ||
        (s = copy_string(d->license, MAX_NAME, 1, label, "plugin license",
                         &p->license, err)) != EMBER_OK)
        return s;

    if (d->component_count == 0)
        return refuse(err, EMBER_EPLUGIN, label,
                      "plugin '%s' declares no components", p->name);
    if (d->component_count > MAX_COMPONENTS)
        return refuse(err, EMBER_EPLUGIN, label,
                      "plugin '%s' declares %u components (at most %d)",
                      p->name, d->component_count, MAX_COMPONENTS);
    if (!d->components)
        return refuse(err, EMBER_EPLUGIN, label,
                      "plugin '%s' declares %u components but no component "
                      "array",
                      p->name, d->component_count);
    if (d->component_size < COMPONENT_MIN_SIZE ||
        d->component_size > MAX_STRUCT)
        return refuse(err, EMBER_EPLUGIN, label,
                      "component entries declare %u bytes; ABI %u.%u needs at "
                      "least %zu",
                      d->component_size, h.abi_major, h.abi_minor,
                      (size_t)COMPONENT_MIN_SIZE);

    p->components = calloc(d->component_count, sizeof *p->components);
    if (!p->components)
        return refuse(err, EMBER_ENOMEM, label, "out of memory");
    for (uint32_t i = 0; i < d->component_count; i++) {
        em_component *c = &p->components[i];
        p->component_count = i + 1; /* so free_contents sees it */
        if ((s = load_component(p, d, i, c, label, err)) != EMBER_OK)
            return s;
        for (uint32_t j = 0; j < i; j++) {
            const em_component *o = &p->components[j];
            if (o->kind == c->kind && strcmp(o->name, c->name) == 0)
                return refuse(err, EMBER_EPLUGIN, label, "duplicate %s '%s'",
                              em_kind_name(c->kind), c->qualified);
        }
    }
    return EMBER_OK;
}

/* Shared tail of both open paths: validate, init, hand over. */
static ember_status finish_open(em_plugin *p, ember_plugin_entry_fn entry,
                                const ember_host_api *host, ember_error *err)
{
    ember_plugin_info d;
    ember_status s = load_descriptor(p, entry, &d, p->path, err);
    if (s != EMBER_OK)
        return s;
    if (d.fini) {
        Dl_info info;
        if (dladdr((void *)d.fini, &info) == 0)
            return refuse(err, EMBER_EPLUGIN, p->path,
                          "fini points outside any loaded object");
    }
    if (d.init) {
        Dl_info info;
        if (dladdr((void *)d.init, &info) == 0)
            return refuse(err, EMBER_EPLUGIN, p->path,
                          "init points outside any loaded object");
        ember_error inner;
        ember_error_clear(&inner);
        s = d.init(host, &inner);
        if (s != EMBER_OK)
            return refuse(err, s < 0 ? s : EMBER_EPLUGIN, p->path,
                          "init of plugin '%s' failed: %s", p->name,
                          inner.msg[0] ? inner.msg : ember_status_name(s));
    }
    p->fini = d.fini;
    return EMBER_OK;
}

ember_status em_plugin_open(em_plugin **out, const char *path,
                            const ember_host_api *host, ember_error *err)
{
    *out = NULL;
    struct stat st;
    if (!path || stat(path, &st) != 0)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s: %s",
                            path ? path : "(null)", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ember_errorf(err, EMBER_EPLUGIN, "%s: not a regular file",
                            path);

    em_plugin *p = calloc(1, sizeof *p);
    if (!p)
        return ember_errorf(err, EMBER_ENOMEM, "%s: out of memory", path);
    /* A bare name would make dlopen search the library path. */
    size_t plen = strlen(path) + 3;
    p->path = malloc(plen);
    if (!p->path) {
        free(p);
        return ember_errorf(err, EMBER_ENOMEM, "%s: out of memory", path);
    }
    snprintf(p->path, plen, "%s%s", strchr(path, '/') ? "" : "./", path);

    ember_status s;
    dlerror();
    p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        const char *why = dlerror();
        s = ember_errorf(err, EMBER_EPLUGIN,
                         "%s: cannot load shared object: %s", path,
                         why ? why : "unknown dlopen error");
        goto fail;
    }
    ember_plugin_entry_fn entry;
    *(void **)&entry = dlsym(p->handle, EMBER_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        s = ember_errorf(err, EMBER_EPLUGIN,
                         "%s: not an ember plugin: no %s", path,
                         EMBER_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    if ((s = finish_open(p, entry, host, err)) != EMBER_OK)
        goto fail;
    *out = p;
    return EMBER_OK;
fail:
    if (p->handle)
        dlclose(p->handle);
    free_contents(p);
    free(p);
    return s;
}

ember_status em_plugin_open_static(em_plugin **out, const char *label,
                                   ember_plugin_entry_fn entry,
                                   const ember_host_api *host,
                                   ember_error *err)
{
    *out = NULL;
    em_plugin *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(label ? label : "(static)"))) {
        free(p);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    ember_status s = finish_open(p, entry, host, err);
    if (s != EMBER_OK) {
        free_contents(p);
        free(p);
        return s;
    }
    *out = p;
    return EMBER_OK;
}

void em_plugin_close(em_plugin *p)
{
    if (!p)
        return;
    if (p->fini)
        p->fini();
    if (p->handle)
        dlclose(p->handle);
    free_contents(p);
    free(p);
}

const em_component *em_plugin_find(const em_plugin *p,
                                   ember_component_kind kind,
                                   const char *name)
{
    for (size_t i = 0; i < p->component_count; i++)
        if (p->components[i].kind == kind &&
            strcmp(p->components[i].name, name) == 0)
            return &p->components[i];
    return NULL;
}
