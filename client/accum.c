/*
 * client/accum.c — accumulators on the driver (ember/ember.h,
 * "accumulators"): the session's list, the "accumulators" array every
 * plan carries, and the values the kernel sends at each job's end.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ember/function.h"
#include "ember/kernel/log.h"
#include "ember/kernel/plugin.h"
#include "ember/record.h"
#include "runtime/accum_wire.h"

struct ember_accumulator {
    ember_session *s;
    uint64_t id;
    em_accum_kind kind;
    char *kind_text; /* "int64", "double" or "plugin.fn" */
    char *name;      /* NULL: unnamed */
    /* the driver's view, under s->mu */
    int64_t i64;
    double f64;
    uint8_t *rec;
    size_t rec_len;
    ember_accumulator *next;
};

/* Longest name, as the plan format allows. */
#define NAME_MAX_LEN 1024

static ember_status check_kind(ember_session *s, const char *kind,
                               ember_error *err)
{
    if (strcmp(kind, "int64") == 0 || strcmp(kind, "double") == 0)
        return EMBER_OK;
    const em_component *c =
        strchr(kind, '.') ? em_registry_find(s->registry, EMBER_KIND_FUNCTION,
                                             kind)
                          : NULL;
    if (!c)
        return ember_errorf(err, EMBER_EINVAL,
                            "accumulator kind '%.200s' is not int64, double "
                            "or a loaded function (PLUGIN.FUNCTION)", kind);
    const ember_function_vtable *vt = c->vtable;
    if (vt->shape != EMBER_FN_REDUCE)
        return ember_errorf(err, EMBER_EINVAL,
                            "accumulator kind '%.200s' is not a REDUCE "
                            "function (a merge takes two values)", kind);
    return EMBER_OK;
}

ember_status em_client_accum_declare(ember_session *s, uint64_t id,
                                     const char *name, const char *kind,
                                     ember_accumulator **out,
                                     ember_error *err)
{
    if (out)
        *out = NULL;
    if (!s || !kind || !out)
        return ember_errorf(err, EMBER_EINVAL,
                            "accumulator: session, kind and out are "
                            "required");
    if (name && (!*name || strlen(name) > NAME_MAX_LEN))
        return ember_errorf(err, EMBER_EINVAL, "accumulator: a name must have "
                            "1 to %d bytes", NAME_MAX_LEN);
    ember_status st = check_kind(s, kind, err);
    if (st != EMBER_OK)
        return st;
    ember_accumulator *a = calloc(1, sizeof *a);
    if (!a || !(a->kind_text = strdup(kind)) ||
        (name && !(a->name = strdup(name)))) {
        if (a)
            free(a->kind_text);
        free(a);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    a->s = s;
    a->kind = em_accum_kind_of(kind);
    pthread_mutex_lock(&s->mu);
    if (id == 0)
        id = s->last_accum + 1;
    for (ember_accumulator *x = s->accums; x; x = x->next)
        if (x->id == id)
            st = ember_errorf(err, EMBER_EEXIST, "accumulator %" PRIu64
                              " already exists in this session", id);
    if (st == EMBER_OK) {
        a->id = id;
        if (id > s->last_accum)
            s->last_accum = id;
        a->next = s->accums;
        s->accums = a;
    }
    pthread_mutex_unlock(&s->mu);
    if (st != EMBER_OK) {
        free(a->name);
        free(a->kind_text);
        free(a);
        return st;
    }
    *out = a;
    return EMBER_OK;
}

ember_status ember_accumulator_new(ember_session *s, const char *name,
                                   const char *kind, ember_accumulator **out,
                                   ember_error *err)
{
    return em_client_accum_declare(s, 0, name, kind, out, err);
}

uint64_t ember_accumulator_id(const ember_accumulator *a)
{
    return a ? a->id : 0;
}

static ember_status need_kind(const ember_accumulator *a, em_accum_kind k,
                              const char *getter, ember_error *err)
{
    if (!a)
        return ember_errorf(err, EMBER_EINVAL, "%s: accumulator is NULL",
                            getter);
    if (a->kind != k)
        return ember_errorf(err, EMBER_EINVAL, "%s: accumulator %" PRIu64
                            " is of kind %s", getter, a->id, a->kind_text);
    return EMBER_OK;
}

ember_status ember_accumulator_int64(const ember_accumulator *a, int64_t *v,
                                     ember_error *err)
{
    ember_status st = need_kind(a, EM_ACCUM_INT64, "ember_accumulator_int64",
                                err);
    if (st != EMBER_OK)
        return st;
    if (!v)
        return ember_errorf(err, EMBER_EINVAL,
                            "ember_accumulator_int64: v is NULL");
    pthread_mutex_lock(&a->s->mu);
    *v = a->i64;
    pthread_mutex_unlock(&a->s->mu);
    return EMBER_OK;
}

ember_status ember_accumulator_double(const ember_accumulator *a, double *v,
                                      ember_error *err)
{
    ember_status st = need_kind(a, EM_ACCUM_DOUBLE,
                                "ember_accumulator_double", err);
    if (st != EMBER_OK)
        return st;
    if (!v)
        return ember_errorf(err, EMBER_EINVAL,
                            "ember_accumulator_double: v is NULL");
    pthread_mutex_lock(&a->s->mu);
    *v = a->f64;
    pthread_mutex_unlock(&a->s->mu);
    return EMBER_OK;
}

ember_status ember_accumulator_value(const ember_accumulator *a,
                                     uint8_t **rec, size_t *len,
                                     ember_error *err)
{
    if (!a || !rec || !len)
        return ember_errorf(err, EMBER_EINVAL,
                            "ember_accumulator_value: accumulator, rec and "
                            "len are required");
    *rec = NULL;
    *len = 0;
    ember_buf b = ember_buf_heap();
    ember_status st = EMBER_OK;
    pthread_mutex_lock(&a->s->mu);
    if (a->kind == EM_ACCUM_INT64)
        st = ember_rec_put_int(&b, a->i64);
    else if (a->kind == EM_ACCUM_DOUBLE)
        st = ember_rec_put_double(&b, a->f64);
    else if (a->rec_len)
        st = ember_buf_append(&b, a->rec, a->rec_len);
    pthread_mutex_unlock(&a->s->mu);
    if (st != EMBER_OK) {
        ember_buf_release(&b);
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    }
    /* a malloc'd block the caller frees, even for length 0 */
    *rec = b.data ? b.data : malloc(1);
    *len = b.len;
    if (!*rec)
        return ember_errorf(err, EMBER_ENOMEM, "out of memory");
    return EMBER_OK;
}

json_t *em_client_accums_json(ember_session *s)
{
    json_t *arr = NULL;
    for (ember_accumulator *a = s->accums; a; a = a->next) {
        if (!arr && !(arr = json_array()))
            break;
        json_t *e = json_pack("{s:I,s:s}", "id", (json_int_t)a->id, "kind",
                              a->kind_text);
        if (e && a->name)
            json_object_set_new(e, "name", json_string(a->name));
        if (!e || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
    }
    return arr;
}

void em_client_accums_update(ember_session *s, const uint8_t *values,
                             size_t len)
{
    em_accum_value *v = NULL;
    uint32_t n = 0;
    ember_error err = {0};
    if (em_accum_wire_decode(values, len, &v, &n, &err) != EMBER_OK) {
        em_log(EMBER_LOG_WARN, "client", "accumulator values ignored: %s",
               err.msg);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < n; i++) {
        ember_accumulator *a = s->accums;
        while (a && a->id != v[i].id)
            a = a->next;
        if (!a || a->kind != v[i].kind)
            continue;
        a->i64 = v[i].i64;
        a->f64 = v[i].f64;
        if (a->kind != EM_ACCUM_USER)
            continue;
        uint8_t *copy = v[i].rec_len ? malloc(v[i].rec_len) : NULL;
        if (v[i].rec_len && !copy)
            continue; /* keeps the older value */
        if (copy)
            memcpy(copy, v[i].rec, v[i].rec_len);
        free(a->rec);
        a->rec = copy;
        a->rec_len = v[i].rec_len;
    }
    pthread_mutex_unlock(&s->mu);
    free(v);
}

void em_client_accums_free(ember_session *s)
{
    while (s->accums) {
        ember_accumulator *a = s->accums;
        s->accums = a->next;
        free(a->kind_text);
        free(a->name);
        free(a->rec);
        free(a);
    }
}
