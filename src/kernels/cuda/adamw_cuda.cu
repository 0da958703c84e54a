#include "kernels/cuda/adamw_cuda.h"

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 512;

/* Block b's fp32 sum of squares over the VEC-element groups b kThreads + i
 * (grid-stride, 16-byte loads where VEC is 8: scalar loads reached 2.6 TB/s
 * on an H200, these 4.5), block 0 also taking the n % VEC tail: the grid
 * depends on n and on grads' 16-byte alignment alone (fixed by the layout),
 * so each partial does too. */
template <int VEC> __global__ void grad_squares_partials_kernel(double *partials, const float *grads, size_t n) {
    __shared__ float shared[32];
    float even = 0.0f, odd = 0.0f; /* two chains: a group's adds do not wait on each other */
    size_t groups = n / VEC;
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < groups; j += (size_t)gridDim.x * blockDim.x) {
        float x[VEC];
        load_vec<VEC>(grads, j * VEC, x);
#pragma unroll
        for (int k = 0; k < VEC; k++) (k % 2 ? odd : even) += x[k] * x[k];
    }
    if (blockIdx.x == 0)
        for (size_t i = groups * VEC + threadIdx.x; i < n; i += blockDim.x) even += grads[i] * grads[i];
    float sum = block_sum(even + odd, shared);
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

struct AdamwArgs {
    float *params;
    uint16_t *params_bf16;
    const float *grads;
    float *m, *v;
    size_t n;
    const TnAdamwSegment *segments;
    int n_segments;
    float lr, beta1, beta2, eps, weight_decay, correction1, correction2;
    const double *sum_squares;
    double max_norm;
};

/* tn_grad_clip's factor, from the device's sum of squares. */
__device__ float clip_scale(const AdamwArgs &a) {
    if (!a.sum_squares) return 1.0f;
    double norm = sqrt(*a.sum_squares);
    return a.max_norm > 0 && norm > a.max_norm ? (float)(a.max_norm / norm) : 1.0f;
}

/* The segment holding element i: the first whose end is past i. */
__device__ int segment_of(const AdamwArgs &a, size_t i) {
    int low = 0, high = a.n_segments - 1;
    while (low < high) {
        int middle = (low + high) / 2;
        if (a.segments[middle].end > i) high = middle;
        else low = middle + 1;
    }
    return low;
}

/* Element arithmetic of tn_adamw_update_range after tn_grad_clip's scaling,
 * each operation rounded as written (the _rn intrinsics are never fused
 * into an FMA): the compiler contracted p's update differently in the
 * 8-per-access loop and the one-per-access one (check_model, H200: the two
 * paths' parameters differed in the last bits), and the CPU's C11 code
 * rounds every operation too. */
__device__ __forceinline__ void adamw_element(const AdamwArgs &a, float grad_scale, float decay, float &p, float grad,
                                              float &m, float &v) {
    float g = __fmul_rn(grad_scale, grad);
    m = __fadd_rn(__fmul_rn(a.beta1, m), __fmul_rn(1.0f - a.beta1, g));
    v = __fadd_rn(__fmul_rn(a.beta2, v), __fmul_rn(__fmul_rn(1.0f - a.beta2, g), g));
    float step = __fdiv_rn(__fdiv_rn(m, a.correction1), __fadd_rn(__fsqrt_rn(__fdiv_rn(v, a.correction2)), a.eps));
    p = __fsub_rn(p, __fmul_rn(a.lr, __fadd_rn(step, __fmul_rn(decay, p))));
}

/* The groups of VEC elements in a grid-stride walk (all blocks sweep the
 * buffer together: 1.15x the bandwidth of one contiguous chunk per block,
 * H200), so each thread's elements ascend and its segment only moves
 * forward; a group inside one segment takes that segment's decay once. The
 * last block also takes the n % VEC tail. */
template <int VEC> __global__ void adamw_update_kernel(AdamwArgs a) {
    float grad_scale = clip_scale(a);
    size_t groups = a.n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    int segment = j < groups ? segment_of(a, j * VEC) : 0;
    for (; j < groups; j += stride) {
        size_t i = j * VEC;
        float p[VEC], g[VEC], m[VEC], v[VEC];
        load_vec<VEC>(a.params, i, p);
        load_vec<VEC>(a.grads, i, g);
        load_vec<VEC>(a.m, i, m);
        load_vec<VEC>(a.v, i, v);
        while (i >= a.segments[segment].end && segment + 1 < a.n_segments) segment++;
        if (i + VEC <= a.segments[segment].end) {
            float decay = a.segments[segment].decays ? a.weight_decay : 0.0f;
#pragma unroll
            for (int k = 0; k < VEC; k++) adamw_element(a, grad_scale, decay, p[k], g[k], m[k], v[k]);
        } else {
            for (int k = 0; k < VEC; k++) {
                int s = segment_of(a, i + k);
                adamw_element(a, grad_scale, a.segments[s].decays ? a.weight_decay : 0.0f, p[k], g[k], m[k], v[k]);
            }
        }
        store_vec<VEC>(a.params, i, p);
        store_vec<VEC>(a.m, i, m);
        store_vec<VEC>(a.v, i, v);
        if (a.params_bf16) store_vec<VEC>(a.params_bf16, i, p);
    }
    if (blockIdx.x + 1 != gridDim.x) return;
    for (size_t i = groups * VEC + threadIdx.x; i < a.n; i += blockDim.x) {
        float decay = a.segments[segment_of(a, i)].decays ? a.weight_decay : 0.0f;
        adamw_element(a, grad_scale, decay, a.params[i], a.grads[i], a.m[i], a.v[i]);
        if (a.params_bf16) store_bf16(a.params_bf16, i, a.params[i]);
    }
}

/* Blocks of the update: enough chunks to fill the GPU several times over. */
constexpr unsigned kUpdateBlocks = 4096;

} // namespace

extern "C" int grad_sum_squares_cuda(double *sum_squares, double *partials, const float *grads, size_t n,
                                     cudaStream_t stream, TnError *err) {
    /* a few blocks per SM: enough to stream the buffer */
    int vec = vector_width({}, {grads});
    unsigned blocks = blocks_for(n / vec, kThreads);
    blocks = blocks < 1 ? 1 : blocks > TN_GRAD_SQUARES_PARTIALS ? TN_GRAD_SQUARES_PARTIALS : blocks;
    if (n && vec == 8) grad_squares_partials_kernel<8><<<blocks, kThreads, 0, stream>>>(partials, grads, n);
    else if (n) grad_squares_partials_kernel<1><<<blocks, kThreads, 0, stream>>>(partials, grads, n);
    grad_squares_total_kernel<<<1, kThreads, 0, stream>>>(sum_squares, partials, n ? (int)blocks : 0);
    return launched("grad_sum_squares_cuda", err);
}

extern "C" int adamw_update_cuda(float *params, uint16_t *params_bf16, const float *grads, float *m, float *v,
                                 size_t n, const TnAdamwSegment *segments, int n_segments, float lr, float beta1,
                                 float beta2, float eps, float weight_decay, float correction1, float correction2,
                                 const double *sum_squares, double max_norm, cudaStream_t stream, TnError *err) {
    if (!n) return 0;
    if (n_segments < 1) return tn_fail(err, "adamw_update_cuda: no segments for %zu elements", n);
    AdamwArgs a{params, params_bf16, grads, m, v, n, segments, n_segments, lr, beta1, beta2, eps, weight_decay,
                correction1, correction2, sum_squares, max_norm};
    int vec = vector_width({}, {params, params_bf16, grads, m, v});
    unsigned blocks = blocks_for(n / vec, kThreads);
    blocks = blocks < 1 ? 1 : blocks > kUpdateBlocks ? kUpdateBlocks : blocks;
    if (vec == 8) adamw_update_kernel<8><<<blocks, kThreads, 0, stream>>>(a);
    else adamw_update_kernel<1><<<blocks, kThreads, 0, stream>>>(a);
    return launched("adamw_update_cuda", err);
}
