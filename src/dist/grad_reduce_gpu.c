/* grad_reduce_gpu.c: the overlapped ZeRO-2 reduction of grad_reduce_gpu.h. */
#include "dist/grad_reduce_gpu.h"

#include <string.h>

#ifdef TN_CUDA

#include <cuda_runtime_api.h>

static int cuda_ok(cudaError_t rc, const char *what, TnError *err) {
    if (rc == cudaSuccess) return 0;
    return tn_fail(err, "ZeRO-2 gradient reduction: CUDA %s failed: %s", what, cudaGetErrorString(rc));
}

static TnRange part_range(const TnGradReduceGpu *r, int part) {
    TnRange range;
    tn_param_part_range(&r->model->layout, r->n_layers, part, &range.begin, &range.end);
    return range;
}

static int unit_init(TnGradUnitGpu *u, size_t capacity, TnError *err) {
    u->capacity = capacity;
    u->part = TN_GRAD_NO_PART;
    cudaEvent_t event;
    if (cuda_ok(cudaMalloc((void **)&u->buffer, (capacity ? capacity : 1) * sizeof(float)), "malloc", err) ||
        cuda_ok(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "event create", err))
        return -1;
    u->reduced = event;
    return 0;
}

static void unit_free(TnGradUnitGpu *u) {
    /* release paths ignore errors: there is nothing left to do about them */
    cudaFree(u->buffer);
    if (u->reduced) cudaEventDestroy((cudaEvent_t)u->reduced);
}

/* The elements of part in this rank's shard. */
static TnRange mine(const TnGradReduceGpu *r, TnRange part) { return tn_range_intersect(r->own, part); }

/* Readies u for part on the model's stream (its last reduction done, the
 * buffer zeroed but for this rank's elements, which start from the shard)
 * and points dw's views of the part at it.
 * The wait on u's own reduction also orders the read of the shard after
 * the previous backward's write of this part, which another ring buffer
 * may have held: the reduction stream runs the parts in the order they
 * finish, and u's last part finished no earlier than that one, as a
 * backward takes L + 1 >= TN_GRAD_RING ring buffers (asserted at init). */
static int unit_take(TnGradReduceGpu *r, TnGradUnitGpu *u, int part, TnWeights *dw, TnError *err) {
    TnModelCuda *g = r->model;
    cudaStream_t compute = (cudaStream_t)g->stream;
    TnRange range = part_range(r, part), own = mine(r, range);
    TN_ASSERT(range.end - range.begin <= u->capacity);
    u->part = part;
    if (cuda_ok(cudaStreamWaitEvent(compute, (cudaEvent_t)u->reduced, 0), "stream wait", err) ||
        cuda_ok(cudaMemsetAsync(u->buffer, 0, (range.end - range.begin) * sizeof(float), compute), "memset", err))
        return -1;
    if (own.end > own.begin &&
        cuda_ok(cudaMemcpyAsync(u->buffer + (own.begin - range.begin), g->grads + (own.begin - r->own.begin),
                                (own.end - own.begin) * sizeof(float), cudaMemcpyDeviceToDevice, compute),
                "copy from the shard", err))
        return -1;
    tn_weights_bind_range(dw, &g->layout, range.begin, range.end, u->buffer);
    return 0;
}

int tn_grad_reduce_gpu_bind(TnModelCuda *g, int part, TnWeights *dw, void *user, TnError *err) {
    (void)g;
    TnGradReduceGpu *r = user;
    if (part == TN_PART_EMBED) return r->tied ? 0 : unit_take(r, &r->embed, part, dw, err); /* tied: with the head */
    TnGradUnitGpu *u = &r->ring[r->next];
    r->next = (r->next + 1) % TN_GRAD_RING;
    if (unit_take(r, u, part, dw, err)) return -1;
    /* the head's logits read the tied embedding: its gradient starts here */
    return part == r->n_layers && r->tied ? unit_take(r, &r->embed, TN_PART_EMBED, dw, err) : 0;
}

/* The unit holding part's gradients: the embedding's, or the ring's last
 * taken (a part ends before the next begins). */
static TnGradUnitGpu *unit_of(TnGradReduceGpu *r, int part) {
    TnGradUnitGpu *u = part == TN_PART_EMBED ? &r->embed : &r->ring[(r->next + TN_GRAD_RING - 1) % TN_GRAD_RING];
    return u->part == part ? u : NULL;
}

/* Queues the part's reduce-scatter and the copy of this rank's sums into
 * the shard on the reduction stream, after the part's last write. */
int tn_grad_reduce_gpu_part_done(TnModelCuda *g, int part, void *user, TnError *err) {
    TnGradReduceGpu *r = user;
    TnGradUnitGpu *u = unit_of(r, part);
    if (!u) return tn_fail(err, "ZeRO-2 gradient reduction: part %d finished without a buffer", part);
    cudaStream_t stream = (cudaStream_t)r->stream;
    TnRange range = part_range(r, part), own = mine(r, range);
    if (cuda_ok(cudaEventRecord((cudaEvent_t)r->part_written, (cudaStream_t)g->stream), "event record", err) ||
        cuda_ok(cudaStreamWaitEvent(stream, (cudaEvent_t)r->part_written, 0), "stream wait", err) ||
        tn_comm_gpu_reduce_scatter_part(r->comm, u->buffer, g->n_params, range, stream, err))
        return -1;
    if (own.end > own.begin &&
        cuda_ok(cudaMemcpyAsync(g->grads + (own.begin - r->own.begin), u->buffer + (own.begin - range.begin),
                                (own.end - own.begin) * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                "copy into the shard", err))
        return -1;
    return cuda_ok(cudaEventRecord((cudaEvent_t)u->reduced, stream), "event record", err);
}

int tn_grad_reduce_gpu_init(TnGradReduceGpu *r, const TnComm *comm, TnModelCuda *g, TnError *err) {
    memset(r, 0, sizeof *r);
    r->comm = comm;
    r->model = g;
    r->n_layers = g->config.n_layers;
    r->tied = g->config.tie_word_embeddings;
    r->own = tn_rank_range(g->n_params, comm->size, comm->rank);
    r->embed.part = TN_GRAD_NO_PART;
    for (int i = 0; i < TN_GRAD_RING; i++) r->ring[i].part = TN_GRAD_NO_PART;
    size_t embed_begin, embed_end;
    tn_param_part_range(&g->layout, r->n_layers, TN_PART_EMBED, &embed_begin, &embed_end);
    cudaStream_t stream;
    cudaEvent_t written;
    TN_ASSERT(g->grads_begin == r->own.begin && g->grads_end == r->own.end);
    TN_ASSERT(r->n_layers + 1 >= TN_GRAD_RING); /* unit_take's ordering of the shard */
    if (cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream create", err)) return -1;
    r->stream = stream;
    if (cuda_ok(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), "event create", err)) return -1;
    r->part_written = written;
    /* the buffers tn_grad_reduce_buffer_floats counts (step memory reports) */
    if (unit_init(&r->embed, embed_end - embed_begin, err)) return -1;
    for (int i = 0; i < TN_GRAD_RING; i++)
        if (unit_init(&r->ring[i], tn_param_largest_part(&g->layout, r->n_layers, 0), err)) return -1;
    return 0;
}

void tn_grad_reduce_gpu_free(TnGradReduceGpu *r) {
    unit_free(&r->embed);
    for (int i = 0; i < TN_GRAD_RING; i++) unit_free(&r->ring[i]);
    if (r->part_written) cudaEventDestroy((cudaEvent_t)r->part_written);
    if (r->stream) cudaStreamDestroy((cudaStream_t)r->stream);
    memset(r, 0, sizeof *r);
}

int tn_grad_reduce_gpu_finish(TnGradReduceGpu *r, TnError *err) {
    return cuda_ok(cudaStreamSynchronize((cudaStream_t)r->stream), "stream synchronize", err);
}

#else /* without CUDA no GPU step is opened, so none of these is reached */

int tn_grad_reduce_gpu_init(TnGradReduceGpu *r, const TnComm *comm, TnModelCuda *g, TnError *err) {
    (void)comm, (void)g;
    memset(r, 0, sizeof *r);
    return tn_fail(err, "ZeRO-2 on GPUs: this tnllm was built without CUDA");
}

void tn_grad_reduce_gpu_free(TnGradReduceGpu *r) { memset(r, 0, sizeof *r); }

int tn_grad_reduce_gpu_bind(TnModelCuda *g, int part, TnWeights *dw, void *user, TnError *err) {
    (void)g, (void)part, (void)dw, (void)user;
    return tn_fail(err, "no GPU in this build");
}

int tn_grad_reduce_gpu_part_done(TnModelCuda *g, int part, void *user, TnError *err) {
    (void)g, (void)part, (void)user;
    return tn_fail(err, "no GPU in this build");
}

int tn_grad_reduce_gpu_finish(TnGradReduceGpu *r, TnError *err) {
    (void)r;
    return tn_fail(err, "no GPU in this build");
}

#endif
