/*
 * runtime/shuffle_svc.c — an executor's shuffle service and the shuffle
 * part of STAGE descriptions (shuffle_svc.h).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "runtime/shuffle_svc.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/kernel/host.h"
#include "ember/kernel/log.h"
#include "runtime/fetch.h"

struct em_shuffle_svc {
    const ember_shuffle_vtable *vt;
    void *state;
    int open;
    const ember_codec_vtable *codec;
    void *codec_state;
    int codec_open;
    char codec_name[64];
    char dir[PATH_MAX];
    char endpoint[PATH_MAX + 32];
    em_block_server *server;
    uint64_t memory, in_flight;
    int64_t timeout_ms;
    ember_shuffle_conf conf;
};

static int64_t conf_size(const em_conf *c, const char *key, int64_t dflt)
{
    int64_t v = dflt;
    if (c && em_conf_get_size(c, key, dflt, &v, NULL) != EMBER_OK)
        v = dflt;
    return v;
}

static int unlink_cb(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    if (dir[0])
        nftw(dir, unlink_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Whether blocks are compressed: ember.shuffle.compress true or false, or
 * auto (the default): only when they may cross a network (blocks served
 * over tcp). Blocks of in-process executors (local[N]) and of executor
 * processes on one host (local-cluster, over ipc) are read back through
 * the page cache on this host, where compressing costs CPU and saves
 * nothing but page cache.
 */
static int want_compress(const em_conf *conf, const char *serve_url)
{
    char v[16] = "auto";
    size_t len = 0;
    if (conf)
        em_conf_get(conf, "ember.shuffle.compress", v, sizeof v, &len);
    if (strcmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "false") == 0)
        return 0;
    return serve_url != NULL && strncmp(serve_url, "tcp://", 6) == 0;
}

static ember_status open_codec(em_shuffle_svc *s, const em_registry *reg,
                               const em_conf *conf, const char *serve_url,
                               ember_error *err)
{
    int compress = want_compress(conf, serve_url);
    snprintf(s->codec_name, sizeof s->codec_name, "lz4");
    size_t len = 0;
    if (conf)
        em_conf_get(conf, "ember.io.compression.codec", s->codec_name,
                    sizeof s->codec_name, &len);
    if (!compress || strcmp(s->codec_name, "none") == 0) {
        snprintf(s->codec_name, sizeof s->codec_name, "none");
        return EMBER_OK;
    }
    char comp[96];
    snprintf(comp, sizeof comp, "%s.codec", s->codec_name);
    const em_component *c =
        reg ? em_registry_find(reg, EMBER_KIND_CODEC, comp) : NULL;
    if (!c)
        return ember_errorf(err, EMBER_ENOTFOUND,
                            "ember.io.compression.codec is '%s' but no "
                            "codec '%s' is loaded (codec plugins: none, "
                            "lz4, zstd)", s->codec_name, comp);
    s->codec = c->vtable;
    if (s->codec->open) {
        ember_error e = {0};
        ember_status st = s->codec->open(em_host_api(), &s->codec_state, &e);
        if (st != EMBER_OK)
            return ember_errorf(err, st, "codec %s: %s", comp,
                                e.msg[0] ? e.msg : ember_status_name(st));
    }
    s->codec_open = 1;
    return EMBER_OK;
}

ember_status em_shuffle_svc_open(em_shuffle_svc **out,
                                 const em_registry *registry,
                                 const em_conf *conf, const char *executor_id,
                                 const char *serve_url, ember_error *err)
{
    *out = NULL;
    em_shuffle_svc *s = calloc(1, sizeof *s);
    if (!s)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    ember_status st;
    char name[64] = "sort", comp[96];
    size_t len = 0;
    if (conf)
        em_conf_get(conf, "ember.shuffle.manager", name, sizeof name, &len);
    snprintf(comp, sizeof comp, "%s.manager", name);
    const em_component *c =
        registry ? em_registry_find(registry, EMBER_KIND_SHUFFLE, comp)
                 : NULL;
    if (!c) {
        st = ember_errorf(err, EMBER_ENOTFOUND,
                          "ember.shuffle.manager is '%s' but no shuffle "
                          "manager '%s' is loaded (bundled: sort, hash)",
                          name, comp);
        goto fail;
    }
    s->vt = c->vtable;
    if ((st = open_codec(s, registry, conf, serve_url, err)) != EMBER_OK)
        goto fail;
    /* the first of ember.local.dir's comma-separated directories */
    char base[PATH_MAX] = "/tmp";
    if (conf)
        em_conf_get(conf, "ember.local.dir", base, sizeof base, &len);
    char *comma = strchr(base, ',');
    if (comma)
        *comma = '\0';
    char safe[64];
    size_t k = 0;
    for (const char *p = executor_id; *p && k + 1 < sizeof safe; p++)
        safe[k++] = (char)((*p == '/' || *p == '.') ? '_' : *p);
    safe[k] = '\0';
    if ((size_t)snprintf(s->dir, sizeof s->dir, "%s/ember-shuffle-%ld-%s",
                         base, (long)getpid(), safe) >= sizeof s->dir) {
        s->dir[0] = '\0';
        st = ember_errorf(err, EMBER_EINVAL, "ember.local.dir is too long");
        goto fail;
    }
    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
        st = ember_errorf(err, EMBER_EIO, "cannot create shuffle directory "
                          "%s: %s (see ember.local.dir)", s->dir,
                          strerror(errno));
        s->dir[0] = '\0';
        goto fail;
    }
    s->memory = (uint64_t)conf_size(conf, "ember.shuffle.memory", 128 << 20);
    s->in_flight =
        (uint64_t)conf_size(conf, "ember.reducer.maxSizeInFlight", 48 << 20);
    s->timeout_ms = 120000;
    if (conf)
        em_conf_get_duration_ms(conf, "ember.network.timeout", 120000,
                                &s->timeout_ms, NULL);
    int64_t bypass = 200;
    if (conf)
        em_conf_get_int(conf, "ember.shuffle.sort.bypassMergeThreshold", 200,
                        0, 16777216, &bypass, NULL);
    s->conf = (ember_shuffle_conf){
        .size = sizeof s->conf,
        .dir = s->dir,
        .memory_bytes = s->memory,
        .file_buffer =
            (uint64_t)conf_size(conf, "ember.shuffle.file.buffer", 32768),
        .bypass_threshold = (uint32_t)bypass,
        .chunk_bytes = 64 * 1024,
        .codec = s->codec,
        .codec_state = s->codec_state,
        .codec_name = s->codec_name,
    };
    ember_error e = {0};
    st = s->vt->open(em_host_api(), &s->conf, &s->state, &e);
    if (st != EMBER_OK) {
        st = ember_errorf(err, st, "shuffle manager %s: %s", comp,
                          e.msg[0] ? e.msg : ember_status_name(st));
        goto fail;
    }
    s->open = 1;
    if (serve_url) {
        char url[PATH_MAX + 32];
        if (strcmp(serve_url, "ipc") == 0)
            snprintf(url, sizeof url, "ipc://%s/blocks.sock", s->dir);
        else
            snprintf(url, sizeof url, "%s", serve_url);
        st = em_block_server_start(&s->server, url, s->vt, s->state,
                                   s->endpoint, sizeof s->endpoint, err);
        if (st != EMBER_OK)
            goto fail;
    }
    *out = s;
    return EMBER_OK;
fail:
    em_shuffle_svc_close(s);
    return st;
}

void em_shuffle_svc_close(em_shuffle_svc *s)
{
    if (!s)
        return;
    em_block_server_stop(s->server);
    if (s->open)
        s->vt->close(s->state);
    if (s->codec_open && s->codec->close)
        s->codec->close(s->codec_state);
    remove_tree(s->dir);
    free(s);
}

const char *em_shuffle_svc_dir(const em_shuffle_svc *s)
{
    return s->dir;
}

const char *em_shuffle_svc_endpoint(const em_shuffle_svc *s)
{
    return s->endpoint;
}

const ember_shuffle_vtable *em_shuffle_svc_vt(const em_shuffle_svc *s)
{
    return s->vt;
}

void *em_shuffle_svc_state(const em_shuffle_svc *s)
{
    return s->state;
}

uint64_t em_shuffle_svc_memory(const em_shuffle_svc *s) { return s->memory; }

uint64_t em_shuffle_svc_max_in_flight(const em_shuffle_svc *s)
{
    return s->in_flight;
}

int64_t em_shuffle_svc_timeout_ms(const em_shuffle_svc *s)
{
    return s->timeout_ms;
}

void em_shuffle_svc_serve_blocks(em_shuffle_svc *s, em_block_mgr *m)
{
    if (s)
        em_block_server_set_blocks(s->server, m);
}

void em_shuffle_svc_remove(em_shuffle_svc *s, uint64_t shuffle_id)
{
    ember_error e = {0};
    ember_status st = s->vt->remove_shuffle(s->state, shuffle_id, &e);
    if (st != EMBER_OK)
        em_log(EMBER_LOG_WARN, "shuffle", "removing shuffle %" PRIu64
               ": %s", shuffle_id, e.msg[0] ? e.msg : ember_status_name(st));
}

/* ---- a stage's shuffles ---------------------------------------------- */

static int get_u64(const json_t *o, const char *k, uint64_t *v)
{
    const json_t *x = json_object_get(o, k);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return 0;
    *v = (uint64_t)json_integer_value(x);
    return 1;
}

static int get_u32(const json_t *o, const char *k, uint32_t *v)
{
    uint64_t w;
    if (!get_u64(o, k, &w) || w > UINT32_MAX)
        return 0;
    *v = (uint32_t)w;
    return 1;
}

ember_status em_stage_io_parse(em_stage_io *io, const json_t *doc,
                               ember_error *err)
{
    memset(io, 0, sizeof *io);
    const json_t *sh = json_object_get(doc, "shuffle");
    if (sh) {
        if (!get_u64(sh, "id", &io->out_shuffle) ||
            !get_u32(sh, "partitions", &io->out_partitions) ||
            !get_u64(sh, "reader", &io->reader_dataset) ||
            !get_u32(sh, "edge", &io->reader_edge) ||
            io->out_partitions == 0)
            return ember_errorf(err, EMBER_EINVAL, "STAGE: malformed "
                                "\"shuffle\"");
        io->writes = 1;
    }
    const json_t *in = json_object_get(doc, "inputs");
    size_t n = json_array_size(in);
    if (n) {
        io->inputs = calloc(n, sizeof *io->inputs);
        if (!io->inputs)
            return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(in, i);
        em_stage_input *d = &io->inputs[io->ninputs++];
        const json_t *maps = json_object_get(x, "maps");
        if (!get_u64(x, "dataset", &d->dataset) ||
            !get_u32(x, "edge", &d->edge) ||
            !get_u64(x, "shuffle", &d->shuffle_id) || !json_is_array(maps))
            goto bad;
        d->num_maps = (uint32_t)json_array_size(maps);
        d->loc = calloc(d->num_maps ? d->num_maps : 1, sizeof *d->loc);
        if (!d->loc)
            goto nomem;
        for (uint32_t m = 0; m < d->num_maps; m++) {
            const json_t *v = json_array_get(maps, m);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > UINT32_MAX)
                goto bad;
            d->loc[m] = (uint32_t)json_integer_value(v);
        }
    }
    const json_t *ex = json_object_get(doc, "executors");
    n = json_array_size(ex);
    if (n) {
        io->execs = calloc(n, sizeof *io->execs);
        if (!io->execs)
            goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(ex, i);
        em_stage_exec *d = &io->execs[io->nexecs];
        const char *id = json_string_value(json_object_get(x, "id"));
        const char *ep = json_string_value(json_object_get(x, "endpoint"));
        if (!get_u32(x, "no", &d->no) || !id || !ep)
            goto bad;
        d->id = strdup(id);
        d->endpoint = strdup(ep);
        io->nexecs++;
        if (!d->id || !d->endpoint)
            goto nomem;
    }
    return EMBER_OK;
bad:
    em_stage_io_free(io);
    return ember_errorf(err, EMBER_EINVAL, "STAGE: malformed \"inputs\" or "
                        "\"executors\"");
nomem:
    em_stage_io_free(io);
    return ember_errorf(err, EMBER_ENOMEM, "out of memory");
}

void em_stage_io_free(em_stage_io *io)
{
    for (uint32_t i = 0; i < io->ninputs; i++)
        free(io->inputs[i].loc);
    free(io->inputs);
    for (uint32_t i = 0; i < io->nexecs; i++) {
        free(io->execs[i].id);
        free(io->execs[i].endpoint);
    }
    free(io->execs);
    memset(io, 0, sizeof *io);
}

const em_stage_input *em_stage_io_input(const em_stage_io *io,
                                        uint64_t dataset, uint32_t edge)
{
    for (uint32_t i = 0; i < io->ninputs; i++)
        if (io->inputs[i].dataset == dataset && io->inputs[i].edge == edge)
            return &io->inputs[i];
    return NULL;
}

const em_stage_exec *em_stage_io_exec(const em_stage_io *io, uint32_t no)
{
    for (uint32_t i = 0; i < io->nexecs; i++)
        if (io->execs[i].no == no)
            return &io->execs[i];
    return NULL;
}
