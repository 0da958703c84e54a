/* The switches of SPEC section 3 in the model description: each one
 * survives config.json save and load; a default model's file carries none
 * of the new keys (so it stays the released one); meaningless combinations
 * and unknown values are refused with a message naming the problem; the
 * parameter count of config.c agrees with the layout of params.c; the
 * Transformer baseline is an HF LLaMA config.json; a path that implements
 * only some switch groups (tn_config_unsupported_switch) refuses the
 * others by their flag. */
#include <stdlib.h>
#include <string.h>

#include "model/transnormer.h"
#include "test.h"
#include "util/fileio.h"

static int same_switches(const TnConfig *a, const TnConfig *b) {
    return a->pe == b->pe && a->decay == b->decay && a->decay_temperature == b->decay_temperature &&
           a->output_gate == b->output_gate && a->gla_act == b->gla_act && a->glu_act == b->glu_act &&
           a->norm == b->norm && (a->pe != TN_PE_APE || a->max_positions == b->max_positions) &&
           memcmp(a->use_lrpe, b->use_lrpe, sizeof a->use_lrpe) == 0;
}

static void round_trip(const char *dir, const char *switches) {
    TnConfig cfg, back;
    TnError err;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tn_config_from_size(&cfg, "tiny", &err);
    apply_switches(&cfg, switches);
    CHECK(tn_config_validate(&cfg, &err) == 0, "%s: %s", switches, err.msg);
    CHECK(tn_config_save(&cfg, path, &err) == 0, "save: %s", err.msg);
    CHECK(tn_config_load(&back, path, &err) == 0, "%s: load: %s", switches, err.msg);
    CHECK(same_switches(&cfg, &back), "%s: switches changed by save and load", switches);
    TnParamLayout layout;
    tn_param_layout_init(&layout, &cfg);
    CHECK(tn_config_param_count(&cfg) == (long long)layout.total, "%s: param count %lld, layout %zu", switches,
          tn_config_param_count(&cfg), layout.total);
    tn_param_layout_free(&layout);
}

/* A model with the switches saves and loads back bit for bit under the
 * same tensor names (norm gains and biases, the APE table, qkv_proj, the
 * Transformer's LLaMA names); bf16 and sharding are checkpoint.c's. */
static void model_round_trip(const char *dir, const char *switches, const char *expect_tensor, uint64_t seed) {
    TnConfig cfg;
    TnError err;
    tn_config_from_size(&cfg, "tiny", &err);
    cfg.tie_word_embeddings = 0;
    apply_switches(&cfg, switches);
    TnModel m, back;
    tn_model_init(&m, &cfg, seed);
    CHECK(tn_param_find(&m.layout, expect_tensor) != NULL, "%s: no tensor %s", switches, expect_tensor);
    CHECK(tn_model_save(&m, dir, TN_F32, 0, &err) == 0, "%s: save: %s", switches, err.msg);
    CHECK(tn_model_load(&back, dir, &err) == 0, "%s: load: %s", switches, err.msg);
    if (back.params) {
        CHECK(back.layout.total == m.layout.total &&
                  memcmp(back.params, m.params, m.layout.total * sizeof *m.params) == 0,
              "%s: parameters differ after save and load", switches);
        tn_model_free(&back);
    }
    tn_model_free(&m);
}

static void refused(const char *switches, const char *expect) {
    TnConfig cfg;
    TnError err;
    tn_config_from_size(&cfg, "tiny", &err);
    apply_switches(&cfg, switches);
    CHECK(tn_config_validate(&cfg, &err) != 0 && strstr(err.msg, expect), "%s: expected a refusal with '%s', got '%s'",
          switches, expect, tn_config_validate(&cfg, &err) ? err.msg : "accepted");
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir, "switches");
    snprintf(path, sizeof path, "%s/config.json", dir);
    TnConfig cfg;
    TnError err;
    tn_config_from_size(&cfg, "tiny", &err);
    CHECK(tn_config_save(&cfg, path, &err) == 0, "save: %s", err.msg);
    char *text;
    CHECK(tn_read_file(path, &text, NULL, &err) == 0, "read: %s", err.msg);
    static const char *const new_keys[] = {"position_encoding", "decay_type", "decay_temperature", "use_output_gate",
                                           "glu_act", "max_position_embeddings"};
    for (size_t i = 0; i < sizeof new_keys / sizeof new_keys[0]; i++)
        CHECK(!strstr(text, new_keys[i]), "a default config.json has '%s'", new_keys[i]);
    free(text);

    const char *const specs[] = {
        "", "pe=lrpe", "pe=exp-decay", "pe=ape max-positions=100", "decay=paper", "decay=none",
        "decay-temperature=off", "decay=paper decay-temperature=off", "gate=off", "gla-act=1+elu", "gla-act=none",
        "glu-act=silu", "norm=rmsnorm", "norm=layernorm", "lrpe-layers=all", "lrpe-layers=1", "lrpe-layers=none",
        "arch=transformer",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) round_trip(dir, specs[i]);

    /* a path that names no switch group as implemented refuses each one by
     * its flag; one that implements the TransNormer switches only the
     * baseline; decay, temperature and LRPE layers need no flag */
    const char *const partial[][2] = {
        {"pe=ape max-positions=100", "--pe ape"}, {"gate=off", "--gate off"}, {"gla-act=1+elu", "--gla-act"},
        {"gla-act=none", "--gla-act"}, {"glu-act=silu", "--glu-act"}, {"norm=rmsnorm", "--norm"},
        {"norm=layernorm", "--norm"}, {"arch=transformer", "--arch transformer"}, {"decay=paper", NULL},
        {"decay=none", NULL}, {"decay-temperature=off", NULL}, {"lrpe-layers=all", NULL}, {"pe=exp-decay", NULL},
    };
    for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
        tn_config_from_size(&cfg, "tiny", &err);
        apply_switches(&cfg, partial[i][0]);
        const char *released = tn_config_unsupported_switch(&cfg, 0);
        const char *switched = tn_config_unsupported_switch(&cfg, TN_IMPLEMENTS_TRANSNORMER_SWITCHES);
        const char *all = tn_config_unsupported_switch(&cfg, TN_IMPLEMENTS_TRANSNORMER_SWITCHES |
                                                                 TN_IMPLEMENTS_TRANSFORMER);
        const char *expect = partial[i][1];
        CHECK(expect ? released && strstr(released, expect) : released == NULL, "%s: released blocks only: '%s'",
              partial[i][0], released ? released : "(accepted)");
        int baseline = expect && strstr(expect, "transformer");
        CHECK(baseline ? switched != NULL : switched == NULL, "%s: TransNormer switches implemented: '%s'",
              partial[i][0], switched ? switched : "(accepted)");
        CHECK(all == NULL, "%s: everything implemented: '%s'", partial[i][0], all);
    }

    refused("pe=lrpe decay=paper", "no decay");
    refused("pe=ape decay-temperature=off", "no decay");
    refused("decay=none decay-temperature=off", "decay_type none");
    refused("pe=exp-decay lrpe-layers=all", "has no LRPE");
    refused("pe=exp-decay decay=none", "no position information");
    refused("glu-act=1+elu", "glu_act");
    refused("arch=transformer norm=layernorm", "takes none");
    refused("arch=transformer gate=on", "takes none");

    /* the baseline is written as an HF LLaMA config and read back as one */
    tn_config_from_size(&cfg, "tiny", &err);
    apply_switches(&cfg, "arch=transformer");
    CHECK(tn_config_save(&cfg, path, &err) == 0, "save: %s", err.msg);
    CHECK(tn_read_file(path, &text, NULL, &err) == 0, "read: %s", err.msg);
    CHECK(strstr(text, "\"model_type\":\t\"llama\"") && strstr(text, "\"intermediate_size\":\t192"), "%s", text);
    free(text);
    TnConfig back;
    CHECK(tn_config_load(&back, path, &err) == 0 && back.arch == TN_ARCH_TRANSFORMER && back.glu_dim == 192 &&
              back.n_heads == 4 && back.dim == 64,
          "llama round trip: %s", err.msg);
    CHECK(tn_config_set_switch(&cfg, "norm", "batchnorm", &err) != 0 && strstr(err.msg, "batchnorm"), "%s", err.msg);
    CHECK(tn_config_set_switch(&cfg, "lrpe-layers", "0,9", &err) != 0, "layer 9 of 2 accepted");
    CHECK(tn_config_set_switch(&cfg, "colour", "red", &err) != 0 && strstr(err.msg, "colour"), "%s", err.msg);

    /* a file with a switch value tnllm does not know is refused, naming it */
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"vocab_size\": 10, \"decoder_embed_dim\": 8, \"decoder_layers\": 1, \"decoder_attention_heads\": 2,"
               " \"glu_dim\": 8, \"linear_use_lrpe_list\": [0], \"no_scale_embedding\": false,"
               " \"position_encoding\": \"rope\"}");
    fclose(f);
    CHECK(tn_config_load(&cfg, path, &err) != 0 && strstr(err.msg, "position_encoding") && strstr(err.msg, "rope"),
          "%s", err.msg);
    model_round_trip(dir, "norm=layernorm pe=ape max-positions=64 gate=off", "model.embed_positions.weight", seed + 1);
    model_round_trip(dir, "norm=rmsnorm", "model.layers.1.token_mixer.norm.weight", seed + 2);
    model_round_trip(dir, "norm=layernorm", "model.final_norm.bias", seed + 3);
    model_round_trip(dir, "gate=off", "model.layers.0.token_mixer.qkv_proj.weight", seed + 4);
    model_round_trip(dir, "arch=transformer", "model.layers.1.self_attn.v_proj.weight", seed + 5);
    model_round_trip(dir, "arch=transformer", "model.norm.weight", seed + 6);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
