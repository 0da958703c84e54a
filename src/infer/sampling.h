/* sampling.h: choosing the next token from logits.
 *
 * The order is llama.cpp's: repetition penalty on the logits of recently
 * consumed tokens (a positive logit divided by the penalty, a negative one
 * multiplied), then temperature 0 = greedy (argmax, lowest id on ties), else
 * top-k (the k largest logits), softmax at the temperature, top-p (the
 * smallest set of most probable tokens whose probability reaches p), min-p
 * (the tokens whose probability is at least min_p times the most probable
 * one's) and one draw from the renormalised distribution. top-p and min-p
 * each keep a prefix of the candidates sorted by probability: together the
 * shorter one. The draws come from a TnRng
 * seeded once, so a seed fixes the whole generation.
 *
 * The sampler owns scratch for one vocabulary, allocated at init:
 * sampling allocates nothing.
 */
#ifndef TN_INFER_SAMPLING_H
#define TN_INFER_SAMPLING_H

#include <stdint.h>

#include "util/rng.h"

typedef struct TnSamplingParams {
    float temperature;    /* 0: greedy */
    int top_k;            /* 0: all tokens */
    float top_p;          /* 1: no nucleus cut */
    float min_p;          /* 0: no cut */
    float repeat_penalty; /* 1: none */
    uint64_t seed;
} TnSamplingParams;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0, repeat_penalty 1.1, seed 0 */
TnSamplingParams tn_sampling_defaults(void);

typedef struct TnSampler {
    TnSamplingParams params;
    TnRng rng;
    int vocab_size;
    float *logits;   /* (V) penalised copy */
    int32_t *ids;    /* (V) candidate ids */
    float *probs;    /* (V) candidate probabilities */
} TnSampler;

void tn_sampler_init(TnSampler *s, const TnSamplingParams *p, int vocab_size);
void tn_sampler_free(TnSampler *s);

/* Restarts the draws at stream `stream` of params.seed (init starts at
 * stream 0): batched generation gives prompt i stream i, so its tokens do
 * not depend on the batch it runs in. */
void tn_sampler_seed_stream(TnSampler *s, uint64_t stream);

/* Picks a token from logits (V), penalising the n_recent ids in recent
 * (duplicates count once). logits are not modified. */
int32_t tn_sampler_sample(TnSampler *s, const float *logits, const int32_t *recent, int n_recent);

#endif
