/* `tnllm generate` end to end (the binary the Makefile builds before the
 * tests): a seed fixes the output, the speed line ends it, a saved state
 * continues, interactive turns run, and bad input (a foreign or truncated
 * state, a prompt the model cannot encode, an empty prompt without <s>)
 * exits with status 1 and a message saying why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/fileio.h"

/* `generate` with two arguments: the binary, then the model directory. */
#define GEN "%s generate -m %s -t 1 "

int main(int argc, char **argv) {
    (void)argc;
    unsigned long long seed = test_cli_seed();
    static char a[1 << 16], b[1 << 16];
    const char *gold = golden_dir(), *bin = tnllm_binary();
    char dir[4096], state[4200], other[4200], truncated[4200];
    make_temp_dir(dir, sizeof dir, "cli");
    snprintf(state, sizeof state, "%s/prompt.state", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    snprintf(truncated, sizeof truncated, "%s/truncated.state", dir);

    /* stdout only: the speed line on stderr differs from run to run */
    int rc = run_commandf(a, sizeof a, "{ " GEN "-p 'Hello' -n 12 --seed %llu --temp 5 2>/dev/null; }", bin, gold, seed);
    run_commandf(b, sizeof b, "{ " GEN "-p 'Hello' -n 12 --seed %llu --temp 5 2>/dev/null; }", bin, gold, seed);
    CHECK(rc == 0 && strlen(a) > 5 && strcmp(a, b) == 0, "seeded runs differ or failed (%d):\n%s\n---\n%s", rc, a, b);
    /* without --seed every run draws a seed of its own (runs within one second too), printed so that --seed
     * replays the run */
    char stderr_path[4200];
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", dir);
    unsigned long long seeds[3] = {0};
    for (int i = 0; i < 3; i++) {
        rc = run_commandf(i ? b : a, sizeof a, "{ " GEN "-p 'Hello' -n 12 --temp 5 2>%s; }", bin, gold, stderr_path);
        char *log = NULL;
        TnError err;
        const char *at = tn_read_file(stderr_path, &log, NULL, &err) == 0 ? strstr(log, ", seed ") : NULL;
        seeds[i] = at ? strtoull(at + strlen(", seed "), NULL, 10) : 0;
        free(log);
        CHECK(rc == 0 && at, "no seed printed (%d)", rc);
    }
    CHECK(seeds[0] != seeds[1] && seeds[0] != seeds[2] && seeds[1] != seeds[2], "three runs drew seeds %llu, %llu, %llu",
          seeds[0], seeds[1], seeds[2]);
    rc = run_commandf(b, sizeof b, "{ " GEN "-p 'Hello' -n 12 --temp 5 --seed %llu 2>/dev/null; }", bin, gold, seeds[0]);
    CHECK(rc == 0 && strcmp(a, b) == 0, "--seed %llu does not replay the run (%d):\n%s\n---\n%s", seeds[0], rc, a, b);

    rc = run_commandf(a, sizeof a, GEN "-p 'Hello' -n 12 --temp 0", bin, gold);
    CHECK(rc == 0 && strstr(a, "decode: 12 tokens") && strstr(a, "tokens/s)"), "no speed line (%d):\n%s", rc, a);

    /* generation that ends at EOS before -n says so on stderr; --ignore-eos generates on. The repetition penalty
     * makes greedy tokens differ: a copy of the model whose EOS is the 4th of them ends after 3 */
    rc = run_commandf(a, sizeof a, "{ " GEN "-p 'Hello' -n 8 --temp 0 --repeat-penalty 100 2>/dev/null; }", bin, gold);
    const char *generated = a + strlen("Hello");
    int eos_ok = rc == 0 && strlen(a) == strlen("Hello") + 8 && !memchr(generated, generated[3], 3);
    CHECK(eos_ok, "greedy tokens with a repetition penalty (%d): %s", rc, a);
    char eos_model[4200];
    snprintf(eos_model, sizeof eos_model, "%s/eos", dir);
    rc = run_commandf(b, sizeof b, "mkdir %s && cp %s/model.safetensors %s && sed 's/\"eos_token_id\": 2/"
                      "\"eos_token_id\": %d/' %s/config.json > %s/config.json", eos_model, gold, eos_model,
                      (unsigned char)generated[3] + 3, gold, eos_model);
    CHECK(rc == 0, "a model with another EOS: %s", b);
    rc = run_commandf(b, sizeof b, GEN "-p 'Hello' -n 8 --temp 0 --repeat-penalty 100", bin, eos_model);
    CHECK(rc == 0 && strstr(b, "[end of sequence after 3 tokens]") && strstr(b, "decode: 3 tokens"),
          "EOS after 3 tokens (%d):\n%s", rc, b);
    rc = run_commandf(b, sizeof b, "{ " GEN "-p 'Hello' -n 8 --temp 0 --repeat-penalty 100 --ignore-eos 2>&1 "
                      ">/dev/null; }", bin, eos_model);
    CHECK(rc == 0 && strstr(b, "decode: 8 tokens") && !strstr(b, "end of sequence"), "--ignore-eos (%d):\n%s", rc, b);

    /* -n never ends the output in half a character: one token per turn at a temperature that makes every byte
     * likely prints none of the lead bytes C2..F4 (each would begin a character the turn's end cuts); NUL bytes
     * removed, to read the output as a string */
    rc = run_commandf(a, sizeof a, "for i in $(seq 80); do echo x; done | { " GEN "-p 'Hello' -n 1 --temp 1000 "
                      "--top-k 0 --top-p 1 --seed %llu -i 2>&1; } | tr -d '\\000'", bin, gold, seed + 3);
    int leads = 0;
    for (const char *c = a; *c; c++) leads += (unsigned char)*c >= 0xc2 && (unsigned char)*c <= 0xf4;
    CHECK(rc == 0 && strstr(a, "decode: ") && leads == 0, "%d unfinished characters printed (%d):\n%s", leads, rc, a);

    rc = run_commandf(a, sizeof a, GEN "-p 'Hello' -n 0 --save-state %s", bin, gold, state);
    CHECK(rc == 0 && strstr(a, "saved the state at position 6"), "save-state (%d):\n%s", rc, a);
    rc = run_commandf(a, sizeof a, GEN "--load-state %s -p ' there' -n 4 --temp 0", bin, gold, state);
    CHECK(rc == 0 && strstr(a, "continuing") && strstr(a, "prefill: 6 tokens"), "load-state (%d):\n%s", rc, a);

    rc = run_commandf(a, sizeof a, "printf 'one\\ntwo\\n' | " GEN "-p 'Hi' -n 3 --temp 0 -i", bin, gold);
    CHECK(rc == 0 && strstr(a, "decode: 9 tokens"), "interactive: 3 turns of 3 tokens (%d):\n%s", rc, a);

    rc = run_commandf(a, sizeof a, "%s init --size tiny -o %s >/dev/null && %s generate -m %s --load-state %s",
                      bin, other, bin, other, state);
    CHECK(rc == 1 && strstr(a, "another model"), "foreign state (%d):\n%s", rc, a);
    rc = run_commandf(a, sizeof a, "head -c 500 %s > %s && " GEN "--load-state %s", state, truncated, bin, gold,
                      truncated);
    CHECK(rc == 1 && strstr(a, "truncated"), "truncated state (%d):\n%s", rc, a);
    rc = run_commandf(a, sizeof a, GEN "-p \"$(printf 'caf\\303\\251 \\377')\" -n 2", bin, gold);
    CHECK(rc == 1 && strstr(a, "outside the model's vocabulary"), "bytes the 256-token model lacks (%d):\n%s", rc, a);
    rc = run_commandf(a, sizeof a, GEN "-p '' -n 2", bin, gold);
    CHECK(rc == 0 && strstr(a, "prefill: 1 tokens"), "empty prompt: <s> alone (%d):\n%s", rc, a);
    rc = run_commandf(a, sizeof a, GEN "-p '' --no-bos -n 2", bin, gold);
    CHECK(rc == 1 && strstr(a, "empty"), "empty prompt without <s> (%d):\n%s", rc, a);

    /* --prompts: one JSON line per prompt, the same whatever the batch size. */
    char prompts[4200], jsonl[4200], out[4200], bad[4200];
    snprintf(prompts, sizeof prompts, "%s/prompts.txt", dir);
    snprintf(jsonl, sizeof jsonl, "%s/prompts.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    rc = run_commandf(a, sizeof a, "{ printf 'Hello\n\nThe cat\nOnce\nabc\n' > %s && " GEN
                      "--prompts %s -n 6 --seed %llu --temp 50 --batch-size 4 -o %s && cat %s; }", prompts, bin, gold, prompts,
                      seed + 1, out, out);
    CHECK(rc == 0 && strstr(a, "{\"index\": 3, \"prompt\": \"abc\", \"text\": ") && !strstr(a, "\"index\": 4") &&
              strstr(a, "\"tokens\": 6, \"stop_reason\": \"length\"}") && strstr(a, "4 prompts") && strstr(a, "tokens/s"),
          "--prompts -o (%d):\n%s", rc, a);
    rc = run_commandf(b, sizeof b, "{ " GEN "--prompts %s -n 6 --seed %llu --temp 50 --batch-size 1 2>/dev/null; }", bin,
                      gold, prompts, seed + 1);
    CHECK(rc == 0 && strstr(a, b), "--batch-size 1 and 4 differ (%d):\n%s\n---\n%s", rc, b, a);
    rc = run_commandf(a, sizeof a, "{ printf '{\"prompt\": \"Hello\"}\\n{\"text\": \"The cat\"}\\n' > %s && " GEN
                      "--prompts %s -n 6 --seed %llu --temp 50 2>/dev/null; }", jsonl, bin, gold, jsonl, seed + 1);
    CHECK(rc == 0 && strlen(a) > 20 && strncmp(a, b, strlen(a)) == 0,
          "JSONL prompts differ from the same plain prompts (%d):\n%s\n---\n%s", rc, a, b);
    /* the JSON text holds whole characters only: none cut by -n, no byte read as Latin-1 (\u0080..\u00ff) */
    rc = run_commandf(a, sizeof a, "{ for i in $(seq 60); do echo x; done > %s && " GEN "--prompts %s -n 2 --temp 1000 "
                      "--top-k 0 --top-p 1 --seed %llu 2>/dev/null; }", prompts, bin, gold, prompts, seed + 4);
    const char *latin1 = a;
    while ((latin1 = strstr(latin1, "\\u00")) && !strchr("89abcdef", latin1[4])) latin1++;
    CHECK(rc == 0 && strstr(a, "\"index\": 59") && !latin1, "--prompts wrote a broken character (%d):\n%s", rc,
          latin1 ? latin1 : a);

    rc = run_commandf(a, sizeof a, "printf '{\"prompt\": \"a\"}\n{\"prompt\" 1}\n' > %s && " GEN "--prompts %s",
                      bad, bin, gold, bad);
    CHECK(rc == 1 && strstr(a, ".jsonl:2: malformed JSON"), "malformed prompts file (%d):\n%s", rc, a);
    rc = run_commandf(a, sizeof a, GEN "--prompts %s -p hi", bin, gold, prompts);
    CHECK(rc == 2 && strstr(a, "not with -p"), "--prompts with -p (%d):\n%s", rc, a);
    /* a prompt that fails after -o's file is open (empty, without <s>): the
     * error names its line, and neither the output nor its temporary file stays */
    char failed_out[4300];
    snprintf(failed_out, sizeof failed_out, "%s/failed", dir);
    rc = run_commandf(a, sizeof a, "mkdir -p %s && printf '{\"prompt\": \"Hello\"}\n{\"prompt\": \"\"}\n' > %s && " GEN
                      "--prompts %s --no-bos -n 3 -o %s/out.jsonl", failed_out, jsonl, bin, gold, jsonl, failed_out);
    CHECK(rc == 1 && strstr(a, ".jsonl:2: the prompt is empty"), "an empty prompt without <s> (%d):\n%s", rc, a);
    rc = run_commandf(b, sizeof b, "ls -A %s", failed_out);
    CHECK(rc == 0 && b[0] == '\0', "the failed run left files behind: %s", b);

    rc = run_commandf(a, sizeof a, "%s generate --help", bin);
    CHECK(rc == 0 && strstr(a, "usage: tnllm generate") && strstr(a, "--load-state") && strstr(a, "--prompts FILE") &&
              strstr(a, "--batch-size"), "--help (%d):\n%s", rc, a);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
