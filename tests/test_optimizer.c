/* AdamW, clipping and the schedule against a float64 transcription of
 * their definitions (PyTorch's AdamW), on fresh random parameters and
 * gradients over several steps: parameters within 1e-5 relative l2, the
 * LRPE theta never decayed, the schedule's endpoints exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/transnormer.h"
#include "test.h"
#include "train/optimizer.h"
#include "util/rng.h"

static void check_adamw(uint64_t seed) {
    TnConfig cfg;
    TnError err;
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
    cfg.vocab_size = 40;
    TnParamLayout layout;
    tn_param_layout_init(&layout, &cfg);
    size_t n = layout.total;
    float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    double *rp = malloc(n * sizeof *rp), *rm = calloc(n, sizeof *rm), *rv = calloc(n, sizeof *rv);
    char *decays = malloc(n);
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    for (size_t i = 0; i < n; i++) rp[i] = p[i] = (float)tn_rng_normal(&rng);
    for (int t = 0; t < layout.n_tensors; t++)
        memset(decays + layout.tensors[t].offset, layout.tensors[t].kind != TN_PARAM_THETA,
               layout.tensors[t].numel);
    TnAdamW opt = tn_adamw_defaults();
    CHECK(opt.beta1 == 0.9f && opt.beta2 == 0.95f && opt.eps == 1e-8f && opt.weight_decay == 0.1f,
          "AdamW defaults are the issue's (0.9, 0.95, 1e-8, 0.1)");
    for (int step = 1; step <= 5; step++) {
        double lr = 1e-2 / step;
        for (size_t i = 0; i < n; i++) g[i] = (float)tn_rng_normal(&rng);
        tn_adamw_update(&opt, &layout, p, g, m, v, (float)lr, step);
        for (size_t i = 0; i < n; i++) {
            rm[i] = 0.9 * rm[i] + 0.1 * g[i];
            rv[i] = 0.95 * rv[i] + 0.05 * (double)g[i] * g[i];
            double mh = rm[i] / (1 - pow(0.9, step)), vh = rv[i] / (1 - pow(0.95, step));
            rp[i] = rp[i] * (1 - lr * 0.1 * decays[i]) - lr * mh / (sqrt(vh) + 1e-8);
        }
    }
    double e = rel_l2_f32_f64(p, rp, n);
    printf("AdamW, 5 steps on %zu parameters: rel l2 %.2e against float64\n", n, e);
    CHECK(e <= 1e-5, "AdamW parameters rel l2 %.3e > 1e-5", e);
    /* theta is a small part of the buffer: check it on its own, against
     * the reference's undecayed update */
    const TnTensorInfo *theta = tn_param_find(&layout, "model.layers.0.token_mixer.lrpe.theta");
    CHECK(theta != NULL, "tiny has an LRPE theta");
    if (theta) {
        double e_theta = rel_l2_f32_f64(p + theta->offset, rp + theta->offset, theta->numel);
        CHECK(e_theta <= 1e-5, "theta (no weight decay) rel l2 %.3e > 1e-5", e_theta);
    }
    free(p); free(g); free(m); free(v); free(rp); free(rm); free(rv); free(decays);
    tn_param_layout_free(&layout);
}

static void check_clip(uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 8);
    size_t n = 1000;
    float *g = malloc(n * sizeof *g);
    double sum = 0;
    for (size_t i = 0; i < n; i++) g[i] = (float)tn_rng_normal(&rng), sum += (double)g[i] * g[i];
    double norm = tn_grad_norm(g, n);
    CHECK(fabs(norm - sqrt(sum)) <= 1e-12 * sqrt(sum), "global norm %.15g vs %.15g", norm, sqrt(sum));
    float scale = tn_grad_clip(g, n, norm, 1.0);
    double after = tn_grad_norm(g, n);
    CHECK(fabs(after - 1.0) <= 1e-6, "clipped norm %.9f, expected 1", after);
    CHECK(fabs(scale - 1.0 / norm) <= 1e-6 / norm, "clip scale %g vs %g", scale, 1.0 / norm);
    CHECK(tn_grad_clip(g, n, after, 2.0) == 1.0f, "no clipping under the limit");
    /* the factor alone, as the GPU's sharded step takes it (train/step_device.h) */
    CHECK(tn_grad_clip_scale(norm, 1.0) == (float)(1.0 / norm), "clip factor %g, expected %g",
          tn_grad_clip_scale(norm, 1.0), 1.0 / norm);
    CHECK(tn_grad_clip_scale(norm, 0.0) == 1.0f && tn_grad_clip_scale(norm, -1.0) == 1.0f,
          "a limit <= 0 disables clipping");
    CHECK(tn_grad_clip_scale(NAN, 1.0) == 1.0f, "a norm that is not finite leaves the factor 1 (the run stops on it)");
    g[17] = NAN;
    CHECK(!isfinite(tn_grad_norm(g, n)), "a NaN gradient makes the norm non-finite");
    free(g);
}

static void check_schedule(void) {
    double lr = 3e-3;
    CHECK(tn_lr_schedule(0, 100, 10, lr, 0.1) == lr / 10, "warmup starts at lr / warmup");
    CHECK(fabs(tn_lr_schedule(9, 100, 10, lr, 0.1) - lr) <= 1e-15, "warmup reaches lr at its last step");
    CHECK(fabs(tn_lr_schedule(10, 100, 10, lr, 0.1) - lr) <= 1e-15, "cosine starts at lr");
    CHECK(fabs(tn_lr_schedule(55, 100, 10, lr, 0.1) - 0.55 * lr) <= 1e-12, "cosine midpoint is (lr + min) / 2");
    CHECK(fabs(tn_lr_schedule(100, 100, 10, lr, 0.1) - 0.1 * lr) <= 1e-15, "cosine ends at 10%% of lr");
    double prev = lr;
    int monotone = 1;
    for (int s = 10; s <= 100; s++) {
        double x = tn_lr_schedule(s, 100, 10, lr, 0.1);
        monotone &= x <= prev + 1e-18;
        prev = x;
    }
    CHECK(monotone, "the cosine decays monotonically");
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    check_adamw(seed);
    check_clip(seed);
    check_schedule();
    return TEST_DONE(argv[0]);
}
