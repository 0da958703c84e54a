#include "kernels/cuda/elementwise_cuda.h"

#include "kernels/cuda/device_common.cuh"
extern "C" {
#include "kernels/cpu/activation.h"
#include "model/token_groups.h"
}

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 256;

#define GRID_STRIDE(index, n)                                                       \
    for (size_t index = (size_t)blockIdx.x * blockDim.x + threadIdx.x; index < (n); \
         index += (size_t)gridDim.x * blockDim.x)

/* Table: the fp32 master embedding (training) or its bf16 copy (inference). */
template <typename Table>
__global__ void embedding_forward_kernel(float *out, const int32_t *tokens, const Table *embed, int n_rows, int dim,
                                         float scale) {
    GRID_STRIDE(index, (size_t)n_rows * dim) {
        size_t r = index / dim;
        out[index] = scale * load_float(embed, (size_t)tokens[r] * dim + index % dim);
    }
}

template <typename Table>
int launch_embedding(const char *function, float *out, const int32_t *tokens, const Table *embed, int n_rows, int dim,
                     float scale, cudaStream_t stream, TnError *err) {
    size_t n = (size_t)n_rows * dim;
    if (n)
        embedding_forward_kernel<Table><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(out, tokens, embed, n_rows,
                                                                                         dim, scale);
    return launched(function, err);
}

/* Block (x: group g, y: kThreads columns): each thread adds the group's
 * rows into one element of the table's row ids[g], rows ascending. */
__global__ void embedding_backward_kernel(float *dembed, const float *dout, const int32_t *groups, int n_rows,
                                          int dim, float scale) {
    int c = blockIdx.y * blockDim.x + threadIdx.x, g = blockIdx.x;
    if (c >= dim) return;
    const int32_t *starts = groups + TN_GROUP_STARTS(n_rows);
    float *out = dembed + (size_t)groups[TN_GROUP_IDS(n_rows) + g] * dim + c, sum = *out;
    /* unrolled so that several rows' loads are in flight; the additions keep their order */
#pragma unroll 8
    for (int i = starts[g]; i < starts[g + 1]; i++) sum += scale * dout[(size_t)groups[i] * dim + c];
    *out = sum;
}

__global__ void positions_forward_kernel(float *out, const float *positions, int n_rows, int seq_len, int dim) {
    GRID_STRIDE(index, (size_t)n_rows * dim) {
        size_t r = index / dim;
        out[index] += positions[(r % seq_len) * dim + index % dim];
    }
}

/* index: an element (t, c) of the table's first seq_len rows */
__global__ void positions_backward_kernel(float *dpositions, const float *dout, int n_rows, int seq_len, int dim) {
    GRID_STRIDE(index, (size_t)seq_len * dim) {
        float sum = 0.0f;
        for (size_t row = index; row < (size_t)n_rows * dim; row += (size_t)seq_len * dim) sum += dout[row];
        dpositions[index] += sum;
    }
}

/* Block (x: VEC-column vectors of a row, y: rows, grid-stride): each
 * thread keeps its columns c and walks rows r. */
#define ROWS_COLUMNS(r, c, n_rows, cols)                        \
    int c = VEC * (blockIdx.x * blockDim.x + threadIdx.x);      \
    if (c >= (cols)) return;                                    \
    for (size_t r = blockIdx.y; r < (size_t)(n_rows); r += gridDim.y)

template <int VEC>
__global__ void glu_forward_kernel(uint16_t *out, const uint16_t *a, const uint16_t *b, int ld, TnActivation act,
                                   int n_rows, int cols) {
    ROWS_COLUMNS(r, c, n_rows, cols) {
        float x[VEC], y[VEC];
        load_vec<VEC>(a, r * ld + c, x);
        load_vec<VEC>(b, r * ld + c, y);
#pragma unroll
        for (int k = 0; k < VEC; k++) x[k] = activation_forward(act, x[k]) * y[k];
        store_vec<VEC>(out, r * cols + c, x);
    }
}

template <int VEC>
__global__ void glu_backward_kernel(uint16_t *da, uint16_t *db, int ld, const uint16_t *dout, const uint16_t *a,
                                    const uint16_t *b, TnActivation act, int n_rows, int cols) {
    ROWS_COLUMNS(r, c, n_rows, cols) {
        float g[VEC], x[VEC], y[VEC];
        load_vec<VEC>(dout, r * cols + c, g);
        load_vec<VEC>(a, r * ld + c, x);
        load_vec<VEC>(b, r * ld + c, y);
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            y[k] = g[k] * y[k] * activation_derivative(act, x[k]);
            x[k] = g[k] * activation_forward(act, x[k]);
        }
        store_vec<VEC>(da, r * ld + c, y);
        store_vec<VEC>(db, r * ld + c, x);
    }
}

template <int VEC> __global__ void convert_to_bf16_kernel(uint16_t *out, const float *inp, size_t n) {
    GRID_STRIDE(index, n / VEC) {
        float x[VEC];
        load_vec<VEC>(inp, VEC * index, x);
        store_vec<VEC>(out, VEC * index, x);
    }
}

} // namespace

extern "C" int embedding_forward_cuda(float *out, const int32_t *tokens, const float *embed, int n_rows, int dim,
                                      float scale, cudaStream_t stream, TnError *err) {
    return launch_embedding("embedding_forward_cuda", out, tokens, embed, n_rows, dim, scale, stream, err);
}

extern "C" int embedding_forward_bf16_cuda(float *out, const int32_t *tokens, const uint16_t *embed, int n_rows,
                                           int dim, float scale, cudaStream_t stream, TnError *err) {
    return launch_embedding("embedding_forward_bf16_cuda", out, tokens, embed, n_rows, dim, scale, stream, err);
}

extern "C" int embedding_backward_cuda(float *dembed, const float *dout, const int32_t *groups, int n_groups,
                                       int n_rows, int dim, float scale, cudaStream_t stream, TnError *err) {
    if (n_groups > 0 && dim > 0)
        embedding_backward_kernel<<<dim3(n_groups, (dim + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
            dembed, dout, groups, n_rows, dim, scale);
    return launched("embedding_backward_cuda", err);
}

extern "C" int positions_forward_cuda(float *out, const float *positions, int n_rows, int seq_len, int dim,
                                      cudaStream_t stream, TnError *err) {
    size_t n = (size_t)n_rows * dim;
    if (n)
        positions_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(out, positions, n_rows, seq_len,
                                                                                  dim);
    return launched("positions_forward_cuda", err);
}

extern "C" int positions_backward_cuda(float *dpositions, const float *dout, int n_rows, int seq_len, int dim,
                                       cudaStream_t stream, TnError *err) {
    size_t n = (size_t)seq_len * dim;
    if (n_rows > 0 && n)
        positions_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(dpositions, dout, n_rows,
                                                                                   seq_len, dim);
    return launched("positions_backward_cuda", err);
}

extern "C" int glu_forward_cuda(uint16_t *out, const uint16_t *a, const uint16_t *b, int ld, TnActivation act,
                                int n_rows, int cols, cudaStream_t stream, TnError *err) {
    if (n_rows <= 0 || cols <= 0) return 0;
    int vec = vector_width({ld, cols}, {out, a, b});
    unsigned threads = threads_for(cols / vec);
    if (vec == 8)
        glu_forward_kernel<8><<<rows_grid(n_rows, cols, 8), threads, 0, stream>>>(out, a, b, ld, act, n_rows, cols);
    else
        glu_forward_kernel<1><<<rows_grid(n_rows, cols, 1), threads, 0, stream>>>(out, a, b, ld, act, n_rows, cols);
    return launched("glu_forward_cuda", err);
}

extern "C" int glu_backward_cuda(uint16_t *da, uint16_t *db, int ld, const uint16_t *dout, const uint16_t *a,
                                 const uint16_t *b, TnActivation act, int n_rows, int cols, cudaStream_t stream,
                                 TnError *err) {
    if (n_rows <= 0 || cols <= 0) return 0;
    int vec = vector_width({ld, cols}, {da, db, dout, a, b});
    unsigned threads = threads_for(cols / vec);
    if (vec == 8)
        glu_backward_kernel<8><<<rows_grid(n_rows, cols, 8), threads, 0, stream>>>(da, db, ld, dout, a, b, act,
                                                                                   n_rows, cols);
    else
        glu_backward_kernel<1><<<rows_grid(n_rows, cols, 1), threads, 0, stream>>>(da, db, ld, dout, a, b, act,
                                                                                   n_rows, cols);
    return launched("glu_backward_cuda", err);
}

extern "C" int convert_to_bf16_cuda(uint16_t *out, const float *inp, size_t n, cudaStream_t stream, TnError *err) {
    if (!n) return 0;
    if (vector_width({(long long)n}, {out, inp}) == 8)
        convert_to_bf16_kernel<8><<<blocks_for(n / 8, kThreads), kThreads, 0, stream>>>(out, inp, n);
    else
        convert_to_bf16_kernel<1><<<blocks_for(n, kThreads), kThreads, 0, stream>>>(out, inp, n);
    return launched("convert_to_bf16_cuda", err);
}

/* Block row y clears run y, its blocks striding over the run. */
__global__ void clear_runs_kernel(float *base, const size_t *runs) {
    size_t begin = runs[2 * blockIdx.y], count = runs[2 * blockIdx.y + 1];
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (size_t)gridDim.x * blockDim.x)
        base[begin + i] = 0.0f;
}

extern "C" int clear_runs_cuda(float *base, const size_t *runs, int n_runs, size_t longest, cudaStream_t stream,
                               TnError *err) {
    if (n_runs == 0 || longest == 0) return 0;
    if (n_runs > 65535) return tn_fail(err, "clear_runs_cuda: %d runs (at most 65535)", n_runs);
    unsigned across = blocks_for(longest, kThreads);
    clear_runs_kernel<<<dim3(across < 1024 ? across : 1024, (unsigned)n_runs), kThreads, 0, stream>>>(base, runs);
    return launched("clear_runs_cuda", err);
}
