/* perplexity.h: scoring a token stream with a model.
 *
 * Windows of ctx tokens start at 0, stride, 2 stride, ... while they fit in
 * the stream; when tokens are left after the last of them, one more window
 * of ctx tokens ends at the stream's end, scoring those alone with a full
 * context (Hugging Face's strided perplexity scores the tail too, with a
 * shorter last window). A stream shorter than ctx is one window of
 * its length. Each window is an independent sequence (positions from 0).
 * The first window scores its ctx - 1 next-token predictions; a later one
 * scores only the predictions no earlier window scored, so with stride ==
 * ctx each window scores its ctx - 1 predictions (the first token of each
 * window, without context, is not scored) and with a smaller stride every
 * token after the first is scored, those after the first window with ctx -
 * stride tokens or more of context.
 *
 * On the CPU a batch of windows is one forward of the model
 * (tn_model_forward, fp32). On a device (session_device.h) the batch runs
 * as `batch` sequences of an inference session, TN_EVAL_DEVICE_STEP tokens
 * each per step with the states carried (bf16 matrix products, fp32
 * states), so the device's memory does not grow with ctx. tn_eval_windows
 * takes the scoring from its caller (the trainer validates on its training
 * step's GPU with it) and computes the same windows and statistics.
 */
#ifndef TN_INFER_PERPLEXITY_H
#define TN_INFER_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "model/transnormer.h"
#include "tokenizer/tokenizer.h"
#include "util/device.h"

/* Tokens per window and step on a device. */
#define TN_EVAL_DEVICE_STEP 1024

typedef struct TnEvalResult {
    double mean_loss;   /* nats per scored token */
    double std_error;   /* of mean_loss */
    double perplexity;  /* exp(mean_loss) */
    double ppl_low, ppl_high; /* 95% interval: exp(mean_loss -/+ 1.96 std_error) */
    long long n_scored;
    long long n_targets; /* the tokens after the first, which could be scored */
    long long n_windows;
    int window;          /* the window length: ctx, or the stream's when shorter */
    double seconds;
} TnEvalResult;

/* Scores tokens[0..n) in batches of `batch` windows on `device`. progress
 * != 0 draws a progress line on stderr. Fails on a token outside the
 * vocabulary, when the stream holds fewer than 2 tokens (nothing to
 * predict), when a batch would be more than 2^31 - 1 tokens, or when the
 * device cannot be opened or fails. */
int tn_eval_tokens(TnModel *m, const uint32_t *tokens, size_t n, int ctx, int stride, int batch, TnDevice device,
                   int progress, TnEvalResult *out, TnError *err);

/* Scores `batch` windows of ctx tokens, ctx the window length (the
 * caller's, or a shorter stream's whole length); row b: inputs and targets
 * [b ctx, (b + 1) ctx). losses[b ctx + t] receives the loss of targets[b ctx + t],
 * read only where that target is not TN_IGNORE_INDEX. The last position of
 * every window is never scored (its target lies past the window, always
 * TN_IGNORE_INDEX), so a scorer may forward ctx - 1 tokens a row. */
typedef int (*TnWindowScorer)(void *user, const int32_t *inputs, const int32_t *targets, int batch, int ctx,
                              float *losses, TnError *err);

/* tn_eval_tokens' windows, batches and statistics with the scoring done by
 * score(user, ...); fails as it does, or when score fails. */
int tn_eval_windows(TnWindowScorer score, void *user, const uint32_t *tokens, size_t n, int ctx, int stride,
                    int batch, int progress, TnEvalResult *out, TnError *err);

/* Scores a text, tokenized on the fly with tok as one document (<s> first,
 * like llama-perplexity's BOS), with the same windows as tn_eval_tokens.
 * Fails when a token is outside the model's vocabulary (a tokenizer of
 * another model) or the text is empty (<s> alone predicts nothing). */
int tn_eval_text(TnModel *m, const TnTokenizer *tok, const char *text, size_t len, int ctx, int stride, int batch,
                 TnDevice device, int progress, TnEvalResult *out, TnError *err);

#endif
