#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tn_fail(TnError *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void die(int status, const char *fmt, va_list ap) __attribute__((noreturn));
static void die(int status, const char *fmt, va_list ap) {
    char msg[8192];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* "tnllm CMD: what" already names its command: "error:" goes after it, not a second "tnllm" before it */
    const char *named = strncmp(msg, "tnllm ", 6) == 0 ? strstr(msg, ": ") : NULL;
    if (named) fprintf(stderr, "%.*s: error: %s\n", (int)(named - msg), msg, named + 2);
    else fprintf(stderr, "tnllm: error: %s\n", msg);
    exit(status);
}

void tn_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    die(1, fmt, ap);
}

void tn_die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    die(2, fmt, ap);
}

void *tn_malloc_at(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) tn_die("%s:%d: out of memory allocating %zu bytes", file, line, size);
    return p;
}

void *tn_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) tn_die("%s:%d: out of memory allocating %zu x %zu bytes", file, line, count, size);
    return p;
}
