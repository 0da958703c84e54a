#include "kernels/cuda/qk_features_cuda.h"

#include "kernels/cuda/column_sums_cuda.h"
#include "kernels/cuda/device_common.cuh"
extern "C" {
#include "kernels/cpu/activation.h"
}

using namespace tn_model_kernels;

namespace {

/* Rows one backward thread walks for its columns: few enough that the
 * blocks fill the GPU, many enough that dtheta's partials stay small. */
constexpr int kRowsPerBlock = 16;

/* Thread (x): VEC adjacent feature columns i = h d + c (VEC divides d, so
 * they lie in one head); the grid's y walks the rows. */
template <int VEC>
__global__ void qk_features_forward_kernel(uint16_t *qf, uint16_t *kf, const uint16_t *qkvu, int ld,
                                           TnActivation act, const float *theta, int n_rows, int seq_len,
                                           int pos_offset, const int32_t *seq_positions, int n_heads, int head_dim) {
    int D = n_heads * head_dim, dk = theta ? 2 * head_dim : head_dim;
    int i = VEC * (blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= D) return;
    int h = i / head_dim, c = i % head_dim;
    for (size_t r = blockIdx.y; r < (size_t)n_rows; r += gridDim.y) {
        float q[VEC], k[VEC], q_sin[VEC], k_sin[VEC];
        load_vec<VEC>(qkvu, r * ld + i, q);
        load_vec<VEC>(qkvu, r * ld + D + i, k);
#pragma unroll
        for (int j = 0; j < VEC; j++) q[j] = activation_forward(act, q[j]), k[j] = activation_forward(act, k[j]);
        size_t f = r * n_heads * dk + (size_t)h * dk + c;
        if (theta) {
            int first = seq_positions ? seq_positions[r / seq_len] : pos_offset;
            double pos = (double)(first + (int)(r % seq_len));
#pragma unroll
            for (int j = 0; j < VEC; j++) {
                double sn, cs;
                sincos((double)theta[i + j] * pos, &sn, &cs);
                q_sin[j] = q[j] * (float)sn, k_sin[j] = k[j] * (float)sn;
                q[j] *= (float)cs, k[j] *= (float)cs;
            }
            store_vec<VEC>(qf, f + head_dim, q_sin);
            store_vec<VEC>(kf, f + head_dim, k_sin);
        }
        store_vec<VEC>(qf, f, q);
        store_vec<VEC>(kf, f, k);
    }
}

/* Block (x: columns, VEC per thread, y: a chunk of kRowsPerBlock rows);
 * each thread owns its columns over the chunk and writes their dtheta
 * partial sums to row y of partials (chunks x D), which column_sums_cuda
 * adds up. */
template <int VEC>
__global__ void qk_features_backward_kernel(uint16_t *dqkvu, float *partials, const uint16_t *dqf, const uint16_t *dkf,
                                            const uint16_t *qkvu, int ld, TnActivation act, const float *theta,
                                            int n_rows, int seq_len, int pos_offset, int n_heads, int head_dim) {
    int D = n_heads * head_dim, dk = theta ? 2 * head_dim : head_dim;
    int i = VEC * (blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= D) return;
    int h = i / head_dim, c = i % head_dim;
    /* chunks of kRowsPerBlock rows, one partial sum each; a grid has at most
     * 65535 rows of blocks, so a block may take several chunks */
    for (int chunk = blockIdx.y; chunk * kRowsPerBlock < n_rows; chunk += gridDim.y) {
        float theta_sum[VEC] = {};
        int end = min(n_rows, (chunk + 1) * kRowsPerBlock);
        for (int r = chunk * kRowsPerBlock; r < end; r++) {
            size_t in = (size_t)r * ld + i, f = (size_t)r * n_heads * dk + (size_t)h * dk + c;
            float q[VEC], k[VEC], gq[VEC], gk[VEC], gq_sin[VEC], gk_sin[VEC];
            load_vec<VEC>(qkvu, in, q);
            load_vec<VEC>(qkvu, in + D, k);
            load_vec<VEC>(dqf, f, gq);
            load_vec<VEC>(dkf, f, gk);
            if (theta) {
                float pos = (float)(pos_offset + r % seq_len);
                load_vec<VEC>(dqf, f + head_dim, gq_sin);
                load_vec<VEC>(dkf, f + head_dim, gk_sin);
#pragma unroll
                for (int j = 0; j < VEC; j++) {
                    double sn_d, cs_d;
                    sincos((double)theta[i + j] * (double)pos, &sn_d, &cs_d);
                    float cs = (float)cs_d, sn = (float)sn_d;
                    /* d(a cos(theta p))/dtheta = -a p sin, d(a sin(theta p))/dtheta = a p cos */
                    theta_sum[j] += pos * (activation_forward(act, q[j]) * (gq_sin[j] * cs - gq[j] * sn) +
                                           activation_forward(act, k[j]) * (gk_sin[j] * cs - gk[j] * sn));
                    gq[j] = gq[j] * cs + gq_sin[j] * sn;
                    gk[j] = gk[j] * cs + gk_sin[j] * sn;
                }
            }
#pragma unroll
            for (int j = 0; j < VEC; j++) {
                gq[j] *= activation_derivative(act, q[j]);
                gk[j] *= activation_derivative(act, k[j]);
            }
            store_vec<VEC>(dqkvu, in, gq);
            store_vec<VEC>(dqkvu, in + D, gk);
        }
        if (theta)
#pragma unroll
            for (int j = 0; j < VEC; j++) partials[(size_t)chunk * D + i + j] = theta_sum[j];
    }
}

/* The backward's blocks along the rows (and its dtheta partials per column). */
int row_chunks(int n_rows) { return (n_rows + kRowsPerBlock - 1) / kRowsPerBlock; }

/* 8 columns per access where the head width, the row stride and the
 * tensors allow (device_common.cuh), else 1. */
int qk_vector_width(int ld, int head_dim, const void *a, const void *b, const void *c, const void *d) {
    return vector_width({ld, head_dim}, {a, b, c, d});
}

} // namespace

extern "C" int qk_features_forward_cuda(uint16_t *qf, uint16_t *kf, const uint16_t *qkvu, int ld, TnActivation act,
                                        const float *theta, int n_rows, int seq_len, int pos_offset,
                                        const int32_t *seq_positions, int n_heads, int head_dim, cudaStream_t stream,
                                        TnError *err) {
    int D = n_heads * head_dim;
    if (n_rows <= 0 || D <= 0) return 0;
    int vec = qk_vector_width(ld, head_dim, qf, kf, qkvu, nullptr);
    unsigned threads = threads_for(D / vec);
    dim3 grid = rows_grid(n_rows, D, vec);
    if (vec == 8)
        qk_features_forward_kernel<8><<<grid, threads, 0, stream>>>(qf, kf, qkvu, ld, act, theta, n_rows, seq_len,
                                                                    pos_offset, seq_positions, n_heads, head_dim);
    else
        qk_features_forward_kernel<1><<<grid, threads, 0, stream>>>(qf, kf, qkvu, ld, act, theta, n_rows, seq_len,
                                                                    pos_offset, seq_positions, n_heads, head_dim);
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
    if (n_rows <= 0 || D <= 0) return 0;
    int vec = qk_vector_width(ld, head_dim, dqkvu, dqf, dkf, qkvu);
    unsigned threads = threads_for(D / vec);
    dim3 grid = rows_grid(chunks, D, vec); /* a block of rows: a chunk of kRowsPerBlock */
    if (vec == 8)
        qk_features_backward_kernel<8><<<grid, threads, 0, stream>>>(dqkvu, partials, dqf, dkf, qkvu, ld, act, theta,
                                                                     n_rows, seq_len, pos_offset, n_heads, head_dim);
    else
        qk_features_backward_kernel<1><<<grid, threads, 0, stream>>>(dqkvu, partials, dqf, dkf, qkvu, ld, act, theta,
                                                                     n_rows, seq_len, pos_offset, n_heads, head_dim);
    if (launched("qk_features_backward_cuda", err)) return -1;
    return theta ? column_sums_cuda(dtheta, partials, chunks, D, stream, err) : 0;
}
