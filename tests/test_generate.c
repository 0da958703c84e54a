/* Generation from the golden tiny model (the official code's weights):
 * greedy generation is deterministic and identical to re-running the full
 * parallel forward at every step (same argmax, logits within 1e-5); a seed
 * fixes a sampled generation; sinks stop it; prompts that are empty,
 * invalid UTF-8, long, or foreign to the model behave as documented. */
#include <stdlib.h>
#include <string.h>

#include "infer/generate.h"
#include "infer/prompt.h"
#include "models.h"
#include "test.h"

enum { NEW = 40 };

typedef struct Record {
    int32_t tokens[NEW];
    int n, stop_after;
} Record;

static int record(void *user, int32_t token) {
    Record *r = user;
    r->tokens[r->n++] = token;
    return r->stop_after && r->n == r->stop_after;
}

static int argmax_row(const float *row, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (row[v] > row[best]) best = v;
    return best;
}

static void greedy_against_forward(TnModel *m, uint64_t seed) {
    int V = m->config.vocab_size;
    TnError err;
    TnSession s;
    tn_session_init(&s, m, 1, 0);
    TnSamplingParams greedy = {.temperature = 0, .top_k = 0, .top_p = 1, .repeat_penalty = 1, .seed = 0};
    TnSampler sampler;
    tn_sampler_init(&sampler, &greedy, V);
    int32_t prompt[] = {1, 84, 104, 101, 32, 115, 116, 97, 116, 101}; /* <s> and some byte-like ids */
    int P = sizeof prompt / sizeof *prompt, n = 0;
    Record runs[2] = {{{0}, 0, 0}, {{0}, 0, 0}};
    for (int run = 0; run < 2; run++) {
        tn_session_reset(&s, 0);
        CHECK(tn_session_prefill(&s, 0, prompt, (size_t)P, &err) == 0, "prefill: %s", err.msg);
        CHECK(tn_generate(&s, &sampler, NEW, -1, record, &runs[run], &n, &err) == 0, "generate: %s", err.msg);
        CHECK(n == NEW && runs[run].n == NEW, "generated %d tokens, want %d", n, NEW);
    }
    CHECK(memcmp(runs[0].tokens, runs[1].tokens, sizeof runs[0].tokens) == 0, "greedy generation is not deterministic");

    /* Re-run the whole sequence through the parallel forward at every step. */
    int T = P + NEW;
    int32_t *seq = malloc((size_t)T * sizeof *seq);
    memcpy(seq, prompt, sizeof prompt);
    memcpy(seq + P, runs[0].tokens, sizeof runs[0].tokens);
    tn_model_set_attention(m, TN_ATTN_PARALLEL, 0);
    tn_model_reserve(m, 1, T);
    tn_session_reset(&s, 0);
    CHECK(tn_session_prefill(&s, 0, prompt, (size_t)P, &err) == 0, "prefill: %s", err.msg);
    int same = 0;
    double worst = 0;
    for (int t = P; t < T; t++) {
        CHECK(tn_model_forward(m, seq, NULL, 1, t, NULL, &err) == 0, "forward: %s", err.msg);
        const float *row = m->acts.logits + (size_t)(t - 1) * V;
        same += argmax_row(row, V) == seq[t];
        double e = rel_l2_f32_f32(tn_session_logits(&s, 0), row, (size_t)V);
        worst = e > worst ? e : worst;
        CHECK(tn_session_decode(&s, &seq[t], 1, &err) == 0, "decode: %s", err.msg);
    }
    printf("golden tiny, greedy %d tokens after a %d-token prompt: %d/%d equal to the parallel forward's argmax, "
           "worst logits rel l2 %.2e\n", NEW, P, same, NEW, worst);
    CHECK(same == NEW, "%d of %d greedy tokens differ from the parallel forward", NEW - same, NEW);
    CHECK(worst <= 1e-5, "recurrent logits vs parallel forward %.3e > 1e-5", worst);
    free(seq);

    /* A seed fixes a sampled generation; a sink can stop it. */
    TnSamplingParams sampled = tn_sampling_defaults();
    sampled.seed = seed;
    /* The tied embedding makes this model repeat its last token with logit
     * margins of ~30: a high temperature gives varied tokens. */
    sampled.temperature = 50.0f;
    Record a = {{0}, 0, 0}, b = {{0}, 0, 0}, stopped = {{0}, 0, 5};
    for (int run = 0; run < 3; run++) {
        TnSampler sm;
        tn_sampler_init(&sm, &sampled, V);
        tn_session_reset(&s, 0);
        CHECK(tn_session_prefill(&s, 0, prompt, (size_t)P, &err) == 0, "%s", err.msg);
        Record *r = run == 0 ? &a : run == 1 ? &b : &stopped;
        CHECK(tn_generate(&s, &sm, NEW, -1, record, r, &n, &err) == 0, "generate: %s", err.msg);
        tn_sampler_free(&sm);
    }
    CHECK(a.n == NEW && memcmp(a.tokens, b.tokens, sizeof a.tokens) == 0, "one seed gave two generations");
    CHECK(stopped.n == 5 && n == 5 && s.position[0] == P + 5, "sink stop: %d tokens, position %d", n, s.position[0]);

    /* EOS ends generation without emitting it: replay the seeded run with
     * its first token unlike every one before it taken as EOS. */
    int first_new = 1;
    while (first_new < NEW) {
        int seen = 0;
        for (int i = 0; i < first_new; i++) seen |= a.tokens[i] == a.tokens[first_new];
        if (!seen) break;
        first_new++;
    }
    CHECK(first_new < NEW, "the seeded output repeats one token: no EOS candidate");
    TnSampler replay;
    tn_sampler_init(&replay, &sampled, V);
    tn_session_reset(&s, 0);
    CHECK(tn_session_prefill(&s, 0, prompt, (size_t)P, &err) == 0, "%s", err.msg);
    Record eos = {{0}, 0, 0};
    int32_t eos_token = first_new < NEW ? a.tokens[first_new] : -1;
    CHECK(tn_generate(&s, &replay, NEW, eos_token, record, &eos, &n, &err) == 0, "%s", err.msg);
    CHECK(n == first_new && eos.n == first_new, "generation stopped after %d tokens, want %d (EOS)", n, first_new);
    tn_sampler_free(&replay);
    tn_sampler_free(&sampler);
    tn_session_free(&s);
}

static void prompts(uint64_t seed) {
    const SmallShape shape = {TN_BYTE_VOCAB_SIZE, 32, 2, 2, 64, 0, 1, "10"};
    TnModel m;
    small_model(&m, &shape, seed);
    const TnConfig cfg = m.config;
    TnTokenizer *tok = tn_tokenizer_bytes();
    TnError err;
    int32_t *ids;
    size_t n;
    CHECK(tn_prompt_tokens(tok, "", 0, 1, cfg.vocab_size, &ids, &n, &err) == 0 && n == 1 && ids[0] == TN_TOKEN_BOS,
          "an empty prompt is <s> alone");
    free(ids);
    CHECK(tn_prompt_tokens(tok, "", 0, 0, cfg.vocab_size, &ids, &n, &err) == -1 && strstr(err.msg, "empty"),
          "an empty prompt without <s>: %s", err.msg);
    const char invalid[] = "caf\xc3 \xff\xfe\x80";
    CHECK(tn_prompt_tokens(tok, invalid, sizeof invalid - 1, 1, cfg.vocab_size, &ids, &n, &err) == 0 &&
              n == sizeof invalid && ids[6] == 0xff + 3,
          "invalid UTF-8 goes through as bytes");
    TnSession s;
    tn_session_init(&s, &m, 1, 64);
    size_t before = s.n_floats;
    CHECK(tn_session_prefill(&s, 0, ids, n, &err) == 0, "prefill of invalid UTF-8: %s", err.msg);
    free(ids);
    CHECK(tn_prompt_tokens(tok, "\xff", 1, 1, 256, &ids, &n, &err) == -1 && strstr(err.msg, "id 258"),
          "a tokenizer larger than the model: %s", err.msg);

    /* A long prompt: no context limit, the session does not grow. */
    enum { LONG = 5000 };
    char *text = malloc(LONG);
    for (int i = 0; i < LONG; i++) text[i] = (char)('a' + i % 26);
    CHECK(tn_prompt_tokens(tok, text, LONG, 0, cfg.vocab_size, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(tn_session_prefill(&s, 0, ids, n, &err) == 0, "long prefill: %s", err.msg);
    CHECK(s.position[0] == (int)sizeof invalid + LONG && s.n_floats == before, "position %d, session %zu floats",
          s.position[0], s.n_floats);
    free(ids);
    free(text);
    tn_session_free(&s);
    tn_model_free(&m);
}

/* The unfinished character at the end of a text: the bytes of a character
 * begun but not completed, which more bytes could still complete; a
 * sequence no byte can make valid is not one. */
static void unfinished_utf8(void) {
    static const struct { const char *text; size_t want; } cases[] = {
        {"", 0}, {"abc", 0}, {"a\xe4", 1}, {"a\xe4\xb8", 2}, {"a\xe4\xb8\x80", 0}, {"\xe4\xb8\x80\xe4", 1},
        {"\xc3", 1}, {"\xc3\xa9", 0}, {"\xf0\x9f\x98", 3}, {"\xf0\x9f\x98\x80", 0}, {"\xf0", 1},
        {"\x80", 0}, {"a\x80\x80", 0}, {"\xc0", 0}, {"\xc1", 0}, {"\xf5", 0}, {"\xff", 0},
        {"\xe0\x80", 0}, {"\xe0\xa0", 2}, {"\xed\xa0", 0}, {"\xed\x9f", 2}, {"\xf0\x8f", 0},
        {"\xf4\x90", 0}, {"\xf4\x8f\xbf", 3}, {"\xe4" "a", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].text), got = tn_utf8_unfinished(cases[i].text, n);
        CHECK(got == cases[i].want, "case %zu (%zu bytes): %zu unfinished bytes, want %zu", i, n, got, cases[i].want);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    unfinished_utf8();
    TnModel m;
    if (golden_model(&m) == 0) {
        greedy_against_forward(&m, seed);
        tn_model_free(&m);
    }
    prompts(seed + 1);
    return TEST_DONE(argv[0]);
}
