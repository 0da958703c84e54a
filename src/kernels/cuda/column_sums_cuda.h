/* column_sums_cuda.h: the second pass of the deterministic reductions of the
 * GPU backward (the norms' gains and biases, LRPE's theta).
 *
 * A kernel that sums a parameter's gradient over many rows lets each block
 * write its partial sums, one row of a (n_partials, n_cols) matrix, instead
 * of adding them with atomics (whose order, hence the last bits, varies run
 * to run); this pass then adds the partials of each column in a fixed order,
 * so the same inputs give the same bits on every run (step_device.h's
 * bit-identical resumes). Device memory; queued on `stream`; nothing
 * allocated. Returns 0, or -1 with err on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_COLUMN_SUMS_CUDA_H
#define TN_KERNELS_CUDA_COLUMN_SUMS_CUDA_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

/* dst[c] += sum over p of partials[p n_cols + c], c < n_cols (fp32). */
int column_sums_cuda(float *dst, const float *partials, int n_partials, int n_cols, cudaStream_t stream,
                     TnError *err);

#ifdef __cplusplus
}
#endif

#endif
