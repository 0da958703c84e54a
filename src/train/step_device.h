/* step_device.h: where the trainer's step runs: the CPU (the default, the
 * trainer's own code) or an accelerator behind this interface.
 *
 * The trainer (trainer.h) keeps the host TnModel, its AdamW moments and the
 * data loader as the run's state: checkpoints and the final model read them,
 * so a run's files do not depend on the device, and a checkpoint written on
 * one device resumes on the other. A TnStepDevice holds a copy of the
 * parameters and moments on the accelerator, runs the forward, backward,
 * clipping and AdamW there, and copies them back (sync) when the trainer is
 * about to read them; validation scores on the device (score), so it needs
 * no sync and no second copy of the weights.
 *
 * Resumes are bit-identical on the GPU as on the CPU: the CUDA step adds
 * every sum in an order fixed by the shapes (no atomics; cuBLAS on one
 * stream with its own workspace: transnormer_cuda.h), so the same state and
 * batches give the same parameters and moments bit for bit, and a run
 * stopped and resumed (its checkpoint holds the fp32 parameters and moments
 * whole, and the bf16 copy is remade from them) continues exactly as one
 * that was not, on the same GPU model and CUDA libraries.
 *
 * CUDA (model/transnormer_cuda.h) is compiled in only where the Makefile
 * found nvcc (-DTN_CUDA); elsewhere opening it fails with a message saying
 * so. Functions return 0, or -1 with err filled.
 */
#ifndef TN_TRAIN_STEP_DEVICE_H
#define TN_TRAIN_STEP_DEVICE_H

#include <stdint.h>

#include "model/recompute.h"
#include "model/transnormer.h"
#include "train/optimizer.h"
#include "util/device.h"
#include "util/error.h"

typedef struct TnStepDevice TnStepDevice;

/* Opens an accelerator (not TN_DEVICE_CPU) for model m, with the AdamW
 * moments adam_m, adam_v (host, m's layout) and room for batch x seq_len
 * tokens per micro-batch at a recompute level. The device owns its copies;
 * free with close. */
int tn_step_device_open(TnStepDevice **dev, TnDevice device, const TnModel *m, const float *adam_m,
                        const float *adam_v, int batch, int seq_len, TnRecompute recompute, TnError *err);
void tn_step_device_close(TnStepDevice *dev);

int tn_step_device_zero_grad(TnStepDevice *dev, TnError *err);
/* Forward and backward of one micro-batch (host tokens), ACCUMULATING the
 * gradient of loss_scale * sum of its losses; *loss is its mean loss. */
int tn_step_device_accumulate(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch,
                              int seq_len, float loss_scale, float *loss, TnError *err);
/* Forward only, on the device's current parameters, of one batch (host
 * tokens and targets, batch x seq_len within what open reserved):
 * losses[r] (host, batch x seq_len) the loss of row r, 0 where the target
 * is ignored. Between steps: it overwrites the activations a backward
 * would need. */
int tn_step_device_score(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                         float *losses, TnError *err);
/* Global-norm clip (max_norm <= 0: none) and AdamW step t; *grad_norm is
 * the norm before clipping. The caller stops the run when it is not finite
 * (the parameters on the device are then no longer usable). */
int tn_step_device_update(TnStepDevice *dev, const TnAdamW *opt, float lr, long long t, double max_norm,
                          double *grad_norm, TnError *err);
/* The device's gradient buffer (*n floats of device memory, laid out like
 * the parameters) and the cudaStream_t the step's work is ordered on: a
 * data-parallel sum enqueued on it between the accumulation and the update
 * (dist/comm.h's tn_comm_gpu_all_reduce_sum) is what the update sees. */
int tn_step_device_gradients(TnStepDevice *dev, float **grads, size_t *n, void **stream, TnError *err);
/* Device bytes held: *state the parameters (fp32 master and bf16 copy),
 * gradients and AdamW moments, *arena the activations' arena. */
void tn_step_device_memory(const TnStepDevice *dev, size_t *state, size_t *arena);
/* Copies the device's parameters, gradients and moments into the host
 * buffers given (NULL skips one). */
int tn_step_device_sync(TnStepDevice *dev, float *params, float *grads, float *adam_m, float *adam_v, TnError *err);

#endif
