/* decode_bench.c: decoding on the GPU (TnSession on TN_DEVICE_CUDA,
 * infer/session_cuda.h) against issue 8's goals: <= 1 ms per token at batch 1
 * for the 385M model in bf16, flat in the context, and >= 10k tokens/s at
 * batch 64.
 *
 * A model of the given size with random weights (the cost of a step does not
 * depend on their values):
 * 1. batch 1: for each context, sequence 0 is emptied and prefilled with
 *    that many random tokens (chunked Lightning Attention-2, timed: prefill
 *    tokens/s), then WARMUP decode steps and --steps timed ones; ms/token is
 *    their wall time over --steps, each step as `tnllm generate` runs it:
 *    the host's token checks, the step's CUDA graph, the logits copied back
 *    to the host (sampling, a few microseconds on the host, is left out).
 *    The weights' bandwidth counts the bf16 parameters once per token.
 * 2. batch B: B sequences prefilled with --batch-ctx tokens each, then
 *    timed decode steps of all B together: tokens/s = B x steps / time.
 * The device memory in use (cudaMemGetInfo) is printed after each
 * measurement: it does not grow with the context.
 * Usage: bench_decode [--size NAME] [--ctx N]... [--steps N] [--batch B] [--batch-ctx N] [--prefill-rows N]
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "infer/session.h"
#include "util/progress.h"
#include "util/rng.h"

#define WARMUP 10
#define MAX_CONTEXTS 8

static void usage(void) {
    printf("usage: bench_decode [--size NAME] [--ctx N]... [--steps N] [--batch B] [--batch-ctx N]\n"
           "                    [--prefill-rows N]\n\n"
           "  --size NAME         model size (default 385M), random weights\n"
           "  --ctx N             a batch-1 context, repeatable (default 1024, 8192, 32768)\n"
           "  --steps N           timed decode steps per figure (default 200)\n"
           "  --batch B           sequences decoded together in part 2 (default 64)\n"
           "  --batch-ctx N       tokens each of them is prefilled with (default 1024)\n"
           "  --prefill-rows N    tokens per prefill step (default 2048)\n");
}

static double device_gib_used(void) {
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) return -1;
    return (double)(total - free_bytes) / 1073741824.0;
}

static void must(int rc, const TnError *err) {
    if (rc) tn_die("bench_decode: %s", err->msg);
}

/* Prefills sequence seq (emptied first) with n random tokens; returns the seconds it took. */
static double prefill_random(TnSession *s, int seq, int n, TnRng *rng) {
    int V = s->model->config.vocab_size;
    int32_t *tokens = tn_malloc((size_t)n * sizeof *tokens);
    for (int i = 0; i < n; i++) tokens[i] = 3 + (int32_t)tn_rng_below(rng, (uint64_t)(V - 3));
    TnError err;
    tn_session_reset(s, seq);
    double t0 = tn_now();
    must(tn_session_prefill(s, seq, tokens, (size_t)n, &err), &err);
    double seconds = tn_now() - t0;
    free(tokens);
    return seconds;
}

/* Seconds per decode step of sequences 0..batch-1, over `steps` after WARMUP. */
static double time_decode(TnSession *s, int batch, int steps) {
    int V = s->model->config.vocab_size;
    int32_t *tokens = tn_malloc((size_t)batch * sizeof *tokens);
    TnError err;
    double t0 = 0;
    for (int step = 0; step < WARMUP + steps; step++) {
        if (step == WARMUP) t0 = tn_now();
        for (int b = 0; b < batch; b++) tokens[b] = 3 + (int32_t)(((long long)step * 7919 + b * 104729) % (V - 3));
        must(tn_session_decode(s, tokens, batch, &err), &err);
    }
    double seconds = (tn_now() - t0) / steps;
    free(tokens);
    return seconds;
}

int main(int argc, char **argv) {
    const char *size = "385M";
    int contexts[MAX_CONTEXTS], n_contexts = 0, steps = 200, batch = 64, batch_ctx = 1024, prefill_rows = 2048;
    TnArgs a;
    args_init(&a, "bench_decode", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--size")) size = args_value(&a);
        else if (args_is(&a, NULL, "--ctx")) {
            if (n_contexts == MAX_CONTEXTS) tn_die("bench_decode: at most %d --ctx", MAX_CONTEXTS);
            contexts[n_contexts++] = (int)args_int(&a, 1, 1 << 24);
        }
        else if (args_is(&a, NULL, "--steps")) steps = (int)args_int(&a, 1, 1 << 20);
        else if (args_is(&a, NULL, "--batch")) batch = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--batch-ctx")) batch_ctx = (int)args_int(&a, 1, 1 << 24);
        else if (args_is(&a, NULL, "--prefill-rows")) prefill_rows = (int)args_int(&a, 1, 1 << 16);
        else args_unknown(&a);
    }
    if (!n_contexts) {
        const int defaults[] = {1024, 8192, 32768};
        for (n_contexts = 0; n_contexts < 3; n_contexts++) contexts[n_contexts] = defaults[n_contexts];
    }
    TnConfig cfg;
    TnError err;
    must(tn_config_from_size(&cfg, size, &err), &err);
    double t0 = tn_now();
    TnModel m;
    tn_model_init(&m, &cfg, 1);
    double init_seconds = tn_now() - t0;
    double weight_bytes = 2.0 * (double)m.layout.total;
    TnSession s;
    must(tn_session_init_on(&s, &m, TN_DEVICE_CUDA, batch, prefill_rows, &err), &err);
    printf("bench_decode: %s (D=%d L=%d H=%d G=%d V=%d), %.1fM parameters, bf16 weights %.2f GB (random init %.1f s)\n",
           size, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.glu_dim, cfg.vocab_size, m.layout.total / 1e6,
           weight_bytes / 1e9, init_seconds);
    TnRng rng;
    tn_rng_seed(&rng, 1, 3);

    printf("\nbatch 1: prefill the context (%d tokens per step), then %d decode steps timed after %d\n", prefill_rows,
           steps, WARMUP);
    printf("| context | prefill tokens/s | decode ms/token | weights GB/s | device GiB used |\n");
    printf("|--------:|-----------------:|----------------:|-------------:|----------------:|\n");
    double fastest = 1e30, slowest = 0;
    for (int i = 0; i < n_contexts; i++) {
        double prefill = prefill_random(&s, 0, contexts[i], &rng);
        double step = time_decode(&s, 1, steps);
        fastest = step < fastest ? step : fastest;
        slowest = step > slowest ? step : slowest;
        printf("| %7d | %16.0f | %15.3f | %12.0f | %15.2f |\n", contexts[i], contexts[i] / prefill, 1e3 * step,
               weight_bytes / step / 1e9, device_gib_used());
    }
    printf("decode at batch 1: %.3f to %.3f ms/token over contexts %d..%d (slowest / fastest %.3f)\n", 1e3 * fastest,
           1e3 * slowest, contexts[0], contexts[n_contexts - 1], slowest / fastest);

    double prefill = 0;
    for (int b = 0; b < batch; b++) prefill += prefill_random(&s, b, batch_ctx, &rng);
    double step = time_decode(&s, batch, steps);
    printf("\nbatch %d (each sequence prefilled with %d tokens, %.0f tokens/s): %.3f ms per step, %.0f tokens/s, "
           "device GiB used %.2f\n",
           batch, batch_ctx, (double)batch * batch_ctx / prefill, 1e3 * step, batch / step, device_gib_used());
    printf("%s\n", tn_session_device_describe(s.device));
    printf("goals (issue 8): <= 1 ms/token at batch 1, flat in the context; >= 10000 tokens/s at batch 64\n");
    printf("summary: batch-1 decode %.3f ms/token (worst context), batch-%d decode %.0f tokens/s\n", 1e3 * slowest,
           batch, batch / step);
    tn_session_free(&s);
    tn_model_free(&m);
    return 0;
}
