/* runtime/keysort.c — see keysort.h. */
#include "runtime/keysort.h"

#include <stdlib.h>
#include <string.h>

void em_keyref_prefix(em_keyref *r)
{
    uint64_t p = 0;
    size_t n = r->klen < 8 ? r->klen : 8;
    for (size_t i = 0; i < 8; i++)
        p = (p << 8) | (i < n ? r->key[i] : 0);
    r->prefix = p;
}

int em_key_compare(const em_keyref *a, const em_keyref *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static int full_cmp(const void *x, const void *y)
{
    const em_keyref *a = x, *b = y;
    int c = em_key_compare(a, b);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void em_keysort(em_keyref *refs, em_keyref *tmp, size_t n)
{
    if (n < 2)
        return;
    /* LSD radix on the prefix, 16 bits a pass; passes whose digit is the
     * same for every ref are skipped */
    static const int shifts[4] = {0, 16, 32, 48};
    em_keyref *src = refs, *dst = tmp;
    size_t *count = malloc(65536 * sizeof *count);
    if (!count) {
        qsort(refs, n, sizeof *refs, full_cmp);
        return;
    }
    for (int pass = 0; pass < 4; pass++) {
        int sh = shifts[pass];
        memset(count, 0, 65536 * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[(src[i].prefix >> sh) & 0xffff]++;
        if (count[(src[0].prefix >> sh) & 0xffff] == n)
            continue;
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].prefix >> sh) & 0xffff]++] = src[i];
        em_keyref *t = src;
        src = dst;
        dst = t;
    }
    free(count);
    if (src != refs)
        memcpy(refs, src, n * sizeof *refs);
    /* equal prefixes: order by the whole key, then the original order */
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && refs[j].prefix == refs[i].prefix)
            j++;
        if (j - i > 1)
            qsort(refs + i, j - i, sizeof *refs, full_cmp);
        i = j;
    }
}
