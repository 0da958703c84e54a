/* Deduplication (src/data/dedup.h): union-find against a naive labelling,
 * MinHash estimates against exact Jaccard similarities, the LSH S-curve, and
 * the whole on-disk pipeline on a generated corpus (English and Chinese) with
 * near-duplicates planted at known Jaccard similarities: the detection rate
 * per similarity bucket must follow the S-curve's prediction, unrelated
 * documents must never merge, exact copies are found by hash, and the result
 * is the same for 1 and 2 threads; a later pass tells a document that
 * changed since the scan (tn_dedup_match). The exact Jaccard here is computed
 * independently: n-gram strings, sorted and merged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dedup.h"
#include "data/lsh.h"
#include "data/minhash.h"
#include "data/stream.h"
#include "data/textbuf.h"
#include "data/unionfind.h"
#include "test.h"
#include "util/rng.h"

#define NGRAM 5

static void test_union_find(uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 0);
    enum { N = 500 };
    int label[N];
    TnUnionFind uf;
    tn_union_find_init(&uf, N);
    for (int i = 0; i < N; i++) label[i] = i;
    for (int step = 0; step < 300; step++) {
        int a = (int)tn_rng_below(&rng, N), b = (int)tn_rng_below(&rng, N);
        tn_union_find_merge(&uf, (uint32_t)a, (uint32_t)b);
        int from = label[a] > label[b] ? label[a] : label[b], to = label[a] < label[b] ? label[a] : label[b];
        for (int i = 0; i < N; i++)
            if (label[i] == from) label[i] = to; /* naive: relabel the whole set to its minimum */
    }
    int agree = 1;
    for (int i = 0; i < N; i++) agree &= (int)tn_union_find_root(&uf, (uint32_t)i) == label[i];
    CHECK(agree, "union-find roots equal the naive minimum labels");
    tn_union_find_free(&uf);
}

/* ---- the independent reference: shingle strings ------------------------ */

typedef struct Shingles {
    char **items;
    int n;
} Shingles;

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Tokens: space-separated ASCII words, or single 3-byte UTF-8 characters in
 * text without spaces (the generated Chinese). */
static Shingles shingles_of(const char *text) {
    char *tokens[4096];
    int n = 0;
    const char *p = text;
    int chinese = strchr(text, ' ') == NULL;
    while (*p && n < 4096) {
        size_t len = chinese ? 3 : strcspn(p, " ");
        tokens[n++] = strndup(p, len);
        p += len;
        while (*p == ' ') p++;
    }
    Shingles s = {tn_malloc(sizeof(char *) * (size_t)(n + 1)), 0};
    for (int i = 0; i + NGRAM <= n; i++) {
        TnTextBuf b = {0};
        tn_textbuf_clear(&b);
        for (int j = 0; j < NGRAM; j++) {
            tn_textbuf_append_str(&b, tokens[i + j]);
            tn_textbuf_append(&b, "|", 1);
        }
        s.items[s.n++] = b.data;
    }
    for (int i = 0; i < n; i++) free(tokens[i]);
    qsort(s.items, (size_t)s.n, sizeof *s.items, compare_strings);
    int unique = 0;
    for (int i = 0; i < s.n; i++) {
        if (unique > 0 && strcmp(s.items[i], s.items[unique - 1]) == 0) free(s.items[i]);
        else s.items[unique++] = s.items[i];
    }
    s.n = unique;
    return s;
}

static double jaccard(const Shingles *a, const Shingles *b) {
    int i = 0, j = 0, both = 0;
    while (i < a->n && j < b->n) {
        int c = strcmp(a->items[i], b->items[j]);
        if (c == 0) both++, i++, j++;
        else if (c < 0) i++;
        else j++;
    }
    return (double)both / (double)(a->n + b->n - both);
}

static void shingles_free(Shingles *s) {
    for (int i = 0; i < s->n; i++) free(s->items[i]);
    free(s->items);
}

/* ---- generated documents ------------------------------------------------ */

static void random_word(TnRng *rng, char *out) {
    int len = 3 + (int)tn_rng_below(rng, 7);
    for (int i = 0; i < len; i++) out[i] = (char)('a' + tn_rng_below(rng, 26));
    out[len] = '\0';
}

/* A document of n tokens; variant_of (if not NULL) is copied with each
 * token replaced with probability p. */
static char *make_document(TnRng *rng, int chinese, int n, const char *variant_of, double p) {
    TnTextBuf b = {0};
    tn_textbuf_clear(&b);
    const char *src = variant_of;
    for (int i = 0; i < n; i++) {
        char token[16];
        size_t src_len = 0;
        if (src) {
            src_len = chinese ? 3 : strcspn(src, " ");
            memcpy(token, src, src_len);
            token[src_len] = '\0';
            src += src_len;
            while (*src == ' ') src++;
        }
        if (!src || tn_rng_uniform(rng) < p) {
            if (chinese) {
                int cp = 0x4e00 + (int)tn_rng_below(rng, 3000);
                token[0] = (char)(0xe0 | (cp >> 12));
                token[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                token[2] = (char)(0x80 | (cp & 0x3f));
                token[3] = '\0';
            } else {
                random_word(rng, token);
            }
        }
        if (i > 0 && !chinese) tn_textbuf_append(&b, " ", 1);
        tn_textbuf_append_str(&b, token);
    }
    return b.data;
}

/* P(|X - n p| >= |k - n p|) for X ~ Binomial(n, p): how far out in either
 * tail k equal signature entries of n independent permutations lie. */
static double binomial_two_sided(int n, double p, int k) {
    double distance = fabs(k - n * p), total = 0;
    for (int x = 0; x <= n; x++) {
        if (fabs(x - n * p) < distance - 1e-9) continue;
        double log_pmf = lgamma(n + 1.0) - lgamma(x + 1.0) - lgamma(n - x + 1.0) + (x > 0 ? x * log(p) : 0) +
                         (x < n ? (n - x) * log1p(-p) : 0);
        total += exp(log_pmf);
    }
    return total;
}

/* The fraction of equal entries is Binomial(256, J) / 256. Against the
 * exact binomial tail, not a normal 4 sigma: at J ~ 0.05 the count is
 * skewed (random seeds gave 5 sigma above once in 6000 pairs). Each of the
 * 40 pairs fails falsely with probability 1e-6. */
static void test_minhash_estimates(uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 1);
    TnMinHash m;
    tn_minhash_init(&m, 256, NGRAM, seed + 2);
    TnMinHashScratch scratch = {0};
    uint32_t sa[256], sb[256];
    double least = 1;
    for (int trial = 0; trial < 40; trial++) {
        char *a = make_document(&rng, trial % 2, 200, NULL, 0);
        char *b = make_document(&rng, trial % 2, 200, a, 0.02 + 0.01 * trial);
        Shingles x = shingles_of(a), y = shingles_of(b);
        double j = jaccard(&x, &y);
        tn_minhash_signature(&m, a, strlen(a), sa, &scratch);
        tn_minhash_signature(&m, b, strlen(b), sb, &scratch);
        int equal = 0;
        for (int k = 0; k < 256; k++) equal += sa[k] == sb[k];
        double tail = binomial_two_sided(256, j, equal);
        least = tail < least ? tail : least;
        shingles_free(&x), shingles_free(&y);
        free(a), free(b);
    }
    CHECK(least >= 1e-6, "MinHash estimates against Binomial(256, Jaccard): smallest tail probability %.2e < 1e-6", least);
    printf("minhash: 40 pairs, smallest binomial tail probability of the estimate %.2e (256 permutations)\n", least);
    CHECK(tn_minhash_tokens("Hello, WORLD 世界 ok", 23, &scratch) == 5, "tokens: 2 words, 2 CJK chars, 1 word");
    CHECK(tn_minhash_tokens("caf\xff\xfeteria", 11, &scratch) == 2, "tokens: invalid UTF-8 separates words");
    tn_minhash_scratch_free(&scratch);
    tn_minhash_free(&m);
}

static void test_s_curve(void) {
    int bands = 0, rows = 0;
    tn_lsh_choose(0.8, 128, &bands, &rows);
    double p5 = tn_lsh_probability(0.5, bands, rows), p7 = tn_lsh_probability(0.7, bands, rows);
    double p8 = tn_lsh_probability(0.8, bands, rows), p9 = tn_lsh_probability(0.9, bands, rows);
    printf("lsh: threshold 0.8, 128 permutations -> %d bands x %d rows; P(0.5)=%.3f P(0.7)=%.3f P(0.8)=%.3f "
           "P(0.9)=%.3f\n", bands, rows, p5, p7, p8, p9);
    CHECK(bands * rows <= 128 && p5 < 0.1 && p5 < p7 && p7 < p8 && p8 < p9 && p9 > 0.9, "S-curve shape");
    CHECK(fabs(tn_lsh_probability(0.6, 20, 5) - (1 - pow(1 - pow(0.6, 5), 20))) < 1e-12, "S-curve formula");
}

/* ---- the pipeline ------------------------------------------------------- */

#define N_BASE 600
#define N_VARIANTS 500
#define N_EXACT 40
#define N_DOCS (N_BASE + N_VARIANTS + N_EXACT)

static void test_pipeline(const char *dir, uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 3);
    static char *docs[N_DOCS];
    static int origin[N_DOCS]; /* base document of a variant or copy, -1 for a base */
    for (int i = 0; i < N_BASE; i++) {
        docs[i] = make_document(&rng, i % 6 == 5, 120 + (int)tn_rng_below(&rng, 100), NULL, 0);
        origin[i] = -1;
    }
    for (int i = N_BASE; i < N_BASE + N_VARIANTS; i++) {
        int base = (int)tn_rng_below(&rng, N_BASE);
        size_t tokens = base % 6 == 5 ? strlen(docs[base]) / 3 : 1;
        if (base % 6 != 5)
            for (const char *p = docs[base]; *p; p++) tokens += *p == ' ';
        docs[i] = make_document(&rng, base % 6 == 5, (int)tokens, docs[base], 0.12 * tn_rng_uniform(&rng));
        origin[i] = base;
    }
    for (int i = N_BASE + N_VARIANTS; i < N_DOCS; i++) {
        origin[i] = (int)tn_rng_below(&rng, N_BASE);
        docs[i] = strdup(docs[origin[i]]);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/corpus.jsonl.zst", dir);
    TnStreamWriter w;
    TnError err;
    tn_stream_writer_open(&w, path, &err);
    for (int i = 0; i < N_DOCS; i++) {
        char head[64];
        snprintf(head, sizeof head, "{\"id\":%d,\"text\":\"", i);
        tn_stream_writer_write(&w, head, strlen(head), &err);
        tn_stream_writer_write(&w, docs[i], strlen(docs[i]), &err);
        tn_stream_writer_write(&w, "\"}\n", 3, &err);
    }
    CHECK(tn_stream_writer_commit(&w, &err) == 0, "write corpus: %s", err.msg);

    char work[4200];
    snprintf(work, sizeof work, "%s/work", dir);
    TnDedupOptions o = {.level = TN_DEDUP_DOCUMENT, .num_perm = 128, .ngram = NGRAM, .seed = seed + 4, .work_dir = work,
                        .threads = 1};
    tn_lsh_choose(0.8, o.num_perm, &o.bands, &o.rows);
    const char *inputs[] = {path};
    TnDedupResult r1, r2;
    CHECK(tn_dedup_scan(&o, inputs, 1, &r1, &err) == 0, "dedup: %s", err.msg);
    o.threads = 2;
    CHECK(tn_dedup_scan(&o, inputs, 1, &r2, &err) == 0, "dedup 2 threads: %s", err.msg);
    CHECK(r1.n_units == N_DOCS && r1.n_documents == N_DOCS, "one unit per document: %u", r1.n_units);
    CHECK(memcmp(r1.representative, r2.representative, N_DOCS * sizeof(uint32_t)) == 0 &&
              memcmp(r1.status, r2.status, N_DOCS) == 0, "same clusters with 1 and 2 threads");

    /* Planted pairs by similarity bucket: observed detection vs the S-curve. */
    static const double edges[] = {0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0001};
    enum { BUCKETS = sizeof edges / sizeof edges[0] - 1 };
    int pairs[BUCKETS] = {0}, detected[BUCKETS] = {0};
    double predicted[BUCKETS] = {0}, variance[BUCKETS] = {0}, low_detected = 0;
    double high_pairs = 0, high_detected = 0, high_predicted = 0; /* Jaccard >= the threshold */
    for (int i = N_BASE; i < N_BASE + N_VARIANTS; i++) {
        Shingles a = shingles_of(docs[origin[i]]), b = shingles_of(docs[i]);
        double j = jaccard(&a, &b), p = tn_lsh_probability(j, o.bands, o.rows);
        shingles_free(&a), shingles_free(&b);
        int bucket = 0;
        while (j >= edges[bucket + 1]) bucket++;
        int same = r1.representative[i] == r1.representative[origin[i]];
        pairs[bucket]++;
        detected[bucket] += same;
        predicted[bucket] += p;
        variance[bucket] += p * (1 - p);
        if (j < 0.4) low_detected += same;
        if (j >= 0.8) high_pairs++, high_detected += same, high_predicted += p;
    }
    printf("\nplanted near-duplicates, threshold 0.8 (%d bands x %d rows):\n", o.bands, o.rows);
    printf("%-12s %6s %10s %10s\n", "Jaccard", "pairs", "detected", "S-curve");
    int follows = 1;
    for (int k = 0; k < BUCKETS; k++) {
        if (!pairs[k]) continue;
        double observed = (double)detected[k] / pairs[k], expected = predicted[k] / pairs[k];
        double tolerance = 4 * sqrt(variance[k]) / pairs[k] + 0.05;
        printf("[%.2f,%.2f) %6d %10.3f %10.3f\n", edges[k], edges[k + 1] > 1 ? 1.0 : edges[k + 1], pairs[k], observed,
               expected);
        if (fabs(observed - expected) > tolerance) follows = 0;
    }
    CHECK(follows, "detection rate per bucket within 4 sigma + 0.05 of the S-curve");
    /* The S-curve gives each such pair a chance below 1e-4 (9 bands x 13
     * rows: 6e-5 at 0.4), so over some hundred pairs random seeds merged
     * one once in 300 runs; two would take ~1e-6. Merging on chance band
     * collisions (a banding bug) merges many. */
    CHECK(low_detected <= 1, "%.0f planted pairs with Jaccard < 0.4 merged", low_detected);

    /* Precision: unrelated base documents never share a cluster. */
    int merged_bases = 0;
    for (int i = 0; i < N_BASE; i++) merged_bases += r1.representative[i] != (uint32_t)i;
    CHECK(merged_bases == 0, "%d unrelated base documents merged", merged_bases);
    /* Every merge stays within a planted family (a base, its variants and
     * copies): count merged documents that do not. Two variants of one base
     * may merge with each other and not with their base. */
    int wrong_merges = merged_bases;
    for (int i = N_BASE; i < N_DOCS; i++) {
        int kept = (int)r1.representative[i], family = origin[kept] < 0 ? kept : origin[kept];
        wrong_merges += kept != i && family != origin[i];
    }
    printf("recall at Jaccard >= 0.8: %.3f (S-curve %.3f, %.0f pairs); precision: %d of %lld removed documents "
           "not planted duplicates\n", high_detected / high_pairs, high_predicted / high_pairs, high_pairs,
           wrong_merges, r1.exact + r1.near);
    CHECK(wrong_merges == 0, "%d documents merged into a cluster outside their planted family", wrong_merges);
    int exact_found = 1;
    for (int i = N_BASE + N_VARIANTS; i < N_DOCS; i++)
        exact_found &= r1.status[i] == TN_UNIT_EXACT && r1.representative[i] == r1.representative[origin[i]];
    CHECK(exact_found, "every exact copy found by hash, in its original's cluster");
    int identical = N_EXACT; /* plus variants that drew no replacement */
    for (int i = N_BASE; i < N_BASE + N_VARIANTS; i++) identical += strcmp(docs[i], docs[origin[i]]) == 0;
    CHECK(r1.exact == identical, "exact count %lld, want %d", r1.exact, identical);
    printf("dedup: %lld exact, %lld near duplicates, %lld clusters, %lld band merges\n\n", r1.exact, r1.near,
           r1.clusters, r1.candidates);
    tn_dedup_result_free(&r1);
    tn_dedup_result_free(&r2);
    for (int i = 0; i < N_DOCS; i++) free(docs[i]);
}

static void test_lines(const char *dir, uint64_t seed) {
    char path[4200], work[4200];
    snprintf(path, sizeof path, "%s/lines.jsonl", dir);
    snprintf(work, sizeof work, "%s/work-lines", dir);
    const char *corpus = "{\"text\":\"first line here\\nshared line\\n\\n   \\nthird\"}\n"
                         "not json\n"
                         "{\"text\":\"shared line\\nnew line\"}\n";
    TnError err;
    tn_write_file(path, corpus, strlen(corpus), &err);
    TnDedupOptions o = {.level = TN_DEDUP_LINE, .num_perm = 16, .ngram = 2, .bands = 4, .rows = 4, .seed = seed,
                        .work_dir = work, .threads = 2};
    const char *inputs[] = {path};
    TnDedupResult r;
    CHECK(tn_dedup_scan(&o, inputs, 1, &r, &err) == 0, "line dedup: %s", err.msg);
    CHECK(r.n_documents == 3 && r.n_units == 5, "units: %lld documents, %u lines", r.n_documents, r.n_units);
    CHECK(r.first_unit[1] == 3 && r.first_unit[2] == 3 && r.first_unit[3] == 5, "unit offsets");
    CHECK(r.status[3] == TN_UNIT_EXACT && r.representative[3] == 1 && r.status[4] == TN_UNIT_KEPT,
          "a repeated line is an exact duplicate of its first occurrence");
    CHECK(tn_dedup_document_of(&r, 4) == 2 && tn_dedup_document_of(&r, 2) == 0, "document of a unit");

    /* A later pass: documents with the scan's number of units match, any
     * other count, a text where the scan found none, or a document past the
     * scan's is a change (an edit that keeps the count cannot be seen). */
    static const struct { long long d; const char *text; TnDedupMatch want; } line_cases[] = {
        {0, "first line here\nshared line\n\n   \nthird", TN_DEDUP_SAME},
        {0, "first line here\nshared line\nthird\n", TN_DEDUP_SAME},
        {0, "edited line\nshared line\nthird", TN_DEDUP_SAME},
        {0, "first line here\nshared line\nthird\nfourth", TN_DEDUP_CHANGED},
        {0, "first line here\nthird", TN_DEDUP_CHANGED},
        {1, " \n", TN_DEDUP_SAME},
        {1, "now a line", TN_DEDUP_CHANGED},
        {2, "shared line\nnew line", TN_DEDUP_SAME},
        {3, "", TN_DEDUP_CHANGED},
        {-1, "", TN_DEDUP_CHANGED},
    };
    for (size_t k = 0; k < sizeof line_cases / sizeof line_cases[0]; k++)
        CHECK(tn_dedup_match(&r, TN_DEDUP_LINE, line_cases[k].d, line_cases[k].text, strlen(line_cases[k].text)) ==
                  line_cases[k].want, "line level: document %lld as \"%s\" %s", line_cases[k].d, line_cases[k].text,
              line_cases[k].want == TN_DEDUP_SAME ? "not matched" : "not found changed");
    tn_dedup_result_free(&r);
    o.level = TN_DEDUP_DOCUMENT;
    CHECK(tn_dedup_scan(&o, inputs, 1, &r, &err) == 0, "document dedup: %s", err.msg);
    CHECK(tn_dedup_match(&r, TN_DEDUP_DOCUMENT, 0, "any text", 8) == TN_DEDUP_SAME &&
              tn_dedup_match(&r, TN_DEDUP_DOCUMENT, 2, "", 0) == TN_DEDUP_SAME &&
              tn_dedup_match(&r, TN_DEDUP_DOCUMENT, 1, "", 0) == TN_DEDUP_CHANGED &&
              tn_dedup_match(&r, TN_DEDUP_DOCUMENT, 3, "x", 1) == TN_DEDUP_CHANGED,
          "document level: one unit per document with text, none for the line that was not JSON");
    tn_dedup_result_free(&r);
}

int main(int argc, char **argv) {
    (void)argc;
    uint64_t seed = test_seed();
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "dedup");
    test_union_find(seed);
    test_minhash_estimates(seed);
    test_s_curve();
    test_pipeline(dir, seed);
    test_lines(dir, seed);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
