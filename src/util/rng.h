/* rng.h: a small, seedable, serialisable random generator (xoshiro256**).
 *
 * The state is four 64-bit words, saved verbatim in training checkpoints so a
 * resumed run draws the same numbers. Streams for independent purposes are
 * derived from (seed, stream id) with splitmix64, so results never depend on
 * the number of threads or ranks.
 */
#ifndef TN_UTIL_RNG_H
#define TN_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct TnRng {
    uint64_t s[4];
} TnRng;

void tn_rng_seed(TnRng *rng, uint64_t seed, uint64_t stream);
uint64_t tn_rng_next(TnRng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double tn_rng_uniform(TnRng *rng);
/* Uniform integer in [0, n), without modulo bias. */
uint64_t tn_rng_below(TnRng *rng, uint64_t n);
/* Standard normal (Box-Muller; one draw per call, no cached pair). */
double tn_rng_normal(TnRng *rng);
/* Advances the stream past count tn_rng_normal draws (cheaply). */
void tn_rng_skip_normals(TnRng *rng, size_t count);

#endif
