/* tnllm info: what a model is and what it needs, before anything runs. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_dir.h"
#include "cli/switch_flags.h"
#include "model/config.h"
#include "model/params.h"
#include "model/transnormer.h"
#include "train/trainer.h"
#include "util/fileio.h"

static void usage(void) {
    printf("usage: tnllm info (-m DIR | --size NAME | --config FILE) [--ctx T] [--batch B] [--budget-gib X]\n"
           "                  [-t N] [model switches]\n\n"
           "Prints the configuration, the parameter count by group and the memory a model needs.\n"
           "  -m, --model DIR   an HF model directory (reads config.json only)\n"
           "  --size NAME       a named size (any case): %s\n"
           "  --config FILE     an HF config.json\n"
           "  -c, --ctx T       context length for the activation and training estimates (default 2048)\n"
           "  --batch B         sequences per step (the micro-batch) for those estimates (default 1)\n"
           "  --budget-gib X    also the longest context whose CPU training memory fits in X GiB\n"
           "  -t, --threads N   threads of the training run the estimate is for (default: all cores)\n",
           tn_config_size_names());
    switch_flags_usage();
}

/* Formats a byte count with a binary unit that keeps 3-4 significant digits. */
static const char *human_bytes(char *out, size_t cap, double bytes) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) { bytes /= 1024.0; u++; }
    snprintf(out, cap, "%.*f %s", u ? 2 : 0, bytes, units[u]);
    return out;
}

int cmd_info(int argc, char **argv) {
    const char *dir = NULL, *size = NULL, *config = NULL;
    int ctx = 2048, batch = 1, threads = 0;
    double budget_gib = 0;
    TnSwitchFlags switches = {0};
    TnArgs a;
    args_init(&a, "info", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, "-m", "--model")) dir = args_value(&a);
        else if (args_is(&a, NULL, "--size")) size = args_value(&a);
        else if (args_is(&a, NULL, "--config")) config = args_value(&a);
        else if (args_is(&a, "-c", "--ctx")) ctx = (int)args_int(&a, 1, 1 << 24);
        else if (args_is(&a, NULL, "--batch")) batch = (int)args_int(&a, 1, 1 << 20);
        else if (args_is(&a, NULL, "--budget-gib")) budget_gib = args_double(&a, 1e-6, 1e9);
        else if (args_is(&a, "-t", "--threads")) threads = (int)args_int(&a, 1, 4096);
        else if (!switch_flags_match(&switches, &a)) args_unknown(&a);
    }
    TnConfig cfg;
    TnError err;
    char path[4096];
    if (dir) {
        if (tn_path_join(path, sizeof path, dir, "config.json", &err) || tn_config_load(&cfg, path, &err))
            model_dir_die("info", dir, &err);
    } else if (config) {
        if (tn_config_load(&cfg, config, &err)) tn_die("%s", err.msg);
    } else if (size) {
        if (tn_config_from_size(&cfg, size, &err)) tn_die_usage("tnllm info: %s", err.msg);
    } else {
        tn_die_usage("tnllm info: give -m DIR, --size NAME or --config FILE (see tnllm info --help)");
    }
    switch_flags_apply(&switches, &cfg, "info");

    TnParamLayout layout;
    tn_param_layout_init(&layout, &cfg);
    long long by_kind[TN_PARAM_KIND_COUNT] = {0};
    for (int i = 0; i < layout.n_tensors; i++) by_kind[layout.tensors[i].kind] += (long long)layout.tensors[i].numel;
    long long total = (long long)layout.total;
    printf("model: D=%d L=%d H=%d (head %d) G=%d V=%d, embedding scale %.3g, output %s\n", cfg.dim, cfg.n_layers,
           cfg.n_heads, tn_head_dim(&cfg), cfg.glu_dim, cfg.vocab_size, tn_embed_scale(&cfg),
           cfg.tie_word_embeddings ? "tied to the embedding" : "separate lm_head");
    if (cfg.arch == TN_ARCH_TRANSFORMER) {
        printf("architecture: softmax Transformer baseline (RoPE, SwiGLU, RMSNorm)\n\n");
    } else {
        printf("LRPE layers:");
        for (int l = 0; l < cfg.n_layers; l++)
            if (cfg.use_lrpe[l]) printf(" %d", l);
        double lambda[cfg.n_heads];
        tn_decay_rates(&cfg, 0, lambda);
        printf("\ndecay, layer 0: lambda in [%.6f, %.6f]; last layer: ", lambda[0], lambda[cfg.n_heads - 1]);
        tn_decay_rates(&cfg, cfg.n_layers - 1, lambda);
        printf("[%.6f, %.6f]\n", lambda[0], lambda[cfg.n_heads - 1]);
        printf("switches: pe %s, decay %s, decay temperature %s, gate %s, gla act %s, glu act %s, norm %s\n\n",
               tn_pe_names[cfg.pe], tn_decay_names[cfg.decay], cfg.decay_temperature ? "on" : "off",
               cfg.output_gate ? "on" : "off", tn_activation_names[cfg.gla_act], tn_activation_names[cfg.glu_act],
               tn_norm_names[cfg.norm]);
    }
    printf("%-28s %16s %8s\n", "parameters", "count", "share");
    struct { const char *name; long long n; } groups[] = {
        {"embedding (tied output)", by_kind[TN_PARAM_EMBED]},
        {"APE positions", by_kind[TN_PARAM_POSITIONS]},
        {"norm gains + biases", by_kind[TN_PARAM_NORM_GAIN] + by_kind[TN_PARAM_NORM_BIAS]},
        {"token mixer projections", by_kind[TN_PARAM_QKVU] + by_kind[TN_PARAM_OUT] + by_kind[TN_PARAM_Q_PROJ] +
                                        by_kind[TN_PARAM_K_PROJ] + by_kind[TN_PARAM_V_PROJ]},
        {"LRPE theta", by_kind[TN_PARAM_THETA]},
        {"channel mixer l1 l2 l3", by_kind[TN_PARAM_L1] + by_kind[TN_PARAM_L2] + by_kind[TN_PARAM_L3]},
        {"lm_head", by_kind[TN_PARAM_LM_HEAD]},
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (groups[i].n) printf("%-28s %16lld %7.2f%%\n", groups[i].name, groups[i].n, 100.0 * groups[i].n / total);
    printf("%-28s %16lld\n\n", "total", total);

    size_t act = tn_model_activation_bytes(&cfg, batch, ctx, TN_ATTN_CHUNKED, TN_ATTN_DEFAULT_BLOCK, 1);
    double p = (double)total, state = 0; /* Alg. 4: one [d_k, d] fp32 matrix per layer and head */
    for (int l = 0; l < cfg.n_layers; l++) state += 4.0 * cfg.n_heads * tn_qk_head_dim(&cfg, l) * tn_head_dim(&cfg);
    char s1[32], s2[32];
    printf("memory: weights %s fp32, %s bf16\n", human_bytes(s1, sizeof s1, 4 * p), human_bytes(s2, sizeof s2, 2 * p));
    printf("        training state (fp32 weights + grads + AdamW m, v): %s\n", human_bytes(s1, sizeof s1, 16 * p));
    printf("        CPU forward activations, batch %d x ctx %d: %s\n", batch, ctx, human_bytes(s1, sizeof s1, (double)act));
    if (threads) omp_set_num_threads(threads);
    int n_threads = omp_get_max_threads();
    size_t train = tn_train_memory_bytes(&cfg, batch, ctx, n_threads);
    printf("        CPU training (tnllm train, one process, %d threads), micro-batch %d x ctx %d: %s (activation "
           "arenas %s)\n", n_threads, batch, ctx, human_bytes(s1, sizeof s1, (double)train),
           human_bytes(s2, sizeof s2, (double)tn_train_activation_bytes(&cfg, batch, ctx, n_threads)));
    if (budget_gib > 0)
        printf("        longest context that trains in %g GiB at micro-batch %d: %d tokens\n", budget_gib, batch,
               tn_train_longest_context(&cfg, batch, budget_gib * 1073741824.0, n_threads));
    if (cfg.arch == TN_ARCH_TRANSFORMER) /* a KV cache: k and v, fp32, per layer and token */
        printf("        KV cache per sequence: %s per token of context\n",
               human_bytes(s1, sizeof s1, 8.0 * cfg.n_layers * cfg.dim));
    else
        printf("        recurrent inference state per sequence: %s, whatever the context length\n",
               human_bytes(s1, sizeof s1, state));
    tn_param_layout_free(&layout);
    return 0;
}
