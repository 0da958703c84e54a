#include "kernels/cuda/qk_features_cuda.h"

#include "kernels/cuda/column_sums_cuda.h"
#include "kernels/cuda/device_common.cuh"
extern "C" {
#include "kernels/cpu/activation.h"
}

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = 64; /* rows one backward thread walks for one column */

/* One thread per (row, feature column i = h d + c). */
__global__ void qk_features_forward_kernel(uint16_t *qf, uint16_t *kf, const uint16_t *qkvu, int ld,
                                           TnActivation act, const float *theta, int n_rows, int seq_len,
                                           int pos_offset, const int32_t *seq_positions, int n_heads, int head_dim) {
    int D = n_heads * head_dim, dk = theta ? 2 * head_dim : head_dim;
    size_t total = (size_t)n_rows * D;
    for (size_t index = (size_t)blockIdx.x * blockDim.x + threadIdx.x; index < total;
         index += (size_t)gridDim.x * blockDim.x) {
        size_t r = index / D;
        int i = (int)(index % D), h = i / head_dim, c = i % head_dim;
        float qa = activation_forward(act, load_bf16(qkvu, r * ld + i));
        float ka = activation_forward(act, load_bf16(qkvu, r * ld + D + i));
        size_t f = r * n_heads * dk + (size_t)h * dk + c;
        if (!theta) {
            store_bf16(qf, f, qa);
            store_bf16(kf, f, ka);
            continue;
        }
        int first = seq_positions ? seq_positions[r / seq_len] : pos_offset;
        double angle = (double)theta[i] * (double)(first + (int)(r % seq_len));
        float cs = (float)cos(angle), sn = (float)sin(angle);
        store_bf16(qf, f, qa * cs);
        store_bf16(qf, f + head_dim, qa * sn);
        store_bf16(kf, f, ka * cs);
        store_bf16(kf, f + head_dim, ka * sn);
    }
}

/* Block (x: columns, y: a chunk of kRowsPerBlock rows); each thread owns one
 * column i over the chunk and writes its dtheta partial sum to row y of
 * partials (chunks x D), which column_sums_cuda adds up. */
__global__ void qk_features_backward_kernel(uint16_t *dqkvu, float *partials, const uint16_t *dqf, const uint16_t *dkf,
                                            const uint16_t *qkvu, int ld, TnActivation act, const float *theta,
                                            int n_rows, int seq_len, int pos_offset, int n_heads, int head_dim) {
    int D = n_heads * head_dim, dk = theta ? 2 * head_dim : head_dim;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= D) return;
    int h = i / head_dim, c = i % head_dim;
    float theta_sum = 0.0f;
    int end = min(n_rows, (int)(blockIdx.y + 1) * kRowsPerBlock);
    for (int r = blockIdx.y * kRowsPerBlock; r < end; r++) {
        size_t in = (size_t)r * ld + i, f = (size_t)r * n_heads * dk + (size_t)h * dk + c;
        float q = load_bf16(qkvu, in), k = load_bf16(qkvu, in + D);
        float gq = load_bf16(dqf, f), gk = load_bf16(dkf, f);
        if (theta) {
            float pos = (float)(pos_offset + r % seq_len);
            double angle = (double)theta[i] * (double)pos;
            float cs = (float)cos(angle), sn = (float)sin(angle);
            float gq_sin = load_bf16(dqf, f + head_dim), gk_sin = load_bf16(dkf, f + head_dim);
            /* d(a cos(theta p))/dtheta = -a p sin, d(a sin(theta p))/dtheta = a p cos */
            theta_sum += pos * (activation_forward(act, q) * (gq_sin * cs - gq * sn) +
                                activation_forward(act, k) * (gk_sin * cs - gk * sn));
            gq = gq * cs + gq_sin * sn;
            gk = gk * cs + gk_sin * sn;
        }
        store_bf16(dqkvu, in, gq * activation_derivative(act, q));
        store_bf16(dqkvu, in + D, gk * activation_derivative(act, k));
    }
    if (theta) partials[(size_t)blockIdx.y * D + i] = theta_sum;
}

/* The backward's blocks along the rows (and its dtheta partials per column). */
int row_chunks(int n_rows) { return (n_rows + kRowsPerBlock - 1) / kRowsPerBlock; }

} // namespace

extern "C" int qk_features_forward_cuda(uint16_t *qf, uint16_t *kf, const uint16_t *qkvu, int ld, TnActivation act,
                                        const float *theta, int n_rows, int seq_len, int pos_offset,
                                        const int32_t *seq_positions, int n_heads, int head_dim, cudaStream_t stream,
                                        TnError *err) {
    size_t total = (size_t)n_rows * n_heads * head_dim;
    if (total)
        qk_features_forward_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream>>>(
            qf, kf, qkvu, ld, act, theta, n_rows, seq_len, pos_offset, seq_positions, n_heads, head_dim);
    return launched("qk_features_forward_cuda", err);
}

extern "C" size_t qk_features_backward_partials(int n_rows, int n_heads, int head_dim) {
    return (size_t)row_chunks(n_rows) * n_heads * head_dim;
}

extern "C" int qk_features_backward_cuda(uint16_t *dqkvu, float *dtheta, float *partials, const uint16_t *dqf,
                                         const uint16_t *dkf, const uint16_t *qkvu, int ld, TnActivation act,
                                         const float *theta, int n_rows, int seq_len, int pos_offset, int n_heads,
                                         int head_dim, cudaStream_t stream, TnError *err) {
    int D = n_heads * head_dim, chunks = row_chunks(n_rows);
    if (n_rows <= 0) return 0;
    qk_features_backward_kernel<<<dim3((D + kThreads - 1) / kThreads, chunks), kThreads, 0, stream>>>(
        dqkvu, partials, dqf, dkf, qkvu, ld, act, theta, n_rows, seq_len, pos_offset, n_heads, head_dim);
    if (launched("qk_features_backward_cuda", err)) return -1;
    return theta ? column_sums_cuda(dtheta, partials, chunks, D, stream, err) : 0;
}
