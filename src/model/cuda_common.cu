#include "model/cuda_common.h"

#include <cuda_runtime.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_try.cuh"

extern "C" int tn_cuda_stream_open(void **stream, TnMatmulCuda **matmul, TnError *err) {
    *matmul = NULL;
    cudaStream_t created;
    CUDA_TRY(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    *stream = created;
    return tn_matmul_cuda_create(matmul, created, TN_CUBLAS_WORKSPACE_BYTES, err);
}

extern "C" int tn_cuda_device_check(TnError *err) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status == cudaSuccess && count > 0) return 0;
    (void)cudaGetLastError(); /* the error is reported here, not by a later call */
    int built_major = CUDART_VERSION / 1000, built_minor = CUDART_VERSION % 1000 / 10, driver = 0;
    if (status == cudaErrorInsufficientDriver && cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0)
        return tn_fail(err,
                       "--device cuda: no usable GPU: the NVIDIA driver supports CUDA %d.%d, this tnllm was built with "
                       "CUDA %d.%d (update the driver, or run on the CPU)",
                       driver / 1000, driver % 1000 / 10, built_major, built_minor);
    if (status == cudaErrorInsufficientDriver) /* no driver at all: cudaDriverGetVersion gives 0 */
        return tn_fail(err, "--device cuda: no usable GPU: no NVIDIA driver is installed (this tnllm needs one for "
                            "CUDA %d.%d or newer; or run on the CPU)", built_major, built_minor);
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    const char *why = status == cudaSuccess ? "none found" : cudaGetErrorString(status);
    if (visible) return tn_fail(err, "--device cuda: no usable GPU: %s (CUDA_VISIBLE_DEVICES=%s)", why, visible);
    return tn_fail(err, "--device cuda: no usable GPU: %s", why);
}

extern "C" int tn_cuda_decay_upload(float *decay, const TnConfig *cfg, TnError *err) {
    int L = cfg->n_layers, H = cfg->n_heads;
    float *host = (float *)tn_malloc((size_t)L * H * sizeof(float));
    double *lambda = (double *)tn_malloc((size_t)H * sizeof(double));
    for (int l = 0; l < L; l++) {
        tn_decay_rates(cfg, l, lambda);
        for (int h = 0; h < H; h++) host[l * H + h] = (float)lambda[h];
    }
    cudaError_t copied = cudaMemcpy(decay, host, (size_t)L * H * sizeof(float), cudaMemcpyHostToDevice);
    free(host);
    free(lambda);
    CUDA_TRY(copied);
    return 0;
}

extern "C" TnAttnShape tn_cuda_attention_shape(const TnConfig *cfg, int layer, int batch, int seq_len) {
    int dk = tn_qk_head_dim(cfg, layer), H = cfg->n_heads, d = tn_head_dim(cfg);
    return TnAttnShape{batch, H, seq_len, dk, d, H * dk, H * dk, tn_qkvu_rows(cfg), cfg->dim};
}
