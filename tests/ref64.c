#include "ref64.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static const float *tensor(const TnParamLayout *layout, const float *params, const char *fmt, int layer) {
    char name[128];
    snprintf(name, sizeof name, fmt, layer);
    const TnTensorInfo *t = tn_param_find(layout, name);
    return t ? params + t->offset : NULL;
}

/* The norm of cfg->norm: SRMSNorm, RMSNorm with gain g, LayerNorm with g
 * and bias b (eps 1e-6 throughout); g and b NULL for SRMSNorm. */
static void norm(double *y, const double *x, int n, TnNormKind kind, const float *g, const float *b) {
    double mu = 0;
    if (kind == TN_NORM_LAYER)
        for (int i = 0; i < n; i++) mu += x[i] / n;
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    double s = 1.0 / sqrt(ss / n + 1e-6);
    for (int i = 0; i < n; i++) y[i] = (x[i] - mu) * s * (g ? g[i] : 1.0) + (b ? b[i] : 0.0);
}

/* y[o] = sum_i W[o, i] x[i], W (out, in) */
static void linear(double *y, const float *W, const double *x, int in, int out) {
    for (int o = 0; o < out; o++) {
        double s = 0;
        for (int i = 0; i < in; i++) s += (double)W[(long)o * in + i] * x[i];
        y[o] = s;
    }
}

static double activation(TnActivation act, double x) {
    if (act == TN_ACT_SILU) return x / (1.0 + exp(-x));
    if (act == TN_ACT_ONE_PLUS_ELU) return x > 0 ? 1.0 + x : exp(x);
    return x;
}

static double slope(int h, int H) {
    int p = 1;
    while (p * 2 <= H) p *= 2;
    if (h < p) return pow(2.0, -8.0 * (h + 1) / p);
    return pow(2.0, -8.0 * (2 * (h - p) + 1) / (2.0 * p));
}

/* SPEC sections 1 and 3: lambda of head h in layer l. */
static double decay(const TnConfig *cfg, int h, int l) {
    int H = cfg->n_heads, L = cfg->n_layers;
    if (cfg->pe == TN_PE_LRPE || cfg->pe == TN_PE_APE || cfg->decay == TN_DECAY_NONE) return 1.0;
    if (cfg->decay == TN_DECAY_PAPER) {
        double temperature = cfg->decay_temperature ? 1.0 - (double)(l + 1) / L : 1.0;
        return exp(-(8.0 * (h + 1) / H) * temperature);
    }
    double temperature = !cfg->decay_temperature ? 1.0 : L > 1 ? 1.0 - (double)l / (L - 1) + 1e-5 : 1.0 + 1e-5;
    return exp(-slope(h, H) * temperature);
}

double ref64_token_loss(const double *z, int V, int32_t target) {
    double max = z[0], sum = 0;
    for (int i = 1; i < V; i++) max = z[i] > max ? z[i] : max;
    for (int i = 0; i < V; i++) sum += exp(z[i] - max);
    return log(sum) + max - z[target];
}

/* The loss of a row's target, counted in *scored; 0 for an ignored one. */
static double token_loss(const double *z, int V, int32_t target, int *scored) {
    if (target == -100) return 0.0;
    (*scored)++;
    return ref64_token_loss(z, V, target);
}

/* The LLaMA-style baseline (model/transformer.h), from its definition:
 * RMSNorm with gains, RoPE (rotate half, base 10000) on q and k, causal
 * softmax of q . k / sqrt(d), SwiGLU, tied or separate head. */
static double ref64_transformer(const TnConfig *cfg, const TnParamLayout *layout, const float *params,
                                const int32_t *tokens, const int32_t *targets, int batch, int T, double *logits) {
    int D = cfg->dim, H = cfg->n_heads, d = D / H, G = cfg->glu_dim, V = cfg->vocab_size;
    double *h = calloc((size_t)T * D, sizeof *h), *x = calloc((size_t)D, sizeof *x);
    double *q = calloc((size_t)T * D, sizeof *q), *k = calloc((size_t)T * D, sizeof *k);
    double *v = calloc((size_t)T * D, sizeof *v), *o = calloc((size_t)D, sizeof *o), *y = calloc((size_t)D, sizeof *y);
    double *g1 = calloc((size_t)G, sizeof *g1), *g2 = calloc((size_t)G, sizeof *g2), *p = calloc((size_t)T, sizeof *p);
    TN_ASSERT(h && x && q && k && v && o && y && g1 && g2 && p);
    const float *E = tensor(layout, params, "model.embed_tokens.weight", 0);
    const float *head = tensor(layout, params, "lm_head.weight", 0);
    if (!head) head = E;
    const float *final_gain = tensor(layout, params, "model.norm.weight", 0);
    double loss = 0;
    int scored = 0;
    for (int b = 0; b < batch; b++) {
        const int32_t *tok = tokens + (long)b * T;
        for (int t = 0; t < T; t++)
            for (int c = 0; c < D; c++) h[t * D + c] = E[(long)tok[t] * D + c];
        for (int l = 0; l < cfg->n_layers; l++) {
            const float *n1 = tensor(layout, params, "model.layers.%d.input_layernorm.weight", l);
            const float *n2 = tensor(layout, params, "model.layers.%d.post_attention_layernorm.weight", l);
            const float *Wq = tensor(layout, params, "model.layers.%d.self_attn.q_proj.weight", l);
            const float *Wk = tensor(layout, params, "model.layers.%d.self_attn.k_proj.weight", l);
            const float *Wv = tensor(layout, params, "model.layers.%d.self_attn.v_proj.weight", l);
            const float *Wo = tensor(layout, params, "model.layers.%d.self_attn.o_proj.weight", l);
            const float *Wg = tensor(layout, params, "model.layers.%d.mlp.gate_proj.weight", l);
            const float *Wu = tensor(layout, params, "model.layers.%d.mlp.up_proj.weight", l);
            const float *Wd = tensor(layout, params, "model.layers.%d.mlp.down_proj.weight", l);
            for (int t = 0; t < T; t++) {
                norm(x, h + t * D, D, TN_NORM_RMS, n1, NULL);
                linear(q + t * D, Wq, x, D, D);
                linear(k + t * D, Wk, x, D, D);
                linear(v + t * D, Wv, x, D, D);
                for (int hh = 0; hh < H; hh++)
                    for (int c = 0; c < d / 2; c++) {
                        double angle = t * pow(10000.0, -2.0 * c / d), cs = cos(angle), sn = sin(angle);
                        double *qa = q + t * D + hh * d, *ka = k + t * D + hh * d;
                        double q0 = qa[c], q1 = qa[c + d / 2], k0 = ka[c], k1 = ka[c + d / 2];
                        qa[c] = q0 * cs - q1 * sn;
                        qa[c + d / 2] = q1 * cs + q0 * sn;
                        ka[c] = k0 * cs - k1 * sn;
                        ka[c + d / 2] = k1 * cs + k0 * sn;
                    }
            }
            /* causal softmax attention, then the output projection; rows
             * t are updated in place from the last, so earlier rows still
             * hold this layer's input */
            for (int t = T - 1; t >= 0; t--) {
                for (int hh = 0; hh < H; hh++) {
                    double max = -INFINITY, sum = 0;
                    for (int s = 0; s <= t; s++) {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += q[t * D + hh * d + c] * k[s * D + hh * d + c];
                        p[s] = dot / sqrt((double)d);
                        max = p[s] > max ? p[s] : max;
                    }
                    for (int s = 0; s <= t; s++) sum += (p[s] = exp(p[s] - max));
                    for (int c = 0; c < d; c++) {
                        double acc = 0;
                        for (int s = 0; s <= t; s++) acc += p[s] / sum * v[s * D + hh * d + c];
                        o[hh * d + c] = acc;
                    }
                }
                linear(y, Wo, o, D, D);
                for (int c = 0; c < D; c++) h[t * D + c] += y[c];
            }
            for (int t = 0; t < T; t++) {
                norm(x, h + t * D, D, TN_NORM_RMS, n2, NULL);
                linear(g1, Wg, x, D, G);
                linear(g2, Wu, x, D, G);
                for (int j = 0; j < G; j++) g1[j] = g1[j] / (1.0 + exp(-g1[j])) * g2[j];
                linear(y, Wd, g1, G, D);
                for (int c = 0; c < D; c++) h[t * D + c] += y[c];
            }
        }
        for (int t = 0; t < T; t++) {
            double *z = logits + ((long)b * T + t) * V;
            norm(x, h + t * D, D, TN_NORM_RMS, final_gain, NULL);
            linear(z, head, x, D, V);
            if (targets) loss += token_loss(z, V, targets[(long)b * T + t], &scored);
        }
    }
    free(h); free(x); free(q); free(k); free(v); free(o); free(y); free(g1); free(g2); free(p);
    return scored ? loss / scored : 0.0;
}

double ref64_forward(const TnConfig *cfg, const TnParamLayout *layout, const float *params, const int32_t *tokens,
                     const int32_t *targets, int batch, int seq_len, double *logits) {
    if (cfg->arch == TN_ARCH_TRANSFORMER)
        return ref64_transformer(cfg, layout, params, tokens, targets, batch, seq_len, logits);
    int D = cfg->dim, H = cfg->n_heads, d = D / H, G = cfg->glu_dim, V = cfg->vocab_size, L = cfg->n_layers;
    int T = seq_len;
    double *h = calloc((size_t)T * D, sizeof *h), *x = calloc((size_t)T * D, sizeof *x);
    int P = cfg->output_gate ? 4 * D : 3 * D; /* the gate's u rows or none */
    double *qkvu = calloc((size_t)T * P, sizeof *qkvu), *o = calloc((size_t)T * D, sizeof *o);
    double *tmp = calloc((size_t)(G > D ? G : D), sizeof *tmp), *g1 = calloc((size_t)G, sizeof *g1);
    double *g2 = calloc((size_t)G, sizeof *g2), *y = calloc((size_t)D, sizeof *y);
    TN_ASSERT(h && x && qkvu && o && tmp && g1 && g2 && y);
    const float *E = tensor(layout, params, "model.embed_tokens.weight", 0);
    const float *head = tensor(layout, params, "lm_head.weight", 0);
    const float *positions = tensor(layout, params, "model.embed_positions.weight", 0);
    const float *final_gain = tensor(layout, params, "model.final_norm.weight", 0);
    const float *final_bias = tensor(layout, params, "model.final_norm.bias", 0);
    TnNormKind kind = cfg->norm;
    if (!head) head = E;
    double scale = cfg->no_scale_embedding ? 1.0 : sqrt((double)D);
    double loss = 0;
    int scored = 0;
    for (int b = 0; b < batch; b++) {
        const int32_t *tok = tokens + (long)b * T;
        for (int t = 0; t < T; t++)
            for (int c = 0; c < D; c++)
                h[t * D + c] = scale * E[(long)tok[t] * D + c] + (positions ? positions[(long)t * D + c] : 0.0);
        for (int l = 0; l < L; l++) {
            const float *Wqkvu = tensor(layout, params,
                                        cfg->output_gate ? "model.layers.%d.token_mixer.qkvu_proj.weight"
                                                         : "model.layers.%d.token_mixer.qkv_proj.weight", l);
            const float *g1w = tensor(layout, params, "model.layers.%d.token_norm.weight", l);
            const float *g1b = tensor(layout, params, "model.layers.%d.token_norm.bias", l);
            const float *gow = tensor(layout, params, "model.layers.%d.token_mixer.norm.weight", l);
            const float *gob = tensor(layout, params, "model.layers.%d.token_mixer.norm.bias", l);
            const float *g2w = tensor(layout, params, "model.layers.%d.channel_norm.weight", l);
            const float *g2b = tensor(layout, params, "model.layers.%d.channel_norm.bias", l);
            const float *Wout = tensor(layout, params, "model.layers.%d.token_mixer.out_proj.weight", l);
            const float *theta = tensor(layout, params, "model.layers.%d.token_mixer.lrpe.theta", l);
            const float *W1 = tensor(layout, params, "model.layers.%d.channel_mixer.l1.weight", l);
            const float *W2 = tensor(layout, params, "model.layers.%d.channel_mixer.l2.weight", l);
            const float *W3 = tensor(layout, params, "model.layers.%d.channel_mixer.l3.weight", l);
            for (int t = 0; t < T; t++) {
                norm(x + t * D, h + t * D, D, kind, g1w, g1b);
                linear(qkvu + (long)t * P, Wqkvu, x + t * D, D, P);
                for (int c = 0; c < 2 * D; c++) qkvu[(long)t * P + c] = activation(cfg->gla_act, qkvu[(long)t * P + c]);
            }
            for (int hh = 0; hh < H; hh++) {
                double lambda = decay(cfg, hh, l);
                for (int t = 0; t < T; t++) {
                    double *ot = o + t * D + hh * d;
                    for (int c = 0; c < d; c++) ot[c] = 0;
                    for (int s = 0; s <= t; s++) {
                        const double *q = qkvu + (long)t * P + hh * d, *k = qkvu + (long)s * P + D + hh * d;
                        const double *v = qkvu + (long)s * P + 2 * D + hh * d;
                        double score = 0;
                        for (int c = 0; c < d; c++) {
                            double rot = theta ? cos((double)theta[hh * d + c] * (t - s)) : 1.0;
                            score += q[c] * k[c] * rot;
                        }
                        score *= pow(lambda, t - s);
                        for (int c = 0; c < d; c++) ot[c] += score * v[c];
                    }
                }
            }
            for (int t = 0; t < T; t++) {
                norm(tmp, o + t * D, D, kind, gow, gob);
                if (cfg->output_gate)
                    for (int c = 0; c < D; c++) tmp[c] *= qkvu[(long)t * P + 3 * D + c];
                linear(y, Wout, tmp, D, D);
                for (int c = 0; c < D; c++) h[t * D + c] += y[c];
                norm(x + t * D, h + t * D, D, kind, g2w, g2b);
                linear(g1, W1, x + t * D, D, G);
                linear(g2, W2, x + t * D, D, G);
                for (int j = 0; j < G; j++) g1[j] = activation(cfg->glu_act, g1[j]) * g2[j];
                linear(y, W3, g1, G, D);
                for (int c = 0; c < D; c++) h[t * D + c] += y[c];
            }
        }
        for (int t = 0; t < T; t++) {
            double *z = logits + ((long)b * T + t) * V;
            norm(x + t * D, h + t * D, D, kind, final_gain, final_bias);
            linear(z, head, x + t * D, D, V);
            if (targets) loss += token_loss(z, V, targets[(long)b * T + t], &scored);
        }
    }
    free(h); free(x); free(qkvu); free(o); free(tmp); free(g1); free(g2); free(y);
    return scored ? loss / scored : 0.0;
}
