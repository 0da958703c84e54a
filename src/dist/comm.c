/* comm.c: the single-process backend and the dispatch to MPI and NCCL
 * (comm.h). */
#include "dist/comm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm_mpi.h"
#include "dist/comm_nccl.h"
#include "dist/launch.h"

#ifdef TN_MPI
#define USE_MPI(comm) ((comm)->backend == TN_COMM_MPI)
#define VIA_MPI(call) (call)
#else
#define USE_MPI(comm) ((void)(comm), 0)
/* sizeof names the call without making it (no MPI code is linked), so
 * the arguments count as used; the backend is never chosen */
#define VIA_MPI(call) ((void)sizeof(call), tn_fail(err, "no MPI in this build"))
#endif
#ifdef TN_NCCL
#define VIA_NCCL(call) (call)
#else
#define VIA_NCCL(call) ((void)sizeof(call), tn_fail(err, "no NCCL in this build"))
#endif

/* With one rank every collective is the identity: the single backend
 * returns before touching buf. */
#define DISPATCH(comm, mpi_call, nccl_call)                                                \
    return (comm)->backend == TN_COMM_MPI ? VIA_MPI(mpi_call)                               \
           : (comm)->backend == TN_COMM_NCCL ? VIA_NCCL(nccl_call) : 0

TnRange tn_rank_range(size_t n, int size, int rank) {
    /* n * rank stays far below 2^64 for any model and rank count */
    return (TnRange){.begin = n * (size_t)rank / (size_t)size, .end = n * (size_t)(rank + 1) / (size_t)size};
}

TnRange tn_range_intersect(TnRange a, TnRange b) {
    size_t begin = a.begin > b.begin ? a.begin : b.begin, end = a.end < b.end ? a.end : b.end;
    return begin < end ? (TnRange){begin, end} : (TnRange){begin, begin};
}

/* The number of ranks an MPI launcher asked for (OpenMPI, MPICH/PMI,
 * PMIx), or 0 when none started this process. */
static int launcher_size(void) {
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *value = getenv(names[i]);
        if (value && atoi(value) > 0) return atoi(value);
    }
    return 0;
}

int tn_comm_init(TnComm *comm, TnError *err) {
    memset(comm, 0, sizeof *comm);
    comm->backend = TN_COMM_SINGLE;
    comm->size = 1;
    int launched = launcher_size();
#ifdef TN_MPI
    if (launched > 0) return tn_comm_mpi_init(comm, err);
#else
    if (launched > 1)
        return tn_fail(err, "launched as one of %d ranks, but this tnllm is built without MPI (install "
                            "libopenmpi-dev and rebuild)", launched);
#endif
    TnLaunch launch;
    int found = tn_launch_from_env(&launch, err);
    if (found < 0) return -1;
    if (!found || launch.size == 1) return 0;
#ifndef TN_NCCL
    return tn_fail(err, "%s started rank %d of %d without MPI, but this tnllm is built without NCCL (make looks for "
                        "nccl.h and libnccl under CUDA_HOME); use mpirun, or build with NCCL",
                   launch.source, launch.rank, launch.size);
#endif
    comm->backend = TN_COMM_NCCL;
    comm->rank = launch.rank;
    comm->size = launch.size;
    comm->local_rank = launch.local_rank;
    return 0;
}

int tn_comm_gpu_init(TnComm *comm, const char *dist_init, TnError *err) {
#ifdef TN_NCCL
    return tn_comm_nccl_gpu_init(comm, dist_init, err);
#else
    (void)comm;
    (void)dist_init;
    return tn_fail(err, "GPU collectives: this tnllm is built without NCCL (make looks for nccl.h and libnccl under "
                        "CUDA_HOME)");
#endif
}

void tn_comm_finalize(TnComm *comm) {
#ifdef TN_NCCL
    tn_comm_nccl_gpu_free(comm);
#endif
#ifdef TN_MPI
    if (USE_MPI(comm)) tn_comm_mpi_finalize();
#endif
    comm->size = 1;
    comm->rank = 0;
    comm->backend = TN_COMM_SINGLE;
}

void tn_comm_abort(const TnComm *comm, int status) {
#ifdef TN_NCCL
    tn_comm_nccl_abort(comm);
    /* no MPI to end the others: the launcher (torchrun, srun) ends the job when a rank fails */
    if (comm->backend == TN_COMM_NCCL) exit(status);
#endif
#ifdef TN_MPI
    if (USE_MPI(comm)) tn_comm_mpi_abort(status);
#endif
    (void)comm;
    (void)status;
}

int tn_comm_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err) {
    *child = (TnComm){.backend = parent->backend, .rank = 0, .size = 1};
#ifdef TN_MPI
    if (USE_MPI(parent) && tn_comm_mpi_split(parent, color, key, child, err)) return -1;
#endif
    child->local_rank = parent->local_rank; /* the same GPU */
    if (!parent->gpu) {
        if (parent->backend != TN_COMM_NCCL) return 0;
        return tn_fail(err, "sub-groups of a launch without MPI split its NCCL group: start it first "
                            "(tn_comm_gpu_init)");
    }
    /* the child's GPU group: the parent's split alike (failing, the child's MPI group is freed too) */
    if (!VIA_NCCL(tn_comm_nccl_split(parent, color, key, child, err))) return 0;
    tn_comm_free(child);
    return -1;
}

void tn_comm_free(TnComm *child) {
#ifdef TN_NCCL
    tn_comm_nccl_gpu_free(child);
#endif
#ifdef TN_MPI
    if (USE_MPI(child)) tn_comm_mpi_free(child);
#endif
    child->group = NULL;
}

void tn_comm_free_failed(TnComm *child) {
#ifdef TN_NCCL
    tn_comm_nccl_abort(child);
#endif
    tn_comm_free(child);
}

const char *tn_comm_backend_name(const TnComm *comm) {
    return comm->backend == TN_COMM_MPI ? "MPI" : comm->backend == TN_COMM_NCCL ? "NCCL" : "single process";
}

int tn_comm_all_reduce_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_all_reduce_sum(comm, buf, n, err),
             tn_comm_nccl_host(comm, TN_NCCL_HOST_ALL_REDUCE, buf, n, TN_NCCL_FLOAT, 0, err));
}

int tn_comm_all_reduce_sum_double(const TnComm *comm, double *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_all_reduce_sum_double(comm, buf, n, err),
             tn_comm_nccl_host(comm, TN_NCCL_HOST_ALL_REDUCE, buf, n, TN_NCCL_DOUBLE, 0, err));
}

int tn_comm_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_reduce_scatter_sum(comm, buf, n, err),
             tn_comm_nccl_host(comm, TN_NCCL_HOST_REDUCE_SCATTER, buf, n, TN_NCCL_FLOAT, 0, err));
}

int tn_comm_all_gather(const TnComm *comm, float *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_all_gather(comm, buf, n, err),
             tn_comm_nccl_host(comm, TN_NCCL_HOST_ALL_GATHER, buf, n, TN_NCCL_FLOAT, 0, err));
}

/* gather through all-gather on the NCCL backend (checkpoints only: the
 * whole buffer on every rank for a moment) */
static int gather_by_all_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root,
                                TnError *err) {
    TnRange own = tn_rank_range(n, comm->size, comm->rank);
    float *whole = tn_malloc(n * sizeof *whole);
    memcpy(whole + own.begin, shard, (own.end - own.begin) * sizeof *whole);
    int rc = tn_comm_all_gather(comm, whole, n, err);
    if (!rc && comm->rank == root) memcpy(full, whole, n * sizeof *full);
    free(whole);
    return rc;
}

int tn_comm_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root, TnError *err) {
    if (comm->backend == TN_COMM_SINGLE) {
        if (full != shard) memcpy(full, shard, n * sizeof *full);
        return 0;
    }
    DISPATCH(comm, tn_comm_mpi_gather(comm, shard, full, n, root, err),
             gather_by_all_gather(comm, shard, full, n, root, err));
}

int tn_comm_broadcast(const TnComm *comm, float *buf, size_t n, int root, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_broadcast(comm, buf, n, root, err),
             tn_comm_nccl_host(comm, TN_NCCL_HOST_BROADCAST, buf, n, TN_NCCL_FLOAT, root, err));
}

int tn_comm_barrier(const TnComm *comm, TnError *err) {
    float token = 0;
    DISPATCH(comm, tn_comm_mpi_barrier(comm, err),
             tn_comm_nccl_host(comm, TN_NCCL_HOST_ALL_REDUCE, &token, 1, TN_NCCL_FLOAT, 0, err));
}

/* The GPU collectives need the GPU group, whatever the host backend. */
#ifdef TN_NCCL
#define GPU_CALL(call) return (call)
#else
#define GPU_CALL(call) return (void)sizeof(call), tn_fail(err, "GPU collectives: no NCCL in this build")
#endif

int tn_comm_gpu_all_reduce_sum(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err) {
    GPU_CALL(tn_comm_nccl_all_reduce(comm, buf, n, TN_NCCL_FLOAT, stream, err));
}

int tn_comm_gpu_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err) {
    GPU_CALL(tn_comm_nccl_reduce_scatter(comm, buf, n, stream, err));
}

int tn_comm_gpu_reduce_scatter_part(const TnComm *comm, float *part_buf, size_t n, TnRange part, void *stream,
                                    TnError *err) {
    GPU_CALL(tn_comm_nccl_reduce_scatter_part(comm, part_buf, n, part, stream, err));
}

int tn_comm_gpu_all_gather(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err) {
    GPU_CALL(tn_comm_nccl_all_gather(comm, buf, n, stream, err));
}

int tn_comm_gpu_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                                void *stream, TnError *err) {
    GPU_CALL(tn_comm_nccl_all_gather_part(comm, shard, n, part, out, stream, err));
}

/* The parts and non-blocking collectives serve the CPU's sharded training:
 * 1 for the single backend (nothing to move), 0 for MPI, -1 (err filled)
 * for NCCL, whose host collectives are for the GPU's step alone. */
static int cpu_backend(const TnComm *comm, TnError *err) {
    if (comm->backend == TN_COMM_SINGLE) return 1;
    if (USE_MPI(comm)) return 0;
    return tn_fail(err, "the CPU's data-parallel training runs under mpirun (this job has the NCCL backend)");
}

#ifdef TN_MPI
/* Each rank's elements of part (its shard of n intersected with part) as
 * MPI's int counts and displacements from part.begin (both within the
 * part, whatever n); fails when the part exceeds INT_MAX elements. */
static int part_counts(const TnComm *comm, size_t n, TnRange part, int *counts, int *displs, TnError *err) {
    if (part.end - part.begin > INT_MAX)
        return tn_fail(err, "a part of %zu elements exceeds MPI's int counts", part.end - part.begin);
    for (int r = 0; r < comm->size; r++) {
        TnRange mine = tn_range_intersect(tn_rank_range(n, comm->size, r), part);
        counts[r] = (int)(mine.end - mine.begin);
        /* an empty intersection starts at the shard's begin, which may lie far outside the part */
        if (displs) displs[r] = counts[r] ? (int)(mine.begin - part.begin) : 0;
    }
    return 0;
}
#endif

int tn_comm_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                            TnError *err) {
    TnRange own = tn_rank_range(n, comm->size, comm->rank);
#ifdef TN_NCCL
    /* the checkpoints of the GPUs' sharded moments (trainer.h) */
    if (comm->backend == TN_COMM_NCCL) return tn_comm_nccl_host_all_gather_part(comm, shard, n, part, out, err);
#endif
    int single = cpu_backend(comm, err);
    if (single) {
        if (single > 0) memcpy(out, shard + (part.begin - own.begin), (part.end - part.begin) * sizeof *out);
        return single > 0 ? 0 : -1;
    }
#ifdef TN_MPI
    TnRange mine = tn_range_intersect(own, part);
    int counts[comm->size], displs[comm->size];
    if (part_counts(comm, n, part, counts, displs, err)) return -1;
    /* a rank holding none of the part sends nothing: its shard pointer stays in place */
    const float *sent = counts[comm->rank] ? shard + (mine.begin - own.begin) : shard;
    return tn_comm_mpi_all_gather_part(comm, sent, counts, displs, out, err);
#else
    return tn_fail(err, "all-gather: no MPI in this build"); /* cpu_backend refused already */
#endif
}

/* A reduce-scatter's result where MPI leaves it (in place: at the start of
 * its part) and where it belongs (the rank's shard of the part). */
typedef struct Move {
    float *to;
    const float *from;
    size_t count;
} Move;

struct TnCommRequests {
    const TnComm *comm;
    int capacity, used;
    void *handles; /* the backend's request handles, capacity of them */
    int *counts;   /* capacity x size per-rank counts: MPI reads them until the wait */
    Move *moves;   /* one per reduce-scatter in flight */
    int n_moves;
};

TnCommRequests *tn_comm_requests_new(const TnComm *comm, int capacity) {
    TnCommRequests *q = tn_calloc(1, sizeof *q);
    q->comm = comm;
    q->capacity = capacity;
    q->counts = tn_malloc((size_t)capacity * (size_t)comm->size * sizeof *q->counts);
    q->moves = tn_malloc((size_t)capacity * sizeof *q->moves);
#ifdef TN_MPI
    q->handles = tn_malloc((size_t)capacity * tn_comm_mpi_handle_bytes());
#endif
    return q;
}

void tn_comm_requests_free(TnCommRequests *q) {
    if (!q) return;
    free(q->handles);
    free(q->counts);
    free(q->moves);
    free(q);
}

#ifdef TN_MPI
/* The next free request slot; fails when all are in flight. */
static int take_slot(TnCommRequests *q, TnError *err) {
    if (q->used == q->capacity)
        return tn_fail(err, "%d non-blocking collectives already in flight: wait for them first", q->capacity);
    return q->used++;
}
#endif

int tn_comm_all_reduce_sum_start(TnCommRequests *q, float *buf, size_t n, TnError *err) {
    int single = cpu_backend(q->comm, err);
    if (single) return (void)buf, (void)n, single > 0 ? 0 : -1; /* one rank: already the sum */
#ifdef TN_MPI
    for (size_t at = 0; at < n; at += TN_COMM_PIECE) {
        int slot = take_slot(q, err), count = (int)(n - at < TN_COMM_PIECE ? n - at : TN_COMM_PIECE);
        if (slot < 0 ||
            tn_comm_mpi_all_reduce_start(q->comm, buf + at, count, tn_comm_mpi_handle(q->handles, slot), err))
            return -1;
    }
#endif
    return 0;
}

int tn_comm_reduce_scatter_part_start(TnCommRequests *q, float *part_buf, size_t n, TnRange part, TnError *err) {
    int single = cpu_backend(q->comm, err);
    if (single) return (void)part_buf, (void)n, (void)part, single > 0 ? 0 : -1; /* the part is its own sum */
#ifdef TN_MPI
    const TnComm *comm = q->comm;
    int slot = take_slot(q, err);
    if (slot < 0) return -1;
    int *counts = q->counts + (size_t)slot * (size_t)comm->size;
    if (part_counts(comm, n, part, counts, NULL, err) ||
        tn_comm_mpi_reduce_scatter_start(comm, part_buf, counts, tn_comm_mpi_handle(q->handles, slot), err))
        return -1;
#endif
    return 0;
}

int tn_comm_reduce_scatter_sum_start(TnCommRequests *q, float *buf, size_t n, TnRange part, TnError *err) {
    if (tn_comm_reduce_scatter_part_start(q, buf + part.begin, n, part, err)) return -1;
    TnRange mine = tn_range_intersect(tn_rank_range(n, q->comm->size, q->comm->rank), part);
    if (q->comm->size > 1)
        q->moves[q->n_moves++] = (Move){.to = buf + mine.begin, .from = buf + part.begin, .count = mine.end - mine.begin};
    return 0;
}

int tn_comm_wait_all(TnCommRequests *q, TnError *err) {
    int rc = 0;
#ifdef TN_MPI
    if (USE_MPI(q->comm)) rc = tn_comm_mpi_wait_all(q->handles, q->used, err);
#else
    (void)err;
#endif
    for (int i = 0; i < q->n_moves && !rc; i++) memmove(q->moves[i].to, q->moves[i].from, q->moves[i].count * sizeof(float));
    q->used = 0;
    q->n_moves = 0;
    return rc;
}

int tn_comm_progress(TnCommRequests *q, TnError *err) {
#ifdef TN_MPI
    if (USE_MPI(q->comm)) return tn_comm_mpi_test_all(q->handles, q->used, err);
#endif
    (void)q;
    (void)err;
    return 0;
}
