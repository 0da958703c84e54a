/* activation.h: the pointwise activations of the switches (config.h
 * TnActivation) and their derivatives, shared by the q/k features (GLA,
 * Eq. 3) and the SGLU branch (Eq. 5) so both use one definition.
 *   none:  a(x) = x
 *   silu:  a(x) = x sigmoid(x)
 *   1+elu: a(x) = 1 + elu(x) = x + 1 for x > 0, exp(x) otherwise (the paper's
 *          positive feature map, Sec. 3.1.2)
 * Compiled by nvcc too (host and device), so that the CUDA kernels
 * (kernels/cuda/qk_features_cuda.cu, elementwise_cuda.cu) use this one
 * definition rather than a copy.
 */
#ifndef TN_KERNELS_CPU_ACTIVATION_H
#define TN_KERNELS_CPU_ACTIVATION_H

#include <math.h>

#include "model/config.h"

#ifdef __CUDACC__
#define TN_HOST_DEVICE __host__ __device__
#else
#define TN_HOST_DEVICE
#endif

/* On the GPU, the hardware's exp and division approximations (__expf:
 * 2 + 1.17 |x| ulp, ~100 ulp at |x| = 80; __fdividef: 2 ulp; far below the
 * 2^-8 of the bf16 the features are then stored in): with the IEEE ones
 * the q/k feature kernels were bound by arithmetic, at 2.6 of the 4.2 TB/s
 * that copying their bytes takes. A divisor over 2^126 gives 0 (silu(x)
 * for x < -87, where it is about 1e-36). */
#ifdef __CUDA_ARCH__
#define TN_ACT_EXP(x) __expf(x)
#define TN_ACT_DIVIDE(a, b) __fdividef(a, b)
#else
#define TN_ACT_EXP(x) expf(x)
#define TN_ACT_DIVIDE(a, b) ((a) / (b))
#endif

static inline TN_HOST_DEVICE float activation_forward(TnActivation act, float x) {
    switch (act) {
    case TN_ACT_SILU: return TN_ACT_DIVIDE(x, 1.0f + TN_ACT_EXP(-x));
    case TN_ACT_ONE_PLUS_ELU: return x > 0.0f ? x + 1.0f : TN_ACT_EXP(x);
    case TN_ACT_NONE: break;
    }
    return x;
}

/* d/dx x sigmoid(x) = sigmoid(x) (1 + x (1 - sigmoid(x))) */
static inline TN_HOST_DEVICE float activation_derivative(TnActivation act, float x) {
    switch (act) {
    case TN_ACT_SILU: {
        float s = TN_ACT_DIVIDE(1.0f, 1.0f + TN_ACT_EXP(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case TN_ACT_ONE_PLUS_ELU: return x > 0.0f ? 1.0f : TN_ACT_EXP(x);
    case TN_ACT_NONE: break;
    }
    return 1.0f;
}

#endif
