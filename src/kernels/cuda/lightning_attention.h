/* lightning_attention.h: causal linear attention with per-head decay on the GPU
 * (CUDA, Hopper sm_90), callable from C.
 *
 * The same function as attention_forward_cpu (kernels/cpu/attention.h), with
 * the same shape struct, layout and algorithm names:
 *   o_t = sum_{s <= t} lambda_h^(t - s) (q_t . k_s) v_s  (+ lambda_h^(t+1) q_t S0)
 *  - TN_ATTN_CHUNKED: Lightning Attention-2. Blocks of 64 tokens:
 *    inside a block the masked left product (Q K^T ⊙ M) V with factors
 *    lambda^(i-j) <= 1 on the tensor cores, across blocks a running fp32 state
 *    scaled by lambda^64. Linear in n. When batch*heads is too small to fill
 *    the GPU the sequence is also split into segments whose local states are
 *    combined by a scan (scratch holds one dk x dv fp32 state per segment).
 *  - TN_ATTN_CHUNKED_WGMMA (GPU only; TN_ATTN_CUDA_DEFAULT, what the model
 *    trains and prefills with: 8% faster than CHUNKED at d = 128 on an H200,
 *    bench/attention_notes.md v11): the same algorithm, its forward on Hopper's wgmma
 *    (attention_wgmma.cu, built for sm_90a) where dk = dv = 128 and the
 *    chunked kernels for every other shape; in the backward, the dQ pass (a
 *    forward over dO, V, K) runs on it too, the dK/dV sweep is CHUNKED's.
 *    wgmma is sm_90a's: every Hopper GPU has it, and the build targets
 *    sm_90 alone (Makefile), so no other GPU runs these kernels.
 *  - TN_ATTN_PARALLEL: the paper's Alg. 1-2, blockwise and quadratic: every
 *    query block visits every key block before it, nothing n x n is stored.
 *    Kept for the paper's comparison; takes no state.
 *  - TN_ATTN_RECURRENT: Alg. 4, S_t = lambda S_{t-1} + k_t^T v_t, o_t = q_t S_t,
 *    token by token: the decode step of generation (seq_len = 1) and the
 *    continuation of a chunked prefill through `state`.
 * Only factors <= 1 are formed (lambda^d for d >= 0, never lambda^-t).
 *
 * Data: q, k, v, o and the gradients are bf16 (uint16_t bit patterns) in
 * device memory, rows b * seq_len + t, head h at column h * dk (q, k) or
 * h * dv (v, o), row strides ld* in elements (views into fused buffers are
 * fine). Products accumulate in fp32; the running state is fp32 (it is
 * rounded to bf16 only as a tensor-core operand). lambda is [heads] fp32 in
 * device memory, each in [0, 1]. state, when not NULL, is [batch, heads, dk,
 * dv] fp32 in device memory: read as S0 and overwritten with the state after
 * the last token (CHUNKED, CHUNKED_WGMMA, RECURRENT).
 *
 * Requires: dk in {64, 128, 256}, dv in {64, 128} (RECURRENT also takes the
 * narrower heads of small models: dk in {16, 32}, dv in {16, 32}); every ld* a multiple of 8
 * and at least heads * width; q, k, v, o, gradient pointers 16-byte aligned,
 * state 32-byte aligned, lambda float-aligned; scratch (device memory, caller-owned) of
 * scratch_bytes, at least attention_cuda_scratch_bytes() (checked here; NULL
 * when that is 0). Nothing is allocated; work is queued on `stream` and
 * nothing synchronises.
 * Returns 0, or -1 with err filled for a shape or pointer it cannot take,
 * scratch too small, or a CUDA launch error.
 */
#ifndef TN_KERNELS_CUDA_LIGHTNING_ATTENTION_H
#define TN_KERNELS_CUDA_LIGHTNING_ATTENTION_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the project's C headers carry no C++ guards of their own */
#endif

#include "kernels/cpu/attention.h"
#include "util/error.h"

/* An algorithm value beside TnAttnAlgo's three that only these functions
 * take (the CPU ones do not): see the list above. */
#define TN_ATTN_CHUNKED_WGMMA ((TnAttnAlgo)(TN_ATTN_RECURRENT + 1))
/* The GPU model's Lightning Attention-2 (training, prefill). */
#define TN_ATTN_CUDA_DEFAULT TN_ATTN_CHUNKED_WGMMA

/* Scratch bytes that attention_forward_cuda and attention_backward_cuda
 * need for this shape on the current device (the larger of the two). */
size_t attention_cuda_scratch_bytes(const TnAttnShape *s, TnAttnAlgo algo);
/* The most scratch any call of 1 to s->batch sequences of 1 to s->seq_len
 * tokens (the other fields as in s) needs on the current device, for a
 * buffer sized once: the segments a sequence is cut into are not monotone
 * in the batch or the length (fewer sequences get more segments each), so
 * every batch and every count of 64-token chunks is asked. */
size_t attention_cuda_scratch_bound(const TnAttnShape *s, TnAttnAlgo algo);

int attention_forward_cuda(uint16_t *o, const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *lambda,
                           float *state, const TnAttnShape *s, TnAttnAlgo algo, void *scratch, size_t scratch_bytes,
                           cudaStream_t stream, TnError *err);

/* Gradients of sum(o ⊙ dout) for a call without state:
 *   dq_t = sum_{s <= t} lambda^(t-s) (dout_t . v_s) k_s
 *   dk_s = sum_{t >= s} lambda^(t-s) (dout_t . v_s) q_t
 *   dv_s = sum_{t >= s} lambda^(t-s) (q_t . k_s) dout_t
 * Each is the forward form with operands exchanged (time reversed for dk and
 * dv), so the backward runs the forward kernels of `algo` (CHUNKED or
 * PARALLEL) three times; CHUNKED with dv = 128 and dk <= 128 computes dk and
 * dv in one reversed sweep instead, their two running states being
 * transposes of one state. dq, dk, dv use the strides ldq, ldk, ldv and dout
 * uses ldo. dq/dk are the inputs the LRPE backward needs (dk = 2d there). */
int attention_backward_cuda(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                            const uint16_t *k, const uint16_t *v, const float *lambda, const TnAttnShape *s,
                            TnAttnAlgo algo, void *scratch, size_t scratch_bytes, cudaStream_t stream, TnError *err);

/* Keeping the forward's states for the backward (CHUNKED, CHUNKED_WGMMA):
 * a forward cut into segments computes every segment's incoming state; the
 * backward's dQ pass needs their transposes (its key is the forward's
 * value) and would compute them again (a state-only pass over dO and V's
 * partner K, and the scan). attention_forward_keeping_cuda is
 * attention_forward_cuda without state that also leaves them in `kept`
 * (device, caller-owned, kept_bytes of it, at least
 * attention_cuda_kept_bytes(s, algo) (checked), 16-byte aligned; NULL when
 * that is 0); attention_backward_kept_cuda is attention_backward_cuda
 * reading them from there: kept must still hold what the forward of the
 * same q, k, v, lambda, shape and algo wrote. The model's training step
 * keeps them (a layer's forward states beside its activations). */
size_t attention_cuda_kept_bytes(const TnAttnShape *s, TnAttnAlgo algo);
int attention_forward_keeping_cuda(uint16_t *o, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                   const float *lambda, float *kept, size_t kept_bytes, const TnAttnShape *s,
                                   TnAttnAlgo algo, void *scratch, size_t scratch_bytes, cudaStream_t stream,
                                   TnError *err);
int attention_backward_kept_cuda(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                                 const uint16_t *k, const uint16_t *v, const float *lambda, const float *kept,
                                 size_t kept_bytes, const TnAttnShape *s, TnAttnAlgo algo, void *scratch,
                                 size_t scratch_bytes, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
