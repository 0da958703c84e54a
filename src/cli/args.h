/* args.h: llama.cpp-style flag parsing shared by every subcommand.
 *
 * A command walks its arguments with args_next() and, for the current one,
 * tries each flag it knows:
 *     while (args_next(&a)) {
 *         if (args_is(&a, "-m", "--model")) model = args_value(&a);
 *         else if (args_is(&a, NULL, "--ctx")) ctx = args_int(&a, 1, 1 << 24);
 *         else args_unknown(&a);
 *     }
 * "--flag=value" and "--flag value" are both accepted. Bad or missing values
 * end the program with a message naming the command and the flag, and
 * status 2 (tn_die_usage: bad usage, where a failed run exits 1).
 */
#ifndef TN_CLI_ARGS_H
#define TN_CLI_ARGS_H

typedef struct TnArgs {
    const char *command; /* e.g. "eval", for messages */
    int argc;
    char **argv;
    int index;           /* current argument */
    const char *flag;    /* the matched flag, for messages */
    const char *inline_value; /* the part after '=' in --flag=value */
} TnArgs;

void args_init(TnArgs *a, const char *command, int argc, char **argv);
/* Advances to the next argument; 0 when none is left. */
int args_next(TnArgs *a);
/* The current argument as it was written. */
const char *args_current(const TnArgs *a);
/* Non-zero if the current argument is short_name or long_name (either may
 * be NULL); also matches --long=value. */
int args_is(TnArgs *a, const char *short_name, const char *long_name);
/* The value of the matched flag (consumes the next argument if needed). */
const char *args_value(TnArgs *a);
long long args_int(TnArgs *a, long long min, long long max);
double args_double(TnArgs *a, double min, double max);
/* The value of the matched flag as a comma-separated list of lengths
 * (sequence lengths, contexts) with k/K = 1024 and m/M = 1048576 suffixes,
 * e.g. "256,4K,1M"; writes up to max_count into out and returns how many.
 * Dies on a malformed item, one outside [min, max] or more than max_count. */
int args_length_list(TnArgs *a, long long *out, int max_count, long long min, long long max);
/* Dies with "unknown option" (or "unexpected argument") and a hint. */
void args_unknown(const TnArgs *a) __attribute__((noreturn));
/* Dies unless value is set: "tnllm <cmd>: <flag> is required". */
void args_require(const TnArgs *a, const void *value, const char *flag);

#endif
