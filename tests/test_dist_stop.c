/* test_dist_stop: a loss that is not finite on one rank stops every rank
 * of a data-parallel run together, each saying why (train/trainer.c,
 * note_nonfinite_loss). Before, the rank that met it stopped alone: under
 * mpirun its MPI_Abort took the others down without a word from them, and
 * in a launch without MPI (NCCL joined by file or TCP) nothing would stop
 * them waiting in the step's collectives. The ranks that did not save the
 * checkpoints also named a stale "last good checkpoint", since removed.
 *
 * A tiny model with an untied head is trained under `mpirun -np 2` for one
 * step; the embedding row of the byte 'Q' in its checkpoint is then made
 * NaN, and 'Q' occurs once in the corpus, so only the micro-batch holding
 * it (on one rank, at one step of the first epoch) has a NaN loss. The
 * resumed run must end within a time limit, with a non-zero status, the
 * rank that saw the NaN naming the embedding, the other saying it stopped
 * for another rank's loss, and the named last good checkpoint present.
 *
 * mpirun is required: CI installs OpenMPI; without it the test fails.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/transnormer.h"
#include "test.h"
#include "train_runs.h"
#include "util/fileio.h"

#define TIME_LIMIT_S 180 /* the run takes seconds; a hang is cut here and fails the test */
#define BYTE_ID_OFFSET 3 /* byte-level ids: <unk>, <s>, </s>, then the bytes */

static char output[65536];

/* Replaces one letter near the start of the corpus (in the training split)
 * with 'Q', which write_word_corpus's alphabet lacks. */
static void plant_rare_byte(const char *path) {
    FILE *f = fopen(path, "r+");
    if (!f) tn_die("%s: cannot open", path);
    int c;
    while ((c = fgetc(f)) != EOF && (c == ' ' || c == '\n' || ftell(f) < 200)) {}
    if (c == EOF || fseek(f, -1, SEEK_CUR) || fputc('Q', f) == EOF) tn_die("%s: cannot plant the rare byte", path);
    fclose(f);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    check_mpi_available();
    if (tn_tests_failed) return TEST_DONE(argv[0]);
    char dir[4096], corpus[4200], config_path[4200], checkpoint[4300], common[9000];
    make_temp_dir(dir, sizeof dir, "dist-stop");
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    write_word_corpus(corpus, seed);
    plant_rare_byte(corpus);

    TnConfig cfg;
    TnError err;
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
    cfg.tie_word_embeddings = 0; /* the head's rows stay finite: only 'Q' positions turn NaN */
    CHECK(tn_config_save(&cfg, config_path, &err) == 0, "%s", err.msg);
    snprintf(common, sizeof common,
             "--config %s --data %s --ctx 32 --micro-batch 2 --batch-tokens 256 --warmup 0 --lr 3e-3 --seed %llu "
             "--eval-every 0 --save-every 1 --log-every 1",
             config_path, corpus, (unsigned long long)seed);

    int rc = run_commandf(output, sizeof output, "OMP_NUM_THREADS=1 " MPIRUN " -np 2 %s train %s --steps 1 -o %s/run",
                          tnllm_binary(), common, dir);
    CHECK(rc == 0, "the first step under mpirun -np 2 failed: %s", output);
    snprintf(checkpoint, sizeof checkpoint, "%s/run/checkpoints/step_00000001", dir);
    TnModel m;
    if (rc != 0 || tn_model_load(&m, checkpoint, &err)) {
        CHECK(0, "%s", rc ? "no checkpoint" : err.msg);
        remove_tree(dir);
        return TEST_DONE(argv[0]);
    }
    int D = m.config.dim;
    for (int j = 0; j < D; j++) m.w.embed[(size_t)('Q' + BYTE_ID_OFFSET) * D + j] = NAN;
    CHECK(tn_model_save(&m, checkpoint, TN_F32, 0, &err) == 0, "%s", err.msg);
    tn_model_free(&m);

    /* an epoch is about 120 steps: the planted byte is met within it */
    rc = run_commandf(output, sizeof output,
                      "timeout %d env OMP_NUM_THREADS=1 " MPIRUN " -np 2 %s train %s --steps 400 --resume -o %s/run",
                      TIME_LIMIT_S, tnllm_binary(), common, dir);
    CHECK(rc != 124, "the ranks did not stop within %d s (one waits for the other)", TIME_LIMIT_S);
    CHECK(rc != 0, "the run with a NaN embedding row finished");
    const char *seen = strstr(output, "the loss is nan (first non-finite value in parameter model.embed_tokens.weight)");
    CHECK(seen != NULL, "the rank that met the NaN names the embedding: %s", output);
    CHECK(strstr(output, "the loss is not finite on another rank") || (seen && strstr(seen + 1, "the loss is nan")),
          "the other rank says why it stopped: %s", output);
    const char *named = strstr(output, "the last good checkpoint is ");
    char last_good[4300] = "";
    if (named) sscanf(named + strlen("the last good checkpoint is "), "%4299s", last_good);
    CHECK(strstr(last_good, "/run/checkpoints/step_") && tn_file_exists(last_good),
          "the last good checkpoint is named and kept: '%s'", last_good);
    printf("stopped: %.300s\n", seen ? seen : output);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
