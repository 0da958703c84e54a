/* Checkpoint round trips: F32 bit-exact, BF16 equal to the weights rounded
 * by an independent reference (float64 arithmetic, round to nearest even,
 * itself checked with tn_f32_to_bf16 on edge cases and random bit patterns), sharded directories with an index, an untied lm_head, the
 * forward pass of a reloaded model identical to the original's, saves that
 * change the layout, and saves that fail. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/checkpoint.h"
#include "model/transnormer.h"
#include "test.h"
#include "util/bf16.h"
#include "util/fileio.h"
#include "util/rng.h"

/* bfloat16 rounding in float64 arithmetic: |f| to a multiple of the ulp
 * of an 8-bit significand (2^-133 below the normal range), ties to an even
 * multiple, 2^128 and beyond to infinity; NaN and infinities kept, the sign
 * (of -0 too) kept. */
static float bf16_reference(float f) {
    if (isnan(f) || isinf(f) || f == 0) return f;
    int e;
    double x = fabs((double)f);
    frexp(x, &e); /* x in [2^(e-1), 2^e) */
    double ulp = ldexp(1.0, (e > -125 ? e : -125) - 8);
    double q = x / ulp, r = floor(q);
    if (q - r > 0.5 || (q - r == 0.5 && fmod(r, 2.0) == 1.0)) r += 1;
    double y = r * ulp >= ldexp(1.0, 128) ? INFINITY : r * ulp;
    return (float)(f < 0 ? -y : y);
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Whether tn_f32_to_bf16(f) is the reference's rounding: the same bits,
 * or a NaN for a NaN. */
static int bf16_matches(float f) {
    uint16_t h = tn_f32_to_bf16(f);
    if (isnan(f)) return isnan(tn_bf16_to_f32(h));
    float want = bf16_reference(f);
    uint32_t bits;
    memcpy(&bits, &want, sizeof bits);
    return (bits & 0xffffu) == 0 && h == bits >> 16;
}

static void check_bf16_rounding(uint64_t seed) {
    /* ties to even at 1 (down) and 1 + 2^-7 (up), just above a tie, the top
     * of the range (0x7f7fffff and the tie 0x7f7f8000 become inf),
     * infinities, quiet and signalling NaNs (a signalling NaN truncated would
     * be inf), zeros and subnormals */
    static const uint32_t edges[] = {0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f80ffff, 0xbf808000, 0xbf818000,
                                     0x7f7fffff, 0x7f7f8000, 0x7f7f7fff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000,
                                     0x7f800001, 0xff800001, 0xffc00001, 0x00000000, 0x80000000, 0x00000001, 0x00008000,
                                     0x00018000, 0x80018000, 0x007fffff, 0x00800000, 0x00808000, 0x33800000};
    int edge_failures = 0;
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
        if (!bf16_matches(from_bits(edges[i]))) {
            edge_failures++;
            fprintf(stderr, "bf16 of 0x%08x: 0x%04x, the reference %.9g\n", edges[i],
                    tn_f32_to_bf16(from_bits(edges[i])), bf16_reference(from_bits(edges[i])));
        }
    CHECK(edge_failures == 0, "tn_f32_to_bf16 differs from round-to-nearest-even on %d edge cases", edge_failures);
    CHECK(signbit(tn_bf16_to_f32(tn_f32_to_bf16(-0.0f))) && tn_bf16_to_f32(tn_f32_to_bf16(-0.0f)) == 0, "-0 keeps its sign");
    CHECK(isinf(tn_bf16_to_f32(tn_f32_to_bf16(from_bits(0x7f7fffff)))), "the largest float rounds to inf");
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    int random_failures = 0;
    for (int i = 0; i < 1000000; i++) {
        /* random bit patterns (every exponent, NaNs) and weights-like normals */
        float f = i % 2 ? from_bits((uint32_t)tn_rng_next(&rng)) : (float)tn_rng_normal(&rng);
        random_failures += !bf16_matches(f);
    }
    printf("bf16 rounding: %d of %zu edge cases and %d of 1000000 random floats differ from the reference\n",
           edge_failures, sizeof edges / sizeof *edges, random_failures);
    CHECK(random_failures == 0, "tn_f32_to_bf16 differs from round-to-nearest-even on %d random floats", random_failures);
}

static TnConfig small_config(void) {
    TnConfig cfg;
    TnError err;
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
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
        float want = dtype == TN_F32 ? a.params[i] : bf16_reference(a.params[i]);
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
        CHECK(tn_model_forward(&a, tok, NULL, 1, 20, NULL, &err) == 0, "%s", err.msg);
        CHECK(tn_model_forward(&b, tok, NULL, 1, 20, NULL, &err) == 0, "%s", err.msg);
        CHECK(memcmp(a.acts.logits, b.acts.logits, 20 * (size_t)cfg->vocab_size * sizeof(float)) == 0,
              "%s: logits differ after reload", tag);
    }
    printf("%-16s %d tensors, %zu weights: ok\n", tag, a.layout.n_tensors, a.layout.total);
    tn_model_free(&a);
    tn_model_free(&b);
    remove_tree(dir);
}

/* Whether dir loads as exactly m (config sizes and F32 weights). */
static int loads_as(const char *dir, const TnModel *m, const char *tag) {
    TnModel back;
    TnError err;
    if (tn_model_load(&back, dir, &err)) {
        printf("%s: %s\n", tag, err.msg);
        return 0;
    }
    int same = back.config.vocab_size == m->config.vocab_size && back.layout.total == m->layout.total &&
               memcmp(back.params, m->params, m->layout.total * sizeof *m->params) == 0;
    tn_model_free(&back);
    return same;
}

/* A save with one layout over a directory holding the other loads as the
 * new model (a stale index would win over a new single file). */
static void relayout(const TnConfig *cfg, uint64_t seed, size_t first_shard, size_t second_shard, const char *tag) {
    char dir[512];
    make_temp_dir(dir, sizeof dir, "relayout");
    TnModel old, new;
    TnError err;
    tn_model_init(&old, cfg, seed);
    tn_model_init(&new, cfg, seed + 100);
    CHECK(tn_model_save(&old, dir, TN_F32, first_shard, &err) == 0, "%s: %s", tag, err.msg);
    CHECK(tn_model_save(&new, dir, TN_F32, second_shard, &err) == 0, "%s: %s", tag, err.msg);
    CHECK(loads_as(dir, &new, tag), "%s: the directory does not load as the new model", tag);
    printf("%-16s reload gives the new weights: ok\n", tag);
    tn_model_free(&old);
    tn_model_free(&new);
    remove_tree(dir);
}

/* Whether dir holds a file whose name contains part (1, 0; -1: unreadable). */
static int holds_file_with(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1; /* not "no": the callers' checks fail */
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) found |= strstr(e->d_name, part) != NULL;
    closedir(d);
    return found;
}

/* Saves old in a fresh directory (dir, cap bytes) with old_shard bytes a
 * file, makes a non-empty directory named `blocker` there, then saves new
 * as one file over it; returns that save's status (err its message). */
static int save_over_blocker(const TnModel *old, const TnModel *new, size_t old_shard, const char *blocker, char *dir,
                             size_t cap, TnError *err) {
    char path[1024];
    make_temp_dir(dir, cap, "failed-save");
    CHECK(tn_model_save(old, dir, TN_F32, old_shard, err) == 0, "%s", err->msg);
    snprintf(path, sizeof path, "%s/%s/stuck", dir, blocker);
    CHECK(tn_mkdir_p(path, err) == 0, "%s", err->msg);
    return tn_model_save(new, dir, TN_F32, 0, err);
}

/* A save that fails midway (here: closed after 60% of the weights, past
 * the first shards) leaves the previous save loadable as it was, single
 * file or sharded, and no temporary file; a stale index that cannot be
 * removed fails a single-file save and keeps the previous config.json. */
static void failed_save(const TnConfig *cfg, uint64_t seed) {
    char dir[512], path[1024];
    TnModel old, new;
    TnError err;
    tn_model_init(&old, cfg, seed);
    TnConfig wider = *cfg;
    wider.vocab_size += 20;
    tn_model_init(&new, &wider, seed + 1);
    const size_t layouts[4][2] = {{0, 0}, {0, 30000}, {30000, 30000}, {30000, 0}}; /* old, new shard bytes */
    for (int k = 0; k < 4; k++) {
        make_temp_dir(dir, sizeof dir, "failed-save");
        CHECK(tn_model_save(&old, dir, TN_F32, layouts[k][0], &err) == 0, "%s", err.msg);
        TnCheckpointWriter w;
        CHECK(tn_checkpoint_writer_open(&w, dir, &new.config, &new.layout, TN_F32, layouts[k][1], &err) == 0, "%s",
              err.msg);
        CHECK(tn_checkpoint_writer_write(&w, new.params, new.layout.total * 3 / 5, &err) == 0, "%s", err.msg);
        CHECK(w.shard > 0 || layouts[k][1] == 0, "the sharded save had not finished a shard");
        CHECK(tn_checkpoint_writer_close(&w, &err) != 0, "closing after 60%% of the weights should fail");
        CHECK(loads_as(dir, &old, "failed save"),
              "after a failed save (shard bytes %zu over %zu) the directory is not the previous model", layouts[k][1],
              layouts[k][0]);
        CHECK(holds_file_with(dir, ".tmp.") == 0, "a failed save left a temporary file");
        remove_tree(dir);
    }
    printf("failed saves (single and sharded, over single and sharded) keep the previous save: ok\n");

    /* a single file that cannot take its name (a directory there) over a sharded save: the old index stays, and
     * with it the previous save */
    int rc = save_over_blocker(&old, &new, 30000, "model.safetensors", dir, sizeof dir, &err);
    CHECK(rc != 0 && strstr(err.msg, "model.safetensors"), "a single file over a directory: rc %d, '%s'", rc,
          rc ? err.msg : "");
    CHECK(loads_as(dir, &old, "failed rename"), "after a failed rename the directory is not the previous model");
    CHECK(holds_file_with(dir, ".tmp.") == 0, "the failed rename left a temporary file");
    remove_tree(dir);
    printf("a file that cannot take its name fails the save, the previous sharded save kept: ok\n");

    rc = save_over_blocker(&old, &new, 0, "model.safetensors.index.json", dir, sizeof dir, &err);
    CHECK(rc != 0 && strstr(err.msg, "model.safetensors.index.json") && strstr(err.msg, "cannot remove"),
          "a save over an index that cannot be removed: rc %d, '%s'", rc, rc ? err.msg : "");
    snprintf(path, sizeof path, "%s/config.json", dir);
    TnConfig kept;
    CHECK(tn_config_load(&kept, path, &err) == 0 && kept.vocab_size == cfg->vocab_size,
          "the refused save changed config.json");
    CHECK(holds_file_with(dir, ".tmp.") == 0, "the refused save left a temporary file");
    printf("a stale index that cannot be removed fails the save, the previous config.json kept: ok\n");
    tn_model_free(&old);
    tn_model_free(&new);
    remove_tree(dir);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    check_bf16_rounding(seed);
    TnConfig cfg = small_config();
    roundtrip(&cfg, TN_F32, 0, seed, "f32");
    roundtrip(&cfg, TN_BF16, 0, seed + 1, "bf16");
    roundtrip(&cfg, TN_F32, 60000, seed + 2, "f32-sharded");
    roundtrip(&cfg, TN_BF16, 30000, seed + 3, "bf16-sharded");
    cfg.tie_word_embeddings = 0;
    roundtrip(&cfg, TN_F32, 0, seed + 4, "f32-untied");

    cfg = small_config();
    relayout(&cfg, seed + 5, 50000, 0, "sharded->single");
    relayout(&cfg, seed + 6, 0, 50000, "single->sharded");
    failed_save(&cfg, seed + 7);
    return TEST_DONE(argv[0]);
}
