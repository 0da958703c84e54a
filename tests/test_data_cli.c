/* The `tnllm data` commands end to end (./tnllm from the repository root, or
 * $TNLLM): clean gives byte-identical output for 1 and 2 threads and on a
 * rerun, accounts for every document; dedup removes planted duplicates at
 * document and line level; filter drops exactly the top percentile of each
 * group; review writes its page and tallies verdicts; every command has
 * --help; the two-pass commands refuse stdin and say so in --help, the
 * others read it; bad input, or an input that changes between dedup's
 * passes, fails with a message naming the file; filter refuses input that
 * was never scored and counts the unscored documents on stderr; no command
 * writes over an input (same inode, or same path spelt otherwise), and a
 * missing input, a directory as input or output and an output directory that
 * cannot be written each fail before any work with the path and the cause. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/transnormer.h"
#include "tokenizer/tokenizer.h"
#include "test.h"
#include "util/fileio.h"

/* Runs `tnllm ARGS` with stdout and stderr into out; returns the exit status. */
static int run_tnllm(const char *args, char *out, size_t cap) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", tnllm_binary(), args);
    return run_command(cmd, out, cap);
}

static int count_lines(const char *path) {
    char *data;
    size_t n;
    TnError err;
    if (tn_read_file(path, &data, &n, &err)) return -1;
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += data[i] == '\n';
    free(data);
    return lines;
}

int main(int argc, char **argv) {
    (void)argc;
    static char out[1 << 16];
    char dir[512], args[4096], path[1024], a[1024], b[1024];
    make_temp_dir(dir, sizeof dir, "datacli");

    /* A corpus with markup, a near copy, a short document and bad lines; the
     * documents' words come from a generator, so unrelated ones share none. */
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    FILE *fp = fopen(path, "w");
    char words[41][400];
    unsigned state = 12345;
    for (int i = 0; i < 40; i++) {
        size_t n = 0;
        for (int k = 0; k < 40; k++) {
            state = state * 1103515245u + 12345u;
            n += (size_t)snprintf(words[i] + n, sizeof words[i] - n, "w%u ", (state >> 16) % 5000);
        }
    }
    memcpy(words[40], words[3], sizeof words[3]);
    memcpy(words[40] + 1, "Z", 1); /* one word of 40 changed: Jaccard of 5-grams about 0.8 */
    for (int i = 0; i < 41; i++)
        fprintf(fp, "{\"id\":%d,\"source\":\"%s\",\"text\":\"<p>Document: %s</p> visit https://example.org/%d now!!!\"}\n",
                i, i % 2 ? "web" : "books", words[i], i == 40 ? 3 : i);
    fprintf(fp, "{\"id\":101,\"text\":\"too short\"}\n{\"id\": 102, \"text\": broken\n[1, 2, 3]\n\n");
    fclose(fp);

    snprintf(a, sizeof a, "%s/clean1.jsonl.zst", dir);
    snprintf(args, sizeof args, "data clean %s -o %s -t 1 --min-words 5", path, a);
    CHECK(run_tnllm(args, out, sizeof out) == 0 && strstr(out, "44 documents, 41 kept") && strstr(out, "malformed") &&
              strstr(out, "too-short "), "clean: %s", out);
    snprintf(b, sizeof b, "%s/clean2.jsonl.zst", dir);
    snprintf(args, sizeof args, "data clean %s -o %s -t 2 --min-words 5", path, b);
    CHECK(run_tnllm(args, out, sizeof out) == 0 && same_file_bytes(a, b), "clean with 2 threads differs: %s", out);
    snprintf(args, sizeof args, "data clean %s -o %s -t 2 --min-words 5", path, b);
    CHECK(run_tnllm(args, out, sizeof out) == 0 && same_file_bytes(a, b), "a rerun differs");

    /* Dedup: the near copy (id 100) of document 3 goes, with the reason. */
    snprintf(b, sizeof b, "%s/dedup.jsonl", dir);
    snprintf(args, sizeof args, "data dedup %s -o %s --threshold 0.7 --show-clusters 3", a, b);
    CHECK(run_tnllm(args, out, sizeof out) == 0 && strstr(out, "P(0.9)=") && count_lines(b) == 40,
          "dedup: %d kept: %s", count_lines(b), out);
    snprintf(path, sizeof path, "%s/dedup.rejects.jsonl", dir);
    char *rejects = NULL; /* stays NULL where a read fails */
    TnError err;
    CHECK(tn_read_file(path, &rejects, NULL, &err) == 0 && strstr(rejects, "\"reason\":\"near-duplicate\"") &&
              strstr(rejects, "\"detail\":\"of document 3\""), "dedup rejects name the kept document");
    free(rejects);

    /* Line level: a line shared by two documents survives only in the first. */
    snprintf(path, sizeof path, "%s/lines.jsonl", dir);
    const char *lines = "{\"text\":\"unique first line\\nthis line appears twice in the corpus\\nend one\"}\n"
                        "{\"text\":\"another start\\nthis line appears twice in the corpus\\nend two\"}\n";
    tn_write_file(path, lines, strlen(lines), &err);
    snprintf(args, sizeof args, "data dedup %s -o %s/lines.out.jsonl --level line", path, dir);
    snprintf(path, sizeof path, "%s/lines.out.jsonl", dir);
    char *kept;
    CHECK(run_tnllm(args, out, sizeof out) == 0 && strstr(out, "1 lines removed") &&
              tn_read_file(path, &kept, NULL, &err) == 0 && strstr(kept, "another start\\nend two"),
          "line dedup: %s", out);
    if (strstr(out, "1 lines removed")) free(kept);

    /* Filter: 50 documents per group with distinct scores, drop the top 10%. */
    snprintf(path, sizeof path, "%s/scored.jsonl", dir);
    fp = fopen(path, "w");
    for (int i = 0; i < 100; i++)
        fprintf(fp, "{\"text\":\"doc %d\",\"lang\":\"%s\",\"ppl\":%d}\n", i, i % 2 ? "zh" : "en", (i * 37) % 100 + 1);
    fprintf(fp, "{\"text\":\"never scored\"}\n");
    fclose(fp);
    snprintf(args, sizeof args, "data filter %s -o %s/filtered.jsonl --drop-top 10 --group-by lang", path, dir);
    snprintf(path, sizeof path, "%s/filtered.jsonl", dir);
    CHECK(run_tnllm(args, out, sizeof out) == 0 && count_lines(path) == 90 && strstr(out, "p90"),
          "filter kept %d: %s", count_lines(path), out);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "(%s %s 2>&1 >/dev/null)", tnllm_binary(), args); /* stderr alone */
    CHECK(run_command(cmd, out, sizeof out) == 0 && strstr(out, "warning: 1 of the 101 documents not scored"),
          "the unscored document counted on stderr: %s", out);
    snprintf(path, sizeof path, "%s/filtered.rejects.jsonl", dir);
    CHECK(count_lines(path) == 11, "filter rejects: %d", count_lines(path));

    /* Input never scored: an error naming it and the command to run, not an empty output. */
    snprintf(args, sizeof args, "data filter %s/lines.jsonl -o %s/unscored.jsonl --drop-top 10", dir, dir);
    snprintf(a, sizeof a, "%s/unscored.jsonl", dir);
    snprintf(b, sizeof b, "%s/unscored.rejects.jsonl", dir);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "lines.jsonl: none of the 2 documents has a numeric "
              "\"ppl\" field: run tnllm data score first") && count_lines(a) == -1 && count_lines(b) == -1,
          "filter of unscored input: %s", out);

    snprintf(args, sizeof args, "data review --kept %s/filtered.jsonl --dropped %s -n 4 -o %s/review.html", dir, path,
             dir);
    snprintf(path, sizeof path, "%s/review.html", dir);
    char *page;
    CHECK(run_tnllm(args, out, sizeof out) == 0 && tn_read_file(path, &page, NULL, &err) == 0 &&
              strstr(page, "Save verdicts") && strstr(page, "data-side=\"dropped\""), "review: %s", out);
    if (strstr(out, "wrote")) free(page);
    snprintf(path, sizeof path, "%s/verdicts.jsonl", dir);
    const char *verdicts = "{\"side\":\"dropped\",\"verdict\":\"bad\"}\n{\"side\":\"kept\",\"verdict\":\"bad\"}\n";
    tn_write_file(path, verdicts, strlen(verdicts), &err);
    snprintf(args, sizeof args, "data review --verdicts %s", path);
    CHECK(run_tnllm(args, out, sizeof out) == 0 && strstr(out, "100.0% of the drops were right"), "tally: %s", out);
    const char *misspelt = "{\"side\":\"keep\",\"verdict\":\"goood\"}\n"; /* was tallied as kept and good */
    tn_write_file(path, misspelt, strlen(misspelt), &err);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "verdicts.jsonl:1: not a verdict"), "misspelt: %s", out);

    static const char *commands[] = {"clean", "dedup", "score", "filter", "review", "bench"};
    for (int i = 0; i < 6; i++) {
        snprintf(args, sizeof args, "data %s --help", commands[i]);
        CHECK(run_tnllm(args, out, sizeof out) == 0 && strstr(out, "usage: tnllm data"), "%s --help", commands[i]);
    }
    CHECK(run_tnllm("data", out, sizeof out) == 2 && strstr(out, "commands:"), "data without a command");
    snprintf(args, sizeof args, "data clean %s/missing.jsonl -o %s/x.jsonl", dir, dir);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "missing.jsonl: cannot open"), "missing input: %s", out);
    snprintf(args, sizeof args, "data clean %s/lines.jsonl/x.jsonl -o %s/x.jsonl", dir, dir); /* under a file */
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "x.jsonl: cannot open: Not a directory"),
          "input under a file: %s", out);
    snprintf(path, sizeof path, "%s/corrupt.jsonl.gz", dir);
    tn_write_file(path, "not gzip\n", 9, &err);
    snprintf(args, sizeof args, "data dedup %s -o %s/y.jsonl", path, dir);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "corrupt.jsonl.gz: corrupt gzip"), "corrupt: %s", out);
    snprintf(path, sizeof path, "%s/y.jsonl", dir);
    CHECK(count_lines(path) == -1, "no output after a failure");
    CHECK(run_tnllm("data score x.jsonl -o y.jsonl", out, sizeof out) == 2 && strstr(out, "-m MODEL is required"),
          "score without a model: %s", out);
    /* A model whose loss is NaN: its documents are rejected as not scored,
     * never written with "ppl":nan (not JSON). */
    TnConfig cfg;
    CHECK(tn_config_from_size(&cfg, "tiny", &err) == 0, "%s", err.msg);
    cfg.vocab_size = TN_BYTE_VOCAB_SIZE;
    cfg.dim = 32, cfg.n_heads = 2, cfg.n_layers = 1, cfg.glu_dim = 64;
    TnModel m;
    tn_model_init(&m, &cfg, test_seed());
    for (size_t i = 0; i < m.layout.total; i++) m.params[i] = NAN;
    snprintf(path, sizeof path, "%s/nan_model", dir);
    CHECK(tn_model_save(&m, path, TN_F32, 0, &err) == 0, "save: %s", err.msg);
    tn_model_free(&m);
    snprintf(args, sizeof args, "data score %s/lines.jsonl -m %s -o %s/nan.jsonl -t 1", dir, path, dir);
    snprintf(path, sizeof path, "%s/nan.rejects.jsonl", dir);
    rejects = NULL;
    CHECK(run_tnllm(args, out, sizeof out) == 0 && strstr(out, "0 documents scored") &&
              tn_read_file(path, &rejects, NULL, &err) == 0 && strstr(rejects, "\"reason\":\"not scored\"") &&
              strstr(rejects, "nan"), "NaN loss: %s", out);
    free(rejects);

    /* No command writes over an input: an output that is an input (the same
     * inode, or a path through a directory made for it, or stdin's file),
     * or two outputs on one path, are refused naming both; the input stays. */
    static const char *const overwrites[] = {
        "data clean %1$s/own.jsonl -o %1$s/own.jsonl",
        "data clean %1$s/own.jsonl -o %1$s/x.jsonl --rejects %1$s/./own.jsonl",
        "data clean %1$s/own.jsonl -o %1$s/x.jsonl --summary %1$s/own.jsonl",
        "data clean - -o %1$s/own.jsonl < %1$s/own.jsonl",
        "data dedup %1$s/own.jsonl -o %1$s/new/../own.jsonl",
        "data filter %1$s/own.jsonl -o %1$s/own.jsonl --drop-top 10",
        "data score %1$s/own.jsonl -m %1$s/nan_model -o %1$s/own.jsonl",
        "data review --kept %1$s/lines.jsonl --dropped %1$s/own.jsonl -o %1$s/own.jsonl",
    };
    snprintf(a, sizeof a, "%s/lines.jsonl", dir);
    snprintf(path, sizeof path, "%s/own.jsonl", dir);
    for (size_t i = 0; i < sizeof overwrites / sizeof *overwrites; i++) {
        CHECK(tn_write_file(path, lines, strlen(lines), &err) == 0, "%s", err.msg); /* a copy of lines.jsonl */
        snprintf(args, sizeof args, overwrites[i], dir);
        CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "own.jsonl is the same file as the input ") &&
                  count_lines(path) == 2 && same_file_bytes(a, path),
              "%s: want a refusal naming both, the input left: %s", args, out);
    }
    snprintf(args, sizeof args, "data clean %s -o %s/o.jsonl --rejects %s/./o.jsonl", a, dir, dir);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "o.jsonl are the same file"),
          "one path for two outputs: %s", out);

    /* Bad paths, every command: a missing input, a directory as input or as
     * output, an output under a file (where no one, root included, can
     * create it), each an error naming the path and what is wrong. */
    char bad_dir[600];
    snprintf(bad_dir, sizeof bad_dir, "%s/a_directory", dir);
    CHECK(mkdir(bad_dir, 0700) == 0, "mkdir %s", bad_dir);
    static const char *const forms[] = { /* input, output, directory */
        "data clean %s -o %s",
        "data dedup %s -o %s",
        "data filter %s -o %s --drop-top 10",
        "data score %s -o %s -m %s/nan_model -t 1",
        "data review --dropped %s -o %s --kept %s/lines.jsonl",
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        for (int k = 0; k < 4; k++) {
            char in[1200], output[1200], want[2600];
            snprintf(in, sizeof in, "%s/lines.jsonl", dir);
            snprintf(output, sizeof output, "%s/bad_path.jsonl", dir);
            switch (k) {
            case 0:
                snprintf(in, sizeof in, "%s/missing.jsonl", dir);
                snprintf(want, sizeof want, "%s: cannot open: No such file or directory", in);
                break;
            case 1:
                snprintf(in, sizeof in, "%s", bad_dir);
                snprintf(want, sizeof want, "%s: is a directory, not a", bad_dir);
                break;
            case 2:
                snprintf(output, sizeof output, "%s", bad_dir);
                snprintf(want, sizeof want, "the output %s is a directory", bad_dir);
                break;
            default:
                snprintf(output, sizeof output, "%s/lines.jsonl/o.jsonl", dir);
                snprintf(want, sizeof want, "%s/lines.jsonl: not a directory", dir);
            }
            snprintf(args, sizeof args, forms[i], in, output, dir);
            CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, want), "%s: want \"%s\": %s", args, want, out);
        }
    }
    /* an output that is not a regular file (a FIFO here; /dev/null alike) is refused: the rename that writes
     * outputs would replace it */
    char fifo_out[700];
    snprintf(fifo_out, sizeof fifo_out, "%s/fifo_out", dir);
    CHECK(mkfifo(fifo_out, 0600) == 0, "mkfifo %s", fifo_out);
    snprintf(args, sizeof args, "data clean %s/lines.jsonl -o %s", dir, fifo_out);
    struct stat after;
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "is not a regular file") &&
              stat(fifo_out, &after) == 0 && S_ISFIFO(after.st_mode),
          "an output that is a FIFO is refused and left: %s", out);
    snprintf(args, sizeof args, "data bench --input %s", bad_dir);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "a_directory: is a directory, not a"),
          "bench of a directory: %s", out);
    snprintf(args, sizeof args, "data review --verdicts %s", bad_dir);
    CHECK(run_tnllm(args, out, sizeof out) == 1 && strstr(out, "a_directory: is a directory, not a file"),
          "verdicts in a directory: %s", out);

    /* stdin (-): the two-pass commands cannot reread it and refuse it (not
     * an empty output), the others read it; --help says which, once, on
     * the inputs' line. */
    static const struct { const char *command; int twice; } reads[] = {
        {"clean", 0}, {"score", 0}, {"dedup", 1}, {"filter", 1}};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "data %s --help", reads[i].command);
        run_tnllm(args, out, sizeof out);
        const char *says = reads[i].twice ? "(.gz/.zst by name; not stdin: read twice)\n"
                                          : "(.gz/.zst by name; - for stdin)\n";
        const char *mention = strstr(out, "stdin");
        CHECK(strstr(out, says) && !strstr(mention + 1, "stdin"), "%s --help, want \"%s\" and no other stdin:\n%s",
              reads[i].command, says, out);
        char model[600] = ""; /* score's: the NaN model, which rejects every document */
        if (strcmp(reads[i].command, "score") == 0) snprintf(model, sizeof model, " -m %s/nan_model", dir);
        snprintf(path, sizeof path, "%s/stdin.jsonl", dir);
        snprintf(args, sizeof args, "data %s - -o %s%s < %s/lines.jsonl", reads[i].command, path, model, dir);
        remove(path);
        int rc = run_tnllm(args, out, sizeof out);
        if (reads[i].twice)
            CHECK(rc == 2 && strstr(out, "cannot read stdin (-)") && count_lines(path) == -1, "%s from stdin: %s",
                  reads[i].command, out);
        else
            CHECK(rc == 0 && count_lines(path) >= 0, "%s from stdin: %s", reads[i].command, out);
    }
    /* An input that changes between dedup's two passes (a FIFO fed twice):
     * more documents, fewer, or more lines the second time fail, naming the
     * file (and the line where a document changed), writing nothing. */
    snprintf(path, sizeof path, "%s/fifo.jsonl", dir);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    snprintf(a, sizeof a, "%s/more_lines.jsonl", dir);
    const char *more_lines = "{\"text\":\"one\\ntwo\\nthree\\nfour\"}\n{\"text\":\"five\\nsix\\nseven\\neight\"}\n";
    CHECK(tn_write_file(a, more_lines, strlen(more_lines), &err) == 0, "%s", err.msg);
    /* two documents again, the first no longer JSON: read (3 lines) by the first pass, unreadable by the second */
    snprintf(a, sizeof a, "%s/broken.jsonl", dir);
    const char *broken = "{\"text\": not json any more\n{\"text\":\"another start\"}\n";
    CHECK(tn_write_file(a, broken, strlen(broken), &err) == 0, "%s", err.msg);
    static const char *feeds[] = {"lines.jsonl dedup.jsonl", "dedup.jsonl lines.jsonl", "lines.jsonl more_lines.jsonl",
                                  "lines.jsonl broken.jsonl"};
    static const char *where[] = {"fifo.jsonl line 3: input changed", "fifo.jsonl: input changed",
                                  "fifo.jsonl line 1: input changed", "fifo.jsonl line 1: input changed"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "data dedup %s -o %s/changed.jsonl -t 2 --level %s", path, dir,
                 i < 2 ? "doc" : "line");
        snprintf(a, sizeof a, "%s/changed.jsonl", dir);
        char cmd[8192], first[64], second[64];
        sscanf(feeds[i], "%63s %63s", first, second);
        /* the pause lets the first pass close the FIFO before it is fed again */
        snprintf(cmd, sizeof cmd, "(timeout 60 sh -c 'cat %s/%s > %s; sleep 1; cat %s/%s > %s') > /dev/null 2>&1 & "
                 "timeout 60 %s %s", dir, first, path, dir, second, path, tnllm_binary(), args);
        CHECK(run_command(cmd, out, sizeof out) == 1 && strstr(out, where[i]) &&
                  strstr(out, "input changed between passes") && count_lines(a) == -1,
              "dedup of an input that changed (%s then %s), want \"%s\": %s", first, second, where[i], out);
    }

    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
