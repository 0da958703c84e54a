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
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

/* Doubles of scratch grad_sum_squares_cuda takes. */
#define TN_GRAD_SQUARES_PARTIALS 1024

/* *sum_squares (one double in device memory) = sum of grads[i]^2: up to
 * TN_GRAD_SQUARES_PARTIALS per-block fp32 partials written to partials
 * (device scratch of that many doubles), then added in double by one block.
 * No atomics: every addition's order is fixed by n and grads' alignment (16
 * bytes or not: the layout's), so the same gradient
 * gives the same bits on every run (step_device.h's bit-identical resumes). */
int grad_sum_squares_cuda(double *sum_squares, double *partials, const float *grads, size_t n, cudaStream_t stream,
                          TnError *err);

/* A run of adjacent tensors that AdamW decays alike: the elements from the
 * previous segment's end (0 for the first) to `end`. */
typedef struct TnAdamwSegment {
    size_t end;
    int decays; /* 1: weight_decay applies (tn_adamw_decays), 0: none (theta, norm gains and biases) */
} TnAdamwSegment;

/* One AdamW step over the n elements of the flat buffers in ONE launch, the
 * decay of each element taken from segments (device, ascending ends, the
 * last >= n), writing the updated parameters' bf16 copy (params_bf16, NULL:
 * none) in the same pass. The clipping factor is computed on the device
 * from *sum_squares (device, grad_sum_squares_cuda's; NULL: no clipping)
 * as tn_grad_clip does on the host: max_norm / norm when max_norm > 0 and
 * norm = sqrt(sum) > max_norm, else 1; so nothing waits for the host.
 * Bandwidth-bound: 28 bytes per element (+ 2 for the copy), 16 bytes per
 * access where n and the pointers allow. */
int adamw_update_cuda(float *params, uint16_t *params_bf16, const float *grads, float *m, float *v, size_t n,
                      const TnAdamwSegment *segments, int n_segments, float lr, float beta1, float beta2, float eps,
                      float weight_decay, float correction1, float correction2, const double *sum_squares,
                      double max_norm, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
