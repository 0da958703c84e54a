#include "data/tokenize.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "data/shard.h"
#include "data/text_batches.h"
#include "util/fileio.h"
#include "util/progress.h"

#define BATCH_BYTES (32u << 20)

/* One thread's ids for the current batch, documents back to back. */
typedef struct ThreadIds {
    TnEncoder *encoder;
    int32_t *ids;
    size_t size, capacity;
} ThreadIds;

typedef struct ShardWriter {
    const char *prefix;
    uint32_t *tokens;
    size_t size, capacity;
    int written;
} ShardWriter;

void tn_shard_name(char *out, size_t cap, const char *prefix, int index) {
    snprintf(out, cap, "%s_%06d.bin", prefix, index);
}

static int flush_shard(ShardWriter *w, TnError *err) {
    char path[4200];
    tn_shard_name(path, sizeof path, w->prefix, w->written);
    if (tn_shard_write(path, w->tokens, w->size, err)) return -1;
    w->written++;
    w->size = 0;
    return 0;
}

static int append_tokens(ShardWriter *w, const int32_t *ids, size_t n, TnError *err) {
    for (size_t i = 0; i < n; i++) {
        w->tokens[w->size++] = (uint32_t)ids[i];
        if (w->size == w->capacity && flush_shard(w, err)) return -1;
    }
    return 0;
}

static void encode_document(ThreadIds *t, const char *text, size_t length, size_t *offset, size_t *count) {
    size_t n;
    const int32_t *ids = tn_encoder_encode(t->encoder, text, length, &n);
    if (t->size + n > t->capacity) {
        t->capacity = 2 * (t->size + n) + 4096;
        t->ids = realloc(t->ids, t->capacity * sizeof *t->ids);
        if (!t->ids) tn_die("out of memory for %zu token ids", t->capacity);
    }
    memcpy(t->ids + t->size, ids, n * sizeof *ids);
    *offset = t->size;
    *count = n;
    t->size += n;
}

/* Removes the shards numbered from `first` on left by an earlier run with
 * the same prefix, so the prefix names this run's shards only. */
static int remove_stale_shards(const char *prefix, int first, int *removed, TnError *err) {
    char path[4200];
    for (int index = first;; index++) {
        tn_shard_name(path, sizeof path, prefix, index);
        if (!tn_file_exists(path)) return 0;
        if (tn_remove_if_present(path, err)) return -1;
        (*removed)++;
    }
}

int tn_data_tokenize(const TnTokenizer *tok, const char *const *inputs, int n_inputs, const TnTokenizeOptions *opt,
                     TnTokenizeStats *stats, TnError *err) {
    TnTextBatches reader;
    TnTextBatch batch;
    TnProgress bar;
    memset(stats, 0, sizeof *stats);
    double start = tn_now();
    if (opt->shard_tokens == 0) return tn_fail(err, "%s: shards must hold at least one token", opt->output);
    if (opt->shard_tokens > INT32_MAX) /* a shard's token count is int32 (data/shard.h) */
        return tn_fail(err, "%s: %zu tokens a shard, at most %d", opt->output, opt->shard_tokens, INT32_MAX);
    if (tn_mkdir_parent(opt->output, err) || tn_text_batches_open(&reader, inputs, n_inputs, err)) return -1;
    int threads = opt->threads > 0 ? opt->threads : omp_get_max_threads();
    ThreadIds *per_thread = tn_calloc((size_t)threads, sizeof *per_thread);
    for (int t = 0; t < threads; t++) per_thread[t].encoder = tn_encoder_new(tok);
    ShardWriter writer = {opt->output, tn_malloc(opt->shard_tokens * sizeof(uint32_t)), 0, opt->shard_tokens, 0};
    size_t doc_capacity = 0, *offset = NULL, *count = NULL;
    int *owner = NULL, n, rc = 0;
    const int32_t eos = TN_TOKEN_EOS;
    if (opt->progress) tn_progress_start(&bar, "tokenizing", "MB", (double)reader.total_bytes / 1e6);
    while (rc == 0 && (n = tn_text_batches_next(&reader, &batch, BATCH_BYTES, err)) > 0) {
        if ((size_t)n > doc_capacity) {
            doc_capacity = (size_t)n;
            free(offset); free(count); free(owner);
            offset = tn_malloc(doc_capacity * sizeof *offset);
            count = tn_malloc(doc_capacity * sizeof *count);
            owner = tn_malloc(doc_capacity * sizeof *owner);
        }
        for (int t = 0; t < threads; t++) per_thread[t].size = 0;
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads)
        for (int i = 0; i < n; i++) {
            owner[i] = omp_get_thread_num();
            encode_document(&per_thread[owner[i]], batch.text[i], batch.length[i], &offset[i], &count[i]);
        }
        for (int i = 0; i < n && rc == 0; i++) {
            rc = append_tokens(&writer, per_thread[owner[i]].ids + offset[i], count[i], err) ||
                 append_tokens(&writer, &eos, 1, err);
            stats->tokens += (long long)count[i] + 1;
        }
        stats->documents += n;
        stats->bytes += (double)batch.bytes;
        if (opt->progress) {
            char extra[64];
            snprintf(extra, sizeof extra, "%lld docs, %lld tokens", stats->documents, stats->tokens);
            tn_progress_update(&bar, (double)reader.bytes_read / 1e6, extra);
        }
    }
    if (n < 0) rc = -1;
    if (rc == 0 && writer.size > 0) rc = flush_shard(&writer, err);
    if (rc == 0) rc = remove_stale_shards(opt->output, writer.written, &stats->stale_removed, err);
    if (opt->progress) tn_progress_finish(&bar, (double)reader.bytes_read / 1e6, NULL);
    stats->shards = writer.written;
    stats->seconds = tn_now() - start;
    for (int t = 0; t < threads; t++) {
        tn_encoder_free(per_thread[t].encoder);
        free(per_thread[t].ids);
    }
    free(per_thread);
    free(writer.tokens);
    free(offset);
    free(count);
    free(owner);
    tn_text_batches_close(&reader);
    return rc ? -1 : 0;
}
