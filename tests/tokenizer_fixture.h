/* tokenizer_fixture.h: shared by the tokenizer tests: a hand-written
 * tokenizer.json and an independent, naive BPE reference.
 *
 * The reference knows nothing of words, caches or heaps: it turns the whole
 * normalized text into one symbol per character (or its <0xNN> bytes) and
 * repeatedly merges the leftmost lowest-rank pair, comparing piece strings,
 * in O(n^2 * merges). It is the HF definition written the slow way. */
#ifndef TN_TESTS_TOKENIZER_FIXTURE_H
#define TN_TESTS_TOKENIZER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* Writes a tokenizer.json with <unk> <s> </s>, the 256 byte pieces (ids
 * 3..258) and then `pieces` (ids from 259 on), merges as "a b" strings.
 * normalizer_and_pre is the JSON text of the "normalizer" and
 * "pre_tokenizer" members. */
void write_tokenizer_json(const char *path, const char *const *pieces, int n_pieces, const char *const *merges,
                          int n_merges, const char *normalizer_and_pre, int byte_fallback);

/* The reference ids of text under tok (which must prepend "▁" always and
 * map spaces to "▁", with all byte pieces); returns the count. */
size_t reference_encode(const TnTokenizer *tok, const char *text, size_t len, int32_t *ids);

#endif
