#include "kernels/cuda/adamw_cuda.h"

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 512;

/* Block b's fp32 sum of squares over the elements b kThreads + i
 * (grid-stride): the grid depends on n alone, so each partial does too. */
__global__ void grad_squares_partials_kernel(double *partials, const float *grads, size_t n) {
    __shared__ float shared[32];
    float sum = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        sum += grads[i] * grads[i];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = (double)sum;
}

/* One block adds the partials in double, in an order fixed by its shape. */
__global__ void grad_squares_total_kernel(double *sum_squares, const double *partials, int n_partials) {
    __shared__ double shared[32];
    double sum = 0.0;
    for (int i = threadIdx.x; i < n_partials; i += blockDim.x) sum += partials[i];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) *sum_squares = sum;
}

__global__ void adamw_update_kernel(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                                    float beta1, float beta2, float eps, float weight_decay, float correction1,
                                    float correction2, float grad_scale) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad_scale * grads[i];
        float mt = beta1 * m[i] + (1.0f - beta1) * g, vt = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mt;
        v[i] = vt;
        params[i] -= lr * ((mt / correction1) / (sqrtf(vt / correction2) + eps) + weight_decay * params[i]);
    }
}

} // namespace

extern "C" int grad_sum_squares_cuda(double *sum_squares, double *partials, const float *grads, size_t n,
                                     cudaStream_t stream, TnError *err) {
    /* a few blocks per SM: enough to stream the buffer */
    unsigned blocks = blocks_for(n, kThreads);
    if (blocks > TN_GRAD_SQUARES_PARTIALS) blocks = TN_GRAD_SQUARES_PARTIALS;
    if (n) grad_squares_partials_kernel<<<blocks, kThreads, 0, stream>>>(partials, grads, n);
    grad_squares_total_kernel<<<1, kThreads, 0, stream>>>(sum_squares, partials, n ? (int)blocks : 0);
    return launched("grad_sum_squares_cuda", err);
}

extern "C" int adamw_update_cuda(float *params, const float *grads, float *m, float *v, size_t n, float lr, float beta1,
                                 float beta2, float eps, float weight_decay, float correction1, float correction2,
                                 float grad_scale, cudaStream_t stream, TnError *err) {
    if (n)
        adamw_update_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
            params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, correction1, correction2, grad_scale);
    return launched("adamw_update_cuda", err);
}
