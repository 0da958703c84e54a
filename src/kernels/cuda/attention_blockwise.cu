/* attention_blockwise.cu: the paper's Alg. 1-2 (quadratic, IO-aware).
 *
 * A thread block owns one (sequence, head, query block of CHUNK tokens,
 * value tile of 64 columns). It loads its Q block once and visits every key
 * block j <= i, Alg. 1's inner loop: O_i += (Q_i K_j^T ⊙ M_ij) V_j with
 * M_ij[a, b] = lambda^((i - j) CHUNK + a - b) where that distance is >= 0.
 * The output block stays in the warps' accumulator registers; no n x n
 * matrix exists anywhere. Blocks with the most key blocks start first.
 */
#include "kernels/cuda/attention_tiles.cuh"

namespace tn_attention {

template <int KEY_WIDTH>
struct BlockwiseShared {
    static constexpr int LD_KEY = KEY_WIDTH + PAD, LD_VALUE = VALUE_TILE + PAD, LD_P = CHUNK + PAD;
    static constexpr size_t QUERY = 0, KEY = QUERY + (size_t)CHUNK * LD_KEY * sizeof(bf16),
                            VALUE = KEY + (size_t)CHUNK * LD_KEY * sizeof(bf16),
                            DECAYED = VALUE + (size_t)CHUNK * LD_VALUE * sizeof(bf16),
                            TABLE = DECAYED + (size_t)CHUNK * LD_P * sizeof(bf16),
                            BYTES = TABLE + (size_t)DECAY_TABLE * sizeof(float);
};

template <int KEY_WIDTH>
__global__ void __launch_bounds__(THREADS, KEY_WIDTH <= 128 ? 2 : 1) blockwise_kernel(AttnPass p) {
    typedef BlockwiseShared<KEY_WIDTH> L;
    extern __shared__ __align__(128) unsigned char shared[];
    bf16 *query = reinterpret_cast<bf16 *>(shared + L::QUERY), *key = reinterpret_cast<bf16 *>(shared + L::KEY);
    bf16 *value = reinterpret_cast<bf16 *>(shared + L::VALUE), *decayed = reinterpret_cast<bf16 *>(shared + L::DECAYED);
    int warp = threadIdx.x / 32;

    int chunks = (p.seq_len + CHUNK - 1) / CHUNK, value_tiles = p.value_width / VALUE_TILE, index = blockIdx.x;
    int tile = index % value_tiles;
    index /= value_tiles;
    long batch_heads = (long)p.batch * p.heads;
    int bh = (int)(index % batch_heads), query_chunk = chunks - 1 - (int)(index / batch_heads);
    int b = bh / p.heads, h = bh % p.heads;
    long first_row = (long)b * p.seq_len;
    const bf16 *key_head = p.key + first_row * p.ld_key + (long)h * KEY_WIDTH;
    const bf16 *value_head = p.value + first_row * p.ld_value + (long)h * p.value_width + tile * VALUE_TILE;
    bf16 *out_head = p.out + first_row * p.ld_out + (long)h * p.value_width + tile * VALUE_TILE;
    float log2_lambda = log2f(p.lambda[h]);
    float *table = reinterpret_cast<float *>(shared + L::TABLE);
    decay_table(table, log2_lambda);

    int query_row0 = query_chunk * CHUNK, query_rows = min(CHUNK, p.seq_len - query_row0);
    load_tile<KEY_WIDTH, THREADS>(query, L::LD_KEY, p.query + first_row * p.ld_query + (long)h * KEY_WIDTH,
                                  p.ld_query, p, query_row0, query_rows);
    /* Warp w owns row strip w / 2 of the output block and two column tiles. */
    int strip = warp / 2, column0 = warp % 2 * 2 * 16;
    Acc out[2];
    zero(out[0]);
    zero(out[1]);

    for (int key_chunk = 0; key_chunk <= query_chunk; key_chunk++) {
        int key_row0 = key_chunk * CHUNK, key_rows = min(CHUNK, p.seq_len - key_row0);
        bool diagonal = key_chunk == query_chunk;
        load_tile<KEY_WIDTH, THREADS>(key, L::LD_KEY, key_head, p.ld_key, p, key_row0, key_rows);
        load_tile<VALUE_TILE, THREADS>(value, L::LD_VALUE, value_head, p.ld_value, p, key_row0, key_rows);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        decayed_scores<KEY_WIDTH, WARPS>(decayed, L::LD_P, query, key, L::LD_KEY, query_row0 - key_row0, table,
                                         log2_lambda, warp);
        __syncthreads();
        mma_strip(out, decayed + strip * 16 * L::LD_P, L::LD_P, value + column0, L::LD_VALUE,
                  diagonal ? (strip + 1) * 16 : CHUNK);
        __syncthreads();
    }
    store_output_strip(out, out_head, p.ld_out, p, query_row0 + strip * 16, query_rows - strip * 16, column0);
}

template <int KEY_WIDTH>
static cudaError_t launch_width(const AttnPass &p, cudaStream_t stream) {
    size_t shared = BlockwiseShared<KEY_WIDTH>::BYTES;
    cudaError_t status = cudaFuncSetAttribute(blockwise_kernel<KEY_WIDTH>,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
    if (status != cudaSuccess) return status;
    long chunks = (p.seq_len + CHUNK - 1) / CHUNK;
    unsigned grid = (unsigned)((long)p.batch * p.heads * chunks * (p.value_width / VALUE_TILE));
    blockwise_kernel<KEY_WIDTH><<<grid, THREADS, shared, stream>>>(p);
    return cudaGetLastError();
}

cudaError_t launch_blockwise(const AttnPass &p, cudaStream_t stream) {
    switch (p.key_width) {
    case 64: return launch_width<64>(p, stream);
    case 128: return launch_width<128>(p, stream);
    case 256: return launch_width<256>(p, stream);
    }
    return cudaErrorInvalidValue;
}

} /* namespace tn_attention */
