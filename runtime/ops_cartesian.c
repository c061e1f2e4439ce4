/*
 * runtime/ops_cartesian.c — cartesian(a, b): partition i*nb + j pairs
 * every record of a's partition i with every record of b's partition j,
 * as (x, y) with each record as a value (Spark's CartesianRDD). b's
 * partition is read once into memory; a's streams.
 */
#include "runtime/ops_internal.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/recval.h"

typedef struct cart {
    ember_buf right;   /* b's partition, batch framed */
    uint64_t nright;
    ember_batch left;  /* the current batch of a */
    ember_batch_cursor lc;
    const uint8_t *x;  /* the current record of a */
    size_t xl;
    ember_batch_cursor rc;
    int loaded, have_x;
} cart;

static void cart_close(em_opnode *o)
{
    cart *c = o->extra;
    if (c)
        ember_buf_release(&c->right);
    free(c);
    o->extra = NULL;
}

static ember_status cart_next(em_opnode *o, ember_batch *b, ember_error *err)
{
    cart *c = o->extra;
    ember_status s;
    if (!c->loaded) {
        ember_batch rb;
        while ((s = o->in[1]->next(o->in[1], &rb, err)) == EMBER_OK) {
            if (ember_buf_append(&c->right, rb.data, rb.len) != EMBER_OK)
                return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
            c->nright += rb.count;
        }
        if (s != EMBER_END)
            return s;
        c->loaded = 1;
    }
    if (c->nright == 0)
        return EMBER_END;
    o->buf.len = 0;
    uint64_t n = 0;
    ember_batch all = {c->right.data, c->right.len, c->nright};
    while (o->buf.len < o->env->batch_bytes) {
        if (!c->have_x) {
            if (ember_batch_next(&c->lc, &c->x, &c->xl) != EMBER_OK) {
                s = o->in[0]->next(o->in[0], &c->left, err);
                if (s == EMBER_END && n > 0)
                    break;
                if (s != EMBER_OK)
                    return s;
                c->lc = ember_batch_cursor_of(&c->left);
                continue;
            }
            c->have_x = 1;
            c->rc = ember_batch_cursor_of(&all);
        }
        const uint8_t *y;
        size_t yl;
        if (ember_batch_next(&c->rc, &y, &yl) != EMBER_OK) {
            c->have_x = 0;
            continue;
        }
        size_t mark;
        s = ember_batch_frame_begin(&o->buf, &mark);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, c->x, c->xl);
        if (s == EMBER_OK)
            s = em_rec_put_as_value(&o->buf, y, yl);
        if (s == EMBER_OK)
            s = ember_batch_frame_end(&o->buf, mark);
        if (s != EMBER_OK)
            return em_op_fail(o, err, s, "out of memory");
        n++;
    }
    *b = (ember_batch){o->buf.data, o->buf.len, n};
    return EMBER_OK;
}

ember_status em_op_init_cartesian(em_opnode *o, ember_error *err)
{
    const em_node *n = o->node;
    uint32_t nb = o->env->lineage->nodes[n->deps[1].parent].partitions;
    if (nb == 0)
        return em_op_fail(o, err, EMBER_EINVAL, "cartesian of an empty "
                          "dataset has no partition %u", o->partition);
    cart *c = calloc(1, sizeof *c);
    if (!c)
        return em_op_fail(o, err, EMBER_ENOMEM, "out of memory");
    c->right = ember_buf_heap();
    o->extra = c;
    o->close = cart_close;
    o->next = cart_next;
    ember_status s = em_op_build(&o->in[0], o->env, n->deps[0].parent,
                                 o->partition / nb, o->depth + 1, err);
    if (s != EMBER_OK)
        return s;
    o->nin = 1;
    s = em_op_build(&o->in[1], o->env, n->deps[1].parent, o->partition % nb,
                    o->depth + 1, err);
    if (s == EMBER_OK)
        o->nin = 2;
    return s;
}
