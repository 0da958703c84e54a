/* eval_stats.h: the statistics of perplexity.h checked against float64
 * per-token losses.
 *
 * A RefLosses accumulates the cross-entropy of every scored target computed
 * in float64 from reference logits (ref64_forward's); check_eval_statistics
 * CHECKs that an evaluation's mean loss, standard error (the sample standard
 * deviation over sqrt(scored)), perplexity exp(mean) and 95% interval
 * exp(mean -/+ 1.96 std_error) are those of the reference losses.
 */
#ifndef TN_TESTS_EVAL_STATS_H
#define TN_TESTS_EVAL_STATS_H

#include <stdint.h>

#include "infer/perplexity.h"

typedef struct RefLosses {
    double sum, sum_sq;
    long long count;
} RefLosses;

/* Adds the loss -log softmax(logits[t])[targets[t]] of each of the n rows
 * (V logits each) whose target is not -100. */
void ref_losses_add(RefLosses *acc, const double *logits, int vocab_size, const int32_t *targets, int n);

/* Two kinds of check, each printed with its worst error: r's own
 * perplexity and interval follow from its mean loss and standard error to
 * 1e-12 relative (double arithmetic on the same numbers); r's statistics
 * match the reference's within `tolerance` relative (what the float32
 * per-token losses allow). */
void check_eval_statistics(const TnEvalResult *r, const RefLosses *ref, double tolerance, const char *what);

#endif
