/* test_tensor_parallel: the tensor parallelism of §3.2.2 (dist/
 * tensor_parallel.h, the split model of transnormer.h, `tnllm train --tp`).
 *
 * 1. The split, in this process: for T = 2 and 3, every element of every
 *    part (fresh random whole buffers) is the whole tensor's element its
 *    role says (W_qkvu: the heads' rows of each q/k/u/v block; W_out, W3:
 *    columns; theta, W1, W2, the mixer norm: rows; the rest whole),
 *    computed here by index arithmetic; placing the T parts rebuilds the
 *    whole buffer exactly. Configurations that cannot be split are refused
 *    with the reason (H or G not divisible, LayerNorm, the Transformer).
 *    The split norm's stages against float64 (check_split_norm).
 * 2. The split model, under `mpirun -np 2` and `-np 3` (this binary starts
 *    itself; each rank prints its own "N passed, M failed" line, read back
 *    here): a model with H = 6 (not a power of two), an LRPE layer and
 *    random norm gains, run whole on every rank and split over the ranks,
 *    with SRMSNorm and the gate, and with RMSNorm and no gate. Loss, logits
 *    and final residual stream agree within 1e-5 relative l2, every
 *    gradient (the split ones against the slice of the whole model's)
 *    within 1e-4: float32 rounding of sums taken in another order (a
 *    product's parts added by the all-reduce), larger for LRPE's theta,
 *    whose gradient adds position-weighted terms that cancel (seen up to
 *    1e-5). The replicated tensors' gradients are bit-identical on
 *    every rank (tensor_parallel.h relies on it to keep them equal).
 * 3. Training, `tnllm train` under mpirun, 20 steps on a fresh random
 *    corpus (constant learning rate): --tp 2 on 2 ranks, 2-rank data
 *    parallel, --tp 2 with ZeRO-2 and ZeRO-3 on 4 ranks (2 data groups)
 *    and --tp 3 on 3 ranks against one process: losses
 *    within a relative 5e-5 and final weights within 1e-4 of the largest
 *    weight (float32 reduction order amplified by the steps; a step moves
 *    a weight by about 3e-3). A run checkpointed by one process at step 10
 *    and resumed with --tp 2 must land on the same weights, and the
 *    reverse (--tp 2 --zero 1 resumed by one process). The start-up line
 *    names the layout; H, G, --tp/-np and --dp/-np mismatches and --device
 *    cuda with ZeRO-2 are refused with the reason (before any GPU is
 *    started).
 *    The global norm's runs of split and replicated tensors
 *    (tn_tp_split_runs) of each part layout, whole and a random range.
 * mpirun is required (CI installs OpenMPI): without it the test fails.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/tensor_parallel.h"
#include "kernels/cpu/norm.h"
#include "model/checkpoint.h"
#include "test.h"
#include "train_runs.h"
#include "util/rng.h"

#define STEPS 20
#define LOSS_TOLERANCE 5e-5
#define WEIGHT_TOLERANCE 1e-4
#define MODEL_TOLERANCE 1e-5
#define GRADIENT_TOLERANCE 1e-4

/* H = 6 heads of d = 8, G = 96 (divisible by 2 and 3), LRPE on layer 0. */
static TnConfig split_config(int vocab) { return test_config(vocab, 48, 2, 6, 96, 1); }

static void fill_random(float *buf, size_t n, uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(tn_rng_uniform(&rng) * 2.0 - 1.0);
}

/* The index in the whole tensor t of element e of part `index` of parts,
 * by the roles of tensor_parallel.h. */
static size_t whole_index(const TnTensorInfo *t, const TnConfig *cfg, int parts, int index, size_t e) {
    size_t D = (size_t)cfg->dim, G = (size_t)cfg->glu_dim, Dm = D / parts, Gp = G / parts;
    size_t d = (size_t)tn_head_dim(cfg), heads = (size_t)cfg->n_heads / parts;
    switch (t->kind) {
    case TN_PARAM_QKVU: { /* part rows: q, k, v, u blocks of Dm rows, each row D wide */
        size_t row = e / D, block = row / Dm;
        return (block * D + index * Dm + row % Dm) * D + e % D;
    }
    case TN_PARAM_OUT: return e / Dm * D + index * Dm + e % Dm;
    case TN_PARAM_L3: return e / Gp * G + index * Gp + e % Gp;
    case TN_PARAM_THETA: return (index * heads + e / d) * d + e % d;
    case TN_PARAM_L1: case TN_PARAM_L2: return index * Gp * D + e;
    case TN_PARAM_NORM_GAIN: case TN_PARAM_NORM_BIAS:
        return t->norm_site == TN_NORM_SITE_MIXER ? index * Dm + e : e;
    default: return e;
    }
}

/* tn_tp_split_runs over range of layout: runs in order, covering range
 * exactly, neighbours of different kinds (else merged), each element's
 * kind its tensor's (tn_tp_is_split), at most n_tensors of them. */
static void check_split_runs(const TnParamLayout *layout, TnRange range, const char *what) {
    TnTpRun *runs = tn_malloc((size_t)layout->n_tensors * sizeof *runs);
    int n = tn_tp_split_runs(layout, range, runs), wrong_kind = 0, covered = 1, merged = 1;
    size_t at = range.begin;
    for (int k = 0; k < n; k++) {
        covered &= runs[k].begin == at && runs[k].end > runs[k].begin;
        merged &= k == 0 || runs[k].split != runs[k - 1].split;
        for (size_t e = runs[k].begin; e < runs[k].end; e++)
            wrong_kind += tn_tp_is_split(tn_param_tensor_at(layout, e)) != runs[k].split;
        at = runs[k].end;
    }
    CHECK(n <= layout->n_tensors && covered && at == range.end && merged,
          "%s: %d runs do not cover [%zu, %zu) in order, merged by kind", what, n, range.begin, range.end);
    CHECK(wrong_kind == 0, "%s: %d elements of [%zu, %zu) in a run of the other kind", what, wrong_kind, range.begin,
          range.end);
    free(runs);
}

static void check_split_layout(const char *switches, int parts, uint64_t seed) {
    TnConfig cfg = split_config(37);
    apply_switches(&cfg, switches);
    TnParamLayout whole, part;
    tn_param_layout_init(&whole, &cfg);
    tn_tp_layout(&part, &whole, &cfg, parts);
    float *original = tn_malloc(whole.total * sizeof *original), *rebuilt = tn_calloc(whole.total, sizeof *rebuilt);
    float *piece = tn_malloc(part.total * sizeof *piece);
    fill_random(original, whole.total, seed);
    size_t split = 0, numel = 0;
    int mismatches = 0, ordered = part.n_tensors == whole.n_tensors;
    for (int i = 0; i < part.n_tensors; i++) {
        split += tn_tp_is_split(&whole.tensors[i]) ? whole.tensors[i].numel : 0;
        numel += part.tensors[i].numel;
        ordered &= strcmp(part.tensors[i].name, whole.tensors[i].name) == 0 &&
                   part.tensors[i].numel * (tn_tp_is_split(&whole.tensors[i]) ? parts : 1) == whole.tensors[i].numel;
    }
    CHECK(ordered && numel == part.total && part.total == whole.total - split + split / parts,
          "%s, %d parts: the part layout's tensors or sizes are wrong (%zu of %zu)", switches, parts, part.total,
          whole.total);
    for (int l = 0; l <= cfg.n_layers; l++) {
        int first = 0;
        while (first < whole.n_tensors && whole.tensors[first].offset < whole.layer_begin[l]) first++;
        size_t expected = first < part.n_tensors ? part.tensors[first].offset : part.total;
        CHECK(part.layer_begin[l] == expected, "%s, %d parts: layer %d begins at %zu, not %zu", switches, parts, l,
              part.layer_begin[l], expected);
    }
    for (int index = 0; index < parts; index++) {
        tn_tp_slice(piece, &part, original, &whole, &cfg, parts, index);
        for (int i = 0; i < part.n_tensors; i++) {
            const TnTensorInfo *p = &part.tensors[i], *w = &whole.tensors[i];
            for (size_t e = 0; e < p->numel; e++)
                mismatches += piece[p->offset + e] != original[w->offset + whole_index(w, &cfg, parts, index, e)];
        }
        tn_tp_place(rebuilt, &whole, piece, &part, &cfg, parts, index);
    }
    CHECK(mismatches == 0, "%s, %d parts: %d elements of the parts are not the whole tensors' ones", switches, parts,
          mismatches);
    /* the global norm's runs: the whole part, and a random range of it (a ZeRO shard) */
    TnRng rng;
    tn_rng_seed(&rng, seed, 11);
    size_t a = (size_t)(tn_rng_uniform(&rng) * (double)part.total), b = (size_t)(tn_rng_uniform(&rng) * (double)part.total);
    char what[128];
    snprintf(what, sizeof what, "%s, %d parts, the whole part", switches, parts);
    check_split_runs(&part, (TnRange){0, part.total}, what);
    snprintf(what, sizeof what, "%s, %d parts, a range", switches, parts);
    check_split_runs(&part, (TnRange){a < b ? a : b, a < b ? b : a}, what);
    CHECK(memcmp(rebuilt, original, whole.total * sizeof *original) == 0,
          "%s, %d parts: the placed parts do not rebuild the whole buffer", switches, parts);
    free(original);
    free(rebuilt);
    free(piece);
    tn_param_layout_free(&part);
    tn_param_layout_free(&whole);
}

/* The split RMS norm's stages (kernels/cpu/norm.h) on rows of 20 columns
 * cut into parts of 12 and 8, the partial sums added here, against
 * float64: y = g x r, r = 1 / sqrt(mean(x^2) + eps); dx = r g dy -
 * r^3 x sum(g dy x) / 20; dg = sum_rows dy x r. Within 1e-6 relative l2
 * (float32 rounding of 20-term sums). */
static void check_split_norm(uint64_t seed) {
    enum { ROWS = 7, FULL = 20 };
    static const int width[2] = {12, 8}, first[2] = {0, 12};
    float x[ROWS * FULL], dy[ROWS * FULL], gain[FULL], y[ROWS * FULL], dx[ROWS * FULL], dgain[FULL];
    double y64[ROWS * FULL], dx64[ROWS * FULL], dgain64[FULL] = {0};
    fill_random(x, ROWS * FULL, seed);
    fill_random(dy, ROWS * FULL, seed + 1);
    fill_random(gain, FULL, seed + 2);
    for (int r = 0; r < ROWS; r++) {
        const float *xr = x + r * FULL, *dyr = dy + r * FULL;
        double squares = 0, dot = 0;
        for (int c = 0; c < FULL; c++) {
            squares += (double)xr[c] * xr[c];
            dot += (double)gain[c] * dyr[c] * xr[c];
        }
        double rstd = 1.0 / sqrt(squares / FULL + TN_NORM_EPS);
        for (int c = 0; c < FULL; c++) {
            y64[r * FULL + c] = gain[c] * xr[c] * rstd;
            dx64[r * FULL + c] = rstd * gain[c] * dyr[c] - rstd * rstd * rstd * xr[c] * dot / FULL;
            dgain64[c] += dyr[c] * xr[c] * rstd;
        }
    }
    /* each part as a rank holds it: its columns of every row, contiguous */
    float part_x[2][ROWS * FULL], part_dy[2][ROWS * FULL], part_y[ROWS * FULL], part_dx[ROWS * FULL];
    float sums[2][ROWS], full_sums[ROWS], rstd[ROWS];
    for (int p = 0; p < 2; p++)
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < width[p]; c++) {
                part_x[p][r * width[p] + c] = x[r * FULL + first[p] + c];
                part_dy[p][r * width[p] + c] = dy[r * FULL + first[p] + c];
            }
    for (int p = 0; p < 2; p++) rms_norm_part_sums_cpu(sums[p], part_x[p], ROWS, width[p]);
    for (int r = 0; r < ROWS; r++) full_sums[r] = sums[0][r] + sums[1][r];
    memset(dgain, 0, sizeof dgain);
    for (int p = 0; p < 2; p++) { /* both parts write the same rstd */
        rms_norm_part_forward_cpu(part_y, rstd, full_sums, part_x[p], gain + first[p], ROWS, width[p], FULL);
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < width[p]; c++) y[r * FULL + first[p] + c] = part_y[r * width[p] + c];
    }
    for (int p = 0; p < 2; p++) rms_norm_part_dots_cpu(sums[p], part_dy[p], part_x[p], gain + first[p], ROWS, width[p]);
    for (int r = 0; r < ROWS; r++) sums[0][r] += sums[1][r];
    for (int p = 0; p < 2; p++) {
        memset(part_dx, 0, sizeof part_dx);
        rms_norm_part_backward_cpu(part_dx, dgain + first[p], sums[0], part_dy[p], part_x[p], rstd, gain + first[p],
                                   ROWS, width[p], FULL);
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < width[p]; c++) dx[r * FULL + first[p] + c] = part_dx[r * width[p] + c];
    }
    CHECK(rel_l2_f32_f64(y, y64, ROWS * FULL) <= 1e-6, "split norm forward off by %.3g",
          rel_l2_f32_f64(y, y64, ROWS * FULL));
    CHECK(rel_l2_f32_f64(dx, dx64, ROWS * FULL) <= 1e-6, "split norm input gradient off by %.3g",
          rel_l2_f32_f64(dx, dx64, ROWS * FULL));
    CHECK(rel_l2_f32_f64(dgain, dgain64, FULL) <= 1e-6, "split norm gain gradient off by %.3g",
          rel_l2_f32_f64(dgain, dgain64, FULL));
}

static void check_refused(TnConfig cfg, int parts, const char *reason) {
    TnError err = {{0}};
    CHECK(tn_tp_check(&cfg, parts, &err) != 0 && strstr(err.msg, reason), "%d parts: expected a refusal naming "
          "\"%s\", got \"%s\"", parts, reason, err.msg);
}

static double relative_l2(const float *a, const float *b, size_t n) {
    double difference = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        difference += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        norm += (double)b[i] * b[i];
    }
    return norm > 0 ? sqrt(difference / norm) : sqrt(difference);
}

/* One rank of `mpirun`: the whole model against its part over world. */
static void check_split_model(const TnComm *world, const char *switches, uint64_t seed) {
    enum { B = 2, T = 40, V = 37 };
    TnConfig cfg = split_config(V);
    TnModel whole, part;
    switched_model_init(&whole, &cfg, switches, seed);
    randomize_norm_params(whole.params, &whole.layout, seed + 1);
    tn_model_init(&part, &cfg, seed);
    memcpy(part.params, whole.params, whole.layout.total * sizeof *part.params);
    TnError err;
    CHECK(tn_tp_split_model(&part, world, &err) == 0, "split: %s", err.msg);
    int32_t tokens[B * T], targets[B * T];
    TnRng rng;
    tn_rng_seed(&rng, seed, 99);
    for (int i = 0; i < B * T; i++) {
        tokens[i] = (int32_t)tn_rng_below(&rng, V);
        targets[i] = (int32_t)tn_rng_below(&rng, V);
    }
    float *whole_grads = tn_calloc(whole.layout.total, sizeof *whole_grads);
    float *part_grads = tn_calloc(part.layout.total, sizeof *part_grads);
    float *expected = tn_malloc(part.layout.total * sizeof *expected);
    TnModel *models[2] = {&whole, &part};
    float *grads[2] = {whole_grads, part_grads}, loss[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        /* blocks of 16: the chunked attention crosses blocks within T */
        tn_model_set_attention(models[k], TN_ATTN_CHUNKED, 16);
        tn_model_reserve(models[k], B, T);
        tn_model_reserve_backward(models[k]);
        CHECK(tn_model_forward(models[k], tokens, targets, B, T, &loss[k], &err) == 0, "forward: %s", err.msg);
    }
    CHECK(fabs(loss[1] - loss[0]) <= MODEL_TOLERANCE * loss[0], "rank %d, %s: loss %.7f split, %.7f whole",
          world->rank, switches, loss[1], loss[0]);
    CHECK(relative_l2(part.acts.resid_final, whole.acts.resid_final, (size_t)B * T * cfg.dim) <= MODEL_TOLERANCE,
          "rank %d, %s: the final residual stream differs", world->rank, switches);
    /* before the backward turns the logits into their gradient */
    CHECK(relative_l2(part.acts.logits, whole.acts.logits, (size_t)B * T * V) <= MODEL_TOLERANCE,
          "rank %d, %s: the split model's logits differ", world->rank, switches);
    for (int k = 0; k < 2; k++) tn_model_backward(models[k], tokens, targets, B, T, 1.0f / (B * T), grads[k]);
    tn_tp_slice(expected, &part.layout, whole_grads, &whole.layout, &cfg, world->size, world->rank);
    double worst = 0;
    const char *where = "";
    for (int i = 0; i < part.layout.n_tensors; i++) {
        const TnTensorInfo *t = &part.layout.tensors[i];
        double e = relative_l2(part_grads + t->offset, expected + t->offset, t->numel);
        if (e > worst || isnan(e)) worst = e, where = t->name;
    }
    CHECK(worst <= GRADIENT_TOLERANCE, "rank %d, %s: the gradient of %s differs by %.3g", world->rank, switches, where,
          worst);
    /* rank 0's replicated gradients, broadcast: the same bits on every rank */
    memcpy(expected, part_grads, part.layout.total * sizeof *expected);
    CHECK(tn_comm_broadcast(world, expected, part.layout.total, 0, &err) == 0, "broadcast: %s", err.msg);
    int differing = 0;
    for (int i = 0; i < part.layout.n_tensors; i++) {
        const TnTensorInfo *t = &part.layout.tensors[i];
        if (!tn_tp_is_split(t))
            differing += memcmp(expected + t->offset, part_grads + t->offset, t->numel * sizeof *expected) != 0;
    }
    CHECK(differing == 0, "rank %d, %s: %d replicated gradients differ from rank 0's", world->rank, switches,
          differing);
    if (world->rank == 0)
        printf("%d ranks, %-28s loss %.7f vs %.7f, worst gradient difference %.2e\n", world->size, switches, loss[1],
               loss[0], worst);
    free(whole_grads);
    free(part_grads);
    free(expected);
    tn_model_free(&whole);
    tn_model_free(&part);
}

/* Runs this binary under mpirun -np ranks; adds the ranks' counts. */
static void launch(int ranks, uint64_t seed) {
    char self[4096], cmd[8192], output[65536];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    self[length > 0 ? length : 0] = '\0';
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 TN_TP_RANK_SEED=%llu " MPIRUN " -np %d %s",
             (unsigned long long)seed, ranks, self);
    int rc = run_command(cmd, output, sizeof output), reported = 0;
    for (const char *line = output; (line = strstr(line, "tp rank ")); line++) {
        int rank, passed, failed;
        if (sscanf(line, "tp rank %d: %d passed, %d failed", &rank, &passed, &failed) == 3) {
            tn_tests_passed += passed;
            tn_tests_failed += failed;
            reported++;
        }
    }
    for (const char *line = output; (line = strstr(line, " ranks, ")); line++)
        if (line[-1] >= '0' && line[-1] <= '9') printf("%.*s\n", (int)strcspn(line - 1, "\n"), line - 1);
    CHECK(rc == 0 && reported == ranks, "mpirun -np %d: exit %d, %d of %d ranks reported:\n%s", ranks, rc, reported,
          ranks, output);
}

static char output[65536];
static char dir[4096];

/* `tnllm train` on the test's config and corpus with `extra` options. */
static int train(int ranks, const char *name, const char *extra, uint64_t seed) {
    char options[16384];
    snprintf(options, sizeof options,
             "--config %s/config.json --data %s/corpus.txt --ctx 32 --micro-batch 2 --batch-tokens 256 --warmup 0 "
             "--min-lr-ratio 1 --lr 3e-3 --seed %llu --eval-every 10 --eval-windows 2 --log-every 1 %s",
             dir, dir, (unsigned long long)seed, extra);
    return train_run(dir, ranks, name, options, output, sizeof output);
}

static void check_training(uint64_t seed) {
    char path[4200];
    TnError err;
    TnConfig cfg = split_config(259); /* the byte-level tokenizer's ids */
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(tn_config_save(&cfg, path, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    write_word_corpus(path, seed);

    char steps[32];
    snprintf(steps, sizeof steps, "--steps %d", STEPS);
    if (train(0, "single", steps, seed) != 0) {
        CHECK(0, "the single-process run failed");
        return;
    }
    double reference_losses[STEPS + 1];
    read_step_losses(dir, "single", reference_losses, STEPS);
    TnModel reference;
    snprintf(path, sizeof path, "%s/single/model", dir);
    if (tn_model_load(&reference, path, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    const struct { int ranks; const char *name, *options, *layout; } runs[] = {
        {2, "tp2", "--tp 2", "(2 ranks, MPI, ZeRO-0, tensor parallel 2 x data parallel 1: "},
        {2, "dp2", "--dp 2", "(2 ranks, MPI, ZeRO-0): "},
        {4, "tp2_dp2_zero2", "--tp 2 --zero 2", "(4 ranks, MPI, ZeRO-2, tensor parallel 2 x data parallel 2: "},
        {4, "tp2_dp2_zero3", "--tp 2 --dp 2 --zero 3", "(4 ranks, MPI, ZeRO-3, tensor parallel 2 x data parallel 2: "},
        {3, "tp3", "--tp 3", "(3 ranks, MPI, ZeRO-0, tensor parallel 3 x data parallel 1: "},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char options[256];
        snprintf(options, sizeof options, "%s %s", steps, runs[i].options);
        CHECK(train(runs[i].ranks, runs[i].name, options, seed) == 0, "%s failed", runs[i].name);
        CHECK(strstr(output, runs[i].layout), "%s: no memory line with \"%s\":\n%s", runs[i].name, runs[i].layout,
              output);
        compare_with_reference(&reference, reference_losses, STEPS, dir, runs[i].name, LOSS_TOLERANCE,
                               WEIGHT_TOLERANCE);
    }

    /* one process saves at step 10, --tp 2 resumes; and the reverse */
    char half[64], rest[64];
    snprintf(half, sizeof half, "--steps %d", STEPS / 2);
    snprintf(rest, sizeof rest, "--steps %d --resume --tp 2", STEPS);
    CHECK(train(0, "tp2_resumed", half, seed) == 0, "the one-process half run failed");
    CHECK(train(2, "tp2_resumed", rest, seed) == 0, "the --tp 2 resume failed");
    compare_with_reference(&reference, reference_losses, STEPS, dir, "tp2_resumed", LOSS_TOLERANCE, WEIGHT_TOLERANCE);
    snprintf(half, sizeof half, "--steps %d --tp 2 --zero 1", STEPS / 2);
    snprintf(rest, sizeof rest, "--steps %d --resume", STEPS);
    CHECK(train(2, "single_resumed", half, seed) == 0, "the --tp 2 half run failed");
    CHECK(train(0, "single_resumed", rest, seed) == 0, "the one-process resume failed");
    compare_with_reference(&reference, reference_losses, STEPS, dir, "single_resumed", LOSS_TOLERANCE,
                           WEIGHT_TOLERANCE);
    tn_model_free(&reference);

    /* layouts that cannot run, refused with the reason */
    TnConfig odd = cfg;
    odd.glu_dim = 99;
    snprintf(path, sizeof path, "%s/odd_glu.json", dir);
    CHECK(tn_config_save(&odd, path, &err) == 0, "%s", err.msg);
    const struct { int ranks, odd_glu; const char *name, *options, *reason; } refused[] = {
        {4, 0, "heads", "--tp 4", "the 6 attention heads cannot be split evenly over 4 ranks"},
        {2, 1, "glu", "--tp 2", "the SGLU width G = 99 cannot be split evenly over 2 ranks"},
        {2, 0, "ranks", "--tp 3", "--tp 3 does not divide the 2 ranks"},
        {2, 0, "dp", "--tp 2 --dp 2", "--dp 2 x --tp 2 = 4 ranks, but the job has 2"},
        {2, 0, "cuda_zero", "--tp 2 --zero 2 --device cuda", "--tp with --zero 2 on GPUs"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char options[4608], name[64];
        /* a later --config overrides the common one */
        snprintf(options, sizeof options, "--steps 1 %s%s%s", refused[i].options, refused[i].odd_glu ? " --config " : "",
                 refused[i].odd_glu ? path : "");
        snprintf(name, sizeof name, "refused_%s", refused[i].name);
        int rc = train(refused[i].ranks, name, options, seed);
        CHECK(rc != 0 && strstr(output, refused[i].reason), "%s: expected a refusal naming \"%s\"", name,
              refused[i].reason);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    const char *rank_seed = getenv("TN_TP_RANK_SEED");
    if (rank_seed) { /* one rank of launch() */
        TnComm world;
        TnError err;
        if (tn_comm_init(&world, &err)) tn_die("%s", err.msg);
        uint64_t seed = strtoull(rank_seed, NULL, 10);
        check_split_model(&world, "norm=srmsnorm gate=on", seed);
        check_split_model(&world, "norm=rmsnorm gate=off", seed + 2);
        print_rank_counts("tp", world.rank);
        tn_comm_finalize(&world);
        return tn_tests_failed != 0;
    }
    uint64_t seed = test_seed();
    check_split_norm(seed);
    for (int parts = 2; parts <= 3; parts++) {
        check_split_layout("norm=srmsnorm gate=on", parts, seed + parts);
        check_split_layout("norm=rmsnorm gate=off", parts, seed + 10 + parts);
    }
    TnConfig cfg = split_config(37);
    TnError err;
    CHECK(tn_tp_check(&cfg, 1, &err) == 0 && tn_tp_check(&cfg, 2, &err) == 0 && tn_tp_check(&cfg, 3, &err) == 0,
          "H = 6, G = 96 must split 1, 2 and 3 ways: %s", err.msg);
    check_refused(cfg, 4, "6 attention heads cannot be split evenly over 4 ranks");
    TnConfig odd = cfg;
    odd.glu_dim = 100;
    check_refused(odd, 3, "SGLU width G = 100");
    TnConfig layer_norm = cfg;
    apply_switches(&layer_norm, "norm=layernorm");
    check_refused(layer_norm, 2, "not layernorm");
    TnConfig transformer = cfg;
    apply_switches(&transformer, "arch=transformer");
    check_refused(transformer, 2, "Transformer baseline");

    check_mpi_available();
    if (tn_tests_failed) return TEST_DONE(argv[0]);
    launch(2, seed);
    launch(3, seed);
    make_temp_dir(dir, sizeof dir, "tp");
    check_training(seed);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
