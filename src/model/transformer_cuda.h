/* transformer_cuda.h: the token mixer of the Transformer baseline in the GPU
 * training step, the CUDA twin of transformer.h: causal softmax attention of
 * RoPE(q), RoPE(k), v (flash_attention.h, rope_cuda.h).
 *
 * The baseline is a TnModelCuda with arch TN_ARCH_TRANSFORMER: the GPU step
 * (transnormer_cuda.h) runs the shared skeleton (the embedding, the norms
 * with their gains, the fused [q k v] product and its backward, o_proj,
 * SwiGLU as the SGLU path with glu_act silu, the head, AdamW) and calls these
 * two functions between the [q k v] product and o_proj, so `tnllm train
 * --arch transformer --device cuda` runs behind step_device.h like the
 * TransNormer. The layer's buffers keep their meaning: qkvu holds [q k v]
 * (3D wide), qf and kf the rotated q and k (D), attn the attention output
 * (the input of o_proj), softmax_lse the attention's log-sum-exp (H per row);
 * gated, attn_rstd and the mixer norm are unused.
 * Functions return 0, or -1 with err.
 */
#ifndef TN_MODEL_TRANSFORMER_CUDA_H
#define TN_MODEL_TRANSFORMER_CUDA_H

#include <stddef.h>

#include "model/transnormer_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of attention scratch the backward needs for batch x seq_len. */
size_t tn_transformer_cuda_scratch_bytes(const TnConfig *cfg, int batch, int seq_len);

/* From layer `layer`'s qkvu: qf, kf (RoPE) and, when `products` (not a
 * recompute of the norms level only), attn and softmax_lse. */
int tn_transformer_cuda_mixer_forward(TnModelCuda *g, int layer, int batch, int seq_len, int products, TnError *err);

/* Backward from g->dattn (bf16, the gradient of attn): writes the gradient
 * of the layer's [q k v] into g->dqkvu (its 3D columns), through g->dqf,
 * g->dkf and the attention scratch. */
int tn_transformer_cuda_mixer_backward(TnModelCuda *g, int layer, int batch, int seq_len, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
