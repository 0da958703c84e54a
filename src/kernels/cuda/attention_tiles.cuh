/* attention_tiles.cuh: what the attention kernels share (CUDA C++, internal).
 *
 * One "pass" computes out_t = sum_{s <= t} lambda^(t-s) (query_t . key_s) value_s
 * per (batch, head) in logical time; with `reverse` set, logical row r is
 * physical row seq_len - 1 - r, which turns the causal sum into the
 * anti-causal one the backward needs (dk, dv). The forward and the three
 * backward products are all passes over different operands.
 *
 * Tiles: blocks of CHUNK tokens, value columns in tiles of 64 (VALUE_TILE,
 * 8 warps; the chunked kernel: 64 or 128 with 16 warps), bf16
 * operands in shared memory rows padded by PAD elements (16 bytes, so
 * consecutive rows start in different banks, which keeps ldmatrix free of
 * bank conflicts), products on the tensor cores by mma.sync m16n8k16 (bf16
 * in, fp32 accumulate) on 16x16 tiles whose operands come from shared memory
 * through ldmatrix (one instruction per 16x16 operand; .trans where the
 * stored matrix is the transpose of the operand). Element-wise epilogues
 * (mask and decay, row scaling, conversion to bf16) work on the accumulator
 * registers in place (acc_row, acc_col: the PTX mma layout). Output tiles go
 * from the accumulators to global memory as bf16 pairs; none of this needs a
 * block barrier.
 */
#ifndef TN_KERNELS_CUDA_ATTENTION_TILES_CUH
#define TN_KERNELS_CUDA_ATTENTION_TILES_CUH

#include <cuda_bf16.h>
#include <stdint.h>

namespace tn_attention {

typedef __nv_bfloat16 bf16;

constexpr int CHUNK = 64;      /* tokens per block (B of Alg. 1 and of Lightning Attention-2) */
constexpr int VALUE_TILE = 64; /* value/output columns per thread block (chunked: 64 or 128) */
constexpr int WARPS = 8;       /* per block of 64 value columns */
constexpr int THREADS = WARPS * 32;
constexpr int PAD = 8;         /* bf16 elements of padding per shared-memory row */
constexpr int TILES = CHUNK / 16; /* 16x16 tiles along a chunk or a value tile */

/* A 16x16 fp32 accumulator: two m16n8 mma tiles side by side. */
struct Acc {
    float x[8];
};
/* A 16x16 bf16 operand: A in mma order, or B as its two k16 x n8 halves. */
struct Fragment {
    unsigned r[4];
};

__device__ __forceinline__ void zero(Acc &acc) {
#pragma unroll
    for (int e = 0; e < 8; e++) acc.x[e] = 0.0f;
}

__device__ __forceinline__ unsigned shared_address(const bf16 *pointer) {
    return (unsigned)__cvta_generic_to_shared(pointer);
}

/* Lane l addresses row l % 8 of 8x8 matrix l / 8. */
__device__ __forceinline__ void ldmatrix(Fragment &f, const bf16 *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(f.r[0]), "=r"(f.r[1]), "=r"(f.r[2]), "=r"(f.r[3])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_transposed(Fragment &f, const bf16 *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(f.r[0]), "=r"(f.r[1]), "=r"(f.r[2]), "=r"(f.r[3])
                 : "r"(shared_address(row)));
}

/* Operand A (16 x 16) whose element (m, k) is tile[m * ld + k]. */
__device__ __forceinline__ void load_a(Fragment &f, const bf16 *tile, int ld) {
    int lane = threadIdx.x & 31;
    ldmatrix(f, tile + (lane % 16) * ld + lane / 16 * 8);
}
/* Operand A whose element (m, k) is tile[k * ld + m] (K^T from K rows). */
__device__ __forceinline__ void load_a_transposed(Fragment &f, const bf16 *tile, int ld) {
    int lane = threadIdx.x & 31, matrix = lane / 8;
    ldmatrix_transposed(f, tile + (lane % 8 + matrix / 2 * 8) * ld + matrix % 2 * 8);
}
/* Operand B (16 x 16) whose element (k, n) is tile[k * ld + n] (V, S rows). */
__device__ __forceinline__ void load_b(Fragment &f, const bf16 *tile, int ld) {
    int lane = threadIdx.x & 31, matrix = lane / 8;
    ldmatrix_transposed(f, tile + (lane % 8 + matrix % 2 * 8) * ld + matrix / 2 * 8);
}
/* Operand B whose element (k, n) is tile[n * ld + k] (K^T from K rows). */
__device__ __forceinline__ void load_b_transposed(Fragment &f, const bf16 *tile, int ld) {
    int lane = threadIdx.x & 31, matrix = lane / 8;
    ldmatrix(f, tile + (lane % 8 + matrix / 2 * 8) * ld + matrix % 2 * 8);
}

/* acc += A B on a 16x16x16 tile: two mma.sync m16n8k16. */
__device__ __forceinline__ void mma(Acc &acc, const Fragment &a, const Fragment &b) {
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float *d = acc.x + 4 * half;
        asm( /* no memory operands: free for the compiler to schedule */
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[2 * half]), "r"(b.r[2 * half + 1]));
    }
}

struct AttnPass {
    const bf16 *query, *key, *value; /* [batch * seq_len, ld] each */
    bf16 *out;
    long ld_query, ld_key, ld_value, ld_out;
    int key_width;   /* per-head width of query and key */
    int value_width; /* per-head width of value and out: a multiple of VALUE_TILE */
    int batch, heads, seq_len;
    int reverse;
    const float *lambda; /* [heads] */
};

/* lambda^distance for distance >= 0 from log2(lambda): exactly 1 at 0 (so
 * lambda = 0 gives 0^0 = 1, never 0 * inf) and 0 once it underflows. */
__device__ __forceinline__ float decay_power(float log2_lambda, int distance) {
    return distance == 0 ? 1.0f : exp2f((float)distance * log2_lambda);
}

__device__ __forceinline__ long physical_row(const AttnPass &p, int row) {
    return p.reverse ? (long)p.seq_len - 1 - row : (long)row;
}

/* Starts copying 16 bytes from global `source` to shared `destination`
 * with cp.async; with `bytes` 0 it writes 16 zero bytes instead (source
 * must still be a valid address). */
__device__ __forceinline__ void copy_async_16(bf16 *destination, const bf16 *source, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(destination)), "l"(source),
                 "r"(bytes));
}

/* What load_tile and the wgmma kernel's swizzled load share: thread t
 * copies the 8 columns from c = t % (WIDTH / 8) * 8 of rows r0 = t / (WIDTH
 * / 8), r0 + STEP, ... (STEP = THREADS / (WIDTH / 8)) to place(r0, c) and
 * then every `stride` elements on; rows past `rows` are zero-filled. */
template <int WIDTH, int THREADS, typename Place>
__device__ __forceinline__ void copy_tile_rows(Place place, int stride, const bf16 *base, long ld, const AttnPass &p,
                                               int row0, int rows) {
    constexpr int VECTORS = WIDTH / 8, STEP = THREADS / VECTORS;
    static_assert(THREADS % VECTORS == 0 && CHUNK % STEP == 0, "whole rows a pass, whole passes a tile");
    int r0 = threadIdx.x / VECTORS, c = threadIdx.x % VECTORS * 8;
    const bf16 *source = base + physical_row(p, row0 + r0) * ld + c;
    long step = (p.reverse ? -ld : ld) * STEP;
    bf16 *destination = place(r0, c);
#pragma unroll
    for (int i = 0; i < CHUNK / STEP; i++) {
        bool valid = r0 + i * STEP < rows;
        copy_async_16(destination + i * stride, valid ? source + i * step : base, valid ? 16 : 0);
    }
}

/* Starts copying logical rows [row0, row0 + rows) of one head (base already
 * at the head's first column of its sequence's row 0) into a CHUNK-row tile
 * of WIDTH columns with cp.async (16 bytes a thread, no register staging,
 * every copy of the block in flight at once); rows past `rows` are
 * zero-filled so they add nothing to any product. Whole block of THREADS;
 * each thread copies the same column of every THREADS / (WIDTH / 8)-th
 * row, stepping its source pointer (rows run backwards in reversed time).
 * The caller commits the group, waits (cp_async_wait) and synchronises
 * before reading the tile. */
template <int WIDTH, int THREADS>
__device__ __forceinline__ void load_tile(bf16 *tile, int ld_tile, const bf16 *base, long ld, const AttnPass &p,
                                          int row0, int rows) {
    copy_tile_rows<WIDTH, THREADS>([&](int row, int column) { return tile + row * ld_tile + column; },
                                   THREADS / (WIDTH / 8) * ld_tile, base, ld, p, row0, rows);
}

/* A barrier of the whole block (with the memory ordering of __syncthreads)
 * that warps may reach from different places in the code: PTX barrier.sync
 * without .aligned (__syncthreads is the aligned form, for code that every
 * warp runs alike). */
__device__ __forceinline__ void block_barrier(void) { asm volatile("barrier.sync 0;\n" ::: "memory"); }

/* Closes the group of copies started since the last commit (possibly empty). */
__device__ __forceinline__ void cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::); }

/* Waits until at most `pending` of this thread's most recent groups are unfinished. */
template <int pending>
__device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(pending));
}

/* acc[s][m] += A_s B_m for STRIPS row strips A_s (16 x k, strip s at
 * a + s * 16 * lda, row-major) and the two adjacent column tiles m = 0, 1 of
 * B (k x 16 each): B row-major at b (ld ldb), or with B_TRANSPOSED its
 * element (k, n) at b[n * ldb + k] (b then at the first of the tiles' rows).
 * k runs to k_len <= K_MAX (unrolled to K_MAX, so that the compiler can
 * issue fragment loads ahead of the products that wait for them); with
 * causal_strip >= 0, strip s stops at (causal_strip + s + 1) * 16 (the
 * masked tiles of (Q K^T ⊙ M) are zero). Each fragment loaded serves every
 * product it is an operand of. */
template <int STRIPS, int K_MAX, bool B_TRANSPOSED = false>
__device__ __forceinline__ void mma_strips(Acc acc[STRIPS][2], const bf16 *a, int lda, const bf16 *b, int ldb,
                                           int k_len, int causal_strip = -1) {
#pragma unroll
    for (int kk = 0; kk < K_MAX; kk += 16) {
        if (kk >= k_len) break;
        Fragment fb[2];
#pragma unroll
        for (int m = 0; m < 2; m++) {
            if (B_TRANSPOSED) load_b_transposed(fb[m], b + (long)m * 16 * ldb + kk, ldb);
            else load_b(fb[m], b + (long)kk * ldb + m * 16, ldb);
        }
#pragma unroll
        for (int strip = 0; strip < STRIPS; strip++) {
            if (causal_strip >= 0 && kk >= (causal_strip + strip + 1) * 16) continue;
            Fragment fa;
            load_a(fa, a + (long)strip * 16 * lda + kk, lda);
            mma(acc[strip][0], fa, fb[0]);
            mma(acc[strip][1], fa, fb[1]);
        }
    }
}

/* One strip of mma_strips: acc[m] += A B_m, A 16 x k_len, one k16 step at
 * a time and not unrolled: its one user, the blockwise kernel, keeps 3
 * blocks a multiprocessor at 77 registers a thread; unrolled it needs 90,
 * fits 2, and ran 11-18% slower (bench/attention_notes.md, v11). */
template <bool B_TRANSPOSED = false>
__device__ __forceinline__ void mma_strip(Acc acc[2], const bf16 *a, int lda, const bf16 *b, int ldb, int k_len) {
#pragma unroll 1
    for (int kk = 0; kk < k_len; kk += 16)
        mma_strips<1, 16, B_TRANSPOSED>(reinterpret_cast<Acc(*)[2]>(acc), a + kk, lda,
                                        B_TRANSPOSED ? b + kk : b + (long)kk * ldb, ldb, 16);
}

/* Row and column of accumulator element e held by this lane: elements 0-3
 * are the m16n8 tile of columns 0-7, 4-7 that of columns 8-15, each with rows
 * lane/4 and lane/4 + 8 and columns 2 (lane % 4) + {0, 1} (PTX mma layout). */
__device__ __forceinline__ int acc_row(int e) { return (threadIdx.x & 31) / 4 + 8 * ((e >> 1) & 1); }
__device__ __forceinline__ int acc_col(int e) { return (threadIdx.x & 3) * 2 + (e & 1) + 8 * (e >> 2); }

/* Per-warp: acc to bf16 at tile (ld elements), element pairs written together. */
__device__ __forceinline__ void store_bf16_tile(const Acc &acc, bf16 *tile, int ld) {
#pragma unroll
    for (int e = 0; e < 8; e += 2)
        *reinterpret_cast<__nv_bfloat162 *>(tile + acc_row(e) * ld + acc_col(e)) =
            __floats2bfloat162_rn(acc.x[e], acc.x[e + 1]);
}

/* Decay factors lambda^d for d = 0 .. DECAY_TABLE - 1, computed once per
 * block into shared memory (whole block; the caller synchronises). */
constexpr int DECAY_TABLE = 2 * CHUNK + 1;
__device__ __forceinline__ void decay_table(float *table, float log2_lambda) {
    for (int d = threadIdx.x; d < DECAY_TABLE; d += blockDim.x) table[d] = decay_power(log2_lambda, d);
}

/* Per-warp epilogue: scores tile to the bf16 tile of (Q K^T ⊙ M). Element
 * (a, b) gets far * table[first_index + a - b] where that index is >= 0 and
 * 0 where it is negative (the causal mask). */
__device__ __forceinline__ void store_decayed_scores(Acc &acc, bf16 *tile, int ld_tile, int first_index,
                                                     const float *table, float far) {
#pragma unroll
    for (int e = 0; e < 8; e++) {
        int index = first_index + acc_row(e) - acc_col(e);
        acc.x[e] = index >= 0 ? acc.x[e] * far * table[index] : 0.0f;
    }
    store_bf16_tile(acc, tile, ld_tile);
}

/* Per-warp: a zero 16x16 bf16 tile (the masked part above the diagonal). */
__device__ __forceinline__ void store_zero_tile(bf16 *tile, int ld_tile) {
    int lane = threadIdx.x & 31;
    *reinterpret_cast<uint4 *>(tile + (lane >> 1) * ld_tile + (lane & 1) * 8) = make_uint4(0, 0, 0, 0);
}

/* Whole block: the CHUNK x CHUNK bf16 matrix (Q K^T ⊙ M) of a query block and
 * a key block whose first tokens are block_distance apart (a multiple of
 * CHUNK). Token distance d = block_distance + a - b gets lambda^d: from the
 * table on the diagonal block (tiles above it are zero without a product),
 * else lambda^(block_distance - CHUNK) * table[CHUNK + a - b], both factors
 * <= 1. Of WARP_COUNT warps (`warp` is this one's index among them), with 8
 * warp w owns row strip w / 2 and two column tiles (each Q fragment it loads
 * serves two products); with 16, one tile each. query and key are
 * CHUNK x KEY_WIDTH tiles. */
template <int KEY_WIDTH, int WARP_COUNT>
__device__ __forceinline__ void decayed_scores(bf16 *decayed, int ld_decayed, const bf16 *query, const bf16 *key,
                                               int ld_key, int block_distance, const float *table,
                                               float log2_lambda, int warp) {
    constexpr int PER_WARP = TILES * TILES / WARP_COUNT, WARPS_PER_STRIP = WARP_COUNT / TILES;
    static_assert(PER_WARP == 1 || PER_WARP == 2, "one or two score tiles per warp");
    int i = warp / WARPS_PER_STRIP, j0 = warp % WARPS_PER_STRIP * PER_WARP;
    bool diagonal = block_distance == 0;
    bool live[2] = {!diagonal || j0 <= i, PER_WARP == 2 && (!diagonal || j0 + 1 <= i)};
    Acc scores[2];
    zero(scores[0]);
    zero(scores[1]);
    if (live[0]) {
#pragma unroll
        for (int kk = 0; kk < KEY_WIDTH; kk += 16) {
            Fragment fa;
            load_a(fa, query + i * 16 * ld_key + kk, ld_key);
#pragma unroll
            for (int m = 0; m < PER_WARP; m++) {
                if (!live[m]) continue;
                Fragment fb; /* K^T: element (kk, j) is key[j][kk] */
                load_b_transposed(fb, key + (j0 + m) * 16 * ld_key + kk, ld_key);
                mma(scores[m], fa, fb);
            }
        }
    }
    float far = diagonal ? 1.0f : decay_power(log2_lambda, block_distance - CHUNK);
    int offset = diagonal ? 0 : CHUNK;
#pragma unroll
    for (int m = 0; m < PER_WARP; m++) {
        bf16 *tile = decayed + i * 16 * ld_decayed + (j0 + m) * 16;
        if (live[m]) store_decayed_scores(scores[m], tile, ld_decayed, offset + (i - j0 - m) * 16, table, far);
        else store_zero_tile(tile, ld_decayed);
    }
}

/* Per-warp: the A operand K^T (element (m, k) = key k of the block) with
 * column k scaled by table[rows - 1 - k], its distance to the block's last
 * token, and columns k >= rows zeroed (those key rows are zero already; no
 * table index below 0). first_key is the fragment's first column. The PTX
 * m16n8k16 A layout: register r holds columns 2 (lane % 4) + {0, 1} (+ 8 for
 * r = 2, 3), the lower column in the lower half. Rounded to bf16 once, as
 * scaling the value rows in shared memory did, without a pass over the tile. */
__device__ __forceinline__ void decay_key_columns(Fragment &a, const float *table, int rows, int first_key) {
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int k = first_key + (threadIdx.x & 3) * 2 + 8 * half;
        float w0 = k < rows ? table[rows - 1 - k] : 0.0f, w1 = k + 1 < rows ? table[rows - 2 - k] : 0.0f;
#pragma unroll
        for (int r = 2 * half; r < 2 * half + 2; r++) {
            float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&a.r[r]));
            __nv_bfloat162 scaled = __floats2bfloat162_rn(f.x * w0, f.y * w1);
            a.r[r] = *reinterpret_cast<const unsigned *>(&scaled);
        }
    }
}

/* How WARP_COUNT warps share a KEY_WIDTH x COLUMNS state S (fp32, in their
 * accumulator registers) in 16x16 tiles: warp w owns TILES of them, a block
 * of ROWS x COLS adjacent tiles, so that per 16 keys of the update it loads
 * ROWS K^T and COLS V fragments for ROWS x COLS products. Tile m of warp w
 * is tile (row(w, m), column(w, m)) of S. */
template <int KEY_WIDTH, int COLUMNS, int WARP_COUNT>
struct StateLayout {
    static constexpr int KEY_TILES = KEY_WIDTH / 16, COLUMN_TILES = COLUMNS / 16,
                         TILES = KEY_TILES * COLUMN_TILES / WARP_COUNT;
    static constexpr int COLS = TILES < 4 ? TILES : COLUMN_TILES < 4 ? COLUMN_TILES : 4, ROWS = TILES / COLS,
                         COLUMN_GROUPS = COLUMN_TILES / COLS;
    static_assert(ROWS * COLS == TILES && KEY_TILES / ROWS * COLUMN_GROUPS == WARP_COUNT, "state tiles per warp");
    __device__ static int row(int warp, int m) { return warp / COLUMN_GROUPS * ROWS + m / COLS; }
    __device__ static int column(int warp, int m) { return warp % COLUMN_GROUPS * COLS + m % COLS; }
};

/* Per-warp, the state update S = lambda^rows S + (diag(lambda^(rows-1-j)) K)^T V
 * of Lightning Attention-2 on this warp's tiles of S (Layout), K a CHUNK-row
 * key tile of which `rows` are valid, V the value tile; the decay goes into
 * the K^T fragments (decay_key_columns). Only the warp's registers change:
 * the bf16 copy for Q S is store_state's. */
template <class Layout>
__device__ __forceinline__ void update_state(Acc running[Layout::TILES], const bf16 *key, int ld_key,
                                             const bf16 *value, int ld_value, const float *table, int rows,
                                             int warp) {
    float block_decay = table[rows];
#pragma unroll
    for (int m = 0; m < Layout::TILES; m++)
        for (int e = 0; e < 8; e++) running[m].x[e] *= block_decay;
#pragma unroll
    for (int kk = 0; kk < CHUNK; kk += 16) {
        Fragment fb[Layout::COLS];
#pragma unroll
        for (int c = 0; c < Layout::COLS; c++)
            load_b(fb[c], value + kk * ld_value + Layout::column(warp, c) * 16, ld_value);
#pragma unroll
        for (int r = 0; r < Layout::ROWS; r++) {
            Fragment fa; /* K^T: element (r, j) is key[j][r] */
            load_a_transposed(fa, key + kk * ld_key + Layout::row(warp, r * Layout::COLS) * 16, ld_key);
            decay_key_columns(fa, table, rows, kk);
#pragma unroll
            for (int c = 0; c < Layout::COLS; c++) mma(running[r * Layout::COLS + c], fa, fb[c]);
        }
    }
}

/* Per-warp: the bf16 copy of this warp's tiles of S (the operand of Q S) at
 * state_bf16 (ld_state elements a row). */
template <class Layout>
__device__ __forceinline__ void store_state(const Acc running[Layout::TILES], bf16 *state_bf16, int ld_state,
                                            int warp) {
#pragma unroll
    for (int m = 0; m < Layout::TILES; m++)
        store_bf16_tile(running[m],
                        state_bf16 + Layout::row(warp, m) * 16 * ld_state + Layout::column(warp, m) * 16, ld_state);
}

/* Per-warp: row a of acc times table[first_index + a]. */
__device__ __forceinline__ void scale_rows(Acc &acc, const float *table, int first_index) {
#pragma unroll
    for (int e = 0; e < 8; e++) acc.x[e] *= table[first_index + acc_row(e)];
}

/* Per-warp: acc as 16 rows of 16 floats at scratch. */
__device__ __forceinline__ void store_float_tile(const Acc &acc, float *scratch, long ld) {
#pragma unroll
    for (int e = 0; e < 8; e += 2)
        *reinterpret_cast<float2 *>(scratch + acc_row(e) * ld + acc_col(e)) = make_float2(acc.x[e], acc.x[e + 1]);
}

/* Per-warp: acc = 16 rows of 16 floats at source (global or shared). */
__device__ __forceinline__ void load_float_tile(Acc &acc, const float *source, long ld) {
#pragma unroll
    for (int e = 0; e < 8; e += 2) {
        float2 pair = *reinterpret_cast<const float2 *>(source + acc_row(e) * ld + acc_col(e));
        acc.x[e] = pair.x;
        acc.x[e + 1] = pair.y;
    }
}

/* Per-warp: this warp's tiles of S (Layout) from fp32 rows ld apart at
 * source (global), or zero when source is NULL. */
template <class Layout>
__device__ __forceinline__ void load_state(Acc running[Layout::TILES], const float *source, long ld, int warp) {
#pragma unroll
    for (int m = 0; m < Layout::TILES; m++) {
        if (source)
            load_float_tile(running[m], source + (long)Layout::row(warp, m) * 16 * ld + Layout::column(warp, m) * 16,
                            ld);
        else zero(running[m]);
    }
}

/* Per-warp: this warp's tiles of S (Layout) to fp32 rows ld apart at destination. */
template <class Layout>
__device__ __forceinline__ void save_state(const Acc running[Layout::TILES], float *destination, long ld, int warp) {
#pragma unroll
    for (int m = 0; m < Layout::TILES; m++)
        store_float_tile(running[m],
                         destination + (long)Layout::row(warp, m) * 16 * ld + Layout::column(warp, m) * 16, ld);
}

/* Per-warp: the two adjacent 16x16 output tiles of a strip whose first
 * logical row is row, of which `rows` are valid, to global memory from column
 * `column` of the head on (out_head at the head's first column of its
 * sequence's row 0, rows ld_out apart; p gives the time direction), straight
 * from the accumulators: each lane stores its bf16 pairs (4 bytes; one
 * store of the warp covers 16 bytes of 8 rows, the next one the other
 * half of their 32-byte sectors, which L2 merges). No shared memory, no
 * wait on it (a round trip through a scratch tile for 16-byte stores cost
 * more in stalls than the wider stores saved). */
__device__ __forceinline__ void store_output_strip(const Acc out[2], bf16 *out_head, long ld_out, const AttnPass &p,
                                                   int row, int rows, int column) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int half = 0; half < 2; half++) { /* rows lane / 4 and lane / 4 + 8: acc_row */
        int a = lane / 4 + 8 * half;
        if (a >= rows) continue;
        bf16 *destination = out_head + physical_row(p, row + a) * ld_out + column + (lane & 3) * 2;
#pragma unroll
        for (int m = 0; m < 2; m++)
#pragma unroll
            for (int high = 0; high < 2; high++) { /* columns + 0 and + 8: acc_col */
                int e = 4 * high + 2 * half;
                *reinterpret_cast<__nv_bfloat162 *>(destination + m * 16 + 8 * high) =
                    __floats2bfloat162_rn(out[m].x[e], out[m].x[e + 1]);
            }
    }
}

/* The output tiles of warp w of 8 in a CHUNK x WIDTH block of outputs
 * (WIDTH 64 or 128): STRIPS = WIDTH / 64 row strips from strip(w) on, and
 * the two column tiles from column_tile(w) on (32 x 32 or 16 x 32: fewer
 * fragment loads per product than 16 x 16 tiles). */
template <int WIDTH>
struct OutputTiles {
    static constexpr int STRIPS = WIDTH / 64, PAIRS = WIDTH / 32;
    __device__ static int strip(int warp) { return warp / PAIRS * STRIPS; }
    __device__ static int column_tile(int warp) { return warp % PAIRS * 2; }
};

/* Per-warp, the inter-block term of a pass on warp w's output tiles:
 * out = diag(lambda^(i+1)) A S, A the CHUNK x INNER rows at a (ld lda), S
 * the INNER x WIDTH bf16 state at state (ld_state), or with STATE_TRANSPOSED
 * the WIDTH x INNER state whose transpose is meant. */
template <int WIDTH, int INNER, bool STATE_TRANSPOSED = false>
__device__ __forceinline__ void inter_block(Acc (&out)[OutputTiles<WIDTH>::STRIPS][2], const bf16 *a, int lda,
                                            const bf16 *state, int ld_state, const float *table, int warp) {
    typedef OutputTiles<WIDTH> T;
    int i0 = T::strip(warp), c0 = T::column_tile(warp);
#pragma unroll
    for (int strip = 0; strip < T::STRIPS; strip++) {
        zero(out[strip][0]);
        zero(out[strip][1]);
    }
    const bf16 *state_tiles = STATE_TRANSPOSED ? state + (long)c0 * 16 * ld_state : state + c0 * 16;
    mma_strips<T::STRIPS, INNER, STATE_TRANSPOSED>(out, a + i0 * 16 * lda, lda, state_tiles, ld_state, INNER);
#pragma unroll
    for (int strip = 0; strip < T::STRIPS; strip++)
#pragma unroll
        for (int m = 0; m < 2; m++) scale_rows(out[strip][m], table, (i0 + strip) * 16 + 1);
}

/* Per-warp, the intra-block term and the store: out += P B with P the
 * CHUNK x CHUNK decayed scores (ld_p; its masked tiles are zero, so strip i
 * stops at its diagonal) and B the CHUNK x WIDTH rows at b (ldb), then out
 * to global rows row0 + .. of which `rows` are valid (store_output_strip). */
template <int WIDTH>
__device__ __forceinline__ void intra_block_store(Acc (&out)[OutputTiles<WIDTH>::STRIPS][2], const bf16 *decayed,
                                                  int ld_p, const bf16 *b, int ldb, bf16 *out_head, long ld_out,
                                                  const AttnPass &p, int row0, int rows, int warp) {
    typedef OutputTiles<WIDTH> T;
    int i0 = T::strip(warp), c0 = T::column_tile(warp);
    mma_strips<T::STRIPS, CHUNK>(out, decayed + i0 * 16 * ld_p, ld_p, b + c0 * 16, ldb, (i0 + T::STRIPS) * 16, i0);
#pragma unroll
    for (int strip = 0; strip < T::STRIPS; strip++)
        store_output_strip(out[strip], out_head, ld_out, p, row0 + (i0 + strip) * 16, rows - (i0 + strip) * 16,
                           c0 * 16);
}

/* Segment `segment`'s incoming state (its part at state_offset): segment
 * 0's is `first` (S0 or its copy; NULL: zero), segment s >= 1's is slot s -
 * 1 of `slots` (slot_stride floats apart; NULL: zero). */
__device__ __forceinline__ const float *incoming_state(const float *first, const float *slots, int segment,
                                                       long slot_stride, long state_offset) {
    const float *state = segment == 0 ? first : slots ? slots + (segment - 1) * slot_stride : nullptr;
    return state ? state + state_offset : nullptr;
}

/* Where launch_segment_states puts S0's copy among the slots of `segments`
 * segments: after their segments - 1 incoming states. */
inline float *initial_state_copy(float *slots, const AttnPass &p, int segments) {
    return slots + (long)(segments - 1) * p.batch * p.heads * p.key_width * p.value_width;
}

/* Incoming states made elsewhere: the segment count and the slots
 * (launch_segment_states's layout) of a forward's states, kept for its
 * backward and transposed for the dQ pass (its key is the forward's value). */
struct KeptStates {
    int segments;
    const float *slots;
};

/* Launchers (one file each); they check the launch and return its error.
 * launch_chunked: the pass p, its segments' states in segment_states (see
 * launch_segment_states); with `kept` (then no state), the outputs alone,
 * from kept's states. */
cudaError_t launch_chunked(const AttnPass &p, float *state, float *segment_states, const KeptStates *kept,
                           cudaStream_t stream);
cudaError_t launch_blockwise(const AttnPass &p, cudaStream_t stream);
cudaError_t launch_recurrent(const AttnPass &p, float *state, cudaStream_t stream);

/* Segments the chunked pass splits each sequence into (1: no scan, no
 * scratch): the count that makes the longest chain of chunk steps, waves of
 * blocks times chunks per segment, shortest on the current device. */
int chunked_segments(const AttnPass &p);
/* The same choice for `blocks` blocks per segment on `slots` resident blocks. */
int choose_segments(long blocks, long slots, int seq_len);
/* choose_segments on the current device for `blocks` blocks a segment of
 * a kernel with per_multiprocessor resident blocks, as `prepared` (the
 * resident_blocks query that gave that) returned; when the query failed,
 * one segment, its error cleared so that the next launch's check does not
 * report it as its own. */
int segments_on_device(cudaError_t prepared, long blocks, int per_multiprocessor, int seq_len);
/* Tokens per segment (a whole number of chunks) when seq_len is cut into `segments`. */
int segment_length(int seq_len, int segments);
/* out[i] = in[i]^T for `count` fp32 matrices of rows x columns (multiples of 32). */
cudaError_t launch_transpose(float *out, const float *in, long count, int rows, int columns, cudaStream_t stream);
/* Multiprocessors of the current device (0 if it cannot be read). */
long multiprocessor_count(void);
/* Resident blocks per multiprocessor of `kernel` (a __global__ function)
 * launched with `threads` threads and `shared` bytes of dynamic shared
 * memory on the current device, whose limit for it is raised to `shared`
 * first (which every launch above 48 KB needs). CUDA is asked once per
 * kernel and device; a positive answer is remembered (neither changes
 * without a device reset, which nothing in tnllm does), so the segment
 * choices that ask it several times a call cost a table lookup. The key is
 * the kernel and the device alone: every kernel is asked with one threads
 * and shared pair (its launch's). Thread-safe. */
cudaError_t resident_blocks(const void *kernel, int threads, size_t shared, int *blocks_per_multiprocessor);
/* Steps (1) and (2) of the chunked pass p alone, cut into `segments` > 1:
 * slot s - 1 of segment_states ([segments][batch * heads][key_width]
 * [value_width] fp32) gets segment s's incoming state for s >= 1; segment 0
 * starts from `initial` (S0, copied into slot segments - 1) or, when it is
 * NULL, from zero (that slot left as it is). */
cudaError_t launch_segment_states(const AttnPass &p, int segments, const float *initial, float *segment_states,
                                  cudaStream_t stream);
/* The forward on wgmma (attention_wgmma.cu, sm_90a), for the shapes
 * wgmma_supported accepts (key and value width 128); the arguments are
 * launch_chunked's and it cuts the sequence into wgmma_segments(p) segments
 * (scratch: that many states when more than one). */
bool wgmma_supported(const AttnPass &p);
int wgmma_segments(const AttnPass &p);
cudaError_t launch_chunked_wgmma(const AttnPass &p, float *state, float *segment_states, const KeptStates *kept,
                                 cudaStream_t stream);
/* dK and dV in one time-reversed sweep (attention_gradients.cu): value_pass
 * is the dV pass (query K, key Q, value dO, out dV, reversed); value and
 * key_gradient the V and dK of the dK product. Needs value_width 128 and
 * key_width <= 128 (gradients_fused says whether a shape qualifies). */
bool gradients_fused(const AttnPass &value_pass);
int gradient_segments(const AttnPass &value_pass);
cudaError_t launch_key_value_gradients(const AttnPass &value_pass, const bf16 *value, long ld_value,
                                       bf16 *key_gradient, long ld_key_gradient, float *segment_states,
                                       cudaStream_t stream);

} /* namespace tn_attention */

#endif
