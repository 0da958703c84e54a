#include "eval_stats.h"

#include <math.h>

#include "ref64.h"
#include "test.h"

void ref_losses_add(RefLosses *acc, const double *logits, int vocab_size, const int32_t *targets, int n) {
    for (int t = 0; t < n; t++) {
        if (targets[t] == -100) continue;
        double loss = ref64_token_loss(logits + (long)t * vocab_size, vocab_size, targets[t]);
        acc->sum += loss;
        acc->sum_sq += loss * loss;
        acc->count++;
    }
}

static double relative(double value, double want) { return fabs(value - want) / fabs(want); }

void check_eval_statistics(const TnEvalResult *r, const RefLosses *ref, double tolerance, const char *what) {
    double self = fmax(relative(r->perplexity, exp(r->mean_loss)),
                       fmax(relative(r->ppl_low, exp(r->mean_loss - 1.96 * r->std_error)),
                            relative(r->ppl_high, exp(r->mean_loss + 1.96 * r->std_error))));
    CHECK(self <= 1e-12, "%s: perplexity %.9g or interval [%.9g, %.9g] do not follow from mean loss %.9g and std error "
          "%.9g (%.3e)", what, r->perplexity, r->ppl_low, r->ppl_high, r->mean_loss, r->std_error, self);
    long long n = ref->count;
    double mean = ref->sum / n;
    double var = (ref->sum_sq - ref->sum * mean) / (n - 1);
    double std_error = sqrt(var / n);
    double errors[] = {relative(r->mean_loss, mean), relative(r->std_error, std_error),
                       relative(r->perplexity, exp(mean)), relative(r->ppl_low, exp(mean - 1.96 * std_error)),
                       relative(r->ppl_high, exp(mean + 1.96 * std_error))};
    double worst = 0;
    for (int i = 0; i < 5; i++) worst = fmax(worst, errors[i]);
    printf("%s: float64 loss %.6f +- %.6f, ppl %.4f [%.4f, %.4f]; worst relative error %.2e, self-consistency %.2e\n",
           what, mean, std_error, exp(mean), exp(mean - 1.96 * std_error), exp(mean + 1.96 * std_error), worst, self);
    CHECK(r->n_scored == n, "%s: %lld scored, the reference %lld", what, r->n_scored, n);
    CHECK(worst <= tolerance, "%s: mean loss %.3e, std error %.3e, perplexity %.3e, interval %.3e %.3e relative off the "
          "float64 reference (tolerance %.1e)", what, errors[0], errors[1], errors[2], errors[3], errors[4], tolerance);
}
