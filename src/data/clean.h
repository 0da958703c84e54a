/* clean.h: rule-based cleaning of one document (§4.1, "Data Preprocessing").
 *
 * The paper's six rules, in the order they run (each an edit that keeps the
 * document; the rule ids below count how often each one fired):
 *   1. HTML tags and URLs removed: <script>/<style> blocks, comments and the
 *      tags of HTML elements (block elements become a line break so words do
 *      not run together), entities decoded; Markdown links [t](url) keep t,
 *      bare URLs go.                                 TN_EDIT_HTML, TN_EDIT_URL
 *   2. Useless or garbled strings removed: bytes that are not UTF-8 (dropped),
 *      mojibake (UTF-8 read as Windows-1252, e.g. "Ã©" -> "é") repaired, ANSI
 *      escape sequences, control characters, and runs of 64 or more of
 *      [A-Za-z0-9+/=_-] that mix letters and digits (base64, hashes: long
 *      non-text runs).       TN_EDIT_UTF8, TN_EDIT_ANSI, TN_EDIT_CONTROL, TN_EDIT_BLOB
 *   3. Runs of one repeated punctuation mark collapsed to one: ! ? , ; and
 *      the full-width 。，！？；、; four or more dots become "...". Marks
 *      that carry Markdown or code structure (- * _ = # ` | ~ :) are left
 *      alone.                                        TN_EDIT_PUNCTUATION
 *   4. Unusual special characters removed or standardized: format characters
 *      (zero-width, BOM, soft hyphen), private-use, unassigned and U+FFFD
 *      removed; every space separator becomes ' ', line/paragraph
 *      separators '\n'; letters whose compatibility form is one ASCII letter
 *      (full-width, mathematical alphanumerics) become it.  TN_EDIT_SPECIAL
 *   5. Numbers in one format: digits whose compatibility form is an ASCII
 *      digit become it (full-width ０-９), thousands separators dropped
 *      ("1,234,567" -> "1234567").                   TN_EDIT_NUMBERS
 *   6. Markdown and LaTeX kept intact: no rule touches # * _ ` $ \ { } [ ] |
 *      or indentation; tests check headings, lists, tables, code fences and
 *      $...$ / \begin{...} survive unchanged.
 * Then: runs of three or more line breaks become two and the document is
 * trimmed (TN_EDIT_WHITESPACE), and Unicode NFC normalization (TN_EDIT_NFC).
 * Chinese and Japanese text is handled without any word-splitting
 * assumption: a wide (East Asian width 2) letter counts as one word.
 *
 * Then the document-level quality filters in the spirit of Gopher/C4, each
 * with a threshold in TnCleanOptions; the first that fails rejects the
 * document and names itself (TN_FILTER_*).
 *
 * Invalid UTF-8 is never a crash: invalid bytes are dropped and counted, and
 * a document with more than max_invalid_fraction of its bytes invalid is
 * rejected (TN_FILTER_INVALID_UTF8) rather than kept half-garbled.
 *
 * A TnCleaner holds compiled patterns and scratch buffers; one per thread.
 * Cleaning is a pure function of the text and the options.
 */
#ifndef TN_DATA_CLEAN_H
#define TN_DATA_CLEAN_H

#include <stddef.h>

#include "data/textbuf.h"

typedef enum TnEditRule {
    TN_EDIT_UTF8,
    TN_EDIT_ANSI,
    TN_EDIT_HTML,
    TN_EDIT_URL,
    TN_EDIT_CONTROL,
    TN_EDIT_SPECIAL,
    TN_EDIT_NUMBERS,
    TN_EDIT_BLOB,
    TN_EDIT_PUNCTUATION,
    TN_EDIT_WHITESPACE,
    TN_EDIT_NFC,
    TN_EDIT_RULES
} TnEditRule;

typedef enum TnFilterRule {
    TN_FILTER_INVALID_UTF8,
    TN_FILTER_TOO_SHORT,
    TN_FILTER_TOO_LONG,
    TN_FILTER_TOO_FEW_WORDS,
    TN_FILTER_SYMBOL_RATIO,
    TN_FILTER_DUPLICATE_LINES,
    TN_FILTER_RULES,
    TN_KEEP = -1
} TnFilterRule;

extern const char *const tn_edit_rule_names[TN_EDIT_RULES];
extern const char *const tn_filter_rule_names[TN_FILTER_RULES];

typedef struct TnCleanOptions {
    double max_invalid_fraction;   /* of bytes that are not UTF-8 (default 0.01) */
    long long min_chars, max_chars;/* code points after cleaning (default 100, 1000000) */
    long long min_words;           /* words, a wide letter counting as one (default 20) */
    double max_symbol_ratio;       /* punctuation+symbols over non-space chars (default 0.35) */
    double max_duplicate_lines;    /* chars in repeated lines over chars in lines (default 0.3) */
} TnCleanOptions;

void tn_clean_default_options(TnCleanOptions *o);

typedef struct TnCleanStats {
    long long documents, kept;
    long long edit_documents[TN_EDIT_RULES]; /* documents the rule changed */
    long long edit_count[TN_EDIT_RULES];     /* places it changed */
    long long edit_bytes[TN_EDIT_RULES];     /* bytes it removed (net) */
    long long rejected[TN_FILTER_RULES];
    long long bytes_in, bytes_out;
} TnCleanStats;

/* Adds b's counts into a. */
void tn_clean_stats_add(TnCleanStats *a, const TnCleanStats *b);

typedef struct TnCleaner TnCleaner;

/* Compiles the patterns (a bug, not bad input, if that fails: fatal). */
TnCleaner *tn_cleaner_new(const TnCleanOptions *options);
void tn_cleaner_free(TnCleaner *c);

/* Cleans len bytes of text into out and applies the filters. Returns
 * TN_KEEP or the TnFilterRule that rejects the document (out still holds
 * the cleaned text; detail, of capacity cap, says the measured value). */
int tn_clean_text(TnCleaner *c, const char *text, size_t len, TnTextBuf *out, TnCleanStats *stats, char *detail,
                  size_t cap);

/* 1 if NFC leaves text unchanged for certain (every character is a starter
 * that never composes with a neighbour and maps to itself); 0 means NFC
 * might change it. Text must be valid UTF-8. */
int tn_nfc_quick_check(const char *text, size_t len);

/* Word count with the rule above (for tests and other filters). */
long long tn_count_words(const char *text, size_t len);

#endif
