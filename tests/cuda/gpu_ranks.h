/* gpu_ranks.h: the ranks of the multi-GPU checks (check_dist, check_tp).
 *
 * gpu_ranks_main parses `NAME [--gpus N] [--seed S]` (default: every GPU,
 * seed 1), forks one rank per GPU with torchrun's variables (RANK,
 * WORLD_SIZE, LOCAL_RANK: the launch without MPI of dist/launch.h) that
 * joins the GPU group through a file init (--dist-init file:PATH in a fresh
 * directory) and runs rank_main (with a joined comm, its NCCL group
 * started; a rank that cannot join fails a check instead), then prints
 * "rank R: N passed, M failed" and reports its counts to the parent. The
 * parent (which starts no CUDA before it forks) adds them up, fails a
 * check for a rank that did not report or exit cleanly, and returns
 * TEST_DONE's status with the total line "NAME: N passed, M failed".
 */
#ifndef TN_TESTS_CUDA_GPU_RANKS_H
#define TN_TESTS_CUDA_GPU_RANKS_H

#include <stdint.h>

#include "dist/comm.h"

typedef void (*GpuRankMain)(const TnComm *comm, uint64_t seed);

int gpu_ranks_main(const char *name, int argc, char **argv, GpuRankMain rank_main);

#endif
