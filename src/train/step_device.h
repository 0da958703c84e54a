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
 * Data parallel (comm: the data group, one GPU per rank, with its GPU
 * communicator; train/trainer.h): after a step's micro-batches, reduce
 * sums the ranks' gradients by NCCL, and update runs AdamW. zero picks
 * what each GPU keeps (tn_rank_range of the flat buffer, the rank's
 * range; below 3 the fp32 parameters and their bf16 copy stay whole: the
 * step reads fp32 values of the embedding, the norms and theta):
 *   0: everything; gradients all-reduced, every rank the whole AdamW.
 *   1: the AdamW moments of its range; gradients reduce-scattered after
 *      the backward, AdamW on the range, the fp32 parameters all-gathered.
 *   2: also the gradients of its range alone, each part reduce-scattered
 *      as the backward leaves it (dist/grad_reduce_gpu.h), then as 1.
 *   3: also the fp32 parameters of its range alone, each part gathered
 *      just before a pass reads it (dist/fsdp_gpu.h, with its bf16 copy);
 *      AdamW updates the range in place, no all-gather. Every rank must
 *      run the same passes: validation too.
 * The global norm of clipping is the square root of the ranks' sums of
 * squares of their ranges, added over the group. One rank (or a NULL
 * comm): zero is ignored, nothing is sharded.
 *
 * Tensor parallel (tensor_group of T > 1 ranks, one GPU each; dist/
 * tensor_parallel.h): the GPU holds the rank's part of the model
 * (model/transnormer_cuda.h TnCudaPart), the host buffers given and taken
 * are laid out as that part (tn_tp_layout), the passes add the parts'
 * results by NCCL all-reduces over tensor_group on the step's stream, and
 * the data group comm (the ranks holding the same part) sums the gradients
 * as above, at ZeRO-0 or 1 (tn_step_device_tp_check). The global norm adds
 * the split tensors' squares over the tensor group too and counts the
 * replicated ones once.
 *
 * CUDA (model/transnormer_cuda.h) is compiled in only where the Makefile
 * found nvcc (-DTN_CUDA); elsewhere opening it fails with a message saying
 * so. Functions return 0, or -1 with err filled.
 */
#ifndef TN_TRAIN_STEP_DEVICE_H
#define TN_TRAIN_STEP_DEVICE_H

#include <stdint.h>

#include "dist/comm.h"
#include "model/recompute.h"
#include "model/transnormer.h"
#include "train/optimizer.h"
#include "util/device.h"
#include "util/error.h"

typedef struct TnStepDevice TnStepDevice;

/* Opens an accelerator (not TN_DEVICE_CPU) for a model of cfg with the
 * parameters params and AdamW moments adam_m, adam_v (host: the rank's
 * range of the flat buffer where zero shards them with several ranks,
 * else the whole buffer; of the rank's part with tensor parallelism) and
 * room for batch x seq_len tokens per micro-batch at a recompute level,
 * for the data group comm (NULL: alone) and the tensor group tensor_group
 * (NULL or one rank: the whole model) at ZeRO stage zero (0-3). The
 * device owns its copies; free with close. */
int tn_step_device_open(TnStepDevice **dev, TnDevice device, const TnConfig *cfg, const float *params,
                        const float *adam_m, const float *adam_v, int batch, int seq_len, TnRecompute recompute,
                        const TnComm *comm, const TnComm *tensor_group, int zero, TnError *err);
/* Fails, saying why, on a ZeRO stage that tensor parallelism on GPUs does
 * not run with (2 and 3: above). */
int tn_step_device_tp_check(int zero, TnError *err);
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
/* What a rank without a micro-batch in a pass of the step runs instead,
 * so that every rank makes the same collectives: from ZeRO-2 on, the
 * forward and backward of a batch (host tokens, e.g. the last drawn) with
 * a loss scale of 0, which adds exact zeros to the gradients; below,
 * nothing. */
int tn_step_device_idle(TnStepDevice *dev, const int32_t *inputs, const int32_t *targets, int batch, int seq_len,
                        TnError *err);
/* Sums the ranks' accumulated gradients: ZeRO-0 all-reduces them, 1
 * reduce-scatters them, 2 and 3 wait for the per-part reductions the
 * backwards started; nothing with one rank. Returns once the collectives
 * are done, so that none runs while the trainer's host collectives do. */
int tn_step_device_reduce(TnStepDevice *dev, TnError *err);
/* Global-norm clip (max_norm <= 0: none) and AdamW step t, on the rank's
 * range from ZeRO-1 on (1 and 2: the fp32 parameters all-gathered after,
 * their bf16 copy remade; 3: the range updated in place, the next passes
 * gather it); *grad_norm
 * is the norm before clipping, the same on every rank. The caller stops
 * the run when it is not finite (the parameters on the device are then
 * no longer usable). */
int tn_step_device_update(TnStepDevice *dev, const TnAdamW *opt, float lr, long long t, double max_norm,
                          double *grad_norm, TnError *err);
/* Device bytes held, by kind. */
typedef struct TnStepDeviceMemory {
    size_t parameters;   /* the fp32 parameters (ZeRO-3: the rank's range) and their bf16 copy (none) */
    size_t gather;       /* ZeRO-3: the gather buffers of one part, fp32 and bf16 */
    size_t gradients;    /* the gradients held: the whole buffer, or (ZeRO-2) the rank's range */
    size_t grad_buffers; /* ZeRO-2: the backward's part buffers (dist/grad_reduce_gpu.h) */
    size_t moments;      /* AdamW's m and v */
    size_t arena;        /* the activations' arena */
    size_t total;
} TnStepDeviceMemory;
void tn_step_device_memory(const TnStepDevice *dev, TnStepDeviceMemory *memory);
/* Copies the device's parameters (whole, or under ZeRO-3 the rank's
 * range), gradients (the whole buffer, or from ZeRO-2 on the rank's range)
 * and moments (the range of adam_m at open) into the host buffers given
 * (NULL skips one). */
int tn_step_device_sync(TnStepDevice *dev, float *params, float *grads, float *adam_m, float *adam_v, TnError *err);

#endif
