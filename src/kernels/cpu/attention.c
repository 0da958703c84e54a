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

static size_t per_thread_floats(const TnAttnShape *s, TnAttnAlgo algo, int block) {
    size_t state = (size_t)s->dk * s->dv;
    switch (algo) {
    case TN_ATTN_PARALLEL: return (size_t)s->seq_len + 1;                         /* lambda powers */
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

static void head_parallel(float *o, const float *q, const float *k, const float *v, float lambda,
                          const TnAttnShape *s, float *pw) {
    attention_decay_powers(pw, lambda, s->seq_len);
    for (int t = 0; t < s->seq_len; t++) {
        float *ot = o + (long)t * s->ldo;
        memset(ot, 0, (size_t)s->dv * sizeof *ot);
        for (int u = 0; u <= t; u++) {
            float w = pw[t - u] * cblas_sdot(s->dk, q + (long)t * s->ldq, 1, k + (long)u * s->ldk, 1);
            cblas_saxpy(s->dv, w, v + (long)u * s->ldv, 1, ot, 1);
        }
    }
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

void attention_masked_scores_cpu(float *scores, const float *a, int lda, const float *b, int ldb, int n, int width,
                                 const float *pw) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, width, 1.0f, a, lda, b, ldb, 0.0f, scores, n);
    for (int i = 0; i < n; i++) {
        float *row = scores + (size_t)i * n; /* size_t: a whole sequence's n^2 can pass 2^31 */
        for (int j = 0; j < n; j++) row[j] = j <= i ? row[j] * pw[i - j] : 0.0f;
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
        attention_masked_scores_cpu(scores, qb, s->ldq, kb, s->ldk, n, dk, pw);
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
            head_parallel(oh, qh, kh, vh, lambda[h], s, work);
            continue;
        }
        if (!state) memset(S, 0, state_size * sizeof *S);
        if (algo == TN_ATTN_RECURRENT) head_recurrent(oh, qh, kh, vh, lambda[h], s, S);
        else head_chunked(oh, qh, kh, vh, lambda[h], s, block, S, state != NULL, work + state_size);
    }
}

static size_t backward_per_thread_floats(const TnAttnShape *s, TnAttnAlgo algo, int block) {
    if (algo == TN_ATTN_PARALLEL) return (size_t)s->seq_len + 1; /* lambda powers */
    size_t b = (size_t)block, wide = (size_t)(s->dk > s->dv ? s->dk : s->dv);
    /* carried state, scores P and dP, two row-scaled copies, powers */
    return (size_t)s->dk * s->dv + 2 * b * b + 2 * b * wide + b + 1;
}

size_t tn_attention_backward_scratch_floats(const TnAttnShape *s, TnAttnAlgo algo, int block, int threads) {
    return backward_per_thread_floats(s, algo, block) * (size_t)threads;
}

static void head_parallel_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                   const float *v, float lambda, const TnAttnShape *s, float *pw) {
    attention_decay_powers(pw, lambda, s->seq_len);
    for (int t = 0; t < s->seq_len; t++) {
        memset(dk + (long)t * s->ldk, 0, (size_t)s->dk * sizeof *dk);
        memset(dv + (long)t * s->ldv, 0, (size_t)s->dv * sizeof *dv);
    }
    for (int t = 0; t < s->seq_len; t++) {
        const float *qt = q + (long)t * s->ldq, *dot = dout + (long)t * s->ldo;
        float *dqt = dq + (long)t * s->ldq;
        memset(dqt, 0, (size_t)s->dk * sizeof *dqt);
        for (int u = 0; u <= t; u++) {
            const float *ku = k + (long)u * s->ldk, *vu = v + (long)u * s->ldv;
            float score = pw[t - u] * cblas_sdot(s->dk, qt, 1, ku, 1);
            float grad = pw[t - u] * cblas_sdot(s->dv, dot, 1, vu, 1);
            cblas_saxpy(s->dk, grad, ku, 1, dqt, 1);
            cblas_saxpy(s->dk, grad, qt, 1, dk + (long)u * s->ldk, 1);
            cblas_saxpy(s->dv, score, dot, 1, dv + (long)u * s->ldv, 1);
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
        attention_masked_scores_cpu(dscores, dob, s->ldo, vb, s->ldv, n, dvw, pw);
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
        attention_masked_scores_cpu(scores, qb, s->ldq, kb, s->ldk, n, dkw, pw);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dvw, n, 1.0f, scores, n, dob, s->ldo, 0.0f, dvb,
                    s->ldv);
        attention_masked_scores_cpu(dscores, dob, s->ldo, vb, s->ldv, n, dvw, pw);
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
                                   lambda[h], s, work);
        else
            head_chunked_backward(dq + qoff, dk + koff, dv + voff, dout + ooff, q + qoff, k + koff, v + voff,
                                  lambda[h], s, block, work);
    }
}
