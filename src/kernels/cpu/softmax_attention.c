#include "kernels/cpu/softmax_attention.h"

#include <math.h>
#include <omp.h>
#include <string.h>

size_t softmax_attention_scratch_floats(int seq_len, int threads) { return (size_t)2 * seq_len * threads; }

/* p[0..t] = softmax of the scaled scores of query row q against keys 0..t
 * of one head (k rows of stride ld, already offset to the head). */
static void probabilities(float *p, const float *q, const float *k, int ld, int t, int head_dim, float scale) {
    float max = -INFINITY;
    for (int s = 0; s <= t; s++) {
        const float *ks = k + (long)s * ld;
        float dot = 0.0f;
        for (int c = 0; c < head_dim; c++) dot += q[c] * ks[c];
        p[s] = dot * scale;
        max = p[s] > max ? p[s] : max;
    }
    float sum = 0.0f;
    for (int s = 0; s <= t; s++) sum += (p[s] = expf(p[s] - max));
    for (int s = 0; s <= t; s++) p[s] /= sum;
}

void softmax_attention_forward_cpu(float *o, const float *q, const float *k, const float *v, int ldv, int batch,
                                   int seq_len, int n_heads, int head_dim, float *scratch) {
    int ld = n_heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < batch; b++)
        for (int h = 0; h < n_heads; h++) {
            float *p = scratch + (size_t)2 * seq_len * omp_get_thread_num();
            long row0 = (long)b * seq_len, col = (long)h * head_dim;
            for (int t = 0; t < seq_len; t++) {
                probabilities(p, q + (row0 + t) * ld + col, k + row0 * ld + col, ld, t, head_dim, scale);
                float *ot = o + (row0 + t) * ld + col;
                memset(ot, 0, (size_t)head_dim * sizeof *ot);
                for (int s = 0; s <= t; s++) {
                    const float *vs = v + (row0 + s) * ldv + col;
                    for (int c = 0; c < head_dim; c++) ot[c] += p[s] * vs[c];
                }
            }
        }
}

void softmax_attention_cached_forward_cpu(float *o, const float *q, const float *k_cache, const float *v_cache,
                                          int n_rows, int first_position, int n_heads, int head_dim, float *scratch) {
    int ld = n_heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    long span = 2L * (first_position + n_rows);
    #pragma omp parallel for collapse(2)
    for (int r = 0; r < n_rows; r++)
        for (int h = 0; h < n_heads; h++) {
            float *p = scratch + span * omp_get_thread_num();
            long col = (long)h * head_dim;
            int t = first_position + r;
            probabilities(p, q + (long)r * ld + col, k_cache + col, ld, t, head_dim, scale);
            float *ot = o + (long)r * ld + col;
            memset(ot, 0, (size_t)head_dim * sizeof *ot);
            for (int s = 0; s <= t; s++) {
                const float *vs = v_cache + (long)s * ld + col;
                for (int c = 0; c < head_dim; c++) ot[c] += p[s] * vs[c];
            }
        }
}

void softmax_attention_backward_cpu(float *dq, float *dk, float *dv, int ldv, const float *dout, const float *q,
                                    const float *k, const float *v, int batch, int seq_len, int n_heads, int head_dim,
                                    float *scratch) {
    int ld = n_heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    /* one (b, h) per iteration: the rows of dk and dv it adds into are its own */
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < batch; b++)
        for (int h = 0; h < n_heads; h++) {
            float *p = scratch + (size_t)2 * seq_len * omp_get_thread_num(), *ds = p + seq_len;
            long row0 = (long)b * seq_len, col = (long)h * head_dim;
            for (int t = 0; t < seq_len; t++) {
                memset(dk + (row0 + t) * ld + col, 0, (size_t)head_dim * sizeof *dk);
                memset(dv + (row0 + t) * ldv + col, 0, (size_t)head_dim * sizeof *dv);
            }
            for (int t = 0; t < seq_len; t++) {
                const float *qt = q + (row0 + t) * ld + col, *gt = dout + (row0 + t) * ld + col;
                probabilities(p, qt, k + row0 * ld + col, ld, t, head_dim, scale);
                float mean = 0.0f;
                for (int s = 0; s <= t; s++) {
                    const float *vs = v + (row0 + s) * ldv + col;
                    float dot = 0.0f;
                    for (int c = 0; c < head_dim; c++) dot += gt[c] * vs[c];
                    ds[s] = dot;
                    mean += p[s] * dot;
                }
                float *dqt = dq + (row0 + t) * ld + col;
                memset(dqt, 0, (size_t)head_dim * sizeof *dqt);
                for (int s = 0; s <= t; s++) {
                    float g = p[s] * (ds[s] - mean) * scale;
                    const float *ks = k + (row0 + s) * ld + col;
                    float *dks = dk + (row0 + s) * ld + col, *dvs = dv + (row0 + s) * ldv + col;
                    for (int c = 0; c < head_dim; c++) {
                        dqt[c] += g * ks[c];
                        dks[c] += g * qt[c];
                        dvs[c] += p[s] * gt[c];
                    }
                }
            }
        }
}
