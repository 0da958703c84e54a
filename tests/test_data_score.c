/* Document perplexity for self-cleaning (src/data/score.h): the windowed
 * score of random texts, short and longer than the context, against the
 * float64 reference forward pass (tests/ref64.h) run on the same windows;
 * every token after <s> predicted once; a vocabulary mismatch refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/score.h"
#include "kernels/cpu/crossentropy.h"
#include "ref64.h"
#include "test.h"
#include "util/rng.h"

/* Mean NLL of <s> text </s> in windows of ctx overlapping by one, computed
 * with the float64 reference: the sum over windows of (mean CE x count). */
static double reference_score(const TnModel *m, const char *text, size_t len, int ctx) {
    size_t n = len + 2;
    int32_t *seq = tn_malloc(n * sizeof *seq), *x = tn_malloc((size_t)ctx * sizeof *x), *y = tn_malloc((size_t)ctx * sizeof *y);
    seq[0] = TN_TOKEN_BOS;
    for (size_t i = 0; i < len; i++) seq[i + 1] = (unsigned char)text[i] + 3; /* byte-level ids */
    seq[n - 1] = TN_TOKEN_EOS;
    double *logits = tn_malloc((size_t)ctx * m->config.vocab_size * sizeof *logits), total = 0;
    long long count = 0;
    for (size_t start = 0; start + 1 < n; start += (size_t)ctx - 1) {
        int t_len = (int)(n - start < (size_t)ctx ? n - start : (size_t)ctx);
        for (int t = 0; t < t_len; t++) {
            x[t] = seq[start + t];
            y[t] = t + 1 < t_len ? seq[start + t + 1] : TN_IGNORE_INDEX;
        }
        total += ref64_forward(&m->config, &m->layout, m->params, x, y, 1, t_len, logits) * (t_len - 1);
        count += t_len - 1;
    }
    free(seq), free(x), free(y), free(logits);
    return total / (double)count;
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnConfig cfg;
    TnError err;
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
    cfg.vocab_size = TN_BYTE_VOCAB_SIZE;
    cfg.dim = 32, cfg.n_heads = 2, cfg.n_layers = 2, cfg.glu_dim = 64;
    cfg.init_std = 0.2f; /* far from uniform predictions, so errors would show */
    TnModel m;
    tn_model_init(&m, &cfg, seed);
    TnTokenizer *tok = tn_tokenizer_bytes();
    TnDocScorer s;
    const int ctx = 48;
    CHECK(tn_doc_scorer_init(&s, &m, tok, ctx, 3, &err) == 0, "init: %s", err.msg);
    TnRng rng;
    tn_rng_seed(&rng, seed, 1);
    static const size_t lengths[] = {0, 1, 20, 46, 47, 93, 94, 150, 250};
    double worst = 0;
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        char text[300];
        for (size_t i = 0; i < lengths[k]; i++) text[i] = (char)(tn_rng_below(&rng, 2) ? 'a' + tn_rng_below(&rng, 26) : tn_rng_below(&rng, 256));
        double loss;
        long long predicted;
        CHECK(tn_score_text(&s, text, lengths[k], &loss, &predicted, &err) == 0, "score: %s", err.msg);
        double want = reference_score(&m, text, lengths[k], ctx);
        CHECK(fabs(loss - want) <= 1e-5 * fabs(want), "length %zu: loss %.8f, float64 reference %.8f (rel %.2e)",
              lengths[k], loss, want, fabs(loss - want) / fabs(want));
        if (fabs(loss - want) / fabs(want) > worst) worst = fabs(loss - want) / fabs(want);
        CHECK(predicted == (long long)lengths[k] + 1, "length %zu: %lld predictions", lengths[k], predicted);
    }
    printf("score: 9 texts (0 to 250 bytes, context %d, 3 windows per pass), worst relative error to float64 %.2e\n", ctx, worst);
    tn_doc_scorer_free(&s);
    tn_model_free(&m);

    cfg.vocab_size = 256; /* too small for byte ids up to 258 */
    tn_model_init(&m, &cfg, seed + 1);
    CHECK(tn_doc_scorer_init(&s, &m, tok, ctx, 1, &err) == -1 && strstr(err.msg, "vocab") != NULL,
          "vocabulary mismatch refused: %s", err.msg);
    tn_model_free(&m);
    tn_tokenizer_free(tok);
    return TEST_DONE(argv[0]);
}
