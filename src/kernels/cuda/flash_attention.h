/* flash_attention.h: causal softmax attention of the Transformer baseline
 * on the GPU, fused and flash-style (FlashAttention-2's algorithm): the CUDA
 * twin of kernels/cpu/softmax_attention.h, per sequence b and head h
 *   o_t = sum_{s <= t} p_ts v_s,  p_ts = softmax_s(q_t . k_s / sqrt(d)).
 *
 * Forward: one thread block per 64 queries of a (b, h) streams the key and
 * value blocks up to the diagonal through shared memory with an online
 * softmax (running max and sum in fp32), and saves each row's log-sum-exp
 * lse_t = log sum_s exp(q_t . k_s / sqrt(d)). Backward: P is recomputed from
 * lse, never stored; D_t = rowsum(dO_t ⊙ O_t) is computed first into the
 * scratch; then one kernel sweeps key blocks for dQ (per query block) and one
 * sweeps query blocks for dK and dV (per key block), so every gradient is
 * written once, without atomics (the runs are bit-reproducible):
 *   dP_ts = dO_t . v_s,  dS_ts = p_ts (dP_ts - D_t) / sqrt(d),
 *   dq_t = sum_s dS_ts k_s,  dk_s = sum_t dS_ts q_t,  dv_s = sum_t p_ts dO_t.
 * Nothing of size n^2 touches global memory.
 *
 * Precision: q, k, v, o and the gradients are bf16; every product runs on
 * the tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulate) with
 * P and dS rounded to bf16 as their operands; softmax statistics, lse and D
 * are fp32.
 *
 * Layout: token t of sequence b is row b * seq_len + t of each tensor; head
 * h occupies columns h * head_dim .. of a row; rows are `ld_*` elements apart
 * (views into fused projections are allowed). A gradient has the stride of
 * the tensor it is the gradient of (dq: ld_query, dk: ld_key, dv: ld_value,
 * dout: ld_out). lse is [batch * heads][seq_len] fp32. Requirements (checked,
 * -1 with a message otherwise): head_dim 64 or 128, every stride a multiple of
 * 8 and every pointer 16-byte aligned. Any seq_len >= 1.
 *
 * Device memory; work queued on `stream`; nothing synchronises or
 * allocates. Return 0, or -1 with err naming the function.
 */
#ifndef TN_KERNELS_CUDA_FLASH_ATTENTION_H
#define TN_KERNELS_CUDA_FLASH_ATTENTION_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

typedef struct FlashShape {
    int batch, seq_len, heads, head_dim;
    long ld_query, ld_key, ld_value, ld_out; /* row strides, elements */
} FlashShape;

/* Bytes of the backward's scratch (D: batch * heads * seq_len floats). */
size_t flash_attention_scratch_bytes(const FlashShape *shape);

/* out (bf16) and lse (fp32) from q, k, v (bf16). */
int flash_attention_forward_cuda(uint16_t *out, float *lse, const uint16_t *query, const uint16_t *key,
                                 const uint16_t *value, const FlashShape *shape, cudaStream_t stream, TnError *err);

/* dq, dk, dv (bf16, overwritten) from dout and the forward's inputs, out and
 * lse; scratch holds flash_attention_scratch_bytes. */
int flash_attention_backward_cuda(uint16_t *dquery, uint16_t *dkey, uint16_t *dvalue, const uint16_t *dout,
                                  const uint16_t *query, const uint16_t *key, const uint16_t *value,
                                  const uint16_t *out, const float *lse, const FlashShape *shape, void *scratch,
                                  cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
