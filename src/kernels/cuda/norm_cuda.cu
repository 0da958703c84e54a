#include "kernels/cuda/norm_cuda.h"

#include "kernels/cuda/device_common.cuh"
extern "C" {
#include "model/config.h" /* TN_NORM_EPS */
}

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 256;

__global__ void srmsnorm_forward_kernel(uint16_t *out, float *rstd, const float *inp, int dim) {
    __shared__ float shared[32];
    const float *x = inp + (size_t)blockIdx.x * dim;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) sum += x[c] * x[c];
    float r = rsqrtf(block_sum(sum, shared) / dim + TN_NORM_EPS);
    for (int c = threadIdx.x; c < dim; c += blockDim.x) store_bf16(out, (size_t)blockIdx.x * dim + c, x[c] * r);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

__global__ void srmsnorm_backward_kernel(float *dinp, const float *dout, const float *inp, const float *rstd, int dim) {
    __shared__ float shared[32];
    size_t row = (size_t)blockIdx.x * dim;
    float r = rstd[blockIdx.x], dot = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) dot += dout[row + c] * inp[row + c] * r;
    float mean = block_sum(dot, shared) / dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        dinp[row + c] += r * (dout[row + c] - inp[row + c] * r * mean);
}

__global__ void norm_gate_forward_kernel(uint16_t *gated, float *rstd, const uint16_t *attn, const uint16_t *qkvu,
                                         int dim) {
    __shared__ float shared[32];
    size_t row = (size_t)blockIdx.x * dim, u = (size_t)blockIdx.x * 4 * dim + 3 * dim;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float o = load_bf16(attn, row + c);
        sum += o * o;
    }
    float r = rsqrtf(block_sum(sum, shared) / dim + TN_NORM_EPS);
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        store_bf16(gated, row + c, load_bf16(qkvu, u + c) * load_bf16(attn, row + c) * r);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

/* du = dg ⊙ o r; the gradient of y = o r is dy = dg ⊙ u, and o's is
 * r (dy - y mean(dy ⊙ y)). */
__global__ void norm_gate_backward_kernel(uint16_t *dattn, uint16_t *dqkvu, const float *dgated, const uint16_t *attn,
                                          const float *rstd, const uint16_t *qkvu, int dim) {
    __shared__ float shared[32];
    size_t row = (size_t)blockIdx.x * dim, u = (size_t)blockIdx.x * 4 * dim + 3 * dim;
    float r = rstd[blockIdx.x], dot = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float g = dgated[row + c], o = load_bf16(attn, row + c);
        store_bf16(dqkvu, u + c, g * o * r);
        dot += g * load_bf16(qkvu, u + c) * o * r;
    }
    float mean = block_sum(dot, shared) / dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float dy = dgated[row + c] * load_bf16(qkvu, u + c);
        store_bf16(dattn, row + c, r * (dy - load_bf16(attn, row + c) * r * mean));
    }
}

} // namespace

extern "C" int srmsnorm_forward_cuda(uint16_t *out, float *rstd, const float *inp, int n_rows, int dim,
                                     cudaStream_t stream, TnError *err) {
    if (n_rows > 0) srmsnorm_forward_kernel<<<n_rows, kThreads, 0, stream>>>(out, rstd, inp, dim);
    return launched("srmsnorm_forward_cuda", err);
}

extern "C" int srmsnorm_backward_cuda(float *dinp, const float *dout, const float *inp, const float *rstd, int n_rows,
                                      int dim, cudaStream_t stream, TnError *err) {
    if (n_rows > 0) srmsnorm_backward_kernel<<<n_rows, kThreads, 0, stream>>>(dinp, dout, inp, rstd, dim);
    return launched("srmsnorm_backward_cuda", err);
}

extern "C" int norm_gate_forward_cuda(uint16_t *gated, float *rstd, const uint16_t *attn, const uint16_t *qkvu,
                                      int n_rows, int dim, cudaStream_t stream, TnError *err) {
    if (n_rows > 0) norm_gate_forward_kernel<<<n_rows, kThreads, 0, stream>>>(gated, rstd, attn, qkvu, dim);
    return launched("norm_gate_forward_cuda", err);
}

extern "C" int norm_gate_backward_cuda(uint16_t *dattn, uint16_t *dqkvu, const float *dgated, const uint16_t *attn,
                                       const float *rstd, const uint16_t *qkvu, int n_rows, int dim,
                                       cudaStream_t stream, TnError *err) {
    if (n_rows > 0)
        norm_gate_backward_kernel<<<n_rows, kThreads, 0, stream>>>(dattn, dqkvu, dgated, attn, rstd, qkvu, dim);
    return launched("norm_gate_backward_cuda", err);
}
