/* qk_features.h: the query/key features of the GLA token mixer.
 *
 * From the fused projection rows [q k v u] (row stride ld: 4D, or 3D
 * without the output gate) this computes, per head h, q = act(q) (Eq. 3's
 * activation: SiLU by default, see activation.h) and, on LRPE layers, the
 * LRPE-d expansion of SPEC section 1 at absolute position p:
 *   q' = [q * cos(theta_h p), q * sin(theta_h p)]   (width 2d)
 * so that q'_t . k'_s = sum_c q_c k_c cos(theta_c (t - s)): a relative
 * rotation. The same for k. Output rows are (H * dk) wide with dk = 2d on
 * LRPE layers (theta != NULL) and d otherwise.
 *
 * Row r of the batch is token t = r % seq_len of its sequence; its
 * position is pos_offset + t.
 */
#ifndef TN_KERNELS_CPU_QK_FEATURES_H
#define TN_KERNELS_CPU_QK_FEATURES_H

#include "model/config.h"

void qk_features_forward_cpu(float *qf, float *kf, const float *qkvu, int ld, TnActivation act, const float *theta,
                             int n_rows, int seq_len, int pos_offset, int n_heads, int head_dim);

/* Backward of qk_features_forward_cpu: from dqf, dkf (the forward's output
 * layout) writes dq and dk into the first 2D columns of the rows of dqkvu
 * (row stride ld; the v and u columns are not touched) and, on LRPE layers,
 * ACCUMULATES into dtheta (H, d):
 *   dtheta_c += sum_rows p (-dq'_c q_c sin + dq'_{d+c} q_c cos) + same for k.
 * dtheta is reduced per element over rows in double, in a fixed order, so
 * the result does not depend on the number of threads. */
void qk_features_backward_cpu(float *dqkvu, float *dtheta, const float *dqf, const float *dkf, const float *qkvu,
                              int ld, TnActivation act, const float *theta, int n_rows, int seq_len, int pos_offset,
                              int n_heads, int head_dim);

#endif
