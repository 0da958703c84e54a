/* session.h: recurrent inference with a model (paper §3.3, Alg. 4).
 *
 * TransNormerLLM decodes as an RNN: per layer and head a state
 * S [d_k, d] (d_k = 2d on LRPE layers), S_t = lambda S_{t-1} + k_t^T v_t,
 * o_t = q_t S_t (SPEC section 2). A TnSession holds, for up to max_batch
 * sequences, these states in fp32, each sequence's position (tokens consumed,
 * the LRPE offset of the next token), the last few tokens it consumed (for
 * repetition penalties) and the logits that predict its next token.
 *
 * Prefill runs the prompt in steps of prefill_rows tokens with the chunked
 * Lightning Attention-2 kernel, carrying the state across steps; decode runs
 * one token of each of several sequences with the recurrent kernel. Both go
 * through the same layer code, so a prompt prefilled and then decoded gives
 * the logits of one parallel forward over the whole sequence.
 *
 * Every switch of SPEC section 3 runs here: pe = ape adds the learned row
 * of each token's absolute position (and refuses positions past
 * max_position_embeddings), the norm, gate and activation switches are those
 * of the forward pass. The softmax Transformer baseline (arch transformer)
 * decodes with a KV cache instead of a recurrent state: its per-layer
 * "state" holds the RoPE-rotated keys and the values of up to
 * tn_session_kv_context() positions, and a sequence refuses tokens past it.
 *
 * Memory: the session owns its states and its own activation buffers, both
 * allocated once by tn_session_init and sized by (max_batch, prefill_rows)
 * only, never by the context: prefill and decode allocate nothing, whatever
 * the length of the conversation (the baseline's cache is sized for its
 * whole context up front). The model is borrowed (it must outlive the
 * session) and is only read: its training arena is never touched, so
 * several sessions may share one model, one thread each.
 *
 * Device: a session made by tn_session_init_on for an accelerator runs its
 * layers there (session_device.h: the weights in bf16, fp32 states, the
 * same prefill and decode algorithms) and keeps only the bookkeeping here:
 * positions, recent tokens, the token checks, and `logits`, which then
 * points at the device's host buffer. Its state[] is NULL: saved states
 * (state_file.h) and int8 weights are the CPU session's. The interface is
 * the same, so generation and sampling run unchanged on either.
 */
#ifndef TN_INFER_SESSION_H
#define TN_INFER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "infer/quantize.h"
#include "infer/session_device.h"
#include "model/transnormer.h"
#include "util/device.h"

/* Tokens remembered per sequence for repetition penalties. */
#define TN_SESSION_RECENT 64
/* Default tokens per prefill step. */
#define TN_SESSION_PREFILL_ROWS 256
/* KV-cache context of the Transformer baseline when its config.json gives
 * no max_position_embeddings. */
#define TN_SESSION_KV_CONTEXT 2048

typedef struct TnSession {
    const TnModel *model;     /* borrowed */
    const TnQuantModel *quant;/* borrowed; NULL: fp32 weights (see tn_session_use_int8) */
    TnSessionDevice *device;  /* owned; NULL: the layers run on the CPU */
    int max_batch;            /* sequences held */
    int prefill_rows;         /* tokens per prefill step */
    int *position;            /* (max_batch) tokens consumed so far */
    int32_t *recent;          /* (max_batch, TN_SESSION_RECENT) ring of the last tokens consumed */
    float *state[TN_MAX_LAYERS]; /* per layer (max_batch, H, dk_l, d); the baseline: (max_batch, 2, context, D) */
    size_t state_floats;      /* per sequence, all layers together */
    float *logits;            /* (max_batch, V): next-token logits after each sequence's last token */
    /* Activations for up to max(max_batch, prefill_rows) rows. */
    float *hidden;            /* (rows, D) residual stream h */
    float *normed;            /* (rows, D) SRMSNorm(h) */
    float *qkvu;              /* (rows, tn_qkvu_rows) */
    float *qf, *kf;           /* (rows, H * 2d) features (H * d on layers without LRPE) */
    float *attn;              /* (rows, D) o */
    float *gated;             /* (rows, D) the input of W_out: u ⊙ Norm(o), or the baseline's attention */
    float *delta;             /* (rows, D) a block's output before the residual add */
    float *glu1, *glu2, *glu; /* (rows, G): W1 x, W2 x, act(W1 x) ⊙ W2 x */
    float *attn_scratch;      /* tn_attention_scratch_floats for both kernels */
    float *memory;            /* the one allocation behind the activations, logits and states */
    size_t n_floats;
} TnSession;

/* Positions the Transformer baseline's KV cache holds: its
 * max_position_embeddings, else TN_SESSION_KV_CONTEXT. */
int tn_session_kv_context(const TnConfig *cfg);

/* Creates a session of max_batch sequences on m (borrowed), all empty.
 * prefill_rows <= 0 picks TN_SESSION_PREFILL_ROWS. */
void tn_session_init(TnSession *s, const TnModel *m, int max_batch, int prefill_rows);
/* The same with the layers on `device`: TN_DEVICE_CPU is tn_session_init;
 * another opens it (session_device.h) with room for max(max_batch,
 * prefill_rows) token rows per call. Fails (not on the CPU) with err,
 * leaving nothing to free: no such device in this build or none found, a
 * model switch or head width it cannot run, not enough memory. */
int tn_session_init_on(TnSession *s, const TnModel *m, TnDevice device, int max_batch, int prefill_rows,
                       TnError *err);
void tn_session_free(TnSession *s);

/* Makes the session read its matrices from q (int8, borrowed; must be
 * quantized from the session's model and outlive its use), or from the fp32
 * model again when q is NULL. Applies from the next prefill or decode. CPU
 * sessions only. */
void tn_session_use_int8(TnSession *s, const TnQuantModel *q);

/* Empties sequence seq: zero state, position 0, no logits yet. */
void tn_session_reset(TnSession *s, int seq);

/* Bytes of one sequence's recurrent state (all layers), independent of the
 * context length; for the baseline, its whole KV cache. */
size_t tn_session_state_bytes(const TnConfig *cfg);

/* Feeds n >= 1 tokens to sequence seq, continuing from its state; afterwards
 * tn_session_logits(s, seq) predicts the token after the last one. Fails,
 * leaving the sequence untouched, on n == 0, a token outside [0, V) or a
 * position beyond INT_MAX, the APE table or the baseline's KV cache; and
 * on a device error, after which the session's states are undefined. */
int tn_session_prefill(TnSession *s, int seq, const int32_t *tokens, size_t n, TnError *err);

/* Decodes one token for each of sequences 0 .. batch-1 at once (batched
 * decode: each weight matrix is read once for all of them): tokens[b] is
 * fed to sequence b. Same failure rules as prefill. */
int tn_session_decode(TnSession *s, const int32_t *tokens, int batch, TnError *err);

/* Copies sequence `from` over sequence `to` (its state, position, recent
 * tokens and logits; `from` is left as it was). Batched decode runs
 * sequences 0 .. batch-1, so a batch whose sequences finish at different
 * steps moves its last live sequence into each finished one's slot. Fails
 * only on a device error. */
int tn_session_copy(TnSession *s, int from, int to, TnError *err);

/* The (V) next-token logits of sequence seq. */
static inline float *tn_session_logits(const TnSession *s, int seq) {
    return s->logits + (size_t)seq * s->model->config.vocab_size;
}

/* Copies the last min(position, TN_SESSION_RECENT) tokens sequence seq
 * consumed, oldest first, into out; returns how many. */
int tn_session_recent(const TnSession *s, int seq, int32_t *out);

/* Sequence seq's state in layer `layer`: *count = H * dk * d floats (CPU
 * sessions only). */
float *tn_session_layer_state(const TnSession *s, int seq, int layer, size_t *count);

/* Sets sequence seq's position and recent tokens (oldest first, n_recent <=
 * min(position, TN_SESSION_RECENT)), as when restoring a saved state. */
void tn_session_set_history(TnSession *s, int seq, int position, const int32_t *recent, int n_recent);

#endif
