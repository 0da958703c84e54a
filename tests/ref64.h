/* ref64.h: an independent float64 reference of the whole forward pass.
 *
 * Written straight from SPEC section 1 with none of the library's kernels:
 * naive O(n^2) attention, LRPE in its relative form
 * q'_t . k'_s = sum_c q_c k_c cos(theta_c (t - s)), decay slopes computed
 * here again, tensors looked up by their HF names. The switches of SPEC
 * section 3 (norm kind, activations, gate, decay kind, APE) are written
 * here again from the SPEC too. Slow and simple on purpose: it is what the
 * float32 paths are checked against.
 */
#ifndef TN_TESTS_REF64_H
#define TN_TESTS_REF64_H

#include <stdint.h>

#include "model/config.h"
#include "model/params.h"

/* Fills logits (B*T*V) and returns the mean cross-entropy over targets that
 * are not -100 (or 0 when targets is NULL). */
double ref64_forward(const TnConfig *cfg, const TnParamLayout *layout, const float *params, const int32_t *tokens,
                     const int32_t *targets, int batch, int seq_len, double *logits);

/* The cross-entropy of one row of V logits against target (in [0, V)). */
double ref64_token_loss(const double *logits, int V, int32_t target);

#endif
