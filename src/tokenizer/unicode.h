/* unicode.h: UTF-8 decoding and the character classes of pre-tokenization.
 *
 * Paper section 4.2 asks for BPE with UTF-8 byte fallback; the released
 * tokenizers split digits one by one and keep Chinese characters as their
 * own symbols. This module is the single place that decides what a
 * "character" is and which class it belongs to, so that training
 * (train.c) and encoding (bpe.c) split text the same way.
 *
 * Decoding never fails: a byte that does not start a well-formed UTF-8
 * sequence (overlong forms, surrogates, code points above U+10FFFF, truncated
 * sequences) is returned as a one-byte character marked invalid, so every
 * byte string is a sequence of characters whose byte spans tile it exactly.
 */
#ifndef TN_TOKENIZER_UNICODE_H
#define TN_TOKENIZER_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define TN_METASPACE 0x2581u            /* "▁", SentencePiece's visible space */
#define TN_METASPACE_UTF8 "\xe2\x96\x81"
#define TN_CODEPOINT_LIMIT 0x110000u

/* One decoded character: its code point (or the raw byte when invalid) and
 * how many bytes of the input it covers (1-4). */
typedef struct TnChar {
    uint32_t codepoint;
    uint8_t length;
    uint8_t invalid;
} TnChar;

/* Decodes the character at text[0] (requires len >= 1). */
TnChar tn_utf8_next(const unsigned char *text, size_t len);
/* Writes the UTF-8 form of codepoint (< U+110000) to out, returns 1-4. */
int tn_utf8_encode(uint32_t codepoint, char *out);

typedef enum TnCharClass {
    TN_CLASS_SPACE,   /* the metaspace "▁" (a space after normalization) */
    TN_CLASS_LETTER,  /* letters, marks and every other non-ASCII symbol */
    TN_CLASS_DIGIT,   /* 0-9 and fullwidth digits: always split one by one */
    TN_CLASS_PUNCT,   /* ASCII and common Unicode punctuation */
    TN_CLASS_CJK,     /* Han ideographs: always their own symbol */
    TN_CLASS_CONTROL, /* other whitespace, control characters, invalid bytes */
} TnCharClass;
#define TN_CLASS_COUNT 6

TnCharClass tn_char_class(uint32_t codepoint, int invalid);

/* Word boundaries used to pre-tokenize:
 *  - TN_SPLIT_CLASSES: a "▁" starts a word unless it follows another "▁";
 *    "▁" runs attach to a following letter or punctuation; a word otherwise
 *    holds one class, and digits and CJK characters stand alone. This is how
 *    `tnllm tokenizer train` splits, so its merges never cross a boundary.
 *  - TN_SPLIT_SPACES: only "a ▁ after something else" starts a word.
 *  - TN_SPLIT_NONE: the whole text is one word.
 * Encoding may split at a boundary only when no merge of the vocabulary
 * crosses it, so the result equals BPE over the whole text, which is what
 * the HF libraries compute; bpe.c derives the finest such TnSplit from the
 * merges on load (for a SentencePiece vocabulary, whose pieces join Han
 * characters into words, a split of its own). */
typedef enum TnSplitMode { TN_SPLIT_CLASSES, TN_SPLIT_SPACES, TN_SPLIT_NONE } TnSplitMode;

/* Non-zero if a word boundary lies between a character of class left and
 * one of class right (inline: the encoder asks once per character). */
static inline int tn_is_boundary(TnSplitMode mode, TnCharClass left, TnCharClass right) {
    if (mode == TN_SPLIT_NONE) return 0;
    if (right == TN_CLASS_SPACE) return left != TN_CLASS_SPACE;
    if (mode == TN_SPLIT_SPACES) return 0;
    if (left == TN_CLASS_SPACE) return right != TN_CLASS_LETTER && right != TN_CLASS_PUNCT;
    if (left == TN_CLASS_DIGIT || left == TN_CLASS_CJK || right == TN_CLASS_DIGIT || right == TN_CLASS_CJK) return 1;
    return left != right;
}

/* Word boundaries as a table: cut[left][right] != 0 puts one between a
 * character of class left and one of class right. */
typedef struct TnSplit {
    uint8_t cut[TN_CLASS_COUNT][TN_CLASS_COUNT];
} TnSplit;

/* The table of a named split. */
TnSplit tn_split_of(TnSplitMode mode);
/* Non-zero if fine cuts wherever coarse does. */
int tn_split_at_least_as_fine(const TnSplit *fine, const TnSplit *coarse);

/* Pre-tokenization: cuts a text into words, the same way for training and
 * encoding. With metaspace, a space is of class SPACE and a literal "▁"
 * (which keeps its bytes) of class CONTROL. With prefixed, a virtual "▁"
 * stands before the text and belongs to the first word. Every
 * split_every_space-marked space also starts a word (the Metaspace
 * pre-tokenizer with split=true). */
typedef struct TnWordSplitter {
    const unsigned char *text;
    size_t length, at;
    TnSplit split;
    int metaspace, split_every_space, prefixed;
} TnWordSplitter;

void tn_words_begin(TnWordSplitter *s, const char *text, size_t length, const TnSplit *split, int metaspace,
                    int split_every_space, int prefixed);
/* The next word: bytes [*start, *start + *length) of the text, and whether
 * the virtual "▁" leads it. Returns 0 when the text is used up. A word is
 * never empty unless it is the virtual "▁" alone. */
int tn_words_next(TnWordSplitter *s, size_t *start, size_t *length, int *prefixed);

#endif
