/* bpe.h: the BPE model behind tokenizer.h (SentencePiece-style BPE with
 * UTF-8 byte fallback, paper section 4.2; SPEC section 4).
 *
 * A TnBpe holds a vocabulary of pieces and a ranked list of merges, plus the
 * tables derived from them for encoding and decoding. It is built once
 * (tn_bpe_build, from a tokenizer.json or from training) and is read-only
 * afterwards, so any number of threads may encode with it at once, each
 * through its own TnBpeEncoder (scratch space and a word cache).
 *
 * Encoding follows the HF `tokenizers` BPE model with the LLaMA
 * configuration: spaces become "▁", a "▁" is prepended to non-empty text,
 * each character becomes its piece, or its UTF-8 byte pieces <0xNN> when it
 * has none (or <unk>, fused, when those are missing too), then merges are
 * applied lowest rank first, leftmost first among equal ranks.
 * One deliberate difference: a literal "▁" (U+2581) in the input is encoded
 * as its three byte pieces, not as the space piece, so that
 * decode(encode(x)) == x holds for every byte string.
 */
#ifndef TN_TOKENIZER_BPE_H
#define TN_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/unicode.h"
#include "util/error.h"

/* The legacy LLaMA normalizer (Prepend) always prepends "▁"; the
 * Metaspace pre-tokenizer only when the text does not start with a space. */
typedef enum TnPrefix { TN_PREFIX_NEVER, TN_PREFIX_ALWAYS, TN_PREFIX_UNLESS_SPACE } TnPrefix;

/* Options of the HF normalizer / pre-tokenizer / model that change ids. */
typedef struct TnBpeOptions {
    int metaspace;         /* spaces are written as "▁" (and decoded back) */
    TnPrefix add_prefix;   /* when a "▁" is prepended to non-empty text */
    int split_every_space; /* Metaspace pre-tokenizer with split=true */
    int byte_fallback;     /* unknown characters become <0xNN> pieces */
    int fuse_unk;          /* consecutive <unk> become one */
} TnBpeOptions;

/* A merge: pieces left and right (ids) join into one piece. */
typedef struct TnMerge {
    int32_t left, right;
} TnMerge;

/* Open-addressing table from a merge pair to its rank and result. */
typedef struct TnMergeSlot {
    uint64_t key; /* (left << 32 | right) + 1; 0 marks an empty slot */
    int32_t rank, result;
} TnMergeSlot;

typedef struct TnBpe {
    int vocab_size;
    char **pieces;            /* [vocab_size] NUL-terminated piece strings, as in tokenizer.json */
    uint8_t *is_special;      /* [vocab_size] control tokens: never produced, decode to nothing */
    char *decoded;            /* bytes every id decodes to, concatenated */
    uint32_t *decoded_offset; /* [vocab_size + 1] offsets into decoded */
    int32_t byte_ids[256];    /* id of <0xNN>, -1 if absent */
    int32_t unk_id;           /* -1 if none */
    TnBpeOptions options;
    TnSplit split;            /* the finest split that leaves ids unchanged */
    int32_t *char_ids;        /* [TN_CODEPOINT_LIMIT] id of the one-character piece, -1 if none */
    TnMerge *merges;          /* [n_merges] in rank order */
    int n_merges;
    TnMergeSlot *merge_table; /* [merge_capacity], a power of two */
    size_t merge_capacity;
    int32_t *piece_table;     /* [piece_capacity] ids by piece hash, -1 empty */
    size_t piece_capacity;
} TnBpe;

/* Builds a model in two steps: the vocabulary, then the merges (whose
 * pieces a loader may look up with tn_bpe_find_piece in between).
 * tn_bpe_init takes ownership of pieces (each string and the array, freed
 * with free()) and is_special, also on failure; it fails, naming `source`,
 * if a piece repeats. tn_bpe_set_merges takes ownership of merges and fails
 * if a merge refers to an id out of range, repeats, or its concatenation is
 * not a piece. Merge i has rank i, or ranks[i] when ranks is not NULL
 * (read, not kept): equal ranks are applied leftmost first, which is how
 * SentencePiece treats pieces of equal score (sentencepiece.h). On failure
 * the model is freed. */
int tn_bpe_init(TnBpe *bpe, char **pieces, uint8_t *is_special, int vocab_size, const TnBpeOptions *options,
                const char *source, TnError *err);
int tn_bpe_set_merges(TnBpe *bpe, TnMerge *merges, const int32_t *ranks, int n_merges, const char *source,
                      TnError *err);
void tn_bpe_free(TnBpe *bpe);

/* Id of the piece with exactly these len bytes, -1 if none. */
int32_t tn_bpe_find_piece(const TnBpe *bpe, const char *piece, size_t len);

/* The merge table's key of (left, right): never 0, which marks an empty
 * slot. */
static inline uint64_t tn_merge_key(int32_t left, int32_t right) {
    return (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
}

/* The first slot of a merge key in a table of mask + 1 slots. The product's
 * high half brings in the left id (the low bits alone would only see the
 * right id and the lowest bits of the left one, and collide). */
static inline size_t tn_merge_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 32)) & mask;
}

/* The merge of (left, right): its rank (or -1 if none) and result. */
static inline int32_t tn_bpe_merge_rank(const TnBpe *bpe, int32_t left, int32_t right, int32_t *result) {
    uint64_t key = tn_merge_key(left, right);
    size_t mask = bpe->merge_capacity - 1;
    for (size_t i = tn_merge_slot(key, mask);; i = (i + 1) & mask) {
        const TnMergeSlot *s = &bpe->merge_table[i];
        if (s->key == key) { *result = s->result; return s->rank; }
        if (s->key == 0) return -1;
    }
}

typedef struct TnBpeEncoder TnBpeEncoder;

TnBpeEncoder *tn_bpe_encoder_new(const TnBpe *bpe);
void tn_bpe_encoder_free(TnBpeEncoder *enc);
/* Encodes len bytes and returns the ids in a buffer the encoder owns, valid
 * until its next call. Never fails: every byte string has an encoding. */
const int32_t *tn_bpe_encode(TnBpeEncoder *enc, const char *text, size_t len, size_t *n_ids);

#endif
