/*
 * host.c — a tiny program that embeds ember's loader (linked with
 * `pkg-config --libs ember`), loads a plugin file and runs its
 * logparse.parse function on one line, printing the resulting pair.
 */
#include <ember/kernel/host.h>
#include <ember/kernel/plugin.h>
#include <ember/sdk.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: host PLUGIN.so\n");
        return 2;
    }
    em_plugin *p;
    ember_error err;
    if (em_plugin_open(&p, argv[1], em_host_api(), &err) != EMBER_OK) {
        fprintf(stderr, "host: %s\n", err.msg);
        return 1;
    }
    const em_component *c = em_plugin_find(p, EMBER_KIND_FUNCTION, "parse");
    if (!c) {
        fprintf(stderr, "host: no function 'parse'\n");
        em_plugin_close(p);
        return 1;
    }
    const ember_function_vtable *f = c->vtable;

    uint8_t rec[128], in[160], out[160];
    ember_buf r = ember_buf_fixed(rec, sizeof rec);
    ember_rec_put_string(&r, "GET /index.html 200 1043", 24);
    ember_buf b = ember_buf_fixed(in, sizeof in);
    ember_batch_append(&b, r.data, r.len);
    ember_batch batch = {b.data, b.len, 1};
    ember_buf o = ember_buf_fixed(out, sizeof out);
    uint64_t n = 0;
    int rc = 1;
    if (f->map_batch(NULL, &batch, &o, &n, &err) != EMBER_OK) {
        fprintf(stderr, "host: %s\n", err.msg);
        goto done;
    }
    ember_batch result = {o.data, o.len, n};
    ember_batch_cursor cur = ember_batch_cursor_of(&result);
    const uint8_t *pair;
    size_t len;
    ember_value k, v;
    if (ember_batch_next(&cur, &pair, &len) != EMBER_OK ||
        ember_rec_get(pair, len, 0, &k) != EMBER_OK ||
        ember_rec_get(pair, len, 1, &v) != EMBER_OK) {
        fprintf(stderr, "host: bad output\n");
        goto done;
    }
    printf("%s: (\"%.*s\", %lld)\n", c->qualified, (int)k.u.str.len,
           (const char *)k.u.str.raw, (long long)v.u.i64);
    rc = 0;
done:
    em_plugin_close(p);
    return rc;
}
