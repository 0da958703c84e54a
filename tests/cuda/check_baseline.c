/* check_baseline.c: the Transformer baseline on the GPU: the flash attention
 * and RoPE kernels against float64 references, and one training step of the
 * baseline against the CPU model (model/transformer.c), which
 * test_grad_fd pins to finite differences.
 *
 * Needs a CUDA device, so it is no `make test` binary: `make cuda` builds it
 * and scripts/device_train.sh runs it on the device machine (about a second).
 *
 * Kernels: fresh random bf16 inputs for each case (odd n, n = 1, n a
 * multiple of the 64-row blocks and one past it; d 64 and 128; q, k, v as
 * views into one fused [q k v] buffer as in the model); every output buffer
 * poisoned first (all bits set: bf16 and fp32 NaN). The references are the
 * naive formulas in float64 on the bf16-rounded inputs:
 *   p_ts = softmax_{s <= t}(q_t . k_s / sqrt(d)),  o_t = sum_s p_ts v_s,
 *   lse_t = log sum_{s <= t} exp(q_t . k_s / sqrt(d)),
 *   dS_ts = p_ts (do_t . v_s - sum_s' p_ts' do_t . v_s') / sqrt(d),
 *   dq_t = sum_s dS_ts k_s,  dk_s = sum_t dS_ts q_t,  dv_s = sum_t p_ts do_t;
 * pass: relative l2 <= 1e-2 for o, dq, dk, dv (bf16 outputs; the rms where
 * the reference is zero: dq and dk at n = 1), max |lse
 * difference| <= 1e-2; RoPE (forward and backward) relative l2 <= 1e-2
 * against rope_forward_cpu / rope_backward_cpu on the same inputs. NaN fails.
 *
 * Model: step_check.h's comparison on small baselines (d 64 and 128, T not
 * a multiple of 64, ignored targets, random norm gains): the mean loss
 * (relative 1e-2), the logits and every parameter's gradient (relative l2
 * <= 2e-2, issue 8's bound for bf16), AdamW, the recompute levels against
 * none and 6 training steps against the CPU's; then step_check.h's
 * determinism (bit-identical runs and resumes: the flash kernels use no
 * atomics) on the first two.
 * Prints one line per comparison and "check_baseline: N passed, M failed".
 * Usage: check_baseline [SEED]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/rope.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/rope_cuda.h"
#include "model/config.h"
#include "step_check.h"
#include "test.h"
#include "util/bf16.h"
#include "util/rng.h"

#define TOLERANCE 1e-2

#define MUST(call)                                                      \
    do {                                                                \
        if ((call) != 0) {                                              \
            fprintf(stderr, "check_baseline: %s: %s\n", #call, err.msg); \
            exit(2);                                                    \
        }                                                               \
    } while (0)

typedef struct KernelCase {
    int batch, heads, seq_len, head_dim;
} KernelCase;

static void fill_bf16(uint16_t *x, size_t n, TnRng *rng, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = tn_f32_to_bf16((float)(scale * tn_rng_normal(rng)));
}

static double value(const uint16_t *x, size_t i) { return (double)tn_bf16_to_f32(x[i]); }

/* Relative l2 of bf16 results at (row, column) of a strided tensor against a
 * dense float64 reference [rows][width]; where the reference is all zero
 * (n = 1: one key, so p = 1 and dS = 0, dq = dk = 0), the root mean square
 * of the result instead. NaN gives NaN (a failure). */
static double rel_l2_strided(const uint16_t *got, long ld, const double *ref, long rows, int width) {
    double num = 0, den = 0;
    for (long r = 0; r < rows; r++)
        for (int c = 0; c < width; c++) {
            double a = value(got, r * ld + c), b = ref[r * width + c];
            num += (a - b) * (a - b);
            den += b * b;
        }
    return den > 0 ? sqrt(num / den) : sqrt(num / ((double)rows * width));
}

/* The float64 reference of one case: q, k, v at columns 0, HD, 2 HD of the
 * fused rows (stride 3 HD), dout rows HD; o, dq, dk, dv rows HD, lse [B H][T]. */
static void reference(const KernelCase *c, const uint16_t *qkv, const uint16_t *dout, double *o, double *lse,
                      double *dq, double *dk, double *dv) {
    int T = c->seq_len, d = c->head_dim, HD = c->heads * d;
    long ld = 3L * HD, rows = (long)c->batch * T;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc((size_t)T * sizeof *p), *dp = malloc((size_t)T * sizeof *dp);
    memset(dk, 0, (size_t)rows * HD * sizeof *dk);
    memset(dv, 0, (size_t)rows * HD * sizeof *dv);
    for (int b = 0; b < c->batch; b++)
        for (int h = 0; h < c->heads; h++)
            for (int t = 0; t < T; t++) {
                long rt = (long)b * T + t, col = (long)h * d;
                double max = -INFINITY, sum = 0, mean = 0;
                for (int s = 0; s <= t; s++) {
                    long rs = (long)b * T + s;
                    double dot = 0, dot_v = 0;
                    for (int i = 0; i < d; i++) {
                        dot += value(qkv, rt * ld + col + i) * value(qkv, rs * ld + HD + col + i);
                        dot_v += value(dout, rt * HD + col + i) * value(qkv, rs * ld + 2 * HD + col + i);
                    }
                    p[s] = dot * scale;
                    dp[s] = dot_v;
                    max = p[s] > max ? p[s] : max;
                }
                for (int s = 0; s <= t; s++) sum += (p[s] = exp(p[s] - max));
                lse[((long)b * c->heads + h) * T + t] = max + log(sum);
                for (int s = 0; s <= t; s++) mean += (p[s] /= sum) * dp[s];
                for (int i = 0; i < d; i++) o[rt * HD + col + i] = dq[rt * HD + col + i] = 0;
                for (int s = 0; s <= t; s++) {
                    long rs = (long)b * T + s;
                    double ds = p[s] * (dp[s] - mean) * scale;
                    for (int i = 0; i < d; i++) {
                        o[rt * HD + col + i] += p[s] * value(qkv, rs * ld + 2 * HD + col + i);
                        dq[rt * HD + col + i] += ds * value(qkv, rs * ld + HD + col + i);
                        dk[rs * HD + col + i] += ds * value(qkv, rt * ld + col + i);
                        dv[rs * HD + col + i] += p[s] * value(dout, rt * HD + col + i);
                    }
                }
            }
    free(p), free(dp);
}

static void check_flash(const KernelCase *c, TnRng *rng) {
    TnError err;
    int T = c->seq_len, d = c->head_dim, HD = c->heads * d;
    long rows = (long)c->batch * T;
    size_t fused = (size_t)rows * 3 * HD, dense = (size_t)rows * HD, stats = (size_t)c->batch * c->heads * T;
    FlashShape shape = {c->batch, T, c->heads, d, 3L * HD, 3L * HD, 3L * HD, HD};
    uint16_t *qkv = malloc(fused * 2), *dout = malloc(dense * 2), *o = malloc(dense * 2), *dqkv = malloc(fused * 2);
    float *lse = malloc(stats * sizeof *lse);
    /* q sharper than k so the softmax is far from uniform */
    for (long r = 0; r < rows; r++) {
        fill_bf16(qkv + r * 3 * HD, HD, rng, 2.0);
        fill_bf16(qkv + r * 3 * HD + HD, 2 * HD, rng, 1.0);
    }
    fill_bf16(dout, dense, rng, 1.0);
    double *o_ref = malloc(dense * sizeof(double)), *lse_ref = malloc(stats * sizeof(double));
    double *dq_ref = malloc(dense * sizeof(double)), *dk_ref = malloc(dense * sizeof(double));
    double *dv_ref = malloc(dense * sizeof(double));
    reference(c, qkv, dout, o_ref, lse_ref, dq_ref, dk_ref, dv_ref);

    uint16_t *qkv_gpu, *dout_gpu, *o_gpu, *dqkv_gpu;
    float *lse_gpu;
    void *scratch;
    CUDA_CHECK(cudaMalloc((void **)&qkv_gpu, fused * 2));
    CUDA_CHECK(cudaMalloc((void **)&dqkv_gpu, fused * 2));
    CUDA_CHECK(cudaMalloc((void **)&dout_gpu, dense * 2));
    CUDA_CHECK(cudaMalloc((void **)&o_gpu, dense * 2));
    CUDA_CHECK(cudaMalloc((void **)&lse_gpu, stats * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&scratch, flash_attention_scratch_bytes(&shape)));
    CUDA_CHECK(cudaMemcpy(qkv_gpu, qkv, fused * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dout_gpu, dout, dense * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(o_gpu, 0xff, dense * 2));
    CUDA_CHECK(cudaMemset(lse_gpu, 0xff, stats * sizeof(float)));
    CUDA_CHECK(cudaMemset(dqkv_gpu, 0xff, fused * 2));
    CUDA_CHECK(cudaMemset(scratch, 0xff, flash_attention_scratch_bytes(&shape)));
    MUST(flash_attention_forward_cuda(o_gpu, lse_gpu, qkv_gpu, qkv_gpu + HD, qkv_gpu + 2 * HD, &shape, 0, &err));
    MUST(flash_attention_backward_cuda(dqkv_gpu, dqkv_gpu + HD, dqkv_gpu + 2 * HD, dout_gpu, qkv_gpu, qkv_gpu + HD,
                                       qkv_gpu + 2 * HD, o_gpu, lse_gpu, &shape, scratch, 0, &err));
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(o, o_gpu, dense * 2, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(lse, lse_gpu, stats * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(dqkv, dqkv_gpu, fused * 2, cudaMemcpyDeviceToHost));

    char what[160];
    double e = rel_l2_strided(o, HD, o_ref, rows, HD);
    snprintf(what, sizeof what, "flash B %d H %d n %d d %d: o rel l2", c->batch, c->heads, T, d);
    check_value(e <= TOLERANCE, what, e, TOLERANCE);
    double worst = 0;
    for (size_t i = 0; i < stats; i++) {
        double diff = fabs((double)lse[i] - lse_ref[i]);
        worst = diff > worst || diff != diff ? diff : worst;
    }
    snprintf(what, sizeof what, "flash B %d H %d n %d d %d: lse max abs diff", c->batch, c->heads, T, d);
    check_value(worst <= TOLERANCE, what, worst, TOLERANCE);
    const char *names[3] = {"dq", "dk", "dv"};
    const double *refs[3] = {dq_ref, dk_ref, dv_ref};
    for (int i = 0; i < 3; i++) {
        e = rel_l2_strided(dqkv + i * HD, 3L * HD, refs[i], rows, HD);
        snprintf(what, sizeof what, "flash B %d H %d n %d d %d: %s rel l2", c->batch, c->heads, T, d, names[i]);
        check_value(e <= TOLERANCE, what, e, TOLERANCE);
    }

    /* RoPE on the same q rows (stride 3 HD): forward into o's buffer, back into dq's columns. */
    float *x = malloc(dense * sizeof(float)), *y = malloc(dense * sizeof(float)), *qf = malloc(fused * sizeof(float));
    for (size_t i = 0; i < fused; i++) qf[i] = tn_bf16_to_f32(qkv[i]);
    rope_forward_cpu(y, qf, 3 * HD, (int)rows, T, c->heads, d, TN_ROPE_THETA);
    double *y_ref = malloc(dense * sizeof(double));
    for (size_t i = 0; i < dense; i++) y_ref[i] = y[i];
    CUDA_CHECK(cudaMemset(o_gpu, 0xff, dense * 2));
    MUST(rope_forward_cuda(o_gpu, qkv_gpu, 3 * HD, (int)rows, T, c->heads, d, TN_ROPE_THETA, 0, &err));
    CUDA_CHECK(cudaMemcpy(o, o_gpu, dense * 2, cudaMemcpyDeviceToHost));
    e = rel_l2_strided(o, HD, y_ref, rows, HD);
    snprintf(what, sizeof what, "rope forward n %d d %d rel l2", T, d);
    check_value(e <= TOLERANCE, what, e, TOLERANCE);
    for (size_t i = 0; i < dense; i++) x[i] = tn_bf16_to_f32(dout[i]);
    rope_backward_cpu(qf, 3 * HD, x, (int)rows, T, c->heads, d, TN_ROPE_THETA);
    for (long r = 0; r < rows; r++)
        for (int i = 0; i < HD; i++) y_ref[r * HD + i] = qf[r * 3 * HD + i];
    CUDA_CHECK(cudaMemset(dqkv_gpu, 0xff, fused * 2));
    MUST(rope_backward_cuda(dqkv_gpu, 3 * HD, dout_gpu, (int)rows, T, c->heads, d, TN_ROPE_THETA, 0, &err));
    CUDA_CHECK(cudaMemcpy(dqkv, dqkv_gpu, fused * 2, cudaMemcpyDeviceToHost));
    e = rel_l2_strided(dqkv, 3L * HD, y_ref, rows, HD);
    snprintf(what, sizeof what, "rope backward n %d d %d rel l2", T, d);
    check_value(e <= TOLERANCE, what, e, TOLERANCE);

    free(x), free(y), free(qf), free(y_ref);
    cudaFree(qkv_gpu), cudaFree(dqkv_gpu), cudaFree(dout_gpu), cudaFree(o_gpu), cudaFree(lse_gpu), cudaFree(scratch);
    free(qkv), free(dout), free(o), free(dqkv), free(lse);
    free(o_ref), free(lse_ref), free(dq_ref), free(dk_ref), free(dv_ref);
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : test_seed();
    printf("check_baseline: seed %llu\n", (unsigned long long)seed);
    TnRng rng;
    tn_rng_seed(&rng, seed, 1);
    const KernelCase kernels[] = {
        {1, 1, 1, 64},  {2, 2, 1, 128}, {2, 3, 77, 64},  {1, 2, 129, 128},
        {2, 2, 64, 64}, {1, 2, 65, 128}, {1, 1, 333, 128}, {3, 2, 191, 64},
    };
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) check_flash(&kernels[i], &rng);
    const StepCase models[] = {
        {"baseline d64", 1000, 128, 3, 2, 352, 2, 100, 0, "arch=transformer", 0, 0},
        {"baseline d128", 700, 256, 2, 2, 704, 1, 150, 0, "arch=transformer", 0, 0},
        {"baseline d64 many heads, short", 512, 512, 2, 8, 1376, 3, 37, 0, "arch=transformer", 0, 0},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) step_check_run(&models[i], seed + i);
    for (size_t i = 0; i < 2; i++) step_check_determinism(&models[i], seed + 100 + i);
    return TEST_DONE("check_baseline");
}
