/* rope_cuda.h: rotary position embedding (RoPE) of the Transformer baseline
 * on the GPU, the CUDA twin of kernels/cpu/rope.h (same "rotate half"
 * convention, same argument order). Per head of even width d, for c < d/2
 * and position p = row % seq_len, with angle a = p * base^(-2c/d):
 *   y[c]       = x[c] cos a - x[c + d/2] sin a
 *   y[c + d/2] = x[c + d/2] cos a + x[c] sin a
 * The angle and its sine and cosine are computed in double (p times a
 * frequency loses digits in fp32), the rotation in fp32; tensors are bf16.
 * Input rows have stride ld_in (views into the fused [q k v] rows); output
 * rows are (H * d) contiguous. Device memory; queued on `stream`; nothing
 * allocated. Return 0, or -1 with err on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_ROPE_CUDA_H
#define TN_KERNELS_CUDA_ROPE_CUDA_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

int rope_forward_cuda(uint16_t *out, const uint16_t *inp, int ld_in, int n_rows, int seq_len, int n_heads,
                      int head_dim, double base, cudaStream_t stream, TnError *err);

/* Backward: the inverse rotation (angle -a) of dout (rows H * d), written
 * into dinp (stride ld_in), overwriting its first H * d columns. */
int rope_backward_cuda(uint16_t *dinp, int ld_in, const uint16_t *dout, int n_rows, int seq_len, int n_heads,
                       int head_dim, double base, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
