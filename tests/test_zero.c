/* test_zero: what a ZeRO rank holds (train/trainer.h, dist/plan.h,
 * model/params.h tn_params_init_range).
 *
 * 1. A shard initialised on its own equals the same range of the whole
 *    model's initialisation, bit for bit, for fresh random ranges (inside
 *    one tensor, across tensors, the embedding's padding row, theta, the
 *    norms' gains) of a tied and an untied model: a ZeRO-3 rank never
 *    builds the whole model to take its shard.
 * 2. Under `mpirun -np 2` and `-np 3` (this binary starts itself; shards
 *    of unequal length), tn_train_run with ZeRO 0..3 reports the bytes of
 *    the buffers it allocated (TnTrainMemory, the memory line's figures),
 *    which must be the planner's elements (tn_plan_elements, the same
 *    layout) times 4 bytes: the gather buffer and the backward's gradient
 *    buffers exactly, the shards of parameters, gradients and moments to
 *    the rounding of a shard's length (at most one element each, so 4
 *    bytes, 8 for the two moments). The gradients of ZeRO-2/3 must be a
 *    shard, not the whole buffer: the test fails on the old layout.
 * mpirun is required (CI installs OpenMPI): without it the test fails.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/plan.h"
#include "test.h"
#include "train/trainer.h"
#include "train_runs.h"
#include "util/rng.h"

/* 1: ranges of a model's initialisation against the whole. */
static void check_init_ranges(const TnConfig *cfg, uint64_t seed) {
    TnParamLayout layout;
    tn_param_layout_init(&layout, cfg);
    size_t n = layout.total;
    float *whole = tn_malloc(n * sizeof *whole), *part = tn_malloc(n * sizeof *part);
    tn_params_init(whole, &layout, cfg, seed);
    TnRng rng;
    tn_rng_seed(&rng, seed, 77);
    for (int trial = 0; trial < 20; trial++) {
        size_t a = tn_rng_below(&rng, n), b = tn_rng_below(&rng, n + 1);
        TnRange range = {a < b ? a : b, a < b ? b : a + 1};
        if (trial == 0) range = (TnRange){0, n}; /* the whole buffer too */
        tn_params_init_range(part, &layout, cfg, seed, range.begin, range.end);
        CHECK(memcmp(part, whole + range.begin, (range.end - range.begin) * sizeof *part) == 0,
              "init of [%zu, %zu) of %zu (tied %d) differs from the whole model's", range.begin, range.end, n,
              cfg->tie_word_embeddings);
    }
    free(whole);
    free(part);
    tn_param_layout_free(&layout);
}

/* 2, one rank: the trainer's buffers against the plan. */
static void check_rank(const TnComm *comm, const char *dir) {
    TnConfig cfg;
    TnError err;
    if (tn_config_from_size(&cfg, "tiny", &err)) tn_die("%s", err.msg);
    TnPlanCounts counts;
    tn_plan_counts(&cfg, &counts);
    char data[4200], out[4200];
    snprintf(data, sizeof data, "%s/corpus.txt", dir);
    for (int zero = 0; zero <= 3; zero++) {
        TnTrainOptions o;
        tn_train_options_defaults(&o);
        snprintf(out, sizeof out, "%s/np%d_zero%d", dir, comm->size, zero);
        o.config = cfg;
        o.data = data;
        o.seq_len = 32;
        o.micro_batch = 2;
        o.batch_tokens = 256;
        o.steps = 1;
        o.eval_every = 0;
        o.quiet = 1;
        o.out_dir = out;
        o.comm = comm;
        o.zero = zero;
        TnTrainResult result;
        if (tn_train_run(&o, &result, &err) != TN_TRAIN_DONE) {
            CHECK(0, "rank %d, ZeRO-%d: %s", comm->rank, zero, err.msg);
            continue;
        }
        TnPlanElements plan = tn_plan_elements(&counts, 1, comm->size, zero);
        const TnTrainMemory *mem = &result.memory;
        struct { const char *what; double real, planned, slack; } kinds[] = {
            {"parameters", (double)mem->parameters, 4 * plan.parameters, 4},
            {"gather buffer", (double)mem->gather, 4 * plan.gather, 0},
            {"gradients", (double)mem->gradients, 4 * plan.gradients, 4},
            {"gradient buffers", (double)mem->grad_buffers, 4 * plan.grad_buffers, 0},
            {"moments", (double)mem->moments, 4 * plan.moments, 8},
        };
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            CHECK(fabs(kinds[k].real - kinds[k].planned) <= kinds[k].slack,
                  "rank %d of %d, ZeRO-%d: %s %.0f bytes, the plan %.0f", comm->rank, comm->size, zero,
                  kinds[k].what, kinds[k].real, kinds[k].planned);
        CHECK(mem->total > mem->parameters + mem->gradients + mem->moments, "rank %d, ZeRO-%d: total %zu",
              comm->rank, zero, mem->total);
    }
}

/* Runs this binary under mpirun -np ranks and checks that every rank passed. */
static void launch(const char *self, int ranks, const char *dir) {
    char cmd[8192], output[65536];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 TN_ZERO_RANK_DIR=%s " MPIRUN " -np %d %s", dir, ranks, self);
    int rc = run_command(cmd, output, sizeof output), clean = 0;
    for (const char *line = output; (line = strstr(line, "zero rank ")); line++) {
        int rank, passed, failed;
        if (sscanf(line, "zero rank %d: %d passed, %d failed", &rank, &passed, &failed) == 3 && passed > 0 &&
            failed == 0)
            clean++;
    }
    CHECK(rc == 0 && clean == ranks, "mpirun -np %d: exit %d, %d of %d ranks passed:\n%s", ranks, rc, clean, ranks,
          output);
}

int main(int argc, char **argv) {
    (void)argc;
    const char *rank_dir = getenv("TN_ZERO_RANK_DIR");
    if (rank_dir) { /* one rank of launch() */
        TnComm comm;
        TnError err;
        if (tn_comm_init(&comm, &err)) tn_die("%s", err.msg);
        check_rank(&comm, rank_dir);
        printf("zero rank %d: %d passed, %d failed\n", comm.rank, tn_tests_passed, tn_tests_failed);
        tn_comm_finalize(&comm);
        return tn_tests_failed != 0;
    }
    uint64_t seed = test_seed();
    TnConfig tied = test_config(97, 32, 2, 4, 64, 1u), untied = tied;
    untied.tie_word_embeddings = 0;
    tied.pad_token_id = 5;
    check_init_ranges(&tied, seed);
    check_init_ranges(&untied, seed);

    char output[256], dir[4096], corpus[4200];
    CHECK(run_command("command -v mpirun", output, sizeof output) == 0,
          "mpirun not found: install openmpi-bin and libopenmpi-dev (CI's .ci/run does)");
    if (tn_tests_failed) return TEST_DONE(argv[0]);
    make_temp_dir(dir, sizeof dir, "zero");
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    write_word_corpus(corpus, seed);
    launch(argv[0], 2, dir);
    launch(argv[0], 3, dir);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
