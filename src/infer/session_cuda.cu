#include "infer/session_cuda.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/crossentropy_cuda.h"
#include "kernels/cuda/cuda_try.cuh"
#include "kernels/cuda/elementwise_cuda.h"
#include "kernels/cuda/lightning_attention.h"
#include "kernels/cuda/matmul_cuda.h"
#include "kernels/cuda/norm_cuda.h"
#include "kernels/cuda/qk_features_cuda.h"
#include "model/cuda_common.h"

namespace {

/* fp32 parameters staged per upload while the bf16 copy is made. */
constexpr size_t kUploadFloats = (size_t)16 << 20;

cudaStream_t stream_of(const TnSessionCuda *g) { return (cudaStream_t)g->stream; }
TnMatmulCuda *matmul_of(const TnSessionCuda *g) { return g->matmul; }

int power_of_two_within(int x, int low, int high) { return x >= low && x <= high && (x & (x - 1)) == 0; }

/* The tensor-core (chunked) kernels tile heads by 64; narrower heads prefill
 * with the recurrent kernel, token by token. */
int chunked_heads(const TnConfig *cfg) { return power_of_two_within(tn_head_dim(cfg), 64, 128); }

int logit_rows(const TnSessionCuda *g) {
    return g->max_rows < TN_SESSION_CUDA_LOGIT_ROWS ? g->max_rows : TN_SESSION_CUDA_LOGIT_ROWS;
}

/* Scratch of the chunked kernels (mma.sync or wgmma) for any call of batch
 * x rows <= max_rows: it holds one dk x dv state per segment and sequence,
 * and a sequence of `rows` tokens gets at most ceil(rows / 64) / 4 segments
 * (each of 4 chunks of 64 or more) or 1, so batch x segments <= max_rows /
 * 256 + batch (one more a sequence). Checked again at each call. */
size_t scratch_bound(const TnConfig *cfg, int max_batch, int max_rows) {
    if (!chunked_heads(cfg)) return 0;
    size_t widest = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        size_t state = (size_t)tn_qk_head_dim(cfg, l) * tn_head_dim(cfg);
        widest = state > widest ? state : widest;
    }
    return ((size_t)max_rows / 256 + max_batch) * cfg->n_heads * widest * sizeof(float);
}

size_t layout_arena(TnSessionCuda *g, const TnConfig *cfg, int max_batch, int max_rows, char *base) {
    size_t N = max_rows, D = cfg->dim, G = cfg->glu_dim, V = cfg->vocab_size, H = cfg->n_heads;
    size_t qk = N * H * 2 * tn_head_dim(cfg);
    DeviceArena a{base, 0};
    for (int l = 0; l < cfg->n_layers; l++) {
        g->state_floats[l] = H * tn_qk_head_dim(cfg, l) * tn_head_dim(cfg);
        g->state[l] = a.take<float>((size_t)max_batch * g->state_floats[l]);
        g->layers[l].theta = cfg->use_lrpe[l] ? a.take<float>(D) : nullptr;
    }
    g->decay = a.take<float>((size_t)cfg->n_layers * H);
    g->hidden = a.take<float>(N * D);
    g->rstd = a.take<float>(N);
    g->normed = a.take<uint16_t>(N * D);
    g->qkvu = a.take<uint16_t>(N * 4 * D);
    g->qf = a.take<uint16_t>(qk);
    g->kf = a.take<uint16_t>(qk);
    g->attn = a.take<uint16_t>(N * D);
    g->gated = a.take<uint16_t>(N * D);
    g->glu1 = a.take<uint16_t>(N * G);
    g->glu2 = a.take<uint16_t>(N * G);
    g->glu = a.take<uint16_t>(N * G);
    g->last_hidden = a.take<float>((size_t)max_batch * D);
    g->logits = a.take<float>((size_t)max_batch * V);
    size_t score_rows = N < TN_SESSION_CUDA_LOGIT_ROWS ? N : TN_SESSION_CUDA_LOGIT_ROWS;
    g->score_logits = a.take<uint16_t>(score_rows * V);
    g->losses = a.take<float>(N);
    g->lse = a.take<float>(N);
    g->tokens = a.take<int32_t>(N);
    g->targets = a.take<int32_t>(N);
    g->positions = a.take<int32_t>(max_batch);
    g->attn_scratch_bytes = scratch_bound(cfg, max_batch, max_rows);
    g->attn_scratch = a.take<char>(g->attn_scratch_bytes);
    return a.used;
}

/* The bf16 copy of every parameter (staged through a device fp32 buffer
 * and converted there), views of the matrices into it, theta in fp32. */
int upload_weights(TnSessionCuda *g, const TnParamLayout *layout, const float *params, TnError *err) {
    cudaStream_t stream = stream_of(g);
    size_t n = layout->total, chunk = n < kUploadFloats ? n : kUploadFloats;
    CUDA_TRY(cudaMalloc(&g->weights, n * sizeof(uint16_t)));
    float *staging;
    CUDA_TRY(cudaMalloc(&staging, chunk * sizeof(float)));
    int rc = 0;
    for (size_t start = 0; start < n && !rc; start += chunk) {
        size_t count = n - start < chunk ? n - start : chunk;
        cudaError_t status = cudaMemcpyAsync(staging, params + start, count * sizeof(float), cudaMemcpyHostToDevice,
                                             stream);
        if (status != cudaSuccess) rc = tn_fail(err, "uploading the weights: CUDA: %s", cudaGetErrorString(status));
        else rc = convert_to_bf16_cuda(g->weights + start, staging, count, stream, err);
    }
    cudaError_t synced = cudaStreamSynchronize(stream); /* staging is reused, then freed */
    cudaFree(staging);
    if (rc) return -1;
    CUDA_TRY(synced);
    g->lm_head = NULL;
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        const uint16_t *w = g->weights + t->offset;
        TnSessionCudaLayer *lw = t->layer >= 0 ? &g->layers[t->layer] : NULL;
        switch (t->kind) {
        case TN_PARAM_EMBED: g->embed = w; break;
        case TN_PARAM_LM_HEAD: g->lm_head = w; break;
        case TN_PARAM_QKVU: lw->qkvu = w; break;
        case TN_PARAM_OUT: lw->out = w; break;
        case TN_PARAM_L1: lw->l1 = w; break;
        case TN_PARAM_L2: lw->l2 = w; break;
        case TN_PARAM_L3: lw->l3 = w; break;
        case TN_PARAM_THETA:
            CUDA_TRY(cudaMemcpy(lw->theta, params + t->offset, t->numel * sizeof(float), cudaMemcpyHostToDevice));
            break;
        default: return tn_fail(err, "the GPU session has no place for tensor %s", t->name);
        }
    }
    if (!g->lm_head) g->lm_head = g->embed; /* tied: logits use E */
    return 0;
}

int init_session(TnSessionCuda *g, const TnConfig *cfg, const float *params, int max_batch, int max_rows,
                 TnError *err) {
    const char *missing = tn_session_cuda_unsupported(cfg);
    if (missing) return tn_fail(err, "the GPU inference session does not support %s", missing);
    if (max_batch < 1 || max_rows < max_batch)
        return tn_fail(err, "a GPU session needs 1 <= max_batch <= max_rows (got %d and %d)", max_batch, max_rows);
    if (tn_cuda_device_check(err)) return -1;
    g->config = *cfg;
    g->max_batch = max_batch;
    g->max_rows = max_rows;
    if (tn_cuda_stream_open(&g->stream, &g->matmul, err)) return -1; /* a workspace of its own: graph capture */
    cudaStream_t stream = stream_of(g);
    size_t bytes = layout_arena(g, cfg, max_batch, max_rows, NULL);
    cudaError_t allocated = cudaMalloc(&g->arena, bytes);
    if (allocated != cudaSuccess)
        return tn_fail(err, "cannot allocate %.2f GiB of states and activations (%d sequences, %d rows) on the GPU: %s",
                       bytes / 1073741824.0, max_batch, max_rows, cudaGetErrorString(allocated));
    layout_arena(g, cfg, max_batch, max_rows, (char *)g->arena);
    CUDA_TRY(cudaMemsetAsync(g->arena, 0, bytes, stream)); /* empty states */
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    int rc = upload_weights(g, &layout, params, err);
    tn_param_layout_free(&layout);
    if (rc || tn_cuda_decay_upload(g->decay, cfg, err)) return -1;
    CUDA_TRY(cudaMallocHost(&g->host_logits, (size_t)max_batch * cfg->vocab_size * sizeof(float)));
    CUDA_TRY(cudaMallocHost(&g->host_tokens, (size_t)max_rows * sizeof(int32_t)));
    CUDA_TRY(cudaMallocHost(&g->host_positions, (size_t)max_batch * sizeof(int32_t)));
    g->graphs = (void **)tn_calloc((size_t)max_batch + 1, sizeof(void *));
    g->graphs_enabled = 1;
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

/* Sequences at position 0 start from an empty state (session.h: position
 * 0 means nothing consumed): zero theirs in every layer. */
int clear_fresh_states(TnSessionCuda *g, int first_seq, int batch, const int *positions, TnError *err) {
    for (int b = 0; b < batch; b++) {
        if (positions[b] != 0) continue;
        for (int l = 0; l < g->config.n_layers; l++)
            CUDA_TRY(cudaMemsetAsync(g->state[l] + (size_t)(first_seq + b) * g->state_floats[l], 0,
                                     g->state_floats[l] * sizeof(float), stream_of(g)));
    }
    return 0;
}

/* Every layer over `batch` sequences of `rows` rows (row b * rows + t of
 * g->hidden), sequences first_seq.. of the session, their states read and
 * updated in place; LRPE positions from seq_positions (device, per
 * sequence), or pos_offset for all when it is NULL. The data flow of
 * tn_model_cuda_forward, with the residual stream updated in place. */
int layers_forward(TnSessionCuda *g, int first_seq, int batch, int rows, int pos_offset, const int32_t *seq_positions,
                   TnError *err) {
    const TnConfig *cfg = &g->config;
    int N = batch * rows, D = cfg->dim, G = cfg->glu_dim, H = cfg->n_heads, d = tn_head_dim(cfg);
    cudaStream_t stream = stream_of(g);
    TnMatmulCuda *matmul = matmul_of(g);
    /* Alg. 4 for a decode step (and for heads the tiles do not take), LA-2 for a prefill */
    TnAttnAlgo algo = rows > 1 && chunked_heads(cfg) ? TN_ATTN_CUDA_DEFAULT : TN_ATTN_RECURRENT;
    for (int l = 0; l < cfg->n_layers; l++) {
        const TnSessionCudaLayer *lw = &g->layers[l];
        /* Token mixer: GLA (Eq. 3-4). */
        TRY(norm_forward_cuda(TN_NORM_SRMS, g->normed, g->rstd, g->hidden, NULL, NULL, N, D, stream, err));
        TRY(matmul_forward_cuda(matmul, g->qkvu, TN_CUDA_BF16, 0.0f, g->normed, lw->qkvu, N, D, 4 * D, err));
        TRY(qk_features_forward_cuda(g->qf, g->kf, g->qkvu, 4 * D, TN_ACT_SILU, lw->theta, N, rows, pos_offset,
                                     seq_positions, H, d, stream, err));
        TnAttnShape s = tn_cuda_attention_shape(cfg, l, batch, rows);
        TRY(attention_forward_cuda(g->attn, g->qf, g->kf, g->qkvu + 2 * D, g->decay + l * H,
                                   g->state[l] + (size_t)first_seq * g->state_floats[l], &s, algo, g->attn_scratch,
                                   g->attn_scratch_bytes, stream, err));
        TRY(norm_gate_forward_cuda(TN_NORM_SRMS, g->gated, g->rstd, g->attn, NULL, NULL, g->qkvu + 3 * D, 4 * D, N, D,
                                   stream, err));
        TRY(matmul_forward_cuda(matmul, g->hidden, TN_CUDA_F32, 1.0f, g->gated, lw->out, N, D, D, err));
        /* Channel mixer: SGLU (Eq. 5). */
        TRY(norm_forward_cuda(TN_NORM_SRMS, g->normed, g->rstd, g->hidden, NULL, NULL, N, D, stream, err));
        if (N <= TN_MATVEC_MAX_ROWS) {
            TRY(matvec_glu_forward_cuda(g->glu, g->normed, lw->l1, lw->l2, N, D, G, stream, err));
        } else {
            TRY(matmul_forward_cuda(matmul, g->glu1, TN_CUDA_BF16, 0.0f, g->normed, lw->l1, N, D, G, err));
            TRY(matmul_forward_cuda(matmul, g->glu2, TN_CUDA_BF16, 0.0f, g->normed, lw->l2, N, D, G, err));
            TRY(glu_forward_cuda(g->glu, g->glu1, g->glu2, G, TN_ACT_NONE, N, G, stream, err));
        }
        TRY(matmul_forward_cuda(matmul, g->hidden, TN_CUDA_F32, 1.0f, g->glu, lw->l3, N, G, D, err));
    }
    return 0;
}

/* g->logits (batch, V) fp32 from the last row of each sequence. */
int logits_forward(TnSessionCuda *g, int batch, int rows, TnError *err) {
    const TnConfig *cfg = &g->config;
    int D = cfg->dim;
    cudaStream_t stream = stream_of(g);
    const float *last = g->hidden;
    if (rows > 1) {
        size_t row_bytes = (size_t)D * sizeof(float);
        CUDA_TRY(cudaMemcpy2DAsync(g->last_hidden, row_bytes, g->hidden + (size_t)(rows - 1) * D, rows * row_bytes,
                                   row_bytes, batch, cudaMemcpyDeviceToDevice, stream));
        last = g->last_hidden;
    }
    TRY(norm_forward_cuda(TN_NORM_SRMS, g->normed, g->rstd, last, NULL, NULL, batch, D, stream, err));
    return matmul_forward_cuda(matmul_of(g), g->logits, TN_CUDA_F32, 0.0f, g->normed, g->lm_head, batch, D,
                               cfg->vocab_size, err);
}

/* One call's device work, from the tokens and positions already on the
 * device: what a decode graph records. */
int forward_body(TnSessionCuda *g, int first_seq, int batch, int rows, int logits, TnError *err) {
    const TnConfig *cfg = &g->config;
    TRY(embedding_forward_bf16_cuda(g->hidden, g->tokens, g->embed, batch * rows, cfg->dim, tn_embed_scale(cfg),
                                    stream_of(g), err));
    TRY(layers_forward(g, first_seq, batch, rows, 0, g->positions, err));
    return logits ? logits_forward(g, batch, rows, err) : 0;
}

/* Records the decode step of `batch` sequences as a graph. A failure to
 * capture or instantiate is not an error: decoding goes on without graphs
 * (g->graph_error says why); a failing kernel launch is. */
int record_decode(TnSessionCuda *g, int batch, TnError *err) {
    cudaStream_t stream = stream_of(g);
    cudaError_t status = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    TnError body_err;
    int rc = status == cudaSuccess ? forward_body(g, 0, batch, 1, 1, &body_err) : 0;
    cudaGraph_t graph = NULL;
    if (status == cudaSuccess) status = cudaStreamEndCapture(stream, &graph);
    cudaGraphExec_t exec = NULL;
    if (status == cudaSuccess && !rc) status = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (status == cudaSuccess && !rc) {
        g->graphs[batch] = exec;
        CUDA_TRY(cudaGraphLaunch(exec, stream)); /* recording ran nothing */
        return 0;
    }
    (void)cudaGetLastError(); /* a failed capture leaves its status behind */
    snprintf(g->graph_error, sizeof g->graph_error, "%.200s", rc ? body_err.msg : cudaGetErrorString(status));
    g->graphs_enabled = 0;
    /* run the step directly: a real launch error shows there */
    return forward_body(g, 0, batch, 1, 1, err);
}

} // namespace

extern "C" const char *tn_session_cuda_unsupported(const TnConfig *cfg) {
    /* the released blocks only (SRMSNorm, SiLU features, the gate, SGLU without activation) */
    const char *missing = tn_config_unsupported_switch(cfg, 0);
    if (missing) return missing;
    if (!power_of_two_within(tn_head_dim(cfg), 16, 128)) return "head widths D / H other than 16, 32, 64 or 128";
    if (cfg->dim % 8) return "a width D that is not a multiple of 8";
    return NULL;
}

extern "C" size_t tn_session_cuda_bytes(const TnConfig *cfg, int max_batch, int max_rows) {
    TnSessionCuda *measure = (TnSessionCuda *)tn_calloc(1, sizeof *measure);
    size_t bytes = layout_arena(measure, cfg, max_batch, max_rows, NULL);
    free(measure);
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    bytes += layout.total * sizeof(uint16_t) + TN_CUBLAS_WORKSPACE_BYTES;
    tn_param_layout_free(&layout);
    return bytes;
}

extern "C" int tn_session_cuda_init(TnSessionCuda *g, const TnConfig *cfg, const float *params, int max_batch,
                                    int max_rows, TnError *err) {
    memset(g, 0, sizeof *g);
    if (init_session(g, cfg, params, max_batch, max_rows, err) == 0) return 0;
    tn_session_cuda_free(g);
    return -1;
}

extern "C" void tn_session_cuda_free(TnSessionCuda *g) {
    /* release paths ignore errors: there is nothing left to do about them */
    if (g->graphs)
        for (int b = 0; b <= g->max_batch; b++)
            if (g->graphs[b]) cudaGraphExecDestroy((cudaGraphExec_t)g->graphs[b]);
    free(g->graphs);
    cudaFree(g->weights);
    cudaFree(g->arena);
    cudaFreeHost(g->host_logits);
    cudaFreeHost(g->host_tokens);
    cudaFreeHost(g->host_positions);
    tn_matmul_cuda_destroy(g->matmul);
    if (g->stream) cudaStreamDestroy(stream_of(g));
    memset(g, 0, sizeof *g);
}

extern "C" int tn_session_cuda_forward(TnSessionCuda *g, const int32_t *tokens, const int *positions, int first_seq,
                                       int batch, int rows, int logits, TnError *err) {
    if (batch < 1 || rows < 1 || first_seq < 0 || first_seq + batch > g->max_batch ||
        (long long)batch * rows > g->max_rows)
        return tn_fail(err,
                       "a GPU session call of sequences %d..%d, %d rows each, exceeds its %d sequences and %d rows",
                       first_seq, first_seq + batch - 1, rows, g->max_batch, g->max_rows);
    cudaStream_t stream = stream_of(g);
    size_t N = (size_t)batch * rows, V = g->config.vocab_size;
    memcpy(g->host_tokens, tokens, N * sizeof(int32_t));
    for (int b = 0; b < batch; b++) g->host_positions[b] = positions[b];
    CUDA_TRY(cudaMemcpyAsync(g->tokens, g->host_tokens, N * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    CUDA_TRY(cudaMemcpyAsync(g->positions, g->host_positions, batch * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    TRY(clear_fresh_states(g, first_seq, batch, positions, err));
    /* A decode step (every sequence from 0, one row each) replays its graph. */
    if (rows == 1 && first_seq == 0 && logits && g->graphs_enabled) {
        if (!g->graphs[batch]) TRY(record_decode(g, batch, err));
        else CUDA_TRY(cudaGraphLaunch((cudaGraphExec_t)g->graphs[batch], stream));
    } else {
        TRY(forward_body(g, first_seq, batch, rows, logits, err));
    }
    if (logits)
        CUDA_TRY(cudaMemcpyAsync(g->host_logits + (size_t)first_seq * V, g->logits, batch * V * sizeof(float),
                                 cudaMemcpyDeviceToHost, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int tn_session_cuda_copy(TnSessionCuda *g, int from, int to, TnError *err) {
    cudaStream_t stream = stream_of(g);
    for (int l = 0; l < g->config.n_layers; l++)
        CUDA_TRY(cudaMemcpyAsync(g->state[l] + (size_t)to * g->state_floats[l],
                                 g->state[l] + (size_t)from * g->state_floats[l], g->state_floats[l] * sizeof(float),
                                 cudaMemcpyDeviceToDevice, stream));
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int tn_session_cuda_score(TnSessionCuda *g, const int32_t *tokens, const int32_t *targets, int batch,
                                     int seq_len, float *losses, TnError *err) {
    const TnConfig *cfg = &g->config;
    if (batch < 1 || batch > g->max_batch || seq_len < 1)
        return tn_fail(err, "scoring %d sequences of %d tokens on a GPU session of %d sequences", batch, seq_len,
                       g->max_batch);
    int D = cfg->dim, V = cfg->vocab_size, step = g->max_rows / batch, slice = logit_rows(g);
    cudaStream_t stream = stream_of(g);
    TnMatmulCuda *matmul = matmul_of(g);
    for (int l = 0; l < cfg->n_layers; l++) /* fresh sequences: empty states */
        CUDA_TRY(cudaMemsetAsync(g->state[l], 0, (size_t)batch * g->state_floats[l] * sizeof(float), stream));
    for (int start = 0; start < seq_len; start += step) {
        int rows = seq_len - start < step ? seq_len - start : step, N = batch * rows;
        size_t host_pitch = (size_t)seq_len * sizeof(int32_t), pitch = (size_t)rows * sizeof(int32_t);
        CUDA_TRY(cudaMemcpy2DAsync(g->tokens, pitch, tokens + start, host_pitch, pitch, batch, cudaMemcpyHostToDevice,
                                   stream));
        CUDA_TRY(cudaMemcpy2DAsync(g->targets, pitch, targets + start, host_pitch, pitch, batch,
                                   cudaMemcpyHostToDevice, stream));
        TRY(embedding_forward_bf16_cuda(g->hidden, g->tokens, g->embed, N, D, tn_embed_scale(cfg), stream, err));
        TRY(layers_forward(g, 0, batch, rows, start, NULL, err));
        TRY(norm_forward_cuda(TN_NORM_SRMS, g->normed, g->rstd, g->hidden, NULL, NULL, N, D, stream, err));
        for (int r0 = 0; r0 < N; r0 += slice) {
            int n = N - r0 < slice ? N - r0 : slice;
            TRY(matmul_forward_cuda(matmul, g->score_logits, TN_CUDA_BF16, 0.0f, g->normed + (size_t)r0 * D,
                                    g->lm_head, n, D, V, err));
            TRY(crossentropy_forward_cuda(g->losses + r0, g->lse + r0, g->score_logits, g->targets + r0, n, V, stream,
                                          err));
        }
        CUDA_TRY(cudaMemcpy2DAsync(losses + start, (size_t)seq_len * sizeof(float), g->losses,
                                   (size_t)rows * sizeof(float), (size_t)rows * sizeof(float), batch,
                                   cudaMemcpyDeviceToHost, stream));
    }
    CUDA_TRY(cudaStreamSynchronize(stream));
    return 0;
}
