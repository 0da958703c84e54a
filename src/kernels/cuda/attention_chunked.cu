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
 * Loads are cp.async: K and V of the next block start at the top of a block
 * (two buffers each), Q of the next block at its barrier B (one buffer).
 */
#include "kernels/cuda/attention_tiles.cuh"

#include <atomic>
#include <mutex>

namespace tn_attention {

/* A block has 16 warps. With outputs, warps 0-7 make them (Q S, then
 * P V) and warps 8-15 the decayed scores P and the state update, two halves
 * of about equal tensor work that run side by side; the state-only pass
 * gives the state to all 16. */
constexpr int CHUNKED_WARPS = 16, CHUNKED_THREADS = CHUNKED_WARPS * 32, OUTPUT_WARPS = 8;

template <int KEY_WIDTH, int COLUMNS>
struct ChunkedShared {
    static constexpr int LD_KEY = KEY_WIDTH + PAD, LD_VALUE = COLUMNS + PAD, LD_P = CHUNK + PAD;
    static constexpr size_t KEY_TILE = (size_t)CHUNK * LD_KEY * sizeof(bf16),
                            VALUE_TILE_BYTES = (size_t)CHUNK * LD_VALUE * sizeof(bf16),
                            STATE_TILE = (size_t)KEY_WIDTH * LD_VALUE * sizeof(bf16);
    /* Q has one buffer: every product with it is done by barrier B, and
     * the next block's copy starts there. K, V and the bf16 copy of S have
     * two: the next block's K and V land in the other buffers during this
     * block's work, and the next S is written while Q S reads this one. */
    static constexpr size_t QUERY = 0, KEY = QUERY + KEY_TILE, VALUE = KEY + 2 * KEY_TILE,
                            DECAYED = VALUE + 2 * VALUE_TILE_BYTES,
                            STATE = DECAYED + (size_t)CHUNK * LD_P * sizeof(bf16), TABLE = STATE + 2 * STATE_TILE,
                            BYTES = TABLE + (size_t)DECAY_TABLE * sizeof(float);
    static_assert(BYTES <= 232448, "shared memory of a chunked block (227 KB on sm_90)");
};

/* What a launch of chunked_kernel does with states (see the file comment);
 * slots are [segments - 1][batch * heads][KEY_WIDTH][value_width] fp32,
 * slot s - 1 belonging to segment s >= 1. */
struct ChunkedStates {
    int segment_length, segments; /* tokens per segment; segments of the sequence */
    int launched;                 /* segments with blocks: segments, or segments - 1 for the state pass */
    const float *first;           /* segment 0's incoming state (S0 or its copy), or NULL: zero */
    const float *incoming;        /* segment s >= 1 starts from slot s - 1 here */
    float *locals;                /* state pass: segment s's local state to slot s here */
    float *final_state;           /* when not NULL: the last segment's state after its last token */
};

/* OUTPUT: the output pass; without, the state-only pass. */
template <int KEY_WIDTH, int COLUMNS, bool OUTPUT>
__global__ void __launch_bounds__(CHUNKED_THREADS, 1) chunked_kernel(AttnPass p, ChunkedStates plan) {
    typedef ChunkedShared<KEY_WIDTH, COLUMNS> L;
    typedef StateLayout<KEY_WIDTH, COLUMNS, OUTPUT ? CHUNKED_WARPS - OUTPUT_WARPS : CHUNKED_WARPS> Layout;
    extern __shared__ __align__(128) unsigned char shared[];
    bf16 *query = reinterpret_cast<bf16 *>(shared + L::QUERY), *decayed = reinterpret_cast<bf16 *>(shared + L::DECAYED);
    float *table = reinterpret_cast<float *>(shared + L::TABLE);
    int warp = threadIdx.x / 32;
    bool output_warp = OUTPUT && warp < OUTPUT_WARPS;
    int state_warp = OUTPUT ? warp - OUTPUT_WARPS : warp; /* index among the warps that carry S */

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
    const float *incoming = incoming_state(plan.first, plan.incoming, segment, slot_stride, state_offset);
    float *outgoing = plan.locals ? plan.locals + segment * slot_stride + state_offset
                      : plan.final_state && segment == plan.segments - 1 ? plan.final_state + state_offset
                                                                           : nullptr;
    float log2_lambda = log2f(p.lambda[h]);
    decay_table(table, log2_lambda);
    auto key_buffer = [&](int step) { return reinterpret_cast<bf16 *>(shared + L::KEY + (step & 1) * L::KEY_TILE); };
    auto value_buffer = [&](int step) {
        return reinterpret_cast<bf16 *>(shared + L::VALUE + (step & 1) * L::VALUE_TILE_BYTES);
    };
    auto state_buffer = [&](int step) {
        return reinterpret_cast<bf16 *>(shared + L::STATE + (step & 1) * L::STATE_TILE);
    };

    /* Two barriers a block: A at the top (its tiles have landed; every warp
     * is done with the previous block, whose K and V buffers the next
     * block's copies then take) and B between the products that read Q and
     * S (Q S; the scores) and those that read P or write the next S (P V;
     * the state update); the next block's Q is copied from B on. The output
     * warps and the state warps walk the blocks in loops of their own (the
     * registers of one role are not held by the other), meeting at A and B
     * (block_barrier: the same barrier from different code). */
    int row_begin = segment * plan.segment_length;
    int row_end = min(p.seq_len, row_begin + plan.segment_length);
    auto load_query = [&](int row0) {
        load_tile<KEY_WIDTH, CHUNKED_THREADS>(query, L::LD_KEY, query_head, p.ld_query, p, row0,
                                              min(CHUNK, row_end - row0));
        cp_async_commit();
    };
    auto load_key_value = [&](int step, int row0) {
        int rows = min(CHUNK, row_end - row0);
        load_tile<KEY_WIDTH, CHUNKED_THREADS>(key_buffer(step), L::LD_KEY, key_head, p.ld_key, p, row0, rows);
        load_tile<COLUMNS, CHUNKED_THREADS>(value_buffer(step), L::LD_VALUE, value_head, p.ld_value, p, row0, rows);
        cp_async_commit();
    };
    /* before_b and after_b(step, row0, rows, next) are a role's work on one block. */
    auto walk = [&](auto before_b, auto after_b) {
        if (OUTPUT) load_query(row_begin);
        load_key_value(0, row_begin);
        for (int row0 = row_begin, step = 0; row0 < row_end; row0 += CHUNK, step++) {
            int rows = min(CHUNK, row_end - row0), next = row0 + CHUNK;
            cp_async_wait<0>();
            block_barrier(); /* A */
            if (next < row_end) load_key_value(step + 1, next);
            before_b(step, row0, rows, next);
            if (!OUTPUT) continue;
            block_barrier(); /* B */
            if (next < row_end) load_query(next);
            after_b(step, row0, rows, next);
        }
    };

    if (output_warp) {
        /* O = diag(lambda^(i+1)) Q S + (Q K^T ⊙ M) V (Alg. 1's inter and
         * intra block): the first term before B, the second after it. */
        Acc out[OutputTiles<COLUMNS>::STRIPS][2];
        walk(
            [&](int step, int, int, int) {
                inter_block<COLUMNS, KEY_WIDTH>(out, query, L::LD_KEY, state_buffer(step), L::LD_VALUE, table, warp);
            },
            [&](int step, int row0, int rows, int) {
                intra_block_store<COLUMNS>(out, decayed, L::LD_P, value_buffer(step), L::LD_VALUE, out_head, p.ld_out,
                                           p, row0, rows, warp);
            });
        return;
    }
    Acc running[Layout::TILES];
    load_state<Layout>(running, incoming, p.value_width, state_warp);
    if (OUTPUT) store_state<Layout>(running, state_buffer(0), L::LD_VALUE, state_warp);
    /* S = lambda^rows S + (decayed K)^T V; the last state is wanted only to be written */
    auto update = [&](int step, int rows, int next) {
        if (next >= row_end && !outgoing) return;
        update_state<Layout>(running, key_buffer(step), L::LD_KEY, value_buffer(step), L::LD_VALUE, table, rows,
                             state_warp);
        if (OUTPUT) store_state<Layout>(running, state_buffer(step + 1), L::LD_VALUE, state_warp);
    };
    if (OUTPUT)
        walk(
            [&](int step, int, int, int) {
                /* Intra block, Alg. 1 line "O = (Q K^T ⊙ M) V": the decayed scores. */
                decayed_scores<KEY_WIDTH, CHUNKED_WARPS - OUTPUT_WARPS>(decayed, L::LD_P, query, key_buffer(step),
                                                                        L::LD_KEY, 0, table, log2_lambda, state_warp);
            },
            [&](int step, int, int rows, int next) { update(step, rows, next); });
    else walk([&](int step, int, int rows, int next) { update(step, rows, next); }, [](int, int, int, int) {});
    if (outgoing) save_state<Layout>(running, outgoing, p.value_width, state_warp);
}

/* Step (2): slot s holds segment s's local state on entry (s < segments
 * - 1) and segment s + 1's incoming state on return:
 *   S_in(0) = S0 (or 0), S_in(s+1) = lambda^length S_in(s) + local(s),
 * every segment but the last being `length` tokens long; with S0, `copy`
 * gets a copy of it (the output pass then writes the final state over S0).
 * One thread per element; blockIdx.y is the (sequence, head). The loads of
 * a batch of slots are issued together (they do not depend on the sum). */
__global__ void segment_scan_kernel(float *slots, float *copy, const float *initial, int segments,
                                    int segment_length, int heads, long state_size, const float *lambda) {
    constexpr int BATCH = 8;
    long index = (long)blockIdx.y * state_size + (long)blockIdx.x * blockDim.x + threadIdx.x;
    long stride = (long)gridDim.y * state_size;
    float decay = decay_power(log2f(lambda[blockIdx.y % heads]), segment_length);
    float running = initial ? initial[index] : 0.0f;
    if (initial) copy[index] = running;
    for (int s0 = 0; s0 < segments - 1; s0 += BATCH) {
        float local[BATCH];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
            if (s0 + j < segments - 1) local[j] = slots[(s0 + j) * stride + index];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
            if (s0 + j < segments - 1) {
                running = decay * running + local[j];
                slots[(s0 + j) * stride + index] = running;
            }
    }
}

/* out[i] = in[i]^T for `count` rows x columns fp32 matrices (multiples of
 * 32 each way), through a padded 32 x 32 tile per block: reads and writes
 * both by rows. */
__global__ void transpose_kernel(float *out, const float *in, long count, int rows, int columns) {
    __shared__ float tile[32][33];
    int x = threadIdx.x, y0 = threadIdx.y; /* 32 x 8 threads */
    for (long matrix = blockIdx.z; matrix < count; matrix += gridDim.z) {
        const float *source = in + matrix * rows * columns + (long)blockIdx.y * 32 * columns + blockIdx.x * 32;
        float *destination = out + matrix * rows * columns + (long)blockIdx.x * 32 * rows + blockIdx.y * 32;
        for (int y = y0; y < 32; y += 8) tile[y][x] = source[(long)y * columns + x];
        __syncthreads();
        for (int y = y0; y < 32; y += 8) destination[(long)y * rows + x] = tile[x][y];
        __syncthreads();
    }
}

cudaError_t launch_transpose(float *out, const float *in, long count, int rows, int columns, cudaStream_t stream) {
    dim3 grid((unsigned)(columns / 32), (unsigned)(rows / 32), (unsigned)(count < 65535 ? count : 65535));
    transpose_kernel<<<grid, dim3(32, 8), 0, stream>>>(out, in, count, rows, columns);
    return cudaGetLastError();
}

/* 128 columns a block where the value width allows and its shared memory fits (key width <= 128). */
static int block_columns(const AttnPass &p) { return p.value_width % 128 == 0 && p.key_width <= 128 ? 128 : 64; }

/* Both passes' shared-memory limits raised; the output pass's occupancy. */
template <int KEY_WIDTH, int COLUMNS>
static cudaError_t prepare(int *blocks_per_multiprocessor) {
    size_t shared = ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES;
    int state_pass = 0;
    cudaError_t status = resident_blocks(reinterpret_cast<const void *>(chunked_kernel<KEY_WIDTH, COLUMNS, false>),
                                         CHUNKED_THREADS, shared, &state_pass);
    if (status != cudaSuccess) return status;
    return resident_blocks(reinterpret_cast<const void *>(chunked_kernel<KEY_WIDTH, COLUMNS, true>), CHUNKED_THREADS,
                           shared, blocks_per_multiprocessor);
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

/* Asked once per device, as resident_blocks' answers: a device's count never changes. */
long multiprocessor_count(void) {
    constexpr int DEVICES = 64;
    static std::atomic<int> counts[DEVICES];
    int device = 0, count = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return 0;
    if (device < DEVICES && (count = counts[device].load(std::memory_order_relaxed)) > 0) return count;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 0;
    if (device < DEVICES) counts[device].store(count, std::memory_order_relaxed);
    return count;
}

namespace {

/* resident_blocks' answers: one per (kernel, device) asked so far. There
 * are a dozen attention kernels, so a short list searched in turn. */
struct Resident {
    const void *kernel;
    int device, blocks;
};
constexpr int RESIDENT_ENTRIES = 256;
Resident resident_table[RESIDENT_ENTRIES];
int resident_count;
std::mutex resident_lock;

} // namespace

cudaError_t resident_blocks(const void *kernel, int threads, size_t shared, int *blocks_per_multiprocessor) {
    int device = 0;
    cudaError_t status = cudaGetDevice(&device);
    if (status != cudaSuccess) return status;
    std::lock_guard<std::mutex> hold(resident_lock);
    for (int i = 0; i < resident_count; i++)
        if (resident_table[i].kernel == kernel && resident_table[i].device == device) {
            *blocks_per_multiprocessor = resident_table[i].blocks;
            return cudaSuccess;
        }
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
    if (status == cudaSuccess)
        status = cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_multiprocessor, kernel, threads, shared);
    if (status == cudaSuccess && *blocks_per_multiprocessor > 0 && resident_count < RESIDENT_ENTRIES)
        resident_table[resident_count++] = Resident{kernel, device, *blocks_per_multiprocessor};
    return status;
}

int segments_on_device(cudaError_t prepared, long blocks, int per_multiprocessor, int seq_len) {
    long slots = multiprocessor_count() * per_multiprocessor;
    if (prepared != cudaSuccess || slots < 1) {
        (void)cudaGetLastError();
        return 1;
    }
    return choose_segments(blocks, slots, seq_len);
}

int chunked_segments(const AttnPass &p) {
    int per_multiprocessor = 0;
    cudaError_t prepared = occupancy(p, &per_multiprocessor);
    return segments_on_device(prepared, (long)p.batch * p.heads * (p.value_width / block_columns(p)),
                              per_multiprocessor, p.seq_len);
}

/* Steps (1) and (2) for `segments` > 1 segments of `length` tokens: the
 * local states of all segments but the last into slots 0 .. segments - 2,
 * then the scan, which has nothing to do for two segments from zero (with
 * S0, its copy goes to the slot after them). */
template <int KEY_WIDTH, int COLUMNS>
static cudaError_t launch_states(const AttnPass &p, int segments, int length, float *slots, const float *initial,
                                 cudaStream_t stream) {
    long batch_heads = (long)p.batch * p.heads, state_size = (long)KEY_WIDTH * p.value_width;
    long blocks = batch_heads * (segments - 1) * (p.value_width / COLUMNS);
    ChunkedStates plan{length, segments, segments - 1, nullptr, nullptr, slots, nullptr};
    /* The state pass has a block for every segment but the last: where
     * that leaves half the multiprocessors idle, blocks of 64 columns
     * (twice as many, half the products each) take them. */
    if (COLUMNS == 128 && 2 * blocks <= multiprocessor_count()) {
        int per_multiprocessor = 0;
        cudaError_t status = prepare<KEY_WIDTH, 64>(&per_multiprocessor);
        if (status != cudaSuccess) return status;
        chunked_kernel<KEY_WIDTH, 64, false>
            <<<(unsigned)(2 * blocks), CHUNKED_THREADS, ChunkedShared<KEY_WIDTH, 64>::BYTES, stream>>>(p, plan);
    } else {
        chunked_kernel<KEY_WIDTH, COLUMNS, false>
            <<<(unsigned)blocks, CHUNKED_THREADS, ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES, stream>>>(p, plan);
    }
    if (segments > 2 || initial)
        segment_scan_kernel<<<dim3((unsigned)(state_size / 256), (unsigned)batch_heads), 256, 0, stream>>>(
            slots, initial_state_copy(slots, p, segments), initial, segments, length, p.heads, state_size, p.lambda);
    return cudaGetLastError();
}

/* What a launch does (dispatch's `use`): the state pass and scan into the
 * slots, then the outputs from them; the first two steps alone; or the
 * outputs alone from slots filled elsewhere. */
enum SlotUse { FILL, FILL_ONLY, READ_ONLY };

template <int KEY_WIDTH, int COLUMNS>
static cudaError_t launch_width(const AttnPass &p, float *state, float *slots, int segments, SlotUse use,
                                cudaStream_t stream) {
    size_t shared = ChunkedShared<KEY_WIDTH, COLUMNS>::BYTES;
    int per_multiprocessor = 0;
    cudaError_t status = prepare<KEY_WIDTH, COLUMNS>(&per_multiprocessor); /* the shared-memory limit */
    if (status != cudaSuccess) return status;
    /* dispatch's COLUMNS is block_columns(p): chunked_segments' choice from this occupancy */
    if (segments < 1)
        segments = segments_on_device(status, (long)p.batch * p.heads * (p.value_width / COLUMNS), per_multiprocessor,
                                      p.seq_len);
    int length = segment_length(p.seq_len, segments);
    unsigned grid = (unsigned)((long)p.batch * p.heads * segments * (p.value_width / COLUMNS));
    /* One segment starts from S0 and writes its final state over it;
     * several start from the scanned slots (segment 0 from S0's copy). */
    ChunkedStates plan{length, segments, segments, state, nullptr, nullptr, state};
    if (segments > 1) {
        if (use != READ_ONLY) {
            status = launch_states<KEY_WIDTH, COLUMNS>(p, segments, length, slots, state, stream);
            if (status != cudaSuccess || use == FILL_ONLY) return status;
        }
        if (state) plan.first = initial_state_copy(slots, p, segments);
        plan.incoming = slots;
    }
    chunked_kernel<KEY_WIDTH, COLUMNS, true><<<grid, CHUNKED_THREADS, shared, stream>>>(p, plan);
    return cudaGetLastError();
}

/* segments < 1: chosen by chunked_segments. */
static cudaError_t dispatch(const AttnPass &p, float *state, float *slots, int segments, SlotUse use,
                            cudaStream_t stream) {
    switch (p.key_width * 1000 + block_columns(p)) {
    case 64064: return launch_width<64, 64>(p, state, slots, segments, use, stream);
    case 64128: return launch_width<64, 128>(p, state, slots, segments, use, stream);
    case 128064: return launch_width<128, 64>(p, state, slots, segments, use, stream);
    case 128128: return launch_width<128, 128>(p, state, slots, segments, use, stream);
    case 256064: return launch_width<256, 64>(p, state, slots, segments, use, stream);
    }
    return cudaErrorInvalidValue;
}

cudaError_t launch_chunked(const AttnPass &p, float *state, float *segment_states, const KeptStates *kept,
                           cudaStream_t stream) {
    if (kept) return dispatch(p, nullptr, const_cast<float *>(kept->slots), kept->segments, READ_ONLY, stream);
    return dispatch(p, state, segment_states, 0, FILL, stream);
}

cudaError_t launch_segment_states(const AttnPass &p, int segments, const float *initial, float *segment_states,
                                  cudaStream_t stream) {
    /* without outputs, dispatch only reads the state (as S0 of the scan) */
    return dispatch(p, const_cast<float *>(initial), segment_states, segments, FILL_ONLY, stream);
}

} /* namespace tn_attention */
