/* train_runs.c: see train_runs.h. */
#include "train_runs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test.h"
#include "train/metrics.h"
#include "util/rng.h"

void write_word_corpus(const char *path, uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 0);
    FILE *f = fopen(path, "w");
    if (!f) tn_die("%s: cannot create", path);
    for (int word = 0; word < 6000; word++) {
        int length = 2 + (int)tn_rng_below(&rng, 6);
        for (int i = 0; i < length; i++) fputc("etaoinshrdlu"[tn_rng_below(&rng, 12)], f);
        fputc(word % 11 == 10 ? '\n' : ' ', f);
    }
    fclose(f);
}

int train_run(const char *dir, int ranks, const char *name, const char *options, char *output, size_t cap) {
    char cmd[16384], launcher[256] = "";
    if (ranks > 0) snprintf(launcher, sizeof launcher, MPIRUN " -np %d ", ranks);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s%s train %s -o %s/%s", launcher, tnllm_binary(), options, dir,
             name);
    int rc = run_command(cmd, output, cap);
    if (rc != 0) fprintf(stderr, "%s\nexited with %d:\n%s\n", cmd, rc, output);
    return rc;
}

/* read_step_losses' place for each step's loss. */
typedef struct StepLosses {
    double *losses;
    int steps;
} StepLosses;

static void keep_step_loss(long long step, double loss, double val_loss, void *user) {
    (void)val_loss;
    StepLosses *s = user;
    if (!isnan(loss) && step >= 1 && step <= s->steps) s->losses[step] = loss;
}

void read_step_losses(const char *dir, const char *name, double *losses, int steps) {
    char path[4200];
    for (int i = 0; i <= steps; i++) losses[i] = NAN;
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, name);
    StepLosses s = {losses, steps};
    TnError err;
    /* an unreadable file leaves the steps NaN, which compare_with_reference counts as failed */
    tn_metrics_read(path, keep_step_loss, &s, &err);
}

double weight_difference(const TnModel *reference, const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/model", dir, name);
    TnModel model;
    TnError err;
    if (tn_model_load(&model, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return INFINITY;
    }
    double difference = 0, largest = 0;
    if (model.layout.total != reference->layout.total) difference = INFINITY;
    else
        for (size_t i = 0; i < model.layout.total; i++) {
            difference = fmax(difference, fabs((double)model.params[i] - reference->params[i]));
            largest = fmax(largest, fabs((double)reference->params[i]));
        }
    tn_model_free(&model);
    return difference / largest;
}

void compare_with_reference(const TnModel *reference, const double *reference_losses, int steps, const char *dir,
                            const char *name, double loss_tolerance, double weight_tolerance) {
    double *losses = tn_malloc((size_t)(steps + 1) * sizeof *losses), worst = 0;
    read_step_losses(dir, name, losses, steps);
    /* fmax ignores a NaN: a missing step counts as infinitely far */
    for (int s = 1; s <= steps; s++)
        worst = fmax(worst, isnan(losses[s]) ? INFINITY : fabs(losses[s] - reference_losses[s]) / reference_losses[s]);
    CHECK(worst <= loss_tolerance, "%s: losses differ from one process by %.3g (relative)", name, worst);
    double weights = weight_difference(reference, dir, name);
    CHECK(weights <= weight_tolerance, "%s: weights differ from one process by %.3g", name, weights);
    printf("%-22s loss difference %.2e, weight difference %.2e\n", name, worst, weights);
    free(losses);
}
