#include "data/lsh.h"

#include <math.h>

#include "data/minhash.h"

double tn_lsh_probability(double similarity, int bands, int rows) {
    return 1.0 - pow(1.0 - pow(similarity, rows), bands);
}

/* Midpoint rule; P is smooth, 200 points are plenty for choosing (b, r). */
static double integrate(double from, double to, int bands, int rows, int complement) {
    const int steps = 200;
    double h = (to - from) / steps, sum = 0;
    for (int i = 0; i < steps; i++) {
        double p = tn_lsh_probability(from + (i + 0.5) * h, bands, rows);
        sum += complement ? 1.0 - p : p;
    }
    return sum * h;
}

void tn_lsh_choose(double threshold, int num_perm, int *bands, int *rows) {
    double best = INFINITY;
    for (int b = 1; b <= num_perm; b++)
        for (int r = 1; b * r <= num_perm; r++) {
            double error = integrate(0, threshold, b, r, 0) + integrate(threshold, 1, b, r, 1);
            if (error < best) {
                best = error;
                *bands = b;
                *rows = r;
            }
        }
}

uint64_t tn_lsh_band_key(const uint32_t *signature, int band, int rows) {
    return tn_hash64(signature + (size_t)band * rows, (size_t)rows * sizeof *signature, (uint64_t)band);
}
