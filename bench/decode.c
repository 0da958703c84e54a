/* bench/decode: the cost of one decoded token (paper §3.3, Alg. 4).
 *
 * 1. The machine's memory bandwidth, STREAM-style (a read-only sum, what
 *    decoding does to the weights, and a copy), measured in this run.
 * 2. Decode speed of a model (--size, random weights): tokens/s and the
 *    bandwidth it reaches, counting every parameter as read once per token,
 *    with fp32 weights and with int8 ones (infer/quantize.h); and batched
 *    decode (--batch sequences per step, as tnllm generate --prompts runs)
 *    against batch 1, in tokens/s.
 * 3. Time and resident memory per decoded token with 1K .. 512K tokens of
 *    context already consumed, for our recurrent state and for a KV-cache
 *    softmax attention of the same shape (D, L, H, G, V: the same matrix
 *    products, the token mixer replaced by causal softmax attention over
 *    cached keys and values), written here as the baseline. The state and
 *    the cache hold random values of the shape a prefill of that many
 *    tokens leaves: the cost of a step does not depend on the values.
 *
 * Timings on a shared CPU are noisy: each figure is the fastest of --steps
 * tokens (other work only adds time), and the baseline/ours ratio is taken
 * within the same run.
 */
#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "infer/session.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "util/progress.h"

/* Untimed steps before each measurement (caches, page faults). */
#define WARMUP 2
/* Rounds of the decode-speed measurement (fp32 and int8 alternating). */
#define DECODE_ROUNDS 3
/* Rounds over all contexts for the recurrent path (the fastest counts). */
#define ROUNDS 11

static void usage(void) {
    printf("usage: bench/decode [--size NAME] [--ctx-size NAME] [--contexts LIST] [--batch N] [--steps N]\n"
           "                    [-t THREADS]\n\n"
           "  --size NAME       model for the decode speed and bandwidth (default 125M)\n"
           "  --ctx-size NAME   model for the context-length table (default 15M: its 512K KV cache fits in RAM)\n"
           "  --contexts LIST   comma-separated contexts, k/M suffixes (default 1K,8K,64K,512K)\n"
           "  --batch N         sequences of the batched-decode line, against batch 1 (default 16)\n"
           "  --steps N         tokens timed per figure (default 9; the fastest is printed)\n"
           "  --stream-mib N    array size of the bandwidth test in MiB (default 512)\n"
           "  -t, --threads N   OpenMP threads (default: all cores)\n");
}

static double resident_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib / 1024.0;
}

/* The fastest of n timings: on a shared machine other work only ever adds
 * time, so the minimum is the estimate of a step's own cost. */
static double fastest(const double *v, int n) {
    double best = v[0];
    for (int i = 1; i < n; i++) best = v[i] < best ? v[i] : best;
    return best;
}

/* STREAM-like bandwidths in GB/s (best of 5): read = a sum over n floats,
 * copy = b = a counting the read and the write. */
static void stream_bandwidth(size_t n, double *read_gbs, double *copy_gbs) {
    float *a = tn_malloc(n * sizeof *a), *b = tn_malloc(n * sizeof *b);
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) a[i] = b[i] = (float)(i & 255);
    double best_read = 1e30, best_copy = 1e30, sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = tn_now();
        float sum = 0;
        #pragma omp parallel for simd reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += a[i];
        double t1 = tn_now();
        #pragma omp parallel for
        for (size_t i = 0; i < n; i++) b[i] = a[i];
        double t2 = tn_now();
        sink += sum + b[n / 2];
        best_read = t1 - t0 < best_read ? t1 - t0 : best_read;
        best_copy = t2 - t1 < best_copy ? t2 - t1 : best_copy;
    }
    *read_gbs = n * sizeof(float) / best_read / 1e9;
    *copy_gbs = 2.0 * n * sizeof(float) / best_copy / 1e9;
    if (sink == -1) printf("%g\n", sink); /* keeps the sums alive */
    free(a);
    free(b);
}

/* Pseudo-random values in [-scale/2, scale/2): a multiplicative hash, so
 * that gigabytes of KV cache fill in parallel in a moment. */
static void fill_random(float *x, size_t n, float scale, uint64_t stream) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        uint64_t h = (i + 1 + (stream << 40)) * 0x9e3779b97f4a7c15ULL;
        x[i] = scale * ((float)(h >> 40) / (float)(1 << 24) - 0.5f);
    }
}

/* Our decode of `batch` sequences after ctx tokens each: position ctx,
 * random states of the recurrent shape, the int8 weights q unless NULL.
 * Returns the fastest step (one token of every sequence) in seconds. */
static double recurrent_step(const TnModel *m, const TnQuantModel *q, int batch, int ctx, int steps, double *rss) {
    TnSession s;
    tn_session_init(&s, m, batch, 0);
    tn_session_use_int8(&s, q);
    for (int b = 0; b < batch; b++) {
        for (int l = 0; l < m->config.n_layers; l++) {
            size_t count;
            float *state = tn_session_layer_state(&s, b, l, &count);
            fill_random(state, count, 0.1f, (uint64_t)(b * TN_MAX_LAYERS + l));
        }
        tn_session_set_history(&s, b, ctx, NULL, 0);
    }
    double *t = tn_malloc((size_t)steps * sizeof *t);
    int32_t *tokens = tn_malloc((size_t)batch * sizeof *tokens);
    TnError err;
    for (int i = -WARMUP; i < steps; i++) {
        for (int b = 0; b < batch; b++) tokens[b] = 3 + i + WARMUP + b;
        double t0 = tn_now();
        if (tn_session_decode(&s, tokens, batch, &err)) tn_die("%s", err.msg);
        if (i >= 0) t[i] = tn_now() - t0;
    }
    *rss = resident_mib();
    double result = fastest(t, steps);
    free(t);
    free(tokens);
    tn_session_free(&s);
    return result;
}

/* The baseline: a softmax Transformer decode step with a KV cache of the
 * same shape. Caches are (H, max_ctx, d) per layer for keys and values, so
 * each head's keys are one contiguous matrix for sgemv. */
typedef struct KvCache {
    const TnModel *m;
    int max_ctx;
    float *keys[TN_MAX_LAYERS], *values[TN_MAX_LAYERS];
    float *hidden, *normed, *qkvu, *attn, *delta, *glu1, *glu2, *scores, *logits;
} KvCache;

static void kv_init(KvCache *c, const TnModel *m, int max_ctx) {
    const TnConfig *cfg = &m->config;
    size_t D = cfg->dim, G = cfg->glu_dim;
    memset(c, 0, sizeof *c);
    c->m = m;
    c->max_ctx = max_ctx;
    for (int l = 0; l < cfg->n_layers; l++) {
        c->keys[l] = tn_malloc((size_t)max_ctx * D * sizeof(float));
        c->values[l] = tn_malloc((size_t)max_ctx * D * sizeof(float));
    }
    c->hidden = tn_malloc(D * sizeof(float));
    c->normed = tn_malloc(D * sizeof(float));
    c->qkvu = tn_malloc(4 * D * sizeof(float));
    c->attn = tn_malloc(D * sizeof(float));
    c->delta = tn_malloc(D * sizeof(float));
    c->glu1 = tn_malloc(G * sizeof(float));
    c->glu2 = tn_malloc(G * sizeof(float));
    c->scores = tn_malloc((size_t)cfg->n_heads * max_ctx * sizeof(float));
    c->logits = tn_malloc((size_t)cfg->vocab_size * sizeof(float));
}

static void kv_free(KvCache *c) {
    for (int l = 0; l < c->m->config.n_layers; l++) {
        free(c->keys[l]);
        free(c->values[l]);
    }
    free(c->hidden); free(c->normed); free(c->qkvu); free(c->attn); free(c->delta);
    free(c->glu1); free(c->glu2); free(c->scores); free(c->logits);
}

/* softmax(q K^T / sqrt(d)) V per head over the pos + 1 cached tokens. */
static void kv_attention(KvCache *c, int layer, int pos) {
    const TnConfig *cfg = &c->m->config;
    int H = cfg->n_heads, d = cfg->dim / H, n = pos + 1;
    #pragma omp parallel for
    for (int h = 0; h < H; h++) {
        float *scores = c->scores + (size_t)h * c->max_ctx;
        const float *keys = c->keys[layer] + (size_t)h * c->max_ctx * d;
        const float *values = c->values[layer] + (size_t)h * c->max_ctx * d;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, d, 1.0f / sqrtf((float)d), keys, d, c->qkvu + h * d, 1, 0.0f,
                    scores, 1);
        float max = scores[0];
        for (int t = 1; t < n; t++) max = scores[t] > max ? scores[t] : max;
        double sum = 0;
        for (int t = 0; t < n; t++) sum += scores[t] = expf(scores[t] - max);
        cblas_sgemv(CblasRowMajor, CblasTrans, n, d, (float)(1.0 / sum), values, d, scores, 1, 0.0f, c->attn + h * d,
                    1);
    }
}

static void kv_step(KvCache *c, int32_t token, int pos) {
    const TnModel *m = c->m;
    const TnConfig *cfg = &m->config;
    int D = cfg->dim, G = cfg->glu_dim;
    for (int i = 0; i < D; i++) c->hidden[i] = tn_embed_scale(cfg) * m->w.embed[(size_t)token * D + i];
    for (int l = 0; l < cfg->n_layers; l++) {
        const TnLayerWeights *lw = &m->w.layers[l];
        srmsnorm_forward_cpu(c->normed, NULL, c->hidden, 1, D);
        matmul_forward_cpu(c->qkvu, c->normed, lw->qkvu, 1, D, 4 * D);
        int H = cfg->n_heads, d = D / H;
        for (int h = 0; h < H; h++) {
            size_t at = ((size_t)h * c->max_ctx + pos) * d;
            memcpy(c->keys[l] + at, c->qkvu + D + h * d, (size_t)d * sizeof(float));
            memcpy(c->values[l] + at, c->qkvu + 2 * D + h * d, (size_t)d * sizeof(float));
        }
        kv_attention(c, l, pos);
        matmul_forward_cpu(c->delta, c->attn, lw->out, 1, D, D);
        cblas_saxpy(D, 1.0f, c->delta, 1, c->hidden, 1);
        srmsnorm_forward_cpu(c->normed, NULL, c->hidden, 1, D);
        matmul_forward_cpu(c->glu1, c->normed, lw->l1, 1, D, G);
        matmul_forward_cpu(c->glu2, c->normed, lw->l2, 1, D, G);
        for (int i = 0; i < G; i++) c->glu1[i] *= c->glu2[i];
        matmul_forward_cpu(c->delta, c->glu1, lw->l3, 1, G, D);
        cblas_saxpy(D, 1.0f, c->delta, 1, c->hidden, 1);
    }
    srmsnorm_forward_cpu(c->normed, NULL, c->hidden, 1, D);
    matmul_forward_cpu(c->logits, c->normed, m->w.lm_head, 1, D, cfg->vocab_size);
}

static double kv_cache_step(const TnModel *m, int ctx, int steps, double *rss) {
    KvCache c;
    kv_init(&c, m, ctx + WARMUP + steps);
    /* The whole cache is written (what a prefill of ctx tokens leaves, plus
     * the slots the timed steps fill), so every page is resident. */
    for (int l = 0; l < m->config.n_layers; l++) {
        fill_random(c.keys[l], (size_t)c.max_ctx * m->config.dim, 1.0f, 100 + (uint64_t)l);
        fill_random(c.values[l], (size_t)c.max_ctx * m->config.dim, 1.0f, 200 + (uint64_t)l);
    }
    double *t = tn_malloc((size_t)steps * sizeof *t);
    for (int i = -WARMUP; i < steps; i++) {
        double t0 = tn_now();
        kv_step(&c, 3 + i + WARMUP, ctx + i + WARMUP);
        if (i >= 0) t[i] = tn_now() - t0;
    }
    *rss = resident_mib();
    double result = fastest(t, steps);
    free(t);
    kv_free(&c);
    return result;
}

static void load_size(TnModel *m, const char *name) {
    TnConfig cfg;
    TnError err;
    if (tn_config_from_size(&cfg, name, &err)) tn_die("%s", err.msg);
    tn_model_init(m, &cfg, 1);
}

int main(int argc, char **argv) {
    const char *size = "125M", *ctx_size = "15M";
    int steps = 9, stream_mib = 512, threads = 0, batch = 16;
    enum { MAX_CONTEXTS = 16 };
    long long ctxs[MAX_CONTEXTS] = {1024, 8192, 65536, 524288};
    int n_ctx = 4;
    TnArgs a;
    args_init(&a, "bench/decode", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--size")) size = args_value(&a);
        else if (args_is(&a, NULL, "--ctx-size")) ctx_size = args_value(&a);
        else if (args_is(&a, NULL, "--contexts")) n_ctx = args_length_list(&a, ctxs, MAX_CONTEXTS, 0, 1LL << 30);
        else if (args_is(&a, NULL, "--batch")) batch = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--steps")) steps = (int)args_int(&a, 1, 100000);
        else if (args_is(&a, NULL, "--stream-mib")) stream_mib = (int)args_int(&a, 1, 1 << 20);
        else if (args_is(&a, "-t", "--threads")) threads = (int)args_int(&a, 1, 4096);
        else args_unknown(&a);
    }
    if (threads) omp_set_num_threads(threads);
    /* A fixed threshold: every large buffer is its own mapping, returned to
     * the system when freed, so the resident size of one row is not
     * inflated by the buffers of the row before. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);

    /* What the program and its shared libraries hold before any buffer of
     * this benchmark: the part of the RSS columns below that is not the
     * model's. */
    double start_rss = resident_mib(), read_gbs, copy_gbs;
    stream_bandwidth((size_t)stream_mib * 1048576 / sizeof(float), &read_gbs, &copy_gbs);
    printf("machine: %d threads; memory bandwidth (best of 5, %d MiB arrays): read %.1f GB/s, copy %.1f GB/s\n",
           omp_get_max_threads(), stream_mib, read_gbs, copy_gbs);
    printf("resident at start (the program and its libraries): %.1f MiB\n", start_rss);

    TnModel m;
    load_size(&m, size);
    double weight_bytes = (double)m.layout.total * sizeof(float), rss;
    TnQuantModel q;
    tn_quantize_model(&q, &m);
    /* fp32 and int8 in alternating rounds, the fastest of each counts. */
    double fp32_rounds[DECODE_ROUNDS], int8_rounds[DECODE_ROUNDS];
    for (int r = 0; r < DECODE_ROUNDS; r++) {
        fp32_rounds[r] = recurrent_step(&m, NULL, 1, 0, steps, &rss);
        int8_rounds[r] = recurrent_step(&m, &q, 1, 0, steps, &rss);
    }
    double per_token = fastest(fp32_rounds, DECODE_ROUNDS), int8_token = fastest(int8_rounds, DECODE_ROUNDS);
    double achieved = weight_bytes / per_token / 1e9, int8_achieved = q.bytes / int8_token / 1e9;
    printf("\ndecode, %s (%.1f M parameters, %.0f MiB of fp32 weights read per token), fastest of %d tokens in %d "
           "rounds:\n", size, m.layout.total / 1e6, weight_bytes / 1048576, steps, DECODE_ROUNDS);
    printf("  fp32: %.2f ms/token = %.1f tokens/s; weights streamed at %.1f GB/s = %.0f%% of the measured read "
           "bandwidth\n", per_token * 1e3, 1.0 / per_token, achieved, 100.0 * achieved / read_gbs);
    printf("  int8: %.2f ms/token = %.1f tokens/s (%.2fx fp32); %.0f MiB of int8 weights and scales streamed at %.1f "
           "GB/s = %.0f%%\n", int8_token * 1e3, 1.0 / int8_token, per_token / int8_token, q.bytes / 1048576.0,
           int8_achieved, 100.0 * int8_achieved / read_gbs);
    /* Batched decode (tnllm generate --prompts): the same weights read once
     * per step for every sequence, in alternating rounds with batch 1. */
    double single_rounds[DECODE_ROUNDS], batch_rounds[DECODE_ROUNDS];
    for (int r = 0; r < DECODE_ROUNDS; r++) {
        single_rounds[r] = recurrent_step(&m, NULL, 1, 0, steps, &rss);
        batch_rounds[r] = recurrent_step(&m, NULL, batch, 0, steps, &rss);
    }
    double single_step = fastest(single_rounds, DECODE_ROUNDS), batch_step = fastest(batch_rounds, DECODE_ROUNDS);
    printf("  batched fp32 decode: batch 1 %.1f tokens/s, batch %d %.1f tokens/s (%.2fx; %.2f ms per step of %d "
           "tokens)\n", 1.0 / single_step, batch, batch / batch_step, single_step * batch / batch_step,
           batch_step * 1e3, batch);
    tn_quant_free(&q);
    tn_model_free(&m);

    load_size(&m, ctx_size);
    const TnConfig *cfg = &m.config;
    printf("\nper-token cost at a given context, %s (D=%d L=%d H=%d G=%d V=%d), fastest of %d tokens (ours: of %d\n"
           "interleaved rounds of that):\n", ctx_size, cfg->dim, cfg->n_layers, cfg->n_heads, cfg->glu_dim,
           cfg->vocab_size, steps, ROUNDS);
    printf("%10s | %14s %12s | %14s %12s | %8s\n", "context", "ours ms/token", "ours RSS MiB", "KV ms/token",
           "KV RSS MiB", "KV/ours");
    /* All of ours first, so that no KV cache is resident while ours is
     * measured; in interleaved rounds, so that a slow spell of the shared
     * machine does not land on one context only. */
    double ours[MAX_CONTEXTS], ours_rss[MAX_CONTEXTS], rounds[MAX_CONTEXTS][ROUNDS], lowest = 1e30, highest = 0;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < n_ctx; i++) rounds[i][r] = recurrent_step(&m, NULL, 1, (int)ctxs[i], steps, &ours_rss[i]);
    for (int i = 0; i < n_ctx; i++) {
        ours[i] = fastest(rounds[i], ROUNDS);
        lowest = ours[i] < lowest ? ours[i] : lowest;
        highest = ours[i] > highest ? ours[i] : highest;
    }
    for (int i = 0; i < n_ctx; i++) {
        double kv_rss, kv = kv_cache_step(&m, (int)ctxs[i], steps, &kv_rss);
        printf("%10lld | %14.3f %12.1f | %14.3f %12.1f | %7.1fx\n", ctxs[i], ours[i] * 1e3, ours_rss[i], kv * 1e3,
               kv_rss, kv / ours[i]);
    }
    printf("ours: slowest/fastest context = %.3f (flat within %.1f%%); recurrent state %.1f KiB per sequence at "
           "any context\n", highest / lowest, 100.0 * (highest / lowest - 1.0), tn_session_state_bytes(cfg) / 1024.0);
    tn_model_free(&m);
    return 0;
}
