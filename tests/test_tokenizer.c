/* test_tokenizer: BPE encoding and decoding against ids derived by hand
 * from the BPE rules, against the naive reference (tokenizer_fixture.c) on
 * random text, the byte round trip on random byte strings, tokenizer.json
 * reading and writing, and errors on malformed files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_fixture.h"
#include "util/fileio.h"
#include "util/rng.h"

#define LEGACY_PIPELINE                                                                               \
    "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"▁\"}," \
    " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]}, \"pre_tokenizer\": null"
#define METASPACE_PIPELINE                                                                               \
    "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"▁\","            \
    " \"prepend_scheme\": \"first\", \"split\": false}"

/* Ids 259.. of the hand-written vocabulary. */
static const char *const hand_pieces[] = {"▁", "a", "b", "c", "▁a", "ab", "▁ab", "中", "bc", "1", "▁abc"};
enum { META = 259, A, B, C, META_A, AB, META_AB, ZHONG, BC, ONE, META_ABC };
static const char *const hand_merges[] = {"▁ a", "b c", "a b", "▁a b", "▁ab c"};
#define BYTE(b) (3 + (b))

static int expect_ids(const TnTokenizer *tok, const char *text, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    TnError err;
    tn_tokenizer_encode(tok, text, strlen(text), &ids, &n, &err);
    int same = n == n_want && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!same) {
        fprintf(stderr, "\"%s\" encodes to", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return same;
}

#define EXPECT(tok, text, ...)                                                                          \
    do {                                                                                                \
        const int32_t want_[] = {__VA_ARGS__};                                                          \
        CHECK(expect_ids(tok, text, want_, sizeof want_ / sizeof want_[0]), "ids of \"%s\"", text);     \
    } while (0)

static TnTokenizer *load_or_die(const char *path) {
    TnTokenizer *tok;
    TnError err;
    if (tn_tokenizer_load(&tok, path, &err)) tn_die("%s", err.msg);
    return tok;
}

/* Ids worked out by hand: merges apply lowest rank first, so "▁abc" ends
 * as ▁a + bc (rank 1 "b c" beats rank 3 "▁a b"), never the piece ▁abc. */
static void test_hand_ids(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/legacy.json", dir);
    write_tokenizer_json(path, hand_pieces, 11, hand_merges, 5, LEGACY_PIPELINE, 1);
    TnTokenizer *tok = load_or_die(path);
    CHECK(tn_tokenizer_vocab_size(tok) == 270, "vocab size %d", tn_tokenizer_vocab_size(tok));
    EXPECT(tok, "abc", META_A, BC);
    EXPECT(tok, "ab c", META_AB, META, C);    /* ▁ a b ▁ c -> ▁a b ▁ c -> ▁ab ▁ c */
    EXPECT(tok, "中x", META, ZHONG, BYTE('x')); /* x is not a piece: its byte */
    EXPECT(tok, "é", META, BYTE(0xc3), BYTE(0xa9));
    EXPECT(tok, "bbc", META, B, BC);
    EXPECT(tok, "aab", META_A, AB);           /* leftmost first among ranks 0 < 2 */
    EXPECT(tok, " a", META, META_A);
    EXPECT(tok, "▁", META, BYTE(0xe2), BYTE(0x96), BYTE(0x81)); /* a literal ▁ keeps its bytes */
    EXPECT(tok, "11", META, ONE, ONE);
    int32_t *ids;
    size_t n;
    TnError err;
    tn_tokenizer_encode(tok, "", 0, &ids, &n, &err);
    CHECK(n == 0, "empty text gives %zu ids", n);
    free(ids);
    const int32_t seq[] = {TN_TOKEN_BOS, META_A, BC, META, C, BYTE(0xe2), BYTE(0x96), BYTE(0x81), TN_TOKEN_EOS};
    size_t len;
    char *text = tn_tokenizer_decode(tok, seq, 9, &len);
    CHECK(len == 8 && strcmp(text, "abc c▁") == 0, "decode gives \"%s\"", text);
    free(text);
    const char *piece = tn_tokenizer_token_bytes(tok, META_AB, &len);
    CHECK(len == 3 && memcmp(piece, " ab", 3) == 0, "token bytes of ▁ab");
    tn_tokenizer_token_bytes(tok, TN_TOKEN_EOS, &len);
    CHECK(len == 0, "</s> has no bytes");
    tn_tokenizer_token_bytes(tok, 99999, &len);
    CHECK(len == 0, "out of range id has no bytes");
    CHECK(strcmp(tn_tokenizer_piece(tok, META_ABC), "▁abc") == 0, "piece name");

    /* Saving and reloading keeps every id. */
    snprintf(path, sizeof path, "%s/saved.json", dir);
    CHECK(tn_tokenizer_save(tok, path, &err) == 0, "save: %s", err.msg);
    TnTokenizer *again = load_or_die(path);
    EXPECT(again, "abc", META_A, BC);
    EXPECT(again, "ab c", META_AB, META, C);
    CHECK(tn_tokenizer_vocab_size(again) == 270, "reloaded vocab size");
    tn_tokenizer_free(again);
    tn_tokenizer_free(tok);

    /* Metaspace pre-tokenizer: no "▁" is added before a leading space. */
    snprintf(path, sizeof path, "%s/metaspace.json", dir);
    write_tokenizer_json(path, hand_pieces, 11, hand_merges, 5, METASPACE_PIPELINE, 1);
    tok = load_or_die(path);
    EXPECT(tok, " abc", META_A, BC);
    EXPECT(tok, "abc", META_A, BC);
    tn_tokenizer_free(tok);

    /* Without byte fallback unknown characters become one fused <unk>. */
    snprintf(path, sizeof path, "%s/unk.json", dir);
    write_tokenizer_json(path, hand_pieces, 11, hand_merges, 5, LEGACY_PIPELINE, 0);
    tok = load_or_die(path);
    EXPECT(tok, "xyz a", META, TN_TOKEN_UNK, META_A);
    tn_tokenizer_free(tok);
}

static void expect_load_error(const char *dir, const char *name, const char *json, const char *needle) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (json) {
        FILE *f = fopen(path, "w");
        fputs(json, f);
        fclose(f);
    }
    TnTokenizer *tok = NULL;
    TnError err = {{0}};
    int rc = tn_tokenizer_load(&tok, path, &err);
    CHECK(rc == -1 && tok == NULL && strstr(err.msg, path) && strstr(err.msg, needle), "%s: got \"%s\"", name,
          err.msg);
}

/* A piece longer than any fixed buffer streams whole: its bytes are what
 * decode gives for it. */
static void test_long_piece(const char *dir) {
    static char long_piece[301];
    memset(long_piece, 'x', 300);
    const char *pieces[] = {long_piece};
    char path[4200];
    snprintf(path, sizeof path, "%s/long.json", dir);
    write_tokenizer_json(path, pieces, 1, NULL, 0, LEGACY_PIPELINE, 1);
    TnTokenizer *tok = load_or_die(path);
    const int32_t id = 259;
    size_t len, n;
    char *text = tn_tokenizer_decode(tok, &id, 1, &len);
    const char *bytes = tn_tokenizer_token_bytes(tok, id, &n);
    CHECK(len == 300 && n == 300 && memcmp(bytes, text, n) == 0, "a 300-byte piece streams whole: %zu bytes, decode %zu",
          n, len);
    free(text);
    tn_tokenizer_free(tok);
}

static void test_malformed(const char *dir) {
    const char *vocab = "\"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2}";
    char json[1024];
    expect_load_error(dir, "truncated.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": ", "not valid JSON");
    expect_load_error(dir, "nomodel.json", "{\"version\": \"1.0\"}", "no \"model\"");
    expect_load_error(dir, "unigram.json", "{\"model\": {\"type\": \"Unigram\"}}", "Unigram");
    snprintf(json, sizeof json, "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", %s, \"merges\": [\"a c\"]}}",
             vocab);
    expect_load_error(dir, "badmerge.json", json, "merge 0");
    snprintf(json, sizeof json, "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", %s, \"merges\": [\"a b\"]}}",
             vocab);
    expect_load_error(dir, "notpiece.json", json, "not in the vocabulary");
    snprintf(json, sizeof json, "{\"model\": {\"type\": \"BPE\", \"unk_token\": 0, %s, \"merges\": []}}", vocab);
    expect_load_error(dir, "unknumber.json", json, "unk_token must be a string");
    snprintf(json, sizeof json, "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", %s, \"merges\": []}}\n"
             "{\"model\": null}\n", vocab);
    expect_load_error(dir, "trailing.json", json, "after the JSON");
    expect_load_error(dir, "gap.json",
                      "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"a\": 2},"
                      " \"merges\": []}}",
                      "no piece for id 1");
    expect_load_error(dir, "dupid.json",
                      "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"a\": 0},"
                      " \"merges\": []}}",
                      "id 0");
    expect_load_error(dir, "bytelevel.json",
                      "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, "
                      "\"merges\": []}}",
                      "ByteLevel");
    char model_dir[4200], path[4300];
    TnError err;
    TnTokenizer *tok = NULL;
    expect_load_error(dir, "missing.json", NULL, "");
    /* An empty piece merged with another is odd but must neither crash nor fail. */
    snprintf(json, sizeof json, "{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, "
                                "\"\": 1, \"a\": 2}, \"merges\": [\" a\", [\"a\", \"\"]]}}");
    snprintf(path, sizeof path, "%s/empty-piece.json", dir);
    FILE *f = fopen(path, "w");
    fputs(json, f);
    fclose(f);
    CHECK(tn_tokenizer_load(&tok, path, &err) == 0, "empty piece: %s", err.msg);
    EXPECT(tok, "aa", 2, 2);
    tn_tokenizer_free(tok);
    snprintf(model_dir, sizeof model_dir, "%s/spm-model", dir);
    snprintf(path, sizeof path, "%s/tokenizer.model", model_dir);
    CHECK(tn_mkdir_p(model_dir, &err) == 0 && tn_write_file(path, "x", 1, &err) == 0, "%s", err.msg);
    CHECK(tn_tokenizer_for_model(&tok, model_dir, &err) == -1 && strstr(err.msg, "tokenizer.model"),
          "a malformed tokenizer.model is read and refused, naming it: %s", err.msg);
}

/* Random text over an alphabet that exercises every path: pieces, merges,
 * unknown characters, literal ▁, invalid UTF-8 and NUL bytes. */
static size_t random_text(TnRng *rng, char *out, size_t max_len) {
    static const char *const alphabet[] = {"a", "b", "c", " ", "  ", "中", "1", "x", "é", "▁", "\xff", "\xe4\xb8",
                                           "\x00", "ab", "\n", "\xf0\x9f\x98\x80"};
    static const size_t lengths[] = {1, 1, 1, 1, 2, 3, 1, 1, 2, 3, 1, 2, 1, 2, 1, 4};
    size_t n = 0, target = tn_rng_below(rng, max_len);
    while (n + 4 <= target) {
        size_t k = tn_rng_below(rng, 16);
        memcpy(out + n, alphabet[k], lengths[k]);
        n += lengths[k];
    }
    return n;
}

/* Three vocabularies: the hand one (its merges never cross a class
 * boundary, so words are split finely), one with "1 1" (digits may join:
 * cut at spaces, not between digits) and one with "c ▁" (a merge across a
 * space: no cut between a letter and a space). Each must give the
 * reference ids. */
static void test_random_against_reference(const char *dir, int variant, uint64_t seed) {
    static const char *const pieces[] = {"▁", "a", "b", "c", "▁a", "ab", "▁ab", "中", "bc", "1", "▁abc", "11", "c▁"};
    static const char *const merges[] = {"▁ a", "b c", "a b", "▁a b", "▁ab c", "1 1", "c ▁"};
    char path[4200];
    snprintf(path, sizeof path, "%s/variant%d.json", dir, variant);
    write_tokenizer_json(path, pieces, 11 + variant, merges, 5 + variant, LEGACY_PIPELINE, 1);
    TnTokenizer *tok = load_or_die(path);
    TnSplit classes = tn_split_of(TN_SPLIT_CLASSES), spaces = tn_split_of(TN_SPLIT_SPACES);
    const TnSplit *split = &tn_tokenizer_bpe(tok)->split;
    int digits_join = !split->cut[TN_CLASS_DIGIT][TN_CLASS_DIGIT];
    int as_expected = variant == 0   ? tn_split_at_least_as_fine(split, &classes)
                      : variant == 1 ? tn_split_at_least_as_fine(split, &spaces) && digits_join
                                     : !split->cut[TN_CLASS_LETTER][TN_CLASS_SPACE];
    CHECK(as_expected, "variant %d: the split follows the merges", variant);
    TnEncoder *enc = tn_encoder_new(tok);
    TnRng rng;
    tn_rng_seed(&rng, seed, 1 + (uint64_t)variant);
    int agree = 0, round_trips = 0, trials = 300;
    static char text[3000];
    static int32_t ref[4 * sizeof text + 4];
    for (int trial = 0; trial < trials; trial++) {
        /* every 50th text is long, for the heap path of long words */
        size_t len = random_text(&rng, text, trial % 50 ? 160 : sizeof text), n, n_ref;
        const int32_t *ids = tn_encoder_encode(enc, text, len, &n);
        n_ref = reference_encode(tok, text, len, ref);
        agree += n == n_ref && memcmp(ids, ref, n * sizeof *ids) == 0;
        size_t back_len;
        char *back = tn_tokenizer_decode(tok, ids, n, &back_len);
        round_trips += back_len == len && memcmp(back, text, len) == 0;
        free(back);
    }
    CHECK(agree == trials, "%d of %d random texts match the reference ids", agree, trials);
    CHECK(round_trips == trials, "%d of %d random texts round-trip", round_trips, trials);
    tn_encoder_free(enc);
    tn_tokenizer_free(tok);
}

/* decode(encode(x)) == x for random bytes, for both tokenizers. */
static void test_byte_round_trip(const char *dir, uint64_t seed) {
    char path[4200];
    snprintf(path, sizeof path, "%s/legacy.json", dir);
    TnTokenizer *tokenizers[2] = {load_or_die(path), tn_tokenizer_bytes()};
    TnRng rng;
    tn_rng_seed(&rng, seed, 4);
    for (int t = 0; t < 2; t++) {
        int ok = 0, trials = 300;
        for (int trial = 0; trial < trials; trial++) {
            char text[300];
            size_t len = tn_rng_below(&rng, sizeof text), n, back_len;
            for (size_t i = 0; i < len; i++) text[i] = (char)tn_rng_below(&rng, 256);
            int32_t *ids;
            TnError err;
            tn_tokenizer_encode(tokenizers[t], text, len, &ids, &n, &err);
            char *back = tn_tokenizer_decode(tokenizers[t], ids, n, &back_len);
            ok += back_len == len && memcmp(back, text, len) == 0;
            free(back);
            free(ids);
        }
        CHECK(ok == trials, "tokenizer %d: %d of %d random byte strings round-trip", t, ok, trials);
    }
    tn_tokenizer_free(tokenizers[0]);
}

/* Merges as [a, b] pairs, no normalizer (spaces stay literal), no byte
 * fallback: unknown characters are one fused <unk>. */
static void test_pairs_without_normalizer(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/pairs.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"vocab\": {\"<unk>\": 0, "
          "\"a\": 1, \"b\": 2, \"ab\": 3, \" \": 4, \"ab \": 5}, \"merges\": [[\"a\", \"b\"], [\"ab\", \" \"]]}}",
          f);
    fclose(f);
    TnTokenizer *tok = load_or_die(path);
    EXPECT(tok, "abab ", 3, 5);
    EXPECT(tok, "ab xyz", 5, 0);
    EXPECT(tok, " a", 4, 1);
    int32_t ids[] = {5, 3};
    size_t len;
    char *text = tn_tokenizer_decode(tok, ids, 2, &len);
    CHECK(len == 5 && strcmp(text, "ab ab") == 0, "no prefix to strip: \"%s\"", text);
    free(text);
    /* a piece with a space: the writer must fall back to [a, b] pairs */
    snprintf(path, sizeof path, "%s/pairs-saved.json", dir);
    TnError err;
    CHECK(tn_tokenizer_save(tok, path, &err) == 0, "save: %s", err.msg);
    TnTokenizer *again = load_or_die(path);
    EXPECT(again, "abab ", 3, 5);
    tn_tokenizer_free(again);
    tn_tokenizer_free(tok);
}

/* Long adversarial inputs round-trip and encode as the rules say: one
 * 1 MB word, a run of spaces, NUL and 0xFF bytes, literal "▁". */
static void test_adversarial(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/legacy.json", dir);
    TnTokenizer *tok = load_or_die(path);
    TnEncoder *enc = tn_encoder_new(tok);
    const size_t n = 1 << 20;
    char *text = malloc(n);
    const char *fill[] = {"ab", " ", "\0", "\xff", "▁", "a"};
    const size_t fill_len[] = {2, 1, 1, 1, 3, 1};
    for (int k = 0; k < 6; k++) {
        for (size_t i = 0; i < n; i++) text[i] = fill[k][i % fill_len[k]];
        size_t len = n - n % fill_len[k], n_ids, back_len;
        const int32_t *ids = tn_encoder_encode(enc, text, len, &n_ids);
        char *back = tn_tokenizer_decode(tok, ids, n_ids, &back_len);
        CHECK(back_len == len && memcmp(back, text, len) == 0, "adversarial input %d round-trips", k);
        free(back);
        if (k == 0) /* ▁ab then ab ab ... : one id per two bytes */
            CHECK(n_ids == len / 2 && ids[0] == META_AB && ids[1] == AB && ids[n_ids - 1] == AB,
                  "\"abab...\": %zu ids", n_ids);
        if (k == 1) CHECK(n_ids == len + 1, "spaces: one ▁ each, %zu ids", n_ids);
        if (k == 5) CHECK(n_ids == len && ids[0] == META_A && ids[1] == A, "\"aaa...\": %zu ids", n_ids);
    }
    free(text);
    tn_encoder_free(enc);
    tn_tokenizer_free(tok);
}

/* Corrupted tokenizer.json files (bytes replaced, cut short) either load
 * or fail with a message; nothing crashes (run under SANITIZE=1 too). */
static void test_corrupted_files(const char *dir, uint64_t seed) {
    char path[4200], bad[4200], *json;
    size_t size;
    TnError err;
    snprintf(path, sizeof path, "%s/legacy.json", dir);
    snprintf(bad, sizeof bad, "%s/corrupt.json", dir);
    if (tn_read_file(path, &json, &size, &err)) tn_die("%s", err.msg);
    TnRng rng;
    tn_rng_seed(&rng, seed, 5);
    int loaded = 0, failed_with_message = 0, trials = 200;
    static const char replacements[] = "\"{}[],:0 9a\\\x00\xff";
    for (int trial = 0; trial < trials; trial++) {
        char *copy = malloc(size);
        memcpy(copy, json, size);
        size_t len = size;
        if (trial % 4 == 0) len = tn_rng_below(&rng, size);
        else
            for (int k = 0; k < 3; k++)
                copy[tn_rng_below(&rng, size)] = replacements[tn_rng_below(&rng, sizeof replacements - 1)];
        if (tn_write_file(bad, copy, len, &err)) tn_die("%s", err.msg);
        free(copy);
        TnTokenizer *tok = NULL;
        if (tn_tokenizer_load(&tok, bad, &err) == 0) {
            int32_t *ids;
            size_t n;
            tn_tokenizer_encode(tok, "abc 中x ab", 11, &ids, &n, &err);
            free(tn_tokenizer_decode(tok, ids, n, NULL));
            free(ids);
            tn_tokenizer_free(tok);
            loaded++;
        } else {
            failed_with_message += tok == NULL && strstr(err.msg, bad) != NULL;
        }
    }
    free(json);
    CHECK(loaded + failed_with_message == trials, "%d corrupted files loaded, %d failed naming the file, of %d",
          loaded, failed_with_message, trials);
}

/* The splitter's ASCII fast path agrees with tn_char_class and
 * tn_is_boundary on every pair of ASCII bytes. */
static void test_ascii_splitting(void) {
    TnSplit classes = tn_split_of(TN_SPLIT_CLASSES);
    int disagree = 0;
    for (int left = 0; left < 128; left++)
        for (int right = 0; right < 128; right++) {
            const char text[2] = {(char)left, (char)right};
            TnWordSplitter s;
            size_t start, length;
            int prefixed;
            tn_words_begin(&s, text, 2, &classes, 0, 0, 0);
            tn_words_next(&s, &start, &length, &prefixed);
            TnCharClass a = tn_char_class((uint32_t)left, 0), b = tn_char_class((uint32_t)right, 0);
            int want = tn_is_boundary(TN_SPLIT_CLASSES, a, b);
            disagree += (length == 1) != want;
        }
    CHECK(disagree == 0, "%d ASCII pairs split differently from the character classes", disagree);
}

/* A model path that does not exist is an error naming it (a mistyped -m
 * once tokenized a corpus into bytes); a directory without tokenizer files
 * is the byte-level tokenizer. */
static void test_model_paths(const char *dir) {
    TnTokenizer *tok = NULL;
    TnError err;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-such-model/tokenizer.jsn", dir);
    CHECK(tn_tokenizer_for_model(&tok, missing, &err) < 0 && strstr(err.msg, missing) && !tok,
          "a missing model path: %s", tok ? "a tokenizer" : err.msg);
    CHECK(tn_tokenizer_for_model(&tok, dir, &err) == 0 && tok == tn_tokenizer_bytes(),
          "a directory without tokenizer files: %s", err.msg);
    tn_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "tokenizer");
    test_ascii_splitting();
    test_model_paths(dir);
    test_hand_ids(dir);
    test_long_piece(dir);
    test_malformed(dir);
    test_pairs_without_normalizer(dir);
    test_adversarial(dir);
    test_corrupted_files(dir, seed);
    for (int variant = 0; variant < 3; variant++) test_random_against_reference(dir, variant, seed);
    test_byte_round_trip(dir, seed);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
