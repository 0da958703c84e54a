/* test_dist: data-parallel training under mpirun (dist/comm.h, train/trainer.h).
 *
 * One process trains a tiny model for STEPS steps of ACCUM micro-batches
 * on a fresh random corpus; then `mpirun -np N tnllm train --zero K` with
 * the same options must give the same loss at every step and the same
 * final weights, for N = 2 with K = 0..3 and N = 3 (shards of unequal
 * length, a step's micro-batches not a multiple of N). A run checkpointed
 * by 4 ranks (ZeRO-1) and resumed by 2 (ZeRO-2) must land on the same
 * weights too (the learning rate is constant, so stopping at STEPS / 2
 * does not change the schedule), and so must one checkpointed by 2 ranks
 * under ZeRO-3 and resumed by 3. Summation order differs between the
 * runs (MPI's reductions, gradient shards), so the tolerances are float32
 * rounding amplified by the steps: losses within a relative 2e-5, weights
 * within 5e-5 of the largest weight (the learning rate moves a weight by
 * about 3e-3 per step).
 *
 * The gradients are reduced while the backward runs (dist/grad_reduce.h)
 * and ZeRO-3 gathers the parameters one layer at a time (dist/fsdp.h),
 * which must print its gather buffer in the memory line. With 2 ranks
 * every sum is a + b whatever the collective, and ZeRO-2 and ZeRO-3 take
 * the same norms and updates: their weights must agree bit for bit, so a
 * gather that misplaces or misses a part shows even below the tolerance.
 *
 * mpirun is required: CI installs OpenMPI; without it the test fails
 * (train_runs.h: how the ranks are launched).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/transnormer.h"
#include "test.h"
#include "train_runs.h"

#define STEPS 6
#define LOSS_TOLERANCE 2e-5
#define WEIGHT_TOLERANCE 5e-5

static char output[65536];
static char dir[4096];

/* Runs `[mpirun -np ranks] tnllm train <common> <extra> -o dir/name`;
 * ranks 0 runs one process without mpirun. Returns the exit status. */
static int train(int ranks, const char *name, const char *extra, uint64_t seed) {
    char options[8192];
    snprintf(options, sizeof options,
             "--size tiny --data %s/corpus.txt --ctx 32 --micro-batch 2 --batch-tokens 256 --warmup 0 "
             "--min-lr-ratio 1 --lr 3e-3 --seed %llu --eval-every 0 --eval-windows 2 --log-every 1 %s",
             dir, (unsigned long long)seed, extra);
    return train_run(dir, ranks, name, options, output, sizeof output);
}

static void compare(const TnModel *reference, const double reference_losses[STEPS + 1], const char *name) {
    compare_with_reference(reference, reference_losses, STEPS, dir, name, LOSS_TOLERANCE, WEIGHT_TOLERANCE);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    check_mpi_available();
    if (tn_tests_failed) return TEST_DONE(argv[0]);
    make_temp_dir(dir, sizeof dir, "dist");
    char corpus[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    write_word_corpus(corpus, seed);

    CHECK(train(0, "single", "--steps 6", seed) == 0, "the single-process run failed");
    double reference_losses[STEPS + 1];
    read_step_losses(dir, "single", reference_losses, STEPS);
    char path[4200];
    snprintf(path, sizeof path, "%s/single/model", dir);
    TnModel reference;
    TnError err;
    if (tn_model_load(&reference, path, &err)) {
        CHECK(0, "%s", err.msg);
        remove_tree(dir);
        return TEST_DONE(argv[0]);
    }

    const struct { int ranks, zero; } runs[] = {{2, 0}, {2, 1}, {2, 2}, {2, 3}, {3, 0}, {3, 2}, {3, 3}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char name[64], extra[64];
        snprintf(name, sizeof name, "np%d_zero%d", runs[i].ranks, runs[i].zero);
        snprintf(extra, sizeof extra, "--steps 6 --zero %d", runs[i].zero);
        CHECK(train(runs[i].ranks, name, extra, seed) == 0, "%s failed", name);
        char expected[96];
        snprintf(expected, sizeof expected, "memory per rank (%d ranks, MPI, ZeRO-%d)", runs[i].ranks, runs[i].zero);
        CHECK(strstr(output, expected), "%s: no line \"%s\" in its output", name, expected);
        CHECK((runs[i].zero == 3) == (strstr(output, "gather buffer") != NULL),
              "%s: the memory line %s the gather buffer", name, runs[i].zero == 3 ? "lacks" : "names");
        compare(&reference, reference_losses, name);
    }
    snprintf(path, sizeof path, "%s/np2_zero2/model", dir);
    TnModel zero2;
    if (tn_model_load(&zero2, path, &err) == 0) {
        double difference = weight_difference(&zero2, dir, "np2_zero3");
        CHECK(difference == 0, "2 ranks: ZeRO-3's weights differ from ZeRO-2's by %.3g", difference);
        tn_model_free(&zero2);
    } else {
        CHECK(0, "%s", err.msg);
    }

    /* ZeRO-3 saved by 2 ranks at step 3, resumed by 3 */
    CHECK(train(2, "resumed3", "--steps 3 --zero 3", seed) == 0, "the 2-rank ZeRO-3 run failed");
    CHECK(train(3, "resumed3", "--steps 6 --zero 3 --resume", seed) == 0, "the 3-rank ZeRO-3 resume failed");
    compare(&reference, reference_losses, "resumed3");

    /* saved by 4 ranks at step 3, resumed by 2 with another ZeRO stage */
    CHECK(train(4, "resumed", "--steps 3 --zero 1", seed) == 0, "the 4-rank run failed");
    CHECK(train(2, "resumed", "--steps 6 --zero 2 --resume", seed) == 0, "the 2-rank resume failed");
    compare(&reference, reference_losses, "resumed");

    /* 4 micro-batches per step cannot be shared by 5 ranks: refused, with the reason */
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 " MPIRUN " -np 5 %s train --size tiny --data %s "
             "--ctx 32 --micro-batch 2 --batch-tokens 256 --steps 1 -o %s/refused",
             tnllm_binary(), corpus, dir);
    CHECK(run_command(cmd, output, sizeof output) != 0 && strstr(output, "cannot be shared by 5 ranks"),
          "5 ranks on 4 micro-batches: %s", output);

    tn_model_free(&reference);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
