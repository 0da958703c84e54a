#include "kernels/cpu/embedding.h"

#include <stddef.h>

/* out[r] = scale * embed[x_r] (+ positions[t], t = r % seq_len, the APE
 * table when not NULL). */
void embedding_forward_cpu(float *out, const int32_t *tokens, const float *embed, const float *positions,
                           int n_rows, int seq_len, int dim, float scale) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *e = embed + (long)tokens[r] * dim;
        const float *p = positions ? positions + (long)(r % seq_len) * dim : NULL;
        float *o = out + (long)r * dim;
        for (int c = 0; c < dim; c++) o[c] = scale * e[c] + (p ? p[c] : 0.0f);
    }
}

/* dpositions[t] += dout[r] for the rows at position t; serial over rows
 * (rows of one position add into one place). */
void positions_backward_cpu(float *dpositions, const float *dout, int n_rows, int seq_len, int dim) {
    for (int r = 0; r < n_rows; r++) {
        float *dp = dpositions + (long)(r % seq_len) * dim;
        const float *g = dout + (long)r * dim;
        for (int c = 0; c < dim; c++) dp[c] += g[c];
    }
}

/* dembed[x_r] += scale * dout[r], except for the padding token, whose row
 * nn.Embedding(padding_idx) in the official code never updates through the
 * lookup. Serial over rows: rows with the same token add into one place. */
void embedding_backward_cpu(float *dembed, const float *dout, const int32_t *tokens, int n_rows, int dim,
                            float scale, int32_t padding) {
    for (int r = 0; r < n_rows; r++) {
        if (tokens[r] == padding) continue;
        float *de = dembed + (long)tokens[r] * dim;
        const float *g = dout + (long)r * dim;
        for (int c = 0; c < dim; c++) de[c] += scale * g[c];
    }
}
