/* softmax_attention.h: causal softmax attention of the Transformer
 * baseline, per sequence b and head h:
 *   o_t = sum_{s <= t} p_ts v_s,  p_ts = softmax_s(q_t . k_s / sqrt(d))
 * The naive O(n^2) form (a reference and CPU baseline, not a fast kernel):
 * nothing of size n^2 is stored; the backward pass recomputes p row by row.
 *
 * Layout: token t of sequence b is row b * seq_len + t; q, k and o rows are
 * (H * d) contiguous, v rows have stride ldv (a view into the fused
 * [q k v] rows). scratch holds softmax_attention_scratch_floats() floats.
 */
#ifndef TN_KERNELS_CPU_SOFTMAX_ATTENTION_H
#define TN_KERNELS_CPU_SOFTMAX_ATTENTION_H

#include <stddef.h>

/* Scratch of one forward or backward call with up to `threads` threads. */
size_t softmax_attention_scratch_floats(int seq_len, int threads);

void softmax_attention_forward_cpu(float *o, const float *q, const float *k, const float *v, int ldv, int batch,
                                   int seq_len, int n_heads, int head_dim, float *scratch);

/* The same attention for n_rows new rows of one sequence against a KV
 * cache (KV-cache decoding): row r of q, at position first_position + r,
 * attends to cache rows 0 .. first_position + r of k_cache and v_cache
 * (rows H * d, the new rows already written). scratch holds
 * softmax_attention_scratch_floats(first_position + n_rows, threads). */
void softmax_attention_cached_forward_cpu(float *o, const float *q, const float *k_cache, const float *v_cache,
                                          int n_rows, int first_position, int n_heads, int head_dim, float *scratch);
/* Backward from dout (rows H * d): writes dq, dk (rows H * d) and dv
 * (stride ldv), overwriting them. With dP_ts = dout_t . v_s:
 *   dS_ts = p_ts (dP_ts - sum_s' p_ts' dP_ts') / sqrt(d)
 *   dq_t = sum_s dS_ts k_s,  dk_s = sum_t dS_ts q_t,  dv_s = sum_t p_ts dout_t */
void softmax_attention_backward_cpu(float *dq, float *dk, float *dv, int ldv, const float *dout, const float *q,
                                    const float *k, const float *v, int batch, int seq_len, int n_heads, int head_dim,
                                    float *scratch);

#endif
