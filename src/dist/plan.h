/* plan.h: per-GPU memory of a training layout, and the layouts that fit.
 *
 * A layout is tp x dp = gpus: tensor parallelism of the paper's §3.2.2
 * (Eq. 11-18) over tp GPUs of one node, data parallelism over dp groups
 * with ZeRO stage 0..3 (Rajbhandari et al. 2020) sharding over dp. The
 * memory of any layout can be asked (tn_plan_layout); the list of layouts
 * (tn_plan_layouts) holds those the GPU trainer runs: with tp > 1, ZeRO 0
 * or 1 (dist/tensor_parallel.h TN_TP_GPU_MAX_ZERO).
 *
 * Parameters (counted from the model's layout, params.h): split over tp
 * are the GLA's fused W_qkvu (by heads), its W_o (by rows), LRPE's theta
 * (by heads), the gain of the norm after the attention (by heads) and
 * SGLU's W_1, W_2 (by columns) and W_3 (by rows): Psi_split
 * (tensor_parallel.h). Replicated on every tp rank: the embedding,
 * lm_head, the APE table and the other norms: Psi_rep. Per GPU, Psi = Psi_split / tp + Psi_rep.
 *
 * Model states, mixed precision as the paper trains (bf16 weights and
 * gradients, fp32 master weights and AdamW m, v: 12 bytes), per GPU:
 *   ZeRO-0: 2 Psi + 2 Psi + 12 Psi
 *   ZeRO-1: 2 Psi + 2 Psi + 12 Psi / dp
 *   ZeRO-2: 2 Psi + (2 + 12) Psi / dp, plus the backward's gradient
 *           buffers (dist/grad_reduce.h): the embedding's part and
 *           TN_GRAD_RING of the largest of a layer's share over tp and the
 *           head's own range (the final norm, an untied lm_head), bf16
 *   ZeRO-3: (2 + 2 + 12) Psi / dp and those buffers, plus the gather
 *           buffer of FSDP (dist/fsdp.h): one part's bf16 weights, the
 *           largest of a layer's share over tp and the replicated
 *           embedding or head (a tied head gathers the embedding and the
 *           final norm together).
 * The element counts behind these (tn_plan_elements) are the CPU
 * trainer's allocations too, all float32 there (train/trainer.h). The GPU
 * trainer (train/step_device.h) shards the same ranges at each stage but
 * keeps its gradients in fp32 and, below ZeRO-3, the fp32 parameters whole
 * beside their bf16 copy: more bytes than this paper model counts.
 * Activations, bf16, full activation checkpointing (the paper's), micro-batch
 * b of T tokens: each layer's input (b T D x L, replicated over tp), plus
 * one layer's tensors while it is recomputed for its backward: per token
 * 4 D replicated (the residual, the two norms' outputs, the mid residual),
 * (P + 2 H dk + 3 D) / tp for the GLA (P = 4D or 3D fused rows, dk the
 * q/k feature width, o, its norm, the gated output) and 3 G / tp for SGLU;
 * plus the fp32 logits b T V (the vocabulary is not split). The lightning
 * attention's d x d states per head, the framework and the fragmentation
 * are not counted: leave headroom.
 */
#ifndef TN_DIST_PLAN_H
#define TN_DIST_PLAN_H

#include "model/config.h"

typedef struct TnPlanCounts {
    double split;         /* parameters split over tp */
    double replicated;    /* parameters every tp rank holds whole */
    double largest_layer; /* parameters of the largest layer, whole */
    double largest_outer; /* of the larger of the embedding's and the head's parts (fsdp.h), replicated */
    double embed, head;   /* the embedding's part and the head's own range (params.h), replicated */
} TnPlanCounts;

/* The elements one rank holds of each kind of model state. */
typedef struct TnPlanElements {
    double parameters;    /* the weights kept: Psi, or the shard Psi / dp (ZeRO-3) */
    double gather;        /* ZeRO-3: the gather buffer of one part */
    double gradients;     /* Psi, or the shard Psi / dp (ZeRO-2/3) */
    double grad_buffers;  /* ZeRO-2/3: the backward's part buffers */
    double moments;       /* AdamW's m and v: 2 Psi, or 2 Psi / dp (ZeRO >= 1) */
} TnPlanElements;

typedef struct TnPlanRow {
    int tp, dp, zero;
    /* bytes per GPU */
    double weights, gradients, optimizer, gather, activations, total; /* gradients with their buffers */
    int fits;             /* total <= the GPU's memory */
} TnPlanRow;

void tn_plan_counts(const TnConfig *cfg, TnPlanCounts *counts);
/* The elements of model state per rank of one layout. */
TnPlanElements tn_plan_elements(const TnPlanCounts *counts, int tp, int dp, int zero);
/* The activation bytes per GPU for micro-batch b of T tokens over tp. */
double tn_plan_activation_bytes(const TnConfig *cfg, int tp, int micro_batch, int seq_len);
/* The memory of one layout on GPUs of gpu_bytes. */
TnPlanRow tn_plan_layout(const TnConfig *cfg, const TnPlanCounts *counts, int tp, int dp, int zero, int micro_batch,
                         int seq_len, double gpu_bytes);
/* Every layout of gpus GPUs that the GPU trainer runs, with tp a power of
 * two up to max_tp dividing gpus, the heads and G (tp must split heads and
 * SGLU columns evenly), and ZeRO 0..3 at tp = 1, 0..TN_TP_GPU_MAX_ZERO at
 * tp > 1 (tensor_parallel.h; 0 alone when dp = 1), into rows (room for
 * cap); returns the number written. */
int tn_plan_layouts(const TnConfig *cfg, int gpus, int max_tp, int micro_batch, int seq_len, double gpu_bytes,
                    TnPlanRow *rows, int cap);

#endif
