#include "kernels/cuda/rope_cuda.h"

#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

/* out (stride ld_out) = rotation of inp (stride ld_in) by sign * a: one
 * thread per (row, c < d/2), the same angle for every head. */
__global__ void rotate_kernel(uint16_t *out, int ld_out, const uint16_t *inp, int ld_in, int n_rows, int seq_len,
                              int n_heads, int head_dim, double base, double sign) {
    int half = head_dim / 2;
    long index = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= (long)n_rows * half) return;
    long r = index / half;
    int c = (int)(index % half);
    double angle = sign * (double)(r % seq_len) * pow(base, -2.0 * c / head_dim);
    double sine, cosine;
    sincos(angle, &sine, &cosine);
    float cs = (float)cosine, sn = (float)sine;
    for (int h = 0; h < n_heads; h++) {
        size_t x = (size_t)r * ld_in + (size_t)h * head_dim + c, y = (size_t)r * ld_out + (size_t)h * head_dim + c;
        float a = load_bf16(inp, x), b = load_bf16(inp, x + half);
        store_bf16(out, y, a * cs - b * sn);
        store_bf16(out, y + half, b * cs + a * sn);
    }
}

int rotate(const char *function, uint16_t *out, int ld_out, const uint16_t *inp, int ld_in, int n_rows, int seq_len,
           int n_heads, int head_dim, double base, double sign, cudaStream_t stream, TnError *err) {
    long threads = (long)n_rows * (head_dim / 2);
    if (threads > 0)
        rotate_kernel<<<(unsigned)((threads + 255) / 256), 256, 0, stream>>>(out, ld_out, inp, ld_in, n_rows, seq_len,
                                                                            n_heads, head_dim, base, sign);
    return launched(function, err);
}

} // namespace

extern "C" int rope_forward_cuda(uint16_t *out, const uint16_t *inp, int ld_in, int n_rows, int seq_len, int n_heads,
                                 int head_dim, double base, cudaStream_t stream, TnError *err) {
    return rotate("rope_forward_cuda", out, n_heads * head_dim, inp, ld_in, n_rows, seq_len, n_heads, head_dim, base,
                  1.0, stream, err);
}

extern "C" int rope_backward_cuda(uint16_t *dinp, int ld_in, const uint16_t *dout, int n_rows, int seq_len,
                                  int n_heads, int head_dim, double base, cudaStream_t stream, TnError *err) {
    return rotate("rope_backward_cuda", dinp, ld_in, dout, n_heads * head_dim, n_rows, seq_len, n_heads, head_dim,
                  base, -1.0, stream, err);
}
