#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int tn_fail(TnError *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void tn_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tnllm: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
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
