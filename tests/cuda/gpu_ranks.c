/* gpu_ranks.c: gpu_ranks.h's forked ranks. */
#include "gpu_ranks.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* One rank: joins, runs rank_main, reports its counts on fd. */
static void run_rank(int rank, int ranks, const char *init, uint64_t seed, GpuRankMain rank_main, int fd) {
    char text[32];
    snprintf(text, sizeof text, "%d", rank);
    setenv("RANK", text, 1);
    setenv("LOCAL_RANK", text, 1);
    snprintf(text, sizeof text, "%d", ranks);
    setenv("WORLD_SIZE", text, 1);
    TnComm comm;
    TnError err;
    if (tn_comm_init(&comm, &err) || tn_comm_gpu_init(&comm, init, &err)) {
        fprintf(stderr, "rank %d: %s\n", rank, err.msg);
        CHECK(0, "rank %d could not join", rank);
    } else {
        rank_main(&comm, seed);
    }
    tn_comm_finalize(&comm);
    printf("rank %d: %d passed, %d failed\n", rank, tn_tests_passed, tn_tests_failed);
    fflush(stdout);
    int counts[2] = {tn_tests_passed, tn_tests_failed};
    _exit(write(fd, counts, sizeof counts) == (ssize_t)sizeof counts ? 0 : 1);
}

/* The GPUs, counted in a child: the parent must not start CUDA before it
 * forks the ranks. */
static int count_gpus(void) {
    pid_t pid = fork();
    if (pid == 0) {
        int n = 0;
        _exit(cudaGetDeviceCount(&n) == cudaSuccess && n < 256 ? n : 0);
    }
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

int gpu_ranks_main(const char *name, int argc, char **argv, GpuRankMain rank_main) {
    int ranks = 0;
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--gpus") == 0) ranks = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0) seed = strtoull(argv[i + 1], NULL, 10);
        else tn_die("usage: %s [--gpus N] [--seed S]", name);
    }
    if (ranks <= 0) ranks = count_gpus();
    if (ranks <= 0) tn_die("%s: no GPU", name);
    char dir[4096], init[4200];
    make_temp_dir(dir, sizeof dir, name);
    snprintf(init, sizeof init, "file:%s/nccl.id", dir);
    printf("%s: %d rank%s, one per GPU, joined through %s, seed %llu\n", name, ranks, ranks == 1 ? "" : "s", init,
           (unsigned long long)seed);
    fflush(stdout);
    int pipe_fds[2];
    if (pipe(pipe_fds)) tn_die("%s: pipe failed", name);
    for (int r = 0; r < ranks; r++)
        if (fork() == 0) {
            close(pipe_fds[0]);
            run_rank(r, ranks, init, seed, rank_main, pipe_fds[1]);
        }
    close(pipe_fds[1]);
    int reported = 0, counts[2];
    while (read(pipe_fds[0], counts, sizeof counts) == (ssize_t)sizeof counts) {
        tn_tests_passed += counts[0];
        tn_tests_failed += counts[1];
        reported++;
    }
    for (int r = 0; r < ranks; r++) {
        int status;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) tn_tests_failed++;
    }
    CHECK(reported == ranks, "%d of %d ranks reported", reported, ranks);
    remove_tree(dir);
    return TEST_DONE(name);
}
