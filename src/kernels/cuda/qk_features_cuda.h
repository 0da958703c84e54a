/* qk_features_cuda.h: the GLA query/key features on the GPU, the CUDA twin of
 * kernels/cpu/qk_features.h (same formulas, layout and argument order):
 * q = act(q), k = act(k) (Eq. 3; act the gla_act switch, the definitions of
 * kernels/cpu/activation.h) and, on LRPE layers (theta != NULL), the
 * LRPE-d expansion [a cos(theta p), a sin(theta p)] at position
 * p = pos_offset + row % seq_len; in the forward, seq_positions (device, one
 * entry per sequence of seq_len rows, or NULL) replaces pos_offset by each
 * sequence's own first position (batched decoding of sequences of different
 * lengths). The angle theta * p is formed in double,
 * as on the CPU (in float it loses digits once p reaches the thousands).
 * qkvu (N rows of stride ld: 4D, or 3D without the output gate), qf, kf
 * (N x H*dk), dqf, dkf, dqkvu (stride ld) are bf16; theta and dtheta fp32
 * (H x d). Device memory; queued on `stream`; nothing allocated.
 * Return 0, or -1 with err on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_QK_FEATURES_CUDA_H
#define TN_KERNELS_CUDA_QK_FEATURES_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "model/config.h"
#include "util/error.h"

int qk_features_forward_cuda(uint16_t *qf, uint16_t *kf, const uint16_t *qkvu, int ld, TnActivation act,
                             const float *theta, int n_rows, int seq_len, int pos_offset, const int32_t *seq_positions,
                             int n_heads, int head_dim, cudaStream_t stream, TnError *err);

/* Floats of the partials scratch the backward takes on LRPE layers. */
size_t qk_features_backward_partials(int n_rows, int n_heads, int head_dim);

/* Writes dq, dk into the first 2D columns of dqkvu's rows and, on LRPE
 * layers, ACCUMULATES dtheta_c += sum_rows p (a_q (dq'_{d+c} cos - dq'_c sin)
 * + the same for k), a = act(q): per-chunk partial sums in fp32 written to
 * partials (device scratch of qk_features_backward_partials floats), then
 * added by column_sums_cuda in a fixed order: no atomics, so the same
 * inputs give the same bits on every run. */
int qk_features_backward_cuda(uint16_t *dqkvu, float *dtheta, float *partials, const uint16_t *dqf,
                              const uint16_t *dkf, const uint16_t *qkvu, int ld, TnActivation act, const float *theta,
                              int n_rows, int seq_len, int pos_offset, int n_heads, int head_dim, cudaStream_t stream,
                              TnError *err);

#ifdef __cplusplus
}
#endif

#endif
