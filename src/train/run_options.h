/* run_options.h: the options a training run was made with, recorded with
 * each checkpoint and checked when the run resumes.
 *
 * The state file (state.h) holds what a resume must share with the run to
 * read the same batches (context, micro-batch, accumulation, the data's
 * hash); this file, training_options.json beside it, holds the rest of the
 * command that decides the run:
 *   {"model_options": "--size tiny --pe ape", "steps": 40, "warmup": 100,
 *    "lr": 0.0003, "min_lr_ratio": 0.1, "weight_decay": 0.1, "beta1": 0.9,
 *    "beta2": 0.95, "eps": 1e-08, "grad_clip": 1, "seed": "1234"}
 * model_options: the options that made the model, as given ("" where the
 * caller built the configuration itself); steps: the run's length however
 * it was given (--steps or --tokens); seed: a string, since a JSON number
 * (a double) holds integers exactly only up to 2^53. The other numbers
 * are printed to read back equal (the float AdamW settings as their
 * double values: 0.89999997615814209). Written atomically (fileio.h).
 */
#ifndef TN_TRAIN_RUN_OPTIONS_H
#define TN_TRAIN_RUN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "util/error.h"

#define TN_RUN_OPTIONS_FILE "training_options.json"

typedef struct TnRunOptions {
    char model_options[8192];
    long long steps, warmup;
    double lr, min_lr_ratio, weight_decay, beta1, beta2, eps, grad_clip;
    uint64_t seed;
} TnRunOptions;

int tn_run_options_save(const char *path, const TnRunOptions *ro, TnError *err);
/* Fails naming path and the field on a file that is not one of these. */
int tn_run_options_load(const char *path, TnRunOptions *ro, TnError *err);

/* Whether the model of `given` differs from the run's (`run`, as its
 * checkpoint's config.json reads: tn_checkpoint_load_config) in anything
 * that changes the model: the architecture, the sizes, the switches, the
 * LRPE layers, the APE table (not the initialisation's std or the token
 * ids). The first difference goes into out as config.json names it, e.g.
 * "decoder_embed_dim 64 in the run, 256 given"; "" when none. */
int tn_run_model_differs(const TnConfig *run, const TnConfig *given, char *out, size_t cap);

#endif
