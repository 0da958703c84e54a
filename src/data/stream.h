/* stream.h: line streams over plain, gzip and zstd files.
 *
 * The corpus (SPEC section 4) is JSON Lines, often compressed. The codec is
 * chosen by the file name: ".gz" is gzip (concatenated members allowed),
 * ".zst" is zstd (concatenated frames allowed), anything else is plain. "-"
 * reads standard input (plain).
 *
 * TnLineReader hands out one line at a time without its '\n' (a final line
 * without '\n' is still a line; a '\r' before the '\n' is kept: JSON treats
 * it as whitespace). The line lives in the reader's buffer until the next
 * call. A corrupt or truncated compressed stream is an error naming the file.
 *
 * TnStreamWriter compresses (by the same naming rule) into a TnAtomicFile:
 * nothing appears at the path until tn_stream_writer_commit succeeds, so a
 * killed run leaves no partial output.
 */
#ifndef TN_DATA_STREAM_H
#define TN_DATA_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"
#include "util/fileio.h"

typedef enum TnCodec { TN_CODEC_PLAIN, TN_CODEC_GZIP, TN_CODEC_ZSTD } TnCodec;

TnCodec tn_codec_for_path(const char *path);

typedef struct TnLineReader {
    char path[4096];
    TnCodec codec;
    FILE *fp;
    void *codec_state;       /* z_stream or ZSTD_DCtx, owned */
    unsigned char *in_buf;   /* compressed input; in_pos..in_len not yet consumed */
    size_t in_cap, in_pos, in_len;
    int zstd_pending;        /* inside an unfinished zstd frame */
    char *buf;               /* decompressed bytes not yet handed out */
    size_t buf_start, buf_end, buf_cap;
    int at_eof;
    long long line_number;   /* of the line last returned, from 1 */
    uint64_t compressed_bytes; /* bytes of the file read so far (for progress) */
    uint64_t file_bytes;       /* size of the file, 0 if unknown (stdin) */
} TnLineReader;

int tn_line_reader_open(TnLineReader *r, const char *path, TnError *err);
/* Returns 1 with *line (NUL-terminated, length *len) set, 0 at the end of the
 * stream, -1 on a read or decompression error. */
int tn_line_reader_next(TnLineReader *r, char **line, size_t *len, TnError *err);
void tn_line_reader_close(TnLineReader *r);

typedef struct TnStreamWriter {
    TnAtomicFile file;
    TnCodec codec;
    void *codec_state;       /* z_stream or ZSTD_CCtx, owned */
    unsigned char *out_buf;
    size_t out_cap;
    uint64_t bytes_in;       /* uncompressed bytes written */
} TnStreamWriter;

int tn_stream_writer_open(TnStreamWriter *w, const char *path, TnError *err);
int tn_stream_writer_write(TnStreamWriter *w, const void *data, size_t n, TnError *err);
/* Ends the compressed stream, then commits the file atomically. */
int tn_stream_writer_commit(TnStreamWriter *w, TnError *err);
/* Removes the temporary file; safe after a failed write or commit. */
void tn_stream_writer_abort(TnStreamWriter *w);

#endif
