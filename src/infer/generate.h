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

#endif
