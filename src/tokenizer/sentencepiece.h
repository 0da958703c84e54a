/* sentencepiece.h: SentencePiece `.model` files (the `tokenizer.model` of
 * LLaMA, Baichuan and TransNormerLLM) as BPE models (bpe.h).
 *
 * The file is a protobuf ModelProto (sentencepiece_model.proto), read with
 * util/protowire.h: field 1 the pieces (piece string, float score, type
 * NORMAL / UNKNOWN / CONTROL / USER_DEFINED / UNUSED / BYTE), field 2 the
 * trainer spec (model_type, byte_fallback, treat_whitespace_as_suffix;
 * split_digits only shapes training), field 3 the normalizer spec (name,
 * precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces,
 * escape_whitespaces). Unknown fields are skipped, as protobuf readers do;
 * absent ones take the proto2 defaults.
 *
 * Building the BPE model: SentencePiece's BPE encoder repeatedly joins the
 * adjacent pair whose concatenation is the highest-scoring piece (leftmost
 * first), which is BPE with a merge for every split of a piece into two
 * pieces, ranked by the score of the joined piece. The merges are listed as
 * the HF converter (transformers' SentencePieceExtractor) lists them: by
 * score, highest first, then piece id, then the ids of the two halves
 * (only NORMAL and USER_DEFINED pieces, the ones SentencePiece's BPE looks
 * up, take part; HF's converter would also split control and byte pieces,
 * which no real vocabulary makes of two other pieces).
 * When encoding, merges of equal score (all splits of one piece, and pieces
 * of equal score) share a rank and the leftmost pair goes first, as in
 * SentencePiece; tokenizer.json ranks them one after another (as HF's
 * converter does), which differs only where two such pairs overlap.
 * Pieces: <unk> (type UNKNOWN) and CONTROL pieces are control tokens, BYTE
 * pieces are the <0xNN> of byte fallback. Spaces become "▁" and, with
 * add_dummy_prefix, a "▁" is prepended: the legacy LLaMA layout of
 * tokenizer.json, which tn_hf_json_write writes for such a model. Two
 * deliberate differences from SentencePiece, so that decode(encode(x)) == x
 * for every byte string: invalid UTF-8 keeps its bytes (SentencePiece
 * turns each such byte into U+FFFD) and a literal "▁" in the text is
 * encoded as its bytes (bpe.h).
 *
 * Refused with an error naming the file and the reason, never read wrongly:
 * malformed protobuf (truncated, bad lengths or wire types), models other
 * than BPE (unigram, word, char), normalizers that rewrite text (a
 * precompiled_charsmap, i.e. nmt_nfkc or nfkc rules: train with
 * --normalization_rule_name=identity), remove_extra_whitespaces,
 * escape_whitespaces=false, treat_whitespace_as_suffix, USER_DEFINED pieces
 * of more than one character (SentencePiece matches them before BPE),
 * UNUSED pieces, BYTE pieces without byte_fallback (or byte_fallback with
 * some of the 256 missing), and a model without exactly one <unk>.
 */
#ifndef TN_TOKENIZER_SENTENCEPIECE_H
#define TN_TOKENIZER_SENTENCEPIECE_H

#include <stddef.h>

#include "tokenizer/bpe.h"
#include "util/error.h"

/* Builds bpe from the ModelProto in data[0..size); source names it in
 * errors. On failure nothing is left allocated. */
int tn_sentencepiece_parse(TnBpe *bpe, const void *data, size_t size, const char *source, TnError *err);
/* Reads a .model file. */
int tn_sentencepiece_read(TnBpe *bpe, const char *path, TnError *err);

#endif
