/* comm_mpi.h: the MPI backend of comm.h (compiled with -DTN_MPI only):
 * MPI_COMM_WORLD, or the communicator of a sub-group in TnComm.group.
 * Same contracts as the functions of comm.h of the same names; comm.c
 * dispatches to them when comm->backend is TN_COMM_MPI. */
#ifndef TN_DIST_COMM_MPI_H
#define TN_DIST_COMM_MPI_H

#include "dist/comm.h"

int tn_comm_mpi_init(TnComm *comm, TnError *err);
void tn_comm_mpi_finalize(void);
void tn_comm_mpi_abort(int status);
int tn_comm_mpi_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err);
void tn_comm_mpi_free(TnComm *child);
int tn_comm_mpi_all_reduce_sum(const TnComm *comm, float *buf, size_t n, TnError *err);
int tn_comm_mpi_all_reduce_sum_double(const TnComm *comm, double *buf, size_t n, TnError *err);
int tn_comm_mpi_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, TnError *err);
int tn_comm_mpi_all_gather(const TnComm *comm, float *buf, size_t n, TnError *err);
int tn_comm_mpi_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root, TnError *err);
int tn_comm_mpi_broadcast(const TnComm *comm, float *buf, size_t n, int root, TnError *err);
int tn_comm_mpi_barrier(const TnComm *comm, TnError *err);
/* bytes bytes of buf on every rank = root's (the NCCL id). */
int tn_comm_mpi_broadcast_bytes(const TnComm *comm, void *buf, size_t bytes, int root, TnError *err);
/* comm.c's parts and non-blocking collectives: counts and displacements
 * per rank as MPI takes them; a handle is one MPI_Request of an array. */
int tn_comm_mpi_all_gather_part(const TnComm *comm, const float *mine, const int *counts, const int *displs,
                                float *out, TnError *err);
size_t tn_comm_mpi_handle_bytes(void);
void *tn_comm_mpi_handle(void *handles, int index);
int tn_comm_mpi_all_reduce_start(const TnComm *comm, float *buf, int count, void *handle, TnError *err);
int tn_comm_mpi_reduce_scatter_start(const TnComm *comm, float *buf, const int *counts, void *handle, TnError *err);
int tn_comm_mpi_wait_all(void *handles, int count, TnError *err);
int tn_comm_mpi_test_all(void *handles, int count, TnError *err);

/* For tests: the largest count or displacement one MPI call is given
 * (INT_MAX, MPI's int, unless lowered here). Shards beyond it go shard by
 * shard, and every collective sent in pieces sends pieces of at most this
 * many elements, so a test reaches those paths with small buffers. */
void tn_comm_mpi_limit_counts(size_t limit);
#endif
