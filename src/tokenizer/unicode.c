#include "tokenizer/unicode.h"

TnChar tn_utf8_next(const unsigned char *text, size_t len) {
    TnChar invalid = {text[0], 1, 1};
    unsigned char b = text[0];
    if (b < 0x80) return (TnChar){b, 1, 0};
    int n;
    uint32_t cp, min;
    if ((b & 0xe0) == 0xc0) { n = 2; cp = b & 0x1f; min = 0x80; }
    else if ((b & 0xf0) == 0xe0) { n = 3; cp = b & 0x0f; min = 0x800; }
    else if ((b & 0xf8) == 0xf0) { n = 4; cp = b & 0x07; min = 0x10000; }
    else return invalid;
    if ((size_t)n > len) return invalid;
    for (int i = 1; i < n; i++) {
        if ((text[i] & 0xc0) != 0x80) return invalid;
        cp = (cp << 6) | (text[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past Unicode are not characters:
     * treating them as bytes keeps the round trip exact without inventing
     * code points the HF libraries would reject. */
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp >= TN_CODEPOINT_LIMIT) return invalid;
    return (TnChar){cp, (uint8_t)n, 0};
}

int tn_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int is_cjk(uint32_t c) {
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0xf900 && c <= 0xfaff) ||
           (c >= 0x20000 && c <= 0x3134f);
}

/* Unicode punctuation blocks: General Punctuation, Supplemental
 * Punctuation, CJK Symbols and Punctuation, CJK compatibility forms, and
 * the punctuation of the Halfwidth and Fullwidth Forms block. */
static int is_unicode_punct(uint32_t c) {
    return (c >= 0x2000 && c <= 0x206f && c != TN_METASPACE) || (c >= 0x2e00 && c <= 0x2e7f) ||
           (c >= 0x3000 && c <= 0x303f) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff01 && c <= 0xff0f) ||
           (c >= 0xff1a && c <= 0xff20) || (c >= 0xff3b && c <= 0xff40) || (c >= 0xff5b && c <= 0xff65) ||
           (c >= 0x00a1 && c <= 0x00bf && c != 0x00aa && c != 0x00b5 && c != 0x00ba);
}

TnCharClass tn_char_class(uint32_t c, int invalid) {
    if (invalid) return TN_CLASS_CONTROL;
    if (c == TN_METASPACE) return TN_CLASS_SPACE;
    if (c < 0x80) {
        if (c >= '0' && c <= '9') return TN_CLASS_DIGIT;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return TN_CLASS_LETTER;
        if (c <= 0x20 || c == 0x7f) return TN_CLASS_CONTROL;
        return TN_CLASS_PUNCT;
    }
    if (c < 0xa0) return TN_CLASS_CONTROL;
    if (c >= 0xff10 && c <= 0xff19) return TN_CLASS_DIGIT;
    if (is_cjk(c)) return TN_CLASS_CJK;
    if (is_unicode_punct(c)) return TN_CLASS_PUNCT;
    return TN_CLASS_LETTER;
}


TnSplit tn_split_of(TnSplitMode mode) {
    TnSplit split;
    for (int left = 0; left < TN_CLASS_COUNT; left++)
        for (int right = 0; right < TN_CLASS_COUNT; right++)
            split.cut[left][right] = (uint8_t)tn_is_boundary(mode, (TnCharClass)left, (TnCharClass)right);
    return split;
}

int tn_split_at_least_as_fine(const TnSplit *fine, const TnSplit *coarse) {
    for (int left = 0; left < TN_CLASS_COUNT; left++)
        for (int right = 0; right < TN_CLASS_COUNT; right++)
            if (coarse->cut[left][right] && !fine->cut[left][right]) return 0;
    return 1;
}

void tn_words_begin(TnWordSplitter *s, const char *text, size_t length, const TnSplit *split, int metaspace,
                    int split_every_space, int prefixed) {
    *s = (TnWordSplitter){(const unsigned char *)text, length, 0, *split, metaspace, split_every_space,
                          prefixed && length > 0};
}

static TnCharClass text_class(const TnWordSplitter *s, TnChar c) {
    if (c.invalid) return TN_CLASS_CONTROL;
    if (s->metaspace) {
        if (c.codepoint == ' ') return TN_CLASS_SPACE;
        if (c.codepoint == TN_METASPACE) return TN_CLASS_CONTROL;
    }
    return tn_char_class(c.codepoint, 0);
}

/* tn_char_class of the ASCII bytes, one digit each (TnCharClass values:
 * 1 letter, 2 digit, 3 punctuation, 5 control): the common case, a lookup. */
static const char ascii_classes[129] = "55555555555555555555555555555555"  /* 0x00-0x1f */
                                       "53333333333333332222222222333333"  /* ' ' to '?' */
                                       "31111111111111111111111111133333"  /* '@' to '_' */
                                       "31111111111111111111111111133335"; /* '`' to DEL */

static inline TnCharClass ascii_class(const TnWordSplitter *s, unsigned char b) {
    if (b == ' ' && s->metaspace) return TN_CLASS_SPACE;
    return (TnCharClass)(ascii_classes[b] - '0');
}

int tn_words_next(TnWordSplitter *s, size_t *start, size_t *length, int *prefixed) {
    if (s->at >= s->length && !s->prefixed) return 0;
    size_t begin = s->at, at = s->at;
    int has_left = s->prefixed;
    TnCharClass left = TN_CLASS_SPACE;
    while (at < s->length) {
        TnChar c = {s->text[at], 1, 0};
        TnCharClass cls;
        if (c.codepoint < 0x80) {
            cls = ascii_class(s, (unsigned char)c.codepoint);
        } else {
            c = tn_utf8_next(s->text + at, s->length - at);
            cls = text_class(s, c);
        }
        if (has_left && (s->split.cut[left][cls] || (s->split_every_space && cls == TN_CLASS_SPACE)))
            break;
        left = cls;
        has_left = 1;
        at += c.length;
    }
    *start = begin;
    *length = at - begin;
    *prefixed = s->prefixed;
    s->prefixed = 0;
    s->at = at;
    return 1;
}
