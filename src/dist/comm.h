/* comm.h: the collectives of data-parallel training, behind one interface.
 *
 * A TnComm is one process's membership in a group of `size` processes
 * (ranks 0..size-1) that run the same program on the same flat parameter
 * buffer (model/params.h). Two backends:
 *   - single: one process, size 1; every collective leaves the buffer as it is.
 *   - MPI (built where mpicc/mpi.h is found, -DTN_MPI): MPI_COMM_WORLD of a
 *     job launched by `mpirun -np N` (OpenMPI, or any launcher that sets
 *     PMI/PMIx variables), or a sub-group of it (tn_comm_split). The
 *     collectives are MPI's; no communication code of our own.
 * (An NCCL backend for GPU buffers would sit beside these two; it is not
 * written yet.)
 *
 * Every collective is blocking and must be called by every rank in the same
 * order with the same n. Buffers are caller-owned float32 arrays of n
 * elements laid out like the parameters; a rank's shard is the contiguous
 * range tn_rank_range(n, size, rank), so a ZeRO shard of the parameters,
 * gradients or moments is a range of the flat buffer. Sums are taken in an
 * order the backend chooses: results agree with a serial sum to float32
 * rounding, not bit for bit.
 *
 * Limits: MPI counts are int, so one rank's shard holds at most INT_MAX
 * elements (2^31 - 1: a 175B model needs >= 82 ranks for ZeRO); all-reduce
 * and broadcast have no limit (sent in pieces). Errors are returned with
 * err filled; a failed collective leaves the group unusable: abort the job.
 */
#ifndef TN_DIST_COMM_H
#define TN_DIST_COMM_H

#include <stddef.h>

#include "util/error.h"

typedef enum TnCommBackend { TN_COMM_SINGLE, TN_COMM_MPI } TnCommBackend;

typedef struct TnComm {
    TnCommBackend backend;
    int rank, size;
    void *group; /* the backend's handle of a sub-group made by tn_comm_split
                  * (owned, freed by tn_comm_free); NULL: the whole job */
} TnComm;

/* A contiguous range [begin, end) of a flat buffer. */
typedef struct TnRange {
    size_t begin, end;
} TnRange;

/* Rank `rank`'s share of n elements split as evenly as possible over size
 * ranks: [n rank / size, n (rank + 1) / size). */
TnRange tn_rank_range(size_t n, int size, int rank);

/* Joins the job this process was launched in: MPI when an MPI launcher
 * started it and this tnllm is built with MPI, else the single backend.
 * Fails when a launcher asks for several ranks and MPI is not built in. */
int tn_comm_init(TnComm *comm, TnError *err);
/* Leaves the group (MPI_Finalize); every rank calls it once at the end. */
void tn_comm_finalize(TnComm *comm);
/* Ends every rank of the job with `status` (a rank that failed alone
 * would leave the others waiting in a collective); returns only for the
 * single backend. */
void tn_comm_abort(const TnComm *comm, int status);
/* Splits parent into sub-groups (MPI_Comm_split): the ranks passing the
 * same color form one group, ranked by key. Collective over parent. child
 * is a TnComm like any other (every collective below works on it); free it
 * with tn_comm_free before tn_comm_finalize. With the single backend the
 * child is the single process again. Tensor parallelism (dist/
 * tensor_parallel.h) groups the ranks this way into tensor and data groups. */
int tn_comm_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err);
void tn_comm_free(TnComm *child);
/* "MPI" or "single process" */
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

#endif
