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
 * Small batch * heads: the sequence is cut into segments, run as up to
 * three launches: (1) the local state (from zero, no output) of every
 * segment but the last, (2) a scan over segments turning them into each
 * segment's incoming state, with S0 in front (not needed, so not launched,
 * for two segments and no S0), (3) the outputs of every segment from its
 * incoming state, the last segment writing the final state. Step (1)
 * repeats only the state products.
 * Loads are cp.async, issued at the top of a block for the next one (K, V,
 * and Q where it has two buffers) into the buffers the previous block used.
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

/* sm_90: shared memory of an SM (228 KB), the most one block may opt in to
 * (227 KB) and what each resident block keeps back (1 KB). */
constexpr size_t SHARED_PER_SM = 233472, SHARED_PER_BLOCK = 232448, SHARED_RESERVED = 1024;

template <int KEY_WIDTH, int COLUMNS>
struct ChunkedShared {
    /* 64 columns with key width <= 128: two blocks per SM */
    static constexpr int BLOCKS_PER_SM = KEY_WIDTH <= 128 && COLUMNS == 64 ? 2 : 1;
    static constexpr int LD_KEY = KEY_WIDTH + PAD, LD_VALUE = COLUMNS + PAD, LD_P = CHUNK + PAD;
    static constexpr size_t KEY_TILE = (size_t)CHUNK * LD_KEY * sizeof(bf16),
                            VALUE_TILE_BYTES = (size_t)CHUNK * LD_VALUE * sizeof(bf16),
                            STATE_TILE = (size_t)KEY_WIDTH * LD_VALUE * sizeof(bf16);
    /* K and V have two buffers each: the next chunk's copy runs during this
     * chunk's work. Q and the bf16 state get two as well where they fit in a
     * block's share of the SM (two blocks of 64 columns with key width 128
     * keep one of each; key width 256 keeps one state). */
    static constexpr size_t FIXED = 2 * KEY_TILE + 2 * VALUE_TILE_BYTES + (size_t)CHUNK * LD_P * sizeof(bf16) +
                                    (size_t)ChunkedWarps<COLUMNS>::COUNT * 256 * sizeof(float) +
                                    (size_t)DECAY_TABLE * sizeof(float);
    static constexpr size_t SHARE = SHARED_PER_SM / BLOCKS_PER_SM - SHARED_RESERVED;
    static constexpr int STATE_BUFFERS = FIXED + 2 * KEY_TILE + 2 * STATE_TILE <= SHARE ? 2 : 1;
    static constexpr int QUERY_BUFFERS = FIXED + 2 * KEY_TILE + STATE_BUFFERS * STATE_TILE <= SHARE ? 2 : 1;
    static constexpr size_t QUERY = 0, KEY = QUERY + QUERY_BUFFERS * KEY_TILE, VALUE = KEY + 2 * KEY_TILE,
                            DECAYED = VALUE + 2 * VALUE_TILE_BYTES,
                            STATE = DECAYED + (size_t)CHUNK * LD_P * sizeof(bf16),
                            SCRATCH = STATE + STATE_BUFFERS * STATE_TILE,
                            TABLE = SCRATCH + (size_t)ChunkedWarps<COLUMNS>::COUNT * 256 * sizeof(float),
                            BYTES = TABLE + (size_t)DECAY_TABLE * sizeof(float);
    static_assert(BYTES <= SHARE && BYTES <= SHARED_PER_BLOCK, "shared memory of a chunked block");
};

/* What a launch of chunked_kernel does with states (see the file comment);
 * slots are [segments][batch * heads][KEY_WIDTH][value_width] fp32. */
struct ChunkedStates {
    int segment_length, segments; /* tokens per segment; segments of the sequence */
    int launched;                 /* segments with blocks: segments, or segments - 1 for the state pass */
    const float *incoming;        /* block s starts from slot s here where s > 0 or read_first; else from 0 */
    int read_first;
    float *locals;                /* state pass: segment s's local state to slot s + 1 here */
    float *final_state;           /* when not NULL: the last segment's state after its last token */
    int produce_output;
};

template <int KEY_WIDTH, int COLUMNS>
__global__ void __launch_bounds__(ChunkedWarps<COLUMNS>::THREADS, ChunkedShared<KEY_WIDTH, COLUMNS>::BLOCKS_PER_SM)
    chunked_kernel(AttnPass p, ChunkedStates plan) {
    typedef ChunkedShared<KEY_WIDTH, COLUMNS> L;
    constexpr int WARP_COUNT = ChunkedWarps<COLUMNS>::COUNT, COLUMN_TILES = ChunkedWarps<COLUMNS>::COLUMN_TILES;
    /* Warp w owns STATE_TILES consecutive 16x16 tiles of S (row-major over
     * KEY_WIDTH/16 x COLUMN_TILES). */
    constexpr int STATE_TILES = KEY_WIDTH / 16 * COLUMN_TILES / WARP_COUNT;
    extern __shared__ __align__(128) unsigned char shared[];
    bf16 *decayed = reinterpret_cast<bf16 *>(shared + L::DECAYED);
    float *table = reinterpret_cast<float *>(shared + L::TABLE);
    int warp = threadIdx.x / 32;
    float *scratch = reinterpret_cast<float *>(shared + L::SCRATCH) + warp * 256;

    int value_tiles = p.value_width / COLUMNS, index = blockIdx.x;
    int tile = index % value_tiles;
    index /= value_tiles;
    int segment = index % plan.launched, bh = index / plan.launched;
    int b = bh / p.heads, h = bh % p.heads;
    long first_row = (long)b * p.seq_len;
    const bf16 *query_head = p.query + first_row * p.ld_query + (long)h * KEY_WIDTH;
    const bf16 *key_head = p.key + first_row * p.ld_key + (long)h * KEY_WIDTH;
    const bf16 *value_head = p.value + first_row * p.ld_value + (long)h * p.value_width + tile * COLUMNS;
    bf16 *out_head = p.out + first_row * p.ld_out + (long)h * p.value_width + tile * COLUMNS;
    long state_offset = (long)bh * KEY_WIDTH * p.value_width + tile * COLUMNS,
         slot_stride = (long)p.batch * p.heads * KEY_WIDTH * p.value_width;
    const float *incoming = plan.incoming && (segment > 0 || plan.read_first)
                                ? plan.incoming + segment * slot_stride + state_offset
                                : nullptr;
    float *outgoing = plan.locals ? plan.locals + (segment + 1) * slot_stride + state_offset
                      : plan.final_state && segment == plan.segments - 1 ? plan.final_state + state_offset
                                                                           : nullptr;
    float log2_lambda = log2f(p.lambda[h]);
    decay_table(table, log2_lambda);
    auto query_buffer = [&](int step) {
        return reinterpret_cast<bf16 *>(shared + L::QUERY + (L::QUERY_BUFFERS == 2 ? step & 1 : 0) * L::KEY_TILE);
    };
    auto state_buffer = [&](int step) {
        return reinterpret_cast<bf16 *>(shared + L::STATE + (L::STATE_BUFFERS == 2 ? step & 1 : 0) * L::STATE_TILE);
    };

    Acc running[STATE_TILES];
#pragma unroll
    for (int m = 0; m < STATE_TILES; m++) {
        int t = warp * STATE_TILES + m, r = t / COLUMN_TILES, c = t % COLUMN_TILES;
        if (incoming) load_float_tile(running[m], incoming + (long)r * 16 * p.value_width + c * 16, p.value_width);
        else zero(running[m]);
    }
    if (plan.produce_output) store_state<STATE_TILES, COLUMN_TILES>(running, state_buffer(0), L::LD_VALUE, warp);

    /* One barrier (A) at the top of each chunk: its tiles have landed and
     * every warp is done with the previous chunk, whose buffers the next
     * chunk's copies then overwrite. With two state buffers, S of the next
     * chunk goes to the other one while the scores are made, so a second
     * barrier (B) before the outputs is all; with one, a third (C) after
     * them guards the bf16 copy of S (and Q, with one Q buffer). */
    int row_begin = segment * plan.segment_length;
    int row_end = min(p.seq_len, row_begin + plan.segment_length);
    auto issue_loads = [&](int step, int row0, bool query) {
        int rows = min(CHUNK, row_end - row0);
        if (query)
            load_tile(query_buffer(step), L::LD_KEY, query_head, p.ld_query, p, row0, rows, KEY_WIDTH);
        load_tile(reinterpret_cast<bf16 *>(shared + L::KEY + (step & 1) * L::KEY_TILE), L::LD_KEY, key_head, p.ld_key,
                  p, row0, rows, KEY_WIDTH);
        load_tile(reinterpret_cast<bf16 *>(shared + L::VALUE + (step & 1) * L::VALUE_TILE_BYTES), L::LD_VALUE,
                  value_head, p.ld_value, p, row0, rows, COLUMNS);
        cp_async_commit();
    };
    issue_loads(0, row_begin, plan.produce_output);
    for (int row0 = row_begin, step = 0; row0 < row_end; row0 += CHUNK, step++) {
        int rows = min(CHUNK, row_end - row0), next = row0 + CHUNK;
        bf16 *query = query_buffer(step);
        bf16 *key = reinterpret_cast<bf16 *>(shared + L::KEY + (step & 1) * L::KEY_TILE);
        bf16 *value = reinterpret_cast<bf16 *>(shared + L::VALUE + (step & 1) * L::VALUE_TILE_BYTES);
        bool update = next < row_end || outgoing; /* the last state is wanted only to be written */
        cp_async_wait<0>();
        __syncthreads(); /* A */
        if (next < row_end) issue_loads(step + 1, next, plan.produce_output && L::QUERY_BUFFERS == 2);
        /* The state product first where nothing reads S before barrier B:
         * it fills the time of warps whose score tiles are masked. */
        bool early = !plan.produce_output || L::STATE_BUFFERS == 2 || L::QUERY_BUFFERS == 2;
        if (plan.produce_output)
            /* Intra block, Alg. 1 line "O = (Q K^T ⊙ M) V": the decayed scores. */
            decayed_scores<KEY_WIDTH, WARP_COUNT>(decayed, L::LD_P, query, key, L::LD_KEY, 0, table, log2_lambda, warp);
        /* S = lambda^rows S + (decayed K)^T V */
        if (update && early) {
            update_state<STATE_TILES, COLUMN_TILES>(running, key, L::LD_KEY, value, L::LD_VALUE, table, rows, warp);
            if (plan.produce_output && L::STATE_BUFFERS == 2)
                store_state<STATE_TILES, COLUMN_TILES>(running, state_buffer(step + 1), L::LD_VALUE, warp);
        }
        if (!plan.produce_output) continue;
        __syncthreads(); /* B */
        /* O = diag(lambda^(i+1)) Q S + (Q K^T ⊙ M) V; the masked tiles of
         * the product are zero, so the sum stops at the diagonal. Warp w
         * owns row strip w / 2 and two column tiles (one A fragment, two
         * products). */
        int i = warp / (WARP_COUNT / TILES), c0 = warp % (WARP_COUNT / TILES) * 2;
        Acc out[2];
        zero(out[0]);
        zero(out[1]);
        mma_strip(out, query + i * 16 * L::LD_KEY, L::LD_KEY, state_buffer(step) + c0 * 16, L::LD_VALUE, KEY_WIDTH);
#pragma unroll
        for (int m = 0; m < 2; m++) scale_rows(out[m], table, i * 16 + 1);
        mma_strip(out, decayed + i * 16 * L::LD_P, L::LD_P, value + c0 * 16, L::LD_VALUE, (i + 1) * 16);
        store_output_strip(out, scratch, out_head, p.ld_out, p, row0 + i * 16, rows - i * 16, c0 * 16);
        if (L::STATE_BUFFERS == 1 && update) {
            __syncthreads(); /* C */
            if (L::QUERY_BUFFERS == 1 && next < row_end) {
                load_tile(query, L::LD_KEY, query_head, p.ld_query, p, next, min(CHUNK, row_end - next), KEY_WIDTH);
                cp_async_commit();
            }
            if (!early)
                update_state<STATE_TILES, COLUMN_TILES>(running, key, L::LD_KEY, value, L::LD_VALUE, table, rows,
                                                        warp);
            store_state<STATE_TILES, COLUMN_TILES>(running, state_buffer(step + 1), L::LD_VALUE, warp);
        }
    }
    if (outgoing) {
#pragma unroll
        for (int m = 0; m < STATE_TILES; m++) {
            int t = warp * STATE_TILES + m, r = t / COLUMN_TILES, c = t % COLUMN_TILES;
            store_float_tile(running[m], outgoing + (long)r * 16 * p.value_width + c * 16, p.value_width);
        }
    }
}

/* Step (2): slot s + 1 holds segment s's local state on entry (s < segments
 * - 1) and segment s + 1's incoming state on return:
 *   S_in(0) = S0 (or 0), S_in(s+1) = lambda^length S_in(s) + local(s),
 * every segment but the last being `length` tokens long; with S0, slot 0
 * gets a copy of it (the output pass then writes the final state over S0).
 * One thread per element; blockIdx.y is the (sequence, head). The loads of
 * a batch of slots are issued together (they do not depend on the sum). */
__global__ void segment_scan_kernel(float *slots, const float *initial, int segments, int segment_length, int heads,
                                    long state_size, const float *lambda) {
    constexpr int BATCH = 8;
    long index = (long)blockIdx.y * state_size + (long)blockIdx.x * blockDim.x + threadIdx.x;
    long stride = (long)gridDim.y * state_size;
    float decay = decay_power(log2f(lambda[blockIdx.y % heads]), segment_length);
    float running = initial ? initial[index] : 0.0f;
    if (initial) slots[index] = running;
    for (int s0 = 1; s0 < segments; s0 += BATCH) {
        float local[BATCH];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
            if (s0 + j < segments) local[j] = slots[(s0 + j) * stride + index];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
            if (s0 + j < segments) {
                running = decay * running + local[j];
                slots[(s0 + j) * stride + index] = running;
            }
    }
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
     * start and end), an output chunk weighing 3 and a state-only chunk 1;
     * with segments, the state pass runs every segment but the last. A
     * segment keeps at least 4 chunks. */
    int chunks = (seq_len + CHUNK - 1) / CHUNK, best = 1;
    long best_cost = 3 * ((blocks + slots - 1) / slots) * (chunks + 2);
    for (int segments = 2; segments <= chunks / 4; segments++) {
        int length = segment_length(seq_len, segments) / CHUNK;
        long used = (chunks + length - 1) / length; /* segments that are not empty */
        long cost = ((blocks * (used - 1) + slots - 1) / slots + 3 * ((blocks * used + slots - 1) / slots)) *
                    (length + 2);
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

/* Steps (1) and (2) for `segments` > 1 segments of `length` tokens: the
 * local states of all segments but the last into slots 1 .. segments - 1,
 * then the scan, which has nothing to do for two segments from zero. */
template <int KEY_WIDTH, int COLUMNS>
static cudaError_t launch_states(const AttnPass &p, int segments, int length, float *slots, const float *initial,
                                 cudaStream_t stream) {
    long batch_heads = (long)p.batch * p.heads, state_size = (long)KEY_WIDTH * p.value_width;
    unsigned grid = (unsigned)(batch_heads * (segments - 1) * (p.value_width / COLUMNS));
    ChunkedStates plan{length, segments, segments - 1, nullptr, 0, slots, nullptr, 0};
    chunked_kernel<KEY_WIDTH, COLUMNS><<<grid, ChunkedWarps<COLUMNS>::THREADS, ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES,
                                         stream>>>(p, plan);
    if (segments > 2 || initial)
        segment_scan_kernel<<<dim3((unsigned)(state_size / 256), (unsigned)batch_heads), 256, 0, stream>>>(
            slots, initial, segments, length, p.heads, state_size, p.lambda);
    return cudaGetLastError();
}

template <int KEY_WIDTH, int COLUMNS>
static cudaError_t launch_width(const AttnPass &p, float *state, float *slots, int segments, bool outputs,
                                cudaStream_t stream) {
    size_t shared = ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES;
    int threads = ChunkedWarps<COLUMNS>::THREADS, per_multiprocessor = 0;
    cudaError_t status = prepare<KEY_WIDTH, COLUMNS>(&per_multiprocessor); /* the shared-memory limit */
    if (status != cudaSuccess) return status;
    if (segments < 1) segments = chunked_segments(p);
    int length = segment_length(p.seq_len, segments);
    unsigned grid = (unsigned)((long)p.batch * p.heads * segments * (p.value_width / COLUMNS));
    /* One segment starts from S0 (slot 0 is the state itself) and writes
     * its final state over it; several start from the scanned slots. */
    ChunkedStates plan{length, segments, segments, state, state != nullptr, nullptr, state, 1};
    if (segments > 1) {
        status = launch_states<KEY_WIDTH, COLUMNS>(p, segments, length, slots, state, stream);
        if (status != cudaSuccess || !outputs) return status;
        plan.incoming = slots;
    }
    chunked_kernel<KEY_WIDTH, COLUMNS><<<grid, threads, shared, stream>>>(p, plan);
    return cudaGetLastError();
}

/* segments < 1: chosen by chunked_segments; outputs false: steps (1), (2) only. */
static cudaError_t dispatch(const AttnPass &p, float *state, float *slots, int segments, bool outputs,
                            cudaStream_t stream) {
    switch (p.key_width * 1000 + block_columns(p)) {
    case 64064: return launch_width<64, 64>(p, state, slots, segments, outputs, stream);
    case 64128: return launch_width<64, 128>(p, state, slots, segments, outputs, stream);
    case 128064: return launch_width<128, 64>(p, state, slots, segments, outputs, stream);
    case 128128: return launch_width<128, 128>(p, state, slots, segments, outputs, stream);
    case 256064: return launch_width<256, 64>(p, state, slots, segments, outputs, stream);
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
