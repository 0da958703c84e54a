/* corpus.h: training text in any of the forms SPEC section 4 allows, as
 * one stream of token ids.
 *
 * A path is read as
 *  - a token shard (shard.h) when it starts with the shard magic or its
 *    name ends in ".bin" (so a corrupt shard is an error, not text),
 *  - JSON Lines when its name ends in ".jsonl" (or ".jsonl.gz",
 *    ".jsonl.zst"): one object per line with a "text" string (other fields
 *    are ignored), each text one document,
 *  - plain text otherwise: the whole file one document.
 * Text and JSON Lines named ".gz" or ".zst" are decompressed (stream.h),
 * every line then ended by '\n'.
 * Text is encoded with the given tokenizer and every document is followed
 * by </s> (TN_TOKEN_EOS), as in a shard. Several paths separated by commas
 * are concatenated in order.
 */
#ifndef TN_DATA_CORPUS_H
#define TN_DATA_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

/* Whether path is JSON Lines by its name: ".jsonl", or compressed as
 * ".jsonl.gz" or ".jsonl.zst" (stream.h's codecs, which tn_corpus_read
 * decompresses for text and JSON Lines alike). */
int tn_corpus_is_jsonl(const char *path);

/* Reads the comma-separated paths into *tokens (allocated; the caller
 * frees) of *n_tokens ids. Fails, naming the file (and line for JSONL), on
 * a file that cannot be read, a malformed shard or JSON line, no tokens at
 * all, or an id >= vocab_size. */
int tn_corpus_read(const char *paths, const TnTokenizer *tok, int vocab_size, uint32_t **tokens, size_t *n_tokens,
                   TnError *err);

/* The unigram baseline: the mean loss (nats/token) on eval of the token
 * frequencies of train with add-one smoothing over vocab_size ids. A
 * model that learned anything beyond single-token frequencies beats it. */
double tn_unigram_loss(const uint32_t *train, size_t n_train, const uint32_t *eval, size_t n_eval, int vocab_size);

#endif
