/* test_train_cli: `tnllm train` around a run's life, as a user drives it
 * (the binary, a tiny model, a word corpus):
 *  - --help describes Ctrl-C; a resume with no complete checkpoint but a
 *    step directory cut short while saving names it, and a new run in the
 *    directory removes it; a run refused at start (data that is not there)
 *    leaves no directory (the Ctrl-C line itself is checked in test_train,
 *    whose runs raise the signal inside the process);
 *  - a warmup as long as the run, --steps beside --tokens, a lowered
 *    micro-batch and a rounded batch are warned of; --val-fraction 0
 *    trains on every token without validation;
 *  - a resume whose model options make another model than the run's is
 *    refused, naming the option, the run's value and the given one (a
 *    switch without the rest of the model options too), and so is another
 *    seed; a resume with no model options takes the run's model;
 *  - another learning rate, warmup and length are taken, one line each,
 *    and become the run's: the next resume does not name them again;
 *  - a run already at its last step has nothing to do (status 0, no loss
 *    figures); a length below the run's step is refused, naming both;
 *  - --help describes --init-from, which refuses --size beside it; a run
 *    from a model directory starts from its weights (at --lr 0 its model
 *    is the source's, bit for bit), and stopped and resumed it ends on the
 *    weights of one that was not stopped;
 *  - a resume reads with the run's tokenizer from its checkpoint, and a
 *    finished run resumed writes its final model again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "train_runs.h"
#include "util/fileio.h"

static char out[1 << 16];
static char dir[4096], corpus[4200];

/* Runs `tnllm train` on the corpus with a small batch and args (later
 * flags win) into dir/name; the output lands in out. */
static int train(const char *name, const char *args) {
    return run_commandf(out, sizeof out,
                        "%s train --data %s --ctx 16 --micro-batch 2 --batch-tokens 32 --warmup 1 --eval-windows 4 "
                        "--log-every 100 -t 1 %s -o %s/%s",
                        tnllm_binary(), corpus, args, dir, name);
}

/* Whether run dir/name holds file. */
static int exists_in(const char *name, const char *file) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    return tn_file_exists(path);
}

/* Whether the final models of runs a and b hold the same bytes. */
static int same_models(const char *a, const char *b) {
    char pa[4400], pb[4400];
    snprintf(pa, sizeof pa, "%s/%s/model.safetensors", dir, a);
    snprintf(pb, sizeof pb, "%s/%s/model.safetensors", dir, b);
    return same_file_bytes(pa, pb);
}

static void check_resume(void) {
    int rc = train("run", "--size tiny --steps 4 --save-every 2 --lr 3e-3");
    CHECK(rc == 0, "the first run (%d):\n%s", rc, out);
    rc = train("run", "--size 15M --steps 6 --lr 3e-3 --resume");
    CHECK(rc == 1 && strstr(out, "--size 15M does not match the run in") && strstr(out, "started with --size tiny") &&
              strstr(out, "decoder_embed_dim 64 in the run, 256 given"),
          "a resume with another --size is refused, naming both (%d):\n%s", rc, out);
    rc = train("run", "--size tiny --pe ape --steps 6 --lr 3e-3 --resume");
    CHECK(rc == 1 && strstr(out, "position_encoding lrpe-d in the run, ape given"),
          "a resume with another switch is refused (%d):\n%s", rc, out);
    rc = train("run", "--pe ape --steps 6 --lr 3e-3 --resume");
    CHECK(rc == 2 && strstr(out, "--pe ape on a resume: give all the model options"),
          "a switch alone on a resume is refused (%d):\n%s", rc, out);
    rc = train("run", "--size tiny --seed 99 --steps 6 --lr 3e-3 --resume");
    CHECK(rc == 1 && strstr(out, "--seed 99: the run in") && strstr(out, "started with --seed 1234"),
          "a resume with another seed is refused (%d):\n%s", rc, out);

    rc = train("run", "--size tiny --steps 4 --lr 3e-3 --resume");
    CHECK(rc == 0 && strstr(out, "is already complete at step 4 (--steps 4): nothing to do; model") &&
              !strstr(out, "nan") && !strstr(out, "loss"),
          "a resume of a finished run has nothing to do (%d):\n%s", rc, out);
    rc = train("run", "--size tiny --steps 3 --lr 3e-3 --resume");
    CHECK(rc == 1 && strstr(out, "--steps 3: the run in") && strstr(out, "is already at step 4"),
          "a length below the run's step is refused, naming both (%d):\n%s", rc, out);

    rc = train("run", "--size tiny --steps 6 --lr 5e-2 --warmup 0 --resume");
    CHECK(rc == 0 && strstr(out, "resuming with --steps 6 (the run so far: 4 steps)") &&
              strstr(out, "resuming with --lr 0.05 (the run so far: 0.003)") &&
              strstr(out, "resuming with --warmup 0 (the run so far: 1)") && strstr(out, "from step 4"),
          "a new schedule is taken, one line per value (%d):\n%s", rc, out);
    rc = train("run", "--steps 8 --lr 5e-2 --warmup 0 --resume");
    CHECK(rc == 0 && strstr(out, "resuming with --steps 8 (the run so far: 6 steps)") &&
              !strstr(out, "resuming with --lr") && strstr(out, "from step 6"),
          "the new schedule is the run's now; no model options take the run's model (%d):\n%s", rc, out);
}

/* Ctrl-C's help, a checkpoint cut short, a run refused at start. */
static void check_interruption(void) {
    int rc = run_commandf(out, sizeof out, "%s train --help", tnllm_binary());
    CHECK(rc == 0 && strstr(out, "a second Ctrl-C aborts at once without saving"),
          "train --help describes Ctrl-C (%d):\n%s", rc, out);
    char path[8400];
    snprintf(path, sizeof path, "%s/cut/checkpoints/step_00000006", dir);
    TnError err;
    CHECK(tn_mkdir_p(path, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/cut/checkpoints/step_00000006/model.safetensors.tmp.999999999", dir);
    CHECK(tn_write_file(path, "x", 1, &err) == 0, "%s", err.msg);
    rc = train("cut", "--size tiny --steps 8 --resume");
    CHECK(rc == 1 && strstr(out, "no complete checkpoint in") &&
              strstr(out, "step_00000006 was interrupted while saving; start again without --resume"),
          "a checkpoint cut short is named (%d):\n%s", rc, out);
    rc = train("cut", "--size tiny --steps 2");
    CHECK(rc == 0 && strstr(out, "step_00000006, a checkpoint cut short") &&
              !exists_in("cut", "checkpoints/step_00000006"),
          "a new run removes the checkpoint cut short (%d):\n%s", rc, out);

    rc = run_commandf(out, sizeof out, "%s train --size tiny --data %s/missing.txt -o %s/failed", tnllm_binary(), dir,
                      dir);
    struct stat st;
    char failed[4200];
    snprintf(failed, sizeof failed, "%s/failed", dir);
    CHECK(rc == 1 && strstr(out, "missing.txt: cannot open") && stat(failed, &st) != 0,
          "a run refused at start (missing data) leaves no directory behind (%d):\n%s", rc, out);
}

static void check_warnings(void) {
    int rc = train("warned", "--size tiny --steps 3 --tokens 128 --micro-batch 4 --batch-tokens 40 --warmup 5");
    CHECK(rc == 0 && strstr(out, "warning: --tokens 128 sets the number of steps; --steps 3 is ignored") &&
              strstr(out, "warning: --micro-batch 4 lowered to 2: --batch-tokens 40 holds 2 windows of --ctx 16") &&
              strstr(out, "warning: --batch-tokens 40 rounded up to 64, whole micro-batches (2 of 2 x 16 tokens)") &&
              strstr(out, "warning: --warmup 5 is not below the run's 2 steps"),
          "silent adjustments are warned of (%d):\n%s", rc, out);
    rc = train("warned", "--size tiny --tokens 256 --micro-batch 4 --batch-tokens 40 --warmup 5 --resume");
    CHECK(rc == 0 && strstr(out, "from step 2") && !strstr(out, "lowered to") && !strstr(out, "rounded up"),
          "a resume does not repeat the run's warnings (%d):\n%s", rc, out);
    rc = train("unvalidated", "--size tiny --steps 2 --val-fraction 0");
    char metrics[4400], *text = NULL;
    snprintf(metrics, sizeof metrics, "%s/unvalidated/metrics.jsonl", dir);
    TnError err;
    CHECK(rc == 0 && strstr(out, "no validation (--val-fraction 0)") && !exists_in("unvalidated", "val.bin") &&
              tn_read_file(metrics, &text, NULL, &err) == 0 && !strstr(text, "val_loss") &&
              strstr(out, "(validation 0)"),
          "--val-fraction 0: every token trains, no validation (%d):\n%s", rc, out);
    free(text);
}

static void check_init_from(void) {
    int rc = run_commandf(out, sizeof out, "%s train --help", tnllm_binary());
    CHECK(rc == 0 && strstr(out, "--init-from DIR"), "train --help describes --init-from (%d):\n%s", rc, out);
    rc = train("source", "--size tiny --steps 2 --lr 3e-3");
    CHECK(rc == 0, "the source run (%d):\n%s", rc, out);
    char source[4200], args[8400];
    snprintf(source, sizeof source, "%s/source/model", dir);
    snprintf(args, sizeof args, "--init-from %s --size tiny --steps 2", source);
    rc = train("tuned", args);
    CHECK(rc == 2 && strstr(out, "--init-from takes the model from") && strstr(out, "drop --size tiny"),
          "--init-from refuses --size (%d):\n%s", rc, out);
    snprintf(args, sizeof args, "--init-from %s --steps 2 --lr 0", source);
    rc = train("still", args);
    CHECK(rc == 0 && same_models("source/model", "still/model"),
          "at --lr 0 a run from a model ends on its weights, bit for bit (%d):\n%s", rc, out);

    snprintf(args, sizeof args, "--init-from %s --lr 3e-3 --warmup 0 --min-lr-ratio 1 --save-every 2 --steps 4",
             source);
    rc = train("tuned", args);
    CHECK(rc == 0 && strstr(out, "from step 0"), "fine-tuning (%d):\n%s", rc, out);
    snprintf(args, sizeof args, "--init-from %s --lr 3e-3 --warmup 0 --min-lr-ratio 1 --save-every 2 --steps 2",
             source);
    rc = train("tuned_resumed", args);
    CHECK(rc == 0, "fine-tuning, 2 steps (%d):\n%s", rc, out);
    snprintf(args, sizeof args,
             "--init-from %s --lr 3e-3 --warmup 0 --min-lr-ratio 1 --save-every 2 --steps 4 --resume", source);
    rc = train("tuned_resumed", args);
    CHECK(rc == 0 && strstr(out, "from step 2") && same_models("tuned/model", "tuned_resumed/model") &&
              !same_models("tuned/model", "source/model"),
          "a fine-tuning run resumed ends on the weights of one that was not stopped (%d):\n%s", rc, out);
}

/* A resume reads with the run's tokenizer, kept in its checkpoint (no
 * --tokenizer needed; the checkpoint it was read from is later removed);
 * a finished run resumed writes its final model again from the last
 * checkpoint (one killed before it wrote model/ has none, or an older). */
static void check_resume_sources(void) {
    char tokenizer[4400], args[8800], model[4400], last[4400];
    snprintf(tokenizer, sizeof tokenizer, "%s/words.json", dir);
    int rc = run_commandf(out, sizeof out, "%s tokenizer train %s -o %s --vocab-size 300", tnllm_binary(), corpus,
                          tokenizer);
    CHECK(rc == 0, "a tokenizer for the run (%d):\n%s", rc, out);
    snprintf(args, sizeof args, "--size tiny --tokenizer %s --steps 2 --save-every 2", tokenizer);
    rc = train("words", args);
    CHECK(rc == 0, "a run with its own tokenizer (%d):\n%s", rc, out);
    rc = train("words", "--size tiny --steps 4 --save-every 2 --resume");
    CHECK(rc == 0 && strstr(out, "from step 2") && exists_in("words", "model/tokenizer.json") &&
              exists_in("words", "checkpoints/step_00000004/tokenizer.json"),
          "resumed without --tokenizer, the run's is read and kept (%d):\n%s", rc, out);
    snprintf(model, sizeof model, "%s/words/model", dir);
    remove_tree(model);
    rc = train("words", "--size tiny --steps 4 --save-every 2 --resume");
    snprintf(last, sizeof last, "%s/words/checkpoints/step_00000004/model.safetensors", dir);
    snprintf(model, sizeof model, "%s/words/model/model.safetensors", dir);
    CHECK(rc == 0 && strstr(out, "is already complete at step 4") && same_file_bytes(model, last),
          "a finished run resumed writes its model again from the last checkpoint (%d):\n%s", rc, out);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    make_temp_dir(dir, sizeof dir, "train-cli");
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    write_word_corpus(corpus, seed);
    check_interruption();
    check_warnings();
    check_resume();
    check_init_from();
    check_resume_sources();
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
