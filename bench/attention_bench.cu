/* attention_bench.cu: speed of the GPU Lightning Attention kernels, and of
 * the baseline's causal softmax attention (flash_attention.h) beside them
 * (the paper's Fig. 4 compares the two).
 *
 * Usage: bench_attention [--la] [TSV|- [N...]]   (a CUDA device is needed)
 * For B = 4, H = 16, d = dk = dv = 128 and n in {2048, 8192, 32768}, for the
 * chunked (Lightning Attention-2; also on wgmma: the forward and the
 * backward's dQ pass) and parallel (Alg. 1-2) algorithms and the
 * flash softmax attention (then, without N, a few more shapes, among them
 * the training step's, and the decode step): median
 * forward and forward+backward times over repeated runs (CUDA events, after a
 * warm-up), the peak extra device memory (the scratch and the states the
 * forward keeps for the backward; the kernels allocate nothing else), effective TFLOP/s and the time over the memory floor.
 *   FLOPs, forward  F = B H n (2 C (dk + dv) + 4 dk dv), C = 64: per block of
 *                   C tokens Q K^T and (Q K^T ⊙ M) V as full C x C products,
 *                   Q S and K^T V; forward+backward counts 3 F.
 *   FLOPs, softmax  F = 2 B H n^2 d: Q K^T and P V below the diagonal
 *                   (half of 4 B H n^2 d); forward+backward counts 3.5 F
 *                   (FlashAttention-2's convention: a backward of five
 *                   products, 2.5 F; the kernel's dQ sweep recomputes two
 *                   more, not counted). Its peak extra memory is lse and D.
 *   floor, forward  (Q, K, V read + O written) bytes / measured bandwidth;
 *   floor, fwd+bwd  (Q, K, V, O, dO read + dQ, dK, dV written) / bandwidth,
 *   bandwidth       a device-to-device copy, bytes read + written.
 * Prints a table; with TSV, also writes its rows there for
 * bench/attention_torch.py, which adds the PyTorch baseline beside them.
 * Lengths N after the TSV (or "-") replace the default three. With --la,
 * only the Lightning Attention-2 rows (chunked, wgmma) are timed: the
 * parallel and softmax rows take seconds at n = 32768.
 */
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/lightning_attention.h"

/* Uniform bf16 in [-1, 1) from a hash of the index: random data without a
 * host round trip (never zeros: they can run faster than real data). */
__global__ void fill_random(__nv_bfloat16 *x, size_t n, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed * 0x9e3779b9u ^ (unsigned)(i >> 32);
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        h *= 0x846ca68bu;
        h ^= h >> 16;
        x[i] = __float2bfloat16_rn((float)h / 2147483648.0f - 1.0f);
    }
}

typedef struct Run {
    TnAttnShape shape;
    TnAttnAlgo algo;
    int softmax;       /* the flash softmax attention instead of algo */
    FlashShape flash;  /* its shape */
    uint16_t *q, *k, *v, *o, *dout, *dq, *dk, *dv;
    float *lambda, *state, *lse;
    float *kept; /* chunked: the forward's states kept for the backward (NULL: none to keep) */
    size_t kept_bytes;
    void *scratch;
    size_t scratch_bytes;
} Run;

static void succeed(int status, const TnError *err) {
    if (status == 0) return;
    fprintf(stderr, "%s\n", err->msg);
    exit(2);
}

static void forward(const Run *r) {
    TnError err;
    if (r->softmax) succeed(flash_attention_forward_cuda(r->o, r->lse, r->q, r->k, r->v, &r->flash, 0, &err), &err);
    else
        succeed(attention_forward_cuda(r->o, r->q, r->k, r->v, r->lambda, r->state, &r->shape, r->algo, r->scratch,
                                       r->scratch_bytes, 0, &err),
                &err);
}

/* The chunked algorithms keep the forward's states for the backward, as the
 * model's training step does. */
static void forward_backward(const Run *r) {
    TnError err;
    if (r->kept) {
        succeed(attention_forward_keeping_cuda(r->o, r->q, r->k, r->v, r->lambda, r->kept, r->kept_bytes, &r->shape,
                                               r->algo, r->scratch, r->scratch_bytes, 0, &err),
                &err);
        succeed(attention_backward_kept_cuda(r->dq, r->dk, r->dv, r->dout, r->q, r->k, r->v, r->lambda, r->kept,
                                             r->kept_bytes, &r->shape, r->algo, r->scratch, r->scratch_bytes, 0,
                                             &err),
                &err);
        return;
    }
    forward(r);
    if (r->softmax)
        succeed(flash_attention_backward_cuda(r->dq, r->dk, r->dv, r->dout, r->q, r->k, r->v, r->o, r->lse, &r->flash,
                                              r->scratch, 0, &err),
                &err);
    else
        succeed(attention_backward_cuda(r->dq, r->dk, r->dv, r->dout, r->q, r->k, r->v, r->lambda, &r->shape, r->algo,
                                        r->scratch, r->scratch_bytes, 0, &err),
                &err);
}

static int compare_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds of fn over repeated runs: one warm-up, then as many
 * as fit in about 300 ms (3 to 25). */
static float median_ms(void (*fn)(const Run *), const Run *r) {
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    float times[25], first;
    fn(r);
    CUDA_CHECK(cudaEventRecord(start));
    fn(r);
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaEventElapsedTime(&first, start, stop));
    int reps = first > 0 ? (int)(300.0f / first) : 25;
    reps = reps < 3 ? 3 : reps > 25 ? 25 : reps;
    for (int i = 0; i < reps; i++) {
        CUDA_CHECK(cudaEventRecord(start));
        fn(r);
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK(cudaEventElapsedTime(&times[i], start, stop));
    }
    CUDA_CHECK(cudaGetLastError());
    qsort(times, reps, sizeof times[0], compare_float);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return times[reps / 2];
}

/* Device-to-device copy bandwidth in bytes/s, counting bytes read and written. */
static double copy_bandwidth(void) {
    size_t bytes = (size_t)1 << 31;
    void *a, *b;
    CUDA_CHECK(cudaMalloc(&a, bytes));
    CUDA_CHECK(cudaMalloc(&b, bytes));
    CUDA_CHECK(cudaMemset(a, 1, bytes));
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    float times[7];
    for (int i = 0; i < 7; i++) {
        CUDA_CHECK(cudaEventRecord(start));
        CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaEventRecord(stop));
        CUDA_CHECK(cudaEventSynchronize(stop));
        CUDA_CHECK(cudaEventElapsedTime(&times[i], start, stop));
    }
    qsort(times, 7, sizeof times[0], compare_float);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * bytes / (times[3] * 1e-3);
}

static uint16_t *random_tensor(size_t elements, unsigned seed) {
    uint16_t *x;
    CUDA_CHECK(cudaMalloc((void **)&x, elements * 2));
    fill_random<<<1024, 256>>>((__nv_bfloat16 *)x, elements, seed);
    CUDA_CHECK(cudaGetLastError());
    return x;
}

/* One table row (and a TSV row when tsv is not NULL). */
static void print_row(const char *shape, int n, const char *name, float fwd, float fb, size_t extra_bytes,
                      double flops_fwd, double flops_fb, double floor_fwd, double floor_fb, FILE *tsv) {
    printf("| %s | %s | %.3f | %.3f | %.0f | %.1f | %.1f | %.2f | %.2f |\n", shape, name, fwd, fb,
           extra_bytes / 1048576.0, flops_fwd / (fwd * 1e9), flops_fb / (fb * 1e9), fwd / floor_fwd, fb / floor_fb);
    if (tsv)
        fprintf(tsv, "%d\t%s\t%.4f\t%.4f\t%.1f\t%.4f\t%.4f\t%.6e\t%.6e\n", n, name, fwd, fb,
                extra_bytes / 1048576.0, floor_fwd, floor_fb, flops_fwd, flops_fb);
}

/* Times one shape with the given algorithms and prints a row each (and a
 * TSV row when tsv is not NULL); with `softmax` (dk == dv), the flash
 * softmax attention of the same q, k, v too. The state, for the recurrent
 * algorithm, is carried from call to call as in generation. */
static void bench_shape(int batch, int heads, int n, int dk, int dv, const TnAttnAlgo *algos, int count, int softmax,
                        double bandwidth, FILE *tsv) {
    size_t q_elements = (size_t)batch * n * heads * dk, v_elements = (size_t)batch * n * heads * dv;
    Run r;
    memset(&r, 0, sizeof r);
    r.shape = (TnAttnShape){batch, heads, n, dk, dv, heads * dk, heads * dk, heads * dv, heads * dv};
    r.q = random_tensor(q_elements, 1);
    r.k = random_tensor(q_elements, 2);
    r.v = random_tensor(v_elements, 3);
    r.dout = random_tensor(v_elements, 4);
    r.o = random_tensor(v_elements, 5);
    r.dq = random_tensor(q_elements, 6);
    r.dk = random_tensor(q_elements, 7);
    r.dv = random_tensor(v_elements, 8);
    float *lambda = (float *)malloc(sizeof(float) * heads);
    for (int h = 0; h < heads; h++) lambda[h] = expf(-exp2f(-8.0f * (h + 1) / heads)); /* SPEC slopes */
    CUDA_CHECK(cudaMalloc((void **)&r.lambda, sizeof(float) * heads));
    CUDA_CHECK(cudaMemcpy(r.lambda, lambda, sizeof(float) * heads, cudaMemcpyHostToDevice));
    free(lambda);
    double flops = (double)batch * heads * n * (2.0 * 64 * (dk + dv) + 4.0 * dk * dv);
    double floor_fwd = 2.0 * (2 * q_elements + 2 * v_elements) / bandwidth * 1e3;
    double floor_fb = 2.0 * (4 * q_elements + 4 * v_elements) / bandwidth * 1e3;
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d H=%d n=%d dk=%d dv=%d", batch, heads, n, dk, dv);
    for (int a = 0; a < count; a++) {
        r.algo = algos[a];
        size_t scratch = r.scratch_bytes = attention_cuda_scratch_bytes(&r.shape, r.algo);
        size_t kept = r.kept_bytes = attention_cuda_kept_bytes(&r.shape, r.algo); /* 0 but for the chunked ones */
        r.scratch = NULL;
        r.kept = NULL;
        if (scratch) CUDA_CHECK(cudaMalloc(&r.scratch, scratch));
        if (kept) CUDA_CHECK(cudaMalloc((void **)&r.kept, kept));
        const char *name = r.algo == TN_ATTN_CHUNKED         ? "tnllm LA-2 (chunked)"
                           : r.algo == TN_ATTN_CHUNKED_WGMMA ? "tnllm LA-2 (wgmma)"
                           : r.algo == TN_ATTN_PARALLEL      ? "tnllm Alg.1-2 (parallel)"
                                                             : "tnllm Alg.4 (recurrent)";
        if (r.algo == TN_ATTN_RECURRENT) {
            size_t state_bytes = (size_t)batch * heads * dk * dv * sizeof(float);
            CUDA_CHECK(cudaMalloc((void **)&r.state, state_bytes));
            CUDA_CHECK(cudaMemset(r.state, 0, state_bytes));
            float step = median_ms(forward, &r);
            printf("| %s | %s | %.4f | | %.0f | | | %.2f | |\n", shape, name, step, state_bytes / 1048576.0,
                   step / ((2.0 * (2 * q_elements + 2 * v_elements) + 2.0 * state_bytes) / bandwidth * 1e3));
            cudaFree(r.state);
            r.state = NULL;
        } else {
            float fwd = median_ms(forward, &r), fb = median_ms(forward_backward, &r);
            print_row(shape, n, name, fwd, fb, scratch + kept, flops, 3 * flops, floor_fwd, floor_fb, tsv);
        }
        fflush(stdout);
        cudaFree(r.scratch);
        cudaFree(r.kept);
    }
    if (softmax) {
        r.softmax = 1;
        r.flash = (FlashShape){batch, n, heads, dk, heads * dk, heads * dk, heads * dv, heads * dv};
        size_t stats = flash_attention_scratch_bytes(&r.flash); /* lse, and D in the scratch: the same size */
        CUDA_CHECK(cudaMalloc((void **)&r.lse, stats));
        CUDA_CHECK(cudaMalloc(&r.scratch, stats));
        double softmax_flops = 2.0 * batch * heads * (double)n * n * dk;
        float fwd = median_ms(forward, &r), fb = median_ms(forward_backward, &r);
        print_row(shape, n, "tnllm flash (softmax)", fwd, fb, 2 * stats, softmax_flops, 3.5 * softmax_flops,
                  floor_fwd, floor_fb, tsv);
        fflush(stdout);
        cudaFree(r.lse);
        cudaFree(r.scratch);
    }
    uint16_t *buffers[8] = {r.q, r.k, r.v, r.o, r.dout, r.dq, r.dk, r.dv};
    for (int b = 0; b < 8; b++) cudaFree(buffers[b]);
    cudaFree(r.lambda);
}

int main(int argc, char **argv) {
    int la_only = argc > 1 && strcmp(argv[1], "--la") == 0;
    if (la_only) argc--, argv++;
    int write_tsv = argc > 1 && strcmp(argv[1], "-") != 0;
    FILE *tsv = write_tsv ? fopen(argv[1], "w") : NULL;
    if (write_tsv && !tsv) {
        fprintf(stderr, "bench_attention: cannot write %s\n", argv[1]);
        return 1;
    }
    int lengths[8] = {2048, 8192, 32768}, count = 3;
    if (argc > 2) {
        count = 0;
        for (int i = 2; i < argc && count < 8; i++)
            if ((lengths[count++] = atoi(argv[i])) < 1) {
                fprintf(stderr, "bench_attention: bad length %s\n", argv[i]);
                return 1;
            }
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    double bandwidth = copy_bandwidth();
    printf("device: %s, %d SMs; copy bandwidth %.2f TB/s (read + write)\n", prop.name, prop.multiProcessorCount,
           bandwidth / 1e12);
    printf("bf16, tnllm CUDA kernels; F = B H n (2*64*(dk+dv) + 4 dk dv), fwd+bwd = 3F (softmax: F = 2 B H n^2 d, "
           "fwd+bwd = 3.5F); floor = bytes of Q, K, V, O (+ dO, dQ, dK, dV) / bandwidth\n");
    printf("| shape | algorithm | fwd ms | fwd+bwd ms | peak extra MiB | fwd TFLOP/s | fwd+bwd TFLOP/s | fwd / floor | "
           "fwd+bwd / floor |\n|---|---|---|---|---|---|---|---|---|\n");
    if (tsv)
        fprintf(tsv, "n\talgorithm\tfwd_ms\tfwdbwd_ms\tpeak_mib\tfloor_fwd_ms\tfloor_fwdbwd_ms\tflops_fwd\t"
                     "flops_fwdbwd\n");
    /* wgmma: its own forward and dQ pass (d = 128), the chunked dK/dV */
    const TnAttnAlgo all[3] = {TN_ATTN_CHUNKED, TN_ATTN_CHUNKED_WGMMA, TN_ATTN_PARALLEL}, chunked = TN_ATTN_CHUNKED;
    const TnAttnAlgo recurrent = TN_ATTN_RECURRENT;
    for (int i = 0; i < count; i++) bench_shape(4, 16, lengths[i], 128, 128, all, la_only ? 2 : 3, !la_only, bandwidth, tsv);
    if (argc <= 2) {
        /* Beyond the issue's table: the training step's layers (385M model,
         * batch 8: d = 128, and dk = 2d in the LRPE layer), few sequences x
         * heads (the segments keep the SMs busy), dk = 256 at n = 8192, and
         * one decode step (recurrent, fwd ms is per token; its floor adds
         * the state read and written). */
        bench_shape(8, 8, 2048, 128, 128, all, 2, 0, bandwidth, NULL);
        bench_shape(8, 8, 2048, 256, 128, &chunked, 1, 0, bandwidth, NULL);
        bench_shape(1, 2, 32768, 128, 128, all, 2, 0, bandwidth, NULL);
        bench_shape(4, 16, 8192, 256, 128, &chunked, 1, 0, bandwidth, NULL);
        bench_shape(4, 16, 1, 128, 128, &recurrent, 1, 0, bandwidth, NULL);
        bench_shape(4, 16, 1, 256, 128, &recurrent, 1, 0, bandwidth, NULL);
    }
    if (tsv) fclose(tsv);
    return 0;
}
