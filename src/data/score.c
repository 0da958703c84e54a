#include "data/score.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/crossentropy.h"

int tn_doc_scorer_init(TnDocScorer *s, TnModel *m, const TnTokenizer *tok, int ctx, int batch, TnError *err) {
    memset(s, 0, sizeof *s);
    if (ctx < 2) return tn_fail(err, "score: context %d is too short to predict anything", ctx);
    if (batch < 1) return tn_fail(err, "score: batch %d must be positive", batch);
    if (tn_tokenizer_vocab_size(tok) > m->config.vocab_size)
        return tn_fail(err, "score: the tokenizer has %d ids but the model only %d (a byte-level model needs "
                            "vocab_size >= %d)", tn_tokenizer_vocab_size(tok), m->config.vocab_size,
                       TN_BYTE_VOCAB_SIZE);
    s->model = m;
    s->tok = tok;
    s->ctx = ctx;
    s->batch = batch;
    s->inputs = tn_malloc((size_t)batch * ctx * sizeof *s->inputs);
    s->targets = tn_malloc((size_t)batch * ctx * sizeof *s->targets);
    tn_model_reserve(m, batch, ctx);
    return 0;
}

void tn_doc_scorer_free(TnDocScorer *s) {
    free(s->inputs);
    free(s->targets);
    memset(s, 0, sizeof *s);
}

int tn_score_text(TnDocScorer *s, const char *text, size_t len, double *mean_loss, long long *n_predicted,
                  TnError *err) {
    int32_t *ids;
    size_t n_ids;
    if (tn_tokenizer_encode(s->tok, text, len, &ids, &n_ids, err)) return -1;
    /* The sequence is <s> ids </s>: position p holds seq(p). Window w starts
     * at w (ctx - 1); windows go through the model `batch` at a time, the
     * shorter last one padded with </s> whose predictions are ignored (the
     * attention is causal, so padding never changes a scored position). */
    size_t n = n_ids + 2, step = (size_t)s->ctx - 1, n_windows = (n - 2) / step + 1;
    double total = 0;
    long long predicted = 0;
    int rc = 0;
    for (size_t w0 = 0; w0 < n_windows && rc == 0; w0 += (size_t)s->batch) {
        int rows = (int)(n_windows - w0 < (size_t)s->batch ? n_windows - w0 : (size_t)s->batch);
        /* One window alone need not be padded to the context length. */
        int t_len = rows == 1 && n - w0 * step < (size_t)s->ctx ? (int)(n - w0 * step) : s->ctx;
        for (int b = 0; b < rows; b++) {
            size_t start = (w0 + (size_t)b) * step;
            int32_t *x = s->inputs + (size_t)b * t_len, *y = s->targets + (size_t)b * t_len;
            for (int t = 0; t < t_len; t++) {
                size_t p = start + (size_t)t;
                x[t] = p == 0 ? TN_TOKEN_BOS : p >= n - 1 ? TN_TOKEN_EOS : ids[p - 1];
                y[t] = TN_IGNORE_INDEX;
            }
            for (int t = 0; t + 1 < t_len && start + (size_t)t + 1 < n; t++) y[t] = x[t + 1];
        }
        float mean;
        rc = tn_model_forward(s->model, s->inputs, s->targets, rows, t_len, &mean, err);
        for (int r = 0; r < rows * t_len && rc == 0; r++)
            if (s->targets[r] != TN_IGNORE_INDEX) {
                total += s->model->acts.losses[r];
                predicted++;
            }
    }
    free(ids);
    if (rc) return -1;
    *mean_loss = total / (double)predicted;
    *n_predicted = predicted;
    return 0;
}
