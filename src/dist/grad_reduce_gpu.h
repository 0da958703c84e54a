/* grad_reduce_gpu.h: ZeRO-2 on the GPUs: each part's gradients
 * reduce-scattered by NCCL while the backward computes the next part.
 *
 * The GPU twin of grad_reduce.h's scatter mode (its contract holds here:
 * the parts in backward order, head L, layers L-1..0, the embedding; the
 * layers and the head take turns in a ring of TN_GRAD_RING part-sized
 * buffers, the embedding has its own, which a tied embedding takes with
 * the head). The rank keeps only its shard of the gradients (the model's
 * g->grads, tn_model_cuda_init_shard). Installed as the model's grads
 * hooks (transnormer_cuda.h), every backward of the step:
 *  - grads (a part begins): the buffer it takes waits (on the compute
 *    stream) for its previous reduction, is zeroed, and its elements in
 *    this rank's shard are set to the shard's sums so far; the backward
 *    accumulates into it;
 *  - grads_done (the part's last write is queued): the reduction stream
 *    waits for it, then the part's reduce-scatter (comm.h
 *    tn_comm_gpu_reduce_scatter_part) and the copy of this rank's
 *    elements back into the shard run there. The owner's buffer started
 *    from the shard, so the shard gains the sum over ranks of this
 *    backward's gradients without an addition kernel.
 * The compute stream never waits for a reduction but the one of the buffer
 * it reuses, so the communication of part p overlaps the backward of the
 * parts after it. Every rank must run the same number of backwards per
 * step (a rank without a micro-batch for a pass runs one with a zero
 * gradient: train/step_device.h).
 *
 * Every CUDA status is checked; a failure is returned by the hook (the
 * backward then fails with it). Compiled with CUDA only (the functions
 * fail with a message elsewhere).
 */
#ifndef TN_DIST_GRAD_REDUCE_GPU_H
#define TN_DIST_GRAD_REDUCE_GPU_H

#include "dist/comm.h"
#include "dist/grad_reduce.h" /* TN_GRAD_RING */
#include "model/transnormer_cuda.h"

/* A part-sized gradient buffer on the device and its reduction. */
typedef struct TnGradUnitGpu {
    float *buffer;   /* device, capacity floats, owned */
    size_t capacity;
    int part;        /* the part it holds, or TN_GRAD_NO_PART */
    void *reduced;   /* cudaEvent_t: its last reduction and copy into the shard are done */
} TnGradUnitGpu;

typedef struct TnGradReduceGpu {
    const TnComm *comm;          /* the data group, with its GPU communicator */
    TnModelCuda *model;          /* whose g->grads is the shard [own.begin, own.end) */
    TnRange own;
    int n_layers, tied;
    void *stream;                /* cudaStream_t of the reductions, owned */
    void *part_written;          /* cudaEvent_t: a part's last write on the model's stream */
    TnGradUnitGpu embed, ring[TN_GRAD_RING];
    int next;                    /* the ring buffer the next layer or head takes */
} TnGradReduceGpu;

/* Readies the reduction of g's gradients, which are this rank's range of
 * comm (tn_model_cuda_init_shard). The caller installs the two hooks
 * below with grads_user = r. Free with tn_grad_reduce_gpu_free. */
int tn_grad_reduce_gpu_init(TnGradReduceGpu *r, const TnComm *comm, TnModelCuda *g, TnError *err);
void tn_grad_reduce_gpu_free(TnGradReduceGpu *r);
/* TnModelCudaHooks.grads and grads_done. */
int tn_grad_reduce_gpu_bind(TnModelCuda *g, int part, TnWeights *dw, void *user, TnError *err);
int tn_grad_reduce_gpu_part_done(TnModelCuda *g, int part, void *user, TnError *err);
/* Waits (host) for every reduction started: the shard then holds the
 * step's summed gradients. */
int tn_grad_reduce_gpu_finish(TnGradReduceGpu *r, TnError *err);

#endif
