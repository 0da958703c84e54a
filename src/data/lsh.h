/* lsh.h: locality-sensitive hashing of MinHash signatures into bands.
 *
 * A signature of b*r values is cut into b bands of r rows; two documents
 * become a candidate pair when all r rows of some band agree, which happens
 * with probability P(s) = 1 - (1 - s^r)^b for Jaccard similarity s: the
 * S-curve. tn_lsh_choose picks (b, r) for a threshold t the way datasketch
 * does: b*r <= num_perm minimising the false-positive area (the integral of
 * P over [0, t]) plus the false-negative area (of 1 - P over [t, 1]).
 */
#ifndef TN_DATA_LSH_H
#define TN_DATA_LSH_H

#include <stdint.h>

double tn_lsh_probability(double similarity, int bands, int rows);
void tn_lsh_choose(double threshold, int num_perm, int *bands, int *rows);
/* The key of band `band` of a signature (64-bit hash of its r values). */
uint64_t tn_lsh_band_key(const uint32_t *signature, int band, int rows);

#endif
