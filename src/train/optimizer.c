#include "train/optimizer.h"

#include <math.h>

TnAdamW tn_adamw_defaults(void) { return (TnAdamW){.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f}; }

int tn_adamw_decays(TnParamKind kind) {
    /* theta sets rotation frequencies, norm gains and biases scales and
     * shifts, none a linear map: no decay. */
    return kind != TN_PARAM_THETA && kind != TN_PARAM_NORM_GAIN && kind != TN_PARAM_NORM_BIAS;
}

void tn_adamw_update(const TnAdamW *opt, const TnParamLayout *layout, float *params, const float *grads, float *m,
                     float *v, float lr, long long t) {
    tn_adamw_update_range(opt, layout, params, grads, m, v, lr, t, 0, layout->total);
}

void tn_adamw_update_range(const TnAdamW *opt, const TnParamLayout *layout, float *params, const float *grads,
                           float *m, float *v, float lr, long long t, size_t begin, size_t end) {
    float correction1 = (float)(1.0 - pow(opt->beta1, (double)t));
    float correction2 = (float)(1.0 - pow(opt->beta2, (double)t));
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *info = &layout->tensors[i];
        float decay = tn_adamw_decays(info->kind) ? opt->weight_decay : 0.0f;
        /* the part of the tensor inside [begin, end) */
        size_t first = info->offset > begin ? info->offset : begin;
        size_t last = info->offset + info->numel < end ? info->offset + info->numel : end;
        if (first >= last) continue;
        float *p = params + (first - begin), *mt = m + (first - begin), *vt = v + (first - begin);
        const float *g = grads + (first - begin);
        long n = (long)(last - first);
        #pragma omp parallel for
        for (long j = 0; j < n; j++) {
            mt[j] = opt->beta1 * mt[j] + (1.0f - opt->beta1) * g[j];
            vt[j] = opt->beta2 * vt[j] + (1.0f - opt->beta2) * g[j] * g[j];
            float m_hat = mt[j] / correction1, v_hat = vt[j] / correction2;
            p[j] -= lr * (m_hat / (sqrtf(v_hat) + opt->eps) + decay * p[j]);
        }
    }
}

double tn_grad_squares(const float *grads, size_t n) {
    double sum = 0.0;
    /* a fixed-order serial sum: the same norm, hence the same clipping, for
     * any number of threads (bit-identical resumes) */
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    return sum;
}

double tn_grad_norm(const float *grads, size_t n) { return sqrt(tn_grad_squares(grads, n)); }

float tn_grad_clip_scale(double norm, double max_norm) {
    return max_norm > 0 && norm > max_norm ? (float)(max_norm / norm) : 1.0f;
}

float tn_grad_clip(float *grads, size_t n, double norm, double max_norm) {
    float scale = tn_grad_clip_scale(norm, max_norm);
    if (scale == 1.0f) return scale;
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) grads[i] *= scale;
    return scale;
}

double tn_lr_schedule(long long step, long long steps, long long warmup, double lr, double min_lr_ratio) {
    if (step < warmup) return lr * (double)(step + 1) / (double)warmup;
    long long span = steps - warmup;
    double progress = span > 0 ? (double)(step - warmup) / (double)span : 1.0;
    if (progress > 1.0) progress = 1.0;
    double min_lr = min_lr_ratio * lr;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(M_PI * progress));
}
