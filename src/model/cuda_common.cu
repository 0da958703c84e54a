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
