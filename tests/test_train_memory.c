/* The training-memory estimate of trainer.h (what `tnllm info` prints and
 * Table 13 is computed from): on random shapes of both architectures and
 * several switches it equals the bytes a model allocates for a training run
 * (the arenas reserved as tn_train_run reserves them, plus 16 bytes per
 * parameter); the longest context for a budget is the last that fits; the
 * estimate grows with the context. A real run of the trainer checks the
 * same equality on every start (TN_ASSERT in trainer.c, test_train). */
#include <omp.h>

#include "test.h"
#include "train/trainer.h"
#include "util/rng.h"

static void check_shape(TnRng *rng, const char *switches) {
    int heads = 1 + (int)tn_rng_below(rng, 3), head_dim = 8 * (1 + (int)tn_rng_below(rng, 3));
    int layers = 1 + (int)tn_rng_below(rng, 3), batch = 1 + (int)tn_rng_below(rng, 3);
    int seq_len = 1 + (int)tn_rng_below(rng, 300), threads = omp_get_max_threads();
    TnConfig cfg = test_config(50 + (int)tn_rng_below(rng, 200), heads * head_dim, layers, heads,
                               16 * (1 + (int)tn_rng_below(rng, 4)), (unsigned)tn_rng_below(rng, 1u << layers));
    TnModel m;
    switched_model_init(&m, &cfg, switches, tn_rng_next(rng));
    tn_model_reserve(&m, batch, seq_len + 1); /* as tn_train_run: validation windows of T + 1 */
    tn_model_reserve_backward(&m);
    size_t allocated = (m.acts.n_floats + m.grad_acts.n_floats + 4 * m.layout.total) * sizeof(float);
    size_t estimate = tn_train_memory_bytes(&m.config, batch, seq_len, threads);
    CHECK(estimate == allocated, "'%s' D=%d L=%d H=%d B=%d T=%d: estimate %zu bytes, allocated %zu", switches, cfg.dim, layers, heads, batch, seq_len, estimate, allocated);
    CHECK(tn_train_memory_bytes(&m.config, batch, seq_len + 64, threads) > estimate,
          "%s: the estimate does not grow with the context", switches);

    /* A budget between the memory of two contexts picks the shorter. */
    int longest = 1 + (int)tn_rng_below(rng, 5000);
    size_t at = tn_train_memory_bytes(&m.config, batch, longest, threads);
    size_t next = tn_train_memory_bytes(&m.config, batch, longest + 1, threads);
    double budget = at + tn_rng_uniform(rng) * (double)(next - at - 1);
    int found = tn_train_longest_context(&m.config, batch, budget, threads);
    CHECK(found == longest, "%s: budget %.0f bytes: longest context %d, expected %d", switches, budget, found, longest);
    double too_small = (double)tn_train_memory_bytes(&m.config, batch, 1, threads) - 1;
    CHECK(tn_train_longest_context(&m.config, batch, too_small, threads) == 0,
          "%s: a budget below one token's memory still found a context", switches);
    tn_model_free(&m);
}

int main(int argc, char **argv) {
    (void)argc;
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 0);
    const char *switches[] = {"", "gate=off", "pe=lrpe", "pe=ape max-positions=4096", "norm=layernorm",
                              "arch=transformer"};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof switches / sizeof switches[0]; i++) check_shape(&rng, switches[i]);
    return TEST_DONE(argv[0]);
}
