/* fsdp_gpu.c: the per-part parameter gathering of fsdp_gpu.h. */
#include "dist/fsdp_gpu.h"

#include <string.h>

#include "dist/fsdp.h" /* tn_fsdp_part_ranges: the CPU's plan of parts */

size_t tn_fsdp_gpu_buffer_floats(const TnParamLayout *layout, const TnConfig *cfg) {
    size_t n = tn_fsdp_gather_floats(layout, cfg);
    return n + (n + 1) / 2; /* fp32 and bf16 */
}

#ifdef TN_CUDA

#include <cuda_runtime_api.h>

#include "kernels/cuda/elementwise_cuda.h"

static int cuda_ok(cudaError_t rc, const char *what, TnError *err) {
    if (rc == cudaSuccess) return 0;
    return tn_fail(err, "ZeRO-3 parameter gather: CUDA %s failed: %s", what, cudaGetErrorString(rc));
}

int tn_fsdp_gpu_init(TnFsdpGpu *f, const TnComm *comm, TnModelCuda *g, void *stream, TnError *err) {
    memset(f, 0, sizeof *f);
    f->comm = comm;
    f->model = g;
    f->stream = stream;
    f->current = TN_FSDP_GPU_NONE;
    f->gather_floats = tn_fsdp_gather_floats(&g->layout, &g->config);
    TnRange own = tn_rank_range(g->n_params, comm->size, comm->rank);
    TN_ASSERT(g->params_begin == own.begin && g->params_end == own.end);
    cudaEvent_t released, gathered;
    if (cuda_ok(cudaMalloc((void **)&f->gather, f->gather_floats * sizeof(float)), "malloc", err) ||
        cuda_ok(cudaMalloc((void **)&f->gather_bf16, f->gather_floats * sizeof(uint16_t)), "malloc", err) ||
        cuda_ok(cudaEventCreateWithFlags(&released, cudaEventDisableTiming), "event create", err))
        return -1;
    f->released = released;
    if (cuda_ok(cudaEventCreateWithFlags(&gathered, cudaEventDisableTiming), "event create", err)) return -1;
    f->gathered = gathered;
    return 0;
}

void tn_fsdp_gpu_free(TnFsdpGpu *f) {
    /* release paths ignore errors: there is nothing left to do about them */
    cudaFree(f->gather);
    cudaFree(f->gather_bf16);
    if (f->released) cudaEventDestroy((cudaEvent_t)f->released);
    if (f->gathered) cudaEventDestroy((cudaEvent_t)f->gathered);
    memset(f, 0, sizeof *f);
}

int tn_fsdp_gpu_gather_part(TnModelCuda *g, int part, TnWeights *w, void *user, TnError *err) {
    TnFsdpGpu *f = user;
    TnRange ranges[2];
    int n_ranges = tn_fsdp_part_ranges(&g->layout, &g->config, part, ranges);
    int gathered = part == f->current; /* the head, asked for by the forward and again by the backward */
    f->current = TN_FSDP_GPU_NONE;     /* until this gather is queued whole */
    cudaStream_t compute = (cudaStream_t)g->stream, stream = (cudaStream_t)f->stream;
    if (!gathered && (cuda_ok(cudaEventRecord((cudaEvent_t)f->released, compute), "event record", err) ||
                      cuda_ok(cudaStreamWaitEvent(stream, (cudaEvent_t)f->released, 0), "stream wait", err)))
        return -1;
    float *at = f->gather;
    for (int i = 0; i < n_ranges; i++) {
        if (!gathered && tn_comm_gpu_all_gather_part(f->comm, g->params, g->n_params, ranges[i], at, stream, err))
            return -1;
        tn_weights_bind_range(w, &g->layout, ranges[i].begin, ranges[i].end, at);
        at += ranges[i].end - ranges[i].begin;
    }
    if (!gathered &&
        (convert_to_bf16_cuda(f->gather_bf16, f->gather, (size_t)(at - f->gather), stream, err) ||
         cuda_ok(cudaEventRecord((cudaEvent_t)f->gathered, stream), "event record", err) ||
         cuda_ok(cudaStreamWaitEvent(compute, (cudaEvent_t)f->gathered, 0), "stream wait", err)))
        return -1;
    g->view_f32 = f->gather;
    g->view_bf16 = f->gather_bf16;
    f->current = part;
    return 0;
}

void tn_fsdp_gpu_invalidate(TnFsdpGpu *f) { f->current = TN_FSDP_GPU_NONE; }

#else /* without CUDA no GPU step is opened, so none of these is reached */

int tn_fsdp_gpu_init(TnFsdpGpu *f, const TnComm *comm, TnModelCuda *g, void *stream, TnError *err) {
    (void)comm, (void)g, (void)stream;
    memset(f, 0, sizeof *f);
    return tn_fail(err, "ZeRO-3 on GPUs: this tnllm was built without CUDA");
}

void tn_fsdp_gpu_free(TnFsdpGpu *f) { memset(f, 0, sizeof *f); }

int tn_fsdp_gpu_gather_part(TnModelCuda *g, int part, TnWeights *w, void *user, TnError *err) {
    (void)g, (void)part, (void)w, (void)user;
    return tn_fail(err, "no GPU in this build");
}

void tn_fsdp_gpu_invalidate(TnFsdpGpu *f) { f->current = TN_FSDP_GPU_NONE; }

#endif
