/* norm_cuda.h: the norms of the `norm` switch (SRMSNorm, Eq. 8; RMSNorm
 * with a gain; LayerNorm with a gain and a bias) and the GLA output gate
 * (Eq. 4) on the GPU.
 *
 * The CUDA twins of kernels/cpu/norm.h and of the CPU model's norm and gate
 * after the attention, with the same formulas and eps:
 *   y = g ⊙ (x - mu) r + b,  r = 1 / sqrt(mean((x - mu)^2) + eps)
 * (mu = 0 and no b for the RMS kinds, g = 1 for SRMSNorm; gain and bias NULL
 * where the kind has none; SRMSNorm is norm_forward_cuda(TN_NORM_SRMS,
 * ..., NULL, NULL, ...)). Statistics in fp32, one block per row (the row
 * is read from global memory once, re-read from cache); normalised outputs
 * are bf16 (they feed the matrix products); residual-stream inputs and
 * gradients are fp32, the gradients coming from a product (dout, dgated)
 * bf16 or as the caller says. LayerNorm's mu is not stored: the backward
 * recomputes it from x, as the CPU does. The gain and bias gradients are
 * summed over blocks of rows in fp32 into the caller's partials, then added
 * by column_sums_cuda in a fixed order: no atomics, so the same inputs give
 * the same bits on every run. Rows are read and written 16 bytes at a time
 * where dim, the gate's stride and the pointers allow (device_common.cuh's
 * vector_width). All pointers are device memory; work is
 * queued on `stream`, nothing synchronises or allocates. Return 0, or -1 with err naming the
 * function on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_NORM_CUDA_H
#define TN_KERNELS_CUDA_NORM_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/cuda/float_type.h"
#include "model/config.h"
#include "util/error.h"

/* The norm of kind `kind` of x (fp32) into out (bf16); rstd[row] = r. */
int norm_forward_cuda(TnNormKind kind, uint16_t *out, float *rstd, const float *inp, const float *gain,
                      const float *bias, int n_rows, int dim, cudaStream_t stream, TnError *err);
/* The same, also copying x into copy (fp32, n_rows x dim) in the same pass:
 * the residual stream that the next matrix product adds into (beta 1)
 * while x stays for the backward. */
int norm_forward_copy_cuda(TnNormKind kind, uint16_t *out, float *rstd, float *copy, const float *inp,
                           const float *gain, const float *bias, int n_rows, int dim, cudaStream_t stream,
                           TnError *err);

/* Floats of the partials scratch the backwards take for n_rows x dim. */
size_t norm_backward_partials(int n_rows, int dim);

/* Backward of norm_forward_cuda, as norm_backward_cpu: ACCUMULATES
 *   dinp += r (dxhat - mean(dxhat) - xhat mean(dxhat ⊙ xhat)),
 * dxhat = g ⊙ dy, xhat = (x - mu) r (no mean(dxhat) term without
 * centering), and dgain += sum_rows dy ⊙ xhat, dbias += sum_rows dy where
 * the kind has them (partials: device scratch of norm_backward_partials
 * floats, unused when both are NULL). dout of dout_type (fp32 or bf16),
 * inp and dinp fp32; dinp_bf16 (NULL: none) receives the bf16 copy of the
 * dinp it leaves, in the same pass (the residual gradient as the next
 * matrix product's operand). */
int norm_backward_cuda(TnNormKind kind, float *dinp, uint16_t *dinp_bf16, float *dgain, float *dbias,
                       float *partials, const void *dout, TnCudaFloat dout_type, const float *inp, const float *rstd,
                       const float *gain, int n_rows, int dim, cudaStream_t stream, TnError *err);

/* The norm after the attention and the output gate (Eq. 4):
 * gated (bf16, N x D) = u ⊙ Norm(o), or Norm(o) when gate is NULL (the gate
 * switch off). o is attn (bf16, N x D); u is the row r of `gate` (bf16,
 * row stride gate_ld: the last D columns of the qkvu rows); rstd receives
 * o's. */
int norm_gate_forward_cuda(TnNormKind kind, uint16_t *gated, float *rstd, const uint16_t *attn, const float *gain,
                           const float *bias, const uint16_t *gate, int gate_ld, int n_rows, int dim,
                           cudaStream_t stream, TnError *err);

/* Backward of norm_gate_forward_cuda from dgated (bf16): with a gate,
 * writes du = dgated ⊙ Norm(o) into dgate (bf16, the u columns of dqkvu,
 * row stride gate_ld; other columns untouched) and takes dy = dgated ⊙ u,
 * else dy = dgated; writes the gradient of o into dattn (bf16,
 * overwritten) and ACCUMULATES dgain, dbias as norm_backward_cuda (with its
 * partials). */
int norm_gate_backward_cuda(TnNormKind kind, uint16_t *dattn, uint16_t *dgate, float *dgain, float *dbias,
                            float *partials, const uint16_t *dgated, const uint16_t *attn, const float *rstd,
                            const float *gain, const float *bias, const uint16_t *gate, int gate_ld, int n_rows,
                            int dim, cudaStream_t stream, TnError *err);

/* The same norm and gate when tensor parallelism splits the rows' columns
 * over ranks (dist/tensor_parallel.h: this rank holds dim of the rows'
 * full_dim columns, with their gain and gate). The rows' statistics are
 * sums over every rank's columns, so each direction takes two passes with
 * the caller's sum over the ranks between them: the first writes each row's
 * sum over the part into row_sums (device, n_rows fp32), the second takes the
 * full rows' sums from row_sums and does on the part what
 * norm_gate_forward_cuda and norm_gate_backward_cuda do (with rstd the full
 * rows'). The RMS kinds only (LayerNorm's centre would take a third sum:
 * refused); no bias.
 *   forward sums:  sum_c o_c^2
 *   backward sums: sum_c g_c dy_c o_c r,  dy = dgated ⊙ u (dgated without
 *                  the gate), r the forward's rstd */
int norm_gate_part_sums_cuda(TnNormKind kind, float *row_sums, const uint16_t *attn, int n_rows, int dim,
                             cudaStream_t stream, TnError *err);
int norm_gate_part_forward_cuda(TnNormKind kind, uint16_t *gated, float *rstd, const float *row_sums,
                                const uint16_t *attn, const float *gain, const uint16_t *gate, int gate_ld,
                                int n_rows, int dim, int full_dim, cudaStream_t stream, TnError *err);
int norm_gate_part_dots_cuda(TnNormKind kind, float *row_sums, const uint16_t *dgated, const uint16_t *attn,
                             const float *rstd, const float *gain, const uint16_t *gate, int gate_ld, int n_rows,
                             int dim, cudaStream_t stream, TnError *err);
int norm_gate_part_backward_cuda(TnNormKind kind, uint16_t *dattn, uint16_t *dgate, float *dgain, float *partials,
                                 const float *row_sums, const uint16_t *dgated, const uint16_t *attn, const float *rstd,
                                 const float *gain, const uint16_t *gate, int gate_ld, int n_rows, int dim,
                                 int full_dim, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
