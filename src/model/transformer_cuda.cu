#include "model/transformer_cuda.h"

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_try.cuh"
#include "kernels/cuda/flash_attention.h"
#include "kernels/cuda/rope_cuda.h"

namespace {

/* Layer attention over batch x seq_len rows: q and k the rotated D-wide
 * rows, v inside the [q k v] rows, o D wide. */
FlashShape flash_shape(const TnConfig *cfg, int batch, int seq_len) {
    long D = cfg->dim;
    return FlashShape{batch, seq_len, cfg->n_heads, tn_head_dim(cfg), D, D, tn_qkvu_rows(cfg), D};
}

} // namespace

extern "C" size_t tn_transformer_cuda_scratch_bytes(const TnConfig *cfg, int batch, int seq_len) {
    FlashShape s = flash_shape(cfg, batch, seq_len);
    return flash_attention_scratch_bytes(&s);
}

extern "C" int tn_transformer_cuda_mixer_forward(TnModelCuda *g, int layer, int batch, int seq_len, int products,
                                                 TnError *err) {
    const TnConfig *cfg = &g->config;
    int N = batch * seq_len, D = cfg->dim, H = cfg->n_heads, d = tn_head_dim(cfg), P = tn_qkvu_rows(cfg);
    cudaStream_t stream = (cudaStream_t)g->stream;
    TnCudaLayerActs *la = &g->layers[layer];
    TRY(rope_forward_cuda(la->qf, la->qkvu, P, N, seq_len, H, d, TN_ROPE_THETA, stream, err));
    TRY(rope_forward_cuda(la->kf, la->qkvu + D, P, N, seq_len, H, d, TN_ROPE_THETA, stream, err));
    if (!products) return 0;
    FlashShape s = flash_shape(cfg, batch, seq_len);
    return flash_attention_forward_cuda(la->attn, la->softmax_lse, la->qf, la->kf, la->qkvu + 2 * D, &s, stream, err);
}

extern "C" int tn_transformer_cuda_mixer_backward(TnModelCuda *g, int layer, int batch, int seq_len, TnError *err) {
    const TnConfig *cfg = &g->config;
    int N = batch * seq_len, D = cfg->dim, H = cfg->n_heads, d = tn_head_dim(cfg), P = tn_qkvu_rows(cfg);
    cudaStream_t stream = (cudaStream_t)g->stream;
    const TnCudaLayerActs *la = &g->layers[layer];
    /* batch and seq_len are within the reserved ones (check_reserved), whose flash scratch the arena holds */
    FlashShape s = flash_shape(cfg, batch, seq_len);
    TRY(flash_attention_backward_cuda(g->dqf, g->dkf, g->dqkvu + 2 * D, g->dattn, la->qf, la->kf, la->qkvu + 2 * D,
                                      la->attn, la->softmax_lse, &s, g->attn_scratch, stream, err));
    TRY(rope_backward_cuda(g->dqkvu, P, g->dqf, N, seq_len, H, d, TN_ROPE_THETA, stream, err));
    return rope_backward_cuda(g->dqkvu + D, P, g->dkf, N, seq_len, H, d, TN_ROPE_THETA, stream, err);
}
