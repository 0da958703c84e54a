/* attention_recurrent.cu: Alg. 4, the robust recurrence, token by token.
 *
 *   S_t = lambda S_{t-1} + k_t^T v_t,   o_t = q_t S_t
 * The decode step of generation (seq_len = 1) and any continuation of a
 * chunked prefill: the state is fp32 and only lambda (<= 1) multiplies it.
 * A thread block owns one (sequence, head) and 32 value columns; its 256
 * threads are 32 columns x 8 row groups, each holding KEY_WIDTH / 8 state
 * entries of its column in registers. Reads q_t and k_t once per token into
 * shared memory; the column sums o_t are reduced across the 8 row groups.
 * Heads narrower than 32 value columns (16: small models such as the golden
 * one) leave the block's extra columns idle.
 */
#include "kernels/cuda/attention_tiles.cuh"

namespace tn_attention {

constexpr int COLUMNS = 32, ROW_GROUPS = THREADS / COLUMNS;

template <int KEY_WIDTH>
__global__ void __launch_bounds__(THREADS) recurrent_kernel(AttnPass p, float *state) {
    constexpr int ROWS = KEY_WIDTH / ROW_GROUPS; /* state rows per thread */
    __shared__ float query[KEY_WIDTH], key[KEY_WIDTH], partial[ROW_GROUPS][COLUMNS];
    int column_blocks = (p.value_width + COLUMNS - 1) / COLUMNS;
    int bh = blockIdx.x / column_blocks, column = blockIdx.x % column_blocks * COLUMNS + threadIdx.x % COLUMNS;
    int group = threadIdx.x / COLUMNS, b = bh / p.heads, h = bh % p.heads;
    bool active = column < p.value_width; /* idle threads still take part in the barriers */
    long first_row = (long)b * p.seq_len;
    float *state_column = state && active ? state + (long)bh * KEY_WIDTH * p.value_width + column : nullptr;
    float lambda = p.lambda[h];
    float running[ROWS];
#pragma unroll
    for (int m = 0; m < ROWS; m++)
        running[m] = state_column ? state_column[(long)(group + m * ROW_GROUPS) * p.value_width] : 0.0f;
    for (int t = 0; t < p.seq_len; t++) {
        long row = first_row + t;
        if (threadIdx.x < KEY_WIDTH) {
            query[threadIdx.x] = __bfloat162float(p.query[row * p.ld_query + (long)h * KEY_WIDTH + threadIdx.x]);
            key[threadIdx.x] = __bfloat162float(p.key[row * p.ld_key + (long)h * KEY_WIDTH + threadIdx.x]);
        }
        float v = active ? __bfloat162float(p.value[row * p.ld_value + (long)h * p.value_width + column]) : 0.0f;
        __syncthreads();
        float sum = 0.0f;
#pragma unroll
        for (int m = 0; m < ROWS; m++) {
            int r = group + m * ROW_GROUPS;
            running[m] = lambda * running[m] + key[r] * v;
            sum += query[r] * running[m];
        }
        partial[group][threadIdx.x % COLUMNS] = sum;
        __syncthreads();
        if (group == 0 && active) {
            for (int g = 1; g < ROW_GROUPS; g++) sum += partial[g][threadIdx.x];
            p.out[row * p.ld_out + (long)h * p.value_width + column] = __float2bfloat16_rn(sum);
        }
        __syncthreads(); /* query, key and partial are rewritten next token */
    }
#pragma unroll
    for (int m = 0; m < ROWS; m++)
        if (state_column) state_column[(long)(group + m * ROW_GROUPS) * p.value_width] = running[m];
}

template <int KEY_WIDTH>
static cudaError_t launch_width(const AttnPass &p, float *state, cudaStream_t stream) {
    unsigned grid = (unsigned)((long)p.batch * p.heads * ((p.value_width + COLUMNS - 1) / COLUMNS));
    recurrent_kernel<KEY_WIDTH><<<grid, THREADS, 0, stream>>>(p, state);
    return cudaGetLastError();
}

cudaError_t launch_recurrent(const AttnPass &p, float *state, cudaStream_t stream) {
    switch (p.key_width) {
    case 16: return launch_width<16>(p, state, stream);
    case 32: return launch_width<32>(p, state, stream);
    case 64: return launch_width<64>(p, state, stream);
    case 128: return launch_width<128>(p, state, stream);
    case 256: return launch_width<256>(p, state, stream);
    }
    return cudaErrorInvalidValue;
}

} /* namespace tn_attention */
