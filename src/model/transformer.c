#include "model/transformer.h"

#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/softmax_attention.h"

const float *tn_transformer_mixer_forward(TnModel *m, int layer, int batch, int seq_len) {
    const TnConfig *cfg = &m->config;
    TnActivations *a = &m->acts;
    TnLayerActs *la = &a->layers[layer];
    const TnLayerWeights *lw = &m->w.layers[layer];
    int N = batch * seq_len, D = cfg->dim, H = cfg->n_heads, d = tn_head_dim(cfg), P = 3 * D;
    norm_forward_cpu(TN_NORM_RMS, la->norm1, la->norm1_rstd, la->resid, lw->token_norm.gain, NULL, N, D);
    /* q_proj, k_proj, v_proj as one [3D, D] product (consecutive, params.h) */
    matmul_forward_cpu(la->qkvu, la->norm1, lw->qkvu, N, D, P);
    rope_forward_cpu(la->qf, la->qkvu, P, N, seq_len, H, d, TN_ROPE_THETA);
    rope_forward_cpu(la->kf, la->qkvu + D, P, N, seq_len, H, d, TN_ROPE_THETA);
    softmax_attention_forward_cpu(la->attn, la->qf, la->kf, la->qkvu + 2 * D, P, batch, seq_len, H, d,
                                  a->attn_scratch);
    return la->attn;
}

void tn_transformer_mixer_backward(TnModel *m, int layer, int batch, int seq_len, const TnWeights *dw) {
    const TnConfig *cfg = &m->config;
    const TnLayerActs *la = &m->acts.layers[layer];
    const TnLayerWeights *lw = &m->w.layers[layer];
    const TnLayerWeights *lg = &dw->layers[layer];
    TnActGrads *g = &m->grad_acts;
    int N = batch * seq_len, D = cfg->dim, H = cfg->n_heads, d = tn_head_dim(cfg), P = 3 * D;
    softmax_attention_backward_cpu(g->dqf, g->dkf, g->dqkvu + 2 * D, P, g->dattn, la->qf, la->kf, la->qkvu + 2 * D,
                                   batch, seq_len, H, d, g->attn_scratch);
    rope_backward_cpu(g->dqkvu, P, g->dqf, N, seq_len, H, d, TN_ROPE_THETA);
    rope_backward_cpu(g->dqkvu + D, P, g->dkf, N, seq_len, H, d, TN_ROPE_THETA);
    memset(g->dnorm, 0, (size_t)N * D * sizeof *g->dnorm);
    matmul_backward_cpu(g->dnorm, lg->qkvu, g->dqkvu, la->norm1, lw->qkvu, N, D, P);
    norm_backward_cpu(TN_NORM_RMS, g->dresid, lg->token_norm.gain, NULL, g->dnorm, la->resid, la->norm1_rstd,
                      lw->token_norm.gain, N, D);
}
