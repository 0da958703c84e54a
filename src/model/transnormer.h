/* transnormer.h: the TransNormerLLM model on the CPU (SPEC section 1).
 *
 * A TnModel owns its configuration, its parameters (one flat buffer laid out
 * by TnParamLayout) and an activation arena sized once for (B, T) by
 * tn_model_reserve: the forward pass allocates nothing. The activations kept
 * are those the backward pass needs (llm.c style, shapes in comments).
 *
 * Forward (Eq. 9, pre-norm), for rows r = b * T + t:
 *   h = e * E[x]  (+ P[t] with pe = ape)
 *   per layer: h += W_out (u ⊙ SRMSNorm(GLA(SRMSNorm(h))))   (Eq. 3-4)
 *              h += W3 ((W1 x) ⊙ (W2 x)), x = SRMSNorm(h)     (Eq. 5)
 *   logits = SRMSNorm(h) E^T  (or lm_head), loss = mean CE over targets.
 * The switches of SPEC section 3 (config.h) change the pieces: the norm
 * kind of every SRMSNorm, the activation of q, k and of W1 x, the gate
 * (without it, no u), the decay rates and LRPE layers. A configuration
 * with arch transformer is the softmax Transformer baseline (transformer.h):
 * the same TnModel, arena and entry points, which dispatch to it.
 *
 * Tensor parallelism (§3.2.2, Eq. 11-18; dist/tensor_parallel.h makes such
 * a model): with tensor_group of T ranks, this model holds part
 * tensor_group->rank of T of every GLA (heads H / T: the rows of W_qkvu,
 * the columns of W_out, theta, the decay rates, the columns of the norm
 * after the attention) and every SGLU (G / T: the rows of W1, W2, the
 * columns of W3), in a layout of those widths; the embedding, the other
 * norms and the head are whole on every rank. The forward and backward
 * passes then add the ranks' partial results over tensor_group: after
 * W_out and W3 (forward), into the inputs' gradients of W_qkvu and W1, W2
 * (backward), and the rows' sums of the norm after the attention (both
 * directions), so that every rank holds the whole model's activations of
 * the residual stream, equal to the unsplit model's up to float rounding.
 * Every rank of the group must make the same calls. A failed collective
 * ends the job (comm.h: the group is unusable).
 */
#ifndef TN_MODEL_TRANSNORMER_H
#define TN_MODEL_TRANSNORMER_H

#include <stdint.h>

#include "dist/comm.h"
#include "kernels/cpu/attention.h"
#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"

/* Shapes: with tensor parallelism over T ranks, H, the mixer's D (of o and
 * after), P and G below are this rank's H / T, D / T, P / T and G / T. */
typedef struct TnLayerActs {
    float *resid;     /* (B, T, D) h entering the layer */
    float *norm1;     /* (B, T, D) SRMSNorm(resid) */
    float *norm1_rstd;/* (B, T) */
    float *qkvu;      /* (B, T, P) fused projection, P = tn_qkvu_rows (4D or 3D) */
    float *qf, *kf;   /* (B, T, H * dk) SiLU (+ LRPE) features, dk = d or 2d */
    float *attn;      /* (B, T, D) linear attention output o (D / T columns) */
    float *attn_rstd; /* (B, T) SRMSNorm of o */
    float *attn_norm; /* (B, T, D) SRMSNorm(o) (D / T columns) */
    float *gated;     /* (B, T, D) u ⊙ SRMSNorm(o); == attn_norm without the gate (D / T columns) */
    float *resid_mid; /* (B, T, D) h after the token mixer */
    float *norm2;     /* (B, T, D) */
    float *norm2_rstd;/* (B, T) */
    float *glu1, *glu2; /* (B, T, G) W1 x and W2 x */
    float *glu;       /* (B, T, G) act(W1 x) ⊙ W2 x */
} TnLayerActs;

typedef struct TnActivations {
    int max_batch, max_seq;
    TnLayerActs layers[TN_MAX_LAYERS];
    float *resid_final; /* (B, T, D) */
    float *norm_final;  /* (B, T, D) */
    float *norm_final_rstd; /* (B, T) */
    float *logits;      /* (B, T, V) */
    float *losses;      /* (B, T) per-token CE (0 where ignored) */
    float *attn_scratch;/* see tn_attention_scratch_floats */
    float *memory;      /* the one allocation behind all of the above */
    size_t n_floats;
} TnActivations;

/* Gradients of the activations, for the backward pass: one buffer per
 * role, reused by every layer (the backward walks the layers in reverse and
 * needs only the current one). The logits' gradient overwrites
 * TnActivations.logits in place. */
typedef struct TnActGrads {
    int max_batch, max_seq;
    float *dresid;    /* (B, T, D) gradient of the residual stream h */
    float *dnorm;     /* (B, T, D) of norm1 / norm2 / norm_final */
    float *dgated;    /* (B, T, D) of u ⊙ SRMSNorm(o) */
    float *dattn;     /* (B, T, D) of the attention output o */
    float *dqkvu;     /* (B, T, P) of the fused projection */
    float *dqf, *dkf; /* (B, T, H * 2d) of the q/k features */
    float *dglu, *dglu1, *dglu2; /* (B, T, G) */
    float *row_sums;  /* (B, T) the split norm's per-row dots (tensor parallelism) */
    float *attn_scratch; /* see tn_attention_backward_scratch_floats */
    float *memory;    /* the one allocation behind all of the above */
    size_t n_floats;
} TnActGrads;

struct TnModel;

/* Hooks of sharded training, called by the forward and backward passes on
 * the calling thread; a NULL function is skipped. Parts are those of
 * params.h (TN_PART_EMBED, layers 0..L-1, the head L).
 *   weights(m, part): before a pass reads the weights of part (the head:
 *     the final norm and lm_head, or the tied embedding): make m->w's views
 *     of them valid (dist/fsdp.h gathers them; they may be dropped once the
 *     next part is asked for). Forward: the embedding, layers 0..L-1, the
 *     head; backward: the head, layers L-1..0 (the embedding's backward
 *     reads no weights).
 *   grads(m, part, dw): before the backward accumulates part's gradients
 *     (the head, layers L-1..0, the embedding): point dw's views of them
 *     (the tied head's: the embedding's too) at zeroed buffers, valid until
 *     part's grads_done (dist/grad_reduce.h keeps a ZeRO-2/3 rank's
 *     gradients so, a part at a time). Set when the backward is given no
 *     gradient buffer.
 *   grads_done(m, part): the backward has finished accumulating part's
 *     gradients (the head first, layers L-1..0, the embedding last), which
 *     it will not touch again in this pass (dist/grad_reduce.h starts their
 *     reduction).
 * A hook that fails records the error itself; its owner reports it after
 * the pass. */
typedef struct TnModelHooks {
    void (*weights)(struct TnModel *m, int part, void *user);
    void *weights_user;
    void (*grads)(struct TnModel *m, int part, TnWeights *dw, void *user);
    void (*grads_done)(struct TnModel *m, int part, void *user);
    void *grads_user; /* of grads and grads_done */
} TnModelHooks;

typedef struct TnModel {
    TnConfig config;
    TnParamLayout layout;
    float *params;        /* layout.total floats, owned */
    TnWeights w;          /* views into params */
    float *decay;         /* (L, H) lambda_{l,h} (this rank's heads) */
    TnAttnAlgo attn_algo; /* TN_ATTN_CHUNKED unless a test asks otherwise */
    int attn_block;
    TnActivations acts;
    TnActGrads grad_acts; /* sized by tn_model_reserve_backward */
    const TnModelHooks *hooks; /* NULL: the whole model is in params (not owned) */
    const TnComm *tensor_group; /* NULL: the whole model; else this rank's part (above), not owned */
} TnModel;

/* How many parts the split dimensions (heads, G) are cut into: 1 for the
 * whole model. */
static inline int tn_model_parts(const TnModel *m) { return m->tensor_group ? m->tensor_group->size : 1; }

/* A model of cfg without parameters (params NULL, no views bound): its
 * layout, decay rates and arena, for a rank whose parameters live
 * elsewhere (dist/fsdp.h tn_fsdp_init_shard). */
void tn_model_create(TnModel *m, const TnConfig *cfg);
/* Creates a model of cfg with parameters initialised from seed. */
void tn_model_init(TnModel *m, const TnConfig *cfg, uint64_t seed);
/* Loads an HF model directory (see checkpoint.h). */
int tn_model_load(TnModel *m, const char *dir, TnError *err);
/* Saves to an HF model directory (dtype TN_F32 or TN_BF16; shard_bytes 0 = one file). */
int tn_model_save(const TnModel *m, const char *dir, TnDtype dtype, size_t shard_bytes, TnError *err);
void tn_model_free(TnModel *m);

/* Chooses the attention algorithm and block size of the forward pass
 * (default TN_ATTN_CHUNKED, TN_ATTN_DEFAULT_BLOCK); drops the activation
 * arena, whose scratch depends on them: call tn_model_reserve again. */
void tn_model_set_attention(TnModel *m, TnAttnAlgo algo, int block);
/* Sizes the activation arena for up to batch x seq_len tokens (idempotent
 * when already large enough). */
void tn_model_reserve(TnModel *m, int batch, int seq_len);
/* Sizes the backward pass's buffers for the reserved batch x seq_len
 * (call after tn_model_reserve; idempotent). */
void tn_model_reserve_backward(TnModel *m);
/* Bytes the activation arena needs for batch x seq_len. */
size_t tn_model_activation_bytes(const TnConfig *cfg, int batch, int seq_len, TnAttnAlgo algo, int block, int threads);
/* Bytes tn_model_reserve_backward allocates for batch x seq_len after a
 * forward with algo and block. */
size_t tn_model_backward_bytes(const TnConfig *cfg, int batch, int seq_len, TnAttnAlgo algo, int block, int threads);

/* Forward pass over tokens (B, T) at positions 0..T-1.
 * targets (B, T) may be NULL (no loss); otherwise *mean_loss receives the
 * mean CE over targets that are not TN_IGNORE_INDEX. Fails (with a message)
 * on a token id outside [0, V), B, T beyond the reserved arena, or (pe =
 * ape) T beyond max_position_embeddings. */
int tn_model_forward(TnModel *m, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                     float *mean_loss, TnError *err);

/* Backward pass: ACCUMULATES into grads (layout.total floats, laid out like
 * the parameters; the tied embedding receives both its uses; NULL: into
 * the buffers of the grads hook, part by part) the gradient
 * of loss_scale * sum of the per-token losses. loss_scale = 1 / (scored
 * tokens) gives the gradient of the forward's mean loss; the trainer uses
 * 1 / (scored tokens of the whole accumulated batch).
 * Requires: tn_model_forward was just called with the same tokens, targets
 * (not NULL), batch and seq_len, and tn_model_reserve_backward. The
 * activations stay valid except logits, which hold their gradient after.
 * Attention runs chunked (factors <= 1, a state carried backwards) with the
 * forward's block, or in the parallel form (blockwise Alg. 2) when the
 * forward uses TN_ATTN_PARALLEL. */
void tn_model_backward(TnModel *m, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                       float loss_scale, float *grads);
/* Calls the hooks a forward and a backward pass would call, in the same
 * order, and computes nothing: a rank left without a micro-batch keeps the
 * collectives of sharded training in step with the others. */
void tn_model_idle_pass(TnModel *m);

#endif
