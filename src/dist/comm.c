/* comm.c: the single-process backend and the dispatch to MPI (comm.h). */
#include "dist/comm.h"

#include <stdlib.h>
#include <string.h>

#include "dist/comm_mpi.h"

#ifdef TN_MPI
#define USE_MPI(comm) ((comm)->backend == TN_COMM_MPI)
#else
#define USE_MPI(comm) ((void)(comm), 0)
#endif

TnRange tn_rank_range(size_t n, int size, int rank) {
    /* n * rank stays far below 2^64 for any model and rank count */
    return (TnRange){.begin = n * (size_t)rank / (size_t)size, .end = n * (size_t)(rank + 1) / (size_t)size};
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
    return 0;
}

void tn_comm_finalize(TnComm *comm) {
#ifdef TN_MPI
    if (USE_MPI(comm)) tn_comm_mpi_finalize();
#endif
    comm->size = 1;
    comm->rank = 0;
    comm->backend = TN_COMM_SINGLE;
}

void tn_comm_abort(const TnComm *comm, int status) {
#ifdef TN_MPI
    if (USE_MPI(comm)) tn_comm_mpi_abort(status);
#else
    (void)comm;
    (void)status;
#endif
}

int tn_comm_split(const TnComm *parent, int color, int key, TnComm *child, TnError *err) {
#ifdef TN_MPI
    if (USE_MPI(parent)) return tn_comm_mpi_split(parent, color, key, child, err);
#endif
    (void)color;
    (void)key;
    (void)err;
    *child = (TnComm){.backend = parent->backend, .rank = 0, .size = 1};
    return 0;
}

void tn_comm_free(TnComm *child) {
#ifdef TN_MPI
    if (USE_MPI(child)) tn_comm_mpi_free(child);
#endif
    child->group = NULL;
}

const char *tn_comm_backend_name(const TnComm *comm) { return USE_MPI(comm) ? "MPI" : "single process"; }

/* With one rank every collective is the identity: each function below
 * returns before touching buf unless MPI is in use. */
#ifdef TN_MPI
#define DISPATCH(comm, call) return USE_MPI(comm) ? (call) : 0
#else
/* sizeof names the call without making it (no MPI code is linked), so
 * the arguments count as used */
#define DISPATCH(comm, call) return (void)(comm), (void)sizeof(call), 0
#endif

int tn_comm_all_reduce_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_all_reduce_sum(comm, buf, n, err));
}

int tn_comm_all_reduce_sum_double(const TnComm *comm, double *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_all_reduce_sum_double(comm, buf, n, err));
}

int tn_comm_reduce_scatter_sum(const TnComm *comm, float *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_reduce_scatter_sum(comm, buf, n, err));
}

int tn_comm_all_gather(const TnComm *comm, float *buf, size_t n, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_all_gather(comm, buf, n, err));
}

int tn_comm_gather(const TnComm *comm, const float *shard, float *full, size_t n, int root, TnError *err) {
#ifdef TN_MPI
    if (USE_MPI(comm)) return tn_comm_mpi_gather(comm, shard, full, n, root, err);
#endif
    (void)root;
    (void)err;
    if (comm->size == 1 && full != shard) memcpy(full, shard, n * sizeof *full);
    return 0;
}

int tn_comm_broadcast(const TnComm *comm, float *buf, size_t n, int root, TnError *err) {
    DISPATCH(comm, tn_comm_mpi_broadcast(comm, buf, n, root, err));
}

int tn_comm_barrier(const TnComm *comm, TnError *err) { DISPATCH(comm, tn_comm_mpi_barrier(comm, err)); }
