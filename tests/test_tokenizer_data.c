/* test_tokenizer_data: `tnllm data tokenize` (data/tokenize.h): shards hold
 * every document's ids followed by </s>, in input order, split at the
 * shard size, identical for 1 and 2 threads; bad input is an error naming
 * the file and line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "data/text_batches.h"
#include "data/tokenize.h"
#include "test.h"
#include "tokenizer_fixture.h"
#include "util/fileio.h"
#include "util/rng.h"

#define N_DOCS 300
#define SHARD 997

static const char *const pieces[] = {"▁", "a", "b", "c", "▁a", "ab", "▁ab", "中", "bc", "1", "▁abc"};
static const char *const merges[] = {"▁ a", "b c", "a b", "▁a b", "▁ab c"};

/* Reads all shards of prefix into one array; returns the token count. */
static size_t read_shards(const char *prefix, int n_shards, uint32_t *out, size_t cap, int *sizes_ok) {
    size_t n = 0;
    *sizes_ok = 1;
    for (int s = 0; s < n_shards; s++) {
        char path[4200];
        TnShard shard;
        TnError err;
        tn_shard_name(path, sizeof path, prefix, s);
        if (tn_shard_open(&shard, path, &err)) { *sizes_ok = 0; continue; }
        if (s + 1 < n_shards && shard.n_tokens != SHARD) *sizes_ok = 0;
        if (n + shard.n_tokens <= cap) memcpy(out + n, shard.tokens, shard.n_tokens * sizeof *out);
        n += shard.n_tokens;
        tn_shard_close(&shard);
    }
    return n;
}

int main(int argc, char **argv) {
    (void)argc;
    char dir[4096], tokenizer_path[4200], jsonl[4200], plain[4200], prefix[2][4200];
    make_temp_dir(dir, sizeof dir, "tokenizer-data");
    snprintf(tokenizer_path, sizeof tokenizer_path, "%s/tokenizer.json", dir);
    write_tokenizer_json(tokenizer_path, pieces, 11, merges, 5,
                         "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": "
                         "\"▁\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]}, "
                         "\"pre_tokenizer\": null",
                         1);
    TnTokenizer *tok;
    TnError err;
    if (tn_tokenizer_load(&tok, tokenizer_path, &err)) tn_die("%s", err.msg);

    /* Random documents over a few pieces; odd ones in JSONL, even ones as
     * blank-line separated text, the text file first. */
    static char docs[N_DOCS][64];
    static const char alphabet[] = "abc 1x";
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 0);
    snprintf(jsonl, sizeof jsonl, "%s/b.jsonl", dir);
    snprintf(plain, sizeof plain, "%s/a.txt", dir);
    FILE *fj = fopen(jsonl, "w"), *fp = fopen(plain, "w");
    for (int d = 0; d < N_DOCS; d++) {
        size_t n = 1 + tn_rng_below(&rng, 60);
        for (size_t i = 0; i < n; i++) docs[d][i] = alphabet[tn_rng_below(&rng, 6)];
        docs[d][0] = 'a'; /* documents start with a letter and hold no blank line */
        docs[d][n] = '\0';
        if (d % 2) fprintf(fj, "{\"meta\": %d, \"text\": \"%s\"}\n", d, docs[d]);
        else fprintf(fp, "%s\n\n", docs[d]);
    }
    fclose(fj);
    fclose(fp);
    static uint32_t want[N_DOCS * 70];
    size_t n_want = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int d = pass ? 1 : 0; d < N_DOCS; d += 2) {
            int32_t *ids;
            size_t n;
            tn_tokenizer_encode(tok, docs[d], strlen(docs[d]), &ids, &n, &err);
            for (size_t i = 0; i < n; i++) want[n_want++] = (uint32_t)ids[i];
            want[n_want++] = TN_TOKEN_EOS;
            free(ids);
        }

    const char *inputs[2] = {plain, jsonl};
    static uint32_t got[2][N_DOCS * 70];
    size_t n_got[2];
    for (int threads = 1; threads <= 2; threads++) {
        snprintf(prefix[threads - 1], sizeof prefix[0], "%s/t%d", dir, threads);
        TnTokenizeOptions opt = {prefix[threads - 1], SHARD, threads, 0};
        TnTokenizeStats stats;
        CHECK(tn_data_tokenize(tok, inputs, 2, &opt, &stats, &err) == 0, "tokenize: %s", err.msg);
        CHECK(stats.documents == N_DOCS && stats.tokens == (long long)n_want, "%lld documents, %lld tokens",
              stats.documents, stats.tokens);
        CHECK(stats.shards == (int)((n_want + SHARD - 1) / SHARD), "%d shards for %zu tokens", stats.shards, n_want);
        int sizes_ok;
        n_got[threads - 1] = read_shards(prefix[threads - 1], stats.shards, got[threads - 1], N_DOCS * 70, &sizes_ok);
        CHECK(sizes_ok, "every shard but the last holds %d tokens", SHARD);
    }
    CHECK(n_got[0] == n_want && memcmp(got[0], want, n_want * sizeof *want) == 0,
          "shards hold each document's ids and </s>, in order");
    CHECK(n_got[1] == n_got[0] && memcmp(got[0], got[1], n_got[0] * sizeof *got[0]) == 0,
          "1 and 2 threads write the same shards");

    /* A prefix in a directory that does not exist yet: created before any
     * work. A rerun with fewer shards removes the earlier run's higher ones. */
    char nested[4300], name[4400];
    snprintf(nested, sizeof nested, "%s/new/sub/x", dir);
    TnTokenizeOptions bigger = {nested, 1u << 20, 2, 0};
    TnTokenizeStats one;
    CHECK(tn_data_tokenize(tok, inputs, 2, &bigger, &one, &err) == 0 && one.shards == 1,
          "a prefix in a new directory: %s", err.msg);
    bigger.output = prefix[0];
    CHECK(tn_data_tokenize(tok, inputs, 2, &bigger, &one, &err) == 0 && one.shards == 1 && one.stale_removed > 0,
          "rerun into %s: %s", prefix[0], err.msg);
    tn_shard_name(name, sizeof name, prefix[0], 1);
    CHECK(!tn_file_exists(name), "%s of the earlier run removed (%d removed)", name, one.stale_removed);

    /* The reader alone with tiny batches: every document comes back whole
     * and in order, whatever the batch boundaries. */
    for (size_t max_bytes = 16; max_bytes <= 8192; max_bytes *= 8) { /* four batches hold any document */
        TnTextBatches reader;
        TnTextBatch batch;
        int n, next = 0, whole = 1;
        CHECK(tn_text_batches_open(&reader, inputs, 2, &err) == 0, "open: %s", err.msg);
        while ((n = tn_text_batches_next(&reader, &batch, max_bytes, &err)) > 0)
            for (int i = 0; i < n; i++, next++) {
                int d = next < N_DOCS / 2 ? 2 * next : 2 * (next - N_DOCS / 2) + 1; /* text file first */
                whole = whole && d < N_DOCS && batch.length[i] == strlen(docs[d]) &&
                        memcmp(batch.text[i], docs[d], batch.length[i]) == 0;
            }
        CHECK(n == 0 && next == N_DOCS && whole, "batches of %zu bytes: %d documents, all whole: %d", max_bytes, next,
              whole);
        tn_text_batches_close(&reader);
    }

    /* Bad inputs. */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    FILE *f = fopen(bad, "w");
    fputs("{\"text\": \"ok\"}\n{\"text\": 12}\n", f);
    fclose(f);
    const char *bad_inputs[1] = {bad};
    TnTokenizeOptions opt = {prefix[0], SHARD, 2, 0};
    TnTokenizeStats stats;
    CHECK(tn_data_tokenize(tok, bad_inputs, 1, &opt, &stats, &err) == -1 && strstr(err.msg, "bad.jsonl:2"),
          "a line without a string text is named: %s", err.msg);
    f = fopen(bad, "w");
    fputs("{\"text\": \"cut\\u0000here\"}\n", f); /* refused as by the data commands, not cut at the NUL */
    fclose(f);
    CHECK(tn_data_tokenize(tok, bad_inputs, 1, &opt, &stats, &err) == -1 && strstr(err.msg, "bad.jsonl:1: \\u0000"),
          "a \\u0000 escape is refused: %s", err.msg);
    const char *missing[1] = {"/nonexistent/x.jsonl"};
    CHECK(tn_data_tokenize(tok, missing, 1, &opt, &stats, &err) == -1 && strstr(err.msg, "/nonexistent/x.jsonl"),
          "a missing input is named: %s", err.msg);
    tn_tokenizer_free(tok);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
