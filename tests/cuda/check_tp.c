/* check_tp.c: tensor parallelism on the GPUs (§3.2.2, Eq. 11-18): the
 * CUDA model split over the ranks (model/transnormer_cuda.h TnCudaPart,
 * its sum_parts hook an NCCL all-reduce over the tensor group of
 * dist/tensor_parallel.h) against the whole model on the same GPU.
 *
 * Needs CUDA devices and NCCL: no `make test` binary (tests/cuda/
 * gpu_ranks.h forks one rank per GPU, --gpus T). Every rank builds the same
 * whole model (H = 8 heads of 64, G = 1024, 2 layers, LRPE on layer 1,
 * random norm gains) and its part (tn_tp_slice), with SRMSNorm and the
 * gate, then RMSNorm without it, and runs a fresh random batch (T = 100
 * rows per sequence, not a multiple of the attention's block; ignored
 * targets) through both:
 *  - the loss within 1e-3 relative and the logits within 1e-2 relative l2
 *    of the whole model's: both are the GPU's bf16 products; the parts add
 *    each product's halves in fp32 in another order, which flips the bf16
 *    rounding of a few activations (2^-9 each). A missing or doubled
 *    all-reduce, or a part reading another's heads, is O(1);
 *  - every gradient of the part within 2e-2 relative l2 of the slice of
 *    the whole model's (5e-2 for LRPE's theta: its position-weighted sum
 *    cancels, step_check.h says why; the same bounds as the GPU step
 *    against the CPU's);
 *  - the replicated tensors' gradients bit-identical on every rank (so
 *    that equal updates keep them equal): a hash of their bytes, the same
 *    on all ranks;
 *  - the global gradient norm from the part's runs (tn_tp_split_runs: the
 *    split tensors' squares added over the ranks, the replicated ones
 *    once) within 2e-2 relative of the whole model's;
 *  - recompute norms and layers (the passes' all-reduces run again in the
 *    backward): the loss within 1e-6 and the gradients within 1e-5
 *    relative l2 of the part's own without recompute.
 * A rank count that does not divide H and G (3, 5, 6, 7) skips, saying so.
 * Usage: check_tp [--gpus N] [--seed S]
 */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/tensor_parallel.h"
#include "gpu_ranks.h"
#include "kernels/cpu/crossentropy.h"
#include "model/transnormer_cuda.h"
#include "test.h"
#include "util/hash.h"
#include "util/rng.h"

enum { BATCH = 2, SEQ = 100, VOCAB = 97 };

/* Dies on a failing call: the comparisons below need every result. */
#define MUST(call)                                                                                         \
    do {                                                                                                   \
        if ((call) != 0) tn_die("check_tp: %s failed: %s", #call, err.msg);                              \
    } while (0)

static int sum_over_group(TnModelCuda *g, float *buf, size_t n, void *user, TnError *err) {
    return tn_comm_gpu_all_reduce_sum(user, buf, n, g->stream, err);
}

/* Forward and backward of the batch on g from zeroed gradients; *loss the
 * mean loss, grads (host, g's layout) the gradient. */
static void pass(TnModelCuda *g, const int32_t *tokens, const int32_t *targets, float *loss, float *grads) {
    TnError err;
    MUST(tn_model_cuda_zero_grad(g, &err));
    MUST(tn_model_cuda_forward(g, tokens, targets, BATCH, SEQ, loss, &err));
    MUST(tn_model_cuda_backward(g, BATCH, SEQ, 1.0f / (BATCH * SEQ), &err));
    MUST(tn_model_cuda_download(g, NULL, grads, NULL, NULL, &err));
}

/* The largest relative l2 difference of a tensor of part from reference
 * (both laid out by layout), theta's apart (*theta_worst). */
static double worst_tensor(const TnParamLayout *layout, const float *part, const float *reference,
                           double *theta_worst, const char **worst_name) {
    double worst = 0;
    *theta_worst = 0;
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        double e = rel_l2_f32_f32(part + t->offset, reference + t->offset, t->numel);
        if (t->kind == TN_PARAM_THETA) *theta_worst = fmax(*theta_worst, e);
        else if (e > worst) {
            worst = e;
            *worst_name = t->name;
        }
    }
    return worst;
}

/* Whether every rank of group holds the same hash (sum^2 = size x sum of
 * squares only when all terms are equal; 20-bit terms keep it exact). */
static int same_on_every_rank(const TnComm *group, uint64_t hash) {
    TnError err;
    double h = (double)(hash & 0xfffff), sums[2] = {h, h * h};
    MUST(tn_comm_all_reduce_sum_double(group, sums, 2, &err));
    return sums[0] * sums[0] == group->size * sums[1];
}

static void check_switches(const TnComm *tensor, const char *switches, uint64_t seed) {
    TnError err;
    int T = tensor->size, rank = tensor->rank;
    TnConfig cfg = test_config(VOCAB, 512, 2, 8, 1024, 2u);
    apply_switches(&cfg, switches);
    if (tn_tp_check(&cfg, T, &err)) {
        if (rank == 0) printf("%s: skipped: %s\n", switches, err.msg);
        return;
    }
    TnParamLayout whole_layout, part_layout;
    tn_param_layout_init(&whole_layout, &cfg);
    tn_tp_layout(&part_layout, &whole_layout, &cfg, T);
    size_t n = whole_layout.total, np = part_layout.total;
    float *params = tn_malloc(n * sizeof *params), *part_params = tn_malloc(np * sizeof *part_params);
    tn_params_init(params, &whole_layout, &cfg, seed);
    randomize_norm_params(params, &whole_layout, seed + 1);
    tn_tp_slice(part_params, &part_layout, params, &whole_layout, &cfg, T, rank);
    int32_t tokens[BATCH * SEQ], targets[BATCH * SEQ];
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    for (int i = 0; i < BATCH * SEQ; i++) {
        tokens[i] = (int32_t)tn_rng_below(&rng, VOCAB);
        targets[i] = i % SEQ == SEQ - 1 || tn_rng_below(&rng, 16) == 0 ? TN_IGNORE_INDEX
                                                                        : (int32_t)tn_rng_below(&rng, VOCAB);
    }

    TnModelCuda whole, part;
    TnModelCudaHooks hooks = {.sum_parts = sum_over_group, .sum_parts_user = (void *)tensor};
    TnCudaPart split = {.parts = T, .index = rank, .layout = &part_layout};
    MUST(tn_model_cuda_init(&whole, &cfg, params, &err));
    MUST(tn_model_cuda_reserve(&whole, BATCH, SEQ, TN_RECOMPUTE_NONE, &err));
    MUST(tn_model_cuda_init_shard(&part, &cfg, &split, part_params, 0, np, 0, &err));
    part.hooks = &hooks;
    MUST(tn_model_cuda_reserve(&part, BATCH, SEQ, TN_RECOMPUTE_NONE, &err));

    float whole_loss, part_loss, *whole_grads = tn_malloc(n * sizeof(float)), *part_grads = tn_malloc(np * sizeof(float));
    float *sliced = tn_malloc(np * sizeof(float)), *again = tn_malloc(np * sizeof(float));
    size_t n_logits = (size_t)BATCH * SEQ * VOCAB;
    float *whole_logits = tn_malloc(n_logits * sizeof(float)), *part_logits = tn_malloc(n_logits * sizeof(float));
    MUST(tn_model_cuda_forward(&whole, tokens, targets, BATCH, SEQ, &whole_loss, &err));
    MUST(tn_model_cuda_logits(&whole, whole_logits, BATCH, SEQ, &err));
    MUST(tn_model_cuda_forward(&part, tokens, targets, BATCH, SEQ, &part_loss, &err));
    MUST(tn_model_cuda_logits(&part, part_logits, BATCH, SEQ, &err));
    double loss_error = fabs(part_loss - whole_loss) / fabs(whole_loss);
    double logits_error = rel_l2_f32_f32(part_logits, whole_logits, n_logits);
    CHECK(loss_error <= 1e-3, "%s, rank %d of %d: loss %.7f, whole %.7f", switches, rank, T, part_loss, whole_loss);
    CHECK(logits_error <= 1e-2, "%s, rank %d of %d: logits off by %.3g rel l2", switches, rank, T, logits_error);

    pass(&whole, tokens, targets, &whole_loss, whole_grads);
    pass(&part, tokens, targets, &part_loss, part_grads);
    tn_tp_slice(sliced, &part_layout, whole_grads, &whole_layout, &cfg, T, rank);
    double theta_error;
    const char *worst_name = "";
    double grad_error = worst_tensor(&part_layout, part_grads, sliced, &theta_error, &worst_name);
    CHECK(grad_error <= 2e-2 && theta_error <= 5e-2,
          "%s, rank %d of %d: gradients off by %.3g rel l2 (%s), theta's by %.3g", switches, rank, T, grad_error,
          worst_name, theta_error);

    /* the replicated tensors' gradients: the same bytes on every rank */
    uint64_t hash = TN_FNV_OFFSET;
    for (int i = 0; i < part_layout.n_tensors; i++) {
        const TnTensorInfo *t = &part_layout.tensors[i];
        if (!tn_tp_is_split(t)) hash = tn_fnv1a(hash, part_grads + t->offset, t->numel * sizeof(float));
    }
    CHECK(same_on_every_rank(tensor, hash), "%s, rank %d of %d: the replicated gradients differ between ranks",
          switches, rank, T);

    /* the global norm from the part's runs */
    TnTpRun *runs = tn_malloc((size_t)part_layout.n_tensors * sizeof *runs);
    size_t *bounds = tn_malloc(2 * (size_t)part_layout.n_tensors * sizeof *bounds);
    double *sums = tn_malloc((size_t)part_layout.n_tensors * sizeof *sums), kinds[2] = {0, 0}, whole_squares;
    int n_runs = tn_tp_split_runs(&part_layout, (TnRange){0, np}, runs);
    for (int k = 0; k < n_runs; k++) {
        bounds[2 * k] = runs[k].begin;
        bounds[2 * k + 1] = runs[k].end;
    }
    MUST(tn_model_cuda_grad_squares_runs(&part, bounds, n_runs, sums, &err));
    for (int k = 0; k < n_runs; k++) kinds[runs[k].split ? 0 : 1] += sums[k];
    MUST(tn_comm_all_reduce_sum_double(tensor, kinds, 1, &err));
    MUST(tn_model_cuda_grad_squares(&whole, &whole_squares, &err));
    double norm_error = fabs(sqrt(kinds[0] + kinds[1]) - sqrt(whole_squares)) / sqrt(whole_squares);
    CHECK(norm_error <= 2e-2, "%s, rank %d of %d: the global norm %.6g, whole %.6g", switches, rank, T,
          sqrt(kinds[0] + kinds[1]), sqrt(whole_squares));

    /* recompute: the same passes again, the collectives included */
    const TnRecompute levels[2] = {TN_RECOMPUTE_NORMS, TN_RECOMPUTE_LAYERS};
    for (int i = 0; i < 2; i++) {
        float loss;
        MUST(tn_model_cuda_reserve(&part, BATCH, SEQ, levels[i], &err));
        pass(&part, tokens, targets, &loss, again);
        double error = rel_l2_f32_f32(again, part_grads, np);
        CHECK(fabs(loss - part_loss) <= 1e-6 * fabs(part_loss) && error <= 1e-5,
              "%s, rank %d of %d, recompute %s: loss %.7f (without %.7f), gradients off by %.3g", switches, rank, T,
              tn_recompute_name(levels[i]), loss, part_loss, error);
    }
    if (rank == 0)
        printf("%s, %d parts: loss %.6f vs %.6f, logits %.2e, gradients %.2e (%s), theta %.2e, norm %.2e\n", switches, T,
               part_loss, whole_loss, logits_error, grad_error, worst_name, theta_error, norm_error);
    tn_model_cuda_free(&whole);
    tn_model_cuda_free(&part);
    free(runs);
    free(bounds);
    free(sums);
    free(params);
    free(part_params);
    free(whole_grads);
    free(part_grads);
    free(sliced);
    free(again);
    free(whole_logits);
    free(part_logits);
    tn_param_layout_free(&whole_layout);
    tn_param_layout_free(&part_layout);
}

static void check_rank(const TnComm *world, uint64_t seed) {
    TnError err;
    TnComm tensor, data;
    if (tn_tp_groups(world, world->size, &tensor, &data, &err)) {
        CHECK(0, "rank %d: tensor group of %d: %s", world->rank, world->size, err.msg);
        return;
    }
    check_switches(&tensor, "norm=srmsnorm gate=on", seed);
    check_switches(&tensor, "norm=rmsnorm gate=off", seed + 2);
    tn_comm_free(&tensor);
    tn_comm_free(&data);
}

int main(int argc, char **argv) { return gpu_ranks_main("check_tp", argc, argv, check_rank); }
