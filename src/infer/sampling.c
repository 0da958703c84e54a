#include "infer/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

TnSamplingParams tn_sampling_defaults(void) {
    return (TnSamplingParams){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.0f, .repeat_penalty = 1.1f,
                              .seed = 0};
}

void tn_sampler_init(TnSampler *s, const TnSamplingParams *p, int vocab_size) {
    memset(s, 0, sizeof *s);
    s->params = *p;
    s->vocab_size = vocab_size;
    tn_rng_seed(&s->rng, p->seed, 0);
    s->logits = tn_malloc((size_t)vocab_size * sizeof *s->logits);
    s->ids = tn_malloc((size_t)vocab_size * sizeof *s->ids);
    s->probs = tn_malloc((size_t)vocab_size * sizeof *s->probs);
}

void tn_sampler_seed_stream(TnSampler *s, uint64_t stream) { tn_rng_seed(&s->rng, s->params.seed, stream); }

void tn_sampler_free(TnSampler *s) {
    free(s->logits);
    free(s->ids);
    free(s->probs);
    memset(s, 0, sizeof *s);
}

/* a ranks before b: larger logit first, lower id on ties (a total order, so
 * the result never depends on the sort's stability). */
static int ranks_before(const float *logits, int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
}

static void swap_ids(int32_t *ids, int i, int j) {
    int32_t t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
}

/* Reorders ids[0..n) so that its first k entries are the k best ranked
 * (quickselect, expected O(n)). */
static void select_best(const float *logits, int32_t *ids, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        swap_ids(ids, (lo + hi) / 2, hi);
        int32_t pivot = ids[hi];
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (ranks_before(logits, ids[i], pivot)) swap_ids(ids, i, store++);
        swap_ids(ids, store, hi);
        if (store == k - 1 || store == k) return;
        if (store < k) lo = store + 1;
        else hi = store - 1;
    }
}

static int compare_rank(const void *a, const void *b, void *logits) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return ranks_before(logits, x, y) ? -1 : ranks_before(logits, y, x) ? 1 : 0;
}

static int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int32_t tn_sampler_sample(TnSampler *s, const float *logits, const int32_t *recent, int n_recent) {
    const TnSamplingParams *p = &s->params;
    int V = s->vocab_size;
    float *z = s->logits;
    memcpy(z, logits, (size_t)V * sizeof *z);
    for (int i = 0; i < n_recent && p->repeat_penalty != 1.0f; i++) {
        int32_t id = recent[i], seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = recent[j] == id;
        if (seen || id < 0 || id >= V) continue;
        z[id] = z[id] > 0 ? z[id] / p->repeat_penalty : z[id] * p->repeat_penalty;
    }
    if (p->temperature <= 0.0f) return argmax(z, V);

    int n = V;
    for (int32_t i = 0; i < V; i++) s->ids[i] = i;
    if (p->top_k > 0 && p->top_k < V) {
        select_best(z, s->ids, V, p->top_k);
        n = p->top_k;
    }
    /* Sorted candidates make the top-p and min-p prefixes well defined. */
    if (p->top_p < 1.0f || p->min_p > 0.0f) {
        qsort_r(s->ids, (size_t)n, sizeof *s->ids, compare_rank, z);
    }
    float max = z[s->ids[0]];
    for (int i = 1; i < n; i++) max = z[s->ids[i]] > max ? z[s->ids[i]] : max;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = expf((z[s->ids[i]] - max) / p->temperature);
        sum += s->probs[i];
    }
    if (p->top_p < 1.0f) {
        double kept = 0;
        int keep = 0;
        while (keep < n && kept < p->top_p * sum) kept += s->probs[keep++];
        n = keep > 0 ? keep : 1;
        sum = kept > 0 ? kept : s->probs[0];
    }
    if (p->min_p > 0.0f) { /* probs[0], the most probable candidate's, is the largest */
        double kept = s->probs[0];
        int keep = 1;
        while (keep < n && s->probs[keep] >= p->min_p * s->probs[0]) kept += s->probs[keep++];
        n = keep;
        sum = kept;
    }
    double u = tn_rng_uniform(&s->rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->probs[i];
        if (u < acc) return s->ids[i];
    }
    return s->ids[n - 1]; /* u within rounding of sum */
}
