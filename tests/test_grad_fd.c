/* The backward pass against float64 central finite differences of the
 * independent float64 reference (ref64_forward), on fresh random small
 * configurations: H not a power of two, LRPE on several layers, L = 1, an
 * untied lm_head, T not a multiple of the attention block, ignored targets
 * (input ids avoid the padding id 0, whose lookup gets no gradient), and
 * every value of every switch of SPEC section 3 (norm gains and biases,
 * the APE table and LRPE angles randomised).
 * For each tensor a random sample of elements is perturbed; the sampled
 * analytic gradients must match the differences within 1e-4 relative l2
 * (relative to at least the tensor's mean square gradient; float32 backward
 * ~1e-6; the differences are Richardson-extrapolated
 * central differences with exact float32 steps 2^-13 and 2^-14, truncation
 * O(h^4)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/transnormer.h"
#include "ref64.h"
#include "test.h"
#include "util/rng.h"

#define SAMPLES_PER_TENSOR 5

typedef struct Case {
    int vocab, dim, layers, heads, glu, seq_len, batch, block, tied, no_scale;
    unsigned char lrpe[4];
    const char *switches; /* SPEC section 3, see apply_switches */
} Case;

/* Central difference of the float64 reference's loss in parameter `at`
 * with step h: the parameters are multiples of 2^-20 (see run_case), so
 * p +- h for h = 2^-13 or 2^-14 is exact in float32. */
static double central_difference(TnModel *m, const TnConfig *cfg, size_t at, double h, const int32_t *tokens,
                                 const int32_t *targets, int B, int T, double *logits) {
    float saved = m->params[at];
    m->params[at] = (float)(saved + h);
    double up = ref64_forward(cfg, &m->layout, m->params, tokens, targets, B, T, logits);
    m->params[at] = (float)(saved - h);
    double down = ref64_forward(cfg, &m->layout, m->params, tokens, targets, B, T, logits);
    m->params[at] = saved;
    return (up - down) / (2 * h);
}

/* Richardson extrapolation of two central differences, (4 D(h/2) - D(h)) / 3:
 * truncation O(h^4) instead of O(h^2), which the strong decays of Eq. 2
 * need (their curvature makes a plain h = 1e-4 difference wrong by 1e-4). */
static double richardson_difference(TnModel *m, const TnConfig *cfg, size_t at, const int32_t *tokens,
                                    const int32_t *targets, int B, int T, double *logits) {
    double h = ldexp(1.0, -13);
    double coarse = central_difference(m, cfg, at, h, tokens, targets, B, T, logits);
    double fine = central_difference(m, cfg, at, h / 2, tokens, targets, B, T, logits);
    return (4 * fine - coarse) / 3;
}

static void run_case(const Case *c, uint64_t seed) {
    TnConfig cfg = test_config(c->vocab, c->dim, c->layers, c->heads, c->glu, 0);
    cfg.tie_word_embeddings = c->tied;
    cfg.no_scale_embedding = c->no_scale;
    cfg.init_std = 0.3f; /* large enough that every nonlinearity matters */
    memcpy(cfg.use_lrpe, c->lrpe, sizeof c->lrpe);
    TnError err;
    TnModel m;
    switched_model_init(&m, &cfg, c->switches, seed);
    TnRng rng;
    tn_rng_seed(&rng, seed, 99);
    /* LRPE angles of a trained model are not the init's: randomise them. */
    for (int i = 0; i < m.layout.n_tensors; i++)
        if (m.layout.tensors[i].kind == TN_PARAM_THETA)
            for (size_t j = 0; j < m.layout.tensors[i].numel; j++)
                m.params[m.layout.tensors[i].offset + j] = (float)tn_rng_uniform(&rng);
    randomize_norm_params(m.params, &m.layout, seed);
    /* multiples of 2^-20 (all below 8 in magnitude): finite-difference steps
     * of 2^-13 and 2^-14 are then exact in float32 */
    for (size_t i = 0; i < m.layout.total; i++) m.params[i] = (float)(nearbyint(ldexp(m.params[i], 20)) * ldexp(1.0, -20));
    int B = c->batch, T = c->seq_len, N = B * T, scored = 0;
    int32_t *tokens = malloc(N * sizeof *tokens), *targets = malloc(N * sizeof *targets);
    for (int r = 0; r < N; r++) {
        /* not the padding id 0: its lookup gets no gradient (nn.Embedding
         * padding_idx), which the reference does not model */
        tokens[r] = 1 + (int32_t)tn_rng_below(&rng, c->vocab - 1);
        targets[r] = tn_rng_uniform(&rng) < 0.2 ? -100 : (int32_t)tn_rng_below(&rng, c->vocab);
        scored += targets[r] != -100;
    }
    tn_model_set_attention(&m, TN_ATTN_CHUNKED, c->block);
    tn_model_reserve(&m, B, T);
    tn_model_reserve_backward(&m);
    float loss;
    CHECK(tn_model_forward(&m, tokens, targets, B, T, &loss, &err) == 0, "forward: %s", err.msg);
    float *grads = calloc(m.layout.total, sizeof *grads);
    tn_model_backward(&m, tokens, targets, B, T, 1.0f / scored, grads);

    double *logits = malloc((size_t)N * c->vocab * sizeof *logits), worst = 0;
    for (int i = 0; i < m.layout.n_tensors; i++) {
        const TnTensorInfo *t = &m.layout.tensors[i];
        double num = 0, den = 0;
        for (int k = 0; k < SAMPLES_PER_TENSOR; k++) {
            size_t at = t->offset + tn_rng_below(&rng, t->numel);
            double fd = richardson_difference(&m, &cfg, at, tokens, targets, B, T, logits);
            if (getenv("TN_FD_VERBOSE")) printf("%s[%zu] %g %g\n", t->name, at - t->offset, grads[at], fd);
            num += (grads[at] - fd) * (grads[at] - fd);
            den += fd * fd;
        }
        /* Relative to the larger of the sampled differences and the tensor's
         * own gradient scale: float32 rounding is relative to the latter, and
         * a sample of 5 may catch only elements far below it. */
        double scale = 0;
        for (size_t j = 0; j < t->numel; j++) scale += (double)grads[t->offset + j] * grads[t->offset + j];
        scale *= (double)SAMPLES_PER_TENSOR / t->numel;
        double e = sqrt(num / (den > scale ? den : scale > 0 ? scale : 1e-300));
        CHECK(e <= 1e-4, "L=%d H=%d T=%d block %d %s: %s finite-difference rel l2 %.3e > 1e-4", c->layers, c->heads,
              T, c->block, c->switches ? c->switches : "", t->name, e);
        worst = e > worst ? e : worst;
    }
    printf("finite differences, V=%d D=%d L=%d H=%d G=%d B=%d T=%d block %d %s %s: worst rel l2 %.2e\n", c->vocab,
           c->dim, c->layers, c->heads, c->glu, B, T, c->block, c->tied ? "tied" : "untied",
           c->switches ? c->switches : "", worst);
    free(logits); free(grads); free(tokens); free(targets);
    tn_model_free(&m);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    Case cases[] = {
        /* H = 3, LRPE on layers 0 and 2, T = 13 with block 4 */
        {.vocab = 11, .dim = 12, .layers = 3, .heads = 3, .glu = 10, .seq_len = 13, .batch = 2, .block = 4,
         .tied = 1, .lrpe = {1, 0, 1}},
        /* L = 1 with LRPE, H = 2, T = 7 with block 3, embedding not scaled */
        {.vocab = 9, .dim = 8, .layers = 1, .heads = 2, .glu = 6, .seq_len = 7, .batch = 1, .block = 3, .tied = 1,
         .no_scale = 1, .lrpe = {1}},
        /* H = 5, untied lm_head, LRPE everywhere, T = 10 with block 8 */
        {.vocab = 7, .dim = 15, .layers = 2, .heads = 5, .glu = 9, .seq_len = 10, .batch = 2, .block = 8, .tied = 0,
         .lrpe = {1, 1}},
        /* SPEC section 3: every value of every switch at least once */
        {.vocab = 11, .dim = 12, .layers = 3, .heads = 3, .glu = 10, .seq_len = 13, .batch = 2, .block = 4,
         .tied = 1, .lrpe = {1, 0, 1}, .switches = "pe=lrpe norm=rmsnorm"},
        {.vocab = 9, .dim = 8, .layers = 2, .heads = 2, .glu = 6, .seq_len = 9, .batch = 2, .block = 4, .tied = 1,
         .switches = "pe=exp-decay decay=paper gla-act=1+elu"},
        {.vocab = 9, .dim = 12, .layers = 2, .heads = 3, .glu = 6, .seq_len = 7, .batch = 2, .block = 3, .tied = 0,
         .switches = "pe=ape max-positions=9 gate=off glu-act=silu"},
        {.vocab = 9, .dim = 8, .layers = 2, .heads = 2, .glu = 6, .seq_len = 9, .batch = 1, .block = 4, .tied = 1,
         .lrpe = {1, 0}, .switches = "decay=none norm=layernorm gla-act=none"},
        {.vocab = 9, .dim = 12, .layers = 2, .heads = 3, .glu = 8, .seq_len = 8, .batch = 2, .block = 3, .tied = 1,
         .switches = "decay=paper lrpe-layers=all"},
        {.vocab = 9, .dim = 10, .layers = 2, .heads = 5, .glu = 6, .seq_len = 7, .batch = 2, .block = 4, .tied = 1,
         .lrpe = {0, 1}, .switches = "decay-temperature=off gate=off norm=layernorm glu-act=silu"},
        /* the softmax Transformer baseline: H = 3 with d = 4, untied; L = 1 */
        {.vocab = 11, .dim = 12, .layers = 2, .heads = 3, .glu = 10, .seq_len = 9, .batch = 2, .block = 4,
         .tied = 0, .switches = "arch=transformer"},
        {.vocab = 9, .dim = 8, .layers = 1, .heads = 2, .glu = 6, .seq_len = 7, .batch = 1, .block = 3, .tied = 1,
         .switches = "arch=transformer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], seed + i);
    return TEST_DONE(argv[0]);
}
