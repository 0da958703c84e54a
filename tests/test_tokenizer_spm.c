/* test_tokenizer_spm: SentencePiece .model files (tokenizer/sentencepiece.h).
 *
 *  1. A model written here, from sentencepiece_model.proto's field numbers,
 *     with random scores: the pieces, control tokens and byte pieces come
 *     out as written, and the ids equal the SentencePiece rule written the
 *     slow way (tokenizer_fixture.h: join the adjacent pair that makes the
 *     highest-scoring piece, leftmost first) on random text, including
 *     pieces with two overlapping splits ("aba" = "ab"+"a" = "a"+"ba").
 *  2. Every model tnllm cannot reproduce is refused with the file's name
 *     and the reason; every truncation and random corruption of the file is
 *     refused or read, never crashes (the sanitizer build checks reads).
 *  3. Against the real thing: spm_train learns a BPE model (byte fallback,
 *     split digits, identity normalization) on the bundled corpus; the ids
 *     of spm_encode and of tnllm must be identical on 2 x 300 KB of mixed
 *     English, Chinese, code, emoji and rare characters (byte fallback),
 *     and so must those of tokenizers.js on the converted tokenizer.json;
 *     with add_dummy_prefix on (LLaMA) and off (Baichuan).
 *     Skipped, saying why, where spm_train (or node) is absent.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_json.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_fixture.h"
#include "util/fileio.h"
#include "util/rng.h"

/* ---- writing a ModelProto ------------------------------------------------ */

typedef struct Buffer {
    uint8_t *data;
    size_t size, capacity;
} Buffer;

static void put(Buffer *b, const void *bytes, size_t n) {
    if (b->size + n > b->capacity) {
        b->capacity = 2 * (b->size + n) + 256;
        b->data = realloc(b->data, b->capacity);
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
}

static void put_varint(Buffer *b, uint64_t v) {
    for (; v > 0x7f; v >>= 7) put(b, &(uint8_t){(uint8_t)(0x80 | (v & 0x7f))}, 1);
    put(b, &(uint8_t){(uint8_t)v}, 1);
}

static void put_key(Buffer *b, uint32_t field, int wire) { put_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void put_bytes(Buffer *b, uint32_t field, const void *bytes, size_t n) {
    put_key(b, field, 2);
    put_varint(b, n);
    put(b, bytes, n);
}

static void put_number(Buffer *b, uint32_t field, uint64_t v) {
    put_key(b, field, 0);
    put_varint(b, v);
}

enum { NORMAL = 1, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE };

typedef struct Spec {
    const char *const *pieces;
    const float *scores;
    const int *types;
    int n_pieces;
    int model_type, byte_fallback;     /* < 0: leave the field out */
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    const char *charsmap;              /* NULL: none */
} Spec;

static Buffer serialize(const Spec *s) {
    Buffer model = {0};
    for (int i = 0; i < s->n_pieces; i++) {
        Buffer piece = {0};
        put_bytes(&piece, 1, s->pieces[i], strlen(s->pieces[i]));
        put_key(&piece, 2, 5);
        put(&piece, &s->scores[i], 4); /* little-endian, as x86 stores it */
        if (s->types[i] != NORMAL) put_number(&piece, 3, (uint64_t)s->types[i]);
        put_bytes(&model, 1, piece.data, piece.size);
        free(piece.data);
    }
    Buffer trainer = {0}, normalizer = {0};
    put_bytes(&trainer, 1, "corpus.txt", 10);
    if (s->model_type >= 0) put_number(&trainer, 3, (uint64_t)s->model_type);
    put_number(&trainer, 4, (uint64_t)s->n_pieces);
    put_number(&trainer, 25, 1);
    if (s->byte_fallback >= 0) put_number(&trainer, 35, (uint64_t)s->byte_fallback);
    put_number(&trainer, 43, (uint64_t)-1); /* pad_id -1: a 10-byte varint */
    put_bytes(&normalizer, 1, s->charsmap ? "nmt_nfkc" : "identity", 8);
    if (s->charsmap) put_bytes(&normalizer, 2, s->charsmap, strlen(s->charsmap));
    put_number(&normalizer, 3, (uint64_t)s->add_dummy_prefix);
    if (s->remove_extra_whitespaces >= 0) put_number(&normalizer, 4, (uint64_t)s->remove_extra_whitespaces);
    put_number(&normalizer, 5, (uint64_t)s->escape_whitespaces);
    put_bytes(&model, 2, trainer.data, trainer.size);
    put_bytes(&model, 3, normalizer.data, normalizer.size);
    put_bytes(&model, 99, "an unknown field is skipped", 27);
    free(trainer.data);
    free(normalizer.data);
    return model;
}

/* ---- 1. a model written here ------------------------------------------- */

#define N_WORDS 22
static const char *const words[N_WORDS] = {
    "\xe2\x96\x81", "a", "b", "c", "中", "1", "x", "ab", "ba", "aba", "\xe2\x96\x81" "a", "\xe2\x96\x81" "ab",
    "\xe2\x96\x81" "aba", "bc", "abc", "aa", "aaa", "cc", "\xe2\x96\x81" "c", "c中", "x1", "\xe2\x96\x81\xe2\x96\x81"};
#define N_PIECES (3 + 256 + N_WORDS)

typedef struct Vocabulary {
    char names[N_PIECES][8];
    const char *pieces[N_PIECES];
    float scores[N_PIECES];
    int types[N_PIECES];
} Vocabulary;

/* <unk> <s> </s>, the byte pieces, then the words with random scores
 * (some equal, as two pieces of equal score must be leftmost first). */
static Spec make_vocabulary(Vocabulary *v, TnRng *rng) {
    for (int i = 0; i < N_PIECES; i++) {
        if (i < 3) snprintf(v->names[i], sizeof v->names[i], "%s", (const char *[]){"<unk>", "<s>", "</s>"}[i]);
        else if (i < 259) snprintf(v->names[i], sizeof v->names[i], "<0x%02X>", i - 3);
        v->pieces[i] = i < 259 ? v->names[i] : words[i - 259];
        v->types[i] = i == 0 ? UNKNOWN : i < 3 ? CONTROL : i < 259 ? BYTE : NORMAL;
        v->scores[i] = i < 259 ? 0.0f : -(float)tn_rng_below(rng, 12);
    }
    return (Spec){v->pieces, v->scores, v->types, N_PIECES, 2, 1, 1, 0, 1, NULL};
}

static size_t random_text(TnRng *rng, char *out, size_t cap) {
    static const char *const alphabet[] = {"a", "b", "c", " ", "中", "1", "x", "é", "\xe2\x96\x81", "\n", "\xff"};
    size_t n = 0, target = tn_rng_below(rng, cap - 8);
    while (n < target) {
        const char *s = alphabet[tn_rng_below(rng, sizeof alphabet / sizeof *alphabet)];
        memcpy(out + n, s, strlen(s));
        n += strlen(s);
    }
    return n;
}

static void test_written_model(TnRng *rng) {
    Vocabulary v;
    Spec spec = make_vocabulary(&v, rng);
    Buffer file = serialize(&spec);
    TnBpe bpe;
    TnError err;
    CHECK(tn_sentencepiece_parse(&bpe, file.data, file.size, "written.model", &err) == 0, "parse: %s", err.msg);
    free(file.data);
    int same = 1;
    for (int i = 0; i < N_PIECES; i++) same = same && strcmp(bpe.pieces[i], v.pieces[i]) == 0;
    CHECK(bpe.vocab_size == N_PIECES && same, "the pieces come out in order (%d)", bpe.vocab_size);
    CHECK(bpe.unk_id == 0 && bpe.is_special[0] && bpe.is_special[1] && bpe.is_special[2] && !bpe.is_special[3] &&
              !bpe.is_special[259], "control tokens: <unk> <s> </s> only");
    CHECK(bpe.byte_ids[0] == 3 && bpe.byte_ids[255] == 258 && bpe.options.byte_fallback, "byte pieces");
    CHECK(bpe.options.metaspace && bpe.options.add_prefix == TN_PREFIX_ALWAYS && !bpe.options.fuse_unk,
          "options: metaspace, dummy prefix, no unknown fusing");
    /* Merges: every split of a word into two words, ordered by score. */
    int expected = 0, ordered = 1;
    for (int w = 0; w < N_WORDS; w++)
        for (int cut = 1; cut < (int)strlen(words[w]); cut++)
            for (int a = 0; a < N_WORDS; a++)
                for (int b = 0; b < N_WORDS; b++)
                    expected += strlen(words[a]) == (size_t)cut && strncmp(words[a], words[w], (size_t)cut) == 0 &&
                                strcmp(words[b], words[w] + cut) == 0;
    for (int r = 1; r < bpe.n_merges; r++) {
        char joined[2][32];
        for (int k = 0; k < 2; k++)
            snprintf(joined[k], sizeof joined[k], "%s%s", bpe.pieces[bpe.merges[r - k].left],
                     bpe.pieces[bpe.merges[r - k].right]);
        ordered = ordered && v.scores[tn_bpe_find_piece(&bpe, joined[1], strlen(joined[1]))] >=
                                 v.scores[tn_bpe_find_piece(&bpe, joined[0], strlen(joined[0]))];
    }
    CHECK(bpe.n_merges == expected && ordered, "%d merges (expected %d), ordered by score: %d", bpe.n_merges,
          expected, ordered);
    TnTokenizer *tok = tn_tokenizer_from_bpe(&bpe);
    TnEncoder *enc = tn_encoder_new(tok);
    static char text[400];
    static int32_t want[4 * 400 + 4];
    int agree = 0, trials = 300;
    for (int t = 0; t < trials; t++) {
        size_t len = random_text(rng, text, sizeof text), n, n_want;
        const int32_t *ids = tn_encoder_encode(enc, text, len, &n);
        n_want = reference_encode_scored(tok, v.scores, text, len, want);
        size_t decoded_length;
        char *decoded = tn_tokenizer_decode(tok, ids, n, &decoded_length);
        int ok = n == n_want && memcmp(ids, want, n * sizeof *ids) == 0 && decoded_length == len &&
                 memcmp(decoded, text, len) == 0;
        free(decoded);
        agree += ok;
        if (!ok && agree == t) fprintf(stderr, "first difference: \"%.*s\"\n", (int)len, text);
    }
    CHECK(agree == trials, "SentencePiece's rule: %d of %d random texts agree and decode back", agree, trials);
    tn_encoder_free(enc);
    tn_tokenizer_free(tok);
}

/* ---- 2. refusals, truncations, corruption ---------------------------------- */

static void expect_refused(const char *what, const Spec *spec, const char *reason) {
    Buffer file = serialize(spec);
    TnBpe bpe;
    TnError err = {""};
    int rc = tn_sentencepiece_parse(&bpe, file.data, file.size, "bad.model", &err);
    CHECK(rc == -1 && strstr(err.msg, "bad.model") && strstr(err.msg, reason),
          "%s: rc %d, \"%s\" (expected the file and \"%s\")", what, rc, err.msg, reason);
    if (rc == 0) tn_bpe_free(&bpe);
    free(file.data);
}

static void test_refusals(TnRng *rng) {
    Vocabulary v;
    Spec good = make_vocabulary(&v, rng), s;
    s = good, s.model_type = 1, expect_refused("unigram", &s, "unigram model");
    s = good, s.model_type = -1, expect_refused("no model_type (proto default: unigram)", &s, "unigram model");
    s = good, s.charsmap = "\x01\x02rules", expect_refused("nfkc", &s, "normalization_rule_name=identity");
    s = good, s.remove_extra_whitespaces = -1, expect_refused("default whitespace removal", &s,
                                                              "remove_extra_whitespaces");
    s = good, s.escape_whitespaces = 0, expect_refused("no escaping", &s, "escape_whitespaces");
    s = good, s.byte_fallback = 0, expect_refused("byte pieces without fallback", &s, "byte_fallback is off");
    int types[N_PIECES];
    memcpy(types, v.types, sizeof types);
    s = good, s.types = types;
    types[259 + 7] = USER_DEFINED, expect_refused("user-defined \"ab\"", &s, "user-defined");
    types[259 + 7] = UNUSED, expect_refused("unused piece", &s, "UNUSED");
    types[259 + 7] = 9, expect_refused("type 9", &s, "unknown type");
    types[259 + 7] = UNKNOWN, expect_refused("two <unk>", &s, "2 pieces of type UNKNOWN");
    types[259 + 7] = NORMAL, types[0] = CONTROL, expect_refused("no <unk>", &s, "0 pieces of type UNKNOWN");
    types[0] = UNKNOWN, types[3] = NORMAL, expect_refused("255 byte pieces", &s, "the model has 255");
    const char *pieces[N_PIECES];
    memcpy(pieces, v.pieces, sizeof pieces);
    s = good, s.pieces = pieces;
    pieces[259 + 8] = "ab", expect_refused("a repeated piece", &s, "appears twice");
    pieces[259 + 8] = "", expect_refused("an empty piece", &s, "no piece string");
    pieces[3] = "<0xG0>", pieces[259 + 8] = v.pieces[259 + 8], expect_refused("a bad byte piece", &s,
                                                                              "<0x00> of type BYTE");
    float scores[N_PIECES];
    memcpy(scores, v.scores, sizeof scores);
    s = good, s.scores = scores, scores[300 % N_PIECES] = 0.0f / 0.0f, expect_refused("NaN", &s, "not a finite");
    /* Wire-level damage: a piece as a varint, then a cut-off file. */
    Buffer file = {0};
    put_number(&file, 1, 5);
    TnBpe bpe;
    TnError err;
    CHECK(tn_sentencepiece_parse(&bpe, file.data, file.size, "wire.model", &err) == -1 &&
              strstr(err.msg, "wire.model: not a valid SentencePiece model: pieces field 1 is varint, expected bytes"),
          "wrong wire type: %s", err.msg);
    free(file.data);
    file = serialize(&good);
    CHECK(tn_sentencepiece_parse(&bpe, file.data, file.size - 3, "cut.model", &err) == -1 &&
              strstr(err.msg, "cut.model: not a valid SentencePiece model") && strstr(err.msg, "remain"),
          "cut off: %s", err.msg);
    int wrong = 0, read = 0;
    /* Each prefix: pieces come first, so only the whole file has the
     * trainer and normalizer specs a model needs. Exactly-sized copies let
     * the sanitizer see an overread. */
    for (size_t at = 0; at < file.size - 30; at++) { /* the last 30 bytes: the unknown field, which may go */
        uint8_t *copy = malloc(at ? at : 1);
        memcpy(copy, file.data, at);
        err.msg[0] = '\0';
        int rc = tn_sentencepiece_parse(&bpe, copy, at, "prefix.model", &err);
        wrong += rc != -1 || !strstr(err.msg, "prefix.model");
        free(copy);
    }
    CHECK(wrong == 0, "%d of %zu truncations not refused with the file's name", wrong, file.size);
    int trials = 400;
    wrong = 0;
    for (int t = 0; t < trials; t++) {
        uint8_t *copy = malloc(file.size);
        memcpy(copy, file.data, file.size);
        for (int k = 0; k < 4; k++) copy[tn_rng_below(rng, file.size)] = (uint8_t)tn_rng_below(rng, 256);
        err.msg[0] = '\0';
        int rc = tn_sentencepiece_parse(&bpe, copy, file.size, "corrupt.model", &err);
        if (rc == 0) tn_bpe_free(&bpe), read++;
        else wrong += !strstr(err.msg, "corrupt.model");
        free(copy);
    }
    CHECK(wrong == 0, "corruption: %d of %d refusals lack the file's name (%d were still readable)", wrong, trials,
          read);
    free(file.data);
}

/* The CLI refuses a unigram model, naming the file and exiting non-zero. */
static void test_cli_refusal(TnRng *rng, const char *dir) {
    Vocabulary v;
    Spec spec = make_vocabulary(&v, rng);
    spec.model_type = 1;
    Buffer file = serialize(&spec);
    char path[4200], command[9000], out[4096];
    TnError err;
    snprintf(path, sizeof path, "%s/unigram.model", dir);
    CHECK(tn_write_file(path, file.data, file.size, &err) == 0, "%s", err.msg);
    free(file.data);
    snprintf(command, sizeof command, "%s tokenizer convert '%s' -o '%s/tokenizer.json'", tnllm_binary(), path, dir);
    int rc = run_command(command, out, sizeof out);
    CHECK(rc != 0 && strstr(out, path) && strstr(out, "unigram"), "convert of a unigram model: rc %d, \"%s\"", rc,
          out);
}

/* ---- 3. spm_train, spm_encode and tokenizers.js --------------------------- */

#define MAX_LINES 20000

/* Rare characters, mostly outside a vocabulary learned from the corpus. */
static size_t rare_character(TnRng *rng, char *out) {
    static const uint32_t ranges[][2] = {{0x0400, 0x04ff}, {0x0370, 0x03ff}, {0x0600, 0x06ff}, {0x0900, 0x097f},
                                         {0xac00, 0xd7a3}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff}, {0x20000, 0x2a6df},
                                         {0x1f300, 0x1f64f}, {0x2200, 0x22ff}};
    const uint32_t *r = ranges[tn_rng_below(rng, sizeof ranges / sizeof *ranges)];
    return (size_t)tn_utf8_encode(r[0] + (uint32_t)tn_rng_below(rng, r[1] - r[0] + 1), out);
}

/* Lines (no '\n': spm_encode reads one text per line) of mixed text with
 * rare characters, about `bytes` in all, in one buffer. The text is valid
 * UTF-8: SentencePiece turns each invalid byte into U+FFFD, where tnllm
 * keeps the byte (so that decode(encode(x)) == x). */
static int make_lines(TnRng *rng, size_t bytes, char *buffer, const char **lines, size_t *lengths) {
    static char doc[1400];
    int n = 0;
    size_t used = 0;
    while (used < bytes && n < MAX_LINES) {
        size_t len = mixed_document(rng, doc, sizeof doc);
        for (size_t start = 0; start <= len && n < MAX_LINES;) {
            const char *nl = memchr(doc + start, '\n', len - start);
            size_t end = nl ? (size_t)(nl - doc) : len;
            lines[n] = buffer + used;
            for (size_t i = start; i < end;) { /* rare characters between characters: valid UTF-8 stays valid */
                size_t k = tn_utf8_next((const unsigned char *)doc + i, end - i).length;
                if (tn_rng_below(rng, 20) == 0) used += rare_character(rng, buffer + used);
                memcpy(buffer + used, doc + i, k);
                used += k;
                i += k;
            }
            lengths[n] = (size_t)(buffer + used - lines[n]);
            n++;
            start = end + 1;
        }
    }
    return n;
}

/* The texts of data/corpus.jsonl, one line per line, into path. */
static void write_corpus_text(const char *path) {
    char *data;
    size_t size;
    TnError err;
    if (tn_read_file("data/corpus.jsonl", &data, &size, &err)) tn_die("%s", err.msg);
    FILE *f = fopen(path, "w");
    if (!f) tn_die("cannot write %s", path);
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *doc = cJSON_Parse(line);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(doc, "text");
        if (cJSON_IsString(text)) fprintf(f, "%s\n", text->valuestring);
        cJSON_Delete(doc);
    }
    fclose(f);
    free(data);
}

static void report(const char *who, int same, int n_lines, long long n_ids, int first_bad, const char *const *lines,
                   const size_t *lengths) {
    printf("%s: %d of %d lines identical (%.3f%% differ), %lld ids\n", who, same, n_lines,
           100.0 * (n_lines - same) / n_lines, n_ids);
    CHECK(same == n_lines, "%s: %d of %d lines differ; first, line %d: \"%.*s\"", who, n_lines - same, n_lines,
          first_bad, first_bad >= 0 ? (int)lengths[first_bad] : 0, first_bad >= 0 ? lines[first_bad] : "");
}

/* In dir/dummy-prefix-on or -off: spm_train with add_dummy_prefix as asked
 * (LLaMA: on; Baichuan: off). */
static void test_against_sentencepiece(TnRng *rng, const char *parent, int dummy_prefix) {
    char dir[4200], corpus[4300], prefix[4300], model[4300], text_path[4300], ids_path[4600], command[20000],
        out[4096];
    TnError err;
    snprintf(dir, sizeof dir, "%s/dummy-prefix-%s", parent, dummy_prefix ? "on" : "off");
    CHECK(tn_mkdir_p(dir, &err) == 0, "%s", err.msg);
    printf("add_dummy_prefix=%s:\n", dummy_prefix ? "true" : "false");
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(prefix, sizeof prefix, "%s/spm", dir);
    snprintf(model, sizeof model, "%s/spm.model", dir);
    write_corpus_text(corpus);
    /* LLaMA's settings: BPE, byte fallback, digits split, identity
     * normalization, whitespace kept, whitespace-only pieces allowed. */
    snprintf(command, sizeof command,
             "spm_train --input='%s' --model_prefix='%s' --vocab_size=6000 --model_type=bpe --byte_fallback=true "
             "--split_digits=true --normalization_rule_name=identity --remove_extra_whitespaces=false "
             "--allow_whitespace_only_pieces=true --add_dummy_prefix=%s --character_coverage=0.9995 --num_threads=2 "
             "--minloglevel=2", corpus, prefix, dummy_prefix ? "true" : "false");
    int rc = run_command(command, out, sizeof out);
    CHECK(rc == 0, "spm_train failed (%d): %s", rc, out);
    if (rc) return;
    TnTokenizer *tok;
    CHECK(tn_tokenizer_load(&tok, model, &err) == 0, "load %s: %s", model, err.msg);
    if (!tok) return;
    static char buffer[600000];
    static const char *lines[MAX_LINES];
    static size_t lengths[MAX_LINES];
    int n_lines = make_lines(rng, 300000, buffer, lines, lengths);
    snprintf(text_path, sizeof text_path, "%s/text.txt", dir);
    FILE *f = fopen(text_path, "w");
    for (int i = 0; i < n_lines; i++) {
        fwrite(lines[i], 1, lengths[i], f);
        fputc('\n', f);
    }
    fclose(f);
    snprintf(ids_path, sizeof ids_path, "%s/spm_ids.txt", dir);
    snprintf(command, sizeof command, "spm_encode --model='%s' --output_format=id < '%s' > '%s'", model, text_path,
             ids_path);
    CHECK(run_command(command, out, sizeof out) == 0, "spm_encode failed: %s", out);
    long long n_ids;
    int first_bad, same = compare_id_lines(ids_path, tok, lines, lengths, n_lines, &n_ids, &first_bad);
    size_t bytes = 0;
    for (int i = 0; i < n_lines; i++) bytes += lengths[i];
    printf("%.0f KB of text, %d lines; model %s: vocabulary %d, %d merges\n", (double)bytes / 1e3, n_lines, model,
           tn_tokenizer_vocab_size(tok), tn_tokenizer_bpe(tok)->n_merges);
    report("spm_encode vs tnllm", same, n_lines, n_ids, first_bad, lines, lengths);
    /* Byte fallback must have been exercised. */
    long long byte_ids = 0;
    TnEncoder *enc = tn_encoder_new(tok);
    for (int i = 0; i < n_lines; i++) {
        size_t n;
        const int32_t *ids = tn_encoder_encode(enc, lines[i], lengths[i], &n);
        for (size_t k = 0; k < n; k++) byte_ids += ids[k] >= 3 && ids[k] < 259;
    }
    tn_encoder_free(enc);
    printf("byte-fallback ids: %lld\n", byte_ids);
    CHECK(byte_ids > 1000, "only %lld byte-fallback ids: rare characters are not exercised", byte_ids);

    /* The converted tokenizer.json: tnllm reading it back (the HF merge
     * order), the CLI, and tokenizers.js all give spm_encode's ids. */
    char hf_dir[4400], json[4500];
    snprintf(hf_dir, sizeof hf_dir, "%s/hf", dir);
    snprintf(json, sizeof json, "%s/tokenizer.json", hf_dir);
    snprintf(command, sizeof command, "%s tokenizer convert '%s' -o '%s'", tnllm_binary(), model, json);
    rc = run_command(command, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "wrote"), "tnllm tokenizer convert: %s", out);
    snprintf(command, sizeof command, "%s/tokenizer_config.json", hf_dir);
    CHECK(tn_file_exists(command), "convert writes tokenizer_config.json beside tokenizer.json");
    TnTokenizer *converted;
    CHECK(tn_tokenizer_load(&converted, json, &err) == 0, "load %s: %s", json, err.msg);
    if (converted) {
        same = compare_id_lines(ids_path, converted, lines, lengths, n_lines, &n_ids, &first_bad);
        report("spm_encode vs tnllm on the converted tokenizer.json", same, n_lines, n_ids, first_bad, lines, lengths);
        tn_tokenizer_free(converted);
    }
    snprintf(command, sizeof command, "%s tokenizer encode -m '%s' -p 'Hello  world 2026, 你好 🚀'", tnllm_binary(),
             model);
    rc = run_command(command, out, sizeof out);
    int32_t *ids;
    size_t n;
    const char *hello = "Hello  world 2026, 你好 🚀";
    tn_tokenizer_encode(tok, hello, strlen(hello), &ids, &n, &err);
    CHECK(rc == 0 && ids_line_equal(out, ids, n), "tnllm tokenizer encode -m X.model: \"%s\"", out);
    free(ids);
    /* A model directory holding only tokenizer.model loads it. */
    char model_dir[4400], copy[4500];
    snprintf(model_dir, sizeof model_dir, "%s/model-dir", dir);
    snprintf(copy, sizeof copy, "%s/tokenizer.model", model_dir);
    char *data;
    size_t size;
    CHECK(tn_mkdir_p(model_dir, &err) == 0 && tn_read_file(model, &data, &size, &err) == 0 &&
              tn_write_file(copy, data, size, &err) == 0, "copy: %s", err.msg);
    free(data);
    TnTokenizer *from_dir = NULL;
    CHECK(tn_tokenizer_for_model(&from_dir, model_dir, &err) == 0 &&
              tn_tokenizer_vocab_size(from_dir) == tn_tokenizer_vocab_size(tok),
          "a directory with tokenizer.model: %s", err.msg);
    tn_tokenizer_free(from_dir);
    char why[4400];
    const char *modules = find_node_modules(why, sizeof why);
    if (!modules) {
        printf("tokenizers.js comparison skipped: %s\n", why);
    } else {
        CHECK(hf_encode_texts(modules, hf_dir, lines, lengths, n_lines) == 0, "tests/hf_encode.mjs failed");
        snprintf(ids_path, sizeof ids_path, "%s/hf_ids.txt", hf_dir);
        same = compare_id_lines(ids_path, tok, lines, lengths, n_lines, &n_ids, &first_bad);
        report("tokenizers.js (converted tokenizer.json) vs tnllm", same, n_lines, n_ids, first_bad, lines, lengths);
    }
    tn_tokenizer_free(tok);
}

int main(int argc, char **argv) {
    (void)argc;
    TnRng rng;
    tn_rng_seed(&rng, test_seed(), 0);
    test_written_model(&rng);
    test_refusals(&rng);
    char dir[4096], out[256];
    make_temp_dir(dir, sizeof dir, "tokenizer-spm");
    test_cli_refusal(&rng, dir);
    if (run_command("command -v spm_train && command -v spm_encode", out, sizeof out) != 0)
        printf("%s: comparison with SentencePiece skipped: spm_train / spm_encode not found (apt-get install "
               "sentencepiece)\n", argv[0]);
    else
        for (int dummy_prefix = 1; dummy_prefix >= 0; dummy_prefix--)
            test_against_sentencepiece(&rng, dir, dummy_prefix);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
