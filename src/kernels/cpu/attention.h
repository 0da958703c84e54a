/* attention.h: causal linear attention with per-head exponential decay.
 *
 * For each sequence b and head h (paper Eq. 2 with the decay of SPEC 1):
 *   o_t = sum_{s <= t} lambda_h^(t - s) (q_t . k_s) v_s  (+ lambda_h^(t+1) q_t S0)
 * where S0 is an optional initial state [dk, dv] (the tokens before this
 * call, already decayed to the last of them). No softmax, no scaling.
 *
 * Three algorithms compute the same function:
 *  - TN_ATTN_PARALLEL: the paper's Alg. 1-2, (Q K^T ⊙ M) V with
 *    M[t, s] = lambda^(t-s), blockwise and O(n^2): every block of `block`
 *    queries (0: TN_ATTN_DEFAULT_BLOCK) visits every key block before it,
 *    one tile of scores at a time; nothing n x n is stored. It takes no
 *    state.
 *  - TN_ATTN_CHUNKED: Lightning Attention-2. Blocks of `block` tokens: inside
 *    a block the masked left product with factors lambda^(i-j) <= 1, across
 *    blocks the running state S scaled by lambda^n. Linear in n.
 *  - TN_ATTN_RECURRENT: Alg. 4, S_t = lambda S_{t-1} + k_t^T v_t,
 *    o_t = q_t S_t. Only factors <= 1 are ever formed (no lambda^-t).
 *
 * Layout: token t of sequence b is row b * seq_len + t; its head h features
 * start at column h * dk (q, k) or h * dv (v, o); ld* are row strides in
 * elements, so q/k/v can be views into a wider fused buffer.
 * state, when not NULL, is [batch, heads, dk, dv] fp32: read as S0 and
 * overwritten with the state after the last token (CHUNKED, RECURRENT).
 * scratch holds tn_attention_scratch_floats() floats; nothing is allocated.
 */
#ifndef TN_KERNELS_CPU_ATTENTION_H
#define TN_KERNELS_CPU_ATTENTION_H

#include <stddef.h>

typedef enum TnAttnAlgo { TN_ATTN_PARALLEL, TN_ATTN_CHUNKED, TN_ATTN_RECURRENT } TnAttnAlgo;

typedef struct TnAttnShape {
    int batch, heads, seq_len;
    int dk, dv;
    int ldq, ldk, ldv, ldo;
} TnAttnShape;

/* Default Lightning Attention-2 block size on the CPU. */
#define TN_ATTN_DEFAULT_BLOCK 64

/* Scratch needed by one call with up to `threads` OpenMP threads. */
size_t tn_attention_scratch_floats(const TnAttnShape *s, TnAttnAlgo algo, int block, int threads);

void attention_forward_cpu(float *o, const float *q, const float *k, const float *v, const float *lambda,
                           float *state, const TnAttnShape *s, TnAttnAlgo algo, int block, float *scratch);

/* Backward of attention_forward_cpu without an initial state: from do
 * (ldo) writes dq (ldq), dk (ldk), dv (ldv), overwriting them. Per head:
 *   dq_t = sum_{s<=t} lambda^(t-s) (do_t . v_s) k_s
 *   dk_s = sum_{t>=s} lambda^(t-s) (do_t . v_s) q_t
 *   dv_s = sum_{t>=s} lambda^(t-s) (q_t . k_s) do_t
 * TN_ATTN_PARALLEL evaluates the sums tile by tile (Alg. 2), O(n^2).
 * TN_ATTN_CHUNKED is linear in n: dq in a forward sweep over blocks carrying
 * the forward state S; dk and dv in a backward sweep carrying
 * R = sum_{t >= end of block} lambda^(t - end) q_t^T do_t, scaled by lambda^n
 * per block. Only factors lambda^i <= 1 are formed. TN_ATTN_RECURRENT is not
 * a training algorithm and is refused. */
void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                            const float *v, const float *lambda, const TnAttnShape *s, TnAttnAlgo algo, int block,
                            float *scratch);
/* Scratch of one attention_backward_cpu call with up to `threads` threads. */
size_t tn_attention_backward_scratch_floats(const TnAttnShape *s, TnAttnAlgo algo, int block, int threads);

/* The pieces of the block forms, for baselines built from them (the
 * bench's whole-matrix form of Eq. 10):
 * pw[i] = lambda^i for i = 0..n. */
void attention_decay_powers(float *pw, float lambda, int n);
/* The tile of rows query positions x cols key positions, the queries
 * `offset` positions after the keys: scores[i, j] = (a_i . b_j)
 * lambda^(offset+i-j) where offset + i >= j, else 0 (the decay mask M), with
 * a, b rows of `width` features (strides lda, ldb) and scores rows of cols;
 * pw holds lambda^0 .. lambda^(offset+rows-1). */
void attention_masked_scores_cpu(float *scores, const float *a, int lda, const float *b, int ldb, int rows, int cols,
                                 int width, int offset, const float *pw);

const char *tn_attn_algo_name(TnAttnAlgo algo);
/* Parses "parallel", "chunked", "recurrent"; -1 if unknown. */
int tn_attn_algo_parse(const char *name, TnAttnAlgo *algo);

#endif
