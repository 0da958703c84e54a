#include "kernels/cpu/attention.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "util/error.h"

const char *tn_attn_algo_name(TnAttnAlgo algo) {
    return algo == TN_ATTN_PARALLEL ? "parallel" : algo == TN_ATTN_CHUNKED ? "chunked" : "recurrent";
}

int tn_attn_algo_parse(const char *name, TnAttnAlgo *algo) {
    for (int a = TN_ATTN_PARALLEL; a <= TN_ATTN_RECURRENT; a++)
        if (strcmp(name, tn_attn_algo_name((TnAttnAlgo)a)) == 0) { *algo = (TnAttnAlgo)a; return 0; }
    return -1;
}

/* The tile of the blockwise form: block, or the default for 0. */
static int tile_size(int block) { return block > 0 ? block : TN_ATTN_DEFAULT_BLOCK; }

static size_t per_thread_floats(const TnAttnShape *s, TnAttnAlgo algo, int block) {
    size_t state = (size_t)s->dk * s->dv, tile = (size_t)tile_size(block);
    switch (algo) {
    case TN_ATTN_PARALLEL: return tile * tile + (size_t)s->seq_len + 1;             /* scores, lambda powers */
    case TN_ATTN_RECURRENT: return state;                                          /* local state */
    case TN_ATTN_CHUNKED: break;
    }
    size_t b = (size_t)block;
    return state + b * b + 2 * b * s->dk + b + 1; /* state, block scores, scaled Q and K, powers */
}

size_t tn_attention_scratch_floats(const TnAttnShape *s, TnAttnAlgo algo, int block, int threads) {
    return per_thread_floats(s, algo, block) * (size_t)threads;
}

/* From double, so that long runs stay accurate. */
void attention_decay_powers(float *pw, float lambda, int n) {
    double log_lambda = log((double)lambda);
    for (int i = 0; i <= n; i++) pw[i] = (float)exp(i * log_lambda);
}

static void head_recurrent(float *o, const float *q, const float *k, const float *v, float lambda,
                           const TnAttnShape *s, float *S) {
    for (int t = 0; t < s->seq_len; t++) {
        /* Alg. 4: S = lambda S + k^T v; o = q S */
        cblas_sscal(s->dk * s->dv, lambda, S, 1);
        cblas_sger(CblasRowMajor, s->dk, s->dv, 1.0f, k + (long)t * s->ldk, 1, v + (long)t * s->ldv, 1, S, s->dv);
        cblas_sgemv(CblasRowMajor, CblasTrans, s->dk, s->dv, 1.0f, S, s->dv, q + (long)t * s->ldq, 1, 0.0f,
                    o + (long)t * s->ldo, 1);
    }
}

/* dst[i, :] = src[i, :] * pw[first + i * step] for i < n rows of width w. */
static void scale_rows(float *dst, const float *src, int ld, int n, int w, const float *pw, int first, int step) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < w; c++) dst[i * w + c] = src[(long)i * ld + c] * pw[first + i * step];
}

void attention_masked_scores_cpu(float *scores, const float *a, int lda, const float *b, int ldb, int rows, int cols,
                                 int width, int offset, const float *pw) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, width, 1.0f, a, lda, b, ldb, 0.0f, scores, cols);
    for (int i = 0; i < rows; i++) {
        float *row = scores + (size_t)i * cols; /* size_t: a whole sequence's n^2 can pass 2^31 */
        for (int j = 0; j < cols; j++) row[j] = j <= offset + i ? row[j] * pw[offset + i - j] : 0.0f;
    }
}

/* Alg. 1: for every block of `block` queries, O_i = sum over key blocks
 * j <= i of (Q_i K_j^T ⊙ M_ij) V_j, one tile of scores at a time. */
static void head_parallel(float *o, const float *q, const float *k, const float *v, float lambda,
                          const TnAttnShape *s, int block, float *work) {
    float *tile = work, *pw = work + (size_t)block * block;
    attention_decay_powers(pw, lambda, s->seq_len);
    for (int r0 = 0; r0 < s->seq_len; r0 += block) {
        int rows = s->seq_len - r0 < block ? s->seq_len - r0 : block;
        for (int c0 = 0; c0 <= r0; c0 += block) {
            int cols = s->seq_len - c0 < block ? s->seq_len - c0 : block;
            attention_masked_scores_cpu(tile, q + (long)r0 * s->ldq, s->ldq, k + (long)c0 * s->ldk, s->ldk, rows, cols,
                                        s->dk, r0 - c0, pw);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, s->dv, cols, 1.0f, tile, cols,
                        v + (long)c0 * s->ldv, s->ldv, c0 > 0 ? 1.0f : 0.0f, o + (long)r0 * s->ldo, s->ldo);
        }
    }
}

static void head_chunked(float *o, const float *q, const float *k, const float *v, float lambda,
                         const TnAttnShape *s, int block, float *S, int has_state, float *work) {
    int dk = s->dk, dv = s->dv;
    float *scores = work, *qs = scores + (size_t)block * block, *ks = qs + (size_t)block * dk, *pw = ks + (size_t)block * dk;
    attention_decay_powers(pw, lambda, block);
    for (int start = 0; start < s->seq_len; start += block) {
        int n = s->seq_len - start < block ? s->seq_len - start : block;
        const float *qb = q + (long)start * s->ldq, *kb = k + (long)start * s->ldk, *vb = v + (long)start * s->ldv;
        float *ob = o + (long)start * s->ldo;
        /* Intra-block: (Q K^T ⊙ M) V with M[i, j] = lambda^(i-j), j <= i. */
        attention_masked_scores_cpu(scores, qb, s->ldq, kb, s->ldk, n, n, dk, 0, pw);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dv, n, 1.0f, scores, n, vb, s->ldv, 0.0f, ob, s->ldo);
        if (has_state) {
            /* Inter-block: token i of the block sees the state decayed
             * lambda^(i+1) steps: O += diag(lambda^(i+1)) Q S. */
            scale_rows(qs, qb, s->ldq, n, dk, pw, 1, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dv, dk, 1.0f, qs, dk, S, dv, 1.0f, ob, s->ldo);
        }
        /* State update: S = lambda^n S + sum_j lambda^(n-1-j) k_j^T v_j. */
        scale_rows(ks, kb, s->ldk, n, dk, pw, n - 1, -1);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dk, dv, n, 1.0f, ks, dk, vb, s->ldv,
                    has_state ? pw[n] : 0.0f, S, dv);
        has_state = 1;
    }
}

void attention_forward_cpu(float *o, const float *q, const float *k, const float *v, const float *lambda,
                           float *state, const TnAttnShape *s, TnAttnAlgo algo, int block, float *scratch) {
    TN_ASSERT(algo != TN_ATTN_PARALLEL || state == NULL);
    TN_ASSERT(algo != TN_ATTN_CHUNKED || block > 0);
    size_t per_thread = per_thread_floats(s, algo, block), state_size = (size_t)s->dk * s->dv;
    int n_pairs = s->batch * s->heads;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < n_pairs; bh++) {
        int b = bh / s->heads, h = bh % s->heads;
        long row0 = (long)b * s->seq_len;
        const float *qh = q + row0 * s->ldq + (long)h * s->dk, *kh = k + row0 * s->ldk + (long)h * s->dk;
        const float *vh = v + row0 * s->ldv + (long)h * s->dv;
        float *oh = o + row0 * s->ldo + (long)h * s->dv;
        float *work = scratch + per_thread * (size_t)omp_get_thread_num();
        float *S = state ? state + (size_t)bh * state_size : work;
        if (algo == TN_ATTN_PARALLEL) {
            head_parallel(oh, qh, kh, vh, lambda[h], s, tile_size(block), work);
            continue;
        }
        if (!state) memset(S, 0, state_size * sizeof *S);
        if (algo == TN_ATTN_RECURRENT) head_recurrent(oh, qh, kh, vh, lambda[h], s, S);
        else head_chunked(oh, qh, kh, vh, lambda[h], s, block, S, state != NULL, work + state_size);
    }
}

static size_t backward_per_thread_floats(const TnAttnShape *s, TnAttnAlgo algo, int block) {
    size_t tile = (size_t)tile_size(block);
    if (algo == TN_ATTN_PARALLEL) return 2 * tile * tile + (size_t)s->seq_len + 1; /* scores, dscores, powers */
    size_t b = (size_t)block, wide = (size_t)(s->dk > s->dv ? s->dk : s->dv);
    /* carried state, scores P and dP, two row-scaled copies, powers */
    return (size_t)s->dk * s->dv + 2 * b * b + 2 * b * wide + b + 1;
}

size_t tn_attention_backward_scratch_floats(const TnAttnShape *s, TnAttnAlgo algo, int block, int threads) {
    return backward_per_thread_floats(s, algo, block) * (size_t)threads;
}

/* Alg. 2, tile by tile: for query block i and key block j <= i, with
 * P = (Q_i K_j^T) ⊙ M_ij and dP = (dO_i V_j^T) ⊙ M_ij:
 * dQ_i += dP K_j, dK_j += dP^T Q_i, dV_j += P^T dO_i. */
static void head_parallel_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, float lambda, const TnAttnShape *s, int block, float *work) {
    float *scores = work, *dscores = work + (size_t)block * block, *pw = dscores + (size_t)block * block;
    attention_decay_powers(pw, lambda, s->seq_len);
    for (int t = 0; t < s->seq_len; t++) {
        memset(dk + (long)t * s->ldk, 0, (size_t)s->dk * sizeof *dk);
        memset(dv + (long)t * s->ldv, 0, (size_t)s->dv * sizeof *dv);
    }
    for (int r0 = 0; r0 < s->seq_len; r0 += block) {
        int rows = s->seq_len - r0 < block ? s->seq_len - r0 : block;
        const float *qi = q + (long)r0 * s->ldq, *doi = dout + (long)r0 * s->ldo;
        for (int c0 = 0; c0 <= r0; c0 += block) {
            int cols = s->seq_len - c0 < block ? s->seq_len - c0 : block;
            const float *kj = k + (long)c0 * s->ldk, *vj = v + (long)c0 * s->ldv;
            attention_masked_scores_cpu(scores, qi, s->ldq, kj, s->ldk, rows, cols, s->dk, r0 - c0, pw);
            attention_masked_scores_cpu(dscores, doi, s->ldo, vj, s->ldv, rows, cols, s->dv, r0 - c0, pw);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, s->dk, cols, 1.0f, dscores, cols, kj, s->ldk,
                        c0 > 0 ? 1.0f : 0.0f, dq + (long)r0 * s->ldq, s->ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, s->dk, rows, 1.0f, dscores, cols, qi, s->ldq,
                        1.0f, dk + (long)c0 * s->ldk, s->ldk);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, s->dv, rows, 1.0f, scores, cols, doi, s->ldo,
                        1.0f, dv + (long)c0 * s->ldv, s->ldv);
        }
    }
}

static void head_chunked_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                  const float *v, float lambda, const TnAttnShape *s, int block, float *work) {
    int dkw = s->dk, dvw = s->dv, wide = dkw > dvw ? dkw : dvw;
    float *state = work, *scores = state + (size_t)dkw * dvw, *dscores = scores + (size_t)block * block;
    float *scaled_a = dscores + (size_t)block * block, *scaled_b = scaled_a + (size_t)block * wide;
    float *pw = scaled_b + (size_t)block * wide;
    attention_decay_powers(pw, lambda, block);
    int n_blocks = (s->seq_len + block - 1) / block;
    /* Forward sweep: dQ = (dO V^T ⊙ M) K + diag(lambda^(i+1)) dO S^T, with
     * S the forward state before the block. */
    for (int b = 0; b < n_blocks; b++) {
        int start = b * block, n = s->seq_len - start < block ? s->seq_len - start : block;
        const float *kb = k + (long)start * s->ldk, *vb = v + (long)start * s->ldv;
        const float *dob = dout + (long)start * s->ldo;
        float *dqb = dq + (long)start * s->ldq;
        attention_masked_scores_cpu(dscores, dob, s->ldo, vb, s->ldv, n, n, dvw, 0, pw);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dkw, n, 1.0f, dscores, n, kb, s->ldk, 0.0f, dqb,
                    s->ldq);
        if (b > 0) {
            scale_rows(scaled_a, dob, s->ldo, n, dvw, pw, 1, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dkw, dvw, 1.0f, scaled_a, dvw, state, dvw, 1.0f,
                        dqb, s->ldq);
        }
        scale_rows(scaled_a, kb, s->ldk, n, dkw, pw, n - 1, -1);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dkw, dvw, n, 1.0f, scaled_a, dkw, vb, s->ldv,
                    b > 0 ? pw[n] : 0.0f, state, dvw);
    }
    /* Backward sweep: dV = P^T dO + diag(lambda^(n-j)) K R, dK = dP^T Q +
     * diag(lambda^(n-j)) V R^T, with R the reverse state after the block. */
    for (int b = n_blocks - 1; b >= 0; b--) {
        int start = b * block, n = s->seq_len - start < block ? s->seq_len - start : block;
        const float *qb = q + (long)start * s->ldq, *kb = k + (long)start * s->ldk, *vb = v + (long)start * s->ldv;
        const float *dob = dout + (long)start * s->ldo;
        float *dkb = dk + (long)start * s->ldk, *dvb = dv + (long)start * s->ldv;
        int has_state = b < n_blocks - 1;
        attention_masked_scores_cpu(scores, qb, s->ldq, kb, s->ldk, n, n, dkw, 0, pw);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dvw, n, 1.0f, scores, n, dob, s->ldo, 0.0f, dvb,
                    s->ldv);
        attention_masked_scores_cpu(dscores, dob, s->ldo, vb, s->ldv, n, n, dvw, 0, pw);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dkw, n, 1.0f, dscores, n, qb, s->ldq, 0.0f, dkb,
                    s->ldk);
        if (has_state) {
            scale_rows(scaled_a, vb, s->ldv, n, dvw, pw, n, -1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, dkw, dvw, 1.0f, scaled_a, dvw, state, dvw, 1.0f,
                        dkb, s->ldk);
            scale_rows(scaled_b, kb, s->ldk, n, dkw, pw, n, -1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, dvw, dkw, 1.0f, scaled_b, dkw, state, dvw, 1.0f,
                        dvb, s->ldv);
        }
        /* R = lambda^n R + sum_i lambda^i q_i^T do_i */
        scale_rows(scaled_a, qb, s->ldq, n, dkw, pw, 0, 1);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dkw, dvw, n, 1.0f, scaled_a, dkw, dob, s->ldo,
                    has_state ? pw[n] : 0.0f, state, dvw);
    }
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                            const float *v, const float *lambda, const TnAttnShape *s, TnAttnAlgo algo, int block,
                            float *scratch) {
    TN_ASSERT(algo != TN_ATTN_RECURRENT);
    TN_ASSERT(algo != TN_ATTN_CHUNKED || block > 0);
    size_t per_thread = backward_per_thread_floats(s, algo, block);
    int n_pairs = s->batch * s->heads;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < n_pairs; bh++) {
        int b = bh / s->heads, h = bh % s->heads;
        long row0 = (long)b * s->seq_len;
        long qoff = row0 * s->ldq + (long)h * s->dk, koff = row0 * s->ldk + (long)h * s->dk;
        long voff = row0 * s->ldv + (long)h * s->dv, ooff = row0 * s->ldo + (long)h * s->dv;
        float *work = scratch + per_thread * (size_t)omp_get_thread_num();
        if (algo == TN_ATTN_PARALLEL)
            head_parallel_backward(dq + qoff, dk + koff, dv + voff, dout + ooff, q + qoff, k + koff, v + voff,
                                   lambda[h], s, tile_size(block), work);
        else
            head_chunked_backward(dq + qoff, dk + koff, dv + voff, dout + ooff, q + qoff, k + koff, v + voff,
                                  lambda[h], s, block, work);
    }
}
