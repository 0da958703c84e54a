#include "kernels/cuda/crossentropy_cuda.h"

extern "C" {
#include "kernels/cpu/crossentropy.h"
}

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 512;
constexpr int kIgnoreIndex = TN_IGNORE_INDEX;

/* One block per row, VEC logits per access (VEC divides V). */
template <int VEC>
__global__ void crossentropy_forward_kernel(float *losses, float *lse, const uint16_t *logits, const int32_t *targets,
                                            int vocab_size) {
    __shared__ float shared[32];
    int target = targets[blockIdx.x];
    if (target == kIgnoreIndex) {
        if (threadIdx.x == 0) losses[blockIdx.x] = lse[blockIdx.x] = 0.0f;
        return;
    }
    size_t row = (size_t)blockIdx.x * vocab_size;
    /* online softmax: a running max m and sum s of exp(z - m) per thread,
     * rescaled once per VEC logits */
    float m = -INFINITY, s = 0.0f, z[VEC];
    for (int i = VEC * threadIdx.x; i < vocab_size; i += VEC * blockDim.x) {
        load_vec<VEC>(logits, row + i, z);
        float top = z[0];
#pragma unroll
        for (int k = 1; k < VEC; k++) top = fmaxf(top, z[k]);
        if (top > m) {
            s = m == -INFINITY ? 0.0f : s * __expf(m - top);
            m = top;
        }
#pragma unroll
        for (int k = 0; k < VEC; k++) s += __expf(z[k] - m);
    }
    float block_m = block_max(m, shared);
    float total = block_sum(m == -INFINITY ? 0.0f : s * __expf(m - block_m), shared);
    if (threadIdx.x == 0) {
        float log_sum = block_m + logf(total);
        lse[blockIdx.x] = log_sum;
        losses[blockIdx.x] = log_sum - load_bf16(logits, row + target);
    }
}

template <int VEC>
__global__ void crossentropy_backward_kernel(uint16_t *dlogits, const uint16_t *logits, const float *lse,
                                             const int32_t *targets, int vocab_size, float scale) {
    int target = targets[blockIdx.x];
    size_t row = (size_t)blockIdx.x * vocab_size;
    float log_sum = lse[blockIdx.x], z[VEC];
    for (int i = VEC * threadIdx.x; i < vocab_size; i += VEC * blockDim.x) {
        load_vec<VEC>(logits, row + i, z);
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            float onehot = i + k == target ? 1.0f : 0.0f;
            z[k] = target == kIgnoreIndex ? 0.0f : scale * (__expf(z[k] - log_sum) - onehot);
        }
        store_vec<VEC>(dlogits, row + i, z);
    }
}

} // namespace

extern "C" int crossentropy_forward_cuda(float *losses, float *lse, const uint16_t *logits, const int32_t *targets,
                                         int n_rows, int vocab_size, cudaStream_t stream, TnError *err) {
    if (n_rows <= 0) return 0;
    if (vector_width({vocab_size}, {logits}) == 8)
        crossentropy_forward_kernel<8><<<n_rows, kThreads, 0, stream>>>(losses, lse, logits, targets, vocab_size);
    else
        crossentropy_forward_kernel<1><<<n_rows, kThreads, 0, stream>>>(losses, lse, logits, targets, vocab_size);
    return launched("crossentropy_forward_cuda", err);
}

extern "C" int crossentropy_backward_cuda(uint16_t *dlogits, const uint16_t *logits, const float *lse,
                                          const int32_t *targets, int n_rows, int vocab_size, float scale,
                                          cudaStream_t stream, TnError *err) {
    if (n_rows <= 0) return 0;
    if (vector_width({vocab_size}, {dlogits, logits}) == 8)
        crossentropy_backward_kernel<8><<<n_rows, kThreads, 0, stream>>>(dlogits, logits, lse, targets, vocab_size,
                                                                         scale);
    else
        crossentropy_backward_kernel<1><<<n_rows, kThreads, 0, stream>>>(dlogits, logits, lse, targets, vocab_size,
                                                                         scale);
    return launched("crossentropy_backward_cuda", err);
}
