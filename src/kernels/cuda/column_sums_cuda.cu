#include "kernels/cuda/column_sums_cuda.h"

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kColumns = 32; /* per block: one warp reads 32 adjacent floats of a partials row */
constexpr int kLanes = 8;    /* threads per column, each summing every kLanes-th partial */

__global__ void column_sums_kernel(float *dst, const float *partials, int n_partials, int n_cols) {
    __shared__ float lane_sums[kLanes][kColumns];
    int c = blockIdx.x * kColumns + threadIdx.x;
    float sum = 0.0f;
    if (c < n_cols) {
        /* unrolled so that several loads are in flight; the additions keep their order */
#pragma unroll 8
        for (int p = threadIdx.y; p < n_partials; p += kLanes) sum += partials[(size_t)p * n_cols + c];
    }
    lane_sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y != 0 || c >= n_cols) return;
    for (int lane = 1; lane < kLanes; lane++) sum += lane_sums[lane][threadIdx.x];
    dst[c] += sum;
}

} // namespace

extern "C" int column_sums_cuda(float *dst, const float *partials, int n_partials, int n_cols, cudaStream_t stream,
                                TnError *err) {
    if (n_cols > 0 && n_partials > 0)
        column_sums_kernel<<<(n_cols + kColumns - 1) / kColumns, dim3(kColumns, kLanes), 0, stream>>>(
            dst, partials, n_partials, n_cols);
    return launched("column_sums_cuda", err);
}
