/* RoPE (kernels/cpu/rope.h) on fresh random inputs: the rotated q . k
 * depends only on the distance t - s (the point of a relative position
 * encoding; within 1e-5 of |q| |k|), a rotation keeps each head's norm, and
 * the backward pass is the adjoint of the forward,
 * <rope(x), g> = <x, rope_backward(g)>, within 1e-5 relative. */
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

    /* adjoint: random x (strided rows) and g */
    for (int i = 0; i < T * STRIDE; i++) rows[i] = (float)tn_rng_normal(&rng);
    for (int i = 0; i < T * W; i++) grad[i] = (float)tn_rng_normal(&rng);
    rope_forward_cpu(q, rows, STRIDE, T, T / 2, H, HEAD, 10000.0); /* two sequences of T / 2 */
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
