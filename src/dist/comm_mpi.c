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

/* The largest count or displacement one MPI call takes here (MPI's int;
 * tests lower it, tn_comm_mpi_limit_counts), and the elements a call
 * carries in the collectives sent in pieces. */
static size_t count_limit = INT_MAX;

void tn_comm_mpi_limit_counts(size_t limit) { count_limit = limit; }

static size_t piece_size(void) { return count_limit < TN_COMM_PIECE ? count_limit : TN_COMM_PIECE; }

/* The elements of [at, end) that one call carries. */
static int piece_count(size_t at, size_t end) { return (int)(end - at < piece_size() ? end - at : piece_size()); }

int tn_comm_mpi_all_reduce_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    for (size_t at = 0; at < n; at += piece_size()) {
        if (check(MPI_Allreduce(MPI_IN_PLACE, buf + at, piece_count(at, n), MPI_FLOAT, MPI_SUM, communicator(comm)),
                  "all-reduce", err))
            return -1;
    }
    return 0;
}

int tn_comm_mpi_all_reduce_sum_double(const TnComm *comm, double *buf, size_t n, TnError *err) {
    for (size_t at = 0; at < n; at += piece_size()) {
        if (check(MPI_Allreduce(MPI_IN_PLACE, buf + at, piece_count(at, n), MPI_DOUBLE, MPI_SUM, communicator(comm)),
                  "all-reduce", err))
            return -1;
    }
    return 0;
}

int tn_comm_mpi_broadcast(const TnComm *comm, float *buf, size_t n, int root, TnError *err) {
    for (size_t at = 0; at < n; at += piece_size()) {
        if (check(MPI_Bcast(buf + at, piece_count(at, n), MPI_FLOAT, root, communicator(comm)), "broadcast", err))
            return -1;
    }
    return 0;
}

/* Per-rank counts and displacements of the shards of n as MPI takes them
 * (int; caller frees both). Returns 0, allocating nothing, when a shard's
 * size or place exceeds count_limit: the collectives then move each
 * rank's shard on its own, in pieces with size_t offsets (one call per
 * piece and rank instead of one call: slower, but any n works). */
static int shard_counts(const TnComm *comm, size_t n, int **counts, int **displs) {
    /* the last shard starts furthest and the shards differ by at most one element */
    TnRange last = tn_rank_range(n, comm->size, comm->size - 1), first = tn_rank_range(n, comm->size, 0);
    if (last.begin > count_limit || first.end - first.begin > count_limit || last.end - last.begin > count_limit)
        return 0;
    *counts = tn_malloc((size_t)comm->size * sizeof **counts);
    *displs = tn_malloc((size_t)comm->size * sizeof **displs);
    for (int r = 0; r < comm->size; r++) {
        TnRange s = tn_rank_range(n, comm->size, r);
        (*counts)[r] = (int)(s.end - s.begin);
        (*displs)[r] = (int)s.begin;
    }
    return 1;
}

/* The reduce-scatter shard by shard: each rank's shard summed into place
 * at its owner. */
static int reduce_each_shard(const TnComm *comm, float *buf, size_t n, TnError *err) {
    for (int r = 0; r < comm->size; r++) {
        TnRange s = tn_rank_range(n, comm->size, r);
        for (size_t at = s.begin; at < s.end; at += piece_size()) {
            /* in place at the owner; the others send (their receive buffer is not read) */
            int owner = r == comm->rank;
            if (check(MPI_Reduce(owner ? MPI_IN_PLACE : buf + at, owner ? buf + at : NULL, piece_count(at, s.end),
                                 MPI_FLOAT, MPI_SUM, r, communicator(comm)),
                      "reduce", err))
                return -1;
        }
    }
    return 0;
}

/* The gather shard by shard: each rank sends its shard to root. */
static int gather_each_shard(const TnComm *comm, const float *shard, float *full, size_t n, int root,
                             TnError *err) {
    for (int r = 0; r < comm->size; r++) {
        TnRange s = tn_rank_range(n, comm->size, r);
        if (r == root && comm->rank == root) memcpy(full + s.begin, shard, (s.end - s.begin) * sizeof *full);
        for (size_t at = s.begin; at < s.end && r != root; at += piece_size()) {
            int count = piece_count(at, s.end), rc = MPI_SUCCESS;
            if (comm->rank == r) rc = MPI_Send(shard + (at - s.begin), count, MPI_FLOAT, root, 0, communicator(comm));
            else if (comm->rank == root)
                rc = MPI_Recv(full + at, count, MPI_FLOAT, r, 0, communicator(comm), MPI_STATUS_IGNORE);
            if (check(rc, "gather", err)) return -1;
        }
    }
    return 0;
}

int tn_comm_mpi_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    int *counts, *displs;
    if (!shard_counts(comm, n, &counts, &displs)) return reduce_each_shard(comm, buf, n, err);
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
    if (!shard_counts(comm, n, &counts, &displs)) {
        for (int r = 0; r < comm->size; r++) { /* each shard broadcast from its owner */
            TnRange s = tn_rank_range(n, comm->size, r);
            if (tn_comm_mpi_broadcast(comm, buf + s.begin, s.end - s.begin, r, err)) return -1;
        }
        return 0;
    }
    int rc = check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, communicator(comm)),
                   "all-gather", err);
    free(counts);
    free(displs);
    return rc;
}

int tn_comm_mpi_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root, TnError *err) {
    int *counts, *displs;
    if (!shard_counts(comm, n, &counts, &displs)) return gather_each_shard(comm, shard, full, n, root, err);
    int rc = check(MPI_Gatherv(shard, counts[comm->rank], MPI_FLOAT, full, counts, displs, MPI_FLOAT, root,
                               communicator(comm)), "gather", err);
    free(counts);
    free(displs);
    return rc;
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
