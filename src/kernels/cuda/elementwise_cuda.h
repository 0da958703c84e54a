/* elementwise_cuda.h: the model's pointwise steps on the GPU: the embedding
 * lookup and its scatter-add, the APE table's add (pe = ape) and its
 * gradient, the SGLU product with the glu_act switch (Eq. 5) and the
 * fp32 -> bf16 copy that feeds the matrix products. The CUDA twins of
 * kernels/cpu/embedding.h and pointwise.h, same formulas (the activations
 * of kernels/cpu/activation.h) and argument order. Device memory; queued on
 * `stream`; nothing allocated. The SGLU and conversion kernels move 16
 * bytes per access where the shapes and pointers allow (device_common.cuh's
 * vector_width). Return 0, or -1 with err on a CUDA error.
 */
#ifndef TN_KERNELS_CUDA_ELEMENTWISE_CUDA_H
#define TN_KERNELS_CUDA_ELEMENTWISE_CUDA_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "model/config.h"
#include "util/error.h"

/* out[r] = scale * embed[tokens[r]] (fp32; ids already checked < V). */
int embedding_forward_cuda(float *out, const int32_t *tokens, const float *embed, int n_rows, int dim, float scale,
                           cudaStream_t stream, TnError *err);
/* The same from a bf16 table (the inference session keeps only the bf16 copy). */
int embedding_forward_bf16_cuda(float *out, const int32_t *tokens, const uint16_t *embed, int n_rows, int dim,
                                float scale, cudaStream_t stream, TnError *err);

/* dembed[tokens[r]] += scale * dout[r] for the rows of the n_groups groups
 * of groups (device, model/token_groups.h's layout for n_rows rows: the
 * padding token's rows left out, as nn.Embedding(padding_idx)). One thread
 * per table element adds its group's rows in ascending order, as
 * embedding_backward_cpu: no atomics, the same bits on every run. */
int embedding_backward_cuda(float *dembed, const float *dout, const int32_t *groups, int n_groups, int n_rows,
                            int dim, float scale, cudaStream_t stream, TnError *err);

/* out[r] += positions[r % seq_len] (fp32, rows of dim): the learned
 * absolute position of pe = ape, added after embedding_forward_cuda
 * (embedding_forward_cpu does both in one loop). */
int positions_forward_cuda(float *out, const float *positions, int n_rows, int seq_len, int dim, cudaStream_t stream,
                           TnError *err);

/* dpositions[t] += sum of dout over the rows at position t (fp32); one
 * thread per element of the table, so no atomics and a fixed order. */
int positions_backward_cuda(float *dpositions, const float *dout, int n_rows, int seq_len, int dim,
                            cudaStream_t stream, TnError *err);

/* out = act(a) ⊙ b over n_rows x cols bf16 elements: out dense (row stride
 * cols), a and b rows of stride ld (W1 x and W2 x side by side in one
 * product's rows, or apart with ld = cols). */
int glu_forward_cuda(uint16_t *out, const uint16_t *a, const uint16_t *b, int ld, TnActivation act, int n_rows,
                     int cols, cudaStream_t stream, TnError *err);

/* da = dout ⊙ b ⊙ act'(a), db = dout ⊙ act(a) (bf16, overwritten; da, db,
 * a, b rows of stride ld); dout bf16, dense. */
int glu_backward_cuda(uint16_t *da, uint16_t *db, int ld, const uint16_t *dout, const uint16_t *a, const uint16_t *b,
                      TnActivation act, int n_rows, int cols, cudaStream_t stream, TnError *err);

/* out (bf16) = inp (fp32), n elements, round to nearest even. */
int convert_to_bf16_cuda(uint16_t *out, const float *inp, size_t n, cudaStream_t stream, TnError *err);

/* Zeroes n_runs runs of base in one launch (where a memset each would be
 * a launch each): runs (device) holds n_runs (begin, count) pairs in
 * floats, the longest count `longest`; n_runs at most 65535. */
int clear_runs_cuda(float *base, const size_t *runs, int n_runs, size_t longest, cudaStream_t stream, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
