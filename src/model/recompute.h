/* recompute.h: activation checkpointing levels of the GPU training step
 * (paper §5.2.2): what the forward keeps for the backward, the rest being
 * computed again from what was kept, layer by layer, during the backward.
 *  - none: every activation is kept (fastest, most memory);
 *  - norms: the matrix products' and the attention's outputs are kept; the
 *    normalised and elementwise ones (the SRMSNorm outputs, the q/k
 *    features, the gated attention output, the SGLU product) are recomputed:
 *    cheap kernels, about 40% of the activations;
 *  - layers: only each layer's input h is kept; a layer's whole forward runs
 *    again before its backward (one more forward pass in all).
 * The gradients do not change: the recomputed values are the same.
 */
#ifndef TN_MODEL_RECOMPUTE_H
#define TN_MODEL_RECOMPUTE_H

typedef enum TnRecompute { TN_RECOMPUTE_NONE, TN_RECOMPUTE_NORMS, TN_RECOMPUTE_LAYERS } TnRecompute;

/* "none", "norms" or "layers"; -1 for another name. */
int tn_recompute_parse(const char *name, TnRecompute *recompute);
const char *tn_recompute_name(TnRecompute recompute);

#endif
