/* cuda_common.h: what the GPU training step (transnormer_cuda.h) and the GPU
 * inference session (infer/session_cuda.h) set up alike: a stream with the
 * products' cuBLASLt context on it, the decay rates lambda on the device, and the
 * attention shape of a layer over the fused q|k|v|u buffer.
 * Functions return 0, or -1 with err naming the call that failed.
 */
#ifndef TN_MODEL_CUDA_COMMON_H
#define TN_MODEL_CUDA_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" { /* the project's C headers carry no C++ guards of their own */
#endif

#include "kernels/cpu/attention.h"
#include "kernels/cuda/matmul_cuda.h"
#include "model/config.h"
#include "util/error.h"

/* The cuBLASLt workspace the training step and the inference session give
 * their products (kernels/cuda/matmul_cuda.h). */
#define TN_CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)

/* A non-blocking stream (*stream, a cudaStream_t) and the products' context
 * on it (*matmul: cuBLASLt with its own TN_CUBLAS_WORKSPACE_BYTES; the same
 * bits on every run on the same GPU model and library). Each is set as soon
 * as it exists (*matmul NULL before), so that a failure leaves the caller
 * something to release. */
int tn_cuda_stream_open(void **stream, TnMatmulCuda **matmul, TnError *err);

/* Fails, saying why in terms a user can act on (the driver older than this
 * build's CUDA, no GPU visible), when the CUDA runtime finds no device;
 * called before a model or session touches the GPU. */
int tn_cuda_device_check(TnError *err);

/* decay (device, L x H fp32) = tn_decay_rates of every layer of cfg. */
int tn_cuda_decay_upload(float *decay, const TnConfig *cfg, TnError *err);

/* Layer `layer`'s attention over batch x seq_len rows of the fused
 * projection: q, k features (H * dk columns), v inside the q|k|v|u rows
 * (tn_qkvu_rows wide: 4D, or 3D without the gate), o D wide. */
TnAttnShape tn_cuda_attention_shape(const TnConfig *cfg, int layer, int batch, int seq_len);

#ifdef __cplusplus
}
#endif

#endif
