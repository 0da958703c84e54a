/* attention_gradients.cu: dK and dV of the chunked form in one sweep.
 *
 * Both are anti-causal sums over the same pairs (t >= s):
 *   dv_s = sum_t lambda^(t-s) (q_t . k_s) dout_t,  dk_s = sum_t lambda^(t-s) (dout_t . v_s) q_t
 * In reversed time each is a Lightning Attention-2 pass, and their running
 * states are transposes of one another: D = sum_t lambda^.. q_t^T dout_t
 * serves dV (as K D) and dK (as V D^T). So one block per (sequence, head,
 * segment) walks the blocks of CHUNK tokens backwards, with D (dk x 128, fp32)
 * in the registers of 16 warps:
 *   dV_blk = (K Q^T ⊙ M) dO + diag(lambda^(i+1)) K D
 *   dK_blk = (V dO^T ⊙ M) Q + diag(lambda^(i+1)) V D^T
 *   D      = lambda^rows D + Q^T diag(lambda^(rows-1-j)) dO
 * Warps 0-7 compute the first product of each line, 8-15 the second; one
 * state update serves both, where the two separate passes would each carry
 * their own. Segments as in attention_chunked.cu, their incoming states from
 * that file's state pass of the dV product.
 * Needs dv = 128 and dk <= 128 (shared memory); other shapes run the passes.
 */
#include "kernels/cuda/attention_tiles.cuh"

namespace tn_attention {

constexpr int GRADIENT_WARPS = 16, GRADIENT_THREADS = GRADIENT_WARPS * 32, GRADIENT_VALUE = 128;

template <int KEY_WIDTH>
struct GradientShared {
    static constexpr int LD_KEY = KEY_WIDTH + PAD, LD_VALUE = GRADIENT_VALUE + PAD, LD_P = CHUNK + PAD;
    static constexpr size_t KEY_TILE = (size_t)CHUNK * LD_KEY * sizeof(bf16),
                            VALUE_TILE_BYTES = (size_t)CHUNK * LD_VALUE * sizeof(bf16);
    /* Q, dO, K and V have two buffers each (the next block's copies land in
     * the other during this block's work); the bf16 state has one. */
    static constexpr size_t Q = 0, DOUT = Q + 2 * KEY_TILE, K = DOUT + 2 * VALUE_TILE_BYTES, V = K + 2 * KEY_TILE,
                            P_VALUE = V + 2 * VALUE_TILE_BYTES,
                            P_KEY = P_VALUE + (size_t)CHUNK * LD_P * sizeof(bf16),
                            STATE = P_KEY + (size_t)CHUNK * LD_P * sizeof(bf16),
                            TABLE = STATE + (size_t)KEY_WIDTH * LD_VALUE * sizeof(bf16),
                            BYTES = TABLE + (size_t)DECAY_TABLE * sizeof(float);
    static_assert(BYTES <= 232448, "shared memory of a gradient block (227 KB on sm_90)");
};

/* p: the dV pass (query K, key Q, value dO, out dV, reversed). segment_states:
 * slot s - 1 holds segment s >= 1's incoming D (from launch_segment_states;
 * segment 0 starts from zero), or NULL for one segment. */
template <int KEY_WIDTH>
__global__ void __launch_bounds__(GRADIENT_THREADS, 1)
    key_value_gradients_kernel(AttnPass p, const bf16 *value_rows, long ld_value_rows, bf16 *key_gradient,
                               long ld_key_gradient, int segment_length, int segments, const float *segment_states) {
    typedef GradientShared<KEY_WIDTH> L;
    typedef StateLayout<KEY_WIDTH, GRADIENT_VALUE, GRADIENT_WARPS> Layout;
    extern __shared__ __align__(128) unsigned char shared[];
    bf16 *p_value = reinterpret_cast<bf16 *>(shared + L::P_VALUE), *p_key = reinterpret_cast<bf16 *>(shared + L::P_KEY);
    bf16 *state_bf16 = reinterpret_cast<bf16 *>(shared + L::STATE);
    float *table = reinterpret_cast<float *>(shared + L::TABLE);
    int warp = threadIdx.x / 32;

    int segment = blockIdx.x % segments, bh = blockIdx.x / segments;
    int b = bh / p.heads, h = bh % p.heads;
    long first_row = (long)b * p.seq_len;
    const bf16 *k_head = p.query + first_row * p.ld_query + (long)h * KEY_WIDTH;
    const bf16 *q_head = p.key + first_row * p.ld_key + (long)h * KEY_WIDTH;
    const bf16 *dout_head = p.value + first_row * p.ld_value + (long)h * GRADIENT_VALUE;
    const bf16 *v_head = value_rows + first_row * ld_value_rows + (long)h * GRADIENT_VALUE;
    bf16 *dv_head = p.out + first_row * p.ld_out + (long)h * GRADIENT_VALUE;
    bf16 *dk_head = key_gradient + first_row * ld_key_gradient + (long)h * KEY_WIDTH;
    float log2_lambda = log2f(p.lambda[h]);
    decay_table(table, log2_lambda);

    Acc running[Layout::TILES];
    const float *incoming = incoming_state(nullptr, segment_states, segment,
                                           (long)p.batch * p.heads * KEY_WIDTH * GRADIENT_VALUE,
                                           (long)bh * KEY_WIDTH * GRADIENT_VALUE);
    load_state<Layout>(running, incoming, GRADIENT_VALUE, warp);
    store_state<Layout>(running, state_bf16, L::LD_VALUE, warp);

    /* Barriers per block: A at the top (this block's tiles have landed,
     * every warp is done with the previous block, whose buffers the next
     * block's copies then take), B before the gradients (the scores are
     * made; D's product has been added in registers meanwhile), C after
     * them (nothing reads the bf16 copy of D any more, so it is refreshed). */
    int row_begin = segment * segment_length, row_end = min(p.seq_len, row_begin + segment_length);
    auto issue_loads = [&](int step, int row0) {
        int rows = min(CHUNK, row_end - row0), buffer = step & 1;
        load_tile<KEY_WIDTH, GRADIENT_THREADS>(reinterpret_cast<bf16 *>(shared + L::Q + buffer * L::KEY_TILE),
                                               L::LD_KEY, q_head, p.ld_key, p, row0, rows);
        load_tile<GRADIENT_VALUE, GRADIENT_THREADS>(
            reinterpret_cast<bf16 *>(shared + L::DOUT + buffer * L::VALUE_TILE_BYTES), L::LD_VALUE, dout_head,
            p.ld_value, p, row0, rows);
        load_tile<KEY_WIDTH, GRADIENT_THREADS>(reinterpret_cast<bf16 *>(shared + L::K + buffer * L::KEY_TILE),
                                               L::LD_KEY, k_head, p.ld_query, p, row0, rows);
        load_tile<GRADIENT_VALUE, GRADIENT_THREADS>(
            reinterpret_cast<bf16 *>(shared + L::V + buffer * L::VALUE_TILE_BYTES), L::LD_VALUE, v_head,
            ld_value_rows, p, row0, rows);
        cp_async_commit();
    };
    issue_loads(0, row_begin);
    for (int row0 = row_begin, step = 0; row0 < row_end; row0 += CHUNK, step++) {
        int rows = min(CHUNK, row_end - row0), next = row0 + CHUNK, buffer = step & 1;
        bf16 *q_tile = reinterpret_cast<bf16 *>(shared + L::Q + buffer * L::KEY_TILE);
        bf16 *dout_tile = reinterpret_cast<bf16 *>(shared + L::DOUT + buffer * L::VALUE_TILE_BYTES);
        bf16 *k_tile = reinterpret_cast<bf16 *>(shared + L::K + buffer * L::KEY_TILE);
        bf16 *v_tile = reinterpret_cast<bf16 *>(shared + L::V + buffer * L::VALUE_TILE_BYTES);
        cp_async_wait<0>();
        __syncthreads(); /* A */
        if (next < row_end) issue_loads(step + 1, next);
        if (warp < 8)
            decayed_scores<KEY_WIDTH, 8>(p_value, L::LD_P, k_tile, q_tile, L::LD_KEY, 0, table, log2_lambda, warp);
        else
            decayed_scores<GRADIENT_VALUE, 8>(p_key, L::LD_P, v_tile, dout_tile, L::LD_VALUE, 0, table, log2_lambda,
                                              warp - 8);
        /* D = lambda^rows D + (decayed Q)^T dO, in registers: the gradients below use the bf16 copy of the old D. */
        if (next < row_end)
            update_state<Layout>(running, q_tile, L::LD_KEY, dout_tile, L::LD_VALUE, table, rows, warp);
        __syncthreads(); /* B */
        /* dV = diag(lambda^(i+1)) K D + P_value dO by warps 0-7, dK = diag(..) V D^T + P_key Q by warps 8-15 */
        if (warp < 8) {
            Acc out[OutputTiles<GRADIENT_VALUE>::STRIPS][2];
            inter_block<GRADIENT_VALUE, KEY_WIDTH>(out, k_tile, L::LD_KEY, state_bf16, L::LD_VALUE, table, warp);
            intra_block_store<GRADIENT_VALUE>(out, p_value, L::LD_P, dout_tile, L::LD_VALUE, dv_head, p.ld_out, p,
                                              row0, rows, warp);
        } else {
            Acc out[OutputTiles<KEY_WIDTH>::STRIPS][2];
            inter_block<KEY_WIDTH, GRADIENT_VALUE, true>(out, v_tile, L::LD_VALUE, state_bf16, L::LD_VALUE, table,
                                                         warp - 8);
            intra_block_store<KEY_WIDTH>(out, p_key, L::LD_P, q_tile, L::LD_KEY, dk_head, ld_key_gradient, p, row0,
                                         rows, warp - 8);
        }
        if (next >= row_end) break; /* the last state is not wanted */
        __syncthreads(); /* C */
        store_state<Layout>(running, state_bf16, L::LD_VALUE, warp);
    }
}

bool gradients_fused(const AttnPass &value_pass) {
    return value_pass.value_width == GRADIENT_VALUE && value_pass.key_width <= 128;
}

template <int KEY_WIDTH>
static cudaError_t prepare(int *blocks_per_multiprocessor) {
    return resident_blocks(reinterpret_cast<const void *>(key_value_gradients_kernel<KEY_WIDTH>), GRADIENT_THREADS,
                           GradientShared<KEY_WIDTH>::BYTES, blocks_per_multiprocessor);
}

static cudaError_t prepare_width(int key_width, int *blocks_per_multiprocessor) {
    return key_width == 64 ? prepare<64>(blocks_per_multiprocessor) : prepare<128>(blocks_per_multiprocessor);
}

int gradient_segments(const AttnPass &value_pass) {
    int per_multiprocessor = 0;
    cudaError_t prepared = prepare_width(value_pass.key_width, &per_multiprocessor);
    return segments_on_device(prepared, (long)value_pass.batch * value_pass.heads, per_multiprocessor,
                              value_pass.seq_len);
}

cudaError_t launch_key_value_gradients(const AttnPass &value_pass, const bf16 *value, long ld_value,
                                       bf16 *key_gradient, long ld_key_gradient, float *segment_states,
                                       cudaStream_t stream) {
    int per_multiprocessor = 0;
    cudaError_t status = prepare_width(value_pass.key_width, &per_multiprocessor);
    if (status != cudaSuccess) return status;
    int segments = gradient_segments(value_pass), length = segment_length(value_pass.seq_len, segments);
    if (segments > 1) {
        status = launch_segment_states(value_pass, segments, nullptr, segment_states, stream);
        if (status != cudaSuccess) return status;
    }
    const float *incoming = segments > 1 ? segment_states : nullptr;
    unsigned grid = (unsigned)((long)value_pass.batch * value_pass.heads * segments);
    if (value_pass.key_width == 64)
        key_value_gradients_kernel<64><<<grid, GRADIENT_THREADS, GradientShared<64>::BYTES, stream>>>(
            value_pass, value, ld_value, key_gradient, ld_key_gradient, length, segments, incoming);
    else
        key_value_gradients_kernel<128><<<grid, GRADIENT_THREADS, GradientShared<128>::BYTES, stream>>>(
            value_pass, value, ld_value, key_gradient, ld_key_gradient, length, segments, incoming);
    return cudaGetLastError();
}

} /* namespace tn_attention */
