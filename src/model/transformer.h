/* transformer.h: the LLaMA-style softmax Transformer baseline on the CPU
 * (SPEC section 3; the paper's comparisons, Tables 3, 11-13).
 *
 * Same D, L, H, G as TransNormerLLM and the same pre-norm residual stream:
 *   h = E[x]  (no embedding scale)
 *   per layer: h += W_o Attn(RMSNorm(h)),  Attn = causal softmax attention
 *              of RoPE(q), RoPE(k), v with scores q . k / sqrt(d)
 *              h += W_down (SiLU(W_gate x) ⊙ W_up x), x = RMSNorm(h)
 *   logits = RMSNorm(h) E^T  (or lm_head)
 * RMSNorm has learned gains; parameters carry LLaMA's HF names (params.h).
 *
 * It is a TnModel with arch TN_ARCH_TRANSFORMER: tn_model_forward and
 * tn_model_backward run the shared skeleton (embedding, residual stream,
 * channel mixer, head: blocks.h) and call this file's token mixer, so the
 * trainer and the evaluation serve both architectures through one
 * interface. It uses the TnModel arena with
 * the same meaning for the residual stream, norm, channel-mixer and head
 * fields; per layer qkvu holds [q k v] (3D), qf and kf the rotated q and k
 * (D), attn the attention output, gated aliases attn_norm and is unused.
 * The attention is the naive O(n^2) form (softmax_attention.h).
 */
#ifndef TN_MODEL_TRANSFORMER_H
#define TN_MODEL_TRANSFORMER_H

#include "model/transnormer.h"

/* The token mixer of layer `layer`: from acts resid writes norm1, qkvu,
 * qf, kf and attn; returns attn, the input of o_proj. */
const float *tn_transformer_mixer_forward(TnModel *m, int layer, int batch, int seq_len);

/* Backward of tn_transformer_mixer_forward from grad_acts.dattn: adds the
 * gradient of resid into grad_acts.dresid, the weights' into dw. */
void tn_transformer_mixer_backward(TnModel *m, int layer, int batch, int seq_len, const TnWeights *dw);

#endif
