#include "infer/session.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/pointwise.h"
#include "kernels/cpu/qk_features.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/softmax_attention.h"

static int is_transformer(const TnConfig *cfg) { return cfg->arch == TN_ARCH_TRANSFORMER; }

int tn_session_kv_context(const TnConfig *cfg) {
    return cfg->max_positions > 0 ? cfg->max_positions : TN_SESSION_KV_CONTEXT;
}

static TnAttnShape attention_shape(const TnConfig *cfg, int layer, int batch, int seq_len) {
    int dk = tn_qk_head_dim(cfg, layer), H = cfg->n_heads;
    return (TnAttnShape){.batch = batch, .heads = H, .seq_len = seq_len, .dk = dk, .dv = tn_head_dim(cfg),
                         .ldq = H * dk, .ldk = H * dk, .ldv = tn_qkvu_rows(cfg), .ldo = cfg->dim};
}

/* One sequence's state in one layer: the recurrent S of every head, or the
 * baseline's KV cache, keys [context, D] then values [context, D]. */
static size_t layer_state_floats(const TnConfig *cfg, int layer) {
    if (is_transformer(cfg)) return (size_t)2 * tn_session_kv_context(cfg) * cfg->dim;
    return (size_t)cfg->n_heads * tn_qk_head_dim(cfg, layer) * tn_head_dim(cfg);
}

size_t tn_session_state_bytes(const TnConfig *cfg) {
    size_t n = 0;
    for (int l = 0; l < cfg->n_layers; l++) n += layer_state_floats(cfg, l);
    return n * sizeof(float);
}

/* Lays out (or, with base == NULL, only measures) the session's buffer. */
static size_t layout_session(TnSession *s, const TnConfig *cfg, int threads, float *base) {
    size_t rows = (size_t)(s->max_batch > s->prefill_rows ? s->max_batch : s->prefill_rows);
    size_t D = cfg->dim, G = cfg->glu_dim, qk = rows * cfg->n_heads * 2 * tn_head_dim(cfg), used = 0, scratch = 0;
#define TAKE(field, count) ((field) = base ? base + used : NULL, used += (count))
    TAKE(s->hidden, rows * D);
    TAKE(s->normed, rows * D);
    TAKE(s->qkvu, rows * tn_qkvu_rows(cfg));
    TAKE(s->qf, qk);
    TAKE(s->kf, qk);
    TAKE(s->attn, rows * D);
    TAKE(s->gated, rows * D);
    TAKE(s->delta, rows * D);
    TAKE(s->glu1, rows * G);
    TAKE(s->glu2, rows * G);
    TAKE(s->glu, rows * G);
    TAKE(s->logits, (size_t)s->max_batch * cfg->vocab_size);
    for (int l = 0; l < cfg->n_layers; l++) {
        TAKE(s->state[l], (size_t)s->max_batch * layer_state_floats(cfg, l));
        if (is_transformer(cfg)) {
            size_t need = softmax_attention_scratch_floats(tn_session_kv_context(cfg), threads);
            scratch = need > scratch ? need : scratch;
            continue;
        }
        TnAttnShape prefill = attention_shape(cfg, l, 1, s->prefill_rows);
        TnAttnShape decode = attention_shape(cfg, l, s->max_batch, 1);
        size_t a = tn_attention_scratch_floats(&prefill, TN_ATTN_CHUNKED, TN_ATTN_DEFAULT_BLOCK, threads);
        size_t b = tn_attention_scratch_floats(&decode, TN_ATTN_RECURRENT, 0, threads);
        if (a > scratch) scratch = a;
        if (b > scratch) scratch = b;
    }
    TAKE(s->attn_scratch, scratch);
#undef TAKE
    return used;
}

/* The fields every session has, before its layers' memory: the CPU's
 * buffers or a device. */
static void init_bookkeeping(TnSession *s, const TnModel *m, int max_batch, int prefill_rows) {
    TN_ASSERT(max_batch >= 1);
    memset(s, 0, sizeof *s);
    s->model = m;
    s->max_batch = max_batch;
    s->prefill_rows = prefill_rows > 0 ? prefill_rows : TN_SESSION_PREFILL_ROWS;
    s->state_floats = tn_session_state_bytes(&m->config) / sizeof(float);
}

static void allocate_history(TnSession *s) {
    s->position = tn_calloc((size_t)s->max_batch, sizeof *s->position);
    s->recent = tn_calloc((size_t)s->max_batch * TN_SESSION_RECENT, sizeof *s->recent);
}

void tn_session_init(TnSession *s, const TnModel *m, int max_batch, int prefill_rows) {
    init_bookkeeping(s, m, max_batch, prefill_rows);
    int threads = omp_get_max_threads();
    s->n_floats = layout_session(s, &m->config, threads, NULL);
    s->memory = tn_calloc(s->n_floats, sizeof(float));
    layout_session(s, &m->config, threads, s->memory);
    allocate_history(s);
}

int tn_session_init_on(TnSession *s, const TnModel *m, TnDevice device, int max_batch, int prefill_rows,
                       TnError *err) {
    if (device == TN_DEVICE_CPU) {
        tn_session_init(s, m, max_batch, prefill_rows);
        return 0;
    }
    init_bookkeeping(s, m, max_batch, prefill_rows);
    int rows = max_batch > s->prefill_rows ? max_batch : s->prefill_rows;
    if (tn_session_device_open(&s->device, device, m, max_batch, rows, err)) return -1;
    s->logits = tn_session_device_logits(s->device);
    allocate_history(s);
    return 0;
}

void tn_session_free(TnSession *s) {
    tn_session_device_close(s->device);
    free(s->memory);
    free(s->position);
    free(s->recent);
    memset(s, 0, sizeof *s);
}

void tn_session_use_int8(TnSession *s, const TnQuantModel *q) {
    TN_ASSERT(!q || (q->n_layers == s->model->config.n_layers && !s->device));
    s->quant = q;
}

void tn_session_reset(TnSession *s, int seq) {
    const TnConfig *cfg = &s->model->config;
    TN_ASSERT(seq >= 0 && seq < s->max_batch);
    /* a device empties the state of a sequence it is given at position 0 */
    if (!s->device)
        for (int l = 0; l < cfg->n_layers; l++) {
            size_t n = layer_state_floats(cfg, l);
            memset(s->state[l] + (size_t)seq * n, 0, n * sizeof(float));
        }
    memset(tn_session_logits(s, seq), 0, (size_t)cfg->vocab_size * sizeof(float));
    s->position[seq] = 0;
}

int tn_session_copy(TnSession *s, int from, int to, TnError *err) {
    const TnConfig *cfg = &s->model->config;
    TN_ASSERT(from >= 0 && from < s->max_batch && to >= 0 && to < s->max_batch);
    if (from == to) return 0;
    if (s->device) {
        if (tn_session_device_copy(s->device, from, to, err)) return -1;
    } else {
        for (int l = 0; l < cfg->n_layers; l++) {
            size_t n = layer_state_floats(cfg, l);
            memcpy(s->state[l] + (size_t)to * n, s->state[l] + (size_t)from * n, n * sizeof(float));
        }
    }
    memcpy(tn_session_logits(s, to), tn_session_logits(s, from), (size_t)cfg->vocab_size * sizeof(float));
    memcpy(s->recent + (size_t)to * TN_SESSION_RECENT, s->recent + (size_t)from * TN_SESSION_RECENT,
           TN_SESSION_RECENT * sizeof(int32_t));
    s->position[to] = s->position[from];
    return 0;
}

int tn_session_recent(const TnSession *s, int seq, int32_t *out) {
    int pos = s->position[seq], n = pos < TN_SESSION_RECENT ? pos : TN_SESSION_RECENT;
    const int32_t *ring = s->recent + (size_t)seq * TN_SESSION_RECENT;
    for (int i = 0; i < n; i++) out[i] = ring[(pos - n + i) % TN_SESSION_RECENT];
    return n;
}

static void remember(TnSession *s, int seq, const int32_t *tokens, int n) {
    int32_t *ring = s->recent + (size_t)seq * TN_SESSION_RECENT;
    for (int i = 0; i < n; i++) ring[(s->position[seq] + i) % TN_SESSION_RECENT] = tokens[i];
    s->position[seq] += n;
}

float *tn_session_layer_state(const TnSession *s, int seq, int layer, size_t *count) {
    TN_ASSERT(!s->device);
    *count = layer_state_floats(&s->model->config, layer);
    return s->state[layer] + (size_t)seq * *count;
}

void tn_session_set_history(TnSession *s, int seq, int position, const int32_t *recent, int n_recent) {
    TN_ASSERT(position >= 0 && n_recent >= 0 && n_recent <= position && n_recent <= TN_SESSION_RECENT);
    s->position[seq] = position - n_recent;
    remember(s, seq, recent, n_recent);
}

static int check_tokens(const TnSession *s, int seq, const int32_t *tokens, size_t n, TnError *err) {
    int V = s->model->config.vocab_size;
    if (n == 0) return tn_fail(err, "no tokens to feed to sequence %d", seq);
    if ((long long)s->position[seq] + (long long)n > INT_MAX)
        return tn_fail(err, "%zu tokens after position %d exceed the longest sequence a session holds (%d tokens)", n,
                       s->position[seq], INT_MAX);
    const TnConfig *cfg = &s->model->config;
    /* APE has a row per learned position; the baseline's KV cache holds a fixed context. */
    int limit = cfg->pe == TN_PE_APE ? cfg->max_positions : is_transformer(cfg) ? tn_session_kv_context(cfg) : 0;
    if (limit && (long long)s->position[seq] + (long long)n > limit)
        return tn_fail(err, "%zu tokens after position %d exceed the %d positions the model %s", n, s->position[seq],
                       limit, cfg->pe == TN_PE_APE ? "learned (max_position_embeddings)" : "caches (its KV-cache context)");
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return tn_fail(err, "token id %d (input %zu) is outside the model's vocabulary [0, %d)", tokens[i], i, V);
    return 0;
}

/* h += delta over n floats: the residual connections of Eq. 9. */
static void add_residual(float *hidden, const float *delta, size_t n) { cblas_saxpy((int)n, 1.0f, delta, 1, hidden, 1); }

/* out = inp . W^T with the fp32 weight, or its int8 copy when the session
 * uses one (q is then the matching TnQuantMatrix). */
static void linear(const TnSession *s, float *out, const float *inp, int n, const float *weight,
                   const TnQuantMatrix *q, int in_dim, int out_dim) {
    if (s->quant) tn_quant_linear(out, inp, q, n);
    else matmul_forward_cpu(out, inp, weight, n, in_dim, out_dim);
}

/* The GLA token mixer (Eq. 3-4) of layer l over `batch` sequences of
 * `seq_len` rows each, from s->normed into s->gated (the input of W_out),
 * LRPE at each sequence's own positions, the recurrent states read and
 * updated in place. */
static void gla_mixer(TnSession *s, int l, int first_seq, int batch, int seq_len, TnAttnAlgo algo) {
    const TnModel *m = s->model;
    const TnConfig *cfg = &m->config;
    const TnLayerWeights *lw = &m->w.layers[l];
    int n = batch * seq_len, D = cfg->dim, H = cfg->n_heads, d = tn_head_dim(cfg), P = tn_qkvu_rows(cfg);
    int dk = tn_qk_head_dim(cfg, l);
    linear(s, s->qkvu, s->normed, n, lw->qkvu, s->quant ? &s->quant->layers[l].qkvu : NULL, D, P);
    for (int b = 0; b < batch; b++) {
        size_t row = (size_t)b * seq_len;
        qk_features_forward_cpu(s->qf + row * H * dk, s->kf + row * H * dk, s->qkvu + row * P, P, cfg->gla_act,
                                lw->theta, seq_len, seq_len, s->position[first_seq + b], H, d);
    }
    TnAttnShape shape = attention_shape(cfg, l, batch, seq_len);
    float *state = s->state[l] + (size_t)first_seq * layer_state_floats(cfg, l);
    attention_forward_cpu(s->attn, s->qf, s->kf, s->qkvu + 2 * D, m->decay + l * H, state, &shape, algo,
                          TN_ATTN_DEFAULT_BLOCK, s->attn_scratch);
    norm_forward_cpu(cfg->norm, s->gated, NULL, s->attn, lw->mixer_norm.gain, lw->mixer_norm.bias, n, D);
    if (!cfg->output_gate) return;
    for (int r = 0; r < n; r++) {
        const float *u = s->qkvu + (size_t)r * P + 3 * D;
        float *g = s->gated + (size_t)r * D;
        for (int c = 0; c < D; c++) g[c] *= u[c];
    }
}

/* The baseline's softmax attention of layer l with a KV cache, from
 * s->normed into s->gated: each sequence's new keys (RoPE at their
 * positions) and values go into its cache, then its queries attend to the
 * cache up to their own position. */
static void cached_attention_mixer(TnSession *s, int l, int first_seq, int batch, int seq_len) {
    const TnModel *m = s->model;
    const TnConfig *cfg = &m->config;
    int D = cfg->dim, H = cfg->n_heads, d = tn_head_dim(cfg), P = 3 * D, context = tn_session_kv_context(cfg);
    linear(s, s->qkvu, s->normed, batch * seq_len, m->w.layers[l].qkvu, s->quant ? &s->quant->layers[l].qkvu : NULL,
           D, P);
    for (int b = 0; b < batch; b++) {
        int position = s->position[first_seq + b];
        const float *qkv = s->qkvu + (size_t)b * seq_len * P;
        float *keys = s->state[l] + (size_t)(first_seq + b) * layer_state_floats(cfg, l);
        float *values = keys + (size_t)context * D, *queries = s->qf + (size_t)b * seq_len * D;
        rope_forward_at_cpu(queries, qkv, P, seq_len, position, H, d, TN_ROPE_THETA);
        rope_forward_at_cpu(keys + (size_t)position * D, qkv + D, P, seq_len, position, H, d, TN_ROPE_THETA);
        for (int t = 0; t < seq_len; t++)
            memcpy(values + (size_t)(position + t) * D, qkv + (size_t)t * P + 2 * D, (size_t)D * sizeof *values);
        softmax_attention_cached_forward_cpu(s->gated + (size_t)b * seq_len * D, queries, keys, values, seq_len,
                                             position, H, d, s->attn_scratch);
    }
}

/* Runs every layer over `batch` sequences of `seq_len` tokens each, rows
 * b * seq_len + t of s->hidden, sequences first_seq .. first_seq+batch-1 of
 * the session; their states are read and updated in place. */
static void layers_forward(TnSession *s, int first_seq, int batch, int seq_len, TnAttnAlgo algo) {
    const TnModel *m = s->model;
    const TnConfig *cfg = &m->config;
    int n = batch * seq_len, D = cfg->dim, G = cfg->glu_dim;
    for (int l = 0; l < cfg->n_layers; l++) {
        const TnLayerWeights *lw = &m->w.layers[l];
        const TnQuantLayer *ql = s->quant ? &s->quant->layers[l] : NULL;
        /* Token mixer (pre-norm, Eq. 9): GLA, or the baseline's softmax attention. */
        norm_forward_cpu(cfg->norm, s->normed, NULL, s->hidden, lw->token_norm.gain, lw->token_norm.bias, n, D);
        if (is_transformer(cfg)) cached_attention_mixer(s, l, first_seq, batch, seq_len);
        else gla_mixer(s, l, first_seq, batch, seq_len, algo);
        linear(s, s->delta, s->gated, n, lw->out, ql ? &ql->out : NULL, D, D);
        add_residual(s->hidden, s->delta, (size_t)n * D);
        /* Channel mixer: SGLU (Eq. 5) with the glu_act switch; SwiGLU in the baseline. */
        norm_forward_cpu(cfg->norm, s->normed, NULL, s->hidden, lw->channel_norm.gain, lw->channel_norm.bias, n, D);
        linear(s, s->glu1, s->normed, n, lw->l1, ql ? &ql->l1 : NULL, D, G);
        linear(s, s->glu2, s->normed, n, lw->l2, ql ? &ql->l2 : NULL, D, G);
        glu_forward_cpu(s->glu, s->glu1, s->glu2, cfg->glu_act, (size_t)n * G);
        linear(s, s->delta, s->glu, n, lw->l3, ql ? &ql->l3 : NULL, G, D);
        add_residual(s->hidden, s->delta, (size_t)n * D);
    }
}

/* h = e * E[x] (+ the APE row of the token's absolute position) for
 * `batch` sequences of seq_len tokens, rows as in layers_forward. */
static void embed(TnSession *s, const int32_t *tokens, int first_seq, int batch, int seq_len) {
    const TnConfig *cfg = &s->model->config;
    int D = cfg->dim, n = batch * seq_len;
    float scale = tn_embed_scale(cfg);
    const TnQuantMatrix *q = s->quant && s->quant->tied ? &s->quant->output : NULL;
    for (int r = 0; r < n; r++) {
        float *h = s->hidden + (size_t)r * D;
        if (q) {
            /* The tied embedding is the quantized output projection. */
            const int8_t *e = q->values + (size_t)tokens[r] * D;
            float row_scale = scale * q->scales[tokens[r]];
            for (int c = 0; c < D; c++) h[c] = row_scale * (float)e[c];
        } else {
            const float *e = s->model->w.embed + (size_t)tokens[r] * D;
            for (int c = 0; c < D; c++) h[c] = scale * e[c];
        }
        if (!s->model->w.positions) continue;
        int position = s->position[first_seq + r / seq_len] + r % seq_len;
        const float *p = s->model->w.positions + (size_t)position * D;
        for (int c = 0; c < D; c++) h[c] += p[c];
    }
}

/* logits of `count` sequences from `count` rows of s->hidden, starting at row. */
static void logits_forward(TnSession *s, int first_seq, int row, int count) {
    const TnConfig *cfg = &s->model->config;
    int D = cfg->dim;
    norm_forward_cpu(cfg->norm, s->normed, NULL, s->hidden + (size_t)row * D, s->model->w.final_norm.gain,
                     s->model->w.final_norm.bias, count, D);
    linear(s, tn_session_logits(s, first_seq), s->normed, count, s->model->w.lm_head, s->quant ? &s->quant->output : NULL,
           D, cfg->vocab_size);
}

/* Runs `batch` sequences from first_seq, `rows` tokens each (one of the two
 * is 1), at their positions, on the CPU with `algo` or on the device; with
 * `logits`, leaves each one's next-token logits. */
static int forward_rows(TnSession *s, const int32_t *tokens, int first_seq, int batch, int rows, TnAttnAlgo algo,
                        int logits, TnError *err) {
    if (s->device)
        return tn_session_device_forward(s->device, tokens, s->position + first_seq, first_seq, batch, rows, logits,
                                         err);
    embed(s, tokens, first_seq, batch, rows);
    layers_forward(s, first_seq, batch, rows, algo);
    if (logits) logits_forward(s, first_seq, rows - 1, batch);
    return 0;
}

int tn_session_prefill(TnSession *s, int seq, const int32_t *tokens, size_t n, TnError *err) {
    TN_ASSERT(seq >= 0 && seq < s->max_batch);
    if (check_tokens(s, seq, tokens, n, err)) return -1;
    for (size_t start = 0; start < n; start += (size_t)s->prefill_rows) {
        int rows = n - start < (size_t)s->prefill_rows ? (int)(n - start) : s->prefill_rows;
        /* Lightning Attention-2 inside the step, the state carried across
         * steps (the baseline: the step's rows against its KV cache). */
        if (forward_rows(s, tokens + start, seq, 1, rows, TN_ATTN_CHUNKED, start + (size_t)rows == n, err)) return -1;
        remember(s, seq, tokens + start, rows);
    }
    return 0;
}

int tn_session_decode(TnSession *s, const int32_t *tokens, int batch, TnError *err) {
    TN_ASSERT(batch >= 1 && batch <= s->max_batch);
    for (int b = 0; b < batch; b++)
        if (check_tokens(s, b, tokens + b, 1, err)) return -1;
    /* Alg. 4: one recurrent step per sequence (the baseline: one cached row). */
    if (forward_rows(s, tokens, 0, batch, 1, TN_ATTN_RECURRENT, 1, err)) return -1;
    for (int b = 0; b < batch; b++) remember(s, b, tokens + b, 1);
    return 0;
}
