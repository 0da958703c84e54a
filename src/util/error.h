/* error.h: recoverable errors and fatal checks.
 *
 * Two kinds of failure exist in tnllm:
 *  - Bad input (a malformed file, a wrong shape, a full disk). Functions that
 *    can meet it return 0 on success and -1 on failure, and fill a TnError the
 *    caller owns with one line that names the file and what is wrong. Nothing
 *    is printed; the caller decides (the CLI prints and exits, tests compare).
 *  - Broken invariants and exhausted memory. These print file:line and a
 *    hint, then exit: continuing would only corrupt results.
 */
#ifndef TN_UTIL_ERROR_H
#define TN_UTIL_ERROR_H

#include <stddef.h>

typedef struct TnError {
    char msg[1024];
} TnError;

/* Formats msg into err (if err is not NULL) and returns -1, so that a
 * failing path can be written `return tn_fail(err, "...", ...);`. */
int tn_fail(TnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the message to stderr with one error prefix and exits with status
 * 1, a failure at run time. A message that names its command first,
 * "tnllm CMD: what", prints as "tnllm CMD: error: what"; any other as
 * "tnllm: error: what". */
void tn_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* tn_die for a wrong command line (an unknown option, a missing or malformed
 * value, options that do not go together): exits with status 2, so that a
 * script tells bad usage from a failed run. */
void tn_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* malloc/calloc that never return NULL: out of memory is fatal, with the
 * size that was asked for and the call site in the message. */
void *tn_malloc_at(size_t size, const char *file, int line);
void *tn_calloc_at(size_t count, size_t size, const char *file, int line);
#define tn_malloc(size) tn_malloc_at((size), __FILE__, __LINE__)
#define tn_calloc(count, size) tn_calloc_at((count), (size), __FILE__, __LINE__)

/* For invariants the program itself guarantees. */
#define TN_ASSERT(cond)                                                         \
    do {                                                                        \
        if (!(cond)) tn_die("%s:%d: internal error: %s", __FILE__, __LINE__, #cond); \
    } while (0)

#endif
