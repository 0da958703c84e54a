/* tokenize.h: a corpus turned into token shards (`tnllm data tokenize`).
 *
 * Reads plain-text and JSONL files (text_batches.h) in batches, encodes the
 * documents of a batch on all threads (one TnEncoder each), and appends
 * them in input order, each followed by </s> (id 2), to shards of
 * shard_tokens tokens (data/shard.h, SPEC section 4) named
 * <output>_000000.bin, <output>_000001.bin, ... A document may continue
 * into the next shard, as in llm.c. The shards do not depend on the thread
 * count. The prefix's directory is created first; shards of an earlier run
 * numbered past this run's last are removed at the end (stale_removed), so
 * that the prefix's shards are this run's. Memory: one batch of text, its
 * ids and one shard.
 */
#ifndef TN_DATA_TOKENIZE_H
#define TN_DATA_TOKENIZE_H

#include <stddef.h>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

typedef struct TnTokenizeOptions {
    const char *output;  /* shard path prefix */
    size_t shard_tokens; /* tokens per shard (the last one may hold fewer) */
    int threads;         /* 0: all cores */
    int progress;        /* a progress line on stderr */
} TnTokenizeOptions;

typedef struct TnTokenizeStats {
    long long documents, tokens;
    int shards;
    int stale_removed; /* shards of an earlier run numbered past this run's, removed */
    double bytes, seconds;
} TnTokenizeStats;

/* The path of shard index (for callers that list what was written). */
void tn_shard_name(char *out, size_t cap, const char *prefix, int index);

int tn_data_tokenize(const TnTokenizer *tok, const char *const *inputs, int n_inputs, const TnTokenizeOptions *opt,
                     TnTokenizeStats *stats, TnError *err);

#endif
