#include "kernels/cpu/qk_features.h"

#include <math.h>

#include "kernels/cpu/activation.h"

void qk_features_forward_cpu(float *qf, float *kf, const float *qkvu, int ld, TnActivation act, const float *theta,
                             int n_rows, int seq_len, int pos_offset, int n_heads, int head_dim) {
    int D = n_heads * head_dim, dk = theta ? 2 * head_dim : head_dim;
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *q = qkvu + (long)r * ld, *k = q + D;
        float *qo = qf + (long)r * n_heads * dk, *ko = kf + (long)r * n_heads * dk;
        double pos = pos_offset + r % seq_len;
        for (int h = 0; h < n_heads; h++) {
            for (int c = 0; c < head_dim; c++) {
                int i = h * head_dim + c;
                float qa = activation_forward(act, q[i]), ka = activation_forward(act, k[i]);
                if (!theta) {
                    qo[h * dk + c] = qa;
                    ko[h * dk + c] = ka;
                    continue;
                }
                /* The angle in double: theta * p loses digits in float32
                 * once p reaches the thousands. */
                double angle = (double)theta[i] * pos;
                float cs = (float)cos(angle), sn = (float)sin(angle);
                qo[h * dk + c] = qa * cs;
                qo[h * dk + head_dim + c] = qa * sn;
                ko[h * dk + c] = ka * cs;
                ko[h * dk + head_dim + c] = ka * sn;
            }
        }
    }
}

/* Gradient of one activated feature a through its LRPE expansion
 * [a cos, a sin]: da = g_cos cos + g_sin sin. */
static inline float lrpe_input_grad(float g_cos, float g_sin, float cs, float sn) { return g_cos * cs + g_sin * sn; }

void qk_features_backward_cpu(float *dqkvu, float *dtheta, const float *dqf, const float *dkf, const float *qkvu,
                              int ld, TnActivation act, const float *theta, int n_rows, int seq_len, int pos_offset,
                              int n_heads, int head_dim) {
    int D = n_heads * head_dim, dk = theta ? 2 * head_dim : head_dim;
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *q = qkvu + (long)r * ld, *k = q + D;
        const float *gq = dqf + (long)r * n_heads * dk, *gk = dkf + (long)r * n_heads * dk;
        float *dq = dqkvu + (long)r * ld, *dkey = dq + D;
        double pos = pos_offset + r % seq_len;
        for (int h = 0; h < n_heads; h++) {
            for (int c = 0; c < head_dim; c++) {
                int i = h * head_dim + c, f = h * dk + c;
                float qa = gq[f], ka = gk[f];
                if (theta) {
                    double angle = (double)theta[i] * pos;
                    float cs = (float)cos(angle), sn = (float)sin(angle);
                    qa = lrpe_input_grad(gq[f], gq[f + head_dim], cs, sn);
                    ka = lrpe_input_grad(gk[f], gk[f + head_dim], cs, sn);
                }
                dq[i] = qa * activation_derivative(act, q[i]);
                dkey[i] = ka * activation_derivative(act, k[i]);
            }
        }
    }
    if (!theta) return;
    /* d(a cos(theta p))/dtheta = -a p sin, d(a sin(theta p))/dtheta = a p cos. */
    #pragma omp parallel for
    for (int i = 0; i < D; i++) {
        int h = i / head_dim, f = h * dk + i % head_dim;
        double sum = 0.0;
        for (int r = 0; r < n_rows; r++) {
            const float *q = qkvu + (long)r * ld, *k = q + D;
            const float *gq = dqf + (long)r * n_heads * dk, *gk = dkf + (long)r * n_heads * dk;
            double pos = pos_offset + r % seq_len, angle = (double)theta[i] * pos;
            double cs = cos(angle), sn = sin(angle);
            double qa = activation_forward(act, q[i]), ka = activation_forward(act, k[i]);
            sum += pos * (qa * (gq[f + head_dim] * cs - gq[f] * sn) + ka * (gk[f + head_dim] * cs - gk[f] * sn));
        }
        dtheta[i] += (float)sum;
    }
}
