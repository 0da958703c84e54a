#include "kernels/cpu/matmul_int8.h"

/* Lanes of partial sums: a fixed-width inner loop that the compiler turns
 * into vector instructions without reassociating a reduction itself. */
#define LANES 16

/* Built for AVX-512, AVX2 and the baseline ISA, chosen at load time (GCC
 * function multiversioning): the int8 -> fp32 widening needs at least
 * SSE4.1 to be cheap, and the build targets the baseline x86-64. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void matmul_int8_forward_cpu(float *out, const float *inp, const int8_t *weight, const float *scale, int n_rows,
                             int in_dim, int out_dim) {
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < out_dim; o++) {
        const int8_t *w = weight + (long)o * in_dim;
        for (int r = 0; r < n_rows; r++) {
            const float *x = inp + (long)r * in_dim;
            float lanes[LANES] = {0}, sum = 0.0f;
            int i = 0;
            for (; i + LANES <= in_dim; i += LANES)
                for (int j = 0; j < LANES; j++) lanes[j] += (float)w[i + j] * x[i + j];
            for (; i < in_dim; i++) sum += (float)w[i] * x[i];
            for (int j = 0; j < LANES; j++) sum += lanes[j];
            out[(long)r * out_dim + o] = scale[o] * sum;
        }
    }
}
