#include "tokenizer_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe.h"
#include "util/error.h"

void write_tokenizer_json(const char *path, const char *const *pieces, int n_pieces, const char *const *merges,
                          int n_merges, const char *normalizer_and_pre, int byte_fallback) {
    FILE *f = fopen(path, "w");
    if (!f) tn_die("cannot write %s", path);
    fprintf(f, "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
               " {\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}],\n"
               "%s,\n \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": %s,\n"
               "  \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2",
            normalizer_and_pre, byte_fallback ? "true" : "false");
    for (int b = 0; b < 256; b++) fprintf(f, ", \"<0x%02X>\": %d", b, b + 3);
    for (int i = 0; i < n_pieces; i++) fprintf(f, ", \"%s\": %d", pieces[i], 259 + i);
    fprintf(f, "},\n  \"merges\": [");
    for (int i = 0; i < n_merges; i++) fprintf(f, "%s\"%s\"", i ? ", " : "", merges[i]);
    fprintf(f, "]}}\n");
    fclose(f);
}

static int find_linear(const TnBpe *bpe, const char *piece) {
    for (int id = 0; id < bpe->vocab_size; id++)
        if (!bpe->is_special[id] && strcmp(bpe->pieces[id], piece) == 0) return id;
    return -1;
}

/* Length of the UTF-8 character at s if it is well formed, else 0. */
static size_t char_length(const unsigned char *s, size_t len) {
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > len) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    uint32_t cp = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7f >> n));
    for (size_t i = 1; i < n; i++) cp = (cp << 6) | (s[i] & 0x3f);
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return 0;
    return n;
}

size_t reference_encode(const TnTokenizer *tok, const char *text, size_t len, int32_t *ids) {
    const TnBpe *bpe = tn_tokenizer_bpe(tok);
    const unsigned char *t = (const unsigned char *)text;
    char **sym = malloc((4 * len + 4) * sizeof *sym);
    size_t n = 0;
    if (len) sym[n++] = strdup("\xe2\x96\x81");
    for (size_t at = 0; at < len;) {
        size_t cl = char_length(t + at, len - at);
        char piece[8] = {0};
        if (cl == 1 && t[at] == ' ') strcpy(piece, "\xe2\x96\x81");
        else if (cl && !(cl == 3 && memcmp(t + at, "\xe2\x96\x81", 3) == 0)) memcpy(piece, t + at, cl);
        if (piece[0] && find_linear(bpe, piece) >= 0) {
            sym[n++] = strdup(piece);
        } else {
            for (size_t i = 0; i < (cl ? cl : 1); i++) {
                snprintf(piece, sizeof piece, "<0x%02X>", t[at + i]);
                sym[n++] = strdup(piece);
            }
        }
        at += cl ? cl : 1;
    }
    for (;;) {
        int best_rank = -1;
        size_t best = 0;
        for (size_t i = 0; i + 1 < n; i++)
            for (int r = 0; r < bpe->n_merges && (best_rank < 0 || r < best_rank); r++)
                if (strcmp(bpe->pieces[bpe->merges[r].left], sym[i]) == 0 &&
                    strcmp(bpe->pieces[bpe->merges[r].right], sym[i + 1]) == 0) {
                    best_rank = r;
                    best = i;
                }
        if (best_rank < 0) break;
        char *joined = malloc(strlen(sym[best]) + strlen(sym[best + 1]) + 1);
        strcpy(joined, sym[best]);
        strcat(joined, sym[best + 1]);
        free(sym[best]);
        free(sym[best + 1]);
        sym[best] = joined;
        memmove(sym + best + 1, sym + best + 2, (n - best - 2) * sizeof *sym);
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = find_linear(bpe, sym[i]);
        free(sym[i]);
    }
    free(sym);
    return n;
}
