/* attention_chunked.cu: Lightning Attention-2 (linear in n) on the tensor cores.
 *
 * A thread block owns one (sequence, head, segment, value tile of 64 or 128
 * columns) and walks its segment in blocks of CHUNK tokens, keeping the
 * running state S (key_width x tile, fp32) in the warps' accumulator registers:
 *   O_blk = (Q K^T ⊙ M) V + diag(lambda^(i+1)) Q S      intra + inter block
 *   S     = lambda^rows S + (diag(lambda^(rows-1-j)) K)^T V
 * with M[i, j] = lambda^(i-j) for j <= i: every factor is <= 1.
 * Q S takes S rounded to bf16 (a shared-memory copy refreshed each block);
 * the state itself is accumulated in fp32.
 *
 * Small batch * heads: the sequence is cut into segments, run as three
 * launches: (1) each segment's local state from zero (no output), (2) a scan
 * over segments turning them into each segment's incoming state, with S0 in
 * front and the final state written back, (3) the outputs of every segment
 * from its incoming state. Step (1) repeats only the state products.
 * Loads are cp.async: K and V of the next block are in flight during this
 * block's work (two buffers each), Q of the next block during the state update.
 */
#include "kernels/cuda/attention_tiles.cuh"

namespace tn_attention {

/* A block owns COLUMNS (64 or 128) value columns with COLUMNS / 8 warps;
 * 128 computes each block's Q K^T and loads its Q and K once for twice the
 * columns, in one block of 16 warps per SM. */
template <int COLUMNS>
struct ChunkedWarps {
    static constexpr int COUNT = COLUMNS / 8, THREADS = COUNT * 32, COLUMN_TILES = COLUMNS / 16;
};

template <int KEY_WIDTH, int COLUMNS>
struct ChunkedShared {
    static constexpr int LD_KEY = KEY_WIDTH + PAD, LD_VALUE = COLUMNS + PAD, LD_P = CHUNK + PAD;
    /* K and V have two buffers each: the next chunk's copy runs during this chunk's work. */
    static constexpr size_t KEY_TILE = (size_t)CHUNK * LD_KEY * sizeof(bf16),
                            VALUE_TILE_BYTES = (size_t)CHUNK * LD_VALUE * sizeof(bf16);
    static constexpr size_t QUERY = 0, KEY = QUERY + KEY_TILE, VALUE = KEY + 2 * KEY_TILE,
                            DECAYED = VALUE + 2 * VALUE_TILE_BYTES,
                            STATE = DECAYED + (size_t)CHUNK * LD_P * sizeof(bf16),
                            SCRATCH = STATE + (size_t)KEY_WIDTH * LD_VALUE * sizeof(bf16),
                            TABLE = SCRATCH + (size_t)ChunkedWarps<COLUMNS>::COUNT * 256 * sizeof(float),
                            BYTES = TABLE + (size_t)DECAY_TABLE * sizeof(float);
};

/* state_base: [segments][batch * heads][KEY_WIDTH][value_width] fp32, read
 * as this block's initial state when read_state, written with its final
 * state when write_state. */
template <int KEY_WIDTH, int COLUMNS>
__global__ void __launch_bounds__(ChunkedWarps<COLUMNS>::THREADS, KEY_WIDTH <= 128 && COLUMNS == 64 ? 2 : 1)
    chunked_kernel(AttnPass p, int segment_length, int segments, float *state_base, int read_state, int write_state,
                   int produce_output) {
    typedef ChunkedShared<KEY_WIDTH, COLUMNS> L;
    constexpr int WARP_COUNT = ChunkedWarps<COLUMNS>::COUNT, COLUMN_TILES = ChunkedWarps<COLUMNS>::COLUMN_TILES;
    /* Warp w owns STATE_TILES consecutive 16x16 tiles of S (row-major over
     * KEY_WIDTH/16 x COLUMN_TILES). */
    constexpr int STATE_TILES = KEY_WIDTH / 16 * COLUMN_TILES / WARP_COUNT;
    extern __shared__ __align__(128) unsigned char shared[];
    bf16 *query = reinterpret_cast<bf16 *>(shared + L::QUERY), *decayed = reinterpret_cast<bf16 *>(shared + L::DECAYED);
    bf16 *state_bf16 = reinterpret_cast<bf16 *>(shared + L::STATE);
    float *table = reinterpret_cast<float *>(shared + L::TABLE);
    int warp = threadIdx.x / 32;
    float *scratch = reinterpret_cast<float *>(shared + L::SCRATCH) + warp * 256;

    int value_tiles = p.value_width / COLUMNS, index = blockIdx.x;
    int tile = index % value_tiles;
    index /= value_tiles;
    int segment = index % segments, bh = index / segments;
    int b = bh / p.heads, h = bh % p.heads;
    long first_row = (long)b * p.seq_len;
    const bf16 *query_head = p.query + first_row * p.ld_query + (long)h * KEY_WIDTH;
    const bf16 *key_head = p.key + first_row * p.ld_key + (long)h * KEY_WIDTH;
    const bf16 *value_head = p.value + first_row * p.ld_value + (long)h * p.value_width + tile * COLUMNS;
    bf16 *out_head = p.out + first_row * p.ld_out + (long)h * p.value_width + tile * COLUMNS;
    float *state = state_base ? state_base + ((long)segment * p.batch * p.heads + bh) * KEY_WIDTH * p.value_width +
                                    tile * COLUMNS
                              : nullptr;
    float log2_lambda = log2f(p.lambda[h]);
    decay_table(table, log2_lambda);

    Acc running[STATE_TILES];
#pragma unroll
    for (int m = 0; m < STATE_TILES; m++) {
        int t = warp * STATE_TILES + m, r = t / COLUMN_TILES, c = t % COLUMN_TILES;
        if (read_state) load_float_tile(running[m], state + (long)r * 16 * p.value_width + c * 16, p.value_width);
        else zero(running[m]);
        if (produce_output) store_bf16_tile(running[m], state_bf16 + r * 16 * L::LD_VALUE + c * 16, L::LD_VALUE);
    }

    /* Copies in flight, in commit order: K, V of chunk c+1 (issued at the top
     * of chunk c) and Q of chunk c+1 (issued once chunk c's outputs are done),
     * so waiting for all but the newest group at the top of a chunk leaves
     * only the next chunk's K, V pending. */
    int row_begin = segment * segment_length;
    int row_end = min(p.seq_len, row_begin + segment_length);
    if (produce_output)
        load_tile(query, L::LD_KEY, query_head, p.ld_query, p, row_begin, min(CHUNK, row_end - row_begin), KEY_WIDTH);
    load_tile(reinterpret_cast<bf16 *>(shared + L::KEY), L::LD_KEY, key_head, p.ld_key, p, row_begin,
              min(CHUNK, row_end - row_begin), KEY_WIDTH);
    load_tile(reinterpret_cast<bf16 *>(shared + L::VALUE), L::LD_VALUE, value_head, p.ld_value, p, row_begin,
              min(CHUNK, row_end - row_begin), COLUMNS);
    cp_async_commit();
    for (int row0 = row_begin, step = 0; row0 < row_end; row0 += CHUNK, step++) {
        int rows = min(CHUNK, row_end - row0), next = row0 + CHUNK;
        bf16 *key = reinterpret_cast<bf16 *>(shared + L::KEY + (step & 1) * L::KEY_TILE);
        bf16 *value = reinterpret_cast<bf16 *>(shared + L::VALUE + (step & 1) * L::VALUE_TILE_BYTES);
        if (next < row_end) {
            int next_rows = min(CHUNK, row_end - next);
            load_tile(reinterpret_cast<bf16 *>(shared + L::KEY + (~step & 1) * L::KEY_TILE), L::LD_KEY, key_head,
                      p.ld_key, p, next, next_rows, KEY_WIDTH);
            load_tile(reinterpret_cast<bf16 *>(shared + L::VALUE + (~step & 1) * L::VALUE_TILE_BYTES), L::LD_VALUE,
                      value_head, p.ld_value, p, next, next_rows, COLUMNS);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (produce_output) {
            /* Intra block, Alg. 1 line "O = (Q K^T ⊙ M) V": the decayed scores. */
            decayed_scores<KEY_WIDTH, WARP_COUNT>(decayed, L::LD_P, query, key, L::LD_KEY, 0, table, log2_lambda, warp);
            __syncthreads();
            /* O = diag(lambda^(i+1)) Q S + (Q K^T ⊙ M) V; the masked tiles of
             * the product are zero, so the sum stops at the diagonal. Warp w
             * owns row strip w / 2 and two column tiles (one A fragment, two
             * products). */
            int i = warp / (WARP_COUNT / TILES), c0 = warp % (WARP_COUNT / TILES) * 2;
            Acc out[2];
            zero(out[0]);
            zero(out[1]);
            mma_strip(out, query + i * 16 * L::LD_KEY, L::LD_KEY, state_bf16 + c0 * 16, L::LD_VALUE, KEY_WIDTH);
#pragma unroll
            for (int m = 0; m < 2; m++) scale_rows(out[m], table, i * 16 + 1);
            mma_strip(out, decayed + i * 16 * L::LD_P, L::LD_P, value + c0 * 16, L::LD_VALUE, (i + 1) * 16);
            store_output_strip(out, scratch, out_head, p.ld_out, p, row0 + i * 16, rows - i * 16, c0 * 16);
        }
        if (next >= row_end && !write_state) break; /* the last state is not wanted */
        __syncthreads();
        if (produce_output && next < row_end)
            load_tile(query, L::LD_KEY, query_head, p.ld_query, p, next, min(CHUNK, row_end - next), KEY_WIDTH);
        cp_async_commit();
        decay_value_rows(value, L::LD_VALUE, COLUMNS, rows, table);
        __syncthreads();
        /* S = lambda^rows S + K^T (decayed V). */
        update_state<STATE_TILES, COLUMN_TILES>(running, key, L::LD_KEY, value, L::LD_VALUE, table[rows], warp,
                                                produce_output ? state_bf16 : nullptr, L::LD_VALUE);
        __syncthreads();
    }
    if (write_state) {
#pragma unroll
        for (int m = 0; m < STATE_TILES; m++) {
            int t = warp * STATE_TILES + m, r = t / COLUMN_TILES, c = t % COLUMN_TILES;
            store_float_tile(running[m], state + (long)r * 16 * p.value_width + c * 16, p.value_width);
        }
    }
}

/* Step (2): states[s] holds segment s's local state on entry and its incoming
 * state on return: S_in(0) = S0 (or 0), S_in(s+1) = lambda^len(s) S_in(s) + local(s).
 * The final state goes to `state` when it is not NULL. One thread per element. */
__global__ void segment_scan_kernel(float *states, float *state, int segments, int segment_length, int seq_len,
                                    int heads, long batch_heads, long state_size, const float *lambda) {
    long index = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= batch_heads * state_size) return;
    int h = (int)(index / state_size % heads);
    float log2_lambda = log2f(lambda[h]);
    float running = state ? state[index] : 0.0f;
    for (int s = 0; s < segments; s++) {
        float *local = states + (long)s * batch_heads * state_size + index;
        float next = *local;
        *local = running;
        running = decay_power(log2_lambda, min(segment_length, seq_len - s * segment_length)) * running + next;
    }
    if (state) state[index] = running;
}

/* 128 columns a block where the value width allows and its shared memory fits (key width <= 128). */
static int block_columns(const AttnPass &p) { return p.value_width % 128 == 0 && p.key_width <= 128 ? 128 : 64; }

template <int KEY_WIDTH, int COLUMNS>
static cudaError_t prepare(int *blocks_per_multiprocessor) {
    size_t shared = ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES;
    cudaError_t status = cudaFuncSetAttribute(chunked_kernel<KEY_WIDTH, COLUMNS>,
                                              cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
    if (status != cudaSuccess) return status;
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_multiprocessor, chunked_kernel<KEY_WIDTH, COLUMNS>,
                                                         ChunkedWarps<COLUMNS>::THREADS, shared);
}

static cudaError_t occupancy(const AttnPass &p, int *blocks_per_multiprocessor) {
    switch (p.key_width * 1000 + block_columns(p)) {
    case 64064: return prepare<64, 64>(blocks_per_multiprocessor);
    case 64128: return prepare<64, 128>(blocks_per_multiprocessor);
    case 128064: return prepare<128, 64>(blocks_per_multiprocessor);
    case 128128: return prepare<128, 128>(blocks_per_multiprocessor);
    case 256064: return prepare<256, 64>(blocks_per_multiprocessor);
    }
    return cudaErrorInvalidValue;
}
/* Segment length in tokens: a whole number of chunks, so every chunk but the last is full. */
int segment_length(int seq_len, int segments) {
    int chunks = (seq_len + CHUNK - 1) / CHUNK;
    return (chunks + segments - 1) / segments * CHUNK;
}

int choose_segments(long blocks, long slots, int seq_len) {
    /* Each block walks its segment chunk by chunk, so the time goes as
     * (waves of blocks) x (chunks per segment + about 2 for the block's
     * start and end); with segments, the extra state pass costs about a
     * third more (weights 3 and 4 below). A segment keeps at least 4 chunks. */
    int chunks = (seq_len + CHUNK - 1) / CHUNK, best = 1;
    long best_cost = 3 * ((blocks + slots - 1) / slots) * (chunks + 2);
    for (int segments = 2; segments <= chunks / 4; segments++) {
        int length = segment_length(seq_len, segments) / CHUNK;
        long used = (chunks + length - 1) / length; /* segments that are not empty */
        long cost = 4 * ((blocks * used + slots - 1) / slots) * (length + 2);
        if (cost < best_cost) best = (int)used, best_cost = cost;
    }
    return best;
}

long multiprocessor_count(void) {
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
        return 0;
    return count;
}

int chunked_segments(const AttnPass &p) {
    int per_multiprocessor = 0;
    if (occupancy(p, &per_multiprocessor) != cudaSuccess) return 1;
    return choose_segments((long)p.batch * p.heads * (p.value_width / block_columns(p)),
                           multiprocessor_count() * per_multiprocessor, p.seq_len);
}

/* Steps (1) and (2) for `segments` > 1 segments of `length` tokens. */
template <int KEY_WIDTH, int COLUMNS>
static cudaError_t launch_states(const AttnPass &p, int segments, int length, float *segment_states, float *state,
                                 cudaStream_t stream) {
    long batch_heads = (long)p.batch * p.heads;
    unsigned grid = (unsigned)(batch_heads * segments * (p.value_width / COLUMNS));
    chunked_kernel<KEY_WIDTH, COLUMNS><<<grid, ChunkedWarps<COLUMNS>::THREADS, ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES,
                                         stream>>>(p, length, segments, segment_states, 0, 1, 0);
    long state_size = (long)KEY_WIDTH * p.value_width, elements = batch_heads * state_size;
    segment_scan_kernel<<<(unsigned)((elements + 255) / 256), 256, 0, stream>>>(
        segment_states, state, segments, length, p.seq_len, p.heads, batch_heads, state_size, p.lambda);
    return cudaGetLastError();
}

template <int KEY_WIDTH, int COLUMNS>
static cudaError_t launch_width(const AttnPass &p, float *state, float *segment_states, int segments, bool outputs,
                                cudaStream_t stream) {
    size_t shared = ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES;
    int threads = ChunkedWarps<COLUMNS>::THREADS, per_multiprocessor = 0;
    cudaError_t status = prepare<KEY_WIDTH, COLUMNS>(&per_multiprocessor); /* the shared-memory limit */
    if (status != cudaSuccess) return status;
    if (segments < 1) segments = chunked_segments(p);
    int length = segment_length(p.seq_len, segments);
    unsigned grid = (unsigned)((long)p.batch * p.heads * segments * (p.value_width / COLUMNS));
    if (segments == 1) {
        chunked_kernel<KEY_WIDTH, COLUMNS><<<grid, threads, shared, stream>>>(p, length, 1, state, state != nullptr,
                                                                                state != nullptr, 1);
        return cudaGetLastError();
    }
    status = launch_states<KEY_WIDTH, COLUMNS>(p, segments, length, segment_states, state, stream);
    if (status != cudaSuccess || !outputs) return status;
    chunked_kernel<KEY_WIDTH, COLUMNS><<<grid, threads, shared, stream>>>(p, length, segments, segment_states, 1, 0, 1);
    return cudaGetLastError();
}

/* segments < 1: chosen by chunked_segments; outputs false: steps (1), (2) only. */
static cudaError_t dispatch(const AttnPass &p, float *state, float *segment_states, int segments, bool outputs,
                            cudaStream_t stream) {
    switch (p.key_width * 1000 + block_columns(p)) {
    case 64064: return launch_width<64, 64>(p, state, segment_states, segments, outputs, stream);
    case 64128: return launch_width<64, 128>(p, state, segment_states, segments, outputs, stream);
    case 128064: return launch_width<128, 64>(p, state, segment_states, segments, outputs, stream);
    case 128128: return launch_width<128, 128>(p, state, segment_states, segments, outputs, stream);
    case 256064: return launch_width<256, 64>(p, state, segment_states, segments, outputs, stream);
    }
    return cudaErrorInvalidValue;
}

cudaError_t launch_chunked(const AttnPass &p, float *state, float *segment_states, cudaStream_t stream) {
    return dispatch(p, state, segment_states, 0, true, stream);
}

cudaError_t launch_segment_states(const AttnPass &p, int segments, float *segment_states, cudaStream_t stream) {
    return dispatch(p, nullptr, segment_states, segments, false, stream);
}

} /* namespace tn_attention */
