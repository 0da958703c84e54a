/* fsdp_gpu.h: ZeRO-3 on the GPUs: the fp32 parameters sharded, each part
 * gathered by NCCL just before a pass reads it (the GPU twin of fsdp.h,
 * with its plan of parts: tn_fsdp_part_ranges).
 *
 * Each rank's GPU keeps its shard of the fp32 parameters (the model's
 * g->params, tn_model_cuda_init_shard at ZeRO-3; AdamW updates it there)
 * and two gather buffers the size of the largest part: the part's fp32
 * values (tn_comm_gpu_all_gather_part) and their bf16 copy, made from
 * them by the same conversion as the whole model's copy (so the matrix
 * products see the same bf16 weights as without sharding). Installed as
 * the model's weights hook (transnormer_cuda.h), it gathers a part when a
 * pass asks for it and points the pass's views and g->view_f32,
 * g->view_bf16 there; gathering the next part drops it (the backward
 * gathers each layer again; the head, asked for by the forward and then
 * by the backward, once). The gather runs on a communication stream
 * (ZeRO-2's reduction stream, grad_reduce_gpu.h: one stream keeps the
 * step's collectives in the order they are issued, which NCCL needs when
 * two cannot progress at once) after the work queued on the model's
 * stream, which waits for it: no gather overwrites a part in use, no pass
 * reads a part before it is there. Every rank must run the same passes in
 * the same order (forward, backward, validation): each gather is a
 * collective.
 *
 * Every CUDA status is checked; a failure is returned by the hook (the
 * pass then fails with it). Compiled with CUDA only (init fails with a
 * message elsewhere).
 */
#ifndef TN_DIST_FSDP_GPU_H
#define TN_DIST_FSDP_GPU_H

#include "dist/comm.h"
#include "model/transnormer_cuda.h"

typedef struct TnFsdpGpu {
    const TnComm *comm;  /* the data group, with its GPU communicator */
    TnModelCuda *model;  /* whose g->params is this rank's shard */
    float *gather;       /* device, gather_floats: the part in use */
    uint16_t *gather_bf16; /* device, its bf16 copy */
    size_t gather_floats;
    int current;         /* the part gather holds; TN_FSDP_GPU_NONE after the shard changed */
    void *stream;        /* cudaStream_t of the gathers (not owned) */
    void *released, *gathered; /* cudaEvent_t: the model's stream is past the last part; the gather is done */
} TnFsdpGpu;

#define TN_FSDP_GPU_NONE (-2)

/* Allocates the gather buffers for g, whose parameters are this rank's
 * range of comm; the gathers run on stream (a cudaStream_t). The caller
 * installs tn_fsdp_gpu_gather_part as g's weights hook with user = f.
 * Free with tn_fsdp_gpu_free. */
int tn_fsdp_gpu_init(TnFsdpGpu *f, const TnComm *comm, TnModelCuda *g, void *stream, TnError *err);
void tn_fsdp_gpu_free(TnFsdpGpu *f);
/* TnModelCudaHooks.weights, user = the TnFsdpGpu. */
int tn_fsdp_gpu_gather_part(TnModelCuda *g, int part, TnWeights *w, void *user, TnError *err);
/* The shard changed (an optimizer step): the next pass gathers afresh. */
void tn_fsdp_gpu_invalidate(TnFsdpGpu *f);
/* The device floats of the gather buffers' fp32 and bf16 halves, counted
 * in floats (the bf16 one as half). */
size_t tn_fsdp_gpu_buffer_floats(const TnParamLayout *layout, const TnConfig *cfg);

#endif
