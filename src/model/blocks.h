/* blocks.h: what the CPU forward and backward passes of every
 * architecture (transnormer.c, transformer.c) share: the checks of the
 * inputs, the channel mixer (SGLU, Eq. 5; SwiGLU in the Transformer: the
 * same with act = SiLU), and the head: the final norm, the output
 * projection (the tied embedding or lm_head) and the cross-entropy loss.
 * They work on a TnModel's activation arena (transnormer.h).
 */
#ifndef TN_MODEL_BLOCKS_H
#define TN_MODEL_BLOCKS_H

#include "model/transnormer.h"

/* Fails unless batch >= 1 and batch x seq_len tokens fit the int in which
 * every pass counts its rows (2^31 - 1): what callers that take B and T
 * from a user check before any work. */
int tn_check_batch_size(int batch, int seq_len, TnError *err);

/* Fails (with a message) on tn_check_batch_size's limit, T beyond the APE
 * table, a token id outside [0, V) or a target that is neither one nor
 * TN_IGNORE_INDEX (targets may be NULL); else returns the number of scored
 * targets. The GPU step
 * (transnormer_cuda.h) checks its batches with it too. */
int tn_check_batch(const TnConfig *cfg, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                   TnError *err);

/* tn_check_batch, and B, T beyond the reserved arena. */
int tn_model_check_inputs(const TnModel *m, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                          TnError *err);

/* Adds buf (n floats) over the model's tensor group, in place: a rank's
 * part of a split layer yields part of a sum (transnormer.h). Nothing for
 * the whole model; a failed collective ends the job. */
void tn_model_sum_parts(const TnModel *m, float *buf, size_t n);

/* The rest of layer `layer` (n_rows rows) once its token mixer has
 * produced `mixed` (the input of W_out / o_proj), pre-norm (Eq. 9):
 *   resid_mid = resid + mixed W_out^T
 *   out = resid_mid + W3 (act(W1 x) ⊙ W2 x), x = Norm(resid_mid)
 * (the channel mixer: SGLU, Eq. 5, or SwiGLU), into the next layer's
 * resid or resid_final. Writes norm2, glu1, glu2, glu. With tensor
 * parallelism `mixed` holds this rank's D / T columns and the W_out and
 * W3 products are summed over the ranks (Eq. 11-18). */
void tn_layer_rest_forward(TnModel *m, int layer, int n_rows, const float *mixed);

/* Backward of tn_layer_rest_forward: grad_acts.dresid holds the gradient
 * of out and receives, added, the channel mixer's gradient of resid_mid
 * (it is then the gradient of resid_mid, and of resid through the
 * residual path); dmixed (n_rows x D, D / T columns when split) is overwritten with the gradient of
 * mixed; the weights' gradients accumulate into dw. */
void tn_layer_rest_backward(TnModel *m, int layer, int n_rows, const float *mixed, float *dmixed,
                            const TnWeights *dw);

/* From acts.resid_final (n_rows rows): norm_final, logits and, when targets
 * is not NULL, the per-token losses and their mean over scored targets. */
void tn_head_forward(TnModel *m, const int32_t *targets, int n_rows, float *mean_loss);

/* Backward of tn_head_forward for loss_scale * sum of the losses: writes
 * grad_acts.dresid (the gradient of resid_final), accumulates into dw.
 * Turns acts.logits into their gradient. */
void tn_head_backward(TnModel *m, const int32_t *targets, int n_rows, float loss_scale, const TnWeights *dw);

#endif
