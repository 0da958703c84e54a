/* tnllm init: a randomly initialised model directory. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/switch_flags.h"
#include "model/transnormer.h"
#include "util/fileio.h"

static void usage(void) {
    printf("usage: tnllm init (--size NAME | --config FILE) -o DIR [--seed S] [--dtype f32|bf16] [--shard-size BYTES]\n"
           "                  [--force] [model switches]\n\n"
           "Writes config.json and model.safetensors initialised as in SPEC section 1.\n"
           "  --size NAME        %s (any case)\n"
           "  --config FILE      an HF config.json\n"
           "  -o, --output DIR   the model directory to create\n"
           "  --seed S           random seed (default 1234)\n"
           "  --dtype T          f32 (default) or bf16\n"
           "  --shard-size N     split the weights into files of at most N bytes (k/M/G suffixes; default: one file)\n"
           "  --force            replace the model DIR already holds (refused without it)\n",
           tn_config_size_names());
    switch_flags_usage();
}

/* Refuses a DIR that holds a model, naming its files: random weights written
 * over a trained model would lose it. */
static void refuse_existing_model(const char *dir) {
    static const char *const names[] = {"config.json", "model.safetensors", "model.safetensors.index.json"};
    char found[128] = "", path[4096];
    TnError err;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (tn_path_join(path, sizeof path, dir, names[i], &err)) tn_die("%s", err.msg);
        if (!tn_file_exists(path)) continue;
        if (found[0]) strcat(found, ", ");
        strcat(found, names[i]);
    }
    if (found[0])
        tn_die("tnllm init: %s already holds %s: give --force to replace that model, or another -o DIR", dir, found);
}

int cmd_init(int argc, char **argv) {
    const char *size = NULL, *config = NULL, *out = NULL, *dtype_name = "f32";
    long long seed = 1234, shard = 0;
    int force = 0;
    TnSwitchFlags switches = {0};
    TnArgs a;
    args_init(&a, "init", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--size")) size = args_value(&a);
        else if (args_is(&a, NULL, "--config")) config = args_value(&a);
        else if (args_is(&a, "-o", "--output")) out = args_value(&a);
        else if (args_is(&a, NULL, "--seed")) seed = args_int(&a, 0, (long long)1 << 62);
        else if (args_is(&a, NULL, "--dtype")) dtype_name = args_value(&a);
        else if (args_is(&a, NULL, "--shard-size")) shard = args_int(&a, 1, (long long)1 << 50);
        else if (args_is(&a, NULL, "--force")) force = 1;
        else if (!switch_flags_match(&switches, &a)) args_unknown(&a);
    }
    args_require(&a, out, "-o DIR");
    TnDtype dtype;
    if (strcmp(dtype_name, "f32") == 0) dtype = TN_F32;
    else if (strcmp(dtype_name, "bf16") == 0) dtype = TN_BF16;
    else tn_die_usage("tnllm init: --dtype must be f32 or bf16, got '%s'", dtype_name);
    TnConfig cfg;
    TnError err;
    if (!config && !size) tn_die_usage("tnllm init: give --size NAME or --config FILE (see tnllm init --help)");
    if (config && tn_config_load(&cfg, config, &err)) tn_die("%s", err.msg);
    if (!config && tn_config_from_size(&cfg, size, &err)) tn_die_usage("tnllm init: %s", err.msg);
    switch_flags_apply(&switches, &cfg, "init");
    if (!force) refuse_existing_model(out);
    TnModel m;
    tn_model_init(&m, &cfg, (uint64_t)seed);
    if (tn_model_save(&m, out, dtype, (size_t)shard, &err)) tn_die("%s", err.msg);
    printf("wrote %s: %zu parameters (%s)\n", out, m.layout.total, dtype_name);
    tn_model_free(&m);
    return 0;
}
