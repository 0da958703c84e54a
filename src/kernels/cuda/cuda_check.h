/* cuda_check.h: CUDA_CHECK for the programs that drive the GPU (the check
 * and benchmark programs; C or CUDA). A failing CUDA runtime call prints
 * file:line and CUDA's message, then exits with status 2: those programs
 * have nothing to recover, and a silent failure would pass for a result.
 * Library code returns errors through TnError instead. */
#ifndef TN_KERNELS_CUDA_CUDA_CHECK_H
#define TN_KERNELS_CUDA_CUDA_CHECK_H

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t status_ = (call);                                                              \
        if (status_ != cudaSuccess) {                                                              \
            fprintf(stderr, "%s:%d: CUDA: %s\n", __FILE__, __LINE__, cudaGetErrorString(status_)); \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

#endif
