/* runtime/block_svc.c — see block_svc.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "runtime/block_svc.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/kernel/host.h"
#include "ember/kernel/log.h"

/* One tier: its component and the state its open made. */
typedef struct tier {
    const ember_storage_vtable *vt;
    void *state;
} tier;

struct em_block_svc {
    tier memory, disk, off_heap;
    const ember_codec_vtable *codec;
    void *codec_state;
    int codec_open;
    em_block_mgr *mgr;
    char disk_dir[PATH_MAX];
};

static int unlink_cb(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Opens component `name` of kind storage over dir, if it is loaded. */
static ember_status open_tier(tier *t, const em_registry *reg,
                              const char *name, const char *dir,
                              ember_error *err)
{
    const em_component *c =
        reg ? em_registry_find(reg, EMBER_KIND_STORAGE, name) : NULL;
    if (!c) {
        em_log(EMBER_LOG_WARN, "blocks", "no storage tier '%s' is loaded: "
               "levels that need it are not cached", name);
        return EMBER_OK;
    }
    ember_error e = {0};
    const ember_storage_vtable *vt = c->vtable;
    ember_status s = vt->open(em_host_api(), dir, &t->state, &e);
    if (s != EMBER_OK)
        return ember_errorf(err, s, "storage tier %s: %s", name,
                            e.msg[0] ? e.msg : ember_status_name(s));
    t->vt = vt;
    return EMBER_OK;
}

static void close_tier(tier *t)
{
    if (t->vt && t->vt->close)
        t->vt->close(t->state);
    t->vt = NULL;
}

/* The codec of ember.io.compression.codec ("none": none). */
static ember_status open_codec(em_block_svc *s, const em_registry *reg,
                               const em_conf *conf, ember_error *err)
{
    char name[64] = "lz4", comp[96];
    size_t len = 0;
    if (conf)
        em_conf_get(conf, "ember.io.compression.codec", name, sizeof name,
                    &len);
    if (strcmp(name, "none") == 0)
        return EMBER_OK;
    snprintf(comp, sizeof comp, "%s.codec", name);
    const em_component *c =
        reg ? em_registry_find(reg, EMBER_KIND_CODEC, comp) : NULL;
    if (!c)
        return EMBER_OK; /* serialized blocks are kept as they are */
    s->codec = c->vtable;
    if (s->codec->open) {
        ember_error e = {0};
        ember_status st = s->codec->open(em_host_api(), &s->codec_state, &e);
        if (st != EMBER_OK) {
            s->codec = NULL;
            return ember_errorf(err, st, "codec %s: %s", comp,
                                e.msg[0] ? e.msg : ember_status_name(st));
        }
    }
    s->codec_open = 1;
    return EMBER_OK;
}

ember_status em_block_svc_open(em_block_svc **out, const em_registry *reg,
                               const em_conf *conf, const char *executor_id,
                               ember_error *err)
{
    *out = NULL;
    em_block_svc *s = calloc(1, sizeof *s);
    if (!s)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    int64_t memory = (int64_t)1 << 30, off_heap = 0;
    int64_t unroll_threshold = (int64_t)1 << 20;
    double fraction = 0.5;
    char base[PATH_MAX] = "/tmp";
    size_t len = 0;
    if (conf) {
        (void)em_conf_get_size(conf, "ember.executor.memory", memory, &memory,
                               NULL);
        (void)em_conf_get_double(conf, "ember.memory.storageFraction", 0.5,
                                 0.0, 1.0, &fraction, NULL);
        (void)em_conf_get_size(conf, "ember.memory.offHeap.size", 0,
                               &off_heap, NULL);
        if (em_conf_get_size(conf, "ember.storage.unrollMemoryThreshold",
                             unroll_threshold, &unroll_threshold,
                             NULL) != EMBER_OK || unroll_threshold < 0)
            unroll_threshold = (int64_t)1 << 20;
        em_conf_get(conf, "ember.local.dir", base, sizeof base, &len);
    }
    char *comma = strchr(base, ',');
    if (comma)
        *comma = '\0';
    char safe[64], off_dir[PATH_MAX + 16];
    size_t k = 0;
    for (const char *p = executor_id; *p && k + 1 < sizeof safe; p++)
        safe[k++] = (char)((*p == '/' || *p == '.') ? '_' : *p);
    safe[k] = '\0';
    snprintf(s->disk_dir, sizeof s->disk_dir, "%s/ember-blocks-%ld-%s", base,
             (long)getpid(), safe);
    snprintf(off_dir, sizeof off_dir, "%s/offheap", base);
    ember_status st = open_tier(&s->memory, reg, "memory.store", s->disk_dir,
                                err);
    if (st == EMBER_OK)
        st = open_tier(&s->disk, reg, "disk.store", s->disk_dir, err);
    if (st == EMBER_OK)
        st = open_tier(&s->off_heap, reg, "offheap.store", off_dir, err);
    if (st == EMBER_OK)
        st = open_codec(s, reg, conf, err);
    if (st == EMBER_OK) {
        em_block_mgr_opts o = {
            .memory_budget = (uint64_t)((double)memory * fraction),
            .off_heap_budget = (uint64_t)off_heap,
            .memory = {s->memory.vt, s->memory.state},
            .disk = {s->disk.vt, s->disk.state},
            .off_heap = {s->off_heap.vt, s->off_heap.state},
            .codec = {s->codec, s->codec_state},
            .unroll_threshold = (uint64_t)unroll_threshold,
        };
        st = em_block_mgr_open(&s->mgr, &o, err);
    }
    if (st != EMBER_OK) {
        em_block_svc_close(s);
        return st;
    }
    *out = s;
    return EMBER_OK;
}

em_block_mgr *em_block_svc_mgr(em_block_svc *s)
{
    return s ? s->mgr : NULL;
}

void em_block_svc_close(em_block_svc *s)
{
    if (!s)
        return;
    if (s->mgr) {
        (void)em_block_mgr_remove_all(s->mgr);
        em_block_mgr_close(s->mgr);
    }
    close_tier(&s->memory);
    close_tier(&s->disk);
    close_tier(&s->off_heap);
    if (s->codec_open && s->codec->close)
        s->codec->close(s->codec_state);
    if (s->disk_dir[0])
        nftw(s->disk_dir, unlink_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(s);
}
