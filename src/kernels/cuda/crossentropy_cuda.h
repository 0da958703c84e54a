/* crossentropy_cuda.h: next-token cross-entropy over bf16 logits on the GPU,
 * the CUDA twin of kernels/cpu/crossentropy.h. One block per row streams the
 * row once with an online max/sum (fp32); the probabilities are never
 * stored: the forward keeps only the row's log-sum-exp, and the backward
 * writes the logits' gradient over the logits in place.
 * logits (N x V, bf16), targets (N, int32, TN_IGNORE_INDEX = -100 skipped),
 * losses and lse (N, fp32) in device memory; queued on `stream`. Return 0,
 * or -1 with err on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_CROSSENTROPY_CUDA_H
#define TN_KERNELS_CUDA_CROSSENTROPY_CUDA_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

/* losses[r] = lse_r - z[r][target], lse[r] = logsumexp(z[r]); 0 on ignored rows. */
int crossentropy_forward_cuda(float *losses, float *lse, const uint16_t *logits, const int32_t *targets, int n_rows,
                              int vocab_size, cudaStream_t stream, TnError *err);

/* dlogits[r] = scale (exp(z - lse_r) - onehot(target_r)), 0 on ignored rows;
 * dlogits may be logits itself. Requires lse from the forward. */
int crossentropy_backward_cuda(uint16_t *dlogits, const uint16_t *logits, const float *lse, const int32_t *targets,
                               int n_rows, int vocab_size, float scale, cudaStream_t stream, TnError *err);

/* Both in one pass, for a training step that knows its loss scale before
 * the forward: losses as the forward, then the gradient over the logits
 * (in place) as the backward with `scale`; no lse kept. Each row is read
 * from memory once (its second read, right after the first, mostly from
 * the L2 cache) where the two calls read it twice; the same bits as they. */
int crossentropy_fused_cuda(float *losses, uint16_t *logits, const int32_t *targets, int n_rows, int vocab_size,
                            float scale, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
