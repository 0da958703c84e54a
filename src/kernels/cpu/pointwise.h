/* pointwise.h: the elementwise operations of the residual stream and of
 * the gated channel mixers: SGLU (Eq. 5) with the glu_act switch, and the
 * Transformer baseline's SwiGLU (the same with act = SiLU). */
#ifndef TN_KERNELS_CPU_POINTWISE_H
#define TN_KERNELS_CPU_POINTWISE_H

#include <stddef.h>

#include "model/config.h"

/* out = residual + delta over n floats (out may alias either). */
void residual_forward_cpu(float *out, const float *residual, const float *delta, size_t n);

/* out = act(a) ⊙ b. */
void glu_forward_cpu(float *out, const float *a, const float *b, TnActivation act, size_t n);

/* Backward of glu_forward_cpu: da = dout ⊙ b ⊙ act'(a), db = dout ⊙ act(a)
 * (overwritten). */
void glu_backward_cpu(float *da, float *db, const float *dout, const float *a, const float *b, TnActivation act,
                      size_t n);

#endif
