#include "infer/perplexity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/prompt.h"
#include "infer/session_device.h"
#include "kernels/cpu/crossentropy.h"
#include "model/blocks.h"
#include "util/progress.h"

/* Refuses windows that score nothing. */
static int check_windows(size_t n, int ctx, int stride, int batch, TnError *err) {
    if (tn_check_batch_size(batch, ctx, err)) return -1;
    if (ctx < 2) return tn_fail(err, "context %d is too short to score anything", ctx);
    if (stride < 1 || stride > ctx) return tn_fail(err, "stride %d must be in [1, ctx = %d]", stride, ctx);
    if (n < 2) return tn_fail(err, "%zu token%s: nothing to score (a prediction needs 2)", n, n == 1 ? "" : "s");
    return 0;
}

/* The window length: ctx, or a shorter stream's whole length. */
static int window_length(size_t n, int ctx) { return n < (size_t)ctx ? (int)n : ctx; }

/* tn_eval_tokens' scorer: the model on the CPU, or an inference session. */
typedef struct Scorer {
    TnModel *model;
    TnSessionDevice *session; /* NULL: the CPU */
} Scorer;

static int score_windows(void *user, const int32_t *inputs, const int32_t *targets, int batch, int ctx, float *losses,
                         TnError *err) {
    Scorer *s = user;
    if (s->session) return tn_session_device_score(s->session, inputs, targets, batch, ctx, losses, err);
    float mean;
    if (tn_model_forward(s->model, inputs, targets, batch, ctx, &mean, err)) return -1;
    memcpy(losses, s->model->acts.losses, (size_t)batch * ctx * sizeof *losses);
    return 0;
}

int tn_eval_tokens(TnModel *m, const uint32_t *tokens, size_t n, int ctx, int stride, int batch, TnDevice device,
                   int progress, TnEvalResult *out, TnError *err) {
    Scorer scorer = {m, NULL};
    memset(out, 0, sizeof *out);
    if (check_windows(n, ctx, stride, batch, err)) return -1;
    int window = window_length(n, ctx);
    if (device == TN_DEVICE_CPU) {
        tn_model_reserve(m, batch, window);
    } else {
        int step = window < TN_EVAL_DEVICE_STEP ? window : TN_EVAL_DEVICE_STEP;
        if (tn_session_device_open(&scorer.session, device, m, batch, batch * step, err)) return -1;
    }
    int rc = tn_eval_windows(score_windows, &scorer, tokens, n, ctx, stride, batch, progress, out, err);
    tn_session_device_close(scorer.session);
    return rc;
}

int tn_eval_windows(TnWindowScorer score, void *user, const uint32_t *tokens, size_t n, int ctx, int stride,
                    int batch, int progress, TnEvalResult *out, TnError *err) {
    memset(out, 0, sizeof *out);
    if (check_windows(n, ctx, stride, batch, err)) return -1;
    ctx = window_length(n, ctx);
    stride = stride < ctx ? stride : ctx;
    /* the windows that fit, then one ending at the stream's end if they leave a tail */
    size_t fitting = (n - (size_t)ctx) / (size_t)stride + 1, tail = (fitting - 1) * stride + (size_t)ctx < n;
    long long n_windows = (long long)(fitting + tail);
    float *losses = tn_malloc((size_t)batch * ctx * sizeof *losses);
    int32_t *x = tn_malloc((size_t)batch * ctx * sizeof *x), *y = tn_malloc((size_t)batch * ctx * sizeof *y);
    double sum = 0, sum_sq = 0;
    long long scored = 0, next_target = 1; /* first absolute target index not yet scored */
    TnProgress bar;
    if (progress) tn_progress_start(&bar, "eval", "tok", (double)n_windows * ctx);
    double t0 = tn_now();
    int rc = 0;
    for (long long w0 = 0; w0 < n_windows && !rc; w0 += batch) {
        int nb = (int)(n_windows - w0 < batch ? n_windows - w0 : batch);
        for (int b = 0; b < nb; b++) {
            size_t w = (size_t)(w0 + b), row = (size_t)b * (size_t)ctx;
            size_t begin = w < fitting ? w * (size_t)stride : n - (size_t)ctx;
            for (int t = 0; t < ctx; t++) {
                x[row + t] = (int32_t)tokens[begin + t];
                long long target = (long long)begin + t + 1;
                int fresh = t + 1 < ctx && target >= next_target;
                y[row + t] = fresh ? (int32_t)tokens[target] : TN_IGNORE_INDEX;
            }
            next_target = (long long)begin + ctx;
        }
        rc = score(user, x, y, nb, ctx, losses, err);
        for (size_t r = 0; r < (size_t)nb * (size_t)ctx && !rc; r++) {
            if (y[r] == TN_IGNORE_INDEX) continue;
            double l = losses[r];
            sum += l;
            sum_sq += l * l;
            scored++;
        }
        if (progress && scored) {
            char extra[64];
            snprintf(extra, sizeof extra, "loss %.4f ppl %.3f", sum / scored, exp(sum / scored));
            tn_progress_update(&bar, (double)(w0 + nb) * ctx, extra);
        }
    }
    free(x);
    free(y);
    free(losses);
    if (rc) return -1;
    out->n_windows = n_windows;
    out->window = ctx;
    out->n_scored = scored;
    out->n_targets = (long long)n - 1;
    out->mean_loss = sum / scored;
    double var = scored > 1 ? (sum_sq - sum * sum / scored) / (scored - 1) : 0;
    out->std_error = sqrt((var > 0 ? var : 0) / scored);
    out->perplexity = exp(out->mean_loss);
    out->ppl_low = exp(out->mean_loss - 1.96 * out->std_error);
    out->ppl_high = exp(out->mean_loss + 1.96 * out->std_error);
    out->seconds = tn_now() - t0;
    if (progress) {
        char extra[64];
        snprintf(extra, sizeof extra, "loss %.4f ppl %.3f", out->mean_loss, out->perplexity);
        tn_progress_finish(&bar, (double)n_windows * ctx, extra);
    }
    return 0;
}

int tn_eval_text(TnModel *m, const TnTokenizer *tok, const char *text, size_t len, int ctx, int stride, int batch,
                 TnDevice device, int progress, TnEvalResult *out, TnError *err) {
    int32_t *ids;
    size_t n;
    if (tn_prompt_tokens(tok, text, len, 1, m->config.vocab_size, &ids, &n, err)) return -1;
    /* Token ids are checked non-negative above, so they convert to the shard type as they are. */
    uint32_t *tokens = tn_malloc(n * sizeof *tokens);
    for (size_t i = 0; i < n; i++) tokens[i] = (uint32_t)ids[i];
    free(ids);
    int rc = tn_eval_tokens(m, tokens, n, ctx, stride, batch, device, progress, out, err);
    free(tokens);
    return rc;
}
