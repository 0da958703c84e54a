/* generate.h: text generation on a session (paper §3.3: decoding as an RNN).
 *
 * The prompt is tokenized and prefilled (chunked Lightning Attention-2),
 * then each new token is sampled from the session's logits, handed to a
 * sink (which streams it) and fed back with one recurrent step (Alg. 4), so
 * each token costs the same whatever the length of the context.
 */
#ifndef TN_INFER_GENERATE_H
#define TN_INFER_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "infer/sampling.h"
#include "infer/session.h"

/* Receives each generated token; a non-zero return stops generation after
 * that token (e.g. a stop string was completed). */
typedef int (*TnTokenSink)(void *user, int32_t token);

/* Generates up to max_new tokens on sequence 0 of s, starting from its
 * current logits (a prefill or decode must have run). Each token is sampled
 * with the sequence's recent tokens as the repetition window, passed to sink
 * (may be NULL) and fed back, so the state always covers every token
 * emitted. Stops early, without emitting it, at eos_token (< 0: never).
 * *n_generated receives the tokens emitted. Fails only if a decode fails. */
int tn_generate(TnSession *s, TnSampler *sampler, int max_new, int32_t eos_token, TnTokenSink sink, void *user,
                int *n_generated, TnError *err);

/* Whether text (len bytes) ends with one of the n_stops stop strings
 * (empty ones never match): what a sink checks after each token's bytes. */
int tn_ends_with_stop(const char *const *stops, int n_stops, const char *text, size_t len);

/* The number of bytes (0 to 3) at the end of text that begin a UTF-8
 * character without completing it, such that more bytes could still
 * complete it: what a printer holds back while streaming (the byte-level
 * tokenizer spells a character over several tokens) and drops when the
 * generation ends there, cut by -n. Generation is never prolonged to finish
 * a character: -n stays a bound on the tokens, and a continuation may never
 * come. Bytes that no continuation makes valid (a stray continuation byte,
 * C0, F5.., an overlong or surrogate start) are not unfinished: they are the
 * model's output, returned as 0. */
size_t tn_utf8_unfinished(const char *text, size_t len);

/* Why a sequence of a batch ended. */
typedef enum TnStopReason { TN_STOP_LENGTH, TN_STOP_EOS, TN_STOP_SINK } TnStopReason;

/* "length", "eos" or "stop". */
const char *tn_stop_reason_name(TnStopReason reason);

/* Receives token `token` of sequence seq of a batch; a non-zero return ends
 * that sequence after the token. */
typedef int (*TnBatchSink)(void *user, int seq, int32_t token);

/* Batched generation: sequences 0 .. batch-1 of s (batch <= max_batch,
 * each prefilled, so its logits are ready) are decoded together, one
 * tn_session_decode of every live sequence per step, each weight matrix read
 * once per step for all of them. Sequence seq samples with samplers[seq]
 * (its own stream, so its tokens do not depend on the others or on the
 * batch size) and ends after max_new tokens (TN_STOP_LENGTH), at eos_token,
 * not emitted (TN_STOP_EOS), or when sink returns non-zero (TN_STOP_SINK).
 * A finished sequence drops out: the last live one is copied into its slot
 * (tn_session_copy), so later steps run only live rows; afterwards the
 * session's slots no longer match the sequence numbers and hold nothing
 * useful. n_generated[seq] and reasons[seq] (batch each) receive the
 * tokens emitted and the reason. Allocates two small arrays per call,
 * nothing per token. Fails only if a decode or copy fails.
 *
 * With temperature 0 each sequence emits what tn_generate gives it alone,
 * up to the rounding of batched against single-row matrix products (a
 * different token only where two logits are that close). */
int tn_generate_batch(TnSession *s, int batch, TnSampler *samplers, int max_new, int32_t eos_token, TnBatchSink sink,
                      void *user, int *n_generated, TnStopReason *reasons, TnError *err);

#endif
