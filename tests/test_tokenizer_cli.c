/* test_tokenizer_cli: `tnllm tokenizer train|encode|decode` and `tnllm
 * data tokenize` end to end through the binary ($TNLLM, else ./tnllm, run
 * from the repository root as `make test` does): the trained tokenizer.json
 * loads, text survives encode | decode byte for byte, the shard holds the
 * encoded document and </s>, and bad input exits 1 naming the file: an
 * empty corpus, an output that is an input (train, convert, a shard of data
 * tokenize, standard output of encode and decode); a vocabulary the corpus
 * cannot fill with merges is a warning saying how many and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "data/shard.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "util/fileio.h"

static char dir[1024];

/* Runs "tnllm <args>" with output to dir/out.txt; returns the exit status. */
static int tnllm(const char *args) {
    const char *bin = getenv("TNLLM");
    char command[16384];
    snprintf(command, sizeof command, "%s %s > %s/out.txt 2>&1", bin ? bin : "./tnllm", args, dir);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *output(size_t *len) {
    char path[4200], *data;
    TnError err;
    snprintf(path, sizeof path, "%s/out.txt", dir);
    if (tn_read_file(path, &data, len, &err)) tn_die("%s", err.msg);
    return data;
}

/* tnllm(args) with its output, read whatever the exit status, into *out (the caller frees it). */
static int tnllm_output(const char *args, char **out) {
    int status = tnllm(args);
    size_t len;
    *out = output(&len);
    return status;
}

int main(int argc, char **argv) {
    (void)argc;
    make_temp_dir(dir, sizeof dir, "tokenizer-cli");
    char corpus[4200], args[16000], sample[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    FILE *f = fopen(corpus, "w");
    for (int i = 0; i < 400; i++)
        fprintf(f, "Linear attention %d keeps the state small. 线性注意力的状态很小。\n%s", i, i % 5 ? "" : "\n");
    fclose(f);
    snprintf(sample, sizeof sample, "%s/sample.txt", dir);
    f = fopen(sample, "w");
    static const char sample_text[] = "  Linear attention, 线性 😀 \xff\0 tail\n"; /* invalid UTF-8, a NUL */
    const size_t sample_len = sizeof sample_text - 1;
    fwrite(sample_text, 1, sample_len, f);
    fclose(f);

    snprintf(args, sizeof args, "tokenizer train --vocab-size 400 -t 2 -o %s/tokenizer.json %s", dir, corpus);
    size_t len;
    int status = tnllm(args);
    char *out = output(&len);
    CHECK(status == 0, "train: %s", out);
    free(out);
    snprintf(args, sizeof args, "%s/tokenizer_config.json", dir);
    CHECK(tn_file_exists(args), "tokenizer_config.json written beside tokenizer.json");

    snprintf(args, sizeof args, "tokenizer encode -m %s -f %s", dir, sample);
    CHECK(tnllm(args) == 0, "encode");
    char ids_path[4200];
    snprintf(ids_path, sizeof ids_path, "%s/ids.txt", dir);
    snprintf(args, sizeof args, "%s/out.txt", dir);
    rename(args, ids_path);
    snprintf(args, sizeof args, "tokenizer decode -m %s -f %s", dir, ids_path);
    CHECK(tnllm(args) == 0, "decode");
    out = output(&len);
    char *want;
    size_t want_len;
    TnError err;
    if (tn_read_file(sample, &want, &want_len, &err)) tn_die("%s", err.msg);
    CHECK(want_len == sample_len && len == want_len && memcmp(out, want, len) == 0,
          "encode | decode gives the %zu bytes back (got %zu)", want_len, len);
    free(out);

    snprintf(args, sizeof args, "data tokenize -m %s -o %s/shard -t 2 %s", dir, dir, sample);
    CHECK(tnllm(args) == 0, "data tokenize");
    TnTokenizer *tok;
    CHECK(tn_tokenizer_for_model(&tok, dir, &err) == 0, "load: %s", err.msg);
    int32_t *ids;
    size_t n;
    tn_tokenizer_encode(tok, want, want_len, &ids, &n, &err);
    TnShard shard;
    snprintf(args, sizeof args, "%s/shard_000000.bin", dir);
    CHECK(tn_shard_open(&shard, args, &err) == 0, "shard: %s", err.msg);
    int same = shard.n_tokens == n + 1 && shard.tokens[n] == TN_TOKEN_EOS;
    for (size_t i = 0; same && i < n; i++) same = shard.tokens[i] == (uint32_t)ids[i];
    CHECK(same, "the shard holds the document's %zu ids and </s>", n);
    tn_shard_close(&shard);
    free(ids);
    free(want);
    tn_tokenizer_free(tok);

    snprintf(args, sizeof args, "tokenizer train --vocab-size 400 -o %s/new/t.json /nonexistent.txt", dir);
    CHECK(tnllm(args) == 1 && strstr(out = output(&len), "/nonexistent.txt"), "a missing corpus exits 1 naming it");
    free(out);
    /* An empty corpus is an error, not a vocabulary of bytes alone. */
    snprintf(args, sizeof args, "%s/empty.txt", dir);
    CHECK(tn_write_file(args, "", 0, &err) == 0, "%s", err.msg);
    snprintf(args, sizeof args, "tokenizer train -o %s/empty/tokenizer.json %s/empty.txt", dir, dir);
    CHECK(tnllm_output(args, &out) == 1 && strstr(out, "empty.txt: no text to train a tokenizer on"),
          "an empty corpus exits 1 naming it: %s", out);
    free(out);
    snprintf(args, sizeof args, "%s/empty/tokenizer.json", dir);
    CHECK(!tn_file_exists(args), "no tokenizer from an empty corpus");
    /* Too little text for the vocabulary: one line saying how many merges and why. */
    snprintf(args, sizeof args, "%s/tiny.txt", dir);
    CHECK(tn_write_file(args, "hello world\n", 12, &err) == 0, "%s", err.msg);
    snprintf(args, sizeof args, "tokenizer train --vocab-size 1000 -o %s/tiny.json %s/tiny.txt", dir, dir);
    CHECK(tnllm_output(args, &out) == 0 && strstr(out, "warning: the vocabulary is 268, not 1000: 0 merges, then no "
              "pair of symbols occurred 2 or more times (--min-frequency): too little text"),
          "too little text: %s", out);
    free(out);
    /* Chinese: each character a symbol of its own, 741 of them fill the vocabulary: no merges at all */
    snprintf(args, sizeof args, "%s/chinese.txt", dir);
    f = fopen(args, "w");
    for (int cp = 0x4e00; cp < 0x4e00 + 800; cp++) /* UTF-8 of U+4E00.. */
        fprintf(f, "%c%c%c", 0xe0 | cp >> 12, 0x80 | (cp >> 6 & 0x3f), 0x80 | (cp & 0x3f));
    fclose(f);
    snprintf(args, sizeof args, "tokenizer train --vocab-size 1000 -o %s/chinese.json %s/chinese.txt", dir, dir);
    CHECK(tnllm_output(args, &out) == 0 && strstr(out, "warning: 741 characters filled the vocabulary of 1000: 0 "
              "merges, a character-level tokenizer"), "characters alone: %s", out);
    free(out);

    /* Nothing writes over its input, which stays as it was. */
    snprintf(args, sizeof args, "tokenizer train --vocab-size 300 -o %s/tiny.txt %s/tiny.txt", dir, dir);
    CHECK(tnllm_output(args, &out) == 1 && strstr(out, "tiny.txt is the same file as the input"),
          "train over its corpus: %s", out);
    free(out);
    snprintf(args, sizeof args, "tokenizer convert %s/tokenizer.json -o %s/./tokenizer.json", dir, dir);
    CHECK(tnllm_output(args, &out) == 1 && strstr(out, "tokenizer.json is the same file as the input"),
          "convert over its input: %s", out);
    free(out);
    snprintf(args, sizeof args, "%s/tiny.txt", dir);
    out = NULL; /* stays NULL where the read fails */
    CHECK(tn_read_file(args, &out, &len, &err) == 0 && len == 12, "the corpus kept");
    free(out);
    for (int k = 0; k < 2; k++) { /* >>, not >: the shell leaves the file whole and tnllm must refuse it itself */
        char command[16384];
        snprintf(command, sizeof command, "%s tokenizer %s -m %s -f %s/ids.txt >> %s/ids.txt 2> %s/out.txt",
                 getenv("TNLLM") ? getenv("TNLLM") : "./tnllm", k ? "decode" : "encode", dir, dir, dir, dir);
        int rc = system(command);
        out = output(&len);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1 && strstr(out, "standard output is the input file "),
              "%s to its input file: %s", k ? "decode" : "encode", out);
        free(out);
    }
    snprintf(args, sizeof args, "%s/shard_000003.bin", dir);
    CHECK(tn_write_file(args, "a document\n", 11, &err) == 0, "%s", err.msg);
    snprintf(args, sizeof args, "data tokenize -m %s -o %s/./shard %s/shard_000003.bin", dir, dir, dir);
    CHECK(tnllm_output(args, &out) == 1 && strstr(out, "shard_000003.bin is the shard "), "a shard as input: %s", out);
    free(out);
    snprintf(args, sizeof args, "%s/shard_000003.bin", dir);
    out = NULL; /* stays NULL where the read fails */
    CHECK(tn_read_file(args, &out, &len, &err) == 0 && len == 11, "the input shard kept");
    free(out);

    snprintf(args, sizeof args, "tokenizer decode -m %s 5 99999", dir);
    CHECK(tnllm(args) == 1 && strstr(out = output(&len), "99999"), "an id outside the vocabulary exits 1");
    free(out);
    CHECK(tnllm("tokenizer --help") == 0 && strstr(out = output(&len), "usage: tnllm tokenizer train"), "help");
    free(out);
    CHECK(tnllm("data tokenize --help") == 0, "data tokenize --help");
    /* a shard holds at most 2^31 - 1 tokens: a larger size is refused before any work */
    CHECK(tnllm("data tokenize --shard-tokens 3G") == 2 &&
              strstr(out = output(&len), "--shard-tokens must be in [1, 2147483647], got 3000000000"),
          "--shard-tokens over INT32_MAX refused");
    free(out);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
