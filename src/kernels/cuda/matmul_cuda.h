/* matmul_cuda.h: the linear layers on the GPU through cuBLASLt, the CUDA
 * twin of kernels/cpu/matmul.h: out = inp . weight^T with inp (N, in)
 * row-major and weight (out, in) as PyTorch stores it. Operands are bf16 (the
 * bf16 copy of the parameters, bf16 activations); products accumulate in
 * fp32 (CUBLAS_COMPUTE_32F) and the output is fp32 or bf16 as asked.
 *
 * A TnMatmulCuda holds the cuBLASLt handle, the stream that orders the work,
 * the workspace (the only memory cuBLASLt uses: CUDA graph capture needs
 * that) and one plan per product shape met so far (descriptors and the
 * algorithm, made at the shape's first call; TN_MATMUL_PLANS of them, the
 * least recently used replaced after that). The algorithm is the first of
 * cuBLASLt's heuristic list, a function of the shape, the pointers'
 * alignment, the GPU and the library, so every run gives the same bits
 * (resumes and launches compare bit for bit). Timing the heuristic's first
 * eight per shape and keeping the fastest was tried: 5% off the 1B model's
 * products alone on an H200, nothing off its training step, whose products
 * run at the clocks the 700 W power cap allows (bench/train_notes.md).
 * Pointers are device memory. Functions return 0, or -1 with err naming the
 * call and cuBLAS's status (create: or CUDA's, allocating the workspace).
 */
#ifndef TN_KERNELS_CUDA_MATMUL_CUDA_H
#define TN_KERNELS_CUDA_MATMUL_CUDA_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels/cuda/float_type.h"
#include "util/error.h"

#define TN_MATMUL_PLANS 64

typedef struct TnMatmulCuda TnMatmulCuda;

/* *mm on `stream` with a workspace of workspace_bytes (device memory it
 * allocates, and frees in destroy; 0: none). cuBLASLt is given that and
 * nothing else, so it never allocates, which CUDA graph capture needs. *mm
 * is set (NULL on failure before it exists) so the caller can always
 * destroy it. */
int tn_matmul_cuda_create(TnMatmulCuda **mm, cudaStream_t stream, size_t workspace_bytes, TnError *err);
void tn_matmul_cuda_destroy(TnMatmulCuda *mm);

/* out = inp . weight^T + beta * out; beta 1 adds into an fp32 out (the
 * residual stream), beta 0 overwrites. Up to TN_MATVEC_MAX_ROWS rows (a
 * decode step) with in_dim a multiple of 8 and 16-byte aligned operands go
 * to matvec_forward_cuda on mm's stream, the rest to cuBLASLt. */
int matmul_forward_cuda(TnMatmulCuda *mm, void *out, TnCudaFloat out_type, float beta, const uint16_t *inp,
                        const uint16_t *weight, int n_rows, int in_dim, int out_dim, TnError *err);

/* Rows the matrix-vector kernels take. */
#define TN_MATVEC_MAX_ROWS 8

/* matmul_forward_cuda for 1 to TN_MATVEC_MAX_ROWS rows without cuBLAS
 * (matvec_cuda.cu): memory-bound, each weight read once, fp32 sums.
 * Requires in_dim a multiple of 8, inp and weight 16-byte aligned. Queued on
 * `stream`; -1 with err on a shape it does not take or a launch error. */
int matvec_forward_cuda(void *out, TnCudaFloat out_type, float beta, const uint16_t *inp, const uint16_t *weight,
                        int n_rows, int in_dim, int out_dim, cudaStream_t stream, TnError *err);

/* SGLU's product in one pass (Eq. 5 with glu_act none): out (bf16) =
 * (inp . weight1^T) ⊙ (inp . weight2^T), both (out_dim, in_dim); the same
 * requirements, weight2 aligned too. */
int matvec_glu_forward_cuda(uint16_t *out, const uint16_t *inp, const uint16_t *weight1, const uint16_t *weight2,
                            int n_rows, int in_dim, int out_dim, cudaStream_t stream, TnError *err);

/* Backward for dout (N, out), bf16, summed in fp32:
 *   dinp    = dout . weight                           (N, in), OVERWRITTEN, of dinp_type
 *   dweight = dout^T . inp + weight_beta * dweight    (out, in), fp32
 * weight_beta 1 adds up the weight's gradient as matmul_backward_cpu does
 * (a tensor used twice, micro-batches), 0 writes it (the first backward
 * after a deferred zero_grad). The input's is written (beta 0), so the step
 * neither clears nor reads it first (matmul_backward_cpu adds into it). */
int matmul_backward_cuda(TnMatmulCuda *mm, void *dinp, TnCudaFloat dinp_type, float *dweight, float weight_beta,
                         const uint16_t *dout, const uint16_t *inp, const uint16_t *weight, int n_rows, int in_dim,
                         int out_dim, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
