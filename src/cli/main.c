/* tnllm: one binary, one subcommand per job (llama.cpp-style flags). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "util/error.h"
#include "util/openmp_env.h"
#include "version.h" /* TN_BUILD_COMMIT, written by the Makefile */

typedef struct Command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"info", cmd_info, "print a model's configuration, parameter counts and memory needs"},
    {"init", cmd_init, "write a randomly initialised model (any Table 1 size or config.json)"},
    {"eval", cmd_eval, "mean loss and perplexity of a model on a token shard or a text file"},
    {"generate", cmd_generate, "generate text at a constant cost per token (streaming, interactive, saved states)"},
    {"train", cmd_train, "train a model on the CPU or a GPU, data parallel under mpirun (AdamW, resumable checkpoints)"},
    {"plot", cmd_plot, "draw the loss curve of a training run"},
    {"plan", cmd_plan, "the tensor/data-parallel and ZeRO layouts of a model that fit on N GPUs, memory per GPU"},
    {"data", cmd_data, "corpus pipeline of §4.1: tokenize, clean, dedup, score, filter, review (tnllm data --help)"},
    {"tokenizer", cmd_tokenizer, "train a BPE tokenizer (tokenizer.json), convert a SentencePiece model, encode, decode"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: tnllm <command> [options]   (tnllm <command> --help or tnllm help <command> for its "
                 "options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\ntnllm --version (-v, tnllm version): the commit and the optional parts this binary was built with\n"
                 "exit status: 0 success, 1 a failure at run time (a file that cannot be read, a model that does not\n"
                 "load), 2 bad usage (an unknown command or option, a missing or malformed value, options that do\n"
                 "not go together)\n");
}

static const Command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return &commands[i];
    return NULL;
}

static int unknown_command(const char *name) {
    fprintf(stderr, "tnllm: error: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}

/* What this binary was built from and with, for bug reports. */
static int version(void) {
    printf("tnllm, commit %s\nbuilt with: OpenMP, OpenBLAS", TN_BUILD_COMMIT);
#ifdef TN_CUDA
    printf(", CUDA (cuBLASLt)");
#endif
#ifdef TN_NCCL
    printf(", NCCL");
#endif
#ifdef TN_MPI
    printf(", MPI");
#endif
    printf("\n");
    return 0;
}

/* A command's status, made a failure if its stdout could not all be written
 * (a full disk, a closed pipe): printed results that are lost are not a
 * success. */
static int check_stdout(const char *command, int status) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return status;
    fprintf(stderr, "tnllm %s: error: cannot write to stdout: %s\n", command, errno ? strerror(errno) : "write error");
    return status ? status : 1;
}

int main(int argc, char **argv) {
    tn_openmp_env(argv); /* before any thread: may run the program again with OpenMP's spinning bounded */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (strcmp(argv[1], "help") == 0 && argc == 2)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "version") == 0)
        return check_stdout(argv[1], version());
    if (strcmp(argv[1], "help") == 0) { /* tnllm help CMD [SUB]: CMD [SUB] --help */
        const Command *c = find_command(argv[2]);
        if (!c) return unknown_command(argv[2]);
        char **args = tn_malloc((size_t)argc * sizeof *args), help[] = "--help";
        memcpy(args, argv + 2, (size_t)(argc - 2) * sizeof *args);
        args[argc - 2] = help;
        args[argc - 1] = NULL; /* as argv ends */
        int status = check_stdout(argv[2], c->run(argc - 1, args));
        free(args);
        return status;
    }
    const Command *c = find_command(argv[1]);
    if (!c) return unknown_command(argv[1]);
    return check_stdout(argv[1], c->run(argc - 1, argv + 1));
}
