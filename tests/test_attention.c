/* Decay attention: the parallel (blockwise Alg. 1-2, several tiles),
 * chunked (several block sizes) and recurrent forms against a float64
 * naive reference, and against each other (SPEC section 2: within 1e-5 relative); a sequence processed in
 * two calls with the state carried equals one call; a long sequence with
 * lambda close to 1 (where a lambda^-t formulation overflows) matches the
 * float64 reference within 1e-5 relative too. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/attention.h"
#include "test.h"
#include "util/rng.h"

static void naive64(double *o, const float *q, const float *k, const float *v, const float *lambda,
                    const TnAttnShape *s) {
    for (int b = 0; b < s->batch; b++)
        for (int h = 0; h < s->heads; h++)
            for (int t = 0; t < s->seq_len; t++) {
                double *ot = o + ((long)b * s->seq_len + t) * s->ldo + h * s->dv;
                for (int c = 0; c < s->dv; c++) ot[c] = 0;
                for (int u = 0; u <= t; u++) {
                    const float *qt = q + ((long)b * s->seq_len + t) * s->ldq + h * s->dk;
                    const float *ku = k + ((long)b * s->seq_len + u) * s->ldk + h * s->dk;
                    const float *vu = v + ((long)b * s->seq_len + u) * s->ldv + h * s->dv;
                    double score = 0;
                    for (int c = 0; c < s->dk; c++) score += (double)qt[c] * ku[c];
                    score *= pow((double)lambda[h], t - u);
                    for (int c = 0; c < s->dv; c++) ot[c] += score * vu[c];
                }
            }
}

static float *random_floats(TnRng *rng, size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)tn_rng_normal(rng);
    return x;
}

static void run(TnAttnAlgo algo, int block, float *o, const float *q, const float *k, const float *v,
                const float *lambda, float *state, const TnAttnShape *s) {
    size_t n = tn_attention_scratch_floats(s, algo, block, omp_get_max_threads());
    float *scratch = malloc(n * sizeof *scratch);
    attention_forward_cpu(o, q, k, v, lambda, state, s, algo, block, scratch);
    free(scratch);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnRng rng;
    tn_rng_seed(&rng, seed, 0);
    /* dk != dv (LRPE doubles dk), strided v as in the fused qkvu buffer. */
    TnAttnShape s = {.batch = 2, .heads = 3, .seq_len = 77, .dk = 16, .dv = 8};
    s.ldq = s.ldk = s.heads * s.dk;
    s.ldv = 2 * s.heads * s.dv + 5;
    s.ldo = s.heads * s.dv;
    size_t rows = (size_t)s.batch * s.seq_len;
    float *q = random_floats(&rng, rows * s.ldq), *k = random_floats(&rng, rows * s.ldk);
    float *v = random_floats(&rng, rows * s.ldv);
    float lambda[3] = {0.5f, 0.9f, 0.999f};
    double *ref = malloc(rows * s.ldo * sizeof *ref);
    naive64(ref, q, k, v, lambda, &s);
    float *o = malloc(rows * s.ldo * sizeof *o), *o_ref = malloc(rows * s.ldo * sizeof *o_ref);

    run(TN_ATTN_PARALLEL, 0, o_ref, q, k, v, lambda, NULL, &s);
    double e = rel_l2_f32_f64(o_ref, ref, rows * s.ldo);
    printf("parallel  vs float64: %.2e\n", e);
    CHECK(e <= 1e-5, "parallel vs float64 reference %.3e", e);
    int blocks[] = {1, 7, 16, 64, 128};
    for (int i = 0; i < 5; i++) {
        /* tiles that do not divide n, one token, and one tile for all */
        run(TN_ATTN_PARALLEL, blocks[i], o, q, k, v, lambda, NULL, &s);
        e = rel_l2_f32_f64(o, ref, rows * s.ldo);
        printf("parallel tile %3d: vs float64 %.2e\n", blocks[i], e);
        CHECK(e <= 1e-5, "parallel tile %d vs float64 reference %.3e", blocks[i], e);
        run(TN_ATTN_CHUNKED, blocks[i], o, q, k, v, lambda, NULL, &s);
        double e64 = rel_l2_f32_f64(o, ref, rows * s.ldo), e32 = rel_l2_f32_f32(o, o_ref, rows * s.ldo);
        printf("chunked block %3d: vs float64 %.2e, vs parallel %.2e\n", blocks[i], e64, e32);
        CHECK(e64 <= 1e-5 && e32 <= 1e-5, "chunked block %d: %.3e / %.3e", blocks[i], e64, e32);
    }
    run(TN_ATTN_RECURRENT, 0, o, q, k, v, lambda, NULL, &s);
    e = rel_l2_f32_f32(o, o_ref, rows * s.ldo);
    printf("recurrent vs parallel: %.2e\n", e);
    CHECK(e <= 1e-5, "recurrent vs parallel %.3e", e);

    /* Carrying the state: the first 30 tokens in one call, the rest in a
     * second call that starts from the state, for both stateful forms. */
    TnAttnShape first = s, second = s;
    first.seq_len = 30;
    second.seq_len = s.seq_len - 30;
    size_t state_n = (size_t)s.batch * s.heads * s.dk * s.dv;
    float *state = malloc(state_n * sizeof *state);
    float *qa = malloc(rows * s.ldq * sizeof *qa), *ka = malloc(rows * s.ldk * sizeof *ka);
    float *va = malloc(rows * s.ldv * sizeof *va), *oa = malloc(rows * s.ldo * sizeof *oa);
    /* Re-pack into [batch, 30 | 47] row groups, as two calls would see them. */
    {
        for (int algo = TN_ATTN_CHUNKED; algo <= TN_ATTN_RECURRENT; algo++) {
            memset(state, 0, state_n * sizeof *state);
            int t0 = 0;
            for (int call = 0; call < 2; call++) {
                const TnAttnShape *cs = call == 0 ? &first : &second;
                for (int b = 0; b < s.batch; b++)
                    for (int t = 0; t < cs->seq_len; t++) {
                        long src = (long)b * s.seq_len + t0 + t, dst = (long)b * cs->seq_len + t;
                        memcpy(qa + dst * s.ldq, q + src * s.ldq, (size_t)s.ldq * sizeof *q);
                        memcpy(ka + dst * s.ldk, k + src * s.ldk, (size_t)s.ldk * sizeof *k);
                        memcpy(va + dst * s.ldv, v + src * s.ldv, (size_t)s.ldv * sizeof *v);
                    }
                run((TnAttnAlgo)algo, 16, oa, qa, ka, va, lambda, state, cs);
                double num = 0, den = 0;
                for (int b = 0; b < s.batch; b++)
                    for (int t = 0; t < cs->seq_len; t++)
                        for (int c = 0; c < s.ldo; c++) {
                            double want = ref[((long)b * s.seq_len + t0 + t) * s.ldo + c];
                            double got = oa[((long)b * cs->seq_len + t) * s.ldo + c];
                            num += (got - want) * (got - want);
                            den += want * want;
                        }
                e = sqrt(num / den);
                CHECK(e <= 1e-5, "%s call %d with carried state: %.3e", tn_attn_algo_name((TnAttnAlgo)algo), call, e);
                t0 += cs->seq_len;
            }
        }
    }
    printf("state carried across two calls: chunked and recurrent match the float64 reference\n");

    /* Long sequence, lambda ~ 1: the chunked and parallel forms against
     * the float64 reference. */
    TnAttnShape lg = {.batch = 1, .heads = 1, .seq_len = 5000, .dk = 4, .dv = 4, .ldq = 4, .ldk = 4, .ldv = 4, .ldo = 4};
    float *lq = random_floats(&rng, 5000 * 4), *lk = random_floats(&rng, 5000 * 4), *lv = random_floats(&rng, 5000 * 4);
    float *lo = malloc(5000 * 4 * sizeof *lo), lam = 0.99999f;
    double *lref = malloc(5000 * 4 * sizeof *lref);
    naive64(lref, lq, lk, lv, &lam, &lg);
    for (TnAttnAlgo algo = TN_ATTN_PARALLEL; algo <= TN_ATTN_CHUNKED; algo++) {
        run(algo, 64, lo, lq, lk, lv, &lam, NULL, &lg);
        e = rel_l2_f32_f64(lo, lref, 5000 * 4);
        printf("%s, 5000 tokens, lambda 0.99999: vs float64 %.2e\n", tn_attn_algo_name(algo), e);
        CHECK(e <= 1e-5, "%s over 5000 tokens with lambda = 0.99999: %.3e against float64", tn_attn_algo_name(algo), e);
    }

    free(q); free(k); free(v); free(ref); free(o); free(o_ref); free(state);
    free(qa); free(ka); free(va); free(oa); free(lq); free(lk); free(lv); free(lo); free(lref);
    return TEST_DONE(argv[0]);
}
