/* lightning_attention.cu: the C entry points: shape checks, the choice of
 * kernel and, for the backward, the dQ pass and either the fused dK/dV sweep
 * or two more passes (see lightning_attention.h). */
#include "kernels/cuda/lightning_attention.h"

#include "kernels/cuda/attention_tiles.cuh"

using namespace tn_attention;

static int misaligned(const void *pointer, size_t bytes) { return (uintptr_t)pointer % bytes != 0; }

static int power_of_two_within(int x, int low, int high) { return x >= low && x <= high && (x & (x - 1)) == 0; }

static int check_shape(const char *function, const TnAttnShape *s, TnAttnAlgo algo, TnError *err) {
    if (s->batch < 1 || s->heads < 1 || s->seq_len < 0)
        return tn_fail(err, "%s: batch %d, heads %d, seq_len %d: need batch, heads >= 1 and seq_len >= 0", function,
                       s->batch, s->heads, s->seq_len);
    /* the tensor-core kernels tile heads by 64; the recurrent one also takes narrower heads */
    int narrowest = algo == TN_ATTN_RECURRENT ? 16 : 64;
    if (!power_of_two_within(s->dk, narrowest, 256))
        return tn_fail(err, "%s: dk = %d is not supported (a power of two from %d to 256)", function, s->dk, narrowest);
    if (!power_of_two_within(s->dv, narrowest, 128))
        return tn_fail(err, "%s: dv = %d is not supported (a power of two from %d to 128)", function, s->dv, narrowest);
    const int strides[4] = {s->ldq, s->ldk, s->ldv, s->ldo}, widths[4] = {s->dk, s->dk, s->dv, s->dv};
    const char *names[4] = {"ldq", "ldk", "ldv", "ldo"};
    for (int i = 0; i < 4; i++)
        if (strides[i] % 8 != 0 || strides[i] < s->heads * widths[i])
            return tn_fail(err, "%s: %s = %d must be a multiple of 8 and at least heads * width = %d", function,
                           names[i], strides[i], s->heads * widths[i]);
    if (algo != TN_ATTN_CHUNKED && algo != TN_ATTN_CHUNKED_WGMMA && algo != TN_ATTN_PARALLEL &&
        algo != TN_ATTN_RECURRENT)
        return tn_fail(err, "%s: unknown algorithm %d", function, (int)algo);
    return 0;
}

/* The bf16 tensors are read and written 16 bytes at a time; lambda is
 * read per head (a view into a per-layer array is fine). */
static int check_pointers(const char *function, const void *const *pointers, int count, const float *lambda,
                          TnError *err) {
    for (int i = 0; i < count; i++)
        if (!pointers[i] || misaligned(pointers[i], 16))
            return tn_fail(err, "%s: tensor argument %d is NULL or not 16-byte aligned", function, i + 1);
    if (!lambda || misaligned(lambda, sizeof *lambda))
        return tn_fail(err, "%s: lambda is NULL or not float-aligned", function);
    return 0;
}

static int launched(const char *function, cudaError_t status, TnError *err) {
    if (status == cudaSuccess) return 0;
    return tn_fail(err, "%s: CUDA: %s", function, cudaGetErrorString(status));
}

/* The three backward passes (see the header): operands exchanged, time
 * reversed for dk and dv. */
static void backward_passes(AttnPass passes[3], bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q,
                            const bf16 *k, const bf16 *v, const float *lambda, const TnAttnShape *s) {
    passes[0] = AttnPass{dout, v, k, dq, s->ldo, s->ldv, s->ldk, s->ldq, s->dv, s->dk,
                         s->batch, s->heads, s->seq_len, 0, lambda};
    passes[1] = AttnPass{v, dout, q, dk, s->ldv, s->ldo, s->ldq, s->ldk, s->dv, s->dk,
                         s->batch, s->heads, s->seq_len, 1, lambda};
    passes[2] = AttnPass{k, q, dout, dv, s->ldk, s->ldq, s->ldo, s->ldv, s->dk, s->dv,
                         s->batch, s->heads, s->seq_len, 1, lambda};
}

static AttnPass forward_pass(uint16_t *o, const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *lambda,
                             const TnAttnShape *s) {
    return AttnPass{reinterpret_cast<const bf16 *>(q), reinterpret_cast<const bf16 *>(k),
                    reinterpret_cast<const bf16 *>(v), reinterpret_cast<bf16 *>(o), s->ldq, s->ldk, s->ldv, s->ldo,
                    s->dk, s->dv, s->batch, s->heads, s->seq_len, 0, lambda};
}

extern "C" size_t attention_cuda_scratch_bytes(const TnAttnShape *s, TnAttnAlgo algo) {
    if (algo != TN_ATTN_CHUNKED && algo != TN_ATTN_CHUNKED_WGMMA) return 0;
    AttnPass passes[4];
    backward_passes(passes, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, s);
    passes[3] = forward_pass(nullptr, nullptr, nullptr, nullptr, nullptr, s);
    int segments = 1;
    for (int i = 0; i < 4; i++) segments = max(segments, chunked_segments(passes[i]));
    if (gradients_fused(passes[2])) segments = max(segments, gradient_segments(passes[2]));
    for (int i = 0; i < 4 && algo == TN_ATTN_CHUNKED_WGMMA; i++)
        if (wgmma_supported(passes[i])) segments = max(segments, wgmma_segments(passes[i]));
    if (segments == 1) return 0;
    return (size_t)segments * s->batch * s->heads * s->dk * s->dv * sizeof(float);
}

extern "C" size_t attention_cuda_scratch_bound(const TnAttnShape *s, TnAttnAlgo algo) {
    size_t most = 0;
    TnAttnShape call = *s;
    int chunks = (s->seq_len + CHUNK - 1) / CHUNK;
    for (call.batch = 1; call.batch <= s->batch; call.batch++)
        for (int c = 1; c <= chunks; c++) {
            call.seq_len = min(s->seq_len, c * CHUNK); /* the choice depends on the length in chunks alone */
            most = max(most, attention_cuda_scratch_bytes(&call, algo));
        }
    return most;
}

/* kept: a forward's states for the dQ pass p, or NULL. */
static cudaError_t run_pass(const AttnPass &p, float *state, void *scratch, TnAttnAlgo algo, cudaStream_t stream,
                            const KeptStates *kept = nullptr) {
    if (algo == TN_ATTN_PARALLEL) return launch_blockwise(p, stream);
    if (algo == TN_ATTN_RECURRENT) return launch_recurrent(p, state, stream);
    if (algo == TN_ATTN_CHUNKED_WGMMA && wgmma_supported(p))
        return launch_chunked_wgmma(p, state, static_cast<float *>(scratch), kept, stream);
    return launch_chunked(p, state, static_cast<float *>(scratch), kept, stream);
}

/* The segments the forward of algo cuts each sequence into. */
static int forward_segments(const TnAttnShape *s, TnAttnAlgo algo) {
    AttnPass p = forward_pass(nullptr, nullptr, nullptr, nullptr, nullptr, s);
    if (algo == TN_ATTN_CHUNKED_WGMMA && wgmma_supported(p)) return wgmma_segments(p);
    return algo == TN_ATTN_CHUNKED || algo == TN_ATTN_CHUNKED_WGMMA ? chunked_segments(p) : 1;
}

extern "C" size_t attention_cuda_kept_bytes(const TnAttnShape *s, TnAttnAlgo algo) {
    if (s->seq_len == 0) return 0;
    return (size_t)(forward_segments(s, algo) - 1) * s->batch * s->heads * s->dk * s->dv * sizeof(float);
}

static int check_scratch(const char *function, const TnAttnShape *s, TnAttnAlgo algo, const void *scratch,
                         size_t scratch_bytes, TnError *err) {
    size_t need = attention_cuda_scratch_bytes(s, algo);
    if (need > 0 && (!scratch || scratch_bytes < need))
        return tn_fail(err, "%s: %d x %d tokens need %zu bytes of scratch, %zu given%s", function, s->batch, s->seq_len,
                       need, scratch ? scratch_bytes : 0, scratch ? "" : " (NULL)");
    return 0;
}

/* kept: where the forward keeps its segments' states (no state then), or NULL. */
static int forward(uint16_t *o, const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *lambda,
                   float *state, float *kept, const TnAttnShape *s, TnAttnAlgo algo, void *scratch,
                   size_t scratch_bytes, cudaStream_t stream, const char *function, TnError *err) {
    const void *pointers[4] = {o, q, k, v};
    if (check_shape(function, s, algo, err) || check_pointers(function, pointers, 4, lambda, err) ||
        check_scratch(function, s, algo, scratch, scratch_bytes, err))
        return -1;
    if (state && (algo == TN_ATTN_PARALLEL || misaligned(state, 32)))
        return tn_fail(err, "%s: state must be NULL for the parallel algorithm and 32-byte aligned otherwise",
                       function);
    if (s->seq_len == 0) return 0;
    AttnPass p = forward_pass(o, q, k, v, lambda, s);
    /* the kept states are the slots the forward fills anyway, in place of the scratch */
    return launched(function, run_pass(p, state, kept ? kept : scratch, algo, stream), err);
}

extern "C" int attention_forward_cuda(uint16_t *o, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                      const float *lambda, float *state, const TnAttnShape *s, TnAttnAlgo algo,
                                      void *scratch, size_t scratch_bytes, cudaStream_t stream, TnError *err) {
    return forward(o, q, k, v, lambda, state, nullptr, s, algo, scratch, scratch_bytes, stream,
                   "attention_forward_cuda", err);
}

/* kept is needed exactly when the forward has states to keep. */
static int check_kept(const char *function, const TnAttnShape *s, TnAttnAlgo algo, const void *kept,
                      size_t kept_bytes, TnError *err) {
    size_t bytes = attention_cuda_kept_bytes(s, algo);
    if ((bytes > 0 && (!kept || misaligned(kept, 16) || kept_bytes < bytes)) ||
        (algo != TN_ATTN_CHUNKED && algo != TN_ATTN_CHUNKED_WGMMA))
        return tn_fail(err, "%s: kept must hold %zu bytes (%zu given), 16-byte aligned, for a chunked algorithm",
                       function, bytes, kept ? kept_bytes : 0);
    return 0;
}

extern "C" int attention_forward_keeping_cuda(uint16_t *o, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                              const float *lambda, float *kept, size_t kept_bytes,
                                              const TnAttnShape *s, TnAttnAlgo algo, void *scratch,
                                              size_t scratch_bytes, cudaStream_t stream, TnError *err) {
    const char *function = "attention_forward_keeping_cuda";
    if (check_shape(function, s, algo, err) || check_kept(function, s, algo, kept, kept_bytes, err)) return -1;
    return forward(o, q, k, v, lambda, nullptr, attention_cuda_kept_bytes(s, algo) > 0 ? kept : nullptr, s, algo,
                   scratch, scratch_bytes, stream, function, err);
}

/* kept: the forward's states (attention_forward_keeping_cuda), or NULL. */
static int backward(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout, const uint16_t *q,
                    const uint16_t *k, const uint16_t *v, const float *lambda, const float *kept,
                    const TnAttnShape *s, TnAttnAlgo algo, void *scratch, size_t scratch_bytes, cudaStream_t stream,
                    const char *function, TnError *err) {
    const void *pointers[7] = {dq, dk, dv, dout, q, k, v};
    if (check_shape(function, s, algo, err) || check_pointers(function, pointers, 7, lambda, err) ||
        check_scratch(function, s, algo, scratch, scratch_bytes, err))
        return -1;
    if (algo == TN_ATTN_RECURRENT)
        return tn_fail(err, "%s: no backward for the recurrent algorithm (use chunked or parallel)", function);
    if (s->seq_len == 0) return 0;
    AttnPass passes[3];
    backward_passes(passes, reinterpret_cast<bf16 *>(dq), reinterpret_cast<bf16 *>(dk), reinterpret_cast<bf16 *>(dv),
                    reinterpret_cast<const bf16 *>(dout), reinterpret_cast<const bf16 *>(q),
                    reinterpret_cast<const bf16 *>(k), reinterpret_cast<const bf16 *>(v), lambda, s);
    /* dQ's states are the transposes of the forward's: with kept states,
     * the dQ pass runs from their transposes (in the scratch, which the
     * dK/dV sweep takes only after it) in the forward's segments */
    KeptStates kept_states{kept ? forward_segments(s, algo) : 1, static_cast<float *>(scratch)};
    const KeptStates *dq_states = nullptr;
    if (kept && kept_states.segments > 1) {
        long count = (long)(kept_states.segments - 1) * s->batch * s->heads;
        if (launched(function, launch_transpose(static_cast<float *>(scratch), kept, count, s->dk, s->dv, stream), err))
            return -1;
        dq_states = &kept_states;
    }
    if ((algo == TN_ATTN_CHUNKED || algo == TN_ATTN_CHUNKED_WGMMA) && gradients_fused(passes[2])) {
        /* dQ as a pass; dK and dV in one sweep sharing its state. */
        if (launched(function, run_pass(passes[0], nullptr, scratch, algo, stream, dq_states), err)) return -1;
        return launched(function,
                        launch_key_value_gradients(passes[2], reinterpret_cast<const bf16 *>(v), s->ldv,
                                                   reinterpret_cast<bf16 *>(dk), s->ldk,
                                                   static_cast<float *>(scratch), stream),
                        err);
    }
    for (int i = 0; i < 3; i++)
        if (launched(function, run_pass(passes[i], nullptr, scratch, algo, stream, i == 0 ? dq_states : nullptr),
                     err))
            return -1;
    return 0;
}

extern "C" int attention_backward_cuda(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout,
                                       const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *lambda,
                                       const TnAttnShape *s, TnAttnAlgo algo, void *scratch, size_t scratch_bytes,
                                       cudaStream_t stream, TnError *err) {
    return backward(dq, dk, dv, dout, q, k, v, lambda, nullptr, s, algo, scratch, scratch_bytes, stream,
                    "attention_backward_cuda", err);
}

extern "C" int attention_backward_kept_cuda(uint16_t *dq, uint16_t *dk, uint16_t *dv, const uint16_t *dout,
                                            const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                            const float *lambda, const float *kept, size_t kept_bytes,
                                            const TnAttnShape *s, TnAttnAlgo algo, void *scratch,
                                            size_t scratch_bytes, cudaStream_t stream, TnError *err) {
    const char *function = "attention_backward_kept_cuda";
    if (check_shape(function, s, algo, err) || check_kept(function, s, algo, kept, kept_bytes, err)) return -1;
    return backward(dq, dk, dv, dout, q, k, v, lambda, kept, s, algo, scratch, scratch_bytes, stream, function, err);
}
