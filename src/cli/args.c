#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void args_init(TnArgs *a, const char *command, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->command = command;
    a->argc = argc;
    a->argv = argv;
    a->index = 0; /* argv[0] is the command name */
}

int args_next(TnArgs *a) {
    a->index++;
    a->flag = NULL;
    a->inline_value = NULL;
    return a->index < a->argc;
}

const char *args_current(const TnArgs *a) { return a->argv[a->index]; }

int args_is(TnArgs *a, const char *short_name, const char *long_name) {
    const char *arg = a->argv[a->index];
    if (short_name && strcmp(arg, short_name) == 0) { a->flag = short_name; return 1; }
    if (!long_name) return 0;
    size_t n = strlen(long_name);
    if (strncmp(arg, long_name, n) != 0) return 0;
    if (arg[n] == '\0') { a->flag = long_name; return 1; }
    if (arg[n] == '=') { a->flag = long_name; a->inline_value = arg + n + 1; return 1; }
    return 0;
}

const char *args_value(TnArgs *a) {
    if (a->inline_value) return a->inline_value;
    if (a->index + 1 >= a->argc) tn_die_usage("tnllm %s: %s needs a value", a->command, a->flag);
    return a->argv[++a->index];
}

/* v times the multiplier of a k/M/G suffix; sets errno to ERANGE when the
 * product does not fit a long long. */
static long long scaled(long long v, long long multiplier) {
    if (v > LLONG_MAX / multiplier || v < LLONG_MIN / multiplier) {
        errno = ERANGE;
        return v;
    }
    return v * multiplier;
}

long long args_int(TnArgs *a, long long min, long long max) {
    const char *flag = a->flag, *s = args_value(a);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* Accept k/M/G suffixes for token counts and sizes. */
    if (end != s && (*end == 'k' || *end == 'K')) { v = scaled(v, 1000); end++; }
    else if (end != s && *end == 'M') { v = scaled(v, 1000000); end++; }
    else if (end != s && *end == 'G') { v = scaled(v, 1000000000); end++; }
    if (errno || end == s || *end != '\0')
        tn_die_usage("tnllm %s: %s expects an integer, got '%s'", a->command, flag, s);
    if (v < min || v > max)
        tn_die_usage("tnllm %s: %s must be in [%lld, %lld], got %lld", a->command, flag, min, max, v);
    return v;
}

double args_double(TnArgs *a, double min, double max) {
    const char *flag = a->flag, *s = args_value(a);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0')
        tn_die_usage("tnllm %s: %s expects a number, got '%s'", a->command, flag, s);
    if (!(v >= min && v <= max))
        tn_die_usage("tnllm %s: %s must be in [%g, %g], got %g", a->command, flag, min, max, v);
    return v;
}

int args_length_list(TnArgs *a, long long *out, int max_count, long long min, long long max) {
    const char *flag = a->flag, *s = args_value(a);
    int count = 0;
    for (const char *item = s;; item++) {
        char *end;
        errno = 0;
        long long v = strtoll(item, &end, 10);
        if (end != item && (*end == 'k' || *end == 'K')) { v = scaled(v, 1024); end++; }
        else if (end != item && (*end == 'm' || *end == 'M')) { v = scaled(v, 1048576); end++; }
        if (errno || end == item || (*end != ',' && *end != '\0'))
            tn_die_usage("tnllm %s: %s expects comma-separated lengths such as 256,4K,1M, got '%s'", a->command, flag,
                         s);
        if (v < min || v > max)
            tn_die_usage("tnllm %s: %s: each length must be in [%lld, %lld], got %lld", a->command, flag, min, max, v);
        if (count == max_count) tn_die_usage("tnllm %s: %s takes at most %d lengths", a->command, flag, max_count);
        out[count++] = v;
        if (*end == '\0') return count;
        item = end;
    }
}

void args_unknown(const TnArgs *a) {
    const char *arg = a->argv[a->index];
    if (arg[0] == '-')
        tn_die_usage("tnllm %s: unknown option '%s' (see tnllm %s --help)", a->command, arg, a->command);
    tn_die_usage("tnllm %s: unexpected argument '%s' (see tnllm %s --help)", a->command, arg, a->command);
}

void args_require(const TnArgs *a, const void *value, const char *flag) {
    if (!value) tn_die_usage("tnllm %s: %s is required (see tnllm %s --help)", a->command, flag, a->command);
}
