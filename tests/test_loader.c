/* The corpus reader and the window loader: every input form gives the
 * tokens it should; malformed input (corrupt shard, empty shard, empty
 * file, bad JSON line, an id outside the vocabulary, a context longer than
 * the data) is a clear error naming the file; an epoch visits every window
 * once; a restored loader reads the same batches as an uninterrupted one. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/corpus.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/stream.h"
#include "test.h"
#include "util/fileio.h"

static char dir[4096];

static const char *path_of(const char *name) {
    static char paths[4][4200];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 4200, "%s/%s", dir, name);
    return p;
}

static void write_text(const char *name, const char *text) {
    TnError err;
    CHECK(tn_write_file(path_of(name), text, strlen(text), &err) == 0, "%s", err.msg);
}

/* Reads paths and expects failure with `expect` in the message. */
static void expect_error(const char *paths, int vocab, const char *expect) {
    TnError err = {{0}};
    uint32_t *tokens = NULL;
    size_t n;
    int rc = tn_corpus_read(paths, tn_tokenizer_bytes(), vocab, &tokens, &n, &err);
    CHECK(rc == -1 && strstr(err.msg, expect), "reading %s: expected an error with '%s', got rc %d '%s'", paths,
          expect, rc, err.msg);
    if (!rc) free(tokens);
}

static void check_corpus(void) {
    TnError err;
    TnTokenizer *bytes = tn_tokenizer_bytes();
    write_text("a.txt", "hi");
    write_text("b.jsonl", "{\"text\": \"ab\", \"id\": 1}\n\n{\"text\": \"c\"}\n");
    uint32_t shard_ids[] = {5, 6, 7};
    CHECK(tn_shard_write(path_of("c.bin"), shard_ids, 3, &err) == 0, "%s", err.msg);
    char paths[8400];
    snprintf(paths, sizeof paths, "%s,%s,%s", path_of("a.txt"), path_of("b.jsonl"), path_of("c.bin"));
    uint32_t *tokens;
    size_t n;
    int rc = tn_corpus_read(paths, bytes, 259, &tokens, &n, &err);
    CHECK(rc == 0, "read text, JSONL and shard: %s", err.msg);
    /* "hi" </s> "ab" </s> "c" </s> 5 6 7, bytes + 3 */
    uint32_t want[] = {'h' + 3, 'i' + 3, 2, 'a' + 3, 'b' + 3, 2, 'c' + 3, 2, 5, 6, 7};
    CHECK(rc == 0 && n == 11 && memcmp(tokens, want, sizeof want) == 0, "concatenated tokens (%zu of them)", n);
    if (!rc) free(tokens);

    /* compressed input (stream.h's codecs, chosen by the name) reads as its
     * plain form: JSON Lines as .jsonl.gz and .jsonl.zst, text as .txt.gz */
    static const char *const compressed[] = {"b.jsonl.gz", "b.jsonl.zst", "t.txt.gz"};
    static const char *const contents[] = {"{\"text\": \"ab\", \"id\": 1}\n\n{\"text\": \"c\"}\n",
                                           "{\"text\": \"ab\", \"id\": 1}\n\n{\"text\": \"c\"}\n", "hi\nthere\n"};
    write_text("t.txt", "hi\nthere\n");
    for (int i = 0; i < 3; i++) {
        TnStreamWriter w;
        CHECK(tn_stream_writer_open(&w, path_of(compressed[i]), &err) == 0 &&
                  tn_stream_writer_write(&w, contents[i], strlen(contents[i]), &err) == 0 &&
                  tn_stream_writer_commit(&w, &err) == 0,
              "%s", err.msg);
        uint32_t *plain = NULL, *decompressed = NULL;
        size_t n_plain = 0, n_decompressed = 0;
        int rc_plain = tn_corpus_read(path_of(i < 2 ? "b.jsonl" : "t.txt"), bytes, 259, &plain, &n_plain, &err);
        int rc_decompressed = tn_corpus_read(path_of(compressed[i]), bytes, 259, &decompressed, &n_decompressed, &err);
        CHECK(rc_plain == 0 && rc_decompressed == 0 && n_plain == n_decompressed &&
                  memcmp(plain, decompressed, n_plain * sizeof *plain) == 0,
              "%s reads as its plain form (%zu tokens, %zu plain): %s", compressed[i], n_decompressed, n_plain,
              rc_decompressed ? err.msg : "");
        free(plain);
        free(decompressed);
    }
    CHECK(tn_corpus_is_jsonl("x.jsonl") && tn_corpus_is_jsonl("x.jsonl.gz") && tn_corpus_is_jsonl("x.jsonl.zst") &&
              !tn_corpus_is_jsonl("x.gz") && !tn_corpus_is_jsonl("x.txt.zst") && !tn_corpus_is_jsonl("jsonl"),
          "JSON Lines by the name, compressed or not");

    /* a shard under another name is known by its magic */
    CHECK(tn_shard_write(path_of("c.tokens"), shard_ids, 3, &err) == 0, "%s", err.msg);
    rc = tn_corpus_read(path_of("c.tokens"), bytes, 259, &tokens, &n, &err);
    CHECK(rc == 0 && n == 3 && memcmp(tokens, shard_ids, sizeof shard_ids) == 0, "a shard by its magic: %s", err.msg);
    if (!rc) free(tokens);

    FILE *f = fopen(path_of("corrupt.bin"), "wb");
    int32_t header[256] = {20240801, 7, 1000};
    fwrite(header, sizeof header, 1, f);
    fwrite(shard_ids, sizeof shard_ids, 1, f);
    fclose(f);
    expect_error(path_of("corrupt.bin"), 259, "truncated");
    write_text("garbage.bin", "not a shard header at all");
    expect_error(path_of("garbage.bin"), 259, "shard");
    CHECK(tn_shard_write(path_of("empty.bin"), shard_ids, 0, &err) == 0, "%s", err.msg);
    expect_error(path_of("empty.bin"), 259, "no tokens");
    write_text("empty.txt", "");
    expect_error(path_of("empty.txt"), 259, "no tokens");
    write_text("bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n");
    expect_error(path_of("bad.jsonl"), 259, "line 2");
    /* JSONL lines are parsed as the data commands parse them: a NUL byte,
     * a \u0000 escape or bytes after the object end are errors, never a
     * text or a file silently cut short. */
    static const char nul_line[] = "{\"text\": \"ok\"}\n{\"text\": \"cut\0here\"}\n{\"text\": \"lost\"}\n";
    CHECK(tn_write_file(path_of("nul.jsonl"), nul_line, sizeof nul_line - 1, &err) == 0, "%s", err.msg);
    expect_error(path_of("nul.jsonl"), 259, "nul.jsonl line 2: NUL byte");
    static const char nul_between[] = "{\"text\": \"ok\"}\n\0\n{\"text\": \"lost\"}\n";
    CHECK(tn_write_file(path_of("nul2.jsonl"), nul_between, sizeof nul_between - 1, &err) == 0, "%s", err.msg);
    expect_error(path_of("nul2.jsonl"), 259, "nul2.jsonl line 2: NUL byte");
    write_text("escape.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"cut\\u0000here\"}\n");
    expect_error(path_of("escape.jsonl"), 259, "escape.jsonl line 2: \\u0000");
    write_text("trailing.jsonl", "{\"text\": \"ok\"} {\"text\": \"lost\"}\n");
    expect_error(path_of("trailing.jsonl"), 259, "trailing.jsonl line 1: bytes after the JSON object");
    expect_error(path_of("c.bin"), 6, "outside the model's vocabulary");
    expect_error(path_of("missing.txt"), 259, "missing.txt");
}

static void check_loader(uint64_t seed) {
    TnError err;
    enum { N = 1001, T = 10 };
    uint32_t tokens[N];
    for (int i = 0; i < N; i++) tokens[i] = (uint32_t)i;
    TnLoader l;
    CHECK(tn_loader_init(&l, tokens, 10, T, seed, "short", &err) == -1 && strstr(err.msg, "fewer than one window"),
          "a context longer than the data fails: %s", err.msg);
    CHECK(tn_loader_init(&l, tokens, N, T, seed, "data", &err) == 0, "%s", err.msg);
    CHECK(l.n_windows == 100, "%zu windows of 10 + 1 in 1001 tokens", l.n_windows);
    /* one epoch: 25 batches of 4 windows cover each window exactly once, and
     * targets are inputs shifted by one */
    int seen[100] = {0}, shifted = 1, in_order = 1;
    int32_t x[4 * T], y[4 * T];
    for (int b = 0; b < 25; b++) {
        tn_loader_next(&l, 4, x, y);
        for (int w = 0; w < 4; w++) {
            seen[x[w * T] / T]++;
            in_order &= x[w * T] == (b * 4 + w) * T;
            for (int t = 0; t < T; t++) shifted &= y[w * T + t] == x[w * T + t] + 1;
        }
    }
    int once = 1;
    for (int i = 0; i < 100; i++) once &= seen[i] == 1;
    CHECK(once, "an epoch visits every window once");
    CHECK(shifted, "targets are the next tokens");
    CHECK(!in_order, "the order is shuffled");
    /* stop mid-epoch 2, restore into a fresh loader, compare the next batches */
    for (int b = 0; b < 7; b++) tn_loader_next(&l, 4, x, y);
    TnLoaderState saved = l.state;
    TnLoader r;
    CHECK(tn_loader_init(&r, tokens, N, T, seed, "data", &err) == 0, "%s", err.msg);
    CHECK(tn_loader_restore(&r, &saved, &err) == 0, "%s", err.msg);
    int same = 1;
    int32_t x2[4 * T], y2[4 * T];
    for (int b = 0; b < 40; b++) {
        tn_loader_next(&l, 4, x, y);
        tn_loader_next(&r, 4, x2, y2);
        same &= memcmp(x, x2, sizeof x) == 0 && memcmp(y, y2, sizeof y) == 0;
    }
    CHECK(same, "a restored loader continues with the same batches, across epochs");
    CHECK(l.state.epoch == 2, "epoch %llu (from 0) after 72 batches of 4 of 100 windows", (unsigned long long)l.state.epoch);
    tn_loader_free(&l);
    tn_loader_free(&r);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    make_temp_dir(dir, sizeof dir, "loader");
    check_corpus();
    check_loader(seed);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
