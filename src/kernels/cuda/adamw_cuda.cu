#include "kernels/cuda/adamw_cuda.h"

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 512;

__global__ void grad_sum_squares_kernel(double *sum_squares, const float *grads, size_t n) {
    __shared__ float shared[32];
    float sum = 0.0f;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        sum += grads[i] * grads[i];
    sum = block_sum(sum, shared);
    if (threadIdx.x == 0) atomicAdd(sum_squares, (double)sum);
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

extern "C" int grad_sum_squares_cuda(double *sum_squares, const float *grads, size_t n, cudaStream_t stream,
                                     TnError *err) {
    /* a few blocks per SM: enough to stream the buffer, few atomics */
    unsigned blocks = blocks_for(n, kThreads);
    if (blocks > 1024) blocks = 1024;
    if (n) grad_sum_squares_kernel<<<blocks, kThreads, 0, stream>>>(sum_squares, grads, n);
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
