#include "data/pipeline.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "util/progress.h"

#define BATCH_DOCUMENTS 4096
#define BATCH_BYTES (32u << 20)

int tn_pipeline_threads(const TnPipeline *p) { return p->threads > 0 ? p->threads : omp_get_max_threads(); }

void tn_rejects_path_for(const char *output, char *out, size_t cap) {
    const char *jsonl = strstr(output, ".jsonl");
    if (jsonl) snprintf(out, cap, "%.*s.rejects%s", (int)(jsonl - output), output, jsonl);
    else snprintf(out, cap, "%s.rejects.jsonl", output);
}

typedef struct Writers {
    TnStreamWriter output, rejects;
    int has_output, has_rejects;
} Writers;

static void abort_writers(Writers *w) {
    if (w->has_output) tn_stream_writer_abort(&w->output);
    if (w->has_rejects) tn_stream_writer_abort(&w->rejects);
    w->has_output = w->has_rejects = 0;
}

/* Writes the batch's outputs in input order. */
static int write_batch(Writers *w, const TnTextBuf *kept, const TnTextBuf *rejected, int count, TnError *err) {
    for (int i = 0; i < count; i++) {
        if (w->has_output && tn_stream_writer_write(&w->output, kept[i].data, kept[i].len, err)) return -1;
        if (w->has_rejects && tn_stream_writer_write(&w->rejects, rejected[i].data, rejected[i].len, err)) return -1;
    }
    return 0;
}

static void run_document(TnDocFunction fn, void *context, int thread, const TnJsonlReader *corpus,
                         const TnDocBatch *b, int i, TnTextBuf *kept, TnTextBuf *rejected) {
    tn_textbuf_clear(&kept[i]);
    tn_textbuf_clear(&rejected[i]);
    fn(context, thread, corpus, b, i, &kept[i], &rejected[i]);
}

int tn_pipeline_run(const TnPipeline *p, TnDocFunction fn, void *context, TnPipelineCounts *counts, TnError *err) {
    memset(counts, 0, sizeof *counts);
    TnJsonlReader corpus;
    if (tn_jsonl_open(&corpus, p->inputs, p->n_inputs, err)) return -1;
    Writers w = {0};
    if (p->output) {
        if (tn_stream_writer_open(&w.output, p->output, err)) return -1;
        w.has_output = 1;
    }
    if (p->rejects) {
        if (tn_stream_writer_open(&w.rejects, p->rejects, err)) { abort_writers(&w); return -1; }
        w.has_rejects = 1;
    }
    int threads = tn_pipeline_threads(p);
    TnDocBatch batch;
    tn_doc_batch_init(&batch, BATCH_DOCUMENTS);
    TnTextBuf *kept = tn_calloc(BATCH_DOCUMENTS, sizeof *kept), *rejected = tn_calloc(BATCH_DOCUMENTS, sizeof *rejected);
    TnProgress progress;
    tn_progress_start(&progress, p->label, "MB", (double)corpus.total_bytes / 1e6);
    double start = tn_now();
    int rc = 0, n;
    while ((n = tn_jsonl_read_batch(&corpus, &batch, BATCH_BYTES, err)) > 0) {
        if (threads == 1) {
            /* No parallel region at all: a function that runs its own
             * OpenMP regions (the model in data score) gets every thread
             * instead of a nested team. */
            for (int i = 0; i < n; i++) run_document(fn, context, 0, &corpus, &batch, i, kept, rejected);
        } else {
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
            for (int i = 0; i < n; i++)
                run_document(fn, context, omp_get_thread_num(), &corpus, &batch, i, kept, rejected);
        }
        for (int i = 0; i < n; i++) {
            counts->kept += kept[i].len > 0;
            counts->rejected += rejected[i].len > 0;
        }
        counts->documents += n;
        counts->bytes += (double)batch.bytes;
        if (p->after_batch && p->after_batch(context, &batch, kept, rejected, err)) { rc = -1; break; }
        if (write_batch(&w, kept, rejected, n, err)) { rc = -1; break; }
        char extra[128];
        snprintf(extra, sizeof extra, "%lld docs, %.0f docs/s, %lld kept", counts->documents,
                 counts->documents / (tn_now() - start + 1e-9), counts->kept);
        if (!p->quiet) tn_progress_update(&progress, (double)tn_jsonl_bytes_read(&corpus) / 1e6, extra);
    }
    if (n < 0) rc = -1;
    if (rc == 0 && p->documents_expected > 0 && counts->documents != p->documents_expected)
        rc = tn_fail(err, "%s%s: input changed between passes: %lld documents, %lld in the first pass", p->inputs[0],
                     p->n_inputs > 1 ? " ..." : "", counts->documents, p->documents_expected);
    counts->seconds = tn_now() - start;
    if (rc == 0 && !p->quiet) {
        char extra[128];
        snprintf(extra, sizeof extra, "%lld docs, %lld kept, %lld rejected", counts->documents, counts->kept,
                 counts->rejected);
        tn_progress_finish(&progress, (double)tn_jsonl_bytes_read(&corpus) / 1e6, extra);
    }
    for (int i = 0; i < BATCH_DOCUMENTS; i++) {
        tn_textbuf_free(&kept[i]);
        tn_textbuf_free(&rejected[i]);
    }
    free(kept);
    free(rejected);
    tn_doc_batch_free(&batch);
    tn_jsonl_close(&corpus);
    if (rc == 0 && w.has_output) {
        w.has_output = 0;
        if (tn_stream_writer_commit(&w.output, err)) rc = -1;
    }
    if (rc == 0 && w.has_rejects) {
        w.has_rejects = 0;
        if (tn_stream_writer_commit(&w.rejects, err)) rc = -1;
    }
    if (rc != 0) abort_writers(&w);
    return rc;
}
