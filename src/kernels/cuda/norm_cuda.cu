#include "kernels/cuda/norm_cuda.h"

#include "kernels/cuda/column_sums_cuda.h"
#include "kernels/cuda/device_common.cuh"

using namespace tn_model_kernels;

namespace {

constexpr int kThreads = 256;
/* Rows one backward block walks when it sums the gain and bias gradients:
 * fewer partial sums per column, still enough blocks to fill the GPU. */
constexpr int kParamRows = 32;
/* Dynamic shared memory a launch may take without opting in. */
constexpr size_t kDefaultSharedBytes = 48 * 1024;

/* What a launch does with each row's sum (the forward's sum of squares,
 * the backward's mean dot product): its own, from the row's dim columns; or,
 * for a row split over ranks (norm_gate_part_*), write the part's sum to
 * row_sums and stop, or take the full row's sum (full_dim columns) from it. */
enum RowPass { ROW_WHOLE, ROW_PART_SUMS, ROW_FULL_SUMS };

/* One norm's switch, parameters and gate; the gradient fields are the
 * backward's (NULL in the forward). */
struct NormArgs {
    TnNormKind kind;
    const float *gain, *bias; /* NULL where the kind has none */
    const uint16_t *gate;     /* u (bf16, row stride gate_ld), NULL: no gate */
    int gate_ld;
    float *copy;              /* the forward's copy of its fp32 input, NULL: none */
    float *dgain, *dbias;
    float *partials; /* the backward's per-block gain sums, then bias sums (norm_backward_partials) */
    uint16_t *dgate;
    uint16_t *dinp_bf16; /* the backward's bf16 copy of the fp32 dinp it leaves, NULL: none */
    int n_rows, dim;
    RowPass row_pass;
    float *row_sums; /* ROW_PART_SUMS, ROW_FULL_SUMS: one per row */
    int full_dim;    /* the full rows' width: dim unless split */
};

NormArgs norm_args(TnNormKind kind, const float *gain, const float *bias, int n_rows, int dim) {
    return NormArgs{kind,    gain,    bias,    nullptr, 0,      nullptr,   nullptr, nullptr,
                    nullptr, nullptr, nullptr, n_rows,  dim,    ROW_WHOLE, nullptr, dim};
}

/* The arguments of the norm after the attention, with its gate. */
NormArgs gate_args(TnNormKind kind, const float *gain, const float *bias, const uint16_t *gate, int gate_ld,
                   int n_rows, int dim) {
    NormArgs a = norm_args(kind, gain, bias, n_rows, dim);
    a.gate = gate;
    a.gate_ld = gate_ld;
    return a;
}

/* The row's sum that a launch uses (every thread calls it: block_sum), or
 * false where the pass only writes the part's sum (thread 0 writes it). */
__device__ __forceinline__ bool row_sum(const NormArgs &a, size_t r, float own, float *shared, float *sum) {
    *sum = block_sum(own, shared);
    if (a.row_pass == ROW_PART_SUMS) {
        if (threadIdx.x == 0) a.row_sums[r] = *sum;
        return false;
    }
    if (a.row_pass == ROW_FULL_SUMS) *sum = a.row_sums[r];
    return true;
}

/* A residual-stream gradient (fp32) accumulates, and its bf16 copy (the
 * next matrix product's operand) is written in the same pass; the
 * attention's (bf16) is written once. */
template <int VEC>
__device__ __forceinline__ void put_gradients(const NormArgs &a, float *p, size_t i, const float *g) {
    float x[VEC];
    load_vec<VEC>(p, i, x);
#pragma unroll
    for (int k = 0; k < VEC; k++) x[k] += g[k];
    store_vec<VEC>(p, i, x);
    if (a.dinp_bf16) store_vec<VEC>(a.dinp_bf16, i, x);
}
template <int VEC>
__device__ __forceinline__ void put_gradients(const NormArgs &, uint16_t *p, size_t i, const float *g) {
    store_vec<VEC>(p, i, g);
}

__device__ __forceinline__ float gain_of(const NormArgs &a, int c) { return a.gain ? a.gain[c] : 1.0f; }

/* y = g xhat + b for column c */
__device__ __forceinline__ float affine(const NormArgs &a, int c, float xhat) {
    return gain_of(a, c) * xhat + (a.bias ? a.bias[c] : 0.0f);
}

/* Each thread of a row's block walks the row VEC columns at a time, from
 * column VEC threadIdx.x in steps of VEC blockDim.x. */
#define ROW_VECTORS(c, dim) for (int c = VEC * threadIdx.x; c < (dim); c += VEC * blockDim.x)

/* LayerNorm's centre of row `row` (every thread gets it), 0 for the RMS kinds. */
template <int VEC, typename In>
__device__ float row_center(const NormArgs &a, const In *inp, size_t row, float *shared) {
    if (a.kind != TN_NORM_LAYER) return 0.0f;
    float sum = 0.0f, x[VEC];
    ROW_VECTORS(c, a.dim) {
        load_vec<VEC>(inp, row + c, x);
#pragma unroll
        for (int k = 0; k < VEC; k++) sum += x[k];
    }
    return block_sum(sum, shared) / a.dim;
}

/* One block per row. */
template <int VEC, typename In>
__global__ void norm_forward_kernel(NormArgs a, uint16_t *out, float *rstd, const In *inp) {
    __shared__ float shared[32];
    int dim = a.dim;
    size_t row = (size_t)blockIdx.x * dim, u = (size_t)blockIdx.x * a.gate_ld;
    float mu = row_center<VEC>(a, inp, row, shared), squares = 0.0f, x[VEC], y[VEC];
    ROW_VECTORS(c, dim) {
        load_vec<VEC>(inp, row + c, x);
        if (a.copy) store_vec<VEC>(a.copy, row + c, x);
#pragma unroll
        for (int k = 0; k < VEC; k++) squares += (x[k] - mu) * (x[k] - mu);
    }
    float total;
    if (!row_sum(a, blockIdx.x, squares, shared, &total)) return;
    float r = rsqrtf(total / a.full_dim + TN_NORM_EPS);
    ROW_VECTORS(c, dim) {
        load_vec<VEC>(inp, row + c, x);
        float gate[VEC];
        if (a.gate) load_vec<VEC>(a.gate, u + c, gate);
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            y[k] = affine(a, c + k, (x[k] - mu) * r);
            if (a.gate) y[k] *= gate[k];
        }
        store_vec<VEC>(out, row + c, y);
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

/* The backward's inputs at columns [c, c + VEC) of a row: x, dy and, with
 * a gate, u (row offsets row and u). */
template <int VEC, typename In, typename Out>
__device__ __forceinline__ void load_backward_inputs(const NormArgs &a, const In *inp, const Out *dout, size_t row,
                                                     size_t u, int c, float *x, float *dy, float *gate) {
    load_vec<VEC>(inp, row + c, x);
    load_vec<VEC>(dout, row + c, dy);
    if (a.gate) load_vec<VEC>(a.gate, u + c, gate);
}

/* Rows [blockIdx.x rows_per_block, + rows_per_block). Each thread owns the
 * columns ROW_VECTORS gives it in every row, so its sums of the gain and
 * bias gradients (param_sums: dim gain sums, then dim bias sums) need no
 * synchronisation; the block writes them as its row of the partials, which
 * column_sums_cuda adds up in a fixed order. */
template <int VEC, typename In, typename Out, typename Grad>
__global__ void norm_backward_kernel(NormArgs a, Grad *dinp, const Out *dout, const In *inp, const float *rstd,
                                     int rows_per_block) {
    extern __shared__ float param_sums[];
    __shared__ float shared[32];
    int dim = a.dim;
    ROW_VECTORS(c, dim) {
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            if (a.dgain) param_sums[c + k] = 0.0f;
            if (a.dbias) param_sums[dim + c + k] = 0.0f;
        }
    }
    int end = min(a.n_rows, (int)(blockIdx.x + 1) * rows_per_block);
    float x[VEC], dy[VEC], gate[VEC], out[VEC];
    for (int r = blockIdx.x * rows_per_block; r < end; r++) {
        size_t row = (size_t)r * dim, u = (size_t)r * a.gate_ld;
        float s = rstd[r], mu = row_center<VEC>(a, inp, row, shared), sum_dxhat = 0.0f, sum_dot = 0.0f;
        ROW_VECTORS(c, dim) {
            load_backward_inputs<VEC>(a, inp, dout, row, u, c, x, dy, gate);
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                float xhat = (x[k] - mu) * s;
                if (a.gate) {
                    out[k] = dy[k] * affine(a, c + k, xhat);
                    dy[k] *= gate[k];
                }
                float dxhat = gain_of(a, c + k) * dy[k];
                sum_dxhat += dxhat;
                sum_dot += dxhat * xhat;
                if (a.dgain) param_sums[c + k] += dy[k] * xhat;
                if (a.dbias) param_sums[dim + c + k] += dy[k];
            }
            if (a.dgate) store_vec<VEC>(a.dgate, u + c, out);
        }
        float dot;
        if (!row_sum(a, r, sum_dot, shared, &dot)) continue;
        float mean_dot = dot / a.full_dim;
        float mean_dxhat = a.kind == TN_NORM_LAYER ? block_sum(sum_dxhat, shared) / dim : 0.0f;
        ROW_VECTORS(c, dim) {
            load_backward_inputs<VEC>(a, inp, dout, row, u, c, x, dy, gate);
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                float xhat = (x[k] - mu) * s, g = a.gate ? dy[k] * gate[k] : dy[k];
                out[k] = s * (gain_of(a, c + k) * g - mean_dxhat - xhat * mean_dot);
            }
            put_gradients<VEC>(a, dinp, row + c, out);
        }
    }
    size_t bias_partials = (size_t)gridDim.x * dim;
    ROW_VECTORS(c, dim) {
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            if (a.dgain) a.partials[(size_t)blockIdx.x * dim + c + k] = param_sums[c + k];
            if (a.dbias) a.partials[bias_partials + (size_t)blockIdx.x * dim + c + k] = param_sums[dim + c + k];
        }
    }
}

int param_blocks(int n_rows) { return (n_rows + kParamRows - 1) / kParamRows; }

/* 8 columns per access where the row width, the gate's stride and every
 * tensor allow (device_common.cuh), else 1. */
int norm_vector_width(const NormArgs &a, const void *x, const void *y, const void *z) {
    return vector_width({a.dim, a.gate_ld}, {a.gate, a.copy, a.dgate, a.dinp_bf16, x, y, z});
}

template <typename In>
int launch_forward(const char *function, const NormArgs &a, uint16_t *out, float *rstd, const In *inp,
                   cudaStream_t stream, TnError *err) {
    if (a.n_rows <= 0) return 0;
    if (norm_vector_width(a, out, inp, nullptr) == 8)
        norm_forward_kernel<8, In><<<a.n_rows, threads_for(a.dim / 8), 0, stream>>>(a, out, rstd, inp);
    else
        norm_forward_kernel<1, In><<<a.n_rows, kThreads, 0, stream>>>(a, out, rstd, inp);
    return launched(function, err);
}

template <int VEC, typename In, typename Out, typename Grad>
int launch_backward_kernel(const char *function, const NormArgs &a, Grad *dinp, const Out *dout, const In *inp,
                           const float *rstd, int blocks, int rows, size_t bytes, cudaStream_t stream, TnError *err) {
    if (bytes > kDefaultSharedBytes) {
        cudaError_t status = cudaFuncSetAttribute(norm_backward_kernel<VEC, In, Out, Grad>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
        if (status != cudaSuccess) return tn_fail(err, "%s: CUDA: %s", function, cudaGetErrorString(status));
    }
    unsigned threads = VEC == 1 ? kThreads : threads_for(a.dim / VEC);
    norm_backward_kernel<VEC, In, Out, Grad><<<blocks, threads, bytes, stream>>>(a, dinp, dout, inp, rstd, rows);
    return launched(function, err);
}

template <typename In, typename Out, typename Grad>
int launch_backward(const char *function, const NormArgs &a, Grad *dinp, const Out *dout, const In *inp,
                    const float *rstd, cudaStream_t stream, TnError *err) {
    if (a.n_rows <= 0) return 0;
    int sums = a.dgain || a.dbias, rows = sums ? kParamRows : 1, blocks = sums ? param_blocks(a.n_rows) : a.n_rows;
    size_t bytes = (size_t)(a.dbias ? 2 : a.dgain ? 1 : 0) * a.dim * sizeof(float);
    int failed = norm_vector_width(a, dinp, dout, inp) == 8
                     ? launch_backward_kernel<8>(function, a, dinp, dout, inp, rstd, blocks, rows, bytes, stream, err)
                     : launch_backward_kernel<1>(function, a, dinp, dout, inp, rstd, blocks, rows, bytes, stream, err);
    if (failed) return -1;
    if (a.dgain && column_sums_cuda(a.dgain, a.partials, blocks, a.dim, stream, err)) return -1;
    if (a.dbias && column_sums_cuda(a.dbias, a.partials + (size_t)blocks * a.dim, blocks, a.dim, stream, err))
        return -1;
    return 0;
}

} // namespace

extern "C" int norm_forward_cuda(TnNormKind kind, uint16_t *out, float *rstd, const float *inp, const float *gain,
                                 const float *bias, int n_rows, int dim, cudaStream_t stream, TnError *err) {
    return launch_forward("norm_forward_cuda", norm_args(kind, gain, bias, n_rows, dim), out, rstd, inp, stream, err);
}

extern "C" int norm_forward_copy_cuda(TnNormKind kind, uint16_t *out, float *rstd, float *copy, const float *inp,
                                      const float *gain, const float *bias, int n_rows, int dim, cudaStream_t stream,
                                      TnError *err) {
    NormArgs a = norm_args(kind, gain, bias, n_rows, dim);
    a.copy = copy;
    return launch_forward("norm_forward_copy_cuda", a, out, rstd, inp, stream, err);
}

extern "C" size_t norm_backward_partials(int n_rows, int dim) { return 2 * (size_t)param_blocks(n_rows) * dim; }

extern "C" int norm_backward_cuda(TnNormKind kind, float *dinp, uint16_t *dinp_bf16, float *dgain, float *dbias,
                                  float *partials, const void *dout, TnCudaFloat dout_type, const float *inp,
                                  const float *rstd, const float *gain, int n_rows, int dim, cudaStream_t stream,
                                  TnError *err) {
    NormArgs a = norm_args(kind, gain, nullptr, n_rows, dim);
    a.dinp_bf16 = dinp_bf16;
    a.dgain = dgain;
    a.dbias = dbias;
    a.partials = partials;
    if (dout_type == TN_CUDA_BF16)
        return launch_backward("norm_backward_cuda", a, dinp, (const uint16_t *)dout, inp, rstd, stream, err);
    return launch_backward("norm_backward_cuda", a, dinp, (const float *)dout, inp, rstd, stream, err);
}

extern "C" int norm_gate_forward_cuda(TnNormKind kind, uint16_t *gated, float *rstd, const uint16_t *attn,
                                      const float *gain, const float *bias, const uint16_t *gate, int gate_ld,
                                      int n_rows, int dim, cudaStream_t stream, TnError *err) {
    NormArgs a = gate_args(kind, gain, bias, gate, gate_ld, n_rows, dim);
    return launch_forward("norm_gate_forward_cuda", a, gated, rstd, attn, stream, err);
}

extern "C" int norm_gate_backward_cuda(TnNormKind kind, uint16_t *dattn, uint16_t *dgate, float *dgain, float *dbias,
                                       float *partials, const uint16_t *dgated, const uint16_t *attn,
                                       const float *rstd, const float *gain, const float *bias, const uint16_t *gate,
                                       int gate_ld, int n_rows, int dim, cudaStream_t stream, TnError *err) {
    NormArgs a = gate_args(kind, gain, bias, gate, gate_ld, n_rows, dim);
    a.dgain = dgain;
    a.dbias = dbias;
    a.partials = partials;
    a.dgate = dgate;
    return launch_backward("norm_gate_backward_cuda", a, dattn, dgated, attn, rstd, stream, err);
}

/* The part kernels: norm_gate_*'s launches with the rows' sums split. */
namespace {

NormArgs part_args(TnNormKind kind, RowPass pass, float *row_sums, const float *gain, const uint16_t *gate,
                   int gate_ld, int n_rows, int dim, int full_dim) {
    NormArgs a = gate_args(kind, gain, nullptr, gate, gate_ld, n_rows, dim);
    a.row_pass = pass;
    a.row_sums = row_sums;
    a.full_dim = full_dim;
    return a;
}

int refuse_centered(TnNormKind kind, const char *function, TnError *err) {
    if (kind != TN_NORM_LAYER) return 0;
    return tn_fail(err, "%s: LayerNorm's centre spans the ranks' columns: the split norm is RMS only", function);
}

} // namespace

extern "C" int norm_gate_part_sums_cuda(TnNormKind kind, float *row_sums, const uint16_t *attn, int n_rows, int dim,
                                        cudaStream_t stream, TnError *err) {
    if (refuse_centered(kind, "norm_gate_part_sums_cuda", err)) return -1;
    NormArgs a = part_args(kind, ROW_PART_SUMS, row_sums, nullptr, nullptr, 0, n_rows, dim, dim);
    /* the pass stops at the sums: out and rstd are not written */
    return launch_forward("norm_gate_part_sums_cuda", a, (uint16_t *)nullptr, (float *)nullptr, attn, stream, err);
}

extern "C" int norm_gate_part_forward_cuda(TnNormKind kind, uint16_t *gated, float *rstd, const float *row_sums,
                                           const uint16_t *attn, const float *gain, const uint16_t *gate, int gate_ld,
                                           int n_rows, int dim, int full_dim, cudaStream_t stream, TnError *err) {
    if (refuse_centered(kind, "norm_gate_part_forward_cuda", err)) return -1;
    NormArgs a = part_args(kind, ROW_FULL_SUMS, (float *)row_sums, gain, gate, gate_ld, n_rows, dim, full_dim);
    return launch_forward("norm_gate_part_forward_cuda", a, gated, rstd, attn, stream, err);
}

extern "C" int norm_gate_part_dots_cuda(TnNormKind kind, float *row_sums, const uint16_t *dgated, const uint16_t *attn,
                                        const float *rstd, const float *gain, const uint16_t *gate, int gate_ld,
                                        int n_rows, int dim, cudaStream_t stream, TnError *err) {
    if (refuse_centered(kind, "norm_gate_part_dots_cuda", err)) return -1;
    NormArgs a = part_args(kind, ROW_PART_SUMS, row_sums, gain, gate, gate_ld, n_rows, dim, dim);
    /* no dgate, dgain: the pass stops at the sums, writing no gradient */
    return launch_backward("norm_gate_part_dots_cuda", a, (uint16_t *)nullptr, dgated, attn, rstd, stream, err);
}

extern "C" int norm_gate_part_backward_cuda(TnNormKind kind, uint16_t *dattn, uint16_t *dgate, float *dgain,
                                            float *partials, const float *row_sums, const uint16_t *dgated,
                                            const uint16_t *attn, const float *rstd, const float *gain,
                                            const uint16_t *gate, int gate_ld, int n_rows, int dim, int full_dim,
                                            cudaStream_t stream, TnError *err) {
    if (refuse_centered(kind, "norm_gate_part_backward_cuda", err)) return -1;
    NormArgs a = part_args(kind, ROW_FULL_SUMS, (float *)row_sums, gain, gate, gate_ld, n_rows, dim, full_dim);
    a.dgain = dgain;
    a.partials = partials;
    a.dgate = dgate;
    return launch_backward("norm_gate_part_backward_cuda", a, dattn, dgated, attn, rstd, stream, err);
}
