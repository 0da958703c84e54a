/* check_dist.c: the GPU collectives of dist/comm.h (NCCL) on every GPU of
 * the machine.
 *
 * Needs CUDA devices and NCCL, so it is no `make test` binary: `make`
 * builds it where the Makefile finds NCCL. It forks one rank per GPU with
 * torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK: the launch without
 * MPI of dist/launch.h); the ranks join through a file init (--dist-init
 * file:PATH in a fresh directory). Each rank fills device buffers of n =
 * 1, 1001 (shards of unequal length) and 2^20 + 3 elements with values
 * drawn from (seed, rank, index) and checks against the host's float64
 * computation of the same values:
 *  - all-reduce: every element within (ranks) x 2^-23 of the sum of the
 *    terms' magnitudes (float32 rounding of a sum of that many terms, in
 *    whatever order NCCL adds them);
 *  - reduce-scatter: the rank's shard (tn_rank_range), the same bound;
 *  - all-gather: every shard from its owner, exactly;
 *  - the reduce-scatter of a part (ZeRO-2's per-layer reduction: a buffer
 *    holding elements [n/7, n - n/5) of the n, whose ends cut shards), the
 *    rank's elements of the part, the same bound;
 *  - the all-gather of that part (ZeRO-3's per-layer gather: each rank
 *    sends from a buffer of its shard alone into a buffer of the part,
 *    filled with NaN before), every element from its owner, exactly;
 *  - with several ranks, the host collectives of the NCCL backend (the
 *    trainer's loss sum: a float64 all-reduce, a broadcast, and the
 *    all-gather of a part with which rank 0 writes the checkpoint of
 *    sharded moments), exactly for the broadcast and the gather, within
 *    1e-12 relative for the sum.
 *  - with several ranks, the sub-groups of tn_comm_split (tensor
 *    parallelism's groups, dist/tensor_parallel.h): pairs of consecutive
 *    ranks (and a last one alone) get their own NCCL group split from the
 *    job's; each rank's rank and size in it, and an all-reduce on it within
 *    the bound above of the float64 sum of its members' values.
 * Each rank prints "rank R: N passed, M failed"; the parent prints the
 * total, "check_dist: N passed, M failed" (tests/cuda/gpu_ranks.h).
 * Usage: check_dist [--gpus N] [--seed S]   (default: every GPU, seed 1)
 */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist/comm.h"
#include "gpu_ranks.h"
#include "test.h"
#include "util/rng.h"

static float value(uint64_t seed, int rank, size_t i) {
    TnRng rng;
    tn_rng_seed(&rng, seed, (uint64_t)rank * 1000003u + i);
    return (float)(tn_rng_uniform(&rng) * 2.0 - 1.0);
}

/* |result - exact sum over ranks| / sum of the terms' magnitudes */
static double sum_error(int ranks, uint64_t seed, size_t i, float result) {
    double sum = 0, magnitude = 0;
    for (int r = 0; r < ranks; r++) {
        double term = value(seed, r, i);
        sum += term;
        magnitude += fabs(term);
    }
    return fabs(result - sum) / magnitude;
}

static int cuda_ok(cudaError_t rc, const char *what) {
    if (rc != cudaSuccess) fprintf(stderr, "CUDA %s: %s\n", what, cudaGetErrorString(rc));
    return rc == cudaSuccess;
}

enum { ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER, REDUCE_SCATTER_PART };

/* The part of n the part reduce-scatter takes. */
static TnRange part_of(size_t n) { return (TnRange){n / 7, n - n / 5}; }

/* Copies host to device, runs op, waits and copies back: n floats, or for
 * the part reduce-scatter the part's (host[0] is element part.begin). */
static int device_round_trip(const TnComm *comm, float *host, float *device, size_t n, int op, TnError *err) {
    TnRange part = part_of(n);
    size_t count = op == REDUCE_SCATTER_PART ? part.end - part.begin : n;
    if (!cuda_ok(cudaMemcpy(device, host, count * sizeof *host, cudaMemcpyHostToDevice), "copy to the GPU")) return -1;
    int rc = op == ALL_REDUCE       ? tn_comm_gpu_all_reduce_sum(comm, device, n, NULL, err)
             : op == REDUCE_SCATTER ? tn_comm_gpu_reduce_scatter_sum(comm, device, n, NULL, err)
             : op == ALL_GATHER     ? tn_comm_gpu_all_gather(comm, device, n, NULL, err)
                                    : tn_comm_gpu_reduce_scatter_part(comm, device, n, part, NULL, err);
    if (rc) return -1;
    /* the collectives run on the group's own stream: wait for the whole device */
    return cuda_ok(cudaDeviceSynchronize(), "synchronize") &&
                   cuda_ok(cudaMemcpy(host, device, count * sizeof *host, cudaMemcpyDeviceToHost), "copy to the host")
               ? 0 : -1;
}

/* The reduce-scatter of part_of(n), from a buffer of the part alone. */
static void check_part(const TnComm *comm, uint64_t seed, size_t n, float *host, float *device, double bound) {
    TnError err;
    TnRange part = part_of(n), mine = tn_range_intersect(part, tn_rank_range(n, comm->size, comm->rank));
    for (size_t i = part.begin; i < part.end; i++) host[i - part.begin] = value(seed, comm->rank, i);
    int rc = device_round_trip(comm, host, device, n, REDUCE_SCATTER_PART, &err);
    CHECK(rc == 0, "rank %d: reduce-scatter of part [%zu, %zu) of %zu: %s", comm->rank, part.begin, part.end, n,
          err.msg);
    double worst = 0;
    for (size_t i = mine.begin; i < mine.end && !rc; i++)
        worst = fmax(worst, sum_error(comm->size, seed, i, host[i - part.begin]));
    CHECK(!rc && worst <= bound, "rank %d: reduce-scatter of part [%zu, %zu) of %zu off by %.3g on its elements",
          comm->rank, part.begin, part.end, n, worst);
}

/* Whether out (part's elements) holds each element as its owner's shard
 * does: value(seed, owner, i), exactly. */
static int holds_part(const float *out, TnRange part, size_t n, int ranks, uint64_t seed) {
    for (int r = 0; r < ranks; r++) {
        TnRange theirs = tn_range_intersect(part, tn_rank_range(n, ranks, r));
        for (size_t i = theirs.begin; i < theirs.end; i++)
            if (out[i - part.begin] != value(seed, r, i)) return 0;
    }
    return 1;
}

/* The all-gather of part_of(n) from a device buffer of this rank's shard
 * into one of the part (device, NaN before: an element left out shows). */
static void check_gather_part(const TnComm *comm, uint64_t seed, size_t n, float *host, float *device) {
    TnError err;
    TnRange part = part_of(n), own = tn_rank_range(n, comm->size, comm->rank);
    size_t count = part.end - part.begin, owned = own.end - own.begin;
    float *shard = NULL;
    if (!cuda_ok(cudaMalloc((void **)&shard, (owned ? owned : 1) * sizeof *shard), "malloc")) {
        CHECK(0, "rank %d: no device memory for a shard of %zu floats", comm->rank, owned);
        return;
    }
    for (size_t i = own.begin; i < own.end; i++) host[i - own.begin] = value(seed, comm->rank, i);
    int rc = cuda_ok(cudaMemcpy(shard, host, owned * sizeof *host, cudaMemcpyHostToDevice), "copy to the GPU") ? 0 : -1;
    for (size_t i = 0; i < count; i++) host[i] = NAN;
    if (!rc) rc = cuda_ok(cudaMemcpy(device, host, count * sizeof *host, cudaMemcpyHostToDevice), "copy to the GPU")
                      ? 0 : -1;
    int gathered = !rc && tn_comm_gpu_all_gather_part(comm, shard, n, part, device, NULL, &err) == 0;
    CHECK(rc || gathered, "rank %d: all-gather of part [%zu, %zu) of %zu: %s", comm->rank, part.begin, part.end, n,
          err.msg);
    /* the collectives run on the group's own stream: wait for the whole device */
    gathered = gathered && cuda_ok(cudaDeviceSynchronize(), "synchronize") &&
               cuda_ok(cudaMemcpy(host, device, count * sizeof *host, cudaMemcpyDeviceToHost), "copy to the host");
    CHECK(gathered && holds_part(host, part, n, comm->size, seed),
          "rank %d: all-gather of part [%zu, %zu) of %zu differs from the shards", comm->rank, part.begin, part.end, n);
    CHECK(cuda_ok(cudaFree(shard), "free"), "rank %d: freeing the shard buffer failed", comm->rank);
}

static void check_size(const TnComm *comm, uint64_t seed, size_t n) {
    TnError err;
    float *host = tn_malloc(n * sizeof *host), *device = NULL;
    if (!cuda_ok(cudaMalloc((void **)&device, n * sizeof *device), "malloc")) {
        CHECK(0, "rank %d: no device memory for %zu floats", comm->rank, n);
        free(host);
        return;
    }
    double bound = comm->size * 0x1p-23;
    TnRange own = tn_rank_range(n, comm->size, comm->rank);

    for (size_t i = 0; i < n; i++) host[i] = value(seed, comm->rank, i);
    int rc = device_round_trip(comm, host, device, n, ALL_REDUCE, &err);
    CHECK(rc == 0, "rank %d: all-reduce of %zu: %s", comm->rank, n, err.msg);
    double worst = 0;
    for (size_t i = 0; i < n && !rc; i++) worst = fmax(worst, sum_error(comm->size, seed, i, host[i]));
    CHECK(!rc && worst <= bound, "rank %d: all-reduce of %zu off by %.3g (bound %.3g)", comm->rank, n, worst, bound);

    for (size_t i = 0; i < n; i++) host[i] = value(seed, comm->rank, i);
    rc = device_round_trip(comm, host, device, n, REDUCE_SCATTER, &err);
    CHECK(rc == 0, "rank %d: reduce-scatter of %zu: %s", comm->rank, n, err.msg);
    worst = 0;
    for (size_t i = own.begin; i < own.end && !rc; i++) worst = fmax(worst, sum_error(comm->size, seed, i, host[i]));
    CHECK(!rc && worst <= bound, "rank %d: reduce-scatter of %zu off by %.3g on its shard", comm->rank, n, worst);

    for (size_t i = 0; i < n; i++) host[i] = i >= own.begin && i < own.end ? value(seed, comm->rank, i) : NAN;
    rc = device_round_trip(comm, host, device, n, ALL_GATHER, &err);
    CHECK(rc == 0, "rank %d: all-gather of %zu: %s", comm->rank, n, err.msg);
    int exact = !rc;
    for (int r = 0; r < comm->size; r++) {
        TnRange shard = tn_rank_range(n, comm->size, r);
        for (size_t i = shard.begin; i < shard.end && exact; i++) exact = host[i] == value(seed, r, i);
    }
    CHECK(exact, "rank %d: all-gather of %zu does not hold every rank's shard", comm->rank, n);
    check_part(comm, seed, n, host, device, bound);
    check_gather_part(comm, seed, n, host, device);
    CHECK(cuda_ok(cudaFree(device), "free"), "rank %d: freeing the device buffer failed", comm->rank);
    free(host);
}

/* The NCCL backend's host collectives (a launch without MPI). */
static void check_host(const TnComm *comm, uint64_t seed) {
    TnError err;
    double sums[3], expected[3];
    for (int k = 0; k < 3; k++) {
        sums[k] = value(seed, comm->rank, 7 + k);
        expected[k] = 0;
        for (int r = 0; r < comm->size; r++) expected[k] += value(seed, r, 7 + k);
    }
    CHECK(tn_comm_all_reduce_sum_double(comm, sums, 3, &err) == 0, "host all-reduce: %s", err.msg);
    for (int k = 0; k < 3; k++)
        CHECK(fabs(sums[k] - expected[k]) <= 1e-12 * comm->size, "rank %d: host double sum %d: %.17g, expected %.17g",
              comm->rank, k, sums[k], expected[k]);
    float buf[5];
    int root = comm->size - 1, copied = 1;
    for (int i = 0; i < 5; i++) buf[i] = value(seed, comm->rank, 100 + (size_t)i);
    CHECK(tn_comm_broadcast(comm, buf, 5, root, &err) == 0, "host broadcast: %s", err.msg);
    for (int i = 0; i < 5; i++) copied &= buf[i] == value(seed, root, 100 + (size_t)i);
    CHECK(copied, "rank %d: host broadcast from rank %d differs", comm->rank, root);
    /* a part of 1001 elements cutting the shards, gathered from each rank's shard */
    size_t n = 1001;
    TnRange part = part_of(n), own = tn_rank_range(n, comm->size, comm->rank);
    float *shard = tn_malloc((own.end - own.begin + 1) * sizeof *shard), *out = tn_malloc(n * sizeof *out);
    for (size_t i = own.begin; i < own.end; i++) shard[i - own.begin] = value(seed, comm->rank, i);
    int rc = tn_comm_all_gather_part(comm, shard, n, part, out, &err), gathered = rc == 0;
    CHECK(rc == 0, "rank %d: host all-gather of a part: %s", comm->rank, err.msg);
    gathered = gathered && holds_part(out, part, n, comm->size, seed);
    CHECK(gathered, "rank %d: host all-gather of part [%zu, %zu) differs from the shards", comm->rank, part.begin,
          part.end);
    free(shard);
    free(out);
}

/* The sub-group of pairs of consecutive ranks (tn_comm_split with the
 * job's NCCL group started: ncclCommSplit): its rank, size, an all-reduce
 * on its GPUs and a host sum. */
static void check_split(const TnComm *comm, uint64_t seed) {
    TnError err;
    TnComm pair;
    int first = comm->rank / 2 * 2, members = first + 1 < comm->size ? 2 : 1;
    if (tn_comm_split(comm, comm->rank / 2, comm->rank % 2, &pair, &err)) {
        CHECK(0, "rank %d: split into pairs: %s", comm->rank, err.msg);
        return;
    }
    CHECK(pair.rank == comm->rank % 2 && pair.size == members && pair.gpu,
          "rank %d: rank %d of %d in its pair (expected %d of %d, with a GPU group)", comm->rank, pair.rank, pair.size,
          comm->rank % 2, members);
    enum { N = 1001 };
    float host[N], *device = NULL;
    for (size_t i = 0; i < N; i++) host[i] = value(seed + 5, comm->rank, i);
    int rc = cuda_ok(cudaMalloc((void **)&device, sizeof host), "malloc") &&
                     cuda_ok(cudaMemcpy(device, host, sizeof host, cudaMemcpyHostToDevice), "copy to the GPU") &&
                     tn_comm_gpu_all_reduce_sum(&pair, device, N, NULL, &err) == 0 &&
                     cuda_ok(cudaDeviceSynchronize(), "synchronize") &&
                     cuda_ok(cudaMemcpy(host, device, sizeof host, cudaMemcpyDeviceToHost), "copy to the host")
                 ? 0 : -1;
    double worst = 0;
    for (size_t i = 0; i < N && !rc; i++) {
        double sum = 0, magnitude = 0;
        for (int r = first; r < first + members; r++) {
            sum += value(seed + 5, r, i);
            magnitude += fabs(value(seed + 5, r, i));
        }
        worst = fmax(worst, fabs(host[i] - sum) / magnitude);
    }
    CHECK(!rc && worst <= members * 0x1p-23, "rank %d: the pair's all-reduce off by %.3g", comm->rank, worst);
    double one = 1;
    CHECK(tn_comm_all_reduce_sum_double(&pair, &one, 1, &err) == 0 && one == members,
          "rank %d: the pair's host sum of ones is %g, expected %d", comm->rank, one, members);
    CHECK(cuda_ok(cudaFree(device), "free"), "rank %d: freeing the device buffer failed", comm->rank);
    tn_comm_free(&pair);
}

/* One rank's checks. */
static void check_rank(const TnComm *comm, uint64_t seed) {
    const size_t sizes[] = {1, 1001, ((size_t)1 << 20) + 3};
    for (int i = 0; i < 3; i++) check_size(comm, seed, sizes[i]);
    if (comm->size > 1) check_host(comm, seed);
    if (comm->size > 1) check_split(comm, seed);
}

int main(int argc, char **argv) { return gpu_ranks_main("check_dist", argc, argv, check_rank); }
