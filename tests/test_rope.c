/* RoPE (kernels/cpu/rope.h) on fresh random inputs: the rotated q . k
 * depends only on the distance t - s (the point of a relative position
 * encoding; within 1e-5 of |q| |k|), a rotation keeps each head's norm, and
 * the backward pass is the adjoint of the forward,
 * <rope(x), g> = <x, rope_backward(g)>, within 1e-5 relative. The forward
 * passes (from position 0 per sequence, and from a first position > 0) match
 * a float64 rotate-half reference: each element within 1e-6 of the scale
 * |a| + |b| of the pair it is made of (float32 rounding of cos, sin and two
 * products is a few 1e-8 of it). */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/cpu/rope.h"
#include "test.h"
#include "util/rng.h"

enum { T = 40, H = 3, HEAD = 8, W = H * HEAD, STRIDE = 3 * W };

static double head_dot(const float *a, const float *b, int h) {
    double s = 0;
    for (int c = 0; c < HEAD; c++) s += (double)a[h * HEAD + c] * b[h * HEAD + c];
    return s;
}

/* The float64 reference (base 10000): in each head, channel c and c + HEAD/2
 * turn by position * 10000^(-2c/HEAD) (rotate-half: y = x cos + (-x2, x1)
 * sin). Returns the worst error of out (rows of W) against it, relative to
 * |a| + |b| of the pair. Row r of inp (stride ld_in) is at position
 * first_position + r % seq_len. */
static double worst_rope_error(const float *out, const float *inp, int ld_in, int n_rows, int seq_len,
                               int first_position) {
    double worst = 0;
    for (int r = 0; r < n_rows; r++)
        for (int h = 0; h < H; h++)
            for (int c = 0; c < HEAD / 2; c++) {
                double angle = (first_position + r % seq_len) * pow(10000.0, -2.0 * c / HEAD);
                const float *x = inp + (long)r * ld_in + h * HEAD;
                const float *y = out + (long)r * W + h * HEAD;
                double a = x[c], b = x[c + HEAD / 2], scale = fabs(a) + fabs(b);
                double ya = a * cos(angle) - b * sin(angle), yb = b * cos(angle) + a * sin(angle);
                worst = fmax(worst, fmax(fabs(y[c] - ya), fabs(y[c + HEAD / 2] - yb)) / scale);
            }
    return worst;
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    TnRng rng;
    tn_rng_seed(&rng, seed, 1);
    /* every row holds the same q and k, so rotated rows differ only by position */
    static float rows[T * STRIDE], q[T * W], k[T * W], grad[T * W], back[T * STRIDE];
    float q0[W], k0[W];
    for (int c = 0; c < W; c++) q0[c] = (float)tn_rng_normal(&rng), k0[c] = (float)tn_rng_normal(&rng);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < W; c++) rows[t * STRIDE + c] = q0[c], rows[t * STRIDE + W + c] = k0[c];
    rope_forward_cpu(q, rows, STRIDE, T, T, H, HEAD, 10000.0);
    rope_forward_cpu(k, rows + W, STRIDE, T, T, H, HEAD, 10000.0);
    double worst = 0;
    for (int h = 0; h < H; h++)
        for (int delta = 0; delta < 10; delta++) {
            double first = head_dot(q + delta * W, k, h), norms = sqrt(head_dot(q0, q0, h) * head_dot(k0, k0, h));
            for (int s = 1; s + delta < T; s++) {
                double e = fabs(head_dot(q + (s + delta) * W, k + s * W, h) - first) / norms;
                worst = e > worst ? e : worst;
            }
        }
    printf("relative property: worst %.2e\n", worst);
    CHECK(worst <= 1e-5, "q_t . k_s depends on more than t - s: %.3e", worst);
    double norm_error = 0;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            double before = head_dot(q0, q0, h), after = head_dot(q + t * W, q + t * W, h);
            norm_error = fmax(norm_error, fabs(after - before) / before);
        }
    CHECK(norm_error <= 1e-5, "rotation changes a head's norm by %.3e", norm_error);

    /* against the float64 reference, on random x (strided rows): two
     * sequences of T / 2, then T rows from position 1000 */
    for (int i = 0; i < T * STRIDE; i++) rows[i] = (float)tn_rng_normal(&rng);
    rope_forward_cpu(q, rows, STRIDE, T, T / 2, H, HEAD, 10000.0);
    double from_zero = worst_rope_error(q, rows, STRIDE, T, T / 2, 0);
    rope_forward_at_cpu(k, rows + W, STRIDE, T, 1000, H, HEAD, 10000.0);
    double from_1000 = worst_rope_error(k, rows + W, STRIDE, T, T, 1000);
    printf("float64 reference: worst %.2e (positions 0..%d), %.2e (positions 1000..%d)\n", from_zero, T / 2 - 1,
           from_1000, 1000 + T - 1);
    CHECK(from_zero <= 1e-6, "rope_forward_cpu vs float64 rotate-half: %.3e", from_zero);
    CHECK(from_1000 <= 1e-6, "rope_forward_at_cpu (first position 1000) vs float64 rotate-half: %.3e", from_1000);

    /* adjoint: the same x and random g */
    for (int i = 0; i < T * W; i++) grad[i] = (float)tn_rng_normal(&rng);
    rope_backward_cpu(back, STRIDE, grad, T, T / 2, H, HEAD, 10000.0);
    double lhs = 0, rhs = 0, scale = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < W; c++) {
            lhs += (double)q[t * W + c] * grad[t * W + c];
            rhs += (double)rows[t * STRIDE + c] * back[t * STRIDE + c];
            scale += fabs((double)q[t * W + c] * grad[t * W + c]);
        }
    printf("adjoint: <rope(x), g> %.6f, <x, rope_backward(g)> %.6f\n", lhs, rhs);
    CHECK(fabs(lhs - rhs) <= 1e-5 * scale, "backward is not the adjoint: %.9g vs %.9g", lhs, rhs);
    return TEST_DONE(argv[0]);
}
