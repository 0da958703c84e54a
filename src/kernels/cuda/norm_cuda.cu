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

/* One norm's switch, parameters and gate; the gradient fields are the
 * backward's (NULL in the forward). */
struct NormArgs {
    TnNormKind kind;
    const float *gain, *bias; /* NULL where the kind has none */
    const uint16_t *gate;     /* u (bf16, row stride gate_ld), NULL: no gate */
    int gate_ld;
    float *dgain, *dbias;
    float *partials; /* the backward's per-block gain sums, then bias sums (norm_backward_partials) */
    uint16_t *dgate;
    int n_rows, dim;
};

NormArgs norm_args(TnNormKind kind, const float *gain, const float *bias, int n_rows, int dim) {
    return NormArgs{kind, gain, bias, nullptr, 0, nullptr, nullptr, nullptr, nullptr, n_rows, dim};
}

/* A residual-stream gradient (fp32) accumulates; the attention's (bf16) is
 * written once. */
__device__ __forceinline__ void put_gradient(float *p, size_t i, float x) { p[i] += x; }
__device__ __forceinline__ void put_gradient(uint16_t *p, size_t i, float x) { store_bf16(p, i, x); }

__device__ __forceinline__ float gain_of(const NormArgs &a, int c) { return a.gain ? a.gain[c] : 1.0f; }

/* y = g xhat + b for column c */
__device__ __forceinline__ float affine(const NormArgs &a, int c, float xhat) {
    return gain_of(a, c) * xhat + (a.bias ? a.bias[c] : 0.0f);
}

/* LayerNorm's centre of row `row` (every thread gets it), 0 for the RMS kinds. */
template <typename In>
__device__ float row_center(const NormArgs &a, const In *inp, size_t row, float *shared) {
    if (a.kind != TN_NORM_LAYER) return 0.0f;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < a.dim; c += blockDim.x) sum += load_float(inp, row + c);
    return block_sum(sum, shared) / a.dim;
}

/* One block per row. */
template <typename In>
__global__ void norm_forward_kernel(NormArgs a, uint16_t *out, float *rstd, const In *inp) {
    __shared__ float shared[32];
    int dim = a.dim;
    size_t row = (size_t)blockIdx.x * dim, u = (size_t)blockIdx.x * a.gate_ld;
    float mu = row_center(a, inp, row, shared), squares = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float x = load_float(inp, row + c) - mu;
        squares += x * x;
    }
    float r = rsqrtf(block_sum(squares, shared) / dim + TN_NORM_EPS);
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float y = affine(a, c, (load_float(inp, row + c) - mu) * r);
        store_bf16(out, row + c, a.gate ? y * load_bf16(a.gate, u + c) : y);
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

/* Rows [blockIdx.x rows_per_block, + rows_per_block). Each thread owns the
 * columns c = threadIdx.x + k blockDim.x of every row, so its sums of the
 * gain and bias gradients (param_sums: dim gain sums, then dim bias sums)
 * need no synchronisation; the block writes them as its row of the
 * partials, which column_sums_cuda adds up in a fixed order. */
template <typename In, typename Grad>
__global__ void norm_backward_kernel(NormArgs a, Grad *dinp, const float *dout, const In *inp, const float *rstd,
                                     int rows_per_block) {
    extern __shared__ float param_sums[];
    __shared__ float shared[32];
    int dim = a.dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        if (a.dgain) param_sums[c] = 0.0f;
        if (a.dbias) param_sums[dim + c] = 0.0f;
    }
    int end = min(a.n_rows, (int)(blockIdx.x + 1) * rows_per_block);
    for (int r = blockIdx.x * rows_per_block; r < end; r++) {
        size_t row = (size_t)r * dim, u = (size_t)r * a.gate_ld;
        float s = rstd[r], mu = row_center(a, inp, row, shared), sum_dxhat = 0.0f, sum_dot = 0.0f;
        for (int c = threadIdx.x; c < dim; c += blockDim.x) {
            float xhat = (load_float(inp, row + c) - mu) * s, dy = dout[row + c];
            if (a.gate) {
                store_bf16(a.dgate, u + c, dy * affine(a, c, xhat));
                dy *= load_bf16(a.gate, u + c);
            }
            float dxhat = gain_of(a, c) * dy;
            sum_dxhat += dxhat;
            sum_dot += dxhat * xhat;
            if (a.dgain) param_sums[c] += dy * xhat;
            if (a.dbias) param_sums[dim + c] += dy;
        }
        float mean_dot = block_sum(sum_dot, shared) / dim;
        float mean_dxhat = a.kind == TN_NORM_LAYER ? block_sum(sum_dxhat, shared) / dim : 0.0f;
        for (int c = threadIdx.x; c < dim; c += blockDim.x) {
            float xhat = (load_float(inp, row + c) - mu) * s, dy = dout[row + c];
            if (a.gate) dy *= load_bf16(a.gate, u + c);
            put_gradient(dinp, row + c, s * (gain_of(a, c) * dy - mean_dxhat - xhat * mean_dot));
        }
    }
    size_t bias_partials = (size_t)gridDim.x * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        if (a.dgain) a.partials[(size_t)blockIdx.x * dim + c] = param_sums[c];
        if (a.dbias) a.partials[bias_partials + (size_t)blockIdx.x * dim + c] = param_sums[dim + c];
    }
}

int param_blocks(int n_rows) { return (n_rows + kParamRows - 1) / kParamRows; }

template <typename In>
int launch_forward(const char *function, const NormArgs &a, uint16_t *out, float *rstd, const In *inp,
                   cudaStream_t stream, TnError *err) {
    if (a.n_rows > 0) norm_forward_kernel<In><<<a.n_rows, kThreads, 0, stream>>>(a, out, rstd, inp);
    return launched(function, err);
}

template <typename In, typename Grad>
int launch_backward(const char *function, const NormArgs &a, Grad *dinp, const float *dout, const In *inp,
                    const float *rstd, cudaStream_t stream, TnError *err) {
    if (a.n_rows <= 0) return 0;
    int sums = a.dgain || a.dbias, rows = sums ? kParamRows : 1, blocks = sums ? param_blocks(a.n_rows) : a.n_rows;
    size_t bytes = (size_t)(a.dbias ? 2 : a.dgain ? 1 : 0) * a.dim * sizeof(float);
    if (bytes > kDefaultSharedBytes) {
        cudaError_t status = cudaFuncSetAttribute(norm_backward_kernel<In, Grad>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
        if (status != cudaSuccess) return tn_fail(err, "%s: CUDA: %s", function, cudaGetErrorString(status));
    }
    norm_backward_kernel<In, Grad><<<blocks, kThreads, bytes, stream>>>(a, dinp, dout, inp, rstd, rows);
    if (launched(function, err)) return -1;
    if (a.dgain && column_sums_cuda(a.dgain, a.partials, blocks, a.dim, stream, err)) return -1;
    if (a.dbias && column_sums_cuda(a.dbias, a.partials + (size_t)blocks * a.dim, blocks, a.dim, stream, err))
        return -1;
    return 0;
}

} // namespace

extern "C" int norm_forward_cuda(TnNormKind kind, uint16_t *out, float *rstd, const float *inp, const float *gain,
                                 const float *bias, int n_rows, int dim, cudaStream_t stream, TnError *err) {
    NormArgs a = norm_args(kind, gain, bias, n_rows, dim);
    return launch_forward("norm_forward_cuda", a, out, rstd, inp, stream, err);
}

extern "C" size_t norm_backward_partials(int n_rows, int dim) { return 2 * (size_t)param_blocks(n_rows) * dim; }

extern "C" int norm_backward_cuda(TnNormKind kind, float *dinp, float *dgain, float *dbias, float *partials,
                                  const float *dout, const float *inp, const float *rstd, const float *gain,
                                  int n_rows, int dim, cudaStream_t stream, TnError *err) {
    NormArgs a = norm_args(kind, gain, nullptr, n_rows, dim);
    a.dgain = dgain;
    a.dbias = dbias;
    a.partials = partials;
    return launch_backward("norm_backward_cuda", a, dinp, dout, inp, rstd, stream, err);
}

extern "C" int norm_gate_forward_cuda(TnNormKind kind, uint16_t *gated, float *rstd, const uint16_t *attn,
                                      const float *gain, const float *bias, const uint16_t *gate, int gate_ld,
                                      int n_rows, int dim, cudaStream_t stream, TnError *err) {
    NormArgs a = norm_args(kind, gain, bias, n_rows, dim);
    a.gate = gate;
    a.gate_ld = gate_ld;
    return launch_forward("norm_gate_forward_cuda", a, gated, rstd, attn, stream, err);
}

extern "C" int norm_gate_backward_cuda(TnNormKind kind, uint16_t *dattn, uint16_t *dgate, float *dgain, float *dbias,
                                       float *partials, const float *dgated, const uint16_t *attn, const float *rstd,
                                       const float *gain, const float *bias, const uint16_t *gate, int gate_ld,
                                       int n_rows, int dim, cudaStream_t stream, TnError *err) {
    NormArgs a = norm_args(kind, gain, bias, n_rows, dim);
    a.gate = gate;
    a.gate_ld = gate_ld;
    a.dgain = dgain;
    a.dbias = dbias;
    a.partials = partials;
    a.dgate = dgate;
    return launch_backward("norm_gate_backward_cuda", a, dattn, dgated, attn, rstd, stream, err);
}
