#include "kernels/cuda/crossentropy_cuda.h"

extern "C" {
#include "kernels/cpu/crossentropy.h"
}

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 512;
constexpr int kIgnoreIndex = TN_IGNORE_INDEX;

/* logsumexp of row `row` (V logits from element row * V), VEC logits per
 * access (VEC divides V), for every thread of the block: an online softmax,
 * a running max m and sum s of exp(z - m) per thread rescaled once per VEC
 * logits, then the block's. */
template <int VEC>
__device__ float row_log_sum(const uint16_t *logits, size_t row, int vocab_size, float *shared) {
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
    return block_m + logf(total);
}

/* dlogits of row `row` = scale (exp(z - log_sum) - onehot(target)), 0 for
 * an ignored target; dlogits may be logits. */
template <int VEC>
__device__ void write_row_gradient(uint16_t *dlogits, const uint16_t *logits, size_t row, int vocab_size,
                                   int target, float log_sum, float scale) {
    float z[VEC];
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

/* One block per row. GRADIENT: the fused pass, which also writes the
 * row's gradient over it (read again right after the first read, from
 * the L2 cache) and keeps no lse. */
template <int VEC, bool GRADIENT>
__global__ void crossentropy_forward_kernel(float *losses, float *lse, uint16_t *logits, const int32_t *targets,
                                            int vocab_size, float scale) {
    __shared__ float shared[32];
    int target = targets[blockIdx.x];
    size_t row = (size_t)blockIdx.x * vocab_size;
    if (target == kIgnoreIndex) {
        if (threadIdx.x == 0) losses[blockIdx.x] = 0.0f;
        if (threadIdx.x == 0 && !GRADIENT) lse[blockIdx.x] = 0.0f;
        if (GRADIENT) write_row_gradient<VEC>(logits, logits, row, vocab_size, target, 0.0f, scale);
        return;
    }
    float log_sum = row_log_sum<VEC>(logits, row, vocab_size, shared);
    if (threadIdx.x == 0) {
        if (!GRADIENT) lse[blockIdx.x] = log_sum;
        losses[blockIdx.x] = log_sum - load_bf16(logits, row + target);
    }
    if (!GRADIENT) return;
    __syncthreads(); /* thread 0 read the target's logit before any thread overwrites it */
    write_row_gradient<VEC>(logits, logits, row, vocab_size, target, log_sum, scale);
}

template <int VEC>
__global__ void crossentropy_backward_kernel(uint16_t *dlogits, const uint16_t *logits, const float *lse,
                                             const int32_t *targets, int vocab_size, float scale) {
    size_t row = (size_t)blockIdx.x * vocab_size;
    write_row_gradient<VEC>(dlogits, logits, row, vocab_size, targets[blockIdx.x], lse[blockIdx.x], scale);
}

} // namespace

/* The forward, or with GRADIENT the fused pass (lse NULL). */
template <bool GRADIENT>
static void launch_forward(float *losses, float *lse, uint16_t *logits, const int32_t *targets, int n_rows,
                           int vocab_size, float scale, cudaStream_t stream) {
    if (vector_width({vocab_size}, {logits}) == 8)
        crossentropy_forward_kernel<8, GRADIENT><<<n_rows, kThreads, 0, stream>>>(losses, lse, logits, targets,
                                                                                 vocab_size, scale);
    else
        crossentropy_forward_kernel<1, GRADIENT><<<n_rows, kThreads, 0, stream>>>(losses, lse, logits, targets,
                                                                                 vocab_size, scale);
}

extern "C" int crossentropy_forward_cuda(float *losses, float *lse, const uint16_t *logits, const int32_t *targets,
                                         int n_rows, int vocab_size, cudaStream_t stream, TnError *err) {
    if (n_rows <= 0) return 0;
    /* without the gradient the kernel only reads the logits */
    launch_forward<false>(losses, lse, const_cast<uint16_t *>(logits), targets, n_rows, vocab_size, 0.0f, stream);
    return launched("crossentropy_forward_cuda", err);
}

extern "C" int crossentropy_fused_cuda(float *losses, uint16_t *logits, const int32_t *targets, int n_rows,
                                       int vocab_size, float scale, cudaStream_t stream, TnError *err) {
    if (n_rows <= 0) return 0;
    launch_forward<true>(losses, nullptr, logits, targets, n_rows, vocab_size, scale, stream);
    return launched("crossentropy_fused_cuda", err);
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
