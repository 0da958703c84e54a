/* bench/attention_cpu: the paper's Fig. 4 on the CPU, speed and memory of
 * causal linear attention with decay, O = (Q K^T ⊙ M) V (Eq. 10), against
 * the sequence length n, forward and forward+backward, three forms side by
 * side on the same random inputs:
 *  - naive: the whole masked n x n matrix of every (sequence, head), the way
 *    PyTorch's autograd evaluates Eq. 10 (the paper's baseline): two BLAS-3
 *    products, O(n^2) memory; the matrix is kept for the backward pass, as
 *    autograd keeps it. Written here from attention.h's pieces.
 *  - parallel: TN_ATTN_PARALLEL of kernels/cpu/attention.h, the paper's
 *    blockwise Alg. 1-2 (tiles of --block): O(n^2) time, no n x n matrix.
 *  - chunked: TN_ATTN_CHUNKED, Lightning Attention-2 (chunks of --block),
 *    linear in n.
 * Memory: "requested" is what each form allocates beyond the inputs and
 * outputs it shares with the others (kernel scratch; the naive form's
 * matrices), forward and backward scratch both held for fwd+bwd as the
 * model's arenas hold them; "measured" is the growth of the process's peak
 * resident set during the call (VmHWM, reset through /proc/self/clear_refs).
 * Times are the fastest of the calls made in --seconds-per-figure (other
 * work on a shared machine only adds time). Each form's outputs (O, dQ, dK, dV) are compared
 * with the naive form's, so the table compares equal functions.
 */
#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "kernels/cpu/attention.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/progress.h"
#include "util/rng.h"

enum { N_FORMS = 3, MAX_LENGTHS = 16 };

typedef struct Problem {
    TnAttnShape shape;
    int block, threads;
    float *q, *k, *v, *o, *dout, *dq, *dk, *dv, *lambda;
} Problem;

/* One way to compute the attention: the naive form written here, or one
 * of tnllm's kernels. */
typedef struct Form {
    const char *name;
    int naive;
    TnAttnAlgo algo; /* of a kernel */
} Form;

static const Form FORMS[N_FORMS] = {
    {"naive", 1, TN_ATTN_PARALLEL}, {"parallel", 0, TN_ATTN_PARALLEL}, {"chunked", 0, TN_ATTN_CHUNKED}};

static size_t n_pairs(const Problem *p) { return (size_t)p->shape.batch * p->shape.heads; }
static size_t square(const Problem *p) { return (size_t)p->shape.seq_len * p->shape.seq_len; }

/* The naive form: work = [S of every pair (n x n each)] [per thread: dP
 * (n x n), lambda powers (n + 1)]. */
static size_t naive_forward_bytes(const Problem *p) {
    return (n_pairs(p) * square(p) + (size_t)p->threads * (p->shape.seq_len + 1)) * sizeof(float);
}

static size_t naive_training_bytes(const Problem *p) {
    return naive_forward_bytes(p) + (size_t)p->threads * square(p) * sizeof(float);
}

/* Row offsets of pair bh's features in q/k (dk wide) and v/o (dv wide). */
static size_t qk_offset(const TnAttnShape *s, int bh) {
    return (size_t)(bh / s->heads) * s->seq_len * s->ldq + (size_t)(bh % s->heads) * s->dk;
}
static size_t vo_offset(const TnAttnShape *s, int bh) {
    return (size_t)(bh / s->heads) * s->seq_len * s->ldv + (size_t)(bh % s->heads) * s->dv;
}

static float *naive_powers(const Problem *p, float *work) {
    return work + n_pairs(p) * square(p) + (size_t)omp_get_thread_num() * (p->shape.seq_len + 1);
}

/* S = (Q K^T) ⊙ M (kept), O = S V. */
static void naive_forward(const Problem *p, float *work) {
    const TnAttnShape *s = &p->shape;
    int n = s->seq_len, pairs = (int)n_pairs(p);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < pairs; bh++) {
        float *S = work + (size_t)bh * square(p), *pw = naive_powers(p, work);
        size_t qk = qk_offset(s, bh), vo = vo_offset(s, bh);
        attention_decay_powers(pw, p->lambda[bh % s->heads], n);
        attention_masked_scores_cpu(S, p->q + qk, s->ldq, p->k + qk, s->ldk, n, n, s->dk, 0, pw);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, s->dv, n, 1.0f, S, n, p->v + vo, s->ldv, 0.0f,
                    p->o + vo, s->ldo);
    }
}

/* dV = S^T dO, dP = (dO V^T) ⊙ M, dQ = dP K, dK = dP^T Q. */
static void naive_backward(const Problem *p, float *work) {
    const TnAttnShape *s = &p->shape;
    int n = s->seq_len, pairs = (int)n_pairs(p);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < pairs; bh++) {
        const float *S = work + (size_t)bh * square(p);
        float *pw = naive_powers(p, work);
        float *dP = work + (naive_forward_bytes(p) / sizeof(float)) + (size_t)omp_get_thread_num() * square(p);
        size_t qk = qk_offset(s, bh), vo = vo_offset(s, bh);
        attention_decay_powers(pw, p->lambda[bh % s->heads], n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, s->dv, n, 1.0f, S, n, p->dout + vo, s->ldo, 0.0f,
                    p->dv + vo, s->ldv);
        attention_masked_scores_cpu(dP, p->dout + vo, s->ldo, p->v + vo, s->ldv, n, n, s->dv, 0, pw);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, s->dk, n, 1.0f, dP, n, p->k + qk, s->ldk, 0.0f,
                    p->dq + qk, s->ldq);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, s->dk, n, 1.0f, dP, n, p->q + qk, s->ldq, 0.0f,
                    p->dk + qk, s->ldk);
    }
}

/* tnllm's kernels: work = [forward scratch] [backward scratch]. */
static size_t kernel_forward_bytes(const Problem *p, TnAttnAlgo algo) {
    return tn_attention_scratch_floats(&p->shape, algo, p->block, p->threads) * sizeof(float);
}
static size_t kernel_training_bytes(const Problem *p, TnAttnAlgo algo) {
    return kernel_forward_bytes(p, algo) +
           tn_attention_backward_scratch_floats(&p->shape, algo, p->block, p->threads) * sizeof(float);
}
static void kernel_forward(const Problem *p, float *work, TnAttnAlgo algo) {
    attention_forward_cpu(p->o, p->q, p->k, p->v, p->lambda, NULL, &p->shape, algo, p->block, work);
}
static void kernel_backward(const Problem *p, float *work, TnAttnAlgo algo) {
    attention_backward_cpu(p->dq, p->dk, p->dv, p->dout, p->q, p->k, p->v, p->lambda, &p->shape, algo, p->block,
                           work + kernel_forward_bytes(p, algo) / sizeof(float));
}

/* Bytes a form requests for the forward pass, for forward+backward, and
 * the passes themselves on that memory. */
static size_t forward_bytes(const Problem *p, const Form *f) {
    return f->naive ? naive_forward_bytes(p) : kernel_forward_bytes(p, f->algo);
}
static size_t training_bytes(const Problem *p, const Form *f) {
    return f->naive ? naive_training_bytes(p) : kernel_training_bytes(p, f->algo);
}
static void run_forward(const Problem *p, const Form *f, float *work) {
    if (f->naive) naive_forward(p, work);
    else kernel_forward(p, work, f->algo);
}
static void run_backward(const Problem *p, const Form *f, float *work) {
    if (f->naive) naive_backward(p, work);
    else kernel_backward(p, work, f->algo);
}

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') { kib = atol(line + n + 1); break; }
    if (f) fclose(f);
    return kib;
}

/* Starts a peak-RSS measurement: the peak is reset to the current size
 * (Linux >= 4.0); returns the current size in KiB, or -1 if unsupported. */
static long peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    if (fclose(f) != 0 || !ok) return -1;
    return status_kib("VmRSS");
}

typedef struct Measure {
    int ran;               /* 0: skipped (too large or too slow) */
    double seconds;        /* fastest call */
    size_t requested;      /* bytes */
    double measured_mib;   /* peak RSS growth, -1 if not measurable */
} Measure;

/* Times form on p (forward, or forward then backward): the first call
 * allocates the work memory and measures the peak RSS growth; later calls
 * reuse it. Calls repeat until `seconds` are spent (at least one call, at
 * most 100), so that short calls are timed many times and long ones once. */
static Measure measure(const Problem *p, const Form *form, int backward, double seconds) {
    Measure r = {.ran = 1, .seconds = 1e30, .measured_mib = -1};
    r.requested = backward ? training_bytes(p, form) : forward_bytes(p, form);
    long before = peak_reset();
    float *work = tn_malloc(r.requested > 0 ? r.requested : 1);
    double spent = 0;
    for (int i = 0; i < 100 && (i == 0 || spent < seconds); i++) {
        double t0 = tn_now();
        run_forward(p, form, work);
        if (backward) run_backward(p, form, work);
        double t = tn_now() - t0;
        if (i == 0 && before >= 0) r.measured_mib = (status_kib("VmHWM") - before) / 1024.0;
        r.seconds = t < r.seconds ? t : r.seconds;
        spent += t;
    }
    free(work);
    return r;
}

/* Uniform in [-0.5, 0.5), stream `stream` of util/rng.h. */
static void fill_random(float *x, size_t n, uint64_t stream) {
    TnRng rng;
    tn_rng_seed(&rng, 1, stream);
    for (size_t i = 0; i < n; i++) x[i] = (float)tn_rng_uniform(&rng) - 0.5f;
}

/* Relative l2 distance of x from reference, both n floats. */
static double relative_l2(const float *x, const float *reference, size_t n) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - reference[i];
        diff += d * d;
        norm += (double)reference[i] * reference[i];
    }
    return sqrt(diff / (norm > 0 ? norm : 1));
}

static void usage(void) {
    printf("usage: bench/attention_cpu [--lengths LIST] [--batch B] [--heads H] [--head-dim D] [--block C]\n"
           "                           [--max-seconds S] [--max-mib M] [--seconds-per-figure S] [--tsv FILE]\n"
           "                           [-t THREADS]\n\n"
           "Fig. 4 on the CPU: forward and forward+backward time and extra memory of causal linear attention with\n"
           "decay against the sequence length, for the naive n x n form, tnllm's blockwise Alg. 1-2 (parallel)\n"
           "and its chunked Lightning Attention-2, side by side.\n"
           "  --lengths LIST     sequence lengths, k = 1024 (default 256,512,1K,2K,4K,8K,16K)\n"
           "  --batch B          sequences (default 1)\n"
           "  --heads H          heads (default 2)\n"
           "  --head-dim D       dk = dv = D (default 64)\n"
           "  --block C          tile of the parallel form, chunk of the chunked one (default %d)\n"
           "  --max-seconds S    a form whose forward+backward took longer than S skips the longer lengths\n"
           "                     (default 20)\n"
           "  --max-mib M        a form that would request more than M MiB is skipped, its request still printed\n"
           "                     (default 6144)\n"
           "  --seconds-per-figure S  calls are repeated for S seconds (at least 1, at most 100 calls), the\n"
           "                     fastest printed (default 1)\n"
           "  --tsv FILE         also write the rows (n, form, fwd_ms, fwdbwd_ms, fwd_mib, fwdbwd_mib,\n"
           "                     measured_fwd_mib, measured_fwdbwd_mib, rel_l2) to FILE\n"
           "  -t, --threads N    OpenMP threads (default: all cores)\n",
           TN_ATTN_DEFAULT_BLOCK);
}

static double mib(size_t bytes) { return (double)bytes / 1048576.0; }

int main(int argc, char **argv) {
    long long lengths[MAX_LENGTHS] = {256, 512, 1024, 2048, 4096, 8192, 16384};
    int n_lengths = 7, batch = 1, heads = 2, head_dim = 64, block = TN_ATTN_DEFAULT_BLOCK, threads = 0;
    double max_seconds = 20, max_mib = 6144, seconds_per_figure = 1;
    const char *tsv_path = NULL;
    TnArgs a;
    args_init(&a, "bench/attention_cpu", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--lengths")) n_lengths = args_length_list(&a, lengths, MAX_LENGTHS, 1, 1 << 20);
        else if (args_is(&a, NULL, "--batch")) batch = (int)args_int(&a, 1, 1024);
        else if (args_is(&a, NULL, "--heads")) heads = (int)args_int(&a, 1, 1024);
        else if (args_is(&a, NULL, "--head-dim")) head_dim = (int)args_int(&a, 1, 1024);
        else if (args_is(&a, NULL, "--block")) block = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--max-seconds")) max_seconds = args_double(&a, 0.0, 1e6);
        else if (args_is(&a, NULL, "--max-mib")) max_mib = args_double(&a, 0.0, 1e9);
        else if (args_is(&a, NULL, "--seconds-per-figure")) seconds_per_figure = args_double(&a, 0.0, 1e6);
        else if (args_is(&a, NULL, "--tsv")) tsv_path = args_value(&a);
        else if (args_is(&a, "-t", "--threads")) threads = (int)args_int(&a, 1, 4096);
        else args_unknown(&a);
    }
    if (threads) omp_set_num_threads(threads);
    /* Every large buffer its own mapping, returned to the system when freed,
     * so that one measurement's peak is not hidden by the last one's pages. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    TnAtomicFile tsv_file;
    TnError err;
    FILE *tsv = NULL;
    if (tsv_path) {
        if (tn_atomic_open(&tsv_file, tsv_path, &err)) tn_die("bench/attention_cpu: %s", err.msg);
        tsv = tsv_file.fp;
    }
    if (tsv)
        fprintf(tsv, "n\tform\tfwd_ms\tfwdbwd_ms\tfwd_mib\tfwdbwd_mib\tmeasured_fwd_mib\tmeasured_fwdbwd_mib\t"
                     "rel_l2\n");

    int dim = heads * head_dim;
    float *lambda = tn_malloc((size_t)heads * sizeof *lambda);
    /* The released models' rates (SPEC 1, layer 0): lambda_h = exp(-2^(-8(h+1)/H)). */
    for (int h = 0; h < heads; h++) lambda[h] = (float)exp(-pow(2.0, -8.0 * (h + 1) / heads));
    printf("attention on the CPU: %d threads, B=%d H=%d dk=dv=%d, chunk %d, fp32; time = fastest of the calls in %g s; "
           "MiB = requested (measured peak RSS growth)\n", omp_get_max_threads(), batch, heads, head_dim, block,
           seconds_per_figure);
    printf("%7s", "n");
    for (int f = 0; f < N_FORMS; f++) printf(" | %-8s %9s %10s %21s", FORMS[f].name, "fwd ms", "f+b ms", "f+b MiB");
    printf(" | worst rel l2 vs naive\n");
    int stopped[N_FORMS] = {0};
    for (int li = 0; li < n_lengths; li++) {
        int n = (int)lengths[li];
        Problem p = {.shape = {.batch = batch, .heads = heads, .seq_len = n, .dk = head_dim, .dv = head_dim,
                               .ldq = dim, .ldk = dim, .ldv = dim, .ldo = dim},
                     .block = block, .threads = omp_get_max_threads(), .lambda = lambda};
        size_t count = (size_t)batch * n * dim;
        float **buffers[] = {&p.q, &p.k, &p.v, &p.o, &p.dout, &p.dq, &p.dk, &p.dv};
        for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) *buffers[i] = tn_malloc(count * sizeof(float));
        fill_random(p.q, count, 1);
        fill_random(p.k, count, 2);
        fill_random(p.v, count, 3);
        fill_random(p.dout, count, 4);
        /* The outputs' pages resident before any measurement, so that the
         * first form measured is not charged for them. */
        float *outputs[4] = {p.o, p.dq, p.dk, p.dv};
        for (int i = 0; i < 4; i++) memset(outputs[i], 0, count * sizeof(float));
        /* The naive form's outputs, the reference of the others. */
        float *reference = tn_malloc(4 * count * sizeof *reference);
        int have_reference = 0;
        double worst = 0;
        printf("%7d", n);
        for (int f = 0; f < N_FORMS; f++) {
            const Form *form = &FORMS[f];
            Measure fwd = {0}, both = {0};
            size_t need = training_bytes(&p, form);
            double rel = NAN;
            if (!stopped[f] && mib(need) <= max_mib) {
                fwd = measure(&p, form, 0, seconds_per_figure);
                both = measure(&p, form, 1, seconds_per_figure);
                if (both.seconds > max_seconds) stopped[f] = 1;
                if (f == 0) {
                    for (int i = 0; i < 4; i++) memcpy(reference + i * count, outputs[i], count * sizeof(float));
                    have_reference = 1;
                } else if (have_reference) {
                    rel = 0;
                    for (int i = 0; i < 4; i++) {
                        double e = relative_l2(outputs[i], reference + i * count, count);
                        rel = e > rel ? e : rel;
                    }
                    worst = rel > worst ? rel : worst;
                }
            }
            char memory[64];
            if (both.ran)
                snprintf(memory, sizeof memory, "%.2f (%.1f)", mib(both.requested), both.measured_mib);
            else
                snprintf(memory, sizeof memory, "%.2f (-)", mib(need));
            if (both.ran) printf(" | %-8s %9.2f %10.2f %21s", "", fwd.seconds * 1e3, both.seconds * 1e3, memory);
            else printf(" | %-8s %9s %10s %21s", "", stopped[f] ? "slow" : "too big", "-", memory);
            if (tsv) {
                if (both.ran)
                    fprintf(tsv, "%d\t%s\t%.4f\t%.4f\t%.3f\t%.3f\t%.1f\t%.1f\t%.2e\n", n, form->name, fwd.seconds * 1e3,
                            both.seconds * 1e3, mib(fwd.requested), mib(both.requested), fwd.measured_mib,
                            both.measured_mib, rel);
                else
                    fprintf(tsv, "%d\t%s\t\t\t%.3f\t%.3f\t\t\t\n", n, form->name, mib(forward_bytes(&p, form)),
                            mib(need));
            }
            fflush(stdout);
        }
        if (have_reference) printf(" | %.1e\n", worst);
        else printf(" | -\n");
        free(reference);
        for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(*buffers[i]);
    }
    if (tsv && tn_atomic_commit(&tsv_file, &err)) tn_die("bench/attention_cpu: %s", err.msg);
    free(lambda);
    return 0;
}
