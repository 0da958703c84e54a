/* embedding.h: the token embedding (and the APE table of pe = ape) and
 * their backward passes. Row r of the batch is token x_r at position
 * t = r % seq_len. */
#ifndef TN_KERNELS_CPU_EMBEDDING_H
#define TN_KERNELS_CPU_EMBEDDING_H

#include <stdint.h>

/* out[r] = scale * embed[x_r] (+ positions[t] when positions is not NULL). */
void embedding_forward_cpu(float *out, const int32_t *tokens, const float *embed, const float *positions,
                           int n_rows, int seq_len, int dim, float scale);

/* dpositions[t] += dout[r] over the rows at position t. */
void positions_backward_cpu(float *dpositions, const float *dout, int n_rows, int seq_len, int dim);

/* dembed[x_r] += scale * dout[r], except for the padding token, whose row
 * nn.Embedding(padding_idx) never updates through the lookup. */
void embedding_backward_cpu(float *dembed, const float *dout, const int32_t *tokens, int n_rows, int dim,
                            float scale, int32_t padding);

#endif
