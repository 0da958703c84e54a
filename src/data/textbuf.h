/* textbuf.h: a growable byte buffer, reused across documents so that the
 * per-document work allocates only when a document is larger than any
 * before it. data is always NUL-terminated; the buffer owns it. */
#ifndef TN_DATA_TEXTBUF_H
#define TN_DATA_TEXTBUF_H

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

typedef struct TnTextBuf {
    char *data;
    size_t len, cap;
} TnTextBuf;

static inline void tn_textbuf_reserve(TnTextBuf *b, size_t cap) {
    if (cap + 1 <= b->cap) return;
    size_t grown = b->cap * 2 > cap + 1 ? b->cap * 2 : cap + 1;
    char *data = realloc(b->data, grown < 256 ? 256 : grown);
    if (!data) tn_die("out of memory growing a text buffer to %zu bytes", grown);
    b->data = data;
    b->cap = grown < 256 ? 256 : grown;
}

static inline void tn_textbuf_clear(TnTextBuf *b) {
    tn_textbuf_reserve(b, 0);
    b->len = 0;
    b->data[0] = '\0';
}

static inline void tn_textbuf_append(TnTextBuf *b, const char *s, size_t n) {
    tn_textbuf_reserve(b, b->len + n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void tn_textbuf_append_str(TnTextBuf *b, const char *s) { tn_textbuf_append(b, s, strlen(s)); }

static inline void tn_textbuf_free(TnTextBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#endif
