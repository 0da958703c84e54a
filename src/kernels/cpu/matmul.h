/* matmul.h: the linear layers, out = inp . weight^T (nn.Linear, no bias).
 *
 * inp is (N, in) row-major, weight is (out, in) as PyTorch stores it, out is
 * (N, out). One OpenBLAS sgemm (sgemv for N = 1); BLAS threads itself.
 */
#ifndef TN_KERNELS_CPU_MATMUL_H
#define TN_KERNELS_CPU_MATMUL_H

void matmul_forward_cpu(float *out, const float *inp, const float *weight, int n_rows, int in_dim, int out_dim);

/* Backward of matmul_forward_cpu for dout (N, out): ACCUMULATES
 *   dinp    += dout . weight      (N, in)
 *   dweight += dout^T . inp       (out, in)
 * so that a tensor used twice (the tied embedding, the two SGLU branches
 * reading one input) sums its contributions; the caller zeroes first. */
void matmul_backward_cpu(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         int n_rows, int in_dim, int out_dim);

#endif
