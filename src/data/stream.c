#include "data/stream.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "util/fileio.h"

#define STREAM_CHUNK (1u << 18)

TnCodec tn_codec_for_path(const char *path) {
    if (tn_path_ends_with(path, ".gz")) return TN_CODEC_GZIP;
    if (tn_path_ends_with(path, ".zst")) return TN_CODEC_ZSTD;
    return TN_CODEC_PLAIN;
}

int tn_line_reader_open(TnLineReader *r, const char *path, TnError *err) {
    memset(r, 0, sizeof *r);
    if (strlen(path) >= sizeof r->path) return tn_fail(err, "%s: path too long", path);
    strcpy(r->path, path);
    int is_stdin = strcmp(path, "-") == 0;
    r->codec = is_stdin ? TN_CODEC_PLAIN : tn_codec_for_path(path);
    r->fp = is_stdin ? stdin : fopen(path, "rb");
    if (!r->fp) return tn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (!is_stdin && fstat(fileno(r->fp), &st) == 0) {
        if (S_ISDIR(st.st_mode)) { /* fopen opens a directory; only the first read would fail */
            fclose(r->fp);
            r->fp = NULL;
            return tn_fail(err, "%s: is a directory, not a file", path);
        }
        if (S_ISREG(st.st_mode)) r->file_bytes = (uint64_t)st.st_size;
    }
    r->buf_cap = 2 * STREAM_CHUNK;
    r->buf = tn_malloc(r->buf_cap + 1);
    if (r->codec != TN_CODEC_PLAIN) {
        r->in_cap = STREAM_CHUNK;
        r->in_buf = tn_malloc(r->in_cap);
    }
    if (r->codec == TN_CODEC_GZIP) {
        z_stream *z = tn_calloc(1, sizeof *z);
        r->codec_state = z;
        /* 15 + 32: a gzip or zlib header, detected automatically. */
        if (inflateInit2(z, 15 + 32) != Z_OK) {
            tn_line_reader_close(r);
            return tn_fail(err, "%s: cannot start gzip decompression", path);
        }
    } else if (r->codec == TN_CODEC_ZSTD) {
        r->codec_state = ZSTD_createDCtx();
        TN_ASSERT(r->codec_state);
    }
    return 0;
}

/* Reads raw file bytes into in_buf (compressed codecs). Returns the count. */
static size_t read_compressed(TnLineReader *r, TnError *err, int *failed) {
    size_t n = fread(r->in_buf, 1, r->in_cap, r->fp);
    if (n == 0 && ferror(r->fp)) *failed = tn_fail(err, "%s: read failed: %s", r->path, strerror(errno));
    r->compressed_bytes += n;
    return n;
}

static int fill_gzip(TnLineReader *r, size_t room, TnError *err) {
    z_stream *z = r->codec_state;
    int failed = 0;
    if (room > UINT_MAX) room = UINT_MAX; /* zlib counts in uInt (a line over 4 GiB fills in pieces) */
    z->next_out = (Bytef *)(r->buf + r->buf_end);
    z->avail_out = (uInt)room;
    while (z->avail_out == room) {
        if (z->avail_in == 0) {
            size_t n = read_compressed(r, err, &failed);
            if (failed) return -1;
            if (n == 0) {
                /* A clean end is at a member boundary: total_in is 0 right after inflateReset. */
                if (z->total_in != 0) return tn_fail(err, "%s: truncated gzip stream", r->path);
                r->at_eof = 1;
                return 0;
            }
            z->next_in = r->in_buf;
            z->avail_in = (uInt)n;
        }
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            inflateReset(z); /* concatenated members (e.g. `cat a.gz b.gz`) */
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return tn_fail(err, "%s: corrupt gzip data: %s", r->path, z->msg ? z->msg : "inflate failed");
        }
    }
    r->buf_end += room - z->avail_out;
    return 0;
}

static int fill_zstd(TnLineReader *r, size_t room, TnError *err) {
    ZSTD_DCtx *d = r->codec_state;
    int failed = 0;
    ZSTD_outBuffer out = {r->buf + r->buf_end, room, 0};
    while (out.pos == 0) {
        if (r->in_pos == r->in_len) {
            r->in_len = read_compressed(r, err, &failed);
            r->in_pos = 0;
            if (failed) return -1;
            if (r->in_len == 0) {
                /* ZSTD_decompressStream returns 0 exactly when a frame is complete. */
                if (r->zstd_pending) return tn_fail(err, "%s: truncated zstd stream", r->path);
                r->at_eof = 1;
                return 0;
            }
        }
        ZSTD_inBuffer in = {r->in_buf, r->in_len, r->in_pos};
        size_t rc = ZSTD_decompressStream(d, &out, &in);
        if (ZSTD_isError(rc)) return tn_fail(err, "%s: corrupt zstd data: %s", r->path, ZSTD_getErrorName(rc));
        r->zstd_pending = rc != 0;
        r->in_pos = in.pos;
    }
    r->buf_end += out.pos;
    return 0;
}

/* Makes room after buf_end (moving pending bytes to the front, growing the
 * buffer for long lines) and decompresses or reads more bytes into it. */
static int fill(TnLineReader *r, TnError *err) {
    if (r->buf_start > 0) {
        memmove(r->buf, r->buf + r->buf_start, r->buf_end - r->buf_start);
        r->buf_end -= r->buf_start;
        r->buf_start = 0;
    }
    if (r->buf_cap - r->buf_end < STREAM_CHUNK) {
        r->buf_cap = 2 * r->buf_cap;
        r->buf = realloc(r->buf, r->buf_cap + 1);
        if (!r->buf) tn_die("out of memory growing the line buffer of %s to %zu bytes", r->path, r->buf_cap);
    }
    size_t room = r->buf_cap - r->buf_end;
    if (r->codec == TN_CODEC_GZIP) return fill_gzip(r, room, err);
    if (r->codec == TN_CODEC_ZSTD) return fill_zstd(r, room, err);
    size_t n = fread(r->buf + r->buf_end, 1, room, r->fp);
    if (n == 0) {
        if (ferror(r->fp)) return tn_fail(err, "%s: read failed: %s", r->path, strerror(errno));
        r->at_eof = 1;
    }
    r->buf_end += n;
    r->compressed_bytes += n;
    return 0;
}

int tn_line_reader_next(TnLineReader *r, char **line, size_t *len, TnError *err) {
    size_t scanned = r->buf_start;
    for (;;) {
        char *nl = memchr(r->buf + scanned, '\n', r->buf_end - scanned);
        if (nl) {
            *line = r->buf + r->buf_start;
            *len = (size_t)(nl - *line);
            *nl = '\0';
            r->buf_start = (size_t)(nl - r->buf) + 1;
            r->line_number++;
            return 1;
        }
        if (r->at_eof) {
            if (r->buf_start == r->buf_end) return 0;
            *line = r->buf + r->buf_start;
            *len = r->buf_end - r->buf_start;
            r->buf[r->buf_end] = '\0';
            r->buf_start = r->buf_end;
            r->line_number++;
            return 1;
        }
        size_t pending = scanned - r->buf_start;
        if (fill(r, err)) return -1;
        scanned = r->buf_start + pending;
    }
}

void tn_line_reader_close(TnLineReader *r) {
    if (r->codec == TN_CODEC_GZIP && r->codec_state) {
        inflateEnd(r->codec_state);
        free(r->codec_state);
    } else if (r->codec == TN_CODEC_ZSTD) {
        ZSTD_freeDCtx(r->codec_state);
    }
    if (r->fp && r->fp != stdin) fclose(r->fp);
    free(r->in_buf);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

int tn_stream_writer_open(TnStreamWriter *w, const char *path, TnError *err) {
    memset(w, 0, sizeof *w);
    w->codec = tn_codec_for_path(path);
    if (tn_atomic_open(&w->file, path, err)) return -1;
    if (w->codec == TN_CODEC_PLAIN) return 0;
    w->out_cap = STREAM_CHUNK;
    w->out_buf = tn_malloc(w->out_cap);
    if (w->codec == TN_CODEC_GZIP) {
        z_stream *z = tn_calloc(1, sizeof *z);
        w->codec_state = z;
        /* 15 + 16: a gzip header; level 6 is gzip's default. */
        TN_ASSERT(deflateInit2(z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    } else {
        w->codec_state = ZSTD_createCCtx();
        TN_ASSERT(w->codec_state);
        ZSTD_CCtx_setParameter(w->codec_state, ZSTD_c_compressionLevel, 3);
    }
    return 0;
}

/* Runs the compressor over n bytes (finish: and ends the stream), writing
 * every full output buffer to the file. */
static int compress_bytes(TnStreamWriter *w, const void *data, size_t n, int finish, TnError *err) {
    if (w->codec == TN_CODEC_GZIP) {
        z_stream *z = w->codec_state;
        z->next_in = (Bytef *)data;
        z->avail_in = (uInt)n;
        int rc;
        do {
            z->next_out = w->out_buf;
            z->avail_out = (uInt)w->out_cap;
            rc = deflate(z, finish ? Z_FINISH : Z_NO_FLUSH);
            TN_ASSERT(rc != Z_STREAM_ERROR);
            if (tn_atomic_write(&w->file, w->out_buf, w->out_cap - z->avail_out, err)) return -1;
        } while (z->avail_out == 0 || (finish && rc != Z_STREAM_END));
        return 0;
    }
    ZSTD_inBuffer in = {data, n, 0};
    size_t remaining;
    do {
        ZSTD_outBuffer out = {w->out_buf, w->out_cap, 0};
        remaining = ZSTD_compressStream2(w->codec_state, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(remaining)) {
            tn_atomic_abort(&w->file);
            return tn_fail(err, "%s: zstd compression failed: %s", w->file.path, ZSTD_getErrorName(remaining));
        }
        if (tn_atomic_write(&w->file, w->out_buf, out.pos, err)) return -1;
    } while (in.pos < in.size || (finish && remaining != 0));
    return 0;
}

int tn_stream_writer_write(TnStreamWriter *w, const void *data, size_t n, TnError *err) {
    w->bytes_in += n;
    if (w->codec == TN_CODEC_PLAIN) return tn_atomic_write(&w->file, data, n, err);
    /* zlib counts in uInt: feed very large writes in pieces. */
    const char *p = data;
    while (n > 0) {
        size_t piece = n < (1u << 30) ? n : (1u << 30);
        if (compress_bytes(w, p, piece, 0, err)) return -1;
        p += piece;
        n -= piece;
    }
    return 0;
}

static void free_codec(TnStreamWriter *w) {
    if (w->codec == TN_CODEC_GZIP && w->codec_state) {
        deflateEnd(w->codec_state);
        free(w->codec_state);
    } else if (w->codec == TN_CODEC_ZSTD) {
        ZSTD_freeCCtx(w->codec_state);
    }
    w->codec_state = NULL;
    free(w->out_buf);
    w->out_buf = NULL;
}

int tn_stream_writer_commit(TnStreamWriter *w, TnError *err) {
    int failed = w->codec != TN_CODEC_PLAIN && compress_bytes(w, NULL, 0, 1, err);
    free_codec(w);
    if (failed) return -1;
    return tn_atomic_commit(&w->file, err);
}

void tn_stream_writer_abort(TnStreamWriter *w) {
    free_codec(w);
    tn_atomic_abort(&w->file);
}
