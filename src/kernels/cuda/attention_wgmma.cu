/* attention_wgmma.cu: the Lightning Attention-2 forward on Hopper's
 * warpgroup tensor-core instructions (wgmma, sm_90a): algorithm
 * TN_ATTN_CHUNKED_WGMMA of lightning_attention.h, for dk = dv = 128.
 *
 * The math and the segment/state scheme are attention_chunked.cu's: blocks
 * of CHUNK = 64 tokens,
 *   O_blk = diag(lambda^(i+1)) Q S + (Q K^T ⊙ M) V      inter + intra block
 *   S     = lambda^rows S + (diag(lambda^(rows-1-j)) K)^T V
 * with M[i, j] = lambda^(i-j) for j <= i (every factor <= 1); for small
 * batch * heads the sequence is cut into segments whose incoming states come
 * from the chunked kernels' state-only pass and scan (launch_segment_states),
 * and this kernel is the output pass.
 *
 * A thread block owns one (sequence, head, segment) and has two warpgroups
 * (wgmma is issued by a warpgroup of 4 warps; the accumulators of a 64-row
 * product live in its 128 threads' registers):
 *  - warpgroup 0, the outputs: scores = Q K^T (m64n64, 8 steps of k16) and
 *    O = Q S (m64n128, 8 steps) straight from shared memory; the decay mask
 *    applied to the score registers, which then are the A operand of
 *    O += P V (m64n128, 4 steps, A from registers: P never goes to shared
 *    memory); O rows scaled by lambda^(i+1) before P V; O stored as bf16.
 *  - warpgroup 1, the state: S (128 x 128 fp32, two m64n128 accumulators,
 *    128 registers a thread) scaled by lambda^rows, then S += K~^T V with
 *    K~^T from registers (ldmatrix.trans of K, decayed per token as in the
 *    chunked kernel) and V from shared memory; S rounded to bf16 into
 *    shared memory for the next block's Q S.
 * Shared memory operands use the 128-byte swizzle of wgmma's descriptors:
 * a tile of R rows x 128 bf16 columns is two panels of 64 columns, each R
 * rows of 128 bytes whose 16-byte units are permuted by unit ^= row % 8 (the
 * same bytes TMA's 128-byte swizzle writes), panels 1024-byte aligned. Q, K
 * (K-major operands: Q as A of both products, K as B of Q K^T), V and S
 * (N-major B operands: rows are the reduction index) are stored so.
 * Loads are cp.async (16 bytes a thread, zero-filled past the sequence's
 * end, issued by the output warpgroup), three stages: the next two blocks'
 * Q, K, V are in flight during this block's products; one block barrier a
 * block. The two roles run side by side between barriers: the state
 * warpgroup writes the next block's bf16 S into the other buffer while the
 * output warpgroup reads this one's.
 */
#include "kernels/cuda/attention_tiles.cuh"

namespace tn_attention {

constexpr int WGMMA_WIDTH = 128;      /* dk = dv = 128: the one shape this kernel takes */
constexpr int WGMMA_THREADS = 256;    /* two warpgroups */
constexpr int SWIZZLE_ROW = 128;      /* bytes: 64 bf16 columns of one panel row */
constexpr int PANEL_COLUMNS = 64;

/* Shared memory, in bytes from a 1024-aligned base: STAGES buffers each of
 * Q, K, V (64 x 128 bf16, 16 KB; chunks c + 1 and c + 2 load while chunk c
 * is worked on), two of the bf16 state (128 x 128, 32 KB), the decay table;
 * ALLOCATED adds the slack for aligning the base. */
constexpr int STAGES = 3;
struct WgmmaShared {
    static constexpr unsigned TILE = CHUNK * WGMMA_WIDTH * 2, STATE_TILE = WGMMA_WIDTH * WGMMA_WIDTH * 2;
    static constexpr unsigned QUERY = 0, KEY = QUERY + STAGES * TILE, VALUE = KEY + STAGES * TILE,
                              STATE = VALUE + STAGES * TILE,
                              TABLE = STATE + 2 * STATE_TILE, BYTES = TABLE + DECAY_TABLE * sizeof(float),
                              ALLOCATED = BYTES + 1024;
    static_assert(ALLOCATED <= 232448, "shared memory of a wgmma block (227 KB on sm_90)");
};

/* What a launch does with states (as ChunkedStates in attention_chunked.cu,
 * without the state pass's local slots). */
struct WgmmaStates {
    int segment_length, segments;
    const float *first;    /* segment 0's incoming state (S0 or its copy), or NULL: zero */
    const float *incoming; /* segment s >= 1 starts from slot s - 1 here */
    float *final_state;    /* when not NULL: the last segment's state after its last token */
};

/* Byte offset of element (row, column) of a swizzled tile of `rows` rows (see the file comment). */
__device__ __forceinline__ unsigned swizzled(int row, int column, int rows) {
    return (unsigned)((column / PANEL_COLUMNS) * rows * SWIZZLE_ROW + row * SWIZZLE_ROW +
                      ((((column % PANEL_COLUMNS) / 8) ^ (row % 8)) * 16) + (column % 8) * 2);
}

/* A wgmma shared-memory matrix descriptor (PTX ISA, "matrix descriptor"):
 * start address, leading and stride byte offsets (all >> 4), 128-byte
 * swizzle (mode 1 in bits 62-63). Stride: 1024 bytes from one group of 8
 * rows to the next. Leading: for K-major operands unused with this swizzle
 * (a k16 step stays within a 128-byte row); for N-major ones the distance
 * between 64-column panels. */
__device__ __forceinline__ uint64_t descriptor(unsigned address, unsigned leading_bytes) {
    return (uint64_t)((address >> 4) & 0x3FFF) | (uint64_t)((leading_bytes >> 4) & 0x3FFF) << 16 |
           (uint64_t)(1024 >> 4) << 32 | (uint64_t)1 << 62;
}

/* A K-major operand: k16 step `step` of a tile of `rows` rows at address
 * (64 columns a panel: 32 bytes a step within a panel row). */
__device__ __forceinline__ uint64_t k_major(unsigned tile, int step, int rows) {
    return descriptor(tile + (step * 16 / PANEL_COLUMNS) * rows * SWIZZLE_ROW + (step * 16 % PANEL_COLUMNS) * 2, 16);
}
/* An N-major B operand (128 columns, rows the reduction index): k16 step
 * `step` of a tile of `rows` rows: 16 rows further. */
__device__ __forceinline__ uint64_t n_major(unsigned tile, int step, int rows) {
    return descriptor(tile + step * 16 * SWIZZLE_ROW, rows * SWIZZLE_ROW);
}

__device__ __forceinline__ void wgmma_fence(void) { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit(void) { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int pending>
__device__ __forceinline__ void wgmma_wait(void) {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
}
/* Keeps the compiler from moving reads or writes of wgmma operand
 * registers across a wgmma wait or fence (accumulators change
 * asynchronously in between; registers written after the fence would make
 * ptxas serialize the products, C7517-C7520). */
template <int N>
__device__ __forceinline__ void hold(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void hold(Fragment &f) {
#pragma unroll
    for (int i = 0; i < 4; i++) asm volatile("" : "+r"(f.r[i])::"memory");
}
/* Makes this thread's ordinary shared-memory writes (cp.async, stores)
 * visible to the tensor cores' reads after the next barrier. */
__device__ __forceinline__ void fence_async_shared(void) {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/* The wgmma products (PTX wgmma.mma_async, bf16 in, fp32 accumulators d:
 * element e of a thread is at row group_row(e), column acc_col(e)). A and B
 * from shared memory take descriptors; `accumulate` 0 overwrites d. The
 * register lists of the asm statements: */
#define WGMMA_REGISTERS_0_31                                                                                    \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
    "%23, %24, %25, %26, %27, %28, %29, %30, %31"
#define WGMMA_REGISTERS_32_63                                                                                   \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, " \
    "%53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define WGMMA_D8(i)                                                                                             \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), \
        "+f"(d[i + 7])
#define WGMMA_D32 WGMMA_D8(0), WGMMA_D8(8), WGMMA_D8(16), WGMMA_D8(24)
#define WGMMA_D64 WGMMA_D32, WGMMA_D8(32), WGMMA_D8(40), WGMMA_D8(48), WGMMA_D8(56)
/* "p" is the predicate of the operand after the last register one */
#define WGMMA_PREDICATE(operand) "{\n.reg .pred p;\nsetp.ne.b32 p, %" #operand ", 0;\n"

/* d (64 x 64) (+)= A B, A and B K-major (Q K^T) */
__device__ __forceinline__ void wgmma_64x64(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(WGMMA_PREDICATE(34) "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" WGMMA_REGISTERS_0_31
                                     "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : WGMMA_D32
                 : "l"(a), "l"(b), "r"(accumulate));
}
/* d (64 x 128) (+)= A B, A K-major, B N-major (Q S) */
__device__ __forceinline__ void wgmma_64x128(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
    asm volatile(WGMMA_PREDICATE(66) "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" WGMMA_REGISTERS_0_31
                                     ", " WGMMA_REGISTERS_32_63 "}, %64, %65, p, 1, 1, 0, 1;\n}\n"
                 : WGMMA_D64
                 : "l"(a), "l"(b), "r"(accumulate));
}
/* d (64 x 128) (+)= A B, A from registers (the mma.sync A layout, warp w
 * of the group holding rows 16 w ..), B N-major (P V, K^T V) */
__device__ __forceinline__ void wgmma_64x128_registers(float (&d)[64], const Fragment &a, uint64_t b, int accumulate) {
    asm volatile(WGMMA_PREDICATE(69) "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" WGMMA_REGISTERS_0_31
                                     ", " WGMMA_REGISTERS_32_63 "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
                 : WGMMA_D64
                 : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "l"(b), "r"(accumulate));
}

/* Output warpgroup: starts copying logical rows [row0, row0 + rows) of one
 * head (base at the head's first column of its sequence's row 0) into a
 * swizzled CHUNK x 128 tile; rows past `rows` are zero-filled. The caller
 * commits, waits, fences and synchronises. (Only the output warpgroup
 * copies: the address registers would not fit beside the state's.) */
__device__ __forceinline__ void load_swizzled(unsigned char *tile, const bf16 *base, long ld, const AttnPass &p,
                                              int row0, int rows) {
    /* thread t copies column c of rows r0, r0 + STEP, ...: STEP is a multiple
     * of 8, so the swizzle (row % 8) is the same for all of them and the
     * shared offsets step by STEP rows, the source by STEP rows forwards or,
     * in reversed time, backwards */
    constexpr int STEP = WGMMA_THREADS / 2 / (WGMMA_WIDTH / 8);
    static_assert(STEP % 8 == 0, "whole swizzle periods a pass");
    copy_tile_rows<WGMMA_WIDTH, WGMMA_THREADS / 2>(
        [&](int row, int column) { return reinterpret_cast<bf16 *>(tile + swizzled(row, column, CHUNK)); },
        STEP * SWIZZLE_ROW / (int)sizeof(bf16), base, ld, p, row0, rows);
}

/* Row of accumulator element e in a warpgroup's m64 product: warp w of the
 * group holds rows 16 w .. 16 w + 15 in the mma.sync layout (acc_row;
 * acc_col gives the column for any e). */
__device__ __forceinline__ int group_row(int e) { return threadIdx.x / 32 % 4 * 16 + acc_row(e); }

/* Per-thread, the state warpgroup's part of S (rows 64 t + group_row) from
 * fp32 rows of 128 at source (global), zero when NULL; save_group_state is
 * the reverse. */
__device__ __forceinline__ void load_group_state(float (&running)[2][64], const float *source) {
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int e = 0; e < 64; e += 2) {
            float2 pair = source ? *reinterpret_cast<const float2 *>(source + (t * 64 + group_row(e)) * WGMMA_WIDTH +
                                                                     acc_col(e))
                                 : make_float2(0.0f, 0.0f);
            running[t][e] = pair.x;
            running[t][e + 1] = pair.y;
        }
}
__device__ __forceinline__ void save_group_state(const float (&running)[2][64], float *destination) {
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int e = 0; e < 64; e += 2)
            *reinterpret_cast<float2 *>(destination + (t * 64 + group_row(e)) * WGMMA_WIDTH + acc_col(e)) =
                make_float2(running[t][e], running[t][e + 1]);
}
/* The bf16 copy of S (the N-major B operand of Q S) into a swizzled
 * 128 x 128 tile. swizzled() written out for accumulator rows: every row of
 * this thread is lane / 4 mod 8, so the 16-byte unit of n8 block j is
 * (j % 8) ^ (lane / 4), and the rest of the offset is a constant per element
 * (stores with immediate offsets from 8 per-thread addresses). */
__device__ __forceinline__ void store_group_state(const float (&running)[2][64], unsigned char *state_tile) {
    int lane = threadIdx.x & 31, row = group_row(0);
    unsigned char *thread_tile = state_tile + row * SWIZZLE_ROW + (lane & 3) * 4;
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int e = 0; e < 64; e += 2) {
            int block = e / 4, unit = (block % 8) ^ (lane / 4);
            unsigned constant =
                (block / 8) * WGMMA_WIDTH * SWIZZLE_ROW + (t * 64 + acc_row(e) - acc_row(0)) * SWIZZLE_ROW;
            *reinterpret_cast<__nv_bfloat162 *>(thread_tile + constant + unit * 16) =
                __floats2bfloat162_rn(running[t][e], running[t][e + 1]);
        }
}

/* Output warpgroup, one block: O = diag(lambda^(i+1)) Q S + (Q K^T ⊙ M) V
 * (Alg. 1's inter and intra block) to global rows row0 .. row0 + rows - 1. */
__device__ __forceinline__ void output_block(unsigned query, unsigned key, unsigned value, unsigned state,
                                             const float *table, bf16 *out_head, const AttnPass &p, int row0,
                                             int rows) {
    float scores[32] = {}, out[64] = {}; /* overwritten (accumulate 0); zero for the compiler */
    hold(scores);
    hold(out);
    wgmma_fence();
#pragma unroll
    for (int i = 0; i < WGMMA_WIDTH / 16; i++) wgmma_64x64(scores, k_major(query, i, CHUNK), k_major(key, i, CHUNK), i);
    wgmma_commit();
#pragma unroll
    for (int i = 0; i < WGMMA_WIDTH / 16; i++)
        wgmma_64x128(out, k_major(query, i, CHUNK), n_major(state, i, WGMMA_WIDTH), i);
    wgmma_commit();
    wgmma_wait<1>(); /* the scores; Q S may still run */
    hold(scores);
    /* P = (Q K^T ⊙ M): lambda^(i-j) on and below the diagonal, 0 above;
     * its registers are the A fragments of P V (k16 step t: columns 16 t ..
     * 16 t + 15, elements 8 t .. 8 t + 7 in the mma A order). */
    Fragment decayed[CHUNK / 16];
#pragma unroll
    for (int e = 0; e < 32; e++) {
        int distance = group_row(e) - acc_col(e);
        scores[e] = distance >= 0 ? scores[e] * table[distance] : 0.0f;
    }
#pragma unroll
    for (int t = 0; t < CHUNK / 16; t++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            __nv_bfloat162 pair = __floats2bfloat162_rn(scores[8 * t + 2 * r], scores[8 * t + 2 * r + 1]);
            decayed[t].r[r] = *reinterpret_cast<const unsigned *>(&pair);
        }
    wgmma_wait<0>();
    hold(out);
#pragma unroll
    for (int e = 0; e < 64; e++) out[e] *= table[group_row(e) + 1];
    hold(out);
#pragma unroll
    for (int t = 0; t < CHUNK / 16; t++) hold(decayed[t]);
    wgmma_fence();
#pragma unroll
    for (int t = 0; t < CHUNK / 16; t++) wgmma_64x128_registers(out, decayed[t], n_major(value, t, CHUNK), 1);
    wgmma_commit();
    wgmma_wait<0>();
    hold(out);
#pragma unroll
    for (int e = 0; e < 64; e += 2) {
        int i = group_row(e);
        if (i < rows)
            *reinterpret_cast<__nv_bfloat162 *>(out_head + physical_row(p, row0 + i) * p.ld_out + acc_col(e)) =
                __floats2bfloat162_rn(out[e], out[e + 1]);
    }
}

/* State warpgroup, one block: S = lambda^rows S + (diag(lambda^(rows-1-j)) K)^T V,
 * K^T as A fragments from registers (ldmatrix.trans of the swizzled K tile,
 * decayed per token: decay_key_columns), V the N-major B operand. */
__device__ __forceinline__ void state_block(float (&running)[2][64], const unsigned char *key, unsigned value,
                                            const float *table, int rows) {
    float block_decay = table[rows];
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int e = 0; e < 64; e++) running[t][e] *= block_decay;
    int lane = threadIdx.x & 31, matrix = lane / 8, warp = threadIdx.x / 32 % 4;
    Fragment keys[2][CHUNK / 16];
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int step = 0; step < CHUNK / 16; step++) {
            /* lane l: row l % 8 of 8x8 matrix l / 8; matrices 0-3 are
             * (keys, features) + (0, 0), (0, 8), (8, 0), (8, 8) */
            int token = step * 16 + lane % 8 + matrix / 2 * 8, feature = t * 64 + warp * 16 + matrix % 2 * 8;
            ldmatrix_transposed(keys[t][step], reinterpret_cast<const bf16 *>(key + swizzled(token, feature, CHUNK)));
            decay_key_columns(keys[t][step], table, rows, step * 16);
            hold(keys[t][step]);
        }
    hold(running[0]);
    hold(running[1]);
    wgmma_fence();
#pragma unroll
    for (int t = 0; t < 2; t++)
#pragma unroll
        for (int step = 0; step < CHUNK / 16; step++)
            wgmma_64x128_registers(running[t], keys[t][step], n_major(value, step, CHUNK), 1);
    wgmma_commit();
    wgmma_wait<0>();
    hold(running[0]);
    hold(running[1]);
}

__global__ void __launch_bounds__(WGMMA_THREADS, 1) wgmma_kernel(AttnPass p, WgmmaStates plan) {
    typedef WgmmaShared L;
    extern __shared__ __align__(1024) unsigned char raw[];
    /* the swizzle acts on address bits 4-9: the tiles need a 1024-aligned base */
    unsigned raw_address = (unsigned)__cvta_generic_to_shared(raw), padding = (1024 - raw_address % 1024) % 1024;
    unsigned char *shared = raw + padding;
    unsigned base = raw_address + padding;
    float *table = reinterpret_cast<float *>(shared + L::TABLE);

    int segment = blockIdx.x % plan.segments, bh = blockIdx.x / plan.segments;
    int b = bh / p.heads, h = bh % p.heads;
    long first_row = (long)b * p.seq_len;
    const bf16 *query_head = p.query + first_row * p.ld_query + (long)h * WGMMA_WIDTH;
    const bf16 *key_head = p.key + first_row * p.ld_key + (long)h * WGMMA_WIDTH;
    const bf16 *value_head = p.value + first_row * p.ld_value + (long)h * WGMMA_WIDTH;
    bf16 *out_head = p.out + first_row * p.ld_out + (long)h * WGMMA_WIDTH;
    long state_offset = (long)bh * WGMMA_WIDTH * WGMMA_WIDTH,
         slot_stride = (long)p.batch * p.heads * WGMMA_WIDTH * WGMMA_WIDTH;
    const float *incoming = incoming_state(plan.first, plan.incoming, segment, slot_stride, state_offset);
    float *outgoing = plan.final_state && segment == plan.segments - 1 ? plan.final_state + state_offset : nullptr;
    decay_table(table, log2f(p.lambda[h]));

    int row_begin = segment * plan.segment_length;
    int row_end = min(p.seq_len, row_begin + plan.segment_length);
    auto buffer = [](unsigned region, int step) { return region + (step % STAGES) * L::TILE; };
    auto state_buffer = [](int step) { return L::STATE + (step & 1) * L::STATE_TILE; };
    /* one commit group per chunk, empty past the segment (the wait counts groups) */
    auto load_block = [&](int step, int row0) {
        if (row0 < row_end) {
            int rows = min(CHUNK, row_end - row0);
            load_swizzled(shared + buffer(L::QUERY, step), query_head, p.ld_query, p, row0, rows);
            load_swizzled(shared + buffer(L::KEY, step), key_head, p.ld_key, p, row0, rows);
            load_swizzled(shared + buffer(L::VALUE, step), value_head, p.ld_value, p, row0, rows);
        }
        cp_async_commit();
    };
    /* One barrier a block: its tiles (and the state warpgroup's bf16 S) have
     * landed and every thread is done with the previous block, whose
     * buffers the copies of the block STAGES - 1 ahead then take. The roles
     * walk the blocks in loops of their own (the state's 128 registers a
     * thread are not held by the output warpgroup), meeting at the barrier. */
    /* the role as a value the compiler knows to be warp-uniform (a shuffle
     * result): wgmma on a path it takes for divergent is serialized (C7520) */
    bool output_group = __shfl_sync(0xffffffffu, threadIdx.x / 128, 0) == 0;
    auto walk = [&](auto work) {
        for (int ahead = 0; ahead < STAGES - 1 && output_group; ahead++) load_block(ahead, row_begin + ahead * CHUNK);
        for (int row0 = row_begin, step = 0; row0 < row_end; row0 += CHUNK, step++) {
            int rows = min(CHUNK, row_end - row0), next = row0 + CHUNK;
            cp_async_wait<STAGES - 2>(); /* this block's group; the next ones may still be in flight */
            fence_async_shared();
            block_barrier();
            if (output_group) load_block(step + STAGES - 1, row0 + (STAGES - 1) * CHUNK);
            work(step, row0, rows, next);
        }
    };
    if (output_group) {
        walk([&](int step, int row0, int rows, int) {
            output_block(base + buffer(L::QUERY, step), base + buffer(L::KEY, step), base + buffer(L::VALUE, step),
                         base + state_buffer(step), table, out_head, p, row0, rows);
        });
        return;
    }
    float running[2][64];
    load_group_state(running, incoming);
    store_group_state(running, shared + state_buffer(0));
    walk([&](int step, int, int rows, int next) {
        if (next >= row_end && !outgoing) return; /* the last state is wanted only to be written */
        state_block(running, shared + buffer(L::KEY, step), base + buffer(L::VALUE, step), table, rows);
        if (next < row_end) store_group_state(running, shared + state_buffer(step + 1));
    });
    if (outgoing) save_group_state(running, outgoing);
}

bool wgmma_supported(const AttnPass &p) { return p.key_width == WGMMA_WIDTH && p.value_width == WGMMA_WIDTH; }

static cudaError_t prepare_wgmma(int *blocks_per_multiprocessor) {
    return resident_blocks(reinterpret_cast<const void *>(wgmma_kernel), WGMMA_THREADS, WgmmaShared::ALLOCATED,
                           blocks_per_multiprocessor);
}

int wgmma_segments(const AttnPass &p) {
    int per_multiprocessor = 0;
    cudaError_t prepared = prepare_wgmma(&per_multiprocessor);
    return segments_on_device(prepared, (long)p.batch * p.heads, per_multiprocessor, p.seq_len);
}

cudaError_t launch_chunked_wgmma(const AttnPass &p, float *state, float *segment_states, const KeptStates *kept,
                                 cudaStream_t stream) {
    int per_multiprocessor = 0;
    cudaError_t status = prepare_wgmma(&per_multiprocessor); /* the shared-memory limit */
    if (status != cudaSuccess) return status;
    int segments = kept ? kept->segments : wgmma_segments(p);
    /* One segment starts from S0 (or zero) and writes its final state over
     * it; several start from the slots that the state pass and scan fill
     * (segment 0 from S0's copy after them), or from kept's. */
    WgmmaStates plan{segment_length(p.seq_len, segments), segments, state, nullptr, state};
    if (segments > 1 && kept) plan.incoming = kept->slots;
    else if (segments > 1) {
        status = launch_segment_states(p, segments, state, segment_states, stream);
        if (status != cudaSuccess) return status;
        plan.incoming = segment_states;
        if (state) plan.first = initial_state_copy(segment_states, p, segments);
    }
    unsigned grid = (unsigned)((long)p.batch * p.heads * segments);
    wgmma_kernel<<<grid, WGMMA_THREADS, WgmmaShared::ALLOCATED, stream>>>(p, plan);
    return cudaGetLastError();
}

} /* namespace tn_attention */
