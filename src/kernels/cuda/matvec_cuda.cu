/* matvec_cuda.cu: the linear layers of a decode step, a few rows at a time.
 *
 * At batch 1 to 8 a product reads its weight matrix once and does two FLOPs
 * per weight and row: it is bound by memory bandwidth, and a GEMM's tiles
 * would be mostly padding. Each warp owns one output feature at a time,
 * streams its weight row in 16-byte vectors (8 bf16) spread over the 32
 * lanes, dots it with every input row (the inputs are small and stay in
 * L1/L2), reduces across the warp with shuffles, and lane r writes row r.
 * The gated form reads two weight rows (SGLU's W1 and W2) and writes the
 * product of the two dot products (Eq. 5), one launch instead of three.
 */
#include "kernels/cuda/matmul_cuda.h"

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kWarps = 8; /* per block, one output feature each at a time */

/* sum over 8 lanes of a . b, both 8 bf16 in a 16-byte vector */
__device__ __forceinline__ float dot8(const uint4 &a, const uint4 &b) {
    const __nv_bfloat162 *x = reinterpret_cast<const __nv_bfloat162 *>(&a);
    const __nv_bfloat162 *y = reinterpret_cast<const __nv_bfloat162 *>(&b);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 fx = __bfloat1622float2(x[i]), fy = __bfloat1622float2(y[i]);
        sum += fx.x * fy.x + fx.y * fy.y;
    }
    return sum;
}

struct MatvecArgs {
    void *out;
    TnCudaFloat out_type;
    float beta;
    const uint16_t *inp, *weight, *weight2; /* weight2: SGLU's W2 (GATED) */
    int n_rows, in_dim, out_dim;
};

/* ROWS: the largest row count this instance handles (rows >= n_rows idle). */
template <int ROWS, bool GATED>
__global__ void __launch_bounds__(kWarps * 32) matvec_kernel(MatvecArgs a) {
    int lane = threadIdx.x % 32, vectors = a.in_dim / 8;
    const uint4 *inp = reinterpret_cast<const uint4 *>(a.inp);
    for (int o = blockIdx.x * kWarps + threadIdx.x / 32; o < a.out_dim; o += gridDim.x * kWarps) {
        const uint4 *w = reinterpret_cast<const uint4 *>(a.weight) + (size_t)o * vectors;
        const uint4 *w2 = GATED ? reinterpret_cast<const uint4 *>(a.weight2) + (size_t)o * vectors : nullptr;
        float acc[ROWS], acc2[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; r++) acc[r] = acc2[r] = 0.0f;
#pragma unroll 4
        for (int v = lane; v < vectors; v += 32) {
            uint4 weights = __ldcs(w + v); /* read once: do not keep it in the caches */
            uint4 weights2 = GATED ? __ldcs(w2 + v) : weights;
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                if (r >= a.n_rows) break;
                uint4 x = __ldg(inp + (size_t)r * vectors + v);
                acc[r] += dot8(weights, x);
                if (GATED) acc2[r] += dot8(weights2, x);
            }
        }
        float sums[ROWS]; /* every lane reduces every row; then lane r writes row r */
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            sums[r] = r < a.n_rows ? warp_sum(acc[r]) : 0.0f;
            if (GATED && r < a.n_rows) sums[r] *= warp_sum(acc2[r]);
        }
#pragma unroll
        for (int r = 0; r < ROWS; r++) {
            if (r >= a.n_rows || lane != r) continue;
            float sum = sums[r];
            size_t index = (size_t)r * a.out_dim + o;
            if (a.out_type == TN_CUDA_BF16) {
                store_bf16(static_cast<uint16_t *>(a.out), index, sum);
            } else {
                float *out = static_cast<float *>(a.out);
                out[index] = a.beta != 0.0f ? sum + a.beta * out[index] : sum;
            }
        }
    }
}

template <bool GATED>
int launch(const char *function, const MatvecArgs &a, cudaStream_t stream, TnError *err) {
    if (a.n_rows < 1 || a.n_rows > TN_MATVEC_MAX_ROWS || a.in_dim % 8 || a.out_dim < 1)
        return tn_fail(err, "%s: %d rows of width %d (need 1 to %d rows, a width that is a multiple of 8)", function,
                       a.n_rows, a.in_dim, TN_MATVEC_MAX_ROWS);
    const void *vectors[3] = {a.inp, a.weight, GATED ? a.weight2 : a.weight};
    for (int i = 0; i < 3; i++)
        if ((uintptr_t)vectors[i] % 16)
            return tn_fail(err, "%s: operand %d is not 16-byte aligned", function, i + 1);
    unsigned blocks = (unsigned)((a.out_dim + kWarps - 1) / kWarps);
    if (a.n_rows == 1) matvec_kernel<1, GATED><<<blocks, kWarps * 32, 0, stream>>>(a);
    else if (a.n_rows == 2) matvec_kernel<2, GATED><<<blocks, kWarps * 32, 0, stream>>>(a);
    else if (a.n_rows <= 4) matvec_kernel<4, GATED><<<blocks, kWarps * 32, 0, stream>>>(a);
    else matvec_kernel<TN_MATVEC_MAX_ROWS, GATED><<<blocks, kWarps * 32, 0, stream>>>(a);
    return launched(function, err);
}

} // namespace

extern "C" int matvec_forward_cuda(void *out, TnCudaFloat out_type, float beta, const uint16_t *inp,
                                   const uint16_t *weight, int n_rows, int in_dim, int out_dim, cudaStream_t stream,
                                   TnError *err) {
    MatvecArgs a{out, out_type, beta, inp, weight, nullptr, n_rows, in_dim, out_dim};
    return launch<false>("matvec_forward_cuda", a, stream, err);
}

extern "C" int matvec_glu_forward_cuda(uint16_t *out, const uint16_t *inp, const uint16_t *weight1,
                                       const uint16_t *weight2, int n_rows, int in_dim, int out_dim,
                                       cudaStream_t stream, TnError *err) {
    MatvecArgs a{out, TN_CUDA_BF16, 0.0f, inp, weight1, weight2, n_rows, in_dim, out_dim};
    return launch<true>("matvec_glu_forward_cuda", a, stream, err);
}
