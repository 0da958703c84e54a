/* tnllm data score: per-document perplexity under an evaluation model (§4.1
 * self-cleaning), added to each document as fields. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "data/score.h"

static void usage(const DataFlags *f) {
    printf("usage: tnllm data score FILE... -m MODEL -o OUT [options]\n\n"
           "Scores every document with an evaluation model (the self-cleaning of §4.1): <s> text </s>\n"
           "tokenized with the model's tokenizer (MODEL/tokenizer.json or tokenizer.model, else\n"
           "byte-level), cut into windows of --ctx tokens overlapping by one. Each document is written\n"
           "with two more fields: \"ppl\" (perplexity, exp of the mean loss per token) and\n"
           "\"ppl_tokens\" (tokens predicted).\n"
           "Each thread scores its own documents with its own copy of the model (small evaluation models\n"
           "run fastest this way); --one-model keeps one copy and runs each forward pass on all threads\n"
           "instead (for models too large to copy). Runs on the CPU.\n"
           "Then: tnllm data filter.\n\n");
    data_flags_help(f);
    printf("  -m, --model DIR     the evaluation model (HF directory)\n"
           "  -c, --ctx T         window length in tokens (default 512)\n"
           "  -b, --batch B       windows of one document per forward pass (default 8)\n"
           "  --one-model         one copy of the model, documents in sequence\n"
           "  --field NAME        name of the score field (default ppl; NAME_tokens holds the count)\n");
}

/* Per thread: a model, its scorer and running totals. */
typedef struct ScoreThread {
    TnModel model;
    TnDocScorer scorer;
    double sum_loss;
    long long tokens;
} ScoreThread;

typedef struct ScoreContext {
    ScoreThread *threads;
    const char *field;
    char count_field[256];
} ScoreContext;

static void score_document(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                           TnTextBuf *kept, TnTextBuf *rejected) {
    ScoreContext *c = context;
    ScoreThread *own = &c->threads[thread];
    cJSON *json, *text;
    if (tn_doc_open(corpus, b, i, &json, &text, rejected)) return;
    double loss;
    long long predicted;
    TnError err;
    if (tn_score_text(&own->scorer, text->valuestring, strlen(text->valuestring), &loss, &predicted, &err)) {
        tn_doc_reject(corpus, b, i, "not scored", err.msg, rejected);
    } else if (!isfinite(exp(loss))) { /* NaN or inf is not JSON, and no threshold can use it */
        char detail[96];
        snprintf(detail, sizeof detail, "mean loss %g nats/token: perplexity %g", loss, exp(loss));
        tn_doc_reject(corpus, b, i, "not scored", detail, rejected);
    } else {
        own->sum_loss += loss * (double)predicted;
        own->tokens += predicted;
        cJSON_DeleteItemFromObjectCaseSensitive(json, c->field);
        cJSON_DeleteItemFromObjectCaseSensitive(json, c->count_field);
        /* Four significant digits: enough for thresholds, stable text. */
        char ppl[32];
        snprintf(ppl, sizeof ppl, "%.4g", exp(loss));
        cJSON_AddRawToObject(json, c->field, ppl);
        cJSON_AddNumberToObject(json, c->count_field, (double)predicted);
        tn_doc_append_json(kept, json);
    }
    cJSON_Delete(json);
}

int cmd_data_score(int argc, char **argv) {
    const char *model_dir = NULL;
    int ctx = 512, batch = 8, one_model = 0;
    ScoreContext c = {.field = "ppl"};
    DataFlags f;
    TnArgs a;
    data_flags_init(&f, &a, "data score", DATA_READS_ONCE, argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(&f); data_flags_free(&f); return 0; }
        else if (data_flags_parse(&f, &a)) continue;
        else if (args_is(&a, "-m", "--model")) model_dir = args_value(&a);
        else if (args_is(&a, "-c", "--ctx")) ctx = (int)args_int(&a, 2, 1 << 20);
        else if (args_is(&a, "-b", "--batch")) batch = (int)args_int(&a, 1, 4096);
        else if (args_is(&a, NULL, "--one-model")) one_model = 1;
        else if (args_is(&a, NULL, "--field")) c.field = args_value(&a);
        else args_unknown(&a);
    }
    args_require(&a, model_dir, "-m MODEL");
    TnPipeline p;
    data_flags_finish(&f, &a, 1, "score", &p);
    if (strlen(c.field) > 200) tn_die_usage("tnllm data score: --field name too long");
    snprintf(c.count_field, sizeof c.count_field, "%s_tokens", c.field);
    if (one_model) {
        /* Documents in sequence: the pipeline opens no parallel region, so
         * each forward pass runs on all threads. */
        if (f.threads) omp_set_num_threads(f.threads);
        p.threads = 1;
    } else if (tn_pipeline_threads(&p) == 1) {
        omp_set_num_threads(1); /* one document at a time and a single-threaded forward pass */
    }
    int threads = tn_pipeline_threads(&p), forward_threads = one_model ? omp_get_max_threads() : 1;

    TnError err;
    TnTokenizer *tok;
    if (tn_tokenizer_for_model(&tok, model_dir, &err)) tn_die("%s", err.msg);
    c.threads = tn_calloc((size_t)threads, sizeof *c.threads);
    for (int t = 0; t < threads; t++) {
        if (tn_model_load(&c.threads[t].model, model_dir, &err)) tn_die("%s", err.msg);
        if (tn_doc_scorer_init(&c.threads[t].scorer, &c.threads[t].model, tok, ctx, batch, &err))
            tn_die("%s: %s", model_dir, err.msg);
    }
    TnPipelineCounts counts;
    if (tn_pipeline_run(&p, score_document, &c, &counts, &err)) tn_die("%s", err.msg);
    double sum_loss = 0;
    long long tokens = 0;
    for (int t = 0; t < threads; t++) {
        sum_loss += c.threads[t].sum_loss;
        tokens += c.threads[t].tokens;
        tn_doc_scorer_free(&c.threads[t].scorer);
        tn_model_free(&c.threads[t].model);
    }
    printf("tnllm data score: %lld documents scored with %s (context %d, %d %s), %lld rejected; %lld tokens, "
           "%.0f tokens/s; corpus perplexity %.3f (mean loss %.4f nats/token)\n",
           counts.kept, model_dir, ctx, one_model ? forward_threads : threads,
           one_model ? "threads per forward pass" : "documents at a time",
           counts.rejected, tokens, tokens / counts.seconds, tokens ? exp(sum_loss / tokens) : NAN,
           tokens ? sum_loss / tokens : NAN);
    printf("wrote %s and %s\n", p.output, p.rejects);
    free(c.threads);
    tn_tokenizer_free(tok);
    data_flags_free(&f);
    return 0;
}
