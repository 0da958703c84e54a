/* test_run_options: train/run_options.h, the options recorded with a
 * checkpoint.
 *  - a record reads back equal, field for field (a float AdamW setting, a
 *    seed above 2^53, quotes in the model options); a malformed one is
 *    refused naming the file and the field;
 *  - a model saved and read back as a resume reads it
 *    (tn_checkpoint_load_config) is the model its configuration describes,
 *    for every switch value and the baseline: a resume with the run's own
 *    model options is never refused;
 *  - each change that makes another model is found and named as
 *    config.json names it; the initialisation's std is not one.
 */
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "model/transnormer.h"
#include "test.h"
#include "train/run_options.h"
#include "util/fileio.h"

static void check_record(const char *dir) {
    TnRunOptions ro, back;
    memset(&ro, 0, sizeof ro);
    snprintf(ro.model_options, sizeof ro.model_options, "--config \"my config\".json --pe ape");
    ro.steps = 123456789012LL;
    ro.warmup = 7;
    ro.lr = 3e-4;
    ro.min_lr_ratio = 0.1;
    ro.weight_decay = 0.1f;
    ro.beta1 = 0.9f;
    ro.beta2 = 0.95f;
    ro.eps = 1e-8f;
    ro.grad_clip = 0.7;
    ro.seed = ((uint64_t)1 << 62) + 1;
    char path[4200];
    TnError err;
    snprintf(path, sizeof path, "%s/%s", dir, TN_RUN_OPTIONS_FILE);
    CHECK(tn_run_options_save(path, &ro, &err) == 0, "%s", err.msg);
    CHECK(tn_run_options_load(path, &back, &err) == 0, "%s", err.msg);
    CHECK(strcmp(back.model_options, ro.model_options) == 0 && back.steps == ro.steps && back.warmup == ro.warmup &&
              back.lr == ro.lr && back.min_lr_ratio == ro.min_lr_ratio && back.weight_decay == ro.weight_decay &&
              back.beta1 == ro.beta1 && back.beta2 == ro.beta2 && back.eps == ro.eps &&
              back.grad_clip == ro.grad_clip && back.seed == ro.seed,
          "the record reads back equal (seed %llu, beta1 %.17g)", (unsigned long long)back.seed, back.beta1);

    static const struct { const char *text, *named; } broken[] = {
        {"{\"model_options\": \"\", \"steps\": 1}", "\"warmup\""},
        {"{\"model_options\": 3}", "\"model_options\""},
        {"{\"model_options\": \"\", \"steps\": 1, \"warmup\": 0, \"lr\": 1, \"min_lr_ratio\": 1, \"weight_decay\": 0, "
         "\"beta1\": 0, \"beta2\": 0, \"eps\": 1, \"grad_clip\": 1, \"seed\": \"-4\"}", "\"seed\""},
        {"{} x", "not JSON after the object at byte 3"},
        {"[1]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        CHECK(tn_write_file(path, broken[i].text, strlen(broken[i].text), &err) == 0, "%s", err.msg);
        int rc = tn_run_options_load(path, &back, &err);
        CHECK(rc == -1 && strstr(err.msg, path) && strstr(err.msg, broken[i].named),
              "a malformed record is refused naming the file and %s: %s", broken[i].named, err.msg);
    }
}

/* The config of a model of cfg with switches, saved and read back as a
 * resume reads its checkpoint's, against cfg: no difference. */
static void check_round_trip(const char *dir, const char *switches, int untied) {
    TnConfig cfg;
    TnModel m;
    TnError err;
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
    cfg.tie_word_embeddings = !untied;
    switched_model_init(&m, &cfg, switches, 1);
    char path[4200], difference[256];
    snprintf(path, sizeof path, "%s/model", dir);
    CHECK(tn_model_save(&m, path, TN_F32, 0, &err) == 0, "%s", err.msg);
    tn_model_free(&m);
    TnConfig back;
    CHECK(tn_checkpoint_load_config(path, &back, &err) == 0, "%s", err.msg);
    CHECK(!tn_run_model_differs(&back, &cfg, difference, sizeof difference) && !difference[0],
          "switches '%s'%s: the saved model is the one described: %s", switches, untied ? ", untied" : "",
          difference);
}

static void check_differences(void) {
    TnConfig run, given;
    TnError err;
    char difference[256];
    CHECK(tn_config_from_size(&run, "tiny", &err) == 0, "%s", err.msg);
    static const struct { const char *switches, *named; } changes[] = {
        {"arch=transformer", "architecture transnormer in the run, transformer given"},
        {"pe=ape", "position_encoding lrpe-d in the run, ape given"},
        {"decay=paper", "decay_type official in the run, paper given"},
        {"decay-temperature=off", "decay_temperature true in the run, false given"},
        {"gate=off", "use_output_gate true in the run, false given"},
        {"gla-act=1+elu", "linear_act_fun silu in the run, 1+elu given"},
        {"glu-act=silu", "glu_act none in the run, silu given"},
        {"norm=layernorm", "norm_type simplermsnorm in the run, layernorm given"},
        {"lrpe-layers=1", "linear_use_lrpe_list[0] 1 in the run, 0 given"},
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        given = run;
        apply_switches(&given, changes[i].switches);
        CHECK(tn_run_model_differs(&run, &given, difference, sizeof difference) &&
                  strcmp(difference, changes[i].named) == 0,
              "%s is a difference, named: %s", changes[i].switches, difference);
    }
    given = run;
    given.dim = 128;
    CHECK(tn_run_model_differs(&run, &given, difference, sizeof difference) &&
              strcmp(difference, "decoder_embed_dim 64 in the run, 128 given") == 0,
          "another width is named: %s", difference);
    given = run;
    given.vocab_size = 259;
    CHECK(tn_run_model_differs(&run, &given, difference, sizeof difference) &&
              strcmp(difference, "vocab_size 512 in the run, 259 given") == 0,
          "another vocabulary is named: %s", difference);
    TnConfig ape = run;
    apply_switches(&ape, "pe=ape");
    given = ape;
    given.max_positions = 64;
    CHECK(tn_run_model_differs(&ape, &given, difference, sizeof difference) &&
              strcmp(difference, "max_position_embeddings 2048 in the run, 64 given") == 0,
          "another APE table is named: %s", difference);
    given = run;
    given.init_std = 0.5f;
    given.max_positions = 64; /* no table without APE */
    CHECK(!tn_run_model_differs(&run, &given, difference, sizeof difference),
          "the initialisation's std and an unused table size are not differences: %s", difference);
}

int main(int argc, char **argv) {
    (void)argc;
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "run-options");
    check_record(dir);
    static const char *const switch_sets[] = {
        "", "pe=lrpe", "pe=exp-decay", "pe=ape", "pe=ape max-positions=64", "decay=paper", "decay=none",
        "decay-temperature=off", "gate=off", "gla-act=1+elu", "gla-act=none", "glu-act=silu", "norm=rmsnorm",
        "norm=layernorm", "lrpe-layers=none", "lrpe-layers=1", "arch=transformer",
    };
    for (size_t i = 0; i < sizeof switch_sets / sizeof switch_sets[0]; i++) check_round_trip(dir, switch_sets[i], 0);
    check_round_trip(dir, "", 1);
    check_round_trip(dir, "arch=transformer", 1);
    check_differences();
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
