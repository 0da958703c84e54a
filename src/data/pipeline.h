/* pipeline.h: the streaming document loop shared by the `tnllm data` commands.
 *
 * Reads a corpus (jsonl.h) in batches, runs a per-document function on all
 * cores, and writes each document's outputs in input order to two files:
 * the output (documents kept) and the rejects file (every document dropped,
 * with its reason). Both are TnStreamWriters: compressed by their names and
 * renamed into place only when the whole corpus went through, so a killed
 * run leaves the old files (or none), never a partial one. The results do
 * not depend on the thread count. A progress line shows bytes read, MB/s
 * and documents/s.
 */
#ifndef TN_DATA_PIPELINE_H
#define TN_DATA_PIPELINE_H

#include "data/jsonl.h"

/* Handles document i of batch b on thread `thread` (0..threads-1): appends
 * the kept line (with '\n') to kept or a rejects record (tn_reject_append)
 * to rejected, or neither. Must be safe to call concurrently for different
 * documents with different threads. */
typedef void (*TnDocFunction)(void *context, int thread, const TnJsonlReader *corpus, const TnDocBatch *b, int i,
                              TnTextBuf *kept, TnTextBuf *rejected);

/* Optional: called once per batch, after fn ran on all of its documents and
 * before their outputs are written, on one thread, in input order. */
typedef int (*TnBatchFunction)(void *context, const TnDocBatch *b, const TnTextBuf *kept, const TnTextBuf *rejected,
                               TnError *err);

typedef struct TnPipeline {
    const char *const *inputs;
    int n_inputs;
    const char *output;      /* NULL: kept documents are not written */
    const char *rejects;     /* NULL: rejects are not written */
    const char *label;       /* progress label */
    int threads;             /* 0: all cores */
    TnBatchFunction after_batch; /* may be NULL */
    int quiet;               /* no progress line */
    long long documents_expected; /* > 0: a second pass, which fails (writing nothing) if the inputs
                                     hold another count: they changed since the first */
} TnPipeline;

typedef struct TnPipelineCounts {
    long long documents, kept, rejected;
    double bytes, seconds;
} TnPipelineCounts;

/* The thread count a pipeline will use (threads, or all cores for 0). */
int tn_pipeline_threads(const TnPipeline *p);

int tn_pipeline_run(const TnPipeline *p, TnDocFunction fn, void *context, TnPipelineCounts *counts, TnError *err);

/* The default rejects path beside output: "a.jsonl.gz" -> "a.rejects.jsonl.gz",
 * other names get ".rejects.jsonl" appended. */
void tn_rejects_path_for(const char *output, char *out, size_t cap);

#endif
