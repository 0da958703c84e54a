/* comm_nccl.c: comm.h's GPU collectives on NCCL, and the host collectives
 * of a job launched without MPI through them. Every CUDA and NCCL status
 * is checked. */
#include "dist/comm_nccl.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm_mpi.h"
#include "dist/launch.h"

struct TnCommGpu {
    ncclComm_t nccl;
    cudaStream_t stream;  /* the group's own: host collectives, and device ones given no stream */
    int device;
    void *staging;        /* device memory for the host collectives: STAGING_BYTES, or NULL before the first */
};

static int cuda_check(cudaError_t rc, const char *what, TnError *err) {
    if (rc == cudaSuccess) return 0;
    return tn_fail(err, "CUDA %s failed: %s", what, cudaGetErrorString(rc));
}

static int nccl_check(ncclResult_t rc, const TnComm *comm, const char *what, TnError *err) {
    if (rc == ncclSuccess) return 0;
    const char *detail = comm->gpu && comm->gpu->nccl ? ncclGetLastError(comm->gpu->nccl) : "";
    return tn_fail(err, "NCCL %s failed on rank %d: %s%s%s", what, comm->rank, ncclGetErrorString(rc),
                   detail && *detail ? ": " : "", detail ? detail : "");
}

static cudaStream_t stream_of(const TnComm *comm, void *stream) {
    return stream ? (cudaStream_t)stream : comm->gpu->stream;
}

static int need_gpu(const TnComm *comm, TnError *err) {
    if (comm->gpu) return 0;
    return tn_fail(err, "rank %d: the NCCL group is not started (a launch without MPI runs on GPUs: --device cuda)",
                   comm->rank);
}

/* The rank's id: rank 0's from ncclGetUniqueId, passed to the others by
 * MPI under mpirun, else through dist_init (launch.h). */
static int share_unique_id(const TnComm *comm, const char *dist_init, ncclUniqueId *id, TnError *err) {
    if (comm->rank == 0 && nccl_check(ncclGetUniqueId(id), comm, "unique id", err)) return -1;
#ifdef TN_MPI
    if (comm->backend == TN_COMM_MPI) return tn_comm_mpi_broadcast_bytes(comm, id, sizeof *id, 0, err);
#endif
    if (comm->size == 1 && !dist_init) return 0;
    return tn_launch_share_id(dist_init, comm->rank, comm->size, id, sizeof *id, TN_LAUNCH_TIMEOUT, err);
}

int tn_comm_nccl_gpu_init(TnComm *comm, const char *dist_init, TnError *err) {
    if (comm->gpu) return 0;
    int devices = 0;
    if (cuda_check(cudaGetDeviceCount(&devices), "device count", err)) return -1;
    if (comm->local_rank >= devices)
        return tn_fail(err, "rank %d: local rank %d, but this machine shows %d GPU%s (one GPU per rank)", comm->rank,
                       comm->local_rank, devices, devices == 1 ? "" : "s");
    if (cuda_check(cudaSetDevice(comm->local_rank), "set device", err)) return -1;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (share_unique_id(comm, dist_init, &id, err)) return -1;
    TnCommGpu *gpu = tn_calloc(1, sizeof *gpu);
    gpu->device = comm->local_rank;
    comm->gpu = gpu;
    ncclComm_t nccl = NULL;
    int failed = nccl_check(ncclCommInitRank(&nccl, comm->size, id, comm->rank), comm, "init", err);
    if (!failed) gpu->nccl = nccl; /* a communicator that failed to start is not one to destroy */
    if (failed || cuda_check(cudaStreamCreateWithFlags(&gpu->stream, cudaStreamNonBlocking), "stream", err)) {
        tn_comm_nccl_gpu_free(comm);
        return -1;
    }
    /* every rank has joined: the id file has served */
    if (comm->backend != TN_COMM_MPI) tn_launch_cleanup(dist_init, comm->rank);
    return 0;
}

int tn_comm_nccl_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err) {
    if (need_gpu(parent, err)) return -1;
    TnCommGpu *gpu = tn_calloc(1, sizeof *gpu);
    gpu->device = parent->gpu->device;
    ncclComm_t nccl = NULL;
    if (nccl_check(ncclCommSplit(parent->gpu->nccl, color, key, &nccl, NULL), parent, "split", err)) {
        free(gpu);
        return -1;
    }
    gpu->nccl = nccl;
    child->gpu = gpu;
    int rank = 0, size = 1;
    if (nccl_check(ncclCommUserRank(nccl, &rank), child, "rank", err) ||
        nccl_check(ncclCommCount(nccl, &size), child, "count", err) ||
        cuda_check(cudaStreamCreateWithFlags(&gpu->stream, cudaStreamNonBlocking), "stream", err)) {
        tn_comm_nccl_gpu_free(child);
        return -1;
    }
    /* under MPI the MPI split ranked the child alike (by key, then the parent's rank) */
    child->rank = rank;
    child->size = size;
    return 0;
}

void tn_comm_nccl_gpu_free(TnComm *comm) {
    TnCommGpu *gpu = comm->gpu;
    if (!gpu) return;
    /* teardown has no caller to fail: each failure is a warning */
    TnError err;
    if (gpu->nccl) {
        ncclResult_t rc = ncclCommDestroy(gpu->nccl);
        gpu->nccl = NULL; /* nccl_check must not ask a destroyed communicator for its last error */
        if (nccl_check(rc, comm, "destroy", &err)) fprintf(stderr, "tnllm: warning: %s\n", err.msg);
    }
    if (gpu->stream && cuda_check(cudaStreamDestroy(gpu->stream), "stream destroy", &err))
        fprintf(stderr, "tnllm: warning: %s\n", err.msg);
    if (cuda_check(cudaFree(gpu->staging), "free", &err)) fprintf(stderr, "tnllm: warning: %s\n", err.msg);
    free(gpu);
    comm->gpu = NULL;
}

void tn_comm_nccl_abort(const TnComm *comm) {
    TnError err;
    if (!comm->gpu || !comm->gpu->nccl) return;
    ncclResult_t rc = ncclCommAbort(comm->gpu->nccl);
    comm->gpu->nccl = NULL; /* freed by the abort: neither destroyed after nor asked for its last error */
    if (nccl_check(rc, comm, "abort", &err)) fprintf(stderr, "tnllm: warning: %s\n", err.msg);
}


int tn_comm_nccl_all_reduce(const TnComm *comm, void *buf, size_t n, TnNcclType type, void *stream, TnError *err) {
    if (need_gpu(comm, err)) return -1;
    ncclDataType_t t = type == TN_NCCL_DOUBLE ? ncclFloat64 : ncclFloat32;
    return nccl_check(ncclAllReduce(buf, buf, n, t, ncclSum, comm->gpu->nccl, stream_of(comm, stream)), comm,
                      "all-reduce", err);
}

/* NCCL's reduce-scatter and all-gather take equal shards; tn_rank_range's
 * differ by one element, so each shard is a reduce to (or broadcast from)
 * its owner, all in one group call. buf holds the part `part` of the n
 * elements (buf[0] is element part.begin); each rank's elements of the
 * part stay in their places. A gather sends this rank's elements from
 * shard (its range of the n: shard[0] is its first element), or from buf
 * where shard is NULL. */
static int per_shard(const TnComm *comm, float *buf, const float *shard, size_t n, TnRange part, int gather,
                     void *stream, TnError *err) {
    if (need_gpu(comm, err)) return -1;
    cudaStream_t s = stream_of(comm, stream);
    TnRange own = tn_rank_range(n, comm->size, comm->rank);
    if (nccl_check(ncclGroupStart(), comm, "group start", err)) return -1;
    int rc = 0;
    for (int r = 0; r < comm->size && !rc; r++) {
        TnRange theirs = tn_range_intersect(part, tn_rank_range(n, comm->size, r));
        size_t count = theirs.end - theirs.begin;
        /* every rank skips the same empty shards (whose begin may lie far outside the part) */
        if (!count) continue;
        float *at = buf + (theirs.begin - part.begin);
        const float *from = r == comm->rank && shard ? shard + (theirs.begin - own.begin) : at;
        rc = gather ? nccl_check(ncclBroadcast(from, at, count, ncclFloat32, r, comm->gpu->nccl, s), comm,
                                 "all-gather", err)
                    : nccl_check(ncclReduce(at, at, count, ncclFloat32, ncclSum, r, comm->gpu->nccl, s), comm,
                                 "reduce-scatter", err);
    }
    /* the group is closed even after a failed call, so that NCCL is left consistent */
    int closed = nccl_check(ncclGroupEnd(), comm, "group end", rc ? NULL : err);
    return rc || closed ? -1 : 0;
}

int tn_comm_nccl_reduce_scatter(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err) {
    return per_shard(comm, buf, NULL, n, (TnRange){0, n}, 0, stream, err);
}

int tn_comm_nccl_reduce_scatter_part(const TnComm *comm, float *part_buf, size_t n, TnRange part, void *stream,
                                     TnError *err) {
    return per_shard(comm, part_buf, NULL, n, part, 0, stream, err);
}

int tn_comm_nccl_all_gather(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err) {
    return per_shard(comm, buf, NULL, n, (TnRange){0, n}, 1, stream, err);
}

int tn_comm_nccl_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                                 void *stream, TnError *err) {
    return per_shard(comm, out, shard, n, part, 1, stream, err);
}

int tn_comm_nccl_broadcast(const TnComm *comm, float *buf, size_t n, int root, void *stream, TnError *err) {
    if (need_gpu(comm, err)) return -1;
    return nccl_check(ncclBroadcast(buf, buf, n, ncclFloat32, root, comm->gpu->nccl, stream_of(comm, stream)), comm,
                      "broadcast", err);
}

/* The host collectives stage through a device buffer of this many bytes,
 * a chunk at a time: a fixed cost on the GPU however large the buffer (a
 * checkpoint's parts, the moments), which memory plans need not count. */
#define STAGING_BYTES ((size_t)64 << 20)

/* The staging buffer, allocated at the first host collective. */
static int staging(const TnComm *comm, TnError *err) {
    TnCommGpu *gpu = comm->gpu;
    if (gpu->staging) return 0;
    return cuda_check(cudaMalloc(&gpu->staging, STAGING_BYTES), "staging allocation", err);
}

/* Copies bytes of the staging buffer to host and waits, which frees the
 * buffer for the next chunk. */
static int unstage(const TnComm *comm, void *host, size_t bytes, TnError *err) {
    TnCommGpu *gpu = comm->gpu;
    if (cuda_check(cudaMemcpyAsync(host, gpu->staging, bytes, cudaMemcpyDeviceToHost, gpu->stream), "copy to the host",
                   err))
        return -1;
    return cuda_check(cudaStreamSynchronize(gpu->stream), "stream synchronize", err);
}

int tn_comm_nccl_host(const TnComm *comm, TnNcclHostOp op, void *buf, size_t n, TnNcclType type, int root,
                      TnError *err) {
    if (op == TN_NCCL_HOST_ALL_GATHER) { /* each rank's shard of buf, gathered in place */
        TnRange own = tn_rank_range(n, comm->size, comm->rank);
        return tn_comm_nccl_host_all_gather_part(comm, (float *)buf + own.begin, n, (TnRange){0, n}, buf, err);
    }
    size_t size = type == TN_NCCL_DOUBLE ? sizeof(double) : sizeof(float), step = STAGING_BYTES / size;
    if (need_gpu(comm, err) || staging(comm, err)) return -1;
    TnCommGpu *gpu = comm->gpu;
    for (size_t at = 0; at < n; at += step) {
        size_t count = n - at < step ? n - at : step;
        char *host = (char *)buf + at * size;
        if (cuda_check(cudaMemcpyAsync(gpu->staging, host, count * size, cudaMemcpyHostToDevice, gpu->stream),
                       "copy to the GPU", err))
            return -1;
        int rc;
        switch (op) {
        case TN_NCCL_HOST_ALL_REDUCE: rc = tn_comm_nccl_all_reduce(comm, gpu->staging, count, type, NULL, err); break;
        /* the chunk is a part of the n: its elements of each shard summed at their owner */
        case TN_NCCL_HOST_REDUCE_SCATTER:
            rc = per_shard(comm, gpu->staging, NULL, n, (TnRange){at, at + count}, 0, NULL, err);
            break;
        default: rc = tn_comm_nccl_broadcast(comm, gpu->staging, count, root, NULL, err); break;
        }
        if (rc || unstage(comm, host, count * size, err)) return -1;
    }
    return 0;
}

int tn_comm_nccl_host_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                                      TnError *err) {
    if (need_gpu(comm, err) || staging(comm, err)) return -1;
    TnCommGpu *gpu = comm->gpu;
    TnRange own = tn_rank_range(n, comm->size, comm->rank);
    float *device = gpu->staging;
    for (size_t at = part.begin, step = STAGING_BYTES / sizeof(float); at < part.end; at += step) {
        TnRange chunk = {at, part.end - at < step ? part.end : at + step}, mine = tn_range_intersect(own, chunk);
        if (mine.end > mine.begin &&
            cuda_check(cudaMemcpyAsync(device + (mine.begin - chunk.begin), shard + (mine.begin - own.begin),
                                       (mine.end - mine.begin) * sizeof(float), cudaMemcpyHostToDevice, gpu->stream),
                       "copy to the GPU", err))
            return -1;
        if (per_shard(comm, device, NULL, n, chunk, 1, NULL, err) ||
            unstage(comm, out + (chunk.begin - part.begin), (chunk.end - chunk.begin) * sizeof(float), err))
            return -1;
    }
    return 0;
}
