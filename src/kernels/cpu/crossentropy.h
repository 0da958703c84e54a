/* crossentropy.h: next-token cross-entropy from logits.
 *
 * losses[r] = logsumexp(logits[r]) - logits[r][targets[r]], or 0 where the
 * target is TN_IGNORE_INDEX (-100, as in PyTorch). Returns the number of
 * scored rows; their mean is the model's loss. */
#ifndef TN_KERNELS_CPU_CROSSENTROPY_H
#define TN_KERNELS_CPU_CROSSENTROPY_H

#include <stdint.h>

#define TN_IGNORE_INDEX (-100)

int crossentropy_forward_cpu(float *losses, const float *logits, const int32_t *targets, int n_rows, int vocab_size);

/* Gradient of sum_r scale * losses[r]: dlogits[r] = scale (softmax(z_r) -
 * onehot(target_r)), zero on ignored rows. dlogits may be logits itself
 * (llm.c-style, in place: the logits are not needed after this). */
void crossentropy_backward_cpu(float *dlogits, const float *logits, const int32_t *targets, int n_rows, int vocab_size,
                               float scale);

#endif
