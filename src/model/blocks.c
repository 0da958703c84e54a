#include "model/blocks.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/pointwise.h"

int tn_check_batch_size(int batch, int seq_len, TnError *err) {
    if (batch < 1) return tn_fail(err, "a batch of %d sequences holds nothing", batch);
    if ((long long)batch * seq_len > INT_MAX)
        return tn_fail(err, "%d sequences of %d tokens are %lld tokens per pass, more than 2^31 - 1", batch, seq_len,
                       (long long)batch * seq_len);
    return 0;
}

int tn_check_batch(const TnConfig *cfg, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                   TnError *err) {
    if (tn_check_batch_size(batch, seq_len, err)) return -1;
    if (cfg->pe == TN_PE_APE && seq_len > cfg->max_positions)
        return tn_fail(err, "a sequence of %d tokens exceeds the %d learned positions (max_position_embeddings)",
                       seq_len, cfg->max_positions);
    int N = batch * seq_len, V = cfg->vocab_size, scored = 0;
    for (int r = 0; r < N; r++)
        if (tokens[r] < 0 || tokens[r] >= V)
            return tn_fail(err, "token id %d at position %d is outside the vocabulary [0, %d)", tokens[r], r, V);
    for (int r = 0; targets && r < N; r++) {
        if (targets[r] == TN_IGNORE_INDEX) continue;
        if (targets[r] < 0 || targets[r] >= V)
            return tn_fail(err, "target id %d at position %d is outside the vocabulary [0, %d)", targets[r], r, V);
        scored++;
    }
    return scored;
}

int tn_model_check_inputs(const TnModel *m, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                          TnError *err) {
    const TnActivations *a = &m->acts;
    if (!a->memory || batch > a->max_batch || seq_len > a->max_seq)
        return tn_fail(err, "forward of %d x %d tokens exceeds the reserved %d x %d", batch, seq_len, a->max_batch,
                       a->max_seq);
    return tn_check_batch(&m->config, tokens, targets, batch, seq_len, err) < 0 ? -1 : 0;
}

void tn_model_sum_parts(const TnModel *m, float *buf, size_t n) {
    if (tn_model_parts(m) == 1) return;
    TnError err;
    if (tn_comm_all_reduce_sum(m->tensor_group, buf, n, &err)) {
        fprintf(stderr, "tnllm: error: tensor-parallel rank %d of %d: %s\n", m->tensor_group->rank,
                m->tensor_group->size, err.msg);
        tn_comm_abort(m->tensor_group, 1);
        tn_die("%s", err.msg);
    }
}

void tn_layer_rest_forward(TnModel *m, int layer, int n_rows, const float *mixed) {
    const TnConfig *cfg = &m->config;
    TnLayerActs *la = &m->acts.layers[layer];
    const TnLayerWeights *lw = &m->w.layers[layer];
    int parts = tn_model_parts(m), D = cfg->dim, G = cfg->glu_dim / parts;
    size_t ND = (size_t)n_rows * D;
    float *out = layer + 1 < cfg->n_layers ? m->acts.layers[layer + 1].resid : m->acts.resid_final;
    /* W_out split by rows (Eq. 11-18): the ranks' products add up */
    matmul_forward_cpu(la->resid_mid, mixed, lw->out, n_rows, D / parts, D);
    tn_model_sum_parts(m, la->resid_mid, ND);
    residual_forward_cpu(la->resid_mid, la->resid, la->resid_mid, (size_t)n_rows * D);
    norm_forward_cpu(cfg->norm, la->norm2, la->norm2_rstd, la->resid_mid, lw->channel_norm.gain, lw->channel_norm.bias,
                     n_rows, D);
    matmul_forward_cpu(la->glu1, la->norm2, lw->l1, n_rows, D, G);
    matmul_forward_cpu(la->glu2, la->norm2, lw->l2, n_rows, D, G);
    glu_forward_cpu(la->glu, la->glu1, la->glu2, cfg->glu_act, (size_t)n_rows * G);
    /* SGLU: W1, W2 split by columns, W3 by rows, one sum (Eq. 5) */
    matmul_forward_cpu(out, la->glu, lw->l3, n_rows, G, D);
    tn_model_sum_parts(m, out, ND);
    residual_forward_cpu(out, la->resid_mid, out, (size_t)n_rows * D);
}

void tn_layer_rest_backward(TnModel *m, int layer, int n_rows, const float *mixed, float *dmixed,
                            const TnWeights *dw) {
    const TnConfig *cfg = &m->config;
    TnLayerActs *la = &m->acts.layers[layer];
    const TnLayerWeights *lw = &m->w.layers[layer];
    const TnLayerWeights *lg = &dw->layers[layer];
    TnActGrads *g = &m->grad_acts;
    int parts = tn_model_parts(m), D = cfg->dim, G = cfg->glu_dim / parts;
    memset(g->dglu, 0, (size_t)n_rows * G * sizeof *g->dglu);
    matmul_backward_cpu(g->dglu, lg->l3, g->dresid, la->glu, lw->l3, n_rows, G, D);
    glu_backward_cpu(g->dglu1, g->dglu2, g->dglu, la->glu1, la->glu2, cfg->glu_act, (size_t)n_rows * G);
    memset(g->dnorm, 0, (size_t)n_rows * D * sizeof *g->dnorm);
    matmul_backward_cpu(g->dnorm, lg->l1, g->dglu1, la->norm2, lw->l1, n_rows, D, G);
    matmul_backward_cpu(g->dnorm, lg->l2, g->dglu2, la->norm2, lw->l2, n_rows, D, G);
    tn_model_sum_parts(m, g->dnorm, (size_t)n_rows * D);
    norm_backward_cpu(cfg->norm, g->dresid, lg->channel_norm.gain, lg->channel_norm.bias, g->dnorm, la->resid_mid,
                      la->norm2_rstd, lw->channel_norm.gain, n_rows, D);
    memset(dmixed, 0, (size_t)n_rows * (D / parts) * sizeof *dmixed);
    matmul_backward_cpu(dmixed, lg->out, g->dresid, mixed, lw->out, n_rows, D / parts, D);
}

void tn_head_forward(TnModel *m, const int32_t *targets, int n_rows, float *mean_loss) {
    const TnConfig *cfg = &m->config;
    TnActivations *a = &m->acts;
    int D = cfg->dim, V = cfg->vocab_size;
    norm_forward_cpu(cfg->norm, a->norm_final, a->norm_final_rstd, a->resid_final, m->w.final_norm.gain,
                     m->w.final_norm.bias, n_rows, D);
    matmul_forward_cpu(a->logits, a->norm_final, m->w.lm_head, n_rows, D, V);
    if (!targets) return;
    int scored = crossentropy_forward_cpu(a->losses, a->logits, targets, n_rows, V);
    double sum = 0.0;
    for (int r = 0; r < n_rows; r++) sum += a->losses[r];
    *mean_loss = scored ? (float)(sum / scored) : 0.0f;
}

void tn_head_backward(TnModel *m, const int32_t *targets, int n_rows, float loss_scale, const TnWeights *dw) {
    const TnConfig *cfg = &m->config;
    TnActivations *a = &m->acts;
    TnActGrads *g = &m->grad_acts;
    int D = cfg->dim, V = cfg->vocab_size;
    size_t ND = (size_t)n_rows * D;
    /* logits = Norm(h) E^T: the tied projection adds into dE here and again
     * at the embedding's backward. */
    crossentropy_backward_cpu(a->logits, a->logits, targets, n_rows, V, loss_scale);
    memset(g->dnorm, 0, ND * sizeof *g->dnorm);
    matmul_backward_cpu(g->dnorm, dw->lm_head, a->logits, a->norm_final, m->w.lm_head, n_rows, D, V);
    memset(g->dresid, 0, ND * sizeof *g->dresid);
    norm_backward_cpu(cfg->norm, g->dresid, dw->final_norm.gain, dw->final_norm.bias, g->dnorm, a->resid_final,
                      a->norm_final_rstd, m->w.final_norm.gain, n_rows, D);
}
