/* test_tokenizer_hf: identical ids against tokenizers.js
 * (@huggingface/tokenizers), an independent implementation of HF
 * tokenizer.json, on about 2 MB of mixed English, Chinese, code, emoji and
 * control characters, with a tokenizer trained here and written as
 * tokenizer.json + tokenizer_config.json.
 *
 * Needs node and the npm package (`npm install --prefix bench`, or
 * TN_NODE_MODULES=<dir>/node_modules); without them it prints why and
 * skips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_json.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/train.h"
#include "util/rng.h"

#define N_DOCS 3000
#define DOC_MAX 1400

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

static size_t append(char *doc, size_t n, const char *s) {
    size_t k = strlen(s);
    if (n + k >= DOC_MAX) return n;
    memcpy(doc + n, s, k);
    return n + k;
}

static size_t mixed_document(TnRng *rng, char *doc) {
    size_t n = 0, target = 100 + tn_rng_below(rng, DOC_MAX - 200);
    while (n + 64 < target) {
        uint64_t kind = tn_rng_below(rng, 20);
        char buf[64];
        if (kind < 10) {
            double u = tn_rng_uniform(rng);
            n = append(doc, n, english[(size_t)(u * u * (sizeof english / sizeof *english))]);
            n = append(doc, n, tn_rng_below(rng, 8) ? " " : tn_rng_below(rng, 2) ? ", " : ".  ");
        } else if (kind < 15) {
            size_t count = strlen(chinese) / 3, k = (size_t)(tn_rng_uniform(rng) * tn_rng_uniform(rng) * count);
            memcpy(buf, chinese + 3 * k, 3);
            buf[3] = '\0';
            n = append(doc, n, buf);
            if (tn_rng_below(rng, 12) == 0) n = append(doc, n, tn_rng_below(rng, 2) ? "，" : "。");
        } else if (kind < 16) {
            n = append(doc, n, code[tn_rng_below(rng, sizeof code / sizeof *code)]);
        } else if (kind < 17) {
            n = append(doc, n, emoji[tn_rng_below(rng, sizeof emoji / sizeof *emoji)]);
        } else if (kind < 19) {
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)tn_rng_below(rng, 100000));
            n = append(doc, n, buf);
            n = append(doc, n, " ");
        } else {
            static const char *const odd[] = {"\t", "\n\n", "   ", "\r\n", "\x01", "\x7f", "\xc2\xa0", "Ünïcödé"};
            n = append(doc, n, odd[tn_rng_below(rng, 8)]);
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

/* The npm package directory, or NULL with the reason in why. */
static const char *find_modules(char *why, size_t cap) {
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

/* The layouts compared: the legacy LLaMA one tnllm writes, and the
 * Metaspace pre-tokenizer of newer files (no "▁" before a leading space).
 * Metaspace with split=true is not compared: tokenizers.js documents that
 * it does not reproduce the MergedWithNext split of the Rust library (it
 * keeps "▁▁of" whole after punctuation, which Rust cuts as "▁" "▁of"). */
static const char *const layout_names[2] = {"legacy normalizer", "Metaspace"};

static void set_layout(TnBpe *bpe, int layout) {
    bpe->options.add_prefix = layout == 0 ? TN_PREFIX_ALWAYS : TN_PREFIX_UNLESS_SPACE;
}

/* Writes the tokenizer files, runs tokenizers.js over the documents, reads
 * the files back with tnllm and compares ids; returns the documents that
 * agree. */
static int compare_layout(const char *modules, const char *dir, const TnBpe *bpe, char docs[][DOC_MAX],
                          const size_t *lengths, long long *n_ids, int *first_bad) {
    char path[4200], input[4200], output[4200], command[20000];
    TnError err;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(tn_hf_json_write(bpe, path, &err) == 0, "write: %s", err.msg);
    TnTokenizer *tok;
    CHECK(tn_tokenizer_load(&tok, path, &err) == 0, "read back: %s", err.msg);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    CHECK(tn_hf_config_write(bpe, path, &err) == 0, "write: %s", err.msg);
    snprintf(input, sizeof input, "%s/docs.jsonl", dir);
    snprintf(output, sizeof output, "%s/ids.txt", dir);
    FILE *f = fopen(input, "w");
    for (int d = 0; d < N_DOCS; d++) {
        fputs("{\"text\": ", f);
        write_json_string(f, docs[d], lengths[d]);
        fputs("}\n", f);
    }
    fclose(f);
    snprintf(command, sizeof command, "node tests/hf_encode.mjs '%s' '%s' '%s' '%s'", modules, dir, input, output);
    CHECK(system(command) == 0, "%s failed", command);
    TnEncoder *enc = tn_encoder_new(tok);
    f = fopen(output, "r");
    int same = 0;
    *first_bad = -1;
    *n_ids = 0;
    static char line[16 * DOC_MAX];
    for (int d = 0; d < N_DOCS && f && fgets(line, sizeof line, f); d++) {
        size_t n;
        const int32_t *ids = tn_encoder_encode(enc, docs[d], lengths[d], &n);
        char *at = line;
        int ok = 1;
        for (size_t k = 0; ok && k < n; k++) {
            char *end;
            long v = strtol(at, &end, 10);
            ok = end != at && v == ids[k];
            at = end;
        }
        while (*at == ' ' || *at == '\n') at++;
        ok = ok && *at == '\0';
        same += ok;
        if (!ok && *first_bad < 0) *first_bad = d;
        *n_ids += (long long)n;
    }
    if (f) fclose(f);
    tn_encoder_free(enc);
    tn_tokenizer_free(tok);
    return same;
}

int main(int argc, char **argv) {
    (void)argc;
    char why[4400];
    const char *modules = find_modules(why, sizeof why);
    if (!modules) {
        printf("%s: skipped: %s\n", argv[0], why);
        return TEST_DONE(argv[0]);
    }
    static char docs[N_DOCS][DOC_MAX];
    static size_t lengths[N_DOCS];
    const char *texts[N_DOCS];
    TnRng rng;
    tn_rng_seed(&rng, 2026, 0);
    size_t total = 0;
    for (int d = 0; d < N_DOCS; d++) {
        size_t lead = d % 7 == 0; /* some documents start with a space */
        docs[d][0] = ' ';
        lengths[d] = lead + mixed_document(&rng, docs[d] + lead);
        texts[d] = docs[d];
        total += lengths[d];
    }
    TnTrainOptions opt = tn_train_defaults();
    opt.vocab_size = 4000;
    opt.character_coverage = 0.999; /* some Chinese characters fall back to bytes */
    TnBpe bpe;
    TnError err;
    if (tn_bpe_train_texts(&bpe, texts, lengths, N_DOCS, &opt, NULL, &err)) tn_die("%s", err.msg);
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "tokenizer-hf");
    for (int layout = 0; layout < 2; layout++) {
        set_layout(&bpe, layout);
        long long n_ids;
        int first_bad, same = compare_layout(modules, dir, &bpe, docs, lengths, &n_ids, &first_bad);
        CHECK(same == N_DOCS, "%s: %d of %d documents get identical ids from tokenizers.js; first difference in "
              "document %d", layout_names[layout], same, N_DOCS, first_bad);
        printf("%s: tokenizers.js agrees on %d of %d documents (%.2f MB, %lld ids)\n", layout_names[layout], same,
               N_DOCS, (double)total / 1e6, n_ids);
    }
    tn_bpe_free(&bpe);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
