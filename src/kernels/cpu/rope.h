/* rope.h: rotary position embedding (RoPE) of the Transformer baseline, in
 * LLaMA's "rotate half" convention (as HF transformers applies it, so
 * LLaMA weights mean the same here). Per head of even width d, for
 * c < d/2 and position p, with angle a = p * base^(-2c/d):
 *   y[c]       = x[c] cos a - x[c + d/2] sin a
 *   y[c + d/2] = x[c + d/2] cos a + x[c] sin a
 * Input rows have stride ld_in (views into the fused [q k v] rows); output
 * rows are (H * d) contiguous. Row r is at position r % seq_len.
 */
#ifndef TN_KERNELS_CPU_ROPE_H
#define TN_KERNELS_CPU_ROPE_H

void rope_forward_cpu(float *out, const float *inp, int ld_in, int n_rows, int seq_len, int n_heads, int head_dim,
                      double base);

/* Backward: the inverse rotation (angle -a) of dout (rows H * d), written
 * into dinp (stride ld_in), overwriting its first H * d columns. */
void rope_backward_cpu(float *dinp, int ld_in, const float *dout, int n_rows, int seq_len, int n_heads, int head_dim,
                       double base);

/* The rows of one sequence from position first_position on (row r at
 * first_position + r): the keys and queries of KV-cache decoding. */
void rope_forward_at_cpu(float *out, const float *inp, int ld_in, int n_rows, int first_position, int n_heads,
                         int head_dim, double base);
#endif
