/* Perplexity evaluation: the windows, the predictions each scores, the
 * mean loss and its statistics (standard error, perplexity, 95% interval),
 * against the float64 reference run window by window. */
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "infer/perplexity.h"
#include "kernels/cpu/crossentropy.h"
#include "eval_stats.h"
#include "ref64.h"
#include "test.h"

/* The mean loss the windowing rule of perplexity.h implies, from ref64's
 * logits; its per-token losses go to ref (fresh), whose mean it is; its
 * windows are counted in *windows. */
static double expected_loss(TnModel *m, const uint32_t *tokens, size_t n, int ctx, int stride, long long *scored,
                            long long *windows, RefLosses *ref) {
    if ((size_t)ctx > n) ctx = (int)n; /* one window of the whole stream */
    int V = m->config.vocab_size;
    double *logits = malloc((size_t)ctx * V * sizeof *logits);
    int32_t *x = malloc((size_t)ctx * sizeof *x), *y = malloc((size_t)ctx * sizeof *y);
    long long next = 1;
    *scored = *windows = 0;
    /* windows stride apart while they fit, then one that ends at the stream's end if tokens are left */
    for (size_t begin = 0, end = 0; end < n; begin = begin + stride + (size_t)ctx <= n ? begin + stride : n - ctx) {
        end = begin + (size_t)ctx;
        ++*windows;
        int count = 0;
        for (int t = 0; t < ctx; t++) {
            x[t] = (int32_t)tokens[begin + t];
            long long target = (long long)(begin + t + 1);
            y[t] = (t + 1 < ctx && target >= next) ? (int32_t)tokens[target] : -100;
            count += y[t] != -100;
        }
        next = (long long)begin + ctx;
        ref64_forward(&m->config, &m->layout, m->params, x, y, 1, ctx, logits);
        ref_losses_add(ref, logits, V, y, ctx);
        *scored += count;
    }
    free(logits); free(x); free(y);
    return ref->sum / (double)ref->count;
}

/* A tn_eval_windows scorer that forwards only the first ctx - 1 tokens of
 * each window, as the trainer's GPU validation does (perplexity.h: the
 * last position is never scored); it leaves NaN there, so that reading it
 * shows in the mean, and counts windows whose last target is not ignored. */
typedef struct ShortScorer {
    TnModel *model;
    int last_scored;
} ShortScorer;

static int score_short(void *user, const int32_t *inputs, const int32_t *targets, int batch, int ctx, float *losses,
                       TnError *err) {
    ShortScorer *s = user;
    int T = ctx - 1;
    int32_t *x = calloc((size_t)batch * T, sizeof *x), *y = calloc((size_t)batch * T, sizeof *y);
    for (int b = 0; b < batch; b++) {
        memcpy(x + b * T, inputs + b * ctx, T * sizeof *x);
        memcpy(y + b * T, targets + b * ctx, T * sizeof *y);
        s->last_scored += targets[b * ctx + T] != TN_IGNORE_INDEX;
    }
    float mean;
    int rc = tn_model_forward(s->model, x, y, batch, T, &mean, err);
    for (int b = 0; b < batch && !rc; b++) {
        memcpy(losses + b * ctx, s->model->acts.losses + b * T, T * sizeof *losses);
        losses[b * ctx + T] = NAN;
    }
    free(x);
    free(y);
    return rc;
}

/* The statistics' relative tolerance against float64: the float32 losses
 * agree with the reference's to about 1e-6 relative. */
#define EVAL_TOLERANCE 1e-5

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnConfig cfg;
    TnError err;
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
    cfg.vocab_size = 64;
    cfg.n_heads = 2;
    TnModel m;
    tn_model_init(&m, &cfg, seed);
    for (size_t i = 0; i < m.layout.total; i++) m.params[i] *= 10.0f; /* far from uniform predictions */
    size_t n = 403;
    uint32_t *tokens = malloc(n * sizeof *tokens);
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    for (size_t i = 0; i < n; i++) tokens[i] = (uint32_t)tn_rng_below(&rng, 64);

    /* the first two and the fourth leave a tail after the last window of ctx that fits, the third none, the last
     * is one window shorter than ctx */
    int cases[][3] = {{50, 50, 3}, {50, 20, 2}, {64, 1, 8}, {400, 400, 1}, {500, 100, 2}};
    for (int c = 0; c < 5; c++) {
        int ctx = cases[c][0], stride = cases[c][1], batch = cases[c][2];
        TnEvalResult r;
        int rc = tn_eval_tokens(&m, tokens, n, ctx, stride, batch, TN_DEVICE_CPU, 0, &r, &err);
        CHECK(rc == 0, "eval: %s", err.msg);
        long long want_scored, windows;
        RefLosses ref = {0};
        double want = expected_loss(&m, tokens, n, ctx, stride, &want_scored, &windows, &ref);
        /* every token after the first is scored but, when windows do not overlap, each window's first */
        long long full = ctx < (int)n ? (long long)((n - ctx) / stride) + 1 : 1;
        printf("ctx %3d stride %3d batch %d: %lld windows, %lld scored, loss %.6f (float64 %.6f), ppl %.3f [%.3f, %.3f]\n",
               ctx, stride, batch, r.n_windows, r.n_scored, r.mean_loss, want, r.perplexity, r.ppl_low, r.ppl_high);
        CHECK(r.n_windows == windows, "windows %lld, expected %lld", r.n_windows, windows);
        CHECK(r.n_scored == want_scored, "scored %lld, expected %lld", r.n_scored, want_scored);
        CHECK(r.n_scored == (long long)n - 1 - (stride == ctx ? full - 1 : 0) && r.n_targets == (long long)n - 1 &&
                  r.window == (ctx < (int)n ? ctx : (int)n),
              "scored %lld of %lld in windows of %d", r.n_scored, r.n_targets, r.window);
        CHECK(fabs(r.mean_loss - want) <= 1e-5 * want, "loss %.8f vs float64 %.8f", r.mean_loss, want);
        CHECK(r.ppl_low < r.perplexity && r.perplexity < r.ppl_high, "interval brackets the perplexity");
        char what[64];
        snprintf(what, sizeof what, "ctx %d stride %d", ctx, stride);
        check_eval_statistics(&r, &ref, EVAL_TOLERANCE, what);
        ShortScorer scorer = {&m, 0};
        TnEvalResult short_r;
        rc = tn_eval_windows(score_short, &scorer, tokens, n, ctx, stride, batch, 0, &short_r, &err);
        CHECK(rc == 0, "eval with a scorer: %s", err.msg);
        CHECK(scorer.last_scored == 0, "%d windows' last target was not ignored", scorer.last_scored);
        CHECK(short_r.n_windows == windows && short_r.n_scored == want_scored, "a scorer's windows %lld, scored %lld",
              short_r.n_windows, short_r.n_scored);
        CHECK(fabs(short_r.mean_loss - want) <= 1e-5 * want, "a scorer forwarding ctx - 1 tokens: loss %.8f vs "
              "float64 %.8f", short_r.mean_loss, want);
        snprintf(what, sizeof what, "ctx %d stride %d, a scorer", ctx, stride);
        check_eval_statistics(&short_r, &ref, EVAL_TOLERANCE, what);
    }
    TnEvalResult r;
    CHECK(tn_eval_tokens(&m, tokens, 1, 50, 50, 1, TN_DEVICE_CPU, 0, &r, &err) != 0 &&
              strstr(err.msg, "nothing to score"),
          "one token scores nothing: %s", err.msg);
    tokens[5] = 64;
    CHECK(tn_eval_tokens(&m, tokens, n, 50, 50, 1, TN_DEVICE_CPU, 0, &r, &err) != 0 && strstr(err.msg, "outside the vocabulary"),
          "an out-of-vocabulary token fails: %s", err.msg);
    free(tokens);
    tn_model_free(&m);
    return TEST_DONE(argv[0]);
}
