/* norm_cuda.h: SRMSNorm (Eq. 8) and the GLA output gate (Eq. 4) on the GPU.
 *
 * The CUDA twins of kernels/cpu/norm.h and of the CPU model's norm-gate, with
 * the same formulas; statistics in fp32, one block per row, one read and one
 * write of the row. Normalised outputs are bf16 (they feed the matrix
 * products); residual-stream inputs and gradients are fp32. All pointers are
 * device memory; work is queued on `stream`, nothing synchronises or
 * allocates. Return 0, or -1 with err naming the function on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_NORM_CUDA_H
#define TN_KERNELS_CUDA_NORM_CUDA_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

/* out (bf16) = x r, rstd[row] = r = 1 / sqrt(mean(x^2) + eps), x fp32. */
int srmsnorm_forward_cuda(uint16_t *out, float *rstd, const float *inp, int n_rows, int dim, cudaStream_t stream,
                          TnError *err);

/* dinp += r (dy - y mean(dy ⊙ y)), y = x r: ACCUMULATES (the residual
 * stream sums its branches). dout, inp, dinp fp32. */
int srmsnorm_backward_cuda(float *dinp, const float *dout, const float *inp, const float *rstd, int n_rows, int dim,
                           cudaStream_t stream, TnError *err);

/* gated (bf16, N x D) = u ⊙ SRMSNorm(o): o is attn (bf16, N x D), u the last
 * D columns of each row of qkvu (bf16, N x 4D); rstd receives o's. */
int norm_gate_forward_cuda(uint16_t *gated, float *rstd, const uint16_t *attn, const uint16_t *qkvu, int n_rows,
                           int dim, cudaStream_t stream, TnError *err);

/* Backward of norm_gate_forward_cuda from dgated (fp32): writes du into the
 * u columns of dqkvu (bf16, N x 4D; other columns untouched) and the
 * gradient of o into dattn (bf16, overwritten). */
int norm_gate_backward_cuda(uint16_t *dattn, uint16_t *dqkvu, const float *dgated, const uint16_t *attn,
                            const float *rstd, const uint16_t *qkvu, int n_rows, int dim, cudaStream_t stream,
                            TnError *err);

#ifdef __cplusplus
}
#endif

#endif
