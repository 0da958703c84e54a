/* test_launch: joining a job without MPI (dist/launch.h) on the CPU.
 *
 * The environment: torchrun's and Slurm's variables give the rank, size
 * and local rank (torchrun's first when both are set); a malformed value,
 * a rank outside [0, size) or half a pair is refused naming the variable;
 * none set is "no launcher".
 * The id: three processes (fork) share a fresh random 128-byte id (the
 * size of NCCL's ncclUniqueId) from rank 0, through a file and through
 * TCP on loopback; the other ranks start first, so they poll for the file
 * and retry the connection until rank 0 is up. Each must hold rank 0's
 * bytes exactly. Then: an existing file is refused by rank 0, a missing
 * one times out on the others with a message naming it, a file that is
 * not an id is refused, a malformed --dist-init is refused, and cleanup
 * removes the file.
 * The group (dist/comm.h): under torchrun's variables tn_comm_init gives
 * the NCCL backend with the rank, size and local rank (built with NCCL),
 * whose host collectives refuse to run before the GPU group is started,
 * or a refusal naming NCCL (built without); one rank is the single
 * backend; `tnllm train` so launched on the CPU is refused with a message
 * saying why.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dist/comm.h"
#include "dist/launch.h"
#include "test.h"
#include "util/fileio.h"
#include "util/rng.h"

#define ID_BYTES 128
#define RANKS 3

static const char *variables[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) unsetenv(variables[i]);
}

static void check_env(void) {
    TnLaunch l;
    TnError err;
    clear_env();
    CHECK(tn_launch_from_env(&l, &err) == 0, "no variables: not a launch");
    setenv("SLURM_PROCID", "5", 1);
    setenv("SLURM_NTASKS", "8", 1);
    setenv("SLURM_LOCALID", "1", 1);
    CHECK(tn_launch_from_env(&l, &err) == 1 && l.rank == 5 && l.size == 8 && l.local_rank == 1 &&
              strcmp(l.source, "Slurm") == 0,
          "Slurm: rank %d size %d local %d", l.rank, l.size, l.local_rank);
    setenv("RANK", "2", 1);
    setenv("WORLD_SIZE", "4", 1);
    CHECK(tn_launch_from_env(&l, &err) == 1 && l.rank == 2 && l.size == 4 && l.local_rank == 0 &&
              strcmp(l.source, "torchrun") == 0,
          "torchrun over Slurm: rank %d size %d local %d (%s)", l.rank, l.size, l.local_rank, l.source);
    setenv("LOCAL_RANK", "3", 1);
    CHECK(tn_launch_from_env(&l, &err) == 1 && l.local_rank == 3, "LOCAL_RANK 3: %d", l.local_rank);
    setenv("RANK", "4", 1);
    CHECK(tn_launch_from_env(&l, &err) < 0 && strstr(err.msg, "RANK=4"), "rank 4 of 4: %s", err.msg);
    setenv("RANK", "1x", 1);
    CHECK(tn_launch_from_env(&l, &err) < 0 && strstr(err.msg, "RANK=1x"), "RANK=1x: %s", err.msg);
    unsetenv("RANK");
    CHECK(tn_launch_from_env(&l, &err) < 0 && strstr(err.msg, "WORLD_SIZE"), "WORLD_SIZE alone: %s", err.msg);
    clear_env();
}

static void check_comm_env(void) {
    TnComm comm;
    TnError err;
    clear_env();
    setenv("RANK", "1", 1);
    setenv("WORLD_SIZE", "3", 1);
    setenv("LOCAL_RANK", "1", 1);
    int rc = tn_comm_init(&comm, &err);
#ifdef TN_NCCL
    CHECK(rc == 0 && comm.backend == TN_COMM_NCCL && comm.rank == 1 && comm.size == 3 && comm.local_rank == 1 &&
              !comm.gpu,
          "torchrun's rank 1 of 3: backend %s, rank %d of %d, local %d", tn_comm_backend_name(&comm), comm.rank,
          comm.size, comm.local_rank);
    double sum = 1;
    CHECK(rc == 0 && tn_comm_all_reduce_sum_double(&comm, &sum, 1, &err) < 0 && strstr(err.msg, "not started"),
          "a host collective before the GPU group: %s", err.msg);
#else
    CHECK(rc < 0 && strstr(err.msg, "without NCCL"), "torchrun's ranks without NCCL: %s", rc ? err.msg : "accepted");
#endif
    setenv("RANK", "0", 1);
    setenv("WORLD_SIZE", "1", 1);
    CHECK(tn_comm_init(&comm, &err) == 0 && comm.backend == TN_COMM_SINGLE && comm.size == 1, "one rank: %s",
          tn_comm_backend_name(&comm));
    char cmd[8192], output[8192];
    snprintf(cmd, sizeof cmd, "RANK=0 WORLD_SIZE=2 %s train --size tiny --data /nonexistent --steps 1 -o /nonexistent",
             tnllm_binary());
    CHECK(run_command(cmd, output, sizeof output) != 0 && strstr(output, "without MPI"),
          "tnllm train on the CPU under torchrun's variables: %s", output);
    clear_env();
}

/* Rank `rank` of a share through init, in a child process: exits 0 when
 * it ends with expected (rank 0: sent, others: received), else 1 with
 * the error on stderr. Non-zero ranks start from a zeroed id. */
static pid_t start_rank(const char *init, int rank, const unsigned char *expected, double delay_s) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    unsigned char id[ID_BYTES];
    TnError err;
    usleep((useconds_t)(delay_s * 1e6));
    if (rank == 0) memcpy(id, expected, ID_BYTES);
    else memset(id, 0, ID_BYTES);
    if (tn_launch_share_id(init, rank, RANKS, id, ID_BYTES, 20.0, &err)) {
        fprintf(stderr, "rank %d: %s\n", rank, err.msg);
        _exit(1);
    }
    _exit(memcmp(id, expected, ID_BYTES) != 0);
}

/* All RANKS ranks share a fresh id through init; the others start 0.3 s
 * before rank 0. Returns how many ranks ended with rank 0's id. */
static int share(const char *init, uint64_t seed) {
    unsigned char id[ID_BYTES];
    TnRng rng;
    tn_rng_seed(&rng, seed, 7);
    for (int i = 0; i < ID_BYTES; i++) id[i] = (unsigned char)tn_rng_below(&rng, 256);
    pid_t pids[RANKS];
    for (int r = 0; r < RANKS; r++) pids[r] = start_rank(init, r, id, r == 0 ? 0.3 : 0.0);
    int good = 0;
    for (int r = 0; r < RANKS; r++) {
        int status;
        good += waitpid(pids[r], &status, 0) == pids[r] && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return good;
}

/* A port that was free a moment ago (the kernel's pick). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof a;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &length) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    check_env();
    check_comm_env();

    char dir[4096], path[4200], init[4300];
    make_temp_dir(dir, sizeof dir, "launch");
    snprintf(path, sizeof path, "%s/nccl.id", dir);
    snprintf(init, sizeof init, "file:%s", path);
    CHECK(share(init, seed) == RANKS, "file: not every rank holds rank 0's id");
    unsigned char id[ID_BYTES] = {1};
    TnError err;
    CHECK(tn_launch_share_id(init, 0, RANKS, id, ID_BYTES, 1.0, &err) < 0 && strstr(err.msg, "exists"),
          "rank 0 over an existing file: %s", err.msg);
    tn_launch_cleanup(init, 0);
    CHECK(!tn_file_exists(path), "cleanup left %s", path);
    CHECK(tn_launch_share_id(init, 1, RANKS, id, ID_BYTES, 0.2, &err) < 0 && strstr(err.msg, path),
          "rank 1 without a file: %s", err.msg);
    CHECK(tn_write_file(path, "not an id", 9, &err) == 0, "%s", err.msg);
    CHECK(tn_launch_share_id(init, 1, RANKS, id, ID_BYTES, 1.0, &err) < 0 && strstr(err.msg, "not a tnllm id"),
          "rank 1 reading a file that is no id: %s", err.msg);

    snprintf(init, sizeof init, "tcp://127.0.0.1:%d", free_port());
    CHECK(share(init, seed + 1) == RANKS, "%s: not every rank holds rank 0's id", init);
    CHECK(tn_launch_share_id("tcp://127.0.0.1:1", 1, RANKS, id, ID_BYTES, 0.2, &err) < 0 &&
              strstr(err.msg, "did not answer"),
          "no rank 0 on the port: %s", err.msg);
    const char *malformed[] = {"tcp://nohost", "tcp://host:12x", "udp://h:1", "file:", NULL};
    for (int i = 0; i < 5; i++)
        CHECK(tn_launch_share_id(malformed[i], 1, RANKS, id, ID_BYTES, 0.2, &err) < 0 &&
                  strstr(err.msg, "--dist-init"),
              "--dist-init %s accepted: %s", malformed[i] ? malformed[i] : "(none)", err.msg);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
