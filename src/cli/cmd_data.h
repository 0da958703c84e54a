/* cmd_data.h: flag handling shared by the `tnllm data` subcommands. */
#ifndef TN_CLI_CMD_DATA_H
#define TN_CLI_CMD_DATA_H

#include "cli/args.h"
#include "data/pipeline.h"

/* Flags every streaming data command takes; data_flags_init also starts
 * the argument walk (args_init), offer each argument to data_flags_parse,
 * then call data_flags_finish. */
typedef struct DataFlags {
    const char **inputs; /* positional arguments ("-" is stdin) */
    int n_inputs;
    const char *output, *rejects;
    char default_rejects[4200];
    int threads;
} DataFlags;

void data_flags_init(DataFlags *f, TnArgs *a, const char *command, int argc, char **argv);
/* Consumes the current argument if it is an input, -o, --rejects or -t. */
int data_flags_parse(DataFlags *f, TnArgs *a);
/* Requires inputs and (if output_required) -o; sets the default rejects path
 * and the OpenMP thread count; fills p. */
void data_flags_finish(DataFlags *f, TnArgs *a, int output_required, const char *label, TnPipeline *p);
/* For commands that read their inputs twice: dies if an input is "-" (stdin
 * cannot be read again). */
void data_flags_refuse_stdin(const DataFlags *f, const TnArgs *a);
void data_flags_free(DataFlags *f);

/* The lines of --help for the shared flags; STDIN is what the inputs' line
 * says of "-" (DATA_STDIN_READ or DATA_STDIN_REFUSED). */
#define DATA_STDIN_READ "; - for stdin"
#define DATA_STDIN_REFUSED "; not stdin: read twice"
#define DATA_FLAGS_HELP(STDIN)                                                                     \
    "  FILE...             input JSONL files (.gz/.zst by name" STDIN ")\n"                        \
    "  -o, --output FILE   kept documents (compressed by name: .gz/.zst)\n"                         \
    "  --rejects FILE      dropped documents with \"reason\" and \"detail\" (default: the output\n"  \
    "                      name with .rejects before .jsonl)\n"                                     \
    "  -t, --threads N     threads (default: all cores)\n"

#endif
