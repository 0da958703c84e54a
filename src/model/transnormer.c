#include "model/transnormer.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/embedding.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/qk_features.h"
#include "kernels/cpu/softmax_attention.h"
#include "model/blocks.h"
#include "model/checkpoint.h"
#include "model/transformer.h"

static void bind_model(TnModel *m) {
    const TnConfig *cfg = &m->config;
    if (m->params) tn_weights_bind(&m->w, &m->layout, m->params);
    m->decay = tn_malloc((size_t)cfg->n_layers * cfg->n_heads * sizeof *m->decay);
    double lambda[cfg->n_heads];
    for (int l = 0; l < cfg->n_layers; l++) {
        tn_decay_rates(cfg, l, lambda);
        for (int h = 0; h < cfg->n_heads; h++) m->decay[l * cfg->n_heads + h] = (float)lambda[h];
    }
    m->attn_algo = TN_ATTN_CHUNKED;
    m->attn_block = TN_ATTN_DEFAULT_BLOCK;
    memset(&m->acts, 0, sizeof m->acts);
}

void tn_model_create(TnModel *m, const TnConfig *cfg) {
    memset(m, 0, sizeof *m);
    m->config = *cfg;
    tn_param_layout_init(&m->layout, cfg);
    bind_model(m);
}

void tn_model_init(TnModel *m, const TnConfig *cfg, uint64_t seed) {
    tn_model_create(m, cfg);
    m->params = tn_malloc(m->layout.total * sizeof *m->params);
    tn_params_init(m->params, &m->layout, cfg, seed);
    tn_weights_bind(&m->w, &m->layout, m->params);
}

int tn_model_load(TnModel *m, const char *dir, TnError *err) {
    memset(m, 0, sizeof *m);
    if (tn_checkpoint_load(dir, &m->config, &m->layout, &m->params, err)) return -1;
    bind_model(m);
    return 0;
}

int tn_model_save(const TnModel *m, const char *dir, TnDtype dtype, size_t shard_bytes, TnError *err) {
    return tn_checkpoint_save(dir, &m->config, &m->layout, m->params, dtype, shard_bytes, err);
}

void tn_model_free(TnModel *m) {
    free(m->params);
    free(m->decay);
    free(m->acts.memory);
    free(m->grad_acts.memory);
    tn_param_layout_free(&m->layout);
    memset(m, 0, sizeof *m);
}

void tn_model_set_attention(TnModel *m, TnAttnAlgo algo, int block) {
    m->attn_algo = algo;
    m->attn_block = block;
    free(m->acts.memory);
    memset(&m->acts, 0, sizeof m->acts);
    free(m->grad_acts.memory);
    memset(&m->grad_acts, 0, sizeof m->grad_acts);
}

/* The attention of one of `parts` parts of the heads (tn_model_parts). */
static TnAttnShape attention_shape(const TnConfig *cfg, int parts, int layer, int batch, int seq_len) {
    int dk = tn_qk_head_dim(cfg, layer), H = cfg->n_heads / parts, d = tn_head_dim(cfg);
    return (TnAttnShape){.batch = batch, .heads = H, .seq_len = seq_len, .dk = dk, .dv = d,
                         .ldq = H * dk, .ldk = H * dk, .ldv = tn_qkvu_rows(cfg) / parts, .ldo = cfg->dim / parts};
}

/* The backward pass's attention algorithm and block for a forward's: see
 * tn_model_backward. */
static TnAttnAlgo backward_algo(TnAttnAlgo forward) {
    return forward == TN_ATTN_PARALLEL ? TN_ATTN_PARALLEL : TN_ATTN_CHUNKED;
}

static int backward_block(int forward_block) { return forward_block > 0 ? forward_block : TN_ATTN_DEFAULT_BLOCK; }

/* The largest attention scratch (floats) that a layer of one of `parts`
 * parts of the model needs: in the forward pass run with algo and block,
 * or (backward) in the backward pass of that forward. */
static size_t attention_scratch_bound(const TnConfig *cfg, int parts, int batch, int seq_len, TnAttnAlgo algo,
                                      int block, int threads, int backward) {
    size_t scratch = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        TnAttnShape s = attention_shape(cfg, parts, l, batch, seq_len);
        size_t need = cfg->arch == TN_ARCH_TRANSFORMER ? softmax_attention_scratch_floats(seq_len, threads)
                      : backward ? tn_attention_backward_scratch_floats(&s, backward_algo(algo), backward_block(block),
                                                                         threads)
                                 : tn_attention_scratch_floats(&s, algo, block, threads);
        scratch = need > scratch ? need : scratch;
    }
    return scratch;
}

/* Lays out (or, with base == NULL, only measures) the activation arena of
 * one of `parts` parts of the model (the mixer's width Dm = D / parts). */
static size_t layout_activations(TnActivations *a, const TnConfig *cfg, int parts, int batch, int seq_len,
                                 TnAttnAlgo algo, int block, int threads, float *base) {
    size_t N = (size_t)batch * seq_len, D = cfg->dim, G = cfg->glu_dim / parts, V = cfg->vocab_size, used = 0;
    size_t P = tn_qkvu_rows(cfg) / parts, Dm = D / parts;
#define TAKE(field, count) ((field) = base ? base + used : NULL, used += (count))
    for (int l = 0; l < cfg->n_layers; l++) {
        TnLayerActs *la = &a->layers[l];
        size_t qk = N * (cfg->n_heads / parts) * tn_qk_head_dim(cfg, l);
        TAKE(la->resid, N * D);
        TAKE(la->norm1, N * D);
        TAKE(la->norm1_rstd, N);
        TAKE(la->qkvu, N * P);
        TAKE(la->qf, qk);
        TAKE(la->kf, qk);
        TAKE(la->attn, N * Dm);
        TAKE(la->attn_rstd, N);
        TAKE(la->attn_norm, N * Dm);
        if (cfg->output_gate) TAKE(la->gated, N * Dm);
        else la->gated = la->attn_norm;
        TAKE(la->resid_mid, N * D);
        TAKE(la->norm2, N * D);
        TAKE(la->norm2_rstd, N);
        TAKE(la->glu1, N * G);
        TAKE(la->glu2, N * G);
        TAKE(la->glu, N * G);
    }
    TAKE(a->resid_final, N * D);
    TAKE(a->norm_final, N * D);
    TAKE(a->norm_final_rstd, N);
    TAKE(a->logits, N * V);
    TAKE(a->losses, N);
    TAKE(a->attn_scratch, attention_scratch_bound(cfg, parts, batch, seq_len, algo, block, threads, 0));
#undef TAKE
    return used;
}

size_t tn_model_activation_bytes(const TnConfig *cfg, int batch, int seq_len, TnAttnAlgo algo, int block, int threads) {
    TnActivations a;
    return layout_activations(&a, cfg, 1, batch, seq_len, algo, block, threads, NULL) * sizeof(float);
}

void tn_model_reserve(TnModel *m, int batch, int seq_len) {
    TnActivations *a = &m->acts;
    if (a->memory && batch <= a->max_batch && seq_len <= a->max_seq) return;
    free(a->memory);
    memset(a, 0, sizeof *a);
    int threads = omp_get_max_threads();
    int parts = tn_model_parts(m);
    size_t n = layout_activations(a, &m->config, parts, batch, seq_len, m->attn_algo, m->attn_block, threads, NULL);
    a->memory = tn_malloc(n * sizeof(float));
    a->n_floats = n;
    layout_activations(a, &m->config, parts, batch, seq_len, m->attn_algo, m->attn_block, threads, a->memory);
    a->max_batch = batch;
    a->max_seq = seq_len;
}

/* Lays out (or, with base == NULL, only measures) the backward buffers of
 * one of `parts` parts of the model for a forward pass run with algo and
 * block. */
static size_t layout_grad_acts(TnActGrads *g, const TnConfig *cfg, int parts, int batch, int seq_len, TnAttnAlgo algo,
                               int block, int threads, float *base) {
    size_t N = (size_t)batch * seq_len, D = cfg->dim, G = cfg->glu_dim / parts, used = 0;
    size_t Dm = D / parts, qk = N * 2 * Dm; /* the widest features: 2d per head on LRPE layers */
#define TAKE(field, count) ((field) = base ? base + used : NULL, used += (count))
    TAKE(g->dresid, N * D);
    TAKE(g->dnorm, N * D);
    TAKE(g->dgated, N * Dm);
    TAKE(g->dattn, N * Dm);
    TAKE(g->dqkvu, N * tn_qkvu_rows(cfg) / parts);
    TAKE(g->dqf, qk);
    TAKE(g->dkf, qk);
    TAKE(g->dglu, N * G);
    TAKE(g->dglu1, N * G);
    TAKE(g->dglu2, N * G);
    TAKE(g->row_sums, N);
    TAKE(g->attn_scratch, attention_scratch_bound(cfg, parts, batch, seq_len, algo, block, threads, 1));
#undef TAKE
    return used;
}

size_t tn_model_backward_bytes(const TnConfig *cfg, int batch, int seq_len, TnAttnAlgo algo, int block, int threads) {
    TnActGrads g;
    return layout_grad_acts(&g, cfg, 1, batch, seq_len, algo, block, threads, NULL) * sizeof(float);
}

void tn_model_reserve_backward(TnModel *m) {
    TnActGrads *g = &m->grad_acts;
    int batch = m->acts.max_batch, seq_len = m->acts.max_seq;
    TN_ASSERT(m->acts.memory);
    if (g->memory && g->max_batch == batch && g->max_seq == seq_len) return;
    free(g->memory);
    memset(g, 0, sizeof *g);
    int threads = omp_get_max_threads(), parts = tn_model_parts(m);
    size_t n = layout_grad_acts(g, &m->config, parts, batch, seq_len, m->attn_algo, m->attn_block, threads, NULL);
    g->memory = tn_malloc(n * sizeof(float));
    g->n_floats = n;
    layout_grad_acts(g, &m->config, parts, batch, seq_len, m->attn_algo, m->attn_block, threads, g->memory);
    g->max_batch = batch;
    g->max_seq = seq_len;
}

/* The activation arena is laid out for (max_batch, max_seq); a smaller call
 * uses the first batch * seq_len rows of each tensor, which is consistent
 * because every kernel addresses rows as b * seq_len + t. */

/* gated = u ⊙ normed: the output gate of GLA (Eq. 4); u is the last dim
 * columns of the fused projection rows (stride 4 dim; dim: the mixer's
 * width, D / parts). */
static void gate_forward_cpu(float *gated, const float *normed, const float *qkvu, int n_rows, int dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *u = qkvu + (long)r * 4 * dim + 3 * dim, *x = normed + (long)r * dim;
        float *g = gated + (long)r * dim;
        for (int c = 0; c < dim; c++) g[c] = u[c] * x[c];
    }
}

/* Backward of gate_forward_cpu: writes du into the u columns of dqkvu and
 * turns dgated, in place, into the gradient of normed. */
static void gate_backward_cpu(float *dqkvu, float *dgated, const float *normed, const float *qkvu, int n_rows, int dim) {
    #pragma omp parallel for
    for (int r = 0; r < n_rows; r++) {
        const float *u = qkvu + (long)r * 4 * dim + 3 * dim, *x = normed + (long)r * dim;
        float *du = dqkvu + (long)r * 4 * dim + 3 * dim, *g = dgated + (long)r * dim;
        for (int c = 0; c < dim; c++) {
            du[c] = g[c] * x[c];
            g[c] *= u[c];
        }
    }
}

/* The norm of o (Eq. 4's Norm(o)) of layer `layer`, into attn_norm and
 * attn_rstd. Its rows span every head: split over ranks, each sums its
 * columns' squares and the sums are added over the tensor group before
 * the rows are scaled (tensor_parallel.h refuses LayerNorm, whose centre
 * would take one more sum). */
static void mixer_norm_forward(TnModel *m, TnLayerActs *la, const TnLayerWeights *lw, int n_rows) {
    const TnConfig *cfg = &m->config;
    int parts = tn_model_parts(m), D = cfg->dim;
    if (parts == 1) {
        norm_forward_cpu(cfg->norm, la->attn_norm, la->attn_rstd, la->attn, lw->mixer_norm.gain, lw->mixer_norm.bias,
                         n_rows, D);
        return;
    }
    rms_norm_part_sums_cpu(la->attn_rstd, la->attn, n_rows, D / parts);
    tn_model_sum_parts(m, la->attn_rstd, (size_t)n_rows);
    rms_norm_part_forward_cpu(la->attn_norm, la->attn_rstd, la->attn_rstd, la->attn, lw->mixer_norm.gain, n_rows,
                              D / parts, D);
}

/* Backward of mixer_norm_forward: ACCUMULATES into dattn the gradient from
 * dnormed, the gain's into lg. */
static void mixer_norm_backward(TnModel *m, float *dattn, const float *dnormed, const TnLayerActs *la,
                                const TnLayerWeights *lw, const TnLayerWeights *lg, int n_rows) {
    const TnConfig *cfg = &m->config;
    int parts = tn_model_parts(m), D = cfg->dim;
    if (parts == 1) {
        norm_backward_cpu(cfg->norm, dattn, lg->mixer_norm.gain, lg->mixer_norm.bias, dnormed, la->attn,
                          la->attn_rstd, lw->mixer_norm.gain, n_rows, D);
        return;
    }
    float *dots = m->grad_acts.row_sums;
    rms_norm_part_dots_cpu(dots, dnormed, la->attn, lw->mixer_norm.gain, n_rows, D / parts);
    tn_model_sum_parts(m, dots, (size_t)n_rows);
    rms_norm_part_backward_cpu(dattn, lg->mixer_norm.gain, dots, dnormed, la->attn, la->attn_rstd,
                               lw->mixer_norm.gain, n_rows, D / parts, D);
}

/* The GLA token mixer of layer `layer` (Eq. 3-4) with LRPE-d and decay:
 * from resid writes norm1, qkvu, qf, kf, attn, attn_norm (and gated);
 * returns the input of W_out, u ⊙ Norm(o) (or Norm(o) without the gate). */
static const float *gla_mixer_forward(TnModel *m, int layer, int batch, int seq_len) {
    const TnConfig *cfg = &m->config;
    TnActivations *a = &m->acts;
    TnLayerActs *la = &a->layers[layer];
    const TnLayerWeights *lw = &m->w.layers[layer];
    /* this rank's heads (all of them unless split): Dm columns of o, P rows of W_qkvu */
    int parts = tn_model_parts(m), H = cfg->n_heads / parts;
    int N = batch * seq_len, D = cfg->dim, Dm = D / parts, P = tn_qkvu_rows(cfg) / parts;
    norm_forward_cpu(cfg->norm, la->norm1, la->norm1_rstd, la->resid, lw->token_norm.gain, lw->token_norm.bias, N, D);
    matmul_forward_cpu(la->qkvu, la->norm1, lw->qkvu, N, D, P);
    qk_features_forward_cpu(la->qf, la->kf, la->qkvu, P, cfg->gla_act, lw->theta, N, seq_len, 0, H, tn_head_dim(cfg));
    TnAttnShape s = attention_shape(cfg, parts, layer, batch, seq_len);
    attention_forward_cpu(la->attn, la->qf, la->kf, la->qkvu + 2 * Dm, m->decay + layer * H, NULL, &s, m->attn_algo,
                          m->attn_block, a->attn_scratch);
    mixer_norm_forward(m, la, lw, N);
    if (cfg->output_gate) gate_forward_cpu(la->gated, la->attn_norm, la->qkvu, N, Dm);
    return la->gated;
}

/* Backward of gla_mixer_forward from grad_acts.dgated (consumed): adds the
 * gradient of resid into grad_acts.dresid, the weights' into dw. */
static void gla_mixer_backward(TnModel *m, int layer, int batch, int seq_len, const TnWeights *dw) {
    const TnConfig *cfg = &m->config;
    TnLayerActs *la = &m->acts.layers[layer];
    const TnLayerWeights *lw = &m->w.layers[layer];
    const TnLayerWeights *lg = &dw->layers[layer];
    TnActGrads *g = &m->grad_acts;
    int parts = tn_model_parts(m), H = cfg->n_heads / parts;
    int N = batch * seq_len, D = cfg->dim, Dm = D / parts, P = tn_qkvu_rows(cfg) / parts;
    size_t ND = (size_t)N * D;
    if (cfg->output_gate) gate_backward_cpu(g->dqkvu, g->dgated, la->attn_norm, la->qkvu, N, Dm);
    memset(g->dattn, 0, (size_t)N * Dm * sizeof *g->dattn);
    mixer_norm_backward(m, g->dattn, g->dgated, la, lw, lg, N);
    TnAttnShape s = attention_shape(cfg, parts, layer, batch, seq_len);
    attention_backward_cpu(g->dqf, g->dkf, g->dqkvu + 2 * Dm, g->dattn, la->qf, la->kf, la->qkvu + 2 * Dm,
                           m->decay + layer * H, &s, backward_algo(m->attn_algo), backward_block(m->attn_block),
                           g->attn_scratch);
    qk_features_backward_cpu(g->dqkvu, lg->theta, g->dqf, g->dkf, la->qkvu, P, cfg->gla_act, lw->theta, N, seq_len, 0,
                             H, tn_head_dim(cfg));
    memset(g->dnorm, 0, ND * sizeof *g->dnorm);
    matmul_backward_cpu(g->dnorm, lg->qkvu, g->dqkvu, la->norm1, lw->qkvu, N, D, P);
    /* each rank's heads give part of the gradient of norm1 (Eq. 11-18's backward all-reduce) */
    tn_model_sum_parts(m, g->dnorm, ND);
    norm_backward_cpu(cfg->norm, g->dresid, lg->token_norm.gain, lg->token_norm.bias, g->dnorm, la->resid,
                      la->norm1_rstd, lw->token_norm.gain, N, D);
}

static void weights_hook(TnModel *m, int part) {
    if (m->hooks && m->hooks->weights) m->hooks->weights(m, part, m->hooks->weights_user);
}

static void grads_hook(TnModel *m, int part, TnWeights *dw) {
    if (m->hooks && m->hooks->grads) m->hooks->grads(m, part, dw, m->hooks->grads_user);
}

static void grads_done_hook(TnModel *m, int part) {
    if (m->hooks && m->hooks->grads_done) m->hooks->grads_done(m, part, m->hooks->grads_user);
}

int tn_model_forward(TnModel *m, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                     float *mean_loss, TnError *err) {
    if (tn_model_check_inputs(m, tokens, targets, batch, seq_len, err)) return -1;
    const TnConfig *cfg = &m->config;
    TnActivations *a = &m->acts;
    int N = batch * seq_len, transformer = cfg->arch == TN_ARCH_TRANSFORMER;
    weights_hook(m, TN_PART_EMBED);
    embedding_forward_cpu(a->layers[0].resid, tokens, m->w.embed, m->w.positions, N, seq_len, cfg->dim,
                          tn_embed_scale(cfg));
    for (int l = 0; l < cfg->n_layers; l++) {
        weights_hook(m, l);
        /* Token mixer: GLA (Eq. 3-4), or the baseline's softmax attention. */
        const float *mixed = transformer ? tn_transformer_mixer_forward(m, l, batch, seq_len)
                                         : gla_mixer_forward(m, l, batch, seq_len);
        /* Output projection, residual, channel mixer: SGLU (Eq. 5). */
        tn_layer_rest_forward(m, l, N, mixed);
    }
    weights_hook(m, cfg->n_layers);
    tn_head_forward(m, targets, N, mean_loss);
    return 0;
}

void tn_model_backward(TnModel *m, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                       float loss_scale, float *grads) {
    const TnConfig *cfg = &m->config;
    TnActivations *a = &m->acts;
    TnActGrads *g = &m->grad_acts;
    TN_ASSERT(g->memory && batch <= g->max_batch && seq_len <= g->max_seq);
    TnWeights dw;
    memset(&dw, 0, sizeof dw);
    TN_ASSERT(grads || (m->hooks && m->hooks->grads));
    if (grads) tn_weights_bind(&dw, &m->layout, grads);
    int N = batch * seq_len, transformer = cfg->arch == TN_ARCH_TRANSFORMER;
    weights_hook(m, cfg->n_layers);
    grads_hook(m, cfg->n_layers, &dw);
    tn_head_backward(m, targets, N, loss_scale, &dw);
    grads_done_hook(m, cfg->n_layers);
    /* g->dresid holds dL/dh for the h leaving layer l; each branch adds its
     * input gradient into it, leaving dL/dh for the h entering layer l. */
    for (int l = cfg->n_layers - 1; l >= 0; l--) {
        const TnLayerActs *la = &a->layers[l];
        weights_hook(m, l);
        grads_hook(m, l, &dw);
        /* Channel mixer and the output projection, then the token mixer. */
        if (transformer) {
            tn_layer_rest_backward(m, l, N, la->attn, g->dattn, &dw);
            tn_transformer_mixer_backward(m, l, batch, seq_len, &dw);
        } else {
            tn_layer_rest_backward(m, l, N, la->gated, g->dgated, &dw);
            gla_mixer_backward(m, l, batch, seq_len, &dw);
        }
        grads_done_hook(m, l);
    }
    grads_hook(m, TN_PART_EMBED, &dw);
    embedding_backward_cpu(dw.embed, g->dresid, tokens, N, cfg->dim, tn_embed_scale(cfg), cfg->pad_token_id);
    if (dw.positions) positions_backward_cpu(dw.positions, g->dresid, N, seq_len, cfg->dim);
    grads_done_hook(m, TN_PART_EMBED);
}

void tn_model_idle_pass(TnModel *m) {
    int L = m->config.n_layers;
    TnWeights dw;
    memset(&dw, 0, sizeof dw);
    for (int part = TN_PART_EMBED; part <= L; part++) weights_hook(m, part);
    weights_hook(m, L);
    grads_hook(m, L, &dw);
    grads_done_hook(m, L);
    for (int l = L - 1; l >= 0; l--) {
        weights_hook(m, l);
        grads_hook(m, l, &dw);
        grads_done_hook(m, l);
    }
    grads_hook(m, TN_PART_EMBED, &dw);
    grads_done_hook(m, TN_PART_EMBED);
}
