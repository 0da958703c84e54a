/* comm_mpi.c: comm.h on MPI_COMM_WORLD or a communicator split from it
 * (OpenMPI). */
#include "dist/comm_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int check(int rc, const char *what, TnError *err) {
    if (rc == MPI_SUCCESS) return 0;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(rc, text, &length);
    return tn_fail(err, "MPI %s failed: %.*s", what, length, text);
}

/* The communicator of comm: a sub-group's, else the whole job's. */
static MPI_Comm communicator(const TnComm *comm) { return comm->group ? *(MPI_Comm *)comm->group : MPI_COMM_WORLD; }

int tn_comm_mpi_init(TnComm *comm, TnError *err) {
    int provided, initialized;
    MPI_Initialized(&initialized);
    /* OpenMP threads compute; only the main thread calls MPI */
    if (!initialized && check(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "init", err)) return -1;
    comm->backend = TN_COMM_MPI;
    if (check(MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank), "rank", err) ||
        check(MPI_Comm_size(MPI_COMM_WORLD, &comm->size), "size", err))
        return -1;
    /* the local rank (a GPU per rank of a machine): the rank among those sharing its memory */
    MPI_Comm node;
    if (check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, comm->rank, MPI_INFO_NULL, &node),
              "split by node", err))
        return -1;
    int rc = check(MPI_Comm_rank(node, &comm->local_rank), "local rank", err);
    return check(MPI_Comm_free(&node), "free", rc ? NULL : err) || rc ? -1 : 0;
}

void tn_comm_mpi_finalize(void) {
    int finalized;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

void tn_comm_mpi_abort(int status) { MPI_Abort(MPI_COMM_WORLD, status); }

int tn_comm_mpi_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err) {
    MPI_Comm *group = tn_malloc(sizeof *group);
    *child = (TnComm){.backend = TN_COMM_MPI};
    if (check(MPI_Comm_split(communicator(parent), color, key, group), "split", err)) {
        free(group);
        return -1;
    }
    child->group = group;
    if (check(MPI_Comm_rank(*group, &child->rank), "rank", err) ||
        check(MPI_Comm_size(*group, &child->size), "size", err)) {
        tn_comm_mpi_free(child); /* the group split above is the caller's to forget */
        child->group = NULL;
        return -1;
    }
    return 0;
}

void tn_comm_mpi_free(TnComm *child) {
    if (!child->group) return;
    MPI_Comm_free(child->group);
    free(child->group);
}

int tn_comm_mpi_all_reduce_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    for (size_t at = 0; at < n; at += TN_COMM_PIECE) {
        int count = (int)(n - at < TN_COMM_PIECE ? n - at : TN_COMM_PIECE);
        if (check(MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, communicator(comm)), "all-reduce", err))
            return -1;
    }
    return 0;
}

int tn_comm_mpi_all_reduce_sum_double(const TnComm *comm, double *buf, size_t n, TnError *err) {
    for (size_t at = 0; at < n; at += TN_COMM_PIECE) {
        int count = (int)(n - at < TN_COMM_PIECE ? n - at : TN_COMM_PIECE);
        if (check(MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_DOUBLE, MPI_SUM, communicator(comm)), "all-reduce",
                  err))
            return -1;
    }
    return 0;
}

/* Per-rank counts and displacements of the shards of n (int, as MPI takes
 * them); fails when a shard exceeds INT_MAX. Caller frees both. */
static int shard_counts(const TnComm *comm, size_t n, int **counts, int **displs, TnError *err) {
    TnRange last = tn_rank_range(n, comm->size, comm->size - 1), first = tn_rank_range(n, comm->size, 0);
    /* the last shard starts furthest and the shards differ by at most one element */
    if (last.begin > INT_MAX || first.end - first.begin > INT_MAX || last.end - last.begin > INT_MAX)
        return tn_fail(err, "MPI: %zu elements over %d ranks give shards beyond MPI's int counts; use more ranks",
                       n, comm->size);
    *counts = tn_malloc((size_t)comm->size * sizeof **counts);
    *displs = tn_malloc((size_t)comm->size * sizeof **displs);
    for (int r = 0; r < comm->size; r++) {
        TnRange s = tn_rank_range(n, comm->size, r);
        (*counts)[r] = (int)(s.end - s.begin);
        (*displs)[r] = (int)s.begin;
    }
    return 0;
}

int tn_comm_mpi_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    int *counts, *displs;
    if (shard_counts(comm, n, &counts, &displs, err)) return -1;
    /* in place, MPI leaves the rank's sum at the start of buf: move it to its shard */
    int rc = check(MPI_Reduce_scatter(MPI_IN_PLACE, buf, counts, MPI_FLOAT, MPI_SUM, communicator(comm)),
                   "reduce-scatter", err);
    if (!rc) memmove(buf + displs[comm->rank], buf, (size_t)counts[comm->rank] * sizeof *buf);
    free(counts);
    free(displs);
    return rc;
}

int tn_comm_mpi_all_gather(const TnComm *comm, float *buf, size_t n, TnError *err) {
    int *counts, *displs;
    if (shard_counts(comm, n, &counts, &displs, err)) return -1;
    int rc = check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, communicator(comm)),
                   "all-gather", err);
    free(counts);
    free(displs);
    return rc;
}

int tn_comm_mpi_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root, TnError *err) {
    int *counts, *displs;
    if (shard_counts(comm, n, &counts, &displs, err)) return -1;
    int rc = check(MPI_Gatherv(shard, counts[comm->rank], MPI_FLOAT, full, counts, displs, MPI_FLOAT, root,
                               communicator(comm)), "gather", err);
    free(counts);
    free(displs);
    return rc;
}

int tn_comm_mpi_broadcast(const TnComm *comm, float *buf, size_t n, int root, TnError *err) {
    for (size_t at = 0; at < n; at += TN_COMM_PIECE) {
        int count = (int)(n - at < TN_COMM_PIECE ? n - at : TN_COMM_PIECE);
        if (check(MPI_Bcast(buf + at, count, MPI_FLOAT, root, communicator(comm)), "broadcast", err)) return -1;
    }
    return 0;
}

int tn_comm_mpi_broadcast_bytes(const TnComm *comm, void *buf, size_t bytes, int root, TnError *err) {
    if (bytes > INT_MAX) return tn_fail(err, "MPI broadcast of %zu bytes: beyond int counts", bytes);
    return check(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, communicator(comm)), "broadcast", err);
}

int tn_comm_mpi_barrier(const TnComm *comm, TnError *err) { return check(MPI_Barrier(communicator(comm)), "barrier", err); }

int tn_comm_mpi_all_gather_part(const TnComm *comm, const float *mine, const int *counts, const int *displs,
                                float *out, TnError *err) {
    return check(MPI_Allgatherv(mine, counts[comm->rank], MPI_FLOAT, out, counts, displs, MPI_FLOAT,
                                communicator(comm)),
                 "all-gather", err);
}

size_t tn_comm_mpi_handle_bytes(void) { return sizeof(MPI_Request); }

void *tn_comm_mpi_handle(void *handles, int index) { return (MPI_Request *)handles + index; }

int tn_comm_mpi_all_reduce_start(const TnComm *comm, float *buf, int count, void *handle, TnError *err) {
    return check(MPI_Iallreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, communicator(comm), handle),
                 "all-reduce", err);
}

int tn_comm_mpi_reduce_scatter_start(const TnComm *comm, float *buf, const int *counts, void *handle, TnError *err) {
    /* in place: the rank's sum lands at the start of buf (comm.c moves it) */
    return check(MPI_Ireduce_scatter(MPI_IN_PLACE, buf, counts, MPI_FLOAT, MPI_SUM, communicator(comm), handle),
                 "reduce-scatter", err);
}

int tn_comm_mpi_wait_all(void *handles, int count, TnError *err) {
    return check(MPI_Waitall(count, handles, MPI_STATUSES_IGNORE), "wait", err);
}

int tn_comm_mpi_test_all(void *handles, int count, TnError *err) {
    int done;
    return check(MPI_Testall(count, handles, &done, MPI_STATUSES_IGNORE), "test", err);
}
