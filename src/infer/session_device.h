/* session_device.h: where an inference session's layers run when not on
 * the CPU (the CPU runs session.c's own code), behind an interface the host
 * code can call in every build.
 *
 * A TnSessionDevice holds a copy of the model's weights and the recurrent
 * states of max_batch sequences on the accelerator, and runs the layers of
 * up to max_rows token rows per call there; the host session (session.h)
 * keeps positions and recent tokens and checks the tokens before calling.
 * The next-token logits come back to a host buffer the device owns, so the
 * host's sampler reads them in place. Saved states (state_file.h) and int8
 * weights stay on the CPU.
 *
 * CUDA (infer/session_cuda.h) is compiled in only where the Makefile found
 * nvcc (-DTN_CUDA); elsewhere opening it fails with a message saying so.
 * Functions return 0, or -1 with err filled.
 */
#ifndef TN_INFER_SESSION_DEVICE_H
#define TN_INFER_SESSION_DEVICE_H

#include <stdint.h>

#include "model/transnormer.h"
#include "util/device.h"
#include "util/error.h"

typedef struct TnSessionDevice TnSessionDevice;

/* Opens `device` (not TN_DEVICE_CPU) for model m (read now, not kept) with
 * max_batch sequences, all empty, and max_rows >= max_batch token rows per
 * call. Fails, saying what, on a model switch or head width the device
 * cannot run. Free with close. */
int tn_session_device_open(TnSessionDevice **dev, TnDevice device, const TnModel *m, int max_batch, int max_rows,
                           TnError *err);
void tn_session_device_close(TnSessionDevice *dev);

/* The host buffer (max_batch, V) that tn_session_device_forward fills;
 * owned by the device, valid until close. */
float *tn_session_device_logits(TnSessionDevice *dev);

/* A line for logs: the device, the memory the session holds there, and
 * whether decode steps replay CUDA graphs. */
const char *tn_session_device_describe(TnSessionDevice *dev);

/* Runs sequences first_seq .. first_seq + batch - 1, `rows` tokens each
 * (tokens[b * rows + t], checked < V), sequence b from position
 * positions[b] (0: an empty state), batch * rows <= max_rows; with
 * `logits`, their next-token logits arrive in rows first_seq .. of the
 * logits buffer. */
int tn_session_device_forward(TnSessionDevice *dev, const int32_t *tokens, const int *positions, int first_seq,
                              int batch, int rows, int logits, TnError *err);

/* Copies sequence from's state over sequence to's (the host session moves
 * the rest). */
int tn_session_device_copy(TnSessionDevice *dev, int from, int to, TnError *err);

/* Scores `batch` <= max_batch fresh sequences (its sequences 0..batch-1,
 * whose states it overwrites) of seq_len tokens: losses[b * seq_len + t] is
 * the cross-entropy of targets[b * seq_len + t] (TN_IGNORE_INDEX: 0). */
int tn_session_device_score(TnSessionDevice *dev, const int32_t *tokens, const int32_t *targets, int batch,
                            int seq_len, float *losses, TnError *err);

#endif
