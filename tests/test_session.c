/* The inference session (SPEC section 2): prefill in chunks and decode
 * token by token must give the logits of one parallel forward over the
 * whole sequence, and of the float64 reference, within 1e-5 relative l2 in
 * fp32, for the shapes the forward tests use (H a power of two or not,
 * LRPE on various layers, so decode runs at LRPE offsets > 0, L = 1,
 * unscaled embedding) and an untied lm_head, on fresh random weights and
 * tokens (the seed is printed); batched decode must equal decoding each
 * sequence alone. Every switch of SPEC section 3 and the softmax
 * Transformer baseline (KV-cache decoding) decode to the logits of
 * tn_model_forward within 1e-5, with random norm gains and biases; pe = ape
 * and the baseline refuse positions past their table or cache. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infer/session.h"
#include "ref64.h"
#include "models.h"
#include "test.h"
#include "util/rng.h"

/* Prefills `prompt` tokens (in steps of the session's prefill_rows),
 * decodes the rest one by one and writes the logits after each token into
 * out rows prompt-1 .. T-1. */
static int run_session(TnSession *s, const int32_t *tokens, int T, int prompt, float *out, TnError *err) {
    int V = s->model->config.vocab_size;
    if (tn_session_prefill(s, 0, tokens, (size_t)prompt, err)) return -1;
    memcpy(out + (size_t)(prompt - 1) * V, tn_session_logits(s, 0), (size_t)V * sizeof *out);
    for (int t = prompt; t < T; t++) {
        if (tn_session_decode(s, tokens + t, 1, err)) return -1;
        memcpy(out + (size_t)t * V, tn_session_logits(s, 0), (size_t)V * sizeof *out);
    }
    return 0;
}

static void check_shape(const SmallShape *sh, int T, uint64_t seed) {
    TnConfig cfg = small_config(sh);
    TnError err;
    CHECK(tn_config_validate(&cfg, &err) == 0, "config: %s", err.msg);
    TnModel m;
    tn_model_init(&m, &cfg, seed);
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    int V = cfg.vocab_size;
    int32_t *tokens = malloc((size_t)T * sizeof *tokens);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)tn_rng_below(&rng, (uint64_t)V);

    tn_model_set_attention(&m, TN_ATTN_PARALLEL, 0);
    tn_model_reserve(&m, 1, T);
    CHECK(tn_model_forward(&m, tokens, NULL, 1, T, NULL, &err) == 0, "forward: %s", err.msg);
    double *ref = malloc((size_t)T * V * sizeof *ref);
    ref64_forward(&cfg, &m.layout, m.params, tokens, NULL, 1, T, ref);

    float *got = malloc((size_t)T * V * sizeof *got);
    /* Prompt lengths: one token (decode from position 1 on), a prompt that
     * ends inside a prefill step, one spanning several steps, and one whose
     * steps hold several Lightning Attention-2 blocks (when T > 64). */
    int prompts[] = {1, 6, T - 3, T - 3};
    int prefill_rows[] = {4, 4, 5, 2 * TN_ATTN_DEFAULT_BLOCK - 7};
    for (int p = 0; p < 4; p++) {
        TnSession s;
        tn_session_init(&s, &m, 1, prefill_rows[p]);
        int prompt = prompts[p];
        CHECK(run_session(&s, tokens, T, prompt, got, &err) == 0, "session: %s", err.msg);
        size_t first = (size_t)(prompt - 1) * V, count = (size_t)(T - prompt + 1) * V;
        double e_fwd = rel_l2_f32_f32(got + first, m.acts.logits + first, count);
        double e_ref = rel_l2_f32_f64(got + first, ref + first, count);
        printf("V=%d D=%d L=%d H=%d lrpe=%s T=%d prompt %2d (steps of %d): vs forward %.2e, vs float64 %.2e\n", sh->V,
               sh->D, sh->L, sh->H, sh->lrpe, T, prompt, prefill_rows[p], e_fwd, e_ref);
        CHECK(e_fwd <= 1e-5, "decode vs parallel forward %.3e > 1e-5", e_fwd);
        CHECK(e_ref <= 1e-5, "decode vs float64 reference %.3e > 1e-5", e_ref);
        CHECK(s.position[0] == T, "position %d after %d tokens", s.position[0], T);
        tn_session_free(&s);
    }
    free(tokens);
    free(ref);
    free(got);
    tn_model_free(&m);
}

/* Random norm gains and biases (the initialisation's 1 and 0 would hide a
 * skipped gain), uniform in [0.5, 1.5) and [-0.5, 0.5). */
static void randomize_norms(TnModel *m, uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    int L = m->config.n_layers, D = m->config.dim;
    TnNormWeights *norms[3 * TN_MAX_LAYERS + 1];
    int count = 0;
    for (int l = 0; l < L; l++) {
        norms[count++] = &m->w.layers[l].token_norm;
        norms[count++] = &m->w.layers[l].mixer_norm;
        norms[count++] = &m->w.layers[l].channel_norm;
    }
    norms[count++] = &m->w.final_norm;
    for (int i = 0; i < count; i++)
        for (int c = 0; c < D; c++) {
            if (norms[i]->gain) norms[i]->gain[c] = 0.5f + (float)tn_rng_uniform(&rng);
            if (norms[i]->bias) norms[i]->bias[c] = (float)tn_rng_uniform(&rng) - 0.5f;
        }
}

/* A model with one switch set (key = value; key NULL: the default) decodes
 * to its parallel forward's logits; when the model has a position limit
 * (APE table, KV cache), the token after it is refused. */
static void check_switch(const char *key, const char *value, const char *key2, const char *value2, uint64_t seed) {
    SmallShape sh = {61, 24, 2, 3, 40, 0, 1, "10"};
    TnConfig cfg = small_config(&sh);
    TnError err;
    cfg.max_positions = 40;
    CHECK(tn_config_set_switch(&cfg, key, value, &err) == 0, "%s %s: %s", key, value, err.msg);
    if (key2) CHECK(tn_config_set_switch(&cfg, key2, value2, &err) == 0, "%s %s: %s", key2, value2, err.msg);
    CHECK(tn_config_validate(&cfg, &err) == 0, "%s %s: %s", key, value, err.msg);
    TnModel m;
    tn_model_init(&m, &cfg, seed);
    randomize_norms(&m, seed);
    enum { T = 40 };
    int V = cfg.vocab_size;
    int32_t tokens[T + 1];
    TnRng rng;
    tn_rng_seed(&rng, seed, 11);
    for (int t = 0; t <= T; t++) tokens[t] = (int32_t)tn_rng_below(&rng, (uint64_t)V);
    tn_model_set_attention(&m, TN_ATTN_PARALLEL, 0);
    tn_model_reserve(&m, 1, T);
    CHECK(tn_model_forward(&m, tokens, NULL, 1, T, NULL, &err) == 0, "forward: %s", err.msg);
    float *got = malloc((size_t)T * V * sizeof *got);
    int prompts[] = {1, 9, T - 3}, prefill_rows[] = {4, 4, 5};
    double worst = 0;
    for (int p = 0; p < 3; p++) {
        TnSession s;
        tn_session_init(&s, &m, 1, prefill_rows[p]);
        CHECK(run_session(&s, tokens, T, prompts[p], got, &err) == 0, "%s %s session: %s", key, value, err.msg);
        size_t first = (size_t)(prompts[p] - 1) * V;
        double e = rel_l2_f32_f32(got + first, m.acts.logits + first, (size_t)(T - prompts[p] + 1) * V);
        worst = e > worst ? e : worst;
        if (p == 2 && (cfg.pe == TN_PE_APE || cfg.arch == TN_ARCH_TRANSFORMER)) {
            /* The session now sits at position T = the limit (40). */
            int refused = tn_session_decode(&s, tokens + T, 1, &err) == -1 && strstr(err.msg, "exceed the 40 positions");
            CHECK(refused && s.position[0] == T, "%s %s: position %d past the limit: %s", key, value, s.position[0],
                  err.msg);
        }
        tn_session_free(&s);
    }
    printf("%s %s%s%s%s%s: decode vs parallel forward, worst rel l2 %.2e\n", key, value, key2 ? ", " : "",
           key2 ? key2 : "", key2 ? " " : "", key2 ? value2 : "", worst);
    CHECK(worst <= 1e-5, "%s %s: decode vs parallel forward %.3e > 1e-5", key, value, worst);
    free(got);
    tn_model_free(&m);
}

/* Three sequences of different prompt lengths decoded together equal each
 * decoded alone (within 1e-5: one row goes through sgemv, several through
 * sgemm, which round differently). */
static void check_batched(uint64_t seed) {
    SmallShape sh = {61, 24, 2, 3, 40, 0, 1, "10"};
    TnModel m;
    small_model(&m, &sh, seed);
    const TnConfig cfg = m.config;
    TnRng rng;
    tn_rng_seed(&rng, seed, 1);
    enum { B = 3, STEPS = 5 };
    int prompt[B] = {3, 9, 1}, V = cfg.vocab_size;
    int32_t prompts[B][9], next[STEPS][B];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < 9; t++) prompts[b][t] = (int32_t)tn_rng_below(&rng, (uint64_t)V);
    for (int i = 0; i < STEPS; i++)
        for (int b = 0; b < B; b++) next[i][b] = (int32_t)tn_rng_below(&rng, (uint64_t)V);
    TnError err;
    TnSession batch, alone;
    tn_session_init(&batch, &m, B, 4);
    tn_session_init(&alone, &m, 1, 4);
    for (int b = 0; b < B; b++)
        CHECK(tn_session_prefill(&batch, b, prompts[b], (size_t)prompt[b], &err) == 0, "%s", err.msg);
    float *want = malloc((size_t)B * STEPS * V * sizeof *want);
    for (int b = 0; b < B; b++) {
        tn_session_reset(&alone, 0);
        CHECK(tn_session_prefill(&alone, 0, prompts[b], (size_t)prompt[b], &err) == 0, "%s", err.msg);
        for (int i = 0; i < STEPS; i++) {
            CHECK(tn_session_decode(&alone, &next[i][b], 1, &err) == 0, "%s", err.msg);
            memcpy(want + ((size_t)i * B + b) * V, tn_session_logits(&alone, 0), (size_t)V * sizeof *want);
        }
    }
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        CHECK(tn_session_decode(&batch, next[i], B, &err) == 0, "%s", err.msg);
        for (int b = 0; b < B; b++) {
            double e = rel_l2_f32_f32(tn_session_logits(&batch, b), want + ((size_t)i * B + b) * V, (size_t)V);
            worst = e > worst ? e : worst;
        }
    }
    printf("batched decode of %d sequences vs one at a time: worst rel l2 %.2e\n", B, worst);
    CHECK(worst <= 1e-5, "batched decode differs from single decode: %.3e", worst);
    for (int b = 0; b < B; b++)
        CHECK(batch.position[b] == prompt[b] + STEPS, "position of sequence %d: %d", b, batch.position[b]);
    free(want);
    tn_session_free(&batch);
    tn_session_free(&alone);
    tn_model_free(&m);
}

/* Bad input fails cleanly and leaves the sequence untouched. */
static void check_errors(uint64_t seed) {
    SmallShape sh = {40, 16, 1, 2, 32, 0, 1, "1"};
    TnModel m;
    small_model(&m, &sh, seed);
    TnSession s;
    tn_session_init(&s, &m, 2, 0);
    TnError err;
    int32_t good[3] = {4, 5, 6}, bad[3] = {4, 40, 6}, negative = -1;
    CHECK(tn_session_prefill(&s, 0, good, 0, &err) == -1 && strstr(err.msg, "no tokens"), "empty prefill: %s", err.msg);
    CHECK(tn_session_prefill(&s, 0, bad, 3, &err) == -1 && strstr(err.msg, "token id 40"), "bad id: %s", err.msg);
    CHECK(s.position[0] == 0, "a failed prefill moved the position to %d", s.position[0]);
    CHECK(tn_session_decode(&s, &negative, 1, &err) == -1 && strstr(err.msg, "token id -1"), "negative id: %s", err.msg);
    s.position[1] = 2147483646; /* as if INT_MAX - 1 tokens had been consumed */
    CHECK(tn_session_prefill(&s, 1, good, 3, &err) == -1 && strstr(err.msg, "longest sequence"), "overflow: %s",
          err.msg);
    CHECK(tn_session_prefill(&s, 1, good, 1, &err) == 0, "the last position is usable: %s", err.msg);
    CHECK(tn_session_prefill(&s, 0, good, 3, &err) == 0, "prefill: %s", err.msg);
    int32_t recent[TN_SESSION_RECENT];
    int n = tn_session_recent(&s, 0, recent);
    CHECK(n == 3 && recent[0] == 4 && recent[2] == 6, "recent tokens: %d", n);
    tn_session_free(&s);
    tn_model_free(&m);
}

int main(int argc, char **argv) {
    (void)argc;
    /* The shapes of test_forward_ref.c (the forward pass against float64),
     * plus an untied output projection. */
    const SmallShape shapes[] = {
        {97, 48, 3, 6, 80, 0, 1, "101"},   /* H = 6: ALiBi rule for non-powers of two */
        {61, 40, 1, 5, 64, 1, 1, "1"},     /* L = 1, H = 5, unscaled embedding */
        {128, 64, 4, 4, 96, 0, 1, "1111"}, /* LRPE on every layer */
        {50, 36, 2, 3, 72, 1, 1, "01"},    /* H = 3, LRPE on the last layer only */
        {80, 56, 2, 7, 100, 0, 1, "00"},   /* no LRPE */
        {53, 36, 2, 6, 48, 1, 0, "11"},    /* untied lm_head */
    };
    const int lengths[] = {37, 50, 33, 70, 129, 23};
    uint64_t seed = test_seed();
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_shape(&shapes[i], lengths[i], seed + i);
    check_shape(&shapes[0], 3 * TN_ATTN_DEFAULT_BLOCK + 11, seed + 100); /* across attention blocks and prefill steps */
    check_batched(seed + 300);
    check_errors(seed + 301);
    /* Every switch value other than the default, one at a time (decay and
     * its temperature with a pe that has decay), and the baseline. */
    const char *switches[][4] = {
        {"gla-act", "1+elu", NULL, NULL},  {"gla-act", "none", NULL, NULL},   {"gate", "off", NULL, NULL},
        {"glu-act", "silu", NULL, NULL},   {"norm", "rmsnorm", NULL, NULL},   {"norm", "layernorm", NULL, NULL},
        {"pe", "ape", NULL, NULL},         {"pe", "lrpe", NULL, NULL},        {"pe", "exp-decay", NULL, NULL},
        {"decay", "paper", NULL, NULL},    {"decay", "none", NULL, NULL},     {"decay-temperature", "off", NULL, NULL},
        {"lrpe-layers", "all", NULL, NULL}, {"arch", "transformer", NULL, NULL},
        {"pe", "ape", "norm", "layernorm"},
    };
    for (size_t i = 0; i < sizeof switches / sizeof switches[0]; i++)
        check_switch(switches[i][0], switches[i][1], switches[i][2], switches[i][3], seed + 200 + i);
    return TEST_DONE(argv[0]);
}
