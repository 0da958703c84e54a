/* matmul_int8.h: linear layers with int8 weights and one fp32 scale per
 * output row (per-row absmax quantization, see infer/quantize.h):
 *   out[r, o] = scale[o] * sum_i weight[o, i] * inp[r, i]
 * inp (N, in) and out (N, out) fp32, weight (out, in) int8 row-major as
 * matmul_forward_cpu's fp32 weight. Accumulates in fp32; rows of the weight
 * are split over OpenMP threads and each is read once for all N inputs, so
 * a decode step streams a quarter of the fp32 bytes. */
#ifndef TN_KERNELS_CPU_MATMUL_INT8_H
#define TN_KERNELS_CPU_MATMUL_INT8_H

#include <stdint.h>

void matmul_int8_forward_cpu(float *out, const float *inp, const int8_t *weight, const float *scale, int n_rows,
                             int in_dim, int out_dim);

#endif
