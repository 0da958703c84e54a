/* test_comm: the collectives of dist/comm.h on 1 and 3 MPI ranks.
 *
 * Run plainly, the binary checks the shard arithmetic and the single
 * backend, then starts itself under `mpirun -np 3` (and -np 1); each rank
 * fills buffers of n = 1001 elements (shards of 333, 334, 334: unequal)
 * with values drawn from (seed, rank, index) and checks every collective
 * against the sum, gather or copy it computes itself in double: sums
 * within 1e-6 of the sum of the terms' magnitudes (float32 rounding of 3
 * terms), gathers and copies exact, and again with MPI's count limit
 * lowered to 100 (tn_comm_mpi_limit_counts): the shards then move one by
 * one and every collective in pieces, to the same results; a sub-group
 * split by parity (tn_comm_split) sums and gathers over its members
 * alone, and is left empty when freed (plainly or after a failure; a
 * second free does nothing). The ranks print their own "N passed, M
 * failed" line, which the parent reads back.
 * The parts (comm.h: ranges of the sharded buffer, gathered and reduced
 * one at a time, dist/fsdp.h, dist/grad_reduce.h) are cut at 0, 100,
 * 333 (a shard boundary), 334 (a part of one element), 790 and 1001, so
 * that parts span shards, lie inside one, or miss a rank entirely: their
 * non-blocking reductions, started last part first as the backward does,
 * must give the blocking ones' sums (same bound), their gathers exact
 * copies. Parts of n = 5e9 elements (beyond MPI's int offsets; only the
 * parts are allocated) gather and reduce alike where every rank's count
 * and place in the part are small.
 * mpirun is required (CI installs OpenMPI): without it the test fails.
 * The launch's OpenMPI settings are MPIRUN's (train_runs.h).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"
#include "dist/comm_mpi.h"
#include "test.h"
#include "train_runs.h"
#include "util/rng.h"

#define N 1001

static float value(uint64_t seed, int rank, size_t i) {
    TnRng rng;
    tn_rng_seed(&rng, seed, (uint64_t)rank * 1000003u + i);
    return (float)(tn_rng_uniform(&rng) * 2.0 - 1.0);
}

/* |result - the exact sum over ranks of element i| relative to the sum
 * of the terms' magnitudes (rounding is relative to them, not to a sum
 * that cancels). */
static double sum_error(const TnComm *comm, uint64_t seed, size_t i, float result) {
    double sum = 0, magnitude = 0;
    for (int r = 0; r < comm->size; r++) {
        sum += value(seed, r, i);
        magnitude += fabs(value(seed, r, i));
    }
    return fabs(result - sum) / magnitude;
}

/* One rank's checks of every collective. */
static void check_rank(const TnComm *comm, uint64_t seed) {
    static float buf[N], shard[N], full[N];
    TnError err;
    TnRange own = tn_rank_range(N, comm->size, comm->rank);

    for (size_t i = 0; i < N; i++) buf[i] = value(seed, comm->rank, i);
    CHECK(tn_comm_all_reduce_sum(comm, buf, N, &err) == 0, "all-reduce: %s", err.msg);
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        worst = fmax(worst, sum_error(comm, seed, i, buf[i]));
    }
    CHECK(worst <= 1e-6, "rank %d: all-reduce off by %.3g", comm->rank, worst);

    for (size_t i = 0; i < N; i++) buf[i] = value(seed, comm->rank, i);
    CHECK(tn_comm_reduce_scatter_sum(comm, buf, N, &err) == 0, "reduce-scatter: %s", err.msg);
    worst = 0;
    for (size_t i = own.begin; i < own.end; i++) {
        worst = fmax(worst, sum_error(comm, seed, i, buf[i]));
    }
    CHECK(worst <= 1e-6, "rank %d: reduce-scatter off by %.3g on its shard", comm->rank, worst);

    /* all-gather and gather: each element comes from the rank owning it, exactly */
    for (size_t i = 0; i < N; i++) buf[i] = i >= own.begin && i < own.end ? value(seed, comm->rank, i) : NAN;
    memcpy(shard, buf + own.begin, (own.end - own.begin) * sizeof *shard);
    CHECK(tn_comm_all_gather(comm, buf, N, &err) == 0, "all-gather: %s", err.msg);
    CHECK(tn_comm_gather(comm, shard, comm->rank == 0 ? full : NULL, N, 0, &err) == 0, "gather: %s", err.msg);
    int gathered = 1, at_root = 1;
    for (int r = 0; r < comm->size; r++) {
        TnRange range = tn_rank_range(N, comm->size, r);
        for (size_t i = range.begin; i < range.end; i++) {
            gathered &= buf[i] == value(seed, r, i);
            if (comm->rank == 0) at_root &= full[i] == value(seed, r, i);
        }
    }
    CHECK(gathered, "rank %d: all-gather does not hold every rank's shard", comm->rank);
    CHECK(at_root, "gather: rank 0 does not hold every rank's shard");

    int root = comm->size - 1, copied = 1;
    for (size_t i = 0; i < N; i++) buf[i] = value(seed, comm->rank, i);
    CHECK(tn_comm_broadcast(comm, buf, N, root, &err) == 0, "broadcast: %s", err.msg);
    for (size_t i = 0; i < N; i++) copied &= buf[i] == value(seed, root, i);
    CHECK(copied, "rank %d: broadcast from rank %d differs", comm->rank, root);
    CHECK(tn_comm_barrier(comm, &err) == 0, "barrier: %s", err.msg);
}

static const size_t cuts[] = {0, 100, 333, 334, 790, N};
#define PARTS (sizeof cuts / sizeof cuts[0] - 1)

/* The parts: gathered exactly, reduced (started in reverse order, waited
 * for together) to the sum. */
static void check_parts(const TnComm *comm, uint64_t seed) {
    static float buf[N], shard[N], out[N];
    TnError err;
    TnRange own = tn_rank_range(N, comm->size, comm->rank);
    for (size_t i = own.begin; i < own.end; i++) shard[i - own.begin] = value(seed, comm->rank, i);
    int gathered = 1;
    for (size_t p = 0; p < PARTS; p++) {
        TnRange part = {cuts[p], cuts[p + 1]};
        for (size_t i = 0; i < N; i++) out[i] = NAN;
        CHECK(tn_comm_all_gather_part(comm, shard, N, part, out, &err) == 0, "part all-gather: %s", err.msg);
        for (size_t i = part.begin; i < part.end; i++) {
            int owner = 0;
            while (tn_rank_range(N, comm->size, owner).end <= i) owner++;
            gathered &= out[i - part.begin] == value(seed, owner, i);
        }
    }
    CHECK(gathered, "rank %d: a part's all-gather differs from the owners' shards", comm->rank);

    TnCommRequests *requests = tn_comm_requests_new(comm, PARTS);
    for (int scatter = 0; scatter <= 1; scatter++) {
        for (size_t i = 0; i < N; i++) buf[i] = value(seed, comm->rank, i);
        for (size_t p = PARTS; p-- > 0;) {
            TnRange part = {cuts[p], cuts[p + 1]};
            int rc = scatter ? tn_comm_reduce_scatter_sum_start(requests, buf, N, part, &err)
                             : tn_comm_all_reduce_sum_start(requests, buf + part.begin, part.end - part.begin, &err);
            CHECK(rc == 0, "starting part %zu: %s", p, err.msg);
        }
        CHECK(tn_comm_wait_all(requests, &err) == 0, "wait: %s", err.msg);
        TnRange checked = scatter ? own : (TnRange){0, N};
        double worst = 0;
        for (size_t i = checked.begin; i < checked.end; i++) worst = fmax(worst, sum_error(comm, seed, i, buf[i]));
        CHECK(worst <= 1e-6, "rank %d: the parts' non-blocking %s off by %.3g", comm->rank,
              scatter ? "reduce-scatter" : "all-reduce", worst);
    }
    /* one more request than the capacity is refused, and the others still complete */
    int refused = 0;
    for (size_t p = 0; p <= PARTS; p++)
        refused |= tn_comm_all_reduce_sum_start(requests, buf + p, 1, &err) != 0;
    CHECK(comm->size == 1 || (refused && strstr(err.msg, "in flight")), "rank %d: a request beyond the capacity: %s",
          comm->rank, refused ? err.msg : "accepted");
    CHECK(tn_comm_wait_all(requests, &err) == 0, "wait after a refusal: %s", err.msg);
    tn_comm_requests_free(requests);
}

/* Parts of a buffer too large for MPI's int offsets (n > 2^32; the buffer
 * itself is never allocated: only the parts move), each rank's count and
 * place in a part small: a part at the start (the ranks after it hold
 * none of it), one at the last shard's start (the ranks before it hold
 * none), both gathered exactly, and one across the last shard boundary,
 * reduced to the sum (same bound as above). */
static void check_large_parts(const TnComm *comm, uint64_t seed) {
    enum { PART = 1000 };
    static float shard[PART], out[PART], part_buf[PART];
    const size_t n = 5000000000u;
    TnError err;
    TnRange own = tn_rank_range(n, comm->size, comm->rank);
    size_t boundary = tn_rank_range(n, comm->size, comm->size - 1).begin;
    /* shard holds the rank's first PART elements: all of a part starting at its shard */
    for (size_t i = 0; i < PART; i++) shard[i] = value(seed, comm->rank, own.begin + i);
    const TnRange gathered_parts[] = {{0, PART}, {boundary, boundary + PART}};
    for (size_t p = 0; p < 2; p++) {
        TnRange part = gathered_parts[p];
        int owner = part.begin == 0 ? 0 : comm->size - 1, exact = 1;
        CHECK(tn_comm_all_gather_part(comm, shard, n, part, out, &err) == 0, "rank %d: gathering [%zu, %zu) of %zu: %s",
              comm->rank, part.begin, part.end, n, err.msg);
        for (size_t i = 0; i < PART; i++) exact &= out[i] == value(seed, owner, part.begin + i);
        CHECK(exact, "rank %d: the part [%zu, %zu) of %zu differs from rank %d's shard", comm->rank, part.begin,
              part.end, n, owner);
    }
    size_t across = boundary > PART / 2 ? boundary - PART / 2 : 0;
    const TnRange reduced_parts[] = {{0, PART}, {across, across + PART}};
    TnCommRequests *requests = tn_comm_requests_new(comm, 1);
    for (size_t p = 0; p < 2; p++) {
        TnRange part = reduced_parts[p], mine = tn_range_intersect(own, part);
        for (size_t i = 0; i < PART; i++) part_buf[i] = value(seed, comm->rank, part.begin + i);
        CHECK(tn_comm_reduce_scatter_part_start(requests, part_buf, n, part, &err) == 0 &&
                  tn_comm_wait_all(requests, &err) == 0,
              "rank %d: reducing [%zu, %zu) of %zu: %s", comm->rank, part.begin, part.end, n, err.msg);
        double worst = 0;
        for (size_t i = mine.begin; i < mine.end; i++)
            worst = fmax(worst, sum_error(comm, seed, i, part_buf[i - mine.begin]));
        CHECK(worst <= 1e-6, "rank %d: the reduced part [%zu, %zu) of %zu off by %.3g", comm->rank, part.begin,
              part.end, n, worst);
    }
    tn_comm_requests_free(requests);
}

/* A sub-group (tn_comm_split): the ranks of one parity, ranked by their
 * rank, each keeping its local rank. Its all-reduce sums rank + 1 over them alone (exact: small
 * integers), and its gather collects each member's world rank in order. */
static void check_split(const TnComm *comm) {
    TnComm half;
    TnError err;
    int parity = comm->rank % 2, members = (comm->size + 1 - parity) / 2;
    CHECK(tn_comm_split(comm, parity, comm->rank, &half, &err) == 0, "split: %s", err.msg);
    CHECK(half.size == members && half.rank == comm->rank / 2, "rank %d: sub-group rank %d of %d, expected %d of %d",
          comm->rank, half.rank, half.size, comm->rank / 2, members);
    /* the same process on the same GPU (a sub-group's NCCL group starts there) */
    CHECK(half.local_rank == comm->local_rank, "rank %d: sub-group local rank %d, expected %d", comm->rank,
          half.local_rank, comm->local_rank);
    float sum = (float)(comm->rank + 1), expected = 0, ranks[N];
    for (int r = parity; r < comm->size; r += 2) expected += (float)(r + 1);
    CHECK(tn_comm_all_reduce_sum(&half, &sum, 1, &err) == 0 && sum == expected,
          "rank %d: sub-group all-reduce gave %g, expected %g (%s)", comm->rank, sum, expected, err.msg);
    float own = (float)comm->rank;
    CHECK(tn_comm_gather(&half, &own, ranks, (size_t)half.size, 0, &err) == 0, "sub-group gather: %s", err.msg);
    int in_order = 1;
    for (int r = 0; half.rank == 0 && r < half.size; r++) in_order &= ranks[r] == (float)(parity + 2 * r);
    CHECK(in_order, "rank %d: the sub-group's gather does not hold its members' ranks in order", comm->rank);
    check_parts(&half, 1000 + (uint64_t)parity); /* the parts on a sub-group's communicator */
    /* freed as after a failure on odd ranks (tn_comm_free_failed: no GPU group here to abort), plainly on
     * even ones; either way the child is left empty, and freeing it again does nothing */
    if (parity) tn_comm_free_failed(&half);
    else tn_comm_free(&half);
    CHECK(!half.group && !half.gpu, "rank %d: a freed sub-group still holds its MPI or GPU group", comm->rank);
    tn_comm_free(&half);
}

/* Runs this binary under mpirun -np ranks and checks that every rank passed. */
static void launch(const char *self, int ranks, uint64_t seed) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "TN_COMM_RANK_SEED=%llu " MPIRUN " -np %d %s", (unsigned long long)seed, ranks, self);
    check_ranks_passed(cmd, ranks, "comm");
}

int main(int argc, char **argv) {
    (void)argc;
    const char *rank_seed = getenv("TN_COMM_RANK_SEED");
    if (rank_seed) { /* one rank of launch() */
        TnComm comm;
        TnError err;
        if (tn_comm_init(&comm, &err)) tn_die("%s", err.msg);
        check_rank(&comm, strtoull(rank_seed, NULL, 10));
#ifdef TN_MPI
        tn_comm_mpi_limit_counts(100);
        check_rank(&comm, strtoull(rank_seed, NULL, 10) + 1);
        tn_comm_mpi_limit_counts(INT_MAX);
#endif
        check_parts(&comm, strtoull(rank_seed, NULL, 10));
        check_large_parts(&comm, strtoull(rank_seed, NULL, 10));
        check_split(&comm);
        print_rank_counts("comm", comm.rank);
        tn_comm_finalize(&comm);
        return tn_tests_failed != 0;
    }
    uint64_t seed = test_seed();
    /* shards: contiguous, in order, covering n, lengths within one */
    size_t n = 1001, next = 0;
    for (int r = 0; r < 7; r++) {
        TnRange range = tn_rank_range(n, 7, r);
        CHECK(range.begin == next && range.end - range.begin >= n / 7 && range.end - range.begin <= n / 7 + 1,
              "shard %d of 7: [%zu, %zu)", r, range.begin, range.end);
        next = range.end;
    }
    CHECK(next == n, "the shards end at %zu of %zu", next, n);
    TnComm single = {.backend = TN_COMM_SINGLE, .rank = 0, .size = 1};
    check_rank(&single, seed);
    check_parts(&single, seed);
    check_large_parts(&single, seed);
    check_split(&single);

    check_mpi_available();
    if (!tn_tests_failed) {
        launch(argv[0], 1, seed);
        launch(argv[0], 3, seed);
    }
    return TEST_DONE(argv[0]);
}
