/*
 * runtime/sampling.h — the random numbers of sample and sample_by_key: a
 * splitmix64 generator seeded per partition, uniform doubles in [0, 1),
 * and Poisson-distributed copy counts for sampling with replacement.
 * Deterministic for a seed, so a rerun samples the same records.
 */
#ifndef EM_RUNTIME_SAMPLING_H
#define EM_RUNTIME_SAMPLING_H

#include <math.h>
#include <stdint.h>

/* The generator of (seed, partition), ready for its first number. */
static inline uint64_t em_rng_seed(uint64_t seed, uint32_t partition)
{
    return seed ^ ((uint64_t)partition * 0xD1B54A32D192ED03ull);
}

/* splitmix64. */
static inline uint64_t em_rng_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static inline double em_rng_unit(uint64_t *st)
{
    return (double)(em_rng_next(st) >> 11) * (1.0 / 9007199254740992.0);
}

/* Copies of one record with replacement: Poisson(mean), by Knuth's
 * product method on pieces of the mean of at most 30 (a sum of Poissons is
 * Poisson; exp(-mean) would underflow for large means). */
static inline uint32_t em_rng_poisson(uint64_t *st, double mean)
{
    uint64_t total = 0;
    while (mean > 0 && total < UINT32_MAX) {
        double part = mean > 30 ? 30 : mean;
        mean -= part;
        double l = exp(-part), p = 1.0;
        uint32_t k = 0;
        do {
            k++;
            p *= em_rng_unit(st);
        } while (p > l);
        total += k - 1;
    }
    return total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}

#endif /* EM_RUNTIME_SAMPLING_H */
