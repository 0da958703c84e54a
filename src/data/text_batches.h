/* text_batches.h: the documents of plain-text and JSON Lines files, read
 * in batches of whole documents (SPEC section 4, "Corpus").
 *
 * A file whose name ends in .jsonl, .ndjson or .json is JSON Lines: every
 * non-blank line is an object whose string field "text" is one document
 * (other fields are ignored here). Any other file is plain text: documents
 * are separated by blank lines, and keep their inner line breaks. A plain
 * document longer than four batches is cut at a line break (or, without
 * one, anywhere) into separate documents, so memory stays bounded by the
 * batch size, not the file; a JSON line is never cut (memory then grows to
 * the longest line).
 *
 * Batches keep the input order; the texts live in the reader until the next
 * call. A line that is not a JSON object with a string "text" is an error
 * naming the file and the line, never a crash.
 */
#ifndef TN_DATA_TEXT_BATCHES_H
#define TN_DATA_TEXT_BATCHES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

typedef struct TnTextBatch {
    int count;
    const char **text; /* [count] document bytes (not NUL-terminated) */
    size_t *length;    /* [count] */
    size_t bytes;      /* input bytes this batch consumed */
} TnTextBatch;

typedef struct TnTextBatches {
    const char *const *paths; /* borrowed */
    int n_paths, current, jsonl;
    FILE *file;
    long long line_number;    /* lines of the current file consumed so far */
    char *raw;                /* unconsumed input of the current file */
    size_t raw_start, raw_end, raw_capacity;
    int at_eof;
    char *decoded;            /* JSON texts of the batch, back to back */
    size_t decoded_size, decoded_capacity;
    size_t *offset;           /* start of each document in raw or decoded */
    const char **text;
    size_t *length;
    int document_capacity;
    uint64_t total_bytes, bytes_read;
} TnTextBatches;

/* Checks that every file can be opened; total_bytes sums their sizes. */
int tn_text_batches_open(TnTextBatches *r, const char *const *paths, int n_paths, TnError *err);
/* Fills b with the next whole documents, about max_bytes of input. Returns
 * the count, 0 at the end, -1 on a read or JSON error. */
int tn_text_batches_next(TnTextBatches *r, TnTextBatch *b, size_t max_bytes, TnError *err);
void tn_text_batches_close(TnTextBatches *r);

#endif
