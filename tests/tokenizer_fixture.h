/* tokenizer_fixture.h: shared by the tokenizer tests: a hand-written
 * tokenizer.json, independent naive BPE references (merge ranks and
 * SentencePiece scores), mixed text, and the comparison with tokenizers.js.
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

/* The reference ids under SentencePiece's rule instead of merge ranks:
 * repeatedly join the adjacent pair whose concatenation is the piece of
 * highest scores[id] (leftmost among equals); with scores NULL, merge
 * ranks (reference_encode). Same requirements as reference_encode. */
size_t reference_encode_scored(const TnTokenizer *tok, const float *scores, const char *text, size_t len,
                               int32_t *ids);

struct TnRng;
/* A random document of mixed English, Chinese, code, numbers, emoji and
 * control characters into doc (at most cap - 1 bytes, cap > 300); returns
 * its length. */
size_t mixed_document(struct TnRng *rng, char *doc, size_t cap);

/* The directory holding @huggingface/tokenizers ($TN_NODE_MODULES, else
 * bench/node_modules), or NULL with the reason (no node, no package) in why. */
const char *find_node_modules(char *why, size_t cap);
/* Encodes each text with tokenizers.js (tests/hf_encode.mjs) and the
 * tokenizer.json + tokenizer_config.json in dir, writing dir/hf_ids.txt,
 * one line of ids per text; 0 on success. */
int hf_encode_texts(const char *modules, const char *dir, const char *const *texts, const size_t *lengths,
                    int n_texts);
/* Non-zero if line holds exactly ids[0..n) separated by spaces (then
 * only whitespace). */
int ids_line_equal(const char *line, const int32_t *ids, size_t n);
/* Compares the file's lines of space-separated ids with tok's ids of each
 * text; returns how many agree (-1 if the file cannot be read), the ids
 * counted and the first text that differs (-1 if none). */
int compare_id_lines(const char *ids_path, const TnTokenizer *tok, const char *const *texts, const size_t *lengths,
                     int n_texts, long long *n_ids, int *first_bad);

#endif
