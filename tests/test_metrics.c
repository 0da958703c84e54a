/* test_metrics: metrics.jsonl (train/metrics.h) with non-finite numbers.
 *
 * A run whose validation loss, training loss or gradient norm is NaN or
 * infinite still writes JSON: the steps are logged with random finite
 * numbers and, at steps of their own, NaN and infinite ones; reopening
 * the file for a resume (which parses every line) keeps the lines up to
 * its step and drops the rest, reading gives the finite numbers back to
 * the printed precision and NaN for the non-finite ones, and the plot
 * (gnuplot) draws it; `tnllm plot` takes the run directory or its metrics
 * file, and says of a path without metrics that it is not a run.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "util/fileio.h"
#include "util/rng.h"

enum { STEPS = 6, KEEP = 5 };

typedef struct Read {
    double loss[STEPS + 1], val_loss[STEPS + 1];
    int lines;
} Read;

static void keep(long long step, double loss, double val_loss, void *user) {
    Read *r = user;
    r->lines++;
    if (step < 1 || step > STEPS) return;
    if (!isnan(loss)) r->loss[step] = loss;
    if (!isnan(val_loss)) r->val_loss[step] = val_loss;
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnRng rng;
    tn_rng_seed(&rng, seed, 0);
    char dir[4096], path[4200], svg[4200];
    make_temp_dir(dir, sizeof dir, "metrics");
    snprintf(path, sizeof path, "%s/%s", dir, TN_METRICS_FILE);
    /* step 2's validation loss NaN, step 3's training loss and gradient norm infinite, step 4's validation -inf */
    double loss[STEPS + 1], val_loss[STEPS + 1];
    TnMetrics mt;
    TnError err;
    CHECK(tn_metrics_open(&mt, dir, -1, &err) == 0, "open: %s", err.msg);
    for (int s = 1; s <= STEPS; s++) {
        loss[s] = s == 3 ? INFINITY : 2 + tn_rng_uniform(&rng);
        val_loss[s] = s == 2 ? NAN : s == 4 ? -INFINITY : 2 + tn_rng_uniform(&rng);
        double grad_norm = s == 3 ? INFINITY : tn_rng_uniform(&rng);
        CHECK(tn_metrics_log_step(&mt, s, loss[s], 1e-3, grad_norm, 1000 * s, NAN, 0.5 * s, &err) == 0 &&
                  tn_metrics_log_eval(&mt, s, val_loss[s], &err) == 0,
              "logging step %d: %s", s, err.msg);
    }
    tn_metrics_close(&mt);

    /* a resume from step KEEP: every line parses, the later ones go */
    CHECK(tn_metrics_open(&mt, dir, KEEP, &err) == 0, "reopening for a resume at step %d: %s", KEEP, err.msg);
    tn_metrics_close(&mt);
    Read r = {{0}, {0}, 0};
    CHECK(tn_metrics_read(path, keep, &r, &err) == 0, "reading: %s", err.msg);
    CHECK(r.lines == 2 * KEEP, "%d lines after the resume, expected %d", r.lines, 2 * KEEP);
    int same = 1;
    for (int s = 1; s <= KEEP; s++) {
        same &= isfinite(loss[s]) ? fabs(r.loss[s] - loss[s]) <= 1e-6 : r.loss[s] == 0;
        same &= isfinite(val_loss[s]) ? fabs(r.val_loss[s] - val_loss[s]) <= 1e-6 : r.val_loss[s] == 0;
    }
    CHECK(same, "the kept lines read back the finite losses (to 1e-6) and NaN for the others");

    CHECK(tn_plot_run(dir, svg, sizeof svg, &err) == 0, "plot: %s", err.msg);
    CHECK(tn_file_exists(svg), "no plot at %s", svg);

    static char out[8192];
    remove(svg);
    CHECK(run_commandf(out, sizeof out, "%s plot %s", tnllm_binary(), path) == 0 && tn_file_exists(svg),
          "tnllm plot of the metrics file draws %s: %s", svg, out);
    CHECK(run_commandf(out, sizeof out, "%s plot --help", tnllm_binary()) == 0 &&
              strstr(out, "tnllm plot RUN_DIR/metrics.jsonl"), "plot --help names the metrics file: %s", out);
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CHECK(mkdir(empty, 0700) == 0, "mkdir %s", empty);
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "/nonexistent" : "/empty";
        CHECK(run_commandf(out, sizeof out, "%s plot %s%s", tnllm_binary(), dir, name) == 1 && strstr(out, name) &&
                  strstr(out, ": not a run directory (no metrics.jsonl)"), "tnllm plot %s: %s", name, out);
    }
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
