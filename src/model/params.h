/* params.h: the parameter layout, one flat buffer with explicit offsets.
 *
 * Every parameter of the model lives in one contiguous float buffer; the
 * layout table says, for each HF tensor name, its shape and its offset (in
 * elements). Gradients and AdamW moments use the same layout in buffers of
 * the same size, so one offset addresses a tensor in all of them, and a
 * shard of a data-parallel run is a contiguous range of the buffer.
 *
 * Order: the embedding (and the APE table), then each layer's tensors
 * together (so a layer can be gathered as one range), then the final norm's
 * parameters and lm_head when it is not tied.
 */
#ifndef TN_MODEL_PARAMS_H
#define TN_MODEL_PARAMS_H

#include <stddef.h>

#include "model/config.h"
#include "util/rng.h"

typedef enum TnParamKind {
    TN_PARAM_EMBED,    /* model.embed_tokens.weight        [V, D]  */
    TN_PARAM_QKVU,     /* token_mixer.qkvu_proj.weight     [4D, D] */
    TN_PARAM_OUT,      /* token_mixer.out_proj.weight      [D, D]  */
    TN_PARAM_THETA,    /* token_mixer.lrpe.theta           [H,1,d] */
    TN_PARAM_L1,       /* channel_mixer.l1.weight          [G, D]  */
    TN_PARAM_L2,       /* channel_mixer.l2.weight          [G, D]  */
    TN_PARAM_L3,       /* channel_mixer.l3.weight          [D, G]  */
    TN_PARAM_LM_HEAD,  /* lm_head.weight                   [V, D]  */
    TN_PARAM_POSITIONS,/* model.embed_positions.weight     [P, D]  (pe = ape) */
    TN_PARAM_NORM_GAIN,/* <norm>.weight                    [D]     (norm rmsnorm, layernorm) */
    TN_PARAM_NORM_BIAS,/* <norm>.bias                      [D]     (norm layernorm) */
    /* the Transformer baseline (LLaMA names): model.layers.N.self_attn.q_proj,
     * k_proj, v_proj [D, D], consecutive in the buffer so that they read as
     * one [3D, D] matrix (TnLayerWeights.qkvu); o_proj is TN_PARAM_OUT, the
     * mlp's gate_proj, up_proj, down_proj are TN_PARAM_L1, L2, L3, the norm
     * gains input_layernorm, post_attention_layernorm and model.norm. */
    TN_PARAM_Q_PROJ, TN_PARAM_K_PROJ, TN_PARAM_V_PROJ,
    TN_PARAM_KIND_COUNT
} TnParamKind;

/* Where a norm sits, for its parameters' names (the official modules'):
 * model.layers.N.token_norm, .token_mixer.norm, .channel_norm, model.final_norm. */
typedef enum TnNormSite { TN_NORM_SITE_TOKEN, TN_NORM_SITE_MIXER, TN_NORM_SITE_CHANNEL, TN_NORM_SITE_FINAL } TnNormSite;

typedef struct TnTensorInfo {
    char name[96];     /* HF name, e.g. model.layers.3.token_mixer.out_proj.weight */
    TnParamKind kind;
    int layer;         /* -1 for embed, positions, final norm and lm_head */
    TnNormSite norm_site; /* TN_PARAM_NORM_GAIN / _BIAS only */
    int ndim;
    long long shape[3];
    size_t numel;
    size_t offset;     /* in elements, into the flat buffer */
} TnTensorInfo;

typedef struct TnParamLayout {
    int n_tensors;
    TnTensorInfo *tensors; /* owned */
    size_t total;          /* elements in the flat buffer */
    size_t layer_begin[TN_MAX_LAYERS + 1]; /* layer l spans [layer_begin[l], layer_begin[l+1]) */
} TnParamLayout;

/* The parts of the flat buffer that sharded training gathers and reduces
 * one at a time (dist/fsdp.h, dist/grad_reduce.h), in the buffer's order:
 * TN_PART_EMBED, the embedding (and the APE table), [0, layer_begin[0]);
 * part l in 0..L-1, layer l; part L, the head: [layer_begin[L], total),
 * the final norm's parameters and an untied lm_head (a tied head reads
 * the embedding's part as well). */
enum { TN_PART_EMBED = -1 };
/* [*begin, *end) of part (TN_PART_EMBED .. n_layers) of layout. */
void tn_param_part_range(const TnParamLayout *layout, int n_layers, int part, size_t *begin, size_t *end);
/* The elements of the largest of parts first .. n_layers (first:
 * TN_PART_EMBED for every part, 0 for the layers and the head). */
size_t tn_param_largest_part(const TnParamLayout *layout, int n_layers, int first);

/* Builds the layout of cfg. Free with tn_param_layout_free. */
void tn_param_layout_init(TnParamLayout *layout, const TnConfig *cfg);
void tn_param_layout_free(TnParamLayout *layout);
/* A copy of from that to owns (free both). */
void tn_param_layout_copy(TnParamLayout *to, const TnParamLayout *from);
/* The tensor holding element `at` of the flat buffer (< total). */
const TnTensorInfo *tn_param_tensor_at(const TnParamLayout *layout, size_t at);
/* Looks a tensor up by HF name; NULL if the model has no such tensor. */
const TnTensorInfo *tn_param_find(const TnParamLayout *layout, const char *name);

/* Typed views into a flat buffer laid out by TnParamLayout: the same struct
 * serves parameters, gradients and optimizer moments. */
/* A norm's parameters (D each), NULL where the norm kind has none. */
typedef struct TnNormWeights {
    float *gain, *bias;
} TnNormWeights;

typedef struct TnLayerWeights {
    TnNormWeights token_norm, mixer_norm, channel_norm;
    float *qkvu;  /* (4D, D) rows q, k, v, u; (3D, D) without the output gate
                   * and in the Transformer (q_proj, k_proj, v_proj) */
    float *out;   /* (D, D) */
    float *theta; /* (H, d), NULL when the layer has no LRPE */
    float *l1;    /* (G, D) */
    float *l2;    /* (G, D) */
    float *l3;    /* (D, G) */
} TnLayerWeights;

typedef struct TnWeights {
    float *embed;   /* (V, D) */
    float *positions; /* (P, D) APE table, NULL unless pe = ape */
    TnNormWeights final_norm;
    float *lm_head; /* (V, D): == embed when tied */
    TnLayerWeights layers[TN_MAX_LAYERS];
} TnWeights;

void tn_weights_bind(TnWeights *w, const TnParamLayout *layout, float *base);
/* Points the views of the tensors in [begin, end) of the flat buffer at
 * base, which holds that range alone (base[0] is element begin); the other
 * views stay. A tied lm_head follows the embedding. */
void tn_weights_bind_range(TnWeights *w, const TnParamLayout *layout, size_t begin, size_t end, float *base);

/* SPEC section 1 initialisation: every matrix ~ N(0, init_std^2) (the
 * padding row of the embedding zero, as nn.Embedding(padding_idx) does),
 * theta[h, c] = 10000^(-2 (h d + c) / D); norm gains 1, biases 0. Each block of 2^20 elements of a
 * tensor draws from its own stream of (seed, tensor index, block), so the result does not depend on
 * threads or ranks, and the threads share out a large tensor's blocks. */
void tn_params_init(float *params, const TnParamLayout *layout, const TnConfig *cfg, uint64_t seed);
/* A run of elements of the whole model's flat buffer, [from, from +
 * count), that lands at to of a rank's buffer: a rank's range of its
 * tensor-parallel part is such runs (dist/tensor_parallel.h tn_tp_runs),
 * increasing in from and to, each inside one tensor. */
typedef struct TnRun {
    size_t from, to, count;
} TnRun;

/* The same values, of the elements [begin, end) of the flat buffer alone,
 * into out (out[0] is element begin): a ZeRO-3 rank initialises its shard
 * without holding the whole model (a block's stream is drawn from its
 * start, the elements of the block before the range dropped). */
void tn_params_init_range(float *out, const TnParamLayout *layout, const TnConfig *cfg, uint64_t seed, size_t begin,
                          size_t end);
/* The same for runs (out[run.to ..] from elements run.from ..): a tensor
 * cut into several runs (split by tensor parallelism) is drawn once, whole,
 * into a buffer of its size. */
void tn_params_init_runs(float *out, const TnParamLayout *layout, const TnConfig *cfg, uint64_t seed,
                         const TnRun *runs, size_t n_runs);

#endif
