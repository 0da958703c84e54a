/* adamw_cuda.h: global-norm clipping and AdamW over the flat parameter
 * buffer on the GPU (the CUDA twin of train/optimizer.h's update, same
 * formula, PyTorch's torch.optim.AdamW):
 *   g = grad_scale * grad (the clipping factor, 1 when not clipped)
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
 *   p -= lr (m / c1 / (sqrt(v / c2) + eps) + wd p),  c_i = 1 - b_i^t
 * Device memory; queued on `stream`. Return 0, or -1 with err.
 */
#ifndef TN_KERNELS_CUDA_ADAMW_CUDA_H
#define TN_KERNELS_CUDA_ADAMW_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

/* Doubles of scratch grad_sum_squares_cuda takes. */
#define TN_GRAD_SQUARES_PARTIALS 1024

/* *sum_squares (one double in device memory) = sum of grads[i]^2: up to
 * TN_GRAD_SQUARES_PARTIALS per-block fp32 partials written to partials
 * (device scratch of that many doubles), then added in double by one block.
 * No atomics: every addition's order is fixed by n, so the same gradient
 * gives the same bits on every run (step_device.h's bit-identical resumes). */
int grad_sum_squares_cuda(double *sum_squares, double *partials, const float *grads, size_t n, cudaStream_t stream,
                          TnError *err);

/* One AdamW step over n elements of one tensor (weight_decay 0 for theta). */
int adamw_update_cuda(float *params, const float *grads, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float eps, float weight_decay, float correction1, float correction2,
                      float grad_scale, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
