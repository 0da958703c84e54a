/* tnllm data: the data pipeline of §4.1, one subcommand per step. */
#include "cli/cmd_data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "util/fileio.h"

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
    if (f->n_inputs == 0) tn_die_usage("tnllm %s: no input files (see tnllm %s --help)", a->command, a->command);
    if (output_required) args_require(a, f->output, "-o FILE");
    for (int i = 0; i < f->n_inputs && f->reads == DATA_READS_TWICE; i++)
        if (strcmp(f->inputs[i], "-") == 0)
            tn_die_usage("tnllm %s: reads its input twice, so it cannot read stdin (-): save it to a file first",
                         a->command);
    if (f->output && !f->rejects) {
        tn_rejects_path_for(f->output, f->default_rejects, sizeof f->default_rejects);
        f->rejects = f->default_rejects;
    }
    const char *outputs[] = {f->output, f->rejects, f->extra_output};
    data_check_outputs(a->command, f->inputs, f->n_inputs, outputs, 3);
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
           "  -o, --output FILE   kept documents (compressed by name: .gz/.zst; its directory is created;\n"
           "                      never an input's path)\n"
           "  --rejects FILE      dropped documents with \"reason\" and \"detail\" (default: the output\n"
           "                      name with .rejects before .jsonl)\n"
           "  -t, --threads N     threads (default: all cores)\n",
           f->reads == DATA_READS_TWICE ? "not stdin: read twice" : "- for stdin");
}

/* path with its directory resolved (symbolic links, "..", the current
 * directory), or as given where that directory does not exist. */
static void resolve_path(const char *path, char *out, size_t cap) {
    char dir[4200], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (tn_path_directory(path, dir, sizeof dir, NULL) || !realpath(dir, real)) snprintf(out, cap, "%s", path);
    else snprintf(out, cap, "%s/%s", strcmp(real, "/") == 0 ? "" : real, slash ? slash + 1 : path);
}

int data_fd_is_file(int fd, const char *path) {
    struct stat sf, sp;
    return fstat(fd, &sf) == 0 && stat(path, &sp) == 0 && sf.st_dev == sp.st_dev && sf.st_ino == sp.st_ino;
}

int data_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ra[PATH_MAX + 4200], rb[PATH_MAX + 4200];
    resolve_path(a, ra, sizeof ra);
    resolve_path(b, rb, sizeof rb);
    return strcmp(ra, rb) == 0;
}

void data_check_outputs(const char *command, const char *const *inputs, int n_inputs, const char *const *outputs,
                        int n_outputs) {
    for (int i = 0; i < n_outputs; i++) {
        const char *out = outputs[i];
        if (!out) continue;
        struct stat st;
        int exists = stat(out, &st) == 0;
        if (exists && S_ISDIR(st.st_mode))
            tn_die("tnllm %s: the output %s is a directory: give the path of a file", command, out);
        /* written to a temporary file renamed over it: a device or FIFO (/dev/null, /dev/stdout) would be replaced */
        if (exists && !S_ISREG(st.st_mode))
            tn_die("tnllm %s: the output %s is not a regular file (a device, FIFO or socket), which the rename that "
                   "writes it would replace: give the path of a file",
                   command, out);
        /* the directory first: a path through one not made yet ("new/../in.jsonl") resolves only then */
        TnError err;
        if (tn_mkdir_parent(out, &err)) tn_die("tnllm %s: %s", command, err.msg);
        char dir[4200];
        if (tn_path_directory(out, dir, sizeof dir, &err)) tn_die("tnllm %s: %s", command, err.msg);
        if (access(dir, W_OK) != 0)
            tn_die("tnllm %s: cannot write %s in the directory %s: %s", command, out, dir, strerror(errno));
        for (int k = 0; k < n_inputs; k++) {
            int is_stdin = strcmp(inputs[k], "-") == 0; /* `- -o x.jsonl < x.jsonl` */
            if (is_stdin ? data_fd_is_file(STDIN_FILENO, out) : data_same_file(out, inputs[k]))
                tn_die("tnllm %s: the output %s is the same file as the input %s: writing it would replace the "
                       "input; write to another path", command, out, is_stdin ? "- (standard input)" : inputs[k]);
        }
        for (int k = 0; k < i; k++)
            if (outputs[k] && data_same_file(out, outputs[k]))
                tn_die("tnllm %s: the outputs %s and %s are the same file: give each its own path", command,
                       outputs[k], out);
    }
}
