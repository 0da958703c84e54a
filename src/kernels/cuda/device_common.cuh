/* device_common.cuh: helpers shared by the model's CUDA kernels (CUDA only).
 *
 * bf16 tensors cross the C interface as uint16_t bit patterns; these load
 * and store them as __nv_bfloat16 (round to nearest even); load_vec and
 * store_vec move VEC adjacent elements of either type 16 bytes at a time,
 * and vector_width tells the host when a launch may use them. block_sum reduces
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

#include <initializer_list>

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

/* VEC adjacent elements from i (a multiple of VEC) as floats, and back. With
 * VEC a multiple of 8 (bf16) or 4 (fp32) each access is 16 bytes wide, so
 * the tensor's base must be 16-byte aligned (host side: aligned16); with
 * VEC 1 any tensor does. The bandwidth-bound kernels are templated on VEC
 * and launched with 8 where the shapes and pointers allow (vector_width). */
template <int VEC> __device__ __forceinline__ void load_vec(const float *p, size_t i, float *x) {
    if constexpr (VEC % 4 == 0) {
#pragma unroll
        for (int k = 0; k < VEC; k += 4) {
            float4 v = *reinterpret_cast<const float4 *>(p + i + k);
            x[k] = v.x, x[k + 1] = v.y, x[k + 2] = v.z, x[k + 3] = v.w;
        }
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) x[k] = p[i + k];
    }
}

template <int VEC> __device__ __forceinline__ void load_vec(const uint16_t *p, size_t i, float *x) {
    if constexpr (VEC % 8 == 0) {
#pragma unroll
        for (int k = 0; k < VEC; k += 8) {
            uint4 v = *reinterpret_cast<const uint4 *>(p + i + k);
            const __nv_bfloat162 *pairs = reinterpret_cast<const __nv_bfloat162 *>(&v);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                float2 f = __bfloat1622float2(pairs[j]);
                x[k + 2 * j] = f.x, x[k + 2 * j + 1] = f.y;
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) x[k] = __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(p)[i + k]);
    }
}

template <int VEC> __device__ __forceinline__ void store_vec(float *p, size_t i, const float *x) {
    if constexpr (VEC % 4 == 0) {
#pragma unroll
        for (int k = 0; k < VEC; k += 4)
            *reinterpret_cast<float4 *>(p + i + k) = make_float4(x[k], x[k + 1], x[k + 2], x[k + 3]);
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) p[i + k] = x[k];
    }
}

/* Rounds to nearest even, as store_bf16. */
template <int VEC> __device__ __forceinline__ void store_vec(uint16_t *p, size_t i, const float *x) {
    if constexpr (VEC % 8 == 0) {
#pragma unroll
        for (int k = 0; k < VEC; k += 8) {
            uint4 v;
            __nv_bfloat162 *pairs = reinterpret_cast<__nv_bfloat162 *>(&v);
#pragma unroll
            for (int j = 0; j < 4; j++) pairs[j] = __floats2bfloat162_rn(x[k + 2 * j], x[k + 2 * j + 1]);
            *reinterpret_cast<uint4 *>(p + i + k) = v;
        }
    } else {
#pragma unroll
        for (int k = 0; k < VEC; k++) reinterpret_cast<__nv_bfloat16 *>(p)[i + k] = __float2bfloat16_rn(x[k]);
    }
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

static inline bool aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

/* The widest VEC the vectorised kernels take: 8 when every count (row
 * widths, strides, lengths) is a multiple of 8 and every pointer (NULL
 * allowed) is 16-byte aligned, else 1. */
static inline int vector_width(std::initializer_list<long long> counts, std::initializer_list<const void *> pointers) {
    for (long long n : counts)
        if (n % 8) return 1;
    for (const void *p : pointers)
        if (!aligned16(p)) return 1;
    return 8;
}

/* Threads for a block that walks `vectors` per row: a multiple of 32, at most 256. */
static inline unsigned threads_for(long long vectors) {
    long long threads = (vectors + 31) / 32 * 32;
    return (unsigned)(threads < 32 ? 32 : threads > 256 ? 256 : threads);
}

/* A grid for kernels that walk rows (grid y, at most 65535: such kernels
 * loop over the rest) of cols columns, vec a thread, threads_for(cols / vec)
 * a block. */
static inline dim3 rows_grid(int n_rows, int cols, int vec) {
    unsigned threads = threads_for(cols / vec);
    return dim3((unsigned)((cols / vec + threads - 1) / threads), (unsigned)(n_rows < 65535 ? n_rows : 65535));
}

static inline unsigned blocks_for(size_t n, unsigned threads) {
    size_t blocks = (n + threads - 1) / threads;
    return (unsigned)(blocks < 65535u * 16u ? blocks : 65535u * 16u);
}

} // namespace tn_model_kernels

#endif
