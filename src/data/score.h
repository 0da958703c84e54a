/* score.h: perplexity of one document under a model (self-cleaning, §4.1).
 *
 * The paper's self-cleaning trains an evaluation model on the corpus and
 * drops documents by their perplexity under it. A document is scored as the
 * model sees it in training: <s>, the tokens of its text, </s> (SPEC section
 * 4: every document ends with </s>). A sequence longer than the context is
 * cut into windows of ctx tokens that overlap by one token, each an
 * independent sequence from position 0, so every token after <s> is
 * predicted exactly once; the score is the mean negative log-likelihood in
 * nats per predicted token (perplexity = exp of it).
 */
#ifndef TN_DATA_SCORE_H
#define TN_DATA_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "model/transnormer.h"
#include "tokenizer/tokenizer.h"

typedef struct TnDocScorer {
    TnModel *model;          /* borrowed */
    const TnTokenizer *tok;  /* borrowed */
    int ctx, batch;            /* window length, windows per forward pass */
    int32_t *inputs, *targets; /* (batch, ctx) */
} TnDocScorer;

/* Fails if the tokenizer's ids do not fit the model's vocabulary. Reserves
 * the model's activations for batch windows of ctx tokens. */
int tn_doc_scorer_init(TnDocScorer *s, TnModel *m, const TnTokenizer *tok, int ctx, int batch, TnError *err);
void tn_doc_scorer_free(TnDocScorer *s);

/* Scores len bytes of text: *mean_loss in nats per predicted token and
 * *n_predicted (the token count + 1). */
int tn_score_text(TnDocScorer *s, const char *text, size_t len, double *mean_loss, long long *n_predicted,
                  TnError *err);

#endif
