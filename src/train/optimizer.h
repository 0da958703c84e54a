/* optimizer.h: AdamW, gradient clipping and the learning-rate schedule.
 *
 * AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW), per element of
 * the flat parameter buffer at step t = 1, 2, ...:
 *   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
 *   p = p (1 - lr wd) - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * with the decoupled weight decay wd applied to matrices only (every tensor
 * but LRPE's theta and the norms' gains and biases). Moments m and v live in buffers with the parameters'
 * layout (params.h), so a data-parallel shard is one contiguous range.
 *
 * Schedule: linear warmup from lr / warmup to lr over `warmup` steps, then
 * cosine decay to min_lr_ratio * lr at step `steps`.
 */
#ifndef TN_TRAIN_OPTIMIZER_H
#define TN_TRAIN_OPTIMIZER_H

#include <stddef.h>

#include "model/params.h"

typedef struct TnAdamW {
    float beta1, beta2, eps, weight_decay;
} TnAdamW;

/* beta1 0.9, beta2 0.95, eps 1e-8, weight decay 0.1. */
TnAdamW tn_adamw_defaults(void);

/* 1 when AdamW decays tensors of this kind (the matrices), 0 for theta and
 * the norms' gains and biases: the CPU and GPU steps share the rule. */
int tn_adamw_decays(TnParamKind kind);

/* One AdamW step (t counts from 1) over every tensor of layout. */
void tn_adamw_update(const TnAdamW *opt, const TnParamLayout *layout, float *params, const float *grads, float *m,
                     float *v, float lr, long long t);
/* The same step on the elements [begin, end) of the flat buffer only (a
 * ZeRO shard, dist/comm.h): params, grads, m and v hold the range alone
 * (params[0] is element begin; pass whole buffers + begin for a range of
 * them). */
void tn_adamw_update_range(const TnAdamW *opt, const TnParamLayout *layout, float *params, const float *grads,
                           float *m, float *v, float lr, long long t, size_t begin, size_t end);

/* The global l2 norm of grads (n floats), accumulated in double. It is not
 * finite when any gradient is not. */
double tn_grad_norm(const float *grads, size_t n);
/* Its square, the sum of squares (to add the norms of pieces). */
double tn_grad_squares(const float *grads, size_t n);
/* The clip's factor: max_norm / norm when max_norm > 0 and norm > max_norm,
 * else 1. */
float tn_grad_clip_scale(double norm, double max_norm);
/* Scales grads by tn_grad_clip_scale; returns it. */
float tn_grad_clip(float *grads, size_t n, double norm, double max_norm);

/* Learning rate of step (0-based) of `steps`. */
double tn_lr_schedule(long long step, long long steps, long long warmup, double lr, double min_lr_ratio);

#endif
