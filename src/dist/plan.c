/* plan.c: the memory model of plan.h. */
#include "dist/plan.h"

#include "dist/grad_reduce.h"
#include "dist/tensor_parallel.h"
#include "model/params.h"

void tn_plan_counts(const TnConfig *cfg, TnPlanCounts *counts) {
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    *counts = (TnPlanCounts){0};
    for (int i = 0; i < layout.n_tensors; i++) {
        const TnTensorInfo *t = &layout.tensors[i];
        *(tn_tp_is_split(t) ? &counts->split : &counts->replicated) += (double)t->numel;
    }
    for (int l = 0; l < cfg->n_layers; l++) {
        double size = (double)(layout.layer_begin[l + 1] - layout.layer_begin[l]);
        if (size > counts->largest_layer) counts->largest_layer = size;
    }
    double embed = (double)layout.layer_begin[0], head = (double)(layout.total - layout.layer_begin[cfg->n_layers]);
    counts->embed = embed;
    counts->head = head;
    if (cfg->tie_word_embeddings) head += embed;
    counts->largest_outer = embed > head ? embed : head;
    tn_param_layout_free(&layout);
}

double tn_plan_activation_bytes(const TnConfig *cfg, int tp, int micro_batch, int seq_len) {
    double tokens = (double)micro_batch * seq_len, D = cfg->dim, G = cfg->glu_dim;
    double fused = (double)tn_qkvu_rows(cfg), features = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        double width = 2.0 * cfg->n_heads * tn_qk_head_dim(cfg, l); /* q and k features */
        if (width > features) features = width;
    }
    double checkpoints = 2.0 * tokens * D * cfg->n_layers;
    double layer = 2.0 * tokens * (4.0 * D + (fused + features + 3.0 * D) / tp + 3.0 * G / tp);
    double logits = 4.0 * tokens * cfg->vocab_size;
    return checkpoints + layer + logits;
}

static double larger(double a, double b) { return a > b ? a : b; }

TnPlanElements tn_plan_elements(const TnPlanCounts *counts, int tp, int dp, int zero) {
    double psi = counts->split / tp + counts->replicated, layer = counts->largest_layer / tp;
    TnPlanElements e;
    e.parameters = psi / (zero >= 3 ? dp : 1);
    e.gather = zero >= 3 ? larger(layer, counts->largest_outer) : 0.0;
    e.gradients = psi / (zero >= 2 ? dp : 1);
    e.grad_buffers = zero >= 2 ? counts->embed + TN_GRAD_RING * larger(layer, counts->head) : 0.0;
    e.moments = 2.0 * psi / (zero >= 1 ? dp : 1);
    return e;
}

TnPlanRow tn_plan_layout(const TnConfig *cfg, const TnPlanCounts *counts, int tp, int dp, int zero, int micro_batch,
                         int seq_len, double gpu_bytes) {
    TnPlanElements e = tn_plan_elements(counts, tp, dp, zero);
    TnPlanRow row = {.tp = tp, .dp = dp, .zero = zero};
    /* bf16 weights and gradients; the optimizer's fp32 master weights, m and v: 6 bytes per moment */
    row.weights = 2.0 * e.parameters;
    row.gradients = 2.0 * (e.gradients + e.grad_buffers);
    row.optimizer = 6.0 * e.moments;
    row.gather = 2.0 * e.gather;
    row.activations = tn_plan_activation_bytes(cfg, tp, micro_batch, seq_len);
    row.total = row.weights + row.gradients + row.optimizer + row.gather + row.activations;
    row.fits = row.total <= gpu_bytes;
    return row;
}

int tn_plan_layouts(const TnConfig *cfg, int gpus, int max_tp, int micro_batch, int seq_len, double gpu_bytes,
                    TnPlanRow *rows, int cap) {
    TnPlanCounts counts;
    tn_plan_counts(cfg, &counts);
    int n = 0;
    for (int tp = 1; tp <= max_tp && tp <= gpus; tp *= 2) {
        if (gpus % tp || cfg->n_heads % tp || cfg->glu_dim % tp) continue;
        /* with one data-parallel rank there is nothing to shard; the GPU
         * trainer splits the model at the lower stages alone */
        int stages = gpus / tp == 1 ? 0 : tp > 1 ? TN_TP_GPU_MAX_ZERO : 3;
        for (int zero = 0; zero <= stages && n < cap; zero++)
            rows[n++] = tn_plan_layout(cfg, &counts, tp, gpus / tp, zero, micro_batch, seq_len, gpu_bytes);
    }
    return n;
}
