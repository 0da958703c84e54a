/* tnllm data review: a page for people to judge a perplexity threshold (the
 * human review of §4.1 self-cleaning), and the tally of their verdicts. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "data/jsonl.h"
#include "data/stream.h"
#include "util/fileio.h"
#include "util/rng.h"

static void usage(void) {
    printf("usage: tnllm data review --kept FILE --dropped FILE -o PAGE.html [-n N] [--seed S]\n"
           "       tnllm data review --verdicts FILE\n\n"
           "Draws a random sample of N kept and N dropped documents (the output and the rejects file\n"
           "of tnllm data filter) and writes one self-contained HTML page showing each with its score\n"
           "and the reason it was dropped. A reader marks each document good or bad and presses\n"
           "\"Save verdicts\", which downloads verdicts.jsonl; --verdicts prints the tally: how many of\n"
           "the dropped were bad (the filter's precision) and how many of the kept were good.\n"
           "  --kept FILE       kept documents (JSONL, .gz/.zst)\n"
           "  --dropped FILE    dropped documents (a rejects file)\n"
           "  -o, --output FILE the HTML page\n"
           "  -n N              documents per side (default 50)\n"
           "  --field NAME      score field to show (default ppl)\n"
           "  --seed S          sampling seed (default 1)\n"
           "  --verdicts FILE   tally a verdicts.jsonl saved from the page\n");
}

typedef struct Sample {
    TnTextBuf *lines; /* (n) reservoir */
    long long seen;
    int n;
} Sample;

/* Reservoir sampling (Algorithm R): each line is kept with probability n/seen. */
static int sample_file(const char *path, Sample *s, TnRng *rng, TnError *err) {
    TnLineReader r;
    if (tn_line_reader_open(&r, path, err)) return -1;
    char *line;
    size_t len;
    int rc;
    while ((rc = tn_line_reader_next(&r, &line, &len, err)) == 1) {
        if (len == 0) continue;
        long long slot = s->seen < s->n ? s->seen : (long long)tn_rng_below(rng, (uint64_t)s->seen + 1);
        s->seen++;
        if (slot < s->n) {
            tn_textbuf_clear(&s->lines[slot]);
            tn_textbuf_append(&s->lines[slot], line, len);
        }
    }
    tn_line_reader_close(&r);
    return rc;
}

static void append_html(TnTextBuf *out, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': tn_textbuf_append_str(out, "&amp;"); break;
        case '<': tn_textbuf_append_str(out, "&lt;"); break;
        case '>': tn_textbuf_append_str(out, "&gt;"); break;
        case '"': tn_textbuf_append_str(out, "&quot;"); break;
        default: tn_textbuf_append(out, s + i, 1);
        }
    }
}

/* One document's block. A rejects record holds the document under "doc". */
static void append_document(TnTextBuf *out, const char *side, int index, const TnTextBuf *line, const char *field) {
    cJSON *json = cJSON_ParseWithLength(line->data, line->len);
    cJSON *doc = json ? cJSON_GetObjectItemCaseSensitive(json, "doc") : NULL;
    cJSON *reason = json ? cJSON_GetObjectItemCaseSensitive(json, "detail") : NULL;
    if (!reason && json) reason = cJSON_GetObjectItemCaseSensitive(json, "reason");
    if (!cJSON_IsObject(doc)) doc = json;
    cJSON *text = doc ? cJSON_GetObjectItemCaseSensitive(doc, "text") : NULL;
    cJSON *score = doc ? cJSON_GetObjectItemCaseSensitive(doc, field) : NULL;
    char head[512];
    snprintf(head, sizeof head, "<div class=\"doc %s\" data-side=\"%s\" data-index=\"%d\" data-score=\"%g\">\n<p class=\"meta\">%s #%d, %s %g",
             side, side, index, cJSON_IsNumber(score) ? score->valuedouble : -1, side, index, field,
             cJSON_IsNumber(score) ? score->valuedouble : -1);
    tn_textbuf_append_str(out, head);
    if (cJSON_IsString(reason) && strcmp(side, "dropped") == 0) {
        tn_textbuf_append_str(out, ": ");
        append_html(out, reason->valuestring, strlen(reason->valuestring));
    }
    snprintf(head, sizeof head,
             " <label><input type=\"radio\" name=\"v%s%d\" value=\"good\"> good</label>"
             " <label><input type=\"radio\" name=\"v%s%d\" value=\"bad\"> bad</label></p>\n<pre>",
             side, index, side, index);
    tn_textbuf_append_str(out, head);
    const char *t = cJSON_IsString(text) ? text->valuestring : "(no text field)";
    size_t n = strlen(t), shown = n < 4000 ? n : 4000;
    while (shown < n && ((unsigned char)t[shown] & 0xc0) == 0x80) shown++;
    append_html(out, t, shown);
    if (shown < n) tn_textbuf_append_str(out, "\n[... truncated]");
    tn_textbuf_append_str(out, "</pre></div>\n");
    cJSON_Delete(json);
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tnllm data review</title>\n<style>\n"
    "body{font-family:sans-serif;max-width:60em;margin:auto}.doc{border:1px solid #ccc;margin:1em 0;padding:.5em}"
    ".kept{border-left:6px solid #4a4}.dropped{border-left:6px solid #c44}pre{white-space:pre-wrap;max-height:20em;"
    "overflow:auto;background:#f8f8f8}.meta{font-weight:bold}\n</style></head><body>\n";

static const char page_tail[] =
    "<p><button onclick=\"save()\">Save verdicts</button> (downloads verdicts.jsonl; then run "
    "<code>tnllm data review --verdicts verdicts.jsonl</code>)</p>\n<script>\n"
    "function save(){var out='';document.querySelectorAll('.doc').forEach(function(d){"
    "var c=d.querySelector('input:checked');if(!c)return;out+=JSON.stringify({side:d.dataset.side,"
    "index:+d.dataset.index,score:+d.dataset.score,verdict:c.value})+'\\n';});"
    "var a=document.createElement('a');a.href=URL.createObjectURL(new Blob([out],{type:'application/jsonl'}));"
    "a.download='verdicts.jsonl';a.click();}\n</script></body></html>\n";

static int tally(const char *path) {
    TnLineReader r;
    TnError err;
    if (tn_line_reader_open(&r, path, &err)) tn_die("%s", err.msg);
    long long counts[2][2] = {{0}}; /* [dropped][bad] */
    char *line;
    size_t len;
    int rc;
    while ((rc = tn_line_reader_next(&r, &line, &len, &err)) == 1) {
        if (len == 0) continue;
        cJSON *json = cJSON_ParseWithLength(line, len);
        cJSON *side = cJSON_GetObjectItemCaseSensitive(json, "side"), *verdict = cJSON_GetObjectItemCaseSensitive(json, "verdict");
        int sides_known = cJSON_IsString(side) && (!strcmp(side->valuestring, "kept") || !strcmp(side->valuestring, "dropped"));
        int verdicts_known = cJSON_IsString(verdict) &&
                             (!strcmp(verdict->valuestring, "good") || !strcmp(verdict->valuestring, "bad"));
        if (!sides_known || !verdicts_known)
            tn_die("%s:%lld: not a verdict (want {\"side\": \"kept\" or \"dropped\", \"verdict\": \"good\" or \"bad\"})",
                   path, r.line_number);
        counts[strcmp(side->valuestring, "dropped") == 0][strcmp(verdict->valuestring, "bad") == 0]++;
        cJSON_Delete(json);
    }
    if (rc < 0) tn_die("%s", err.msg);
    tn_line_reader_close(&r);
    long long dropped = counts[1][0] + counts[1][1], kept = counts[0][0] + counts[0][1];
    printf("dropped: %lld judged, %lld bad, %lld good: %.1f%% of the drops were right\n", dropped, counts[1][1],
           counts[1][0], dropped ? 100.0 * counts[1][1] / dropped : 0);
    printf("kept:    %lld judged, %lld good, %lld bad: %.1f%% of the kept were right\n", kept, counts[0][0],
           counts[0][1], kept ? 100.0 * counts[0][0] / kept : 0);
    return 0;
}

int cmd_data_review(int argc, char **argv) {
    const char *kept = NULL, *dropped = NULL, *output = NULL, *field = "ppl", *verdicts = NULL;
    int n = 50;
    uint64_t seed = 1;
    TnArgs a;
    args_init(&a, "data review", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, NULL, "--kept")) kept = args_value(&a);
        else if (args_is(&a, NULL, "--dropped")) dropped = args_value(&a);
        else if (args_is(&a, "-o", "--output")) output = args_value(&a);
        else if (args_is(&a, "-n", NULL)) n = (int)args_int(&a, 1, 100000);
        else if (args_is(&a, NULL, "--field")) field = args_value(&a);
        else if (args_is(&a, NULL, "--seed")) seed = (uint64_t)args_int(&a, 0, 1LL << 62);
        else if (args_is(&a, NULL, "--verdicts")) verdicts = args_value(&a);
        else args_unknown(&a);
    }
    if (verdicts) return tally(verdicts);
    args_require(&a, kept, "--kept FILE");
    args_require(&a, dropped, "--dropped FILE");
    args_require(&a, output, "-o PAGE.html");
    const char *inputs[] = {kept, dropped};
    data_check_outputs(a.command, inputs, 2, &output, 1);
    TnRng rng;
    tn_rng_seed(&rng, seed, 0x726576696577ull); /* stream "review" */
    Sample sides[2];
    const char *paths[2] = {kept, dropped}, *names[2] = {"kept", "dropped"};
    TnError err;
    TnTextBuf page = {0};
    tn_textbuf_clear(&page);
    tn_textbuf_append_str(&page, page_head);
    for (int k = 0; k < 2; k++) {
        sides[k] = (Sample){tn_calloc((size_t)n, sizeof(TnTextBuf)), 0, n};
        if (sample_file(paths[k], &sides[k], &rng, &err)) tn_die("%s", err.msg);
    }
    char title[512];
    int sampled[2]; /* of each side: n, or all it had */
    for (int k = 0; k < 2; k++) sampled[k] = sides[k].seen < n ? (int)sides[k].seen : n;
    snprintf(title, sizeof title, "<h1>Review: %d of %lld kept, %d of %lld dropped</h1>\n<p>kept: %s, dropped: %s</p>\n",
             sampled[0], sides[0].seen, sampled[1], sides[1].seen, kept, dropped);
    tn_textbuf_append_str(&page, title);
    /* Interleaved, so a reader does not judge all of one side first. */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++)
            if (i < sides[k].seen) append_document(&page, names[k], i, &sides[k].lines[i], field);
    tn_textbuf_append_str(&page, page_tail);
    if (tn_write_file(output, page.data, page.len, &err)) tn_die("%s", err.msg);
    printf("wrote %s: %lld kept and %lld dropped documents seen, %d and %d sampled\n", output, sides[0].seen,
           sides[1].seen, sampled[0], sampled[1]);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < n; i++) tn_textbuf_free(&sides[k].lines[i]);
        free(sides[k].lines);
    }
    tn_textbuf_free(&page);
    return 0;
}
