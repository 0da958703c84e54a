/* norm.h: SRMSNorm (paper Eq. 8 with the released eps):
 * out = x / sqrt(mean(x^2) + eps) over the last dimension, no weights.
 * rstd (may be NULL) receives 1 / sqrt(mean(x^2) + eps) per row, which the
 * backward pass reuses. */
#ifndef TN_KERNELS_CPU_NORM_H
#define TN_KERNELS_CPU_NORM_H

#include "model/config.h"

void srmsnorm_forward_cpu(float *out, float *rstd, const float *inp, int n_rows, int dim);

/* Backward from the forward's input x and rstd r: with y = x r,
 *   dx = r (dy - y mean(dy ⊙ y)),
 * ACCUMULATED into dinp (the residual stream sums its branches). */
void srmsnorm_backward_cpu(float *dinp, const float *dout, const float *inp, const float *rstd, int n_rows, int dim);

/* The norm of the `norm` switch (SPEC section 3), same eps everywhere:
 *   TN_NORM_SRMS:  y = x r,                r = 1 / sqrt(mean(x^2) + eps)
 *   TN_NORM_RMS:   y = g ⊙ x r             (gain g [dim])
 *   TN_NORM_LAYER: y = g ⊙ (x - mu) r + b, r = 1 / sqrt(var(x) + eps)
 * gain and bias are NULL where the kind has none. rstd as above. */
void norm_forward_cpu(TnNormKind kind, float *out, float *rstd, const float *inp, const float *gain, const float *bias,
                      int n_rows, int dim);

/* Backward of norm_forward_cpu: ACCUMULATES dinp, and dgain, dbias (where
 * the kind has them). With xhat = (x - mu) r and dxhat = g ⊙ dy:
 *   dx = r (dxhat - mean(dxhat) - xhat mean(dxhat ⊙ xhat))  (no mean(dxhat)
 *   term without centering), dg = sum_rows dy ⊙ xhat, db = sum_rows dy.
 * The gain and bias sums run serially over rows, so they do not depend on
 * the number of threads. */
void norm_backward_cpu(TnNormKind kind, float *dinp, float *dgain, float *dbias, const float *dout, const float *inp,
                       const float *rstd, const float *gain, int n_rows, int dim);

#endif
