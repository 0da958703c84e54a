#include "kernels/cpu/pointwise.h"

#include "kernels/cpu/activation.h"

void residual_forward_cpu(float *out, const float *residual, const float *delta, size_t n) {
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = residual[i] + delta[i];
}

void glu_forward_cpu(float *out, const float *a, const float *b, TnActivation act, size_t n) {
    /* the released SGLU (no activation) as a plain product: a branch per
     * element would keep the loop from vectorising */
    if (act == TN_ACT_NONE) {
        #pragma omp parallel for
        for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
        return;
    }
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = activation_forward(act, a[i]) * b[i];
}

void glu_backward_cpu(float *da, float *db, const float *dout, const float *a, const float *b, TnActivation act,
                      size_t n) {
    if (act == TN_ACT_NONE) {
        #pragma omp parallel for
        for (size_t i = 0; i < n; i++) {
            da[i] = dout[i] * b[i];
            db[i] = dout[i] * a[i];
        }
        return;
    }
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        da[i] = dout[i] * b[i] * activation_derivative(act, a[i]);
        db[i] = dout[i] * activation_forward(act, a[i]);
    }
}
