/* Checkpoint round trips: F32 bit-exact, BF16 equal to the rounded
 * weights, sharded directories with an index, an untied lm_head, and the
 * forward pass of a reloaded model identical to the original's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/transnormer.h"
#include "test.h"
#include "util/bf16.h"
#include "util/fileio.h"

static TnConfig small_config(void) {
    TnConfig cfg;
    TnError err;
    tn_config_from_size(&cfg, "tiny", &err);
    cfg.vocab_size = 300;
    cfg.n_layers = 3;
    cfg.use_lrpe[0] = 1;
    cfg.use_lrpe[2] = 1;
    return cfg;
}

static void roundtrip(const TnConfig *cfg, TnDtype dtype, size_t shard, uint64_t seed, const char *tag) {
    char dir[512];
    make_temp_dir(dir, sizeof dir, tag);
    TnModel a, b;
    TnError err;
    tn_model_init(&a, cfg, seed);
    int rc = tn_model_save(&a, dir, dtype, shard, &err);
    CHECK(rc == 0, "%s save: %s", tag, err.msg);
    rc = tn_model_load(&b, dir, &err);
    CHECK(rc == 0, "%s load: %s", tag, err.msg);
    if (rc) { tn_model_free(&a); remove_tree(dir); return; }
    CHECK(b.layout.total == a.layout.total && b.layout.n_tensors == a.layout.n_tensors, "%s layout differs", tag);
    CHECK(b.config.tie_word_embeddings == a.config.tie_word_embeddings, "%s tying differs", tag);
    CHECK(memcmp(b.config.use_lrpe, a.config.use_lrpe, TN_MAX_LAYERS) == 0, "%s LRPE list differs", tag);
    size_t mismatches = 0;
    for (size_t i = 0; i < a.layout.total; i++) {
        float want = dtype == TN_F32 ? a.params[i] : tn_bf16_to_f32(tn_f32_to_bf16(a.params[i]));
        mismatches += memcmp(&want, &b.params[i], sizeof want) != 0;
    }
    CHECK(mismatches == 0, "%s: %zu of %zu weights differ after the round trip", tag, mismatches, a.layout.total);
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(tn_file_exists(path) == (shard != 0), "%s: index present iff sharded", tag);

    /* A reloaded F32 model computes exactly the same logits. */
    if (dtype == TN_F32) {
        int32_t tok[20];
        for (int i = 0; i < 20; i++) tok[i] = (i * 37 + 11) % cfg->vocab_size;
        tn_model_reserve(&a, 1, 20);
        tn_model_reserve(&b, 1, 20);
        tn_model_forward(&a, tok, NULL, 1, 20, NULL, &err);
        tn_model_forward(&b, tok, NULL, 1, 20, NULL, &err);
        CHECK(memcmp(a.acts.logits, b.acts.logits, 20 * (size_t)cfg->vocab_size * sizeof(float)) == 0,
              "%s: logits differ after reload", tag);
    }
    printf("%-16s %d tensors, %zu weights: ok\n", tag, a.layout.n_tensors, a.layout.total);
    tn_model_free(&a);
    tn_model_free(&b);
    remove_tree(dir);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnConfig cfg = small_config();
    roundtrip(&cfg, TN_F32, 0, seed, "f32");
    roundtrip(&cfg, TN_BF16, 0, seed + 1, "bf16");
    roundtrip(&cfg, TN_F32, 60000, seed + 2, "f32-sharded");
    roundtrip(&cfg, TN_BF16, 30000, seed + 3, "bf16-sharded");
    cfg.tie_word_embeddings = 0;
    roundtrip(&cfg, TN_F32, 0, seed + 4, "f32-untied");

    /* Saving a single file over a sharded directory removes the index. */
    char dir[512];
    make_temp_dir(dir, sizeof dir, "relayout");
    TnModel m;
    TnError err;
    cfg = small_config();
    tn_model_init(&m, &cfg, seed);
    CHECK(tn_model_save(&m, dir, TN_F32, 50000, &err) == 0, "%s", err.msg);
    CHECK(tn_model_save(&m, dir, TN_F32, 0, &err) == 0, "%s", err.msg);
    TnModel back;
    CHECK(tn_model_load(&back, dir, &err) == 0, "reload after re-layout: %s", err.msg);
    tn_model_free(&back);
    tn_model_free(&m);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
