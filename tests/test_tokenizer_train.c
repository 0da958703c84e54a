/* test_tokenizer_train: BPE training against a naive trainer that
 * recounts every pair before every merge, thread-count independence,
 * character coverage, the pre-tokenization guarantees (digits and CJK
 * characters alone), training from JSONL and plain-text files, and the
 * round trip and reference ids of the trained tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "tokenizer/train.h"
#include "tokenizer/unicode.h"
#include "tokenizer_fixture.h"
#include "util/rng.h"

#define N_DOCS 200
#define DOC_BYTES 400

/* Documents of Zipf-ish words, numbers, Chinese and rare characters. */
static void make_corpus(char docs[N_DOCS][DOC_BYTES], size_t *lengths) {
    static const char *const words[] = {"the", "of", "tokenizer", "token", "linear", "attention", "decay", "a",
                                        "model", "is", "trans", "normer", "中文", "模型", "是", "的", "3.14",
                                        "2024", ",", ".", "!", "\n", "  ", "naïve", "emoji😀", "x=y+1;"};
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 0);
    for (int d = 0; d < N_DOCS; d++) {
        size_t n = 0;
        while (n + 20 < DOC_BYTES) {
            double u = tn_rng_uniform(&rng);
            size_t k = (size_t)(u * u * 26); /* small indices far more often */
            if (tn_rng_below(&rng, 100) == 0) { /* a rare character */
                n += (size_t)tn_utf8_encode(0x0400 + (uint32_t)tn_rng_below(&rng, 200), docs[d] + n);
                continue;
            }
            size_t len = strlen(words[k]);
            memcpy(docs[d] + n, words[k], len);
            n += len;
            if (tn_rng_below(&rng, 3)) docs[d][n++] = ' ';
        }
        lengths[d] = n;
    }
}

/* The naive trainer: words as lists of piece strings; before every merge
 * count every adjacent pair of every word from scratch. Ties go to the
 * lower pair of ids, ids read from the trained vocabulary (which must then
 * hold every piece the naive trainer makes). Returns how many of the
 * trained merges it reproduces in order. */
static int naive_merges_agree(const TnBpe *bpe, char docs[N_DOCS][DOC_BYTES], const size_t *lengths) {
    enum { MAX_WORDS = 20000, MAX_SYMBOLS = 64 };
    TnSplit classes = tn_split_of(TN_SPLIT_CLASSES);
    static char *sym[MAX_WORDS][MAX_SYMBOLS];
    static int n_sym[MAX_WORDS];
    int n_words = 0;
    for (int d = 0; d < N_DOCS; d++) {
        TnWordSplitter s;
        size_t start, len;
        int prefixed;
        tn_words_begin(&s, docs[d], lengths[d], &classes, 1, 0, 1);
        while (tn_words_next(&s, &start, &len, &prefixed) && n_words < MAX_WORDS) {
            int n = 0;
            if (prefixed) sym[n_words][n++] = strdup("\xe2\x96\x81");
            for (size_t at = start; at < start + len && n < MAX_SYMBOLS;) {
                TnChar c = tn_utf8_next((const unsigned char *)docs[d] + at, start + len - at);
                char piece[8] = {0};
                if (c.codepoint == ' ') strcpy(piece, "\xe2\x96\x81");
                else memcpy(piece, docs[d] + at, c.length);
                /* a character without a piece stays bytes: it ends pairs */
                sym[n_words][n++] = tn_bpe_find_piece(bpe, piece, strlen(piece)) >= 0 ? strdup(piece) : NULL;
                at += c.length;
            }
            n_sym[n_words++] = n;
        }
    }
    int agreed = 0;
    for (int m = 0; m < bpe->n_merges; m++) {
        /* count all pairs: a quadratic scan over a small list of candidates */
        enum { MAX_PAIRS = 8192 };
        static int32_t left[MAX_PAIRS], right[MAX_PAIRS];
        static long long count[MAX_PAIRS];
        int n_pairs = 0;
        for (int w = 0; w < n_words; w++)
            for (int i = 0; i + 1 < n_sym[w]; i++) {
                if (!sym[w][i] || !sym[w][i + 1]) continue;
                int32_t l = tn_bpe_find_piece(bpe, sym[w][i], strlen(sym[w][i]));
                int32_t r = tn_bpe_find_piece(bpe, sym[w][i + 1], strlen(sym[w][i + 1]));
                int p = 0;
                while (p < n_pairs && !(left[p] == l && right[p] == r)) p++;
                if (p == n_pairs && n_pairs < MAX_PAIRS) { left[p] = l; right[p] = r; count[p] = 0; n_pairs++; }
                if (p < n_pairs) count[p]++;
            }
        int best = -1;
        for (int p = 0; p < n_pairs; p++)
            if (best < 0 || count[p] > count[best] ||
                (count[p] == count[best] && (left[p] < left[best] || (left[p] == left[best] && right[p] < right[best]))))
                best = p;
        if (best < 0 || left[best] != bpe->merges[m].left || right[best] != bpe->merges[m].right) break;
        agreed++;
        const char *a = bpe->pieces[left[best]], *b = bpe->pieces[right[best]];
        for (int w = 0; w < n_words; w++) {
            int j = 0;
            for (int i = 0; i < n_sym[w];) {
                if (i + 1 < n_sym[w] && sym[w][i] && sym[w][i + 1] && strcmp(sym[w][i], a) == 0 &&
                    strcmp(sym[w][i + 1], b) == 0) {
                    char *joined = malloc(strlen(a) + strlen(b) + 1);
                    strcpy(joined, a);
                    strcat(joined, b);
                    free(sym[w][i]);
                    free(sym[w][i + 1]);
                    sym[w][j++] = joined;
                    i += 2;
                } else {
                    sym[w][j++] = sym[w][i++];
                }
            }
            n_sym[w] = j;
        }
    }
    for (int w = 0; w < n_words; w++)
        for (int i = 0; i < n_sym[w]; i++) free(sym[w][i]);
    return agreed;
}

static int same_model(const TnBpe *x, const TnBpe *y) {
    if (x->vocab_size != y->vocab_size || x->n_merges != y->n_merges) return 0;
    for (int i = 0; i < x->vocab_size; i++)
        if (strcmp(x->pieces[i], y->pieces[i]) != 0) return 0;
    return memcmp(x->merges, y->merges, (size_t)x->n_merges * sizeof *x->merges) == 0;
}

int main(int argc, char **argv) {
    (void)argc;
    static char docs[N_DOCS][DOC_BYTES];
    size_t lengths[N_DOCS];
    const char *texts[N_DOCS];
    make_corpus(docs, lengths);
    for (int d = 0; d < N_DOCS; d++) texts[d] = docs[d];
    TnTrainOptions opt = tn_train_defaults();
    opt.vocab_size = 420;
    opt.character_coverage = 0.999;
    opt.threads = 1;
    TnBpe one, two;
    TnTrainStats stats;
    TnError err;
    CHECK(tn_bpe_train_texts(&one, texts, lengths, N_DOCS, &opt, &stats, &err) == 0, "train: %s", err.msg);
    opt.threads = 2;
    CHECK(tn_bpe_train_texts(&two, texts, lengths, N_DOCS, &opt, NULL, &err) == 0, "train: %s", err.msg);
    CHECK(same_model(&one, &two), "1 and 2 counting threads learn the same vocabulary and merges");
    tn_bpe_free(&two);

    CHECK(one.vocab_size == 420, "vocab size %d", one.vocab_size);
    CHECK(strcmp(one.pieces[0], "<unk>") == 0 && strcmp(one.pieces[2], "</s>") == 0 && one.is_special[1],
          "control tokens first");
    CHECK(strcmp(one.pieces[3], "<0x00>") == 0 && strcmp(one.pieces[258], "<0xFF>") == 0, "byte pieces 3..258");
    TnSplit classes = tn_split_of(TN_SPLIT_CLASSES);
    CHECK(tn_split_at_least_as_fine(&one.split, &classes), "no merge crosses a word");
    int agreed = naive_merges_agree(&one, docs, lengths);
    CHECK(agreed == one.n_merges, "naive trainer reproduces %d of %d merges", agreed, one.n_merges);
    /* coverage 0.999 leaves most of the 200 rare characters (1% of draws) to bytes */
    int rare_pieces = 0;
    for (uint32_t cp = 0x0400; cp < 0x0400 + 200; cp++) rare_pieces += one.char_ids[cp] >= 0;
    CHECK(rare_pieces < 150 && stats.characters < 200, "coverage keeps %d of 200 rare characters", rare_pieces);
    int joined_digits = 0, joined_cjk = 0;
    for (int id = 259; id < one.vocab_size; id++) { /* after the control and byte pieces */
        int digits = 0, cjk = 0;
        for (size_t at = 0; one.pieces[id][at];) {
            TnChar c = tn_utf8_next((const unsigned char *)one.pieces[id] + at, strlen(one.pieces[id] + at));
            TnCharClass k = tn_char_class(c.codepoint, c.invalid);
            digits += k == TN_CLASS_DIGIT;
            cjk += k == TN_CLASS_CJK;
            at += c.length;
        }
        joined_digits += digits > 1;
        joined_cjk += cjk > 1;
    }
    CHECK(joined_digits == 0 && joined_cjk == 0, "%d pieces join digits, %d join CJK characters", joined_digits,
          joined_cjk);

    /* The trained tokenizer: reference ids, round trip, compression,
     * and the same ids after a save and reload. */
    TnTokenizer *tok = tn_tokenizer_from_bpe(&one);
    char dir[4096], path[4200];
    make_temp_dir(dir, sizeof dir, "tokenizer-train");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(tn_tokenizer_save(tok, path, &err) == 0, "save: %s", err.msg);
    TnTokenizer *loaded;
    CHECK(tn_tokenizer_load(&loaded, path, &err) == 0, "load: %s", err.msg);
    TnEncoder *enc = tn_encoder_new(tok), *enc_loaded = tn_encoder_new(loaded);
    size_t total_ids = 0, total_bytes = 0;
    int ok_ref = 0, ok_trip = 0, ok_loaded = 0;
    static int32_t ref[4 * DOC_BYTES];
    for (int d = 0; d < N_DOCS; d++) {
        size_t n, n_loaded, back_len;
        const int32_t *ids = tn_encoder_encode(enc, docs[d], lengths[d], &n);
        const int32_t *ids_loaded = tn_encoder_encode(enc_loaded, docs[d], lengths[d], &n_loaded);
        ok_loaded += n == n_loaded && memcmp(ids, ids_loaded, n * sizeof *ids) == 0;
        if (d < 40)
            ok_ref += reference_encode(tok, docs[d], lengths[d], ref) == n && memcmp(ids, ref, n * sizeof *ids) == 0;
        char *back = tn_tokenizer_decode(tok, ids, n, &back_len);
        ok_trip += back_len == lengths[d] && memcmp(back, docs[d], back_len) == 0;
        free(back);
        total_ids += n;
        total_bytes += lengths[d];
    }
    CHECK(ok_ref == 40, "%d of 40 documents match the naive encoder", ok_ref);
    CHECK(ok_trip == N_DOCS, "%d of %d documents round-trip", ok_trip, N_DOCS);
    CHECK(ok_loaded == N_DOCS, "%d of %d documents encode the same after save and load", ok_loaded, N_DOCS);
    CHECK(total_ids * 3 < total_bytes, "compression: %zu ids for %zu bytes", total_ids, total_bytes);
    tn_encoder_free(enc);
    tn_encoder_free(enc_loaded);
    tn_tokenizer_free(loaded);

    /* Files: the documents as JSONL and as blank-line separated text are
     * all read back as documents. */
    char jsonl[4200], plain[4200];
    snprintf(jsonl, sizeof jsonl, "%s/a.jsonl", dir);
    snprintf(plain, sizeof plain, "%s/b.txt", dir);
    FILE *fj = fopen(jsonl, "w"), *fp = fopen(plain, "w");
    int n_written = 0;
    for (int d = 0; d < N_DOCS; d++) {
        if (memchr(docs[d], '\n', lengths[d])) continue; /* plain text cannot hold every blank line */
        n_written++;
        FILE *f = d % 2 ? fj : fp;
        if (f == fj) {
            fputs("{\"id\": 1, \"text\": \"", f);
            for (size_t i = 0; i < lengths[d]; i++) {
                unsigned char ch = (unsigned char)docs[d][i];
                if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
                else fputc(ch, f);
            }
            fputs("\"}\n", f);
        } else {
            fwrite(docs[d], 1, lengths[d], f);
            fputs("\n\n", f);
        }
    }
    fclose(fj);
    fclose(fp);
    const char *files[2] = {plain, jsonl};
    opt.vocab_size = 350;
    TnBpe from_files;
    TnTrainStats file_stats;
    CHECK(tn_bpe_train_files(&from_files, files, 2, &opt, &file_stats, &err) == 0, "train files: %s", err.msg);
    CHECK(file_stats.documents == n_written, "%lld documents read from files, %d written", file_stats.documents,
          n_written);
    CHECK(from_files.vocab_size == 350, "vocab from files %d", from_files.vocab_size);
    tn_bpe_free(&from_files);
    const char *missing[1] = {"/nonexistent/corpus.txt"};
    CHECK(tn_bpe_train_files(&from_files, missing, 1, &opt, NULL, &err) == -1 && strstr(err.msg, "corpus.txt"),
          "missing file named: %s", err.msg);
    opt.vocab_size = 100;
    CHECK(tn_bpe_train_texts(&from_files, texts, lengths, N_DOCS, &opt, NULL, &err) == -1, "too small a vocabulary");
    tn_tokenizer_free(tok);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
