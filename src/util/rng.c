#include "util/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tn_rng_seed(TnRng *rng, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tn_rng_next(TnRng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tn_rng_uniform(TnRng *rng) { return (double)(tn_rng_next(rng) >> 11) * 0x1.0p-53; }

uint64_t tn_rng_below(TnRng *rng, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = tn_rng_next(rng);
    while (x >= limit);
    return x % n;
}

double tn_rng_normal(TnRng *rng) {
    double u1 = 1.0 - tn_rng_uniform(rng); /* (0, 1]: log is finite */
    double u2 = tn_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void tn_rng_skip_normals(TnRng *rng, size_t count) {
    for (size_t i = 0; i < count; i++) { /* tn_rng_normal's two uniforms, without the arithmetic */
        tn_rng_next(rng);
        tn_rng_next(rng);
    }
}
