/* elementwise_cuda.h: the model's pointwise steps on the GPU: the embedding
 * lookup and its scatter-add, the SGLU product (Eq. 5) and the fp32 -> bf16
 * copy that feeds the matrix products. The CUDA twins of the CPU model's
 * static helpers (model/transnormer.c), same formulas and argument order.
 * Device memory; queued on `stream`; nothing allocated. Return 0, or -1
 * with err on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_ELEMENTWISE_CUDA_H
#define TN_KERNELS_CUDA_ELEMENTWISE_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "util/error.h"

/* out[r] = scale * embed[tokens[r]] (fp32; ids already checked < V). */
int embedding_forward_cuda(float *out, const int32_t *tokens, const float *embed, int n_rows, int dim, float scale,
                           cudaStream_t stream, TnError *err);
/* The same from a bf16 table (the inference session keeps only the bf16 copy). */
int embedding_forward_bf16_cuda(float *out, const int32_t *tokens, const uint16_t *embed, int n_rows, int dim,
                                float scale, cudaStream_t stream, TnError *err);

/* dembed[tokens[r]] += scale * dout[r] except for the padding token (as
 * nn.Embedding(padding_idx)); atomics, so repeated tokens add up. */
int embedding_backward_cuda(float *dembed, const float *dout, const int32_t *tokens, int n_rows, int dim, float scale,
                            int32_t padding, cudaStream_t stream, TnError *err);

/* out = a ⊙ b over n bf16 elements. */
int product_forward_cuda(uint16_t *out, const uint16_t *a, const uint16_t *b, size_t n, cudaStream_t stream,
                         TnError *err);

/* da = dout ⊙ b, db = dout ⊙ a (bf16, overwritten); dout fp32. */
int product_backward_cuda(uint16_t *da, uint16_t *db, const float *dout, const uint16_t *a, const uint16_t *b, size_t n,
                          cudaStream_t stream, TnError *err);

/* out (bf16) = inp (fp32), n elements, round to nearest even. */
int convert_to_bf16_cuda(uint16_t *out, const float *inp, size_t n, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
