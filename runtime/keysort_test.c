/* Unit tests of em_keysort: against a comparison sort (key bytes, then the
 * original order), and of em_key_equal against em_key_compare, for small
 * and large inputs whose keys are spread,
 * share long prefixes, repeat, are shorter than the 8-byte prefix, or use
 * few byte values (buckets of every size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/keysort.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int want_cmp(const void *x, const void *y)
{
    const em_keyref *a = x, *b = y;
    int c = em_key_compare(a, b);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

enum shape { SPREAD, SHARED_PREFIX, FEW_KEYS, SHORT_KEYS, NARROW };

/* n keys of the given shape in keys (12 bytes each); refs over them. */
static void make(em_keyref *refs, uint8_t *keys, size_t n, enum shape sh)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t *k = keys + 12 * i;
        for (int j = 0; j < 12; j++)
            k[j] = (uint8_t)next_rand();
        uint32_t len = 12;
        if (sh == SHARED_PREFIX) /* the first 9 bytes equal: ties */
            memset(k, 0x41, 9);
        else if (sh == FEW_KEYS) /* 37 distinct keys */
            memset(k, (int)(next_rand() % 37), 12);
        else if (sh == SHORT_KEYS) /* 0 to 9 bytes, some 0x00 */
            len = next_rand() % 10;
        else if (sh == NARROW) /* bytes 'a' to 'd': buckets of every size */
            for (int j = 0; j < 12; j++)
                k[j] = (uint8_t)('a' + next_rand() % 4);
        refs[i] = (em_keyref){0, k, k, len, len, 0, (uint32_t)i};
        em_keyref_prefix(&refs[i]);
    }
}

static void check(size_t n, enum shape sh)
{
    em_keyref *refs = malloc((n ? n : 1) * sizeof *refs);
    em_keyref *tmp = malloc((n ? n : 1) * sizeof *tmp);
    em_keyref *want = malloc((n ? n : 1) * sizeof *want);
    uint8_t *keys = malloc((n ? n : 1) * 12);
    assert_non_null(refs);
    assert_non_null(tmp);
    assert_non_null(want);
    assert_non_null(keys);
    make(refs, keys, n, sh);
    memcpy(want, refs, n * sizeof *refs);
    qsort(want, n, sizeof *want, want_cmp);
    em_keysort(refs, tmp, n);
    for (size_t i = 0; i < n; i++)
        if (refs[i].seq != want[i].seq)
            fail_msg("%zu refs, shape %d: position %zu holds ref %u, "
                     "expected %u", n, (int)sh, i, refs[i].seq, want[i].seq);
    /* em_key_equal agrees with em_key_compare on neighbours (equal ones
     * and the closest unequal ones) */
    for (size_t i = 1; i < n; i++)
        if (em_key_equal(&refs[i - 1], &refs[i]) !=
            (em_key_compare(&refs[i - 1], &refs[i]) == 0))
            fail_msg("%zu refs, shape %d: em_key_equal disagrees at %zu", n,
                     (int)sh, i);
    free(refs);
    free(tmp);
    free(want);
    free(keys);
}

static void test_against_comparison_sort(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 5, 25, 100, 1000, 32767, 32768,
                                   100000, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int sh = SPREAD; sh <= NARROW; sh++)
            check(sizes[i], (enum shape)sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_comparison_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
