#include "tokenizer_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenizer/bpe.h"
#include "util/error.h"
#include "util/rng.h"

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

/* The priority of joining a and b (lower first), or -1 if they do not
 * join: the merge rank, or under scores the negated score of the joined
 * piece's place in score order. */
static double join_priority(const TnBpe *bpe, const float *scores, const char *a, const char *b) {
    if (scores) {
        char *joined = malloc(strlen(a) + strlen(b) + 1);
        strcpy(joined, a);
        strcat(joined, b);
        int id = find_linear(bpe, joined);
        free(joined);
        return id < 0 ? -1 : 1e9 - scores[id];
    }
    for (int r = 0; r < bpe->n_merges; r++)
        if (strcmp(bpe->pieces[bpe->merges[r].left], a) == 0 && strcmp(bpe->pieces[bpe->merges[r].right], b) == 0)
            return r;
    return -1;
}

size_t reference_encode_scored(const TnTokenizer *tok, const float *scores, const char *text, size_t len,
                               int32_t *ids) {
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
        double best_priority = -1;
        size_t best = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            double priority = join_priority(bpe, scores, sym[i], sym[i + 1]);
            if (priority >= 0 && (best_priority < 0 || priority < best_priority)) {
                best_priority = priority;
                best = i;
            }
        }
        if (best_priority < 0) break;
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

size_t reference_encode(const TnTokenizer *tok, const char *text, size_t len, int32_t *ids) {
    return reference_encode_scored(tok, NULL, text, len, ids);
}

/* ---- mixed text and tokenizers.js --------------------------------------- */

static const char *const english[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be", "by", "this",
    "are", "from", "or", "have", "an", "they", "which", "one", "you", "were", "all", "we", "when", "can", "there",
    "use", "each", "how", "their", "if", "will", "other", "about", "many", "then", "them", "these", "so", "some",
    "would", "into", "has", "more", "two", "like", "see", "time", "could", "no", "make", "than", "first", "been",
    "model", "models", "attention", "linear", "transformer", "TransNormerLLM", "Lightning", "decay", "tokens",
    "training", "inference", "parameters", "billion", "softmax", "gated", "normalization", "SRMSNorm", "LRPE",
    "position", "encoding", "sequence", "length", "memory", "GPU", "throughput", "benchmark", "results", "paper",
    "however", "therefore", "Moreover", "In", "The", "We", "It", "I'm", "don't", "it's", "e.g.", "i.e.", "etc."};
static const char *const chinese =
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后"
    "多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还"
    "因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结"
    "解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级"
    "少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领"
    "七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清美再采转更单风切打白教速花带安场身车例真务具万每目";
static const char *const code[] = {
    "for (int i = 0; i < n; i++) {\n    sum += x[i] * y[i];\n}\n", "def forward(self, x):\n\treturn self.proj(x)\n",
    "if (err) return tn_fail(err, \"%s: bad\", path);\n", "    λ = exp(-s * (1 - l / L));  // Eq. 2\n",
    "<html><body class=\"main\">&nbsp;</body></html>\r\n", "SELECT id, name FROM users WHERE age >= 21;\n"};
static const char *const emoji[] = {"😀", "🚀", "👍🏽", "🇨🇳", "❤️", "✓", "½", "€", "™", "…", "—", "«", "»"};

static size_t append(char *doc, size_t cap, size_t n, const char *s) {
    size_t k = strlen(s);
    if (n + k >= cap) return n;
    memcpy(doc + n, s, k);
    return n + k;
}

size_t mixed_document(TnRng *rng, char *doc, size_t cap) {
    size_t n = 0, target = 100 + tn_rng_below(rng, cap - 200);
    while (n + 64 < target) {
        uint64_t kind = tn_rng_below(rng, 20);
        char buf[64];
        if (kind < 10) {
            double u = tn_rng_uniform(rng);
            n = append(doc, cap, n, english[(size_t)(u * u * (sizeof english / sizeof *english))]);
            n = append(doc, cap, n, tn_rng_below(rng, 8) ? " " : tn_rng_below(rng, 2) ? ", " : ".  ");
        } else if (kind < 15) {
            size_t count = strlen(chinese) / 3, k = (size_t)(tn_rng_uniform(rng) * tn_rng_uniform(rng) * count);
            memcpy(buf, chinese + 3 * k, 3);
            buf[3] = '\0';
            n = append(doc, cap, n, buf);
            if (tn_rng_below(rng, 12) == 0) n = append(doc, cap, n, tn_rng_below(rng, 2) ? "，" : "。");
        } else if (kind < 16) {
            n = append(doc, cap, n, code[tn_rng_below(rng, sizeof code / sizeof *code)]);
        } else if (kind < 17) {
            n = append(doc, cap, n, emoji[tn_rng_below(rng, sizeof emoji / sizeof *emoji)]);
        } else if (kind < 19) {
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)tn_rng_below(rng, 100000));
            n = append(doc, cap, n, buf);
            n = append(doc, cap, n, " ");
        } else {
            static const char *const odd[] = {"\t", "\n\n", "   ", "\r\n", "\x01", "\x7f", "\xc2\xa0", "Ünïcödé"};
            n = append(doc, cap, n, odd[tn_rng_below(rng, 8)]);
        }
    }
    return n;
}

static void write_json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

const char *find_node_modules(char *why, size_t cap) {
    if (system("command -v node >/dev/null 2>&1") != 0) {
        snprintf(why, cap, "node is not installed");
        return NULL;
    }
    const char *dir = getenv("TN_NODE_MODULES");
    if (!dir) dir = "bench/node_modules";
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/@huggingface/tokenizers/package.json", dir);
    if (access(probe, R_OK) != 0) {
        snprintf(why, cap, "%s is missing (npm install --prefix bench, or set TN_NODE_MODULES)", probe);
        return NULL;
    }
    return dir;
}

int hf_encode_texts(const char *modules, const char *dir, const char *const *texts, const size_t *lengths,
                    int n_texts) {
    char input[4200], command[20000];
    snprintf(input, sizeof input, "%s/texts.jsonl", dir);
    FILE *f = fopen(input, "w");
    if (!f) tn_die("cannot write %s", input);
    for (int d = 0; d < n_texts; d++) {
        fputs("{\"text\": ", f);
        write_json_string(f, texts[d], lengths[d]);
        fputs("}\n", f);
    }
    fclose(f);
    snprintf(command, sizeof command, "node tests/hf_encode.mjs '%s' '%s' '%s' '%s/hf_ids.txt'", modules, dir, input,
             dir);
    return system(command) == 0 ? 0 : -1;
}

int ids_line_equal(const char *line, const int32_t *ids, size_t n) {
    const char *at = line;
    for (size_t k = 0; k < n; k++) {
        char *end;
        long v = strtol(at, &end, 10);
        if (end == at || v != ids[k]) return 0;
        at = end;
    }
    while (*at == ' ' || *at == '\n' || *at == '\r') at++;
    return *at == '\0';
}

int compare_id_lines(const char *ids_path, const TnTokenizer *tok, const char *const *texts, const size_t *lengths,
                     int n_texts, long long *n_ids, int *first_bad) {
    FILE *f = fopen(ids_path, "r");
    if (!f) return -1;
    TnEncoder *enc = tn_encoder_new(tok);
    size_t cap = 1 << 16;
    char *line = tn_malloc(cap);
    int same = 0;
    *first_bad = -1;
    *n_ids = 0;
    for (int d = 0; d < n_texts; d++) {
        size_t n, used = 0;
        line[0] = '\0';
        while (fgets(line + used, (int)(cap - used), f)) { /* the whole line, however long */
            used += strlen(line + used);
            if (line[used - 1] == '\n') break;
            if (!(line = realloc(line, cap *= 2))) tn_die("out of memory reading %s", ids_path);
        }
        const int32_t *ids = tn_encoder_encode(enc, texts[d], lengths[d], &n);
        int ok = used > 0 && ids_line_equal(line, ids, n);
        same += ok;
        if (!ok && *first_bad < 0) *first_bad = d;
        *n_ids += (long long)n;
    }
    free(line);
    fclose(f);
    tn_encoder_free(enc);
    return same;
}
