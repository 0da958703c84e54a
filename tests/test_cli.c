/* The tnllm binary end to end: init, info, eval on a shard, --help on every
 * command, and clear failures (exit status 1 and a message naming the
 * problem) for bad flags and missing files. Runs ./tnllm from the
 * repository root, as `make test` does. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "data/shard.h"
#include "test.h"
#include "util/fileio.h"

/* Runs cmd (which starts with "./tnllm ") with stdout and stderr captured
 * into out and returns the exit status. The binary is $TNLLM when set
 * (make sets it: the sanitizer build runs its own). */
static int run(const char *cmd, char *out, size_t cap) {
    char full[8192];
    snprintf(full, sizeof full, "%s%s", tnllm_binary(), cmd + strlen("./tnllm"));
    return run_command(full, out, cap);
}

int main(int argc, char **argv) {
    (void)argc;
    unsigned long long seed = test_cli_seed();
    static char out[1 << 16];
    char dir[512], cmd[2048];
    make_temp_dir(dir, sizeof dir, "cli");

    snprintf(cmd, sizeof cmd, "./tnllm init --size tiny --seed %llu -o %s/model", seed, dir);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "wrote"), "init: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm info -m %s/model", dir);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "D=64 L=2 H=4") && strstr(out, "total"), "info: %s", out);
    /* a model directory is not replaced by random weights unless --force says so */
    char kept[600], weights[600];
    snprintf(weights, sizeof weights, "%s/model/model.safetensors", dir);
    snprintf(kept, sizeof kept, "%s/kept.safetensors", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", weights, kept);
    CHECK(run_command(cmd, out, sizeof out) == 0, "cp: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm init --size tiny --seed %llu -o %s/model", seed + 1, dir);
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "model already holds config.json, model.safetensors") &&
              strstr(out, "--force") && same_file_bytes(weights, kept),
          "init over a model: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm init --size tiny --seed %llu -o %s/model --force", seed + 1, dir);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "wrote") && !same_file_bytes(weights, kept),
          "init --force: %s", out);
    CHECK(run("./tnllm info --size 7B", out, sizeof out) == 0 && strstr(out, "embedding scale 1,"),
          "7B does not scale the embedding: %s", out);
    /* the flags users guess: llama.cpp's names, sizes in any case */
    CHECK(run("./tnllm info --size 385m -c 4096", out, sizeof out) == 0 && strstr(out, "D=1024") &&
              strstr(out, "batch 1 x ctx 4096"),
          "info --size 385m -c 4096: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s -p hi --predict 3 --temperature 0.5 --min-p 0.1 -t 1",
             golden_dir());
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "temp 0.5,") && strstr(out, "min-p 0.1,") &&
              strstr(out, "decode: 3 tokens"),
          "generate --predict --temperature --min-p: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s -p hi --n-predict 2 -t 1", golden_dir());
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "decode: 2 tokens"), "generate --n-predict: %s", out);

    uint32_t tokens[600];
    for (int i = 0; i < 600; i++) tokens[i] = (uint32_t)((i * 7919) % 512);
    char shard[1024];
    TnError err;
    snprintf(shard, sizeof shard, "%s/val.bin", dir);
    CHECK(tn_shard_write(shard, tokens, 600, &err) == 0, "%s", err.msg);
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/model --tokens %s --ctx 100 -t 1", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "6 windows of 100") &&
              strstr(out, "594 of 599 tokens scored") && strstr(out, "perplexity"),
          "eval: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/model --tokens %s --ctx 100 --stride 50", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "11 windows of 100 (stride 50), 599 of 599 tokens scored"),
          "eval stride: %s", out);
    /* the tokens after the last window that fits are scored by one more that ends at the end: 4 x 127 + 88 */
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/model --tokens %s --ctx 128", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "5 windows of 128 (stride 128), 596 of 599 tokens scored"),
          "eval with a tail: %s", out);
    /* --text reads .jsonl as train and data tokenize do: the "text" fields, each document ended by </s> */
    const char *bin = tnllm_binary(), *gold = golden_dir();
    int rc = run_commandf(out, sizeof out, "{ printf '{\"text\": \"hello world\"}\\n{\"id\": 2, \"text\": \"second "
                          "doc\"}\\n' > %s/docs.jsonl && %s data tokenize -m %s -o %s/docs %s/docs.jsonl >/dev/null && "
                          "%s eval -m %s --text %s/docs.jsonl --ctx 64 && %s eval -m %s --tokens %s/docs_000000.bin "
                          "--ctx 64; }", dir, bin, gold, dir, dir, bin, gold, dir, bin, gold, dir);
    /* the result lines (the progress lines on stderr hold "loss" too) */
    const char *text_loss = strstr(out, "\nloss "), *tokens_loss = text_loss ? strstr(text_loss + 1, "\nloss ") : NULL;
    CHECK(rc == 0 && strstr(out, "1 window of 23 (stride 23), 22 of 22 tokens scored") &&
              tokens_loss && strncmp(text_loss, tokens_loss, strcspn(text_loss, "]")) == 0,
          "eval --text a .jsonl file and --tokens its shard: %s", out);

    const char *helps[] = {"info", "init", "eval"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "./tnllm %s --help", helps[i]);
        CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "usage: tnllm"), "%s --help: %s", helps[i], out);
    }
    CHECK(run("./tnllm", out, sizeof out) == 2 && strstr(out, "commands:"), "no command: usage, status 2");
    CHECK(run("./tnllm frobnicate", out, sizeof out) == 2 && strstr(out, "unknown command 'frobnicate'"), "%s", out);
    /* the commit (a hex prefix, or unknown outside git) and what the build includes */
    int version_rc = run("./tnllm --version", out, sizeof out);
    const char *commit = strstr(out, "tnllm, commit ");
    CHECK(version_rc == 0 && commit && strspn(commit + strlen("tnllm, commit "), "0123456789abcdefunkow") >= 7 &&
              strstr(out, "built with: OpenMP, OpenBLAS"),
          "%s", out);
    CHECK(run("./tnllm -v", out, sizeof out) == 0 && strstr(out, "tnllm, commit "), "-v: %s", out);
    CHECK(run("./tnllm version", out, sizeof out) == 0 && strstr(out, "tnllm, commit "), "version: %s", out);
    CHECK(run("./tnllm help generate", out, sizeof out) == 0 && strstr(out, "usage: tnllm generate"), "%s", out);
    CHECK(run("./tnllm help data dedup", out, sizeof out) == 0 && strstr(out, "usage: tnllm data dedup"), "%s", out);
    CHECK(run("./tnllm help frobnicate", out, sizeof out) == 2 && strstr(out, "unknown command 'frobnicate'"), "%s",
          out);
    /* bad usage exits 2, a failed run 1; the message has one prefix, naming the command */
    CHECK(run("./tnllm info --size 9B", out, sizeof out) == 2 && strstr(out, "unknown model size '9B'"), "%s", out);
    CHECK(run("./tnllm init --size tiny", out, sizeof out) == 2 && strstr(out, "-o DIR is required"), "%s", out);
    CHECK(run("./tnllm eval --bogus", out, sizeof out) == 2 &&
              strncmp(out, "tnllm eval: error: unknown option '--bogus'", 43) == 0 && !strstr(out, "tnllm: error"),
          "%s", out);
    CHECK(run("./tnllm generate -m", out, sizeof out) == 2 && strstr(out, "tnllm generate: error: -m needs a value"),
          "%s", out);
    CHECK(run("./tnllm --help", out, sizeof out) == 0 &&
              strstr(out, "exit status: 0 success, 1 a failure at run time") && strstr(out, "2 bad usage"),
          "--help documents the exit statuses: %s", out);
    /* a forward pass of more than 2^31 - 1 tokens is refused before any work */
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/model --tokens %s --ctx 16M --batch 1024", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 2 &&
              strstr(out, "--batch, --ctx: 1024 sequences of 16000000 tokens are 16384000000 tokens"),
          "%s", out);
    /* a suffix that takes a count past 2^63 is refused, not wrapped around (to 384 here) */
    CHECK(run("./tnllm generate -n 18446744073709552k", out, sizeof out) == 2 &&
              strstr(out, "-n expects an integer, got '18446744073709552k'"), "%s", out);
    /* -m given a training run's directory, or a file of the model: what to pass instead */
    snprintf(cmd, sizeof cmd, "mkdir %s/run && cp -r %s/model %s/run/model", dir, dir, dir);
    CHECK(run_command(cmd, out, sizeof out) == 0, "a run directory: %s", out);
    static const char *const with_model[] = {"eval -m %s/run/ --tokens x.bin", "generate -m %s/run/ -p hi",
                                             "info -m %s/run/"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "./tnllm ");
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), with_model[i], dir);
        char want[2048];
        snprintf(want, sizeof want, "%s/run is a run directory: its model is %s/run/model (use -m %s/run/model)", dir,
                 dir, dir);
        CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, want), "%s: %s", cmd, out);
    }
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s/model/model.safetensors -p hi", dir);
    char want_dir[1200];
    snprintf(want_dir, sizeof want_dir, "model.safetensors is a file: -m takes the model's directory (-m %s/model)",
             dir);
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, want_dir), "-m FILE: %s", out);
    /* a model whose vocabulary (tiny: 512) outgrows its tokenizer's (bytes: 259) says that it may print nothing */
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s/model -p hi -n 2", dir);
    const char *vocab_warning = "tnllm generate: warning: model vocabulary 512 > tokenizer's 259: ids beyond it decode "
                                "to nothing";
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, vocab_warning) &&
              !strstr(strstr(out, vocab_warning) + strlen(vocab_warning), "warning"), "%s", out);
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s -p hi -n 2", golden_dir());
    CHECK(run(cmd, out, sizeof out) == 0 && !strstr(out, "warning"), "the golden model (256 ids): %s", out);

    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/none --tokens %s", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 1 && strncmp(out, "tnllm eval: error: ", 19) == 0 &&
              strstr(out, "none/config.json: cannot open"), "%s", out);
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/model --tokens %s --ctx 1000", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "1 window of 600 (stride 600), 599 of 599 tokens scored"),
          "a stream shorter than --ctx, one shorter window: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/model --tokens %s --ctx abc", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 2 && strstr(out, "--ctx expects an integer, got 'abc'"), "%s", out);
    snprintf(cmd, sizeof cmd, "./tnllm train --size tiny --data %s --ctx 16 --steps 1 --device tpu -o %s/run", shard,
             dir);
    CHECK(run(cmd, out, sizeof out) == 2 && strstr(out, "--device tpu: use cpu or cuda"), "%s", out);
    /* tiny's head width (16) is one the GPU kernels refuse; without a GPU or
     * without CUDA in the build, opening the device fails first: any of the
     * three is a clean error */
    snprintf(cmd, sizeof cmd,
             "./tnllm train --size tiny --vocab 512 --data %s --ctx 16 --steps 1 --device cuda -o %s/gpu", shard, dir);
    CHECK(run(cmd, out, sizeof out) == 1 && (strstr(out, "CUDA") || strstr(out, "head width of 64 or 128")), "%s",
          out);
    /* the GPU step takes the baseline too: the same clean errors here */
    snprintf(cmd, sizeof cmd,
             "./tnllm train --size tiny --vocab 512 --arch transformer --data %s --ctx 16 --steps 1 --device cuda "
             "-o %s/gpu_baseline",
             shard, dir);
    CHECK(run(cmd, out, sizeof out) == 1 && (strstr(out, "CUDA") || strstr(out, "head width of 64 or 128")), "%s",
          out);

    /* the model switches of SPEC section 3 as flags, and their refusals */
    snprintf(cmd, sizeof cmd, "./tnllm init --size tiny --pe exp-decay --norm rmsnorm --gate=off -o %s/switched", dir);
    CHECK(run(cmd, out, sizeof out) == 0, "init with switches: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm info -m %s/switched", dir);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "pe exp-decay") && strstr(out, "gate off") &&
              strstr(out, "norm rmsnorm"),
          "info of a switched model: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm init --size tiny --arch transformer -o %s/baseline", dir);
    CHECK(run(cmd, out, sizeof out) == 0, "init --arch transformer: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm eval -m %s/baseline --tokens %s --ctx 100", dir, shard);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "perplexity"), "eval of the baseline: %s", out);
    CHECK(run("./tnllm init --size tiny --pe lrpe --decay paper -o /nonexistent", out, sizeof out) == 2 &&
              strstr(out, "decay_type paper means nothing"),
          "%s", out);
    /* inference runs every switch and the baseline (with its KV cache) */
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s/switched -p hi -n 3 --seed %llu", dir, seed + 1);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "decode:"), "generate with switches: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s/baseline -p hi -n 3 --seed %llu", dir, seed + 2);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "decode:"), "generate with the baseline: %s", out);
    /* stdout that cannot be written (a full disk) is a failure, not status 0 */
    static const char *to_full[] = {"generate -m %s/baseline -p hi -n 3", "tokenizer encode -m %s/baseline -p hi",
                                    "generate -m %s/baseline --prompts %s/prompts.txt -n 2"};
    snprintf(cmd, sizeof cmd, "%s/prompts.txt", dir);
    CHECK(tn_write_file(cmd, "hello\nworld\n", 12, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        char args[1024];
        snprintf(args, sizeof args, to_full[i], dir, dir);
        snprintf(cmd, sizeof cmd, "{ %s %s > /dev/full; }", tnllm_binary(), args);
        CHECK(run_command(cmd, out, sizeof out) == 1 && strstr(out, "cannot write to stdout"), "%s > /dev/full: %s",
              args, out);
    }
    /* ... and refuses positions past the APE table */
    snprintf(cmd, sizeof cmd, "./tnllm init --size tiny --pe ape --max-positions 4 -o %s/ape", dir);
    CHECK(run(cmd, out, sizeof out) == 0, "init --pe ape: %s", out);
    snprintf(cmd, sizeof cmd, "./tnllm generate -m %s/ape -p hello -n 3", dir);
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "exceed the 4 positions"), "generate past the APE table: %s",
          out);
    CHECK(run("./tnllm init --size tiny --gla-act relu -o /nonexistent", out, sizeof out) == 2 &&
              strstr(out, "unknown value 'relu'"),
          "%s", out);

    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
