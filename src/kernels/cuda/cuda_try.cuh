/* cuda_try.cuh: error handling and buffer layout shared by the CUDA library
 * code that drives the kernels (the training step, the inference session;
 * CUDA C++ only).
 *
 * CUDA_TRY(call) returns -1 from the enclosing function with err naming the
 * call and CUDA's message; TRY(call) returns -1 when a launcher or cuBLAS
 * wrapper that already filled err failed. Both need a `TnError *err` in
 * scope. DeviceArena lays buffers out in one allocation: with base NULL it
 * only measures, so the same code sizes and then places them.
 */
#ifndef TN_KERNELS_CUDA_CUDA_TRY_CUH
#define TN_KERNELS_CUDA_CUDA_TRY_CUH

#include <cuda_runtime.h>
#include <stddef.h>

extern "C" {
#include "util/error.h"
}

#define CUDA_TRY(call)                                                                                  \
    do {                                                                                                \
        cudaError_t status_ = (call);                                                                   \
        if (status_ != cudaSuccess) return tn_fail(err, "%s: CUDA: %s", #call, cudaGetErrorString(status_)); \
    } while (0)

#define TRY(call)                  \
    do {                           \
        if ((call) != 0) return -1; \
    } while (0)

/* Every buffer starts on a 256-byte boundary (the attention kernels need
 * 16 bytes, their states 32). */
struct DeviceArena {
    char *base;
    size_t used;
    /* nullptr for count 0: an empty buffer must not alias the next one */
    template <typename T> T *take(size_t count) {
        T *p = base && count ? reinterpret_cast<T *>(base + used) : nullptr;
        used += (count * sizeof(T) + 255) / 256 * 256;
        return p;
    }
};

#endif
