/* tnllm tokenizer: train a BPE tokenizer, convert a SentencePiece model,
 * encode text, decode ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_json.h"
#include "tokenizer/unicode.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/train.h"
#include "util/fileio.h"

static void usage(void) {
    printf("usage: tnllm tokenizer train --vocab-size N -o tokenizer.json [options] FILE...\n"
           "       tnllm tokenizer convert TOKENIZER.model -o tokenizer.json\n"
           "       tnllm tokenizer encode (-m DIR|FILE | --tokenizer FILE) [-p TEXT | -f FILE] [--json] [--pieces]\n"
           "                              [--bos]\n"
           "       tnllm tokenizer decode (-m DIR|FILE | --tokenizer FILE) [IDS... | -f FILE] [--json]\n\n"
           "train: learns a SentencePiece-style BPE with byte fallback (paper section 4.2) from plain-text\n"
           "files (documents separated by blank lines) and JSON Lines files (.jsonl/.ndjson/.json, field\n"
           "\"text\"): <unk> <s> </s> = 0 1 2, <0x00>..<0xFF> = 3..258, characters, merges. Digits are split\n"
           "one by one and each CJK character is its own symbol. Writes an HF tokenizer.json (and, when the\n"
           "file is named tokenizer.json, a tokenizer_config.json beside it), creating its directory.\n"
           "  --vocab-size N         total vocabulary size (default 32000; the released models use 64000)\n"
           "  --min-frequency K      a merge needs a pair seen at least K times (default 2)\n"
           "  --coverage C           share of character occurrences that get their own piece; the rest\n"
           "                         fall back to bytes (default 0.9995)\n"
           "  --special TOKEN        an extra control token, appended at the end (repeatable)\n"
           "  -o, --output FILE      the tokenizer.json to write\n"
           "  -t, --threads N        threads for counting (default: all cores)\n\n"
           "convert: reads a SentencePiece BPE model (the tokenizer.model of LLaMA, Baichuan or\n"
           "TransNormerLLM; identity normalization, byte fallback) or a tokenizer.json and writes the\n"
           "LLaMA-style HF tokenizer.json (and tokenizer_config.json beside it when so named) with the\n"
           "same ids; merges follow the piece scores as the HF converter builds them.\n"
           "  -o, --output FILE      the tokenizer.json to write\n\n"
           "encode: prints the ids of the text (-p, -f or standard input) separated by spaces, one line.\n"
           "decode: writes the text of the ids (arguments, -f or standard input; spaces, commas and\n"
           "brackets separate them) to standard output, byte for byte.\n"
           "  -m, --model DIR|FILE   a tokenizer file, or the tokenizer of a model directory\n"
           "                         (DIR/tokenizer.json, else DIR/tokenizer.model, else byte-level)\n"
           "  --tokenizer FILE       a tokenizer.json, or a SentencePiece model (*.model)\n"
           "  -p, --prompt TEXT      text to encode\n"
           "  -f, --file FILE        read the text (encode) or the ids (decode) from FILE\n"
           "  --json                 encode: a JSON array; decode: a JSON string (bytes that are not\n"
           "                         UTF-8 become \\u00XX)\n"
           "  --pieces               encode: print the pieces (\"▁the\") instead of the ids\n"
           "  --bos                  encode: start with <s> (id 1)\n");
}

static char *read_stream(FILE *in, size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = tn_malloc(cap + 1);
    while ((got = fread(buf + n, 1, cap - n, in)) > 0) {
        n += got;
        if (n == cap && !(buf = realloc(buf, (cap *= 2) + 1))) tn_die("out of memory reading standard input");
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The input text: -p, -f FILE, or standard input. */
static char *read_input(const char *command, const char *prompt, const char *file, size_t *len) {
    if (prompt) {
        *len = strlen(prompt);
        char *copy = tn_malloc(*len + 1);
        memcpy(copy, prompt, *len + 1);
        return copy;
    }
    if (!file) return read_stream(stdin, len);
    /* `-f ids.txt > ids.txt`: the shell emptied the file before tnllm started, as cat refuses it */
    if (data_fd_is_file(STDOUT_FILENO, file))
        tn_die("tnllm tokenizer %s: standard output is the input file %s: redirect it to another file", command, file);
    char *data;
    TnError err;
    if (tn_read_file(file, &data, len, &err)) tn_die("%s", err.msg);
    return data;
}

static TnTokenizer *open_tokenizer(const char *model_dir, const char *path, const char *command) {
    TnTokenizer *tok;
    TnError err;
    if (!model_dir && !path) tn_die_usage("tnllm tokenizer %s: give -m DIR or --tokenizer FILE", command);
    if (path ? tn_tokenizer_load(&tok, path, &err) : tn_tokenizer_for_model(&tok, model_dir, &err))
        tn_die("%s", err.msg);
    return tok;
}

/* Writes s as a JSON string literal; bytes that are not UTF-8 as \u00XX. */
static void print_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        TnChar ch = tn_utf8_next((const unsigned char *)s + i, n - i);
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20 || c == 0x7f || ch.invalid) printf("\\u%04x", c);
        else fwrite(s + i, 1, ch.length, stdout);
        i += ch.invalid ? 1 : ch.length;
    }
    putchar('"');
}

/* The tokenizer_config.json written beside out when out is named
 * tokenizer.json, into config (capacity cap); NULL for another name. */
static const char *config_path(const char *out, char *config, size_t cap) {
    const char *slash = strrchr(out, '/'), *base = slash ? slash + 1 : out;
    if (strcmp(base, "tokenizer.json") != 0) return NULL;
    snprintf(config, cap, "%.*stokenizer_config.json", (int)(base - out), out);
    return config;
}

/* Checks, before any work, that out and its tokenizer_config.json can be
 * written (creating their directory) and replace none of the inputs. */
static void check_outputs(const char *command, const char *const *inputs, int n_inputs, const char *out) {
    char config[4200];
    const char *outputs[] = {out, config_path(out, config, sizeof config)};
    data_check_outputs(command, inputs, n_inputs, outputs, 2);
}

/* Writes out and, when it is named tokenizer.json, a tokenizer_config.json
 * beside it (check_outputs made their directory). */
static void write_tokenizer(const TnBpe *bpe, const char *out) {
    TnError err;
    char config[4200];
    if (tn_hf_json_write(bpe, out, &err)) tn_die("%s", err.msg);
    if (config_path(out, config, sizeof config) && tn_hf_config_write(bpe, config, &err)) tn_die("%s", err.msg);
}

static int run_train(int argc, char **argv) {
    TnTrainOptions opt = tn_train_defaults();
    const char *out = NULL;
    const char **files = tn_calloc((size_t)argc, sizeof *files), **specials = tn_calloc((size_t)argc, sizeof *specials);
    int n_files = 0;
    TnArgs a;
    args_init(&a, "tokenizer train", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); free(files); free(specials); return 0; }
        else if (args_is(&a, NULL, "--vocab-size")) opt.vocab_size = (int)args_int(&a, 260, 1 << 24);
        else if (args_is(&a, NULL, "--min-frequency")) opt.min_frequency = args_int(&a, 1, (long long)1 << 62);
        else if (args_is(&a, NULL, "--coverage")) opt.character_coverage = args_double(&a, 0, 1);
        else if (args_is(&a, NULL, "--special")) specials[opt.n_specials++] = args_value(&a);
        else if (args_is(&a, "-o", "--output")) out = args_value(&a);
        else if (args_is(&a, "-t", "--threads")) opt.threads = (int)args_int(&a, 1, 4096);
        else if (args_current(&a)[0] != '-') files[n_files++] = args_current(&a);
        else args_unknown(&a);
    }
    args_require(&a, out, "-o FILE");
    if (n_files == 0) tn_die_usage("tnllm tokenizer train: give at least one text or JSONL file");
    check_outputs(a.command, files, n_files, out);
    opt.specials = specials;
    opt.progress = 1;
    TnBpe bpe;
    TnTrainStats s;
    TnError err;
    if (tn_bpe_train_files(&bpe, files, n_files, &opt, &s, &err)) tn_die("%s", err.msg);
    write_tokenizer(&bpe, out);
    printf("read %.1f MB: %lld documents, %lld words (%lld distinct) in %.2f s (%.1f MB/s)\n", s.bytes / 1e6,
           s.documents, s.words, s.distinct_words, s.count_seconds, s.bytes / 1e6 / s.count_seconds);
    printf("vocabulary %d: %lld characters, %lld merges in %.2f s; wrote %s\n", bpe.vocab_size, s.characters,
           s.merges, s.merge_seconds, out);
    if (bpe.vocab_size < opt.vocab_size)
        fprintf(stderr, "tnllm tokenizer train: warning: the vocabulary is %d, not %d: %lld merges, then no pair of "
                "symbols occurred %lld or more times (--min-frequency): too little text\n", bpe.vocab_size,
                opt.vocab_size, s.merges, (long long)opt.min_frequency);
    else if (s.merges == 0) /* CJK text: each character is a symbol of its own, and a piece */
        fprintf(stderr, "tnllm tokenizer train: warning: %lld characters filled the vocabulary of %d: 0 merges, a "
                "character-level tokenizer (raise --vocab-size, or lower --coverage)\n", s.characters, opt.vocab_size);
    tn_bpe_free(&bpe);
    free(files);
    free(specials);
    return 0;
}

static int run_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    TnArgs a;
    args_init(&a, "tokenizer convert", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, "-o", "--output")) out = args_value(&a);
        else if (args_current(&a)[0] != '-' && !in) in = args_current(&a);
        else args_unknown(&a);
    }
    args_require(&a, out, "-o FILE");
    if (!in) tn_die_usage("tnllm tokenizer convert: give the tokenizer file to convert (a SentencePiece .model)");
    check_outputs(a.command, &in, 1, out);
    TnTokenizer *tok;
    TnError err;
    if (tn_tokenizer_load(&tok, in, &err)) tn_die("%s", err.msg);
    const TnBpe *bpe = tn_tokenizer_bpe(tok);
    write_tokenizer(bpe, out);
    printf("%s: vocabulary %d, %d merges; wrote %s\n", in, bpe->vocab_size, bpe->n_merges, out);
    tn_tokenizer_free(tok);
    return 0;
}

static int run_encode(int argc, char **argv) {
    const char *model_dir = NULL, *path = NULL, *prompt = NULL, *file = NULL;
    int json = 0, pieces = 0, bos = 0;
    TnArgs a;
    args_init(&a, "tokenizer encode", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (args_is(&a, "-m", "--model")) model_dir = args_value(&a);
        else if (args_is(&a, NULL, "--tokenizer")) path = args_value(&a);
        else if (args_is(&a, "-p", "--prompt")) prompt = args_value(&a);
        else if (args_is(&a, "-f", "--file")) file = args_value(&a);
        else if (args_is(&a, NULL, "--json")) json = 1;
        else if (args_is(&a, NULL, "--pieces")) pieces = 1;
        else if (args_is(&a, NULL, "--bos")) bos = 1;
        else args_unknown(&a);
    }
    TnTokenizer *tok = open_tokenizer(model_dir, path, "encode");
    size_t len, n;
    char *text = read_input("encode", prompt, file, &len);
    TnEncoder *enc = tn_encoder_new(tok);
    const int32_t *ids = tn_encoder_encode(enc, text, len, &n);
    if (json) putchar('[');
    for (size_t i = 0; i < n + (size_t)bos; i++) {
        int32_t id = bos ? (i == 0 ? TN_TOKEN_BOS : ids[i - 1]) : ids[i];
        if (i) fputs(json ? ", " : " ", stdout);
        if (!pieces) printf("%d", id);
        else if (json) print_json_string(tn_tokenizer_piece(tok, id), strlen(tn_tokenizer_piece(tok, id)));
        else fputs(tn_tokenizer_piece(tok, id), stdout);
    }
    puts(json ? "]" : "");
    tn_encoder_free(enc);
    free(text);
    tn_tokenizer_free(tok);
    return 0;
}

/* Parses ids separated by spaces, commas or brackets. */
static int32_t *parse_ids(const char *s, int vocab_size, size_t *n) {
    size_t cap = 64;
    int32_t *ids = tn_malloc(cap * sizeof *ids);
    *n = 0;
    while (*s) {
        if (strchr(" \t\r\n,[]", *s)) { s++; continue; }
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= vocab_size)
            tn_die("tnllm tokenizer decode: '%.20s' is not an id of this vocabulary (0..%d)", s, vocab_size - 1);
        if (*n == cap && !(ids = realloc(ids, (cap *= 2) * sizeof *ids))) tn_die("out of memory for ids");
        ids[(*n)++] = (int32_t)v;
        s = end;
    }
    return ids;
}

static int run_decode(int argc, char **argv) {
    const char *model_dir = NULL, *path = NULL, *file = NULL;
    int json = 0;
    size_t args_len = 0;
    char *from_args = tn_calloc(1, 1);
    TnArgs a;
    args_init(&a, "tokenizer decode", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); free(from_args); return 0; }
        else if (args_is(&a, "-m", "--model")) model_dir = args_value(&a);
        else if (args_is(&a, NULL, "--tokenizer")) path = args_value(&a);
        else if (args_is(&a, "-f", "--file")) file = args_value(&a);
        else if (args_is(&a, NULL, "--json")) json = 1;
        else if (args_current(&a)[0] != '-' || (args_current(&a)[1] >= '0' && args_current(&a)[1] <= '9')) {
            size_t k = strlen(args_current(&a));
            if (!(from_args = realloc(from_args, args_len + k + 2))) tn_die("out of memory for ids");
            memcpy(from_args + args_len, args_current(&a), k);
            from_args[args_len + k] = ' ';
            from_args[args_len += k + 1] = '\0';
        } else args_unknown(&a);
    }
    TnTokenizer *tok = open_tokenizer(model_dir, path, "decode");
    size_t len, n;
    char *source = args_len ? from_args : read_input("decode", NULL, file, &len);
    int32_t *ids = parse_ids(source, tn_tokenizer_vocab_size(tok), &n);
    char *text = tn_tokenizer_decode(tok, ids, n, &len);
    if (json) {
        print_json_string(text, len);
        putchar('\n');
    } else {
        fwrite(text, 1, len, stdout);
    }
    if (source != from_args) free(source);
    free(from_args);
    free(text);
    free(ids);
    tn_tokenizer_free(tok);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") == 0) return run_train(argc - 1, argv + 1);
    if (strcmp(argv[1], "convert") == 0) return run_convert(argc - 1, argv + 1);
    if (strcmp(argv[1], "encode") == 0) return run_encode(argc - 1, argv + 1);
    if (strcmp(argv[1], "decode") == 0) return run_decode(argc - 1, argv + 1);
    tn_die_usage("tnllm tokenizer: unknown subcommand '%s' (train, convert, encode or decode)", argv[1]);
}
