/* train_bench.c: training throughput of the GPU model (model/transnormer_cuda.h),
 * TransNormerLLM and the softmax Transformer baseline of the same D, L, H,
 * G side by side (the paper's Table 12: tokens/s against size).
 *
 * For each (size, batch, T) it times full training steps (forward, backward,
 * clipping, AdamW) on random tokens after warm-up steps and prints a table:
 * step time, tokens/s, the host clock's split of the step (to the loss:
 * tn_model_cuda_accumulate, as the trainer runs it, queueing the forward
 * and the backward and waiting for the forward's losses; after it: the rest
 * of the backward and the update up to the step's synchronisation; a
 * first figure near the step time would say the GPU waits for launches),
 * device memory (the model's buffers: fp32 parameters,
 * gradients, two moments, the bf16 copy, plus the activation arena; and the
 * device's used memory as cudaMemGetInfo reports it, context and cuBLAS
 * workspace included), and MFU by SPEC section 5:
 *   MFU = F x tokens/s / 989e12,
 *   F = 6 P_matmul + F_attention  (per token)
 *   P_matmul = L (P D + D^2 + 3 D G) + V D (the tied projection once), P the
 *   rows of the fused projection: 4D (q, k, v, u), 3D without the gate and
 *   in the Transformer (q, k, v);
 *   TransNormerLLM: F_attention = 12 H dk dv per layer: the attention's
 *   state products q S and k^T v, 2 dk dv FLOPs each per head and token,
 *   x 3 for forward + backward;
 *   Transformer: F_attention = 6 D T per layer: Q K^T and P V over the
 *   (T + 1) / 2 keys a token attends to on average (causal), 2 d FLOPs per
 *   key each, per head: 2 D T forward, x 3 for forward + backward (the
 *   model's FLOPs: the flash backward's recomputation is not counted).
 * A fourth field sets the activation checkpointing (model/recompute.h):
 * SIZE:BATCH:T:norms or :layers (default none), a fifth the architecture:
 * SIZE:BATCH:T:RECOMPUTE:transformer for the baseline (default
 * transnormer). T = max picks the longest
 * context, a multiple of 1024, whose buffers (tn_model_cuda_arena_bytes and
 * the parameter-shaped ones) fit in the device's free memory less
 * HEADROOM_GIB; the timed steps then show that it trains (Table 13).
 * Usage: bench_train [SIZE:BATCH:T[:RECOMPUTE[:ARCH]] ...]
 * (default 125M:8:2048 385M:8:2048 and the same two as transformer)
 * The last timed step runs between cudaProfilerStart and cudaProfilerStop, so
 * `ncu --profile-from-start off` times the kernels of exactly one step.
 */
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/params.h"
#include "model/transnormer_cuda.h"
#include "util/progress.h" /* tn_now */
#include "util/rng.h"

#define PEAK_FLOPS 989e12 /* H100 SXM dense bf16 (SPEC section 5) */
#define WARMUP_STEPS 3
#define HEADROOM_GIB 2.0
#define TIMED_STEPS 10
/* T = max steps are long (up to a million tokens): fewer of them */
#define MAX_CONTEXT_WARMUP_STEPS 1
#define MAX_CONTEXT_TIMED_STEPS 2
/* device bytes per parameter: fp32 master, gradient, m and v, the bf16 copy */
#define PARAM_BYTES (4.0 * sizeof(float) + 2)

/* The profiler calls fail only without a device, which init reports first. */
#define CUDA_PROFILER(call)                                                                                      \
    do {                                                                                                           \
        if ((call) != cudaSuccess) fprintf(stderr, "bench_train: %s failed\n", #call);                           \
    } while (0)

static double flops_per_token(const TnConfig *cfg, int seq_len) {
    double D = cfg->dim, G = cfg->glu_dim, V = cfg->vocab_size, L = cfg->n_layers, d = tn_head_dim(cfg);
    double matmul = L * (tn_qkvu_rows(cfg) * D + D * D + 3 * D * G) + V * D, attention = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        attention += cfg->arch == TN_ARCH_TRANSFORMER ? 6.0 * D * seq_len
                                                      : 12.0 * cfg->n_heads * tn_qk_head_dim(cfg, l) * d;
    return 6 * matmul + attention;
}

/* The longest T (a multiple of 1024) whose device buffers fit in the free
 * memory less HEADROOM_GIB (cuBLAS workspace, the CUDA context); 0 if none. */
static int longest_context(const TnConfig *cfg, int batch, TnRecompute recompute) {
    size_t free_bytes, total_bytes;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return 0;
    double budget = (double)free_bytes - HEADROOM_GIB * 1073741824.0;
    double parameters = (double)tn_config_param_count(cfg) * PARAM_BYTES;
    int low = 0, high = 1; /* in units of 1024 tokens: low fits, high does not */
    while (parameters + tn_model_cuda_arena_bytes(cfg, batch, high * 1024, recompute) <= budget) low = high, high *= 2;
    while (high - low > 1) {
        int middle = (low + high) / 2;
        if (parameters + tn_model_cuda_arena_bytes(cfg, batch, middle * 1024, recompute) <= budget) low = middle;
        else high = middle;
    }
    return low * 1024;
}

static int bench(const char *spec) {
    char size[32], context[16], level[16] = "none", arch[16] = "transnormer";
    int batch, seq_len;
    TnRecompute recompute;
    if (sscanf(spec, "%31[^:]:%d:%15[^:]:%15[^:]:%15s", size, &batch, context, level, arch) < 3 || batch < 1 ||
        tn_recompute_parse(level, &recompute)) {
        fprintf(stderr, "bench_train: '%s' is not SIZE:BATCH:T|max[:none|norms|layers[:transnormer|transformer]]\n",
                spec);
        return -1;
    }
    TnError err;
    TnConfig cfg;
    if (tn_config_from_size(&cfg, size, &err) || tn_config_set_switch(&cfg, "arch", arch, &err) ||
        tn_config_validate(&cfg, &err)) {
        fprintf(stderr, "bench_train: %s: %s\n", spec, err.msg);
        return -1;
    }
    seq_len = strcmp(context, "max") == 0 ? longest_context(&cfg, batch, recompute) : atoi(context);
    if (seq_len < 1) {
        fprintf(stderr, "bench_train: %s: no context of %s tokens fits\n", spec, context);
        return -1;
    }
    TnParamLayout layout;
    tn_param_layout_init(&layout, &cfg);
    float *params = malloc(layout.total * sizeof *params);
    tn_params_init(params, &layout, &cfg, 1);
    TnModelCuda gpu;
    size_t N = (size_t)batch * seq_len;
    int32_t *tokens = malloc(N * sizeof *tokens), *targets = malloc(N * sizeof *targets);
    TnRng rng;
    tn_rng_seed(&rng, 1, 0);
    for (size_t i = 0; i < N; i++) tokens[i] = (int32_t)tn_rng_below(&rng, cfg.vocab_size);
    for (size_t i = 0; i < N; i++) targets[i] = (i + 1) % seq_len ? tokens[i + 1] : -100;
    int status = -1;
    /* host clock: the pass as the trainer runs it (tn_model_cuda_accumulate:
     * queueing the forward and the backward, then waiting for the forward's
     * losses), then the rest of the backward and the update (to the step's
     * sync) */
    double elapsed = 0, norm, phases[2] = {0};
    float loss = 0;
    if (tn_model_cuda_init(&gpu, &cfg, params, &err) || tn_model_cuda_reserve(&gpu, batch, seq_len, recompute, &err))
        goto done;
    int longest = strcmp(context, "max") == 0;
    int warmup = longest ? MAX_CONTEXT_WARMUP_STEPS : WARMUP_STEPS;
    int timed = longest ? MAX_CONTEXT_TIMED_STEPS : TIMED_STEPS;
    for (int step = 1; step <= warmup + timed; step++) {
        if (step == warmup + 1) elapsed = tn_now(), phases[0] = phases[1] = 0;
        if (step == warmup + timed) CUDA_PROFILER(cudaProfilerStart());
        double start = tn_now();
        if (tn_model_cuda_zero_grad(&gpu, &err) ||
            tn_model_cuda_accumulate(&gpu, tokens, targets, batch, seq_len, 1.0f / (float)(N - batch), &loss, &err))
            goto done;
        double losses_in = tn_now();
        if (tn_model_cuda_step(&gpu, 0.9f, 0.95f, 1e-8f, 0.1f, 1e-4f, step, 1.0, &norm, &err)) goto done;
        phases[0] += losses_in - start;
        phases[1] += tn_now() - losses_in;
    }
    CUDA_PROFILER(cudaProfilerStop());
    elapsed = (tn_now() - elapsed) / timed; /* step() synchronises */
    size_t free_bytes, total_bytes;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) free_bytes = total_bytes = 0;
    double model_gib = (gpu.n_params * PARAM_BYTES + gpu.arena_bytes) / 1073741824.0;
    double tokens_per_s = N / elapsed, mfu = flops_per_token(&cfg, seq_len) * tokens_per_s / PEAK_FLOPS;
    printf("| %-11s | %-5s | %5.1fM | %5d | %5d | %-9s | %9.1f | %11.0f | %9.2f | %10.2f | %6.1f%% | %7.3f | %11.1f "
           "| %14.1f |\n",
           arch, size, layout.total / 1e6, batch, seq_len, level, 1e3 * elapsed, tokens_per_s, model_gib,
           (total_bytes - free_bytes) / 1073741824.0, 100 * mfu, loss, 1e3 * phases[0] / timed,
           1e3 * phases[1] / timed);
    fflush(stdout);
    status = 0;
done:
    if (status) fprintf(stderr, "bench_train: %s %d x %d: %s\n", size, batch, seq_len, err.msg);
    tn_model_cuda_free(&gpu);
    tn_param_layout_free(&layout);
    free(params), free(tokens), free(targets);
    return status;
}

int main(int argc, char **argv) {
    const char *defaults[] = {"125M:8:2048", "385M:8:2048", "125M:8:2048:none:transformer",
                              "385M:8:2048:none:transformer"};
    int n = argc > 1 ? argc - 1 : (int)(sizeof defaults / sizeof defaults[0]);
    const char *const *specs = argc > 1 ? (const char *const *)argv + 1 : defaults;
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) printf("device: %s\n", prop.name);
    printf("MFU = F x tokens/s / 989e12, F = 6 (L (P D + D^2 + 3DG) + VD) + F_attention, P = 4D (TransNormerLLM) "
           "or 3D (Transformer);\nF_attention = sum_l 12 H dk d (TransNormerLLM), 6 L D T (Transformer: causal "
           "softmax, Q K^T and P V over (T+1)/2 keys on average, x 3 for fwd+bwd)\n");
    printf("| arch        | size  | params | batch |     T | recompute | step (ms) |    tokens/s | model GiB | "
           "device GiB |    MFU | loss    | to loss ms | after loss ms |\n"
           "|-------------|-------|--------|-------|-------|-----------|-----------|-------------|-----------|"
           "------------|--------|---------|-------------|----------------|\n");
    int failures = 0;
    for (int i = 0; i < n; i++) failures += bench(specs[i]) != 0;
    return failures ? 1 : 0;
}
