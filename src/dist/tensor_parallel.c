/* tensor_parallel.c: the split of tensor_parallel.h. */
#include "dist/tensor_parallel.h"

#include <stdlib.h>
#include <string.h>

int tn_tp_check(const TnConfig *cfg, int parts, TnError *err) {
    if (parts < 1) return tn_fail(err, "tensor parallelism over %d ranks: give --tp 1 or more", parts);
    if (parts == 1) return 0;
    if (cfg->arch != TN_ARCH_TRANSNORMER)
        return tn_fail(err, "--tp %d: tensor parallelism splits TransNormerLLM's GLA and SGLU; the Transformer "
                            "baseline runs with --tp 1 only", parts);
    if (cfg->n_heads % parts)
        return tn_fail(err, "--tp %d: the %d attention heads cannot be split evenly over %d ranks (H must be "
                            "divisible by the tensor-parallel size)", parts, cfg->n_heads, parts);
    if (cfg->glu_dim % parts)
        return tn_fail(err, "--tp %d: the SGLU width G = %d cannot be split evenly over %d ranks (G must be "
                            "divisible by the tensor-parallel size)", parts, cfg->glu_dim, parts);
    if (cfg->norm == TN_NORM_LAYER)
        return tn_fail(err, "--tp %d: the norm after the attention spans the heads of every rank; tensor "
                            "parallelism supports --norm srmsnorm and rmsnorm, not layernorm", parts);
    return 0;
}

int tn_tp_groups(const TnComm *world, int tp, TnComm *tensor, TnComm *data, TnError *err) {
    if (tp < 1 || world->size % tp)
        return tn_fail(err, "--tp %d does not divide the %d ranks of the job (ranks = data parallel x tensor "
                            "parallel)", tp, world->size);
    if (tn_comm_split(world, world->rank / tp, world->rank % tp, tensor, err)) return -1;
    if (tn_comm_split(world, world->rank % tp, world->rank / tp, data, err)) {
        tn_comm_free(tensor);
        return -1;
    }
    return 0;
}

int tn_tp_is_split(const TnTensorInfo *t) {
    switch (t->kind) {
    case TN_PARAM_QKVU: case TN_PARAM_OUT: case TN_PARAM_THETA: case TN_PARAM_L1: case TN_PARAM_L2:
    case TN_PARAM_L3: case TN_PARAM_Q_PROJ: case TN_PARAM_K_PROJ: case TN_PARAM_V_PROJ:
        return 1;
    case TN_PARAM_NORM_GAIN: case TN_PARAM_NORM_BIAS:
        return t->norm_site == TN_NORM_SITE_MIXER;
    default:
        return 0;
    }
}

int tn_tp_split_runs(const TnParamLayout *layout, TnRange range, TnTpRun *runs) {
    int n = 0;
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        TnRange in = tn_range_intersect(range, (TnRange){t->offset, t->offset + t->numel});
        if (in.begin == in.end) continue;
        int split = tn_tp_is_split(t);
        if (n > 0 && runs[n - 1].split == split && runs[n - 1].end == in.begin) runs[n - 1].end = in.end;
        else runs[n++] = (TnTpRun){.begin = in.begin, .end = in.end, .split = split};
    }
    return n;
}

/* Whether the split runs along the last dimension (the input columns of
 * W_out and W3) rather than the first. */
static int split_by_columns(TnParamKind kind) { return kind == TN_PARAM_OUT || kind == TN_PARAM_L3; }

/* Part `index` of a whole tensor: reps blocks of `stride` elements, of
 * which the part holds the run elements from `start` in each. */
typedef struct Piece {
    size_t reps, stride, run, start;
} Piece;

static Piece piece_of(const TnTensorInfo *whole, const TnConfig *cfg, int parts, int index) {
    Piece p = {.reps = 1, .stride = whole->numel, .run = whole->numel};
    if (!tn_tp_is_split(whole)) return p;
    if (split_by_columns(whole->kind)) {
        p.reps = (size_t)whole->shape[0];
        p.stride = (size_t)whole->shape[1];
    } else if (whole->kind == TN_PARAM_QKVU) {
        /* the q, k, v (and u) blocks of D rows each: the part's heads in each */
        p.reps = (size_t)(tn_qkvu_rows(cfg) / cfg->dim);
        p.stride = whole->numel / p.reps;
    }
    p.run = p.stride / (size_t)parts;
    p.start = (size_t)index * p.run;
    return p;
}

void tn_tp_layout(TnParamLayout *part, const TnParamLayout *whole, const TnConfig *cfg, int parts) {
    memset(part, 0, sizeof *part);
    part->n_tensors = whole->n_tensors;
    part->tensors = tn_malloc((size_t)whole->n_tensors * sizeof *part->tensors);
    for (int i = 0; i < whole->n_tensors; i++) {
        TnTensorInfo *t = &part->tensors[i];
        *t = whole->tensors[i];
        if (tn_tp_is_split(t)) {
            t->shape[split_by_columns(t->kind) ? 1 : 0] /= parts;
            t->numel /= (size_t)parts;
        }
        t->offset = part->total;
        part->total += t->numel;
    }
    /* a layer begins where its first tensor does (the end: where the first tensor past the layers does) */
    for (int l = 0; l <= cfg->n_layers; l++) {
        part->layer_begin[l] = part->total;
        for (int i = whole->n_tensors - 1; i >= 0; i--)
            if (whole->tensors[i].offset >= whole->layer_begin[l]) part->layer_begin[l] = part->tensors[i].offset;
    }
}

/* Copies part `index` from `from` to `to`: from the whole buffer into the
 * part buffer when to_part, else back. */
static void copy_part(float *to, const float *from, int to_part, const TnParamLayout *whole_layout,
                      const TnParamLayout *part_layout, const TnConfig *cfg, int parts, int index) {
    for (int i = 0; i < whole_layout->n_tensors; i++) {
        Piece p = piece_of(&whole_layout->tensors[i], cfg, parts, index);
        size_t in_whole = whole_layout->tensors[i].offset + p.start, in_part = part_layout->tensors[i].offset;
        for (size_t r = 0; r < p.reps; r++) {
            size_t at_whole = in_whole + r * p.stride, at_part = in_part + r * p.run;
            memcpy(to + (to_part ? at_part : at_whole), from + (to_part ? at_whole : at_part), p.run * sizeof *to);
        }
    }
}

void tn_tp_slice(float *part, const TnParamLayout *part_layout, const float *whole, const TnParamLayout *whole_layout,
                 const TnConfig *cfg, int parts, int index) {
    copy_part(part, whole, 1, whole_layout, part_layout, cfg, parts, index);
}

void tn_tp_place(float *whole, const TnParamLayout *whole_layout, const float *part, const TnParamLayout *part_layout,
                 const TnConfig *cfg, int parts, int index) {
    copy_part(whole, part, 0, whole_layout, part_layout, cfg, parts, index);
}

/* tn_tp_runs into runs, or only counted when runs is NULL. */
static size_t collect_runs(const TnParamLayout *part_layout, const TnParamLayout *whole_layout, const TnConfig *cfg,
                           int parts, int index, size_t begin, size_t end, TnRun *runs) {
    size_t count = 0;
    for (int i = 0; i < whole_layout->n_tensors; i++) {
        Piece p = piece_of(&whole_layout->tensors[i], cfg, parts, index);
        const TnTensorInfo *t = &part_layout->tensors[i];
        TnRange in = tn_range_intersect((TnRange){begin, end}, (TnRange){t->offset, t->offset + t->numel});
        /* part element k of the tensor is element start + k % run of block k / run of the whole tensor */
        for (size_t k = in.begin; k < in.end; count++) {
            size_t within = (k - t->offset) % p.run, length = p.run - within < in.end - k ? p.run - within : in.end - k;
            if (runs)
                runs[count] = (TnRun){.from = whole_layout->tensors[i].offset + (k - t->offset) / p.run * p.stride +
                                              p.start + within,
                                      .to = k - begin, .count = length};
            k += length;
        }
    }
    return count;
}

size_t tn_tp_runs(const TnParamLayout *part_layout, const TnParamLayout *whole_layout, const TnConfig *cfg, int parts,
                  int index, size_t begin, size_t end, TnRun **runs) {
    size_t count = collect_runs(part_layout, whole_layout, cfg, parts, index, begin, end, NULL);
    *runs = tn_malloc((count ? count : 1) * sizeof **runs);
    return collect_runs(part_layout, whole_layout, cfg, parts, index, begin, end, *runs);
}

int tn_tp_split_model(TnModel *m, const TnComm *tensor_group, TnError *err) {
    const TnConfig *cfg = &m->config;
    int parts = tensor_group->size, index = tensor_group->rank;
    if (tn_tp_check(cfg, parts, err)) return -1;
    if (parts == 1) return 0;
    TnParamLayout layout;
    tn_tp_layout(&layout, &m->layout, cfg, parts);
    if (m->params) {
        float *params = tn_malloc(layout.total * sizeof *params);
        tn_tp_slice(params, &layout, m->params, &m->layout, cfg, parts, index);
        free(m->params);
        m->params = params;
    }
    tn_param_layout_free(&m->layout);
    m->layout = layout;
    if (m->params) tn_weights_bind(&m->w, &m->layout, m->params);
    /* the decay rates of this rank's heads */
    int H = cfg->n_heads, heads = H / parts;
    float *decay = tn_malloc((size_t)cfg->n_layers * heads * sizeof *decay);
    for (int l = 0; l < cfg->n_layers; l++)
        memcpy(decay + (size_t)l * heads, m->decay + (size_t)l * H + (size_t)index * heads, heads * sizeof *decay);
    free(m->decay);
    m->decay = decay;
    m->tensor_group = tensor_group;
    tn_model_set_attention(m, m->attn_algo, m->attn_block); /* the arenas were sized for the whole model */
    return 0;
}
