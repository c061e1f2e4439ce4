/* runtime/test_memtier.c — see test_memtier.h. */
#include "runtime/test_memtier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mblock **mem_find(memtier *t, const char *id)
{
    mblock **pp = &t->head;
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

static ember_status mem_put(void *st, const char *id, const ember_batch *b,
                            ember_error *err)
{
    memtier *t = st;
    if (t->enospc)
        return ember_errorf(err, EMBER_ENOSPC, "memory tier full");
    if (*mem_find(t, id))
        return ember_errorf(err, EMBER_EEXIST, "%s exists", id);
    mblock *x = calloc(1, sizeof *x);
    if (x == NULL)
        return EMBER_ENOMEM;
    x->data = malloc(b->len ? b->len : 1);
    if (x->data == NULL) {
        free(x);
        return EMBER_ENOMEM;
    }
    if (b->len)
        memcpy(x->data, b->data, b->len);
    snprintf(x->id, sizeof x->id, "%s", id);
    x->len = b->len;
    x->count = b->count;
    x->next = t->head;
    t->head = x;
    t->blocks++;
    t->bytes += b->len;
    return EMBER_OK;
}

static ember_status mem_get(void *st, const char *id, ember_buf *out,
                            uint64_t *count, ember_error *err)
{
    mblock *x = *mem_find(st, id);
    if (x == NULL)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s absent", id);
    ember_status s = ember_buf_append(out, x->data, x->len);
    if (s == EMBER_OK)
        *count = x->count;
    return s;
}

static ember_status mem_remove(void *st, const char *id, ember_error *err)
{
    memtier *t = st;
    mblock **pp = mem_find(t, id);
    mblock *x = *pp;
    if (x == NULL)
        return ember_errorf(err, EMBER_ENOTFOUND, "%s absent", id);
    *pp = x->next;
    t->blocks--;
    t->bytes -= x->len;
    free(x->data);
    free(x);
    return EMBER_OK;
}

void mem_free_all(memtier *t)
{
    while (t->head)
        (void)mem_remove(t, t->head->id, NULL);
}

const ember_storage_vtable mem_vt = {
    EMBER_STORAGE_MEMORY, 1, NULL, NULL, mem_put, mem_get, mem_remove};
