/* Perplexity of a text file: the text is tokenized on the fly (<s> first)
 * and scored like a shard; the loss of one window equals the float64
 * reference's loss on the same tokens (and its standard error, perplexity
 * and interval those of the reference's per-token losses), a text shorter
 * than the context is one shorter window, and texts that cannot be scored
 * fail with the reason. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "infer/perplexity.h"
#include "eval_stats.h"
#include "models.h"
#include "ref64.h"
#include "test.h"
#include "util/rng.h"

int main(int argc, char **argv) {
    (void)argc;
    TnError err;
    TnModel m;
    if (golden_model(&m)) return TEST_DONE(argv[0]);
    enum { LEN = 60 };
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 0);
    char text[LEN];
    for (int i = 0; i < LEN; i++) text[i] = (char)(' ' + tn_rng_below(&rng, 95)); /* printable ASCII */
    TnTokenizer *tok = tn_tokenizer_bytes();
    TnEvalResult r;
    CHECK(tn_eval_text(&m, tok, text, LEN, LEN + 1, LEN + 1, 1, TN_DEVICE_CPU, 0, &r, &err) == 0, "eval: %s", err.msg);

    int32_t tokens[LEN + 1], targets[LEN + 1];
    tokens[0] = TN_TOKEN_BOS;
    for (int i = 0; i < LEN; i++) tokens[i + 1] = (unsigned char)text[i] + 3;
    for (int i = 0; i < LEN; i++) targets[i] = tokens[i + 1];
    targets[LEN] = -100;
    double *logits = malloc((size_t)(LEN + 1) * m.config.vocab_size * sizeof *logits);
    double want = ref64_forward(&m.config, &m.layout, m.params, tokens, targets, 1, LEN + 1, logits);
    printf("text of %d bytes: loss %.6f vs float64 reference %.6f (%lld scored), perplexity %.3f [%.3f, %.3f]\n", LEN,
           r.mean_loss, want, r.n_scored, r.perplexity, r.ppl_low, r.ppl_high);
    CHECK(r.n_scored == LEN, "scored %lld tokens, want %d", r.n_scored, LEN);
    CHECK(fabs(r.mean_loss - want) <= 1e-5 * fabs(want), "loss %.8f vs reference %.8f", r.mean_loss, want);
    CHECK(r.ppl_low < r.perplexity && r.perplexity < r.ppl_high, "the interval surrounds the perplexity");
    RefLosses ref = {0};
    ref_losses_add(&ref, logits, m.config.vocab_size, targets, LEN + 1);
    check_eval_statistics(&r, &ref, 1e-5, "one window of text"); /* float32 losses: about 1e-6 relative */

    /* a text shorter than the context is one window of its length: <s> and 10 bytes, 10 predictions */
    CHECK(tn_eval_text(&m, tok, text, 10, 32, 32, 1, TN_DEVICE_CPU, 0, &r, &err) == 0 && r.n_windows == 1 &&
              r.window == 11 && r.n_scored == 10 && r.n_targets == 10,
          "short text (%s): %lld windows of %d, %lld of %lld scored", err.msg, r.n_windows, r.window, r.n_scored,
          r.n_targets);
    CHECK(tn_eval_text(&m, tok, text, 0, 32, 32, 1, TN_DEVICE_CPU, 0, &r, &err) == -1 &&
              strstr(err.msg, "nothing to score"),
          "an empty text: %s", err.msg);
    CHECK(tn_eval_text(&m, tok, "\xfe\xff", 2, 2, 2, 1, TN_DEVICE_CPU, 0, &r, &err) == -1 && strstr(err.msg, "vocabulary"),
          "bytes beyond a 256-token model: %s", err.msg);
    free(logits);
    tn_model_free(&m);
    return TEST_DONE(argv[0]);
}
