#include "model/transnormer_cuda.h"

#include <algorithm>
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/adamw_cuda.h"
#include "kernels/cuda/cuda_try.cuh"
#include "kernels/cuda/crossentropy_cuda.h"
#include "kernels/cuda/elementwise_cuda.h"
#include "kernels/cuda/lightning_attention.h"
#include "kernels/cuda/matmul_cuda.h"
#include "kernels/cuda/norm_cuda.h"
#include "kernels/cuda/qk_features_cuda.h"
#include "model/cuda_common.h"
#include "model/transformer_cuda.h"

extern "C" {
#include "model/blocks.h" /* tn_check_batch */
#include "model/token_groups.h"
#include "train/optimizer.h" /* tn_adamw_decays */
#include "util/bf16.h"
}

namespace {

cudaStream_t stream_of(const TnModelCuda *g) { return (cudaStream_t)g->stream; }
TnMatmulCuda *matmul_of(const TnModelCuda *g) { return g->matmul; }

/* The bf16 copy of the tensor whose fp32 master starts at `master`. */
const uint16_t *bf16_of(const TnModelCuda *g, const float *master) { return g->view_bf16 + (master - g->view_f32); }

/* The widths of a model's part (tensor parallelism, transnormer_cuda.h):
 * the residual stream's D whole; the mixer's Dm columns of o, H heads, P
 * rows of W_qkvu and G of the SGLU, the whole model's / parts. */
struct Widths {
    int D, Dm, H, P, G;
};

Widths widths_of(const TnConfig *cfg, int parts) {
    return Widths{cfg->dim, cfg->dim / parts, cfg->n_heads / parts, tn_qkvu_rows(cfg) / parts, cfg->glu_dim / parts};
}

/* Layer l's attention over the part's heads: tn_cuda_attention_shape with
 * the part's q|k|v|u rows (P wide) and o (Dm wide). */
TnAttnShape part_attention_shape(const TnConfig *cfg, int parts, int l, int batch, int seq_len) {
    TnAttnShape s = tn_cuda_attention_shape(cfg, l, batch, seq_len);
    Widths w = widths_of(cfg, parts);
    s.heads = w.H;
    s.ldq = s.ldk = w.H * s.dk;
    s.ldv = w.P;
    s.ldo = w.Dm;
    return s;
}

/* The decay rates of layer l's heads of the part. */
const float *part_decay(const TnModelCuda *g, int l) {
    return g->decay + (size_t)l * g->config.n_heads + (size_t)g->part_index * (g->config.n_heads / g->parts);
}

/* buf (device, n fp32) = its sum over the parts (Eq. 11-18's all-reduce);
 * nothing for a whole model. */
int sum_parts(TnModelCuda *g, float *buf, size_t n, TnError *err) {
    if (g->parts == 1) return 0;
    if (!g->hooks || !g->hooks->sum_parts)
        return tn_fail(err, "part %d of %d of the model: no sum_parts hook adds the parts' results", g->part_index,
                       g->parts);
    return g->hooks->sum_parts(g, buf, n, g->hooks->sum_parts_user, err);
}

/* Which activations of a layer a buffer set holds (recompute.h). */
enum LayerParts : unsigned {
    PART_INPUT = 1u,   /* resid: h entering the layer */
    PART_PRODUCTS = 2u, /* the matrix products' and attention's outputs, the norms' statistics */
    PART_NORMED = 4u,  /* norm1, qf, kf, gated, norm2, glu: recomputed at level norms */
};

unsigned parts_kept(TnRecompute recompute) {
    if (recompute == TN_RECOMPUTE_LAYERS) return PART_INPUT;
    if (recompute == TN_RECOMPUTE_NORMS) return PART_INPUT | PART_PRODUCTS;
    return PART_INPUT | PART_PRODUCTS | PART_NORMED;
}

/* Takes the buffers of `parts` for N rows, fused projections P wide
 * (tn_qkvu_rows), features qk wide per row, kept_bytes of attention states.
 * softmax_heads is H for the Transformer baseline (its log-sum-exp per row
 * and head; it has no norm and gate after the attention: no gated, no
 * attn_rstd), 0 for TransNormerLLM. */
void take_layer(DeviceArena *a, TnCudaLayerActs *la, unsigned parts, size_t N, const Widths &w, size_t qk,
                size_t kept_bytes, size_t softmax_heads) {
    size_t D = w.D, Dm = w.Dm, P = w.P, G = w.G;
    if (parts & PART_INPUT) la->resid = a->take<float>(N * D);
    if (parts & PART_NORMED) {
        la->norm1 = a->take<uint16_t>(N * D);
        la->qf = a->take<uint16_t>(N * qk);
        la->kf = a->take<uint16_t>(N * qk);
        la->gated = softmax_heads ? NULL : a->take<uint16_t>(N * Dm);
        la->norm2 = a->take<uint16_t>(N * D);
        la->glu = a->take<uint16_t>(N * G);
    }
    if (parts & PART_PRODUCTS) {
        la->norm1_rstd = a->take<float>(N);
        la->qkvu = a->take<uint16_t>(N * P);
        la->attn = a->take<uint16_t>(N * Dm);
        la->attn_rstd = softmax_heads ? NULL : a->take<float>(N);
        la->resid_mid = a->take<float>(N * D);
        la->norm2_rstd = a->take<float>(N);
        la->glu12 = a->take<uint16_t>(N * 2 * G);
        la->softmax_lse = softmax_heads ? a->take<float>(N * softmax_heads) : NULL;
        la->attn_kept = kept_bytes ? a->take<float>(kept_bytes / sizeof(float)) : NULL;
        la->attn_kept_bytes = kept_bytes;
    }
}

/* Layer l's Lightning Attention bytes: the scratch for every call up to
 * batch x seq_len (attention_cuda_scratch_bound), and room to keep the
 * forward's states of the reserved shape (a smaller call, which may cut its
 * sequences into more segments, keeps them only where they fit:
 * keeps_states). */
struct AttentionBytes {
    size_t scratch, kept;
};

static AttentionBytes attention_bytes(const TnConfig *cfg, int parts, int l, int batch, int seq_len) {
    if (cfg->arch == TN_ARCH_TRANSFORMER) return AttentionBytes{0, 0};
    TnAttnShape s = part_attention_shape(cfg, parts, l, batch, seq_len);
    return AttentionBytes{attention_cuda_scratch_bound(&s, TN_ATTN_CUDA_DEFAULT),
                          attention_cuda_kept_bytes(&s, TN_ATTN_CUDA_DEFAULT)};
}

/* Whether a call of shape s keeps its attention states in la (the forward
 * and the backward of one call answer alike). */
static int keeps_states(const TnCudaLayerActs *la, const TnAttnShape *s) {
    return attention_cuda_kept_bytes(s, TN_ATTN_CUDA_DEFAULT) <= la->attn_kept_bytes;
}

/* Lays out (or, with base == NULL, only measures) the arena: each layer's
 * kept activations, and one set shared by all layers for what the backward
 * recomputes (rebuilt there layer by layer). */
size_t layout_arena(TnModelCuda *g, const TnConfig *cfg, int parts, int batch, int seq_len, TnRecompute recompute,
                    char *base) {
    Widths w = widths_of(cfg, parts);
    size_t N = (size_t)batch * seq_len, D = w.D, Dm = w.Dm, G = w.G, V = cfg->vocab_size;
    size_t H = w.H, d = tn_head_dim(cfg), P = w.P;
    DeviceArena a{base, 0};
    unsigned kept = parts_kept(recompute), all = PART_INPUT | PART_PRODUCTS | PART_NORMED;
    int baseline = cfg->arch == TN_ARCH_TRANSFORMER;
    size_t softmax_heads = baseline ? H : 0, widest = 0; /* the shared q/k features: the widest layer's */
    /* layers of one q/k width need the same attention bytes: the shared set takes the most of any */
    AttentionBytes per_layer[TN_MAX_LAYERS], most = {0, 0};
    for (int l = 0; l < cfg->n_layers; l++) {
        widest = std::max(widest, (size_t)tn_qk_head_dim(cfg, l));
        int same = l; /* an earlier layer of this width, or l */
        for (int m = 0; m < l && same == l; m++)
            if (tn_qk_head_dim(cfg, m) == tn_qk_head_dim(cfg, l)) same = m;
        per_layer[l] = same < l ? per_layer[same] : attention_bytes(cfg, parts, l, batch, seq_len);
        most.scratch = std::max(most.scratch, per_layer[l].scratch);
        most.kept = std::max(most.kept, per_layer[l].kept);
    }
    size_t scratch = baseline ? tn_transformer_cuda_scratch_bytes(cfg, batch, seq_len) : most.scratch;
    TnCudaLayerActs shared = {};
    take_layer(&a, &shared, all & ~kept, N, w, H * widest, most.kept, softmax_heads);
    for (int l = 0; l < cfg->n_layers; l++) {
        TnCudaLayerActs *la = &g->layers[l];
        *la = shared;
        take_layer(&a, la, kept, N, w, H * tn_qk_head_dim(cfg, l), per_layer[l].kept, softmax_heads);
    }
    g->resid_final = a.take<float>(N * D);
    g->norm_final = a.take<uint16_t>(N * D);
    g->norm_final_rstd = a.take<float>(N);
    g->logits = a.take<uint16_t>(N * V);
    g->losses = a.take<float>(N);
    g->lse = a.take<float>(N);
    g->tokens = a.take<int32_t>(N);
    g->targets = a.take<int32_t>(N);
    g->attn_scratch = a.take<char>(scratch);
    g->attn_scratch_bytes = scratch;
    g->dresid = a.take<float>(N * D);
    if (parts > 1) g->dnorm = a.take<float>(N * D); /* summed over the parts (backward's dnorm_type) */
    else g->dnorm = a.take<uint16_t>(N * D);
    g->dgated = baseline ? NULL : a.take<uint16_t>(N * Dm); /* the baseline's o gradient is dattn's */
    g->dglu = a.take<uint16_t>(N * G);
    g->dresid_bf16 = a.take<uint16_t>(N * D);
    g->dattn = a.take<uint16_t>(N * Dm);
    g->dqkvu = a.take<uint16_t>(N * P);
    g->dqf = a.take<uint16_t>(N * 2 * Dm);
    g->dkf = a.take<uint16_t>(N * 2 * Dm);
    g->dglu12 = a.take<uint16_t>(N * 2 * G);
    g->partials = a.take<float>(std::max(norm_backward_partials((int)N, (int)D),
                                         qk_features_backward_partials((int)N, (int)H, (int)d)));
    g->token_groups = a.take<int32_t>(TN_TOKEN_GROUPS_SIZE(N));
    g->row_sums = parts > 1 ? a.take<float>(N) : NULL;
    return a.used;
}

int check_reserved(const TnModelCuda *g, const char *pass, int batch, int seq_len, TnError *err) {
    if (g->arena && batch <= g->max_batch && seq_len <= g->max_seq) return 0;
    return tn_fail(err, "%s of %d x %d tokens exceeds the reserved %d x %d", pass, batch, seq_len, g->max_batch,
                   g->max_seq);
}

/* The input of W_out (o_proj) of layer l: the gated, normalised GLA output,
 * or the baseline's attention output. */
const uint16_t *mixer_input(const TnModelCuda *g, int l) {
    return g->config.arch == TN_ARCH_TRANSFORMER ? g->layers[l].attn : g->layers[l].gated;
}

/* GLA (Eq. 3-4) of layer l from its qkvu: the q/k features, with `products`
 * the attention, then the norm and output gate into gated. */
int gla_forward(TnModelCuda *g, const TnLayerWeights *lw, int l, int batch, int seq_len, int products, TnError *err) {
    const TnConfig *cfg = &g->config;
    Widths w = widths_of(cfg, g->parts);
    int N = batch * seq_len, d = tn_head_dim(cfg);
    cudaStream_t stream = stream_of(g);
    TnCudaLayerActs *la = &g->layers[l];
    TRY(qk_features_forward_cuda(la->qf, la->kf, la->qkvu, w.P, cfg->gla_act, lw->theta, N, seq_len, 0, NULL, w.H, d,
                                 stream, err));
    TnAttnShape s = part_attention_shape(cfg, g->parts, l, batch, seq_len);
    if (products && keeps_states(la, &s))
        TRY(attention_forward_keeping_cuda(la->attn, la->qf, la->kf, la->qkvu + 2 * w.Dm, part_decay(g, l),
                                           la->attn_kept, la->attn_kept_bytes, &s, TN_ATTN_CUDA_DEFAULT,
                                           g->attn_scratch, g->attn_scratch_bytes, stream, err));
    else if (products)
        TRY(attention_forward_cuda(la->attn, la->qf, la->kf, la->qkvu + 2 * w.Dm, part_decay(g, l), NULL, &s,
                                   TN_ATTN_CUDA_DEFAULT, g->attn_scratch, g->attn_scratch_bytes, stream, err));
    const uint16_t *gate = cfg->output_gate ? la->qkvu + 3 * w.Dm : NULL;
    if (g->parts == 1)
        return norm_gate_forward_cuda(cfg->norm, la->gated, la->attn_rstd, la->attn, lw->mixer_norm.gain,
                                      lw->mixer_norm.bias, gate, w.P, N, w.D, stream, err);
    /* the rows of o span every part's heads: their sums of squares added over the parts */
    TRY(norm_gate_part_sums_cuda(cfg->norm, g->row_sums, la->attn, N, w.Dm, stream, err));
    TRY(sum_parts(g, g->row_sums, (size_t)N, err));
    return norm_gate_part_forward_cuda(cfg->norm, la->gated, la->attn_rstd, g->row_sums, la->attn, lw->mixer_norm.gain,
                                       gate, w.P, N, w.Dm, w.D, stream, err);
}

/* Layer l's forward over the first batch x seq_len rows, from la->resid,
 * the data flow of tn_model_forward. With `products` 0 only the normalised
 * activations are made again from the kept products (recompute level
 * norms); with `next`, h leaving the layer is written there (the backward's
 * recompute needs nothing after the SGLU product). */
int layer_forward(TnModelCuda *g, const TnWeights *w, int l, int batch, int seq_len, int products, float *next,
                  TnError *err) {
    const TnConfig *cfg = &g->config;
    Widths widths = widths_of(cfg, g->parts);
    int N = batch * seq_len, D = cfg->dim, Dm = widths.Dm, G = widths.G, P = widths.P;
    size_t ND = (size_t)N * D;
    cudaStream_t stream = stream_of(g);
    TnMatmulCuda *matmul = matmul_of(g);
    TnCudaLayerActs *la = &g->layers[l];
    const TnLayerWeights *lw = &w->layers[l];
    /* Split over parts, the products of W_out and W3 add up over them
     * (Eq. 11-18): part 0 alone adds the residual h, the others start from 0. */
    int adds_h = g->part_index == 0;
    float beta = adds_h ? 1.0f : 0.0f;
    /* Token mixer: GLA (Eq. 3-4) with LRPE-d and decay, or the baseline's
     * softmax attention (transformer_cuda.h); mixed is W_out's input. */
    /* the norm copies h into resid_mid, which W_out's product then adds into (beta 1) */
    TRY(norm_forward_copy_cuda(cfg->norm, la->norm1, la->norm1_rstd, products && adds_h ? la->resid_mid : NULL,
                               la->resid, lw->token_norm.gain, lw->token_norm.bias, N, D, stream, err));
    if (products)
        TRY(matmul_forward_cuda(matmul, la->qkvu, TN_CUDA_BF16, 0.0f, la->norm1, bf16_of(g, lw->qkvu), N, D, P,
                                err));
    const uint16_t *mixed = mixer_input(g, l);
    if (cfg->arch == TN_ARCH_TRANSFORMER)
        TRY(tn_transformer_cuda_mixer_forward(g, l, batch, seq_len, products, err));
    else
        TRY(gla_forward(g, lw, l, batch, seq_len, products, err));
    /* h += W_out mixed */
    if (products) {
        TRY(matmul_forward_cuda(matmul, la->resid_mid, TN_CUDA_F32, beta, mixed, bf16_of(g, lw->out), N, Dm, D,
                                err));
        TRY(sum_parts(g, la->resid_mid, ND, err));
    }
    /* Channel mixer: SGLU (Eq. 5); the norm copies resid_mid into next for W3's product to add into. */
    TRY(norm_forward_copy_cuda(cfg->norm, la->norm2, la->norm2_rstd, adds_h ? next : NULL, la->resid_mid,
                               lw->channel_norm.gain, lw->channel_norm.bias, N, D, stream, err));
    /* W1 and W2 are adjacent (G, D) blocks (checked by tn_model_cuda_init): one (2G, D) product */
    if (products)
        TRY(matmul_forward_cuda(matmul, la->glu12, TN_CUDA_BF16, 0.0f, la->norm2, bf16_of(g, lw->l1), N, D, 2 * G,
                                err));
    TRY(glu_forward_cuda(la->glu, la->glu12, la->glu12 + G, 2 * G, cfg->glu_act, N, G, stream, err));
    if (!next) return 0;
    TRY(matmul_forward_cuda(matmul, next, TN_CUDA_F32, beta, la->glu, bf16_of(g, lw->l3), N, G, D, err));
    return sum_parts(g, next, ND, err);
}

/* Backward of gla_forward from g->dgated: the gradient of layer l's qkvu
 * into g->dqkvu (q, k, v and u columns), theta's into dw. */
int gla_backward(TnModelCuda *g, const TnWeights *w, const TnWeights *dw, int l, int batch, int seq_len,
                 TnError *err) {
    const TnConfig *cfg = &g->config;
    Widths wd = widths_of(cfg, g->parts);
    int N = batch * seq_len, Dm = wd.Dm, P = wd.P, d = tn_head_dim(cfg);
    cudaStream_t stream = stream_of(g);
    const TnCudaLayerActs *la = &g->layers[l];
    const TnLayerWeights *lw = &w->layers[l], *lg = &dw->layers[l];
    const uint16_t *gate = cfg->output_gate ? la->qkvu + 3 * Dm : NULL;
    uint16_t *dgate = cfg->output_gate ? g->dqkvu + 3 * Dm : NULL;
    if (g->parts == 1) {
        TRY(norm_gate_backward_cuda(cfg->norm, g->dattn, dgate, lg->mixer_norm.gain, lg->mixer_norm.bias, g->partials,
                                    g->dgated, la->attn, la->attn_rstd, lw->mixer_norm.gain, lw->mixer_norm.bias, gate,
                                    P, N, Dm, stream, err));
    } else { /* the rows' dot products span every part's heads: added over the parts */
        TRY(norm_gate_part_dots_cuda(cfg->norm, g->row_sums, g->dgated, la->attn, la->attn_rstd, lw->mixer_norm.gain,
                                     gate, P, N, Dm, stream, err));
        TRY(sum_parts(g, g->row_sums, (size_t)N, err));
        TRY(norm_gate_part_backward_cuda(cfg->norm, g->dattn, dgate, lg->mixer_norm.gain, g->partials, g->row_sums,
                                         g->dgated, la->attn, la->attn_rstd, lw->mixer_norm.gain, gate, P, N, Dm,
                                         wd.D, stream, err));
    }
    TnAttnShape s = part_attention_shape(cfg, g->parts, l, batch, seq_len);
    if (keeps_states(la, &s))
        TRY(attention_backward_kept_cuda(g->dqf, g->dkf, g->dqkvu + 2 * Dm, g->dattn, la->qf, la->kf,
                                         la->qkvu + 2 * Dm, part_decay(g, l), la->attn_kept, la->attn_kept_bytes, &s,
                                         TN_ATTN_CUDA_DEFAULT, g->attn_scratch, g->attn_scratch_bytes, stream, err));
    else
        TRY(attention_backward_cuda(g->dqf, g->dkf, g->dqkvu + 2 * Dm, g->dattn, la->qf, la->kf, la->qkvu + 2 * Dm,
                                    part_decay(g, l), &s, TN_ATTN_CUDA_DEFAULT, g->attn_scratch,
                                    g->attn_scratch_bytes, stream, err));
    return qk_features_backward_cuda(g->dqkvu, lg->theta, g->partials, g->dqf, g->dkf, la->qkvu, P, cfg->gla_act,
                                     lw->theta, N, seq_len, 0, wd.H, d, stream, err);
}

/* The SGLU's W1 x and W2 x are one (2G, D) product: W2 must follow W1 in
 * the layout (params.h lays them out so), in the gradients too. */
int check_glu_adjacent(const TnModelCuda *g, TnError *err) {
    TnWeights w;
    tn_weights_bind(&w, &g->layout, g->params);
    size_t block = (size_t)widths_of(&g->config, g->parts).G * g->config.dim;
    for (int l = 0; l < g->config.n_layers; l++)
        if (w.layers[l].l2 != w.layers[l].l1 + block)
            return tn_fail(err, "the CUDA step needs layer %d's W2 right after W1 in the parameter layout", l);
    return 0;
}

/* The layout's tensors in the update range as runs that AdamW decays
 * alike (tn_adamw_decays), their ends counted from the range's start,
 * uploaded once for adamw_update_cuda. */
int upload_adamw_segments(TnModelCuda *g, TnError *err) {
    const TnParamLayout *layout = &g->layout;
    TnAdamwSegment *segments = (TnAdamwSegment *)tn_malloc((size_t)(layout->n_tensors + 1) * sizeof *segments);
    int n = 0;
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *info = &layout->tensors[i];
        size_t end = std::min(info->offset + info->numel, g->update_end);
        if (end <= g->update_begin || info->offset >= g->update_end) continue;
        int decays = tn_adamw_decays(info->kind);
        if (n == 0 || segments[n - 1].decays != decays) segments[n++].decays = decays;
        segments[n - 1].end = end - g->update_begin;
    }
    if (n == 0) segments[n++] = TnAdamwSegment{0, 0};
    g->n_adamw_segments = n;
    cudaError_t status = cudaMalloc(&g->adamw_segments, (size_t)n * sizeof *segments);
    if (status == cudaSuccess)
        status = cudaMemcpy(g->adamw_segments, segments, (size_t)n * sizeof *segments, cudaMemcpyHostToDevice);
    free(segments);
    if (status != cudaSuccess) return tn_fail(err, "upload_adamw_segments: CUDA: %s", cudaGetErrorString(status));
    return 0;
}

/* Whether the backward's matrix products write the whole of a tensor's
 * gradient: the projections, lm_head, and the embedding when lm_head is it
 * (the product comes first; the embedding's rows then add into it). */
int written_by_products(TnParamKind kind, int tied) {
    switch (kind) {
    case TN_PARAM_QKVU: case TN_PARAM_OUT: case TN_PARAM_L1: case TN_PARAM_L2: case TN_PARAM_L3:
    case TN_PARAM_LM_HEAD: case TN_PARAM_Q_PROJ: case TN_PARAM_K_PROJ: case TN_PARAM_V_PROJ: return 1;
    case TN_PARAM_EMBED: return tied;
    default: return 0;
    }
}

/* The layout's runs of tensors whose gradients a writing backward must
 * clear first (grads_deferred), adjacent ones merged, as begin, count pairs
 * uploaded once for clear_runs_cuda. */
int upload_cleared_runs(TnModelCuda *g, TnError *err) {
    const TnParamLayout *layout = &g->layout;
    size_t *runs = (size_t *)tn_malloc((size_t)(2 * layout->n_tensors + 2) * sizeof(size_t));
    int n = 0;
    g->longest_cleared_run = 0;
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *info = &layout->tensors[i];
        if (written_by_products(info->kind, g->config.tie_word_embeddings)) continue;
        if (n && runs[2 * n - 2] + runs[2 * n - 1] == info->offset)
            runs[2 * n - 1] += info->numel;
        else {
            runs[2 * n] = info->offset;
            runs[2 * n + 1] = info->numel;
            n++;
        }
        g->longest_cleared_run = std::max(g->longest_cleared_run, runs[2 * n - 1]);
    }
    g->n_cleared_runs = n;
    cudaError_t status = cudaMalloc(&g->cleared_runs, (size_t)(2 * n + 2) * sizeof(size_t));
    if (status == cudaSuccess)
        status = cudaMemcpy(g->cleared_runs, runs, (size_t)(2 * n) * sizeof(size_t), cudaMemcpyHostToDevice);
    free(runs);
    if (status != cudaSuccess) return tn_fail(err, "upload_cleared_runs: CUDA: %s", cudaGetErrorString(status));
    return 0;
}

int clear_unwritten_grads(TnModelCuda *g, TnError *err) {
    return clear_runs_cuda(g->grads, g->cleared_runs, g->n_cleared_runs, g->longest_cleared_run, stream_of(g), err);
}

int refresh_bf16(TnModelCuda *g, TnError *err) {
    if (!g->params_bf16) return 0; /* ZeRO-3: each part's copy is made as it is gathered */
    return convert_to_bf16_cuda(g->params_bf16, g->params, g->n_params, stream_of(g), err);
}

/* One AdamW step over the update range in one launch (adamw_cuda.h), its
 * bf16 copy written in the same pass where the device keeps one, the
 * clipping factor taken from the norm's sum of squares in g->sum_squares. */
int adamw_range(TnModelCuda *g, float beta1, float beta2, float eps, float weight_decay, float lr, long long t,
                double max_norm, TnError *err) {
    float correction1 = (float)(1.0 - pow((double)beta1, (double)t));
    float correction2 = (float)(1.0 - pow((double)beta2, (double)t));
    size_t begin = g->update_begin;
    return adamw_update_cuda(g->params + (begin - g->params_begin), g->params_bf16 ? g->params_bf16 + begin : NULL,
                             g->grads + (begin - g->grads_begin), g->adam_m, g->adam_v, g->update_end - begin,
                             g->adamw_segments, g->n_adamw_segments, lr, beta1, beta2, eps, weight_decay, correction1,
                             correction2, g->sum_squares, max_norm, stream_of(g), err);
}

/* The sharded training's hooks (transnormer_cuda.h): the weights before a
 * pass reads a part, the gradients around the backward's writes of one;
 * nothing without them. */
int part_weights(TnModelCuda *g, int part, TnWeights *w, TnError *err) {
    return g->hooks && g->hooks->weights ? g->hooks->weights(g, part, w, g->hooks->weights_user, err) : 0;
}

int part_grads(TnModelCuda *g, int part, TnWeights *dw, TnError *err) {
    return g->hooks && g->hooks->grads ? g->hooks->grads(g, part, dw, g->hooks->grads_user, err) : 0;
}

int part_grads_done(TnModelCuda *g, int part, TnError *err) {
    return g->hooks && g->hooks->grads_done ? g->hooks->grads_done(g, part, g->hooks->grads_user, err) : 0;
}

/* Binds a pass's views of a buffer laid out like the parameters, when the
 * device holds it whole; else they start empty, each part bound by the
 * hooks (fails without them). */
int bind_views(TnModelCuda *g, TnWeights *views, float *buffer, size_t covered, int hooked, TnError *err) {
    if (covered == g->n_params) {
        tn_weights_bind(views, &g->layout, buffer);
        return 0;
    }
    if (!hooked) return tn_fail(err, "the model is sharded and no hook places its parts");
    memset(views, 0, sizeof *views);
    return 0;
}

/* Each of the device's parameter-shaped buffers with the range it covers. */
struct Covered {
    float *device;
    size_t floats;
};

void covered_buffers(const TnModelCuda *g, Covered out[4]) {
    out[0] = {g->params, g->params_end - g->params_begin};
    out[1] = {g->grads, g->grads_end - g->grads_begin};
    out[2] = {g->adam_m, g->update_end - g->update_begin};
    out[3] = {g->adam_v, g->update_end - g->update_begin};
}

} // namespace

extern "C" int tn_model_cuda_init(TnModelCuda *g, const TnConfig *cfg, const float *params, TnError *err) {
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    size_t n = layout.total;
    tn_param_layout_free(&layout);
    return tn_model_cuda_init_shard(g, cfg, NULL, params, 0, n, 0, err);
}

extern "C" int tn_model_cuda_init_shard(TnModelCuda *g, const TnConfig *cfg, const TnCudaPart *part,
                                        const float *params, size_t begin, size_t end, int zero, TnError *err) {
    memset(g, 0, sizeof *g);
    if (tn_cuda_device_check(err)) return -1;
    const char *missing =
        tn_config_unsupported_switch(cfg, TN_IMPLEMENTS_TRANSNORMER_SWITCHES | TN_IMPLEMENTS_TRANSFORMER);
    if (missing) return tn_fail(err, "the CUDA training step does not support %s: train it on the CPU", missing);
    g->config = *cfg;
    g->parts = part ? part->parts : 1;
    g->part_index = part ? part->index : 0;
    /* the split of dist/tensor_parallel.h (tn_tp_check): the Transformer baseline and LayerNorm are refused there */
    if (g->parts > 1 && (cfg->arch != TN_ARCH_TRANSNORMER || cfg->norm == TN_NORM_LAYER))
        return tn_fail(err, "the CUDA model splits TransNormerLLM with an RMS norm only (tensor parallelism)");
    if (part) tn_param_layout_copy(&g->layout, part->layout);
    else tn_param_layout_init(&g->layout, cfg);
    size_t n = g->n_params = g->layout.total;
    TN_ASSERT(begin <= end && end <= n && (zero > 0 || (begin == 0 && end == n)));
    g->update_begin = begin;
    g->update_end = end;
    g->grads_begin = zero >= 2 ? begin : 0;
    g->grads_end = zero >= 2 ? end : n;
    g->params_begin = zero >= 3 ? begin : 0;
    g->params_end = zero >= 3 ? end : n;
    if (tn_cuda_stream_open(&g->stream, &g->matmul, err)) return -1;
    CUDA_TRY(cudaEventCreateWithFlags((cudaEvent_t *)&g->losses_copied, cudaEventDisableTiming));
    cudaStream_t stream = stream_of(g);
    size_t held = g->params_end - g->params_begin;
    CUDA_TRY(cudaMalloc(&g->params, (held ? held : 1) * sizeof(float))); /* a rank may own no element */
    if (zero < 3) CUDA_TRY(cudaMalloc(&g->params_bf16, n * sizeof(uint16_t)));
    g->view_f32 = g->params;
    g->view_bf16 = g->params_bf16;
    CUDA_TRY(cudaMalloc(&g->sum_squares,
                        (1 + TN_GRAD_SQUARES_PARTIALS + (size_t)g->layout.n_tensors) * sizeof(double)));
    CUDA_TRY(cudaMalloc(&g->decay, (size_t)cfg->n_layers * cfg->n_heads * sizeof(float)));
    if (tn_cuda_decay_upload(g->decay, cfg, err)) return -1;
    if (check_glu_adjacent(g, err) || upload_adamw_segments(g, err) || upload_cleared_runs(g, err)) return -1;
    Covered state[4];
    covered_buffers(g, state);
    float **zeroed[3] = {&g->grads, &g->adam_m, &g->adam_v};
    for (int i = 0; i < 3; i++) {
        size_t bytes = state[i + 1].floats * sizeof(float);
        CUDA_TRY(cudaMalloc(zeroed[i], bytes ? bytes : sizeof(float))); /* a rank may own no element */
        CUDA_TRY(cudaMemsetAsync(*zeroed[i], 0, bytes, stream));
    }
    return tn_model_cuda_upload(g, params, NULL, NULL, NULL, err);
}

extern "C" void tn_model_cuda_free(TnModelCuda *g) {
    /* release paths ignore errors: there is nothing left to do about them */
    cudaFree(g->params);
    cudaFree(g->params_bf16);
    cudaFree(g->grads);
    cudaFree(g->adam_m);
    cudaFree(g->adam_v);
    cudaFree(g->decay);
    cudaFree(g->sum_squares);
    cudaFree(g->adamw_segments);
    cudaFree(g->cleared_runs);
    cudaFree(g->arena);
    tn_matmul_cuda_destroy(g->matmul);
    if (g->losses_copied) cudaEventDestroy((cudaEvent_t)g->losses_copied);
    if (g->stream) cudaStreamDestroy(stream_of(g));
    cudaFreeHost(g->host_losses);
    free(g->host_tokens);
    free(g->host_groups);
    free(g->host_token_counts);
    tn_param_layout_free(&g->layout);
    memset(g, 0, sizeof *g);
}

extern "C" size_t tn_model_cuda_arena_bytes(const TnConfig *cfg, int batch, int seq_len, TnRecompute recompute) {
    TnModelCuda *measure = (TnModelCuda *)tn_calloc(1, sizeof *measure);
    size_t bytes = layout_arena(measure, cfg, 1, batch, seq_len, recompute, NULL);
    free(measure);
    return bytes;
}

extern "C" int tn_model_cuda_reserve(TnModelCuda *g, int batch, int seq_len, TnRecompute recompute, TnError *err) {
    const TnConfig *cfg = &g->config;
    int d = tn_head_dim(cfg);
    if (d != 64 && d != 128)
        return tn_fail(err, "the CUDA model needs a head width of 64 or 128 (D / H = %d / %d = %d)", cfg->dim,
                       cfg->n_heads, d);
    if (cfg->dim % 8)
        return tn_fail(err, "the CUDA model needs D a multiple of 8 (D = %d)", cfg->dim);
    if (g->arena && batch <= g->max_batch && seq_len <= g->max_seq && recompute == g->recompute) return 0;
    cudaFree(g->arena);
    g->arena = NULL;
    size_t bytes = layout_arena(g, cfg, g->parts, batch, seq_len, recompute, NULL);
    void *arena;
    cudaError_t status = cudaMalloc(&arena, bytes);
    if (status != cudaSuccess)
        return tn_fail(err, "cannot allocate %.2f GiB of activations for %d x %d tokens on the GPU: %s",
                       bytes / 1073741824.0, batch, seq_len, cudaGetErrorString(status));
    g->arena = arena;
    g->arena_bytes = bytes;
    /* the sizes come from occupancy queries: the same answers both times (resident_blocks remembers them) */
    size_t laid_out = layout_arena(g, cfg, g->parts, batch, seq_len, recompute, (char *)arena);
    TN_ASSERT(laid_out == bytes);
    g->recompute = recompute;
    size_t N = (size_t)batch * seq_len;
    free(g->host_tokens);
    free(g->host_groups);
    free(g->host_token_counts);
    g->host_tokens = (int32_t *)tn_malloc(N * sizeof(int32_t));
    g->host_groups = (int32_t *)tn_malloc(TN_TOKEN_GROUPS_SIZE(N) * sizeof(int32_t));
    g->host_token_counts = (int32_t *)tn_malloc(((size_t)cfg->vocab_size + 1) * sizeof(int32_t));
    cudaFreeHost(g->host_losses);
    g->host_losses = NULL; /* until the new one is allocated */
    /* pinned: tn_model_cuda_accumulate's copy of the losses does not block the host */
    status = cudaMallocHost((void **)&g->host_losses, N * sizeof(float));
    if (status != cudaSuccess) {
        cudaFree(g->arena);
        g->arena = NULL; /* unreserved: every pass is refused until a reserve succeeds */
        return tn_fail(err, "cannot allocate %zu bytes of pinned host memory for the losses: %s", N * sizeof(float),
                       cudaGetErrorString(status));
    }
    g->max_batch = batch;
    g->max_seq = seq_len;
    return 0;
}

/* The forward up to the logits in g->logits (targets, when not NULL,
 * copied for the loss). The activations are laid out for (max_batch,
 * max_seq); a smaller call uses the first batch * seq_len rows of each, as
 * on the CPU. Returns the number of scored targets, or -1. */
static int forward_to_logits(TnModelCuda *g, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                             TnError *err) {
    if (check_reserved(g, "forward", batch, seq_len, err)) return -1;
    const TnConfig *cfg = &g->config;
    int N = batch * seq_len, D = cfg->dim, V = cfg->vocab_size;
    int scored = tn_check_batch(cfg, tokens, targets, batch, seq_len, err);
    if (scored < 0) return -1;
    cudaStream_t stream = stream_of(g);
    TnMatmulCuda *matmul = matmul_of(g);
    TnWeights w;
    TRY(bind_views(g, &w, g->params, g->params_end - g->params_begin, g->hooks && g->hooks->weights, err));
    CUDA_TRY(cudaMemcpyAsync(g->tokens, tokens, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    memcpy(g->host_tokens, tokens, N * sizeof(int32_t));
    if (targets) CUDA_TRY(cudaMemcpyAsync(g->targets, targets, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));

    TRY(part_weights(g, TN_PART_EMBED, &w, err));
    TRY(embedding_forward_cuda(g->layers[0].resid, g->tokens, w.embed, N, D, tn_embed_scale(cfg), stream, err));
    if (w.positions) TRY(positions_forward_cuda(g->layers[0].resid, w.positions, N, seq_len, D, stream, err));
    for (int l = 0; l < cfg->n_layers; l++) {
        float *next = l + 1 < cfg->n_layers ? g->layers[l + 1].resid : g->resid_final;
        TRY(part_weights(g, l, &w, err));
        TRY(layer_forward(g, &w, l, batch, seq_len, 1, next, err));
    }
    TRY(part_weights(g, cfg->n_layers, &w, err));
    TRY(norm_forward_cuda(cfg->norm, g->norm_final, g->norm_final_rstd, g->resid_final, w.final_norm.gain,
                          w.final_norm.bias, N, D, stream, err));
    TRY(matmul_forward_cuda(matmul, g->logits, TN_CUDA_BF16, 0.0f, g->norm_final, bf16_of(g, w.lm_head), N, D, V,
                            err));
    return scored;
}

/* The mean over the scored targets of the per-token losses copied to the host. */
static float mean_loss_of(const TnModelCuda *g, int n_rows, int scored) {
    double sum = 0.0;
    for (int r = 0; r < n_rows; r++) sum += g->host_losses[r];
    return scored ? (float)(sum / scored) : 0.0f;
}

extern "C" int tn_model_cuda_forward(TnModelCuda *g, const int32_t *tokens, const int32_t *targets, int batch,
                                     int seq_len, float *mean_loss, TnError *err) {
    int scored = forward_to_logits(g, tokens, targets, batch, seq_len, err), N = batch * seq_len;
    if (scored < 0) return -1;
    if (!targets) return 0;
    cudaStream_t stream = stream_of(g);
    TRY(crossentropy_forward_cuda(g->losses, g->lse, g->logits, g->targets, N, g->config.vocab_size, stream, err));
    CUDA_TRY(cudaMemcpyAsync(g->host_losses, g->losses, N * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    *mean_loss = mean_loss_of(g, N, scored);
    return 0;
}

/* The backward from the logits' gradient in g->logits. */
static int backward_from_logits(TnModelCuda *g, int batch, int seq_len, TnError *err) {
    const TnConfig *cfg = &g->config;
    Widths widths = widths_of(cfg, g->parts);
    int N = batch * seq_len, D = cfg->dim, Dm = widths.Dm, G = widths.G, V = cfg->vocab_size, P = widths.P;
    size_t ND = (size_t)N * D;
    cudaStream_t stream = stream_of(g);
    TnMatmulCuda *matmul = matmul_of(g);
    TnWeights w, dw;
    TRY(bind_views(g, &w, g->params, g->params_end - g->params_begin, g->hooks && g->hooks->weights, err));
    TRY(bind_views(g, &dw, g->grads, g->grads_end - g->grads_begin, g->hooks && g->hooks->grads, err));
    /* after a deferred zero_grad the products write their weights' gradients (never deferred under a grads hook) */
    TN_ASSERT(!(g->grads_deferred && g->hooks && g->hooks->grads));
    float weight_beta = g->grads_deferred ? 0.0f : 1.0f;
    if (g->grads_deferred) TRY(clear_unwritten_grads(g, err));
    /* The products' input gradients are bf16 where elementwise kernels
     * alone read them, as mixed precision keeps activation gradients; the
     * norms' stay fp32 where the parts add them up (sum_parts). */
    TnCudaFloat dnorm_type = g->parts > 1 ? TN_CUDA_F32 : TN_CUDA_BF16;
    int baseline = cfg->arch == TN_ARCH_TRANSFORMER;

    /* logits = Norm(h) E^T: the tied projection writes (after a deferred
     * zero_grad) or adds into dE here, and the embedding adds below. The products write their input's
     * gradient (matmul_backward_cuda); each norm's backward adds into
     * dresid and leaves its bf16 copy, the next product's operand. */
    TRY(part_weights(g, cfg->n_layers, &w, err));
    TRY(part_grads(g, cfg->n_layers, &dw, err));
    TRY(matmul_backward_cuda(matmul, g->dnorm, dnorm_type, dw.lm_head, weight_beta, g->logits, g->norm_final,
                             bf16_of(g, w.lm_head), N, D, V, err));
    CUDA_TRY(cudaMemsetAsync(g->dresid, 0, ND * sizeof(float), stream));
    TRY(norm_backward_cuda(cfg->norm, g->dresid, g->dresid_bf16, dw.final_norm.gain, dw.final_norm.bias, g->partials,
                           g->dnorm, dnorm_type, g->resid_final, g->norm_final_rstd, w.final_norm.gain, N, D, stream,
                           err));
    TRY(part_grads_done(g, cfg->n_layers, err));

    /* g->dresid holds dL/dh for the h leaving layer l; each branch adds its
     * input gradient into it, leaving dL/dh for the h entering layer l. */
    for (int l = cfg->n_layers - 1; l >= 0; l--) {
        TnCudaLayerActs *la = &g->layers[l];
        const TnLayerWeights *lw = &w.layers[l];
        TnLayerWeights *lg = &dw.layers[l];
        TRY(part_weights(g, l, &w, err));
        TRY(part_grads(g, l, &dw, err));
        /* What the forward did not keep (recompute.h), rebuilt from what it kept. */
        if (g->recompute != TN_RECOMPUTE_NONE)
            TRY(layer_forward(g, &w, l, batch, seq_len, g->recompute == TN_RECOMPUTE_LAYERS, NULL, err));
        /* Channel mixer, SGLU (Eq. 5); W1 and W2 as one (2G, D) product, as in the forward. */
        TRY(matmul_backward_cuda(matmul, g->dglu, TN_CUDA_BF16, lg->l3, weight_beta, g->dresid_bf16, la->glu,
                                 bf16_of(g, lw->l3), N, G, D, err));
        TRY(glu_backward_cuda(g->dglu12, g->dglu12 + G, 2 * G, g->dglu, la->glu12, la->glu12 + G, cfg->glu_act, N, G,
                              stream, err));
        TRY(matmul_backward_cuda(matmul, g->dnorm, dnorm_type, lg->l1, weight_beta, g->dglu12, la->norm2,
                                 bf16_of(g, lw->l1), N, D, 2 * G, err));
        /* each part's columns give part of the gradient of norm2 (the backward's all-reduce of Eq. 11-18) */
        TRY(sum_parts(g, (float *)g->dnorm, ND, err));
        TRY(norm_backward_cuda(cfg->norm, g->dresid, g->dresid_bf16, lg->channel_norm.gain, lg->channel_norm.bias,
                               g->partials, g->dnorm, dnorm_type, la->resid_mid, la->norm2_rstd, lw->channel_norm.gain,
                               N, D, stream, err));
        /* Token mixer: GLA (Eq. 3-4) or the baseline's softmax attention, whose input gradient is dattn's */
        TRY(matmul_backward_cuda(matmul, baseline ? g->dattn : g->dgated, TN_CUDA_BF16, lg->out, weight_beta,
                                 g->dresid_bf16, mixer_input(g, l), bf16_of(g, lw->out), N, Dm, D, err));
        if (baseline)
            TRY(tn_transformer_cuda_mixer_backward(g, l, batch, seq_len, err));
        else
            TRY(gla_backward(g, &w, &dw, l, batch, seq_len, err));
        TRY(matmul_backward_cuda(matmul, g->dnorm, dnorm_type, lg->qkvu, weight_beta, g->dqkvu, la->norm1,
                                 bf16_of(g, lw->qkvu), N, D, P, err));
        TRY(sum_parts(g, (float *)g->dnorm, ND, err)); /* each part's heads give part of the gradient of norm1 */
        /* layer 0's input gradient goes to the embedding alone: no bf16 copy */
        TRY(norm_backward_cuda(cfg->norm, g->dresid, l > 0 ? g->dresid_bf16 : NULL, lg->token_norm.gain,
                               lg->token_norm.bias, g->partials, g->dnorm, dnorm_type, la->resid, la->norm1_rstd,
                               lw->token_norm.gain, N, D, stream, err));
        TRY(part_grads_done(g, l, err));
    }
    /* h = e E[x] (+ P[t]) */
    TRY(part_grads(g, TN_PART_EMBED, &dw, err));
    if (dw.positions) TRY(positions_backward_cuda(dw.positions, g->dresid, N, seq_len, D, stream, err));
    int n_groups = tn_group_tokens(g->host_groups, g->host_token_counts, g->host_tokens, N, V, cfg->pad_token_id);
    CUDA_TRY(cudaMemcpyAsync(g->token_groups, g->host_groups, TN_TOKEN_GROUPS_SIZE((size_t)N) * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream));
    TRY(embedding_backward_cuda(dw.embed, g->dresid, g->token_groups, n_groups, N, D, tn_embed_scale(cfg), stream,
                                err));
    TRY(part_grads_done(g, TN_PART_EMBED, err));
    g->grads_deferred = 0;
    return 0;
}

extern "C" int tn_model_cuda_backward(TnModelCuda *g, int batch, int seq_len, float loss_scale, TnError *err) {
    if (check_reserved(g, "backward", batch, seq_len, err)) return -1;
    TRY(crossentropy_backward_cuda(g->logits, g->logits, g->lse, g->targets, batch * seq_len, g->config.vocab_size,
                                   loss_scale, stream_of(g), err));
    return backward_from_logits(g, batch, seq_len, err);
}

extern "C" int tn_model_cuda_accumulate(TnModelCuda *g, const int32_t *tokens, const int32_t *targets, int batch,
                                        int seq_len, float loss_scale, float *mean_loss, TnError *err) {
    if (!targets) return tn_fail(err, "tn_model_cuda_accumulate: no targets");
    int scored = forward_to_logits(g, tokens, targets, batch, seq_len, err), N = batch * seq_len;
    if (scored < 0) return -1;
    cudaStream_t stream = stream_of(g);
    cudaEvent_t losses_copied = (cudaEvent_t)g->losses_copied;
    TRY(crossentropy_fused_cuda(g->losses, g->logits, g->targets, N, g->config.vocab_size, loss_scale, stream, err));
    /* host_losses is pinned: the copy is queued, not waited for, and the
     * backward queued behind it, so the GPU goes on from the forward to the
     * backward without waiting for the host */
    CUDA_TRY(cudaMemcpyAsync(g->host_losses, g->losses, N * sizeof(float), cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaEventRecord(losses_copied, stream));
    if (backward_from_logits(g, batch, seq_len, err)) {
        cudaEventSynchronize(losses_copied); /* the copy writes host_losses: done before anything may free it */
        return -1;
    }
    CUDA_TRY(cudaEventSynchronize(losses_copied));
    *mean_loss = mean_loss_of(g, N, scored);
    return 0;
}

static int clear_grads(TnModelCuda *g, TnError *err) {
    CUDA_TRY(cudaMemsetAsync(g->grads, 0, (g->grads_end - g->grads_begin) * sizeof(float), stream_of(g)));
    return 0;
}

extern "C" int tn_model_cuda_zero_grad(TnModelCuda *g, TnError *err) {
    int whole = g->grads_begin == 0 && g->grads_end == g->n_params && !(g->hooks && g->hooks->grads);
    if (!whole) return clear_grads(g, err);
    g->grads_deferred = 1;
    return 0;
}

extern "C" int tn_model_cuda_settle_grads(TnModelCuda *g, TnError *err) {
    if (!g->grads_deferred) return 0;
    g->grads_deferred = 0;
    return clear_grads(g, err);
}

extern "C" int tn_model_cuda_step(TnModelCuda *g, float beta1, float beta2, float eps, float weight_decay, float lr,
                                  long long t, double max_norm, double *grad_norm, TnError *err) {
    cudaStream_t stream = stream_of(g);
    TRY(tn_model_cuda_settle_grads(g, err));
    TRY(grad_sum_squares_cuda(g->sum_squares, g->sum_squares + 1, g->grads + (g->update_begin - g->grads_begin),
                              g->update_end - g->update_begin, stream, err));
    TRY(adamw_range(g, beta1, beta2, eps, weight_decay, lr, t, max_norm, err));
    double sum_squares;
    CUDA_TRY(cudaMemcpyAsync(&sum_squares, g->sum_squares, sizeof(double), cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    *grad_norm = sqrt(sum_squares);
    return 0;
}

extern "C" int tn_model_cuda_grad_squares(TnModelCuda *g, double *sum_squares, TnError *err) {
    cudaStream_t stream = stream_of(g);
    TRY(tn_model_cuda_settle_grads(g, err));
    TRY(grad_sum_squares_cuda(g->sum_squares, g->sum_squares + 1, g->grads + (g->update_begin - g->grads_begin),
                              g->update_end - g->update_begin, stream, err));
    CUDA_TRY(cudaMemcpyAsync(sum_squares, g->sum_squares, sizeof(double), cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int tn_model_cuda_grad_squares_runs(TnModelCuda *g, const size_t *bounds, int n_runs, double *sums,
                                               TnError *err) {
    TN_ASSERT(n_runs <= g->layout.n_tensors);
    cudaStream_t stream = stream_of(g);
    TRY(tn_model_cuda_settle_grads(g, err));
    double *slots = g->sum_squares + 1 + TN_GRAD_SQUARES_PARTIALS;
    for (int k = 0; k < n_runs; k++) {
        size_t begin = bounds[2 * k], end = bounds[2 * k + 1];
        TN_ASSERT(g->update_begin <= begin && begin <= end && end <= g->update_end);
        TRY(grad_sum_squares_cuda(slots + k, g->sum_squares + 1, g->grads + (begin - g->grads_begin), end - begin,
                                  stream, err));
    }
    if (n_runs) CUDA_TRY(cudaMemcpyAsync(sums, slots, (size_t)n_runs * sizeof(double), cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int tn_model_cuda_adamw(TnModelCuda *g, float beta1, float beta2, float eps, float weight_decay, float lr,
                                   long long t, double sum_squares, double max_norm, TnError *err) {
    TRY(tn_model_cuda_settle_grads(g, err));
    /* the kernel takes the clipping factor from the device (adamw_cuda.h); the host's copy is read before return */
    CUDA_TRY(cudaMemcpyAsync(g->sum_squares, &sum_squares, sizeof(double), cudaMemcpyHostToDevice, stream_of(g)));
    return adamw_range(g, beta1, beta2, eps, weight_decay, lr, t, max_norm, err);
}

extern "C" int tn_model_cuda_refresh(TnModelCuda *g, TnError *err) { return refresh_bf16(g, err); }

extern "C" int tn_model_cuda_synchronize(TnModelCuda *g, TnError *err) {
    CUDA_TRY(cudaStreamSynchronize(stream_of(g)));
    return 0;
}

extern "C" int tn_model_cuda_download(TnModelCuda *g, float *params, float *grads, float *adam_m, float *adam_v,
                                      TnError *err) {
    cudaStream_t stream = stream_of(g);
    if (grads) TRY(tn_model_cuda_settle_grads(g, err));
    float *host[4] = {params, grads, adam_m, adam_v};
    Covered device[4];
    covered_buffers(g, device);
    for (int i = 0; i < 4; i++)
        if (host[i])
            CUDA_TRY(cudaMemcpyAsync(host[i], device[i].device, device[i].floats * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int tn_model_cuda_upload(TnModelCuda *g, const float *params, const float *grads, const float *adam_m,
                                    const float *adam_v, TnError *err) {
    cudaStream_t stream = stream_of(g);
    const float *host[4] = {params, grads, adam_m, adam_v};
    Covered device[4];
    covered_buffers(g, device);
    for (int i = 0; i < 4; i++)
        if (host[i])
            CUDA_TRY(cudaMemcpyAsync(device[i].device, host[i], device[i].floats * sizeof(float),
                                     cudaMemcpyHostToDevice, stream));
    if (params) TRY(refresh_bf16(g, err));
    if (grads) g->grads_deferred = 0;
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int tn_model_cuda_logits(TnModelCuda *g, float *logits, int batch, int seq_len, TnError *err) {
    if (check_reserved(g, "logits", batch, seq_len, err)) return -1;
    size_t n = (size_t)batch * seq_len * g->config.vocab_size;
    uint16_t *bits = (uint16_t *)tn_malloc(n * sizeof(uint16_t));
    cudaError_t status = cudaMemcpyAsync(bits, g->logits, n * sizeof(uint16_t), cudaMemcpyDeviceToHost, stream_of(g));
    if (status == cudaSuccess) status = cudaStreamSynchronize(stream_of(g));
    for (size_t i = 0; status == cudaSuccess && i < n; i++) logits[i] = tn_bf16_to_f32(bits[i]);
    free(bits);
    if (status != cudaSuccess) return tn_fail(err, "tn_model_cuda_logits: CUDA: %s", cudaGetErrorString(status));
    return 0;
}
