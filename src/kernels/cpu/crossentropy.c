#include "kernels/cpu/crossentropy.h"

#include <math.h>

int crossentropy_forward_cpu(float *losses, const float *logits, const int32_t *targets, int n_rows, int vocab_size) {
    int scored = 0;
    #pragma omp parallel for reduction(+ : scored)
    for (int r = 0; r < n_rows; r++) {
        if (targets[r] == TN_IGNORE_INDEX) {
            losses[r] = 0.0f;
            continue;
        }
        const float *z = logits + (long)r * vocab_size;
        float max = z[0];
        for (int i = 1; i < vocab_size; i++) max = z[i] > max ? z[i] : max;
        double sum = 0.0;
        for (int i = 0; i < vocab_size; i++) sum += exp((double)(z[i] - max));
        losses[r] = (float)(log(sum) + max - z[targets[r]]);
        scored++;
    }
    return scored;
}

void crossentropy_backward_cpu(float *dlogits, const float *logits, const int32_t *targets, int n_rows, int vocab_size,
                               float scale) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *z = logits + (long)r * vocab_size;
        float *dz = dlogits + (long)r * vocab_size;
        if (targets[r] == TN_IGNORE_INDEX) {
            for (int i = 0; i < vocab_size; i++) dz[i] = 0.0f;
            continue;
        }
        float max = z[0];
        for (int i = 1; i < vocab_size; i++) max = z[i] > max ? z[i] : max;
        double sum = 0.0;
        for (int i = 0; i < vocab_size; i++) sum += exp((double)(z[i] - max));
        float inv = (float)(1.0 / sum);
        /* z and dz may alias: each element is read before it is written. */
        for (int i = 0; i < vocab_size; i++) dz[i] = scale * expf(z[i] - max) * inv;
        dz[targets[r]] -= scale;
    }
}
