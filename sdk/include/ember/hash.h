/*
 * ember/hash.h — ember's own 64-bit hash of a byte string.
 *
 * ember_hash64 decides where a key lands in a hash-partitioned dataset, so
 * its value for a given input is part of the data format: it is the same on
 * every platform and in every release, forever. It is not a cryptographic
 * hash and not keyed: do not use it where an adversary chooses the input
 * and flooding one bucket matters.
 *
 * The algorithm (all arithmetic on uint64_t, modulo 2^64):
 *
 *   K = 0x9E3779B97F4A7C15
 *   mix(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *            z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *            return z ^ (z >> 31)            (the splitmix64 finalizer)
 *
 *   ember_hash64(p, n):
 *     h = 0x243F6A8885A308D3 ^ (n * K)       (the length folded in)
 *     for i = 0, 8, 16, ... while i < n:
 *       w = the 8 bytes p[i..i+8) read as a little-endian integer, the
 *           bytes at or past n (a last, partial word) taken as 0
 *       h = mix(h ^ w) + K
 *     return mix(h)                           (final avalanche)
 *
 * Test vectors (also in docs/record-format.md, checked by std_test):
 *   ""                          -> 0xe9e0033e3badaf36
 *   "a"                         -> 0x5e056afa4c83138d
 *   the 16 bytes 00 01 .. 0f    -> 0x63497d21f69f4732
 *
 * Header-only, libc-free, no allocation; safe from any thread. C11, safe
 * to include from C++.
 */
#ifndef EMBER_HASH_H
#define EMBER_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER__HASH_K UINT64_C(0x9E3779B97F4A7C15)

/* Internal: the splitmix64 finalizer, a bijection on 64-bit words. */
static inline uint64_t ember__hash_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/*
 * The 64-bit hash of the n bytes at p (p may be NULL when n is 0), exactly
 * as the algorithm above describes. Stable across platforms and releases.
 */
static inline uint64_t ember_hash64(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    uint64_t h = UINT64_C(0x243F6A8885A308D3) ^ ((uint64_t)n * EMBER__HASH_K);
    size_t i = 0;
    while (i < n) {
        uint64_t w = 0;
        size_t k, take = n - i < 8 ? n - i : 8;
        for (k = 0; k < take; k++)
            w |= (uint64_t)b[i + k] << (8 * k);
        h = ember__hash_mix(h ^ w) + EMBER__HASH_K;
        i += take;
    }
    return ember__hash_mix(h);
}

#ifdef __cplusplus
}
#endif
#endif /* EMBER_HASH_H */
