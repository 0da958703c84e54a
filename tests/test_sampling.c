/* Sampling: draw frequencies against the exact distributions (softmax at a
 * temperature, renormalised over top-k and top-p sets) by a chi-square test,
 * greedy and repetition-penalty rules, seeds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/sampling.h"
#include "test.h"

enum { V = 10, DRAWS = 40000 };

/* Chi-square of DRAWS draws of s against the distribution of the logits
 * at temperature T restricted to the `keep` best tokens (best[0..keep),
 * by decreasing probability); *df receives its degrees of freedom. Tokens
 * outside the set must never be drawn. Random logits can make a token's
 * expected count tiny, where one draw would dominate the sum and the
 * chi-square quantiles no longer hold: consecutive tokens are pooled into
 * bins of expected count at least 5 (Cochran's rule), a short tail going
 * into the bin before it. */
static double chi_square(TnSampler *s, const float *logits, double T, const int *best, int keep, int *outside, int *df) {
    double want[V] = {0}, sum = 0;
    for (int i = 0; i < keep; i++) sum += want[best[i]] = exp(logits[best[i]] / T);
    long count[V] = {0};
    for (int i = 0; i < DRAWS; i++) count[tn_sampler_sample(s, logits, NULL, 0)]++;
    *outside = 0;
    for (int v = 0; v < V; v++) *outside += want[v] == 0 && count[v] != 0;
    double expected[V], observed[V];
    int bins = 0;
    for (int i = 0; i < keep; i++) {
        double e = DRAWS * want[best[i]] / sum;
        if (bins == 0 || expected[bins - 1] >= 5) { expected[bins] = 0, observed[bins] = 0, bins++; }
        expected[bins - 1] += e, observed[bins - 1] += (double)count[best[i]];
    }
    if (bins > 1 && expected[bins - 1] < 5) {
        expected[bins - 2] += expected[bins - 1], observed[bins - 2] += observed[bins - 1];
        bins--;
    }
    double chi = 0;
    for (int b = 0; b < bins; b++) chi += (observed[b] - expected[b]) * (observed[b] - expected[b]) / expected[b];
    *df = bins - 1;
    return chi;
}

/* 99.99% quantiles of chi-square with df = 1 .. 9 degrees of freedom: the
 * logits and the sampler's seeds change with test_seed(), so each of the
 * test's chi-square checks fails falsely once in 10^4 runs. */
static const double chi_limit[] = {0, 15.14, 18.42, 21.11, 23.51, 25.74, 27.86, 29.88, 31.83, 33.72};

/* Ids by decreasing logit (lower id on ties): order[0..V). */
static void sort_ids(const float *logits, int *order) {
    for (int v = 0; v < V; v++) order[v] = v;
    for (int i = 0; i < V; i++)
        for (int j = i + 1; j < V; j++)
            if (logits[order[j]] > logits[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
}

/* The nucleus, in float64: of the `top_k` best tokens (0 or >= V = all) at
 * temperature T, the length of the smallest prefix of order whose
 * renormalised probability reaches top_p. */
static int nucleus_size(const float *logits, const int *order, double T, int top_k, double top_p) {
    int n = top_k > 0 && top_k < V ? top_k : V;
    double sum = 0, kept = 0;
    for (int i = 0; i < n; i++) sum += exp(logits[order[i]] / T);
    int keep = 0;
    while (keep < n && kept < top_p * sum) kept += exp(logits[order[keep++]] / T);
    return keep;
}

/* Of the tokens in order, the length of the prefix whose probability at
 * temperature T is at least min_p times the first one's. */
static int min_p_size(const float *logits, const int *order, double T, double min_p) {
    int keep = 1;
    while (keep < V && exp((logits[order[keep]] - logits[order[0]]) / T) >= min_p) keep++;
    return keep;
}

/* Draws with top-k, top-p and min-p (and temperature T) against the
 * renormalised nucleus of the sorted top k cut to min-p's prefix, for fresh
 * logits of the test's seed. */
static void check_nucleus(TnRng *rng, uint64_t seed, double T, int top_k, double top_p, double min_p) {
    float logits[V];
    for (int v = 0; v < V; v++) logits[v] = (float)(1.5 * tn_rng_normal(rng));
    int order[V];
    sort_ids(logits, order);
    int keep = nucleus_size(logits, order, T, top_k, top_p), min_p_keep = min_p_size(logits, order, T, min_p);
    keep = min_p_keep < keep ? min_p_keep : keep;
    TnSamplingParams p = {.temperature = (float)T, .top_k = top_k, .top_p = (float)top_p, .min_p = (float)min_p,
                          .repeat_penalty = 1.0f, .seed = seed};
    TnSampler s;
    tn_sampler_init(&s, &p, V);
    int outside, df;
    double chi = chi_square(&s, logits, T, order, keep, &outside, &df);
    double limit = chi_limit[df];
    printf("T %.2f top-k %d top-p %.2f min-p %.2f (%d tokens): chi-square %.2f (df %d, 99.99%% limit %.2f), outside: "
           "%d\n", T, top_k, top_p, min_p, keep, chi, df, limit, outside);
    CHECK(outside == 0, "T %.2f top-k %d top-p %.2f: %d draws outside the %d-token nucleus", T, top_k, top_p, outside, keep);
    CHECK(df == 0 || chi < limit, "T %.2f top-k %d top-p %.2f: chi-square %.2f >= %.2f", T, top_k, top_p, chi, limit);
    tn_sampler_free(&s);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    float logits[V];
    for (int v = 0; v < V; v++) logits[v] = (float)(1.5 * tn_rng_normal(&rng));
    int order[V];
    sort_ids(logits, order);

    double temps[] = {1.0, 0.5, 1.7};
    for (int i = 0; i < 3; i++) {
        TnSamplingParams p = {.temperature = (float)temps[i], .top_k = 0, .top_p = 1.0f, .repeat_penalty = 1.0f, .seed = seed + 11 + (uint64_t)i};
        TnSampler s;
        tn_sampler_init(&s, &p, V);
        int outside, df;
        double chi = chi_square(&s, logits, temps[i], order, V, &outside, &df);
        printf("temperature %.1f: chi-square %.2f (df %d, 99.99%% limit %.2f)\n", temps[i], chi, df, chi_limit[df]);
        CHECK(df == 0 || chi < chi_limit[df], "temperature %.1f: chi-square %.2f", temps[i], chi);
        tn_sampler_free(&s);
    }

    {
        TnSamplingParams p = {.temperature = 1.0f, .top_k = 3, .top_p = 1.0f, .repeat_penalty = 1.0f, .seed = seed + 5};
        TnSampler s;
        tn_sampler_init(&s, &p, V);
        int outside, df;
        double chi = chi_square(&s, logits, 1.0, order, 3, &outside, &df);
        printf("top-k 3: chi-square %.2f (df %d, limit %.2f), draws outside the top 3: %d\n", chi, df, chi_limit[df], outside);
        CHECK((df == 0 || chi < chi_limit[df]) && outside == 0, "top-k: chi %.2f, %d outside", chi, outside);
        tn_sampler_free(&s);
    }

    {
        /* top-p: the smallest prefix of the sorted distribution reaching p. */
        int keep = nucleus_size(logits, order, 1.0, 0, 0.8);
        TnSamplingParams p = {.temperature = 1.0f, .top_k = 0, .top_p = 0.8f, .repeat_penalty = 1.0f, .seed = seed + 6};
        TnSampler s;
        tn_sampler_init(&s, &p, V);
        int outside, df;
        double chi = chi_square(&s, logits, 1.0, order, keep, &outside, &df);
        printf("top-p 0.8 (%d tokens): chi-square %.2f (df %d, limit %.2f), outside: %d\n", keep, chi, df, chi_limit[df], outside);
        CHECK(keep < V && outside == 0, "top-p kept %d of %d, %d outside", keep, V, outside);
        CHECK(df == 0 || chi < chi_limit[df], "top-p chi %.2f", chi);
        tn_sampler_free(&s);
    }

    {
        /* top-k and top-p together (the defaults combine them): quickselect
         * leaves the top k unsorted, and the nucleus is a prefix of the
         * sorted ones. Several fresh logit sets, since one may happen to
         * come out of the selection sorted. Then top-p alone at
         * temperatures other than 1, where the nucleus shrinks or grows. */
        TnRng fresh;
        tn_rng_seed(&fresh, seed, 17);
        for (int i = 0; i < 6; i++) check_nucleus(&fresh, seed + 20 + (uint64_t)i, 1.0, 5, 0.8, 0);
        check_nucleus(&fresh, seed + 26, 0.8, 40, 0.95, 0); /* the defaults: top_k >= V keeps all */
        check_nucleus(&fresh, seed + 27, 0.6, 0, 0.95, 0);
        check_nucleus(&fresh, seed + 28, 1.7, 0, 0.8, 0);
        /* min-p: the tokens at least min_p times as probable as the most probable one (at the temperature),
         * alone, then after top-k and top-p */
        check_nucleus(&fresh, seed + 29, 1.0, 0, 1.0, 0.2);
        check_nucleus(&fresh, seed + 30, 0.7, 0, 1.0, 0.05);
        check_nucleus(&fresh, seed + 31, 1.3, 6, 0.9, 0.3);
    }
    {
        /* min-p on logits whose probabilities are known: 1, 0.6, 0.4, 0.9 times the top one's */
        float z[4] = {0.0f, logf(0.6f), logf(0.4f), logf(0.9f)};
        TnSamplingParams p = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.5f, .repeat_penalty = 1.0f,
                              .seed = seed + 32};
        TnSampler s;
        tn_sampler_init(&s, &p, 4);
        int count[4] = {0};
        for (int i = 0; i < 4000; i++) count[tn_sampler_sample(&s, z, NULL, 0)]++;
        CHECK(count[2] == 0 && count[0] > 0 && count[1] > 0 && count[3] > 0,
              "min-p 0.5 drew %d, %d, %d, %d (token 2, at 0.4 of the top, never)", count[0], count[1], count[2],
              count[3]);
        tn_sampler_free(&s);
    }

    {
        /* Greedy, ties to the lowest id, and the repetition penalty. */
        TnSamplingParams p = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .repeat_penalty = 2.0f, .seed = 0};
        TnSampler s;
        tn_sampler_init(&s, &p, 4);
        float z[4] = {1.0f, 0.9f, 1.0f, -0.2f};
        CHECK(tn_sampler_sample(&s, z, NULL, 0) == 0, "greedy picks the lowest of tied ids");
        int32_t recent[3] = {0, 2, 0};
        CHECK(tn_sampler_sample(&s, z, recent, 3) == 1, "penalised 0 and 2 (1.0 -> 0.5) leave 1");
        CHECK(z[0] == 1.0f, "the caller's logits are left alone");
        float negative[4] = {-1.0f, -1.5f, -3.0f, -4.0f};
        int32_t first = 0;
        CHECK(tn_sampler_sample(&s, negative, &first, 1) == 1, "a negative logit is multiplied (-1 -> -2)");
        tn_sampler_free(&s);
    }

    {
        /* top-k selection on a larger vocabulary equals the sorted top k. */
        enum { BIG = 1000, K = 37 };
        float *z = malloc(BIG * sizeof *z);
        for (int v = 0; v < BIG; v++) z[v] = (float)tn_rng_normal(&rng);
        z[17] = z[400] = z[999] = 3.5f; /* ties at the top */
        TnSamplingParams p = {.temperature = 1.0f, .top_k = K, .top_p = 1.0f, .repeat_penalty = 1.0f, .seed = seed + 9};
        TnSampler s;
        tn_sampler_init(&s, &p, BIG);
        float kth = 0;
        {
            float *sorted = malloc(BIG * sizeof *sorted);
            memcpy(sorted, z, BIG * sizeof *sorted);
            for (int i = 0; i < K; i++)
                for (int j = i + 1; j < BIG; j++)
                    if (sorted[j] > sorted[i]) { float t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t; }
            kth = sorted[K - 1];
            free(sorted);
        }
        int below = 0;
        for (int i = 0; i < 2000; i++) below += z[tn_sampler_sample(&s, z, NULL, 0)] < kth;
        CHECK(below == 0, "%d draws below the %d-th largest logit", below, K);
        tn_sampler_free(&s);
        free(z);
    }

    {
        /* A seed fixes the draws; another seed changes them. */
        TnSamplingParams p = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .repeat_penalty = 1.0f, .seed = seed + 42};
        TnSampler a, b, c;
        tn_sampler_init(&a, &p, V);
        tn_sampler_init(&b, &p, V);
        p.seed = seed + 43;
        tn_sampler_init(&c, &p, V);
        int same = 1, differ = 0;
        for (int i = 0; i < 200; i++) {
            int32_t x = tn_sampler_sample(&a, logits, NULL, 0), y = tn_sampler_sample(&b, logits, NULL, 0);
            same &= x == y;
            differ += x != tn_sampler_sample(&c, logits, NULL, 0);
        }
        CHECK(same, "one seed, two samplers, different draws");
        CHECK(differ > 0, "two seeds drew the same 200 tokens");
        tn_sampler_free(&a);
        tn_sampler_free(&b);
        tn_sampler_free(&c);
    }
    return TEST_DONE(argv[0]);
}
