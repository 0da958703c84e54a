/* check_attention.c: the GPU attention kernels against a float64 reference.
 *
 * Needs a CUDA device, so it is no `make test` binary: `make cuda` builds it
 * and scripts/device_attention.sh runs it on the device machine. Written in
 * C against lightning_attention.h, so it also proves the header is C.
 *
 * Every case draws fresh random bf16 inputs, poisons the outputs (all bits
 * set: bf16 NaN) before each call and the scratch once (and the states a
 * forward keeps for its backward before that forward: the chunked
 * algorithms run both ways), and compares with the naive formulas in
 * float64 on the bf16-rounded inputs (written here from the definitions, not
 * through the kernels' algebra):
 *   o_t  = sum_{s<=t} l^(t-s) (q_t.k_s) v_s + l^(t+1) q_t S0
 *   S_n  = l^n S0 + sum_s l^(n-1-s) k_s^T v_s
 *   dq_t = sum_{s<=t} l^(t-s) (do_t.v_s) k_s
 *   dk_s = sum_{t>=s} l^(t-s) (do_t.v_s) q_t
 *   dv_s = sum_{t>=s} l^(t-s) (q_t.k_s) do_t
 * Pass: relative l2 error <= 1e-2 (bf16 inputs and outputs); NaN fails.
 * Algorithms: parallel, chunked, recurrent and wgmma (TN_ATTN_CHUNKED_WGMMA:
 * its own kernel where dk = dv = 128, the chunked one elsewhere).
 * Prints one line per comparison and "check_attention: N passed, M failed".
 * Usage: check_attention [SEED [small]]; "small" keeps the cases with
 * n <= 1000, for runs under compute-sanitizer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/lightning_attention.h"
#include "util/bf16.h"
#include "util/rng.h"

#define TOLERANCE 1e-2

static int passed, failed;
/* By TnAttnAlgo, then TN_ATTN_CHUNKED_WGMMA; kernels/cpu/attention.c (which has tn_attn_algo_name) needs
 * BLAS, not linked here. */
static const char *const algo_names[4] = {"parallel", "chunked", "recurrent", "wgmma"};
static double worst[4]; /* by algorithm */

typedef struct Case {
    int batch, heads, seq_len, dk, dv;
    int fused;       /* q, k, v as views into one [rows, 3 * heads * dk] buffer (needs dk == dv) */
    double lambda_lo, lambda_hi; /* decay drawn uniformly between lo and hi; the last head gets lo exactly */
} Case;

typedef struct Host {
    TnAttnShape shape;
    uint16_t *q, *k, *v, *dout; /* bf16, with the case's strides */
    int fused;                  /* k and v are column offsets into q's buffer */
    float *lambda, *state0;     /* state0: [B, H, dk, dv] */
} Host;

static double to_double(uint16_t x) { return (double)tn_bf16_to_f32(x); }

static void fill_bf16(uint16_t *x, size_t n, TnRng *rng, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = tn_f32_to_bf16((float)(scale * tn_rng_normal(rng)));
}

static double rel_l2(const double *got, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void report(const char *what, const Case *c, int algo, double error) {
    int ok = error <= TOLERANCE; /* false for NaN */
    if (ok) passed++;
    else failed++;
    if (!(error <= worst[algo])) worst[algo] = error;
    printf("%-4s %-9s %-14s B=%d H=%d n=%-5d dk=%-3d dv=%-3d lambda=[%.4g,%.4g]%s  rel_l2=%.2e\n", ok ? "ok" : "FAIL",
           algo_names[algo], what, c->batch, c->heads, c->seq_len, c->dk, c->dv, c->lambda_lo,
           c->lambda_hi, c->fused ? " fused" : "", error);
}

/* Element (row, column) of a head: row-major with stride ld, head offset h * width. */
static double at(const uint16_t *x, int ld, long row, int h, int width, int c) {
    return to_double(x[row * ld + (long)h * width + c]);
}

/* Float64 forward: o [B*T, H*dv] dense, state [B, H, dk, dv] (in: S0 or NULL; out: S_n). */
static void reference_forward(const Host *in, const float *state0, double *o, double *state_out) {
    const TnAttnShape *s = &in->shape;
    for (int b = 0; b < s->batch; b++)
        for (int h = 0; h < s->heads; h++) {
            double lambda = in->lambda[h];
            const float *S0 = state0 ? state0 + ((size_t)b * s->heads + h) * s->dk * s->dv : NULL;
            for (int t = 0; t < s->seq_len; t++) {
                long rt = (long)b * s->seq_len + t;
                double *ot = o + rt * s->heads * s->dv + (long)h * s->dv;
                for (int c = 0; c < s->dv; c++) ot[c] = 0;
                for (int u = 0; u <= t; u++) {
                    long ru = (long)b * s->seq_len + u;
                    double dot = 0;
                    for (int c = 0; c < s->dk; c++) dot += at(in->q, s->ldq, rt, h, s->dk, c) * at(in->k, s->ldk, ru, h, s->dk, c);
                    double w = pow(lambda, t - u) * dot;
                    for (int c = 0; c < s->dv; c++) ot[c] += w * at(in->v, s->ldv, ru, h, s->dv, c);
                }
                if (S0)
                    for (int c = 0; c < s->dv; c++) {
                        double sum = 0;
                        for (int r = 0; r < s->dk; r++) sum += at(in->q, s->ldq, rt, h, s->dk, r) * S0[r * s->dv + c];
                        ot[c] += pow(lambda, t + 1) * sum;
                    }
            }
            if (!state_out) continue;
            double *S = state_out + ((size_t)b * s->heads + h) * s->dk * s->dv;
            for (int r = 0; r < s->dk; r++)
                for (int c = 0; c < s->dv; c++) {
                    double sum = S0 ? pow(lambda, s->seq_len) * S0[r * s->dv + c] : 0;
                    for (int u = 0; u < s->seq_len; u++) {
                        long ru = (long)b * s->seq_len + u;
                        sum += pow(lambda, s->seq_len - 1 - u) * at(in->k, s->ldk, ru, h, s->dk, r) *
                               at(in->v, s->ldv, ru, h, s->dv, c);
                    }
                    S[r * s->dv + c] = sum;
                }
        }
}

/* Float64 gradients, dense [B*T, H*dk] (dq, dk) and [B*T, H*dv] (dv). */
static void reference_backward(const Host *in, double *dq, double *dk, double *dv) {
    const TnAttnShape *s = &in->shape;
    memset(dq, 0, sizeof *dq * (size_t)s->batch * s->seq_len * s->heads * s->dk);
    memset(dk, 0, sizeof *dk * (size_t)s->batch * s->seq_len * s->heads * s->dk);
    memset(dv, 0, sizeof *dv * (size_t)s->batch * s->seq_len * s->heads * s->dv);
    for (int b = 0; b < s->batch; b++)
        for (int h = 0; h < s->heads; h++)
            for (int t = 0; t < s->seq_len; t++)
                for (int u = 0; u <= t; u++) {
                    long rt = (long)b * s->seq_len + t, ru = (long)b * s->seq_len + u;
                    double w = pow(in->lambda[h], t - u), qk = 0, dov = 0;
                    for (int c = 0; c < s->dk; c++) qk += at(in->q, s->ldq, rt, h, s->dk, c) * at(in->k, s->ldk, ru, h, s->dk, c);
                    for (int c = 0; c < s->dv; c++) dov += at(in->dout, s->ldo, rt, h, s->dv, c) * at(in->v, s->ldv, ru, h, s->dv, c);
                    for (int c = 0; c < s->dk; c++) {
                        dq[rt * s->heads * s->dk + (long)h * s->dk + c] += w * dov * at(in->k, s->ldk, ru, h, s->dk, c);
                        dk[ru * s->heads * s->dk + (long)h * s->dk + c] += w * dov * at(in->q, s->ldq, rt, h, s->dk, c);
                    }
                    for (int c = 0; c < s->dv; c++)
                        dv[ru * s->heads * s->dv + (long)h * s->dv + c] += w * qk * at(in->dout, s->ldo, rt, h, s->dv, c);
                }
}

/* A device copy of `elements` host bf16 values. */
static uint16_t *upload(const uint16_t *x, size_t elements) {
    uint16_t *d;
    CUDA_CHECK(cudaMalloc((void **)&d, elements * 2));
    CUDA_CHECK(cudaMemcpy(d, x, elements * 2, cudaMemcpyHostToDevice));
    return d;
}

/* Downloads a head-strided bf16 output into a dense double matrix. */
static void download(double *dst, const uint16_t *device, int rows, int ld, int width) {
    uint16_t *host = malloc((size_t)rows * ld * 2);
    CUDA_CHECK(cudaMemcpy(host, device, (size_t)rows * ld * 2, cudaMemcpyDeviceToHost));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < width; c++) dst[(size_t)r * width + c] = to_double(host[(size_t)r * ld + c]);
    free(host);
}

static uint16_t *poisoned(size_t elements) {
    uint16_t *d;
    CUDA_CHECK(cudaMalloc((void **)&d, elements * 2));
    CUDA_CHECK(cudaMemset(d, 0xff, elements * 2));
    return d;
}

static void make_inputs(Host *in, const Case *c, TnRng *rng) {
    TnAttnShape *s = &in->shape;
    *s = (TnAttnShape){c->batch, c->heads, c->seq_len, c->dk, c->dv, c->heads * c->dk, c->heads * c->dk,
                       c->heads * c->dv, c->heads * c->dv};
    size_t rows = (size_t)c->batch * c->seq_len;
    if (c->fused) s->ldq = s->ldk = s->ldv = 3 * c->heads * c->dk;
    in->fused = c->fused;
    in->q = malloc(rows * s->ldq * 2);
    in->k = c->fused ? in->q + c->heads * c->dk : malloc(rows * s->ldk * 2);
    in->v = c->fused ? in->q + 2 * c->heads * c->dk : malloc(rows * s->ldv * 2);
    fill_bf16(in->q, rows * s->ldq, rng, 0.5);
    if (!c->fused) {
        fill_bf16(in->k, rows * s->ldk, rng, 0.5);
        fill_bf16(in->v, rows * s->ldv, rng, 0.5);
    }
    in->dout = malloc(rows * s->ldo * 2);
    fill_bf16(in->dout, rows * s->ldo, rng, 0.5);
    in->lambda = malloc(sizeof(float) * c->heads);
    for (int h = 0; h < c->heads; h++)
        in->lambda[h] = h == c->heads - 1 ? (float)c->lambda_lo
                                          : (float)(c->lambda_lo + (c->lambda_hi - c->lambda_lo) * tn_rng_uniform(rng));
    size_t state = (size_t)c->batch * c->heads * c->dk * c->dv;
    in->state0 = malloc(state * sizeof(float));
    for (size_t i = 0; i < state; i++) in->state0[i] = (float)tn_rng_normal(rng);
}

static void free_inputs(Host *in) {
    free(in->q);
    if (!in->fused) {
        free(in->k);
        free(in->v);
    }
    free(in->dout);
    free(in->lambda);
    free(in->state0);
}

typedef struct Device {
    uint16_t *q, *k, *v, *dout;
    int fused;
    float *lambda;
    void *scratch;
    size_t scratch_bytes;
} Device;

static Device to_device(const Host *in, TnAttnAlgo algo) {
    const TnAttnShape *s = &in->shape;
    size_t rows = (size_t)s->batch * s->seq_len;
    Device d;
    d.fused = in->fused;
    d.q = upload(in->q, rows * s->ldq);
    d.k = d.fused ? d.q + (in->k - in->q) : upload(in->k, rows * s->ldk);
    d.v = d.fused ? d.q + (in->v - in->q) : upload(in->v, rows * s->ldv);
    d.dout = upload(in->dout, rows * s->ldo);
    CUDA_CHECK(cudaMalloc((void **)&d.lambda, sizeof(float) * s->heads));
    CUDA_CHECK(cudaMemcpy(d.lambda, in->lambda, sizeof(float) * s->heads, cudaMemcpyHostToDevice));
    size_t scratch = d.scratch_bytes = attention_cuda_scratch_bytes(s, algo);
    d.scratch = NULL;
    if (scratch) {
        /* poisoned too (fp32 NaN): a kernel that reads scratch it did not write fails */
        CUDA_CHECK(cudaMalloc(&d.scratch, scratch));
        CUDA_CHECK(cudaMemset(d.scratch, 0xff, scratch));
    }
    return d;
}

static void free_device(Device *d) {
    if (!d->fused) {
        cudaFree(d->k);
        cudaFree(d->v);
    }
    cudaFree(d->q);
    cudaFree(d->dout);
    cudaFree(d->lambda);
    cudaFree(d->scratch);
}

/* kept: NULL, or the states the forward keeps for the backward (kept_bytes; then no state_device). */
static int run_forward(const Host *in, Device *d, TnAttnAlgo algo, float *state_device, float *kept, size_t kept_bytes,
                       double *o) {
    const TnAttnShape *s = &in->shape;
    int rows = s->batch * s->seq_len;
    uint16_t *out = poisoned((size_t)rows * s->ldo);
    TnError err;
    int rc = kept ? attention_forward_keeping_cuda(out, d->q, d->k, d->v, d->lambda, kept, kept_bytes, s, algo,
                                                   d->scratch, d->scratch_bytes, 0, &err)
                  : attention_forward_cuda(out, d->q, d->k, d->v, d->lambda, state_device, s, algo, d->scratch,
                                           d->scratch_bytes, 0, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CUDA_CHECK(cudaDeviceSynchronize());
    download(o, out, rows, s->ldo, s->heads * s->dv);
    cudaFree(out);
    return rc;
}

static float *state_on_device(const float *state, size_t elements) {
    float *d;
    CUDA_CHECK(cudaMalloc((void **)&d, elements * sizeof(float)));
    if (state) CUDA_CHECK(cudaMemcpy(d, state, elements * sizeof(float), cudaMemcpyHostToDevice));
    else CUDA_CHECK(cudaMemset(d, 0xff, elements * sizeof(float)));
    return d;
}

static double state_error(const float *device, const double *ref, size_t elements) {
    float *host = malloc(elements * sizeof(float));
    double *got = malloc(elements * sizeof(double));
    CUDA_CHECK(cudaMemcpy(host, device, elements * sizeof(float), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < elements; i++) got[i] = host[i];
    double e = rel_l2(got, ref, elements);
    free(host);
    free(got);
    return e;
}

/* The rows [t0, t0 + count) of every sequence as a [batch * count, ld] matrix. */
static uint16_t *gather_rows(const uint16_t *x, int ld, int batch, int seq_len, int t0, int count) {
    uint16_t *out = malloc((size_t)batch * count * ld * 2);
    for (int b = 0; b < batch; b++)
        memcpy(out + (size_t)b * count * ld, x + ((size_t)b * seq_len + t0) * ld, (size_t)count * ld * 2);
    return out;
}

/* Chunked prefill of the first seq_len - steps tokens from S0, then `steps`
 * decode steps (recurrent, seq_len 1 each); outputs and final state against
 * the reference of the whole sequence. */
static void check_prefill_decode(const Case *c, const Host *in, const double *o_ref, const double *state_ref) {
    const TnAttnShape *s = &in->shape;
    int steps = s->seq_len < 4 ? s->seq_len : 3, prefill = s->seq_len - steps;
    size_t state_size = (size_t)s->batch * s->heads * s->dk * s->dv, width = (size_t)s->heads * s->dv;
    float *state = state_on_device(in->state0, state_size);
    double *o = malloc(sizeof(double) * s->batch * s->seq_len * width);
    int failures = 0;
    for (int part = 0; part <= steps; part++) {
        int t0 = part == 0 ? 0 : prefill + part - 1, count = part == 0 ? prefill : 1;
        if (count == 0) continue;
        Host slice = *in;
        slice.shape.seq_len = count;
        int dk_cols = s->heads * s->dk, ld = 2 * dk_cols + (int)width; /* one gathered q|k|v buffer */
        slice.shape.ldq = slice.shape.ldk = slice.shape.ldv = ld;
        slice.shape.ldo = (int)width;
        slice.fused = 1;
        uint16_t *packed = malloc((size_t)s->batch * count * ld * 2);
        uint16_t *gq = gather_rows(in->q, s->ldq, s->batch, s->seq_len, t0, count);
        uint16_t *gk = gather_rows(in->k, s->ldk, s->batch, s->seq_len, t0, count);
        uint16_t *gv = gather_rows(in->v, s->ldv, s->batch, s->seq_len, t0, count);
        for (int r = 0; r < s->batch * count; r++) {
            memcpy(packed + (size_t)r * ld, gq + (size_t)r * s->ldq, dk_cols * 2);
            memcpy(packed + (size_t)r * ld + dk_cols, gk + (size_t)r * s->ldk, dk_cols * 2);
            memcpy(packed + (size_t)r * ld + 2 * dk_cols, gv + (size_t)r * s->ldv, width * 2);
        }
        slice.q = packed;
        slice.k = packed + dk_cols;
        slice.v = packed + 2 * dk_cols;
        TnAttnAlgo algo = part == 0 ? TN_ATTN_CHUNKED : TN_ATTN_RECURRENT;
        Device d = to_device(&slice, algo);
        double *part_o = malloc(sizeof(double) * s->batch * count * width);
        failures += run_forward(&slice, &d, algo, state, NULL, 0, part_o) != 0;
        for (int b = 0; b < s->batch; b++)
            memcpy(o + ((size_t)b * s->seq_len + t0) * width, part_o + (size_t)b * count * width,
                   sizeof(double) * count * width);
        free(part_o);
        free_device(&d);
        free(packed);
        free(gq);
        free(gk);
        free(gv);
    }
    report("prefill+decode", c, TN_ATTN_RECURRENT, failures ? NAN : rel_l2(o, o_ref, (size_t)s->batch * s->seq_len * width));
    report("  final state", c, TN_ATTN_RECURRENT, state_error(state, state_ref, state_size));
    cudaFree(state);
    free(o);
}

static void check_case(const Case *c, TnRng *rng) {
    Host in;
    make_inputs(&in, c, rng);
    const TnAttnShape *s = &in.shape;
    size_t rows = (size_t)s->batch * s->seq_len, o_size = rows * s->heads * s->dv, q_size = rows * s->heads * s->dk;
    size_t state_size = (size_t)s->batch * s->heads * s->dk * s->dv;
    double *o_ref = malloc(sizeof(double) * o_size), *o = malloc(sizeof(double) * o_size);
    double *state_ref = malloc(sizeof(double) * state_size);
    double *g_ref[3], *g[3];
    for (int i = 0; i < 3; i++) {
        size_t n = i == 2 ? o_size : q_size;
        g_ref[i] = malloc(sizeof(double) * n);
        g[i] = malloc(sizeof(double) * n);
    }
    reference_backward(&in, g_ref[0], g_ref[1], g_ref[2]);
    reference_forward(&in, NULL, o_ref, NULL);
    const char *gradient_names[2][3] = {{"backward dq", "backward dk", "backward dv"},
                                        {"kept dq", "kept dk", "kept dv"}};
    /* wgmma's backward: its dQ pass, the chunked dK/dV. The chunked ones
     * also run keeping the forward's states for the backward (poisoned
     * before the forward: the backward reads only what it wrote). */
    for (int algo = TN_ATTN_PARALLEL; algo <= (int)TN_ATTN_CHUNKED_WGMMA; algo++)
        for (int keep = 0; keep <= (algo == TN_ATTN_CHUNKED || algo == TN_ATTN_CHUNKED_WGMMA); keep++) {
            Device d = to_device(&in, (TnAttnAlgo)algo);
            size_t kept_bytes = keep ? attention_cuda_kept_bytes(s, (TnAttnAlgo)algo) : 0;
            float *kept = NULL;
            if (keep) {
                CUDA_CHECK(cudaMalloc((void **)&kept, kept_bytes ? kept_bytes : 16));
                CUDA_CHECK(cudaMemset(kept, 0xff, kept_bytes ? kept_bytes : 16));
            }
            int rc = run_forward(&in, &d, (TnAttnAlgo)algo, NULL, kept, kept_bytes, o);
            report(keep ? "forward, kept" : "forward", c, algo, rc ? NAN : rel_l2(o, o_ref, o_size));
            if (algo != TN_ATTN_RECURRENT) {
                uint16_t *grads[3] = {poisoned(rows * s->ldq), poisoned(rows * s->ldk), poisoned(rows * s->ldv)};
                TnError err;
                rc = keep ? attention_backward_kept_cuda(grads[0], grads[1], grads[2], d.dout, d.q, d.k, d.v, d.lambda,
                                                         kept, kept_bytes, s, (TnAttnAlgo)algo, d.scratch,
                                                         d.scratch_bytes, 0, &err)
                          : attention_backward_cuda(grads[0], grads[1], grads[2], d.dout, d.q, d.k, d.v, d.lambda, s,
                                                    (TnAttnAlgo)algo, d.scratch, d.scratch_bytes, 0, &err);
                if (rc) fprintf(stderr, "%s\n", err.msg);
                CUDA_CHECK(cudaDeviceSynchronize());
                const int lds[3] = {s->ldq, s->ldk, s->ldv}, widths[3] = {s->dk, s->dk, s->dv};
                for (int i = 0; i < 3; i++) {
                    download(g[i], grads[i], (int)rows, lds[i], s->heads * widths[i]);
                    report(gradient_names[keep][i], c, algo,
                           rc ? NAN : rel_l2(g[i], g_ref[i], rows * s->heads * widths[i]));
                    cudaFree(grads[i]);
                }
            }
            cudaFree(kept);
            free_device(&d);
        }
    /* With an initial state: chunked (segments and scan), recurrent, wgmma. */
    reference_forward(&in, in.state0, o_ref, state_ref);
    for (int algo = TN_ATTN_CHUNKED; algo <= (int)TN_ATTN_CHUNKED_WGMMA; algo++) {
        Device d = to_device(&in, (TnAttnAlgo)algo);
        float *state = state_on_device(in.state0, state_size);
        int rc = run_forward(&in, &d, (TnAttnAlgo)algo, state, NULL, 0, o);
        report("forward+S0", c, algo, rc ? NAN : rel_l2(o, o_ref, o_size));
        report("  final state", c, algo, state_error(state, state_ref, state_size));
        cudaFree(state);
        free_device(&d);
    }
    check_prefill_decode(c, &in, o_ref, state_ref);
    for (int i = 0; i < 3; i++) {
        free(g_ref[i]);
        free(g[i]);
    }
    free(o_ref);
    free(o);
    free(state_ref);
    free_inputs(&in);
}

/* Shapes and pointers the kernels cannot take come back as -1 with a message. */
static void check_rejections(void) {
    TnAttnShape shape = {1, 2, 16, 96, 64, 192, 192, 128, 128};
    TnError err;
    uint16_t *x;
    float *lambda;
    CUDA_CHECK(cudaMalloc((void **)&x, 4096 * 2));
    CUDA_CHECK(cudaMalloc((void **)&lambda, 8));
    int rc = attention_forward_cuda(x, x, x, x, lambda, NULL, &shape, TN_ATTN_CHUNKED, NULL, 0, 0, &err);
    int ok = rc == -1 && strstr(err.msg, "dk = 96");
    shape.dk = 64;
    shape.ldq = 130;
    rc = attention_forward_cuda(x, x, x, x, lambda, NULL, &shape, TN_ATTN_CHUNKED, NULL, 0, 0, &err);
    ok = ok && rc == -1 && strstr(err.msg, "ldq");
    shape.ldq = 128;
    rc = attention_forward_cuda(x, x + 1, x, x, lambda, NULL, &shape, TN_ATTN_CHUNKED, NULL, 0, 0, &err);
    ok = ok && rc == -1 && strstr(err.msg, "aligned");
    rc = attention_backward_cuda(x, x, x, x, x, x, x, lambda, &shape, TN_ATTN_RECURRENT, NULL, 0, 0, &err);
    ok = ok && rc == -1;
    rc = attention_forward_keeping_cuda(x, x, x, x, lambda, NULL, 0, &shape, TN_ATTN_PARALLEL, NULL, 0, 0, &err);
    ok = ok && rc == -1 && strstr(err.msg, "kept");
    /* a long sequence over few heads is cut into segments, whose states need scratch: one byte short is refused
     * (before any launch: x is far smaller than the shape) */
    shape.seq_len = 8192;
    size_t need = attention_cuda_scratch_bytes(&shape, TN_ATTN_CHUNKED);
    ok = ok && need > 0;
    if (need > 0) { /* need - 1 would wrap around */
        rc = attention_forward_cuda(x, x, x, x, lambda, NULL, &shape, TN_ATTN_CHUNKED, x, need - 1, 0, &err);
        ok = ok && rc == -1 && strstr(err.msg, "scratch");
        rc = attention_backward_cuda(x, x, x, x, x, x, x, lambda, &shape, TN_ATTN_CHUNKED, x, need - 1, 0, &err);
        ok = ok && rc == -1 && strstr(err.msg, "scratch");
    }
    /* and so are kept states one byte short, forward and backward */
    size_t kept_need = attention_cuda_kept_bytes(&shape, TN_ATTN_CHUNKED);
    ok = ok && kept_need > 0;
    if (kept_need > 0) {
        rc = attention_forward_keeping_cuda(x, x, x, x, lambda, (float *)x, kept_need - 1, &shape, TN_ATTN_CHUNKED, x,
                                            need, 0, &err);
        ok = ok && rc == -1 && strstr(err.msg, "kept");
        rc = attention_backward_kept_cuda(x, x, x, x, x, x, x, lambda, (float *)x, kept_need - 1, &shape,
                                          TN_ATTN_CHUNKED, x, need, 0, &err);
        ok = ok && rc == -1 && strstr(err.msg, "kept");
    }
    printf("%-4s rejections: bad dk, bad stride, misaligned pointer, recurrent backward, kept states of a "
           "non-chunked algorithm, scratch one byte short (%zu bytes needed), kept states one byte short (%zu)\n",
           ok ? "ok" : "FAIL", need, kept_need);
    if (ok) passed++;
    else failed++;
    cudaFree(x);
    cudaFree(lambda);
}

int main(int argc, char **argv) {
    unsigned long long seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 0;
    int small = argc > 2 && strcmp(argv[2], "small") == 0;
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    const Case cases[] = {
        {2, 3, 257, 64, 64, 0, 0.85, 0.999},    /* odd n, two chunks and a partial one */
        {1, 2, 1000, 128, 128, 1, 1.0, 0.9999}, /* lambda exactly 1 and close to it; fused q|k|v rows */
        {1, 1, 1, 256, 64, 0, 0.5, 0.9},        /* n = 1 */
        {2, 2, 130, 256, 128, 0, 0.0, 0.01},    /* dk != dv, lambda close to 0 and exactly 0 */
        {1, 2, 2100, 128, 64, 0, 0.95, 0.9999}, /* many segments in the chunked scan */
        {1, 2, 512, 128, 128, 0, 0.9, 0.999},   /* two segments: no scan, one state pass block each */
        {3, 1, 64, 64, 128, 0, 0.7, 0.99},      /* exactly one chunk */
        {1, 2, 1000, 256, 128, 0, 0.9, 0.999},  /* segments (and kept states) at the LRPE layer's width */
        {1, 4, 1000, 64, 64, 0, 0.9, 0.999},    /* segments (and kept states) at the narrowest width */
        /* dk = dv = 128, the wgmma kernel's shape (the others run the chunked kernels under its name) */
        {2, 3, 257, 128, 128, 0, 0.85, 0.999},   /* odd n, a partial last chunk */
        {1, 1, 1, 128, 128, 0, 0.5, 0.9},        /* n = 1 */
        {2, 2, 130, 128, 128, 0, 0.0, 0.01},     /* lambda close to 0 and exactly 0 */
        {1, 2, 2100, 128, 128, 0, 0.95, 0.9999}, /* many segments: state pass and scan, then wgmma outputs */
    };
    check_rejections();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!small || cases[i].seq_len <= 1000) check_case(&cases[i], &rng);
    printf("worst rel_l2: parallel %.2e, chunked %.2e, recurrent %.2e, wgmma %.2e (tolerance %.0e)\n", worst[0],
           worst[1], worst[2], worst[3], TOLERANCE);
    printf("check_attention: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
