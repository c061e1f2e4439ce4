/* Unit tests of the byte-keyed hash map: a word's key prepared in place
 * (em_bytemap_prep_word) is the key em_bytemap_prep makes of the written
 * encoding, whatever bytes surround the word; upserts find what they
 * inserted and keys read back are the keys put in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ember/record.h"
#include "runtime/bytemap.h"

static void test_prep_word_matches_prep(void **state)
{
    (void)state;
    /* the word sits between arbitrary neighbours: a separator, the tag,
     * a terminator or any other byte must not leak into the key */
    const uint8_t around[] = {' ', 0x00, 0xFF, EMBER_REC_TAG_STRING, '\n'};
    for (size_t wl = 1; wl + 2 <= EM_BYTEMAP_INLINE; wl++) {
        for (size_t a = 0; a < sizeof around; a++) {
            uint8_t mem[64], enc[EM_BYTEMAP_INLINE];
            memset(mem, around[a], sizeof mem);
            for (size_t i = 0; i < wl; i++)
                mem[8 + i] = (uint8_t)('a' + (i * 7 + wl) % 26);
            enc[0] = EMBER_REC_TAG_STRING;
            memcpy(enc + 1, mem + 8, wl);
            enc[wl + 1] = 0x00;
            em_bmkey want, got;
            em_bytemap_prep(&want, enc, wl + 2);
            em_bytemap_prep_word(&got, EMBER_REC_TAG_STRING, mem + 8, wl);
            if (got.len != want.len || got.w0 != want.w0 ||
                got.w1 != want.w1 || got.hash != want.hash)
                fail_msg("word of %zu bytes between 0x%02x bytes: w0 %llx/"
                         "%llx w1 %llx/%llx", wl, around[a],
                         (unsigned long long)got.w0,
                         (unsigned long long)want.w0,
                         (unsigned long long)got.w1,
                         (unsigned long long)want.w1);
        }
    }
}

static void test_prepared_words_round_trip(void **state)
{
    (void)state;
    em_bytemap m;
    em_bytemap_init(&m);
    const char *line = "(a bb ccc dddd eeeee ffffff ggggggg hhhhhhhh "
                       "iiiiiiiiiiiiii a bb ffffff";
    const uint8_t *p = (const uint8_t *)line + 1;
    const uint8_t *end = (const uint8_t *)line + strlen(line);
    size_t words = 0;
    while (p < end) {
        const uint8_t *w = p;
        while (p < end && *p != ' ')
            p++;
        em_bmkey k;
        em_bytemap_prep_word(&k, EMBER_REC_TAG_STRING, w, (size_t)(p - w));
        int added;
        uint64_t *v = em_bytemap_upsert_key(&m, &k, &added);
        assert_non_null(v);
        (*v)++;
        words++;
        p++;
    }
    assert_int_equal(words, 12);
    assert_int_equal(m.count, 9);
    size_t seen = 0;
    for (size_t i = 0; i < m.cap; i++) {
        const em_bytemap_slot *s = &m.slots[i];
        if (!s->tag)
            continue;
        uint8_t buf[EM_BYTEMAP_INLINE];
        const uint8_t *key = em_bytemap_key(&m, s, buf);
        assert_int_equal(key[0], EMBER_REC_TAG_STRING);
        assert_int_equal(key[s->len - 1], 0x00);
        /* every letter of a word is the same; its count is 2 for the
         * words the line repeats */
        size_t wl = s->len - 2;
        for (size_t j = 1; j < wl; j++)
            assert_int_equal(key[1 + j], key[1]);
        int repeated = wl == 1 || wl == 2 || wl == 6;
        assert_int_equal(s->value, repeated ? 2 : 1);
        seen++;
    }
    assert_int_equal(seen, 9);
    em_bytemap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prep_word_matches_prep),
        cmocka_unit_test(test_prepared_words_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
