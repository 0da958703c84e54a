/* hf_json.h: HF tokenizer.json files for the BPE model (bpe.h).
 *
 * Reads the SentencePiece-style BPE files of LLaMA, Baichuan and
 * TransNormerLLM: "model": {"type": "BPE", "vocab", "merges" (as "a b"
 * strings or [a, b] pairs), "byte_fallback", "fuse_unk", "unk_token"},
 * "added_tokens" (special ones become control tokens), and either the
 * legacy normalizer (Prepend "▁" + Replace " " -> "▁") or the Metaspace
 * pre-tokenizer (prepend_scheme / add_prefix_space, split). Anything that
 * would change ids and that the model does not implement (another model
 * type, byte-level pre-tokenizers, Unicode normalization, subword
 * prefixes, dropout, ignore_merges) is refused with an error naming the
 * file and the entry, never silently ignored.
 *
 * Writes the legacy LLaMA layout (normalizer Prepend + Replace, no
 * pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip, a post-processor
 * that adds <s>) with which the HF libraries reproduce tnllm's ids, and a
 * matching tokenizer_config.json when asked.
 */
#ifndef TN_TOKENIZER_HF_JSON_H
#define TN_TOKENIZER_HF_JSON_H

#include "tokenizer/bpe.h"
#include "util/error.h"

int tn_hf_json_read(TnBpe *bpe, const char *path, TnError *err);
int tn_hf_json_write(const TnBpe *bpe, const char *path, TnError *err);
/* tokenizer_config.json for `transformers` (LlamaTokenizerFast, <s> added,
 * </s> not). */
int tn_hf_config_write(const TnBpe *bpe, const char *path, TnError *err);

#endif
