/* session_cuda.h: the layers of an inference session on one GPU (paper
 * §3.3, Alg. 4), the CUDA twin of session.c's layer code.
 *
 * The host session (session.h) keeps the bookkeeping (positions, recent
 * tokens, token checks) and calls this through session_device.h. Here live
 * the model's weights and the recurrent states:
 *  - every parameter as one bf16 copy in the model's layout (matrix
 *    products in bf16 with fp32 accumulation; 0.8 GB for the 385M model),
 *    LRPE's theta and the decay rates lambda in fp32;
 *  - per layer the fp32 state S (max_batch, H, dk, d) of Alg. 4;
 *  - activations for max_rows token rows per call (the residual stream in
 *    fp32, the inputs of matrix products and attention in bf16, as in the
 *    training step, model/transnormer_cuda.h).
 * Prefill runs Lightning Attention-2 (chunked) inside a call, the state
 * carried in and out; heads narrower than 64 (small models) use the
 * recurrent kernel there too. A decode step (one row per sequence) runs
 * the recurrent kernel, the products as matrix-vector kernels up to 8
 * sequences (cuBLAS above), and is recorded once per batch size as a CUDA
 * graph that later steps replay (one launch instead of ~11 per layer);
 * should capture fail, the step runs its kernels directly and
 * graphs_enabled and graph_error say so.
 *
 * Memory: everything is allocated by tn_session_cuda_init and sized by
 * (max_batch, max_rows) only, never by the context: a call allocates nothing
 * (a decode graph is instantiated at the first step of each batch size).
 * The struct owns it all; tn_session_cuda_free releases it. Functions return
 * 0, or -1 with err naming the call that failed (every CUDA and cuBLAS status
 * is checked); after a failure the states are undefined. One stream orders
 * the work; each call returns after its results reached the host.
 */
#ifndef TN_INFER_SESSION_CUDA_H
#define TN_INFER_SESSION_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the project's C headers carry no C++ guards of their own */
#endif

#include "model/config.h"
#include "model/params.h"
#include "util/error.h"

/* Rows of logits one scoring product computes at most (the bf16 logits
 * buffer is this many rows of V, whatever max_rows). */
#define TN_SESSION_CUDA_LOGIT_ROWS 1024

/* A layer's bf16 matrices (the copy of the layout's tensors) and theta. */
typedef struct TnSessionCudaLayer {
    const uint16_t *qkvu, *out, *l1, *l2, *l3;
    float *theta; /* (H, d) fp32, NULL without LRPE */
} TnSessionCudaLayer;

typedef struct TnSessionCuda {
    TnConfig config;
    int max_batch, max_rows;
    uint16_t *weights;       /* device bf16 copy of every parameter, the model's layout */
    const uint16_t *embed, *lm_head; /* views into weights (equal when tied) */
    TnSessionCudaLayer layers[TN_MAX_LAYERS];
    float *decay;            /* (L, H) lambda */
    float *state[TN_MAX_LAYERS]; /* per layer (max_batch, H, dk, d) fp32 */
    size_t state_floats[TN_MAX_LAYERS]; /* per sequence */
    /* activations, max_rows rows */
    float *hidden;           /* (rows, D) fp32 residual stream */
    float *rstd;             /* (rows) the norms' statistics (not needed after) */
    uint16_t *normed;        /* (rows, D) */
    uint16_t *qkvu;          /* (rows, 4D) */
    uint16_t *qf, *kf;       /* (rows, H * 2d) */
    uint16_t *attn, *gated;  /* (rows, D) */
    uint16_t *glu1, *glu2, *glu; /* (rows, G) */
    float *last_hidden;      /* (max_batch, D) each sequence's last row */
    float *logits;           /* (max_batch, V) fp32 next-token logits */
    uint16_t *score_logits;  /* (TN_SESSION_CUDA_LOGIT_ROWS, V) bf16, scoring */
    float *losses, *lse;     /* (rows) scoring */
    int32_t *tokens, *targets; /* (rows) */
    int32_t *positions;      /* (max_batch) each sequence's first position in this call */
    void *attn_scratch;
    size_t attn_scratch_bytes;
    void *arena;             /* the one device allocation behind the activations and states */
    /* pinned host memory */
    float *host_logits;      /* (max_batch, V): where the logits arrive */
    int32_t *host_tokens, *host_positions;
    struct TnMatmulCuda *matmul; /* the products' cuBLASLt context (kernels/cuda/matmul_cuda.h) */
    void *stream;            /* cudaStream_t */
    void **graphs;           /* (max_batch + 1) cudaGraphExec_t per decode batch size, NULL until recorded */
    int graphs_enabled;      /* 1 while decode steps replay graphs; 0 once capture failed */
    char graph_error[256];   /* why capture failed, for the logs */
} TnSessionCuda;

/* The phrase naming what the GPU session cannot run for cfg, or NULL: the
 * switches of SPEC section 3 (it runs the released blocks only:
 * tn_config_unsupported_switch with none implemented), a head width that is not a
 * power of two from 16 to 128, D not a multiple of 8. */
const char *tn_session_cuda_unsupported(const TnConfig *cfg);

/* Copies params (host fp32, the layout of cfg) to the current GPU as bf16
 * and allocates everything for max_batch sequences and max_rows >=
 * max_batch token rows per call. */
int tn_session_cuda_init(TnSessionCuda *g, const TnConfig *cfg, const float *params, int max_batch, int max_rows,
                         TnError *err);
void tn_session_cuda_free(TnSessionCuda *g);

/* Device bytes tn_session_cuda_init allocates for cfg (weights, states,
 * activations), for reports. */
size_t tn_session_cuda_bytes(const TnConfig *cfg, int max_batch, int max_rows);

/* Runs sequences first_seq .. first_seq + batch - 1, `rows` tokens each
 * (host tokens[b * rows + t], ids already checked < V), sequence b starting
 * at position positions[b]; a sequence at position 0 starts from an empty
 * state. rows == 1 with first_seq 0 and logits is a decode step (its graph
 * replayed); any other call runs the layers directly. With `logits`
 * set, host_logits rows first_seq .. receive the next-token logits after
 * each sequence's last token. */
int tn_session_cuda_forward(TnSessionCuda *g, const int32_t *tokens, const int *positions, int first_seq, int batch,
                            int rows, int logits, TnError *err);

/* Copies sequence from's state over sequence to's in every layer;
 * returns once done. */
int tn_session_cuda_copy(TnSessionCuda *g, int from, int to, TnError *err);

/* Scores sequences 0 .. batch-1 as fresh sequences of seq_len tokens each
 * (host tokens and targets (batch, seq_len), TN_IGNORE_INDEX skipped):
 * losses[b * seq_len + t] = the cross-entropy of targets at that row, 0
 * where ignored. Runs in steps of max_rows / batch tokens per sequence. */
int tn_session_cuda_score(TnSessionCuda *g, const int32_t *tokens, const int32_t *targets, int batch, int seq_len,
                          float *losses, TnError *err);

#ifdef __cplusplus
}
#endif

#endif
