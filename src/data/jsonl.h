/* jsonl.h: JSON Lines documents (SPEC section 4), read in batches.
 *
 * A corpus is one or more files (plain, .gz or .zst, see stream.h), one JSON
 * object per line with a string field "text" and any metadata fields, which
 * every command keeps. Lines holding only whitespace are skipped (they are
 * not documents). A line that is not a JSON object with a string "text" is
 * not a crash and not silently lost: commands send it to their rejects file
 * with the reason tn_doc_parse gives.
 *
 * Documents are read sequentially in batches (so that a batch can be worked
 * on by all cores and written back in input order: outputs are deterministic
 * and independent of the thread count). Each document has a corpus-wide
 * index counting from 0, stable across runs over the same inputs.
 */
#ifndef TN_DATA_JSONL_H
#define TN_DATA_JSONL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "data/stream.h"
#include "data/textbuf.h"

typedef struct TnJsonlReader {
    const char *const *paths;  /* borrowed */
    int n_paths, current;      /* current: the file being read */
    TnLineReader reader;
    int open;
    uint64_t total_bytes;      /* sum of the file sizes (0 if any is unknown) */
    uint64_t finished_bytes;   /* file bytes of the files already closed */
    long long n_documents;     /* documents handed out so far */
} TnJsonlReader;

typedef struct TnDocBatch {
    int count, capacity;
    TnTextBuf *lines;          /* (capacity) raw lines, reused across batches */
    long long *index;          /* corpus-wide document index */
    int *file;                 /* index into the reader's paths */
    long long *line_number;    /* from 1, within its file */
    size_t bytes;              /* sum of the line lengths */
} TnDocBatch;

int tn_jsonl_open(TnJsonlReader *c, const char *const *paths, int n_paths, TnError *err);
void tn_jsonl_close(TnJsonlReader *c);
/* File bytes read so far (compressed bytes for compressed files), for progress. */
uint64_t tn_jsonl_bytes_read(const TnJsonlReader *c);

void tn_doc_batch_init(TnDocBatch *b, int capacity);
void tn_doc_batch_free(TnDocBatch *b);
/* Fills b with up to its capacity of documents or about max_bytes of text.
 * Returns the count (0 at the end of the corpus) or -1 on a read error. */
int tn_jsonl_read_batch(TnJsonlReader *c, TnDocBatch *b, size_t max_bytes, TnError *err);

/* Whether the n bytes at s are only spaces, tabs and carriage returns (a
 * line that is not a document). */
int tn_line_is_blank(const char *s, size_t n);

/* Parses one line as a JSON object: on success *json is it (the caller
 * deletes it); on failure returns -1, *json is NULL and *reason a static
 * string naming the problem. A line holding a NUL byte or the escape
 * \u0000 is refused (the JSON library would end a string there), and so is
 * anything but whitespace after the object. */
int tn_json_object_parse(const char *line, size_t len, cJSON **json, const char **reason);

/* Parses one document line (tn_json_object_parse): on success *json is the
 * object (the caller deletes it) and *text points at its "text" string; on
 * failure returns -1 and *reason is a static string naming the problem. */
int tn_doc_parse(const char *line, size_t len, cJSON **json, cJSON **text, const char **reason);

/* Appends s (n bytes) as a JSON string literal, quotes included. Bytes that
 * are not valid UTF-8 are written as \u00XX (their Latin-1 reading), so the
 * result is always valid JSON. */
void tn_json_append_string(TnTextBuf *out, const char *s, size_t n);

/* Appends one rejects-file record and a newline:
 *   {"reason": R, "detail": D, "file": F, "line": N, "doc": <the line>}
 * where the line is embedded verbatim when it parsed as a JSON object
 * (doc_is_json) and is valid UTF-8, and as a string under "raw" otherwise,
 * so the rejects file is always valid JSON Lines. detail may be NULL. */
void tn_reject_append(TnTextBuf *out, const char *reason, const char *detail, const char *file,
                      long long line_number, const char *line, size_t len, int doc_is_json);

/* The steps every per-document function of pipeline.h takes, in one place:
 * tn_doc_open parses document i of b; on failure it appends the rejects
 * record (the parse reason, the raw line) to rejected and returns -1. */
int tn_doc_open(const TnJsonlReader *corpus, const TnDocBatch *b, int i, cJSON **json, cJSON **text,
                TnTextBuf *rejected);
/* Appends the rejects record of document i (which parsed) with reason and
 * detail (may be NULL). */
void tn_doc_reject(const TnJsonlReader *corpus, const TnDocBatch *b, int i, const char *reason, const char *detail,
                   TnTextBuf *rejected);
/* Appends json printed on one line, and a newline. */
void tn_doc_append_json(TnTextBuf *out, const cJSON *json);
/* Appends document i's line byte for byte, and a newline. */
void tn_doc_append_line(TnTextBuf *out, const TnDocBatch *b, int i);

#endif
