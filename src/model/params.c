#include "model/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static void add_tensor(TnParamLayout *layout, int *cap, const char *name, TnParamKind kind, int layer, int ndim,
                       long long d0, long long d1, long long d2) {
    if (layout->n_tensors == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        TnTensorInfo *grown = realloc(layout->tensors, (size_t)*cap * sizeof *grown);
        if (!grown) tn_die("out of memory building the parameter layout");
        layout->tensors = grown;
    }
    TnTensorInfo *t = &layout->tensors[layout->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->layer = layer;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->numel = (size_t)d0 * (size_t)d1 * (size_t)(ndim == 3 ? d2 : 1);
    t->offset = layout->total;
    layout->total += t->numel;
}

/* The parameters of one norm of kind cfg->norm: none, a gain, or a gain and a bias. */
static void add_norm(TnParamLayout *layout, int *cap, const TnConfig *cfg, const char *prefix, TnNormSite site,
                     int layer) {
    char name[96];
    if (cfg->norm == TN_NORM_SRMS) return;
    snprintf(name, sizeof name, "%s.weight", prefix);
    add_tensor(layout, cap, name, TN_PARAM_NORM_GAIN, layer, 1, cfg->dim, 1, 0);
    layout->tensors[layout->n_tensors - 1].norm_site = site;
    if (cfg->norm != TN_NORM_LAYER) return;
    snprintf(name, sizeof name, "%s.bias", prefix);
    add_tensor(layout, cap, name, TN_PARAM_NORM_BIAS, layer, 1, cfg->dim, 1, 0);
    layout->tensors[layout->n_tensors - 1].norm_site = site;
}

/* The Transformer baseline under LLaMA's names (see params.h). */
static void transformer_layout(TnParamLayout *layout, int *cap, const TnConfig *cfg) {
    long long V = cfg->vocab_size, D = cfg->dim, G = cfg->glu_dim;
    char name[96];
    static const struct { const char *name; TnParamKind kind; int out_is_glu, in_is_glu; } tensors[] = {
        {"self_attn.q_proj", TN_PARAM_Q_PROJ, 0, 0}, {"self_attn.k_proj", TN_PARAM_K_PROJ, 0, 0},
        {"self_attn.v_proj", TN_PARAM_V_PROJ, 0, 0}, {"self_attn.o_proj", TN_PARAM_OUT, 0, 0},
        {"mlp.gate_proj", TN_PARAM_L1, 1, 0},       {"mlp.up_proj", TN_PARAM_L2, 1, 0},
        {"mlp.down_proj", TN_PARAM_L3, 0, 1},
    };
    add_tensor(layout, cap, "model.embed_tokens.weight", TN_PARAM_EMBED, -1, 2, V, D, 0);
    for (int l = 0; l < cfg->n_layers; l++) {
        layout->layer_begin[l] = layout->total;
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm", l);
        add_norm(layout, cap, cfg, name, TN_NORM_SITE_TOKEN, l);
        for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
            if (tensors[i].kind == TN_PARAM_L1) {
                snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm", l);
                add_norm(layout, cap, cfg, name, TN_NORM_SITE_CHANNEL, l);
            }
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, tensors[i].name);
            add_tensor(layout, cap, name, tensors[i].kind, l, 2, tensors[i].out_is_glu ? G : D,
                       tensors[i].in_is_glu ? G : D, 0);
        }
    }
    layout->layer_begin[cfg->n_layers] = layout->total;
    add_norm(layout, cap, cfg, "model.norm", TN_NORM_SITE_FINAL, -1);
    if (!cfg->tie_word_embeddings) add_tensor(layout, cap, "lm_head.weight", TN_PARAM_LM_HEAD, -1, 2, V, D, 0);
}

void tn_param_layout_init(TnParamLayout *layout, const TnConfig *cfg) {
    memset(layout, 0, sizeof *layout);
    int cap = 0;
    long long V = cfg->vocab_size, D = cfg->dim, G = cfg->glu_dim, H = cfg->n_heads, d = D / H;
    char name[96];
    if (cfg->arch == TN_ARCH_TRANSFORMER) {
        transformer_layout(layout, &cap, cfg);
        return;
    }
    add_tensor(layout, &cap, "model.embed_tokens.weight", TN_PARAM_EMBED, -1, 2, V, D, 0);
    if (cfg->pe == TN_PE_APE)
        add_tensor(layout, &cap, "model.embed_positions.weight", TN_PARAM_POSITIONS, -1, 2, cfg->max_positions, D, 0);
    for (int l = 0; l < cfg->n_layers; l++) {
        layout->layer_begin[l] = layout->total;
        snprintf(name, sizeof name, "model.layers.%d.token_norm", l);
        add_norm(layout, &cap, cfg, name, TN_NORM_SITE_TOKEN, l);
        snprintf(name, sizeof name, "model.layers.%d.token_mixer.%s.weight", l,
                 cfg->output_gate ? "qkvu_proj" : "qkv_proj");
        add_tensor(layout, &cap, name, TN_PARAM_QKVU, l, 2, tn_qkvu_rows(cfg), D, 0);
        snprintf(name, sizeof name, "model.layers.%d.token_mixer.out_proj.weight", l);
        add_tensor(layout, &cap, name, TN_PARAM_OUT, l, 2, D, D, 0);
        if (cfg->use_lrpe[l]) {
            snprintf(name, sizeof name, "model.layers.%d.token_mixer.lrpe.theta", l);
            add_tensor(layout, &cap, name, TN_PARAM_THETA, l, 3, H, 1, d);
        }
        snprintf(name, sizeof name, "model.layers.%d.token_mixer.norm", l);
        add_norm(layout, &cap, cfg, name, TN_NORM_SITE_MIXER, l);
        snprintf(name, sizeof name, "model.layers.%d.channel_norm", l);
        add_norm(layout, &cap, cfg, name, TN_NORM_SITE_CHANNEL, l);
        snprintf(name, sizeof name, "model.layers.%d.channel_mixer.l1.weight", l);
        add_tensor(layout, &cap, name, TN_PARAM_L1, l, 2, G, D, 0);
        snprintf(name, sizeof name, "model.layers.%d.channel_mixer.l2.weight", l);
        add_tensor(layout, &cap, name, TN_PARAM_L2, l, 2, G, D, 0);
        snprintf(name, sizeof name, "model.layers.%d.channel_mixer.l3.weight", l);
        add_tensor(layout, &cap, name, TN_PARAM_L3, l, 2, D, G, 0);
    }
    layout->layer_begin[cfg->n_layers] = layout->total;
    add_norm(layout, &cap, cfg, "model.final_norm", TN_NORM_SITE_FINAL, -1);
    if (!cfg->tie_word_embeddings) add_tensor(layout, &cap, "lm_head.weight", TN_PARAM_LM_HEAD, -1, 2, V, D, 0);
}

void tn_param_layout_copy(TnParamLayout *to, const TnParamLayout *from) {
    *to = *from;
    to->tensors = tn_malloc((size_t)(from->n_tensors ? from->n_tensors : 1) * sizeof *to->tensors);
    memcpy(to->tensors, from->tensors, (size_t)from->n_tensors * sizeof *to->tensors);
}

void tn_param_layout_free(TnParamLayout *layout) {
    free(layout->tensors);
    memset(layout, 0, sizeof *layout);
}

const TnTensorInfo *tn_param_find(const TnParamLayout *layout, const char *name) {
    for (int i = 0; i < layout->n_tensors; i++)
        if (strcmp(layout->tensors[i].name, name) == 0) return &layout->tensors[i];
    return NULL;
}

static TnNormWeights *norm_weights(TnWeights *w, const TnTensorInfo *t) {
    switch (t->norm_site) {
    case TN_NORM_SITE_TOKEN: return &w->layers[t->layer].token_norm;
    case TN_NORM_SITE_MIXER: return &w->layers[t->layer].mixer_norm;
    case TN_NORM_SITE_CHANNEL: return &w->layers[t->layer].channel_norm;
    case TN_NORM_SITE_FINAL: break;
    }
    return &w->final_norm;
}

/* Points the view of tensor t at p. */
static void bind_tensor(TnWeights *w, const TnTensorInfo *t, float *p) {
    TnLayerWeights *lw = t->layer >= 0 ? &w->layers[t->layer] : NULL;
    switch (t->kind) {
    case TN_PARAM_POSITIONS: w->positions = p; break;
    case TN_PARAM_NORM_GAIN: norm_weights(w, t)->gain = p; break;
    case TN_PARAM_NORM_BIAS: norm_weights(w, t)->bias = p; break;
    case TN_PARAM_EMBED: w->embed = p; break;
    case TN_PARAM_LM_HEAD: w->lm_head = p; break;
    case TN_PARAM_QKVU: lw->qkvu = p; break;
    case TN_PARAM_OUT: lw->out = p; break;
    case TN_PARAM_THETA: lw->theta = p; break;
    case TN_PARAM_L1: lw->l1 = p; break;
    case TN_PARAM_L2: lw->l2 = p; break;
    case TN_PARAM_L3: lw->l3 = p; break;
    case TN_PARAM_Q_PROJ: lw->qkvu = p; break;
    case TN_PARAM_K_PROJ: case TN_PARAM_V_PROJ: case TN_PARAM_KIND_COUNT: break;
    }
}

/* A tied lm_head is the embedding: no tensor of its own. */
static int has_lm_head(const TnParamLayout *layout) {
    for (int i = 0; i < layout->n_tensors; i++)
        if (layout->tensors[i].kind == TN_PARAM_LM_HEAD) return 1;
    return 0;
}

void tn_weights_bind(TnWeights *w, const TnParamLayout *layout, float *base) {
    memset(w, 0, sizeof *w);
    tn_weights_bind_range(w, layout, 0, layout->total, base);
}

void tn_weights_bind_range(TnWeights *w, const TnParamLayout *layout, size_t begin, size_t end, float *base) {
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        if (t->offset >= begin && t->offset < end) bind_tensor(w, t, base + (t->offset - begin));
    }
    if (!has_lm_head(layout)) w->lm_head = w->embed;
}

void tn_param_part_range(const TnParamLayout *layout, int n_layers, int part, size_t *begin, size_t *end) {
    TN_ASSERT(part >= TN_PART_EMBED && part <= n_layers);
    *begin = part == TN_PART_EMBED ? 0 : layout->layer_begin[part];
    *end = part == TN_PART_EMBED ? layout->layer_begin[0] : part == n_layers ? layout->total : layout->layer_begin[part + 1];
}

size_t tn_param_largest_part(const TnParamLayout *layout, int n_layers, int first) {
    size_t largest = 0;
    for (int part = first; part <= n_layers; part++) {
        size_t begin, end;
        tn_param_part_range(layout, n_layers, part, &begin, &end);
        if (end - begin > largest) largest = end - begin;
    }
    return largest;
}

void tn_params_init(float *params, const TnParamLayout *layout, const TnConfig *cfg, uint64_t seed) {
    tn_params_init_range(params, layout, cfg, seed, 0, layout->total);
}

/* A tensor's elements are drawn in blocks of INIT_BLOCK, each from its own
 * stream of (seed, tensor index, block): a block needs no draws of the
 * blocks before it, so the threads (and a rank's range) start anywhere at
 * the cost of one block at most. Block 0's stream is (seed, tensor index + 1)
 * alone: a tensor of up to INIT_BLOCK elements is one stream. */
#define INIT_BLOCK ((size_t)1 << 20)

/* Elements [from, to) of tensor t, the layout's tensor number `index`,
 * inside its block `block` of INIT_BLOCK elements, into p (p[0] is element
 * from). */
static void init_elements(float *p, const TnTensorInfo *t, int index, const TnConfig *cfg, uint64_t seed, size_t block,
                          size_t from, size_t to) {
    if (t->kind == TN_PARAM_NORM_GAIN || t->kind == TN_PARAM_NORM_BIAS) {
        float value = t->kind == TN_PARAM_NORM_GAIN ? 1.0f : 0.0f;
        for (size_t j = from; j < to; j++) p[j - from] = value;
        return;
    }
    if (t->kind == TN_PARAM_THETA) {
        for (size_t j = from; j < to; j++) p[j - from] = (float)pow(10000.0, -2.0 * (double)j / cfg->dim);
        return;
    }
    TnRng rng;
    tn_rng_seed(&rng, seed, (uint64_t)index + 1 + ((uint64_t)block << 32));
    /* a block's stream is sequential: draw and drop its elements before from */
    tn_rng_skip_normals(&rng, from - block * INIT_BLOCK);
    for (size_t j = from; j < to; j++) p[j - from] = (float)(cfg->init_std * tn_rng_normal(&rng));
    if (t->kind != TN_PARAM_EMBED || cfg->pad_token_id < 0 || cfg->pad_token_id >= cfg->vocab_size) return;
    size_t pad = (size_t)cfg->pad_token_id * cfg->dim; /* the padding row, zero */
    for (size_t j = pad > from ? pad : from; j < pad + (size_t)cfg->dim && j < to; j++) p[j - from] = 0.0f;
}

void tn_params_init_range(float *out, const TnParamLayout *layout, const TnConfig *cfg, uint64_t seed, size_t begin,
                          size_t end) {
    /* the threads share out the blocks of one tensor after another; every
     * thread meets the same loops (nowait: none waits at a tensor's end) */
    #pragma omp parallel
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        /* the tensor's elements [first, last) inside the range; element j goes to p[j - first] */
        size_t first = t->offset > begin ? 0 : begin - t->offset;
        size_t last = t->offset + t->numel < end ? t->numel : end > t->offset ? end - t->offset : 0;
        if (first >= last) continue;
        float *p = out + (t->offset + first - begin);
        long end_block = (long)((last - 1) / INIT_BLOCK) + 1;
        #pragma omp for schedule(dynamic, 1) nowait
        for (long block = (long)(first / INIT_BLOCK); block < end_block; block++) {
            size_t from = (size_t)block * INIT_BLOCK, to = from + INIT_BLOCK;
            if (from < first) from = first;
            if (to > last) to = last;
            init_elements(p + (from - first), t, i, cfg, seed, (size_t)block, from, to);
        }
    }
}

const TnTensorInfo *tn_param_tensor_at(const TnParamLayout *layout, size_t at) {
    int low = 0, high = layout->n_tensors - 1;
    while (low < high) {
        int mid = (low + high + 1) / 2;
        if (layout->tensors[mid].offset <= at) low = mid;
        else high = mid - 1;
    }
    return &layout->tensors[low];
}

void tn_params_init_runs(float *out, const TnParamLayout *layout, const TnConfig *cfg, uint64_t seed,
                         const TnRun *runs, size_t n_runs) {
    float *tensor = NULL; /* the whole of a tensor cut into several runs */
    const TnTensorInfo *held = NULL;
    for (size_t i = 0; i < n_runs; i++) {
        const TnTensorInfo *t = tn_param_tensor_at(layout, runs[i].from);
        int alone = (i == 0 || tn_param_tensor_at(layout, runs[i - 1].from) != t) &&
                    (i + 1 == n_runs || tn_param_tensor_at(layout, runs[i + 1].from) != t);
        if (alone) {
            tn_params_init_range(out + runs[i].to, layout, cfg, seed, runs[i].from, runs[i].from + runs[i].count);
            continue;
        }
        if (held != t) {
            free(tensor);
            tensor = tn_malloc(t->numel * sizeof *tensor);
            tn_params_init_range(tensor, layout, cfg, seed, t->offset, t->offset + t->numel);
            held = t;
        }
        memcpy(out + runs[i].to, tensor + (runs[i].from - t->offset), runs[i].count * sizeof *out);
    }
    free(tensor);
}
