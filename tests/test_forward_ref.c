/* The float32 CPU forward pass against the float64 reference (ref64.c) on
 * fresh random configurations: H not a power of two, LRPE on several
 * layers, L = 1, sequence lengths that are not a multiple of the attention
 * block, the embedding scaled and not, and every value of every switch of
 * SPEC section 3 (norm gains and biases randomised). Tolerance: 1e-5
 * relative l2 on logits and loss. */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "model/transnormer.h"
#include "ref64.h"
#include "test.h"

typedef struct Case {
    int V, D, L, H, G, B, T, no_scale, lrpe_mask, block;
    const char *switches; /* SPEC section 3, see apply_switches */
} Case;

static void run_case(const Case *c, uint64_t seed) {
    TnConfig cfg = test_config(c->V, c->D, c->L, c->H, c->G, c->lrpe_mask);
    cfg.no_scale_embedding = c->no_scale;
    TnError err;
    TnModel m;
    switched_model_init(&m, &cfg, c->switches, seed);
    /* Larger weights than init_std so that every term matters and the
     * logits are far from uniform. */
    TnRng rng;
    tn_rng_seed(&rng, seed, 99);
    for (size_t i = 0; i < m.layout.total; i++) m.params[i] *= (float)(5.0 + tn_rng_uniform(&rng));
    randomize_norm_params(m.params, &m.layout, seed);
    int N = c->B * c->T;
    int32_t *tok = malloc((size_t)N * sizeof *tok), *tgt = malloc((size_t)N * sizeof *tgt);
    for (int i = 0; i < N; i++) {
        tok[i] = (int32_t)tn_rng_below(&rng, (uint64_t)c->V);
        tgt[i] = (i % 7 == 3) ? -100 : (int32_t)tn_rng_below(&rng, (uint64_t)c->V);
    }
    double *ref = malloc((size_t)N * c->V * sizeof *ref);
    double ref_loss = ref64_forward(&cfg, &m.layout, m.params, tok, tgt, c->B, c->T, ref);
    tn_model_set_attention(&m, TN_ATTN_CHUNKED, c->block);
    tn_model_reserve(&m, c->B, c->T);
    float loss;
    int rc = tn_model_forward(&m, tok, tgt, c->B, c->T, &loss, &err);
    CHECK(rc == 0, "forward: %s", err.msg);
    double e = rel_l2_f32_f64(m.acts.logits, ref, (size_t)N * c->V), el = fabs(loss - ref_loss) / fabs(ref_loss);
    printf("V=%d D=%d L=%d H=%d G=%d B=%d T=%d block=%d lrpe=%#x scale=%s %s: logits %.2e loss %.2e\n", c->V, c->D,
           c->L, c->H, c->G, c->B, c->T, c->block, c->lrpe_mask, c->no_scale ? "no" : "yes",
           c->switches ? c->switches : "", e, el);
    CHECK(e <= 1e-5, "logits rel l2 %.3e > 1e-5", e);
    CHECK(el <= 1e-5, "loss rel err %.3e > 1e-5 (%f vs %f)", el, loss, ref_loss);
    free(tok); free(tgt); free(ref);
    tn_model_free(&m);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    const Case cases[] = {
        {97, 48, 3, 6, 80, 2, 37, 0, 0x5, 16, NULL},   /* H = 6: ALiBi rule for non-powers of two */
        {61, 40, 1, 5, 64, 1, 50, 1, 0x1, 8, NULL},    /* L = 1, H = 5, unscaled embedding */
        {128, 64, 4, 4, 96, 3, 33, 0, 0xf, 32, NULL},  /* LRPE on every layer */
        {50, 36, 2, 3, 72, 2, 70, 1, 0x2, 64, NULL},   /* H = 3, LRPE on the last layer only */
        {80, 56, 2, 7, 100, 1, 129, 0, 0x0, 64, NULL}, /* no LRPE, T > 2 blocks */
        /* SPEC section 3: every value of every switch at least once */
        {70, 48, 3, 6, 80, 2, 37, 0, 0x5, 16, "pe=lrpe norm=rmsnorm"},
        {60, 40, 3, 5, 64, 1, 50, 1, 0x0, 8, "pe=exp-decay decay=paper gla-act=1+elu"},
        {50, 36, 2, 3, 72, 2, 30, 0, 0x0, 16, "pe=ape max-positions=40 gate=off glu-act=silu"},
        {64, 32, 2, 4, 48, 2, 33, 0, 0x1, 32, "decay=none norm=layernorm gla-act=none"},
        {64, 32, 3, 4, 48, 1, 40, 0, 0x0, 16, "decay=paper decay-temperature=off lrpe-layers=all"},
        {64, 40, 2, 5, 48, 2, 21, 0, 0x1, 8, "decay-temperature=off gate=off norm=layernorm glu-act=silu"},
        /* the softmax Transformer baseline (its own reference in ref64.c) */
        {70, 48, 3, 6, 80, 2, 37, 1, 0x0, 16, "arch=transformer"},
        {61, 40, 1, 5, 64, 1, 50, 1, 0x0, 8, "arch=transformer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], seed + i);
    return TEST_DONE(argv[0]);
}
