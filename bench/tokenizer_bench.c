/* tokenizer_bench: single-thread encode throughput of tnllm's BPE against
 * the naive approach, on real text and on adversarial inputs.
 *
 * usage: tokenizer_bench [--label NAME] TOKENIZER FILE...
 * TOKENIZER is a tokenizer.json or a SentencePiece .model. Each file is
 * encoded in chunks of at most 64 KiB ending at a line break (as
 * tokenizer_js_bench.mjs does, so per-call overheads do not count).
 * "naive" is the textbook BPE: the same pre-tokenization, then for each
 * word repeated scans of all adjacent pairs (a hash lookup each) merging the
 * lowest rank, with no word cache; its ids are checked against ours. With
 * --label, only tnllm's rows of the files are printed, named NAME.
 * Times are CPU seconds of this thread (the machine may be shared), as in
 * tokenizer_js_bench.mjs. Prints tab-separated rows: implementation,
 * input, MB, MB/s, ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/fileio.h"
#include "util/rng.h"

/* The naive encoder of one text; returns the id count (ids has room for
 * len + 1). */
static size_t naive_encode(const TnBpe *bpe, const char *text, size_t len, int32_t *ids) {
    TnWordSplitter words;
    size_t start, length, n_out = 0;
    int prefixed;
    tn_words_begin(&words, text, len, &bpe->split, 1, 0, 1);
    while (tn_words_next(&words, &start, &length, &prefixed)) {
        int32_t *s = ids + n_out;
        size_t n = 0;
        if (prefixed) s[n++] = bpe->char_ids[TN_METASPACE];
        for (size_t at = start; at < start + length;) {
            TnChar c = tn_utf8_next((const unsigned char *)text + at, start + length - at);
            uint32_t cp = c.codepoint == ' ' ? TN_METASPACE : c.codepoint;
            int32_t id = c.invalid || c.codepoint == TN_METASPACE ? -1 : bpe->char_ids[cp];
            if (id >= 0) s[n++] = id;
            else
                for (int i = 0; i < c.length; i++) s[n++] = bpe->byte_ids[(unsigned char)text[at + i]];
            at += c.length;
        }
        for (;;) {
            int32_t best_rank = -1, best_result = 0, result;
            size_t best = 0;
            for (size_t i = 0; i + 1 < n; i++) {
                int32_t rank = tn_bpe_merge_rank(bpe, s[i], s[i + 1], &result);
                if (rank >= 0 && (best_rank < 0 || rank < best_rank)) {
                    best_rank = rank;
                    best = i;
                    best_result = result;
                }
            }
            if (best_rank < 0) break;
            s[best] = best_result;
            memmove(s + best + 1, s + best + 2, (n - best - 2) * sizeof *s);
            n--;
        }
        n_out += n;
    }
    return n_out;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct Lines {
    const char **text;
    size_t *length, count, bytes;
} Lines;

#define CHUNK (64u << 10)

static Lines split_chunks(const char *data, size_t size) {
    Lines l = {tn_malloc((size / 1024 + 2) * sizeof(char *)), tn_malloc((size / 1024 + 2) * sizeof(size_t)), 0, size};
    for (size_t at = 0; at < size;) {
        size_t end = at + CHUNK < size ? at + CHUNK : size;
        if (end < size) {
            const char *nl = memrchr(data + at, '\n', end - at);
            if (nl) end = (size_t)(nl - data) + 1;
        }
        l.text[l.count] = data + at;
        l.length[l.count++] = end - at;
        at = end;
    }
    return l;
}

/* Best of `repeats` runs; returns MB/s, *ids the id count. */
static double time_ours(const TnTokenizer *tok, const Lines *l, int repeats, long long *ids) {
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        TnEncoder *enc = tn_encoder_new(tok); /* a cold cache every run */
        long long count = 0;
        double start = cpu_seconds();
        for (size_t i = 0; i < l->count; i++) {
            size_t n;
            tn_encoder_encode(enc, l->text[i], l->length[i], &n);
            count += (long long)n;
        }
        double seconds = cpu_seconds() - start;
        if (seconds < best) best = seconds;
        *ids = count;
        tn_encoder_free(enc);
    }
    return (double)l->bytes / 1e6 / best;
}

/* MB/s of the naive encoder; *mismatches counts lines whose ids differ. */
static double time_naive(const TnTokenizer *tok, const Lines *l, long long *ids, long long *mismatches) {
    const TnBpe *bpe = tn_tokenizer_bpe(tok);
    size_t longest = 0;
    for (size_t i = 0; i < l->count; i++) longest = l->length[i] > longest ? l->length[i] : longest;
    int32_t *out = tn_malloc((longest + 2) * sizeof *out);
    TnEncoder *enc = tn_encoder_new(tok);
    double seconds = 0;
    *ids = *mismatches = 0;
    for (size_t i = 0; i < l->count; i++) {
        double start = cpu_seconds();
        size_t n = naive_encode(bpe, l->text[i], l->length[i], out), n_ours;
        seconds += cpu_seconds() - start;
        const int32_t *ours = tn_encoder_encode(enc, l->text[i], l->length[i], &n_ours);
        *mismatches += n != n_ours || memcmp(ours, out, n * sizeof *out) != 0;
        *ids += (long long)n;
    }
    tn_encoder_free(enc);
    free(out);
    return (double)l->bytes / 1e6 / seconds;
}

static void bench(const TnTokenizer *tok, const char *label, const char *name, const char *data, size_t size,
                  int naive) {
    Lines l = split_chunks(data, size);
    long long ids, naive_ids, mismatches;
    double ours = time_ours(tok, &l, 3, &ids);
    printf("%s\t%s\t%.2f\t%.4g\t%lld\n", label, name, (double)size / 1e6, ours, ids);
    if (naive) {
        double slow = time_naive(tok, &l, &naive_ids, &mismatches);
        printf("naive BPE\t%s\t%.2f\t%.4g\t%lld\n", name, (double)size / 1e6, slow, naive_ids);
        if (mismatches) fprintf(stderr, "warning: naive and tnllm ids differ on %lld lines of %s\n", mismatches, name);
    }
    free(l.text);
    free(l.length);
}

int main(int argc, char **argv) {
    const char *label = NULL, *tokenizer = NULL;
    const char **files = tn_malloc((size_t)argc * sizeof *files);
    int n_files = 0;
    TnArgs a;
    args_init(&a, "tokenizer_bench", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, NULL, "--label")) label = args_value(&a);
        else if (args_current(&a)[0] != '-' && !tokenizer) tokenizer = args_current(&a);
        else if (args_current(&a)[0] != '-') files[n_files++] = args_current(&a);
        else args_unknown(&a);
    }
    if (!tokenizer) {
        fprintf(stderr, "usage: tokenizer_bench [--label NAME] TOKENIZER FILE...\n");
        return 2;
    }
    TnTokenizer *tok;
    TnError err;
    if (tn_tokenizer_load(&tok, tokenizer, &err)) tn_die("%s", err.msg);
    for (int f = 0; f < n_files; f++) {
        char *data;
        size_t size;
        if (tn_read_file(files[f], &data, &size, &err)) tn_die("%s", err.msg);
        const char *base = strrchr(files[f], '/');
        bench(tok, label ? label : "tnllm", base ? base + 1 : files[f], data, size, !label);
        free(data);
    }
    free(files);
    if (label) {
        tn_tokenizer_free(tok);
        return 0;
    }
    /* Adversarial: one 10 MB word, 10 MB of one character with spaces
     * every 5 MB, random bytes (invalid UTF-8, NULs); the naive encoder
     * only on a 20 kB word (it is quadratic in the word length). */
    size_t big = 10u << 20;
    char *text = tn_malloc(big);
    memset(text, 'a', big);
    bench(tok, "tnllm", "one 10 MB word 'aaa...'", text, big, 0);
    bench(tok, "tnllm", "one 20 kB word 'aaa...'", text, 20000, 1);
    for (size_t i = 0; i < big; i++) text[i] = "ab"[i % 2];
    bench(tok, "tnllm", "one 10 MB word 'abab...'", text, big, 0);
    TnRng rng;
    tn_rng_seed(&rng, 1, 0);
    for (size_t i = 0; i < big; i++) text[i] = (char)tn_rng_below(&rng, 256);
    bench(tok, "tnllm", "10 MB random bytes", text, big, 0);
    memset(text, ' ', big);
    bench(tok, "tnllm", "10 MB of spaces", text, big, 0);
    free(text);
    tn_tokenizer_free(tok);
    return 0;
}
