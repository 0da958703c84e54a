/* comm_nccl.h: the NCCL backend of comm.h (compiled with -DTN_NCCL only).
 * Same contracts as comm.h's functions of the like names; comm.c
 * dispatches to them. Device buffers are enqueued on stream (NULL: the
 * group's own) without waiting; host buffers are copied to a device
 * staging buffer of the group (64 MiB, a chunk at a time), reduced there
 * and copied back (blocking). */
#ifndef TN_DIST_COMM_NCCL_H
#define TN_DIST_COMM_NCCL_H

#include "dist/comm.h"

typedef enum TnNcclType { TN_NCCL_FLOAT, TN_NCCL_DOUBLE } TnNcclType;

int tn_comm_nccl_gpu_init(TnComm *comm, const char *dist_init, TnError *err);
/* The GPU group of child, the sub-group of parent's ranks passing color
 * (ranked by key, then parent rank; tn_comm_split): ncclCommSplit of
 * parent's communicator, collective over parent; sets child's rank and
 * size. */
int tn_comm_nccl_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err);
/* Destroys the communicator (every rank, at the end). */
void tn_comm_nccl_gpu_free(TnComm *comm);
/* Aborts the communicator, so that no rank stays blocked in NCCL; it is
 * not used after (tn_comm_nccl_gpu_free then frees the rest). */
void tn_comm_nccl_abort(const TnComm *comm);

int tn_comm_nccl_all_reduce(const TnComm *comm, void *buf, size_t n, TnNcclType type, void *stream, TnError *err);
int tn_comm_nccl_reduce_scatter(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err);
int tn_comm_nccl_reduce_scatter_part(const TnComm *comm, float *part_buf, size_t n, TnRange part, void *stream,
                                     TnError *err);
int tn_comm_nccl_all_gather(const TnComm *comm, float *buf, size_t n, void *stream, TnError *err);
int tn_comm_nccl_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                                 void *stream, TnError *err);
int tn_comm_nccl_broadcast(const TnComm *comm, float *buf, size_t n, int root, void *stream, TnError *err);

/* The host collectives of the NCCL backend. */
typedef enum TnNcclHostOp {
    TN_NCCL_HOST_ALL_REDUCE, TN_NCCL_HOST_REDUCE_SCATTER, TN_NCCL_HOST_ALL_GATHER, TN_NCCL_HOST_BROADCAST
} TnNcclHostOp;
/* op on host buf (n elements of type; root for the broadcast). */
int tn_comm_nccl_host(const TnComm *comm, TnNcclHostOp op, void *buf, size_t n, TnNcclType type, int root,
                      TnError *err);

/* tn_comm_all_gather_part on host buffers, through the staging buffer. */
int tn_comm_nccl_host_all_gather_part(const TnComm *comm, const float *shard, size_t n, TnRange part, float *out,
                                      TnError *err);

#endif
