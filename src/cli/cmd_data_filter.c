/* tnllm data filter: drop documents by perplexity, thresholds by percentile
 * per source or language (§4.1 self-cleaning). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "data/score_groups.h"

static void usage(const DataFlags *f) {
    printf("usage: tnllm data filter FILE... -o OUT [--drop-top P] [--drop-bottom P] [options]\n\n"
           "Reads documents scored by tnllm data score, prints the percentiles of their perplexity per\n"
           "group (--group-by, e.g. a source or language field), and keeps the documents inside the\n"
           "thresholds of their group. Two passes over the input: percentiles, then the filter. Dropped\n"
           "documents go to the rejects file with their score and the threshold; then tnllm data review\n"
           "shows a sample of both sides.\n\n");
    data_flags_help(f);
    printf("  --field NAME        score field (default ppl)\n"
           "  --group-by FIELD    percentiles and thresholds per value of FIELD (default: one group)\n"
           "  --drop-top P        drop the P%% of each group with the highest perplexity (noise,\n"
           "                      garbled text)\n"
           "  --drop-bottom P     drop the P%% with the lowest perplexity (boilerplate, repetition)\n"
           "  --max-ppl X         also drop anything above X\n"
           "  --min-ppl X         also drop anything below X\n");
}

typedef struct FilterContext {
    const char *field, *group_by;
    TnScoreGroups groups;
    double *low, *high;       /* per group */
    long long **dropped;      /* [thread][group] */
    long long *unscored;      /* [thread]: documents without a numeric score */
} FilterContext;

/* The score and group name of a document; -1 if it has no numeric score. */
static int document_score(const FilterContext *c, cJSON *json, double *score, char *group, size_t cap) {
    cJSON *s = cJSON_GetObjectItemCaseSensitive(json, c->field);
    if (!cJSON_IsNumber(s)) return -1;
    *score = s->valuedouble;
    snprintf(group, cap, "all");
    if (!c->group_by) return 0;
    cJSON *g = cJSON_GetObjectItemCaseSensitive(json, c->group_by);
    if (cJSON_IsString(g)) snprintf(group, cap, "%s", g->valuestring);
    else if (cJSON_IsNumber(g)) snprintf(group, cap, "%g", g->valuedouble);
    else snprintf(group, cap, "(none)");
    return 0;
}

/* Pass 1: kept holds "group\0" + the score as a double. */
static void collect_score(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                          TnTextBuf *kept, TnTextBuf *rejected) {
    (void)thread, (void)corpus, (void)rejected;
    const FilterContext *c = context;
    cJSON *json, *text;
    const char *reason;
    if (tn_doc_parse(b->lines[i].data, b->lines[i].len, &json, &text, &reason)) return;
    double score;
    char group[256];
    if (document_score(c, json, &score, group, sizeof group) == 0) {
        tn_textbuf_append(kept, group, strlen(group) + 1);
        tn_textbuf_append(kept, (const char *)&score, sizeof score);
    }
    cJSON_Delete(json);
}

static int add_scores(void *context, const TnDocBatch *b, const TnTextBuf *kept, const TnTextBuf *rejected,
                      TnError *err) {
    (void)rejected, (void)err;
    FilterContext *c = context;
    for (int i = 0; i < b->count; i++) {
        if (!kept[i].len) continue;
        double score;
        size_t name_len = strlen(kept[i].data);
        memcpy(&score, kept[i].data + name_len + 1, sizeof score);
        tn_score_groups_add(&c->groups, kept[i].data, (float)score);
    }
    return 0;
}

/* Pass 2. */
static void filter_document(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                            TnTextBuf *kept, TnTextBuf *rejected) {
    FilterContext *c = context;
    cJSON *json, *text;
    if (tn_doc_open(corpus, b, i, &json, &text, rejected)) return;
    double score;
    char group[256], detail[512];
    int g;
    if (document_score(c, json, &score, group, sizeof group) != 0 || (g = tn_score_groups_find(&c->groups, group)) < 0) {
        snprintf(detail, sizeof detail, "no numeric field \"%s\" (run tnllm data score first)", c->field);
        tn_doc_reject(corpus, b, i, "not scored", detail, rejected);
        c->unscored[thread]++;
    } else if ((score = (float)score) > c->high[g] || score < c->low[g]) { /* percentiles are of floats */
        int high = score > c->high[g];
        snprintf(detail, sizeof detail, "%s %g %s %g in group %s", c->field, score, high ? ">" : "<",
                 high ? c->high[g] : c->low[g], group);
        tn_doc_reject(corpus, b, i, high ? "perplexity-high" : "perplexity-low", detail, rejected);
        c->dropped[thread][g]++;
    } else {
        tn_doc_append_line(kept, b, i);
    }
    cJSON_Delete(json);
}

int cmd_data_filter(int argc, char **argv) {
    FilterContext c = {.field = "ppl"};
    double drop_top = 0, drop_bottom = 0, max_score = INFINITY, min_score = -INFINITY;
    DataFlags f;
    TnArgs a;
    data_flags_init(&f, &a, "data filter", DATA_READS_TWICE, argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(&f); data_flags_free(&f); return 0; }
        else if (data_flags_parse(&f, &a)) continue;
        else if (args_is(&a, NULL, "--field")) c.field = args_value(&a);
        else if (args_is(&a, NULL, "--group-by")) c.group_by = args_value(&a);
        else if (args_is(&a, NULL, "--drop-top")) drop_top = args_double(&a, 0, 100);
        else if (args_is(&a, NULL, "--drop-bottom")) drop_bottom = args_double(&a, 0, 100);
        else if (args_is(&a, NULL, "--max-ppl")) max_score = args_double(&a, 0, INFINITY);
        else if (args_is(&a, NULL, "--min-ppl")) min_score = args_double(&a, 0, INFINITY);
        else args_unknown(&a);
    }
    TnPipeline p;
    data_flags_finish(&f, &a, 1, "filter", &p);
    if (drop_top + drop_bottom >= 100) tn_die_usage("tnllm data filter: --drop-top + --drop-bottom must stay below 100");

    TnError err;
    TnPipeline scan = p;
    scan.output = scan.rejects = NULL;
    scan.label = "percentiles";
    scan.after_batch = add_scores;
    TnPipelineCounts counts;
    if (tn_pipeline_run(&scan, collect_score, &c, &counts, &err)) tn_die("%s", err.msg);
    /* Unscored input would be dropped whole, an empty output: say what is missing instead. */
    if (c.groups.n == 0 && counts.documents > 0)
        tn_die("tnllm data filter: %s%s: none of the %lld documents has a numeric \"%s\" field: run tnllm data score "
               "first (or name the score's field with --field)", p.inputs[0], p.n_inputs > 1 ? " ..." : "",
               counts.documents, c.field);
    tn_score_groups_sort(&c.groups);
    int threads = tn_pipeline_threads(&p), n_groups = c.groups.n;
    c.low = tn_calloc((size_t)n_groups + 1, sizeof *c.low);
    c.high = tn_calloc((size_t)n_groups + 1, sizeof *c.high);
    c.dropped = tn_calloc((size_t)threads, sizeof *c.dropped);
    c.unscored = tn_calloc((size_t)threads, sizeof *c.unscored);
    for (int t = 0; t < threads; t++) c.dropped[t] = tn_calloc((size_t)n_groups + 1, sizeof **c.dropped);
    for (int g = 0; g < n_groups; g++) {
        double top = drop_top > 0 ? tn_score_groups_percentile(&c.groups, g, 100 - drop_top) : INFINITY;
        double bottom = drop_bottom > 0 ? tn_score_groups_percentile(&c.groups, g, drop_bottom) : -INFINITY;
        c.high[g] = top < max_score ? top : max_score;
        c.low[g] = bottom > min_score ? bottom : min_score;
    }
    p.documents_expected = counts.documents; /* the percentiles are of these documents */
    if (tn_pipeline_run(&p, filter_document, &c, &counts, &err)) tn_die("%s", err.msg);

    static const double q[] = {1, 10, 25, 50, 75, 90, 99};
    printf("tnllm data filter: %s by percentile%s%s\n\n%-16s %9s", c.field, c.group_by ? " per " : "",
           c.group_by ? c.group_by : "", "group", "docs");
    for (int k = 0; k < 7; k++) printf("  p%-6g", q[k]);
    printf("  %9s %9s %9s\n", "keep >=", "keep <=", "dropped");
    for (int g = 0; g < n_groups; g++) {
        long long dropped = 0;
        for (int t = 0; t < threads; t++) dropped += c.dropped[t][g];
        printf("%-16.16s %9zu", c.groups.groups[g].name, c.groups.groups[g].count);
        for (int k = 0; k < 7; k++) printf("  %-7.4g", tn_score_groups_percentile(&c.groups, g, q[k]));
        printf("  %9.4g %9.4g %9lld\n", c.low[g], c.high[g], dropped);
    }
    printf("\n%lld documents, %lld kept, %lld dropped (including unscored or malformed)\nwrote %s and %s\n",
           counts.documents, counts.kept, counts.rejected, p.output, p.rejects);
    long long unscored = 0;
    for (int t = 0; t < threads; t++) unscored += c.unscored[t];
    if (unscored)
        fprintf(stderr, "tnllm data filter: warning: %lld of the %lld documents not scored (no numeric \"%s\" field: "
                "run tnllm data score on them): dropped, in %s as \"not scored\"\n", unscored, counts.documents,
                c.field, p.rejects);
    for (int t = 0; t < threads; t++) free(c.dropped[t]);
    free(c.dropped);
    free(c.unscored);
    free(c.low);
    free(c.high);
    tn_score_groups_free(&c.groups);
    data_flags_free(&f);
    return 0;
}
