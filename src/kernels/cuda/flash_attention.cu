#include "kernels/cuda/flash_attention.h"

#include <math.h>

#include "kernels/cuda/attention_tiles.cuh"
#include "kernels/cuda/device_common.cuh"

/* The tensor-core helpers (Acc, Fragment, load_a, load_b, mma, the
 * accumulator layout) are the Lightning Attention kernels' (attention_tiles.cuh). */
using namespace tn_attention;

namespace {

constexpr int BLOCK = 64;      /* queries per forward and dQ block, keys per dK/dV block and per key step */
constexpr int WARP_ROWS = 16;  /* rows of a block each of its warps owns */
constexpr int FLASH_WARPS = BLOCK / WARP_ROWS;
constexpr int FLASH_THREADS = FLASH_WARPS * 32;
constexpr int QUERY_STEP = 32; /* queries per step of the dK/dV sweep (keeps its accumulators in registers) */
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

/* What every kernel reads: pointers at the (b, h) of the block are derived
 * from these. */
struct FlashParams {
    const bf16 *query, *key, *value, *out, *dout;
    bf16 *dquery, *dkey, *dvalue, *result; /* result: the forward's out */
    const float *lse;
    float *lse_out, *delta;
    long ld_query, ld_key, ld_value, ld_out;
    int seq_len, heads;
    float scale_log2; /* log2(e) / sqrt(d): exponents in base 2 */
    float scale;      /* 1 / sqrt(d) */
};

/* Offset of head h of sequence b's row 0 in a tensor of row stride ld. */
__device__ __forceinline__ long head_offset(const FlashParams &p, long ld, int head_dim) {
    int b = blockIdx.y / p.heads, h = blockIdx.y % p.heads;
    return (long)b * p.seq_len * ld + (long)h * head_dim;
}

/* Whole block: starts copying rows [row0, row0 + ROWS) of one head (base at
 * its row 0, stride ld) into a tile of HEAD + PAD columns with cp.async; rows
 * at or past seq_len are zero-filled. The caller commits and waits. */
template <int HEAD, int ROWS>
__device__ __forceinline__ void load_rows(bf16 *tile, const bf16 *base, long ld, int row0, int seq_len) {
    constexpr int VECTORS = HEAD / 8, LD = HEAD + PAD;
    for (int index = threadIdx.x; index < ROWS * VECTORS; index += blockDim.x) {
        int r = index / VECTORS, c = index % VECTORS * 8;
        bool valid = row0 + r < seq_len;
        copy_async_16(tile + r * LD + c, valid ? base + (long)(row0 + r) * ld + c : base, valid ? 16 : 0);
    }
}

/* Whole block: the key and value tiles of keys [k0, k0 + BLOCK), once
 * every warp is done with the previous ones (the copies of the block
 * started before, such as its query tile, complete too). */
template <int HEAD>
__device__ __forceinline__ void load_key_block(bf16 *key, bf16 *value, const bf16 *key_head, const bf16 *value_head,
                                               const FlashParams &p, int k0) {
    __syncthreads();
    load_rows<HEAD, BLOCK>(key, key_head, p.ld_key, k0, p.seq_len);
    load_rows<HEAD, BLOCK>(value, value_head, p.ld_value, k0, p.seq_len);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
}

/* The accumulator of a 16x16 product as the A operand of the next one (its
 * mma layout is the A fragment's, element pairs rounded to bf16). */
__device__ __forceinline__ Fragment to_operand(const Acc &acc) {
    Fragment f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __nv_bfloat162 pair = __floats2bfloat162_rn(acc.x[2 * i], acc.x[2 * i + 1]);
        f.r[i] = *reinterpret_cast<unsigned *>(&pair);
    }
    return f;
}

/* Per warp: acc[j] += A (16 x HEAD, rows of `rows` at ld) B_j for the
 * column tiles j < TILES of B^T given as rows (element (k, n) of B_j is
 * columns[(16 j + n) * ld + k]): the scores of 16 rows against 16 TILES keys. */
template <int HEAD, int TILES>
__device__ __forceinline__ void row_products(Acc acc[TILES], const bf16 *rows, const bf16 *columns) {
    constexpr int LD = HEAD + PAD;
#pragma unroll
    for (int j = 0; j < TILES; j++) zero(acc[j]);
#pragma unroll
    for (int kk = 0; kk < HEAD; kk += 16) {
        Fragment fa;
        load_a(fa, rows + kk, LD);
#pragma unroll
        for (int j = 0; j < TILES; j++) {
            Fragment fb;
            load_b_transposed(fb, columns + j * 16 * LD + kk, LD);
            mma(acc[j], fa, fb);
        }
    }
}

/* Per warp: out[c] += A B for A = the TILES accumulators taken as a
 * 16 x 16 TILES operand and B the 16 TILES x HEAD tile at `tile` (rows). */
template <int HEAD, int TILES>
__device__ __forceinline__ void accumulate_products(Acc out[HEAD / 16], const Acc a[TILES], const bf16 *tile) {
    constexpr int LD = HEAD + PAD;
#pragma unroll
    for (int kk = 0; kk < TILES; kk++) {
        Fragment fa = to_operand(a[kk]);
#pragma unroll
        for (int c = 0; c < HEAD / 16; c++) {
            Fragment fb;
            load_b(fb, tile + kk * 16 * LD + c * 16, LD);
            mma(out[c], fa, fb);
        }
    }
}

/* Per warp: rows row0 + acc_row(e) < seq_len of the HEAD-wide accumulators,
 * times factor[0] (rows lane / 4) or factor[1] (8 rows below), to bf16 at
 * base (stride ld). */
template <int HEAD>
__device__ __forceinline__ void store_rows(const Acc acc[HEAD / 16], const float factor[2], bf16 *base, long ld,
                                           int row0, int seq_len) {
#pragma unroll
    for (int c = 0; c < HEAD / 16; c++)
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
            int row = row0 + acc_row(e);
            float f = factor[(e >> 1) & 1];
            if (row < seq_len)
                *reinterpret_cast<__nv_bfloat162 *>(base + (long)row * ld + c * 16 + acc_col(e)) =
                    __floats2bfloat162_rn(acc[c].x[e] * f, acc[c].x[e + 1] * f);
        }
}

/* Sum (or max) over the four lanes that hold one accumulator row. */
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

/* Query blocks in reverse: the last rows, with the most key blocks, start first. */
__device__ __forceinline__ int reversed_block(void) { return gridDim.x - 1 - blockIdx.x; }

template <int HEAD>
__global__ void __launch_bounds__(FLASH_THREADS) flash_forward_kernel(FlashParams p) {
    constexpr int LD = HEAD + PAD;
    extern __shared__ __align__(16) unsigned char shared[];
    bf16 *query = reinterpret_cast<bf16 *>(shared), *key = query + BLOCK * LD, *value = key + BLOCK * LD;
    int n = p.seq_len, q0 = reversed_block() * BLOCK, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int strip = q0 + warp * WARP_ROWS; /* this warp's first query */
    load_rows<HEAD, BLOCK>(query, p.query + head_offset(p, p.ld_query, HEAD), p.ld_query, q0, n);
    const bf16 *key_head = p.key + head_offset(p, p.ld_key, HEAD);
    const bf16 *value_head = p.value + head_offset(p, p.ld_value, HEAD);
    Acc out[HEAD / 16];
#pragma unroll
    for (int c = 0; c < HEAD / 16; c++) zero(out[c]);
    /* the running max (base-2 scaled scores) and this lane's part of the
     * running sum, for rows lane / 4 and lane / 4 + 8 of the strip */
    float running_max[2] = {-INFINITY, -INFINITY}, running_sum[2] = {0.0f, 0.0f};
    int key_end = min(n, q0 + BLOCK);
    for (int k0 = 0; k0 < key_end; k0 += BLOCK) {
        load_key_block<HEAD>(key, value, key_head, value_head, p, k0);
        Acc scores[BLOCK / 16];
        row_products<HEAD, BLOCK / 16>(scores, query + warp * WARP_ROWS * LD, key);
        /* Causal mask (key s <= query t; keys past n are zero rows, masked too). */
        float block_max[2] = {running_max[0], running_max[1]};
#pragma unroll
        for (int j = 0; j < BLOCK / 16; j++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int s = k0 + j * 16 + acc_col(e), t = strip + acc_row(e);
                float x = s <= t && s < n ? scores[j].x[e] * p.scale_log2 : -INFINITY;
                scores[j].x[e] = x;
                block_max[(e >> 1) & 1] = fmaxf(block_max[(e >> 1) & 1], x);
            }
        /* Online softmax: key 0 is in the first block of every row, so the
         * max is finite from then on and exp2(-inf) = 0 rescales nothing. */
        float rescale[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            block_max[i] = quad_max(block_max[i]);
            rescale[i] = exp2f(running_max[i] - block_max[i]);
            running_max[i] = block_max[i];
            running_sum[i] *= rescale[i];
        }
#pragma unroll
        for (int j = 0; j < BLOCK / 16; j++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float probability = exp2f(scores[j].x[e] - running_max[(e >> 1) & 1]);
                scores[j].x[e] = probability;
                running_sum[(e >> 1) & 1] += probability;
            }
#pragma unroll
        for (int c = 0; c < HEAD / 16; c++)
#pragma unroll
            for (int e = 0; e < 8; e++) out[c].x[e] *= rescale[(e >> 1) & 1];
        accumulate_products<HEAD, BLOCK / 16>(out, scores, value);
    }
    float inverse[2];
#pragma unroll
    for (int i = 0; i < 2; i++) {
        running_sum[i] = quad_sum(running_sum[i]);
        inverse[i] = 1.0f / running_sum[i];
    }
    store_rows<HEAD>(out, inverse, p.result + head_offset(p, p.ld_out, HEAD), p.ld_out, strip, n);
    if (lane % 4 == 0)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            int t = strip + lane / 4 + 8 * i;
            if (t < n) p.lse_out[(long)blockIdx.y * n + t] = (running_max[i] + log2f(running_sum[i])) * LN2;
        }
}

/* D_t = rowsum(dO_t ⊙ O_t) for every (row, head): one warp each. */
template <int HEAD>
__global__ void flash_delta_kernel(FlashParams p, int batch) {
    long warp = ((long)blockIdx.x * blockDim.x + threadIdx.x) / 32, rows = (long)batch * p.seq_len;
    int lane = threadIdx.x & 31;
    if (warp >= rows * p.heads) return;
    long row = warp / p.heads;
    int h = (int)(warp % p.heads), b = (int)(row / p.seq_len), t = (int)(row % p.seq_len);
    const bf16 *o = p.out + row * p.ld_out + (long)h * HEAD, *g = p.dout + row * p.ld_out + (long)h * HEAD;
    float sum = 0.0f;
    for (int c = lane; c < HEAD; c += 32) sum += __bfloat162float(o[c]) * __bfloat162float(g[c]);
    sum = tn_model_kernels::warp_sum(sum);
    if (lane == 0) p.delta[((long)b * p.heads + h) * p.seq_len + t] = sum;
}

/* dQ of 64 queries: sweep the key blocks up to the diagonal. */
template <int HEAD>
__global__ void __launch_bounds__(FLASH_THREADS) flash_dquery_kernel(FlashParams p) {
    constexpr int LD = HEAD + PAD;
    extern __shared__ __align__(16) unsigned char shared[];
    bf16 *query = reinterpret_cast<bf16 *>(shared), *dout = query + BLOCK * LD, *key = dout + BLOCK * LD;
    bf16 *value = key + BLOCK * LD;
    int n = p.seq_len, q0 = reversed_block() * BLOCK, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int strip = q0 + warp * WARP_ROWS;
    load_rows<HEAD, BLOCK>(query, p.query + head_offset(p, p.ld_query, HEAD), p.ld_query, q0, n);
    load_rows<HEAD, BLOCK>(dout, p.dout + head_offset(p, p.ld_out, HEAD), p.ld_out, q0, n);
    const bf16 *key_head = p.key + head_offset(p, p.ld_key, HEAD);
    const bf16 *value_head = p.value + head_offset(p, p.ld_value, HEAD);
    float lse2[2], delta[2]; /* rows lane / 4 and lane / 4 + 8 of the strip; 0 past n */
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int t = strip + lane / 4 + 8 * i;
        long at = (long)blockIdx.y * n + t;
        lse2[i] = t < n ? p.lse[at] * LOG2E : 0.0f;
        delta[i] = t < n ? p.delta[at] : 0.0f;
    }
    Acc dquery[HEAD / 16];
#pragma unroll
    for (int c = 0; c < HEAD / 16; c++) zero(dquery[c]);
    int key_end = min(n, q0 + BLOCK);
    for (int k0 = 0; k0 < key_end; k0 += BLOCK) {
        load_key_block<HEAD>(key, value, key_head, value_head, p, k0);
        Acc scores[BLOCK / 16], dprob[BLOCK / 16];
        row_products<HEAD, BLOCK / 16>(scores, query + warp * WARP_ROWS * LD, key);
        row_products<HEAD, BLOCK / 16>(dprob, dout + warp * WARP_ROWS * LD, value);
#pragma unroll
        for (int j = 0; j < BLOCK / 16; j++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int s = k0 + j * 16 + acc_col(e), t = strip + acc_row(e), i = (e >> 1) & 1;
                float probability = s <= t && t < n ? exp2f(scores[j].x[e] * p.scale_log2 - lse2[i]) : 0.0f;
                scores[j].x[e] = probability * (dprob[j].x[e] - delta[i]); /* dS without the 1/sqrt(d) */
            }
        accumulate_products<HEAD, BLOCK / 16>(dquery, scores, key);
    }
    float factor[2] = {p.scale, p.scale};
    store_rows<HEAD>(dquery, factor, p.dquery + head_offset(p, p.ld_query, HEAD), p.ld_query, strip, n);
}

/* dK and dV of 64 keys: sweep the query blocks from the diagonal on. */
template <int HEAD>
__global__ void __launch_bounds__(FLASH_THREADS) flash_dkey_dvalue_kernel(FlashParams p) {
    constexpr int LD = HEAD + PAD;
    extern __shared__ __align__(16) unsigned char shared[];
    bf16 *key = reinterpret_cast<bf16 *>(shared), *value = key + BLOCK * LD, *query = value + BLOCK * LD;
    bf16 *dout = query + QUERY_STEP * LD;
    float *lse2 = reinterpret_cast<float *>(dout + QUERY_STEP * LD), *delta = lse2 + QUERY_STEP;
    /* the first keys, with the most queries, start first */
    int n = p.seq_len, k0 = blockIdx.x * BLOCK, warp = threadIdx.x / 32;
    int strip = k0 + warp * WARP_ROWS; /* this warp's first key */
    load_rows<HEAD, BLOCK>(key, p.key + head_offset(p, p.ld_key, HEAD), p.ld_key, k0, n);
    load_rows<HEAD, BLOCK>(value, p.value + head_offset(p, p.ld_value, HEAD), p.ld_value, k0, n);
    const bf16 *query_head = p.query + head_offset(p, p.ld_query, HEAD);
    const bf16 *dout_head = p.dout + head_offset(p, p.ld_out, HEAD);
    Acc dkey[HEAD / 16], dvalue[HEAD / 16];
#pragma unroll
    for (int c = 0; c < HEAD / 16; c++) {
        zero(dkey[c]);
        zero(dvalue[c]);
    }
    for (int q0 = k0; q0 < n; q0 += QUERY_STEP) {
        __syncthreads();
        load_rows<HEAD, QUERY_STEP>(query, query_head, p.ld_query, q0, n);
        load_rows<HEAD, QUERY_STEP>(dout, dout_head, p.ld_out, q0, n);
        cp_async_commit();
        if (threadIdx.x < QUERY_STEP) {
            int t = q0 + threadIdx.x;
            long at = (long)blockIdx.y * n + t;
            lse2[threadIdx.x] = t < n ? p.lse[at] * LOG2E : 0.0f;
            delta[threadIdx.x] = t < n ? p.delta[at] : 0.0f;
        }
        cp_async_wait<0>();
        __syncthreads();
        /* transposed scores S^T = K Q^T and dP^T = V dO^T of the warp's 16 keys */
        Acc probability[QUERY_STEP / 16], dscore[QUERY_STEP / 16];
        row_products<HEAD, QUERY_STEP / 16>(probability, key + warp * WARP_ROWS * LD, query);
        row_products<HEAD, QUERY_STEP / 16>(dscore, value + warp * WARP_ROWS * LD, dout);
#pragma unroll
        for (int j = 0; j < QUERY_STEP / 16; j++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int column = j * 16 + acc_col(e), s = strip + acc_row(e), t = q0 + column;
                float pr = s <= t && t < n ? exp2f(probability[j].x[e] * p.scale_log2 - lse2[column]) : 0.0f;
                probability[j].x[e] = pr;
                dscore[j].x[e] = pr * (dscore[j].x[e] - delta[column]); /* dS^T without the 1/sqrt(d) */
            }
        accumulate_products<HEAD, QUERY_STEP / 16>(dvalue, probability, dout); /* dV += P^T dO */
        accumulate_products<HEAD, QUERY_STEP / 16>(dkey, dscore, query);       /* dK += dS^T Q */
    }
    float scale[2] = {p.scale, p.scale}, one[2] = {1.0f, 1.0f};
    store_rows<HEAD>(dkey, scale, p.dkey + head_offset(p, p.ld_key, HEAD), p.ld_key, strip, n);
    store_rows<HEAD>(dvalue, one, p.dvalue + head_offset(p, p.ld_value, HEAD), p.ld_value, strip, n);
}

size_t tile_bytes(int head_dim, int rows) { return (size_t)rows * (head_dim + PAD) * sizeof(bf16); }

/* Launches kernel on (blocks of BLOCK rows, batch * heads) with `bytes` of
 * dynamic shared memory (allowed past 48 KiB first). */
template <typename Kernel>
cudaError_t launch(Kernel kernel, const FlashShape *s, size_t bytes, const FlashParams &p, cudaStream_t stream) {
    cudaError_t status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (status != cudaSuccess) return status;
    dim3 grid((unsigned)((s->seq_len + BLOCK - 1) / BLOCK), (unsigned)(s->batch * s->heads));
    kernel<<<grid, FLASH_THREADS, bytes, stream>>>(p);
    return cudaGetLastError();
}

int check_shape(const char *function, const FlashShape *s, const void *const *pointers, int count, TnError *err) {
    if (s->head_dim != 64 && s->head_dim != 128)
        return tn_fail(err, "%s: head width %d (64 or 128 only)", function, s->head_dim);
    if (s->batch < 1 || s->seq_len < 1 || s->heads < 1 || (long)s->batch * s->heads > 65535)
        return tn_fail(err, "%s: batch %d x heads %d x seq_len %d out of range", function, s->batch, s->heads,
                       s->seq_len);
    if (s->ld_query % 8 || s->ld_key % 8 || s->ld_value % 8 || s->ld_out % 8)
        return tn_fail(err, "%s: row strides must be multiples of 8 elements", function);
    for (int i = 0; i < count; i++)
        if ((uintptr_t)pointers[i] % 16) return tn_fail(err, "%s: pointer %d is not 16-byte aligned", function, i);
    return 0;
}

FlashParams params_of(const FlashShape *s) {
    FlashParams p = {};
    p.ld_query = s->ld_query;
    p.ld_key = s->ld_key;
    p.ld_value = s->ld_value;
    p.ld_out = s->ld_out;
    p.seq_len = s->seq_len;
    p.heads = s->heads;
    p.scale = 1.0f / sqrtf((float)s->head_dim);
    p.scale_log2 = p.scale * LOG2E;
    return p;
}

} // namespace

extern "C" size_t flash_attention_scratch_bytes(const FlashShape *shape) {
    return (size_t)shape->batch * shape->heads * shape->seq_len * sizeof(float);
}

extern "C" int flash_attention_forward_cuda(uint16_t *out, float *lse, const uint16_t *query, const uint16_t *key,
                                            const uint16_t *value, const FlashShape *shape, cudaStream_t stream,
                                            TnError *err) {
    const char *function = "flash_attention_forward_cuda";
    const void *pointers[] = {out, query, key, value};
    if (check_shape(function, shape, pointers, 4, err)) return -1;
    FlashParams p = params_of(shape);
    p.query = reinterpret_cast<const bf16 *>(query);
    p.key = reinterpret_cast<const bf16 *>(key);
    p.value = reinterpret_cast<const bf16 *>(value);
    p.result = reinterpret_cast<bf16 *>(out);
    p.lse_out = lse;
    int d = shape->head_dim;
    size_t bytes = 3 * tile_bytes(d, BLOCK);
    cudaError_t status = d == 64 ? launch(flash_forward_kernel<64>, shape, bytes, p, stream)
                                 : launch(flash_forward_kernel<128>, shape, bytes, p, stream);
    if (status != cudaSuccess) return tn_fail(err, "%s: CUDA: %s", function, cudaGetErrorString(status));
    return 0;
}

extern "C" int flash_attention_backward_cuda(uint16_t *dquery, uint16_t *dkey, uint16_t *dvalue, const uint16_t *dout,
                                             const uint16_t *query, const uint16_t *key, const uint16_t *value,
                                             const uint16_t *out, const float *lse, const FlashShape *shape,
                                             void *scratch, cudaStream_t stream, TnError *err) {
    const char *function = "flash_attention_backward_cuda";
    const void *pointers[] = {dquery, dkey, dvalue, dout, query, key, value, out};
    if (check_shape(function, shape, pointers, 8, err)) return -1;
    FlashParams p = params_of(shape);
    p.query = reinterpret_cast<const bf16 *>(query);
    p.key = reinterpret_cast<const bf16 *>(key);
    p.value = reinterpret_cast<const bf16 *>(value);
    p.out = reinterpret_cast<const bf16 *>(out);
    p.dout = reinterpret_cast<const bf16 *>(dout);
    p.dquery = reinterpret_cast<bf16 *>(dquery);
    p.dkey = reinterpret_cast<bf16 *>(dkey);
    p.dvalue = reinterpret_cast<bf16 *>(dvalue);
    p.lse = lse;
    p.delta = static_cast<float *>(scratch);
    int d = shape->head_dim;
    long warps = (long)shape->batch * shape->seq_len * shape->heads;
    unsigned delta_blocks = (unsigned)((warps * 32 + 255) / 256);
    if (d == 64) flash_delta_kernel<64><<<delta_blocks, 256, 0, stream>>>(p, shape->batch);
    else flash_delta_kernel<128><<<delta_blocks, 256, 0, stream>>>(p, shape->batch);
    cudaError_t status = cudaGetLastError();
    size_t dquery_bytes = 4 * tile_bytes(d, BLOCK);
    size_t dkv_bytes = 2 * tile_bytes(d, BLOCK) + 2 * tile_bytes(d, QUERY_STEP) + 2 * QUERY_STEP * sizeof(float);
    if (status == cudaSuccess)
        status = d == 64 ? launch(flash_dquery_kernel<64>, shape, dquery_bytes, p, stream)
                         : launch(flash_dquery_kernel<128>, shape, dquery_bytes, p, stream);
    if (status == cudaSuccess)
        status = d == 64 ? launch(flash_dkey_dvalue_kernel<64>, shape, dkv_bytes, p, stream)
                         : launch(flash_dkey_dvalue_kernel<128>, shape, dkv_bytes, p, stream);
    if (status != cudaSuccess) return tn_fail(err, "%s: CUDA: %s", function, cudaGetErrorString(status));
    return 0;
}
