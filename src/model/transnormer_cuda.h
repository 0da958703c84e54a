/* transnormer_cuda.h: the TransNormerLLM training step on one GPU (SPEC
 * section 1; the CUDA twin of transnormer.h, same data flow, same layer
 * order, same kernels by name with a _cuda suffix).
 *
 * Every switch of SPEC section 3 (the paper's ablations) is computed as on
 * the CPU: pe (the APE table and its gradient), decay and its temperature
 * (the rates of tn_decay_rates), gate, gla_act, glu_act, norm (gains and
 * biases and their gradients), the LRPE layers. The softmax Transformer
 * baseline (arch transformer) runs through the same step: its token mixer
 * (RoPE and flash attention) is transformer_cuda.h's, the rest is shared
 * (as transformer.c shares blocks.h on the CPU).
 *
 * Precision (the paper trains with bf16 AMP): one flat fp32 master copy of
 * the parameters laid out by TnParamLayout (the CPU model's layout), a bf16
 * copy of it for the matrix products (written by every update), fp32
 * gradients and AdamW moments in buffers of the same layout. Matrix products
 * run on cuBLASLt (kernels/cuda/matmul_cuda.h) with bf16 operands and fp32
 * accumulation; the residual
 * stream, norm statistics, losses, the LRPE angles and theta stay fp32; the
 * activations that feed matrix products and attention are bf16, and so are
 * the gradients of activations that only elementwise kernels read (dglu,
 * dgated, the norms' output gradient unless tensor parallelism sums it). Lightning
 * Attention is LA-2 of lightning_attention.h, TN_ATTN_CUDA_DEFAULT (its
 * wgmma kernels at d = 128, the chunked ones elsewhere; the baseline's
 * softmax attention flash_attention.h), so every head width d must be 64 or
 * 128 (dk = 2d on LRPE layers).
 *
 * Memory: everything on the device is allocated by tn_model_cuda_init or
 * tn_model_cuda_init_shard (the parameter-shaped buffers, whole or the
 * rank's range) and tn_model_cuda_reserve (one arena for the activations
 * and their gradients, sized for batch x seq_len and the recompute level:
 * what the forward does not keep for the backward lives in one set of
 * buffers all layers share, rebuilt before each layer's backward;
 * model/recompute.h); the step allocates nothing. The struct owns all of
 * it; tn_model_cuda_free releases it (the sharded stages' buffers are their
 * hooks' own). Functions return 0, or -1 with err naming the call that
 * failed (every CUDA and cuBLAS status is checked). One stream orders all
 * the model's work (the hooks' collectives run on a stream of their own,
 * ordered against it by events: dist/grad_reduce_gpu.h); functions that
 * hand results to the host synchronise it.
 *
 * Determinism: every sum is added in an order fixed by the shapes alone, so
 * the same state and batches give bit-identical parameters and moments on
 * every run (on the same GPU model and CUDA libraries): no atomics (the
 * gains', biases' and theta's gradients are per-block partials added by
 * column_sums_cuda, the embedding's are grouped by token on the host,
 * token_groups.h, the gradient norm is per-block partials added by one
 * block), and cuBLASLt on one stream with a workspace of its own and one
 * algorithm per shape and alignment, the heuristic's first (matmul_cuda.h).
 *
 * Tensor parallelism (§3.2.2, Eq. 11-18; dist/tensor_parallel.h's split,
 * the CPU model's of transnormer.h): a model made with a TnCudaPart holds
 * part `index` of `parts` of every GLA (H / parts heads: their rows of
 * W_qkvu, columns of W_out, theta, decay rates and columns of the norm
 * after the attention) and SGLU (G / parts rows of W1, W2, columns of W3),
 * in the part's layout; the embedding, the other norms and the head are
 * whole. Its passes run the part and add the parts' partial results with
 * the sum_parts hook: after W_out and after W3 (forward; part 0 alone adds
 * the residual h), the rows' sums of the norm after the attention (both
 * directions), the inputs' gradients of W1|W2 and W_qkvu (backward). Every
 * rank's residual stream, and so the replicated tensors' gradients, are
 * then the same bits where the hook gives every part the same sum (NCCL's
 * all-reduce does). The Transformer baseline runs whole only.
 */
#ifndef TN_MODEL_TRANSNORMER_CUDA_H
#define TN_MODEL_TRANSNORMER_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the project's C headers carry no C++ guards of their own */
#endif

#include "model/config.h"
#include "model/params.h"
#include "model/recompute.h"
#include "util/error.h"

/* One layer's activations; with recompute, the fields it does not keep
 * point at buffers shared by all layers. */
typedef struct TnCudaLayerActs {
    float *resid;        /* (N, D) fp32, h entering the layer */
    uint16_t *norm1;     /* (N, D) bf16 */
    float *norm1_rstd;   /* (N) */
    uint16_t *qkvu;      /* (N, P) bf16, P = tn_qkvu_rows: 4D, or 3D without the gate */
    uint16_t *qf, *kf;   /* (N, H * dk) bf16 */
    uint16_t *attn;      /* (N, D) bf16 */
    float *attn_rstd;    /* (N) */
    uint16_t *gated;     /* (N, D) bf16: u ⊙ Norm(o), or Norm(o) without the gate */
    float *resid_mid;    /* (N, D) fp32 */
    uint16_t *norm2;     /* (N, D) bf16 */
    float *norm2_rstd;   /* (N) */
    uint16_t *glu12;     /* (N, 2G) bf16: W1 x | W2 x side by side, one product of the adjacent W1, W2 */
    uint16_t *glu;       /* (N, G) bf16 */
    float *softmax_lse;  /* (B * H, T) fp32: the baseline's attention log-sum-exp (transformer_cuda.h); NULL else */
    float *attn_kept;    /* the attention forward's segment states for its backward (lightning_attention.h) */
    size_t attn_kept_bytes;
} TnCudaLayerActs;

typedef struct TnModelCuda TnModelCuda;

/* Part index of parts of the model (above), laid out by layout (a part's:
 * tn_tp_layout's, copied). */
typedef struct TnCudaPart {
    int parts, index;
    const TnParamLayout *layout;
} TnCudaPart;

/* The hooks of sharded training (params.h's parts: the embedding
 * TN_PART_EMBED, layers 0..L-1, the head L) and of tensor parallelism
 * (sum_parts, below). Each returns 0, or -1 with err; NULL ones are not
 * called.
 * weights (ZeRO-3, dist/fsdp_gpu.h), before the forward reads a part (the
 * embedding, each layer, the head) and before the backward reads it again
 * (the head, layers L-1..0): points w's views of the part (and, for the
 * head of a tied embedding, of the embedding) at fp32 values on the
 * device, and g->view_f32 and g->view_bf16 at a pair of buffers laid out
 * alike, the views' bf16 copies at the same offsets in the second.
 * grads (ZeRO-2/3, dist/grad_reduce_gpu.h), around the backward's writes
 * of each part's gradients (the head L, layers L-1..0, the embedding, in
 * that order): grads points dw's views of the part at the buffer they are
 * to accumulate into (tn_weights_bind_range; the head of a tied embedding
 * writes the embedding's gradient too); grads_done follows the part's
 * last write, enqueued on g->stream. */
typedef struct TnModelCudaHooks {
    int (*weights)(TnModelCuda *g, int part, TnWeights *w, void *user, TnError *err);
    void *weights_user;
    int (*grads)(TnModelCuda *g, int part, TnWeights *dw, void *user, TnError *err);
    int (*grads_done)(TnModelCuda *g, int part, void *user, TnError *err);
    void *grads_user;
    /* sum_parts (tensor parallelism, required with parts > 1): buf (device,
     * n fp32) = its sum over the ranks holding the model's parts, enqueued
     * on g->stream. */
    int (*sum_parts)(TnModelCuda *g, float *buf, size_t n, void *user, TnError *err);
    void *sum_parts_user;
} TnModelCudaHooks;

struct TnModelCuda {
    TnConfig config;
    int parts, part_index; /* tensor parallelism: this model is part part_index of parts (1: whole) */
    TnParamLayout layout;  /* owned: the part's */
    size_t n_params;       /* layout.total */
    float *params;         /* device fp32 master parameters: [params_begin, params_end) */
    uint16_t *params_bf16; /* device bf16 copy for the matrix products (NULL under ZeRO-3: gathered per part) */
    /* The buffers the weight views point into, fp32 and their bf16 copy at
     * the same offsets: params and params_bf16, or under ZeRO-3 the part
     * gathered last (hooks). */
    float *view_f32;
    uint16_t *view_bf16;
    float *grads, *adam_m, *adam_v; /* device, the parameters' layout: the ranges below */
    /* What the buffers cover (tn_model_cuda_init_shard; all of
     * [0, n_params) otherwise): adam_m and adam_v the range AdamW updates,
     * [update_begin, update_end); grads [grads_begin, grads_end) and params
     * [params_begin, params_end), the whole buffer or that range alone,
     * which the passes then reach through hooks only. */
    size_t update_begin, update_end, grads_begin, grads_end, params_begin, params_end;
    const TnModelCudaHooks *hooks; /* NULL: the passes read params and write grads, whole */
    /* tn_model_cuda_zero_grad left the clearing of grads to the next
     * backward: its products write their weights' gradients (beta 0, no
     * 4-bytes-a-parameter memset and no read of the old values) and the
     * runs of tensors nothing writes whole (norm gains and biases, theta,
     * the APE table, an untied embedding: device pairs begin, count in
     * cleared_runs) are cleared first, in one launch. Whatever else reads
     * grads clears them all first (tn_model_cuda_settle_grads). */
    int grads_deferred;
    size_t *cleared_runs;
    int n_cleared_runs;
    size_t longest_cleared_run;
    float *decay;          /* device (L, H) lambda_{l,h} */
    double *sum_squares;   /* device: the gradient norm's sum, TN_GRAD_SQUARES_PARTIALS partials, then the sums
                            * of up to layout.n_tensors runs (tn_model_cuda_grad_squares_runs) */
    struct TnAdamwSegment *adamw_segments; /* device: the layout's runs of tensors AdamW decays alike */
    int n_adamw_segments;
    struct TnMatmulCuda *matmul; /* the products' cuBLASLt context and workspace (kernels/cuda/matmul_cuda.h) */
    void *stream;          /* cudaStream_t */
    void *losses_copied;   /* cudaEvent_t: tn_model_cuda_accumulate's per-token losses are on the host */
    /* the arena, sized by tn_model_cuda_reserve for max_batch x max_seq */
    int max_batch, max_seq;
    TnRecompute recompute;
    void *arena;
    size_t arena_bytes;
    TnCudaLayerActs layers[TN_MAX_LAYERS];
    float *resid_final;     /* (N, D) */
    uint16_t *norm_final;   /* (N, D) */
    float *norm_final_rstd; /* (N) */
    uint16_t *logits;       /* (N, V) bf16; their gradient after the backward */
    float *losses, *lse;    /* (N) */
    int32_t *tokens, *targets; /* (N) of the last forward */
    void *attn_scratch;
    size_t attn_scratch_bytes; /* what layout_arena sized it for: every call up to the reserved shape */
    float *dresid;          /* (N, D) the residual stream's gradient */
    void *dnorm;            /* (N, D) the norms' output gradient: bf16, fp32 when parts > 1 (summed over them) */
    uint16_t *dgated, *dglu; /* (N, Dm), NULL for the baseline (its o gradient is dattn's); (N, G); bf16 */
    uint16_t *dresid_bf16, *dattn, *dqkvu;   /* (N, D), (N, D), (N, P) */
    uint16_t *dqf, *dkf;                     /* (N, 2D) */
    uint16_t *dglu12;                        /* (N, 2G): the gradients of W1 x | W2 x */
    float *partials;        /* the norms' and theta's per-block gradient sums (column_sums_cuda.h) */
    float *row_sums;        /* (N) parts > 1: the split norm's rows' sums (norm_cuda.h norm_gate_part_*) */
    int32_t *token_groups;  /* TN_TOKEN_GROUPS_SIZE(N): the backward's rows by token (token_groups.h) */
    /* host, sized by tn_model_cuda_reserve */
    float *host_losses;     /* (N, pinned) the last forward's per-row losses (0 on ignored rows) */
    int32_t *host_tokens;   /* (N) the last forward's tokens */
    int32_t *host_groups;   /* TN_TOKEN_GROUPS_SIZE(N), grouped before the upload */
    int32_t *host_token_counts; /* (V + 1) tn_group_tokens' scratch */
};

/* Uploads params (host, layout of cfg) to the current device; zeroes the
 * gradients and moments. Fails, naming it, on a configuration the step does
 * not compute (tn_config_unsupported_switch). */
int tn_model_cuda_init(TnModelCuda *g, const TnConfig *cfg, const float *params, TnError *err);
/* The same for part `part` of the model (NULL: whole; tensor parallelism,
 * above: params and the ranges below are of the part's flat buffer, and
 * the passes need the sum_parts hook) and sharded training at ZeRO stage
 * zero (dist/comm.h's ranges): from 1 on the moments cover [begin, end) of
 * the flat buffer alone, from 2 the gradients too (the backward then needs
 * the grads hooks), at 3 the fp32 parameters too (params: that range; the
 * passes need the weights hook; no bf16 copy is kept). Below 3 the fp32
 * parameters and their bf16 copy stay whole. tn_model_cuda_init is the
 * whole model at zero 0, [0, n). */
int tn_model_cuda_init_shard(TnModelCuda *g, const TnConfig *cfg, const TnCudaPart *part, const float *params,
                             size_t begin, size_t end, int zero, TnError *err);
void tn_model_cuda_free(TnModelCuda *g);

/* Sizes the arena for up to batch x seq_len tokens at a recompute level
 * (idempotent when large enough and at that level). Fails on a head width
 * the attention kernels do not take. */
int tn_model_cuda_reserve(TnModelCuda *g, int batch, int seq_len, TnRecompute recompute, TnError *err);
/* Device bytes of the arena for batch x seq_len (for `info`-style reports). */
size_t tn_model_cuda_arena_bytes(const TnConfig *cfg, int batch, int seq_len, TnRecompute recompute);

/* Forward over host tokens/targets (B, T), like tn_model_forward: fails on
 * what tn_check_batch refuses (an id outside [0, V), T beyond the APE
 * table) or a shape beyond the arena; with targets, *mean_loss
 * receives the mean CE over scored targets and g->host_losses the per-row
 * losses (synchronises). */
int tn_model_cuda_forward(TnModelCuda *g, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                          float *mean_loss, TnError *err);

/* ACCUMULATES into g->grads the gradient of loss_scale * sum of the
 * per-token losses, like tn_model_backward (after tn_model_cuda_zero_grad:
 * writes it). Requires the forward just ran on this batch with targets.
 * The logits hold their gradient after. */
int tn_model_cuda_backward(TnModelCuda *g, int batch, int seq_len, float loss_scale, TnError *err);

/* tn_model_cuda_forward with targets (required) then
 * tn_model_cuda_backward with loss_scale, the same results bit for bit,
 * with the cross-entropy's forward and backward in one pass over the
 * logits (crossentropy_fused_cuda) and the backward queued before the host
 * waits for the losses: what a training step runs. It keeps no lse, so no
 * tn_model_cuda_backward may follow it. */
int tn_model_cuda_accumulate(TnModelCuda *g, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                             float loss_scale, float *mean_loss, TnError *err);

/* The gradients read as zero from here on. Where the device holds them
 * whole and no hook places them, the clearing waits for the next backward,
 * which writes rather than adds (grads_deferred above); the readers below
 * (download, the sums of squares, the update) and anything else reading
 * g->grads (tn_model_cuda_settle_grads first) see zeros if none ran. */
int tn_model_cuda_zero_grad(TnModelCuda *g, TnError *err);
/* Clears a deferred zero_grad now (nothing if none is pending). */
int tn_model_cuda_settle_grads(TnModelCuda *g, TnError *err);

/* Global-norm clipping (max_norm <= 0: none) and one AdamW step t (from 1)
 * with the CPU trainer's hyper-parameters (beta1, beta2, eps, weight decay
 * where tn_adamw_decays says); refreshes the bf16 copy. The clipping factor
 * is computed on the device and the update is one launch queued right
 * behind the norm (nothing waits for the host in between); *grad_norm
 * receives the norm before clipping, read back once the update is queued
 * (synchronises at the end). */
int tn_model_cuda_step(TnModelCuda *g, float beta1, float beta2, float eps, float weight_decay, float lr, long long t,
                       double max_norm, double *grad_norm, TnError *err);

/* *sum_squares: the sum of the squared gradients of the update range
 * (synchronises). */
int tn_model_cuda_grad_squares(TnModelCuda *g, double *sum_squares, TnError *err);
/* sums[k] = the sum of the squared gradients of run k, the elements
 * [bounds[2k], bounds[2k + 1]) of the flat buffer inside the update range,
 * for n_runs <= layout.n_tensors runs (tensor parallelism adds the split
 * tensors' and the replicated ones' over different groups); synchronises. */
int tn_model_cuda_grad_squares_runs(TnModelCuda *g, const size_t *bounds, int n_runs, double *sums, TnError *err);
/* AdamW step t on the update range (the whole buffer unless sharded, as
 * tn_model_cuda_step's), clipped by the global norm sqrt(sum_squares)
 * (max_norm <= 0: none; sharded training adds the ranks' sums), the bf16
 * copy of the range written in the same pass where the device keeps one. */
int tn_model_cuda_adamw(TnModelCuda *g, float beta1, float beta2, float eps, float weight_decay, float lr, long long t,
                        double sum_squares, double max_norm, TnError *err);
/* Makes the bf16 copy again from the fp32 parameters (none under ZeRO-3). */
int tn_model_cuda_refresh(TnModelCuda *g, TnError *err);
/* Waits for the work queued on g->stream. */
int tn_model_cuda_synchronize(TnModelCuda *g, TnError *err);

/* Copies between the host and the device buffers (NULL skips one) of the
 * ranges they cover.
 * Upload refreshes the bf16 copy. Both synchronise. */
int tn_model_cuda_download(TnModelCuda *g, float *params, float *grads, float *adam_m, float *adam_v, TnError *err);
int tn_model_cuda_upload(TnModelCuda *g, const float *params, const float *grads, const float *adam_m,
                         const float *adam_v, TnError *err);

/* Copies the first batch x seq_len rows of logits (after a forward, before
 * the backward) to the host as fp32. */
int tn_model_cuda_logits(TnModelCuda *g, float *logits, int batch, int seq_len, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
