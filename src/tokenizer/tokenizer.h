/* tokenizer.h: text <-> token ids.
 *
 * Two kinds of tokenizer stand behind this one interface:
 *  - BPE from an HF tokenizer.json or a SentencePiece .model (BPE with byte
 *    fallback, SPEC section 4; the model is bpe.h, the files hf_json.h and
 *    sentencepiece.h, training train.h), and
 *  - the byte-level tokenizer, ids = byte + 3 after <unk>/<s>/</s> = 0/1/2
 *    (vocabulary 259), for models trained without a tokenizer.json.
 * decode(encode(x)) == x for every byte string with the byte-level
 * tokenizer and with every tokenizer tnllm trains; a loaded tokenizer.json
 * whose pieces lack some <0xNN> bytes, or whose Metaspace pre-tokenizer
 * swallows a leading space, reproduces the HF ids instead. Encoding never
 * adds <s>; callers that want it prepend TN_TOKEN_BOS. Text is always
 * literal: "<s>" in the input is three characters, not the control token.
 * A tokenizer is read-only once made: threads may share it, each encoding
 * through its own TnEncoder.
 */
#ifndef TN_TOKENIZER_TOKENIZER_H
#define TN_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define TN_TOKEN_UNK 0
#define TN_TOKEN_BOS 1
#define TN_TOKEN_EOS 2
#define TN_BYTE_VOCAB_SIZE 259

typedef struct TnTokenizer TnTokenizer;
struct TnBpe;

/* The byte-level tokenizer (never fails). */
TnTokenizer *tn_tokenizer_bytes(void);
/* Loads a tokenizer file: a SentencePiece model if its name ends in
 * ".model" (sentencepiece.h), else an HF tokenizer.json (hf_json.h). */
int tn_tokenizer_load(TnTokenizer **tok, const char *path, TnError *err);
/* Non-zero if tn_tokenizer_load reads path as a SentencePiece model. */
int tn_tokenizer_is_sentencepiece(const char *path);
/* The tokenizer file of a model directory into path (cap bytes):
 * DIR/tokenizer.json, else DIR/tokenizer.model, else "" (the byte-level
 * one). Fails only on a path too long. */
int tn_tokenizer_path_in(const char *dir, char *path, size_t cap, TnError *err);
/* The tokenizer of a model: `model` itself if it is a file, else
 * DIR/tokenizer.json, else DIR/tokenizer.model, else the byte-level one; a
 * path that does not exist is an error (naming it), not the byte-level one. */
int tn_tokenizer_for_model(TnTokenizer **tok, const char *model, TnError *err);
/* Wraps a built BPE model (bpe.h), taking ownership of its contents. */
TnTokenizer *tn_tokenizer_from_bpe(struct TnBpe *bpe);
/* The BPE model, or NULL for the byte-level tokenizer. */
const struct TnBpe *tn_tokenizer_bpe(const TnTokenizer *tok);
/* Writes an HF tokenizer.json (BPE tokenizers only). */
int tn_tokenizer_save(const TnTokenizer *tok, const char *path, TnError *err);
void tn_tokenizer_free(TnTokenizer *tok);

int tn_tokenizer_vocab_size(const TnTokenizer *tok);

/* Encodes len bytes of text (any bytes, NUL included). *ids is allocated
 * (the caller frees) and holds *n_ids ids. Never fails on any input; err is
 * kept for the interface. For many texts use a TnEncoder, which reuses its
 * buffers and remembers the words it has seen. */
int tn_tokenizer_encode(const TnTokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n_ids,
                        TnError *err);

/* Per-thread encoding state (scratch space, a cache of encoded words). */
typedef struct TnEncoder TnEncoder;
TnEncoder *tn_encoder_new(const TnTokenizer *tok);
/* Encodes like tn_tokenizer_encode into a buffer the encoder owns, valid
 * until its next call. */
const int32_t *tn_encoder_encode(TnEncoder *enc, const char *text, size_t len, size_t *n_ids);
void tn_encoder_free(TnEncoder *enc);

/* The piece string of id as stored in tokenizer.json ("▁the", "<0x0A>",
 * "<s>"), or NULL if id is out of range. The byte-level tokenizer names its
 * ids "<unk>", "<s>", "</s>" and "<0xNN>". */
const char *tn_tokenizer_piece(const TnTokenizer *tok, int32_t id);

/* The bytes of one token: *len bytes at the returned pointer, owned by the
 * tokenizer (*len is 0 for special tokens and out-of-range ids; a piece of
 * any length comes whole). Used for streaming output: the concatenation
 * over a sequence equals decode() except for the one leading space that
 * decode() drops when the encoder prepends "▁". */
const char *tn_tokenizer_token_bytes(const TnTokenizer *tok, int32_t id, size_t *len);

/* Decodes ids into an allocated NUL-terminated string (the caller frees);
 * *len (if not NULL) is its byte length, which may include NUL bytes.
 * Control tokens and ids out of range decode to nothing. When the
 * tokenizer prepends "▁" to text, one leading space of the output is
 * dropped (the HF Strip / Metaspace decoders do the same). */
char *tn_tokenizer_decode(const TnTokenizer *tok, const int32_t *ids, size_t n_ids, size_t *len);

#endif
