/* Saved states: a state saved after a prompt and loaded into another
 * session (and another slot) continues exactly as the uninterrupted
 * session; truncated, corrupted, foreign and non-state files are refused
 * with the reason, leaving the sequence as it was. */
#include <stdlib.h>
#include <string.h>

#include "infer/state_file.h"
#include "models.h"
#include "test.h"
#include "util/fileio.h"

enum { PROMPT = 19, STEPS = 6 };

static const SmallShape shape = {50, 32, 2, 4, 48, 0, 1, "10"};
static const SmallShape wide = {50, 48, 2, 4, 48, 0, 1, "10"};

/* Decodes STEPS fixed tokens on seq of s, appending the logits to out. */
static void continue_decoding(TnSession *s, int seq, const int32_t *next, float *out) {
    TnError err;
    int V = s->model->config.vocab_size;
    for (int i = 0; i < STEPS; i++) {
        int32_t tokens[2] = {next[i], next[i]}; /* decode every slot up to seq */
        CHECK(tn_session_decode(s, tokens, seq + 1, &err) == 0, "decode: %s", err.msg);
        memcpy(out + (size_t)i * V, tn_session_logits(s, seq), (size_t)V * sizeof *out);
    }
}

/* Expects loading path into s to fail with a message containing `reason`
 * and to leave the sequence untouched. */
static void expect_refusal(TnSession *s, const char *path, const char *reason, const char *what) {
    TnError err = {{0}};
    int position = s->position[0];
    float logit = tn_session_logits(s, 0)[3];
    int rc = tn_state_load(s, 0, path, &err);
    printf("%-22s -> %s\n", what, err.msg);
    CHECK(rc == -1 && strstr(err.msg, reason), "%s: rc %d, message '%s' lacks '%s'", what, rc, err.msg, reason);
    CHECK(s->position[0] == position && tn_session_logits(s, 0)[3] == logit, "%s changed the sequence", what);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnModel m;
    small_model(&m, &shape, seed);
    int V = m.config.vocab_size;
    TnRng rng;
    tn_rng_seed(&rng, seed, 2);
    int32_t prompt[PROMPT], next[STEPS];
    for (int t = 0; t < PROMPT; t++) prompt[t] = (int32_t)tn_rng_below(&rng, (uint64_t)V);
    for (int t = 0; t < STEPS; t++) next[t] = (int32_t)tn_rng_below(&rng, (uint64_t)V);

    char dir[4096], path[4200], bad[4200];
    make_temp_dir(dir, sizeof dir, "state");
    snprintf(path, sizeof path, "%s/prompt.state", dir);
    snprintf(bad, sizeof bad, "%s/bad.state", dir);
    TnError err;

    TnSession a, b;
    tn_session_init(&a, &m, 1, 8);
    tn_session_init(&b, &m, 2, 8);
    CHECK(tn_session_prefill(&a, 0, prompt, PROMPT, &err) == 0, "prefill: %s", err.msg);
    CHECK(tn_state_save(&a, 0, path, &err) == 0, "save: %s", err.msg);
    float *want = malloc((size_t)STEPS * V * sizeof *want), *got = malloc((size_t)STEPS * V * sizeof *got);
    continue_decoding(&a, 0, next, want);

    /* Round trip into slot 1 of a two-sequence session. */
    CHECK(tn_state_load(&b, 1, path, &err) == 0, "load: %s", err.msg);
    CHECK(b.position[1] == PROMPT, "restored position %d", b.position[1]);
    int32_t recent_a[TN_SESSION_RECENT], recent_b[TN_SESSION_RECENT];
    CHECK(tn_session_prefill(&b, 0, prompt, 1, &err) == 0, "%s", err.msg); /* slot 0 busy with something else */
    continue_decoding(&b, 1, next, got);
    double e = rel_l2_f32_f32(got, want, (size_t)STEPS * V);
    printf("restored state, %d decode steps: rel l2 %.2e against the uninterrupted session\n", STEPS, e);
    CHECK(e <= 1e-5, "restored state decodes differently: %.3e", e);
    int na = tn_session_recent(&a, 0, recent_a), nb = tn_session_recent(&b, 1, recent_b);
    CHECK(na == nb && memcmp(recent_a, recent_b, (size_t)na * sizeof *recent_a) == 0, "recent tokens differ");

    /* Refusals. */
    char *data;
    size_t size;
    CHECK(tn_read_file(path, &data, &size, &err) == 0, "%s", err.msg);
    CHECK(size == sizeof(TnStateHeader) + (V + a.state_floats) * sizeof(float), "file size %zu", size);
    CHECK(tn_write_file(bad, data, size - 10, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "truncated", "truncated payload");
    CHECK(tn_write_file(bad, data, 100, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "truncated", "truncated header");
    data[size - 5] ^= 0x40;
    CHECK(tn_write_file(bad, data, size, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "checksum", "flipped payload bit");
    data[size - 5] ^= 0x40;
    ((TnStateHeader *)data)->version = 99;
    CHECK(tn_write_file(bad, data, size, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "version 99", "future version");
    CHECK(tn_write_file(bad, "hello, world, this is not a state file at all", 46, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "truncated", "short text file");
    memcpy(data, "TNSTATE", 8); /* the training state's magic */
    CHECK(tn_write_file(bad, data, size, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "not a saved tnllm sequence", "training state");
    memset(data, 'x', size);
    CHECK(tn_write_file(bad, data, size, &err) == 0, "%s", err.msg);
    expect_refusal(&b, bad, "not a saved tnllm sequence", "text of full size");
    snprintf(bad, sizeof bad, "%s/missing.state", dir);
    expect_refusal(&b, bad, "missing.state", "missing file");
    free(data);

    /* Another model of the same shape, and one of another shape. */
    TnModel same_shape, other;
    small_model(&same_shape, &shape, seed + 1);
    small_model(&other, &wide, seed);
    TnSession c, d;
    tn_session_init(&c, &same_shape, 1, 8);
    tn_session_init(&d, &other, 1, 8);
    expect_refusal(&c, path, "other weights", "same shape, retrained");
    expect_refusal(&d, path, "another model", "other shape");
    CHECK(tn_model_fingerprint(&m) != tn_model_fingerprint(&same_shape), "fingerprints of two seeds collide");

    tn_session_free(&a);
    tn_session_free(&b);
    tn_session_free(&c);
    tn_session_free(&d);
    tn_model_free(&m);
    tn_model_free(&same_shape);
    tn_model_free(&other);
    free(want);
    free(got);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
