/* cmd_data.h: flag handling shared by the `tnllm data` subcommands, and the
 * check of output paths that they and `tnllm tokenizer` make before any work. */
#ifndef TN_CLI_CMD_DATA_H
#define TN_CLI_CMD_DATA_H

#include "cli/args.h"
#include "data/pipeline.h"

/* How a command reads its inputs, said once, to data_flags_init: --help's
 * line on the inputs (data_flags_help) and the refusal of stdin
 * (data_flags_finish) both follow it, so the two cannot disagree. */
typedef enum DataReads {
    DATA_READS_ONCE,  /* one streaming pass: "-" reads stdin */
    DATA_READS_TWICE, /* two passes over the same files: "-" is refused, stdin cannot be read again */
} DataReads;

/* Flags every streaming data command takes; data_flags_init also starts
 * the argument walk (args_init), offer each argument to data_flags_parse,
 * then call data_flags_finish. */
typedef struct DataFlags {
    const char **inputs; /* positional arguments ("-" is stdin) */
    int n_inputs;
    const char *output, *rejects;
    const char *extra_output; /* a command's own output beside them (clean's --summary), NULL: none */
    char default_rejects[4200];
    int threads;
    DataReads reads;
} DataFlags;

void data_flags_init(DataFlags *f, TnArgs *a, const char *command, DataReads reads, int argc, char **argv);
/* Consumes the current argument if it is an input, -o, --rejects or -t. */
int data_flags_parse(DataFlags *f, TnArgs *a);
/* Requires inputs and (if output_required) -o; dies if an input is "-" and
 * the command reads its inputs twice; sets the default rejects path and
 * the OpenMP thread count; checks the output, rejects and extra output
 * paths (data_check_outputs); fills p. */
void data_flags_finish(DataFlags *f, TnArgs *a, int output_required, const char *label, TnPipeline *p);
void data_flags_free(DataFlags *f);

/* Prints the lines of --help for the shared flags; the inputs' line says
 * what f->reads makes of "-". */
void data_flags_help(const DataFlags *f);

/* Whether paths a and b name one file: the same device and inode where both
 * exist, else the same path once their directories are resolved (a file not
 * written yet). */
int data_same_file(const char *a, const char *b);
/* Whether the open descriptor fd (standard input or output) is the file at path. */
int data_fd_is_file(int fd, const char *path);

/* Dies, naming the paths, unless every output (NULL ones skipped) can be
 * written without harm and before any work is done: an output that is the
 * same file as an input or an earlier output (replaced when written, the
 * input lost), or a directory, is refused; its directory is created and must
 * be writable. command prefixes the messages ("data clean"). */
void data_check_outputs(const char *command, const char *const *inputs, int n_inputs, const char *const *outputs,
                        int n_outputs);

#endif
