/* tnllm plan: the parallel layouts of a model that fit on a number of GPUs (dist/plan.h). */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "dist/plan.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

static void usage(void) {
    printf("usage: tnllm plan (--size NAME | --config FILE) --gpus N [--gpu-mem GIB] [options]\n\n"
           "Prints, per GPU, the memory of each layout tp x dp = N: tensor parallelism of the paper's §3.2.2\n"
           "over tp GPUs (GLA split by heads, W_o by rows, SGLU's W_1, W_2 by columns and W_3 by rows; the\n"
           "embedding and norms replicated), data parallelism over dp with ZeRO stage 0-3 (0 or 1 with\n"
           "tp > 1: tnllm train --device cuda refuses --tp with ZeRO-2/3), bf16 weights and gradients, fp32\n"
           "master weights and AdamW moments, full activation checkpointing. Lists the layouts that fit. The\n"
           "model is src/dist/plan.h; the lightning attention's states, the framework and fragmentation are\n"
           "not counted: leave headroom.\n\n"
           "  --size NAME        a named size (any case): %s\n"
           "  --config FILE      an HF config.json\n"
           "  --gpus N           GPUs in all\n"
           "  --gpu-mem GIB      memory of one GPU in GiB (default 80)\n"
           "  --micro-batch B    sequences per GPU per forward pass (default 1)\n"
           "  -c, --ctx T        tokens per sequence (default 2048)\n"
           "  --max-tp N         largest tensor-parallel group, the GPUs of one node (default 8)\n"
           "  --all              print the layouts that do not fit too\n",
           tn_config_size_names());
}

int cmd_plan(int argc, char **argv) {
    const char *size = NULL, *config = NULL;
    int gpus = 0, micro_batch = 1, seq_len = 2048, max_tp = 8, all = 0;
    double gpu_gib = 80.0;
    TnArgs a;
    args_init(&a, "plan", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--size")) size = args_value(&a);
        else if (args_is(&a, NULL, "--config")) config = args_value(&a);
        else if (args_is(&a, NULL, "--gpus")) gpus = (int)args_int(&a, 1, 1 << 20);
        else if (args_is(&a, NULL, "--gpu-mem")) gpu_gib = args_double(&a, 0.001, 1e6);
        else if (args_is(&a, NULL, "--micro-batch")) micro_batch = (int)args_int(&a, 1, 1 << 16);
        else if (args_is(&a, "-c", "--ctx")) seq_len = (int)args_int(&a, 1, 1 << 24);
        else if (args_is(&a, NULL, "--max-tp")) max_tp = (int)args_int(&a, 1, 1 << 10);
        else if (args_is(&a, NULL, "--all")) all = 1;
        else args_unknown(&a);
    }
    args_require(&a, gpus ? "" : NULL, "--gpus N");
    TnConfig cfg;
    TnError err;
    if (!config && !size) tn_die_usage("tnllm plan: give --size NAME or --config FILE (see tnllm plan --help)");
    if (config && tn_config_load(&cfg, config, &err)) tn_die("%s", err.msg);
    if (!config && tn_config_from_size(&cfg, size, &err)) tn_die_usage("tnllm plan: %s", err.msg);
    TnPlanCounts counts;
    tn_plan_counts(&cfg, &counts);
    TnPlanRow rows[64];
    int n = tn_plan_layouts(&cfg, gpus, max_tp, micro_batch, seq_len, gpu_gib * GIB, rows, 64), fitting = 0;
    printf("%s: %.2fB parameters (%.2fB split over tp, %.2fB replicated); %d GPUs of %.0f GiB; micro-batch %d x %d "
           "tokens\n",
           config ? config : size, (counts.split + counts.replicated) / 1e9, counts.split / 1e9,
           counts.replicated / 1e9, gpus, gpu_gib, micro_batch, seq_len);
    printf("  tp   dp  zero | weights  gradients  optimizer  gather  activations |   total GiB  fits\n");
    const TnPlanRow *best = NULL;
    for (int i = 0; i < n; i++) {
        const TnPlanRow *r = &rows[i];
        fitting += r->fits;
        if (r->fits && (!best || r->total < best->total)) best = r;
        if (!r->fits && !all) continue;
        printf("%4d %4d %5d | %7.1f %10.1f %10.1f %7.1f %12.1f | %11.1f  %s\n", r->tp, r->dp, r->zero,
               r->weights / GIB, r->gradients / GIB, r->optimizer / GIB, r->gather / GIB, r->activations / GIB,
               r->total / GIB, r->fits ? "yes" : "no");
    }
    if (!best) {
        printf("none of %d layouts fits: more GPUs, a smaller --micro-batch or --ctx%s\n", n,
               all ? "" : " (--all lists them)");
        return 1;
    }
    printf("%d of %d layouts fit%s; the least memory: tp %d x dp %d, ZeRO-%d, %.1f GiB per GPU\n", fitting, n,
           all ? "" : " (--all lists the others)", best->tp, best->dp, best->zero, best->total / GIB);
    return 0;
}
