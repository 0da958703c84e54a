/* train.h: learning a BPE tokenizer from text (paper section 4.2).
 *
 * The result is the SentencePiece-style layout of the released models:
 * <unk> <s> </s> = 0 1 2, the 256 byte pieces <0x00>..<0xFF> = 3..258, then
 * one piece per character kept by the coverage rule, then one piece per
 * merge in rank order, then any extra control tokens. Spaces are written
 * "▁" and "▁" is prepended to every document (SentencePiece's dummy
 * prefix); byte fallback covers every character left out.
 *
 * Pre-tokenization is unicode.h's TN_SPLIT_CLASSES: digits one by one, each
 * CJK character its own symbol, letters, punctuation and whitespace runs
 * apart, "▁" leading a letter or punctuation run. So no merge ever crosses
 * a word, and the HF libraries, which run BPE over the whole text, give the
 * same ids.
 *
 * Counting is multi-threaded (a word map per thread, merged at the end);
 * merging keeps pair counts (64-bit) and the words each pair occurs in, and
 * updates both incrementally after each merge, taking the next pair from a
 * priority queue (highest count, then lowest pair of ids), so no merge
 * recounts the corpus. Memory grows with the number of distinct words, not
 * with the corpus.
 */
#ifndef TN_TOKENIZER_TRAIN_H
#define TN_TOKENIZER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/bpe.h"
#include "util/error.h"

typedef struct TnTrainOptions {
    int vocab_size;              /* everything included (controls, bytes, characters, merges, extras) */
    int64_t min_frequency;       /* a merge needs a pair seen at least this often */
    double character_coverage;   /* share of character occurrences given their own piece */
    int threads;                 /* for counting; 0: all cores */
    const char *const *specials; /* extra control tokens, ids at the end */
    int n_specials;
    int progress;                /* progress lines on stderr */
} TnTrainOptions;

/* vocab 32000, min frequency 2, coverage 0.9995, all cores, no extras. */
TnTrainOptions tn_train_defaults(void);

typedef struct TnTrainStats {
    long long documents, words, distinct_words, characters, merges;
    double bytes, count_seconds, merge_seconds;
} TnTrainStats;

/* Trains on plain-text and JSONL files (data/text_batches.h). A corpus
 * without a word (no file, or only empty documents) is an error naming it:
 * it would give a vocabulary of bytes alone. */
int tn_bpe_train_files(TnBpe *bpe, const char *const *paths, int n_paths, const TnTrainOptions *opt,
                       TnTrainStats *stats, TnError *err);
/* Trains on texts in memory (each one document); all empty is an error. */
int tn_bpe_train_texts(TnBpe *bpe, const char *const *texts, const size_t *lengths, int n_texts,
                       const TnTrainOptions *opt, TnTrainStats *stats, TnError *err);

#endif
