#include "data/clean.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

const char *const tn_edit_rule_names[TN_EDIT_RULES] = {
    "utf8-mojibake", "ansi-escape", "html", "url", "control-chars", "special-chars",
    "number-format", "non-text-run", "repeated-punctuation", "whitespace", "nfc",
};
const char *const tn_filter_rule_names[TN_FILTER_RULES] = {
    "invalid-utf8", "too-short", "too-long", "too-few-words", "symbol-ratio", "duplicate-lines",
};

void tn_clean_default_options(TnCleanOptions *o) {
    o->max_invalid_fraction = 0.01;
    o->min_chars = 100;
    o->max_chars = 1000000;
    o->min_words = 20;
    o->max_symbol_ratio = 0.35;
    o->max_duplicate_lines = 0.3;
}

void tn_clean_stats_add(TnCleanStats *a, const TnCleanStats *b) {
    a->documents += b->documents;
    a->kept += b->kept;
    for (int i = 0; i < TN_EDIT_RULES; i++) {
        a->edit_documents[i] += b->edit_documents[i];
        a->edit_count[i] += b->edit_count[i];
        a->edit_bytes[i] += b->edit_bytes[i];
    }
    for (int i = 0; i < TN_FILTER_RULES; i++) a->rejected[i] += b->rejected[i];
    a->bytes_in += b->bytes_in;
    a->bytes_out += b->bytes_out;
}

/* ---- regular-expression rules ------------------------------------------ */

/* Appends the replacement of one match; returns 1 if the text changed. */
typedef int (*Replacer)(const char *subject, const PCRE2_SIZE *ovector, TnTextBuf *out);

static int replace_with_nothing(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    (void)subject, (void)ov, (void)out;
    return 1;
}

static int replace_with_newline(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    (void)subject, (void)ov;
    tn_textbuf_append(out, "\n", 1);
    return 1;
}

static int replace_with_group1(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    tn_textbuf_append(out, subject + ov[2], ov[3] - ov[2]);
    return 1;
}

static int replace_with_ellipsis(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    (void)subject, (void)ov;
    tn_textbuf_append(out, "...", 3);
    return 1;
}

static int replace_with_blank_line(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    (void)subject, (void)ov;
    tn_textbuf_append(out, "\n\n", 2);
    return 1;
}

static void append_code_point(TnTextBuf *out, int32_t cp) {
    uint8_t bytes[4];
    utf8proc_ssize_t n = utf8proc_encode_char(cp, bytes);
    tn_textbuf_append(out, (const char *)bytes, (size_t)n);
}

/* &name; &#123; &#x1F; -> the character (group 1: decimal, 2: hex, 3: name). */
static int decode_entity(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    static const struct { const char *name; int32_t cp; } names[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
        {"copy", 0xa9}, {"reg", 0xae}, {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
        {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201c}, {"rdquo", 0x201d},
    };
    int32_t cp = -1;
    if (ov[2] != PCRE2_UNSET) cp = (int32_t)strtol(subject + ov[2], NULL, 10);
    else if (ov[4] != PCRE2_UNSET) cp = (int32_t)strtol(subject + ov[4], NULL, 16);
    else
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == ov[7] - ov[6] && memcmp(subject + ov[6], names[i].name, ov[7] - ov[6]) == 0)
                cp = names[i].cp;
    /* Control characters and invalid code points stay out of the text. */
    if (utf8proc_codepoint_valid(cp) && cp >= 0x20 && !(cp >= 0x7f && cp < 0xa0)) append_code_point(out, cp);
    return 1;
}

/* A long run of [A-Za-z0-9+/=_-] is a blob only if it mixes letters and
 * digits: a row of '=' or '-' is a Markdown rule and stays. */
static int drop_blob(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    int letters = 0, digits = 0;
    for (PCRE2_SIZE i = ov[0]; i < ov[1]; i++) {
        char ch = subject[i];
        letters |= (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        digits |= ch >= '0' && ch <= '9';
    }
    if (letters && digits) return 1;
    tn_textbuf_append(out, subject + ov[0], ov[1] - ov[0]);
    return 0;
}

static int drop_thousands_separators(const char *subject, const PCRE2_SIZE *ov, TnTextBuf *out) {
    for (PCRE2_SIZE i = ov[0]; i < ov[1]; i++)
        if (subject[i] != ',') tn_textbuf_append(out, subject + i, 1);
    return 1;
}

#define HTML_BLOCK_TAGS                                                                                     \
    "address|article|aside|blockquote|body|br|caption|center|dd|div|dl|dt|fieldset|figcaption|figure|footer|" \
    "form|h[1-6]|head|header|hr|html|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead|title|tr|ul"
#define HTML_INLINE_TAGS                                                                                      \
    "a|abbr|b|bdi|bdo|big|button|cite|code|col|colgroup|del|details|dfn|em|embed|font|i|iframe|img|input|ins|" \
    "kbd|label|legend|link|mark|meta|noscript|object|option|param|q|s|samp|select|small|source|span|strike|"   \
    "strong|sub|summary|sup|textarea|tt|u|var|video|wbr"
/* Attributes start with whitespace ("$a<b$ and $c>d$" is LaTeX, not a tag)
 * and hold anything but < >, quoted values excepted. */
#define HTML_TAG_TAIL "(?:\\s(?:[^<>\"']|\"[^\"]*\"|'[^']*')*)?/?>"

typedef struct Pattern {
    TnEditRule rule;
    const char *regex;
    uint32_t options;
    Replacer replace;
} Pattern;

static const Pattern patterns[] = {
    /* Rule 2: ANSI escape sequences (CSI ... final byte, or ESC + one byte). */
    {TN_EDIT_ANSI, "\\x1b\\[[0-?]*[ -/]*[@-~]|\\x1b[@-Z\\\\-_]", 0, replace_with_nothing},
    /* Rule 1: HTML. */
    {TN_EDIT_HTML, "<(script|style)\\b[^>]*>.*?</\\1\\s*>", PCRE2_CASELESS | PCRE2_DOTALL, replace_with_nothing},
    {TN_EDIT_HTML, "<!--.*?-->|<!doctype[^>]*>", PCRE2_CASELESS | PCRE2_DOTALL, replace_with_nothing},
    {TN_EDIT_HTML, "</?(?:" HTML_BLOCK_TAGS ")" HTML_TAG_TAIL, PCRE2_CASELESS, replace_with_newline},
    {TN_EDIT_HTML, "</?(?:" HTML_INLINE_TAGS ")" HTML_TAG_TAIL, PCRE2_CASELESS, replace_with_nothing},
    {TN_EDIT_HTML, "&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|(amp|lt|gt|quot|apos|nbsp|copy|reg|hellip|mdash|"
                   "ndash|lsquo|rsquo|ldquo|rdquo));",
     0, decode_entity},
    /* Rule 1: URLs; a Markdown link keeps its text. */
    {TN_EDIT_URL, "!?\\[([^\\]\\n]*)\\]\\(\\s*(?:https?|ftp)://[^)\\s]*(?:\\s+\"[^\"]*\")?\\s*\\)", PCRE2_CASELESS,
     replace_with_group1},
    {TN_EDIT_URL, "<(?:https?|ftp)://[^\\s<>]*>|\\b(?:https?|ftp)://[^\\s<>\"'\\])]+|\\bwww\\.[a-z0-9-]+\\.[^\\s<>\"'\\])]+",
     PCRE2_CASELESS, replace_with_nothing},
};

/* After the character pass (which needs ANSI, HTML and URLs gone first). */
static const Pattern late_patterns[] = {
    /* Rule 2: long non-text runs. */
    {TN_EDIT_BLOB, "[A-Za-z0-9+/=_-]{64,}", 0, drop_blob},
    /* Rule 5: thousands separators (not inside a longer list of numbers). */
    {TN_EDIT_NUMBERS, "(?<![0-9.,])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9]|,[0-9])", 0, drop_thousands_separators},
    /* Rule 3: repeated punctuation. */
    {TN_EDIT_PUNCTUATION, "([!?,;。，！？；、])\\1+", 0, replace_with_group1},
    {TN_EDIT_PUNCTUATION, "\\.{4,}", 0, replace_with_ellipsis},
    /* Blank-line runs. */
    {TN_EDIT_WHITESPACE, "\\n(?:[ \\t]*\\n){2,}", 0, replace_with_blank_line},
};

#define N_PATTERNS (sizeof patterns / sizeof patterns[0])
#define N_LATE_PATTERNS (sizeof late_patterns / sizeof late_patterns[0])

typedef struct Compiled {
    pcre2_code *code;
    pcre2_match_data *match;
} Compiled;

struct TnCleaner {
    TnCleanOptions options;
    Compiled early[N_PATTERNS], late[N_LATE_PATTERNS];
    TnTextBuf a, b;            /* ping-pong buffers between passes */
    uint64_t *line_hashes;     /* duplicate-line filter scratch */
    size_t line_hash_cap;
};

static void compile(Compiled *c, const Pattern *p) {
    int code;
    PCRE2_SIZE offset;
    c->code = pcre2_compile((PCRE2_SPTR)p->regex, PCRE2_ZERO_TERMINATED, p->options | PCRE2_UTF, &code, &offset, NULL);
    if (!c->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        tn_die("internal error: pattern %s at %zu: %s", p->regex, (size_t)offset, msg);
    }
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    c->match = pcre2_match_data_create_from_pattern(c->code, NULL);
}

TnCleaner *tn_cleaner_new(const TnCleanOptions *options) {
    TnCleaner *c = tn_calloc(1, sizeof *c);
    c->options = *options;
    for (size_t i = 0; i < N_PATTERNS; i++) compile(&c->early[i], &patterns[i]);
    for (size_t i = 0; i < N_LATE_PATTERNS; i++) compile(&c->late[i], &late_patterns[i]);
    return c;
}

void tn_cleaner_free(TnCleaner *c) {
    if (!c) return;
    for (size_t i = 0; i < N_PATTERNS; i++) {
        pcre2_match_data_free(c->early[i].match);
        pcre2_code_free(c->early[i].code);
    }
    for (size_t i = 0; i < N_LATE_PATTERNS; i++) {
        pcre2_match_data_free(c->late[i].match);
        pcre2_code_free(c->late[i].code);
    }
    tn_textbuf_free(&c->a);
    tn_textbuf_free(&c->b);
    free(c->line_hashes);
    free(c);
}

/* Copies in to out with every match replaced; returns the number of edits
 * (0: out is untouched, nothing was copied). The input is valid UTF-8 (the
 * UTF-8 pass ran first), so the per-match validity check is skipped. A match
 * error (e.g. the backtracking limit on a pathological document) leaves the
 * rest unchanged. */
static long long regex_pass(const Compiled *c, Replacer replace, const TnTextBuf *in, TnTextBuf *out) {
    long long edits = 0;
    size_t pos = 0;
    while (pos < in->len) {
        int rc = pcre2_match(c->code, (PCRE2_SPTR)in->data, in->len, pos, PCRE2_NO_UTF_CHECK, c->match, NULL);
        if (rc < 0) break;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->match);
        TN_ASSERT(ov[1] > ov[0]); /* no pattern matches the empty string */
        if (pos == 0) tn_textbuf_clear(out);
        tn_textbuf_append(out, in->data + pos, ov[0] - pos);
        edits += replace(in->data, ov, out);
        pos = ov[1];
    }
    if (pos == 0) return 0;
    if (pos < in->len) tn_textbuf_append(out, in->data + pos, in->len - pos);
    return edits;
}

/* ---- character rules ---------------------------------------------------- */

/* Windows-1252 bytes 0x80..0x9F as Unicode (0: undefined in 1252). */
static const uint16_t cp1252_high[32] = {
    0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
    0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
};

/* The byte a code point came from when UTF-8 bytes were read as
 * Windows-1252 (or Latin-1), or -1. */
static int mojibake_byte(int32_t cp) {
    if (cp >= 0xa0 && cp <= 0xff) return cp;
    if (cp >= 0x80 && cp <= 0x9f) return cp; /* Latin-1 reading of an undefined 1252 byte */
    for (int i = 0; i < 32; i++)
        if (cp1252_high[i] && cp1252_high[i] == cp) return 0x80 + i;
    return -1;
}

/* Rule 2: drops bytes that are not UTF-8 (returns how many) and repairs
 * mojibake: a lead-byte character (U+00C2..U+00F4) followed by the
 * characters of its continuation bytes that together decode as one UTF-8
 * character is replaced by that character. */
static size_t utf8_pass(const char *text, size_t len, TnTextBuf *out, long long *repairs) {
    size_t invalid = 0, i = 0;
    tn_textbuf_clear(out);
    tn_textbuf_reserve(out, len);
    while (i < len) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < 0x80) {
            out->data[out->len++] = (char)ch;
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k < 0) {
            invalid++;
            i++;
            continue;
        }
        if (cp >= 0xc2 && cp <= 0xf4) {
            int need = cp < 0xe0 ? 1 : cp < 0xf0 ? 2 : 3;
            uint8_t bytes[4] = {(uint8_t)cp};
            size_t j = i + (size_t)k;
            int got = 0;
            while (got < need && j < len) {
                int32_t next;
                utf8proc_ssize_t m = utf8proc_iterate((const uint8_t *)text + j, (utf8proc_ssize_t)(len - j), &next);
                int b = m > 0 ? mojibake_byte(next) : -1;
                if (b < 0x80 || b > 0xbf) break;
                bytes[++got] = (uint8_t)b;
                j += (size_t)m;
            }
            int32_t repaired;
            if (got == need && utf8proc_iterate(bytes, need + 1, &repaired) == need + 1) {
                tn_textbuf_append(out, (const char *)bytes, (size_t)need + 1);
                (*repairs)++;
                i = j;
                continue;
            }
        }
        tn_textbuf_append(out, text + i, (size_t)k);
        i += (size_t)k;
    }
    out->data[out->len] = '\0';
    return invalid;
}

/* The one ASCII letter or digit a character is a compatibility form of
 * (full-width A, mathematical bold 1, ...), or 0. */
static int ascii_compat_form(int32_t cp) {
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->decomp_seqindex == UINT16_MAX) return 0;
    utf8proc_int32_t d[4];
    int last;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, d, 4, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, &last);
    if (n != 1 || d[0] >= 0x80) return 0;
    int ch = d[0];
    return ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) ? ch : 0;
}

/* Rules 2, 4 and 5 on single characters (see clean.h); counts into
 * edits[TN_EDIT_CONTROL], [TN_EDIT_SPECIAL], [TN_EDIT_NUMBERS], [TN_EDIT_WHITESPACE]. */
static void character_pass(const TnTextBuf *in, TnTextBuf *out, long long *edits) {
    tn_textbuf_clear(out);
    tn_textbuf_reserve(out, in->len);
    size_t i = 0;
    while (i < in->len) {
        unsigned char ch = (unsigned char)in->data[i];
        if (ch >= 0x20 && ch < 0x7f) {
            out->data[out->len++] = (char)ch;
            i++;
            continue;
        }
        if (ch < 0x80) {
            i++;
            if (ch == '\n' || ch == '\t') out->data[out->len++] = (char)ch;
            else if (ch == '\r') {
                /* \r\n and a lone \r both end a line. */
                if (i < in->len && in->data[i] == '\n') i++;
                out->data[out->len++] = '\n';
                edits[TN_EDIT_WHITESPACE]++;
            } else edits[TN_EDIT_CONTROL]++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)in->data + i, (utf8proc_ssize_t)(in->len - i), &cp);
        TN_ASSERT(k > 0);
        i += (size_t)k;
        utf8proc_category_t cat = utf8proc_category(cp);
        int ascii;
        if (cat == UTF8PROC_CATEGORY_CC) {
            edits[TN_EDIT_CONTROL]++;
        } else if (cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS ||
                   cat == UTF8PROC_CATEGORY_CN || cp == 0xfffd || cp == 0xfffc) {
            edits[TN_EDIT_SPECIAL]++;
        } else if (cat == UTF8PROC_CATEGORY_ZS) {
            tn_textbuf_append(out, " ", 1);
            edits[TN_EDIT_SPECIAL]++;
        } else if (cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP) {
            tn_textbuf_append(out, "\n", 1);
            edits[TN_EDIT_SPECIAL]++;
        } else if ((ascii = ascii_compat_form(cp)) != 0) {
            char c = (char)ascii;
            tn_textbuf_append(out, &c, 1);
            edits[c >= '0' && c <= '9' ? TN_EDIT_NUMBERS : TN_EDIT_SPECIAL]++;
        } else {
            tn_textbuf_append(out, in->data + i - (size_t)k, (size_t)k);
        }
    }
    out->data[out->len] = '\0';
}

/* Trims leading and trailing whitespace; returns 1 if anything went. */
static int trim(TnTextBuf *b) {
    size_t start = 0, end = b->len;
    while (start < end && (b->data[start] == ' ' || b->data[start] == '\n' || b->data[start] == '\t')) start++;
    while (end > start && (b->data[end - 1] == ' ' || b->data[end - 1] == '\n' || b->data[end - 1] == '\t')) end--;
    if (start == 0 && end == b->len) return 0;
    memmove(b->data, b->data + start, end - start);
    b->len = end - start;
    b->data[b->len] = '\0';
    return 1;
}

/* Whether a character is left alone by NFC in any context: it is a starter
 * (combining class 0), never the second character of a canonical
 * composition (utf8proc marks those with comb_index >= 0x8000; Hangul
 * V and T jamo compose algorithmically), and NFC maps it to itself (checked
 * with utf8proc for the few that have a canonical decomposition, e.g. the
 * singleton U+212B ANGSTROM SIGN is not). */
static int nfc_stable(int32_t cp) {
    if (cp < 0x80) return 1;
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->combining_class != 0) return 0;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return 0;
    if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11a8 && cp <= 0x11c2)) return 0;
    if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) return 1;
    uint8_t bytes[4];
    utf8proc_ssize_t n = utf8proc_encode_char(cp, bytes);
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t m = utf8proc_map(bytes, n, &mapped, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    int same = m == n && memcmp(mapped, bytes, (size_t)n) == 0;
    free(mapped);
    return same;
}

int tn_nfc_quick_check(const char *text, size_t len) {
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)text[i] < 0x80) { i++; continue; }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0 || !nfc_stable(cp)) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* NFC (Unicode normalization form C), skipped when the quick check shows
 * the text is already in NFC (nearly always). */
static int nfc_pass(const TnTextBuf *in, TnTextBuf *out) {
    if (tn_nfc_quick_check(in->data, in->len)) return 0;
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)in->data, (utf8proc_ssize_t)in->len, &mapped,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return 0; /* cannot happen on valid UTF-8; keep the text as it is */
    int changed = (size_t)n != in->len || memcmp(mapped, in->data, in->len) != 0;
    if (changed) {
        tn_textbuf_clear(out);
        tn_textbuf_append(out, (const char *)mapped, (size_t)n);
    }
    free(mapped);
    return changed;
}

/* ---- document filters --------------------------------------------------- */

static int is_wide_letter(int32_t cp, utf8proc_category_t cat) {
    return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO && utf8proc_charwidth(cp) == 2;
}

typedef struct TextCounts {
    long long chars, non_space, symbols, words;
} TextCounts;

static void count_text(const char *s, size_t len, TextCounts *c) {
    memset(c, 0, sizeof *c);
    int in_word = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) { /* ASCII without a table lookup */
            int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
            int space = ch == ' ' || ch == '\n' || ch == '\t';
            c->chars++;
            c->non_space += !space;
            c->symbols += !space && !alnum;
            c->words += alnum && !in_word;
            in_word = alnum;
            i++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) { i++; continue; }
        i += (size_t)k;
        c->chars++;
        utf8proc_category_t cat = utf8proc_category(cp);
        int letter_or_number = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                               (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_NO);
        int space = cat == UTF8PROC_CATEGORY_ZS || cp == '\n' || cp == '\t';
        if (!space) c->non_space++;
        if (!space && !letter_or_number) c->symbols++;
        if (letter_or_number && is_wide_letter(cp, cat)) {
            c->words++; /* CJK: every character is a word */
            in_word = 0;
        } else if (letter_or_number) {
            if (!in_word) c->words++;
            in_word = 1;
        } else {
            in_word = 0;
        }
    }
}

long long tn_count_words(const char *text, size_t len) {
    TextCounts c;
    count_text(text, len, &c);
    return c.words;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Gopher's dup_line_char_frac: bytes in non-empty lines that repeat an
 * earlier line, over bytes in non-empty lines. A line is keyed by its hash
 * in the high 44 bits and its length in the low 20. */
static double duplicate_line_fraction(TnCleaner *c, const char *s, size_t len) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += s[i] == '\n';
    if (lines > c->line_hash_cap) {
        free(c->line_hashes);
        c->line_hash_cap = lines * 2;
        c->line_hashes = tn_malloc(c->line_hash_cap * sizeof *c->line_hashes);
    }
    size_t n = 0, start = 0, total = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '\n') continue;
        size_t l = i - start;
        if (l > 0) {
            uint64_t length = l < (1u << 20) ? l : (1u << 20) - 1;
            c->line_hashes[n++] = (hash_bytes(s + start, l) << 20) | length;
            total += l;
        }
        start = i + 1;
    }
    if (total == 0) return 0;
    qsort(c->line_hashes, n, sizeof *c->line_hashes, compare_u64);
    size_t duplicated = 0;
    for (size_t i = 1; i < n; i++)
        if (c->line_hashes[i] == c->line_hashes[i - 1]) duplicated += c->line_hashes[i] & ((1u << 20) - 1);
    return (double)duplicated / (double)total;
}

static int apply_filters(TnCleaner *c, const TnTextBuf *t, size_t invalid, size_t len_in, char *detail, size_t cap) {
    const TnCleanOptions *o = &c->options;
    double invalid_fraction = len_in ? (double)invalid / (double)len_in : 0;
    if (invalid_fraction > o->max_invalid_fraction) {
        snprintf(detail, cap, "%.4f of bytes not UTF-8 > %g", invalid_fraction, o->max_invalid_fraction);
        return TN_FILTER_INVALID_UTF8;
    }
    TextCounts counts;
    count_text(t->data, t->len, &counts);
    if (counts.chars < o->min_chars) {
        snprintf(detail, cap, "%lld chars < %lld", counts.chars, o->min_chars);
        return TN_FILTER_TOO_SHORT;
    }
    if (counts.chars > o->max_chars) {
        snprintf(detail, cap, "%lld chars > %lld", counts.chars, o->max_chars);
        return TN_FILTER_TOO_LONG;
    }
    if (counts.words < o->min_words) {
        snprintf(detail, cap, "%lld words < %lld", counts.words, o->min_words);
        return TN_FILTER_TOO_FEW_WORDS;
    }
    double symbols = counts.non_space ? (double)counts.symbols / (double)counts.non_space : 0;
    if (symbols > o->max_symbol_ratio) {
        snprintf(detail, cap, "symbol ratio %.3f > %g", symbols, o->max_symbol_ratio);
        return TN_FILTER_SYMBOL_RATIO;
    }
    double duplicated = duplicate_line_fraction(c, t->data, t->len);
    if (duplicated > o->max_duplicate_lines) {
        snprintf(detail, cap, "%.3f of line chars repeated > %g", duplicated, o->max_duplicate_lines);
        return TN_FILTER_DUPLICATE_LINES;
    }
    return TN_KEEP;
}

/* ---- the whole document ------------------------------------------------- */

/* Edits of one document, by rule (bytes: net bytes removed). */
typedef struct DocEdits {
    long long count[TN_EDIT_RULES], bytes[TN_EDIT_RULES];
} DocEdits;

/* Runs one pattern list, each pass from *cur into the other buffer. */
static void run_patterns(const Compiled *compiled, const Pattern *list, size_t n, TnTextBuf **cur, TnTextBuf **next,
                         DocEdits *e) {
    for (size_t p = 0; p < n; p++) {
        long long edits = regex_pass(&compiled[p], list[p].replace, *cur, *next);
        if (edits == 0) continue; /* unchanged: keep reading from *cur */
        e->count[list[p].rule] += edits;
        e->bytes[list[p].rule] += (long long)(*cur)->len - (long long)(*next)->len;
        TnTextBuf *t = *cur;
        *cur = *next;
        *next = t;
    }
}

int tn_clean_text(TnCleaner *c, const char *text, size_t len, TnTextBuf *out, TnCleanStats *stats, char *detail,
                  size_t cap) {
    TnTextBuf *cur = &c->a, *next = &c->b, *t;
    DocEdits e = {{0}, {0}};
    size_t invalid = utf8_pass(text, len, cur, &e.count[TN_EDIT_UTF8]);
    e.count[TN_EDIT_UTF8] += (long long)invalid;
    e.bytes[TN_EDIT_UTF8] = (long long)len - (long long)cur->len;

    run_patterns(c->early, patterns, N_PATTERNS, &cur, &next, &e);

    /* The character pass mixes rules; its bytes are booked under rule 4. */
    character_pass(cur, next, e.count);
    e.bytes[TN_EDIT_SPECIAL] += (long long)cur->len - (long long)next->len;
    t = cur, cur = next, next = t;

    run_patterns(c->late, late_patterns, N_LATE_PATTERNS, &cur, &next, &e);
    size_t before = cur->len;
    if (trim(cur)) {
        e.count[TN_EDIT_WHITESPACE]++;
        e.bytes[TN_EDIT_WHITESPACE] += (long long)before - (long long)cur->len;
    }
    if (nfc_pass(cur, next)) {
        e.count[TN_EDIT_NFC]++;
        e.bytes[TN_EDIT_NFC] += (long long)cur->len - (long long)next->len;
        cur = next;
    }

    stats->documents++;
    stats->bytes_in += (long long)len;
    for (int r = 0; r < TN_EDIT_RULES; r++) {
        stats->edit_documents[r] += e.count[r] > 0;
        stats->edit_count[r] += e.count[r];
        stats->edit_bytes[r] += e.bytes[r];
    }
    tn_textbuf_clear(out);
    tn_textbuf_append(out, cur->data, cur->len);
    detail[0] = '\0';
    int verdict = apply_filters(c, out, invalid, len, detail, cap);
    if (verdict == TN_KEEP) {
        stats->kept++;
        stats->bytes_out += (long long)out->len;
    } else {
        stats->rejected[verdict]++;
    }
    return verdict;
}
