/* The attention backward (attention.h) against a float64 transcription of
 * its sums, on fresh random q, k, v, dO: the chunked form at block sizes
 * that do and do not divide T (so the reverse state crosses many blocks)
 * and the parallel form, within 1e-5 relative l2; strong decay (lambda^T
 * underflows to 0) stays finite. Strided views, as in the model. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/cpu/attention.h"
#include "test.h"
#include "util/rng.h"

/* dq, dk, dv for one (batch, head) pair in float64, O(T^2). */
static void reference(double *dq, double *dk, double *dv, const float *q, const float *k, const float *v,
                      const float *dout, double lambda, const TnAttnShape *s, int b, int h) {
    int T = s->seq_len;
    for (int t = 0; t < T; t++) {
        for (int c = 0; c < s->dk; c++) dq[t * s->dk + c] = dk[t * s->dk + c] = 0;
        for (int c = 0; c < s->dv; c++) dv[t * s->dv + c] = 0;
    }
    for (int t = 0; t < T; t++) {
        const float *qt = q + ((long)b * T + t) * s->ldq + h * s->dk, *dot = dout + ((long)b * T + t) * s->ldo + h * s->dv;
        for (int u = 0; u <= t; u++) {
            const float *ku = k + ((long)b * T + u) * s->ldk + h * s->dk, *vu = v + ((long)b * T + u) * s->ldv + h * s->dv;
            double w = pow(lambda, t - u), score = 0, grad = 0;
            for (int c = 0; c < s->dk; c++) score += (double)qt[c] * ku[c];
            for (int c = 0; c < s->dv; c++) grad += (double)dot[c] * vu[c];
            for (int c = 0; c < s->dk; c++) {
                dq[t * s->dk + c] += w * grad * ku[c];
                dk[u * s->dk + c] += w * grad * qt[c];
            }
            for (int c = 0; c < s->dv; c++) dv[u * s->dv + c] += w * score * dot[c];
        }
    }
}

/* rel l2 of the (b, h) slice of a strided float buffer against ref. */
static void accumulate(double *num, double *den, const float *x, int ld, const double *ref, int width,
                       const TnAttnShape *s, int b, int h) {
    for (int t = 0; t < s->seq_len; t++)
        for (int c = 0; c < width; c++) {
            double a = x[((long)b * s->seq_len + t) * ld + h * width + c], r = ref[t * width + c];
            *num += (a - r) * (a - r);
            *den += r * r;
        }
}

static void run(uint64_t seed, int T, float lambda_scale) {
    TnAttnShape s = {.batch = 2, .heads = 3, .seq_len = T, .dk = 8, .dv = 6};
    s.ldq = s.ldk = s.heads * s.dk + 5; /* padded rows: views into wider buffers */
    s.ldv = s.ldo = s.heads * s.dv + 3;
    size_t rows = (size_t)s.batch * T;
    TnRng rng;
    tn_rng_seed(&rng, seed, (uint64_t)T);
    float *q = malloc(rows * s.ldq * sizeof *q), *k = malloc(rows * s.ldk * sizeof *k);
    float *v = malloc(rows * s.ldv * sizeof *v), *dout = malloc(rows * s.ldo * sizeof *dout);
    float *dq = malloc(rows * s.ldq * sizeof *dq), *dk = malloc(rows * s.ldk * sizeof *dk);
    float *dv = malloc(rows * s.ldv * sizeof *dv);
    for (size_t i = 0; i < rows * s.ldq; i++) q[i] = (float)tn_rng_normal(&rng), k[i] = (float)tn_rng_normal(&rng);
    for (size_t i = 0; i < rows * s.ldv; i++) v[i] = (float)tn_rng_normal(&rng), dout[i] = (float)tn_rng_normal(&rng);
    float lambda[3] = {0.999f, 0.95f, 0.5f};
    for (int h = 0; h < 3; h++) lambda[h] = powf(lambda[h], lambda_scale);
    double *rq = malloc((size_t)T * s.dk * sizeof *rq), *rk = malloc((size_t)T * s.dk * sizeof *rk);
    double *rv = malloc((size_t)T * s.dv * sizeof *rv);
    TnAttnAlgo algos[] = {TN_ATTN_PARALLEL, TN_ATTN_PARALLEL, TN_ATTN_CHUNKED, TN_ATTN_CHUNKED, TN_ATTN_CHUNKED};
    int blocks[] = {0, 13, 16, 64, 37};
    for (int a = 0; a < 5; a++) {
        size_t scratch_floats = tn_attention_backward_scratch_floats(&s, algos[a], blocks[a], omp_get_max_threads());
        float *scratch = malloc(scratch_floats * sizeof *scratch);
        attention_backward_cpu(dq, dk, dv, dout, q, k, v, lambda, &s, algos[a], blocks[a], scratch);
        double num = 0, den = 0;
        for (int b = 0; b < s.batch; b++)
            for (int h = 0; h < s.heads; h++) {
                reference(rq, rk, rv, q, k, v, dout, lambda[h], &s, b, h);
                accumulate(&num, &den, dq, s.ldq, rq, s.dk, &s, b, h);
                accumulate(&num, &den, dk, s.ldk, rk, s.dk, &s, b, h);
                accumulate(&num, &den, dv, s.ldv, rv, s.dv, &s, b, h);
            }
        double e = sqrt(num / den);
        printf("attention backward %-8s block %2d, T %3d, lambda^%g: rel l2 %.2e\n", tn_attn_algo_name(algos[a]),
               blocks[a], T, lambda_scale, e);
        CHECK(e <= 1e-5 && isfinite(e), "%s block %d T %d: rel l2 %.3e > 1e-5", tn_attn_algo_name(algos[a]),
              blocks[a], T, e);
        free(scratch);
    }
    free(q); free(k); free(v); free(dout); free(dq); free(dk); free(dv); free(rq); free(rk); free(rv);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    run(seed, 200, 1.0f);  /* lambda 0.5^200 underflows: only factors <= 1 may be formed */
    run(seed, 77, 30.0f);  /* strong decay on every head */
    return TEST_DONE(argv[0]);
}
