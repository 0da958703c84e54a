/* tnllm data: the data pipeline of §4.1, one subcommand per step. */
#include "cli/cmd_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

typedef struct DataCommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} DataCommand;

static const DataCommand data_commands[] = {
    {"tokenize", cmd_data_tokenize, "text/JSONL corpus -> token shards (SPEC section 4), in parallel"},
    {"clean", cmd_data_clean, "rule-based cleaning (the six rules of §4.1) and quality filters on JSONL"},
    {"dedup", cmd_data_dedup, "exact and MinHash-LSH near-duplicate removal, document or line level"},
    {"score", cmd_data_score, "perplexity of every document under an evaluation model (self-cleaning)"},
    {"filter", cmd_data_filter, "drop documents by perplexity percentiles per source or language"},
    {"review", cmd_data_review, "HTML page of sampled kept and dropped documents for human verdicts"},
    {"bench", cmd_data_bench, "MB/s per core of cleaning and MinHash signatures"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: tnllm data <command> [options]   (tnllm data <command> --help for its options)\n\n"
                 "Corpus files are JSON Lines with a \"text\" field (metadata fields are kept), plain or\n"
                 ".gz/.zst compressed; outputs are compressed by their names and written atomically.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof data_commands / sizeof data_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", data_commands[i].name, data_commands[i].summary);
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof data_commands / sizeof data_commands[0]; i++)
        if (strcmp(argv[1], data_commands[i].name) == 0) return data_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tnllm data: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

void data_flags_init(DataFlags *f, TnArgs *a, const char *command, DataReads reads, int argc, char **argv) {
    memset(f, 0, sizeof *f);
    f->reads = reads;
    f->inputs = tn_calloc((size_t)argc + 1, sizeof *f->inputs);
    args_init(a, command, argc, argv);
}

int data_flags_parse(DataFlags *f, TnArgs *a) {
    const char *arg = args_current(a);
    if (arg[0] != '-' || strcmp(arg, "-") == 0) f->inputs[f->n_inputs++] = arg;
    else if (args_is(a, "-o", "--output")) f->output = args_value(a);
    else if (args_is(a, NULL, "--rejects")) f->rejects = args_value(a);
    else if (args_is(a, "-t", "--threads")) f->threads = (int)args_int(a, 1, 4096);
    else return 0;
    return 1;
}

void data_flags_finish(DataFlags *f, TnArgs *a, int output_required, const char *label, TnPipeline *p) {
    if (f->n_inputs == 0) tn_die("tnllm %s: no input files (see tnllm %s --help)", a->command, a->command);
    if (output_required) args_require(a, f->output, "-o FILE");
    for (int i = 0; i < f->n_inputs && f->reads == DATA_READS_TWICE; i++)
        if (strcmp(f->inputs[i], "-") == 0)
            tn_die("tnllm %s: reads its input twice, so it cannot read stdin (-): save it to a file first", a->command);
    if (f->output && !f->rejects) {
        tn_rejects_path_for(f->output, f->default_rejects, sizeof f->default_rejects);
        f->rejects = f->default_rejects;
    }
    memset(p, 0, sizeof *p);
    p->inputs = f->inputs;
    p->n_inputs = f->n_inputs;
    p->output = f->output;
    p->rejects = f->rejects;
    p->label = label;
    p->threads = f->threads;
}

void data_flags_free(DataFlags *f) { free(f->inputs); }

void data_flags_help(const DataFlags *f) {
    printf("  FILE...             input JSONL files (.gz/.zst by name; %s)\n"
           "  -o, --output FILE   kept documents (compressed by name: .gz/.zst)\n"
           "  --rejects FILE      dropped documents with \"reason\" and \"detail\" (default: the output\n"
           "                      name with .rejects before .jsonl)\n"
           "  -t, --threads N     threads (default: all cores)\n",
           f->reads == DATA_READS_TWICE ? "not stdin: read twice" : "- for stdin");
}
