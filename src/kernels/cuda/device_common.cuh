/* device_common.cuh: helpers shared by the model's CUDA kernels (CUDA only).
 *
 * bf16 tensors cross the C interface as uint16_t bit patterns; these load
 * and store them as __nv_bfloat16 (round to nearest even). block_sum reduces
 * one float or double over a block of up to 1024 threads (a multiple of 32)
 * and gives every thread the total, adding in an order fixed by the block's
 * shape (so the same inputs give the same bits on every run). launched turns the last launch's status into the
 * project's -1 + TnError convention, naming the function.
 */
#ifndef TN_KERNELS_CUDA_DEVICE_COMMON_CUH
#define TN_KERNELS_CUDA_DEVICE_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" { /* the project's C headers carry no C++ guards of their own */
#include "util/error.h"
}

namespace tn_model_kernels {

__device__ __forceinline__ float load_bf16(const uint16_t *p, size_t i) {
    return __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p)[i]);
}

__device__ __forceinline__ void store_bf16(uint16_t *p, size_t i, float x) {
    reinterpret_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(x);
}

/* Element i of an fp32 or a bf16 tensor as a float (for kernels templated on
 * their input's precision). */
__device__ __forceinline__ float load_float(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float load_float(const uint16_t *p, size_t i) { return load_bf16(p, i); }

template <typename T> __device__ __forceinline__ T warp_sum(T x) {
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

/* Every thread of the block calls it; shared holds 32 values. */
template <typename T> __device__ __forceinline__ T block_sum(T x, T *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    x = warp_sum(x);
    __syncthreads(); /* shared may still be read by a previous call */
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    x = lane < warps ? shared[lane] : T(0);
    return warp_sum(x);
}

__device__ __forceinline__ float block_max(float x, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    __syncthreads();
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    x = lane < warps ? shared[lane] : -INFINITY;
    for (int offset = 16; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

static inline int launched(const char *function, TnError *err) {
    cudaError_t status = cudaGetLastError();
    if (status == cudaSuccess) return 0;
    return tn_fail(err, "%s: CUDA: %s", function, cudaGetErrorString(status));
}

static inline unsigned blocks_for(size_t n, unsigned threads) {
    size_t blocks = (n + threads - 1) / threads;
    return (unsigned)(blocks < 65535u * 16u ? blocks : 65535u * 16u);
}

} // namespace tn_model_kernels

#endif
