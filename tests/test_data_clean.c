/* The cleaning rules of §4.1 (src/data/clean.h), each on crafted input with
 * the exact expected output, including Chinese text, Markdown and LaTeX that
 * must survive unchanged, and malformed UTF-8 (random bytes never crash and
 * always give valid UTF-8). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "data/clean.h"
#include "test.h"
#include "util/rng.h"

static TnCleaner *permissive; /* all document filters off */
static TnCleanStats stats;

static int clean(TnCleaner *c, const char *in, TnTextBuf *out) {
    char detail[256];
    return tn_clean_text(c, in, strlen(in), out, &stats, detail, sizeof detail);
}

static void expect(const char *name, const char *in, const char *want, TnEditRule rule) {
    TnTextBuf out = {0};
    TnCleanStats before = stats;
    int verdict = clean(permissive, in, &out);
    CHECK(verdict == TN_KEEP, "%s: rejected by %d", name, verdict);
    CHECK(strcmp(out.data, want) == 0, "%s: got [%s], want [%s]", name, out.data, want);
    if ((int)rule >= 0)
        CHECK(stats.edit_documents[rule] == before.edit_documents[rule] + 1, "%s: rule %s not counted", name,
              tn_edit_rule_names[rule]);
    tn_textbuf_free(&out);
}

static const char markdown_latex[] =
    "# Heading\n\n"
    "Some **bold**, *italic*, __under__ and `code` text; see [the docs](#local).\n\n"
    "- item one\n- item two\n  1. nested\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```c\nstd::vector<int> v; if (a < b && c > d) return x->y;\n```\n\n"
    "Inline math $a<b$ and $c>d$, $x_i^2 + y_{j}$, \\(\\alpha\\).\n\n"
    "$$\n\\begin{align}\nE &= mc^2 \\\\\n\\frac{1}{2} &\\le \\sum_{k=1}^{n} k\n\\end{align}\n$$\n\n"
    "Setext\n======\n\n---\n\n> quote -- with dashes... and ***emphasis***";

static void test_rules(void) {
    expect("html tags", "<p>Hello <b>world</b></p><script>var x = 1;</script>", "Hello world", TN_EDIT_HTML);
    expect("html block tags break lines", "<div>one</div><div>two</div>", "one\n\ntwo", TN_EDIT_HTML);
    expect("html comment and doctype", "<!DOCTYPE html>a<!-- hidden\nstuff -->b", "ab", TN_EDIT_HTML);
    expect("html attributes", "<a href=\"x>y\" class='c'>link</a> text", "link text", TN_EDIT_HTML);
    expect("entities", "Tom &amp; Jerry &lt;3 &#20013;&#x6587; &nbsp;", "Tom & Jerry <3 中文", TN_EDIT_HTML);
    expect("url", "See https://example.com/a?b=c for more", "See  for more", TN_EDIT_URL);
    expect("www url", "Visit www.example.org/page today", "Visit  today", TN_EDIT_URL);
    expect("markdown link keeps text", "Read [the docs](https://x.org/d \"T\") now", "Read the docs now", TN_EDIT_URL);
    expect("ansi escapes", "\x1b[1;31m今天天气很好\x1b[0m，\x1b[32m出去走走\x1b[m", "今天天气很好，出去走走", TN_EDIT_ANSI);
    expect("control characters", "a\x01" "b\x7f" "c\x1b" "d", "abcd", TN_EDIT_CONTROL);
    expect("line ends", "a\r\nb\rc", "a\nb\nc", TN_EDIT_WHITESPACE);
    expect("mojibake", "cafÃ© â€œquotedâ€\xc2\x9d itâ€™s", "café “quoted” it’s", TN_EDIT_UTF8);
    expect("mojibake leaves real Latin-1 text", "Ã la carte", "Ã la carte", -1);
    expect("repeated punctuation", "Really!!!! What??? 好。。。 真的！！！ Wait...... ok,, yes",
           "Really! What? 好。 真的！ Wait... ok, yes", TN_EDIT_PUNCTUATION);
    expect("full-width digits", "价格１２３元", "价格123元", TN_EDIT_NUMBERS);
    expect("thousands separators", "1,234,567.89 and 12,345 but 1,2,3 and 100,200,300,4", "1234567.89 and 12345 but 1,2,3 and 100,200,300,4",
           TN_EDIT_NUMBERS);
    expect("special characters", "a\xe2\x80\x8b" "b\xc2\xa0" "c\xe3\x80\x80" "d\xee\x80\x80" "e\xef\xbf\xbd" "f",
           "ab c def", TN_EDIT_SPECIAL);
    expect("full-width letters", "ＡＢＣ ｘｙｚ", "ABC xyz", TN_EDIT_SPECIAL);
    expect("base64 blob", "key QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk= end",
           "key  end", TN_EDIT_BLOB);
    expect("rule lines are not blobs", "title\n=================================================================",
           "title\n=================================================================", -1);
    expect("nfc", "Cafe\xcc\x81 \xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", "Café 한", TN_EDIT_NFC);
    expect("blank lines", "  a\n\n\n\n b\n \n\t\nc  ", "a\n\n b\n\nc", TN_EDIT_WHITESPACE);
    expect("markdown and latex intact", markdown_latex, markdown_latex, -1);
    expect("chinese untouched", "我爱北京天安门，天安门上太阳升。", "我爱北京天安门，天安门上太阳升。", -1);
}

static void test_filters(void) {
    TnCleanOptions o;
    tn_clean_default_options(&o);
    o.min_chars = 10;
    o.min_words = 5;
    TnCleaner *c = tn_cleaner_new(&o);
    TnTextBuf out = {0};
    CHECK(clean(c, "short", &out) == TN_FILTER_TOO_SHORT, "too short");
    CHECK(clean(c, "aaaaaaaaaaaa bbbbbbbbbbbbb", &out) == TN_FILTER_TOO_FEW_WORDS, "too few words");
    CHECK(clean(c, "我爱北京天安门天安门", &out) == TN_KEEP, "ten Chinese characters are ten words");
    CHECK(clean(c, "one two three four five {}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}{}", &out) == TN_FILTER_SYMBOL_RATIO,
          "symbol ratio");
    CHECK(clean(c, "the same line here\nthe same line here\nthe same line here\nother", &out) ==
              TN_FILTER_DUPLICATE_LINES, "duplicate lines");
    CHECK(clean(c, "one two three four five six\xff\xfe", &out) == TN_FILTER_INVALID_UTF8, "invalid utf-8 rejected");
    o.max_chars = 20;
    TnCleaner *small = tn_cleaner_new(&o);
    CHECK(clean(small, "one two three four five six seven", &out) == TN_FILTER_TOO_LONG, "too long");
    tn_cleaner_free(small);
    CHECK(tn_count_words("hello 世界 world 2024", 23) == 5, "mixed word count %lld", tn_count_words("hello 世界 world 2024", 23));
    tn_textbuf_free(&out);
    tn_cleaner_free(c);
}

static int valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Random bytes biased towards the characters the rules look for. */
static void test_malformed(void) {
    static const char alphabet[] = "<>&;#!?.,/:ab1 \n\r\x1b[\xc3\xa9\xe2\x80\x99\xff\xe4\xb8\x80\xef\xbc\x91";
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 1);
    TnTextBuf out = {0};
    char text[600];
    int valid = 1;
    for (int trial = 0; trial < 2000; trial++) {
        size_t n = (size_t)tn_rng_below(&rng, sizeof text);
        for (size_t i = 0; i < n; i++)
            text[i] = tn_rng_below(&rng, 3) ? alphabet[tn_rng_below(&rng, sizeof alphabet - 1)]
                                            : (char)tn_rng_below(&rng, 256);
        char detail[256];
        tn_clean_text(permissive, text, n, &out, &stats, detail, sizeof detail);
        valid &= valid_utf8(out.data, out.len) && strlen(out.data) == out.len;
    }
    CHECK(valid, "cleaning random bytes gives valid UTF-8 without NUL");
    tn_textbuf_free(&out);
}

/* The NFC quick check never says "unchanged" wrongly: over every assigned
 * code point below U+30000, alone and after a base letter, and it flags
 * combining sequences. */
static void test_nfc_quick_check(void) {
    int wrong = 0, stable = 0;
    for (int32_t cp = 0x80; cp < 0x30000; cp++) {
        if (utf8proc_category(cp) == UTF8PROC_CATEGORY_CN || (cp >= 0xd800 && cp < 0xe000)) continue;
        uint8_t text[8] = {'e'};
        utf8proc_ssize_t n = utf8proc_encode_char(cp, text + 1) + 1;
        if (!tn_nfc_quick_check((const char *)text, (size_t)n)) continue;
        stable++;
        utf8proc_uint8_t *mapped = NULL;
        utf8proc_ssize_t m = utf8proc_map(text, n, &mapped, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        wrong += m != n || memcmp(mapped, text, (size_t)n) != 0;
        free(mapped);
    }
    CHECK(wrong == 0 && stable > 100000, "NFC quick check: %d of %d passed characters change under NFC", wrong, stable);
    CHECK(!tn_nfc_quick_check("e\xcc\x81", 3) && !tn_nfc_quick_check("\xe2\x84\xab", 3) &&
              !tn_nfc_quick_check("\xe1\x84\x92\xe1\x85\xa1", 6) && tn_nfc_quick_check("caf\xc3\xa9 \xe4\xb8\xad", 9),
          "NFC quick check on combining, singleton, jamo and precomposed text");
}

int main(int argc, char **argv) {
    (void)argc;
    TnCleanOptions o = {.max_invalid_fraction = 1, .min_chars = 0, .max_chars = 1 << 30, .min_words = 0,
                        .max_symbol_ratio = 1, .max_duplicate_lines = 1};
    permissive = tn_cleaner_new(&o);
    test_rules();
    test_filters();
    test_malformed();
    test_nfc_quick_check();
    tn_cleaner_free(permissive);
    return TEST_DONE(argv[0]);
}
