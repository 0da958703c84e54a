/* comm.h: the collectives of data-parallel training, behind one interface.
 *
 * A TnComm is one process's membership in a group of `size` processes
 * (ranks 0..size-1) that run the same program on the same flat parameter
 * buffer (model/params.h). Backends of the host collectives:
 *   - single: one process, size 1; every collective leaves the buffer as it is.
 *   - MPI (built where mpicc/mpi.h is found, -DTN_MPI): MPI_COMM_WORLD of a
 *     job launched by `mpirun -np N` (OpenMPI, or any launcher that sets
 *     PMI/PMIx variables), or a sub-group of it (tn_comm_split). The
 *     collectives are MPI's; no communication code of our own.
 *   - NCCL (built where the Makefile finds NCCL, -DTN_NCCL): a job started
 *     without MPI, by torchrun or Slurm (dist/launch.h); the host
 *     collectives go through the GPU group below (copied to the GPU and
 *     back), so they wait for tn_comm_gpu_init.
 * The GPU collectives (tn_comm_gpu_*, on device memory) are NCCL's, over a
 * communicator that tn_comm_gpu_init creates on the rank's GPU under
 * either launch: its unique id goes from rank 0 by MPI_Bcast under mpirun,
 * else through --dist-init (a file or TCP, launch.h).
 *
 * Every collective is blocking unless named _start, and must be called by
 * every rank in the same order with the same n. Buffers are caller-owned
 * float32 arrays of n elements laid out like the parameters; a rank's shard
 * is the contiguous range tn_rank_range(n, size, rank), so a ZeRO shard of
 * the parameters, gradients or moments is a range of the flat buffer. Sums
 * are taken in an order the backend chooses: results agree with a serial
 * sum to float32 rounding, not bit for bit.
 *
 * Limits: MPI's counts and displacements are int. All-reduce and broadcast
 * go in pieces; where the shards of n lie beyond int (n > 2^31 - 1), the
 * MPI backend's reduce-scatter, all-gather and gather move each rank's
 * shard on its own, in pieces (a call per piece and rank), so n has no
 * limit; a part (below) holds at most 2^31 - 1 elements. Errors are returned with
 * err filled; a failed collective leaves the group unusable: abort the job.
 */
#ifndef TN_DIST_COMM_H
#define TN_DIST_COMM_H

#include <stddef.h>

#include "util/error.h"

/* Elements one MPI call carries in the collectives sent in pieces
 * (all-reduce, broadcast, the shards beyond int offsets): larger buffers go
 * in pieces of this many, the non-blocking all-reduce taking a request for
 * each. */
#define TN_COMM_PIECE ((size_t)1 << 30)

typedef enum TnCommBackend { TN_COMM_SINGLE, TN_COMM_MPI, TN_COMM_NCCL } TnCommBackend;

typedef struct TnCommGpu TnCommGpu; /* NCCL's communicator and stream (comm_nccl.c) */

typedef struct TnComm {
    TnCommBackend backend; /* of the host collectives */
    int rank, size;
    int local_rank;        /* the rank's index on its machine: its GPU */
    TnCommGpu *gpu;        /* NULL until tn_comm_gpu_init */
    void *group; /* the backend's handle of a sub-group made by tn_comm_split
                  * (owned, freed by tn_comm_free); NULL: the whole job */
} TnComm;

/* A contiguous range [begin, end) of a flat buffer. */
typedef struct TnRange {
    size_t begin, end;
} TnRange;

/* The elements a and b share (empty: begin == end). */
TnRange tn_range_intersect(TnRange a, TnRange b);

/* Rank `rank`'s share of n elements split as evenly as possible over size
 * ranks: [n rank / size, n (rank + 1) / size). */
TnRange tn_rank_range(size_t n, int size, int rank);

/* Joins the job this process was launched in: MPI when an MPI launcher
 * started it and this tnllm is built with MPI; NCCL when torchrun's or
 * Slurm's variables (launch.h) name several ranks and no MPI launcher
 * started it (its collectives wait for tn_comm_gpu_init); else the single
 * backend. Fails when a launcher asks for several ranks and the backend
 * is not built in, or on malformed launch variables. */
int tn_comm_init(TnComm *comm, TnError *err);
/* Leaves the group (the GPU group, MPI_Finalize); every rank calls it once
 * at the end. */
void tn_comm_finalize(TnComm *comm);
/* Ends every rank of the job with `status` (a rank that failed alone
 * would leave the others waiting in a collective); returns only for the
 * single backend. */
void tn_comm_abort(const TnComm *comm, int status);
/* Splits parent into sub-groups (MPI_Comm_split): the ranks passing the
 * same color form one group, ranked by key. Collective over parent. child
 * is a TnComm like any other (every collective below works on it), on the
 * parent's GPU; free it with tn_comm_free before tn_comm_finalize. Where
 * the parent's GPU group is started (tn_comm_gpu_init), the child gets its
 * own, split from it alike (ncclCommSplit): the only way the NCCL backend
 * splits (it refuses before tn_comm_gpu_init). With the single backend the
 * child is the single process again. Tensor parallelism (dist/
 * tensor_parallel.h) groups the ranks this way into tensor and data groups. */
int tn_comm_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err);
/* Frees a child (once: a freed child is empty, and freeing it again does
 * nothing). */
void tn_comm_free(TnComm *child);
/* tn_comm_free after a failure that may leave the child's other ranks
 * waiting in a collective: its GPU communicator is aborted (ncclCommAbort),
 * not destroyed (which may wait for them), so call it before freeing GPU
 * memory (cudaFree waits for the GPU); the caller then ends the job
 * (tn_comm_abort). */
void tn_comm_free_failed(TnComm *child);
/* "MPI", "NCCL" or "single process" */
const char *tn_comm_backend_name(const TnComm *comm);

/* buf[i] = sum over ranks of buf[i], on every rank. */
int tn_comm_all_reduce_sum(const TnComm *comm, float *buf, size_t n, TnError *err);
int tn_comm_all_reduce_sum_double(const TnComm *comm, double *buf, size_t n, TnError *err);
/* On return the rank's shard of buf holds the sum over ranks of that
 * range; the rest of buf is unspecified. */
int tn_comm_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, TnError *err);
/* Every rank contributes its shard of buf; on return all of buf holds
 * every rank's shard. */
int tn_comm_all_gather(const TnComm *comm, float *buf, size_t n, TnError *err);
/* Rank root receives every rank's shard (shard: the rank's
 * tn_rank_range(n, ...) elements) into full (n elements; NULL on other
 * ranks). */
int tn_comm_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root, TnError *err);
/* buf on every rank = buf of rank root. */
int tn_comm_broadcast(const TnComm *comm, float *buf, size_t n, int root, TnError *err);
int tn_comm_barrier(const TnComm *comm, TnError *err);

/* Parts of a sharded flat buffer. buf has n elements, sharded by
 * tn_rank_range(n, size, rank); a part is any range [part.begin, part.end)
 * of it (dist/fsdp.h gathers a model one layer at a time, and
 * dist/grad_reduce.h reduces its gradients so). The parts and the
 * non-blocking collectives below serve the CPU's training: the single and
 * MPI backends (the NCCL backend refuses them with a message, but for
 * the all-gather of a part, with which rank 0 writes the checkpoints of
 * the GPUs' sharded moments).
 * out (part.end - part.begin elements) receives the part, each element
 * from the rank whose shard holds it; shard holds this rank's shard of buf
 * (shard[0] is element tn_rank_range(...).begin). Blocking. */
int tn_comm_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                            TnError *err);

/* Non-blocking collectives: up to `capacity` in flight at once, started in
 * the same order on every rank, completed together by tn_comm_wait_all
 * (gradient reduction overlapped with the backward, dist/grad_reduce.h).
 * Between its start and the wait, a collective's elements of buf must be
 * neither read nor written; buf stays owned by the caller and must outlive
 * the wait. The requests' own memory is allocated once, by
 * tn_comm_requests_new: starting and waiting allocate nothing. */
typedef struct TnCommRequests TnCommRequests;

TnCommRequests *tn_comm_requests_new(const TnComm *comm, int capacity);
void tn_comm_requests_free(TnCommRequests *requests);
/* Starts buf[i] = sum over ranks of buf[i] (n elements, taking one
 * request per TN_COMM_PIECE of them). */
int tn_comm_all_reduce_sum_start(TnCommRequests *requests, float *buf, size_t n, TnError *err);
/* Starts the reduce-scatter of part of buf (n elements, sharded as
 * above): once waited for, the elements of part inside this rank's shard
 * hold the sum over ranks; part's other elements are unspecified. Parts of
 * the requests in flight must not overlap. tn_comm_reduce_scatter_sum is
 * the part [0, n), blocking. */
int tn_comm_reduce_scatter_sum_start(TnCommRequests *requests, float *buf, size_t n, TnRange part, TnError *err);
/* The same with a buffer of the part alone (part_buf[0] is element
 * part.begin of the n): once waited for, part_buf[0 .. k) holds the sum
 * over ranks of this rank's k elements of part (part intersected with
 * its shard; they start at part_buf[0] whatever their place in part). */
int tn_comm_reduce_scatter_part_start(TnCommRequests *requests, float *part_buf, size_t n, TnRange part,
                                      TnError *err);
/* Completes every collective started since the last wait (it lets them
 * progress too: MPI moves data only inside its calls). */
int tn_comm_wait_all(TnCommRequests *requests, TnError *err);
/* Lets the collectives in flight progress without waiting. */
int tn_comm_progress(TnCommRequests *requests, TnError *err);

/* The GPU group: selects the rank's GPU (local_rank: one GPU per rank of
 * a machine) and starts an NCCL communicator of all ranks on it.
 * dist_init is launch.h's file:PATH or tcp://HOST:PORT, needed by the
 * NCCL backend only (under MPI the id goes by MPI_Bcast). Collective. */
int tn_comm_gpu_init(TnComm *comm, const char *dist_init, TnError *err);
/* The GPU collectives, on device buffers: enqueued on stream (a
 * cudaStream_t; NULL: the group's own) and returning without waiting, so
 * that work queued after them on that stream sees their result. Shards as
 * for the host collectives. */
int tn_comm_gpu_all_reduce_sum(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err);
int tn_comm_gpu_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err);
int tn_comm_gpu_all_gather(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err);
/* The reduce-scatter of one part (dist/grad_reduce_gpu.h: a layer's
 * gradients, as the backward leaves it): part_buf holds the part
 * (part_buf[0] is element part.begin of the n); afterwards the part's
 * elements in this rank's shard hold the sum over ranks, in their places;
 * the part's other elements are unspecified. */
int tn_comm_gpu_reduce_scatter_part(const TnComm *comm, float *part_buf, size_t n, TnRange part, void *stream,
                                    TnError *err);
/* The all-gather of one part (dist/fsdp_gpu.h: a layer's parameters, just
 * before a pass reads it), as tn_comm_all_gather_part on device buffers:
 * out (the part's elements) receives each from the rank whose shard
 * (device: its range of the n, shard[0] its first element) holds it. */
int tn_comm_gpu_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                                void *stream, TnError *err);

#endif
