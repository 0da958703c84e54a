/* tnllm data clean: the rule-based cleaning of §4.1 over a JSONL corpus. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "data/clean.h"
#include "util/json.h"

static void usage(const DataFlags *f, const TnCleanOptions *d) {
    printf("usage: tnllm data clean FILE... -o OUT [options]\n\n"
           "Cleans the \"text\" of every document with the six rules of §4.1 (HTML tags and URLs;\n"
           "garbled strings: invalid UTF-8, mojibake, ANSI escapes, control characters, long non-text\n"
           "runs; repeated punctuation; unusual special characters; one number format; Markdown and\n"
           "LaTeX kept intact) and NFC normalization, then drops documents by quality filters. Kept\n"
           "documents keep their other fields; every dropped one goes to the rejects file with the\n"
           "filter's name and the measured value. Prints per-rule counts; the output is identical\n"
           "for any thread count. Details of each rule: src/data/clean.h.\n\n");
    data_flags_help(f);
    printf("  --min-chars N            drop documents shorter than N characters (default %lld)\n"
           "  --max-chars N            drop documents longer than N characters (default %lld)\n"
           "  --min-words N            drop documents with fewer words, a CJK character counting as\n"
           "                           one (default %lld)\n"
           "  --max-symbol-ratio R     drop documents whose punctuation and symbols exceed R of the\n"
           "                           non-space characters (default %g)\n"
           "  --max-duplicate-lines R  drop documents whose repeated lines hold more than R of the\n"
           "                           line characters (default %g)\n"
           "  --max-invalid-utf8 R     drop documents with more than R of their bytes not UTF-8\n"
           "                           (default %g; fewer invalid bytes are removed)\n"
           "  --summary FILE           also write the counts as JSON\n",
           d->min_chars, d->max_chars, d->min_words, d->max_symbol_ratio, d->max_duplicate_lines,
           d->max_invalid_fraction);
}

typedef struct CleanContext {
    TnCleaner **cleaners;   /* one per thread */
    TnCleanStats *stats;    /* one per thread */
    long long *malformed;   /* one per thread */
    TnTextBuf *text;        /* one per thread */
} CleanContext;

static void clean_document(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                           TnTextBuf *kept, TnTextBuf *rejected) {
    CleanContext *c = context;
    cJSON *json, *text;
    if (tn_doc_open(corpus, b, i, &json, &text, rejected)) {
        c->malformed[thread]++;
        return;
    }
    TnTextBuf *cleaned = &c->text[thread];
    char detail[256];
    int verdict = tn_clean_text(c->cleaners[thread], text->valuestring, strlen(text->valuestring), cleaned,
                                &c->stats[thread], detail, sizeof detail);
    if (verdict != TN_KEEP) {
        tn_doc_reject(corpus, b, i, tn_filter_rule_names[verdict], detail, rejected);
    } else {
        cJSON_ReplaceItemInObjectCaseSensitive(json, "text", cJSON_CreateString(cleaned->data));
        tn_doc_append_json(kept, json);
    }
    cJSON_Delete(json);
}

static void print_summary(const TnCleanStats *s, long long malformed, const TnPipelineCounts *counts, int threads) {
    double mb = counts->bytes / 1e6;
    printf("tnllm data clean: %lld documents, %lld kept (%.1f%%), %lld dropped; %.1f MB in, %.1f MB of text out; "
           "%.1f MB/s on %d threads (%.1f MB/s per thread)\n",
           counts->documents, s->kept, counts->documents ? 100.0 * s->kept / counts->documents : 0,
           counts->documents - s->kept, mb, s->bytes_out / 1e6, mb / counts->seconds, threads,
           mb / counts->seconds / threads);
    printf("\n%-22s %12s %12s %14s\n", "edit rule", "documents", "edits", "bytes removed");
    for (int r = 0; r < TN_EDIT_RULES; r++)
        printf("%-22s %12lld %12lld %14lld\n", tn_edit_rule_names[r], s->edit_documents[r], s->edit_count[r],
               s->edit_bytes[r]);
    printf("\n%-22s %12s\n", "dropped by", "documents");
    printf("%-22s %12lld\n", "malformed", malformed);
    for (int r = 0; r < TN_FILTER_RULES; r++) printf("%-22s %12lld\n", tn_filter_rule_names[r], s->rejected[r]);
}

static int write_summary(const char *path, const TnCleanStats *s, long long malformed, const TnPipelineCounts *counts,
                         TnError *err) {
    cJSON *root = cJSON_CreateObject(), *edits = cJSON_AddObjectToObject(root, "edits");
    cJSON *dropped = cJSON_AddObjectToObject(root, "dropped");
    cJSON_AddNumberToObject(root, "documents", (double)counts->documents);
    cJSON_AddNumberToObject(root, "kept", (double)s->kept);
    cJSON_AddNumberToObject(root, "bytes_in", counts->bytes);
    cJSON_AddNumberToObject(root, "text_bytes_out", (double)s->bytes_out);
    for (int r = 0; r < TN_EDIT_RULES; r++) {
        cJSON *rule = cJSON_AddObjectToObject(edits, tn_edit_rule_names[r]);
        cJSON_AddNumberToObject(rule, "documents", (double)s->edit_documents[r]);
        cJSON_AddNumberToObject(rule, "edits", (double)s->edit_count[r]);
        cJSON_AddNumberToObject(rule, "bytes_removed", (double)s->edit_bytes[r]);
    }
    cJSON_AddNumberToObject(dropped, "malformed", (double)malformed);
    for (int r = 0; r < TN_FILTER_RULES; r++)
        cJSON_AddNumberToObject(dropped, tn_filter_rule_names[r], (double)s->rejected[r]);
    return tn_json_write_file(path, root, err);
}

int cmd_data_clean(int argc, char **argv) {
    TnCleanOptions o;
    tn_clean_default_options(&o);
    const char *summary = NULL;
    DataFlags f;
    TnArgs a;
    data_flags_init(&f, &a, "data clean", DATA_READS_ONCE, argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(&f, &o); data_flags_free(&f); return 0; }
        else if (data_flags_parse(&f, &a)) continue;
        else if (args_is(&a, NULL, "--min-chars")) o.min_chars = args_int(&a, 0, 1LL << 40);
        else if (args_is(&a, NULL, "--max-chars")) o.max_chars = args_int(&a, 0, 1LL << 40);
        else if (args_is(&a, NULL, "--min-words")) o.min_words = args_int(&a, 0, 1LL << 40);
        else if (args_is(&a, NULL, "--max-symbol-ratio")) o.max_symbol_ratio = args_double(&a, 0, 1);
        else if (args_is(&a, NULL, "--max-duplicate-lines")) o.max_duplicate_lines = args_double(&a, 0, 1);
        else if (args_is(&a, NULL, "--max-invalid-utf8")) o.max_invalid_fraction = args_double(&a, 0, 1);
        else if (args_is(&a, NULL, "--summary")) summary = args_value(&a);
        else args_unknown(&a);
    }
    TnPipeline p;
    f.extra_output = summary;
    data_flags_finish(&f, &a, 1, "clean", &p);
    int threads = tn_pipeline_threads(&p);
    CleanContext c = {
        .cleaners = tn_calloc((size_t)threads, sizeof *c.cleaners),
        .stats = tn_calloc((size_t)threads, sizeof *c.stats),
        .malformed = tn_calloc((size_t)threads, sizeof *c.malformed),
        .text = tn_calloc((size_t)threads, sizeof *c.text),
    };
    for (int t = 0; t < threads; t++) c.cleaners[t] = tn_cleaner_new(&o);
    TnPipelineCounts counts;
    TnError err;
    if (tn_pipeline_run(&p, clean_document, &c, &counts, &err)) tn_die("%s", err.msg);
    TnCleanStats total = {0};
    long long malformed = 0;
    for (int t = 0; t < threads; t++) {
        tn_clean_stats_add(&total, &c.stats[t]);
        malformed += c.malformed[t];
        tn_cleaner_free(c.cleaners[t]);
        tn_textbuf_free(&c.text[t]);
    }
    print_summary(&total, malformed, &counts, threads);
    if (summary && write_summary(summary, &total, malformed, &counts, &err)) tn_die("%s", err.msg);
    printf("\nwrote %s and %s\n", p.output, p.rejects);
    free(c.cleaners);
    free(c.stats);
    free(c.malformed);
    free(c.text);
    data_flags_free(&f);
    return 0;
}
