#include "kernels/cpu/norm.h"

#include <math.h>

#include "model/config.h"

void srmsnorm_forward_cpu(float *out, float *rstd, const float *inp, int n_rows, int dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        float sum = 0.0f;
        for (int c = 0; c < dim; c++) sum += x[c] * x[c];
        float s = 1.0f / sqrtf(sum / dim + TN_NORM_EPS);
        for (int c = 0; c < dim; c++) y[c] = x[c] * s;
        if (rstd) rstd[r] = s;
    }
}

void srmsnorm_backward_cpu(float *dinp, const float *dout, const float *inp, const float *rstd, int n_rows, int dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim, *dy = dout + (long)r * dim;
        float *dx = dinp + (long)r * dim;
        float s = rstd[r], dot = 0.0f;
        for (int c = 0; c < dim; c++) dot += dy[c] * x[c];
        /* d rstd / d x_c = -rstd^3 x_c / dim */
        float k = s * s * s * dot / dim;
        for (int c = 0; c < dim; c++) dx[c] += s * dy[c] - k * x[c];
    }
}

/* Mean of a row: LayerNorm's centre, 0 for the RMS norms. */
static float row_center(TnNormKind kind, const float *x, int dim) {
    if (kind != TN_NORM_LAYER) return 0.0f;
    float sum = 0.0f;
    for (int c = 0; c < dim; c++) sum += x[c];
    return sum / dim;
}

void norm_forward_cpu(TnNormKind kind, float *out, float *rstd, const float *inp, const float *gain, const float *bias,
                      int n_rows, int dim) {
    if (kind == TN_NORM_SRMS) {
        srmsnorm_forward_cpu(out, rstd, inp, n_rows, dim);
        return;
    }
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        float mu = row_center(kind, x, dim), sum = 0.0f;
        for (int c = 0; c < dim; c++) sum += (x[c] - mu) * (x[c] - mu);
        float s = 1.0f / sqrtf(sum / dim + TN_NORM_EPS);
        for (int c = 0; c < dim; c++) y[c] = gain[c] * (x[c] - mu) * s + (bias ? bias[c] : 0.0f);
        if (rstd) rstd[r] = s;
    }
}

void norm_backward_cpu(TnNormKind kind, float *dinp, float *dgain, float *dbias, const float *dout, const float *inp,
                       const float *rstd, const float *gain, int n_rows, int dim) {
    if (kind == TN_NORM_SRMS) {
        srmsnorm_backward_cpu(dinp, dout, inp, rstd, n_rows, dim);
        return;
    }
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim, *dy = dout + (long)r * dim;
        float *dx = dinp + (long)r * dim;
        float s = rstd[r], mu = row_center(kind, x, dim), mean_dxhat = 0.0f, mean_dot = 0.0f;
        for (int c = 0; c < dim; c++) {
            float dxhat = gain[c] * dy[c];
            mean_dxhat += dxhat;
            mean_dot += dxhat * (x[c] - mu) * s;
        }
        mean_dxhat = kind == TN_NORM_LAYER ? mean_dxhat / dim : 0.0f;
        mean_dot /= dim;
        for (int c = 0; c < dim; c++)
            dx[c] += s * (gain[c] * dy[c] - mean_dxhat - (x[c] - mu) * s * mean_dot);
    }
    /* Serial over rows: a fixed summation order for any number of threads. */
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim, *dy = dout + (long)r * dim;
        float s = rstd[r], mu = row_center(kind, x, dim);
        for (int c = 0; c < dim; c++) dgain[c] += dy[c] * (x[c] - mu) * s;
        if (dbias)
            for (int c = 0; c < dim; c++) dbias[c] += dy[c];
    }
}

void rms_norm_part_sums_cpu(float *sums, const float *inp, int n_rows, int dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim;
        float sum = 0.0f;
        for (int c = 0; c < dim; c++) sum += x[c] * x[c];
        sums[r] = sum;
    }
}

void rms_norm_part_forward_cpu(float *out, float *rstd, const float *sums, const float *inp, const float *gain,
                               int n_rows, int dim, int full_dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        float s = 1.0f / sqrtf(sums[r] / full_dim + TN_NORM_EPS);
        for (int c = 0; c < dim; c++) y[c] = (gain ? gain[c] : 1.0f) * x[c] * s;
        rstd[r] = s;
    }
}

void rms_norm_part_dots_cpu(float *dots, const float *dout, const float *inp, const float *gain, int n_rows, int dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim, *dy = dout + (long)r * dim;
        float dot = 0.0f;
        for (int c = 0; c < dim; c++) dot += (gain ? gain[c] : 1.0f) * dy[c] * x[c];
        dots[r] = dot;
    }
}

void rms_norm_part_backward_cpu(float *dinp, float *dgain, const float *dots, const float *dout, const float *inp,
                                const float *rstd, const float *gain, int n_rows, int dim, int full_dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim, *dy = dout + (long)r * dim;
        float *dx = dinp + (long)r * dim;
        /* d rstd / d x_c = -rstd^3 x_c / full_dim, over the whole row */
        float s = rstd[r], k = s * s * s * dots[r] / full_dim;
        for (int c = 0; c < dim; c++) dx[c] += s * (gain ? gain[c] : 1.0f) * dy[c] - k * x[c];
    }
    if (!dgain) return;
    /* Serial over rows: a fixed summation order for any number of threads. */
    for (int r = 0; r < n_rows; r++) {
        const float *x = inp + (long)r * dim, *dy = dout + (long)r * dim;
        for (int c = 0; c < dim; c++) dgain[c] += dy[c] * x[c] * rstd[r];
    }
}
