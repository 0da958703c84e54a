/* tnllm data dedup: exact and MinHash-LSH near-duplicate removal (§4.1). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "data/dedup.h"
#include "data/lsh.h"

static void usage(const DataFlags *f) {
    printf("usage: tnllm data dedup FILE... -o OUT [options]\n\n"
           "Removes duplicates in two steps: exact duplicates by a hash of the text, then near-duplicates\n"
           "by MinHash over word 5-grams (character 5-grams for Chinese and Japanese) and LSH: b bands of\n"
           "r rows chosen from the threshold (the S-curve's values are printed), band collisions joined\n"
           "by union-find, the first document of each cluster kept. Signatures go to band files in the\n"
           "work directory, one band is sorted in memory at a time. The output is the same for any thread\n"
           "count; duplicates go to the rejects file naming the document they duplicate. The input is read\n"
           "twice: signatures, then output.\n\n");
    data_flags_help(f);
    printf("  --level doc|line      deduplicate whole documents (default) or lines: a line seen before\n"
           "                        (exactly or nearly) is removed from later documents\n"
           "  --threshold J         Jaccard similarity to aim at (default 0.8)\n"
           "  --num-perm K          MinHash permutations (default 128)\n"
           "  --ngram N             shingle size in tokens (default 5)\n"
           "  --bands B --rows R    override the bands and rows chosen from the threshold\n"
           "  --seed S              hash seed (default 1)\n"
           "  --work-dir DIR        band files (default: OUT.work, removed afterwards)\n"
           "  --show-clusters N     print the first N clusters with the start of each document\n");
}

typedef struct DedupContext {
    const TnDedupResult *result;
    const char *const *paths; /* the inputs */
    TnDedupLevel level;
    int threads;
    long long *lines_removed; /* per thread */
    int *changed;             /* per thread: its first document of the batch that tn_dedup_match found changed
                                 since the scan, or INT_MAX; never reset: the run stops at that batch */
    const uint32_t *shown;    /* sorted units whose clusters are printed */
    size_t n_shown;
    char **snippets;          /* (n_shown) */
} DedupContext;

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void keep_snippet(DedupContext *c, uint32_t unit, const char *file, long long line, const char *text) {
    uint32_t *hit = c->n_shown ? bsearch(&unit, c->shown, c->n_shown, sizeof *c->shown, compare_u32) : NULL;
    if (!hit) return;
    static const char *status_names[] = {"kept", "exact", "near"};
    size_t len = strlen(text), cut = len < 110 ? len : 100;
    while (cut < len && ((unsigned char)text[cut] & 0xc0) == 0x80) cut++; /* whole UTF-8 characters */
    char *snippet = tn_malloc(cut + 4200);
    int n = snprintf(snippet, 4200, "  #%-6lld %-5s %s:%lld  ", (long long)tn_dedup_document_of(c->result, unit),
                     status_names[c->result->status[unit]], file, line);
    for (size_t i = 0; i < cut; i++) snippet[n++] = text[i] == '\n' ? ' ' : text[i];
    snippet[n] = '\0';
    c->snippets[hit - c->shown] = snippet;
}

static void reject_duplicate(const DedupContext *c, uint32_t unit, const TnJsonlReader *corpus, const TnDocBatch *b,
                             int i, TnTextBuf *rejected, const char *reason) {
    char detail[96];
    snprintf(detail, sizeof detail, "of document %lld",
             tn_dedup_document_of(c->result, c->result->representative[unit]));
    tn_doc_reject(corpus, b, i, reason, detail, rejected);
}

static void dedup_document(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                           TnTextBuf *kept, TnTextBuf *rejected) {
    DedupContext *c = context;
    const TnDedupResult *r = c->result;
    const char *file = corpus->paths[b->file[i]];
    cJSON *json, *text;
    if (tn_doc_open(corpus, b, i, &json, &text, rejected)) {
        /* unreadable now, yet the first pass read units from it (or never saw it): the input changed */
        long long d = b->index[i];
        if ((d >= r->n_documents || r->first_unit[d + 1] > r->first_unit[d]) && i < c->changed[thread])
            c->changed[thread] = i;
        return;
    }
    const char *s = text->valuestring;
    size_t len = strlen(s), pos = 0, start, unit_len;
    if (tn_dedup_match(r, c->level, b->index[i], s, len) == TN_DEDUP_CHANGED) {
        if (i < c->changed[thread]) c->changed[thread] = i; /* report_changed fails the run */
        cJSON_Delete(json);
        return;
    }
    uint64_t unit = r->first_unit[b->index[i]];
    if (c->level == TN_DEDUP_DOCUMENT) {
        keep_snippet(c, (uint32_t)unit, file, b->line_number[i], s);
        if (r->status[unit] == TN_UNIT_KEPT) {
            tn_doc_append_line(kept, b, i);
        } else {
            reject_duplicate(c, (uint32_t)unit, corpus, b, i, rejected,
                             r->status[unit] == TN_UNIT_EXACT ? "exact-duplicate" : "near-duplicate");
        }
        cJSON_Delete(json);
        return;
    }
    /* Line level: drop duplicated lines, keep the rest (blank lines included). */
    TnTextBuf out = {0};
    tn_textbuf_clear(&out);
    size_t copied = 0, removed = 0, units = 0;
    uint32_t last_removed = 0;
    while (tn_dedup_next_unit(TN_DEDUP_LINE, s, len, &pos, &start, &unit_len)) { /* as many as the scan's */
        units++;
        if (r->status[unit] != TN_UNIT_KEPT) {
            tn_textbuf_append(&out, s + copied, start - copied);
            copied = start + unit_len + (start + unit_len < len); /* with its '\n' */
            removed++;
            last_removed = (uint32_t)unit;
        }
        unit++;
    }
    tn_textbuf_append(&out, s + copied, len - copied);
    c->lines_removed[thread] += (long long)removed;
    if (removed == 0) {
        tn_doc_append_line(kept, b, i);
    } else if (removed == units) {
        reject_duplicate(c, last_removed, corpus, b, i, rejected, "all-lines-duplicated");
    } else {
        cJSON_ReplaceItemInObjectCaseSensitive(json, "text", cJSON_CreateString(out.data));
        tn_doc_append_json(kept, json);
    }
    tn_textbuf_free(&out);
    cJSON_Delete(json);
}

/* After each batch of the second pass: fails the run, before the batch is
 * written, at its first document that changed since the scan (whose
 * result would not apply to it). */
static int report_changed(void *context, const TnDocBatch *b, const TnTextBuf *kept, const TnTextBuf *rejected,
                          TnError *err) {
    (void)kept, (void)rejected;
    const DedupContext *c = context;
    int first = INT_MAX;
    for (int t = 0; t < c->threads; t++)
        if (c->changed[t] < first) first = c->changed[t];
    if (first == INT_MAX) return 0;
    return tn_fail(err, "tnllm data dedup: %s line %lld: input changed between passes (not the document the first "
                   "pass read there); dedup reads its input twice, so it must stay unchanged until the run ends",
                   c->paths[b->file[first]], b->line_number[first]);
}

/* The members of the first n clusters (by their first duplicate), sorted. */
static uint32_t *select_clusters(const TnDedupResult *r, int n, size_t *count) {
    uint32_t *roots = tn_malloc(sizeof *roots * (size_t)(n ? n : 1));
    int n_roots = 0;
    for (uint32_t u = 0; u < r->n_units && n_roots < n; u++) {
        uint32_t root = r->representative[u];
        int seen = root == u;
        for (int k = 0; k < n_roots && !seen; k++) seen = roots[k] == root;
        if (!seen) roots[n_roots++] = root;
    }
    size_t m = 0, cap = 64;
    uint32_t *members = tn_malloc(cap * sizeof *members);
    for (uint32_t u = 0; u < r->n_units; u++)
        for (int k = 0; k < n_roots; k++)
            if (r->representative[u] == roots[k]) {
                if (m == cap) {
                    cap *= 2;
                    members = realloc(members, cap * sizeof *members);
                    TN_ASSERT(members);
                }
                members[m++] = u;
            }
    free(roots);
    *count = m;
    return members;
}

static void print_clusters(const DedupContext *c) {
    const TnDedupResult *r = c->result;
    int printed = 0;
    for (size_t k = 0; k < c->n_shown; k++) {
        uint32_t root = c->shown[k];
        if (r->representative[root] != root) continue;
        printf("\ncluster %d (first: document %lld):\n", ++printed, tn_dedup_document_of(r, root));
        for (size_t j = 0; j < c->n_shown; j++)
            if (r->representative[c->shown[j]] == root && c->snippets[j]) printf("%s\n", c->snippets[j]);
    }
}

int cmd_data_dedup(int argc, char **argv) {
    TnDedupOptions o = {.level = TN_DEDUP_DOCUMENT, .num_perm = 128, .ngram = 5, .seed = 1, .progress = 1};
    double threshold = 0.8;
    const char *work_dir = NULL;
    int show = 0;
    DataFlags f;
    TnArgs a;
    data_flags_init(&f, &a, "data dedup", DATA_READS_TWICE, argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(&f); data_flags_free(&f); return 0; }
        else if (data_flags_parse(&f, &a)) continue;
        else if (args_is(&a, NULL, "--level")) {
            const char *v = args_value(&a);
            if (strcmp(v, "doc") == 0) o.level = TN_DEDUP_DOCUMENT;
            else if (strcmp(v, "line") == 0) o.level = TN_DEDUP_LINE;
            else tn_die_usage("tnllm data dedup: --level is doc or line, got '%s'", v);
        }
        else if (args_is(&a, NULL, "--threshold")) threshold = args_double(&a, 0.01, 0.999);
        else if (args_is(&a, NULL, "--num-perm")) o.num_perm = (int)args_int(&a, 1, 1024);
        else if (args_is(&a, NULL, "--ngram")) o.ngram = (int)args_int(&a, 1, 64);
        else if (args_is(&a, NULL, "--bands")) o.bands = (int)args_int(&a, 1, 256);
        else if (args_is(&a, NULL, "--rows")) o.rows = (int)args_int(&a, 1, 1024);
        else if (args_is(&a, NULL, "--seed")) o.seed = (uint64_t)args_int(&a, 0, (1LL << 62));
        else if (args_is(&a, NULL, "--work-dir")) work_dir = args_value(&a);
        else if (args_is(&a, NULL, "--show-clusters")) show = (int)args_int(&a, 0, 10000);
        else args_unknown(&a);
    }
    TnPipeline p;
    data_flags_finish(&f, &a, 1, "dedup", &p);
    if (!o.bands != !o.rows) tn_die_usage("tnllm data dedup: --bands and --rows go together");
    if (!o.bands) tn_lsh_choose(threshold, o.num_perm, &o.bands, &o.rows);
    if (o.bands * o.rows > o.num_perm)
        tn_die_usage("tnllm data dedup: %d bands x %d rows need more than --num-perm %d", o.bands, o.rows, o.num_perm);
    char default_work[4200];
    snprintf(default_work, sizeof default_work, "%s.work", f.output);
    o.work_dir = work_dir ? work_dir : default_work;
    o.threads = f.threads;
    printf("tnllm data dedup: %s level, threshold %.2f: %d bands x %d rows of %d permutations, %d-grams\n",
           o.level == TN_DEDUP_DOCUMENT ? "document" : "line", threshold, o.bands, o.rows, o.num_perm, o.ngram);
    printf("S-curve P(candidate | Jaccard s):");
    static const double points[] = {0.5, 0.7, 0.8, 0.9};
    for (int k = 0; k < 4; k++) printf("  P(%.1f)=%.3f", points[k], tn_lsh_probability(points[k], o.bands, o.rows));
    printf("\n");
    fflush(stdout);

    TnError err;
    TnDedupResult r;
    if (tn_dedup_scan(&o, p.inputs, p.n_inputs, &r, &err)) tn_die("%s", err.msg);
    int threads = tn_pipeline_threads(&p);
    DedupContext c = {.result = &r, .level = o.level, .threads = threads,
                      .lines_removed = tn_calloc((size_t)threads, sizeof(long long)),
                      .changed = tn_malloc((size_t)threads * sizeof(int))};
    for (int t = 0; t < threads; t++) c.changed[t] = INT_MAX;
    uint32_t *shown = select_clusters(&r, o.level == TN_DEDUP_DOCUMENT ? show : 0, &c.n_shown);
    c.shown = shown;
    c.snippets = tn_calloc(c.n_shown ? c.n_shown : 1, sizeof *c.snippets);
    c.paths = p.inputs;
    p.after_batch = report_changed;
    p.documents_expected = r.n_documents;
    TnPipelineCounts counts;
    if (tn_pipeline_run(&p, dedup_document, &c, &counts, &err)) tn_die("%s", err.msg);
    long long lines_removed = 0;
    for (int t = 0; t < threads; t++) lines_removed += c.lines_removed[t];
    double mb = r.bytes / 1e6;
    printf("%lld documents, %u %s: %lld exact and %lld near duplicates in %lld clusters (%lld band merges)\n",
           r.n_documents, r.n_units, o.level == TN_DEDUP_DOCUMENT ? "documents with text" : "lines", r.exact, r.near,
           r.clusters, r.candidates);
    if (o.level == TN_DEDUP_LINE) printf("%lld lines removed, ", lines_removed);
    printf("%lld documents kept, %lld dropped\n", counts.kept, counts.rejected);
    printf("signatures %.1f MB in %.2f s (%.1f MB/s, %.1f MB/s per thread on %d), clustering %.2f s, output %.2f s\n",
           mb, r.seconds_scan, mb / r.seconds_scan, mb / r.seconds_scan / threads, threads, r.seconds_cluster,
           counts.seconds);
    print_clusters(&c);
    printf("\nwrote %s and %s\n", p.output, p.rejects);
    for (size_t k = 0; k < c.n_shown; k++) free(c.snippets[k]);
    free(c.snippets);
    free(shown);
    free(c.lines_removed);
    free(c.changed);
    tn_dedup_result_free(&r);
    data_flags_free(&f);
    return 0;
}
