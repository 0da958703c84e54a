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

/* An RMS norm (TN_NORM_SRMS, or TN_NORM_RMS with its gain) of rows whose
 * full_dim columns are split over several ranks, each holding `dim` of
 * them (tensor parallelism splits the norm after the attention by heads,
 * dist/tensor_parallel.h). The caller adds the per-row partial sums over
 * the ranks between the two stages of each direction; with dim = full_dim
 * and no sum in between they compute norm_forward_cpu / _backward_cpu.
 * Forward:
 *   rms_norm_part_sums_cpu writes sum_c x_c^2 of each row's part into sums;
 *   rms_norm_part_forward_cpu takes the full rows' sums, writes
 *   rstd = 1 / sqrt(sum / full_dim + eps) (may alias sums) and out = g ⊙ x rstd.
 * Backward:
 *   rms_norm_part_dots_cpu writes sum_c g_c dy_c x_c of each row's part;
 *   rms_norm_part_backward_cpu takes the full rows' dots and ACCUMULATES
 *   dx = r (g ⊙ dy) - r^3 x dot / full_dim and (gain only) dgain = sum_rows
 *   dy ⊙ x r, serially over rows like norm_backward_cpu.
 * gain and dgain are NULL for TN_NORM_SRMS (the part of the gain: dim). */
void rms_norm_part_sums_cpu(float *sums, const float *inp, int n_rows, int dim);
void rms_norm_part_forward_cpu(float *out, float *rstd, const float *sums, const float *inp, const float *gain,
                               int n_rows, int dim, int full_dim);
void rms_norm_part_dots_cpu(float *dots, const float *dout, const float *inp, const float *gain, int n_rows, int dim);
void rms_norm_part_backward_cpu(float *dinp, float *dgain, const float *dots, const float *dout, const float *inp,
                                const float *rstd, const float *gain, int n_rows, int dim, int full_dim);

#endif
