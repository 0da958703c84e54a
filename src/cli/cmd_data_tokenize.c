/* tnllm data tokenize: a corpus turned into token shards. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cmd_data.h"
#include "cli/commands.h"
#include "data/tokenize.h"

static void usage(void) {
    printf("usage: tnllm data tokenize (-m DIR | --tokenizer FILE) -o PREFIX [--shard-tokens N] [-t N] FILE...\n\n"
           "Encodes every document of the input files, in order, each followed by </s> (id 2), into token\n"
           "shards PREFIX_000000.bin, PREFIX_000001.bin, ... (SPEC section 4: 256 int32 header, uint32 ids).\n"
           "Inputs are JSON Lines (.jsonl/.ndjson/.json, one document per line in \"text\") or plain text\n"
           "(documents separated by blank lines). Documents are encoded on all threads; the shards do not\n"
           "depend on the thread count. The prefix's directory is created; shards of an earlier run with\n"
           "the same prefix numbered past this run's are removed.\n"
           "  -m, --model DIR        the tokenizer of a model directory (DIR/tokenizer.json, else\n"
           "                         DIR/tokenizer.model, else the byte-level tokenizer)\n"
           "  --tokenizer FILE       a tokenizer.json, or a SentencePiece BPE model (*.model)\n"
           "  -o, --output PREFIX    shard path prefix\n"
           "  --shard-tokens N       tokens per shard (default 100M, as llm.c; k/M/G suffixes; at most\n"
           "                         2147483647, the int32 count of the shard header)\n"
           "  -t, --threads N        encoding threads (default: all cores)\n");
}

/* Dies if an input is one of the shards PREFIX names ("PREFIX_000003.bin"
 * however spelt): this run would write over it, or remove it as a shard of
 * an earlier run. */
static void check_inputs(const char *const *inputs, int n_inputs, const char *prefix) {
    for (int i = 0; i < n_inputs; i++) {
        const char *name = inputs[i], *underscore = strrchr(name, '_');
        size_t digits = underscore ? strspn(underscore + 1, "0123456789") : 0;
        if (!digits || digits > 9 || strcmp(underscore + 1 + digits, ".bin") != 0) continue; /* 9: an int */
        char shard[4200];
        tn_shard_name(shard, sizeof shard, prefix, atoi(underscore + 1));
        if (data_same_file(name, shard))
            tn_die("tnllm data tokenize: the input %s is the shard %s of -o %s, which this run writes or removes: "
                   "give another prefix", name, shard, prefix);
    }
}

int cmd_data_tokenize(int argc, char **argv) {
    const char *model_dir = NULL, *path = NULL;
    const char **inputs = tn_calloc((size_t)argc, sizeof *inputs);
    int n_inputs = 0;
    TnTokenizeOptions opt = {NULL, 100000000, 0, 1};
    TnArgs a;
    args_init(&a, "data tokenize", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); free(inputs); return 0; }
        else if (args_is(&a, "-m", "--model")) model_dir = args_value(&a);
        else if (args_is(&a, NULL, "--tokenizer")) path = args_value(&a);
        else if (args_is(&a, "-o", "--output")) opt.output = args_value(&a);
        else if (args_is(&a, NULL, "--shard-tokens")) opt.shard_tokens = (size_t)args_int(&a, 1, INT32_MAX); /* a shard's count is int32 */
        else if (args_is(&a, "-t", "--threads")) opt.threads = (int)args_int(&a, 1, 4096);
        else if (args_current(&a)[0] != '-') inputs[n_inputs++] = args_current(&a);
        else args_unknown(&a);
    }
    args_require(&a, opt.output, "-o PREFIX");
    if (!model_dir && !path) tn_die_usage("tnllm data tokenize: give -m DIR or --tokenizer FILE");
    if (n_inputs == 0) tn_die_usage("tnllm data tokenize: no input files (see tnllm data tokenize --help)");
    check_inputs(inputs, n_inputs, opt.output);
    TnTokenizer *tok;
    TnError err;
    if (path ? tn_tokenizer_load(&tok, path, &err) : tn_tokenizer_for_model(&tok, model_dir, &err))
        tn_die("%s", err.msg);
    TnTokenizeStats s;
    if (tn_data_tokenize(tok, inputs, n_inputs, &opt, &s, &err)) tn_die("%s", err.msg);
    char first[4200], last[4200];
    tn_shard_name(first, sizeof first, opt.output, 0);
    tn_shard_name(last, sizeof last, opt.output, s.shards > 0 ? s.shards - 1 : 0);
    printf("%lld documents, %.1f MB -> %lld tokens (%.2f bytes/token) in %.2f s (%.1f MB/s)\n", s.documents,
           s.bytes / 1e6, s.tokens, s.tokens ? s.bytes / (double)s.tokens : 0.0, s.seconds, s.bytes / 1e6 / s.seconds);
    if (s.shards > 0) printf("wrote %d shard%s: %s%s%s\n", s.shards, s.shards > 1 ? "s" : "", first,
                             s.shards > 1 ? " .. " : "", s.shards > 1 ? last : "");
    else printf("no documents: nothing written\n");
    if (s.stale_removed)
        printf("removed %d shard%s of an earlier run numbered past these\n", s.stale_removed, s.stale_removed > 1 ? "s" : "");
    free(inputs);
    tn_tokenizer_free(tok);
    return 0;
}
