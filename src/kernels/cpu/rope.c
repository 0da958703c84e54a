#include "kernels/cpu/rope.h"

#include <math.h>

/* out (stride ld_out) = rotation of inp (stride ld_in) by sign * a, row r
 * at position first_position + r % seq_len. */
static void rotate(float *out, int ld_out, const float *inp, int ld_in, int n_rows, int seq_len, int first_position,
                   int n_heads, int head_dim, double base, double sign) {
    int half = head_dim / 2;
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        double pos = (double)first_position + r % seq_len;
        const float *x = inp + (long)r * ld_in;
        float *y = out + (long)r * ld_out;
        for (int c = 0; c < half; c++) {
            /* the angle in double, as for LRPE: p * frequency loses digits in float32 */
            double angle = sign * pos * pow(base, -2.0 * c / head_dim);
            float cs = (float)cos(angle), sn = (float)sin(angle);
            for (int h = 0; h < n_heads; h++) {
                const float *xh = x + h * head_dim;
                float *yh = y + h * head_dim;
                float a = xh[c], b = xh[c + half];
                yh[c] = a * cs - b * sn;
                yh[c + half] = b * cs + a * sn;
            }
        }
    }
}

void rope_forward_cpu(float *out, const float *inp, int ld_in, int n_rows, int seq_len, int n_heads, int head_dim,
                      double base) {
    rotate(out, n_heads * head_dim, inp, ld_in, n_rows, seq_len, 0, n_heads, head_dim, base, 1.0);
}

void rope_backward_cpu(float *dinp, int ld_in, const float *dout, int n_rows, int seq_len, int n_heads, int head_dim,
                       double base) {
    rotate(dinp, ld_in, dout, n_heads * head_dim, n_rows, seq_len, 0, n_heads, head_dim, base, -1.0);
}

void rope_forward_at_cpu(float *out, const float *inp, int ld_in, int n_rows, int first_position, int n_heads,
                         int head_dim, double base) {
    rotate(out, n_heads * head_dim, inp, ld_in, n_rows, n_rows, first_position, n_heads, head_dim, base, 1.0);
}
